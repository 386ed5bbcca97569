#!/usr/bin/python3
"""Check `attnlens evaluate` against an independent computation of the same protocols (spec 8.1, 8.2) with the
training tool's PyTorch model, scipy's spearmanr and numpy's trapezoid rule, on a few bundled sample canvases.

The random baseline's map is reproduced here from its definition (splitmix64), so every metric of that row can be
recomputed without attnlens: blank-out scores, Spearman and top-10% overlap against them, deletion and insertion
curves and AUCs, positive/negative perturbation flags, pointing game and mass in the box.

Usage: evaluate_vs_pytorch.py PATH/TO/attnlens REPO_ROOT. Prints "N passed, M failed".
"""
import csv
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

binary, root = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bundled_vit import load_bundled_model  # noqa: E402

model_dir = os.path.join(root, "data", "models", "fmnist-vit")
samples_dir = os.path.join(model_dir, "samples")
model, config, reference = load_bundled_model(root)
P = config["patch_size"]
G = config["image_size"] // P
SEED = 7
MASK = (1 << 64) - 1

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok     " + name)
    else:
        failed += 1
        print("FAILED " + name + (": " + detail if detail else ""))


def splitmix64(z):
    z = (z + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def random_map(seed, index):  # eval/metrics.cpp random_map, written again from its definition
    base = splitmix64(seed ^ splitmix64(index))
    return np.array([(splitmix64((base + i) & MASK) >> 11) * 2.0 ** -53 for i in range(G * G)])


def probabilities(images):
    with torch.no_grad():
        return torch.softmax(model(images).double(), 1)


with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "ev")
    subprocess.run([binary, "evaluate", "--model", model_dir, "--data", samples_dir, "--limit", "3",
                    "--methods", "rollout", "--baselines", "random", "--seed", str(SEED), "--gallery", "1",
                    "-q", "-o", out], check=True)
    rows = list(csv.DictReader(open(os.path.join(out, "per_image.csv"))))
    summary = json.load(open(os.path.join(out, "summary.json")))
entries = json.load(open(os.path.join(samples_dir, "samples.json")))
check("one row per image and row (rollout, random, blankout)", len(rows) == 9, str(len(rows)))

import zlib  # noqa: E402


def read_png_gray(path):  # the samples are 8-bit grey PNGs written by the training tool (filter type 0 rows)
    data = open(path, "rb").read()
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    rows_ = [raw[r * (w + 1):(r + 1) * (w + 1)] for r in range(h)]
    assert all(r[0] == 0 for r in rows_), "unexpected PNG filter"
    return np.array([list(r[1:]) for r in rows_], dtype=np.uint8)


for i in range(3):
    e = entries[i]
    pixels = torch.from_numpy(read_png_gray(os.path.join(samples_dir, e["file"]))).float() / 255.0
    x = reference.to_input((pixels * 255).round().byte().numpy()[None])[0]  # [3,H,W], (x - 0.5) / 0.5
    black = -1.0
    p = probabilities(x[None])[0]
    c = int(p.argmax())
    row = {r["method"]: r for r in rows if int(r["index"]) == i}
    check(f"image {i}: predicted class", int(row["random"]["predicted"]) == c)

    # Blank-out: each patch black before normalisation, signed drop of p(c).
    occluded = x.repeat(G * G, 1, 1, 1)
    for k in range(G * G):
        r_, q_ = divmod(k, G)
        occluded[k, :, r_ * P:(r_ + 1) * P, q_ * P:(q_ + 1) * P] = black
    # Occluding a patch that is black already changes p(c) only by float32 rounding; both sides set such drops to
    # 0 so that these patches tie instead of ranking by noise.
    both = probabilities(torch.cat([x[None], occluded]))[:, c]
    blank = (both[0] - both[1:]).numpy()
    blank[np.abs(blank) < 1e-6] = 0.0  # rounding noise ties (eval/perturbation.hpp, kBlankOutTieTolerance)
    rmap = random_map(SEED, i)
    rho = spearmanr(rmap, blank).correlation
    rho = 0.0 if math.isnan(rho) else rho
    got = float(row["random"]["spearman_blankout"])
    check(f"image {i}: Spearman(random, blank-out) = {rho:.6f}", abs(got - rho) < 1e-6, f"attnlens {got}")
    k = int(math.floor(0.1 * G * G))
    top_r = set(np.argsort(-rmap, kind="stable")[:k])
    top_b = set(np.argsort(-blank, kind="stable")[:k])
    overlap = len(top_r & top_b) / k
    got = float(row["random"]["top_overlap_blankout"])
    check(f"image {i}: top-10% overlap = {overlap:.4f}", abs(got - overlap) < 1e-9, f"attnlens {got}")

    # Deletion / insertion along the random map's order.
    order = np.argsort(-rmap, kind="stable")
    dele, ins = [], []
    for n in range(G * G + 1):
        keep = np.ones(G * G, bool)
        keep[order[:n]] = False
        for kept, curve in ((keep, dele), (~keep, ins)):
            m = torch.from_numpy(kept.reshape(G, G).astype(np.float32)).repeat_interleave(P, 0).repeat_interleave(P, 1)
            curve.append(black + (x - black) * m)
    pd = probabilities(torch.stack(dele))[:, c].numpy()
    pi = probabilities(torch.stack(ins))[:, c].numpy()
    steps = np.arange(G * G + 1) / (G * G)
    for name, curve in (("deletion", pd), ("insertion", pi)):
        auc = float(np.trapz(curve, steps))
        got = float(row["random"][name + "_auc"])
        check(f"image {i}: {name} AUC = {auc:.6f}", abs(got - auc) < 1e-5, f"attnlens {got}")

    # Positive / negative perturbation: bilinear upsampling, stable top-k pixels, top-1 vs the true label.
    up = F.interpolate(torch.from_numpy(rmap).float().reshape(1, 1, G, G), size=(G * P, G * P), mode="bilinear",
                       align_corners=False).flatten()
    label = e["label"]
    for name, scores in (("positive", up), ("negative", -up)):
        order_px = torch.sort(scores, stable=True, descending=True).indices
        flags = [1.0 if c == label else 0.0]
        for s in [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]:
            keep = torch.ones(G * P * G * P)
            keep[order_px[:int(math.floor(G * P * G * P * s))]] = 0
            img = black + (x - black) * keep.reshape(G * P, G * P)
            flags.append(1.0 if int(probabilities(img[None])[0].argmax()) == label else 0.0)
        got = [float(row["random"][f"{name}_{j}"]) for j in range(10)]
        check(f"image {i}: {name} perturbation flags {flags}", got == flags, f"attnlens {got}")

    # SaCo (spec 19): the upsampled map's pixels ranked, 10 groups ending at ceil(i HW / 10), each group alone set to
    # the image's per-channel mean; pairwise agreement of salience and probability drop.
    hw = G * P * G * P
    order_px = torch.sort(up.double(), stable=True, descending=True).indices
    ends = [0] + [hw if g == 10 else math.ceil(g * hw / 10) for g in range(1, 11)]
    mean = x.mean(dim=(1, 2), keepdim=True)
    copies, salience = [], []
    for g in range(10):
        drop = torch.zeros(hw, dtype=torch.bool)
        drop[order_px[ends[g]:ends[g + 1]]] = True
        drop = drop.reshape(G * P, G * P)
        copies.append(torch.where(drop, mean, x))
        salience.append(float(up.double()[order_px[ends[g]:ends[g + 1]]].sum()))
    impact = (p[c] - probabilities(torch.stack(copies))[:, c]).tolist()
    agree = total = 0.0
    for g in range(10):
        for h in range(g + 1, 10):
            w = salience[g] - salience[h] if impact[g] >= impact[h] else -(salience[g] - salience[h])
            agree, total = agree + w, total + abs(w)
    got = float(row["random"]["saco"])
    check(f"image {i}: SaCo = {agree / total:.6f}", abs(got - agree / total) < 1e-5, f"attnlens {got}")

    # Localisation: top patch centre in the box; relevance mass inside the box.
    x0, y0, x1, y1 = e["box_xyxy"]
    top = int(np.argmax(rmap))
    cy, cx = (top // G + 0.5) * P, (top % G + 0.5) * P
    hit = 1.0 if (x0 <= cx < x1 and y0 <= cy < y1) else 0.0
    inside = np.zeros((G * P, G * P))
    inside[y0:y1, x0:x1] = 1
    per_pixel = np.kron(rmap.reshape(G, G), np.ones((P, P))) / (P * P)
    mass = float((per_pixel * inside).sum() / per_pixel.sum())
    check(f"image {i}: pointing {hit}", float(row["random"]["pointing_hit"]) == hit)
    got = float(row["random"]["mass_in_box"])
    check(f"image {i}: mass in box {mass:.6f}", abs(got - mass) < 1e-9, f"attnlens {got}")

check("summary.json: three images, rows rollout/random/blankout",
      summary["images"] == 3 and [r["method"] for r in summary["rows"]] == ["rollout", "random", "blankout"])
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
