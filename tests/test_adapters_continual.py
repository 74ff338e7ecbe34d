"""CoSO, λ-orthogonal compatibility maps and spectral-sphere hyper-connections: planted truths,
closed-form references, invariants after many optimiser steps, the papers' qualitative claims at
small scale, and bad input."""
from __future__ import annotations

import math

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from graphrec.adapters.base import merge, unmerge, wrap
from graphrec.adapters.coso import CoSO
from graphrec.adapters.hyper_connections import HyperConnectedStack, HyperConnection
from graphrec.adapters.lambda_orth import LambdaOrthogonalLinear
from graphrec.core import orthogonality_error, principal_angles, procrustes

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ------------------------------------------------------------------ CoSO
def _regression_tasks(n_tasks=3, d_in=30, d_out=6, k=5, n=200, seed=0):
    """Task t: inputs in a random k-dim subspace S_t of R^d_in, targets y = W_t x (W_t random)."""
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for _ in range(n_tasks):
        basis, _ = torch.linalg.qr(torch.randn(d_in, k, generator=g, dtype=F64))
        x = torch.randn(n, k, generator=g, dtype=F64) @ basis.T
        w = torch.randn(d_out, d_in, generator=g, dtype=F64)
        tasks.append((x, x @ w.T, basis))
    return tasks


def _mse(model, x, y):
    return ((model(x) - y) ** 2).mean()


def _train(model, opt, x, y, steps):
    for _ in range(steps):
        opt.zero_grad()
        _mse(model, x, y).backward()
        opt.step()


@pytest.mark.parametrize("side", ["left", "right"])
def test_coso_updates_are_orthogonal_to_the_past_subspace(side):
    tasks = _regression_tasks(d_out=30)
    torch.manual_seed(0)
    model = nn.Linear(30, 30, bias=False).double()
    opt = CoSO([model.weight], lr=0.05, proj_rank=3, sketch_rank=6, update_proj_gap=3, side=side, weight_decay=0.1)
    for x, y, _ in tasks[:2]:
        _train(model, opt, x, y, 20)
        opt.end_task(threshold=0.9)
    basis = opt.historical_basis(model.weight)
    assert basis.shape[1] > 0
    assert float(orthogonality_error(basis)) < 1e-10
    x, y, _ = tasks[2]
    for _ in range(15):  # every update of the third task, weight decay included
        before = model.weight.detach().clone()
        _train(model, opt, x, y, 1)
        delta = model.weight.detach() - before
        leak = basis.T @ delta if side == "left" else delta @ basis
        assert float(delta.norm()) > 1e-4
        assert float(leak.norm() / delta.norm()) < 1e-6


def test_coso_historical_basis_recovers_the_planted_input_subspace():
    (x, y, basis), *_ = _regression_tasks()
    model = nn.Linear(30, 6, bias=False).double()
    opt = CoSO([model.weight], lr=0.05, proj_rank=4, sketch_rank=6, update_proj_gap=5, side="right", threshold=0.9999)
    _train(model, opt, x, y, 30)
    opt.end_task()
    m = opt.historical_basis(model.weight)
    assert m.shape == (30, 5)  # the gradients' row space is exactly the 5-dim input subspace
    assert float(principal_angles(m, basis).max()) < 1e-6


def test_coso_forgets_less_than_fine_tuning_on_planted_tasks():
    tasks = _regression_tasks()
    learned, final = {}, {}
    for method in ("coso", "adam"):
        torch.manual_seed(0)
        model = nn.Linear(30, 6, bias=False).double()
        if method == "coso":
            opt = CoSO([model.weight], lr=0.05, proj_rank=5, sketch_rank=6, update_proj_gap=10, threshold=0.999, side="right")
        else:
            opt = torch.optim.Adam(model.parameters(), lr=0.05)
        learned[method] = []
        for x, y, _ in tasks:
            _train(model, opt, x, y, 200)
            if method == "coso":
                opt.end_task()
            with torch.no_grad():
                learned[method].append(float(_mse(model, x, y)))
        with torch.no_grad():
            final[method] = [float(_mse(model, x, y)) for x, y, _ in tasks]
    # every task is learned (the targets have mean square ~ 5) ...
    assert max(learned["coso"]) < 0.1 and max(learned["adam"]) < 0.1
    # ... and with CoSO the old tasks' losses do not move at all: their input subspaces are protected,
    forgetting = {m: [f - a for f, a in zip(final[m][:2], learned[m][:2])] for m in final}
    assert max(abs(f) for f in forgetting["coso"]) < 1e-8
    # while fine-tuning overwrites them
    assert min(forgetting["adam"]) > 0.2


def _split_digits_run(method, side="right", steps=60, lr=1e-2):
    x_all, y_all = load_digits(return_X_y=True)
    x_all = torch.tensor(x_all / 16.0, dtype=torch.float32)
    y_all = torch.tensor(y_all)
    perm = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(0))
    train, test = perm[:1200], perm[1200:]
    pairs = [(2 * t, 2 * t + 1) for t in range(5)]

    def task(idx, t):
        i = idx[(y_all[idx] == pairs[t][0]) | (y_all[idx] == pairs[t][1])]
        return x_all[i], (y_all[i] == pairs[t][1]).long()

    torch.manual_seed(0)
    l1, l2 = nn.Linear(64, 64, bias=False), nn.Linear(64, 64, bias=False)
    heads = nn.ModuleList(nn.Linear(64, 2) for _ in pairs)  # task-incremental heads

    def logits(x, t):
        return heads[t](torch.relu(l2(torch.relu(l1(x)))))

    if method == "coso":
        opt = CoSO([l1.weight, l2.weight], lr=lr, proj_rank=8, sketch_rank=16, update_proj_gap=10, side=side)
    else:
        opt = torch.optim.Adam([l1.weight, l2.weight], lr=lr)
    head_opt = torch.optim.Adam(heads.parameters(), lr=lr)
    acc: dict[int, list[float]] = {}
    for t in range(len(pairs)):
        x, y = task(train, t)
        for _ in range(steps):
            opt.zero_grad()
            head_opt.zero_grad()
            nn.functional.cross_entropy(logits(x, t), y).backward()
            opt.step()
            head_opt.step()
        if method == "coso":
            opt.end_task()
        with torch.no_grad():
            for s in range(t + 1):
                xs, ys = task(test, s)
                acc.setdefault(s, []).append(float((logits(xs, s).argmax(1) == ys).float().mean()))
    final = sum(a[-1] for a in acc.values()) / len(acc)
    forgetting = sum(max(acc[s][:-1]) - acc[s][-1] for s in range(len(pairs) - 1)) / (len(pairs) - 1)
    return final, forgetting


def test_coso_forgets_less_than_fine_tuning_on_split_digits():
    coso_final, coso_forget = _split_digits_run("coso")
    adam_final, adam_forget = _split_digits_run("adam")
    assert coso_forget < adam_forget - 0.05
    assert coso_forget < 0.02  # without the projection onto past tasks' complement it is ~0.03
    assert coso_final >= adam_final


def test_coso_state_dict_round_trips_with_weights_only(tmp_path):
    (x1, y1, _), (x2, y2, _), _ = _regression_tasks()
    runs = []
    for reload in (False, True):
        torch.manual_seed(0)
        model = nn.Linear(30, 6, bias=False).double()
        opt = CoSO([model.weight], lr=0.05, proj_rank=4, sketch_rank=6, update_proj_gap=3)
        _train(model, opt, x1, y1, 10)
        opt.end_task()
        _train(model, opt, x2, y2, 4)
        if reload:  # what graphrec.train checkpoints do: torch.load(..., weights_only=True)
            torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, tmp_path / "ckpt.pt")
            state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
            model = nn.Linear(30, 6, bias=False).double()
            model.load_state_dict(state["model"])
            opt = CoSO([model.weight], lr=0.05, proj_rank=4, sketch_rank=6, update_proj_gap=3)
            opt.load_state_dict(state["opt"])
        _train(model, opt, x2, y2, 5)
        runs.append((model.weight.detach().clone(), opt.historical_basis(model.weight).clone()))
    torch.testing.assert_close(runs[1][0], runs[0][0], rtol=0, atol=0)
    torch.testing.assert_close(runs[1][1], runs[0][1], rtol=0, atol=0)


def test_coso_bad_input():
    layer = nn.Linear(6, 4)
    with pytest.raises(ValueError, match="2-D weights only"):
        CoSO(layer.parameters(), proj_rank=2)  # the bias is 1-D
    with pytest.raises(ValueError, match="proj_rank=5 exceeds min"):
        CoSO([layer.weight], proj_rank=5)
    with pytest.raises(ValueError, match="sketch_rank=5 exceeds m=4"):
        CoSO([layer.weight], proj_rank=2, sketch_rank=5, side="left")
    with pytest.raises(ValueError, match="side"):
        CoSO([layer.weight], proj_rank=2, side="up")
    with pytest.raises(ValueError, match="threshold"):
        CoSO([layer.weight], proj_rank=2, threshold=0.0)
    with pytest.raises(TypeError, match="proj_rank"):
        CoSO([layer.weight], proj_rank=2.5)
    opt = CoSO([layer.weight], proj_rank=2)
    with pytest.raises(ValueError, match="2-D weights only"):
        opt.add_param_group({"params": [layer.bias]})
    with pytest.raises(ValueError, match="not a parameter"):
        opt.historical_basis(torch.zeros(4, 6))
    with pytest.raises(ValueError, match="threshold"):
        opt.end_task(threshold=1.5)


# ------------------------------------------------------------------ λ-orthogonality
def _planted_orthogonal(n=400, d=12, noise=0.01, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=dtype))
    b = torch.randn(d, generator=g, dtype=dtype)
    z_new = torch.randn(n, d, generator=g, dtype=dtype)
    z_old = z_new @ q.T + b + noise * torch.randn(n, d, generator=g, dtype=dtype)
    return z_new, z_old, q, b


def _fit_map(layer, z_new, z_old, steps=400, lr=0.05):
    opt = torch.optim.Adam(layer.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        (((layer(z_new) - z_old) ** 2).sum(1).mean() + layer.penalty()).backward()
        opt.step()
    return layer


@pytest.mark.parametrize("lam,mu", [(0.0, 10.0), (0.0, math.inf)])
def test_lambda_orth_recovers_a_planted_orthogonal_map(lam, mu):
    z_new, z_old, q, b = _planted_orthogonal()
    torch.manual_seed(0)
    layer = LambdaOrthogonalLinear(nn.Linear(12, 12).double(), lam=lam, mu=mu)
    if mu == math.inf:  # start in the right component of O(12), from a poor estimate on 14 very noisy pairs
        noisy = z_old[:14] + torch.randn(14, 12, generator=torch.Generator().manual_seed(5), dtype=F64)
        layer.init_procrustes(z_new[:14], noisy)
        assert float((layer.weight.detach() - q).norm()) > 0.5
        assert float(torch.det(layer.weight.detach()) * torch.det(q)) > 0
    _fit_map(layer, z_new, z_old)
    assert float((layer.weight.detach() - q).norm()) < 0.02
    assert float((layer.bias.detach() - b).norm()) < 0.02


def test_lambda_orth_init_procrustes_matches_the_closed_form():
    z_new, z_old, _, _ = _planted_orthogonal(noise=0.5)
    layer = LambdaOrthogonalLinear(nn.Linear(12, 12).double()).init_procrustes(z_new, z_old)
    zc, oc = z_new - z_new.mean(0), z_old - z_old.mean(0)
    torch.testing.assert_close(layer.weight.detach(), procrustes(zc, oc).T)
    torch.testing.assert_close(layer.bias.detach(), z_old.mean(0) - procrustes(zc, oc).T @ z_new.mean(0))


def test_lambda_orth_hard_limit_stays_orthogonal_after_many_steps_float32():
    z_new, z_old, _, _ = _planted_orthogonal(d=16, noise=0.5, dtype=torch.float32)
    torch.manual_seed(0)
    base = nn.Linear(12, 16)  # tall W: an isometric embedding of the 12-dim space
    layer = _fit_map(LambdaOrthogonalLinear(base, lam=0.0, mu=math.inf), z_new[:, :12], z_old, steps=500, lr=0.1)
    assert float(orthogonality_error(layer.weight.detach())) < 1e-5
    assert layer.penalty().item() == 0.0


def test_lambda_orth_interpolates_between_procrustes_and_least_squares():
    g = torch.Generator().manual_seed(1)
    z_new, z_old, q, _ = _planted_orthogonal(noise=0.1)
    distortion = 0.3 * torch.randn(12, 12, generator=g, dtype=F64) / math.sqrt(12)
    z_old = z_old + z_new @ distortion.T  # z_old = (Q + E) z_new + b + noise
    zc, oc = z_new - z_new.mean(0), z_old - z_old.mean(0)
    fits, defects = [], []
    for lam, mu in [(0.0, math.inf), (0.1, 100.0), (0.5, 100.0), (math.inf, 0.0)]:
        torch.manual_seed(0)
        layer = LambdaOrthogonalLinear(nn.Linear(12, 12).double(), lam=lam, mu=mu)
        if mu == math.inf:
            layer.init_procrustes(z_new[:14], z_old[:14])  # the component of O(12) holding the solution
        _fit_map(layer, z_new, z_old, steps=500)
        with torch.no_grad():
            fits.append(float(((layer(z_new) - z_old) ** 2).sum(1).mean()))
        defects.append(float(layer.orthogonality_defect()))
        w = layer.weight.detach()
        if mu == math.inf:  # λ = 0 limit: the Procrustes rotation of the centred data
            assert float((w - procrustes(zc, oc).T).norm()) < 5e-3
        elif lam == math.inf:  # free affine map: least squares
            assert float((w - torch.linalg.lstsq(zc, oc).solution.T).norm()) < 5e-3
        else:
            assert defects[-1] <= lam + 0.05
    assert defects[-1] > 0.5  # the distortion is visible to the free map
    assert all(a >= b - 1e-9 for a, b in zip(fits, fits[1:]))  # fit improves as λ loosens


def test_lambda_orth_is_compatible_and_preserves_the_new_geometry():
    """Downstream classes: map new -> old embeddings (old = Q diag(s) new + noise). The free affine map
    squashes the directions the old model squashes, which ruins kNN on another distribution whose
    classes differ only there; the orthogonal map preserves it but aligns worse (held-out MSE);
    λ-orth keeps the geometry, aligns better than the orthogonal map, and retrieves old-gallery
    items across models (leave-one-out 1-NN) at least as well as either."""
    g = torch.Generator().manual_seed(0)
    d = 16
    s = torch.ones(d, dtype=F64)
    s[:4], s[4:8] = 0.3, 2.0
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=F64))

    def sample(means, n):
        labels = torch.arange(n) % means.shape[0]
        return means[labels] + 0.7 * torch.randn(n, d, generator=g, dtype=F64), labels

    down_means = 0.8 * torch.randn(8, d, generator=g, dtype=F64)
    other_means = torch.zeros(8, d, dtype=F64)
    other_means[:, :4] = 1.5 * torch.randn(8, 4, generator=g, dtype=F64)

    def to_old(z):
        return (z * s) @ q.T + 0.3 * torch.randn(z.shape, generator=g, dtype=F64)

    z_train, _ = sample(down_means, 400)
    old_train = to_old(z_train)
    z_test, test_labels = sample(down_means, 400)
    old_test = to_old(z_test)
    z_other, other_labels = sample(other_means, 400)

    def nn1(query, gallery, labels):  # leave-one-out 1-NN accuracy (item i is excluded from its own query)
        dist = torch.cdist(query, gallery)
        dist.fill_diagonal_(float("inf"))
        return float((labels[dist.argmin(1)] == labels).double().mean())

    scores = {}
    for name, lam, mu in [("orth", 0.0, math.inf), ("lambda", 0.3, 10.0), ("affine", math.inf, 0.0)]:
        torch.manual_seed(0)
        layer = _fit_map(LambdaOrthogonalLinear(nn.Linear(d, d).double(), lam=lam, mu=mu), z_train, old_train)
        with torch.no_grad():
            h = layer(z_test)
            scores[name] = (nn1(h, old_test, test_labels), nn1(layer(z_other), layer(z_other), other_labels),
                            float(((h - old_test) ** 2).sum(1).mean()))
    new_other = nn1(z_other, z_other, other_labels)
    assert scores["orth"][1] == pytest.approx(new_other)  # an isometry keeps every neighbour
    assert scores["affine"][1] < new_other - 0.3  # the free map destroys the other distribution's geometry
    assert scores["lambda"][1] > new_other - 0.03  # λ-orth keeps it ...
    assert scores["lambda"][2] < scores["orth"][2] - 0.5  # ... while adapting better than the orthogonal map,
    assert scores["lambda"][0] >= max(scores["orth"][0], scores["affine"][0])  # and is the most compatible


def test_lambda_orth_merges_to_a_linear_with_identical_outputs():
    z_new, z_old, _, _ = _planted_orthogonal()
    for lam, mu in [(0.2, 1.0), (0.0, math.inf)]:
        model = nn.Sequential(nn.Linear(12, 12).double(), nn.Tanh(), nn.Linear(12, 12).double())
        names = wrap(model, lambda base: LambdaOrthogonalLinear(base, lam=lam, mu=mu), lambda n, m: n == "2")
        assert names == ["2"]
        _fit_map(model[2], torch.tanh(model[0](z_new)).detach(), z_old, steps=20)
        with torch.no_grad():
            expected = model(z_new)
            adapters = merge(model)
            assert type(model[2]) is nn.Linear
            torch.testing.assert_close(model(z_new), expected, rtol=1e-12, atol=1e-12)
            unmerge(model, adapters)
            torch.testing.assert_close(model(z_new), expected)


def test_lambda_orth_bad_input():
    with pytest.raises(TypeError, match="nn.Linear"):
        LambdaOrthogonalLinear(nn.Conv1d(3, 3, 1))
    with pytest.raises(ValueError, match="lam"):
        LambdaOrthogonalLinear(nn.Linear(3, 3), lam=-0.1)
    with pytest.raises(ValueError, match="mu"):
        LambdaOrthogonalLinear(nn.Linear(3, 3), mu=float("nan"))
    with pytest.raises(ValueError, match="needs lam=0"):
        LambdaOrthogonalLinear(nn.Linear(3, 3), lam=0.1, mu=math.inf)
    layer = LambdaOrthogonalLinear(nn.Linear(3, 4), lam=0.0, mu=math.inf)
    with pytest.raises(ValueError, match=r"z_new must be \(n, 3\) and z_old \(n, 4\)"):
        layer.init_procrustes(torch.randn(5, 3), torch.randn(6, 4))
    with pytest.raises(ValueError, match="NaN"):
        layer.init_procrustes(torch.full((5, 3), float("nan")), torch.randn(5, 4))


# ------------------------------------------------------------------ hyper-connections (sHC)
def _blocks(depth, d=16, scale=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    blocks = []
    for _ in range(depth):
        lin = nn.Linear(d, d)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(d, d, generator=g) * scale / math.sqrt(d))
            lin.bias.zero_()
        blocks.append(nn.Sequential(lin, nn.Tanh()))
    return blocks


def _raw_h_res(layer):
    return layer.h_res if layer.constraint == "none" else layer.parametrizations.h_res.original


@pytest.mark.parametrize("n_streams", [1, 4])
@pytest.mark.parametrize("constraint", ["spectral_sphere", "none"])
def test_hyper_connections_start_as_the_plain_residual_network(n_streams, constraint):
    blocks = _blocks(5, scale=1.0)
    stack = HyperConnectedStack(blocks, n_streams, constraint=constraint)
    x = torch.randn(7, 16)
    plain = x
    for block in blocks:
        plain = plain + block(plain)
    torch.testing.assert_close(stack(x), plain, rtol=1e-6, atol=1e-6)


def test_shc_residual_matrix_stays_on_the_spectral_sphere_after_many_steps():
    torch.manual_seed(0)
    stack = HyperConnectedStack(_blocks(4, scale=1.0), 4, radius=1.0)
    with torch.no_grad():  # break the symmetry of the identical initial streams
        for layer in stack.layers:
            _raw_h_res(layer).add_(0.3 * torch.randn(4, 4))
            layer.h_pre.add_(0.1 * torch.randn(4))
    start = [_raw_h_res(layer).detach().clone() for layer in stack.layers]
    x, y = torch.randn(64, 16), torch.randn(64, 16)
    opt = torch.optim.Adam(stack.parameters(), lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        ((stack(x) - y) ** 2).mean().backward()
        opt.step()
    for layer, raw0 in zip(stack.layers, start):
        assert float((_raw_h_res(layer).detach() - raw0).norm()) > 0.1  # the mixing was trained ...
        assert abs(float(torch.linalg.matrix_norm(layer.h_res.detach(), ord=2)) - 1.0) < 1e-5  # ... on the sphere


def test_shc_mixes_subtractively_where_the_birkhoff_polytope_cannot():
    """Target: stream 1 <- (x1 - x2) / 2, stream 2 <- (x2 - x1) / 2, i.e. H = [[.5, -.5], [-.5, .5]] (norm 1)."""
    g = torch.Generator().manual_seed(0)
    streams = torch.randn(256, 2, 8, generator=g)
    target = torch.stack([streams[:, 0] - streams[:, 1], streams[:, 1] - streams[:, 0]], 1) / 2
    errors = {}
    for constraint in ("spectral_sphere", "birkhoff"):
        torch.manual_seed(0)
        layer = HyperConnection(nn.Linear(8, 8), 2, constraint=constraint)
        nn.init.zeros_(layer.block.weight)  # the residual branch is off: only H_res can fit the target
        nn.init.zeros_(layer.block.bias)
        opt = torch.optim.Adam([_raw_h_res(layer)], lr=0.1)
        for _ in range(150):
            opt.zero_grad()
            ((layer(streams) - target) ** 2).mean().backward()
            opt.step()
        with torch.no_grad():
            errors[constraint] = float(((layer(streams) - target) ** 2).mean() / (target**2).mean())
    assert errors["spectral_sphere"] < 1e-3
    assert errors["birkhoff"] > 0.5  # convex mixing cannot subtract


def test_shc_keeps_deep_products_and_gradients_bounded_unlike_hc():
    depth, n, noise = 64, 4, 0.3
    results = {}
    for constraint in ("spectral_sphere", "none"):
        for noisy in (False, True):
            g = torch.Generator().manual_seed(1)
            stack = HyperConnectedStack(_blocks(depth), n, constraint=constraint)
            if noisy:  # the same perturbation of the raw residual matrices for both constraints
                with torch.no_grad():
                    for layer in stack.layers:
                        _raw_h_res(layer).add_(noise * torch.randn(n, n, generator=g))
            x = torch.randn(8, 16, generator=torch.Generator().manual_seed(2), requires_grad=True)
            stack(x).square().sum().backward()
            product = torch.eye(n)
            for layer in stack.layers:
                product = layer.h_res.detach() @ product
            results[constraint, noisy] = (float(torch.linalg.matrix_norm(product, ord=2)), float(x.grad.norm()))
    plain_grad = results["none", False][1]
    assert results["spectral_sphere", False][1] == pytest.approx(plain_grad, rel=1e-5)  # identity init: same network
    assert results["spectral_sphere", True][0] <= 1 + 1e-4  # non-expansive residual path at depth 64
    assert results["spectral_sphere", True][1] <= plain_grad  # gradients bounded by the plain residual network's
    assert results["none", True][0] > 10  # unconstrained HC: the residual product blows up ...
    assert results["none", True][1] > 10 * plain_grad  # ... and so do the gradients


def test_hyper_connections_bad_input():
    with pytest.raises(ValueError, match="n_streams"):
        HyperConnection(nn.Linear(4, 4), 0)
    with pytest.raises(ValueError, match="constraint"):
        HyperConnection(nn.Linear(4, 4), 2, constraint="stiefel")
    with pytest.raises(ValueError, match="radius"):
        HyperConnection(nn.Linear(4, 4), 2, radius=0.0)
    with pytest.raises(TypeError, match="block must be an nn.Module"):
        HyperConnection(lambda x: x, 2)
    layer = HyperConnection(nn.Linear(4, 4), 3)
    with pytest.raises(ValueError, match=r"streams must have shape \(\.\.\., 3, d\)"):
        layer(torch.randn(5, 2, 4))
    with pytest.raises(ValueError, match="same shape"):
        HyperConnection(nn.Linear(4, 5), 2)(torch.randn(5, 2, 4))
    with pytest.raises(ValueError, match="blocks is empty"):
        HyperConnectedStack([], 2)


# ------------------------------------------------------------------ CUDA
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_continual_adapters_on_cuda():
    dev = torch.device("cuda")
    model = nn.Linear(8, 6, bias=False).to(dev)
    opt = CoSO([model.weight], lr=1e-2, proj_rank=2, side="right")
    x = torch.randn(16, 8, device=dev)
    for _ in range(3):
        opt.zero_grad()
        model(x).square().sum().backward()
        opt.step()
    opt.end_task()
    assert opt.historical_basis(model.weight).device.type == "cuda"
    layer = LambdaOrthogonalLinear(nn.Linear(8, 8).to(dev), lam=0.0, mu=math.inf)
    assert float(orthogonality_error(layer.weight.detach())) < 1e-5
    stack = HyperConnectedStack(_blocks(3, d=8), 2).to(dev)
    assert stack(x).device.type == "cuda"
