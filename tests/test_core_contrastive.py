"""InfoNCE / SupCon against per-anchor loops; coding rates against the MCR² closed forms."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from graphrec.core import coding_rate, coding_rate_membership, info_nce, supcon_loss


def _normalise(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_info_nce_matches_loop():
    rng = np.random.default_rng(0)
    q, k = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    qn, kn = _normalise(q), _normalise(k)
    t = 0.2
    ref = np.mean([-(qn[i] @ kn[i] / t) + np.log(np.sum(np.exp(qn[i] @ kn.T / t))) for i in range(6)])
    assert abs(float(info_nce(torch.from_numpy(q), torch.from_numpy(k), t)) - ref) < 1e-12
    with pytest.raises(ValueError, match="same shape"):
        info_nce(torch.randn(3, 2), torch.randn(4, 2))
    with pytest.raises(ValueError, match="temperature"):
        info_nce(torch.randn(3, 2), torch.randn(3, 2), 0.0)


def _supcon_loop(z, y, t, variant):
    z = _normalise(z)
    losses = []
    for i in range(len(z)):
        others = [a for a in range(len(z)) if a != i]
        pos = [p for p in others if y[p] == y[i]]
        if not pos:
            continue
        denom = np.sum([np.exp(z[i] @ z[a] / t) for a in others])
        probs = [np.exp(z[i] @ z[p] / t) / denom for p in pos]
        losses.append(-np.mean(np.log(probs)) if variant == "out" else -np.log(np.mean(probs)))
    return np.mean(losses)


@pytest.mark.parametrize("variant", ["out", "in"])
def test_supcon_matches_loop(variant):
    rng = np.random.default_rng(1)
    z = rng.standard_normal((9, 5))
    y = np.array([0, 0, 1, 1, 1, 2, 2, 3, 0])  # label 3 has no positive: skipped as an anchor
    got = float(supcon_loss(torch.from_numpy(z), torch.from_numpy(y), 0.3, variant=variant))
    assert abs(got - _supcon_loop(z, y, 0.3, variant)) < 1e-12


def test_supcon_hand_computed_and_errors():
    # two identical pairs of orthogonal unit vectors: s(pos) = 1, s(neg) = 0, t = 1
    z = torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0], [0, 1.0]], dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1])
    expected = -np.log(np.e / (np.e + 2))
    assert abs(float(supcon_loss(z, y, 1.0)) - expected) < 1e-12
    with pytest.raises(ValueError, match="no anchor has a positive"):
        supcon_loss(z, torch.arange(4))
    with pytest.raises(TypeError, match="integers"):
        supcon_loss(z, torch.zeros(4))
    with pytest.raises(ValueError, match="variant"):
        supcon_loss(z, y, variant="mid")
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        supcon_loss(z, torch.zeros(3, dtype=torch.long))


def test_coding_rate_closed_forms():
    rng = np.random.default_rng(2)
    z = _normalise(rng.standard_normal((30, 8)))
    eps = 0.5
    n, d = z.shape
    ref = 0.5 * np.linalg.slogdet(np.eye(d) + d / (n * eps**2) * z.T @ z)[1]
    assert abs(float(coding_rate(torch.from_numpy(z), eps)) - ref) < 1e-10
    wide = z[:5]  # n < d takes the n x n Gram path
    ref_wide = 0.5 * np.linalg.slogdet(np.eye(d) + d / (5 * eps**2) * wide.T @ wide)[1]
    assert abs(float(coding_rate(torch.from_numpy(wide), eps)) - ref_wide) < 1e-10
    # class indicators give MCR²'s R_c; MLC's block-uniform Γ (rows 1/n_c in class) gives the same value
    labels = rng.integers(0, 3, n)
    ref_c = sum(
        (np.sum(labels == c) / n) * 0.5 * np.linalg.slogdet(np.eye(d) + d / (np.sum(labels == c) * eps**2) * z[labels == c].T @ z[labels == c])[1]
        for c in range(3)
    )
    onehot = (labels[None, :] == np.arange(3)[:, None]).astype(float)
    assert abs(float(coding_rate_membership(torch.from_numpy(z), onehot, eps)) - ref_c) < 1e-10
    gamma = (labels[:, None] == labels[None, :]) / np.bincount(labels)[labels][:, None]
    assert abs(float(coding_rate_membership(torch.from_numpy(z), gamma, eps)) - ref_c) < 1e-10
    with pytest.raises(ValueError, match="non-negative"):
        coding_rate_membership(z, -onehot, eps)
    with pytest.raises(ValueError, match="shape"):
        coding_rate_membership(z, onehot[:, :5], eps)


@pytest.mark.parametrize("n, d", [(10, 3), (3, 10)])
def test_coding_rate_membership_gradient_is_finite_at_zero_memberships(n, d):
    # Zero membership entries (class indicators, an underflowed Sinkhorn plan) must give finite
    # gradients, equal to those of the direct formula Z^T diag(w_j) Z.
    torch.manual_seed(0)
    z = torch.randn(n, d, dtype=torch.float64)
    m = torch.rand(3, n, dtype=torch.float64)
    m[m < 0.4] = 0.0
    eps = 0.5

    def direct(z, m):
        eye = torch.eye(d, dtype=torch.float64)
        return sum(m[j].sum() / (2 * n) * torch.logdet(eye + d / (m[j].sum() * eps**2) * z.T @ torch.diag(m[j]) @ z)
                   for j in range(m.shape[0]))

    zg, mg = z.clone().requires_grad_(), m.clone().requires_grad_()
    value = coding_rate_membership(zg, mg, eps)
    value.backward()
    zr, mr = z.clone().requires_grad_(), m.clone().requires_grad_()
    ref = direct(zr, mr)
    ref.backward()
    assert abs(float(value.detach()) - float(ref.detach())) < 1e-10
    assert bool(torch.isfinite(mg.grad).all()) and bool(torch.isfinite(zg.grad).all())
    torch.testing.assert_close(mg.grad, mr.grad, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(zg.grad, zr.grad, atol=1e-10, rtol=1e-10)
