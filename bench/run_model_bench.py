#!/usr/bin/python3
"""Model benchmarks in one run: a DeiT-tiny-shaped ViT (12 layers, width 192, 3 heads, 224x224, patch 16) with
random weights, timed
  1. in PyTorch eager from Python (Debian's python3-torch: the same LibTorch kernels), forward only, and
  2. by bench/bench_models.cpp (attnlens' C++ model): forward, and the explanations relative to their model pass.
Both on one thread. Prints the ratios.

Usage: run_model_bench.py BUILD_DIR [--batch 8] [--seconds 3]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import train_fmnist_vit as vit  # noqa: E402  (timm-layout ViT and the safetensors writer)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("build")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = vit.VisionTransformer(224, 16, 192, 12, 3, 4, 1000).eval()
    x = torch.randn(args.batch, 3, 224, 224)
    with tempfile.TemporaryDirectory() as tmp:
        vit.write_safetensors(os.path.join(tmp, "model.safetensors"), model.state_dict(), {"format": "pt"})
        with open(os.path.join(tmp, "config.json"), "w") as f:
            f.write('{"num_heads": 3}')
        with torch.no_grad():
            model(x)  # warm-up
            runs, start = 0, time.perf_counter()
            while time.perf_counter() - start < args.seconds:
                model(x)
                runs += 1
            torch_ms = (time.perf_counter() - start) / runs * 1e3
        out = subprocess.run([os.path.join(args.build, "bench_models"), tmp, "--batch", str(args.batch)],
                             capture_output=True, text=True, check=True).stdout
    print(out)
    ours = float(next(line.split()[1] for line in out.splitlines() if line.startswith("forward_ms_per_image")))
    theirs = torch_ms / args.batch
    print(f"predict forward, DeiT-tiny shape, batch {args.batch}, 1 thread: attnlens {ours:.2f} ms/image, "
          f"PyTorch eager {theirs:.2f} ms/image, attnlens / PyTorch = {ours / theirs:.3f}x")


if __name__ == "__main__":
    main()
