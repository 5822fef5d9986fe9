#!/usr/bin/env python3
"""PyTorch side of the training-iteration benchmark: one SN-GAN CIFAR-10
iteration (5 D updates at batch 64 + 1 G update at batch 128), SN on every D
layer (torch.nn.utils.spectral_norm), hinge loss, Adam(2e-4, 0, 0.9), the
ResNets of bench/torch_models.py. Prints `torch train_iter <median ms>`
(`torch train_iter_compile <ms>` with --compile) and '# ' detail lines.

  python3 bench/torch_train_iter.py [--threads 2] [--iters 5] [--warmup 3]
      [--device cpu|cuda] [--tf32] [--bf16] [--cudnn-default] [--no-benchmark]
      [--compile [--compile-mode MODE]]

Precision flags as in torch_models.py: fp32 with TF32 off by default; --tf32;
--cudnn-default (cuDNN TF32 at PyTorch's default, on); --bf16 (autocast
around forward passes and losses, fp32 master weights, no GradScaler).
cudnn.benchmark is on unless --no-benchmark. --compile wraps both networks
in torch.compile (dynamic=False: each batch size gets its own graph); its
warm-up (at least 5 iterations, covering every recompilation) is not timed,
and if compiling fails it prints `torch train_iter_compile FAILED: <reason>`
and exits 0, so a comparison script goes on.

Spectral norm (--sn-impl): `hook` is torch.nn.utils.spectral_norm (eager
default). It fails under torch.compile: D runs twice (real, fake) before one
backward, and the compiled graph saves the u/v buffers that the second
call's in-place power iteration then modifies ("modified by an inplace
operation"). `param` (default with --compile) is
parametrizations.spectral_norm with D in eval mode (D has no batch norm or
dropout, so eval only stops the parametrization's in-place power iteration)
and the same one power iteration per D call done here, out of place, before
the (compiled) call: the same math as `hook` (D's outputs are bitwise equal
given the same weights and u; only the initial u, v differ: the
parametrization starts with 15 power iterations).
"""
import argparse, sys, time
import torch
import torch.nn.functional as F
from torch_models import D, G, add_precision_args, apply_precision, autocast


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3, help="untimed iterations (5+ with --compile)")
    ap.add_argument("--device", default="cpu")
    add_precision_args(ap)
    ap.add_argument("--compile", action="store_true", help="torch.compile both networks")
    ap.add_argument("--compile-mode", default="default",
                    help="torch.compile mode: default, reduce-overhead, max-autotune, ...")
    ap.add_argument("--sn-impl", choices=["hook", "param"], default=None,
                    help="spectral norm: torch.nn.utils.spectral_norm (hook, default eager) or "
                         "parametrizations.spectral_norm (param, default with --compile)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    sn_impl = a.sn_impl or ("param" if a.compile else "hook")
    print(apply_precision(a) + f"; spectral norm {sn_impl}" +
          (f"; torch.compile mode {a.compile_mode}" if a.compile else ""), flush=True)
    torch.manual_seed(0)
    dev = a.device
    case = "train_iter_compile" if a.compile else "train_iter"
    d, g = D(sn=True if sn_impl == "hook" else "param").to(dev), G().to(dev)
    sn_mods = []  # (the _SpectralNorm module, its ParametrizationList) per SN layer
    if sn_impl == "param":
        d.eval()
        sn_mods = [(m.parametrizations.weight[0], m.parametrizations.weight)
                   for m in d.modules() if hasattr(m, "parametrizations")]

    def power_step():
        """One power iteration per SN layer, out of place (new u, v tensors,
        so a graph that saved the old ones still sees them unchanged)."""
        # fp32 even under --bf16, so the buffers keep their dtype
        with torch.no_grad(), torch.autocast(torch.device(dev).type, enabled=False):
            for sn, pl in sn_mods:
                w = sn._reshape_weight_to_matrix(pl.original)
                v = F.normalize(torch.mv(w.t(), sn._u), dim=0, eps=sn.eps)
                sn._u = F.normalize(torch.mv(w, v), dim=0, eps=sn.eps)
                sn._v = v
    od = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.0, 0.9))
    og = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.0, 0.9))
    data = torch.rand(1000, 3, 32, 32, device=dev) * 2 - 1

    def failed(e):
        msg = str(e).strip().splitlines()
        print(f"torch {case} FAILED: {type(e).__name__}: {msg[0] if msg else ''}"[:400], flush=True)
        sys.exit(0)

    if a.compile:
        try:
            mode = None if a.compile_mode == "default" else a.compile_mode
            dc, g = torch.compile(d, dynamic=False, mode=mode), torch.compile(g, dynamic=False, mode=mode)
        except Exception as e:
            failed(e)
    else:
        dc = d

    def disc(x):
        if sn_mods:
            power_step()
        return dc(x)

    def iteration():
        for _ in range(5):
            x = data[torch.randint(0, 1000, (64,), device=dev)]
            with autocast(a):
                with torch.no_grad():
                    fake = g(torch.randn(64, 128, device=dev))
                loss = F.relu(1 - disc(x)).mean() + F.relu(1 + disc(fake)).mean()
            od.zero_grad(set_to_none=True)
            loss.backward()
            od.step()
        with autocast(a):
            fake = g(torch.randn(128, 128, device=dev))
            lg = -disc(fake).mean()
        og.zero_grad(set_to_none=True)
        lg.backward()
        og.step()
        return loss.item(), lg.item()  # the host reads the losses, as lipgan's step does

    def timed():
        t0 = time.perf_counter()
        losses = iteration()
        if dev == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) * 1e3, losses

    # warm-up, not timed: cudnn.benchmark's searches and, with --compile,
    # compilation of every graph (D at batch 64 with and without grad
    # inputs, D at batch 128, G at 64 under no_grad and 128 with grad)
    warm = max(a.warmup, 5 if a.compile else 1)
    wt = []
    try:
        for _ in range(warm):
            wt.append(timed()[0])
    except Exception as e:
        if not a.compile:
            raise
        failed(e)
    print("# warm-up iterations (ms, not timed): " + " ".join(f"{t:.1f}" for t in wt))
    ts = []
    for _ in range(max(a.iters, 1)):
        t, losses = timed()
        ts.append(t)
    ts.sort()
    med = ts[len(ts) // 2]
    print(f"torch {case} {med:.2f}")
    print(f"# {len(ts)} timed iterations: median {med:.2f}, min {ts[0]:.2f}, max {ts[-1]:.2f}, "
          f"mean {sum(ts) / len(ts):.2f} ms; loss D {losses[0]:.4f} G {losses[1]:.4f}")


if __name__ == "__main__":
    main()
