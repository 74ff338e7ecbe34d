"""Readers for FunBaT's continuous-indexed tensor files (pickled ``.npy`` dicts).

Fang et al., "Functional Bayesian Tucker Decomposition for Continuous-indexed Tensor Data",
ICLR 2024 (https://github.com/xuangu-fang/Functional-Bayesian-Tucker-Decomposition).

Each file holds a 0-d object array wrapping a dict. The pickle stream is read with an unpickler
that resolves only the four numpy globals such files use (``ndarray``, ``dtype``,
``_reconstruct``, ``scalar``), so a tampered file cannot run code even though ``fetch_files``
has already checked its sha256. Both readers return a
:class:`~graphrec.datasets.tensor.ContinuousTensor`.
"""
from __future__ import annotations

import importlib.util
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from graphrec.datasets._cards import DatasetCard
from graphrec.datasets._registry import register_format
from graphrec.datasets.tensor import ContinuousTensor

_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
}
# numpy >= 2 moved numpy.core to numpy._core; pickles written by numpy 1.x name the old path.
_CORE = "numpy._core" if importlib.util.find_spec("numpy._core") is not None else "numpy.core"


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Resolve only the numpy globals needed to rebuild arrays and scalars; refuse anything else."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a FunBaT data file")
        if module.startswith("numpy.core.") or module.startswith("numpy._core."):
            module = _CORE + module[module.index(".multiarray"):]
        return super().find_class(module, name)


def load_pickled_npy(path: Path) -> dict:
    """The dict stored in a ``.npy`` file holding one pickled 0-d object array.

    Raises ``ValueError`` naming the file when it is not such a file or its pickle refers to
    anything but numpy arrays, dtypes and scalars.
    """
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
            if dtype != np.dtype(object) or shape != ():
                raise ValueError(f"expected a pickled 0-d object array, got dtype {dtype} and shape {shape}")
            obj = _NumpyOnlyUnpickler(fh, encoding="latin1").load()
    except (ValueError, EOFError, pickle.UnpicklingError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} is not a readable FunBaT .npy file: {exc}") from exc
    if isinstance(obj, np.ndarray) and obj.shape == ():
        obj = obj.item()
    if not isinstance(obj, dict):
        raise ValueError(f"{path} must hold a dict, got {type(obj).__name__}")
    return obj


def _entry(d: dict, key: str, path: Path, where: str):
    if key not in d:
        raise ValueError(f"{path}: {where} lacks the key {key!r}; found {sorted(map(str, d))}")
    return d[key]


def _fold_arrays(fold: dict, keys: tuple[str, str, str, str], k: int, n_modes: int, path: Path):
    """``(train index, train y, test index, test y)`` of one fold, shape-checked."""
    arrays = [np.asarray(_entry(fold, key, path, f"fold {k}")) for key in keys]
    for key, arr in zip(keys, arrays):
        if arr.dtype.kind not in "biuf":  # e.g. an object array, which np.isfinite cannot check
            raise ValueError(f"{path}: fold {k} {key} must hold numbers, got dtype {arr.dtype}")
    for ind, y, part in ((arrays[0], arrays[1], "train"), (arrays[2], arrays[3], "test")):
        if ind.ndim != 2 or ind.shape[1] != n_modes or y.shape != (ind.shape[0],) or ind.shape[0] == 0:
            raise ValueError(
                f"{path}: fold {k} {part} indices have shape {ind.shape} and values {y.shape}; "
                f"expected (n, {n_modes}) and (n,) with n >= 1"
            )
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{path}: fold {k} {part} values are not all finite")
    return arrays


def _grid(d: dict, path: Path) -> np.ndarray:
    raw = np.asarray(_entry(d, "ndims", path, "the file")).ravel()
    # whole numbers only: 4.7 bins used to become 4, and a string failed inside numpy
    if raw.size < 1 or raw.dtype.kind not in "iuf" or not np.all(raw == np.round(raw)) or raw.min() < 1:
        raise ValueError(f"{path}: ndims must list a positive number of bins per mode, got {raw.tolist()}")
    return raw.astype(np.int64)


def _mode_names(names: Sequence[str] | None, n_modes: int) -> list[str] | None:
    if names is not None and len(names) != n_modes:
        raise ValueError(f"mode_names has {len(names)} names for {n_modes} modes")
    return None if names is None else list(names)


def _only_file(paths: dict[str, Path], fmt: str) -> Path:
    if len(paths) != 1:
        raise ValueError(f"the {fmt!r} reader expects exactly one file, got {sorted(paths)}")
    return next(iter(paths.values()))


@register_format("funbat-disct")
def read_funbat_disct(
    paths: dict[str, Path], card: DatasetCard | None, *, mode_names: Sequence[str] | None = None
) -> ContinuousTensor:
    """A binned FunBaT baseline file ``DISCT_*.npy`` -> :class:`ContinuousTensor` with 5 folds.

    The file holds ``{"ndims": [n_1, ..., n_K], "data": [fold, ...]}`` with per-fold
    ``tr_ind`` / ``te_ind`` (bin indices, shape (n, K)) and ``tr_y`` / ``te_y`` (values). Every
    fold is an 80/20 split of the same observations, so the observations are stored once: the
    rows (bins, value) of fold 0 sorted lexicographically (bins of mode 1 first, value last).
    Each fold maps its rows onto them by the same sort, so identical rows (same bins and value,
    e.g. two stations on one day) are matched one to one; a fold holding other rows raises
    ``ValueError``.

    Coordinates are bin centres rescaled to [0, 1] per mode: ``(b + 0.5) / n_k`` for bin ``b``
    of ``n_k`` (the file's modes were min-max scaled and cut into ``n_k`` equal-width bins;
    FunBaT's Beijing indices are these times 10).

    Returns
    -------
    ContinuousTensor
        ``coords`` (N, K) in (0, 1), ``values`` (N,), ``folds`` sorted (train, test) index pairs;
        ``meta["grid"]`` (K,) bins per mode and ``meta["bins"]`` (N, K) int64 bin indices.
    """
    path = _only_file(paths, "funbat-disct")
    d = load_pickled_npy(path)
    grid = _grid(d, path)
    n_modes = grid.size
    folds = _entry(d, "data", path, "the file")
    if not isinstance(folds, (list, tuple)) or not folds:
        raise ValueError(f"{path}: data must be a non-empty list of folds")
    reference = None
    pairs = []
    for k, fold in enumerate(folds):
        tr_ind, tr_y, te_ind, te_y = _fold_arrays(fold, ("tr_ind", "tr_y", "te_ind", "te_y"), k, n_modes, path)
        ind = np.vstack([tr_ind, te_ind])
        if not np.all(ind == np.round(ind)) or ind.min() < 0 or np.any(ind.max(axis=0) >= grid):
            raise ValueError(f"{path}: fold {k} holds bin indices outside the grid {grid.tolist()}")
        rows = np.column_stack([ind.astype(np.float64), np.concatenate([tr_y, te_y]).astype(np.float64)])
        order = np.lexsort(rows.T[::-1])
        if reference is None:
            reference = rows[order]
        elif rows.shape != reference.shape or not np.array_equal(rows[order], reference):
            raise ValueError(f"{path}: fold {k} does not hold the same observations as fold 0")
        position = np.empty(len(rows), dtype=np.int64)
        position[order] = np.arange(len(rows))
        pairs.append((np.sort(position[: len(tr_y)]), np.sort(position[len(tr_y):])))
    bins = reference[:, :n_modes].astype(np.int64)
    coords = (bins + 0.5) / grid
    return ContinuousTensor(
        coords,
        reference[:, n_modes],
        folds=pairs,
        mode_names=_mode_names(mode_names, n_modes),
        name=card.name if card is not None else path.stem,
        meta={"grid": grid, "bins": bins},
    )


def _grid_coords(d: dict, grid: np.ndarray, bins: np.ndarray, coords: np.ndarray, path: Path) -> list[np.ndarray]:
    """Per mode, the coordinate of every grid position (``DISCT_2_CONTI_dicts``), checked against the rows."""
    maps = _entry(d, "DISCT_2_CONTI_dicts", path, "the file")
    if not isinstance(maps, (list, tuple)) or len(maps) != grid.size:
        raise ValueError(f"{path}: DISCT_2_CONTI_dicts must hold one dict per mode ({grid.size})")
    out = []
    for k, mapping in enumerate(maps):
        if sorted(mapping) != list(range(grid[k])):
            raise ValueError(f"{path}: DISCT_2_CONTI_dicts[{k}] must map every position 0 .. {grid[k] - 1}")
        out.append(np.array([mapping[b] for b in range(grid[k])], dtype=np.float64))
        b = bins[:, k]
        if b.min() < 0 or b.max() >= grid[k] or not np.array_equal(out[k][b], coords[:, k]):
            raise ValueError(f"{path}: the *_ind_DISCT and *_ind_CONTI entries of mode {k} disagree")
    return out


@register_format("funbat-conti")
def read_funbat_conti(
    paths: dict[str, Path], card: DatasetCard | None, *, mode_names: Sequence[str] | None = None
) -> ContinuousTensor:
    """A FunBaT continuous-index file (the synthetic sets) -> :class:`ContinuousTensor`, one fold.

    Uses ``data[0]``'s ``tr_ind_CONTI`` / ``tr_y`` and ``te_ind_CONTI`` / ``te_y``: the
    observations are the training rows followed by the test rows, and the single fold is
    ``(0 .. n_train-1, n_train .. N-1)``. Coordinates are kept as stored (already in [0, 1]).

    Returns
    -------
    ContinuousTensor
        ``meta["grid"]`` (K,) number of distinct coordinates per mode; ``meta["grid_coords"]`` the
        K grids (``DISCT_2_CONTI_dicts``); ``meta["bins"]`` (N, K) each row's positions on them
        (``*_ind_DISCT``; ``coords[i, k] == grid_coords[k][bins[i, k]]`` is checked); and
        ``meta["true_factors"]``, the K true latent trajectories on the grids, when the file
        stores them (``U1_traj_true``, ...).
    """
    path = _only_file(paths, "funbat-conti")
    d = load_pickled_npy(path)
    grid = _grid(d, path)
    n_modes = grid.size
    folds = _entry(d, "data", path, "the file")
    if not isinstance(folds, (list, tuple)) or len(folds) != 1:
        raise ValueError(f"{path}: data must be a list holding one fold")
    fold = folds[0]
    tr_x, tr_y, te_x, te_y = _fold_arrays(fold, ("tr_ind_CONTI", "tr_y", "te_ind_CONTI", "te_y"), 0, n_modes, path)
    tr_b, _, te_b, _ = _fold_arrays(fold, ("tr_ind_DISCT", "tr_y", "te_ind_DISCT", "te_y"), 0, n_modes, path)
    coords = np.vstack([tr_x, te_x]).astype(np.float64)
    bins = np.vstack([tr_b, te_b])
    if not np.all(bins == np.round(bins)):
        raise ValueError(f"{path}: the *_ind_DISCT entries must be whole grid positions")
    bins = bins.astype(np.int64)
    meta = {"grid": grid, "bins": bins, "grid_coords": _grid_coords(d, grid, bins, coords, path)}
    true = [fold.get(f"U{k + 1}_traj_true") for k in range(n_modes)]
    if all(t is not None for t in true):
        meta["true_factors"] = [np.asarray(t, dtype=np.float64) for t in true]
    n_train = len(tr_y)
    return ContinuousTensor(
        coords,
        np.concatenate([tr_y, te_y]).astype(np.float64),
        folds=[(np.arange(n_train), np.arange(n_train, len(coords)))],
        mode_names=_mode_names(mode_names, n_modes),
        name=card.name if card is not None else path.stem,
        meta=meta,
    )
