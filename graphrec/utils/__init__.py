"""Shared helpers: input validation, random state and device handling, progress bars."""
from graphrec.utils.validation import (
    check_adjacency,
    check_array,
    check_choice,
    check_device,
    check_features,
    check_float,
    check_int,
    check_labels,
    check_random_state,
    torch_generator,
)
from graphrec.utils.progress import progress

__all__ = [
    "check_adjacency",
    "check_array",
    "check_choice",
    "check_device",
    "check_features",
    "check_float",
    "check_int",
    "check_labels",
    "check_random_state",
    "progress",
    "torch_generator",
]
