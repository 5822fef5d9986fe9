#!/usr/bin/env python3
"""Regenerates the PyTorch reference values in tests/data/ref/*.safetensors.

    python3 tools/gen_reference.py        # CPU, float32, a few seconds

tests/test_reference.c compares lipgan's forward values and gradients with
these files. Every file is produced from fixed seeds, so rerunning the
script rewrites identical values (up to PyTorch's CPU kernels). Only torch
is needed: the safetensors writer below is ~20 lines of struct + json.

Files (each tensor is float32; `dy` is a random upstream gradient and the
d* tensors are gradients of sum(dy * y)):
  conv2d_s2p1        x (2,3,7,6), w (4,3,3,3), b (4), stride 2, pad 1:
                     y, dy, dx, dw, db
  convt_k3s2p1op1    ConvTranspose2d, x (2,3,4,3), w (3,2,3,3) (in, out, kh, kw),
                     b (2), stride 2, pad 1, output_padding 1: y, dy, dx, dw, db
  convt_k4s2p1       the same with a 4x4 kernel, output_padding 0
  batchnorm          BatchNorm2d(3) on x (4,3,3,3), momentum 0.1, eps 1e-5,
                     running stats (rm0, rv0) before the step:
                     train: y, dy, dx, dgamma, dbeta, rm1, rv1 (after the update;
                     PyTorch updates the running variance with the unbiased
                     batch variance); eval with running stats (erm, erv):
                     ey, edx, edgamma, edbeta; and BatchNorm1d on x2 (6,3):
                     y2, dy2, dx2, dgamma2, dbeta2, rm2, rv2
  upsample           nearest x2 on x (2,3,3,4): y, dy, dx
  avgpool            avg_pool2d(2) on x (2,3,4,6): y, dy, dx
  pool_odd           2x2 pooling on odd and mixed sizes (PyTorch floors: an odd
                     H's last row and an odd W's last column are dropped, their
                     gradient 0), for each tag of 5x7 (2,3,5,7), 5x4 (2,2,5,4),
                     4x7 (1,3,4,7), 3x3 (2,2,3,3), 2x3 (1,2,2,3): x_<tag>;
                     avg_pool2d(x, 2): avg_<tag>, davg_y_<tag> (dy), davg_<tag> (dx);
                     sum pooling (divisor_override=1): sum_<tag>, dsum_y_<tag>,
                     dsum_<tag>; and the second order through an odd-size pool:
                     D(x) = fc(flatten(avg_pool2d(leaky_relu(conv(x), 0.2), 2)))
                     with conv Conv2d(3, 4, 3, padding=1) (cw, cb), fc (1, 24) no
                     bias (fw), on x_5x7 (2,3,5,7) -> (2,4,2,3): d (2,1),
                     gp (1) = mean_n (||grad_x sum(D)_n||_2 - 1)^2, gp_cw, gp_cb, gp_fw
  global_sum_pool    x.sum((2,3)) on x (2,3,4,5): y (2,3), dy, dx
  rows               x[1:4] of x (5,3,2,2): y, dy, dx
  rows_pad           x (2,3) placed at row 1 of zeros (5,3): y, dy, dx
  cat_rows           torch.cat([a (2,2,3), b (3,2,3)]): y, dy, da, db
  linear             x (5,7), w (3,7), b (3): y, dy, dx, dw, db
  conv_bias_relu     relu(conv2d(x (2,3,6,5), w (4,3,3,3), b (4), stride 1, pad 1)),
                     lipgan's fused bias + ReLU (lg_add_relu): y, dy, dx, dw, db, and
                     the second order the gradient penalty takes: gp (1) =
                     sum(dx^2) with dx built differentiably, gp_dw = d gp / dw
  conv_wino          conv2d 64 -> 64 channels, 3x3, stride 1, pad 1 (w, b at PyTorch's
                     init scale), on x7 (2,64,7,7) and x2 (2,64,2,2), wide enough
                     for the CPU backend's Winograd F(4x4) and F(2x2) paths:
                     y7, dy7, dx7, dw7, db7, gp7 = sum(dx7^2), gp_dw7; y2 .. db2
  activations        x (64) spread over [-6, 6] plus +-20, +-30; for each of
                     relu, leaky_relu (0.2), tanh, sigmoid, softplus: y_<act>,
                     dx_<act> for the common dy
  wgan_gp            the critic below; real, fake (2,3,8,8), alpha (2,1,1,1),
                     xhat = alpha*real + (1-alpha)*fake, d_real, d_fake (2,1),
                     gp (1) = 10 * mean_n (||grad_xhat sum(D(xhat))_n||_2 - 1)^2,
                     gp_grad.<p> for every parameter, loss (1) = mean(d_fake) -
                     mean(d_real) + gp and loss_grad.<p>

The critic (mirrored in tests/test_reference.c and tests/test_ops_grad.c):
    conv1  Conv2d(3, 4, 3, stride=2, padding=1)   (2,3,8,8) -> (2,4,4,4)
    LeakyReLU(0.2)
    conv2  Conv2d(4, 4, 3, stride=1, padding=1)   -> (2,4,4,4)
    AvgPool2d(2)                                   -> (2,4,2,2)
    flatten                                        -> (2,16)
    fc     Linear(16, 1)                           -> (2,1)
Parameter names: conv1.weight, conv1.bias, conv2.weight, conv2.bias,
fc.weight, fc.bias (PyTorch's default initialization, seed 7).
"""
import json
import os
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")  # numpy is not needed
import torch  # noqa: E402
from st_write import write_safetensors  # noqa: E402
import torch.nn.functional as F  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "ref")


def grads(y, inputs, dy):
    return torch.autograd.grad(y, inputs, dy)


def leaf(*shape, lo=-1.0, hi=1.0):
    return (torch.rand(*shape) * (hi - lo) + lo).requires_grad_(True)


def conv2d_case():
    torch.manual_seed(1)
    x, w, b = leaf(2, 3, 7, 6), leaf(4, 3, 3, 3), leaf(4)
    y = F.conv2d(x, w, b, stride=2, padding=1)
    dy = torch.rand_like(y) * 2 - 1
    dx, dw, db = grads(y, (x, w, b), dy)
    return dict(x=x, w=w, b=b, y=y, dy=dy, dx=dx, dw=dw, db=db)


def convt_case(seed, k, out_pad):
    torch.manual_seed(seed)
    x, w, b = leaf(2, 3, 4, 3), leaf(3, 2, k, k), leaf(2)
    y = F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=out_pad)
    dy = torch.rand_like(y) * 2 - 1
    dx, dw, db = grads(y, (x, w, b), dy)
    return dict(x=x, w=w, b=b, y=y, dy=dy, dx=dx, dw=dw, db=db)


def batchnorm_case():
    torch.manual_seed(3)
    out = {}
    x = leaf(4, 3, 3, 3, lo=-1.0, hi=2.0)
    gamma, beta = leaf(3, lo=0.5, hi=1.5), leaf(3, lo=-0.5, hi=0.5)
    rm0, rv0 = torch.tensor([0.1, -0.2, 0.3]), torch.tensor([0.5, 1.0, 1.5])
    rm, rv = rm0.clone(), rv0.clone()
    y = F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=0.1, eps=1e-5)
    dy = torch.rand_like(y) * 2 - 1
    dx, dg, db = grads(y, (x, gamma, beta), dy)
    out.update(x=x, gamma=gamma, beta=beta, rm0=rm0, rv0=rv0, y=y, dy=dy, dx=dx, dgamma=dg,
               dbeta=db, rm1=rm, rv1=rv)
    erm, erv = torch.tensor([0.2, 0.0, -0.1]), torch.tensor([0.8, 1.2, 0.4])
    ey = F.batch_norm(x, erm.clone(), erv.clone(), gamma, beta, training=False, eps=1e-5)
    edx, edg, edb = grads(ey, (x, gamma, beta), dy)
    out.update(erm=erm, erv=erv, ey=ey, edx=edx, edgamma=edg, edbeta=edb)
    x2 = leaf(6, 3)
    rm, rv = rm0.clone(), rv0.clone()
    y2 = F.batch_norm(x2, rm, rv, gamma, beta, training=True, momentum=0.1, eps=1e-5)
    dy2 = torch.rand_like(y2) * 2 - 1
    dx2, dg2, db2 = grads(y2, (x2, gamma, beta), dy2)
    out.update(x2=x2, y2=y2, dy2=dy2, dx2=dx2, dgamma2=dg2, dbeta2=db2, rm2=rm, rv2=rv)
    return out


def unary_case(seed, shape, fn):
    torch.manual_seed(seed)
    x = leaf(*shape)
    y = fn(x)
    dy = torch.rand_like(y) * 2 - 1
    (dx,) = grads(y, (x,), dy)
    return dict(x=x, y=y, dy=dy, dx=dx)


def pool_odd_case():
    torch.manual_seed(15)
    out = {}
    for tag, shape in (("5x7", (2, 3, 5, 7)), ("5x4", (2, 2, 5, 4)), ("4x7", (1, 3, 4, 7)),
                       ("3x3", (2, 2, 3, 3)), ("2x3", (1, 2, 2, 3))):
        x = leaf(*shape)
        out["x_" + tag] = x
        for kind, kw in (("avg", {}), ("sum", {"divisor_override": 1})):
            y = F.avg_pool2d(x, 2, **kw)
            dy = torch.rand_like(y) * 2 - 1
            (dx,) = grads(y, (x,), dy)
            out.update({kind + "_" + tag: y, "d" + kind + "_y_" + tag: dy, "d" + kind + "_" + tag: dx})
    x = out["x_5x7"]
    cw, cb, fw = leaf(4, 3, 3, 3, lo=-0.5, hi=0.5), leaf(4, lo=-0.5, hi=0.5), leaf(1, 24)
    d = F.linear(F.avg_pool2d(F.leaky_relu(F.conv2d(x, cw, cb, padding=1), 0.2), 2).flatten(1), fw)
    (g,) = torch.autograd.grad(d.sum(), x, create_graph=True)
    gp = ((g.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
    gp_cw, gp_cb, gp_fw = torch.autograd.grad(gp, (cw, cb, fw))
    out.update(cw=cw, cb=cb, fw=fw, d=d, gp=gp.reshape(1), gp_cw=gp_cw, gp_cb=gp_cb, gp_fw=gp_fw)
    return out


def conv_bias_relu_case():
    torch.manual_seed(13)
    x, w, b = leaf(2, 3, 6, 5), leaf(4, 3, 3, 3), leaf(4)
    y = F.relu(F.conv2d(x, w, b, stride=1, padding=1))
    dy = torch.rand_like(y) * 2 - 1
    dx, dw, db = torch.autograd.grad(y, (x, w, b), dy, create_graph=True)
    gp = (dx ** 2).sum()
    (gp_dw,) = torch.autograd.grad(gp, (w,))
    return dict(x=x, w=w, b=b, y=y, dy=dy, dx=dx, dw=dw, db=db, gp=gp.reshape(1), gp_dw=gp_dw)


def conv_wino_case():
    """64 -> 64 channel 3x3 convs, wide enough for the CPU backend's
    Winograd paths: 7x7 takes F(4x4,3x3) (partial tiles), 2x2 F(2x2,3x3)."""
    torch.manual_seed(14)
    bound = 1.0 / (64 * 9) ** 0.5  # PyTorch's default init scale
    w, b = leaf(64, 64, 3, 3, lo=-bound, hi=bound), leaf(64, lo=-bound, hi=bound)
    out = dict(w=w, b=b)
    for tag, hw in (("7", 7), ("2", 2)):
        x = leaf(2, 64, hw, hw)
        y = F.conv2d(x, w, b, stride=1, padding=1)
        dy = torch.rand_like(y) * 2 - 1
        dx, dw, db = torch.autograd.grad(y, (x, w, b), dy, create_graph=True)
        out.update({"x" + tag: x, "y" + tag: y, "dy" + tag: dy, "dx" + tag: dx, "dw" + tag: dw,
                    "db" + tag: db})
        if tag == "7":  # the gradient penalty's second order through the same convs
            gp = (dx ** 2).sum()
            (gp_dw,) = torch.autograd.grad(gp, (w,))
            out.update(gp7=gp.reshape(1), gp_dw7=gp_dw)
    return out


def cat_rows_case():
    torch.manual_seed(11)
    a, b = leaf(2, 2, 3), leaf(3, 2, 3)
    y = torch.cat([a, b])
    dy = torch.rand_like(y) * 2 - 1
    da, db = grads(y, (a, b), dy)
    return dict(a=a, b=b, y=y, dy=dy, da=da, db=db)


def linear_case():
    torch.manual_seed(6)
    x, w, b = leaf(5, 7), leaf(3, 7), leaf(3)
    y = F.linear(x, w, b)
    dy = torch.rand_like(y) * 2 - 1
    dx, dw, db = grads(y, (x, w, b), dy)
    return dict(x=x, w=w, b=b, y=y, dy=dy, dx=dx, dw=dw, db=db)


def activations_case():
    torch.manual_seed(5)
    x = torch.cat([torch.linspace(-6, 6, 56) + 0.01, torch.tensor([-30., -20., -3e-3, 3e-3,
                                                                   0.5, 20., 30., 1.0])])
    x = x.requires_grad_(True)
    dy = torch.rand(64) * 2 - 1
    out = dict(x=x, dy=dy)
    acts = dict(relu=F.relu, leaky_relu=lambda t: F.leaky_relu(t, 0.2), tanh=torch.tanh,
                sigmoid=torch.sigmoid, softplus=F.softplus)
    for name, fn in acts.items():
        y = fn(x)
        (dx,) = grads(y, (x,), dy)
        out["y_" + name], out["dx_" + name] = y, dx
    return out


class Critic(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.conv2 = torch.nn.Conv2d(4, 4, 3, stride=1, padding=1)
        self.fc = torch.nn.Linear(16, 1)

    def forward(self, x):
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = F.avg_pool2d(self.conv2(h), 2)
        return self.fc(h.flatten(1))


def wgan_gp_case():
    torch.manual_seed(7)
    D = Critic()
    real, fake = torch.rand(2, 3, 8, 8) * 2 - 1, torch.rand(2, 3, 8, 8) * 2 - 1
    alpha = torch.rand(2, 1, 1, 1)
    xhat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    params = dict(D.named_parameters())
    (g,) = torch.autograd.grad(D(xhat).sum(), xhat, create_graph=True)
    gp = 10.0 * ((g.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
    # fc.bias does not reach the input gradient: its penalty gradient is 0
    gp_grads = torch.autograd.grad(gp, list(params.values()), retain_graph=True,
                                   allow_unused=True)
    gp_grads = [torch.zeros_like(p) if gg is None else gg for p, gg in zip(params.values(), gp_grads)]
    d_real, d_fake = D(real), D(fake)
    loss = d_fake.mean() - d_real.mean() + gp
    loss_grads = torch.autograd.grad(loss, list(params.values()))
    out = dict(real=real, fake=fake, alpha=alpha, xhat=xhat, d_real=d_real, d_fake=d_fake,
               gp=gp.reshape(1), loss=loss.reshape(1))
    for (name, p), gg, lg in zip(params.items(), gp_grads, loss_grads):
        out[name] = p
        out["gp_grad." + name] = gg
        out["loss_grad." + name] = lg
    return out


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    meta = {"generator": "tools/gen_reference.py", "torch": torch.__version__}
    cases = {
        "conv2d_s2p1": conv2d_case(),
        "convt_k3s2p1op1": convt_case(2, 3, 1),
        "convt_k4s2p1": convt_case(12, 4, 0),
        "batchnorm": batchnorm_case(),
        "upsample": unary_case(4, (2, 3, 3, 4), lambda t: F.interpolate(t, scale_factor=2,
                                                                         mode="nearest")),
        "avgpool": unary_case(8, (2, 3, 4, 6), lambda t: F.avg_pool2d(t, 2)),
        "pool_odd": pool_odd_case(),
        "global_sum_pool": unary_case(9, (2, 3, 4, 5), lambda t: t.sum((2, 3))),
        "rows": unary_case(10, (5, 3, 2, 2), lambda t: t[1:4]),
        "rows_pad": unary_case(12, (2, 3), lambda t: torch.cat([t.new_zeros(1, 3), t,
                                                                t.new_zeros(2, 3)])),
        "cat_rows": cat_rows_case(),
        "linear": linear_case(),
        "conv_bias_relu": conv_bias_relu_case(),
        "conv_wino": conv_wino_case(),
        "activations": activations_case(),
        "wgan_gp": wgan_gp_case(),
    }
    for name, tensors in cases.items():
        path = os.path.join(OUT, name + ".safetensors")
        write_safetensors(path, tensors, meta)
        print("wrote", os.path.relpath(path), len(tensors), "tensors")


if __name__ == "__main__":
    main()
