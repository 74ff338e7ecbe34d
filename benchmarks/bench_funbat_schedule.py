"""FunBaT's update schedules and damping on planted continuous-indexed tensors.

``schedule='sequential'`` (the default) updates each block (a mode's functions, then the core) from
the newest moments of the others: a coordinate update that cannot diverge, with or without damping.
``schedule='parallel'`` builds every block's messages from the moments at the start of the epoch (parallel
EP): every block corrects the model's shared scale at once, and without damping the iteration
overshoots. This script fits both on data from :func:`graphrec.datasets.generators.make_continuous_tensor`
(noise 1% of the signal's sd, fold 0's training part) and reports, per setting and seed, the largest and the
last training RMSE over the epochs and the test RMSE, all divided by the training targets' sd (the zero
predictor scores about 1).

Usage:
  python benchmarks/bench_funbat_schedule.py [--seeds 5] [--epochs 60] [--out funbat_schedule]
Writes benchmarks/results/<--out>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch

from graphrec.datasets.generators import make_continuous_tensor
from graphrec.tensor import FunBaT

OUT = Path(__file__).parent / "results"
PROBLEMS = {  # name: (generator arguments, FunBaT arguments)
    "cp K=2 R=2": (dict(n_modes=2, rank=2, decomposition="cp"), dict(rank=2, core="cp")),
    "cp K=3 R=2": (dict(n_modes=3, rank=2, decomposition="cp"), dict(rank=2, core="cp")),
    "tucker K=2 R=2, exact": (dict(n_modes=2, rank=2, decomposition="tucker"), dict(rank=2, core_moment="exact")),
    "tucker K=2 R=2, mean": (dict(n_modes=2, rank=2, decomposition="tucker"), dict(rank=2, core_moment="mean")),
    "tucker K=3 R=2, mean": (dict(n_modes=3, rank=2, decomposition="tucker"), dict(rank=2, core_moment="mean")),
}
SETTINGS = {  # name: (schedule, damping)
    "sequential, undamped": ("sequential", 0.0),
    "parallel, undamped": ("parallel", 0.0),
    "parallel, damping 0.5": ("parallel", 0.5),
    "parallel, damping (0.5, 0.6, 0.9)": ("parallel", (0.5, 0.6, 0.9)),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--n-obs", type=int, default=600)
    ap.add_argument("--out", default="funbat_schedule")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for problem, (gen, fit) in PROBLEMS.items():
        for seed in range(args.seeds):
            data = make_continuous_tensor(n_obs=args.n_obs, noise=0.01, random_state=seed, **gen)
            tr, te = data.folds[0]
            sd = float(data.values[tr].std())
            for setting, (schedule, damping) in SETTINGS.items():
                est = FunBaT(kernel="matern32", lengthscale=0.3, epochs=args.epochs, schedule=schedule, damping=damping,
                             random_state=seed, **fit).fit(data.coords[tr], data.values[tr])
                hist = np.asarray(est.history_) / sd
                test = float(np.sqrt(np.mean((est.predict(data.coords[te]) - data.values[te]) ** 2))) / sd
                rows.append(dict(problem=problem, seed=seed, setting=setting, max_train=float(hist.max()),
                                 last_train=float(hist[-1]), test=test))
                print(json.dumps(rows[-1]), flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / f"{args.out}.json").write_text(json.dumps(dict(machine=platform.processor() or platform.machine(),
                                                          args=vars(args), rows=rows), indent=2))
    lines = ["| problem | setting | largest training RMSE / sd (median over seeds) | last training RMSE / sd (median) "
             "| test RMSE / sd (median) | seeds whose training RMSE rose above 1.5 sd |",
             "| --- | --- | --- | --- | --- | --- |"]
    for problem in PROBLEMS:
        for setting in SETTINGS:
            sel = [r for r in rows if r["problem"] == problem and r["setting"] == setting]
            med = {k: float(np.median([r[k] for r in sel])) for k in ("max_train", "last_train", "test")}
            blown = sum(r["max_train"] > 1.5 for r in sel)
            lines.append(f"| {problem} | {setting} | {med['max_train']:.3f} | {med['last_train']:.3f} "
                         f"| {med['test']:.3f} | {blown} / {len(sel)} |")
    (OUT / f"{args.out}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
