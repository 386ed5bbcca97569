#!/usr/bin/python3
"""attnlens' relevance methods of ALGORITHMS.md sections 14, 16, 17, 18 and 20 against an independent PyTorch
reference written from the spec text (not from attnlens' C++): the model is tools/train_fmnist_vit.py's
VisionTransformer with its forward pieces patched here, and every modified backward rule is a torch.autograd.Function
of this file.

Methods (`attnlens explain X.npy --method NAME`, the [grid,grid] patch map of DIR/000_x_NAME.npy, float64):
  grad-sam       (20)   mean over layers, heads, query rows of A * relu(dy/dA), key columns of the patches
  agcam          (17)   every block's attention input detached; sum_l sum_h relu(dy/dA_l[h,0,j]) sigmoid(S_l[h,0,j])
  bi-attn        (16.2) head-weighted rollout from --bi-start-layer (default L/4), times the last block's mean
                        attention gradient along x*alpha, alpha in linspace(0,1,--steps) (default 20)
  bi-attn-token  (16.3) token-wise: mean-head A with columns scaled by |vproj_t| / |z_t| (default start 5L/12),
                        then W * |R|
  atman          (18)   per patch k one forward with key column k scaled by --atman-factor after the row-min
                        shift, in every layer; conceptual neighbours (--atman-threshold, cosine of the block-0
                        input tokens); log p_c(unmodified) - log p_c(suppressed)
  cp-lrp, attnlrp (14)  LXT's efficient LRP: LN with stop-grad sigma, GELU identity rule, q/k detached (CP) or
                        the q k^T and A V gradients halved (AttnLRP), zennit generalised Gamma on the patch
                        conv (--gamma-conv) and MLP/head linears (--gamma-linear); sum over channels of x * g_x,
                        summed over each patch's pixels
on the bundled fmnist-vit model and on a random-weight timm-named ViT written here (5x5 grid, 3 layers, 3 heads).
First the reference itself is checked against the spec's worked examples (14.7, 14.11, 16.6, 17.3, 18.7) and
invariants (CP-LRP conservation on a bias-free toy in float64, rule placement, AtMan m = 1).

Tolerance: max |attnlens - reference| <= 1e-5 * max |reference| (attnlens in float32; the reference in float32,
the LRP maps in float64, the exact value that float32 roundings scatter around). AtMan's map is a difference
of two float32 log-probabilities of magnitude ~1, so its rounding floor is absolute (~1e-7 times |log p|), not
relative to the (small) map: it is compared with an absolute 1e-5 instead.

Usage: relevance_vs_pytorch.py PATH/TO/attnlens REPO_ROOT. Prints one line per check, then "N passed, M failed".
"""
import json
import math
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

torch.set_num_threads(2)
passed = failed = 0


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
# Modified backward rules (spec 14.2, 14.3), written from the spec text
# ---------------------------------------------------------------------------------------------------------------

def sign0(t):
    """sign with sign0(0) = +1."""
    return torch.where(t >= 0, torch.ones_like(t), -torch.ones_like(t))


def stab(t, eps):
    return t + eps * sign0(t)


class IdentityRule(torch.autograd.Function):
    """14.2(a): o = gelu(h); backward g_h = gelu(h) / (h + 1e-10) * g_o (plain +1e-10, not sign-aware)."""

    @staticmethod
    def forward(ctx, h):
        o = F.gelu(h)
        ctx.save_for_backward(o / (h + 1e-10))
        return o

    @staticmethod
    def backward(ctx, g):
        (q,) = ctx.saved_tensors
        return q * g


class DivideGradient(torch.autograd.Function):
    """Identity forward, g -> g / c backward."""

    @staticmethod
    def forward(ctx, t, c):
        ctx.c = c
        return t.view_as(t)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.c, None


def divide_gradient(t, c):
    return DivideGradient.apply(t, c)


class Gamma(torch.autograd.Function):
    """zennit's generalised Gamma (14.3) as LXT's gradient rewrite: z = layer(x) (Linear, or Conv2d with kernel =
    stride when `stride` is given); backward: R = g_z * z; W^{g+-} = W + g W^{+-}, b likewise;
    o0 = W^{g+} x+ + b^{g+}, o1 = W^{g-} x-, o2 = W^{g-} x+ + b^{g-}, o3 = W^{g+} x-;
    u+ = R [z>0] / stab(o0+o1), u- = R [z<0] / stab(o2+o3) (stab 1e-6, sign-aware);
    R_x = x+ (W^{g+})^T u+ + x- (W^{g-})^T u+ + x+ (W^{g-})^T u- + x- (W^{g+})^T u-; g_x = R_x / stab(x, 1e-10)."""

    @staticmethod
    def forward(ctx, x, weight, bias, gamma, stride):
        z = F.conv2d(x, weight, bias, stride=stride) if stride else F.linear(x, weight, bias)
        ctx.save_for_backward(x, weight, bias, z)
        ctx.gamma, ctx.stride = gamma, stride
        return z

    @staticmethod
    def backward(ctx, g):
        x, w, b, z = ctx.saved_tensors
        gamma, stride = ctx.gamma, ctx.stride

        def layer(inp, weight, bias):
            return F.conv2d(inp, weight, bias, stride=stride) if stride else F.linear(inp, weight, bias)

        def transposed(weight, u):  # W^T u, the layer's vector-Jacobian product with respect to its input
            if stride:
                return torch.nn.grad.conv2d_input(x.shape, weight, u, stride=stride)
            return u @ weight

        wp, wn = w + gamma * w.clamp(min=0), w + gamma * w.clamp(max=0)
        bp, bn = b + gamma * b.clamp(min=0), b + gamma * b.clamp(max=0)
        xp, xn = x.clamp(min=0), x.clamp(max=0)
        o0, o1 = layer(xp, wp, bp), layer(xn, wn, None)
        o2, o3 = layer(xp, wn, bn), layer(xn, wp, None)
        r = g * z
        up = r * (z > 0).to(r.dtype) / stab(o0 + o1, 1e-6)
        un = r * (z < 0).to(r.dtype) / stab(o2 + o3, 1e-6)
        rx = xp * transposed(wp, up) + xn * transposed(wn, up) + xp * transposed(wn, un) + xn * transposed(wp, un)
        return rx / stab(x, 1e-10), None, None, None, None


class EpsilonRule(torch.autograd.Function):
    """14.10.1: the epsilon rule on a layer z = layer(x) written as a gradient: R_z = g_z * z,
    R_x = x * W^T (R_z / stab(z, eps)), so g_x = W^T (g_z * z / stab(z, eps)) (Linear, or the patch conv when `stride`
    is given)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps, stride):
        z = F.conv2d(x, weight, bias, stride=stride) if stride else F.linear(x, weight, bias)
        ctx.save_for_backward(weight, z)
        ctx.eps, ctx.stride, ctx.shape = eps, stride, x.shape
        return z

    @staticmethod
    def backward(ctx, g):
        w, z = ctx.saved_tensors
        s = g * z / stab(z, ctx.eps)
        if ctx.stride:
            return torch.nn.grad.conv2d_input(ctx.shape, w, s, stride=ctx.stride), None, None, None, None
        return s @ w, None, None, None, None


# ---------------------------------------------------------------------------------------------------------------
# The model's forward pieces, patched (one Options object decides how they run)
# ---------------------------------------------------------------------------------------------------------------

class Options:
    def __init__(self, attention="plain", lrp=False, gamma_conv=0.0, gamma_lin=0.0, gamma_attn=False,
                 factors=None, placement="products", epsilon=0.0):
        self.attention = attention      # plain | agcam (input detached) | cp (q, k detached) | attnlrp
        self.lrp = lrp                  # LayerNorm with stop-grad sigma and the GELU identity rule
        self.gamma_conv, self.gamma_lin, self.gamma_attn = gamma_conv, gamma_lin, gamma_attn
        self.factors = factors          # AtMan: [B, N] key-column multipliers after the row-min shift
        self.placement = placement      # attnlrp: "products" ((qk^T)/2, (AV)/2) or "inputs" (q/4, k/4, v/2)
        self.epsilon = epsilon          # the epsilon rule on the layers without Gamma (LRP only)
        self.records = []               # per block: z (block input), A, S, vproj
        self.tokens0 = None             # the tokens entering block 0


OPT = Options()


def norm(ln, x):
    if not OPT.lrp:
        return ln(x)
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    y = (x - mu) / torch.sqrt(var + ln.eps).detach()
    return y * ln.weight + ln.bias


def linear(mod, x, gamma):
    if gamma:
        return Gamma.apply(x, mod.weight, mod.bias, gamma, None)
    if OPT.lrp and OPT.epsilon and x.requires_grad:
        return EpsilonRule.apply(x, mod.weight, mod.bias, OPT.epsilon, None)
    return mod(x)


def attention_forward(self, x):
    if OPT.attention == "agcam":
        x = x.detach()
    b, n, c = x.shape
    h, d = self.heads, c // self.heads
    qkv = linear(self.qkv, x, OPT.gamma_lin if OPT.gamma_attn else 0.0)
    q, k, v = qkv.reshape(b, n, 3, h, d).permute(2, 0, 3, 1, 4)
    if OPT.attention == "cp":
        q, k = q.detach(), k.detach()
    if OPT.attention == "attnlrp" and OPT.placement == "inputs":
        q, k, v = divide_gradient(q, 4), divide_gradient(k, 4), divide_gradient(v, 2)
    if OPT.factors is not None:  # AtMan 18.1: raw q k^T, minus the row minimum, key columns times m, then the scale
        raw = q @ k.transpose(-2, -1)
        raw = raw - raw.min(dim=-1, keepdim=True).values
        s = raw * OPT.factors[:, None, None, :] * self.scale
    else:
        s = (q * self.scale) @ k.transpose(-2, -1)
    if OPT.attention == "attnlrp" and OPT.placement == "products":
        s = divide_gradient(s, 2)
    a = s.softmax(dim=-1)
    context = a @ v
    if OPT.attention == "attnlrp" and OPT.placement == "products":
        context = divide_gradient(context, 2)
    rec = OPT.records[-1]
    rec["A"], rec["S"] = a, s.detach()
    rec["vproj"] = (v.transpose(1, 2).reshape(b, n, c) @ self.proj.weight.t()).detach()  # no projection bias
    return linear(self.proj, context.transpose(1, 2).reshape(b, n, c), OPT.gamma_lin if OPT.gamma_attn else 0.0)


def mlp_forward(self, x):
    u = linear(self.fc1, x, OPT.gamma_lin)
    return linear(self.fc2, IdentityRule.apply(u) if OPT.lrp else F.gelu(u), OPT.gamma_lin)


def block_forward(self, x):
    OPT.records.append({"z": x.detach()})
    x = x + self.attn(norm(self.norm1, x))
    return x + self.mlp(norm(self.norm2, x))


def vit_forward(self, x):
    conv = self.patch_embed.proj
    if OPT.gamma_conv:
        t = Gamma.apply(x, conv.weight, conv.bias, OPT.gamma_conv, conv.stride)
    elif OPT.lrp and OPT.epsilon:
        t = EpsilonRule.apply(x, conv.weight, conv.bias, OPT.epsilon, conv.stride)
    else:
        t = conv(x)
    t = t.flatten(2).transpose(1, 2)
    t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1) + self.pos_embed
    OPT.tokens0 = t.detach()
    for block in self.blocks:
        t = block(t)
    return linear(self.head, norm(self.norm, t)[:, 0], OPT.gamma_lin)


def patch(reference):
    reference.Attention.forward = attention_forward
    reference.Mlp.forward = mlp_forward
    reference.Block.forward = block_forward
    reference.VisionTransformer.forward = vit_forward


def forward(model, x, **options):
    """logits of the batch x [B,3,S,S] under the given options; OPT.records holds the per-block tensors."""
    global OPT
    OPT = Options(**options)
    return model(x)


# ---------------------------------------------------------------------------------------------------------------
# The methods (maps as float64 [grid, grid])
# ---------------------------------------------------------------------------------------------------------------

def grid_of(values):
    side = int(round(math.sqrt(values.shape[-1])))
    return values.reshape(side, side).double().numpy()


def predicted(model, x):
    with torch.no_grad():
        return int(forward(model, x[None])[0].argmax())


CACHE = {}  # several checks share a pass: (what, model, input, class, ...) -> result


def attentions_and_gradients(model, x, c, **options):
    key = ("gradients", id(model), id(x), c, tuple(sorted(options.items())))
    if key not in CACHE:
        logits = forward(model, x[None].clone().requires_grad_(True), **options)
        a = [r["A"] for r in OPT.records]
        grads = torch.autograd.grad(logits[0, c], a)
        records = [{k: v for k, v in r.items() if k != "A"} for r in OPT.records]
        CACHE[key] = records, torch.stack([t[0] for t in a]).detach(), torch.stack([g[0] for g in grads])
    return CACHE[key]


def grad_sam(model, x, c):
    _, a, da = attentions_and_gradients(model, x, c)
    s = (a.double() * da.double().clamp(min=0)).mean(dim=(0, 1, 2))
    return grid_of(s[1:])


def agcam_combine(scores, grads):
    """17.2 steps 3-4 on the CLS rows [L, H, N] (key 0 = CLS): sum_l sum_h relu(grad) * sigmoid(score), keys 1.."""
    m = grads.clamp(min=0) * torch.sigmoid(scores)
    return m.sum(dim=(0, 1))[1:]


def agcam(model, x, c, detach=True):
    records, _, da = attentions_and_gradients(model, x, c, attention="agcam" if detach else "plain")
    scores = torch.stack([r["S"][0, :, 0, :] for r in records]).double()
    return grid_of(agcam_combine(scores, da[:, :, 0, :].double()))


def head_weights(a, da):
    """16.2: I_h = mean_{i,j} |(A_h^T dA_h)[i,j]|, w = I / sum I; returns (w, sum_h w_h A_h)."""
    importance = (a.transpose(-2, -1) @ da).abs().mean(dim=(-2, -1))
    w = importance / importance.sum()
    return w, (w[:, None, None] * a).sum(0)


def token_ratio(vproj, z):
    """16.3: o_t = |vproj[t]|_2 / |z[t]|_2."""
    return vproj.norm(dim=-1) / z.norm(dim=-1)


def ig_weight(model, x, c, steps):
    """16.2 step 3: W = mean_h max(0, sum_alpha dA_last(x * alpha) / steps), alpha in linspace(0, 1, steps)."""
    key = ("ig", id(model), id(x), c, steps)
    if key not in CACHE:
        alphas = torch.linspace(0, 1, steps)
        logits = forward(model, (x[None] * alphas[:, None, None, None]).requires_grad_(True))
        (grad,) = torch.autograd.grad(logits[:, c].sum(), OPT.records[-1]["A"])  # items independent: per-item grads
        CACHE[key] = (grad.double().sum(0) / steps).clamp(min=0).mean(0)
    return CACHE[key]


def bi_attn(model, x, c, start, steps, token=False):
    records, a, da = attentions_and_gradients(model, x, c)
    a, da = a.double(), da.double()
    n = a.shape[-1]
    r = torch.eye(n, dtype=torch.float64)
    for b in range(start, a.shape[0]):
        if token:
            o = token_ratio(records[b]["vproj"][0].double(), records[b]["z"][0].double())
            mixed = a[b].mean(0) * o[None, :]  # A_mean @ diag(o)
        else:
            _, mixed = head_weights(a[b], da[b])
        r = r + mixed @ r
    w = ig_weight(model, x, c, steps)
    r = w * (r.abs() if token else r)
    return grid_of(r[0, 1:])


def cosine_matrix(e):
    """18.2: float32 cosine similarity, a / max(|a|, 1e-8), clipped to [-1, 1]."""
    e = e.float()
    u = e / e.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    return (u @ u.t()).clamp(-1, 1)


def atman_factors(cos, k, m, threshold):
    """Key-column multipliers of token k's pass: m at k; neighbours j != k with cos >= threshold get
    (1 - m)(1 - cos) + m; 1 elsewhere."""
    f = torch.ones(cos.shape[0], dtype=torch.float32)
    if threshold is not None:
        for j in range(cos.shape[0]):
            if j != k and cos[k, j] >= threshold:
                f[j] = (1 - m) * (1 - cos[k, j]) + m
    f[k] = m
    return f


def atman_probabilities(s, factors, scale, mask=None):
    """18.1 on raw scores s [..., T]: minus the row minimum (over all keys), times the column factors, times the
    scale, masked keys (mask True) -inf, softmax."""
    s = (s - s.min(dim=-1, keepdim=True).values) * factors * scale
    if mask is not None:
        s = s.masked_fill(mask, float("-inf"))
    return s.softmax(dim=-1)


def atman(model, x, c, m=0.1, threshold=0.6, shift=True):
    with torch.no_grad():
        base = forward(model, x[None]).double().log_softmax(-1)[0, c]
        n = OPT.tokens0.shape[1]
        cos = cosine_matrix(OPT.tokens0[0])
        factors = torch.stack([atman_factors(cos, k, m, threshold) for k in range(1, n)])
        if shift:
            logits = forward(model, x[None].expand(n - 1, -1, -1, -1), factors=factors)
        else:  # negative control: the factors on the scaled scores without the row-min shift (BLIP-like, 18.6)
            logits = scaled_factor_forward(model, x, factors)
        suppressed = logits.double().log_softmax(-1)[:, c]
    return grid_of(base - suppressed)


def scaled_factor_forward(model, x, factors):
    attention = type(model.blocks[0].attn)

    def unshifted(self, t):
        b, n, c = t.shape
        q, k, v = self.qkv(t).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        a = ((q * self.scale) @ k.transpose(-2, -1) * factors[:, None, None, :]).softmax(-1)
        return self.proj((a @ v).transpose(1, 2).reshape(b, n, c))

    attention.forward = unshifted
    try:
        return forward(model, x[None].expand(factors.shape[0], -1, -1, -1))
    finally:
        attention.forward = attention_forward


def lrp(model, x, c, method, gamma_conv=0.25, gamma_lin=0.05, gamma_attn=False, placement="products", epsilon=0.0):
    """The patch map in float64 (the model is converted for the pass and back: float32 -> float64 -> float32 is
    exact), so that the comparison measures attnlens' float32 rounding alone, not the reference's as well: with the
    epsilon rule a float32 reference strays from the float64 one by twice as much as attnlens does."""
    dtype = next(model.parameters()).dtype
    model.to(torch.float64)
    xr = x[None].to(torch.float64).requires_grad_(True)
    try:
        logits = forward(model, xr, attention="cp" if method == "cp-lrp" else "attnlrp", lrp=True,
                         gamma_conv=gamma_conv, gamma_lin=gamma_lin, gamma_attn=gamma_attn, placement=placement,
                         epsilon=epsilon)
        (g,) = torch.autograd.grad(logits[0, c], xr)
    finally:
        model.to(dtype)
    pixels = (xr * g)[0].sum(0).detach().double()  # [S, S]
    p = model.patch_embed.proj.stride[0]
    side = pixels.shape[0] // p
    return pixels.reshape(side, p, side, p).sum(dim=(1, 3)).numpy()


# ---------------------------------------------------------------------------------------------------------------
# The reference against the spec's worked examples and invariants
# ---------------------------------------------------------------------------------------------------------------

def spec_examples(model):
    global OPT
    d64 = torch.float64
    # 14.7 identity rule, bias-free 2-layer MLP
    x = torch.tensor([2.0, 1.0], dtype=d64, requires_grad=True)
    w1 = torch.tensor([[1.0, 0.5], [-1.0, 1.0]], dtype=d64)
    y = torch.tensor([1.0, 2.0], dtype=d64) @ IdentityRule.apply(w1 @ x)
    (g,) = torch.autograd.grad(y, x)
    near("spec 14.7 identity rule R_x", (x * g).detach(), [1.3530, 0.8142], 1e-4)
    # 14.7 LayerNorm with detached sigma (no affine, eps 1e-6), x = (1, 2, 6), explain y0
    OPT = Options(lrp=True)
    x = torch.tensor([1.0, 2.0, 6.0], dtype=d64, requires_grad=True)
    ln = torch.nn.LayerNorm(3, eps=1e-6, elementwise_affine=True).double()
    with torch.no_grad():
        ln.weight.fill_(1)
        ln.bias.zero_()
    y = norm(ln, x)[0]
    (g,) = torch.autograd.grad(y, x)
    near(f"spec 14.7 LN with stop-grad sigma (y0 = {y.item():.5f}) R_x", (x * g).detach(), [0.3086, -0.3086, -0.9258],
         1e-4)
    # 14.7 uniform rule on z = a b
    a = torch.tensor(2.0, dtype=d64, requires_grad=True)
    b = torch.tensor(3.0, dtype=d64, requires_grad=True)
    ga, gb = torch.autograd.grad(divide_gradient(a * b, 2), (a, b))
    near("spec 14.7 uniform rule (R_a, R_b)", [a.item() * ga.item(), b.item() * gb.item()], [3, 3], 1e-12)
    # 14.7 zennit Gamma, one output: x = (2, 1), W = [1, -0.5], b = 0.5, R = z
    want = {0.0: [2.0, -0.5], 0.25: [1.9048, -0.3810], 100.0: [1.6032, -0.0040]}
    for gamma, rx in want.items():
        x = torch.tensor([[2.0, 1.0]], dtype=d64, requires_grad=True)
        z = Gamma.apply(x, torch.tensor([[1.0, -0.5]], dtype=d64), torch.tensor([0.5], dtype=d64), gamma, None)
        (g,) = torch.autograd.grad(z.sum(), x)  # seed 1 -> R = z
        near(f"spec 14.7 zennit Gamma({gamma:g}) R_x", (x * g).detach(), rx, 1e-4)
        if gamma == 0.25:
            near("spec 14.7 zennit Gamma(0.25) patched gradient R_x / x", g.detach(), [0.9524, -0.3810], 1e-4)
    # 14.11 CP vs AttnLRP value path: A = [[.5,.5],[1,0]] constant, V = [[1],[3]], y = sum A V
    att = torch.tensor([[0.5, 0.5], [1.0, 0.0]], dtype=d64)
    v = torch.tensor([[1.0], [3.0]], dtype=d64, requires_grad=True)
    (g,) = torch.autograd.grad((att @ v).sum(), v)
    near("spec 14.11 CP value path R_V", (v * g).detach(), [1.5, 1.5], 1e-12)
    (g,) = torch.autograd.grad(divide_gradient(att @ v, 2).sum(), v)
    near("spec 14.11 AttnLRP value path R_V", (v * g).detach(), [0.75, 0.75], 1e-12)

    # 16.6 Beyond Intuition head weights and the token ratio
    a = torch.tensor([[[.5, .5], [.2, .8]], [[.9, .1], [.4, .6]]], dtype=d64)
    da = torch.tensor([[[1, 0], [0, -1]], [[.2, 0], [0, .1]]], dtype=d64)
    w, mixed = head_weights(a, da)
    near("spec 16.6 head weights w", w, [0.869565, 0.130435], 1e-6)
    near("spec 16.6 weighted attention", mixed, [[0.552174, 0.447826], [0.226087, 0.773913]], 1e-6)
    o = token_ratio(torch.tensor([[3.0, 4.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    near("spec 16.6 token ratio o", o, [5, 0.5], 1e-7)

    # 17.3 AG-CAM, L = 2, H = 2, N = 3 (CLS rows)
    s = torch.tensor([[[0, 1, -1], [2, 0, 0]], [[0, .5, .5], [1, -2, 3]]], dtype=d64)
    g = torch.tensor([[[.3, -.2, .4], [.1, .5, -.1]], [[0, .2, .2], [0, -1, 1]]], dtype=d64)
    near("spec 17.3 AG-CAM over keys 1, 2", agcam_combine(s, g), [0.374492, 1.184643], 1e-6)

    # 18.7 AtMan attention row (d = 4, key 3 masked) and conceptual neighbours
    s = torch.tensor([1.0, 3.0, -1.0, 0.5], dtype=d64)
    mask = torch.tensor([False, False, False, True])
    f = torch.ones(4, dtype=d64)
    near("spec 18.7 AtMan unmodified row", atman_probabilities(s, f, 0.5, mask), [0.244728, 0.665241, 0.090031, 0],
         1e-6)
    f[1] = 0.1
    near("spec 18.7 AtMan row, key 1 x 0.1", atman_probabilities(s, f, 0.5, mask), [0.550295, 0.247263, 0.202442, 0],
         1e-6)
    cos = cosine_matrix(torch.tensor([[1, 0, 0], [0.8, 0.6, 0], [0, 1, 0], [-1, 0, 0]], dtype=torch.float32))
    near("spec 18.7 cosine row of token 1", cos[1], [0.8, 1, 0.6, -0.8], 1e-6)
    near("spec 18.7 factors of token 1's pass {1: 0.1, 0: 0.28, 2: 0.46}", atman_factors(cos, 1, 0.1, 0.6),
         [0.28, 0.1, 0.46, 1], 1e-6)
    near("spec 18.7 factors of token 3's pass (no neighbours)", atman_factors(cos, 3, 0.1, 0.6), [1, 1, 1, 0.1], 1e-7)

    # 14.9.1 CP-LRP conservation on a bias-free toy (float64): 2 pre-LN blocks, D 8, H 2, N 5, 3 classes; all
    # biases 0, LN without bias, no CLS/position parameters; the tokens are the explained input.
    gen = torch.Generator().manual_seed(3)
    toy = reference.VisionTransformer(7, 7, 8, 2, 2, 4, 3).double()
    with torch.no_grad():
        for name, p in toy.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif "norm" in name:
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=gen, dtype=d64))
            else:
                p.copy_(torch.randn(p.shape, generator=gen, dtype=d64) / math.sqrt(8))
    tokens = torch.randn(1, 5, 8, generator=gen, dtype=d64, requires_grad=True)
    sums = {}
    for method in ("cp", "attnlrp", "plain"):
        OPT = Options(attention=method, lrp=method != "plain")
        t = tokens
        for block in toy.blocks:
            t = block(t)
        y = F.linear(norm(toy.norm, t)[:, 0], toy.head.weight)[0, 0]
        (g,) = torch.autograd.grad(y, tokens)
        sums[method] = ((tokens * g).sum().item(), y.item())
    total, y = sums["cp"]
    report("spec 14.9.1 CP-LRP conservation, bias-free toy (float64)", abs(total - y) <= 1e-9 * abs(y),
           f"sum R {total:.10f} vs logit {y:.10f}")
    report("spec 14.7 AttnLRP and plain gradient x input are not conservative on that toy",
           abs(sums["attnlrp"][0] - y) > 1e-3 and abs(sums["plain"][0] - y) > 1e-3,
           f"AttnLRP sum {sums['attnlrp'][0]:.4f}, plain {sums['plain'][0]:.4f}, logit {y:.4f}")

    # 14.9.5 rule placement, 14.9.6 forward invariance, 18.8.1 AtMan m = 1, on the real model
    x = torch.randn(3, 56, 56, generator=gen)
    c = predicted(model, x)
    one = lrp(model, x, c, "attnlrp", 0, 0, placement="products")
    other = lrp(model, x, c, "attnlrp", 0, 0, placement="inputs")
    err = np.abs(one - other).max()
    report("spec 14.9.5 AttnLRP (qk^T)/2, (AV)/2 == q/4, k/4, v/2 (bundled model)", err <= 1e-6 * np.abs(one).max(),
           f"max |diff| {err:.1e}")
    with torch.no_grad():
        plain = forward(model, x[None])
        patched = forward(model, x[None], attention="cp", lrp=True, gamma_conv=0.25, gamma_lin=0.05)
        err = float((plain - patched).abs().max())
        report("spec 14.9.6 LRP-patched forward == plain forward (logits)", err <= 1e-5 * float(plain.abs().max()),
               f"max |diff| {err:.1e}")
        atm = forward(model, x[None], factors=torch.ones(1, 65))
        err = float((plain - atm).abs().max())
        report("spec 18.8.1 AtMan with every factor 1 == plain forward (logits)", err <= 1e-5, f"max |diff| {err:.1e}")


# ---------------------------------------------------------------------------------------------------------------
# attnlens runs
# ---------------------------------------------------------------------------------------------------------------

def attnlens(tmp, model_dir, x_path, methods, args, tag):
    """{method: the [grid,grid] map} of one `attnlens explain` call; None for a method whose file is missing."""
    out = os.path.join(tmp, tag)
    cmd = [binary, "explain", x_path, "--model", model_dir, *[a for m in methods for a in ("--method", m)],
           *args, "-o", out, "-q"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        proc = subprocess.CompletedProcess(cmd, 127, "", str(e))
    if proc.returncode != 0:
        report(f"{tag}: attnlens {' '.join(cmd[2:])}", False, f"exit {proc.returncode}: {proc.stderr.strip()[-400:]}")
        return {m: None for m in methods}
    stem = os.path.splitext(os.path.basename(x_path))[0]
    maps = {}
    for m in methods:
        path = os.path.join(out, f"000_{stem}_{m}.npy")
        maps[m] = np.load(path) if os.path.exists(path) else None
        if maps[m] is None:
            report(f"{tag}: {m}", False, f"no {os.path.basename(path)} written")
    return maps


def compare(name, got, want, absolute=None, rel=1e-5):
    if got is None:
        return
    if got.shape != want.shape:
        report(name, False, f"shape {list(got.shape)}, expected {list(want.shape)}")
        return
    err = float(np.abs(got - want).max())
    scale = float(np.abs(want).max())
    tol = absolute if absolute is not None else rel * scale
    detail = f"max |diff| {err:.2e} (tolerance {tol:.1e}, max |reference| {scale:.3e})"
    if err > tol:
        where = np.unravel_index(np.argmax(np.abs(got - want)), got.shape)
        detail += f", worst at {list(map(int, where))}: attnlens {got[where]:.8g}, reference {want[where]:.8g}"
    report(name, err <= tol, detail)


def differs(name, got, want, rel=1e-3):
    """Negative control: a deliberately different reference must be told apart from attnlens' output."""
    if got is None or got.shape != want.shape:
        return
    err = float(np.abs(got - want).max())
    scale = float(np.abs(want).max())
    report(name, err >= rel * scale, f"max |diff| {err:.2e} (must be at least {rel * scale:.1e})")


def check_model(label, model, model_dir, x, tmp):
    depth = len(model.blocks)
    path = os.path.join(tmp, "x.npy")
    np.save(path, x.numpy().astype(np.float32))
    c = predicted(model, x)
    with torch.no_grad():
        second = int(forward(model, x[None])[0].argsort(descending=True)[1])  # another class, for --category
    start_h, start_t = depth // 4, (5 * depth) // 12
    cos = cosine_matrix(OPT.tokens0[0])  # tokens of the last forward (predicted's)
    off = cos - 10 * torch.eye(cos.shape[0])

    def neighbours(threshold):
        return f"{int((off[1:] >= threshold).sum())} conceptual neighbours over the {cos.shape[0] - 1} passes"

    print(f"# {label}: predicted class {c}, depth {depth} (bi-attn start {start_h}, bi-attn-token start {start_t})",
          flush=True)

    all_methods = ["grad-sam", "agcam", "bi-attn", "bi-attn-token", "atman", "cp-lrp", "attnlrp"]
    tag = label.replace(" ", "-")
    got = attnlens(tmp, model_dir, path, all_methods, [], f"{tag}_defaults")
    compare(f"{label} grad-sam", got["grad-sam"], grad_sam(model, x, c))
    want = agcam(model, x, c)
    compare(f"{label} agcam", got["agcam"], want)
    differs(f"{label} agcam negative control: attention inputs NOT detached", got["agcam"], agcam(model, x, c, False))
    compare(f"{label} bi-attn (start {start_h}, 20 steps)", got["bi-attn"], bi_attn(model, x, c, start_h, 20))
    compare(f"{label} bi-attn-token (start {start_t}, 20 steps)", got["bi-attn-token"],
            bi_attn(model, x, c, start_t, 20, token=True))
    compare(f"{label} atman (factor 0.1, threshold 0.6: {neighbours(0.6)}; absolute tolerance)", got["atman"],
            atman(model, x, c), absolute=1e-5)
    differs(f"{label} atman negative control: factor on the scaled scores without the row-min shift", got["atman"],
            atman(model, x, c, shift=False))
    want_cp = lrp(model, x, c, "cp-lrp")
    compare(f"{label} cp-lrp (gamma conv 0.25, linear 0.05)", got["cp-lrp"], want_cp)
    compare(f"{label} attnlrp (gamma conv 0.25, linear 0.05)", got["attnlrp"], lrp(model, x, c, "attnlrp"))

    got = attnlens(tmp, model_dir, path, ["cp-lrp", "attnlrp"], ["--gamma-conv", "0", "--gamma-linear", "0"],
                   f"{tag}_pure")
    compare(f"{label} cp-lrp pure rules (gamma 0)", got["cp-lrp"], lrp(model, x, c, "cp-lrp", 0, 0))
    compare(f"{label} attnlrp pure rules (gamma 0)", got["attnlrp"], lrp(model, x, c, "attnlrp", 0, 0))
    differs(f"{label} cp-lrp negative control: gamma 0 vs the default gammas", got["cp-lrp"], want_cp)

    got = attnlens(tmp, model_dir, path, ["cp-lrp", "attnlrp"],
                   ["--gamma-conv", "0.1", "--gamma-linear", "0.2", "--gamma-attention-projections"], f"{tag}_gqkv")
    want = lrp(model, x, c, "cp-lrp", 0.1, 0.2, True)
    compare(f"{label} cp-lrp gamma conv 0.1, linear 0.2, --gamma-attention-projections", got["cp-lrp"], want)
    differs(f"{label} cp-lrp negative control: the same without gamma on qkv/proj", got["cp-lrp"],
            lrp(model, x, c, "cp-lrp", 0.1, 0.2, False))
    compare(f"{label} attnlrp gamma conv 0.1, linear 0.2, --gamma-attention-projections", got["attnlrp"],
            lrp(model, x, c, "attnlrp", 0.1, 0.2, True))

    # The epsilon rule (14.10.1) on the layers without Gamma: every linear but none of the Gammas' (conv keeps 0.25),
    # then everywhere (Gamma off), the patch conv included.
    got = attnlens(tmp, model_dir, path, ["cp-lrp", "attnlrp"], ["--gamma-linear", "0", "--lrp-epsilon", "0.1"],
                   f"{tag}_eps")
    want = lrp(model, x, c, "cp-lrp", 0.25, 0, epsilon=0.1)
    compare(f"{label} cp-lrp --lrp-epsilon 0.1 --gamma-linear 0", got["cp-lrp"], want)
    differs(f"{label} cp-lrp negative control: epsilon 0.1 vs 0", got["cp-lrp"], lrp(model, x, c, "cp-lrp", 0.25, 0))
    compare(f"{label} attnlrp --lrp-epsilon 0.1 --gamma-linear 0", got["attnlrp"],
            lrp(model, x, c, "attnlrp", 0.25, 0, epsilon=0.1))
    got = attnlens(tmp, model_dir, path, ["cp-lrp"], ["--gamma-conv", "0", "--gamma-linear", "0", "--lrp-epsilon",
                                                       "0.5"], f"{tag}_eps_all")
    compare(f"{label} cp-lrp --lrp-epsilon 0.5, no Gamma (the patch conv too)", got["cp-lrp"],
            lrp(model, x, c, "cp-lrp", 0, 0, epsilon=0.5))

    got = attnlens(tmp, model_dir, path, ["atman"], ["--atman-threshold", "none"], f"{tag}_atman_none")
    compare(f"{label} atman --atman-threshold none (absolute tolerance)", got["atman"], atman(model, x, c, 0.1, None),
            absolute=1e-5)
    got = attnlens(tmp, model_dir, path, ["atman"], ["--atman-factor", "0.3", "--atman-threshold", "0.4"],
                   f"{tag}_atman_03")
    compare(f"{label} atman --atman-factor 0.3 --atman-threshold 0.4 ({neighbours(0.4)}; absolute tolerance)",
            got["atman"], atman(model, x, c, 0.3, 0.4), absolute=1e-5)
    got = attnlens(tmp, model_dir, path, ["atman"], ["--atman-factor", "1", "--atman-threshold", "none"],
                   f"{tag}_atman_1")
    if got["atman"] is not None:
        err = float(np.abs(got["atman"]).max())
        # Exactly 0 in exact arithmetic; the shifted scores round differently in float32 (seen: up to 9e-7).
        report(f"{label} atman --atman-factor 1 --atman-threshold none is all zero", err <= 1e-5,
               f"max |map| {err:.1e}")

    s_h, s_t = depth - 1, 0  # the last block only (16.7 test 1) and every block
    got = attnlens(tmp, model_dir, path, ["bi-attn", "bi-attn-token"], ["--bi-start-layer", str(s_h), "--steps", "5"],
                   f"{tag}_bi_last")
    compare(f"{label} bi-attn --bi-start-layer {s_h} --steps 5", got["bi-attn"], bi_attn(model, x, c, s_h, 5))
    compare(f"{label} bi-attn-token --bi-start-layer {s_h} --steps 5", got["bi-attn-token"],
            bi_attn(model, x, c, s_h, 5, token=True))
    got = attnlens(tmp, model_dir, path, ["bi-attn", "bi-attn-token"], ["--bi-start-layer", str(s_t), "--steps", "7"],
                   f"{tag}_bi_all")
    compare(f"{label} bi-attn --bi-start-layer {s_t} --steps 7", got["bi-attn"], bi_attn(model, x, c, s_t, 7))
    compare(f"{label} bi-attn-token --bi-start-layer {s_t} --steps 7", got["bi-attn-token"],
            bi_attn(model, x, c, s_t, 7, token=True))

    got = attnlens(tmp, model_dir, path, all_methods, ["--category", str(second), "--steps", "4"],
                   f"{tag}_category")
    compare(f"{label} grad-sam --category {second}", got["grad-sam"], grad_sam(model, x, second))
    compare(f"{label} agcam --category {second}", got["agcam"], agcam(model, x, second))
    compare(f"{label} bi-attn --category {second} --steps 4", got["bi-attn"], bi_attn(model, x, second, start_h, 4))
    compare(f"{label} bi-attn-token --category {second} --steps 4", got["bi-attn-token"],
            bi_attn(model, x, second, start_t, 4, token=True))
    compare(f"{label} atman --category {second} (absolute tolerance)", got["atman"], atman(model, x, second),
            absolute=1e-5)
    compare(f"{label} cp-lrp --category {second}", got["cp-lrp"], lrp(model, x, second, "cp-lrp"))
    compare(f"{label} attnlrp --category {second}", got["attnlrp"], lrp(model, x, second, "attnlrp"))


def bundled_input(gen):
    """A Fashion-MNIST-like canvas in normalised space: a dark, slightly noisy background and a bright item."""
    x = -1 + 0.1 * torch.rand(56, 56, generator=gen)
    yy, xx = torch.meshgrid(torch.arange(56.0), torch.arange(56.0), indexing="ij")
    item = ((yy - 24) / 12) ** 2 + ((xx - 30) / 8) ** 2 < 1
    x = torch.where(item, 0.2 + 0.8 * torch.rand(56, 56, generator=gen), x)
    return x[None].expand(3, -1, -1).contiguous()


def random_input(gen):
    """40 px: noise on the left 16 columns and the bottom 8 rows, one grey level elsewhere (12 similar patches, so
    that AtMan's conceptual suppression has neighbours near its threshold)."""
    x = torch.full((3, 40, 40), 0.3)
    x[:, :, :16] = torch.randn(3, 40, 16, generator=gen)
    x[:, 32:, :] = torch.randn(3, 8, 40, generator=gen)
    return x


def random_vit(tmp, gen):
    """A random timm-named ViT (the training tool's module, other sizes): 40 px, patch 8 (5x5 grid), width 48,
    3 blocks, 3 heads, 5 classes, written with config.json as the bundled model's."""
    vit = reference.VisionTransformer(40, 8, 48, 3, 3, 4, 5).eval()
    randomise(vit, gen)
    with torch.no_grad():
        vit.pos_embed.copy_(0.2 * torch.randn(vit.pos_embed.shape, generator=gen))
        vit.cls_token.copy_(0.5 * torch.randn(vit.cls_token.shape, generator=gen))
        for block in vit.blocks:
            block.attn.qkv.weight[:96].mul_(2.0)  # q and k rows: attention far from uniform
    config = json.load(open(os.path.join(bundled_dir, "config.json")))
    config.update({"image_size": 40, "patch_size": 8, "embed_dim": 48, "depth": 3, "num_heads": 3, "num_classes": 5,
                   "labels": ["a", "b", "c", "d", "e"]})
    folder = write_model(os.path.join(tmp, "random_vit"), {k: v.detach().clone() for k, v in vit.state_dict().items()},
                         config)
    return vit, folder


if len(sys.argv) != 3:
    print(__doc__)
    sys.exit(2)
binary, root = os.path.abspath(sys.argv[1]), sys.argv[2]
bundled_dir = os.path.join(root, "data", "models", "fmnist-vit")
started = time.time()
bundled, config, reference = load_bundled_model(root)
patch(reference)

spec_examples(bundled)
gen = torch.Generator().manual_seed(11)
with tempfile.TemporaryDirectory() as tmp:
    check_model("fmnist-vit", bundled, bundled_dir, bundled_input(gen), tmp)
    model, folder = random_vit(tmp, gen)
    check_model("random ViT", model, folder, random_input(gen), tmp)

print(f"({time.time() - started:.1f} s)")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
