#!/usr/bin/env python3
"""Writes tests/data/st_from_python.safetensors, the fixture test_safetensors.c
reads to check that lipgan reads a file it did not write.

Uses only the standard library (struct + json), not the safetensors package,
so the file follows the format spec independently of lipgan's writer. On
purpose it differs from what lipgan writes: several dtypes, a scalar, an
empty tensor, JSON keys in another order than the data, and an unpadded
header so the data section is NOT 8-byte aligned.

Run from the repo root:  python3 tools/make_st_fixture.py
The expected values are repeated in tests/test_safetensors.c; keep them in sync.
"""
import json
import struct

# name -> (dtype, shape, struct format char, values); data is laid out in this order
TENSORS = [
    ("h.empty", "F32", [0, 3], "f", []),
    ("i.int32", "I32", [2], "i", [-7, 2147483647]),
    ("g.scalar", "F32", [], "f", [42.0]),
    ("f.mask", "BOOL", [4], "?", [True, False, False, True]),
    ("e.int", "I64", [3], "q", [1, -2, 1 << 40]),
    ("d.bf16", "BF16", [2], None, [1.5, -3.0]),
    ("c.half", "F16", [2, 2], "e", [1.0, -2.0, 6.103515625e-05, 5.960464477539063e-08]),
    ("b.double", "F64", [3], "d", [1.0 / 3.0, -2.5, 1e30]),
    ("a.weight", "F32", [2, 3], "f", [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5]),
]
METADATA = {"format": "pt", "producer": "tools/make_st_fixture.py", "unicode": "h\u00e9llo \u2713"}


def encode(fmt, values):
    if fmt is None:  # bfloat16: the high half of the float32 bits (values are exact)
        return b"".join(struct.pack("<H", struct.unpack("<I", struct.pack("<f", v))[0] >> 16) for v in values)
    return struct.pack("<%d%s" % (len(values), fmt), *values)


def main():
    header, blobs, off = {}, [], 0
    for name, dtype, shape, fmt, values in TENSORS:
        blob = encode(fmt, values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    # keys sorted by name, i.e. not in data order; metadata last
    ordered = {k: header[k] for k in sorted(header)}
    ordered["__metadata__"] = METADATA
    text = json.dumps(ordered, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(text) % 8 == 0:
        text += b" "  # keep the data section unaligned on purpose
    with open("tests/data/st_from_python.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    print("wrote tests/data/st_from_python.safetensors: header %d bytes, data %d bytes" % (len(text), off))


if __name__ == "__main__":
    main()
