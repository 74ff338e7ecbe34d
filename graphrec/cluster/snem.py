"""SNEM rounding: discrete cluster labels from a spectral embedding without k-means.

Starting from ``labels = argmax_j E_ij``, the scaled indicator matrix ``Y`` (column ``j`` is the
indicator of cluster ``j`` divided by ``sqrt(|cluster j|)``, scale 1 for an empty cluster) is
projected onto the column space of ``E`` and re-discretised:

    labels <- argmax_j (E E^T Y)_ij,

until the labels stop changing or ``n_iter`` rounds are done. ``E E^T Y`` is formed as
``E (E^T Y)`` in O(n k^2). Empty clusters can occur and persist, as in the reference code.

Reference: X. Lin, R. Yang, H. Zheng, X. Ke, "Spectral Subspace Clustering for Attributed Graphs",
KDD 2025 (arXiv 2411.11074); official code HKBU-LAGAS/S2CAG, function ``SNEM_rounding``.
"""
from __future__ import annotations

import torch


def snem_rounding(embedding: torch.Tensor, n_iter: int = 100) -> torch.Tensor:
    """Cluster labels of the ``n`` rows of ``embedding`` (``n x k``), one of ``k`` clusters each.

    Parameters
    ----------
    embedding : Tensor, shape (n, k)
        Orthonormal (or any) basis ``E`` of the spectral subspace.
    n_iter : int, default=100
        Maximum number of project-and-discretise rounds; stops early at a fixed point.

    Returns
    -------
    labels : Tensor of int64, shape (n,)
    """
    if embedding.ndim != 2 or embedding.shape[1] < 1:
        raise ValueError(f"embedding must have shape (n, k) with k >= 1, got {tuple(embedding.shape)}")
    n, k = embedding.shape
    labels = embedding.argmax(dim=1)
    rows = torch.arange(n, device=embedding.device)
    for _ in range(n_iter):
        sizes = torch.bincount(labels, minlength=k).to(embedding.dtype)
        scale = torch.where(sizes > 0, sizes.rsqrt(), torch.ones_like(sizes))
        y = torch.zeros_like(embedding)
        y[rows, labels] = scale[labels]
        new = (embedding @ (embedding.T @ y)).argmax(dim=1)
        if torch.equal(new, labels):
            break
        labels = new
    return labels
