#!/usr/bin/python3
"""attnlens' DeiT III (models/deit3.cpp) against an independent PyTorch DeiT III written from MODELS.md section B with
torch.nn building blocks: position embeddings on the patches only (no CLS row), CLS prepended after them, LayerScale
on both branches, final norm, head on CLS; at another input size the patch grid resampled as timm does at load
(bicubic with antialiasing). Random weights, in timm names (blocks.N.ls1.gamma) and in the original file's
(blocks.N.gamma_1), at 224 px and at 160 px; DeiT III huge's 80-wide heads (small: 160 wide, 2 heads, patch 14);
a real-size deit3_small_patch16_224 (384 wide, 12 layers, 6 heads from timm's architecture name) once. Logits and
every layer's attention to 1e-4. Negative control: resampling without antialiasing must be caught.

Usage: deit3_vs_pytorch.py PATH/TO/attnlens   Prints one line per check, then "N passed, M failed".
"""
import os
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from image_family_support import Checks, PreNormBlock, capture, randomise, save_input, stack, write_model  # noqa

EPS = 1e-6


class Deit3Reference(nn.Module):
    """timm's VisionTransformer with no_embed_class=True and init_values (deit.py deit3_*), in eval."""

    def __init__(self, width, depth, heads, patch, grid, classes):
        super().__init__()
        self.width, self.patch, self.grid = width, patch, grid
        self.patch_embed = nn.Conv2d(3, width, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, width))
        self.blocks = nn.ModuleList([PreNormBlock(width, heads, 4 * width, EPS, "gelu", layer_scale=True)
                                     for _ in range(depth)])
        self.norm = nn.LayerNorm(width, eps=EPS)
        self.head = nn.Linear(width, classes)
        self.attentions = []

    def positions(self, side, antialias=True):
        if side == self.grid:
            return self.pos_embed
        grid = self.pos_embed.reshape(1, self.grid, self.grid, self.width).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(side, side), mode="bicubic", align_corners=False, antialias=antialias)
        return grid.permute(0, 2, 3, 1).reshape(1, side * side, self.width)

    @torch.no_grad()
    def run(self, x, antialias=True):
        self.attentions = []
        t = self.patch_embed(x[None]).flatten(2).transpose(1, 2) + self.positions(x.shape[1] // self.patch, antialias)
        t = torch.cat([self.cls_token, t], 1)
        for blk in self.blocks:
            t = blk(t, self.attentions)
        return self.head(self.norm(t)[:, 0])[0].double().numpy(), stack(self.attentions)


def state(ref, layer_scale_names):
    sd = {"cls_token": ref.cls_token, "pos_embed": ref.pos_embed, "patch_embed.proj.weight": ref.patch_embed.weight,
          "patch_embed.proj.bias": ref.patch_embed.bias}
    names = {"norm1": "norm1", "qkv": "attn.qkv", "proj": "attn.proj", "norm2": "norm2", "fc1": "mlp.fc1",
             "fc2": "mlp.fc2", "ls1": layer_scale_names[0], "ls2": layer_scale_names[1]}
    for i, blk in enumerate(ref.blocks):
        sd.update(blk.state(f"blocks.{i}.", names))
    sd.update({"norm.weight": ref.norm.weight, "norm.bias": ref.norm.bias, "head.weight": ref.head.weight,
               "head.bias": ref.head.bias})
    return {k: v.detach().clone() for k, v in sd.items()}


def make(gen, *args):
    ref = Deit3Reference(*args).eval()
    randomise(ref, gen)
    with torch.no_grad():
        ref.pos_embed.copy_(0.5 * torch.randn(ref.pos_embed.shape, generator=gen))
        ref.cls_token.copy_(0.5 * torch.randn(ref.cls_token.shape, generator=gen))
    return ref


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = os.path.abspath(sys.argv[1])
    start = time.time()
    gen = torch.Generator().manual_seed(33)
    checks = Checks()
    classes = 5
    with tempfile.TemporaryDirectory() as tmp:
        inputs = {s: save_input(os.path.join(tmp, f"x{s}.npy"), torch.randn(3, s, s, generator=gen)) for s in (224, 160)}
        xs = {s: torch.from_numpy(np.load(p)) for s, p in inputs.items()}

        ref = make(gen, 128, 3, 2, 16, 14, classes)
        timm = write_model(os.path.join(tmp, "timm"), state(ref, ("ls1.gamma", "ls2.gamma")),
                           {"architecture": "deit3_small_patch16_224", "num_classes": classes, "num_features": 128,
                            "num_heads": 2})
        original = write_model(os.path.join(tmp, "original"), state(ref, ("gamma_1", "gamma_2")))  # no config
        for naming, folder in [("timm names (ls1.gamma)", timm), ("original names (gamma_1), no config", original)]:
            for size in (224, 160):
                want_logits, want_att = ref.run(xs[size])
                args = () if size == 224 else ("--image-size", str(size))
                logits, att = capture(binary, folder, inputs[size], tmp, f"deit3_{size}", checks, args)
                name = f"DeiT III {naming}, {size} px"
                checks.close(f"{name}: logits", logits, want_logits)
                checks.close(f"{name}: attention", att, want_att)
                if size == 160 and folder == timm:
                    plain, _ = ref.run(xs[size], antialias=False)
                    checks.differs("negative control, 14 -> 10 grid resampled without antialiasing: logits", logits,
                                   plain, 1e-3)

        # DeiT III huge's head width d = 80: the scale is not a power of two, so (q * scale) k^T and (q k^T) / sqrt(d)
        # differ in the last bits only.
        huge = make(gen, 160, 2, 2, 14, 16, classes)
        folder = write_model(os.path.join(tmp, "huge"), state(huge, ("ls1.gamma", "ls2.gamma")),
                             {"architecture": "deit3_huge_patch14_224", "num_heads": 2})
        want_logits, want_att = huge.run(xs[224])
        logits, att = capture(binary, folder, inputs[224], tmp, "deit3_huge", checks)
        checks.close("DeiT III, 80-wide heads (patch 14, 224 px): logits", logits, want_logits)
        checks.close("DeiT III, 80-wide heads: attention", att, want_att)

        # Real size: deit3_small_patch16_224, heads from timm's architecture name.
        small = make(gen, 384, 12, 6, 16, 14, 1000)
        folder = write_model(os.path.join(tmp, "small"), state(small, ("ls1.gamma", "ls2.gamma")),
                             {"architecture": "deit3_small_patch16_224", "num_classes": 1000})
        want_logits, want_att = small.run(xs[224])
        logits, att = capture(binary, folder, inputs[224], tmp, "deit3_small", checks)
        checks.close("DeiT III small real size (384 wide, 12 layers, 6 heads), 224 px: logits", logits, want_logits)
        checks.close("DeiT III small real size: attention [12,6,197,197]", att, want_att)

    print(f"({time.time() - start:.1f} s)")
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
