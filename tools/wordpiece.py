"""BERT uncased tokenisation (as Hugging Face's BertTokenizer) and the vocabulary builder of the bundled text model.

Tokenisation follows ../shared/spec/ALGORITHMS.md section 9, "BERT uncased", literally:

1. BasicTokenizer
   a. clean: drop U+0000, U+FFFD and control characters (Unicode category C*, except \\t \\n \\r); map whitespace
      (space, \\t, \\n, \\r and category Zs) to a space;
   b. put a space on both sides of every CJK ideograph (the ranges in CJK_RANGES);
   c. NFC-normalise (recent Hugging Face versions do; Google's original BERT does not);
   d. split on whitespace (Python's str.split(), as Hugging Face: after step a that is the space, plus U+2028 and
      U+2029, which are neither C* nor Zs but Python treats as whitespace);
   e. per word: lowercase (Python's str.lower()), then strip accents: NFD, drop category Mn;
   f. split punctuation (ASCII 33-47, 58-64, 91-96, 123-126 and Unicode category P*) into one-character tokens.
   Input text is never searched for special tokens: "[CLS]" typed in a sentence is the five tokens [ cls ] ... as
   any other text (Hugging Face's never_split would keep it whole; there are none in the data).
2. WordPiece: a word longer than 100 characters (code points) is [UNK]; otherwise greedy longest-match-first from
   the left, pieces after the first prefixed "##"; if some position matches no vocabulary entry, the WHOLE word is
   [UNK].
3. Layout: [CLS] pieces [SEP], the pieces truncated to max_length - 2; token_type 0 everywhere; attention mask 1.

Vocabulary (build_vocab, from the TRAINING split only; deterministic, ties sorted by code point order):
  ids 0..4: [PAD] [UNK] [CLS] [SEP] [MASK];
  every character of the training words (after step 1), then each one's "##" form, so no training word is [UNK];
  whole words with count >= 2, most frequent first;
  then pieces up to the target size: among the training words with count 1 (the ones not in the vocabulary whole),
  count every suffix of 2-5 characters that is shorter than the word ("##" + suffix) and every prefix of 2-5
  characters shorter than the word; add the most frequent pieces first. Suffixes let a rare inflection reuse its
  stem ("recommend" + "##ing"), prefixes let it start with more than one letter.

    /usr/bin/python3 tools/wordpiece.py "Some text, café!" [--vocab data/models/sentiment-bert/vocab.txt]
    /usr/bin/python3 tools/wordpiece.py --build-vocab OUT.txt [--size 2500]    # from the training split
"""
import argparse
import collections
import unicodedata

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)  # ids 0..4
MAX_CHARS_PER_WORD = 100
CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
              (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_control(ch):
    # \t \n \r are Cc too, but they count as whitespace (mapped to a space), not dropped.
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def is_punctuation(ch):
    # The ASCII ranges make symbols like $ + < = > ^ ` | ~ (categories Sc/Sm/Sk) punctuation as well.
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(ch):
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


def basic_tokenize(text):
    """Step 1: text -> words and punctuation marks, lowercased, accents stripped."""
    cleaned = []
    for ch in text:
        if ch in ("\x00", "\ufffd") or is_control(ch):
            continue
        if is_whitespace(ch):
            cleaned.append(" ")
        elif is_cjk(ch):
            cleaned.append(f" {ch} ")
        else:
            cleaned.append(ch)
    text = unicodedata.normalize("NFC", "".join(cleaned))
    tokens = []
    for word in text.split():
        word = unicodedata.normalize("NFD", word.lower())
        word = "".join(ch for ch in word if unicodedata.category(ch) != "Mn")
        current = ""
        for ch in word:
            if is_punctuation(ch):
                if current:
                    tokens.append(current)
                    current = ""
                tokens.append(ch)
            else:
                current += ch
        if current:
            tokens.append(current)
    # Stripping accents can leave an empty word (a lone combining mark); the second whitespace split in Hugging
    # Face drops it, and so does the `if current` above.
    return tokens


def wordpiece(word, vocab):
    """Step 2 for one word: greedy longest-match-first pieces, or [UNK] for the whole word."""
    if len(word) > MAX_CHARS_PER_WORD:
        return [UNK]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        match = None
        while start < end:
            candidate = word[start:end] if start == 0 else "##" + word[start:end]
            if candidate in vocab:
                match = candidate
                break
            end -= 1
        if match is None:
            return [UNK]
        pieces.append(match)
        start = end
    return pieces


def tokenize(text, vocab):
    """Text -> WordPiece tokens (strings), without [CLS]/[SEP]."""
    return [piece for word in basic_tokenize(text) for piece in wordpiece(word, vocab)]


def encode(text, vocab, max_length=128):
    """Text -> ids of [CLS] pieces [SEP], the pieces truncated to max_length - 2 (no padding)."""
    pieces = tokenize(text, vocab)[:max_length - 2]
    return [vocab[CLS]] + [vocab[p] for p in pieces] + [vocab[SEP]]


def load_vocab(path):
    """vocab.txt (one token a line, id = line number) -> {token: id}."""
    with open(path, encoding="utf-8") as f:
        return {line.rstrip("\n"): i for i, line in enumerate(f)}


def save_vocab(tokens, path):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for t in tokens:
            f.write(t + "\n")


def build_vocab(texts, size=2500):
    """Training texts -> list of tokens (index = id), by the rule in the module docstring."""
    counts = collections.Counter(w for text in texts for w in basic_tokenize(text))
    tokens = list(SPECIAL_TOKENS)
    seen = set(tokens)

    def add(token):
        if token not in seen:
            seen.add(token)
            tokens.append(token)

    chars = sorted({ch for w in counts for ch in w})
    for ch in chars:
        add(ch)
    for ch in chars:
        add("##" + ch)
    for word, count in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0])):
        if count >= 2:
            add(word)
    pieces = collections.Counter()
    for word, count in counts.items():
        if count != 1:
            continue
        for n in range(2, 6):
            if n < len(word):
                pieces["##" + word[-n:]] += 1
                pieces[word[:n]] += 1
    for piece, _ in sorted(pieces.items(), key=lambda pc: (-pc[1], pc[0])):
        if len(tokens) >= size:
            break
        add(piece)
    return tokens


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("text", nargs="*", help="text to tokenise")
    p.add_argument("--vocab", help="vocab.txt (default: build one from the training split)")
    p.add_argument("--build-vocab", metavar="OUT", help="write the training split's vocabulary to OUT")
    p.add_argument("--size", type=int, default=2500, help="target vocabulary size for --build-vocab")
    p.add_argument("--data", default=None, help="data folder (default data/sentiment)")
    args = p.parse_args()
    if args.vocab:
        vocab = load_vocab(args.vocab)
    else:
        import text_data
        items = text_data.load_items(args.data or text_data.DEFAULT_DIR)
        tokens = build_vocab([it["text"] for it in text_data.split(items, "train")], args.size)
        if args.build_vocab:
            save_vocab(tokens, args.build_vocab)
            print(f"wrote {len(tokens)} tokens to {args.build_vocab}")
        vocab = {t: i for i, t in enumerate(tokens)}
    for text in args.text:
        pieces = tokenize(text, vocab)
        print(" ".join(pieces))
        print(" ".join(str(i) for i in encode(text, vocab)))


if __name__ == "__main__":
    main()
