"""attnlens from Python in five lines (`bash scripts/quickstart.sh demo` runs it with the .venv's python).

The bundled example stack (data/example/attention.npy: synthetic, [6 layers, 4 heads, 50 tokens, 50 tokens], a CLS
token and a 7x7 patch grid with an "object" around patches 18 and 25), explained by attention rollout, exact
attention flow and DINO's per-head maps: the same C++ functions as `attnlens attention rollout|flow|heads`.
"""
import os

import numpy as np

import attnlens

attention = np.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../data/example/attention.npy"))
rollout = attnlens.rollout(attention, query_row=0, patches_only=True).reshape(7, 7)   # spec 1: the CLS row
flow = attnlens.attention_flow(attention, normalize=True, patches_only=True)           # spec 3.1: exact max-flow
heads = attnlens.head_maps(attention, threshold=0.6)                                   # spec 7: last layer, masks
print("rollout: top patches", np.argsort(-rollout.ravel(), kind="stable")[:5], "| flow range",
      f"{flow.min():.4f}..{flow.max():.4f} | head masks keep", heads.masks.sum(axis=(1, 2)).astype(int), "patches")
