"""Writes safetensors files without the safetensors package (Debian has no python3-safetensors): an 8-byte
little-endian header size, the JSON header (padded with spaces to a multiple of 8 so F32 data is aligned), the
bytes. Every tensor is stored as F32. Used by the training tools and the cross-check tests."""
import json
import os
import struct


def encode_safetensors(tensors, metadata=None):
    """{name: torch tensor or numpy array} -> the bytes of a safetensors file (F32, in the given order)."""
    header, chunks, offset = ({"__metadata__": metadata} if metadata else {}), [], 0
    for name, t in tensors.items():
        if hasattr(t, "detach"):
            t = t.detach().cpu().contiguous().float().numpy()
        data = t.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write_safetensors(path, tensors, metadata=None):
    """encode_safetensors written to `path` atomically (a temporary file, then rename)."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(encode_safetensors(tensors, metadata))
    os.replace(tmp, path)
