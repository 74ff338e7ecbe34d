"""Franca: nested (Matryoshka) clustering head with Sinkhorn targets, and RASA positional-bias removal.

**Matryoshka clustering head.** For nesting dims ``d_1 < ... < d_L = d`` each level ``l`` owns a
small MLP projector and ``K_l = K d_l / d`` weight-normalised prototypes. In ``mode="prefix"`` (the
paper) level ``l`` reads only the first ``d_l`` coordinates of the backbone feature, so coarse
levels are nested inside fine ones; ``mode="proj"`` (the official code) feeds the full feature to
every level. Teacher targets are balanced cluster assignments from Sinkhorn-Knopp on
``exp(t / tau_t)`` (:func:`sinkhorn_targets`, via :func:`graphrec.core.sinkhorn`) and the loss is
``sum_l mean_i -sum_k q_{l,ik} log softmax(s_l / tau_s)_{ik}`` (:func:`nested_cluster_loss`).
:class:`MatryoshkaClustering` trains an MLP backbone with this loss on two noisy views (SwAV-style
swapped prediction; the EMA teacher, multi-crop, iBOT and KoLeo terms of Franca are left out),
or with a single full-dimension level (``nested=False``), the baseline of the Matryoshka claim.

**RASA** (:class:`RASA`). Patch features carry their position linearly. For ``n_iter`` rounds:
fit a least-squares regressor from the (current) features to the normalised (row, col)
coordinates, orthonormalise its two weight vectors against the directions already removed
(Gram-Schmidt) and project them out, ``Z <- Z - (Z u_r) u_r^T - (Z u_c) u_c^T``.

Reference: S. Venkataramanan, V. Pariza, et al., "Franca: Nested Matryoshka Clustering for
Scalable Visual Representation Learning", arXiv 2507.14137 (github.com/valeoai/Franca).
RASA is the post-hoc positional disentanglement step of the same paper; the closed-form
least-squares regressor used here stands in for the official code's gradient-trained linear head [recon].
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import ClusterMixin, TransformerMixin
from torch import nn

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.core import residual, sinkhorn
from graphrec.core._checks import as_tensor
from graphrec.train import Trainer, tensor_batches
from graphrec.utils.validation import (
    check_array,
    check_bool,
    check_choice,
    check_device,
    check_float,
    check_int,
    check_random_state,
)

__all__ = ["MatryoshkaClusterHead", "MatryoshkaClustering", "RASA", "nested_cluster_loss", "sinkhorn_targets"]

logger = logging.getLogger(__name__)


def sinkhorn_targets(scores: Any, tau: float = 0.05, n_iter: int = 3) -> torch.Tensor:
    """Balanced soft assignments ``q`` ``(n, K)`` from teacher scores ``(n, K)`` by Sinkhorn-Knopp.

    ``q`` is the entropic transport plan of :func:`graphrec.core.sinkhorn` with cost ``-scores``,
    entropy ``tau``, uniform marginals, scaled by ``n`` so that each row is a distribution over
    prototypes. The last half-iteration normalises the rows, so after any ``n_iter`` the rows sum to 1
    exactly while the prototype marginals approach ``n / K`` as ``n_iter`` grows.

    >>> q = sinkhorn_targets(torch.randn(6, 3, dtype=torch.float64), n_iter=3)
    >>> torch.allclose(q.sum(1), torch.ones(6, dtype=torch.float64))
    True
    """
    scores = as_tensor(scores, "scores", ndim=2)
    tau = check_float(tau, "tau", low=0.0, low_open=True)
    n_iter = check_int(n_iter, "n_iter", low=1)
    # Transposed problem: the final column update of graphrec.core.sinkhorn then fixes the sample marginals.
    plan = sinkhorn(-scores.T, eps=tau, n_iter=n_iter, tol=0.0)
    return plan.T * scores.shape[0]


def nested_cluster_loss(student: list[torch.Tensor], teacher: list[torch.Tensor], tau_s: float = 0.1) -> torch.Tensor:
    """``sum_l mean_i -sum_k q_{l,ik} log softmax(s_{l,i} / tau_s)_k`` over nesting levels ``l``.

    ``student`` and ``teacher`` are lists (one entry per level) of ``(n, K_l)`` student scores and
    target distributions.
    """
    if len(student) != len(teacher) or not student:
        raise ValueError(f"student and teacher must be non-empty lists of equal length, got {len(student)} and {len(teacher)}")
    tau_s = check_float(tau_s, "tau_s", low=0.0, low_open=True)
    total = student[0].new_zeros(())
    for s, q in zip(student, teacher):
        if s.shape != q.shape:
            raise ValueError(f"student scores {tuple(s.shape)} and targets {tuple(q.shape)} differ in shape")
        total = total - (q * F.log_softmax(s / tau_s, dim=1)).sum(1).mean()
    return total


def _check_nesting(nesting: Any, dim: int) -> tuple[int, ...]:
    if not isinstance(nesting, (tuple, list)) or not nesting:
        raise TypeError(f"nesting must be a non-empty tuple of dims, got {nesting!r}")
    dims = tuple(check_int(d, "nesting[i]", low=1, high=dim) for d in nesting)
    if any(a >= b for a, b in zip(dims, dims[1:])) or dims[-1] != dim:
        raise ValueError(f"nesting must increase strictly and end at the feature dim {dim}, got {dims}")
    return dims


class MatryoshkaClusterHead(nn.Module):
    """Per-level projector + weight-normalised prototypes on nested feature dims.

    Parameters
    ----------
    in_dim : int
        Backbone feature dim ``d``.
    nesting : tuple of int
        Increasing dims ending at ``d`` (Franca: ``(d/16, d/8, d/4, d/2, d)``).
    n_prototypes : int
        ``K`` of the full level; level ``l`` has ``max(1, round(K d_l / d))`` prototypes.
    mode : {"prefix", "proj"}
        ``"prefix"``: level ``l`` sees ``x[:, :d_l]``; ``"proj"``: every level sees all of ``x``.
    hidden, bottleneck : int
        Projector ``Linear -> GELU -> Linear`` widths (Franca: 3 layers of 2048, bottleneck 384).

    Notes
    -----
    ``forward(x)`` with ``x`` ``(n, d)`` returns one ``(n, K_l)`` tensor of cosine scores per level.

    Examples
    --------
    >>> head = MatryoshkaClusterHead(8, (2, 4, 8), n_prototypes=16, hidden=8, bottleneck=4)
    >>> [s.shape[1] for s in head(torch.randn(3, 8))]
    [4, 8, 16]
    """

    def __init__(self, in_dim: int, nesting: tuple[int, ...], n_prototypes: int, *, mode: str = "prefix",
                 hidden: int = 64, bottleneck: int = 32) -> None:
        super().__init__()
        self._init_args = (in_dim, nesting, n_prototypes, mode, hidden, bottleneck)
        in_dim = check_int(in_dim, "in_dim", low=1)
        self.nesting = _check_nesting(nesting, in_dim)
        n_prototypes = check_int(n_prototypes, "n_prototypes", low=1)
        self.mode = check_choice(mode, "mode", ("prefix", "proj"))
        hidden, bottleneck = check_int(hidden, "hidden", low=1), check_int(bottleneck, "bottleneck", low=1)
        self.n_prototypes = tuple(max(1, round(n_prototypes * d / in_dim)) for d in self.nesting)
        self.projectors = nn.ModuleList(
            nn.Sequential(nn.Linear(d if mode == "prefix" else in_dim, hidden), nn.GELU(), nn.Linear(hidden, bottleneck))
            for d in self.nesting
        )
        self.prototypes = nn.ModuleList(
            nn.utils.parametrizations.weight_norm(nn.Linear(bottleneck, k, bias=False)) for k in self.n_prototypes
        )

    def __reduce_ex__(self, protocol: int) -> tuple:
        # weight_norm modules refuse pickling ("only supported through state_dict()"): rebuild from
        # the constructor arguments and the state dict, so fitted estimators pickle and deepcopy.
        return _rebuild_head, (self._init_args, self.state_dict(), self.training)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for d, proj, protos in zip(self.nesting, self.projectors, self.prototypes):
            z = F.normalize(proj(x[:, :d] if self.mode == "prefix" else x), dim=1)
            out.append(protos(z))
        return out


def _rebuild_head(init_args: tuple, state: dict, training: bool) -> MatryoshkaClusterHead:
    in_dim, nesting, n_prototypes, mode, hidden, bottleneck = init_args
    with torch.random.fork_rng(devices=[]):  # the throw-away initialisation must not move the global RNG
        head = MatryoshkaClusterHead(in_dim, nesting, n_prototypes, mode=mode, hidden=hidden, bottleneck=bottleneck)
    head.load_state_dict(state, assign=True)
    return head.train(training)


class _Model(nn.Module):
    def __init__(self, in_dim: int, hidden: int, dim: int, head: MatryoshkaClusterHead) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.head = head


class MatryoshkaClustering(ClusterMixin, TransformerMixin, GraphrecEstimator):
    """Self-supervised nested clustering of tabular features (small-scale Franca).

    Two views ``x + sigma * noise`` are embedded by an MLP backbone ``(n_features -> hidden -> dim)``;
    each view's Sinkhorn targets (computed without gradient) supervise the other view's scores at
    every nesting level (swapped prediction, :func:`nested_cluster_loss`).

    Parameters
    ----------
    nesting : tuple of int, default (4, 8, 16, 32)
        Nested dims; the last one is the embedding dim.
    n_prototypes : int, default 32
        Prototypes of the full level.
    nested : bool, default True
        ``False``: a single level at the full dim (the non-Matryoshka baseline).
    mode : {"prefix", "proj"}, default "prefix"
    hidden : int, default 128
    noise : float, default 0.1
        View noise ``sigma`` relative to the per-feature standard deviation.
    tau_s, tau_t : float, default 0.1, 0.05
        Student temperature and Sinkhorn entropy.
    n_sinkhorn : int, default 3
    n_epochs, batch_size, lr : training (Adam)
    random_state, device, verbose

    Attributes
    ----------
    model_ : nn.Module
        ``model_.backbone`` and ``model_.head`` (:class:`MatryoshkaClusterHead`).
    labels_ : ndarray of shape (n,)
        Argmax prototype of each training row at the finest level (``predict``'s default).
    level_labels_ : list of ndarray of shape (n,)
        The same at every nesting level, coarsest first.
    n_features_in_ : int
    """

    def __init__(
        self, nesting: tuple[int, ...] = (4, 8, 16, 32), n_prototypes: int = 32, *, nested: bool = True,
        mode: str = "prefix", hidden: int = 128, noise: float = 0.1, tau_s: float = 0.1, tau_t: float = 0.05,
        n_sinkhorn: int = 3, n_epochs: int = 50, batch_size: int = 128, lr: float = 1e-3,
        random_state: Any = None, device: str = "cpu", verbose: bool = False,
    ) -> None:
        self.nesting = nesting
        self.n_prototypes = n_prototypes
        self.nested = nested
        self.mode = mode
        self.hidden = hidden
        self.noise = noise
        self.tau_s = tau_s
        self.tau_t = tau_t
        self.n_sinkhorn = n_sinkhorn
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def fit(self, X: Any, y: Any = None) -> "MatryoshkaClustering":
        """Train on ``X`` ``(n, n_features)`` (``y`` ignored)."""
        X = check_array(X, "X", ndim=2, min_rows=2)
        if not isinstance(self.nesting, (tuple, list)) or not self.nesting:
            raise TypeError(f"nesting must be a non-empty tuple of dims, got {self.nesting!r}")
        dim = check_int(self.nesting[-1], "nesting[-1]", low=1)
        check_bool(self.nested, "nested")
        nesting = _check_nesting(self.nesting, dim) if self.nested else (dim,)
        check_float(self.noise, "noise", low=0.0)
        tau_s = check_float(self.tau_s, "tau_s", low=0.0, low_open=True)
        tau_t = check_float(self.tau_t, "tau_t", low=0.0, low_open=True)
        n_sink = check_int(self.n_sinkhorn, "n_sinkhorn", low=1)
        check_int(self.n_epochs, "n_epochs", low=1)
        check_int(self.batch_size, "batch_size", low=2)
        check_float(self.lr, "lr", low=0.0, low_open=True)
        hidden = check_int(self.hidden, "hidden", low=1)
        device = check_device(self.device)
        rng = check_random_state(self.random_state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(0, 2**31 - 1)))
            head = MatryoshkaClusterHead(dim, nesting, self.n_prototypes, mode=self.mode, hidden=hidden, bottleneck=dim)
            model = _Model(X.shape[1], hidden, dim, head)
        self.mean_, self.scale_ = X.mean(0), X.std(0) + 1e-8
        x = torch.as_tensor((X - self.mean_) / self.scale_, dtype=torch.float32, device=device)
        sigma = float(self.noise)

        def loss_fn(m: _Model, batch: tuple[torch.Tensor]) -> torch.Tensor:
            (xb,) = batch
            s1 = m.head(m.backbone(xb + sigma * torch.randn_like(xb)))
            s2 = m.head(m.backbone(xb + sigma * torch.randn_like(xb)))
            with torch.no_grad():
                q1 = [sinkhorn_targets(s, tau_t, n_sink) for s in s1]
                q2 = [sinkhorn_targets(s, tau_t, n_sink) for s in s2]
            return (nested_cluster_loss(s1, q2, tau_s) + nested_cluster_loss(s2, q1, tau_s)) / (2 * len(nesting))

        trainer = Trainer(model, torch.optim.Adam(model.parameters(), lr=self.lr), loss_fn,
                          max_epochs=int(self.n_epochs), device=device, random_state=int(rng.integers(0, 2**31 - 1)),
                          verbose=self.verbose)
        result = trainer.fit(lambda epoch, g: tensor_batches(x, batch_size=int(self.batch_size), generator=g, drop_last=True))
        self.model_ = model.eval()
        self.loss_ = float(result.history[-1]["train_loss"])
        logger.info("MatryoshkaClustering: %d levels, final loss %.4g", len(nesting), self.loss_)
        self.n_features_in_ = X.shape[1]
        with torch.no_grad():
            self.level_labels_ = [s.argmax(1).cpu().numpy() for s in model.head(model.backbone(x))]
        self.labels_ = self.level_labels_[-1]
        return self

    def _embed(self, X: Any) -> torch.Tensor:
        X = self._check_fitted_input(X)
        p = next(self.model_.parameters())
        with torch.no_grad():
            return self.model_.backbone(torch.as_tensor((X - self.mean_) / self.scale_, dtype=p.dtype, device=p.device))

    def transform(self, X: Any, dim: int | None = None) -> np.ndarray:
        """Backbone embedding ``(n, dim)``: its first ``dim`` coordinates (default all)."""
        z = self._embed(X)
        dim = z.shape[1] if dim is None else check_int(dim, "dim", low=1, high=z.shape[1])
        return z[:, :dim].double().cpu().numpy()

    def predict(self, X: Any, level: int = -1) -> np.ndarray:
        """Prototype index of each row at nesting ``level`` (default the finest)."""
        z = self._embed(X)
        with torch.no_grad():
            scores = self.model_.head(z)
        level = check_int(level, "level", low=-len(scores), high=len(scores) - 1)
        return scores[level].argmax(1).cpu().numpy()


class RASA(TransformerMixin, GraphrecEstimator):
    """Remove the linear positional subspace from patch features (Franca's RASA, post hoc).

    Parameters
    ----------
    n_iter : int, default 2
        Rounds of regress-and-remove (Franca's ``n_pos_layers``); each removes up to 2 directions.
    alpha : float, default 1e-6
        Ridge regulariser of the position regressor (relative to the feature scale).

    Attributes
    ----------
    positional_basis_ : ndarray (d, r)
        Orthonormal basis of the removed positional subspace (``r <= 2 n_iter``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> pos = rng.uniform(size=(200, 2))
    >>> Z = rng.standard_normal((200, 6)) * 0.01 + pos @ rng.standard_normal((2, 6))
    >>> rasa = RASA(n_iter=2).fit(Z, pos)
    >>> rasa.positional_basis_.shape
    (6, 4)
    """

    def __init__(self, n_iter: int = 2, alpha: float = 1e-6) -> None:
        self.n_iter = n_iter
        self.alpha = alpha

    def fit(self, Z: Any, positions: Any) -> "RASA":
        """``Z`` ``(n, d)`` features, ``positions`` ``(n, p)`` patch coordinates (e.g. (row, col))."""
        Z = check_array(Z, "Z", ndim=2, min_rows=2)
        pos = check_array(positions, "positions", ndim=2)
        if pos.shape[0] != Z.shape[0]:
            raise ValueError(f"positions has {pos.shape[0]} rows, Z has {Z.shape[0]}")
        n_iter = check_int(self.n_iter, "n_iter", low=1)
        alpha = check_float(self.alpha, "alpha", low=0.0)
        span = pos.max(0) - pos.min(0)
        target = (pos - pos.min(0)) / np.where(span > 0, span, 1.0)
        target = target - target.mean(0)
        zc = Z - Z.mean(0)
        basis = np.zeros((Z.shape[1], 0))
        for _ in range(n_iter):
            cur = zc - (zc @ basis) @ basis.T
            gram = cur.T @ cur
            w = np.linalg.solve(gram + alpha * np.trace(gram) / Z.shape[1] * np.eye(Z.shape[1]) + 1e-12 * np.eye(Z.shape[1]),
                                cur.T @ target)
            for col in w.T:  # Gram-Schmidt against everything removed so far
                col = col - basis @ (basis.T @ col)
                norm = np.linalg.norm(col)
                if norm > 1e-10:
                    basis = np.hstack([basis, (col / norm)[:, None]])
        self.positional_basis_ = basis
        self.n_features_in_ = Z.shape[1]
        return self

    def transform(self, Z: Any) -> np.ndarray:
        """``Z - Z U U^T`` with ``U`` = :attr:`positional_basis_` (:func:`graphrec.core.residual`)."""
        self._check_is_fitted()
        Z = check_array(Z, "Z", ndim=2)
        if Z.shape[1] != self.n_features_in_:
            raise ValueError(f"Z has {Z.shape[1]} features, RASA was fitted on {self.n_features_in_}")
        if self.positional_basis_.shape[1] == 0:
            return Z.copy()
        return residual(torch.as_tensor(Z), torch.as_tensor(self.positional_basis_)).numpy()


def _clusters(seed: int) -> tuple[np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((64, 6)) + 4 * np.eye(6)[rng.integers(0, 3, 64)],)


register_estimator(
    "MatryoshkaClustering",
    EstimatorSpec(
        factory=lambda: MatryoshkaClustering((2, 4), n_prototypes=4, hidden=8, n_epochs=2, batch_size=32, random_state=0),
        make_input=_clusters,
        output=lambda est, args: est.transform(args[0]),
        bad_inputs={"nan": lambda: (np.full((8, 3), np.nan),), "one_dim": lambda: (np.ones(8),)},
        fitted_method="transform",
    ),
)
