"""Leverage scores against the hat matrix, ℓ1 sensitivities against their bound, unbiased sampling."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from graphrec.core import leverage_scores, lp_sensitivities, sensitivity_sample


def test_leverage_scores_match_hat_matrix_rank_deficient():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((50, 3)) @ rng.standard_normal((3, 6))  # rank 3
    tau = leverage_scores(a).numpy()
    np.testing.assert_allclose(tau, np.diag(a @ np.linalg.pinv(a)), atol=1e-10)
    assert abs(tau.sum() - 3) < 1e-10 and tau.min() >= 0 and tau.max() <= 1 + 1e-12
    np.testing.assert_allclose(lp_sensitivities(a, 2).numpy(), tau)


def test_l1_sensitivities_against_definition_and_bound():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((40, 3))
    s = lp_sensitivities(a, 1).numpy()
    assert s.sum() <= 3 + 1e-8 and np.all(s > 0) and np.all(s <= 1 + 1e-9)
    # sup over x of |a_i x| / ||A x||_1: random directions never beat the LP optimum
    x = rng.standard_normal((3, 2000))
    ratio = np.abs(a @ x) / np.abs(a @ x).sum(0)
    assert np.all(ratio.max(1) <= s + 1e-9)
    assert np.all(ratio.max(1) >= 0.5 * s)  # and get reasonably close
    with pytest.raises(ValueError, match="p = 1 and p = 2"):
        lp_sensitivities(a, 3)


def test_sensitivity_sampling_is_unbiased():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((300, 4)) * rng.exponential(1.0, (300, 1))
    scores = leverage_scores(a)
    x = rng.standard_normal(4)
    truth = np.sum((a @ x) ** 2)
    est = []
    for seed in range(2000):
        idx, w = sensitivity_sample(scores, 40, random_state=seed)
        est.append(np.sum(w.numpy() * (a[idx.numpy()] @ x) ** 2))
    assert abs(np.mean(est) / truth - 1) < 0.02
    idx, w = sensitivity_sample(torch.ones(10), 20, random_state=0)  # q capped at 1: keep all, weight 1
    assert idx.tolist() == list(range(10)) and torch.all(w == 1)
    a1, _ = sensitivity_sample(scores, 40, random_state=7)
    a2, _ = sensitivity_sample(scores, 40, random_state=7)
    assert torch.equal(a1, a2)
    with pytest.raises(ValueError, match="non-negative"):
        sensitivity_sample(torch.tensor([1.0, -1.0]), 1)
    with pytest.raises(ValueError, match="all zero"):
        sensitivity_sample(torch.zeros(3), 1)
