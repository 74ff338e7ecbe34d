"""Data protocols for collaborative filtering: DirectAU's 5-core per-user 8:1:1 split and the given split.

* :func:`ratio_split` -- k-core filtering, then every user's items shuffled with a seed and cut
  8:1:1 with RecBole's rounding (``_calcu_split_ids``: a part whose share is below one item
  still gets one, so a 5-item user is split 3/1/1). This is the protocol of Wang et al.,
  "Towards Representation Alignment and Uniformity in Collaborative Filtering", KDD 2022.
* :func:`given_split` -- the fixed train/test files as distributed with LightGCN (He et al.,
  SIGIR 2020), no validation part.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphrec.datasets.interactions import Interactions
from graphrec.utils.validation import check_int, check_random_state

__all__ = ["k_core", "ratio_split", "given_split", "split_counts"]


def split_counts(total: int, ratios: tuple[float, ...]) -> list[int]:
    """How many of a user's ``total`` items go to each part, with RecBole's rounding.

    >>> split_counts(5, (0.8, 0.1, 0.1)), split_counts(10, (0.8, 0.1, 0.1)), split_counts(8, (0.8, 0.1, 0.1))
    ([3, 1, 1], [8, 1, 1], [6, 1, 1])
    """
    counts = [int(r * total) for r in ratios]
    counts[0] = total - sum(counts[1:])
    for i in range(1, len(ratios)):
        if counts[0] <= 1:
            break
        if 0 < ratios[-i] * total < 1:
            counts[-i] += 1
            counts[0] -= 1
    return counts


def k_core(user_items: sp.csr_matrix, k: int = 5) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Drop users and items with fewer than ``k`` interactions until none is left.

    Returns the filtered matrix and the kept original user and item ids.
    """
    k = check_int(k, "k", low=1)
    m = sp.csr_matrix(user_items)
    users, items = np.arange(m.shape[0]), np.arange(m.shape[1])
    while True:
        keep_u = np.diff(m.indptr) >= k
        keep_i = np.bincount(m.indices, minlength=m.shape[1]) >= k
        if keep_u.all() and keep_i.all():
            return m, users, items
        m = m[keep_u][:, keep_i].tocsr()
        users, items = users[keep_u], items[keep_i]


def _as_interactions(data: Any) -> Interactions:
    if isinstance(data, Interactions):
        return data
    if sp.issparse(data):
        return Interactions(sp.csr_matrix(data))
    raise TypeError(f"data must be an Interactions or a scipy sparse users x items matrix, got {type(data).__name__}")


def ratio_split(
    data: Interactions | sp.spmatrix,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    *,
    min_interactions: int = 5,
    random_state: Any = 0,
) -> Interactions:
    """DirectAU's protocol: ``min_interactions``-core, then a per-user random split by ``ratios``.

    Parameters
    ----------
    data : Interactions or sparse (n_users, n_items)
        All interactions (existing splits are joined back, as DirectAU joins LightGCN's files; a pair
        in two splits counts once, with its weight).
    ratios : (train, valid, test) shares, positive, normalised to sum to 1.
    min_interactions : int >= 1
        Core size applied to users and items (5 in the paper; 1 keeps everything).
    random_state : seed of the per-user shuffles.

    Returns
    -------
    Interactions with splits ``"train"``, ``"valid"``, ``"test"`` (disjoint, union = the k-core).
    """
    inter = _as_interactions(data)
    try:
        ratios = tuple(float(r) for r in ratios)
    except (TypeError, ValueError):
        raise TypeError(f"ratios must be three positive shares (train, valid, test), got {ratios!r}") from None
    if len(ratios) != 3 or not all(np.isfinite(r) and r > 0 for r in ratios):
        raise ValueError(f"ratios must be three positive shares (train, valid, test), got {ratios!r}")
    ratios = tuple(r / sum(ratios) for r in ratios)
    full = inter.user_items
    if inter.splits:
        # joined with the elementwise maximum: a pair in two splits counts once, with its weight
        full = functools.reduce(lambda a, b: a.maximum(b), inter.splits.values()).tocsr()
        full.sort_indices()
    m, users, items = k_core(full, min_interactions)
    if m.nnz == 0:
        raise ValueError(f"no interaction is left after the {min_interactions}-core filter")
    rng = check_random_state(random_state)
    part = np.empty(m.nnz, dtype=np.int8)
    for u in range(m.shape[0]):
        lo, hi = m.indptr[u], m.indptr[u + 1]
        counts = split_counts(hi - lo, ratios)
        labels = np.repeat(np.arange(3, dtype=np.int8), counts)
        part[lo:hi] = labels[rng.permutation(hi - lo)]
    splits = {}
    for j, name in enumerate(("train", "valid", "test")):
        mask = (part == j).astype(np.float32)
        s = sp.csr_matrix((m.data * mask, m.indices.copy(), m.indptr.copy()), shape=m.shape)
        s.eliminate_zeros()
        splits[name] = s
    ids = lambda orig, kept: kept if orig is None else orig[kept]  # noqa: E731
    return Interactions(m, splits=splits, user_ids=ids(inter.user_ids, users), item_ids=ids(inter.item_ids, items),
                        name=inter.name)


def given_split(data: Interactions) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The distributed ``(train, test)`` matrices (LightGCN files); raises if the data has none."""
    if not isinstance(data, Interactions):
        raise TypeError(f"data must be an Interactions, got {type(data).__name__}")
    if not {"train", "test"} <= set(data.splits):
        raise ValueError(f"{data.name!r} has no given train/test split (splits: {sorted(data.splits)}); "
                         "use ratio_split for the DirectAU protocol")
    return data.splits["train"], data.splits["test"]
