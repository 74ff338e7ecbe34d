"""Neuron matching between two networks' activations on the same inputs: unit correlations,
one-to-one (bipartite) and semi-matching, one-to-many sparse prediction (lasso) and many-to-many
spectral groups of the joint correlation graph.

Activations are sample-by-unit matrices ``a`` ``(N, n1)`` and ``b`` ``(N, n2)`` with the same
inputs in the same row order (for convolutional layers, spatial positions count as samples).

Reference: Y. Li, J. Yosinski, J. Clune, H. Lipson, J. Hopcroft, "Convergent learning: do
different neural networks learn the same representations?", ICLR 2016, arXiv 1511.07543
(code: github.com/YixuanLi/convergent_learning).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from graphrec.core._checks import as_tensor
from graphrec.utils.validation import check_int, check_random_state

__all__ = [
    "SparsePrediction",
    "bipartite_match",
    "mean_matched_correlation",
    "semi_match",
    "sparse_prediction",
    "spectral_unit_groups",
    "unit_correlation",
]


def _activations(a: Any, b: Any) -> tuple[torch.Tensor, torch.Tensor]:
    a = as_tensor(a, "a", ndim=2)
    b = as_tensor(b, "b", ndim=2).to(a)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must have the same number of rows (samples), got {a.shape[0]} and {b.shape[0]}")
    if a.shape[0] < 2:
        raise ValueError(f"need at least 2 samples, got {a.shape[0]}")
    return a, b


def _standardise(x: torch.Tensor) -> torch.Tensor:
    """Columns centred and scaled to unit norm; constant (e.g. dead ReLU) columns become zero."""
    xc = x - x.mean(0)
    norm = torch.linalg.vector_norm(xc, dim=0)
    return xc / torch.where(norm > 0, norm, torch.ones_like(norm))


def unit_correlation(a: Any, b: Any | None = None) -> torch.Tensor:
    """Pearson correlations ``R_ij = corr(a_i, b_j)`` of the units (columns), shape ``(n1, n2)``.

    With ``b=None`` the within-network correlations of ``a`` ``(n1, n1)``. A constant unit (a dead
    ReLU) has correlation 0 with everything, itself included.

    >>> a = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]], dtype=torch.float64)
    >>> unit_correlation(a, 2 * a[:, [1, 0]]).round(decimals=3).tolist()
    [[0.5, 1.0], [1.0, 0.5]]
    """
    a, b = _activations(a, a if b is None else b)
    return (_standardise(a).T @ _standardise(b)).clamp(-1.0, 1.0)


def _correlation_matrix(corr: Any) -> np.ndarray:
    corr = as_tensor(corr, "corr", ndim=2)
    if float(corr.abs().max()) > 1 + 1e-9:
        raise ValueError("corr must hold correlations in [-1, 1] (see unit_correlation)")
    return corr.detach().cpu().numpy()


def bipartite_match(corr: Any) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of units maximising the summed correlation (Hungarian algorithm).

    Parameters
    ----------
    corr : array, shape (n1, n2)
        Unit correlations from :func:`unit_correlation`.

    Returns
    -------
    match : ndarray of int, shape (n1,)
        ``match[i]`` is the unit of network b paired with unit ``i`` of network a, or -1 where
        ``n1 > n2`` leaves ``i`` unpaired.
    matched_corr : ndarray, shape (n1,)
        ``corr[i, match[i]]`` (NaN where unpaired).

    >>> bipartite_match([[0.9, 0.8], [0.85, 0.1]])[0].tolist()  # the greedy argmax would pair both with 0
    [1, 0]
    """
    c = _correlation_matrix(corr)
    rows, cols = linear_sum_assignment(c, maximize=True)
    match = np.full(c.shape[0], -1, dtype=np.int64)
    match[rows] = cols
    matched = np.full(c.shape[0], np.nan)
    matched[rows] = c[rows, cols]
    return match, matched


def semi_match(corr: Any) -> tuple[np.ndarray, np.ndarray]:
    """Semi-matching: each unit of network a paired with its most correlated unit of b (repeats allowed).

    Returns ``match`` ``(n1,)`` and ``matched_corr`` ``(n1,)`` as :func:`bipartite_match` does.
    """
    c = _correlation_matrix(corr)
    match = c.argmax(1)
    return match, c[np.arange(c.shape[0]), match]


@dataclass(frozen=True)
class SparsePrediction:
    """Lasso prediction of every unit of b from all units of a, for each penalty.

    Attributes
    ----------
    alphas : ndarray, shape (n_alphas,)
        L1 penalties (scikit-learn ``Lasso`` scaling), in the order given.
    loss : ndarray, shape (n_alphas,)
        Mean squared error of the standardised b units (1 = no better than the mean).
    nonzeros : ndarray, shape (n_alphas,)
        Mean number of non-zero weights per predicted unit of b.
    coef : ndarray, shape (n_alphas, n2, n1)
        ``coef[k, j]`` are the weights predicting unit ``j`` of b at ``alphas[k]``.
    """

    alphas: np.ndarray
    loss: np.ndarray
    nonzeros: np.ndarray
    coef: np.ndarray


def sparse_prediction(a: Any, b: Any, alphas: Any = (1e-1, 10**-1.6, 10**-2.2, 10**-2.8)) -> SparsePrediction:
    """One-to-many mapping: ``b_j ~ a w_j`` with an L1 penalty, units standardised to unit variance.

    The paper sweeps the penalty over ``10^-1 ... 10^-2.8`` and reports the loss against the number
    of non-zero weights: a few non-zeros at low loss means a unit of b is a small mixture of units of a.
    """
    from sklearn.linear_model import Lasso

    a, b = _activations(a, b)
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas <= 0):
        raise ValueError(f"alphas must be a non-empty list of positive finite penalties, got {alphas.tolist()}")
    n = a.shape[0]
    xa = (_standardise(a) * np.sqrt(n)).cpu().numpy()
    xb = (_standardise(b) * np.sqrt(n)).cpu().numpy()
    losses, nnz, coefs = [], [], []
    for alpha in alphas:
        model = Lasso(alpha=float(alpha), fit_intercept=False, max_iter=5000, tol=1e-6).fit(xa, xb)
        coef = np.atleast_2d(model.coef_)
        losses.append(float(np.mean((xa @ coef.T - xb) ** 2)))
        nnz.append(float(np.mean((coef != 0).sum(1))))
        coefs.append(coef)
    return SparsePrediction(alphas=alphas, loss=np.array(losses), nonzeros=np.array(nnz), coef=np.stack(coefs))


def spectral_unit_groups(a: Any, b: Any, n_groups: int, *, random_state: Any = None) -> np.ndarray:
    """Many-to-many matching: spectral clustering of the joint ``(n1 + n2)`` unit graph.

    The affinity is ``|R|`` of all units of both networks stacked (within- and between-network
    correlations). A group holding units of both networks spans a subspace the two share.

    Returns
    -------
    labels : ndarray of int, shape (n1 + n2,)
        Group of each unit; the first ``n1`` entries are the units of a.
    """
    from sklearn.cluster import SpectralClustering

    a, b = _activations(a, b)
    n_units = a.shape[1] + b.shape[1]
    n_groups = check_int(n_groups, "n_groups", low=1, high=n_units)
    rng = check_random_state(random_state)
    affinity = unit_correlation(torch.cat([a, b], 1)).abs().cpu().numpy()
    model = SpectralClustering(
        n_clusters=n_groups, affinity="precomputed", random_state=int(rng.integers(0, 2**31 - 1))
    )
    return model.fit_predict(affinity)


def mean_matched_correlation(a: Any, b: Any) -> float:
    """Mean correlation of the one-to-one matched unit pairs (the paper's summary of a layer)."""
    _, matched = bipartite_match(unit_correlation(a, b))
    return float(np.nanmean(matched))

