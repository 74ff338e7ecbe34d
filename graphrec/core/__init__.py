"""Shared torch subspace primitives."""
from graphrec.core.linalg import randomized_svd
from graphrec.core.scatter import scatter
from graphrec.core.sparse import SparseOperator, normalized_adjacency, to_torch_sparse

__all__ = ["SparseOperator", "normalized_adjacency", "randomized_svd", "scatter", "to_torch_sparse"]
