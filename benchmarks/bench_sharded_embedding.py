"""Row-sharded embedding table on 1 and N processes: memory per rank and step time.

    torchrun --nproc-per-node 1 benchmarks/bench_sharded_embedding.py --rows 4000000 --dim 64
    torchrun --nproc-per-node 2 benchmarks/bench_sharded_embedding.py --rows 4000000 --dim 64

Each rank holds a ``graphrec.train.sharded_embedding.ShardedEmbedding`` shard and its Adam state
and trains ``--steps`` steps on random ids (``--batch`` per rank, loss: mean squared distance of
the looked-up rows to a fixed target), under ``DistributedTrainer``'s gradient rule. Rank 0 gathers
every rank's peak resident memory and writes ``benchmarks/results/sharded_embedding_w<N>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import torch
import torch.distributed as dist

from graphrec.train import init_process_group
from graphrec.train.sharded_embedding import ShardedEmbedding


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out-dir", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rank, world = init_process_group("gloo")
    table = ShardedEmbedding(args.rows, args.dim, random_state=0)
    opt = torch.optim.Adam(table.parameters(), lr=1e-3, fused=True)
    gen = torch.Generator().manual_seed(rank)
    target = torch.ones(args.dim)
    times = []
    for _ in range(args.steps):
        ids = torch.randint(0, args.rows, (args.batch,), generator=gen)
        start = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        ((table(ids) - target).pow(2).sum(1).mean() / world).backward()
        opt.step()
        times.append(time.perf_counter() - start)
    peak = torch.tensor([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024])
    peaks = [torch.zeros(1) for _ in range(world)]
    dist.all_gather(peaks, peak)
    if rank == 0:
        times.sort()
        row = {"world_size": world, "rows": args.rows, "dim": args.dim, "batch_per_rank": args.batch,
               "table_mb": args.rows * args.dim * 4 / 2**20, "shard_rows_rank0": table.stop - table.start,
               "peak_rss_mb_per_rank": [round(float(p), 1) for p in peaks],
               "median_step_s": times[len(times) // 2], "ids_per_second": world * args.batch / times[len(times) // 2],
               "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpu_count": os.cpu_count()}
        print(json.dumps(row))
        out = Path(args.out_dir) / f"sharded_embedding_w{world}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(row, indent=2))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
