"""Numba twins of the C++ kernels in ``cpp_ext/``, with the same contracts and algorithms.

Inputs are assumed checked by :mod:`graphrec.kernels`. Compiled with ``cache=True``, so the JIT
cost is paid once per machine. The ``parallel=True`` kernels split the rows into ``n_chunks``
contiguous chunks, one per thread: the caller passes the thread count (by default
``numba.get_num_threads()``, which, called inside a jitted function, would make it uncacheable).

References: the selection is the bounded-heap top-k of Knuth, *The Art of Computer Programming*
vol. 3, 5.2.3 (heapsort); the product is the row-wise CSR SpMM of Saad, *Iterative Methods for
Sparse Linear Systems*, 2nd ed., 3.4.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

_BLOCK = 64  # scores compared against the threshold per vectorised test, as in cpp_ext/topk.cpp


@njit(cache=True, nogil=True, inline="always")
def _before(v1, i1, v2, i2):
    """Whether (score v1, id i1) ranks before (v2, i2): higher score, then lower id."""
    return v1 > v2 or (v1 == v2 and i1 < i2)


@njit(cache=True, nogil=True)
def _push(heap_vals, heap_ids, size, v, j):
    """Add (v, j) to a heap of ``size`` entries that keeps the worst-ranked entry on top."""
    pos = size
    while pos > 0:
        parent = (pos - 1) // 2
        if not _before(heap_vals[parent], heap_ids[parent], v, j):
            break
        heap_vals[pos] = heap_vals[parent]
        heap_ids[pos] = heap_ids[parent]
        pos = parent
    heap_vals[pos] = v
    heap_ids[pos] = j


@njit(cache=True, nogil=True)
def _replace_top(heap_vals, heap_ids, size, v, j):
    """Put (v, j) in place of the top (the worst entry) and sift it down."""
    pos = 0
    child = 1
    while child < size:
        if child + 1 < size and _before(heap_vals[child], heap_ids[child], heap_vals[child + 1], heap_ids[child + 1]):
            child += 1  # the worse child
        if not _before(v, j, heap_vals[child], heap_ids[child]):
            break
        heap_vals[pos] = heap_vals[child]
        heap_ids[pos] = heap_ids[child]
        pos = child
        child = 2 * pos + 1
    heap_vals[pos] = v
    heap_ids[pos] = j


@njit(cache=True, nogil=True)
def _offer_block(row, start, stop, excluded, heap_vals, heap_ids, k):
    """Offer row[start:stop] to a full heap; False on a NaN. Returns (ok, new threshold)."""
    threshold = heap_vals[0]
    for u in range(start, stop):
        v = row[u]
        if not (v <= threshold):
            if np.isnan(v):
                return False, threshold
            if not excluded[u]:
                _replace_top(heap_vals, heap_ids, k, v, u)
                threshold = heap_vals[0]
    return True, threshold


@njit(cache=True, nogil=True)
def _select_row(row, excluded, heap_vals, heap_ids, out_ids, out_vals):
    """Top-k of one row into out_ids/out_vals (k = their length); False if the row holds a NaN.

    Once the heap holds k entries its top score is a threshold, and the scan only leaves its
    vectorised fast path for a score above it (or a NaN). A score equal to the threshold never
    enters: every kept entry has a smaller id.
    """
    n = row.shape[0]
    k = out_ids.shape[0]
    size = 0
    j = 0
    while j < n and size < k:
        v = row[j]
        if np.isnan(v):
            return False
        if not excluded[j]:
            _push(heap_vals, heap_ids, size, v, j)
            size += 1
        j += 1
    if size == k:
        threshold = heap_vals[0]
        n_blocks = (n - j) // _BLOCK
        for blk in range(n_blocks):
            base = j + blk * _BLOCK
            count = 0  # scores above the threshold or NaN; a constant trip count, so it vectorises
            for u in range(_BLOCK):
                count += not (row[base + u] <= threshold)
            if count:
                ok, threshold = _offer_block(row, base, base + _BLOCK, excluded, heap_vals, heap_ids, k)
                if not ok:
                    return False
        ok, threshold = _offer_block(row, j + n_blocks * _BLOCK, n, excluded, heap_vals, heap_ids, k)
        if not ok:
            return False
    # Pop the worst entry into the last free slot until the heap is empty: sorted output.
    for t in range(size, k):
        out_ids[t] = -1
        out_vals[t] = -np.inf
    while size > 0:
        size -= 1
        out_vals[size] = heap_vals[0]
        out_ids[size] = heap_ids[0]
        if size > 0:
            _replace_top(heap_vals, heap_ids, size, heap_vals[size], heap_ids[size])
    return True


@njit(cache=True, nogil=True, parallel=True)
def topk_exclude(scores, k, excl_indptr, excl_indices, n_chunks):
    """Top-``k`` of every row of ``scores`` (b, n) without each row's excluded ids.

    ``excl_indptr`` (b + 1,) starts at 0 and ``excl_indices`` holds ids in [0, n); the rows are
    split into ``n_chunks`` contiguous chunks (one per thread). Returns
    ``ids`` (b, k) int64, ``vals`` (b, k) and whether every row was NaN-free (the outputs are
    unspecified when it is False).
    """
    b, n = scores.shape
    ids = np.empty((b, k), dtype=np.int64)
    vals = np.empty((b, k), dtype=scores.dtype)
    n_chunks = max(1, min(b, n_chunks))
    ok = np.ones(n_chunks, dtype=np.bool_)
    for c in prange(n_chunks):
        excluded = np.zeros(n, dtype=np.bool_)
        heap_vals = np.empty(k, dtype=scores.dtype)
        heap_ids = np.empty(k, dtype=np.int64)
        for r in range(c * b // n_chunks, (c + 1) * b // n_chunks):
            for p in range(excl_indptr[r], excl_indptr[r + 1]):
                excluded[excl_indices[p]] = True
            row_ok = _select_row(scores[r], excluded, heap_vals, heap_ids, ids[r], vals[r])
            for p in range(excl_indptr[r], excl_indptr[r + 1]):
                excluded[excl_indices[p]] = False
            if not row_ok:
                ok[c] = False
                break
    return ids, vals, ok.all()


@njit(cache=True, nogil=True)
def _nnz_bounds(indptr, n_chunks):
    """Row boundaries (n_chunks + 1,) splitting the rows into chunks of about equal nnz."""
    m = indptr.shape[0] - 1
    bounds = np.empty(n_chunks + 1, dtype=np.int64)
    bounds[0] = 0
    bounds[n_chunks] = m
    total = indptr[m]
    for t in range(1, n_chunks):
        if total > 0:
            bounds[t] = np.searchsorted(indptr, total * t // n_chunks)
        else:
            bounds[t] = m * t // n_chunks
        bounds[t] = min(max(bounds[t], bounds[t - 1]), m)
    return bounds


@njit(cache=True, nogil=True, parallel=True)
def csr_matmul(indptr, indices, data, x, n_chunks):
    """``A @ x`` for CSR ``A`` (m, n) given by its arrays and C-contiguous dense ``x`` (n, d).

    Rows are split into ``n_chunks`` chunks (one per thread) of about equal non-zeros.
    """
    m = indptr.shape[0] - 1
    d = x.shape[1]
    y = np.empty((m, d), dtype=x.dtype)
    n_chunks = max(1, min(m, n_chunks))
    bounds = _nnz_bounds(indptr, n_chunks)
    for c in prange(n_chunks):
        for i in range(bounds[c], bounds[c + 1]):
            yi = y[i]
            yi[:] = 0
            for p in range(indptr[i], indptr[i + 1]):
                a = data[p]
                xj = x[indices[p]]
                for col in range(d):
                    yi[col] += a * xj[col]
    return y


@njit(cache=True, nogil=True, parallel=True)
def csr_horner(indptr, indices, data, h, alpha, steps, n_chunks):
    """``r <- alpha A r + h``, ``steps`` times from ``r = h``, for square CSR ``A`` and C-contiguous ``h``."""
    m = indptr.shape[0] - 1
    d = h.shape[1]
    r = h.copy()
    out = np.empty_like(h)
    n_chunks = max(1, min(m, n_chunks))
    bounds = _nnz_bounds(indptr, n_chunks)
    for _ in range(steps):
        for c in prange(n_chunks):
            for i in range(bounds[c], bounds[c + 1]):
                yi = out[i]
                yi[:] = 0
                for p in range(indptr[i], indptr[i + 1]):
                    a = data[p]
                    xj = r[indices[p]]
                    for col in range(d):
                        yi[col] += a * xj[col]
                for col in range(d):
                    yi[col] = alpha * yi[col] + h[i, col]
        r, out = out, r
    return r
