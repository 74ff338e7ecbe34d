"""Linear-orthogonal factorisation scores of embeddings of compositional concepts.

Samples carry ``K`` concepts with values ``y_c``; their centred embeddings ``x`` ``(n, d)`` are
*linearly factorised* when ``x ~ sum_c u_c(y_c)``, with ``u_c(v)`` the mean of ``x`` over the
samples whose concept ``c`` takes value ``v``, and *orthogonally* factorised when the spans of the
per-concept mean vectors are mutually orthogonal. Then ``d >= sum_c rank(U_c)``, i.e.
``sum_c (n_c - 1)`` for full-rank factors.

Reference: A. Uselis, A. Dittadi, S. J. Oh, "Compositional generalization requires linear,
orthogonal representations", arXiv 2602.24264 (code: github.com/oshapio/necessary-compositionality).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from graphrec.core import energy_rank, truncated_svd
from graphrec.core._checks import as_tensor
from graphrec.utils.validation import check_array, check_float

__all__ = [
    "FactorisationScores",
    "concept_means",
    "concept_rank",
    "cross_concept_orthogonality",
    "factor_subspace_overlap",
    "factorisation_scores",
    "heldout_composition_error",
    "linear_factorization_r2",
    "min_dim_for_composition",
]


def _check(x: Any, concepts: Any) -> tuple[torch.Tensor, list[torch.Tensor], list[int]]:
    """``x`` as a tensor, ``concepts`` ``(n, K)`` as per-concept value codes ``0..n_c-1`` and the ``n_c``."""
    x = as_tensor(x, "x", ndim=2)
    y = check_array(concepts, "concepts", dtype=np.int64)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2:
        raise ValueError(f"concepts must be 2-dimensional (n_samples, n_concepts), got shape {y.shape}")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"concepts has {y.shape[0]} rows but x has {x.shape[0]} samples")
    codes, sizes = [], []
    for c in range(y.shape[1]):
        values, code = np.unique(y[:, c], return_inverse=True)
        if values.size < 2:
            raise ValueError(f"concept {c} takes a single value; each concept needs at least 2 values")
        codes.append(torch.as_tensor(code, device=x.device))
        sizes.append(int(values.size))
    return x, codes, sizes


def _means(xc: torch.Tensor, code: torch.Tensor, size: int) -> torch.Tensor:
    total = xc.new_zeros(size, xc.shape[1]).index_add_(0, code, xc)
    count = torch.bincount(code, minlength=size).to(xc).unsqueeze(1)
    return total / count


def concept_means(x: Any, concepts: Any) -> list[torch.Tensor]:
    """Per-concept value means ``U_c`` ``(n_c, d)`` of the centred embeddings (values in sorted order).

    Parameters
    ----------
    x : array, shape (n, d)
        Embeddings.
    concepts : int array, shape (n, K)
        The value of each of the ``K`` concepts for each sample (any integer labels).
    """
    x, codes, sizes = _check(x, concepts)
    xc = x - x.mean(0)
    return [_means(xc, code, size) for code, size in zip(codes, sizes)]


def _additive_fit(means: list[torch.Tensor], codes: list[torch.Tensor]) -> torch.Tensor:
    return sum(m[code] for m, code in zip(means, codes))


def _r2(target: torch.Tensor, fit: torch.Tensor) -> float:
    return 1.0 - float(((target - fit) ** 2).sum() / (target**2).sum())


def linear_factorization_r2(x: Any, concepts: Any, *, whiten: bool = False) -> float:
    """``R^2 = 1 - ||X_c - sum_c U_c[y_c]||^2 / ||X_c||^2`` of the additive fit of the centred embeddings.

    With ``whiten=True`` the embeddings are first whitened (on their numerical range), so that
    every direction counts equally rather than by its variance.

    >>> y = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]])
    >>> x = torch.stack([y[:, 0] * 2.0, y[:, 1] * 3.0], 1)  # one axis per concept: exactly additive
    >>> linear_factorization_r2(x, y)
    1.0
    """
    x, codes, sizes = _check(x, concepts)
    xc = x - x.mean(0)
    if float((xc**2).sum()) == 0:
        raise ValueError("x is constant (all rows equal); R^2 is undefined")
    if whiten:
        u, s, _ = torch.linalg.svd(xc, full_matrices=False)
        keep = s > max(xc.shape) * torch.finfo(xc.dtype).eps * s[0]
        xc = u[:, keep] * (xc.shape[0] - 1) ** 0.5
    means = [_means(xc, code, size) for code, size in zip(codes, sizes)]
    return _r2(xc, _additive_fit(means, codes))


def _mean_abs_cos(a: torch.Tensor, b: torch.Tensor, exclude_diagonal: bool) -> float:
    na = a / torch.linalg.vector_norm(a, dim=1, keepdim=True).clamp_min(torch.finfo(a.dtype).tiny)
    nb = b / torch.linalg.vector_norm(b, dim=1, keepdim=True).clamp_min(torch.finfo(b.dtype).tiny)
    cos = (na @ nb.T).abs()
    if exclude_diagonal:
        mask = ~torch.eye(cos.shape[0], dtype=torch.bool, device=cos.device)
        return float(cos[mask].mean())
    return float(cos.mean())


def cross_concept_orthogonality(x: Any, concepts: Any) -> tuple[float, float]:
    """Mean ``|cos|`` between mean vectors of different concepts, and between different values of one concept.

    Returns
    -------
    between : float
        Mean over concept pairs ``c != c'`` of the mean ``|cos(u_c(v), u_c'(v'))|``; near 0 for
        orthogonal factors.
    within : float
        Mean over concepts of the mean ``|cos(u_c(v), u_c(v'))|``, ``v != v'`` (the reference level).
    """
    means = concept_means(x, concepts)
    k = len(means)
    within = float(np.mean([_mean_abs_cos(m, m, exclude_diagonal=True) for m in means]))
    if k < 2:
        raise ValueError("cross-concept orthogonality needs at least 2 concepts")
    between = float(np.mean([_mean_abs_cos(means[i], means[j], False) for i in range(k) for j in range(i + 1, k)]))
    return between, within


def concept_rank(x: Any, concepts: Any, energy: float = 0.95) -> list[int]:
    """Per-concept rank: how many singular values of ``U_c`` ``(n_c, d)`` hold ``energy`` of its energy.

    For a linear factorisation ``U_c`` has rank at most ``n_c - 1`` (its rows sum to zero in a
    balanced design).
    """
    energy = check_float(energy, "energy", low=0.0, high=1.0, low_open=True)
    return [int(energy_rank(torch.linalg.svdvals(m), energy)) for m in concept_means(x, concepts)]


def factor_subspace_overlap(x: Any, concepts: Any, energy: float = 0.95) -> torch.Tensor:
    """Overlap ``||Q_c^T Q_c'||_F^2 / min(k_c, k_c')`` of the factor subspaces, shape ``(K, K)``.

    ``Q_c`` spans the top right singular vectors of ``U_c`` holding ``energy`` of its energy. 0
    means mutually orthogonal factor subspaces, 1 means one contains the other; the diagonal is 1.
    """
    energy = check_float(energy, "energy", low=0.0, high=1.0, low_open=True)
    bases = []
    for m in concept_means(x, concepts):
        if float(torch.linalg.matrix_norm(m)) == 0:
            raise ValueError("a concept has all-zero means (x does not depend on it); its subspace is undefined")
        bases.append(truncated_svd(m, energy=energy)[2].T)
    k = len(bases)
    out = torch.ones(k, k, dtype=bases[0].dtype)
    for i in range(k):
        for j in range(i + 1, k):
            v = float(torch.linalg.matrix_norm(bases[i].T @ bases[j]) ** 2) / min(bases[i].shape[1], bases[j].shape[1])
            out[i, j] = out[j, i] = v
    return out


def min_dim_for_composition(n_values: Any) -> int:
    """The smallest embedding dimension ``sum_c (n_c - 1)`` that holds full-rank orthogonal factors.

    >>> min_dim_for_composition([4, 5, 3])
    9
    """
    n = check_array(n_values, "n_values", ndim=1, dtype=np.int64)
    if np.any(n < 2):
        raise ValueError(f"every concept needs at least 2 values, got {n.tolist()}")
    return int((n - 1).sum())


def heldout_composition_error(x: Any, concepts: Any, test_mask: Any) -> float:
    """Relative error ``||X_test - X_hat||^2 / ||X_test - mean_train||^2`` of unseen combinations.

    The additive model (mean plus per-concept value means) is fitted on the samples where
    ``test_mask`` is False and predicts the held-out ones; every held-out value of every concept
    must occur in training. Near 0 for linearly factorised embeddings, near or above 1 otherwise.
    """
    x, codes, sizes = _check(x, concepts)
    mask = check_array(test_mask, "test_mask", ndim=1, dtype=None)
    if mask.dtype != np.bool_:
        raise TypeError(f"test_mask must be a boolean array, got dtype {mask.dtype}")
    if mask.shape[0] != x.shape[0]:
        raise ValueError(f"test_mask has {mask.shape[0]} entries but x has {x.shape[0]} samples")
    if mask.all() or not mask.any():
        raise ValueError("test_mask must select some but not all samples")
    test = torch.as_tensor(mask, device=x.device)
    train = ~test
    mu = x[train].mean(0)
    xc = x[train] - mu
    means = []
    for c, (code, size) in enumerate(zip(codes, sizes)):
        seen = torch.bincount(code[train], minlength=size) > 0
        if not bool(seen[code[test]].all()):
            raise ValueError(f"a held-out value of concept {c} never occurs in training; it cannot be predicted")
        means.append(_means(xc, code[train], size))
    pred = mu + _additive_fit(means, [code[test] for code in codes])
    denom = float(((x[test] - mu) ** 2).sum())
    if denom == 0:
        raise ValueError("held-out samples equal the training mean; the relative error is undefined")
    return float(((x[test] - pred) ** 2).sum()) / denom


@dataclass(frozen=True)
class FactorisationScores:
    """All factorisation scores of one embedding (see :func:`factorisation_scores`)."""

    r2: float
    r2_whitened: float
    between_cos: float
    within_cos: float
    ranks: list[int]
    min_dim: int
    subspace_overlap: torch.Tensor


def factorisation_scores(x: Any, concepts: Any, energy: float = 0.95) -> FactorisationScores:
    """Linear (``R^2``, whitened ``R^2``) and orthogonal (cosines, subspace overlaps) factorisation scores.

    >>> rng = np.random.default_rng(0)
    >>> y = np.array([(i, j) for i in range(3) for j in range(4)] * 5)
    >>> q = np.linalg.qr(rng.normal(size=(16, 16)))[0]
    >>> x = q[y[:, 0]] + q[3 + y[:, 1]]  # concept 0 on axes 0-2, concept 1 on axes 3-6
    >>> s = factorisation_scores(x, y)
    >>> round(s.r2, 6), s.ranks, s.min_dim, round(float(s.subspace_overlap[0, 1]), 6)
    (1.0, [2, 3], 5, 0.0)
    """
    x, codes, sizes = _check(x, concepts)
    between, within = cross_concept_orthogonality(x, concepts)
    return FactorisationScores(
        r2=linear_factorization_r2(x, concepts),
        r2_whitened=linear_factorization_r2(x, concepts, whiten=True),
        between_cos=between,
        within_cos=within,
        ranks=concept_rank(x, concepts, energy),
        min_dim=min_dim_for_composition(sizes),
        subspace_overlap=factor_subspace_overlap(x, concepts, energy),
    )
