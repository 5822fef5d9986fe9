#!/usr/bin/env python3
"""Writes tests/data/inception/reference.safetensors, the PyTorch outputs
tests/test_inception.c compares lipgan's C Inception-v3 against.

The network is pytorch-fid's FID Inception-v3 (torchvision's Inception3 with
FIDInceptionA/C/E_1/E_2 patches), rebuilt below with plain torch.nn so that
torchvision is not needed. Its weights are SYNTHETIC: every value is a hash
of (seed, tensor name, element index), the formula of
lg_inception_write_synthetic (include/lipgan/inception.h), reproduced here
bit for bit with exact int64 / float64 tensor arithmetic. So only the
outputs (a few tens of KB) are committed; the C test regenerates the ~95 MB
weights file itself. The reference also stores, per tensor (sorted by
name), the sum of the float32 bit patterns, so the test proves that both
sides built identical weights before it compares any activation.

The reference forward runs in float64 (weights and inputs are the float32
values, widened), so the test measures the C float32 error alone.

Besides pool3 and the fc output ("logits.*", with fc.bias), it stores the
Inception Score's logits WITHOUT the bias ("logits_unbiased.*" = pool3 @
fc.weight^T, as the original IS code and torch-fidelity's
"logits_unbiased"), and those of the RGB pair after 8-bit quantization
("input.rgb_q8", "logits_unbiased.rgb_q8": round((x + 1) * 127.5) clamped to
0..255, then / 127.5 - 1, in float32 as lg_eval_quantize8), from which the
test computes the IS that lg_eval_samples must report.

Run from the repo root (a few seconds):
  python3 tools/gen_inception_reference.py [--weights-out W.safetensors]
--weights-out also writes the synthetic weights with the converter's writer
(for a byte-level cross-check with the C writer; not committed).
"""
import argparse
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert_inception_weights as conv  # noqa: E402

SEED = 20240607
OUT_DIR = "tests/data/inception"

# ---------------------------------------------------------------------------
# Synthetic weights (same formula as src/metrics/inception_synth.c)
# ---------------------------------------------------------------------------
M32 = 0xFFFFFFFF
GOLDEN32 = 0x9E3779B9


def fnv1a32(s):
    h = 2166136261
    for ch in s.encode("utf-8"):
        h = ((h ^ ch) * 16777619) & M32
    return h


def mul32(h, c):
    """(h * c) mod 2^32 for an int64 tensor h in [0, 2^32): split c in
    16-bit halves so no product leaves int64 (no reliance on wrap-around)."""
    hi, lo = c >> 16, c & 0xFFFF
    return ((((h * hi) & 0xFFFF) << 16) + h * lo) & M32


def fmix32(h):
    h = h ^ (h >> 16)
    h = mul32(h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = mul32(h, 0xC2B2AE35)
    return h ^ (h >> 16)


def synth(name, shape, seed, offset, scale):
    n = math.prod(shape)
    key = fnv1a32(name) ^ ((seed * GOLDEN32) & M32)
    i = torch.arange(n, dtype=torch.int64)
    h = fmix32((key + i * GOLDEN32) & M32)
    u = ((h >> 8) - (1 << 23)).to(torch.float64) * 2.0**-23  # exact, [-1, 1)
    v = scale * u
    v = offset + v
    return v.to(torch.float32).reshape(shape)


def synth_param(name, shape, seed):
    if name.endswith(".conv.weight"):
        fan_in = shape[1] * shape[2] * shape[3]
        return synth(name, shape, seed, 0.0, math.sqrt(6.0 / fan_in))
    part = name.rsplit(".", 1)[1]
    if name == "fc.weight":
        return synth(name, shape, seed, 0.0, math.sqrt(3.0 / 2048))
    if name == "fc.bias":
        return synth(name, shape, seed, 0.0, 0.1)
    off, sc = {"weight": (1.0, 0.25), "bias": (0.0, 0.1), "running_mean": (0.0, 0.1),
               "running_var": (1.0, 0.25)}[part]
    return synth(name, shape, seed, off, sc)


def bitsum(t):
    """Sum of the float32 bit patterns as unsigned ints (exact in int64)."""
    b = t.contiguous().view(torch.int32).to(torch.int64) & M32
    return int(b.sum())


# ---------------------------------------------------------------------------
# The network (facts from torchvision/models/inception.py and
# pytorch-fid/src/pytorch_fid/inception.py)
# ---------------------------------------------------------------------------


class BasicConv2d(nn.Module):
    def __init__(self, ic, oc, **kw):
        super().__init__()
        self.conv = nn.Conv2d(ic, oc, bias=False, **kw)
        self.bn = nn.BatchNorm2d(oc, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def avg_excl(x):  # TF's average pool ignores the padded zeros
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    def __init__(self, ic, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(ic, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(ic, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(ic, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(ic, pool_features, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(avg_excl(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    def __init__(self, ic):
        super().__init__()
        self.branch3x3 = BasicConv2d(ic, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(ic, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, bd, bp], 1)


class FIDInceptionC(nn.Module):
    def __init__(self, ic, c7):
        super().__init__()
        self.branch1x1 = BasicConv2d(ic, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(ic, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(ic, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(ic, 192, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for m in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = m(bd)
        bp = self.branch_pool(avg_excl(x))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    def __init__(self, ic):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(ic, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(ic, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], 1)


class FIDInceptionE(nn.Module):
    """E_1 (average pool without padded zeros) or E_2 (max pool)."""

    def __init__(self, ic, max_pool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(ic, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(ic, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(ic, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(ic, 192, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        if self.max_pool:
            bp = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            bp = avg_excl(x)
        bp = self.branch_pool(bp)
        return torch.cat([b1, b3, bd, bp], 1)


class FIDInception3(nn.Module):
    def __init__(self, num_classes=1008):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = FIDInceptionA(192, 32)
        self.Mixed_5c = FIDInceptionA(256, 64)
        self.Mixed_5d = FIDInceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, 128)
        self.Mixed_6c = FIDInceptionC(768, 160)
        self.Mixed_6d = FIDInceptionC(768, 160)
        self.Mixed_6e = FIDInceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, max_pool=False)
        self.Mixed_7c = FIDInceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x):
        """x (N, C, H, W) in [-1, 1], C = 1 or 3 -> (pool3 (N, 2048), logits (N, K))."""
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, "Mixed_" + name)(x)
        pool3 = F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)
        return pool3, self.fc(pool3)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights-out", help="also write the synthetic weights here (not committed)")
    ap.add_argument("--out-dir", default=OUT_DIR)
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

    model = FIDInception3().eval()
    sd = model.state_dict()
    spec = conv.state_dict_spec(1008)
    # the module names/shapes must be exactly the converter's (and C's) list
    got = {k: tuple(v.shape) for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    assert got == dict(spec), "model state dict differs from convert_inception_weights.state_dict_spec"

    weights = [(name, synth_param(name, shape, SEED)) for name, shape in spec]
    model.load_state_dict(dict(weights), strict=False)
    if args.weights_out:
        conv.write_safetensors(args.weights_out, weights, {
            "lipgan_inception_variant": "fid", "source": "synthetic, seed %d" % SEED})

    g = torch.Generator().manual_seed(SEED)
    x_rgb = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1    # (2, 3, 32, 32) float32
    x_gray = torch.rand(1, 1, 28, 28, generator=g) * 2 - 1   # (1, 1, 28, 28)
    r_down = torch.rand(1, 2, 20, 17, generator=g) * 2 - 1   # resize checks
    r_up = torch.rand(1, 2, 5, 7, generator=g) * 2 - 1

    out = {}
    with torch.no_grad():
        m64 = FIDInception3().double().eval()
        m64.load_state_dict({k: v.double() for k, v in weights}, strict=False)
        w64 = m64.fc.weight  # (K, 2048)
        for tag, x in (("rgb", x_rgb), ("gray", x_gray)):
            p64, l64 = m64(x.double())
            p32, l32 = model(x)
            out["input." + tag] = x
            out["pool3." + tag] = p64.float()
            out["logits." + tag] = l64.float()
            out["logits_unbiased." + tag] = (p64 @ w64.t()).float()
            print("%s: pool3 |mean| %.4g max %.4g; logits std %.4g max|.| %.4g; torch float32 vs "
                  "float64: pool3 max err %.3g, logits max err %.3g" % (
                      tag, p64.abs().mean(), p64.max(), l64.std(), l64.abs().max(),
                      (p32.double() - p64).abs().max(), (l32.double() - l64).abs().max()))
        # what lg_eval_samples feeds the network: 8-bit levels (half to even, as rintf)
        x_q8 = torch.round((x_rgb + 1.0) * 127.5).clamp(0, 255) / 127.5 - 1.0  # float32 throughout
        p64, _ = m64(x_q8.double())
        out["input.rgb_q8"] = x_q8
        out["logits_unbiased.rgb_q8"] = (p64 @ w64.t()).float()
        out["resize.down.in"] = r_down[0]
        out["resize.down.out"] = F.interpolate(r_down, size=(11, 13), mode="bilinear", align_corners=False)[0]
        out["resize.up.in"] = r_up[0]
        out["resize.up.out"] = F.interpolate(r_up, size=(9, 23), mode="bilinear", align_corners=False)[0]

    names = sorted(n for n, _ in weights)
    wmap = dict(weights)
    sums = torch.tensor([bitsum(wmap[n]) for n in names], dtype=torch.int64)

    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, "reference.safetensors")
    write_reference(path, out, sums, {
        "seed": str(SEED), "weight_count": str(len(names)),
        "producer": "tools/gen_inception_reference.py (torch %s)" % torch.__version__,
        "reference": "float64 forward of pytorch-fid's FID Inception-v3 on synthetic weights"})
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))


def write_reference(path, tensors, sums, metadata):
    """F32 tensors plus the I64 weight_bitsums (the converter's writer is F32 only)."""
    import ctypes
    import json
    import struct

    header = {"__metadata__": metadata}
    blobs, off = [], 0
    items = [(k, v, "F32") for k, v in tensors.items()] + [("weight_bitsums", sums, "I64")]
    for name, t, dt in items:
        t = t.contiguous()
        data = ctypes.string_at(t.data_ptr(), t.numel() * t.element_size())
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


if __name__ == "__main__":
    main()
