#!/usr/bin/env python3
"""PyTorch side of lipgan's benchmarks: the SN-GAN ResNet D and G of
include/lipgan/model.h (thesis figs. 5.3-5.4), timed the same way as
bench/bench_models.c. Prints one line per case: `torch <case> <ms>`.

  python3 bench/torch_models.py [--threads 2] [--iters 10] [--sn] [--device cpu|cuda]
"""
import argparse, time
import torch
import torch.nn as nn
import torch.nn.functional as F


def maybe_sn(m, sn):
    return nn.utils.spectral_norm(m) if sn else m


class DBlock(nn.Module):
    def __init__(self, cin, cout, down, first, sn):
        super().__init__()
        self.c1 = maybe_sn(nn.Conv2d(cin, cout, 3, 1, 1), sn)
        self.c2 = maybe_sn(nn.Conv2d(cout, cout, 3, 1, 1), sn)
        self.learn_sc = cin != cout or down
        if self.learn_sc:
            self.sc = maybe_sn(nn.Conv2d(cin, cout, 1, 1, 0), sn)
        self.down, self.first = down, first

    def forward(self, x):
        h = x if self.first else F.relu(x)
        h = self.c2(F.relu(self.c1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.learn_sc:
            if self.first:  # optimized block: pool, then 1x1 conv
                s = self.sc(F.avg_pool2d(x, 2))
            else:
                s = self.sc(x)
                if self.down:
                    s = F.avg_pool2d(s, 2)
        return h + s


class D(nn.Module):
    def __init__(self, ch=128, c=3, sn=False):
        super().__init__()
        self.blocks = nn.Sequential(DBlock(c, ch, True, True, sn), DBlock(ch, ch, True, False, sn),
                                    DBlock(ch, ch, False, False, sn), DBlock(ch, ch, False, False, sn))
        self.l = maybe_sn(nn.Linear(ch, 1), sn)

    def forward(self, x):
        h = F.relu(self.blocks(x))
        return self.l(h.sum(dim=(2, 3)))


class GBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.b1, self.b2 = nn.BatchNorm2d(ch), nn.BatchNorm2d(ch)
        self.c1 = nn.Conv2d(ch, ch, 3, 1, 1)
        self.c2 = nn.Conv2d(ch, ch, 3, 1, 1)
        self.sc = nn.Conv2d(ch, ch, 1, 1, 0)

    def forward(self, x):
        h = F.interpolate(F.relu(self.b1(x)), scale_factor=2, mode="nearest")
        h = self.c2(F.relu(self.b2(self.c1(h))))
        return h + self.sc(F.interpolate(x, scale_factor=2, mode="nearest"))


class G(nn.Module):
    def __init__(self, ch=256, z=128, c=3):
        super().__init__()
        self.ch = ch
        self.l = nn.Linear(z, 4 * 4 * ch)
        self.blocks = nn.Sequential(GBlock(ch), GBlock(ch), GBlock(ch))
        self.b = nn.BatchNorm2d(ch)
        self.out = nn.Conv2d(ch, c, 3, 1, 1)

    def forward(self, z):
        h = self.l(z).view(-1, self.ch, 4, 4)
        return torch.tanh(self.out(F.relu(self.b(self.blocks(h)))))


def timeit(fn, iters, device):
    for _ in range(2):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2] * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--sn", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 in matmul and cuDNN convs")
    a = ap.parse_args()
    # fp32 means fp32: PyTorch lets cuDNN convs use TF32 by default, so
    # switch it off unless --tf32 is given (then both matmul and conv use it)
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = a.device
    d, g = D(sn=a.sn).to(dev), G().to(dev)
    x = torch.randn(64, 3, 32, 32, device=dev)
    z = torch.randn(128, 128, device=dev)

    def d_step():
        d.zero_grad(set_to_none=True)
        d(x).mean().backward()

    def g_step():
        g.zero_grad(set_to_none=True)
        g(z).mean().backward()

    print(f"torch D_fwd_bwd_b64 {timeit(d_step, a.iters, dev):.2f}")
    print(f"torch G_fwd_bwd_b128 {timeit(g_step, a.iters, dev):.2f}")


if __name__ == "__main__":
    main()
