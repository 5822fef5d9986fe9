#!/usr/bin/env python3
"""Reverse check: a safetensors file written by lipgan loads in PyTorch.

test_safetensors (tests/test_safetensors.c, test_write_for_python) leaves
st_written_by_lipgan.safetensors next to its binary. Run, from the repo root:

    make BUILD=build test              # or just build/tests/test_safetensors
    python3 tools/check_st_in_python.py build/tests/st_written_by_lipgan.safetensors

It reads the file with the `safetensors` package if installed, else with a
dozen lines of struct/json + torch.frombuffer (the format is that simple),
and checks every value against what the C test wrote. Exit status 0 = ok.
"""
import json
import struct
import sys
import zlib

import torch

DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
          "U8": torch.uint8, "BOOL": torch.bool}


def load(path):
    try:
        from safetensors import safe_open  # optional
        with safe_open(path, framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}
    except ImportError:
        pass
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0, "lipgan pads the header to a multiple of 8 bytes"
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    body = bytearray(data[8 + n:])
    out = {}
    for name, e in header.items():
        b, en = e["data_offsets"]
        t = torch.frombuffer(body[b:en], dtype=DTYPES[e["dtype"]]) if en > b else torch.empty(0, dtype=DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"]).clone()
    return out, meta


def data_crc32(path):
    """zlib's CRC-32 of the data section (every byte after the header), as
    lipgan stores it under lipgan.crc32 (8 lowercase hex digits)."""
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    return "%08x" % zlib.crc32(data[8 + n:])


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "build/tests/st_written_by_lipgan.safetensors"
    t, meta = load(path)
    crc = meta.pop("lipgan.crc32", None)
    assert crc == data_crc32(path), "lipgan.crc32 %r, data CRC-32 %s" % (crc, data_crc32(path))
    expect_w = torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.25 - 1.0
    expect_b = -0.5 * torch.arange(1, 5, dtype=torch.float32)
    assert set(t) == {"net.weight", "net.bias", "step", "scalar"}, sorted(t)
    assert t["net.weight"].dtype == torch.float32 and torch.equal(t["net.weight"], expect_w), t["net.weight"]
    assert torch.equal(t["net.bias"], expect_b), t["net.bias"]
    assert t["step"].dtype == torch.int64 and t["step"].tolist() == [123456789012], t["step"]
    assert t["scalar"].shape == () and t["scalar"].item() == 3.5, t["scalar"]
    assert meta == {"lipgan_version": "0.1.0",
                    "note": "quote \" backslash \\ newline \n e-acute \u00e9"}, meta
    print("ok: %s loads in torch %s (%d tensors, %d metadata entries)" % (path, torch.__version__, len(t), len(meta)))


if __name__ == "__main__":
    main()
