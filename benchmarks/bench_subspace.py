"""Subspace clustering quality (ACC / NMI mean ± std over seeds) and SubspaceAD 10-shot digits AUROC.

    python benchmarks/bench_subspace.py [--seeds 3] [--methods lsr deep-sc mlc concat-svd molrg-diffusion]

Runs the ``graphrec bench subspace`` task (same numbers as
``graphrec bench subspace --method <m> --dataset digits generated``) and writes
benchmarks/results/subspace.json and subspace.md.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphrec.bench import get_task, run_bench  # noqa: E402
from graphrec.metrics import roc_auc  # noqa: E402
from graphrec.subspace.anomaly import SubspaceAD  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def subspace_ad_digits(seeds: list[int], shots: int = 10) -> dict:
    """Each digit class in turn is normal: ``shots`` training samples, test on all others."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    per_seed = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        aurocs = []
        for c in range(10):
            train = rng.choice(np.flatnonzero(y == c), shots, replace=False)
            test = np.setdiff1d(np.arange(len(y)), train)
            scores = SubspaceAD(energy=0.99).fit(X[train]).anomaly_score(X[test])
            aurocs.append(roc_auc(y[test] != c, scores))
        per_seed.append(aurocs)
    arr = np.array(per_seed)
    return {"shots": shots, "per_class_mean": arr.mean(0).tolist(), "mean": float(arr.mean()),
            "std_over_seeds": float(arr.mean(1).std()), "min_class": float(arr.mean(0).min())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=["lsr", "deep-sc", "mlc", "concat-svd", "molrg-diffusion"])
    parser.add_argument("--datasets", nargs="+", default=["generated", "digits"])
    parser.add_argument("--digits-seeds", type=int, default=None,
                        help="seeds for the trained methods on digits (minutes per run on 2 cores); default --seeds")
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    start = time.time()
    task = get_task("subspace")
    summary = []
    for dataset in args.datasets:
        for method in args.methods:
            n = args.digits_seeds if dataset == "digits" and method != "lsr" and args.digits_seeds else args.seeds
            summary += run_bench(task, [method], [dataset], list(range(n)), device="cpu").summary()
    ad = subspace_ad_digits(seeds)
    out = {"machine": f"{platform.machine()} 2-core CPU (shared)", "seeds": seeds, "clustering": summary,
           "subspace_ad_digits": ad, "wall_seconds": time.time() - start}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "subspace.json").write_text(json.dumps(out, indent=2))
    cmd = " ".join(sys.argv[1:])
    lines = ["## Subspace clustering, ACC / NMI mean ± std over seeds (2-core CPU, shared)", "",
             f"`python benchmarks/bench_subspace.py {cmd}`", "",
             "| dataset | method | seeds | ACC | NMI | seconds (mean) |", "|---|---|---|---|---|---|"]
    for row in summary:
        acc, score, sec = row["acc"], row["nmi"], row["seconds"]
        lines.append(f"| {row['dataset']} | {row['method']} | {row['n_seeds']} | {acc['mean']:.3f} ± {acc['std']:.3f} | "
                     f"{score['mean']:.3f} ± {score['std']:.3f} | {sec['mean']:.1f} |")
    lines += ["", f"## SubspaceAD, {ad['shots']}-shot digits (each class normal in turn), energy 0.99", "",
              f"mean AUROC {ad['mean']:.3f} (std over seeds {ad['std_over_seeds']:.3f}), worst class {ad['min_class']:.3f}", "",
              "| class | " + " | ".join(str(c) for c in range(10)) + " |", "|---" * 11 + "|",
              "| AUROC | " + " | ".join(f"{v:.3f}" for v in ad["per_class_mean"]) + " |"]
    (RESULTS / "subspace.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
