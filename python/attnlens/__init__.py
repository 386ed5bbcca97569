"""attnlens: what a Transformer looked at, from its attention, in Python.

The attention-graph methods of attnlens' C++ core on NumPy arrays: attention rollout, exact attention flow,
Metzger's input-to-output flow, gradient rollout, Chefer et al.'s relevance, raw attention, mean attention distance
and DINO's per-head maps. Each function runs the same C++ function as ``attnlens attention <method>``, so the
numbers, and the messages of bad input, are the CLI's. The faithfulness metrics are in :mod:`attnlens.metrics`, and
:mod:`attnlens.torch` captures the attention (and its gradients) of a PyTorch model and explains it.

Input: the post-softmax attention of every layer and head, ``[L, H, N, N]`` (layer, head, query, key), or already
head-fused ``[L, N, N]``, as float32 or float64 (a NumPy array, anything with ``__array__``, or a torch tensor).
Rows are queries and sum to 1. ``N = P + gh*gw``: ``P`` prefix tokens (CLS; CLS and distillation token for
distilled DeiT) then the patches in row-major order. Text-shaped stacks (``N - P`` not a square) work everywhere a
grid is not needed (all but :func:`mean_attention_distance` and :func:`head_maps`). Results are float64 arrays.

Options every function shares (keyword-only), as the CLI's:

``prefix_tokens`` (1)
    Tokens before the patch grid (2 for distilled DeiT, 0 for "every token", as for text).
``grid`` (None)
    The patch grid ``(rows, cols)`` or ``"HxW"``; default: a square grid of side ``sqrt(N - P)``. Checked against
    ``N`` when given; only distance and head maps lay tokens out on it.
``patches_only`` (False)
    Drop the first ``prefix_tokens`` columns (keys) of the result.
``scale`` ("none")
    Rescale each result row after ``patches_only``: ``"max"`` (x/max, vit-explain), ``"minmax"`` (Chefer),
    ``"sum"``; a zero denominator leaves the row as it is.
``strict`` (False)
    Rows whose sum differs from 1 by more than 1e-3 raise ValueError instead of an :class:`AttentionWarning`.

Errors: bad input (wrong rank, non-square matrices, NaN/Inf, negative values, options out of range) raises
:class:`InputError`, a ValueError, with the CLI's message; a wrong type raises TypeError. Long computations release
the GIL; ``attention_flow(..., scope="all")`` can be stopped with Ctrl-C (KeyboardInterrupt) within a second.

Example::

    import numpy as np, attnlens
    attention = np.load("attention.npy")                    # [L, H, N, N], e.g. from `attnlens capture`
    cls_map = attnlens.rollout(attention, query_row=0, patches_only=True).reshape(14, 14)
    flow = attnlens.attention_flow(attention)               # [N]: max-flow from the CLS token of the last layer

The algorithms follow ALGORITHMS.md ("spec"); each function names its section.
"""
from __future__ import annotations

import os
from typing import Any, NamedTuple, Optional, Tuple, Union

from . import _attnlens
from ._convert import AttentionWarning
from ._convert import as_choice as _choice
from ._convert import as_flag as _flag
from ._convert import as_float as _float
from ._convert import as_float_array as _stack
from ._convert import as_grid as _grid
from ._convert import as_int as _int
from ._convert import as_optional_int as _optional_int
from ._convert import warn_rows as _warn

__version__: str = _attnlens.__version__

#: Bad input: shapes, values, option values, files. A ValueError subclass; the message is the CLI's.
InputError = _attnlens.InputError

Grid = Union[None, str, Tuple[int, int]]

__all__ = [
    "AttentionWarning",
    "HeadMaps",
    "InputError",
    "TokenLayout",
    "attention_flow",
    "chefer",
    "flow_metzger",
    "grad_sam",
    "gradient_rollout",
    "head_maps",
    "mean_attention_distance",
    "metrics",
    "raw",
    "read_safetensors",
    "rollout",
]


class TokenLayout(NamedTuple):
    """How a model's tokens are laid out: ``prefix_tokens`` (CLS, distillation, registers) then the patch grid.

    ``grid`` is ``(rows, cols)``, or None for text (no patch grid: every token is a position in the sequence).
    """

    prefix_tokens: int = 1
    grid: Optional[Tuple[int, int]] = None


class HeadMaps(NamedTuple):
    """Per-head attention maps ``[H, gh, gw]`` and, with a threshold, DINO's 0/1 masks of the same shape (else None)."""

    maps: Any
    masks: Any = None


_SEE_MODULE = """    prefix_tokens, grid, patches_only, scale, strict
        See the module documentation.
"""
_COMMON_OPTIONS = """    prefix_tokens : int, default 1
        Tokens before the patch grid (CLS; 2 for distilled DeiT: CLS and distillation token; 0: every token).
    grid : (rows, cols) or "HxW" or None, default None
        The patch grid (default: square, side ``sqrt(N - prefix_tokens)``); only distance and head maps use it.
    patches_only : bool, default False
        Drop the first ``prefix_tokens`` columns (keys) of the result.
    scale : {"none", "max", "minmax", "sum"}, default "none"
        Rescale each row of the result after ``patches_only``: ``x/max`` (vit-explain), ``(x-min)/(max-min)``
        (Chefer), ``x/sum``; a zero denominator leaves the row unchanged.
    strict : bool, default False
        Rows whose sum differs from 1 by more than 1e-3 raise InputError instead of an AttentionWarning.
"""


def _documented(function):
    """Spells out the shared keyword options in the function's own docstring, so help() shows them."""
    function.__doc__ = function.__doc__.replace(_SEE_MODULE, _COMMON_OPTIONS)
    return function


def _common(prefix_tokens: Any, grid: Grid, patches_only: Any, scale: Any, strict: Any) -> dict:
    return {
        "prefix_tokens": _int(prefix_tokens, "prefix_tokens"),
        "grid": _grid(grid),
        "patches_only": _flag(patches_only, "patches_only"),
        "scale": _choice(scale, "scale"),
        "strict": _flag(strict, "strict"),
    }


@_documented
def raw(attention: Any, layer: int = -1, fusion: str = "mean", query_row: Optional[int] = 0, *,
        all_layers: bool = False, prefix_tokens: int = 1, grid: Grid = None, patches_only: bool = False,
        scale: str = "none", strict: bool = False):
    """Raw attention of one layer with the heads fused (``attnlens attention raw``).

    Parameters
    ----------
    attention : array_like, ``[L, H, N, N]`` or ``[L, N, N]``, float32 or float64
        Post-softmax attention, rows = queries.
    layer : int, default -1
        The layer; negative counts from the end, as in Python.
    fusion : {"mean", "max", "min"}, default "mean"
        Elementwise head fusion.
    query_row : int or None, default 0
        The explained token (0 = CLS). None returns the whole ``[N, N]`` matrix.
    all_layers : bool, default False
        Every layer: ``[L, N]`` (with a query row) or ``[L, N, N]``. ``layer`` is then ignored.
    prefix_tokens, grid, patches_only, scale, strict
        See the module documentation.

    Returns
    -------
    numpy.ndarray, float64
        ``[N]`` (default), ``[N, N]`` with ``query_row=None``, ``[L, N]`` / ``[L, N, N]`` with ``all_layers``;
        the last dimension is ``N - P`` with ``patches_only``.
    """
    result, warning = _attnlens.raw(
        _stack(attention, "attention"), layer=_int(layer, "layer"), fusion=_choice(fusion, "fusion"),
        all_layers=_flag(all_layers, "all_layers"), query_row=_optional_int(query_row, "query_row"),
        **_common(prefix_tokens, grid, patches_only, scale, strict))
    _warn(warning)
    return result


@_documented
def rollout(attention: Any, fusion: str = "mean", discard_ratio: float = 0.0, residual: str = "half",
            mode: str = "abnar", start_layer: int = 0, query_row: Optional[int] = None, all_layers: bool = False, *,
            prefix_tokens: int = 1, grid: Grid = None, patches_only: bool = False, scale: str = "none",
            strict: bool = False):
    """Attention rollout ``J_l = A_l J_(l-1)`` (Abnar & Zuidema 2020; spec section 1; ``attnlens attention rollout``).

    Parameters
    ----------
    attention : array_like, ``[L, H, N, N]`` or ``[L, N, N]``, float32 or float64
        Post-softmax attention, rows = queries.
    fusion : {"mean", "max", "min"}, default "mean"
        Head fusion.
    discard_ratio : float in [0, 1), default 0
        Share of the ``N*N`` fused entries per layer, smallest first (ties by lower flat index), set to 0 before the
        residual is added. The abnar mode never zeroes prefix rows and columns; vit-explain uses 0.9.
    residual : {"half", "none"}, default "half"
        ``(A + I)`` row-normalised (= ``0.5 A + 0.5 I``), or the matrices as given (abnar mode only).
    mode : {"abnar", "vit-explain-reference", "chefer"}, default "abnar"
        ``"abnar"``: fuse, discard, residual, true row normalisation (spec 1.1). ``"vit-explain-reference"``:
        jacobgil/vit-explain exactly, with its protection of entry [0, 0] only and its column-wise normalisation
        quirk (spec 1.2; its own CLI: ``fusion="max", discard_ratio=0.9, query_row=0, patches_only=True,
        scale="max"``). ``"chefer"``: Chefer et al.'s baseline rollout (mean fusion, no discard; spec 1.3).
    start_layer : int, default 0
        First layer of the product (Chefer's benchmarks use 1).
    query_row : int or None, default None
        None: the whole joint attention ``[N, N]``. An int: that row only, ``[N]`` (0 = the CLS explanation).
    all_layers : bool, default False
        The joint attention after every layer from ``start_layer`` on: ``[L - start_layer, N, N]`` (or
        ``[L - start_layer, N]`` with a query row).
    prefix_tokens, grid, patches_only, scale, strict
        See the module documentation.

    Returns
    -------
    numpy.ndarray, float64
        ``[N, N]``, ``[N]`` with a query row, with a leading layer dimension with ``all_layers``.
    """
    result, warning = _attnlens.rollout(
        _stack(attention, "attention"), fusion=_choice(fusion, "fusion"),
        discard_ratio=_float(discard_ratio, "discard_ratio"), residual=_choice(residual, "residual"),
        mode=_choice(mode, "mode"), start_layer=_int(start_layer, "start_layer"),
        all_layers=_flag(all_layers, "all_layers"), query_row=_optional_int(query_row, "query_row"),
        **_common(prefix_tokens, grid, patches_only, scale, strict))
    _warn(warning)
    return result


@_documented
def attention_flow(attention: Any, scope: str = "cls", query_row: Optional[int] = None, normalize: bool = False,
                   residual: str = "half", threads: int = 1, *, prefix_tokens: int = 1, grid: Grid = None,
                   patches_only: bool = False, scale: str = "none", strict: bool = False):
    """Exact attention flow (Abnar & Zuidema 2020; spec 3.1; ``attnlens attention flow``).

    The layered graph has a node per (layer, token); node ``(l, q)`` has an edge down to ``(l-1, k)`` whose capacity
    is the head-mean attention of layer ``l`` with the residual term. The flow value of a pair is the maximum flow
    from a node to an input token (layer 0), computed exactly by attnlens' layered max-flow solver (the same values
    as networkx's Edmonds-Karp, in milliseconds instead of minutes).

    Parameters
    ----------
    attention : array_like, ``[L, H, N, N]`` or ``[L, N, N]``, float32 or float64
        Post-softmax attention, rows = queries.
    scope : {"cls", "all"}, default "cls"
        ``"cls"``: from node (last layer, ``query_row``) to every input token, ``[N]``. ``"all"``: from every node
        ``(l, q)``, ``[L, N, N]`` where ``[l-1, q, k]`` is the max-flow from node (l, q) to input k (``L*N``
        max-flow sources: use ``threads``; Ctrl-C stops it within a second).
    query_row : int or None, default None
        ``"cls"``: the source token at the last layer (None means 0, the CLS token). ``"all"``: None keeps every
        row; an int keeps that row of each layer, ``[L, N]``.
    normalize : bool, default False
        Divide each row by its sum over all ``N`` inputs, as the reference's ``compute_flows`` does (before
        ``patches_only``); default: the raw max-flow values.
    residual : {"half", "none"}, default "half"
        Capacities ``(A + I)`` row-normalised (the reference), or the head mean as given.
    threads : int, default 1
        Threads for ``scope="all"`` (0 = every core).
    prefix_tokens, grid, patches_only, scale, strict
        See the module documentation.

    Returns
    -------
    numpy.ndarray, float64
        ``[N]`` (``"cls"``), ``[L, N, N]`` or ``[L, N]`` (``"all"``); last dimension ``N - P`` with
        ``patches_only``.

    Examples
    --------
    >>> flow = attnlens.attention_flow(attention, normalize=True, patches_only=True)   # the CLS row, patches
    >>> flows = attnlens.attention_flow(attention, scope="all", threads=0)             # [L, N, N]
    """
    result, warning = _attnlens.attention_flow(
        _stack(attention, "attention"), scope=_choice(scope, "scope"), normalize=_flag(normalize, "normalize"),
        residual=_choice(residual, "residual"), threads=_int(threads, "threads"),
        query_row=_optional_int(query_row, "query_row"), **_common(prefix_tokens, grid, patches_only, scale, strict))
    _warn(warning)
    return result


@_documented
def flow_metzger(attention: Any, output_token: int = 0, form: str = "per-token", residual: str = "half", *,
                 prefix_tokens: int = 1, grid: Grid = None, patches_only: bool = False, scale: str = "none",
                 strict: bool = False):
    """Input-to-output attention flow after Metzger et al. 2022 (spec 3.2; ``attnlens attention flow-metzger``).

    Edges point up from the input tokens to the output node, token ``output_token`` at the last layer. Metzger et
    al. published no code that could be checked, so this reading of the paper is unverified.

    Parameters
    ----------
    attention : array_like, ``[L, H, N, N]`` or ``[L, N, N]``, float32 or float64
        Post-softmax attention, rows = queries.
    output_token : int, default 0
        The output node's token at the last layer (the CLI's ``--query-row``).
    form : {"per-token", "shapley"}, default "per-token"
        ``"per-token"``: the max flow from each input token alone (equals ``attention_flow(scope="cls")``).
        ``"shapley"``: one max flow from all inputs at once, the flow leaving each token (sums to the total; a max
        flow is not unique, these are the shares attnlens' solver finds).
    residual : {"half", "none"}, default "half"
        As for :func:`attention_flow`.
    prefix_tokens, grid, patches_only, scale, strict
        See the module documentation.

    Returns
    -------
    numpy.ndarray, float64, ``[N]`` (``[N - P]`` with ``patches_only``)
    """
    result, warning = _attnlens.flow_metzger(
        _stack(attention, "attention"), form=_choice(form, "form"), residual=_choice(residual, "residual"),
        query_row=_int(output_token, "output_token"), **_common(prefix_tokens, grid, patches_only, scale, strict))
    _warn(warning)
    return result


def _gradient_stacks(attention: Any, attention_grad: Any):
    return _stack(attention, "attention"), _stack(attention_grad, "attention_grad")


@_documented
def gradient_rollout(attention: Any, attention_grad: Any, discard_ratio: float = 0.9, reference: bool = False,
                     scores_grad: Any = None, *, query_row: Optional[int] = None, prefix_tokens: int = 1,
                     grid: Grid = None, patches_only: bool = False, scale: str = "none", strict: bool = False):
    """Gradient attention rollout (jacobgil/vit-explain; spec 2; ``attnlens attention grad-rollout --grad``).

    Per layer ``F = mean_h(A * dA)`` clamped at 0, the smallest entries discarded, ``(F + I)/2`` row-normalised,
    multiplied up the layers (deeper layer on the left).

    Parameters
    ----------
    attention : array_like, ``[L, H, N, N]`` or ``[L, N, N]``, float32 or float64
        Post-softmax attention, rows = queries.
    attention_grad : array_like, the shape of ``attention``
        ``d(target logit)/dA`` of every layer, in forward layer order (e.g. ``attnlens.torch.capture(...,
        target=c).attention_grad`` or ``attnlens capture --grad-output``).
    discard_ratio : float in [0, 1), default 0.9
        Share of the ``N*N`` entries per layer, smallest first, set to 0 (vit-explain's default). In the fixed form
        the prefix rows and columns still count but are never zeroed.
    reference : bool, default False
        vit-explain exactly: reversed layer pairing, nothing protected from the discard, its column-wise
        normalisation quirk. Its hook saw the gradient of the scaled pre-softmax scores: pass them as
        ``scores_grad`` for an exact reproduction.
    scores_grad : array_like or None, default None
        With ``reference=True``: the gradient with respect to the scaled pre-softmax scores, used instead of
        ``attention_grad`` (``attnlens.torch.capture(...).scores_grad``). Not allowed without ``reference``.
    query_row : int or None, default None
        None: the final product ``[N, N]``; an int: that row, ``[N]`` (0 = the CLS explanation).
    prefix_tokens, grid, patches_only, scale, strict
        See the module documentation.

    Returns
    -------
    numpy.ndarray, float64, ``[N, N]`` or ``[N]``
    """
    reference = _flag(reference, "reference")
    if scores_grad is not None and not reference:
        raise ValueError("scores_grad is the gradient vit-explain's reference mode uses; pass reference=True with it "
                         "(the fixed form uses attention_grad)")
    att, grad = _gradient_stacks(attention, attention_grad)
    name = "attention_grad"
    if scores_grad is not None:
        grad, name = _stack(scores_grad, "scores_grad"), "scores_grad"
    result, warning = _attnlens.gradient_rollout(
        att, grad, gradient_name=name, discard_ratio=_float(discard_ratio, "discard_ratio"), reference=reference,
        query_row=_optional_int(query_row, "query_row"), **_common(prefix_tokens, grid, patches_only, scale, strict))
    _warn(warning)
    return result


@_documented
def chefer(attention: Any, attention_grad: Any, start_layer: int = 0, *, query_row: Optional[int] = None,
           prefix_tokens: int = 1, grid: Grid = None, patches_only: bool = False, scale: str = "none",
           strict: bool = False):
    """Chefer et al. 2021 relevance ``R = prod_l (I + mean_h max(0, dA * A))`` (spec 4.1; ``attention chefer``).

    Parameters
    ----------
    attention : array_like, ``[L, H, N, N]`` or ``[L, N, N]``, float32 or float64
        Post-softmax attention, rows = queries.
    attention_grad : array_like, the shape of ``attention``
        ``d(target logit)/dA`` of every layer (post-softmax), in forward layer order.
    start_layer : int, default 0
        First layer of the product.
    query_row : int or None, default None
        None: ``R`` itself, ``[N, N]``; an int: that row, ``[N]`` (0 = the CLS explanation; Chefer's notebook shows
        row 0 without the CLS column: ``query_row=0, patches_only=True``).
    prefix_tokens, grid, patches_only, scale, strict
        See the module documentation.

    Returns
    -------
    numpy.ndarray, float64, ``[N, N]`` or ``[N]``
    """
    att, grad = _gradient_stacks(attention, attention_grad)
    result, warning = _attnlens.chefer(
        att, grad, start_layer=_int(start_layer, "start_layer"), query_row=_optional_int(query_row, "query_row"),
        **_common(prefix_tokens, grid, patches_only, scale, strict))
    _warn(warning)
    return result


@_documented
def grad_sam(attention: Any, attention_grad: Any, axis: str = "columns", *, prefix_tokens: int = 1,
             grid: Grid = None, patches_only: bool = False, scale: str = "none", strict: bool = False):
    """Grad-SAM (Barkan et al. 2021, spec 20): ``s_j = mean_{l,h,i} A[l,h,i,j] * max(0, dA[l,h,i,j])``, one score
    per key token (``attnlens explain --method grad-sam``).

    Parameters
    ----------
    attention : array_like, ``[L, H, N, N]`` or ``[L, N, N]``, float32 or float64
        Post-softmax attention, rows = queries.
    attention_grad : array_like, the shape of ``attention``
        ``d(target logit)/dA`` of every layer (post-softmax), in forward layer order.
    axis : {"columns", "rows"}, default "columns"
        ``"columns"``: a score per key token, the mean over query rows (the spec's reading of the paper);
        ``"rows"``: a score per query token, the mean over keys (``--grad-sam-axis rows``).
    prefix_tokens, grid, patches_only, scale, strict
        See the module documentation.

    Returns
    -------
    numpy.ndarray, float64, ``[N]`` (``[N - prefix_tokens]`` with ``patches_only``)
    """
    att, grad = _gradient_stacks(attention, attention_grad)
    result, warning = _attnlens.grad_sam(att, grad, axis=_choice(axis, "axis"),
                                         **_common(prefix_tokens, grid, patches_only, scale, strict))
    _warn(warning)
    return result


def mean_attention_distance(attention: Any, patch_size: float, prefix_tokens: int = 1, grid: Grid = None,
                            renormalize: bool = False, *, strict: bool = False):
    """Mean attention distance per layer and head, in input pixels (spec 6; ``attnlens attention distance``).

    For each query patch ``i``: ``sum_j A[i, j] * patch_size * ||pos(i) - pos(j)||`` over the key patches, averaged
    over the query patches (Dosovitskiy et al. Fig. 7, probing-vits). Needs the patch grid.

    Parameters
    ----------
    attention : array_like, ``[L, H, N, N]`` or ``[L, N, N]``, float32 or float64
        Post-softmax attention, rows = queries.
    patch_size : float
        Patch side in pixels (16 for ViT-B/16, 8 for DINO ViT-S/8), > 0.
    prefix_tokens : int, default 1
        Tokens before the grid; their rows and columns are dropped.
    grid : (rows, cols) or "HxW" or None, default None
        The patch grid; default a square one.
    renormalize : bool, default False
        Re-normalise each query's patch attention to 1 first. Default (the reference): the attention mass on the
        prefix tokens counts as distance 0.
    strict : bool, default False
        Rows whose sum differs from 1 by more than 1e-3 raise InputError instead of an AttentionWarning.

    Returns
    -------
    numpy.ndarray, float64, ``[L, H]`` (``[L, 1]`` for a head-fused stack)
    """
    result, warning = _attnlens.mean_attention_distance(
        _stack(attention, "attention"), patch_size=_float(patch_size, "patch_size"),
        renormalize=_flag(renormalize, "renormalize"), prefix_tokens=_int(prefix_tokens, "prefix_tokens"),
        grid=_grid(grid), strict=_flag(strict, "strict"))
    _warn(warning)
    return result


def head_maps(attention: Any, layer: int = -1, threshold: Optional[float] = None, prefix_tokens: int = 1,
              grid: Grid = None, *, query_row: int = 0, strict: bool = False) -> HeadMaps:
    """Per-head attention maps of one query row on the patch grid (DINO; spec 7; ``attnlens attention heads``).

    Parameters
    ----------
    attention : array_like, ``[L, H, N, N]`` or ``[L, N, N]``, float32 or float64
        Post-softmax attention, rows = queries.
    layer : int, default -1
        The layer (negative counts from the end).
    threshold : float in (0, 1] or None, default None
        Also compute DINO's masks: per head, the smallest set of largest patches holding at least this share of
        the head's mass (the boundary patch included; ties kept by higher index). DINO uses 0.6.
    prefix_tokens : int, default 1
        Tokens before the grid (their columns are dropped).
    grid : (rows, cols) or "HxW" or None, default None
        The patch grid; default a square one.
    query_row : int, default 0
        The query token whose attention is mapped (0 = CLS).
    strict : bool, default False
        Rows whose sum differs from 1 by more than 1e-3 raise InputError instead of an AttentionWarning.

    Returns
    -------
    HeadMaps
        ``maps`` ``[H, gh, gw]`` float64, and ``masks`` (0/1, same shape) with a threshold, else None.
    """
    maps, masks, warning = _attnlens.head_maps(
        _stack(attention, "attention"), layer=_int(layer, "layer"),
        threshold=None if threshold is None else _float(threshold, "threshold"),
        prefix_tokens=_int(prefix_tokens, "prefix_tokens"), grid=_grid(grid),
        query_row=_int(query_row, "query_row"), strict=_flag(strict, "strict"))
    _warn(warning)
    return HeadMaps(maps, masks)


def read_safetensors(path: Union[str, os.PathLike]) -> dict:
    """Every tensor of a safetensors file as NumPy arrays, validated by the reader the CLI loads models with.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.safetensors`` file.

    Returns
    -------
    dict of str to numpy.ndarray
        In the file's byte order of tensors. dtypes are kept: F64/F32/F16 -> float64/float32/float16, BF16 ->
        float32 (NumPy has no bfloat16; the conversion is exact), I64...I8, U64...U8, BOOL, C64 as themselves.
        8-bit float types (F8_*) come as their raw uint8 codes in the tensor's shape, sub-byte types (F4, F6_*) as
        their packed bytes, 1-D.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    InputError (ValueError)
        For a file that is not a valid safetensors file (the CLI's message: truncation, bad header, overlapping or
        missing bytes, unknown dtype, ...).
    """
    path = os.fspath(path)
    if not isinstance(path, str):
        path = os.fsdecode(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file", path)
    return _attnlens.read_safetensors(path)


from . import metrics  # noqa: E402  (after the names it uses; imports no NumPy until used)


def __getattr__(name: str):
    # attnlens.torch is imported on first use only: it loads PyTorch.
    if name == "torch":
        import importlib

        return importlib.import_module(".torch", __name__)
    raise AttributeError(f"module 'attnlens' has no attribute {name!r}")
