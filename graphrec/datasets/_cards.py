"""Dataset cards: one TOML file per dataset under the top-level ``datasets/`` folder.

A card names the canonical public URL, licence, citation and sha256 of every file, the
statistics the loaded object must match, and how the raw files are converted.
"""
from __future__ import annotations

import string
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class FileSpec:
    """One raw file: its name inside the dataset folder, where to download it, and its checksum."""

    name: str
    url: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class DatasetCard:
    name: str
    kind: str
    format: str
    title: str
    path: str
    homepage: str
    license: str
    citation: str
    conversion: str
    files: tuple[FileSpec, ...]
    stats: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    source: Path | None = None


_KINDS = ("graph", "interactions", "triples", "ctr", "tensor", "molecules")
_REQUIRED = ("name", "kind", "format", "title", "path", "homepage", "license", "citation", "conversion", "files")


def cards_dir() -> Path:
    """The folder holding the cards: package data in an installed wheel, ``datasets/`` in a checkout."""
    try:
        from importlib.resources import files

        packaged = Path(str(files("graphrec._cards")))
        if packaged.is_dir():
            return packaged
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parents[2] / "datasets"


def parse_card(path: Path) -> DatasetCard:
    """Read and validate one card file; errors name the file and the missing or bad key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"dataset card {path} is not valid TOML: {exc}") from exc
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise ValueError(f"dataset card {path} lacks required keys {missing}")
    if raw["kind"] not in _KINDS:
        raise ValueError(f"dataset card {path}: kind={raw['kind']!r}, expected one of {_KINDS}")
    if not isinstance(raw["files"], list) or not all(isinstance(f, dict) for f in raw["files"]):
        raise ValueError(f"dataset card {path}: files must be an array of tables ([[files]] entries)")
    files = []
    for i, f in enumerate(raw["files"]):
        for key in ("name", "url", "sha256"):
            if key not in f:
                raise ValueError(f"dataset card {path}: files[{i}] lacks {key!r}")
        sha = f["sha256"]
        if not isinstance(sha, str) or len(sha) != 64 or not all(c in string.hexdigits for c in sha):
            raise ValueError(f"dataset card {path}: files[{i}].sha256 must be 64 hex digits, got {sha!r}")
        files.append(FileSpec(f["name"], f["url"], f["sha256"].lower(), f.get("size")))
    fields = {k: raw[k] for k in _REQUIRED if k != "files"}
    return DatasetCard(
        **fields, files=tuple(files), stats=raw.get("stats", {}), options=raw.get("options", {}), source=path
    )


@lru_cache(maxsize=1)
def all_cards() -> dict[str, DatasetCard]:
    """Every card, keyed by dataset name."""
    cards = {}
    for path in sorted(cards_dir().glob("*.toml")):
        card = parse_card(path)
        if card.name in cards:
            raise ValueError(f"dataset name {card.name!r} is defined twice ({cards[card.name].source} and {path})")
        cards[card.name] = card
    return cards


def get_card(name: str) -> DatasetCard:
    cards = all_cards()
    if name not in cards:
        raise KeyError(f"unknown dataset {name!r}; available: {', '.join(sorted(cards))}")
    return cards[name]
