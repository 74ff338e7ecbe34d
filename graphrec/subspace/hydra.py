"""Hydra / SimLAP: contrastive learning from arbitrary positive pairs through a learned feature gate.

A positive pair may join two samples of *different* classes ``(y1, y2)``. What they share lives in
some subspace of the representation, so a pair gate selects it (coordinate subspace selector)::

    g(y1, y2) = sigmoid(MLP((E[y1] + E[y2]) / 2))            in (0, 1)^dim   (fuse="mean")
    g(y1, y2) = sigmoid(MLP(E[y1])) * sigmoid(MLP(E[y2]))                    (fuse="product")

with learned class embeddings ``E``. The anchor's gate is applied to every candidate,
``z~_j = normalise(g_i * z_j)``, and the multi-positive InfoNCE of :func:`gated_multipositive_info_nce`
uses the samples of class ``y2`` as positives and the samples of classes other than ``y1`` and ``y2``
as negatives::

    loss_i = mean_{p in P(i)} [ log(e^{s_ip} + sum_{n in N(i)} e^{s_in}) - s_ip ],   s_ij = z~_i . z~_j / tau

With ``g = 1``, ``y2 = y1`` and one positive per anchor this is SupCon / NT-Xent
(:func:`graphrec.core.supcon_loss`), which the tests check.

Reference: X. Wu, S. Atito, Z. Feng, S. Mo, J. Kittler, M. Awais, "Rethinking positive pairs in
contrastive learning", arXiv 2410.18200 (Hydra; SimLAP = similarity learning with arbitrary pairs).
The gate MLP here is ``Linear -> ReLU -> Linear`` (the released code adds BatchNorm and uses
512 -> 1024 -> 256).
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import TransformerMixin
from torch import nn

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.train import Trainer, tensor_batches
from graphrec.utils.validation import (
    check_array,
    check_choice,
    check_device,
    check_float,
    check_int,
    check_random_state,
)

__all__ = ["PairGate", "SimLAP", "gated_multipositive_info_nce"]

logger = logging.getLogger(__name__)


class PairGate(nn.Module):
    """Soft coordinate gate of a class pair, ``g(y1, y2)`` in ``(0, 1)^dim``.

    Parameters
    ----------
    n_classes : int
    dim : int
        Dimension of the gated representation.
    embed_dim : int, default 64
        Dimension of the class embeddings ``E`` (paper: 512).
    hidden : int, default 128
        Hidden width of the gate MLP (paper: 1024).
    fuse : {"mean", "product"}, default "mean"

    Notes
    -----
    ``forward(y1, y2)`` with integer tensors ``(n,)`` returns ``(n, dim)``; symmetric in
    ``(y1, y2)`` for both fusions.

    Examples
    --------
    >>> gate = PairGate(3, 4)
    >>> y1, y2 = torch.tensor([0, 2]), torch.tensor([1, 1])
    >>> torch.allclose(gate(y1, y2), gate(y2, y1))
    True
    """

    def __init__(self, n_classes: int, dim: int, embed_dim: int = 64, hidden: int = 128, fuse: str = "mean") -> None:
        super().__init__()
        self.n_classes = check_int(n_classes, "n_classes", low=1)
        dim = check_int(dim, "dim", low=1)
        self.fuse = check_choice(fuse, "fuse", ("mean", "product"))
        self.embedding = nn.Embedding(self.n_classes, check_int(embed_dim, "embed_dim", low=1))
        self.mlp = nn.Sequential(nn.Linear(embed_dim, check_int(hidden, "hidden", low=1)), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, y1: torch.Tensor, y2: torch.Tensor) -> torch.Tensor:
        for name, y in (("y1", y1), ("y2", y2)):
            if y.dtype not in (torch.int32, torch.int64) or y.ndim != 1:
                raise TypeError(f"{name} must be a 1-d integer tensor, got dtype {y.dtype} and shape {tuple(y.shape)}")
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
                raise ValueError(f"{name} has class ids outside [0, {self.n_classes - 1}]")
        if y1.shape != y2.shape:
            raise ValueError(f"y1 and y2 must have the same shape, got {tuple(y1.shape)} and {tuple(y2.shape)}")
        if self.fuse == "mean":
            return torch.sigmoid(self.mlp((self.embedding(y1) + self.embedding(y2)) / 2))
        return torch.sigmoid(self.mlp(self.embedding(y1))) * torch.sigmoid(self.mlp(self.embedding(y2)))


def gated_multipositive_info_nce(z: torch.Tensor, y: torch.Tensor, y2: torch.Tensor, gate: torch.Tensor,
                                 tau: float = 0.1) -> torch.Tensor:
    """SimLAP loss (module docstring) of a batch; anchors are the rows of ``z``.

    Parameters
    ----------
    z : Tensor (n, d)
        Representations; row ``i`` is the anchor ``i`` (class ``y[i]``) and also a candidate.
    y : integer Tensor (n,)
        Classes ``y1`` of the rows.
    y2 : integer Tensor (n,)
        Partner class of each anchor: its positives are the other rows of class ``y2[i]``.
    gate : Tensor (n, d) or None
        Anchor gates ``g(y[i], y2[i])`` (``None``: no gating).
    tau : float
        Temperature.

    Returns
    -------
    0-d Tensor: mean over anchors that have at least one positive (raises if none has).
    """
    tau = check_float(tau, "tau", low=0.0, low_open=True)
    if z.ndim != 2:
        raise ValueError(f"z must be 2-d (n, d), got shape {tuple(z.shape)}")
    n = z.shape[0]
    for name, t in (("y", y), ("y2", y2)):
        if t.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {tuple(t.shape)}")
    if gate is not None and gate.shape != z.shape:
        raise ValueError(f"gate must have the shape of z {tuple(z.shape)}, got {tuple(gate.shape)}")
    if gate is None:
        zn = F.normalize(z, dim=1)
        sim = zn @ zn.T / tau  # (n, n)
    else:
        gz = F.normalize(gate[:, None, :] * z[None, :, :], dim=2)  # (anchor, candidate, d)
        sim = torch.einsum("id,ijd->ij", gz[torch.arange(n), torch.arange(n)], gz) / tau
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    pos = (y[None, :] == y2[:, None]) & ~eye
    neg = (y[None, :] != y[:, None]) & (y[None, :] != y2[:, None])
    has = pos.any(1)
    if not bool(has.any()):
        raise ValueError("no anchor has a positive (no other row of its partner class y2 in the batch)")
    neg_lse = torch.logsumexp(sim.masked_fill(~neg, float("-inf")), dim=1, keepdim=True)  # -inf if no negatives
    per_pair = torch.logaddexp(sim, neg_lse) - sim
    per_anchor = per_pair.masked_fill(~pos, 0.0).sum(1)[has] / pos.sum(1)[has]
    return per_anchor.mean()


class _SimLAPModel(nn.Module):
    def __init__(self, n_features: int, hidden: tuple[int, ...], dim: int, gate: PairGate) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        if hidden:
            layers += [nn.Linear(width, dim), nn.LayerNorm(dim)]
        self.projector = nn.Sequential(*layers)  # empty: identity, the gate acts on the input features
        self.gate = gate


class SimLAP(TransformerMixin, GraphrecEstimator):
    """Contrastive representation learning from arbitrary class pairs with a pair gate (Hydra).

    Each epoch every sample is an anchor; its partner class ``y2`` is drawn among the classes
    allowed by ``pairs`` (default: the class of a random sample of the batch, i.e. arbitrary pairs
    ``y2 = y[randperm]`` as in the paper), and the model minimises
    :func:`gated_multipositive_info_nce`.

    Parameters
    ----------
    dim : int, default 32
        Representation dim (ignored with ``hidden=()``, where the gate acts on the raw features).
    hidden : tuple of int, default (128,)
        Projector MLP widths before the final ``Linear -> LayerNorm``.
    embed_dim, gate_hidden : int, default 64, 128
        :class:`PairGate` sizes.
    fuse : {"mean", "product"}, default "mean"
    tau : float, default 0.1
    n_epochs, batch_size, lr, weight_decay : training (Adam)
    random_state, device, verbose

    Attributes
    ----------
    classes_ : ndarray (C,)
    model_ : nn.Module
        ``model_.projector`` and ``model_.gate`` (:class:`PairGate`).
    loss_ : float
    n_features_in_ : int
    """

    def __init__(
        self, dim: int = 32, hidden: tuple[int, ...] = (128,), *, embed_dim: int = 64, gate_hidden: int = 128,
        fuse: str = "mean", tau: float = 0.1, n_epochs: int = 30, batch_size: int = 256, lr: float = 1e-3,
        weight_decay: float = 0.0, random_state: Any = None, device: str = "cpu", verbose: bool = False,
    ) -> None:
        self.dim = dim
        self.hidden = hidden
        self.embed_dim = embed_dim
        self.gate_hidden = gate_hidden
        self.fuse = fuse
        self.tau = tau
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def fit(self, X: Any, y: Any, pairs: Any = None) -> "SimLAP":
        """Train on ``X`` ``(n, d)`` with labels ``y`` ``(n,)``.

        ``pairs`` : optional boolean ``(C, C)`` matrix over ``classes_``; ``pairs[a, b]`` allows
        ``(y1, y2) = (a, b)`` as a positive pair. Every class needs at least one allowed partner.
        """
        X = check_array(X, "X", ndim=2, min_rows=2)
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
        if not isinstance(self.hidden, (tuple, list)):
            raise TypeError(f"hidden must be a tuple of layer widths, got {type(self.hidden).__name__}")
        hidden = tuple(check_int(h, "hidden[i]", low=1) for h in self.hidden)
        dim = check_int(self.dim, "dim", low=1) if hidden else X.shape[1]
        tau = check_float(self.tau, "tau", low=0.0, low_open=True)
        check_int(self.n_epochs, "n_epochs", low=1)
        check_int(self.batch_size, "batch_size", low=2)
        check_float(self.lr, "lr", low=0.0, low_open=True)
        check_float(self.weight_decay, "weight_decay", low=0.0)
        self.classes_, codes = np.unique(y, return_inverse=True)
        n_classes = self.classes_.size
        if n_classes < 2:
            raise ValueError(f"y must hold at least 2 classes, got {n_classes}")
        if pairs is None:
            allowed = None
        else:
            allowed = np.asarray(pairs)
            if allowed.shape != (n_classes, n_classes) or allowed.dtype != bool:
                raise ValueError(f"pairs must be a boolean ({n_classes}, {n_classes}) matrix, got {allowed.dtype} {allowed.shape}")
            if not allowed.any(1).all():
                raise ValueError(f"every class needs an allowed partner in pairs; rows {np.flatnonzero(~allowed.any(1)).tolist()} are empty")
        device = check_device(self.device)
        rng = check_random_state(self.random_state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(0, 2**31 - 1)))
            gate = PairGate(n_classes, dim, self.embed_dim, self.gate_hidden, self.fuse)
            model = _SimLAPModel(X.shape[1], hidden, dim, gate)
        x_t = torch.as_tensor(X, dtype=torch.float32, device=device)
        y_t = torch.as_tensor(codes, dtype=torch.long, device=device)
        partner_p = None if allowed is None else torch.as_tensor(allowed, dtype=torch.float32, device=device)

        def loss_fn(m: _SimLAPModel, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            xb, yb = batch
            if partner_p is None:
                y2 = yb[torch.randperm(yb.shape[0], device=yb.device)]
            else:
                y2 = torch.multinomial(partner_p[yb], 1).squeeze(1)
            return gated_multipositive_info_nce(m.projector(xb), yb, y2, m.gate(yb, y2), tau)

        optimizer = torch.optim.Adam(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        trainer = Trainer(model, optimizer, loss_fn, max_epochs=int(self.n_epochs), device=device,
                          random_state=int(rng.integers(0, 2**31 - 1)), verbose=self.verbose)
        result = trainer.fit(lambda epoch, g: tensor_batches(x_t, y_t, batch_size=int(self.batch_size), generator=g))
        self.model_ = model.eval()
        self.loss_ = float(result.history[-1]["train_loss"])
        logger.info("SimLAP: final loss %.4g", self.loss_)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Ungated representation ``(n, dim)`` of the rows of ``X``."""
        X = self._check_fitted_input(X)
        p = next(self.model_.parameters())
        with torch.no_grad():
            return self.model_.projector(torch.as_tensor(X, dtype=p.dtype, device=p.device)).double().cpu().numpy()

    def gate(self, y1: Any, y2: Any) -> np.ndarray:
        """Gate values ``(n, dim)`` of the class pairs ``(y1[i], y2[i])`` (labels as in ``fit``)."""
        self._check_is_fitted()
        codes = []
        for name, lab in (("y1", y1), ("y2", y2)):
            lab = np.atleast_1d(np.asarray(lab))
            idx = np.searchsorted(self.classes_, lab).clip(0, self.classes_.size - 1)
            if lab.ndim != 1 or not np.array_equal(self.classes_[idx], lab):
                raise ValueError(f"{name} must be a 1-d array of labels seen in fit {self.classes_.tolist()}")
            codes.append(torch.as_tensor(idx, dtype=torch.long, device=next(self.model_.parameters()).device))
        with torch.no_grad():
            return self.model_.gate(codes[0], codes[1]).double().cpu().numpy()


def _labelled(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), 12)
    return rng.standard_normal((36, 4)) + 2 * np.eye(4)[y], y


register_estimator(
    "SimLAP",
    EstimatorSpec(
        factory=lambda: SimLAP(dim=4, hidden=(8,), embed_dim=4, gate_hidden=8, n_epochs=2, batch_size=12, random_state=0),
        make_input=_labelled,
        output=lambda est, args: est.transform(args[0]),
        bad_inputs={
            "nan": lambda: (np.full((6, 3), np.nan), np.arange(6) % 2),
            "y_length": lambda: (np.ones((6, 3)), np.arange(5) % 2),
        },
        fitted_method="transform",
    ),
)
