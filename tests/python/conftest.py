"""Shared fixtures of the attnlens Python tests (run with the venv's python: `.venv/bin/python -m pytest tests/python`).

The CLI-comparison tests need the full C++ build's `build/attnlens` (ATTNLENS_CLI overrides the path); they skip,
with the reason, only when it is absent.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = os.environ.get("ATTNLENS_CLI", os.path.join(ROOT, "build", "attnlens"))
# The bundled models' PyTorch definitions (tools/) and the cross tests' helpers (tests/cross/).
for folder in (os.path.join(ROOT, "tools"), os.path.join(ROOT, "tests", "cross")):
    if folder not in sys.path:
        sys.path.insert(0, folder)


class Cli:
    """Runs `attnlens ...` and reads its .npy outputs."""

    def __init__(self, binary, tmp):
        self.binary = binary
        self.tmp = tmp
        self.count = 0
        self.last_output = None  # the .npy of the last attention() call

    def run(self, *args):
        """(exit code, stdout, stderr)."""
        proc = subprocess.run([self.binary, *map(str, args)], capture_output=True, text=True)
        return proc.returncode, proc.stdout, proc.stderr

    def ok(self, *args):
        rc, out, err = self.run(*args)
        assert rc == 0, f"attnlens {' '.join(map(str, args))} exited {rc}: {err.strip()}"
        return out

    def save(self, array, name=None):
        """Writes `array` as .npy in the temporary folder; returns the path."""
        self.count += 1
        path = os.path.join(self.tmp, name or f"in{self.count}.npy")
        np.save(path, array)
        return path

    def attention(self, method, stack, *options, grad=None):
        """`attnlens attention METHOD` on `stack` (and --grad), the result as an array (float64 .npy)."""
        self.count += 1
        out = os.path.join(self.tmp, f"out{self.count}.npy")
        args = ["attention", method, self.save(stack), *options, "-q", "-o", out]
        if grad is not None:
            args += ["--grad", self.save(grad)]
        self.ok(*args)
        self.last_output = out
        return np.load(out)

    def error(self, method, stack, *options, grad=None):
        """The error message of a failing `attnlens attention METHOD` (text after 'attnlens: error: ')."""
        self.count += 1
        path = self.save(stack)
        args = ["attention", method, path, *options, "-q", "-o", os.path.join(self.tmp, f"bad{self.count}.npy")]
        if grad is not None:
            args += ["--grad", self.save(grad)]
        rc, _, err = self.run(*args)
        assert rc == 2, f"expected exit code 2, got {rc}: {err}"
        line = [ln for ln in err.splitlines() if ln.startswith("attnlens: error: ")]
        assert line, err
        return line[-1][len("attnlens: error: "):].replace(f"'{path}'", "'attention'")


@pytest.fixture(scope="session")
def cli_binary():
    if not os.path.exists(CLI):
        pytest.skip(f"{CLI} is absent (build the C++ tree first: cmake -S . -B build && cmake --build build)")
    return CLI


@pytest.fixture
def cli(cli_binary, tmp_path):
    return Cli(cli_binary, str(tmp_path))


def random_attention(rng, shape, sigma=2.0, dtype=np.float64):
    """Softmax rows of N(0, sigma^2) logits: [..., N, N] row-stochastic attention."""
    logits = rng.normal(0.0, sigma, size=shape)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(dtype)
