"""Householder Projector: a low-rank layer whose singular vectors are exactly orthonormal, kept so by a
product of Householder reflections.

The weight is ``W = Q_U[:, :k] diag(d) Q_V[:, :k]^T`` with
``Q_U = H(u_1) ... H(u_k)``, ``H(u) = I - 2 u u^T / ||u||^2`` (:func:`graphrec.core.householder_product`)
and likewise ``Q_V``; the Householder vectors ``u_i`` (d_out, k) and ``v_i`` (d_in, k) are the trainable
parameters, so every optimiser step keeps both bases on the Stiefel manifold to rounding error. In the
paper ``d`` is ``[I_k 0; 0 0]`` (``singular_values="unit"``): ``W`` is a rank-``k`` partial isometry and the
rows of ``Q_V[:, :k]^T`` are the interpretable latent directions (:meth:`HouseholderProjector.directions`).
``singular_values="pretrained"`` keeps the top-``k`` singular values of the pretrained weight instead
(frozen), so the layer starts as the best rank-``k`` approximation of the pretrained layer.

Initialisation follows the paper: ``W = U Σ V^T`` and the Householder vectors of ``U_k`` and ``V_k`` from
their QR factorisation (``torch.geqrf``); the signs ``±1`` that the QR leaves on the diagonal of ``R``
are folded into ``d``, so the initial bases span (and equal, column by column up to those signs) the
top-``k`` singular subspaces of ``W``.

Reference: Y. Song, J. Zhang, N. Sebe, W. Wang, "Householder projector for unsupervised latent semantics
discovery", ICCV 2023 (official code github.com/KingJamesSong/HouseholderGAN, default ``k = 10``).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from graphrec.adapters.base import AdapterLayer, wrap
from graphrec.core.orthogonal import householder_product
from graphrec.utils.validation import check_choice, check_int


def householder_vectors(basis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Householder vectors ``h`` (n, k) with ``householder_product(h, k) = basis diag(signs)``.

    Parameters
    ----------
    basis : Tensor, shape (n, k), n >= k, orthonormal columns

    Returns
    -------
    h : Tensor, shape (n, k), the reflectors of ``geqrf(basis)`` (unit entry on the diagonal, zeros above);
        a column whose reflector is the identity (LAPACK ``tau = 0``) becomes ``e_i``, a sign flip
    signs : Tensor, shape (k,), entries ``±1``
    """
    if basis.ndim != 2 or basis.shape[0] < basis.shape[1]:
        raise ValueError(f"basis must be a tall (n, k) matrix with n >= k, got shape {tuple(basis.shape)}")
    a, tau = torch.geqrf(basis)
    n, k = basis.shape
    h = torch.tril(a, -1)
    h[range(k), range(k)] = 1.0
    identity = tau == 0
    h[:, identity] = torch.eye(n, k, dtype=a.dtype, device=a.device)[:, identity]
    signs = torch.sign((householder_product(h, k) * basis).sum(0))
    return h, signs


class HouseholderProjector(AdapterLayer):
    """Rank-``k`` projector ``y = Q_U[:, :k] diag(d) Q_V[:, :k]^T x + b`` from a pretrained ``nn.Linear``.

    Parameters
    ----------
    base : nn.Linear with weight (d_out, d_in); its SVD (float64) initialises the Householder vectors;
        its bias is kept frozen
    rank : int ``k`` in ``[1, min(d_out, d_in)]`` (the paper's ``diag_size``)
    singular_values : {"unit", "pretrained"}, ``|d| = 1`` (paper) or the top-``k`` singular values of
        the pretrained weight; either way frozen

    Notes
    -----
    Trainable: ``householder_u`` (d_out, k), ``householder_v`` (d_in, k). Frozen buffers:
    ``singular_values`` ``d`` (k,) (signed), ``bias``. The pretrained weight itself is not kept.
    """

    def __init__(self, base: nn.Linear, rank: int, *, singular_values: str = "unit") -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be an nn.Linear, got {type(base).__name__}")
        w = base.weight.detach()
        self.rank = check_int(rank, "rank", low=1, high=min(w.shape))
        check_choice(singular_values, "singular_values", ("unit", "pretrained"))
        u, s, vt = torch.linalg.svd(w.to(torch.float64), full_matrices=False)
        hu, su = householder_vectors(u[:, : self.rank])
        hv, sv = householder_vectors(vt[: self.rank].T)
        d = su * sv * (s[: self.rank] if singular_values == "pretrained" else 1.0)
        dt = w.dtype
        self.register_buffer("singular_values", d.to(dt))
        self.register_buffer("bias", None if base.bias is None else base.bias.detach().clone())
        self.householder_u = nn.Parameter(hu.to(dt))
        self.householder_v = nn.Parameter(hv.to(dt))

    def left_basis(self) -> torch.Tensor:
        """``Q_U[:, :k]``, shape (d_out, k), orthonormal columns."""
        return householder_product(self.householder_u, self.rank)

    def right_basis(self) -> torch.Tensor:
        """``Q_V[:, :k]``, shape (d_in, k), orthonormal columns."""
        return householder_product(self.householder_v, self.rank)

    def directions(self) -> torch.Tensor:
        """The ``k`` orthonormal latent directions (rows), shape (k, d_in): ``Q_V[:, :k]^T``."""
        return self.right_basis().T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (..., d_in) -> (..., d_out)."""
        return F.linear((x @ self.right_basis()) * self.singular_values, self.left_basis(), self.bias)

    def merged_weight(self) -> torch.Tensor:
        """``Q_U[:, :k] diag(d) Q_V[:, :k]^T`` (d_out, d_in)."""
        return (self.left_basis() * self.singular_values) @ self.right_basis().T


def apply_householder_projector(
    model: nn.Module,
    rank: int,
    *,
    singular_values: str = "unit",
    target: Callable[[str, nn.Linear], bool] | None = None,
) -> list[str]:
    """Replace (in place) every ``nn.Linear`` of ``model`` selected by ``target(name, module)`` by a
    :class:`HouseholderProjector`, freeze every other parameter, and return the replaced names."""
    return wrap(model, lambda layer: HouseholderProjector(layer, rank, singular_values=singular_values), target)
