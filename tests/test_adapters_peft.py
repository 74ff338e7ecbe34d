"""The shared adapter interface (wrap / merge / unmerge) for every adapter, FLoRA, SVFit and the
Householder projector against closed forms and planted targets, and a digits transfer task
(pretrain an MLP on digits 0-4, adapt to 5-9) where each adapter must beat the frozen model."""
from __future__ import annotations

import copy
import functools

import numpy as np
import pytest
import torch
from torch import nn

from graphrec.adapters.base import AdapterLayer, merge, unmerge, wrap
from graphrec.adapters.dora import DoRALinear
from graphrec.adapters.flora import FLoRAConv2d, FLoRALinear, apply_flora
from graphrec.adapters.householder import HouseholderProjector, householder_vectors
from graphrec.adapters.svd_residual import SVDResidualLinear
from graphrec.adapters.svfit import SVFitLinear
from graphrec.core import numerical_rank, orthogonality_error, principal_angles, unfold

F64 = torch.float64

# name -> (factory on an nn.Linear, trainable parameter names of one adapted layer)
ADAPTERS = {
    "dora": (lambda m: DoRALinear(m, 2, random_state=0), {"lora_A", "lora_B", "magnitude"}),
    "effort": (lambda m: SVDResidualLinear(m, 2), {"u_residual", "s_residual", "v_residual"}),
    "flora": (lambda m: FLoRALinear(m, (2, 3), random_state=0), {"core", "factors.0", "factors.1"}),
    "svfit": (lambda m: SVFitLinear(m, 2), {"singular_values"}),
    "svfit_correction": (lambda m: SVFitLinear(m, 2, correction=True), {"singular_values", "correction"}),
    "householder": (lambda m: HouseholderProjector(m, 2), {"householder_u", "householder_v"}),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3)).double()


def _lbfgs(params, loss_fn, iters: int) -> None:
    opt = torch.optim.LBFGS(params, lr=1, max_iter=iters, line_search_fn="strong_wolfe", tolerance_grad=1e-14,
                            tolerance_change=1e-16)

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    opt.step(closure)


# ----------------------------------------------------------------------------- shared interface
@pytest.mark.parametrize("name", list(ADAPTERS))
def test_wrap_merge_unmerge_roundtrip(name):
    factory, params = ADAPTERS[name]
    torch.manual_seed(0)
    model = _mlp()
    x = torch.randn(16, 10, dtype=F64)
    names = wrap(model, factory)
    assert names == ["0", "2", "4"]
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{layer}.{p}" for layer in names for p in params}
    with torch.no_grad():  # move away from the init so that the merge has something to fold
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.3 * torch.randn_like(p))
    out = model(x).detach()
    adapters = merge(model)
    assert set(adapters) == set(names)
    assert all(type(model.get_submodule(n)) is nn.Linear for n in names)
    torch.testing.assert_close(model(x).detach(), out, rtol=0, atol=1e-10)
    unmerge(model, adapters)
    assert all(model.get_submodule(n) is adapters[n] for n in names)
    torch.testing.assert_close(model(x).detach(), out, rtol=0, atol=0)
    with pytest.raises(ValueError, match="not the merged nn.Linear"):
        unmerge(model, adapters)


def test_wrap_and_merge_bad_input():
    with pytest.raises(ValueError, match="no nn.Linear"):
        wrap(nn.Sequential(nn.ReLU()), ADAPTERS["svfit"][0])
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        wrap(_mlp(), ADAPTERS["svfit"][0], layer_type=nn.Conv2d)
    with pytest.raises(TypeError, match="AdapterLayer"):
        wrap(_mlp(), lambda m: nn.Identity())
    with pytest.raises(ValueError, match="no AdapterLayer"):
        merge(_mlp())


def test_wrap_and_merge_refuse_the_model_itself():
    # wrap replaces submodules in place; a bare layer used to get an unnamed dangling child while
    # its own forward stayed the frozen layer (training the adapter changed nothing)
    layer = nn.Linear(4, 3)
    with pytest.raises(ValueError, match="model itself"):
        wrap(layer, ADAPTERS["svfit"][0])
    assert all(p.requires_grad for p in layer.parameters()) and not list(layer.children())
    adapter = ADAPTERS["svfit"][0](nn.Linear(4, 3))
    with pytest.raises(ValueError, match="model itself"):
        merge(adapter)
    assert not list(adapter.children())


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_bad_module_and_rank(name):
    factory = ADAPTERS[name][0]
    with pytest.raises(TypeError, match="nn.Linear"):
        factory(nn.Conv2d(2, 2, 1))  # a 4-d weight where a 2-d one is required
    small = nn.Linear(1, 3)  # rank 2 exceeds min(d_out, d_in) = 1
    with pytest.raises(ValueError, match="rank"):
        factory(small)


# ----------------------------------------------------------------------------- FLoRA
def test_flora_starts_at_base_and_counts_parameters():
    torch.manual_seed(0)
    lin = nn.Linear(12, 7).double()
    layer = FLoRALinear(lin, (3, 4), random_state=0)
    x = torch.randn(5, 12, dtype=F64)
    assert torch.equal(layer(x), lin(x))
    assert sum(p.numel() for p in layer.parameters()) == 3 * 4 + 7 * 3 + 12 * 4
    conv = nn.Conv2d(6, 8, 3, padding=1, stride=2).double()
    layer = FLoRAConv2d(conv, (4, 3, 2, 2), random_state=0)
    xi = torch.randn(2, 6, 9, 9, dtype=F64)
    assert torch.equal(layer(xi), conv(xi))
    assert sum(p.numel() for p in layer.parameters()) == 4 * 3 * 2 * 2 + 8 * 4 + 6 * 3 + 3 * 2 + 3 * 2


def test_flora_update_is_the_tucker_tensor_with_bounded_mode_ranks():
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 8, 3, groups=2).double()  # weight (8, 3, 3, 3)
    layer = FLoRAConv2d(conv, (4, 2, 2, 1), scale=0.5, random_state=0)
    with torch.no_grad():
        layer.core.normal_()
    g, (u1, u2, u3, u4) = layer.core, layer.factors
    ref = 0.5 * torch.einsum("abcd,ia,jb,kc,ld->ijkl", g, u1, u2, u3, u4)  # the Tucker product written out
    torch.testing.assert_close(layer.delta(), ref, rtol=1e-12, atol=1e-12)
    for mode, r in enumerate(layer.ranks):
        assert numerical_rank(unfold(layer.delta().detach(), mode)) <= r
    lin = FLoRALinear(nn.Linear(12, 7).double(), (3, 2), scale=2.0, random_state=0)
    with torch.no_grad():
        lin.core.normal_()
    torch.testing.assert_close(lin.delta(), 2.0 * lin.factors[0] @ lin.core @ lin.factors[1].T)
    x = torch.randn(4, 12, dtype=F64)
    torch.testing.assert_close(lin(x), x @ (lin.weight + lin.delta()).T + lin.bias)


def planted_conv_errors() -> tuple[float, float, int]:
    """Fit FLoRA (ranks (4, 4, 2, 2)) to a planted Tucker update of a (32, 32, 3, 3) kernel; return its relative
    error, the best relative error of LoRA rank 1 on the flattened (32, 288) kernel (Eckart-Young), and
    FLoRA's parameter count (LoRA rank 1 has 32 + 288 = 320)."""
    g = torch.Generator().manual_seed(0)
    shape, ranks = (32, 32, 3, 3), (4, 4, 2, 2)
    core = torch.randn(ranks, generator=g, dtype=F64)
    factors = [torch.linalg.qr(torch.randn(d, r, generator=g, dtype=F64))[0] for d, r in zip(shape, ranks)]
    target = torch.einsum("abcd,ia,jb,kc,ld->ijkl", core, *factors)
    layer = FLoRAConv2d(nn.Conv2d(32, 32, 3).double(), ranks, random_state=0)
    _lbfgs(list(layer.parameters()), lambda: ((layer.delta() - target) ** 2).sum(), 200)
    flora_err = float(torch.linalg.vector_norm(layer.delta().detach() - target) / torch.linalg.vector_norm(target))
    s = torch.linalg.svdvals(target.reshape(32, -1))
    lora_best = float(torch.linalg.vector_norm(s[1:]) / torch.linalg.vector_norm(s))
    return flora_err, lora_best, sum(p.numel() for p in layer.parameters())


def test_flora_recovers_planted_tucker_update_that_lora_cannot_at_equal_budget():
    flora_err, lora_best, n_flora = planted_conv_errors()
    assert 1 * (32 + 288) <= n_flora < 2 * (32 + 288)  # the budget of LoRA rank 1, not rank 2
    assert flora_err < 1e-3
    assert lora_best > 0.3


def test_apply_flora_wraps_and_merges_a_cnn():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, groups=2), nn.ReLU(), nn.Flatten(),
        nn.Linear(6 * 3 * 3, 5),
    ).double()
    x = torch.randn(3, 1, 8, 8, dtype=F64)
    names = apply_flora(model, (2, 3), conv_ranks=(2, 1, 2, 2), random_state=0)
    assert names == ["0", "2", "5"] and isinstance(model[0], FLoRAConv2d) and isinstance(model[5], FLoRALinear)
    assert not any(p.requires_grad for n, p in model.named_parameters() if not ("core" in n or "factors" in n))
    with torch.no_grad():
        for layer in (model[0], model[2], model[5]):
            layer.core.normal_()
    out = model(x).detach()
    adapters = merge(model)
    assert type(model[0]) is nn.Conv2d and model[2].groups == 2 and model[2].stride == (2, 2)
    torch.testing.assert_close(model(x).detach(), out, rtol=0, atol=1e-10)
    unmerge(model, adapters)
    assert model[2] is adapters["2"]
    assert apply_flora(nn.Sequential(nn.Conv2d(1, 1, 1), nn.Linear(1, 1)), 1) == ["1"]  # convs only with conv_ranks


def test_flora_bad_input():
    with pytest.raises(ValueError, match=r"ranks\[0\]"):
        FLoRALinear(nn.Linear(4, 3), (4, 2))
    with pytest.raises(ValueError, match="one rank per weight mode"):
        FLoRAConv2d(nn.Conv2d(4, 4, 3), (2, 2))
    with pytest.raises(ValueError, match=r"ranks\[2\]"):
        FLoRAConv2d(nn.Conv2d(4, 4, 3), 4)  # kernel height 3 < 4
    with pytest.raises(TypeError, match="nn.Conv2d"):
        FLoRAConv2d(nn.Linear(4, 4), 1)
    with pytest.raises(ValueError, match="padding_mode"):
        FLoRAConv2d(nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), 1)
    with pytest.raises(ValueError, match="scale"):
        FLoRALinear(nn.Linear(4, 3), 1, scale=0.0)
    with pytest.raises(TypeError, match="to_plain"):
        FLoRAConv2d(nn.Conv2d(4, 4, 3), 1).to_linear()


# ----------------------------------------------------------------------------- SVFit
def test_svfit_init_rank_choice_and_parameter_count():
    torch.manual_seed(0)
    base = nn.Linear(40, 30).double()
    with torch.no_grad():  # a decaying spectrum so that the 99% energy rank is well inside (1, 30)
        u, _, vt = torch.linalg.svd(base.weight, full_matrices=False)
        base.weight.copy_((u * 0.8 ** torch.arange(30, dtype=F64)) @ vt)
    s = np.linalg.svd(base.weight.detach().numpy(), compute_uv=False)
    expected = int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), 0.99) + 1)  # smallest k with >= 99% energy
    layer = SVFitLinear(base)
    assert layer.rank == expected and 1 < expected < 30
    assert sum(p.numel() for p in layer.parameters() if p.requires_grad) == expected
    assert sum(p.numel() for p in SVFitLinear(base, 5, correction=True).parameters()) == 5 + 25
    x = torch.randn(6, 40, dtype=F64)
    assert torch.equal(layer(x), base(x))
    with pytest.raises(ValueError, match="energy"):
        SVFitLinear(base, energy=1.5)


def test_svfit_recovers_planted_singular_values():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    base = nn.Linear(64, 64).double()
    layer = SVFitLinear(base, 8)
    sigma = layer.initial_singular_values * (1 + 0.5 * torch.rand(8, generator=g, dtype=F64))
    # W* = U_r diag(σ*) V_r^T + W_e, from numpy's SVD (not the layer's buffers)
    u, s, vt = np.linalg.svd(base.weight.detach().numpy())
    w_star = torch.from_numpy((u[:, :8] * sigma.numpy()) @ vt[:8] + (u[:, 8:] * s[8:]) @ vt[8:])
    x = torch.randn(500, 64, generator=g, dtype=F64)
    y = x @ w_star.T + base.bias.detach()
    opt = torch.optim.Adam(layer.parameters(), lr=0.1)
    for _ in range(150):
        opt.zero_grad()
        ((layer(x) - y) ** 2).mean().backward()
        opt.step()
    assert float((layer.singular_values.detach() - sigma).abs().max()) < 1e-3
    torch.testing.assert_close(layer.merged_weight().detach(), w_star, rtol=0, atol=1e-3)


# ----------------------------------------------------------------------------- Householder projector
def test_householder_vectors_reproduce_the_basis():
    g = torch.Generator().manual_seed(0)
    for n, k in ((5, 5), (9, 3), (4, 1)):
        basis = torch.linalg.qr(torch.randn(n, k, generator=g, dtype=F64))[0]
        h, signs = householder_vectors(basis)
        assert set(signs.tolist()) <= {-1.0, 1.0}
        q = torch.eye(n, dtype=F64)[:, :k]
        for i in reversed(range(k)):  # slow reference: apply the reflections one by one
            v = h[:, i : i + 1]
            q = q - 2 * v @ (v.T @ q) / (v.T @ v)
        torch.testing.assert_close(q * signs, basis, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="tall"):
        householder_vectors(torch.randn(2, 3, dtype=F64))
    with pytest.raises(ValueError, match="tall"):
        householder_vectors(torch.randn(2, 3, 3, dtype=F64))


def test_householder_projector_init_from_pretrained_svd():
    torch.manual_seed(0)
    base = nn.Linear(16, 12).double()
    u, s, vt = np.linalg.svd(base.weight.detach().numpy())
    pre = HouseholderProjector(base, 4, singular_values="pretrained")
    np.testing.assert_allclose(pre.merged_weight().detach().numpy(), (u[:, :4] * s[:4]) @ vt[:4], atol=1e-12)
    unit = HouseholderProjector(base, 4)
    sv = torch.linalg.svdvals(unit.merged_weight().detach())
    torch.testing.assert_close(sv, torch.tensor([1.0] * 4 + [0.0] * 8, dtype=F64), rtol=0, atol=1e-12)
    cos = torch.cos(principal_angles(unit.directions().detach().T, torch.from_numpy(vt[:4].T)))
    assert float(cos.min()) > 1 - 1e-6
    with pytest.raises(ValueError, match="singular_values"):
        HouseholderProjector(base, 4, singular_values="free")


def test_householder_projector_stays_orthonormal_after_many_steps():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    layer = HouseholderProjector(nn.Linear(16, 24), 6)  # float32
    x = torch.randn(256, 16, generator=g)
    y = torch.randn(256, 24, generator=g)
    opt = torch.optim.Adam(layer.parameters(), lr=5e-2)
    start = layer.merged_weight().detach().clone()
    for _ in range(500):
        opt.zero_grad()
        ((layer(x) - y) ** 2).mean().backward()
        opt.step()
    assert float((layer.merged_weight().detach() - start).abs().max()) > 0.1  # it did move
    assert float(orthogonality_error(layer.left_basis().detach())) < 1e-5
    assert float(orthogonality_error(layer.directions().detach())) < 1e-5
    sv = torch.linalg.svdvals(layer.merged_weight().detach())
    assert float((sv[:6] - 1).abs().max()) < 1e-5 and float(sv[6:].max()) < 1e-5


def test_householder_projector_recovers_a_partial_isometry():
    g = torch.Generator().manual_seed(1)
    p = torch.linalg.qr(torch.randn(16, 4, generator=g, dtype=F64))[0]
    q = torch.linalg.qr(torch.randn(16, 4, generator=g, dtype=F64))[0]
    target = p @ q.T
    torch.manual_seed(0)
    layer = HouseholderProjector(nn.Linear(16, 16).double(), 4)  # starts from a random layer's SVD
    _lbfgs(list(layer.parameters()), lambda: ((layer.merged_weight() - target) ** 2).sum(), 200)
    assert float(torch.linalg.matrix_norm(layer.merged_weight().detach() - target)) < 1e-4


# ----------------------------------------------------------------------------- digits transfer task
def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, extra=None) -> nn.Module:
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if extra is not None:
            extra(model)
    return model


DIGITS_ADAPTERS = {
    "dora": lambda m: DoRALinear(m, 4, random_state=0),
    "effort": lambda m: SVDResidualLinear(m, 4),
    "flora": lambda m: FLoRALinear(m, 1, random_state=0),
    "svfit": lambda m: SVFitLinear(m),
    "householder": lambda m: HouseholderProjector(m, 8),
}


@functools.lru_cache(maxsize=1)
def run_digits(steps: int = 300) -> dict:
    """Pretrain an MLP 64-32-16-5 on digits 0-4 (float64), then on digits 5-9 train a fresh head with
    (a) the frozen body ("frozen"), (b) everything ("full"), (c) each adapter on the two hidden layers.
    Returns ``{name: (test accuracy, trainable parameters outside the head, adapted model)}``."""
    from sklearn.datasets import load_digits

    xs, ys = load_digits(return_X_y=True)
    x, y = torch.tensor(xs / 16.0, dtype=F64), torch.tensor(ys)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    tr, te = perm[:1200], perm[1200:]

    def split(idx, lo):
        keep = (y[idx] >= lo) & (y[idx] < lo + 5)
        return x[idx][keep], y[idx][keep] - lo

    (xa, ya), (xb, yb), (xt, yt) = split(tr, 0), split(tr, 5), split(te, 5)
    torch.manual_seed(0)
    pre = _train(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 5)).double(),
                 xa, ya, steps)
    out = {}
    for name, factory in {"frozen": None, "full": None, **DIGITS_ADAPTERS}.items():
        model = copy.deepcopy(pre)
        if name in DIGITS_ADAPTERS:
            wrap(model, factory, lambda n, m: n in ("0", "2"))
        elif name == "frozen":
            model.requires_grad_(False)
        torch.manual_seed(1)
        model[4] = nn.Linear(16, 5).double()
        extra = (lambda m: (m[0].project_residual_(), m[2].project_residual_())) if name == "effort" else None
        _train(model, xb, yb, steps, extra)
        with torch.no_grad():
            acc = float((model(xt).argmax(1) == yt).double().mean())
        n_body = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and not n.startswith("4."))
        out[name] = (acc, n_body, model, pre)
    return out


@pytest.mark.parametrize("name", list(DIGITS_ADAPTERS))
def test_each_adapter_beats_the_frozen_model_on_digits(name):
    res = run_digits()
    acc, _, model, _ = res[name]
    assert acc >= res["frozen"][0] + 0.1
    model = copy.deepcopy(model)
    x = torch.rand(7, 64, dtype=F64)
    out = model(x).detach()
    merge(model)
    assert not any(isinstance(m, AdapterLayer) for m in model.modules())
    torch.testing.assert_close(model(x).detach(), out, rtol=0, atol=1e-10)


def test_effort_keeps_the_principal_subspace_on_digits():
    res = run_digits()
    model, pre = res["effort"][2], res["effort"][3]
    for i in ("0", "2"):
        layer = model.get_submodule(i)
        w0, w = pre.get_submodule(i).weight.detach(), layer.weight.detach()
        r = min(w0.shape) - 4
        u0, s0, v0t = torch.linalg.svd(w0)
        assert float((w - w0).abs().max()) > 1e-2  # it trained
        # the pretrained top-r singular triplets are still singular triplets of the trained weight
        torch.testing.assert_close(w @ v0t[:r].T, u0[:, :r] * s0[:r], rtol=0, atol=1e-10)
        assert float(principal_angles(w @ v0t[:r].T, u0[:, :r]).max()) < 1e-6
        assert float(principal_angles(w.T @ u0[:, :r], v0t[:r].T).max()) < 1e-6


def test_svfit_few_parameters_reach_most_of_the_full_finetuning_gain():
    res = run_digits()
    frozen, full, svfit = res["frozen"][0], res["full"][0], res["svfit"]
    lora8_params = 8 * (64 + 32) + 8 * (32 + 16)
    assert svfit[1] <= lora8_params / 8
    assert svfit[0] - frozen >= 0.5 * (full - frozen)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_adapters_on_cuda_match_cpu():
    torch.manual_seed(0)
    x = torch.randn(5, 10, dtype=F64)
    for factory, _ in ADAPTERS.values():
        base = nn.Linear(10, 8).double()
        cpu, gpu = factory(base), factory(base).cuda()
        torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x))
        torch.testing.assert_close(gpu.to_plain()(x.cuda()).cpu(), cpu(x))
    conv = nn.Conv2d(3, 4, 3).double()
    cpu, gpu = FLoRAConv2d(conv, 2, random_state=0), FLoRAConv2d(conv, 2, random_state=0).cuda()
    xi = torch.randn(2, 3, 6, 6, dtype=F64)
    torch.testing.assert_close(gpu(xi.cuda()).cpu(), cpu(xi))
