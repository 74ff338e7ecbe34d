"""Compiled hot loops behind one dispatch: C++ (``graphrec._ext``), Numba, or the numpy reference.

* :func:`topk_exclude` -- the ``k`` best items per row of a score block, skipping each row's
  excluded (e.g. training) items: the inner loop of full-ranking evaluation.
* :func:`csr_matmul` -- sparse CSR times dense, multi-threaded over row ranges of equal nnz.
* :func:`csr_horner` -- the matrix polynomial ``sum_t alpha^t A^t H`` by Horner's rule, each step
  one fused ``alpha A R + H`` pass (graph propagation of S2CAG's smoothed representation).

``backend="auto"`` takes, per kernel, the backend that ``benchmarks/bench_kernels.py`` measured
fastest (``benchmarks/results/kernels.md``, 2-CPU machine):

* ``topk_exclude``: C++, 1.39x faster than the Numba twin (15.2 vs 21.2 ms; 5.8x ``torch.topk``
  after masking) on a 1024 x 40,981 block, k = 50.
* ``csr_horner``: C++, 1.30x faster than the Numba twin (68.4 vs 89.2 ms; 2.4x a loop of scipy
  products) for a degree-10 polynomial of a 100k x 100k matrix with 1M non-zeros on 17 columns.
* ``csr_matmul``: C++ and Numba within noise of each other (9.8 vs 9.0 ms, earlier 8.1 vs 9.4 ms;
  about 2.7-3.3x scipy's ``a @ x``) on a 100k x 100k matrix with 1M non-zeros times 64 columns.

On a 16-CPU host (``kernels_h100_host.md``) C++ leads by 1.24x (top-k) and 1.7x (product).

If ``graphrec._ext`` was not built, ``auto`` falls back to the Numba twins with one warning per
process, and ``backend="cpp"`` raises ``ImportError``. Numba is imported on first use only.
"""
from __future__ import annotations

import functools
import importlib.util
import numbers
import os
import types
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphrec.kernels import _reference
from graphrec.utils.validation import check_array

__all__ = ["available_backends", "csr_horner", "csr_matmul", "has_compiled", "topk_exclude"]

_BACKENDS = ("auto", "cpp", "numba", "reference")
# The backend measured fastest per kernel by benchmarks/bench_kernels.py (module docstring).
_AUTO = {"topk_exclude": "cpp", "csr_matmul": "cpp", "csr_horner": "cpp"}
_warned_missing_ext = False


@functools.lru_cache(maxsize=None)
def _load_ext() -> types.ModuleType | None:
    """The C++ module, or ``None`` when it was not built."""
    try:
        from graphrec import _ext
    except ImportError:
        return None
    return _ext


_warned_fallbacks: set[str] = set()


def has_compiled(symbol: str, fallback: str) -> bool:
    """Whether ``graphrec._ext`` holds the compiled kernel ``symbol``.

    When it does not (the module was not built, or was built from older sources), warns once per
    process and ``fallback`` (what runs instead, e.g. ``"SPE's rho uses its torch path"``).
    """
    if hasattr(_load_ext(), symbol):
        return True
    if fallback not in _warned_fallbacks:
        _warned_fallbacks.add(fallback)
        warnings.warn(
            f"graphrec._ext (the compiled C++ kernels) is missing or outdated; {fallback}. "
            "Reinstall graphrec with a C++17 compiler available to build it.",
            stacklevel=3,
        )
    return False


def available_backends() -> list[str]:
    """Backends usable in this installation (``"reference"`` always is); imports nothing heavy."""
    names = ["cpp"] if _load_ext() is not None else []
    if importlib.util.find_spec("numba") is not None:
        names.append("numba")
    return names + ["reference"]


def _resolve(backend: Any, kernel: str) -> str:
    """The concrete backend for ``kernel``: checks the name, applies ``auto`` and the fallback."""
    global _warned_missing_ext
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    if backend == "auto":
        backend = _AUTO[kernel]
        if backend == "cpp" and _load_ext() is None:
            if not _warned_missing_ext:
                _warned_missing_ext = True
                warnings.warn(
                    "graphrec._ext (the compiled C++ kernels) is missing; using the slower Numba twins. "
                    "Reinstall graphrec with a C++17 compiler available to build it.",
                    stacklevel=3,
                )
            return "numba"
    elif backend == "cpp" and _load_ext() is None:
        raise ImportError(
            "backend='cpp' needs the compiled module graphrec._ext, which is not built; reinstall graphrec "
            "with a C++17 compiler (pip install --no-build-isolation -e .) or use backend='numba'"
        )
    return backend


def _n_threads(n_threads: Any, backend: str) -> int:
    """Worker threads: ``n_threads`` checked, or every CPU this process may use."""
    if n_threads is None:
        if backend == "numba":
            import numba

            return numba.get_num_threads()
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)) or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer or None, got {n_threads!r}")
    return int(n_threads)


def _check_exclusion(indptr: Any, indices: Any, b: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR exclusion arrays as int64, rebased so that ``indptr[0] == 0``; all-empty when both None.

    A row slice of a parent CSR (``train.indptr[lo:hi + 1]`` with the parent's ``indices``) is
    accepted as is: ``indptr`` need not start at 0.
    """
    if (indptr is None) != (indices is None):
        raise ValueError("exclude_indptr and exclude_indices must be given together (or both None)")
    if indptr is None:
        return np.zeros(b + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    indptr = check_array(indptr, "exclude_indptr", ndim=1, dtype=np.int64, min_rows=0)
    indices = check_array(indices, "exclude_indices", ndim=1, dtype=np.int64, min_rows=0)
    if indptr.shape[0] != b + 1:
        raise ValueError(
            f"exclude_indptr must have length b + 1 = {b + 1} (one more than scores' rows), got {indptr.shape[0]}"
        )
    if indptr[0] < 0 or np.any(np.diff(indptr) < 0) or indptr[-1] > indices.shape[0]:
        raise ValueError(
            "exclude_indptr must be non-negative, non-decreasing and end within exclude_indices "
            f"(length {indices.shape[0]}), got values from {indptr[0]} to {indptr[-1]}"
        )
    indices = np.ascontiguousarray(indices[indptr[0] : indptr[-1]])
    indptr = indptr - indptr[0]
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise ValueError(
            f"exclude_indices must be item ids in [0, {n}) (n_items = scores' columns), "
            f"got values in [{indices.min()}, {indices.max()}]"
        )
    return indptr, indices


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _check_scores(scores: Any) -> np.ndarray:
    """A C-contiguous (b, n_items) float32/float64 array (integers become float64), NaN not checked."""
    scores = check_array(scores, "scores", ndim=2, dtype=None, allow_nan=True, min_rows=0)
    if np.issubdtype(scores.dtype, np.integer):
        scores = scores.astype(np.float64)
    if scores.dtype not in (np.float32, np.float64):
        raise TypeError(f"scores must be float32 or float64 (or integers), got dtype {scores.dtype}")
    return np.ascontiguousarray(scores)


def _topk_cuda(scores: Any, k: int, exclude_indptr: Any, exclude_indices: Any) -> tuple[Any, Any]:
    """The pure-torch path for a CUDA score tensor; returns CUDA tensors."""
    import torch

    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-dimensional (b, n_items), got shape {tuple(scores.shape)}")
    if not scores.is_floating_point():
        raise TypeError(f"scores must be a floating-point tensor, got dtype {scores.dtype}")
    if torch.isnan(scores).any():
        raise ValueError("scores contains NaN; expected real-valued scores (-inf/+inf are allowed)")
    indptr, indices = _check_exclusion(exclude_indptr, exclude_indices, *scores.shape)
    return _reference.topk_exclude_torch(scores.detach(), k, indptr, indices)


def topk_exclude(
    scores: Any,
    k: int,
    exclude_indptr: Any = None,
    exclude_indices: Any = None,
    *,
    backend: str = "auto",
    n_threads: int | None = None,
) -> tuple[Any, Any]:
    """The ``k`` best items of every row of a score block, never returning excluded items.

    Parameters
    ----------
    scores : (b, n_items) ndarray of float32/float64, or a torch tensor
        Higher is better; integers are ranked as float64; ``NaN`` is an error, ``±inf`` is not.
        A CPU tensor is converted to numpy; a CUDA tensor stays on its device (pure torch:
        ``masked_fill`` with ``-inf`` and ``torch.topk``), and CUDA tensors are returned.
    k : int
        Items per row, >= 1; ``k > n_items`` is allowed (the extra slots are padding).
    exclude_indptr, exclude_indices : int arrays, optional
        CSR structure (``indptr`` of length ``b + 1``) of the item ids to skip in each row, e.g.
        ``train[users].indptr`` and ``.indices``. Duplicates are harmless; a row slice of a
        parent matrix's ``indptr`` (not starting at 0) with the parent's ``indices`` works.
    backend : {"auto", "cpp", "numba", "reference"}
        ``auto`` is the fastest available (see the module docstring); ignored for CUDA tensors.
    n_threads : int, optional
        Threads for ``cpp``/``numba``; default all CPUs available to the process.

    Returns
    -------
    ids : (b, k) int64
        Per row, by descending score with ties broken by ascending item id; ``-1`` in the
        trailing slots when fewer than ``k`` items are left after the exclusions.
    values : (b, k), the dtype of ``scores``
        The scores of ``ids``; ``-inf`` in the padded slots.

    Reference: the bounded-heap selection of Knuth, *The Art of Computer Programming* vol. 3,
    5.2.3, used in the all-item evaluation of He et al., "LightGCN", SIGIR 2020.

    Examples
    --------
    >>> import numpy as np
    >>> ids, values = topk_exclude(np.array([[0.1, 0.9, 0.5, 0.9]]), 3, [0, 1], [2])
    >>> ids.tolist(), values.tolist()
    ([[1, 3, 0]], [[0.9, 0.9, 0.1]])
    """
    k = _check_k(k)
    if hasattr(scores, "detach") and scores.is_cuda:
        return _topk_cuda(scores, k, exclude_indptr, exclude_indices)
    scores = _check_scores(scores)
    b, n = scores.shape
    indptr, indices = _check_exclusion(exclude_indptr, exclude_indices, b, n)
    chosen = _resolve(backend, "topk_exclude")
    if chosen == "reference":
        if np.isnan(scores).any():
            ok = False
        else:
            ids, values = _reference.topk_exclude(scores, k, indptr, indices)
            ok = True
    elif chosen == "numba":
        from graphrec._numba import kernels as nb

        ids, values, ok = nb.topk_exclude(scores, k, indptr, indices, _n_threads(n_threads, chosen))
    else:
        ext = _load_ext()
        fn = ext.topk_exclude_f32 if scores.dtype == np.float32 else ext.topk_exclude_f64
        ids, values, ok = fn(scores, k, indptr, indices, _n_threads(n_threads, chosen))
    if not ok:
        raise ValueError("scores contains NaN; expected real-valued scores (-inf/+inf are allowed)")
    return ids, values


def _common_float_dtype(a_dtype: np.dtype, x_dtype: np.dtype) -> np.dtype:
    """float32 or float64 for the product of ``a`` and ``x`` (integers and bools count as float64)."""
    for name, dt in (("a", a_dtype), ("x", x_dtype)):
        if not (np.issubdtype(dt, np.floating) or np.issubdtype(dt, np.integer) or dt == np.bool_) or dt == np.float16:
            raise TypeError(f"{name} must hold float32 or float64 numbers (or integers), got dtype {dt}")
    dtype = np.result_type(a_dtype, x_dtype)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _check_sparse_dense(a: Any, x: Any, name: str) -> tuple[sp.csr_matrix, np.ndarray, bool]:
    """``a`` as CSR and ``x`` as a C-ordered 2-D array, both in their common float dtype."""
    if not sp.issparse(a):
        raise TypeError(f"a must be a scipy sparse matrix (m, n), got {type(a).__name__}")
    x = check_array(x, name, dtype=None, allow_nan=True, min_rows=0)
    squeeze = x.ndim == 1
    if squeeze:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-dimensional (n, d) or 1-dimensional (n,), got shape {x.shape}")
    if a.shape[1] != x.shape[0]:
        raise ValueError(
            f"a has {a.shape[1]} columns but {name} has {x.shape[0]} rows; expected {name} of shape ({a.shape[1]}, d)"
        )
    dtype = _common_float_dtype(a.dtype, x.dtype)
    return sp.csr_matrix(a, dtype=dtype), np.ascontiguousarray(x, dtype=dtype), squeeze


def _ext_index_arrays(csr: sp.csr_matrix) -> tuple[str, np.ndarray, np.ndarray]:
    """The C++ kernels' index suffix and CSR index arrays of one shared integer type."""
    if csr.indptr.dtype == csr.indices.dtype == np.int32:
        return "i32", csr.indptr, csr.indices
    return "i64", csr.indptr.astype(np.int64, copy=False), csr.indices.astype(np.int64, copy=False)


def csr_matmul(a: Any, x: Any, *, n_threads: int | None = None, backend: str = "auto") -> np.ndarray:
    """``a @ x`` for a sparse ``a`` and a dense ``x``, multi-threaded over rows of equal nnz.

    Parameters
    ----------
    a : scipy sparse matrix or array, shape (m, n)
        Converted to CSR if needed (no copy when it already is CSR of the result dtype).
    x : (n, d) or (n,) ndarray
        Dense; copied to C order if it is not.
    n_threads : int, optional
        Threads for ``cpp``/``numba``; default all CPUs available to the process.
    backend : {"auto", "cpp", "numba", "reference"}
        ``reference`` is scipy's own product.

    Returns
    -------
    (m, d) or (m,) ndarray in the common dtype of ``a`` and ``x``: float32 if both are float32,
    else float64.

    Reference: the row-wise CSR product of Saad, *Iterative Methods for Sparse Linear Systems*,
    2nd ed., SIAM 2003, 3.4.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> csr_matmul(sp.csr_matrix([[1.0, 0.0], [2.0, 3.0]]), np.array([[1.0], [1.0]])).tolist()
    [[1.0], [5.0]]
    """
    csr, x, squeeze = _check_sparse_dense(a, x, "x")
    chosen = _resolve(backend, "csr_matmul")
    if chosen == "reference":
        y = _reference.csr_matmul(csr, x)
    elif chosen == "numba":
        from graphrec._numba import kernels as nb

        y = nb.csr_matmul(csr.indptr, csr.indices, csr.data, x, _n_threads(n_threads, chosen))
    else:
        index, indptr, indices = _ext_index_arrays(csr)
        fn = getattr(_load_ext(), f"csr_matmul_{'f32' if x.dtype == np.float32 else 'f64'}_{index}")
        y = fn(indptr, indices, csr.data, x, _n_threads(n_threads, chosen))
    return y[:, 0] if squeeze else y


def csr_horner(
    a: Any, h: Any, alpha: float, steps: int, *, n_threads: int | None = None, backend: str = "auto"
) -> np.ndarray:
    """``sum_{t=0..steps} alpha^t a^t h`` by Horner's rule ``r <- alpha a r + h`` (``steps`` times from ``h``).

    Each step is one pass over ``a``'s rows that also adds ``h`` (no temporary for ``a r``): the
    polynomial graph filter of S2CAG's smoothed representation, or APPNP / SGC-style propagation.

    Parameters
    ----------
    a : scipy sparse matrix, shape (n, n)
    h : (n, d) or (n,) ndarray
    alpha : float
        Weight of each further power of ``a`` (any real number).
    steps : int >= 0
        Degree of the polynomial; ``0`` returns a copy of ``h``.
    n_threads : int, optional
        Threads for ``cpp``/``numba``; default all CPUs available to the process.
    backend : {"auto", "cpp", "numba", "reference"}
        ``reference`` loops over scipy's ``a @ r``.

    Returns
    -------
    (n, d) or (n,) ndarray in the common float dtype of ``a`` and ``h``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> a = sp.csr_matrix([[0.0, 1.0], [1.0, 0.0]])
    >>> csr_horner(a, np.array([1.0, 0.0]), 0.5, 2).tolist()  # h + 0.5 a h + 0.25 a^2 h
    [1.25, 0.5]
    """
    csr, h, squeeze = _check_sparse_dense(a, h, "h")
    if csr.shape[0] != csr.shape[1]:
        raise ValueError(f"a must be square (n, n) for a matrix polynomial, got shape {csr.shape}")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):  # int(2.7) would drop a step silently
        raise TypeError(f"steps must be an integer >= 0, got {type(steps).__name__} {steps!r}")
    steps = int(steps)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    alpha = float(alpha)
    if not np.isfinite(alpha):
        raise ValueError(f"alpha must be a finite number, got {alpha}")
    chosen = _resolve(backend, "csr_horner")
    if chosen == "reference":
        y = _reference.csr_horner(csr, h, alpha, steps)
    elif chosen == "numba":
        from graphrec._numba import kernels as nb

        y = nb.csr_horner(csr.indptr, csr.indices, csr.data, h, h.dtype.type(alpha), steps,
                          _n_threads(n_threads, chosen))
    else:
        index, indptr, indices = _ext_index_arrays(csr)
        fn = getattr(_load_ext(), f"csr_horner_{'f32' if h.dtype == np.float32 else 'f64'}_{index}")
        y = fn(indptr, indices, csr.data, h, alpha, steps, _n_threads(n_threads, chosen))
    return y[:, 0] if squeeze else y
