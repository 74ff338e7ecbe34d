"""Laplacian eigenpairs per graph, padded to a fixed width with a mask: SPE's pre-processing.

:func:`laplacian_eigenpairs` works on one graph given as ``edge_index``; the PyG transform
:class:`AddSPEEigenpairs` stores its result on a ``Data`` object so that PyG's batching stacks
it: ``eigvals`` and ``eig_mask`` are ``(1, d)`` rows (``(B, d)`` in a batch) and ``eigvecs``
is ``(n, d)`` (``(N_sum, d)`` in a batch).

The ``d`` smallest eigenpairs are kept, the trivial ``lambda_1 = 0`` included, as in the
official code. When ``d > n`` only ``n`` exist: the remaining eigenvalues are 0 and flagged
``False`` in ``eig_mask``, and the matching eigenvector columns are 0, so they add nothing to
``V diag(phi(lambda)) V^T``.

Isolated nodes follow Chung's convention (``L_vv = 0`` for a node of degree 0, so every
connected component, isolated nodes included, contributes one zero eigenvalue); PyG's
``get_laplacian`` sets ``L_vv = 1`` for them instead. No random sign flips are applied: SPE is
invariant to the eigenvector basis by construction.

Reference: Huang et al., "On the Stability of Expressive Positional Encodings for Graphs"
(SPE), ICLR 2024, arXiv 2310.02579.
"""
from __future__ import annotations

import torch
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from graphrec.pe.eigen import NORMALIZATIONS, laplacian_eigenpairs
from graphrec.utils.validation import check_choice, check_int

__all__ = ["AddSPEEigenpairs", "laplacian_eigenpairs", "NORMALIZATIONS"]


class AddSPEEigenpairs(BaseTransform):
    """PyG transform storing the ``d`` smallest Laplacian eigenpairs of each graph (padded, masked).

    Adds ``eigvals`` (1, d), ``eigvecs`` (n, d) and ``eig_mask`` (1, d) to the ``Data`` object;
    after batching they are ``(B, d)``, ``(N_sum, d)`` and ``(B, d)``, the inputs of
    :class:`graphrec.pe.SPE`. Use it as a ``pre_transform`` so that the eigendecomposition runs
    once per graph.

    Parameters
    ----------
    d : int
        Eigenpairs per graph (37 covers every ZINC graph: the official ZINC setting).
    normalization : {"sym", None}
        Laplacian normalisation: ``"sym"`` (SPE's choice) or ``None`` (combinatorial ``D - A``).
    dtype : torch.dtype
        Storage dtype (float32; float64 for exactness tests).

    Examples
    --------
    >>> import torch
    >>> from torch_geometric.data import Data
    >>> triangle = Data(edge_index=torch.tensor([[0, 1, 1, 2, 2, 0], [1, 0, 2, 1, 0, 2]]), num_nodes=3)
    >>> out = AddSPEEigenpairs(d=4)(triangle)
    >>> out.eigvals.shape, out.eigvecs.shape, out.eig_mask.tolist()
    (torch.Size([1, 4]), torch.Size([3, 4]), [[True, True, True, False]])
    """

    def __init__(self, d: int = 37, normalization: str | None = "sym", dtype: torch.dtype = torch.float32) -> None:
        self.d = check_int(d, "d", low=1)
        self.normalization = check_choice(normalization, "normalization", NORMALIZATIONS)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        self.dtype = dtype

    def forward(self, data: Data) -> Data:
        n = data.num_nodes
        if n is None:
            raise ValueError("data.num_nodes is unknown; set data.num_nodes (or data.x) before computing eigenpairs")
        eigvals, eigvecs, mask = laplacian_eigenpairs(
            data.edge_index, int(n), self.d, normalization=self.normalization,
            edge_weight=getattr(data, "edge_weight", None), dtype=self.dtype,
        )
        data.eigvals = eigvals.unsqueeze(0)
        data.eigvecs = eigvecs
        data.eig_mask = mask.unsqueeze(0)
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}(d={self.d}, normalization={self.normalization!r})"
