#!/usr/bin/python3
"""attnlens' DistilBERT and RoBERTa classifiers against independent PyTorch implementations written here from the
formulas of MODELS.md D.2 and E.2 with torch.nn building blocks (nn.Embedding, nn.Linear, nn.LayerNorm,
torch.softmax), loaded from the same safetensors (random weights, Hugging Face names, config.json and tokenizer
files: DistilBERT the bundled model's vocab.txt, RoBERTa a byte-level BPE trained here):

- small models: logits and every layer's attention to 1e-4 on several texts (`attnlens capture --text`), and for
  both families d(logit)/dA against autograd; a negative control (query and key swapped) must be caught;
- a full-size DistilBERT-base shape (768 wide, 6 layers, 12 heads, vocabulary 30,522): one forward, the same checks;
- padded batches: the predictions `attack words` starts from (texts of different lengths in one batch) equal the
  reference's one text at a time;
- `explain --text --method all`, `prune` and `attack words` run on the small models and write what they promise;
- bad input: names of no family (the message lists the families tried and what each lacked), config/weights
  mismatches (heads, width, vocabulary size), missing tokenizer files: exit 2, one error line, nothing written.

    /usr/bin/python3 tests/cross/text_families_vs_pytorch.py build/attnlens
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wordpiece  # noqa: E402
from bpe_reference import RobertaReference, roberta_files  # noqa: E402
from safetensors_file import write_safetensors  # noqa: E402

ATTNLENS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "attnlens")
BERT_VOCAB = os.path.join(ROOT, "data", "models", "sentiment-bert", "vocab.txt")
TEXTS = ["The food was not good at all, and the service was slow.", "Great acting!",
         "I loved this phone; the battery lasts for days.", "Terrible. Never again...", "ok"]
TOLERANCE = 1e-4
failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (": " + detail if detail else ""))
    if not ok:
        failures.append(name)


def init_(module, std):
    """Random weights; LayerNorm weights near 1 (and away from it, so that a swapped name shows)."""
    for name, p in module.named_parameters():
        if "ln" in name.split(".")[-2] and name.endswith("weight"):
            nn.init.normal_(p, mean=1.0, std=0.2)
        else:
            nn.init.normal_(p, std=std)


class Layer(nn.Module):
    def __init__(self, d, f, eps):
        super().__init__()
        self.q, self.k, self.v, self.out = (nn.Linear(d, d) for _ in range(4))
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.ffn_in, self.ffn_out = nn.Linear(d, f), nn.Linear(f, d)
        self.ln2 = nn.LayerNorm(d, eps=eps)


class DistilBert(nn.Module):
    """MODELS.md D.2: word + position embeddings, LayerNorm(1e-12); per layer q = q_lin(x)/sqrt(d), scores = q k^T,
    masked keys filled with finfo.min, softmax, out_lin, sa_layer_norm(. + x), lin2(gelu(lin1)), output_layer_norm;
    head: pre_classifier on token 0, ReLU, classifier."""

    def __init__(self, vocab, d, heads, layers, f, positions, labels, std):
        super().__init__()
        self.heads = heads
        self.word, self.pos = nn.Embedding(vocab, d), nn.Embedding(positions, d)
        self.ln = nn.LayerNorm(d, eps=1e-12)
        self.layers = nn.ModuleList(Layer(d, f, 1e-12) for _ in range(layers))
        self.pre, self.classifier = nn.Linear(d, d), nn.Linear(d, labels)
        init_(self, std)

    def forward(self, ids, mask=None, swap_qk=False):
        b, t = ids.shape
        d = self.word.embedding_dim
        hd = d // self.heads
        x = self.ln(self.word(ids) + self.pos(torch.arange(t)))
        attentions = []
        for m in self.layers:
            split = lambda y: y.view(b, t, self.heads, hd).transpose(1, 2)  # noqa: E731
            q, k = (m.k, m.q) if swap_qk else (m.q, m.k)
            scores = (split(q(x)) / math.sqrt(hd)) @ split(k(x)).transpose(-1, -2)
            if mask is not None:
                scores = scores.masked_fill(mask[:, None, None, :] == 0, torch.finfo(torch.float32).min)
            a = torch.softmax(scores, -1)
            if a.requires_grad:
                a.retain_grad()
            attentions.append(a)
            x = m.ln1(m.out((a @ split(m.v(x))).transpose(1, 2).reshape(b, t, d)) + x)
            x = m.ln2(m.ffn_out(F.gelu(m.ffn_in(x))) + x)
        return self.classifier(F.relu(self.pre(x[:, 0]))), attentions

    def hf_tensors(self):
        t = {"distilbert.embeddings.word_embeddings.weight": self.word.weight,
             "distilbert.embeddings.position_embeddings.weight": self.pos.weight,
             "distilbert.embeddings.LayerNorm.weight": self.ln.weight,
             "distilbert.embeddings.LayerNorm.bias": self.ln.bias}
        for i, m in enumerate(self.layers):
            p = f"distilbert.transformer.layer.{i}."
            for ours, theirs in (("q", "attention.q_lin"), ("k", "attention.k_lin"), ("v", "attention.v_lin"),
                                 ("out", "attention.out_lin"), ("ln1", "sa_layer_norm"), ("ffn_in", "ffn.lin1"),
                                 ("ffn_out", "ffn.lin2"), ("ln2", "output_layer_norm")):
                t[p + theirs + ".weight"] = getattr(m, ours).weight
                t[p + theirs + ".bias"] = getattr(m, ours).bias
        for ours, theirs in (("pre", "pre_classifier"), ("classifier", "classifier")):
            t[theirs + ".weight"] = getattr(self, ours).weight
            t[theirs + ".bias"] = getattr(self, ours).bias
        return t

    def config(self, labels):
        return {"architectures": ["DistilBertForSequenceClassification"], "model_type": "distilbert",
                "vocab_size": self.word.num_embeddings, "dim": self.word.embedding_dim, "n_layers": len(self.layers),
                "n_heads": self.heads, "hidden_dim": self.layers[0].ffn_in.out_features, "activation": "gelu",
                "max_position_embeddings": self.pos.num_embeddings, "sinusoidal_pos_embds": False,
                "id2label": {str(i): f"class{i}" for i in range(labels)}, "pad_token_id": 0}


class Roberta(nn.Module):
    """MODELS.md E.2: positions cumsum(ids != pad) * (ids != pad) + pad; word + token_type[0] + position,
    LayerNorm(eps); per layer (q k^T)/sqrt(d) + (1 - mask) * finfo.min, softmax, dense, LayerNorm(. + x), FFN
    intermediate -> gelu -> output, LayerNorm(. + x); head: dense, tanh, out_proj on <s>."""

    def __init__(self, vocab, d, heads, layers, f, positions, labels, std, eps=1e-5, pad=1):
        super().__init__()
        self.heads, self.pad, self.eps = heads, pad, eps
        self.word, self.pos, self.token_type = nn.Embedding(vocab, d), nn.Embedding(positions, d), nn.Embedding(1, d)
        self.ln = nn.LayerNorm(d, eps=eps)
        self.layers = nn.ModuleList(Layer(d, f, eps) for _ in range(layers))
        self.dense, self.out_proj = nn.Linear(d, d), nn.Linear(d, labels)
        init_(self, std)

    def forward(self, ids, mask=None, swap_qk=False):
        b, t = ids.shape
        d = self.word.embedding_dim
        hd = d // self.heads
        real = ids.ne(self.pad).long()
        positions = torch.cumsum(real, 1) * real + self.pad
        x = self.ln(self.word(ids) + self.token_type(torch.zeros_like(ids)) + self.pos(positions))
        extended = 0.0 if mask is None else (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        attentions = []
        for m in self.layers:
            split = lambda y: y.view(b, t, self.heads, hd).transpose(1, 2)  # noqa: E731
            q, k = (m.k, m.q) if swap_qk else (m.q, m.k)
            a = torch.softmax(split(q(x)) @ split(k(x)).transpose(-1, -2) / math.sqrt(hd) + extended, -1)
            if a.requires_grad:
                a.retain_grad()
            attentions.append(a)
            x = m.ln1(m.out((a @ split(m.v(x))).transpose(1, 2).reshape(b, t, d)) + x)
            x = m.ln2(m.ffn_out(F.gelu(m.ffn_in(x))) + x)
        return self.out_proj(torch.tanh(self.dense(x[:, 0]))), attentions

    def hf_tensors(self):
        t = {"roberta.embeddings.word_embeddings.weight": self.word.weight,
             "roberta.embeddings.position_embeddings.weight": self.pos.weight,
             "roberta.embeddings.token_type_embeddings.weight": self.token_type.weight,
             "roberta.embeddings.LayerNorm.weight": self.ln.weight, "roberta.embeddings.LayerNorm.bias": self.ln.bias}
        for i, m in enumerate(self.layers):
            p = f"roberta.encoder.layer.{i}."
            for ours, theirs in (("q", "attention.self.query"), ("k", "attention.self.key"),
                                 ("v", "attention.self.value"), ("out", "attention.output.dense"),
                                 ("ln1", "attention.output.LayerNorm"), ("ffn_in", "intermediate.dense"),
                                 ("ffn_out", "output.dense"), ("ln2", "output.LayerNorm")):
                t[p + theirs + ".weight"] = getattr(m, ours).weight
                t[p + theirs + ".bias"] = getattr(m, ours).bias
        for ours, theirs in (("dense", "classifier.dense"), ("out_proj", "classifier.out_proj")):
            t[theirs + ".weight"] = getattr(self, ours).weight
            t[theirs + ".bias"] = getattr(self, ours).bias
        return t

    def config(self, labels):
        return {"architectures": ["RobertaForSequenceClassification"], "model_type": "roberta",
                "vocab_size": self.word.num_embeddings, "hidden_size": self.word.embedding_dim,
                "num_hidden_layers": len(self.layers), "num_attention_heads": self.heads,
                "intermediate_size": self.layers[0].ffn_in.out_features, "hidden_act": "gelu",
                "max_position_embeddings": self.pos.num_embeddings, "type_vocab_size": 1,
                "layer_norm_eps": self.eps, "pad_token_id": self.pad, "bos_token_id": 0, "eos_token_id": 2,
                "id2label": {str(i): f"class{i}" for i in range(labels)}}


def save(model, folder, labels, tokenizer_files, config_changes=None, tensors=None):
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "model.safetensors"), tensors or model.hf_tensors())
    config = model.config(labels)
    config.update(config_changes or {})
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    for name, content in tokenizer_files.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            f.write(content)


def run(*args):
    return subprocess.run([ATTNLENS, *args], capture_output=True, text=True)


def attnlens_capture(folder, text, tmp, category=None):
    att, logits, grad = (os.path.join(tmp, n) for n in ("att.npy", "logits.npy", "grad.npy"))
    args = ["capture", "--model", folder, "--text", text, "-o", att, "--logits-output", logits, "-q"]
    if category is not None:
        args += ["--grad-output", grad, "--category", str(category)]
    res = run(*args)
    assert res.returncode == 0, res.stderr
    return np.load(att), np.load(logits), (np.load(grad) if category is not None else None)


def attnlens_ids(folder, text):
    res = run("tokenize", "--vocab", folder, text)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["ids"]


def compare_model(name, model, folder, texts, reference_ids, tmp, gradients=True):
    worst_logit = worst_att = worst_grad = 0.0
    for text in texts:
        ids = reference_ids(text)
        got_ids = attnlens_ids(folder, text)
        check(f"{name}: token ids of {text[:24]!r}", got_ids == ids, f"{got_ids[:10]} vs {ids[:10]}")
        x = torch.tensor([ids])
        logits, attentions = model(x)
        category = int(logits.argmin()) if gradients else None  # not the predicted class: -1 would hide a bug
        att, got_logits, grad = attnlens_capture(folder, text, tmp, category)
        worst_logit = max(worst_logit, float(np.abs(got_logits - logits[0].detach().numpy()).max()))
        want = torch.stack([a[0] for a in attentions]).detach().numpy()
        check(f"{name}: attention shape", att.shape == want.shape, f"{att.shape} vs {want.shape}")
        worst_att = max(worst_att, float(np.abs(att - want).max()))
        if gradients:
            model.zero_grad()
            logits[0, category].backward()
            g = torch.stack([a.grad[0] for a in attentions]).numpy()
            worst_grad = max(worst_grad, float(np.abs(grad - g).max() / max(1.0, np.abs(g).max())))
    check(f"{name}: logits", worst_logit < TOLERANCE, f"max error {worst_logit:.2e}")
    check(f"{name}: every layer's attention", worst_att < TOLERANCE, f"max error {worst_att:.2e}")
    if gradients:
        check(f"{name}: d(logit)/dA vs autograd", worst_grad < TOLERANCE, f"max error {worst_grad:.2e} (relative)")
    return worst_logit, worst_att, worst_grad


def fails_cleanly(name, expected, out, *args):
    res = run(*args)
    lines = res.stderr.strip().splitlines()
    ok = (res.returncode == 2 and len(lines) == 1 and lines[0].startswith("attnlens: error:") and
          all(e in lines[0] for e in expected) and not os.path.exists(out))
    check(f"bad input: {name}", ok, f"exit {res.returncode}: {res.stderr.strip()[:300]}")


def main():
    torch.manual_seed(0)
    with open(BERT_VOCAB, encoding="utf-8") as f:
        bert_vocab = f.read().splitlines()
    wp_vocab = wordpiece.load_vocab(BERT_VOCAB)
    corpus = TEXTS + [line for line in open(os.path.join(ROOT, "data", "models", "sentiment-bert", "demo_texts.txt"),
                                            encoding="utf-8").read().splitlines() if line]
    bpe_vocab, merges = roberta_files(corpus * 3, 400)
    bpe_ref = RobertaReference(bpe_vocab, merges)
    bpe_files = {"vocab.json": json.dumps(bpe_vocab, ensure_ascii=False),
                 "merges.txt": "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)}
    wp_files = {"vocab.txt": "\n".join(bert_vocab) + "\n"}
    wp_ids = lambda text: wordpiece.encode(text, wp_vocab, max_length=512)  # noqa: E731
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        # ---- small models ----
        distil = DistilBert(len(bert_vocab), 32, 4, 2, 64, 128, 3, std=0.3).eval()
        with torch.no_grad():  # ReLU features are positive: centre the logits so that several classes win
            distil.classifier.bias.sub_(torch.cat([distil(torch.tensor([wp_ids(t)]))[0] for t in corpus[:14]]).mean(0))
        distil_dir = os.path.join(tmp, "distil")
        save(distil, distil_dir, 3, wp_files)
        figures["distilbert small"] = compare_model("DistilBERT (small)", distil, distil_dir, TEXTS, wp_ids, tmp)
        roberta = Roberta(len(bpe_vocab), 32, 4, 2, 64, 130, 3, std=0.3).eval()
        roberta_dir = os.path.join(tmp, "roberta")
        save(roberta, roberta_dir, 3, bpe_files)
        figures["roberta small"] = compare_model("RoBERTa (small)", roberta, roberta_dir, TEXTS, bpe_ref.encode, tmp)

        # Negative control: query and key exchanged in the reference must be caught.
        att, _, _ = attnlens_capture(distil_dir, TEXTS[0], tmp)
        swapped = torch.stack([a[0] for a in distil(torch.tensor([wp_ids(TEXTS[0])]), swap_qk=True)[1]])
        check("negative control: swapped query/key differs", float(np.abs(att - swapped.detach().numpy()).max()) > 1e-3)

        # ---- padded batches: attack words' clean predictions (one padded batch) vs the reference per text: each
        # text's gold label is the reference's prediction, so accuracy at k = 0 is 1 exactly when all agree ----
        data = os.path.join(tmp, "texts.tsv")
        mixed = corpus[:14]
        for name, model, folder, ids_of in (("DistilBERT", distil, distil_dir, wp_ids),
                                            ("RoBERTa", roberta, roberta_dir, bpe_ref.encode)):
            with torch.no_grad():
                predicted = [int(model(torch.tensor([ids_of(t)]))[0].argmax()) for t in mixed]
            with open(data, "w") as f:
                f.write("".join(f"{p}\t{t}\n" for p, t in zip(predicted, mixed)))
            out = os.path.join(tmp, f"aw_{name}")
            res = run("attack", "words", "--model", folder, "--data", data, "--split", "all", "--methods", "all",
                      "--k", "2", "--steps", "2", "-q", "-o", out)
            check(f"{name}: attack words --methods all runs", res.returncode == 0, res.stderr.strip()[:300])
            if res.returncode != 0:
                continue
            acc = json.load(open(os.path.join(out, "attack_words.json")))["accuracy"]
            check(f"{name}: padded-batch predictions = one text at a time ({len(mixed)} texts, "
                  f"{len(set(predicted))} classes)", all(v[0] == 1.0 for v in acc.values()) and len(set(predicted)) > 1,
                  f"{[v[0] for v in acc.values()]}")
            check(f"{name}: attack words covers every method and random", "random" in acc and "attattr" in acc
                  and "input-x-gradient" in acc and all(len(v) == 3 for v in acc.values()))

        # ---- explain --text and prune on both ----
        for name, folder in (("DistilBERT", distil_dir), ("RoBERTa", roberta_dir)):
            out = os.path.join(tmp, f"explain_{name}")
            res = run("explain", "--model", folder, "--text", TEXTS[0], "--text", TEXTS[1], "--method", "all",
                      "--steps", "4", "-q", "-o", out)
            ok = res.returncode == 0
            if ok:
                s = json.load(open(os.path.join(out, "summary.json")))
                ok = len(s["methods"]) == 17 and all(len(t["scores"][m]) == len(t["tokens"]) for t in s["texts"]
                                                    for m in s["methods"])
                ok = ok and os.path.exists(os.path.join(out, "index.html")) and abs(sum(s["texts"][0]["probabilities"]) - 1) < 1e-6
            check(f"{name}: explain --text --method all", ok, res.stderr.strip()[:300])
            out = os.path.join(tmp, f"prune_{name}")
            res = run("prune", "--model", folder, "--data", data, "--split", "all", "--examples", "2", "--steps", "2",
                      "-q", "-o", out)
            ok = res.returncode == 0
            if ok:
                r = json.load(open(os.path.join(out, "prune.json")))["rates"]
                ok = len(r) == 11 and r[0]["heads_pruned"] == 0 and r[-1]["heads_pruned"] == 8
            check(f"{name}: prune", ok, res.stderr.strip()[:300])
            out = os.path.join(tmp, f"tree_{name}")
            res = run("tree", "--model", folder, TEXTS[0], "--steps", "2", "--threshold", "0.2", "-q", "-o", out)
            ok = res.returncode == 0
            if ok:
                t = json.load(open(os.path.join(out, "tree.json")))
                n = len(t["tokens"])
                ok = (n == len(attnlens_ids(folder, TEXTS[0])) and 0 <= t["root"] < n and
                      all(0 <= e["parent"] < n and 0 <= e["child"] < n for e in t["edges"]) and
                      os.path.exists(os.path.join(out, "tree.dot")))
            check(f"{name}: tree over the family's own tokens", ok, res.stderr.strip()[:300])
            out = os.path.join(tmp, f"triggers_{name}")
            res = run("triggers", "--model", folder, "--data", data, "--split", "all", "--examples", "3", "--steps",
                      "2", "-q", "-o", out)
            ok = res.returncode == 0 and os.path.exists(os.path.join(out, "triggers.json")) and \
                os.path.exists(os.path.join(out, "triggers.csv"))
            check(f"{name}: triggers", ok, res.stderr.strip()[:300])

        # ---- bad input ----
        vit_like = os.path.join(tmp, "vit_like")
        os.makedirs(vit_like)
        write_safetensors(os.path.join(vit_like, "model.safetensors"), {"blocks.0.attn.qkv.weight": torch.zeros(6, 2)})
        with open(os.path.join(vit_like, "vocab.txt"), "w") as f:
            f.write("\n".join(bert_vocab) + "\n")
        fails_cleanly("names of no family", ["tried BERT", "DistilBERT", "RoBERTa", "lacks",
                                            "embeddings.word_embeddings.weight"],
                      os.path.join(tmp, "e1"), "explain", "--model", vit_like, "--text", "hi", "-o",
                      os.path.join(tmp, "e1"))
        cases = [
            ("DistilBERT heads that do not divide the width", distil, wp_files, {"n_heads": 5},
             ["5 attention heads do not divide the width 32"]),
            ("DistilBERT width", distil, wp_files, {"dim": 64}, ["dim is 64 but the weights have 32"]),
            ("DistilBERT vocabulary size", distil, wp_files, {"vocab_size": 30522},
             ["vocab_size is 30522 but the weights have"]),
            ("RoBERTa width", roberta, bpe_files, {"hidden_size": 768}, ["hidden_size is 768 but the weights have 32"]),
            ("RoBERTa heads", roberta, bpe_files, {"num_attention_heads": 3}, ["3 attention heads do not divide"]),
            ("RoBERTa tokenizer smaller than the embeddings", roberta,
             {"vocab.json": json.dumps({t: i for i, t in enumerate(list(bpe_vocab)[:-1])}),
              "merges.txt": bpe_files["merges.txt"]}, {}, ["do not belong together"]),
            ("RoBERTa without merges.txt", roberta, {"vocab.json": bpe_files["vocab.json"]}, {},
             ["merges.txt is missing"]),
            ("DistilBERT without vocab.txt", distil, {}, {}, ["has no vocab.txt"]),
        ]
        for k, (name, model, files, changes, expected) in enumerate(cases):
            folder = os.path.join(tmp, f"bad{k}")
            save(model, folder, 3, files, changes)
            out = os.path.join(tmp, f"bad_out{k}")
            fails_cleanly(name, expected, out, "explain", "--model", folder, "--text", "hi there", "-o", out)
        folder = os.path.join(tmp, "bad_tensor")
        t = roberta.hf_tensors()
        t["roberta.encoder.layer.1.attention.self.key.weight"] = torch.zeros(32, 16)
        save(roberta, folder, 3, bpe_files, tensors=t)
        fails_cleanly("mis-shaped tensor", ["roberta.encoder.layer.1.attention.self.key.weight"],
                      os.path.join(tmp, "bad_t.npy"), "capture", "--model", folder, "--text", "hi", "-o",
                      os.path.join(tmp, "bad_t.npy"))

        # ---- full-size DistilBERT-base shape: one forward ----
        full_vocab = bert_vocab + [f"[unused{i}]" for i in range(30522 - len(bert_vocab))]
        full = DistilBert(30522, 768, 12, 6, 3072, 512, 2, std=0.02).eval()
        full_dir = os.path.join(tmp, "distil_base")
        save(full, full_dir, 2, {"vocab.txt": "\n".join(full_vocab) + "\n"})
        figures["distilbert-base"] = compare_model("DistilBERT-base shape", full, full_dir, TEXTS[:1], wp_ids, tmp,
                                                   gradients=False)
    print("max errors (logits, attention, gradient):",
          ", ".join(f"{k} {v[0]:.1e} {v[1]:.1e} {v[2]:.1e}" for k, v in figures.items()))
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
