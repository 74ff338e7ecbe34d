"""Interaction rank and separable structure of sequence-mixing maps: attention vs state-space models.

A sequence map ``y_i = Σ_j W_ij x_j`` has mixing operators ``W_ij`` ``(p, m)`` stored as a tensor
``W`` ``(n, n, p, m)``. Two structural ranks tell attention and state-space maps apart:

* **interaction rank** (Ghodsi): ``dim span{W_ij}``, the rank of the ``(n·n, p·m)`` matrix whose rows
  are ``vec W_ij``. ``H``-head attention ``W_ij = Σ_h α^h_ij V_h`` has interaction rank ``<= H``. A
  linear SSM ``h_i = A h_{i-1} + B x_i, y_i = C h_i`` has Toeplitz operators ``W_ij = K_{i-j}`` with
  lag operators ``K_ℓ = C A^ℓ B``, and interaction rank ``k = rank[vec K_0 ... vec K_{n-1}]
  <= min(N, p m, n)`` (Cayley-Hamilton). ``k`` heads are necessary and sufficient to realise it:
  with ``K_ℓ = Σ_h c_{hℓ} M_h`` take ``V_h = M_h`` and ``α^h_ij = c_{h, i-j} 1[j <= i]``
  (:func:`realize_with_heads`; fewer heads give the Eckart-Young best fit).
* **gradient highway**: ``∂y_i / ∂x_{i-ℓ} = K_ℓ`` for an SSM, so its spectral norm decays like
  ``ρ(A)^ℓ`` for a stable ``A`` (:func:`lag_gradient_norms`), whereas an attention head that puts its
  weight on a distant token passes ``α_ij V`` whatever the distance.
* **semiseparable rank**: the largest rank of a strictly-lower block ``W[k:, :k]`` (rows ``i >= k``,
  columns ``j < k``, operators flattened). Everything the past sends to the future passes through
  the state, so an SSM with state size ``N`` has semiseparable rank ``<= N``; causal linear
  attention with key dimension ``d_k`` has ``<= d_k``; softmax attention's blocks are generically
  full rank (``min(k, n - k)`` for scalar channels).

References
----------
A. Ghodsi. "How many heads make an SSM? A unified framework for attention and state space models",
arXiv:2512.15115, 2025. T. Dao, A. Gu. "Transformers are SSMs: generalized models and efficient
algorithms through structured state space duality", ICML 2024 (semiseparable matrices).
"""
from __future__ import annotations

from typing import Any

import torch

from graphrec.core._checks import as_tensor
from graphrec.utils.validation import check_choice, check_float, check_int

__all__ = [
    "ssm_lag_operators",
    "ssm_mixing_tensor",
    "ssm_apply",
    "attention_scores",
    "multihead_mixing_tensor",
    "mixing_apply",
    "interaction_spectrum",
    "interaction_rank",
    "heads_needed",
    "realize_with_heads",
    "semiseparable_rank",
    "lag_gradient_norms",
]


def _check_ssm(a: Any, b: Any, c: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    a = as_tensor(a, "A", ndim=2)
    b = as_tensor(b, "B", ndim=2).to(device=a.device, dtype=a.dtype)
    c = as_tensor(c, "C", ndim=2).to(device=a.device, dtype=a.dtype)
    n_state = a.shape[0]
    if a.shape[1] != n_state:
        raise ValueError(f"A must be square (N, N), got shape {tuple(a.shape)}")
    if b.shape[0] != n_state:
        raise ValueError(f"B must have N={n_state} rows (N, m), got shape {tuple(b.shape)}")
    if c.shape[1] != n_state:
        raise ValueError(f"C must have N={n_state} columns (p, N), got shape {tuple(c.shape)}")
    return a, b, c


def ssm_lag_operators(a: Any, b: Any, c: Any, n: int) -> torch.Tensor:
    """Lag operators ``K_ℓ = C A^ℓ B`` for ``ℓ = 0 .. n-1``: shape ``(n, p, m)``.

    ``a`` ``(N, N)``, ``b`` ``(N, m)``, ``c`` ``(p, N)``.

    >>> ssm_lag_operators([[0.5]], [[1.0]], [[2.0]], 3).flatten().tolist()
    [2.0, 1.0, 0.5]
    """
    a, b, c = _check_ssm(a, b, c)
    n = check_int(n, "n", low=1)
    out, state = [], b
    for _ in range(n):
        out.append(c @ state)
        state = a @ state
    return torch.stack(out)


def _toeplitz(kernels: torch.Tensor) -> torch.Tensor:
    n = kernels.shape[0]
    i = torch.arange(n, device=kernels.device)
    lag = i[:, None] - i[None, :]
    w = kernels[lag.clamp_min(0)]
    return w * (lag >= 0)[:, :, None, None].to(kernels.dtype)


def ssm_mixing_tensor(a: Any, b: Any, c: Any, n: int) -> torch.Tensor:
    """Mixing operators ``W_ij = C A^{i-j} B`` for ``j <= i`` (else 0) of a linear SSM: shape ``(n, n, p, m)``."""
    return _toeplitz(ssm_lag_operators(a, b, c, n))


def ssm_apply(a: Any, b: Any, c: Any, x: Any) -> torch.Tensor:
    """Run ``h_i = A h_{i-1} + B x_i``, ``y_i = C h_i`` (``h_{-1} = 0``) on ``x`` ``(n, m)``: returns ``(n, p)``."""
    a, b, c = _check_ssm(a, b, c)
    x = as_tensor(x, "x", ndim=2).to(device=a.device, dtype=a.dtype)
    if x.shape[1] != b.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels, B expects m={b.shape[1]}")
    h = torch.zeros(a.shape[0], dtype=a.dtype, device=a.device)
    ys = []
    for xi in x:
        h = a @ h + b @ xi
        ys.append(c @ h)
    return torch.stack(ys)


def attention_scores(x: Any, w_q: Any, w_k: Any, *, kind: str = "softmax", causal: bool = True) -> torch.Tensor:
    """Token-mixing matrix ``α`` ``(n, n)`` of one attention head on ``x`` ``(n, m)``.

    ``kind="softmax"``: ``α = softmax(Q K^T / sqrt(d_k))`` (row-wise, over ``j <= i`` when causal);
    ``kind="linear"``: ``α = Q K^T`` (masked to ``j <= i`` when causal). ``Q = x w_q``,
    ``K = x w_k`` with ``w_q``, ``w_k`` ``(m, d_k)``.
    """
    x = as_tensor(x, "x", ndim=2)
    w_q = as_tensor(w_q, "w_q", ndim=2).to(device=x.device, dtype=x.dtype)
    w_k = as_tensor(w_k, "w_k", ndim=2).to(device=x.device, dtype=x.dtype)
    check_choice(kind, "kind", ("softmax", "linear"))
    if w_q.shape != w_k.shape or w_q.shape[0] != x.shape[1]:
        raise ValueError(
            f"w_q and w_k must both be (m={x.shape[1]}, d_k), got {tuple(w_q.shape)} and {tuple(w_k.shape)}"
        )
    logits = (x @ w_q) @ (x @ w_k).T
    n = x.shape[0]
    mask = torch.ones(n, n, dtype=torch.bool, device=x.device).tril() if causal else None
    if kind == "linear":
        return logits if mask is None else logits * mask
    logits = logits / w_q.shape[1] ** 0.5
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    return torch.softmax(logits, dim=1)


def multihead_mixing_tensor(scores: Any, values: Any) -> torch.Tensor:
    """``W_ij = Σ_h α^h_ij V_h`` from scores ``(H, n, n)`` and value maps ``(H, p, m)``: shape ``(n, n, p, m)``."""
    s = as_tensor(scores, "scores", ndim=3)
    v = as_tensor(values, "values", ndim=3).to(device=s.device, dtype=s.dtype)
    if s.shape[0] != v.shape[0] or s.shape[1] != s.shape[2]:
        raise ValueError(
            f"scores must be (H, n, n) and values (H, p, m) with the same H, got {tuple(s.shape)} and {tuple(v.shape)}"
        )
    return torch.einsum("hij,hpm->ijpm", s, v)


def mixing_apply(w: Any, x: Any) -> torch.Tensor:
    """``y_i = Σ_j W_ij x_j`` for ``W`` ``(n, n, p, m)`` and ``x`` ``(n, m)``: returns ``(n, p)``."""
    w = as_tensor(w, "W", ndim=4)
    x = as_tensor(x, "x", ndim=2).to(device=w.device, dtype=w.dtype)
    if x.shape != (w.shape[1], w.shape[3]):
        raise ValueError(f"x must be (n={w.shape[1]}, m={w.shape[3]}), got {tuple(x.shape)}")
    return torch.einsum("ijpm,jm->ip", w, x)


def _operator_rows(w: Any) -> torch.Tensor:
    w = as_tensor(w, "W", min_ndim=3)
    if w.ndim == 3:  # lag kernels (L, p, m)
        return w.reshape(w.shape[0], -1)
    if w.ndim == 4:
        return w.reshape(w.shape[0] * w.shape[1], -1)
    raise ValueError(f"W must be (n, n, p, m) mixing operators or (L, p, m) lag operators, got shape {tuple(w.shape)}")


def interaction_spectrum(w: Any) -> torch.Tensor:
    """Singular values of the matrix of flattened operators (``W`` ``(n, n, p, m)`` or lag kernels ``(L, p, m)``)."""
    return torch.linalg.svdvals(_operator_rows(w))


def _rank(s: torch.Tensor, size: int, rtol: float | None) -> int:
    if s.numel() == 0 or float(s.max()) == 0:
        return 0
    tol = size * torch.finfo(s.dtype).eps if rtol is None else check_float(rtol, "rtol", low=0.0)
    return int((s > tol * s.max()).sum())


def interaction_rank(w: Any, rtol: float | None = None) -> int:
    """``dim span{W_ij}``: numerical rank of the flattened operators (singular values above ``rtol * s_max``).

    ``w`` is a mixing tensor ``(n, n, p, m)`` or lag kernels ``(L, p, m)``; default
    ``rtol = max(rows, p m) * eps``.

    >>> interaction_rank(ssm_mixing_tensor(torch.eye(2), torch.eye(2), torch.eye(2), 5))
    1
    """
    rows = _operator_rows(w)
    return _rank(torch.linalg.svdvals(rows), max(rows.shape), rtol)


def heads_needed(a: Any, b: Any, c: Any, n: int, rtol: float | None = None) -> int:
    """Number of attention heads needed to realise the SSM ``(A, B, C)`` on length-``n`` sequences exactly."""
    return interaction_rank(ssm_lag_operators(a, b, c, n), rtol)


def realize_with_heads(kernels: Any, n_heads: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention heads realising the causal Toeplitz map with lag operators ``kernels`` ``(n, p, m)``.

    With ``K = U Σ V^T`` the SVD of the ``(n, p m)`` lag matrix: ``V_h = reshape(V[:, h])`` and
    ``α^h_ij = U[i-j, h] Σ_h`` for ``j <= i``. ``n_heads`` defaults to the interaction rank (exact
    realisation); fewer heads give the best fit in the Frobenius norm over lags, with residual
    ``sqrt(Σ_{h >= n_heads} σ_h²)``.

    Returns
    -------
    values : Tensor, shape (H, p, m)
    scores : Tensor, shape (H, n, n), lower triangular Toeplitz
    """
    k = as_tensor(kernels, "kernels", ndim=3)
    n, p, m = k.shape
    u, s, vt = torch.linalg.svd(k.reshape(n, p * m), full_matrices=False)
    if n_heads is None:
        n_heads = max(_rank(s, max(n, p * m), None), 1)
    h = check_int(n_heads, "n_heads", low=1, high=s.shape[0])
    coef = (u[:, :h] * s[:h]).T  # (H, n): c_{h, lag}
    values = vt[:h].reshape(h, p, m)
    scores = _toeplitz(coef.T[:, :, None])[..., 0].permute(2, 0, 1)
    return values, scores


def semiseparable_rank(w: Any, rtol: float | None = None) -> int:
    """Largest numerical rank of the strictly-lower blocks ``W[k:, :k]``, ``k = 1 .. n-1``.

    ``w`` is a scalar mixing matrix ``(n, n)`` or operators ``(n, n, p, m)`` (a block is flattened to
    ``((n-k) p, k m)``). ``rtol`` is relative to the largest singular value of ``W`` as a whole
    (default ``n max(p, m) * eps``), so tiny blocks are not over-counted.

    >>> semiseparable_rank(torch.ones(4, 4).tril())
    1
    """
    w = as_tensor(w, "W")
    if w.ndim == 2:
        w = w[:, :, None, None]
    if w.ndim != 4 or w.shape[0] != w.shape[1]:
        raise ValueError(f"W must be (n, n) or (n, n, p, m), got shape {tuple(w.shape)}")
    n, _, p, m = w.shape
    if n < 2:
        raise ValueError("W needs n >= 2 positions to have an off-diagonal block")
    flat = w.permute(0, 2, 1, 3).reshape(n * p, n * m)
    scale = float(torch.linalg.matrix_norm(flat, ord=2))
    if scale == 0:
        return 0
    tol = (n * max(p, m) * torch.finfo(w.dtype).eps) if rtol is None else check_float(rtol, "rtol", low=0.0)
    best = 0
    for k in range(1, n):
        s = torch.linalg.svdvals(flat[k * p :, : k * m])
        best = max(best, int((s > tol * scale).sum()))
    return best


def lag_gradient_norms(kernels: Any) -> torch.Tensor:
    """Spectral norms ``||∂y_i / ∂x_{i-ℓ}||_2 = ||K_ℓ||_2`` of lag operators ``(L, p, m)``: shape ``(L,)``.

    >>> lag_gradient_norms(ssm_lag_operators(0.5 * torch.eye(2), torch.eye(2), torch.eye(2), 3)).tolist()
    [1.0, 0.5, 0.25]
    """
    k = as_tensor(kernels, "kernels", ndim=3)
    return torch.linalg.matrix_norm(k, ord=2)
