"""Faithfulness metrics (spec section 8), computed by the same C++ functions as ``attnlens evaluate``.

* :func:`spearman`, :func:`top_k_overlap`: agreement of two relevance maps (e.g. a method and blank-out).
* :func:`auc`: trapezoid-rule area under a curve.
* :func:`deletion_curve`, :func:`insertion_curve`: RISE-style curves from a scoring callback (your model).
* :func:`pointing_game`, :func:`mass_in_box`: localisation against an object's box.

Orderings are ``descending_order``'s: by descending relevance, ties by ascending (flat) index, so every curve is
reproducible (torch.topk leaves the order of ties unspecified).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Sequence, Tuple, Union

from . import _attnlens
from ._convert import as_float as _float
from ._convert import as_int as _int
from ._convert import as_values as _values
from ._convert import is_torch_tensor as _is_torch
from ._convert import numpy as _numpy

__all__ = ["Curve", "auc", "deletion_curve", "insertion_curve", "localize", "mass_in_box", "pointing_game",
           "spearman", "top_k_overlap"]


class Curve(NamedTuple):
    """A deletion or insertion curve: ``x`` = k/P for k = 0..P (P features), ``y`` = the score after k steps, and
    ``auc`` = the trapezoid area under it. Unpacks as ``x, y, auc = deletion_curve(...)``."""

    x: Any
    y: Any
    auc: float


def _pair(a: Any, b: Any, what: str):
    np = _numpy()
    a, b = _values(a, "a"), _values(b, "b")
    if a.size == b.size and a.shape != b.shape:
        raise ValueError(f"{what}: shapes differ ({a.shape} and {b.shape})")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"{what}: values must be finite (no NaN or Inf)")
    return a.ravel(), b.ravel()


def spearman(a: Any, b: Any) -> float:
    """Spearman's rank correlation, as ``scipy.stats.spearmanr`` computes it (spec 8.1).

    Pearson's correlation of the average ranks (ties share their mean rank). When either side is constant the
    correlation is undefined and 0 is returned, as the reference scripts replace NaN by 0.

    Parameters
    ----------
    a, b : array_like of the same shape (at least 2 values)
        Two relevance maps, e.g. ``[gh, gw]`` patch maps; compared element by element.

    Returns
    -------
    float in [-1, 1]
    """
    a, b = _pair(a, b, "spearman")
    return _attnlens.spearman(a, b)


def top_k_overlap(a: Any, b: Any, k: Optional[int] = None, share: float = 0.1) -> float:
    """Share of the top-k entries two maps have in common, ``|top_k(a) & top_k(b)| / k`` (spec 8.1).

    Parameters
    ----------
    a, b : array_like of the same shape
        Two relevance maps.
    k : int or None, default None
        How many top entries; default ``max(1, floor(share * n))`` (10% of 196 patches is 19).
    share : float, default 0.1
        Used when ``k`` is None.

    Returns
    -------
    float in [0, 1]
    """
    a, b = _pair(a, b, "top-k overlap")
    k = _attnlens.top_k_count(a.size, _float(share, "share")) if k is None else _int(k, "k")
    return _attnlens.top_k_overlap(a, b, k)


def auc(x: Any, y: Any) -> float:
    """Trapezoid-rule area under ``y(x)`` (the AUC of deletion, insertion and perturbation curves; spec 8.2).

    Parameters
    ----------
    x : array_like, ascending
        At least 2 points.
    y : array_like, the length of ``x``
        The curve's values.

    Returns
    -------
    float
        ``sum_i (x[i] - x[i-1]) (y[i] + y[i-1]) / 2``.
    """
    x, y = _values(x, "x").ravel(), _values(y, "y").ravel()
    return _attnlens.trapezoid_auc(x, y)


def _patch_size(patch_size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(patch_size, (tuple, list)):
        if len(patch_size) != 2:
            raise ValueError(f"patch_size must be an int or (height, width), got {patch_size!r}")
        return _int(patch_size[0], "patch_size"), _int(patch_size[1], "patch_size")
    p = _int(patch_size, "patch_size")
    return p, p


def localize(relevance: Any, box: Sequence[int], patch_size: Union[int, Sequence[int]]) -> Tuple[bool, float]:
    """Pointing game and mass in box at once (see :func:`pointing_game`, :func:`mass_in_box`)."""
    m = _values(relevance, "relevance")
    if len(box) != 4:
        raise ValueError(f"box must be (x0, y0, x1, y1), got {box!r}")
    ph, pw = _patch_size(patch_size)
    hit, mass = _attnlens.localize(m, ph, pw, tuple(_int(v, "box") for v in box))
    return bool(hit), float(mass)


def pointing_game(relevance: Any, box: Sequence[int], patch_size: Union[int, Sequence[int]]) -> bool:
    """Whether the centre of the most relevant patch lies inside the box (spec 8; ``attnlens evaluate``).

    Parameters
    ----------
    relevance : array_like, ``[gh, gw]``
        A patch map; the top patch is the first maximum in row-major order.
    box : (x0, y0, x1, y1)
        The object's box in model-input pixels, half-open ``[x0, x1) x [y0, y1)``.
    patch_size : int or (height, width)
        Pixels per patch.

    Returns
    -------
    bool
    """
    return localize(relevance, box, patch_size)[0]


def mass_in_box(relevance: Any, box: Sequence[int], patch_size: Union[int, Sequence[int]]) -> float:
    """Share of the positive relevance that falls inside the box (spec 8; ``attnlens evaluate``).

    Each patch's relevance is spread evenly over its pixels and negative values count as 0. A map with no positive
    relevance is scored as a uniform map (the box's share of the image).

    Parameters
    ----------
    relevance : array_like, ``[gh, gw]``
        A patch map.
    box : (x0, y0, x1, y1)
        The object's box in model-input pixels, half-open.
    patch_size : int or (height, width)
        Pixels per patch.

    Returns
    -------
    float in [0, 1]
    """
    return localize(relevance, box, patch_size)[1]


def _scores(out: Any, expected: int):
    np = _numpy()
    y = _values(out, "score(...)")
    if y.shape != (expected,):
        raise ValueError(f"score must return {expected} values (one per image of the batch), got shape "
                         f"{tuple(np.shape(y))}")
    return y


def _curve(relevance: Any, score: Callable, inputs: Any, baseline: Any, batch_size: int, deletion: bool) -> Curve:
    np = _numpy()
    if not callable(score):
        raise TypeError("score must be a callable taking a batch and returning one probability per item")
    batch_size = _int(batch_size, "batch_size")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    rel = _values(relevance, "relevance")
    if rel.size < 1:
        raise ValueError("relevance is empty")
    if not np.isfinite(rel).all():
        raise ValueError("relevance must be finite (no NaN or Inf)")
    order = _attnlens.descending_order(rel.ravel())
    features = rel.size
    make = None
    if inputs is not None:
        make = _image_batches(rel.shape, inputs, baseline)
    ys = []
    for first in range(0, features + 1, batch_size):
        steps = range(first, min(features + 1, first + batch_size))
        keep = np.ones((len(steps), features), dtype=np.float32) if deletion else \
            np.zeros((len(steps), features), dtype=np.float32)
        for row, k in enumerate(steps):
            keep[row, order[:k]] = 0.0 if deletion else 1.0
        keep = keep.reshape((len(steps),) + rel.shape)
        batch = keep if make is None else make(keep)
        ys.append(_scores(score(batch), len(steps)))
    y = np.concatenate(ys)
    x = np.arange(features + 1, dtype=np.float64) / features
    return Curve(x, y, _attnlens.trapezoid_auc(x, y))


def _image_batches(grid_shape: Tuple[int, ...], inputs: Any, baseline: Any) -> Callable:
    """keep-masks [B, gh, gw] -> perturbed images [B, C, H, W], each patch the image's or the baseline's."""
    np = _numpy()
    if len(grid_shape) != 2:
        raise ValueError(f"with inputs, relevance must be a patch map [gh, gw], got shape {grid_shape}")
    if len(getattr(inputs, "shape", ())) != 3:
        raise ValueError(f"inputs must be one image [C, H, W], got shape {tuple(getattr(inputs, 'shape', ()))}")
    c, h, w = (int(v) for v in inputs.shape)
    gh, gw = grid_shape
    if h % gh or w % gw:
        raise ValueError(f"the image's {h}x{w} pixels do not divide into the {gh}x{gw} patch grid")
    ph, pw = h // gh, w // gw
    if _is_torch(inputs):
        import torch  # noqa: PLC0415 (the caller passed a tensor, so torch is loaded)

        base = torch.as_tensor(baseline, dtype=inputs.dtype, device=inputs.device)

        def make_torch(keep):
            k = torch.from_numpy(np.ascontiguousarray(keep.repeat(ph, axis=1).repeat(pw, axis=2)))
            k = k.to(device=inputs.device, dtype=inputs.dtype)[:, None]
            return inputs[None] * k + base * (1 - k)

        return make_torch
    image = np.asarray(inputs)
    if image.dtype.kind != "f":
        image = image.astype(np.float32)
    base = np.asarray(baseline, dtype=image.dtype)

    def make_numpy(keep):
        k = keep.repeat(ph, axis=1).repeat(pw, axis=2).astype(image.dtype)[:, None]
        return image[None] * k + base * (1 - k)

    return make_numpy


def deletion_curve(relevance: Any, score: Callable, inputs: Any = None, baseline: Any = 0.0,
                   batch_size: int = 16) -> Curve:
    """Deletion curve (RISE; spec 8.2): the score as features are removed, most relevant first, one per step.

    Step k (k = 0..P) removes the k most relevant of the P features (``descending_order``: ties by index); the
    curve is the score at each step against x = k/P, and a faithful map makes it fall fast (low AUC).

    Parameters
    ----------
    relevance : array_like
        One value per feature, any shape: a patch map ``[gh, gw]``, a token vector ``[T]``, ...
    score : callable
        Called with batches of at most ``batch_size`` perturbed inputs; returns one number per item (e.g. the
        probability of the explained class), as a sequence, NumPy array or torch tensor.
    inputs : array_like or torch.Tensor ``[C, H, W]``, optional
        One image, with ``relevance`` its patch map ``[gh, gw]`` (H and W multiples of gh and gw). The batches are
        then perturbed images ``[B, C, H, W]``: the removed patches set to ``baseline``. A torch tensor gives torch
        batches on its device and dtype. Without ``inputs``, ``score`` receives the keep-masks
        ``[B, *relevance.shape]`` (float32; 1 kept, 0 removed) and applies them itself (e.g. to token ids).
    baseline : float or array_like broadcastable to ``[C, H, W]``, default 0.0
        What a removed pixel becomes (0 = black before normalisation; for a normalised input use the normalised
        value of black, per channel ``[C, 1, 1]``).
    batch_size : int, default 16
        Perturbed inputs per call of ``score`` (``attnlens evaluate --batch``).

    Returns
    -------
    Curve
        ``(x, y, auc)``: ``x`` and ``y`` float64 ``[P + 1]``, ``auc`` the trapezoid area (lower is better).
    """
    return _curve(relevance, score, inputs, baseline, batch_size, deletion=True)


def insertion_curve(relevance: Any, score: Callable, inputs: Any = None, baseline: Any = 0.0,
                    batch_size: int = 16) -> Curve:
    """Insertion curve (RISE; spec 8.2): the score as features are restored onto the baseline, most relevant first.

    Step k (k = 0..P) keeps the k most relevant features and sets the others to the baseline; a faithful map makes
    the score rise fast (high AUC). Parameters and result as :func:`deletion_curve` (keep-masks: 1 restored, 0
    baseline).
    """
    return _curve(relevance, score, inputs, baseline, batch_size, deletion=False)
