"""OptFS: one learnable gate per feature value, learned by continuation, then rewind and retrain.

Search (``search_epochs`` epochs): each feature value ``i`` has a gate logit ``m_i`` (init
``gate_init``); the embedding (and first-order weight) of ``i`` is scaled by the soft gate
``g_i = sigmoid(tau m_i) / sigmoid(gate_init)``, with the temperature ``tau_e = tau_final^(e / (T-1))``
rising geometrically from 1 to ``tau_final`` over the epochs (learning by continuation). The loss is
``BCE + reg_lambda * sum_i sigmoid(tau m_i)`` over all ``N`` values. Because every interaction is
built from gated embeddings, the gate of an interaction is the product ``g_i g_j``.

Retrain: the hard gate ``1[m_i > 0]`` is frozen, the network (embeddings and all layers, not the
gates) is rewound to its state at the start of search epoch ``rewind_epoch`` and retrained with
BCE only and early stopping on validation AUC. Differences from the official code (notes 6.1-6.2):
IPNN is gated like every backbone, the hard gate is ``1[m > 0]`` without the ``1/sigmoid(m0)``
factor (the rewound weights were trained with ``g ~ 1``), and the gate logits take plain SGD by
default (``gate_optimizer``) where the official code gives them their own Adam: Adam divides each
gate's step by that gate's gradient RMS, so a value seen in few batches feels the penalty at full
strength and is pruned for being rare; under SGD the step is ``-(reg_lambda + dL/dg_i)`` times the
common factor ``tau sigmoid'(tau m_i)``, so the penalty is weighed against the value's data
gradient at every temperature (a gate still survives only if it has not reached 0 before
``tau |m_i|`` freezes it).

Two options beyond the paper (defaults = the paper): ``warmup_epochs`` trains the network with the
gates fixed at ``m0`` and no penalty before the continuation starts. The paper's search epochs are
passes over tens of millions of rows, so its gates are decided on a trained network; on a small
table (Frappe: 60 steps per epoch) the gates would otherwise be decided in the first few epochs,
before the network has learned which values matter (e.g. the user x item interactions), and the
penalty prunes the values the young network does not use yet. ``freeze_network`` then searches
the gates alone on the warmed-up network: under the joint search ``g_i e_i`` is invariant under
``(g_i, e_i) -> (g_i / c, c e_i)``, so an embedding can grow as its gate shrinks; with the network
frozen a gate feels exactly the loss its value's removal costs. The frozen search normalises the
soft gate at the current temperature (``sigmoid(tau m) / sigmoid(tau m0)``) so the temperature ramp
alone does not rescale the frozen embeddings.

Reference: Lyu et al., "Optimizing feature set for click-through rate prediction", WWW 2023.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch
from torch import nn

from graphrec.ctr.estimators import _CTRBase
from graphrec.utils.validation import check_bool, check_choice, check_float, check_int

__all__ = ["OptFS", "FeatureGate"]


class FeatureGate(nn.Module):
    """Per-feature-value gate. ``forward(x, e)``: x (batch, F) ids, e (batch, F, d) -> (e * g, g (batch, F)).

    The soft gate is ``sigmoid(tau m) / sigmoid(m0)`` (the paper: 1 at ``tau = 1``), or with
    ``tau_scaled=True`` ``sigmoid(tau m) / sigmoid(tau m0)``: 1 at every temperature for a gate that
    has not moved, so a frozen network sees no rescaling from the temperature ramp alone.
    """

    def __init__(self, n_features: int, gate_init: float, tau_scaled: bool = False) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.full((n_features,), float(gate_init)))
        self.gate_init = float(gate_init)
        self.tau_scaled = tau_scaled
        self.tau = 1.0
        self.hard = False

    def _soft(self, m: torch.Tensor) -> torch.Tensor:
        t0 = self.tau * self.gate_init if self.tau_scaled else self.gate_init
        return torch.sigmoid(self.tau * m) / (1.0 / (1.0 + math.exp(-t0)))

    def gates(self) -> torch.Tensor:
        """Gate of every feature value, shape (n_features,): soft during search, 0/1 once hard."""
        if self.hard:
            return (self.logits > 0).to(self.logits.dtype)
        return self._soft(self.logits)

    def penalty(self) -> torch.Tensor:
        """``sum_i sigmoid(tau m_i)``: the L1 norm of the soft gates."""
        return torch.sigmoid(self.tau * self.logits).sum()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = (self.logits[x] > 0).to(e.dtype) if self.hard else self._soft(self.logits[x])
        return e * g.unsqueeze(-1), g


class OptFS(_CTRBase):
    """Feature-set optimisation on a CTR backbone (Lyu et al., WWW 2023).

    Parameters
    ----------
    backbone : {"fm", "deepfm", "dcn", "ipnn"}, default="deepfm"
    reg_lambda : float >= 0, default=3e-4
        Weight of the gate sparsity penalty ``sum_i sigmoid(tau m_i)``. Not transferable across
        data sets (the data gradient of a gate scales with its value's frequency); tune it on the
        kept ratio against validation AUC.
    tau_final : float >= 1, default=200.0
        Temperature of the last search epoch.
    search_epochs : int >= 1, default=10
        Epochs of the continuation (the temperature ramp with the penalty).
    warmup_epochs : int >= 0, default=0
        Epochs before the continuation in which the network trains with the gates fixed at
        ``gate_init`` (``g = 1``) and no penalty (0 = the paper).
    freeze_network : bool, default=False
        Search the gates alone during the continuation: the network keeps its warm-up weights
        and the soft gate becomes ``sigmoid(tau m) / sigmoid(tau m0)`` (1 for a gate that has not
        moved, at every temperature). Needs ``warmup_epochs >= 1``. False = the paper's joint search.
    rewind_epoch : int, default=1
        Epoch of the search (warm-up epochs included) whose starting weights the retrain restarts
        from (0 = the initial weights).
    gate_init : float > 0, default=0.5
        Initial gate logit ``m0``.
    gate_optimizer : {"sgd", "adam"}, default="sgd"
        Update rule of the gate logits (the network weights always take Adam). The official code
        gives the gates their own optimiser of the network's type (Adam by default). With Adam
        each gate's step is its gradient divided by its own RMS, so a value that rarely gets a data
        gradient sees the penalty at full strength and is pruned for being rare, whatever
        ``reg_lambda``; with SGD the penalty gradient ``reg_lambda * tau * sigmoid'(tau m)`` meets
        the data gradient on one scale, so a gate moves down only where ``reg_lambda`` outweighs
        its loss gradient (usefulness, not frequency).
    gate_lr : float or None, default=10.0
        Learning rate of the gate logits (``None``: ``lr``). SGD on gates needs a large one: the
        data gradient of a gate is averaged over the batch, so it is about its value's frequency
        times the per-row effect.
    embed_dim, hidden, dropout, lr, l2, batch_size, max_epochs, patience, min_count, categorical,
    numeric, valid_fraction, device, random_state, verbose
        As in :class:`~graphrec.ctr.CTRClassifier`; ``max_epochs`` and ``patience`` apply to the retrain.

    Attributes
    ----------
    gate_logits_ : ndarray of float32, shape (n_features,)
        Learned ``m``.
    feature_mask_ : ndarray of bool, shape (n_features,)
        Kept feature values (``m > 0``), indexed by global id (``schema_``).
    selected_features_ : dict of str -> list
        Kept raw values per field (``"<OOV>"`` for a kept OOV id).
    feature_ratio_ : float
        Kept share of all feature values (OOV ids included).
    search_history_, history_ : list of dict
        Per-epoch records of the search (warm-up included) and of the retrain.

    Examples
    --------
    >>> from graphrec.datasets.generators import make_ctr
    >>> X, y = make_ctr(n_rows=2000, random_state=0).split("train")
    >>> model = OptFS("fm", search_epochs=2, max_epochs=2, random_state=0).fit(X, y)
    >>> 0.0 <= model.feature_ratio_ <= 1.0
    True
    """

    def __init__(self, backbone: str = "deepfm", *, reg_lambda: float = 3e-4, tau_final: float = 200.0,
                 search_epochs: int = 10, warmup_epochs: int = 0, freeze_network: bool = False,
                 rewind_epoch: int = 1, gate_init: float = 0.5,
                 gate_optimizer: str = "sgd", gate_lr: float | None = 10.0, embed_dim: int = 16,
                 hidden: Sequence[int] = (400, 400, 400),
                 dropout: float = 0.0, lr: float = 1e-3, l2: float = 1e-6, batch_size: int = 1024,
                 max_epochs: int = 20, patience: int | None = 2, min_count: int = 1,
                 categorical: list[str] | None = None, numeric: list[str] | None = None,
                 valid_fraction: float = 0.1, device: Any = "cpu", random_state: Any = None,
                 verbose: bool | int = False) -> None:
        self.backbone = backbone
        self.reg_lambda = reg_lambda
        self.tau_final = tau_final
        self.search_epochs = search_epochs
        self.warmup_epochs = warmup_epochs
        self.freeze_network = freeze_network
        self.rewind_epoch = rewind_epoch
        self.gate_init = gate_init
        self.gate_optimizer = gate_optimizer
        self.gate_lr = gate_lr
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

    def fit(self, X: pd.DataFrame, y: Any, eval_set: tuple[pd.DataFrame, Any] | None = None) -> "OptFS":
        """Search the gates on ``(X, y)``, rewind, retrain with the kept feature values."""
        self._check_common()
        lam = check_float(self.reg_lambda, "reg_lambda", low=0.0)
        tau_final = check_float(self.tau_final, "tau_final", low=1.0)
        n_search = check_int(self.search_epochs, "search_epochs", low=1)
        n_warm = check_int(self.warmup_epochs, "warmup_epochs", low=0)
        check_bool(self.freeze_network, "freeze_network")
        if self.freeze_network and n_warm == 0:
            raise ValueError("freeze_network=True needs warmup_epochs >= 1: with a frozen untrained network the "
                             "gates would be searched on random embeddings")
        rewind = check_int(self.rewind_epoch, "rewind_epoch", low=0, high=n_warm + n_search - 1)
        gate_init = check_float(self.gate_init, "gate_init", low=0.0, low_open=True)
        gate_sgd = check_choice(self.gate_optimizer, "gate_optimizer", ("sgd", "adam")) == "sgd"
        gate_lr = float(self.lr) if self.gate_lr is None else check_float(self.gate_lr, "gate_lr", low=0.0,
                                                                          low_open=True)
        data = self._prepare(X, y, eval_set)
        net = self._new_net()
        gate = FeatureGate(self.schema_.n_features_, gate_init, tau_scaled=bool(self.freeze_network))
        gate = net.mask = gate.to(self._device)
        snapshot: dict[str, Any] = {}
        weights = [p for n, p in net.named_parameters() if not n.startswith("mask.")]

        def on_epoch(epoch: int) -> None:
            step = epoch - n_warm  # continuation step; < 0 during the warm-up (gates frozen at m0, no penalty)
            gate.logits.requires_grad_(step >= 0)
            for p in weights:
                p.requires_grad_(not (self.freeze_network and step >= 0))
            gate.tau = 1.0 if step < 0 else tau_final ** (step / (n_search - 1)) if n_search > 1 else tau_final
            if epoch == rewind:
                snapshot.update({k: v.detach().clone() for k, v in net.state_dict().items()
                                 if not k.startswith("mask.")})

        params = self._net_params(net) + [{"params": [gate.logits], "weight_decay": 0.0, "lr": gate_lr,
                                           "sgd": gate_sgd}]

        def penalty() -> torch.Tensor:  # none in the warm-up, while the gates are frozen
            return lam * gate.penalty() if gate.logits.requires_grad else gate.logits.new_zeros(())

        search = self._train(net, data, params, max_epochs=n_warm + n_search, early_stop=False,
                             penalty=penalty if lam > 0 else None, on_epoch=on_epoch)
        gate.hard = True
        gate.logits.requires_grad_(False)
        for p in weights:
            p.requires_grad_(True)
        net.load_state_dict({**net.state_dict(), **snapshot})
        result = self._train(net, data, self._net_params(net), max_epochs=int(self.max_epochs), early_stop=True)
        self.net_ = net
        self.search_history_, self.history_, self.best_epoch_ = search.history, result.history, result.best_epoch
        self.gate_logits_ = gate.logits.detach().cpu().numpy().copy()
        self.feature_mask_ = self.gate_logits_ > 0
        self.feature_ratio_ = float(self.feature_mask_.mean())
        self.selected_features_ = {}
        for j, name in enumerate(self.schema_.fields_):
            lo = self.schema_.offsets_[j]
            kept = self.feature_mask_[lo:lo + self.schema_.field_dims_[j]]
            values = ["<OOV>"] + list(self.schema_.vocab_[name])
            self.selected_features_[name] = [v for v, k in zip(values, kept) if k]
        return self

    @property
    def n_embedding_params_(self) -> int:
        """Embedding entries of the kept feature values: ``kept rows x embed_dim``."""
        self._check_is_fitted()
        return int(self.feature_mask_.sum()) * int(self.embed_dim)
