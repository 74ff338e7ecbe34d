"""Adam for embedding tables whose gradients arrive as sparse rows, with the dense (non-lazy) update.

An ``nn.Embedding`` with ``sparse=False`` materialises a zero-filled ``(n_rows, d)`` gradient on every
step to hold the ``B`` rows a batch touches; with ``sparse=True`` the gradient is only those rows,
but ``torch.optim.Adam`` refuses sparse gradients and ``torch.optim.SparseAdam`` is *lazy* (rows
outside the batch keep their moments and weights), which is a different optimiser. DirectAU's
official code uses plain Adam with coupled L2 (Kingma & Ba, ICLR 2015; ``weight_decay`` added to the
gradient), so every row moves on every step. :class:`SparseRowAdam` keeps that update exactly: it
adds the sparse rows into a persistent zero buffer (the same ``index_add`` that the dense embedding
backward performs), runs ``torch.optim.Adam`` on it, and zeroes only the touched rows again, so no
full-size gradient is allocated or filled per step.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["SparseRowAdam"]


class SparseRowAdam(torch.optim.Adam):
    """``torch.optim.Adam`` that also accepts row-sparse gradients (e.g. ``nn.Embedding(sparse=True)``).

    A parameter of shape ``(n_rows, ...)`` whose ``grad`` is a sparse COO tensor with one sparse
    dimension is updated as if its gradient were the dense tensor with those rows summed in (and
    zeros elsewhere): weight decay, both moments and the weight change on *every* row, as in
    ``torch.optim.Adam``; dense gradients are used as they are. Arguments and state (``state_dict``)
    are those of ``torch.optim.Adam``; the dense buffers are scratch space, not state.
    ``p.grad`` is left as it was after :meth:`step`.

    Examples
    --------
    >>> emb = torch.nn.Embedding(5, 2, sparse=True)
    >>> opt = SparseRowAdam(emb.parameters(), lr=0.1, weight_decay=1e-2)
    >>> before = emb.weight.detach().clone()
    >>> emb(torch.tensor([0, 0, 3])).sum().backward()
    >>> opt.step()
    >>> bool((emb.weight != before).all())  # untouched rows move too (coupled weight decay)
    True
    """

    def __init__(self, params: Iterable[torch.nn.Parameter] | Iterable[dict], **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._row_buffers: dict[int, torch.Tensor] = {}

    def _dense_buffer(self, p: torch.Tensor) -> torch.Tensor:
        buf = self._row_buffers.get(id(p))
        if buf is None or buf.shape != p.shape or buf.dtype != p.dtype or buf.device != p.device:
            buf = self._row_buffers[id(p)] = torch.zeros_like(p, memory_format=torch.contiguous_format)
        return buf

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """One Adam step; ``closure`` (optional) re-evaluates the loss, as in ``torch.optim.Adam``."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        swapped: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        try:
            for group in self.param_groups:
                for p in group["params"]:
                    grad = p.grad
                    if grad is None or not grad.is_sparse:
                        continue
                    if grad.sparse_dim() != 1:
                        raise ValueError(f"SparseRowAdam needs row-sparse gradients (sparse_dim 1), got "
                                         f"sparse_dim {grad.sparse_dim()} for a parameter of shape {tuple(p.shape)}")
                    rows = grad._indices()[0]
                    buf = self._dense_buffer(p)
                    buf.index_add_(0, rows, grad._values())
                    p.grad = buf
                    swapped.append((p, grad, rows))
            super().step()
        finally:
            for p, grad, rows in swapped:
                p.grad.index_fill_(0, rows, 0.0)
                p.grad = grad
        return loss
