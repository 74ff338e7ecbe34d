"""Orthogonal parametrisations, retractions, penalties and spectral-norm control against dense references."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
import torch
from torch import nn
from torch.nn.utils import parametrize

from graphrec.core import (
    CayleyOrthogonal,
    HouseholderOrthogonal,
    cayley,
    cayley_retraction,
    clip_spectral_norm,
    grassmann_exp,
    grassmann_tangent,
    householder_product,
    orthogonality_error,
    orthogonality_penalty,
    principal_angles,
    procrustes,
    project_spectral_sphere,
    qr_retraction,
    spectral_norm,
    stiefel_tangent,
)


def test_householder_product_matches_dense_reflectors():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((6, 3))
    h = np.eye(6)
    for i in range(3):
        vi = v[:, i : i + 1]
        h = h @ (np.eye(6) - 2 * vi @ vi.T / (vi.T @ vi))
    np.testing.assert_allclose(householder_product(v).numpy(), h, atol=1e-12)
    np.testing.assert_allclose(householder_product(v, 2).numpy(), h[:, :2], atol=1e-12)
    batched = householder_product(torch.from_numpy(np.stack([v, 2 * v])))
    np.testing.assert_allclose(batched[1].numpy(), h, atol=1e-12)  # scale invariant
    with pytest.raises(ValueError, match="zero column"):
        householder_product(np.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 6\]"):
        householder_product(v, 7)


def test_cayley_matches_formula_and_is_special_orthogonal():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 5))
    s = (a - a.T) / 2
    ref = np.linalg.solve(np.eye(5) - s, np.eye(5) + s)
    q = cayley(a).numpy()
    np.testing.assert_allclose(q, ref, atol=1e-12)
    assert float(orthogonality_error(q)) < 1e-12
    assert abs(np.linalg.det(q) - 1) < 1e-12
    with pytest.raises(ValueError, match="square"):
        cayley(np.zeros((2, 3)))


@pytest.mark.parametrize("param", [HouseholderOrthogonal, CayleyOrthogonal])
@pytest.mark.parametrize("shape", [(8, 5), (5, 8), (6, 6)])
def test_parametrised_layer_stays_orthogonal_after_200_steps(param, shape):
    torch.manual_seed(0)
    layer = nn.Linear(shape[1], shape[0], bias=False)
    parametrize.register_parametrization(layer, "weight", param())
    opt = torch.optim.Adam(layer.parameters(), lr=0.05)
    x = torch.randn(64, shape[1])
    target = x @ torch.randn(shape[1], shape[0])
    losses = []
    for _ in range(200):
        opt.zero_grad()
        loss = ((layer(x) - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]  # it does train
    assert float(orthogonality_error(layer.weight.detach())) < 1e-5  # float32


def test_orthogonality_penalty_is_a_lambda_hinge():
    w = torch.eye(4, 3, dtype=torch.float64) * 1.5  # W^T W - I = 1.25 I_3, norm 1.25 sqrt(3)
    defect = 1.25 * np.sqrt(3)
    assert abs(float(orthogonality_error(w)) - defect) < 1e-12
    assert abs(float(orthogonality_penalty(w)) - defect**2) < 1e-12
    assert abs(float(orthogonality_penalty(w, lam=1.0)) - (defect - 1) ** 2) < 1e-12
    assert float(orthogonality_penalty(w, lam=5.0)) == 0.0
    # gradient descent on the penalty reaches an orthonormal matrix
    p = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.02)
    for _ in range(500):
        opt.zero_grad()
        orthogonality_penalty(p).backward()
        opt.step()
    assert float(orthogonality_error(p.detach())) < 1e-5


def _stiefel(n=7, k=3, seed=0):
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((n, k)))
    return torch.from_numpy(u), torch.from_numpy(rng.standard_normal((n, k)))


def test_stiefel_tangent_and_retractions():
    u, g = _stiefel()
    xi = stiefel_tangent(u, g)
    sym = u.T @ xi
    torch.testing.assert_close(sym, -sym.T)  # tangent: u^T xi is skew
    for retract in (qr_retraction, cayley_retraction):
        y = retract(u, 0.5 * xi)
        assert float(orthogonality_error(y)) < 1e-12
        # first-order: R(u, t xi) = u + t xi + O(t^2)
        t = 1e-4
        step = (retract(u, t * xi) - u) / t
        assert float((step - xi).abs().max()) < 1e-3
    # many Cayley steps stay on the manifold
    y = u
    for _ in range(200):
        y = cayley_retraction(y, stiefel_tangent(y, g), 0.05)
    assert float(orthogonality_error(y)) < 1e-10
    with pytest.raises(ValueError, match="tall"):
        qr_retraction(u.T, g.T)
    with pytest.raises(ValueError, match="shape of u"):
        stiefel_tangent(u, g[:, :2])


def test_grassmann_geodesic_has_planted_principal_angles():
    u, g = _stiefel(10, 3, seed=2)
    xi = grassmann_tangent(u, g)
    assert float((u.T @ xi).abs().max()) < 1e-12
    s = torch.linalg.svdvals(xi)
    t = 0.8 / float(s.max())
    y = grassmann_exp(u, xi, t)
    assert float(orthogonality_error(y)) < 1e-12
    np.testing.assert_allclose(principal_angles(u, y).numpy(), (t * s).numpy(), atol=1e-10)


def test_procrustes_matches_scipy():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((20, 4))
    q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    b = a @ q + 0.01 * rng.standard_normal((20, 4))
    r = procrustes(a, b).numpy()
    np.testing.assert_allclose(r, sla.orthogonal_procrustes(a, b)[0], atol=1e-12)
    np.testing.assert_allclose(procrustes(a, a @ q).numpy(), q, atol=1e-12)


def test_spectral_norm_control():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((3, 6, 4))
    ref = np.array([np.linalg.norm(m, 2) for m in w])
    np.testing.assert_allclose(spectral_norm(w).numpy(), ref, rtol=1e-12)
    np.testing.assert_allclose(spectral_norm(w, 200, random_state=0).numpy(), ref, rtol=1e-6)
    assert np.all(spectral_norm(w, 1, random_state=0).numpy() <= ref + 1e-12)  # power iteration is a lower bound
    np.testing.assert_allclose(spectral_norm(project_spectral_sphere(w, 2.0)).numpy(), 2.0, rtol=1e-12)
    c = clip_spectral_norm(w[0], 1.0).numpy()
    u, s, vt = np.linalg.svd(w[0], full_matrices=False)
    np.testing.assert_allclose(c, (u * np.minimum(s, 1.0)) @ vt, atol=1e-12)
    with pytest.raises(ValueError, match="zero matrix"):
        project_spectral_sphere(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        spectral_norm(np.ones(3))
