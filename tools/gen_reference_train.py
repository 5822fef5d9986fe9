#!/usr/bin/env python3
"""PyTorch reference trajectories for tests/test_train_ref.c: a few full GAN
training steps of lipgan's trainer, redone as a plain PyTorch training loop
from the same initial weights, noise and data, with every Lipschitz method
written from its source document's definition (as lipgan documents its
reading of it in include/lipgan/lipschitz.h and the config help).

Regenerate (from the repo root, after a deliberate change of the trainer):

    LG_TRAIN_REF_DUMP=/tmp/trd build/tests/test_train_ref
    python3 tools/gen_reference_train.py /tmp/trd

The first command writes /tmp/trd/train_<case>.safetensors for every case
of the test: the config as metadata (cfg.*; a method's keys only where it
is on), lipgan's initial weights and state (init.G.<name>, init.D.<name>,
lipgan's names), the trainer's start state outside the models from its
checkpoint (init.X.<net>.gclamp.<layer>.{u0,u1,v0,v1}: gradient clamping's
vectors; init.X.G.rw.<layer>.{u,v,sigma}: r(W)'s own power iteration), the
inputs the trainer draws, which the test reproduces with lipgan's public
rng and data API and checks against the trainer's checkpoint (in.x.<k>,
in.z.<k>, in.eps.<k>: real batch with instance noise, latent noise and GP
epsilon of D update k; in.zg.<s>: the noise of G update s), and lipgan's
own results (lipgan.stats, lipgan.step<s>.*: only printed here for
comparison). This script writes tests/data/ref/train_<case>.safetensors:
the same metadata, init.* and in.* tensors, plus
  stats (steps, 10)             per step: loss_d, d_real, d_fake, gp (of the
                                step's last D update), loss_g (r(W) penalty
                                included), lr_d, lr_g, sigma_min, sigma_mean,
                                sigma_max (over D's SN and Toeplitz layers:
                                the sigma of their last forward; 0 if none)
  step<s>.{G,D,EMA}.<name>      every parameter and state tensor after step s
                                (lipgan's names; EMA only with ema.decay > 0)
  step<s>.X.<net>.<kind>...     the init.X.* states after step s, and dynamic
                                SR's recorded spectrum <net>.sr.<layer>.ref
                                (once recorded)

The loop is the textbook PyTorch GAN loop (torch.nn modules,
torch.nn.utils.spectral_norm, torch.optim.Adam / RMSprop (no momentum, not
centered), LambdaLR linear decay, torch.autograd.grad for the penalty,
BCE-with-logits for the minimax/nonsat losses); per step s (0-based), with
lr * (1 - s / steps) under linear decay:
  D updates:    n_dis, or n_dis_boost for the first n_dis_boost_first steps
                and every step with s % n_dis_boost_every == 0 (the WGAN
                code's "gen_iterations < 25 or % 500 == 0"), each:
                fake = G(z) under no_grad (G in training mode: batch-norm
                batch statistics; its SN vectors frozen);
                o = D(cat(real, fake)) - the one pass in which D's SN and
                Toeplitz power iterations run (sn_iters iterations); with
                batch norm in D two passes, D(real) iterating, then D(fake);
                every other pass through D (penalty, G update) uses the
                stored vectors (module.eval() on those modules only, as
                lipgan documents under lipschitz.d.sn_iters);
                loss_d(o[:b], o[b:]) [+ GP: two- or one-sided at
                eps*real + (1-eps)*fake, ||grad||_2 per sample, as the
                WGAN-GP code (lipgan takes sqrt(||grad||^2 + 1e-12), which
                differs only for norms of ~1e-5 and below); zero-centered:
                R1, ||grad||^2 at the real samples (Mescheder et al. 2018,
                lg_gradient_penalty's LG_GP_R1)];
                the update (Extra.update): spectral gradient clamping of
                the weight gradients (thesis 4.2.3), the optimizer step,
                weight clipping of EVERY parameter to [-c, c] (the WGAN
                algorithm's w <- clip(w, -c, c) over the critic's parameters,
                its code's netD.parameters(): biases and batch norm's scale
                and shift included), SR after every sr_every-th update
                (1-based count over the run) or, sr_schedule steps, after
                every update of the steps with s % sr_every == 0.
  G update:     loss_g(D(G(z))) [- lambda sum r(W), thesis 4.2.1-2] with
                G's SN iterating, D's frozen; the same update for G; EMA:
                copy while s < ema.start, else ema += (1 - decay) (g - ema)
                on the parameters, the state (BN statistics, SN vectors)
                copied.
The methods, as lipgan documents them (the docstrings below say more):
  Toeplitz (thesis 4.1.2)  ToepConv2d: power iteration on the conv operator
                T (conv2d) and T^T (conv_transpose2d) at the layer's input
                size, stride and padding, u in the input space;
                y = conv2d(x, k W / |T u|) + b; the critic's linear layer SN.
  clamping (4.2.3)  Extra.gclamp: warm-started power iteration for the
                gradient's (u0, v0) and, deflated, (u1, v1); G -= (sigma0 -
                r sigma1) u0 v0^T if sigma0 > r sigma1 (1 + 1e-4).
  r(W) (4.2.1-2)  Extra.rw_penalty: |W|_F / (m sigma), m = columns of W_mat,
                sigma = u^T W v not detached (u, v: the layers' SN vectors,
                or one iteration of the penalty's own per G update).
  SR (seed 004)  Extra.sr: SVD in float64, gamma = floor(frac n) in [1, n],
                W_SR = U diag(t) V^T, t = 1 for the first gamma, s_i / s_1
                (dynamic: its running maximum) for the rest, in place.
lipgan specific, reproduced: an SN or Toeplitz layer first used frozen
(G's layers, in the first D update) first runs 15 power iterations from its
seeded vector (LG_SN_PRIME_ITERS; torch.nn.utils.parametrizations.
spectral_norm's construction-time priming); the stored sigma of a layer is
the one of its last forward.

The test bounds the biases that a batch norm right after their layer
cancels (and that batch norm's running mean) only by the learning rate:
their true gradient is 0, and Adam turns the rounding noise of either side
into steps of up to ~lr (see bn_cancelled in the test); the cases avoid
other exactly-zero gradients (see the top of the test). Printed per case:
lipgan's distance from this run (stats, and the largest tensor error over
the test's bound, BN-cancelled tensors included), and for the methods with a
decision or a subspace: the clamp decision nearest its threshold and the
smallest s_gamma / s_gamma+1 of the SR calls (near 1, W_SR's compensated
subspace is ill-defined and rounding is amplified by ~1 / (ratio - 1)).

Only torch is needed (struct + json for the files, tools/st_write.py);
Python is never needed to build or test lipgan.
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st_write import read_safetensors, write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "ref")
PRIME_ITERS = 15  # LG_SN_PRIME_ITERS
GCLAMP_TOL = 1e-4  # lg_gclamp_state.tol: clamp only if sigma0 > r sigma1 (1 + tol)
STATE_SUFFIXES = ("running_mean", "running_var", "sn_u", "sn_v", "sn_sigma", "toep_u", "toep_sigma")


def f32(x):
    """A config number as lipgan holds it (a float)."""
    return torch.tensor(float(x), dtype=torch.float32).item()


def nrm(x):
    return F.normalize(x, dim=0, eps=1e-12)


class ToepConv2d(nn.Module):
    """The thesis' Toeplitz-normalized convolution (sec. 4.1.2) as lipgan
    documents it (lipgan/lipschitz.h, lg_toep_*): power iteration on the
    conv operator T at the layer's input size, stride and padding, T^T
    being the transposed convolution; the persistent vector u lives in the
    input space (C, H, W). Per updating forward (training mode) n_iter
    times  y <- normalize(T u), u <- normalize(T^T y); then
    sigma = <y_hat, T u> with u and y_hat = T u / |T u| constants (= |T u|,
    differentiable in W) and y = conv2d(x, k W / sigma) + b."""

    def __init__(self, cin, cout, k, stride, pad, bias, in_hw, scale, n_iter):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.stride, self.pad, self.scale, self.n_iter = stride, pad, scale, n_iter
        self.register_buffer("toep_u", torch.zeros(cin, in_hw, in_hw))
        self.register_buffer("toep_sigma", torch.zeros(1))
        self.lg_sigma = self.toep_sigma
        self.lg_primed = False

    def iterate(self, n):
        with torch.no_grad():
            w, s, p = self.weight, self.stride, self.pad
            u = self.toep_u.unsqueeze(0)
            for _ in range(n):
                y = F.conv2d(u, w, None, s, p)
                y = nrm(y.flatten()).view_as(y)
                # output_padding: T^T maps back onto the whole input, the rows
                # a strided conv never reads included (they get 0)
                op = tuple(u.shape[2 + i] - ((y.shape[2 + i] - 1) * s - 2 * p + w.shape[2 + i])
                           for i in (0, 1))
                u = F.conv_transpose2d(y, w, None, s, p, op)
                u = nrm(u.flatten()).view_as(u)
            self.toep_u.copy_(u[0])
        self.lg_primed = True

    def forward(self, x):
        if self.training:
            self.iterate(self.n_iter)
        u = self.toep_u.unsqueeze(0).clone()
        y = F.conv2d(u, self.weight, None, self.stride, self.pad)
        yhat = nrm(y.detach().flatten()).view_as(y)
        sigma = (y * yhat).sum()
        with torch.no_grad():
            self.toep_sigma.copy_(sigma.reshape(1))
        w = self.weight / sigma
        if self.scale != 1.0:
            w = w * self.scale
        return F.conv2d(x, w, self.bias, self.stride, self.pad)


class Net(nn.Module):
    """lipgan's MLP / CNN (src/models/model_mlp.c, model_cnn.c) with its
    layer names, optionally spectrally normalized, or (CNN D) Toeplitz-
    normalized convolutions with a plain SN linear layer."""

    def __init__(self, cfg, role):
        super().__init__()
        r = role.lower()
        self.role, self.arch = role, cfg["%s.arch" % r]
        self.bn = int(cfg["%s.bn" % r])
        self.lrelu = float(cfg["%s.lrelu" % r])
        c, h, w = (int(v) for v in cfg["sample_shape"].split(","))
        self.toy = int(cfg["toy"])
        self.shape = (c, h, w)
        zd = int(cfg["z_dim"])
        width, depth = int(cfg["%s.width" % r]), int(cfg["%s.depth" % r])
        n_iter = int(cfg["%s.sn_iters" % r])
        toep_k = f32(cfg.get("%s.toeplitz_k" % r, 0))
        if toep_k > 0 and (self.arch != "cnn" or role != "D"):
            raise SystemExit("toeplitz_k on a %s %s: not in this script" % (self.arch, role))
        self.m = nn.ModuleDict()
        if self.arch == "mlp":
            self.depth = depth or 4
            ch = width or 512
            out = c * h * w
            inp = zd if role == "G" else out
            for i in range(self.depth):
                self.m["fc%d" % i] = nn.Linear(inp if i == 0 else ch, ch)
                if self.bn:
                    self.m["bn%d" % i] = nn.BatchNorm1d(ch)
            self.m["fc%d" % self.depth] = nn.Linear(ch, out if role == "G" else 1)
        elif self.arch == "cnn":
            ch = width or 64
            self.ch, self.b = ch, h // 8
            if role == "D":
                cin, hw = c, h
                for i, (name, k, mult) in enumerate((("c0_0", 3, 1), ("c0_1", 4, 1), ("c1_0", 3, 2),
                                                     ("c1_1", 4, 2), ("c2_0", 3, 4), ("c2_1", 4, 4),
                                                     ("c3_0", 3, 8))):
                    nb = self.bn and i > 0
                    s = 2 if k == 4 else 1
                    if toep_k > 0:
                        self.m[name] = ToepConv2d(cin, mult * ch, k, s, 1, not nb, hw, toep_k, n_iter)
                    else:
                        self.m[name] = nn.Conv2d(cin, mult * ch, k, s, 1, bias=not nb)
                    if nb:
                        self.m["bn" + name[1:]] = nn.BatchNorm2d(mult * ch)
                    cin, hw = mult * ch, hw // s
                self.m["l4"] = nn.Linear(self.b * self.b * 8 * ch, 1)
            else:
                self.m["l0"] = nn.Linear(zd, self.b * self.b * 8 * ch)
                if self.bn:
                    self.m["bn0"] = nn.BatchNorm2d(8 * ch)
                cin = 8 * ch
                for i in (1, 2, 3):
                    self.m["dc%d" % i] = nn.ConvTranspose2d(cin, cin // 2, 4, 2, 1)
                    cin //= 2
                    if self.bn:
                        self.m["bn%d" % i] = nn.BatchNorm2d(cin)
                self.m["c4"] = nn.Conv2d(ch, c, 3, 1, 1)
        else:
            raise SystemExit("arch %s: not in this script" % self.arch)
        # the Lipschitz layers: SN (all weight layers, or a Toeplitz net's
        # linear ones, unscaled) and Toeplitz
        self.sn = [mod for mod in self.m.values() if isinstance(mod, ToepConv2d)]
        if int(cfg["%s.sn" % r]) or toep_k > 0:
            for name, mod in list(self.m.items()):
                if isinstance(mod, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                    # dim 1 for ConvTranspose2d (PyTorch's default, lipgan's out_dim)
                    mod = nn.utils.spectral_norm(mod, n_power_iterations=n_iter)
                    mod.register_forward_hook(record_sigma)
                    mod.lg_primed = False
                    mod.lg_sigma = torch.zeros(1)
                    self.m[name] = mod
                    self.sn.append(mod)

    def set_sn_update(self, on):
        """Power iterations in the following forwards (on) or the stored
        u, v (off), without touching batch norm's mode."""
        for mod in self.sn:
            mod.train(on)
            if on:
                mod.lg_primed = True
            elif not mod.lg_primed:
                if isinstance(mod, ToepConv2d):
                    mod.iterate(PRIME_ITERS)
                else:
                    prime(mod)

    def weight_layers(self):
        """(name, module, raw weight, out_dim) of every weight layer, in
        lipgan's layer order (lg_model_layer)."""
        out = []
        for name, mod in self.m.items():
            if isinstance(mod, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, ToepConv2d)):
                w = mod.weight_orig if hasattr(mod, "weight_orig") else mod.weight
                out.append((name, mod, w, 1 if isinstance(mod, nn.ConvTranspose2d) else 0))
        return out

    def forward(self, x):
        m = self.m
        if self.arch == "mlp":
            h = x.flatten(1)
            for i in range(self.depth):
                h = m["fc%d" % i](h)
                if self.bn:
                    h = m["bn%d" % i](h)
                h = F.relu(h)
            h = m["fc%d" % self.depth](h)
            if self.role == "G" and not self.toy:
                h = torch.tanh(h.view(x.shape[0], *self.shape))
            return h
        if self.role == "D":
            h = x
            for i, name in enumerate(("c0_0", "c0_1", "c1_0", "c1_1", "c2_0", "c2_1", "c3_0")):
                h = m[name](h)
                if self.bn and i > 0:
                    h = m["bn" + name[1:]](h)
                h = F.leaky_relu(h, self.lrelu)
            return m["l4"](h.flatten(1))
        h = m["l0"](x).view(x.shape[0], 8 * self.ch, self.b, self.b)
        h = F.relu(m["bn0"](h) if self.bn else h)
        for i in (1, 2, 3):
            h = m["dc%d" % i](h)
            h = F.relu(m["bn%d" % i](h) if self.bn else h)
        return torch.tanh(m["c4"](h))

    # lipgan name <-> tensor
    def tensor(self, name):
        layer, what = name.rsplit(".", 1)
        mod = self.m[layer]
        if what == "weight" and hasattr(mod, "weight_orig"):
            return mod.weight_orig
        return {"sn_u": lambda: mod.weight_u, "sn_v": lambda: mod.weight_v,
                "sn_sigma": lambda: mod.lg_sigma}.get(what, lambda: getattr(mod, what))()

    def load(self, tensors, prefix):
        names = [k[len(prefix):] for k in tensors if k.startswith(prefix)]
        with torch.no_grad():
            for n in names:
                dst = self.tensor(n)
                assert dst.shape == tensors[prefix + n].shape, (n, dst.shape)
                dst.copy_(tensors[prefix + n])
        self.names = names

    def export(self):
        return {n: self.tensor(n).detach().clone() for n in self.names}


def to_mat(w, out_dim):
    """lipgan's W_mat (lipgan/lipschitz.h): rows = the output dim."""
    if out_dim == 1:
        w = w.transpose(0, 1)
    return w.reshape(w.shape[0], -1)


def from_mat(m, shape, out_dim):
    if out_dim == 1:
        return m.reshape(shape[1], shape[0], *shape[2:]).transpose(0, 1)
    return m.reshape(shape)


def wmat(mod):
    return to_mat(mod.weight_orig, 1 if isinstance(mod, nn.ConvTranspose2d) else 0)


def record_sigma(mod, inp, out):
    # the sigma this forward divided by: u^T W v with the (possibly just
    # updated) vectors; lipgan stores it as <layer>.sn_sigma
    with torch.no_grad():
        mod.lg_sigma = torch.dot(mod.weight_u, wmat(mod) @ mod.weight_v).reshape(1).clone()


def prime(mod):
    with torch.no_grad():
        w = wmat(mod)
        u = mod.weight_u
        for _ in range(PRIME_ITERS):
            v = F.normalize(w.t() @ u, dim=0, eps=1e-12)
            u = F.normalize(w @ v, dim=0, eps=1e-12)
        mod.weight_u.copy_(u)
        mod.weight_v.copy_(v)
    mod.lg_primed = True


def loss_d(kind, dr, df):
    if kind == "hinge":
        return F.relu(1 - dr).mean() + F.relu(1 + df).mean()
    if kind == "wasserstein":
        return df.mean() - dr.mean()
    # minimax / nonsat: the cross-entropy of Goodfellow et al.
    return (F.binary_cross_entropy_with_logits(dr, torch.ones_like(dr))
            + F.binary_cross_entropy_with_logits(df, torch.zeros_like(df)))


def loss_g(kind, df):
    if kind in ("hinge", "wasserstein"):
        return -df.mean()
    if kind == "nonsat":
        return F.binary_cross_entropy_with_logits(df, torch.ones_like(df))
    return -F.binary_cross_entropy_with_logits(df, torch.zeros_like(df))  # E log(1 - sigmoid(f))


def gradient_penalty(D, real, fake, eps, lam, kind):
    if kind == "zero-centered":  # R1 (Mescheder et al. 2018): |grad|^2 at the real samples
        xh = real.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(D(xh).sum(), xh, create_graph=True)
        return lam * g.flatten(1).square().sum(1).mean()
    e = eps.view(-1, *([1] * (real.dim() - 1)))
    xh = (e * real + (1 - e) * fake).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(D(xh).sum(), xh, create_graph=True)
    norm = g.flatten(1).norm(2, dim=1)
    if kind == "two-sided":
        per = (norm - 1) ** 2
    else:  # one-sided
        per = F.relu(norm - 1) ** 2
    return lam * per.mean()


def make_opt(net, cfg, r, steps):
    kind = cfg["%s.optim" % r]
    lr, eps = float(cfg["%s.lr" % r]), float(cfg["%s.eps" % r])
    if kind == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=lr,
                               betas=(float(cfg["%s.beta1" % r]), float(cfg["%s.beta2" % r])), eps=eps)
    elif kind == "rmsprop":  # no momentum, not centered (WGAN's)
        opt = torch.optim.RMSprop(net.parameters(), lr=lr, alpha=float(cfg["%s.alpha" % r]), eps=eps)
    else:
        raise SystemExit("optimizer %s: not in this script" % kind)
    if cfg["lr_decay"] == "linear":
        sch = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / steps)
    else:
        sch = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    return opt, sch


def n_dis_at(cfg, s):
    """The WGAN reference code's critic schedule: n_dis_boost D updates for
    the first n_dis_boost_first G updates and every n_dis_boost_every-th
    (G updates done % every == 0), else n_dis."""
    boost = int(cfg.get("n_dis_boost", 0))
    first, every = int(cfg.get("n_dis_boost_first", 0)), int(cfg.get("n_dis_boost_every", 0))
    if boost > 0 and (s < first or (every > 0 and s % every == 0)):
        return boost
    return int(cfg["n_dis"])


class Extra:
    """What the trainer does to one network beyond its loss and optimizer
    (lipschitz.<net>.*), with the state lipgan's checkpoint holds
    (<R>.gclamp.*, <R>.rw.*, <R>.sr.*; start values from init.X.*)."""

    def __init__(self, cfg, net, t):
        r, R = net.role.lower(), net.role
        self.R, self.net = R, net
        self.layers = net.weight_layers()
        self.clip = f32(cfg.get("%s.clip" % r, 0))
        self.clamp_ratio = f32(cfg.get("%s.clamp_ratio" % r, 0))
        self.clamp_iters = int(cfg.get("%s.clamp_iters" % r, 0))
        self.rw_lambda = f32(cfg.get("%s.rw_lambda" % r, 0))
        self.sr_gamma = f32(cfg.get("%s.sr_gamma" % r, 0))
        self.sr_every = int(cfg.get("%s.sr_every" % r, 1))
        self.sr_by_step = cfg.get("%s.sr_schedule" % r, "updates") == "steps"
        self.sr_dynamic = int(cfg.get("%s.sr_dynamic" % r, 0))
        pre = "init.X.%s." % R
        self.gc = {n: {v: t["%sgclamp.%s.%s" % (pre, n, v)].clone() for v in ("u0", "u1", "v0", "v1")}
                   for n, _, _, _ in self.layers} if self.clamp_ratio > 0 else {}
        # r(W) through the layers' own SN vectors when every layer has SN,
        # else through states of its own (lipgan: trainer.c extra_init)
        self.rw_layer_sn = all(hasattr(mod, "weight_u") for _, mod, _, _ in self.layers)
        self.rw = {n: {v: t["%srw.%s.%s" % (pre, n, v)].clone() for v in ("u", "v", "sigma")}
                   for n, _, _, _ in self.layers} if self.rw_lambda > 0 and not self.rw_layer_sn else {}
        # SR-GAN regularizes the convolutions; an MLP has none: every layer
        any_conv = any(not isinstance(mod, nn.Linear) for _, mod, _, _ in self.layers)
        self.sr_on = {n: not any_conv or not isinstance(mod, nn.Linear) for n, mod, _, _ in self.layers}
        self.sr_ref = {}
        self.sr_gaps = []  # (layer, s_gamma / s_gamma+1) of every SR call
        self.clamped = []  # (layer, sigma0 / (r sigma1 (1 + tol))) of every clamp decision

    def export(self):
        out = {}
        for n, d in self.gc.items():
            for v, x in d.items():
                out["%s.gclamp.%s.%s" % (self.R, n, v)] = x.clone()
        for n, d in self.rw.items():
            for v, x in d.items():
                out["%s.rw.%s.%s" % (self.R, n, v)] = x.clone()
        if self.sr_dynamic:
            for n, x in self.sr_ref.items():
                out["%s.sr.%s.ref" % (self.R, n)] = x.clone()
        return out

    def rw_penalty(self):
        """-lambda sum_i r(W_i), r(W) = |W|_F / (m sigma(W)) (thesis 4.2.1-2)
        with m the columns of W_mat (the input dimension) and sigma = u^T W v
        of the power iteration (u, v constants, so sigma carries gradient to
        W as SN's does): the layers' SN vectors as the forward left them, or
        one iteration of the penalty's own state per G update."""
        total = None
        for n, mod, w, od in self.layers:
            W = to_mat(w, od)
            if self.rw_layer_sn:
                u, v = mod.weight_u.clone(), mod.weight_v.clone()
            else:
                st = self.rw[n]
                with torch.no_grad():
                    v = nrm(W.t() @ st["u"])
                    u = nrm(W @ v)
                    st["u"], st["v"] = u, v
            sigma = torch.dot(u, W @ v)
            if not self.rw_layer_sn:
                st["sigma"] = sigma.detach().reshape(1).clone()
            r = w.square().sum().sqrt() / (sigma * W.shape[1])
            total = r if total is None else total + r
        return total * -self.rw_lambda

    def gclamp(self):
        """Spectral gradient clamping (thesis 4.2.3) on every weight
        gradient, as lipgan documents it (lg_gclamp_*): clamp_iters
        warm-started power iterations for (u0, v0) of the gradient G,
        sigma0 = u0^T G v0; as many for (u1, v1) of M = G - sigma0 u0 v0^T,
        sigma1 = u1^T M v1; if sigma0 > r sigma1 (1 + tol):
        G <- G - (sigma0 - r sigma1) u0 v0^T (the thesis' min(0, .) read as
        max, PITFALLS). A weight with one row or column is never clamped."""
        r, it = self.clamp_ratio, self.clamp_iters
        with torch.no_grad():
            for n, _, w, od in self.layers:
                G = to_mat(w.grad, od).clone()
                if G.shape[0] < 2 or G.shape[1] < 2:
                    continue
                st = self.gc[n]
                u0, v0, u1, v1 = st["u0"], st["v0"], st["u1"], st["v1"]
                for _ in range(it):
                    v0 = nrm(G.t() @ u0)
                    u0 = nrm(G @ v0)
                s0 = torch.dot(u0, G @ v0)
                for _ in range(it):
                    v1 = nrm(G.t() @ u1 - s0 * torch.dot(u0, u1) * v0)
                    u1 = nrm(G @ v1 - s0 * torch.dot(v0, v1) * u0)
                s1 = torch.dot(u1, G @ v1) - s0 * torch.dot(u0, u1) * torch.dot(v0, v1)
                st.update(u0=u0, v0=v0, u1=u1, v1=v1)
                thr = r * (1 + GCLAMP_TOL) * s1
                self.clamped.append((n, (s0 / thr).item()))
                if s0 > thr:
                    G = G - (s0 - r * s1) * torch.outer(u0, v0)
                    w.grad.copy_(from_mat(G, w.shape, od))

    def sr(self):
        """Spectral regularization (SR-GAN, seed 004 + seeds/README.md), in
        place on W_mat in float64: W = U diag(s) V^T, gamma = floor(frac n)
        in [1, n], W_SR = U diag(t) V^T with t_i = 1 for i < gamma, else
        s_i / s_1 (W_SR = (W + U D V^T) / s_1); dynamic: s_i / s_1 replaced
        by the running maximum of that ratio over every call (recorded in
        float, as lipgan keeps it)."""
        with torch.no_grad():
            for n, _, w, od in self.layers:
                if not self.sr_on[n]:
                    continue
                W = to_mat(w, od).double()
                U, S, Vh = torch.linalg.svd(W, full_matrices=False)
                k = S.numel()
                gamma = min(max(int(math.floor(self.sr_gamma * k * (1.0 + 1e-6))), 1), k)
                ratio = S / S[0]
                if gamma < k:  # how well-defined the compensated subspace is
                    self.sr_gaps.append((n, (S[gamma - 1] / S[gamma]).item()))
                if self.sr_dynamic:
                    if n not in self.sr_ref:
                        self.sr_ref[n] = ratio.float()
                    ref = self.sr_ref[n]
                    ref.copy_(torch.where(ratio > ref.double(), ratio.float(), ref))
                    ratio = torch.maximum(ratio, ref.double())
                tv = torch.where(torch.arange(k) < gamma, torch.ones_like(ratio), ratio)
                w.copy_(from_mat(((U * tv) @ Vh).float(), w.shape, od))

    def update(self, opt, attempt, step):
        """lipgan's apply_update: clamp the gradients, the optimizer step,
        clip every parameter, SR after every sr_every-th update (attempt,
        1-based) or in every sr_every-th step (step, 0-based)."""
        if self.clamp_ratio > 0:
            self.gclamp()
        opt.step()
        if self.clip > 0:  # WGAN: every parameter (its code: netD.parameters())
            with torch.no_grad():
                for p in self.net.parameters():
                    p.clamp_(-self.clip, self.clip)
        if self.sr_gamma > 0 and (step if self.sr_by_step else attempt) % self.sr_every == 0:
            self.sr()


def run_case(path):
    t, meta = read_safetensors(path)
    cfg = {k[4:]: v for k, v in meta.items() if k.startswith("cfg.")}
    steps = int(cfg["steps"])
    bd = int(cfg["batch_d"])
    kind, lam = cfg["loss"], float(cfg["gp_lambda"])
    ema_decay, ema_start = float(cfg["ema_decay"]), int(cfg["ema_start"])
    torch.manual_seed(0)  # module construction only; every value is then loaded
    G, D = Net(cfg, "G"), Net(cfg, "D")
    G.load(t, "init.G.")
    D.load(t, "init.D.")
    G.train()
    D.train()
    xg, xd = Extra(cfg, G, t), Extra(cfg, D, t)
    opt_g, sch_g = make_opt(G, cfg, "g", steps)
    opt_d, sch_d = make_opt(D, cfg, "d", steps)
    out = {k: v for k, v in t.items() if k.startswith(("init.", "in."))}
    stats = torch.zeros(steps, 10)
    ema = G.export() if ema_decay > 0 else None  # lg_model_clone of the initial G
    k = 0
    for s in range(steps):
        lr_d, lr_g = opt_d.param_groups[0]["lr"], opt_g.param_groups[0]["lr"]
        for _ in range(n_dis_at(cfg, s)):
            real, z = t["in.x.%d" % k], t["in.z.%d" % k]
            with torch.no_grad():
                G.set_sn_update(False)
                fake = G(z)
            D.set_sn_update(True)
            if D.bn:  # batch statistics per batch: two passes, the first iterating
                dr = D(real)
                D.set_sn_update(False)
                df = D(fake)
            else:
                o = D(torch.cat([real, fake]))
                D.set_sn_update(False)
                dr, df = o[:bd], o[bd:]
            loss = loss_d(kind, dr, df)
            gp = torch.zeros(())
            if lam > 0:
                gp = gradient_penalty(D, real, fake, t["in.eps.%d" % k], lam, cfg["gp_kind"])
                loss = loss + gp
            opt_d.zero_grad()
            loss.backward()
            k += 1
            xd.update(opt_d, k, s)
            row = [loss.item(), dr.mean().item(), df.mean().item(), gp.item()]
        assert k <= int(cfg["d_updates"])
        G.set_sn_update(True)
        D.set_sn_update(False)
        lg = loss_g(kind, D(G(t["in.zg.%d" % s])))
        if xg.rw_lambda > 0:
            lg = lg + xg.rw_penalty()
        opt_g.zero_grad()
        lg.backward()
        xg.update(opt_g, s + 1, s)
        if ema_decay > 0:
            g = G.export()
            if s < ema_start:
                ema = {n: v.clone() for n, v in g.items()}
            else:
                w = 1.0 - ema_decay
                for n, v in g.items():
                    ema[n] = v.clone() if n.endswith(STATE_SUFFIXES) else ema[n] + w * (v - ema[n])
        sch_d.step()
        sch_g.step()
        sig = [m.lg_sigma.item() for m in D.sn]
        sg = [min(sig), sum(sig) / len(sig), max(sig)] if sig else [0.0, 0.0, 0.0]
        stats[s] = torch.tensor(row + [lg.item(), lr_d, lr_g] + sg)
        for prefix, net in (("G", G), ("D", D)):
            for n, v in net.export().items():
                out["step%d.%s.%s" % (s + 1, prefix, n)] = v
        if ema is not None:
            for n, v in ema.items():
                out["step%d.EMA.%s" % (s + 1, n)] = v
        for x in (xg, xd):
            for n, v in x.export().items():
                out["step%d.X.%s" % (s + 1, n)] = v
    assert k == int(cfg["d_updates"]), (k, cfg["d_updates"])
    out["stats"] = stats
    name = meta.get("case", "?")
    for x in (xg, xd):
        if x.clamped:  # how far the decisions are from the threshold: none may be a coin toss
            near = min(x.clamped, key=lambda c: abs(c[1] - 1))
            print("%-12s %s: clamped %d of %d gradients; sigma0 / threshold nearest 1: %.4g (%s)"
                  % (name, x.R, sum(c[1] > 1 for c in x.clamped), len(x.clamped), near[1], near[0]),
                  file=sys.stderr)
        if x.sr_gaps:  # W_SR's top-gamma subspace is ill-defined near a gap of 1
            near = min(x.sr_gaps, key=lambda c: c[1])
            print("%-12s %s: %d SR calls; smallest s_gamma / s_gamma+1: %.4g (%s)"
                  % (name, x.R, len(x.sr_gaps), near[1], near[0]), file=sys.stderr)
    report(name, t, out)
    meta = {k: v for k, v in meta.items() if k != "lipgan.crc32"}
    meta.update(generator="tools/gen_reference_train.py", torch=torch.__version__)
    return out, meta


def report(name, t, out):
    """How far lipgan's own run (lipgan.*, in the dump) is from this one."""
    if "lipgan.stats" in t:
        d = (out["stats"] - t["lipgan.stats"]).abs()
        print("%-12s max |torch - lipgan| over the per-step stats: %.3g (step %d, column %d)"
              % (name, d.max().item(), d.argmax().item() // 10 + 1, d.argmax().item() % 10), file=sys.stderr)
    worst, where = 0.0, ""
    for key, v in t.items():
        if key.startswith("lipgan.step") and key[len("lipgan."):] in out:
            r = out[key[len("lipgan."):]]
            e = ((v - r).abs() / (1e-5 + 1e-4 * r.abs())).max().item() if v.numel() else 0.0
            if e > worst:
                worst, where = e, key[len("lipgan."):]
    if where:
        print("%-12s largest tensor error / test bound: %.3g (%s)" % (name, worst, where), file=sys.stderr)


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    torch.set_num_threads(1)
    d = sys.argv[1]
    names = sorted(f for f in os.listdir(d) if f.startswith("train_") and f.endswith(".safetensors"))
    if not names:
        raise SystemExit("%s: no train_*.safetensors; run the test with LG_TRAIN_REF_DUMP=%s first" % (d, d))
    os.makedirs(OUT, exist_ok=True)
    for f in names:
        tensors, meta = run_case(os.path.join(d, f))
        path = os.path.join(OUT, f)
        write_safetensors(path, tensors, meta)
        print("wrote", os.path.relpath(path), len(tensors), "tensors")


if __name__ == "__main__":
    main()
