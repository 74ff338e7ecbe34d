"""The ``d`` smallest eigenpairs of one graph's Laplacian, zero-padded, with a mask (numpy + torch only).

Isolated nodes follow Chung's convention (``L_vv = 0`` for a node of degree 0, so every
connected component, isolated nodes included, contributes one zero eigenvalue); PyG's
``get_laplacian`` sets ``L_vv = 1`` for them instead.
"""
from __future__ import annotations

import numpy as np
import torch

from graphrec.utils.validation import check_choice, check_int

__all__ = ["laplacian_eigenpairs", "NORMALIZATIONS"]

#: ``"sym"``: ``I - D^-1/2 A D^-1/2`` (eigenvalues in [0, 2]); ``None``: ``D - A``.
NORMALIZATIONS = ("sym", None)


def _dense_adjacency(edge_index: torch.Tensor, n: int, edge_weight: torch.Tensor | None) -> np.ndarray:
    """Symmetric float64 adjacency (n, n) without self-loops; duplicate edges add up."""
    if not isinstance(edge_index, torch.Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        shape = tuple(edge_index.shape) if isinstance(edge_index, torch.Tensor) else type(edge_index).__name__
        raise ValueError(f"edge_index must be a (2, n_edges) integer tensor, got {shape}")
    if edge_index.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"edge_index must hold integers, got dtype {edge_index.dtype}")
    ei = edge_index.detach().cpu().numpy().astype(np.int64)
    if ei.size and (ei.min() < 0 or ei.max() >= n):
        raise ValueError(f"edge_index holds node ids outside [0, {n}) (min {ei.min()}, max {ei.max()})")
    if edge_weight is None:
        w = np.ones(ei.shape[1])
    else:
        w = edge_weight.detach().cpu().numpy().astype(np.float64).reshape(-1)
        if w.shape[0] != ei.shape[1]:
            raise ValueError(f"edge_weight has {w.shape[0]} entries for {ei.shape[1]} edges")
        if not np.all(np.isfinite(w)) or (w.size and w.min() < 0):
            raise ValueError("edge_weight must be finite and non-negative")
    a = np.zeros((n, n))
    np.add.at(a, (ei[0], ei[1]), w)
    np.fill_diagonal(a, 0.0)
    return np.maximum(a, a.T)  # an edge listed in one direction only still counts both ways


def laplacian_eigenpairs(
    edge_index: torch.Tensor,
    num_nodes: int,
    d: int,
    *,
    normalization: str | None = "sym",
    edge_weight: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``d`` smallest eigenpairs of one graph's Laplacian, zero-padded to width ``d``.

    Parameters
    ----------
    edge_index : LongTensor, shape (2, n_edges)
        Edges of an undirected graph (each direction listed, or only one: the adjacency is
        symmetrised by taking the larger weight). Self-loops are ignored.
    num_nodes : int
        ``n >= 0``.
    d : int
        Number of eigenpairs kept (``>= 1``); ``d > n`` is padded.
    normalization : {"sym", None}
        ``"sym"``: ``L = I - D^-1/2 A D^-1/2``; ``None``: ``L = D - A``.
    edge_weight : Tensor, shape (n_edges,), optional
    dtype : torch.dtype
        Of the returned eigenpairs (computed in float64 by ``numpy.linalg.eigh``).

    Returns
    -------
    eigvals : Tensor, shape (d,)
        Ascending, zero after the first ``min(n, d)``.
    eigvecs : Tensor, shape (n, d)
        Orthonormal columns, zero columns after the first ``min(n, d)``.
    mask : BoolTensor, shape (d,)
        ``True`` for the ``min(n, d)`` real eigenpairs.

    Examples
    --------
    >>> import torch
    >>> path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])   # 0 - 1 - 2
    >>> lam, V, mask = laplacian_eigenpairs(path, 3, 4, dtype=torch.float64)
    >>> [round(x, 6) + 0.0 for x in lam.tolist()], mask.tolist()
    ([0.0, 1.0, 2.0, 0.0], [True, True, True, False])
    """
    n = check_int(num_nodes, "num_nodes", low=0)
    d = check_int(d, "d", low=1)
    check_choice(normalization, "normalization", NORMALIZATIONS)
    a = _dense_adjacency(edge_index, n, edge_weight)
    deg = a.sum(axis=1)
    if normalization == "sym":
        inv_sqrt = np.zeros(n)
        inv_sqrt[deg > 0] = deg[deg > 0] ** -0.5
        lap = np.diag((deg > 0).astype(np.float64)) - inv_sqrt[:, None] * a * inv_sqrt[None, :]
    else:
        lap = np.diag(deg) - a
    k = min(n, d)
    eigvals = np.zeros(d)
    eigvecs = np.zeros((n, d))
    if n:
        values, vectors = np.linalg.eigh(lap)
        eigvals[:k] = values[:k]
        eigvecs[:, :k] = vectors[:, :k]
    mask = np.arange(d) < k
    return (
        torch.from_numpy(eigvals).to(dtype),
        torch.from_numpy(eigvecs).to(dtype),
        torch.from_numpy(mask),
    )


