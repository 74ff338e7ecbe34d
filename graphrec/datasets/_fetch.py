"""Locate, download and verify raw files; every write is atomic (temp file + ``os.replace``)."""
from __future__ import annotations

import hashlib
import logging
import os
import http.client
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from graphrec._config import data_roots, writable_root
from graphrec.datasets._cards import DatasetCard, FileSpec

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


class ChecksumError(OSError):
    """A raw file's sha256 differs from its card: the file is corrupt, truncated or a different version."""


def sha256sum(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, spec: FileSpec) -> None:
    """Raise :class:`ChecksumError` naming the file and both checksums when they differ."""
    digest = sha256sum(path)
    if digest != spec.sha256:
        size = path.stat().st_size
        expected_size = f" (expected {spec.size} bytes)" if spec.size is not None else ""
        raise ChecksumError(
            f"{path} is corrupt or truncated: sha256 {digest}, {size} bytes{expected_size}; "
            f"expected sha256 {spec.sha256}. Delete the file to download it again from {spec.url}"
        )


def download(url: str, dest: Path, spec: FileSpec | None = None, *, timeout: float = 60.0, verbose: bool = True) -> Path:
    """Stream ``url`` to ``dest`` through a temp file in the same folder; verify before renaming.

    An interrupted transfer or a checksum mismatch leaves nothing at ``dest``. A failed request
    (HTTP error, refused connection, time-out) raises ``OSError`` naming the URL.
    """
    from graphrec.utils.progress import progress

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    try:
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                total = resp.headers.get("Content-Length")
                bar = progress(total=int(total) if total else None, unit="B", unit_scale=True, desc=dest.name,
                               verbose=verbose)
                with bar:
                    for block in iter(lambda: resp.read(_CHUNK), b""):
                        out.write(block)
                        h.update(block)
                        bar.update(len(block))
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
            plain_url_error = isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError)
            raise OSError(
                f"download of {url} failed ({exc.reason if plain_url_error else exc}); nothing was written to {dest}"
            ) from exc
        if spec is not None and h.hexdigest() != spec.sha256:
            raise ChecksumError(
                f"download of {url} gave sha256 {h.hexdigest()}, expected {spec.sha256} for {dest.name}; "
                f"nothing was written to {dest}"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def locate(card: DatasetCard, spec: FileSpec, root=None) -> Path | None:
    """The first existing copy of ``spec`` in the data roots, or ``None``."""
    for base in data_roots(root):
        candidate = base / card.path / spec.name
        if candidate.is_file():
            return candidate
    return None


def fetch_files(card: DatasetCard, root: str | os.PathLike | None = None, *, download_missing: bool = True, verbose: bool = True) -> dict[str, Path]:
    """Paths of every raw file of ``card``, verified; missing files are downloaded once."""
    paths: dict[str, Path] = {}
    for spec in card.files:
        path = locate(card, spec, root)
        if path is None:
            if not download_missing:
                raise FileNotFoundError(
                    f"{card.path}/{spec.name} is not in any data root {[str(r) for r in data_roots(root)]}"
                )
            path = writable_root(root) / card.path / spec.name
            logger.info("downloading %s from %s", spec.name, spec.url)
            download(spec.url, path, spec, verbose=verbose)
        else:
            verify(path, spec)
        paths[spec.name] = path
    return paths
