"""Compiled hot loops with one dispatch: C++ (``graphrec._ext``), Numba, or the numpy reference.

``backend="auto"`` uses the backend measured fastest per kernel by ``benchmarks/bench_kernels.py``
(numbers in ``BENCHMARKS.md``): C++ for ``topk_exclude`` (1.58x torch.topk, Numba 1.54x) and
Numba for ``csr_matmul`` (2.51x scipy, C++ 1.93x). If the C++ module is missing where it is
the default, ``auto`` falls back to Numba with one warning.
"""
from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphrec.kernels import _reference

__all__ = ["available_backends", "csr_matmul", "topk_exclude"]

_BACKENDS = ("auto", "cpp", "numba", "reference")
# The fastest backend per kernel, as measured by benchmarks/bench_kernels.py.
_AUTO = {"topk_exclude": "cpp", "csr_matmul": "numba"}
_warned_missing_ext = False


def _ext():
    """The C++ module, or ``None`` when it was not built."""
    try:
        from graphrec import _ext as ext
    except ImportError:
        return None
    return ext


def available_backends() -> list[str]:
    """Backends usable in this installation, fastest first."""
    names = ["cpp"] if _ext() is not None else []
    try:
        import numba  # noqa: F401

        names.append("numba")
    except ImportError:
        pass
    return names + ["reference"]


def _resolve(backend: str, kernel: str) -> str:
    global _warned_missing_ext
    if backend not in _BACKENDS:
        raise ValueError(f"backend={backend!r} is not valid; expected one of {_BACKENDS}")
    if backend == "cpp" and _ext() is None:
        raise ImportError("backend='cpp' needs the compiled module graphrec._ext; reinstall graphrec with a C++ compiler")
    if backend == "auto":
        if _AUTO[kernel] != "cpp" or _ext() is not None:
            return _AUTO[kernel]
        if not _warned_missing_ext:
            warnings.warn(
                "graphrec._ext (compiled kernels) is missing; using the Numba twins instead", RuntimeWarning, stacklevel=3
            )
            _warned_missing_ext = True
        return "numba"
    return backend


def _n_threads(n_threads: int | None) -> int:
    if n_threads is None:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if not isinstance(n_threads, int) or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer or None, got {n_threads!r}")
    return n_threads


def _check_exclusion(indptr: Any, indices: Any, b: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    if (indptr is None) != (indices is None):
        raise ValueError("exclude_indptr and exclude_indices must be given together")
    if indptr is None:
        return np.zeros(b + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    if indptr.ndim != 1 or indptr.shape[0] != b + 1:
        raise ValueError(f"exclude_indptr must have length b + 1 = {b + 1}, got shape {indptr.shape}")
    if indptr[0] < 0 or np.any(np.diff(indptr) < 0) or indptr[-1] > indices.shape[0]:
        raise ValueError("exclude_indptr must be non-negative, non-decreasing and end within exclude_indices")
    # A slice of a parent CSR's indptr need not start at 0: rebase it onto the rows it covers.
    indices = indices[indptr[0] : indptr[-1]]
    indptr = indptr - indptr[0]
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise ValueError(f"exclude_indices holds item ids outside [0, {n})")
    return indptr, indices


def topk_exclude(
    scores: Any,
    k: int,
    exclude_indptr: Any = None,
    exclude_indices: Any = None,
    *,
    backend: str = "auto",
    n_threads: int | None = None,
) -> tuple[Any, Any]:
    """The ``k`` best items of every row of a score block, skipping excluded items.

    Parameters
    ----------
    scores : ndarray of float32/float64, shape (b, n_items), or a torch tensor
        A CUDA tensor is handled on the device and torch tensors are returned; a CPU tensor is
        converted to numpy.
    k : int
        Items per row; ``k > n_items`` pads.
    exclude_indptr, exclude_indices : int arrays, optional
        CSR structure of the items to skip per row (e.g. ``train[users].indptr/.indices``).

    Returns
    -------
    ids : ndarray of int64, shape (b, k)
        Sorted by descending score, ties by ascending id; ``-1`` where fewer than ``k`` remain.
    values : ndarray, shape (b, k)
        The scores of ``ids``; ``-inf`` in padded slots.
    """
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    k = int(k)
    if hasattr(scores, "detach"):
        if scores.is_cuda:
            if scores.ndim != 2:
                raise ValueError(f"scores must be 2-d (b, n_items), got shape {tuple(scores.shape)}")
            import torch

            if torch.isnan(scores).any():
                raise ValueError("scores contains NaN")
            indptr, indices = _check_exclusion(exclude_indptr, exclude_indices, *scores.shape)
            return _reference.topk_exclude_torch(scores.detach(), k, indptr, indices)
        scores = scores.detach().numpy()
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-d (b, n_items), got shape {scores.shape}")
    if scores.dtype not in (np.float32, np.float64):
        if not np.issubdtype(scores.dtype, np.number):
            raise TypeError(f"scores must be float32 or float64, got dtype {scores.dtype}")
        scores = scores.astype(np.float64)
    scores = np.ascontiguousarray(scores)
    b, n = scores.shape
    indptr, indices = _check_exclusion(exclude_indptr, exclude_indices, b, n)
    chosen = _resolve(backend, "topk_exclude")
    if chosen == "reference":
        if np.isnan(scores).any():
            raise ValueError("scores contains NaN")
        return _reference.topk_exclude(scores, k, indptr, indices)
    if chosen == "numba":
        if np.isnan(scores).any():
            raise ValueError("scores contains NaN")
        from graphrec._numba import kernels as nb

        return nb.topk_exclude(scores, k, indptr, indices)
    fn = _ext().topk_exclude_f32 if scores.dtype == np.float32 else _ext().topk_exclude_f64
    try:
        return fn(scores, k, indptr, indices, _n_threads(n_threads))
    except ValueError as exc:  # the C++ side reports NaN
        raise ValueError(str(exc)) from None


def csr_matmul(a: sp.spmatrix, x: Any, *, backend: str = "auto", n_threads: int | None = None) -> np.ndarray:
    """``a @ x`` for a sparse ``a`` (m, n) and a dense ``x`` (n, d), multi-threaded over rows.

    The result has the common dtype of ``a`` and ``x`` (float32 or float64), shape (m, d).
    """
    if not sp.issparse(a):
        raise TypeError(f"a must be a scipy sparse matrix, got {type(a).__name__}")
    x = np.asarray(x)
    squeeze = x.ndim == 1
    if squeeze:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"x must be 1-d or 2-d, got shape {x.shape}")
    if a.shape[1] != x.shape[0]:
        raise ValueError(f"a has {a.shape[1]} columns but x has {x.shape[0]} rows")
    dtype = np.result_type(a.dtype, x.dtype)
    if dtype not in (np.float32, np.float64):
        dtype = np.dtype(np.float64)
    csr = sp.csr_matrix(a, dtype=dtype)
    xd = np.ascontiguousarray(x, dtype=dtype)
    chosen = _resolve(backend, "csr_matmul")
    if chosen == "reference":
        y = _reference.csr_matmul(csr, xd)
    else:
        indptr = csr.indptr.astype(np.int64, copy=False)
        indices = csr.indices.astype(np.int64, copy=False)
        if chosen == "numba":
            from graphrec._numba import kernels as nb

            y = nb.csr_matmul(indptr, indices, csr.data, xd)
        else:
            fn = _ext().csr_matmul_f32 if dtype == np.float32 else _ext().csr_matmul_f64
            y = fn(indptr, indices, csr.data, xd, _n_threads(n_threads))
    return y[:, 0] if squeeze else y
