#!/usr/bin/env python3
"""PyTorch side of the convolution benchmark (bench/conv.sh): the three
passes of each convolution of bench/bench_conv.c (the same cases, names and
shapes), as PyTorch eager runs them on the CPU: F.conv2d for the forward,
aten.convolution_backward with only the input (bwd_data) or only the weight
(bwd_weight) requested. Prints `torch <case> <median ms>`.

    python3 bench/torch_conv.py [--reps N] [--threads T] [--only SUBSTRING]
"""
import argparse
import time
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# name, n, c, h, oc, k, stride, pad: bench/bench_conv.c's table
CASES = (
    ("d_c0_1_64x32_k4s2", 128, 64, 32, 64, 4, 2, 1),
    ("d_c1_1_128x16_k4s2", 128, 128, 16, 128, 4, 2, 1),
    ("d_c2_1_256x8_k4s2", 128, 256, 8, 256, 4, 2, 1),
    ("d_c1_0_64x16_k3", 128, 64, 16, 128, 3, 1, 1),
    ("d_c2_0_128x8_k3", 128, 128, 8, 256, 3, 1, 1),
    ("d_c3_0_256x4_k3", 128, 256, 4, 512, 3, 1, 1),
    ("g_dc1_256x8_k4s2", 64, 256, 8, 512, 4, 2, 1),
    ("g_dc2_128x16_k4s2", 64, 128, 16, 256, 4, 2, 1),
    ("g_dc3_64x32_k4s2", 64, 64, 32, 128, 4, 2, 1),
    ("g_c4_64x32_k3_oc3", 64, 64, 32, 3, 3, 1, 1),
    ("toeplitz_c0_1_64x32_k4s2", 1, 64, 32, 64, 4, 2, 1),
)


def median_ms(fn, reps):
    fn()
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        t.append((time.perf_counter() - t0) * 1e3)
    t.sort()
    return t[len(t) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--only", default=None)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    with torch.no_grad():
        for name, n, c, h, oc, k, s, p in CASES:
            if a.only and a.only not in name:
                continue
            oh = (h + 2 * p - k) // s + 1
            x = torch.rand(n, c, h, h) - 0.5
            w = torch.rand(oc, c, k, k) - 0.5
            dy = torch.rand(n, oc, oh, oh) - 0.5

            def bwd(mask):
                return lambda: torch.ops.aten.convolution_backward(
                    dy, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0], 1, mask)

            runs = (("fwd", lambda: F.conv2d(x, w, None, s, p)),
                    ("bwd_data", bwd([True, False, False])),
                    ("bwd_weight", bwd([False, True, False])))
            for pas, fn in runs:
                print(f"torch {name}_n{n}_{pas} {median_ms(fn, a.reps):.3f}", flush=True)


if __name__ == "__main__":
    main()
