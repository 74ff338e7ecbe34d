"""The core primitives run on CUDA tensors and agree with their CPU results (skipped without a GPU)."""
from __future__ import annotations

import pytest
import torch

import graphrec.core as gc

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_primitives_on_cuda_match_cpu():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=g, dtype=torch.float64)
    y = torch.randn(40, 5, generator=g, dtype=torch.float64)
    xc, yc = x.cuda(), y.cuda()
    pairs = [
        (gc.principal_angles(x, y), gc.principal_angles(xc, yc)),
        (gc.linear_cka(x, y), gc.linear_cka(xc, yc)),
        (gc.cca(x, y, 2)[0], gc.cca(xc, yc, 2)[0]),
        (gc.sinkhorn(torch.cdist(x[:8], x[8:14])), gc.sinkhorn(torch.cdist(xc[:8], xc[8:14]))),
        (gc.coding_rate(x), gc.coding_rate(xc)),
        (gc.poincare_distance(gc.expmap0(x), gc.expmap0(y[:, :1].expand(40, 6))),
         gc.poincare_distance(gc.expmap0(xc), gc.expmap0(yc[:, :1].expand(40, 6)))),
        (gc.householder_product(x[:, :3]), gc.householder_product(xc[:, :3])),
        (gc.leverage_scores(x), gc.leverage_scores(xc)),
        (gc.spectral_norm(x, 50, random_state=0), gc.spectral_norm(xc, 50, random_state=0)),
    ]
    for cpu, gpu in pairs:
        assert gpu.device.type == "cuda"
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-6, atol=1e-8)
    fd = gc.FrequentDirections(4, 6, device="cuda").update(xc)
    assert fd.sketch.device.type == "cuda"
    idx, w = gc.sensitivity_sample(gc.leverage_scores(xc), 10, random_state=0)
    assert w.device.type == "cuda"
