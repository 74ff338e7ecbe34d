"""SubspaceAD: training-free few-shot anomaly detection by the residual outside a PCA subspace.

Fit: the mean ``mu`` and covariance of features of normal samples (float64, streamed in batches by
:class:`graphrec.core.StreamingPCA`), then the principal axes ``C`` ``(d, k)`` with ``k`` the smallest
count explaining ``energy`` of the variance (:func:`graphrec.core.energy_rank`) or a fixed
``n_components``. Score of a feature ``f``: the squared reconstruction residual

    s(f) = ||(I - C C^T)(f - mu)||^2.

Patch features ``(n, n_patches, d)`` are scored patch by patch and pooled per sample by ``max``,
``mean`` or ``top`` (mean of the top ``top_frac`` patches, the paper's "mtop1p").

Reference: C. Lendering et al., "SubspaceAD: training-free few-shot anomaly detection via subspace
modelling", CVPR 2026 (arXiv 2602.23013); official code github.com/CLendering/SubspaceAD
(defaults: explained variance 0.99, reconstruction score, top-1% mean aggregation). The backbone
(DINOv2 in the paper) is any feature extractor; pass its features.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.core import StreamingPCA, residual
from graphrec.utils.validation import check_array, check_choice, check_float, check_int

__all__ = ["SubspaceAD"]

_POOLING = ("max", "mean", "top")


class SubspaceAD(GraphrecEstimator):
    """PCA-residual anomaly scorer for feature vectors ``(n, d)`` or patch features ``(n, n_patches, d)``.

    Parameters
    ----------
    energy : float in (0, 1], default=0.99
        Explained-variance fraction that fixes the subspace rank (ignored if ``n_components``).
    n_components : int or None, default=None
        Fixed rank of the normal subspace.
    pooling : {"max", "mean", "top"}, default="top"
        How patch scores become one score per sample.
    top_frac : float in (0, 1], default=0.01
        Fraction of the highest patch scores averaged by ``pooling="top"`` (at least one patch).
    batch_size : int, default=4096
        Rows per streamed covariance update.
    device : str, default="cpu"
    verbose : bool, default=False

    Attributes
    ----------
    mean_ : ndarray (d,)
    components_ : ndarray (d, k)
        Orthonormal principal axes of the normal features.
    explained_variance_ : ndarray (k,)
    n_components_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> normal = rng.standard_normal((50, 2)) @ rng.standard_normal((2, 6))  # a 2-d subspace of R^6
    >>> ad = SubspaceAD(energy=0.99).fit(normal)
    >>> ad.n_components_
    2
    >>> scores = ad.anomaly_score(np.vstack([normal[:1], rng.standard_normal((1, 6))]))
    >>> bool(scores[0] < 1e-12 < scores[1])
    True
    """

    def __init__(
        self,
        energy: float = 0.99,
        *,
        n_components: int | None = None,
        pooling: str = "top",
        top_frac: float = 0.01,
        batch_size: int = 4096,
        device: str = "cpu",
        verbose: bool = False,
    ) -> None:
        self.energy = energy
        self.n_components = n_components
        self.pooling = pooling
        self.top_frac = top_frac
        self.batch_size = batch_size
        self.device = device
        self.verbose = verbose

    @staticmethod
    def _rows(F: Any, name: str, d: int | None = None) -> np.ndarray:
        f = check_array(F, name)
        if f.ndim not in (2, 3):
            raise ValueError(f"{name} must have shape (n, d) or (n, n_patches, d), got {f.shape}")
        if f.shape[-1] == 0 or (f.ndim == 3 and f.shape[1] == 0):
            raise ValueError(f"{name} must have at least one patch and one feature, got shape {f.shape}")
        if d is not None and f.shape[-1] != d:
            raise ValueError(f"{name} must have {d} features in its last dimension like the fitted data, got {f.shape[-1]}")
        return f

    def fit(self, F: Any, y: None = None) -> "SubspaceAD":
        """Model the normal features ``F`` ``(n, d)`` or ``(n, n_patches, d)``; needs at least 2 rows in all."""
        check_float(self.energy, "energy", low=0.0, high=1.0, low_open=True)
        check_choice(self.pooling, "pooling", _POOLING)
        check_float(self.top_frac, "top_frac", low=0.0, high=1.0, low_open=True)
        batch = check_int(self.batch_size, "batch_size", low=1)
        f = self._rows(F, "F")
        rows = f.reshape(-1, f.shape[-1])
        if rows.shape[0] < 2:
            raise ValueError(f"F must hold at least 2 feature vectors to estimate a covariance, got {rows.shape[0]}")
        d = rows.shape[1]
        if self.n_components is not None:
            check_int(self.n_components, "n_components", low=1, high=d)
        pca = StreamingPCA(d, device=self.device)
        for start in range(0, rows.shape[0], batch):
            pca.update(rows[start:start + batch])
        if self.n_components is not None:
            axes, var = pca.components(int(self.n_components))
        else:
            axes, var = pca.components(energy=float(self.energy))
        self.mean_ = pca.mean_.cpu().numpy()
        self.components_ = axes.cpu().numpy()
        self.explained_variance_ = var.cpu().numpy()
        self.n_components_ = int(axes.shape[1])
        return self

    def patch_scores(self, F: Any) -> np.ndarray:
        """Squared residual ``||(I - C C^T)(f - mu)||^2`` of every feature vector; shape ``F.shape[:-1]``."""
        self._check_is_fitted()
        f = self._rows(F, "F", self.mean_.shape[0])
        axes = torch.as_tensor(self.components_, device=self.device)
        centred = torch.as_tensor(f.reshape(-1, f.shape[-1]), device=self.device) - torch.as_tensor(self.mean_, device=self.device)
        return residual(centred, axes).pow(2).sum(-1).cpu().numpy().reshape(f.shape[:-1])

    def anomaly_score(self, F: Any) -> np.ndarray:
        """One score per sample ``(n,)``, larger = more anomalous; patch scores are pooled by ``pooling``."""
        check_choice(self.pooling, "pooling", _POOLING)   # pooling only acts here: it may be set after fit
        check_float(self.top_frac, "top_frac", low=0.0, high=1.0, low_open=True)
        s = self.patch_scores(F)
        if s.ndim == 1:
            return s
        if self.pooling == "max":
            return s.max(1)
        if self.pooling == "mean":
            return s.mean(1)
        k = max(1, math.ceil(self.top_frac * s.shape[1]))
        return -np.sort(-s, axis=1)[:, :k].mean(1)


def _normal_features(seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((40, 3)) @ rng.standard_normal((3, 8)),)


register_estimator(
    "SubspaceAD",
    EstimatorSpec(
        factory=lambda: SubspaceAD(energy=0.95),
        make_input=_normal_features,
        output=lambda est, args: est.anomaly_score(args[0]),
        bad_inputs={
            "nan features": lambda: (np.full((5, 3), np.nan),),
            "one row": lambda: (np.ones((1, 3)),),
            "1-d input": lambda: (np.ones(4),),
            "no features": lambda: (np.ones((4, 0)),),
            "strings": lambda: (np.array([["a", "b"], ["c", "d"]]),),
        },
        fitted_method="anomaly_score",
    ),
)
