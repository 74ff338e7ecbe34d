"""Trajectories of the slow-manifold system, the planted truth of Koopman representation learning.

``x1' = mu x1``, ``x2' = lambda (x2 - x1^2)`` has the exact solution

    x1(t) = x1(0) e^{mu t},   x2(t) = b x1(t)^2 + (x2(0) - b x1(0)^2) e^{lambda t},   b = lambda / (lambda - 2 mu),

and the finite Koopman-invariant span ``{1, x1, x1^2, x2}``: a 4-dimensional latent makes the dynamics
exactly linear, with eigenvalues ``e^{(0, mu, 2 mu, lambda) dt}`` of the one-step operator.

Reference: S. L. Brunton, B. W. Brunton, J. L. Proctor and J. N. Kutz, "Koopman invariant subspaces and
finite linear representations of nonlinear dynamical systems for control", PLoS ONE 11(2), 2016.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from graphrec.utils.validation import check_float, check_int, check_random_state

__all__ = ["make_slow_manifold"]


def make_slow_manifold(
    n_trajectories: int = 128,
    n_steps: int = 30,
    *,
    mu: float = -0.5,
    lam: float = -3.0,
    dt: float = 0.1,
    init_range: float = 2.0,
    return_eigenvalues: bool = False,
    random_state: Any = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Exact trajectories of the slow-manifold system (see module docs), sampled every ``dt``.

    Initial states are uniform on ``[-init_range, init_range]^2``.

    Returns
    -------
    X : ndarray of shape (n_trajectories, n_steps, 2), float64; ``X[i, t]`` is the state at time ``t dt``.
    eigenvalues : ndarray of shape (4,), only if ``return_eigenvalues``: ``exp((0, mu, 2 mu, lam) dt)``,
        the planted eigenvalues of the one-step Koopman operator on ``{1, x1, x1^2, x2 - b x1^2}``.

    Examples
    --------
    >>> X, eig = make_slow_manifold(4, 10, return_eigenvalues=True, random_state=0)
    >>> X.shape, eig.round(3).tolist()
    ((4, 10, 2), [1.0, 0.951, 0.905, 0.741])
    """
    n_trajectories = check_int(n_trajectories, "n_trajectories", low=1)
    n_steps = check_int(n_steps, "n_steps", low=2)
    mu = check_float(mu, "mu")
    lam = check_float(lam, "lam")
    if lam == 2 * mu:
        raise ValueError(f"lam must differ from 2 * mu (the slow manifold x2 = b x1^2 needs b = lam / (lam - 2 mu)), "
                         f"got mu={mu}, lam={lam}")
    dt = check_float(dt, "dt", low=0.0, low_open=True)
    init_range = check_float(init_range, "init_range", low=0.0, low_open=True)
    rng = check_random_state(random_state)
    x0 = rng.uniform(-init_range, init_range, (n_trajectories, 2))
    t = np.arange(n_steps) * dt
    b = lam / (lam - 2 * mu)
    x1 = x0[:, :1] * np.exp(mu * t)
    x2 = b * x1**2 + (x0[:, 1:] - b * x0[:, :1] ** 2) * np.exp(lam * t)
    X = np.stack([x1, x2], 2)
    return (X, np.exp(np.array([0.0, mu, 2 * mu, lam]) * dt)) if return_eigenvalues else X
