"""The package itself: `import attnlens` loads neither torch, NumPy, LibTorch nor OpenCV; the documentation and type
stubs cover every public name; long calls release the GIL; Ctrl-C stops a long `scope="all"` flow within a second."""
import ast
import inspect
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import attnlens
from attnlens import _attnlens
from conftest import random_attention


def test_import_loads_no_heavy_library():
    code = ("import sys, attnlens\n"
            "maps = open('/proc/self/maps').read()\n"
            "print(','.join(m for m in ('torch', 'numpy', 'cv2') if m in sys.modules))\n"
            "print(','.join(lib for lib in ('libtorch', 'libc10', 'libopencv') if lib in maps))\n"
            "import attnlens.torch\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "" and out[1] == "", out  # no module and no shared library of them
    assert out[2] == "True"  # attnlens.torch is what brings PyTorch in


PUBLIC = ["raw", "rollout", "attention_flow", "flow_metzger", "gradient_rollout", "chefer", "grad_sam",
          "mean_attention_distance", "head_maps", "read_safetensors"]


def test_every_public_function_is_documented():
    from attnlens import metrics, torch as bridge

    for module, names in [(attnlens, PUBLIC),
                          (metrics, ["spearman", "top_k_overlap", "auc", "deletion_curve", "insertion_curve",
                                     "pointing_game", "mass_in_box"]),
                          (bridge, ["capture", "explain"])]:
        for name in names:
            doc = inspect.getdoc(getattr(module, name))
            assert doc and len(doc) > 100, f"{module.__name__}.{name} has no real docstring"
            if module is not bridge and name != "insertion_curve":
                assert "Parameters" in doc and "Returns" in doc, name
    text = inspect.getdoc(attnlens.attention_flow)
    for words in ["scope", '"cls"', '"all"', "[L, N, N]", "threads", "normalize", "spec 3.1", "Ctrl-C"]:
        assert words in text, words
    assert "spec section 1" in inspect.getdoc(attnlens.rollout)
    sig = inspect.signature(attnlens.rollout)  # the names and defaults
    assert [(p.name, p.default) for p in list(sig.parameters.values())[1:8]] == [
        ("fusion", "mean"), ("discard_ratio", 0.0), ("residual", "half"), ("mode", "abnar"), ("start_layer", 0),
        ("query_row", None), ("all_layers", False)]


def test_stubs_cover_the_extension():
    stub = os.path.join(os.path.dirname(attnlens.__file__), "_attnlens.pyi")
    tree = ast.parse(open(stub).read())
    stubbed = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    compiled = {n for n in dir(_attnlens) if not n.startswith("__")}
    assert compiled == stubbed, (compiled ^ stubbed)
    assert os.path.exists(os.path.join(os.path.dirname(attnlens.__file__), "py.typed"))
    # The pure-Python API is annotated, so editors complete it without separate stubs.
    for name in PUBLIC:
        assert inspect.signature(getattr(attnlens, name)).parameters["attention" if name != "read_safetensors"
                                                                         else "path"].annotation != inspect._empty


def test_long_calls_release_the_gil():
    att = random_attention(np.random.default_rng(0), (6, 2, 40, 40))
    done = threading.Event()
    result = {}

    def work():
        result["flow"] = attnlens.attention_flow(att, scope="all")
        done.set()

    start = time.perf_counter()
    worker = threading.Thread(target=work)
    worker.start()
    ticks = 0
    while not done.is_set():  # this loop only runs while the worker's C++ call has let go of the GIL
        ticks += 1
        time.sleep(0.001)
    worker.join()
    elapsed = time.perf_counter() - start
    assert result["flow"].shape == (6, 40, 40)
    assert elapsed > 0.02 and ticks >= 5, (elapsed, ticks)


def test_ctrl_c_stops_scope_all_within_a_second():
    # 12 layers x 197 tokens: 2,364 max-flow sources, minutes of work.
    att = random_attention(np.random.default_rng(1), (12, 197, 197), sigma=3.0)
    returned = threading.Event()

    def press_ctrl_c():  # SIGINT, as Ctrl-C sends it, at 0.5 s; again every 0.25 s, as a user presses it again
        returned.wait(0.5)
        while not returned.is_set():
            os.kill(os.getpid(), signal.SIGINT)
            returned.wait(0.25)

    # Python's own handler (once, a run saw the whole computation finish: the first SIGINT never reached it).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    presser = threading.Thread(target=press_ctrl_c)
    started = time.perf_counter()
    presser.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            attnlens.attention_flow(att, scope="all", threads=2)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a press already on its way is dropped, not raised later
        returned.set()
        presser.join()
        signal.signal(signal.SIGINT, previous)
    stopped = time.perf_counter() - started
    assert stopped < 0.5 + 1.0, stopped
    # The extension is usable afterwards.
    assert attnlens.attention_flow(att[:2, :10, :10] / att[:2, :10, :10].sum(-1, keepdims=True)).shape == (10,)
