"""Binary cross-entropy of 1-N scores against label-smoothed multi-hot targets, without the targets.

TuckER / LowFER train with ``BCELoss(sigmoid(logits), y')`` averaged over all ``b x n`` entries,
where ``y' = (1 - eps) y + 1 / n`` when ``eps > 0`` and ``y' = y`` otherwise (``y`` multi-hot).
With ``BCE(l, t) = softplus(l) - t l`` the mean is

    [ sum softplus(l) - (1/n) sum l  - (1 - eps) sum_{(i, j) positive} l_ij ] / (b n)

(the middle term only when ``eps > 0``), so only the positive positions are needed: no dense
target matrix is built, on the host or on the device.

Reference: Balazevic et al., "TuckER", EMNLP 2019 (loss and label smoothing of the official code).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["smoothed_bce"]


def smoothed_bce(logits: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Mean BCE of ``logits`` against the TuckER / LowFER smoothed multi-hot targets.

    Parameters
    ----------
    logits : (b, n) scores before the sigmoid.
    rows, cols : (p,) int64, the positions of the positive labels (each listed once).
    label_smoothing : float ``eps`` in ``[0, 1)``.

    Returns
    -------
    Scalar tensor, equal to ``F.binary_cross_entropy_with_logits(logits, targets)``.

    Examples
    --------
    >>> logits = torch.tensor([[0.5, -1.0, 2.0]])
    >>> targets = 0.9 * torch.tensor([[0.0, 0.0, 1.0]]) + 1 / 3
    >>> expected = F.binary_cross_entropy_with_logits(logits, targets)
    >>> bool(torch.isclose(smoothed_bce(logits, torch.tensor([0]), torch.tensor([2]), 0.1), expected))
    True
    """
    b, n = logits.shape
    total = F.softplus(logits).sum() - (1.0 - label_smoothing) * logits[rows, cols].sum()
    if label_smoothing > 0:
        total = total - logits.sum() / n
    return total / (b * n)
