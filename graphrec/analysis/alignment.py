"""Alignment of two embedding spaces from paired anchors: CCA subspace plus an affine map, the
orthogonal Procrustes rotation, and the matching / retrieval accuracy of paired queries.

Paired features ``x`` ``(n, p)`` (one encoder) and ``y`` ``(n, q)`` (another) describe the same
items row by row. Full-space maps are swamped by each encoder's private directions; projecting
both onto their top ``k`` canonical directions first keeps only the shared latent space, where a
least-squares affine map ``T(x) = x R + b`` aligns them.

Reference: K. Hadgi, L. Moschella, A. Santilli, D. Gomez, Q. Huang, E. Rodolà, S. Melzi,
M. Ovsjanikov, "Escaping Plato's Cave: towards the alignment of 3D and text latent spaces",
CVPR 2025, arXiv 2503.05283.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.core import cca, procrustes
from graphrec.core._checks import as_tensor
from graphrec.utils.validation import check_device, check_float, check_int

__all__ = ["CCAAligner", "match_accuracy", "procrustes_align", "retrieval_topk"]


def _similarity(similarity: Any) -> torch.Tensor:
    s = as_tensor(similarity, "similarity", ndim=2)
    if s.shape[0] != s.shape[1]:
        raise ValueError(f"similarity must be square (query i pairs with item i), got shape {tuple(s.shape)}")
    return s


def match_accuracy(similarity: Any) -> float:
    """Fraction of queries the maximum-similarity one-to-one matching pairs with their own item.

    ``similarity`` ``(n, n)``: row ``i`` is query ``i`` of the first space, column ``j`` item ``j``
    of the second, and the true pairs are on the diagonal.

    >>> match_accuracy([[1.0, 0.9], [0.95, 0.2]])  # Hungarian pairs 0-1 and 1-0
    0.0
    """
    s = _similarity(similarity).detach().cpu().numpy()
    rows, cols = linear_sum_assignment(s, maximize=True)
    return float(np.mean(cols[np.argsort(rows)] == np.arange(s.shape[0])))


def retrieval_topk(similarity: Any, k: int = 1) -> float:
    """Fraction of queries whose own item is among their ``k`` most similar items (ties count against).

    >>> retrieval_topk([[1.0, 0.9], [0.95, 0.2]], k=1)
    0.5
    """
    s = _similarity(similarity)
    k = check_int(k, "k", low=1, high=s.shape[1])
    own = s.diagonal().unsqueeze(1)
    rank = (s > own).sum(1) + ((s == own).sum(1) - 1)  # items strictly better, plus other ties
    return float((rank < k).double().mean())


def _paired(x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
    x = as_tensor(x, "x", ndim=2)
    y = as_tensor(y, "y", ndim=2).to(device=x.device, dtype=x.dtype)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same number of rows (paired items), got {x.shape[0]} and {y.shape[0]}")
    return x, y


def procrustes_align(x: Any, y: Any, *, center: bool = True) -> torch.Tensor:
    """Rotation ``R`` ``(p, p)`` minimising ``||x_c R - y_c||_F`` for paired ``x``, ``y`` ``(n, p)``.

    ``x_c``, ``y_c`` are the centred data when ``center`` (the default). Uses
    :func:`graphrec.core.procrustes`.
    """
    x, y = _paired(x, y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"Procrustes needs spaces of the same dimension, got {x.shape[1]} and {y.shape[1]}")
    if center:
        x, y = x - x.mean(0), y - y.mean(0)
    return procrustes(x, y)


def _cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    tiny = torch.finfo(a.dtype).tiny
    a = a / torch.linalg.vector_norm(a, dim=1, keepdim=True).clamp_min(tiny)
    b = b / torch.linalg.vector_norm(b, dim=1, keepdim=True).clamp_min(tiny)
    return a @ b.T


class CCAAligner(GraphrecEstimator):
    """Align two embedding spaces in their shared CCA subspace with an affine map (Plato's cave).

    Parameters
    ----------
    n_components : int or None
        Number ``k`` of canonical directions kept; ``None`` aligns the full centred spaces
        (the no-subspace baseline).
    reg : float
        Ridge added to both covariances in CCA.
    device : str
        Where the tensors live (``"cpu"``, ``"cuda"``, ...).

    Attributes
    ----------
    mean_x_, mean_y_ : Tensor, shapes (p,), (q,)
    x_weights_, y_weights_ : Tensor, shapes (p, k), (q, k)
        Canonical directions (identity in the full-space mode).
    correlations_ : Tensor, shape (k,)
        Canonical correlations on the anchors (``None`` in the full-space mode).
    rotation_, bias_ : Tensor, shapes (k_x, k_y), (k_y,)
        The least-squares affine map ``T(x_r) = x_r R + b`` from projected x to projected y.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> z = torch.randn(300, 3, generator=g, dtype=torch.float64)
    >>> x = torch.cat([z, 5 * torch.randn(300, 4, generator=g, dtype=torch.float64)], 1)
    >>> y = torch.cat([z @ torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))[0],
    ...                5 * torch.randn(300, 2, generator=g, dtype=torch.float64)], 1)
    >>> aligner = CCAAligner(n_components=3).fit(x[:200], y[:200])
    >>> aligner.score(x[200:], y[200:])  # matching accuracy of the held-out pairs
    1.0
    """

    def __init__(self, n_components: int | None = 8, *, reg: float = 0.0, device: str = "cpu") -> None:
        self.n_components = n_components
        self.reg = reg
        self.device = device

    def fit(self, x: Any, y: Any) -> "CCAAligner":
        """Fit the subspace and the affine map on anchor pairs ``x`` ``(n, p)``, ``y`` ``(n, q)``."""
        dev = check_device(self.device)
        reg = check_float(self.reg, "reg", low=0.0)
        x, y = _paired(x, y)
        x, y = x.to(dev), y.to(dev)
        if x.shape[0] < 2:
            raise ValueError(f"need at least 2 anchor pairs, got {x.shape[0]}")
        self.mean_x_, self.mean_y_ = x.mean(0), y.mean(0)
        if self.n_components is None:
            self.x_weights_ = torch.eye(x.shape[1], dtype=x.dtype, device=dev)
            self.y_weights_ = torch.eye(y.shape[1], dtype=y.dtype, device=dev)
            self.correlations_ = None
        else:
            k = check_int(self.n_components, "n_components", low=1, high=min(x.shape[1], y.shape[1]))
            self.correlations_, self.x_weights_, self.y_weights_ = cca(x, y, k, reg=reg)
        xr = (x - self.mean_x_) @ self.x_weights_
        yr = (y - self.mean_y_) @ self.y_weights_
        design = torch.cat([xr, torch.ones_like(xr[:, :1])], 1)
        coef = torch.linalg.lstsq(design.cpu(), yr.cpu(), driver="gelsd").solution.to(dev)
        self.rotation_, self.bias_ = coef[:-1], coef[-1]
        return self

    def _check_side(self, value: Any, name: str, mean: torch.Tensor) -> torch.Tensor:
        value = as_tensor(value, name, ndim=2).to(device=mean.device, dtype=mean.dtype)
        if value.shape[1] != mean.shape[0]:
            raise ValueError(f"{name} has {value.shape[1]} features, the aligner was fitted with {mean.shape[0]}")
        return value

    def transform(self, x: Any, y: Any | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``T((x - mean_x) W_x)`` ``(n, k)``, and with ``y`` also ``(y - mean_y) W_y``: both in the y-subspace."""
        self._check_is_fitted()
        xt = (self._check_side(x, "x", self.mean_x_) - self.mean_x_) @ self.x_weights_ @ self.rotation_ + self.bias_
        if y is None:
            return xt
        return xt, (self._check_side(y, "y", self.mean_y_) - self.mean_y_) @ self.y_weights_

    def similarity(self, x: Any, y: Any) -> torch.Tensor:
        """Cosine similarities ``(n_x, n_y)`` of the mapped queries ``x`` and the projected items ``y``."""
        xt, yt = self.transform(x, y)
        return _cosine_matrix(xt, yt)

    def score(self, x: Any, y: Any) -> float:
        """Hungarian matching accuracy of the query pairs ``(x[i], y[i])`` (see :func:`match_accuracy`)."""
        return match_accuracy(self.similarity(x, y))


def _planted_pairs(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((60, 2))
    return np.hstack([z, rng.standard_normal((60, 3))]), np.hstack([z @ [[0.0, 1], [-1, 0]], rng.standard_normal((60, 2))])


register_estimator(
    "graphrec.analysis.CCAAligner",
    EstimatorSpec(
        factory=lambda: CCAAligner(n_components=2),
        make_input=_planted_pairs,
        output=lambda est, args: est.transform(*args)[0],
        bad_inputs={
            "row_mismatch": lambda: (np.zeros((5, 3)), np.zeros((4, 3))),
            "nan": lambda: (np.full((5, 3), np.nan), np.zeros((5, 3))),
            "too_many_components": lambda: _planted_pairs(0)[:1] + (np.random.default_rng(0).normal(size=(60, 1)),),
        },
        fitted_method="transform",
    ),
)
