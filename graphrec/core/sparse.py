"""Sparse-matrix helpers shared by the graph methods."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch


_csr_notice_given = False


def sparse_csr_tensor(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor,
                      shape: tuple[int, int]) -> torch.Tensor:
    """``torch.sparse_csr_tensor`` without torch's "sparse CSR support is in beta" notice.

    The layout is an internal choice of the callers, not something their users should be warned about.
    torch gives that notice once per process, at the first CSR tensor, so only the first call here
    silences it; later calls go straight to torch.
    """
    global _csr_notice_given
    if _csr_notice_given:
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        out = torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)
    _csr_notice_given = True
    return out


def to_torch_sparse(a: sp.spmatrix, device: Any = "cpu", dtype: torch.dtype | None = torch.float64,
                    layout: torch.layout = torch.sparse_coo) -> torch.Tensor:
    """The scipy matrix ``a`` as a torch sparse tensor (shape kept): coalesced COO, or CSR with
    ``layout=torch.sparse_csr`` (duplicates summed, columns sorted).

    ``dtype=None`` keeps the dtype of ``a``'s values.
    """
    if layout == torch.sparse_csr:
        csr = sp.csr_matrix(a, copy=True)
        csr.sum_duplicates()
        values = torch.from_numpy(csr.data)
        values = values if dtype is None else values.to(dtype)
        crow, col = (torch.from_numpy(v.astype(np.int64)) for v in (csr.indptr, csr.indices))
        return sparse_csr_tensor(crow, col, values, csr.shape).to(device)
    if layout != torch.sparse_coo:
        raise ValueError(f"layout must be torch.sparse_coo or torch.sparse_csr, got {layout}")
    coo = sp.coo_matrix(a)
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data)
    if dtype is not None:
        values = values.to(dtype)
    return torch.sparse_coo_tensor(indices, values, coo.shape, device=device, check_invariants=False).coalesce()


class SparseOperator:
    """A scipy sparse matrix applied to torch tensors: the threaded CSR kernel
    (:func:`graphrec.kernels.csr_matmul`) on CPU, a torch sparse tensor on other devices.

    ``op @ h`` with ``h`` of shape (n, r) on ``device`` returns ``a @ h`` of shape (m, r).
    """

    def __init__(self, a: sp.spmatrix, device: Any = "cpu") -> None:
        self.csr = sp.csr_matrix(a)
        self.device = torch.device(device)
        if self.device.type != "cpu":
            self.t = to_torch_sparse(self.csr, self.device, dtype=None)

    @property
    def shape(self) -> tuple[int, int]:
        return self.csr.shape

    def __matmul__(self, h: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cpu":
            from graphrec.kernels import csr_matmul

            return torch.from_numpy(csr_matmul(self.csr, h.numpy()))
        return self.t @ h

    def horner(self, h: torch.Tensor, alpha: float, steps: int) -> torch.Tensor:
        """``sum_{t=0..steps} alpha^t a^t h`` by Horner's rule ``r <- alpha a r + h`` (``a`` square).

        On CPU one fused compiled pass per step (:func:`graphrec.kernels.csr_horner`).
        """
        if self.device.type == "cpu":
            from graphrec.kernels import csr_horner

            return torch.from_numpy(csr_horner(self.csr, h.numpy(), alpha, steps))
        if steps == 0:  # a new tensor, as on CPU: callers update the result in place
            return h.clone()
        r = h
        for _ in range(steps):
            r = (self.t @ r).mul_(alpha).add_(h)  # a fresh tensor each step: update it in place
        return r


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
