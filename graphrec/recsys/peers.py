"""Wrappers making implicit's ALS and BPR (Frederickson, github.com/benfred/implicit) run in the same bench.

``implicit`` is optional (the ``recsys`` extra); without it, ``fit`` raises an ``ImportError``
saying how to install it. The fitted factors are copied into ``user_factors_`` / ``item_factors_``
so ``recommend`` / ``similar_*`` / evaluation are graphrec's, identical for every method.

References: Hu, Koren & Volinsky, ICDM 2008 (ALS for implicit feedback); Rendle et al., UAI 2009 (BPR).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from graphrec.recsys.estimators import _FactorRecommender, check_user_items
from graphrec.utils.validation import check_float, check_int

__all__ = ["ImplicitALS", "ImplicitBPR"]


def _implicit() -> Any:
    try:
        import implicit
    except ImportError as exc:
        raise ImportError("the implicit wrappers need the 'implicit' package: pip install 'graphrec[recsys]' "
                          "(or pip install implicit)") from exc
    return implicit


class _ImplicitWrapper(_FactorRecommender):
    def _make(self, implicit: Any) -> Any:
        raise NotImplementedError

    def fit(self, user_items: Any) -> _ImplicitWrapper:
        """Fit implicit's model on ``user_items`` (sparse (n_users, n_items) or Interactions)."""
        implicit = _implicit()
        check_int(self.factors, "factors", low=1)
        check_int(self.iterations, "iterations", low=1)
        if self.threshold is not None:
            check_float(self.threshold, "threshold")
        train = check_user_items(user_items, self.threshold)
        model = self._make(implicit)
        model.fit(train, show_progress=bool(self.verbose))
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        self.user_counts_ = np.diff(train.indptr)
        self.item_popularity_ = np.asarray(train.sum(axis=0), dtype=np.float32).ravel()
        return self


class ImplicitALS(_ImplicitWrapper):
    """implicit's ``AlternatingLeastSquares`` (confidence ``1 + alpha * r``), CPU, one thread by default."""

    def __init__(self, factors: int = 64, regularization: float = 10.0, alpha: float = 40.0, iterations: int = 15,
                 threshold: float | None = None, num_threads: int = 1, random_state: int | None = None,
                 verbose: bool = False) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.threshold = threshold
        self.num_threads = num_threads
        self.random_state = random_state
        self.verbose = verbose

    def _make(self, implicit: Any) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares

        return AlternatingLeastSquares(
            factors=self.factors, regularization=check_float(self.regularization, "regularization", low=0.0),
            alpha=check_float(self.alpha, "alpha", low=0.0), iterations=self.iterations,
            num_threads=check_int(self.num_threads, "num_threads", low=0), random_state=self.random_state)


class ImplicitBPR(_ImplicitWrapper):
    """implicit's ``BayesianPersonalizedRanking`` (its factors carry an item-bias column)."""

    def __init__(self, factors: int = 64, learning_rate: float = 0.01, regularization: float = 0.001,
                 iterations: int = 300, threshold: float | None = None, num_threads: int = 1,
                 random_state: int | None = None, verbose: bool = False) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.threshold = threshold
        self.num_threads = num_threads
        self.random_state = random_state
        self.verbose = verbose

    def _make(self, implicit: Any) -> Any:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(
            factors=self.factors, learning_rate=check_float(self.learning_rate, "learning_rate", low=0.0,
                                                            low_open=True),
            regularization=check_float(self.regularization, "regularization", low=0.0), iterations=self.iterations,
            num_threads=check_int(self.num_threads, "num_threads", low=0), random_state=self.random_state)
