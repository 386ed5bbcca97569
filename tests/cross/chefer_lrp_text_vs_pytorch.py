#!/usr/bin/python3
"""attnlens' chefer-lrp on text (ALGORITHMS.md 15.7: Chefer et al.'s BERT_explainability) against a PyTorch
reference written here from the spec, not from attnlens' C++: the encoder is written out with explicit q, k, v and
every module's relevance is the reference's autograd z-rule (chefer_lrp_rules.py: Linear alpha 1 beta 0, Add
rescaled to the branches' |sums|, Clone merged, both attention products by the z-rule with the shares halved,
LayerNorm, GELU, tanh, ReLU and softmax as identities). BERT's layer as the reference builds it: q, k and v each read
their own clone of the layer input, which is itself cloned for the residual; scores + mask through the rescaling
Add (mask share discarded); output sub-layers LayerNorm then Add([dense branch, residual]); the head classifier,
pooler (activation identity) and IndexSelect(token 0); the pass stops at the encoder input.

Maps (`attnlens explain --text T --method chefer-lrp --chefer-lrp-variant V`), whole row 0 with [CLS] and [SEP]:
  transformer_attribution  the BERT helper's row-normalised rollout of mean_h max(0, dA * R_A) + I from
                           --text-start-layer S (default -1, the last layer), then [0] = min of the row
  last_layer               mean_h max(0, R_A) of the last layer, [0] = 0
  full                     the encoder input's relevance summed over the width, [0] = 0
on a random BERT (3 layers, 4 heads), the bundled sentiment-bert and a random DistilBERT (the same rules: its head
is BERT's shape with ReLU). The reference is checked for conservation first (spec 15.9 test 1); negative controls
(Add without rescaling, attention products not halved) must differ.

Tolerance: attnlens (float32) against the float64 reference, max |attnlens - reference| <= 1e-5 * max |reference|,
or three times the float32 reference's own distance to the float64 one where that is larger: the residual Adds
divide by sums that nearly cancel, so float32 roundings scatter widely, and by how much depends on the CPU's BLAS
kernels (on an AMD EPYC, attnlens' float32 map strays 1.4x as far as the float32 reference's on the random BERT, and
the two float32 maps 2.4x as far from each other).

    /usr/bin/python3 tests/cross/chefer_lrp_text_vs_pytorch.py build/attnlens [REPO_ROOT]
"""
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
from chefer_lrp_rules import add_rule, clone_rule, einsum_rule, linear_rule, z_rule  # noqa: E402
import text_relevance_vs_pytorch as text_ref  # noqa: E402  (random weights, names, the attnlens calls)
from bundled_vit import read_safetensors  # noqa: E402

results = []


def check(name, ok, detail=""):
    print(f"{name}: {detail} {'ok' if ok else 'FAIL'}", flush=True)
    results.append(bool(ok))


def layer_norm(x, w, b, eps):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def reference(p, family, heads, eps, ids, target, dtype, rescale=True, halve=True):
    """(logits, R_A per layer [H,T,T], dA per layer, relevance of every layer's input [T,D], head relevance [D])."""
    p = {k: v.to(dtype) for k, v in p.items()}
    T, d = len(ids), p["word"].shape[1]
    hd, L = d // heads, sum(1 for k in p if k.endswith(".q.w"))
    lin = lambda x, n: F.linear(x, p[n + ".w"], p[n + ".b"])  # noqa: E731
    split = lambda y: y.view(1, T, heads, hd).transpose(1, 2)  # noqa: E731
    merge = lambda y: y.transpose(1, 2).reshape(1, T, d)  # noqa: E731
    emb = p["word"][torch.tensor(ids)] + p["pos"][:T] + (p["type"][0] if "type" in p else 0)
    x = layer_norm(emb, p["emb_ln.w"], p["emb_ln.b"], eps)[None].detach().requires_grad_(True)
    keep, attention = [], []
    for l in range(L):
        n = f"l{l}."
        q, k, v = split(lin(x, n + "q")), split(lin(x, n + "k")), split(lin(x, n + "v"))
        if family == "distilbert":
            scaled = (q / math.sqrt(hd)) @ k.transpose(-1, -2)
        else:
            scaled = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        a = torch.softmax(scaled + torch.zeros_like(scaled), -1)
        attention.append(a)
        ctx = merge(a @ v)
        a_out = lin(ctx, n + "o")
        mid = layer_norm(a_out + x, p[n + "ln1.w"], p[n + "ln1.b"], eps)
        inner = F.gelu(lin(mid, n + "fi"))
        f_out = lin(inner, n + "fo")
        keep.append(dict(x=x, q=q, k=k, v=v, scaled=scaled, a=a, ctx=ctx, a_out=a_out, mid=mid, inner=inner,
                         f_out=f_out))
        x = layer_norm(f_out + mid, p[n + "ln2.w"], p[n + "ln2.b"], eps)
    first = x[:, 0]
    head = "pool" if family == "bert" else "pre"
    dense = lin(first, head)
    pooled = torch.tanh(dense) if family == "bert" else torch.relu(dense)
    logits = lin(pooled, "cls")
    grads = torch.autograd.grad(logits[0, target], attention)

    add = lambda r, a, b: add_rule(r, a, b, rescale)  # noqa: E731
    r = linear_rule(torch.zeros_like(logits).index_fill_(1, torch.tensor([target]), 1.0), pooled, p["cls.w"])
    r_first = linear_rule(r, first, p[head + ".w"])
    R = z_rule(lambda t: t[:, 0], [x], r_first)[0]
    r_att, r_layers = [None] * L, [None] * L
    for l in reversed(range(L)):
        m, n = keep[l], f"l{l}."
        r_f, r_mid_skip = add(R, m["f_out"], m["mid"])
        r_mid = clone_rule([linear_rule(linear_rule(r_f, m["inner"], p[n + "fo.w"]), m["mid"], p[n + "fi.w"]),
                            r_mid_skip], m["mid"])
        r_a, r_x_skip = add(r_mid, m["a_out"], m["x"])
        r_ctx = split(linear_rule(r_a, m["ctx"], p[n + "o.w"]))
        r_A, r_v = einsum_rule("bhij,bhjd->bhid", r_ctx, m["a"], m["v"])
        if halve:
            r_A, r_v = r_A / 2, r_v / 2
        r_att[l] = r_A[0]
        r_scores = add(r_A, m["scaled"], torch.zeros_like(m["scaled"]))[0]
        r_q, r_k = einsum_rule("bhid,bhjd->bhij", r_scores, m["q"], m["k"])  # q k^T; R_k in k's layout
        if halve:
            r_q, r_k = r_q / 2, r_k / 2
        r_xs = [linear_rule(merge(rr), m["x"], p[n + w + ".w"]) for rr, w in ((r_q, "q"), (r_k, "k"), (r_v, "v"))]
        R = clone_rule([clone_rule(r_xs, m["x"]), r_x_skip], m["x"])
        r_layers[l] = R[0]
    return logits.detach(), r_att, [g[0] for g in grads], r_layers, r_first[0]


def maps(run, start):
    _, r_att, grads, r_layers, _ = run
    L = len(r_att)
    s = start % L
    joint = None
    for l in range(s, L):
        cam = (grads[l] * r_att[l]).clamp(min=0).mean(0)
        m = cam + torch.eye(cam.shape[0], dtype=cam.dtype)
        m = m / m.sum(-1, keepdim=True)
        joint = m if joint is None else m @ joint
    ta = joint[0].clone()
    ta[0] = ta.min()
    last = r_att[-1].clamp(min=0).mean(0)[0].clone()
    last[0] = 0
    full = r_layers[0].sum(-1).clone()
    full[0] = 0
    return {"transformer_attribution": ta.double().numpy(), "last_layer": last.double().numpy(),
            "full": full.double().numpy()}


def check_model(tag, p, family, heads, eps, folder, text, ids, tmp):
    target = int(text_ref.attnlens_explain(folder, text, os.path.join(tmp, tag + "_class"), ["raw"])["predicted"])
    run32 = reference(p, family, heads, eps, ids, target, torch.float32)
    check(f"{tag}: the reference predicts attnlens' class", int(run32[0].argmax()) == target, f"class {target}")
    run64 = reference(p, family, heads, eps, ids, target, torch.float64)
    # Conservation (15.9 test 1): the head's input holds the one-hot's 1, and every layer's input about as much.
    sums = [float(run64[4].sum())] + [float(r.sum()) for r in run64[3]]
    check(f"{tag}: reference conserves relevance (head, then each layer's input)",
          all(abs(s - 1) < 1e-3 for s in sums), str(np.round(sums, 6).tolist()))
    L = len(run64[1])
    for start in sorted({-1, 0}):
        want32, want64 = maps(run32, start), maps(run64, start)
        for variant in ("transformer_attribution", "last_layer", "full"):
            if variant != "transformer_attribution" and start != -1:
                continue
            got = text_ref.attnlens_explain(folder, text, os.path.join(tmp, f"{tag}_{variant}_{start}"), ["chefer-lrp"],
                                            "--chefer-lrp-variant", variant, "--text-start-layer", str(start),
                                            "--category", str(target))["scores"]["chefer-lrp"]
            got, want = np.asarray(got), want64[variant]
            err = float(np.abs(got - want).max())
            tol = max(1e-5 * float(np.abs(want).max()), 3 * float(np.abs(want32[variant] - want).max()))
            check(f"{tag}: {variant}, start {start % L if variant == 'transformer_attribution' else '-'}",
                  got.shape == want.shape and err <= tol, f"max |diff| {err:.2e} (bound {tol:.2e})")
    # Negative controls: the reference without the Add rescaling, or without halving, is another map.
    got = np.asarray(text_ref.attnlens_explain(folder, text, os.path.join(tmp, tag + "_control"), ["chefer-lrp"],
                                               "--chefer-lrp-variant", "full", "--category", str(target))
                     ["scores"]["chefer-lrp"])
    for name, options in (("Add not rescaled", dict(rescale=False)), ("products not halved", dict(halve=False))):
        wrong = maps(reference(p, family, heads, eps, ids, target, torch.float64, **options), -1)["full"]
        diff = float(np.abs(got - wrong).max())
        check(f"{tag}: negative control ({name}) differs", diff > 1e-3 * float(np.abs(wrong).max()), f"{diff:.2e}")


def main():
    t0 = time.time()
    torch.set_num_threads(1)
    vocab = text_ref.VOCAB
    with tempfile.TemporaryDirectory() as tmp:
        p = text_ref.random_weights("bert", len(vocab), 32, 3, 64, 24, 3, seed=11)
        folder = os.path.join(tmp, "bert")
        text_ref.save_random(folder, "bert", p, 4, 3, vocab)
        ids = text_ref.attnlens_tokenize(folder, text_ref.TEXT)["ids"]
        check_model("random BERT", p, "bert", 4, 1e-12, folder, text_ref.TEXT, ids, tmp)
        # Bad settings: exit 2 with the reason, nothing written.
        for args, reason in ((["--chefer-lrp-variant", "rollout"], "rollout variant is for images"),
                             (["--text-start-layer", "3"], "out of range: the model has 3 layers"),
                             (["--text-start-layer", "-4"], "out of range: the model has 3 layers")):
            out = os.path.join(tmp, "refused")
            r = subprocess.run([text_ref.ATTNLENS, "explain", "--model", folder, "--text", text_ref.TEXT, "--method",
                                "chefer-lrp", *args, "-q", "-o", out], capture_output=True, text=True)
            check(f"random BERT: chefer-lrp {' '.join(args)} refused (exit 2, nothing written)",
                  r.returncode == 2 and reason in r.stderr and not os.path.exists(out), r.stderr.strip()[:200])

        sentiment = text_ref.SENTIMENT
        if os.path.exists(os.path.join(sentiment, "model.safetensors")):
            import json
            config = json.load(open(os.path.join(sentiment, "config.json")))
            tensors = read_safetensors(os.path.join(sentiment, "model.safetensors"))
            names = text_ref.hf_names("bert", config["num_hidden_layers"])
            p = {k: tensors[v] for k, v in names.items()}
            ids = text_ref.attnlens_tokenize(sentiment, text_ref.SENTIMENT_TEXT)["ids"]
            check_model("sentiment-bert", p, "bert", config["num_attention_heads"], config.get("layer_norm_eps", 1e-12),
                        sentiment, text_ref.SENTIMENT_TEXT, ids, tmp)
        else:
            check("sentiment-bert present", False, sentiment + " has no model.safetensors")

        p = text_ref.random_weights("distilbert", len(vocab), 32, 2, 64, 24, 3, seed=5)
        folder = os.path.join(tmp, "distil")
        text_ref.save_random(folder, "distilbert", p, 4, 3, vocab)
        text = "the plot was very boring but the acting was good ."
        ids = text_ref.attnlens_tokenize(folder, text)["ids"]
        check_model("DistilBERT", p, "distilbert", 4, 1e-12, folder, text, ids, tmp)
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed ({time.time() - t0:.1f} s)")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
