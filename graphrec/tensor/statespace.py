"""Matérn Gaussian processes as linear time-invariant state-space models, with Kalman/RTS smoothing.

A Matérn GP of order ``nu = p + 1/2`` on a line is the output ``u = H z`` of the SDE
``dz/dt = F z + L w(t)`` with a ``d = p + 1`` dimensional state ``z = (u, u', ...)``; between two
inputs ``Delta`` apart the state moves by ``A = expm(F Delta)`` plus Gaussian noise of covariance
``Q = P_inf - A P_inf A^T`` (``P_inf`` the stationary covariance), so ``H expm(F Delta) P_inf H^T``
equals the kernel ``k(Delta)``.

References
----------
Hartikainen & Särkkä, "Kalman filtering and smoothing solutions to temporal Gaussian process
regression models", MLSP 2010. Fang et al., "Functional Bayesian Tucker Decomposition for
Continuous-indexed Tensor Data" (FunBaT), ICLR 2024, section 3.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from scipy.linalg import expm

__all__ = ["KERNELS", "MaternSDE", "SmoothedStates", "matern_kernel", "posterior_at", "smooth"]

KERNELS = ("matern12", "matern32", "matern52")


def matern_kernel(delta: np.ndarray, kernel: str, lengthscale: float, variance: float) -> np.ndarray:
    """The Matérn covariance ``k(delta)`` (closed form), for checking the state-space form."""
    r = np.abs(np.asarray(delta, dtype=np.float64)) / lengthscale
    if kernel == "matern12":
        return variance * np.exp(-r)
    if kernel == "matern32":
        s = np.sqrt(3.0) * r
        return variance * (1.0 + s) * np.exp(-s)
    if kernel == "matern52":
        s = np.sqrt(5.0) * r
        return variance * (1.0 + s + s * s / 3.0) * np.exp(-s)
    raise ValueError(f"kernel={kernel!r} is not valid; expected one of {KERNELS}")


@dataclass(frozen=True)
class MaternSDE:
    """State-space form of ``n_factors`` independent Matérn GPs sharing one kernel (block diagonal).

    Attributes
    ----------
    F, P_inf : ndarray, shape (d, d)
        Feedback matrix and stationary covariance of one GP (``d`` = 1, 2, 3 for Matérn-1/2, 3/2, 5/2).
    H : ndarray, shape (1, d)
        Picks the function value out of the state.
    n_factors : int
        ``R``: the full state stacks ``R`` copies, dimension ``D = R d``.
    """

    F: np.ndarray
    P_inf: np.ndarray
    H: np.ndarray
    n_factors: int

    @classmethod
    def matern(cls, kernel: str, lengthscale: float, variance: float, n_factors: int = 1) -> "MaternSDE":
        if kernel == "matern12":
            F = np.array([[-1.0 / lengthscale]])
            P = np.array([[variance]])
        elif kernel == "matern32":
            lam = np.sqrt(3.0) / lengthscale
            F = np.array([[0.0, 1.0], [-lam**2, -2.0 * lam]])
            P = variance * np.diag([1.0, lam**2])
        elif kernel == "matern52":
            lam = np.sqrt(5.0) / lengthscale
            F = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [-lam**3, -3.0 * lam**2, -3.0 * lam]])
            k = lam**2 / 3.0
            P = variance * np.array([[1.0, 0.0, -k], [0.0, k, 0.0], [-k, 0.0, lam**4]])
        else:
            raise ValueError(f"kernel={kernel!r} is not valid; expected one of {KERNELS}")
        H = np.zeros((1, F.shape[0]))
        H[0, 0] = 1.0
        return cls(F, P, H, n_factors)

    @property
    def state_dim(self) -> int:
        return self.n_factors * self.F.shape[0]

    def _block(self, m: np.ndarray) -> np.ndarray:
        """``I_R kron m`` for a stack of matrices ``m`` (..., d, d) -> (..., D, D)."""
        eye = np.eye(self.n_factors)
        return np.einsum("ij,...kl->...ikjl", eye, m).reshape(m.shape[:-2] + (self.state_dim, self.state_dim))

    @property
    def H_full(self) -> np.ndarray:
        """Observation matrix of the stacked state, shape (R, D)."""
        return np.kron(np.eye(self.n_factors), self.H)

    @property
    def P_inf_full(self) -> np.ndarray:
        return self._block(self.P_inf)

    def transition(self, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``A = expm(F delta)`` and ``Q = P_inf - A P_inf A^T`` for gaps ``delta`` (T,) >= 0, each (T, D, D)."""
        delta = np.asarray(delta, dtype=np.float64)
        A = expm(self.F * delta[:, None, None]) if delta.size else np.zeros((0,) + self.F.shape)
        Q = self.P_inf - A @ self.P_inf @ np.swapaxes(A, 1, 2)
        Q = 0.5 * (Q + np.swapaxes(Q, 1, 2))
        return self._block(A), self._block(Q)

    def covariance(self, delta: np.ndarray) -> np.ndarray:
        """Prior covariance ``H expm(F |delta|) P_inf H^T`` of one GP; equals the Matérn kernel."""
        A, _ = self.transition(np.abs(np.asarray(delta, dtype=np.float64)).ravel())
        d = self.F.shape[0]
        return (A[:, :d, :d] @ self.P_inf)[:, 0, 0].reshape(np.shape(delta))


@dataclass
class SmoothedStates:
    """Smoothed posterior of the state at sorted unique inputs ``t`` (T,).

    ``mean`` (T, D), ``cov`` (T, D, D) and ``cross`` (T-1, D, D) = Cov(z_t, z_{t+1}).
    """

    t: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    cross: np.ndarray


def smooth(
    sde: MaternSDE, t: np.ndarray, J: np.ndarray, h: np.ndarray, transitions: tuple[np.ndarray, np.ndarray] | None = None
) -> SmoothedStates:
    """Kalman filter + RTS smoother with information-form pseudo-observations (compiled with numba).

    At each input ``t[i]`` the likelihood of ``u = H z`` is ``exp(-u^T J_i u / 2 + h_i^T u)``
    (a Gaussian message in natural parameters; ``J_i`` may be singular, e.g. zero where a point
    carries no data).

    Parameters
    ----------
    sde : MaternSDE
        The prior: ``R`` Matérn GPs with the stacked state of dimension ``D``.
    t : (T,) strictly increasing inputs
    J : (T, R, R) precision of each message
    h : (T, R) precision-times-mean of each message
    transitions : optional ``sde.transition(np.diff(t))``, to reuse across calls
    """
    A, Q = sde.transition(np.diff(t)) if transitions is None else transitions
    ms, Ps, cross = _kalman_rts(
        np.ascontiguousarray(A, dtype=np.float64),
        np.ascontiguousarray(Q, dtype=np.float64),
        np.ascontiguousarray(sde.P_inf_full, dtype=np.float64),
        np.ascontiguousarray(sde.H_full, dtype=np.float64),
        np.ascontiguousarray(J, dtype=np.float64),
        np.ascontiguousarray(h, dtype=np.float64),
    )
    return SmoothedStates(t, ms, Ps, cross)


@numba.njit(cache=True)
def _mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """``a @ b`` for small matrices (explicit loops beat a BLAS call at these sizes)."""
    n, k = a.shape
    m = b.shape[1]
    out = np.zeros((n, m))
    for i in range(n):
        for p in range(k):
            aip = a[i, p]
            if aip != 0.0:
                for j in range(m):
                    out[i, j] += aip * b[p, j]
    return out


@numba.njit(cache=True)
def _kalman_rts(
    A: np.ndarray, Q: np.ndarray, P0: np.ndarray, H: np.ndarray, J: np.ndarray, h: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Information-form Kalman filter and RTS smoother (see :func:`smooth`), compiled.

    A, Q (T-1, D, D); P0 (D, D); H (R, D); J (T, R, R); h (T, R). Returns the smoothed means
    (T, D), covariances (T, D, D) and lag-one cross covariances (T-1, D, D).
    """
    T = J.shape[0]
    D = P0.shape[0]
    Rr = H.shape[0]
    mf = np.empty((T, D))
    Pf = np.empty((T, D, D))
    mp = np.empty((T, D))
    Pp = np.empty((T, D, D))
    m = np.zeros(D)
    P = P0.copy()
    Ht = np.ascontiguousarray(H.T)
    eye_r = np.eye(Rr)
    for i in range(T):
        if i > 0:
            Ai = A[i - 1]
            m = Ai @ m
            P = _mm(_mm(Ai, P), np.ascontiguousarray(Ai.T)) + Q[i - 1]
        mp[i] = m
        Pp[i] = P
        PHt = _mm(P, Ht)  # (D, R)
        S = _mm(H, PHt)  # (R, R)
        Ji = np.ascontiguousarray(J[i])
        # G = P H^T (I + J S)^-1, i.e. G^T = solve((I + J S)^T, (P H^T)^T)
        G = np.ascontiguousarray(np.linalg.solve(np.ascontiguousarray((eye_r + _mm(Ji, S)).T),
                                                 np.ascontiguousarray(PHt.T)).T)
        resid = h[i] - Ji @ (H @ m)
        m = m + G @ resid
        P = P - _mm(_mm(G, Ji), np.ascontiguousarray(PHt.T))
        P = 0.5 * (P + P.T)
        mf[i] = m
        Pf[i] = P
    ms = mf.copy()
    Ps = Pf.copy()
    cross = np.empty((max(T - 1, 0), D, D))
    for i in range(T - 2, -1, -1):
        # C = Pf A^T Pp^-1 (Pp symmetric): C^T = solve(Pp, A Pf)
        C = np.ascontiguousarray(np.linalg.solve(np.ascontiguousarray(Pp[i + 1]), _mm(A[i], Pf[i])).T)
        ms[i] = mf[i] + C @ (ms[i + 1] - mp[i + 1])
        Pi = Pf[i] + _mm(_mm(C, Ps[i + 1] - Pp[i + 1]), np.ascontiguousarray(C.T))
        Ps[i] = 0.5 * (Pi + Pi.T)
        cross[i] = _mm(C, Ps[i + 1])
    return ms, Ps, cross


def posterior_at(sde: MaternSDE, states: SmoothedStates, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean (n, R) and covariance (n, R, R) of the functions at any inputs ``x`` (n,).

    Inputs equal to a smoothed input reuse its state. Inputs between two smoothed inputs are
    conditioned on both neighbours through the SDE (interpolation, exact for the Markov prior);
    inputs outside ``[t[0], t[-1]]`` are conditioned on the nearest end state only (extrapolation:
    the mean decays to 0 and the variance grows to the prior's ``P_inf`` away from the data).
    """
    t, H = states.t, sde.H_full
    x = np.asarray(x, dtype=np.float64)
    pos = np.searchsorted(t, x)
    hit = (pos < len(t)) & (t[np.minimum(pos, len(t) - 1)] == x)
    D = sde.state_dim
    mean = np.empty((x.size, D))
    cov = np.empty((x.size, D, D))
    idx = pos[hit]
    mean[hit], cov[hit] = states.mean[idx], states.cov[idx]
    P_inf = sde.P_inf_full
    # right of the data: z = A z_T + w
    right = ~hit & (pos == len(t))
    if right.any():
        A, Q = sde.transition(x[right] - t[-1])
        mean[right] = A @ states.mean[-1]
        cov[right] = A @ states.cov[-1] @ np.swapaxes(A, 1, 2) + Q
    # left of the data: z | z_0 under the stationary prior, M = P_inf A^T P_inf^-1
    left = ~hit & (pos == 0)
    if left.any():
        A, _ = sde.transition(t[0] - x[left])
        M = P_inf @ np.swapaxes(A, 1, 2) @ np.linalg.inv(P_inf)
        resid = P_inf - M @ A @ P_inf
        mean[left] = M @ states.mean[0]
        cov[left] = M @ states.cov[0] @ np.swapaxes(M, 1, 2) + resid
    inner = ~hit & (pos > 0) & (pos < len(t))
    if inner.any():
        j = pos[inner]
        A1, Q1 = sde.transition(x[inner] - t[j - 1])
        A2, _ = sde.transition(t[j] - x[inner])
        A12 = A2 @ A1
        Q12 = P_inf - A12 @ P_inf @ np.swapaxes(A12, 1, 2)
        Kb = np.swapaxes(np.linalg.solve(Q12, A2 @ Q1), 1, 2)  # Q1 A2^T Q12^-1
        Ma = A1 - Kb @ A12
        resid = Q1 - Kb @ A2 @ Q1
        mean[inner] = (Ma @ states.mean[j - 1][:, :, None] + Kb @ states.mean[j][:, :, None])[:, :, 0]
        Pa, Pb, Pab = states.cov[j - 1], states.cov[j], states.cross[j - 1]
        MaT, KbT = np.swapaxes(Ma, 1, 2), np.swapaxes(Kb, 1, 2)
        cov[inner] = (Ma @ Pa @ MaT + Kb @ Pb @ KbT + Ma @ Pab @ KbT + Kb @ np.swapaxes(Pab, 1, 2) @ MaT + resid)
    cov = H @ cov @ H.T
    return mean @ H.T, 0.5 * (cov + np.swapaxes(cov, 1, 2))
