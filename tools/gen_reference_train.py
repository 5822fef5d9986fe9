#!/usr/bin/env python3
"""PyTorch reference trajectories for tests/test_train_ref.c: a few full GAN
training steps of lipgan's trainer, redone as a plain PyTorch training loop
from the same initial weights, noise and data.

Regenerate (from the repo root, after a deliberate change of the trainer):

    LG_TRAIN_REF_DUMP=/tmp/trd build/tests/test_train_ref
    python3 tools/gen_reference_train.py /tmp/trd

The first command writes /tmp/trd/train_<case>.safetensors for every case
of the test: the config as metadata (cfg.*), lipgan's initial weights and
state (init.G.<name>, init.D.<name>, lipgan's names), the inputs the
trainer draws, which the test reproduces with lipgan's public rng and data
API and checks against the trainer's checkpoint (in.x.<k>, in.z.<k>,
in.eps.<k>: real batch with instance noise, latent noise and GP epsilon of
D update k; in.zg.<s>: the noise of G update s), and lipgan's own per-step
statistics (lipgan.stats, only printed here for comparison). This script
writes tests/data/ref/train_<case>.safetensors: the same metadata, init.*
and in.* tensors, plus
  stats (steps, 10)             per step: loss_d, d_real, d_fake, gp (of the
                                step's last D update), loss_g, lr_d, lr_g,
                                sigma_min, sigma_mean, sigma_max (over D's SN
                                layers: u^T W v with the stored u, v; 0 if none)
  step<s>.{G,D,EMA}.<name>      every parameter and state tensor after step s
                                (lipgan's names; EMA only with ema.decay > 0)

The loop is the textbook PyTorch GAN loop (torch.nn modules,
torch.nn.utils.spectral_norm, torch.optim.Adam, LambdaLR linear decay,
torch.autograd.grad for the penalty, BCE-with-logits for the
minimax/nonsat losses); per step s (0-based), with lr * (1 - s / steps)
under linear decay:
  n_dis times:  fake = G(z) under no_grad (G in training mode: batch-norm
                batch statistics; its SN vectors frozen);
                o = D(cat(real, fake)) - the one pass in which D's SN power
                iteration runs (sn_iters iterations); every other pass through
                D (penalty, G update) uses the stored u, v (module.eval() on
                the SN modules only, as lipgan documents under
                lipschitz.d.sn_iters); loss_d(o[:b], o[b:]) [+ GP at
                eps*real + (1-eps)*fake, ||grad||_2 per sample, as the
                WGAN-GP code; lipgan takes sqrt(||grad||^2 + 1e-12), which
                differs only for norms of ~1e-5 and below];
                Adam step of D.
  G update:     loss_g(D(G(z))) with G's SN iterating, D's frozen; Adam
                step of G; EMA: copy while s < ema.start, else
                ema += (1 - decay) (g - ema) on the parameters, the state
                (BN statistics, SN vectors) copied.
lipgan specific, reproduced: an SN layer first used frozen (G's layers, in
the first D update) first runs 15 power iterations from its seeded u
(LG_SN_PRIME_ITERS; torch.nn.utils.parametrizations.spectral_norm's
construction-time priming); the stored sigma of a layer is the one of its
last forward.

The test bounds the biases that a batch norm right after their layer
cancels (and that batch norm's running mean) only by the learning rate:
their true gradient is 0, and Adam turns the rounding noise of either side
into steps of up to ~lr (see bn_cancelled in the test).

Only torch is needed (struct + json for the files, tools/st_write.py);
Python is never needed to build or test lipgan.
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st_write import write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "ref")
PRIME_ITERS = 15  # LG_SN_PRIME_ITERS
STATE_SUFFIXES = ("running_mean", "running_var", "sn_u", "sn_v", "sn_sigma")


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", (path, k, v["dtype"])
        b, e = v["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float32)
        out[k] = t.reshape(v["shape"]).clone()
    return out, header.get("__metadata__", {})


class Net(nn.Module):
    """lipgan's MLP / CNN (src/models/model_mlp.c, model_cnn.c) with its
    layer names, optionally spectrally normalized."""

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
                cin = c
                for i, (name, k, mult) in enumerate((("c0_0", 3, 1), ("c0_1", 4, 1), ("c1_0", 3, 2),
                                                     ("c1_1", 4, 2), ("c2_0", 3, 4), ("c2_1", 4, 4),
                                                     ("c3_0", 3, 8))):
                    nb = self.bn and i > 0
                    self.m[name] = nn.Conv2d(cin, mult * ch, k, 2 if k == 4 else 1, 1, bias=not nb)
                    if nb:
                        self.m["bn" + name[1:]] = nn.BatchNorm2d(mult * ch)
                    cin = mult * ch
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
        self.sn = []
        if int(cfg["%s.sn" % r]):
            for name, mod in list(self.m.items()):
                if isinstance(mod, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                    # dim 1 for ConvTranspose2d (PyTorch's default, lipgan's out_dim)
                    mod = nn.utils.spectral_norm(mod, n_power_iterations=int(cfg["%s.sn_iters" % r]))
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
                prime(mod)

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


def wmat(mod):
    w = mod.weight_orig
    if isinstance(mod, nn.ConvTranspose2d):
        w = w.transpose(0, 1)
    return w.reshape(w.shape[0], -1)


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
    e = eps.view(-1, *([1] * (real.dim() - 1)))
    xh = (e * real + (1 - e) * fake).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(D(xh).sum(), xh, create_graph=True)
    norm = g.flatten(1).norm(2, dim=1)
    if kind == "two-sided":
        per = (norm - 1) ** 2
    elif kind == "one-sided":
        per = F.relu(norm - 1) ** 2
    else:
        per = norm ** 2
    return lam * per.mean()


def make_opt(net, cfg, r, steps):
    if cfg["%s.optim" % r] != "adam":
        raise SystemExit("optimizer %s: not in this script" % cfg["%s.optim" % r])
    opt = torch.optim.Adam(net.parameters(), lr=float(cfg["%s.lr" % r]),
                           betas=(float(cfg["%s.beta1" % r]), float(cfg["%s.beta2" % r])),
                           eps=float(cfg["%s.eps" % r]))
    if cfg["lr_decay"] == "linear":
        sch = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / steps)
    else:
        sch = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    return opt, sch


def run_case(path):
    t, meta = read_safetensors(path)
    cfg = {k[4:]: v for k, v in meta.items() if k.startswith("cfg.")}
    steps, n_dis = int(cfg["steps"]), int(cfg["n_dis"])
    bd = int(cfg["batch_d"])
    kind, lam = cfg["loss"], float(cfg["gp_lambda"])
    ema_decay, ema_start = float(cfg["ema_decay"]), int(cfg["ema_start"])
    torch.manual_seed(0)  # module construction only; every value is then loaded
    G, D = Net(cfg, "G"), Net(cfg, "D")
    G.load(t, "init.G.")
    D.load(t, "init.D.")
    G.train()
    D.train()
    opt_g, sch_g = make_opt(G, cfg, "g", steps)
    opt_d, sch_d = make_opt(D, cfg, "d", steps)
    out = {k: v for k, v in t.items() if k.startswith(("init.", "in."))}
    stats = torch.zeros(steps, 10)
    ema = G.export() if ema_decay > 0 else None  # lg_model_clone of the initial G
    k = 0
    for s in range(steps):
        lr_d, lr_g = opt_d.param_groups[0]["lr"], opt_g.param_groups[0]["lr"]
        for _ in range(n_dis):
            real, z = t["in.x.%d" % k], t["in.z.%d" % k]
            with torch.no_grad():
                G.set_sn_update(False)
                fake = G(z)
            D.set_sn_update(True)
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
            opt_d.step()
            row = [loss.item(), dr.mean().item(), df.mean().item(), gp.item()]
            k += 1
        assert k <= int(cfg["d_updates"])
        G.set_sn_update(True)
        D.set_sn_update(False)
        lg = loss_g(kind, D(G(t["in.zg.%d" % s])))
        opt_g.zero_grad()
        lg.backward()
        opt_g.step()
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
    assert k == int(cfg["d_updates"]), (k, cfg["d_updates"])
    out["stats"] = stats
    if "lipgan.stats" in t:
        d = (stats - t["lipgan.stats"]).abs()
        print("%-12s max |torch - lipgan| over the per-step stats: %.3g (step %d, column %d)"
              % (meta.get("case", "?"), d.max().item(), d.argmax().item() // 10 + 1,
                 d.argmax().item() % 10), file=sys.stderr)
    meta = {k: v for k, v in meta.items() if k != "lipgan.crc32"}
    meta.update(generator="tools/gen_reference_train.py", torch=torch.__version__)
    return out, meta


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
