"""Intrinsic dimension d_int90 of a 64-64-10 MLP on sklearn's digits (Li et al., ICLR 2018).

    python benchmarks/bench_intrinsic_dim.py [--seeds 0 1 2] [--epochs 30] [--threads 1]

For each seed and each projection (dense Gaussian, Fastfood) the MLP (D = 4810 parameters) is
trained in full space (validation accuracy = baseline) and in random subspaces
``theta = theta_0 + P theta_d`` of each dimension in the grid; d_int90 is the smallest d reaching
90% of the baseline. Target (issue 11): d_int90 between 80 and 160. Writes
benchmarks/results/intrinsic_dim.json and .md.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

from graphrec.analysis.intrinsic_dim import IntrinsicDimension

DIMS = (10, 20, 40, 60, 80, 100, 120, 140, 160, 200, 320)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "intrinsic_dim"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    runs = []
    for projection in ("dense", "fastfood"):
        for seed in args.seeds:
            t0 = time.perf_counter()
            est = IntrinsicDimension(hidden=(64,), dims=DIMS, projection=projection, max_epochs=args.epochs,
                                     random_state=seed).fit(x, y)
            runs.append({"projection": projection, "seed": seed, "n_params": est.n_params_,
                         "baseline_acc": est.baseline_score_, "dims": est.dims_, "acc": est.scores_,
                         "d_int90": est.intrinsic_dimension_, "seconds": time.perf_counter() - t0})
            print(f"{projection} seed {seed}: baseline {est.baseline_score_:.3f}, d_int90 {est.intrinsic_dimension_}, "
                  f"{runs[-1]['seconds']:.1f} s", flush=True)
    summary = {}
    for projection in ("dense", "fastfood"):
        d = [r["d_int90"] for r in runs if r["projection"] == projection]
        acc = np.array([r["acc"] for r in runs if r["projection"] == projection])
        summary[projection] = {"d_int90": d, "median_d_int90": float(np.median(d)),
                               "in_target_80_160": bool(all(80 <= v <= 160 for v in d)),
                               "mean_acc": acc.mean(0).round(4).tolist(),
                               "mean_baseline": float(np.mean([r["baseline_acc"] for r in runs if r["projection"] == projection]))}
    result = {"command": "python benchmarks/bench_intrinsic_dim.py " + " ".join(
                  [f"--seeds {' '.join(map(str, args.seeds))}", f"--epochs {args.epochs}", f"--threads {args.threads}"]),
              "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)",
              "dims": list(DIMS), "epochs": args.epochs, "runs": runs, "summary": summary}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = [f"Command: `{result['command']}` ({result['machine']})", "",
             "| projection | d | " + " | ".join(map(str, DIMS)) + " | baseline | d_int90 per seed |",
             "|---|---|" + "---|" * len(DIMS) + "---|---|"]
    for projection, s in summary.items():
        lines.append(f"| {projection} | mean val acc | " + " | ".join(f"{a:.3f}" for a in s["mean_acc"])
                     + f" | {s['mean_baseline']:.3f} | {s['d_int90']} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
