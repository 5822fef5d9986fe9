#!/usr/bin/env python3
"""PyTorch side of lipgan's benchmarks: the SN-GAN ResNet D and G of
include/lipgan/model.h (thesis figs. 5.3-5.4), timed the same way as
bench/bench_models.c. Prints one line per case: `torch <case> <ms>`.
Also defines DCNN / GCNN, the "standard CNN" of Miyato et al. 2018 as
lipgan builds it (arch cnn), for torch_train_iter.py --arch cnn; the cases
timed here are the ResNets only.

  python3 bench/torch_models.py [--threads 2] [--iters 10] [--sn] [--device cpu|cuda]
                                [--tf32] [--bf16] [--cudnn-default] [--no-benchmark]

Precision (shared with torch_train_iter.py, see add_precision_args): fp32
by default, with TF32 OFF in both cuBLAS and cuDNN (PyTorch's own default
lets cuDNN convolutions use TF32); --tf32 allows TF32 in both; --cudnn-default
leaves cuDNN's TF32 at PyTorch's default (on: what a user gets without
setting anything); --bf16 runs the forward passes and losses under
torch.autocast(bfloat16) with fp32 master weights (standard AMP; bf16 needs
no GradScaler). torch.backends.cudnn.benchmark is on unless --no-benchmark.
One '# ' line gives the versions and these settings.
"""
import argparse, contextlib, time
import torch
import torch.nn as nn
import torch.nn.functional as F


def maybe_sn(m, sn):
    """sn: False, True (torch.nn.utils.spectral_norm, the hook version) or
    "param" (torch.nn.utils.parametrizations.spectral_norm, which
    torch.compile handles; the hook version's in-place u/v updates break
    its backward when D runs twice before one backward)."""
    if sn == "param":
        return nn.utils.parametrizations.spectral_norm(m)
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
        self.l = maybe_sn(nn.Linear(ch, 1, bias=False), sn)

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


class DCNN(nn.Module):
    """The "standard CNN" discriminator of Miyato et al. 2018 as lipgan builds
    it (src/models/model_cnn.c, arch cnn, base width ch): c0_0 conv3x3 s1 ch,
    c0_1 conv4x4 s2 ch, c1_0 conv3x3 2ch, c1_1 conv4x4 s2 2ch, c2_0 conv3x3
    4ch, c2_1 conv4x4 s2 4ch, c3_0 conv3x3 8ch (all pad 1, with biases),
    each followed by LeakyReLU(lrelu); l = linear(4*4*8ch -> 1) with a bias
    over the NCHW-flattened features. bn (lipgan model.d.bn, off by default):
    BatchNorm2d between every conv but the first and its LeakyReLU, those
    convs without bias. sn as maybe_sn, on every conv and the linear layer."""

    def __init__(self, ch=64, c=3, sn=False, lrelu=0.1, bn=False, img=32):
        super().__init__()
        mult, ks = (1, 1, 2, 2, 4, 4, 8), (3, 4, 3, 4, 3, 4, 3)
        layers, cin = [], c
        for i, (m, k) in enumerate(zip(mult, ks)):
            use_bn = bn and i > 0
            layers.append(maybe_sn(nn.Conv2d(cin, m * ch, k, 2 if k == 4 else 1, 1, bias=not use_bn), sn))
            if use_bn:
                layers.append(nn.BatchNorm2d(m * ch))  # momentum 0.1, eps 1e-5 (lipgan's too)
            layers.append(nn.LeakyReLU(lrelu))
            cin = m * ch
        self.convs = nn.Sequential(*layers)
        b = img // 8
        self.l = maybe_sn(nn.Linear(b * b * 8 * ch, 1), sn)

    def forward(self, x):
        return self.l(self.convs(x).flatten(1))


class GCNN(nn.Module):
    """The standard CNN generator as lipgan builds it (arch cnn, base width
    ch, batch norm on as model.g.bn's default): l0 linear(z -> 4*4*8ch) with a
    bias, reshape, bn0 + ReLU; dc1..dc3 ConvTranspose2d 4x4 s2 p1 (8ch ->
    4ch -> 2ch -> ch, with biases, as lipgan's even before BN), each BN +
    ReLU; c4 conv3x3 s1 p1 (ch -> c, bias), tanh. bn False: no BN layers."""

    def __init__(self, ch=64, z=128, c=3, bn=True, img=32):
        super().__init__()
        self.ch, self.b = ch, img // 8
        self.l = nn.Linear(z, self.b * self.b * 8 * ch)
        self.bn0 = nn.BatchNorm2d(8 * ch) if bn else nn.Identity()
        layers, cin = [], 8 * ch
        for _ in range(3):
            layers += [nn.ConvTranspose2d(cin, cin // 2, 4, 2, 1),
                       nn.BatchNorm2d(cin // 2) if bn else nn.Identity(), nn.ReLU()]
            cin //= 2
        self.dcs = nn.Sequential(*layers)
        self.out = nn.Conv2d(ch, c, 3, 1, 1)

    def forward(self, z):
        h = self.l(z).view(-1, 8 * self.ch, self.b, self.b)
        h = self.dcs(F.relu(self.bn0(h)))
        return torch.tanh(self.out(h))


def add_precision_args(ap):
    ap.add_argument("--tf32", action="store_true", help="allow TF32 in matmul and cuDNN convs")
    ap.add_argument("--bf16", action="store_true",
                    help="autocast(bfloat16) around forward passes and losses (fp32 weights)")
    ap.add_argument("--cudnn-default", action="store_true",
                    help="leave torch.backends.cudnn.allow_tf32 at PyTorch's default (True)")
    ap.add_argument("--no-benchmark", action="store_true",
                    help="torch.backends.cudnn.benchmark = False (default True)")


def apply_precision(a):
    """Sets the TF32 / cuDNN flags of a (from add_precision_args) and returns
    a '# ' line describing versions and settings."""
    # fp32 means fp32: switch TF32 off unless asked for; --cudnn-default
    # leaves cuDNN's flag untouched (PyTorch's default: True)
    if not a.cudnn_default or a.tf32:
        torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.benchmark = not a.no_benchmark
    mode = "bf16 autocast" if a.bf16 else ("tf32" if a.tf32 else
                                           "fp32 (cuDNN TF32 at PyTorch default)" if a.cudnn_default
                                           else "fp32 (TF32 off)")
    conv_src = "PyTorch default" if a.cudnn_default and not a.tf32 else "set"
    gpu = torch.cuda.get_device_name() if a.device == "cuda" and torch.cuda.is_available() else a.device
    return (f"# torch {torch.__version__} cuda {torch.version.cuda} cudnn "
            f"{torch.backends.cudnn.version()}; device {gpu}; mode {mode}; "
            f"cudnn.allow_tf32 {torch.backends.cudnn.allow_tf32} ({conv_src}); "
            f"matmul.allow_tf32 {torch.backends.cuda.matmul.allow_tf32}; "
            f"cudnn.benchmark {torch.backends.cudnn.benchmark}; "
            f"cudnn.deterministic {torch.backends.cudnn.deterministic}")


def autocast(a):
    """The context for forward passes and losses: bf16 autocast or nothing."""
    if not a.bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(a.device).type, dtype=torch.bfloat16)


def timeit(fn, iters, device, warmup=3):
    for _ in range(warmup):  # the first calls run cudnn.benchmark's search
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
    add_precision_args(ap)
    a = ap.parse_args()
    print(apply_precision(a), flush=True)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = a.device
    d, g = D(sn=a.sn).to(dev), G().to(dev)
    x = torch.randn(64, 3, 32, 32, device=dev)
    z = torch.randn(128, 128, device=dev)

    def d_step():
        d.zero_grad(set_to_none=True)
        with autocast(a):
            loss = d(x).float().mean()
        loss.backward()

    def g_step():
        g.zero_grad(set_to_none=True)
        with autocast(a):
            loss = g(z).float().mean()
        loss.backward()

    print(f"torch D_fwd_bwd_b64 {timeit(d_step, a.iters, dev):.2f}")
    print(f"torch G_fwd_bwd_b128 {timeit(g_step, a.iters, dev):.2f}")


if __name__ == "__main__":
    main()
