"""MLC: unsupervised manifold linearizing and clustering by coding-rate reduction with a doubly
stochastic membership.

A backbone ``b`` feeds two heads: features ``Z = normalise(f(b(X)))`` on the unit sphere and cluster
codes ``C = normalise(g(b(X)))``. On a mini-batch of ``n`` samples the membership is the doubly
stochastic ``Gamma = Sinkhorn(C C^T / eta)`` ``(n, n)`` (:func:`graphrec.core.doubly_stochastic`) and
the loss is the negative rate reduction

    -R(Z; eps) + R_c(Z, Gamma; eps),
    R   = 1/2 logdet(I + d / (n eps^2) Z^T Z)                       (graphrec.core.coding_rate)
    R_c = 1/(2n) sum_j logdet(I + d / eps^2 Z^T diag(Gamma_j) Z)    (graphrec.core.coding_rate_membership)

(the paper's ``R`` and ``R_c`` without the ½, which scales the loss only). With ``A`` augmented
views, ``Z`` is the normalised mean of the views' features and ``Gamma`` the mean of their
memberships. Initialisation: the backbone and feature head are pre-trained with the total coding
rate (TCR) objective ``-R(mean of views) - lam_tcr * mean_i cos(z_i, z'_i)``, and the feature head is
copied into the cluster head, so that the first ``Gamma`` is ``Sinkhorn(Z Z^T / eta)``. The labels are
the spectral clustering of the membership of all samples, ``Sinkhorn(C C^T / eta)`` ``(n, n)``, computed
by the symmetric Sinkhorn-Knopp iteration (:func:`graphrec.core.transport.symmetric_doubly_stochastic`:
tens of sweeps where the alternating one had not converged after 1000 on digits at ``eta = 0.05``).

Choice of ``eta`` without labels. ``eta`` sets how many neighbours share a sample's membership
(our notes of the paper give no value for small MLP features). The default tries the factor-2 grid
``{0.025, 0.05, 0.1, 0.2}`` after one shared TCR pre-training and keeps the partition with the largest
rate reduction ``R(X) - R_c(X, partition)`` (``eps`` as in training) of the *input* (standardised,
unit-norm rows): the lossy-coding segmentation criterion of the coding-rate family (Ma, Derksen,
Hong, Wright, TPAMI 2007), measured in the one space that is the same for every candidate (the
learned features differ), the way k-means keeps its restart of lowest inertia. A single float skips
the selection. (Small ``eta`` breaks the membership into many more than ``n_clusters`` components,
large ``eta`` spreads it over other clusters' points; which value is best differs between datasets.)

Reference: T. Ding, S. Tong, K. H. R. Chan, X. Dai, Y. Ma, B. D. Haeffele, "Unsupervised manifold
linearizing and clustering", ICCV 2023 (arXiv 2301.01805).
"""
from __future__ import annotations

import copy
import logging
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import ClusterMixin
from torch import nn

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.core import coding_rate, coding_rate_membership, doubly_stochastic
from graphrec.core._checks import as_tensor
from graphrec.core.transport import symmetric_doubly_stochastic
from graphrec.subspace.deep_sc import affinity_spectral_clustering
from graphrec.train import Trainer, tensor_batches
from graphrec.utils.validation import check_array, check_device, check_float, check_int, check_random_state

__all__ = ["MLC", "mlc_loss", "partition_rate_reduction", "tcr_loss"]

logger = logging.getLogger(__name__)

Augment = Callable[[torch.Tensor], torch.Tensor]


def tcr_loss(views: Sequence[torch.Tensor], eps: float = 0.5, lam_tcr: float = 1.0) -> torch.Tensor:
    """Total-coding-rate pre-training loss of unit-norm views ``(n, d)`` each (lower is better)."""
    if len(views) < 2:
        raise ValueError(f"tcr_loss needs at least 2 views, got {len(views)}")
    mean = torch.stack(list(views)).mean(0)
    agree = torch.stack([(v * mean).sum(1) for v in views]).mean()
    return -coding_rate(mean, eps) - lam_tcr * agree


def mlc_loss(z: torch.Tensor, membership: torch.Tensor, eps: float = 0.5) -> torch.Tensor:
    """Negative rate reduction ``-R(Z) + R_c(Z, Gamma)`` of features ``z`` ``(n, d)`` and membership ``(n, n)``."""
    return -coding_rate(z, eps) + coding_rate_membership(z, membership, eps)


def partition_rate_reduction(x: torch.Tensor, labels: Any, eps: float = 0.5) -> float:
    """Rate reduction ``R(X) - R_c(X, partition)`` of rows ``x`` ``(n, d)`` under hard ``labels`` ``(n,)``.

    The coding-length criterion of lossy-coding segmentation (Ma, Derksen, Hong, Wright, TPAMI 2007)
    in MCR²'s form (:func:`graphrec.core.coding_rate`, :func:`graphrec.core.coding_rate_membership`);
    larger means the groups are cheaper to code apart than together.
    """
    x = as_tensor(x, "x", ndim=2)
    labels = np.asarray(labels)
    if labels.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},) (one per row of x), got {labels.shape}")
    groups = torch.as_tensor(labels[None, :] == np.unique(labels)[:, None], dtype=x.dtype, device=x.device)
    return float(coding_rate(x, eps) - coding_rate_membership(x, groups, eps))


class _MLCNet(nn.Module):
    def __init__(self, d_in: int, hidden: int, d_out: int) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.feature_head = nn.Linear(hidden, d_out)
        self.cluster_head = nn.Linear(hidden, d_out)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.backbone(x)
        return F.normalize(self.feature_head(h), dim=1), F.normalize(self.cluster_head(h), dim=1)


def _default_augment(noise: float, drop: float) -> Augment:
    def augment(x: torch.Tensor) -> torch.Tensor:
        keep = (torch.rand(x.shape, device=x.device) >= drop).to(x.dtype)
        return x * keep + noise * torch.randn_like(x)

    return augment


class MLC(ClusterMixin, GraphrecEstimator):
    """Manifold linearizing and clustering (see module docs) with an MLP backbone.

    Parameters
    ----------
    n_clusters : int, default=8
    feature_dim : int, default=32
        Width ``d`` of the features ``Z`` and cluster codes ``C``.
    hidden_dim : int, default=256
    eps : float, default=0.5
        Coding precision of the rates.
    eta : float or sequence of float, default=(0.025, 0.05, 0.1, 0.2)
        Entropy coefficient of the Sinkhorn membership. With several values, one MLC training per
        value starts from the shared TCR pre-training and the partition with the largest
        :func:`partition_rate_reduction` of the input is kept (see module docs).
    lam_tcr : float, default=1.0
        Weight of view agreement in the TCR pre-training.
    n_views : int, default=2
    pretrain_epochs, epochs : int, default=20, 20
        Epochs of TCR pre-training and of MLC training.
    batch_size : int, default=256
    lr : float, default=1e-3
    sinkhorn_iter : int, default=5
        Sinkhorn sweeps per training membership (differentiated through).
    augment : callable or None
        ``augment(x) -> x'`` on a batch tensor; draw randomness from torch's global RNG (seeded by
        the trainer). ``None``: random feature dropout (``p = 0.2``) plus Gaussian noise of std ``0.1``
        on standardised features.
    random_state : int, Generator or None
    device : str, default="cpu"
    verbose : bool, default=False

    Attributes
    ----------
    labels_ : ndarray (n,)
    membership_ : ndarray (n, n)
        Doubly stochastic membership of all samples.
    embedding_ : ndarray (n, feature_dim)
        Unit-norm features ``Z``.
    loss_history_ : dict str -> list of float
        Per-epoch training loss of ``"tcr"`` and of the kept ``"mlc"`` run.
    eta_ : float
        The kept ``eta``.
    selection_scores_ : dict float -> float
        Input rate reduction of the partition of every ``eta`` tried.

    Examples
    --------
    >>> from graphrec.datasets.generators import make_union_of_subspaces
    >>> X, y = make_union_of_subspaces(90, 3, 12, 2, random_state=0)
    >>> est = MLC(n_clusters=3, pretrain_epochs=2, epochs=2, random_state=0).fit(X)
    >>> est.membership_.shape
    (90, 90)
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        feature_dim: int = 32,
        hidden_dim: int = 256,
        eps: float = 0.5,
        eta: float | Sequence[float] = (0.025, 0.05, 0.1, 0.2),
        lam_tcr: float = 1.0,
        n_views: int = 2,
        pretrain_epochs: int = 20,
        epochs: int = 20,
        batch_size: int = 256,
        lr: float = 1e-3,
        sinkhorn_iter: int = 5,
        augment: Augment | None = None,
        random_state: Any = None,
        device: str = "cpu",
        verbose: bool = False,
    ) -> None:
        self.n_clusters = n_clusters
        self.feature_dim = feature_dim
        self.hidden_dim = hidden_dim
        self.eps = eps
        self.eta = eta
        self.lam_tcr = lam_tcr
        self.n_views = n_views
        self.pretrain_epochs = pretrain_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.sinkhorn_iter = sinkhorn_iter
        self.augment = augment
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _validate(self) -> tuple[float, ...]:
        """Check the hyper-parameters; returns the ``eta`` grid as floats."""
        check_int(self.n_clusters, "n_clusters", low=1)
        check_int(self.feature_dim, "feature_dim", low=1)
        check_int(self.hidden_dim, "hidden_dim", low=1)
        check_float(self.eps, "eps", low=0.0, low_open=True)
        etas = [self.eta] if isinstance(self.eta, numbers.Real) else []
        if isinstance(self.eta, Sequence):
            etas = list(self.eta)
        if not etas:
            raise TypeError(f"eta must be a positive float or a non-empty sequence of them, got {self.eta!r}")
        etas = [check_float(value, "eta", low=0.0, low_open=True) for value in etas]
        check_float(self.lam_tcr, "lam_tcr", low=0.0)
        check_int(self.n_views, "n_views", low=2)
        check_int(self.pretrain_epochs, "pretrain_epochs", low=0)
        check_int(self.epochs, "epochs", low=1)
        check_int(self.batch_size, "batch_size", low=2)
        check_float(self.lr, "lr", low=0.0, low_open=True)
        check_int(self.sinkhorn_iter, "sinkhorn_iter", low=1)
        if self.augment is not None and not callable(self.augment):
            raise TypeError(f"augment must be callable as augment(x) or None, got {type(self.augment).__name__}")
        return tuple(etas)

    def fit(self, X: Any, y: None = None) -> "MLC":
        """Cluster the rows of ``X`` ``(n, d)``."""
        etas = self._validate()
        x_np = check_array(X, "X", ndim=2)
        if x_np.shape[1] == 0:
            raise ValueError("X must have at least one feature column")
        if x_np.shape[0] < max(self.n_clusters, 2):
            raise ValueError(f"X must have at least max(n_clusters, 2)={max(self.n_clusters, 2)} rows, got {x_np.shape[0]}")
        dev = check_device(self.device)
        rng = check_random_state(self.random_state)
        std = x_np.std(0)
        x_np = (x_np - x_np.mean(0)) / np.where(std > 0, std, 1.0)
        x = torch.as_tensor(x_np, dtype=torch.float32, device=dev)
        augment = self.augment if self.augment is not None else _default_augment(0.1, 0.2)
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
        with torch.random.fork_rng(devices=[]):  # nn.Linear's default init draws from the global RNG
            net = _MLCNet(x.shape[1], int(self.hidden_dim), int(self.feature_dim))
        with torch.no_grad():
            for p in net.parameters():  # seeded init that does not touch the global RNG
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) / np.sqrt(p.shape[-1]))
        net = net.to(dev)
        eps, views, k = float(self.eps), int(self.n_views), int(self.n_clusters)
        self.loss_history_: dict[str, list[float]] = {}

        def run(loss_fn, epochs: int, seed_rng: np.random.Generator) -> list[float]:
            opt = torch.optim.Adam(net.parameters(), lr=float(self.lr))
            trainer = Trainer(net, opt, loss_fn, max_epochs=epochs, device=dev,
                              random_state=int(seed_rng.integers(0, 2**31 - 1)), verbose=self.verbose)
            result = trainer.fit(lambda epoch, g: tensor_batches(x, batch_size=int(self.batch_size), generator=g,
                                                                 drop_last=x.shape[0] > int(self.batch_size)))
            return [h["train_loss"] for h in result.history]

        def pretrain(model: _MLCNet, batch: tuple[torch.Tensor]) -> torch.Tensor:
            return tcr_loss([model(augment(batch[0]))[0] for _ in range(views)], eps, float(self.lam_tcr))

        def train_with(eta: float) -> Callable[[_MLCNet, tuple[torch.Tensor]], torch.Tensor]:
            def train(model: _MLCNet, batch: tuple[torch.Tensor]) -> torch.Tensor:
                outs = [model(augment(batch[0])) for _ in range(views)]
                z = F.normalize(torch.stack([o[0] for o in outs]).mean(0), dim=1)
                gamma = torch.stack([doubly_stochastic(c @ c.T / eta, n_iter=int(self.sinkhorn_iter))
                                     for _, c in outs]).mean(0)
                return mlc_loss(z, gamma, eps)

            return train

        if self.pretrain_epochs > 0:
            self.loss_history_["tcr"] = run(pretrain, int(self.pretrain_epochs), rng)
        pretrained = copy.deepcopy(net.state_dict())
        x_unit = x.double() / x.double().norm(dim=1, keepdim=True).clamp_min(1e-12)
        self.selection_scores_: dict[float, float] = {}
        best = -np.inf
        for eta in etas:
            cand_rng = copy.deepcopy(rng)  # every candidate sees the same random stream after pre-training
            net.load_state_dict(pretrained)
            net.cluster_head.load_state_dict(copy.deepcopy(net.feature_head.state_dict()))
            history = run(train_with(eta), int(self.epochs), cand_rng)
            net.eval()
            with torch.no_grad():
                z, c = net(x)
                c = c.double()
                gamma = symmetric_doubly_stochastic(c @ c.T / eta).cpu().numpy()
            net.train()
            labels = affinity_spectral_clustering((gamma + gamma.T) / 2, k, random_state=cand_rng)
            score = partition_rate_reduction(x_unit, labels, eps)
            self.selection_scores_[eta] = score
            logger.info("MLC eta=%g: input rate reduction of the partition %.4f", eta, score)
            if score > best:
                best, self.eta_, self.labels_ = score, eta, labels
                self.embedding_, self.membership_, self.loss_history_["mlc"] = z.cpu().numpy(), gamma, history
        return self


def _points(seed: int) -> tuple:
    from graphrec.datasets.generators import make_union_of_subspaces

    return (make_union_of_subspaces(60, 3, 10, 2, noise=0.01, random_state=seed)[0].astype(np.float32),)


register_estimator(
    "MLC",
    EstimatorSpec(
        factory=lambda: MLC(n_clusters=3, feature_dim=4, hidden_dim=16, pretrain_epochs=1, epochs=1, batch_size=32,
                            random_state=0),
        make_input=_points,
        output=lambda est, args: est.membership_,
        bad_inputs={
            "nan": lambda: (np.full((20, 3), np.nan),),
            "1-d": lambda: (np.ones(10),),
            "too few rows": lambda: (np.ones((2, 3)),),
            "no features": lambda: (np.ones((20, 0)),),
        },
    ),
)
