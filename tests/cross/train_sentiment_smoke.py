#!/usr/bin/python3
"""Smoke test of tools/train_sentiment_bert.py: 3 optimiser steps on a tiny synthetic data set in a temporary folder,
then checks that what it wrote is complete and self-consistent:
  * model.safetensors: header size a multiple of 8, offsets contiguous, file size exact, F32, and exactly the tensor
    names of Hugging Face's BertForSequenceClassification with the shapes config.json implies;
  * config.json: the HF keys attnlens reads; vocab.txt: vocab_size lines, [PAD] [UNK] [CLS] [SEP] [MASK] = 0..4;
  * samples.json: tools/wordpiece.py re-encodes each text to the stored ids; the weights read back from the file
    give the stored reference logits (1e-5), also through an independent numpy forward pass written from the spec's
    post-norm formulas (1e-4), and inside a padded batch (1e-5);
  * metrics.json: the keys the README and later tests use.
Synthetic data (not the npm fixtures), so it runs anywhere without network; under 30 s on one core.

Usage: train_sentiment_smoke.py      (needs Debian's python3-torch and python3-numpy; exits 1 on any failure)
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
TOOLS = os.path.join(ROOT, "tools")
sys.path.insert(0, TOOLS)
import train_sentiment_bert as tsb  # noqa: E402
import wordpiece  # noqa: E402

WORDS_POS = ["great", "loved", "excellent", "superb", "works", "nice", "friendly", "happy"]
WORDS_NEG = ["awful", "broken", "waste", "rude", "terrible", "bland", "refund", "disappointed"]
FILLER = ["the", "phone", "movie", "food", "was", "really", "and", "service", "i", "it", "café", "naïve"]


def synthetic_data(folder):
    """Three files shaped like the real fixtures (41 items each, the last empty with class null)."""
    rng = np.random.default_rng(7)
    for source in ("amazon", "imdb", "yelp"):
        items = []
        for i in range(40):
            label = i % 2
            words = list(rng.choice(FILLER, 5)) + list(rng.choice(WORDS_POS if label else WORDS_NEG, 2))
            rng.shuffle(words)
            items.append({"text": " ".join(words).capitalize() + ("!" if i % 3 else ", \u0096 ok."), "class": label})
        items.append({"text": "", "class": None})
        with open(os.path.join(folder, source + ".json"), "w", encoding="utf-8") as f:
            json.dump(items, f)


def expected_shapes(cfg):
    d, f, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    shapes = {
        "bert.embeddings.word_embeddings.weight": [v, d],
        "bert.embeddings.position_embeddings.weight": [cfg["max_position_embeddings"], d],
        "bert.embeddings.token_type_embeddings.weight": [cfg["type_vocab_size"], d],
        "bert.embeddings.LayerNorm.weight": [d], "bert.embeddings.LayerNorm.bias": [d],
        "bert.pooler.dense.weight": [d, d], "bert.pooler.dense.bias": [d],
        "classifier.weight": [cfg["num_labels"], d], "classifier.bias": [cfg["num_labels"]],
    }
    for n in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{n}."
        for name in ("query", "key", "value"):
            shapes[p + f"attention.self.{name}.weight"] = [d, d]
            shapes[p + f"attention.self.{name}.bias"] = [d]
        shapes[p + "attention.output.dense.weight"] = [d, d]
        shapes[p + "attention.output.dense.bias"] = [d]
        shapes[p + "intermediate.dense.weight"] = [f, d]
        shapes[p + "intermediate.dense.bias"] = [f]
        shapes[p + "output.dense.weight"] = [d, f]
        shapes[p + "output.dense.bias"] = [d]
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + ln + ".weight"] = [d]
            shapes[p + ln + ".bias"] = [d]
    return shapes


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    header.pop("__metadata__", None)
    body = data[8 + size:]
    tensors, end = {}, 0
    for name, entry in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        begin, stop = entry["data_offsets"]
        assert entry["dtype"] == "F32", name
        assert begin == end, f"{name}: offsets not contiguous"
        assert stop - begin == 4 * int(np.prod(entry["shape"], dtype=np.int64)), name
        tensors[name] = np.frombuffer(body[begin:stop], dtype="<f4").reshape(entry["shape"])
        end = stop
    return size, len(body) == end, tensors


def numpy_bert_logits(t, cfg, ids):
    """An independent float64 forward pass of HF BERT from the tensor names alone (spec 10(c), post-norm)."""
    import math
    erf = np.vectorize(math.erf)
    eps, heads = cfg["layer_norm_eps"], cfg["num_attention_heads"]

    def ln(x, name):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * t[name + ".weight"] + t[name + ".bias"]

    def dense(x, name):
        return x @ t[name + ".weight"].T.astype(np.float64) + t[name + ".bias"]

    e = "bert.embeddings."
    x = t[e + "word_embeddings.weight"][ids] + t[e + "position_embeddings.weight"][:len(ids)] \
        + t[e + "token_type_embeddings.weight"][0]
    x = ln(x.astype(np.float64), e + "LayerNorm")
    n, d = x.shape
    dh = d // heads
    for layer in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{layer}."
        q, k, v = (dense(x, p + f"attention.self.{w}").reshape(n, heads, dh).transpose(1, 0, 2)
                   for w in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(1, 0, 2).reshape(n, d)
        x = ln(x + dense(context, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        h = dense(x, p + "intermediate.dense")
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
        x = ln(x + dense(h, p + "output.dense"), p + "output.LayerNorm")
    pooled = np.tanh(dense(x[0], "bert.pooler.dense"))
    return dense(pooled, "classifier")


def main():
    failures = []

    def check(what, ok):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    with tempfile.TemporaryDirectory() as tmp:
        data, out = os.path.join(tmp, "data"), os.path.join(tmp, "model")
        os.makedirs(data)
        synthetic_data(data)
        run = subprocess.run([sys.executable, os.path.join(TOOLS, "train_sentiment_bert.py"), "--data", data,
                              "--out", out, "--max-steps", "3", "--epochs", "2", "--vocab-size", "200"],
                             capture_output=True, text=True, timeout=120)
        check("training exits 0", run.returncode == 0)
        if run.returncode != 0:
            print(run.stdout + run.stderr)
            return 1
        for name in ("model.safetensors", "config.json", "vocab.txt", "metrics.json", "samples.json"):
            check(f"{name} written", os.path.exists(os.path.join(out, name)))
        with open(os.path.join(out, "config.json")) as f:
            cfg = json.load(f)
        for key, value in (("architectures", ["BertForSequenceClassification"]), ("model_type", "bert"),
                           ("hidden_act", "gelu"), ("type_vocab_size", 2), ("layer_norm_eps", 1e-12),
                           ("do_lower_case", True), ("pad_token_id", 0), ("attention_mask_value", -10000.0),
                           ("id2label", {"0": "negative", "1": "positive"}),
                           ("label2id", {"negative": 0, "positive": 1})):
            check(f"config {key} = {value}", cfg.get(key) == value)
        check("config hidden_size divisible by heads", cfg["hidden_size"] % cfg["num_attention_heads"] == 0)
        with open(os.path.join(out, "vocab.txt"), encoding="utf-8") as f:
            vocab_lines = f.read().split("\n")[:-1]
        check("vocab.txt has vocab_size lines", len(vocab_lines) == cfg["vocab_size"])
        check("special tokens are ids 0..4", vocab_lines[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
        check("vocab entries unique", len(set(vocab_lines)) == len(vocab_lines))

        size, exact, tensors = read_safetensors(os.path.join(out, "model.safetensors"))
        check("safetensors header padded to 8 bytes", size % 8 == 0)
        check("safetensors file size matches the offsets", exact)
        shapes = expected_shapes(cfg)
        check("tensor names are exactly BertForSequenceClassification's", set(tensors) == set(shapes))
        check("tensor shapes match config.json",
              all(list(tensors[n].shape) == s for n, s in shapes.items() if n in tensors))

        with open(os.path.join(out, "samples.json"), encoding="utf-8") as f:
            samples = json.load(f)
        check("samples.json has samples", len(samples) > 0)
        vocab = wordpiece.load_vocab(os.path.join(out, "vocab.txt"))
        check("wordpiece re-encodes the sample texts to the stored ids",
              all(wordpiece.encode(s["text"], vocab, cfg["max_position_embeddings"]) == s["input_ids"]
                  for s in samples))
        model = tsb.BertForSequenceClassification(cfg)
        model.load_state_dict({n: torch.from_numpy(t.copy()) for n, t in tensors.items()})
        model.eval()
        worst = 0.0
        with torch.no_grad():
            for s in samples:
                ids = torch.tensor([s["input_ids"]])
                logits = model(ids, torch.ones_like(ids))[0].numpy()
                worst = max(worst, float(np.abs(logits - np.asarray(s["reference_logits"])).max()))
        check(f"weights read back give the reference logits (max diff {worst:.2e})", worst < 1e-5)
        worst = max(float(np.abs(numpy_bert_logits(tensors, cfg, s["input_ids"]) -
                                 np.asarray(s["reference_logits"])).max()) for s in samples)
        check(f"an independent numpy HF-BERT forward gives the reference logits (max diff {worst:.2e})",
              worst < 1e-4)
        # Padding: a batch of two lengths gives each sentence its unpadded logits (the -10000 additive mask).
        a = max((s["input_ids"] for s in samples), key=len)
        b = a[:3] + a[-1:]  # [CLS] two pieces [SEP]
        ids, mask = tsb.pad_batch([a, b])
        with torch.no_grad():
            padded = model(ids, mask).numpy()
            alone = [model(torch.tensor([x]), torch.ones(1, len(x), dtype=torch.long))[0].numpy() for x in (a, b)]
        worst = max(float(np.abs(padded[0] - alone[0]).max()), float(np.abs(padded[1] - alone[1]).max()))
        check(f"padded batch gives the unpadded logits (max diff {worst:.2e}, lengths {len(a)}, {len(b)})",
              worst < 1e-5)

        with open(os.path.join(out, "metrics.json")) as f:
            metrics = json.load(f)
        for key in ("test_accuracy", "train_accuracy", "baseline_bow_logreg_accuracy", "split_sizes", "epochs",
                    "args", "torch", "minutes"):
            check(f"metrics.json has {key}", key in metrics)
        check("split sizes follow the rule (i % 5 == 4 held out)",
              metrics["split_sizes"]["test"] == 24 and metrics["split_sizes"]["train"] == 96)

    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
