#!/usr/bin/env python3
"""PyTorch side of the training-iteration benchmark: one SN-GAN CIFAR-10
iteration (5 D updates at batch 64 + 1 G update at batch 128), SN on every D
layer (torch.nn.utils.spectral_norm), hinge loss, Adam(2e-4, 0, 0.9), the
ResNets of bench/torch_models.py. Prints `torch train_iter <median ms>`.

  python3 bench/torch_train_iter.py [--threads 2] [--iters 5] [--device cpu|cuda] [--tf32] [--compile]
"""
import argparse, time
import torch
import torch.nn.functional as F
from torch_models import D, G


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--compile", action="store_true", help="torch.compile both networks")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.manual_seed(0)
    dev = a.device
    d, g = D(sn=True).to(dev), G().to(dev)
    od = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.0, 0.9))
    og = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.0, 0.9))
    if a.compile:
        d, g = torch.compile(d), torch.compile(g)
    data = torch.rand(1000, 3, 32, 32, device=dev) * 2 - 1

    def iteration():
        for _ in range(5):
            x = data[torch.randint(0, 1000, (64,), device=dev)]
            with torch.no_grad():
                fake = g(torch.randn(64, 128, device=dev))
            loss = F.relu(1 - d(x)).mean() + F.relu(1 + d(fake)).mean()
            od.zero_grad(set_to_none=True)
            loss.backward()
            od.step()
        fake = g(torch.randn(128, 128, device=dev))
        lg = -d(fake).mean()
        og.zero_grad(set_to_none=True)
        lg.backward()
        og.step()
        return loss.item(), lg.item()  # the host reads the losses, as lipgan's step does

    iteration()
    ts = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        iteration()
        if dev == "cuda":
            torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    print(f"torch train_iter {ts[len(ts) // 2] * 1e3:.2f}")


if __name__ == "__main__":
    main()
