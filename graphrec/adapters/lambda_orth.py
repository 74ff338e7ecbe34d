"""λ-orthogonality: an affine map between two models' embedding spaces, kept close to orthogonal.

A new model's embeddings ``z_new`` (d_in) are mapped to an old model's space (d_out) by
``h(z) = W z + b``, trained with an alignment loss plus

    ``mu * R_λ(W)``,  ``R_λ(W) = ReLU(||W^T W - I||_F - λ)^2``  (:func:`graphrec.core.orthogonality_penalty`),

so ``W`` is free inside the ball of orthogonality defect ``λ`` around the Stiefel manifold and is
pulled back when it leaves it. ``λ = 0`` with a large ``mu`` approaches an orthogonal (Procrustes)
map, which keeps the new model's geometry; ``λ = inf`` (or ``mu = 0``) is a plain affine map, which
aligns best on the training distribution but can distort the new space. ``mu = inf`` is the hard
limit: ``W`` is kept orthonormal to rounding for any number of optimiser steps by
``torch.nn.utils.parametrizations.orthogonal`` (which, unlike a product of ``d`` Householder
reflections, can start in either connected component of the square orthogonal group: use
:meth:`LambdaOrthogonalLinear.init_procrustes` to start from the closed-form orthogonal solution).

[recon] The paper's method section and code could not be read; the hinge form of ``R_λ`` above is
reconstructed from the abstract and must be checked against the paper.

Reference: S. Ricci, N. Biondi, F. Pernici, I. Patras, A. Del Bimbo, "λ-orthogonality
regularization for compatible representation learning", NeurIPS 2025 (arXiv 2509.16664).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

from graphrec.adapters.base import AdapterLayer
from graphrec.core._checks import as_tensor
from graphrec.core.orthogonal import orthogonality_error, orthogonality_penalty
from graphrec.utils.validation import check_float


class LambdaOrthogonalLinear(AdapterLayer):
    """Trainable affine map ``h(z) = W z + b`` with the λ-orthogonality penalty :meth:`penalty`.

    Parameters
    ----------
    base : nn.Linear with weight (d_out, d_in), the initial map (its weight and bias are copied and
        trained; ``base`` itself is left unchanged)
    lam : float in [0, inf], ``λ``, the orthogonality defect ``||W^T W - I||_F`` left unpenalised
        (``||W W^T - I||_F`` when ``d_out < d_in``)
    mu : float in [0, inf], weight of the penalty; ``inf`` makes ``W`` exactly orthonormal (an
        orthogonal parametrisation started at the polar factor of ``base.weight``; needs ``lam = 0``)

    Notes
    -----
    Trainable: ``weight`` (d_out, d_in) (with ``mu = inf``, the parameter behind it) and
    ``bias`` (d_out,) if ``base`` has one. Add :meth:`penalty` to the training loss.

    Examples
    --------
    >>> layer = LambdaOrthogonalLinear(nn.Linear(4, 4), lam=0.0, mu=float("inf"))
    >>> bool(layer.orthogonality_defect() < 1e-5)
    True
    """

    def __init__(self, base: nn.Linear, lam: float = 0.1, mu: float = 1.0) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be an nn.Linear, got {type(base).__name__}")
        self.lam = math.inf if lam == math.inf else check_float(lam, "lam", low=0.0)
        self.mu = math.inf if mu == math.inf else check_float(mu, "mu", low=0.0)
        self.hard = self.mu == math.inf
        if self.hard and self.lam != 0.0:
            raise ValueError(f"mu=inf (exactly orthogonal W) needs lam=0, got lam={lam}")
        self.weight = nn.Parameter(base.weight.detach().clone())
        self.bias = None if base.bias is None else nn.Parameter(base.bias.detach().clone())
        if self.hard:
            orthogonal(self, "weight")
            with torch.no_grad():  # start from the nearest (polar) orthonormal matrix to the base weight
                u, _, vt = torch.linalg.svd(base.weight.detach(), full_matrices=False)
                self.weight = u @ vt

    @torch.no_grad()
    def init_procrustes(self, z_new: torch.Tensor, z_old: torch.Tensor) -> "LambdaOrthogonalLinear":
        """Set ``W`` to the orthogonal Procrustes solution ``argmin ||W z_new - z_old||`` over orthonormal
        ``W`` (columns, or rows if wide) on the centred data, and ``b`` to the mean residual; returns ``self``.

        ``z_new`` (n, d_in) and ``z_old`` (n, d_out) are paired embeddings of the same ``n`` items.
        """
        d_out, d_in = self.weight.shape
        z_new = as_tensor(z_new, "z_new", ndim=2).to(self.weight)
        z_old = as_tensor(z_old, "z_old", ndim=2).to(self.weight)
        if z_new.shape[1] != d_in or z_old.shape[1] != d_out or z_new.shape[0] != z_old.shape[0]:
            raise ValueError(
                f"z_new must be (n, {d_in}) and z_old (n, {d_out}) with the same n, got {tuple(z_new.shape)} and {tuple(z_old.shape)}"
            )
        mean_new, mean_old = z_new.mean(0), z_old.mean(0)
        u, _, vt = torch.linalg.svd((z_new - mean_new).T @ (z_old - mean_old), full_matrices=False)
        if self.hard:
            self.weight = (u @ vt).T  # through the parametrisation's right inverse
        else:
            self.weight.copy_((u @ vt).T)
        if self.bias is not None:
            self.bias.copy_(mean_old - self.weight @ mean_new)
        return self

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``z`` (..., d_in) -> ``W z + b`` (..., d_out)."""
        return F.linear(z, self.weight, self.bias)

    def orthogonality_defect(self) -> torch.Tensor:
        """``||W^T W - I||_F`` (``||W W^T - I||_F`` for a wide ``W``), shape ()."""
        return orthogonality_error(self.weight.detach())

    def penalty(self) -> torch.Tensor:
        """``mu * ReLU(||W^T W - I||_F - lam)^2``, differentiable, shape () (zero for ``lam = inf``, ``mu = 0`` or ``mu = inf``)."""
        if self.hard or self.mu == 0.0 or self.lam == math.inf:
            return self.weight.new_zeros(())
        return self.mu * orthogonality_penalty(self.weight, self.lam)

    def merged_weight(self) -> torch.Tensor:
        """``W`` (d_out, d_in)."""
        return self.weight
