#!/usr/bin/python3
"""attnlens' text relevance methods (grad-sam, agcam, atman, attnlrp, cp-lrp, bi-attn, bi-attn-token) against an
independent PyTorch reference written from ALGORITHMS.md sections 14.2, 14.4, 16.5, 17, 18 and 20 (not from
attnlens' C++): the encoder is written out here with explicit q, k, v, and the modified backward rules are custom
autograd Functions (identity rule, gradient halving) and detaches (LayerNorm sigma, AG-CAM's attention input,
CP-LRP's q and k). The reference runs in float64 on the float32 weights.

Models: (1) a random BERT written here (Hugging Face BertForSequenceClassification names, exact GELU, LayerNorm eps
1e-12, tanh pooler, classifier, 3 classes); (2) the bundled data/models/sentiment-bert (its config.json and
vocab.txt, tokenised by `attnlens tokenize`); (3) a random DistilBERT (q_lin output scaled before q.k^T,
pre_classifier + ReLU head). Every method at its defaults, bi-attn with --bi-start-layer 0 --steps 5, bi-attn-token
with --bi-start-layer 0 --steps 3, AtMan with --atman-threshold none and --atman-factor 1 (all ~0), all methods for a
non-predicted --category. Negative controls (deliberately wrong reference variants) must differ from attnlens, and
the reference's building blocks reproduce the spec's worked examples (14.7, 14.11, 16.6, 17.3, 18.7).

Tolerance: max |attnlens - reference| <= 1e-5 * max |reference| (AtMan: absolute 1e-5).

    /usr/bin/python3 tests/cross/text_relevance_vs_pytorch.py build/attnlens [REPO_ROOT]
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

ROOT = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else \
    os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ATTNLENS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "attnlens")
sys.path.insert(0, os.path.join(ROOT, "tools"))
from safetensors_file import write_safetensors  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bundled_vit import read_safetensors  # noqa: E402  (the cross tests' safetensors reader)

SENTIMENT = os.path.join(ROOT, "data", "models", "sentiment-bert")
DT = torch.float64
REL_TOL, ATMAN_TOL, CONTROL_MIN = 1e-5, 1e-5, 1e-3
METHODS = ["grad-sam", "agcam", "atman", "attnlrp", "cp-lrp", "bi-attn", "bi-attn-token"]
WORDS = ["the", "movie", "was", "not", "good", "bad", "great", "plot", "acting", "and", "but", "very", "boring"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + ["##s", "!", "."]
TEXT = "the movie was not good but the acting was very great !"
SENTIMENT_TEXT = "the movie was not good, the acting was bad and the plot was boring."
results = []  # (name, ok)
worst = {}    # method -> worst ratio diff / bound over the value checks


def check(name, ok, detail=""):
    print(f"{name}: {detail} {'ok' if ok else 'FAIL'}")
    results.append((name, bool(ok)))


def compare(name, got, ref, method=None, absolute=None):
    """max |got - ref| against 1e-5 * max |ref| (or an absolute bound)."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        check(name, False, f"shape {got.shape} vs reference {ref.shape}")
        return float("inf")
    diff = float(np.abs(got - ref).max())
    bound = absolute if absolute is not None else REL_TOL * float(np.abs(ref).max())
    ok = diff <= bound
    check(name, ok, f"max diff {diff:.2e} (bound {bound:.2e}, max|ref| {np.abs(ref).max():.3e})")
    if method is not None:
        worst[method] = max(worst.get(method, 0.0), diff / bound if bound > 0 else float("inf"))
    return diff


def control(name, got, wrong):
    """Negative control: a deliberately wrong reference must differ from attnlens by more than 1e-3 relative."""
    got, wrong = np.asarray(got, dtype=np.float64), np.asarray(wrong, dtype=np.float64)
    rel = float(np.abs(got - wrong).max() / max(np.abs(wrong).max(), 1e-30))
    check("negative control: " + name, rel > CONTROL_MIN, f"differs by {rel:.2e} relative (must be > {CONTROL_MIN})")


# ----------------------------------------------------------------------------------------------------------------
# Modified backward rules (spec 14.2)
# ----------------------------------------------------------------------------------------------------------------
class IdentityRule(torch.autograd.Function):
    """o = phi(h); backward g * phi(h) / (h + 1e-10) (14.2 a)."""

    @staticmethod
    def forward(ctx, h, phi):
        o = phi(h)
        ctx.save_for_backward(o / (h + 1e-10))
        return o

    @staticmethod
    def backward(ctx, g):
        (ratio,) = ctx.saved_tensors
        return g * ratio, None


class DivideGradient(torch.autograd.Function):
    """Identity forward, g / c backward (14.2 c)."""

    @staticmethod
    def forward(ctx, x, c):
        ctx.c = c
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return g / ctx.c, None


class EpsilonRule(torch.autograd.Function):
    """The epsilon rule (14.10.1) on z = x W^T + b as a gradient: R_x = x * W^T (R_z / stab(z, eps)) with
    R_z = g_z * z, i.e. g_x = (g_z * z / (z + eps sign0(z))) W."""

    @staticmethod
    def forward(ctx, x, w, b, eps):
        z = F.linear(x, w, b)
        ctx.save_for_backward(w, z)
        ctx.eps = eps
        return z

    @staticmethod
    def backward(ctx, g):
        w, z = ctx.saved_tensors
        sign0 = torch.where(z >= 0, torch.ones_like(z), -torch.ones_like(z))
        return (g * z / (z + ctx.eps * sign0)) @ w, None, None, None


def layer_norm(x, w, b, eps, sigma_detached):
    """LayerNorm over the last dim; with sigma_detached the LXT form (x - mu) / stopgrad(sqrt(var + eps)) (14.2 b)."""
    if not sigma_detached:
        return F.layer_norm(x, x.shape[-1:], w, b, eps)
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    y = (x - mu) / torch.sqrt(var + eps).detach()
    y = y * w if w is not None else y
    return y + b if b is not None else y


def atman_manipulate(scores, factors):
    """AtMan (18.1): shift every row by its minimum, multiply the key columns by their factors."""
    return (scores - scores.min(-1, keepdim=True).values) * factors


def atman_factors(e, t, m, kappa):
    """Column factors of token t's pass: m at t; neighbours j != t with float32 cosine >= kappa get (1-m)(1-cos)+m."""
    f = torch.ones(e.shape[0], dtype=torch.float32)
    f[t] = m
    if kappa is not None:
        a = e.detach().float()
        a = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        cos = (a @ a.T).clamp(-1.0, 1.0)
        for j in range(e.shape[0]):
            if j != t and cos[t, j] >= kappa:
                f[j] = (1.0 - m) * (1.0 - cos[t, j]) + m
    return f


def agcam_fuse(scores_cls, grads_cls):
    """AG-CAM (17.2): sum over layers and heads of relu(dy/dA[l,h,0,:]) * sigmoid(S[l,h,0,:])."""
    return (torch.relu(grads_cls) * torch.sigmoid(scores_cls)).sum(dim=(0, 1))


def bi_head_weights(a, ga):
    """Beyond Intuition head weights (16.2): I_h = mean |A_h^T dA_h|, w = I / sum I. a, ga: [H, T, T]."""
    imp = (a.transpose(-1, -2) @ ga).abs().mean(dim=(-1, -2))
    return imp / imp.sum()


# ----------------------------------------------------------------------------------------------------------------
# The reference encoder
# ----------------------------------------------------------------------------------------------------------------
class Reference:
    """BERT / DistilBERT for sequence classification, weights in float64, forward written out by hand.

    run(ids, ...) options:
      lrp: None, "attnlrp" (LN sigma detached, GELU/tanh identity rule, grad of q.k^T and A.V halved), "attnlrp-nohalf"
           (negative control), "cplrp" (q, k detached, no halving)
      agcam: q, k, v of every layer from a detached leaf copy of the layer input (residual keeps the original)
      factors: AtMan column factors [T] applied to the scaled scores of every layer, head and row
      alpha: run the layers and the head on alpha * e (e = embedding output, detached)
    Returns (logits, info) with info["word"] (leaf word embeddings), info["e"], and per layer dicts
    (A with retained grad, S, x_in, v)."""

    def __init__(self, family, p, heads, eps):
        self.family, self.p, self.heads, self.eps = family, {k: v.to(DT) for k, v in p.items()}, heads, eps
        self.layers = sum(1 for k in p if k.endswith(".q.w"))
        self.d = p["word"].shape[1]

    rule = None
    epsilon = 0.0  # the epsilon rule (spec 14.10.1) on every linear, under LRP: g_x = W^T (g_z z / stab(z, eps))

    def lin(self, x, name):
        w, b = self.p[name + ".w"], self.p[name + ".b"]
        if self.rule is not None and self.epsilon and x.requires_grad:
            return EpsilonRule.apply(x, w, b, self.epsilon)
        return F.linear(x, w, b)

    def run(self, ids, lrp=None, agcam=False, factors=None, alpha=None, vproj_bias=False):
        self.rule = lrp
        p, T, H = self.p, len(ids), self.heads
        hd = self.d // H
        detach_sigma = lrp is not None
        word = p["word"][torch.tensor(ids)].clone().requires_grad_(True)
        emb = word + p["pos"][:T]
        if "type" in p:
            emb = emb + p["type"][0]
        e = layer_norm(emb, p["emb_ln.w"], p["emb_ln.b"], self.eps, detach_sigma)
        x = e if alpha is None else (alpha * e.detach()).requires_grad_(True)
        info = {"word": word, "e": e, "layers": []}
        split = lambda y: y.view(T, H, hd).transpose(0, 1)  # noqa: E731  [H, T, hd]
        for l in range(self.layers):
            n = f"l{l}."
            x_in = x
            src = x.detach().requires_grad_(True) if agcam else x
            q, k, v_lin = self.lin(src, n + "q"), self.lin(src, n + "k"), self.lin(src, n + "v")
            q, k, v = split(q), split(k), split(v_lin)
            if lrp == "cplrp":
                q, k = q.detach(), k.detach()
            if self.family == "distilbert":  # queries scaled before the product
                raw = (q / math.sqrt(hd)) @ k.transpose(-1, -2)
                if lrp == "attnlrp":
                    raw = DivideGradient.apply(raw, 2.0)
                s = raw
            else:
                raw = q @ k.transpose(-1, -2)
                if lrp == "attnlrp":
                    raw = DivideGradient.apply(raw, 2.0)
                s = raw / math.sqrt(hd)
            if factors is not None:
                s = atman_manipulate(s, factors.to(DT))
            a = torch.softmax(s, -1)
            if a.requires_grad:
                a.retain_grad()
            ctx = a @ v
            if lrp == "attnlrp":
                ctx = DivideGradient.apply(ctx, 2.0)
            ctx = ctx.transpose(0, 1).reshape(T, self.d)
            x = layer_norm(self.lin(ctx, n + "o") + x_in, p[n + "ln1.w"], p[n + "ln1.b"], self.eps, detach_sigma)
            h = self.lin(x, n + "fi")
            g = IdentityRule.apply(h, F.gelu) if lrp is not None else F.gelu(h)
            x = layer_norm(self.lin(g, n + "fo") + x, p[n + "ln2.w"], p[n + "ln2.b"], self.eps, detach_sigma)
            vproj = v_lin @ p[n + "o.w"].T + (p[n + "o.b"] if vproj_bias else 0.0)
            info["layers"].append({"A": a, "S": s, "x_in": x_in, "vproj": vproj})
        if self.family == "distilbert":
            hp = self.lin(x[0], "pre")
            pooled = IdentityRule.apply(hp, torch.relu) if lrp is not None else torch.relu(hp)
        else:
            hp = self.lin(x[0], "pool")
            pooled = IdentityRule.apply(hp, torch.tanh) if lrp is not None else torch.tanh(hp)
        return self.lin(pooled, "cls"), info

    # ---- the methods ----
    def logits(self, ids):
        with torch.no_grad():
            return self.run(ids)[0]

    def grad_sam(self, ids, c, axis="keys"):
        y, info = self.run(ids)
        y[c].backward()
        a = torch.stack([d["A"] for d in info["layers"]])
        g = torch.stack([d["A"].grad for d in info["layers"]])
        hm = a * torch.relu(g)  # [L, H, T, T]
        return (hm.mean(dim=(0, 1, 2)) if axis == "keys" else hm.mean(dim=(0, 1, 3))).detach().numpy()

    def agcam(self, ids, c, detach=True):
        y, info = self.run(ids, agcam=detach)
        y[c].backward()
        s = torch.stack([d["S"][:, 0, :] for d in info["layers"]])
        g = torch.stack([d["A"].grad[:, 0, :] for d in info["layers"]])
        return agcam_fuse(s.detach(), g).numpy()

    def lrp(self, ids, c, rule, epsilon=0.0):
        self.epsilon = epsilon
        try:
            y, info = self.run(ids, lrp=rule)
        finally:
            self.epsilon = 0.0
        y[c].backward()
        return (info["word"] * info["word"].grad).sum(-1).detach().numpy()

    def atman(self, ids, c, m=0.1, kappa=0.6):
        with torch.no_grad():
            clean = torch.log_softmax(self.run(ids)[0], -1)[c]
            e = self.run(ids)[1]["e"]
            out = []
            for t in range(len(ids)):
                y = self.run(ids, factors=atman_factors(e, t, m, kappa))[0]
                out.append(float(clean - torch.log_softmax(y, -1)[c]))
        return np.array(out)

    def neighbour_stats(self, ids, kappa):
        """(pairs j != t with float32 cosine >= kappa, the smallest |cos - kappa|) for the report."""
        with torch.no_grad():
            a = self.run(ids)[1]["e"].float()
        a = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        cos = (a @ a.T).clamp(-1, 1)
        off = ~torch.eye(len(ids), dtype=torch.bool)
        return int((cos[off] >= kappa).sum()), float((cos[off] - kappa).abs().min())

    def bi_path_weight(self, ids, c, steps):
        """W = mean_h(max(0, sum_alpha dA_last(alpha) / steps)), row 0 -> w [T] (16.5); run() scales the (fixed)
        embedding output e by alpha and feeds it to the layers."""
        total = torch.zeros(self.heads, len(ids), len(ids), dtype=DT)
        for alpha in torch.linspace(0, 1, steps, dtype=DT):
            y, info = self.run(ids, alpha=float(alpha))
            y[c].backward()
            total += info["layers"][-1]["A"].grad
        return torch.clamp(total / steps, min=0).mean(0)[0]

    def bi_attn(self, ids, c, start=None, steps=20, uniform_heads=False):
        start = self.layers - 1 if start is None else start
        y, info = self.run(ids)
        y[c].backward()
        r = torch.eye(len(ids), dtype=DT)
        for l in range(start, self.layers):
            a, ga = info["layers"][l]["A"].detach(), info["layers"][l]["A"].grad
            w = torch.full((self.heads,), 1.0 / self.heads, dtype=DT) if uniform_heads else bi_head_weights(a, ga)
            r = r + (w[:, None, None] * a).sum(0) @ r
        r = r * self.bi_path_weight(ids, c, steps)[None, :]
        r[0, 0] = 0
        return r[0].numpy()

    def bi_attn_token(self, ids, c, start=None, steps=20, vproj_bias=False):
        start = max(0, self.layers - 4) if start is None else start
        with torch.no_grad():
            info = self.run(ids, vproj_bias=vproj_bias)[1]
        r = torch.eye(len(ids), dtype=DT)
        for l in range(start, self.layers):
            d = info["layers"][l]
            o = d["vproj"].norm(dim=-1) / d["x_in"].norm(dim=-1)
            r = r + (d["A"].mean(0) * o[None, :]) @ r
        r = r.abs() * self.bi_path_weight(ids, c, steps)[None, :]
        r[0, 0] = 0
        return r[0].numpy()


# ----------------------------------------------------------------------------------------------------------------
# Weights: random models, reading safetensors, Hugging Face names
# ----------------------------------------------------------------------------------------------------------------
BERT_NAMES = {"word": "bert.embeddings.word_embeddings.weight", "pos": "bert.embeddings.position_embeddings.weight",
              "type": "bert.embeddings.token_type_embeddings.weight", "emb_ln.w": "bert.embeddings.LayerNorm.weight",
              "emb_ln.b": "bert.embeddings.LayerNorm.bias", "pool.w": "bert.pooler.dense.weight",
              "pool.b": "bert.pooler.dense.bias", "cls.w": "classifier.weight", "cls.b": "classifier.bias"}
BERT_LAYER = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
              "o": "attention.output.dense", "ln1": "attention.output.LayerNorm", "fi": "intermediate.dense",
              "fo": "output.dense", "ln2": "output.LayerNorm"}
DISTIL_NAMES = {"word": "distilbert.embeddings.word_embeddings.weight",
                "pos": "distilbert.embeddings.position_embeddings.weight",
                "emb_ln.w": "distilbert.embeddings.LayerNorm.weight",
                "emb_ln.b": "distilbert.embeddings.LayerNorm.bias",
                "pre.w": "pre_classifier.weight", "pre.b": "pre_classifier.bias", "cls.w": "classifier.weight",
                "cls.b": "classifier.bias"}
DISTIL_LAYER = {"q": "attention.q_lin", "k": "attention.k_lin", "v": "attention.v_lin", "o": "attention.out_lin",
                "ln1": "sa_layer_norm", "fi": "ffn.lin1", "fo": "ffn.lin2", "ln2": "output_layer_norm"}


def hf_names(family, layers):
    names, per_layer, prefix = (BERT_NAMES, BERT_LAYER, "bert.encoder.layer.") if family == "bert" else \
        (DISTIL_NAMES, DISTIL_LAYER, "distilbert.transformer.layer.")
    out = dict(names)
    for l in range(layers):
        for ours, theirs in per_layer.items():
            out[f"l{l}.{ours}.w"] = f"{prefix}{l}.{theirs}.weight"
            out[f"l{l}.{ours}.b"] = f"{prefix}{l}.{theirs}.bias"
    return out


def random_weights(family, vocab, d, layers, inter, positions, labels, seed):
    """Random float32 weights; word embeddings larger than the position ones so that repeated words are AtMan
    neighbours; LayerNorm weights around 1 (not 1, so that a missed affine shows)."""
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *shape, std=0.3, mean=0.0: (torch.randn(*shape, generator=g) * std + mean)  # noqa: E731
    p = {"word": rnd(vocab, d, std=1.0), "pos": rnd(positions, d, std=0.25),
         "emb_ln.w": rnd(d, std=0.2, mean=1.0), "emb_ln.b": rnd(d, std=0.1)}
    if family == "bert":
        p["type"] = rnd(2, d, std=0.1)
    for l in range(layers):
        n = f"l{l}."
        for name, (fan_out, fan_in) in {"q": (d, d), "k": (d, d), "v": (d, d), "o": (d, d), "fi": (inter, d),
                                        "fo": (d, inter)}.items():
            p[n + name + ".w"] = rnd(fan_out, fan_in, std=1.2 / math.sqrt(fan_in))
            p[n + name + ".b"] = rnd(fan_out, std=0.1)
        for ln in ("ln1", "ln2"):
            p[n + ln + ".w"], p[n + ln + ".b"] = rnd(d, std=0.2, mean=1.0), rnd(d, std=0.1)
    head = "pool" if family == "bert" else "pre"
    p[head + ".w"], p[head + ".b"] = rnd(d, d, std=1.0 / math.sqrt(d)), rnd(d, std=0.1)
    p["cls.w"], p["cls.b"] = rnd(labels, d, std=1.5 / math.sqrt(d)), rnd(labels, std=0.1)
    return p


def save_random(folder, family, p, heads, labels, vocab):
    os.makedirs(folder, exist_ok=True)
    layers = sum(1 for k in p if k.endswith(".q.w"))
    names = hf_names(family, layers)
    write_safetensors(os.path.join(folder, "model.safetensors"), {names[k]: v for k, v in p.items()})
    d, positions = p["word"].shape[1], p["pos"].shape[0]
    inter = p["l0.fi.w"].shape[0]
    id2label = {str(i): f"class{i}" for i in range(labels)}
    if family == "bert":
        config = {"architectures": ["BertForSequenceClassification"], "model_type": "bert", "vocab_size": len(vocab),
                  "hidden_size": d, "num_hidden_layers": layers, "num_attention_heads": heads,
                  "intermediate_size": inter, "hidden_act": "gelu", "max_position_embeddings": positions,
                  "type_vocab_size": 2, "layer_norm_eps": 1e-12, "id2label": id2label, "do_lower_case": True}
    else:
        config = {"architectures": ["DistilBertForSequenceClassification"], "model_type": "distilbert",
                  "vocab_size": len(vocab), "dim": d, "n_layers": layers, "n_heads": heads, "hidden_dim": inter,
                  "activation": "gelu", "max_position_embeddings": positions, "sinusoidal_pos_embds": False,
                  "id2label": id2label, "pad_token_id": 0}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    with open(os.path.join(folder, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")


def load_bert_folder(folder):
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    tensors = read_safetensors(os.path.join(folder, "model.safetensors"))
    names = hf_names("bert", config["num_hidden_layers"])
    return Reference("bert", {k: tensors[v] for k, v in names.items()}, config["num_attention_heads"],
                     config.get("layer_norm_eps", 1e-12))


# ----------------------------------------------------------------------------------------------------------------
# attnlens
# ----------------------------------------------------------------------------------------------------------------
def attnlens_tokenize(folder, text):
    r = subprocess.run([ATTNLENS, "tokenize", "--vocab", folder, text], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit("attnlens tokenize failed: " + r.stderr)
    return json.loads(r.stdout.splitlines()[0])


def attnlens_explain(folder, text, out, methods, *extra):
    cmd = [ATTNLENS, "explain", "--model", folder, "--text", text, "--method", ",".join(methods), *extra, "-q",
           "-o", out]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stderr)
        raise SystemExit("attnlens failed: " + " ".join(cmd))
    with open(os.path.join(out, "summary.json")) as f:
        return json.load(f)["texts"][0]


# ----------------------------------------------------------------------------------------------------------------
# Spec worked examples against the reference's building blocks
# ----------------------------------------------------------------------------------------------------------------
def worked_examples():
    close = lambda a, b, tol=5e-5: bool(np.allclose(np.asarray(a, dtype=np.float64), b, atol=tol, rtol=0))  # noqa
    # 14.7 identity rule, bias-free 2-layer MLP.
    x = torch.tensor([2.0, 1.0], dtype=DT, requires_grad=True)
    w1 = torch.tensor([[1.0, 0.5], [-1.0, 1.0]], dtype=DT)
    y = torch.tensor([1.0, 2.0], dtype=DT) @ IdentityRule.apply(w1 @ x, F.gelu)
    y.backward()
    r = (x * x.grad).detach().numpy()
    check("spec 14.7 identity rule MLP", close(r, [1.3530, 0.8142]) and close(y.item(), 2.167165, 1e-6)
          and close(r.sum(), y.item(), 1e-9), f"R_x {np.round(r, 4).tolist()}, sum {r.sum():.6f} = y {y.item():.6f}")
    x2 = x.detach().clone().requires_grad_(True)
    (torch.tensor([1.0, 2.0], dtype=DT) @ F.gelu(w1 @ x2)).backward()
    r = (x2 * x2.grad).detach().numpy()
    check("spec 14.7 plain gradient x input MLP", close(r, [2.4085, 0.3522]), f"{np.round(r, 4).tolist()}")
    # 14.7 LayerNorm with detached sigma, no affine, eps 1e-6, explain y0.
    x = torch.tensor([1.0, 2.0, 6.0], dtype=DT, requires_grad=True)
    y0 = layer_norm(x, None, None, 1e-6, True)[0]
    y0.backward()
    r = (x * x.grad).detach().numpy()
    check("spec 14.7 LayerNorm sigma detached", close(r, [0.3086, -0.3086, -0.9258]) and close(y0.item(), -0.92582)
          and close(r.sum(), y0.item(), 1e-9), f"R_x {np.round(r, 4).tolist()}, y0 {y0.item():.5f}")
    # 14.7 uniform rule on z = ab.
    a = torch.tensor(2.0, dtype=DT, requires_grad=True)
    b = torch.tensor(3.0, dtype=DT, requires_grad=True)
    DivideGradient.apply(a * b, 2.0).backward()
    check("spec 14.7 divide_gradient on z = ab", close([a.item() * a.grad.item(), b.item() * b.grad.item()], [3, 3]),
          f"R_a {a.item() * a.grad.item():.3f}, R_b {b.item() * b.grad.item():.3f}")
    # 14.11 CP vs AttnLRP value path.
    A = torch.tensor([[0.5, 0.5], [1.0, 0.0]], dtype=DT)
    V = torch.tensor([[1.0], [3.0]], dtype=DT, requires_grad=True)
    (A @ V).sum().backward()
    cp = (V * V.grad).detach().numpy().ravel()
    V.grad = None
    DivideGradient.apply(A @ V, 2.0).sum().backward()
    half = (V * V.grad).detach().numpy().ravel()
    check("spec 14.11 CP vs AttnLRP value path", close(cp, [1.5, 1.5]) and close(half, [0.75, 0.75]),
          f"CP {cp.tolist()}, AttnLRP {half.tolist()}")
    # 16.6 Beyond Intuition head weights and token ratio.
    a = torch.tensor([[[.5, .5], [.2, .8]], [[.9, .1], [.4, .6]]], dtype=DT)
    ga = torch.tensor([[[1, 0], [0, -1]], [[.2, 0], [0, .1]]], dtype=DT)
    w = bi_head_weights(a, ga)
    mix = (w[:, None, None] * a).sum(0)
    o = torch.tensor([[3.0, 4], [0, 1]]).norm(dim=-1) / torch.tensor([[1.0, 0], [0, 2]]).norm(dim=-1)
    check("spec 16.6 Beyond Intuition head weights", close(w, [0.869565, 0.130435], 1e-6) and
          close(mix, [[0.552174, 0.447826], [0.226087, 0.773913]], 1e-6) and close(o, [5, 0.5], 1e-6),
          f"w {np.round(w.numpy(), 6).tolist()}, mixed row 0 {np.round(mix[0].numpy(), 6).tolist()}, o {o.tolist()}")
    # 17.3 AG-CAM fusion.
    s = torch.tensor([[[0, 1, -1], [2, 0, 0]], [[0, .5, .5], [1, -2, 3]]], dtype=DT)
    g = torch.tensor([[[.3, -.2, .4], [.1, .5, -.1]], [[0, .2, .2], [0, -1, 1]]], dtype=DT)
    m = agcam_fuse(s, g).numpy()[1:]
    check("spec 17.3 AG-CAM", close(m, [0.374492, 1.184643], 1e-6), f"keys 1, 2: {np.round(m, 6).tolist()}")
    # 18.7 AtMan one row: raw s, d = 4 (scaled by 1/2 here, where the toolkit manipulates), key 3 masked after.
    sc = torch.tensor([1.0, 3.0, -1.0, 0.5], dtype=DT) / 2
    f = torch.tensor([1.0, 0.1, 1.0, 1.0], dtype=DT)
    man = atman_manipulate(sc, f)
    man[3] = -float("inf")
    am = torch.softmax(man, -1).numpy()
    sc[3] = -float("inf")
    clean = torch.softmax(sc, -1).numpy()
    check("spec 18.7 AtMan suppressed row", close(am, [0.550295, 0.247263, 0.202442, 0], 1e-6) and
          close(clean, [0.244728, 0.665241, 0.090031, 0], 1e-6), f"A {np.round(am, 6).tolist()}")
    e = torch.tensor([[1, 0, 0], [0.8, 0.6, 0], [0, 1, 0], [-1, 0, 0]], dtype=torch.float32)
    f1, f3 = atman_factors(e, 1, 0.1, 0.6), atman_factors(e, 3, 0.1, 0.6)
    a32 = e / e.norm(dim=-1, keepdim=True)
    c12 = float((a32 @ a32.T)[1, 2])
    want2 = 0.46 if c12 >= 0.6 else 1.0  # the float32 boundary case of 18.7
    check("spec 18.7 AtMan neighbour factors", close(f1, [0.28, 0.1, want2, 1.0], 1e-6) and close(f3, [1, 1, 1, 0.1]),
          f"token 1 {np.round(f1.numpy(), 6).tolist()} (float32 cos(1,2) = {c12!r}), token 3 {f3.tolist()}")


# ----------------------------------------------------------------------------------------------------------------
# One model: every method against attnlens
# ----------------------------------------------------------------------------------------------------------------
def check_model(tag, ref, folder, text, ids, tmp, controls=True, variants=True, category=True):
    L = ref.layers
    logits = ref.logits(ids)
    probs = torch.softmax(logits, -1).numpy()
    c = int(logits.argmax())
    got = attnlens_explain(folder, text, os.path.join(tmp, tag + "_default"), METHODS)
    check(f"{tag}: token ids", got["ids"] == ids, f"{len(ids)} tokens {got['tokens']}")
    compare(f"{tag}: probabilities", got["probabilities"], probs)
    check(f"{tag}: explained class = predicted", got["target"] == c == got["predicted"],
          f"target {got['target']}, predicted {got['predicted']}, reference argmax {c}")
    sc = got["scores"]
    n_pairs, margin = ref.neighbour_stats(ids, 0.6)
    refs = {"grad-sam": ref.grad_sam(ids, c), "agcam": ref.agcam(ids, c), "attnlrp": ref.lrp(ids, c, "attnlrp"),
            "cp-lrp": ref.lrp(ids, c, "cplrp"), "bi-attn": ref.bi_attn(ids, c),
            "bi-attn-token": ref.bi_attn_token(ids, c)}
    for m in ("grad-sam", "agcam", "attnlrp", "cp-lrp"):
        compare(f"{tag}: {m}", sc[m], refs[m], m)
    compare(f"{tag}: bi-attn (start layer {L - 1} = L-1, steps 20)", sc["bi-attn"], refs["bi-attn"], "bi-attn")
    compare(f"{tag}: bi-attn-token (start layer {max(0, L - 4)} = max(0, L-4), steps 20)", sc["bi-attn-token"],
            refs["bi-attn-token"], "bi-attn-token")
    ref_atman = ref.atman(ids, c)
    compare(f"{tag}: atman (m 0.1, kappa 0.6; {n_pairs} neighbour pairs, min |cos - kappa| {margin:.1e})",
            sc["atman"], ref_atman, "atman", absolute=ATMAN_TOL)
    with torch.no_grad():  # the LRP rules do not change the forward
        diff = max(float((ref.run(ids, lrp=r)[0] - logits).abs().max()) for r in ("attnlrp", "cplrp"))
    check(f"{tag}: reference LRP forward = plain forward", diff < 1e-9, f"max logit diff {diff:.1e}")

    if controls:
        control(f"{tag}: agcam without the detached attention input", sc["agcam"], ref.agcam(ids, c, detach=False))
        control(f"{tag}: attnlrp without the halving", sc["attnlrp"], ref.lrp(ids, c, "attnlrp-nohalf"))
        control(f"{tag}: cp-lrp vs attnlrp (halving, q and k not detached)", sc["cp-lrp"], refs["attnlrp"])
        control(f"{tag}: grad-sam averaged over keys (score per query)", sc["grad-sam"], ref.grad_sam(ids, c, "rows"))
        control(f"{tag}: bi-attn with uniform head weights", sc["bi-attn"],
                ref.bi_attn(ids, c, uniform_heads=True, start=L - 1))
        control(f"{tag}: bi-attn-token with the output bias in vproj", sc["bi-attn-token"],
                ref.bi_attn_token(ids, c, vproj_bias=True))
        if n_pairs:
            control(f"{tag}: atman without neighbours", sc["atman"], ref.atman(ids, c, kappa=None))

    if variants:
        got = attnlens_explain(folder, text, os.path.join(tmp, tag + "_bi0"), ["bi-attn"], "--bi-start-layer", "0",
                               "--steps", "5")
        compare(f"{tag}: bi-attn --bi-start-layer 0 --steps 5", got["scores"]["bi-attn"],
                ref.bi_attn(ids, c, start=0, steps=5), "bi-attn")
        got = attnlens_explain(folder, text, os.path.join(tmp, tag + "_bit0"), ["bi-attn-token"], "--bi-start-layer",
                               "0", "--steps", "3")
        compare(f"{tag}: bi-attn-token --bi-start-layer 0 --steps 3", got["scores"]["bi-attn-token"],
                ref.bi_attn_token(ids, c, start=0, steps=3), "bi-attn-token")
        got = attnlens_explain(folder, text, os.path.join(tmp, tag + "_eps"), ["attnlrp", "cp-lrp"], "--lrp-epsilon",
                               "0.1")
        for m, rule in (("attnlrp", "attnlrp"), ("cp-lrp", "cplrp")):
            compare(f"{tag}: {m} --lrp-epsilon 0.1", got["scores"][m], ref.lrp(ids, c, rule, epsilon=0.1), m)
        if controls:
            control(f"{tag}: attnlrp --lrp-epsilon 0.1 vs epsilon 0", got["scores"]["attnlrp"], refs["attnlrp"])
        got = attnlens_explain(folder, text, os.path.join(tmp, tag + "_atnone"), ["atman"], "--atman-threshold", "none")
        compare(f"{tag}: atman --atman-threshold none", got["scores"]["atman"], ref.atman(ids, c, kappa=None),
                "atman", absolute=ATMAN_TOL)
        got = attnlens_explain(folder, text, os.path.join(tmp, tag + "_at1"), ["atman"], "--atman-factor", "1",
                               "--atman-threshold", "none")
        compare(f"{tag}: atman --atman-factor 1 --atman-threshold none (all ~0)", got["scores"]["atman"],
                np.zeros(len(ids)), "atman", absolute=ATMAN_TOL)
        n2, margin2 = ref.neighbour_stats(ids, 0.35)  # more neighbours; no cosine within 1e-3 of 0.35 here
        got = attnlens_explain(folder, text, os.path.join(tmp, tag + "_at035"), ["atman"], "--atman-factor", "0.25",
                               "--atman-threshold", "0.35")
        compare(f"{tag}: atman --atman-factor 0.25 --atman-threshold 0.35 ({n2} pairs, margin {margin2:.1e})",
                got["scores"]["atman"], ref.atman(ids, c, m=0.25, kappa=0.35), "atman", absolute=ATMAN_TOL)

    if category:
        other = int(np.argsort(probs)[0])  # the least likely class
        got = attnlens_explain(folder, text, os.path.join(tmp, tag + "_cat"), METHODS, "--category", str(other))
        check(f"{tag}: --category {other} is explained", got["target"] == other and got["predicted"] == c,
              f"target {got['target']}, predicted {got['predicted']}")
        sc2 = got["scores"]
        r2 = {"grad-sam": ref.grad_sam(ids, other), "agcam": ref.agcam(ids, other),
              "attnlrp": ref.lrp(ids, other, "attnlrp"), "cp-lrp": ref.lrp(ids, other, "cplrp"),
              "bi-attn": ref.bi_attn(ids, other), "bi-attn-token": ref.bi_attn_token(ids, other)}
        for m, v in r2.items():
            compare(f"{tag}: {m} --category {other}", sc2[m], v, m)
        compare(f"{tag}: atman --category {other}", sc2["atman"], ref.atman(ids, other), "atman", absolute=ATMAN_TOL)
        if controls:
            control(f"{tag}: attnlrp --category {other} vs the predicted class's reference", sc2["attnlrp"],
                    refs["attnlrp"])


def main():
    t0 = time.time()
    torch.set_num_threads(1)  # tiny tensors: more threads only spin (11 ms a LayerNorm with 2 on a busy machine)
    worked_examples()
    with tempfile.TemporaryDirectory() as tmp:
        # (1) random BERT
        p = random_weights("bert", len(VOCAB), 32, 3, 64, 24, 3, seed=11)
        folder = os.path.join(tmp, "bert")
        save_random(folder, "bert", p, 4, 3, VOCAB)
        ref = Reference("bert", p, 4, 1e-12)
        ids = [VOCAB.index("[CLS]")] + [VOCAB.index(w) for w in TEXT.split()] + [VOCAB.index("[SEP]")]
        tok = attnlens_tokenize(folder, TEXT)
        check("random BERT: attnlens tokenize = the vocabulary's ids", tok["ids"] == ids, str(tok["tokens"]))
        check_model("random BERT", ref, folder, TEXT, ids, tmp)

        # (2) the bundled sentiment model
        if os.path.exists(os.path.join(SENTIMENT, "model.safetensors")):
            ref = load_bert_folder(SENTIMENT)
            ids = attnlens_tokenize(SENTIMENT, SENTIMENT_TEXT)["ids"]
            check_model("sentiment-bert", ref, SENTIMENT, SENTIMENT_TEXT, ids, tmp, category=True)
        else:
            check("sentiment-bert present", False, SENTIMENT + " has no model.safetensors")

        # (3) random DistilBERT
        p = random_weights("distilbert", len(VOCAB), 32, 2, 64, 24, 3, seed=5)
        folder = os.path.join(tmp, "distil")
        save_random(folder, "distilbert", p, 4, 3, VOCAB)
        ref = Reference("distilbert", p, 4, 1e-12)
        text = "the plot was very boring but the acting was good ."
        ids = attnlens_tokenize(folder, text)["ids"]
        check("DistilBERT: attnlens tokenize = the vocabulary's ids",
              ids == [2] + [VOCAB.index(w) for w in text.split()] + [3], str(ids))
        check_model("DistilBERT", ref, folder, text, ids, tmp, variants=False, category=False)

    print("worst diff / bound per method: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(worst.items())))
    passed = sum(ok for _, ok in results)
    failed = [n for n, ok in results if not ok]
    print(f"{passed} passed, {len(failed)} failed ({time.time() - t0:.1f} s)")
    for n in failed:
        print("  failed: " + n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
