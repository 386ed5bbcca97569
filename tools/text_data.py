"""The sentence-sentiment data set of attnlens' bundled BERT model, and THE SPLIT RULE every tool and test uses.

Data: the three files tools/fetch_sentiment.sh puts in data/sentiment/ (Amazon, IMDb and Yelp review sentences,
label 0 = negative, 1 = positive). Each file is a JSON list of 1,001 {"text", "class"} items; the last item of each
is an empty sentence with "class": null, which is kept (so indices stay positions in the files) but has no label.

Indexing: the files are read in the order amazon, imdb, yelp and concatenated; item i is the i-th of that
concatenation (0..3002; amazon 0..1000, imdb 1001..2001, yelp 2002..3002).

THE SPLIT RULE: item i is held-out (test) iff i % 5 == 4, else it is training. This gives 600 held-out sentences
(all labelled) and 2,403 training positions (2,400 labelled; the three empty items fall in training). Any language
reproduces it from the concatenated index alone; attnlens' C++ side implements the same rule.

Validation (early stopping, choosing the regularisation) is carved out of the training split only, never the held-out
split: a training item with i % 10 == 3 is validation (300 items), the other 2,100 training items are fitted.

    /usr/bin/python3 tools/text_data.py [DIR]     # print the split sizes and label balance
"""
import json
import os
import sys

SOURCES = ("amazon", "imdb", "yelp")
DEFAULT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "sentiment")
LABELS = ("negative", "positive")


def is_held_out(index):
    """THE SPLIT RULE: held-out (test) iff index % 5 == 4."""
    return index % 5 == 4


def is_validation(index):
    """Validation part of the training split (for early stopping / model selection): index % 10 == 3."""
    return not is_held_out(index) and index % 10 == 3


def load_items(directory=DEFAULT_DIR):
    """All 3,003 items as dicts {index, source, text, label (0, 1 or None)}, in the concatenation order."""
    items = []
    for source in SOURCES:
        path = os.path.join(directory, source + ".json")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} missing: run `bash tools/fetch_sentiment.sh` first")
        with open(path, encoding="utf-8") as f:
            for entry in json.load(f):
                label = entry["class"]
                items.append({"index": len(items), "source": source, "text": entry["text"],
                              "label": None if label is None else int(label)})
    return items


def split(items, part):
    """Labelled items of one part: "train" (the whole training split), "fit" (train minus validation),
    "validation", or "test" (held-out)."""
    keep = {
        "train": lambda i: not is_held_out(i),
        "fit": lambda i: not is_held_out(i) and not is_validation(i),
        "validation": is_validation,
        "test": is_held_out,
    }[part]
    return [it for it in items if keep(it["index"]) and it["label"] is not None]


def main():
    items = load_items(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_DIR)
    print(f"{len(items)} items, {sum(it['label'] is None for it in items)} unlabelled")
    for part in ("train", "fit", "validation", "test"):
        chosen = split(items, part)
        print(f"{part:10s} {len(chosen):5d} items, {sum(it['label'] for it in chosen):5d} positive")


if __name__ == "__main__":
    main()
