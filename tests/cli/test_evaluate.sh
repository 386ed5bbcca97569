#!/usr/bin/env bash
# End-to-end checks of `attnlens evaluate` and `attnlens attack fgsm` on the bundled model and its sample canvases:
# outputs and their shapes, invariants of the numbers, --resume after an interruption, bad input (exit 2, nothing
# written), and both report.html pages rendered in headless Chromium (tests/cross/report_in_chromium.py).
# Env: ATTNLENS (binary), ATTNLENS_SOURCE (repository root). Prints "N passed, M failed".
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/harness.sh"
root=${ATTNLENS_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
model=$root/data/models/fmnist-vit
samples=$model/samples

# ---- evaluate ----
check "evaluate 6 canvases, 5 methods" "$ATTNLENS" evaluate --model "$model" --data "$samples" --limit 6 \
  --methods raw,rollout,grad-rollout,flow,chefer -q -o "$T/ev"
check "outputs exist" ls "$T/ev/per_image.csv" "$T/ev/summary.csv" "$T/ev/summary.json" "$T/ev/report.html" \
  "$T/ev/run.json"
check "per-image table: 6 images x 8 rows, values in range" "$PY" - "$T/ev/per_image.csv" <<'PYEOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
names = ["raw", "rollout", "grad-rollout", "flow", "chefer", "random", "centre", "blankout"]
assert ",raw," in open(sys.argv[1]).read().splitlines()[1]  # plain fields are not quoted
assert len(rows) == 48, len(rows)
assert [r["method"] for r in rows[:8]] == names
for r in rows:
    rho = float(r["spearman_blankout"]); assert -1 <= rho <= 1, r
    assert 0 <= float(r["top_overlap_blankout"]) <= 1
    for k in ("deletion_auc", "insertion_auc", "positive_auc", "negative_auc", "mass_in_box"):
        v = float(r[k]); assert 0 <= v <= 1, (k, v)
    assert r["pointing_hit"] in ("0", "1")
    assert float(r["spearman_vs_" + r["method"]]) > 0.999999  # a map against itself
    # The curves start from the same clean image for every method: p(predicted) at 0 removed patches.
    assert abs(float(r["deletion_0"]) - float(r["probability"])) < 1e-5, (r["deletion_0"], r["probability"])
    assert abs(float(r["insertion_20"]) - float(r["probability"])) < 1e-5  # all patches restored = the image
    assert float(r["milliseconds"]) >= 0
blank = [r for r in rows if r["method"] == "blankout"]
assert all(float(r["spearman_blankout"]) > 0.999999 for r in blank)
PYEOF
check "attention methods agree with blank-out far more than random maps" "$PY" - "$T/ev/summary.json" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))
rows = {r["method"]: r for r in s["rows"]}
assert s["images"] == 6
top = {m: r["top_overlap_blankout"]["mean"] for m, r in rows.items()}
assert min(top["raw"], top["rollout"], top["grad-rollout"], top["chefer"]) > top["random"] + 0.2, top
assert rows["centre"]["spearman_vs"]["centre"] > 0.999
assert len(rows["rollout"]["deletion_curve"]) == 21 and len(rows["rollout"]["positive_accuracy"]) == 10
PYEOF

# --resume: cut the table inside the third image's block (as a killed run leaves it) and continue.
cp "$T/ev/per_image.csv" "$T/full.csv"
head -c "$(( $(head -n 19 "$T/ev/per_image.csv" | wc -c) + 40 ))" "$T/full.csv" > "$T/ev/per_image.csv"
check "resume after an interruption" "$ATTNLENS" evaluate --model "$model" --data "$samples" --limit 6 \
  --methods raw,rollout,grad-rollout,flow,chefer --resume -q -o "$T/ev"
check "resumed table equals the uninterrupted one (timings aside)" "$PY" - "$T/full.csv" "$T/ev/per_image.csv" <<'PYEOF'
import csv, sys
a, b = (list(csv.DictReader(open(p))) for p in sys.argv[1:3])
assert len(a) == len(b) == 48, (len(a), len(b))
for x, y in zip(a, b):
    x.pop("milliseconds"); y.pop("milliseconds")
    for k in x:
        if x[k] != y[k]:
            assert abs(float(x[k]) - float(y[k])) < 1e-6, (k, x[k], y[k])
PYEOF
run evaluate --model "$model" --data "$samples" --limit 5 --methods raw,rollout,grad-rollout,flow,chefer --resume \
  -q -o "$T/ev"
check "resume with other options: exit 2" test "$RC" -eq 2
check "  says why" grep -q "another run" "$T/stderr"

# Bad input: exit 2, one line, nothing written.
bad() {  # bad NAME PATTERN ARGS...
  local name=$1 pattern=$2
  shift 2
  run evaluate --model "$model" -q -o "$T/bad" "$@"
  if [ "$RC" -eq 2 ] && grep -qE "$pattern" "$T/stderr" && [ ! -e "$T/bad" ]; then pass "$name"
  else fail "$name" "rc=$RC $(cat "$T/stderr")"; fi
}
bad "missing data" "no such|not found|does not exist" --data "$T/nope"
bad "unknown method" "unknown method" --data "$samples" --methods rollout,nope
bad "per-head method" "one map per head" --data "$samples" --methods heads
bad "unknown metric" "unknown metric" --data "$samples" --metrics blankout,nope
bad "unknown baseline" "unknown baseline" --data "$samples" --baselines nope
mkdir -p "$T/plain" && cp "$samples"/00_*.png "$samples"/01_*.png "$T/plain/"
bad "localisation without boxes" "needs boxes" --data "$T/plain" --metrics localization
check "a plain folder: predicted classes, no boxes" "$ATTNLENS" evaluate --model "$model" --data "$T/plain" \
  --methods rollout --metrics blankout,deletion -q -o "$T/plain_out"
check "  no localisation values" "$PY" - "$T/plain_out/per_image.csv" <<'PYEOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 2 * 4 and all(r["label"] == "-1" and r["pointing_hit"] == "" for r in rows)
PYEOF
if [ -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  check "the canvas set (4 canvases, shuffled)" "$ATTNLENS" evaluate --model "$model" --data canvas --limit 4 \
    --shuffle --seed 3 --methods rollout -q -o "$T/canvas"
  check "  4 images with boxes and labels" "$PY" - "$T/canvas/per_image.csv" <<'PYEOF'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["method"] == "rollout"]
assert len(rows) == 4 and all(r["id"].startswith("canvas:") and r["pointing_hit"] in "01" for r in rows), rows
PYEOF
fi

# ---- attack fgsm ----
check "fgsm on 4 canvases" "$ATTNLENS" attack fgsm --model "$model" --data "$samples" --limit 4 \
  --mask-method rollout,chefer --max-iter 15 --save 1 -q -o "$T/fgsm"
check "fgsm table and invariants" "$PY" - "$T/fgsm/fgsm.csv" "$T/fgsm/fgsm.json" <<'PYEOF'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 4 * 5, len(rows)  # rollout in/out, chefer in/out, random
arms = {(r["method"], r["region"]) for r in rows}
assert arms == {("rollout", "inside"), ("rollout", "outside"), ("chefer", "inside"), ("chefer", "outside"),
                ("-", "random")}, arms
for r in rows:
    it = int(r["iterations"]); ok = r["success"] == "1"
    assert 1 <= it <= 15 if ok else it == 15, r
    assert (r["final_class"] != r["original"]) == ok, r  # untargeted: success means the class changed
j = json.load(open(sys.argv[2]))
assert j["patches_attacked"] == 6 and len(j["arms"]) == 5
PYEOF
check "fgsm saved an adversarial image and its mask" ls "$T/fgsm/adversarial_0_rollout_inside.png" \
  "$T/fgsm/mask_0_rollout_inside.png"
check "fgsm changes pixels inside its mask only, by at most iterations x eps" "$PY" - "$T/fgsm" "$samples" <<'PYEOF'
import csv, sys, zlib
import numpy as np
def png(path):  # 8-bit grey or RGB PNG written by attnlens (OpenCV) or the training tool, any filter type
    data = open(path, "rb").read(); pos = 8; idat = b""
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big"); kind = data[pos + 4:pos + 8]; body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR": w, h, ctype = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big"), body[9]
        if kind == b"IDAT": idat += body
        pos += 12 + n
    ch = {0: 1, 2: 3}[ctype]; raw = zlib.decompress(idat); stride = w * ch
    out = np.zeros((h, stride), np.int32); prev = np.zeros(stride, np.int32)
    for r in range(h):
        f = raw[r * (stride + 1)]; line = np.frombuffer(raw, np.uint8, stride, r * (stride + 1) + 1).astype(np.int32)
        cur = np.zeros(stride, np.int32)
        for i in range(stride):
            a = cur[i - ch] if i >= ch else 0; b = prev[i]; c = prev[i - ch] if i >= ch else 0
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = [0, a, b, (a + b) // 2, a if pa <= pb and pa <= pc else (b if pb <= pc else c)][f]
            cur[i] = (line[i] + pred) & 255
        out[r] = cur; prev = cur
    return out.reshape(h, w, ch)
out, samples = sys.argv[1], sys.argv[2]
row = next(r for r in csv.DictReader(open(out + "/fgsm.csv")) if r["index"] == "0" and r["method"] == "rollout"
           and r["region"] == "inside")
adv = png(out + "/adversarial_0_rollout_inside.png")[..., 0]
mask = png(out + "/mask_0_rollout_inside.png")[..., 0] > 0
orig = png(samples + "/00_ankle-boot.png")[..., 0]
assert mask.sum() == 6 * 49, mask.sum()  # 6 of 64 patches, 7x7 pixels each
assert (adv[~mask] == orig[~mask]).all()
assert np.abs(adv - orig).max() <= int(row["iterations"]) + 1  # one 8-bit level per step of eps = 1/255
assert (adv[mask] != orig[mask]).any()
PYEOF
check "targeted fgsm: success means the target class" bash -c "'$ATTNLENS' attack fgsm --model '$model' \
  --data '$samples' --limit 3 --mask-method rollout --region outside --target 0 --max-iter 40 --save 0 -q \
  -o '$T/fgsm_t' && awk -F, 'NR > 1 && \$7 == 1 { any = 1; if (\$9 != 0) bad = 1 } END { exit bad || !any }' '$T/fgsm_t/fgsm.csv'"
run attack fgsm --model "$model" --data "$samples" --region nowhere -q -o "$T/fgsm_bad"
check "fgsm bad region: exit 2, nothing written" test "$RC" -eq 2 -a ! -e "$T/fgsm_bad"
run attack fgsm --model "$model" --data "$samples" --target 10 -q -o "$T/fgsm_bad"
check "fgsm target out of range: exit 2" test "$RC" -eq 2 -a ! -e "$T/fgsm_bad"

# ---- the reports in a browser ----
check "evaluate report renders in Chromium" "$PY" "$root/tests/cross/report_in_chromium.py" --min-svg 5 \
  --min-images 12 "$T/ev/report.html"
check "fgsm report renders in Chromium" "$PY" "$root/tests/cross/report_in_chromium.py" --min-svg 5 --min-images 2 \
  "$T/fgsm/report.html"
check "the checker itself fails broken pages" "$PY" "$root/tests/cross/report_in_chromium.py" --self-test

# ---- threads: the default is the free cores, so a busy machine gets one thread, not spinning ones ----
check "evaluate's default threads leave a busy core alone" bash -c "
  '$PY' -c 'while True: pass' & hog=\$!
  trap 'kill \$hog' EXIT
  sleep 0.5
  '$ATTNLENS' evaluate --model '$model' --data '$samples' --limit 1 --methods raw --metrics blankout -q -o '$T/ev_threads' &&
  '$PY' -c \"
import json, os, sys
s = json.load(open('$T/ev_threads/summary.json'))
cores = os.cpu_count()
assert s['threads'] <= max(1, cores - 1), (s['threads'], cores)
\""
check "an explicit --threads is kept" bash -c "
  '$ATTNLENS' evaluate --model '$model' --data '$samples' --limit 1 --methods raw --metrics blankout --threads 3 -q \
    -o '$T/ev_threads3' && grep -q '\"threads\": 3' '$T/ev_threads3/summary.json'"

finish
