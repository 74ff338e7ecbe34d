"""Points drawn from a union of random linear subspaces, the planted truth of subspace clustering.

Each of ``n_subspaces`` subspaces ``S_k`` is spanned by an orthonormal basis ``U_k`` (ambient_dim x
subspace_dim) drawn uniformly (QR of a Gaussian matrix). A point of cluster ``k`` is ``U_k c`` with
``c ~ N(0, I / subspace_dim)`` (unit expected norm), plus isotropic Gaussian noise of standard deviation
``noise / sqrt(ambient_dim)`` per coordinate (expected noise norm ``noise``).

Reference: E. Elhamifar and R. Vidal, "Sparse subspace clustering: algorithm, theory, and
applications", IEEE TPAMI 35(11), 2013 (the union-of-subspaces model).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from graphrec.utils.validation import check_float, check_int, check_random_state

__all__ = ["make_union_of_subspaces"]


def make_union_of_subspaces(
    n_samples: int = 600,
    n_subspaces: int = 3,
    ambient_dim: int = 30,
    subspace_dim: int = 3,
    *,
    noise: float = 0.0,
    return_bases: bool = False,
    random_state: Any = None,
) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample ``n_samples`` points from a union of ``n_subspaces`` random ``subspace_dim``-dimensional
    subspaces of ``R^ambient_dim`` (see module docs); clusters are as equal in size as possible.

    Returns
    -------
    X : ndarray of shape (n_samples, ambient_dim), float64
    labels : ndarray of shape (n_samples,), int64, the subspace of each point
    bases : ndarray of shape (n_subspaces, ambient_dim, subspace_dim), only if ``return_bases``;
        orthonormal columns.

    Examples
    --------
    >>> X, y = make_union_of_subspaces(90, 3, 10, 2, random_state=0)
    >>> X.shape, sorted(set(y.tolist()))
    ((90, 10), [0, 1, 2])
    """
    n_subspaces = check_int(n_subspaces, "n_subspaces", low=1)
    n_samples = check_int(n_samples, "n_samples", low=n_subspaces)
    ambient_dim = check_int(ambient_dim, "ambient_dim", low=1)
    subspace_dim = check_int(subspace_dim, "subspace_dim", low=1, high=ambient_dim)
    noise = check_float(noise, "noise", low=0.0)
    rng = check_random_state(random_state)
    bases = np.stack([np.linalg.qr(rng.standard_normal((ambient_dim, subspace_dim)))[0] for _ in range(n_subspaces)])
    labels = np.arange(n_samples, dtype=np.int64) % n_subspaces
    rng.shuffle(labels)
    coef = rng.standard_normal((n_samples, subspace_dim)) / np.sqrt(subspace_dim)
    X = np.einsum("nds,ns->nd", bases[labels], coef)
    if noise > 0:
        X += rng.standard_normal(X.shape) * (noise / np.sqrt(ambient_dim))
    return (X, labels, bases) if return_bases else (X, labels)
