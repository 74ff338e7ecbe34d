"""Discrete baseline: masked CP-ALS on a binned grid (tensorly is not a dependency of graphrec).

Coordinates are cut into equal-width bins per mode; CP factors are fitted to the observed cells
only (the masked objective: missing cells do not count), by alternating row-wise ridge least
squares. Duplicate entries of one cell each count once in the loss, which averages them.

References
----------
Kolda & Bader, "Tensor decompositions and applications", SIAM Review 51(3), 2009 (CP-ALS);
Tomasi & Bro, "PARAFAC and missing values", Chemometrics and Intelligent Laboratory Systems 75, 2005.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.utils.progress import progress
from graphrec.utils.validation import check_array, check_float, check_int, check_random_state

__all__ = ["MaskedCPALS", "bin_coords"]


def bin_coords(coords: np.ndarray, low: np.ndarray, high: np.ndarray, n_bins: np.ndarray) -> np.ndarray:
    """Bin index (N, K) of each coordinate in ``n_bins[k]`` equal-width bins over ``[low[k], high[k]]``."""
    width = np.where(high > low, high - low, 1.0)
    b = np.floor((coords - low) / width * n_bins).astype(np.int64)
    return np.clip(b, 0, n_bins - 1)


class MaskedCPALS(GraphrecEstimator):
    """Rank-``R`` CP model of a binned tensor fitted to its observed cells by ALS.

    Parameters
    ----------
    rank : int
    n_bins : int or sequence of int
        Bins per mode (e.g. 50 x 50 x 150 for Beijing, FunBaT's coarsest baseline grid).
    n_iter : int
    reg : float
        Ridge penalty on every factor row (keeps rows of sparsely observed bins finite).
    random_state, verbose

    Attributes
    ----------
    factors_ : list of ndarray (n_bins[k], R)
    low_, high_ : ndarray (K,)
        Range of the training coordinates (test coordinates outside it go to the end bins).
    """

    def __init__(self, rank: int = 3, n_bins: Any = 50, n_iter: int = 100, reg: float = 1e-3,
                 random_state: Any = None, verbose: bool = False) -> None:
        self.rank = rank
        self.n_bins = n_bins
        self.n_iter = n_iter
        self.reg = reg
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, coords: Any, y: Any) -> "MaskedCPALS":
        """Fit on ``coords`` (N, K) and ``y`` (N,)."""
        X = check_array(coords, "coords", ndim=2)
        y = check_array(y, "y", ndim=1)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y has {y.shape[0]} values but coords has {X.shape[0]} rows")
        N, K = X.shape
        R = check_int(self.rank, "rank", low=1)
        nb = np.broadcast_to(np.asarray(self.n_bins), (K,))
        self.n_bins_ = np.array([check_int(int(v), "n_bins", low=1) for v in nb])
        check_int(self.n_iter, "n_iter", low=1)
        reg = check_float(self.reg, "reg", low=0.0)
        rng = check_random_state(self.random_state)
        self.low_, self.high_ = X.min(0), X.max(0)
        B = bin_coords(X, self.low_, self.high_, self.n_bins_)
        self.mean_ = float(y.mean())
        r = y - self.mean_
        F = [rng.standard_normal((n, R)) * (np.std(r) ** (1.0 / K) / np.sqrt(R)) for n in self.n_bins_]
        for _ in progress(range(self.n_iter), verbose=self.verbose, desc="masked CP-ALS"):
            for k in range(K):
                design = np.ones((N, R))
                for j in range(K):
                    if j != k:
                        design *= F[j][B[:, j]]
                G = np.zeros((self.n_bins_[k], R, R))
                np.add.at(G, B[:, k], design[:, :, None] * design[:, None, :])
                rhs = np.zeros((self.n_bins_[k], R))
                np.add.at(rhs, B[:, k], design * r[:, None])
                F[k] = np.linalg.solve(G + reg * np.eye(R), rhs[:, :, None])[:, :, 0]
        self.factors_ = F
        return self

    def predict(self, coords: Any) -> np.ndarray:
        """Prediction (n,) at ``coords`` (n, K): the CP value of each point's bin."""
        self._check_is_fitted()
        X = check_array(coords, "coords", ndim=2)
        if X.shape[1] != len(self.factors_):
            raise ValueError(f"coords has {X.shape[1]} columns but the model was fitted on {len(self.factors_)} modes")
        B = bin_coords(X, self.low_, self.high_, self.n_bins_)
        prod = np.ones((X.shape[0], self.factors_[0].shape[1]))
        for k, F in enumerate(self.factors_):
            prod *= F[B[:, k]]
        return self.mean_ + prod.sum(1)


register_estimator(
    "graphrec.tensor.MaskedCPALS",
    EstimatorSpec(
        factory=lambda: MaskedCPALS(rank=2, n_bins=5, n_iter=3, random_state=0),
        make_input=lambda seed: (np.random.default_rng(seed).uniform(size=(40, 2)),
                                 np.random.default_rng(seed + 1).standard_normal(40)),
        output=lambda est, args: est.predict(args[0]),
        bad_inputs={
            "nan_values": lambda: (np.zeros((4, 2)), np.array([0.0, np.nan, 1.0, 2.0])),
            "length_mismatch": lambda: (np.zeros((4, 2)), np.zeros(3)),
        },
        fitted_method="predict",
    ),
)
