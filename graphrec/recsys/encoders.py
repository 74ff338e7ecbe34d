"""Encoders mapping user and item ids to d-dimensional representations.

* :class:`MFEncoder` -- an embedding table per side (matrix factorisation).
* :class:`LightGCNEncoder` -- the mean of layers ``0..n_layers`` of the symmetric normalised
  bipartite propagation ``E^(l+1) = D^-1/2 A D^-1/2 E^(l)`` with ``A = [[0, R], [R^T, 0]]``
  (He et al., "LightGCN", SIGIR 2020).

Both start from xavier-normal tables, as the DirectAU code does.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from graphrec.core import to_torch_sparse

__all__ = ["MFEncoder", "LightGCNEncoder", "normalized_bipartite_adjacency"]


class MFEncoder(nn.Module):
    """Embedding tables ``user (n_users, d)`` and ``item (n_items, d)``.

    With ``sharded=True`` (inside a ``torch.distributed`` group) both tables are
    :class:`~graphrec.train.sharded_embedding.ShardedEmbedding` (rows split over the ranks, initial
    values from ``random_state``); lookups and :meth:`forward` are then collective. With
    ``sparse=True`` the tables' gradients are row-sparse (``nn.Embedding(sparse=True)``: only the
    looked-up rows), to be stepped by :class:`graphrec.recsys.optim.SparseRowAdam`.
    """

    def __init__(self, n_users: int, n_items: int, factors: int, *, sharded: bool = False,
                 random_state: int = 0, sparse: bool = False) -> None:
        super().__init__()
        self.sharded = sharded
        if sharded and sparse:
            raise ValueError("sparse=True (row-sparse gradients) does not apply to sharded=True tables; "
                             "use one or the other")
        if sharded:
            from graphrec.train.sharded_embedding import ShardedEmbedding

            self.user = ShardedEmbedding(n_users, factors, random_state=random_state)
            self.item = ShardedEmbedding(n_items, factors, random_state=random_state + 1)
            return
        self.user = nn.Embedding(n_users, factors, sparse=sparse)
        self.item = nn.Embedding(n_items, factors, sparse=sparse)
        nn.init.xavier_normal_(self.user.weight)
        nn.init.xavier_normal_(self.item.weight)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All representations: ``(n_users, d)``, ``(n_items, d)`` (gathered when sharded)."""
        if self.sharded:
            return self.user.full_weight(), self.item.full_weight()
        return self.user.weight, self.item.weight

    def encode(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Representations of the (B,) user ids and (B',) item ids; only their rows are read."""
        return self.user(users), self.item(items)


def normalized_bipartite_adjacency(user_items: sp.csr_matrix) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2`` of the (n_users + n_items) bipartite graph; isolated nodes get 0 rows."""
    n_users, n_items = user_items.shape
    r = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
    r.data[:] = 1.0
    a = sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv = np.zeros_like(deg)
    inv[deg > 0] = deg[deg > 0] ** -0.5
    d = sp.diags(inv)
    return (d @ a @ d).tocsr().astype(np.float32)


class LightGCNEncoder(MFEncoder):
    """LightGCN propagation over the training graph, ``n_layers`` >= 0 layers, layer mean."""

    def __init__(self, user_items: sp.csr_matrix, factors: int, n_layers: int) -> None:
        super().__init__(user_items.shape[0], user_items.shape[1], factors)
        self.n_layers = n_layers
        adj = to_torch_sparse(normalized_bipartite_adjacency(user_items), dtype=None, layout=torch.sparse_csr)
        self.register_buffer("adjacency", adj, persistent=False)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        n_users = self.user.num_embeddings
        e = torch.cat([self.user.weight, self.item.weight])
        total = e
        for _ in range(self.n_layers):
            e = self.adjacency @ e
            total = total + e
        total = total / (self.n_layers + 1)
        return total[:n_users], total[n_users:]

    def encode(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Propagates the whole graph (as the reference code does on every batch), then gathers."""
        u, i = self.forward()
        return u[users], i[items]
