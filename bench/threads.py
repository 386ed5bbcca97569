#!/usr/bin/env python3
"""Threads on a shared machine (issue 12): `attnlens evaluate` on 16 canvases (blank-out and deletion) with 1 thread,
2 threads and the default, on an idle machine and while another process keeps one core busy; wall seconds, median
of --runs runs, all in one run.

Usage: bench/threads.py BUILD_DIR [--baseline OTHER_ATTNLENS] [--runs 3]
  --baseline: an attnlens built before the change (its default was every core, with OpenMP's spinning waits).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def evaluate(exe, out, threads, env):
    argv = [exe, "evaluate", "--data", "canvas", "--limit", "16", "--metrics", "blankout,deletion", "-q", "-o", out]
    if threads is not None:
        argv += ["--threads", str(threads)]
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build")
    ap.add_argument("--baseline")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    exes = [("after", os.path.join(args.build, "attnlens"))]
    if args.baseline:
        exes.insert(0, ("before", args.baseline))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for load in ("idle", "one core busy"):
            hog = None
            if load != "idle":  # a process that never sleeps, as another user's job would be
                hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                time.sleep(0.5)
            try:
                for name, exe in exes:
                    for threads in (1, 2, None):
                        times = [evaluate(exe, os.path.join(tmp, "o%d" % i), threads, env) for i in range(args.runs)]
                        rows.append((load, name, "default" if threads is None else str(threads),
                                     statistics.median(times), times))
                        print("%-14s %-7s threads %-8s %7.1f s   (%s)" % (rows[-1][0], name, rows[-1][2], rows[-1][3],
                                                                        ", ".join("%.1f" % t for t in times)),
                              flush=True)
            finally:
                if hog:
                    hog.kill()
                    hog.wait()
    for load in ("idle", "one core busy"):
        one = [r[3] for r in rows if r[0] == load and r[1] == "after" and r[2] == "1"][0]
        default = [r[3] for r in rows if r[0] == load and r[1] == "after" and r[2] == "default"][0]
        print("%s: default / 1 thread = %.2f (the default must never be slower than one thread)" % (load, default / one))


if __name__ == "__main__":
    main()
