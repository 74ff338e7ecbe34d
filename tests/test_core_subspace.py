"""Subspace primitives against numpy / scipy references, including rank-deficient and ill-conditioned input."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
import torch

from graphrec.core import (
    energy_rank,
    numerical_rank,
    orthonormal_basis,
    principal_angles,
    project,
    residual,
    subspace_distance,
    truncated_svd,
)


def _ill_conditioned(m=60, n=30, seed=0):
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((m, n)))
    v, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return u @ np.diag(np.logspace(0, -10, n)) @ v.T


def test_energy_rank_hand_computed():
    # energies 16, 9, 4, 1 of total 30: cumulative 0.533, 0.833, 0.967, 1.0
    s = torch.tensor([1.0, 4.0, 3.0, 2.0])  # unsorted on purpose
    assert energy_rank(s, 0.5) == 1
    assert energy_rank(s, 0.6) == 2
    assert energy_rank(s, 0.9) == 3
    assert energy_rank(s, 1.0) == 4
    assert energy_rank(torch.zeros(3), 0.9) == 0
    batched = energy_rank(torch.tensor([[4.0, 3.0, 2.0, 1.0], [1.0, 0.0, 0.0, 0.0]]), 0.9)
    assert batched.tolist() == [3, 1]
    with pytest.raises(ValueError, match="energy"):
        energy_rank(s, 0.0)
    with pytest.raises(ValueError, match="non-negative"):
        energy_rank(torch.tensor([1.0, -1.0]), 0.5)


def test_truncated_svd_matches_numpy_and_energy_rank():
    a = _ill_conditioned()
    u, s, vt = truncated_svd(a, 5)
    nu, ns, nvt = np.linalg.svd(a, full_matrices=False)
    np.testing.assert_allclose(s.numpy(), ns[:5], rtol=1e-10)
    np.testing.assert_allclose((u * s) @ vt, (nu[:, :5] * ns[:5]) @ nvt[:5], atol=1e-12)
    # energy 0.99 of a logspace(0, -10) spectrum: numpy's count is the reference
    cum = np.cumsum(ns**2) / np.sum(ns**2)
    _, s99, _ = truncated_svd(a, energy=0.99)
    assert s99.shape[0] == int(np.searchsorted(cum, 0.99) + 1)
    # batched
    ab = torch.stack([torch.from_numpy(a), torch.from_numpy(_ill_conditioned(seed=1))])
    assert truncated_svd(ab, 3)[0].shape == (2, 60, 3)


def test_truncated_svd_bad_input():
    a = torch.randn(5, 4)
    with pytest.raises(ValueError, match="exceeds"):
        truncated_svd(a, 5)
    with pytest.raises(ValueError, match="exactly one"):
        truncated_svd(a)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        truncated_svd(torch.randn(5), 1)
    bad = a.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        truncated_svd(bad, 1)


def test_orthonormal_basis_matches_scipy_orth_on_rank_deficient():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20, 3)) @ rng.standard_normal((3, 8))  # rank 3
    q = orthonormal_basis(a).numpy()
    ref = sla.orth(a)
    assert q.shape == ref.shape == (20, 3)
    np.testing.assert_allclose(q @ q.T, ref @ ref.T, atol=1e-12)
    assert numerical_rank(a) == np.linalg.matrix_rank(a) == 3
    assert numerical_rank(np.zeros((3, 3))) == 0


def test_project_and_residual_split_exactly():
    rng = np.random.default_rng(1)
    basis = orthonormal_basis(rng.standard_normal((10, 3)))
    x = torch.from_numpy(rng.standard_normal((7, 10)))
    p, r = project(x, basis), residual(x, basis)
    torch.testing.assert_close(p + r, x, rtol=0, atol=1e-12)
    assert float((r @ basis).abs().max()) < 1e-12  # residual is orthogonal to the subspace
    torch.testing.assert_close(project(p, basis), p)  # idempotent
    q = basis.numpy()
    np.testing.assert_allclose(p.numpy(), x.numpy() @ q @ np.linalg.pinv(q), atol=1e-12)
    # batched rows
    assert project(x.reshape(7, 1, 10).expand(7, 2, 10), basis).shape == (7, 2, 10)
    with pytest.raises(ValueError, match="features"):
        project(x, basis[:5])


@pytest.mark.parametrize("case", ["random", "rank_deficient", "tiny_angles", "ill_conditioned", "unequal_dims"])
def test_principal_angles_match_scipy(case):
    rng = np.random.default_rng(3)
    if case == "random":
        a, b = rng.standard_normal((12, 4)), rng.standard_normal((12, 4))
    elif case == "rank_deficient":
        a = rng.standard_normal((12, 2)) @ rng.standard_normal((2, 5))
        b = rng.standard_normal((12, 3))
    elif case == "tiny_angles":
        a = rng.standard_normal((12, 3))
        b = a + 1e-9 * rng.standard_normal((12, 3))
    elif case == "ill_conditioned":
        a = _ill_conditioned(30, 6, seed=4)[:, :6] @ np.diag([1, 1e-3, 1e-5, 1, 1, 1])
        b = rng.standard_normal((30, 6))
    else:
        a, b = rng.standard_normal((12, 2)), rng.standard_normal((12, 5))
    got = principal_angles(a, b).numpy()
    ref = sla.subspace_angles(a, b)
    np.testing.assert_allclose(got, ref, atol=1e-10, rtol=1e-6)


def test_principal_angles_planted_and_distance():
    # span(e1, e2) vs span(e1, cos t e2 + sin t e3): angles (t, 0)
    t = 0.3
    a = torch.eye(4, dtype=torch.float64)[:, :2]
    b = torch.tensor([[1, 0], [0, np.cos(t)], [0, np.sin(t)], [0, 0]], dtype=torch.float64)
    torch.testing.assert_close(principal_angles(a, b), torch.tensor([t, 0.0], dtype=torch.float64))
    # ||P_a - P_b||_F = sqrt(2) * ||sin(theta)|| for equal dimensions
    assert abs(float(subspace_distance(a, b)) - np.sqrt(2) * np.sin(t)) < 1e-12
    with pytest.raises(ValueError, match="same number of rows"):
        principal_angles(a, b[:3])
    with pytest.raises(ValueError, match="2-dimensional"):
        principal_angles(torch.zeros(4), b)
