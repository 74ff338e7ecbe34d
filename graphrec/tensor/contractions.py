"""Tensor contractions of FunBaT's moments, chunked over entries so memory stays O(chunk * R^(2K-2)).

For ``K`` modes of rank ``R``, each entry ``n`` has per-mode first moments ``m_k[n]`` (R,) and
second moments ``S_k[n]`` (R, R). With ``z_n = m_1[n] kron ... kron m_K[n]`` these compute

* ``linear(w, ms, free)``: ``W_(free) . kron_{j != free} m_j[n]``, shape (N, R) (or (N,) if ``free`` is None);
* ``quadratic(M, Ss, free)``: ``sum_{o, o'} M[(r, o), (r', o')] prod_{j != free} S_j[n, o_j, o'_j]``,
  shape (N, R, R) (or (N,) for ``free`` None), where ``M`` is a (R^K, R^K) second moment of the core;
* ``gram(Ss)``: ``sum_n kron_k S_k[n]``, shape (R^K, R^K).
"""
from __future__ import annotations

import string

import torch

_A = string.ascii_uppercase[:12]  # row axes of the core
_B = string.ascii_lowercase[:12]  # column axes of the core


def linear(w: torch.Tensor, ms: list[torch.Tensor], free: int | None) -> torch.Tensor:
    K = len(ms)
    out = []
    chunk = max(1, 2**22 // ms[0].shape[1] ** (K - 1))
    for s in range(0, ms[0].shape[0], chunk):
        x = w  # shape (R,)*K, axes A[:K]
        axes = list(_A[:K])
        first = True
        for j in range(K):
            if j == free:
                continue
            src = ("" if first else "z") + "".join(axes)
            rest = [a for a in axes if a != _A[j]]
            x = torch.einsum(f"z{_A[j]},{src}->z{''.join(rest)}", ms[j][s:s + chunk], x)
            axes, first = rest, False
        out.append(x)
    return torch.cat(out)


def quadratic(M: torch.Tensor, Ss: list[torch.Tensor], free: int | None) -> torch.Tensor:
    K = len(Ss)
    R = Ss[0].shape[1]
    Mt = M.reshape((R,) * (2 * K))
    out = []
    chunk = max(1, 2**22 // R ** (2 * K - 2))
    for s in range(0, Ss[0].shape[0], chunk):
        x = Mt
        axes = list(_A[:K] + _B[:K])
        first = True
        for j in range(K):
            if j == free:
                continue
            src = ("" if first else "z") + "".join(axes)
            rest = [a for a in axes if a not in (_A[j], _B[j])]
            x = torch.einsum(f"z{_A[j]}{_B[j]},{src}->z{''.join(rest)}", Ss[j][s:s + chunk], x)
            axes, first = rest, False
        out.append(x)
    return torch.cat(out)


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
