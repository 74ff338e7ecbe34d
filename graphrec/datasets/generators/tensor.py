"""Continuous-indexed tensor with a low-rank structure of smooth latent functions.

Generative model, for ``K`` modes and ``N`` observations:

* coordinates ``x_i ~ Uniform[0, 1]^K``;
* mode ``k`` has ``R_k`` latent functions, each a sum of ``n_terms`` sinusoids,
  ``u_{k,r}(x) = sum_j a_{k,r,j} sin(2 pi f_{k,r,j} x + phi_{k,r,j})`` with ``a ~ N(0, 1/n_terms)``,
  integer frequencies ``f`` uniform in ``1..max_frequency`` and phases uniform in ``[0, 2 pi)``;
* the clean value is a CP combination ``sum_r lambda_r prod_k u_{k,r}(x_k)`` (all ``R_k = R``) or a
  Tucker one ``sum_{r_1..r_K} G[r_1, .., r_K] prod_k u_{k,r_k}(x_k)``, with ``lambda, G ~ N(0, 1)``
  rescaled so that the clean values have unit standard deviation on the sampled coordinates;
* ``values = clean + noise * eps``, ``eps ~ N(0, 1)``.

The observations are cut into ``n_folds`` random folds for cross-validation.

References
----------
Fang, Yu, Li, Wang & Zhe, "Functional Bayesian Tucker decomposition for continuous-indexed
tensor data" (FunBaT), ICLR 2024.
Kolda & Bader, "Tensor decompositions and applications", SIAM Review 51(3), 2009.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from graphrec.utils.validation import check_float, check_int
from graphrec.datasets.tensor import ContinuousTensor
from graphrec.utils.validation import check_array, check_random_state

__all__ = ["LowRankFunction", "SinusoidFunctions", "make_continuous_tensor"]

_LETTERS = "abcdefghijklmopqrstuvwxyz"  # einsum subscripts for the core; "n" indexes observations


@dataclass(frozen=True)
class SinusoidFunctions:
    """``R`` smooth functions on [0, 1], ``u_r(x) = sum_j a[r, j] sin(2 pi f[r, j] x + phi[r, j])``.

    Attributes
    ----------
    amplitudes, frequencies, phases : ndarray, shape (R, n_terms)
        ``a``, ``f`` and ``phi`` above.
    """

    amplitudes: np.ndarray
    frequencies: np.ndarray
    phases: np.ndarray

    def __call__(self, x: Any) -> np.ndarray:
        """Evaluate all ``R`` functions at ``x`` of shape (n,); returns shape (n, R)."""
        x = check_array(x, "x", ndim=1, min_rows=0)
        arg = 2.0 * np.pi * x[:, None, None] * self.frequencies + self.phases
        return (self.amplitudes * np.sin(arg)).sum(axis=2)


@dataclass(frozen=True)
class LowRankFunction:
    """The clean signal ``coords (n, K) -> values (n,)`` of :func:`make_continuous_tensor`.

    Attributes
    ----------
    functions : tuple of SinusoidFunctions
        The latent functions of each mode.
    core : ndarray
        CP weights ``lambda`` of shape (R,), or the Tucker core ``G`` of shape (R_1, .., R_K).
    decomposition : {"cp", "tucker"}
    """

    functions: tuple[SinusoidFunctions, ...]
    core: np.ndarray
    decomposition: str

    def __call__(self, coords: Any) -> np.ndarray:
        coords = check_array(coords, "coords", ndim=2, min_rows=0)
        if coords.shape[1] != len(self.functions):
            raise ValueError(f"coords has {coords.shape[1]} columns, expected {len(self.functions)} (one per mode)")
        latent = [u(coords[:, k]) for k, u in enumerate(self.functions)]  # each (n, R_k)
        if self.decomposition == "cp":
            return np.prod(latent, axis=0) @ self.core
        subs = _LETTERS[: len(latent)]
        spec = ",".join(f"n{s}" for s in subs) + f",{subs}->n"
        return np.einsum(spec, *latent, self.core)


def _ranks(rank: int | Sequence[int], n_modes: int, decomposition: str) -> list[int]:
    if isinstance(rank, (int, np.integer)) and not isinstance(rank, bool):
        return [check_int(rank, "rank", low=1)] * n_modes
    if decomposition == "cp":
        raise TypeError(f"rank must be an int for decomposition='cp', got {type(rank).__name__}")
    values = list(rank)
    if len(values) != n_modes:
        raise ValueError(f"rank must be an int or one int per mode ({n_modes}), got {len(values)} values")
    return [check_int(r, f"rank[{k}]", low=1) for k, r in enumerate(values)]


def make_continuous_tensor(
    n_obs: int = 2000,
    n_modes: int = 3,
    rank: int | Sequence[int] = 2,
    *,
    decomposition: str = "cp",
    noise: float = 0.1,
    max_frequency: int = 2,
    n_terms: int = 2,
    n_folds: int = 5,
    return_truth: bool = False,
    random_state: Any = None,
) -> ContinuousTensor | tuple[ContinuousTensor, LowRankFunction]:
    """Noisy observations of a low-rank combination of smooth functions of continuous coordinates.

    See the module docstring for the generative model.

    Parameters
    ----------
    n_obs : int, default=2000
        Number of observations ``N``.
    n_modes : int, default=3
        Number of continuous modes ``K`` (at most 24).
    rank : int or sequence of int, default=2
        CP rank ``R``, or Tucker ranks (an int for all modes or one per mode).
    decomposition : {"cp", "tucker"}, default="cp"
    noise : float >= 0, default=0.1
        Standard deviation of the additive Gaussian noise; the clean signal has unit standard
        deviation, so this is the noise-to-signal ratio.
    max_frequency : int, default=2
        Highest frequency of the sinusoids (smoothness of the latent functions).
    n_terms : int, default=2
        Sinusoids per latent function.
    n_folds : int, default=5
        Random cross-validation folds (each observation is tested exactly once).
    return_truth : bool, default=False
        Also return the clean signal as a :class:`LowRankFunction` (callable on coords of shape
        (n, K), holding the per-mode latent functions and the core).
    random_state : int, numpy Generator or None

    Returns
    -------
    ContinuousTensor
        ``coords`` (N, K) in [0, 1], ``values`` (N,), ``folds`` (train_idx, test_idx) pairs,
        ``mode_names`` ``["x0", .., "x{K-1}"]`` and ``meta`` with the generator's arguments.
    """
    n_obs = check_int(n_obs, "n_obs", low=2)
    n_modes = check_int(n_modes, "n_modes", low=1, high=len(_LETTERS))
    if decomposition not in ("cp", "tucker"):
        raise ValueError(f"decomposition must be 'cp' or 'tucker', got {decomposition!r}")
    ranks = _ranks(rank, n_modes, decomposition)
    noise = check_float(noise, "noise", low=0.0)
    max_frequency = check_int(max_frequency, "max_frequency", low=1)
    n_terms = check_int(n_terms, "n_terms", low=1)
    n_folds = check_int(n_folds, "n_folds", low=2, high=n_obs)
    rng = check_random_state(random_state)

    coords = rng.random((n_obs, n_modes))
    functions = tuple(
        SinusoidFunctions(
            amplitudes=rng.standard_normal((r, n_terms)) / np.sqrt(n_terms),
            frequencies=rng.integers(1, max_frequency + 1, size=(r, n_terms)).astype(np.float64),
            phases=rng.uniform(0.0, 2.0 * np.pi, size=(r, n_terms)),
        )
        for r in ranks
    )
    core = rng.standard_normal(ranks[0] if decomposition == "cp" else tuple(ranks))
    signal = LowRankFunction(functions, core, decomposition)
    clean = signal(coords)
    scale = clean.std()
    if scale == 0.0:
        raise ValueError("the drawn signal is constant on the sampled coordinates; use more observations")
    signal = LowRankFunction(functions, core / scale, decomposition)
    values = clean / scale + noise * rng.standard_normal(n_obs)

    parts = np.array_split(rng.permutation(n_obs), n_folds)
    folds = [(np.sort(np.concatenate(parts[:k] + parts[k + 1 :])), np.sort(parts[k])) for k in range(n_folds)]
    meta = {
        "generator": "make_continuous_tensor",
        "decomposition": decomposition,
        "ranks": ranks,
        "noise": noise,
        "max_frequency": max_frequency,
        "n_terms": n_terms,
    }
    tensor = ContinuousTensor(
        coords, values, folds, [f"x{k}" for k in range(n_modes)], name=f"{decomposition}_functions", meta=meta
    )
    if return_truth:
        return tensor, signal
    return tensor
