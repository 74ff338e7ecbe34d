"""Tensor algebra for Tucker models: unfolding, n-mode products, Tucker reconstruction and HOSVD.

Unfolding convention: ``unfold(x, n)`` is ``x`` with axis ``n`` moved first and the rest flattened in
C order (the numpy / TensorLy convention; Kolda-Bader order the other axes differently, which only
permutes columns). Reference: T. G. Kolda, B. W. Bader, "Tensor decompositions and applications",
SIAM Review 51(3), 2009; L. De Lathauwer, B. De Moor, J. Vandewalle, "A multilinear singular value
decomposition", SIAM J. Matrix Anal. Appl. 21(4), 2000.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from graphrec.core._checks import as_tensor
from graphrec.utils.validation import check_int


def _mode(mode: int, ndim: int) -> int:
    mode = check_int(mode, "mode", low=-ndim, high=ndim - 1)
    return mode % ndim


def unfold(x: Any, mode: int) -> torch.Tensor:
    """Mode-``mode`` matricisation: shape ``(I_mode, prod of the other sizes)``."""
    x = as_tensor(x, "x", min_ndim=1)
    mode = _mode(mode, x.ndim)
    return torch.movedim(x, mode, 0).reshape(x.shape[mode], -1)


def fold(m: Any, mode: int, shape: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`unfold`: the tensor of ``shape`` whose mode-``mode`` unfolding is ``m``."""
    m = as_tensor(m, "m", ndim=2)
    shape = tuple(int(s) for s in shape)
    mode = _mode(mode, len(shape))
    moved = (shape[mode],) + shape[:mode] + shape[mode + 1 :]
    if tuple(m.shape) != (moved[0], math.prod(moved[1:])):
        raise ValueError(f"m with shape {tuple(m.shape)} is not a mode-{mode} unfolding of a tensor of shape {shape}")
    return torch.movedim(m.reshape(moved), 0, mode)


def mode_dot(x: Any, matrix: Any, mode: int) -> torch.Tensor:
    """n-mode product ``x ×_mode matrix``: axis ``mode`` (size ``I``) is replaced by ``matrix @ ·`` (``matrix`` is ``(J, I)``)."""
    x = as_tensor(x, "x", min_ndim=1)
    matrix = as_tensor(matrix, "matrix", ndim=2).to(x)
    mode = _mode(mode, x.ndim)
    if matrix.shape[1] != x.shape[mode]:
        raise ValueError(f"matrix has {matrix.shape[1]} columns but mode {mode} of x has size {x.shape[mode]}")
    return torch.movedim(torch.tensordot(matrix, x, dims=([1], [mode])), 0, mode)


def multi_mode_dot(x: Any, matrices: Sequence[Any], modes: Sequence[int] | None = None) -> torch.Tensor:
    """``x ×_{modes[0]} matrices[0] ×_{modes[1]} matrices[1] ...`` (``modes`` default ``0, 1, ...``)."""
    modes = list(range(len(matrices))) if modes is None else list(modes)
    if len(modes) != len(matrices):
        raise ValueError(f"got {len(matrices)} matrices but {len(modes)} modes")
    out = as_tensor(x, "x", min_ndim=1)
    if len({m % out.ndim for m in modes}) != len(modes):
        raise ValueError(f"modes must be distinct, got {modes}")
    for m, mode in zip(matrices, modes):
        out = mode_dot(out, m, mode)
    return out


def tucker_to_tensor(core: Any, factors: Sequence[Any]) -> torch.Tensor:
    """``core ×_1 U_1 ×_2 U_2 ... ×_N U_N``: core ``(r_1, ..., r_N)``, factors ``(I_n, r_n)``; shape ``(I_1, ..., I_N)``."""
    core = as_tensor(core, "core", min_ndim=1)
    if len(factors) != core.ndim:
        raise ValueError(f"need one factor per core mode ({core.ndim}), got {len(factors)}")
    return multi_mode_dot(core, factors)


def hosvd(x: Any, ranks: Sequence[int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Truncated higher-order SVD: factors = top ``ranks[n]`` left singular vectors of each unfolding.

    Returns ``(core, factors)`` with ``core = x ×_n U_n^T`` ``(r_1, ..., r_N)`` and orthonormal
    ``factors[n]`` ``(I_n, r_n)``; exact (``tucker_to_tensor(core, factors) == x``) when every
    ``ranks[n]`` reaches the multilinear rank.
    """
    x = as_tensor(x, "x", min_ndim=1)
    if len(ranks) != x.ndim:
        raise ValueError(f"ranks must give one rank per mode ({x.ndim}), got {len(ranks)}")
    factors = []
    for n, r in enumerate(ranks):
        r = check_int(r, f"ranks[{n}]", low=1)
        if r > x.shape[n]:
            raise ValueError(f"ranks[{n}]={r} exceeds the size {x.shape[n]} of mode {n}")
        u, _, _ = torch.linalg.svd(unfold(x, n), full_matrices=False)
        factors.append(u[:, :r])
    return multi_mode_dot(x, [u.T for u in factors]), factors
