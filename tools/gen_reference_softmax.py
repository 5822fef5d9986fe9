#!/usr/bin/env python3
"""Writes tests/data/ref/softmax.safetensors, PyTorch's values for
lipgan's log_softmax, softmax and cross-entropy ops (src/ops/softmax.c),
compared by tests/test_softmax.c.

    python3 tools/gen_reference_softmax.py      # CPU, float32, < 1 s

Tensors (float32 unless noted; fixed seed 11, so reruns rewrite the same
values up to PyTorch's CPU kernels):
  x        (6,5) logits: uniform in [-3, 3), row 4 shifted by +40 and row 5
           spread over [-60, 60] (stability: exp() of them overflows float)
  dy       (6,5) a random upstream gradient
  ls       log_softmax(x, dim=1);  dls = d sum(dy * ls) / dx
  sm       softmax(x, dim=1);      dsm = d sum(dy * sm) / dx
  labels   (6) I64 class indices
  ce       (1) F.cross_entropy(x, labels) (mean);  dce = d ce / dx
  q        (6,5) a random weighting;
  d2ce     d/dx of sum(q * dce)  (a second derivative, create_graph=True)
  d2ls     d/dx of sum(q * dls)
"""
import os
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
from st_write import write_safetensors  # noqa: E402
import torch.nn.functional as F  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "ref")


def main():
    torch.manual_seed(11)
    x0 = torch.rand(6, 5) * 6 - 3
    x0[4] += 40
    x0[5] = torch.linspace(-60, 60, 5)
    dy = torch.rand(6, 5) * 2 - 1
    q = torch.rand(6, 5) * 2 - 1
    labels = torch.tensor([0, 4, 2, 2, 1, 3], dtype=torch.int64)

    x = x0.clone().requires_grad_(True)
    ls = F.log_softmax(x, dim=1)
    (dls,) = torch.autograd.grad((dy * ls).sum(), x, create_graph=True)
    (d2ls,) = torch.autograd.grad((q * dls).sum(), x)

    x = x0.clone().requires_grad_(True)
    sm = F.softmax(x, dim=1)
    (dsm,) = torch.autograd.grad((dy * sm).sum(), x)

    x = x0.clone().requires_grad_(True)
    ce = F.cross_entropy(x, labels)
    (dce,) = torch.autograd.grad(ce, x, create_graph=True)
    (d2ce,) = torch.autograd.grad((q * dce).sum(), x)

    os.makedirs(OUT, exist_ok=True)
    write_safetensors(os.path.join(OUT, "softmax.safetensors"), {
        "x": x0, "dy": dy, "ls": ls, "dls": dls, "sm": sm, "dsm": dsm, "labels": labels,
        "ce": ce.reshape(1), "dce": dce, "q": q, "d2ce": d2ce, "d2ls": d2ls,
    })
    print("wrote", os.path.join(OUT, "softmax.safetensors"))


if __name__ == "__main__":
    main()
