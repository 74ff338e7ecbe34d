"""Randomised truncated SVD with re-orthonormalised power iteration.

Reference: N. Halko, P.-G. Martinsson, J. A. Tropp, "Finding structure with randomness:
probabilistic algorithms for constructing approximate matrix decompositions", SIAM Review 53(2),
2011 (Algorithms 4.4 and 5.1).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.core.sparse import to_torch_sparse
from graphrec.utils.validation import check_device, torch_generator

MatMul = Callable[[torch.Tensor], torch.Tensor]


def _as_operator(a: Any, device: torch.device, dtype: torch.dtype) -> tuple[MatMul, MatMul, tuple[int, int]]:
    """``(a @ ., a.T @ ., shape)`` for a dense array/tensor or a scipy sparse matrix."""
    if sp.issparse(a):
        if not np.all(np.isfinite(a.data)):
            raise ValueError("a contains NaN or infinite values; expected finite numbers")
        t = to_torch_sparse(a, device, dtype)
        tt = t.t().coalesce()
        return (lambda x: t @ x), (lambda y: tt @ y), tuple(a.shape)
    t = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).to(device=device, dtype=dtype)
    if t.ndim != 2:
        raise ValueError(f"a must be a 2-d matrix, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError("a contains NaN or infinite values; expected finite numbers")
    return (lambda x: t @ x), (lambda y: t.T @ y), tuple(t.shape)


def randomized_svd(
    a: Any = None,
    n_components: int = 10,
    *,
    matmat: MatMul | None = None,
    rmatmat: MatMul | None = None,
    shape: tuple[int, int] | None = None,
    oversample: int = 10,
    n_iter: int = 4,
    random_state: Any = None,
    device: Any = "cpu",
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top ``n_components`` singular triplets of ``a`` (m x n) by a randomised range finder.

    ``a`` is a dense array/tensor or a scipy sparse matrix; alternatively pass the operator as
    ``matmat(X) = a @ X`` (X: n x r), ``rmatmat(Y) = a.T @ Y`` (Y: m x r) and ``shape``, so that
    ``a`` is never formed. The power iteration is re-orthonormalised (QR) at every half-step,
    which keeps it accurate for any ``n_iter`` instead of collapsing onto the top singular vector.

    Returns
    -------
    u : Tensor, shape (m, n_components)
    s : Tensor, shape (n_components,), descending
    vt : Tensor, shape (n_components, n)
    """
    dev = check_device(device)
    if a is not None:
        if matmat is not None or rmatmat is not None:
            raise ValueError("pass either a or (matmat, rmatmat, shape), not both")
        matmat, rmatmat, shape = _as_operator(a, dev, dtype)
    elif matmat is None or rmatmat is None or shape is None:
        raise ValueError("without a, matmat, rmatmat and shape are all required")
    m, n = shape
    if not isinstance(n_components, int) or n_components < 1:
        raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
    if n_components > min(m, n):
        raise ValueError(f"n_components={n_components} exceeds min(shape)={min(m, n)}")
    if not isinstance(n_iter, int) or n_iter < 0:
        raise ValueError(f"n_iter must be a non-negative integer, got {n_iter!r}")
    if not isinstance(oversample, int) or oversample < 0:
        raise ValueError(f"oversample must be a non-negative integer, got {oversample!r}")
    r = min(n_components + oversample, min(m, n))
    gen = torch_generator(random_state, "cpu")
    omega = torch.randn(n, r, generator=gen, dtype=dtype).to(dev)
    q, _ = torch.linalg.qr(matmat(omega))
    for _ in range(n_iter):
        w, _ = torch.linalg.qr(rmatmat(q))
        q, _ = torch.linalg.qr(matmat(w))
    b = rmatmat(q).T  # (r, n) = q.T @ a
    ub, s, vt = torch.linalg.svd(b, full_matrices=False)
    u = q @ ub
    u, s, vt = u[:, :n_components], s[:n_components], vt[:n_components]
    # Deterministic signs: the largest-magnitude entry of each left vector is positive.
    idx = u.abs().argmax(dim=0)
    signs = torch.sign(u[idx, torch.arange(n_components, device=u.device)])
    signs[signs == 0] = 1
    return u * signs, s, vt * signs[:, None]
