"""Compiled passes of SPE's ``rho`` (a GIN over the pair rows) for inference on CPU.

The kernels live in ``graphrec._ext`` (``cpp_ext/pe.cpp``) and work on the numpy views of
contiguous CPU tensors (float32 or float64). Between two ``(P, 128) x (128, 128)`` products of
:class:`graphrec.pe.spe.GINRho` the torch path makes several memory-bound passes over the
``(P, 128)`` buffer: ``addmm`` copies the broadcast bias into its output before the product, the
sparse ``addmm`` copies its input term, then a bias add and a ReLU. Here the products run
without a bias (``torch.mm(out=...)``) and everything else is one pass:

* :func:`gin_aggregate`: ``out = act(alpha Y + S Y + (alpha + deg) b^T + 1 post^T)``, the GIN
  aggregation ``(1 + eps) H + A H`` of ``H = Y + 1 b^T`` (``S`` is the layout's CSR propagator of
  ones, so ``S 1 b^T = deg b^T`` with ``deg`` its row lengths, duplicates counted) followed by the
  next bias ``post`` (folded BatchNorm) and ReLU or the identity;
* :func:`bias_act`: ``X <- act(X + 1 b^T)`` in place.

``GINRho`` calls them (through :func:`passes`, on numpy views made once) block by block of
about a thousand pair rows of whole graphs, every layer on one block before the next, so the
buffers stay in the L2 cache.

The torch path of ``GINRho.forward`` is the reference (tests: equal outputs to 1e-10 in float64).
Without the compiled module ``rho`` falls back to the torch path with one warning per process.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from graphrec.kernels import _load_ext, has_compiled

__all__ = ["available", "bias_act", "gin_aggregate", "passes"]

def available(like: torch.Tensor) -> bool:
    """Whether the compiled passes serve tensors like ``like`` (CPU, float32 / float64, module built).

    Warns once per process when they would serve them but ``graphrec._ext`` is missing or outdated.
    """
    if like.device.type != "cpu" or like.dtype not in (torch.float32, torch.float64):
        return False
    return has_compiled("gin_aggregate_f32", "SPE's rho uses its slower torch path")


def passes(dtype: torch.dtype) -> tuple[Callable[..., None], Callable[..., None]]:
    """The raw compiled ``(gin_aggregate, bias_act)`` for ``dtype`` (float32 or float64), on numpy arrays.

    ``gin_aggregate(indptr, indices, y, alpha, bias, post, relu, out, n_threads)`` and
    ``bias_act(x, bias, relu, n_threads)`` take the arguments of :func:`gin_aggregate` and
    :func:`bias_act` below as contiguous numpy arrays (``bias`` and ``post`` given): for loops
    over many small blocks, which make the numpy views once.
    """
    suffix = "f32" if dtype == torch.float32 else "f64"
    ext = _load_ext()
    return getattr(ext, f"gin_aggregate_{suffix}"), getattr(ext, f"bias_act_{suffix}")


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def _vector(v: torch.Tensor | None, like: torch.Tensor) -> np.ndarray:
    """``v`` (contiguous, ``like``'s dtype) as numpy; zeros of ``like``'s width for ``None``."""
    return np.zeros(like.shape[1], dtype=_np(like).dtype) if v is None else _np(v)


def _threads(n_threads: int | None) -> int:
    return torch.get_num_threads() if n_threads is None else n_threads


def gin_aggregate(indptr: torch.Tensor, indices: torch.Tensor, y: torch.Tensor, alpha: float,
                  bias: torch.Tensor | None, post: torch.Tensor | None, relu: bool, out: torch.Tensor,
                  n_threads: int | None = None) -> torch.Tensor:
    """``out = act(alpha y + S y + (alpha + deg) bias + post)``, written into ``out`` (returned).

    indptr (P + 1,), indices : int64 CSR structure of ``S`` (ones; ids in ``[0, P)``, duplicates
    count); y, out : (P, d) contiguous, not overlapping; bias, post : (d,) contiguous or ``None``
    (zero); all floats of one dtype on CPU; act = ReLU if ``relu`` else the identity; n_threads
    defaults to ``torch.get_num_threads()``.
    """
    passes(y.dtype)[0](_np(indptr), _np(indices), _np(y), float(alpha), _vector(bias, y), _vector(post, y),
                       bool(relu), _np(out), _threads(n_threads))
    return out


def bias_act(x: torch.Tensor, bias: torch.Tensor | None, relu: bool, n_threads: int | None = None) -> torch.Tensor:
    """``x <- act(x + bias)`` in place (returned) for a contiguous ``(P, d)`` ``x`` and ``bias`` (d,) or ``None``."""
    passes(x.dtype)[1](_np(x), _vector(bias, x), bool(relu), _threads(n_threads))
    return x
