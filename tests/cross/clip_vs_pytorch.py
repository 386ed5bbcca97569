#!/usr/bin/python3
"""attnlens' CLIP (models/clip.cpp) against an independent PyTorch CLIP written from MODELS.md section C with
torch.nn building blocks: image tower (patch convolution without bias, class embedding, position embeddings, ln_pre,
pre-norm blocks with nn.MultiheadAttention, ln_post on CLS, x @ proj), text tower (token + position embeddings,
the same blocks under the causal mask, ln_final, the end-of-text token's features @ text_projection), and zero-shot
logits exp(logit_scale) * cos(image, prompt). The prompts are tokenised here by a small implementation of CLIP's
BPE (C.7, ASCII only) on a vocabulary and merges written by the test (vocab.json, merges.txt beside the weights, as
Hugging Face's CLIP folders have them); attnlens tokenises with its own io/bpe.

Random weights, ViT-B/32 and ViT-B/16 layouts (patch 32 and 16 at 224 px; 64 wide), in open_clip / OpenAI names
(visual.*, transformer.resblocks.*, with open_clip_config.json: quick_gelu true and false) and Hugging Face CLIPModel
names (vision_model.*, text_model.*, q/k/v apart, projections transposed, config.json: hidden_act quick_gelu and
gelu), at 224 px and, with Hugging Face's interpolate_pos_encoding (bicubic), at 160 px. Checked: the logits over
the prompts and every image layer's attention to 1e-4; `predict --labels` names the reference's best prompt; the
gradient of the chosen prompt's logit with respect to the image attention against autograd. Negative controls: GELU
in place of QuickGELU, and the text features of the last token instead of end-of-text, must be caught.

Usage: clip_vs_pytorch.py PATH/TO/attnlens   Prints one line per check, then "N passed, M failed".
"""
import json
import math
import os
import re
import subprocess
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

EPS = 1e-5
CONTEXT = 77
PROMPTS = ["a photo of a cat", "a photo of a dog", "a diagram of a cat's tail", "itap of 2 goldfish."]


# ---- CLIP's tokenizer (openai/CLIP simple_tokenizer.py), restricted to ASCII text ----
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def build_vocabulary(words):
    """CLIP's vocabulary layout (C.7 step 5) with merges that spell `words`: each word's symbols merged left to
    right, one merge per new pair."""
    byte_symbols = list(bytes_to_unicode().values())
    merges = []
    for word in words:
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        while len(symbols) > 1:
            pair = (symbols[0], symbols[1])
            if pair not in merges:
                merges.append(pair)
            symbols = [symbols[0] + symbols[1]] + symbols[2:]
    vocab = byte_symbols + [s + "</w>" for s in byte_symbols] + ["".join(m) for m in merges]
    vocab = list(dict.fromkeys(vocab)) + ["<|startoftext|>", "<|endoftext|>"]
    return {s: i for i, s in enumerate(vocab)}, merges


def bpe(token, ranks):
    word = list(token[:-1]) + [token[-1] + "</w>"]
    while len(word) > 1:
        pairs = [(word[i], word[i + 1]) for i in range(len(word) - 1)]
        best = min(pairs, key=lambda p: ranks.get(p, math.inf))
        if best not in ranks:
            break
        merged, i = [], 0
        while i < len(word):
            if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                merged.append(word[i] + word[i + 1])
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = merged
    return word


def tokenize(text, vocab, merges):
    ranks = {m: i for i, m in enumerate(merges)}
    text = re.sub(r"\s+", " ", text).strip().lower()
    pieces = re.findall(r"'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+", text)
    ids = [vocab["<|startoftext|>"]]
    for piece in pieces:
        ids += [vocab[t] for t in bpe(piece, ranks)]
    ids = ids[:CONTEXT - 1] + [vocab["<|endoftext|>"]]
    return ids + [0] * (CONTEXT - len(ids))


# ---- the reference model ----
class ClipReference(nn.Module):
    def __init__(self, width, depth, heads, patch, grid, text_width, text_depth, text_heads, vocab, embed, ffn):
        super().__init__()
        self.width, self.patch, self.grid = width, patch, grid
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.positional_embedding = nn.Parameter(torch.zeros(1 + grid * grid, width))
        self.ln_pre = nn.LayerNorm(width, eps=EPS)
        self.blocks = nn.ModuleList([PreNormBlock(width, heads, 4 * width, EPS, ffn) for _ in range(depth)])
        self.ln_post = nn.LayerNorm(width, eps=EPS)
        self.proj = nn.Parameter(torch.zeros(width, embed))
        self.token_embedding = nn.Embedding(vocab, text_width)
        self.text_positions = nn.Parameter(torch.zeros(CONTEXT, text_width))
        self.text_blocks = nn.ModuleList([PreNormBlock(text_width, text_heads, 4 * text_width, EPS, ffn)
                                          for _ in range(text_depth)])
        self.ln_final = nn.LayerNorm(text_width, eps=EPS)
        self.text_projection = nn.Parameter(torch.zeros(text_width, embed))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.attentions = []

    def image(self, x, side):
        self.attentions = []
        t = self.conv1(x[None]).flatten(2).transpose(1, 2)
        pos = self.positional_embedding
        if side != self.grid:  # Hugging Face's interpolate_pos_encoding: bicubic to the new size
            grid = pos[1:].reshape(1, self.grid, self.grid, self.width).permute(0, 3, 1, 2)
            grid = F.interpolate(grid, size=(side, side), mode="bicubic", align_corners=False)
            pos = torch.cat([pos[:1], grid.permute(0, 2, 3, 1).reshape(side * side, self.width)])
        t = torch.cat([self.class_embedding.reshape(1, 1, -1), t], 1) + pos
        t = self.ln_pre(t)
        for blk in self.blocks:
            t = blk(t, self.attentions)
        return self.ln_post(t[:, 0]) @ self.proj

    def text(self, ids, pool="eot"):
        t = self.token_embedding(ids) + self.text_positions[: ids.shape[1]]
        causal = torch.full((ids.shape[1], ids.shape[1]), float("-inf")).triu(1)
        scratch = []
        for blk in self.text_blocks:
            t = blk(t, scratch, mask=causal)
        t = self.ln_final(t)
        index = ids.argmax(-1) if pool == "eot" else torch.full((ids.shape[0],), ids.shape[1] - 1)
        return t[torch.arange(ids.shape[0]), index] @ self.text_projection

    def logits(self, x, ids, side, pool="eot"):
        img = self.image(x, side)
        txt = self.text(ids, pool)
        img = img / img.norm(dim=-1, keepdim=True)
        txt = txt / txt.norm(dim=-1, keepdim=True)
        return self.logit_scale.exp() * img @ txt.t()

    def run(self, x, ids, side, category=None, pool="eot"):
        if category is None:
            with torch.no_grad():
                out = self.logits(x, ids, side, pool)[0]
            return out.double().numpy(), stack(self.attentions)
        out = self.logits(x, ids, side, pool)
        out[0, category].backward()
        grads = np.stack([a.grad[0].double().numpy() for a in self.attentions])
        return out[0].detach().double().numpy(), stack(self.attentions), grads


BLOCK = {"norm1": "ln_1", "qkv": "attn.in_proj", "proj": "attn.out_proj", "norm2": "ln_2", "fc1": "mlp.c_fc",
         "fc2": "mlp.c_proj"}


def open_clip_state(ref):
    """open_clip's CLIP state dict (= OpenAI's): in_proj_weight/bias keep nn.MultiheadAttention's names."""
    sd = {"visual.class_embedding": ref.class_embedding, "visual.positional_embedding": ref.positional_embedding,
          "visual.conv1.weight": ref.conv1.weight, "visual.ln_pre.weight": ref.ln_pre.weight,
          "visual.ln_pre.bias": ref.ln_pre.bias, "visual.ln_post.weight": ref.ln_post.weight,
          "visual.ln_post.bias": ref.ln_post.bias, "visual.proj": ref.proj,
          "token_embedding.weight": ref.token_embedding.weight, "positional_embedding": ref.text_positions,
          "ln_final.weight": ref.ln_final.weight, "ln_final.bias": ref.ln_final.bias,
          "text_projection": ref.text_projection, "logit_scale": ref.logit_scale}
    for prefix, blocks in [("visual.transformer.resblocks.", ref.blocks), ("transformer.resblocks.", ref.text_blocks)]:
        for i, blk in enumerate(blocks):
            s = blk.state(f"{prefix}{i}.", BLOCK)
            for kind in ("weight", "bias"):  # open_clip: attn.in_proj_weight, not attn.in_proj.weight
                s[f"{prefix}{i}.attn.in_proj_{kind}"] = s.pop(f"{prefix}{i}.attn.in_proj.{kind}")
            sd.update(s)
    return {k: v.detach().clone() for k, v in sd.items()}


def hf_state(ref):
    """Hugging Face's convert_clip_original_pytorch_to_hf names: q/k/v apart, projections transposed."""
    sd = {"vision_model.embeddings.class_embedding": ref.class_embedding,
          "vision_model.embeddings.patch_embedding.weight": ref.conv1.weight,
          "vision_model.embeddings.position_embedding.weight": ref.positional_embedding,
          "vision_model.pre_layrnorm.weight": ref.ln_pre.weight, "vision_model.pre_layrnorm.bias": ref.ln_pre.bias,
          "vision_model.post_layernorm.weight": ref.ln_post.weight,
          "vision_model.post_layernorm.bias": ref.ln_post.bias, "visual_projection.weight": ref.proj.t(),
          "text_model.embeddings.token_embedding.weight": ref.token_embedding.weight,
          "text_model.embeddings.position_embedding.weight": ref.text_positions,
          "text_model.final_layer_norm.weight": ref.ln_final.weight,
          "text_model.final_layer_norm.bias": ref.ln_final.bias, "text_projection.weight": ref.text_projection.t(),
          "logit_scale": ref.logit_scale}
    names = {"norm1": "layer_norm1", "qkv": "self_attn.qkv", "proj": "self_attn.out_proj", "norm2": "layer_norm2",
             "fc1": "mlp.fc1", "fc2": "mlp.fc2"}
    for prefix, blocks in [("vision_model.encoder.layers.", ref.blocks), ("text_model.encoder.layers.",
                                                                           ref.text_blocks)]:
        for i, blk in enumerate(blocks):
            s = blk.state(f"{prefix}{i}.", names)
            for kind in ("weight", "bias"):
                split_qkv(s, f"{prefix}{i}.self_attn.qkv.{kind}",
                          *(f"{prefix}{i}.self_attn.{w}_proj.{kind}" for w in "qkv"))
            sd.update(s)
    return {k: v.detach().clone().contiguous() for k, v in sd.items()}


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = os.path.abspath(sys.argv[1])
    start = time.time()
    gen = torch.Generator().manual_seed(77)
    checks = Checks()
    words = ["a", "photo", "of", "cat", "dog", "diagram", "'s", "tail", "itap", "goldfish", "."]
    vocab, merges = build_vocabulary(words)
    tokenizer_files = {"vocab.json": json.dumps(vocab, ensure_ascii=False),
                       "merges.txt": "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)}
    ids = torch.tensor([tokenize(p, vocab, merges) for p in PROMPTS])
    width, depth, heads, tw, tdepth, theads, embed = 64, 2, 4, 32, 2, 4, 24
    labels_arg = ["--labels", ",".join(PROMPTS)]

    with tempfile.TemporaryDirectory() as tmp:
        inputs = {s: save_input(os.path.join(tmp, f"x{s}.npy"), torch.randn(3, s, s, generator=gen)) for s in (224, 160)}
        xs = {s: torch.from_numpy(np.load(p)) for s, p in inputs.items()}
        for patch, ffn in [(32, "quick_gelu"), (16, "gelu")]:
            layout = f"ViT-B/{patch} layout, {ffn}"
            ref = ClipReference(width, depth, heads, patch, 224 // patch, tw, tdepth, theads, len(vocab), embed,
                                ffn).eval()
            randomise(ref, gen)
            with torch.no_grad():
                ref.class_embedding.copy_(torch.randn(width, generator=gen))
                ref.positional_embedding.copy_(0.5 * torch.randn(ref.positional_embedding.shape, generator=gen))
                ref.text_positions.copy_(0.5 * torch.randn(ref.text_positions.shape, generator=gen))
                ref.token_embedding.weight.copy_(torch.randn(ref.token_embedding.weight.shape, generator=gen))
                ref.logit_scale.fill_(math.log(20.0))
            oc_config = {"model_cfg": {"embed_dim": embed, "quick_gelu": ffn == "quick_gelu",
                                       "vision_cfg": {"image_size": 224, "layers": depth, "width": width,
                                                      "patch_size": patch, "head_width": width // heads},
                                       "text_cfg": {"context_length": CONTEXT, "vocab_size": len(vocab), "width": tw,
                                                    "heads": theads, "layers": tdepth}}}
            hf_config = {"model_type": "clip", "projection_dim": embed,
                         "vision_config": {"hidden_size": width, "num_hidden_layers": depth,
                                           "num_attention_heads": heads, "patch_size": patch, "image_size": 224,
                                           "intermediate_size": 4 * width, "hidden_act": ffn, "layer_norm_eps": EPS},
                         "text_config": {"hidden_size": tw, "num_hidden_layers": tdepth, "num_attention_heads": theads,
                                         "vocab_size": len(vocab), "max_position_embeddings": CONTEXT,
                                         "intermediate_size": 4 * tw, "hidden_act": ffn}}
            folders = {
                "open_clip": write_model(os.path.join(tmp, f"oc{patch}"), open_clip_state(ref), oc_config,
                                         "open_clip_config.json", tokenizer_files),
                "hf": write_model(os.path.join(tmp, f"hf{patch}"), hf_state(ref), hf_config, extra=tokenizer_files)}
            for naming, folder in folders.items():
                for size in (224, 160) if naming == "hf" else (224,):
                    want_logits, want_att = ref.run(xs[size], ids, size // patch)
                    args = labels_arg + ([] if size == 224 else ["--image-size", str(size)])
                    logits, att = capture(binary, folder, inputs[size], tmp, f"{naming}{patch}_{size}", checks, args)
                    name = f"CLIP {naming}, {layout}, {size} px"
                    checks.close(f"{name}: logits over {len(PROMPTS)} prompts", logits, want_logits)
                    checks.close(f"{name}: image attention", att, want_att)
                    if naming == "open_clip" and patch == 32:
                        other = ClipReference(width, depth, heads, patch, 7, tw, tdepth, theads, len(vocab), embed,
                                              "gelu").eval()
                        other.load_state_dict(ref.state_dict())
                        wrong, _ = other.run(xs[size], ids, 7)
                        checks.differs("negative control, GELU instead of QuickGELU: logits", logits, wrong, 1e-3)
                        last, _ = ref.run(xs[size], ids, 7, pool="last")
                        checks.differs("negative control, text pooled at the last position, not end-of-text: logits",
                                       logits, last, 1e-3)
            # predict --labels: the best prompt by name, as the reference ranks them.
            want_logits, _ = ref.run(xs[224], ids, 224 // patch)
            proc = subprocess.run([binary, "predict", inputs[224], "--model", folders["hf"], "--json", "-k", "2",
                                   *labels_arg], capture_output=True, text=True)
            try:
                assert proc.returncode == 0, proc.stderr.strip()
                top = json.loads(proc.stdout)[0]["top"]
                order = np.argsort(-want_logits, kind="stable")[:2]
                assert [t["label"] for t in top] == [PROMPTS[i] for i in order], (top, order)
                checks.record(True, f"CLIP predict --labels ({layout}): best prompts {[t['label'] for t in top]}")
            except (AssertionError, ValueError, KeyError, IndexError) as e:
                checks.record(False, f"CLIP predict --labels ({layout}): {e}")
            # The chosen prompt's similarity, differentiated with respect to every image layer's attention.
            if patch == 16:
                _, _, want_grad = ref.run(xs[224], ids, 14, category=1)
                _, _, grad = capture(binary, folders["open_clip"], inputs[224], tmp, "clip_grad", checks, labels_arg,
                                     category=1)
                scale = float(np.abs(want_grad).max())
                checks.close(f"CLIP open_clip, {layout}: d(logit of prompt 1)/d(attention) vs autograd "
                             f"(max |grad| {scale:.2e})", grad, want_grad, tol=1e-4 * max(1.0, scale))

    print(f"({time.time() - start:.1f} s)")
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
