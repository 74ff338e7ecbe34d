"""HypCD: hyperbolic generalised category discovery.

Generalised category discovery (GCD): a data set holds labelled samples of "old" classes and
unlabelled samples of old and new classes; the task is to cluster the unlabelled ones into all
``K`` categories. HypCD embeds an encoder's output ``z`` in the Poincaré ball of curvature ``-c``,
``x = exp_0(clip_r(z))`` (:func:`graphrec.core.clip_norm`, :func:`graphrec.core.expmap0`), and trains it
with the GCD objective ``(1 - lam) L_self + lam L_sup`` (self-supervised NT-Xent over two views of
every sample plus SupCon over the labelled samples) on the hybrid similarity::

    s(x_i, x_j) = -alpha_t * d_c(x_i, x_j) + (1 - alpha_t) * cos(x_i, x_j)          [recon]

with ``d_c`` the geodesic distance (:func:`graphrec.core.poincare_distance`) and ``alpha_t`` ramped
linearly from 0 to ``alpha_max`` over training. Categories are then found by semi-supervised
k-means (:func:`ss_kmeans`) on the tangent-space embedding ``log_0(x)``, the labelled samples
keeping their classes. ``geometry="euclidean"`` is the same pipeline with cosine similarity on
the unit sphere (the GCD baseline).

Reference: Y. Liu, Z. He, K. Han, "Hyperbolic Category Discovery", CVPR 2025 (arXiv 2504.06120).
The hybrid distance/angle similarity, the ramp and the clipping radius follow the notes' reading
of summary pages ([recon]); the encoder here is an MLP on tabular features (the paper: DINO ViTs).
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from sklearn.base import ClusterMixin
from torch import nn

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.core import clip_norm, expmap0, logmap0, poincare_distance
from graphrec.train import Trainer, tensor_batches
from graphrec.utils.validation import (
    check_array,
    check_choice,
    check_device,
    check_float,
    check_int,
    check_labels,
    check_random_state,
)

__all__ = [
    "HyperbolicCategoryDiscovery",
    "gcd_accuracy",
    "hybrid_similarity",
    "make_hierarchical_blobs",
    "similarity_supcon",
    "ss_kmeans",
]

logger = logging.getLogger(__name__)


def hybrid_similarity(x: torch.Tensor, c: float, alpha: float) -> torch.Tensor:
    """Pairwise ``-alpha * d_c(x_i, x_j) + (1 - alpha) * cos(x_i, x_j)`` of ball points ``x`` ``(n, d)`` -> ``(n, n)``."""
    alpha = check_float(alpha, "alpha", low=0.0, high=1.0)
    cos = F.normalize(x, dim=1) @ F.normalize(x, dim=1).T
    if alpha == 0.0:
        return cos
    return -alpha * poincare_distance(x[:, None, :], x[None, :, :], c) + (1 - alpha) * cos


def similarity_supcon(sim: torch.Tensor, labels: torch.Tensor, tau: float) -> torch.Tensor:
    """SupCon ("out" variant) from a precomputed similarity matrix ``sim`` ``(n, n)``.

    Anchor ``i``'s positives are the other rows with its label, the denominator runs over all
    ``a != i``; the mean over anchors with a positive is returned. With ``sim`` = cosine it equals
    :func:`graphrec.core.supcon_loss`.
    """
    tau = check_float(tau, "tau", low=0.0, low_open=True)
    n = sim.shape[0]
    if sim.shape != (n, n) or labels.shape != (n,):
        raise ValueError(f"sim must be (n, n) and labels (n,), got {tuple(sim.shape)} and {tuple(labels.shape)}")
    eye = torch.eye(n, dtype=torch.bool, device=sim.device)
    logits = (sim / tau).masked_fill(eye, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = (labels[:, None] == labels[None, :]) & ~eye
    has = pos.any(1)
    if not bool(has.any()):
        raise ValueError("no anchor has a positive")
    return -(log_prob.masked_fill(~pos, 0.0).sum(1)[has] / pos.sum(1)[has]).mean()


def ss_kmeans(X: Any, y_partial: Any, n_clusters: int, *, n_init: int = 5, max_iter: int = 100,
              random_state: Any = None) -> np.ndarray:
    """Semi-supervised k-means: labelled rows (``y_partial >= 0``) keep their class as cluster.

    Parameters
    ----------
    X : array (n, d)
    y_partial : int array (n,)
        Class in ``[0, n_clusters)`` of labelled rows, ``-1`` for unlabelled rows.
    n_clusters : int
        ``K``, at least the number of labelled classes.
    n_init, max_iter, random_state
        Restarts (the lowest inertia is kept), iterations per restart, seed.

    Returns
    -------
    labels : int array (n,)
        Known classes ``0..`` of the labelled rows; clusters of the unlabelled rows.
        Centroids of labelled classes start at their means; the others by k-means++ on the
        unlabelled rows.
    """
    X = check_array(X, "X", ndim=2)
    y = check_labels(y_partial, X.shape[0], "y_partial")
    k = check_int(n_clusters, "n_clusters", low=1)
    check_int(max_iter, "max_iter", low=1)
    known = np.unique(y[y >= 0])
    if known.size and known.max() >= k:
        raise ValueError(f"y_partial has class {known.max()} but n_clusters={k}")
    rng = check_random_state(random_state)
    lab = y >= 0
    best: tuple[float, np.ndarray] | None = None
    for _ in range(check_int(n_init, "n_init", low=1)):
        centers = np.zeros((k, X.shape[1]))
        for c in known:
            centers[c] = X[y == c].mean(0)
        todo = [c for c in range(k) if c not in set(known.tolist())]
        pool = X[~lab] if (~lab).any() else X
        chosen = centers[known] if known.size else np.zeros((0, X.shape[1]))
        for c in todo:  # k-means++ seeding on the unlabelled rows
            d2 = ((pool[:, None, :] - chosen[None]) ** 2).sum(2).min(1) if len(chosen) else np.ones(len(pool))
            p = d2 / d2.sum() if d2.sum() > 0 else np.full(len(pool), 1 / len(pool))
            centers[c] = pool[rng.choice(len(pool), p=p)]
            chosen = np.vstack([chosen, centers[c]])
        labels = np.where(lab, y, 0)
        for _ in range(int(max_iter)):
            dist = ((X[:, None, :] - centers[None]) ** 2).sum(2)
            new = np.where(lab, y, dist.argmin(1))
            for c in range(k):
                if (new == c).any():
                    centers[c] = X[new == c].mean(0)
            if np.array_equal(new, labels):
                break
            labels = new
        inertia = float(((X - centers[labels]) ** 2).sum())
        if best is None or inertia < best[0]:
            best = (inertia, labels.copy())
    return best[1]


def gcd_accuracy(y_true: Any, y_pred: Any, old_classes: Any) -> dict[str, float]:
    """GCD accuracies of unlabelled predictions: one Hungarian matching over all rows, then
    accuracy on all rows, on rows of ``old_classes`` and on the rest (new classes).

    Returns ``{"all": ..., "old": ..., "new": ...}`` (NaN for an empty part).
    """
    yt = check_labels(y_true, np.asarray(y_true).shape[0], "y_true")
    yp = check_labels(y_pred, yt.shape[0], "y_pred")
    if yt.size == 0:
        raise ValueError("y_true is empty")
    t_ids, t_inv = np.unique(yt, return_inverse=True)
    p_ids, p_inv = np.unique(yp, return_inverse=True)
    counts = np.zeros((p_ids.size, t_ids.size))
    np.add.at(counts, (p_inv, t_inv), 1)
    rows, cols = linear_sum_assignment(-counts)
    mapping = np.full(p_ids.size, -1)
    mapping[rows] = t_ids[cols]
    hit = mapping[p_inv] == yt
    old = np.isin(yt, np.asarray(old_classes))
    return {
        "all": float(hit.mean()),
        "old": float(hit[old].mean()) if old.any() else float("nan"),
        "new": float(hit[~old].mean()) if (~old).any() else float("nan"),
    }


def make_hierarchical_blobs(n_per_leaf: int = 100, depth: int = 3, dim: int = 16, *, scales: Any = None,
                            noise: float = 1.0, random_state: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters at the leaves of a full binary tree (``2**depth`` classes).

    Each tree edge at level ``l`` gets a random unit direction times ``scales[l]``; a leaf's mean
    is the sum along its root path, so sibling leaves are close and distant subtrees far apart.
    Returns ``X`` ``(2**depth * n_per_leaf, dim)`` and leaf labels ordered so that leaves ``2j`` and
    ``2j + 1`` are siblings.
    """
    n = check_int(n_per_leaf, "n_per_leaf", low=1)
    depth = check_int(depth, "depth", low=1)
    dim = check_int(dim, "dim", low=1)
    noise = check_float(noise, "noise", low=0.0)
    scales = np.asarray([2.0 ** (depth - l + 1) for l in range(depth)] if scales is None else scales, dtype=float)
    if scales.shape != (depth,):
        raise ValueError(f"scales must have {depth} entries, got shape {scales.shape}")
    rng = check_random_state(random_state)
    means = np.zeros((1, dim))
    for level in range(depth):
        step = rng.standard_normal((means.shape[0] * 2, dim))
        step *= scales[level] / np.linalg.norm(step, axis=1, keepdims=True)
        means = np.repeat(means, 2, axis=0) + step
    y = np.repeat(np.arange(means.shape[0]), n)
    return means[y] + noise * rng.standard_normal((y.size, dim)), y


class HyperbolicCategoryDiscovery(ClusterMixin, GraphrecEstimator):
    """Generalised category discovery in the Poincaré ball (HypCD) or on the sphere (baseline).

    Parameters
    ----------
    n_clusters : int
        ``K``, the total number of categories (old + new).
    geometry : {"hyperbolic", "euclidean"}, default "hyperbolic"
    dim : int, default 16
        Embedding dim.
    hidden : tuple of int, default (128,)
        Encoder MLP widths.
    c : float, default 0.1
        Curvature magnitude of the ball.
    clip_r : float, default 2.3
        Feature clipping radius before ``exp_0``.
    alpha_max : float, default 0.5
        Final weight of the distance term of the hybrid similarity (ramped from 0).
    sup_weight : float, default 0.35
        ``lam`` of the GCD objective.
    tau_self, tau_sup : float, default 0.1, 0.07
    noise : float, default 0.2
        View noise relative to the per-feature standard deviation.
    n_epochs, batch_size, lr : training (Adam)
    random_state, device, verbose

    Attributes
    ----------
    labels_ : ndarray (n,)
        Category of every training row (labelled rows keep their class code).
    embedding_ : ndarray (n, dim)
        Tangent-space (hyperbolic) or unit-sphere (euclidean) embedding used for clustering.
    classes_ : ndarray
        The labelled classes seen in ``fit`` (codes ``0..len-1`` in ``labels_``).
    model_ : nn.Module
    """

    def __init__(
        self, n_clusters: int, geometry: str = "hyperbolic", dim: int = 16, hidden: tuple[int, ...] = (128,), *,
        c: float = 0.1, clip_r: float = 2.3, alpha_max: float = 0.5, sup_weight: float = 0.35,
        tau_self: float = 0.1, tau_sup: float = 0.07, noise: float = 0.2, n_epochs: int = 30,
        batch_size: int = 128, lr: float = 1e-3, random_state: Any = None, device: str = "cpu", verbose: bool = False,
    ) -> None:
        self.n_clusters = n_clusters
        self.geometry = geometry
        self.dim = dim
        self.hidden = hidden
        self.c = c
        self.clip_r = clip_r
        self.alpha_max = alpha_max
        self.sup_weight = sup_weight
        self.tau_self = tau_self
        self.tau_sup = tau_sup
        self.noise = noise
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _check_params(self) -> tuple[int, ...]:
        check_int(self.n_clusters, "n_clusters", low=1)
        check_choice(self.geometry, "geometry", ("hyperbolic", "euclidean"))
        check_int(self.dim, "dim", low=1)
        if not isinstance(self.hidden, (tuple, list)):
            raise TypeError(f"hidden must be a tuple of layer widths, got {type(self.hidden).__name__}")
        for name in ("c", "clip_r", "tau_self", "tau_sup", "lr"):
            check_float(getattr(self, name), name, low=0.0, low_open=True)
        check_float(self.alpha_max, "alpha_max", low=0.0, high=1.0)
        check_float(self.sup_weight, "sup_weight", low=0.0, high=1.0)
        check_float(self.noise, "noise", low=0.0)
        check_int(self.n_epochs, "n_epochs", low=1)
        check_int(self.batch_size, "batch_size", low=2)
        return tuple(check_int(h, "hidden[i]", low=1) for h in self.hidden)

    def _points(self, z: torch.Tensor) -> torch.Tensor:
        """Encoder output -> ball points (hyperbolic) or unit vectors (euclidean)."""
        if self.geometry == "hyperbolic":
            return expmap0(clip_norm(z, self.clip_r), self.c)
        return F.normalize(z, dim=1)

    def fit(self, X: Any, y: Any) -> "HyperbolicCategoryDiscovery":
        """``X`` ``(n, d)``; ``y`` ``(n,)`` class labels of labelled rows and ``-1`` for unlabelled rows."""
        X = check_array(X, "X", ndim=2, min_rows=2)
        y = check_labels(y, X.shape[0], "y")
        hidden = self._check_params()
        lab = y >= 0
        if lab.sum() < 2 or (~lab).sum() < 1:
            raise ValueError("y needs at least 2 labelled rows (>= 0) and 1 unlabelled row (-1)")
        self.classes_, codes = np.unique(y[lab], return_inverse=True)
        if self.classes_.size > self.n_clusters:
            raise ValueError(f"y has {self.classes_.size} labelled classes but n_clusters={self.n_clusters}")
        y_codes = np.full(y.shape, -1)
        y_codes[lab] = codes
        device = check_device(self.device)
        rng = check_random_state(self.random_state)
        layers: list[nn.Module] = []
        width = X.shape[1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(0, 2**31 - 1)))
            for h in hidden:
                layers += [nn.Linear(width, h), nn.ReLU()]
                width = h
            model = nn.Sequential(*layers, nn.Linear(width, int(self.dim)))
        self.mean_, self.scale_ = X.mean(0), X.std(0) + 1e-8
        x_t = torch.as_tensor((X - self.mean_) / self.scale_, dtype=torch.float32, device=device)
        y_t = torch.as_tensor(y_codes, dtype=torch.long, device=device)
        hyperbolic = self.geometry == "hyperbolic"
        n_epochs, alpha_max, lam, sigma = int(self.n_epochs), float(self.alpha_max), float(self.sup_weight), float(self.noise)

        def loss_fn(m: nn.Module, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
            xb, yb, alpha = batch
            views = torch.cat([xb + sigma * torch.randn_like(xb), xb + sigma * torch.randn_like(xb)])
            pts = self._points(m(views))
            sim = hybrid_similarity(pts, self.c, float(alpha)) if hyperbolic else pts @ pts.T
            ids = torch.arange(xb.shape[0], device=xb.device).repeat(2)
            loss = (1 - lam) * similarity_supcon(sim, ids, self.tau_self)
            lb = torch.cat([yb, yb]) >= 0
            if int(lb.sum()) >= 2 and lam > 0:
                ysup = torch.cat([yb, yb])[lb]
                loss = loss + lam * similarity_supcon(sim[lb][:, lb], ysup, self.tau_sup)
            return loss

        def batches(epoch: int, g: torch.Generator):
            alpha = torch.tensor(alpha_max * epoch / max(n_epochs - 1, 1))
            for xb, yb in tensor_batches(x_t, y_t, batch_size=int(self.batch_size), generator=g, drop_last=True):
                yield xb, yb, alpha

        trainer = Trainer(model, torch.optim.Adam(model.parameters(), lr=self.lr), loss_fn, max_epochs=n_epochs,
                          device=device, random_state=int(rng.integers(0, 2**31 - 1)), verbose=self.verbose)
        result = trainer.fit(batches)
        logger.info("HypCD (%s): final loss %.4g", self.geometry, result.history[-1]["train_loss"])
        self.model_ = model.eval()
        self.n_features_in_ = X.shape[1]
        self.embedding_ = self._embed(X)
        self.labels_ = ss_kmeans(self.embedding_, y_codes, int(self.n_clusters), random_state=rng)
        return self

    def fit_predict(self, X: Any, y: Any) -> np.ndarray:
        """:meth:`fit` on ``X`` with the partial labels ``y`` and return ``labels_`` ``(n,)``.

        (``ClusterMixin.fit_predict`` would drop ``y``, which this semi-supervised method needs.)
        """
        return self.fit(X, y).labels_

    def _embed(self, X: np.ndarray) -> np.ndarray:
        p = next(self.model_.parameters())
        with torch.no_grad():
            pts = self._points(self.model_(torch.as_tensor((X - self.mean_) / self.scale_, dtype=p.dtype, device=p.device)))
            if self.geometry == "hyperbolic":
                pts = logmap0(pts, self.c)
        return pts.double().cpu().numpy()

    def transform(self, X: Any) -> np.ndarray:
        """Clustering embedding ``(n, dim)`` of new rows (tangent space or unit sphere)."""
        X = self._check_fitted_input(X)
        return self._embed(X)


def _gcd_input(seed: int) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_hierarchical_blobs(10, 2, 6, random_state=seed)
    y = np.where((y < 2) & (np.arange(y.size) % 2 == 0), y, -1)
    return X, y


register_estimator(
    "HyperbolicCategoryDiscovery",
    EstimatorSpec(
        factory=lambda: HyperbolicCategoryDiscovery(4, dim=4, hidden=(8,), n_epochs=2, batch_size=20, random_state=0),
        make_input=_gcd_input,
        output=lambda est, args: est.labels_,
        bad_inputs={
            "nan": lambda: (np.full((6, 3), np.nan), np.array([0, 1, -1, -1, -1, -1])),
            "no_unlabelled": lambda: (np.ones((6, 3)), np.array([0, 1, 0, 1, 0, 1])),
            "y_length": lambda: (np.ones((6, 3)), np.array([0, 1, -1])),
        },
        fitted_method="transform",
    ),
)
