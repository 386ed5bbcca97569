"""attnlens.metrics: Spearman (against scipy), top-k overlap, trapezoid AUC, deletion/insertion curves with a scoring
callback (hand-computed, masks and images, numpy and torch), pointing game and mass in box; and read_safetensors."""
import json
import os
import struct

import numpy as np
import pytest

import attnlens
from attnlens import metrics


def test_spearman_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.integers(0, 5, size=30).astype(float)  # many ties
        b = a + rng.normal(size=30)
        want = stats.spearmanr(a, b).correlation
        assert metrics.spearman(a, b) == pytest.approx(want, abs=1e-12)
    assert metrics.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert metrics.spearman([1, 1, 1], [1, 2, 3]) == 0.0  # constant side: NaN -> 0, as the references do
    m = rng.random((4, 4))
    assert metrics.spearman(m, m ** 3) == pytest.approx(1.0)  # maps compare element by element


def test_spearman_errors():
    with pytest.raises(ValueError, match=r"spearman: lengths differ \(3 and 4\)"):
        metrics.spearman([1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="spearman: needs at least 2 values"):
        metrics.spearman([1], [2])
    with pytest.raises(ValueError, match=r"spearman: shapes differ \(\(2, 3\) and \(3, 2\)\)"):
        metrics.spearman(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="finite"):
        metrics.spearman([1, np.nan], [1, 2])
    with pytest.raises(TypeError, match="real numbers"):
        metrics.spearman(["a", "b"], [1, 2])


def test_top_k_overlap():
    a = np.arange(196, dtype=float)
    b = a.copy()
    b[-19:] = -1  # the top 19 of a are the bottom of b
    assert metrics.top_k_overlap(a, a) == 1.0                    # k = floor(0.1 * 196) = 19
    assert metrics.top_k_overlap(a, b) == 0.0
    assert metrics.top_k_overlap(a, b, k=20) == pytest.approx(1 / 20)  # a's 20th is b's largest
    assert metrics.top_k_overlap(a, b, share=0.2) == pytest.approx(20 / 39)
    # Ties by ascending index: all-equal maps pick the first k entries, so they agree completely.
    assert metrics.top_k_overlap(np.zeros(10), np.zeros(10), k=3) == 1.0
    with pytest.raises(ValueError, match=r"k = 11 is outside \[1, 10\]"):
        metrics.top_k_overlap(np.zeros(10), np.zeros(10), k=11)


def test_auc():
    x = np.linspace(0, 1, 11)
    assert metrics.auc(x, x ** 2) == pytest.approx(np.trapz(x ** 2, x), abs=1e-15)
    assert metrics.auc([0, 1], [1, 1]) == 1.0
    with pytest.raises(ValueError, match="trapezoid AUC: lengths differ"):
        metrics.auc([0, 1, 2], [1, 2])


def test_deletion_and_insertion_with_masks():
    relevance = np.array([[0.1, 0.9], [0.5, 0.5]])  # order: 1, 2, 3 (tie by index), 0
    weights = np.array([[1.0, 4.0], [2.0, 3.0]])
    seen = []

    def score(masks):  # the share of the weight that is kept
        seen.append(masks.shape)
        return (masks * weights).sum(axis=(1, 2)) / weights.sum()

    d = metrics.deletion_curve(relevance, score, batch_size=2)
    np.testing.assert_allclose(d.x, [0, .25, .5, .75, 1])
    np.testing.assert_allclose(d.y, [1, .6, .4, .1, 0])
    assert d.auc == pytest.approx(np.trapz(d.y, d.x))
    assert seen == [(2, 2, 2), (2, 2, 2), (1, 2, 2)]  # 5 steps in batches of 2
    ins = metrics.insertion_curve(relevance, score)
    np.testing.assert_allclose(ins.y, [0, .4, .6, .9, 1])
    x, y, area = ins  # a named tuple
    assert area == pytest.approx(0.25 * (0 + 2 * (.4 + .6 + .9) + 1) / 2)


def test_deletion_on_an_image_numpy_and_torch():
    rng = np.random.default_rng(1)
    image = rng.random((3, 4, 6)).astype(np.float32)   # 2x3 patches of 2x2 pixels
    relevance = np.array([[3.0, 1.0, 2.0], [6.0, 5.0, 4.0]])
    batches = []

    def score(batch):
        batches.append(np.asarray(batch).copy())
        return np.asarray(batch).reshape(len(batch), -1).mean(axis=1)

    d = metrics.deletion_curve(relevance, score, inputs=image, baseline=-1.0)
    first, = batches[:1]
    assert first.shape == (7, 3, 4, 6)                 # 6 patches + the unperturbed image, one batch of 16
    np.testing.assert_array_equal(first[0], image)
    # After 1 step the most relevant patch (row 1, col 0: pixels 2..3, 0..1) is the baseline, the rest the image.
    np.testing.assert_array_equal(first[1][:, 2:4, 0:2], -1.0)
    np.testing.assert_array_equal(first[1][:, 0:2, :], image[:, 0:2, :])
    np.testing.assert_array_equal(first[6], -1.0)
    assert d.y[-1] == pytest.approx(-1.0)
    ins = metrics.insertion_curve(relevance, score, inputs=image, baseline=np.zeros((3, 1, 1)))
    np.testing.assert_array_equal(batches[-1][0], 0.0)
    np.testing.assert_array_equal(batches[-1][-1], image)
    assert ins.y[0] == 0.0
    torch = pytest.importorskip("torch")
    seen = []

    def torch_score(batch):
        seen.append(type(batch))
        return batch.flatten(1).mean(1)

    dt = metrics.deletion_curve(relevance, torch_score, inputs=torch.from_numpy(image), baseline=-1.0)
    assert seen[0] is torch.Tensor
    np.testing.assert_allclose(dt.y, d.y, atol=1e-6)


def test_curve_errors():
    with pytest.raises(ValueError, match="must return 3 values"):
        metrics.deletion_curve(np.zeros(2), lambda m: [1.0])
    with pytest.raises(ValueError, match="do not divide into the 3x3 patch grid"):
        metrics.deletion_curve(np.zeros((3, 3)), lambda b: np.zeros(len(b)), inputs=np.zeros((3, 8, 8)))
    with pytest.raises(TypeError, match="callable"):
        metrics.insertion_curve(np.zeros(3), None)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        metrics.insertion_curve(np.zeros(3), lambda m: np.zeros(len(m)), batch_size=0)


def test_pointing_game_and_mass_in_box():
    relevance = np.zeros((4, 4))
    relevance[1, 2] = 3.0   # the top patch: pixels x 16..23, y 8..15 with 8-pixel patches, centre (20, 12)
    relevance[3, 3] = 1.0
    assert metrics.pointing_game(relevance, (16, 8, 24, 16), 8)
    assert not metrics.pointing_game(relevance, (0, 0, 16, 16), 8)
    assert metrics.mass_in_box(relevance, (16, 8, 24, 16), 8) == pytest.approx(0.75)
    assert metrics.mass_in_box(relevance, (16, 8, 20, 16), (8, 8)) == pytest.approx(0.375)  # half of that patch
    assert metrics.mass_in_box(np.zeros((4, 4)), (0, 0, 16, 16), 8) == pytest.approx(0.25)  # uniform when empty
    assert metrics.localize(relevance, (16, 8, 24, 16), 8) == (True, pytest.approx(0.75))
    with pytest.raises(ValueError, match="localisation: empty box"):
        metrics.mass_in_box(relevance, (5, 5, 5, 9), 8)
    with pytest.raises(ValueError, match=r"localisation needs a \[gh,gw\] map"):
        metrics.pointing_game(np.zeros(16), (0, 0, 4, 4), 8)


def _safetensors(path, tensors):
    header, chunks, offset = {}, [], 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def test_read_safetensors_keeps_dtypes(tmp_path):
    torch = pytest.importorskip("torch")
    w = np.arange(6, dtype="<f4").reshape(2, 3) / 7
    bf16 = torch.tensor([1.5, -2.25, 3.0e38], dtype=torch.bfloat16)
    path = str(tmp_path / "m.safetensors")
    _safetensors(path, {
        "w": ("F32", [2, 3], w.tobytes()),
        "h": ("F16", [2], np.array([0.5, 65504], "<f2").tobytes()),
        "b": ("BF16", [3], bf16.view(torch.int16).numpy().astype("<i2").tobytes()),
        "ids": ("I64", [1, 3], np.array([[0, 1, -2]], "<i8").tobytes()),
        "mask": ("BOOL", [2], bytes([1, 0])),
        "d": ("F64", [], np.array(np.pi, "<f8").tobytes()),
        "f8": ("F8_E4M3", [2], bytes([0x38, 0xC0])),
    })
    t = attnlens.read_safetensors(path)
    assert list(t) == ["w", "h", "b", "ids", "mask", "d", "f8"]  # the byte buffer's order
    assert t["w"].dtype == np.float32 and np.array_equal(t["w"], w)
    assert t["h"].dtype == np.float16 and t["h"].tolist() == [0.5, 65504.0]
    assert t["b"].dtype == np.float32 and np.array_equal(t["b"], bf16.float().numpy())
    assert t["ids"].dtype == np.int64 and t["ids"].tolist() == [[0, 1, -2]]
    assert t["mask"].dtype == np.bool_ and t["mask"].tolist() == [True, False]
    assert t["d"].shape == () and t["d"] == np.pi
    assert t["f8"].dtype == np.uint8 and t["f8"].tolist() == [0x38, 0xC0]


def test_read_safetensors_bundled_model_and_errors(tmp_path):
    from safetensors_file import encode_safetensors  # tools/: an independent writer

    root = os.path.join(os.path.dirname(__file__), "..", "..")
    t = attnlens.read_safetensors(os.path.join(root, "data", "models", "fmnist-vit", "model.safetensors"))
    assert t["blocks.0.attn.qkv.weight"].shape == (192, 64) and t["pos_embed"].shape == (1, 65, 64)
    path = tmp_path / "x.safetensors"
    data = encode_safetensors({"a": np.ones((2, 2), np.float32)})
    path.write_bytes(data[:-3])
    with pytest.raises(attnlens.InputError, match="x.safetensors"):
        attnlens.read_safetensors(path)
    path.write_bytes(b"\x01")
    with pytest.raises(ValueError, match="x.safetensors"):
        attnlens.read_safetensors(str(path))
    with pytest.raises(FileNotFoundError):
        attnlens.read_safetensors(tmp_path / "missing.safetensors")
