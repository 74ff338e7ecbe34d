"""Discrete baselines: masked CP-ALS and Tucker-ALS on a binned grid (tensorly is not a dependency).

Coordinates are cut into equal-width bins per mode; CP or Tucker factors are fitted to the observed
cells only (the masked objective: missing cells do not count), by alternating row-wise ridge least
squares (and, for Tucker, a ridge solve for the ``R^K`` core). Duplicate entries of one cell each count
once in the loss, which averages them.

References
----------
Kolda & Bader, "Tensor decompositions and applications", SIAM Review 51(3), 2009 (CP-ALS, Tucker);
Tomasi & Bro, "PARAFAC and missing values", Chemometrics and Intelligent Laboratory Systems 75, 2005.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.utils.progress import progress
from graphrec.utils.validation import check_array, check_float, check_int, check_random_state

__all__ = ["MaskedCPALS", "MaskedTuckerALS", "bin_coords"]


def bin_coords(coords: np.ndarray, low: np.ndarray, high: np.ndarray, n_bins: np.ndarray) -> np.ndarray:
    """Bin index (N, K) of each coordinate in ``n_bins[k]`` equal-width bins over ``[low[k], high[k]]``."""
    width = np.where(high > low, high - low, 1.0)
    b = np.floor((coords - low) / width * n_bins).astype(np.int64)
    return np.clip(b, 0, n_bins - 1)


def _solve_rows(bins: np.ndarray, design: np.ndarray, r: np.ndarray, n_rows: int, reg: float) -> np.ndarray:
    """Ridge least squares per factor row: row ``i`` minimises ``sum_{n: bins_n = i} (r_n - design_n . f)^2
    + reg ||f||^2``; returns (n_rows, R). With ``reg = 0`` a row the data does not determine (an empty
    bin, or fewer points than ``R``) takes the minimum-norm least-squares solution (0 for an empty bin)."""
    R = design.shape[1]
    G = np.zeros((n_rows, R, R))
    np.add.at(G, bins, design[:, :, None] * design[:, None, :])
    rhs = np.zeros((n_rows, R))
    np.add.at(rhs, bins, design * r[:, None])
    if reg == 0:
        return (np.linalg.pinv(G, hermitian=True) @ rhs[:, :, None])[:, :, 0]
    return np.linalg.solve(G + reg * np.eye(R), rhs[:, :, None])[:, :, 0]


def _check_fit_input(est: Any, coords: Any, y: Any) -> tuple[np.ndarray, np.ndarray, int, float, np.random.Generator]:
    X = check_array(coords, "coords", ndim=2)
    if X.shape[1] == 0:
        raise ValueError(f"coords has shape {X.shape}; expected one column per mode (at least one)")
    y = check_array(y, "y", ndim=1)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y has {y.shape[0]} values but coords has {X.shape[0]} rows")
    K = X.shape[1]
    R = check_int(est.rank, "rank", low=1)
    nb = np.asarray(est.n_bins)
    if nb.ndim > 1 or (nb.ndim == 1 and nb.shape[0] != K):
        raise ValueError(f"n_bins must be one integer or one per mode ({K}), got {est.n_bins!r}")
    est.n_bins_ = np.array([check_int(v, "n_bins", low=1) for v in np.broadcast_to(nb, (K,)).tolist()])
    check_int(est.n_iter, "n_iter", low=1)
    reg = check_float(est.reg, "reg", low=0.0)
    est.low_, est.high_ = X.min(0), X.max(0)
    est.mean_ = float(y.mean())
    return bin_coords(X, est.low_, est.high_, est.n_bins_), y - est.mean_, R, reg, check_random_state(est.random_state)


def _predict_bins(est: Any, coords: Any) -> np.ndarray:
    est._check_is_fitted()
    X = check_array(coords, "coords", ndim=2)
    if X.shape[1] != len(est.factors_):
        raise ValueError(f"coords has {X.shape[1]} columns but the model was fitted on {len(est.factors_)} modes")
    return bin_coords(X, est.low_, est.high_, est.n_bins_)


class MaskedCPALS(GraphrecEstimator):
    """Rank-``R`` CP model of a binned tensor fitted to its observed cells by ALS.

    Parameters
    ----------
    rank : int
    n_bins : int or sequence of int
        Bins per mode (e.g. 50 x 50 x 150 for Beijing, FunBaT's coarsest baseline grid).
    n_iter : int
    reg : float >= 0
        Ridge penalty on every factor row (keeps rows of sparsely observed bins finite). With 0, rows
        the data does not determine take the minimum-norm least-squares solution (0 for an empty bin).
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
        B, r, R, reg, rng = _check_fit_input(self, coords, y)
        N, K = B.shape
        F = [rng.standard_normal((n, R)) * (np.std(r) ** (1.0 / K) / np.sqrt(R)) for n in self.n_bins_]
        for _ in progress(range(self.n_iter), verbose=self.verbose, desc="masked CP-ALS"):
            for k in range(K):
                design = np.ones((N, R))
                for j in range(K):
                    if j != k:
                        design *= F[j][B[:, j]]
                F[k] = _solve_rows(B[:, k], design, r, self.n_bins_[k], reg)
        self.factors_ = F
        return self

    def predict(self, coords: Any) -> np.ndarray:
        """Prediction (n,) at ``coords`` (n, K): the CP value of each point's bin."""
        B = _predict_bins(self, coords)
        prod = np.ones((B.shape[0], self.factors_[0].shape[1]))
        for k, F in enumerate(self.factors_):
            prod *= F[B[:, k]]
        return self.mean_ + prod.sum(1)


class MaskedTuckerALS(GraphrecEstimator):
    """Rank-``(R, ..., R)`` Tucker model of a binned tensor fitted to its observed cells by ALS.

    ``y_n ~ mean + G x_1 U_1[b_n1] ... x_K U_K[b_nK]`` with core ``G`` (R^K) and factors ``U_k``
    (n_bins[k], R). Each sweep solves every factor's rows by ridge least squares with the core fixed
    (design: the core contracted with the other modes' rows), then the core by one ridge solve of size
    ``R^K`` (design: the outer products of the point's factor rows).

    Parameters
    ----------
    rank, n_bins, n_iter, reg, random_state, verbose : as :class:`MaskedCPALS`

    Attributes
    ----------
    core_ : ndarray (R,) * K
    factors_ : list of ndarray (n_bins[k], R)
    low_, high_, mean_ : the training coordinates' range and the mean of ``y``
    """

    def __init__(self, rank: int = 3, n_bins: Any = 50, n_iter: int = 50, reg: float = 1e-3,
                 random_state: Any = None, verbose: bool = False) -> None:
        self.rank = rank
        self.n_bins = n_bins
        self.n_iter = n_iter
        self.reg = reg
        self.random_state = random_state
        self.verbose = verbose

    @staticmethod
    def _outer_rows(rows: list[np.ndarray]) -> np.ndarray:
        """(N, R^K): per point, the Kronecker product of its K factor rows (C order, matching ``core.ravel()``)."""
        out = rows[0]
        for row in rows[1:]:
            out = (out[:, :, None] * row[:, None, :]).reshape(out.shape[0], -1)
        return out

    def fit(self, coords: Any, y: Any) -> "MaskedTuckerALS":
        """Fit on ``coords`` (N, K) and ``y`` (N,)."""
        B, r, R, reg, rng = _check_fit_input(self, coords, y)
        N, K = B.shape
        if R**K > 4096:
            raise ValueError(f"rank={R} gives a core of R^K = {R**K} entries for K={K} modes; expected at most 4096")
        U = [np.linalg.qr(rng.standard_normal((n, R)))[0] if n >= R else rng.standard_normal((n, R)) for n in self.n_bins_]
        core = rng.standard_normal((R,) * K) * np.std(r)
        for _ in progress(range(self.n_iter), verbose=self.verbose, desc="masked Tucker-ALS"):
            for k in range(K):
                others = [U[j][B[:, j]] for j in range(K) if j != k]
                moved = np.moveaxis(core, k, 0).reshape(R, -1)  # (R_k, prod of the other modes)
                design = self._outer_rows(others) @ moved.T if others else np.tile(moved.T, (N, 1))
                U[k] = _solve_rows(B[:, k], design, r, self.n_bins_[k], reg)
            Z = self._outer_rows([U[j][B[:, j]] for j in range(K)])
            if reg == 0:  # minimum-norm least squares: the normal equations are singular when N < R^K
                core = np.linalg.lstsq(Z, r, rcond=None)[0].reshape((R,) * K)
            else:
                core = np.linalg.solve(Z.T @ Z + reg * np.eye(R**K), Z.T @ r).reshape((R,) * K)
        self.core_, self.factors_ = core, U
        return self

    def predict(self, coords: Any) -> np.ndarray:
        """Prediction (n,) at ``coords`` (n, K): the Tucker value of each point's bin."""
        B = _predict_bins(self, coords)
        Z = self._outer_rows([F[B[:, k]] for k, F in enumerate(self.factors_)])
        return self.mean_ + Z @ self.core_.ravel()


for _cls in (MaskedCPALS, MaskedTuckerALS):
    register_estimator(
        f"graphrec.tensor.{_cls.__name__}",
        EstimatorSpec(
            factory=lambda _cls=_cls: _cls(rank=2, n_bins=5, n_iter=3, random_state=0),
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
