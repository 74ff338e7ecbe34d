"""FunBaT: functional Bayesian Tucker (and CP) decomposition of continuous-indexed tensors.

Model (Fang et al., ICLR 2024): an entry at continuous coordinates ``i = (i_1, ..., i_K)`` is

    y = vec(W)^T (U^1(i_1) kron ... kron U^K(i_K)) + eps,   eps ~ N(0, 1/tau),

with ``R`` latent functions per mode, each an independent Matérn GP written as a linear SDE,
``vec(W) ~ N(0, I)`` (``core='tucker'``; ``core='cp'`` fixes ``W`` to the superdiagonal of ones)
and ``tau ~ Gamma(a0, b0)``. Inference is conditional expectation propagation: each epoch, for
every mode, the Gaussian messages of the entries to ``U^k(i_k)`` (given the current moments of the
other modes and the core) are damped, merged per unique coordinate and smoothed with a Kalman
filter and RTS smoother over the sorted unique coordinates; then ``W`` gets its Gaussian update
and ``tau`` its Gamma update.

Differences from the official code, on purpose: the core has its ``N(0, I)`` prior and, by
default (``core_moment='exact'``), its posterior covariance enters the mode messages and the noise
update; the Kalman filter starts at the prior mean 0; per-entry ``R^K x R^K`` matrices are never
stored (contractions are chunked, see :mod:`graphrec.tensor.contractions`), so memory is
``O(N R^2 + R^(2K))``. The official code builds the mode messages and the noise update from the
core's mean only (``core_moment='mean'``, the conditional moments of conditional EP, Wang & Zhe
2019, with the core replaced by its expectation). With the authors' heavy core damping (0.9) the
exact core covariance stays large for many epochs and shrinks the functions, which is why, with
the authors' Beijing config, the exact fit is slower and less accurate after 100 epochs than
theirs (see BENCHMARKS.md; a validated config does not need that damping).

References
----------
S. Fang, X. Yu, Z. Wang, S. Li, R. M. Kirby, S. Zhe. Functional Bayesian Tucker Decomposition for
Continuous-indexed Tensor Data. ICLR 2024.
Z. Wang, S. Zhe. Conditional Expectation Propagation. UAI 2019.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.tensor import contractions as C
from graphrec.tensor.statespace import KERNELS, MaternSDE, posterior_at, smooth
from graphrec.utils.progress import progress
from graphrec.utils.validation import check_array, check_choice, check_device, check_float, check_int, check_random_state

__all__ = ["FunBaT"]

logger = logging.getLogger(__name__)


def _per_mode(value: Any, name: str, n_modes: int) -> list[float]:
    if isinstance(value, np.ndarray) and value.ndim == 0:  # a 0-d array is one number, as a float
        value = value.item()
    vals = list(value) if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str) else [value] * n_modes
    if len(vals) != n_modes:
        raise ValueError(f"{name} has {len(vals)} entries for {n_modes} modes; give one number or one per mode")
    return [check_float(v, name, low=0.0, low_open=True) for v in vals]


class FunBaT(GraphrecEstimator):
    """Functional Bayesian Tucker / CP decomposition (Fang et al., ICLR 2024).

    Parameters
    ----------
    rank : int
        ``R``, latent functions per mode (the Tucker core has ``R^K`` entries).
    kernel : {'matern12', 'matern32', 'matern52'}
    lengthscale, variance : float or sequence of float (one per mode)
        Matérn hyper-parameters, in the units of the coordinates.
    damping : float or (rho_U, rho_tau, rho_W)
        Weight of the old message in each damped update (0 = no damping; the default is the
        authors' Beijing config). With ``schedule='sequential'`` every undamped block update (a
        mode's functions, the core, the noise precision) is an exact coordinate update given the
        others, so it cannot lower its bound: with ``core_moment='exact'`` the mean-field evidence
        lower bound, with ``'mean'`` the bound in which the core is a point estimate (the core
        update's mean is its MAP given the functions: variational EM), and damping only slows
        convergence. With ``schedule='parallel'`` damping is what makes the iteration converge.
    epochs : int
    schedule : {'sequential', 'parallel'}
        Order of the block updates within an epoch. ``'sequential'`` (default): mode ``k``'s
        messages use the newest moments of the modes before it, and the core update uses the new
        functions (Gauss-Seidel, monotone). ``'parallel'``: the messages of every mode and of the
        core are built from the moments at the start of the epoch, as in parallel EP, so the
        ``K`` (+1) updates are independent of each other; the noise precision is then updated
        from the new moments. The parallel updates are not a coordinate ascent: every block
        corrects the same overall scale of the multilinear model at once, so, with the other
        blocks' scale off by a factor ``c`` and the data dominating the prior, each block answers
        ``1/c`` and the product over ``B`` blocks (``K`` for CP, ``K + 1`` for Tucker) moves to
        ``c^-(B-1)``: an overshoot that makes undamped parallel updates oscillate away from the
        fit (tested on planted data, where they blow up and end with no fit). Damping ``rho``
        scales each block's first-order reaction by ``1 - rho`` and prevents the blow-up; with two
        modes it converges to the sequential schedule's fixed point, while with three the damped
        parallel iteration was seen to stay at the zero predictor (BENCHMARKS.md).
    core : {'tucker', 'cp'}
    core_moment : {'exact', 'mean'}
        Second moment of the Tucker core ``W`` used in the messages to the mode functions and in the
        noise-precision update. ``'exact'`` (default): the mean-field ``E[vec W vec W^T] = Sigma_W +
        W_bar W_bar^T``, so the mode message precision of an entry is
        ``E[tau] E[W_(k) (z z^T) W_(k)^T]`` with ``z`` the other modes' Kronecker product.
        ``'mean'``: ``W_bar W_bar^T`` only, i.e. ``E[tau] W_bar_(k) E[z z^T] W_bar_(k)^T`` (the
        paper's conditional EP, Fang et al. 2024 after Wang & Zhe 2019, and the official
        code's ``E_a_2`` and noise ``term3``): the conditional moments with the core replaced by
        its expectation; the core covariance is dropped, which stops it from shrinking the
        functions. The core keeps its Gaussian posterior (``core_cov_``) either way, and
        ``predict(return_std=True)`` uses it. With ``core='cp'`` the core is fixed (no covariance)
        and both choices coincide.
    a0, b0 : float
        Gamma prior of the noise precision (on the normalised scale). ``a0 = N, b0 = N s2`` pins the
        noise variance near ``s2``; the vague default lets the precision grow until the fit chases the
        noise (on Beijing PM2.5 a validated ``s2 = 0.1`` beats it, see BENCHMARKS.md).
    normalize_y : bool
        Fit on ``(y - mean) / sd`` and undo it in ``predict``.
    merge_variance : float or None
        ``v`` of the official code: each merged pseudo-observation (the product of the messages of
        the entries that share a coordinate) is multiplied by an extra ``N(0, v I)`` factor before
        Kalman smoothing, i.e. ``I / v`` is added to its precision. This is not in the model of the
        paper (it shrinks every observed coordinate towards 0 on top of the GP prior); the authors'
        configs use ``v = 1``. ``None`` (default) adds nothing: exact conditional EP for the model.
    random_state, device, verbose
        ``device`` places the entry-wise message and core algebra (torch, float64); the Kalman
        recursions run in numpy on the host.

    Attributes
    ----------
    coords_ : list of ndarray (T_k,)
        Sorted unique training coordinates of each mode.
    states_ : list of SmoothedStates
        Smoothed SDE posterior of each mode at ``coords_[k]``.
    core_mean_ : ndarray, shape (R,)*K ; core_cov_ : ndarray (R^K, R^K)
    tau_ : float
        Posterior mean of the noise precision (on the normalised scale).
    history_ : list of float
        Training RMSE (original scale) after each epoch.
    eval_history_ : list of (int, float)
        ``(epoch, RMSE)`` on ``fit``'s ``eval_set`` (empty without one).
    """

    def __init__(
        self,
        rank: int = 3,
        kernel: str = "matern12",
        lengthscale: float | Sequence[float] = 0.1,
        variance: float | Sequence[float] = 1.0,
        damping: float | Sequence[float] = (0.5, 0.6, 0.9),
        epochs: int = 100,
        schedule: str = "sequential",
        core: str = "tucker",
        core_moment: str = "exact",
        a0: float = 1.0,
        b0: float = 1.0,
        normalize_y: bool = True,
        merge_variance: float | None = None,
        random_state: Any = None,
        device: str = "cpu",
        verbose: bool = False,
    ) -> None:
        self.rank = rank
        self.kernel = kernel
        self.lengthscale = lengthscale
        self.variance = variance
        self.damping = damping
        self.epochs = epochs
        self.schedule = schedule
        self.core = core
        self.core_moment = core_moment
        self.a0 = a0
        self.b0 = b0
        self.normalize_y = normalize_y
        self.merge_variance = merge_variance
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _check_params(self, n_modes: int) -> None:
        self._R = check_int(self.rank, "rank", low=1)
        check_choice(self.kernel, "kernel", KERNELS)
        check_choice(self.core, "core", ("tucker", "cp"))
        check_choice(self.core_moment, "core_moment", ("exact", "mean"))
        check_choice(self.schedule, "schedule", ("sequential", "parallel"))
        self._ell = _per_mode(self.lengthscale, "lengthscale", n_modes)
        self._var = _per_mode(self.variance, "variance", n_modes)
        damp = self.damping
        damp = [damp] * 3 if not isinstance(damp, (Sequence, np.ndarray)) else list(damp)
        if len(damp) != 3:
            raise ValueError(f"damping must be one number or (rho_U, rho_tau, rho_W), got {self.damping!r}")
        self._rho = [check_float(d, "damping", low=0.0, high=0.999) for d in damp]
        check_int(self.epochs, "epochs", low=1)
        check_float(self.a0, "a0", low=0.0, low_open=True)
        check_float(self.b0, "b0", low=0.0, low_open=True)
        self._site_prec = 0.0 if self.merge_variance is None else 1.0 / check_float(
            self.merge_variance, "merge_variance", low=0.0, low_open=True)
        if self.core == "tucker" and self._R ** (2 * n_modes) > 2**26:
            raise ValueError(
                f"rank={self._R} with {n_modes} modes needs a {self._R**n_modes}^2 core covariance; "
                "use core='cp' or a smaller rank"
            )

    @staticmethod
    def _check_coords(coords: Any, name: str = "coords") -> np.ndarray:
        X = check_array(coords, name, ndim=2)
        if X.shape[1] == 0:
            raise ValueError(f"{name} has shape {X.shape}; expected one column per mode (at least one)")
        return X

    def _site(self, J: torch.Tensor) -> np.ndarray:
        """Precision (T, R, R) of the merged pseudo-observations, with the optional ``I / merge_variance``."""
        J = J.cpu().numpy()
        return J + self._site_prec * np.eye(J.shape[-1]) if self._site_prec else J

    # ------------------------------------------------------------------- fit
    def fit(self, coords: Any, y: Any, eval_set: tuple[Any, Any] | None = None, eval_every: int = 10) -> "FunBaT":
        """Fit on ``coords`` (N, K) continuous coordinates and ``y`` (N,) values.

        ``eval_set = (coords_val (n, K), y_val (n,))``, if given, is scored (RMSE of ``predict``)
        after every ``eval_every``-th epoch and after the last one, into ``eval_history_`` as
        ``(epoch, rmse)`` pairs: the curve that picks ``epochs`` on a validation split.
        """
        X = self._check_coords(coords)
        y = check_array(y, "y", ndim=1)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y has {y.shape[0]} values but coords has {X.shape[0]} rows")
        N, K = X.shape
        if eval_set is not None:
            if not isinstance(eval_set, (tuple, list)) or len(eval_set) != 2:
                raise ValueError("eval_set must be a pair (coords_val, y_val)")
            X_val = self._check_coords(eval_set[0], "eval_set coords")
            y_val = check_array(eval_set[1], "eval_set y", ndim=1)
            if X_val.shape[1] != K or y_val.shape[0] != X_val.shape[0]:
                raise ValueError(
                    f"eval_set has coords {X_val.shape} and y {y_val.shape}; expected (n, {K}) and (n,)")
            eval_every = check_int(eval_every, "eval_every", low=1)
        self._check_params(K)
        R = self._R
        dev = check_device(self.device)
        rng = check_random_state(self.random_state)
        self.y_mean_ = float(y.mean()) if self.normalize_y else 0.0
        self.y_scale_ = float(y.std()) if self.normalize_y and y.std() > 0 else 1.0
        yt = torch.as_tensor((y - self.y_mean_) / self.y_scale_, device=dev)
        rho_u, rho_tau, rho_w = self._rho
        tkw = dict(dtype=torch.float64, device=dev)

        self.sdes_ = [MaternSDE.matern(self.kernel, self._ell[k], self._var[k], R) for k in range(K)]
        self.coords_, inverse = [], []
        for k in range(K):
            u, inv = np.unique(X[:, k], return_inverse=True)
            self.coords_.append(u)
            inverse.append(torch.as_tensor(inv.ravel(), device=dev))
        # moments at each unique coordinate: mean (T_k, R), second moment (T_k, R, R)
        steps = [self.sdes_[k].transition(np.diff(self.coords_[k])) for k in range(K)]
        means = [torch.as_tensor(rng.uniform(size=(len(u), R)), **tkw) for u in self.coords_]
        seconds = [m[:, :, None] * m[:, None, :] + 1e-2 * torch.eye(R, **tkw) for m in means]
        J = [torch.zeros(len(u), R, R, **tkw) for u in self.coords_]
        h = [torch.zeros(len(u), R, **tkw) for u in self.coords_]
        shape = (R,) * K
        cp = self.core == "cp"  # superdiagonal core of ones: the contractions are element-wise products
        if cp:
            w_mean = torch.zeros(shape, **tkw)
            idx = torch.arange(R, device=dev)
            w_mean[(idx,) * K] = 1.0
            w_cov = torch.zeros(R**K, R**K, **tkw)
        else:
            w_mean = torch.as_tensor(rng.standard_normal(shape), **tkw)
            w_cov = torch.eye(R**K, **tkw)
            w_J = torch.zeros(R**K, R**K, **tkw)
            w_h = torch.zeros(R**K, **tkw)

        def core_second(w_mean: torch.Tensor, w_cov: torch.Tensor) -> torch.Tensor:
            """The core's second moment in the mode messages and the noise update (``core_moment``)."""
            outer = torch.outer(w_mean.reshape(-1), w_mean.reshape(-1))
            return outer if self.core_moment == "mean" else w_cov + outer

        a = self.a0 + N / 2.0
        b = a  # E[tau] = 1 on the normalised scale
        parallel = self.schedule == "parallel"
        self.history_, self.eval_history_ = [], []
        self.states_ = [None] * K
        self.n_modes_ = K
        for epoch in progress(range(1, self.epochs + 1), verbose=self.verbose, desc="FunBaT epochs"):
            tau = a / b
            M2 = None if cp else core_second(w_mean, w_cov)
            # every mode's moments at the entries: ms / Ss build the messages (sequential: each mode's
            # new moments replace its old ones at once; parallel: the epoch's starting moments
            # throughout), new_ms / new_Ss are the epoch's results
            ms = [means[j][inverse[j]] for j in range(K)]
            Ss = [seconds[j][inverse[j]] for j in range(K)]
            new_ms, new_Ss = list(ms), list(Ss)
            for k in range(K):
                a_n = C.hadamard(ms, k) if cp else C.linear(w_mean, ms, free=k)  # (N, R)
                A2 = C.hadamard(Ss, k) if cp else C.quadratic(M2, Ss, free=k)  # (N, R, R)
                T_k = len(self.coords_[k])
                J_new = torch.zeros(T_k, R, R, **tkw).index_add_(0, inverse[k], tau * A2)
                h_new = torch.zeros(T_k, R, **tkw).index_add_(0, inverse[k], tau * yt[:, None] * a_n)
                J[k] = rho_u * J[k] + (1 - rho_u) * J_new
                h[k] = rho_u * h[k] + (1 - rho_u) * h_new
                st = self.states_[k] = smooth(
                    self.sdes_[k], self.coords_[k], self._site(J[k]), h[k].cpu().numpy(), steps[k])
                Hf = self.sdes_[k].H_full
                mean = torch.as_tensor(st.mean @ Hf.T, **tkw)
                cov = torch.as_tensor(Hf @ st.cov @ Hf.T, **tkw)
                means[k] = mean
                seconds[k] = cov + mean[:, :, None] * mean[:, None, :]
                new_ms[k], new_Ss[k] = means[k][inverse[k]], seconds[k][inverse[k]]
                if not parallel:
                    ms[k], Ss[k] = new_ms[k], new_Ss[k]
            if not cp:
                Jw = tau * C.gram(Ss)
                zfull = ms[0]
                for j in range(1, K):
                    zfull = (zfull[:, :, None] * ms[j][:, None, :]).reshape(N, -1)
                hw = tau * (yt[:, None] * zfull).sum(0)
                w_J = rho_w * w_J + (1 - rho_w) * Jw
                w_h = rho_w * w_h + (1 - rho_w) * hw
                prec = w_J + torch.eye(R**K, **tkw)
                w_cov = torch.linalg.inv(prec)
                w_cov = 0.5 * (w_cov + w_cov.T)
                w_mean = (w_cov @ w_h).reshape(shape)
                M2 = core_second(w_mean, w_cov)
            f_mean = C.hadamard(new_ms, None) if cp else C.linear(w_mean, new_ms, free=None)
            f_second = C.hadamard(new_Ss, None) if cp else C.quadratic(M2, new_Ss, free=None)
            sq = (yt**2 - 2 * yt * f_mean + f_second).sum().item()
            b = rho_tau * b + (1 - rho_tau) * (self.b0 + 0.5 * sq)
            rmse = float(torch.sqrt(((yt - f_mean) ** 2).mean()).item()) * self.y_scale_
            self.history_.append(rmse)
            logger.debug("FunBaT epoch %d: train RMSE %.4f, E[tau] %.3f", epoch, rmse, a / b)
            if eval_set is not None and (epoch % eval_every == 0 or epoch == self.epochs):
                self._set_core(w_mean, w_cov, a / b)  # predict reads the fitted attributes
                err = self.predict(X_val) - y_val
                self.eval_history_.append((epoch, float(np.sqrt(np.mean(err**2)))))
        self._set_core(w_mean, w_cov, a / b)
        return self

    def _set_core(self, w_mean: torch.Tensor, w_cov: torch.Tensor, tau: float) -> None:
        """Publish the core posterior and the noise precision as fitted attributes (host copies)."""
        self.core_mean_ = w_mean.cpu().numpy()
        self.core_cov_ = w_cov.cpu().numpy()
        self.tau_ = tau

    # --------------------------------------------------------------- predict
    def factor_functions(self, mode: int, points: Any, return_cov: bool = False
                         ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Posterior mean (n, R) (and covariance (n, R, R)) of mode ``mode``'s functions at ``points`` (n,).

        Points between training coordinates are interpolated through the SDE; points outside
        the fitted range are extrapolated from the nearest end (the mean decays to the prior's 0
        and the variance grows to the prior variance, on the scale of the lengthscale).
        """
        self._check_is_fitted()
        mode = check_int(mode, "mode", low=0, high=self.n_modes_ - 1)
        x = check_array(points, "points", ndim=1)
        mean, cov = posterior_at(self.sdes_[mode], self.states_[mode], x)
        return (mean, cov) if return_cov else mean

    def predict(self, coords: Any, return_std: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Predictive mean (n,) at ``coords`` (n, K), and its standard deviation (noise included)."""
        self._check_is_fitted()
        X = self._check_coords(coords)
        if X.shape[1] != self.n_modes_:
            raise ValueError(f"coords has {X.shape[1]} columns but the model was fitted on {self.n_modes_} modes")
        ms, Ss = [], []
        for k in range(self.n_modes_):
            m, c = self.factor_functions(k, X[:, k], return_cov=True)
            ms.append(torch.as_tensor(m))
            Ss.append(torch.as_tensor(c + m[:, :, None] * m[:, None, :]))
        w = torch.as_tensor(self.core_mean_)
        f = C.linear(w, ms, free=None).numpy()
        out = self.y_mean_ + self.y_scale_ * f
        if not return_std:
            return out
        M2 = torch.as_tensor(self.core_cov_) + torch.outer(w.reshape(-1), w.reshape(-1))
        var = C.quadratic(M2, Ss, free=None).numpy() - f**2 + 1.0 / self.tau_
        return out, self.y_scale_ * np.sqrt(np.maximum(var, 0.0))


def _planted(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(60, 2))
    return X, np.sin(2 * np.pi * X[:, 0]) * np.cos(np.pi * X[:, 1]) + 0.01 * rng.standard_normal(60)


register_estimator(
    "graphrec.tensor.FunBaT",
    EstimatorSpec(
        factory=lambda: FunBaT(rank=2, epochs=3, random_state=0),
        make_input=_planted,
        output=lambda est, args: est.predict(args[0]),
        bad_inputs={
            "nan_values": lambda: (np.zeros((4, 2)), np.array([0.0, np.nan, 1.0, 2.0])),
            "length_mismatch": lambda: (np.zeros((4, 2)), np.zeros(3)),
            "coords_1d": lambda: (np.zeros(4), np.zeros(4)),
            "empty": lambda: (np.zeros((0, 2)), np.zeros(0)),
        },
        fitted_method="predict",
    ),
)
