"""Kernels side by side in one run: C++ vs Numba vs scipy / numpy / torch, as ratios.

    python benchmarks/bench_kernels.py            # full size, writes benchmarks/results/kernels.json
    python benchmarks/bench_kernels.py --quick    # small sizes, for a smoke test

Medians over repeats after one warm-up call (Numba compile time excluded). The machine is
shared and noisy: compare the ratios, not the absolute times.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.kernels import _reference, available_backends, csr_matmul, topk_exclude


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: JIT compile, caches, thread pools
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def bench_csr_matmul(n: int, nnz_per_row: int, d: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(n), nnz_per_row)
    cols = rng.integers(0, n, rows.size)
    a = sp.csr_matrix((rng.random(rows.size).astype(np.float32), (rows, cols)), shape=(n, n))
    x = rng.standard_normal((n, d)).astype(np.float32)
    t = torch.sparse_csr_tensor(
        torch.from_numpy(a.indptr.astype(np.int64)), torch.from_numpy(a.indices.astype(np.int64)), torch.from_numpy(a.data), a.shape
    )
    xt = torch.from_numpy(x)
    contenders = {
        "scipy (a @ x)": lambda: a @ x,
        "torch.sparse.mm (CSR)": lambda: torch.sparse.mm(t, xt),
    }
    for backend in ("cpp", "numba"):
        if backend in available_backends():
            contenders[f"graphrec {backend}"] = lambda b=backend: csr_matmul(a, x, backend=b)
    secs = {name: _median_seconds(fn, repeats) for name, fn in contenders.items()}
    ref = a @ x
    for backend in ("cpp", "numba"):
        if backend in available_backends():
            assert np.allclose(csr_matmul(a, x, backend=backend), ref, rtol=1e-4, atol=1e-4)
    return {"shape": [n, n], "nnz": int(a.nnz), "d": d, "dtype": "float32", "seconds": secs, "baseline": "scipy (a @ x)"}


def bench_topk(b: int, n: int, excluded_per_row: int, k: int, repeats: int) -> dict:
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((b, n)).astype(np.float32)
    rows = np.repeat(np.arange(b), excluded_per_row)
    excl = sp.csr_matrix((np.ones(rows.size), (rows, rng.integers(0, n, rows.size))), shape=(b, n))
    indptr, indices = excl.indptr.astype(np.int64), excl.indices.astype(np.int64)
    st = torch.from_numpy(scores)

    def numpy_argpartition():
        masked = scores.copy()
        masked[np.repeat(np.arange(b), np.diff(indptr)), indices] = -np.inf
        part = np.argpartition(-masked, k, axis=1)[:, :k]
        vals = np.take_along_axis(masked, part, 1)
        order = np.argsort(-vals, axis=1, kind="stable")
        return np.take_along_axis(part, order, 1)

    def torch_topk():
        masked = st.clone()
        masked[torch.from_numpy(np.repeat(np.arange(b), np.diff(indptr))), torch.from_numpy(indices)] = -torch.inf
        return torch.topk(masked, k, dim=1)

    contenders = {"numpy argpartition + mask": numpy_argpartition, "torch.topk + mask": torch_topk}
    if torch.cuda.is_available():
        sc = st.cuda()
        rows_c = torch.from_numpy(np.repeat(np.arange(b), np.diff(indptr))).cuda()
        cols_c = torch.from_numpy(indices).cuda()

        def cuda_sync(fn):
            def run():
                out = fn()
                torch.cuda.synchronize()
                return out

            return run

        def torch_topk_cuda():
            masked = sc.clone()
            masked[rows_c, cols_c] = -torch.inf
            return torch.topk(masked, k, dim=1)

        contenders["torch.topk + mask (cuda)"] = cuda_sync(torch_topk_cuda)
        contenders["graphrec (cuda tensor)"] = cuda_sync(lambda: topk_exclude(sc, k, indptr, indices))
    for backend in ("cpp", "numba"):
        if backend in available_backends():
            contenders[f"graphrec {backend}"] = lambda bk=backend: topk_exclude(scores, k, indptr, indices, backend=bk)
    secs = {name: _median_seconds(fn, repeats) for name, fn in contenders.items()}
    ref_ids, _ = _reference.topk_exclude(scores[:64], k, indptr[:65], indices)
    for backend in ("cpp", "numba"):
        if backend in available_backends():
            ids, _ = topk_exclude(scores[:64], k, indptr[:65], indices, backend=backend)
            assert np.array_equal(ids, ref_ids)
    return {
        "block": [b, n],
        "excluded_per_row": excluded_per_row,
        "k": k,
        "dtype": "float32",
        "seconds": secs,
        "baseline": "torch.topk + mask",
    }


def _markdown(title: str, result: dict) -> str:
    base = result["seconds"][result["baseline"]]
    lines = [f"**{title}**", "", "| implementation | median seconds | speed-up vs " + result["baseline"] + " |", "|---|---|---|"]
    for name, s in sorted(result["seconds"].items(), key=lambda kv: kv[1]):
        lines.append(f"| {name} | {s:.4f} | {base / s:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "kernels.json"))
    args = parser.parse_args()
    if args.quick:
        spmm = bench_csr_matmul(10_000, 10, 16, 3)
        topk = bench_topk(128, 5_000, 30, 50, 3)
    else:
        spmm = bench_csr_matmul(100_000, 10, 64, args.repeats)
        topk = bench_topk(1024, 40_981, 30, 50, args.repeats)
    result = {
        "csr_matmul": spmm,
        "topk_exclude": topk,
        "environment": {
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "quick": args.quick,
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out)
    print(_markdown(f"csr_matmul: {spmm['shape'][0]:,} x {spmm['shape'][1]:,} CSR, {spmm['nnz']:,} nnz, times a {spmm['d']}-column dense block", spmm))
    print()
    print(_markdown(f"topk_exclude: {topk['block'][0]} x {topk['block'][1]:,} float32 block, {topk['excluded_per_row']} excluded per row, k={topk['k']}", topk))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
