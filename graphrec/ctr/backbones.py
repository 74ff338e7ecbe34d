"""CTR backbones on one shared embedding table: FM, DeepFM, DCN and IPNN.

A :class:`CTRNet` looks up ``e = E[x]`` (batch, n_fields, d) and lets an optional ``mask``
module rescale it (OptFS feature gates, DNIS dimension weights) before the backbone turns the
masked embeddings into one logit per row. Layer sizes follow the OptFS code (Lyu et al., WWW 2023).

References
----------
Rendle, "Factorization machines", ICDM 2010. Guo et al., "DeepFM", IJCAI 2017. Wang et al.,
"Deep & Cross Network for ad click predictions", ADKDD 2017. Qu et al., "Product-based neural
networks for user response prediction" (IPNN), ICDM 2016.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["BACKBONES", "CTRNet", "fm_pairwise", "fm_pairwise_naive"]

BACKBONES = ("fm", "deepfm", "dcn", "ipnn")


def fm_pairwise(e: torch.Tensor) -> torch.Tensor:
    """FM second-order term ``sum_{f<h} <e_f, e_h>`` in O(F d): ``0.5 sum_k (sum_f e_fk)^2 - sum_f e_fk^2``.

    e: (batch, F, d) -> (batch,).
    """
    return 0.5 * (e.sum(1).pow(2) - e.pow(2).sum(1)).sum(1)


def fm_pairwise_naive(e: torch.Tensor) -> torch.Tensor:
    """The same term by the explicit O(F^2 d) double sum (a reference for tests)."""
    f = e.shape[1]
    return sum((e[:, i] * e[:, j]).sum(1) for i in range(f) for j in range(i + 1, f))


def _mlp(n_in: int, hidden: Sequence[int], dropout: float, batch_norm: bool = False) -> tuple[nn.Sequential, int]:
    """Linear -> [BatchNorm1d] -> ReLU -> [Dropout] per hidden width; returns the stack and its output width."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers.append(nn.Linear(n_in, h))
        if batch_norm:
            layers.append(nn.BatchNorm1d(h))
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        n_in = h
    return nn.Sequential(*layers), n_in


class CTRNet(nn.Module):
    """Embedding table + backbone. ``forward(x)``: x (batch, F) int64 global ids -> logits (batch,).

    ``mask`` (optional) is called as ``mask(x, e)`` and returns the masked embeddings (batch, F, d)
    and a (batch, F) row scale applied to the first-order weights (FM / DeepFM), so a feature whose
    gate is 0 leaves no trace in the prediction. ``batch_norm`` puts a BatchNorm1d between every hidden
    Linear layer of the MLP and its ReLU (batch statistics in train mode, running ones in eval mode).
    """

    def __init__(self, backbone: str, n_features: int, n_fields: int, embed_dim: int,
                 hidden: Sequence[int] = (400, 400, 400), dropout: float = 0.0, n_cross: int = 3,
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.backbone = backbone
        self.embedding = nn.Embedding(n_features, embed_dim)
        nn.init.xavier_uniform_(self.embedding.weight)
        self.mask: nn.Module | None = None
        flat = n_fields * embed_dim
        if backbone in ("fm", "deepfm"):
            self.linear = nn.Embedding(n_features, 1)
            nn.init.zeros_(self.linear.weight)
            self.bias = nn.Parameter(torch.zeros(()))
        if backbone == "deepfm":
            self.mlp, out = _mlp(flat, hidden, dropout, batch_norm)
            self.head = nn.Linear(out, 1)
        elif backbone == "dcn":
            self.cross_w = nn.ModuleList(nn.Linear(flat, 1, bias=False) for _ in range(n_cross))
            self.cross_b = nn.ParameterList(nn.Parameter(torch.zeros(flat)) for _ in range(n_cross))
            self.mlp, out = _mlp(flat, hidden, dropout, batch_norm)
            self.head = nn.Linear(out + flat, 1)
        elif backbone == "ipnn":
            self.mlp, out = _mlp(flat + n_fields * (n_fields - 1) // 2, hidden, dropout, batch_norm)
            self.head = nn.Linear(out, 1)
            self.register_buffer("_pairs", torch.triu_indices(n_fields, n_fields, 1), persistent=False)

    def masked_embeddings(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        e = self.embedding(x)
        if self.mask is None:
            return e, None
        return self.mask(x, e)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e, row_scale = self.masked_embeddings(x)
        flat = e.flatten(1)
        if self.backbone in ("fm", "deepfm"):
            w = self.linear(x).squeeze(-1)
            if row_scale is not None:
                w = w * row_scale
            out = self.bias + w.sum(1) + fm_pairwise(e)
            if self.backbone == "deepfm":
                out = out + self.head(self.mlp(flat)).squeeze(-1)
            return out
        if self.backbone == "dcn":
            xl = flat
            for w, b in zip(self.cross_w, self.cross_b):
                xl = flat * w(xl) + b + xl
            return self.head(torch.cat([xl, self.mlp(flat)], 1)).squeeze(-1)
        inner = (e[:, self._pairs[0]] * e[:, self._pairs[1]]).sum(-1)  # ipnn: (batch, F(F-1)/2)
        return self.head(self.mlp(torch.cat([flat, inner], 1))).squeeze(-1)
