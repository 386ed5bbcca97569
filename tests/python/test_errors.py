"""Bad input raises ValueError (attnlens.InputError) with the CLI's message, or TypeError for a wrong type, and
never crashes the interpreter: the same failures through `attnlens attention`, then 1,000 random shapes, dtypes,
strides, values and options."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import attnlens
from conftest import ROOT, random_attention

RNG = np.random.default_rng(11)
GOOD = random_attention(RNG, (2, 2, 5, 5))
GRAD = RNG.normal(size=GOOD.shape)


def _with(value, index=(1, 0, 2, 3)):
    a = GOOD.copy()
    a[index] = value
    return a


# (stack, function, keywords, gradient or None, CLI method, CLI options): each must fail in both, same message.
FAILURES = [
    (GOOD[0, 0], "rollout", {}, None, "rollout", []),                      # rank 2
    (GOOD[..., :4], "rollout", {}, None, "rollout", []),                   # not square
    (np.zeros((2, 0, 5, 5)), "rollout", {}, None, "rollout", []),          # an empty extent
    (_with(np.nan), "attention_flow", {}, None, "flow", []),
    (_with(np.inf), "raw", {}, None, "raw", []),
    (_with(-0.25), "rollout", {}, None, "rollout", []),
    (GOOD * 1.2, "rollout", {"strict": True}, None, "rollout", ["--strict"]),
    (GOOD, "rollout", {"query_row": 5}, None, "rollout", ["--query-row", "5"]),
    (GOOD, "attention_flow", {"query_row": -1}, None, "flow", ["--query-row", "-1"]),
    (GOOD, "raw", {"layer": 2}, None, "raw", ["--layer", "2", "--query-row", "0"]),
    (GOOD, "raw", {"layer": -3}, None, "raw", ["--layer", "-3", "--query-row", "0"]),
    (GOOD, "rollout", {"discard_ratio": 1.0}, None, "rollout", ["--discard-ratio", "1"]),
    (GOOD, "rollout", {"start_layer": 2}, None, "rollout", ["--start-layer", "2"]),
    (GOOD, "rollout", {"start_layer": -1}, None, "rollout", ["--start-layer", "-1"]),
    (GOOD, "rollout", {"mode": "chefer", "fusion": "max"}, None, "rollout", ["--mode", "chefer", "--fusion", "max"]),
    (GOOD, "rollout", {"prefix_tokens": 5}, None, "rollout", ["--prefix-tokens", "5"]),
    (GOOD, "head_maps", {"grid": (3, 3)}, None, "heads", ["--grid", "3x3"]),  # 4 patches are not 3x3
    (GOOD, "rollout", {"grid": "0x4"}, None, "rollout", ["--grid", "0x4"]),
    (GOOD, "attention_flow", {"scope": "all", "threads": -1}, None, "flow", ["--scope", "all", "--threads", "-1"]),
    (GOOD, "head_maps", {"threshold": 0.0}, None, "heads", ["--threshold", "0"]),
    (GOOD, "head_maps", {"prefix_tokens": 2}, None, "heads", ["--prefix-tokens", "2"]),
    (GOOD, "mean_attention_distance", {"patch_size": 0}, None, "distance", ["--patch-size", "0"]),
    (GOOD, "chefer", {"start_layer": 3}, GRAD, "chefer", ["--start-layer", "3"]),
    (GOOD, "chefer", {}, GRAD[:, :1], "chefer", []),                        # gradient shape
    (GOOD, "gradient_rollout", {}, _with(np.nan), "grad-rollout", []),      # gradient values
]


@pytest.mark.parametrize("case", range(len(FAILURES)))
def test_errors_carry_the_cli_message(cli, case):
    stack, function, kwargs, grad, method, options = FAILURES[case]
    args = (stack,) if grad is None else (stack, grad)
    with pytest.raises(ValueError) as info:
        getattr(attnlens, function)(*args, **kwargs)
    assert isinstance(info.value, attnlens.InputError)
    want = cli.error(method, stack, *options, grad=grad)
    if grad is not None:  # the CLI names the gradient file, Python the argument
        want = want.replace(f"'{cli.tmp}/in{cli.count}.npy'", "'attention_grad'")
    assert str(info.value) == want


@pytest.mark.parametrize("value,exception,message", [
    (GOOD.astype(np.int64), TypeError, "unsupported dtype int64; attnlens reads float32 or float64"),
    (GOOD.astype(np.float16), TypeError, "unsupported dtype float16"),
    (GOOD.astype(np.complex128), TypeError, "unsupported dtype complex128"),
    (np.array([[[object()]]]), TypeError, "unsupported dtype object"),
    (np.zeros((2, 2, 2, 2), dtype=[("a", "f8")]), TypeError, "unsupported dtype"),
    ("attention.npy", TypeError, "expected a NumPy array"),
    (None, TypeError, "expected a NumPy array"),
    ({"a": 1}, TypeError, "expected a NumPy array"),
    ([[[0.5, 0.5], [0.5]]], ValueError, "cannot read this list"),
    (np.float64(1.0), ValueError, r"attention must have shape \[L,H,N,N\] or \[L,N,N\], got \[\]"),
    (np.ones((1,) * 32), ValueError, r"got \[1,1,1,1,1,1,1,1"),
])
def test_wrong_types_and_ranks(value, exception, message):
    with pytest.raises(exception, match=message):
        attnlens.rollout(value)


def test_option_types():
    with pytest.raises(TypeError, match="query_row must be an integer"):
        attnlens.rollout(GOOD, query_row=1.5)
    with pytest.raises(TypeError, match="query_row must be an integer"):
        attnlens.rollout(GOOD, query_row="0")
    with pytest.raises(ValueError, match="query_row 1099511627776 is out of range"):
        attnlens.rollout(GOOD, query_row=2**40)
    with pytest.raises(TypeError, match="discard_ratio must be a number"):
        attnlens.rollout(GOOD, discard_ratio="0.9")
    with pytest.raises(TypeError, match="fusion must be a string"):
        attnlens.rollout(GOOD, fusion=1)
    with pytest.raises(TypeError, match="patches_only must be True or False"):
        attnlens.rollout(GOOD, patches_only="yes")
    with pytest.raises(ValueError, match="--fusion must be mean, max or min, got 'median'"):
        attnlens.rollout(GOOD, fusion="median")
    with pytest.raises(ValueError, match="--scale must be none, max, minmax or sum, got 'l2'"):
        attnlens.raw(GOOD, scale="l2")
    with pytest.raises(ValueError, match="--scope must be cls or all"):
        attnlens.attention_flow(GOOD, scope="every")
    with pytest.raises(ValueError, match="--residual must be half or none"):
        attnlens.attention_flow(GOOD, residual="full")
    with pytest.raises(ValueError, match="--mode must be abnar"):
        attnlens.rollout(GOOD, mode="fixed")
    with pytest.raises(ValueError, match="--form must be per-token or shapley"):
        attnlens.flow_metzger(GOOD, form="banzhaf")
    with pytest.raises(ValueError, match=r"--discard-ratio nan is outside \[0, 1\)"):
        attnlens.rollout(GOOD, discard_ratio=math.nan)
    with pytest.raises(TypeError, match="grid must be"):
        attnlens.rollout(GOOD, grid=4)


def test_direct_extension_calls_are_guarded():
    """The extension checks dtype and layout itself, for callers that skip the Python layer."""
    from attnlens import _attnlens

    with pytest.raises(TypeError, match="C-contiguous"):
        _attnlens.rollout(np.asfortranarray(GOOD[0]))
    with pytest.raises(TypeError, match="unsupported dtype"):
        _attnlens.rollout(GOOD.astype(np.int32))
    with pytest.raises(TypeError):
        _attnlens.rollout([1, 2, 3])


METHODS = [
    lambda a, o: attnlens.raw(a, **o),
    lambda a, o: attnlens.rollout(a, **o),
    lambda a, o: attnlens.attention_flow(a, **o),
    lambda a, o: attnlens.flow_metzger(a, **{k: v for k, v in o.items() if k != "query_row"}),
    lambda a, o: attnlens.gradient_rollout(a, a, **o),
    lambda a, o: attnlens.chefer(a, np.negative(a) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a, **o),
    lambda a, o: attnlens.mean_attention_distance(a, 4, prefix_tokens=o.get("prefix_tokens", 1)),
    lambda a, o: attnlens.head_maps(a, threshold=0.5, prefix_tokens=o.get("prefix_tokens", 1)),
]


def _random_input(rng):
    kind = rng.integers(0, 10)
    if kind == 0:  # odd objects
        return [None, "x", 3, 2.5, {}, [], [[1.0]], b"\x00", object()][rng.integers(0, 9)]
    rank = int(rng.choice([0, 1, 2, 3, 3, 4, 4, 4, 5, 8]))
    shape = tuple(int(rng.choice([0, 1, 2, 2, 3, 3, 5, 6])) for _ in range(rank))
    if rank >= 2 and rng.random() < 0.6:  # mostly square
        shape = shape[:-1] + (shape[-2],)
    dtype = rng.choice(["f8", "f4"] * 5 + [">f8", "f2", "i4", "i8", "u1", "?", "c8", "O"])
    size = int(np.prod(shape)) if shape else 1
    values = rng.random(size) if size < 5000 else np.zeros(size)
    if rng.random() < 0.5 and rank >= 1 and shape[-1] > 0:
        values = values.reshape(shape) if shape else values
        values = values / np.maximum(values.sum(axis=-1, keepdims=True), 1e-300)
    values = np.asarray(values, dtype=np.float64).reshape(shape)
    choice = rng.random()
    if choice < 0.1 and values.size > 0:
        values = values.copy()
        values.flat[rng.integers(0, values.size)] = rng.choice([np.nan, -np.inf, np.inf, -1.0, 1e308])
    try:
        with np.errstate(all="ignore"):
            a = values.astype(dtype)
    except (TypeError, ValueError):
        a = values
    if rank >= 2 and rng.random() < 0.3:  # non-contiguous: transposed or strided
        a = np.swapaxes(a, -1, -2) if rng.random() < 0.5 else np.repeat(a, 2, axis=0)[::2]
    return a


def _random_options(rng):
    o = {}
    if rng.random() < 0.4:
        o["query_row"] = int(rng.integers(-2, 8))
    if rng.random() < 0.3:
        o["prefix_tokens"] = int(rng.integers(-1, 4))
    if rng.random() < 0.2:
        o["patches_only"] = True
    if rng.random() < 0.2:
        o["scale"] = str(rng.choice(["max", "minmax", "sum", "none", "bad"]))
    if rng.random() < 0.1:
        o["grid"] = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    return o


def test_fuzz_thousand_random_inputs_without_a_crash():
    rng = np.random.default_rng(2024)
    outcomes = {"ok": 0, "ValueError": 0, "TypeError": 0}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", attnlens.AttentionWarning)
        for i in range(1000):
            a = _random_input(rng)
            options = _random_options(rng)
            method = METHODS[i % len(METHODS)]
            try:
                result = method(a, options)
            except ValueError:  # InputError included
                outcomes["ValueError"] += 1
                continue
            except TypeError:
                outcomes["TypeError"] += 1
                continue
            maps = result.maps if isinstance(result, attnlens.HeadMaps) else result
            assert isinstance(maps, np.ndarray) and maps.dtype == np.float64
            outcomes["ok"] += 1
    # Every outcome occurs, so the fuzzing reaches the methods as well as the checks.
    assert outcomes["ok"] > 50 and outcomes["ValueError"] > 200 and outcomes["TypeError"] > 50, outcomes


def test_interpreter_survives_in_a_subprocess():
    """The nastiest inputs once more in a fresh interpreter, so that a crash shows as a signal, not a hang."""
    code = (
        "import numpy as np, attnlens, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "bad = [np.empty((1, 1, 0, 0)), np.full((1, 1, 3, 3), np.nan), np.ones((1, 1, 2, 2)) * 1e308,\n"
        "       np.lib.stride_tricks.as_strided(np.ones(1), (1, 1, 4, 4), (0, 0, 0, 0)),\n"
        "       np.ones((1, 1, 1, 1)), np.ones((3, 1, 1, 1, 1)), np.float32(1)]\n"
        "for a in bad:\n"
        "    for f in (attnlens.rollout, attnlens.attention_flow, attnlens.raw, attnlens.flow_metzger):\n"
        "        try: f(a)\n"
        "        except (ValueError, TypeError): pass\n"
        "print('survived')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "tests", "python")))
    assert proc.returncode == 0 and "survived" in proc.stdout, proc.stderr
