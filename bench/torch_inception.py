#!/usr/bin/env python3
"""PyTorch side of the Inception-v3 benchmark (bench/inception.sh): the FID /
IS feature extractor of bench/bench_inception.c, timed the same way on the
same network, weights and images. The network is FIDInception3 of
tools/gen_inception_reference.py (pytorch-fid's FID Inception-v3 in plain
torch.nn, bilinear F.interpolate to 299x299 inside its forward), imported
from there, in eval mode, fp32, under torch.no_grad().

  python3 bench/torch_inception.py [--device cpu|cuda] [--n N] [--iters N]
                                   [--warmup N] [--size S] [--weights FILE]
                                   [--threads T] [--check FILE]

Weights: --weights FILE (a float32 safetensors file with the state-dict
names, as lg_inception_load reads; FID variant only), or by default the
synthetic weights of lg_inception_write_synthetic with seed 20240607
(synth_param reproduces them bit for bit). Images: x[i] = ((i * 2654435761)
mod 2001) / 1000 - 1 in float32 over the flat (N, 3, S, S) index, bit for
bit bench_inception's. A timed call starts with the images in host memory
and ends with pool3 and the logits back in host memory (lg_inception_run's
contract), so on cuda it includes the copies both ways and ends with a
synchronizing copy. On cuda: torch.backends.cudnn.benchmark on, TF32 off in
cuBLAS and cuDNN (lipgan's Inception runs in plain fp32).

--check FILE compares the last timed call's pool3 with FILE (raw float32
(N, 2048), bench_inception --dump on the same options) and prints the
largest absolute difference.

Prints `torch inception_n<N>_<S>px <median ms per image>`; '#' lines are details.
"""
import argparse
import json
import os
import struct
import sys
import time
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import gen_inception_reference as ref  # noqa: E402


def read_safetensors_f32(path):
    """{name: float32 tensor} of a safetensors file whose tensors are all F32
    (what tools/convert_inception_weights.py and lg_inception_write_synthetic
    write), plus its metadata."""
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            raise SystemExit("error: %s: tensor %s is %s; this reader takes F32 only" % (path, name, e["dtype"]))
        a, b = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(e["shape"])
    return out, meta


def build_model(weights_path):
    """FIDInception3 in eval mode with the given or the synthetic weights."""
    if weights_path:
        sd, meta = read_safetensors_f32(weights_path)
        if meta.get("lipgan_inception_variant", "fid") != "fid":
            raise SystemExit("error: %s is not the FID variant (FIDInception3 is)" % weights_path)
        num_classes = sd["fc.weight"].shape[0]
    else:
        num_classes = 1008
        sd = {name: ref.synth_param(name, shape, ref.SEED) for name, shape in ref.conv.state_dict_spec(1008)}
    model = ref.FIDInception3(num_classes).eval()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    # BatchNorm's num_batches_tracked is not stored (eval mode never reads it)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit("error: weights do not match FIDInception3: missing %s, unexpected %s"
                         % (missing[:5], unexpected[:5]))
    return model


def images(n, size):
    """(n, 3, size, size) float32, bench_inception.c's formula: the int64
    product is exact and the division and subtraction are correctly rounded
    float32 operations, as in C."""
    i = torch.arange(n * 3 * size * size, dtype=torch.int64)
    x = ((i * 2654435761) % 2001).to(torch.float32) / 1000.0 - 1.0
    return x.reshape(n, 3, size, size)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    ap.add_argument("--check", default=None, help="raw float32 pool3 (N, 2048) from bench_inception --dump")
    a = ap.parse_args()
    if a.n < 1 or a.iters < 1 or a.warmup < 0 or a.size < 1:
        raise SystemExit("error: need --n, --iters, --size >= 1 and --warmup >= 0")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    if a.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("error: --device cuda: torch sees no CUDA device")
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    model = build_model(a.weights).to(dev)
    x = images(a.n, a.size)  # (N, 3, S, S), host

    def call():
        p, l = model(x.to(dev))  # pool3 (N, 2048), logits (N, K)
        return p.cpu(), l.cpu()  # a device-to-host copy synchronizes

    t = []
    with torch.no_grad():
        for _ in range(a.warmup):
            call()
        for _ in range(a.iters):
            t0 = time.perf_counter()
            pool3, _ = call()
            if a.device == "cuda":
                torch.cuda.synchronize()
            t.append((time.perf_counter() - t0) * 1e3)
    t.sort()
    med = t[len(t) // 2]  # the upper median, as bench_median
    print("# torch %s: %s, %d threads%s; %d x 3x%dx%d images per call, %d timed calls after %d warm-up; "
          "median %.1f ms per call (min %.1f, max %.1f)" % (
              torch.__version__, a.device, torch.get_num_threads(),
              ", cudnn.benchmark, TF32 off" if a.device == "cuda" else "",
              a.n, a.size, a.size, a.iters, a.warmup, med, t[0], t[-1]))
    print("torch inception_n%d_%dpx %.3f" % (a.n, a.size, med / a.n))
    if a.check:
        with open(a.check, "rb") as f:
            raw = f.read()
        if len(raw) != pool3.numel() * 4:
            raise SystemExit("error: %s has %d bytes; expected pool3 (%d, 2048) float32" % (a.check, len(raw), a.n))
        lg = torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(pool3.shape)
        d = (lg.double() - pool3.double()).abs()
        rel = ((lg.double() - pool3.double()).norm() / pool3.double().norm()).item()
        print("check pool3_max_abs_diff %.3g" % d.max().item())
        print("# check: lipgan vs torch pool3 over %d images: max |diff| %.3g (max |pool3| %.3g, "
              "relative L2 error %.3g)" % (a.n, d.max().item(), pool3.abs().max().item(), rel))


if __name__ == "__main__":
    main()
