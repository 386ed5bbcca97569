"""The attention-graph functions: spec section 13's vectors, equality with `attnlens attention <method>` on the same
.npy (attention methods 1e-12, flow 1e-9) for random image-, distilled- and text-shaped stacks, exact flow against
networkx's max-flow, and the input conversions (float32/float64, strides, torch tensors, lists)."""
import numpy as np
import pytest

import attnlens
from conftest import random_attention

# Spec 13: N = 3, L = 2 head-mean attention, residual 0.5 A + 0.5 I (verified with networkx 3.6, float64).
A1 = [[.6, .3, .1], [.2, .5, .3], [.1, .1, .8]]
A2 = [[.2, .7, .1], [.3, .3, .4], [.5, .25, .25]]
SPEC_ROLLOUT = [[.5175, .355, .1275], [.195, .52, .285], [.24375, .1625, .59375]]
SPEC_FLOW = [[.75, .55, .25], [.3, .85, .4], [.4, .325, .8]]
SPEC_FLOW_NORMALISED = [[.483871, .354839, .161290], [.193548, .548387, .258065], [.262295, .213115, .524590]]


def test_spec_13_rollout_and_flow():
    att = np.array([A1, A2])
    np.testing.assert_allclose(attnlens.rollout(att), SPEC_ROLLOUT, atol=1e-15)
    np.testing.assert_allclose(attnlens.rollout(att, all_layers=True)[0], 0.5 * np.array(A1) + 0.5 * np.eye(3),
                               atol=1e-15)
    flows = attnlens.attention_flow(att, scope="all")
    assert flows.shape == (2, 3, 3)
    np.testing.assert_allclose(flows[1], SPEC_FLOW, atol=1e-12)
    np.testing.assert_allclose(attnlens.attention_flow(att, scope="all", normalize=True)[1], SPEC_FLOW_NORMALISED,
                               atol=1e-6)
    for q in range(3):  # the CLS scope is one row of the all scope
        np.testing.assert_allclose(attnlens.attention_flow(att, query_row=q), SPEC_FLOW[q], atol=1e-12)
    np.testing.assert_allclose(attnlens.flow_metzger(att, output_token=1), SPEC_FLOW[1], atol=1e-12)
    # The same 3x3 stack as [L,H,N,N] with two heads averaging to A: identical results.
    a = np.array([A1, A2])
    two_heads = np.stack([a + 0.05 * (np.eye(3) - 1 / 3), a - 0.05 * (np.eye(3) - 1 / 3)], axis=1)
    np.testing.assert_allclose(attnlens.rollout(two_heads), SPEC_ROLLOUT, atol=1e-15)


def test_spec_13_equals_cli(cli):
    att = np.array([A1, A2])
    grid = ["--grid", "1x2"]
    got = attnlens.rollout(att, grid=(1, 2))
    np.testing.assert_array_equal(got, cli.attention("rollout", att, *grid))
    np.testing.assert_allclose(cli.attention("flow", att, "--scope", "all", *grid)[1], SPEC_FLOW, atol=1e-12)
    np.testing.assert_allclose(attnlens.attention_flow(att, scope="all"),
                               cli.attention("flow", att, "--scope", "all", *grid), atol=1e-9, rtol=0)


# (python function, keywords, CLI method, CLI options). Python defaults differ from the CLI's in one place: raw
# explains row 0 by default (the CLI writes the whole matrix unless --query-row is given).
CASES = [
    ("raw", {}, "raw", ["--query-row", "0"]),
    ("raw", {"query_row": None, "layer": 0, "fusion": "max"}, "raw", ["--layer", "0", "--fusion", "max"]),
    ("raw", {"query_row": 1, "all_layers": True, "fusion": "min", "patches_only": True, "scale": "sum"}, "raw",
     ["--query-row", "1", "--all-layers", "--fusion", "min", "--patches-only", "--scale", "sum"]),
    ("rollout", {}, "rollout", []),
    ("rollout", {"query_row": 0, "patches_only": True}, "rollout", ["--query-row", "0", "--patches-only"]),
    ("rollout", {"mode": "vit-explain-reference", "fusion": "max", "discard_ratio": 0.9, "query_row": 0,
                 "patches_only": True, "scale": "max"}, "rollout",
     ["--mode", "vit-explain-reference", "--fusion", "max", "--discard-ratio", "0.9", "--query-row", "0",
      "--patches-only", "--scale", "max"]),
    ("rollout", {"mode": "chefer", "start_layer": 1, "all_layers": True}, "rollout",
     ["--mode", "chefer", "--start-layer", "1", "--all-layers"]),
    ("rollout", {"residual": "none", "discard_ratio": 0.5, "scale": "minmax", "query_row": 2}, "rollout",
     ["--residual", "none", "--discard-ratio", "0.5", "--scale", "minmax", "--query-row", "2"]),
    ("attention_flow", {}, "flow", []),
    ("attention_flow", {"normalize": True, "patches_only": True, "query_row": 1}, "flow",
     ["--normalize", "--patches-only", "--query-row", "1"]),
    ("attention_flow", {"residual": "none", "scale": "max"}, "flow", ["--residual", "none", "--scale", "max"]),
    ("attention_flow", {"scope": "all", "threads": 2}, "flow", ["--scope", "all", "--threads", "2"]),
    ("attention_flow", {"scope": "all", "query_row": 0, "normalize": True, "patches_only": True}, "flow",
     ["--scope", "all", "--query-row", "0", "--normalize", "--patches-only"]),
    ("flow_metzger", {}, "flow-metzger", []),
    ("flow_metzger", {"form": "shapley", "output_token": 1, "patches_only": True}, "flow-metzger",
     ["--form", "shapley", "--query-row", "1", "--patches-only"]),
]
GRADIENT_CASES = [
    ("gradient_rollout", {}, "grad-rollout", []),
    ("gradient_rollout", {"discard_ratio": 0.5, "query_row": 0, "patches_only": True, "scale": "max"},
     "grad-rollout", ["--discard-ratio", "0.5", "--query-row", "0", "--patches-only", "--scale", "max"]),
    ("gradient_rollout", {"reference": True}, "grad-rollout", ["--reference"]),
    ("chefer", {}, "chefer", []),
    ("chefer", {"start_layer": 1, "query_row": 0, "patches_only": True, "scale": "minmax"}, "chefer",
     ["--start-layer", "1", "--query-row", "0", "--patches-only", "--scale", "minmax"]),
]
GRID_CASES = [  # methods that need the patch grid
    ("mean_attention_distance", {"patch_size": 16}, "distance", ["--patch-size", "16"]),
    ("mean_attention_distance", {"patch_size": 7.5, "renormalize": True}, "distance",
     ["--patch-size", "7.5", "--renormalize"]),
]
# (shape, dtype, prefix tokens, grid for the grid methods): ViT-like, head-fused float32, distilled DeiT-like,
# a rectangular grid, and text (32 tokens: no grid).
STACKS = [
    ((3, 2, 17, 17), np.float64, 1, None),
    ((4, 10, 10), np.float32, 1, (3, 3)),
    ((2, 3, 11, 11), np.float32, 2, None),
    ((2, 2, 13, 13), np.float64, 1, (3, 4)),
    ((3, 2, 32, 32), np.float32, 1, None),
]


def _cli_layout(prefix, grid):
    args = ["--prefix-tokens", str(prefix)]
    if grid is not None:
        args += ["--grid", f"{grid[0]}x{grid[1]}"]
    return args


@pytest.mark.parametrize("shape,dtype,prefix,grid", STACKS)
def test_every_method_equals_cli(cli, shape, dtype, prefix, grid):
    rng = np.random.default_rng(sum(shape))
    att = random_attention(rng, shape, sigma=2.0, dtype=dtype)
    grad = rng.normal(size=shape).astype(dtype)
    layout = {"prefix_tokens": prefix, "grid": grid}
    compared = 0
    for func, kwargs, method, options in CASES + GRADIENT_CASES:
        args = (att, grad) if method in ("grad-rollout", "chefer") else (att,)
        got = getattr(attnlens, func)(*args, **kwargs, **layout)
        want = cli.attention(method, att, *options, *_cli_layout(prefix, grid),
                             grad=grad if len(args) == 2 else None)
        tol = 1e-9 if "flow" in func else 1e-12
        assert got.dtype == np.float64 and got.shape == want.shape, (func, kwargs, got.shape, want.shape)
        np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=f"{func} {kwargs}")
        compared += 1
    n = shape[-1]
    side = int(round((n - prefix) ** 0.5))
    if grid is None and side * side != n - prefix:
        return  # text-shaped: no grid for distance and heads
    for func, kwargs, method, options in GRID_CASES:
        got = getattr(attnlens, func)(att, **kwargs, **layout)
        want = cli.attention(method, att, *options, *_cli_layout(prefix, grid))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=f"{func} {kwargs}")
    heads = attnlens.head_maps(att, layer=0, threshold=0.6, query_row=1, **layout)
    want = cli.attention("heads", att, "--layer", "0", "--threshold", "0.6", "--query-row", "1",
                         *_cli_layout(prefix, grid))
    np.testing.assert_allclose(heads.maps, want, rtol=0, atol=1e-12)
    masks = np.load(cli.last_output[:-len(".npy")] + "_masks.npy")
    np.testing.assert_array_equal(heads.masks, masks)
    assert compared == len(CASES) + len(GRADIENT_CASES)


def test_scores_grad_in_reference_mode_equals_cli(cli):
    rng = np.random.default_rng(5)
    att = random_attention(rng, (3, 2, 10, 10))
    grad, scores = rng.normal(size=att.shape), rng.normal(size=att.shape)
    got = attnlens.gradient_rollout(att, grad, reference=True, scores_grad=scores, grid=(3, 3))
    np.testing.assert_allclose(got, cli.attention("grad-rollout", att, "--reference", grad=scores), atol=1e-12)
    assert np.abs(got - attnlens.gradient_rollout(att, grad, reference=True)).max() > 1e-3  # scores_grad was used
    with pytest.raises(ValueError, match="reference=True"):
        attnlens.gradient_rollout(att, grad, scores_grad=scores)


def test_text_shaped_stack_needs_no_grid():
    rng = np.random.default_rng(1)
    att = random_attention(rng, (4, 2, 32, 32), sigma=1.5)  # a 32-token sentence: 31 is not a square
    assert attnlens.rollout(att, query_row=0).shape == (32,)
    assert attnlens.attention_flow(att).shape == (32,)
    assert attnlens.raw(att).shape == (32,)
    assert attnlens.flow_metzger(att, prefix_tokens=0).shape == (32,)
    assert attnlens.chefer(att, rng.normal(size=att.shape), query_row=0, patches_only=True).shape == (31,)
    # The flow from CLS is a max-flow: at most the source's capacity and the layer-1 cut (values in [0, 1]).
    flow = attnlens.attention_flow(att)
    assert 0 < flow.min() and flow.max() <= 1 + 1e-12
    with pytest.raises(ValueError, match="do not form a square grid"):
        attnlens.mean_attention_distance(att, patch_size=16)
    assert attnlens.mean_attention_distance(att, 16, prefix_tokens=0, grid=(4, 8)).shape == (4, 2)


def _networkx_flows(attention):
    """Abnar & Zuidema's compute_flows with networkx's Edmonds-Karp (spec 3.1): raw flows [L, N, N]."""
    nx = pytest.importorskip("networkx")
    from networkx.algorithms.flow import edmonds_karp

    layers, n = attention.shape[0], attention.shape[-1]
    mean = attention.mean(axis=1) if attention.ndim == 4 else attention
    res = mean + np.eye(n)[None]
    res = res / res.sum(axis=-1, keepdims=True)
    graph = nx.DiGraph()
    graph.add_nodes_from(range((layers + 1) * n))
    for l in range(1, layers + 1):
        for q in range(n):
            for k in range(n):
                if res[l - 1, q, k] != 0:
                    graph.add_edge(l * n + q, (l - 1) * n + k, capacity=float(res[l - 1, q, k]))
    raw = np.zeros((layers, n, n))
    for l in range(1, layers + 1):
        for q in range(n):
            for k in range(n):
                raw[l - 1, q, k] = nx.maximum_flow_value(graph, l * n + q, k, flow_func=edmonds_karp)
    return raw


@pytest.mark.parametrize("layers,heads,n,sigma", [(2, 2, 5, 1.0), (3, 1, 7, 3.0), (3, 3, 6, 2.0)])
def test_flow_equals_networkx(layers, heads, n, sigma):
    rng = np.random.default_rng(n * 10 + layers)
    att = random_attention(rng, (layers, heads, n, n), sigma=sigma)
    raw = _networkx_flows(att)
    got = attnlens.attention_flow(att, scope="all", threads=2)
    np.testing.assert_allclose(got, raw, rtol=0, atol=1e-9)
    np.testing.assert_allclose(attnlens.attention_flow(att, scope="all", normalize=True),
                               raw / raw.sum(axis=-1, keepdims=True), rtol=0, atol=1e-9)
    np.testing.assert_allclose(attnlens.attention_flow(att, query_row=n - 1), raw[-1, n - 1], rtol=0, atol=1e-9)


def test_inputs_float32_strides_torch_lists():
    rng = np.random.default_rng(3)
    att64 = random_attention(rng, (3, 2, 10, 10))
    att32 = att64.astype(np.float32)
    ref32 = attnlens.rollout(att32)
    assert ref32.dtype == np.float64
    np.testing.assert_array_equal(ref32, attnlens.rollout(att32.astype(np.float64)))  # float32 -> double exactly
    # A transposed view (keys and queries swapped twice) and a strided slice: copied, same numbers.
    strided = np.ascontiguousarray(att64.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(attnlens.rollout(strided), attnlens.rollout(att64))
    every_other = np.repeat(att64, 2, axis=0)[::2]
    assert not every_other.flags.c_contiguous
    np.testing.assert_array_equal(attnlens.attention_flow(every_other), attnlens.attention_flow(att64))
    big_endian = att64.astype(">f8")
    np.testing.assert_array_equal(attnlens.rollout(big_endian), attnlens.rollout(att64))
    np.testing.assert_array_equal(attnlens.rollout(att64.tolist()), attnlens.rollout(att64))

    class ArrayLike:
        def __array__(self, dtype=None):
            return att64

    np.testing.assert_array_equal(attnlens.rollout(ArrayLike()), attnlens.rollout(att64))
    torch = pytest.importorskip("torch")
    t = torch.tensor(att32, requires_grad=True)
    np.testing.assert_array_equal(attnlens.rollout(t), ref32)
    # The input is never modified.
    before = att64.copy()
    attnlens.rollout(att64, discard_ratio=0.5)
    np.testing.assert_array_equal(att64, before)


def test_row_sum_warning_and_strict():
    rng = np.random.default_rng(4)
    att = random_attention(rng, (2, 2, 5, 5))
    att[1, 0, 3] *= 1.5
    with pytest.warns(attnlens.AttentionWarning, match=r"rows of 'attention' do not sum to 1: .* at layer 1, head 0, "
                                                       r"row 3 .*use strict=True"):
        result = attnlens.rollout(att, grid=(2, 2))
    assert result.shape == (5, 5)
    with pytest.raises(attnlens.InputError, match="do not sum to 1"):
        attnlens.rollout(att, strict=True, grid=(2, 2))
    assert issubclass(attnlens.InputError, ValueError)


def test_results_are_fresh_arrays():
    att = random_attention(np.random.default_rng(0), (2, 5, 5))
    a, b = attnlens.rollout(att, grid=(2, 2)), attnlens.rollout(att, grid=(2, 2))
    assert a.flags.writeable and a.flags.c_contiguous and not np.shares_memory(a, b)
    a[0, 0] = 123.0  # the result owns its data
    assert b[0, 0] != 123.0


@pytest.mark.parametrize("kwargs", [{}, {"mode": "vit-explain-reference", "fusion": "max", "discard_ratio": 0.9},
                                    {"mode": "chefer", "start_layer": 1}, {"discard_ratio": 0.5, "residual": "none"}])
def test_rollout_row_equals_row_of_matrix(kwargs):
    """A query row is propagated as a vector (O(L N^2)); it equals that row of the whole product."""
    att = random_attention(np.random.default_rng(6), (4, 3, 17, 17), sigma=2.5)
    full = attnlens.rollout(att, **kwargs)
    for q in (0, 5, 16):
        np.testing.assert_allclose(attnlens.rollout(att, query_row=q, **kwargs), full[q], rtol=0, atol=1e-14)
    np.testing.assert_allclose(attnlens.rollout(att, query_row=3, patches_only=True, scale="max", **kwargs),
                               full[3, 1:] / full[3, 1:].max(), rtol=0, atol=1e-14)


def test_grad_sam_is_the_mean_of_attention_times_positive_gradient():
    """Spec 20, by hand in numpy: s_j = mean over layers, heads and query rows of A * max(0, G)."""
    rng = np.random.default_rng(9)
    att = random_attention(rng, (3, 2, 5, 5))
    grad = rng.normal(size=att.shape)
    want = (att * np.maximum(grad, 0)).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(attnlens.grad_sam(att, grad, grid=(2, 2)), want, rtol=1e-13, atol=0)
    np.testing.assert_allclose(attnlens.grad_sam(att, grad, grid=(2, 2), patches_only=True, scale="max"),
                               want[1:] / want[1:].max(), rtol=1e-13, atol=0)
    np.testing.assert_allclose(attnlens.grad_sam(att, grad, "rows", grid=(2, 2)),
                               (att * np.maximum(grad, 0)).mean(axis=(0, 1, 3)), rtol=1e-13, atol=0)
    with pytest.raises(attnlens.InputError, match="gradient stack must have the attention's shape"):
        attnlens.grad_sam(att, grad[:, :, :4, :4], grid=(2, 2))
    with pytest.raises(attnlens.InputError, match="grad-sam-axis must be columns"):
        attnlens.grad_sam(att, grad, "keys", grid=(2, 2))
