"""Registry of benchmark tasks: each method issue adds methods and datasets to a task.

A *task* (``cluster``, ``recsys``, ``kg``, ...) fixes the metrics; a *dataset* entry returns the
data once per run; a *method* entry fits on it for one seed and returns the metrics.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: ``run(data, seed, device) -> dict of metric name -> float``
MethodRunner = Callable[[Any, int, str], dict[str, float]]
#: ``embed(data, seed, device) -> (embedding (n, k) ndarray, predicted labels (n,) ndarray)``
MethodEmbedder = Callable[[Any, int, str], tuple[Any, Any]]


@dataclass
class Task:
    name: str
    description: str
    metrics: list[str]
    default_method: str
    default_dataset: str
    methods: dict[str, tuple[MethodRunner, str]] = field(default_factory=dict)
    datasets: dict[str, tuple[Callable[[], Any], str]] = field(default_factory=dict)
    embedders: dict[str, MethodEmbedder] = field(default_factory=dict)


_TASKS: dict[str, Task] = {}

# Modules that register tasks, methods and datasets; a method issue appends its module here.
_TASK_MODULES = ["graphrec.bench.tasks.cluster", "graphrec.bench.tasks.graph_regression", "graphrec.bench.tasks.kg", "graphrec.bench.tasks.ctr", "graphrec.bench.tasks.recsys", "graphrec.bench.tasks.tensor", "graphrec.bench.tasks.subspace"]


def register_task(name: str, description: str, metrics: list[str], *, default_method: str, default_dataset: str) -> Task:
    if name in _TASKS:
        return _TASKS[name]
    _TASKS[name] = Task(name, description, list(metrics), default_method, default_dataset)
    return _TASKS[name]


def register_method(
    task: str, name: str, runner: MethodRunner, description: str = "", *, embed: MethodEmbedder | None = None
) -> None:
    """Add a method; ``embed`` (optional) gives the embedding that ``--plot`` projects to 2-D."""
    _TASKS[task].methods[name] = (runner, description)
    if embed is not None:
        _TASKS[task].embedders[name] = embed


def register_dataset(task: str, name: str, loader: Callable[[], Any], description: str = "") -> None:
    _TASKS[task].datasets[name] = (loader, description)


def all_tasks() -> dict[str, Task]:
    """Every registered task by name (importing the built-in task modules first)."""
    for module in _TASK_MODULES:
        importlib.import_module(module)
    return dict(_TASKS)


def get_task(name: str) -> Task:
    registered = all_tasks()
    if name not in registered:
        raise KeyError(f"unknown bench task {name!r}; available: {', '.join(sorted(registered))}")
    return registered[name]
