"""``graphrec bench``: a registry of tasks, methods and datasets, and the runner."""
from graphrec.bench.registry import all_tasks, get_task, register_dataset, register_method, register_task
from graphrec.bench.runner import BenchResult, run_bench, write_json

__all__ = [
    "BenchResult", "all_tasks", "get_task", "register_dataset", "register_method", "register_task", "run_bench",
    "write_json",
]
