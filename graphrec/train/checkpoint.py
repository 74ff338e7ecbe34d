"""Atomic checkpoint files: write, read back, and check they fit the model being resumed.

A checkpoint is one ``torch.save`` dictionary. It is written to a temporary file in the target
folder and moved over the old one with ``os.replace`` (atomic on POSIX and Windows), so a crash
mid-write leaves the previous checkpoint intact. Files are read with ``weights_only=True``
(tensors and plain containers only; no arbitrary code runs on load).
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CHECKPOINT_FILENAME",
    "CheckpointError",
    "check_state_dict_compatible",
    "load_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_FILENAME = "last.pt"
FORMAT_VERSION = 1
REQUIRED_KEYS = frozenset(
    {
        "format_version",
        "epochs_done",
        "model",
        "optimizer",
        "scheduler",
        "history",
        "early_stopping",
        "best_state",
        "stopped_early",
        "rng",
        "device_type",
    }
)


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, incomplete, or does not match the model / trainer."""


def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write ``state`` to ``path`` atomically (temp file in the same folder, then ``os.replace``).

    ``format_version`` is added to the saved dictionary.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({**state, "format_version": FORMAT_VERSION}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` onto the CPU.

    Raises
    ------
    CheckpointError
        If the file cannot be unpickled (truncated, corrupt, not a checkpoint), lacks keys, or
        has another format version. The message names the file.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint file {str(path)!r} could not be read ({type(exc).__name__}: {exc}); "
            "delete it or pass resume=False to start from scratch"
        ) from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint file {str(path)!r} holds a {type(state).__name__}, expected a dict")
    missing = REQUIRED_KEYS - state.keys()
    if missing:
        raise CheckpointError(f"checkpoint file {str(path)!r} is missing keys {sorted(missing)}")
    if state["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint file {str(path)!r} has format_version {state['format_version']!r}, "
            f"this graphrec reads {FORMAT_VERSION}"
        )
    return state


def check_state_dict_compatible(
    saved: Mapping[str, Any], model: torch.nn.Module, path: str | os.PathLike
) -> None:
    """Raise :class:`CheckpointError` unless ``saved`` has the model's keys and tensor shapes.

    The message lists missing / unexpected keys and every ``name: saved shape vs model shape``.
    """
    expected = model.state_dict()
    problems = []
    missing = sorted(expected.keys() - saved.keys())
    unexpected = sorted(saved.keys() - expected.keys())
    if missing:
        problems.append(f"missing {missing}")
    if unexpected:
        problems.append(f"unexpected {unexpected}")
    for name in sorted(expected.keys() & saved.keys()):
        want, got = expected[name], saved[name]
        if isinstance(want, torch.Tensor) and isinstance(got, torch.Tensor) and want.shape != got.shape:
            problems.append(f"{name}: checkpoint {tuple(got.shape)} vs model {tuple(want.shape)}")
    if problems:
        raise CheckpointError(
            f"checkpoint file {str(Path(path))!r} does not match the model ({'; '.join(problems)}); "
            "use another checkpoint_dir or resume=False"
        )
