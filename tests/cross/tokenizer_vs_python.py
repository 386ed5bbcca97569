#!/usr/bin/python3
"""attnlens' C++ WordPiece tokenizer against tools/wordpiece.py, two implementations written independently from
spec section 9, on every sentence of the sentiment@5.0.2 data (3,003 items; blank ones included) with the bundled
model's vocabulary, plus a table of tricky strings (accents, CJK, control characters, punctuation, long words).
Token ids must agree exactly, truncation to 128 included.

    /usr/bin/python3 tests/cross/tokenizer_vs_python.py build/attnlens [DATA_DIR]
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import text_data  # noqa: E402
import wordpiece  # noqa: E402

TRICKY = ["Héllo Wörld, naïve café!", "我爱NLP和机器学习", "tab\there\nnew\u00a0nbsp\u3000ideographic space",
          "bell\u0007 and \ufffd replacement", "don't stop-believing... (really) [sic] {x} ~y~", "ÀÉÎÕÜ ß Ø æ",
          "a" * 120, "supercalifragilisticexpialidociously unbelievable", "", "   ", "12,345.67 $ % & @ #",
          "mixed ümlaut and ｆｕｌｌｗｉｄｔｈ letters", "emoji 😀 are symbols, not punctuation"]


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "build/attnlens"
    data = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "data", "sentiment")
    model = os.path.join(ROOT, "data", "models", "sentiment-bert")
    vocab = wordpiece.load_vocab(os.path.join(model, "vocab.txt"))
    # One text per line: line breaks inside a text become spaces (the tokenizer maps both to a space anyway).
    texts = [t.replace("\n", " ").replace("\r", " ") for t in [i["text"] for i in text_data.load_items(data)] + TRICKY]
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        f.write("\n".join(texts) + "\n")
        path = f.name
    try:
        out = subprocess.run([binary, "tokenize", "--vocab", model, "--max-length", "128", "--texts", path],
                             capture_output=True, text=True, check=True).stdout.rstrip("\n").split("\n")
    finally:
        os.unlink(path)
    assert len(out) == len(texts), (len(out), len(texts))
    mismatches = 0
    for text, line in zip(texts, out):
        got = json.loads(line)["ids"]
        want = wordpiece.encode(text, vocab, max_length=128)
        if got != want:
            mismatches += 1
            if mismatches <= 5:
                print("MISMATCH", repr(text[:80]), got[:12], want[:12])
    print(f"{len(texts)} texts, {mismatches} mismatches")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
