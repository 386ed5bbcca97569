#!/usr/bin/env python3
"""Speed of the attnlens Python module, every ratio measured in this one run (issue 10):

1. `import attnlens`: wall time of `python -c "import attnlens"` against `python -c pass`, median of 10 each.
2. attnlens.attention_flow on a 12-layer, 197-token stack ([12,12,197,197], a ViT-B capture's shape) against the
   same computation timed inside C++ (attnlens._attnlens._time_flow: what `attnlens attention flow` runs once the
   file's values are in memory: the float32 -> double conversion for a float32 stack, the stack check and core's
   attention_flow), for float64 (viewed without a copy) and float32 stacks. Target: at most 1.1x.
3. attnlens.attention_flow against networkx's Edmonds-Karp run as the reference (Abnar & Zuidema's compute_flows)
   runs it: one maximum_flow_value per (node, input) pair on the whole layered graph, CLS scope, 6 layers, 32
   tokens. networkx is timed on a subset of the sinks (--sinks, default 8 of 32) and scaled to all 32 (--sinks 32
   runs them all). Target: at least 10^4x.
4. attnlens.rollout against the reference's numpy `compute_joint_attention` on a 12-layer, 197-token head-mean
   stack: the CLS row (what an explanation uses; attnlens propagates one row, O(L N^2)) and the whole [L,N,N] chain
   (the reference's output; there numpy's BLAS matrix product is faster than attnlens' plain C++ one). Target: at
   least 1x.

Usage: .venv/bin/python bench/bench_python.py [--sinks K] [--repeats R]   (run with the venv that has attnlens)
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import attnlens
from attnlens import _attnlens


def softmax_stack(rng, shape, sigma):
    logits = rng.normal(0.0, sigma, size=shape)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def import_time(python, runs=10):
    """Median wall seconds of `python -c "import attnlens"` and of `python -c pass`, interleaved."""
    with_import, bare = [], []
    env = dict(os.environ)
    for _ in range(runs):
        for code, out in (("import attnlens", with_import), ("pass", bare)):
            start = time.perf_counter()
            subprocess.run([python, "-c", code], check=True, env=env)
            out.append(time.perf_counter() - start)
    return statistics.median(with_import), statistics.median(bare)


def flow_overhead(rng, repeats, dtype):
    """(python seconds, C++ seconds) for the CLS-scope flow of a [12,12,197,197] stack, interleaved."""
    att = softmax_stack(rng, (12, 12, 197, 197), 1.0).astype(dtype)
    attnlens.attention_flow(att)  # warm-up: page in the buffers once
    py, cxx = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        attnlens.attention_flow(att)
        py.append(time.perf_counter() - start)
        cxx.extend(_attnlens._time_flow(att, "cls", 1, 1))
    # Each Python call is timed right beside a C++ one, so the two see the same load: the median of the pairs'
    # ratios is the overhead, robust against the drifting load of a shared machine.
    ratio = statistics.median(p / c for p, c in zip(py, cxx))
    return statistics.median(py), statistics.median(cxx), ratio


def reference_graph(attention):
    """Abnar & Zuidema's get_adjmat + graph: head mean, + I, row-normalised; node l*N+k; edges (l,q) -> (l-1,k)."""
    import networkx as nx

    layers, n = attention.shape[0], attention.shape[-1]
    res = attention.mean(axis=1) + np.eye(n)[None]
    res = res / res.sum(axis=-1, keepdims=True)
    graph = nx.DiGraph()
    graph.add_nodes_from(range((layers + 1) * n))
    for l in range(1, layers + 1):
        for q in range(n):
            for k in range(n):
                if res[l - 1, q, k] != 0:
                    graph.add_edge(l * n + q, (l - 1) * n + k, capacity=float(res[l - 1, q, k]))
    return graph


def networkx_flow(rng, sinks, repeats):
    """(networkx seconds for all 32 sinks (scaled from `sinks`), attnlens seconds, max |diff| on the sinks run)."""
    from networkx.algorithms.flow import edmonds_karp
    import networkx as nx

    layers, n = 6, 32
    att = softmax_stack(rng, (layers, 4, n, n), 1.0)
    start = time.perf_counter()
    graph = reference_graph(att)
    source = layers * n  # node (L, CLS)
    values = [nx.maximum_flow_value(graph, source, k, flow_func=edmonds_karp) for k in range(sinks)]
    nx_seconds = (time.perf_counter() - start) * n / sinks
    ours = attnlens.attention_flow(att)
    ours_seconds = median_time(lambda: attnlens.attention_flow(att), repeats * 10)
    return nx_seconds, ours_seconds, float(np.abs(ours[:sinks] - np.array(values)).max())


def compute_joint_attention(att_mat, add_residual=True):
    """samiraabnar/attention_flow's numpy rollout, verbatim apart from the formatting."""
    if add_residual:
        residual_att = np.eye(att_mat.shape[1])[None, ...]
        aug_att_mat = att_mat + residual_att
        aug_att_mat = aug_att_mat / aug_att_mat.sum(axis=-1)[..., None]
    else:
        aug_att_mat = att_mat
    joint_attentions = np.zeros(aug_att_mat.shape)
    layers = joint_attentions.shape[0]
    joint_attentions[0] = aug_att_mat[0]
    for i in np.arange(1, layers):
        joint_attentions[i] = aug_att_mat[i].dot(joint_attentions[i - 1])
    return joint_attentions


def openblas():
    """numpy's OpenBLAS (ctypes), when it uses one: to time its matrix products on 1 thread as well."""
    import ctypes

    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if "openblas" in line and ".so" in line}
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_num_threads()
            return lib
        except (OSError, AttributeError):
            continue
    return None


def rollout_speed(rng, repeats):
    att = softmax_stack(rng, (12, 197, 197), 1.0)  # head mean, as the reference takes it
    joint = compute_joint_attention(att)
    err_row = float(np.abs(attnlens.rollout(att, query_row=0) - joint[-1, 0]).max())
    err_all = float(np.abs(attnlens.rollout(att, all_layers=True) - joint).max())
    numpy_s = median_time(lambda: compute_joint_attention(att), repeats)
    blas = openblas()
    if blas is not None:  # a busy machine can make multithreaded BLAS slower: keep numpy's better time
        threads = blas.openblas_get_num_threads()
        blas.openblas_set_num_threads(1)
        numpy_s = min(numpy_s, median_time(lambda: compute_joint_attention(att), repeats))
        blas.openblas_set_num_threads(threads)
    row_s = median_time(lambda: attnlens.rollout(att, query_row=0), repeats)
    all_s = median_time(lambda: attnlens.rollout(att, all_layers=True), repeats)
    return numpy_s, row_s, all_s, max(err_row, err_all)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sinks", type=int, default=8, help="networkx sinks to time (of 32; default 8)")
    parser.add_argument("--repeats", type=int, default=9, help="repeats per timing (default 9; the flow overhead "
                                                                "uses twice as many, interleaved)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"attnlens {attnlens.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)

    imp, bare = import_time(sys.executable)
    py, cxx, ratio = flow_overhead(rng, 2 * args.repeats, np.float64)
    py32, cxx32, ratio32 = flow_overhead(rng, 2 * args.repeats, np.float32)
    nx_s, ours_s, nx_err = networkx_flow(rng, max(1, min(32, args.sinks)), args.repeats)
    numpy_s, row_s, all_s, ro_err = rollout_speed(rng, args.repeats)

    ms = lambda s: f"{s * 1e3:.3g} ms"  # noqa: E731
    rows = [
        ("`import attnlens` (median of 10, wall)", f"{ms(imp)} (`python -c pass`: {ms(bare)}; "
                                                   f"+{ms(imp - bare)})", "<= 100 ms", imp <= 0.1),
        ("attention_flow 12x12x197 float64, Python / in-process C++ (medians; the ratio: median of the pairs')",
         f"{ms(py)} / {ms(cxx)}: {ratio:.3f}x", "<= 1.1x", ratio <= 1.1),
        ("the same from float32 (both convert to double first, as read_npy does)",
         f"{ms(py32)} / {ms(cxx32)}: {ratio32:.3f}x", "<= 1.1x", ratio32 <= 1.1),
        (f"networkx Edmonds-Karp / attnlens, CLS scope 6x32 (networkx: {min(32, args.sinks)} of 32 sinks, scaled)",
         f"{nx_s:.3g} s / {ms(ours_s)} = {nx_s / ours_s:.3g}x (max |diff| {nx_err:.1e})", ">= 1e4x",
         nx_s / ours_s >= 1e4),
        ("numpy compute_joint_attention (best of default and 1 BLAS thread) / attnlens.rollout(query_row=0), 12x197",
         f"{ms(numpy_s)} / {ms(row_s)} = {numpy_s / row_s:.2f}x", ">= 1x", numpy_s / row_s >= 1),
        ("numpy compute_joint_attention / attnlens.rollout(all_layers=True), 12x197",
         f"{ms(numpy_s)} / {ms(all_s)} = {numpy_s / all_s:.2f}x (max |diff| {ro_err:.1e})", "", None),
    ]
    print("\n| measurement | result | target | met |\n| --- | --- | --- | --- |")
    for name, result, target, met in rows:
        print(f"| {name} | {result} | {target} | {'' if met is None else 'yes' if met else 'NO'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
