"""Diffusion as subspace clustering: the mixture of low-rank Gaussians (MoLRG) denoiser.

Data model (MoLRG): ``x0 = U_k a`` with component ``k ~ pi``, ``a ~ N(0, v_k I_{d_k})`` and
orthonormal ``U_k`` ``(D, d_k)``. Noising: ``x_t = s_t x0 + gamma_t eps`` with ``eps ~ N(0, I_D)``;
this module uses the variance-preserving trigonometric schedule ``s_t = cos(pi t / 2)``,
``gamma_t = sin(pi t / 2)`` for ``t`` in ``(0, 1)``.

The optimal (MMSE) denoiser is a posterior-weighted sum of shrunk projections
(Wang et al. 2024, Thm. 1; the per-component variance ``v_k`` is our generalisation of their
``v_k = 1``)::

    E[x0 | x_t] = sum_k w_k(x_t) * s v_k / (s^2 v_k + gamma^2) * U_k U_k^T x_t
    w_k(x_t)   = softmax_k( log pi_k + s^2 v_k / (2 gamma^2 (s^2 v_k + gamma^2)) ||U_k^T x_t||^2
                            - d_k / 2 * log(1 + s^2 v_k / gamma^2) )

Parametrising the denoiser in exactly this form with trainable orthonormal ``U_k``
(:class:`MoLRGDenoiser`) and training it by denoising score matching,
``E_t ||x_theta(x_t, t) - x0||^2``, is equivalent to subspace clustering
(``max sum_i max_k ||U_k^T x_i||^2``); with one component it is PCA. The trained ``U_k`` recover
the planted subspaces, which :class:`DiffusionSubspaceClustering` exposes as a clustering estimator.

Reference: P. Wang, H. Zhang, Z. Zhang, S. Chen, Y. Ma, Q. Qu, "Diffusion models learn
low-dimensional distributions via subspace clustering", NeurIPS 2024 (arXiv 2409.02426).
The notes reconstruct the formulas from the paper's abstract ([recon]); the closed form above is
re-derived here from Gaussian conditioning and checked against a full-covariance reference in
the tests.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import ClusterMixin
from torch import nn

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.core._checks import as_tensor
from graphrec.train import Trainer, tensor_batches
from graphrec.utils.validation import check_array, check_bool, check_choice, check_device, check_float, check_int, check_random_state

__all__ = [
    "DiffusionSubspaceClustering",
    "MoLRGDenoiser",
    "molrg_denoiser",
    "molrg_posterior",
    "noise_levels",
]

logger = logging.getLogger(__name__)


def noise_levels(t: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Signal and noise scales ``(s_t, gamma_t) = (cos(pi t / 2), sin(pi t / 2))`` of the VP schedule.

    ``t`` is a tensor (any shape) with entries in ``(0, 1)``; returns two tensors of its shape.

    >>> s, g = noise_levels(torch.tensor([0.5]))
    >>> round(float(s**2 + g**2), 6)
    1.0
    """
    t = as_tensor(t, "t", allow_empty=False)
    if bool(((t <= 0) | (t >= 1)).any()):
        raise ValueError("t must lie in the open interval (0, 1)")
    return torch.cos(math.pi * t / 2), torch.sin(math.pi * t / 2)


def _stack_bases(bases: Any, dim: int) -> list[torch.Tensor]:
    """Bases as a list of ``(D, d_k)`` tensors: accepts ``(K, D, d)`` or a sequence of ``(D, d_k)``."""
    if isinstance(bases, (torch.Tensor, np.ndarray)):
        b = as_tensor(bases, "bases", ndim=3)
        items = list(b.unbind(0))
    elif isinstance(bases, Sequence) and len(bases) > 0:
        items = [as_tensor(u, f"bases[{i}]", ndim=2) for i, u in enumerate(bases)]
    else:
        raise TypeError("bases must be a (K, D, d) array or a non-empty sequence of (D, d_k) arrays")
    for i, u in enumerate(items):
        if u.shape[0] != dim:
            raise ValueError(f"bases[{i}] has {u.shape[0]} rows but x_t has {dim} features")
        if u.shape[1] > u.shape[0]:
            raise ValueError(f"bases[{i}] must be tall (D, d_k) with d_k <= D, got shape {tuple(u.shape)}")
    return items


def _levels(value: Any, name: str, n: int, ref: torch.Tensor) -> torch.Tensor:
    """A noise scale as an ``(n, 1)`` column (scalars are broadcast)."""
    v = as_tensor(value, name).to(ref).reshape(-1)
    if v.numel() == 1:
        v = v.expand(n)
    if v.numel() != n:
        raise ValueError(f"{name} must be a scalar or have {n} entries (one per row of x_t), got {v.numel()}")
    return v[:, None]


def _component_terms(
    x_t: torch.Tensor, bases: list[torch.Tensor], s: torch.Tensor, gamma: torch.Tensor,
    variances: torch.Tensor, log_weights: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior logits ``(n, K)`` and per-component conditional means ``(K, n, D)``."""
    logits, means = [], []
    for k, u in enumerate(bases):
        v = variances[k]
        coef = u.mT @ x_t.mT  # (d_k, n)
        energy = (coef**2).sum(0)[:, None]  # (n, 1)
        snr = s**2 * v / gamma**2
        logits.append(log_weights[k] + snr / (2 * (s**2 * v + gamma**2)) * energy - u.shape[1] / 2 * torch.log1p(snr))
        means.append((s * v / (s**2 * v + gamma**2)) * (coef.mT @ u.mT))
    return torch.cat(logits, 1), torch.stack(means)


def _check_mixture(n_comp: int, variances: Any, weights: Any, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if variances is None:
        var = ref.new_ones(n_comp)
    else:
        var = as_tensor(variances, "variances", ndim=1).to(ref)
        if var.numel() != n_comp or bool((var <= 0).any()):
            raise ValueError(f"variances must hold {n_comp} positive numbers, got {variances!r}")
    if weights is None:
        logw = ref.new_full((n_comp,), -math.log(n_comp))
    else:
        w = as_tensor(weights, "weights", ndim=1).to(ref)
        if w.numel() != n_comp or bool((w <= 0).any()) or abs(float(w.sum()) - 1.0) > 1e-6:
            raise ValueError(f"weights must be {n_comp} positive mixing proportions summing to 1, got {weights!r}")
        logw = torch.log(w)
    return var, logw


def molrg_posterior(
    x_t: Any, bases: Any, s: Any, gamma: Any, *, variances: Any = None, weights: Any = None
) -> torch.Tensor:
    """Posterior component probabilities ``P(k | x_t)`` under a MoLRG, shape ``(n, K)``.

    Parameters
    ----------
    x_t : Tensor, shape (n, D)
        Noisy points ``s x0 + gamma eps``.
    bases : Tensor (K, D, d) or sequence of K tensors (D, d_k)
        Orthonormal bases ``U_k`` of the components.
    s, gamma : float or Tensor of shape (n,)
        Signal and noise scales (``gamma > 0``).
    variances : Tensor (K,), optional
        Per-coordinate variances ``v_k`` of the latent codes (default 1).
    weights : Tensor (K,), optional
        Mixing proportions ``pi_k`` (default uniform).
    """
    x_t = as_tensor(x_t, "x_t", ndim=2)
    items = _stack_bases(bases, x_t.shape[1])
    items = [u.to(x_t) for u in items]
    s_col, g_col = _levels(s, "s", x_t.shape[0], x_t), _levels(gamma, "gamma", x_t.shape[0], x_t)
    if bool((g_col <= 0).any()):
        raise ValueError("gamma must be positive (the denoiser is undefined without noise)")
    var, logw = _check_mixture(len(items), variances, weights, x_t)
    logits, _ = _component_terms(x_t, items, s_col, g_col, var, logw)
    return torch.softmax(logits, dim=1)


def molrg_denoiser(
    x_t: Any, bases: Any, s: Any, gamma: Any, *, variances: Any = None, weights: Any = None
) -> torch.Tensor:
    """Closed-form MMSE denoiser ``E[x0 | x_t]`` of a MoLRG, shape ``(n, D)`` (module docstring formula).

    Arguments as in :func:`molrg_posterior`. With one component it is the shrunk projection
    ``s v / (s^2 v + gamma^2) U U^T x_t``.

    >>> u = torch.eye(3, dtype=torch.float64)[:, :1]
    >>> molrg_denoiser(torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64), [u], 1.0, 1.0).tolist()
    [[1.0, 0.0, 0.0]]
    """
    x_t = as_tensor(x_t, "x_t", ndim=2)
    items = [u.to(x_t) for u in _stack_bases(bases, x_t.shape[1])]
    s_col, g_col = _levels(s, "s", x_t.shape[0], x_t), _levels(gamma, "gamma", x_t.shape[0], x_t)
    if bool((g_col <= 0).any()):
        raise ValueError("gamma must be positive (the denoiser is undefined without noise)")
    var, logw = _check_mixture(len(items), variances, weights, x_t)
    logits, means = _component_terms(x_t, items, s_col, g_col, var, logw)
    w = torch.softmax(logits, dim=1)
    return torch.einsum("nk,knd->nd", w, means)


class MoLRGDenoiser(nn.Module):
    """The MoLRG denoiser with trainable bases: ``x_theta(x_t; s, gamma)`` of the module docstring.

    Each ``U_k = qf(W_k)`` is the Q factor (positive-diagonal R) of an unconstrained ``(D, d)``
    parameter, so it is orthonormal for every parameter value; the latent variances ``v_k`` are
    trained in log space and the mixing proportions stay uniform.

    Parameters
    ----------
    ambient_dim : int
        ``D``.
    n_components : int
        ``K``.
    subspace_dim : int
        ``d`` (the same for every component).
    init : Tensor (K, D, d), optional
        Initial ``W_k`` (default standard normal from the global torch RNG; callers seed it).
    log_variance : float
        Initial ``log v_k``.
    """

    def __init__(self, ambient_dim: int, n_components: int, subspace_dim: int, *,
                 init: torch.Tensor | None = None, log_variance: float = 0.0) -> None:
        super().__init__()
        shape = (n_components, ambient_dim, subspace_dim)
        w = torch.randn(shape) if init is None else init.detach().clone()
        if tuple(w.shape) != shape:
            raise ValueError(f"init must have shape {shape}, got {tuple(w.shape)}")
        self.weight = nn.Parameter(w)
        self.log_variance = nn.Parameter(torch.full((n_components,), float(log_variance), dtype=w.dtype))

    @property
    def bases(self) -> torch.Tensor:
        """Orthonormal ``U`` of shape ``(K, D, d)``."""
        q, r = torch.linalg.qr(self.weight)
        sign = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
        return q * torch.where(sign == 0, torch.ones_like(sign), sign).unsqueeze(-2)

    def forward(self, x_t: torch.Tensor, s: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        """``x_t`` ``(n, D)``, ``s`` and ``gamma`` ``(n,)`` -> estimate of ``x0`` ``(n, D)``."""
        bases = list(self.bases.unbind(0))
        logw = x_t.new_full((len(bases),), -math.log(len(bases)))
        logits, means = _component_terms(x_t, bases, s[:, None], gamma[:, None], self.log_variance.exp(), logw)
        return torch.einsum("nk,knd->nd", torch.softmax(logits, dim=1), means)


def _dsm_loss(model: MoLRGDenoiser, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Denoising score matching in x0-space: ``mean ||x_theta(s x0 + gamma eps) - x0||^2``."""
    x0, t, eps = batch
    s, gamma = torch.cos(math.pi * t / 2), torch.sin(math.pi * t / 2)
    x_t = s[:, None] * x0 + gamma[:, None] * eps
    return ((model(x_t, s, gamma) - x0) ** 2).sum(1).mean()


class DiffusionSubspaceClustering(ClusterMixin, GraphrecEstimator):
    """Subspace clustering by training a MoLRG diffusion denoiser (Wang et al., NeurIPS 2024).

    ``fit`` trains :class:`MoLRGDenoiser` on ``X`` by denoising score matching over noise levels
    ``t ~ U(t_min, t_max)`` (fresh ``t`` and noise each epoch, Adam); the learnt bases are the
    recovered subspaces and each point is assigned to the basis that captures most of its energy,
    ``argmax_k ||U_k^T x||``. ``n_init`` restarts are trained and the one with the lowest
    final loss is kept (the objective, like K-subspaces, has spurious local optima).

    Parameters
    ----------
    n_subspaces : int, default 3
        ``K``.
    subspace_dim : int, default 3
        ``d``, the dimension of every subspace (``<= n_features``).
    n_epochs : int, default 100
    batch_size : int, default 512
    lr : float, default 0.1
        Adam step size, decayed by a cosine schedule to ``lr / 100``.
    t_min, t_max : float, default 0.05, 0.5
        Range of the diffusion time (``0 < t_min < t_max < 1``); small times give sharp posterior
        weights and hence sharp subspace estimates.
    n_init : int, default 2
    center : bool, default False
        Subtract the mean ``mean_`` of ``X`` first (the MoLRG components are zero-mean, and with one
        component the model is PCA, which centres); ``predict`` and ``denoise`` undo it.
    init : {"neighbours", "random"}, default "neighbours"
        Starting bases: the top singular vectors of a seed point's ``2 d`` nearest neighbours by
        absolute cosine (seeds drawn k-means++-style), or Gaussian. Training then fits the
        bases to all points; see the tests for how far it moves them.
    random_state : int, Generator or None
    device : str, default "cpu"
    verbose : bool

    Attributes
    ----------
    bases_ : ndarray (K, D, d)
        Orthonormal bases of the recovered subspaces.
    variances_ : ndarray (K,)
        Learnt latent variances ``v_k``.
    labels_ : ndarray (n,)
        Subspace of each training point.
    denoiser_ : MoLRGDenoiser
        The trained denoiser (on CPU).
    loss_ : float
        Final training loss of the kept restart.
    mean_ : ndarray (D,)
        The mean subtracted from the data (zeros unless ``center``).

    Examples
    --------
    >>> from graphrec.datasets.generators import make_union_of_subspaces
    >>> X, y = make_union_of_subspaces(300, 2, 12, 2, random_state=0)
    >>> model = DiffusionSubspaceClustering(2, 2, n_epochs=20, n_init=1, random_state=0).fit(X)
    >>> model.bases_.shape
    (2, 12, 2)
    """

    def __init__(
        self, n_subspaces: int = 3, subspace_dim: int = 3, *, n_epochs: int = 100, batch_size: int = 512,
        lr: float = 0.1, t_min: float = 0.05, t_max: float = 0.5, n_init: int = 2, center: bool = False,
        init: str = "neighbours", random_state: Any = None,
        device: str = "cpu", verbose: bool = False,
    ) -> None:
        self.n_subspaces = n_subspaces
        self.subspace_dim = subspace_dim
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.t_min = t_min
        self.t_max = t_max
        self.n_init = n_init
        self.center = center
        self.init = init
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _check_params(self, n_features: int) -> None:
        check_int(self.n_subspaces, "n_subspaces", low=1)
        check_int(self.subspace_dim, "subspace_dim", low=1, high=n_features)
        check_int(self.n_epochs, "n_epochs", low=1)
        check_int(self.batch_size, "batch_size", low=1)
        check_float(self.lr, "lr", low=0.0, low_open=True)
        t_min = check_float(self.t_min, "t_min", low=0.0, high=1.0, low_open=True)
        t_max = check_float(self.t_max, "t_max", low=0.0, high=1.0, low_open=True)
        if not t_min < t_max < 1.0:
            raise ValueError(f"need 0 < t_min < t_max < 1, got t_min={t_min}, t_max={t_max}")
        check_int(self.n_init, "n_init", low=1)
        check_choice(self.init, "init", ("neighbours", "random"))
        check_bool(self.center, "center")

    def fit(self, X: Any, y: Any = None) -> "DiffusionSubspaceClustering":
        """Train on ``X`` ``(n, D)`` (``y`` ignored) and store bases and labels."""
        X = check_array(X, "X", ndim=2, min_rows=2)
        self._check_params(X.shape[1])
        if X.shape[0] < self.n_subspaces:
            raise ValueError(f"X has {X.shape[0]} rows; need at least n_subspaces={self.n_subspaces}")
        device = check_device(self.device)
        rng = check_random_state(self.random_state)
        self.mean_ = X.mean(0) if self.center else np.zeros(X.shape[1])
        X = X - self.mean_
        x0 = torch.as_tensor(X, dtype=torch.float32)
        # Initial variance guess: the per-coordinate energy of a d-dimensional code.
        log_var0 = math.log(max(float((x0**2).sum(1).mean()) / self.subspace_dim, 1e-12))
        best: tuple[float, MoLRGDenoiser] | None = None
        for restart in range(int(self.n_init)):
            seed = int(rng.integers(0, 2**31 - 1))
            init = self._initial_bases(X, np.random.default_rng(seed))
            model = MoLRGDenoiser(X.shape[1], self.n_subspaces, self.subspace_dim, init=init, log_variance=log_var0)
            loss = self._train(model, x0, seed, device)
            logger.info("restart %d: final DSM loss %.6g", restart, loss)
            if best is None or loss < best[0]:
                best = (loss, model)
        self.loss_, self.denoiser_ = best[0], best[1].cpu().eval()
        with torch.no_grad():
            self.bases_ = self.denoiser_.bases.double().numpy()
            self.variances_ = self.denoiser_.log_variance.exp().double().numpy()
        self.labels_ = self._assign(X)
        return self

    def _initial_bases(self, X: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """Starting ``W_k`` ``(K, D, d)``: Gaussian (``init="random"``) or neighbourhood seeding.

        ``"neighbours"`` picks seed points k-means++-style (probability proportional to the squared
        residual left by the subspaces chosen so far) and spans each seed's ``2 d`` nearest
        neighbours by absolute cosine with their top-``d`` singular vectors.
        """
        k, d = int(self.n_subspaces), int(self.subspace_dim)
        if self.init == "random":
            return torch.as_tensor(rng.standard_normal((k, X.shape[1], d)), dtype=torch.float32)
        unit = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        n_neigh = min(2 * d, X.shape[0] - 1)
        bases: list[np.ndarray] = []
        resid = np.ones(X.shape[0])
        for _ in range(k):
            seed = int(rng.choice(X.shape[0], p=resid / resid.sum())) if resid.sum() > 0 else int(rng.integers(X.shape[0]))
            neigh = np.argsort(-np.abs(unit @ unit[seed]))[: n_neigh + 1]
            u = np.linalg.svd(X[neigh].T, full_matrices=False)[0][:, :d]
            if u.shape[1] < d:  # fewer neighbours than d: pad with random directions
                u = np.linalg.qr(np.hstack([u, rng.standard_normal((X.shape[1], d - u.shape[1]))]))[0]
            bases.append(u)
            captured = np.max([np.linalg.norm(unit @ b, axis=1) ** 2 for b in bases], axis=0)
            resid = np.clip(1.0 - captured, 0.0, None) ** 2
        return torch.as_tensor(np.stack(bases), dtype=torch.float32)

    def _train(self, model: MoLRGDenoiser, x0: torch.Tensor, seed: int, device: torch.device) -> float:
        t_min, t_max = float(self.t_min), float(self.t_max)

        def batches(epoch: int, generator: torch.Generator):
            n = x0.shape[0]
            t = t_min + (t_max - t_min) * torch.rand(n, generator=generator, device=generator.device)
            eps = torch.randn(x0.shape, generator=generator, device=generator.device)
            return tensor_batches(x0.to(device), t, eps, batch_size=int(self.batch_size), generator=generator)

        optimizer = torch.optim.Adam(model.parameters(), lr=float(self.lr))
        # Cosine decay to 1% of lr: the stochastic DSM gradient otherwise keeps the bases jittering.
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, int(self.n_epochs), eta_min=float(self.lr) / 100)
        trainer = Trainer(model, optimizer, _dsm_loss, max_epochs=int(self.n_epochs), device=device,
                          scheduler=scheduler, random_state=seed, verbose=self.verbose)
        result = trainer.fit(batches)
        # The last few epochs smooth out the noise of a single epoch's loss.
        tail = [h["train_loss"] for h in result.history[-10:]]
        return float(np.mean(tail))

    def _assign(self, X: np.ndarray) -> np.ndarray:
        energy = np.linalg.norm(np.einsum("nd,kds->kns", X, self.bases_), axis=2)
        return energy.argmax(0).astype(np.int64)

    def predict(self, X: Any) -> np.ndarray:
        """Subspace index ``argmax_k ||U_k^T x||`` of each row of ``X`` ``(n, D)``."""
        self._check_is_fitted()
        X = check_array(X, "X", ndim=2)
        if X.shape[1] != self.bases_.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features, the model was fitted on {self.bases_.shape[1]}")
        return self._assign(X - self.mean_)

    def denoise(self, x_t: Any, t: Any) -> np.ndarray:
        """The trained denoiser's ``E[x0 | x_t]`` for ``x_t`` ``(n, D)`` at times ``t`` (scalar or ``(n,)``)."""
        self._check_is_fitted()
        x_t = as_tensor(x_t, "x_t", ndim=2, dtype=torch.float32)
        if x_t.shape[1] != self.bases_.shape[1]:
            raise ValueError(f"x_t has {x_t.shape[1]} features, the model was fitted on {self.bases_.shape[1]}")
        t = torch.as_tensor(t, dtype=torch.float32).reshape(-1)
        if t.numel() not in (1, x_t.shape[0]):
            raise ValueError(f"t must be a scalar or have {x_t.shape[0]} entries (one per row of x_t), got {t.numel()}")
        s, gamma = noise_levels(t.expand(x_t.shape[0]))
        mean = torch.as_tensor(self.mean_, dtype=torch.float32)
        with torch.no_grad():  # x_t = s (x0c + mean) + gamma eps, so E[x0 | x_t] = mean + E[x0c | x_t - s mean]
            return (mean + self.denoiser_(x_t - s[:, None] * mean, s, gamma)).double().numpy()


def _spec_input(seed: int) -> tuple[np.ndarray]:
    from graphrec.datasets.generators import make_union_of_subspaces

    return (make_union_of_subspaces(60, 2, 8, 2, random_state=seed)[0],)


register_estimator(
    "DiffusionSubspaceClustering",
    EstimatorSpec(
        factory=lambda: DiffusionSubspaceClustering(2, 2, n_epochs=3, n_init=1, random_state=0),
        make_input=_spec_input,
        output=lambda est, args: est.bases_,
        bad_inputs={
            "nan": lambda: (np.full((10, 4), np.nan),),
            "one-d": lambda: (np.zeros(10),),
            "subspace_dim_too_large": lambda: (np.ones((10, 1)),),
        },
        fitted_method="predict",
    ),
)
