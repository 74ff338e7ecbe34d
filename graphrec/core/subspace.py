"""Subspaces: exact truncated SVD, energy-based rank, orthonormal bases, projection and its
residual, principal angles and the projection distance.

Conventions: a data matrix holds one sample per row, ``x`` of shape ``(..., n, d)``; a subspace of
``R^d`` is given by a basis with orthonormal columns, ``basis`` of shape ``(d, k)``.

References: G. H. Golub, C. F. Van Loan, *Matrix Computations*, 4th ed., 2013, §6.4 (principal
angles); A. V. Knyazev, M. E. Argentati, "Principal angles between subspaces in an A-based scalar
product", SIAM J. Sci. Comput. 23(6), 2002 (the sine-based small-angle formula).
"""
from __future__ import annotations

from typing import Any

import torch

from graphrec.core._checks import as_tensor
from graphrec.utils.validation import check_float, check_int


def energy_rank(s: Any, energy: float = 0.9, *, total: Any = None) -> int | torch.Tensor:
    """Smallest ``k`` whose top-``k`` singular values hold at least ``energy`` of ``sum(s**2)``.

    Parameters
    ----------
    s : Tensor, shape (r,) or (..., r)
        Singular values (any order; they are sorted here).
    energy : float in (0, 1]
    total : float or Tensor of shape (...), optional
        The full energy ``||A||_F^2`` when ``s`` holds only the top singular values (e.g. from
        :func:`graphrec.core.randomized_svd`); if the given ``s`` do not reach ``energy * total``,
        ``r`` is returned and a larger ``n_components`` is needed.

    Returns
    -------
    int for 1-d ``s``, else a LongTensor of shape ``(...)``. All-zero ``s`` gives rank 0.

    >>> energy_rank(torch.tensor([3.0, 4.0, 0.0]), 0.6)
    1
    """
    energy = check_float(energy, "energy", low=0.0, high=1.0, low_open=True)
    s = as_tensor(s, "s", min_ndim=1)
    if bool((s < 0).any()):
        raise ValueError("s must hold non-negative singular values")
    e = torch.sort(s, dim=-1, descending=True).values.pow(2)
    if total is None:
        total = e.sum(-1, keepdim=True)
    else:
        total = torch.as_tensor(total, dtype=s.dtype, device=s.device).unsqueeze(-1)
        if bool((total < e.sum(-1, keepdim=True) * (1 - 1e-12)).any()):
            raise ValueError("total must be at least sum(s**2), the energy of the given singular values")
    frac = e.cumsum(-1) / torch.where(total > 0, total, torch.ones_like(total))
    # A tiny slack so that energy=1.0 is not missed by rounding in the cumulative sum.
    k = ((frac < energy - 64 * torch.finfo(s.dtype).eps).sum(-1) + 1).clamp(max=s.shape[-1])
    k = torch.where(total.squeeze(-1) > 0, k, torch.zeros_like(k))
    return int(k) if s.ndim == 1 else k


def numerical_rank(a: Any, rtol: float | None = None) -> int:
    """Number of singular values of the 2-d ``a`` above ``rtol * s_max`` (default ``max(m, n) * eps``)."""
    a = as_tensor(a, "a", ndim=2)
    s = torch.linalg.svdvals(a)
    tol = (max(a.shape) * torch.finfo(a.dtype).eps) if rtol is None else check_float(rtol, "rtol", low=0.0)
    return int((s > tol * s.max()).sum()) if s.numel() and float(s.max()) > 0 else 0


def truncated_svd(
    a: Any, rank: int | None = None, *, energy: float | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact SVD of ``a`` (shape ``(..., m, n)``) truncated to ``rank`` or to the energy rank.

    Pass exactly one of ``rank`` (``1 <= rank <= min(m, n)``) or ``energy`` (in (0, 1]; for batched
    input the largest energy rank over the batch is used). For large or sparse matrices use
    :func:`graphrec.core.randomized_svd` instead.

    Returns
    -------
    u : Tensor, shape (..., m, k)
    s : Tensor, shape (..., k), descending
    vt : Tensor, shape (..., k, n)
    """
    a = as_tensor(a, "a", min_ndim=2)
    if (rank is None) == (energy is None):
        raise ValueError("pass exactly one of rank or energy")
    u, s, vt = torch.linalg.svd(a, full_matrices=False)
    if rank is not None:
        rank = check_int(rank, "rank", low=1)
        if rank > s.shape[-1]:
            raise ValueError(f"rank={rank} exceeds min(m, n)={s.shape[-1]} of a with shape {tuple(a.shape)}")
        k = rank
    else:
        k = max(int(torch.as_tensor(energy_rank(s, energy)).max()), 1)
    return u[..., :k], s[..., :k], vt[..., :k, :]


def orthonormal_basis(a: Any, rtol: float | None = None) -> torch.Tensor:
    """Orthonormal basis ``(m, r)`` of the column span of the 2-d ``a`` (``m x n``), ``r`` its numerical rank.

    Rank-deficient input is handled: directions with singular value ``<= rtol * s_max`` are
    dropped (default ``rtol = max(m, n) * eps``), like ``scipy.linalg.orth``.
    """
    a = as_tensor(a, "a", ndim=2)
    u, s, _ = torch.linalg.svd(a, full_matrices=False)
    tol = (max(a.shape) * torch.finfo(a.dtype).eps) if rtol is None else check_float(rtol, "rtol", low=0.0)
    r = int((s > tol * s[0]).sum()) if float(s[0]) > 0 else 0
    return u[:, :r]


def _check_basis(x: torch.Tensor, basis: Any) -> torch.Tensor:
    basis = as_tensor(basis, "basis", ndim=2, allow_empty=True).to(device=x.device, dtype=x.dtype)
    if basis.shape[0] != x.shape[-1]:
        raise ValueError(f"basis has {basis.shape[0]} rows but x has {x.shape[-1]} features (last dim)")
    return basis


def project(x: Any, basis: Any) -> torch.Tensor:
    """Orthogonal projection of the rows of ``x`` onto ``span(basis)``: ``x Q Q^T``.

    Parameters
    ----------
    x : Tensor, shape (..., d)
    basis : Tensor, shape (d, k), orthonormal columns (see :func:`orthonormal_basis`)

    Returns
    -------
    Tensor, shape (..., d)
    """
    x = as_tensor(x, "x", min_ndim=1)
    q = _check_basis(x, basis)
    return (x @ q) @ q.T


def residual(x: Any, basis: Any) -> torch.Tensor:
    """Component of the rows of ``x`` orthogonal to ``span(basis)``: ``x (I - Q Q^T)``; shape of ``x``."""
    x = as_tensor(x, "x", min_ndim=1)
    q = _check_basis(x, basis)
    return x - (x @ q) @ q.T


def principal_angles(a: Any, b: Any) -> torch.Tensor:
    """Principal angles (radians, descending) between ``span(a)`` and ``span(b)``.

    Same convention as :func:`scipy.linalg.subspace_angles`: ``a`` is ``(m, p)``, ``b`` is
    ``(m, q)``, neither needs orthonormal columns, and ``min(rank a, rank b)`` angles are returned
    (rank-deficient columns are dropped first). Small angles use the sine formula so that they stay
    accurate where ``arccos`` of the cosines would lose half the digits.

    >>> e = torch.eye(3, dtype=torch.float64)
    >>> principal_angles(e[:, :2], e[:, 1:]).tolist()  # the planes share e2, are orthogonal otherwise
    [1.5707963267948966, 0.0]
    """
    a = as_tensor(a, "a", ndim=2)
    b = as_tensor(b, "b", ndim=2).to(device=a.device, dtype=a.dtype)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must have the same number of rows, got {a.shape[0]} and {b.shape[0]}")
    qa, qb = orthonormal_basis(a), orthonormal_basis(b)
    if qa.shape[1] < qb.shape[1]:
        qa, qb = qb, qa
    if qb.shape[1] == 0:
        return a.new_zeros(0)
    cos = torch.linalg.svdvals(qa.T @ qb).clamp(max=1.0)  # descending cosines -> ascending angles
    sin = torch.linalg.svdvals(qb - qa @ (qa.T @ qb)).clamp(max=1.0)  # descending sines
    angles_small = torch.arcsin(torch.flip(sin, (0,)))  # ascending
    angles = torch.where(cos**2 >= 0.5, angles_small, torch.arccos(cos))
    return torch.flip(angles, (0,))


def subspace_distance(a: Any, b: Any) -> torch.Tensor:
    """Projection distance ``||Q_a Q_a^T - Q_b Q_b^T||_F`` between the column spans of ``a`` and ``b`` (0-d tensor)."""
    a = as_tensor(a, "a", ndim=2)
    b = as_tensor(b, "b", ndim=2).to(device=a.device, dtype=a.dtype)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must have the same number of rows, got {a.shape[0]} and {b.shape[0]}")
    qa, qb = orthonormal_basis(a), orthonormal_basis(b)
    return torch.linalg.matrix_norm(qa @ qa.T - qb @ qb.T)
