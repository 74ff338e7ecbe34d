"""One place that creates progress bars, so every long loop can be silenced the same way."""
from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T] | None = None, *, verbose: bool | int = True, **kwargs: Any) -> "tqdm.std.tqdm":
    """A ``tqdm`` bar that is disabled when ``verbose`` is falsy or ``TQDM_DISABLE`` is set (``1``, ``true``).

    tqdm reads ``TQDM_DISABLE`` only where ``disable`` is not passed, so it is honoured here.
    """
    from tqdm.auto import tqdm

    silenced = os.environ.get("TQDM_DISABLE", "").strip().lower() in ("1", "true", "yes")
    return tqdm(iterable, disable=silenced or not verbose, leave=False, **kwargs)
