"""Data-parallel training with ``torch.distributed``: the same loop on N processes.

:class:`DistributedTrainer` is :class:`~graphrec.train.Trainer` for a process group (``gloo`` on
CPU, ``nccl`` on GPU), e.g. under ``torchrun --nproc-per-node N``:

* every rank draws the same global batches (the shuffling generator is seeded alike), keeps its
  contiguous slice of each (:func:`shard_batch`), and computes the loss on it;
* each rank back-propagates its loss times its share of the batch, and gradients are summed
  across ranks in one flat all-reduce per dtype. For a loss that is a mean over the batch's rows this is
  exactly the gradient of the whole batch, so a run gives the same weights at any world size up
  to floating-point order. (This is the gradient averaging of ``DistributedDataParallel`` without
  its requirement that the loss be computed through the wrapper's ``forward``: graphrec's
  ``loss_fn(model, batch)`` may call any sub-module. Losses over pairs within a batch, such as
  DirectAU's uniformity, see the rank's slice only, as under DDP.)
* rank 0 evaluates and writes checkpoints; metrics are broadcast so that every rank takes the
  same early-stopping decision; parameters start from rank 0's, and buffers (batch-norm running
  statistics) are rank 0's after every step, as with DDP's ``broadcast_buffers`` (sparse buffers,
  such as a graph's adjacency, are input data built alike on every rank and are not sent).

Reference: S. Li et al., "PyTorch Distributed: Experiences on Accelerating Data Parallel
Training", VLDB 2020 (gradient averaging by bucketed all-reduce).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from graphrec.train.batching import move_to_device
from graphrec.train.trainer import Trainer, TrainResult

__all__ = [
    "DistributedTrainer", "gather_padded", "gather_rows", "init_process_group", "row_counts", "shard_batch", "shard_bounds",
]


def init_process_group(backend: str | None = None) -> tuple[int, int]:
    """Join the process group described by torchrun's environment (``RANK``, ``WORLD_SIZE``, ...).

    Returns ``(rank, world_size)``. ``backend`` defaults to ``nccl`` when CUDA is available,
    else ``gloo``. Already initialised: returns the current group's values.
    """
    if not dist.is_initialized():
        missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
        if missing:
            raise RuntimeError(
                f"no process group and no torchrun environment (missing {', '.join(missing)}); launch with "
                "torchrun --nproc-per-node N, or call torch.distributed.init_process_group yourself"
            )
        dist.init_process_group(backend or ("nccl" if torch.cuda.is_available() else "gloo"))
    return dist.get_rank(), dist.get_world_size()


def _leading_sizes(batch: Any, out: list[int]) -> None:
    if isinstance(batch, torch.Tensor):
        if batch.dim() == 0:
            raise ValueError("batch tensors must have a leading (row) dimension to shard; got a 0-d tensor")
        out.append(batch.shape[0])
    elif isinstance(batch, Mapping):
        for value in batch.values():
            _leading_sizes(value, out)
    elif isinstance(batch, (tuple, list)):
        for value in batch:
            _leading_sizes(value, out)


def _slice(batch: Any, start: int, stop: int) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch[start:stop]
    if isinstance(batch, Mapping):
        return type(batch)({key: _slice(value, start, stop) for key, value in batch.items()})
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(_slice(value, start, stop) for value in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(_slice(value, start, stop) for value in batch)
    return batch


def shard_bounds(total: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of ``total`` that rank ``rank`` keeps (contiguous, sizes differ by at most one)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
    base, extra = divmod(total, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def shard_batch(batch: Any, rank: int, world_size: int) -> tuple[Any, int, int]:
    """Rank ``rank``'s contiguous slice of every tensor in ``batch`` (sizes differ by at most one).

    Parameters
    ----------
    batch
        A tensor or nested tuples / lists / dicts of tensors, all with the same leading size ``B``.
    rank, world_size
        ``0 <= rank < world_size``.

    Returns
    -------
    (shard, local_rows, total_rows)

    Examples
    --------
    >>> x = torch.arange(5)
    >>> [shard_batch((x, x * 10), r, 2)[0][1].tolist() for r in range(2)]
    [[0, 10, 20], [30, 40]]
    """
    sizes: list[int] = []
    _leading_sizes(batch, sizes)
    if not sizes:
        raise ValueError("batch holds no tensor to shard")
    if len(set(sizes)) != 1:
        raise ValueError(f"every tensor of a batch must have the same number of rows to shard it, got {sorted(set(sizes))}")
    total = sizes[0]
    start, stop = shard_bounds(total, rank, world_size)
    return _slice(batch, start, stop), stop - start, total


def row_counts(n: int, device: torch.device | str = "cpu") -> list[int]:
    """Every rank's row count ``n``, in rank order (one all-gather)."""
    size = torch.tensor([n], device=device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    return [int(s) for s in sizes]


def gather_padded(x: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """All ranks' ``x`` (first dimension ``counts[r]`` on rank ``r``) concatenated in rank order,
    through one all-gather of copies padded to ``max(counts)`` rows; no gradient."""
    padded = torch.zeros((max(counts), *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded)
    return torch.cat([p[:c] for p, c in zip(parts, counts)])


def gather_rows(z: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Every rank's rows of ``z`` stacked in rank order, for losses over pairs of a whole batch.

    Parameters
    ----------
    z : Tensor, shape (b_r, ...), this rank's shard (shards may differ in size, none may be empty)

    Returns
    -------
    (full, share) : ``full`` of shape (sum_r b_r, ...) where this rank's rows keep their autograd
    graph and the other ranks' rows are constants, and ``share = b_r / sum_r b_r``.

    With :class:`DistributedTrainer` (which back-propagates rank ``r``'s loss times ``share``), a batch
    term ``f(full)`` enters the loss as ``f.detach() + (f - f.detach()) / share``: its value is
    unchanged and the summed gradients equal those of ``f`` on the whole batch in one process.
    """
    counts = row_counts(z.shape[0], z.device)
    if min(counts) == 0:
        raise ValueError(f"gather_rows needs rows on every rank, got shard sizes {counts}")
    full = gather_padded(z.detach(), counts)
    start = sum(counts[: dist.get_rank()])
    return torch.cat([full[:start], z, full[start + z.shape[0]:]]), z.shape[0] / sum(counts)


class DistributedTrainer(Trainer):
    """:class:`~graphrec.train.Trainer` on every rank of an initialised process group (module docs).

    Takes the same arguments as ``Trainer``, plus ``shard_fn(batch, rank, world_size) ->
    (shard, local_rows, total_rows)`` for batches that :func:`shard_batch` cannot slice (e.g. a
    batch carrying sparse targets indexed by row). ``device`` is this rank's device (e.g.
    ``f"cuda:{local_rank}"`` under nccl); ``checkpoint_dir`` must be visible to every rank (rank 0
    writes, all read on resume); ``verbose`` applies on rank 0 only. ``collective_eval=True`` runs
    ``eval_fn`` on every rank (needed when it calls collectives, e.g. to gather a
    :class:`~graphrec.train.sharded_embedding.ShardedEmbedding`); rank 0's metrics are used.

    Examples
    --------
    Under ``torchrun --nproc-per-node 2 train.py``::

        rank, world = init_process_group()
        trainer = DistributedTrainer(model, optimizer, loss_fn, max_epochs=10, random_state=0)
        result = trainer.fit(lambda epoch, g: tensor_batches(x, y, batch_size=1024, generator=g))
    """

    def __init__(self, *args: Any, shard_fn: Any = shard_batch, collective_eval: bool = False, **kwargs: Any) -> None:
        if not callable(shard_fn):
            raise TypeError(f"shard_fn must be callable as shard_fn(batch, rank, world_size), got {type(shard_fn).__name__}")
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError(
                "DistributedTrainer needs an initialised process group: call "
                "graphrec.train.distributed.init_process_group() (under torchrun) first"
            )
        super().__init__(*args, **kwargs)
        if any(getattr(p, "sharded", False) for p in self.model.parameters()) and self.checkpoint_dir is not None:
            raise ValueError("checkpoint_dir is not supported with sharded parameters (rank 0 writes checkpoints "
                             "and holds only its own rows); pass checkpoint_dir=None")
        self.shard_fn = shard_fn
        self.collective_eval = bool(collective_eval)
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        if self.rank != 0:
            self.verbose = False

    def fit(self, train_batches: Any) -> TrainResult:
        with torch.no_grad():  # every rank starts from rank 0's parameters and buffers
            for tensor in [*self._replicated_parameters(), *self._dense_buffers()]:
                dist.broadcast(tensor.data, src=0)
        return super().fit(train_batches)

    def _train_step(self, batch: Any, epoch: int, index: int) -> torch.Tensor:
        shard, rows, total = self.shard_fn(batch, self.rank, self.world_size)
        weight = rows / total
        self.optimizer.zero_grad(set_to_none=False)
        if rows > 0:
            loss = self.loss_fn(self.model, move_to_device(shard, self.device))
            self._check_loss(loss, epoch, index)
            (loss * weight).backward()
            local = loss.detach() * weight
        else:  # fewer rows than ranks: this rank contributes nothing but must join the all-reduce
            local = torch.zeros((), device=self.device)
        self._sum_gradients()
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        for buffer in self._dense_buffers():  # e.g. batch-norm running statistics: rank 0's, as DDP does
            dist.broadcast(buffer, src=0)
        return local

    def _replicated_parameters(self) -> list[torch.Tensor]:
        return [p for p in self.model.parameters() if not getattr(p, "sharded", False)]

    def _dense_buffers(self) -> list[torch.Tensor]:
        """Buffers to keep equal across ranks; sparse ones (e.g. a graph's adjacency) are input data,
        built alike on every rank, and are not sent."""
        return [b for b in self.model.buffers() if b.layout == torch.strided]

    def _sum_gradients(self) -> None:
        """grad <- sum over ranks of the gradients of (rows_r / rows) loss_r, one flat all-reduce per
        dtype; sharded parameters (:class:`~graphrec.train.sharded_embedding.ShardedEmbedding`) are
        summed by their own backward."""
        params = [p for p in self.model.parameters() if p.requires_grad and not getattr(p, "sharded", False)]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for p in params:
            by_dtype.setdefault(p.grad.dtype, []).append(p.grad)
        for grads in by_dtype.values():
            flat = _flatten_dense_tensors(grads)
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            for grad, reduced in zip(grads, _unflatten_dense_tensors(flat, grads)):
                grad.copy_(reduced)

    def _batch_losses(self, losses: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(losses, op=dist.ReduceOp.SUM)  # weighted shard losses -> whole-batch losses
        return losses

    def evaluate(self) -> dict[str, float]:
        run_here = self.rank == 0 or self.collective_eval
        metrics: list[Any] = [super().evaluate() if run_here else None]
        dist.broadcast_object_list(metrics, src=0)
        return metrics[0]

    def save_checkpoint(self, state: Mapping[str, Any]) -> None:
        if self.rank == 0:
            super().save_checkpoint(state)
        dist.barrier()
