"""Contextual stochastic block model: a planted partition with cluster-dependent node attributes.

Generative model (Deshpande, Sen, Montanari & Mossel, "Contextual stochastic block models",
NeurIPS 2018), for ``n`` nodes in ``k`` planted clusters:

* labels ``y`` : a random assignment of the nodes to clusters of the requested sizes;
* edges : each unordered pair ``{i, j}``, ``i != j``, is joined independently with probability
  ``p_in`` if ``y_i == y_j`` and ``p_out`` otherwise (no self-loops, binary, symmetric). Edges are
  drawn block by block: the number of edges of a block is ``Binomial(n_pairs, p)`` and that many
  distinct pairs are drawn without replacement, so the cost is O(n + edges), never O(n^2);
* features, sparse (``sparse_features=True``) : a bag of words. A background word distribution
  ``b ~ Dirichlet(1_d)`` is shared; cluster ``c`` has a sparse topic ``t_c ~ Dirichlet(0.1 * 1_d)``.
  Node ``i`` draws ``L_i ~ 1 + Poisson(words_per_node - 1)`` words from
  ``(1 - s) * b + s * t_{y_i}`` (``s = feature_signal``) and its binary feature row marks the words
  present, as in citation graphs;
* features, dense (``sparse_features=False``) : ``x_i = s * m_{y_i} + (1 - s) * e_i`` with cluster
  means ``m_c ~ N(0, I_d)`` and noise ``e_i ~ N(0, I_d)``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from graphrec.utils.validation import check_bool, check_float, check_int
from graphrec.datasets.graph import AttributedGraph
from graphrec.utils.validation import check_random_state

__all__ = ["make_attributed_sbm"]


def _cluster_sizes(n_nodes: int, n_clusters: int, cluster_sizes: Sequence[int] | None) -> np.ndarray:
    """Balanced sizes (the first ``n mod k`` clusters one larger), or the validated given ones."""
    if cluster_sizes is None:
        n_nodes = check_int(n_nodes, "n_nodes", low=2)
        n_clusters = check_int(n_clusters, "n_clusters", low=1, high=n_nodes)
        sizes = np.full(n_clusters, n_nodes // n_clusters, dtype=np.int64)
        sizes[: n_nodes % n_clusters] += 1
        return sizes
    sizes = np.asarray(cluster_sizes)
    if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer) or sizes.min() < 1:
        raise ValueError(f"cluster_sizes must be a non-empty sequence of positive integers, got {cluster_sizes!r}")
    if sizes.sum() < 2:
        raise ValueError(f"cluster_sizes must add up to at least 2 nodes, got {int(sizes.sum())}")
    return sizes.astype(np.int64)


def _triangle_pairs(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decode linear indices ``k`` of the strict lower triangle into ``(i, j)`` with ``j < i``.

    Row ``i`` holds the indices ``i(i-1)/2 .. i(i-1)/2 + i - 1``.
    """
    i = np.floor((1.0 + np.sqrt(1.0 + 8.0 * k.astype(np.float64))) / 2.0).astype(np.int64)
    i -= i * (i - 1) // 2 > k  # undo a floating-point overshoot
    i += (i + 1) * i // 2 <= k  # and an undershoot
    return i, k - i * (i - 1) // 2


def _sbm_edges(
    members: list[np.ndarray], p_in: float, p_out: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One endpoint pair per undirected edge, block by block (see module docs)."""
    rows, cols = [], []
    for a, ma in enumerate(members):
        for b in range(a, len(members)):
            mb = members[b]
            n_pairs = ma.size * (ma.size - 1) // 2 if a == b else ma.size * mb.size
            p = p_in if a == b else p_out
            m = int(rng.binomial(n_pairs, p)) if n_pairs else 0
            if m == 0:
                continue
            k = rng.choice(n_pairs, size=m, replace=False)
            if a == b:
                i, j = _triangle_pairs(k)
                rows.append(ma[i])
                cols.append(ma[j])
            else:
                rows.append(ma[k // mb.size])
                cols.append(mb[k % mb.size])
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows), np.concatenate(cols)


def _bag_of_words(
    labels: np.ndarray, n_clusters: int, n_features: int, signal: float, words_per_node: float, rng: np.random.Generator
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Binary word-presence rows and the per-cluster word distributions, shape (k, d)."""
    background = rng.dirichlet(np.ones(n_features))
    topics = rng.dirichlet(np.full(n_features, 0.1), size=n_clusters)
    profiles = (1.0 - signal) * background + signal * topics
    profiles /= profiles.sum(axis=1, keepdims=True)
    lengths = 1 + rng.poisson(words_per_node - 1.0, size=labels.size)
    rows, cols = [], []
    for c in range(n_clusters):
        nodes = np.flatnonzero(labels == c)
        owners = np.repeat(nodes, lengths[nodes])
        rows.append(owners)
        cols.append(rng.choice(n_features, size=owners.size, p=profiles[c]))
    r, c = np.concatenate(rows), np.concatenate(cols)
    x = sp.csr_matrix((np.ones(r.size), (r, c)), shape=(labels.size, n_features))
    x.sum_duplicates()
    x.data[:] = 1.0
    return x, profiles


def make_attributed_sbm(
    n_nodes: int = 1000,
    n_clusters: int = 4,
    *,
    cluster_sizes: Sequence[int] | None = None,
    p_in: float = 0.017,
    p_out: float = 0.003,
    n_features: int = 500,
    feature_signal: float = 0.22,
    words_per_node: float = 20.0,
    sparse_features: bool = True,
    random_state: Any = None,
) -> AttributedGraph:
    """A contextual stochastic block model: planted-partition graph with cluster-dependent attributes.

    See the module docstring for the generative model. The defaults give a graph of mean degree
    about 6.4 with 500 binary word features, on which neither the graph alone nor the attributes
    alone reveal the partition well, while spectral clustering of graph-smoothed attributes does.

    Parameters
    ----------
    n_nodes : int, default=1000
        Number of nodes ``n`` (ignored when ``cluster_sizes`` is given).
    n_clusters : int, default=4
        Number of planted clusters ``k``, balanced (ignored when ``cluster_sizes`` is given).
    cluster_sizes : sequence of int, optional
        Explicit cluster sizes; ``n = sum(cluster_sizes)``, ``k = len(cluster_sizes)``.
    p_in, p_out : float in [0, 1], default=0.017, 0.003
        Edge probability within / between clusters.
    n_features : int, default=500
        Attribute dimension ``d`` (vocabulary size for sparse features).
    feature_signal : float in [0, 1], default=0.22
        Weight ``s`` of the cluster-specific component: 0 makes attributes independent of the
        clusters, 1 makes them noise-free (topic words only / the cluster mean).
    words_per_node : float >= 1, default=20
        Mean number of word draws per node (sparse features only; repeats collapse to one).
    sparse_features : bool, default=True
        Binary bag-of-words CSR features, or dense Gaussian features.
    random_state : int, numpy Generator or None

    Returns
    -------
    AttributedGraph
        ``adjacency`` (n, n) binary symmetric CSR without self-loops; ``features`` (n, d), CSR
        binary or dense float64; ``labels`` (n,) the planted cluster of each node; ``meta`` holds the
        generator's arguments and ``"feature_means"`` (k, d): each cluster's word distribution
        (sparse) or mean ``s * m_c`` (dense).

    References
    ----------
    Deshpande, Sen, Montanari & Mossel, "Contextual stochastic block models", NeurIPS 2018.
    Holland, Laskey & Leinhardt, "Stochastic blockmodels: first steps", Social Networks 5, 1983.
    """
    sizes = _cluster_sizes(n_nodes, n_clusters, cluster_sizes)
    p_in = check_float(p_in, "p_in", low=0.0, high=1.0)
    p_out = check_float(p_out, "p_out", low=0.0, high=1.0)
    n_features = check_int(n_features, "n_features", low=1)
    feature_signal = check_float(feature_signal, "feature_signal", low=0.0, high=1.0)
    words_per_node = check_float(words_per_node, "words_per_node", low=1.0)
    check_bool(sparse_features, "sparse_features")
    rng = check_random_state(random_state)
    n, k = int(sizes.sum()), sizes.size

    labels = rng.permutation(np.repeat(np.arange(k), sizes))
    members = [np.flatnonzero(labels == c) for c in range(k)]
    rows, cols = _sbm_edges(members, p_in, p_out, rng)
    upper = sp.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    adjacency = (upper + upper.T).tocsr()

    if sparse_features:
        features, means = _bag_of_words(labels, k, n_features, feature_signal, words_per_node, rng)
    else:
        means = feature_signal * rng.standard_normal((k, n_features))
        features = means[labels] + (1.0 - feature_signal) * rng.standard_normal((n, n_features))
    meta = {
        "generator": "make_attributed_sbm",
        "cluster_sizes": sizes.tolist(),
        "p_in": p_in,
        "p_out": p_out,
        "feature_signal": feature_signal,
        "words_per_node": words_per_node if sparse_features else None,
        "sparse_features": bool(sparse_features),
        "feature_means": means,
    }
    return AttributedGraph(adjacency, features, labels, name="csbm", meta=meta)
