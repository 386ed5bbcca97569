"""What the image-family conformance tests share (dinov2_vs_pytorch.py, deit3_vs_pytorch.py, clip_vs_pytorch.py,
image_families_cli.py): pass/fail bookkeeping with max-error reports and negative controls, writing a model folder
(safetensors + config files), running `attnlens capture` on a preprocessed input, and the pieces of a pre-norm
Transformer block built from torch.nn modules (nn.MultiheadAttention records each head's attention; under autograd the
same weights give the attention explicitly, so that its gradient can be read).

Nothing here is attnlens code: the references are written from MODELS.md's formulas with torch.nn building blocks.
"""
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from safetensors_file import write_safetensors  # noqa: E402

TOL = 1e-4


class Checks:
    def __init__(self):
        self.passed = self.failed = 0
        self.figures = []  # (name, max abs error) of every numeric comparison, for the summary

    def record(self, ok, text):
        if ok:
            self.passed += 1
            print(f"ok     {text}", flush=True)
        else:
            self.failed += 1
            print(f"FAILED {text}", flush=True)

    def close(self, name, got, expected, tol=TOL):
        if got is None:
            self.record(False, f"{name}: attnlens gave no output")
            return
        if got.shape != expected.shape:
            self.record(False, f"{name}: shape {list(got.shape)}, expected {list(expected.shape)}")
            return
        diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
        where = np.unravel_index(np.argmax(diff), diff.shape)
        err = float(diff[where])
        self.figures.append((name, err))
        self.record(err <= tol, f"{name}: max abs diff {err:.2e} (tolerance {tol:g}, shape {list(got.shape)}"
                                + ("" if err <= tol else f", worst at {list(map(int, where))}: attnlens "
                                   f"{got[where]:.8g}, reference {expected[where]:.8g}") + ")")

    def differs(self, name, got, expected, at_least):
        """A negative control: a deliberately different computation must be told apart."""
        if got is None or got.shape != expected.shape:
            self.record(got is not None, f"{name}: output shape differs, as it must")
            return
        err = float(np.abs(got - expected).max())
        self.record(err >= at_least, f"{name}: max abs diff {err:.3e} (must be at least {at_least:g})")

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        return 1 if self.failed else 0


def write_model(folder, tensors, config=None, config_name="config.json", extra=None):
    """model.safetensors (F32) + the config file (+ extra files {name: text}) in `folder`."""
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "model.safetensors"), tensors, {"format": "pt"})
    if config is not None:
        with open(os.path.join(folder, config_name), "w") as f:
            json.dump(config, f)
    for name, text in (extra or {}).items():
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            f.write(text)
    return folder


def save_input(path, x):
    np.save(path, x.detach().numpy().astype(np.float32))
    return path


def capture(binary, model_dir, x_path, tmp, tag, checks, args=(), category=None):
    """`attnlens capture`: (logits, attention[, attention gradient]) as NumPy arrays, or Nones after a failure."""
    att, logits, grad = (os.path.join(tmp, f"{tag}_{k}.npy") for k in ("att", "logits", "grad"))
    cmd = [binary, "capture", x_path, "--model", model_dir, "-o", att, "--logits-output", logits, "-q", *args]
    if category is not None:
        cmd += ["--category", str(category), "--grad-output", grad]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        checks.record(False, f"{tag}: attnlens capture exited {proc.returncode}: {proc.stderr.strip()}")
        return (None, None, None) if category is not None else (None, None)
    if category is not None:
        return np.load(logits), np.load(att), np.load(grad)
    return np.load(logits), np.load(att)


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


class PreNormBlock(nn.Module):
    """x + ls1 * attn(norm1(x)); x + ls2 * ffn(norm2(x)), the attention an nn.MultiheadAttention asked for its
    per-head weights. ffn: "gelu", "quick_gelu" or "swiglu" (fc2(silu(a) * b), [a, b] = fc1(x) halves)."""

    def __init__(self, width, heads, hidden, eps, ffn="gelu", layer_scale=False):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=eps)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(width, eps=eps)
        self.fc1 = nn.Linear(width, 2 * hidden if ffn == "swiglu" else hidden)
        self.fc2 = nn.Linear(hidden, width)
        self.ffn = ffn
        self.ls1 = nn.Parameter(torch.ones(width)) if layer_scale else None
        self.ls2 = nn.Parameter(torch.ones(width)) if layer_scale else None

    def forward(self, x, attentions, mask=None):
        h = self.norm1(x)
        if torch.is_grad_enabled():
            out, weights = self.explicit_attention(h, mask)
        else:
            out, weights = self.attn(h, h, h, attn_mask=mask, need_weights=True, average_attn_weights=False)
        attentions.append(weights)
        x = x + (out * self.ls1 if self.ls1 is not None else out)
        u = self.fc1(self.norm2(x))
        if self.ffn == "swiglu":
            a, b = u.chunk(2, dim=-1)
            m = self.fc2(F.silu(a) * b)
        else:
            m = self.fc2(F.gelu(u) if self.ffn == "gelu" else quick_gelu(u))
        return x + (m * self.ls2 if self.ls2 is not None else m)

    def explicit_attention(self, h, mask):
        """softmax(Q K^T / sqrt(d) + mask) V from the same in_proj/out_proj weights, the probabilities kept with
        their gradient (nn.MultiheadAttention returns a reshaped copy that is not on the path to its output)."""
        b, n, width = h.shape
        heads = self.attn.num_heads
        q, k, v = F.linear(h, self.attn.in_proj_weight, self.attn.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, n, heads, width // heads).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(width // heads)
        weights = torch.softmax(scores if mask is None else scores + mask, dim=-1)
        weights.retain_grad()
        out = (weights @ v).transpose(1, 2).reshape(b, n, width)
        return self.attn.out_proj(out), weights

    def state(self, prefix, names):
        """This block's tensors under `names` (a dict: part -> name, parts norm1/qkv/proj/norm2/fc1/fc2/ls1/ls2,
        each name without .weight/.bias; qkv is in_proj's stacked Q, K, V)."""
        out = {}
        pairs = [("norm1", self.norm1), ("norm2", self.norm2), ("fc1", self.fc1), ("fc2", self.fc2),
                 ("proj", self.attn.out_proj)]
        for part, mod in pairs:
            out[prefix + names[part] + ".weight"] = mod.weight.detach().clone()
            out[prefix + names[part] + ".bias"] = mod.bias.detach().clone()
        out[prefix + names["qkv"] + ".weight"] = self.attn.in_proj_weight.detach().clone()
        out[prefix + names["qkv"] + ".bias"] = self.attn.in_proj_bias.detach().clone()
        if self.ls1 is not None:
            out[prefix + names["ls1"]] = self.ls1.detach().clone()
            out[prefix + names["ls2"]] = self.ls2.detach().clone()
        return out


def randomise(module, gen, qk_gain=2.0):
    """Every parameter random (LayerNorms around 1/0, LayerScale in [0.2, 1.2]) and Q/K scaled up, so that a mixed-up
    or ignored tensor shows and the attention is far from uniform."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name or name.startswith("ln"):
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("ls1") or name.endswith("ls2"):
                p.copy_(0.2 + torch.rand(p.shape, generator=gen))
            elif name.endswith("in_proj_weight"):
                d = p.shape[1]
                p.copy_(torch.randn(p.shape, generator=gen) / d ** 0.5)
                p[: 2 * d].mul_(qk_gain)
            elif p.dim() >= 2:
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in ** 0.5)
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def split_qkv(tensors, qkv_name, q_name, k_name, v_name):
    """One stacked in_proj tensor -> three (Hugging Face's query/key/value or q_proj/k_proj/v_proj)."""
    t = tensors.pop(qkv_name)
    d = t.shape[0] // 3
    tensors[q_name], tensors[k_name], tensors[v_name] = t[:d].clone(), t[d:2 * d].clone(), t[2 * d:].clone()


def stack(attentions):
    """Recorded per-layer weights [1, H, N, N] -> [L, H, N, N] float64."""
    return torch.stack([a[0] for a in attentions]).detach().double().numpy()
