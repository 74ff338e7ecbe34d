"""Where graphrec keeps data: explicit ``root`` -> ``$GRAPHREC_DATA`` -> ``~/.cache/graphrec``."""
from __future__ import annotations

import os
import stat
from pathlib import Path

ENV_DATA = "GRAPHREC_DATA"
DEFAULT_DATA_HOME = Path("~/.cache/graphrec")

_data_home: Path | None = None


def get_data_home() -> Path:
    """The default data root: ``set_data_home`` > ``$GRAPHREC_DATA`` > ``~/.cache/graphrec``."""
    if _data_home is not None:
        return _data_home
    env = os.environ.get(ENV_DATA)
    return Path(env).expanduser() if env else DEFAULT_DATA_HOME.expanduser()


def set_data_home(path: str | os.PathLike | None) -> None:
    """Override the default data root for this process (``None`` restores the default)."""
    global _data_home
    _data_home = None if path is None else Path(path).expanduser()


def data_roots(root: str | os.PathLike | None = None) -> list[Path]:
    """Candidate roots in resolution order, without duplicates.

    Raises ``NotADirectoryError`` when ``root`` or the data home (e.g. a mistyped ``$GRAPHREC_DATA``)
    names an existing file: falling back to the next root would hide the mistake.
    """
    given = [(Path(root).expanduser(), "root")] if root is not None else []
    home_source = ("set_data_home" if _data_home is not None else f"${ENV_DATA}" if os.environ.get(ENV_DATA)
                   else "the default data home")
    given.append((get_data_home(), home_source))
    for path, source in given:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(f"{source}={str(path)!r} is a file; expected a data folder")
    candidates = [path for path, _ in given]
    candidates.append(DEFAULT_DATA_HOME.expanduser())
    seen: list[Path] = []
    for c in candidates:
        if c not in seen:
            seen.append(c)
    return seen


def _is_writable(folder: Path) -> bool:
    """Writable by permission bits *and* access check: a read-only share stays untouched even for root."""
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) and os.access(folder, os.W_OK)


def writable_root(root: str | os.PathLike | None = None) -> Path:
    """The first root in resolution order that is (or can be made) writable."""
    for candidate in data_roots(root):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if _is_writable(candidate):
            return candidate
    raise PermissionError(
        f"no writable data root among {[str(p) for p in data_roots(root)]}; "
        f"pass root=... or set ${ENV_DATA} to a writable folder"
    )
