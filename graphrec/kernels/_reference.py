"""Reference implementations: simple, obviously right, and the ground truth of the kernel tests.

Plus :func:`topk_exclude_torch`, the pure-torch top-k that :func:`graphrec.kernels.topk_exclude`
runs on CUDA tensors (tested against the numpy reference on CPU tensors).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp


def topk_exclude(
    scores: np.ndarray, k: int, excl_indptr: np.ndarray, excl_indices: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` per row by a full sort on (-score, id) of the items left after the exclusions.

    Parameters
    ----------
    scores : (b, n) float ndarray without NaN
    k : int >= 1
    excl_indptr : (b + 1,) int64, starting at 0
    excl_indices : (nnz,) int64 item ids in [0, n)

    Returns
    -------
    ids : (b, k) int64, ``-1`` padded; values : (b, k) of ``scores.dtype``, ``-inf`` padded.
    """
    b, n = scores.shape
    ids = np.full((b, k), -1, dtype=np.int64)
    values = np.full((b, k), -np.inf, dtype=scores.dtype)
    for r in range(b):
        keep = np.ones(n, dtype=bool)
        keep[excl_indices[excl_indptr[r] : excl_indptr[r + 1]]] = False
        candidates = np.flatnonzero(keep)
        best = candidates[np.lexsort((candidates, -scores[r, candidates]))][:k]
        ids[r, : best.size] = best
        values[r, : best.size] = scores[r, best]
    return ids, values


def csr_matmul(a: sp.csr_matrix, x: np.ndarray) -> np.ndarray:
    """scipy's own sparse (m, n) times dense (n, d) product, as a (m, d) ndarray."""
    return np.asarray(a @ x)


def csr_horner(a: sp.csr_matrix, h: np.ndarray, alpha: float, steps: int) -> np.ndarray:
    """``r <- alpha a r + h``, ``steps`` times from ``r = h``, with scipy's product."""
    r = h.copy()
    for _ in range(steps):
        r = alpha * np.asarray(a @ r) + h
    return r


def topk_exclude_torch(scores: Any, k: int, excl_indptr: np.ndarray, excl_indices: np.ndarray) -> tuple[Any, Any]:
    """Top-``k`` per row on the tensor's own device: ``masked_fill`` with ``-inf``, ``torch.topk``.

    Same contract as :func:`topk_exclude` (ties by ascending id, ``-inf`` scores are ordinary
    candidates, ``-1``/``-inf`` padding), which ``torch.topk`` alone does not give: it returns
    an unspecified subset of the items tied at the k-th score. So ``torch.topk`` only finds the
    k-th best admissible score ``t`` per row; every admissible item above ``t`` is kept, and the
    items equal to ``t`` fill the remaining slots in ascending id order (a cumulative count).

    Parameters
    ----------
    scores : (b, n) floating tensor without NaN, on any device
    k : int >= 1
    excl_indptr : (b + 1,) int64 ndarray starting at 0; excl_indices : (nnz,) int64 ndarray

    Returns
    -------
    ids : (b, k) int64 tensor; values : (b, k) tensor of ``scores.dtype``; on ``scores.device``.
    """
    import torch

    b, n = scores.shape
    dev = scores.device
    excluded = torch.zeros((b, n), dtype=torch.bool, device=dev)
    if excl_indices.size:
        counts = torch.as_tensor(np.diff(excl_indptr), device=dev)
        rows = torch.repeat_interleave(torch.arange(b, device=dev), counts)
        excluded[rows, torch.as_tensor(excl_indices, device=dev)] = True
    ids = torch.full((b, k), -1, dtype=torch.int64, device=dev)
    values = torch.full((b, k), -torch.inf, dtype=scores.dtype, device=dev)
    kk = min(k, n)
    if kk == 0 or b == 0:
        return ids, values
    masked = scores.masked_fill(excluded, -torch.inf)
    kth = torch.topk(masked, kk, dim=1).values[:, -1:]
    above = masked > kth
    tied = (scores == kth) & ~excluded
    slots_left = kk - above.sum(dim=1, keepdim=True)
    kept = above | (tied & (torch.cumsum(tied, dim=1, dtype=torch.int32) <= slots_left))
    # The kept ids in ascending order: the largest keys n - id; key 0 marks "not kept".
    key = torch.where(kept, n - torch.arange(n, dtype=torch.int32, device=dev), 0)
    key, col = torch.topk(key, kk, dim=1)
    valid = key > 0
    top_ids = torch.where(valid, col, -1)
    top_values = torch.where(valid, scores.gather(1, col), -torch.inf)
    # By descending score; the stable sort keeps ascending ids among ties, valid slots first.
    order = torch.sort(top_values, dim=1, descending=True, stable=True).indices
    ids[:, :kk] = top_ids.gather(1, order)
    values[:, :kk] = top_values.gather(1, order)
    return ids, values
