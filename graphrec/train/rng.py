"""Scoped torch random state for a training run: seed inside, leave the caller's RNG alone.

Built on ``torch.random.fork_rng`` (https://pytorch.org/docs/stable/random.html), which saves
the CPU RNG and the listed CUDA devices' RNGs on entry and restores them on exit.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

__all__ = ["capture_rng_state", "isolated_rng", "restore_rng_state"]


def _cuda_index(device: torch.device) -> int:
    return device.index if device.index is not None else torch.cuda.current_device()


@contextmanager
def isolated_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Run the body with the torch CPU RNG (and ``device``'s CUDA RNG) seeded with ``seed``.

    On exit those RNGs are back in the state they had on entry, whatever the body drew.
    """
    cuda = [_cuda_index(device)] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield


def capture_rng_state(generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    """Snapshot of the torch CPU RNG, ``generator`` and (on CUDA) ``device``'s RNG, as CPU byte tensors."""
    state = {"torch_cpu": torch.get_rng_state(), "generator": generator.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(_cuda_index(device))
    return state


def restore_rng_state(state: dict[str, Any], generator: torch.Generator, device: torch.device) -> None:
    """Put back a snapshot taken by :func:`capture_rng_state` on the same kind of device."""
    torch.set_rng_state(state["torch_cpu"])
    generator.set_state(state["generator"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], _cuda_index(device))
