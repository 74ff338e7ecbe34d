"""One place that creates progress bars, so every long loop can be silenced the same way."""
from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def progress(iterable: Iterable[T] | None = None, *, verbose: bool | int = True, **kwargs):
    """A ``tqdm`` bar that is disabled when ``verbose`` is falsy (or ``TQDM_DISABLE=1``)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not verbose, leave=False, **kwargs)
