"""attnlens.torch: capture the attention of a PyTorch Transformer (and its gradients) and explain it with attnlens.

:func:`capture` runs one forward pass (and, for a target, one backward pass) and returns every layer's post-softmax
attention ``[L, H, N, N]``, its gradient with respect to the target logit, and the token layout, as NumPy arrays.
:func:`explain` turns them into each method's map, as ``attnlens explain`` does. Nothing in the model needs
editing; the model families are recognised as follows (in this order):

``attention_modules=[...]`` (any model)
    You name the modules (objects, or names from ``model.named_modules()``) whose forward output is the attention
    probabilities ``[B, H, N, N]`` (or a tuple whose first element is); a forward hook records each output. Pick
    modules the model's output depends on through that very tensor (e.g. the dropout applied to the softmax).
torchvision ``VisionTransformer`` (any ``nn.MultiheadAttention``)
    torchvision asks its attention for no weights, and the weights ``nn.MultiheadAttention`` can return are a
    separate tensor the output does not depend on, so no gradient reaches them. During the capture each
    ``nn.MultiheadAttention`` runs a stand-in forward that computes the attention explicitly from the module's own
    ``in_proj`` and ``out_proj`` parameters; its output is checked against the original module's (1e-6, relative
    to the output's scale), and the original forward is restored afterwards.
Hugging Face models (``forward`` takes ``output_attentions``)
    ``ViTForImageClassification``, ``DeiTForImageClassification(WithTeacher)``, ``BertForSequenceClassification``
    and the like: called with ``output_attentions=True``; the returned attention tensors are the ones the output
    is computed from, so their gradients are taken directly.
timm-style Vision Transformers (``Attention`` modules with ``qkv`` and ``proj``)
    With an ``attn_drop`` module: ``fused_attn`` is switched off during the capture (restored after) and the
    output of ``attn_drop`` is recorded. Without one: a stand-in forward computes timm's attention explicitly
    (checked against the original output, as above).
Hugging Face-shaped self-attention modules (``query``, ``key``, ``value`` and a ``dropout`` module)
    For models built in that layout whose forward takes no ``output_attentions``: the output of each such
    module's ``dropout`` (applied to the softmax) is recorded.

The model runs in eval mode during the capture (each module's mode is restored after), and every patched module
is restored even when the forward raises. Gradients are taken with ``torch.autograd.grad``: no ``.grad`` of the
model's parameters changes.

Token layout: for an image input ``[1, C, H, W]`` the patch size is that of the model's patch embedding (the
first ``Conv2d`` whose kernel equals its stride), the grid is ``(H/p, W/p)`` and the prefix tokens are the rest of
``N`` (1 for ViT, 2 for distilled DeiT, more with registers). Text inputs (``input_ids``) have no grid and prefix
0: explanations cover every token, ``[CLS]`` and ``[SEP]`` included, as ``attnlens explain --text``. Both can be
given explicitly (``prefix_tokens``, ``grid``).

Example::

    import torch, torchvision, attnlens.torch
    model = torchvision.models.vit_b_16(weights="DEFAULT").eval()
    x = preprocess(image)[None]                                   # [1, 3, 224, 224]
    maps = attnlens.torch.explain(model, x, methods=["rollout", "chefer"])
    maps["chefer"].shape                                          # (14, 14)
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import attnlens as _al

__all__ = ["Capture", "capture", "explain", "METHODS"]

#: Method names of :func:`explain` (those of ``attnlens explain``).
METHODS = ("raw", "rollout", "grad-rollout", "flow", "flow-metzger", "chefer", "grad-sam", "heads")
_GRADIENT_METHODS = {"grad-rollout", "chefer", "grad-sam"}

#: Tolerance of the stand-in forwards: max |new - original| <= _TOLERANCE * max(1, max |original|).
_TOLERANCE = 1e-6


@dataclasses.dataclass
class Capture:
    """What one forward (and backward) pass of :func:`capture` recorded, for one input.

    Attributes
    ----------
    attention : numpy.ndarray, ``[L, H, N, N]``
        Post-softmax attention of every layer in forward order: float32 (float64 for a float64 model; half
        precision is widened to float32).
    attention_grad : numpy.ndarray or None, ``[L, H, N, N]``
        ``d logits[target] / d attention`` (None without a backward pass).
    scores_grad : numpy.ndarray or None, ``[L, H, N, N]``
        The same gradient with respect to the scaled pre-softmax scores (softmax's backward,
        ``A * (dA - sum_k A dA)``): what vit-explain's hook sees, for ``gradient_rollout(reference=True)``.
    logits : numpy.ndarray, ``[C]``
        The model's output for the input.
    target : int or None
        The class whose logit was differentiated.
    layout : attnlens.TokenLayout
        Prefix tokens and patch grid (None for text).
    family : str
        How the attention was found: ``"hooks"``, ``"torchvision"``, ``"huggingface"``, ``"timm"`` or
        ``"hf-modules"``.
    """

    attention: np.ndarray
    attention_grad: Optional[np.ndarray]
    scores_grad: Optional[np.ndarray]
    logits: np.ndarray
    target: Optional[int]
    layout: _al.TokenLayout
    family: str


# ------------------------------------------------------------------------------------------------------------------
# Recording
# ------------------------------------------------------------------------------------------------------------------


class _Recorder:
    """Collects attention tensors in the order the forward pass produces them."""

    def __init__(self) -> None:
        self.tensors: List[torch.Tensor] = []

    def add(self, attention: Any) -> None:
        if isinstance(attention, (tuple, list)):
            attention = attention[0]
        if not isinstance(attention, torch.Tensor):
            raise TypeError(f"an attention module returned {type(attention).__name__}, not a tensor")
        self.tensors.append(attention)

    def hook(self, module: nn.Module, inputs: Any, output: Any) -> None:  # forward-hook signature
        self.add(output)


def _check_close(new: torch.Tensor, original: torch.Tensor, what: str) -> None:
    """RuntimeError unless a stand-in forward reproduces the module's own output (1e-6 of its scale; for
    half-precision models a few units in the last place)."""
    with torch.no_grad():
        scale = max(1.0, float(original.abs().max()))
        err = float((new.detach().to(original.dtype) - original).abs().max())
    tol = max(_TOLERANCE, 8 * torch.finfo(original.dtype).eps) * scale
    if not err <= tol:
        raise RuntimeError(f"attnlens.torch: the explicit attention of {what} gives an output that differs from the "
                           f"module's own by {err:.3g} (tolerance {tol:.3g}); this module layout is not supported, "
                           f"pass attention_modules=[...] instead")


@contextlib.contextmanager
def _replace_forward(module: nn.Module, forward: Callable):
    """Sets ``module.forward`` (an instance attribute) for the duration; restores exactly what was there."""
    had_own = "forward" in module.__dict__
    previous = module.__dict__.get("forward")
    module.forward = forward
    try:
        yield
    finally:
        if had_own:
            module.forward = previous
        else:
            del module.forward


def _apply_mask(scores: torch.Tensor, attn_mask: Optional[torch.Tensor],
                key_padding_mask: Optional[torch.Tensor]) -> torch.Tensor:
    """nn.MultiheadAttention's masks on scores [B, H, Tq, Tk]: bool True = not allowed, float = added."""
    if attn_mask is not None:
        m = attn_mask if attn_mask.dim() == 2 else attn_mask.view(scores.shape)
        if m.dtype == torch.bool:
            scores = scores.masked_fill(m, float("-inf"))
        else:
            scores = scores + m
    if key_padding_mask is not None:
        m = key_padding_mask[:, None, None, :]
        if m.dtype == torch.bool:
            scores = scores.masked_fill(m, float("-inf"))
        else:
            scores = scores + m
    return scores


def _mha_forward(mha: nn.MultiheadAttention, recorder: _Recorder) -> Callable:
    """A stand-in for nn.MultiheadAttention.forward whose output is computed from the recorded attention."""
    original = type(mha).forward.__get__(mha)

    def forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, **kwargs):
        if kwargs or mha.bias_k is not None or mha.add_zero_attn:
            raise RuntimeError("attnlens.torch: nn.MultiheadAttention with bias_k/add_zero_attn or extra arguments "
                               "is not supported; pass attention_modules=[...]")
        q, k, v = (query, key, value) if mha.batch_first else (query.transpose(0, 1), key.transpose(0, 1),
                                                               value.transpose(0, 1))
        e, heads = mha.embed_dim, mha.num_heads
        hd = e // heads
        if mha._qkv_same_embed_dim:
            wq, wk, wv = mha.in_proj_weight.chunk(3)
        else:
            wq, wk, wv = mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight
        bq = bk = bv = None
        if mha.in_proj_bias is not None:
            bq, bk, bv = mha.in_proj_bias.chunk(3)
        b, tq, tk = q.shape[0], q.shape[1], k.shape[1]
        qh = F.linear(q, wq, bq).view(b, tq, heads, hd).transpose(1, 2)
        kh = F.linear(k, wk, bk).view(b, tk, heads, hd).transpose(1, 2)
        vh = F.linear(v, wv, bv).view(b, tk, heads, hd).transpose(1, 2)
        scores = (qh / math.sqrt(hd)) @ kh.transpose(-2, -1)
        scores = _apply_mask(scores, attn_mask, key_padding_mask)
        attention = scores.softmax(dim=-1)
        recorder.add(attention)
        dropped = F.dropout(attention, p=mha.dropout) if mha.training and mha.dropout > 0 else attention
        out = mha.out_proj((dropped @ vh).transpose(1, 2).reshape(b, tq, e))
        if not mha.batch_first:
            out = out.transpose(0, 1)
        with torch.no_grad():
            reference, _ = original(query, key, value, key_padding_mask=key_padding_mask, need_weights=False,
                                    attn_mask=attn_mask)
        _check_close(out, reference, "nn.MultiheadAttention")
        weights = None
        if need_weights:
            weights = attention.mean(dim=1) if average_attn_weights else attention
        return out, weights

    return forward


def _module_or_identity(module: nn.Module, name: str) -> Optional[nn.Module]:
    m = getattr(module, name, None)
    return None if m is None or isinstance(m, nn.Identity) else m


def _timm_forward(attn: nn.Module, recorder: _Recorder) -> Callable:
    """A stand-in for a timm-style Attention.forward without an attn_drop module to hook (e.g. tools/ models)."""
    original = type(attn).forward.__get__(attn)
    heads = getattr(attn, "num_heads", None) or getattr(attn, "heads")

    def forward(x, *args, **kwargs):
        if args or any(v is not None for v in kwargs.values()):
            raise RuntimeError("attnlens.torch: a timm-style Attention called with masks or extra arguments is not "
                               "supported; pass attention_modules=[...]")
        b, n, _ = x.shape
        qkv = attn.qkv(x)
        inner = qkv.shape[-1] // 3
        hd = inner // heads
        q, k, v = qkv.reshape(b, n, 3, heads, hd).permute(2, 0, 3, 1, 4).unbind(0)
        q_norm, k_norm = _module_or_identity(attn, "q_norm"), _module_or_identity(attn, "k_norm")
        if q_norm is not None:
            q = q_norm(q)
        if k_norm is not None:
            k = k_norm(k)
        scale = getattr(attn, "scale", hd ** -0.5)
        attention = ((q * scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        recorder.add(attention)
        out = (attention @ v).transpose(1, 2).reshape(b, n, inner)
        norm = _module_or_identity(attn, "norm")
        if norm is not None:
            out = norm(out)
        out = attn.proj(out)
        drop = _module_or_identity(attn, "proj_drop")
        if drop is not None:
            out = drop(out)
        with torch.no_grad():
            reference = original(x, *args, **kwargs)
        _check_close(out, reference, f"{type(attn).__name__}")
        return out

    return forward


# ------------------------------------------------------------------------------------------------------------------
# Families
# ------------------------------------------------------------------------------------------------------------------


def _is_timm_attention(m: nn.Module) -> bool:
    return isinstance(getattr(m, "qkv", None), nn.Linear) and hasattr(m, "proj") and \
        isinstance(getattr(m, "num_heads", getattr(m, "heads", None)), int)


def _is_hf_self_attention(m: nn.Module) -> bool:
    return all(isinstance(getattr(m, n, None), nn.Linear) for n in ("query", "key", "value")) and \
        isinstance(getattr(m, "dropout", None), nn.Module)


def _accepts(fn: Callable, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _resolve_modules(model: nn.Module, modules: Iterable[Union[str, nn.Module]]) -> List[nn.Module]:
    named = dict(model.named_modules())
    out = []
    for m in modules:
        if isinstance(m, str):
            if m not in named:
                raise ValueError(f"attention_modules: the model has no module named {m!r}")
            m = named[m]
        if not isinstance(m, nn.Module):
            raise TypeError(f"attention_modules: expected module names or nn.Module objects, got {type(m).__name__}")
        out.append(m)
    if not out:
        raise ValueError("attention_modules is empty")
    return out


def _family(model: nn.Module, attention_modules) -> str:
    if attention_modules is not None:
        return "hooks"
    modules = list(model.modules())
    if any(isinstance(m, nn.MultiheadAttention) for m in modules):
        return "torchvision"
    if _accepts(model.forward, "output_attentions"):
        return "huggingface"
    if any(_is_timm_attention(m) for m in modules):
        return "timm"
    if any(_is_hf_self_attention(m) for m in modules):
        return "hf-modules"
    raise ValueError(f"attnlens.torch: cannot find the attention of this {type(model).__name__}: no "
                     "nn.MultiheadAttention, no output_attentions argument, no timm-style qkv or Hugging Face-style "
                     "query/key/value modules. Pass attention_modules=[...]: the modules whose output is the "
                     "attention probabilities")


@contextlib.contextmanager
def _instrument(model: nn.Module, family: str, recorder: _Recorder, attention_modules):
    """Patches the model for recording (hooks, stand-in forwards, fused_attn off); restores all of it."""
    with contextlib.ExitStack() as stack:
        if family == "hooks":
            for m in _resolve_modules(model, attention_modules):
                stack.callback(m.register_forward_hook(recorder.hook).remove)
        elif family == "torchvision":
            for m in model.modules():
                if isinstance(m, nn.MultiheadAttention):
                    stack.enter_context(_replace_forward(m, _mha_forward(m, recorder)))
        elif family == "timm":
            for m in model.modules():
                if not _is_timm_attention(m):
                    continue
                drop = getattr(m, "attn_drop", None)
                if isinstance(drop, nn.Module):
                    if hasattr(m, "fused_attn"):
                        stack.callback(setattr, m, "fused_attn", m.fused_attn)
                        m.fused_attn = False
                    stack.callback(drop.register_forward_hook(recorder.hook).remove)
                else:
                    stack.enter_context(_replace_forward(m, _timm_forward(m, recorder)))
        elif family == "hf-modules":
            for m in model.modules():
                if _is_hf_self_attention(m):
                    stack.callback(m.dropout.register_forward_hook(recorder.hook).remove)
        yield


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


@contextlib.contextmanager
def _parameters_require_grad(model: nn.Module, enabled: bool):
    """With gradients: every floating parameter requires grad during the capture (restored after), so that the
    attention is part of the autograd graph even in a frozen model."""
    changed = []
    if enabled:
        for p in model.parameters():
            if not p.requires_grad and p.is_floating_point():
                p.requires_grad_(True)
                changed.append(p)
    try:
        yield
    finally:
        for p in changed:
            p.requires_grad_(False)


def _call(model: nn.Module, inputs: Any, extra: Dict[str, Any]) -> Any:
    if isinstance(inputs, dict):
        return model(**inputs, **extra)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs, **extra)
    return model(inputs, **extra)


def _logits(output: Any) -> torch.Tensor:
    if hasattr(output, "logits"):
        output = output.logits
    elif isinstance(output, dict) and "logits" in output:
        output = output["logits"]
    elif isinstance(output, (tuple, list)):
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"attnlens.torch: cannot find the logits in the model's output ({type(output).__name__})")
    if output.dim() != 2 or output.shape[0] != 1:
        raise ValueError(f"attnlens.torch: expected logits [1, C] for one input, got {list(output.shape)}")
    return output


def _first_tensor(inputs: Any) -> Optional[torch.Tensor]:
    if isinstance(inputs, torch.Tensor):
        return inputs
    values = inputs.values() if isinstance(inputs, dict) else inputs if isinstance(inputs, (tuple, list)) else []
    for v in values:
        if isinstance(v, torch.Tensor):
            return v
    return None


def _patch_size(model: nn.Module) -> Optional[Tuple[int, int]]:
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and tuple(m.kernel_size) == tuple(m.stride) and m.kernel_size[0] > 1:
            return int(m.stride[0]), int(m.stride[1])
    return None


def _layout(model: nn.Module, inputs: Any, tokens: int, prefix_tokens: Optional[int],
            grid: Optional[Tuple[int, int]]) -> _al.TokenLayout:
    if grid is not None:
        gh, gw = (int(v) for v in grid)
        prefix = tokens - gh * gw if prefix_tokens is None else int(prefix_tokens)
        return _al.TokenLayout(prefix, (gh, gw))
    is_text = isinstance(inputs, dict) and "input_ids" in inputs
    x = _first_tensor(inputs)
    patch = _patch_size(model)
    if not is_text and x is not None and x.is_floating_point() and x.dim() == 4 and patch is not None:
        gh, gw = x.shape[-2] // patch[0], x.shape[-1] // patch[1]
        prefix = tokens - gh * gw
        if prefix_tokens is not None:
            prefix = int(prefix_tokens)
        if 0 <= prefix < tokens and prefix + gh * gw == tokens:
            return _al.TokenLayout(prefix, (gh, gw))
    return _al.TokenLayout(0 if prefix_tokens is None else int(prefix_tokens), None)


def _recorded_shape(recorder: _Recorder) -> torch.Size:
    tensors = recorder.tensors
    if not tensors:
        raise RuntimeError("attnlens.torch: the forward pass recorded no attention (the attention is not computed "
                           "by the modules found); pass attention_modules=[...]")
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1:
        raise RuntimeError(f"attnlens.torch: the recorded attention tensors differ in shape: {sorted(shapes)}")
    shape = tensors[0].shape
    if len(shape) != 4 or shape[0] != 1 or shape[-1] != shape[-2]:
        raise RuntimeError(f"attnlens.torch: expected attention [1, H, N, N] per layer, got {list(shape)}")
    return shape


def _numpy(t: torch.Tensor) -> np.ndarray:
    """A CPU NumPy copy; half-precision tensors become float32 (attnlens reads float32 and float64)."""
    t = t.detach().cpu()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return t.numpy()


def capture(model: nn.Module, inputs: Any, target: Optional[int] = None, *, gradients: Optional[bool] = None,
            attention_modules: Optional[Sequence[Union[str, nn.Module]]] = None,
            prefix_tokens: Optional[int] = None, grid: Optional[Tuple[int, int]] = None) -> Capture:
    """Runs ``model`` on one input and returns every layer's attention (and its gradient) as NumPy arrays.

    Parameters
    ----------
    model : torch.nn.Module
        A timm-style, Hugging Face or torchvision Transformer, or any model with ``attention_modules``.
    inputs : torch.Tensor, dict or tuple
        What the model's forward takes, for ONE example (batch size 1): an image ``[1, C, H, W]``, a dict of keyword
        tensors (``{"input_ids": ..., "attention_mask": ...}``) or a tuple of positional arguments.
    target : int or None, default None
        Class whose logit is differentiated. With a target (or ``gradients=True``) one backward pass runs; with
        ``gradients=True`` and no target, the predicted class is used.
    gradients : bool or None, default None
        Whether to compute the attention gradients; default: when ``target`` is given.
    attention_modules : sequence of str or nn.Module, optional
        The modules whose forward output is the attention probabilities ``[1, H, N, N]``, in layer order (see the
        module documentation); default: recognised from the model.
    prefix_tokens : int, optional
        Tokens before the patches; default inferred (1 for ViT, 2 for distilled DeiT, 0 for text).
    grid : (rows, cols), optional
        The patch grid; default inferred from the input size and the patch embedding.

    Returns
    -------
    Capture
        ``attention``, ``attention_grad``, ``scores_grad``, ``logits``, ``target``, ``layout``, ``family``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    want_grad = (target is not None) if gradients is None else bool(gradients)
    first = _first_tensor(inputs)
    if first is not None and first.dim() > 0 and first.shape[0] != 1:
        raise ValueError(f"capture explains one input at a time: batch size must be 1, got {first.shape[0]}")
    family = _family(model, attention_modules)
    recorder = _Recorder()
    extra = {"output_attentions": True} if family == "huggingface" else {}
    if family == "huggingface" and _accepts(model.forward, "return_dict"):
        extra["return_dict"] = True
    with contextlib.ExitStack() as stack:
        stack.enter_context(_eval_mode(model))
        stack.enter_context(_parameters_require_grad(model, want_grad))
        stack.enter_context(_instrument(model, family, recorder, attention_modules))
        # nn.TransformerEncoderLayer skips its self_attn module on a fast path unless gradients are being recorded,
        # so the torchvision family always records them (the graph is dropped right after).
        recording = want_grad or family == "torchvision"
        stack.enter_context(torch.enable_grad() if recording else torch.no_grad())
        output = _call(model, inputs, extra)
        if family == "huggingface":
            attentions = getattr(output, "attentions", None)
            if attentions is None and isinstance(output, dict):
                attentions = output.get("attentions")
            if not attentions:
                raise RuntimeError("attnlens.torch: the model returned no attentions for output_attentions=True")
            for a in attentions:
                recorder.add(a)
        logits = _logits(output)
        shape = _recorded_shape(recorder)
        if target is None and want_grad:
            target = int(logits[0].argmax())
        if target is not None:
            target = int(target)
            if not 0 <= target < logits.shape[1]:
                raise ValueError(f"target {target} is out of range: the model has {logits.shape[1]} classes")
        attention_grad = scores_grad = None
        if want_grad:
            grads = torch.autograd.grad(logits[0, target], recorder.tensors, allow_unused=True)
            for layer, g in enumerate(grads):
                if g is None:
                    raise RuntimeError(f"attnlens.torch: the output does not depend on the attention recorded for "
                                       f"layer {layer}; the recorded tensor is not the one the model computes with. "
                                       f"Pass attention_modules=[...]")
            g = torch.stack([t[0] for t in grads]).detach()
            a = torch.stack([t[0] for t in recorder.tensors]).detach()
            attention_grad = _numpy(g)
            scores_grad = _numpy(a * (g - (g * a).sum(dim=-1, keepdim=True)))  # softmax's backward
        attention = _numpy(torch.stack([t[0].detach() for t in recorder.tensors]))
    layout = _layout(model, inputs, int(shape[-1]), prefix_tokens, grid)
    return Capture(attention=attention, attention_grad=attention_grad, scores_grad=scores_grad,
                   logits=_numpy(logits[0]), target=target, layout=layout, family=family)


def _check_methods(methods: Union[str, Sequence[str]]) -> List[str]:
    if isinstance(methods, str):
        methods = [methods]
    names = []
    for m in methods:
        if m == "all":
            names.extend(METHODS)
            continue
        name = m.replace("_", "-") if isinstance(m, str) else m
        if name not in METHODS:
            raise ValueError(f"unknown method {m!r} (known: {', '.join(METHODS)})")
        names.append(name)
    return list(dict.fromkeys(names))


def explain(model: nn.Module, inputs: Any, methods: Union[str, Sequence[str]] = ("rollout",),
            target: Optional[int] = None, *, query_row: int = 0, fusion: str = "mean", discard_ratio: float = 0.0,
            grad_discard_ratio: float = 0.9, mode: str = "abnar", reference: bool = False, residual: str = "half",
            start_layer: int = 0, layer: int = -1, threshold: Optional[float] = None, grad_sam_axis: str = "columns",
            return_capture: bool = False, **capture_options: Any):
    """Explains one input: each method's relevance over the patches (or tokens), as ``attnlens explain`` writes it.

    One forward pass, and one backward pass when a gradient method (grad-rollout, chefer, grad-sam) is asked for (target:
    ``target``, default the predicted class).

    Parameters
    ----------
    model, inputs
        As for :func:`capture`.
    methods : str or sequence of str, default ("rollout",)
        Any of ``"raw"``, ``"rollout"``, ``"grad-rollout"``, ``"flow"``, ``"flow-metzger"``, ``"chefer"``,
        ``"grad-sam"``, ``"heads"``, or ``"all"``.
    target : int or None
        The explained class (gradient methods); default the predicted one.
    query_row : int, default 0
        The explained token (1 = the distillation token of distilled DeiT).
    fusion, discard_ratio, mode, residual, start_layer
        Rollout's options (:func:`attnlens.rollout`); ``fusion`` also for raw; ``residual`` also for the flows;
        ``start_layer`` also for chefer.
    grad_discard_ratio : float, default 0.9
        grad-rollout's discard ratio.
    reference : bool, default False
        grad-rollout exactly as vit-explain (with the score gradients).
    layer : int, default -1
        Layer of raw and heads.
    threshold : float or None
        heads: DINO's masks too (returned under ``"heads_masks"``).
    grad_sam_axis : {"columns", "rows"}, default "columns"
        grad-sam: a score per key token, or per query token (:func:`attnlens.grad_sam`).
    return_capture : bool, default False
        Also return the :class:`Capture`: ``(maps, capture)``.
    **capture_options
        ``attention_modules``, ``prefix_tokens``, ``grid`` (see :func:`capture`).

    Returns
    -------
    dict of str to numpy.ndarray
        For images: each method's map ``[gh, gw]`` (``heads``: ``[H, gh, gw]``), not rescaled. For text: a vector
        over the tokens after the prefix (every token for text models).
    """
    names = _check_methods(methods)
    needs_grad = any(m in _GRADIENT_METHODS for m in names)
    cap = capture(model, inputs, target, gradients=needs_grad, **capture_options)
    prefix, grid = cap.layout
    common = {"prefix_tokens": prefix, "patches_only": True}
    if grid is not None:
        common["grid"] = grid

    def as_map(v: np.ndarray) -> np.ndarray:
        return v.reshape(grid) if grid is not None else v

    a = cap.attention
    maps: Dict[str, np.ndarray] = {}
    for name in names:
        if name == "raw":
            v = _al.raw(a, layer=layer, fusion=fusion, query_row=query_row, **common)
        elif name == "rollout":
            v = _al.rollout(a, fusion=fusion, discard_ratio=discard_ratio, residual=residual, mode=mode,
                            start_layer=start_layer, query_row=query_row, **common)
        elif name == "flow":
            v = _al.attention_flow(a, query_row=query_row, residual=residual, **common)
        elif name == "flow-metzger":
            v = _al.flow_metzger(a, output_token=query_row, residual=residual, **common)
        elif name == "grad-rollout":
            v = _al.gradient_rollout(a, cap.attention_grad, discard_ratio=grad_discard_ratio, reference=reference,
                                     scores_grad=cap.scores_grad if reference else None, query_row=query_row,
                                     **common)
        elif name == "chefer":
            v = _al.chefer(a, cap.attention_grad, start_layer=start_layer, query_row=query_row, **common)
        elif name == "grad-sam":  # every query row counts: query_row does not apply
            v = _al.grad_sam(a, cap.attention_grad, grad_sam_axis, **common)
        else:  # heads
            if grid is None:
                raise ValueError("method heads needs a patch grid (an image model); pass grid=(rows, cols)")
            heads = _al.head_maps(a, layer=layer, threshold=threshold, prefix_tokens=prefix, grid=grid,
                                  query_row=query_row)
            maps["heads"] = heads.maps
            if heads.masks is not None:
                maps["heads_masks"] = heads.masks
            continue
        maps[name] = as_map(v)
    return (maps, cap) if return_capture else maps
