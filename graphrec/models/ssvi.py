"""SSVI: sparse subspace variational inference for Bayesian neural networks.

The mean-field Gaussian posterior ``q(w) = N(mu, sigma^2)`` (``sigma = softplus(rho)``) of each
layer lives on a sparse subspace: only the weights in a boolean mask of fixed size
``round(density * n_weights)`` are random, all others are exactly zero. Training minimises the
negative ELBO ``NLL + kl_weight * KL(q || N(0, prior_std^2)) / n_train``. Every ``delta`` steps the
subspace moves (RigL-style drop and grow, with a cosine-annealed fraction
``alpha / 2 (1 + cos(pi t / T_end))``):

- **drop** the active weights of lowest signal-to-noise ratio of the folded normal ``|theta|``,
  ``SNR = E|theta| / sd|theta|`` with ``E|theta| = sigma sqrt(2/pi) exp(-mu^2 / 2 sigma^2) +
  mu (1 - 2 Phi(-mu / sigma))`` (the paper's default ``SNR_mean_abs`` criterion);
- **grow** as many inactive weights (not active before the drop) with the largest dense
  gradient ``|dL / dw|`` (taken from the last backward pass), with ``mu = 0`` and ``sigma`` = the
  mean ``sigma`` of the layer's active weights.

The number of active weights is therefore the same after every update.

References
----------
J. Li, Z. Miao, Q. Qiu, R. Zhang. "Training Bayesian Neural Networks with Sparse Subspace
Variational Inference", ICLR 2024 (arXiv:2402.11025); U. Evci et al. "Rigging the Lottery:
Making All Tickets Winners", ICML 2020 (drop/grow schedule).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.train import Trainer, tensor_batches
from graphrec.utils.validation import check_array, check_device, check_float, check_int, check_random_state

__all__ = ["folded_normal_mean", "folded_normal_snr", "SparseMeanFieldLinear", "SSVIClassifier"]

logger = logging.getLogger(__name__)


def folded_normal_mean(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``E|theta|`` for ``theta ~ N(mu, sigma^2)`` (elementwise; ``sigma > 0``)."""
    ratio = mu / sigma
    normal_cdf = 0.5 * torch.erfc(ratio / math.sqrt(2.0))  # Phi(-mu / sigma)
    return sigma * math.sqrt(2.0 / math.pi) * torch.exp(-0.5 * ratio**2) + mu * (1.0 - 2.0 * normal_cdf)


def folded_normal_snr(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio ``E|theta| / sqrt(Var|theta|)`` of ``|theta|``, ``theta ~ N(mu, sigma^2)``.

    ``Var|theta| = mu^2 + sigma^2 - (E|theta|)^2``. Shapes: ``mu``, ``sigma`` broadcast; same output shape.

    Examples
    --------
    >>> round(float(folded_normal_snr(torch.tensor(0.0), torch.tensor(1.0))), 4)  # half-normal: sqrt(2/(pi-2))
    1.3236
    """
    # With E|theta| = |mu| + delta, Var|theta| = sigma^2 - delta (2 |mu| + delta): the textbook
    # mu^2 + sigma^2 - (E|theta|)^2 cancels catastrophically once |mu| / sigma exceeds ~1/sqrt(eps)
    # (float32: SNR 1e4 came out as 9e18).
    abs_mu = mu.abs()
    ratio = abs_mu / sigma
    delta = sigma * math.sqrt(2.0 / math.pi) * torch.exp(-0.5 * ratio**2) - abs_mu * torch.erfc(ratio / math.sqrt(2.0))
    var = (sigma**2 - delta * (2.0 * abs_mu + delta)).clamp(min=torch.finfo(delta.dtype).tiny)
    return (abs_mu + delta) / var.sqrt()


def _inverse_softplus(x: torch.Tensor) -> torch.Tensor:
    return x + torch.log(-torch.expm1(-x))


class SparseMeanFieldLinear(nn.Module):
    """Linear layer with a mean-field Gaussian posterior on a fixed-size sparse weight subspace.

    Parameters
    ----------
    in_features, out_features : int
    density : float in (0, 1]
        Fraction of weights in the subspace; exactly ``n_active = round(density * in * out)``
        (at least 1) weights are active at every time.
    prior_std : float
        Standard deviation of the ``N(0, prior_std^2)`` prior on every active weight and bias.
    init_std : float
        Initial posterior standard deviation.
    generator : torch.Generator, optional
        Source of the initial mask and means.

    Notes
    -----
    Shapes: ``forward(x (N, in)) -> (N, out)``; one weight sample per call when ``sample=True``,
    the posterior mean otherwise. Buffers: ``mask`` (bool, ``(out, in)``).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        density: float = 0.1,
        prior_std: float = 1.0,
        init_std: float = 1e-3,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        in_features = check_int(in_features, "in_features", low=1)
        out_features = check_int(out_features, "out_features", low=1)
        density = check_float(density, "density", low=0.0, high=1.0, low_open=True)
        self.prior_std = check_float(prior_std, "prior_std", low=0.0, low_open=True)
        init_std = check_float(init_std, "init_std", low=0.0, low_open=True)
        n = in_features * out_features
        self.n_active = max(1, round(density * n))
        bound = 1.0 / math.sqrt(in_features * density)
        self.weight_mu = nn.Parameter((torch.rand(out_features, in_features, generator=generator) * 2 - 1) * bound)
        self.weight_rho = nn.Parameter(torch.full((out_features, in_features), float(_inverse_softplus(torch.tensor(init_std)))))
        self.bias_mu = nn.Parameter(torch.zeros(out_features))
        self.bias_rho = nn.Parameter(torch.full((out_features,), float(_inverse_softplus(torch.tensor(init_std)))))
        mask = torch.zeros(n, dtype=torch.bool)
        mask[torch.randperm(n, generator=generator)[: self.n_active]] = True
        self.register_buffer("mask", mask.view(out_features, in_features))
        self.dense_grad: torch.Tensor | None = None

    @property
    def weight_sigma(self) -> torch.Tensor:
        return F.softplus(self.weight_rho)

    def _store_grad(self, grad: torch.Tensor) -> None:
        self.dense_grad = grad.detach()

    def forward(self, x: torch.Tensor, sample: bool = True) -> torch.Tensor:
        mu, bias = self.weight_mu, self.bias_mu
        if sample:
            mu = mu + self.weight_sigma * torch.randn_like(mu)
            bias = bias + F.softplus(self.bias_rho) * torch.randn_like(bias)
        weight = mu * self.mask
        if weight.requires_grad:
            weight.register_hook(self._store_grad)  # dL/dW of the full weight, which the grow step ranks
        return F.linear(x, weight, bias)

    def kl(self) -> torch.Tensor:
        """``KL(q || prior)`` summed over the active weights and the biases (0-d tensor)."""

        def gauss_kl(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            p = self.prior_std
            return torch.log(p / sigma) + (sigma**2 + mu**2) / (2 * p**2) - 0.5

        weight_kl = gauss_kl(self.weight_mu, self.weight_sigma)[self.mask].sum()
        return weight_kl + gauss_kl(self.bias_mu, F.softplus(self.bias_rho)).sum()

    @torch.no_grad()
    def drop_and_grow(self, n_update: int) -> torch.Tensor:
        """Move ``n_update`` active weights: drop lowest folded-normal SNR, grow largest ``|dense grad|``.

        Returns the flat indices of the grown weights. Needs ``dense_grad`` from a backward pass.
        """
        n_update = check_int(n_update, "n_update", low=0, high=min(self.n_active, self.mask.numel() - self.n_active))
        if n_update == 0:
            return torch.empty(0, dtype=torch.long, device=self.mask.device)
        if self.dense_grad is None:
            raise RuntimeError("drop_and_grow needs a backward pass first (the dense gradient ranks the growth)")
        flat = self.mask.view(-1)
        snr = folded_normal_snr(self.weight_mu, self.weight_sigma).view(-1)
        drop = torch.topk(snr.masked_fill(~flat, float("inf")), n_update, largest=False).indices
        score = self.dense_grad.abs().view(-1).masked_fill(flat, float("-inf"))
        grow = torch.topk(score, n_update).indices
        mean_sigma = self.weight_sigma.view(-1)[flat].mean()
        flat[drop] = False
        flat[grow] = True
        self.weight_mu.view(-1)[grow] = 0.0
        self.weight_rho.view(-1)[grow] = _inverse_softplus(mean_sigma)
        return grow


class _BayesMLP(nn.Module):
    def __init__(self, sizes: Sequence[int], density: float, prior_std: float, init_std: float, generator: torch.Generator):
        super().__init__()
        self.layers = nn.ModuleList(
            SparseMeanFieldLinear(a, b, density, prior_std, init_std, generator) for a, b in zip(sizes[:-1], sizes[1:])
        )

    def forward(self, x: torch.Tensor, sample: bool = True) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x, sample)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x

    def kl(self) -> torch.Tensor:
        return sum(layer.kl() for layer in self.layers)


class SSVIClassifier(GraphrecEstimator):
    """Bayesian MLP classifier trained by sparse subspace variational inference (Li et al., ICLR 2024).

    Parameters
    ----------
    hidden : tuple of int
        Hidden widths (ReLU); every layer is a :class:`SparseMeanFieldLinear`.
    density : float in (0, 1]
        Fraction of active weights per layer (1.0 = dense mean-field VI).
    delta : int
        Optimiser steps between two drop-and-grow updates.
    alpha : float in [0, 1]
        Initial fraction of active weights moved per update (cosine-annealed to 0 at ``t_end``).
    t_end : float in (0, 1]
        Fraction of all steps after which the subspace stays fixed.
    prior_std, init_std : float
    kl_weight : float
        Multiplies ``KL / n_train`` in the loss (1.0 = the ELBO per sample).
    n_epochs, batch_size : int
    lr : float
        Adam learning rate.
    n_samples : int
        Posterior samples averaged by :meth:`predict_proba`.
    random_state, device, verbose

    Attributes
    ----------
    classes_ : ndarray (n_classes,)
    module_ : torch.nn.Module
        The Bayesian MLP (``module_.layers[i].mask`` holds each layer's subspace).
    active_history_ : list of list of int
        Number of active weights of every layer after every drop-and-grow update.
    history_ : list of dict
        Trainer history (negative ELBO per epoch).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 4)); y = (X[:, 0] > 0).astype(int)
    >>> clf = SSVIClassifier(hidden=(16,), density=0.5, n_epochs=20, random_state=0).fit(X, y)
    >>> float((clf.predict(X) == y).mean()) > 0.9
    True
    """

    def __init__(
        self,
        hidden: tuple[int, ...] = (100,),
        *,
        density: float = 0.1,
        delta: int = 100,
        alpha: float = 0.3,
        t_end: float = 0.75,
        prior_std: float = 1.0,
        init_std: float = 1e-3,
        kl_weight: float = 0.1,
        n_epochs: int = 100,
        batch_size: int = 128,
        lr: float = 1e-2,
        n_samples: int = 20,
        random_state: Any = None,
        device: Any = "cpu",
        verbose: bool | int = False,
    ):
        self.hidden = hidden
        self.density = density
        self.delta = delta
        self.alpha = alpha
        self.t_end = t_end
        self.prior_std = prior_std
        self.init_std = init_std
        self.kl_weight = kl_weight
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.n_samples = n_samples
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _check_X(self, X: Any, n_features: int | None = None) -> np.ndarray:
        X = check_array(X, "X", ndim=2)
        if n_features is not None and X.shape[1] != n_features:
            raise ValueError(f"X has {X.shape[1]} features, but the model was fitted with {n_features}")
        return X

    def fit(self, X: Any, y: Any) -> "SSVIClassifier":
        """Fit on features ``X`` ``(n, d)`` and class labels ``y`` ``(n,)`` (at least 2 classes)."""
        X = self._check_X(X)
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
        classes, y_index = np.unique(y, return_inverse=True)
        if classes.shape[0] < 2:
            raise ValueError(f"y must contain at least 2 classes, got {classes.tolist()}")
        if isinstance(self.hidden, (str, bytes)) or not isinstance(self.hidden, Sequence):
            raise TypeError(f"hidden must be a tuple of layer widths, got {self.hidden!r}")
        hidden = [check_int(h, "hidden[i]", low=1) for h in self.hidden]
        density = check_float(self.density, "density", low=0.0, high=1.0, low_open=True)
        delta = check_int(self.delta, "delta", low=1)
        alpha = check_float(self.alpha, "alpha", low=0.0, high=1.0)
        t_end = check_float(self.t_end, "t_end", low=0.0, high=1.0, low_open=True)
        kl_weight = check_float(self.kl_weight, "kl_weight", low=0.0)
        epochs = check_int(self.n_epochs, "n_epochs", low=1)
        batch = check_int(self.batch_size, "batch_size", low=1)
        lr = check_float(self.lr, "lr", low=0.0, low_open=True)
        check_int(self.n_samples, "n_samples", low=1)
        device = check_device(self.device)
        rng = check_random_state(self.random_state)
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
        sizes = [X.shape[1], *hidden, classes.shape[0]]
        module = _BayesMLP(sizes, density, self.prior_std, self.init_std, gen).to(device)
        optimizer = torch.optim.Adam(module.parameters(), lr=lr)
        xt = torch.as_tensor(X, dtype=torch.float32, device=device)
        yt = torch.as_tensor(y_index, dtype=torch.long, device=device)
        n = xt.shape[0]
        total_steps = epochs * -(-n // batch)
        stop = t_end * total_steps
        step = [0]
        self.active_history_: list[list[int]] = []

        def update_subspace() -> None:
            fraction = alpha / 2 * (1 + math.cos(math.pi * step[0] / stop))
            for layer in module.layers:
                n_update = min(round(fraction * layer.n_active), layer.mask.numel() - layer.n_active)
                grown = layer.drop_and_grow(n_update)
                for param in (layer.weight_mu, layer.weight_rho):  # fresh optimiser moments for new weights
                    for moment in optimizer.state.get(param, {}).values():
                        if isinstance(moment, torch.Tensor) and moment.shape == param.shape:
                            moment.view(-1)[grown] = 0.0
            self.active_history_.append([int(layer.mask.sum()) for layer in module.layers])

        def loss_fn(model: nn.Module, batch_xy: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            if step[0] > 0 and step[0] % delta == 0 and step[0] < stop and density < 1.0:
                update_subspace()  # uses the dense gradients of the previous step
            step[0] += 1
            xb, yb = batch_xy
            return F.cross_entropy(model(xb), yb) + kl_weight * model.kl() / n

        trainer = Trainer(module, optimizer, loss_fn, max_epochs=epochs, device=device, random_state=rng, verbose=self.verbose)
        result = trainer.fit(lambda epoch, g: tensor_batches(xt, yt, batch_size=batch, generator=g))
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        self.module_ = module.eval()
        self.history_ = result.history
        self._seed = int(rng.integers(0, 2**63 - 1))
        logger.info("SSVI: %d drop-and-grow updates, active weights per layer %s, final loss %.4f",
                    len(self.active_history_), [layer.n_active for layer in module.layers], result.history[-1]["train_loss"])
        return self

    @torch.no_grad()
    def predict_proba(self, X: Any) -> np.ndarray:
        """Posterior predictive ``(n, n_classes)``: softmax averaged over ``n_samples`` weight samples."""
        self._check_is_fitted()
        X = self._check_X(X, self.n_features_in_)
        device = next(self.module_.parameters()).device
        xt = torch.as_tensor(X, dtype=torch.float32, device=device)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(self._seed)
            probs = sum(F.softmax(self.module_(xt), dim=1) for _ in range(self.n_samples)) / self.n_samples
        return probs.cpu().double().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Class of largest posterior predictive probability, ``(n,)``."""
        return self.classes_[self.predict_proba(X).argmax(1)]


def _blobs(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, 90)
    return rng.normal(size=(90, 5)) + 2.0 * np.eye(3, 5)[y], y


register_estimator(
    "SSVIClassifier",
    EstimatorSpec(
        factory=lambda: SSVIClassifier(hidden=(8,), density=0.5, delta=3, n_epochs=3, batch_size=32, n_samples=3, random_state=0),
        make_input=_blobs,
        output=lambda est, args: est.predict_proba(args[0]),
        bad_inputs={
            "nan in X": lambda: (np.full((10, 3), np.nan), np.arange(10) % 2),
            "one class": lambda: (np.ones((10, 3)), np.zeros(10)),
            "y length": lambda: (np.ones((10, 3)), np.arange(9) % 2),
            "X 1-d": lambda: (np.ones(10), np.arange(10) % 2),
        },
        fitted_method="predict_proba",
    ),
)
