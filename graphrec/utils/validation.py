"""Input validation shared by every loader and estimator.

Each check raises ``ValueError`` (or ``TypeError``) naming the argument, what was wrong and what
is expected, so that bad input never turns into a silent wrong answer.
"""
from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    import torch


def check_int(value: Any, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (either bound optional); bools are rejected."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value}")
    return value


def check_float(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """``value`` as a finite ``float`` in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and value > high
    if value != value or below or above or value in (float("inf"), float("-inf")):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must be a finite number in {'(' if low_open else '['}{lo}, {hi}], got {value}")
    return value


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a ``bool`` if it is one (Python's or numpy's); else a ``TypeError`` naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def check_choice(value: Any, name: str, choices: tuple) -> Any:
    """``value`` if it is one of ``choices``; else a ``ValueError`` listing them."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not valid; expected one of {choices}")
    return value


def check_random_state(random_state: Any) -> np.random.Generator:
    """Turn ``None`` / int / ``Generator`` / ``RandomState`` into a ``numpy.random.Generator``."""
    if isinstance(random_state, (bool, np.bool_)):  # an Integral, but True is no seed: likely a misplaced flag
        raise TypeError("random_state must be None, an int, a numpy Generator or RandomState, got bool")
    if random_state is None or isinstance(random_state, (numbers.Integral, np.integer)):
        if random_state is not None and int(random_state) < 0:
            raise ValueError(f"random_state must be a non-negative integer, got {random_state}")
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    raise TypeError(
        f"random_state must be None, an int, a numpy Generator or RandomState, got {type(random_state).__name__}"
    )


def torch_generator(random_state: Any, device: str | None = "cpu") -> "torch.Generator":
    """A ``torch.Generator`` on ``device`` seeded from ``random_state`` (never touches global RNG)."""
    import torch

    rng = check_random_state(random_state)
    gen = torch.Generator(device=device or "cpu")
    gen.manual_seed(int(rng.integers(0, 2**63 - 1)))
    return gen


def check_device(device: Any) -> "torch.device":
    """Resolve ``device`` ('cpu', 'cuda', 'cuda:1', 'auto', torch.device) and check it exists."""
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available on this machine")
    return dev


def _check_not_complex(dtype: Any, name: str, target: Any = np.float64) -> None:
    """Casting complex to real drops the imaginary part with only a warning: refuse it instead
    (``target=None`` keeps the input's dtype, so nothing is cast)."""
    if np.dtype(dtype).kind == "c" and target is not None and np.dtype(target).kind != "c":
        raise TypeError(f"{name} must hold real numbers, got complex dtype {np.dtype(dtype)}")


def check_array(
    x: Any,
    name: str,
    *,
    ndim: int | None = None,
    dtype: Any = np.float64,
    allow_nan: bool = False,
    min_rows: int = 1,
) -> np.ndarray:
    """Convert ``x`` to a numpy array and check dimensionality, finiteness and size."""
    if sp.issparse(x):
        raise TypeError(f"{name} must be a dense array, got a scipy sparse matrix")
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - numpy error text is already clear
        raise TypeError(f"{name} could not be converted to an array: {exc}") from exc
    if arr.dtype == object:
        raise TypeError(f"{name} must hold numbers, got an object array")
    _check_not_complex(arr.dtype, name, dtype)
    if dtype is not None:
        if np.issubdtype(np.dtype(dtype), np.integer) and arr.size and not np.issubdtype(arr.dtype, np.integer):
            if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
                info = np.iinfo(dtype)
                if arr.min() < info.min or arr.max() > info.max:  # the cast would wrap around silently
                    raise ValueError(
                        f"{name} holds values outside the {np.dtype(dtype)} range [{info.min}, {info.max}] "
                        f"(min {arr.min():g}, max {arr.max():g})"
                    )
                arr = arr.astype(dtype)
            else:
                raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
        else:
            arr = arr.astype(dtype, copy=False)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if arr.ndim >= 1 and arr.shape[0] < min_rows:
        raise ValueError(f"{name} must have at least {min_rows} row(s), got shape {arr.shape}")
    if not allow_nan and np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; expected finite numbers")
    return arr


def check_adjacency(adjacency: Any, name: str = "adjacency", *, symmetric: bool = True) -> sp.csr_matrix:
    """Validate a square, finite, non-negative adjacency matrix and return it as sorted CSR float64.

    Explicitly stored zeros are dropped (they are not edges), from a copy: the caller keeps its zeros.

    Raises if it is empty, not square, holds NaN/inf or negative weights, or (with
    ``symmetric=True``) is not symmetric.
    """
    if hasattr(adjacency, "detach"):
        adjacency = adjacency.detach().cpu().numpy()
    if not sp.issparse(adjacency):
        # float64 first: scipy.sparse refuses float16, and object arrays get a clear error
        arr = check_array(adjacency, name, allow_nan=True, min_rows=0)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be a 2-d (n x n) matrix, got shape {arr.shape}")
        adjacency = sp.csr_matrix(arr)
    else:  # check_array refused complex dense input already
        _check_not_complex(adjacency.dtype, name)
    a = sp.csr_matrix(adjacency, dtype=np.float64)
    n, m = a.shape
    if n != m:
        raise ValueError(f"{name} must be square (n x n), got shape {a.shape}")
    if n == 0:
        raise ValueError(f"{name} is empty (0 nodes); expected a graph with at least one node")
    a.sum_duplicates()
    a.sort_indices()
    if not np.all(np.isfinite(a.data)):
        raise ValueError(f"{name} contains NaN or infinite edge weights")
    if a.nnz and a.data.min() < 0:
        raise ValueError(f"{name} has negative edge weights (min {a.data.min():g}); expected weights >= 0")
    if a.nnz and not a.data.all():
        # explicitly stored zeros are not edges; dropped on a copy, so the caller's matrix is left as it was
        a = a.copy()
        a.eliminate_zeros()
    if symmetric and a.nnz and abs(a - a.T).max() > 1e-8 * max(1.0, abs(a).max()):
        raise ValueError(f"{name} is not symmetric; expected an undirected graph (symmetrise with A.maximum(A.T))")
    return a


def check_features(features: Any, n_nodes: int, name: str = "features") -> np.ndarray | sp.csr_matrix:
    """Validate an ``(n_nodes, d)`` feature matrix; sparse input stays sparse (CSR float64)."""
    if hasattr(features, "detach"):
        features = features.detach().cpu().numpy()
    if sp.issparse(features):
        _check_not_complex(features.dtype, name)
        x = sp.csr_matrix(features, dtype=np.float64)
        if not np.all(np.isfinite(x.data)):
            raise ValueError(f"{name} contains NaN or infinite values")
    else:
        x = check_array(features, name, ndim=2)
    if x.shape[0] != n_nodes:
        raise ValueError(f"{name} has {x.shape[0]} rows but the graph has {n_nodes} nodes")
    if x.shape[1] == 0:
        raise ValueError(f"{name} has no columns; expected at least one feature")
    return x


def check_labels(labels: Any, n: int, name: str = "labels") -> np.ndarray:
    """Validate a length-``n`` vector of integer class labels (>= 0); ``-1`` marks unlabelled."""
    y = check_array(labels, name, ndim=1, dtype=np.int64, min_rows=0)
    if y.shape[0] != n:
        raise ValueError(f"{name} has length {y.shape[0]}, expected {n}")
    if y.size and y.min() < -1:
        raise ValueError(f"{name} must be >= 0 (or -1 for unlabelled), got min {y.min()}")
    return y
