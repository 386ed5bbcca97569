"""Argument checks and conversions shared by the attnlens modules (private).

NumPy is imported on first use, not when attnlens is imported: ``import attnlens`` stays fast, and NumPy is loaded
by the first call that needs it.
"""
from __future__ import annotations

import operator
import warnings
from typing import Any, Optional, Tuple, Union

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


class AttentionWarning(UserWarning):
    """Attention rows far from summing to 1 (the CLI's warning); pass ``strict=True`` to make it an error."""


def numpy():
    """The numpy module, imported on first use."""
    import numpy as np  # noqa: PLC0415 (deliberately lazy)

    return np


def is_torch_tensor(x: Any) -> bool:
    """True for a torch.Tensor, without importing torch."""
    cls = type(x)
    return cls.__module__.startswith("torch") and hasattr(x, "detach") and hasattr(x, "numpy")


def torch_to_numpy(x: Any, name: str):
    """A torch tensor as a NumPy array (detached, on the CPU). bfloat16 has no NumPy type: TypeError."""
    dtype = str(x.dtype)
    if dtype == "torch.bfloat16":
        raise TypeError(f"{name}: unsupported dtype {dtype}; attnlens reads float32 or float64 (use .float())")
    return x.detach().cpu().numpy()


def as_float_array(x: Any, name: str):
    """``x`` as a C-contiguous float32/float64 NumPy array in native byte order (a copy only when needed).

    Accepts NumPy arrays, objects with ``__array__``, torch tensors and nested lists (converted as float64). Other
    dtypes (integers, float16, complex, object, structured) are a TypeError, as the CLI rejects them in .npy files.
    """
    np = numpy()
    if is_torch_tensor(x):
        x = torch_to_numpy(x, name)
    elif isinstance(x, (list, tuple)):
        try:
            x = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name}: cannot read this list as a numeric array ({e})") from None
    elif not isinstance(x, np.ndarray):
        if not hasattr(x, "__array__"):
            raise TypeError(f"{name}: expected a NumPy array, an array-like or a torch tensor, got "
                            f"{type(x).__name__}")
        x = np.asarray(x)
    dtype = x.dtype
    if dtype.kind != "f" or dtype.itemsize not in (4, 8):
        raise TypeError(f"{name}: unsupported dtype {dtype}; attnlens reads float32 or float64")
    if not dtype.isnative:
        x = x.astype(dtype.newbyteorder("="))
    if not x.flags.c_contiguous:  # (np.ascontiguousarray would turn a 0-d array into a 1-d one)
        x = np.array(x, order="C")
    return x


def as_values(x: Any, name: str):
    """A float64 NumPy array of any shape from numeric input (metrics); TypeError for non-numeric dtypes."""
    np = numpy()
    if is_torch_tensor(x):
        x = x.detach().cpu()
        x = (x.float() if str(x.dtype) == "torch.bfloat16" else x).numpy()
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: cannot read this as a numeric array ({e})") from None
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected real numbers, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float64)


def as_int(value: Any, name: str) -> int:
    """An integer option (anything with ``__index__``); TypeError otherwise, ValueError outside the C int range."""
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if not _INT_MIN <= v <= _INT_MAX:
        raise ValueError(f"{name} {v} is out of range")
    return v


def as_optional_int(value: Any, name: str) -> Optional[int]:
    return None if value is None else as_int(value, name)


def as_float(value: Any, name: str) -> float:
    """A real-valued option; TypeError for strings and other non-numbers."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__float__"):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


def as_flag(value: Any, name: str) -> bool:
    """A boolean option: True/False (also NumPy booleans and the integers 0 and 1)."""
    if isinstance(value, bool):
        return value
    if type(value).__name__ == "bool_" or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r}")


def as_choice(value: Any, name: str) -> str:
    """A string option (its values are checked by the C++ layer, with the CLI's message)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    return value


def as_grid(grid: Union[None, str, Tuple[int, int]]) -> str:
    """None -> "" (the default square grid), (rows, cols) -> "ROWSxCOLS", "HxW" unchanged (the CLI's --grid)."""
    if grid is None:
        return ""
    if isinstance(grid, str):
        return grid
    try:
        rows, cols = grid
    except (TypeError, ValueError):
        raise TypeError(f"grid must be (rows, cols) or 'HxW', got {grid!r}") from None
    return f"{as_int(rows, 'grid rows')}x{as_int(cols, 'grid cols')}"


def warn_rows(warning: str, stacklevel: int = 3) -> None:
    """Issues the CLI's row-sum warning, if any."""
    if warning:
        warnings.warn(warning + " (use strict=True to make this an error)", AttentionWarning, stacklevel=stacklevel)
