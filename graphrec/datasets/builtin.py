"""Small real graphs that ship inside installed packages (no download).

* :func:`load_karate_club` — Zachary's karate club, from networkx;
* :func:`load_digits_graph` — scikit-learn's 8 x 8 handwritten digits with a kNN graph.

networkx and scikit-learn are imported inside the functions, so importing this module is cheap.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from graphrec.utils.validation import check_int
from graphrec.datasets.graph import AttributedGraph

__all__ = ["load_digits_graph", "load_karate_club"]

_FACTIONS = ("Mr. Hi", "Officer")


def load_karate_club() -> AttributedGraph:
    """Zachary's karate club: 34 members, 78 friendships, the two factions after the split.

    Returns
    -------
    AttributedGraph
        ``adjacency`` (34, 34) binary symmetric (networkx's interaction-count weights are dropped);
        ``features`` the (34, 34) sparse identity (one-hot node ids: the graph has no attributes);
        ``labels`` (34,) 0 for the faction of the instructor "Mr. Hi", 1 for the "Officer"'s,
        from networkx's ``club`` node attribute.

    References
    ----------
    Zachary, "An information flow model for conflict and fission in small groups",
    Journal of Anthropological Research 33(4), 1977.
    """
    import networkx as nx

    g = nx.karate_club_graph()
    nodes = sorted(g.nodes)
    adjacency = nx.to_scipy_sparse_array(g, nodelist=nodes, weight=None, format="csr")
    labels = np.array([_FACTIONS.index(g.nodes[v]["club"]) for v in nodes], dtype=np.int64)
    features = sp.identity(len(nodes), format="csr")
    meta = {"source": f"networkx {nx.__version__} karate_club_graph()", "label_names": list(_FACTIONS)}
    return AttributedGraph(sp.csr_matrix(adjacency), features, labels, name="karate", meta=meta)


def load_digits_graph(n_neighbors: int = 10) -> AttributedGraph:
    """scikit-learn's handwritten digits as nodes of a symmetric k-nearest-neighbour graph.

    Parameters
    ----------
    n_neighbors : int, default=10
        Each image is joined to its ``n_neighbors`` nearest others (Euclidean distance on the
        pixels); the graph is the union of these directed links, so every node has degree
        ``>= n_neighbors``.

    Returns
    -------
    AttributedGraph
        ``adjacency`` (1797, 1797) binary symmetric, no self-loops; ``features`` (1797, 64) dense,
        the 8 x 8 pixel intensities scaled from 0..16 to [0, 1]; ``labels`` (1797,) the digit 0..9.

    References
    ----------
    Alpaydin & Kaynak, "Optical recognition of handwritten digits", UCI Machine Learning
    Repository, 1998 (the test part that scikit-learn ships as ``load_digits``).
    """
    from sklearn.datasets import load_digits
    from sklearn.neighbors import kneighbors_graph

    digits = load_digits()
    x = digits.data.astype(np.float64) / 16.0
    n_neighbors = check_int(n_neighbors, "n_neighbors", low=1, high=x.shape[0] - 1)
    knn = kneighbors_graph(x, n_neighbors, mode="connectivity", include_self=False)
    adjacency = knn.maximum(knn.T).tocsr()
    meta = {"n_neighbors": n_neighbors, "source": "sklearn.datasets.load_digits"}
    return AttributedGraph(adjacency, x, digits.target.astype(np.int64), name="digits", meta=meta)
