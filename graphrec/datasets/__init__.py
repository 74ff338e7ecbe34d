"""Datasets: typed containers, a card per dataset, verified downloads and one-time conversion.

>>> from graphrec.datasets import load
>>> cora = load("cora")                       # doctest: +SKIP
>>> cora.adjacency.shape, cora.features.shape  # doctest: +SKIP
((2708, 2708), (2708, 1433))
"""
from graphrec.datasets._cards import DatasetCard, all_cards, get_card
from graphrec.datasets._fetch import ChecksumError, fetch_files
from graphrec.datasets._registry import list_datasets, load, register_format
from graphrec.datasets.builtin import load_digits_graph, load_karate_club
from graphrec.datasets.ctr import CTRTable
from graphrec.datasets.graph import AttributedGraph, as_attributed_graph
from graphrec.datasets.generators import (
    make_attributed_sbm,
    make_continuous_tensor,
    make_ctr,
    make_knowledge_graph,
    make_latent_factor_interactions,
    make_slow_manifold,
    make_union_of_subspaces,
)
from graphrec.datasets.interactions import Interactions
from graphrec.datasets.tensor import ContinuousTensor
from graphrec.datasets.triples import Triples

__all__ = [
    "AttributedGraph",
    "CTRTable",
    "ChecksumError",
    "ContinuousTensor",
    "DatasetCard",
    "Interactions",
    "Triples",
    "all_cards",
    "as_attributed_graph",
    "fetch_files",
    "get_card",
    "list_datasets",
    "load",
    "load_digits_graph",
    "load_karate_club",
    "make_attributed_sbm",
    "make_continuous_tensor",
    "make_ctr",
    "make_knowledge_graph",
    "make_latent_factor_interactions",
    "make_slow_manifold",
    "make_union_of_subspaces",
    "register_format",
]
