#!/usr/bin/env python3
"""The faithfulness leaderboard of an `attnlens evaluate` run, as a Markdown table sorted by deletion AUC.

    attnlens evaluate --data canvas --limit 500 --methods all -o out/eval
    attnlens evaluate --text --methods all -o out/eval-text
    python3 tools/leaderboard.py out/eval/summary.json        # or out/eval-text/summary.json

Each metric is mean ± std over images (texts). The cost column is the mean time per image (text) in units of the
`raw` row's: raw attention costs the model pass the attention methods share plus a negligible selection, so the
column counts model passes. That pass is a forward when no attention method of the run needs gradients, else a
forward + backward (every attention method is charged the pass it shares). Measured in the same run, so the ratio
does not depend on the machine's speed.
"""
import json
import sys

COLUMNS = [  # (key, heading), shown when some row has the metric
    ("deletion_auc", "deletion AUC ↓"),
    ("insertion_auc", "insertion AUC ↑"),
    ("spearman_blankout", "Spearman vs blank-out"),
    ("top_overlap_blankout", "top-k overlap"),
    ("saco", "SaCo ↑"),
    ("positive_auc", "positive pert. AUC ↓"),
    ("negative_auc", "negative pert. AUC ↑"),
    ("pointing_hit", "pointing"),
    ("word_attack_auc", "word attack AUC ↓"),
]


def cell(row, key):
    m = row.get(key)
    if not m:
        return "–"
    return f"{m['mean']:.3f} ± {m['std']:.3f}" if key != "pointing_hit" else f"{m['mean']:.3f}"


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    with open(sys.argv[1]) as f:
        summary = json.load(f)
    rows = summary["rows"]
    shown = [(k, h) for k, h in COLUMNS if any(k in r for r in rows)]
    unit = next((r["milliseconds"]["mean"] for r in rows if r["method"] == "raw" and "milliseconds" in r), None)
    rows = sorted(rows, key=lambda r: r.get("deletion_auc", {"mean": float("inf")})["mean"])
    head = ["method"] + [h for _, h in shown] + ["ms", "cost (× raw)"]
    print("| " + " | ".join(head) + " |")
    print("| " + " | ".join("---" for _ in head) + " |")
    for r in rows:
        ms = r.get("milliseconds", {}).get("mean")
        cost = f"{ms / unit:.1f}" if ms and unit else "–"
        print("| " + " | ".join([r["method"]] + [cell(r, k) for k, _ in shown] +
                                [f"{ms:.1f}" if ms is not None else "–", cost]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
