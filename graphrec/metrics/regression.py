"""Rating / value prediction errors: root mean squared error and mean absolute error.

Reference: Koren, Bell & Volinsky, "Matrix factorization techniques for recommender systems",
IEEE Computer 42(8), 2009 (RMSE as the rating-prediction metric).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from graphrec.utils.validation import check_array

__all__ = ["mae", "rmse"]


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two finite float arrays of the same (non-empty, at least 1-d) shape."""
    yt = check_array(y_true, "y_true")
    yp = check_array(y_pred, "y_pred")
    if yt.ndim == 0 or yp.ndim == 0:
        raise ValueError("y_true and y_pred must be arrays with at least one dimension, got a scalar")
    if yt.shape != yp.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {yt.shape} and {yp.shape}")
    if yt.size == 0:
        raise ValueError("y_true and y_pred are empty; expected at least one value")
    return yt, yp


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error ``sqrt(mean((y_true - y_pred)^2))``.

    Parameters
    ----------
    y_true, y_pred : arrays of the same shape, e.g. ``(n,)`` ratings or ``(n, m)`` tensor entries.

    References
    ----------
    Koren, Bell & Volinsky, IEEE Computer 2009.
    """
    yt, yp = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((yt - yp) ** 2)))


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error ``mean(|y_true - y_pred|)``.

    Parameters
    ----------
    y_true, y_pred : arrays of the same shape, e.g. ``(n,)`` ratings or ``(n, m)`` tensor entries.

    References
    ----------
    Koren, Bell & Volinsky, IEEE Computer 2009.
    """
    yt, yp = _pair(y_true, y_pred)
    return float(np.mean(np.abs(yt - yp)))
