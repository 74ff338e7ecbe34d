"""Split-fraction check shared by the generators (scalar checks live in ``graphrec.utils.validation``)."""
from __future__ import annotations

from typing import Any

from graphrec.utils.validation import check_float


def check_split_fractions(valid_fraction: Any, test_fraction: Any) -> tuple[float, float]:
    """Two fractions in ``[0, 1)`` whose sum leaves a non-empty training part."""
    v = check_float(valid_fraction, "valid_fraction", low=0.0, high=1.0)
    t = check_float(test_fraction, "test_fraction", low=0.0, high=1.0)
    if v + t >= 1.0:
        raise ValueError(f"valid_fraction + test_fraction must be < 1 to leave training data, got {v} + {t}")
    return v, t
