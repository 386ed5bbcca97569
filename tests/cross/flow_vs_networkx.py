#!/usr/bin/python3
"""Cross-check `attnlens attention flow` against the reference computation of Abnar & Zuidema (spec 3.1), re-done
here with networkx's Edmonds-Karp exactly as attention_flow's get_adjmat/compute_flows do it: head mean, + I, row
normalisation, one maximum_flow_value per (node, input) pair, rows divided by their sums.

Usage: flow_vs_networkx.py PATH/TO/attnlens     (needs Debian's python3-numpy and python3-networkx)
Prints "N passed, M failed" and exits non-zero on any failure.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

try:
    import networkx as nx
    from networkx.algorithms.flow import edmonds_karp
except ImportError:  # pragma: no cover - CTest reports the skip
    print("networkx not installed; skipping (apt-get install python3-networkx)")
    sys.exit(0)


def reference_flows(attention):
    """attention [L,H,N,N] -> (joint raw flows [L,N,N], row-normalised flows [L,N,N]) as the reference computes."""
    layers, _, n, _ = attention.shape
    mean = attention.mean(axis=1)
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
    return raw, raw / raw.sum(axis=-1, keepdims=True)


def random_attention(rng, layers, heads, n, sigma):
    logits = rng.normal(0.0, sigma, size=(layers, heads, n, n))
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def run(binary, args):
    proc = subprocess.run([binary, "attention", "flow", *args, "--quiet"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"attnlens failed ({proc.returncode}): {proc.stderr.strip()}")


def main():
    binary = sys.argv[1]
    rng = np.random.default_rng(2024)
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for case, (layers, heads, n, sigma) in enumerate([(3, 2, 5, 1.0), (4, 3, 10, 3.0), (2, 1, 17, 2.0)]):
            attention = random_attention(rng, layers, heads, n, sigma)
            path = os.path.join(tmp, f"att{case}.npy")
            np.save(path, attention)
            # The stack is float32 on disk; compute the reference from exactly the values attnlens reads.
            raw, normalised = reference_flows(attention.astype(np.float64))
            grid = ["--grid", f"1x{n - 1}"]
            checks = []
            out = os.path.join(tmp, f"all{case}.npy")
            run(binary, [path, "--scope", "all", *grid, "-o", out])
            checks.append(("scope all raw", np.load(out), raw))
            out = os.path.join(tmp, f"alln{case}.npy")
            run(binary, [path, "--scope", "all", "--normalize", "--threads", "2", *grid, "-o", out])
            checks.append(("scope all normalised", np.load(out), normalised))
            out = os.path.join(tmp, f"cls{case}.npy")
            run(binary, [path, "--scope", "cls", "--query-row", "1", *grid, "-o", out])
            checks.append(("scope cls row 1", np.load(out), raw[-1, 1]))
            for name, got, expected in checks:
                err = float(np.max(np.abs(got - expected)))
                ok = got.shape == expected.shape and err <= 1e-9
                print(f"case {case} (L={layers}, N={n}) {name}: max |diff| = {err:.2e} {'ok' if ok else 'FAIL'}")
                passed += ok
                failed += not ok
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
