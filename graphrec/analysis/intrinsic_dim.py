"""Intrinsic dimension of an objective landscape by training in a random subspace.

All ``D`` parameters of a network are reparameterised as ``theta = theta_0 + P theta_d``: ``theta_0``
is the frozen random initialisation, ``P`` ``(D, d)`` a fixed random projection with unit-norm
columns, and only ``theta_d`` (starting at 0) is trained. ``d_int90`` is the smallest ``d`` whose
trained model reaches 90% of the performance of ordinary (full-space) training.

``P`` is either dense Gaussian (stored, ``D * d`` floats) or Fastfood, ``P = H G Pi H B`` stacked
in blocks of size ``L = 2^ceil(log2 d)`` (``H`` Walsh-Hadamard, ``G`` Gaussian diagonal, ``Pi`` a
permutation, ``B`` random signs), applied in ``O(D log d)`` with ``O(D)`` memory.

Reference: C. Li, H. Farkhoor, R. Liu, J. Yosinski, "Measuring the intrinsic dimension of
objective landscapes", ICLR 2018, arXiv 1804.08838 (code: github.com/uber-research/intrinsic-dimension);
Q. Le, T. Sarlós, A. Smola, "Fastfood: approximating kernel expansions in loglinear time", ICML 2013.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.train import Trainer, tensor_batches
from graphrec.utils.progress import progress
from graphrec.utils.validation import (
    check_array,
    check_choice,
    check_device,
    check_float,
    check_int,
    check_labels,
    check_random_state,
    torch_generator,
)

__all__ = [
    "DenseProjection",
    "FastfoodProjection",
    "IntrinsicDimension",
    "IntrinsicDimensionResult",
    "RandomSubspaceModel",
    "fwht",
    "intrinsic_dimension",
]

logger = logging.getLogger(__name__)


def fwht(x: torch.Tensor) -> torch.Tensor:
    """Unnormalised fast Walsh-Hadamard transform ``x H`` over the last dimension (a power of 2).

    ``H`` is the Sylvester-ordered Hadamard matrix (``scipy.linalg.hadamard``), ``H H = L I``.

    >>> fwht(torch.tensor([1.0, 0.0, 0.0, 0.0])).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    n = x.shape[-1]
    if n < 1 or n & (n - 1):
        raise ValueError(f"the last dimension of x must be a power of 2, got {n}")
    lead = x.shape[:-1]
    h = 1
    while h < n:
        y = x.reshape(*lead, n // (2 * h), 2, h)
        x = torch.stack([y[..., 0, :] + y[..., 1, :], y[..., 0, :] - y[..., 1, :]], dim=-2)
        h *= 2
    return x.reshape(*lead, n)


class DenseProjection(nn.Module):
    """Dense Gaussian ``P`` ``(D, d)`` with unit-norm columns; ``forward(theta_d) = P theta_d``."""

    def __init__(self, n_params: int, dim: int, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        p = torch.randn(n_params, dim, generator=generator, dtype=torch.float64)
        self.register_buffer("matrix", (p / torch.linalg.vector_norm(p, dim=0)).to(dtype))

    def forward(self, theta_d: torch.Tensor) -> torch.Tensor:
        return self.matrix @ theta_d


class FastfoodProjection(nn.Module):
    """Fastfood ``P`` ``(D, d)``: ``ceil(D / L)`` stacked blocks ``H G Pi H B`` of size ``L = 2^ceil(log2 d)``.

    Columns have unit norm exactly when ``L`` divides ``D`` (else up to the truncated last block).
    """

    def __init__(self, n_params: int, dim: int, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.n_params, self.dim = n_params, dim
        self.block = 1 << max(0, math.ceil(math.log2(dim)))
        n_blocks = -(-n_params // self.block)
        shape = (n_blocks, self.block)
        signs = torch.randint(0, 2, shape, generator=generator).to(dtype) * 2 - 1
        perm = torch.stack([torch.randperm(self.block, generator=generator) for _ in range(n_blocks)])
        gauss = torch.randn(shape, generator=generator, dtype=torch.float64)
        scale = 1.0 / math.sqrt(self.block * float((gauss**2).sum()))
        self.register_buffer("signs", signs)
        self.register_buffer("perm", perm)
        self.register_buffer("gauss", (gauss * scale).to(dtype))

    def forward(self, theta_d: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.pad(theta_d, (0, self.block - self.dim))
        x = fwht(self.signs * x)
        x = torch.gather(x, 1, self.perm)
        x = fwht(self.gauss * x)
        return x.reshape(-1)[: self.n_params]


class RandomSubspaceModel(nn.Module):
    """Wrap ``module`` so that only ``theta_d`` ``(d,)`` is trained: ``theta = theta_0 + P theta_d``.

    ``theta_0`` is a copy of ``module``'s parameters at wrapping time; ``module``'s own parameters
    are frozen (``requires_grad=False``) and replaced in ``forward`` through
    :func:`torch.func.functional_call`. Buffers (e.g. batch-norm statistics) stay the module's.

    Parameters
    ----------
    module : nn.Module
    dim : int
        Subspace dimension ``d`` (1 <= d).
    projection : {"dense", "fastfood"}
    random_state : None, int or numpy Generator
        Draws ``P``.
    """

    def __init__(self, module: nn.Module, dim: int, projection: str = "dense", random_state: Any = None) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        dim = check_int(dim, "dim", low=1)
        check_choice(projection, "projection", ("dense", "fastfood"))
        named = [(name, p) for name, p in module.named_parameters()]
        if not named:
            raise ValueError("module has no parameters to reparameterise")
        self.module = module
        self._names = [name for name, _ in named]
        self._shapes = [p.shape for _, p in named]
        theta0 = torch.cat([p.detach().reshape(-1) for _, p in named])
        for _, p in named:
            p.requires_grad_(False)
        self.register_buffer("theta0", theta0.clone())
        gen = torch_generator(random_state)
        cls = DenseProjection if projection == "dense" else FastfoodProjection
        self.projection = cls(theta0.numel(), dim, gen, theta0.dtype).to(theta0.device)
        self.theta_d = nn.Parameter(torch.zeros(dim, dtype=theta0.dtype, device=theta0.device))

    @property
    def n_params(self) -> int:
        """``D``, the number of parameters of the wrapped module."""
        return self.theta0.numel()

    def full_parameters(self) -> dict[str, torch.Tensor]:
        """The module's parameters ``theta_0 + P theta_d``, by name (differentiable in ``theta_d``)."""
        flat = self.theta0 + self.projection(self.theta_d)
        out, start = {}, 0
        for name, shape in zip(self._names, self._shapes):
            n = shape.numel()
            out[name] = flat[start : start + n].view(shape)
            start += n
        return out

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return functional_call(self.module, self.full_parameters(), args, kwargs)


@dataclass(frozen=True)
class IntrinsicDimensionResult:
    """``d_int``: smallest ``d`` whose score reaches ``threshold * baseline`` (``None`` if none did)."""

    d_int: int | None
    dims: list[int]
    scores: list[float]
    baseline: float
    threshold: float


def intrinsic_dimension(
    score_fn: Callable[[int], float], dims: Sequence[int], baseline: float, threshold: float = 0.9
) -> IntrinsicDimensionResult:
    """Sweep ``score_fn(d)`` (higher is better) over ``dims`` and find ``d_int``.

    >>> intrinsic_dimension(lambda d: min(1.0, d / 100), [10, 50, 100, 200], baseline=1.0).d_int
    100
    """
    baseline = check_float(baseline, "baseline", low=0.0, low_open=True)
    threshold = check_float(threshold, "threshold", low=0.0, high=1.0, low_open=True)
    dims = sorted(check_int(d, "dims[i]", low=1) for d in dims)
    if not dims:
        raise ValueError("dims must hold at least one subspace dimension")
    if len(set(dims)) != len(dims):
        raise ValueError(f"dims must not repeat a dimension, got {dims}")
    scores = [float(score_fn(d)) for d in dims]
    d_int = next((d for d, s in zip(dims, scores) if s >= threshold * baseline), None)
    return IntrinsicDimensionResult(d_int=d_int, dims=dims, scores=scores, baseline=baseline, threshold=threshold)


def _mlp(n_in: int, hidden: Sequence[int], n_out: int, generator: torch.Generator) -> nn.Sequential:
    """ReLU MLP initialised from ``generator`` like ``nn.Linear``'s default, U(-1/sqrt(fan_in), ...)."""
    sizes = [n_in, *hidden, n_out]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        with torch.random.fork_rng(devices=[]):  # nn.Linear's default init draws from the global RNG
            lin = nn.Linear(a, b)
        bound = 1.0 / math.sqrt(a)
        with torch.no_grad():
            lin.weight.copy_(torch.rand(b, a, generator=generator) * 2 * bound - bound)
            lin.bias.copy_(torch.rand(b, generator=generator) * 2 * bound - bound)
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class IntrinsicDimension(GraphrecEstimator):
    """Intrinsic dimension ``d_int`` of an MLP classifier's training objective on ``(X, y)``.

    ``fit`` holds out ``validation_fraction`` of the samples (stratified), trains the MLP in full
    space for the baseline validation accuracy, then trains it from the same initialisation in a
    random subspace of each dimension in ``dims`` (``theta = theta_0 + P theta_d``, Adam on
    ``theta_d`` through :class:`graphrec.train.Trainer`).

    Parameters
    ----------
    hidden : sequence of int
        Hidden layer widths (the paper's digits-sized FC net: one or two layers of 64).
    dims : sequence of int
        Subspace dimensions to try.
    threshold : float in (0, 1]
        ``d_int`` is the smallest ``d`` reaching ``threshold`` times the baseline accuracy.
    projection : {"dense", "fastfood"}
    max_epochs : int
        Epochs of Adam, for the baseline and every subspace run.
    lr, subspace_lr : float
        Adam learning rates of the full-space and the subspace runs.
    batch_size : int
    validation_fraction : float in (0, 1)
    random_state : None, int or numpy Generator
    device : str
    verbose : bool
        Progress bar over ``dims``.

    Attributes
    ----------
    n_params_ : int
        ``D``, the number of MLP parameters.
    baseline_score_ : float
        Validation accuracy of full-space training.
    dims_ : list of int
    scores_ : list of float
        Validation accuracy for each of ``dims_``.
    intrinsic_dimension_ : int or None
        ``d_int`` (``None`` when no ``d`` reached the threshold).

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> x, y = make_blobs(300, n_features=4, centers=3, random_state=0)
    >>> est = IntrinsicDimension(hidden=(8,), dims=(1, 4, 16), max_epochs=20, random_state=0).fit(x, y)
    >>> est.n_params_, est.baseline_score_ > 0.9, est.intrinsic_dimension_ in (1, 4, 16)
    (67, True, True)
    """

    def __init__(
        self,
        hidden: Sequence[int] = (64,),
        dims: Sequence[int] = (10, 20, 40, 80, 160, 320),
        *,
        threshold: float = 0.9,
        projection: str = "dense",
        max_epochs: int = 100,
        lr: float = 1e-2,
        subspace_lr: float = 0.1,
        batch_size: int = 128,
        validation_fraction: float = 0.25,
        random_state: Any = None,
        device: str = "cpu",
        verbose: bool = False,
    ) -> None:
        self.hidden = hidden
        self.dims = dims
        self.threshold = threshold
        self.projection = projection
        self.max_epochs = max_epochs
        self.lr = lr
        self.subspace_lr = subspace_lr
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _split(self, n: int, y: np.ndarray, rng: np.random.Generator, frac: float) -> tuple[np.ndarray, np.ndarray]:
        val = []
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            val.append(idx[: max(1, round(frac * idx.size))])
        val_idx = np.sort(np.concatenate(val))
        return np.setdiff1d(np.arange(n), val_idx), val_idx

    def _train(self, model: nn.Module, params: list[torch.Tensor], lr: float, data: tuple, seed: int) -> float:
        x_tr, y_tr, x_va, y_va = data
        trainer = Trainer(
            model,
            torch.optim.Adam(params, lr=lr),
            lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1]),
            max_epochs=self.max_epochs,
            device=x_tr.device,
            random_state=seed,
            verbose=False,
        )
        trainer.fit(lambda epoch, g: tensor_batches(x_tr, y_tr, batch_size=self.batch_size, generator=g))
        with torch.no_grad():
            return float((model(x_va).argmax(1) == y_va).float().mean())

    def fit(self, x: Any, y: Any) -> "IntrinsicDimension":
        """Measure ``d_int`` on features ``x`` ``(n, p)`` and integer class labels ``y`` ``(n,)``."""
        for name in ("hidden", "dims"):
            if not isinstance(getattr(self, name), Sequence):
                raise TypeError(f"{name} must be a sequence of positive integers, got {getattr(self, name)!r}")
        hidden = [check_int(h, "hidden[i]", low=1) for h in self.hidden]
        dims = [check_int(d, "dims[i]", low=1) for d in self.dims]
        if not dims:
            raise ValueError("dims must hold at least one subspace dimension")
        threshold = check_float(self.threshold, "threshold", low=0.0, high=1.0, low_open=True)
        check_choice(self.projection, "projection", ("dense", "fastfood"))
        check_int(self.max_epochs, "max_epochs", low=1)
        lr = check_float(self.lr, "lr", low=0.0, low_open=True)
        subspace_lr = check_float(self.subspace_lr, "subspace_lr", low=0.0, low_open=True)
        check_int(self.batch_size, "batch_size", low=1)
        frac = check_float(self.validation_fraction, "validation_fraction", low=0.0, high=1.0, low_open=True)
        if frac >= 1.0:
            raise ValueError(f"validation_fraction must be below 1, got {frac}")
        dev = check_device(self.device)
        rng = check_random_state(self.random_state)
        xa = check_array(x, "x", ndim=2, dtype=np.float32, min_rows=2)
        labels = check_labels(y, xa.shape[0], "y")
        if labels.min() < 0:
            raise ValueError(f"y must hold class labels >= 0, got {labels.min()}")
        classes, codes = np.unique(labels, return_inverse=True)
        if classes.size < 2:
            raise ValueError("y must hold at least 2 classes")
        if np.bincount(codes).min() < 2:
            raise ValueError("every class needs at least 2 samples (one for training, one for validation)")
        tr, va = self._split(xa.shape[0], codes, rng, frac)
        xt, yt = torch.as_tensor(xa, device=dev), torch.as_tensor(codes, device=dev)
        data = (xt[tr], yt[tr], xt[va], yt[va])
        init = _mlp(xa.shape[1], hidden, classes.size, torch_generator(rng))
        theta0 = {k: v.clone() for k, v in init.state_dict().items()}
        self.n_params_ = sum(p.numel() for p in init.parameters())
        self.baseline_score_ = self._train(init, list(init.parameters()), lr, data, int(rng.integers(2**31)))
        logger.info("full space: D=%d, validation accuracy %.4f", self.n_params_, self.baseline_score_)

        def score(d: int) -> float:
            net = _mlp(xa.shape[1], hidden, classes.size, torch.Generator())
            net.load_state_dict(theta0)
            model = RandomSubspaceModel(net, d, self.projection, random_state=int(rng.integers(2**31))).to(dev)
            acc = self._train(model, [model.theta_d], subspace_lr, data, int(rng.integers(2**31)))
            logger.info("d=%d: validation accuracy %.4f", d, acc)
            return acc

        scores = {d: score(d) for d in progress(sorted(set(dims)), verbose=self.verbose, desc="subspace dims")}
        result = intrinsic_dimension(scores.__getitem__, list(scores), self.baseline_score_, threshold)
        self.dims_, self.scores_, self.intrinsic_dimension_ = result.dims, result.scores, result.d_int
        return self


register_estimator(
    "graphrec.analysis.IntrinsicDimension",
    EstimatorSpec(
        factory=lambda: IntrinsicDimension(hidden=(4,), dims=(2, 8), max_epochs=2, random_state=0),
        make_input=lambda seed: (
            np.random.default_rng(seed).normal(size=(40, 3)) + np.repeat([[0.0], [3.0]], 20, 0),
            np.repeat([0, 1], 20),
        ),
        output=lambda est, args: np.array(est.scores_ + [est.baseline_score_]),
        bad_inputs={
            "nan": lambda: (np.full((10, 3), np.nan), np.repeat([0, 1], 5)),
            "length_mismatch": lambda: (np.zeros((10, 3)), np.zeros(9, dtype=int)),
            "one_class": lambda: (np.zeros((10, 3)), np.zeros(10, dtype=int)),
        },
    ),
)
