"""Grassmann class representation (GCR): one linear subspace per class, projection-norm logits.

Each class ``c`` is a point of the Grassmannian ``Gr(k, d)``, stored as an orthonormal basis
``S_c`` ``(d, k)``. For a feature ``x`` ``(d,)`` with ``x_hat = x / ||x||`` the logit is the length
of its projection onto the class subspace, scaled::

    logit_c(x) = gamma * ||S_c^T x_hat||_2           (in [0, gamma]; invariant to S_c -> S_c R, R in O(k))

and the loss is the cross-entropy. The bases are trained by Riemannian SGD on the Grassmannian
(:class:`GrassmannSGD`): momentum on the Euclidean gradient ``G``, horizontal projection
``Delta = G - S (S^T G)`` (:func:`graphrec.core.grassmann_tangent`) and the geodesic step
``S <- exp_S(-lr * Delta)`` (:func:`graphrec.core.grassmann_exp`), with a QR re-orthonormalisation
(:func:`graphrec.core.qr_retraction`) every ``reorth_every`` steps, so ``S_c^T S_c = I`` holds to
rounding for any number of steps.

:class:`GrassmannClassifier` trains an MLP feature extractor with either this head (``head="gcr"``)
or a linear softmax head (``head="linear"``, the "vector class representation" baseline).

Reference: H. Wang, Z. Li, W. Zhang, "Get the Best of Both Worlds: Improving Accuracy and
Transferability by Grassmann Class Representation", ICCV 2023 (github.com/innerlee/GCR). Defaults follow the official code:
``k = 8``, ``gamma = 25``, re-orthonormalisation every 5 steps.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import ClassifierMixin
from torch import nn

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.core import grassmann_exp, grassmann_tangent, qr_retraction
from graphrec.train import Trainer, tensor_batches
from graphrec.utils.validation import (
    check_array,
    check_choice,
    check_device,
    check_float,
    check_int,
    check_random_state,
    torch_generator,
)

__all__ = ["GrassmannClassHead", "GrassmannSGD", "GrassmannClassifier"]

logger = logging.getLogger(__name__)

GRASSMANN = "grassmann"


class GrassmannClassHead(nn.Module):
    """Projection-norm classification head: ``logits[:, c] = gamma * ||S_c^T x / ||x|| ||``.

    Parameters
    ----------
    in_dim : int
        Feature dimension ``d``.
    n_classes : int
        Number of classes ``C``.
    subspace_dim : int, default 8
        ``k <= d``, the dimension of every class subspace.
    gamma : float, default 25.0
        Logit scale.
    generator : torch.Generator, optional
        Source of the Gaussian initialisation (then QR per class, as in the official code).

    Attributes
    ----------
    bases : nn.Parameter, shape (C, d, k)
        Orthonormal class bases, tagged ``bases.manifold = "grassmann"`` so that
        :class:`GrassmannSGD` updates them along geodesics.

    Examples
    --------
    >>> head = GrassmannClassHead(4, 3, subspace_dim=2, generator=torch.Generator().manual_seed(0))
    >>> head(torch.ones(5, 4)).shape
    torch.Size([5, 3])
    """

    def __init__(self, in_dim: int, n_classes: int, subspace_dim: int = 8, gamma: float = 25.0,
                 *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        in_dim = check_int(in_dim, "in_dim", low=1)
        n_classes = check_int(n_classes, "n_classes", low=1)
        subspace_dim = check_int(subspace_dim, "subspace_dim", low=1, high=in_dim)
        self.gamma = check_float(gamma, "gamma", low=0.0, low_open=True)
        w = torch.randn(n_classes, in_dim, subspace_dim, generator=generator)
        self.bases = nn.Parameter(qr_retraction(w, torch.zeros_like(w)))
        self.bases.manifold = GRASSMANN

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(n, d)`` -> logits ``(n, C)``."""
        if x.ndim != 2 or x.shape[1] != self.bases.shape[1]:
            raise ValueError(f"x must have shape (n, {self.bases.shape[1]}), got {tuple(x.shape)}")
        x_hat = F.normalize(x, dim=1)
        coef = torch.einsum("nd,cdk->nck", x_hat, self.bases)
        return self.gamma * torch.linalg.vector_norm(coef, dim=2)


class GrassmannSGD(torch.optim.Optimizer):
    """SGD that moves Grassmann-tagged parameters along geodesics and the others as usual.

    A parameter ``p`` with ``p.manifold == "grassmann"`` (shape ``(..., d, k)``, orthonormal columns)
    gets ``m <- momentum * m + G`` (Euclidean gradient, no weight decay), then
    ``p <- grassmann_exp(p, grassmann_tangent(p, m), -lr)`` and, every ``reorth_every`` steps,
    ``p <- qr(p).Q``. Every other parameter gets plain SGD with momentum and weight decay
    (``torch.optim.SGD`` semantics without dampening or Nesterov).

    Parameters
    ----------
    params : iterable of parameters or parameter groups
    lr : float
    momentum : float in [0, 1), default 0.9
    weight_decay : float >= 0, default 0.0 (Euclidean parameters only)
    reorth_every : int >= 1, default 5
    """

    def __init__(self, params: Iterable[Any], lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 reorth_every: int = 5) -> None:
        lr = check_float(lr, "lr", low=0.0, low_open=True)
        momentum = check_float(momentum, "momentum", low=0.0, high=1.0)
        if momentum >= 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        weight_decay = check_float(weight_decay, "weight_decay", low=0.0)
        reorth_every = check_int(reorth_every, "reorth_every", low=1)
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, reorth_every=reorth_every))

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                grad = p.grad
                on_grassmann = getattr(p, "manifold", None) == GRASSMANN
                if not on_grassmann and group["weight_decay"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                if group["momentum"]:
                    buf = state.get("momentum_buffer")
                    buf = grad.clone() if buf is None else buf.mul_(group["momentum"]).add_(grad)
                    state["momentum_buffer"] = buf
                    grad = buf
                if not on_grassmann:
                    p.add_(grad, alpha=-group["lr"])
                    continue
                state["step"] = state.get("step", 0) + 1
                new = grassmann_exp(p, grassmann_tangent(p, grad), -group["lr"])
                if state["step"] % group["reorth_every"] == 0:
                    new = qr_retraction(new, torch.zeros_like(new))
                p.copy_(new)
        return loss


class _Network(nn.Module):
    """MLP feature extractor (Linear-ReLU blocks) followed by a classification head."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], head: nn.Module) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_dim, width), nn.ReLU()]
            in_dim = width
        self.features = nn.Sequential(*layers)
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _cross_entropy(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y)


class GrassmannClassifier(ClassifierMixin, GraphrecEstimator):
    """MLP classifier with a Grassmann class-representation head (or a linear softmax baseline).

    Parameters
    ----------
    head : {"gcr", "linear"}, default "gcr"
        ``"gcr"``: :class:`GrassmannClassHead`; ``"linear"``: ``nn.Linear`` logits (vector class
        representation), the baseline of the paper.
    subspace_dim : int, default 8
        ``k`` of the GCR head (``<= hidden[-1]``, or ``n_features`` without hidden layers).
    gamma : float, default 25.0
        GCR logit scale.
    hidden : tuple of int, default (64,)
        Widths of the MLP feature extractor (``()``: the head acts on the raw features).
    n_epochs : int, default 60
    batch_size : int, default 64
    lr : float, default 0.1
        Learning rate of :class:`GrassmannSGD` (cosine-annealed to 0), for both heads.
    momentum : float, default 0.9
    weight_decay : float, default 1e-4
        On Euclidean parameters only.
    reorth_every : int, default 5
    random_state : int, Generator or None
    device : str, default "cpu"
    verbose : bool, default False

    Attributes
    ----------
    classes_ : ndarray (C,)
        Sorted class labels seen in ``fit``.
    n_features_in_ : int
    network_ : nn.Module
        Trained feature extractor + head (``network_.head.bases`` for ``head="gcr"``).
    loss_ : float
        Last epoch's mean training loss.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> X, y = make_blobs(120, 4, centers=3, random_state=0)
    >>> clf = GrassmannClassifier(subspace_dim=2, hidden=(8,), n_epochs=20, random_state=0).fit(X, y)
    >>> bool(clf.score(X, y) > 0.9)
    True
    """

    def __init__(
        self, head: str = "gcr", subspace_dim: int = 8, gamma: float = 25.0, hidden: tuple[int, ...] = (64,), *,
        n_epochs: int = 60, batch_size: int = 64, lr: float = 0.1, momentum: float = 0.9,
        weight_decay: float = 1e-4, reorth_every: int = 5, random_state: Any = None, device: str = "cpu",
        verbose: bool = False,
    ) -> None:
        self.head = head
        self.subspace_dim = subspace_dim
        self.gamma = gamma
        self.hidden = hidden
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.reorth_every = reorth_every
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _check_params(self, n_features: int) -> tuple[int, ...]:
        check_choice(self.head, "head", ("gcr", "linear"))
        if not isinstance(self.hidden, (tuple, list)):
            raise TypeError(f"hidden must be a tuple of layer widths, got {type(self.hidden).__name__}")
        hidden = tuple(check_int(h, "hidden[i]", low=1) for h in self.hidden)
        feat_dim = hidden[-1] if hidden else n_features
        check_int(self.subspace_dim, "subspace_dim", low=1, high=feat_dim)
        check_float(self.gamma, "gamma", low=0.0, low_open=True)
        check_int(self.n_epochs, "n_epochs", low=1)
        check_int(self.batch_size, "batch_size", low=1)
        return hidden

    def fit(self, X: Any, y: Any) -> "GrassmannClassifier":
        """Train on features ``X`` ``(n, d)`` and labels ``y`` ``(n,)`` (any hashable labels)."""
        X = check_array(X, "X", ndim=2, min_rows=2)
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
        hidden = self._check_params(X.shape[1])
        self.classes_, codes = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError(f"y must hold at least 2 classes, got {self.classes_.size}")
        device = check_device(self.device)
        rng = check_random_state(self.random_state)
        gen = torch_generator(rng)
        feat_dim = hidden[-1] if hidden else X.shape[1]
        n_classes = int(self.classes_.size)
        if self.head == "gcr":
            head: nn.Module = GrassmannClassHead(feat_dim, n_classes, self.subspace_dim, self.gamma, generator=gen)
        else:
            head = nn.Linear(feat_dim, n_classes)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(0, 2**31 - 1)))
            network = _Network(X.shape[1], hidden, head)
        optimizer = GrassmannSGD(network.parameters(), lr=self.lr, momentum=self.momentum,
                                 weight_decay=self.weight_decay, reorth_every=self.reorth_every)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, int(self.n_epochs))
        x_t = torch.as_tensor(X, dtype=torch.float32, device=device)
        y_t = torch.as_tensor(codes, dtype=torch.long, device=device)
        trainer = Trainer(network, optimizer, _cross_entropy, max_epochs=int(self.n_epochs), device=device,
                          scheduler=scheduler, random_state=int(rng.integers(0, 2**31 - 1)), verbose=self.verbose)
        result = trainer.fit(lambda epoch, g: tensor_batches(x_t, y_t, batch_size=int(self.batch_size), generator=g))
        self.network_ = network.eval()
        self.n_features_in_ = X.shape[1]
        self.loss_ = float(result.history[-1]["train_loss"])
        logger.info("GrassmannClassifier(head=%s): final loss %.4g", self.head, self.loss_)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits ``(n, C)`` of the rows of ``X``."""
        X = self._check_fitted_input(X)
        param = next(self.network_.parameters())
        with torch.no_grad():
            out = self.network_(torch.as_tensor(X, dtype=param.dtype, device=param.device))
        return out.double().cpu().numpy()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Softmax of the logits, ``(n, C)``."""
        z = self.decision_function(X)
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Most likely class label of each row of ``X``."""
        scores = self.decision_function(X)
        return self.classes_[scores.argmax(1)]


def _blobs(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), 20)
    return rng.standard_normal((60, 5)) + 3 * np.eye(5)[y], y


register_estimator(
    "GrassmannClassifier",
    EstimatorSpec(
        factory=lambda: GrassmannClassifier(subspace_dim=2, hidden=(8,), n_epochs=3, random_state=0),
        make_input=lambda seed: _blobs(seed),
        output=lambda est, args: est.decision_function(args[0]),
        bad_inputs={
            "nan": lambda: (np.full((6, 3), np.nan), np.arange(6) % 2),
            "y_length": lambda: (np.ones((6, 3)), np.arange(5) % 2),
            "one_class": lambda: (np.random.default_rng(0).standard_normal((6, 3)), np.zeros(6)),
        },
        fitted_method="predict",
    ),
)
