"""Generators and built-in graphs: determinism, argument errors, and the planted structure.

Every statistical check compares the output with the generative model stated in the docstrings
(probabilities, rates, noise levels) or with a method computed here from scipy / scikit-learn,
never with numbers copied from the generators' own output.
"""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.linalg import eigsh, svds
from sklearn.cluster import KMeans
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import normalize

from graphrec.datasets import AttributedGraph, ContinuousTensor, CTRTable, Interactions, Triples
from graphrec.datasets.builtin import load_digits_graph, load_karate_club
from graphrec.datasets.generators import (
    make_attributed_sbm,
    make_continuous_tensor,
    make_ctr,
    make_knowledge_graph,
    make_latent_factor_interactions,
    make_slow_manifold,
)

SMALL = {
    make_attributed_sbm: dict(n_nodes=300, n_clusters=3),
    make_latent_factor_interactions: dict(n_users=200, n_items=100, mean_interactions=5),
    make_knowledge_graph: dict(n_entities=100, n_relations=4, n_triples=1500),
    make_ctr: dict(n_rows=500),
    make_continuous_tensor: dict(n_obs=300),
}


def _fingerprint(obj) -> list[np.ndarray]:
    """The arrays that make up a container, for equality checks."""
    if isinstance(obj, AttributedGraph):
        x = obj.features.toarray() if sp.issparse(obj.features) else obj.features
        return [obj.adjacency.toarray(), x, obj.labels]
    if isinstance(obj, Interactions):
        return [obj.order.toarray()]
    if isinstance(obj, Triples):
        return [obj.train, obj.valid, obj.test]
    if isinstance(obj, CTRTable):
        return [obj.frame.to_numpy(), obj.label] + [obj.splits[k] for k in ("train", "valid", "test")]
    if isinstance(obj, ContinuousTensor):
        return [obj.coords, obj.values] + [i for fold in obj.folds for i in fold]
    raise TypeError(type(obj))


def _same(a, b) -> bool:
    fa, fb = _fingerprint(a), _fingerprint(b)
    return all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(fa, fb))


@pytest.mark.parametrize("make", list(SMALL), ids=lambda f: f.__name__)
def test_seed_determinism(make):
    kw = SMALL[make]
    assert _same(make(**kw, random_state=3), make(**kw, random_state=3))
    assert _same(make(**kw, random_state=np.random.default_rng(3)), make(**kw, random_state=3))
    assert not _same(make(**kw, random_state=3), make(**kw, random_state=4))


@pytest.mark.parametrize(
    "make, kwargs, exc, arg",
    [
        (make_attributed_sbm, dict(n_nodes=1), ValueError, "n_nodes"),
        (make_attributed_sbm, dict(n_clusters=0), ValueError, "n_clusters"),
        (make_attributed_sbm, dict(n_nodes=10, n_clusters=11), ValueError, "n_clusters"),
        (make_attributed_sbm, dict(p_in=1.5), ValueError, "p_in"),
        (make_attributed_sbm, dict(p_out=-0.1), ValueError, "p_out"),
        (make_attributed_sbm, dict(p_out=float("nan")), ValueError, "p_out"),
        (make_attributed_sbm, dict(feature_signal=2.0), ValueError, "feature_signal"),
        (make_attributed_sbm, dict(n_features=0), ValueError, "n_features"),
        (make_attributed_sbm, dict(words_per_node=0.5), ValueError, "words_per_node"),
        (make_attributed_sbm, dict(cluster_sizes=[10, 0]), ValueError, "cluster_sizes"),
        (make_attributed_sbm, dict(n_nodes=10.0), TypeError, "n_nodes"),
        (make_attributed_sbm, dict(sparse_features="yes"), TypeError, "sparse_features"),
        (make_attributed_sbm, dict(random_state="seed"), TypeError, "random_state"),
        (make_latent_factor_interactions, dict(n_users=0), ValueError, "n_users"),
        (make_latent_factor_interactions, dict(n_items=10, mean_interactions=11), ValueError, "mean_interactions"),
        (make_latent_factor_interactions, dict(temperature=0.0), ValueError, "temperature"),
        (make_latent_factor_interactions, dict(popularity_skew=-1.0), ValueError, "popularity_skew"),
        (make_knowledge_graph, dict(n_entities=1), ValueError, "n_entities"),
        (make_knowledge_graph, dict(n_entities=3, n_relations=1, n_triples=10), ValueError, "n_triples"),
        (make_knowledge_graph, dict(valid_fraction=0.5, test_fraction=0.5), ValueError, "valid_fraction"),
        (make_knowledge_graph, dict(temperature=-1.0), ValueError, "temperature"),
        (make_knowledge_graph, dict(n_entities=50, n_triples=30, test_fraction=0.5), ValueError, "test_fraction"),
        (make_knowledge_graph, dict(n_entities=20, n_relations=1, n_triples=300, temperature=1e-4), ValueError,
         "temperature"),
        (make_ctr, dict(n_rows=2), ValueError, "n_rows"),
        (make_ctr, dict(cardinality=1), ValueError, "cardinality"),
        (make_ctr, dict(cardinality=[5, 5]), ValueError, "cardinality"),
        (make_ctr, dict(base_rate=1.0), ValueError, "base_rate"),
        (make_ctr, dict(n_informative_fields=0, n_irrelevant_fields=0, n_numeric=0, n_irrelevant_numeric=0),
         ValueError, "field"),
        (make_ctr, dict(interaction_strength=-1.0), ValueError, "interaction_strength"),
        (make_continuous_tensor, dict(n_modes=0), ValueError, "n_modes"),
        (make_continuous_tensor, dict(decomposition="parafac"), ValueError, "decomposition"),
        (make_continuous_tensor, dict(rank=(2, 2, 2)), TypeError, "rank"),
        (make_continuous_tensor, dict(decomposition="tucker", rank=(2, 2)), ValueError, "rank"),
        (make_continuous_tensor, dict(noise=-0.1), ValueError, "noise"),
        (make_continuous_tensor, dict(n_obs=4, n_folds=5), ValueError, "n_folds"),
    ],
)
def test_argument_errors_name_the_argument(make, kwargs, exc, arg):
    with pytest.raises(exc, match=arg):
        make(**kwargs)


# ---------------------------------------------------------------- attributed SBM


def _block_edge_counts(g: AttributedGraph) -> tuple[int, int, int, int]:
    """(edges inside clusters, pairs inside, edges between clusters, pairs between)."""
    coo = sp.triu(g.adjacency, k=1).tocoo()
    same = g.labels[coo.row] == g.labels[coo.col]
    sizes = np.bincount(g.labels)
    pairs_in = int((sizes * (sizes - 1) // 2).sum())
    pairs_all = g.n_nodes * (g.n_nodes - 1) // 2
    return int(same.sum()), pairs_in, int((~same).sum()), pairs_all - pairs_in


def test_sbm_structure_and_edge_density():
    p_in, p_out = 0.02, 0.004
    g = make_attributed_sbm(n_nodes=2001, n_clusters=4, p_in=p_in, p_out=p_out, random_state=0)
    a = g.adjacency
    assert (a != a.T).nnz == 0 and a.diagonal().sum() == 0
    assert set(np.unique(a.data)) == {1.0}
    assert sorted(np.bincount(g.labels)) == [500, 500, 500, 501]
    e_in, n_in, e_out, n_out = _block_edge_counts(g)
    for edges, pairs, p in ((e_in, n_in, p_in), (e_out, n_out, p_out)):  # Binomial(pairs, p), 5 sigma
        assert abs(edges - pairs * p) < 5 * np.sqrt(pairs * p * (1 - p))
    x = g.features
    assert sp.issparse(x) and set(np.unique(x.data)) == {1.0} and x.getnnz(axis=1).min() >= 1


def test_sbm_extreme_probabilities_and_given_sizes():
    complete = make_attributed_sbm(cluster_sizes=[7, 5, 9], p_in=1.0, p_out=1.0, random_state=1)
    assert complete.n_nodes == 21 and complete.n_edges == 21 * 20 // 2 and complete.n_self_loops == 0
    assert np.array_equal(np.bincount(complete.labels), [7, 5, 9])
    cliques = make_attributed_sbm(cluster_sizes=[7, 5, 9], p_in=1.0, p_out=0.0, random_state=1)
    _, n_in, e_out, _ = _block_edge_counts(cliques)
    assert cliques.n_edges == n_in and e_out == 0
    empty = make_attributed_sbm(n_nodes=50, p_in=0.0, p_out=0.0, random_state=1)
    assert empty.n_edges == 0


def test_sbm_dense_features_follow_cluster_means():
    s = 0.4
    g = make_attributed_sbm(n_nodes=4000, n_clusters=2, n_features=6, feature_signal=s, sparse_features=False,
                            random_state=2)
    means = g.meta["feature_means"]
    for c in range(2):
        rows = g.features[g.labels == c]
        # x = s m_c + (1 - s) e: per-coordinate mean s m_c, std (1 - s); 2000 rows, 5 sigma
        assert np.all(np.abs(rows.mean(axis=0) - means[c]) < 5 * (1 - s) / np.sqrt(rows.shape[0]))
        assert np.allclose(rows.std(axis=0), 1 - s, rtol=0.1)


def test_sbm_sparse_features_independent_of_clusters_without_signal():
    g = make_attributed_sbm(n_nodes=2000, n_clusters=2, n_features=20, feature_signal=0.0, words_per_node=5,
                            random_state=3)
    x = g.features.toarray()
    freq = np.array([x[g.labels == c].mean(axis=0) for c in range(2)])
    # same word distribution in both clusters: word-presence rates agree within 5 binomial sigmas
    sd = np.sqrt(freq.mean(axis=0) * (1 - freq.mean(axis=0)) * 2 / 1000)
    assert np.all(np.abs(freq[0] - freq[1]) < 5 * sd + 1e-12)


def _acc(y: np.ndarray, pred: np.ndarray) -> float:
    counts = np.zeros((pred.max() + 1, y.max() + 1))
    np.add.at(counts, (pred, y), 1)
    r, c = linear_sum_assignment(counts, maximize=True)
    return counts[r, c].sum() / y.size


def _spectral_accuracies(g: AttributedGraph) -> tuple[float, float, float]:
    """ACC of k-means on: eigenvectors of the graph, singular vectors of the features, of S^2 X."""
    k = g.n_classes
    a = g.adjacency + sp.identity(g.n_nodes)
    d = sp.diags(np.asarray(a.sum(axis=1)).ravel() ** -0.5)
    s = (d @ a @ d).tocsr()
    x = normalize(g.features)
    _, graph_vecs = eigsh(s, k=k, which="LA")
    feat_vecs = svds(x, k=k, random_state=0)[0]
    both_vecs = svds(s @ (s @ x), k=k, random_state=0)[0]

    def cluster(u):
        return KMeans(k, n_init=10, random_state=0).fit_predict(normalize(u))

    return tuple(_acc(g.labels, cluster(u)) for u in (graph_vecs, feat_vecs, both_vecs))


def test_sbm_default_needs_graph_and_features_together():
    accs = np.array([_spectral_accuracies(make_attributed_sbm(random_state=seed)) for seed in range(3)])
    graph_only, features_only, combined = accs.mean(axis=0)
    assert 0.8 <= combined <= 0.95
    assert combined > graph_only + 0.15 and combined > features_only + 0.15
    assert accs[:, 2].min() >= 0.75


# ---------------------------------------------------------------- latent-factor interactions


def test_interactions_structure_and_preferences():
    inter, users, items, bias = make_latent_factor_interactions(
        n_users=1000, n_items=300, n_factors=4, mean_interactions=20, popularity_skew=1.0, random_state=0,
        return_factors=True,
    )
    assert users.shape == (1000, 4) and items.shape == (300, 4) and bias.shape == (300,)
    m, order = inter.user_items, inter.order
    pairs = np.column_stack(m.nonzero())
    assert np.unique(pairs, axis=0).shape[0] == m.nnz
    assert set(np.unique(m.data)) == {1.0}
    for u in range(0, 1000, 97):
        row = order.getrow(u).data
        assert np.array_equal(np.sort(row), np.arange(1, row.size + 1))
    counts = np.diff(m.indptr)  # 1 + Poisson(19): mean 20, sd of the mean sqrt(19 / 1000)
    assert counts.min() >= 1 and abs(counts.mean() - 20) < 5 * np.sqrt(19 / 1000)
    score = users @ items.T
    chosen = m.toarray() > 0
    assert score[chosen].mean() > score.mean() + 0.5
    first, later = order.multiply(order == 1).nonzero(), order.multiply(order > 10).nonzero()
    assert score[first].mean() > score[later].mean()
    item_degree = np.asarray(m.sum(axis=0)).ravel()
    assert np.corrcoef(item_degree, bias)[0, 1] > 0.5


def test_interactions_popularity_skew_concentrates_items():
    def top_share(skew):
        m = make_latent_factor_interactions(n_users=500, n_items=200, popularity_skew=skew, random_state=1).user_items
        deg = np.sort(np.asarray(m.sum(axis=0)).ravel())[::-1]
        return deg[:20].sum() / deg.sum()

    assert top_share(1.5) > top_share(0.0) + 0.1


# ---------------------------------------------------------------- knowledge graph


def test_knowledge_graph_splits_and_planted_bilinear_structure():
    kg, truth = make_knowledge_graph(n_entities=300, n_relations=6, n_triples=6000, random_state=0, return_truth=True)
    assert (kg.n_entities, kg.n_relations) == (300, 6)
    assert (len(kg.train), len(kg.valid), len(kg.test)) == (4800, 600, 600)
    all_triples = np.concatenate([kg.train, kg.valid, kg.test])
    assert np.unique(all_triples, axis=0).shape[0] == 6000
    seen_entities = set(kg.train[:, 0]) | set(kg.train[:, 2])
    for split in (kg.valid, kg.test):
        assert set(split[:, 0]) | set(split[:, 2]) <= seen_entities
        assert set(split[:, 1]) <= set(kg.train[:, 1])
    e, w = truth["entity_embeddings"], truth["relation_matrices"]
    assert e.shape == (300, 16) and w.shape == (6, 16, 16)
    assert np.allclose(np.einsum("rij,rik->rjk", w, w), np.eye(16))  # rotations
    # the planted score ranks the true tail of a test triple near the top (random: mean rank 150)
    ranks = [(e @ (w[r] @ e[h]) > e[t] @ (w[r] @ e[h])).sum() + 1 for h, r, t in kg.test]
    assert np.median(ranks) <= 5


# ---------------------------------------------------------------- CTR


def _target_encoding_auc(table: CTRTable, columns: list[str]) -> float:
    """AUC on held-out rows of the train-set click rate of the value combination in ``columns``."""
    values = [table.frame[c].to_numpy() for c in columns]  # value ids in [0, cardinality)
    key = np.ravel_multi_index(values, [v.max() + 1 for v in values])
    train = table.splits["train"]
    held = np.concatenate([table.splits["valid"], table.splits["test"]])
    rates = pd.Series(table.label[train]).groupby(key[train]).mean()
    encoded = pd.Series(key[held]).map(rates).fillna(table.label[train].mean()).to_numpy()
    return roc_auc_score(table.label[held], encoded)


def test_ctr_fields_splits_and_rate():
    table, truth = make_ctr(n_rows=40000, random_state=0, return_truth=True)
    assert table.categorical == [f"C{i}" for i in range(1, 9)] and table.numeric == ["I1", "I2", "I3"]
    assert sorted(truth["informative"] + truth["irrelevant"]) == sorted(table.categorical + table.numeric)
    assert sum(n.startswith("C") for n in truth["informative"]) == 4
    assert sum(n.startswith("I") for n in truth["informative"]) == 2
    rows = np.concatenate([table.splits[s] for s in ("train", "valid", "test")])
    assert np.array_equal(np.sort(rows), np.arange(40000))
    assert (len(table.splits["valid"]), len(table.splits["test"])) == (4000, 4000)
    for c in table.categorical:
        assert table.frame[c].between(0, 19).all()
    assert abs(table.label.mean() - 0.25) < 5 * np.sqrt(0.25 * 0.75 / 40000) + 0.005


def test_ctr_labels_depend_on_informative_fields_only():
    table, truth = make_ctr(n_rows=40000, random_state=0, return_truth=True)
    auc = {c: _target_encoding_auc(table, [c]) for c in table.categorical}
    auc.update({c: abs(roc_auc_score(table.label, table.frame[c]) - 0.5) + 0.5 for c in table.numeric})
    informative, irrelevant = set(truth["informative"]), set(truth["irrelevant"])
    assert all(abs(auc[c] - 0.5) < 0.02 for c in irrelevant)
    assert min(auc[c] for c in informative) > max(auc[c] for c in irrelevant)
    assert roc_auc_score(table.label, truth["logit"]) > max(auc.values())


def test_ctr_pairwise_interactions_are_planted():
    table, truth = make_ctr(n_rows=40000, n_informative_fields=2, n_irrelevant_fields=1, n_numeric=0,
                            n_irrelevant_numeric=0, main_effect_strength=0.0, interaction_strength=2.0,
                            random_state=0, return_truth=True)
    pair = _target_encoding_auc(table, truth["informative"])
    singles = [_target_encoding_auc(table, [c]) for c in truth["informative"]]
    assert pair > max(singles) + 0.1


# ---------------------------------------------------------------- continuous tensor


@pytest.mark.parametrize("decomposition, rank", [("cp", 3), ("tucker", (2, 3, 1))])
def test_continuous_tensor_matches_truth_up_to_noise(decomposition, rank):
    noise = 0.2
    tensor, truth = make_continuous_tensor(n_obs=5000, rank=rank, decomposition=decomposition, noise=noise,
                                           random_state=0, return_truth=True)
    assert tensor.coords.shape == (5000, 3) and tensor.coords.min() >= 0 and tensor.coords.max() <= 1
    clean = truth(tensor.coords)
    residual = tensor.values - clean
    assert abs(clean.std() - 1.0) < 1e-9
    assert abs(residual.std() - noise) < 0.05 * noise and abs(residual.mean()) < 5 * noise / np.sqrt(5000)
    ranks = (rank,) * 3 if isinstance(rank, int) else rank
    for u, r in zip(truth.functions, ranks):
        assert u(np.linspace(0, 1, 7)).shape == (7, r)
    assert np.allclose(pickle.loads(pickle.dumps(truth))(tensor.coords[:10]), clean[:10])


def test_continuous_tensor_noise_free_and_folds():
    tensor, truth = make_continuous_tensor(n_obs=503, n_modes=2, noise=0.0, random_state=1, return_truth=True)
    assert np.allclose(tensor.values, truth(tensor.coords))
    assert len(tensor.folds) == 5
    tests = np.concatenate([te for _, te in tensor.folds])
    assert np.array_equal(np.sort(tests), np.arange(503))
    for tr, te in tensor.folds:
        assert np.array_equal(np.union1d(tr, te), np.arange(503)) and np.intersect1d(tr, te).size == 0
    # the latent functions are smooth: nearby coordinates give nearby values
    x = np.linspace(0, 1, 1001)
    assert all(np.abs(np.diff(u(x), axis=0)).max() < 0.05 for u in truth.functions)


# ---------------------------------------------------------------- built-in graphs


def test_karate_club():
    pytest.importorskip("networkx")
    g = load_karate_club()
    # Zachary (1977): 34 members, 78 ties; networkx's 'club' attribute splits them 17 / 17
    assert (g.n_nodes, g.n_edges, g.n_self_loops) == (34, 78, 0)
    assert set(np.unique(g.adjacency.data)) == {1.0}
    assert np.array_equal(np.bincount(g.labels), [17, 17])
    assert g.labels[0] == 0 and g.labels[33] == 1  # the instructor (node 0) and the officer (node 33)
    degree = np.diff(g.adjacency.indptr)
    assert (degree[0], degree[33]) == (16, 17) and sorted(degree)[-2:] == [16, 17]
    assert (g.features != sp.identity(34)).nnz == 0


def test_digits_graph():
    g = load_digits_graph(n_neighbors=5)
    # scikit-learn's digits: 1797 images of 8 x 8 pixels, 10 classes
    assert (g.n_nodes, g.n_features, g.n_classes) == (1797, 64, 10)
    a = g.adjacency
    assert (a != a.T).nnz == 0 and g.n_self_loops == 0 and np.diff(a.indptr).min() >= 5
    assert 0.0 <= g.features.min() and g.features.max() == 1.0
    for i in (0, 500, 1796):  # each node's 5 nearest pixels-neighbours are linked to it
        dist = ((g.features - g.features[i]) ** 2).sum(axis=1)
        dist[i] = np.inf
        assert set(np.argsort(dist, kind="stable")[:5]) <= set(a.indices[a.indptr[i]:a.indptr[i + 1]])
    coo = sp.triu(a).tocoo()
    assert (g.labels[coo.row] == g.labels[coo.col]).mean() > 0.9
    with pytest.raises(ValueError, match="n_neighbors"):
        load_digits_graph(n_neighbors=0)


def test_union_of_subspaces_points_lie_on_their_planted_subspace():
    from graphrec.datasets.generators import make_union_of_subspaces

    X, y, bases = make_union_of_subspaces(120, 4, 12, 3, return_bases=True, random_state=1)
    assert X.shape == (120, 12) and bases.shape == (4, 12, 3)
    assert np.bincount(y).tolist() == [30, 30, 30, 30]
    assert np.allclose(np.einsum("kds,kdt->kst", bases, bases), np.eye(3), atol=1e-12)
    own = np.einsum("nd,nds->ns", X, bases[y])
    assert np.allclose(np.einsum("nds,ns->nd", bases[y], own), X, atol=1e-12)  # zero residual on own subspace
    other = bases[(y + 1) % 4]
    assert np.linalg.norm(X - np.einsum("nds,ns->nd", other, np.einsum("nd,nds->ns", X, other)), axis=1).min() > 1e-3
    X2, y2 = make_union_of_subspaces(120, 4, 12, 3, random_state=1)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    noisy, _ = make_union_of_subspaces(2000, 1, 50, 2, noise=0.5, random_state=0)
    clean_part = noisy @ np.linalg.svd(noisy, full_matrices=False)[2][:2].T
    assert 0.3 < np.linalg.norm(noisy - clean_part @ np.linalg.svd(noisy, full_matrices=False)[2][:2], axis=1).mean() < 0.7
    with pytest.raises(ValueError, match="subspace_dim"):
        make_union_of_subspaces(10, 2, 3, 4)


# ---------------------------------------------------------------- slow manifold (Koopman)


def test_slow_manifold_solves_its_ode():
    from scipy.integrate import solve_ivp

    mu, lam, dt = -0.4, -2.5, 0.05
    X = make_slow_manifold(3, 40, mu=mu, lam=lam, dt=dt, random_state=0)
    for x in X:
        sol = solve_ivp(lambda t, s: [mu * s[0], lam * (s[1] - s[0] ** 2)], (0, 39 * dt), x[0],
                        t_eval=np.arange(40) * dt, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(x, sol.y.T, atol=1e-8)


def test_slow_manifold_koopman_observables_evolve_by_the_planted_eigenvalues():
    mu, lam = -0.5, -3.0
    X, eig = make_slow_manifold(5, 12, mu=mu, lam=lam, return_eigenvalues=True, random_state=1)
    b = lam / (lam - 2 * mu)
    g = np.stack([np.ones_like(X[..., 0]), X[..., 0], X[..., 0] ** 2, X[..., 1] - b * X[..., 0] ** 2], -1)
    np.testing.assert_allclose(g[:, 1:], g[:, :-1] * eig, rtol=1e-10, atol=1e-12)
    assert np.abs(X[:, 0]).max() <= 2.0   # initial states in [-init_range, init_range]^2


def test_slow_manifold_is_seeded_and_checks_its_arguments():
    np.testing.assert_array_equal(make_slow_manifold(4, 6, random_state=3), make_slow_manifold(4, 6, random_state=3))
    assert not np.array_equal(make_slow_manifold(4, 6, random_state=3), make_slow_manifold(4, 6, random_state=4))
    with pytest.raises(ValueError, match="lam must differ from 2 \\* mu"):
        make_slow_manifold(4, 6, mu=-1.0, lam=-2.0)
    with pytest.raises(ValueError, match="n_steps"):
        make_slow_manifold(4, 1)
    with pytest.raises(ValueError, match="dt"):
        make_slow_manifold(4, 6, dt=0.0)
    with pytest.raises(ValueError, match="mu"):
        make_slow_manifold(4, 6, mu=float("nan"))
