"""LowFER and TuckER scoring networks (torch modules) and their bilinear cores as plain functions.

Notation of the papers: ``d_e`` entity dimension, ``d_r`` relation dimension, ``k`` LowFER's
factorization rank, ``U`` (``d_e x k d_e``), ``V`` (``d_r x k d_e``), TuckER core ``W``
(``d_r x d_e x d_e``).

* LowFER (Amin et al., "LowFER: Low-rank Bilinear Pooling for Link Prediction", ICML 2020):
  ``f(e_s, r, e_o) = e_o^T SumPool_k((U^T e_s) * (V^T r))``, where ``SumPool_k`` (the fixed 0/1
  matrix ``S^k``) sums non-overlapping windows of ``k`` consecutive entries. The network of the
  official code applies, in order: ``BN0``, input dropout, the Hadamard product of both
  projections, hidden dropout 1, k-sum pooling, signed square root ``sign(z) sqrt(|z| + 1e-12)``,
  L2 row normalisation, ``BN1``, hidden dropout 2, and the product with all entity embeddings.
* TuckER (Balazevic et al., "TuckER: Tensor Factorization for Knowledge Graph Completion",
  EMNLP 2019): ``f = W x_1 r x_2 e_s x_3 e_o``, with ``BN0``, input dropout, hidden dropout 1 on
  the relation-specific matrix ``W x_1 r``, ``BN1`` and hidden dropout 2.

LowFER is TuckER with the core ``G[m, a, b] = sum_{j in window b} V[m, j] U[a, j]``, i.e. core
slices of rank ``<= k`` (:func:`lowfer_core_tensor`); tests check both forms agree.

Entity and relation embeddings have no ``padding_idx``: the official LowFER code freezes entity 0
and relation 0 with ``padding_idx=0``; here every embedding is trained.
"""
from __future__ import annotations

import torch
from torch import nn

from graphrec.kg._pool_workspace import BilinearPool, PoolWorkspace

__all__ = ["LowFERNet", "TuckERNet", "lowfer_core_tensor", "lowfer_pool", "tucker_contract"]


def lowfer_pool(subjects: torch.Tensor, relations: torch.Tensor, U: torch.Tensor, V: torch.Tensor, k: int,
                dropout: nn.Module | None = None) -> torch.Tensor:
    """``SumPool_k((U^T e_s) * (V^T r))`` for a batch, before any normalisation.

    Parameters
    ----------
    subjects : (b, d_e) subject embeddings ``e_s``.
    relations : (b, d_r) relation embeddings ``r``.
    U : (d_e, k * d_e);  V : (d_r, k * d_e).
    k : int, pooling window (factorization rank).
    dropout : optional module applied to the ``(b, k * d_e)`` product before pooling.

    Returns
    -------
    (b, d_e) tensor; entry ``i`` sums product entries ``i k .. i k + k - 1``.
    """
    z = (subjects @ U) * (relations @ V)
    if dropout is not None:
        z = dropout(z)
    return z.view(z.shape[0], -1, k).sum(-1)


def lowfer_core_tensor(U: torch.Tensor, V: torch.Tensor, k: int) -> torch.Tensor:
    """The TuckER core LowFER implies: ``G[m, a, b] = sum_{j in window b} V[m, j] U[a, j]``.

    Returns a ``(d_r, d_e, d_e)`` tensor such that ``tucker_contract(e_s, r, G) ==
    lowfer_pool(e_s, r, U, V, k)`` (notes A.2).
    """
    d_e, d_r = U.shape[0], V.shape[0]
    return torch.einsum("mbj,abj->mab", V.view(d_r, d_e, k), U.view(d_e, d_e, k))


def tucker_contract(subjects: torch.Tensor, relations: torch.Tensor, W: torch.Tensor,
                    dropout: nn.Module | None = None) -> torch.Tensor:
    """``(W x_1 r) x_2 e_s`` for a batch: the (b, d_e) vector whose dot with ``e_o`` is the score.

    Parameters
    ----------
    subjects : (b, d_e);  relations : (b, d_r);  W : (d_r, d_e, d_e).
    dropout : optional module applied to the relation-specific matrices ``W x_1 r`` (b, d_e, d_e).
    """
    d_r, d_e, _ = W.shape
    w = (relations @ W.reshape(d_r, d_e * d_e)).view(-1, d_e, d_e)
    if dropout is not None:
        w = dropout(w)
    return torch.bmm(subjects.unsqueeze(1), w).squeeze(1)


class _BilinearKGNet(nn.Module):
    """Shared parts: embeddings, batch norms, dropouts and the 1-N output layer."""

    def __init__(self, n_entities: int, n_relations: int, d_e: int, d_r: int, input_dropout: float,
                 hidden_dropout1: float, hidden_dropout2: float) -> None:
        super().__init__()
        self.E = nn.Embedding(n_entities, d_e)
        self.R = nn.Embedding(n_relations, d_r)
        self.bn0 = nn.BatchNorm1d(d_e)
        self.bn1 = nn.BatchNorm1d(d_e)
        self.input_dropout = nn.Dropout(input_dropout)
        self.hidden_dropout1 = nn.Dropout(hidden_dropout1)
        self.hidden_dropout2 = nn.Dropout(hidden_dropout2)

    def _reset_embeddings(self, generator: torch.Generator | None) -> None:
        nn.init.xavier_normal_(self.E.weight, generator=generator)
        nn.init.xavier_normal_(self.R.weight, generator=generator)

    def query(self, subjects: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        """The (b, d_e) query vector ``q`` whose dot with ``e_o`` is the score of ``(s, r, o)``."""
        raise NotImplementedError

    def forward(self, subjects: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        """Logits ``(b, n_entities)`` of every entity as the tail of ``(subjects[i], relations[i])``."""
        return self.query(subjects, relations) @ self.E.weight.t()


class LowFERNet(_BilinearKGNet):
    """LowFER's scoring network (module docs); ``U`` and ``V`` start uniform in ``[-1, 1]``."""

    def __init__(self, n_entities: int, n_relations: int, d_e: int, d_r: int, k: int, *, input_dropout: float = 0.0,
                 hidden_dropout1: float = 0.0, hidden_dropout2: float = 0.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(n_entities, n_relations, d_e, d_r, input_dropout, hidden_dropout1, hidden_dropout2)
        self.k = k
        self._workspace = PoolWorkspace()
        self.U = nn.Parameter(torch.empty(d_e, k * d_e))
        self.V = nn.Parameter(torch.empty(d_r, k * d_e))
        self._reset_embeddings(generator)
        nn.init.uniform_(self.U, -1.0, 1.0, generator=generator)
        nn.init.uniform_(self.V, -1.0, 1.0, generator=generator)

    def query(self, subjects: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        x = self.input_dropout(self.bn0(self.E(subjects)))
        if self.training and torch.is_grad_enabled():  # same result, reused buffers (see _pool_workspace)
            z = BilinearPool.apply(x, self.R(relations), self.U, self.V, self.k, self.hidden_dropout1.p,
                                   self._workspace)
        else:
            z = lowfer_pool(x, self.R(relations), self.U, self.V, self.k, self.hidden_dropout1)
        z = torch.sign(z) * torch.sqrt(z.abs() + 1e-12)
        z = nn.functional.normalize(z, p=2.0, dim=-1)
        return self.hidden_dropout2(self.bn1(z))


class TuckERNet(_BilinearKGNet):
    """TuckER's scoring network (module docs); the core ``W`` starts uniform in ``[-1, 1]``."""

    def __init__(self, n_entities: int, n_relations: int, d_e: int, d_r: int, *, input_dropout: float = 0.0,
                 hidden_dropout1: float = 0.0, hidden_dropout2: float = 0.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(n_entities, n_relations, d_e, d_r, input_dropout, hidden_dropout1, hidden_dropout2)
        self.W = nn.Parameter(torch.empty(d_r, d_e, d_e))
        self._reset_embeddings(generator)
        nn.init.uniform_(self.W, -1.0, 1.0, generator=generator)

    def query(self, subjects: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        x = self.input_dropout(self.bn0(self.E(subjects)))
        x = tucker_contract(x, self.R(relations), self.W, self.hidden_dropout1)
        return self.hidden_dropout2(self.bn1(x))
