"""LowFER's bilinear pooling with hand-written backward and reused buffers (training only).

The training step of LowFER is dominated by four ``(b, k d_e)`` tensors: the two projections
``A = x U`` and ``B = r V``, the dropout noise and their product. Autograd allocates fresh ones
in every forward and three more in every backward; on CPU each fresh multi-megabyte tensor costs
page faults (glibc returns large blocks to the OS), which on a 2-core machine took longer than the
matrix products themselves. :class:`PoolWorkspace` keeps four buffers per batch shape and
:class:`BilinearPool` runs the same operations, in the same order, into them, so results are
bit-identical to the autograd path (``lowfer_pool`` followed by ``torch.dropout``): the noise is
``empty.bernoulli_(1 - p) / (1 - p)``, as in ``torch.nn.functional.dropout`` on CPU.

A buffer is reused by the next forward, so the backward of a forward must run before the next
forward with the same workspace; a generation counter turns a violation into an error instead of
wrong gradients.
"""
from __future__ import annotations

from typing import Any

import torch

__all__ = ["BilinearPool", "PoolWorkspace"]


class PoolWorkspace:
    """Four reusable ``(b, k d_e)`` buffers (``A``, ``B``, noise, work) for one shape/dtype/device."""

    def __init__(self) -> None:
        self.buffers: tuple[torch.Tensor, ...] | None = None
        self.generation = 0

    def take(self, shape: tuple[int, int], like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        current = self.buffers
        if current is None or current[0].shape != shape or current[0].dtype != like.dtype or current[0].device != like.device:
            self.buffers = tuple(torch.empty(shape, dtype=like.dtype, device=like.device) for _ in range(4))
        self.generation += 1
        return self.buffers


class BilinearPool(torch.autograd.Function):
    """``SumPool_k(dropout((x U) * (r V)))`` with buffers from a :class:`PoolWorkspace`."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, r: torch.Tensor, U: torch.Tensor, V: torch.Tensor, k: int, p: float,
                workspace: PoolWorkspace) -> torch.Tensor:
        b, width = x.shape[0], U.shape[1]
        A, B, noise, work = workspace.take((b, width), x)
        torch.mm(x, U, out=A)
        torch.mm(r, V, out=B)
        torch.mul(A, B, out=work)
        if p > 0:
            noise.bernoulli_(1.0 - p).div_(1.0 - p)
            work.mul_(noise)
        ctx.save_for_backward(x, r, U, V)
        ctx.k, ctx.p, ctx.workspace, ctx.generation = k, p, workspace, workspace.generation
        return work.view(b, -1, k).sum(-1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        if ctx.workspace.generation != ctx.generation:
            raise RuntimeError(
                "LowFER's training buffers were reused by another forward pass before this backward; "
                "run backward after each training forward (or call the network in eval mode)"
            )
        x, r, U, V = ctx.saved_tensors
        A, B, noise, work = ctx.workspace.buffers
        b = x.shape[0]
        gz = work.view(b, -1, ctx.k)
        gz.copy_(grad.unsqueeze(-1).expand_as(gz))
        if ctx.p > 0:
            work.mul_(noise)
        B.mul_(work)   # grad of A
        A.mul_(work)   # grad of B
        grad_x = B @ U.t() if ctx.needs_input_grad[0] else None
        grad_r = A @ V.t() if ctx.needs_input_grad[1] else None
        grad_U = x.t() @ B if ctx.needs_input_grad[2] else None
        grad_V = r.t() @ A if ctx.needs_input_grad[3] else None
        return grad_x, grad_r, grad_U, grad_V, None, None, None
