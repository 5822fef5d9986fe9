#!/usr/bin/env python3
"""Prints PyTorch's parameter counts for the architectures of src/models,
built here layer by layer with torch.nn, so tests/test_models.c can compare
its formula-based counts with PyTorch's. Reference only; not needed to build.

    python3 tools/model_param_counts.py
"""
import torch.nn as nn


def count(m):
    return sum(p.numel() for p in m.parameters())


def resnet_d(c=3, ch=128):
    return nn.ModuleList([
        nn.Conv2d(c, ch, 3, 1, 1), nn.Conv2d(ch, ch, 3, 1, 1), nn.Conv2d(c, ch, 1),  # block1
        nn.Conv2d(ch, ch, 3, 1, 1), nn.Conv2d(ch, ch, 3, 1, 1), nn.Conv2d(ch, ch, 1),  # block2
        nn.Conv2d(ch, ch, 3, 1, 1), nn.Conv2d(ch, ch, 3, 1, 1),  # block3
        nn.Conv2d(ch, ch, 3, 1, 1), nn.Conv2d(ch, ch, 3, 1, 1),  # block4
        nn.Linear(ch, 1, bias=False)])  # l5: no bias, as snresnet_32.py / the thesis code


def resnet_g(c=3, ch=256, z=128, size=32, bn=True):
    b = size // 8
    mods = [nn.Linear(z, b * b * ch)]
    for _ in range(3):
        if bn:
            mods += [nn.BatchNorm2d(ch), nn.BatchNorm2d(ch)]
        mods += [nn.Conv2d(ch, ch, 3, 1, 1), nn.Conv2d(ch, ch, 3, 1, 1), nn.Conv2d(ch, ch, 1)]
    if bn:
        mods.append(nn.BatchNorm2d(ch))
    mods.append(nn.Conv2d(ch, c, 3, 1, 1))
    return nn.ModuleList(mods)


def cnn_d(c=3, ch=64, size=32, bn=False):
    # bn: DCGAN_D's batch norm (martinarjovsky/WassersteinGAN models/dcgan.py)
    # after every conv but the first, those convs bias=False; none on l4
    b = size // 8
    mods, cin = [], c
    for i, (m, k) in enumerate(((1, 3), (1, 4), (2, 3), (2, 4), (4, 3), (4, 4), (8, 3))):
        with_bn = bn and i > 0
        mods.append(nn.Conv2d(cin, m * ch, k, 2 if k == 4 else 1, 1, bias=not with_bn))
        if with_bn:
            mods.append(nn.BatchNorm2d(m * ch))
        mods.append(nn.LeakyReLU(0.1))
        cin = m * ch
    return nn.Sequential(*mods, nn.Flatten(), nn.Linear(b * b * 8 * ch, 1))


def cnn_g(c=3, ch=64, z=128, size=32):
    b = size // 8
    return nn.ModuleList([
        nn.Linear(z, b * b * 8 * ch), nn.BatchNorm2d(8 * ch),
        nn.ConvTranspose2d(8 * ch, 4 * ch, 4, 2, 1), nn.BatchNorm2d(4 * ch),
        nn.ConvTranspose2d(4 * ch, 2 * ch, 4, 2, 1), nn.BatchNorm2d(2 * ch),
        nn.ConvTranspose2d(2 * ch, ch, 4, 2, 1), nn.BatchNorm2d(ch),
        nn.Conv2d(ch, c, 3, 1, 1)])


def mlp(din, dout, width, depth, bn=False):
    mods, d = [], din
    for _ in range(depth):
        mods += [nn.Linear(d, width)] + ([nn.BatchNorm1d(width)] if bn else []) + [nn.ReLU()]
        d = width
    mods.append(nn.Linear(d, dout))
    return nn.Sequential(*mods)


if __name__ == "__main__":
    rows = [
        ("resnet D c3 ch128 32", resnet_d(3, 128)),
        ("resnet G c3 ch256 32", resnet_g(3, 256, 128, 32)),
        ("resnet D c1 ch64 32", resnet_d(1, 64)),
        ("resnet G c1 ch64 48", resnet_g(1, 64, 128, 48)),
        ("cnn D c3 ch64 32", cnn_d(3, 64, 32)),
        ("cnn G c3 ch64 32", cnn_g(3, 64, 128, 32)),
        ("cnn D c3 ch64 48", cnn_d(3, 64, 48)),
        ("cnn D bn c3 ch64 32", cnn_d(3, 64, 32, bn=True)),
        ("cnn D bn c1 ch16 48", cnn_d(1, 16, 48, bn=True)),
        ("mlp G 4x512 bn c1 32", mlp(128, 1024, 512, 4, bn=True)),
        ("mlp D 4x512 c1 32", mlp(1024, 1, 512, 4)),
        ("mlp G toy 3x128 z2", mlp(2, 2, 128, 3)),
        ("mlp D toy 3x128", mlp(2, 1, 128, 3)),
    ]
    for name, m in rows:
        print(f"{name:28s} {count(m)}")
