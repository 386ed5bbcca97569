#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora to tests/fuzz/seeds/<harness>/: small valid files of every kind each parser
reads (plus a few near-misses), made with the standard library only. The output is committed; rerun after
changing this script:  /usr/bin/python3 tests/fuzz/make_seeds.py"""
import gzip
import json
import os
import shutil
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "seeds")


def put(harness, name, data):
    os.makedirs(os.path.join(OUT, harness), exist_ok=True)
    with open(os.path.join(OUT, harness, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


# ---- .npy ----
def npy(descr, shape, payload, major=1, fortran=False, pad=True):
    shape_text = "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape_text)
    prefix = 10 if major == 1 else 12
    if pad:
        header += " " * ((64 - (prefix + len(header) + 1) % 64) % 64)
    header += "\n"
    size = struct.pack("<H", len(header)) if major == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([major, 0]) + size + header.encode("latin1") + payload


put("npy", "f8_2x3.npy", npy("<f8", (2, 3), struct.pack("<6d", 0.5, 0.25, 0.25, 1, 0, 0)))
put("npy", "f4_be_4_v2.npy", npy(">f4", (4,), struct.pack(">4f", 1, -2, 3.5, float("inf")), major=2))
put("npy", "scalar_v3.npy", npy("<f8", (), struct.pack("<d", 7), major=3))
put("npy", "empty_0x3.npy", npy("<f4", (0, 3), b""))
put("npy", "stack_1x1x2x2.npy", npy("<f4", (1, 1, 2, 2), struct.pack("<4f", 0.5, 0.5, 0.25, 0.75), pad=False))
put("npy", "fortran.npy", npy("<f8", (1,), struct.pack("<d", 1), fortran=True))


# ---- safetensors ----
def safetensors(tensors, metadata=None):
    header, blob = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + blob


put("safetensors", "f32.safetensors",
    safetensors([("w", "F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4))], {"format": "pt"}))
put("safetensors", "mixed.safetensors", safetensors([
    ("a", "F16", [2], struct.pack("<2H", 0x3c00, 0x7c00)),
    ("b", "BF16", [1, 2], struct.pack("<2H", 0x3f80, 0x0001)),
    ("c", "F64", [1], struct.pack("<d", 1e300)),
    ("ids", "I64", [3], struct.pack("<3q", 0, 1, -2)),
    ("m", "U8", [2], b"\x00\xff"),
    ("flag", "BOOL", [1], b"\x01"),
    ("e", "F32", [0, 5], b""),
]))
put("safetensors", "i32_i16_i8.safetensors", safetensors([
    ("x", "I32", [1], struct.pack("<i", -7)), ("y", "I16", [2], struct.pack("<2h", 1, -1)), ("z", "I8", [1], b"\x80"),
    ("u", "U32", [1], struct.pack("<I", 4000000000)), ("v", "U16", [1], struct.pack("<H", 65535))]))
put("safetensors", "empty.safetensors", safetensors([]))

# ---- config.json ----
put("model_config", "fmnist_vit.json", open(os.path.join(ROOT, "data/models/fmnist-vit/config.json"), "rb").read())
put("model_config", "sentiment_bert.json",
    open(os.path.join(ROOT, "data/models/sentiment-bert/config.json"), "rb").read())
put("model_config", "hf_vit.json", json.dumps({
    "num_attention_heads": 3, "layer_norm_eps": 1e-12, "id2label": {"0": "cat", "1": "dog", "2": "bird"},
    "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}))
put("model_config", "bert_small.json", json.dumps({
    "vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
    "hidden_act": "gelu_new", "do_lower_case": False, "attention_mask_value": -3.4028234663852886e38,
    "labels": ["neg", "pos"]}))

# ---- vocab.txt ----
vocab = open(os.path.join(ROOT, "data/models/sentiment-bert/vocab.txt"), "rb").read().split(b"\n")
put("vocab", "bundled_head.txt", b"\n".join(vocab[:40] + vocab[1000:1040]) + b"\n")
put("vocab", "crlf.txt", b"[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n[MASK]\r\nhello\r\n##s\r\ncaf\xc3\xa9\r\n\xe6\x9d\xb1\r\n")
put("vocab", "no_final_newline.txt", b"[UNK]\n[CLS]\n[SEP]\nthe\n##e")

# ---- WordPiece: flags (lowercase 1, nfc 2, special tokens 4, pair 8), max_length, max_chars, text ----
for i, (flags, text) in enumerate([
        (7, "The food was not good at all."), (15, "Naïve café, don't!\x1eUnaffable [MASK] tokens"),
        (1, "東京 is big; ǅemal İstanbul ﬁne"), (6, "HeLLo\tworld\u00a0\u200b\x00\x07 unaffable"),
        (3, "e\u0301 cafe\u0301 — «quotes» 123,456")]):
    put("wordpiece", f"text{i}.bin", bytes([flags, 32 if i else 200, 100]) + text.encode())


# ---- image data sets: mode byte 0 samples.json, 1 IDX images, 2 IDX images + labels ----
def idx_images(n, rows, cols, magic=2051):
    return struct.pack(">IIII", magic, n, rows, cols) + bytes((i * 37) % 256 for i in range(n * rows * cols))


def idx_labels(labels):
    return struct.pack(">II", 2049, len(labels)) + bytes(labels)


samples = [{"file": "a.png", "label": 3, "box_xyxy": [1, 1, 7, 6]},
           {"file": "b.bmp", "label": 0, "box_xyxy": [0, 0, 6, 4], "label_name": "x"}]
put("datasets", "samples.bin", b"\x00" + json.dumps(samples, indent=1).encode())
put("datasets", "idx_raw.bin", b"\x01" + idx_images(2, 3, 4))
put("datasets", "idx_gz.bin", b"\x01" + gzip.compress(idx_images(3, 2, 2), mtime=0))
images, labels = idx_images(2, 2, 3), idx_labels([1, 9])
put("datasets", "idx_labels.bin", b"\x02" + struct.pack(">H", len(images)) + images + labels)
images_gz, labels_gz = gzip.compress(images, mtime=0), gzip.compress(labels, mtime=0)
put("datasets", "idx_labels_gz.bin", b"\x02" + struct.pack(">H", len(images_gz)) + images_gz + labels_gz)

# ---- text data sets: byte 0 bit 0 = TSV, bits 1.. = split ----
put("text_dataset", "sentiment.bin", b"\x00" + json.dumps(
    [{"text": "Great food!", "class": 1}, {"text": "Awful.", "class": 0}, {"text": "meh", "label": 1},
     {"text": "", "class": None}]).encode())
put("text_dataset", "tsv.bin", b"\x03" + b"1\tGreat acting!\n0\tBoring plot.\r\n\tno label\nplain line\n")

# ---- split-run tables: byte 0 = rows per item - 1 (bits 0-1) and unit - 1 (bits 2-3), byte 1 = items - 1 ----
put("run_table", "two_rows.bin", b"\x01\x04" + b"0,a\n0,b\n3,\"q,\n\"\"x\"\n3,c\n1,d\n1,")
put("run_table", "units.bin", b"\x04\x07" + b"4,1\n5,2\n6,3e-07\n7,nan\n")


# ---- images: byte 0 mode (resize 0-2, interpolation << 2, crop 0x10), resize a, b, crop h, w (16-bit each) ----
def png(width, height, rgb=True):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff)
    channels = 3 if rgb else 1
    raw = b"".join(b"\x00" + bytes((x * 40 + y * 7) % 256 for x in range(width * channels)) for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2 if rgb else 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def bmp(width, height):
    row = (width * 3 + 3) // 4 * 4
    pixels = b"".join(bytes((x + y) % 256 for x in range(width * 3)) + b"\x00" * (row - width * 3)
                      for y in range(height))
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + len(pixels), 0, 0, 54) + info + pixels


def params(mode, a, b, ch=0, cw=0):
    return bytes([mode]) + struct.pack(">HHHH", a, b, ch, cw)


put("image", "png_shorter_crop.bin", params(1 | 0x10, 8, 0, 6, 6) + png(5, 3))
put("image", "png_exact_bilinear.bin", params(2 | (1 << 2), 4, 7) + png(2, 9, rgb=False))
put("image", "png_tall_1x400.bin", params(1, 224, 0) + png(1, 400, rgb=False))
put("image", "bmp_none_pad.bin", params(0 | 0x10, 0, 0, 9, 3) + bmp(3, 2))
put("image", "synthetic_area.bin", params(2 | (3 << 2), 3, 5) + bytes([7, 9]) + bytes(range(64)))

# ---- bpe: byte 0 flags (1 CLIP, 2 prefix space, 4 special tokens, 8 pair, 16 pad, 0x40 files), byte 1 max_length ----
for i, (flags, text) in enumerate([
        (4, "Hello  world's 2024!! \n ok"), (5, "A Photo of a CAT!! <|endoftext|> caf\u00e9"), (4 | 8, "the a\x1ethe b"),
        (6, "the <mask> thing"), (1 | 16, "\u039f\u0394\u039f\u03a3 it's"), (0, "aaaaaaaa" * 8),
        (4, "\U0001f468\u200d\U0001f469 \ufeff\x85\x1c x"), (1, "\u00a0\u2003 mixed\u3000SPACES "), (4, "")]):
    put("bpe", f"text{i}.bin", bytes([flags, 40 if i % 2 else 77]) + text.encode())
put("bpe", "files.bin", bytes([0x40 | 4, 16]) + b'{"<s>": 0, "</s>": 1, "a": 2}' + b"\0" + b"#version: 0.2\na a\n")

# ---- options: byte 0 picks the parser (0 grid, 1 decimal, 2 resize, 3 crop, 4 interpolation, 5 mean/std list
# (+8: positive), 6 "preset size", 7 split) ----
for i, (kind, text) in enumerate([
        (0, "14x14"), (0, "8X16"), (1, "248"), (1, "007"), (2, "248"), (2, "224x320"), (2, "none"), (3, "224"),
        (3, "7x9"), (4, "bicubic"), (5, "0.485,0.456,0.406"), (13, "0.229, 0.224,0.225"), (5, "0.5"),
        (6, "timm-deit 224"), (6, "dino 518"), (6, "hf"), (7, "test")]):
    put("options", f"opt{i:02d}.bin", bytes([kind]) + text.encode())

if __name__ == "__main__":
    print("seeds written to", OUT)
