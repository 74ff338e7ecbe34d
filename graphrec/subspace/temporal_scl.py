"""Temporal supervised contrastive learning (Temporal-SCL) for labelled time series.

An encoder ``f`` maps each time step ``x_t`` (D,) of a series to a unit-sphere embedding
``z_t = f(x_t) / ||f(x_t)||`` (``embedding_dim``). Training combines three terms [recon]:

1. a supervised contrastive term (:func:`graphrec.core.supcon_loss`) whose second view of an
   anchor is not an augmentation but its *nearest neighbour in raw feature space among time steps
   with the same label* (the series outcome). With ``positives="neighbour"`` the anchor's only
   positive is that neighbour (labels enter through the neighbour search), which keeps
   raw-feature-distant same-label steps apart; ``positives="label"`` is plain SupCon, where every
   step with the same outcome is a positive (the ablation: it collapses each outcome class);
2. a temporal regulariser ``lambda_temporal ||z_{t+1} - T(z_t)||^2`` with a linear temporal
   network ``T``, so that consecutive steps stay close on the sphere;
3. a linear predictor head with cross-entropy against the label (per-step class probabilities).

The paper trains the three stages one after the other; we train one weighted sum of the three
terms ([recon]: the weights and the joint schedule are ours).

Reference: S. Noroozizadeh, J. C. Weiss, G. H. Chen, "Temporal supervised contrastive learning for
modeling patient risk progression", ML4H 2023, PMLR 225 (arXiv 2312.05933).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.core import supcon_loss
from graphrec.train import Trainer, tensor_batches
from graphrec.utils.validation import (
    check_array,
    check_choice,
    check_device,
    check_float,
    check_int,
    check_random_state,
)

__all__ = ["TemporalSCL", "TemporalSCLNet", "make_progression_sequences", "same_label_neighbours"]


def make_progression_sequences(
    n_series: int = 200, length: int = 20, n_states: int = 3, n_features: int = 10, *,
    noise: float = 0.5, random_state: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Series that progress along a chain of latent states; the outcome is the terminal state.

    Each series starts in state 0 and advances one state at a time with a per-series probability
    drawn from ``U(0, 0.3)`` per step (it never goes back). Emissions are the state's random mean
    (norm about 3) plus a slowly drifting per-series offset (a random walk of step 0.05) plus
    Gaussian noise of scale ``noise``.

    Returns
    -------
    X : ndarray (n_series, length, n_features), float64
    states : ndarray (n_series, length), int64, the latent state of every step
    outcomes : ndarray (n_series,), int64, the final state of each series
    """
    n_series = check_int(n_series, "n_series", low=1)
    length = check_int(length, "length", low=2)
    n_states = check_int(n_states, "n_states", low=2)
    n_features = check_int(n_features, "n_features", low=1)
    noise = check_float(noise, "noise", low=0.0)
    rng = check_random_state(random_state)
    means = 3.0 * rng.standard_normal((n_states, n_features)) / np.sqrt(n_features) * np.sqrt(3.0)
    rate = rng.uniform(0.0, 0.3, n_series)
    steps = rng.random((n_series, length)) < rate[:, None]
    steps[:, 0] = False
    states = np.minimum(np.cumsum(steps, axis=1), n_states - 1)
    drift = np.cumsum(0.05 * rng.standard_normal((n_series, length, n_features)), axis=1)
    X = means[states] + drift + noise * rng.standard_normal((n_series, length, n_features))
    return X, states.astype(np.int64), states[:, -1].astype(np.int64)


def same_label_neighbours(X: Any, labels: Any) -> np.ndarray:
    """Index of each row's nearest other row (Euclidean) among rows with the same label, ``(n,)``.

    A row whose label occurs once is its own neighbour.
    """
    from sklearn.neighbors import NearestNeighbors

    X = check_array(X, "X", ndim=2)
    y = check_array(labels, "labels", ndim=1, dtype=np.int64)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"labels has length {y.shape[0]}, expected {X.shape[0]}")
    out = np.arange(X.shape[0])
    for value in np.unique(y):
        idx = np.flatnonzero(y == value)
        if idx.size < 2:
            continue
        _, nn_idx = NearestNeighbors(n_neighbors=2).fit(X[idx]).kneighbors(X[idx])
        out[idx] = idx[nn_idx[:, 1]]
    return out


class TemporalSCLNet(nn.Module):
    """Encoder (MLP to the unit sphere), linear temporal network ``T`` and linear predictor head."""

    def __init__(self, n_features: int, hidden_dim: int, embedding_dim: int, n_classes: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(n_features, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim),
                                     nn.SiLU(), nn.Linear(hidden_dim, embedding_dim))
        self.temporal = nn.Linear(embedding_dim, embedding_dim)
        self.head = nn.Linear(embedding_dim, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(n, D)`` -> unit-norm ``z`` ``(n, embedding_dim)``."""
        return F.normalize(self.encoder(x), dim=1)


def _check_series(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    X = check_array(X, "X", ndim=3)
    if X.shape[1] < 2 or X.shape[2] < 1:
        raise ValueError(f"X must be (n_series, length >= 2, n_features >= 1), got shape {X.shape}")
    y = check_array(y, "y", ndim=1, dtype=np.int64, min_rows=0)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y has length {y.shape[0]}, expected one label per series ({X.shape[0]})")
    if y.min() < 0:
        raise ValueError(f"y must hold non-negative class labels, got min {y.min()}")
    return X, y


class TemporalSCL(GraphrecEstimator):
    """Temporal supervised contrastive embedding of labelled series (see module docstring).

    Parameters
    ----------
    embedding_dim : int, default 8
    hidden_dim : int, default 64
    positives : {"neighbour", "label"}, default "neighbour"
        The anchor's positive set: its same-label raw-feature nearest neighbour, or every step
        with the same label (plain SupCon).
    lambda_temporal : float, default 1.0
        Weight of ``||z_{t+1} - T(z_t)||^2``.
    lambda_ce : float, default 1.0
        Weight of the predictor head's cross-entropy.
    temperature : float, default 0.1
    n_epochs : int, default 30
    batch_size : int, default 256
    lr : float, default 2e-3
    random_state, device, verbose
        As everywhere in graphrec.

    Attributes
    ----------
    net_ : TemporalSCLNet
        The trained networks (on CPU).
    n_classes_ : int
    history_ : list of dict
    """

    def __init__(
        self, *, embedding_dim: int = 8, hidden_dim: int = 64, positives: str = "neighbour",
        lambda_temporal: float = 1.0, lambda_ce: float = 1.0, temperature: float = 0.1, n_epochs: int = 30,
        batch_size: int = 256, lr: float = 2e-3, random_state: Any = None, device: str = "cpu", verbose: bool = False,
    ) -> None:
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.positives = positives
        self.lambda_temporal = lambda_temporal
        self.lambda_ce = lambda_ce
        self.temperature = temperature
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _check_params(self) -> None:
        check_int(self.embedding_dim, "embedding_dim", low=1)
        check_int(self.hidden_dim, "hidden_dim", low=1)
        check_choice(self.positives, "positives", ("neighbour", "label"))
        check_float(self.lambda_temporal, "lambda_temporal", low=0.0)
        check_float(self.lambda_ce, "lambda_ce", low=0.0)
        check_float(self.temperature, "temperature", low=0.0, low_open=True)
        check_int(self.n_epochs, "n_epochs", low=1)
        check_int(self.batch_size, "batch_size", low=2)
        check_float(self.lr, "lr", low=0.0, low_open=True)

    def fit(self, X: Any, y: Any) -> "TemporalSCL":
        """Train on series ``X`` ``(n_series, length, D)`` with one label per series ``y`` ``(n_series,)``."""
        X, y = _check_series(X, y)
        self._check_params()
        device = check_device(self.device)
        seed = int(check_random_state(self.random_state).integers(0, 2**31 - 1))
        n, length, d = X.shape
        flat = X.reshape(n * length, d)
        step_labels = np.repeat(y, length)
        neighbour = same_label_neighbours(flat, step_labels)
        nxt = np.arange(n * length) + 1
        has_next = (np.arange(n * length) % length) != length - 1
        nxt[~has_next] -= 1  # a series' last step points at itself and is masked out
        self.n_classes_ = int(y.max()) + 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = TemporalSCLNet(d, int(self.hidden_dim), int(self.embedding_dim), self.n_classes_)
        as_t = lambda a, dt=torch.float32: torch.as_tensor(a, dtype=dt, device=device)  # noqa: E731
        data = (as_t(flat), as_t(flat[neighbour]), as_t(flat[nxt]), as_t(has_next, torch.bool),
                as_t(step_labels, torch.long))
        tau, lam_t, lam_ce = float(self.temperature), float(self.lambda_temporal), float(self.lambda_ce)
        by_neighbour = self.positives == "neighbour"

        def loss_fn(model: TemporalSCLNet, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            x, x_nn, x_next, mask, yb = batch
            z = model.embed(x)
            if by_neighbour:
                pair = torch.arange(x.shape[0], device=x.device)
                loss = supcon_loss(torch.cat([z, model.embed(x_nn)]), torch.cat([pair, pair]), tau, normalize=False)
            else:
                loss = supcon_loss(z, yb, tau, normalize=False)
            if lam_t > 0 and bool(mask.any()):
                drift = model.embed(x_next[mask]) - model.temporal(z[mask])
                loss = loss + lam_t * (drift**2).sum(1).mean()
            if lam_ce > 0:
                loss = loss + lam_ce * F.cross_entropy(model.head(z), yb)
            return loss

        result = Trainer(net, torch.optim.Adam(net.parameters(), lr=float(self.lr)), loss_fn,
                         max_epochs=int(self.n_epochs), device=device, random_state=seed, verbose=self.verbose).fit(
            lambda epoch, g: tensor_batches(*data, batch_size=int(self.batch_size), generator=g,
                                            drop_last=data[0].shape[0] > int(self.batch_size)))
        self.history_ = result.history
        self.net_ = net.cpu().eval()
        self.n_features_in_ = d
        return self

    def _steps(self, X: Any) -> tuple[torch.Tensor, tuple[int, ...]]:
        self._check_is_fitted()
        X = check_array(X, "X")
        if X.ndim not in (2, 3) or X.shape[-1] != self.n_features_in_:
            raise ValueError(f"X must be (n, {self.n_features_in_}) or (n_series, length, {self.n_features_in_}), "
                             f"got shape {X.shape}")
        return torch.as_tensor(X.reshape(-1, X.shape[-1]), dtype=torch.float32), X.shape[:-1]

    def transform(self, X: Any) -> np.ndarray:
        """Unit-norm embeddings of every step: ``(n, D) -> (n, e)`` or ``(s, L, D) -> (s, L, e)``."""
        x, lead = self._steps(X)
        with torch.no_grad():
            return self.net_.embed(x).double().numpy().reshape(*lead, -1)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Per-step class probabilities from the predictor head, shape ``(*lead, n_classes_)``."""
        x, lead = self._steps(X)
        with torch.no_grad():
            return torch.softmax(self.net_.head(self.net_.embed(x)), 1).double().numpy().reshape(*lead, -1)


register_estimator(
    "TemporalSCL",
    EstimatorSpec(
        factory=lambda: TemporalSCL(hidden_dim=8, n_epochs=2, batch_size=32, random_state=0),
        make_input=lambda seed: make_progression_sequences(10, 5, 3, 4, random_state=seed)[0::2],
        output=lambda est, args: est.transform(args[0]),
        bad_inputs={
            "nan": lambda: (np.full((4, 3, 2), np.nan), np.zeros(4, dtype=int)),
            "two_d": lambda: (np.zeros((4, 3)), np.zeros(4, dtype=int)),
            "label_length": lambda: (np.zeros((4, 3, 2)), np.zeros(3, dtype=int)),
            "negative_label": lambda: (np.zeros((4, 3, 2)), -np.ones(4, dtype=int)),
        },
        fitted_method="transform",
    ),
)
