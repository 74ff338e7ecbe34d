"""Log-domain Sinkhorn against a plain numpy Sinkhorn, marginals, and the small-eps limit (assignment)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from graphrec.core import doubly_stochastic, sinkhorn


def _numpy_sinkhorn(c, a, b, eps, n_iter=5000):
    k = np.exp(-c / eps)
    v = np.ones(len(b))
    for _ in range(n_iter):
        u = a / (k @ v)
        v = b / (k.T @ u)
    return u[:, None] * k * v[None, :]


def test_matches_plain_sinkhorn_and_marginals():
    rng = np.random.default_rng(0)
    c = rng.random((6, 4))
    a = rng.random(6) + 0.1
    a /= a.sum()
    b = rng.random(4) + 0.1
    b /= b.sum()
    p = sinkhorn(c, a, b, eps=0.2).numpy()
    np.testing.assert_allclose(p, _numpy_sinkhorn(c, a, b, 0.2), atol=1e-9)
    np.testing.assert_allclose(p.sum(1), a, atol=1e-9)
    np.testing.assert_allclose(p.sum(0), b, atol=1e-9)


def test_small_eps_is_stable_and_approaches_assignment():
    rng = np.random.default_rng(1)
    c = rng.random((8, 8))
    p = sinkhorn(c, eps=1e-3, n_iter=5000).numpy()  # exp(-c/eps) underflows without the log domain
    assert np.all(np.isfinite(p))
    rows, cols = linear_sum_assignment(c)
    perm = np.zeros((8, 8))
    perm[rows, cols] = 1 / 8
    np.testing.assert_allclose(p, perm, atol=1e-3)


def test_doubly_stochastic_batched():
    logits = torch.randn(3, 5, 5, dtype=torch.float64) * 3
    p = doubly_stochastic(logits)
    assert p.shape == (3, 5, 5) and float(p.min()) >= 0
    torch.testing.assert_close(p.sum(-1), torch.ones(3, 5, dtype=torch.float64), atol=1e-8, rtol=0)
    torch.testing.assert_close(p.sum(-2), torch.ones(3, 5, dtype=torch.float64), atol=1e-8, rtol=0)
    # Sinkhorn scaling: log p - logits = f_i + g_j, so its double-centred form is zero
    r = torch.log(p) - logits
    r = r - r.mean(-1, keepdim=True) - r.mean(-2, keepdim=True) + r.mean((-2, -1), keepdim=True)
    assert float(r.abs().max()) < 1e-10


def test_sinkhorn_bad_input():
    c = torch.rand(3, 4)
    with pytest.raises(ValueError, match="eps"):
        sinkhorn(c, eps=0.0)
    with pytest.raises(ValueError, match="length 3"):
        sinkhorn(c, a=torch.ones(4) / 4)
    with pytest.raises(ValueError, match="strictly positive"):
        sinkhorn(c, a=torch.tensor([1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="equal total mass"):
        sinkhorn(c, a=torch.ones(3) / 3, b=torch.ones(4))
    with pytest.raises(ValueError, match="square"):
        doubly_stochastic(c)
    with pytest.raises(ValueError, match="NaN"):
        sinkhorn(torch.tensor([[float("nan")]]))


def test_sinkhorn_lone_marginal_must_have_unit_mass():
    # A marginal left out is uniform with mass 1: a lone a (or b) of another mass has no plan with
    # P 1 = a and P^T 1 = b, so it must be rejected instead of silently returning P 1 != a.
    c = torch.rand(3, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="equal total mass"):
        sinkhorn(c, a=torch.tensor([0.5, 0.5, 1.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="equal total mass"):
        sinkhorn(c, b=torch.full((4,), 0.5, dtype=torch.float64))
    a = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    p = sinkhorn(c, a=a)  # mass 1: fine, and both marginals hold
    torch.testing.assert_close(p.sum(1), a, atol=1e-8, rtol=0)
    torch.testing.assert_close(p.sum(0), torch.full((4,), 0.25, dtype=torch.float64), atol=1e-8, rtol=0)
    a32 = torch.rand(50) + 0.1
    sinkhorn(torch.rand(50, 7), a=a32 / a32.sum())  # float32 rounding of the mass is tolerated


def test_sinkhorn_is_differentiable():
    logits = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: doubly_stochastic(z, n_iter=30, tol=0.0), (logits,))
    cost = torch.rand(3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c: sinkhorn(c, eps=0.5, n_iter=30, tol=0.0), (cost,))


def test_symmetric_doubly_stochastic_matches_alternating_sinkhorn():
    from graphrec.core.transport import symmetric_doubly_stochastic

    # an indefinite kernel: the damped sweep contracts like (1 - lambda) / 2 over the eigenvalues lambda of P, slowly
    # where P has one near -1 (5 of 200 such draws need more than 1000 sweeps), so allow many sweeps
    a = torch.randn(6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    logits = (a + a.T) * 2
    p = symmetric_doubly_stochastic(logits, n_iter=100000)
    torch.testing.assert_close(p, p.T)
    torch.testing.assert_close(p.sum(-1), torch.ones(6, dtype=torch.float64), atol=1e-8, rtol=0)
    torch.testing.assert_close(p, doubly_stochastic(logits, n_iter=100000, tol=1e-13), atol=1e-7, rtol=0)
    # unevenly spread points on a circle, sharp kernel: tens of symmetric sweeps, the alternating ones lag
    t = torch.rand(60, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) ** 2 * 2 * torch.pi
    z = torch.stack([t.cos(), t.sin()], 1)
    fast = symmetric_doubly_stochastic(z @ z.T / 0.01, n_iter=100)
    slow = doubly_stochastic(z @ z.T / 0.01, n_iter=100, tol=0.0)
    assert float((fast.sum(-1) - 1).abs().max()) < 1e-9 < 1e-5 < float((slow.sum(-1) - 1).abs().max())


def test_symmetric_doubly_stochastic_bad_input():
    from graphrec.core.transport import symmetric_doubly_stochastic

    with pytest.raises(ValueError, match="square"):
        symmetric_doubly_stochastic(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="symmetric"):
        symmetric_doubly_stochastic(torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="NaN"):
        symmetric_doubly_stochastic(torch.tensor([[float("nan")]]))
