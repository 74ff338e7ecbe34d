"""Tensor contractions of FunBaT's moments, chunked over entries so memory stays O(chunk * R^(2K-2)).

For ``K`` modes of rank ``R``, each entry ``n`` has per-mode first moments ``m_k[n]`` (R,) and
second moments ``S_k[n]`` (R, R). With ``z_n = m_1[n] kron ... kron m_K[n]`` these compute

* ``linear(w, ms, free)``: ``W_(free) . kron_{j != free} m_j[n]``, shape (N, R) (or (N,) if ``free`` is None);
* ``quadratic(M, Ss, free)``: ``sum_{o, o'} M[(r, o), (r', o')] prod_{j != free} S_j[n, o_j, o'_j]``,
  shape (N, R, R) (or (N,) for ``free`` None), where ``M`` is a (R^K, R^K) second moment of the core;
* ``gram(Ss)``: ``sum_n kron_k S_k[n]``, shape (R^K, R^K);
* ``hadamard(ms or Ss, free)``: the same as ``linear`` / ``quadratic`` for the CP core (``W`` the
  superdiagonal of ones, no covariance), as element-wise products in O(N R^2).

Each is the row-wise Kronecker product of the other modes' moments times an unfolding of the core,
one matrix product per chunk.
"""
from __future__ import annotations

import torch


def _kron_rows(xs: list[torch.Tensor], n: int, like: torch.Tensor) -> torch.Tensor:
    """Row-wise Kronecker product of (n, a_j) blocks -> (n, prod a_j), the first block varying slowest."""
    if not xs:
        return torch.ones(n, 1, dtype=like.dtype, device=like.device)
    out = xs[0]
    for x in xs[1:]:
        out = (out[:, :, None] * x[:, None, :]).reshape(n, -1)
    return out


def _kron_mats(Ss: list[torch.Tensor], n: int, like: torch.Tensor) -> torch.Tensor:
    """Entry-wise Kronecker product of (n, a_j, b_j) matrices -> (n, prod a_j, prod b_j)."""
    if not Ss:
        return torch.ones(n, 1, 1, dtype=like.dtype, device=like.device)
    out = Ss[0]
    for S in Ss[1:]:
        out = (out[:, :, None, :, None] * S[:, None, :, None, :]).reshape(n, out.shape[1] * S.shape[1], -1)
    return out


def linear(w: torch.Tensor, ms: list[torch.Tensor], free: int | None) -> torch.Tensor:
    K = len(ms)
    if free is None:  # contract the last mode after the others
        return (linear(w, ms, K - 1) * ms[K - 1]).sum(1)
    R = ms[0].shape[1]
    Wk = torch.movedim(w, free, 0).reshape(R, -1)  # the unfolding W_(free), columns in the other modes' order
    others = [j for j in range(K) if j != free]
    out = []
    chunk = max(1, 2**22 // R ** len(others))
    for s in range(0, ms[0].shape[0], chunk):
        z = _kron_rows([ms[j][s:s + chunk] for j in others], min(chunk, ms[0].shape[0] - s), w)
        out.append(z @ Wk.T)
    return torch.cat(out)


def quadratic(M: torch.Tensor, Ss: list[torch.Tensor], free: int | None) -> torch.Tensor:
    K = len(Ss)
    if free is None:  # contract the last mode after the others
        return (quadratic(M, Ss, K - 1) * Ss[K - 1]).sum((1, 2))
    R = Ss[0].shape[1]
    others = [j for j in range(K) if j != free]
    # axes (a_free, b_free, a_others..., b_others...)
    Mk = M.reshape((R,) * (2 * K)).permute([free, K + free] + others + [K + j for j in others]).reshape(R * R, -1)
    out = []
    N = Ss[0].shape[0]
    chunk = max(1, 2**22 // R ** (2 * len(others)))
    for s in range(0, N, chunk):
        n = min(chunk, N - s)
        P = _kron_mats([Ss[j][s:s + chunk] for j in others], n, M).reshape(n, -1)
        out.append(P @ Mk.T)
    return torch.cat(out).reshape(N, R, R)


def gram(Ss: list[torch.Tensor]) -> torch.Tensor:
    K = len(Ss)
    R = Ss[0].shape[1]
    if K == 1:
        return Ss[0].sum(0)
    P = R ** (K - 1)
    chunk = max(1, 2**22 // P**2)
    total = torch.zeros(P * P, R * R, dtype=Ss[0].dtype, device=Ss[0].device)
    for s in range(0, Ss[0].shape[0], chunk):
        x = Ss[0][s:s + chunk]
        n = x.shape[0]
        for j in range(1, K - 1):  # kron of all but the last mode, (n, R^j, R^j)
            x = torch.einsum("zpq,zrs->zprqs", x, Ss[j][s:s + chunk]).reshape(n, R ** (j + 1), R ** (j + 1))
        total += x.reshape(n, P * P).T @ Ss[K - 1][s:s + chunk].reshape(n, R * R)
    return total.reshape(P, P, R, R).permute(0, 2, 1, 3).reshape(P * R, P * R)


def hadamard(xs: list[torch.Tensor], free: int | None) -> torch.Tensor:
    """``linear`` (first moments ``(N, R)``) or ``quadratic`` (second moments ``(N, R, R)``) for the CP core.

    The element-wise product of every mode's moment but ``free``'s, same shape as one of them; with
    ``free`` None, summed over all but the entry axis to ``(N,)``.
    """
    out = torch.ones_like(xs[0])
    for j, x in enumerate(xs):
        if j != free:
            out = out * x
    return out.flatten(1).sum(1) if free is None else out
