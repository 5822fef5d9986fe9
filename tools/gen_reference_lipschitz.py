#!/usr/bin/env python3
"""Writes the PyTorch reference vectors of the Lipschitz toolkit tests
(tests/test_lipschitz_ref.c) into tests/data/ref/:

  sn_linear.safetensors   torch.nn.utils.spectral_norm on Linear(6, 4)
  sn_conv2d.safetensors   ... on Conv2d(3, 4, 3, stride 1, pad 1), 2 iterations
  sn_convt2d.safetensors  ... on ConvTranspose2d(4, 3, 4, stride 2, pad 1), dim=1
  gp.safetensors          WGAN-GP / one-sided / R1 penalties and their parameter
                          gradients for a small conv critic, without and with SN

Each SN file holds the raw weight `w`, bias `b`, input `x`, the initial `u0`
(set as the module's weight_u buffer, so C starts from the same u), and a
random `r` that weights the output (loss = sum(r * y)). Then, in training
mode: forward 1 -> `y1`, `sigma1`, `u1`, `v1`, `gw1` (d loss / d weight_orig),
`gx1`; an SGD step w -= lr * gw1 (metadata `lr`); forward 2 -> `y2`, `u2`,
`sigma2`; then module.eval() and forward 3 -> `y_eval` (stored u, v, no update).

Uses only torch plus struct + json for the file format (not the safetensors
package, not lipgan), so the reference is independent of lipgan's writer.

Run from the repo root:  python3 tools/gen_reference_lipschitz.py
"""
import json
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = "tests/data/ref"


def write_safetensors(path, tensors, meta):
    """tensors: list of (name, float32 tensor); meta: dict of str -> str."""
    header, blobs, off = {}, [], 0
    for name, t in tensors:
        t = t.detach().to(torch.float32).contiguous().reshape(-1)
        blob = struct.pack("<%df" % t.numel(), *t.tolist())
        shape = list(dict(tensors)[name].shape)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    header["__metadata__"] = {k: str(v) for k, v in meta.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    print("wrote %s (%d tensors)" % (path, len(tensors)))


def sn_case(name, module, x, dim, n_iter, gen, lr=0.1):
    w0 = module.weight.detach().clone()
    b0 = module.bias.detach().clone()
    module = nn.utils.spectral_norm(module, n_power_iterations=n_iter, dim=dim)
    u0 = F.normalize(torch.randn(module.weight_u.shape, generator=gen), dim=0)
    module.weight_u.data.copy_(u0)
    x = x.clone().requires_grad_(True)
    module.train()
    y1 = module(x)
    r = torch.rand(y1.shape, generator=gen) * 2 - 1
    wsn1 = module.weight.detach().clone()
    u1, v1 = module.weight_u.detach().clone(), module.weight_v.detach().clone()
    wmat = module.weight_orig.detach()
    if dim != 0:
        wmat = wmat.permute(dim, *[d for d in range(wmat.dim()) if d != dim])
    wmat = wmat.reshape(wmat.shape[0], -1)
    sigma1 = torch.dot(u1, wmat @ v1).reshape(1)
    loss = (r * y1).sum()
    gw1, gx1 = torch.autograd.grad(loss, [module.weight_orig, x])
    with torch.no_grad():
        module.weight_orig -= lr * gw1
    y2 = module(x)
    u2 = module.weight_u.detach().clone()
    wmat2 = module.weight_orig.detach()
    if dim != 0:
        wmat2 = wmat2.permute(dim, *[d for d in range(wmat2.dim()) if d != dim])
    wmat2 = wmat2.reshape(wmat2.shape[0], -1)
    sigma2 = torch.dot(u2, wmat2 @ module.weight_v.detach()).reshape(1)
    module.eval()
    y_eval = module(x)
    assert torch.equal(module.weight_u, u2), "eval must not update u"
    write_safetensors(
        os.path.join(OUT, "sn_%s.safetensors" % name),
        [("w", w0), ("b", b0), ("x", x.detach()), ("u0", u0), ("r", r), ("y1", y1), ("wsn1", wsn1),
         ("sigma1", sigma1), ("u1", u1), ("v1", v1), ("gw1", gw1), ("gx1", gx1), ("y2", y2),
         ("u2", u2), ("sigma2", sigma2), ("y_eval", y_eval)],
        {"producer": "tools/gen_reference_lipschitz.py", "torch": torch.__version__,
         "dim": dim, "n_iter": n_iter, "lr": lr},
    )


OUT_SCALE = {0: 1.0, 1: 1.7}


class Critic(nn.Module):
    """conv3x3(3->4, s1, p1) -> LeakyReLU(0.2) -> flatten -> linear(100 -> 1),
    times out_scale (1 without SN, 1.7 with SN: puts the per-sample gradient
    norms on both sides of 1 in both cases, so the one-sided penalty is neither
    0 nor equal to the two-sided one)."""

    def __init__(self, conv_w, conv_b, lin_w, lin_b, sn, u_conv, u_lin):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, 1, 1)
        self.lin = nn.Linear(100, 1)
        with torch.no_grad():
            self.conv.weight.copy_(conv_w)
            self.conv.bias.copy_(conv_b)
            self.lin.weight.copy_(lin_w)
            self.lin.bias.copy_(lin_b)
        if sn:
            self.conv = nn.utils.spectral_norm(self.conv)
            self.lin = nn.utils.spectral_norm(self.lin)
            self.conv.weight_u.data.copy_(u_conv)
            self.lin.weight_u.data.copy_(u_lin)
        self.sn = sn
        self.out_scale = OUT_SCALE[sn]

    def params(self):
        if self.sn:
            return [self.conv.weight_orig, self.conv.bias, self.lin.weight_orig, self.lin.bias]
        return [self.conv.weight, self.conv.bias, self.lin.weight, self.lin.bias]

    def forward(self, x):
        h = F.leaky_relu(self.conv(x), 0.2)
        return self.lin(h.flatten(1)) * self.out_scale


def gp_cases(gen):
    n = 4
    conv_w = torch.randn(4, 3, 3, 3, generator=gen) * 0.3
    conv_b = torch.randn(4, generator=gen) * 0.1
    lin_w = torch.randn(1, 100, generator=gen) * 0.13
    lin_b = torch.randn(1, generator=gen) * 0.1
    u_conv = F.normalize(torch.randn(4, generator=gen), dim=0)
    u_lin = F.normalize(torch.randn(1, generator=gen), dim=0)
    real = torch.rand(n, 3, 5, 5, generator=gen) * 2 - 1
    fake = torch.rand(n, 3, 5, 5, generator=gen) * 2 - 1
    eps = torch.rand(n, 1, 1, 1, generator=gen)
    lam = 10.0
    tensors = [("conv_w", conv_w), ("conv_b", conv_b), ("lin_w", lin_w), ("lin_b", lin_b),
               ("u_conv", u_conv), ("u_lin", u_lin), ("real", real), ("fake", fake), ("eps", eps)]
    pnames = ["conv_w", "conv_b", "lin_w", "lin_b"]
    for sn in (0, 1):
        for kind in ("two", "one", "r1"):
            d = Critic(conv_w, conv_b, lin_w, lin_b, sn, u_conv, u_lin)
            d.train()
            xh = real.clone() if kind == "r1" else eps * real + (1 - eps) * fake
            xh.requires_grad_(True)
            out = d(xh)
            (g,) = torch.autograd.grad(out.sum(), xh, create_graph=True)
            nrm2 = g.flatten(1).pow(2).sum(1)
            if kind == "r1":
                per = nrm2
            else:
                dev = nrm2.sqrt() - 1
                per = (dev.clamp(min=0) if kind == "one" else dev).pow(2)
            gp = lam * per.mean()
            # the last bias has no effect on grad_x D: its gradient is exactly 0
            grads = torch.autograd.grad(gp, d.params(), allow_unused=True)
            grads = [torch.zeros_like(p) if gr is None else gr for p, gr in zip(d.params(), grads)]
            tag = "%s_sn%d" % (kind, sn)
            print("  %s: penalty %.6f, per-sample ||g|| %s" % (
                tag, gp.item(), [round(v, 4) for v in nrm2.sqrt().tolist()]))
            tensors.append(("gp_" + tag, gp.detach().reshape(1)))
            for pn, gr in zip(pnames, grads):
                tensors.append(("g_%s_%s" % (tag, pn), gr))
    write_safetensors(os.path.join(OUT, "gp.safetensors"), tensors,
                      {"producer": "tools/gen_reference_lipschitz.py", "torch": torch.__version__,
                       "lambda": lam, "lrelu": 0.2, "out_scale_sn0": OUT_SCALE[0],
                       "out_scale_sn1": OUT_SCALE[1]})


def main():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(20240605)
    torch.manual_seed(1)
    sn_case("linear", nn.Linear(6, 4), torch.randn(3, 6, generator=gen), 0, 1, gen)
    sn_case("conv2d", nn.Conv2d(3, 4, 3, 1, 1), torch.randn(2, 3, 5, 5, generator=gen), 0, 2, gen)
    sn_case("convt2d", nn.ConvTranspose2d(4, 3, 4, 2, 1), torch.randn(2, 4, 3, 3, generator=gen),
            1, 1, gen)
    gp_cases(gen)


if __name__ == "__main__":
    main()
