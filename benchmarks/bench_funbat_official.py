"""FunBaT (Tucker, R=3) per-epoch time and test RMSE: graphrec against the official code, side by side.

Both run the authors' ``beijing_PM25`` Tucker config (Matérn-1/2, lengthscale 0.1 on [0, 10], variance 1,
damping U / tau / W = 0.5 / 0.6 / 0.9, a0 = b0 = v = 1) on the same data: fold 0 of the shared binned proxy
(``DISCT_428x501x1461_no_agg``, bin-centre coordinates; graphrec's ``load("beijing-pm25")``). Each run is a
fresh subprocess; rounds alternate which implementation goes first. Time per epoch: graphrec's whole
``fit`` (set-up included) divided by the epochs; the official code's epoch loop only (its set-up, which
builds per-coordinate tables, is reported apart). Both use the same number of torch / BLAS threads.

The official code (https://github.com/xuangu-fang/Functional-Bayesian-Tucker-Decomposition) is not part of
graphrec: pass a checkout with ``--official``, and with ``--extra-path`` a folder holding the packages it
needs that graphrec does not (``tensorly``, ``yaml``). The worker only imports its modules and calls its
model's methods, in the order of its ``tucker_continues.py``; two numpy >= 2 gaps (``np.product``,
``numpy.lib.utils``) and the unused ``matplotlib`` import are shimmed at import time, the checkout is not
modified. Its input is written to a temporary folder in its own format (the proxy fold as
``tr_ind_CONTI`` / ``tr_ind_DISCT`` / ..., coordinates ``10 * (b + 0.5) / n_bins``).

Usage:
  GRAPHREC_DATA=/work/shared/datasets python benchmarks/bench_funbat_official.py \
      --official /tmp/funbat_official --extra-path /tmp/funbat_pylib [--epochs 100] [--rounds 2] [--threads 1]
Writes benchmarks/results/<--out>.json and .md (default funbat_official_speed).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

from _workers import run_worker

OUT = Path(__file__).parent / "results"
FOLD = 0
RANK = 3
SEED = 321  # the official scripts' default --seed
# the authors' config_beijing_PM25_Tucker.yaml; graphrec's coordinates are in [0, 1], theirs in [0, 10]
OURS = dict(core="tucker", kernel="matern12", lengthscale=0.01, variance=1.0, damping=(0.5, 0.6, 0.9))


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, dtype=np.float64) - b) ** 2)))


def write_official_input(path: Path) -> None:
    """The proxy fold in the official input format (a pickled dict, as its loader expects)."""
    from graphrec.datasets import load

    data = load("beijing-pm25")
    tr, te = data.folds[FOLD]
    grid = [int(g) for g in data.meta["grid"]]
    bins = data.meta["bins"]
    conti = [10.0 * (np.arange(n) + 0.5) / n for n in grid]
    ind_conti = np.column_stack([conti[k][bins[:, k]] for k in range(len(grid))])
    unseen = [np.setdiff1d(np.unique(bins[te, k]), np.unique(bins[tr, k])).tolist() for k in range(len(grid))]
    fold = dict(tr_ind_CONTI=ind_conti[tr], tr_ind_DISCT=bins[tr], tr_y=data.values[tr],
                te_ind_CONTI=ind_conti[te], te_ind_DISCT=bins[te], te_y=data.values[te], never_seen_test_idx=unseen)
    full = dict(ndims=grid, data=[fold],
                CONTI_2_DISCT_dicts=[{float(c): b for b, c in enumerate(conti[k])} for k in range(len(grid))],
                DISCT_2_CONTI_dicts=[{b: float(c) for b, c in enumerate(conti[k])} for k in range(len(grid))])
    np.save(path, np.array(full, dtype=object), allow_pickle=True)


def run_ours(epochs: int) -> dict:
    from graphrec.datasets import load
    from graphrec.tensor.funbat import FunBaT

    data = load("beijing-pm25")
    tr, te = data.folds[FOLD]
    t0 = time.perf_counter()
    est = FunBaT(rank=RANK, epochs=epochs, random_state=SEED, **OURS).fit(data.coords[tr], data.values[tr])
    fit = time.perf_counter() - t0
    return dict(impl="graphrec", epochs=epochs, setup_s=0.0, loop_s=fit, sec_per_epoch=fit / epochs,
                rmse=_rmse(est.predict(data.coords[te]), data.values[te]))


def run_official(epochs: int, official: str, data_file: str) -> dict:
    import torch

    np.product = np.prod  # removed in numpy 2; the official code calls it once
    import numpy.lib

    if not hasattr(numpy.lib, "utils"):
        numpy.lib.utils = types.ModuleType("numpy.lib.utils")  # imported, unused
    try:
        import matplotlib.pyplot  # noqa: F401
    except ImportError:  # imported, unused
        sys.modules["matplotlib"] = types.ModuleType("matplotlib")
        sys.modules["matplotlib.pyplot"] = types.ModuleType("matplotlib.pyplot")
    sys.path.insert(0, official)
    os.chdir(official)
    import utils_continues  # type: ignore[import-not-found]
    import yaml
    from model_continues_mode_tensor import Continues_Mode_Tensor_Tucker  # type: ignore[import-not-found]

    with open(Path(official) / "config" / "config_beijing_PM25_Tucker.yaml") as fh:
        config = yaml.safe_load(fh)
    config.update(device="cpu", epoch=epochs, R_U=RANK)
    torch.random.manual_seed(SEED)
    t0 = time.perf_counter()
    hyper = utils_continues.make_hyper_dict(config)
    data_dict = utils_continues.make_data_dict(hyper, data_file, 0)
    model = Continues_Mode_Tensor_Tucker(hyper, data_dict)
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(epochs):  # one epoch of tucker_continues.py, CEP_UPDATE_INNNER_MODE = True
        model.reset()
        for mode in range(model.nmods):
            model.msg_approx_U(mode)
            model.LDS_update(mode)
            model.post_update_U(mode)
        model.msg_approx_gamma()
        model.post_update_gamma()
        model.msg_approx_tau()
        model.post_update_tau()
    loop = time.perf_counter() - t0
    model.post_merge_U()
    _, res = model.model_test(model.te_ind_DISCT, model.te_y)
    return dict(impl="official", epochs=epochs, setup_s=setup, loop_s=loop, sec_per_epoch=loop / epochs,
                rmse=float(res["rmse"]))


def _worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    for p in args.extra_path:
        sys.path.insert(0, p)
    out = run_ours(args.epochs) if args.worker == "graphrec" else run_official(args.epochs, args.official, args.data)
    print("RESULT " + json.dumps(out), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", required=True, help="checkout of the official FunBaT code")
    ap.add_argument("--extra-path", nargs="*", default=[], help="folders to put on sys.path (tensorly, yaml)")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="funbat_official_speed")
    ap.add_argument("--worker", choices=["graphrec", "official"], help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        _worker(args)
        return
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        data_file = str(Path(tmp) / "CONTI_proxy_fold0.npy")
        write_official_input(Path(data_file))
        for r in range(args.rounds):
            order = ("official", "graphrec") if r % 2 == 0 else ("graphrec", "official")
            for impl in order:
                cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", impl, "--official",
                       str(Path(args.official).resolve()), "--data", data_file, "--epochs", str(args.epochs),
                       "--threads", str(args.threads), "--extra-path", *args.extra_path]
                res = run_worker(cmd, env, impl)
                res["round"] = r
                runs.append(res)
                print(res, flush=True)
    summary = {}
    for impl in ("official", "graphrec"):
        rs = [x for x in runs if x["impl"] == impl]
        summary[impl] = dict(sec_per_epoch_median=float(np.median([x["sec_per_epoch"] for x in rs])),
                             rmse=[x["rmse"] for x in rs])
    ratio = summary["official"]["sec_per_epoch_median"] / summary["graphrec"]["sec_per_epoch_median"]
    result = dict(machine=f"{platform.processor() or platform.machine()}, 2 shared CPU cores", threads=args.threads,
                  fold=FOLD, rank=RANK, epochs=args.epochs, runs=runs, summary=summary, speedup=ratio)
    OUT.mkdir(exist_ok=True)
    (OUT / f"{args.out}.json").write_text(json.dumps(result, indent=2))
    lines = ["| round | implementation | set-up s | s / epoch | test RMSE | load (1 min) before / after |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {x['round']} | {x['impl']} | {x['setup_s']:.1f} | {x['sec_per_epoch']:.3f} | {x['rmse']:.4f} | "
              f"{x['load1_before']:.2f} / {x['load1_after']:.2f} |" for x in runs]
    lines += ["", f"speed-up (median s/epoch, official / graphrec): {ratio:.1f}x; {args.epochs} epochs, "
              f"{args.threads} thread(s), fold {FOLD}, R={RANK}"]
    (OUT / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
