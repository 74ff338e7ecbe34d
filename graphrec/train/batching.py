"""Mini-batches for the training loop: moving nested batches to a device and slicing tensors.

:func:`tensor_batches` shuffles data that already lives on the device (one ``randperm`` and
one ``index_select`` per tensor and batch), so that a GPU model is not starved by host-side
batching the way a ``DataLoader`` over small rows is (cf. the PyTorch "performance tuning
guide", section "Avoid unnecessary CPU-GPU synchronization").
"""
from __future__ import annotations

import numbers
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from graphrec.utils.validation import check_int

__all__ = ["batch_bounds", "move_to_device", "tensor_batches"]


def batch_bounds(n: int, batch_size: int, min_rows: int = 1) -> list[int]:
    """Boundaries ``[0, batch_size, 2 batch_size, ..., n]`` of consecutive batches of ``n`` rows.

    A last batch of fewer than ``min_rows`` rows joins the one before it (training-mode batch norm,
    for one, cannot normalise a single row), so batch ``i`` is ``rows[bounds[i]:bounds[i + 1]]``.

    >>> batch_bounds(10, 4), batch_bounds(9, 4, min_rows=2), batch_bounds(1, 4, min_rows=2)
    ([0, 4, 8, 10], [0, 4, 9], [0, 1])
    """
    n = check_int(n, "n", low=0)
    batch_size = check_int(batch_size, "batch_size", low=1)
    min_rows = check_int(min_rows, "min_rows", low=1)
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] < min_rows:
        starts.pop()
    return starts + [n]


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor inside ``batch`` to ``device``, keeping the container structure.

    Parameters
    ----------
    batch
        A tensor, or tuples / named tuples / lists / dicts nesting tensors. Other leaves
        (numbers, strings, ``None``) are returned unchanged.
    device
        Target device. Host-to-GPU copies are issued with ``non_blocking=True`` (they overlap
        with compute when the source is pinned memory); copies towards the CPU stay blocking,
        so the returned tensors are always safe to read.

    Returns
    -------
    The same structure, tensors on ``device`` (tensors already there are returned as is).
    """
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=device.type != "cpu")
    if isinstance(batch, Mapping):
        return type(batch)({key: move_to_device(value, device) for key, value in batch.items()})
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # named tuple
        return type(batch)(*(move_to_device(value, device) for value in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(move_to_device(value, device) for value in batch)
    return batch


class _TensorBatches:
    """Iterable of aligned mini-batches; the permutation is drawn when iteration starts."""

    def __init__(
        self,
        tensors: tuple[torch.Tensor, ...],
        batch_size: int,
        shuffle: bool,
        generator: torch.Generator | None,
        drop_last: bool,
    ) -> None:
        self._tensors = tensors
        self._batch_size = batch_size
        self._shuffle = shuffle
        self._generator = generator
        self._drop_last = drop_last
        self._n = tensors[0].shape[0]

    def __len__(self) -> int:
        if self._drop_last:
            return self._n // self._batch_size
        return -(-self._n // self._batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        device = self._tensors[0].device
        stop = len(self) * self._batch_size
        if not self._shuffle:
            for start in range(0, stop, self._batch_size):
                yield tuple(t[start : start + self._batch_size] for t in self._tensors)
            return
        draw_on = self._generator.device if self._generator is not None else device
        perm = torch.randperm(self._n, generator=self._generator, device=draw_on)
        if perm.device != device:
            perm = perm.to(device, non_blocking=device.type != "cpu")
        for start in range(0, stop, self._batch_size):
            index = perm[start : start + self._batch_size]
            yield tuple(t.index_select(0, index) for t in self._tensors)


def tensor_batches(
    *tensors: torch.Tensor,
    batch_size: int,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> _TensorBatches:
    """Split aligned tensors into mini-batches along their first dimension.

    Parameters
    ----------
    *tensors
        One or more tensors of shapes ``(n, ...)``, all on the same device. Row ``i`` of every
        tensor ends up in the same batch.
    batch_size
        Rows per batch (> 0). The last batch is smaller when ``n`` is not a multiple of it,
        unless ``drop_last``.
    shuffle
        Draw one ``torch.randperm(n)`` per pass over the iterable (per epoch). Without
        shuffling the batches are contiguous views, in order, and nothing is copied.
    generator
        Source of the permutation (``None``: the global torch RNG of the tensors' device).
        The permutation is drawn on the generator's device and moved to the tensors'
        device when they differ, e.g. a CPU generator with CUDA tensors.
    drop_last
        Leave out the final incomplete batch.

    Returns
    -------
    An iterable (with ``len``) of tuples ``(t[idx] for t in tensors)``, each element of shape
    ``(b, ...)`` with ``b <= batch_size``. Every row appears exactly once per pass (at most once
    with ``drop_last``).

    Raises
    ------
    TypeError
        If a positional argument is not a tensor, or ``generator`` is not a ``torch.Generator``.
    ValueError
        If no tensor is given, a tensor is 0-dimensional, first dimensions or devices differ,
        or ``batch_size`` is not a positive integer.
    """
    if not tensors:
        raise ValueError("tensor_batches needs at least one tensor; got none")
    for i, t in enumerate(tensors):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"tensors[{i}] must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() == 0:
            raise ValueError(f"tensors[{i}] is 0-dimensional; expected shape (n, ...) to batch along dim 0")
    lengths = [t.shape[0] for t in tensors]
    if len(set(lengths)) > 1:
        raise ValueError(f"tensors must have equal first dimensions, got {lengths}")
    devices = [str(t.device) for t in tensors]
    if len(set(devices)) > 1:
        raise ValueError(f"tensors must all be on one device, got {devices}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return _TensorBatches(tuple(tensors), int(batch_size), bool(shuffle), generator, bool(drop_last))
