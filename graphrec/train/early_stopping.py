"""Track the best value of a monitored metric and decide when training should stop.

Patience-based early stopping as in Prechelt, "Early Stopping - But When?" (Neural Networks:
Tricks of the Trade, 1998): stop after ``patience`` consecutive evaluations without improvement.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["EarlyStopping"]

MODES = ("max", "min")


class EarlyStopping:
    """Best-score bookkeeping plus a patience counter.

    Parameters
    ----------
    mode
        ``"max"`` if a larger score is better (accuracy, NDCG), ``"min"`` if smaller is (loss).
    patience
        Number of consecutive evaluations without strict improvement after which
        :attr:`should_stop` turns true; ``None`` never stops (the best score is still tracked).

    Attributes
    ----------
    best_score : float or None
        Best score seen so far (``None`` before the first finite score).
    best_epoch : int or None
        Epoch at which ``best_score`` was reached.
    wait : int
        Evaluations since the last improvement.
    """

    def __init__(self, mode: str = "max", patience: int | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if patience is not None and (
            isinstance(patience, bool) or not isinstance(patience, numbers.Integral) or patience < 1
        ):
            raise ValueError(f"patience must be a positive integer (evaluations) or None, got {patience!r}")
        self.mode = mode
        self.patience = None if patience is None else int(patience)
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0

    def update(self, score: float, epoch: int) -> bool:
        """Record the score of one evaluation; return ``True`` if it is a new best.

        A NaN or infinite score never counts as an improvement.
        """
        score = float(score)
        improved = math.isfinite(score) and (
            self.best_score is None
            or (score > self.best_score if self.mode == "max" else score < self.best_score)
        )
        if improved:
            self.best_score, self.best_epoch, self.wait = score, int(epoch), 0
        else:
            self.wait += 1
        return improved

    @property
    def should_stop(self) -> bool:
        """Whether ``patience`` evaluations in a row brought no improvement."""
        return self.patience is not None and self.wait >= self.patience

    def state_dict(self) -> dict[str, Any]:
        """The counters, for checkpoints (plain Python values only)."""
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore counters written by :meth:`state_dict`."""
        self.best_score = state["best_score"]
        self.best_epoch = state["best_epoch"]
        self.wait = int(state["wait"])
