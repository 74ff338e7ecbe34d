"""SVFit: fine-tune only the top singular values of a frozen weight.

``W = U Σ V^T``; the top-``r`` triplets (``r`` fixed, or the smallest rank holding ``energy`` of
``||W||_F^2``, 99% in the paper) give ``W_r = U_r diag(σ_r) V_r^T`` and the residual
``W_e = W - W_r`` is frozen. Only ``σ_r`` is trained (``r`` parameters per matrix), so the update
``U_r diag(σ_r - σ_r^0) V_r^T`` rescales the fundamental subspaces of ``W`` without rotating them.
The layer computes ``y = W x + U_r ((σ_r - σ_r^0) ⊙ V_r^T x) + b``, which is ``W_e x + U_r (σ_r ⊙ V_r^T x) + b``
but equals the frozen layer exactly at initialisation.

With ``correction=True`` an ``r x r`` matrix ``C`` (zero at init) is trained as well, giving the
update ``U_r (diag(σ_r - σ_r^0) + C) V_r^T``: an extension (not in the paper) that lets the top
subspaces mix at ``r^2`` more parameters.

Reference: C. Sun et al., "SVFit: parameter-efficient fine-tuning of large pre-trained models using
singular values", arXiv 2409.05926, 2024 (no official code was found; written from the paper's method).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from graphrec.adapters.base import AdapterLayer, wrap
from graphrec.core.subspace import truncated_svd
from graphrec.utils.validation import check_float, check_int


class SVFitLinear(AdapterLayer):
    """SVFit adapter on a frozen ``nn.Linear``.

    Parameters
    ----------
    base : nn.Linear with weight ``W`` (d_out, d_in); weight and bias are frozen (buffers)
    rank : int in ``[1, min(d_out, d_in)]``, or None to pick the energy rank
    energy : float in (0, 1], used when ``rank`` is None (paper: 0.99)
    correction : also train an ``r x r`` correction ``C`` in the singular basis (not in the paper)

    Notes
    -----
    Trainable: ``singular_values`` ``σ_r`` (r,) [and ``correction`` (r, r)]. Frozen buffers:
    ``weight``, ``bias``, ``u`` (d_out, r), ``v`` (d_in, r), ``initial_singular_values`` (r,).
    The SVD is computed in float64.
    """

    def __init__(
        self, base: nn.Linear, rank: int | None = None, *, energy: float = 0.99, correction: bool = False
    ) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be an nn.Linear, got {type(base).__name__}")
        w = base.weight.detach()
        w64 = w.to(torch.float64)
        if rank is None:
            u, s, vt = truncated_svd(w64, energy=check_float(energy, "energy", low=0.0, high=1.0, low_open=True))
        else:
            u, s, vt = truncated_svd(w64, rank=check_int(rank, "rank", low=1, high=min(w.shape)))
        self.rank = s.shape[0]
        dt = w.dtype
        self.register_buffer("weight", w.clone())
        self.register_buffer("bias", None if base.bias is None else base.bias.detach().clone())
        self.register_buffer("u", u.to(dt).contiguous())
        self.register_buffer("v", vt.T.to(dt).contiguous())
        self.register_buffer("initial_singular_values", s.to(dt))
        self.singular_values = nn.Parameter(s.to(dt).clone())
        self.correction = (
            nn.Parameter(torch.zeros(self.rank, self.rank, dtype=dt, device=w.device)) if correction else None
        )

    def core_update(self) -> torch.Tensor:
        """The update in the singular basis, ``diag(σ_r - σ_r^0) [+ C]``, shape (r, r)."""
        d = torch.diag(self.singular_values - self.initial_singular_values)
        return d if self.correction is None else d + self.correction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (..., d_in) -> (..., d_out)."""
        z = x @ self.v  # (..., r)
        if self.correction is None:
            z = z * (self.singular_values - self.initial_singular_values)
        else:
            z = z @ self.core_update().T
        return F.linear(x, self.weight, self.bias) + z @ self.u.T

    def merged_weight(self) -> torch.Tensor:
        """``W + U_r core_update V_r^T`` (d_out, d_in)."""
        return self.weight + self.u @ self.core_update() @ self.v.T


def apply_svfit(
    model: nn.Module,
    rank: int | None = None,
    *,
    energy: float = 0.99,
    correction: bool = False,
    target: Callable[[str, nn.Linear], bool] | None = None,
) -> list[str]:
    """Replace (in place) every ``nn.Linear`` of ``model`` selected by ``target(name, module)`` by an
    :class:`SVFitLinear`, freeze every other parameter, and return the replaced names."""
    return wrap(model, lambda layer: SVFitLinear(layer, rank, energy=energy, correction=correction), target)
