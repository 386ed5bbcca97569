#!/usr/bin/env python3
"""Scaling of a split evaluation (issue 15): the same `attnlens evaluate` of --images canvases (the default methods,
baselines and metrics on the bundled fmnist-vit) as 1 rank x 1 thread (the baseline), 1 rank x 2 threads and
2 ranks x 1 thread (`mpirun -np 2`), and as 2 job-array shards run one after the other then `attnlens merge`.
Prints images per second and the ratio to the baseline, measured in the same run, and what the merge costs per
item, the figure that bounds how far the ranks can scale.

Usage: bench/bench_ranks.py BUILD_DIR [--images 64] [--runs 1] [--scale 100]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def timed(argv):
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{r.stderr[-2000:]}")
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--scale", type=int, default=100, help="the synthetic merge has this many times the items")
    args = ap.parse_args()
    exe = os.path.join(args.build, "attnlens")
    mpirun = shutil.which("mpirun")
    with_mpi = "with MPI" in subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    base = [exe, "evaluate", "--data", "canvas", "--limit", str(args.images), "-q"]
    tmp = tempfile.mkdtemp(prefix="attnlens_ranks_")
    launcher = [mpirun, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "2"] if mpirun else []
    configs = [("1 rank x 1 thread", [], 1), ("1 rank x 2 threads", [], 2)]
    if with_mpi and mpirun:
        configs.append(("2 ranks x 1 thread (mpirun)", launcher, 1))
    results = {}
    for name, prefix, threads in configs:
        times = []
        for run in range(args.runs):
            out = os.path.join(tmp, f"{len(results)}_{run}")
            times.append(timed(prefix + base + ["--threads", str(threads), "-o", out]))
        results[name] = statistics.median(times)
    # Job-array shards one after the other (what a scheduler would run side by side), then the merge alone.
    shard_out = os.path.join(tmp, "shards")
    shard_times = [timed(base + ["--threads", "1", "--shard", f"{k}/2", "-o", shard_out]) for k in (1, 2)]
    os.remove(os.path.join(shard_out, "per_image.csv"))
    merge_seconds = statistics.median(timed([exe, "merge", "-q", shard_out]) for _ in range(3))
    per_image = json.load(open(os.path.join(shard_out, "summary.json")))["rows"]

    # The merge at scale: the same rows dealt to --scale times as many items (blocks copied under new indices, in 2
    # shards), so that the merge's cost per item shows without the start-up.
    big = os.path.join(tmp, "big")
    identity = json.load(open(os.path.join(shard_out, "run.json")))
    rows_per_item = identity["table"]["rows_per_item"]
    header, *lines = open(os.path.join(shard_out, "per_image.csv")).read().splitlines(keepends=True)
    blocks = [lines[i:i + rows_per_item] for i in range(0, len(lines), rows_per_item)]
    items = len(blocks) * args.scale
    identity["table"]["items"] = items
    for k in (1, 2):
        part = os.path.join(big, f"shard-{k}-of-2")
        os.makedirs(part)
        json.dump(identity, open(os.path.join(part, "run.json"), "w"))
        with open(os.path.join(part, "per_image.csv"), "w") as f:
            f.write(header)
            for i in range(k - 1, items, 2):
                for line in blocks[i % len(blocks)]:
                    f.write(str(i) + line[line.index(","):])
    big_seconds = timed([exe, "merge", "-q", big])

    baseline = results["1 rank x 1 thread"]
    print(f"attnlens evaluate, {args.images} canvases, bundled fmnist-vit, default methods and metrics "
          f"({len(per_image)} rows per image); wall seconds include start-up and model loading")
    print(f"{'configuration':34s} {'seconds':>8s} {'images/s':>9s} {'vs 1x1':>7s}")
    for name, seconds in results.items():
        print(f"{name:34s} {seconds:8.2f} {args.images / seconds:9.2f} {baseline / seconds:6.2f}x")
    slowest = max(shard_times)
    print(f"{'2 shards, slowest shard alone':34s} {slowest:8.2f} {args.images / slowest:9.2f} "
          f"{baseline / slowest:6.2f}x  (+ merge)")
    print(f"merge of {args.images} images from 2 shards: {merge_seconds:.3f} s "
          f"({1000 * merge_seconds / args.images:.2f} ms per image, start-up included)")
    print(f"merge of {items} synthetic images from 2 shards: {big_seconds:.2f} s "
          f"({1000 * (big_seconds - merge_seconds) / (items - args.images):.3f} ms per further image)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
