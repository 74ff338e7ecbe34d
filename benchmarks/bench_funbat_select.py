"""FunBaT on BeijingAir-PM2.5 with hyper-parameters chosen on a validation split of each training fold.

For every outer fold of the shared binned proxy (``DISCT_428x501x1461_no_agg``, the DISCT file's 5 folds):

1. hold out ``--valid-frac`` of the fold's *training* entries (seeded by the fold) as an inner validation set;
2. fit every configuration of the grid (rank 3, Tucker core) on the rest, scoring the validation RMSE every
   ``--eval-every`` epochs (``FunBaT.fit(..., eval_set=...)``), so each configuration also picks its epochs;
3. refit the configuration (and epoch count) with the lowest validation RMSE on the whole training fold and
   report its test RMSE. The test fold is never looked at before step 3.

The grid is staged to stay affordable on 2 shared cores: stage 1 crosses kernel x per-mode lengthscales
(time mode apart from the TEMP / PRES modes) at variance 1, no damping, and a Gamma noise prior of weight N
centred on noise variance 0.05; stage 2 changes one thing at a time around the stage-1 winner (TEMP / PRES
lengthscale 0.03, the noise prior, the variance, the authors' damping, the official code's per-coordinate
prior ``merge_variance``, and ``core_moment='mean'``, the paper's conditional EP). Each configuration is scored by the validation RMSE curve averaged over
``--search-seeds`` fits. The refit is repeated for ``--refit-seeds`` seeds: the table reports seed 0 (one
FunBaT fit, the result), every seed, and the RMSE of the seeds' averaged prediction (an ensemble of
restarts, reported apart: it is not a single FunBaT fit).

Usage:
  GRAPHREC_DATA=/work/shared/datasets python benchmarks/bench_funbat_select.py [--folds 0 1 2 3 4] \
      [--epochs 100] [--threads 1] [--out funbat_pm25_select] [--reuse benchmarks/results/funbat_pm25_select.json]
``--reuse`` takes the validation curves of the configurations a previous result already scored (same
fold, same configuration, same search settings) instead of refitting them.
Writes benchmarks/results/<--out>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from graphrec.datasets import load
from graphrec.tensor.funbat import FunBaT

OUT = Path(__file__).parent / "results"
KERNELS = ("matern12", "matern32", "matern52")
ELL_TIME = (0.001, 0.003)  # coordinates in [0, 1]: one day is 1/1461 of the time mode
ELL_WEATHER = (0.01, 0.1)  # TEMP and PRES modes
AUTHORS_DAMPING = (0.5, 0.6, 0.9)  # the authors' beijing_PM25 Tucker triple (stage 1 is undamped)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def load_avg() -> float:
    return os.getloadavg()[0]


def stage1() -> list[dict]:
    """Kernel x per-mode lengthscales; variance 1, undamped, noise prior pinned near variance 0.05."""
    return [dict(kernel=k, lengthscale=(lw, lw, lt), variance=1.0, damping=0.0, noise_var=0.05, merge_variance=None,
                 core_moment="exact") for k in KERNELS for lt in ELL_TIME for lw in ELL_WEATHER]


def stage2(best: dict) -> list[dict]:
    """One change at a time around the stage-1 winner."""
    lw = best["lengthscale"][0]
    out = [dict(best, lengthscale=(0.03, 0.03, best["lengthscale"][2]))] if lw != 0.03 else []
    out += [dict(best, noise_var=None), dict(best, noise_var=0.1)]
    out += [dict(best, variance=0.3), dict(best, variance=3.0)]
    out += [dict(best, damping=AUTHORS_DAMPING), dict(best, merge_variance=1.0), dict(best, core_moment="mean")]
    return out


def make(cfg: dict, n: int, epochs: int, seed: int) -> FunBaT:
    """``noise_var`` s2 sets the Gamma prior of tau to a0 = N, b0 = N s2 (None: the authors' a0 = b0 = 1)."""
    kw = {k: v for k, v in cfg.items() if k != "noise_var"}
    a0, b0 = (1.0, 1.0) if cfg["noise_var"] is None else (float(n), n * cfg["noise_var"])
    return FunBaT(rank=3, core="tucker", epochs=epochs, a0=a0, b0=b0, random_state=seed, **kw)


def _key(cfg: dict) -> str:
    """A configuration's identity; results from before ``core_moment`` was searched used ``'exact'``."""
    return json.dumps({"core_moment": "exact", **cfg, "lengthscale": list(cfg["lengthscale"])}, sort_keys=True)


def inner_split(data, fold: int, valid_frac: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(fit, validation) indices: a seeded ``valid_frac`` of the fold's training entries held out; and (train, test)."""
    tr, te = data.folds[fold]
    perm = np.random.default_rng(1000 + fold).permutation(tr)
    n_val = int(round(valid_frac * len(tr)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val]), tr, te


def pooled(args, data) -> None:
    """One fixed configuration for every fold: the per-fold winners of ``--pooled-from``, each scored by its
    validation curve averaged over all folds' inner splits and ``--search-seeds`` seeds; the best is refitted."""
    prev = json.loads(Path(args.pooled_from).read_text())
    cands = []
    for f in prev["folds"]:
        c = dict(f["selected"], lengthscale=tuple(f["selected"]["lengthscale"]))
        c["damping"] = tuple(c["damping"]) if isinstance(c["damping"], list) else c["damping"]
        if c not in cands:
            cands.append(c)
    scored = []
    for cfg in cands:
        t0 = time.perf_counter()
        curves = []
        for fold in args.folds:
            fit_idx, val, _, _ = inner_split(data, fold, args.valid_frac)
            for seed in range(args.search_seeds):
                est = make(cfg, len(fit_idx), args.epochs, seed)
                est.fit(data.coords[fit_idx], data.values[fit_idx], eval_set=(data.coords[val], data.values[val]),
                        eval_every=args.eval_every)
                curves.append([r for _, r in est.eval_history_])
        epochs = [e for e, _ in est.eval_history_]
        mean_curve = np.mean(curves, axis=0)
        i = int(np.argmin(mean_curve))
        scored.append(dict(config=cfg, epochs=epochs[i], valid_rmse=float(mean_curve[i]),
                           seconds=time.perf_counter() - t0))
        print(f"pooled {cfg} -> mean valid {mean_curve[i]:.4f} at {epochs[i]} epochs", flush=True)
    best = min(scored, key=lambda r: r["valid_rmse"])
    rows = []
    for fold in args.folds:
        _, _, tr, te = inner_split(data, fold, args.valid_frac)
        load_before = load_avg()
        t0 = time.perf_counter()
        singles = []
        for seed in range(args.refit_seeds):
            est = make(best["config"], len(tr), best["epochs"], seed).fit(data.coords[tr], data.values[tr])
            singles.append(rmse(est.predict(data.coords[te]), data.values[te]))
        rows.append(dict(fold=fold, test_rmse_seeds=singles, seconds=time.perf_counter() - t0,
                         load_before=load_before, load_after=load_avg()))
        print(f"fold {fold}: test RMSE per seed {np.round(singles, 4).tolist()}", flush=True)
    seed0 = np.array([r["test_rmse_seeds"][0] for r in rows])
    result = dict(machine=f"{platform.processor() or platform.machine()}, 2 shared CPU cores", args=vars(args),
                  candidates=scored, selected=best, folds=rows, test_rmse_seed0_mean=float(seed0.mean()),
                  test_rmse_seed0_sd=float(seed0.std()))
    OUT.mkdir(exist_ok=True)
    (OUT / f"{args.out}.json").write_text(json.dumps(result, indent=2))
    c = best["config"]
    lines = [f"selected on the pooled inner splits: {c} ({best['epochs']} epochs), mean valid RMSE "
             f"{best['valid_rmse']:.4f}", "", "| fold | test RMSE seed 0 | test RMSE per seed | seconds "
             "| load before / after |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['fold']} | {r['test_rmse_seeds'][0]:.4f} | {' / '.join(f'{x:.4f}' for x in r['test_rmse_seeds'])} "
              f"| {r['seconds']:.1f} | {r['load_before']:.1f} / {r['load_after']:.1f} |" for r in rows]
    lines += ["", f"test RMSE, seed 0: {seed0.mean():.4f} ± {seed0.std():.4f} (population sd over {len(rows)} folds)"]
    (OUT / f"{args.out}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--epochs", type=int, default=100, help="most epochs a configuration may use")
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--valid-frac", type=float, default=0.1)
    ap.add_argument("--search-seeds", type=int, default=2, help="random_state 0..n-1 per configuration in the search")
    ap.add_argument("--refit-seeds", type=int, default=5, help="random_state 0..n-1 of the refits on the whole fold")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="funbat_pm25_select")
    ap.add_argument("--reuse", default=None, help="a previous result JSON whose scored configurations are not refitted")
    ap.add_argument("--pooled-from", default=None,
                    help="a previous result JSON: score its per-fold winners on every fold's inner split and refit "
                         "the one with the best mean validation RMSE on every fold (one fixed configuration)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = load("beijing-pm25")
    if args.pooled_from:
        pooled(args, data)
        return
    reused = {}
    if args.reuse:
        prev = json.loads(Path(args.reuse).read_text())
        same = all(prev["args"][k] == getattr(args, k) for k in ("epochs", "eval_every", "valid_frac", "search_seeds"))
        if not same:
            raise SystemExit(f"--reuse {args.reuse} was searched with other settings: {prev['args']}")
        for f in prev["folds"]:
            for t in f["trials"]:
                reused[(f["fold"], _key(t["config"]))] = t
    folds = []
    for fold in args.folds:
        fit_idx, val, tr, te = inner_split(data, fold, args.valid_frac)
        trials = []

        def trial(cfg: dict) -> dict:
            if (fold, _key(cfg)) in reused:
                row = dict(reused[(fold, _key(cfg))], config=cfg, reused=True)
                trials.append(row)
                return row
            t0 = time.perf_counter()
            curves = []
            for seed in range(args.search_seeds):
                est = make(cfg, len(fit_idx), args.epochs, seed)
                est.fit(data.coords[fit_idx], data.values[fit_idx], eval_set=(data.coords[val], data.values[val]),
                        eval_every=args.eval_every)
                curves.append(est.eval_history_)
            epochs = [e for e, _ in curves[0]]
            mean_curve = np.mean([[r for _, r in c] for c in curves], axis=0)
            i = int(np.argmin(mean_curve))
            row = dict(config=cfg, epochs=epochs[i], valid_rmse=float(mean_curve[i]), curves=curves,
                       seconds=time.perf_counter() - t0)
            trials.append(row)
            print(f"fold {fold} {cfg} -> valid {row['valid_rmse']:.4f} at {row['epochs']} epochs "
                  f"({row['seconds']:.1f}s)", flush=True)
            return row

        load_before = load_avg()
        best = min((trial(c) for c in stage1()), key=lambda r: r["valid_rmse"])
        best = min([best] + [trial(c) for c in stage2(best["config"])], key=lambda r: r["valid_rmse"])
        t0 = time.perf_counter()
        preds = []
        for seed in range(args.refit_seeds):
            est = make(best["config"], len(tr), best["epochs"], seed).fit(data.coords[tr], data.values[tr])
            preds.append(est.predict(data.coords[te]))
        singles = [rmse(p, data.values[te]) for p in preds]
        avg = np.mean(preds, axis=0)
        folds.append(dict(fold=fold, selected=best["config"], epochs=best["epochs"], valid_rmse=best["valid_rmse"],
                          test_rmse_seed0=singles[0], test_rmse_seeds=singles,
                          test_rmse_average=rmse(avg, data.values[te]),
                          test_mae_seed0=float(np.mean(np.abs(preds[0] - data.values[te]))),
                          refit_seconds=time.perf_counter() - t0, load_before=load_before, load_after=load_avg(),
                          trials=trials))
        print(f"fold {fold}: selected {best['config']} ({best['epochs']} epochs), valid {best['valid_rmse']:.4f}, "
              f"test seed 0 {singles[0]:.4f}, seeds {np.round(singles, 4).tolist()}, "
              f"average of {len(preds)} {folds[-1]['test_rmse_average']:.4f}", flush=True)
    single = np.array([f["test_rmse_seed0"] for f in folds])
    avg = np.array([f["test_rmse_average"] for f in folds])
    result = dict(machine=f"{platform.processor() or platform.machine()}, 2 shared CPU cores", threads=args.threads,
                  args=vars(args), folds=folds, test_rmse_seed0_mean=float(single.mean()),
                  test_rmse_seed0_sd=float(single.std()), test_rmse_average_mean=float(avg.mean()),
                  test_rmse_average_sd=float(avg.std()))
    OUT.mkdir(exist_ok=True)
    (OUT / f"{args.out}.json").write_text(json.dumps(result, indent=2))
    lines = ["| fold | selected (kernel, lengthscale TEMP/PRES/time, variance, damping, noise_var, merge_variance, "
             "core_moment) "
             "| epochs | valid RMSE | test RMSE seed 0 | test RMSE seeds 0-4 | test RMSE of the seed average "
             "| load before / after |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for f in folds:
        c = f["selected"]
        lines.append(f"| {f['fold']} | {c['kernel']}, {c['lengthscale']}, {c['variance']}, {c['damping']}, "
                     f"{c['noise_var']}, {c['merge_variance']}, {c.get('core_moment', 'exact')} | {f['epochs']} | {f['valid_rmse']:.4f} "
                     f"| {f['test_rmse_seed0']:.4f} | {' / '.join(f'{x:.4f}' for x in f['test_rmse_seeds'])} "
                     f"| {f['test_rmse_average']:.4f} | {f['load_before']:.1f} / {f['load_after']:.1f} |")
    lines += ["", f"test RMSE, seed 0: {single.mean():.4f} ± {single.std():.4f}; average of the refit seeds: "
              f"{avg.mean():.4f} ± {avg.std():.4f} (population sd over {len(folds)} folds)"]
    (OUT / f"{args.out}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
