#!/usr/bin/python3
"""attnlens' chefer-lrp (ALGORITHMS.md 15: Chefer et al., CVPR 2021, exact LRP) against a PyTorch reference written
here from the spec text, not from attnlens' C++. attnlens implements the closed forms of 15.8a; this file takes the
reference's own route of 15.2: every module keeps its input X, detached, and its relevance rule is the z-rule
"Z = f(X), S = safe_divide(R, Z), C = autograd.grad(Z, X, S), R_in = X * C", with Linear split into the alpha 1
beta 0 parts, Add rescaled to the branches' |sums|, Clone merged, the attention products halved, LayerNorm, GELU and
softmax the identity, and the zB rule on the patch convolution (15.3, 15.4). dA is the ordinary gradient of the raw
logit.

Maps (`attnlens explain X.npy --method chefer-lrp --chefer-lrp-variant V --start-layer S`, [grid, grid] float64):
  transformer_attribution  prod_{b >= S} (mean_h max(0, dA * R_A) + I), deeper on the left, row CLS, patch columns
  rollout                  the same with mean_h max(0, R_A)
  last_layer               the last block's mean_h max(0, R_A), row CLS, patch columns
  full                     pixel relevance of the zB rule, summed over channels and over each patch's pixels
each for S = 0 and 1, on the bundled fmnist-vit model (the training tool's module), a random timm-named ViT and a
random DeiT III (LayerScale: x + ls * branch is Add([x, ls * branch]), the branch's relevance handed on unchanged,
as attnlens documents). First the reference rules are checked against the spec's worked examples (15.8) and the
conservation of 15.9 test 1; negative controls make sure the comparison can fail.

Tolerance: max |attnlens - reference| <= 1e-5 * max |reference| (both float32), or twice the reference's own
float32 rounding error (its distance to the same reference in float64) where that is larger. The rules divide by
sums that nearly cancel (the residual Adds), so float32 rounding in the forward pass moves the maps: by ~1e-5 of
their size for transformer_attribution, and for full on the bundled model by most of it (block 0's R_A: 85%), which
makes that one check a smoke test; the random models' full maps, and every map of the random models, agree to the
last bits (the two routes then do the same float operations).

Usage: chefer_lrp_vs_pytorch.py PATH/TO/attnlens REPO_ROOT. Prints one line per check, then "N passed, M failed".
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bundled_vit import load_bundled_model  # noqa: E402  (the training tool's model, independent of attnlens)
from image_family_support import randomise, write_model  # noqa: E402
import deit3_vs_pytorch as deit3_ref  # noqa: E402
from chefer_lrp_rules import (add_rule, clone_rule, conv_zb_rule, einsum_rule, linear_rule,  # noqa: E402
                              safe_divide, z_rule)

torch.set_num_threads(2)
passed = failed = 0
VARIANTS = ("transformer_attribution", "rollout", "last_layer", "full")


def report(name, ok, detail):
    global passed, failed
    print(f"{name}: {detail} {'ok' if ok else 'FAIL'}", flush=True)
    passed += bool(ok)
    failed += not ok


def near(name, got, want, tol):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    err = float(np.abs(got - want).max())
    report(name, err <= tol, f"{np.round(got.ravel(), 6).tolist()} vs spec {np.round(want.ravel(), 6).tolist()}, "
                             f"max |diff| {err:.1e}")


# ---------------------------------------------------------------------------------------------------------------
# The model: a forward over timm-named tensors that keeps every module's input, and its relevance pass (15.4)
# ---------------------------------------------------------------------------------------------------------------

def forward(p, x, depth, heads, eps):
    """Logits [1, C] (with autograd from the parameters) and the kept inputs."""
    keep = {"image": x[None]}
    emb = F.conv2d(x[None], p["patch_embed.proj.weight"], p["patch_embed.proj.bias"],
                   stride=p["patch_embed.proj.weight"].shape[-1]).flatten(2).transpose(1, 2)
    cls = p["cls_token"]
    if p["pos_embed"].shape[1] == emb.shape[1]:  # DeiT III: positions on the patches only
        keep["add"] = (emb, p["pos_embed"])
        t = torch.cat([cls, emb + p["pos_embed"]], 1)
    else:
        tokens = torch.cat([cls, emb], 1)
        keep["add"] = (tokens, p["pos_embed"])
        t = tokens + p["pos_embed"]
    keep["blocks"] = []
    for i in range(depth):
        q = lambda name: p[f"blocks.{i}.{name}"]  # noqa: E731
        k = {"x": t}
        n, dim = t.shape[1], t.shape[2]
        k["n1"] = F.layer_norm(t, (dim,), q("norm1.weight"), q("norm1.bias"), eps)
        qkv = F.linear(k["n1"], q("attn.qkv.weight"), q("attn.qkv.bias"))
        qkv = qkv.reshape(1, n, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
        k["q"], k["k"], k["v"] = qkv[0], qkv[1], qkv[2]
        dots = torch.einsum("bhid,bhjd->bhij", k["q"], k["k"]) * (dim // heads) ** -0.5
        k["attn"] = dots.softmax(-1)
        out = torch.einsum("bhij,bhjd->bhid", k["attn"], k["v"])
        k["out"] = out.transpose(1, 2).reshape(1, n, dim)
        branch = F.linear(k["out"], q("attn.proj.weight"), q("attn.proj.bias"))
        if f"blocks.{i}.ls1.gamma" in p:
            branch = branch * q("ls1.gamma")
        k["branch1"] = branch
        k["mid"] = t + branch
        k["n2"] = F.layer_norm(k["mid"], (dim,), q("norm2.weight"), q("norm2.bias"), eps)
        k["g"] = F.gelu(F.linear(k["n2"], q("mlp.fc1.weight"), q("mlp.fc1.bias")))
        branch = F.linear(k["g"], q("mlp.fc2.weight"), q("mlp.fc2.bias"))
        if f"blocks.{i}.ls2.gamma" in p:
            branch = branch * q("ls2.gamma")
        k["branch2"] = branch
        t = k["mid"] + branch
        keep["blocks"].append(k)
    keep["cls"] = F.layer_norm(t, (t.shape[2],), p["norm.weight"], p["norm.bias"], eps)[:, 0]
    return F.linear(keep["cls"], p["head.weight"], p["head.bias"]), keep


def relprop(p, keep, c, heads, rescale=True, halve=True):
    """(per block R_A [H, N, N], per block the relevance of its input [N, D], pixel relevance [H, W],
    (sum of the token part, sum of the position part) of the top-level Add)."""
    onehot = torch.zeros(1, p["head.weight"].shape[0])
    onehot[0, c] = 1
    r_cls = linear_rule(onehot, keep["cls"], p["head.weight"])
    n, dim = keep["blocks"][0]["x"].shape[1:]
    x_final = torch.zeros(1, n, dim)
    x_final[:, 0] = keep["cls"].detach()
    # IndexSelect(token 0) as the z-rule of a selection: R on token 0 only.
    r = z_rule(lambda t: t[:, 0], [x_final], r_cls)[0]
    r_attn, r_blocks = [None] * len(keep["blocks"]), [None] * len(keep["blocks"])
    half = 2.0 if halve else 1.0
    for i in reversed(range(len(keep["blocks"]))):
        k = keep["blocks"][i]
        q = lambda name: p[f"blocks.{i}.{name}"]  # noqa: E731
        r1, r2 = add_rule(r, k["mid"], k["branch2"], rescale)
        r2 = linear_rule(linear_rule(r2, k["g"], q("mlp.fc2.weight")), k["n2"], q("mlp.fc1.weight"))
        r = clone_rule([r1, r2], k["mid"])
        r1, r2 = add_rule(r, k["x"], k["branch1"], rescale)
        r2 = linear_rule(r2, k["out"], q("attn.proj.weight"))
        r2 = r2.reshape(1, n, heads, dim // heads).transpose(1, 2)
        ra, rv = einsum_rule("bhij,bhjd->bhid", r2, k["attn"], k["v"])
        ra, rv = ra / half, rv / half
        r_attn[i] = ra[0]
        rq, rk = einsum_rule("bhid,bhjd->bhij", ra, k["q"], k["k"])
        r_qkv = torch.stack([rq / half, rk / half, rv]).permute(1, 3, 0, 2, 4).reshape(1, n, 3 * dim)
        r2 = linear_rule(r_qkv, k["n1"], q("attn.qkv.weight"))
        r = clone_rule([r1, r2], k["x"])
        r_blocks[i] = r[0]
    tokens, pos = keep["add"]
    g = tokens.shape[1] if tokens.shape[1] != n else n - 1
    rt, rp = add_rule(r[:, 1:] if tokens.shape[1] != n else r, tokens, pos, rescale)
    side = int(round(g ** 0.5))
    r_conv = rt[:, -g:].transpose(1, 2).reshape(1, dim, side, side)
    w = p["patch_embed.proj.weight"]
    pixels = conv_zb_rule(r_conv, keep["image"], w, w.shape[-1]).sum(1)[0]
    return r_attn, r_blocks, pixels, (float(rt.sum()), float(rp.sum()))


class Reference:
    def __init__(self, params, depth, heads, eps, patch, dtype=torch.float32):
        self.p = {k: v.detach().to(dtype).clone().requires_grad_(True) for k, v in params.items()}
        self.depth, self.heads, self.eps, self.patch, self.dtype = depth, heads, eps, patch, dtype

    def exact(self):
        """The same reference in float64."""
        return Reference(self.p, self.depth, self.heads, self.eps, self.patch, torch.float64)

    def run(self, x, c, **options):
        previous = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)
        try:
            return self._run(x.to(self.dtype), c, **options)
        finally:
            torch.set_default_dtype(previous)

    def _run(self, x, c, **options):
        logits, keep = forward(self.p, x, self.depth, self.heads, self.eps)
        attn = [k["attn"] for k in keep["blocks"]]
        grads = torch.autograd.grad(logits[0, c], attn)
        det = {"image": keep["image"].detach(), "cls": keep["cls"].detach(),
               "add": tuple(t.detach() for t in keep["add"]),
               "blocks": [{n: t.detach() for n, t in k.items()} for k in keep["blocks"]]}
        p = {k: v.detach() for k, v in self.p.items()}
        r_attn, r_blocks, pixels, add_sums = relprop(p, det, c, self.heads, **options)
        return {"logits": logits.detach()[0], "grad": [g[0] for g in grads], "r_attn": r_attn,
                "r_blocks": r_blocks, "pixels": pixels, "add_sums": add_sums}

    def map(self, run, variant, start):
        side = int(round((run["grad"][0].shape[-1] - 1) ** 0.5))
        if variant == "full":
            px = run["pixels"]
            return px.reshape(side, self.patch, side, self.patch).sum((1, 3)).double().numpy()
        if variant == "last_layer":
            cam = run["r_attn"][-1].clamp(min=0).mean(0)
            return cam[0, 1:].reshape(side, side).double().numpy()
        cams = []
        for ra, g in zip(run["r_attn"], run["grad"]):
            cams.append((ra if variant == "rollout" else g * ra).clamp(min=0).mean(0))
        eye = torch.eye(cams[0].shape[0])
        joint = cams[start] + eye
        for b in range(start + 1, len(cams)):
            joint = (cams[b] + eye) @ joint
        return joint[0, 1:].reshape(side, side).double().numpy()


# ---------------------------------------------------------------------------------------------------------------
# The reference checked against the spec
# ---------------------------------------------------------------------------------------------------------------

def spec_examples(ref, x):
    near("spec 15.8 safe_divide((1,1,1,1), (2, 0, -1e-9, -2))",
         safe_divide(torch.ones(4, dtype=torch.float64), torch.tensor([2, 0, -1e-9, -2], dtype=torch.float64)),
         [0.5, 0, 1e9, -0.5], 1e-6)
    near("spec 15.8 Linear alpha1 beta0, x = (1,-2), W = [1,-1]",
         linear_rule(torch.ones(1, 1, dtype=torch.float64), torch.tensor([[1.0, -2]], dtype=torch.float64),
                     torch.tensor([[1.0, -1]], dtype=torch.float64)), [1 / 3, 2 / 3], 1e-9)
    a, b = add_rule(torch.ones(2, dtype=torch.float64), torch.tensor([1.0, 2], dtype=torch.float64),
                    torch.tensor([3.0, -1], dtype=torch.float64))
    near("spec 15.8 Add rescaled, X0 = (1,2), X1 = (3,-1)", torch.cat([a, b]), [0.2, 1.6, -0.6, 0.8], 1e-8)
    ra, rv = einsum_rule("ij,jd->id", torch.ones(2, 1, dtype=torch.float64),
                         torch.tensor([[0.5, 0.5], [1, 0]], dtype=torch.float64),
                         torch.tensor([[1.0], [3]], dtype=torch.float64))
    near("spec 15.8 matmul2 z-rule halved: R_A/2, R_V/2", torch.cat([ra.flatten() / 2, rv.flatten() / 2]),
         [0.125, 0.375, 0.5, 0, 0.625, 0.375], 1e-9)
    run = ref.run(x, 0)
    sums = [float(r.sum()) for r in run["r_blocks"]]
    err = max(abs(s - 1) for s in sums + [sum(run["add_sums"])])
    report("spec 15.9.1 reference conserves relevance at every block input and the position Add (float32)",
           err <= 1e-4, f"sums {np.round(sums, 6).tolist()}, Add parts {np.round(run['add_sums'], 6).tolist()}, "
                        f"max |sum - 1| {err:.1e}")


# ---------------------------------------------------------------------------------------------------------------
# attnlens runs
# ---------------------------------------------------------------------------------------------------------------

def attnlens(tmp, model_dir, x_path, args, tag):
    out = os.path.join(tmp, tag)
    cmd = [binary, "explain", x_path, "--model", model_dir, "--method", "chefer-lrp", *args, "-o", out, "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        report(f"{tag}: attnlens {' '.join(cmd[2:])}", False, f"exit {proc.returncode}: {proc.stderr.strip()[-400:]}")
        return None
    stem = os.path.splitext(os.path.basename(x_path))[0]
    return np.load(os.path.join(out, f"000_{stem}_chefer-lrp.npy"))


def compare(name, got, want, exact, rel=1e-5):
    """got vs the float32 reference `want`, within max(rel * max|want|, 2 * max|want - exact|): `exact` is the same
    reference in float64, so the second term is twice the reference's own float32 rounding error (two float32
    computations, each that far from the exact value, can differ by twice as much)."""
    if got is None:
        return
    if got.shape != want.shape:
        report(name, False, f"shape {list(got.shape)}, expected {list(want.shape)}")
        return
    err, scale = float(np.abs(got - want).max()), float(np.abs(want).max())
    noise = float(np.abs(want - exact).max())
    tol = max(rel * scale, 2 * noise)
    report(name, err <= tol and scale > 0,
           f"max |diff| {err:.2e} (tolerance {tol:.1e}; max |reference| {scale:.3e}, reference float32 vs float64 "
           f"{noise:.1e})")


def differs(name, got, want, rel=1e-3):
    if got is None or got.shape != want.shape:
        return
    err, scale = float(np.abs(got - want).max()), float(np.abs(want).max())
    report(name, err >= rel * scale, f"max |diff| {err:.2e} (must be at least {rel * scale:.1e})")


def check_model(label, ref, model_dir, x, tmp, want_logits=None):
    path = os.path.join(tmp, f"{label.replace(' ', '_')}.npy")
    np.save(path, x.numpy().astype(np.float32))
    with torch.no_grad():
        logits, _ = forward({k: v.detach() for k, v in ref.p.items()}, x, ref.depth, ref.heads, ref.eps)
    c = int(logits[0].argmax())
    if want_logits is not None:
        err = float((logits[0] - want_logits).abs().max())
        report(f"{label}: the reference forward gives the source module's logits", err <= 1e-5,
               f"max |diff| {err:.1e}")
    print(f"# {label}: predicted class {c}, depth {ref.depth}, heads {ref.heads}", flush=True)
    run = ref.run(x, c)
    exact, run64 = ref.exact(), ref.exact().run(x, c)
    tag = label.replace(" ", "-")
    for variant in VARIANTS:
        for start in (0, 1):
            got = attnlens(tmp, model_dir, path, ["--chefer-lrp-variant", variant, "--start-layer", str(start)],
                           f"{tag}_{variant}_{start}")
            want = ref.map(run, variant, start)
            compare(f"{label} chefer-lrp {variant} --start-layer {start}", got, want, exact.map(run64, variant, start))
            if variant == "transformer_attribution" and start == 0:
                plain = ref.run(x, c, rescale=False)
                differs(f"{label} negative control: Add without the rescaling (layers_lrp)", got,
                        ref.map(plain, variant, 0))
                differs(f"{label} negative control: attention products not halved", got,
                        ref.map(ref.run(x, c, halve=False), variant, 0))
                differs(f"{label} negative control: start layer 1 instead of 0", got, ref.map(run, variant, 1))
    # Default variant and start (transformer_attribution, 0), for another class.
    other = int(logits[0].argsort(descending=True)[1])
    got = attnlens(tmp, model_dir, path, ["--category", str(other)], f"{tag}_category")
    compare(f"{label} chefer-lrp defaults --category {other}", got,
            ref.map(ref.run(x, other), "transformer_attribution", 0),
            exact.map(exact.run(x, other), "transformer_attribution", 0))


def bundled_input(gen):
    x = -1 + 0.1 * torch.rand(56, 56, generator=gen)
    yy, xx = torch.meshgrid(torch.arange(56.0), torch.arange(56.0), indexing="ij")
    item = ((yy - 24) / 12) ** 2 + ((xx - 30) / 8) ** 2 < 1
    x = torch.where(item, 0.2 + 0.8 * torch.rand(56, 56, generator=gen), x)
    return x[None].expand(3, -1, -1).contiguous()


def random_vit(tmp, gen):
    """The training tool's module at other sizes: 40 px, patch 8 (5x5 grid), width 48, 3 blocks, 3 heads."""
    vit = reference.VisionTransformer(40, 8, 48, 3, 3, 4, 5).eval()
    randomise(vit, gen)
    with torch.no_grad():
        vit.pos_embed.copy_(0.2 * torch.randn(vit.pos_embed.shape, generator=gen))
        vit.cls_token.copy_(0.5 * torch.randn(vit.cls_token.shape, generator=gen))
        for block in vit.blocks:
            block.attn.qkv.weight[:96].mul_(2.0)
    config = json.load(open(os.path.join(bundled_dir, "config.json")))
    config.update({"image_size": 40, "patch_size": 8, "embed_dim": 48, "depth": 3, "num_heads": 3, "num_classes": 5,
                   "labels": ["a", "b", "c", "d", "e"]})
    state = {k: v.detach().clone() for k, v in vit.state_dict().items()}
    return vit, state, write_model(os.path.join(tmp, "random_vit"), state, config)


if len(sys.argv) != 3:
    print(__doc__)
    sys.exit(2)
binary, root = os.path.abspath(sys.argv[1]), sys.argv[2]
bundled_dir = os.path.join(root, "data", "models", "fmnist-vit")
started = time.time()
bundled, config, reference = load_bundled_model(root)
gen = torch.Generator().manual_seed(21)
x = bundled_input(gen)
ref = Reference(bundled.state_dict(), config["depth"], config["num_heads"], 1e-6, config["patch_size"])
spec_examples(ref, x)
with tempfile.TemporaryDirectory() as tmp:
    with torch.no_grad():
        want = bundled(x[None])[0]
    check_model("fmnist-vit", ref, bundled_dir, x, tmp, want)

    vit, state, folder = random_vit(tmp, gen)
    xr = torch.randn(3, 40, 40, generator=gen)
    with torch.no_grad():
        want = vit(xr[None])[0]
    check_model("random ViT", Reference(state, 3, 3, 1e-6, 8), folder, xr, tmp, want)

    # DeiT III: LayerScale, and position embeddings on the patches only (width 32, 3 blocks, 2 heads, 4x4 grid).
    deit = deit3_ref.make(gen, 32, 3, 2, 16, 4, 5)
    deit_state = deit3_ref.state(deit, ("ls1.gamma", "ls2.gamma"))
    folder = write_model(os.path.join(tmp, "deit3"), deit_state,
                         {"architecture": "deit3_small_patch16_224", "num_heads": 2, "num_classes": 5})
    xd = torch.randn(3, 64, 64, generator=gen)
    want = torch.from_numpy(deit.run(xd)[0]).float()
    check_model("DeiT III", Reference(deit_state, 3, 2, deit3_ref.EPS, 16), folder, xd, tmp, want)

print(f"({time.time() - started:.1f} s)")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
