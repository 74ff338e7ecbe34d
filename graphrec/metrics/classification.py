"""Binary classification scores for click-through-rate prediction: ROC AUC and log loss.

Reference: Hanley & McNeil, "The meaning and use of the area under a receiver operating
characteristic (ROC) curve", Radiology 143(1), 1982 (AUC as the Mann-Whitney statistic).
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from scipy.stats import rankdata

from graphrec.utils.validation import check_array

__all__ = ["log_loss", "roc_auc"]


def _binary_labels(y_true: Any, n: int) -> np.ndarray:
    """A length-``n`` vector of 0/1 labels (bool or integer-valued input)."""
    y = check_array(y_true, "y_true", ndim=1, dtype=None)
    y = check_array(y.astype(np.int64) if y.dtype == bool else y, "y_true", dtype=np.int64)
    if y.shape[0] != n:
        raise ValueError(f"y_true and the predictions must have the same length, got {y.shape[0]} and {n}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError(f"y_true must hold binary labels 0/1, got values {np.unique(y)[:5].tolist()}")
    return y


def roc_auc(y_true: Any, y_score: Any) -> float:
    """Area under the ROC curve: the probability that a random positive outscores a random negative.

    Parameters
    ----------
    y_true : (n,) 0/1 labels; both classes must be present.
    y_score : (n,) float scores or probabilities, higher meaning "more likely positive".

    Notes
    -----
    Ties between a positive and a negative count one half (mid-ranks), matching
    ``sklearn.metrics.roc_auc_score``.

    References
    ----------
    Hanley & McNeil, Radiology 1982.
    """
    s = check_array(y_score, "y_score", ndim=1)
    y = _binary_labels(y_true, s.shape[0])
    n_pos = int(y.sum())
    n_neg = y.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_auc is undefined when y_true holds a single class; expected both 0 and 1")
    ranks = rankdata(s)  # 1-based, ties get their average rank
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def log_loss(y_true: Any, p: Any, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy ``-mean(y log p + (1 - y) log(1 - p))``.

    Parameters
    ----------
    y_true : (n,) 0/1 labels.
    p : (n,) predicted probabilities of the positive class, in ``[0, 1]``.
    eps : float in (0, 0.5)
        ``p`` is clipped to ``[eps, 1 - eps]`` so that a confident mistake costs ``-log(eps)``
        instead of infinity.

    References
    ----------
    Bishop, "Pattern Recognition and Machine Learning", 2006, eq. 4.90.
    """
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not 0 < eps < 0.5:
        raise ValueError(f"eps must be a number in (0, 0.5), got {eps!r}")
    prob = check_array(p, "p", ndim=1)
    if prob.min() < 0 or prob.max() > 1:
        raise ValueError(f"p must hold probabilities in [0, 1], got values in [{prob.min():g}, {prob.max():g}]")
    y = _binary_labels(y_true, prob.shape[0])
    prob = np.clip(prob, eps, 1.0 - eps)
    return float(-np.mean(np.where(y == 1, np.log(prob), np.log1p(-prob))))
