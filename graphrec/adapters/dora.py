"""DoRA with the factored row norm: weight-decomposed low-rank adaptation without a dense ``B A``.

``W' = diag(m / n) (W + s B A)`` with one norm per output row,
``n_i^2 = ||W_i||^2 + 2 s <B_i, (W A^T)_i> + s^2 <(B A A^T)_i, B_i>``, so the ``d_out x d_in`` update
``B A`` is never formed (peak extra memory ``O(d_out r + r^2)``). The norm is detached (DoRA §4.3),
and the output is composed in the stable form ``y = W x + ((m - n) / n) ⊙ W x + (m / n) ⊙ s B A x``.

References: S.-Y. Liu et al., "DoRA: weight-decomposed low-rank adaptation", ICML 2024;
"Scaling DoRA: high-rank adaptation via factored norms and fused kernels", arXiv 2603.22276, 2026.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from graphrec.adapters.base import AdapterLayer
from graphrec.utils.validation import check_choice, check_float, check_int, torch_generator


def dora_row_norm(
    weight: torch.Tensor,
    lora_a: torch.Tensor,
    lora_b: torch.Tensor,
    scaling: float,
    base_sq: torch.Tensor | None = None,
) -> torch.Tensor:
    """Row norms ``||W_i + s (B A)_i||_2`` of ``W + s B A`` without forming ``B A``.

    Parameters
    ----------
    weight : Tensor, shape (d_out, d_in)
    lora_a : Tensor, shape (r, d_in)
    lora_b : Tensor, shape (d_out, r)
    scaling : float, the LoRA scale ``s``
    base_sq : Tensor, shape (d_out,), optional cached ``||W_i||^2`` (``W`` is frozen)

    Returns
    -------
    Tensor, shape (d_out,), accumulated in at least float32 and returned in that dtype.
    """
    if weight.ndim != 2 or lora_a.ndim != 2 or lora_b.ndim != 2:
        raise ValueError("weight, lora_a and lora_b must all be 2-d")
    if lora_a.shape[1] != weight.shape[1] or lora_b.shape[0] != weight.shape[0] or lora_b.shape[1] != lora_a.shape[0]:
        raise ValueError(
            f"shapes do not chain: weight {tuple(weight.shape)}, lora_a {tuple(lora_a.shape)} (r, d_in), "
            f"lora_b {tuple(lora_b.shape)} (d_out, r)"
        )
    acc = torch.promote_types(weight.dtype, torch.float32)
    w, a, b = weight.to(acc), lora_a.to(acc), lora_b.to(acc)
    base = (w * w).sum(1) if base_sq is None else base_sq.to(acc)
    cross = (b * (w @ a.T)).sum(1)  # W A^T: (d_out, r)
    gram = ((b @ (a @ a.T)) * b).sum(1)  # A A^T: (r, r)
    return torch.sqrt(torch.clamp(base + 2 * scaling * cross + scaling**2 * gram, min=0.0))


class DoRALinear(AdapterLayer):
    """DoRA adapter around a frozen ``nn.Linear``.

    Parameters
    ----------
    base : nn.Linear, its weight ``W`` (d_out, d_in) and bias are frozen
    rank : int, ``r`` in ``[1, min(d_out, d_in)]``
    alpha : float, LoRA scale numerator: ``s = alpha / rank`` (default ``alpha = rank``, ``s = 1``)
    norm : {"factored", "dense"}, how the row norm is computed (dense forms ``B A``; for reference)
    random_state : seed of the Kaiming-uniform init of ``lora_A`` (``lora_B`` starts at zero, so the
        layer starts equal to ``base``)

    Notes
    -----
    Trainable: ``lora_A`` (r, d_in), ``lora_B`` (d_out, r), ``magnitude`` ``m`` (d_out,) = ``||W_i||``.
    """

    def __init__(
        self, base: nn.Linear, rank: int, alpha: float | None = None, *, norm: str = "factored", random_state: Any = None
    ) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be an nn.Linear, got {type(base).__name__}")
        d_out, d_in = base.weight.shape
        self.rank = check_int(rank, "rank", low=1, high=min(d_out, d_in))
        self.alpha = float(self.rank) if alpha is None else check_float(alpha, "alpha", low=0.0, low_open=True)
        self.norm = check_choice(norm, "norm", ("factored", "dense"))
        self.scaling = self.alpha / self.rank
        w = base.weight.detach()
        self.register_buffer("weight", w.clone())
        self.register_buffer("bias", None if base.bias is None else base.bias.detach().clone())
        self.register_buffer("base_sq", (w.to(torch.promote_types(w.dtype, torch.float32)) ** 2).sum(1))
        bound = 1.0 / math.sqrt(d_in)  # kaiming_uniform_(a=sqrt(5)) as in LoRA / PEFT
        gen = torch_generator(random_state, "cpu")
        a = (torch.rand(self.rank, d_in, generator=gen, dtype=w.dtype) * 2 - 1) * bound
        self.lora_A = nn.Parameter(a.to(w.device))
        self.lora_B = nn.Parameter(torch.zeros(d_out, self.rank, dtype=w.dtype, device=w.device))
        self.magnitude = nn.Parameter(torch.sqrt(self.base_sq).to(w.dtype))

    def row_norm(self) -> torch.Tensor:
        """Detached ``n = ||W + s B A||`` per output row, shape (d_out,)."""
        with torch.no_grad():
            if self.norm == "dense":
                full = self.weight + self.scaling * (self.lora_B @ self.lora_A)
                return torch.linalg.vector_norm(full.to(self.base_sq.dtype), dim=1)
            return dora_row_norm(self.weight, self.lora_A, self.lora_B, self.scaling, self.base_sq)

    def _divisor_norm(self) -> torch.Tensor:
        """:meth:`row_norm` with exact zeros raised to the smallest normal number: a zero row of
        ``W + s B A`` (a pruned or zero-initialised output) has ``m = 0`` at init, and ``0 / 0`` would
        turn its outputs into NaN; this way such a row stays ``m (W + s B A)_i / n_i = 0``."""
        n = self.row_norm()
        return n.clamp_min(torch.finfo(n.dtype).tiny)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (..., d_in) -> (..., d_out)."""
        n = self._divisor_norm()
        m = self.magnitude.to(n.dtype)
        base_out = F.linear(x, self.weight)
        lora_out = F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scaling
        y = base_out + ((m - n) / n).to(x.dtype) * base_out + (m / n).to(x.dtype) * lora_out
        return y if self.bias is None else y + self.bias

    def merged_weight(self) -> torch.Tensor:
        """The dense adapted weight ``diag(m / n) (W + s B A)`` (d_out, d_in), e.g. for export."""
        n = self._divisor_norm()
        return (self.magnitude / n).to(self.weight.dtype)[:, None] * (self.weight + self.scaling * self.lora_B @ self.lora_A)
