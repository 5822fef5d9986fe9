#!/usr/bin/env python3
"""PyTorch reference for tests/test_models.c's test_reference.

    LG_MODELS_DUMP=/tmp/dump build/tests/test_models
    python3 tools/model_reference.py /tmp/dump > tests/test_models_ref.inc

Each DIR/<case>.safetensors holds a tiny lipgan model's named tensors (SN /
Toeplitz vectors and BN running statistics as they were BEFORE the
forward), the input and lipgan's output. This script rebuilds the
architecture with torch.nn modules (layer order after the SN-GAN PyTorch
ports, Miyato et al.'s table 3 and, for the CNN critic with batch norm,
the WGAN code's DCGAN_D), loads the tensors by name, runs one
training-mode forward (batch-norm batch statistics; one power iteration
through torch.nn.utils.spectral_norm; the thesis' Toeplitz normalization
written out with conv2d/conv_transpose2d) and, for the cases without a
Lipschitz method, then one eval-mode forward (batch norm on the running
statistics that the first forward updated), reports the largest
difference from lipgan's outputs on stderr, and prints the test's table
with PyTorch's values on stdout. Reference only: Python
is never needed to build or test lipgan. Needs torch, not numpy.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from st_write import read_safetensors  # tools/ is the script's directory

# name, arch, role, c, size, ch, depth, data_dim, lip, toep_k, bn (the
# spec's batchnorm: the default, 1 for G and 0 for D, but for the *_bn D's)
CASES = [
    ("resnet_d", "RESNET", "D", 3, 16, 8, 4, 0, "NONE", 1.0, 0),
    ("resnet_d_sn", "RESNET", "D", 3, 16, 8, 4, 0, "SN", 1.0, 0),
    ("resnet_d_toep", "RESNET", "D", 1, 16, 6, 4, 0, "TOEPLITZ", 2.0, 0),
    ("resnet_g", "RESNET", "G", 3, 16, 8, 4, 0, "NONE", 1.0, 1),
    ("resnet_g_sn", "RESNET", "G", 1, 16, 6, 4, 0, "SN", 1.0, 1),
    ("cnn_d", "CNN", "D", 3, 16, 4, 4, 0, "NONE", 1.0, 0),
    ("cnn_g", "CNN", "G", 3, 16, 4, 4, 0, "NONE", 1.0, 1),
    ("cnn_g_sn", "CNN", "G", 1, 16, 2, 4, 0, "SN", 1.0, 1),
    ("cnn_g_toep", "CNN", "G", 1, 16, 2, 4, 0, "TOEPLITZ", 1.5, 1),
    ("mlp_d", "MLP", "D", 1, 8, 16, 3, 0, "SN", 1.0, 0),
    ("mlp_g", "MLP", "G", 1, 8, 16, 3, 0, "NONE", 1.0, 1),
    ("mlp_toy_g", "MLP", "G", 1, 8, 16, 3, 2, "NONE", 1.0, 1),
    ("cnn_d_bn", "CNN", "D", 3, 16, 4, 4, 0, "NONE", 1.0, 1),
    ("cnn_d_bn_sn", "CNN", "D", 1, 16, 4, 4, 0, "SN", 1.0, 1),
    ("cnn_d_bn_toep", "CNN", "D", 1, 16, 3, 4, 0, "TOEPLITZ", 2.0, 1),
]


def normalize(x):
    return x / x.norm().clamp_min(1e-12)


class Net:
    """Layers built from the tensors by name, with the model's method."""

    def __init__(self, t, lip, k):
        self.t, self.lip, self.k = t, lip, k
        self.training = True  # False: batch norm on the running statistics

    def _module(self, name, mod):
        mod.weight.data.copy_(self.t[name + ".weight"])
        if mod.bias is not None:
            mod.bias.data.copy_(self.t[name + ".bias"])
        if self.lip == "SN" or (self.lip == "TOEPLITZ" and isinstance(mod, nn.Linear)):
            mod = nn.utils.spectral_norm(mod)  # dim 1 for ConvTranspose2d
            mod.weight_u.data.copy_(self.t[name + ".sn_u"])
            mod.weight_v.data.copy_(self.t[name + ".sn_v"])
            mod.train()
        return mod

    def linear(self, name, x):
        # A Toeplitz network's linear layers are plain SN, without k (the
        # thesis code's SNLinear). A layer without "<name>.bias" in the
        # file (the ResNet D's l5) is built with bias=False.
        w = self.t[name + ".weight"]
        bias = name + ".bias" in self.t
        return self._module(name, nn.Linear(w.shape[1], w.shape[0], bias=bias))(x)

    def _toeplitz_w(self, name, w, stride, pad):
        # power iteration on the conv T (weight w) over u's space, one step
        u = self.t[name + ".toep_u"].unsqueeze(0)
        y = normalize(F.conv2d(u, w, None, stride, pad))
        oh = y.shape[2]
        op = u.shape[2] - ((oh - 1) * stride - 2 * pad + w.shape[2])
        u = normalize(F.conv_transpose2d(y, w, None, stride, pad, op))
        sigma = F.conv2d(u, w, None, stride, pad).norm()
        return self.k * w / sigma

    def conv(self, name, x, stride=1, pad=1):
        # a conv without "<name>.bias" (before the CNN critic's batch
        # norm, DCGAN_D's bias=False) is built without a bias
        w = self.t[name + ".weight"]
        if self.lip == "TOEPLITZ":
            return F.conv2d(x, self._toeplitz_w(name, w, stride, pad), self.t.get(name + ".bias"),
                            stride, pad)
        bias = name + ".bias" in self.t
        m = self._module(name, nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], stride, pad, bias=bias))
        return m(x)

    def convt(self, name, x, stride=2, pad=1):
        w = self.t[name + ".weight"]
        if self.lip == "TOEPLITZ":  # normalized by its adjoint conv's norm
            return F.conv_transpose2d(x, self._toeplitz_w(name, w, stride, pad),
                                      self.t[name + ".bias"], stride, pad)
        m = self._module(name, nn.ConvTranspose2d(w.shape[0], w.shape[1], w.shape[2], stride, pad))
        return m(x)

    def bn(self, name, x):
        c = x.shape[1]
        m = nn.BatchNorm2d(c) if x.dim() == 4 else nn.BatchNorm1d(c)
        m.weight.data.copy_(self.t[name + ".weight"])
        m.bias.data.copy_(self.t[name + ".bias"])
        m.running_mean.copy_(self.t[name + ".running_mean"])
        m.running_var.copy_(self.t[name + ".running_var"])
        m.train(self.training)
        y = m(x)
        if self.training:  # keep the updated statistics for an eval pass
            self.t[name + ".running_mean"] = m.running_mean.clone()
            self.t[name + ".running_var"] = m.running_var.clone()
        return y


def resnet_d(n, x):
    # block1 (optimized): res = pool(c2(relu(c1(x)))), sc = c_sc(pool(x))
    r = F.avg_pool2d(n.conv("block1.c2", F.relu(n.conv("block1.c1", x))), 2)
    h = r + n.conv("block1.c_sc", F.avg_pool2d(x, 2), pad=0)
    # block2 (down): res = pool(c2(relu(c1(relu(h))))), sc = pool(c_sc(h))
    r = F.avg_pool2d(n.conv("block2.c2", F.relu(n.conv("block2.c1", F.relu(h)))), 2)
    h = r + F.avg_pool2d(n.conv("block2.c_sc", h, pad=0), 2)
    for b in ("block3", "block4"):
        h = h + n.conv(b + ".c2", F.relu(n.conv(b + ".c1", F.relu(h))))
    return n.linear("l5", F.relu(h).sum(dim=(2, 3)))


def resnet_g(n, z, ch, bottom):
    h = n.linear("l1", z).view(z.shape[0], ch, bottom, bottom)
    for b in ("block2", "block3", "block4"):
        r = n.conv(b + ".c1", F.interpolate(F.relu(n.bn(b + ".b1", h)), scale_factor=2))
        r = n.conv(b + ".c2", F.relu(n.bn(b + ".b2", r)))
        h = r + n.conv(b + ".c_sc", F.interpolate(h, scale_factor=2), pad=0)
    return torch.tanh(n.conv("c5", F.relu(n.bn("b5", h))))


def cnn_d(n, x, bn):
    # bn: DCGAN_D's placement, batch norm between every conv but the first
    # and its LeakyReLU (bn0_1 after c0_1, ...), none on l4
    h = x
    for i, (name, k) in enumerate((("c0_0", 3), ("c0_1", 4), ("c1_0", 3), ("c1_1", 4), ("c2_0", 3),
                                   ("c2_1", 4), ("c3_0", 3))):
        h = n.conv(name, h, stride=2 if k == 4 else 1)
        if bn and i > 0:
            h = n.bn("bn" + name[1:], h)
        h = F.leaky_relu(h, 0.1)
    return n.linear("l4", h.flatten(1))


def cnn_g(n, z, ch, bottom):
    h = n.linear("l0", z).view(z.shape[0], 8 * ch, bottom, bottom)
    h = F.relu(n.bn("bn0", h))
    for i in (1, 2, 3):
        h = F.relu(n.bn("bn%d" % i, n.convt("dc%d" % i, h)))
    return torch.tanh(n.conv("c4", h))


def mlp(n, x, depth, role, bn, img):
    h = x.flatten(1)
    for i in range(depth):
        h = n.linear("fc%d" % i, h)
        if bn:
            h = n.bn("bn%d" % i, h)
        h = F.relu(h)
    h = n.linear("fc%d" % depth, h)
    if role == "G" and img is not None:
        h = torch.tanh(h.view(x.shape[0], *img))
    return h


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("LG_MODELS_DUMP", ".")
    print("/* Generated by tools/model_reference.py from LG_MODELS_DUMP files: PyTorch's")
    print(" * outputs for the cases of test_models.c's test_reference: training mode, then")
    print(" * (cases without a Lipschitz method; else zeros, unchecked) eval mode. */")
    worst = 0.0
    for name, arch, role, c, size, ch, depth, data_dim, lip, k, bn in CASES:
        t, _ = read_safetensors(os.path.join(d, name + ".safetensors"))
        n = Net(t, lip, k)
        x = t["_input"]

        def run():
            with torch.no_grad():
                if arch == "RESNET":
                    return resnet_d(n, x) if role == "D" else resnet_g(n, x, ch, size // 8)
                if arch == "CNN":
                    return cnn_d(n, x, bn) if role == "D" else cnn_g(n, x, ch, size // 8)
                img = None if data_dim else (c, size, size)
                return mlp(n, x, depth, role, bn, img)

        outs = [run()]
        # eval after train: only without SN/Toeplitz, whose updated vectors
        # this script does not carry over
        if lip == "NONE":
            n.training = False
            outs.append(run())
        vals = []
        for y, key in zip(outs, ("_output", "_output_eval")):
            diff = (y - t[key]).abs().max().item()
            worst = max(worst, diff)
            print("%-14s %-5s max |pytorch - lipgan| = %.3g" % (name, key[8:] or "train", diff),
                  file=sys.stderr)
            flat = y.flatten()
            vals.append(", ".join("%.8gf" % flat[i * flat.numel() // 8].item() for i in range(8)))
        ev = len(outs) == 2
        print('{"%s", LG_ARCH_%s, LG_NET_%s, %d, %d, %d, %d, %d, LG_LIP_%s, %.1ff, %d, %d,\n {%s},\n {%s}},'
              % (name, arch, role, c, size, ch, depth, data_dim, lip, k, bn, ev, vals[0],
                 vals[1] if ev else "0"))
    print("worst difference %.3g" % worst, file=sys.stderr)


if __name__ == "__main__":
    main()
