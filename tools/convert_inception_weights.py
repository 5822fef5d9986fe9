#!/usr/bin/env python3
"""Converts Inception-v3 weights to the safetensors file lipgan's C network
reads (lg_inception_load, include/lipgan/inception.h).

Inputs (download them on a machine with network access; lipgan never does):
  * pytorch-fid's  pt_inception-2015-12-05-6726825d.pth
      https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/
    the TF-ported FID network: fc has 1008 classes -> variant "fid" (use this
    one for FID / KID / IS numbers comparable with the literature);
  * torchvision's  inception_v3_google-*.pth  (fc has 1000 classes)
    -> variant "torchvision" (unpatched blocks; AuxLogits are dropped).

Usage:
  python3 tools/convert_inception_weights.py pt_inception-2015-12-05-6726825d.pth \
      inception-fid.safetensors
  lipgan ... --inception inception-fid.safetensors

Output: one F32 tensor per state-dict entry the C network uses, named as in
torchvision/pytorch-fid ("Mixed_6b.branch7x7_2.conv.weight",
"Mixed_6b.branch7x7_2.bn.running_var", ..., "fc.weight", "fc.bias"), and
metadata lipgan_inception_variant = fid|torchvision, source = the input file
name. BatchNorm's num_batches_tracked and the AuxLogits head are dropped;
any other missing, extra or misshaped tensor is an error that names it.

Needs only torch (no numpy, no safetensors package): the writer below uses
struct + json. Loading uses torch.load(weights_only=True), so the .pth is
not executed as a pickle program.
"""
import argparse
import ctypes
import json
import os
import struct
import sys

# ---------------------------------------------------------------------------
# The architecture's state-dict entries (torchvision Inception3 without aux)
# ---------------------------------------------------------------------------


def conv_table():
    """[(prefix, in_ch, out_ch, kh, kw)] of every BasicConv2d, forward order."""
    t = [
        ("Conv2d_1a_3x3", 3, 32, 3, 3),
        ("Conv2d_2a_3x3", 32, 32, 3, 3),
        ("Conv2d_2b_3x3", 32, 64, 3, 3),
        ("Conv2d_3b_1x1", 64, 80, 1, 1),
        ("Conv2d_4a_3x3", 80, 192, 3, 3),
    ]

    def a(n, ic, pf):
        t.extend([
            (n + ".branch1x1", ic, 64, 1, 1),
            (n + ".branch5x5_1", ic, 48, 1, 1),
            (n + ".branch5x5_2", 48, 64, 5, 5),
            (n + ".branch3x3dbl_1", ic, 64, 1, 1),
            (n + ".branch3x3dbl_2", 64, 96, 3, 3),
            (n + ".branch3x3dbl_3", 96, 96, 3, 3),
            (n + ".branch_pool", ic, pf, 1, 1),
        ])

    def b(n, ic):
        t.extend([
            (n + ".branch3x3", ic, 384, 3, 3),
            (n + ".branch3x3dbl_1", ic, 64, 1, 1),
            (n + ".branch3x3dbl_2", 64, 96, 3, 3),
            (n + ".branch3x3dbl_3", 96, 96, 3, 3),
        ])

    def c(n, ic, c7):
        t.extend([
            (n + ".branch1x1", ic, 192, 1, 1),
            (n + ".branch7x7_1", ic, c7, 1, 1),
            (n + ".branch7x7_2", c7, c7, 1, 7),
            (n + ".branch7x7_3", c7, 192, 7, 1),
            (n + ".branch7x7dbl_1", ic, c7, 1, 1),
            (n + ".branch7x7dbl_2", c7, c7, 7, 1),
            (n + ".branch7x7dbl_3", c7, c7, 1, 7),
            (n + ".branch7x7dbl_4", c7, c7, 7, 1),
            (n + ".branch7x7dbl_5", c7, 192, 1, 7),
            (n + ".branch_pool", ic, 192, 1, 1),
        ])

    def d(n, ic):
        t.extend([
            (n + ".branch3x3_1", ic, 192, 1, 1),
            (n + ".branch3x3_2", 192, 320, 3, 3),
            (n + ".branch7x7x3_1", ic, 192, 1, 1),
            (n + ".branch7x7x3_2", 192, 192, 1, 7),
            (n + ".branch7x7x3_3", 192, 192, 7, 1),
            (n + ".branch7x7x3_4", 192, 192, 3, 3),
        ])

    def e(n, ic):
        t.extend([
            (n + ".branch1x1", ic, 320, 1, 1),
            (n + ".branch3x3_1", ic, 384, 1, 1),
            (n + ".branch3x3_2a", 384, 384, 1, 3),
            (n + ".branch3x3_2b", 384, 384, 3, 1),
            (n + ".branch3x3dbl_1", ic, 448, 1, 1),
            (n + ".branch3x3dbl_2", 448, 384, 3, 3),
            (n + ".branch3x3dbl_3a", 384, 384, 1, 3),
            (n + ".branch3x3dbl_3b", 384, 384, 3, 1),
            (n + ".branch_pool", ic, 192, 1, 1),
        ])

    a("Mixed_5b", 192, 32)
    a("Mixed_5c", 256, 64)
    a("Mixed_5d", 288, 64)
    b("Mixed_6a", 288)
    c("Mixed_6b", 768, 128)
    c("Mixed_6c", 768, 160)
    c("Mixed_6d", 768, 160)
    c("Mixed_6e", 768, 192)
    d("Mixed_7a", 768)
    e("Mixed_7b", 1280)
    e("Mixed_7c", 2048)
    assert len(t) == 94
    return t


BN_PARTS = ("weight", "bias", "running_mean", "running_var")


def state_dict_spec(num_classes):
    """[(name, shape)] of every tensor lipgan reads, in file order."""
    spec = []
    for prefix, ic, oc, kh, kw in conv_table():
        spec.append((prefix + ".conv.weight", (oc, ic, kh, kw)))
        for p in BN_PARTS:
            spec.append((prefix + ".bn." + p, (oc,)))
    spec.append(("fc.weight", (num_classes, 2048)))
    spec.append(("fc.bias", (num_classes,)))
    return spec


# ---------------------------------------------------------------------------
# A minimal safetensors writer (https://github.com/huggingface/safetensors)
# ---------------------------------------------------------------------------


def tensor_bytes(t):
    """Raw little-endian float32 bytes of a CPU tensor, without numpy."""
    import torch

    t = t.detach().to("cpu", torch.float32).contiguous()
    if sys.byteorder != "little":
        raise SystemExit("error: this writer assumes a little-endian machine")
    return ctypes.string_at(t.data_ptr(), t.numel() * 4)


def write_safetensors(path, tensors, metadata=None):
    """tensors: [(name, float32 tensor)] in the order to store them."""
    header, off = {}, 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    for name, t in tensors:
        data = tensor_bytes(t)
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
        blobs.append(data)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)  # 8-byte aligned data section
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# Conversion
# ---------------------------------------------------------------------------


def load_state_dict(path):
    import torch

    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only
        sd = torch.load(path, map_location="cpu")
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise SystemExit("error: %s does not hold a state dict (got %s)" % (path, type(sd).__name__))
    out = {}
    for k, v in sd.items():
        if k.startswith("module."):  # saved from DataParallel
            k = k[len("module."):]
        out[k] = v
    return out


def convert(sd, variant=None):
    """Returns ([(name, tensor)], variant); raises SystemExit naming any problem."""
    import torch

    if "fc.weight" not in sd:
        raise SystemExit("error: no tensor 'fc.weight': not an Inception-v3 state dict")
    k = int(sd["fc.weight"].shape[0])
    if variant is None:
        if k == 1008:
            variant = "fid"
        elif k == 1000:
            variant = "torchvision"
        else:
            raise SystemExit("error: fc.weight has %d rows (1008 = pytorch-fid, 1000 = torchvision); "
                             "pass --variant" % k)
    spec = state_dict_spec(k)
    wanted = {n for n, _ in spec}
    problems = []
    for name, shape in spec:
        if name not in sd:
            problems.append("missing tensor %s %s" % (name, shape))
        elif tuple(sd[name].shape) != shape:
            problems.append("tensor %s has shape %s, expected %s" % (name, tuple(sd[name].shape), shape))
    for name in sorted(sd):
        if name in wanted or name.endswith(".num_batches_tracked") or name.startswith("AuxLogits."):
            continue
        problems.append("unexpected tensor %s %s" % (name, tuple(sd[name].shape)))
    if problems:
        raise SystemExit("error: the state dict does not match Inception-v3:\n  " + "\n  ".join(problems))
    tensors = []
    for name, _ in spec:
        t = sd[name].detach().to(torch.float32)
        if not bool(torch.isfinite(t).all()):
            raise SystemExit("error: tensor %s has NaN/Inf values" % name)
        tensors.append((name, t))
    return tensors, variant


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pth", help="pt_inception-2015-12-05-6726825d.pth or inception_v3_google-*.pth")
    ap.add_argument("out", help="output .safetensors")
    ap.add_argument("--variant", choices=["fid", "torchvision"],
                    help="override the variant guessed from fc (1008 rows: fid, 1000: torchvision)")
    args = ap.parse_args()
    tensors, variant = convert(load_state_dict(args.pth), args.variant)
    write_safetensors(args.out, tensors, {
        "lipgan_inception_variant": variant,
        "source": os.path.basename(args.pth),
        "producer": "tools/convert_inception_weights.py",
    })
    n = sum(t.numel() for _, t in tensors)
    print("wrote %s: %d tensors, %d parameters, variant %s" % (args.out, len(tensors), n, variant))


if __name__ == "__main__":
    main()
