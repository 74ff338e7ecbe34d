"""Estimators ``DirectAU``, ``BPR`` and ``LightGCN`` with implicit's ``recommend`` interface.

``fit(user_items)`` takes a users x items sparse matrix (value > ``threshold`` = interaction) or an
:class:`~graphrec.datasets.interactions.Interactions` (its ``"train"`` split if present, and its
``"valid"`` split for early stopping on NDCG@20). Scores are dot products of the learned
``user_factors_`` (n_users, d) and ``item_factors_`` (n_items, d); DirectAU's official code scores
with the raw dot product (``scoring="dot"``, the default), ``"cosine"`` is the alternative.
Users without any training interaction get the item-popularity ranking (documented fallback).

References: Wang et al., KDD 2022 (DirectAU); Rendle et al., UAI 2009 (BPR); He et al., SIGIR 2020 (LightGCN).
"""
from __future__ import annotations

import pickle
from contextlib import nullcontext
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.datasets.interactions import Interactions
from graphrec.recsys.encoders import LightGCNEncoder, MFEncoder
from graphrec.recsys.losses import bpr_loss, directau_loss, directau_loss_distributed
from graphrec.recsys.optim import SparseRowAdam
from graphrec.train.rng import isolated_rng
from graphrec.utils.validation import check_bool, check_choice, check_device, check_float, check_int

__all__ = ["DirectAU", "BPR", "LightGCN", "check_user_items"]


def check_user_items(user_items: Any, threshold: float | None = None, name: str = "user_items",
                     allow_empty: bool = False) -> sp.csr_matrix:
    """Binary CSR (n_users, n_items) of the interactions; entries ``<= threshold`` are dropped.

    Raises ``TypeError`` for non-sparse / non-numeric input and ``ValueError`` for an empty
    matrix, NaN / infinite or negative values, duplicate (user, item) entries, or nothing left.
    """
    if isinstance(user_items, Interactions):
        user_items = user_items.splits.get("train", user_items.user_items)
    if not sp.issparse(user_items):
        raise TypeError(f"{name} must be a scipy sparse users x items matrix or an Interactions, "
                        f"got {type(user_items).__name__}")
    if user_items.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {user_items.dtype}")
    if user_items.ndim != 2:
        raise ValueError(f"{name} must be a 2-D users x items matrix, got shape {user_items.shape}")
    if user_items.shape[0] == 0 or user_items.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {user_items.shape}); expected at least one user and one item")
    coo = sp.coo_matrix(user_items)
    if not np.all(np.isfinite(coo.data)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if np.any(coo.data < 0):
        raise ValueError(f"{name} contains negative values; expected implicit feedback or ratings >= 0")
    keys = coo.row.astype(np.int64) * coo.shape[1] + coo.col
    if np.unique(keys).shape[0] != keys.shape[0]:
        raise ValueError(f"{name} has duplicate (user, item) entries; expected each pair once")
    keep = coo.data > (0.0 if threshold is None else threshold)
    m = sp.csr_matrix((np.ones(int(keep.sum()), np.float32), (coo.row[keep], coo.col[keep])), shape=coo.shape)
    if m.nnz == 0 and not allow_empty:
        raise ValueError(f"{name} has no interaction above threshold={threshold}")
    return m


class _FactorRecommender(GraphrecEstimator):
    """Shared scoring, recommend / similar_* and persistence over ``user_factors_`` / ``item_factors_``."""

    def _scores(self, users: np.ndarray) -> np.ndarray:
        scores = self.user_factors_[users] @ self.item_factors_.T
        cold = self.user_counts_[users] == 0
        if cold.any():
            scores[cold] = self.item_popularity_
        return scores

    def _check_ids(self, ids: Any, n: int, name: str) -> tuple[np.ndarray, bool]:
        scalar = np.ndim(ids) == 0
        arr = np.atleast_1d(np.asarray(ids))
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name} must be integer ids, got dtype {arr.dtype}")
        if arr.size == 0 or arr.min() < 0 or arr.max() >= n:
            raise ValueError(f"{name} must be ids in [0, {n}), got {ids!r}")
        return arr.astype(np.int64), scalar

    def recommend(self, userid: Any, user_items: Any, N: int = 10, filter_already_liked_items: bool = True
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``N`` items for one user id (returns ``(N,)`` arrays) or an array of ids (``(m, N)``).

        ``user_items`` holds the rows of those users (``(m, n_items)``, as in implicit) or the
        full ``(n_users, n_items)`` matrix; their items are excluded when
        ``filter_already_liked_items``. When ``userid`` lists all ``n_users`` users, the two
        readings coincide in shape and the rows are read as implicit does, one per ``userid`` in
        its order: pass ``user_items[userid]``, not the full matrix, with a permuted ``userid``. Returns ``(ids, scores)``; ids are ``-1`` where fewer
        than ``N`` items remain.
        """
        from graphrec.kernels import topk_exclude

        self._check_is_fitted()
        users, scalar = self._check_ids(userid, self.user_factors_.shape[0], "userid")
        N = check_int(N, "N", low=1)
        if sp.issparse(user_items) and user_items.ndim == 1:  # a sparse array's row, e.g. csr_array[u]
            user_items = user_items.reshape(1, -1)
        rows = check_user_items(user_items, name="user_items", allow_empty=True)
        n_items = self.item_factors_.shape[0]
        if rows.shape[1] != n_items:
            raise ValueError(f"user_items has {rows.shape[1]} items, the model {n_items}")
        if rows.shape[0] == self.user_factors_.shape[0] and rows.shape[0] != users.shape[0]:
            rows = rows[users]
        elif rows.shape[0] != users.shape[0]:
            raise ValueError(f"user_items has {rows.shape[0]} rows; expected one per user ({users.shape[0]}) "
                             f"or all {self.user_factors_.shape[0]} users")
        if not filter_already_liked_items:
            rows = sp.csr_matrix(rows.shape, dtype=np.float32)
        k = min(N, n_items)
        ids, scores = topk_exclude(self._scores(users).astype(np.float32), k, rows.indptr, rows.indices)
        ids, scores = np.asarray(ids), np.asarray(scores)
        return (ids[0], scores[0]) if scalar else (ids, scores)

    def _similar(self, factors: np.ndarray, ids: Any, N: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        self._check_is_fitted()
        idx, scalar = self._check_ids(ids, factors.shape[0], name)
        N = check_int(N, "N", low=1)
        unit = factors / np.maximum(np.linalg.norm(factors, axis=1, keepdims=True), 1e-12)
        sims = unit[idx] @ unit.T
        k = min(N, factors.shape[0])
        top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        out = np.take_along_axis(sims, top, axis=1)
        return (top[0], out[0]) if scalar else (top, out)

    def similar_items(self, itemid: Any, N: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """``N`` items most cosine-similar to ``itemid`` (itself first), as ``(ids, scores)``."""
        self._check_is_fitted()
        return self._similar(self.item_factors_, itemid, N, "itemid")

    def similar_users(self, userid: Any, N: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """``N`` users most cosine-similar to ``userid`` (itself first), as ``(ids, scores)``."""
        self._check_is_fitted()
        return self._similar(self.user_factors_, userid, N, "userid")

    def save(self, path: str) -> None:
        """Pickle the fitted estimator (parameters and numpy factors) to ``path``."""
        with open(path, "wb") as fh:
            pickle.dump(self, fh)

    @classmethod
    def load(cls, path: str) -> _FactorRecommender:
        """Read an estimator written by :meth:`save`."""
        with open(path, "rb") as fh:
            est = pickle.load(fh)
        if not isinstance(est, cls):
            raise TypeError(f"{path} holds a {type(est).__name__}, expected {cls.__name__}")
        return est


class _TorchRecommender(_FactorRecommender):
    """Trains an encoder with :class:`graphrec.train.Trainer` (or, with ``distributed=True``, with
    :class:`graphrec.train.DistributedTrainer` on every rank of a process group); subclasses give the
    batch loss and the fewest rows a batch may have (``_min_batch_rows``)."""

    _min_batch_rows = 1

    def _batch_loss(self, encoder: MFEncoder, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        raise NotImplementedError

    def _validate(self) -> None:
        check_choice(self.encoder, "encoder", ("mf", "lightgcn"))
        check_int(self.factors, "factors", low=1)
        check_int(self.n_layers, "n_layers", low=0)
        check_int(self.batch_size, "batch_size", low=2)
        check_float(self.learning_rate, "learning_rate", low=0.0, low_open=True)
        check_float(self.weight_decay, "weight_decay", low=0.0)
        check_int(self.epochs, "epochs", low=1)
        check_int(self.eval_every, "eval_every", low=1)
        if self.patience is not None:
            check_int(self.patience, "patience", low=1)
        check_choice(self.scoring, "scoring", ("dot", "cosine"))
        if self.threshold is not None:
            check_float(self.threshold, "threshold")
        check_bool(self.distributed, "distributed")
        check_bool(self.shard_embeddings, "shard_embeddings")
        if self.max_seconds is not None:
            check_float(self.max_seconds, "max_seconds", low=0.0, low_open=True)
        if self.shard_embeddings and not (self.distributed and self.encoder == "mf"):
            raise ValueError("shard_embeddings=True needs distributed=True and encoder='mf' (LightGCN propagates "
                             f"over whole tables); got distributed={self.distributed}, encoder={self.encoder!r}")

    def fit(self, user_items: Any) -> _TorchRecommender:
        """Train on ``user_items`` (sparse (n_users, n_items) or Interactions); returns ``self``."""
        from graphrec.metrics import evaluate_full_ranking
        from graphrec.train import DistributedTrainer, Trainer, init_process_group, tensor_batches

        self._validate()
        world = init_process_group()[1] if self.distributed else 1
        train = check_user_items(user_items, self.threshold)
        valid = None
        if isinstance(user_items, Interactions) and "valid" in user_items.splits:
            valid = check_user_items(user_items.splits["valid"], self.threshold, "valid split")
        device = check_device(self.device)
        seed = check_int(self.random_state, "random_state", low=0) if self.random_state is not None else None
        # the initial tables are drawn from ``seed`` without touching the caller's torch RNG
        with isolated_rng(seed, torch.device("cpu")) if seed is not None else nullcontext():
            if self.encoder == "mf":
                # row-sparse gradients (the same Adam update, without a full-size gradient per step);
                # the data-parallel trainer sums dense gradients, so it keeps them dense
                model = MFEncoder(train.shape[0], train.shape[1], self.factors, sharded=self.shard_embeddings,
                                  random_state=0 if seed is None else seed, sparse=not self.distributed)
            else:
                model = LightGCNEncoder(train, self.factors, self.n_layers)
        self.n_items_ = train.shape[1]
        rows, cols = train.nonzero()
        users_t = torch.from_numpy(rows.astype(np.int64)).to(device)
        items_t = torch.from_numpy(cols.astype(np.int64)).to(device)
        opt = SparseRowAdam(model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay, fused=True)

        eval_fn = None
        if valid is not None:
            def eval_fn(m: MFEncoder) -> dict[str, float]:
                u, i = (t.detach() for t in m())
                return evaluate_full_ranking(lambda b: u[torch.as_tensor(b, device=u.device)] @ i.T,
                                             train, valid, ks=(20,), block_size=2048)
        # A final batch too small to shard or to hold a pair term is left out of every epoch.
        fewest = max(self._min_batch_rows, world)
        if rows.shape[0] < fewest:
            raise ValueError(f"user_items has {rows.shape[0]} interaction(s); {type(self).__name__} needs at least "
                             f"{fewest} to form a training batch")
        remainder = rows.shape[0] % self.batch_size
        drop_last = 0 < remainder < fewest
        trainer_cls, extra = Trainer, {}
        if self.distributed:  # a sharded model's eval gathers its tables: every rank takes part
            trainer_cls, extra = DistributedTrainer, {"collective_eval": self.shard_embeddings}
        trainer = trainer_cls(model, opt, self._batch_loss, max_epochs=self.epochs, device=device, eval_fn=eval_fn,
                          monitor="ndcg@20" if valid is not None else None,
                          patience=self.patience if valid is not None else None, eval_every=self.eval_every,
                          random_state=self.random_state, max_seconds=self.max_seconds, verbose=self.verbose,
                          **extra)
        self._n_items_train = train.shape[1]
        self.train_result_ = trainer.fit(
            lambda epoch, gen: tensor_batches(users_t, items_t, batch_size=self.batch_size, generator=gen,
                                              drop_last=drop_last))
        with torch.no_grad():
            u, i = (t.detach().cpu().numpy().astype(np.float32) for t in model())
        if self.scoring == "cosine":
            u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
            i = i / np.maximum(np.linalg.norm(i, axis=1, keepdims=True), 1e-12)
        self.user_factors_, self.item_factors_ = u, i
        self.user_counts_ = np.diff(train.indptr)
        self.item_popularity_ = np.asarray(train.sum(axis=0), dtype=np.float32).ravel()
        return self


_ENCODER_DOC = """
    encoder : {"mf", "lightgcn"}, default "mf"
        Plain embedding tables (matrix factorisation) or their LightGCN propagation over the
        training graph.
    factors : int, default 64
        Embedding dimension ``d``.
"""

# %-template: the defaults of n_layers and batch_size, and how the loss meets data parallelism (distributed)
_TRAINING_DOC = """    n_layers : int >= 0, default %(n_layers)d
        LightGCN layers (unused with ``encoder="mf"``).
    batch_size : int >= 2, default %(batch_size)d
        Positive pairs per batch.
    learning_rate : float > 0, default 1e-3
        Adam step size.
    weight_decay : float >= 0, default 1e-6
        Adam's coupled L2 penalty.
    epochs : int, default 300
        Most training epochs; when ``fit`` gets an Interactions with a ``"valid"`` split, training
        stops early on valid NDCG@20 and keeps the best-validation weights.
    eval_every : int, default 2
        Epochs between validation evaluations.
    patience : int or None, default 5
        Evaluations without improvement before stopping early (None: never).
    scoring : {"dot", "cosine"}, default "dot"
        Score of a (user, item) pair: the raw dot product of the factors (official) or their cosine.
    threshold : float, optional
        Ratings above it count as interactions (default: every positive entry).
    random_state : int >= 0, optional
        Seeds the initial embeddings and the training run (batch order; BPR's negatives).
    device : {"cpu", "cuda", "cuda:N", "auto"}, default "cpu"
        Where the model is trained.
    verbose : bool or int, default False
        Progress bars (``>= 2``: also per batch).
    distributed : bool, default False
        Train on every rank of an initialised ``torch.distributed`` group (e.g. under ``torchrun``),
        each rank taking a shard of every batch;
        %(distributed)s
    shard_embeddings : bool, default False
        With ``distributed`` and ``encoder="mf"``, split both tables by rows over the ranks
        (:class:`graphrec.train.sharded_embedding.ShardedEmbedding`) for tables larger than one
        process's memory (evaluation and the fitted factors gather them).
    max_seconds : float, optional
        Wall-time budget of ``fit`` (no new epoch starts once it is spent; the best-validation weights
        are kept as usual; ``train_result_.stopped_by_time`` says whether it ran out).
"""


class DirectAU(_TorchRecommender):
    __doc__ = """DirectAU: directly optimise alignment and uniformity of l2-normalised representations.

    Wang et al., "Towards Representation Alignment and Uniformity in Collaborative Filtering",
    KDD 2022. Loss per batch of B shuffled positive pairs (no negatives):
    ``alignment + gamma * (uniformity(users) + uniformity(items)) / 2`` (see ``graphrec.recsys.losses``).
    ``batch_size``, ``learning_rate`` and ``weight_decay`` default to the official code's values.

    Parameters
    ----------""" + _ENCODER_DOC + """    gamma : float >= 0, default 0.5
        Uniformity weight (0.5 Beauty, 5 Gowalla in the paper's search).
""" + _TRAINING_DOC % dict(n_layers=2, batch_size=256, distributed=(
        "uniformity still runs over the whole batch, so N processes follow the one-process run.")) + """
    Examples
    --------
    >>> from graphrec.datasets import make_latent_factor_interactions
    >>> data = make_latent_factor_interactions(n_users=200, n_items=100, random_state=0)
    >>> model = DirectAU(factors=16, epochs=2, random_state=0).fit(data.user_items)
    >>> ids, scores = model.recommend(0, data.user_items[0], N=5)
    >>> ids.shape, model.item_factors_.shape
    ((5,), (100, 16))
    """

    def __init__(self, encoder: str = "mf", factors: int = 64, gamma: float = 0.5, n_layers: int = 2,
                 batch_size: int = 256, learning_rate: float = 1e-3, weight_decay: float = 1e-6,
                 epochs: int = 300, eval_every: int = 2, patience: int | None = 5, scoring: str = "dot",
                 threshold: float | None = None, random_state: int | None = None, device: str = "cpu",
                 verbose: bool | int = False, distributed: bool = False, shard_embeddings: bool = False,
                 max_seconds: float | None = None) -> None:
        self.encoder = encoder
        self.factors = factors
        self.gamma = gamma
        self.n_layers = n_layers
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.eval_every = eval_every
        self.patience = patience
        self.scoring = scoring
        self.threshold = threshold
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.distributed = distributed
        self.shard_embeddings = shard_embeddings
        self.max_seconds = max_seconds

    _min_batch_rows = 2  # uniformity needs a pair

    def _validate(self) -> None:
        super()._validate()
        check_float(self.gamma, "gamma", low=0.0)

    def _batch_loss(self, encoder: MFEncoder, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        users, items = batch
        u, i = encoder.encode(users, items)
        return (directau_loss_distributed if self.distributed else directau_loss)(u, i, self.gamma)


class BPR(_TorchRecommender):
    __doc__ = """BPR (Rendle et al., UAI 2009) with one uniformly sampled negative per positive.

    Parameters
    ----------""" + _ENCODER_DOC + _TRAINING_DOC % dict(n_layers=3, batch_size=2048, distributed=(
        "each rank samples the negatives of its own shard.")) + """
    Examples
    --------
    >>> from graphrec.datasets import make_latent_factor_interactions
    >>> data = make_latent_factor_interactions(n_users=200, n_items=100, random_state=0)
    >>> BPR(factors=8, epochs=1, random_state=0).fit(data.user_items).user_factors_.shape
    (200, 8)
    """

    def __init__(self, encoder: str = "mf", factors: int = 64, n_layers: int = 3, batch_size: int = 2048,
                 learning_rate: float = 1e-3, weight_decay: float = 1e-6, epochs: int = 300, eval_every: int = 2,
                 patience: int | None = 5, scoring: str = "dot", threshold: float | None = None,
                 random_state: int | None = None, device: str = "cpu", verbose: bool | int = False,
                 distributed: bool = False, shard_embeddings: bool = False,
                 max_seconds: float | None = None) -> None:
        self.encoder = encoder
        self.factors = factors
        self.n_layers = n_layers
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.eval_every = eval_every
        self.patience = patience
        self.scoring = scoring
        self.threshold = threshold
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.distributed = distributed
        self.shard_embeddings = shard_embeddings
        self.max_seconds = max_seconds

    def _batch_loss(self, encoder: MFEncoder, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        users, pos = batch
        neg = torch.randint(0, self._n_items_train, pos.shape, device=pos.device)
        u, items = encoder.encode(users, torch.cat([pos, neg]))
        return bpr_loss(u, items[: pos.shape[0]], items[pos.shape[0]:])


class LightGCN(BPR):
    """LightGCN (He et al., SIGIR 2020): BPR on the ``n_layers``-layer LightGCN encoder."""

    def __init__(self, encoder: str = "lightgcn", factors: int = 64, n_layers: int = 3, batch_size: int = 2048,
                 learning_rate: float = 1e-3, weight_decay: float = 1e-6, epochs: int = 300, eval_every: int = 2,
                 patience: int | None = 5, scoring: str = "dot", threshold: float | None = None,
                 random_state: int | None = None, device: str = "cpu", verbose: bool | int = False,
                 distributed: bool = False, shard_embeddings: bool = False,
                 max_seconds: float | None = None) -> None:
        super().__init__(encoder=encoder, factors=factors, n_layers=n_layers, batch_size=batch_size,
                         learning_rate=learning_rate, weight_decay=weight_decay, epochs=epochs,
                         eval_every=eval_every, patience=patience, scoring=scoring, threshold=threshold,
                         random_state=random_state, device=device, verbose=verbose, distributed=distributed,
                         shard_embeddings=shard_embeddings, max_seconds=max_seconds)


def _spec_input(seed: int) -> tuple:
    from graphrec.datasets import make_latent_factor_interactions

    return (make_latent_factor_interactions(n_users=60, n_items=40, mean_interactions=6, random_state=seed).user_items,)


for _name, _cls in (("DirectAU", DirectAU), ("BPR", BPR), ("LightGCN", LightGCN)):
    register_estimator(_name, EstimatorSpec(
        factory=lambda _cls=_cls: _cls(factors=8, epochs=2, batch_size=64, random_state=0),
        make_input=_spec_input,
        output=lambda est, args: est.user_factors_,
        bad_inputs={"dense": lambda: (np.ones((3, 3)),),
                    "nan": lambda: (sp.csr_matrix(np.array([[np.nan, 1.0], [1.0, 0.0]])),),
                    "empty": lambda: (sp.csr_matrix((0, 5)),)},
        fitted_method="similar_items",
    ))
