"""A small safetensors writer and reader for lipgan's reference scripts (no
`safetensors` package needed). write_safetensors: {name: tensor} -> F32, or
I64 for integer tensors; optional __metadata__ first; compact JSON header
padded with spaces to a multiple of 8; written to a temp file and renamed.
read_safetensors: an F32-only file -> ({name: tensor}, metadata)."""
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


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", (path, k, v["dtype"])
        b, e = v["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32)
        out[k] = t.reshape(v["shape"]).clone()
    return out, header.get("__metadata__", {})
