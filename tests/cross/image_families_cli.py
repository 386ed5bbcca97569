#!/usr/bin/python3
"""The image commands end to end on small random DINOv2 (Hugging Face names, 4 registers, classifier), DeiT III (timm
names) and CLIP (open_clip names, zero-shot over --labels) checkpoints written here: `explain --method all`, `heads`,
`query`, `distance`, `evaluate` and `attack fgsm` run and write what they promise; explanations cover the patches
only (the register tokens are prefix tokens: `raw` equals the head-mean CLS row of the last layer over the patch
columns of `capture`, `query` the patch's row); `capture` reports the layout. Then bad checkpoints and options: a
checkpoint no family matches names the families tried and the tensors looked for; a config that restates heads,
width, registers or the vocabulary differently from the weights; CLIP without its config or tokenizer files;
--labels for a model that is not CLIP; chefer-lrp asked for on DINOv2 and CLIP. Each must exit 2 with one line
"attnlens: error: ..." and write nothing.

Usage: image_families_cli.py PATH/TO/attnlens   Prints one line per check, then "N passed, M failed".
"""
import csv
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from image_family_support import Checks, randomise, write_model  # noqa: E402
import clip_vs_pytorch as clip_ref  # noqa: E402
import deit3_vs_pytorch as deit3_ref  # noqa: E402
import dinov2_vs_pytorch as dinov2_ref  # noqa: E402

PROMPTS = ["a photo of a cat", "a photo of a dog", "a diagram"]


def png(path, rgb):
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[r].tobytes() for r in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def models(tmp, gen):
    """The three small checkpoints: {name: (folder, extra args, prefix tokens, grid side, layers, heads)}."""
    labels = ["alpha", "beta", "gamma"]
    dino = dinov2_ref.Dinov2Reference(32, 2, 2, 64, 4, classes=3).eval()
    randomise(dino, gen)
    dinov2 = write_model(os.path.join(tmp, "dinov2"), dinov2_ref.hf_state(dino, "dinov2_with_registers."),
                         dinov2_ref.hf_config(dino, 2, labels))
    deit = deit3_ref.Deit3Reference(32, 2, 2, 16, 4, 3).eval()
    randomise(deit, gen)
    deit3 = write_model(os.path.join(tmp, "deit3"), deit3_ref.state(deit, ("ls1.gamma", "ls2.gamma")),
                        {"architecture": "deit3_small_patch16_224", "num_heads": 2, "labels": labels})
    vocab, merges = clip_ref.build_vocabulary(["a", "photo", "of", "cat", "dog", "diagram"])
    tokenizer = {"vocab.json": json.dumps(vocab, ensure_ascii=False),
                 "merges.txt": "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)}
    ref = clip_ref.ClipReference(32, 2, 2, 16, 4, 16, 2, 2, len(vocab), 16, "quick_gelu").eval()
    randomise(ref, gen)
    with torch.no_grad():
        ref.positional_embedding.copy_(0.5 * torch.randn(ref.positional_embedding.shape, generator=gen))
        ref.text_positions.copy_(0.5 * torch.randn(ref.text_positions.shape, generator=gen))
        ref.token_embedding.weight.copy_(torch.randn(ref.token_embedding.weight.shape, generator=gen))
    oc_config = {"model_cfg": {"embed_dim": 16, "quick_gelu": True,
                               "vision_cfg": {"image_size": 64, "layers": 2, "width": 32, "patch_size": 16,
                                              "head_width": 16},
                               "text_cfg": {"context_length": 77, "vocab_size": len(vocab), "width": 16, "heads": 2,
                                            "layers": 2}}}
    clip = write_model(os.path.join(tmp, "clip"), clip_ref.open_clip_state(ref), oc_config, "open_clip_config.json",
                       tokenizer)
    return {"DINOv2": (dinov2, ["--image-size", "56"], 5, 4, 2, 2),
            "DeiT III": (deit3, [], 1, 4, 2, 2),
            "CLIP": (clip, ["--labels", ",".join(PROMPTS)], 1, 4, 2, 2)}, (dino, deit, ref, oc_config, tokenizer)


def run(binary, *args):
    return subprocess.run([binary, *args], capture_output=True, text=True)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = os.path.abspath(sys.argv[1])
    start = time.time()
    gen = torch.Generator().manual_seed(5)
    rng = np.random.default_rng(5)
    checks = Checks()

    def ok_run(name, *args):
        proc = run(binary, *args)
        checks.record(proc.returncode == 0, f"{name}" + ("" if proc.returncode == 0 else
                                                          f": exit {proc.returncode}: {proc.stderr.strip()[-400:]}"))
        return proc.returncode == 0, proc

    with tempfile.TemporaryDirectory() as tmp:
        images = os.path.join(tmp, "images")
        os.makedirs(images)
        for i in range(3):  # coloured blocks on a noisy background, 70 x 80
            rgb = rng.integers(0, 60, (70, 80, 3), dtype=np.uint8)
            rgb[10 + 10 * i:40 + 10 * i, 20:50] = rng.integers(100, 256, 3, dtype=np.uint8)
            png(os.path.join(images, f"im{i}.png"), rgb)
        image = os.path.join(images, "im0.png")
        table, keep = models(tmp, gen)

        for family, (folder, extra, prefix, side, layers, heads) in table.items():
            patches = side * side
            out = os.path.join(tmp, "out_" + family.replace(" ", ""))
            m = ["--model", folder, *extra]
            # explain: every method, patch maps only
            good, _ = ok_run(f"{family}: explain --method all", "explain", images, *m, "--method", "all",
                             "--threshold", "0.6", "-q", "-o", out + "/explain")
            if good:
                shapes = {}
                for name in os.listdir(out + "/explain"):
                    if name.startswith("000_im0_") and name.endswith(".npy"):
                        shapes[name[len("000_im0_"):-4]] = np.load(os.path.join(out, "explain", name)).shape
                want = {k: (side, side) for k in ("raw", "rollout", "grad-rollout", "flow", "flow-metzger", "chefer",
                                                  "grad-sam", "agcam", "bi-attn", "bi-attn-token", "atman",
                                                  "attnlrp", "cp-lrp")}
                if family == "DeiT III":  # one CLS head: chefer-lrp applies (all leaves it out for DINOv2, CLIP)
                    want["chefer-lrp"] = (side, side)
                want["heads"] = (heads, side, side)
                with open(out + "/explain/heatmaps.csv") as f:
                    header = next(csv.reader(f))
                summary = json.load(open(out + "/explain/summary.json"))
                labels = {e["label"] for e in summary["images"]}
                checks.record(shapes == want and len(header) == 4 + patches and
                              os.path.exists(out + "/explain/index.html"),
                              f"{family}: explain wrote every method's [{side},{side}] patch map (heads "
                              f"[{heads},{side},{side}]), {patches} patch columns, index.html; labels {sorted(labels)}")
                if family == "CLIP":
                    checks.record(labels <= set(PROMPTS), f"CLIP: explain explains one of the prompts {labels}")
            # raw attention and query on the patches only: the prefix (CLS + registers) columns are left out
            x = os.path.join(tmp, f"x_{prefix}.npy")
            size = side * (14 if family == "DINOv2" else 16)
            np.save(x, rng.normal(size=(3, size, size)).astype(np.float32))
            good, proc = ok_run(f"{family}: capture", "capture", x, *m, "-o", out + "_att.npy")
            if good:
                checks.record(f"--prefix-tokens {prefix} --grid {side}x{side}" in proc.stdout,
                              f"{family}: capture reports the layout: {proc.stdout.strip().splitlines()[-1]}")
                att = np.load(out + "_att.npy")
                ok1, _ = ok_run(f"{family}: explain --method raw on a .npy", "explain", x, *m, "--method", "raw", "-q",
                                "-o", out + "/raw")
                ok2, _ = ok_run(f"{family}: query --query-patch 1,2", "query", x, *m, "--query-patch", "1,2", "-q",
                                "-o", out + "/query")
                if ok1 and ok2:
                    raw = np.load(out + "/raw/000_" + os.path.basename(x)[:-4] + "_raw.npy")
                    want_raw = att[-1].mean(0)[0, prefix:].reshape(side, side)
                    query = np.load(out + "/query/query_attention.npy")
                    want_query = att[:, :, prefix + 1 * side + 2, prefix:].reshape(layers, heads, side, side)
                    err = max(float(np.abs(raw - want_raw).max()), float(np.abs(query - want_query).max()))
                    checks.record(err < 1e-6, f"{family}: raw and query read the patch columns after the {prefix} "
                                              f"prefix tokens (max diff {err:.1e})")
            good, _ = ok_run(f"{family}: heads", "heads", image, *m, "-q", "-o", out + "/heads")
            if good:
                maps = np.load(out + "/heads/000_im0_heads.npy")
                checks.record(maps.shape == (heads, side, side) and os.path.exists(out + "/heads/000_im0_heads_grid.png"),
                              f"{family}: heads wrote [{heads},{side},{side}] maps and the grid")
            good, _ = ok_run(f"{family}: distance", "distance", images, *m, "-q", "-o", out + "/distance")
            if good:
                d = np.load(out + "/distance/distance.npy")
                checks.record(d.shape == (layers, heads) and np.isfinite(d).all() and (d > 0).all(),
                              f"{family}: distance [{layers},{heads}] in pixels")
            good, _ = ok_run(f"{family}: evaluate", "evaluate", *m, "--data", images, "--limit", "2", "--methods",
                             "raw,rollout,grad-rollout,chefer", "--metrics", "blankout,deletion,insertion,positive",
                             "-q", "-o", out + "/evaluate")
            if good:
                with open(out + "/evaluate/per_image.csv") as f:
                    rows = list(csv.DictReader(f))
                methods = sorted({r["method"] for r in rows})
                checks.record(os.path.exists(out + "/evaluate/report.html") and len(rows) == 2 * 7 and
                              os.path.exists(out + "/evaluate/summary.json"),
                              f"{family}: evaluate scored 2 images x {len(methods)} rows ({', '.join(methods)}), "
                              f"report.html")
            good, _ = ok_run(f"{family}: attack fgsm", "attack", "fgsm", *m, "--data", images, "--limit", "2",
                             "--max-iter", "3", "--mask-method", "raw,chefer", "-q", "-o", out + "/fgsm")
            if good:
                with open(out + "/fgsm/fgsm.csv") as f:
                    rows = list(csv.DictReader(f))
                checks.record(len(rows) == 2 * 5, f"{family}: attack fgsm: {len(rows)} rows (2 images x 5 arms)")

        # ---- bad input: exit 2, one error line, nothing written ----
        dino, deit, clip_model, oc_config, tokenizer = keep
        x56 = os.path.join(tmp, "x_5.npy")
        bad = {}
        bad["unknown family (BERT names)"] = (write_model(os.path.join(tmp, "bad_bert"), {
            "bert.embeddings.word_embeddings.weight": torch.zeros(10, 8),
            "classifier.weight": torch.zeros(2, 8)}), [],
            r"naming.*ViT/DeiT/DINO.*patch_embed\.proj\.weight.*DeiT III.*DINOv2.*CLIP")
        state = dinov2_ref.hf_state(dino, "dinov2_with_registers.")
        for key, value, pattern in [("num_register_tokens", 2, "num_register_tokens is 2 but the weights have 4"),
                                    ("hidden_size", 48, "hidden_size is 48 but the weights have 32"),
                                    ("num_attention_heads", 3, "heads"),
                                    ("use_swiglu_ffn", True, "use_swiglu_ffn")]:
            cfg = dict(dinov2_ref.hf_config(dino, 2, []), **{key: value})
            bad[f"DINOv2 config {key} = {value}"] = (write_model(os.path.join(tmp, f"bad_dino_{key}"), state, cfg),
                                                     ["--image-size", "56"], pattern)
        no_ls = {k: v for k, v in dinov2_ref.hub_state(dino).items() if k != "blocks.1.ls2.gamma"}
        bad["DINOv2 hub names without a LayerScale tensor"] = (
            write_model(os.path.join(tmp, "bad_dino_ls"), no_ls, {"num_heads": 2}), ["--image-size", "56"],
            r"missing tensor 'blocks\.1\.ls2\.gamma'")
        bad["--labels for a DINOv2 model"] = (table["DINOv2"][0], ["--image-size", "56", "--labels", "a,b"],
                                              "zero-shot.*CLIP")
        bad["DeiT III config num_heads 5"] = (write_model(os.path.join(tmp, "bad_deit"), deit3_ref.state(
            deit, ("ls1.gamma", "ls2.gamma")), {"num_heads": 5}), [], "heads")
        clip_state = clip_ref.open_clip_state(clip_model)
        bad["CLIP open_clip without open_clip_config.json"] = (
            write_model(os.path.join(tmp, "bad_clip_config"), clip_state, None, extra=tokenizer),
            ["--labels", "a photo"], "open_clip_config.json")
        bad["CLIP --labels without vocab.json/merges.txt"] = (
            write_model(os.path.join(tmp, "bad_clip_tok"), clip_state, oc_config, "open_clip_config.json"),
            ["--labels", "a photo"], r"(vocab\.json|merges\.txt).*no such file")
        wrong_vocab = json.loads(json.dumps(oc_config))
        wrong_vocab["model_cfg"]["text_cfg"]["vocab_size"] = 49408
        bad["CLIP config vocab_size 49408 for a smaller vocabulary"] = (
            write_model(os.path.join(tmp, "bad_clip_vocab"), clip_state, wrong_vocab, "open_clip_config.json",
                        tokenizer), ["--labels", "a photo"], "vocab_size is 49408 but the weights have")
        vocab = json.loads(tokenizer["vocab.json"])
        vocab["extra</w>"] = len(vocab)
        bad["CLIP vocab.json larger than the text embeddings"] = (
            write_model(os.path.join(tmp, "bad_clip_vocab2"), clip_state, oc_config, "open_clip_config.json",
                        dict(tokenizer, **{"vocab.json": json.dumps(vocab)})), ["--labels", "a photo"],
            "tokens, but the text tower embeds")
        bad["--pos-interpolation nearest"] = (table["DINOv2"][0], ["--image-size", "56", "--pos-interpolation",
                                                                   "nearest"], "pos-interpolation")
        commands = {name: (["explain", x56, "--method", "all"], ["predict", x56]) for name in bad}
        for family in ("DINOv2", "CLIP"):  # asked for by name, chefer-lrp refuses the families it does not fit
            name = f"--method chefer-lrp on {family}"
            bad[name] = (table[family][0], table[family][1], r"chefer-lrp needs a ViT with one CLS head")
            commands[name] = (["explain", x56, "--method", "chefer-lrp"],)
        for name, (folder, extra, pattern) in bad.items():
            for command in commands[name]:
                out = os.path.join(tmp, "never", re.sub(r"\W+", "_", name) + command[0])
                args = [*command, "--model", folder, *extra] + (["-o", out] if command[0] == "explain" else ["--json"])
                proc = run(binary, *args)
                lines = proc.stderr.strip().splitlines()
                problems = []
                if proc.returncode != 2:
                    problems.append(f"exit {proc.returncode}")
                if len(lines) != 1 or not lines[0].startswith("attnlens: error: "):
                    problems.append(f"stderr {lines}")
                elif not re.search(pattern, lines[0], re.I):
                    problems.append(f"message does not match /{pattern}/: {lines[0]}")
                if os.path.exists(out) or proc.stdout.strip():
                    problems.append("something was written")
                checks.record(not problems, f"bad input, {command[0]}: {name}"
                              + (": " + "; ".join(problems) if problems else f" -> {lines[0][17:][:110]}"))

    print(f"({time.time() - start:.1f} s)")
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
