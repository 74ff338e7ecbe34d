"""IsoCLIP: decompose a two-tower model's projectors through their inter-modal operator and drop
the most anisotropic and the least aligned directions, for better intra-modal retrieval.

Projectors are stored as ``torch.nn.Linear`` weights: ``w_a`` ``(r, d_a)`` maps pre-projection
features ``h_a`` ``(d_a,)`` of modality a (images) to the shared space by ``z = w_a h_a`` (as
rows: ``h_a @ w_a.T``); likewise ``w_b`` ``(r, d_b)`` for modality b (text). (OpenAI CLIP stores
``visual.proj`` as ``(d_a, r)`` and applies ``h @ proj``: pass ``proj.T``.)

The inter-modal operator ``Psi = w_a^T w_b`` ``(d_a, d_b)`` has the SVD ``U S V^T``. Keeping the
singular directions ``k_top <= i < rank - k_bottom`` gives the new projectors
``w_a' = w_a U_k U_k^T`` and ``w_b' = w_b V_k V_k^T``; each is used for its own modality
(image-to-image, text-to-text), never across modalities. Training-free, no added latency.

Reference: S. Magistri et al., "IsoCLIP: decomposing CLIP projectors for efficient intra-modal
alignment", CVPR 2026, arXiv 2603.19862 (code: github.com/simomagi/IsoCLIP).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from graphrec.core._checks import as_tensor
from graphrec.utils.validation import check_int, check_labels

__all__ = ["inter_modal_operator", "iso_projectors", "map_at_r", "spectral_band_projectors"]


def _projectors(w_a: Any, w_b: Any) -> tuple[torch.Tensor, torch.Tensor]:
    w_a = as_tensor(w_a, "w_a", ndim=2)
    w_b = as_tensor(w_b, "w_b", ndim=2).to(w_a)
    if w_a.shape[0] != w_b.shape[0]:
        raise ValueError(
            f"w_a {tuple(w_a.shape)} and w_b {tuple(w_b.shape)} must map into the same shared space: "
            "both (r, d_in) with the same r (nn.Linear weight layout)"
        )
    return w_a, w_b


def inter_modal_operator(w_a: Any, w_b: Any) -> torch.Tensor:
    """``Psi = w_a^T w_b`` ``(d_a, d_b)``: ``h_a Psi h_b^T`` is the shared-space inner product of two features."""
    w_a, w_b = _projectors(w_a, w_b)
    return w_a.T @ w_b


def spectral_band_projectors(psi: Any, k_top: int = 0, k_bottom: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Orthogonal projectors onto the kept band of singular directions of ``psi`` ``(d_a, d_b)``.

    Returns
    -------
    p_a : Tensor, shape (d_a, d_a)
        ``U_k U_k^T`` over singular indices ``k_top <= i < m - k_bottom``, ``m = min(d_a, d_b)``.
    p_b : Tensor, shape (d_b, d_b)
        ``V_k V_k^T`` over the same indices.
    s : Tensor, shape (m,)
        All singular values of ``psi`` (descending), to choose the band from.

    >>> p_a, p_b, s = spectral_band_projectors(torch.diag(torch.tensor([3.0, 2.0, 1.0])), 1, 1)
    >>> p_a.diagonal().tolist(), s.tolist()  # only the middle direction survives
    ([0.0, 1.0, 0.0], [3.0, 2.0, 1.0])
    """
    psi = as_tensor(psi, "psi", ndim=2)
    m = min(psi.shape)
    k_top = check_int(k_top, "k_top", low=0)
    k_bottom = check_int(k_bottom, "k_bottom", low=0)
    if k_top + k_bottom >= m:
        raise ValueError(f"k_top + k_bottom = {k_top + k_bottom} must leave at least one of the {m} singular directions")
    u, s, vt = torch.linalg.svd(psi, full_matrices=False)
    u_k, v_k = u[:, k_top : m - k_bottom], vt[k_top : m - k_bottom].T
    return u_k @ u_k.T, v_k @ v_k.T, s


def iso_projectors(w_a: Any, w_b: Any, k_top: int, k_bottom: int) -> tuple[torch.Tensor, torch.Tensor]:
    """IsoCLIP projectors ``w_a' = w_a U_k U_k^T`` ``(r, d_a)`` and ``w_b' = w_b V_k V_k^T`` ``(r, d_b)``.

    ``k_top`` drops the most anisotropic (largest) and ``k_bottom`` the least aligned (smallest)
    singular directions of ``Psi = w_a^T w_b`` (the paper's ViT-B/16 default: 200 and 50 of 512).
    With ``k_top = k_bottom = 0`` and a full-rank square ``Psi`` the projectors are unchanged.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> w_a, w_b = torch.randn(6, 6, generator=g), torch.randn(6, 6, generator=g)
    >>> new_a, _ = iso_projectors(w_a, w_b, 0, 0)
    >>> bool(torch.allclose(new_a, w_a, atol=1e-5))
    True
    """
    w_a, w_b = _projectors(w_a, w_b)
    p_a, p_b, _ = spectral_band_projectors(w_a.T @ w_b, k_top, k_bottom)
    return w_a @ p_a, w_b @ p_b


def map_at_r(features: Any, labels: Any) -> float:
    """Intra-modal retrieval mAP@R: each item queries all others by cosine similarity.

    For a query of class ``c`` with ``R`` other items of class ``c``, the average precision over
    its top ``R`` results is ``(1/R) sum_{i <= R} P@i * rel_i``; queries whose class has no other
    item are skipped. Ties are broken by item order.

    Parameters
    ----------
    features : array, shape (n, r)
    labels : int array, shape (n,)

    Examples
    --------
    >>> f = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.8, 0.2]])
    >>> map_at_r(f, [0, 0, 1, 1])  # item 3's nearest neighbour is item 1 (class 0): AP 0; the others: AP 1
    0.75
    """
    f = as_tensor(features, "features", ndim=2)
    y = check_labels(labels, f.shape[0], "labels")
    f = f / torch.linalg.vector_norm(f, dim=1, keepdim=True).clamp_min(torch.finfo(f.dtype).tiny)
    sim = f @ f.T
    sim.fill_diagonal_(-float("inf"))
    order = torch.argsort(sim, dim=1, descending=True, stable=True)[:, :-1].cpu().numpy()
    ap = []
    for i in range(f.shape[0]):
        r = int((y == y[i]).sum()) - 1
        if r == 0:
            continue
        rel = (y[order[i, :r]] == y[i]).astype(np.float64)
        ap.append(float((np.cumsum(rel) / np.arange(1, r + 1) * rel).sum() / r))
    if not ap:
        raise ValueError("no class has two or more items; mAP@R is undefined")
    return float(np.mean(ap))
