"""``ContinuousTensor``: observations of a tensor indexed by continuous coordinates."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from graphrec.utils.validation import check_array


@dataclass
class ContinuousTensor:
    """A continuous-indexed tensor: ``values[i]`` observed at ``coords[i]``.

    Attributes
    ----------
    coords : ndarray of float64, shape (n_obs, n_modes)
        Continuous coordinate of each observation in every mode.
    values : ndarray of float64, shape (n_obs,)
    folds : list of (train_idx, test_idx)
        Index arrays into the observations, one pair per fold.
    mode_names : list of str
    """

    coords: np.ndarray
    values: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    mode_names: list[str] | None = None
    name: str = "tensor"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.coords = check_array(self.coords, "coords", ndim=2)
        self.values = check_array(self.values, "values", ndim=1)
        if self.values.shape[0] != self.coords.shape[0]:
            raise ValueError(f"values has {self.values.shape[0]} entries but coords has {self.coords.shape[0]} rows")
        n = self.n_obs
        checked = []
        for k, fold in enumerate(self.folds):
            try:
                tr, te = fold
            except (TypeError, ValueError):
                raise ValueError(
                    f"folds[{k}] must be a (train_idx, test_idx) pair, got {type(fold).__name__} {fold!r:.80}"
                ) from None
            tr = check_array(tr, f"folds[{k}] train", ndim=1, dtype=np.int64, min_rows=1)
            te = check_array(te, f"folds[{k}] test", ndim=1, dtype=np.int64, min_rows=1)
            for part, nm in ((tr, "train"), (te, "test")):
                if part.min() < 0 or part.max() >= n:
                    raise ValueError(f"folds[{k}] {nm} holds indices outside [0, {n})")
            checked.append((tr, te))
        self.folds = checked
        if self.mode_names is not None and len(self.mode_names) != self.n_modes:
            raise ValueError(f"mode_names has {len(self.mode_names)} names for {self.n_modes} modes")

    @property
    def n_obs(self) -> int:
        return self.coords.shape[0]

    @property
    def n_modes(self) -> int:
        return self.coords.shape[1]

    def __repr__(self) -> str:
        return f"ContinuousTensor(name={self.name!r}, n_obs={self.n_obs}, n_modes={self.n_modes}, folds={len(self.folds)})"
