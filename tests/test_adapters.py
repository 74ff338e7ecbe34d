"""DoRA factored norm and Effort SVD-residual adapter against dense references."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from graphrec.adapters import DoRALinear, SVDResidualLinear, apply_svd_residual, dora_row_norm
from graphrec.core import principal_angles


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_factored_row_norm_matches_dense(dtype, tol):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(512, 1024, generator=g, dtype=dtype)
    a = torch.randn(64, 1024, generator=g, dtype=dtype) / 32
    b = torch.randn(512, 64, generator=g, dtype=dtype) / 8
    dense = torch.linalg.vector_norm((w + 0.5 * b @ a).double(), dim=1)
    got = dora_row_norm(w, a, b, 0.5)
    assert float(((got.double() - dense) / dense).abs().max()) < tol
    with pytest.raises(ValueError, match="chain"):
        dora_row_norm(w, a, b[:, :3], 0.5)


def _trained_dora(norm, seed=0):
    torch.manual_seed(seed)
    base = nn.Linear(12, 7).double()
    layer = DoRALinear(base, 3, alpha=6.0, norm=norm, random_state=seed)
    with torch.no_grad():  # move away from the init, where B = 0
        layer.lora_B.normal_()
        layer.magnitude.mul_(1.3)
    return base, layer


def test_dora_starts_at_base_and_matches_dense_reference_with_gradients():
    torch.manual_seed(0)
    base = nn.Linear(12, 7).double()
    x = torch.randn(5, 12, dtype=torch.float64)
    torch.testing.assert_close(DoRALinear(base, 3, random_state=0)(x), base(x))
    _, layer = _trained_dora("factored")
    out = layer(x)
    # dense reference: diag(m / n) (W + s B A) x + b, with the norm detached
    a, b_, m = (p.detach().clone().requires_grad_() for p in (layer.lora_A, layer.lora_B, layer.magnitude))
    full = layer.weight + 2.0 * b_ @ a
    n = torch.linalg.vector_norm(full, dim=1).detach()
    ref = x @ ((m / n)[:, None] * full).T + layer.bias
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(layer.merged_weight(), ((m / n)[:, None] * full).detach())
    out.square().sum().backward()
    ref.square().sum().backward()
    for p, q in ((layer.lora_A, a), (layer.lora_B, b_), (layer.magnitude, m)):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-12)
    dense = _trained_dora("dense")[1]
    torch.testing.assert_close(dense(x), out, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("norm", ["factored", "dense"])
def test_dora_on_a_weight_with_zero_rows_starts_at_base_without_nan(norm):
    # a pruned or zero-initialised output row has ||W_i|| = 0 = m_i: the 0 / 0 used to give NaN outputs
    torch.manual_seed(0)
    base = nn.Linear(6, 4).double()
    with torch.no_grad():
        base.weight[1] = 0.0
    x = torch.randn(5, 6, dtype=torch.float64)
    layer = DoRALinear(base, 2, norm=norm, random_state=0)
    out = layer(x)
    torch.testing.assert_close(out, base(x))
    torch.testing.assert_close(layer.merged_weight(), base.weight.detach())
    out.square().sum().backward()
    assert all(bool(torch.isfinite(p.grad).all()) for p in layer.parameters())
    with torch.no_grad():  # once B moves, the other rows follow the DoRA formula as before
        layer.lora_B.normal_()
    assert bool(torch.isfinite(layer(x)).all())
    torch.testing.assert_close(layer.to_linear()(x), layer(x))


class _MaxNumel(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        flat = list(args) + list((kwargs or {}).values())
        inputs = {a.untyped_storage().data_ptr() for a in flat if isinstance(a, torch.Tensor)}
        for t in out if isinstance(out, (tuple, list)) else (out,):
            # count new allocations only: views such as weight.t() share an input's storage
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in inputs:
                self.largest = max(self.largest, t.numel())
        return out


def test_factored_forward_never_forms_a_dense_update():
    d_out, d_in, r, batch = 96, 128, 4, 8
    x = torch.randn(batch, d_in)
    sizes = {}
    for norm in ("factored", "dense"):
        layer = DoRALinear(nn.Linear(d_in, d_out), r, norm=norm, random_state=0)
        with _MaxNumel() as mode:
            layer(x)
        sizes[norm] = mode.largest
    assert sizes["factored"] <= max(d_out * r, r * r, batch * d_out)
    assert sizes["dense"] >= d_out * d_in  # the probe can fail


def test_dora_bad_input():
    with pytest.raises(TypeError, match="nn.Linear"):
        DoRALinear(nn.Conv1d(2, 2, 1), 1)
    with pytest.raises(ValueError, match="rank"):
        DoRALinear(nn.Linear(4, 3), 4)
    with pytest.raises(ValueError, match="norm"):
        DoRALinear(nn.Linear(4, 3), 1, norm="fast")


def test_svd_residual_init_parameter_count_and_errors():
    torch.manual_seed(0)
    base = nn.Linear(10, 6)
    layer = SVDResidualLinear(base, 2)
    x = torch.randn(4, 10)
    torch.testing.assert_close(layer(x), base(x), atol=1e-5, rtol=1e-5)
    assert sum(p.numel() for p in layer.parameters() if p.requires_grad) == 2 * (10 + 6 + 1)
    # the frozen part is the best rank-4 approximation (Eckart-Young)
    u, s, vt = np.linalg.svd(base.weight.detach().double().numpy())
    np.testing.assert_allclose(layer.weight_main.numpy(), (u[:, :4] * s[:4]) @ vt[:4], atol=1e-5)
    with pytest.raises(ValueError, match="residual_rank"):
        SVDResidualLinear(base, 7)
    with pytest.raises(TypeError, match="nn.Linear"):
        SVDResidualLinear(nn.ReLU(), 1)


def _train_residual(penalty):
    torch.manual_seed(0)
    base = nn.Linear(16, 12).double()
    w0 = base.weight.detach().clone()
    layer = SVDResidualLinear(base, 3)
    opt = torch.optim.Adam([p for p in layer.parameters() if p.requires_grad], lr=3e-3)
    x = torch.randn(64, 16, dtype=torch.float64)
    y = torch.randn(64, 12, dtype=torch.float64)
    for _ in range(200):
        opt.zero_grad()
        loss = ((layer(x) - y) ** 2).mean() + penalty * layer.orthogonality_loss()
        loss.backward()
        opt.step()
    w = layer.weight.detach()
    angle = float(principal_angles(torch.linalg.svd(w0)[0][:, :9], torch.linalg.svd(w)[0][:, :9]).max())
    return layer, w, w0, angle


def test_orthogonality_penalty_keeps_principal_subspace():
    layer, w, w0, angle = _train_residual(10.0)
    assert float(layer.orthogonality_loss().detach()) < 1e-2
    assert angle < 1e-3
    assert not torch.allclose(w, w0)  # it did train
    assert _train_residual(0.0)[3] > 0.1  # without the penalty the principal subspace drifts


def test_project_residual_keeps_principal_triplets_exact():
    torch.manual_seed(0)
    base = nn.Linear(16, 12).double()
    layer = SVDResidualLinear(base, 3)
    with torch.no_grad():  # a residual that leaks into the principal subspaces
        layer.u_residual.add_(0.3 * torch.randn_like(layer.u_residual))
        layer.v_residual.add_(0.3 * torch.randn_like(layer.v_residual))
    u, s, vt = np.linalg.svd(base.weight.detach().numpy())
    u, s, v = torch.from_numpy(u[:, :9]), torch.from_numpy(s[:9]), torch.from_numpy(vt[:9].T)
    assert not torch.allclose(layer.weight.detach() @ v, u * s, atol=1e-3)
    layer.project_residual_()
    w = layer.weight.detach()
    torch.testing.assert_close(w @ v, u * s, rtol=0, atol=1e-12)
    torch.testing.assert_close(w.T @ u, v * s, rtol=0, atol=1e-12)


def test_apply_svd_residual_freezes_everything_else():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    names = apply_svd_residual(model, 1, target=lambda name, mod: mod.out_features == 8)
    assert names == ["0"] and isinstance(model[0], SVDResidualLinear)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["0.u_residual", "0.s_residual", "0.v_residual"]
    with pytest.raises(ValueError, match="no nn.Linear"):
        apply_svd_residual(nn.Sequential(nn.ReLU()), 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_adapters_on_cuda_match_cpu():
    torch.manual_seed(0)
    base = nn.Linear(12, 7).double()
    x = torch.randn(5, 12, dtype=torch.float64)
    for make in (lambda m: DoRALinear(m, 3, random_state=0), lambda m: SVDResidualLinear(m, 2)):
        cpu = make(base)
        gpu = make(base).cuda()
        torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x))
