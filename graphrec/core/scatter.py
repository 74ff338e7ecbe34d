"""Scatter reductions on torch's own ``scatter_reduce_`` (no torch-scatter needed).

torch-scatter is source-only on PyPI (minutes to build) and no faster than this on CPU; when it
is installed anyway, PyG picks it up by itself, and graphrec does not depend on it.
"""
from __future__ import annotations

import torch

_REDUCE = {"sum": "sum", "add": "sum", "mean": "mean", "max": "amax", "min": "amin", "mul": "prod"}


def scatter(
    src: torch.Tensor, index: torch.Tensor, dim: int = 0, dim_size: int | None = None, reduce: str = "sum"
) -> torch.Tensor:
    """Reduce slices of ``src`` along ``dim`` into the positions given by ``index``.

    Parameters
    ----------
    src : Tensor, shape (..., n, ...)
    index : LongTensor, shape (n,)
        Target position of each slice of ``src`` along ``dim``.
    dim : int, default 0
        Axis of ``src`` that ``index`` runs along (negative values count from the end).
    dim_size : int, optional
        Size of the output along ``dim`` (default ``index.max() + 1``).
    reduce : {"sum", "mean", "max", "min", "mul"}
        Empty positions are 0 for every reduction.

    Returns
    -------
    Tensor, shape of ``src`` with ``dim`` replaced by ``dim_size``.
    """
    if reduce not in _REDUCE:
        raise ValueError(f"reduce={reduce!r} is not valid; expected one of {sorted(_REDUCE)}")
    if index.dim() != 1:
        raise ValueError(f"index must be 1-d, got shape {tuple(index.shape)}")
    dim = dim % src.dim()
    if index.numel() != src.size(dim):
        raise ValueError(f"index has {index.numel()} entries but src has {src.size(dim)} along dim {dim}")
    if index.numel() and int(index.min()) < 0:
        raise ValueError("index must be non-negative")
    size = int(index.max()) + 1 if dim_size is None and index.numel() else (dim_size or 0)
    if index.numel() and int(index.max()) >= size:
        raise ValueError(f"index holds {int(index.max())} but dim_size is {size}")
    shape = [1] * src.dim()
    shape[dim] = -1
    expanded = index.view(shape).expand_as(src)
    out_shape = list(src.shape)
    out_shape[dim] = size
    out = torch.zeros(out_shape, dtype=src.dtype, device=src.device)
    return out.scatter_reduce_(dim, expanded, src, reduce=_REDUCE[reduce], include_self=False)
