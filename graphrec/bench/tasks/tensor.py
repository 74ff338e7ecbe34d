"""Bench task ``tensor``: regression of continuous-indexed tensor entries (FunBaT), scored by test RMSE / MAE.

The run's ``seed`` picks the fold (``seed % n_folds``) of the dataset's shared 5 folds. Real Beijing
and US-TEMP coordinates are the loader's bin centres in [0, 1]; the authors' lengthscales (given on
[0, 10] for Beijing) are rescaled to that range. ``funbat`` on beijing-pm25 uses the configuration chosen
on validation splits of the training folds (``_SELECTED``); ``funbat-authors`` keeps the authors' config.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from graphrec.bench.registry import register_dataset, register_method, register_task

register_task(
    "tensor",
    "continuous-indexed tensor completion (test entries of a 5-fold split)",
    ["rmse", "mae", "fit_seconds"],
    default_method="funbat",
    default_dataset="synthetic",
)

# the authors' config/*.yaml per dataset: (core, variance, damping (U, tau, W), epochs, lengthscale on [0, 1])
_CONFIGS = {
    ("tucker", "beijing-pm25"): (1.0, (0.5, 0.6, 0.9), 100, 0.01),
    ("cp", "beijing-pm25"): (5.0, (0.3, 0.8, 0.5), 150, 0.01),
    ("tucker", "beijing-pm10"): ((1.0, 1.0, 3.0), (0.3, 0.6, 0.8), 100, 0.01),
    ("cp", "beijing-pm10"): ((3.0, 3.0, 1.0), (0.6, 0.3, 0.7), 100, 0.01),
    ("tucker", "beijing-so2"): (1.0, (0.3, 0.9, 0.7), 100, 0.01),
    ("cp", "beijing-so2"): (1.0, (0.3, 0.8, 0.5), 150, 0.01),
    ("tucker", "us-temp"): (1.0, (0.9, 0.9, 0.95), 200, 0.5),
    ("cp", "us-temp"): (5.0, (0.3, 0.8, 0.5), 150, 0.1),
}


# beijing-pm25, Tucker: chosen on validation splits of the training folds, never on a test fold
# (benchmarks/bench_funbat_select.py --pooled-from ...; BENCHMARKS.md). Lengthscales per mode (TEMP, PRES, time)
# on [0, 1]; noise_var s2 sets the Gamma prior of the noise precision to a0 = N, b0 = N s2.
_SELECTED = {
    ("tucker", "beijing-pm25"): dict(kernel="matern52", lengthscale=(0.1, 0.1, 0.001), variance=1.0, damping=0.0,
                                     epochs=70, noise_var=0.1),
}


def _fold(data: Any, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return data.folds[seed % len(data.folds)]


def _score(data: Any, te: np.ndarray, pred: np.ndarray, seconds: float) -> dict[str, float]:
    err = pred - data.values[te]
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err))), "fit_seconds": seconds}


def _funbat(core: str, authors: bool = False):
    def run(data: Any, seed: int, device: str) -> dict[str, float]:
        from graphrec.tensor import FunBaT

        tr, te = _fold(data, seed)
        if data.name == "synthetic":
            kw = dict(rank=1, kernel="matern32", lengthscale=0.1, variance=0.5, damping=(0.1, 0.2, 0.5), epochs=100)
        elif not authors and (core, data.name) in _SELECTED:
            kw = dict(_SELECTED[(core, data.name)], rank=3)
            noise_var = kw.pop("noise_var")
            kw.update(a0=float(len(tr)), b0=len(tr) * noise_var)
        else:
            var, damp, epochs, ell = _CONFIGS[(core, data.name)]
            kw = dict(rank=3, kernel="matern12", lengthscale=ell, variance=var, damping=damp, epochs=epochs)
        t0 = time.perf_counter()
        est = FunBaT(core=core, random_state=seed, device=device, **kw).fit(data.coords[tr], data.values[tr])
        return _score(data, te, est.predict(data.coords[te]), time.perf_counter() - t0)

    return run


def _als(kind: str):
    def run(data: Any, seed: int, device: str) -> dict[str, float]:
        from graphrec.tensor import MaskedCPALS, MaskedTuckerALS

        tr, te = _fold(data, seed)
        cap = [50, 50, 150] if data.n_modes == 3 else [20] * data.n_modes  # FunBaT's coarsest baseline grid
        grid = np.minimum(data.meta.get("grid", cap), cap)
        cls = MaskedCPALS if kind == "cp" else MaskedTuckerALS
        t0 = time.perf_counter()
        est = cls(rank=3, n_bins=grid, n_iter=100, random_state=seed).fit(data.coords[tr], data.values[tr])
        return _score(data, te, est.predict(data.coords[te]), time.perf_counter() - t0)

    return run


register_method("tensor", "funbat", _funbat("tucker"),
                "FunBaT, Fang et al. ICLR 2024 (Tucker core; validated config on beijing-pm25, else the authors')")
register_method("tensor", "funbat-authors", _funbat("tucker", authors=True),
                "FunBaT, Fang et al. ICLR 2024 (Tucker core, the authors' config on every dataset)")
register_method("tensor", "funbat-cp", _funbat("cp"), "FunBaT-CP, Fang et al. ICLR 2024 (authors' config)")
register_method("tensor", "cp-als", _als("cp"), "baseline: masked CP-ALS on a binned grid (at most 50 x 50 x 150)")
register_method("tensor", "tucker-als", _als("tucker"),
                "baseline: masked Tucker-ALS (core R^K) on a binned grid (at most 50 x 50 x 150)")


def _real(name: str):
    def load() -> Any:
        from graphrec.datasets import load as load_dataset

        return load_dataset(name)

    return load


def _synthetic() -> Any:
    from graphrec.datasets import load as load_dataset

    data = load_dataset("funbat-synthetic-r1")
    data.name = "synthetic"
    return data


register_dataset("tensor", "synthetic", _synthetic, "FunBaT's rank-1 synthetic set simulation_r1 (1 fold)")
for _name in ("beijing-pm25", "beijing-pm10", "beijing-so2", "us-temp"):
    register_dataset("tensor", _name, _real(_name), f"real continuous-indexed tensor {_name!r} (datasets/{_name}.toml)")
