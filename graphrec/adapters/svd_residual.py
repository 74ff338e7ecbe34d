"""Effort-style SVD residual adapter: freeze the principal singular subspace of a weight and train
only its minor (trailing) singular triplets.

``W = U Σ V^T``; ``W_main = U_r Σ_r V_r^T`` (the top ``r = min(d_out, d_in) - q`` triplets) is
frozen and the trailing ``q`` triplets ``(U_res, σ_res, V_res)`` are trainable, so
``W' = W_main + U_res diag(σ_res) V_res^T`` equals ``W`` at initialisation. Optional regularisers keep
``[U_r U_res]`` and ``[V_r V_res]`` orthonormal and the Frobenius norm of ``W`` unchanged.

Reference: Z. Yan et al., "Orthogonal subspace decomposition for generalizable AI-generated image
detection" (Effort), ICML 2025.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from graphrec.adapters.base import AdapterLayer, wrap
from graphrec.core.orthogonal import orthogonality_error
from graphrec.utils.validation import check_int


class SVDResidualLinear(AdapterLayer):
    """Linear layer ``y = x (W_main + U_res diag(σ_res) V_res^T)^T + b`` built from a frozen ``nn.Linear``.

    Parameters
    ----------
    base : nn.Linear with weight (d_out, d_in); its weight is split by an SVD (computed in float64)
    residual_rank : int, ``q`` in ``[1, min(d_out, d_in)]``, the number of trainable minor triplets

    Notes
    -----
    Trainable: ``u_residual`` (d_out, q), ``s_residual`` (q,), ``v_residual`` (d_in, q), i.e.
    ``q (d_out + d_in + 1)`` parameters. Frozen buffers: ``weight_main``, ``u_main``, ``v_main``, ``bias``.
    """

    def __init__(self, base: nn.Linear, residual_rank: int) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be an nn.Linear, got {type(base).__name__}")
        w = base.weight.detach()
        k = min(w.shape)
        self.residual_rank = check_int(residual_rank, "residual_rank", low=1, high=k)
        r = k - self.residual_rank
        u, s, vt = torch.linalg.svd(w.to(torch.float64), full_matrices=False)
        dt = w.dtype
        self.register_buffer("weight_main", ((u[:, :r] * s[:r]) @ vt[:r]).to(dt))
        self.register_buffer("u_main", u[:, :r].to(dt))
        self.register_buffer("v_main", vt[:r].T.to(dt))
        self.register_buffer("bias", None if base.bias is None else base.bias.detach().clone())
        self.register_buffer("initial_sq_norm", (w.to(torch.float64) ** 2).sum().to(dt))
        self.u_residual = nn.Parameter(u[:, r:].to(dt).clone())
        self.s_residual = nn.Parameter(s[r:].to(dt).clone())
        self.v_residual = nn.Parameter(vt[r:].T.to(dt).clone())

    @property
    def weight(self) -> torch.Tensor:
        """Current weight ``W_main + U_res diag(σ_res) V_res^T`` (d_out, d_in)."""
        return self.weight_main + (self.u_residual * self.s_residual) @ self.v_residual.T

    def merged_weight(self) -> torch.Tensor:
        """Same as :attr:`weight`, shape (d_out, d_in)."""
        return self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (..., d_in) -> (..., d_out)."""
        return F.linear(x, self.weight, self.bias)

    def orthogonality_loss(self) -> torch.Tensor:
        """``||[U_r U_res]^T [U_r U_res] - I||_F + ||[V_r V_res]^T [V_r V_res] - I||_F`` (0-d)."""
        u = torch.cat([self.u_main, self.u_residual], 1)
        v = torch.cat([self.v_main, self.v_residual], 1)
        return orthogonality_error(u) + orthogonality_error(v)

    @torch.no_grad()
    def project_residual_(self) -> None:
        """Remove (in place) from ``U_res`` and ``V_res`` their components in ``span(U_r)`` and ``span(V_r)``.

        A hard version of :meth:`orthogonality_loss`'s cross terms, to call after each optimiser step:
        afterwards ``W' V_r = U_r Σ_r`` and ``W'^T U_r = V_r Σ_r``, so the frozen principal singular
        triplets are exactly (to rounding) singular triplets of the trained weight.
        """
        self.u_residual.sub_(self.u_main @ (self.u_main.T @ self.u_residual))
        self.v_residual.sub_(self.v_main @ (self.v_main.T @ self.v_residual))

    def norm_preservation_loss(self) -> torch.Tensor:
        """``| ||W'||_F^2 - ||W||_F^2 |`` against the weight at construction (0-d)."""
        return torch.abs((self.weight**2).sum() - self.initial_sq_norm)


def apply_svd_residual(
    model: nn.Module, residual_rank: int, target: Callable[[str, nn.Linear], bool] | None = None
) -> list[str]:
    """Replace (in place) every ``nn.Linear`` of ``model`` selected by ``target(name, module)`` by a
    :class:`SVDResidualLinear`, freeze every other parameter, and return the replaced names.

    ``target`` defaults to all linear layers. Raises if nothing was selected.
    """
    return wrap(model, lambda layer: SVDResidualLinear(layer, residual_rank), target)
