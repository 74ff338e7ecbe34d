"""FunBaT on BeijingAir-PM2.5 (binned-proxy coordinates, the shared DISCT folds): accuracy, time scaling, memory.

Usage: GRAPHREC_DATA=/work/shared/datasets python benchmarks/bench_funbat.py [--folds 0 1] [--epochs 100] [--threads 1]
Writes benchmarks/results/<--out>.json and .md (default funbat_pm25).
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

from graphrec.datasets import load
from graphrec.tensor import FunBaT, MaskedCPALS

OUT = Path(__file__).parent / "results"
# the authors' beijing_PM25 configs; lengthscale 0.1 on [0, 10] is 0.01 on the loader's [0, 1] coordinates
CONFIGS = {
    "funbat": dict(core="tucker", kernel="matern12", lengthscale=0.01, variance=1.0, damping=(0.5, 0.6, 0.9)),
    "funbat-cp": dict(core="cp", kernel="matern12", lengthscale=0.01, variance=5.0, damping=(0.3, 0.8, 0.5)),
}


def rmse(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--methods", nargs="+", default=["funbat"])
    ap.add_argument("--scaling-epochs", type=int, default=5)
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--out", default="funbat_pm25")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--damping", type=float, nargs="+", default=None,
                    help="override the configs' damping: one number or rho_U rho_tau rho_W (0 = undamped)")
    args = ap.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    data = load("beijing-pm25")
    rows = []
    for fold in args.folds:
        tr, te = data.folds[fold]
        for method in args.methods:
            t0 = time.perf_counter()
            cfg = dict(CONFIGS[method])
            if args.damping is not None:
                cfg["damping"] = args.damping[0] if len(args.damping) == 1 else tuple(args.damping)
            est = FunBaT(rank=3, epochs=args.epochs, random_state=fold, **cfg)
            est.fit(data.coords[tr], data.values[tr])
            sec = time.perf_counter() - t0
            p = est.predict(data.coords[te])
            rows.append(dict(method=method, fold=fold, rmse=rmse(p, data.values[te]),
                             mae=float(np.mean(np.abs(p - data.values[te]))), seconds=sec))
            print(rows[-1], flush=True)
        t0 = time.perf_counter()
        b = MaskedCPALS(rank=3, n_bins=[50, 50, 150], n_iter=100, random_state=fold).fit(data.coords[tr], data.values[tr])
        rows.append(dict(method="cp-als 50x50x150", fold=fold, rmse=rmse(b.predict(data.coords[te]), data.values[te]),
                         seconds=time.perf_counter() - t0))
        print(rows[-1], flush=True)
    # time per epoch against N: nested subsamples of fold 0's training entries
    tr, _ = data.folds[0]
    perm = np.random.default_rng(0).permutation(tr)
    scaling = []
    for frac in () if args.no_scaling else (0.25, 0.5, 1.0):
        idx = perm[: int(frac * len(perm))]
        t0 = time.perf_counter()
        FunBaT(rank=3, epochs=args.scaling_epochs, random_state=0, **CONFIGS["funbat"]).fit(data.coords[idx], data.values[idx])
        scaling.append(dict(n=len(idx), unique=[len(np.unique(data.coords[idx, k])) for k in range(3)],
                            sec_per_epoch=(time.perf_counter() - t0) / args.scaling_epochs))
        print(scaling[-1], flush=True)
    result = dict(machine=f"{platform.processor() or platform.machine()}, 2 shared CPU cores", epochs=args.epochs,
                  threads=torch.get_num_threads(), damping=args.damping,
                  runs=rows, scaling=scaling, max_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    OUT.mkdir(exist_ok=True)
    (OUT / f"{args.out}.json").write_text(json.dumps(result, indent=2))
    lines = ["| method | fold | test RMSE | seconds |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['method']} | {r['fold']} | {r['rmse']:.4f} | {r['seconds']:.1f} |" for r in rows]
    lines += ["", "| N train | unique per mode | s / epoch |", "| --- | --- | --- |"]
    lines += [f"| {s['n']} | {s['unique']} | {s['sec_per_epoch']:.2f} |" for s in scaling]
    lines += ["", f"max RSS {result['max_rss_mb']:.0f} MB"]
    (OUT / f"{args.out}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
