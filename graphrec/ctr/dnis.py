"""DNIS: soft dimension selection per frequency block, global magnitude pruning, masked retrain.

1. Warm start: the backbone is trained as by :class:`~graphrec.ctr.CTRClassifier`.
2. Search: feature values are ranked by training frequency and cut into blocks (``block_fractions``
   of the vocabulary, most frequent first); a soft selection matrix ``alpha in [0,1]^(K x d)``
   (init 1) scales the embeddings, ``e'_i = e_i * alpha[b(i)]``. Each step takes one training batch
   (Adam on the embedding parameters only) and one VALIDATION batch: the gradient of
   ``BCE_valid + alpha_l1 * |alpha|_1`` w.r.t. ``alpha``, each row divided by its mean absolute value,
   an SGD step of ``alpha_lr`` and clamping to [0, 1] (first-order bi-level update). Test rows are
   never seen.
3. Pruning: ``alpha`` is folded into the table (``E <- E * alpha[b]``) and the ``target_params``
   entries of largest magnitude are kept over the whole table (global, per element).
4. Retrain all weights with the pruned entries held at zero (the forward pass multiplies the table
   by the 0/1 mask, so they never regrow; the official notebook forgets this, notes 6.13).

Reference: Cheng, Shen, Huang, "Differentiable neural input search for recommender systems",
arXiv 2006.04466, 2020.
"""
from __future__ import annotations

import itertools
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from graphrec.ctr.estimators import _CTRBase
from graphrec.train import tensor_batches
from graphrec.utils.validation import check_float, check_int

__all__ = ["DNIS", "DimensionSelection"]


class DimensionSelection(nn.Module):
    """``forward(x, e)`` -> ``(e * weight[rows(x)], None)``.

    Search: ``weight`` is ``alpha`` (K, d) indexed through ``block`` (n_features,). Retrain: ``weight``
    is the 0/1 pruning mask (n_features, d) and ``block`` the identity.
    """

    def __init__(self, weight: torch.Tensor, block: torch.Tensor, trainable: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=trainable)
        self.register_buffer("block", block)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, None]:
        return e * self.weight[self.block[x]], None


class DNIS(_CTRBase):
    """Mixed embedding dimensions by differentiable search and pruning (Cheng et al. 2020).

    Parameters
    ----------
    backbone : {"fm", "deepfm", "dcn", "ipnn"}, default="deepfm"
    target_params : int or float, default=0.5
        Embedding entries kept after pruning: an int count, or a float in (0, 1] share of the table.
    block_fractions : sequence of float, default=(0.1, 0.2, 0.2, 0.2, 0.3)
        Shares of the vocabulary in each frequency block, most frequent first (sum 1).
    search_epochs : int, default=3
    alpha_lr : float, default=0.01
        SGD step of ``alpha`` on the row-normalised validation gradient.
    alpha_l1 : float, default=1e-5
    embed_dim, hidden, dropout, lr, l2, batch_size, max_epochs, patience, min_count, categorical,
    numeric, valid_fraction, device, random_state, verbose
        As in :class:`~graphrec.ctr.CTRClassifier`; ``max_epochs``/``patience`` apply to the warm start
        and to the retrain.

    Attributes
    ----------
    alpha_ : ndarray (n_blocks, embed_dim)
        Learned soft selection weights.
    block_ : ndarray of int64 (n_features,)
        Frequency block of every feature value.
    mask_ : ndarray of bool (n_features, embed_dim)
        Kept embedding entries.
    dims_ : ndarray of int64 (n_features,)
        Kept dimensions of every feature value.
    n_embedding_params_ : int
        ``mask_.sum()``.

    Examples
    --------
    >>> from graphrec.datasets.generators import make_ctr
    >>> X, y = make_ctr(n_rows=2000, random_state=0).split("train")
    >>> model = DNIS("fm", target_params=0.5, search_epochs=1, max_epochs=2, random_state=0).fit(X, y)
    >>> model.n_embedding_params_ <= model.mask_.size // 2 + 1
    True
    """

    def __init__(self, backbone: str = "deepfm", *, target_params: float | int = 0.5,
                 block_fractions: Sequence[float] = (0.1, 0.2, 0.2, 0.2, 0.3), search_epochs: int = 3,
                 alpha_lr: float = 0.01, alpha_l1: float = 1e-5, embed_dim: int = 16,
                 hidden: Sequence[int] = (400, 400, 400), dropout: float = 0.0, lr: float = 1e-3,
                 l2: float = 1e-6, batch_size: int = 1024, max_epochs: int = 20, patience: int | None = 2,
                 min_count: int = 1, categorical: list[str] | None = None, numeric: list[str] | None = None,
                 valid_fraction: float = 0.1, device: Any = "cpu", random_state: Any = None,
                 verbose: bool | int = False) -> None:
        self.backbone = backbone
        self.target_params = target_params
        self.block_fractions = block_fractions
        self.search_epochs = search_epochs
        self.alpha_lr = alpha_lr
        self.alpha_l1 = alpha_l1
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

    def _budget(self, table_size: int) -> int:
        t = self.target_params
        if isinstance(t, bool) or not isinstance(t, numbers.Real):
            raise TypeError(f"target_params must be an int count or a float share, got {type(t).__name__}")
        if isinstance(t, numbers.Integral):
            return check_int(t, "target_params", low=1, high=table_size)
        return max(1, int(check_float(t, "target_params", low=0.0, high=1.0, low_open=True) * table_size))

    def _blocks(self, x: torch.Tensor) -> torch.Tensor:
        fr = np.asarray(self.block_fractions, dtype=np.float64)
        if fr.ndim != 1 or fr.size < 1 or (fr <= 0).any() or not np.isclose(fr.sum(), 1.0):
            raise ValueError(f"block_fractions must be positive shares summing to 1, got {self.block_fractions!r}")
        n = self.schema_.n_features_
        counts = np.bincount(x.cpu().numpy().ravel(), minlength=n)
        order = np.argsort(-counts, kind="stable")
        cuts = np.round(np.cumsum(fr) * n).astype(np.int64)
        block = np.empty(n, dtype=np.int64)
        block[order] = np.searchsorted(cuts, np.arange(n), side="right")
        return torch.as_tensor(np.minimum(block, fr.size - 1), device=self._device)

    def fit(self, X: pd.DataFrame, y: Any, eval_set: tuple[pd.DataFrame, Any] | None = None) -> "DNIS":
        """Warm start, search ``alpha`` on validation batches, prune to ``target_params``, retrain."""
        self._check_common()
        n_search = check_int(self.search_epochs, "search_epochs", low=1)
        alpha_lr = check_float(self.alpha_lr, "alpha_lr", low=0.0, low_open=True)
        alpha_l1 = check_float(self.alpha_l1, "alpha_l1", low=0.0)
        data = self._prepare(X, y, eval_set)
        x, y_t, xv, yv = data
        d = int(self.embed_dim)
        budget = self._budget(self.schema_.n_features_ * d)
        block = self._blocks(x)
        n_blocks = len(self.block_fractions)

        net = self._new_net()
        warm = self._train(net, data, self._net_params(net), max_epochs=int(self.max_epochs), early_stop=True)
        selection = net.mask = DimensionSelection(torch.ones(n_blocks, d, device=self._device), block, True)
        alpha = selection.weight

        def batches(epoch: int, generator: torch.Generator):
            train = tensor_batches(x, y_t, batch_size=int(self.batch_size), generator=generator)
            valid = itertools.cycle(tensor_batches(xv, yv, batch_size=int(self.batch_size), generator=generator))
            return [(*tb, *vb) for tb, vb in zip(train, valid)]

        def search_step(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            val_loss = F.binary_cross_entropy_with_logits(model(batch[2]), batch[3]) + alpha_l1 * alpha.abs().sum()
            (grad,) = torch.autograd.grad(val_loss, alpha)
            with torch.no_grad():
                grad = grad / grad.abs().mean(1, keepdim=True).clamp_min(1e-12)
                alpha.sub_(alpha_lr * grad).clamp_(0.0, 1.0)
            return F.binary_cross_entropy_with_logits(model(batch[0]), batch[1])

        embedding_params = [net.embedding.weight] + ([net.linear.weight] if hasattr(net, "linear") else [])
        frozen = [p for n, p in net.named_parameters() if not n.startswith(("embedding.", "linear.", "mask."))]
        for p in frozen:  # only the embeddings move during the search (official code, notes 6.12)
            p.requires_grad_(False)
        search = self._train(net, data, [{"params": embedding_params, "weight_decay": float(self.l2)}],
                             max_epochs=n_search, early_stop=False, loss_fn=search_step, batches=batches)
        with torch.no_grad():
            folded = net.embedding.weight * alpha[block]
            keep = torch.zeros(folded.numel(), dtype=torch.bool, device=self._device)
            keep[torch.topk(folded.abs().flatten(), budget).indices] = True
            mask = keep.view_as(folded).to(folded.dtype)
            net.embedding.weight.copy_(folded * mask)
        self.alpha_ = alpha.detach().cpu().numpy().copy()
        for p in frozen:
            p.requires_grad_(True)
        net.mask = DimensionSelection(mask, torch.arange(mask.shape[0], device=self._device), False)
        result = self._train(net, data, self._net_params(net), max_epochs=int(self.max_epochs), early_stop=True)
        with torch.no_grad():
            net.embedding.weight.mul_(mask)
        self.net_ = net
        self.warm_history_, self.search_history_ = warm.history, search.history
        self.history_, self.best_epoch_ = result.history, result.best_epoch
        self.block_ = block.cpu().numpy()
        self.mask_ = mask.bool().cpu().numpy()
        self.dims_ = self.mask_.sum(1).astype(np.int64)
        return self

    @property
    def n_embedding_params_(self) -> int:
        """Kept (non-zero) embedding entries."""
        self._check_is_fitted()
        return int(self.mask_.sum())
