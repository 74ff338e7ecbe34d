"""Orthogonal matrices: Householder and Cayley parametrisations, Stiefel / Grassmann tangent
projections and retractions, Procrustes, soft orthogonality penalties and spectral-norm control.

Conventions: a Stiefel point ``u`` is ``(..., n, k)`` with ``n >= k`` and ``u^T u = I_k``; a
Grassmann point is the span of such a ``u``. Everything is batched over leading dimensions.

References: A. S. Householder, "Unitary triangularization of a nonsymmetric matrix", J. ACM 5, 1958;
Z. Wen, W. Yin, "A feasible method for optimization with orthogonality constraints", Math. Program.
142, 2013 (Cayley retraction); A. Edelman, T. A. Arias, S. T. Smith, "The geometry of algorithms with
orthogonality constraints", SIAM J. Matrix Anal. Appl. 20(2), 1998 (Grassmann geodesics);
P. H. Schönemann, "A generalized solution of the orthogonal Procrustes problem", Psychometrika 31, 1966;
T. Miyato et al., "Spectral normalization for generative adversarial networks", ICLR 2018.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from graphrec.core._checks import as_tensor
from graphrec.utils.validation import check_float, check_int


def _eye_like(x: torch.Tensor, n: int) -> torch.Tensor:
    return torch.eye(n, dtype=x.dtype, device=x.device)


def _tall(x: Any, name: str) -> torch.Tensor:
    x = as_tensor(x, name, min_ndim=2)
    if x.shape[-2] < x.shape[-1]:
        raise ValueError(f"{name} must be tall (n >= k), got shape {tuple(x.shape)}")
    return x


def orthogonality_error(w: Any) -> torch.Tensor:
    """``||W^T W - I||_F`` (``||W W^T - I||_F`` for wide ``w``); shape ``(...)`` for ``w`` ``(..., n, k)``."""
    w = as_tensor(w, "w", min_ndim=2)
    g = w.mT @ w if w.shape[-2] >= w.shape[-1] else w @ w.mT
    return torch.linalg.matrix_norm(g - _eye_like(w, g.shape[-1]))


def orthogonality_penalty(w: torch.Tensor, lam: float = 0.0) -> torch.Tensor:
    """Soft, differentiable orthogonality penalty ``ReLU(||W^T W - I||_F - lam)^2`` (λ-orthogonality).

    ``lam = 0`` gives the plain squared defect ``||W^T W - I||_F^2``; a positive ``lam`` leaves
    matrices within ``lam`` of orthogonal unpenalised. Shape ``(...)`` for ``w`` ``(..., n, k)``.
    """
    lam = check_float(lam, "lam", low=0.0)
    return torch.relu(orthogonality_error(w) - lam) ** 2


def householder_product(v: Any, k: int | None = None) -> torch.Tensor:
    """First ``k`` columns of ``H_1 H_2 ... H_r``, ``H_i = I - 2 v_i v_i^T / ||v_i||^2`` (``v_i`` = column i of ``v``).

    Parameters
    ----------
    v : Tensor, shape (..., n, r), no zero column
    k : int, default ``n``

    Returns
    -------
    Tensor, shape (..., n, k) with orthonormal columns (a Stiefel point).
    """
    v = as_tensor(v, "v", min_ndim=2)
    n = v.shape[-2]
    k = n if k is None else check_int(k, "k", low=1, high=n)
    norms = torch.linalg.vector_norm(v, dim=-2)
    if bool((norms == 0).any()):
        raise ValueError("v has a zero column; every Householder vector must be non-zero")
    return _householder(v, k)


def _householder(v: torch.Tensor, k: int) -> torch.Tensor:
    """:func:`householder_product` without the checks (no host sync; used inside training loops)."""
    n, r = v.shape[-2], v.shape[-1]
    u = v / torch.linalg.vector_norm(v, dim=-2, keepdim=True)
    q = _eye_like(v, n)[:, :k].expand(*v.shape[:-2], n, k)
    for i in reversed(range(r)):  # apply H_r first so that the product reads H_1 ... H_r
        ui = u[..., :, i : i + 1]
        q = q - 2 * ui @ (ui.mT @ q)
    return q


def cayley(a: Any) -> torch.Tensor:
    """Cayley transform ``(I - S)^{-1} (I + S)`` of the skew part ``S = (A - A^T) / 2`` of square ``a``.

    The result is orthogonal with determinant +1 for every ``a`` ``(..., n, n)``; a skew ``a`` maps
    to itself's Cayley transform exactly.
    """
    a = as_tensor(a, "a", min_ndim=2)
    if a.shape[-1] != a.shape[-2]:
        raise ValueError(f"a must be square, got shape {tuple(a.shape)}")
    s = (a - a.mT) / 2
    eye = _eye_like(a, a.shape[-1])
    return torch.linalg.solve(eye - s, eye + s)


def _stiefel_skew(x: torch.Tensor) -> torch.Tensor:
    """Skew ``(n, n)`` matrix ``[[B - B^T, -C^T], [C, 0]]`` from ``x = [B; C]`` ``(n, k)``."""
    n, k = x.shape[-2], x.shape[-1]
    s = x.new_zeros(*x.shape[:-2], n, n)
    b = x[..., :k, :]
    s[..., :k, :k] = b - b.mT
    s[..., k:, :k] = x[..., k:, :]
    s[..., :k, k:] = -x[..., k:, :].mT
    return s


class HouseholderOrthogonal(nn.Module):
    """Parametrisation ``X (n, k) -> householder_product(X, k)`` for ``torch.nn.utils.parametrize``.

    The parameter keeps the weight's shape; a wide weight ``(k, n)`` is handled by transposing.
    Every value of the parameter maps to an exactly orthonormal matrix, so plain optimisers keep
    the weight orthogonal to rounding error for any number of steps.

    >>> from torch.nn.utils import parametrize
    >>> layer = nn.Linear(3, 5)
    >>> _ = parametrize.register_parametrization(layer, "weight", HouseholderOrthogonal())
    >>> bool(orthogonality_error(layer.weight.detach()) < 1e-5)
    True
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide = x.shape[-2] < x.shape[-1]
        x = x.mT if wide else x
        q = _householder(x, x.shape[-1])
        return q.mT if wide else q


class CayleyOrthogonal(nn.Module):
    """Parametrisation ``X = [B; C] (n, k) -> Cayley([[B - B^T, -C^T], [C, 0]])[:, :k]`` (wide: transposed)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide = x.shape[-2] < x.shape[-1]
        x = x.mT if wide else x
        n, k = x.shape[-2], x.shape[-1]
        eye = _eye_like(x, n)
        s = _stiefel_skew(x)
        q = torch.linalg.solve(eye - s, (eye + s)[..., :, :k])
        return q.mT if wide else q


def stiefel_tangent(u: Any, g: Any) -> torch.Tensor:
    """Projection of ``g`` onto the tangent space of the Stiefel manifold at ``u``: ``g - u sym(u^T g)``."""
    u = _tall(u, "u")
    g = as_tensor(g, "g").to(u)
    if g.shape != u.shape:
        raise ValueError(f"g must have the shape of u {tuple(u.shape)}, got {tuple(g.shape)}")
    ug = u.mT @ g
    return g - u @ (ug + ug.mT) / 2


def qr_retraction(u: Any, xi: Any) -> torch.Tensor:
    """Stiefel retraction ``qf(u + xi)``: the Q factor with a positive diagonal of R, shape of ``u``."""
    u = _tall(u, "u")
    xi = as_tensor(xi, "xi").to(u)
    q, r = torch.linalg.qr(u + xi)
    d = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
    return q * torch.where(d == 0, torch.ones_like(d), d).unsqueeze(-2)


def cayley_retraction(u: Any, xi: Any, t: float = 1.0) -> torch.Tensor:
    """Wen-Yin Cayley retraction ``(I - t/2 W)^{-1} (I + t/2 W) u``, ``W = P xi u^T - u xi^T P``, ``P = I - u u^T / 2``.

    Stays on the Stiefel manifold exactly, and its velocity at ``t = 0`` is ``xi`` for a tangent ``xi``.
    """
    u = _tall(u, "u")
    xi = as_tensor(xi, "xi").to(u)
    t = check_float(t, "t")
    xi_hat = xi - u @ (u.mT @ xi) / 2
    w = xi_hat @ u.mT - u @ xi_hat.mT
    eye = _eye_like(u, u.shape[-2])
    return torch.linalg.solve(eye - (t / 2) * w, u + (t / 2) * (w @ u))


def grassmann_tangent(u: Any, g: Any) -> torch.Tensor:
    """Horizontal projection ``(I - u u^T) g`` of ``g`` at the Grassmann point ``span(u)``."""
    u = _tall(u, "u")
    g = as_tensor(g, "g").to(u)
    if g.shape != u.shape:
        raise ValueError(f"g must have the shape of u {tuple(u.shape)}, got {tuple(g.shape)}")
    return g - u @ (u.mT @ g)


def grassmann_exp(u: Any, xi: Any, t: float = 1.0) -> torch.Tensor:
    """Grassmann geodesic ``u V cos(tΣ) V^T + U sin(tΣ) V^T`` from ``span(u)`` along horizontal ``xi = U Σ V^T``.

    The principal angles between ``span(u)`` and the result are ``t * Σ`` (for ``t * σ_max <= π/2``).
    The output is re-orthonormalised (QR) against rounding drift; shape of ``u``.
    """
    u = _tall(u, "u")
    xi = grassmann_tangent(u, xi)
    t = check_float(t, "t")
    uu, s, vt = torch.linalg.svd(xi, full_matrices=False)
    y = (u @ vt.mT) * torch.cos(t * s).unsqueeze(-2) @ vt + uu * torch.sin(t * s).unsqueeze(-2) @ vt
    return qr_retraction(y, torch.zeros_like(y))


def procrustes(a: Any, b: Any) -> torch.Tensor:
    """Orthogonal ``R`` ``(..., p, p)`` minimising ``||a R - b||_F`` for ``a``, ``b`` ``(..., n, p)``: ``R = U V^T``, ``a^T b = U Σ V^T``."""
    a = as_tensor(a, "a", min_ndim=2)
    b = as_tensor(b, "b", min_ndim=2).to(a)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    u, _, vt = torch.linalg.svd(a.mT @ b)
    return u @ vt


def spectral_norm(w: Any, n_iter: int | None = None, *, random_state: Any = None) -> torch.Tensor:
    """Largest singular value of ``w`` ``(..., m, n)``; exact (``n_iter=None``) or by ``n_iter`` power steps.

    Power iteration gives a lower bound that converges from below at the rate ``(σ_2/σ_1)^{2 n_iter}``.
    """
    w = as_tensor(w, "w", min_ndim=2)
    if n_iter is None:
        return torch.linalg.matrix_norm(w, ord=2)
    from graphrec.utils.validation import torch_generator

    n_iter = check_int(n_iter, "n_iter", low=1)
    gen = torch_generator(random_state, "cpu")
    v = torch.randn(*w.shape[:-2], w.shape[-1], 1, generator=gen, dtype=w.dtype).to(w.device)
    for _ in range(n_iter):
        v = w.mT @ (w @ v)
        v = v / torch.linalg.vector_norm(v, dim=-2, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
    return torch.linalg.vector_norm(w @ v, dim=(-2, -1))


def project_spectral_sphere(w: Any, radius: float = 1.0) -> torch.Tensor:
    """``radius * w / ||w||_2``: rescale onto the spectral-norm sphere ``{H : ||H||_2 = radius}`` (sHC)."""
    radius = check_float(radius, "radius", low=0.0, low_open=True)
    w = as_tensor(w, "w", min_ndim=2)
    sigma = torch.linalg.matrix_norm(w, ord=2)
    if bool((sigma == 0).any()):
        raise ValueError("w has a zero matrix, which cannot be rescaled onto the spectral sphere")
    return w * (radius / sigma)[..., None, None]


def clip_spectral_norm(w: Any, max_norm: float = 1.0) -> torch.Tensor:
    """Nearest matrix (Frobenius) with ``||W||_2 <= max_norm``: singular values clamped at ``max_norm``."""
    max_norm = check_float(max_norm, "max_norm", low=0.0)
    w = as_tensor(w, "w", min_ndim=2)
    u, s, vt = torch.linalg.svd(w, full_matrices=False)
    return (u * s.clamp(max=max_norm).unsqueeze(-2)) @ vt
