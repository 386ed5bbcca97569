#!/usr/bin/python3
"""Train attnlens' bundled default image model, reproducibly, from Debian's Fashion-MNIST.

The task: a Fashion-MNIST item pasted at a random position on a black 56x56 canvas; 10 classes. The item's box is
recorded, so explanations can be scored against where the object really is. The model is a timm-style ViT (4 layers,
width 64, 4 heads, patch 7 so an 8x8 grid and 65 tokens; pre-norm blocks, LayerNorm eps 1e-6, exact GELU), written
out in timm's tensor names as safetensors with a config.json beside it, which is what `attnlens` loads. (Patch 4, a
14x14 grid of 197 tokens like DeiT, trains about 5x slower per epoch on 2 cores.)

    /usr/bin/python3 tools/train_fmnist_vit.py --out data/models/fmnist-vit   # the bundled model (24 epochs, ~40 min
                                                                              # on 2 idle cores)
    /usr/bin/python3 tools/train_fmnist_vit.py --out /tmp/m --epochs 1 --max-steps 3 --train-limit 512  # smoke test

Needs Debian's python3-torch, python3-numpy and dataset-fashion-mnist. Same seed, same torch build, same numbers.
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_file import write_safetensors  # noqa: E402

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CANVAS = 56
ITEM = 28


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols)
    if magic == 2049:
        return np.frombuffer(data, dtype=np.uint8, offset=8)
    raise ValueError(f"{path}: not an IDX image or label file")


def load_split(split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(FASHION_MNIST, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(FASHION_MNIST, f"{prefix}-labels-idx1-ubyte.gz"))
    return images, labels


def paste(items, rng):
    """Items [B,28,28] uint8 -> canvases [B,56,56] uint8 and boxes [B,4] (x0, y0, x1, y1) of the item's ink."""
    n = len(items)
    canvases = np.zeros((n, CANVAS, CANVAS), dtype=np.uint8)
    offsets = rng.integers(0, CANVAS - ITEM + 1, size=(n, 2))
    boxes = np.zeros((n, 4), dtype=np.int64)
    for i in range(n):
        y, x = offsets[i]
        canvases[i, y:y + ITEM, x:x + ITEM] = items[i]
        ys, xs = np.nonzero(items[i])
        if len(ys) == 0:
            boxes[i] = (x, y, x + ITEM, y + ITEM)
        else:  # tight box of the item's non-zero pixels, exclusive upper bounds
            boxes[i] = (x + xs.min(), y + ys.min(), x + xs.max() + 1, y + ys.max() + 1)
    return canvases, boxes


def to_input(canvases):
    """uint8 [B,56,56] -> float [B,3,56,56] with mean = std = 0.5 (the timm-vit preset attnlens applies)."""
    x = torch.from_numpy(canvases).float().div_(255.0)
    return x.sub_(0.5).div_(0.5).unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * mlp_ratio)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    """timm's VisionTransformer layout and parameter names (cls_token, pos_embed, patch_embed.proj, blocks.N.*)."""

    def __init__(self, image, patch, dim, depth, heads, mlp_ratio, classes):
        super().__init__()
        self.patch_embed = PatchEmbed(patch, dim)
        grid = image // patch
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, grid * grid + 1, dim) * 0.02)
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


def evaluate(model, canvases, labels, batch=500):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(canvases), batch):
            logits = model(to_input(canvases[i:i + batch]))
            correct += (logits.argmax(1).numpy() == labels[i:i + batch]).sum()
    return correct / len(canvases)


def write_png_gray(path, image):
    """Minimal grayscale PNG writer (zlib + CRC from the standard library), so samples need no imaging package."""
    import zlib
    height, width = image.shape
    raw = b"".join(b"\x00" + image[r].tobytes() for r in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (model.safetensors, config.json, metrics.json, samples/)")
    p.add_argument("--epochs", type=int, default=24)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--patch", type=int, default=7)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train-limit", type=int, default=0, help="use only the first N training items (tests)")
    p.add_argument("--test-limit", type=int, default=0, help="evaluate on the first N test items (tests)")
    p.add_argument("--max-steps", type=int, default=0, help="stop after N optimiser steps (tests)")
    args = p.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    os.makedirs(os.path.join(args.out, "samples"), exist_ok=True)

    train_items, train_labels = load_split("train")
    test_items, test_labels = load_split("test")
    if args.train_limit:
        train_items, train_labels = train_items[:args.train_limit], train_labels[:args.train_limit]
    if args.test_limit:
        test_items, test_labels = test_items[:args.test_limit], test_labels[:args.test_limit]
    # The test canvases are fixed by their own seed, so every run is scored on the same positions.
    test_canvases, test_boxes = paste(test_items, np.random.default_rng(12345))

    model = VisionTransformer(CANVAS, args.patch, args.dim, args.depth, args.heads, 4, len(LABELS))
    decay = [p_ for n, p_ in model.named_parameters() if p_.ndim > 1 and "pos_embed" not in n and "cls_token" not in n]
    no_decay = [p_ for n, p_ in model.named_parameters() if not (p_.ndim > 1 and "pos_embed" not in n and "cls_token" not in n)]
    optimiser = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    steps_per_epoch = math.ceil(len(train_items) / args.batch)
    total_steps = args.max_steps or args.epochs * steps_per_epoch
    warmup = min(500, total_steps // 10)

    def lr_at(step):  # linear warm-up, then cosine to zero
        if step < warmup:
            return args.lr * (step + 1) / warmup
        return args.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))

    rng = np.random.default_rng(args.seed)
    step, start, log = 0, time.time(), []
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(len(train_items))
        canvases, _ = paste(train_items[order], rng)  # new positions every epoch: the augmentation
        labels = torch.from_numpy(train_labels[order].astype(np.int64))
        seen, loss_sum = 0, 0.0
        for i in range(0, len(order), args.batch):
            for group in optimiser.param_groups:
                group["lr"] = lr_at(step)
            logits = model(to_input(canvases[i:i + args.batch]))
            loss = F.cross_entropy(logits, labels[i:i + args.batch], label_smoothing=0.1)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            step += 1
            seen += len(logits)
            loss_sum += loss.item() * len(logits)
            if step % 50 == 0:
                rate = step / (time.time() - start)
                print(f"epoch {epoch + 1}/{args.epochs} step {step}/{total_steps} loss {loss_sum / seen:.4f} "
                      f"{rate:.2f} steps/s, ETA {(total_steps - step) / rate / 60:.1f} min", flush=True)
            if step >= total_steps:
                break
        accuracy = evaluate(model, test_canvases, test_labels)
        log.append({"epoch": epoch + 1, "train_loss": loss_sum / max(1, seen), "test_accuracy": float(accuracy),
                    "minutes": (time.time() - start) / 60})
        print(f"epoch {epoch + 1}: train loss {loss_sum / max(1, seen):.4f}, test accuracy {accuracy:.4f}", flush=True)
        if step >= total_steps:
            break

    config = {
        "architecture": "vit", "naming": "timm", "image_size": CANVAS, "patch_size": args.patch,
        "embed_dim": args.dim, "depth": args.depth, "num_heads": args.heads, "mlp_ratio": 4, "in_chans": 3,
        "num_classes": len(LABELS), "prefix_tokens": 1, "layer_norm_eps": 1e-6, "qkv_bias": True,
        "labels": LABELS, "preprocess": {"preset": "none", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    write_safetensors(os.path.join(args.out, "model.safetensors"), model.state_dict(),
                      {"format": "pt", "source": "tools/train_fmnist_vit.py"})

    # 16 sample canvases from the test split (the first 16 test items at their fixed positions) with their boxes.
    samples = []
    model.eval()
    with torch.no_grad():
        logits = model(to_input(test_canvases[:16]))
    for i in range(min(16, len(test_canvases))):
        name = f"{i:02d}_{LABELS[test_labels[i]].replace('/', '-').replace(' ', '-').lower()}.png"
        write_png_gray(os.path.join(args.out, "samples", name), test_canvases[i])
        samples.append({"file": name, "label": int(test_labels[i]), "label_name": LABELS[test_labels[i]],
                        "box_xyxy": [int(v) for v in test_boxes[i]],
                        "reference_logits": [float(v) for v in logits[i]]})
    with open(os.path.join(args.out, "samples", "samples.json"), "w") as f:
        json.dump(samples, f, indent=1)
    metrics = {"test_accuracy": log[-1]["test_accuracy"] if log else None, "test_items": len(test_canvases),
               "epochs": log, "steps": step, "args": vars(args), "torch": torch.__version__,
               "minutes": (time.time() - start) / 60}
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    print(f"wrote {args.out}: test accuracy {metrics['test_accuracy']}")


if __name__ == "__main__":
    sys.exit(main())
