"""ℓp sensitivity and leverage-score sampling: sample-size calculators and distortion checks.

Builds on :mod:`graphrec.core.sampling` (``leverage_scores``, ``lp_sensitivities``,
``sensitivity_sample``). For ``A`` ``(n, d)`` and row importances ``σ_i`` with total
``𝔖 = Σ σ_i``, Poisson sampling keeps row ``i`` with probability ``q_i = min(1, m σ_i / 𝔖)`` and
weight ``1 / q_i``; the sketch ``||SAx||_p^p = Σ_kept w_i |a_i^T x|^p`` is unbiased for
``||Ax||_p^p``.

Two kinds of sample size are computed by :func:`sample_complexity`:

* **explicit** bounds with constants, proved here from Bernstein inequalities for the Poisson sketch.
  ``"fixed"`` (any ``p``): every kept term is at most ``(𝔖/m) ||Ax||_p^p`` and the variance at most
  ``(𝔖/m) ||Ax||_p^{2p}``, so for one fixed ``x``,
  ``P(| ||SAx||_p^p / ||Ax||_p^p - 1 | > ε) <= 2 exp(-m ε² / (2 𝔖 (1 + ε/3)))``, i.e.
  ``m = 2 𝔖 (1 + ε/3) ln(2/δ) / ε²``. ``"subspace"`` (``p = 2``, leverage scores, all ``x`` at
  once): matrix Bernstein on ``Q^T S^T S Q - I`` gives ``m = 2 d (1 + ε/3) ln(2d/δ) / ε²``.
* **rates** of the papers, for comparing schemes (constants and poly-log factors are not given by
  the papers; we return ``ceil(ε⁻² · rate · ln(n/δ))``): ``"sensitivity"`` ``𝔖^{2/p}`` for
  ``p < 2`` and ``𝔖^{2-2/p}`` for ``p > 2`` (Woodruff & Yasuda); ``"root_leverage"`` ``d``
  (``p < 2``); ``"leverage_sensitivity"`` ``d^{2/p} 𝔖^{2-4/p}`` (``p > 2``); ``"chen_derezinski"``
  ``d^{1-p/2} 𝔖`` (``p < 2``); ``"munteanu_omlor"`` ``𝔖 + d`` (``1 <= p <= 2``).

When ``total_sensitivity`` is not given the worst case is used: ``𝔖 <= d`` for ``p <= 2`` and
``𝔖 <= d^{p/2}`` for ``p > 2``.

References
----------
D. P. Woodruff, T. Yasuda. "Sharper Bounds for ℓp Sensitivity Sampling", ICML 2023 (arXiv:2306.00732).
X. Chen, M. Derezinski. "Query complexity of least absolute deviation regression via robust uniform
convergence", COLT 2021. A. Munteanu, S. Omlor. "Optimal bounds for ℓp sensitivity sampling via
ℓ2 augmentation", ICML 2024. J. A. Tropp. "An introduction to matrix concentration inequalities", 2015.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from graphrec.core._checks import as_tensor
from graphrec.core.sampling import leverage_scores
from graphrec.core.subspace import orthonormal_basis
from graphrec.utils.validation import check_choice, check_float, check_int, torch_generator

__all__ = [
    "SCHEMES",
    "total_sensitivity_bound",
    "sample_complexity",
    "root_leverage_scores",
    "lp_distortion",
    "subspace_distortion",
]

SCHEMES = (
    "fixed", "subspace", "sensitivity", "root_leverage", "leverage_sensitivity", "chen_derezinski", "munteanu_omlor",
)


def total_sensitivity_bound(d: int, p: float) -> float:
    """Worst-case total ℓp sensitivity of an ``n x d`` matrix: ``d`` for ``p <= 2``, ``d^{p/2}`` for ``p > 2``.

    >>> total_sensitivity_bound(9, 1.0), total_sensitivity_bound(9, 4.0)
    (9.0, 81.0)
    """
    d = check_int(d, "d", low=1)
    p = check_float(p, "p", low=1.0)
    return float(d) if p <= 2 else float(d) ** (p / 2)


def sample_complexity(
    n: int,
    d: int,
    p: float,
    eps: float,
    delta: float,
    *,
    scheme: str = "fixed",
    total_sensitivity: float | None = None,
) -> int:
    """Expected number of sampled rows ``m`` for a ``(1 ± eps)`` ℓp sketch with failure probability ``delta``.

    Parameters
    ----------
    n, d : int
        Rows and columns of ``A``; the answer is capped at ``n`` (keeping every row is exact).
    p : float
        The norm, ``p >= 1``.
    eps : float in (0, 1)
        Relative error of ``||SAx||_p^p``; ``||SAx||_p`` is then within ``(1 ± eps)`` too.
    delta : float in (0, 1)
        Failure probability (per direction for ``"fixed"``, for all directions at once for
        ``"subspace"``; only inside the logarithm for the papers' rates).
    scheme : str
        One of :data:`SCHEMES` (see the module docs for each formula and its regime).
    total_sensitivity : float, optional
        ``𝔖`` of the scores that will be sampled (e.g. ``lp_sensitivities(A, p).sum()``); default the
        worst case :func:`total_sensitivity_bound`.

    Returns
    -------
    int
        The ``m`` to pass to :func:`graphrec.core.sensitivity_sample`.

    Examples
    --------
    >>> sample_complexity(10**6, 10, 2.0, 0.5, 0.1, scheme="subspace")
    495
    """
    n = check_int(n, "n", low=1)
    d = check_int(d, "d", low=1)
    p = check_float(p, "p", low=1.0)
    eps = check_float(eps, "eps", low=0.0, high=1.0, low_open=True)
    delta = check_float(delta, "delta", low=0.0, high=1.0, low_open=True)
    if eps == 1.0 or delta == 1.0:
        raise ValueError(f"eps and delta must be < 1, got eps={eps}, delta={delta}")
    check_choice(scheme, "scheme", SCHEMES)
    if total_sensitivity is None:
        big_s = total_sensitivity_bound(d, p)
    else:
        big_s = check_float(total_sensitivity, "total_sensitivity", low=0.0, low_open=True)
    if scheme == "fixed":
        m = 2.0 * big_s * (1 + eps / 3) * math.log(2 / delta) / eps**2
    elif scheme == "subspace":
        if p != 2.0:
            raise ValueError(f"scheme='subspace' is the leverage-score (p = 2) bound; got p={p}")
        m = 2.0 * d * (1 + eps / 3) * math.log(2 * d / delta) / eps**2
    else:
        m = _rate(scheme, d, p, big_s) * math.log(n / delta) / eps**2
    return int(min(n, math.ceil(m)))


def _rate(scheme: str, d: int, p: float, big_s: float) -> float:
    below, above = p < 2, p > 2
    if scheme == "sensitivity":
        return big_s ** (2 / p) if p <= 2 else big_s ** (2 - 2 / p)
    if scheme == "root_leverage" and below:
        return float(d)
    if scheme == "leverage_sensitivity" and above:
        return d ** (2 / p) * big_s ** (2 - 4 / p)
    if scheme == "chen_derezinski" and below:
        return d ** (1 - p / 2) * big_s
    if scheme == "munteanu_omlor" and p <= 2:
        return big_s + d
    regime = {"root_leverage": "p < 2", "chen_derezinski": "p < 2", "leverage_sensitivity": "p > 2",
              "munteanu_omlor": "1 <= p <= 2"}[scheme]
    hint = "" if below or above else " (p = 2: use 'subspace')"
    raise ValueError(f"scheme={scheme!r} holds for {regime}, got p={p}{hint}")


def root_leverage_scores(a: Any, p: float) -> torch.Tensor:
    """Sampling scores ``τ_i^{p/2}`` (root leverage at ``p = 1``), shape ``(n,)``, for scheme ``"root_leverage"``."""
    p = check_float(p, "p", low=1.0)
    return leverage_scores(a) ** (p / 2)


def _check_sketch(a: Any, index: Any, weight: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    a = as_tensor(a, "a", ndim=2)
    if not isinstance(index, torch.Tensor) or index.dtype not in (torch.int64, torch.int32):
        raise TypeError("index must be an integer tensor of kept rows (as returned by sensitivity_sample)")
    idx = index.to(a.device).long()
    w = as_tensor(weight, "weight", ndim=1, allow_empty=True).to(device=a.device, dtype=a.dtype)
    if idx.ndim != 1 or idx.shape != w.shape:
        raise ValueError(f"index and weight must be 1-d of equal length, got {tuple(idx.shape)} and {tuple(w.shape)}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= a.shape[0]):
        raise ValueError(f"index holds rows outside [0, {a.shape[0]})")
    if bool((w < 0).any()):
        raise ValueError("weight must be non-negative")
    return a, idx, w


def lp_distortion(
    a: Any, index: Any, weight: Any, p: float, directions: Any = None, *, n_dirs: int = 100, random_state: Any = None
) -> torch.Tensor:
    """Relative error ``| ||SAx||_p / ||Ax||_p - 1 |`` of a row sketch for each direction ``x``.

    Parameters
    ----------
    a : Tensor, shape (n, d)
    index, weight : Tensor, shape (k,)
        Kept rows and their weights ``1 / q_i`` (from :func:`graphrec.core.sensitivity_sample`).
    p : float
    directions : Tensor, shape (d, n_dirs), optional
        The ``x`` to test; default ``n_dirs`` standard Gaussian directions drawn from ``random_state``.
    n_dirs : int, default 100
        Number of random directions drawn when ``directions`` is None; ignored otherwise.
    random_state : int, numpy Generator or None, default None
        Seed of the random directions; ignored when ``directions`` is given.

    Returns
    -------
    Tensor, shape (n_dirs,)
    """
    a, idx, w = _check_sketch(a, index, weight)
    p = check_float(p, "p", low=1.0)
    if directions is None:
        n_dirs = check_int(n_dirs, "n_dirs", low=1)
        gen = torch_generator(random_state, "cpu")
        x = torch.randn(a.shape[1], n_dirs, generator=gen, dtype=a.dtype).to(a.device)
    else:
        x = as_tensor(directions, "directions", ndim=2).to(device=a.device, dtype=a.dtype)
        if x.shape[0] != a.shape[1]:
            raise ValueError(f"directions has {x.shape[0]} rows, expected d={a.shape[1]}")
    full = (a @ x).abs().pow(p).sum(0)
    if bool((full == 0).any()):
        raise ValueError("a direction has ||Ax||_p = 0 (x in the null space of a); the relative error is undefined")
    sketch = (w[:, None] * (a[idx] @ x).abs().pow(p)).sum(0)
    return ((sketch / full) ** (1 / p) - 1).abs()


def subspace_distortion(a: Any, index: Any, weight: Any) -> float:
    """``sup_x | ||SAx||_2^2 / ||Ax||_2^2 - 1 |`` over all ``x`` (the ℓ2 subspace-embedding error), exactly.

    Equals the largest ``|λ - 1|`` over the eigenvalues ``λ`` of ``Q^T S^T S Q`` with ``Q`` an
    orthonormal basis of ``range(A)``.
    """
    a, idx, w = _check_sketch(a, index, weight)
    q = orthonormal_basis(a)
    qs = q[idx] * w.sqrt()[:, None]
    lam = torch.linalg.eigvalsh(qs.T @ qs)
    return float((lam - 1).abs().max())
