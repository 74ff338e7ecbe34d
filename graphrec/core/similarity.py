"""Representation similarity: centred kernel alignment (CKA) and canonical correlation analysis (CCA).

Inputs are sample-by-feature matrices ``x`` ``(n, p)`` and ``y`` ``(n, q)`` with the same samples in
the same row order.

References: S. Kornblith, M. Norouzi, H. Lee, G. Hinton, "Similarity of neural network
representations revisited", ICML 2019 (CKA); H. Hotelling, "Relations between two sets of
variates", Biometrika 28, 1936, computed as in A. Björck, G. H. Golub, "Numerical methods for
computing angles between linear subspaces", Math. Comp. 27, 1973 (SVD of whitened data).
"""
from __future__ import annotations

from typing import Any

import torch

from graphrec.core._checks import as_tensor
from graphrec.utils.validation import check_float, check_int


def _pair(x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
    x = as_tensor(x, "x", ndim=2)
    y = as_tensor(y, "y", ndim=2).to(device=x.device, dtype=x.dtype)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same number of rows (samples), got {x.shape[0]} and {y.shape[0]}")
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 samples, got {x.shape[0]}")
    return x, y


def linear_cka(x: Any, y: Any) -> torch.Tensor:
    """Linear CKA ``||Y_c^T X_c||_F^2 / (||X_c^T X_c||_F ||Y_c^T Y_c||_F)`` in [0, 1] (0-d tensor).

    Invariant to orthogonal transforms and isotropic scaling of either side; ``x`` ``(n, p)``,
    ``y`` ``(n, q)``. Equals :func:`kernel_cka` on the linear kernels ``x x^T`` and ``y y^T``.
    A constant representation (zero after centring) raises ``ValueError``.

    >>> x = torch.randn(20, 4, dtype=torch.float64)
    >>> round(float(linear_cka(x, 3 * x)), 12)
    1.0
    """
    x, y = _pair(x, y)
    xc, yc = x - x.mean(0), y - y.mean(0)
    nx, ny = torch.linalg.matrix_norm(xc.T @ xc), torch.linalg.matrix_norm(yc.T @ yc)
    if float(nx) == 0 or float(ny) == 0:
        raise ValueError("linear_cka is undefined for a constant representation (all rows equal)")
    return torch.linalg.matrix_norm(yc.T @ xc) ** 2 / (nx * ny)


def hsic(k: Any, l: Any) -> torch.Tensor:  # noqa: E741 - the paper's symbol
    """Biased HSIC estimate ``tr(K H L H) / (n - 1)^2`` of two ``(n, n)`` kernel matrices, ``H = I - 11^T/n``."""
    k, l = _kernels(k, l)  # noqa: E741
    return _hsic(k, l)


def _kernels(k: Any, l: Any) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: E741
    k = as_tensor(k, "k", ndim=2)
    l = as_tensor(l, "l", ndim=2).to(device=k.device, dtype=k.dtype)  # noqa: E741
    if k.shape[0] != k.shape[1] or k.shape != l.shape:
        raise ValueError(f"k and l must be square kernel matrices of the same size, got {tuple(k.shape)} and {tuple(l.shape)}")
    return k, l


def _hsic(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:  # noqa: E741
    n = k.shape[0]
    kc = k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()  # H K H
    return (kc * l).sum() / (n - 1) ** 2  # tr(HKH L) = sum(HKH * L) for symmetric L


def kernel_cka(k: Any, l: Any) -> torch.Tensor:  # noqa: E741
    """CKA of two ``(n, n)`` symmetric kernel matrices: ``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``."""
    k, l = _kernels(k, l)  # noqa: E741
    denom = torch.sqrt(_hsic(k, k) * _hsic(l, l))
    if float(denom) == 0:
        raise ValueError("kernel_cka is undefined when a kernel is constant after centring")
    return _hsic(k, l) / denom


def _whitener(xc: torch.Tensor, reg: float, rtol: float) -> torch.Tensor:
    """``W`` ``(p, r)`` with ``W^T (C + reg I) W = I`` on the numerical range of ``xc`` (``C = xc^T xc / (n-1)``)."""
    _, s, vt = torch.linalg.svd(xc, full_matrices=False)
    keep = s > rtol * s[0] if float(s[0]) > 0 else torch.zeros_like(s, dtype=torch.bool)
    if not bool(keep.any()):
        raise ValueError("cca is undefined for a constant view (all rows equal)")
    var = s[keep] ** 2 / (xc.shape[0] - 1) + reg
    return vt[keep].T / torch.sqrt(var)


def cca(
    x: Any, y: Any, n_components: int, *, reg: float = 0.0, rtol: float | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Canonical correlation analysis of ``x`` ``(n, p)`` and ``y`` ``(n, q)``.

    Solves ``max corr(x_c a, y_c b)`` by the SVD of the whitened cross-covariance
    ``W_x^T C_xy W_y``; ``reg`` adds ``reg * I`` to both covariances (ridge CCA). Rank-deficient
    views are whitened on their numerical range only (singular values ``<= rtol * s_max``,
    default ``max(n, p) * eps``, are dropped), so collinear columns do not blow up.

    Returns
    -------
    correlations : Tensor, shape (n_components,), descending, in [0, 1]
    x_weights : Tensor, shape (p, n_components); canonical variates are ``(x - x.mean(0)) @ x_weights``
    y_weights : Tensor, shape (q, n_components)
        Variates have unit variance (``ddof=1``, with ``reg=0``) and are mutually uncorrelated.
    """
    x, y = _pair(x, y)
    reg = check_float(reg, "reg", low=0.0)
    n_components = check_int(n_components, "n_components", low=1)
    eps = torch.finfo(x.dtype).eps
    xc, yc = x - x.mean(0), y - y.mean(0)
    wx = _whitener(xc, reg, max(x.shape) * eps if rtol is None else check_float(rtol, "rtol", low=0.0))
    wy = _whitener(yc, reg, max(y.shape) * eps if rtol is None else rtol)
    if n_components > min(wx.shape[1], wy.shape[1]):
        raise ValueError(
            f"n_components={n_components} exceeds min(rank x, rank y)={min(wx.shape[1], wy.shape[1])}"
        )
    m = (xc @ wx).T @ (yc @ wy) / (x.shape[0] - 1)
    u, rho, vt = torch.linalg.svd(m, full_matrices=False)
    k = n_components
    return rho[:k].clamp(max=1.0), wx @ u[:, :k], wy @ vt[:k].T
