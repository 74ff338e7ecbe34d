"""LowFER or DirectAU trained on 1 and N processes with DistributedTrainer: validation metric and epoch time.

    torchrun --nproc-per-node 1 benchmarks/bench_distributed.py --dataset umls --epochs 100
    torchrun --nproc-per-node 2 benchmarks/bench_distributed.py --dataset umls --epochs 100
    torchrun --nproc-per-node 1 benchmarks/bench_distributed.py --method directau --dataset beauty --epochs 20
    torchrun --nproc-per-node 2 benchmarks/bench_distributed.py --method directau --dataset beauty --epochs 20

Each rank uses one intra-op thread (``torch.set_num_threads(1)``) so that N processes use N
cores. Every rank draws the same global batches of ``--batch-size`` queries and keeps its share
(``graphrec.kg.data.shard_label_batch`` for LowFER, row slices of the (user, item) pairs for DirectAU,
whose uniformity still runs over the gathered batch); rank 0 evaluates. Rank 0 writes
``benchmarks/results/distributed_<dataset>_w<N>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from graphrec.datasets import load
from graphrec.kg import LowFER
from graphrec.recsys import DirectAU, ratio_split
from graphrec.train import init_process_group


def _lowfer(args: argparse.Namespace, rank: int) -> dict | None:
    """Train on every rank; rank 0 alone evaluates the test split and returns the row."""
    triples = load(args.dataset)
    est = LowFER.from_preset(args.dataset, max_epochs=args.epochs, batch_size=args.batch_size, eval_every=5,
                             random_state=args.seed, distributed=True)
    start = time.perf_counter()
    est.fit(triples)
    seconds = time.perf_counter() - start
    if rank != 0:
        return None
    epoch_seconds = [r["seconds"] for r in est.history_ if "valid_mrr" not in r]
    n_queries = len(np.unique(np.c_[triples.train[:, 0], triples.train[:, 1]], axis=0)) + \
        len(np.unique(np.c_[triples.train[:, 2], triples.train[:, 1]], axis=0))
    return {"method": "lowfer", "epochs": est.n_epochs_, "best_epoch": est.best_epoch_,
            "valid_mrr": max(r["valid_mrr"] for r in est.history_ if "valid_mrr" in r),
            "test": est.evaluate(triples, "test"), "fit_seconds": seconds,
            "median_train_epoch_seconds": float(np.median(epoch_seconds)),
            "queries_per_second": n_queries / float(np.median(epoch_seconds))}


def _directau(args: argparse.Namespace, rank: int) -> dict | None:
    """Train on every rank; rank 0 returns the row."""
    split = ratio_split(load(args.dataset), random_state=args.seed)
    est = DirectAU(gamma=0.5, batch_size=args.batch_size, epochs=args.epochs, eval_every=5, patience=None,
                   random_state=args.seed, distributed=True)
    start = time.perf_counter()
    est.fit(split)
    seconds = time.perf_counter() - start
    if rank != 0:
        return None
    history = est.train_result_.history
    epoch_seconds = [r["seconds"] for r in history if "ndcg@20" not in r]
    return {"method": "directau", "epochs": est.train_result_.epochs_run, "best_epoch": est.train_result_.best_epoch,
            "valid_ndcg@20": est.train_result_.best_score, "fit_seconds": seconds,
            "median_train_epoch_seconds": float(np.median(epoch_seconds)),
            "pairs_per_second": split.splits["train"].nnz / float(np.median(epoch_seconds))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="lowfer", choices=["lowfer", "directau"])
    parser.add_argument("--dataset", default="umls")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rank, world = init_process_group("gloo")
    row = (_lowfer if args.method == "lowfer" else _directau)(args, rank)
    if rank == 0:
        row = {"dataset": args.dataset, "world_size": world, "batch_size": args.batch_size, **row}
        print(json.dumps(row))
        out = Path(args.out_dir) / f"distributed_{args.dataset}_w{world}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps({**row, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpu_count": os.cpu_count()},
                                  indent=2))
        os.replace(tmp, out)
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
