"""Sparse-matrix helpers shared by the graph methods."""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch


def to_torch_sparse(a: sp.spmatrix, device: Any = "cpu", dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A coalesced ``torch.sparse_coo_tensor`` holding the scipy matrix ``a`` (shape kept)."""
    coo = sp.coo_matrix(a)
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data).to(dtype)
    return torch.sparse_coo_tensor(indices, values, coo.shape, device=device, check_invariants=False).coalesce()


def normalized_adjacency(adjacency: sp.spmatrix, *, self_loops: bool = True) -> sp.csr_matrix:
    """``D^{-1/2} (A + I) D^{-1/2}`` (``I`` only with ``self_loops``); zero-degree rows stay zero.

    Reference: T. Kipf, M. Welling, "Semi-supervised classification with graph convolutional
    networks", ICLR 2017, eq. (2).
    """
    a = sp.csr_matrix(adjacency, dtype=np.float64)
    if self_loops:
        a = a + sp.identity(a.shape[0], format="csr")
    deg = np.asarray(a.sum(axis=1)).ravel()
    with np.errstate(divide="ignore"):
        inv_sqrt = np.where(deg > 0, deg ** -0.5, 0.0)
    d = sp.diags(inv_sqrt)
    return (d @ a @ d).tocsr()
