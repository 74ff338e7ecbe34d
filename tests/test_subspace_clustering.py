"""Subspace clustering (LSR, LIHFSS deep subspace clustering, MLC, concatenated-SVD clustering) and SubspaceAD.

Targets of issue 10: union-of-subspaces data clustered with ACC >= 0.95; on digits every clustering
method beats the raw-pixel LSR baseline (ACC ~0.60); SubspaceAD mean AUROC >= 0.95 on 10-shot digits.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from graphrec.datasets.generators import make_union_of_subspaces
from graphrec.metrics import clustering_accuracy, nmi, roc_auc
from graphrec.subspace.anomaly import SubspaceAD
from graphrec.subspace.concat_svd import ErrorConstrainedMatrixClustering, concat_error, concat_error_bounds
from graphrec.subspace.deep_sc import (
    DeepSubspaceClustering,
    LSRSubspaceClustering,
    RelativeErrorStopper,
    affinity_spectral_clustering,
    keep_topk_per_column,
    layerwise_self_expression_loss,
    lsr_coefficients,
    structured_l1,
)
from graphrec.subspace.mlc import MLC, mlc_loss, partition_rate_reduction, tcr_loss

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(scope="module")
def union():
    """10 subspaces of dim 4 in R^30, 50 points each, noise 0.01 (the notes' linear sanity case)."""
    return make_union_of_subspaces(500, 10, 30, 4, noise=0.01, random_state=0)


@pytest.fixture(scope="module")
def small_union():
    """3 subspaces of dim 3 in R^15, 150 points, noise 0.01 (default-suite size)."""
    return make_union_of_subspaces(150, 3, 15, 3, noise=0.01, random_state=1)


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


@pytest.fixture(scope="module")
def lsr_digits(digits):
    X, y = digits
    labels = LSRSubspaceClustering(n_clusters=10, lam=1.0, k_keep=10, random_state=0).fit_predict(X)
    return clustering_accuracy(y, labels), nmi(y, labels)


# ---------------------------------------------------------------- self-expression pieces


def test_lsr_zero_diagonal_matches_per_column_ridge():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 5))
    lam = 0.3
    C = lsr_coefficients(torch.as_tensor(X), lam).numpy()
    for j in range(12):  # slow reference: ridge of sample j on all the others
        others = np.delete(np.arange(12), j)
        A = X[others].T
        ref = np.linalg.solve(A.T @ A + lam * np.eye(11), A.T @ X[j])
        np.testing.assert_allclose(C[others, j], ref, atol=1e-10)
        assert C[j, j] == 0.0


def test_lsr_free_diagonal_is_ridge_solution():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((8, 3))
    C = lsr_coefficients(torch.as_tensor(X), 2.0, zero_diagonal=False).numpy()
    G = X @ X.T
    np.testing.assert_allclose((G + 2.0 * np.eye(8)) @ C, G, atol=1e-10)


def test_keep_topk_per_column_keeps_largest_magnitudes():
    rng = np.random.default_rng(2)
    C = rng.standard_normal((9, 7))
    kept = keep_topk_per_column(torch.as_tensor(C), 3).numpy()
    assert ((kept != 0).sum(0) == 3).all()
    for j in range(7):
        top = set(np.argsort(-np.abs(C[:, j]))[:3])
        assert set(np.flatnonzero(kept[:, j])) == top
        np.testing.assert_array_equal(kept[list(top), j], C[list(top), j])


def test_structured_l1_hand_computed():
    C = torch.tensor([[0.0, 1.0, -2.0], [3.0, 0.0, 4.0], [-5.0, 6.0, 0.0]])
    # labels [0, 0, 1]: cross pairs (0,2), (1,2), (2,0), (2,1) -> 2 + 4 + 5 + 6
    assert float(structured_l1(C, [0, 0, 1])) == 17.0
    with pytest.raises(ValueError, match="labels"):
        structured_l1(C, [0, 1])


def test_layerwise_self_expression_loss_cases():
    rng = np.random.default_rng(3)
    h1, h2 = torch.as_tensor(rng.standard_normal((6, 3))), torch.as_tensor(rng.standard_normal((6, 2)))
    zero = torch.zeros(6, 6, dtype=torch.float64)
    assert float(layerwise_self_expression_loss([h1, h2], zero)) == pytest.approx(2.0)  # each layer: ||H||^2/||H||^2
    # rows 3..5 duplicate rows 0..2: C^T H = H exactly with C swapping the copies
    h = torch.cat([h1[:3], h1[:3]])
    swap = torch.zeros(6, 6, dtype=torch.float64)
    for i in range(3):
        swap[i, i + 3] = swap[i + 3, i] = 1.0
    assert float(layerwise_self_expression_loss([h], swap)) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        layerwise_self_expression_loss([], zero)


def test_relative_error_stopper():
    stop = RelativeErrorStopper(tol=0.1, patience=1)
    assert [stop.step(v) for v in (1.0, 0.5, 0.46)] == [False, False, True]  # 0.04/0.5 = 0.08 < 0.1
    with pytest.raises(ValueError, match="loss"):
        RelativeErrorStopper().step(float("nan"))
    with pytest.raises(ValueError, match="tol"):
        RelativeErrorStopper(tol=-1.0)


def test_affinity_spectral_clustering_block_diagonal_and_errors():
    blocks = np.kron(np.eye(3), np.ones((10, 10)))
    labels = affinity_spectral_clustering(blocks, 3, random_state=0)
    assert clustering_accuracy(np.repeat(np.arange(3), 10), labels) == 1.0
    with pytest.raises(ValueError, match="symmetric"):
        affinity_spectral_clustering(np.triu(blocks), 3)
    with pytest.raises(ValueError, match="non-negative"):
        affinity_spectral_clustering(-blocks, 3)
    with pytest.raises(ValueError, match="n_clusters"):
        affinity_spectral_clustering(blocks, 31)


# ---------------------------------------------------------------- union of subspaces (ACC >= 0.95)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lsr_on_union_of_subspaces(union, seed):
    """The top-10 LSR graph of this set has 10 components (eigenvalue 1 ten times); a single-vector
    Lanczos solver found only some of them (ACC 0.77-0.83 for these seeds), the dense solver finds all."""
    X, y = union
    est = LSRSubspaceClustering(n_clusters=10, random_state=seed).fit(X)
    assert clustering_accuracy(y, est.labels_) >= 0.95


def test_affinity_spectral_clustering_block_solver_matches_dense(union, monkeypatch):
    """Above the dense-solver size the block eigensolver (LOBPCG) must find the same repeated eigenvalue."""
    import graphrec.subspace.deep_sc as deep_sc

    X, y = union
    affinity = LSRSubspaceClustering(n_clusters=10, random_state=0).fit(X).affinity_
    monkeypatch.setattr(deep_sc, "_DENSE_EIGH_MAX", 10)
    for seed in range(3):
        assert clustering_accuracy(y, affinity_spectral_clustering(affinity, 10, random_state=seed)) >= 0.95


def test_deep_subspace_clustering_small_union_and_invariants(small_union):
    X, y = small_union
    est = DeepSubspaceClustering(n_clusters=3, hidden_dims=(64, 16), k_keep=5, tol=1e-2, max_epochs=300,
                                 random_state=0).fit(X)
    assert clustering_accuracy(y, est.labels_) >= 0.95
    # invariants: diag(C) = 0, at most k_keep kept per column, symmetric affinity
    assert np.all(np.diag(est.coefficient_) == 0)
    assert ((est.affinity_ != 0).sum(0) <= 2 * est.k_keep).all()
    assert abs(est.affinity_ - est.affinity_.T).max() < 1e-12
    # the relative-error stop ended pre-training, and every self-expression round, before the epoch cap
    assert est.stage_epochs_["pretrain"] < est.max_epochs
    assert len(est.loss_history_["self_expression"]) < est.stage_epochs_["self_expression"] * est.max_epochs


@pytest.mark.slow
def test_deep_subspace_clustering_on_union_of_subspaces(union):
    X, y = union
    assert clustering_accuracy(y, DeepSubspaceClustering(n_clusters=10, random_state=0).fit_predict(X)) >= 0.95


def test_deep_subspace_clustering_rejects_bad_hidden_dims():
    X = np.random.default_rng(0).standard_normal((20, 4))
    with pytest.raises(ValueError, match="hidden_dims"):
        DeepSubspaceClustering(n_clusters=2, hidden_dims=()).fit(X)
    with pytest.raises(ValueError, match="hidden_dims"):
        DeepSubspaceClustering(n_clusters=2, hidden_dims=(4, 0)).fit(X)


@pytest.mark.parametrize("make", [
    lambda: DeepSubspaceClustering(n_clusters=3, hidden_dims=(8, 4), k_keep=5, max_epochs=2, n_rounds=1, random_state=0),
    lambda: MLC(n_clusters=3, feature_dim=4, hidden_dim=8, eta=0.1, pretrain_epochs=1, epochs=1, random_state=0),
], ids=["deep_sc", "mlc"])
def test_seeded_fit_leaves_the_global_torch_rng_alone(small_union, make):
    # the seeded inits said they did not touch the global RNG, but building the nn.Linear layers did
    X = small_union[0][:60]
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make().fit(X)
    torch.testing.assert_close(torch.rand(3), expected, rtol=0, atol=0)


def test_mlc_small_union(small_union):
    X, y = small_union
    est = MLC(n_clusters=3, random_state=0).fit(X)
    assert clustering_accuracy(y, est.labels_) >= 0.9
    np.testing.assert_allclose(est.membership_.sum(0), 1.0, atol=1e-6)
    np.testing.assert_allclose(est.membership_.sum(1), 1.0, atol=1e-6)
    # eta selection: every grid value scored, the best kept, and it is the single-eta fit of that value
    assert set(est.selection_scores_) == {0.025, 0.05, 0.1, 0.2}
    assert est.selection_scores_[est.eta_] == max(est.selection_scores_.values())
    single = MLC(n_clusters=3, eta=est.eta_, random_state=0).fit(X)
    np.testing.assert_array_equal(single.labels_, est.labels_)
    assert single.selection_scores_ == {est.eta_: est.selection_scores_[est.eta_]}


def test_partition_rate_reduction_matches_mcr2_by_hand():
    rng = np.random.default_rng(5)
    n, d, eps = 10, 3, 0.5
    x = rng.standard_normal((n, d))
    labels = np.array([2, 2, 7, 7, 7, 2, 9, 9, 9, 9])
    ld = lambda m: np.linalg.slogdet(m)[1]  # noqa: E731
    r = 0.5 * ld(np.eye(d) + d / (n * eps**2) * x.T @ x)
    rc = sum((np.sum(labels == c) / n) * 0.5 * ld(np.eye(d) + d / (np.sum(labels == c) * eps**2)
                                                   * x[labels == c].T @ x[labels == c]) for c in (2, 7, 9))
    assert partition_rate_reduction(torch.as_tensor(x), labels, eps) == pytest.approx(r - rc, abs=1e-10)
    # planted subspaces code cheaper apart than a random split of the same points
    X, y = make_union_of_subspaces(120, 3, 12, 2, noise=0.0, random_state=0)
    xt = torch.as_tensor(X / np.linalg.norm(X, axis=1, keepdims=True))
    assert partition_rate_reduction(xt, y) > partition_rate_reduction(xt, rng.permutation(y)) + 1.0
    with pytest.raises(ValueError, match="labels must have shape"):
        partition_rate_reduction(xt, y[:-1])
    with pytest.raises(ValueError, match="x must be 2-dimensional"):
        partition_rate_reduction(xt[0], y[:1])


def test_mlc_bad_eta(small_union):
    X, _ = small_union
    for bad in ((), "fast", None):
        with pytest.raises(TypeError, match="eta"):
            MLC(n_clusters=3, eta=bad).fit(X)
    for bad in (0.0, (0.05, -0.1)):
        with pytest.raises(ValueError, match="eta"):
            MLC(n_clusters=3, eta=bad).fit(X)


@pytest.mark.slow
def test_mlc_on_union_of_subspaces(union):
    X, y = union
    assert clustering_accuracy(y, MLC(n_clusters=10, random_state=0).fit_predict(X)) >= 0.95


def test_concat_svd_clustering_on_union_of_subspaces(union):
    X, y = union
    est = ErrorConstrainedMatrixClustering(rank=4, eps=0.05, method="exact", n_clusters=10).fit(X)
    assert clustering_accuracy(y, est.labels_) >= 0.95


def test_concat_svd_incremental_small_union(small_union):
    X, y = small_union
    est = ErrorConstrainedMatrixClustering(rank=3, eps=0.05, method="incremental").fit(X)
    assert est.n_clusters_ == 3 and (est.cluster_errors_ <= 0.05).all()
    assert clustering_accuracy(y, est.labels_) >= 0.95


def _unexplained(X, labels, r):
    """Slow reference: total rank-r unexplained energy of the clusters of the rows of X."""
    total = 0.0
    for c in np.unique(labels):
        s = np.linalg.svd(X[labels == c], compute_uv=False)
        total += float(np.sum(s[r:] ** 2))
    return total


def test_concat_svd_k_subspaces_refinement_lowers_unexplained_energy():
    X, y = make_union_of_subspaces(240, 4, 12, 3, noise=0.15, random_state=3)
    greedy = ErrorConstrainedMatrixClustering(rank=3, eps=0.05, method="incremental", n_clusters=4, refine_iter=0).fit(X)
    refined = ErrorConstrainedMatrixClustering(rank=3, eps=0.05, method="incremental", n_clusters=4).fit(X)
    assert greedy.n_refine_iter_ == 0 < refined.n_refine_iter_ <= refined.refine_iter
    assert _unexplained(X, refined.labels_, 3) < _unexplained(X, greedy.labels_, 3)
    assert clustering_accuracy(y, refined.labels_) >= clustering_accuracy(y, greedy.labels_)
    assert refined.n_clusters_ == 4 and np.unique(refined.labels_).size == 4
    np.testing.assert_allclose(  # cluster_errors_ describe the refined clusters
        refined.cluster_errors_,
        [np.sqrt(_unexplained(X[refined.labels_ == c], np.zeros((refined.labels_ == c).sum()), 3)
                 / np.sum(X[refined.labels_ == c] ** 2)) for c in range(4)], rtol=1e-8)
    with pytest.raises(ValueError, match="refine_iter"):
        ErrorConstrainedMatrixClustering(rank=3, n_clusters=4, refine_iter=-1).fit(X)


def test_molrg_centering_is_a_shift():
    """center=True on X + c equals center=False on the centred X, shifted back by c (predict and denoise too)."""
    from graphrec.subspace.diffusion import DiffusionSubspaceClustering

    X, _ = make_union_of_subspaces(200, 2, 8, 2, noise=0.01, random_state=4)
    X = X - X.mean(0)
    c = np.linspace(1.0, 3.0, 8)
    kw = dict(n_subspaces=2, subspace_dim=2, n_epochs=5, n_init=1, random_state=0)
    ref = DiffusionSubspaceClustering(**kw).fit(X)
    shifted = DiffusionSubspaceClustering(**kw, center=True).fit(X + c)
    np.testing.assert_allclose(shifted.mean_, c, atol=1e-12)
    np.testing.assert_allclose(shifted.bases_, ref.bases_, atol=1e-5)
    np.testing.assert_array_equal(shifted.predict(X[:20] + c), ref.predict(X[:20]))
    t, s = 0.2, np.cos(np.pi * 0.2 / 2)
    x_t = X[:5] + 0.1
    np.testing.assert_allclose(shifted.denoise(x_t + s * c, t), c + ref.denoise(x_t, t), atol=1e-4)
    with pytest.raises(TypeError, match="center"):
        DiffusionSubspaceClustering(**{**kw, "n_epochs": 1}, center="yes").fit(X)


# ---------------------------------------------------------------- MLC objective


def test_mlc_loss_block_uniform_membership_equals_mcr2():
    rng = np.random.default_rng(4)
    n, d, eps = 12, 4, 0.5
    z = rng.standard_normal((n, d))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    y = np.repeat([0, 1, 2], [3, 4, 5])
    gamma = (y[:, None] == y[None, :]) / np.bincount(y)[y][None, :]  # 1/n_c inside each class
    ld = lambda m: np.linalg.slogdet(m)[1]  # noqa: E731
    r = 0.5 * ld(np.eye(d) + d / (n * eps**2) * z.T @ z)
    rc = sum(
        (np.sum(y == c) / n) * 0.5 * ld(np.eye(d) + d / (np.sum(y == c) * eps**2) * z[y == c].T @ z[y == c])
        for c in range(3)
    )
    assert float(mlc_loss(torch.as_tensor(z), torch.as_tensor(gamma), eps)) == pytest.approx(-r + rc, abs=1e-10)


def test_tcr_loss_identical_views():
    z = torch.eye(3, dtype=torch.float64)
    # R = 1/2 * 3 * log(1 + 3 / (3 * 0.25)) ; agreement = 1
    assert float(tcr_loss([z, z], eps=0.5, lam_tcr=2.0)) == pytest.approx(-1.5 * np.log(5.0) - 2.0)
    with pytest.raises(ValueError, match="2 views"):
        tcr_loss([z])


# ---------------------------------------------------------------- concatenated SVD


def _shared_blocks(rng, k):
    shared = rng.standard_normal((64, 5))
    return [shared @ rng.standard_normal((5, 12)) + 0.3 * rng.standard_normal((64, 12)) for _ in range(k)]


def test_concat_bounds_are_valid_and_incremental_is_close():
    rng = np.random.default_rng(5)
    violations, rel = 0, []
    for _ in range(100):
        bounds = concat_error_bounds(_shared_blocks(rng, int(rng.integers(2, 6))), 10)
        violations += sum(bounds[k] < bounds["exact"] - 1e-12 for k in ("weyl", "residual", "incremental"))
        rel.append(abs(bounds["incremental"] - bounds["exact"]) / bounds["exact"])
    assert violations == 0
    assert max(rel) <= 0.10


def test_concat_error_hand_computed():
    blocks = [np.diag([3.0, 0.0])[:, :1], np.array([[0.0], [4.0]])]  # M = diag(3, 4)
    assert concat_error(blocks, 1) == pytest.approx(3.0 / 5.0)
    assert concat_error(blocks, 2) == pytest.approx(0.0)


def test_error_constrained_clustering_meets_eps_and_residual_beats_weyl():
    """Blocks of rank 2 in independent directions: the residual bound sees that pairs fit rank 8, max-norm does not."""
    rng = np.random.default_rng(6)
    blocks = [rng.standard_normal((64, 2)) @ rng.standard_normal((2, 12)) + 0.01 * rng.standard_normal((64, 12))
              for _ in range(16)]
    res = ErrorConstrainedMatrixClustering(rank=8, eps=0.2, method="residual").fit(blocks)
    weyl = ErrorConstrainedMatrixClustering(rank=8, eps=0.2, method="weyl").fit(blocks)
    for est in (res, weyl):
        for c in range(est.n_clusters_):
            members = [blocks[i] for i in np.flatnonzero(est.labels_ == c)]
            assert concat_error(members, 8) <= 0.2
    assert res.n_clusters_ <= 10 < weyl.n_clusters_ == 16


# ---------------------------------------------------------------- SubspaceAD


def test_subspace_ad_residual_and_energy_rule():
    rng = np.random.default_rng(7)
    F = rng.standard_normal((200, 6)) * np.array([5.0, 3.0, 1.0, 0.1, 0.05, 0.01]) + 2.0
    ad = SubspaceAD(energy=0.99).fit(F)
    var = np.sort(np.linalg.eigvalsh(np.cov(F.T)))[::-1]
    expected = int(np.argmax(np.cumsum(var) / var.sum() >= 0.99)) + 1
    assert ad.n_components_ == expected
    point = ad.mean_ + ad.components_ @ np.array([1.0, -2.0, 0.5][: ad.n_components_])
    assert ad.anomaly_score(point[None])[0] < 1e-10
    off = ad.mean_ + np.linalg.svd(np.eye(6) - ad.components_ @ ad.components_.T)[0][:, 0]
    assert ad.anomaly_score(off[None])[0] == pytest.approx(1.0)


def test_subspace_ad_patch_pooling_hand_computed():
    normal = np.zeros((5, 3))
    normal[:, 0] = np.arange(5.0)  # mean (2, 0, 0), one axis e_1
    ad = SubspaceAD(n_components=1, pooling="max").fit(normal)
    patches = np.zeros((1, 4, 3))
    patches[0, :, 1] = [1.0, 2.0, 3.0, 0.0]  # squared residuals 1, 4, 9, 0
    np.testing.assert_allclose(ad.patch_scores(patches), [[1.0, 4.0, 9.0, 0.0]])
    assert ad.anomaly_score(patches)[0] == pytest.approx(9.0)
    assert ad.set_params(pooling="mean").anomaly_score(patches)[0] == pytest.approx(3.5)
    assert ad.set_params(pooling="top", top_frac=0.5).anomaly_score(patches)[0] == pytest.approx(6.5)
    with pytest.raises(ValueError, match="pooling"):   # set after fit: checked where it acts
        ad.set_params(pooling="median").anomaly_score(patches)
    ad.set_params(pooling="top")
    with pytest.raises(ValueError, match="3 features"):
        ad.anomaly_score(np.ones((2, 4)))


def test_subspace_ad_ten_shot_digits(digits):
    """Each class in turn is normal: 10 training samples, test on all other samples."""
    X, y = digits
    rng = np.random.default_rng(0)
    aurocs = []
    for c in range(10):
        train = rng.choice(np.flatnonzero(y == c), 10, replace=False)
        test = np.setdiff1d(np.arange(len(y)), train)
        scores = SubspaceAD(energy=0.99).fit(X[train]).anomaly_score(X[test])
        aurocs.append(roc_auc(y[test] != c, scores))
    assert np.mean(aurocs) >= 0.95
    assert np.min(aurocs) >= 0.90


# ---------------------------------------------------------------- digits: beat the raw-pixel LSR baseline


def test_lsr_baseline_on_digits_reproduces_notes(lsr_digits):
    acc, score = lsr_digits
    assert 0.55 <= acc <= 0.66 and 0.68 <= score <= 0.78  # notes: ACC 0.60 / NMI 0.73


@pytest.mark.slow
def test_deep_subspace_clustering_beats_lsr_on_digits(digits, lsr_digits):
    X, y = digits
    labels = DeepSubspaceClustering(n_clusters=10, random_state=0).fit_predict(X)
    assert clustering_accuracy(y, labels) > lsr_digits[0]


@pytest.mark.slow
def test_mlc_beats_lsr_on_digits(digits, lsr_digits):
    X, y = digits
    labels = MLC(n_clusters=10, random_state=0).fit_predict(X)
    assert clustering_accuracy(y, labels) > lsr_digits[0]


@pytest.mark.slow
def test_concat_svd_clustering_beats_lsr_on_digits(digits, lsr_digits):
    X, y = digits
    labels = ErrorConstrainedMatrixClustering(rank=4, eps=0.05, method="incremental", n_clusters=10).fit_predict(X)
    assert clustering_accuracy(y, labels) > lsr_digits[0]


@pytest.mark.slow
def test_molrg_diffusion_matches_lsr_on_digits(digits, lsr_digits):
    """Mean ACC over seeds 0-2 within .03 of the LSR baseline. Over 10 seeds it is .619 +- .044 against LSR's .609
    (BENCHMARKS.md). That is on par, not better: seeds 0-2 gave .633 on one CPU and .609 on another. The uncentred
    model's .511 fails."""
    from graphrec.subspace.diffusion import DiffusionSubspaceClustering

    X, y = digits
    accs = [clustering_accuracy(y, DiffusionSubspaceClustering(10, 4, center=True, random_state=seed).fit_predict(X))
            for seed in range(3)]
    assert np.mean(accs) > lsr_digits[0] - 0.03, accs


# ---------------------------------------------------------------- bench task and device


def test_bench_subspace_task_runs_lsr_on_generated():
    from graphrec.bench import get_task

    task = get_task("subspace")
    assert {"lsr", "deep-sc", "mlc", "concat-svd", "molrg-diffusion"} <= set(task.methods)
    assert {"digits", "generated"} <= set(task.datasets)
    data = task.datasets["generated"][0]()
    assert task.methods["lsr"][0](data, 0, "cpu")["acc"] >= 0.95


@CUDA
def test_cuda_fits(union):
    X, y = union
    for est in (LSRSubspaceClustering(n_clusters=10, random_state=0, device="cuda"),
                DeepSubspaceClustering(n_clusters=10, max_epochs=5, random_state=0, device="cuda"),
                MLC(n_clusters=10, pretrain_epochs=1, epochs=1, random_state=0, device="cuda")):
        assert est.fit(X).labels_.shape == (500,)
    assert SubspaceAD(device="cuda").fit(X).anomaly_score(X).shape == (500,)
