#!/usr/bin/env python3
"""Writes tests/data/ref/rmsprop.safetensors, torch.optim.RMSprop's values
(centered=False, momentum=0, weight_decay=0: the WGAN reference code's
optimizer) for lipgan's RMSProp (src/train/optim.c), compared by
tests/test_train.c (test_rmsprop).

    python3 tools/gen_reference_rmsprop.py      # CPU, float32, < 1 s

lipgan's config holds alpha, lr and eps as float32, and computes 1 - alpha
from that float; PyTorch computes 1 - alpha in double from the Python
number. So the Python numbers here are the float32 values themselves
(alpha = float32(0.99) = 0.9900000095367432, ...), which makes both
implementations start from the same constants. (With alpha = 0.99 as a
Python float, PyTorch's (1 - alpha) would round to 0.0099999998 instead of
0.0099999905, a relative difference of 1e-6 in the square average's
increment.)

Tensors (float32; fixed seed 3, so reruns rewrite the same values up to
PyTorch's CPU kernels):
  p0       (N) initial parameters, uniform in [-1, 1)
  g        (T, N) the gradient of each step: uniform in [-2, 2), every 3rd
           element scaled by 1e-3, elements 0..3 of every step tiny (1e-9
           scale: eps dominates the denominator), element 4 always 0
  hyper    (3) lr, alpha, eps
  p        (T, N) parameters after each step
  sq       (T, N) square_avg after each step
"""
import os
import struct
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
from st_write import write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "ref")
N, T = 37, 8


def f32(x):
    """The float32 value of x, as a Python float."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def main():
    torch.manual_seed(3)
    lr, alpha, eps = f32(1e-2), f32(0.99), f32(1e-8)
    p0 = torch.rand(N) * 2 - 1
    g = torch.rand(T, N) * 4 - 2
    g[:, ::3] *= 1e-3
    g[:, 0:4] *= 1e-9
    g[:, 4] = 0
    p = p0.clone().requires_grad_(True)
    opt = torch.optim.RMSprop([p], lr=lr, alpha=alpha, eps=eps, centered=False, momentum=0,
                              weight_decay=0, foreach=False)
    ps, sqs = [], []
    for t in range(T):
        p.grad = g[t].clone()
        opt.step()
        ps.append(p.detach().clone())
        sqs.append(opt.state[p]["square_avg"].clone())
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "rmsprop.safetensors")
    write_safetensors(path, {
        "p0": p0, "g": g, "hyper": torch.tensor([lr, alpha, eps]),
        "p": torch.stack(ps), "sq": torch.stack(sqs),
    }, meta={"torch": torch.__version__})
    print("wrote", path)


if __name__ == "__main__":
    main()
