"""Subspace representation learners: GCR, DSL, Hydra/SimLAP, Franca (Matryoshka head + RASA), HypCD."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from graphrec.core import principal_angles, supcon_loss
from graphrec.subspace.dynamic import (
    DynamicSubspaceLearners,
    PlateauGrowth,
    SpatialAttentionGate,
    margin_loss,
    split_newest,
    taylor_scores,
)
from graphrec.subspace.franca import (
    RASA,
    MatryoshkaClusterHead,
    MatryoshkaClustering,
    nested_cluster_loss,
    sinkhorn_targets,
)
from graphrec.subspace.grassmann_class import GrassmannClassHead, GrassmannClassifier, GrassmannSGD
from graphrec.subspace.hydra import PairGate, SimLAP, gated_multipositive_info_nce
from graphrec.subspace.hyperbolic_discovery import (
    HyperbolicCategoryDiscovery,
    gcd_accuracy,
    hybrid_similarity,
    make_hierarchical_blobs,
    similarity_supcon,
    ss_kmeans,
)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.3, random_state=0, stratify=y)


# ----------------------------------------------------------------------------- GCR
def test_gcr_logits_hand_computed_and_grassmann_invariant():
    head = GrassmannClassHead(3, 2, subspace_dim=2, gamma=10.0)
    with torch.no_grad():
        head.bases.copy_(torch.stack([torch.eye(3)[:, :2], torch.eye(3)[:, 1:]]))
    x = torch.tensor([[3.0, 4.0, 12.0]])  # ||x|| = 13
    expected = torch.tensor([[10 * 5 / 13, 10 * (16 + 144) ** 0.5 / 13]])
    assert torch.allclose(head(x), expected, atol=1e-6)
    # logits depend on span(S_c) only: S_c -> S_c R for orthogonal R leaves them unchanged
    head = GrassmannClassHead(6, 3, subspace_dim=3, generator=torch.Generator().manual_seed(0)).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    before = head(x)
    rot = torch.linalg.qr(torch.randn(3, 3, 3, dtype=torch.float64))[0]
    with torch.no_grad():
        head.bases.copy_(head.bases @ rot)
    assert torch.allclose(head(x), before, atol=1e-10)


def test_grassmann_sgd_keeps_orthonormality_and_zero_gradient_is_identity():
    head = GrassmannClassHead(16, 4, subspace_dim=5, generator=torch.Generator().manual_seed(1))
    opt = GrassmannSGD(head.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(2)
    for _ in range(500):
        opt.zero_grad()
        (head(torch.randn(32, 16, generator=gen)) * torch.randn(32, 4, generator=gen)).sum().backward()
        opt.step()
    eye = torch.eye(5)
    bases = head.bases.detach()
    assert float((bases.mT @ bases - eye).abs().max()) < 1e-5
    before = head.bases.detach().clone()
    opt = GrassmannSGD(head.parameters(), lr=0.1, momentum=0.0)
    head.bases.grad = torch.zeros_like(head.bases)
    opt.step()
    assert torch.allclose(head.bases, before, atol=1e-6)


def test_grassmann_sgd_geodesic_step_angle_and_euclidean_params_match_sgd():
    # a step along a rank-1 horizontal gradient rotates the subspace by exactly lr * ||Delta||
    u = torch.eye(4, dtype=torch.float64)[:, :2]
    p = torch.nn.Parameter(u.clone())
    p.manifold = "grassmann"
    g = torch.zeros(4, 2, dtype=torch.float64)
    g[2, 0] = -1.0  # Delta = g: horizontal, singular value 1
    p.grad = g
    GrassmannSGD([p], lr=0.3, momentum=0.0).step()
    angles = principal_angles(u, p.detach())
    assert torch.allclose(angles.sort().values, torch.tensor([0.0, 0.3], dtype=torch.float64), atol=1e-10)
    # untagged parameters follow torch.optim.SGD (momentum, weight decay)
    torch.manual_seed(0)
    a = torch.nn.Linear(3, 2)
    b = torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    oa = GrassmannSGD(a.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    ob = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    x = torch.randn(8, 3)
    for _ in range(3):
        for m, o in ((a, oa), (b, ob)):
            o.zero_grad()
            m(x).pow(2).sum().backward()
            o.step()
    assert torch.allclose(a.weight, b.weight, atol=1e-6)


def test_gcr_on_digits_matches_linear_softmax(digits):
    Xtr, Xte, ytr, yte = digits
    gcr = GrassmannClassifier("gcr", subspace_dim=4, hidden=(64,), n_epochs=30, random_state=0).fit(Xtr, ytr)
    lin = GrassmannClassifier("linear", hidden=(64,), n_epochs=30, random_state=0).fit(Xtr, ytr)
    acc_gcr, acc_lin = gcr.score(Xte, yte), lin.score(Xte, yte)
    assert acc_gcr >= 0.95 and acc_gcr >= acc_lin - 0.02
    bases = gcr.network_.head.bases.detach()
    assert float((bases.mT @ bases - torch.eye(4)).abs().max()) < 1e-5
    again = GrassmannClassifier("gcr", subspace_dim=4, hidden=(64,), n_epochs=2, random_state=3)
    assert np.array_equal(again.fit(Xtr, ytr).decision_function(Xte), again.fit(Xtr, ytr).decision_function(Xte))


def test_gcr_bad_input():
    X, y = np.random.default_rng(0).standard_normal((20, 4)), np.arange(20) % 2
    with pytest.raises(ValueError, match="subspace_dim"):
        GrassmannClassifier(subspace_dim=9, hidden=(8,)).fit(X, y)
    with pytest.raises(ValueError, match="head"):
        GrassmannClassifier(head="cosine").fit(X, y)
    with pytest.raises(ValueError, match="momentum"):
        GrassmannSGD([torch.nn.Parameter(torch.ones(2))], lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="shape"):
        GrassmannClassHead(4, 2, 2)(torch.ones(3, 5))
    clf = GrassmannClassifier(subspace_dim=2, hidden=(8,), n_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(np.ones((2, 3)))


# ----------------------------------------------------------------------------- Franca
def _slow_sinkhorn_knopp(scores: np.ndarray, tau: float, n_iter: int) -> np.ndarray:
    """SwAV/Franca Sinkhorn-Knopp: alternate prototype (column) and sample (row) normalisation."""
    q = np.exp((scores - scores.max()) / tau)
    q /= q.sum()
    n, k = q.shape
    for _ in range(n_iter):
        q /= q.sum(0, keepdims=True)
        q /= k
        q /= q.sum(1, keepdims=True)
        q /= n
    return q * n


def test_sinkhorn_targets_match_reference_and_marginals():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((12, 4))
    q = sinkhorn_targets(torch.tensor(s), tau=0.5, n_iter=3).numpy()
    assert np.allclose(q, _slow_sinkhorn_knopp(s, 0.5, 3), atol=1e-10)
    assert np.allclose(q.sum(1), 1.0, atol=1e-12)
    q = sinkhorn_targets(torch.tensor(s), tau=0.5, n_iter=200).numpy()
    assert np.allclose(q.sum(0), 12 / 4, atol=1e-4)


def test_nested_head_prefix_levels_are_nested_and_loss_hand_computed():
    torch.manual_seed(0)
    head = MatryoshkaClusterHead(16, (2, 4, 8, 16), n_prototypes=32, hidden=8, bottleneck=4)
    assert head.n_prototypes == (4, 8, 16, 32)
    x = torch.randn(5, 16)
    y = x.clone()
    y[:, 4:] += 3.0  # dims beyond the first two levels change
    sx, sy = head(x), head(y)
    assert torch.allclose(sx[0], sy[0]) and torch.allclose(sx[1], sy[1])
    assert not torch.allclose(sx[2], sy[2])
    proj = MatryoshkaClusterHead(16, (2, 16), n_prototypes=8, mode="proj", hidden=8, bottleneck=4)
    assert not torch.allclose(proj(x)[0], proj(y)[0])
    student = [torch.tensor([[0.0, 0.1]]), torch.tensor([[0.2, 0.0, 0.0]])]
    teacher = [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5, 0.0]])]
    p0 = np.exp([0.0, 1.0]) / np.exp([0.0, 1.0]).sum()
    p1 = np.exp([2.0, 0.0, 0.0]) / np.exp([2.0, 0.0, 0.0]).sum()
    expected = -np.log(p0[0]) - 0.5 * (np.log(p1[0]) + np.log(p1[1]))
    assert abs(float(nested_cluster_loss(student, teacher, tau_s=0.1)) - expected) < 1e-6


def _planted_positions(seed: int = 0):
    rng = np.random.default_rng(seed)
    n, d = 1500, 32
    pos = rng.integers(0, 10, (n, 2)).astype(float)
    y = rng.integers(0, 4, n)
    semantic = rng.standard_normal((4, d))[y] + 0.5 * rng.standard_normal((n, d))
    basis = np.linalg.qr(rng.standard_normal((d, 2)))[0]
    Z = semantic + 4 * (pos / 10 - 0.5) @ basis.T + 0.05 * rng.standard_normal((n, d))
    return Z, pos, y, basis


def test_rasa_removes_planted_positional_subspace():
    Z, pos, y, basis = _planted_positions()
    rasa = RASA(n_iter=2).fit(Z, pos)
    Zc = rasa.transform(Z)
    assert LinearRegression().fit(Z, pos).score(Z, pos) > 0.8
    assert LinearRegression().fit(Zc, pos).score(Zc, pos) < 0.05
    acc = [LogisticRegression(max_iter=500).fit(z, y).score(z, y) for z in (Z, Zc)]
    assert abs(acc[0] - acc[1]) < 0.01
    assert float(principal_angles(basis, rasa.positional_basis_).max()) < 0.35
    assert np.allclose(rasa.positional_basis_.T @ rasa.positional_basis_, np.eye(4), atol=1e-10)


def test_matryoshka_clustering_levels_agree_and_reproducible():
    rng = np.random.default_rng(0)
    centers = 5 * rng.standard_normal((4, 10))
    y = rng.integers(0, 4, 400)
    X = centers[y] + rng.standard_normal((400, 10))
    m = MatryoshkaClustering((2, 4, 8), n_prototypes=16, hidden=32, n_epochs=15, random_state=0).fit(X)
    from graphrec.metrics.clustering import nmi

    assert [np.unique(lab).size <= k for lab, k in zip(m.level_labels_, (4, 8, 16))] == [True] * 3
    assert nmi(y, m.level_labels_[0]) > 0.6  # the coarsest level (first 2 dims) already finds the clusters
    assert nmi(m.level_labels_[0], m.level_labels_[-1]) > 0.5  # coarse and fine levels are consistent
    # sklearn's clusterer contract: labels_ is (n,), the finest level, and equals predict / fit_predict
    assert m.labels_.shape == (400,) and np.array_equal(m.labels_, m.predict(X))
    assert np.array_equal(MatryoshkaClustering((2, 4, 8), n_prototypes=16, hidden=32, n_epochs=15,
                                               random_state=0).fit_predict(X), m.labels_)
    twin = MatryoshkaClustering((2, 4, 8), n_prototypes=16, hidden=32, n_epochs=2, random_state=1)
    assert np.array_equal(twin.fit(X).transform(X), twin.fit(X).transform(X))


@pytest.mark.slow
def test_matryoshka_prefix_beats_single_head_on_digits(digits):
    Xtr, Xte, ytr, yte = digits
    acc = {}
    for nested in (True, False):
        scores = []
        for seed in (0, 1, 2):
            m = MatryoshkaClustering((2, 4, 8, 16, 32), n_prototypes=40, nested=nested, noise=0.3, n_epochs=20,
                                     random_state=seed).fit(Xtr)
            knn = KNeighborsClassifier(5).fit(m.transform(Xtr, 2), ytr)
            scores.append(knn.score(m.transform(Xte, 2), yte))
        acc[nested] = np.mean(scores)
    assert acc[True] >= acc[False] + 0.03


def test_franca_bad_input():
    with pytest.raises(ValueError, match="nesting"):
        MatryoshkaClusterHead(8, (4, 2, 8), 8)
    with pytest.raises(ValueError, match="nesting"):
        MatryoshkaClusterHead(8, (2, 4), 8)
    with pytest.raises(ValueError, match="mode"):
        MatryoshkaClusterHead(8, (4, 8), 8, mode="suffix")
    with pytest.raises(ValueError, match="rows"):
        RASA().fit(np.ones((5, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        RASA().fit(np.full((5, 3), np.nan), np.ones((5, 2)))
    with pytest.raises(ValueError, match="shape"):
        nested_cluster_loss([torch.ones(2, 3)], [torch.ones(2, 4)])
    with pytest.raises(ValueError, match="tau"):
        sinkhorn_targets(torch.ones(2, 2), tau=0.0)


# ----------------------------------------------------------------------------- Hydra / SimLAP
def _slow_simlap(z, y, y2, gate, tau):
    losses = []
    for i in range(len(y)):
        g = gate[i]
        a = F.normalize(g * z[i], dim=0)
        c = F.normalize(g * z, dim=1)
        s = (c @ a) / tau
        pos = [j for j in range(len(y)) if j != i and y[j] == y2[i]]
        neg = [j for j in range(len(y)) if y[j] not in (y[i], y2[i])]
        if not pos:
            continue
        terms = [torch.log(torch.exp(s[p]) + torch.exp(s[neg]).sum()) - s[p] for p in pos]
        losses.append(torch.stack(terms).mean())
    return torch.stack(losses).mean()


def test_simlap_loss_matches_reference_and_supcon():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(10, 6, generator=gen, dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 0, 1])
    y2 = torch.tensor([1, 2, 0, 3, 3, 0, 1, 2, 2, 1])
    gate = torch.rand(10, 6, generator=gen, dtype=torch.float64)
    assert torch.allclose(gated_multipositive_info_nce(z, y, y2, gate, 0.2), _slow_simlap(z, y, y2, gate, 0.2))
    # no gate, y2 = y1 and two samples per class: SupCon / NT-Xent
    yy = torch.tensor([0, 0, 1, 1, 2, 2])
    got = gated_multipositive_info_nce(z[:6], yy, yy, torch.ones(6, 6, dtype=torch.float64), 0.1)
    assert torch.allclose(got, supcon_loss(z[:6], yy, 0.1))


def test_pair_gate_symmetric_and_in_unit_interval():
    torch.manual_seed(0)
    for fuse in ("mean", "product"):
        gate = PairGate(5, 7, embed_dim=4, hidden=8, fuse=fuse)
        y1, y2 = torch.tensor([0, 1, 4, 3]), torch.tensor([2, 1, 0, 4])
        g = gate(y1, y2)
        assert g.shape == (4, 7) and bool(((g > 0) & (g < 1)).all())
        assert torch.allclose(g, gate(y2, y1))


def _factor_data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    na, nb, bd = 4, 4, 6
    A, B = 2 * rng.standard_normal((na, bd)), 2 * rng.standard_normal((nb, bd))
    a, b = rng.integers(0, na, n), rng.integers(0, nb, n)
    X = np.hstack([A[a], B[b], np.zeros((n, bd))]) + 0.5 * rng.standard_normal((n, 3 * bd))
    ca, cb = np.arange(na * nb) // nb, np.arange(na * nb) % nb
    pairs = (ca[:, None] == ca[None, :]) & (cb[:, None] != cb[None, :])  # partners share factor a only
    return X, a * nb + b, pairs, bd


def test_simlap_gate_selects_planted_shared_factor():
    X, y, pairs, bd = _factor_data(800, 0)
    m = SimLAP(hidden=(), n_epochs=12, batch_size=200, lr=3e-3, random_state=0).fit(X, y, pairs)
    classes = np.arange(16)
    partners = np.array([np.flatnonzero(pairs[c])[0] for c in classes])
    g = m.gate(classes, partners)
    shared, other, noise = g[:, :bd].mean(), g[:, bd:2 * bd].mean(), g[:, 2 * bd:].mean()
    assert shared > 1.3 * other and shared > 2 * noise


def test_simlap_bad_input():
    X, y, pairs, _ = _factor_data(200, 0)
    with pytest.raises(ValueError, match="pairs"):
        SimLAP(hidden=(), n_epochs=1).fit(X, y, pairs[:3])
    empty = pairs.copy()
    empty[2] = False
    with pytest.raises(ValueError, match="partner"):
        SimLAP(hidden=(), n_epochs=1).fit(X, y, empty)
    gate = PairGate(3, 2)
    with pytest.raises(ValueError, match="outside"):
        gate(torch.tensor([0, 3]), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="integer"):
        gate(torch.tensor([0.0, 1.0]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="positive"):
        gated_multipositive_info_nce(torch.ones(2, 3), torch.tensor([0, 1]), torch.tensor([2, 2]), None)
    m = SimLAP(hidden=(), n_epochs=1, batch_size=100, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="labels seen"):
        m.gate([0], [99])


# ----------------------------------------------------------------------------- HypCD
def test_hybrid_similarity_limits_and_supcon_equivalence():
    gen = torch.Generator().manual_seed(0)
    x = 0.3 * torch.randn(6, 4, generator=gen, dtype=torch.float64)
    cos = F.normalize(x, dim=1) @ F.normalize(x, dim=1).T
    assert torch.allclose(hybrid_similarity(x, 1.0, 0.0), cos)
    # alpha = 1: minus the Poincare distance, hand-checked on the pair (0, x1)
    x[0] = 0.0
    d01 = 2 * torch.atanh(x[1].norm())  # distance from the origin for c = 1
    assert torch.allclose(-hybrid_similarity(x, 1.0, 1.0)[0, 1], d01)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    z = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    zn = F.normalize(z, dim=1)
    assert torch.allclose(similarity_supcon(zn @ zn.T, labels, 0.1), supcon_loss(z, labels, 0.1))


def test_ss_kmeans_and_gcd_accuracy():
    rng = np.random.default_rng(0)
    centers = 10 * np.eye(4)
    y = np.repeat(np.arange(4), 30)
    X = centers[y] + rng.standard_normal((120, 4))
    y_partial = np.where((y < 2) & (np.arange(120) % 2 == 0), y, -1)
    labels = ss_kmeans(X, y_partial, 4, random_state=0)
    assert np.array_equal(labels[y_partial >= 0], y_partial[y_partial >= 0])
    unl = y_partial < 0
    assert gcd_accuracy(y[unl], labels[unl], [0, 1]) == {"all": 1.0, "old": 1.0, "new": 1.0}
    # hand case: predicted cluster 5 matches class 1, cluster 7 class 2; one of three new rows is wrong
    acc = gcd_accuracy([0, 0, 1, 1, 2], [3, 3, 5, 7, 7], old_classes=[0])
    assert acc["old"] == 1.0 and acc["new"] == pytest.approx(2 / 3) and acc["all"] == pytest.approx(4 / 5)


def test_hierarchical_blobs_siblings_are_closest():
    X, y = make_hierarchical_blobs(50, 3, 16, noise=0.1, random_state=0)
    means = np.stack([X[y == k].mean(0) for k in range(8)])
    dist = np.linalg.norm(means[:, None] - means[None], axis=2) + np.diag(np.full(8, np.inf))
    assert np.array_equal(dist.argmin(1), np.arange(8) ^ 1)


def _gcd_data(seed: int):
    X, y = make_hierarchical_blobs(40, 3, 16, noise=1.5, random_state=seed)
    old = np.array([0, 2, 4, 6])  # every new class has an old sibling
    lab = np.isin(y, old) & (np.random.default_rng(seed).random(y.size) < 0.5)
    return X, y, np.where(lab, y, -1), old, lab


def test_hypcd_discovers_new_categories():
    X, y, y_partial, old, lab = _gcd_data(0)
    acc = {}
    for geometry in ("hyperbolic", "euclidean"):
        m = HyperbolicCategoryDiscovery(8, geometry=geometry, n_epochs=15, random_state=0).fit(X, y_partial)
        acc[geometry] = gcd_accuracy(y[~lab], m.labels_[~lab], old)
    # 8 categories: chance is 1/8; the hyperbolic model must find the new ones well above it
    assert acc["hyperbolic"]["new"] >= 0.6 and acc["hyperbolic"]["all"] >= 0.7
    assert acc["hyperbolic"]["all"] >= acc["euclidean"]["all"] - 0.05


def test_hypcd_fit_predict_passes_the_partial_labels():
    # ClusterMixin.fit_predict(X, y) drops y, so it used to fail with "fit() missing 'y'"
    X, _, y_partial, _, _ = _gcd_data(0)
    est = HyperbolicCategoryDiscovery(8, dim=4, hidden=(8,), n_epochs=2, random_state=0)
    labels = est.fit_predict(X, y_partial)
    np.testing.assert_array_equal(labels, est.labels_)
    np.testing.assert_array_equal(labels, HyperbolicCategoryDiscovery(8, dim=4, hidden=(8,), n_epochs=2,
                                                                      random_state=0).fit(X, y_partial).labels_)


def test_hypcd_bad_input():
    X = np.random.default_rng(0).standard_normal((10, 3))
    with pytest.raises(ValueError, match="unlabelled"):
        HyperbolicCategoryDiscovery(2).fit(X, np.arange(10) % 2)
    with pytest.raises(ValueError, match="n_clusters"):
        HyperbolicCategoryDiscovery(2).fit(X, np.array([0, 1, 2, -1, -1, -1, -1, -1, -1, -1]))
    with pytest.raises(ValueError, match="geometry"):
        HyperbolicCategoryDiscovery(2, geometry="spherical").fit(X, np.array([0, 1] + [-1] * 8))
    with pytest.raises(ValueError, match="y_partial"):
        ss_kmeans(X, np.full(10, -2), 2)


# ----------------------------------------------------------------------------- DSL
def test_attention_gate_range_margin_loss_and_taylor_scores():
    torch.manual_seed(0)
    out, att = SpatialAttentionGate(16)(torch.randn(3, 16, 6, 6))
    assert out.shape == (3, 16, 6, 6) and bool(((att >= 0) & (att <= 1)).all())
    emb = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    labels = torch.tensor([0, 0, 1])
    beta = torch.tensor(1.2)
    # pairs: (0,1) pos d=1 -> relu(0.2 + (1 - 1.2)) = 0; (0,2) neg d=2 -> relu(0.2 - 0.8) = 0;
    # (1,2) neg d=sqrt5 -> 0: no active pair -> 0; with beta = 2.5 the negatives are active
    assert float(margin_loss(emb, labels, beta)) == 0.0
    got = float(margin_loss(emb, labels, torch.tensor(2.5)))
    assert got == pytest.approx(((0.2 - 0.5) * 0 + (0.2 + 0.5) + (0.2 + 2.5 - 5**0.5)) / 2)
    a = torch.randn(8, 5)
    w = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0])
    a.requires_grad_(True)
    (a * w).sum().backward()
    s = (a.detach() * w).mean(0).abs()
    s = s / s.norm()
    assert torch.allclose(taylor_scores(a.detach(), a.grad), (s - s.min()) / (s.max() - s.min()))


def test_split_and_growth_rules():
    learners = [np.arange(0, 12), np.arange(12, 32)]
    scores = np.linspace(0, 1, 20)
    split = split_newest(learners, scores, 0.5)
    assert len(split) == 3
    allidx = np.concatenate(split)
    assert np.array_equal(np.sort(allidx), np.arange(32))  # disjoint and covering
    assert split_newest(learners, np.full(20, 0.1), 0.5) is None  # too few neurons stay
    assert split_newest([np.arange(8)], np.linspace(0, 1, 8), 0.5) is None  # learner too small
    g = PlateauGrowth(patience=3)
    fired = [e for e, s in enumerate([0.1, 0.3, 0.3, 0.2, 0.3, 0.3, 0.3, 0.3, 0.4]) if g.update(e, s)]
    assert fired == [4, 7]
    with pytest.raises(ValueError, match="scores"):
        split_newest(learners, np.ones(3))


def _planted_images(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    patterns = 1.5 * np.random.default_rng(99).standard_normal((4, 3, 3))
    X = 0.3 * rng.standard_normal((n, 8, 8))
    X[:, 5:8, 5:8] += patterns[y]  # the class lives in the bottom-right corner
    X[:, 0:4, 0:4] += 1.5 * rng.standard_normal((n, 4, 4))  # strong random distractor top-left
    return X, y


def test_dsl_attention_focuses_on_informative_region_and_learners_grow():
    X, y = _planted_images(400, 0)
    Xt, yt = _planted_images(200, 1)
    m = DynamicSubspaceLearners(dim=32, width=16, patience=2, n_epochs=30, random_state=0).fit(X, y)
    assert len(m.learners_) >= 2 and m.history_[0]["K"] == 1  # grown from one learner on an NMI plateau
    knn = KNeighborsClassifier(1).fit(m.transform(X), y)
    assert knn.score(m.transform(Xt), yt) >= 0.9
    att = m.attention(Xt)
    assert att[:, 5:8, 5:8].mean() > att[:, 0:4, 0:4].mean()
    assert np.array_equal(np.sort(np.concatenate(m.learners_)), np.arange(32))
    emb = m.transform(Xt)
    for idx in m.learners_:
        assert np.allclose(np.linalg.norm(emb[:, idx], axis=1), 1.0)


def test_dsl_bad_input():
    with pytest.raises(ValueError, match="images"):
        DynamicSubspaceLearners().fit(np.ones((4, 9)), np.arange(4) % 2)
    with pytest.raises(ValueError, match="classes"):
        DynamicSubspaceLearners(n_epochs=1).fit(np.ones((4, 3, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="channels"):
        SpatialAttentionGate(0)


# ----------------------------------------------------------------------------- devices
@cuda
def test_models_run_on_cuda():
    X, y = _factor_data(100, 0)[:2]
    GrassmannClassifier(subspace_dim=2, hidden=(8,), n_epochs=1, device="cuda", random_state=0).fit(X, y).predict(X)
    SimLAP(dim=4, hidden=(8,), n_epochs=1, batch_size=50, device="cuda", random_state=0).fit(X, y).transform(X)
    MatryoshkaClustering((2, 4), n_prototypes=4, hidden=8, n_epochs=1, batch_size=50, device="cuda",
                         random_state=0).fit(X).transform(X)
    Xh, yh = make_hierarchical_blobs(10, 2, 6, random_state=0)
    HyperbolicCategoryDiscovery(4, dim=4, hidden=(8,), n_epochs=1, batch_size=20, device="cuda",
                                random_state=0).fit(Xh, np.where(yh < 2, yh, -1))
    Xi, yi = _planted_images(40, 0)
    DynamicSubspaceLearners(dim=8, width=4, n_epochs=1, device="cuda", random_state=0).fit(Xi, yi).transform(Xi)
