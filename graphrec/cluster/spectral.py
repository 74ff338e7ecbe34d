"""Spectral clustering of attributed graphs on graph-smoothed features (the baseline S2CAG improves on).

The node representation is the low-pass filtered attribute matrix

    Z = 1/(T+1) * sum_{t=0..T} P^t X_hat,    P = D^{-1/2} (A + I) D^{-1/2},

with ``X_hat`` the row-L2-normalised attributes (Wu et al., "Simplifying graph convolutional
networks", ICML 2019). Its top ``n_clusters`` left singular vectors, computed by a randomised SVD
that applies ``Z`` implicitly (never forming it, so sparse attributes stay sparse), are
row-normalised and clustered with k-means (Ng, Jordan, Weiss, NIPS 2001).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import ClusterMixin
from sklearn.cluster import KMeans
from sklearn.preprocessing import normalize

from graphrec.base import GraphrecEstimator
from graphrec.core import SparseOperator, normalized_adjacency, randomized_svd
from graphrec.datasets.graph import as_attributed_graph
from graphrec.utils.validation import check_device, check_int, check_random_state


def smoothed_feature_embedding(
    graph: Any,
    n_components: int,
    *,
    T: int = 5,
    n_iter: int = 4,
    random_state: Any = None,
    device: Any = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n_components`` left singular pairs of the smoothed attributes ``Z`` (see module docs).

    Parameters
    ----------
    graph : AttributedGraph, PyG ``Data`` or ``(adjacency, features)``
    n_components : int
    T : int, default=5
        Propagation steps (polynomial order of the low-pass filter).
    n_iter : int, default=4
        Power iterations of the randomised SVD.
    random_state : int, Generator or None, default=None
        Seeds the SVD's test matrix.
    device : str, default="cpu"
        Device the propagation and the SVD run on.

    Returns
    -------
    embedding : ndarray, shape (n_nodes, n_components)
    singular_values : ndarray, shape (n_components,)
    """
    T = check_int(T, "T", low=0)
    g = as_attributed_graph(graph)
    dev = check_device(device)
    p = SparseOperator(normalized_adjacency(g.adjacency), dev)
    x_hat = normalize(g.features, norm="l2", axis=1)
    if sp.issparse(x_hat):
        x, xt = SparseOperator(x_hat, dev), SparseOperator(x_hat.T, dev)
    else:
        x = torch.as_tensor(x_hat, device=dev)
        xt = x.T

    def smooth(h: torch.Tensor) -> torch.Tensor:  # (sum_t P^t / (T+1)) h; P is symmetric
        acc, cur = h.clone(), h
        for _ in range(T):
            cur = p @ cur
            acc += cur
        return acc / (T + 1)

    u, s, _ = randomized_svd(
        n_components=n_components,
        matmat=lambda v: smooth(x @ v),
        rmatmat=lambda w: xt @ smooth(w),
        shape=(g.n_nodes, g.n_features),
        n_iter=n_iter,
        random_state=random_state,
        device=dev,
    )
    return u.cpu().numpy(), s.cpu().numpy()


class AttributedSpectralClustering(ClusterMixin, GraphrecEstimator):
    """Spectral clustering on graph-smoothed node attributes.

    Parameters
    ----------
    n_clusters : int, default=8
    T : int, default=5
        Propagation steps of the low-pass filter.
    n_iter : int, default=4
        Power iterations of the randomised SVD.
    random_state : int, Generator or None
        Seeds the SVD's test matrix and k-means.
    device : str, default="cpu"
    verbose : bool, default=False

    Attributes
    ----------
    labels_ : ndarray of shape (n_nodes,)
    embedding_ : ndarray of shape (n_nodes, n_clusters)
        Row-normalised spectral embedding.
    singular_values_ : ndarray of shape (n_clusters,)

    Examples
    --------
    >>> from graphrec.cluster import AttributedSpectralClustering
    >>> from graphrec.datasets import make_attributed_sbm
    >>> g = make_attributed_sbm(random_state=0)
    >>> labels = AttributedSpectralClustering(n_clusters=4, random_state=0).fit_predict(g)
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        T: int = 5,
        n_iter: int = 4,
        random_state: Any = None,
        device: str = "cpu",
        verbose: bool = False,
    ) -> None:
        self.n_clusters = n_clusters
        self.T = T
        self.n_iter = n_iter
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def fit(self, graph: Any, y: None = None) -> "AttributedSpectralClustering":
        """Cluster the nodes of ``graph`` (AttributedGraph, PyG ``Data`` or ``(adjacency, features)``)."""
        check_int(self.n_clusters, "n_clusters", low=1)
        check_int(self.T, "T", low=0)
        check_int(self.n_iter, "n_iter", low=0)
        g = as_attributed_graph(graph)
        if self.n_clusters > min(g.n_nodes, g.n_features):
            raise ValueError(
                f"n_clusters={self.n_clusters} exceeds min(n_nodes, n_features)={min(g.n_nodes, g.n_features)}"
            )
        rng = check_random_state(self.random_state)
        seeds = rng.integers(0, 2**31 - 1, size=2)
        u, s = smoothed_feature_embedding(
            g, self.n_clusters, T=self.T, n_iter=self.n_iter, random_state=int(seeds[0]), device=self.device
        )
        self.embedding_ = normalize(u, norm="l2", axis=1)
        self.singular_values_ = s
        km = KMeans(n_clusters=self.n_clusters, n_init=10, random_state=int(seeds[1]))
        self.labels_ = km.fit_predict(self.embedding_)
        return self
