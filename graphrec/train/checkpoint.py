"""Atomic checkpoint files: write, read back, and check they fit the model and training settings being resumed.

A checkpoint is one ``torch.save`` dictionary. It is written to a temporary file in the target
folder and moved over the old one with ``os.replace`` (atomic on POSIX and Windows), so a crash
mid-write leaves the previous checkpoint intact. Files are read with ``weights_only=True``
(tensors and plain containers only; no arbitrary code runs on load).
"""
from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CHECKPOINT_FILENAME",
    "CheckpointError",
    "check_state_dict_compatible",
    "check_training_settings_match",
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


# Entries of an optimizer param group or a scheduler state that record progress or implementation
# choices, not the training settings: they may differ between the checkpoint and the resuming run.
_PROGRESS_KEYS = frozenset({
    "params", "foreach", "fused", "capturable", "differentiable",                 # optimizer param group
    "last_epoch", "_step_count", "_last_lr", "_is_initial", "_get_lr_called_within_step",   # schedulers
    "best", "num_bad_epochs", "cooldown_counter",                                 # ReduceLROnPlateau
    "T_cur", "T_i",                                                              # CosineAnnealingWarmRestarts' cycle
    "base_lrs",                                                                   # = the groups' initial_lr
})


def _shown(mapping: Mapping) -> Any:
    """A data-keyed setting as the user wrote it: a Counter (``MultiStepLR``'s milestones) as its sorted elements."""
    if isinstance(mapping, Counter):
        return sorted(mapping.elements())
    return dict(mapping)


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def _setting_differences(saved: Any, current: Any, where: str, skip: frozenset[str]) -> list[str]:
    """``'where.key: saved vs current'`` for every plain setting (number, str, bool, None, sequences
    of them, nested dicts) that both sides hold and that differs; keys in ``skip`` are ignored.

    A mapping with string keys is a state (a param group, a scheduler's state): the entries both
    sides hold are compared. One keyed by other values is a setting in itself (``MultiStepLR``'s
    ``milestones``, a ``Counter`` of epochs) and is compared whole, entries on one side only included.
    """
    if isinstance(saved, Mapping) and isinstance(current, Mapping):
        if not all(isinstance(key, str) for key in (*saved, *current)):
            if dict(saved) == dict(current):
                return []
            return [f"{where}: {_shown(saved)} in the checkpoint vs {_shown(current)} now"]
        out = []
        for key in sorted(saved.keys() & current.keys(), key=str):
            if key not in skip:
                out += _setting_differences(saved[key], current[key], f"{where}.{key}", skip)
        return out
    sequences = isinstance(saved, (tuple, list)) and isinstance(current, (tuple, list))
    if sequences and len(saved) != len(current):
        return [f"{where}: {len(saved)} entries in the checkpoint vs {len(current)} now"]
    if sequences and any(isinstance(v, Mapping) for v in (*saved, *current)):   # e.g. SequentialLR's schedulers
        return [d for i, (a, b) in enumerate(zip(saved, current))
                for d in _setting_differences(a, b, f"{where}[{i}]", skip)]
    plain = (bool, int, float, str, type(None), tuple, list)
    if isinstance(saved, plain) and isinstance(current, plain) and _plain(saved) != _plain(current):
        return [f"{where}: {saved!r} in the checkpoint vs {current!r} now"]
    return []


def check_training_settings_match(
    saved_optimizer: Mapping[str, Any], optimizer: torch.optim.Optimizer,
    saved_scheduler: Mapping[str, Any] | None, scheduler: Any, path: str | os.PathLike,
) -> None:
    """Raise :class:`CheckpointError` if the checkpoint was trained with other optimizer or scheduler settings.

    Loading a checkpoint's optimizer and scheduler states replaces the settings they carry (the
    param groups' learning rate, betas, weight decay, ...; a scheduler's ``gamma``, ``T_max``,
    ``factor``, ...), so resuming with changed settings would silently go on with the old ones.
    Compared: every plain setting held on both sides, except progress and implementation entries
    (``last_epoch``, ``_last_lr``, the plateau counters, the warm-restart position ``T_cur`` /
    ``T_i``, ``foreach`` / ``fused``, ...); data-keyed settings such as ``MultiStepLR``'s ``milestones``
    are compared whole. The base
    learning rate is a group's ``initial_lr`` where a scheduler records it (all but
    ``ReduceLROnPlateau``, whose changes to ``lr`` cannot be told from a changed setting, so its
    base rate goes unchecked) and ``lr`` itself without a scheduler. A ``LambdaLR`` records the
    attributes of callable objects among its ``lr_lambdas`` (so those are compared) but nothing of
    plain functions, whose parameters go unchecked.

    Parameters
    ----------
    saved_optimizer, saved_scheduler : the checkpoint's ``state_dict`` of each (``None``: no scheduler).
    optimizer, scheduler : those of the resuming run, before the saved states are loaded.
    path : the checkpoint file, named in the message.
    """
    where = f"checkpoint file {str(Path(path))!r}"
    saved_groups = saved_optimizer.get("param_groups", [])
    groups = optimizer.state_dict()["param_groups"]
    if len(saved_groups) != len(groups):
        raise CheckpointError(
            f"{where} has {len(saved_groups)} optimizer parameter group(s), this optimizer {len(groups)}; "
            "use another checkpoint_dir or resume=False"
        )
    skip = _PROGRESS_KEYS if scheduler is None else _PROGRESS_KEYS | {"lr"}
    problems = [d for i, (a, b) in enumerate(zip(saved_groups, groups))
                for d in _setting_differences(a, b, f"optimizer group {i}", skip)]
    if saved_scheduler is not None and scheduler is not None:
        problems += _setting_differences(saved_scheduler, scheduler.state_dict(), "scheduler", _PROGRESS_KEYS)
    if problems:
        raise CheckpointError(
            f"{where} was trained with other settings ({'; '.join(problems)}); resuming would silently go on "
            "with the checkpoint's. Rebuild with its settings to continue it, or use another checkpoint_dir or "
            "resume=False to start over"
        )
