"""PAC analyses on generated linear models: invariant representations and unsupervised pretraining.

**Invariant representations** (Parulekar et al.). In a linear SEM ``v = B v + diag(σ) ε`` (``B``
strictly lower triangular in topological order, ``ε ~ N(0, I)``) an environment ``e`` rescales the
noise ``σ`` at non-target sites. For a representation ``Φ`` ``(k, d)`` of the features ``x`` the
environment-optimal predictor is ``β_e(Φ) = (Φ Σ_e Φ^T)^{-1} Φ Σ_{e,xy}``, and ``Φ`` is
``ε``-approximately invariant on a set of environments if ``max_{e,e'} ||β_e(Φ) - β_{e'}(Φ)|| <= ε``.
Selecting the target's parents gives exact invariance; any representation that reads a child of the
target breaks once the child's noise is intervened on. :class:`InvariantRepresentation` searches
coordinate representations that are ``ε``-invariant on the training environments and keeps the most
predictive; :func:`pac_invariance_curve` measures how often it fails on fresh interventions as the
number of training environments ``m`` grows, and :func:`invariance_sample_size` is the PAC
calculator: if every candidate's failure set ``{e : Φ not invariant on e}`` is the non-zero set of a
polynomial of degree ``<= r`` in the ``q`` intervention parameters (VC dimension ``<= C(q + r, r)``),
consistency on ``m >= max((4/ε) log2(2/δ), (8 D/ε) log2(13/ε))`` i.i.d. interventions implies
invariance on all but an ``ε`` fraction of the family with probability ``>= 1 - δ`` (Blumer et al.).
The sample size depends on the family's parameters, not on the ambient dimension.

**Unsupervised pretraining** (Ge et al.). With latent factors ``x = A z + noise``,
``y = θ^T z + noise``, the two-stage estimator fits the latent model by maximum likelihood on ``m``
unlabelled points (probabilistic PCA, the factor model with isotropic noise) and a ridge head on the
posterior means ``E[z | x]`` of ``n`` labelled points, with excess risk ``Õ(sqrt(C_Φ/m) + sqrt(C_Ψ/n))``
against ``Õ(sqrt(C_{Φ∘Ψ}/n))`` for supervised learning on raw ``x``. :class:`PretrainedFactorRegressor` is
that estimator, :func:`make_factor_regression` the generator and :func:`bayes_risk` the reference risk.

References
----------
A. Parulekar, K. Shanmugam, S. Shakkottai. "PAC Generalization via Invariant Representations",
ICML 2023 (arXiv:2205.15196). J. Ge, S. Tang, J. Fan, C. Jin. "On the Provable Advantage of
Unsupervised Pretraining", ICLR 2024 (arXiv:2303.01566). A. Blumer, A. Ehrenfeucht, D. Haussler,
M. Warmuth. "Learnability and the Vapnik-Chervonenkis dimension", J. ACM 36(4), 1989. M. E. Tipping,
C. M. Bishop. "Probabilistic principal component analysis", J. R. Stat. Soc. B 61(3), 1999.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.utils.validation import check_array, check_float, check_int, check_random_state

__all__ = [
    "LinearSEM",
    "make_linear_sem",
    "environment_moments",
    "environment_predictor",
    "approx_invariance_gap",
    "InvariantRepresentation",
    "pac_invariance_curve",
    "invariance_sample_size",
    "make_factor_regression",
    "bayes_risk",
    "PretrainedFactorRegressor",
]


# ---------------------------------------------------------------------------------------------- SEM
@dataclass(frozen=True)
class LinearSEM:
    """``v = B v + diag(noise_std * scales) ε`` over ``d`` nodes; node ``target`` is ``y``, the rest are ``x``.

    Attributes
    ----------
    weights : ndarray (d, d)
        ``B[i, j]`` is the weight of edge ``j -> i``; strictly lower triangular.
    target : int
    noise_std : ndarray (d,)
    parents, children : tuple of int
        Feature columns (indices into ``x``, i.e. with the target removed) of ``y``'s parents and children.
    """

    weights: np.ndarray
    target: int
    noise_std: np.ndarray
    parents: tuple[int, ...]
    children: tuple[int, ...]

    @property
    def n_features(self) -> int:
        """``d - 1``."""
        return self.weights.shape[0] - 1

    def _scales(self, scales: Any) -> np.ndarray:
        d = self.weights.shape[0]
        s = np.ones(d) if scales is None else check_array(scales, "scales", ndim=1)
        if s.shape[0] != d:
            raise ValueError(f"scales must have one entry per node (d={d}), got {s.shape[0]}")
        if np.any(s <= 0):
            raise ValueError("scales must be positive noise multipliers")
        return s

    def covariance(self, scales: Any = None) -> np.ndarray:
        """Population covariance ``(d, d)`` of ``v`` in the environment with noise multipliers ``scales`` ``(d,)``."""
        mix = np.linalg.inv(np.eye(self.weights.shape[0]) - self.weights) * (self.noise_std * self._scales(scales))
        return mix @ mix.T

    def sample(self, n: int, scales: Any = None, random_state: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """``n`` draws: features ``x`` ``(n, d - 1)`` and target ``y`` ``(n,)``."""
        n = check_int(n, "n", low=1)
        rng = check_random_state(random_state)
        d = self.weights.shape[0]
        eps = rng.standard_normal((n, d)) * (self.noise_std * self._scales(scales))
        v = np.linalg.solve(np.eye(d) - self.weights, eps.T).T
        return np.delete(v, self.target, axis=1), v[:, self.target]

    def moments(self, scales: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Population ``(Σ_xx, Σ_xy)`` of the environment."""
        cov = self.covariance(scales)
        keep = np.delete(np.arange(cov.shape[0]), self.target)
        return cov[np.ix_(keep, keep)], cov[keep, self.target]


def make_linear_sem(
    n_nodes: int = 10,
    *,
    n_parents: int = 2,
    n_children: int = 1,
    edge_prob: float = 0.3,
    child_weight: float = 1.0,
    random_state: Any = None,
) -> LinearSEM:
    """A random linear SEM whose target has exactly ``n_parents`` parents and ``n_children`` children.

    Nodes are in topological order; the target sits at index ``n_nodes - n_children - 1`` so its
    children come last. Other edges appear with probability ``edge_prob`` with weights of magnitude
    in ``[0.5, 1.5]``; edges ``y -> child`` have weight ``child_weight``.
    """
    d = check_int(n_nodes, "n_nodes", low=3)
    n_children = check_int(n_children, "n_children", low=0, high=d - 2)
    target = d - n_children - 1
    n_parents = check_int(n_parents, "n_parents", low=0, high=target)
    edge_prob = check_float(edge_prob, "edge_prob", low=0.0, high=1.0)
    child_weight = check_float(child_weight, "child_weight")
    rng = check_random_state(random_state)
    w = np.tril(rng.uniform(0.5, 1.5, (d, d)) * rng.choice([-1.0, 1.0], (d, d)) * (rng.random((d, d)) < edge_prob), -1)
    w[target] = 0.0
    parents = np.sort(rng.choice(target, n_parents, replace=False))
    w[target, parents] = rng.uniform(0.5, 1.5, n_parents) * rng.choice([-1.0, 1.0], n_parents)
    children = np.arange(target + 1, d)
    w[children, target] = child_weight
    # keep the variance of every node moderate: divide each row by sqrt(1 + its squared in-weights)
    w = w / np.sqrt(1.0 + (w**2).sum(1, keepdims=True))
    shift = lambda idx: tuple(int(i) if i < target else int(i) - 1 for i in idx)  # noqa: E731
    return LinearSEM(w, target, np.ones(d), shift(parents), shift(children))


# ---------------------------------------------------------------------------------- invariance gap
def environment_moments(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
    """Centred sample moments ``(Σ_xx (d, d), Σ_xy (d,))`` of one environment's ``X`` ``(n, d)``, ``y`` ``(n,)``."""
    x = check_array(X, "X", ndim=2, min_rows=2)
    t = check_array(y, "y", ndim=1)
    if t.shape[0] != x.shape[0]:
        raise ValueError(f"y has length {t.shape[0]}, X has {x.shape[0]} rows")
    xc, yc = x - x.mean(0), t - t.mean()
    return xc.T @ xc / x.shape[0], xc.T @ yc / x.shape[0]


def environment_predictor(phi: Any, cov_xx: Any, cov_xy: Any) -> np.ndarray:
    """``β_e(Φ) = (Φ Σ_xx Φ^T)^{-1} Φ Σ_xy``: shape ``(k,)`` for ``Φ`` ``(k, d)``."""
    p = check_array(phi, "phi", ndim=2)
    sxx, sxy = check_array(cov_xx, "cov_xx", ndim=2), check_array(cov_xy, "cov_xy", ndim=1)
    if sxx.shape != (p.shape[1], p.shape[1]) or sxy.shape[0] != p.shape[1]:
        raise ValueError(f"phi is {p.shape}; cov_xx must be ({p.shape[1]}, {p.shape[1]}) and cov_xy ({p.shape[1]},)")
    return np.linalg.solve(p @ sxx @ p.T, p @ sxy)


def _as_moments(env: Any) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(env, (tuple, list)) and len(env) == 2):
        raise TypeError("each environment must be a pair: (X, y) samples or (cov_xx, cov_xy) moments")
    a, b = np.asarray(env[0]), np.asarray(env[1])
    if a.ndim == 2 and b.ndim == 1 and a.shape[0] == a.shape[1] == b.shape[0] and np.allclose(a, a.T):
        return check_array(a, "cov_xx", ndim=2), check_array(b, "cov_xy", ndim=1)
    return environment_moments(a, b)


def approx_invariance_gap(phi: Any, environments: Sequence[Any]) -> float:
    """``max_{e, e'} ||β_e(Φ) - β_{e'}(Φ)||_2`` over ``environments`` (``(X, y)`` samples or population moments).

    A pair whose first entry is square and symmetric with a matching vector is read as moments
    ``(Σ_xx, Σ_xy)`` (see :meth:`LinearSEM.moments`); anything else as samples.

    >>> sem = make_linear_sem(random_state=0)
    >>> envs = [sem.moments(), sem.moments(np.r_[np.ones(5), 3.0, np.ones(4)])]
    >>> phi = np.eye(sem.n_features)[list(sem.parents)]
    >>> round(approx_invariance_gap(phi, envs), 12)
    0.0
    """
    if len(environments) < 2:
        raise ValueError(f"need at least 2 environments to measure invariance, got {len(environments)}")
    betas = np.stack([environment_predictor(phi, *_as_moments(e)) for e in environments])
    return float(np.max(np.linalg.norm(betas[:, None] - betas[None], axis=-1)))


class InvariantRepresentation(GraphrecEstimator):
    """The most predictive coordinate representation that is ``eps``-invariant across the training environments.

    Every non-empty feature subset ``S`` with ``|S| <= max_features`` defines ``Φ_S`` (rows of the
    identity). ``S`` is kept if its invariance gap over the environments is ``<= eps``; among those,
    the one with the smallest pooled residual variance is selected. Exhaustive, so ``d <= 16``.

    Parameters
    ----------
    eps : float
        Invariance tolerance ``ε`` (the sampling noise of ``β_e`` must be below it).
    max_features : int, optional
        Largest subset size (default ``d``).

    Attributes
    ----------
    support_ : ndarray of int
        Selected feature indices (empty if no subset is invariant).
    phi_ : ndarray (k, d)
    coef_ : ndarray (k,)
        Pooled predictor on ``Φ x``.
    gap_ : float
        Invariance gap of the selection on the training environments.
    n_invariant_ : int
        Number of subsets found ``eps``-invariant.
    n_features_in_ : int
    """

    def __init__(self, eps: float = 0.05, *, max_features: int | None = None) -> None:
        self.eps = eps
        self.max_features = max_features

    def fit(self, environments: Sequence[Any], y: None = None) -> InvariantRepresentation:
        """``environments``: list of ``(X_e, y_e)`` samples or ``(Σ_xx, Σ_xy)`` population moments (``>= 2``)."""
        eps = check_float(self.eps, "eps", low=0.0)
        if not isinstance(environments, (list, tuple)) or len(environments) < 2:
            raise ValueError("environments must be a list of at least 2 environments")
        moments = [_as_moments(e) for e in environments]
        d = moments[0][0].shape[0]
        if any(m[0].shape[0] != d for m in moments):
            raise ValueError("all environments must have the same number of features")
        if d > 16:
            raise ValueError(f"exhaustive subset search supports d <= 16 features, got d={d}")
        max_k = d if self.max_features is None else check_int(self.max_features, "max_features", low=1, high=d)
        sxx = np.stack([m[0] for m in moments])
        sxy = np.stack([m[1] for m in moments])
        pooled_xx, pooled_xy = sxx.mean(0), sxy.mean(0)
        best, best_risk, n_inv = np.zeros(0, dtype=np.int64), np.inf, 0
        for k in range(1, max_k + 1):
            for subset in itertools.combinations(range(d), k):
                s = list(subset)
                betas = np.linalg.solve(sxx[:, s][:, :, s], sxy[:, s][..., None])[..., 0]
                gap = float(np.max(np.linalg.norm(betas[:, None] - betas[None], axis=-1)))
                if gap > eps:
                    continue
                n_inv += 1
                beta = np.linalg.solve(pooled_xx[np.ix_(s, s)], pooled_xy[s])
                risk = -float(pooled_xy[s] @ beta)  # pooled residual variance up to the constant Var(y)
                if risk < best_risk - 1e-12:
                    best, best_risk = np.array(s), risk
        self.support_ = best
        self.phi_ = np.eye(d)[best]
        self.n_invariant_ = n_inv
        self.n_features_in_ = d
        if best.size:
            self.coef_ = np.linalg.solve(pooled_xx[np.ix_(best, best)], pooled_xy[best])
            self.gap_ = approx_invariance_gap(self.phi_, moments)
        else:
            self.coef_, self.gap_ = np.zeros(0), float("nan")
        return self

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        """``(Φ x)^T coef`` for ``X`` ``(n, d)`` (features centred by the caller's convention)."""
        x = self._check_fitted_input(X)
        return x[:, self.support_] @ self.coef_


def pac_invariance_curve(
    sem: LinearSEM,
    sample_scales: Callable[[np.random.Generator], np.ndarray],
    m_list: Sequence[int],
    *,
    eps: float = 0.05,
    n_test: int = 1000,
    n_samples: int | None = None,
    n_repeats: int = 10,
    random_state: Any = None,
) -> np.ndarray:
    """Fraction of fresh interventions on which the learned representation is not ``2 eps``-invariant, per ``m``.

    For each ``m`` in ``m_list`` and each repeat: draw ``m`` training interventions from
    ``sample_scales(rng) -> scales (d,)`` (plus the observational environment), fit
    :class:`InvariantRepresentation` on their moments (population moments if ``n_samples`` is None,
    else sample moments of ``n_samples`` draws), then count the ``n_test`` fresh interventions whose
    population ``β_e(Φ)`` is farther than ``2 eps`` from the observational one.

    Returns
    -------
    ndarray, shape (len(m_list),)
        Violation rate averaged over repeats.
    """
    rng = check_random_state(random_state)
    n_test = check_int(n_test, "n_test", low=1)
    n_repeats = check_int(n_repeats, "n_repeats", low=1)
    ms = [check_int(m, "m", low=1) for m in m_list]
    if not ms:
        raise ValueError("m_list is empty")
    test = [sem.moments(sample_scales(rng)) for _ in range(n_test)]
    test_xx, test_xy = np.stack([t[0] for t in test]), np.stack([t[1] for t in test])
    rates = np.zeros(len(ms))
    for i, m in enumerate(ms):
        for _ in range(n_repeats):
            scales = [np.ones(sem.weights.shape[0])] + [sample_scales(rng) for _ in range(m)]
            if n_samples is None:
                envs = [sem.moments(s) for s in scales]
            else:
                envs = [environment_moments(*sem.sample(n_samples, s, rng)) for s in scales]
            s = InvariantRepresentation(eps).fit(envs).support_
            if s.size == 0:
                rates[i] += 1.0
                continue
            ref = environment_predictor(np.eye(sem.n_features)[s], *sem.moments())
            betas = np.linalg.solve(test_xx[:, s][:, :, s], test_xy[:, s][..., None])[..., 0]
            rates[i] += float(np.mean(np.linalg.norm(betas - ref, axis=1) > 2 * eps))
    return rates / n_repeats


def invariance_sample_size(n_params: int, degree: int, eps: float, delta: float) -> int:
    """Training interventions ``m`` after which invariance holds on ``1 - eps`` of the family w.p. ``1 - delta``.

    ``D = C(n_params + degree, degree)`` bounds the VC dimension of the failure sets; the bound is
    Blumer et al.'s ``max((4/ε) log2(2/δ), (8D/ε) log2(13/ε))``.

    >>> invariance_sample_size(2, 2, 0.1, 0.05)
    3371
    """
    q = check_int(n_params, "n_params", low=1)
    r = check_int(degree, "degree", low=1)
    eps = check_float(eps, "eps", low=0.0, high=1.0, low_open=True)
    delta = check_float(delta, "delta", low=0.0, high=1.0, low_open=True)
    if eps == 1.0 or delta == 1.0:
        raise ValueError(f"eps and delta must be < 1, got eps={eps}, delta={delta}")
    vc = math.comb(q + r, r)
    return math.ceil(max(4 / eps * math.log2(2 / delta), 8 * vc / eps * math.log2(13 / eps)))


# --------------------------------------------------------------------------------- pretraining
def make_factor_regression(
    n_samples: int,
    n_features: int = 100,
    n_factors: int = 5,
    *,
    noise: float = 0.5,
    label_noise: float = 0.1,
    random_state: Any = None,
    loadings: np.ndarray | None = None,
    theta: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x = A z + noise·ε``, ``y = θ^T z + label_noise·η`` with ``z ~ N(0, I_k)``.

    Pass ``loadings`` ``(d, k)`` and ``theta`` ``(k,)`` to draw more data from the same model.

    Returns
    -------
    X : ndarray (n, d), y : ndarray (n,), loadings : ndarray (d, k), theta : ndarray (k,)
    """
    n = check_int(n_samples, "n_samples", low=1)
    d = check_int(n_features, "n_features", low=1)
    k = check_int(n_factors, "n_factors", low=1, high=d)
    noise = check_float(noise, "noise", low=0.0)
    label_noise = check_float(label_noise, "label_noise", low=0.0)
    rng = check_random_state(random_state)
    a = rng.standard_normal((d, k)) / np.sqrt(k) if loadings is None else check_array(loadings, "loadings", ndim=2)
    th = rng.standard_normal(k) if theta is None else check_array(theta, "theta", ndim=1)
    if a.shape != (d, k) or th.shape != (k,):
        raise ValueError(f"loadings must be ({d}, {k}) and theta ({k},), got {a.shape} and {th.shape}")
    z = rng.standard_normal((n, k))
    x = z @ a.T + noise * rng.standard_normal((n, d))
    y = z @ th + label_noise * rng.standard_normal(n)
    return x, y, a, th


def bayes_risk(loadings: Any, theta: Any, noise: float, label_noise: float) -> float:
    """Smallest achievable test MSE ``θ^T Cov(z | x) θ + label_noise²`` of the factor regression model.

    ``Cov(z | x) = (I + A^T A / noise²)^{-1}``; excess risks are measured above this value.
    """
    a = check_array(loadings, "loadings", ndim=2)
    th = check_array(theta, "theta", ndim=1)
    noise = check_float(noise, "noise", low=0.0, low_open=True)
    label_noise = check_float(label_noise, "label_noise", low=0.0)
    post = np.linalg.inv(np.eye(a.shape[1]) + a.T @ a / noise**2)
    return float(th @ post @ th + label_noise**2)


class PretrainedFactorRegressor(GraphrecEstimator):
    """Two-stage learner: factor-model MLE on unlabelled data, then ridge on the posterior means ``E[z | x]``.

    Phase 1 is the closed-form maximum-likelihood probabilistic PCA (the factor model with isotropic
    noise, Tipping & Bishop): with the top eigenpairs ``(U_k, Λ_k)`` of the unlabelled covariance,
    ``σ² = mean`` of the other eigenvalues and ``W = U_k (Λ_k - σ² I)^{1/2}``; the posterior mean is
    ``E[z | x] = (W^T W + σ² I)^{-1} W^T (x - μ)``. Phase 2 is ridge regression with an intercept.

    Parameters
    ----------
    n_components : int
        Latent dimension ``k`` (phase 1).
    alpha : float
        Ridge penalty of the head (phase 2).

    Attributes
    ----------
    mean_ : ndarray (d,)
    components_ : ndarray (d, k)
        ``W`` (identified up to a rotation of ``z``, which the head absorbs).
    noise_variance_ : float
    coef_ : ndarray (k,)
    intercept_ : float
    n_features_in_ : int

    Examples
    --------
    >>> X, y, A, th = make_factor_regression(2000, 30, 3, random_state=0)
    >>> est = PretrainedFactorRegressor(n_components=3).fit(X[:50], y[:50], X_unlabeled=X)
    >>> est.predict(X[:2]).shape
    (2,)
    """

    def __init__(self, n_components: int = 5, *, alpha: float = 1e-3) -> None:
        self.n_components = n_components
        self.alpha = alpha

    def fit(self, X: Any, y: Any, X_unlabeled: Any = None) -> PretrainedFactorRegressor:  # noqa: N803
        """Phase 1 on ``X_unlabeled`` ``(m, d)`` (default ``X``); phase 2 on labelled ``X`` ``(n, d)``, ``y``."""
        x = check_array(X, "X", ndim=2)
        t = check_array(y, "y", ndim=1)
        if t.shape[0] != x.shape[0]:
            raise ValueError(f"y has length {t.shape[0]}, X has {x.shape[0]} rows")
        u = x if X_unlabeled is None else check_array(X_unlabeled, "X_unlabeled", ndim=2, min_rows=2)
        if u.shape[1] != x.shape[1]:
            raise ValueError(f"X_unlabeled has {u.shape[1]} features, X has {x.shape[1]}")
        d = x.shape[1]
        k = check_int(self.n_components, "n_components", low=1, high=d - 1)  # one eigenvalue left for the noise
        alpha = check_float(self.alpha, "alpha", low=0.0)
        self.mean_ = u.mean(0)
        lam, vec = np.linalg.eigh(np.cov(u - self.mean_, rowvar=False, bias=True))
        lam, vec = lam[::-1], vec[:, ::-1]
        self.noise_variance_ = float(lam[k:].mean())
        self.components_ = vec[:, :k] * np.sqrt(np.maximum(lam[:k] - self.noise_variance_, 0.0))
        self.n_features_in_ = d
        z = self.transform(x)
        zc, tc = z - z.mean(0), t - t.mean()
        self.coef_ = np.linalg.solve(zc.T @ zc + alpha * np.eye(k), zc.T @ tc)
        self.intercept_ = float(t.mean() - z.mean(0) @ self.coef_)
        return self

    def transform(self, X: Any) -> np.ndarray:  # noqa: N803
        """Posterior means ``E[z | x]`` ``(n, k)``."""
        x = self._check_fitted_input(X)
        w = self.components_
        m = w.T @ w + max(self.noise_variance_, 1e-12) * np.eye(w.shape[1])
        return np.linalg.solve(m, w.T @ (x - self.mean_).T).T

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        """Predicted targets ``(n,)``."""
        return self.transform(X) @ self.coef_ + self.intercept_


def _sem_envs(seed: int) -> tuple:
    sem = make_linear_sem(6, random_state=seed)
    rng = np.random.default_rng(seed)
    scales = (np.ones(6), np.r_[3.0, np.ones(5)], np.r_[np.ones(5), 2.0])
    return ([environment_moments(*sem.sample(500, s, rng)) for s in scales],)


register_estimator(
    "InvariantRepresentation",
    EstimatorSpec(
        factory=lambda: InvariantRepresentation(eps=0.2),
        make_input=_sem_envs,
        output=lambda est, args: est.support_,
        bad_inputs={
            "one environment": lambda: ([(np.eye(3), np.ones(3))],),
            "not a list": lambda: (np.ones((4, 3)),),
            "nan samples": lambda: ([(np.full((5, 2), np.nan), np.ones(5)), (np.ones((5, 2)), np.ones(5))],),
        },
        fitted_method="predict",
    ),
)

register_estimator(
    "PretrainedFactorRegressor",
    EstimatorSpec(
        factory=lambda: PretrainedFactorRegressor(n_components=2),
        make_input=lambda seed: make_factor_regression(200, 10, 2, random_state=seed)[:2],
        output=lambda est, args: est.predict(args[0]),
        bad_inputs={
            "nan": lambda: (np.full((5, 3), np.nan), np.ones(5)),
            "length mismatch": lambda: (np.ones((5, 3)), np.ones(4)),
            "too many components": lambda: (np.ones((5, 1)), np.ones(5)),
        },
        fitted_method="predict",
    ),
)
