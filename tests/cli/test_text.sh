#!/usr/bin/env bash
# End-to-end checks of the text commands on the bundled sentiment BERT (data/models/sentiment-bert):
# - the model and tokenizer reproduce the training tool's token ids and reference logits (samples.json);
# - explain --text writes every method's scores, the HTML, CSV and JSON; rollout/flow/raw agree with the
#   `attention` subcommands run on the saved attention; --column-max is the maximum over rows;
# - tree, prune, triggers and attack words run on a tiny labelled TSV and write what they promise, with invariants
#   (0% pruned = unpruned accuracy, 100% pruned = one class everywhere, k = 0 equal for every method);
# - bad input (empty text, invalid UTF-8, missing vocab tokens, vocab/embedding mismatch, labels mismatch, missing
#   data) exits 2 with one error line and writes nothing; over-long text is truncated with a warning.
# Env: ATTNLENS (binary), ATTNLENS_SOURCE (repository root). Prints "N passed, M failed".
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/harness.sh"
bin=$ATTNLENS
py=$PY
tmp=$T
root=${ATTNLENS_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
model=$root/data/models/sentiment-bert
fails_cleanly() {  # fails_cleanly OUTDIR EXPECTED_MESSAGE COMMAND...: exit 2, one error line, nothing written
  local out=$1 message=$2
  shift 2
  "$@" >"$tmp/stdout" 2>"$tmp/stderr"
  local rc=$?
  [ "$rc" -eq 2 ] || { echo "exit $rc, expected 2"; cat "$tmp/stderr"; return 1; }
  [ "$(wc -l <"$tmp/stderr")" -eq 1 ] || { echo "expected one stderr line:"; cat "$tmp/stderr"; return 1; }
  grep -q -- "$message" "$tmp/stderr" || { echo "message lacks '$message':"; cat "$tmp/stderr"; return 1; }
  [ ! -e "$out" ] || { echo "$out was written"; return 1; }
}

# ---- the bundled model reproduces the training tool's numbers ----
check "samples: token ids and reference logits" $py - "$bin" "$model" "$tmp" <<'EOF'
import json, math, subprocess, sys
bin, model, tmp = sys.argv[1:4]
samples = json.load(open(f"{model}/samples.json"))
cmd = [bin, "explain", "--model", model, "--method", "raw", "-q", "-o", f"{tmp}/samples"]
for s in samples:
    cmd += ["--text", s["text"]]
subprocess.run(cmd, check=True)
texts = json.load(open(f"{tmp}/samples/summary.json"))["texts"]
worst = 0.0
for s, t in zip(samples, texts):
    assert t["ids"] == s["input_ids"], (t["tokens"], s["tokens"])
    z = s["reference_logits"]
    p = [math.exp(v - max(z)) for v in z]
    p = [v / sum(p) for v in p]
    worst = max(worst, max(abs(a - b) for a, b in zip(p, t["probabilities"])))
    assert t["predicted"] == s["predicted"]
assert worst < 1e-5, worst
print("max probability difference", worst)
EOF

# ---- explain --text ----
text="The food was not good at all, and the service was slow."
check "explain --text, every method" "$bin" explain --model "$model" --text "$text" --text "Great acting!" \
  --method all --save-attention -q -o "$tmp/all"
check "explain outputs" $py - "$tmp/all" <<'EOF'
import csv, json, os, sys
out = sys.argv[1]
s = json.load(open(f"{out}/summary.json"))
methods = ["raw", "rollout", "grad-rollout", "flow", "flow-metzger", "chefer", "grad-sam", "attattr", "blankout",
           "input-x-gradient", "agcam", "bi-attn", "bi-attn-token", "atman", "attnlrp", "cp-lrp", "chefer-lrp"]
assert s["methods"] == methods, s["methods"]
for i, t in enumerate(s["texts"]):
    n = len(t["tokens"])
    assert t["tokens"][0] == "[CLS]" and t["tokens"][-1] == "[SEP]"
    for m in methods:
        assert len(t["scores"][m]) == n, (m, len(t["scores"][m]), n)
    assert abs(sum(t["probabilities"]) - 1) < 1e-6
    for f in (f"{i:03d}_tokens.html", f"{i:03d}_attattr.npy", f"{i:03d}_attention.npy"):
        assert os.path.exists(f"{out}/{f}"), f
rows = list(csv.DictReader(open(f"{out}/tokens.csv")))
assert len(rows) == sum(len(t["tokens"]) for t in s["texts"]) * len(methods), len(rows)
page = open(f"{out}/index.html").read()
assert "http://" not in page and "https://" not in page and "<script" not in page
assert page.count("[CLS]") >= 2 * len(methods)
EOF
# What a reader sees: in Chromium every method row of the first sentence (12 words) shades at least two words
# (chefer and grad-rollout used to shade [CLS] alone, its own relevance setting the scale).
check "text view: every method shades words in Chromium" $py "$root/tests/cross/text_view_in_chromium.py" \
  --min-words 2 --min-tokens 4 --expect-rows 17 "$tmp/all/index.html"
check "explain = attention subcommands on the saved attention" $py - "$bin" "$tmp" <<'EOF'
import json, subprocess, sys
import numpy as np
bin, tmp = sys.argv[1:3]
s = json.load(open(f"{tmp}/all/summary.json"))["texts"][0]
att = f"{tmp}/all/{s['outputs']['attention']}"
def run(*args):
    out = f"{tmp}/sub.npy"
    subprocess.run([bin, "attention", *args, att, "--prefix-tokens", "0", "--grid", f"1x{len(s['tokens'])}",
                    "--query-row", "0", "-o", out, "-q"], check=True)
    return np.load(out).reshape(-1)
for method, args in (("rollout", ["rollout"]), ("flow", ["flow"]), ("raw", ["raw"])):
    diff = np.abs(run(*args) - np.array(s["scores"][method])).max()
    assert diff < 1e-6, (method, diff)
EOF
check "--column-max is the maximum over rows of the rollout" $py - "$bin" "$model" "$tmp" <<'EOF'
import json, subprocess, sys
import numpy as np
bin, model, tmp = sys.argv[1:4]
subprocess.run([bin, "explain", "--model", model, "--text", "Great acting and a wonderful plot!", "--method",
                "rollout,raw,flow", "--column-max", "--save-attention", "-q", "-o", f"{tmp}/cm"], check=True)
t = json.load(open(f"{tmp}/cm/summary.json"))["texts"][0]
a = np.load(f"{tmp}/cm/{t['outputs']['attention']}").mean(axis=1)
n = a.shape[-1]
r = np.eye(n)
for layer in a:
    m = 0.5 * layer + 0.5 * np.eye(n)
    m /= m.sum(axis=1, keepdims=True)
    r = m @ r
assert np.abs(r.max(axis=0) - np.array(t["scores"]["rollout"])).max() < 1e-9
assert np.abs(a[-1].max(axis=0) - np.array(t["scores"]["raw"])).max() < 1e-9
# Flow: the [CLS] row (another run), divided by its sum, is one of the rows the maximum is taken over.
subprocess.run([bin, "explain", "--model", model, "--text", "Great acting and a wonderful plot!", "--method", "flow",
                "-q", "-o", f"{tmp}/cm0"], check=True)
row = np.array(json.load(open(f"{tmp}/cm0/summary.json"))["texts"][0]["scores"]["flow"])
cm = np.array(t["scores"]["flow"])
assert np.all(cm >= row / row.sum() - 1e-12) and cm.max() <= 1 + 1e-12 and cm.sum() > 1 - 1e-12, (cm, row)
EOF
# ---- capture --text: a text stack for the attention subcommands, which need no --grid for it ----
check "capture --text, then the attention subcommands without --grid equal explain --text" $py - "$bin" "$model" "$tmp" <<'EOF'
import json, subprocess, sys
import numpy as np
bin, model, tmp = sys.argv[1:4]
text = "Great acting and a wonderful plot!"
run = lambda *a: subprocess.run([bin, *a], check=True, capture_output=True, text=True)
run("capture", "--model", model, "--text", text, "--grad-output", f"{tmp}/tg.npy", "-q", "-o", f"{tmp}/ta.npy")
run("explain", "--model", model, "--text", text, "--method", "rollout,flow,grad-rollout,chefer", "-q", "-o", f"{tmp}/tx")
scores = json.load(open(f"{tmp}/tx/summary.json"))["texts"][0]["scores"]
a = np.load(f"{tmp}/ta.npy")
assert a.ndim == 4 and a.shape[-1] == len(scores["rollout"]), a.shape
for method, extra in [("rollout", []), ("flow", []), ("grad-rollout", ["--grad", f"{tmp}/tg.npy"]),
                      ("chefer", ["--grad", f"{tmp}/tg.npy"])]:
    # explain --text lays every token out as a patch (no prefix), which grad-rollout's discard protection reads.
    run("attention", method, f"{tmp}/ta.npy", *extra, "--query-row", "0", "--prefix-tokens", "0", "-q",
        "-o", f"{tmp}/t_{method}.npy")
    got, want = np.load(f"{tmp}/t_{method}.npy"), np.array(scores[method])
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-9, (method, np.abs(got - want).max())
EOF
check "explain --texts file and gold target" bash -c "printf 'Nice phone.\nTerrible battery!\n' >$tmp/texts.txt &&
  '$bin' explain --model '$model' --texts $tmp/texts.txt --method attattr,blankout --label 1 --target gold \
  --steps 4 --riemann left --blank-token '[UNK]' -q -o $tmp/gold &&
  $py -c \"import json; t = json.load(open('$tmp/gold/summary.json'))['texts']; assert [x['target'] for x in t] == [1, 1]\""

# ---- tree, prune, triggers, attack words on a tiny labelled TSV ----
{
  printf '1\tThe mic is great.\n0\tWhat a waste of money and time!\n0\tNot tasty and the texture was just nasty.\n'
  printf '1\tIt works perfectly and the price is right.\n0\tThe battery died after a week.\n'
  printf '1\tGreat food and friendly staff.\n0\tThe service was slow and rude.\n1\tI loved this movie.\n'
  printf '0\tBoring plot and bad acting.\n1\tExcellent value, highly recommended.\n'
} >"$tmp/tiny.tsv"
check "tree writes dot, svg, json and attattr" bash -c "'$bin' tree --model '$model' '$text' --steps 8 -q -o $tmp/tree &&
  grep -q digraph $tmp/tree/tree.dot && grep -q '<svg' $tmp/tree/tree.svg &&
  $py -c \"import json, numpy as np; j = json.load(open('$tmp/tree/tree.json')); a = np.load('$tmp/tree/attattr.npy');
assert a.shape[2] == len(j['tokens']); assert all(0 <= e['child'] < len(j['tokens']) for e in j['edges'])\""
check "prune: 0% = unpruned accuracy, 100% = one class" bash -c "'$bin' prune --model '$model' --data $tmp/tiny.tsv \
  --split all --examples 4 --steps 4 -q -o $tmp/prune && $py - $tmp/prune/prune.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["rates"]
assert len(r) == 11 and r[0]["heads_pruned"] == 0 and r[-1]["heads_pruned"] == 16
assert r[0]["accuracy_attattr"] == r[0]["accuracy_attention"] == r[0]["accuracy_random"]
# With every head masked, the output no longer depends on the tokens: one class for all -> 0.5 on this 5/5 set.
assert r[-1]["accuracy_attattr"] == r[-1]["accuracy_random"] == 0.5, r[-1]
EOF
check "prune writes csv and svg" bash -c "head -1 $tmp/prune/prune.csv | grep -q accuracy_attattr && grep -q '<svg' $tmp/prune/prune.svg"
check "attack words: k = 0 equal for all methods, curves non-increasing for blankout" bash -c "'$bin' attack words \
  --model '$model' --data $tmp/tiny.tsv --split all --methods rollout,attattr,blankout,random --k 3 --steps 4 -q \
  -o $tmp/aw && $py - $tmp/aw/attack_words.json" <<'EOF'
import json, sys
a = json.load(open(sys.argv[1]))["accuracy"]
assert set(a) == {"rollout", "attattr", "blankout", "random"}
assert len({v[0] for v in a.values()}) == 1
assert all(len(v) == 4 for v in a.values())
EOF
# evaluate --text: every number of one method recomputed from explain --text's scores and probabilities of the
# masked texts (whole-word sentences, so masking a token is writing [MASK] in its place), with scipy's Spearman.
check "evaluate --text writes the table, summary and report" "$bin" evaluate --text --model "$model" \
  --data "$tmp/tiny.tsv" --split all --limit 4 --methods rollout,attattr,atman --steps 4 --k 3 -q -o "$tmp/evt"
check "evaluate --text: metrics recomputed from explain --text" $py - "$bin" "$model" "$tmp" <<'EOF'
import csv, json, math, subprocess, sys
import numpy as np
from scipy.stats import spearmanr
binary, model, tmp = sys.argv[1:]
rows = {(int(r["index"]), r["method"]): r for r in csv.DictReader(open(f"{tmp}/evt/per_text.csv"))}
assert {m for _, m in rows} == {"rollout", "attattr", "atman", "random", "blankout"}, {m for _, m in rows}
def explain(texts, methods):
    open(f"{tmp}/evt_in.txt", "w").write("\n".join(texts) + "\n")
    subprocess.run([binary, "explain", "--model", model, "--texts", f"{tmp}/evt_in.txt", "--method", methods,
                    "--steps", "4", "-q", "-o", f"{tmp}/evt_x"], check=True)
    return json.load(open(f"{tmp}/evt_x/summary.json"))["texts"]
def trapezoid(y):
    x = np.linspace(0, 1, len(y))
    return float(np.sum((x[1:] - x[:-1]) * (np.array(y[1:]) + np.array(y[:-1])) / 2))
lines = [l.rstrip("\n").split("\t", 1) for l in open(f"{tmp}/tiny.tsv")][:4]
worst = 0.0
for i, (label, text) in enumerate(lines):
    t = explain([text], "rollout,blankout")[0]
    c = t["target"]
    toks = t["tokens"]
    words = [k for k, tok in enumerate(toks) if tok not in ("[CLS]", "[SEP]")]
    r = np.array(t["scores"]["rollout"])[words]
    b = np.array(t["scores"]["blankout"])[words]
    n = len(words)
    order = sorted(range(n), key=lambda k: -r[k])  # stable: ties in position order
    def masked(keep):  # the words in `keep` as they are, the others as [MASK]
        return " ".join(toks[words[w]] if w in keep else "[MASK]" for w in range(n))
    deletion = [masked(set(range(n)) - set(order[:k])) for k in range(n + 1)]
    insertion = [masked(set(order[:k])) for k in range(n + 1)]
    groups = min(10, n)
    bounds = [0] + [n if g == groups else math.ceil(g * n / groups) for g in range(1, groups + 1)]
    saco_texts = [masked(set(range(n)) - set(order[bounds[g]:bounds[g + 1]])) for g in range(groups)]
    variants = deletion + insertion + saco_texts
    got = explain(variants, "raw")
    for x, want in zip(got, variants):  # the masked strings tokenise back to the masked token lists
        assert " ".join(x["tokens"][1:-1]) == want, (x["tokens"], want)
    p = [x["probabilities"][c] for x in got]
    del_p, ins_p, saco_p = p[:n + 1], p[n + 1:2 * n + 2], p[2 * n + 2:]
    sal = [r[order[bounds[g]:bounds[g + 1]]].sum() for g in range(groups)]
    imp = [t["probabilities"][c] - q for q in saco_p]
    F = W = 0.0
    for g in range(groups):
        for h in range(g + 1, groups):
            w = sal[g] - sal[h] if imp[g] >= imp[h] else -(sal[g] - sal[h])
            F, W = F + w, W + abs(w)
    top = max(1, int(0.2 * n))
    overlap = len(set(np.argsort(-r, kind="stable")[:top]) & set(np.argsort(-b, kind="stable")[:top])) / top
    row = rows[(i, "rollout")]
    want = {"deletion_auc": trapezoid(del_p), "insertion_auc": trapezoid(ins_p), "saco": F / W,
            "spearman_blankout": spearmanr(r, b).correlation, "top_overlap_blankout": overlap}
    for key, value in want.items():
        worst = max(worst, abs(float(row[key]) - value))
        assert abs(float(row[key]) - value) < 1e-5, (i, key, row[key], value)
    assert float(rows[(i, "blankout")]["spearman_blankout"]) == 1.0
    assert int(row["label"]) == int(label) and 0.0 <= float(row["word_attack_auc"]) <= 1.0
s = json.load(open(f"{tmp}/evt/summary.json"))
assert s["texts"] == 4 and [r["method"] for r in s["rows"]] == ["rollout", "attattr", "atman", "random", "blankout"]
page = open(f"{tmp}/evt/report.html").read()
assert "SaCo" in page and "<svg" in page and "4 texts" in page
print(f"max |diff| {worst:.1e}")
EOF
check "evaluate --text: image-only options and a centre prior are refused" bash -c "
  '$bin' evaluate --text --model '$model' --data $tmp/tiny.tsv --shuffle -o $tmp/evt2 2>&1 | grep -q 'is for images' &&
  ! test -e $tmp/evt2 &&
  '$bin' evaluate --text --model '$model' --data $tmp/tiny.tsv --baselines centre -o $tmp/evt3 2>&1 |
    grep -q 'unknown text baseline' && ! test -e $tmp/evt3"

check "triggers on train/test of the tiny set" bash -c "'$bin' triggers --model '$model' --data $tmp/tiny.tsv \
  --examples 8 --steps 4 -q -o $tmp/trig && $py -c \"import json; r = json.load(open('$tmp/trig/triggers.json'));
assert r['mined_examples'] == 8; assert all(0 <= x['after'] <= 1 for x in r['accuracy'])\""

# ---- bad input ----
check "empty text" fails_cleanly "$tmp/e1" "empty --text" "$bin" explain --model "$model" --text "  " -o "$tmp/e1"
check "invalid UTF-8" fails_cleanly "$tmp/e2" "not valid UTF-8" "$bin" explain --model "$model" --text $'bad \xff byte' -o "$tmp/e2"
check "images and text together" fails_cleanly "$tmp/e3" "not both" "$bin" explain x.png --text "hi" -o "$tmp/e3"
check "heads is not a text method" fails_cleanly "$tmp/e4" "for images" "$bin" explain --model "$model" --text "hi there" --method heads -o "$tmp/e4"
check "column max with chefer" fails_cleanly "$tmp/e5" "column maximum" "$bin" explain --model "$model" --text "hi there" --method chefer --column-max -o "$tmp/e5"
cp -r "$model" "$tmp/novocab" && rm "$tmp/novocab/vocab.txt"
check "missing vocab" fails_cleanly "$tmp/e6" "no vocab.txt" "$bin" explain --model "$tmp/novocab" --text "hi there" -o "$tmp/e6"
cp -r "$model" "$tmp/nocls" && sed -i 's/^\[CLS\]$/[CLSX]/' "$tmp/nocls/vocab.txt"
check "vocab without [CLS]" fails_cleanly "$tmp/e7" "CLS" "$bin" explain --model "$tmp/nocls" --text "hi there" -o "$tmp/e7"
cp -r "$model" "$tmp/short" && head -n 100 "$model/vocab.txt" >"$tmp/short/vocab.txt"
check "vocab/embedding size mismatch" fails_cleanly "$tmp/e8" "do not belong together" "$bin" explain --model "$tmp/short" --text "hi there" -o "$tmp/e8"
cp -r "$model" "$tmp/labels" && $py - "$tmp/labels/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["id2label"] = {"0": "a", "1": "b", "2": "c"}; json.dump(c, open(sys.argv[1], "w"))
EOF
check "labels mismatch" fails_cleanly "$tmp/e9" "3 labels for 2 classes" "$bin" explain --model "$tmp/labels" --text "hi there" -o "$tmp/e9"
check "gold target without label" fails_cleanly "$tmp/e10" "needs --label" "$bin" explain --model "$model" --text "hi there" --target gold -o "$tmp/e10"
check "label out of range" fails_cleanly "$tmp/e11" "out of range" "$bin" explain --model "$model" --text "hi there" --label 5 -o "$tmp/e11"
printf '1\tgood\nx\tbad\n' >"$tmp/badlabel.tsv"
check "data label not an integer" fails_cleanly "$tmp/e12" "not a class index" "$bin" prune --model "$model" --data "$tmp/badlabel.tsv" -o "$tmp/e12"
printf '1\tgood\n7\tbad\n' >"$tmp/range.tsv"
check "data label out of range" fails_cleanly "$tmp/e13" "out of range" "$bin" attack words --model "$model" --data "$tmp/range.tsv" --split all -o "$tmp/e13"
check "missing data" fails_cleanly "$tmp/e14" "not found" "$bin" triggers --model "$model" --data "$tmp/nope.tsv" -o "$tmp/e14"
check "unknown replacement token" fails_cleanly "$tmp/e15" "not in the vocabulary" "$bin" attack words --model "$model" --data "$tmp/tiny.tsv" --replacement zzzqqq -o "$tmp/e15"
long=$(for i in $(seq 1 200); do printf 'good '; done)
check "over-long text: truncated with a warning" bash -c "'$bin' explain --model '$model' --text '$long' --method rollout \
  -o $tmp/long 2>$tmp/long.err >/dev/null && grep -q 'truncated to 128 tokens' $tmp/long.err &&
  $py -c \"import json; t = json.load(open('$tmp/long/summary.json'))['texts'][0]; assert len(t['ids']) == 128 and t['truncated']\""

finish
