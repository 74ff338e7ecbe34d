"""Row-sharded embedding tables for tables larger than one process's memory.

:class:`ShardedEmbedding` keeps rows ``[start, stop)`` of an ``(num_embeddings, d)`` table on each
rank of a ``torch.distributed`` group (contiguous shards, :func:`~graphrec.train.distributed.shard_bounds`),
so each rank holds about ``1 / world_size`` of the table and of its optimiser state. A lookup is
collective (every rank calls it, in the same order):

1. the ranks' id tensors are all-gathered (``sum_r b_r`` ids);
2. each rank writes the rows it owns into a ``(sum_r b_r, d)`` block, zeros elsewhere, and the
   blocks are summed by an all-reduce, so every rank reads its own ``b_r`` rows;
3. backward all-gathers the ranks' output gradients and each owner scatter-adds those of its rows.

Gloo (CPU) has no all-to-all, so the exchange costs ``O(sum_r b_r x d)`` per rank rather than
``O(b_r x d)``; the memory saved is the table's. :class:`~graphrec.train.DistributedTrainer` leaves
parameters flagged ``sharded`` out of its broadcast and all-reduce: the lookup's backward already sums
the (share-weighted) gradients of every rank.

Initial values depend on ``random_state`` only, never on the world size: rows are drawn in fixed
blocks of 4096, each from its own seeded generator, so 1 and N processes start from the same table.

Reference: D. Mudigere et al., "Software-hardware co-design for fast and scalable training of deep
learning recommendation models", ISCA 2022 (row-wise sharded embedding tables).
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import nn

from graphrec.train.distributed import gather_padded, row_counts, shard_bounds
from graphrec.utils.validation import check_float, check_int

__all__ = ["ShardedEmbedding"]

_BLOCK = 4096


class _ShardedLookup(torch.autograd.Function):
    @staticmethod
    def forward(ctx, ids: torch.Tensor, weight: torch.Tensor, start: int) -> torch.Tensor:  # type: ignore[override]
        counts = row_counts(ids.shape[0], ids.device)
        all_ids = gather_padded(ids, counts)
        local = all_ids - start
        mine = (local >= 0) & (local < weight.shape[0])
        block = torch.zeros((all_ids.shape[0], weight.shape[1]), dtype=weight.dtype, device=weight.device)
        block[mine] = weight[local[mine]]
        dist.all_reduce(block, op=dist.ReduceOp.SUM)
        rank = dist.get_rank()
        offset = sum(counts[:rank])
        ctx.save_for_backward(local, mine)
        ctx.counts, ctx.rows = counts, weight.shape[0]
        return block[offset : offset + counts[rank]]

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        local, mine = ctx.saved_tensors
        grads = gather_padded(grad_out.contiguous(), ctx.counts)
        grad_weight = torch.zeros((ctx.rows, grads.shape[1]), dtype=grads.dtype, device=grads.device)
        grad_weight.index_add_(0, local[mine], grads[mine])
        return None, grad_weight, None


class ShardedEmbedding(nn.Module):
    """An ``(num_embeddings, embedding_dim)`` table split by rows over the ranks of a process group.

    Parameters
    ----------
    num_embeddings, embedding_dim : int
    std : float, optional
        Standard deviation of the normal initial values; default the xavier-normal
        ``sqrt(2 / (num_embeddings + embedding_dim))`` of ``nn.init.xavier_normal_``.
    random_state : int
        Seed of the initial values (the same table at any world size).
    dtype, device : of the local shard.

    Attributes
    ----------
    weight : Parameter, shape (stop - start, embedding_dim), this rank's rows, flagged ``sharded``
    start, stop : int, the global ids of this rank's rows

    Call it with a (b,) int64 tensor of global ids in ``[0, num_embeddings)``: returns (b, d).
    Every rank must call it (and :meth:`full_weight`) the same number of times, each with at least
    one id or none; ids out of range (``ValueError``) or of a wrong dtype / shape (``TypeError``) on
    any rank raise on every rank.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, *, std: float | None = None, random_state: int = 0,
                 dtype: torch.dtype = torch.float32, device: str | torch.device | None = None) -> None:
        super().__init__()
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError("ShardedEmbedding needs an initialised process group (torchrun, or "
                               "graphrec.train.init_process_group())")
        self.num_embeddings = check_int(num_embeddings, "num_embeddings", low=1)
        self.embedding_dim = check_int(embedding_dim, "embedding_dim", low=1)
        std = math.sqrt(2.0 / (num_embeddings + embedding_dim)) if std is None else check_float(std, "std", low=0.0)
        seed = check_int(random_state, "random_state", low=0)
        self.start, self.stop = shard_bounds(num_embeddings, dist.get_rank(), dist.get_world_size())
        rows = []
        for block in range(self.start // _BLOCK, -(-self.stop // _BLOCK)):
            lo = block * _BLOCK
            gen = torch.Generator().manual_seed(seed * 1_000_003 + block)
            values = torch.randn(min(_BLOCK, num_embeddings - lo), embedding_dim, generator=gen, dtype=torch.float64)
            rows.append(values[max(self.start - lo, 0) : self.stop - lo])
        weight = torch.cat(rows) if rows else torch.zeros(0, embedding_dim, dtype=torch.float64)
        self.weight = nn.Parameter((weight * std).to(dtype=dtype, device=device))
        self.weight.sharded = True

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows of the (b,) global ``ids``: (b, embedding_dim)."""
        if ids.dtype not in (torch.int32, torch.int64) or ids.dim() != 1:
            code = 2
        else:
            code = int(ids.numel() > 0 and bool(ids.min() < 0 or ids.max() >= self.num_embeddings))
        flag = torch.tensor([code])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)  # every rank raises, none waits in a collective
        if int(flag) == 2:
            raise TypeError("ids must be a 1-d int32/int64 tensor on every rank; got "
                            f"{ids.dtype} of shape {tuple(ids.shape)} here")
        if int(flag) == 1:
            raise ValueError(f"ids must be in [0, num_embeddings={self.num_embeddings}) on every rank")
        return _ShardedLookup.apply(ids.long(), self.weight, self.start)

    def full_weight(self) -> torch.Tensor:
        """The whole (num_embeddings, embedding_dim) table on every rank (no gradient); collective."""
        counts = [shard_bounds(self.num_embeddings, r, dist.get_world_size()) for r in range(dist.get_world_size())]
        return gather_padded(self.weight.detach(), [stop - start for start, stop in counts])

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, rows=[{self.start}, {self.stop})"
