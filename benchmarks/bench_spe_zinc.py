"""Train GINE (+ SPE / LapPE / RWSE / none) on ZINC-12k at the official configuration, resumable.

    python benchmarks/bench_spe_zinc.py --method gine-spe --seed 0 --device cuda \
        --epochs 1000 --checkpoint-dir runs/spe_zinc/gine-spe-0

The model is the official ZINC setting ``SPE_gine_gin_mlp_pe37`` (GINE 4 x 128, 3-layer MLPs,
SPE with d = 37, m = 16 elementwise phi MLPs, rho GIN 8 x 128 -> 37; other PEs at the same base
model) trained with :func:`graphrec.pe.training.fit_graph_regressor` (Adam 1e-3, wd 3e-6, L1,
batch 128, a short linear warm-up, then linear decay over ``--epochs``). The shared ``Trainer``
writes a checkpoint after every epoch into ``--checkpoint-dir``; killing the process (e.g. ``timeout``) and starting the same
command again resumes where it stopped, so a long run can be spread over short sessions. The
pre-transformed graphs are cached in ``--cache-dir`` (``--prepare-only`` builds that cache and stops, so
it can be made on a CPU and carried to a GPU machine; a cache made for another PE, size or subset, or
one that does not load, is rebuilt). When all epochs are done, the test MAE at the best validation
epoch is appended to ``--out`` (JSON lines).
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch


def _load_cache(path: Path, key: dict) -> dict | None:
    """The cached splits if ``path`` holds those of ``key``; ``None`` (logged) if absent, stale or unreadable."""
    if not path.exists():
        return None
    try:
        cached = torch.load(path, weights_only=False)
    except Exception as exc:   # e.g. pickled by another PyG version
        logging.warning("cannot read the cache %s (%s); rebuilding it", path, exc)
        return None
    if not isinstance(cached, dict) or cached.get("key") != key:
        logging.warning("the cache %s holds other graphs than %s; rebuilding it", path, key)
        return None
    logging.info("pre-transformed graphs loaded from %s", path)
    return cached["splits"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="gine-spe", choices=["gine-spe", "gine-lappe", "gine-rwse", "gine"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--checkpoint-dir", required=True)
    parser.add_argument("--out", default="benchmarks/results/spe_zinc_gpu.jsonl")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="stop starting epochs after this many seconds (the run ends normally and is recorded)")
    parser.add_argument("--stop-at", type=float, default=None,
                        help="Unix time after which no epoch starts (caps --max-seconds; the pre-transform counts)")
    parser.add_argument("--limit", type=int, default=None, help="first N graphs of each split (smoke tests)")
    parser.add_argument("--warmup-fraction", type=float, default=0.002,
                        help="share of epochs with linear warm-up (official: 100 steps, about 1.3 of 1000 epochs)")
    parser.add_argument("--cache-dir", default="/tmp/graphrec_spe_cache", help="pre-transformed graphs")
    parser.add_argument("--prepare-only", action="store_true", help="build the pre-transformed cache, then stop")
    args = parser.parse_args(argv)
    if args.stop_at is not None and not args.stop_at > time.time():   # also NaN
        parser.error(f"--stop-at must be a Unix time in the future, got {args.stop_at} (now {time.time():.0f})")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    from graphrec.bench.tasks.graph_regression import OFFICIAL, GraphRegressionData, build_model
    from graphrec.datasets import load
    from graphrec.pe.training import fit_graph_regressor, graph_mae
    from graphrec.train.rng import isolated_rng

    kind = {"gine-spe": "spe", "gine-lappe": "lappe", "gine-rwse": "rwse", "gine": None}[args.method]
    folder = Path(args.checkpoint_dir)
    folder.mkdir(parents=True, exist_ok=True)
    cache = Path(args.cache_dir) / f"graphs_{kind}_{args.limit or 'all'}.pt"
    cache.parent.mkdir(parents=True, exist_ok=True)
    key = {"kind": kind, "limit": args.limit,
           "dims": {k: OFFICIAL[k] for k in ("spe_d", "lappe_k", "rwse_steps")}}
    splits = _load_cache(cache, key)
    if splits is None:
        raw = load("zinc")
        data = GraphRegressionData("zinc", {s: [raw[s][i] for i in range(min(len(raw[s]), args.limit or len(raw[s])))]
                                            for s in raw}, args.epochs,
                                   dict(OFFICIAL))
        splits = data.transformed(kind)
        tmp = cache.with_suffix(".tmp")
        torch.save({"key": key, "splits": splits}, tmp)
        tmp.replace(cache)   # atomic: a run cut by timeout never leaves half a cache
        logging.info("pre-transformed graphs cached in %s", cache)
    if args.prepare_only:
        return 0
    with isolated_rng(args.seed, torch.device(args.device)):
        model = build_model(kind, OFFICIAL)
    max_seconds = args.max_seconds
    if args.stop_at is not None:
        left = args.stop_at - time.time()
        if left <= 0:
            logging.error("the data and pre-transform took the whole budget: --stop-at passed %.0f s ago; no epoch run",
                          -left)
            return 1
        max_seconds = left if max_seconds is None else min(max_seconds, left)
    start = time.perf_counter()
    result = fit_graph_regressor(model, splits["train"], splits["val"], epochs=args.epochs, random_state=args.seed,
                                 warmup_fraction=args.warmup_fraction, device=args.device, checkpoint_dir=folder,
                                 max_seconds=max_seconds, verbose=False)
    record = {
        "method": args.method, "seed": args.seed, "epochs": result.epochs_run, "best_epoch": result.best_epoch,
        "val_mae": result.best_score, "test_mae": graph_mae(model, splits["test"]),
        "params": sum(p.numel() for p in model.parameters()),
        "seconds_this_session": time.perf_counter() - start,
        "seconds_per_epoch": [r["seconds"] for r in result.history][-5:],
        "stopped_by_time": result.stopped_by_time, "epochs_planned": args.epochs,
        "val_curve": [(r["epoch"], round(r["val_mae"], 5)) for r in result.history if "val_mae" in r],
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as fh:
        fh.write(json.dumps(record) + "\n")
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
