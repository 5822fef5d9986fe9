#!/usr/bin/env python3
"""PyTorch side of the ReLU-fusion benchmark (bench/relu.sh): the kernels
PyTorch eager runs for a layer's bias add + ReLU (an add, then relu) and for
ReLU's backward (threshold_backward, one pass), on the shapes of
bench/bench_relu.c. Prints `torch <case> <median ms>` with lipgan's case
names: bias_relu_2k and relu_bwd are the same work as lipgan's cases of
those names.

    python3 bench/torch_relu.py [--reps N] [--device cpu|cuda] [--threads T]
"""
import argparse
import time
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402


def median_ms(fn, reps, sync):
    fn()
    sync()
    t = []
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        t.append((time.perf_counter() - t0) * 1e3)
    t.sort()
    return t[len(t) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for n, c, h, w in ((128, 128, 32, 32), (128, 256, 32, 32)):
        tag = f"{n}x{c}x{h}x{w}"
        x = torch.rand(n, c, h, w, device=dev) - 0.5
        g = x * 0.3
        b = (torch.arange(c, device=dev, dtype=torch.float32) * 0.001 - 0.05).view(1, c, 1, 1)
        y = torch.empty_like(x)

        def fwd():
            torch.add(x, b, out=y)
            torch.relu_(y)

        def bwd():
            torch.ops.aten.threshold_backward(g, x, 0.0)

        print(f"torch bias_relu_2k_{tag} {median_ms(fwd, a.reps, sync):.3f}")
        print(f"torch relu_bwd_{tag} {median_ms(bwd, a.reps, sync):.3f}")


if __name__ == "__main__":
    main()
