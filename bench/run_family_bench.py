#!/usr/bin/python3
"""Forward pass of the model families against PyTorch eager, one thread, random weights at the real shapes:

  dinov2      DINOv2-S/14 with 4 registers (384 wide, 12 layers, 6 heads, MLP 1536) with a classifier, 224 px,
              Hugging Face names; PyTorch side: the independent torch.nn model of tests/cross/dinov2_vs_pytorch.py
              (nn.MultiheadAttention without attention weights: its fastest inference path);
  distilbert  DistilBERT-base (768 wide, 6 layers, 12 heads, FFN 3072, vocabulary 30,522), 128 tokens; PyTorch side:
              the torch.nn model of tests/cross/text_families_vs_pytorch.py.

attnlens' side is bench/forward_time.cpp (load_image_classifier / load_text_classifier on the same safetensors).
Both sides alternate `--rounds` times so that load on the shared machine hits both alike; the ratio of the medians
(and of the best rounds) is printed. The logits of both are compared first: they must be the same computation.

Usage: run_family_bench.py BUILD_DIR [--family dinov2|distilbert|all] [--batch 1] [--seconds 2] [--rounds 5]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "cross"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from safetensors_file import write_safetensors  # noqa: E402


def eager_ms(forward, seconds):
    forward()  # warm-up
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or runs < 3:
        forward()
        runs += 1
    return (time.perf_counter() - start) / runs * 1e3


def dinov2_case(tmp, batch):
    """(model folder, timer arguments, eager forward, reference logits of input 0)."""
    import dinov2_vs_pytorch as ref
    from image_family_support import randomise
    gen = torch.Generator().manual_seed(0)
    model = ref.Dinov2Reference(384, 12, 6, 1536, 4, classes=1000).eval()
    randomise(model, gen)
    labels = [f"class {i}" for i in range(1000)]
    folder = os.path.join(tmp, "dinov2")
    os.makedirs(folder)
    write_safetensors(os.path.join(folder, "model.safetensors"), ref.hf_state(model, "dinov2_with_registers."))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(ref.hf_config(model, 6, labels), f)
    x = torch.randn(batch, 3, 224, 224, generator=gen)
    raw = os.path.join(tmp, "images.f32")
    x.numpy().astype("float32").tofile(raw)

    with torch.no_grad():  # resampled once, as attnlens does at load (Hugging Face resamples in every forward)
        positions = model.positions(16, 16, "antialias")

    def fast_forward():  # the reference's forward with need_weights=False in every block
        b = x.shape[0]
        t = model.patch_embed(x).flatten(2).transpose(1, 2)
        t = torch.cat([model.cls_token.expand(b, -1, -1), t], 1) + positions
        t = torch.cat([t[:, :1], model.register_tokens.expand(b, -1, -1), t[:, 1:]], 1)
        for blk in model.blocks:
            h = blk.norm1(t)
            t = t + blk.attn(h, h, h, need_weights=False)[0] * blk.ls1
            t = t + blk.fc2(torch.nn.functional.gelu(blk.fc1(blk.norm2(t)))) * blk.ls2
        t = model.norm(t)
        return model.head(torch.cat([t[:, 0], t[:, 5:].mean(1)], 1))

    with torch.no_grad():
        want = model(x, "antialias")[0]
        assert (fast_forward()[0] - want).abs().max() < 1e-4
    return (f"DINOv2-S/14 + 4 registers, batch {batch} x 224 px", ["image", folder, raw, str(batch), "224"],
            fast_forward, want.tolist())


def distilbert_case(tmp, batch):
    from text_families_vs_pytorch import DistilBert
    torch.manual_seed(0)
    model = DistilBert(30522, 768, 12, 6, 3072, 512, 2, std=0.02).eval()
    ids = torch.randint(1000, 30522, (batch, 128))
    folder = os.path.join(tmp, "distilbert")
    os.makedirs(folder)
    write_safetensors(os.path.join(folder, "model.safetensors"), model.hf_tensors())
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(model.config(2), f)
    with open(os.path.join(tmp, "ids.json"), "w") as f:
        json.dump(ids.tolist(), f)
    with torch.no_grad():
        want = model(ids)[0][0].tolist()
    return (f"DistilBERT-base, batch {batch} x 128 tokens", ["text", folder, os.path.join(tmp, "ids.json")],
            lambda: model(ids), want)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("build")
    p.add_argument("--family", choices=["dinov2", "distilbert", "all"], default="all")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    families = ["dinov2", "distilbert"] if args.family == "all" else [args.family]
    for family in families:
        with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
            title, timer_args, forward, want = (dinov2_case if family == "dinov2" else distilbert_case)(tmp, args.batch)
            timer = [os.path.join(args.build, "forward_time"), *timer_args, str(args.seconds)]
            ours, theirs = [], []
            for _ in range(args.rounds):
                theirs.append(eager_ms(forward, args.seconds))
                out = subprocess.run(timer, capture_output=True, text=True, check=True).stdout
                lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
                ours.append(float(lines["forward_ms"]))
            logits = [float(v) for v in lines["logits"].split()]
            worst = max(abs(a - b) for a, b in zip(logits, want))
            assert len(logits) == len(want) and worst < 1e-4, (logits[:4], want[:4])
            print(f"{title}, 1 thread, {args.rounds} alternating rounds of {args.seconds:g} s "
                  f"(logits agree to {worst:.1e}):")
            print(f"  attnlens ms: {', '.join(f'{v:.1f}' for v in ours)}")
            print(f"  PyTorch eager ms: {', '.join(f'{v:.1f}' for v in theirs)}")
            print(f"  attnlens / PyTorch = {statistics.median(ours) / statistics.median(theirs):.3f}x (medians), "
                  f"{min(ours) / min(theirs):.3f}x (best rounds)", flush=True)


if __name__ == "__main__":
    main()
