"""Readers per file format, and ``load``: locate -> verify -> convert once -> cache."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphrec._config import writable_root
from graphrec.datasets._cards import _KINDS, DatasetCard, all_cards, get_card
from graphrec.datasets._fetch import fetch_files

logger = logging.getLogger(__name__)

# Bump when a reader's output changes, so stale processed caches are rebuilt.
CONVERSION_VERSION = 2

Reader = Callable[..., Any]
_READERS: dict[str, Reader] = {}
# Formats whose reader manages its own on-disk processing (PyG datasets): no pickle cache.
_UNCACHED: set[str] = set()


def register_format(name: str, *, cache: bool = True) -> Callable[[Reader], Reader]:
    """Register ``reader(paths: dict[file name, Path], card: DatasetCard, **options) -> object``."""

    def deco(fn: Reader) -> Reader:
        _READERS[name] = fn
        if not cache:
            _UNCACHED.add(name)
        return fn

    return deco


def _reader(fmt: str) -> Reader:
    if fmt not in _READERS:
        import graphrec.datasets.readers  # noqa: F401  (registers every reader)
    if fmt not in _READERS:
        raise KeyError(f"no reader registered for format {fmt!r}; known: {sorted(_READERS)}")
    return _READERS[fmt]


def _cache_key(card: DatasetCard, options: dict) -> str:
    payload = json.dumps(
        {"v": CONVERSION_VERSION, "format": card.format, "files": [f.sha256 for f in card.files], "options": options},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _atomic_pickle(obj: Any, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def load(name: str, root: str | os.PathLike | None = None, *, verbose: bool = False, **options) -> Any:
    """Load a registered dataset as its typed object (``AttributedGraph``, ``Interactions``, ...).

    Raw files are looked up in ``root``, then ``$GRAPHREC_DATA``, then ``~/.cache/graphrec``;
    missing ones are downloaded from the card's URL; every file's sha256 is checked. The
    converted object is cached once under ``<writable root>/processed/``.

    Parameters
    ----------
    name : str
        A dataset name from ``list_datasets()``.
    root : path, optional
        Data root searched first.
    verbose : bool, default False
        Show a progress bar for each file downloaded.
    **options
        Reader options overriding the card's defaults (e.g. ``seed`` for re-splitting).
    """
    card = get_card(name)
    reader = _reader(card.format)
    opts = {**card.options, **options}
    if card.format in _UNCACHED:
        return reader(fetch_files(card, root, verbose=verbose), card, root=root, **opts)
    cache = writable_root(root) / "processed" / f"{card.name}-{_cache_key(card, opts)}.pkl"
    if cache.is_file():
        try:
            with open(cache, "rb") as fh:
                return pickle.load(fh)
        except Exception as exc:  # a damaged pickle raises almost anything: UnpicklingError, EOFError, ValueError, ...
            logger.warning("processed cache %s is unreadable (%s: %s); converting again", cache, type(exc).__name__, exc)
    obj = reader(fetch_files(card, root, verbose=verbose), card, **opts)
    _atomic_pickle(obj, cache)
    return obj


def list_datasets(kind: str | None = None) -> list[str]:
    """Names of all registered datasets, optionally of one kind (``graph``, ``interactions``, ...).

    An unknown ``kind`` raises ``ValueError`` listing the kinds (rather than giving an empty list).
    """
    if kind is not None and kind not in _KINDS:
        raise ValueError(f"kind={kind!r} is not a dataset kind; expected one of {_KINDS}")
    return sorted(n for n, c in all_cards().items() if kind is None or c.kind == kind)
