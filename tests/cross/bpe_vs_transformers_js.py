#!/usr/bin/python3
"""attnlens' byte-level BPE tokenizers (RoBERTa's and CLIP's) against transformers.js (npm @huggingface/transformers,
the version pinned in tests/cross/tokenizers_js/package-lock.json), built offline from local files: a byte-level BPE
is trained here on the review sentences and the tricky inputs (no hub download), written as vocab.json + merges.txt
for attnlens and as the tokenizer.json Hugging Face's converters (RobertaConverter, CLIPConverter) make of them for
transformers.js.

transformers.js is not the Python reference everywhere, so every input is also encoded by a transcription of the
Python references (tests/cross/bpe_reference.py: MODELS.md E.3, Hugging Face's slow RobertaTokenizer; C.7,
openai/CLIP's simple_tokenizer with NFC for ftfy) with Python's `regex` module. The test requires:
  1. attnlens == the Python reference on every input (ids), truncation included: nothing is attnlens' fault;
  2. every input where transformers.js differs from the Python reference falls in a class of DIFFERENCES below
     (each with an example, checked to differ, and the Python rule behind it); an unexplained one fails the test.

    /usr/bin/python3 tests/cross/bpe_vs_transformers_js.py build/attnlens [DATA_DIR]

Exit 77 (ctest: skipped) with the reason when transformers.js cannot be installed because npm or the registry is
unreachable.
"""
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unicodedata

import regex

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
JS_DIR = os.path.join(ROOT, "tests", "cross", "tokenizers_js")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import text_data  # noqa: E402
from bpe_reference import (CLIP_SPECIALS, ROBERTA_SPECIALS, ClipReference, RobertaReference,  # noqa: E402
                           clip_clean, clip_files, roberta_files)

SKIP = 77


def added(token, vocab, lstrip=False):
    return {"id": vocab[token], "content": token, "single_word": False, "lstrip": lstrip, "rstrip": False,
            "normalized": True, "special": True}


def roberta_tokenizer_json(vocab, merges):
    """What Hugging Face's RobertaConverter writes (convert_slow_tokenizer.py): no normaliser, ByteLevel
    pre-tokeniser, BPE without affixes, <s> A </s></s> B </s>; <mask> strips the space on its left."""
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(t, vocab, lstrip=(t == "<mask>")) for t in ROBERTA_SPECIALS],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", vocab["</s>"]], "cls": ["<s>", vocab["<s>"]],
                           "trim_offsets": True, "add_prefix_space": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": [f"{a} {b}" for a, b in merges]},
    }, {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>", "cls_token": "<s>",
        "pad_token": "<pad>", "mask_token": "<mask>"}


def clip_tokenizer_json(vocab, merges):
    """What Hugging Face's CLIPConverter writes: NFC, \\s+ -> " ", lowercase; CLIP's regex (without the special
    tokens, which are added tokens) as an inverted split, ByteLevel without its regex; BPE with "</w>"."""
    pattern = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(t, vocab) for t in CLIP_SPECIALS],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"}, {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "}, {"type": "Lowercase"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Removed", "invert": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "RobertaProcessing", "sep": ["<|endoftext|>", vocab["<|endoftext|>"]],
                           "cls": ["<|startoftext|>", vocab["<|startoftext|>"]], "trim_offsets": False,
                           "add_prefix_space": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<|endoftext|>", "continuing_subword_prefix": "",
                  "end_of_word_suffix": "</w>", "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": [f"{a} {b}" for a, b in merges]},
    }, {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>"}


# ---------------------------------------------------------------------------------------------------------------
# Tricky inputs
# ---------------------------------------------------------------------------------------------------------------

def tricky_inputs():
    t = ["", " ", "  ", "\n", "\t", " \n ", "Hello world", " Hello world", "  Hello world", "\tHello", "\nHello",
         "Hello ", "Hello  ", "Hello world's 2024!! \n ok"]
    # Unicode punctuation, alone, between words and after a space
    for p in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»‹›“”‘’‚„‐‑‒–—―…‰′″‽⁇⁈⁉※、。「」『』【】〜・！？．，：；（）｛｝":
        t += [f"word{p}word", f"a {p} b", f"{p}{p}{p}"]
    # accents, composed and decomposed, cased forms
    t += ["café", "cafe\u0301", "naïve", "nai\u0308ve", "Ångström", "A\u030angstro\u0308m", "ÀÉÎÕÜ", "ß straße",
          "ǅungla ǈ ǋ", "ΟΔΟΣ", "ΣΑ Σ", "ΟΔΟΣ.", "İstanbul", "ıi İI", "Ǆ ǅ ǆ", "ﬁne ﬂow", "Ⅻ ⅻ", "Ǻ", "ẞ",
          "\u0301lone mark", "a\u0300\u0301\u0302", "Ω Ω", "Å Å", "Tiếng Việt", "Ελληνικά", "Русский ТЕКСТ",
          "עִבְרִית", "العربية", "हिन्दी", "ไทย", "한국어 한글", "\u1100\u1161\u11a8"]
    # CJK, kana, fullwidth
    t += ["我爱NLP和机器学习", "日本語のテキスト", "ひらがな カタカナ", "ｆｕｌｌｗｉｄｔｈ", "ＡＢＣ１２３", "中文，标点。",
          "\U00020000\U0002a6d6", "漢字かな交じり文", "㐀㐁", "\uf900\uf901"]
    # emoji, ZWJ sequences, modifiers, flags, keycaps, variation selectors
    t += ["😀", "😀😃😄", "I ❤️ NY", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷🇩🇪", "1️⃣", "#️⃣", "☺︎ ☺️", "🧑🏿‍💻",
          "a😀b", " 😀 ", "🤷‍♀️ ok", "👩‍❤️‍💋‍👨", "emoji 😀 are symbols, not punctuation", "✔✓☑", "★☆"]
    # control characters
    for c in ["\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x1c", "\x1d", "\x1e", "\x1f", "\x7f",
              "\x80", "\x85", "\x9f", "\u00ad", "\u200b", "\u200c", "\u200d", "\u200e", "\u2060", "\ufeff",
              "\ufffd", "\ue000"]:
        t += [f"a{c}b", f"{c}start", f"end{c}", f"x {c} y"]
    # every kind of space
    for s in ["\t", "\n", "\x0b", "\x0c", "\r", " ", "\x85", "\xa0", "\u1680", "\u2000", "\u2001", "\u2002",
              "\u2003", "\u2004", "\u2005", "\u2006", "\u2007", "\u2008", "\u2009", "\u200a", "\u2028", "\u2029",
              "\u202f", "\u205f", "\u3000", "\u180e", "\ufeff"]:
        t += [f"a{s}b", f"{s}lead", f"trail{s}", f"a{s}{s}b", f"a {s}b", f"a{s} b"]
    # very long words and runs
    t += ["a" * 300, "ab" * 200, "supercalifragilisticexpialidocious" * 5, "x" * 1000, "!" * 200, " " * 50 + "x",
          "9" * 120, "é" * 150, "😀" * 60, "the " * 100]
    # numbers
    t += ["2024", "3.14159", "1,000,000", "-42", "+7", "1e10", "0x1F", "١٢٣ ٤٥٦", "۱۲۳", "½ ¼ ¾", "² ³ ¹", "ⅷ Ⅳ",
          "一二三", "①②③", "12abc34", "abc123def", "v1.2.3", "$5.99", "50%", "10:30", "2024-01-01", "#1"]
    # contractions
    t += ["don't", "you're", "I'm", "we've", "they'll", "she'd", "it's", "DON'T", "YOU'RE", "It'S", "'s", "''s",
          "'sup", "rock'n'roll", "don’t", "I 've", "o'clock", "y'all'd've", "it'ſ", "'S", "'Ll", "can't!", "isn't?",
          "' s", "''", "'"]
    # special tokens spelled in the text
    t += ["<s>", "</s>", "<pad>", "<unk>", "<mask>", "hello <mask> world", "hello<mask>", "a  <mask>", "a\t<mask>",
          "a\x1c<mask>", "a\x85<mask>", "a\ufeff<mask>", "<mask>x", "x</s>y", "<s><s>", "<|endoftext|>",
          "<|startoftext|>", "a <|endoftext|> b", "!<|endoftext|>", "x<|endoftext|>y", "<|ENDOFTEXT|>", "<|end",
          "< s >", "<<mask>>", "a photo of a cat", "A Photo of a CAT!!", "itap of a goldfish.", "a photo of a dog."]
    # mixtures and whitespace around everything
    t += ["Hello, World! How are you?", "  multiple   spaces   here  ", "tabs\tand\nnewlines\r\nhere",
          "ends with newline\n", "\n\nleading newlines", "MiXeD CaSe TeXt", "snake_case and kebab-case",
          "email@example.com", "https://example.com/path?q=1&r=2", "@user #hashtag", "C++ and C#",
          "a—b–c-d", "«quoted» “text”", "x²+y²=z²", "π≈3.14", "5°C", "€100 £50 ¥1000", "✂️ cut here", "→ ← ↑ ↓"]
    return t


# Classes of difference between transformers.js and the Python reference: (name, predicate on the input, an example
# input, the Python rule). A class holds only inputs where the predicate is true; each example must really differ.
def has_any(chars):
    return lambda text: any(c in text for c in chars)


ROBERTA_DIFFERENCES = [
    ("U+0085 (NEL) is whitespace", has_any("\x85"), "a \x85b",
     "Python's `regex` \\s is Unicode White_Space, which has U+0085; the regex transformers.js writes for GPT-2's "
     "pre-tokeniser uses JavaScript's \\s, which lacks it: ' ' + U+0085 is then a space and a symbol run, for "
     "Python a run of two spaces"),
    ("U+FEFF (BOM) is not whitespace", has_any("\ufeff"), "a\ufeff<mask>",
     "JavaScript's \\s (and trimEnd(), before <mask>) has U+FEFF; Unicode White_Space (Python's \\s and "
     "str.isspace) does not, so for Python it is an ordinary symbol"),
    ("what <mask> strips on its left: Python's str.rstrip()",
     lambda t: "<mask>" in t and has_any("\x1c\x1d\x1e\x1f\x85")(t), "a\x1c<mask>",
     "<mask> (lstrip) strips the text on its left with str.rstrip(), which removes U+001C-001F and U+0085 "
     "(str.isspace); JavaScript's trimEnd() keeps them"),
]

CLIP_DIFFERENCES = [
    ("special token after punctuation", lambda t: regex.search(r"[^\s\p{L}\p{N}]<\|(start|end)oftext\|>", t.lower())
     is not None, "!<|endoftext|>",
     "CLIP's regex tries <|endoftext|> only where a token starts; after punctuation the punctuation run takes '<|'. "
     "Hugging Face's fast tokenizer splits added tokens out of the text first"),
    ("U+001C-001F at either end", lambda t: any(c in "\x1c\x1d\x1e\x1f" for c in
                                                  (lambda s: s[:1] + s[-1:])(regex.sub(r"\s+", " ", t).strip(" "))),
     "\x1cstart",
     "Python's str.strip() (str.isspace) removes U+001C-001F at the ends of the text; the fast tokenizer has no "
     "strip, so they become tokens"),
    ("contraction with long s (U+017F)", has_any("\u017f"), "it'\u017f",
     "CLIP's regex is case-insensitive (regex.IGNORECASE): 'ſ folds to 's and is a contraction; the fast "
     "tokenizer's regex is case-sensitive"),
]


# ---------------------------------------------------------------------------------------------------------------
# Running the three tokenizers
# ---------------------------------------------------------------------------------------------------------------

def attnlens_ids(binary, folder, texts, max_length=100000):
    """attnlens tokenize on a folder (kind chosen from its files): one --texts file for the lines it can hold, a
    call per text with a line break (passed as an argument; no text here has both a line break and a NUL)."""
    out = [None] * len(texts)
    batch = [i for i, t in enumerate(texts) if "\n" not in t and "\r" not in t]
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
        f.write(b"".join(texts[i].encode("utf-8") + b"\n" for i in batch))
        path = f.name
    try:
        lines = subprocess.run([binary, "tokenize", "--vocab", folder, "--max-length", str(max_length), "--texts",
                                path], capture_output=True, check=True).stdout.decode("utf-8").splitlines()
    finally:
        os.unlink(path)
    assert len(lines) == len(batch), (len(lines), len(batch))
    for i, line in zip(batch, lines):
        out[i] = json.loads(line)["ids"]
    for i, t in enumerate(texts):
        if out[i] is None:
            assert "\x00" not in t
            res = subprocess.run([binary, "tokenize", "--vocab", folder, "--max-length", str(max_length), t],
                                 capture_output=True, check=True)
            out[i] = json.loads(res.stdout.decode("utf-8"))["ids"]
    return out


def js_ids(tokenizer_json, config, texts, tmp):
    request = os.path.join(tmp, "request.json")
    with open(request, "w", encoding="utf-8") as f:
        json.dump({"tokenizer": tokenizer_json, "config": config, "texts": texts}, f, ensure_ascii=False)
    res = subprocess.run(["node", os.path.join(JS_DIR, "encode.mjs"), request], capture_output=True, check=True,
                         cwd=JS_DIR)
    return [r["ids"] for r in json.loads(res.stdout.decode("utf-8"))]


def compare(name, binary, folder, reference, tokenizer_json, config, texts, classes, tmp):
    ours = attnlens_ids(binary, folder, texts)
    js = js_ids(tokenizer_json, config, texts, tmp)
    want = [reference.encode(t) for t in texts]
    failures = 0
    for text, o, w in zip(texts, ours, want):
        if o != w:
            failures += 1
            print(f"{name}: attnlens differs from the Python reference on {text!r}: {o[:16]} vs {w[:16]}")
    by_class = collections.OrderedDict((c[0], []) for c in classes)
    for text, j, w in zip(texts, js, want):
        if j == w:
            continue
        cls = next((c[0] for c in classes if c[1](text)), None)
        if cls is None:
            failures += 1
            print(f"{name}: transformers.js differs on {text!r} and no class explains it: js {j[:16]} python {w[:16]}")
        else:
            by_class[cls].append(text)
    # Each class's example really differs, and attnlens agrees with the Python reference on it.
    examples = [c[2] for c in classes]
    ex_js = js_ids(tokenizer_json, config, examples, tmp)
    ex_ours = attnlens_ids(binary, folder, examples)
    for c, j, o in zip(classes, ex_js, ex_ours):
        w = reference.encode(c[2])
        if j == w:
            failures += 1
            print(f"{name}: the example of class '{c[0]}' ({c[2]!r}) does not differ")
        if o != w:
            failures += 1
            print(f"{name}: attnlens differs from the Python reference on the example {c[2]!r}")
    same = sum(j == w for j, w in zip(js, want))
    print(f"{name}: {len(texts)} inputs; attnlens = Python reference on {sum(o == w for o, w in zip(ours, want))}; "
          f"transformers.js = Python reference on {same}, differs on {len(texts) - same}:")
    for c in classes:
        hits = by_class[c[0]]
        print(f"  {len(hits):3d}  {c[0]}  (e.g. {(hits[0] if hits else c[2])!r}): {c[3]}")
    return failures


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "attnlens")
    data = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "data", "sentiment")
    if shutil.which("node") is None:
        print("SKIPPED: node (Node.js, which comes with npm) is not installed")
        return SKIP
    fetch = subprocess.run(["bash", os.path.join(ROOT, "tools", "fetch_tokenizers_js.sh")], capture_output=True,
                           text=True)
    if fetch.returncode == 3:
        print("SKIPPED: transformers.js could not be installed (npm or the npm registry unreachable):",
              fetch.stderr.strip().splitlines()[-1:])
        return SKIP
    if fetch.returncode != 0:
        print(fetch.stdout, fetch.stderr)
        return 1
    texts = tricky_inputs()
    corpus = [i["text"] for i in text_data.load_items(data)] + texts
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, make_files, make_json, reference, classes, merges in (
                ("roberta", roberta_files, roberta_tokenizer_json, RobertaReference, ROBERTA_DIFFERENCES, 1500),
                ("clip", clip_files, clip_tokenizer_json, ClipReference, CLIP_DIFFERENCES, 1500)):
            vocab, merge_list = make_files(corpus, merges)
            folder = os.path.join(tmp, name)
            os.makedirs(folder)
            with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
                json.dump(vocab, f, ensure_ascii=False)
            with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
                f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merge_list))
            ref = reference(vocab, merge_list)
            tokenizer_json, config = make_json(vocab, merge_list)
            print(f"{name}: trained {len(merge_list)} merges, vocabulary of {len(vocab)}")
            failures += compare(name, binary, folder, ref, tokenizer_json, config, texts, classes, tmp)
            # Truncation: attnlens against the Python rule (transformers.js cuts the closing special token off).
            for max_length in (3, 5, 8):
                got = attnlens_ids(binary, folder, texts[:80], max_length)
                for text, g in zip(texts[:80], got):
                    w = ref.encode(text, max_length)
                    if g != w:
                        failures += 1
                        print(f"{name}: truncation to {max_length} differs on {text!r}: {g} vs {w}")
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
