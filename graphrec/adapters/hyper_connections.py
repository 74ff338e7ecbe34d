"""Hyper-connections (HC) with the residual mixing matrix on the spectral sphere (sHC) or the Birkhoff polytope (mHC).

``n`` parallel residual streams ``X`` (..., n, d) replace the single residual stream. A layer with
block ``F`` (any module (..., d) -> (..., d)) computes

    ``X' = H_res X + H_post^T F(H_pre X)``,

with ``H_pre`` (1, n) reading the block input from the streams, ``H_post`` (1, n) writing the block
output back, and ``H_res`` (n, n) mixing the streams. The residual matrix is

- ``"none"``: unconstrained (HC); products of ``H_res`` over depth can blow up or vanish;
- ``"spectral_sphere"``: ``H_res = radius * H / ||H||_2`` (sHC), which allows negative entries
  (subtractive mixing) while ``||H_res||_2 = radius`` exactly, so that for ``radius = 1`` the
  residual path is non-expansive at any depth;
- ``"birkhoff"``: ``H_res = Sinkhorn(exp(H))`` doubly stochastic (mHC), non-negative.

The constraint is a ``torch.nn.utils.parametrize`` parametrisation of ``H_res``, so any optimiser
keeps it exactly. At initialisation ``H_res = I``, ``H_pre = 1/n`` and ``H_post = 1``: with the
streams started as copies of the input (:class:`HyperConnectedStack`), every stream then follows the
plain residual network ``x + F(x)``.

[recon] Static hyper-connections only (no input-dependent ``H``); sHC's exact parametrisation is
reconstructed from the abstract (rescaling by the exact largest singular value, cheap for small ``n``).

References: D. Zhu et al., "Hyper-connections", ICLR 2025; Z. Xie et al., "mHC: manifold-constrained
hyper-connections", 2025; "Beyond the Birkhoff polytope: spectral-sphere-constrained
hyper-connections", arXiv 2603.20896, 2026.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.utils import parametrize

from graphrec.core.orthogonal import project_spectral_sphere
from graphrec.core.transport import doubly_stochastic
from graphrec.utils.validation import check_choice, check_float, check_int


class SpectralSphere(nn.Module):
    """Parametrisation ``H -> radius * H / ||H||_2`` onto the spectral-norm sphere (sHC)."""

    def __init__(self, radius: float = 1.0) -> None:
        super().__init__()
        self.radius = check_float(radius, "radius", low=0.0, low_open=True)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return project_spectral_sphere(h, self.radius)


class Birkhoff(nn.Module):
    """Parametrisation ``logits -> Sinkhorn(exp(logits))`` onto the doubly stochastic matrices (mHC)."""

    def __init__(self, n_iter: int = 20) -> None:
        super().__init__()
        self.n_iter = check_int(n_iter, "n_iter", low=1)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return doubly_stochastic(logits, n_iter=self.n_iter, tol=0.0)


class HyperConnection(nn.Module):
    """One hyper-connected residual layer around ``block`` over ``n_streams`` streams.

    Parameters
    ----------
    block : nn.Module mapping (..., d) -> (..., d), the residual branch ``F``
    n_streams : int, ``n >= 1``
    constraint : {"spectral_sphere", "none", "birkhoff"}, the set ``H_res`` lives in (see module docstring)
    radius : float > 0, the spectral norm of ``H_res`` for ``"spectral_sphere"``
    sinkhorn_iters : int, Sinkhorn iterations for ``"birkhoff"``
    birkhoff_logit : float, initial diagonal logit for ``"birkhoff"`` (``H_res`` starts near ``I``)

    Notes
    -----
    Trainable: ``h_pre`` (n,), ``h_post`` (n,), ``h_res`` (n, n) (through
    ``parametrizations.h_res.original`` unless ``constraint="none"``), and ``block``'s parameters.

    Examples
    --------
    >>> layer = HyperConnection(nn.Linear(8, 8), 4)
    >>> layer(torch.randn(2, 4, 8)).shape
    torch.Size([2, 4, 8])
    >>> round(float(torch.linalg.matrix_norm(layer.h_res.detach(), ord=2)), 6)
    1.0
    """

    def __init__(
        self,
        block: nn.Module,
        n_streams: int,
        *,
        constraint: str = "spectral_sphere",
        radius: float = 1.0,
        sinkhorn_iters: int = 20,
        birkhoff_logit: float = 8.0,
    ) -> None:
        super().__init__()
        if not isinstance(block, nn.Module):
            raise TypeError(f"block must be an nn.Module, got {type(block).__name__}")
        self.block = block
        self.n_streams = check_int(n_streams, "n_streams", low=1)
        self.constraint = check_choice(constraint, "constraint", ("spectral_sphere", "none", "birkhoff"))
        n = self.n_streams
        like = next(block.parameters(), torch.empty(0))
        kw = dict(dtype=like.dtype if like.is_floating_point() else torch.get_default_dtype(), device=like.device)
        self.h_pre = nn.Parameter(torch.full((n,), 1.0 / n, **kw))
        self.h_post = nn.Parameter(torch.ones(n, **kw))
        if self.constraint == "birkhoff":
            logit = check_float(birkhoff_logit, "birkhoff_logit", low=0.0)
            self.h_res = nn.Parameter(logit * torch.eye(n, **kw))
            parametrize.register_parametrization(self, "h_res", Birkhoff(sinkhorn_iters))
        else:
            self.h_res = nn.Parameter(torch.eye(n, **kw))
            if self.constraint == "spectral_sphere":
                parametrize.register_parametrization(self, "h_res", SpectralSphere(radius))

    def forward(self, streams: torch.Tensor) -> torch.Tensor:
        """``streams`` (..., n, d) -> ``H_res X + H_post^T F(H_pre X)`` (..., n, d)."""
        if streams.ndim < 2 or streams.shape[-2] != self.n_streams:
            raise ValueError(f"streams must have shape (..., {self.n_streams}, d), got {tuple(streams.shape)}")
        x = torch.einsum("n,...nd->...d", self.h_pre, streams)
        y = self.block(x)
        if y.shape != x.shape:
            raise ValueError(f"block must map (..., d) to the same shape, got {tuple(x.shape)} -> {tuple(y.shape)}")
        return self.h_res @ streams + self.h_post[:, None] * y.unsqueeze(-2)


class HyperConnectedStack(nn.Module):
    """A residual network ``x -> x + F_1(x) -> ...`` rebuilt with hyper-connections.

    The input ``x`` (..., d) is copied into ``n_streams`` streams, passed through one
    :class:`HyperConnection` per block (keyword arguments go to each), and the streams are averaged.
    At initialisation the output equals the plain residual network's.

    Examples
    --------
    >>> blocks = [nn.Linear(8, 8) for _ in range(3)]
    >>> stack = HyperConnectedStack(blocks, 4)
    >>> x = torch.randn(5, 8)
    >>> plain = x
    >>> for b in blocks:
    ...     plain = plain + b(plain)
    >>> torch.allclose(stack(x), plain, atol=1e-5)
    True
    """

    def __init__(self, blocks: Iterable[nn.Module], n_streams: int, **kwargs) -> None:
        super().__init__()
        self.layers = nn.ModuleList(HyperConnection(b, n_streams, **kwargs) for b in blocks)
        if len(self.layers) == 0:
            raise ValueError("blocks is empty; expected at least one residual block")
        self.n_streams = self.layers[0].n_streams

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (..., d) -> (..., d)."""
        streams = x.unsqueeze(-2).expand(*x.shape[:-1], self.n_streams, x.shape[-1])
        for layer in self.layers:
            streams = layer(streams)
        return streams.mean(-2)
