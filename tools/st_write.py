"""A small safetensors writer for lipgan's reference scripts (no
`safetensors` package needed): {name: tensor} -> F32, or I64 for integer
tensors; optional __metadata__ first; compact JSON header padded with
spaces to a multiple of 8; written to a temp file and renamed."""
import json
import os
import struct

import torch


def write_safetensors(path, tensors, meta=None):
    header, blobs, off = {}, [], 0
    if meta:
        header["__metadata__"] = {k: str(v) for k, v in meta.items()}
    for name, t in tensors.items():
        t = t.detach().contiguous()
        if t.dtype in (torch.int64, torch.int32):
            blob = struct.pack("<%dq" % t.numel(), *t.reshape(-1).tolist())
            dtype = "I64"
        else:
            blob = struct.pack("<%df" % t.numel(), *t.to(torch.float32).reshape(-1).tolist())
            dtype = "F32"
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
