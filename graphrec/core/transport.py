"""Entropic optimal transport and doubly-stochastic projection by log-domain Sinkhorn iterations.

Reference: M. Cuturi, "Sinkhorn distances: lightspeed computation of optimal transport", NeurIPS
2013; G. Peyré, M. Cuturi, *Computational Optimal Transport*, 2019, §4.4 (log-domain stabilisation).
"""
from __future__ import annotations

from typing import Any

import torch

from graphrec.core._checks import as_tensor
from graphrec.utils.validation import check_float, check_int


def _log_marginal(w: Any, n: int, name: str, like: torch.Tensor) -> torch.Tensor:
    if w is None:
        return like.new_full((n,), -torch.log(torch.tensor(float(n), dtype=like.dtype)).item())
    w = as_tensor(w, name, min_ndim=1).to(like)
    if w.shape[-1] != n:
        raise ValueError(f"{name} must have length {n} in its last dimension, got shape {tuple(w.shape)}")
    if bool((w <= 0).any()):
        raise ValueError(f"{name} must be strictly positive")
    return torch.log(w)


def _sinkhorn_log(log_k: torch.Tensor, log_a: torch.Tensor, log_b: torch.Tensor, n_iter: int, tol: float) -> torch.Tensor:
    f = torch.zeros_like(log_k[..., :, 0])
    g = torch.zeros_like(log_k[..., 0, :])
    for it in range(n_iter):
        f = log_a - torch.logsumexp(log_k + g.unsqueeze(-2), dim=-1)
        g = log_b - torch.logsumexp(log_k + f.unsqueeze(-1), dim=-2)
        # after the g-update the columns are exact; every 10 sweeps (one host sync), stop when the rows are too
        if it % 10 == 9:
            row = torch.logsumexp(log_k + f.unsqueeze(-1) + g.unsqueeze(-2), dim=-1)
            if float((row.exp() - log_a.exp()).abs().max().detach()) <= tol:
                break
    return torch.exp(log_k + f.unsqueeze(-1) + g.unsqueeze(-2))


def sinkhorn(
    cost: Any,
    a: Any = None,
    b: Any = None,
    *,
    eps: float = 0.1,
    n_iter: int = 1000,
    tol: float = 1e-9,
) -> torch.Tensor:
    """Entropic OT plan ``P = argmin <P, C> - eps H(P)`` with ``P 1 = a``, ``P^T 1 = b``.

    Parameters
    ----------
    cost : Tensor, shape (..., n, m)
    a, b : Tensor, shapes (..., n) and (..., m), positive with equal sums; default uniform ``1/n``, ``1/m``
    eps : float > 0, entropy weight (small eps approaches the unregularised plan; the log domain keeps it stable)
    n_iter, tol : at most ``n_iter`` sweeps, stopping when the row sums are within ``tol`` of ``a``

    Returns
    -------
    Tensor, shape (..., n, m), ``P = diag(e^f) exp(-C / eps) diag(e^g)``.
    """
    cost = as_tensor(cost, "cost", min_ndim=2)
    eps = check_float(eps, "eps", low=0.0, low_open=True)
    n_iter = check_int(n_iter, "n_iter", low=1)
    tol = check_float(tol, "tol", low=0.0)
    n, m = cost.shape[-2], cost.shape[-1]
    log_a = _log_marginal(a, n, "a", cost)
    log_b = _log_marginal(b, m, "b", cost)
    if a is not None and b is not None and not torch.allclose(log_a.exp().sum(-1), log_b.exp().sum(-1), rtol=1e-6):
        raise ValueError("a and b must have equal total mass")
    return _sinkhorn_log(-cost / eps, log_a, log_b, n_iter, tol)


def doubly_stochastic(logits: Any, *, n_iter: int = 1000, tol: float = 1e-9) -> torch.Tensor:
    """Sinkhorn-Knopp projection of ``exp(logits)`` ``(..., n, n)`` onto the doubly stochastic matrices.

    Row and column sums are 1 (Birkhoff polytope), as used for the membership matrices of MLC
    (``logits = C^T C / eta``) and the residual mixing of mHC.
    """
    logits = as_tensor(logits, "logits", min_ndim=2)
    if logits.shape[-1] != logits.shape[-2]:
        raise ValueError(f"logits must be square, got shape {tuple(logits.shape)}")
    n = logits.shape[-1]
    zeros = logits.new_zeros(n)
    return _sinkhorn_log(logits, zeros, zeros, check_int(n_iter, "n_iter", low=1), check_float(tol, "tol", low=0.0))
