#!/usr/bin/python3
"""attnlens' LibTorch BERT against PyTorch's own torch.nn.TransformerEncoderLayer, and AttAttr against autograd.

A random BERT (Hugging Face BertForSequenceClassification names, also the legacy LayerNorm gamma/beta spelling) is
written as safetensors with config.json and vocab.txt. PyTorch computes the reference with nn.TransformerEncoderLayer
(post-norm, exact GELU, the same eps) for the encoder layers; attnlens runs `explain --text` on the same files.
Checked: class probabilities and every layer's attention to 1e-5; integrated gradients on attention (spec 5) against
an independent autograd implementation for right and left Riemann sums; with m = 1 (right sum) IG equals
gradient x input; completeness (the attributions of a layer sum to F(A) - F(0) as m grows); blank-out and
input x gradient; a negative control (query and key swapped) must be caught.

    /usr/bin/python3 tests/cross/bert_vs_pytorch.py build/attnlens
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from safetensors_file import write_safetensors  # noqa: E402

ATTNLENS = sys.argv[1] if len(sys.argv) > 1 else "build/attnlens"
D, HEADS, LAYERS, INTER, POSITIONS, LABELS, EPS = 32, 4, 3, 64, 24, 3, 1e-12
WORDS = ["the", "movie", "was", "not", "good", "bad", "great", "plot", "acting", "and", "but", "very", "boring"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + ["##s", "!", "."]
TEXT = "the movie was not good but the acting was very great !"
failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (": " + detail if detail else ""))
    if not ok:
        failures.append(name)


class Reference(nn.Module):
    """BERT for sequence classification built from PyTorch's own encoder layer."""

    def __init__(self):
        super().__init__()
        self.word = nn.Embedding(len(VOCAB), D)
        self.pos = nn.Embedding(POSITIONS, D)
        self.token_type = nn.Embedding(2, D)
        self.ln = nn.LayerNorm(D, eps=EPS)
        self.layers = nn.ModuleList([nn.TransformerEncoderLayer(D, HEADS, INTER, dropout=0.0, activation="gelu",
                                                                layer_norm_eps=EPS, batch_first=True)
                                     for _ in range(LAYERS)])
        self.pooler = nn.Linear(D, D)
        self.classifier = nn.Linear(D, LABELS)
        for p in self.parameters():  # LayerNorm weights away from 1/0 too, so that a swapped name shows
            nn.init.normal_(p, std=0.3)

    def embed(self, ids):
        return self.word(ids) + self.pos(torch.arange(ids.shape[1])) + self.token_type(torch.zeros_like(ids))

    def forward(self, ids):
        x = self.ln(self.embed(ids))
        attentions = []
        for layer in self.layers:
            attentions.append(layer.self_attn(x, x, x, need_weights=True, average_attn_weights=False)[1])
            x = layer(x)
        return self.classifier(torch.tanh(self.pooler(x[:, 0]))), attentions

    def forward_replaced(self, ids, layer_index, attention):
        """The same model written out by hand, with layer `layer_index`'s attention probabilities replaced."""
        x = self.ln(self.embed(ids))
        b, t = ids.shape
        hd = D // HEADS
        for l, layer in enumerate(self.layers):
            w, bias = layer.self_attn.in_proj_weight, layer.self_attn.in_proj_bias
            q, k, v = [F.linear(x, w[i * D:(i + 1) * D], bias[i * D:(i + 1) * D]).view(b, t, HEADS, hd).transpose(1, 2)
                       for i in range(3)]
            probs = torch.softmax(q @ k.transpose(-1, -2) / hd ** 0.5, -1)
            if l == layer_index:
                probs = attention
            context = (probs @ v).transpose(1, 2).reshape(b, t, D)
            x = layer.norm1(x + layer.self_attn.out_proj(context))
            x = layer.norm2(x + layer.linear2(F.gelu(layer.linear1(x))))
        return self.classifier(torch.tanh(self.pooler(x[:, 0])))

    def hf_tensors(self, legacy=False, swap_qk=False):
        ln = ("gamma", "beta") if legacy else ("weight", "bias")
        t = {"bert.embeddings.word_embeddings.weight": self.word.weight,
             "bert.embeddings.position_embeddings.weight": self.pos.weight,
             "bert.embeddings.token_type_embeddings.weight": self.token_type.weight,
             f"bert.embeddings.LayerNorm.{ln[0]}": self.ln.weight, f"bert.embeddings.LayerNorm.{ln[1]}": self.ln.bias}
        for i, layer in enumerate(self.layers):
            p = f"bert.encoder.layer.{i}."
            w, b = layer.self_attn.in_proj_weight, layer.self_attn.in_proj_bias
            names = ["query", "key", "value"]
            if swap_qk:
                names = ["key", "query", "value"]
            for j, name in enumerate(names):
                t[p + f"attention.self.{name}.weight"] = w[j * D:(j + 1) * D]
                t[p + f"attention.self.{name}.bias"] = b[j * D:(j + 1) * D]
            t[p + "attention.output.dense.weight"] = layer.self_attn.out_proj.weight
            t[p + "attention.output.dense.bias"] = layer.self_attn.out_proj.bias
            t[p + f"attention.output.LayerNorm.{ln[0]}"] = layer.norm1.weight
            t[p + f"attention.output.LayerNorm.{ln[1]}"] = layer.norm1.bias
            t[p + "intermediate.dense.weight"] = layer.linear1.weight
            t[p + "intermediate.dense.bias"] = layer.linear1.bias
            t[p + "output.dense.weight"] = layer.linear2.weight
            t[p + "output.dense.bias"] = layer.linear2.bias
            t[p + f"output.LayerNorm.{ln[0]}"] = layer.norm2.weight
            t[p + f"output.LayerNorm.{ln[1]}"] = layer.norm2.bias
        t["bert.pooler.dense.weight"] = self.pooler.weight
        t["bert.pooler.dense.bias"] = self.pooler.bias
        t["classifier.weight"] = self.classifier.weight
        t["classifier.bias"] = self.classifier.bias
        return t


def save(model, folder, **kwargs):
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "model.safetensors"), model.hf_tensors(**kwargs))
    config = {"architectures": ["BertForSequenceClassification"], "model_type": "bert", "vocab_size": len(VOCAB),
              "hidden_size": D, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "intermediate_size": INTER,
              "hidden_act": "gelu", "max_position_embeddings": POSITIONS, "type_vocab_size": 2,
              "layer_norm_eps": EPS, "id2label": {str(i): f"class{i}" for i in range(LABELS)}, "do_lower_case": True}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    with open(os.path.join(folder, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")


def run_explain(folder, out, methods, *extra):
    cmd = [ATTNLENS, "explain", "--text", TEXT, "--model", folder, "--method", methods, "-o", out, "-q", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stderr)
        raise SystemExit("attnlens failed: " + " ".join(cmd))
    with open(os.path.join(out, "summary.json")) as f:
        return json.load(f)["texts"][0]


def ig_reference(model, ids, layer, attention, target, steps, right):
    """Spec 5 with PyTorch autograd: Attr = A/m * sum_k dF(alpha_k A)/dA, F = softmax probability of target."""
    total = torch.zeros_like(attention)
    for k in range(steps):
        alpha = (k + 1 if right else k) / steps
        scaled = (alpha * attention).detach().requires_grad_(True)
        prob = torch.softmax(model.forward_replaced(ids, layer, scaled), -1)[0, target]
        total += torch.autograd.grad(prob, scaled)[0]
    return (attention * total / steps)[0].numpy()


def main():
    torch.manual_seed(7)
    model = Reference().eval()
    ids = torch.tensor([[VOCAB.index("[CLS]")] + [VOCAB.index(w) for w in TEXT.split()] + [VOCAB.index("[SEP]")]])
    with torch.no_grad():
        logits, attentions = model(ids)
        replaced = model.forward_replaced(ids, -1, None)
    probs = torch.softmax(logits, -1)[0].numpy()
    check("hand-written forward equals nn.TransformerEncoderLayer", float((replaced - logits).abs().max()) < 1e-5)
    target = int(probs.argmax())

    with tempfile.TemporaryDirectory() as tmp:
        for legacy in (False, True):
            folder = os.path.join(tmp, "legacy" if legacy else "hf")
            save(model, folder, legacy=legacy)
            got = run_explain(folder, os.path.join(folder, "out"), "raw", "--save-attention")
            check(f"tokens ({'legacy' if legacy else 'hf'})", got["ids"] == ids[0].tolist(), str(got["tokens"]))
            diff = np.abs(np.array(got["probabilities"]) - probs).max()
            check(f"probabilities ({'gamma/beta' if legacy else 'hf'} names)", diff < 1e-5, f"max diff {diff:.2e}")
            att = np.load(os.path.join(folder, "out", got["outputs"]["attention"]))
            ref = np.stack([a[0].numpy() for a in attentions])
            diff = np.abs(att - ref).max()
            check(f"attention of every layer ({'legacy' if legacy else 'hf'})", diff < 1e-5, f"max diff {diff:.2e}")

        folder = os.path.join(tmp, "hf")
        # AttAttr, both Riemann sums, against autograd on the hand-written model.
        for riemann, steps in (("right", 6), ("left", 5)):
            out = os.path.join(tmp, "ig_" + riemann)
            got = run_explain(folder, out, "attattr", "--steps", str(steps), "--riemann", riemann, "--ig-batch", "4")
            attr = np.load(os.path.join(out, got["outputs"]["attattr"]))
            worst = 0.0
            for layer in range(LAYERS):
                ref = ig_reference(model, ids, layer, attentions[layer], target, steps, riemann == "right")
                worst = max(worst, np.abs(attr[layer] - ref).max() / (np.abs(ref).max() + 1e-12))
            check(f"attattr {riemann} sum, m={steps}, vs autograd", worst < 1e-4, f"max rel diff {worst:.2e}")
        # m = 1, right sum: IG is exactly gradient x input.
        out = os.path.join(tmp, "ig_m1")
        got = run_explain(folder, out, "attattr", "--steps", "1")
        attr = np.load(os.path.join(out, got["outputs"]["attattr"]))
        layer = 1
        a = attentions[layer].detach().requires_grad_(True)
        prob = torch.softmax(model.forward_replaced(ids, layer, a), -1)[0, target]
        gxi = (a * torch.autograd.grad(prob, a)[0])[0].detach().numpy()
        diff = np.abs(attr[layer] - gxi).max() / np.abs(gxi).max()
        check("attattr with m=1 equals gradient x input", diff < 1e-4, f"max rel diff {diff:.2e}")
        # Completeness: sum of layer l's attribution -> F(A) - F(0) as m grows.
        out = os.path.join(tmp, "ig_m64")
        got = run_explain(folder, out, "attattr", "--steps", "64")
        attr = np.load(os.path.join(out, got["outputs"]["attattr"]))
        with torch.no_grad():
            f0 = torch.softmax(model.forward_replaced(ids, 0, torch.zeros_like(attentions[0])), -1)[0, target].item()
        gap = abs(attr[0].sum() - (probs[target] - f0))
        check("attattr completeness (layer 0, m=64)", gap < 0.02 * max(1e-3, abs(probs[target] - f0)) + 1e-4,
              f"sum {attr[0].sum():.5f} vs F(A)-F(0) {probs[target] - f0:.5f}")
        # Blank-out: p(target) minus p(target) with token t replaced by [MASK], for every position.
        got = run_explain(folder, os.path.join(tmp, "blank"), "blankout,input-x-gradient")
        with torch.no_grad():
            expected = []
            for t in range(ids.shape[1]):
                v = ids.clone()
                v[0, t] = VOCAB.index("[MASK]")
                expected.append(probs[target] - torch.softmax(model(v)[0], -1)[0, target].item())
        diff = np.abs(np.array(got["scores"]["blankout"]) - np.array(expected)).max()
        check("blank-out scores", diff < 1e-5, f"max diff {diff:.2e}")
        e = model.ln(model.embed(ids)).detach().requires_grad_(True)  # the embedding layer's output
        x = e
        for layer_module in model.layers:
            x = layer_module(x)
        logit = model.classifier(torch.tanh(model.pooler(x[:, 0])))[0, target]
        ixg = (e * torch.autograd.grad(logit, e)[0]).sum(-1)[0].detach().numpy()
        diff = np.abs(np.array(got["scores"]["input-x-gradient"]) - ixg).max() / np.abs(ixg).max()
        check("input x gradient", diff < 1e-4, f"max rel diff {diff:.2e}")

        # Negative control: query and key swapped must change the attention.
        swapped = os.path.join(tmp, "swapped")
        save(model, swapped, swap_qk=True)
        got = run_explain(swapped, os.path.join(swapped, "out"), "raw", "--save-attention")
        att = np.load(os.path.join(swapped, "out", got["outputs"]["attention"]))
        ref = np.stack([a[0].numpy() for a in attentions])
        check("negative control: swapped query/key detected", np.abs(att - ref).max() > 1e-3)

    if failures:
        raise SystemExit(f"{len(failures)} check(s) failed: {failures}")
    print("all BERT cross-checks passed")


if __name__ == "__main__":
    main()
