"""Byte-level BPE as the Python references compute it, transcribed from MODELS.md C.7, C.8 and E.3 with Python's
`regex` module (Debian python3-regex): Hugging Face's slow RobertaTokenizer, openai/CLIP's simple_tokenizer (with
NFC for ftfy, which has no specification, and without html.unescape, as Hugging Face's CLIPTokenizer), and a small
deterministic BPE trainer for test vocabularies. Shared by the tokenizer and text-model cross-checks; never a port of
attnlens' C++.
"""
import collections
import unicodedata

import regex

def bytes_to_unicode():
    """GPT-2's table (C.8): printable bytes keep their code point, the other 68 take U+0100.. in byte order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


BYTE_ENCODER = bytes_to_unicode()
GPT2_PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
CLIP_PAT = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                         regex.IGNORECASE)
CLIP_SPECIALS = ("<|startoftext|>", "<|endoftext|>")
ROBERTA_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def byte_symbols(token):
    return [BYTE_ENCODER[b] for b in token.encode("utf-8")]


def bpe(word, ranks):
    """The slow tokenizers' loop: merge every occurrence of the lowest-ranked adjacent pair, left to right."""
    word = tuple(word)
    while len(word) > 1:
        pairs = set(zip(word, word[1:]))
        bigram = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if bigram not in ranks:
            break
        first, second = bigram
        new, i = [], 0
        while i < len(word):
            try:
                j = word.index(first, i)
            except ValueError:
                new.extend(word[i:])
                break
            new.extend(word[i:j])
            i = j
            if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                new.append(first + second)
                i += 2
            else:
                new.append(word[i])
                i += 1
        word = tuple(new)
    return list(word)


class RobertaReference:
    """Hugging Face's slow RobertaTokenizer (E.3): the special tokens split out first (<mask> lstrip: the text on
    its left loses its trailing whitespace, Python's str.rstrip()), GPT-2's regex, bytes to symbols, BPE, ids."""

    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.ranks = {m: i for i, m in enumerate(merges)}

    def chunk_ids(self, text):
        ids = []
        for piece in GPT2_PAT.findall(text):
            ids += [self.vocab.get(t, self.vocab["<unk>"]) for t in bpe(byte_symbols(piece), self.ranks)]
        return ids

    def tokenize(self, text):
        ids, start, i = [], 0, 0
        specials = sorted(ROBERTA_SPECIALS, key=len, reverse=True)
        while i < len(text):
            match = next((s for s in specials if text.startswith(s, i)), None)
            if match is None:
                i += 1
                continue
            left = text[start:i]
            if match == "<mask>":
                left = left.rstrip()
            ids += self.chunk_ids(left) + [self.vocab[match]]
            i += len(match)
            start = i
        return ids + self.chunk_ids(text[start:])

    def encode(self, text, max_length=None):
        body = self.tokenize(text)
        if max_length is not None:
            body = body[:max_length - 2]
        return [self.vocab["<s>"]] + body + [self.vocab["</s>"]]


def clip_clean(text):
    """openai/CLIP without ftfy (whose last step, NFC, is kept) and without html.unescape, as Hugging Face's
    CLIPTokenizer: whitespace runs (regex \\s, Unicode White_Space) to one space, str.strip(), str.lower()."""
    text = unicodedata.normalize("NFC", text)
    return regex.sub(r"\s+", " ", text).strip().lower()


class ClipReference:
    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.ranks = {m: i for i, m in enumerate(merges)}

    def tokenize(self, text):
        ids = []
        for piece in CLIP_PAT.findall(clip_clean(text)):
            if piece in CLIP_SPECIALS:  # simple_tokenizer's cache returns them as they are
                ids.append(self.vocab[piece])
                continue
            symbols = byte_symbols(piece)
            symbols[-1] += "</w>"
            ids += [self.vocab[t] for t in bpe(symbols, self.ranks)]
        return ids

    def encode(self, text, max_length=None):
        ids = [self.vocab["<|startoftext|>"]] + self.tokenize(text) + [self.vocab["<|endoftext|>"]]
        if max_length is not None and len(ids) > max_length:  # open_clip: the first N, the last set to EOT
            ids = ids[:max_length]
            ids[-1] = self.vocab["<|endoftext|>"]
        return ids


# ---------------------------------------------------------------------------------------------------------------
# A small byte-level BPE trained here (deterministic: most frequent pair first, ties by the pair's order)
# ---------------------------------------------------------------------------------------------------------------

def train_merges(words, count):
    """words: {tuple of symbols: frequency}; returns `count` merges (or fewer when nothing is left to merge)."""
    words = [(list(w), f) for w, f in words.items()]
    pair_freq = collections.Counter()
    where = collections.defaultdict(set)
    for k, (w, f) in enumerate(words):
        for p in zip(w, w[1:]):
            pair_freq[p] += f
            where[p].add(k)
    merges = []
    while len(merges) < count and pair_freq:
        best = min(pair_freq, key=lambda p: (-pair_freq[p], p))
        if pair_freq[best] < 2:
            break
        merges.append(best)
        for k in sorted(where.pop(best, ())):
            w, f = words[k]
            for p in zip(w, w[1:]):
                pair_freq[p] -= f
                if pair_freq[p] <= 0:
                    del pair_freq[p]
            new, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    new.append(w[i] + w[i + 1])
                    i += 2
                else:
                    new.append(w[i])
                    i += 1
            words[k] = (new, f)
            for p in zip(new, new[1:]):
                pair_freq[p] += f
                where[p].add(k)
        pair_freq.pop(best, None)
    return merges


def roberta_files(corpus, merge_count):
    words = collections.Counter()
    for text in corpus:
        for piece in GPT2_PAT.findall(text):
            words[tuple(byte_symbols(piece))] += 1
    merges = train_merges(words, merge_count)
    tokens = ["<s>", "<pad>", "</s>", "<unk>"] + list(BYTE_ENCODER.values())
    tokens += [a + b for a, b in merges]
    tokens = list(dict.fromkeys(tokens)) + ["<mask>"]  # two merges can make the same symbol
    return {t: i for i, t in enumerate(tokens)}, merges


def clip_files(corpus, merge_count):
    words = collections.Counter()
    for text in corpus:
        for piece in CLIP_PAT.findall(clip_clean(text)):
            if piece in CLIP_SPECIALS:
                continue
            symbols = byte_symbols(piece)
            symbols[-1] += "</w>"
            words[tuple(symbols)] += 1
    merges = train_merges(words, merge_count)
    symbols = list(BYTE_ENCODER.values())  # C.7 step 5: the byte symbols, the same with </w>, the merges, specials
    tokens = list(dict.fromkeys(symbols + [s + "</w>" for s in symbols] + [a + b for a, b in merges]))
    tokens += list(CLIP_SPECIALS)
    return {t: i for i, t in enumerate(tokens)}, merges
