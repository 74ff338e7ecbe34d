"""Argument checks shared by the generators: each raises ``ValueError``/``TypeError`` naming the argument."""
from __future__ import annotations

import numbers
from typing import Any


def check_int(value: Any, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (either bound optional); bools are rejected."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value}")
    return value


def check_float(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """``value`` as a finite ``float`` in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and value > high
    if value != value or below or above or value in (float("inf"), float("-inf")):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must be a finite number in {'(' if low_open else '['}{lo}, {hi}], got {value}")
    return value


def check_split_fractions(valid_fraction: Any, test_fraction: Any) -> tuple[float, float]:
    """Two fractions in ``[0, 1)`` whose sum leaves a non-empty training part."""
    v = check_float(valid_fraction, "valid_fraction", low=0.0, high=1.0)
    t = check_float(test_fraction, "test_fraction", low=0.0, high=1.0)
    if v + t >= 1.0:
        raise ValueError(f"valid_fraction + test_fraction must be < 1 to leave training data, got {v} + {t}")
    return v, t
