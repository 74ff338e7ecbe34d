"""DirectAU speed, side by side in one run: our training step vs the official recipe's ops, and full ranking.

The "official recipe" step re-creates the ops of THUwangcy/DirectAU's MF training step (nn.Embedding
lookups, torch.pdist uniformity, default Adam with coupled weight decay), written here from the
method notes (no code copied); ours is the estimator's path (row-sparse embedding gradients,
``SparseRowAdam`` = fused Adam on every row, the Gram-matrix uniformity with its hand-derived gradient). Both run the
same Beauty batches (batch 256, d 64) on one thread; epoch time = time per step x steps per epoch.
Also times full-ranking evaluation of all Gowalla users (29,858 x 40,981, K=50) with graphrec's
evaluator on 2 threads.

Usage: python benchmarks/bench_recsys_speed.py [--steps 150]
Writes benchmarks/results/recsys_speed.json and .md.
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from graphrec.datasets import load
from graphrec.metrics import evaluate_full_ranking
from graphrec.recsys import ratio_split
from graphrec.recsys.encoders import MFEncoder
from graphrec.recsys.losses import directau_loss
from graphrec.recsys.optim import SparseRowAdam


def _official_style_loss(u: torch.Tensor, i: torch.Tensor, gamma: float) -> torch.Tensor:
    x, y = F.normalize(u, dim=-1), F.normalize(i, dim=-1)
    align = (x - y).norm(p=2, dim=1).pow(2).mean()
    uni = lambda z: torch.pdist(z, p=2).pow(2).mul(-2).exp().mean().log()  # noqa: E731
    return align + gamma * (uni(x) + uni(y)) / 2


def _time_steps(train, steps: int, ours: bool) -> float:
    torch.manual_seed(0)
    model = MFEncoder(train.shape[0], train.shape[1], 64, sparse=ours)
    opt = (SparseRowAdam(model.parameters(), lr=1e-3, weight_decay=1e-6, fused=True) if ours
           else torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-6))
    rows, cols = (torch.from_numpy(a.astype(np.int64)) for a in train.nonzero())
    perm = torch.randperm(rows.shape[0], generator=torch.Generator().manual_seed(0))
    loss_fn = directau_loss if ours else _official_style_loss
    start = time.process_time()
    for s in range(steps):
        idx = perm[s * 256:(s + 1) * 256]
        opt.zero_grad()
        loss_fn(*model.encode(rows[idx], cols[idx]), 0.5).backward()
        opt.step()
    return (time.process_time() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train = ratio_split(load("beauty"), random_state=0).splits["train"]
    steps_per_epoch = -(-train.nnz // 256)
    official = _time_steps(train, args.steps, ours=False)
    ours = _time_steps(train, args.steps, ours=True)
    torch.set_num_threads(2)
    train_g, test_g = load("gowalla").splits["train"], load("gowalla").splits["test"]
    rng = np.random.default_rng(0)
    u = torch.from_numpy(rng.standard_normal((train_g.shape[0], 64), dtype=np.float32))
    i = torch.from_numpy(rng.standard_normal((train_g.shape[1], 64), dtype=np.float32))
    t0 = time.time()
    evaluate_full_ranking(lambda b: u[torch.from_numpy(b)] @ i.T, train_g, test_g, ks=(10, 20, 50), block_size=1024)
    eval_wall = time.time() - t0
    out = {"beauty_epoch_cpu_s_ours": ours * steps_per_epoch, "beauty_epoch_cpu_s_official_recipe": official * steps_per_epoch,
           "speedup": official / ours, "steps_timed": args.steps, "steps_per_epoch": steps_per_epoch,
           "gowalla_full_ranking_wall_s_2threads": eval_wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    path = Path(__file__).parent / "results" / "recsys_speed"
    path.with_suffix(".json").write_text(json.dumps(out, indent=1))
    path.with_suffix(".md").write_text(
        "| measure | value |\n|---|---|\n" + "\n".join(f"| {k} | {v:.3f} |" for k, v in out.items()) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
