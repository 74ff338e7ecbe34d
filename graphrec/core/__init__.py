"""Shared torch subspace primitives."""
from graphrec.core.linalg import randomized_svd
from graphrec.core.sparse import normalized_adjacency, to_torch_sparse

__all__ = ["normalized_adjacency", "randomized_svd", "to_torch_sparse"]
