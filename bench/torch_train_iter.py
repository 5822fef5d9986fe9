#!/usr/bin/env python3
"""PyTorch side of the training-iteration benchmark: one CIFAR-10 GAN
iteration (5 D updates at batch 64 + 1 G update at batch 128), Adam(2e-4, 0,
0.9), the networks of bench/torch_models.py chosen by --arch (resnet, the
default: the SN-GAN ResNets D, G; cnn: the "standard CNN" of Miyato et al.
2018 as lipgan builds it, DCNN, GCNN), with D's Lipschitz method chosen
by --method (default sn: the SN-GAN iteration). Prints
`torch train_iter <median ms> <method>` (`torch train_iter_compile ...` with
--compile) and '# ' detail lines, each ending with the method (one of them
gives the parameter counts of D and G, to check against lipgan's).

  python3 bench/torch_train_iter.py [--arch resnet|cnn] [--method sn|gp|sn_gp|toeplitz]
      [--threads 2] [--iters 5] [--warmup 3] [--d-width W] [--g-width W]
      [--device cpu|cuda] [--tf32] [--bf16] [--cudnn-default] [--no-benchmark]
      [--compile [--compile-mode MODE]]

Methods, and the lipgan side's settings for the same work (bench/run.sh
passes them to bench_train_iter; METHOD_SETS below):
  sn        hinge loss, SN on every D layer        (the config's defaults)
  gp        WGAN-GP: wasserstein loss, two-sided gradient penalty lambda 10
            at interpolates of real and fake (torch.autograd.grad with
            create_graph=True), no SN
            (--set loss=wasserstein --set lipschitz.d.sn=false --set lipschitz.d.gp_lambda=10)
  sn_gp     SN and that penalty, wasserstein loss
            (--set loss=wasserstein --set lipschitz.d.gp_lambda=10)
  toeplitz  hinge loss; every D conv divided by its true operator norm
            (thesis 4.1.2), the linear layer plain SN
            (--set lipschitz.d.sn=false --set lipschitz.d.toeplitz_k=1)
--d-width / --g-width: channels of D and G (lipgan: model.d.width, model.g.width);
for resnet the channels (default 128 / 256, the config's), for cnn the base
width ch (default 64 / 64, Miyato et al.'s and lipgan's cnn default).

--arch cnn (lipgan: --set model.d.arch=cnn --set model.g.arch=cnn
--set model.d.width=64 --set model.g.width=64; src/models/model_cnn.c):
D: conv3x3 s1 ch, conv4x4 s2 ch, conv3x3 2ch, conv4x4 s2 2ch, conv3x3 4ch,
conv4x4 s2 4ch, conv3x3 8ch (pad 1, biases), each LeakyReLU 0.1
(model.d.lrelu), linear(4*4*8ch -> 1) with a bias; no batch norm (model.d.bn
false). G: linear(z 128 -> 4*4*8ch) with a bias, BN + ReLU, three
ConvTranspose2d 4x4 s2 p1 (8ch -> 4ch -> 2ch -> ch, biases) each BN + ReLU,
conv3x3 (ch -> 3, bias), tanh; BN momentum 0.1, eps 1e-5 (both sides'
defaults). SN covers every D layer (the seven convs and the linear one);
Toeplitz every D conv (the 4x4 stride-2 ones at their stride and padding:
the power iteration's conv_transpose2d maps the output back onto the input
shape exactly), the linear layer plain SN, as lipgan's. Every method
applies to both architectures.

Power iterations as lipgan's trainer runs them (src/train/trainer.c): one per
D update, in that update's first D call (lipgan runs D once over [real;
fake]; here D runs on real, then fake, as PyTorch GAN code does: the same
multiply-adds), none in the fake and gradient-penalty calls nor in G's
update (whose D call reuses the vectors). For the hook SN this is done by
D.train() for the first call and D.eval() for the others (D has no batch
norm or dropout: the mode only switches SN's power iteration). Each D call
recomputes sigma from the stored vectors with a graph (as lipgan does in
each of its D passes), so this side computes sigma once more per D update
than lipgan (its separate fake pass): a mat-vec for SN, a one-image conv for
Toeplitz.

Toeplitz (ToeplitzNorm, a torch.nn.utils.parametrize parametrization of
each Conv2d's weight): a persistent u of the layer's input shape (1, C, H,
W); per updating call, without grad, y = normalize(conv2d(u, W)),
u = normalize(conv_transpose2d(y, W)) (out of place: an earlier graph may
hold the old u); then sigma = ||conv2d(u, W)|| with a graph and W / sigma.
lipgan computes sigma as <conv2d(u, W), y_hat> with y_hat = that output
normalized, a constant: the same value and gradient, the same one conv.

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
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrize
from torch_models import D, G, DCNN, GCNN, add_precision_args, apply_precision, autocast

# D's loss, Lipschitz method and penalty weight per --method
METHODS = {
    "sn": dict(loss="hinge", lip="sn", gp=0.0),
    "gp": dict(loss="wasserstein", lip=None, gp=10.0),
    "sn_gp": dict(loss="wasserstein", lip="sn", gp=10.0),
    "toeplitz": dict(loss="hinge", lip="toeplitz", gp=0.0),
}
# the lipgan side's config overrides for the same work (bench/run.sh)
METHOD_SETS = {
    "sn": "",
    "gp": "--set loss=wasserstein --set lipschitz.d.sn=false --set lipschitz.d.gp_lambda=10",
    "sn_gp": "--set loss=wasserstein --set lipschitz.d.gp_lambda=10",
    "toeplitz": "--set lipschitz.d.sn=false --set lipschitz.d.toeplitz_k=1",
}


class ToeplitzNorm(nn.Module):
    """Parametrization W -> W / sigma(T_W): T_W is the convolution at the
    layer's input shape, stride and padding, sigma its operator norm by power
    iteration with the persistent input-space vector u (1, C, H, W)."""

    def __init__(self, conv, in_shape, n_iter=1, prime=15, eps=1e-12):
        super().__init__()
        self.stride, self.padding, self.n_iter, self.eps = conv.stride, conv.padding, n_iter, eps
        u = torch.randn(1, *in_shape, device=conv.weight.device)
        self.register_buffer("u", F.normalize(u.flatten(), dim=0, eps=eps).view_as(u))
        self.power_step(conv.weight.detach(), prime)  # as parametrizations.spectral_norm's 15

    @torch.no_grad()
    def power_step(self, w, n=None):
        u = self.u
        with torch.autocast(u.device.type, enabled=False):  # fp32 even under --bf16
            u = self._iterate(u, w.float(), self.n_iter if n is None else n)
        self.u = u  # a new tensor, not an in-place update

    def _iterate(self, u, w, n):
        for _ in range(n):
            y = F.conv2d(u, w, None, self.stride, self.padding)
            y = F.normalize(y.flatten(), dim=0, eps=self.eps).view_as(y)
            u = F.conv_transpose2d(y, w, None, self.stride, self.padding)
            u = F.normalize(u.flatten(), dim=0, eps=self.eps).view_as(u)
        return u

    def forward(self, w):
        if self.training:
            self.power_step(w.detach())
        sigma = torch.linalg.vector_norm(F.conv2d(self.u, w, None, self.stride, self.padding))
        return w / sigma


def toeplitz_d(d, sn_impl, dev, img=32):
    """ToeplitzNorm on every Conv2d of d, at the input shape each sees (one
    forward of one image finds them); SN on the Linear layer."""
    shapes, hooks = {}, []
    for m in d.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_pre_hook(
                lambda mod, inp: shapes.__setitem__(mod, tuple(inp[0].shape[1:]))))
    with torch.no_grad():
        d(torch.zeros(1, 3, img, img, device=dev))
    for h in hooks:
        h.remove()
    for m in list(d.modules()):
        if isinstance(m, nn.Conv2d):
            parametrize.register_parametrization(m, "weight", ToeplitzNorm(m, shapes[m]))
    d.l = (nn.utils.parametrizations.spectral_norm(d.l) if sn_impl == "param"
           else nn.utils.spectral_norm(d.l))
    return d


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
    ap.add_argument("--method", choices=sorted(METHODS), default="sn",
                    help="D's Lipschitz method (see the module doc); default sn")
    ap.add_argument("--arch", choices=["resnet", "cnn"], default="resnet",
                    help="both networks: the SN-GAN ResNets (default) or the standard CNN "
                         "(lipgan model.{d,g}.arch)")
    ap.add_argument("--d-width", type=int, default=None,
                    help="D channels, cnn: base width (lipgan model.d.width; default resnet 128, cnn 64)")
    ap.add_argument("--g-width", type=int, default=None,
                    help="G channels, cnn: base width (lipgan model.g.width; default resnet 256, cnn 64)")
    a = ap.parse_args()
    if a.d_width is None:
        a.d_width = 128 if a.arch == "resnet" else 64
    if a.g_width is None:
        a.g_width = 256 if a.arch == "resnet" else 64
    torch.set_num_threads(a.threads)
    meth = METHODS[a.method]
    mt = f"; method {a.method}"  # ends every output line
    sn_impl = a.sn_impl or ("param" if a.compile else "hook")
    print(apply_precision(a) + f"; spectral norm {sn_impl}" +
          (f"; torch.compile mode {a.compile_mode}" if a.compile else "") +
          f"; loss {meth['loss']}, D {meth['lip'] or 'no'} normalization, gp lambda {meth['gp']:g}, "
          f"arch {a.arch}, widths D {a.d_width} G {a.g_width}" + mt, flush=True)
    torch.manual_seed(0)
    dev = a.device
    case = "train_iter_compile" if a.compile else "train_iter"
    Dn, Gn = (D, G) if a.arch == "resnet" else (DCNN, GCNN)
    if meth["lip"] == "sn":
        d = Dn(ch=a.d_width, sn=True if sn_impl == "hook" else "param").to(dev)
    elif meth["lip"] == "toeplitz":
        d = toeplitz_d(Dn(ch=a.d_width).to(dev), sn_impl, dev)
    else:
        d = Dn(ch=a.d_width).to(dev)
    g = Gn(ch=a.g_width).to(dev)
    npd, npg = (sum(p.numel() for p in n.parameters()) for n in (d, g))
    print(f"# parameters D {npd} G {npg} (arch {a.arch}, widths D {a.d_width} G {a.g_width})" + mt,
          flush=True)
    sn_mods = []  # (the _SpectralNorm module, its ParametrizationList) per SN layer
    toep_mods = [(m.parametrizations.weight[0], m.parametrizations.weight) for m in d.modules()
                 if hasattr(m, "parametrizations") and isinstance(m.parametrizations.weight[0], ToeplitzNorm)]
    if sn_impl == "param":
        d.eval()
        sn_mods = [(m.parametrizations.weight[0], m.parametrizations.weight)
                   for m in d.modules() if hasattr(m, "parametrizations")
                   and not isinstance(m.parametrizations.weight[0], ToeplitzNorm)]

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
            for tn, pl in toep_mods:
                tn.power_step(pl.original)
    od = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.0, 0.9))
    og = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.0, 0.9))
    data = torch.rand(1000, 3, 32, 32, device=dev) * 2 - 1

    def failed(e):
        msg = str(e).strip().splitlines()
        print(f"torch {case} FAILED: {type(e).__name__}: {msg[0] if msg else ''}"[:400] + mt, flush=True)
        sys.exit(0)

    if a.compile:
        try:
            mode = None if a.compile_mode == "default" else a.compile_mode
            dc, g = torch.compile(d, dynamic=False, mode=mode), torch.compile(g, dynamic=False, mode=mode)
        except Exception as e:
            failed(e)
    else:
        dc = d

    def disc(x, update):
        """D(x); update: run the power iterations (the first D call of a D update)."""
        if sn_impl == "param":  # D stays in eval mode; the iterations are done here
            if update:
                power_step()
        elif d.training != update:
            d.train(update)  # hook SN and ToeplitzNorm iterate in training mode only
        return dc(x)

    def d_loss(x, fake):
        dr, df = disc(x, True), disc(fake, False)
        if meth["loss"] == "hinge":
            loss = F.relu(1 - dr).mean() + F.relu(1 + df).mean()
        else:
            loss = df.mean() - dr.mean()
        if meth["gp"] > 0:  # WGAN-GP, as Gulrajani et al.'s code
            eps = torch.rand(x.shape[0], 1, 1, 1, device=dev)
            xh = (fake + eps * (x - fake)).detach().requires_grad_(True)
            out = disc(xh, False)
            gr, = torch.autograd.grad(out, xh, grad_outputs=torch.ones_like(out), create_graph=True)
            loss = loss + meth["gp"] * ((gr.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
        return loss

    def iteration():
        for _ in range(5):
            x = data[torch.randint(0, 1000, (64,), device=dev)]
            with autocast(a):
                with torch.no_grad():
                    fake = g(torch.randn(64, 128, device=dev))
                loss = d_loss(x, fake)
            od.zero_grad(set_to_none=True)
            loss.backward()
            od.step()
        with autocast(a):
            fake = g(torch.randn(128, 128, device=dev))
            lg = -disc(fake, False).mean()
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
    print("# warm-up iterations (ms, not timed): " + " ".join(f"{t:.1f}" for t in wt) + mt)
    ts = []
    for _ in range(max(a.iters, 1)):
        t, losses = timed()
        ts.append(t)
    ts.sort()
    med = ts[len(ts) // 2]
    print(f"torch {case} {med:.2f} {a.method}")
    print(f"# {len(ts)} timed iterations: median {med:.2f}, min {ts[0]:.2f}, max {ts[-1]:.2f}, "
          f"mean {sum(ts) / len(ts):.2f} ms; loss D {losses[0]:.4f} G {losses[1]:.4f}" + mt)


if __name__ == "__main__":
    main()
