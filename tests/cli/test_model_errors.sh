#!/usr/bin/env bash
# Bad inputs to the model-backed subcommands (`attnlens predict`, `attnlens capture`): each must exit 2 with exactly
# one stderr line "attnlens: error: ..." (naming what is wrong where that matters) and write no output file.
# A tiny valid timm-named ViT (image 16, patch 8, width 8, depth 2, 2 heads, 3 classes) is built with NumPy first and
# checked to work; the bad models are corrupted copies of it. Run by CTest with ATTNLENS=<path to the binary>; uses
# /usr/bin/python3 with NumPy.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/harness.sh"

# Output folder of the next error case: D=$T/errN (not created; attnlens must not create files in it).
err_count=0
newdir() {
  err_count=$((err_count + 1))
  D=$T/err$err_count
  mkdir -p "$D"
}

# err NAME PATTERN ARGS...: expects exit code 2, exactly one stderr line "attnlens: error: ..." matching the
# extended regex PATTERN (case-insensitive; "" = any), nothing on stdout, and the folder $D still empty.
err() {
  local name=$1 pattern=$2
  shift 2
  run "$@"
  local problems=""
  [ "$RC" -eq 2 ] || problems+="exit code $RC, expected 2; "
  [ "$(wc -l <"$T/stderr")" -eq 1 ] || problems+="stderr has $(wc -l <"$T/stderr") lines; "
  head -n 1 "$T/stderr" | grep -q '^attnlens: error: ' || problems+="no 'attnlens: error:' line; "
  if [ -n "$pattern" ] && ! grep -qiE -- "$pattern" "$T/stderr"; then problems+="message does not match /$pattern/; "; fi
  [ ! -s "$T/stdout" ] || problems+="stdout not empty; "
  if [ -n "$(ls -A "$D")" ]; then problems+="files left in $D: $(ls -A "$D" | tr '\n' ' '); "; fi
  if [ -z "$problems" ]; then pass "$name"; else fail "$name: $problems" "$(cat "$T/stderr" "$T/stdout")"; fi
}

# err_capture NAME PATTERN MODEL [INPUT] [more args]: `capture` with -o and --logits-output in a fresh $D.
err_capture() {
  local name=$1 pattern=$2 model=$3 input=${4:-$T/x.npy}
  shift 3
  [ $# -gt 0 ] && shift
  newdir
  err "capture: $name" "$pattern" capture "$input" --model "$model" -o "$D/att.npy" --logits-output "$D/logits.npy" -q "$@"
}

# err_predict NAME PATTERN MODEL [INPUT] [more args]: `predict --json` (writes only to stdout, which must stay empty).
err_predict() {
  local name=$1 pattern=$2 model=$3 input=${4:-$T/x.npy}
  shift 3
  [ $# -gt 0 ] && shift
  newdir
  err "predict: $name" "$pattern" predict "$input" --model "$model" --json "$@"
}

# ---------------------------------------------------------------------------------------------------------------
# Fixtures: the tiny model (folder good/), its corrupted copies, inputs.
# ---------------------------------------------------------------------------------------------------------------
(cd "$T" && "$PY" - <<'EOF'
import json, os, shutil, struct, zlib
import numpy as np

rng = np.random.default_rng(3)
D, F, DEPTH, PATCH, GRID, C = 8, 32, 2, 8, 2, 3

def tensors():
    t = {"cls_token": rng.normal(0, 0.5, (1, 1, D)), "pos_embed": rng.normal(0, 0.1, (1, 1 + GRID * GRID, D)),
         "patch_embed.proj.weight": rng.normal(0, 0.1, (D, 3, PATCH, PATCH)), "patch_embed.proj.bias": rng.normal(0, 0.1, D)}
    for b in range(DEPTH):
        p = f"blocks.{b}."
        t[p + "norm1.weight"] = 1 + rng.normal(0, 0.1, D); t[p + "norm1.bias"] = rng.normal(0, 0.1, D)
        t[p + "attn.qkv.weight"] = rng.normal(0, 0.3, (3 * D, D)); t[p + "attn.qkv.bias"] = rng.normal(0, 0.1, 3 * D)
        t[p + "attn.proj.weight"] = rng.normal(0, 0.3, (D, D)); t[p + "attn.proj.bias"] = rng.normal(0, 0.1, D)
        t[p + "norm2.weight"] = 1 + rng.normal(0, 0.1, D); t[p + "norm2.bias"] = rng.normal(0, 0.1, D)
        t[p + "mlp.fc1.weight"] = rng.normal(0, 0.3, (F, D)); t[p + "mlp.fc1.bias"] = rng.normal(0, 0.1, F)
        t[p + "mlp.fc2.weight"] = rng.normal(0, 0.3, (D, F)); t[p + "mlp.fc2.bias"] = rng.normal(0, 0.1, D)
    t["norm.weight"] = 1 + rng.normal(0, 0.1, D); t["norm.bias"] = rng.normal(0, 0.1, D)
    t["head.weight"] = rng.normal(0, 0.5, (C, D)); t["head.bias"] = rng.normal(0, 0.1, C)
    return t

def encode(tensors, dtypes=None):
    """safetensors bytes; every tensor F32 unless dtypes names another numpy dtype and safetensors spelling."""
    header, chunks, offset = {}, [], 0
    for name, a in tensors.items():
        np_dtype, st_dtype = (dtypes or {}).get(name, ("<f4", "F32"))
        data = np.ascontiguousarray(a, dtype=np_dtype).tobytes()
        header[name] = {"dtype": st_dtype, "shape": list(np.shape(a)), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)

CONFIG = {"num_heads": 2, "layer_norm_eps": 1e-6, "labels": ["alpha", "beta", "gamma"],
          "preprocess": {"preset": "none", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}

def model(folder, weights=None, config=CONFIG, raw=None):
    os.makedirs(folder)
    with open(os.path.join(folder, "model.safetensors"), "wb") as f:
        f.write(raw if raw is not None else encode(weights))
    if config is not None:
        with open(os.path.join(folder, "config.json"), "w") as f:
            f.write(config if isinstance(config, str) else json.dumps(config))

good = tensors()
model("good", good)
good_bytes = encode(good)

model("missing_tensor", {k: v for k, v in good.items() if k != "blocks.1.norm2.bias"})
model("misshaped", dict(good, **{"blocks.1.attn.proj.weight": good["blocks.1.attn.proj.weight"][:, :7]}))
model("misshaped_head_bias", dict(good, **{"head.bias": np.zeros(4)}))
model("nan_tensor", dict(good, **{"blocks.0.mlp.fc2.bias": np.full(D, np.nan)}))
model("int_tensor", good, raw=encode(good, {"blocks.0.norm1.weight": ("<i4", "I32")}))
bert = {"bert.embeddings.word_embeddings.weight": rng.normal(size=(20, D)),
        "bert.encoder.layer.0.attention.self.query.weight": rng.normal(size=(D, D)),
        "bert.encoder.layer.0.attention.self.query.bias": rng.normal(size=D),
        "classifier.weight": rng.normal(size=(C, D)), "classifier.bias": rng.normal(size=C)}
model("bert", bert)
model("truncated", raw=good_bytes[:-10])
model("truncated_header", raw=good_bytes[:40])
model("garbage", raw=bytes(rng.integers(0, 256, 4096, dtype=np.uint8)))
model("garbage_header", raw=struct.pack("<Q", 32) + b"{this is not json at all!!!!!!!}" + good_bytes[-64:])
model("tiny_file", raw=b"\x01\x02\x03")
model("empty_file", raw=b"")
model("bad_json", good, config='{"num_heads": 2, "labels": ["alpha", "beta",')
model("config_array", good, config="[1, 2, 3]")
model("labels_2", good, config=dict(CONFIG, labels=["alpha", "beta"]))
model("labels_4", good, config=dict(CONFIG, labels=["alpha", "beta", "gamma", "delta"]))
model("id2label_gap", good, config={"num_heads": 2, "id2label": {"0": "a", "2": "c", "3": "d"}})
model("heads_3", good, config=dict(CONFIG, num_heads=3))
model("heads_string", good, config=dict(CONFIG, num_heads="two"))
model("no_config", good, config=None)   # width 8: the number of heads cannot be inferred
model("backbone", {k: v for k, v in good.items() if not k.startswith("head.")})
os.makedirs("empty_dir")

x = rng.normal(size=(3, 16, 16)).astype(np.float32)
np.save("x.npy", x)
np.save("x_batch1.npy", x[None])
np.save("x_8x8.npy", x[:, :8, :8])
np.save("x_4ch.npy", np.concatenate([x, x[:1]]))
np.save("x_rank2.npy", x[0])
np.save("x_int.npy", np.ones((3, 16, 16), dtype=np.int32))
xn = x.copy(); xn[1, 2, 3] = np.nan
np.save("x_nan.npy", xn)
open("x_text.npy", "w").write("not a numpy file\n")
open("x.png", "w").write("this is a text file, not a PNG\n")

def png_rgb(path, image):
    h, w, _ = image.shape
    raw = b"".join(b"\x00" + image[r].tobytes() for r in range(h))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    open(path, "wb").write(png)
    return png

png = png_rgb("real.png", rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
open("truncated.png", "wb").write(png[:60])
open("empty.png", "wb").write(b"")
try:  # a JPEG cut in half (Debian's python3-pil writes it; the case is skipped without)
    from PIL import Image
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save("real.jpg", quality=90)
    jpeg = open("real.jpg", "rb").read()
    open("truncated.jpg", "wb").write(jpeg[: len(jpeg) // 2])
except ImportError:
    pass
EOF
)
M=$T/good

# ---------------------------------------------------------------------------------------------------------------
# The tiny model works.
# ---------------------------------------------------------------------------------------------------------------
run predict "$T/x.npy" --model "$M" --json -k 3
if [ "$RC" -eq 0 ] && "$PY" -c '
import json, sys
top = json.load(open(sys.argv[1]))[0]["top"]
assert len(top) == 3, top
assert sorted(t["label"] for t in top) == ["alpha", "beta", "gamma"], top
assert abs(sum(t["probability"] for t in top) - 1) < 1e-9, top
' "$T/stdout" 2>"$T/py.log"; then
  pass "predict on the tiny valid model"
else
  fail "predict on the tiny valid model (exit $RC)" "$(cat "$T/stderr" "$T/stdout" "$T/py.log")"
fi

mkdir -p "$T/ok"
run capture "$T/x.npy" --model "$M" -o "$T/ok/att.npy" --logits-output "$T/ok/logits.npy" -q
if [ "$RC" -eq 0 ] && "$PY" -c '
import numpy as np, sys
a, l = np.load(sys.argv[1] + "/att.npy"), np.load(sys.argv[1] + "/logits.npy")
assert a.shape == (2, 2, 5, 5) and l.shape == (3,), (a.shape, l.shape)
assert np.allclose(a.sum(-1), 1, atol=1e-5) and (a >= 0).all()
' "$T/ok" 2>"$T/py.log"; then
  pass "capture on the tiny valid model: [2,2,5,5] attention, 3 logits"
else
  fail "capture on the tiny valid model (exit $RC)" "$(cat "$T/stderr" "$T/py.log")"
fi

run predict "$T/real.png" "$T/x_batch1.npy" --model "$M/model.safetensors" -k 2
if [ "$RC" -eq 0 ] && grep -q real.png "$T/stdout" && grep -q x_batch1.npy "$T/stdout"; then
  pass "predict on a PNG and a [1,3,H,W] .npy, model given as the .safetensors file"
else
  fail "predict on a PNG and a [1,3,H,W] .npy (exit $RC)" "$(cat "$T/stderr" "$T/stdout")"
fi

# ---------------------------------------------------------------------------------------------------------------
# Bad models
# ---------------------------------------------------------------------------------------------------------------
err_predict "missing model folder" "nope" "$T/nope"
err_capture "missing model folder" "nope" "$T/nope"
err_capture "missing .safetensors file" "nope\.safetensors" "$T/nope.safetensors"
err_capture "folder without model.safetensors" "empty_dir" "$T/empty_dir"
err_predict "unknown tensor naming (BERT names)" "naming" "$T/bert"
err_capture "unknown tensor naming (BERT names)" "naming" "$T/bert"
err_predict "missing tensor" "blocks\.1\.norm2\.bias" "$T/missing_tensor"
err_capture "missing tensor" "blocks\.1\.norm2\.bias" "$T/missing_tensor"
err_capture "mis-shaped tensor names it and both shapes" \
  "blocks\.1\.attn\.proj\.weight.*\[8, ?7\].*\[8, ?8\]" "$T/misshaped"
err_capture "mis-shaped head bias" "head\.bias.*\[4\].*\[3\]" "$T/misshaped_head_bias"
err_capture "NaN in a tensor" "blocks\.0\.mlp\.fc2\.bias" "$T/nan_tensor"
err_capture "integer dtype for a weight" "blocks\.0\.norm1\.weight" "$T/int_tensor"
err_predict "truncated safetensors" "truncated/model\.safetensors" "$T/truncated"
err_capture "truncated safetensors" "truncated/model\.safetensors" "$T/truncated"
err_capture "safetensors cut inside its header" "" "$T/truncated_header"
err_capture "random bytes as safetensors" "" "$T/garbage"
err_capture "garbage JSON header" "header" "$T/garbage_header"
err_capture "3-byte safetensors" "" "$T/tiny_file"
err_capture "empty safetensors" "" "$T/empty_file"
err_capture "safetensors with a text file as weights" "" "$T/x.png"

# ---------------------------------------------------------------------------------------------------------------
# Bad config.json
# ---------------------------------------------------------------------------------------------------------------
err_predict "config.json is invalid JSON" "config\.json" "$T/bad_json"
err_capture "config.json is invalid JSON" "config\.json" "$T/bad_json"
err_capture "config.json is not an object" "config\.json" "$T/config_array"
err_predict "2 labels for 3 classes" "2 labels for 3 classes" "$T/labels_2"
err_capture "4 labels for 3 classes" "4 labels for 3 classes" "$T/labels_4"
err_capture "id2label ids not 0..C-1" "id2label" "$T/id2label_gap"
err_capture "num_heads does not divide the width" "head" "$T/heads_3"
err_capture "num_heads of the wrong type" "num_heads" "$T/heads_string"
err_capture "no config.json and width 8: heads unknown" "num_heads" "$T/no_config"
err_predict "predict with a bare backbone (no head)" "head|backbone" "$T/backbone"

# ---------------------------------------------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------------------------------------------
err_predict "text file named x.png" "x\.png" "$M" "$T/x.png"
err_capture "text file named x.png" "x\.png" "$M" "$T/x.png"
err_capture "truncated PNG" "truncated\.png" "$M" "$T/truncated.png"
if [ -e "$T/truncated.jpg" ]; then
  err_capture "JPEG cut in half" "truncated\.jpg" "$M" "$T/truncated.jpg"
else
  echo "skip   JPEG cut in half (no python3-pil to write a JPEG)"
fi
err_capture "empty PNG" "empty\.png" "$M" "$T/empty.png"
err_capture "missing image" "missing\.png" "$M" "$T/missing.png"
err_predict "missing .npy among good inputs" "missing\.npy" "$M" "$T/missing.npy"
err_predict ".npy of the wrong size (8x8 for a 16x16 model)" "x_8x8\.npy" "$M" "$T/x_8x8.npy"
err_capture ".npy of the wrong size (8x8 for a 16x16 model)" "x_8x8\.npy" "$M" "$T/x_8x8.npy"
err_capture ".npy with 4 channels" "x_4ch\.npy" "$M" "$T/x_4ch.npy"
err_capture ".npy of rank 2" "x_rank2\.npy" "$M" "$T/x_rank2.npy"
err_capture "int32 .npy" "x_int\.npy" "$M" "$T/x_int.npy"
err_capture ".npy with NaN" "x_nan\.npy" "$M" "$T/x_nan.npy"
err_capture "text file named .npy" "x_text\.npy" "$M" "$T/x_text.npy"
newdir
err "predict: one bad file among good ones prints nothing" "x_8x8\.npy" \
  predict "$T/x.npy" "$T/x_8x8.npy" --model "$M" --json

# ---------------------------------------------------------------------------------------------------------------
# Bad options
# ---------------------------------------------------------------------------------------------------------------
err_predict "--device cuda without CUDA" "cuda" "$M" "$T/x.npy" --device cuda
err_capture "--device cuda without CUDA" "cuda" "$M" "$T/x.npy" --device cuda
err_capture "--device tpu" "device" "$M" "$T/x.npy" --device tpu
err_capture "--image-size not a multiple of the patch" "patch" "$M" "$T/x.npy" --image-size 20
newdir
err "capture: output with unknown extension" "att\.txt" capture "$T/x.npy" --model "$M" -o "$D/att.txt" -q
newdir
err "capture: --logits-output with unknown extension" "logits\.bin" \
  capture "$T/x.npy" --model "$M" -o "$D/att.npy" --logits-output "$D/logits.bin" -q
newdir
err "capture: output without extension" "" capture "$T/x.npy" --model "$M" -o "$D/att" -q
newdir
err "capture: missing -o" "" capture "$T/x.npy" --model "$M" -q
newdir
err "predict: -k 0" "" predict "$T/x.npy" --model "$M" -k 0
newdir
err "predict: no images" "" predict --model "$M"

# A failing capture leaves an existing output untouched.
mkdir -p "$T/keep"
echo OLD >"$T/keep/att.npy"
run capture "$T/x_8x8.npy" --model "$M" -o "$T/keep/att.npy" -q
if [ "$RC" -eq 2 ] && [ "$(cat "$T/keep/att.npy")" = OLD ] && [ "$(ls -A "$T/keep")" = att.npy ]; then
  pass "failing capture leaves an existing output untouched"
else
  fail "failing capture leaves an existing output untouched (exit $RC)" "$(ls -A "$T/keep"; cat "$T/stderr")"
fi

finish
