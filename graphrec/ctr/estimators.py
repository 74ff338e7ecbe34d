"""``CTRClassifier``: a CTR backbone (FM, DeepFM, DCN, IPNN) trained with early stopping on valid AUC.

The shared machinery (schema fitting on the training rows only, validation split, the
:class:`graphrec.train.Trainer` loop, batched prediction) lives in :class:`_CTRBase`, which the
search methods :class:`~graphrec.ctr.OptFS` and :class:`~graphrec.ctr.DNIS` extend.
"""
from __future__ import annotations

import logging
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
import torch
import torch.nn.functional as F

from graphrec.base import GraphrecEstimator
from graphrec.ctr.backbones import BACKBONES, CTRNet
from graphrec.ctr.schema import CTRSchema
from graphrec.metrics import log_loss, roc_auc
from graphrec.train import DistributedTrainer, Trainer, init_process_group, tensor_batches
from graphrec.train.rng import isolated_rng
from graphrec.utils.validation import check_bool, check_choice, check_device, check_float, check_int, check_random_state

__all__ = ["CTRClassifier"]

logger = logging.getLogger(__name__)


def check_labels01(y: Any, n: int, name: str = "y") -> np.ndarray:
    """Labels as float32 (n,), each 0 or 1; anything else raises ``ValueError``."""
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match X, got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
        raise TypeError(f"{name} must be numeric 0/1 labels, got dtype {arr.dtype}")
    bad = ~np.isin(arr, (0, 1))
    if bad.any():
        raise ValueError(f"{name} must hold only 0 and 1, got {arr[bad][0]!r} at position {int(np.flatnonzero(bad)[0])}")
    return arr.astype(np.float32)


class AdamWithSGDGroups(torch.optim.Adam):
    """Adam on every parameter group except those marked ``{"sgd": True}``, which take ``p -= lr * grad``.

    OptFS keeps its gate logits in such a group: Adam divides each gate's gradient by its own running
    RMS, so a value that rarely gets a data gradient sees the sparsity penalty at full strength
    (about ``lr`` per step whatever ``reg_lambda`` is) and dies for being rare; plain SGD keeps the
    penalty and the data gradient on one scale. Weight decay is not applied to the SGD groups.
    """

    @torch.no_grad()
    def step(self, closure: Callable | None = None) -> Any:
        groups = self.param_groups
        self.param_groups = [g for g in groups if not g.get("sgd", False)]
        try:
            loss = super().step(closure)
        finally:
            self.param_groups = groups
        for group in groups:
            if group.get("sgd", False):
                for p in group["params"]:
                    if p.grad is not None:
                        p.add_(p.grad, alpha=-group["lr"])
        return loss


class _CTRBase(GraphrecEstimator):
    """Shared fit/predict plumbing of the CTR estimators (not public)."""

    distributed = False  # CTRClassifier's parameter; the searches (OptFS, DNIS) run in one process
    # CTRClassifier's parameters; a subclass that does not take them keeps these (off) values
    batch_norm = False
    embed_l2 = 0.0
    lr_decay = 1.0

    def _check_common(self) -> None:
        check_choice(self.backbone, "backbone", BACKBONES)
        check_int(self.embed_dim, "embed_dim", low=1)
        if isinstance(self.hidden, (str, bytes)) or not isinstance(self.hidden, (Sequence, np.ndarray)):
            raise TypeError(f"hidden must be a sequence of layer widths, e.g. (400, 400), got {self.hidden!r}")
        if any(isinstance(h, bool) or not isinstance(h, numbers.Integral) for h in self.hidden):
            raise TypeError(f"hidden must list integer layer widths, e.g. (400, 400), got {self.hidden!r}")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden must list positive layer widths, got {self.hidden!r}")
        if check_float(self.dropout, "dropout", low=0.0, high=1.0) == 1.0:
            raise ValueError("dropout must be in [0, 1), got 1.0")
        check_float(self.lr, "lr", low=0.0, low_open=True)
        check_float(self.l2, "l2", low=0.0)
        check_bool(self.batch_norm, "batch_norm")
        check_float(self.embed_l2, "embed_l2", low=0.0)
        check_float(self.lr_decay, "lr_decay", low=0.0, high=1.0, low_open=True)
        check_int(self.batch_size, "batch_size", low=1)
        check_int(self.max_epochs, "max_epochs", low=1)
        if self.patience is not None:
            check_int(self.patience, "patience", low=0)
        if check_float(self.valid_fraction, "valid_fraction", low=0.0, high=1.0, low_open=True) == 1.0:
            raise ValueError("valid_fraction must be in (0, 1), got 1.0")
        self._device = check_device(self.device)
        check_bool(self.distributed, "distributed")

    # ------------------------------------------------------------------ data
    def _prepare(self, X: pd.DataFrame, y: Any, eval_set: tuple | None) -> tuple[torch.Tensor, ...]:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        if len(X) == 0:
            raise ValueError("X has no rows; expected at least one training row")
        y = check_labels01(y, len(X))
        if self.categorical is None and self.numeric is None:
            numeric = [c for c in X.columns if pd.api.types.is_float_dtype(X[c])]
            categorical = [c for c in X.columns if c not in numeric]
        elif self.numeric is None:  # the columns not named categorical are numeric, and vice versa
            categorical = list(self.categorical)
            numeric = [c for c in X.columns if c not in categorical]
        elif self.categorical is None:
            numeric = list(self.numeric)
            categorical = [c for c in X.columns if c not in numeric]
        else:
            categorical, numeric = list(self.categorical), list(self.numeric)
        self.rng_ = check_random_state(self.random_state)
        if eval_set is None:
            perm = self.rng_.permutation(len(X))
            n_val = max(1, int(round(self.valid_fraction * len(X))))
            if n_val >= len(X):
                raise ValueError(
                    f"X has {len(X)} row(s): too few to hold out valid_fraction={self.valid_fraction} of them for "
                    "early stopping and train on the rest; pass more rows or eval_set=(X_valid, y_valid)"
                )
            val_idx, tr_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
            X, Xv, y, yv = X.iloc[tr_idx], X.iloc[val_idx], y[tr_idx], y[val_idx]
        else:
            if not (isinstance(eval_set, tuple) and len(eval_set) == 2):
                raise TypeError("eval_set must be a tuple (X_valid, y_valid) or None")
            Xv, yv = eval_set
            if not isinstance(Xv, pd.DataFrame):
                raise TypeError(f"eval_set[0] must be a pandas DataFrame, got {type(Xv).__name__}")
            yv = check_labels01(yv, len(Xv), "eval_set[1]")
        if len(np.unique(yv)) < 2:
            raise ValueError("the validation labels hold a single class; valid AUC (early stopping) needs both")
        self.schema_ = CTRSchema(categorical, numeric, self.min_count).fit(X)
        self.feature_names_in_ = np.asarray(self.schema_.fields_, dtype=object)
        dev = self._device
        as_t = lambda a, dt: torch.as_tensor(a, dtype=dt, device=dev)  # noqa: E731
        return (as_t(self.schema_.transform(X), torch.long), as_t(y, torch.float32),
                as_t(self.schema_.transform(Xv), torch.long), as_t(yv, torch.float32))

    def _new_net(self) -> CTRNet:
        """A freshly initialised network, its weights drawn from a seed of ``rng_``."""
        with isolated_rng(int(self.rng_.integers(0, 2**31 - 1)), torch.device("cpu")):
            net = CTRNet(self.backbone, self.schema_.n_features_, len(self.schema_.fields_), int(self.embed_dim),
                         tuple(int(h) for h in self.hidden), float(self.dropout), batch_norm=self.batch_norm)
        return net.to(self._device)

    @torch.no_grad()
    def _logits(self, net: CTRNet, x: torch.Tensor) -> torch.Tensor:
        was = net.training
        net.eval()
        out = torch.cat([net(x[i:i + 8192]) for i in range(0, x.shape[0], 8192)])
        net.train(was)
        return out

    def _embedding_penalty(self, net: CTRNet) -> torch.Tensor:
        """``embed_l2 / 2 * (||E||_F^2 + ||w||^2)`` over the whole embedding table E (n_features, d) and the
        first-order weights w (n_features, 1) of FM / DeepFM: FuxiCTR's ``embedding_regularizer``."""
        tables = [net.embedding.weight] + ([net.linear.weight] if hasattr(net, "linear") else [])
        return 0.5 * float(self.embed_l2) * sum(t.pow(2).sum() for t in tables)

    def _valid_scores(self, net: CTRNet, xv: torch.Tensor, yv: torch.Tensor) -> dict[str, float]:
        p = torch.sigmoid(self._logits(net, xv)).cpu().numpy().astype(np.float64)
        y = yv.cpu().numpy()
        return {"valid_auc": roc_auc(y, p), "valid_logloss": log_loss(y, p)}

    def _train(self, net: CTRNet, data: tuple[torch.Tensor, ...], params: list[dict], *, max_epochs: int,
               early_stop: bool, penalty: Callable[[], torch.Tensor] | None = None,
               on_epoch: Callable[[int], None] | None = None, loss_fn: Callable | None = None,
               batches: Callable | None = None) -> Any:
        """One Trainer run of ``net`` on ``data = (x, y, x_valid, y_valid)``; returns the TrainResult."""
        x, y, xv, yv = data
        if self.batch_norm and x.shape[0] < 2:
            raise ValueError(f"batch_norm=True needs at least 2 training rows, got {x.shape[0]}")

        def bce(model: CTRNet, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            loss = F.binary_cross_entropy_with_logits(model(batch[0]), batch[1])
            if self.embed_l2 > 0:
                loss = loss + self._embedding_penalty(net)
            return loss + penalty() if penalty is not None else loss

        def train_batches(epoch: int, generator: torch.Generator):
            if on_epoch is not None:
                on_epoch(epoch)
            if batches is not None:
                return batches(epoch, generator)
            # a training batch of one row has no batch statistics: leave it out (a different row every epoch)
            drop_last = bool(self.batch_norm) and x.shape[0] % int(self.batch_size) == 1
            return tensor_batches(x, y, batch_size=int(self.batch_size), generator=generator, drop_last=drop_last)

        trainer_cls = Trainer
        if self.distributed:
            init_process_group()
            trainer_cls = DistributedTrainer
        optimizer = AdamWithSGDGroups(params, lr=float(self.lr))
        scheduler = None  # lr x lr_decay after every evaluation without a better valid AUC (FuxiCTR's recipe)
        if early_stop and self.lr_decay < 1.0:
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=float(self.lr_decay),
                                                                   patience=0, threshold=0.0)
        trainer = trainer_cls(
            net, optimizer, loss_fn or bce, max_epochs=max_epochs, scheduler=scheduler,
            device=self._device, eval_fn=lambda m: self._valid_scores(m, xv, yv),
            monitor="valid_auc" if early_stop else None, mode="max",
            patience=self.patience if early_stop else None,
            random_state=int(self.rng_.integers(0, 2**31 - 1)), verbose=self.verbose,
        )
        return trainer.fit(train_batches)

    def _net_params(self, net: CTRNet) -> list[dict]:
        return [{"params": [p for n, p in net.named_parameters() if not n.startswith("mask.")],
                 "weight_decay": float(self.l2)}]

    # ------------------------------------------------------------------ predict
    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Logits, float64 of shape (n_rows,)."""
        self._check_is_fitted()
        x = torch.as_tensor(self.schema_.transform(X), device=self._device)
        return self._logits(self.net_, x).cpu().numpy().astype(np.float64)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Click probabilities, shape (n_rows, 2): columns P(y=0), P(y=1)."""
        p = expit(self.decision_function(X))  # no overflow for logits beyond +-709
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Hard 0/1 labels, int64 of shape (n_rows,)."""
        return (self.decision_function(X) > 0).astype(np.int64)

    def score(self, X: pd.DataFrame, y: Any) -> float:
        """ROC AUC of :meth:`predict_proba` on ``(X, y)``."""
        return roc_auc(check_labels01(y, len(X)), self.predict_proba(X)[:, 1])

    @property
    def n_embedding_params_(self) -> int:
        """Embedding-table entries in use (non-zero for DNIS, kept rows x d for OptFS, all otherwise)."""
        self._check_is_fitted()
        return int(self.schema_.n_features_ * int(self.embed_dim))


class CTRClassifier(_CTRBase):
    """A CTR backbone trained with Adam and early stopping on validation AUC.

    Parameters
    ----------
    backbone : {"fm", "deepfm", "dcn", "ipnn"}, default="deepfm"
    embed_dim : int, default=16
        Embedding size ``d`` shared by every field.
    hidden : sequence of int, default=(400, 400, 400)
        MLP widths (DeepFM, DCN, IPNN).
    dropout : float in [0, 1), default=0.0
    batch_norm : bool, default=False
        BatchNorm1d between every hidden Linear layer of the MLP and its ReLU (DeepFM, DCN, IPNN).
    lr, l2 : float, default=1e-3, 1e-6
        Adam learning rate and weight decay (on every network weight).
    embed_l2 : float >= 0, default=0.0
        Adds ``embed_l2 / 2 * (||E||_F^2 + ||w||^2)`` to every batch loss: L2 on the whole embedding
        table ``E`` (n_features, embed_dim) and the first-order weights ``w`` (FM / DeepFM), rows
        absent from the batch included (FuxiCTR's ``embedding_regularizer``).
    lr_decay : float in (0, 1], default=1.0
        After every epoch whose valid AUC is not better than the best so far, multiply the learning
        rate by ``lr_decay`` and go on from the current weights (``ReduceLROnPlateau``, patience 0;
        FuxiCTR uses 0.1). 1.0 keeps the learning rate constant.
    batch_size, max_epochs : int, default=1024, 20
    patience : int or None, default=2
        Evaluations without a better valid AUC before stopping; the best epoch's weights are kept.
    min_count : int, default=1
        Categorical values seen fewer times in the training rows map to the field's OOV id.
    categorical, numeric : list of str or None
        Field roles; ``None`` for both: float columns are numeric, every other column categorical.
        ``None`` for one of them: it takes every column the other does not name.
    valid_fraction : float, default=0.1
        Share of ``X`` held out for early stopping when ``fit`` gets no ``eval_set``.
    device, random_state, verbose
        As everywhere in graphrec.
    distributed : bool, default=False
        Train on every rank of an initialised ``torch.distributed`` group (e.g. under ``torchrun``):
        each rank takes a slice of every batch (:class:`graphrec.train.DistributedTrainer`); without
        dropout the weights equal the one-process run's up to floating-point order.

    Attributes
    ----------
    schema_ : CTRSchema
    net_ : CTRNet
    history_ : list of dict
        Per-epoch ``train_loss``, ``valid_auc``, ``valid_logloss``.
    best_epoch_ : int
        0-based epoch whose weights were kept.

    Examples
    --------
    >>> from graphrec.datasets.generators import make_ctr
    >>> table = make_ctr(n_rows=2000, random_state=0)
    >>> X, y = table.split("train")
    >>> clf = CTRClassifier("fm", max_epochs=2, random_state=0).fit(X, y)
    >>> clf.predict_proba(X).shape
    (1600, 2)

    References
    ----------
    Guo et al., "DeepFM: a factorization-machine based neural network for CTR prediction", IJCAI 2017.
    """

    def __init__(self, backbone: str = "deepfm", *, embed_dim: int = 16, hidden: Sequence[int] = (400, 400, 400),
                 dropout: float = 0.0, lr: float = 1e-3, l2: float = 1e-6, batch_size: int = 1024,
                 max_epochs: int = 20, patience: int | None = 2, min_count: int = 1,
                 categorical: list[str] | None = None, numeric: list[str] | None = None,
                 valid_fraction: float = 0.1, device: Any = "cpu", random_state: Any = None,
                 verbose: bool | int = False, distributed: bool = False, batch_norm: bool = False,
                 embed_l2: float = 0.0, lr_decay: float = 1.0) -> None:
        self.backbone = backbone
        self.embed_dim = embed_dim
        self.hidden = hidden
        self.dropout = dropout
        self.lr = lr
        self.l2 = l2
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.min_count = min_count
        self.categorical = categorical
        self.numeric = numeric
        self.valid_fraction = valid_fraction
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.distributed = distributed
        self.batch_norm = batch_norm
        self.embed_l2 = embed_l2
        self.lr_decay = lr_decay

    def fit(self, X: pd.DataFrame, y: Any, eval_set: tuple[pd.DataFrame, Any] | None = None) -> "CTRClassifier":
        """Fit on ``X`` (n_rows, n_fields) and 0/1 labels ``y`` (n_rows,); early-stop on ``eval_set``."""
        self._check_common()
        data = self._prepare(X, y, eval_set)
        self.net_ = self._new_net()
        result = self._train(self.net_, data, self._net_params(self.net_), max_epochs=int(self.max_epochs),
                             early_stop=True)
        self.history_, self.best_epoch_ = result.history, result.best_epoch
        return self
