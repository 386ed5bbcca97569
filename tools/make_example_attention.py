#!/usr/bin/python3
"""Generate the synthetic example attention stack data/example/attention.npy.

Shape [6, 4, 50, 50] float32 (layer, head, query, key): 6 layers, 4 heads, N = 1 CLS token + a 7x7 patch grid
(patch size 8 -> a 56x56 "image"). Rows are softmax outputs (logits -> softmax in float64 -> float32), so every
row sums to 1 within float32 rounding.

Structure (so that every attnlens method has something to find):
  * an "object" blob covering a few patches around grid position (2.6, 4.2);
  * every head is local: patch queries attend to patch keys with logits -d^2 / (2 sigma^2), d = grid distance, and
    sigma grows with depth and with the head index, so the mean attention distance rises with depth;
  * "object" heads (more of them in deeper layers) add a bonus to the object's keys for every query, and the CLS
    query attends to the object in those heads (near-uniformly over patches in the others);
  * patch queries put a depth-dependent share of attention on the CLS key;
  * small Gaussian noise on the logits (fixed seed) so that nothing is perfectly symmetric.

Deterministic: numpy only, fixed seed. Usage (from the repository root):
    /usr/bin/python3 tools/make_example_attention.py [--output data/example/attention.npy]
"""
import argparse
import os

import numpy as np

LAYERS = 6
HEADS = 4
GRID = 7
PREFIX = 1
PATCH_SIZE = 8
SEED = 20240607
OBJECT_CENTER = (2.6, 4.2)  # (row, col) on the patch grid
OBJECT_RADIUS = 1.0          # grid units


def patch_coords():
    k = np.arange(GRID * GRID)
    return np.stack([k // GRID, k % GRID], axis=1).astype(np.float64)  # [G, 2] (row, col), row-major


def object_weights(coords):
    """Soft object indicator per patch in [0, 1]; the patches within OBJECT_RADIUS are the object."""
    d = np.sqrt(((coords - np.array(OBJECT_CENTER)) ** 2).sum(axis=1))
    return np.clip(1.6 * OBJECT_RADIUS - d, 0.0, 1.0)  # 1 at the centre, fading to 0 at 1.6 grid units


def is_object_head(layer, head):
    # Layer 0: one object head; deeper layers progressively more (last layer: 3 of 4).
    return head >= HEADS - 1 - min(2, layer // 2)


def softmax(logits):
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def make_stack():
    rng = np.random.default_rng(SEED)
    coords = patch_coords()
    g = GRID * GRID
    n = PREFIX + g
    dist2 = ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(axis=2)  # [G, G]
    obj = object_weights(coords)

    att = np.zeros((LAYERS, HEADS, n, n), dtype=np.float64)
    for layer in range(LAYERS):
        for head in range(HEADS):
            sigma = 0.55 * (1.0 + 0.6 * layer) * (1.0 + 0.3 * head)  # grid units, grows with depth and head
            logits = np.zeros((n, n))
            # patch queries -> patch keys: locality
            logits[PREFIX:, PREFIX:] = -dist2 / (2.0 * sigma ** 2)
            # patch queries -> CLS key: more CLS mass in deeper layers
            logits[PREFIX:, 0] = -2.5 + 0.35 * layer
            # CLS query: itself, and near-uniform over patches
            logits[0, 0] = 0.5
            logits[0, PREFIX:] = 0.0
            if is_object_head(layer, head):
                beta = 1.0 + 0.5 * layer
                logits[PREFIX:, PREFIX:] += beta * obj[None, :]
                logits[0, PREFIX:] += (2.0 + 0.5 * layer) * obj
            logits += rng.normal(0.0, 0.15, size=logits.shape)
            att[layer, head] = softmax(logits)
    return att.astype(np.float32)


def mean_attention_distance(att):
    """Reference (spec 6): prefix rows/columns dropped, no re-normalisation; pixels."""
    coords = patch_coords()
    d = PATCH_SIZE * np.sqrt(((coords[:, None, :] - coords[None, :, :]) ** 2).sum(axis=2))
    a = att[:, :, PREFIX:, PREFIX:].astype(np.float64)
    return (a * d).sum(axis=-1).mean(axis=-1)  # [L, H]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(os.path.dirname(here), "data", "example", "attention.npy")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=default, help="output .npy (default: %(default)s)")
    args = parser.parse_args()

    att = make_stack()
    row_err = np.abs(att.astype(np.float64).sum(axis=-1) - 1.0).max()
    assert row_err < 1e-5, row_err
    mad = mean_attention_distance(att).mean(axis=1)
    assert np.all(np.diff(mad) > 0), mad  # mean attention distance rises with depth

    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    tmp = args.output + ".tmp"
    with open(tmp, "wb") as f:
        np.save(f, att)
    os.replace(tmp, args.output)
    obj = np.nonzero(object_weights(patch_coords()) > 0)[0]
    print(f"wrote {args.output} shape {list(att.shape)} {att.dtype}, max |row sum - 1| = {row_err:.2e}")
    print(f"object patches (row-major index): {obj.tolist()}")
    print("mean attention distance per layer (px, head mean): " + ", ".join(f"{m:.1f}" for m in mad))


if __name__ == "__main__":
    main()
