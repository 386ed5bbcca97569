"""attnlens.torch against the CLI: the same attention, gradients and rollout / grad-rollout / Chefer maps (1e-5) as
`attnlens capture` and `attnlens explain` on the same weights, for torchvision's vit_b_16 (random weights, written in
timm names), the bundled ViT (tools/train_fmnist_vit.py, timm layout) and the bundled BERT
(tools/train_sentiment_bert.py, Hugging Face layout); then every family's path (output_attentions, timm's
attn_drop with fused_attn, named hook modules, distilled layouts) and the restoring of patched modules on errors."""
import json
import os
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import attnlens  # noqa: E402
import attnlens.torch as at  # noqa: E402
from conftest import ROOT  # noqa: E402

TOL = 1e-5
VIT_DIR = os.path.join(ROOT, "data", "models", "fmnist-vit")
BERT_DIR = os.path.join(ROOT, "data", "models", "sentiment-bert")
MAP_METHODS = ["raw", "rollout", "grad-rollout", "chefer", "grad-sam"]


def close(got, want, tol=TOL, what=""):
    assert got.shape == want.shape, (what, got.shape, want.shape)
    err = float(np.abs(np.asarray(got, np.float64) - want).max())
    print(f"{what}: max |diff| {err:.2e} (tolerance {tol:g})")
    assert err <= tol, f"{what}: max |diff| {err:.3g} > {tol:g}"
    return err


@pytest.fixture(scope="module")
def vit():
    from bundled_vit import load_bundled_model

    model, config, reference = load_bundled_model(ROOT)
    return model, config, reference


@pytest.fixture(scope="module")
def bert():
    import train_sentiment_bert as tsb

    config = json.load(open(os.path.join(BERT_DIR, "config.json")))
    model = tsb.BertForSequenceClassification(config)
    tensors = attnlens.read_safetensors(os.path.join(BERT_DIR, "model.safetensors"))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()})
    return model.eval(), tsb


def cli_capture_and_explain(cli, model_dir, x, category, methods=MAP_METHODS):
    """(attention, gradient, logits, {method: map}) from `attnlens capture` and `attnlens explain` on x [3,H,W]."""
    x_path = cli.save(np.ascontiguousarray(x, np.float32), "x.npy")
    t = cli.tmp
    cli.ok("capture", x_path, "--model", model_dir, "--category", category, "-o", f"{t}/att.npy", "--grad-output",
           f"{t}/grad.npy", "--logits-output", f"{t}/logits.npy", "-q")
    cli.ok("explain", x_path, "--model", model_dir, "--category", category, "--method", ",".join(methods), "-o",
           f"{t}/explain", "-q")
    maps = {m: np.load(f"{t}/explain/000_x_{m}.npy") for m in methods}
    return np.load(f"{t}/att.npy"), np.load(f"{t}/grad.npy"), np.load(f"{t}/logits.npy"), maps


def test_bundled_vit_equals_cli(cli, vit):
    model, config, _ = vit
    torch.manual_seed(7)
    x = torch.randn(1, 3, config["image_size"], config["image_size"])
    maps, cap = at.explain(model, x, methods=MAP_METHODS + ["flow"], target=3, return_capture=True)
    assert cap.family == "timm" and cap.layout == attnlens.TokenLayout(1, (8, 8)) and cap.target == 3
    att, grad, logits, want = cli_capture_and_explain(cli, VIT_DIR, x[0].numpy(), 3, MAP_METHODS + ["flow"])
    close(cap.logits, logits, 1e-4, "logits")
    close(cap.attention, att, TOL, "attention")
    close(cap.attention_grad, grad, TOL * max(1.0, np.abs(grad).max()), "attention gradient")
    for m in MAP_METHODS + ["flow"]:
        assert maps[m].shape == (8, 8)
        close(maps[m], want[m], TOL, m)
    # The maps are not trivial: the methods disagree with each other.
    assert np.abs(maps["chefer"] / maps["chefer"].max() - maps["rollout"] / maps["rollout"].max()).max() > 0.05


def test_torchvision_vit_b_16_equals_cli(cli):
    torchvision = pytest.importorskip("torchvision")
    from safetensors_file import write_safetensors
    from vit_vs_torchvision import randomise, timm_names

    gen = torch.Generator().manual_seed(1234)
    model = torchvision.models.vit_b_16(weights=None).eval()
    randomise(model, gen)  # torchvision's zero biases / unit LayerNorms would hide naming mistakes
    folder = os.path.join(cli.tmp, "vit_b_16")
    os.makedirs(folder)
    write_safetensors(os.path.join(folder, "model.safetensors"), timm_names(model), {"format": "pt"})
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"preprocess": {"preset": "none", "mean": [0.5] * 3, "std": [0.5] * 3}, "layer_norm_eps": 1e-6,
                   "num_heads": 12}, f)
    x = torch.randn(1, 3, 224, 224, generator=gen)
    maps, cap = at.explain(model, x, methods=MAP_METHODS, target=17, return_capture=True)
    assert cap.family == "torchvision" and cap.layout == attnlens.TokenLayout(1, (14, 14))
    assert cap.attention.shape == (12, 12, 197, 197)
    # Every nn.MultiheadAttention has its own forward back.
    assert all("forward" not in m.__dict__ for m in model.modules())
    att, grad, logits, want = cli_capture_and_explain(cli, folder, x[0].numpy(), 17)
    os.remove(os.path.join(folder, "model.safetensors"))
    close(cap.logits, logits, 1e-4, "logits")
    close(cap.attention, att, TOL, "attention")
    close(cap.attention_grad, grad, TOL * max(1.0, np.abs(grad).max()), "attention gradient")
    for m in MAP_METHODS:
        close(maps[m], want[m], TOL, m)
    assert float(cap.attention.max(-1).mean()) > 5.0 / 197  # far from uniform: the comparison can see mistakes


def test_bundled_bert_equals_cli(cli, bert):
    model, _ = bert
    text = "The food was not good at all, but the service was great."
    out = os.path.join(cli.tmp, "text")
    cli.ok("explain", "--text", text, "--model", BERT_DIR, "--method", ",".join(MAP_METHODS), "--save-attention",
           "-o", out, "-q")
    entry = json.load(open(os.path.join(out, "summary.json")))["texts"][0]
    ids = torch.tensor([entry["ids"]])
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    maps, cap = at.explain(model, inputs, methods=MAP_METHODS, return_capture=True)
    assert cap.family == "hf-modules" and cap.layout == attnlens.TokenLayout(0, None)
    assert cap.target == entry["target"] == entry["predicted"]
    close(cap.attention, np.load(os.path.join(out, entry["outputs"]["attention"])), TOL, "attention")
    for m in MAP_METHODS:
        assert maps[m].shape == (len(entry["ids"]),)
        close(maps[m], np.array(entry["scores"][m]), TOL, m)


class HFStyleBert(nn.Module):
    """The bundled BERT behind a Hugging Face-style forward: output_attentions, return_dict, an output object."""

    def __init__(self, inner, mask_value):
        super().__init__()
        self.inner, self.mask_value = inner, mask_value

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, output_attentions=False, return_dict=True):
        bert = self.inner.bert
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        types_ = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        additive = (1.0 - mask[:, None, None, :].float()) * self.mask_value
        x = bert.embeddings(input_ids, types_)
        attentions = []
        for layer in bert.encoder.layer:
            sa = layer.attention.self
            b, t, d = x.shape
            split = lambda y: y.view(b, t, sa.heads, d // sa.heads).transpose(1, 2)  # noqa: E731
            q, k, v = split(sa.query(x)), split(sa.key(x)), split(sa.value(x))
            probs = torch.softmax(q @ k.transpose(-1, -2) / (d // sa.heads) ** 0.5 + additive, -1)
            attentions.append(probs)
            context = (sa.dropout(probs) @ v).transpose(1, 2).reshape(b, t, d)
            x = layer.attention.output(context, x)
            x = layer.output(layer.intermediate(x), x)
        logits = self.inner.classifier(self.inner.dropout(bert.pooler(x)))
        return types.SimpleNamespace(logits=logits, attentions=tuple(attentions) if output_attentions else None)


def test_huggingface_output_attentions_and_named_hooks_agree(bert):
    model, tsb = bert
    ids = torch.tensor([[2, 40, 41, 42, 43, 44, 3]])
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    base = at.capture(model, inputs, target=0)
    hf = at.capture(HFStyleBert(model, tsb.MASK_VALUE), inputs, target=0)
    assert hf.family == "huggingface"
    names = [f"bert.encoder.layer.{i}.attention.self.dropout" for i in range(len(model.bert.encoder.layer))]
    hooked = at.capture(model, inputs, target=0, attention_modules=names)
    assert hooked.family == "hooks"
    for other in (hf, hooked):
        close(other.attention, base.attention, 1e-6, "attention")
        close(other.attention_grad, base.attention_grad, 1e-6, "gradient")
        close(other.logits, base.logits, 1e-6, "logits")
    # scores_grad is softmax's backward of the attention gradient (each row sums to 0): autograd through a softmax
    # of scores s with softmax(s) = A (s = log A) gives the same.
    assert np.abs(base.scores_grad.sum(-1)).max() < 1e-6
    scores = torch.log(torch.tensor(base.attention, dtype=torch.float64)).requires_grad_(True)
    (torch.softmax(scores, -1) * torch.tensor(base.attention_grad, dtype=torch.float64)).sum().backward()
    close(base.scores_grad, scores.grad.numpy(), 1e-6, "scores gradient")
    assert base.attention_grad.shape == base.attention.shape == (4, 4, 7, 7)
    # No backward without a target: forward only.
    assert at.capture(model, inputs).attention_grad is None


def test_timm_attn_drop_with_fused_attn_switched_off_and_restored(vit):
    model, config, reference = vit

    class TimmAttention(reference.Attention):
        """timm's Attention.forward: a fused path that never calls attn_drop, and the explicit one."""

        def forward(self, x):
            b, n, c = x.shape
            qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)
            attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
            if not self.fused_attn:
                attn = self.attn_drop(attn)
            return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))

    x = torch.randn(1, 3, 56, 56, generator=torch.Generator().manual_seed(3))
    want = at.capture(model, x, target=5)  # the stand-in forward (no attn_drop in tools/' model)
    import copy

    timm_like = copy.deepcopy(model)
    for block in timm_like.blocks:
        block.attn.__class__ = TimmAttention
        block.attn.attn_drop = nn.Dropout(0.1)
        block.attn.num_heads = block.attn.heads
        block.attn.fused_attn = True
    got = at.capture(timm_like, x, target=5)
    assert got.family == "timm"
    assert all(block.attn.fused_attn is True for block in timm_like.blocks)
    assert all(not block.attn.attn_drop._forward_hooks for block in timm_like.blocks)
    close(got.attention, want.attention, 1e-6, "attention")
    close(got.attention_grad, want.attention_grad, 1e-6, "gradient")


def test_distilled_layout_has_two_prefix_tokens(vit):
    model, _, _ = vit

    class Distilled(nn.Module):
        """The bundled ViT with a distillation token after CLS (DeiT's layout): 2 + 64 tokens."""

        def __init__(self, vit_model):
            super().__init__()
            self.vit = vit_model
            self.dist_token = nn.Parameter(0.1 * torch.randn(1, 1, 64, generator=torch.Generator().manual_seed(1)))

        def forward(self, x):
            v = self.vit
            t = v.patch_embed(x)
            pos = torch.cat([v.pos_embed[:, :1], v.pos_embed[:, :1], v.pos_embed[:, 1:]], 1)
            t = torch.cat([v.cls_token.expand(len(t), -1, -1), self.dist_token.expand(len(t), -1, -1), t], 1) + pos
            for block in v.blocks:
                t = block(t)
            t = v.norm(t)
            return (v.head(t[:, 0]) + v.head(t[:, 1])) / 2

    class HFStyleDistilled(Distilled):
        """The same model behind a Hugging Face-style forward (DeiTForImageClassificationWithTeacher-like)."""

        def forward(self, pixel_values, output_attentions=False):
            v = self.vit
            t = v.patch_embed(pixel_values)
            pos = torch.cat([v.pos_embed[:, :1], v.pos_embed[:, :1], v.pos_embed[:, 1:]], 1)
            t = torch.cat([v.cls_token.expand(len(t), -1, -1), self.dist_token.expand(len(t), -1, -1), t], 1) + pos
            attentions = []
            for block in v.blocks:
                a, h = block.attn, block.norm1(t)
                b, n, c = h.shape
                q, k, val = a.qkv(h).reshape(b, n, 3, a.heads, c // a.heads).permute(2, 0, 3, 1, 4)
                probs = ((q * a.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
                attentions.append(probs)
                t = t + a.proj((probs @ val).transpose(1, 2).reshape(b, n, c))
                t = t + block.mlp(block.norm2(t))
            t = v.norm(t)
            logits = (v.head(t[:, 0]) + v.head(t[:, 1])) / 2
            return types.SimpleNamespace(logits=logits, attentions=tuple(attentions) if output_attentions else None)

    distilled = Distilled(model).eval()
    x = torch.randn(1, 3, 56, 56)
    maps, cap = at.explain(distilled, x, methods=["rollout", "chefer", "heads"], query_row=1, return_capture=True)
    assert cap.family == "timm"
    assert cap.layout == attnlens.TokenLayout(2, (8, 8)) and cap.attention.shape[-1] == 66
    assert maps["rollout"].shape == (8, 8) and maps["heads"].shape == (4, 8, 8)
    want = attnlens.rollout(cap.attention, query_row=1, prefix_tokens=2, patches_only=True).reshape(8, 8)
    np.testing.assert_array_equal(maps["rollout"], want)
    hf = HFStyleDistilled(model)
    hf.dist_token = distilled.dist_token
    hf_maps, hf_cap = at.explain(hf.eval(), x, methods=["rollout", "chefer"], query_row=1, return_capture=True)
    assert hf_cap.family == "huggingface" and hf_cap.layout == cap.layout  # output_attentions wins over qkv modules
    for m in ("rollout", "chefer"):
        close(hf_maps[m], maps[m], 1e-6, m)


def test_everything_is_restored_after_an_error(vit):
    model, _, _ = vit
    model.blocks[1].norm1.weight.requires_grad_(False)  # a frozen parameter must stay frozen
    model.train()
    model.blocks[0].eval()  # mixed modes must come back as they were

    def boom(module, inputs, output):
        raise RuntimeError("boom")

    handle = model.blocks[2].register_forward_hook(boom)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            at.capture(model, torch.randn(1, 3, 56, 56), target=1)
    finally:
        handle.remove()
    assert all("forward" not in m.__dict__ for m in model.modules())
    assert all(not m._forward_hooks for m in model.modules())
    assert model.training and not model.blocks[0].training and model.blocks[1].training
    assert not model.blocks[1].norm1.weight.requires_grad
    assert all(p.grad is None for p in model.parameters())
    model.blocks[1].norm1.weight.requires_grad_(True)
    model.eval()


def test_small_torchvision_model_restored_after_error_and_guards():
    from torchvision.models.vision_transformer import VisionTransformer

    model = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16,
                              mlp_dim=32, num_classes=5).eval()
    x = torch.randn(1, 3, 32, 32)
    cap = at.capture(model, x, target=2)
    assert cap.layout == attnlens.TokenLayout(1, (4, 4)) and cap.attention.shape == (2, 2, 17, 17)
    # The recorded attention equals what nn.MultiheadAttention itself returns with per-head weights.
    inputs = []
    handle = model.encoder.layers[0].ln_1.register_forward_hook(lambda m, i, o: inputs.append(o))
    with torch.no_grad():
        model(x)
    handle.remove()
    _, w = model.encoder.layers[0].self_attention(inputs[0], inputs[0], inputs[0], need_weights=True,
                                                  average_attn_weights=False)
    close(cap.attention[0], w[0].detach().numpy(), 1e-6, "layer 0 attention")
    handle = model.encoder.layers[1].register_forward_hook(lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        at.capture(model, x)
    handle.remove()
    assert all("forward" not in m.__dict__ for m in model.modules())
    with pytest.raises(ValueError, match="batch size must be 1"):
        at.capture(model, torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match="target 9 is out of range"):
        at.capture(model, x, target=9)
    with pytest.raises(ValueError, match="unknown method 'saliency'"):
        at.explain(model, x, methods=["saliency"])
    with pytest.raises(ValueError, match="cannot find the attention"):
        at.capture(nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 4)), x)
