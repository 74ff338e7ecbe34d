"""GINE graph (or node) predictor taking a positional encoding: SPE, Laplacian eigenvectors, RWSE or none.

The base network follows the official SPE code's ZINC model: node embedding plus a linear map
of the PE, then GINE layers ``h <- h + MLP_pe(PE)``, ``h <- MLP((1 + eps) h + sum_{u -> v}
ReLU(h_u + E(e_uv)))`` with residual connections, mean pooling and an MLP head.

GINE: Hu et al., "Strategies for Pre-training Graph Neural Networks", ICLR 2020. SPE: Huang et
al., ICLR 2024. LapPE / RWSE: Dwivedi et al., "Graph Neural Networks with Learnable Structural
and Positional Representations", ICLR 2022 (LapPE with random sign flips in training; RWSE the
diagonal of the random-walk powers).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from graphrec.pe.spe import MLP, SPE
from graphrec.utils.validation import check_choice, check_int

if TYPE_CHECKING:
    import torch_geometric

__all__ = ["GINERegressor", "PE_KINDS", "pe_transform"]

#: ``None`` means no positional encoding.
PE_KINDS = ("spe", "lappe", "rwse", None)
_PE_ATTR = {"lappe": "laplacian_eigenvector_pe", "rwse": "random_walk_pe"}


def pe_transform(kind: str | None, dims: int, *, normalization: str | None = "sym") -> Callable[[Any], Any] | None:
    """The PyG pre-transform that stores what ``GINERegressor(pe=kind)`` reads, or ``None``.

    ``"spe"``: :class:`graphrec.pe.AddSPEEigenpairs` (``dims`` eigenpairs); ``"lappe"``: PyG's
    ``AddLaplacianEigenvectorPE(dims)`` (``dims`` non-trivial eigenvectors; needs ``dims < n``
    for every graph); ``"rwse"``: PyG's ``AddRandomWalkPE(walk_length=dims)``.
    """
    check_choice(kind, "pe", PE_KINDS)
    if kind is None:
        return None
    if kind == "spe":
        from graphrec.pe.transform import AddSPEEigenpairs

        return AddSPEEigenpairs(dims, normalization=normalization)
    import torch_geometric.transforms as T

    if kind == "lappe":
        return T.AddLaplacianEigenvectorPE(dims, attr_name=_PE_ATTR["lappe"], is_undirected=True)
    return T.AddRandomWalkPE(walk_length=dims, attr_name=_PE_ATTR["rwse"])


class GINELayer(nn.Module):
    """``MLP((1 + eps) h_v + sum_{u -> v} ReLU(h_u + E(e_uv)))`` (no edge term without edge types)."""

    def __init__(self, dims: int, n_edge_types: int | None, mlp_layers: int):
        super().__init__()
        self.edge_embedding = None if n_edge_types is None else nn.Embedding(n_edge_types + 1, dims)
        self.eps = nn.Parameter(torch.randn(1))
        self.mlp = MLP(dims, dims, dims, mlp_layers)

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor | None) -> torch.Tensor:
        msg = h[edge_index[0]]
        if self.edge_embedding is not None:
            msg = msg + self.edge_embedding(edge_attr.reshape(-1))
        agg = torch.zeros_like(h).index_add_(0, edge_index[1], torch.relu(msg))
        return self.mlp((1 + self.eps) * h + agg)


class GINERegressor(nn.Module):
    """GINE on a PyG batch with an optional positional encoding.

    Parameters
    ----------
    pe : {"spe", "lappe", "rwse", None}
        Which PE to use; the batch must carry what :func:`pe_transform` stores for it.
    spe : SPE, optional
        The SPE module (required for ``pe="spe"``); its ``out_dims`` is the PE width.
    pe_dims : int
        PE width for ``"lappe"`` / ``"rwse"`` (the transform's ``dims``).
    n_node_types : int, optional
        Categorical node features (``x`` of shape (N,) or (N, 1) holding type ids, embedded).
    node_feature_dims : int, optional
        Continuous node features (``x`` of shape (N, node_feature_dims), linearly mapped).
        Exactly one of ``n_node_types`` / ``node_feature_dims`` is given.
    n_edge_types : int, optional
        Edge types ``1..n_edge_types`` in ``edge_attr`` (0 is allowed too); ``None``: no edge features.
    hidden_dims, n_layers, mlp_layers : int
        Width, GINE layers, linear layers per MLP (official ZINC: 128, 4, 3).
    pe_in_every_layer : bool
        Add ``MLP_pe(PE)`` before every GINE layer, as the official code does (besides the input).
    pooling : {"mean", "add", None}
        Graph readout; ``None`` predicts per node (node classification / regression).
    out_dims : int
        Outputs per graph (or node).
    """

    def __init__(
        self,
        pe: str | None = "spe",
        *,
        spe: SPE | None = None,
        pe_dims: int = 8,
        n_node_types: int | None = 28,
        node_feature_dims: int | None = None,
        n_edge_types: int | None = 3,
        hidden_dims: int = 128,
        n_layers: int = 4,
        mlp_layers: int = 3,
        pe_in_every_layer: bool = True,
        pooling: str | None = "mean",
        out_dims: int = 1,
    ):
        super().__init__()
        self.pe = check_choice(pe, "pe", PE_KINDS)
        self.pooling = check_choice(pooling, "pooling", ("mean", "add", None))
        if (n_node_types is None) == (node_feature_dims is None):
            raise ValueError("give exactly one of n_node_types (categorical x) and node_feature_dims (continuous x)")
        if pe == "spe" and not isinstance(spe, SPE):
            raise TypeError(f"pe='spe' needs spe=SPE(...), got {type(spe).__name__}")
        if pe != "spe" and spe is not None:
            raise ValueError(f"spe is only used with pe='spe', got pe={pe!r}")
        hidden_dims = check_int(hidden_dims, "hidden_dims", low=1)
        n_layers = check_int(n_layers, "n_layers", low=1)
        mlp_layers = check_int(mlp_layers, "mlp_layers", low=1)
        self.spe = spe
        width = None if pe is None else (spe.out_dims if pe == "spe" else check_int(pe_dims, "pe_dims", low=1))
        self.node_embedding = (
            nn.Embedding(check_int(n_node_types, "n_node_types", low=1), hidden_dims) if n_node_types is not None
            else nn.Linear(check_int(node_feature_dims, "node_feature_dims", low=1), hidden_dims)
        )
        self.pe_embedding = None if width is None else nn.Linear(width, hidden_dims)
        self.pe_layers = nn.ModuleList(
            MLP(width, hidden_dims, hidden_dims, mlp_layers) for _ in range(n_layers)
        ) if width is not None and pe_in_every_layer else None
        self.layers = nn.ModuleList(GINELayer(hidden_dims, n_edge_types, mlp_layers) for _ in range(n_layers))
        self.head = MLP(hidden_dims, hidden_dims, out_dims, mlp_layers)

    def positional_encoding(self, batch: "torch_geometric.data.Batch") -> torch.Tensor | None:
        """The node PE of ``batch`` (N, width), or ``None`` without a PE."""
        if self.pe is None:
            return None
        if self.pe == "spe":
            return self.spe(batch.eigvals, batch.eigvecs, batch.eig_mask, batch.edge_index, batch.batch)
        pe = getattr(batch, _PE_ATTR[self.pe], None)
        if pe is None:
            raise ValueError(
                f"pe={self.pe!r} needs batch.{_PE_ATTR[self.pe]}; pre-transform with pe_transform({self.pe!r}, dims)"
            )
        if self.pe == "lappe" and self.training:  # eigenvector signs are arbitrary: flip at random per graph
            signs = torch.randint(0, 2, (int(batch.num_graphs), pe.shape[1]), device=pe.device) * 2 - 1
            pe = pe * signs[batch.batch].to(pe.dtype)
        return pe

    def forward(self, batch: "torch_geometric.data.Batch") -> torch.Tensor:
        """``batch``: a PyG ``Batch`` -> predictions (B, out_dims), or (N, out_dims) with ``pooling=None``."""
        x = batch.x
        if isinstance(self.node_embedding, nn.Embedding):
            h = self.node_embedding(x.reshape(-1).long())
        else:
            h = self.node_embedding(x.float())
        pe = self.positional_encoding(batch)
        if pe is not None:
            h = h + self.pe_embedding(pe)
        edge_attr = getattr(batch, "edge_attr", None)
        if edge_attr is None and self.layers[0].edge_embedding is not None:
            raise ValueError(
                "the model was built with n_edge_types, so the batch needs edge types in batch.edge_attr; "
                "got none (build it with n_edge_types=None for graphs without edge features)"
            )
        for k, layer in enumerate(self.layers):
            h_in = h if self.pe_layers is None else h + self.pe_layers[k](pe)
            h = h + layer(h_in, batch.edge_index, edge_attr)
        if self.pooling is not None:
            n_graphs = int(batch.num_graphs)
            pooled = torch.zeros(n_graphs, h.shape[1], dtype=h.dtype, device=h.device).index_add_(0, batch.batch, h)
            if self.pooling == "mean":
                counts = torch.bincount(batch.batch, minlength=n_graphs).clamp(min=1).to(h.dtype)
                pooled = pooled / counts.unsqueeze(1)
            h = pooled
        return self.head(h)
