"""The spectral baseline recovers planted partitions and clusters real graphs well above chance."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from graphrec.cluster import AttributedSpectralClustering, smoothed_feature_embedding
from graphrec.datasets import AttributedGraph, load, load_karate_club, make_attributed_sbm
from graphrec.metrics import clustering_accuracy


def test_recovers_planted_partition():
    g = make_attributed_sbm(n_nodes=600, n_clusters=3, p_in=0.05, p_out=0.002, random_state=1)
    labels = AttributedSpectralClustering(n_clusters=3, random_state=0).fit_predict(g)
    assert clustering_accuracy(g.labels, labels) > 0.97


def test_embedding_is_the_svd_of_the_smoothed_features():
    g = make_attributed_sbm(n_nodes=150, n_clusters=3, random_state=0)
    u, s = smoothed_feature_embedding(g, 3, T=2, n_iter=30, random_state=0)
    # Dense closed form: Z = (I + P + P^2)/3 X_hat with P = D^-1/2 (A+I) D^-1/2.
    a = g.adjacency.toarray() + np.eye(g.n_nodes)
    d = a.sum(1)
    p = a / np.sqrt(np.outer(d, d))
    x = g.features.toarray()
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
    z = (x + p @ x + p @ p @ x) / 3
    exact_u, exact_s, _ = np.linalg.svd(z, full_matrices=False)
    np.testing.assert_allclose(s, exact_s[:3], rtol=1e-8)
    np.testing.assert_allclose(np.abs(u.T @ exact_u[:, :3]), np.eye(3), atol=1e-6)


def test_accepts_pyg_data_and_tuples_equally():
    g = load_karate_club()
    est = AttributedSpectralClustering(n_clusters=2, random_state=0)
    a = est.fit_predict(g)
    b = est.fit_predict((g.adjacency, g.features))
    c = est.fit_predict(g.to_pyg())
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert clustering_accuracy(g.labels, a) > 0.9


def test_sparse_features_stay_sparse_and_match_dense():
    g = make_attributed_sbm(n_nodes=200, n_clusters=3, random_state=2)
    dense = AttributedGraph(g.adjacency, g.features.toarray(), g.labels)
    assert sp.issparse(g.features)
    u_sparse, _ = smoothed_feature_embedding(g, 3, random_state=0)
    u_dense, _ = smoothed_feature_embedding(dense, 3, random_state=0)
    np.testing.assert_allclose(u_sparse, u_dense, atol=1e-8)


def test_real_cora_well_above_chance(data_root):
    g = load("cora")
    labels = AttributedSpectralClustering(n_clusters=7, random_state=0).fit_predict(g)
    # 7 unbalanced classes: predicting the majority class gives 0.30.
    assert clustering_accuracy(g.labels, labels) > 0.55


def test_too_many_clusters_is_an_error():
    g = load_karate_club()
    with pytest.raises(ValueError, match="n_clusters=40 exceeds"):
        AttributedSpectralClustering(n_clusters=40).fit(g)
    with pytest.raises(ValueError, match="n_clusters"):
        AttributedSpectralClustering(n_clusters=0).fit(g)


def test_smoothed_feature_embedding_checks_its_polynomial_order():
    g = make_attributed_sbm(n_nodes=60, n_clusters=3, random_state=0)
    with pytest.raises(ValueError, match="T must be"):   # T = -1 used to divide by T + 1 = 0 (NaN, then an SVD error)
        smoothed_feature_embedding(g, 3, T=-1)
    with pytest.raises(TypeError, match="T must be"):
        smoothed_feature_embedding(g, 3, T=1.5)
