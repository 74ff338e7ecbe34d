"""Run methods x datasets x seeds, measuring wall time and peak memory, and report mean +- std."""
from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphrec.bench.registry import Task, get_task
from graphrec.utils.validation import check_device

logger = logging.getLogger(__name__)


class _PeakRSS:
    """Samples the process's resident set size in a thread; ``peak - start`` is the run's footprint."""

    def __init__(self, interval: float = 0.01) -> None:
        import psutil

        self._proc = psutil.Process(os.getpid())
        self._interval = interval
        self._stop = threading.Event()
        self.start = self.peak = self._proc.memory_info().rss

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> "_PeakRSS":
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def delta_mb(self) -> float:
        return (self.peak - self.start) / 2**20


@dataclass
class RunRecord:
    method: str
    dataset: str
    seed: int
    metrics: dict[str, float]
    seconds: float
    peak_mb: float
    cuda_peak_mb: float | None = None


@dataclass
class BenchResult:
    task: str
    device: str
    seeds: list[int]
    records: list[RunRecord] = field(default_factory=list)

    def summary(self) -> list[dict[str, Any]]:
        """One row per (method, dataset): mean and std of each metric, time and memory."""
        rows = []
        keys = sorted({(r.method, r.dataset) for r in self.records}, key=lambda k: (k[1], k[0]))
        for method, dataset in keys:
            runs = [r for r in self.records if r.method == method and r.dataset == dataset]
            row: dict[str, Any] = {"method": method, "dataset": dataset, "n_seeds": len(runs)}
            for name in runs[0].metrics:
                vals = np.array([r.metrics[name] for r in runs], dtype=float)
                row[name] = {"mean": float(vals.mean()), "std": float(vals.std())}
            row["seconds"] = {"mean": float(np.mean([r.seconds for r in runs])), "std": float(np.std([r.seconds for r in runs]))}
            # Median over seeds: the first run of a process also pays for lazy imports.
            row["peak_mb"] = float(np.median([r.peak_mb for r in runs]))
            if runs[0].cuda_peak_mb is not None:
                row["cuda_peak_mb"] = float(np.median([r.cuda_peak_mb for r in runs]))
            rows.append(row)
        return rows

    def to_json(self) -> dict[str, Any]:
        import torch

        import graphrec

        return {
            "task": self.task,
            "device": self.device,
            "seeds": self.seeds,
            "summary": self.summary(),
            "runs": [asdict(r) for r in self.records],
            "environment": {
                "graphrec": graphrec.__version__,
                "torch": torch.__version__,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpu_count": os.cpu_count(),
                "cuda_device": torch.cuda.get_device_name() if self.device.startswith("cuda") else None,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
        }

    def table(self, metrics: list[str]) -> str:
        """A markdown table: metrics as mean +- std, wall seconds, peak memory."""
        header = ["dataset", "method", *metrics, "seconds", "peak MB (median)"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in self.summary():
            cells = [row["dataset"], row["method"]]
            for m in metrics:
                cells.append(f"{row[m]['mean']:.4f} ± {row[m]['std']:.4f}" if m in row else "-")
            cells.append(f"{row['seconds']['mean']:.2f}")
            cells.append(f"{row['peak_mb']:.0f}")
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def run_bench(
    task: str | Task,
    methods: list[str] | None = None,
    datasets: list[str] | None = None,
    seeds: list[int] | None = None,
    *,
    device: str = "cpu",
) -> BenchResult:
    """Fit every method on every dataset for every seed; datasets are loaded once.

    ``device`` is checked before any data is loaded (``"auto"`` resolves to ``"cuda"`` or ``"cpu"``);
    an unavailable CUDA device raises ``ValueError``.
    """
    device = str(check_device(device))
    t = get_task(task) if isinstance(task, str) else task
    methods = methods or [t.default_method]
    datasets = datasets or [t.default_dataset]
    seeds = list(range(3)) if seeds is None else list(seeds)
    for m in methods:
        if m not in t.methods:
            raise KeyError(f"unknown method {m!r} for task {t.name!r}; available: {', '.join(sorted(t.methods))}")
    for d in datasets:
        if d not in t.datasets:
            raise KeyError(f"unknown dataset {d!r} for task {t.name!r}; available: {', '.join(sorted(t.datasets))}")
    result = BenchResult(t.name, device, seeds)
    for d in datasets:
        data = t.datasets[d][0]()
        for m in methods:
            runner = t.methods[m][0]
            for seed in seeds:
                cuda = device.startswith("cuda")
                if cuda:
                    import torch

                    torch.cuda.reset_peak_memory_stats()
                with _PeakRSS() as mem:
                    start = time.perf_counter()
                    metrics = runner(data, seed, device)
                    seconds = time.perf_counter() - start
                cuda_mb = None
                if cuda:
                    import torch

                    cuda_mb = torch.cuda.max_memory_allocated() / 2**20
                result.records.append(RunRecord(m, d, seed, {k: float(v) for k, v in metrics.items()}, seconds, mem.delta_mb, cuda_mb))
                logger.info("%s on %s seed %d: %s (%.2fs)", m, d, seed, metrics, seconds)
    return result


def write_json(result: BenchResult, path: str | os.PathLike) -> None:
    """Write the result atomically (a temp file in the same folder, then ``os.replace``); on failure
    nothing is left behind."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result.to_json(), indent=2)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def plot(result: BenchResult, metrics: list[str], path: str | os.PathLike) -> None:
    """Bar chart of each metric (mean with std error bars) per method and dataset."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("--plot needs matplotlib: pip install 'graphrec[plot]'") from exc
    rows = result.summary()
    labels = [f"{r['method']}\n{r['dataset']}" for r in rows]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.2), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        ax.bar(range(len(rows)), [r[m]["mean"] for r in rows], yerr=[r[m]["std"] for r in rows], capsize=3)
        ax.set_xticks(range(len(rows)), labels, fontsize=7)
        ax.set_title(m)
    fig.suptitle(f"graphrec bench {result.task} ({len(result.seeds)} seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_embeddings(task: Task, methods: list[str], datasets: list[str], path: str | os.PathLike,
                    *, seed: int = 0, device: str = "cpu") -> list[tuple[str, str]]:
    """Scatter the first two principal components of each method's embedding on each dataset.

    Points are coloured by predicted cluster. Only methods that registered an ``embed`` function
    are drawn (each fitted once more, with ``seed``); returns the (method, dataset) pairs drawn.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("--plot needs matplotlib: pip install 'graphrec[plot]'") from exc
    from sklearn.decomposition import PCA

    pairs = [(m, d) for d in datasets for m in methods if m in task.embedders]
    if not pairs:
        return []
    cols = len({m for m, _ in pairs})
    rows = len({d for _, d in pairs})
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    col_of = {m: i for i, m in enumerate(dict.fromkeys(m for m, _ in pairs))}
    row_of = {d: i for i, d in enumerate(dict.fromkeys(d for _, d in pairs))}
    for ax in axes.ravel():
        ax.set_axis_off()
    for dataset in row_of:
        data = task.datasets[dataset][0]()
        for method in (m for m, d in pairs if d == dataset):
            embedding, labels = task.embedders[method](data, seed, device)
            xy = PCA(2, random_state=seed).fit_transform(np.asarray(embedding, dtype=np.float64))
            ax = axes[row_of[dataset], col_of[method]]
            ax.set_axis_on()
            labels = np.asarray(labels)
            cmap = "tab10" if labels.max(initial=0) < 10 else "tab20"
            ax.scatter(xy[:, 0], xy[:, 1], c=labels, s=3, cmap=cmap, linewidths=0)
            ax.set_title(f"{method} on {dataset}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("embeddings, first two principal components, coloured by predicted cluster", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return pairs
