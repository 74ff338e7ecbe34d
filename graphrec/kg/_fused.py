"""Compiled pieces of the LowFER training step on CPU: Philox dropout masks and fused pooling passes.

The kernels live in ``graphrec._ext`` (``cpp_ext/lowfer.cpp``) and work on the numpy views of
CPU tensors (float32 or float64):

* **dropout masks from Philox4x32-10** (Salmon et al., SC 2011), the counter-based generator of
  cuRAND and torch's CUDA dropout: entry ``e`` of mask stream ``c`` under a 64-bit key is one
  32-bit Philox word, kept iff it is below ``round((1 - p) 2^32)``. Entries are independent
  Bernoulli variables with keep probability within ``2^-33`` of ``1 - p`` (the float32
  ``uniform_`` of the torch path has a ``2^-24`` grid). One key per step comes from torch's
  default generator, so seeded runs are reproducible; the stream of numbers differs from
  ``uniform_``'s, so trajectories equal the torch path's in distribution, not bit for bit. About
  5x cheaper than ``uniform_`` + compare + scale on CPU (0.4 ms for the 128 x 6,000 hidden mask of
  a UMLS step against 2.1 ms for ``uniform_`` alone over its 128 x 6,400 entries, 2-core machine);
* **the hidden-dropout / Hadamard / k-sum-pool forward and its backward as one pass each** over
  the ``(b, k d_e)`` buffers (the torch path makes three passes forward, three backward, plus
  three for the mask), with the relation side ``R V`` computed once per distinct relation of the
  batch (``R_u V``, gathered inside the pass) and its gradient summed per relation inside the
  backward pass, which cuts the ``r V`` products by the share of repeated relations (UMLS: about
  50 distinct relations in a batch of 128).

The torch path of :mod:`graphrec.kg._training_step` is the reference these kernels must agree
with (tests: same loss and gradients as autograd given the masks the kernels drew). Without the
compiled module the step falls back to the torch path with one warning per process.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from graphrec.kernels import _load_ext, has_compiled

__all__ = ["PhiloxDropout", "available", "draw_key", "dropout_keep", "dropout_mask", "keep_threshold",
           "pool_backward", "pool_forward"]


@dataclass(frozen=True)
class PhiloxDropout:
    """A dropout mask drawn inside the compiled kernels: Philox ``stream`` under ``key``, rate ``p``."""

    key: int
    stream: int
    p: float

    @property
    def scale(self) -> float:
        return 1.0 / (1.0 - self.p)


def available(like: torch.Tensor) -> bool:
    """Whether the compiled step serves tensors like ``like`` (CPU, float32 / float64, module built).

    Warns once per process when it would serve them but ``graphrec._ext`` is missing or outdated.
    """
    if like.device.type != "cpu" or like.dtype not in (torch.float32, torch.float64):
        return False
    return has_compiled("lowfer_pool_forward_f32", "the LowFER training step uses its slower torch path")


def draw_key() -> int:
    """A 64-bit Philox key from torch's default CPU generator (so ``torch.manual_seed`` fixes the masks)."""
    return int(torch.randint(-(2**63), 2**63 - 1, (), dtype=torch.int64)) & (2**64 - 1)


def keep_threshold(p: float) -> int:
    """``round((1 - p) 2^32)``: an entry is kept iff its 32-bit word is below it (``p`` in ``[0, 1)``)."""
    return max(1, min(2**32, round((1.0 - p) * 2**32)))


def _np(t: torch.Tensor):
    return t.detach().numpy()


def _kernel(name: str, like: torch.Tensor):
    """The compiled kernel ``name`` for ``like``'s dtype (float32 or float64)."""
    return getattr(_load_ext(), f"{name}_{'f32' if like.dtype == torch.float32 else 'f64'}")


def dropout_keep(keep: torch.Tensor, drop: PhiloxDropout) -> torch.Tensor:
    """Fill the contiguous uint8 tensor ``keep`` with ``drop``'s 0/1 keep indicators (row-major entries)."""
    _load_ext().dropout_keep(_np(keep), drop.key, drop.stream, keep_threshold(drop.p))
    return keep


def dropout_mask(mask: torch.Tensor, drop: PhiloxDropout) -> torch.Tensor:
    """Fill the contiguous float tensor ``mask`` with ``drop``'s scaled mask: ``1 / (1 - p)`` where kept, else 0."""
    _kernel("dropout_mask", mask)(_np(mask), drop.key, drop.stream, keep_threshold(drop.p), drop.scale)
    return mask


def pool_forward(A: torch.Tensor, RV: torch.Tensor, row_of: torch.Tensor, keep: torch.Tensor, k: int, scale: float,
                 z: torch.Tensor) -> torch.Tensor:
    """``z[i] = SumPool_k(A[i] * keep[i] * RV[row_of[i]] * scale)``.

    A, keep : (b, k d_e);  RV : (n_u, k d_e);  row_of : (b,) int64 in ``[0, n_u)``;  z : (b, d_e), filled.
    All contiguous, of one float dtype (keep: uint8).
    """
    _kernel("lowfer_pool_forward", A)(_np(A), _np(RV), _np(row_of), _np(keep), k, scale, _np(z))
    return z


def pool_backward(grad: torch.Tensor, A: torch.Tensor, RV: torch.Tensor, row_of: torch.Tensor, keep: torch.Tensor,
                  k: int, scale: float, dRV: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward of :func:`pool_forward` for ``grad = d loss / d z`` (b, d_e).

    Returns ``(dA, dRV)``: ``dA`` (b, k d_e) is written over ``A``; ``dRV`` (n_u, k d_e) is filled
    with the gradient of ``RV``, the rows of one relation summed.
    """
    _kernel("lowfer_pool_backward", A)(_np(grad.contiguous()), _np(A), _np(RV), _np(row_of), _np(keep), k, scale,
                                      _np(dRV))
    return A, dRV
