"""n-mode products, unfolding and HOSVD against numpy einsum references."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from graphrec.core import fold, hosvd, mode_dot, multi_mode_dot, tucker_to_tensor, unfold


def test_mode_dot_matches_einsum_every_mode():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5))
    m = [rng.standard_normal((2, 3)), rng.standard_normal((6, 4)), rng.standard_normal((7, 5))]
    np.testing.assert_allclose(mode_dot(x, m[0], 0).numpy(), np.einsum("ai,ijk->ajk", m[0], x), atol=1e-12)
    np.testing.assert_allclose(mode_dot(x, m[1], 1).numpy(), np.einsum("bj,ijk->ibk", m[1], x), atol=1e-12)
    np.testing.assert_allclose(mode_dot(x, m[2], -1).numpy(), np.einsum("ck,ijk->ijc", m[2], x), atol=1e-12)
    full = np.einsum("ai,bj,ck,ijk->abc", *m, x)
    np.testing.assert_allclose(multi_mode_dot(x, m).numpy(), full, atol=1e-12)
    np.testing.assert_allclose(multi_mode_dot(x, m[::-1], [2, 1, 0]).numpy(), full, atol=1e-12)
    np.testing.assert_allclose(tucker_to_tensor(x, m).numpy(), full, atol=1e-12)
    # unfolding identity: unfold(x ×_n M, n) = M unfold(x, n)
    np.testing.assert_allclose(unfold(mode_dot(x, m[1], 1), 1).numpy(), m[1] @ unfold(x, 1).numpy(), atol=1e-12)


def test_fold_inverts_unfold_and_errors():
    x = torch.randn(3, 4, 5, dtype=torch.float64)
    for n in range(3):
        torch.testing.assert_close(fold(unfold(x, n), n, x.shape), x)
    with pytest.raises(ValueError, match="columns"):
        mode_dot(x, torch.randn(2, 5), 0)
    with pytest.raises(ValueError, match="mode must be an integer"):
        mode_dot(x, torch.randn(2, 3), 3)
    with pytest.raises(ValueError, match="distinct"):
        multi_mode_dot(x, [torch.randn(2, 3), torch.randn(2, 2)], [0, 0])
    with pytest.raises(ValueError, match="unfolding"):
        fold(torch.randn(3, 7), 0, (3, 4, 5))
    with pytest.raises(ValueError, match="one factor per core mode"):
        tucker_to_tensor(x, [torch.randn(2, 3)])


def test_hosvd_recovers_planted_tucker_tensor():
    rng = np.random.default_rng(1)
    core = rng.standard_normal((2, 3, 2))
    factors = [np.linalg.qr(rng.standard_normal((n, r)))[0] for n, r in [(6, 2), (7, 3), (5, 2)]]
    x = np.einsum("ai,bj,ck,ijk->abc", *factors, core)
    g, us = hosvd(x, (2, 3, 2))
    np.testing.assert_allclose(tucker_to_tensor(g, us).numpy(), x, atol=1e-10)
    for u, f in zip(us, factors):
        np.testing.assert_allclose(u.numpy() @ u.numpy().T, f @ f.T, atol=1e-10)  # same column spaces
    with pytest.raises(ValueError, match="exceeds"):
        hosvd(x, (7, 3, 2))
    with pytest.raises(ValueError, match="one rank per mode"):
        hosvd(x, (2, 3))
