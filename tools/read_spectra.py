#!/usr/bin/env python3
"""Reads a lipgan spectra.bin (the spectral monitor's log, include/lipgan/monitor.h)
with the standard library only.

  tools/read_spectra.py RUN_DIR/spectra.bin [--json] [--sv]

Prints one line per (record, layer), or with --json one JSON document
{"records": [...], "truncated": bool}; --sv includes the singular values.
Format (little-endian): header "LGSPECTR", u32 version 1, u32 header size;
records u32 0x43455053, u32 body size B, body, u32 zlib crc32(body). Exits 1
on a corrupt file; a partial last record (a crash during an append) is
dropped and reported as truncated.
"""
import json
import struct
import sys
import zlib

LAYER_KEYS = ["sigma_exact", "sigma1", "ratio01", "r", "sigma_est", "op_norm", "op_norm_delta",
              "eff_norm", "auc", "frac_above"]
NET_KEYS = ["lip_upper_product", "lip_upper", "lip_lower"]
KINDS = ["linear", "conv", "convT"]


class Corrupt(Exception):
    pass


def cstr(b):
    return b.split(b"\0", 1)[0].decode("utf-8")


def decode_body(b, with_sv):
    o = 0

    def take(n):
        nonlocal o
        if o + n > len(b):
            raise Corrupt("record body too short")
        v = b[o:o + n]
        o += n
        return v

    step, wall = struct.unpack("<qd", take(16))
    net = cstr(take(16))
    nl, ns = struct.unpack("<II", take(8))
    nsc = struct.unpack("<%dd" % ns, take(8 * ns))
    rec = {"step": step, "wall_time": wall, "net": net, "layers": []}
    for k, key in enumerate(NET_KEYS):
        rec[key] = nsc[k] if k < ns else float("nan")
    for _ in range(nl):
        name = cstr(take(48))
        kind, lip, event, _pad = take(4)
        nsv, rows, cols, ls = struct.unpack("<IqqI", take(24))
        sc = struct.unpack("<%dd" % ls, take(8 * ls))
        sv = struct.unpack("<%df" % nsv, take(4 * nsv))
        layer = {"name": name, "kind": KINDS[kind] if kind < 3 else kind, "lip": lip, "event": event,
                 "rows": rows, "cols": cols, "nsv": nsv}
        for k, key in enumerate(LAYER_KEYS):
            layer[key] = sc[k] if k < ls else float("nan")
        if with_sv:
            layer["sv"] = list(sv)
        rec["layers"].append(layer)
    if o != len(b):
        raise Corrupt("record body has %d extra bytes" % (len(b) - o))
    return rec


def read(path, with_sv=False):
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < 16 or data[:8] != b"LGSPECTR":
        raise Corrupt("not a lipgan spectra file")
    version, hb = struct.unpack("<II", data[8:16])
    if version != 1 or hb < 16 or hb > len(data):
        raise Corrupt("version %d not supported" % version)
    i, recs, truncated = hb, [], False
    while i < len(data):
        if len(data) - i < 12:
            truncated = True
            break
        magic, bl = struct.unpack("<II", data[i:i + 8])
        if magic != 0x43455053:
            raise Corrupt("bad record magic at byte %d" % i)
        if i + 12 + bl > len(data):
            truncated = True
            break
        body = data[i + 8:i + 8 + bl]
        (crc,) = struct.unpack("<I", data[i + 8 + bl:i + 12 + bl])
        if zlib.crc32(body) & 0xFFFFFFFF != crc:
            raise Corrupt("record %d fails its CRC" % len(recs))
        recs.append(decode_body(body, with_sv))
        i += 12 + bl
    return recs, truncated


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 2
    try:
        recs, truncated = read(argv[1], "--sv" in argv[2:])
    except (Corrupt, OSError, UnicodeDecodeError) as e:
        print("read_spectra: %s: %s" % (argv[1], e), file=sys.stderr)
        return 1
    if "--json" in argv[2:]:
        # NaN/Infinity are not JSON: write them as null
        def clean(x):
            if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
                return None
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items()}
            if isinstance(x, list):
                return [clean(v) for v in x]
            return x
        print(json.dumps({"records": clean(recs), "truncated": truncated}))
        return 0
    for r in recs:
        for l in r["layers"]:
            print("%d %s %s %s %dx%d sigma %.6g est %.6g op %.6g auc %.4f" % (
                r["step"], r["net"], l["name"], l["kind"], l["rows"], l["cols"], l["sigma_exact"],
                l["sigma_est"], l["op_norm"], l["auc"]))
    if truncated:
        print("(partial last record dropped)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
