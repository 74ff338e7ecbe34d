"""Poincaré ball of curvature ``-c``: exponential and logarithmic maps at the origin, Möbius addition,
geodesic distance and clipping. Points are the last dimension of tensors ``(..., d)``.

References: O.-E. Ganea, G. Bécigneul, T. Hofmann, "Hyperbolic neural networks", NeurIPS 2018;
Y. Guo et al., "Clipped hyperbolic classifiers are super-hyperbolic classifiers", CVPR 2022 (feature
clipping); HypCD (Liu et al., CVPR 2025) uses both.
"""
from __future__ import annotations

from typing import Any

import torch

from graphrec.core._checks import as_tensor
from graphrec.utils.validation import check_float


def _c(c: float) -> float:
    return check_float(c, "c", low=0.0, low_open=True)


def _norm(x: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny ** 0.5)


def _in_ball(x: Any, name: str, c: float) -> torch.Tensor:
    x = as_tensor(x, name, min_ndim=1)
    if bool((c * (x * x).sum(-1) >= 1).any()):
        raise ValueError(f"{name} has points outside the open Poincaré ball of radius 1/sqrt(c)={c ** -0.5:g}")
    return x


def clip_norm(z: Any, r: float) -> torch.Tensor:
    """Feature clipping ``min(1, r / ||z||) z`` before the exponential map (clipped hyperbolic classifiers)."""
    r = check_float(r, "r", low=0.0, low_open=True)
    z = as_tensor(z, "z", min_ndim=1)
    return z * torch.clamp(r / _norm(z), max=1.0)


def expmap0(v: Any, c: float = 1.0) -> torch.Tensor:
    """``exp_0(v) = tanh(sqrt(c) ||v||) v / (sqrt(c) ||v||)``: tangent vectors at 0 to the ball; shape of ``v``.

    ``tanh`` rounds to 1 for ``sqrt(c) ||v||`` beyond about 9 (float32) or 19 (float64), which would
    put the point on the boundary sphere, outside the open ball that :func:`logmap0`,
    :func:`mobius_add` and :func:`poincare_distance` accept; the factor is therefore capped at
    ``1 - min(64 eps, 0.01)`` of the dtype, so that every result lies strictly inside the ball.
    """
    c = _c(c)
    v = as_tensor(v, "v", min_ndim=1)
    sc = c**0.5
    n = _norm(v)
    margin = min(64 * torch.finfo(v.dtype).eps, 0.01)
    return torch.tanh(sc * n).clamp(max=1.0 - margin) * v / (sc * n)


def logmap0(x: Any, c: float = 1.0) -> torch.Tensor:
    """``log_0(x) = artanh(sqrt(c) ||x||) x / (sqrt(c) ||x||)``, the inverse of :func:`expmap0`."""
    c = _c(c)
    x = _in_ball(x, "x", c)
    sc = c**0.5
    n = _norm(x)
    return torch.atanh(sc * n) * x / (sc * n)


def mobius_add(x: Any, y: Any, c: float = 1.0) -> torch.Tensor:
    """Möbius addition ``x ⊕_c y`` (broadcast over leading dimensions)."""
    c = _c(c)
    x, y = _in_ball(x, "x", c), _in_ball(y, "y", c)
    y = y.to(x)
    xy = (x * y).sum(-1, keepdim=True)
    x2, y2 = (x * x).sum(-1, keepdim=True), (y * y).sum(-1, keepdim=True)
    num = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    return num / (1 + 2 * c * xy + c**2 * x2 * y2)


def poincare_distance(x: Any, y: Any, c: float = 1.0) -> torch.Tensor:
    """Geodesic distance ``(2 / sqrt(c)) artanh(sqrt(c) ||(-x) ⊕_c y||)``; shape = broadcast of ``x``, ``y`` without the last dim."""
    c = _c(c)
    x = as_tensor(x, "x", min_ndim=1)
    d = torch.linalg.vector_norm(mobius_add(-x, y, c), dim=-1)
    return 2 / c**0.5 * torch.atanh((c**0.5 * d).clamp(max=1 - torch.finfo(x.dtype).eps))
