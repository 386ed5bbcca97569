#!/usr/bin/env python3
"""Start-up of the attnlens executable (issue 11), each command run 10 times beside /bin/true in one run:
median wall time, its excess over /bin/true, peak resident memory (GNU time's %M: a child forked from this Python
process would report Python's own size), the shared libraries the loader initialised and whether LibTorch or OpenCV
was among them (LD_DEBUG=libs); then `attention flow` on a 12-layer, 197-token stack end to end against the
in-process solver time.

Usage: bench/startup.py BUILD_DIR [OTHER_ATTNLENS ...]   (other binaries, e.g. an older build, are measured too)
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

RUNS = 10


def run_once(argv):
    """Wall seconds and peak RSS (MB; NaN without GNU time) of one run of argv, output discarded."""
    timed = ["/usr/bin/time", "-f", "%M"] + argv if os.path.exists("/usr/bin/time") else argv
    t0 = time.perf_counter()
    proc = subprocess.run(timed, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit("failed (%d): %s\n%s" % (proc.returncode, " ".join(argv), proc.stderr))
    lines = proc.stderr.strip().splitlines()
    rss = float(lines[-1]) / 1024.0 if timed is not argv and lines else float("nan")
    return wall, rss


def measure(argv):
    walls, rss = [], []
    for _ in range(RUNS):
        w, r = run_once(argv)
        walls.append(w)
        rss.append(r)
    return statistics.median(walls), statistics.median(rss)


def loads_libtorch(argv):
    """Whether the process maps libtorch or OpenCV, checked with LD_DEBUG=libs (what the dynamic loader loads)."""
    env = dict(os.environ, LD_DEBUG="libs")
    out = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True).stderr
    loaded = {line.split("calling init: ")[1].strip() for line in out.splitlines() if "calling init: " in line}
    heavy = sorted(os.path.basename(p) for p in loaded if "libtorch" in p or "libc10" in p or "libopencv" in p)
    return len(loaded), heavy


def softmax_stack(layers, heads, tokens, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, size=(layers, heads, tokens, tokens))
    e = np.exp(x - x.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    build = sys.argv[1]
    binaries = [os.path.join(build, "attnlens")] + sys.argv[2:]
    with tempfile.TemporaryDirectory() as tmp:
        small = os.path.join(tmp, "small.npy")
        np.save(small, softmax_stack(4, 2, 17, 1))
        big = os.path.join(tmp, "vit_b.npy")
        np.save(big, softmax_stack(12, 12, 197, 2))  # ViT-B/16 at 224: 12 layers, 12 heads, 197 tokens
        out = os.path.join(tmp, "out.npy")
        true_wall, true_rss = measure(["/bin/true"])
        print("median of %d runs; /bin/true: %.1f ms, %.1f MB\n" % (RUNS, true_wall * 1e3, true_rss))
        print("%-46s %10s %12s %9s %6s  %s" % ("command", "wall ms", "- true, ms", "RSS MB", "libs", "LibTorch/OpenCV"))
        for exe in binaries:
            print(exe)
            cases = [
                ("--version", [exe, "--version"]),
                ("--help", [exe, "--help"]),
                ("attention rollout [4,2,17,17]", [exe, "attention", "rollout", small, "-q", "-o", out]),
                ("attention flow [4,2,17,17]", [exe, "attention", "flow", small, "-q", "-o", out]),
                ("attention flow [12,12,197,197]", [exe, "attention", "flow", big, "-q", "-o", out]),
            ]
            for name, argv in cases:
                wall, rss = measure(argv)
                libs, heavy = loads_libtorch(argv)
                print("  %-44s %10.1f %12.1f %9.1f %6d  %s" % (name, wall * 1e3, (wall - true_wall) * 1e3, rss, libs,
                                                           ", ".join(heavy[:3]) + (" ..." if len(heavy) > 3 else "")
                                                           if heavy else "none"))
        solver = os.path.join(build, "flow_solver_time")
        if os.path.exists(solver):
            inproc = float(subprocess.run([solver, big, str(RUNS)], capture_output=True, text=True, check=True).stdout)
            wall, _ = measure([binaries[0], "attention", "flow", big, "-q", "-o", out])
            print("\nattention flow [12,12,197,197]: end to end %.1f ms, in-process solver %.1f ms: %.2fx (target 2x)"
                  % (wall * 1e3, inproc, wall * 1e3 / inproc))


if __name__ == "__main__":
    main()
