"""Row importance sampling: leverage scores, ℓp sensitivities and sensitivity (Poisson) sampling.

For ``A`` ``(n, d)``, the ℓp sensitivity of row ``i`` is ``sup_x |a_i^T x|^p / ||Ax||_p^p``; for
``p = 2`` it is the leverage score ``||Q_i||^2`` (``Q`` an orthonormal basis of ``range(A)``), and
the scores sum to ``rank(A)``. Sampling keeps row ``i`` with probability ``q_i = min(1, m s_i / sum s)``
and weight ``1 / q_i``, so ``sum_kept w_i |a_i^T x|^p`` is an unbiased estimate of ``||Ax||_p^p``.

References: M. W. Mahoney, "Randomized algorithms for matrices and data", Found. Trends Mach. Learn.
3(2), 2011 (leverage scores); D. P. Woodruff, T. Yasuda, "Sharper bounds for ℓp sensitivity
sampling", ICML 2023.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from graphrec.core._checks import as_tensor
from graphrec.core.subspace import orthonormal_basis
from graphrec.utils.validation import check_float, torch_generator


def leverage_scores(a: Any, rtol: float | None = None) -> torch.Tensor:
    """Statistical leverage ``diag(A A^+)`` of the rows of ``a`` ``(n, d)``: shape ``(n,)``, in [0, 1], summing to ``rank(A)``.

    Computed from an SVD basis of the column span, so rank-deficient ``a`` is fine (``rtol`` as in
    :func:`graphrec.core.orthonormal_basis`).
    """
    q = orthonormal_basis(a, rtol)
    return (q * q).sum(1)


def lp_sensitivities(a: Any, p: float = 2.0) -> torch.Tensor:
    """Exact ℓp sensitivities of the rows of ``a`` ``(n, d)`` for ``p = 2`` (leverage) or ``p = 1`` (one LP per row).

    For ``p = 1``: ``s_i = 1 / min{||Ax||_1 : a_i^T x = 1}`` solved with scipy's HiGHS; cost is ``n``
    linear programs, so keep ``n`` in the hundreds. Rows that are zero have sensitivity 0.
    """
    p = check_float(p, "p", low=1.0)
    a = as_tensor(a, "a", ndim=2)
    if p == 2.0:
        return leverage_scores(a)
    if p != 1.0:
        raise ValueError(f"exact sensitivities are implemented for p = 1 and p = 2 only, got p={p}")
    from scipy.optimize import linprog

    x = a.detach().cpu().numpy().astype(np.float64)
    n, d = x.shape
    # variables [x (d, free), t (n, >= 0)]: min sum t  s.t.  -t <= A x <= t,  a_i^T x = 1
    c = np.concatenate([np.zeros(d), np.ones(n)])
    a_ub = np.block([[x, -np.eye(n)], [-x, -np.eye(n)]])
    bounds = [(None, None)] * d + [(0, None)] * n
    out = np.zeros(n)
    for i in range(n):
        if not np.any(x[i]):
            continue
        res = linprog(c, A_ub=a_ub, b_ub=np.zeros(2 * n), A_eq=np.concatenate([x[i], np.zeros(n)])[None],
                      b_eq=[1.0], bounds=bounds, method="highs")
        if res.status != 0:  # pragma: no cover - the LP is feasible and bounded for a non-zero row
            raise RuntimeError(f"the sensitivity LP for row {i} failed: {res.message}")
        out[i] = 1.0 / res.fun
    return torch.as_tensor(out, dtype=a.dtype, device=a.device)


def sensitivity_sample(scores: Any, m: float, *, random_state: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Poisson-sample rows with probability ``q_i = min(1, m s_i / sum(s))``; returns ``(index, weight = 1/q)``.

    ``scores`` ``(n,)`` are non-negative importances (leverage scores, sensitivities, ...); ``m`` is
    the expected sample size before capping at 1. ``index`` is a sorted LongTensor of kept rows and
    ``weight`` their ``1/q_i`` (float, same device as ``scores``).
    """
    s = as_tensor(scores, "scores", ndim=1)
    m = check_float(m, "m", low=0.0, low_open=True)
    if bool((s < 0).any()):
        raise ValueError("scores must be non-negative")
    total = s.sum()
    if float(total) == 0:
        raise ValueError("scores are all zero; nothing can be sampled")
    q = torch.clamp(m * s / total, max=1.0)
    u = torch.rand(s.shape[0], generator=torch_generator(random_state, "cpu"), dtype=s.dtype).to(s.device)
    idx = torch.nonzero(u < q).squeeze(1)
    return idx, 1.0 / q[idx]

