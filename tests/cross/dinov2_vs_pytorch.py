#!/usr/bin/python3
"""attnlens' DINOv2 (models/dinov2.cpp) against an independent PyTorch DINOv2 written from MODELS.md section A with
torch.nn building blocks (nn.Conv2d, nn.LayerNorm, nn.MultiheadAttention, nn.Linear; LayerScale, registers, the
SwiGLU feed-forward and each source's position-embedding resampling written out), loaded from the same random
weights in the three namings:

  * hub: the original state dict (mask_token, register_tokens, blocks.N.ls1.gamma; ViT-g's mlp.w12 / mlp.w3);
  * timm: mask_token dropped, register_tokens -> reg_token with the CLS position row folded into cls_token and the
    patch rows kept (A.3), ViT-g's SwiGLU packed in mlp.fc1 / fc2;
  * hf: Dinov2Model / Dinov2WithRegistersModel names (query/key/value apart, layer_scale1.lambda1, weights_in/out)
    with Dinov2ForImageClassification's classifier on [CLS, mean of the patch tokens].

Each with 0 and 4 registers, at 224 px (the 37x37 grid resampled to 16x16) and at 168 px (12x12), with the
resampling each source does (A.6): hub without registers scale factor (h0 + 0.1) / 37, Hugging Face without
registers size-bicubic, everything with registers and timm size-bicubic with antialiasing; --pos-interpolation
overrides it (Hugging Face before PR #33226 = offset). Logits (or CLS features) and every layer's attention
[L,H,N,N] to 1e-4; the attention gradients of one class logit against autograd; a real-size ViT-S/14 with registers
(384 wide, 12 layers, 6 heads) once at 224. Negative controls: the wrong resampling mode and LayerScale left out
must both be caught.

Usage: dinov2_vs_pytorch.py PATH/TO/attnlens   Prints one line per check, then "N passed, M failed".
"""
import copy
import os
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from image_family_support import (Checks, PreNormBlock, capture, randomise, save_input, split_qkv,  # noqa: E402
                                  stack, write_model)

PATCH, STORED_GRID, EPS = 14, 37, 1e-6


class Dinov2Reference(nn.Module):
    """DinoVisionTransformer's forward (A.2), in the original layout: [CLS, registers, patches], registers without
    position embedding, LayerScale on both branches, the final norm on every token."""

    def __init__(self, width, depth, heads, hidden, registers, classes=0, ffn="gelu", head_input="cls+mean"):
        super().__init__()
        self.width, self.registers, self.head_input = width, registers, head_input
        self.patch_embed = nn.Conv2d(3, width, PATCH, PATCH)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + STORED_GRID ** 2, width))
        self.mask_token = nn.Parameter(torch.zeros(1, width))  # iBOT's; never used at inference
        self.register_tokens = nn.Parameter(torch.zeros(1, registers, width)) if registers else None
        self.blocks = nn.ModuleList([PreNormBlock(width, heads, hidden, EPS, ffn, layer_scale=True)
                                     for _ in range(depth)])
        self.norm = nn.LayerNorm(width, eps=EPS)
        head_in = 2 * width if head_input == "cls+mean" else width
        self.head = nn.Linear(head_in, classes) if classes else None
        self.attentions = []

    def positions(self, h0, w0, mode):
        """interpolate_pos_encoding of each source (A.6)."""
        if (h0, w0) == (STORED_GRID, STORED_GRID):
            return self.pos_embed
        m = STORED_GRID
        grid = self.pos_embed[:, 1:].reshape(1, m, m, self.width).permute(0, 3, 1, 2)
        if mode == "offset":  # original code without registers: scale_factor, no antialiasing
            grid = F.interpolate(grid, scale_factor=((h0 + 0.1) / m, (w0 + 0.1) / m), mode="bicubic",
                                 antialias=False, recompute_scale_factor=False)
        elif mode == "bicubic":  # Hugging Face Dinov2Model (since PR #33226)
            grid = F.interpolate(grid, size=(h0, w0), mode="bicubic", align_corners=False, antialias=False)
        else:  # registers everywhere, and timm: size with antialiasing
            grid = F.interpolate(grid, size=(h0, w0), mode="bicubic", align_corners=False, antialias=True)
        assert grid.shape[-2:] == (h0, w0)
        return torch.cat([self.pos_embed[:, :1], grid.permute(0, 2, 3, 1).reshape(1, h0 * w0, self.width)], 1)

    def forward(self, x, mode):
        self.attentions = []
        b = x.shape[0]
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.expand(b, -1, -1), t], 1)
        t = t + self.positions(x.shape[2] // PATCH, x.shape[3] // PATCH, mode)
        if self.registers:
            t = torch.cat([t[:, :1], self.register_tokens.expand(b, -1, -1), t[:, 1:]], 1)
        for blk in self.blocks:
            t = blk(t, self.attentions)
        t = self.norm(t)
        if self.head is None:
            return t[:, 0]
        if self.head_input == "cls":
            return self.head(t[:, 0])
        return self.head(torch.cat([t[:, 0], t[:, 1 + self.registers:].mean(1)], 1))


BLOCK_NAMES = {"norm1": "norm1", "qkv": "attn.qkv", "proj": "attn.proj", "norm2": "norm2", "fc1": "mlp.fc1",
               "fc2": "mlp.fc2", "ls1": "ls1.gamma", "ls2": "ls2.gamma"}


def hub_state(ref):
    """The original state dict (A.3): what torch.hub's dinov2_vit*14{_reg} load strictly."""
    sd = {"cls_token": ref.cls_token, "pos_embed": ref.pos_embed, "mask_token": ref.mask_token,
          "patch_embed.proj.weight": ref.patch_embed.weight, "patch_embed.proj.bias": ref.patch_embed.bias}
    if ref.registers:
        sd["register_tokens"] = ref.register_tokens
    names = dict(BLOCK_NAMES)
    if ref.blocks[0].ffn == "swiglu":
        names.update(fc1="mlp.w12", fc2="mlp.w3")
    for i, blk in enumerate(ref.blocks):
        sd.update(blk.state(f"blocks.{i}.", names))
    sd["norm.weight"], sd["norm.bias"] = ref.norm.weight, ref.norm.bias
    if ref.head is not None:
        sd["head.weight"], sd["head.bias"] = ref.head.weight, ref.head.bias
    return {k: v.detach().clone() for k, v in sd.items()}


def timm_state(ref):
    """timm's _convert_dinov2 / checkpoint_filter_fn (A.3): mask_token dropped; register models get reg_token,
    cls_token + pos_embed[:, 0] and the patch rows of pos_embed; w12/w3 -> fc1/fc2."""
    sd = hub_state(ref)
    del sd["mask_token"]
    if ref.registers:
        sd["reg_token"] = sd.pop("register_tokens")
        sd["cls_token"] = sd["cls_token"] + sd["pos_embed"][:, :1]
        sd["pos_embed"] = sd["pos_embed"][:, 1:].clone()
    for k in list(sd):
        if ".mlp.w12." in k or ".mlp.w3." in k:
            sd[k.replace(".mlp.w12.", ".mlp.fc1.").replace(".mlp.w3.", ".mlp.fc2.")] = sd.pop(k)
    return sd


def hf_state(ref, prefix):
    """Hugging Face's convert_dinov2(_with_registers)_to_hf names (A.3)."""
    sd = hub_state(ref)
    out = {prefix + "embeddings.cls_token": sd.pop("cls_token"),
           prefix + "embeddings.mask_token": sd.pop("mask_token"),
           prefix + "embeddings.position_embeddings": sd.pop("pos_embed"),
           prefix + "embeddings.patch_embeddings.projection.weight": sd.pop("patch_embed.proj.weight"),
           prefix + "embeddings.patch_embeddings.projection.bias": sd.pop("patch_embed.proj.bias"),
           prefix + "layernorm.weight": sd.pop("norm.weight"), prefix + "layernorm.bias": sd.pop("norm.bias")}
    if ref.registers:
        out[prefix + "embeddings.register_tokens"] = sd.pop("register_tokens")
    if ref.head is not None:
        out["classifier.weight"], out["classifier.bias"] = sd.pop("head.weight"), sd.pop("head.bias")
    parts = {"norm1": "norm1", "attn.proj": "attention.output.dense", "ls1.gamma": "layer_scale1.lambda1",
             "norm2": "norm2", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2", "ls2.gamma": "layer_scale2.lambda1",
             "mlp.w12": "mlp.weights_in", "mlp.w3": "mlp.weights_out", "attn.qkv": "attn.qkv"}
    for k, v in sd.items():
        _, n, rest = k.split(".", 2)
        layer = f"{prefix}encoder.layer.{n}."
        stem, kind = (rest.rsplit(".", 1) if not rest.endswith("gamma") else (rest, ""))
        name = layer + parts[stem] + ("." + kind if kind else "")
        out[name] = v
    for n in range(len(ref.blocks)):
        layer = f"{prefix}encoder.layer.{n}."
        for kind in ("weight", "bias"):
            split_qkv(out, f"{layer}attn.qkv.{kind}", *(f"{layer}attention.attention.{w}.{kind}"
                                                       for w in ("query", "key", "value")))
    return out


def hf_config(ref, heads, labels, swiglu=False):
    c = {"model_type": "dinov2_with_registers" if ref.registers else "dinov2", "hidden_size": ref.width,
         "num_hidden_layers": len(ref.blocks), "num_attention_heads": heads, "patch_size": PATCH, "image_size": 518,
         "layer_norm_eps": EPS, "use_swiglu_ffn": swiglu, "hidden_act": "gelu"}
    if ref.registers:
        c["num_register_tokens"] = ref.registers
    if labels:
        c["id2label"] = {str(i): name for i, name in enumerate(labels)}
    return c


def reference_run(ref, x, mode, category=None):
    if category is None:
        with torch.no_grad():
            out = ref(x[None], mode)[0]
        return out.double().numpy(), stack(ref.attentions)
    out = ref(x[None], mode)
    out[0, category].backward()
    grads = np.stack([a.grad[0].double().numpy() for a in ref.attentions])
    return out[0].detach().double().numpy(), stack(ref.attentions), grads


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = os.path.abspath(sys.argv[1])
    start = time.time()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(2024)
    checks = Checks()
    labels = ["tench", "goldfish", "great white shark"]
    width, depth, heads, hidden = 64, 3, 4, 128

    with tempfile.TemporaryDirectory() as tmp:
        inputs = {size: save_input(os.path.join(tmp, f"x{size}.npy"), torch.randn(3, size, size, generator=gen))
                  for size in (224, 168)}
        xs = {size: torch.from_numpy(np.load(path)) for size, path in inputs.items()}

        for registers in (0, 4):
            # Two models per register count: a backbone (hub, timm) and a classifier (HF's head).
            backbone = Dinov2Reference(width, depth, heads, hidden, registers).eval()
            classifier = Dinov2Reference(width, depth, heads, hidden, registers, classes=len(labels)).eval()
            for ref in (backbone, classifier):
                randomise(ref, gen)
                with torch.no_grad():
                    ref.pos_embed.copy_(0.5 * torch.randn(ref.pos_embed.shape, generator=gen))
                    ref.cls_token.copy_(0.5 * torch.randn(ref.cls_token.shape, generator=gen))
                    if registers:
                        ref.register_tokens.copy_(0.5 * torch.randn(ref.register_tokens.shape, generator=gen))
            tag = f"{registers} registers"
            hf_prefix = "dinov2_with_registers." if registers else "dinov2."
            cases = [
                ("hub", write_model(os.path.join(tmp, f"hub{registers}"), hub_state(backbone), {"num_heads": heads}),
                 backbone, "antialias" if registers else "offset"),
                ("timm", write_model(os.path.join(tmp, f"timm{registers}"), timm_state(backbone),
                                     {"architecture": "vit_small_patch14_reg4_dinov2" if registers
                                      else "vit_small_patch14_dinov2", "num_heads": heads}),
                 backbone, "antialias"),
                ("hf", write_model(os.path.join(tmp, f"hf{registers}"), hf_state(classifier, hf_prefix),
                                   hf_config(classifier, heads, labels)),
                 classifier, "antialias" if registers else "bicubic"),
            ]
            for naming, folder, ref, mode in cases:
                for size in (224, 168):
                    want_logits, want_att = reference_run(ref, xs[size], mode)
                    args = () if size == 224 else ("--image-size", str(size))
                    name = f"DINOv2 {naming}, {tag}, {size} px ({mode} resampling)"
                    logits, att = capture(binary, folder, inputs[size], tmp, f"{naming}{registers}_{size}", checks,
                                          args)
                    checks.close(f"{name}: {'logits' if ref.head is not None else 'CLS features'}", logits,
                                 want_logits)
                    checks.close(f"{name}: attention", att, want_att)
                    if naming == "hub" and size == 224 and not registers:
                        # The trap of A.6: another resampling mode must show with these embeddings.
                        other, _ = reference_run(ref, xs[size], "bicubic")
                        checks.differs("negative control, hub without registers resampled by size instead of "
                                       "scale factor: CLS features", logits, other, 1e-3)
                        without = copy.deepcopy(ref)
                        for blk in without.blocks:
                            blk.ls1 = blk.ls2 = None
                        no_ls, _ = reference_run(without, xs[size], mode)
                        checks.differs("negative control, LayerScale left out: CLS features", logits, no_ls, 1e-2)
            # Hugging Face before PR #33226 resampled like the original: --pos-interpolation offset reproduces it.
            if not registers:
                want_logits, want_att = reference_run(classifier, xs[224], "offset")
                logits, att = capture(binary, cases[2][1], inputs[224], tmp, "hf_offset", checks,
                                      ("--pos-interpolation", "offset"))
                checks.close("DINOv2 hf, 0 registers, 224 px, --pos-interpolation offset: logits", logits, want_logits)
                checks.close("DINOv2 hf, 0 registers, 224 px, --pos-interpolation offset: attention", att, want_att)
            # Gradients of one class logit with respect to every layer's attention, against autograd.
            if registers:
                want_logits, want_att, want_grad = reference_run(classifier, xs[224], "antialias", category=2)
                logits, att, grad = capture(binary, cases[2][1], inputs[224], tmp, "hf_grad", checks, category=2)
                scale = float(np.abs(want_grad).max())
                checks.close(f"DINOv2 hf, {tag}: d(logit 2)/d(attention) vs autograd (max |grad| {scale:.2e})", grad,
                             want_grad, tol=1e-4 * max(1.0, scale))

        # ---- ViT-g's SwiGLU feed-forward (small): hub w12/w3, timm packed fc1/fc2, HF weights_in/weights_out ----
        swiglu = Dinov2Reference(width, 2, heads, 48, 4, ffn="swiglu").eval()  # a backbone, as the hub models
        randomise(swiglu, gen)
        with torch.no_grad():
            swiglu.pos_embed.copy_(0.5 * torch.randn(swiglu.pos_embed.shape, generator=gen))
        with_cls_head, with_hf_head = copy.deepcopy(swiglu), copy.deepcopy(swiglu)
        with_cls_head.head, with_cls_head.head_input = nn.Linear(width, len(labels)), "cls"  # timm's head
        with_hf_head.head = nn.Linear(2 * width, len(labels))  # Dinov2ForImageClassification's
        randomise(with_cls_head.head, gen)
        randomise(with_hf_head.head, gen)
        for naming, ref, state, config in [
                ("hub names (mlp.w12/w3), backbone", swiglu, hub_state(swiglu), {"num_heads": heads}),
                ("timm names (packed mlp.fc1), head on CLS", with_cls_head, timm_state(with_cls_head),
                 {"num_heads": heads}),
                ("HF names (weights_in/out), classifier", with_hf_head, hf_state(with_hf_head, "dinov2_with_registers."),
                 hf_config(with_hf_head, heads, labels, swiglu=True))]:
            want_logits, want_att = reference_run(ref, xs[224], "antialias")
            tag = "swiglu_" + naming.split()[0]
            logits, att = capture(binary, write_model(os.path.join(tmp, tag), state, config), inputs[224], tmp, tag,
                                  checks)
            checks.close(f"DINOv2 SwiGLU, {naming}, 4 registers, 224 px: "
                         f"{'CLS features' if ref.head is None else 'logits'}", logits, want_logits)
            checks.close(f"DINOv2 SwiGLU, {naming}: attention", att, want_att)

        # ---- real size: ViT-S/14 with registers (384 wide, 12 layers, 6 heads, MLP 1536), HF names, 224 px ----
        small = Dinov2Reference(384, 12, 6, 1536, 4, classes=len(labels)).eval()
        randomise(small, gen)
        with torch.no_grad():
            small.pos_embed.copy_(0.5 * torch.randn(small.pos_embed.shape, generator=gen))
        want_logits, want_att = reference_run(small, xs[224], "antialias")
        folder = write_model(os.path.join(tmp, "vits14_reg"), hf_state(small, "dinov2_with_registers."),
                             hf_config(small, 6, labels))
        logits, att = capture(binary, folder, inputs[224], tmp, "vits14_reg", checks)
        checks.close("DINOv2 ViT-S/14 real size, 4 registers, HF names, 224 px: logits", logits, want_logits)
        checks.close("DINOv2 ViT-S/14 real size: attention [12,6,261,261]", att, want_att)

    print(f"({time.time() - start:.1f} s)")
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
