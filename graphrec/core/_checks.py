"""Argument checks shared by the ``graphrec.core`` primitives (tensors in, clear errors out)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch


def as_tensor(
    x: Any,
    name: str,
    *,
    ndim: int | None = None,
    min_ndim: int | None = None,
    dtype: torch.dtype | None = None,
    allow_empty: bool = False,
) -> torch.Tensor:
    """``x`` as a floating tensor (kept on its device), checked for dimensionality, size and finiteness.

    Non-floating input is cast to ``dtype`` (default float64 for numpy / lists, float32 otherwise);
    without ``dtype``, float16 / bfloat16 are computed in float32 (CPU linear algebra lacks them and
    their 8- or 11-bit mantissas would ruin factorisations and iterative scalings).
    """
    if not isinstance(x, torch.Tensor):
        try:
            arr = np.asarray(x)
        except Exception as exc:  # pragma: no cover - numpy's message is clear
            raise TypeError(f"{name} could not be converted to a tensor: {exc}") from exc
        if arr.dtype == object:
            raise TypeError(f"{name} must hold numbers, got an object array")
        if arr.dtype.kind == "c":  # torch would drop the imaginary part with only a warning
            raise TypeError(f"{name} must be real, got dtype {arr.dtype}")
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
        x = torch.as_tensor(arr, dtype=dtype or torch.float64)
    if x.is_complex():
        raise TypeError(f"{name} must be real, got dtype {x.dtype}")
    if dtype is not None:
        x = x.to(dtype)
    elif not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    elif x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {tuple(x.shape)}")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {tuple(x.shape)}")
    if not allow_empty and x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}); expected at least one entry")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values; expected finite numbers")
    return x
