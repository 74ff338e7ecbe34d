"""DirectAU quality on the paper's protocol (5-core, per-user random 8:1:1, select on valid NDCG@20).

Usage: python benchmarks/bench_recsys_quality.py --dataset beauty --seeds 0 1 2
Writes benchmarks/results/recsys_quality_<dataset>.json and .md (test metrics per seed and their mean) after
every seed; runs of other seeds already in the file are kept, so seeds can be run in separate invocations.
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

from graphrec.datasets import load
from graphrec.metrics import evaluate_full_ranking
from graphrec.recsys import DirectAU, ratio_split

PRESETS = {"beauty": dict(gamma=0.5, batch_size=256), "gowalla": dict(gamma=5.0, batch_size=1024),
           "ml-100k": dict(gamma=1.0, batch_size=256)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="beauty", choices=sorted(PRESETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-seconds", type=float, default=None, help="wall-time budget of each fit")
    parser.add_argument("--out", default=None, help="results path without suffix "
                        "(default benchmarks/results/recsys_quality_<dataset>[_<device>])")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load(args.dataset)
    rows = []
    for seed in args.seeds:
        split = ratio_split(data, random_state=seed)
        train, test = split.splits["train"], split.splits["test"]
        seen = (train + split.splits["valid"]).tocsr()
        t0, c0 = time.time(), time.process_time()
        model = DirectAU(epochs=args.epochs, random_state=seed, device=args.device, max_seconds=args.max_seconds,
                         **PRESETS[args.dataset]).fit(split)
        wall, cpu = time.time() - t0, time.process_time() - c0
        u, i = model.user_factors_, model.item_factors_
        metrics = evaluate_full_ranking(lambda b: u[b] @ i.T, seen, test, ks=(10, 20, 50))
        res = model.train_result_
        rows.append({"seed": seed, "device": args.device, "epochs_run": res.epochs_run, "best_epoch": res.best_epoch,
                     "stopped_early": res.stopped_early, "stopped_by_time": res.stopped_by_time,
                     "best_valid_ndcg@20": res.best_score, "fit_wall_s": wall, "fit_cpu_s": cpu,
                     "trajectory": [(h.get("epoch"), h.get("ndcg@20")) for h in res.history if "ndcg@20" in h],
                     **{k: v for k, v in metrics.items() if k.split("@")[0] in ("recall", "ndcg", "hitrate")}})
        print(json.dumps(rows[-1]), flush=True)
        _write(args, rows)


def _write(args: argparse.Namespace, rows: list[dict]) -> None:
    tag = "" if args.device == "cpu" else "_" + args.device.split(":")[0]
    path = Path(args.out) if args.out else Path(__file__).parent / "results" / f"recsys_quality_{args.dataset}{tag}"
    new_seeds = {r["seed"] for r in rows}
    if path.with_suffix(".json").exists():
        old = json.loads(path.with_suffix(".json").read_text())
        rows = [r for r in old["runs"] if r["seed"] not in new_seeds] + rows
    rows = sorted(rows, key=lambda r: r["seed"])
    seeds = [r["seed"] for r in rows]
    keys = [k for k in rows[0] if "@" in k and not k.startswith("best")]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    std = {k: float(np.std([r[k] for r in rows])) for k in keys}
    out = {"dataset": args.dataset, "preset": PRESETS[args.dataset], "seeds": seeds, "runs": rows, "mean": mean,
           "std": std, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "threads": args.threads}
    path.with_suffix(".json").write_text(json.dumps(out, indent=1))
    lines = [f"# DirectAU-MF, {args.dataset}, paper protocol, seeds {seeds}", "",
             "| seed | epochs (best) | " + " | ".join(keys) + " | fit wall s |", "|---" * (len(keys) + 3) + "|"]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['epochs_run']} ({r['best_epoch']}) | "
                     + " | ".join(f"{r[k]:.4f}" for k in keys) + f" | {r['fit_wall_s']:.0f} |")
    lines.append("| mean | | " + " | ".join(f"{mean[k]:.4f}" for k in keys) + " | |")
    lines.append("| std | | " + " | ".join(f"{std[k]:.4f}" for k in keys) + " | |")
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")

if __name__ == "__main__":
    main()
