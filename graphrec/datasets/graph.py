"""``AttributedGraph``: an undirected graph with node attributes and (optional) labels."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from graphrec.utils.validation import check_adjacency, check_features, check_labels

if TYPE_CHECKING:
    import torch_geometric


@dataclass
class AttributedGraph:
    """An undirected attributed graph.

    Attributes
    ----------
    adjacency : scipy.sparse.csr_matrix, shape (n_nodes, n_nodes)
        Symmetric, non-negative, sorted CSR (float64). Self-loops are kept as stored.
    features : scipy.sparse.csr_matrix or ndarray, shape (n_nodes, n_features)
        Node attributes; sparse input stays sparse.
    labels : ndarray of int64, shape (n_nodes,), optional
        Ground-truth classes, ``-1`` for unlabelled nodes.
    name : str
        Dataset name, for reports.
    """

    adjacency: sp.csr_matrix
    features: sp.csr_matrix | np.ndarray
    labels: np.ndarray | None = None
    name: str = "graph"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.adjacency = check_adjacency(self.adjacency, "adjacency")
        self.features = check_features(self.features, self.adjacency.shape[0], "features")
        if self.labels is not None:
            self.labels = check_labels(self.labels, self.adjacency.shape[0], "labels")

    @property
    def n_nodes(self) -> int:
        return self.adjacency.shape[0]

    @property
    def n_features(self) -> int:
        return self.features.shape[1]

    @property
    def n_edges(self) -> int:
        """Undirected edges, self-loops not counted."""
        a = self.adjacency
        return int((a.nnz - a.diagonal().astype(bool).sum()) // 2)

    @property
    def n_self_loops(self) -> int:
        return int(self.adjacency.diagonal().astype(bool).sum())

    @property
    def n_classes(self) -> int:
        if self.labels is None:
            return 0
        return int(np.unique(self.labels[self.labels >= 0]).size)

    def to_pyg(self) -> "torch_geometric.data.Data":
        """A ``torch_geometric.data.Data`` with ``x`` (dense float32), ``edge_index``, ``edge_weight``, ``y``."""
        import torch
        from torch_geometric.data import Data

        coo = self.adjacency.tocoo()
        edge_index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
        x = self.features.toarray() if sp.issparse(self.features) else self.features
        data = Data(
            x=torch.from_numpy(np.asarray(x, dtype=np.float32)),
            edge_index=edge_index,
            edge_weight=torch.from_numpy(coo.data.astype(np.float32)),
            num_nodes=self.n_nodes,
        )
        if self.labels is not None:
            data.y = torch.from_numpy(self.labels)
        return data

    @classmethod
    def from_pyg(cls, data: "torch_geometric.data.Data", name: str = "graph") -> "AttributedGraph":
        """Build from a PyG ``Data`` (``x``, ``edge_index``, optional ``edge_weight`` and ``y``).

        A directed ``edge_index`` is symmetrised by taking the maximum weight of both directions.
        ``edge_attr`` (edge features, e.g. bond types) is not an edge weight and is not used.
        """
        if getattr(data, "x", None) is None:
            raise ValueError("data.x is missing; an AttributedGraph needs node features")
        n = int(data.num_nodes)
        ei = data.edge_index.detach().cpu().numpy()
        if ei.ndim != 2 or ei.shape[0] != 2:
            raise ValueError(f"data.edge_index must have shape (2, n_edges), got {ei.shape}")
        if not np.issubdtype(ei.dtype, np.integer):  # float ids would be truncated to other nodes
            raise TypeError(f"data.edge_index must hold integer node ids, got dtype {ei.dtype}")
        if ei.size and (ei.min() < 0 or ei.max() >= n):
            raise ValueError(f"data.edge_index holds node ids outside [0, {n})")
        w = getattr(data, "edge_weight", None)
        w = np.ones(ei.shape[1]) if w is None else w.detach().cpu().numpy().astype(np.float64).reshape(-1)
        if w.shape[0] != ei.shape[1]:
            raise ValueError(
                f"data.edge_weight has {w.shape[0]} entries for the {ei.shape[1]} edges of data.edge_index"
            )
        a = sp.csr_matrix((w, (ei[0], ei[1])), shape=(n, n))
        a = a.maximum(a.T).tocsr()
        y = getattr(data, "y", None)
        y = None if y is None else y.detach().cpu().numpy().reshape(-1)
        return cls(a, data.x.detach().cpu().numpy(), y, name=name)

    def __repr__(self) -> str:
        kind = "sparse" if sp.issparse(self.features) else "dense"
        return (
            f"AttributedGraph(name={self.name!r}, n_nodes={self.n_nodes}, n_edges={self.n_edges}, "
            f"n_features={self.n_features} ({kind}), n_classes={self.n_classes})"
        )


def as_attributed_graph(graph: Any) -> AttributedGraph:
    """Coerce the inputs estimators accept: ``AttributedGraph``, PyG ``Data`` or ``(adjacency, features)``."""
    if isinstance(graph, AttributedGraph):
        return graph
    if isinstance(graph, tuple):
        if len(graph) != 2:
            raise ValueError(f"graph tuple must be (adjacency, features), got {len(graph)} items")
        return AttributedGraph(graph[0], graph[1])
    if hasattr(graph, "edge_index"):
        return AttributedGraph.from_pyg(graph)
    raise TypeError(
        f"graph must be an AttributedGraph, a torch_geometric Data or an (adjacency, features) tuple, "
        f"got {type(graph).__name__}"
    )
