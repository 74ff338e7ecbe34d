"""The compiled kernels side by side in one run: C++ vs Numba vs scipy / numpy / torch.

    python benchmarks/bench_kernels.py           # full size -> benchmarks/results/kernels.{json,md}
    python benchmarks/bench_kernels.py --quick   # small sizes, a smoke test -> kernels_quick.{json,md}

* ``csr_matmul``: a random 100,000 x 100,000 CSR matrix with 10 non-zeros per row (1M nnz)
  times a 64-column float32 block; against scipy's ``a @ x`` and ``torch.sparse.mm`` on a CSR tensor.
* ``csr_horner``: the degree-10 polynomial ``sum_t 0.9^t A^t H`` of the same kind of matrix
  (float64) on a 17-column block (S2CAG's randomised-SVD width); against a loop of scipy's
  ``alpha * (a @ r) + h`` and of ``torch.sparse.mm``.
* ``topk_exclude``: a 1024 x 40,981 float32 score block (Gowalla's item count) with 30 excluded
  items per row, k = 50; against numpy (``argpartition``) and ``torch.topk``, each after setting
  the excluded scores to -inf (plus torch and graphrec on CUDA tensors when a GPU is present).

Every contender is checked against the reference first, then warmed up once (Numba compile
time is excluded) and timed ``--repeats`` times in each of two rounds; the tables report the
better round's median and speed-ups over scipy / torch.topk. On a shared machine, compare the
ratios of one run, not absolute times.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.kernels import _reference, available_backends, csr_horner, csr_matmul, topk_exclude

RESULTS = Path(__file__).resolve().parent / "results"


def _medians(contenders: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Seconds per contender: the median of ``repeats`` timed calls after one warm-up call.

    Contenders run one block after the other, not interleaved, with a pause in between, and
    the whole sequence runs twice (in order, then reversed) keeping each contender's better
    median: torch's and Numba's OpenMP workers keep spinning for a while after a parallel region
    and would otherwise slow down whichever contender comes next on a machine with few cores.
    """
    medians: dict[str, float] = {}
    for order in (list(contenders), list(reversed(contenders))):
        for name in order:
            time.sleep(0.5)
            contenders[name]()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                contenders[name]()
                times.append(time.perf_counter() - start)
            medians[name] = min(medians.get(name, np.inf), float(np.median(times)))
    return medians


def _synced(fn: Callable[[], object]) -> Callable[[], object]:
    def run():
        out = fn()
        torch.cuda.synchronize()
        return out

    return run


def _random_csr(rng: np.random.Generator, n: int, nnz_per_row: int, dtype: type) -> sp.csr_matrix:
    """An n x n CSR matrix with ``nnz_per_row`` uniform values at random columns of every row."""
    rows = np.repeat(np.arange(n), nnz_per_row)
    return sp.csr_matrix((rng.random(rows.size, dtype=dtype), (rows, rng.integers(0, n, rows.size))), shape=(n, n))


def _torch_csr(a: sp.csr_matrix) -> torch.Tensor:
    return torch.sparse_csr_tensor(torch.from_numpy(a.indptr.astype(np.int64)),
                                   torch.from_numpy(a.indices.astype(np.int64)), torch.from_numpy(a.data), a.shape)


def bench_csr_matmul(n: int, nnz_per_row: int, d: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    a = _random_csr(rng, n, nnz_per_row, np.float32)
    x = rng.standard_normal((n, d), dtype=np.float32)
    a_t = _torch_csr(a)
    x_t = torch.from_numpy(x)
    contenders: dict[str, Callable[[], object]] = {
        "scipy (a @ x)": lambda: a @ x,
        "torch.sparse.mm (CSR)": lambda: torch.sparse.mm(a_t, x_t),
    }
    for backend in ("cpp", "numba"):
        if backend in available_backends():
            contenders[f"graphrec {backend}"] = lambda b=backend: csr_matmul(a, x, backend=b)
    expected = a.astype(np.float64) @ x.astype(np.float64)
    for name, fn in contenders.items():
        out = fn()
        out = out.numpy() if hasattr(out, "numpy") else out
        if not np.allclose(out, expected, rtol=1e-4, atol=1e-4):
            raise AssertionError(f"{name} disagrees with the float64 product")
    return {
        "problem": f"{n:,} x {n:,} CSR, {a.nnz:,} non-zeros, times a {d}-column float32 block",
        "shape": [n, n],
        "nnz": int(a.nnz),
        "d": d,
        "seconds": _medians(contenders, repeats),
        "baseline": "scipy (a @ x)",
    }


def bench_csr_horner(n: int, nnz_per_row: int, d: int, steps: int, repeats: int) -> dict:
    rng = np.random.default_rng(2)
    a = _random_csr(rng, n, nnz_per_row, np.float64) / nnz_per_row  # row sums about 1/2: a stable polynomial
    h = rng.standard_normal((n, d))
    a_t = _torch_csr(a)
    h_t = torch.from_numpy(h)

    def torch_loop():
        r = h_t
        for _ in range(steps):
            r = torch.sparse.mm(a_t, r).mul_(0.9).add_(h_t)
        return r

    contenders: dict[str, Callable[[], object]] = {
        "scipy loop": lambda: _reference.csr_horner(a, h, 0.9, steps),
        "torch.sparse.mm loop (CSR)": torch_loop,
    }
    for backend in ("cpp", "numba"):
        if backend in available_backends():
            contenders[f"graphrec {backend}"] = lambda b=backend: csr_horner(a, h, 0.9, steps, backend=b)
    expected = _reference.csr_horner(a, h, 0.9, steps)
    for name, fn in contenders.items():
        out = fn()
        out = out.numpy() if hasattr(out, "numpy") else out
        if not np.allclose(out, expected, rtol=1e-10, atol=1e-10):
            raise AssertionError(f"{name} disagrees with the reference polynomial")
    return {
        "problem": f"degree-{steps} polynomial of a {n:,} x {n:,} CSR matrix ({a.nnz:,} non-zeros) on a {d}-column float64 block",
        "shape": [n, n],
        "nnz": int(a.nnz),
        "d": d,
        "steps": steps,
        "seconds": _medians(contenders, repeats),
        "baseline": "scipy loop",
    }


def _topk_ids(scores: np.ndarray, k: int, indptr: np.ndarray, indices: np.ndarray, backend: str) -> np.ndarray:
    return topk_exclude(scores, k, indptr, indices, backend=backend)[0]


def bench_topk(b: int, n: int, excluded_per_row: int, k: int, repeats: int) -> dict:
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((b, n), dtype=np.float32)
    rows = np.repeat(np.arange(b), excluded_per_row)
    excl = sp.csr_matrix((np.ones(rows.size), (rows, rng.integers(0, n, rows.size))), shape=(b, n))
    indptr, indices = excl.indptr.astype(np.int64), excl.indices.astype(np.int64)
    excl_rows = np.repeat(np.arange(b), np.diff(indptr))

    def numpy_argpartition():
        masked = scores.copy()
        masked[excl_rows, indices] = -np.inf
        part = np.argpartition(-masked, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(masked, part, 1), axis=1, kind="stable")
        return np.take_along_axis(part, order, 1)

    def torch_topk(device: str) -> Callable[[], object]:
        s = torch.from_numpy(scores).to(device)
        r, c = torch.from_numpy(excl_rows).to(device), torch.from_numpy(indices).to(device)

        def run():  # a copy with -inf written at the excluded entries (cheaper than a full bool mask)
            masked = s.clone()
            masked[r, c] = -torch.inf
            return torch.topk(masked, k, dim=1).indices

        return run

    contenders: dict[str, Callable[[], object]] = {
        "numpy argpartition + mask": numpy_argpartition,
        "torch.topk + mask": torch_topk("cpu"),
    }
    if torch.cuda.is_available():
        s_cuda = torch.from_numpy(scores).cuda()
        contenders["torch.topk + mask (cuda)"] = _synced(torch_topk("cuda"))
        contenders["graphrec (cuda tensor)"] = _synced(lambda: topk_exclude(s_cuda, k, indptr, indices)[0])
    for backend in ("cpp", "numba"):
        if backend in available_backends():
            contenders[f"graphrec {backend}"] = functools.partial(_topk_ids, scores, k, indptr, indices, backend)
    # Exact agreement where ties cannot differ (random floats): all contenders return the same ids.
    expected, _ = _reference.topk_exclude(scores[:64], k, indptr[:65], indices)
    for name, fn in contenders.items():
        out = fn()
        out = out.cpu().numpy() if hasattr(out, "cpu") else out
        if not np.array_equal(out[:64], expected):
            raise AssertionError(f"{name} disagrees with the reference top-k")
    return {
        "problem": f"{b} x {n:,} float32 score block, {excluded_per_row} excluded items per row, k = {k}",
        "block": [b, n],
        "excluded_per_row": excluded_per_row,
        "k": k,
        "seconds": _medians(contenders, repeats),
        "baseline": "torch.topk + mask",
    }


def _table(title: str, result: dict) -> str:
    base = result["seconds"][result["baseline"]]
    lines = [
        f"**{title}**: {result['problem']}",
        "",
        f"| implementation | median ms | speed-up vs {result['baseline']} |",
        "|---|---:|---:|",
    ]
    for name, s in sorted(result["seconds"].items(), key=lambda kv: kv[1]):
        lines.append(f"| {name} | {1e3 * s:.1f} | {base / s:.2f}x |")
    return "\n".join(lines)


def _environment(quick: bool, repeats: int) -> dict:
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "gpu": gpu,
        "repeats": repeats,
        "quick": quick,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per contender (default 7)")
    parser.add_argument("--out", type=Path, help="JSON path; the markdown table goes next to it (.md)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    out = args.out or RESULTS / ("kernels_quick.json" if args.quick else "kernels.json")
    if args.quick:
        spmm = bench_csr_matmul(10_000, 10, 16, args.repeats)
        horner = bench_csr_horner(10_000, 10, 17, 10, args.repeats)
        topk = bench_topk(128, 5_000, 30, 50, args.repeats)
    else:
        spmm = bench_csr_matmul(100_000, 10, 64, args.repeats)
        horner = bench_csr_horner(100_000, 10, 17, 10, args.repeats)
        topk = bench_topk(1024, 40_981, 30, 50, args.repeats)
    env = _environment(args.quick, args.repeats)
    command = "python benchmarks/bench_kernels.py" + (" --quick" if args.quick else "")
    if args.repeats != 7:
        command += f" --repeats {args.repeats}"
    if args.out:
        command += f" --out {args.out}"
    tables = f"{_table('csr_matmul', spmm)}\n\n{_table('csr_horner', horner)}\n\n{_table('topk_exclude', topk)}"
    markdown = (
        "# Compiled kernels\n\n"
        f"Command: `{command}` (per contender, the better of two rounds of a warm-up call and {args.repeats} timed calls, the median).\n\n"
        f"Machine: {env['cpus_available']} CPUs available ({env['cpu']}), torch {env['torch']} with "
        f"{env['torch_threads']} threads, GPU: {env['gpu'] or 'none'}; {env['time']}.\n\n{tables}\n"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"csr_matmul": spmm, "csr_horner": horner, "topk_exclude": topk, "environment": env}, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown)
    print(f"{tables}\n\nwrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
