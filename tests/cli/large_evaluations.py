#!/usr/bin/python3
"""`attnlens evaluate`, `attack fgsm` and `attack words` split over processes write exactly what one process
writes (issue 15).

On a small canvas evaluation and a text evaluation, against one process with one thread:
- `mpirun -np 2` and `-np 3` (when attnlens is built with MPI): per-item rows identical after the merge (the timing
  column aside), summaries equal to 1e-12, the report's gallery complete, one thread per rank on this machine;
- shards 1/3, 2/3, 3/3: `attnlens merge` refuses while shard 3 is missing (naming it and its items), the last shard
  merges by itself, `attnlens merge` and `evaluate --merge` give the same; a shard with other settings is refused
  and the folder it would have joined is left as it was;
- one rank killed in the middle of an MPI run: the other rank's finished items stay on disk, `merge` names the
  missing ones, and `--resume` with another rank count fills only the gap.
- `attack fgsm` (its batches dealt to the ranks and shards) and `attack words` (its texts): under `mpirun -np 2`
  and as shards 1/2, 2/2, the per-item table, the summaries and the report's pictures equal one process's;
- `prune` (two stages: head importances, then accuracies): `mpirun -np 2` equals one process; as shards, the one
  that runs first stops after its importances, and a second round with --resume finishes it, equal to one process.
Without MPI in the build, a launcher's environment is refused instead (each process would do the whole run).

Usage: large_evaluations.py PATH/TO/attnlens. Prints "N passed, M failed"; exit status 1 on a failure.
"""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

binary = sys.argv[1]
tmp = tempfile.mkdtemp(prefix="attnlens_large_")
passed = failed = 0

IMAGES = ["evaluate", "--data", "canvas", "--limit", "7", "--methods", "raw,rollout,chefer", "--gallery", "3", "-q"]
TEXTS = ["evaluate", "--text", "--limit", "5", "--methods", "rollout,attattr", "-q"]
# Batches of 2 images: 3 units for 5 images, so that two ranks or shards get different numbers of them.
FGSM = ["attack", "fgsm", "--data", "canvas", "--limit", "5", "--batch", "2", "--mask-method", "raw,rollout",
        "--max-iter", "4", "--eps", "0.02", "--save", "3", "-q"]
PRUNE = ["prune", "--limit", "6", "--examples", "4", "--steps", "2", "--batch", "2", "-q"]
WORDS = ["attack", "words", "--limit", "5", "--methods", "raw,attattr,random", "--k", "2", "--steps", "2", "-q"]


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {name}")
    else:
        failed += 1
        print(f"FAIL  {name} {detail}")


def run(args, launcher=(), env=None):
    return subprocess.run(list(launcher) + [binary] + args, capture_output=True, text=True, env=env, timeout=600)


def rows(path):
    """The per-item table without the timing column: what must be identical."""
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    column = table[0].index("milliseconds")
    return [r[:column] + r[column + 1:] for r in table]


def close(a, b, tol=1e-12):
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= tol * max(1.0, abs(a))
    return a == b


def summary_numbers(folder):
    s = json.load(open(os.path.join(folder, "summary.json")))
    for row in s["rows"]:
        row.pop("milliseconds", None)  # the cost column: timing, not a result
    return {"rows": s["rows"], "accuracy": s["accuracy"], "run": s["run"]}


def same_as(reference, folder, table, name):
    check(f"{name}: {table} rows identical to one process (timing aside)",
          os.path.exists(os.path.join(folder, table)) and rows(os.path.join(reference, table)) ==
          rows(os.path.join(folder, table)))
    check(f"{name}: summary equal to one process to 1e-12",
          close(summary_numbers(reference), summary_numbers(folder)))
    page = open(os.path.join(folder, "report.html")).read()
    want = open(os.path.join(reference, "report.html")).read().count("data:image/png")
    check(f"{name}: report.html with the gallery of one process ({want} pictures)",
          page.count("data:image/png") == want, f"{page.count('data:image/png')} pictures")


# One process, one thread: the reference.
ref_images, ref_texts = os.path.join(tmp, "one_images"), os.path.join(tmp, "one_texts")
r = run(IMAGES + ["--threads", "1", "-o", ref_images])
check("one process: images", r.returncode == 0, r.stderr)
r = run(TEXTS + ["--threads", "1", "-o", ref_texts])
check("one process: texts", r.returncode == 0, r.stderr)

version = run(["--version"]).stdout
mpirun = shutil.which("mpirun")
with_mpi = "with MPI" in version
if with_mpi and mpirun is None:
    check("attnlens is built with MPI, so mpirun (openmpi-bin) must be there", False)
if with_mpi and mpirun:
    for n in (2, 3):
        launcher = [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", str(n)]
        for kind, args, reference, table in (("images", IMAGES, ref_images, "per_image.csv"),
                                             ("texts", TEXTS, ref_texts, "per_text.csv")):
            out = os.path.join(tmp, f"mpi{n}_{kind}")
            r = run(args + ["-o", out], launcher)
            check(f"mpirun -np {n} {kind}: exit 0", r.returncode == 0, r.stderr[-2000:])
            if r.returncode != 0:
                continue
            same_as(reference, out, table, f"mpirun -np {n} {kind}")
            check(f"mpirun -np {n} {kind}: one part per rank",
                  all(os.path.isdir(os.path.join(out, f"shard-{k}-of-{n}")) for k in range(1, n + 1)))
            threads = json.load(open(os.path.join(out, "summary.json")))["threads"]
            check(f"mpirun -np {n} {kind}: threads per rank default to the cores shared among the ranks",
                  threads == max(1, (os.cpu_count() or 1) // n) or threads == 1, f"threads {threads}")
else:
    # A build without MPI under a launcher: refused, not n copies of the whole run.
    env = dict(os.environ, OMPI_COMM_WORLD_SIZE="2", OMPI_COMM_WORLD_RANK="0")
    r = run(IMAGES + ["-o", os.path.join(tmp, "nompi")], env=env)
    check("without MPI, a launcher's 2 processes are refused (exit 2)",
          r.returncode == 2 and "built without MPI" in r.stderr, r.stderr)

# Shards of a job array, then merge.
for kind, args, reference, table in (("images", IMAGES, ref_images, "per_image.csv"),
                                     ("texts", TEXTS, ref_texts, "per_text.csv")):
    out = os.path.join(tmp, f"shards_{kind}")
    for k in (1, 2):
        r = run(args + ["--threads", "1", "--shard", f"{k}/3", "-o", out])
        check(f"{kind} shard {k}/3: exit 0", r.returncode == 0, r.stderr)
    check(f"{kind}: no merged table while a shard is missing", not os.path.exists(os.path.join(out, table)))
    r = run(["merge", out, "-q"])
    missing = "2, 5" if kind == "images" else "2"
    check(f"{kind}: merge without shard 3 refused, naming it and its items",
          r.returncode == 2 and "shard 3 of 3 has no folder" in r.stderr and f"missing ({missing})" in r.stderr,
          r.stderr)
    r = run(args + ["--threads", "1", "--shard", "3/3", "-o", out])
    check(f"{kind} shard 3/3: exit 0, the last shard merges", r.returncode == 0 and
          os.path.exists(os.path.join(out, table)), r.stderr)
    same_as(reference, out, table, f"{kind} shards 1-3 of 3")
    os.remove(os.path.join(out, table))
    r = run(["merge", out, "-q"])
    check(f"{kind}: attnlens merge exit 0", r.returncode == 0, r.stderr)
    same_as(reference, out, table, f"{kind} attnlens merge")
    r = run(["evaluate", "--merge", "-q", "-o", out])
    check(f"{kind}: evaluate --merge exit 0", r.returncode == 0, r.stderr)
    same_as(reference, out, table, f"{kind} evaluate --merge")


# The attacks: one process, then mpirun -np 2 and shards 1/2, 2/2.
def same_files(reference, folder, files, name):
    for f in files:
        a, b = os.path.join(reference, f), os.path.join(folder, f)
        same = os.path.exists(b) and open(a, "rb").read() == open(b, "rb").read()
        if f.endswith(".json") and os.path.exists(b):
            ja, jb = json.load(open(a)), json.load(open(b))
            for j in (ja, jb):
                j.pop("parts", None), j.pop("threads", None)
            same = ja == jb
        check(f"{name}: {f} equal to one process", same)


ATTACKS = (("fgsm", FGSM, ["fgsm.csv", "fgsm_summary.csv", "fgsm.json", "report.html",
                           "adversarial_2_rollout_outside.png", "mask_2_-_random.png"]),
           ("words", WORDS, ["attack_words_per_text.csv", "attack_words.csv", "attack_words.json",
                             "attack_words.svg"]))
for kind, args, files in ATTACKS:
    reference = os.path.join(tmp, f"one_{kind}")
    r = run(args + ["--threads", "1", "-o", reference])
    check(f"one process: {kind}", r.returncode == 0, r.stderr)
    if with_mpi and mpirun:
        out = os.path.join(tmp, f"mpi2_{kind}")
        r = run(args + ["-o", out], [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "2"])
        check(f"mpirun -np 2 {kind}: exit 0", r.returncode == 0, r.stderr[-2000:])
        same_files(reference, out, files, f"mpirun -np 2 {kind}")
    out = os.path.join(tmp, f"shards_{kind}")
    r = run(args + ["--threads", "1", "--shard", "2/2", "-o", out])
    check(f"{kind} shard 2/2: exit 0, nothing merged yet", r.returncode == 0 and
          not os.path.exists(os.path.join(out, files[0])), r.stderr)
    r = run(["merge", out, "-q"])
    check(f"{kind}: merge without shard 1 refused, naming it",
          r.returncode == 2 and "shard 1 of 2 has no folder" in r.stderr, r.stderr)
    r = run(args + ["--threads", "1", "--shard", "1/2", "-o", out])
    check(f"{kind} shard 1/2: exit 0, the last shard merges", r.returncode == 0, r.stderr)
    same_files(reference, out, files, f"{kind} shards 1-2 of 2")

PRUNE_FILES = ["importance/prune_importance.csv", "prune_per_text.csv", "prune.csv", "prune.json",
               "prune.svg", "importance_attattr.npy"]
reference = os.path.join(tmp, "one_prune")
r = run(PRUNE + ["--threads", "1", "-o", reference])
check("one process: prune", r.returncode == 0, r.stderr)
if with_mpi and mpirun:
    out = os.path.join(tmp, "mpi2_prune")
    r = run(PRUNE + ["-o", out], [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "2"])
    check("mpirun -np 2 prune: exit 0", r.returncode == 0, r.stderr[-2000:])
    same_files(reference, out, PRUNE_FILES, "mpirun -np 2 prune")
out = os.path.join(tmp, "shards_prune")
r = subprocess.run([binary] + PRUNE[:-1] + ["--threads", "1", "--shard", "2/2", "-o", out], capture_output=True,
                   text=True)
check("prune shard 2/2 first: exit 0, stops after its importances, saying to run again with --resume",
      r.returncode == 0 and "--resume" in r.stdout and
      os.path.exists(os.path.join(out, "importance", "shard-2-of-2", "prune_importance.csv")) and
      not os.path.exists(os.path.join(out, "shard-2-of-2")), r.stdout + r.stderr)
r = run(PRUNE + ["--threads", "1", "--shard", "1/2", "-o", out])
check("prune shard 1/2: exit 0, all importances there, its accuracies written",
      r.returncode == 0 and os.path.exists(os.path.join(out, "shard-1-of-2", "prune_per_text.csv")) and
      not os.path.exists(os.path.join(out, "prune.csv")), r.stderr)
r = run(PRUNE + ["--threads", "1", "--shard", "2/2", "--resume", "-o", out])
check("prune shard 2/2 again with --resume: exit 0, merges", r.returncode == 0, r.stderr)
same_files(reference, out, PRUNE_FILES, "prune shards 1-2 of 2 in two rounds")

# A shard of another run (other settings) into the same folder: refused before it touches the folder.
out = os.path.join(tmp, "shards_images")
before = open(os.path.join(out, "shard-2-of-3", "per_image.csv")).read()
r = run(IMAGES + ["--threads", "1", "--seed", "1", "--shard", "2/3", "-o", out])
check("a shard with other settings: exit 2, naming the run it does not belong to",
      r.returncode == 2 and "another run" in r.stderr, r.stderr)
check("  and the shard it would have replaced is untouched",
      open(os.path.join(out, "shard-2-of-3", "per_image.csv")).read() == before)
foreign = os.path.join(tmp, "foreign")
r = run(IMAGES + ["--threads", "1", "--seed", "1", "--shard", "2/3", "-o", foreign])
shutil.rmtree(os.path.join(out, "shard-2-of-3"))
shutil.copytree(os.path.join(foreign, "shard-2-of-3"), os.path.join(out, "shard-2-of-3"))
os.remove(os.path.join(out, "run.json"))
os.remove(os.path.join(out, "per_image.csv"))
r = run(["merge", out, "-q"])
check("merge with a foreign shard copied in: exit 2, naming it",
      r.returncode == 2 and "shard-2-of-3" in r.stderr and "another run" in r.stderr, r.stderr)
r = run(IMAGES + ["--shard", "0/3", "-o", os.path.join(tmp, "bad")])
check("--shard 0/3: exit 2", r.returncode == 2 and "1 <= K <= N" in r.stderr, r.stderr)


def rank_pid(out, rank):
    """The pid of the attnlens process of MPI rank `rank` writing into `out`."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"attnlens") and out.encode() in cmd and \
                f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
            return int(pid)
    return None


def complete_items(table, rows_per_item):
    if not os.path.exists(table):
        return 0
    lines = open(table).read().count("\n") - 1
    return max(0, lines // rows_per_item)


if with_mpi and mpirun:
    out = os.path.join(tmp, "killed")
    launcher = [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "2"]
    job = subprocess.Popen(launcher + [binary] + IMAGES + ["--threads", "1", "-o", out], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    part = os.path.join(out, "shard-2-of-2", "per_image.csv")
    rows_per_item = 6  # raw, rollout, chefer, random, centre, blankout
    deadline = time.time() + 120
    while time.time() < deadline and complete_items(part, rows_per_item) < 1 and job.poll() is None:
        time.sleep(0.02)
    pid = rank_pid(out, 1)
    killed = pid is not None and job.poll() is None
    if killed:
        os.kill(pid, signal.SIGKILL)
    _, err = job.communicate(timeout=120)
    check("rank 1 killed after its first item", killed and complete_items(part, rows_per_item) < 3,
          f"pid {pid}, rc {job.returncode}")
    check("  the job exits non-zero", job.returncode != 0, err[-500:])
    kept = complete_items(part, rows_per_item) + complete_items(os.path.join(out, "shard-1-of-2", "per_image.csv"),
                                                                rows_per_item)
    check("  the finished items stay on disk", kept >= 1, f"{kept} items")
    r = run(["merge", out, "-q"])
    check("  merge names the missing items and the incomplete shard",
          r.returncode == 2 and "items are missing" in r.stderr and "shard 2 of 2 lacks" in r.stderr, r.stderr)
    # Continue at 3 ranks: only the gap is computed, and the result is one process's.
    r = run(IMAGES + ["--resume", "-o", out], [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "3"])
    check("--resume at 3 ranks after 2: exit 0", r.returncode == 0, r.stderr[-2000:])
    if r.returncode == 0:
        same_as(ref_images, out, "per_image.csv", "killed, resumed at 3 ranks")
        recomputed = sum(complete_items(os.path.join(out, f"shard-{k}-of-3", "per_image.csv"), rows_per_item)
                         for k in (1, 2, 3))
        check("  only the missing items were computed again", recomputed == 7 - kept, f"{recomputed} vs {7 - kept}")

shutil.rmtree(tmp, ignore_errors=True)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
