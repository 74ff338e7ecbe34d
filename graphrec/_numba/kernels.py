"""Numba implementations of the kernels in ``cpp_ext/``, with the same contracts.

Compiled with ``cache=True`` so the JIT cost is paid once per machine.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True)
def _topk_row(row, excluded, k, out_ids, out_vals):
    # Insertion into a sorted buffer of the best k (descending score, ascending id on ties);
    # candidates that cannot enter are rejected with one comparison.
    found = 0
    for j in range(row.shape[0]):
        if excluded[j]:
            continue
        s = row[j]
        if found == k:
            last = out_vals[k - 1]
            if s < last or (s == last and j > out_ids[k - 1]):
                continue
            pos = k - 1
        else:
            pos = found
            found += 1
        while pos > 0 and (out_vals[pos - 1] < s or (out_vals[pos - 1] == s and out_ids[pos - 1] > j)):
            out_vals[pos] = out_vals[pos - 1]
            out_ids[pos] = out_ids[pos - 1]
            pos -= 1
        out_vals[pos] = s
        out_ids[pos] = j
    for t in range(found, k):
        out_ids[t] = -1
        out_vals[t] = -np.inf


@njit(cache=True, nogil=True, parallel=True)
def topk_exclude(scores, k, excl_indptr, excl_indices):
    """Top-``k`` ids/values per row of ``scores`` (b, n), skipping each row's excluded ids."""
    b, n = scores.shape
    ids = np.empty((b, k), dtype=np.int64)
    vals = np.empty((b, k), dtype=scores.dtype)
    for r in prange(b):
        excluded = np.zeros(n, dtype=np.bool_)
        for p in range(excl_indptr[r], excl_indptr[r + 1]):
            excluded[excl_indices[p]] = True
        _topk_row(scores[r], excluded, k, ids[r], vals[r])
    return ids, vals


@njit(cache=True, nogil=True, parallel=True)
def csr_matmul(indptr, indices, data, x):
    """``A @ x`` for CSR ``A`` (m, n) given by its arrays and dense ``x`` (n, d)."""
    m = indptr.shape[0] - 1
    d = x.shape[1]
    y = np.zeros((m, d), dtype=x.dtype)
    for i in prange(m):
        for p in range(indptr[i], indptr[i + 1]):
            a = data[p]
            j = indices[p]
            for c in range(d):
                y[i, c] += a * x[j, c]
    return y
