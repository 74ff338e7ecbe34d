"""GIST: targeted data selection by aligning per-example gradients in the target-gradient subspace.

Given validation (target-task) gradients ``G_val`` ``(N, D)``, GIST takes the top-``k`` right singular
subspace of ``G_val`` through the Gram trick (``K = G G^T = U Λ U^T``, projector
``P = G^T U_k Λ_k^{-1/2}``, ``D x k``, i.e. the top right singular vectors), maps validation
gradients to ``U_k Λ_k^{1/2}`` and training gradients to ``ĝ = g P``, and scores each training
example by the cosine between ``ĝ`` and the (normalised) mean validation coordinate of each target
subtask, maximised over subtasks. The top ``fraction`` of the pool is selected.
:func:`per_example_gradients` computes the flattened gradients of a torch model with
``torch.func`` (``vmap`` of ``grad``).

References
----------
G. Min, Y. Huang, Z. Wan, X. Chen. "GIST: Targeted Data Selection for Instruction Tuning via Coupled
Optimization Geometry", ICML 2026 (arXiv:2602.18584). Builds on M. Xia et al., "LESS: Selecting
Influential Data for Targeted Instruction Tuning", ICML 2024.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.core._checks import as_tensor
from graphrec.utils.validation import check_array, check_device, check_float, check_int

__all__ = ["GISTSelector", "gradient_subspace", "per_example_gradients"]

logger = logging.getLogger(__name__)


def gradient_subspace(gradients: Any, n_components: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top right singular subspace of ``gradients`` ``(N, D)`` by the Gram trick (cheap when ``N << D``).

    Returns
    -------
    projector : Tensor, shape (D, k)
        Orthonormal columns ``G^T U_k Λ_k^{-1/2}``; ``k = min(n_components, rank)``.
    singular_values : Tensor, shape (k,)
    """
    g = as_tensor(gradients, "gradients", ndim=2)
    k = check_int(n_components, "n_components", low=1)
    lam, u = torch.linalg.eigh(g @ g.T)
    lam, u = lam.flip(0), u.flip(1)
    tol = max(g.shape) * torch.finfo(g.dtype).eps * float(lam[0].clamp_min(0))
    rank = int((lam > tol).sum())
    if rank == 0:
        raise ValueError("gradients are all zero; there is no target subspace to project onto")
    k = min(k, rank)
    sv = lam[:k].sqrt()
    return g.T @ (u[:, :k] / sv), sv


def per_example_gradients(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    params: Sequence[str] | None = None,
) -> torch.Tensor:
    """Flattened gradient of ``loss_fn(model(x_i), y_i)`` for every example: shape ``(B, D)``.

    ``params`` names the parameters to differentiate (default: all with ``requires_grad``, e.g. only
    the LoRA factors of an adapted model); ``D`` is their total size, in ``named_parameters`` order.
    ``loss_fn`` receives a batch of one (``(1, ...)`` outputs and targets).
    """
    from torch.func import functional_call, grad, vmap

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    named = dict(model.named_parameters())
    names = [n for n, p in named.items() if p.requires_grad] if params is None else list(params)
    missing = [n for n in names if n not in named]
    if missing:
        raise ValueError(f"params names unknown parameters {missing}; expected names from model.named_parameters()")
    if not names:
        raise ValueError("no parameters to differentiate (none requires grad and params is empty)")
    if inputs.shape[0] != targets.shape[0] or inputs.shape[0] == 0:
        raise ValueError(
            f"inputs and targets must have the same, non-zero batch size, got {inputs.shape[0]} and {targets.shape[0]}"
        )
    train = {n: named[n].detach() for n in names}
    frozen = {n: p.detach() for n, p in named.items() if n not in train}
    frozen.update(dict(model.named_buffers()))

    def loss_one(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, {**frozen, **p}, (x.unsqueeze(0),))
        return loss_fn(out, y.unsqueeze(0))

    grads = vmap(grad(loss_one), in_dims=(None, 0, 0))(train, inputs, targets)
    return torch.cat([grads[n].reshape(inputs.shape[0], -1) for n in names], 1)


class GISTSelector(GraphrecEstimator):
    """Select the training examples whose gradients align with the target task's gradient subspace.

    Parameters
    ----------
    n_components : int
        ``k``, dimension of the target gradient subspace (the official README example uses 9).
    fraction : float in (0, 1]
        Share of the pool that :meth:`select` returns (the paper selects 5 %).
    device : str
        Where the projections run.
    verbose : bool
        Log the retained spectrum.

    Attributes
    ----------
    projector_ : Tensor, shape (D, k)
        Orthonormal basis of the target subspace (top right singular vectors of ``G_val``).
    singular_values_ : Tensor, shape (k,)
    validation_coords_ : Tensor, shape (N, k)
        ``G_val P = U_k Λ_k^{1/2}``.
    subtasks_ : ndarray of shape (T,)
        Subtask labels.
    targets_ : Tensor, shape (T, k)
        Unit mean validation coordinate of each subtask.
    n_features_in_ : int
        ``D``.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> basis = torch.linalg.qr(torch.randn(50, 3, generator=g, dtype=torch.float64))[0]
    >>> center = torch.tensor([2.0, 1.0, 0.0], dtype=torch.float64)
    >>> g_val = (center + 0.3 * torch.randn(20, 3, generator=g, dtype=torch.float64)) @ basis.T
    >>> pool = torch.cat([g_val[:5], torch.randn(15, 50, generator=g, dtype=torch.float64)])
    >>> sorted(GISTSelector(n_components=3, fraction=0.25).fit(g_val).select(pool).tolist())
    [0, 1, 2, 3, 4]
    """

    def __init__(
        self, n_components: int = 9, fraction: float = 0.05, *, device: str = "cpu", verbose: bool = False
    ) -> None:
        self.n_components = n_components
        self.fraction = fraction
        self.device = device
        self.verbose = verbose

    def fit(self, G_val: Any, subtask_ids: Any = None) -> GISTSelector:  # noqa: N803 (paper notation)
        """Learn the target subspace from validation gradients ``G_val`` ``(N, D)``.

        ``subtask_ids`` ``(N,)`` groups the validation examples into target subtasks (default one).
        """
        k = check_int(self.n_components, "n_components", low=1)
        check_float(self.fraction, "fraction", low=0.0, high=1.0, low_open=True)
        dev = check_device(self.device)
        g = as_tensor(G_val, "G_val", ndim=2).to(dev)
        if g.shape[0] < 1 or g.shape[1] < 1:
            raise ValueError(f"G_val must be (N, D) with N, D >= 1, got {tuple(g.shape)}")
        if subtask_ids is None:
            ids = np.zeros(g.shape[0], dtype=np.int64)
        else:
            ids = check_array(subtask_ids, "subtask_ids", ndim=1, dtype=None)
        if ids.shape[0] != g.shape[0]:
            raise ValueError(
                f"subtask_ids has length {ids.shape[0]}, expected N={g.shape[0]} (one per validation gradient)"
            )
        self.projector_, self.singular_values_ = gradient_subspace(g, k)
        rank = self.projector_.shape[1]
        if rank < k:
            logger.info("G_val has rank %d < n_components=%d; using %d directions", rank, k, rank)
        self.validation_coords_ = g @ self.projector_
        self.subtasks_, inverse = np.unique(ids, return_inverse=True)
        inv = torch.as_tensor(inverse, device=dev)
        means = torch.zeros(len(self.subtasks_), self.projector_.shape[1], dtype=g.dtype, device=dev)
        means.index_add_(0, inv, self.validation_coords_)
        norms = torch.linalg.vector_norm(means, dim=1, keepdim=True)
        if bool((norms == 0).any()):
            raise ValueError("a subtask's mean validation gradient is zero in the subspace; its direction is undefined")
        self.targets_ = means / norms
        self.n_features_in_ = g.shape[1]
        if self.verbose:
            logger.info("GIST subspace: k=%d, singular values %s", rank, self.singular_values_.tolist())
        return self

    def transform(self, G: Any) -> torch.Tensor:  # noqa: N803
        """Subspace coordinates ``ĝ = g P`` ``(n, k)`` of training gradients ``G`` ``(n, D)``."""
        self._check_is_fitted()
        g = as_tensor(G, "G", ndim=2).to(device=self.projector_.device, dtype=self.projector_.dtype)
        if g.shape[1] != self.n_features_in_:
            raise ValueError(f"G has {g.shape[1]} columns, the selector was fitted on D={self.n_features_in_}")
        return g @ self.projector_

    def score_samples(self, G: Any) -> torch.Tensor:  # noqa: N803
        """Alignment ``max_t cos(ĝ_i, target_t)`` in ``[-1, 1]`` of each training gradient: shape ``(n,)``."""
        coords = self.transform(G)
        unit = coords / torch.linalg.vector_norm(coords, dim=1, keepdim=True).clamp_min(torch.finfo(coords.dtype).tiny)
        return (unit @ self.targets_.T).max(1).values

    def select(self, G: Any, fraction: float | None = None) -> torch.Tensor:  # noqa: N803
        """Indices of the ``ceil(fraction * n)`` best-aligned rows of ``G``, best first."""
        scores = self.score_samples(G)
        frac = self.fraction if fraction is None else fraction
        frac = check_float(frac, "fraction", low=0.0, high=1.0, low_open=True)
        n_keep = max(1, int(np.ceil(frac * scores.shape[0] - 1e-9)))
        return torch.argsort(scores, descending=True)[:n_keep]


def _toy(seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((40, 4)))[0]
    return ((rng.standard_normal((30, 4)) + 1.0) @ basis.T,)


register_estimator(
    "GISTSelector",
    EstimatorSpec(
        factory=lambda: GISTSelector(n_components=3, fraction=0.1),
        make_input=_toy,
        output=lambda est, args: est.projector_.abs(),
        bad_inputs={
            "nan": lambda: (np.full((5, 4), np.nan),),
            "1-d": lambda: (np.ones(5),),
            "zero gradients": lambda: (np.zeros((5, 4)),),
            "subtask length": lambda: (np.ones((5, 4)), np.zeros(3)),
        },
        fitted_method="score_samples",
    ),
)
