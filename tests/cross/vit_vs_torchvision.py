#!/usr/bin/python3
"""Cross-check attnlens' LibTorch ViT (models/vit.cpp) against an independent implementation: torchvision's
VisionTransformer with random weights, converted to the tensor names attnlens loads (spec section 10).

Checks, each on one random preprocessed input [3,224,224] given to `attnlens capture` as .npy:
  * torchvision vit_b_16 (ViT-B/16, 86M parameters) in timm names: logits and every layer's attention [L,H,N,N];
  * a DeiT-tiny-sized torchvision VisionTransformer (12 layers, 3 heads, width 192, MLP 768) in timm names, in
    Hugging Face ViT names (prefix vit., with config.json in HF keys and id2label; `attnlens predict --json` gives
    torchvision's top-3 classes and their labels), in HF names with prefix deit. and with no prefix, and as a DINO
    teacher checkpoint (teacher.backbone.*, a bare backbone whose output is the final CLS features; student and
    projection-head tensors beside it must be ignored);
  * a distilled DeiT built from the same weights plus a random dist_token, head_dist and pos_embed with one more
    row, in timm names and in HF DeiT names (deit.embeddings.distillation_token, cls_classifier,
    distillation_classifier): the reference runs torchvision's own encoder blocks on [cls, dist, patches] and
    averages the two heads.
The reference attention is torchvision's nn.MultiheadAttention called again on each block's ln_1 output with
need_weights=True, average_attn_weights=False (torchvision's forward asks for no weights). Tolerance 1e-4 (absolute).

Usage: vit_vs_torchvision.py PATH/TO/attnlens   (needs Debian's python3-torch, python3-torchvision, python3-numpy)
Prints one line per check, then "N passed, M failed"; exits 1 on any failure.
"""
import copy
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

# The training tool's safetensors writer (Debian has no python3-safetensors); one copy of the format code.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from train_fmnist_vit import write_safetensors  # noqa: E402

try:
    import torch
    import torchvision
    from torchvision.models.vision_transformer import VisionTransformer
except ImportError:  # pragma: no cover - CTest shows the skip
    print("python3-torch / python3-torchvision not installed; skipping")
    sys.exit(0)

TOL = 1e-4


def write_model(folder, tensors, config):
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "model.safetensors"), tensors, {"format": "pt"})
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    return folder


def write_half_model(folder, tensors, config, dtype):
    """The same model stored as F16 or BF16 tensors (safetensors dtype names), as many hub checkpoints are."""
    os.makedirs(folder, exist_ok=True)
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        half = t.detach().contiguous().to(torch.float16 if dtype == "F16" else torch.bfloat16)
        data = half.view(torch.int16).numpy().astype("<i2").tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(os.path.join(folder, "model.safetensors"), "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(chunks))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    return folder


def randomise(model, gen):
    """torchvision initialises LayerNorms to 1/0, most biases, class_token and the head to 0: make them all random,
    so a mixed-up or ignored tensor shows. Q and K are scaled up a little for less uniform attention."""
    d = model.hidden_dim
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln" in name or name.startswith("encoder.ln"):
                if name.endswith("weight"):
                    p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
                else:
                    p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
            elif name.endswith("in_proj_weight"):
                p[: 2 * d].mul_(2.0)
        model.class_token.copy_(0.5 * torch.randn(model.class_token.shape, generator=gen))
        model.encoder.pos_embedding.copy_(0.1 * torch.randn(model.encoder.pos_embedding.shape, generator=gen))
        model.heads.head.weight.copy_(0.05 * torch.randn(model.heads.head.weight.shape, generator=gen))


def timm_names(model):
    """torchvision VisionTransformer state_dict -> timm names (same layouts; in_proj is timm's stacked qkv)."""
    sd = model.state_dict()
    out = {
        "cls_token": sd["class_token"],
        "pos_embed": sd["encoder.pos_embedding"],
        "patch_embed.proj.weight": sd["conv_proj.weight"],
        "patch_embed.proj.bias": sd["conv_proj.bias"],
    }
    for n in range(len(model.encoder.layers)):
        s, t = f"encoder.layers.encoder_layer_{n}.", f"blocks.{n}."
        for a, b in [("ln_1", "norm1"), ("ln_2", "norm2"), ("self_attention.out_proj", "attn.proj"),
                     ("mlp.0", "mlp.fc1"), ("mlp.3", "mlp.fc2")]:
            out[t + b + ".weight"] = sd[s + a + ".weight"]
            out[t + b + ".bias"] = sd[s + a + ".bias"]
        out[t + "attn.qkv.weight"] = sd[s + "self_attention.in_proj_weight"]
        out[t + "attn.qkv.bias"] = sd[s + "self_attention.in_proj_bias"]
    out["norm.weight"] = sd["encoder.ln.weight"]
    out["norm.bias"] = sd["encoder.ln.bias"]
    out["head.weight"] = sd["heads.head.weight"]
    out["head.bias"] = sd["heads.head.bias"]
    consumed = {"class_token", "encoder.pos_embedding", "conv_proj.weight", "conv_proj.bias", "encoder.ln.weight",
                "encoder.ln.bias", "heads.head.weight", "heads.head.bias"}
    for k in sd:  # every torchvision tensor must have gone somewhere
        assert k in consumed or k.startswith("encoder.layers."), f"unconverted torchvision tensor {k}"
    assert len(out) == len(sd), (len(out), len(sd))
    return out


def hf_names(timm, prefix):
    """timm names -> Hugging Face ViT/DeiT names (qkv split into its three row blocks)."""
    out = {}
    d = timm["cls_token"].shape[-1]
    emb = prefix + "embeddings."
    for k, v in timm.items():
        if k == "cls_token":
            out[emb + "cls_token"] = v
        elif k == "dist_token":
            out[emb + "distillation_token"] = v
        elif k == "pos_embed":
            out[emb + "position_embeddings"] = v
        elif k.startswith("patch_embed.proj."):
            out[emb + "patch_embeddings.projection." + k.split(".")[-1]] = v
        elif k.startswith("norm."):
            out[prefix + "layernorm." + k.split(".")[-1]] = v
        elif k.startswith("head."):
            out[("cls_classifier." if "dist_token" in timm else "classifier.") + k.split(".")[-1]] = v
        elif k.startswith("head_dist."):
            out["distillation_classifier." + k.split(".")[-1]] = v
        elif k.startswith("blocks."):
            _, n, *rest = k.split(".")
            rest = ".".join(rest)
            layer = f"{prefix}encoder.layer.{n}."
            kind = rest.split(".")[-1]
            if rest.startswith("attn.qkv."):
                for i, which in enumerate(["query", "key", "value"]):
                    out[f"{layer}attention.attention.{which}.{kind}"] = v[i * d:(i + 1) * d]
            else:
                part = {"norm1": "layernorm_before", "norm2": "layernorm_after", "attn.proj": "attention.output.dense",
                        "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}[rest[: -len(kind) - 1]]
                out[f"{layer}{part}.{kind}"] = v
        else:
            raise KeyError(k)
    return out


class Reference:
    """Runs torchvision's modules, recording each block's attention from its own nn.MultiheadAttention."""

    def __init__(self, model):
        self.model = model
        self.inputs = []
        for layer in model.encoder.layers:
            layer.ln_1.register_forward_hook(lambda mod, inp, out: self.inputs.append(out.detach()))

    def attention(self):
        maps = []
        for layer, h in zip(self.model.encoder.layers, self.inputs):
            _, w = layer.self_attention(h, h, h, need_weights=True, average_attn_weights=False)
            maps.append(w[0])
        self.inputs = []
        return torch.stack(maps).double().numpy()  # [L, H, N, N]

    @torch.no_grad()
    def plain(self, x):
        logits = self.model(x[None])[0]
        return logits.double().numpy(), self.attention()

    @torch.no_grad()
    def features(self, x):
        """Bare backbone (DINO): the final-norm CLS token."""
        m = self.model
        t = m._process_input(x[None])
        t = torch.cat([m.class_token, t], 1)
        t = m.encoder(t)  # adds pos_embedding, blocks, final ln
        return t[0, 0].double().numpy(), self.attention()

    @torch.no_grad()
    def distilled(self, x, dist_token, pos_embed, head_dist):
        """DeiT distilled: tokens [cls, dist, patches] + pos_embed; logits = (head(x0) + head_dist(x1)) / 2."""
        m = self.model
        t = m._process_input(x[None])
        t = torch.cat([m.class_token, dist_token, t], 1) + pos_embed
        t = m.encoder.ln(m.encoder.layers(t))
        logits = (m.heads(t[:, 0]) + head_dist(t[:, 1])) / 2
        return logits[0].double().numpy(), self.attention()


class Checks:
    def __init__(self):
        self.passed = self.failed = 0

    def record(self, ok, text):
        if ok:
            self.passed += 1
            print(f"ok     {text}", flush=True)
        else:
            self.failed += 1
            print(f"FAILED {text}", flush=True)

    def differs(self, name, got, expected, at_least):
        """A negative control: a deliberately wrong model must be caught, so the checks above can fail."""
        if got is None or got.shape != expected.shape:
            self.record(got is not None, f"{name}: output shape differs, as it must")
            return
        err = float(np.abs(got - expected).max())
        self.record(err >= at_least, f"{name}: max abs diff {err:.3e} (must be at least {at_least:g})")

    def close(self, name, got, expected, tol=TOL):
        if got is None:
            self.record(False, f"{name}: attnlens gave no output")
            return
        if got.shape != expected.shape:
            self.record(False, f"{name}: shape {got.shape}, expected {expected.shape}")
            return
        diff = np.abs(got - expected)
        where = np.unravel_index(np.argmax(diff), diff.shape)
        err = float(diff[where])
        self.record(err <= tol, f"{name}: max abs diff {err:.3e} (tolerance {tol:g}, shape {list(got.shape)}"
                                + ("" if err <= tol else f", worst at {list(map(int, where))}: attnlens "
                                   f"{got[where]:.8g}, torchvision {expected[where]:.8g}") + ")")


def capture(binary, model_dir, x_path, tmp, tag, checks):
    att, logits = os.path.join(tmp, f"{tag}_att.npy"), os.path.join(tmp, f"{tag}_logits.npy")
    proc = subprocess.run([binary, "capture", x_path, "--model", model_dir, "-o", att, "--logits-output", logits,
                           "-q"], capture_output=True, text=True)
    if proc.returncode != 0:
        checks.record(False, f"{tag}: attnlens capture exited {proc.returncode}: {proc.stderr.strip()}")
        return None, None
    return np.load(logits), np.load(att)


def compare(checks, binary, name, model_dir, x_path, tmp, ref_logits, ref_att, logits_name="logits"):
    logits, att = capture(binary, model_dir, x_path, tmp, name.replace(" ", "_").replace(",", ""), checks)
    if logits is None:
        return
    checks.close(f"{name}: {logits_name}", logits, ref_logits)
    checks.close(f"{name}: attention", att, ref_att)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = os.path.abspath(sys.argv[1])
    start = time.time()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    checks = Checks()
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        x = torch.randn(3, 224, 224, generator=gen)
        x_path = os.path.join(tmp, "x.npy")
        np.save(x_path, x.numpy().astype(np.float32))
        timm_config = {"preprocess": {"preset": "none", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
                       "layer_norm_eps": 1e-6}

        # ---- ViT-B/16 (torchvision's own vit_b_16 builder), timm names ----
        vit_b = torchvision.models.vit_b_16(weights=None).eval()
        randomise(vit_b, gen)
        ref = Reference(vit_b)
        ref_logits, ref_att = ref.plain(x)
        # The check can see mistakes: the attention is far from uniform and the heads differ.
        spread = float(ref_att.max(-1).mean())
        head_gap = float(np.abs(ref_att - ref_att[:, ::-1]).max())
        checks.record(spread > 5.0 / ref_att.shape[-1] and head_gap > 100 * TOL,
                      f"vit_b_16 reference is discriminating: mean row max {spread:.3f} (uniform "
                      f"{1 / ref_att.shape[-1]:.4f}), heads reversed differ by {head_gap:.3f}")
        folder = write_model(os.path.join(tmp, "vit_b_16"), timm_names(vit_b), dict(timm_config, num_heads=12))
        compare(checks, binary, "vit_b_16 timm", folder, x_path, tmp, ref_logits, ref_att)
        del vit_b, ref
        os.remove(os.path.join(folder, "model.safetensors"))

        # ---- DeiT-tiny-sized ----
        deit = VisionTransformer(image_size=224, patch_size=16, num_layers=12, num_heads=3, hidden_dim=192,
                                 mlp_dim=768).eval()
        randomise(deit, gen)
        ref = Reference(deit)
        ref_logits, ref_att = ref.plain(x)
        spread = float(ref_att.max(-1).mean())
        checks.record(spread > 5.0 / ref_att.shape[-1], f"deit-tiny reference is discriminating: mean row max "
                                                        f"{spread:.3f} (uniform {1 / ref_att.shape[-1]:.4f})")
        timm = timm_names(deit)
        folder = write_model(os.path.join(tmp, "deit_timm"), timm, dict(timm_config, num_heads=3))
        compare(checks, binary, "deit-tiny timm", folder, x_path, tmp, ref_logits, ref_att)

        # fp16 and bf16 checkpoints: attnlens widens them to float32; the reference is the same model with its
        # weights rounded the same way.
        for dtype, torch_dtype in [("F16", torch.float16), ("BF16", torch.bfloat16)]:
            rounded = copy.deepcopy(deit)
            for layer in rounded.encoder.layers:  # the copy carries `ref`'s recording hooks: drop them
                layer.ln_1._forward_hooks.clear()
            with torch.no_grad():
                for p in rounded.parameters():
                    p.copy_(p.to(torch_dtype).float())
            logits_r, att_r = Reference(rounded).plain(x)
            folder = write_half_model(os.path.join(tmp, f"deit_{dtype}"), timm, dict(timm_config, num_heads=3), dtype)
            compare(checks, binary, f"deit-tiny timm, {dtype} weights", folder, x_path, tmp, logits_r, att_r)

        # Negative control: Q and K swapped in every qkv gives attention softmax(K Q^T) instead, which must show.
        swapped = dict(timm)
        for n in range(12):
            for kind in ["weight", "bias"]:
                t = timm[f"blocks.{n}.attn.qkv.{kind}"]
                swapped[f"blocks.{n}.attn.qkv.{kind}"] = torch.cat([t[192:384], t[:192], t[384:]])
        folder = write_model(os.path.join(tmp, "deit_swapped"), swapped, dict(timm_config, num_heads=3))
        _, att = capture(binary, folder, x_path, tmp, "deit_swapped", checks)
        checks.differs("negative control, deit-tiny with Q and K swapped: attention", att, ref_att, 0.01)

        labels = {str(i): f"class {i:04d}" for i in range(ref_logits.shape[0])}
        hf_config = {"num_attention_heads": 3, "layer_norm_eps": 1e-6, "id2label": labels,
                     "label2id": {v: int(k) for k, v in labels.items()}}
        hf_vit = write_model(os.path.join(tmp, "deit_hf_vit"), hf_names(timm, "vit."), hf_config)
        compare(checks, binary, "deit-tiny HF vit.", hf_vit, x_path, tmp, ref_logits, ref_att)
        for prefix, tag in [("deit.", "deit."), ("", "no prefix")]:
            folder = write_model(os.path.join(tmp, f"deit_hf_{tag}"), hf_names(timm, prefix), hf_config)
            compare(checks, binary, f"deit-tiny HF {tag}", folder, x_path, tmp, ref_logits, ref_att)

        # predict: the top-3 classes in torchvision's order, with their id2label names and probabilities.
        proc = subprocess.run([binary, "predict", x_path, "--model", hf_vit, "--json", "-k", "3"],
                              capture_output=True, text=True)
        order = np.argsort(-ref_logits, kind="stable")[:3]
        probs = np.exp(ref_logits - ref_logits.max())
        probs /= probs.sum()
        try:
            assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr.strip()}"
            top = json.loads(proc.stdout)[0]["top"]
            got = [(t["class"], t["label"]) for t in top]
            want = [(int(c), labels[str(int(c))]) for c in order]
            assert got == want, f"top-3 {got}, torchvision {want}"
            err = max(max(abs(t["logit"] - ref_logits[c]), abs(t["probability"] - probs[c])) for t, c in zip(top, order))
            assert err <= TOL, f"logit/probability differ by {err:.3e}"
            checks.record(True, f"deit-tiny HF predict --json -k 3: {got}, logits/probabilities within {err:.1e} "
                                f"(gap top1-top2 {ref_logits[order[0]] - ref_logits[order[1]]:.3g})")
        except (AssertionError, ValueError, KeyError, IndexError) as e:
            checks.record(False, f"deit-tiny HF predict --json -k 3: {e}")

        # ---- DINO checkpoint: teacher.backbone.* (+ a projection head and a different student to be ignored) ----
        ref_feat, ref_att_dino = ref.features(x)
        dino = {"teacher.backbone." + k: v for k, v in timm.items() if not k.startswith("head.")}
        dino["teacher.head.mlp.0.weight"] = torch.randn(64, 192, generator=gen)
        dino["teacher.head.last_layer.weight"] = torch.randn(10, 64, generator=gen)
        for k, v in timm.items():
            if not k.startswith("head."):
                dino["student.module.backbone." + k] = v + 0.5 * torch.randn(v.shape, generator=gen)
        dino["student.module.head.mlp.0.weight"] = torch.randn(64, 192, generator=gen)
        folder = write_model(os.path.join(tmp, "dino"), dino, dict(timm_config, num_heads=3))
        compare(checks, binary, "deit-tiny DINO teacher.backbone.", folder, x_path, tmp, ref_feat, ref_att_dino,
                logits_name="CLS features")

        # ---- distilled DeiT: the same weights plus dist_token, head_dist and a pos_embed with N+1 rows ----
        d, classes = 192, ref_logits.shape[0]
        dist_token = 0.5 * torch.randn(1, 1, d, generator=gen)
        pos_embed = 0.1 * torch.randn(1, 198, d, generator=gen)
        head_dist = torch.nn.Linear(d, classes)
        with torch.no_grad():
            head_dist.weight.copy_(0.05 * torch.randn(classes, d, generator=gen))
            head_dist.bias.copy_(0.05 * torch.randn(classes, generator=gen))
        ref_logits_d, ref_att_d = ref.distilled(x, dist_token, pos_embed, head_dist)
        distilled = dict(timm, dist_token=dist_token, pos_embed=pos_embed)
        distilled["head_dist.weight"] = head_dist.weight.detach()
        distilled["head_dist.bias"] = head_dist.bias.detach()
        folder = write_model(os.path.join(tmp, "distilled_timm"), distilled, dict(timm_config, num_heads=3))
        compare(checks, binary, "distilled deit-tiny timm", folder, x_path, tmp, ref_logits_d, ref_att_d)
        folder = write_model(os.path.join(tmp, "distilled_hf"), hf_names(distilled, "deit."), hf_config)
        compare(checks, binary, "distilled deit-tiny HF deit.", folder, x_path, tmp, ref_logits_d, ref_att_d)

    print(f"({time.time() - start:.1f} s)")
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
