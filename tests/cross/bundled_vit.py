"""The bundled fmnist-vit model as an independent PyTorch module: tools/train_fmnist_vit.py's VisionTransformer
loaded from data/models/fmnist-vit/model.safetensors by a separate safetensors reader (shared by the cross tests)."""
import json
import os
import struct
import sys

import numpy as np
import torch


def read_safetensors(path):
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        assert info["dtype"] == "F32"
        out[name] = torch.from_numpy(np.frombuffer(data[begin:end], dtype="<f4").reshape(info["shape"]).copy())
    return out


def load_bundled_model(root):
    """(model in eval mode, config dict, the training tool's module)."""
    sys.path.insert(0, os.path.join(root, "tools"))
    import train_fmnist_vit as reference  # the training tool's model: an implementation independent of attnlens

    model_dir = os.path.join(root, "data", "models", "fmnist-vit")
    config = json.load(open(os.path.join(model_dir, "config.json")))
    model = reference.VisionTransformer(config["image_size"], config["patch_size"], config["embed_dim"],
                                        config["depth"], config["num_heads"], config["mlp_ratio"],
                                        config["num_classes"])
    model.load_state_dict(read_safetensors(os.path.join(model_dir, "model.safetensors")))
    model.eval()
    return model, config, reference
