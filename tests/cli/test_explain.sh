#!/usr/bin/env bash
# End-to-end checks of `attnlens explain` and `attnlens capture` on the bundled model:
# - every method writes its map, overlay, CSV row, summary and the HTML page;
# - rollout, flow, flow-metzger and raw from `explain` equal the `attention` subcommands run on the attention that
#   `capture` saved for the same image (one model pass, two routes to the same numbers);
# - predicted classes and logits agree with the reference logits the training tool stored for the samples.
# Env: ATTNLENS (binary), ATTNLENS_SOURCE (repository root). Prints "N passed, M failed".
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/harness.sh"
bin=$ATTNLENS
py=$PY
tmp=$T
root=${ATTNLENS_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
model=$root/data/models/fmnist-vit

samples=("$model"/samples/00_*.png "$model"/samples/01_*.png "$model"/samples/02_*.png)
check "explain all methods" "$bin" explain "${samples[@]}" --model "$model" --method all --threshold 0.6 -q -o "$tmp/out"
check "outputs exist" bash -c "for m in raw rollout grad-rollout flow flow-metzger chefer grad-sam heads agcam bi-attn bi-attn-token atman attnlrp cp-lrp \
  chefer-lrp; do
  for i in 000 001 002; do ls $tmp/out/\${i}_*_\$m.npy $tmp/out/\${i}_*_\$m.png >/dev/null || exit 1; done; done
  ls $tmp/out/000_*_heads_grid.png $tmp/out/index.html $tmp/out/summary.json $tmp/out/heatmaps.csv >/dev/null"
check "csv has one row per image and method" $py - "$tmp/out/heatmaps.csv" "$model/config.json" <<'EOF'
import csv, json, sys
rows = list(csv.reader(open(sys.argv[1])))
c = json.load(open(sys.argv[2]))
assert len(rows) == 1 + 3 * 15, len(rows)
patches = (c["image_size"] // c["patch_size"]) ** 2
assert len(rows[1]) == 4 + patches, len(rows[1])  # image, method, class, label, one column per patch
EOF
check "html embeds every overlay" $py - "$tmp/out/index.html" <<'EOF'
import sys
page = open(sys.argv[1]).read()
assert page.count("data:image/png;base64,") == 3 * (1 + 15 + 1), page.count("data:image/png;base64,")
assert "http://" not in page and "https://" not in page
EOF

# The same image through capture + the attention subcommands.
first=${samples[0]}
check "capture" "$bin" capture "$first" --model "$model" -o "$tmp/att.npy" --logits-output "$tmp/logits.npy" -q
check "attention rollout" "$bin" attention rollout "$tmp/att.npy" --query-row 0 --patches-only -q -o "$tmp/rollout.npy"
check "attention flow" "$bin" attention flow "$tmp/att.npy" --patches-only -q -o "$tmp/flow.npy"
check "attention flow-metzger" "$bin" attention flow-metzger "$tmp/att.npy" --patches-only -q -o "$tmp/metzger.npy"
check "attention raw" "$bin" attention raw "$tmp/att.npy" --query-row 0 --patches-only -q -o "$tmp/raw.npy"
check "explain equals attention subcommands" $py - "$tmp" <<'EOF'
import glob, sys
import numpy as np
tmp = sys.argv[1]
for method, name in [("rollout", "rollout"), ("flow", "flow"), ("flow-metzger", "metzger"), ("raw", "raw")]:
    a = np.load(glob.glob(f"{tmp}/out/000_*_{method}.npy")[0]).ravel()
    b = np.load(f"{tmp}/{name}.npy").ravel()
    err = np.abs(a - b).max()
    # explain runs the model on a batch of 3, capture on 1: float32 kernels may round differently
    assert err < 1e-5, (method, err)
    print(method, "max diff", err)
EOF
check "logits match the training tool's reference" $py - "$tmp/logits.npy" "$model/samples/samples.json" <<'EOF'
import json, sys
import numpy as np
logits = np.load(sys.argv[1])
ref = np.array(json.load(open(sys.argv[2]))[0]["reference_logits"])
err = np.abs(logits - ref).max()
assert err < 1e-4, err
print("max |logit diff| vs PyTorch", err)
EOF
check "predict json" bash -c "'$bin' predict '${samples[1]}' --model '$model' --json -k 2 > '$tmp/p.json'"
check "predicted class matches reference argmax" $py - "$tmp/p.json" "$model/samples/samples.json" <<'EOF'
import json, sys
import numpy as np
pred = json.load(open(sys.argv[1]))[0]["top"][0]["class"]
ref = json.load(open(sys.argv[2]))[1]["reference_logits"]
assert pred == int(np.argmax(ref)), (pred, ref)
EOF
check "category out of range exits 2 and writes nothing" bash -c "
  '$bin' explain '$first' --model '$model' --method chefer --category 10 -o '$tmp/bad' 2>'$tmp/err'; rc=\$?
  [ \$rc -eq 2 ] && grep -q 'attnlens: error:' '$tmp/err' && [ ! -e '$tmp/bad' ]"
check "unknown method exits 2" bash -c "'$bin' explain '$first' --model '$model' --method saliency -o '$tmp/bad2' 2>/dev/null; [ \$? -eq 2 ] && [ ! -e '$tmp/bad2' ]"

check "distance over images" "$bin" distance "${samples[@]}" --model "$model" -q -o "$tmp/dist"
check "distance outputs: [L,H], plausible pixels, an SVG with one dot per head and layer" $py - "$tmp/dist" "$model" <<'EOF2'
import json, sys, xml.dom.minidom
import numpy as np
out, model = sys.argv[1], sys.argv[2]
c = json.load(open(f"{model}/config.json"))
d = np.load(f"{out}/distance.npy")
assert d.shape == (c["depth"], c["num_heads"]), d.shape
grid = c["image_size"] // c["patch_size"]
longest = c["patch_size"] * np.hypot(grid - 1, grid - 1)
assert (d > 0).all() and (d < longest).all(), d
svg = xml.dom.minidom.parse(f"{out}/distance.svg")
assert len(svg.getElementsByTagName("circle")) >= d.size, len(svg.getElementsByTagName("circle"))
EOF2
check "heads grid" bash -c "'$bin' heads '$first' --model '$model' -q -o '$tmp/heads' && ls '$tmp'/heads/000_*_heads_grid.png"

check "query patch: rows of the captured attention" bash -c "'$bin' query '$first' --model '$model' --query-patch 1,2 -q -o '$tmp/query' && ls '$tmp/query/query_attention.png'"
check "query equals the captured attention row" $py - "$tmp" "$model/config.json" <<'EOF2'
import json, sys
import numpy as np
tmp, c = sys.argv[1], json.load(open(sys.argv[2]))
grid = c["image_size"] // c["patch_size"]
q = np.load(f"{tmp}/query/query_attention.npy")
att = np.load(f"{tmp}/att.npy")  # the same image through capture, above
token = 1 + 1 * grid + 2
want = att[:, :, token, 1:].reshape(q.shape)
assert np.abs(q - want).max() < 1e-6, np.abs(q - want).max()
EOF2
check "query patch outside the grid exits 2" bash -c "'$bin' query '$first' --model '$model' --query-patch 99,0 -o '$tmp/q2' 2>/dev/null; [ \$? -eq 2 ] && [ ! -e '$tmp/q2' ]"

finish
