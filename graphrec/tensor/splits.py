"""Seeded k-fold splits of the observations of a continuous-indexed tensor."""
from __future__ import annotations

from typing import Any

import numpy as np

from graphrec.utils.validation import check_int, check_random_state

__all__ = ["kfold_splits"]


def kfold_splits(n_obs: int, n_folds: int = 5, random_state: Any = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_folds`` (train, test) pairs of sorted index arrays; the test parts partition ``0 .. n_obs-1``.

    >>> [len(te) for _, te in kfold_splits(10, 5, random_state=0)]
    [2, 2, 2, 2, 2]
    """
    n_obs = check_int(n_obs, "n_obs", low=1)
    n_folds = check_int(n_folds, "n_folds", low=2, high=n_obs)
    perm = check_random_state(random_state).permutation(n_obs)
    parts = np.array_split(perm, n_folds)
    return [(np.sort(np.concatenate(parts[:i] + parts[i + 1:])), np.sort(parts[i])) for i in range(n_folds)]
