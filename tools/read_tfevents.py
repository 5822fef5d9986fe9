#!/usr/bin/env python3
"""Reads TensorBoard event files without TensorFlow or protobuf packages.

An independent check of lipgan's writer (src/io/tfevents.c): TFRecord
framing (u64 length, masked CRC-32C of the length, data, masked CRC-32C of
the data; both CRCs verified) and a hand-decoded tensorflow.Event protobuf
(wall_time = 1, step = 2, file_version = 3, summary = 5; Summary.value = 1;
Value.tag = 1, simple_value = 2, image = 4; Image.height = 1, width = 2,
colorspace = 3, encoded_image_string = 4). Unknown fields are skipped by
wire type, as protobuf does.

  tools/read_tfevents.py FILE [--json]

prints one line per value ("step tag value" or "step tag image HxWxC N
bytes"), or with --json one JSON document {"events": [...]} (image bytes as
their length and whether they start with the PNG signature). Exits 1 on a
bad CRC, a truncated record or a malformed protobuf.
"""
import json
import struct
import sys


def _crc_table():
    tab = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        tab.append(c)
    return tab


_TAB = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TAB[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class Malformed(Exception):
    pass


def varint(buf, i):
    shift = v = 0
    while True:
        if i >= len(buf):
            raise Malformed("truncated varint")
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            return v, i
        shift += 7
        if shift > 63:
            raise Malformed("varint too long")


def fields(buf):
    """Yields (field number, wire type, value) of a serialized message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 1:
            if i + 8 > len(buf):
                raise Malformed("truncated fixed64")
            v = buf[i:i + 8]
            i += 8
        elif wt == 2:
            n, i = varint(buf, i)
            if i + n > len(buf):
                raise Malformed("truncated bytes field %d" % f)
            v = buf[i:i + n]
            i += n
        elif wt == 5:
            if i + 4 > len(buf):
                raise Malformed("truncated fixed32")
            v = buf[i:i + 4]
            i += 4
        else:
            raise Malformed("wire type %d" % wt)
        yield f, wt, v


def signed64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def decode_image(buf):
    img = {}
    for f, wt, v in fields(buf):
        if f in (1, 2, 3) and wt == 0:
            img[{1: "height", 2: "width", 3: "colorspace"}[f]] = signed64(v)
        elif f == 4 and wt == 2:
            img["png_bytes"] = len(v)
            img["png_signature"] = v[:8] == b"\x89PNG\r\n\x1a\n"
    return img


def decode_value(buf):
    val = {}
    for f, wt, v in fields(buf):
        if f == 1 and wt == 2:
            val["tag"] = v.decode("utf-8")
        elif f == 2 and wt == 5:
            val["simple_value"] = struct.unpack("<f", v)[0]
        elif f == 4 and wt == 2:
            val["image"] = decode_image(v)
    return val


def decode_event(buf):
    ev = {"values": []}
    for f, wt, v in fields(buf):
        if f == 1 and wt == 1:
            ev["wall_time"] = struct.unpack("<d", v)[0]
        elif f == 2 and wt == 0:
            ev["step"] = signed64(v)
        elif f == 3 and wt == 2:
            ev["file_version"] = v.decode("utf-8")
        elif f == 5 and wt == 2:
            for sf, swt, sv in fields(v):
                if sf == 1 and swt == 2:
                    ev["values"].append(decode_value(sv))
    return ev


def read_records(path):
    with open(path, "rb") as fh:
        data = fh.read()
    i = 0
    n = 0
    while i < len(data):
        if i + 12 > len(data):
            raise Malformed("record %d: truncated header" % n)
        hdr = data[i:i + 8]
        (length,) = struct.unpack("<Q", hdr)
        (lcrc,) = struct.unpack("<I", data[i + 8:i + 12])
        if masked(crc32c(hdr)) != lcrc:
            raise Malformed("record %d: length CRC mismatch" % n)
        if i + 12 + length + 4 > len(data):
            raise Malformed("record %d: truncated data" % n)
        body = data[i + 12:i + 12 + length]
        (dcrc,) = struct.unpack("<I", data[i + 12 + length:i + 16 + length])
        if masked(crc32c(body)) != dcrc:
            raise Malformed("record %d: data CRC mismatch" % n)
        yield body
        i += 16 + length
        n += 1


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 2
    as_json = "--json" in argv[2:]
    try:
        events = [decode_event(b) for b in read_records(argv[1])]
    except (Malformed, UnicodeDecodeError) as e:
        print("read_tfevents: %s: %s" % (argv[1], e), file=sys.stderr)
        return 1
    except OSError as e:
        print("read_tfevents: %s" % e, file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps({"events": events}))
        return 0
    for ev in events:
        if "file_version" in ev:
            print("file_version %s" % ev["file_version"])
        for v in ev["values"]:
            if "image" in v:
                im = v["image"]
                print("%d %s image %dx%dx%d %d bytes" % (ev.get("step", 0), v.get("tag"), im.get("height", 0),
                                                        im.get("width", 0), im.get("colorspace", 0),
                                                        im.get("png_bytes", 0)))
            else:
                print("%d %s %r" % (ev.get("step", 0), v.get("tag"), v.get("simple_value")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
