#!/usr/bin/env bash
# End-to-end tests of the attnlens executable: outputs (shape, values, formats), exit codes, and that a failing run
# leaves no output file. Run by CTest with ATTNLENS=<path to the binary>; uses /usr/bin/python3 with NumPy.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/harness.sh"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# ok NAME ARGS...: expects exit code 0.
ok() {
  local name=$1
  shift
  run "$@"
  if [ "$RC" -eq 0 ]; then pass "$name"; else fail "$name (exit $RC)" "$(cat "$T/stderr")"; fi
}

# ok_cmd NAME COMMAND...: like ok for an arbitrary command (env, cd, ...), output in $T/stdout, $T/stderr.
ok_cmd() {
  local name=$1
  shift
  set +e
  "$@" >"$T/stdout" 2>"$T/stderr"
  RC=$?
  set -e
  if [ "$RC" -eq 0 ]; then pass "$name"; else fail "$name (exit $RC)" "$(cat "$T/stderr")"; fi
}

# err NAME OUTPUT ARGS...: expects exit code 2, exactly one stderr line "attnlens: error: ...", and OUTPUT (and any
# other file in its folder) absent afterwards.
err_count=0
err() {
  local name=$1 out=$2
  shift 2
  run "$@"
  local dir problems=""
  dir=$(dirname "$out")
  [ "$RC" -eq 2 ] || problems+="exit code $RC, expected 2; "
  [ "$(wc -l <"$T/stderr")" -eq 1 ] || problems+="stderr has $(wc -l <"$T/stderr") lines; "
  head -n 1 "$T/stderr" | grep -q '^attnlens: error: ' || problems+="no 'attnlens: error:' line; "
  [ ! -e "$out" ] || problems+="$out was written; "
  if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then problems+="files left in $dir: $(ls -A "$dir" | tr '\n' ' '); "; fi
  if [ -z "$problems" ]; then pass "$name"; else fail "$name: $problems" "$(cat "$T/stderr")"; fi
}
# newdir: sets D to a fresh, not yet existing output folder for an error case.
newdir() {
  err_count=$((err_count + 1))
  D=$T/err$err_count
}

# pycheck NAME CODE: runs Python CODE (with helpers from $T/chk.py, cwd $T); passes if it exits 0.
pycheck() {
  local name=$1 code=$2
  if (cd "$T" && "$PY" -c "from chk import *
$code") >"$T/py.log" 2>&1; then
    pass "$name"
  else
    fail "$name" "$(cat "$T/py.log")"
  fi
}

# ---------------------------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------------------------
cat >"$T/chk.py" <<'EOF'
import csv, json, math
import numpy as np

def L(path):
    return np.load(path)

def close(a, b, tol=1e-9, what=""):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{what} shape {a.shape} != {b.shape}"
    assert np.allclose(a, b, rtol=0, atol=tol), f"{what} values differ:\n{a}\nexpected\n{b}"

def shape(path, expected):
    a = L(path)
    assert a.dtype == np.float64, a.dtype
    assert a.shape == tuple(expected), f"{path}: shape {a.shape} != {tuple(expected)}"
    return a

def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]

def att(path):
    return np.load(path).astype(np.float64)

def fused(a, how="mean"):
    return {"mean": a.mean(1), "max": a.max(1), "min": a.min(1)}[how] if a.ndim == 4 else a

def abnar_rollout(a):
    m = fused(a)
    n = m.shape[-1]
    joint = []
    j = np.eye(n)
    for l in range(m.shape[0]):
        r = m[l] + np.eye(n)
        r = r / r.sum(-1, keepdims=True)
        j = r @ j
        joint.append(j)
    return np.array(joint)

def vit_explain(a, fusion, ratio, prefix=1):
    f_all = fused(a, fusion)
    n = f_all.shape[-1]
    r = np.eye(n)
    for l in range(f_all.shape[0]):
        f = f_all[l].copy()
        flat = f.reshape(-1)
        k = int(n * n * ratio)
        idx = np.argsort(flat, kind="stable")[:k]
        idx = idx[idx != 0]
        flat[idx] = 0
        a2 = (f + np.eye(n)) / 2
        a2 = a2 / a2.sum(-1)[None, :]  # the reference's column-wise quirk
        r = a2 @ r
    m = r[0, prefix:]
    return m / m.max()

def mad(a, prefix, patch, renorm):
    n = a.shape[-1]
    g = int(round(math.sqrt(n - prefix)))
    k = np.arange(g * g)
    pos = np.stack([k // g, k % g], 1).astype(float)
    d = patch * np.sqrt(((pos[:, None] - pos[None]) ** 2).sum(-1))
    p = a[:, :, prefix:, prefix:]
    if renorm:
        p = p / p.sum(-1, keepdims=True)
    return (p * d).sum(-1).mean(-1)

def dino_mask(v, th):
    idx = np.argsort(v, kind="stable")
    c = np.cumsum(v[idx] / v.sum())
    m = np.zeros_like(v)
    m[idx] = (c > 1 - th).astype(float)
    return m
EOF

(cd "$T" && "$PY" - <<'EOF'
import numpy as np
rng = np.random.default_rng(7)

def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)

good = softmax(rng.normal(0, 1.5, size=(3, 2, 5, 5)))  # L=3, H=2, N=5 = CLS + 2x2
np.save("good4.npy", good.astype(np.float32))
np.save("good3.npy", softmax(rng.normal(0, 1.5, size=(3, 5, 5))))  # head-fused, float64
np.save("deit2.npy", softmax(rng.normal(0, 1.5, size=(2, 2, 6, 6))).astype(np.float32))  # 2 prefix + 2x2

A1 = np.array([[.6, .3, .1], [.2, .5, .3], [.1, .1, .8]])
A2 = np.array([[.2, .7, .1], [.3, .3, .4], [.5, .25, .25]])
np.save("spec3.npy", np.stack([A1, A2]))  # [2,3,3] head mean of the spec's test vector
D = 0.05 * np.array([[1, -1, 0], [0, 1, -1], [-1, 0, 1]])
np.save("spec4.npy", np.stack([np.stack([A1 + D, A1 - D]), np.stack([A2 + D, A2 - D])]))  # 2 heads, same mean

raw = open("good4.npy", "rb").read()
open("truncated.npy", "wb").write(raw[: len(raw) - 17])
open("text.npy", "w").write("this is not a numpy file\n")
np.save("int64.npy", np.ones((1, 1, 5, 5), dtype=np.int64))
np.save("fortran.npy", np.asfortranarray(good))
np.save("rank2.npy", good[0, 0])
np.save("nonsquare.npy", np.full((2, 3, 4, 5), 0.2))
np.save("nogrid.npy", softmax(rng.normal(size=(1, 1, 4, 4))))  # N - 1 = 3 patches: no square grid
for name, value in [("nan", np.nan), ("inf", np.inf), ("negative", -0.01)]:
    b = good.copy()
    b[1, 0, 2, 3] = value
    np.save(name + ".npy", b)
b = good.copy()
b[2, 1, 3] *= 1.2  # layer 2, head 1, row 3 sums to 1.2
np.save("badrows.npy", b)
EOF
)

G4=$T/good4.npy
O=$T/out
mkdir -p "$O"

# ---------------------------------------------------------------------------------------------------------------
# General
# ---------------------------------------------------------------------------------------------------------------
ok "--version exits 0" --version
pycheck "--version prints the version" "assert open('stdout').read().startswith('attnlens '), open('stdout').read()"
cp "$T/stdout" "$T/version.txt"
ok "--help exits 0" --help
pycheck "--help mentions every method" "
h = open('stdout').read()
for m in ['attention', 'demo', 'raw', 'rollout', 'flow', 'flow-metzger', 'distance', 'heads']:
    assert m in h, m"
ok "attention --help exits 0" attention --help
for m in raw rollout flow flow-metzger distance heads; do
  ok "attention $m --help exits 0" attention "$m" --help
  pycheck "attention $m --help explains options with defaults" "
h = open('stdout').read()
assert 'default' in h and '--output' in h and '--prefix-tokens' in h and '--query-row' in h, h"
done
ok "demo --help exits 0" demo --help

# ---------------------------------------------------------------------------------------------------------------
# raw
# ---------------------------------------------------------------------------------------------------------------
ok "raw: last layer, mean fusion" attention raw "$G4" -o "$O/raw.npy"
pycheck "raw: [N,N] = head mean of the last layer" "close(shape('out/raw.npy', [5, 5]), att('good4.npy')[-1].mean(0))"
pycheck "raw: 'wrote' line" "assert open('stdout').read().startswith('wrote '), open('stdout').read()"
ok "raw: --fusion max --layer 0" attention raw "$G4" --fusion max --layer 0 -o "$O/raw_max0.npy"
pycheck "raw: max fusion of layer 0" "close(shape('out/raw_max0.npy', [5, 5]), att('good4.npy')[0].max(0))"
ok "raw: --fusion min --layer -2" attention raw "$G4" --fusion min --layer -2 -o "$O/raw_min.npy"
pycheck "raw: negative layer counts from the end" "close(L('out/raw_min.npy'), att('good4.npy')[1].min(0))"
ok "raw: --all-layers" attention raw "$G4" --all-layers -o "$O/raw_all.npy"
pycheck "raw: --all-layers gives [L,N,N]" "close(shape('out/raw_all.npy', [3, 5, 5]), att('good4.npy').mean(1))"
ok "raw: explicit --query-row 2" attention raw "$G4" --query-row 2 -o "$O/raw_q2.npy"
pycheck "raw: explicit --query-row selects the row" "close(shape('out/raw_q2.npy', [5]), att('good4.npy')[-1].mean(0)[2])"
ok "raw: --query-row 0 --all-layers" attention raw "$G4" --query-row 0 --all-layers -o "$O/raw_q0all.npy"
pycheck "raw: row of every layer [L,N]" "close(shape('out/raw_q0all.npy', [3, 5]), att('good4.npy').mean(1)[:, 0])"
ok "raw: --patches-only" attention raw "$G4" --query-row 0 --patches-only -o "$O/raw_p.npy"
pycheck "raw: --patches-only drops the CLS column" "close(shape('out/raw_p.npy', [4]), att('good4.npy')[-1].mean(0)[0, 1:])"
ok "raw: --patches-only on matrices" attention raw "$G4" --patches-only -o "$O/raw_pm.npy"
pycheck "raw: --patches-only keeps all query rows" "close(shape('out/raw_pm.npy', [5, 4]), att('good4.npy')[-1].mean(0)[:, 1:])"
for s in max minmax sum; do
  ok "raw: --scale $s" attention raw "$G4" --query-row 0 --patches-only --scale "$s" -o "$O/raw_s_$s.npy"
done
pycheck "raw: --scale max/minmax/sum" "
v = att('good4.npy')[-1].mean(0)[0, 1:]
close(L('out/raw_s_max.npy'), v / v.max())
close(L('out/raw_s_minmax.npy'), (v - v.min()) / (v.max() - v.min()))
close(L('out/raw_s_sum.npy'), v / v.sum())"
ok "raw: head-fused [L,N,N] float64 input" attention raw "$T/good3.npy" --layer 1 -o "$O/raw3.npy"
pycheck "raw: fused input read as heads=1" "close(L('out/raw3.npy'), np.load('good3.npy')[1])"
ok "raw: CSV output" attention raw "$G4" -o "$O/raw.csv"
pycheck "raw: CSV parses and matches" "
head, rows = read_csv('out/raw.csv')
assert len(head) == 6 and len(rows) == 5, (head, len(rows))
close(np.array([[float(x) for x in r[1:]] for r in rows]), L('out/raw.npy'), 1e-12)"
ok "raw: JSON output" attention raw "$G4" --query-row 1 -o "$O/raw.json"
pycheck "raw: JSON parses and matches" "
j = json.load(open('out/raw.json'))
assert j['shape'] == [5] and j['dims'] == ['key'], j
close(j['data'], att('good4.npy')[-1].mean(0)[1], 1e-12)"
ok "raw: --quiet prints nothing" attention raw "$G4" --quiet -o "$O/raw_quiet.npy"
pycheck "raw: --quiet stdout empty" "assert open('stdout').read() == ''"
ok "raw: 2 prefix tokens (distilled DeiT)" attention raw "$T/deit2.npy" --prefix-tokens 2 --query-row 1 --patches-only -o "$O/deit.npy"
pycheck "raw: --prefix-tokens 2 drops two columns" "close(shape('out/deit.npy', [4]), att('deit2.npy')[-1].mean(0)[1, 2:])"

# ---------------------------------------------------------------------------------------------------------------
# rollout
# ---------------------------------------------------------------------------------------------------------------
SPEC_ROLLOUT="[[.5175,.355,.1275],[.195,.52,.285],[.24375,.1625,.59375]]"
ok "rollout: spec vector (fused input)" attention rollout "$T/spec3.npy" --grid 1x2 -o "$O/ro_spec3.npy"
pycheck "rollout: spec layer-2 rollout" "close(shape('out/ro_spec3.npy', [3, 3]), $SPEC_ROLLOUT, 1e-12)"
ok "rollout: spec vector (2 heads)" attention rollout "$T/spec4.npy" --grid 1x2 -o "$O/ro_spec4.npy"
pycheck "rollout: head mean then rollout" "close(L('out/ro_spec4.npy'), $SPEC_ROLLOUT, 1e-12)"
ok "rollout: abnar CLS row" attention rollout "$G4" --query-row 0 -o "$O/ro_cls.npy"
pycheck "rollout: CLS row sums to 1 and matches numpy" "
r = shape('out/ro_cls.npy', [5])
assert abs(r.sum() - 1) < 1e-9, r.sum()
close(r, abnar_rollout(att('good4.npy'))[-1][0])"
ok "rollout: --all-layers" attention rollout "$G4" --all-layers -o "$O/ro_all.npy"
pycheck "rollout: all joint matrices [L,N,N]" "close(shape('out/ro_all.npy', [3, 5, 5]), abnar_rollout(att('good4.npy')))"
ok "rollout: --start-layer 1 --all-layers" attention rollout "$G4" --start-layer 1 --all-layers -o "$O/ro_s1.npy"
pycheck "rollout: --start-layer 1 gives [L-1,N,N]" "close(shape('out/ro_s1.npy', [2, 5, 5]), abnar_rollout(att('good4.npy')[1:]))"
ok "rollout: --all-layers --query-row 0 CSV" attention rollout "$G4" --all-layers --query-row 0 -o "$O/ro_rows.csv"
pycheck "rollout: [L,N] CSV" "
head, rows = read_csv('out/ro_rows.csv')
assert head[0] == 'layer' and len(rows) == 3 and len(head) == 6, (head, rows)
close(np.array([[float(x) for x in r[1:]] for r in rows]), abnar_rollout(att('good4.npy'))[:, 0], 1e-12)"
ok "rollout: vit-explain reference" attention rollout "$G4" --mode vit-explain-reference --fusion max \
  --discard-ratio 0.9 --query-row 0 --patches-only --scale max -o "$O/ro_vit.npy"
pycheck "rollout: vit-explain reference matches numpy port" "
r = shape('out/ro_vit.npy', [4])
assert abs(r.max() - 1) < 1e-12
close(r, vit_explain(att('good4.npy'), 'max', 0.9), 1e-9)"
ok "rollout: chefer mode" attention rollout "$G4" --mode chefer -o "$O/ro_chefer.npy"
pycheck "rollout: chefer == abnar with mean fusion" "close(L('out/ro_chefer.npy'), abnar_rollout(att('good4.npy'))[-1], 1e-12)"

# ---------------------------------------------------------------------------------------------------------------
# flow (spec test vector: N=3, L=2, --grid 1x2 since 2 patches are no square)
# ---------------------------------------------------------------------------------------------------------------
ok "flow: cls on the spec vector" attention flow "$T/spec3.npy" --grid 1x2 -o "$O/flow0.npy"
pycheck "flow: raw max-flows from node (2,0)" "close(shape('out/flow0.npy', [3]), [.75, .55, .25], 1e-9)"
ok "flow: --query-row 1" attention flow "$T/spec3.npy" --grid 1x2 --query-row 1 -o "$O/flow1.npy"
ok "flow: --query-row 2" attention flow "$T/spec3.npy" --grid 1x2 --query-row 2 -o "$O/flow2.npy"
pycheck "flow: max-flows from nodes (2,1), (2,2)" "
close(L('out/flow1.npy'), [.3, .85, .4], 1e-9)
close(L('out/flow2.npy'), [.4, .325, .8], 1e-9)"
ok "flow: --normalize" attention flow "$T/spec4.npy" --grid 1x2 --normalize -o "$O/flow0n.npy"
pycheck "flow: normalised row 0 (2-head input)" "close(L('out/flow0n.npy'), [.483871, .354839, .161290], 1e-6)"
ok "flow: --normalize --patches-only" attention flow "$T/spec3.npy" --grid 1x2 --normalize --patches-only -o "$O/flow0np.npy"
pycheck "flow: normalised over all N, then prefix dropped" "close(shape('out/flow0np.npy', [2]), [.354839, .161290], 1e-6)"
ok "flow: --scope all" attention flow "$T/spec3.npy" --grid 1x2 --scope all -o "$O/flow_all.npy"
pycheck "flow: --scope all [L,N,N]" "
f = shape('out/flow_all.npy', [2, 3, 3])
A1 = np.load('spec3.npy')[0]
close(f[0], 0.5 * A1 + 0.5 * np.eye(3), 1e-9, 'layer 1')
close(f[1], [[.75, .55, .25], [.3, .85, .4], [.4, .325, .8]], 1e-9, 'layer 2')"
pycheck "flow: no progress bar when stderr is not a terminal" "assert open('stderr').read() == '', open('stderr').read()"
ok "flow: --scope all --normalize --threads 0 (JSON)" attention flow "$T/spec3.npy" --grid 1x2 --scope all --normalize --threads 0 -o "$O/flow_alln.json"
pycheck "flow: normalised rows" "
j = json.load(open('out/flow_alln.json'))
assert j['dims'] == ['layer', 'query', 'key'], j['dims']
close(np.array(j['data'])[1], [[.483871, .354839, .161290], [.193548, .548387, .258065], [.262295, .213115, .524590]], 1e-6)"
ok "flow: --scope all, 1 thread" attention flow "$G4" --scope all --threads 1 -o "$O/fa1.npy"
ok "flow: --scope all, 3 threads" attention flow "$G4" --scope all --threads 3 -o "$O/fa3.npy"
pycheck "flow: thread count does not change the result" "
a = shape('out/fa1.npy', [3, 5, 5])
close(L('out/fa3.npy'), a, 1e-12)"
ok "flow: cls equals row of --scope all" attention flow "$G4" --query-row 3 -o "$O/fc3.npy"
pycheck "flow: cls == all[L-1][q]" "close(L('out/fc3.npy'), L('out/fa1.npy')[-1][3], 1e-9)"
ok "flow: --residual none" attention flow "$T/spec3.npy" --grid 1x2 --residual none -o "$O/flow_none.npy"
pycheck "flow: --residual none shape" "
f = shape('out/flow_none.npy', [3])
assert (f >= -1e-12).all() and (f <= 1 + 1e-9).all(), f"

# ---------------------------------------------------------------------------------------------------------------
# flow-metzger
# ---------------------------------------------------------------------------------------------------------------
ok "flow-metzger: per-token on the spec vector" attention flow-metzger "$T/spec3.npy" --grid 1x2 -o "$O/mz.npy"
# Reversing every edge and swapping source and sink keeps max-flow values: per-token == Abnar's flow from (L, q).
pycheck "flow-metzger: per-token == reversed-graph flow" "close(shape('out/mz.npy', [3]), [.75, .55, .25], 1e-9)"
ok "flow-metzger: --query-row 1 --patches-only" attention flow-metzger "$T/spec3.npy" --grid 1x2 --query-row 1 --patches-only -o "$O/mz1.npy"
pycheck "flow-metzger: output node 1, patches" "close(shape('out/mz1.npy', [2]), [.85, .4], 1e-9)"
ok "flow-metzger: shapley" attention flow-metzger "$T/spec3.npy" --grid 1x2 --form shapley -o "$O/mzs.npy"
pycheck "flow-metzger: shapley scores sum to the total flow (1)" "
s = shape('out/mzs.npy', [3])
assert (s >= -1e-12).all() and abs(s.sum() - 1) < 1e-9, s"

# ---------------------------------------------------------------------------------------------------------------
# distance
# ---------------------------------------------------------------------------------------------------------------
ok "distance: --patch-size 16" attention distance "$G4" --patch-size 16 -o "$O/dist.npy"
pycheck "distance: [L,H] matches the reference formula" "close(shape('out/dist.npy', [3, 2]), mad(att('good4.npy'), 1, 16, False), 1e-9)"
pycheck "distance: table on stdout" "
o = open('stdout').read()
assert 'layer' in o and 'mean' in o and len(o.strip().splitlines()) >= 5, o"
ok "distance: --renormalize CSV" attention distance "$G4" --patch-size 16 --renormalize -o "$O/dist.csv"
pycheck "distance: --renormalize" "
head, rows = read_csv('out/dist.csv')
assert head == ['layer', 'head_0', 'head_1'], head
close(np.array([[float(x) for x in r[1:]] for r in rows]), mad(att('good4.npy'), 1, 16, True), 1e-9)"

# ---------------------------------------------------------------------------------------------------------------
# heads
# ---------------------------------------------------------------------------------------------------------------
ok "heads: maps only" attention heads "$G4" -o "$O/heads/maps.npy"
pycheck "heads: [H,gh,gw] CLS row, last layer, no masks" "
close(shape('out/heads/maps.npy', [2, 2, 2]), att('good4.npy')[-1, :, 0, 1:].reshape(2, 2, 2))
import os
assert sorted(os.listdir('out/heads')) == ['maps.npy'], os.listdir('out/heads')"
ok "heads: --threshold 0.6" attention heads "$G4" --layer 0 --query-row 2 --threshold 0.6 -o "$O/heads2/maps.npy"
pycheck "heads: maps and default masks path" "
m = shape('out/heads2/maps.npy', [2, 2, 2])
close(m, att('good4.npy')[0, :, 2, 1:].reshape(2, 2, 2))
k = shape('out/heads2/maps_masks.npy', [2, 2, 2])
for h in range(2):
    close(k[h].reshape(-1), dino_mask(m[h].reshape(-1), 0.6), 0, f'head {h}')
o = open('stdout').read()
assert 'maps.npy' in o and 'maps_masks.npy' in o, o"
ok "heads: --masks-output" attention heads "$G4" --threshold 1 --masks-output "$O/heads3/m.json" -o "$O/heads3/maps.csv"
pycheck "heads: threshold 1 keeps every patch" "
j = json.load(open('out/heads3/m.json'))
assert j['dims'] == ['head', 'row', 'col'] and j['shape'] == [2, 2, 2], j
assert np.array(j['data']).min() == 1"

# ---------------------------------------------------------------------------------------------------------------
# warnings
# ---------------------------------------------------------------------------------------------------------------
ok "rows not summing to 1 without --strict: exit 0" attention raw "$T/badrows.npy" -o "$O/badrows.npy"
pycheck "rows not summing to 1: warning names the worst row" "
e = open('stderr').read()
assert 'warning' in e and 'row 3' in e and 'layer 2' in e and 'head 1' in e, e
import os
assert os.path.exists('out/badrows.npy')"

# ---------------------------------------------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------------------------------------------
ok_cmd "demo on the bundled example (ATTNLENS_DATA)" env ATTNLENS_DATA="$REPO/data" "$ATTNLENS" demo -o "$O/demo"
pycheck "demo: outputs, summary.json, last line" "
import os
files = set(os.listdir('out/demo'))
for f in ['raw_cls.npy', 'rollout_abnar_cls.npy', 'rollout_vit_explain_cls.npy', 'flow_cls.npy', 'flow_all.npy',
          'flow_metzger.npy', 'distance.npy', 'heads.npy', 'heads_masks.npy', 'summary.json']:
    assert f in files, (f, files)
assert len(files) == 10, files
s = json.load(open('out/demo/summary.json'))
for m in ['raw', 'rollout_abnar', 'rollout_vit_explain', 'flow_cls', 'flow_all', 'flow_metzger', 'distance', 'heads']:
    assert 'seconds' in s['methods'][m], m
assert len(s['methods']['rollout_abnar']['top5_patches']) == 5
shape('out/demo/flow_all.npy', [6, 50, 50])
shape('out/demo/rollout_vit_explain_cls.npy', [49])
d = L('out/demo/distance.npy').mean(1)
assert (np.diff(d) > 0).all(), d
o = open('stdout').read().strip().splitlines()
assert o[-1].startswith('outputs written to ') and o[-1].endswith('out/demo'), o[-1]
assert any('@' in line for line in o), 'no heat map'"
set +e
(cd "$REPO" && env -u ATTNLENS_DATA "$ATTNLENS" demo --quiet -o "$O/demo2" >"$T/stdout" 2>"$T/stderr")
RC=$?
set -e
if [ "$RC" -eq 0 ] && grep -q '^outputs written to ' "$T/stdout"; then pass "demo: default input from the current directory"; else fail "demo: default input from the current directory (exit $RC)" "$(cat "$T/stderr")"; fi
newdir
set +e
env ATTNLENS_DATA="$T/nowhere" "$ATTNLENS" demo -o "$D" >"$T/stdout" 2>"$T/stderr"
RC=$?
set -e
if [ "$RC" -eq 2 ] && grep -q '^attnlens: error: .*ATTNLENS_DATA' "$T/stderr" && [ ! -e "$D" ]; then
  pass "demo: missing ATTNLENS_DATA is a clear error"
else
  fail "demo: missing ATTNLENS_DATA is a clear error (exit $RC)" "$(cat "$T/stderr")"
fi

# ---------------------------------------------------------------------------------------------------------------
# grad-rollout and chefer: the attention and its gradient (spec 2, 4.1), against numpy written from the spec
# ---------------------------------------------------------------------------------------------------------------
"$PY" -c "
import numpy as np
rng = np.random.default_rng(9)
x = rng.normal(0, 1.5, size=(3, 2, 10, 10))
e = np.exp(x - x.max(-1, keepdims=True))
np.save('$T/ga.npy', e / e.sum(-1, keepdims=True))
np.save('$T/gg.npy', rng.normal(0, 1, size=(3, 2, 10, 10)))
np.save('$T/gg_bad.npy', rng.normal(0, 1, size=(3, 2, 9, 9)))
"
ok "chefer: from attention and gradient" attention chefer "$T/ga.npy" --grad "$T/gg.npy" --query-row 0 -o "$O/chefer.npy"
pycheck "chefer: R = prod (I + mean_h max(0, G*A)), row 0" "
A, G = L('ga.npy'), L('gg.npy')
R = np.eye(10)
for l in range(3):
    R = R + np.maximum(0, G[l] * A[l]).mean(0) @ R
close(shape('out/chefer.npy', [10]), R[0], 1e-12)"
ok "chefer: --start-layer 1 --patches-only" attention chefer "$T/ga.npy" --grad "$T/gg.npy" --query-row 0 --start-layer 1 --patches-only -o "$O/chefer1.npy"
pycheck "chefer: from layer 1" "
A, G = L('ga.npy'), L('gg.npy')
R = np.eye(10)
for l in range(1, 3):
    R = R + np.maximum(0, G[l] * A[l]).mean(0) @ R
close(shape('out/chefer1.npy', [9]), R[0, 1:], 1e-12)"
ok "grad-rollout: no discard" attention grad-rollout "$T/ga.npy" --grad "$T/gg.npy" --discard-ratio 0 -o "$O/gro.npy"
pycheck "grad-rollout: F = max(0, mean_h(A*G)), (F + I)/2 row-normalised, multiplied up" "
A, G = L('ga.npy'), L('gg.npy')
R = np.eye(10)
for l in range(3):
    a = (np.maximum(0, (A[l] * G[l]).mean(0)) + np.eye(10)) / 2
    R = (a / a.sum(-1, keepdims=True)) @ R
close(shape('out/gro.npy', [10, 10]), R, 1e-12)"
newdir; err "grad-rollout: gradient of another shape" "$D/o.npy" attention grad-rollout "$T/ga.npy" --grad "$T/gg_bad.npy" -o "$D/o.npy"
newdir; err "chefer: no --grad" "$D/o.npy" attention chefer "$T/ga.npy" -o "$D/o.npy"
newdir; err "chefer: --start-layer out of range" "$D/o.npy" attention chefer "$T/ga.npy" --grad "$T/gg.npy" --start-layer 3 -o "$D/o.npy"

# ---------------------------------------------------------------------------------------------------------------
# Text-shaped stacks: N - 1 is no square (a 32-token sentence); only distance and heads need a grid
# ---------------------------------------------------------------------------------------------------------------
"$PY" -c "
import numpy as np
rng = np.random.default_rng(5)
x = rng.normal(0, 2, size=(3, 2, 32, 32))
e = np.exp(x - x.max(-1, keepdims=True))
np.save('$T/text32.npy', (e / e.sum(-1, keepdims=True)).astype(np.float32))
"
ok "text stack: raw without --grid" attention raw "$T/text32.npy" --query-row 0 -o "$O/t_raw.npy"
pycheck "text stack: raw is the last layer's head-mean row" "close(shape('out/t_raw.npy', [32]), att('text32.npy')[-1].mean(0)[0], 1e-12)"
ok "text stack: rollout without --grid" attention rollout "$T/text32.npy" --query-row 0 -o "$O/t_ro.npy"
pycheck "text stack: rollout equals numpy" "close(shape('out/t_ro.npy', [32]), abnar_rollout(att('text32.npy'))[-1][0], 1e-12)"
ok "text stack: flow without --grid" attention flow "$T/text32.npy" -o "$O/t_flow.npy"
ok "text stack: flow-metzger without --grid" attention flow-metzger "$T/text32.npy" -o "$O/t_mz.npy"
pycheck "text stack: flow is per token, and per-token Metzger flow equals it" "
f = shape('out/t_flow.npy', [32])
assert (f > 0).all(), f
close(L('out/t_mz.npy'), f, 1e-12)"
ok "text stack: flow --scope all without --grid" attention flow "$T/text32.npy" --scope all --threads 0 -o "$O/t_flow_all.npy"
pycheck "text stack: flow --scope all row (3, 0) is the cls scope" "close(shape('out/t_flow_all.npy', [3, 32, 32])[-1][0], L('out/t_flow.npy'), 1e-12)"
ok "text stack: --patches-only drops [CLS] only" attention rollout "$T/text32.npy" --query-row 0 --patches-only -o "$O/t_ro_p.npy"
pycheck "text stack: 31 tokens after [CLS]" "close(shape('out/t_ro_p.npy', [31]), L('out/t_ro.npy')[1:], 0)"
ok "text stack: distance with a 1x31 grid" attention distance "$T/text32.npy" --patch-size 1 --grid 1x31 -q -o "$O/t_dist.npy"
pycheck "text stack: distance [L,H]" "shape('out/t_dist.npy', [3, 2])"

# ---------------------------------------------------------------------------------------------------------------
# Bad input and bad options: exit 2, one error line, nothing written
# ---------------------------------------------------------------------------------------------------------------
newdir; err "missing input file" "$D/o.npy" attention raw "$T/does_not_exist.npy" -o "$D/o.npy"
newdir; err "truncated file" "$D/o.npy" attention raw "$T/truncated.npy" -o "$D/o.npy"
newdir; err "not an npy (text file)" "$D/o.npy" attention rollout "$T/text.npy" -o "$D/o.npy"
newdir; err "int64 dtype" "$D/o.npy" attention raw "$T/int64.npy" -o "$D/o.npy"
newdir; err "fortran order" "$D/o.npy" attention raw "$T/fortran.npy" -o "$D/o.npy"
newdir; err "rank 2" "$D/o.npy" attention raw "$T/rank2.npy" -o "$D/o.npy"
newdir; err "non-square [2,3,4,5]" "$D/o.npy" attention raw "$T/nonsquare.npy" -o "$D/o.npy"
newdir; err "distance: N-P not a square grid without --grid" "$D/o.npy" attention distance "$T/nogrid.npy" --patch-size 16 -o "$D/o.npy"
newdir; err "heads: N-P not a square grid without --grid" "$D/o.npy" attention heads "$T/nogrid.npy" -o "$D/o.npy"
newdir; err "--grid not matching N" "$D/o.npy" attention raw "$G4" --grid 3x3 -o "$D/o.npy"
newdir; err "--grid malformed" "$D/o.npy" attention raw "$G4" --grid 2by2 -o "$D/o.npy"
newdir; err "NaN" "$D/o.npy" attention raw "$T/nan.npy" -o "$D/o.npy"
newdir; err "Inf" "$D/o.npy" attention rollout "$T/inf.npy" -o "$D/o.npy"
newdir; err "negative value" "$D/o.npy" attention flow "$T/negative.npy" -o "$D/o.npy"
newdir; err "rows not summing to 1 with --strict" "$D/o.npy" attention raw "$T/badrows.npy" --strict -o "$D/o.npy"
newdir; err "query-row out of range" "$D/o.npy" attention rollout "$G4" --query-row 5 -o "$D/o.npy"
newdir; err "query-row negative" "$D/o.npy" attention raw "$G4" --query-row -1 -o "$D/o.npy"
newdir; err "flow query-row out of range" "$D/o.npy" attention flow "$G4" --query-row 9 -o "$D/o.npy"
newdir; err "heads query-row out of range" "$D/o.npy" attention heads "$G4" --query-row 5 -o "$D/o.npy"
newdir; err "layer out of range" "$D/o.npy" attention raw "$G4" --layer 3 -o "$D/o.npy"
newdir; err "negative layer out of range" "$D/o.npy" attention heads "$G4" --layer -4 -o "$D/o.npy"
newdir; err "start-layer out of range" "$D/o.npy" attention rollout "$G4" --start-layer 3 -o "$D/o.npy"
newdir; err "discard ratio 1.5" "$D/o.npy" attention rollout "$G4" --discard-ratio 1.5 -o "$D/o.npy"
newdir; err "discard ratio -0.1" "$D/o.npy" attention rollout "$G4" --discard-ratio -0.1 -o "$D/o.npy"
newdir; err "threshold 0" "$D/o.npy" attention heads "$G4" --threshold 0 -o "$D/o.npy"
newdir; err "threshold 1.5" "$D/o.npy" attention heads "$G4" --threshold 1.5 -o "$D/o.npy"
newdir; err "--masks-output without --threshold" "$D/o.npy" attention heads "$G4" --masks-output "$D/m.npy" -o "$D/o.npy"
newdir; err "--masks-output with unknown extension" "$D/o.npy" attention heads "$G4" --threshold 0.5 --masks-output "$D/m.png" -o "$D/o.npy"
newdir; err "patch size 0" "$D/o.npy" attention distance "$G4" --patch-size 0 -o "$D/o.npy"
newdir; err "patch size missing" "$D/o.npy" attention distance "$G4" -o "$D/o.npy"
newdir; err "threads -1" "$D/o.npy" attention flow "$G4" --scope all --threads -1 -o "$D/o.npy"
newdir; err "unknown output extension" "$D/o.txt" attention raw "$G4" -o "$D/o.txt"
newdir; err "output without extension" "$D/o" attention raw "$G4" -o "$D/o"
newdir; err "unknown option" "$D/o.npy" attention raw "$G4" --bogus -o "$D/o.npy"
newdir; err "unknown method" "$D/o.npy" attention saliency "$G4" -o "$D/o.npy"
newdir; err "unknown fusion" "$D/o.npy" attention raw "$G4" --fusion median -o "$D/o.npy"
newdir; err "unknown rollout mode" "$D/o.npy" attention rollout "$G4" --mode gradient -o "$D/o.npy"
newdir; err "unknown scale" "$D/o.npy" attention rollout "$G4" --scale log -o "$D/o.npy"
newdir; err "non-numeric --layer" "$D/o.npy" attention raw "$G4" --layer last -o "$D/o.npy"
newdir; err "--layer with --all-layers" "$D/o.npy" attention raw "$G4" --layer 0 --all-layers -o "$D/o.npy"
newdir; err "missing --output" "$D/o.npy" attention raw "$G4"
newdir; err "missing INPUT" "$D/o.npy" attention raw -o "$D/o.npy"
newdir; err "no subcommand" "$D/o.npy"
newdir; err "attention without a method" "$D/o.npy" attention
newdir; err "prefix tokens -1" "$D/o.npy" attention raw "$G4" --prefix-tokens -1 -o "$D/o.npy"
newdir; err "chefer mode with max fusion" "$D/o.npy" attention rollout "$G4" --mode chefer --fusion max -o "$D/o.npy"

# An existing output file is left untouched by a failing run.
mkdir -p "$T/keep"
echo OLD >"$T/keep/o.npy"
run attention raw "$T/nan.npy" -o "$T/keep/o.npy"
if [ "$RC" -eq 2 ] && [ "$(cat "$T/keep/o.npy")" = OLD ] && [ "$(ls -A "$T/keep")" = o.npy ]; then
  pass "failing run leaves an existing output untouched"
else
  fail "failing run leaves an existing output untouched (exit $RC)" "$(ls -A "$T/keep")"
fi

finish
