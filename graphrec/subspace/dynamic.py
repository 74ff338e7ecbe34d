"""Attention-based dynamic subspace learners (DSL) for deep metric learning on small images.

A CNN feature map ``F`` ``(C, H, W)`` is reweighted by a spatial attention map
``A = sigmoid(conv3x3(ReLU(conv3x3(ReLU(conv3x3(F))))))`` (channels ``C -> C/8 -> C/32 -> 1``,
:class:`SpatialAttentionGate`), pooled and embedded, ``e = W pool(F * A)``. The embedding neurons
are split into *learners*, disjoint index sets (coordinate subspaces); learner ``k`` is trained with
the margin loss on the samples of data cluster ``k`` (K-means on the embeddings, matched to the
previous clusters by the Hungarian algorithm), on its own L2-normalised slice.

Dynamic growth starts from one learner. When the monitored NMI has not improved for ``patience``
epochs (:class:`PlateauGrowth`), the newest learner's neurons are scored by their Taylor importance
``s_j = |mean_batch(a_j dL/da_j)|`` (L2-normalised, min-max scaled to ``[0, 1]``,
:func:`taylor_scores`); those above ``threshold`` stay and the rest are re-initialised and form a
new learner (:func:`split_newest`), so ``K`` grows without being given.

Reference: S. Adiga Vasudeva, J. Dolz, H. Lombaert, "Attention-based Dynamic Subspace Learners for
Medical Image Analysis", IEEE JBHI 2022 (arXiv 2206.09068; github.com/adigasu/Dynamic_subspace_learners),
built on A. Sanakoyeu et al., "Divide and Conquer the Embedding Space for Metric Learning", CVPR 2019.
Simplification: the margin loss uses every positive and negative pair of the batch instead of
distance-weighted sampling, and NMI is monitored on the training set.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from sklearn.base import TransformerMixin
from sklearn.cluster import KMeans
from torch import nn

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.metrics.clustering import nmi
from graphrec.train import Trainer, tensor_batches
from graphrec.utils.validation import (
    check_array,
    check_device,
    check_float,
    check_int,
    check_random_state,
    torch_generator,
)

__all__ = [
    "DynamicSubspaceLearners",
    "PlateauGrowth",
    "SpatialAttentionGate",
    "margin_loss",
    "split_newest",
    "taylor_scores",
]

logger = logging.getLogger(__name__)


class SpatialAttentionGate(nn.Module):
    """Spatial attention ``A`` ``(n, 1, H, W)`` in ``[0, 1]``; ``forward(F)`` returns ``(F * A, A)``.

    >>> gate = SpatialAttentionGate(32)
    >>> out, att = gate(torch.randn(2, 32, 5, 5))
    >>> tuple(out.shape), tuple(att.shape)
    ((2, 32, 5, 5), (2, 1, 5, 5))
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        c = check_int(channels, "channels", low=1)
        c8, c32 = max(c // 8, 1), max(c // 32, 1)
        self.net = nn.Sequential(
            nn.Conv2d(c, c8, 3, padding=1), nn.ReLU(), nn.Conv2d(c8, c32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c32, 1, 3, padding=1),
        )

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        att = torch.sigmoid(self.net(feat))
        return feat * att, att


def margin_loss(emb: torch.Tensor, labels: torch.Tensor, beta: torch.Tensor, margin: float = 0.2) -> torch.Tensor:
    """Margin loss ``mean relu(margin + y_ij (D_ij - beta))`` over active pairs ``i < j``.

    ``emb`` ``(n, d)`` (normalised by the caller), ``labels`` ``(n,)``; ``y_ij = +1`` for same
    labels, ``-1`` otherwise; the mean is over pairs with a positive loss (0 if none).
    """
    n = emb.shape[0]
    if n < 2:
        return emb.sum() * 0.0
    dist = torch.cdist(emb, emb).clamp_min(1e-8)
    sign = (labels[:, None] == labels[None, :]).to(emb.dtype) * 2 - 1
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool, device=emb.device), diagonal=1)
    loss = F.relu(margin + sign * (dist - beta))[upper]
    active = loss > 0
    return loss[active].mean() if bool(active.any()) else loss.sum() * 0.0


def taylor_scores(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Taylor importance of neurons: ``|mean_batch(a * dL/da)|``, L2-normalised, min-max to ``[0, 1]``.

    ``activations`` and ``grads`` are ``(n, m)``; returns ``(m,)``.

    >>> taylor_scores(torch.tensor([[1.0, 2.0, 0.0]]), torch.tensor([[1.0, 1.0, 1.0]])).tolist()
    [0.5, 1.0, 0.0]
    """
    if activations.shape != grads.shape or activations.ndim != 2:
        raise ValueError(f"activations and grads must be (n, m) of equal shape, got {tuple(activations.shape)} "
                         f"and {tuple(grads.shape)}")
    s = (activations * grads).mean(0).abs()
    s = s / s.norm().clamp_min(1e-12)
    span = s.max() - s.min()
    return (s - s.min()) / span if float(span) > 0 else torch.zeros_like(s)


def split_newest(learners: list[np.ndarray], scores: Any, threshold: float = 0.5, *, min_keep: int = 5,
                 min_size: int = 10) -> list[np.ndarray] | None:
    """Split the newest learner: neurons with ``scores > threshold`` stay, the others form a new learner.

    ``learners`` is a list of disjoint index arrays; ``scores`` the ``(len(learners[-1]),)`` Taylor
    scores of the newest one. Returns the new list, or ``None`` when the split is not allowed (fewer
    than ``min_keep`` neurons stay, none leave, or the learner has ``<= min_size`` neurons).

    >>> [a.tolist() for a in split_newest([np.arange(4)], [0.9, 0.1, 0.8, 0.2], min_keep=1, min_size=2)]
    [[0, 2], [1, 3]]
    """
    if not learners:
        raise ValueError("learners must be a non-empty list of index arrays")
    newest = np.asarray(learners[-1])
    scores = np.asarray(scores, dtype=float)
    if scores.shape != newest.shape:
        raise ValueError(f"scores must have shape {newest.shape} (one per neuron of the newest learner), got {scores.shape}")
    threshold = check_float(threshold, "threshold", low=0.0, high=1.0)
    keep = scores > threshold
    if newest.size <= min_size or keep.sum() < min_keep or keep.all():
        return None
    return [np.asarray(a) for a in learners[:-1]] + [newest[keep], newest[~keep]]


class PlateauGrowth:
    """Growth trigger: fires when ``score`` has not improved for ``patience`` epochs (and ``epoch < max_epoch``).

    After firing, the patience window restarts from the firing epoch.

    >>> g = PlateauGrowth(patience=2)
    >>> [g.update(e, s) for e, s in enumerate([0.1, 0.2, 0.2, 0.2, 0.3])]
    [False, False, False, True, False]
    """

    def __init__(self, patience: int = 10, max_epoch: int | None = None) -> None:
        self.patience = check_int(patience, "patience", low=1)
        self.max_epoch = max_epoch
        self.best = -np.inf
        self.best_epoch = 0

    def update(self, epoch: int, score: float) -> bool:
        if score > self.best:
            self.best, self.best_epoch = score, epoch
            return False
        if epoch >= self.best_epoch + self.patience and (self.max_epoch is None or epoch < self.max_epoch):
            self.best_epoch = epoch
            return True
        return False


class _DSLNet(nn.Module):
    def __init__(self, in_channels: int, width: int, dim: int) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.attention = SpatialAttentionGate(width)
        self.embed = nn.Linear(width, dim)
        self.beta = nn.Parameter(torch.tensor(1.2))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat, att = self.attention(self.features(x))
        return self.embed(feat.mean((2, 3))), att


class DynamicSubspaceLearners(TransformerMixin, GraphrecEstimator):
    """Metric learning with a spatial attention gate and a growing set of embedding learners (DSL).

    Parameters
    ----------
    dim : int, default 64
        Embedding dim (split among the learners).
    width : int, default 32
        Channels of the 2-layer CNN backbone.
    patience : int, default 5
        Growth patience in epochs (paper: 10).
    threshold : float, default 0.5
        Taylor-score threshold of :func:`split_newest`.
    margin : float, default 0.2
    recluster_every : int, default 2
    n_epochs, batch_size, lr : training (Adam)
    random_state, device, verbose

    Attributes
    ----------
    learners_ : list of ndarray
        Disjoint neuron index sets covering ``range(dim)``.
    history_ : list of dict
        Per epoch: ``nmi`` and number of learners ``K``.
    model_ : nn.Module
    """

    def __init__(self, dim: int = 64, width: int = 32, *, patience: int = 5, threshold: float = 0.5,
                 margin: float = 0.2, recluster_every: int = 2, n_epochs: int = 30, batch_size: int = 64,
                 lr: float = 3e-3, random_state: Any = None, device: str = "cpu", verbose: bool = False) -> None:
        self.dim = dim
        self.width = width
        self.patience = patience
        self.threshold = threshold
        self.margin = margin
        self.recluster_every = recluster_every
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    @staticmethod
    def _images(X: Any) -> np.ndarray:
        X = check_array(X, "X")
        if X.ndim == 3:
            X = X[:, None]
        if X.ndim != 4:
            raise ValueError(f"X must be images (n, H, W) or (n, C, H, W), got shape {X.shape}")
        return X

    def fit(self, X: Any, y: Any) -> "DynamicSubspaceLearners":
        """Train on images ``X`` ``(n, H, W)`` or ``(n, C, H, W)`` with class labels ``y`` ``(n,)``."""
        X = self._images(X)
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
        dim = check_int(self.dim, "dim", low=2)
        width = check_int(self.width, "width", low=1)
        growth = PlateauGrowth(self.patience)
        check_float(self.threshold, "threshold", low=0.0, high=1.0)
        margin = check_float(self.margin, "margin", low=0.0)
        every = check_int(self.recluster_every, "recluster_every", low=1)
        n_epochs = check_int(self.n_epochs, "n_epochs", low=1)
        check_int(self.batch_size, "batch_size", low=2)
        check_float(self.lr, "lr", low=0.0, low_open=True)
        classes, codes = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"y must hold at least 2 classes, got {classes.size}")
        device = check_device(self.device)
        rng = check_random_state(self.random_state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(0, 2**31 - 1)))
            model = _DSLNet(X.shape[1], width, dim).to(device)
        x_t = torch.as_tensor(X, dtype=torch.float32, device=device)
        y_t = torch.as_tensor(codes, dtype=torch.long, device=device)
        clusters = torch.zeros_like(y_t)
        learners = [np.arange(dim)]
        slices = [torch.as_tensor(learners[0], device=device)]
        taylor = torch.zeros(dim, device=device)
        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
        state: dict[str, torch.Tensor] = {}
        reset_gen = torch_generator(rng)

        def batches(epoch: int, g: torch.Generator):
            for batch in tensor_batches(x_t, y_t, clusters, batch_size=int(self.batch_size), generator=g):
                yield batch
                emb = state.pop("emb", None)
                if emb is not None and emb.grad is not None:  # a * dL/da, summed over the epoch (Taylor scores)
                    taylor.add_((emb.detach() * emb.grad).sum(0))

        def loss_fn(m: _DSLNet, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            xb, yb, cb = batch
            emb, _ = m(xb)
            emb.retain_grad()
            loss = emb.sum() * 0.0
            for k, idx in enumerate(slices):
                rows = cb == k
                if int(rows.sum()) >= 2:
                    loss = loss + margin_loss(F.normalize(emb[rows][:, idx], dim=1), yb[rows], m.beta, margin)
            state["emb"] = emb
            return loss

        self.history_ = []
        for epoch in range(n_epochs):
            trainer = Trainer(model, optimizer, loss_fn, max_epochs=1, device=device,
                              random_state=int(rng.integers(0, 2**31 - 1)), verbose=False)
            taylor.zero_()
            trainer.fit(batches)
            emb = self._embed_tensor(model, x_t)
            score = nmi(codes, KMeans(classes.size, n_init=3, random_state=0).fit_predict(emb))
            self.history_.append({"epoch": epoch, "nmi": score, "K": len(learners)})
            logger.info("DSL epoch %d: NMI %.4f, K=%d", epoch, score, len(learners))
            if growth.update(epoch, score):
                split = split_newest(learners, self._newest_scores(taylor, slices[-1]), self.threshold)
                if split is not None:
                    learners = split
                    with torch.no_grad():  # Xavier-reset the neurons of the new learner
                        rows = torch.as_tensor(learners[-1], device=device)
                        w = nn.init.xavier_uniform_(torch.empty(rows.numel(), width), generator=reset_gen)
                        model.embed.weight[rows] = w.to(device)
                        model.embed.bias[rows] = 0.0
                    slices = [torch.as_tensor(a, device=device) for a in learners]
                    logger.info("DSL epoch %d: split -> K=%d", epoch, len(learners))
            if len(learners) > 1 and (epoch % every == every - 1 or int(clusters.max()) == 0):
                clusters = self._recluster(emb, clusters, len(learners), device)
        self.learners_ = learners
        self.model_ = model.eval()
        self.n_features_in_ = tuple(X.shape[1:])
        return self

    @staticmethod
    def _newest_scores(taylor: torch.Tensor, idx: torch.Tensor) -> np.ndarray:
        s = taylor[idx]
        return taylor_scores(s[None], torch.ones_like(s)[None]).cpu().numpy()

    @staticmethod
    def _recluster(emb: np.ndarray, previous: torch.Tensor, k: int, device: torch.device) -> torch.Tensor:
        new = KMeans(k, n_init=3, random_state=0).fit_predict(emb)
        prev = previous.cpu().numpy()
        overlap = np.zeros((k, k))
        np.add.at(overlap, (new, np.minimum(prev, k - 1)), 1)
        rows, cols = linear_sum_assignment(-overlap)
        mapping = np.empty(k, dtype=np.int64)
        mapping[rows] = cols
        return torch.as_tensor(mapping[new], device=device)

    @staticmethod
    def _embed_tensor(model: _DSLNet, x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return F.normalize(model(x)[0], dim=1).double().cpu().numpy()

    def _check_input(self, X: Any) -> torch.Tensor:
        self._check_is_fitted()
        X = self._images(X)
        if tuple(X.shape[1:]) != self.n_features_in_:
            raise ValueError(f"X has image shape {X.shape[1:]}, the model was fitted on {self.n_features_in_}")
        p = next(self.model_.parameters())
        return torch.as_tensor(X, dtype=p.dtype, device=p.device)

    def transform(self, X: Any) -> np.ndarray:
        """Concatenated embedding ``(n, dim)`` with every learner's slice L2-normalised."""
        x = self._check_input(X)
        with torch.no_grad():
            emb = self.model_(x)[0]
            out = torch.empty_like(emb)
            for idx in self.learners_:
                idx = torch.as_tensor(idx, device=emb.device)
                out[:, idx] = F.normalize(emb[:, idx], dim=1)
        return out.double().cpu().numpy()

    def attention(self, X: Any) -> np.ndarray:
        """Spatial attention maps ``(n, H, W)`` in ``[0, 1]``."""
        x = self._check_input(X)
        with torch.no_grad():
            return self.model_(x)[1][:, 0].double().cpu().numpy()


def _images(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(2), 8)
    X = rng.standard_normal((16, 4, 4))
    X[:, 0, 0] += 3 * y
    return X, y


register_estimator(
    "DynamicSubspaceLearners",
    EstimatorSpec(
        factory=lambda: DynamicSubspaceLearners(dim=4, width=4, n_epochs=2, batch_size=8, random_state=0),
        make_input=_images,
        output=lambda est, args: est.transform(args[0]),
        bad_inputs={
            "nan": lambda: (np.full((4, 3, 3), np.nan), np.arange(4) % 2),
            "flat": lambda: (np.ones((4, 9)), np.arange(4) % 2),
            "y_length": lambda: (np.ones((4, 3, 3)), np.arange(3) % 2),
        },
        fitted_method="transform",
    ),
)
