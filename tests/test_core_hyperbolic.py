"""Poincaré-ball maps against the arccosh closed form of the distance and round trips."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from graphrec.core import clip_norm, expmap0, logmap0, mobius_add, poincare_distance


@pytest.mark.parametrize("c", [1.0, 0.3, 2.5])
def test_distance_matches_arccosh_closed_form(c):
    rng = np.random.default_rng(0)
    x = expmap0(torch.from_numpy(rng.standard_normal((20, 5))), c).numpy()
    y = expmap0(torch.from_numpy(rng.standard_normal((20, 5))), c).numpy()
    num = 2 * c * np.sum((x - y) ** 2, 1)
    den = (1 - c * np.sum(x**2, 1)) * (1 - c * np.sum(y**2, 1))
    ref = np.arccosh(1 + num / den) / np.sqrt(c)
    np.testing.assert_allclose(poincare_distance(x, y, c).numpy(), ref, rtol=1e-8)
    # distance from the origin is 2 ||log_0(x)|| and the distance is symmetric
    np.testing.assert_allclose(poincare_distance(np.zeros_like(x), x, c).numpy(), 2 * np.linalg.norm(logmap0(x, c).numpy(), axis=1), rtol=1e-8)
    np.testing.assert_allclose(poincare_distance(y, x, c).numpy(), ref, rtol=1e-8)


def test_round_trip_and_mobius_identities():
    v = torch.randn(50, 4, dtype=torch.float64)
    x = expmap0(v, 0.7)
    assert float((0.7 * (x**2).sum(-1)).max()) < 1
    torch.testing.assert_close(logmap0(x, 0.7), v)
    y = expmap0(torch.randn(50, 4, dtype=torch.float64), 0.7)
    torch.testing.assert_close(mobius_add(torch.zeros(4, dtype=torch.float64), y, 0.7), y)  # 0 is the identity
    torch.testing.assert_close(mobius_add(-y, y, 0.7), torch.zeros_like(y), atol=1e-12, rtol=0)  # left inverse
    assert float(expmap0(torch.zeros(3)).abs().max()) == 0.0


def test_clip_norm_and_errors():
    z = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
    torch.testing.assert_close(clip_norm(z, 1.0), torch.tensor([[0.6, 0.8], [0.3, 0.4]]))
    with pytest.raises(ValueError, match="outside the open Poincaré ball"):
        logmap0(torch.tensor([[1.0, 0.0]]))
    with pytest.raises(ValueError, match="c must be"):
        expmap0(z, c=0.0)
    with pytest.raises(ValueError, match="NaN"):
        expmap0(torch.tensor([float("nan")]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("c", [1.0, 0.3])
def test_expmap0_of_long_vectors_stays_inside_the_ball(dtype, c):
    # tanh rounds to 1 for long tangent vectors (norm ~9 in float32, ~19 in float64): the point
    # must still be strictly inside the open ball, so that the other maps accept it.
    v = torch.randn(40, 16, dtype=dtype) * torch.logspace(0, 3, 40, dtype=dtype)[:, None]
    x = expmap0(v, c)
    assert bool((c * (x * x).sum(-1) < 1).all())
    d = poincare_distance(torch.zeros_like(x), x, c)
    assert bool(torch.isfinite(d).all())
    assert bool(torch.isfinite(logmap0(x, c)).all())
    torch.testing.assert_close(mobius_add(torch.zeros_like(x), x, c), x)
