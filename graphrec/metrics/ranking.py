"""Top-K recommendation metrics under full ranking with the training items masked.

Every user is ranked against *all* items; the items the user interacted with in training are
removed from the ranking, and the top ``K`` remaining items are compared with the held-out (test)
items. Relevance is binary: an item is relevant when it is a stored nonzero of the user's test row.
Per user, with ``hits_j = 1`` when the item at rank ``j`` (1-based) is relevant:

* ``recall@K    = sum_{j<=K} hits_j / |test|``
* ``precision@K = sum_{j<=K} hits_j / K`` (missing ranks, padded with ``-1``, count as misses)
* ``hitrate@K   = 1 if any hit in the top K else 0``
* ``ndcg@K      = DCG@K / IDCG@K`` with ``DCG@K = sum_{j<=K} hits_j / log2(j + 1)`` and the ideal
  ``IDCG@K = sum_{j<=min(|test|, K)} 1 / log2(j + 1)``
* ``mrr@K       = 1 / (rank of the first hit)`` if it is within the top K, else 0

Scores are averaged over the users that have at least one test item.

Reference: the full-ranking protocol of He et al., "LightGCN: Simplifying and powering graph
convolution network for recommendation", SIGIR 2020; NDCG from Järvelin & Kekäläinen,
"Cumulated gain-based evaluation of IR techniques", ACM TOIS 20(4), 2002.
"""
from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphrec.utils.validation import check_array

__all__ = ["evaluate_full_ranking", "ranking_metrics"]

_METRICS = ("recall", "ndcg", "precision", "hitrate", "mrr")


def _check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    """Sorted, de-duplicated cut-offs; each must be a positive integer."""
    if isinstance(ks, (numbers.Integral, np.integer)):
        ks = (ks,)
    try:
        values = tuple(ks)
    except TypeError as exc:
        raise TypeError(f"ks must be an iterable of positive integers, got {ks!r}") from exc
    if not values:
        raise ValueError("ks is empty; expected at least one cut-off such as (10, 20)")
    for k in values:
        if isinstance(k, bool) or not isinstance(k, (numbers.Integral, np.integer)) or k < 1:
            raise ValueError(f"ks must hold positive integers, got {k!r}")
    return tuple(sorted({int(k) for k in values}))


def _check_interactions(x: Any, name: str) -> sp.csr_matrix:
    """A canonical copy of a sparse ``(n_users, n_items)`` matrix: CSR, sorted, no explicit zeros."""
    if not sp.issparse(x):
        raise TypeError(f"{name} must be a scipy sparse (n_users, n_items) matrix, got {type(x).__name__}")
    m = sp.csr_matrix(x, copy=True)
    if m.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {m.dtype}")
    if m.dtype.kind == "f" and not np.all(np.isfinite(m.data)):
        raise ValueError(f"{name} contains NaN or infinite values")
    m.sum_duplicates()
    m.eliminate_zeros()
    m.sort_indices()
    return m


def _hit_matrix(topk: np.ndarray, test: sp.csr_matrix) -> np.ndarray:
    """``hits[u, j]`` = whether item ``topk[u, j]`` is in user ``u``'s test row; shape ``(b, K)``."""
    n_items = test.shape[1]
    rows = np.repeat(np.arange(test.shape[0], dtype=np.int64), np.diff(test.indptr))
    test_keys = rows * n_items + test.indices  # sorted: rows ascend and indices are sorted per row
    valid = topk >= 0
    keys = np.arange(topk.shape[0], dtype=np.int64)[:, None] * n_items + np.where(valid, topk, 0)
    pos = np.searchsorted(test_keys, keys)
    found = np.zeros(keys.shape, dtype=bool)
    inside = pos < test_keys.shape[0]
    found[inside] = test_keys[pos[inside]] == keys[inside]
    return found & valid


def _ranking_sums(topk: np.ndarray, test: sp.csr_matrix, ks: tuple[int, ...]) -> tuple[dict[str, float], int]:
    """Per-metric sums over the users with a test item, and how many such users there are.

    ``topk`` is ``(b, K)`` int64 with ``K >= max(ks)``; ``test`` is a canonical ``(b, n_items)`` CSR.
    """
    n_test = np.diff(test.indptr)
    has_test = n_test > 0
    hits = _hit_matrix(topk, test)[has_test]
    n_test = n_test[has_test]
    depth = hits.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, depth + 2))
    cum_hits = np.cumsum(hits, axis=1)
    cum_dcg = np.cumsum(hits * discounts, axis=1)
    ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, max(ks) + 2)))])
    first = np.where(hits.any(axis=1), hits.argmax(axis=1), depth)  # 0-based rank of the first hit
    sums: dict[str, float] = {}
    for k in ks:
        h = cum_hits[:, k - 1]
        sums[f"recall@{k}"] = float(np.sum(h / n_test))
        sums[f"ndcg@{k}"] = float(np.sum(cum_dcg[:, k - 1] / ideal[np.minimum(n_test, k)]))
        sums[f"precision@{k}"] = float(h.sum() / k)
        sums[f"hitrate@{k}"] = float(np.count_nonzero(h))
        sums[f"mrr@{k}"] = float(np.sum(np.where(first < k, 1.0 / (first + 1.0), 0.0)))
    return sums, int(has_test.sum())


def _ordered(sums: dict[str, float], count: int, ks: tuple[int, ...]) -> dict[str, float]:
    """Means keyed ``"<metric>@<k>"``, grouped by metric then by cut-off."""
    return {f"{m}@{k}": sums[f"{m}@{k}"] / count for m in _METRICS for k in ks}


def ranking_metrics(topk_ids: Any, test_items: Any, ks: Iterable[int] = (10, 20, 50)) -> dict[str, float]:
    """Recall, NDCG, precision, hit rate and MRR at each cut-off, averaged over users.

    Parameters
    ----------
    topk_ids : (b, K_max) int array
        Recommended item ids per user, best first, training items already excluded. Ids must be
        distinct within a row; ``-1`` pads rows with fewer than ``K_max`` candidates.
        ``K_max >= max(ks)``.
    test_items : scipy sparse (b, n_items)
        Held-out interactions of the same ``b`` users; stored nonzeros are the relevant items.
    ks : iterable of int
        Cut-offs.

    Returns
    -------
    dict mapping ``"recall@K"``, ``"ndcg@K"``, ``"precision@K"``, ``"hitrate@K"`` and ``"mrr@K"``
    to their mean over the users with at least one test item (see the module docstring).

    Reference: He et al., SIGIR 2020 (LightGCN protocol); Järvelin & Kekäläinen, TOIS 2002 (NDCG).
    """
    ks = _check_ks(ks)
    test = _check_interactions(test_items, "test_items")
    topk = check_array(topk_ids, "topk_ids", ndim=2, dtype=np.int64, min_rows=0)
    b, depth = topk.shape
    if b != test.shape[0]:
        raise ValueError(f"topk_ids has {b} rows but test_items has {test.shape[0]}; expected one row per user")
    if depth < ks[-1]:
        raise ValueError(f"topk_ids has {depth} columns, fewer than the largest cut-off max(ks)={ks[-1]}")
    if topk.size and (topk.min() < -1 or topk.max() >= test.shape[1]):
        raise ValueError(
            f"topk_ids must be item ids in [0, {test.shape[1]}) or -1 for padding, "
            f"got values in [{topk.min()}, {topk.max()}]"
        )
    ordered = np.sort(topk, axis=1)
    if np.any((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)):
        raise ValueError("topk_ids repeats an item within a row; expected distinct ids per user")
    sums, count = _ranking_sums(topk, test, ks)
    if count == 0:
        raise ValueError("test_items has no nonzero entry; expected at least one user with a held-out item")
    return _ordered(sums, count, ks)


def _check_scores(scores: Any, shape: tuple[int, int]) -> Any:
    """Check a block of scores from ``score_fn``: a real (b, n_items) numpy array or torch tensor, no NaN."""
    if hasattr(scores, "detach"):  # torch tensor: keep it on its device for the top-k kernel
        import torch

        if scores.dtype == torch.bool or scores.is_complex():
            raise TypeError(f"score_fn must return real-valued scores, got dtype {scores.dtype}")
        if scores.dtype not in (torch.float32, torch.float64):
            scores = scores.to(torch.float64)
        scores = scores.detach()
        has_nan = bool(torch.isnan(scores).any())
    else:
        scores = np.asarray(scores)
        if scores.dtype.kind not in "iuf":
            raise TypeError(f"score_fn must return real-valued scores, got dtype {scores.dtype}")
        if scores.dtype not in (np.float32, np.float64):
            scores = scores.astype(np.float64)
        has_nan = bool(np.isnan(scores).any())
    if tuple(scores.shape) != shape:
        raise ValueError(f"score_fn returned scores of shape {tuple(scores.shape)}, expected {shape}")
    if has_nan:
        raise ValueError("score_fn returned NaN scores")
    return scores


def evaluate_full_ranking(
    score_fn: Callable[[np.ndarray], Any],
    train: Any,
    test: Any,
    ks: Iterable[int] = (10, 20, 50),
    users: Any = None,
    block_size: int = 1024,
) -> dict[str, float]:
    """Full-ranking evaluation: score users in blocks, mask training items, compare top-K with test.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(user_ids)`` with ``user_ids`` a ``(b,)`` int64 numpy array returns the
        ``(b, n_items)`` scores as a numpy array or torch tensor (any device); higher is better.
    train : scipy sparse (n_users, n_items)
        Training interactions; their items are never recommended.
    test : scipy sparse (n_users, n_items)
        Held-out interactions; stored nonzeros are the relevant items.
    ks : iterable of int
        Cut-offs; the kernel retrieves ``max(ks)`` items per user.
    users : (m,) int array, optional
        Distinct users to evaluate; by default every user with at least one test item.
    block_size : int
        Users scored per call of ``score_fn``; only a ``(block_size, n_items)`` block is ever held.

    Returns
    -------
    dict as in :func:`ranking_metrics`, averaged over the evaluated users with a test item.
    Ties between scores are broken by ascending item id.

    Reference: He et al., "LightGCN", SIGIR 2020 (all-item ranking with training items masked).
    """
    from graphrec.kernels import topk_exclude

    if not callable(score_fn):
        raise TypeError(f"score_fn must be callable, got {type(score_fn).__name__}")
    train = _check_interactions(train, "train")
    test = _check_interactions(test, "test")
    if train.shape != test.shape:
        raise ValueError(
            f"train and test must have the same (n_users, n_items) shape, got {train.shape} and {test.shape}"
        )
    ks = _check_ks(ks)
    if isinstance(block_size, bool) or not isinstance(block_size, (numbers.Integral, np.integer)) or block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    n_users, n_items = test.shape
    if users is None:
        users = np.flatnonzero(np.diff(test.indptr))
    else:
        users = check_array(users, "users", ndim=1, dtype=np.int64)
        if users.min() < 0 or users.max() >= n_users:
            raise ValueError(f"users must be ids in [0, {n_users}), got values in [{users.min()}, {users.max()}]")
        if np.unique(users).shape[0] != users.shape[0]:
            raise ValueError("users holds duplicate ids; expected each user at most once")
        users = users[np.diff(test.indptr)[users] > 0]  # users without test items do not count
    totals = dict.fromkeys((f"{m}@{k}" for m in _METRICS for k in ks), 0.0)
    count = 0
    for start in range(0, users.shape[0], int(block_size)):
        ids = users[start : start + int(block_size)]
        scores = _check_scores(score_fn(ids), (ids.shape[0], n_items))
        seen = train[ids]
        topk, _ = topk_exclude(scores, ks[-1], seen.indptr, seen.indices)
        topk = topk.cpu().numpy() if hasattr(topk, "detach") else np.asarray(topk)
        sums, n = _ranking_sums(topk.astype(np.int64, copy=False), test[ids], ks)
        for key, value in sums.items():
            totals[key] += value
        count += n
    if count == 0:
        raise ValueError("none of the evaluated users has a held-out item in test")
    return _ordered(totals, count, ks)
