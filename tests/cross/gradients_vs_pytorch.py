#!/usr/bin/python3
"""Check attnlens' captured attention and attention gradients on the bundled model against an independent model:
the PyTorch VisionTransformer of tools/train_fmnist_vit.py loaded with the same weights.

1. attention of every layer, logits: attnlens vs PyTorch (float32).
2. d(logit_c)/dA of every layer: attnlens vs PyTorch autograd.
3. Finite differences: the PyTorch model in float64, with a perturbation eps*D added to one layer's attention after
   the softmax; (logit(+eps) - logit(-eps)) / 2eps must equal <dlogit/dA, D> computed from attnlens' gradient.

Usage: gradients_vs_pytorch.py PATH/TO/attnlens REPO_ROOT. Prints "N passed, M failed".
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

binary, root = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bundled_vit import load_bundled_model  # noqa: E402  (the training tool's model: an independent implementation)

model_dir = os.path.join(root, "data", "models", "fmnist-vit")


model, config, reference = load_bundled_model(root)

# Record (and optionally perturb) each layer's post-softmax attention, as attnlens sees it.
recorded, perturbation = [], {}


def attention_forward(self, x):
    b, n, c = x.shape
    qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
    attn = ((qkv[0] * self.scale) @ qkv[1].transpose(-2, -1)).softmax(dim=-1)
    layer = len(recorded)
    if layer in perturbation:
        attn = attn + perturbation[layer]
    if attn.requires_grad:
        attn.retain_grad()
    recorded.append(attn)
    return self.proj((attn @ qkv[2]).transpose(1, 2).reshape(b, n, c))


reference.Attention.forward = attention_forward

passed = failed = 0


def report(name, ok, detail):
    global passed, failed
    print(f"{name}: {detail} {'ok' if ok else 'FAIL'}")
    passed += ok
    failed += not ok


torch.manual_seed(7)
category = 3
with tempfile.TemporaryDirectory() as tmp:
    x = torch.randn(1, 3, config["image_size"], config["image_size"])
    np.save(os.path.join(tmp, "x.npy"), x[0].numpy())
    subprocess.run([binary, "capture", os.path.join(tmp, "x.npy"), "--model", model_dir, "--category", str(category),
                    "-o", os.path.join(tmp, "att.npy"), "--grad-output", os.path.join(tmp, "grad.npy"),
                    "--logits-output", os.path.join(tmp, "logits.npy"), "-q"], check=True)
    att = np.load(os.path.join(tmp, "att.npy"))
    grad = np.load(os.path.join(tmp, "grad.npy"))
    logits = np.load(os.path.join(tmp, "logits.npy"))

xr = x.clone().requires_grad_(True)
recorded.clear()
ref_logits = model(xr)
ref_logits[0, category].backward()
ref_att = np.stack([a[0].detach().numpy() for a in recorded])
ref_grad = np.stack([a.grad[0].numpy() for a in recorded])

err = np.abs(logits - ref_logits[0].detach().numpy()).max()
report("logits vs PyTorch", err < 1e-4, f"max |diff| {err:.2e}")
err = np.abs(att - ref_att).max()
report("attention vs PyTorch", err < 1e-5, f"max |diff| {err:.2e}")
scale = np.abs(ref_grad).max()
err = np.abs(grad - ref_grad).max()
report("attention gradients vs PyTorch autograd", err < 1e-4 * scale, f"max |diff| {err:.2e} (max |grad| {scale:.2e})")

# Finite differences in float64 on the PyTorch model, compared with attnlens' float32 gradient.
model64 = model.double()
x64 = x.double()
rng = np.random.default_rng(0)
eps = 1e-4
for layer in range(att.shape[0]):
    direction = rng.normal(size=att.shape[1:])
    d = torch.from_numpy(direction).unsqueeze(0)
    values = []
    for sign in (1, -1):
        recorded.clear()
        perturbation.clear()
        perturbation[layer] = sign * eps * d
        with torch.no_grad():
            values.append(model64(x64)[0, category].item())
    perturbation.clear()
    numeric = (values[0] - values[1]) / (2 * eps)
    analytic = float((grad[layer].astype(np.float64) * direction).sum())
    rel = abs(numeric - analytic) / max(1e-12, abs(numeric))
    report(f"finite differences, layer {layer}", rel < 1e-3, f"numeric {numeric:.6f} vs attnlens {analytic:.6f}, rel {rel:.1e}")

# Position embeddings resampled for another input size (--image-size), against timm's recipe in PyTorch: the grid
# part resized bicubically with align_corners=False, the prefix kept.
model32 = model.float()
grid = config["image_size"] // config["patch_size"]
new_grid = grid + 2
size = new_grid * config["patch_size"]
with torch.no_grad():
    pos = model32.pos_embed
    prefix, patches = pos[:, :1], pos[:, 1:].reshape(1, grid, grid, -1).permute(0, 3, 1, 2)
    patches = torch.nn.functional.interpolate(patches, size=(new_grid, new_grid), mode="bicubic", align_corners=False)
    model32.pos_embed = torch.nn.Parameter(torch.cat([prefix, patches.permute(0, 2, 3, 1).reshape(1, new_grid ** 2, -1)], 1))
    x_big = torch.randn(1, 3, size, size)
    recorded.clear()
    ref_big = model32(x_big)[0].numpy()
with tempfile.TemporaryDirectory() as tmp:
    np.save(os.path.join(tmp, "x.npy"), x_big[0].numpy())
    subprocess.run([binary, "capture", os.path.join(tmp, "x.npy"), "--model", model_dir, "--image-size", str(size),
                    "-o", os.path.join(tmp, "att.npy"), "--logits-output", os.path.join(tmp, "logits.npy"), "-q"],
                   check=True)
    big = np.load(os.path.join(tmp, "logits.npy"))
err = np.abs(big - ref_big).max()
report(f"--image-size {size} (grid {grid} -> {new_grid}) vs PyTorch bicubic resampling", err < 1e-4, f"max |diff| {err:.2e}")

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
