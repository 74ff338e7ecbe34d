"""Measurements of issue 11 (part A): each recovers a planted answer on generated data.

Safety-subspace overlaps, convergent-learning neuron matching, linear-orthogonal factorisation,
Plato's-cave alignment, IsoCLIP projector decomposition and intrinsic dimension.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.metrics import adjusted_rand_score

from graphrec.analysis.alignment import CCAAligner, match_accuracy, procrustes_align, retrieval_topk
from graphrec.analysis.factorisation import (
    concept_means,
    concept_rank,
    cross_concept_orthogonality,
    factor_subspace_overlap,
    factorisation_scores,
    heldout_composition_error,
    linear_factorization_r2,
    min_dim_for_composition,
)
from graphrec.analysis.intrinsic_dim import (
    FastfoodProjection,
    IntrinsicDimension,
    RandomSubspaceModel,
    fwht,
    intrinsic_dimension,
)
from graphrec.analysis.isoclip import inter_modal_operator, iso_projectors, map_at_r, spectral_band_projectors
from graphrec.analysis.matching import (
    bipartite_match,
    mean_matched_correlation,
    semi_match,
    sparse_prediction,
    spectral_unit_groups,
    unit_correlation,
)
from graphrec.analysis.safety import (
    energy_basis,
    fine_tuning_overlaps,
    mode_subspace_overlap,
    mso_random_baseline,
    project_update,
    subspace_overlap,
    update_diagnostics,
)
from graphrec.base import NotFittedError
from graphrec.core import principal_angles

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _orth(rng: np.random.Generator, m: int, k: int) -> np.ndarray:
    return np.linalg.qr(rng.standard_normal((m, k)))[0]


# ---------------------------------------------------------------- safety subspaces (MSO)
def _planted_updates(rng, m=64, n=48, shared=5, private=5, noise=0.01):
    q = _orth(rng, m, shared + 2 * private)
    qa = q[:, : shared + private]
    qb = np.hstack([q[:, :shared], q[:, shared + private :]])
    a = 10 * qa @ _orth(rng, n, shared + private).T + noise * rng.standard_normal((m, n))
    b = 10 * qb @ _orth(rng, n, shared + private).T + noise * rng.standard_normal((m, n))
    return a, b


def test_mso_is_one_on_itself_symmetric_and_bounded():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((30, 20)), rng.standard_normal((30, 12))
    assert mode_subspace_overlap(a, a).overlap == pytest.approx(1.0, abs=1e-10)
    ab, ba = mode_subspace_overlap(a, b), mode_subspace_overlap(b, a)
    assert ab.overlap == pytest.approx(ba.overlap, abs=1e-12)
    assert 0.0 <= ab.overlap <= 1.0
    assert (ab.k_a, ab.k_b) == (ba.k_b, ba.k_a)


def test_mso_of_random_subspaces_matches_closed_form_baseline():
    rng = np.random.default_rng(1)
    d, k = 200, 10
    draws = [subspace_overlap(_orth(rng, d, k), _orth(rng, d, k)) for _ in range(200)]
    assert np.mean(draws) == pytest.approx(mso_random_baseline(k, k, d), rel=0.1)
    assert mso_random_baseline(k, k, d) == 0.05


def test_planted_half_shared_subspace_gives_mso_one_half():
    a, b = _planted_updates(np.random.default_rng(2))
    res = mode_subspace_overlap(a, b, energy=0.95)
    assert (res.k_a, res.k_b) == (10, 10)
    assert res.overlap == pytest.approx(0.5, abs=0.05)
    # five angles near 0 (the shared directions) and five near 90 degrees (the private ones)
    deg = np.degrees(res.angles.numpy())
    assert np.all(deg[5:] < 1.0) and np.all(deg[:5] > 85.0)


def test_planted_shared_update_subspace_found_by_fine_tuning_overlaps():
    rng = np.random.default_rng(3)
    m, n, k = 40, 30, 4
    shared = _orth(rng, m, k)
    base = {"layer.weight": rng.standard_normal((m, n)), "layer.bias": rng.standard_normal(m),
            "other.weight": rng.standard_normal((m, n))}
    aligned = {key: v.copy() for key, v in base.items()}
    aligned["layer.weight"] += shared @ (3 * rng.standard_normal((k, n))) + 1e-3 * rng.standard_normal((m, n))
    aligned["other.weight"] += rng.standard_normal((m, n))
    finetuned = {key: v.copy() for key, v in aligned.items()}
    finetuned["layer.weight"] += shared @ (3 * rng.standard_normal((k, n))) + 1e-3 * rng.standard_normal((m, n))
    finetuned["other.weight"] += rng.standard_normal((m, n))
    out = fine_tuning_overlaps(base, aligned, finetuned, energy=0.99)
    assert set(out) == {"layer.weight", "other.weight"}  # the bias is 1-d
    planted = out["layer.weight"]
    assert (planted.k_a, planted.k_b) == (k, k)
    assert np.degrees(float(planted.angles.max())) < 5.0
    assert planted.overlap > 0.99
    # independent dense updates overlap far less than the planted pair
    assert out["other.weight"].overlap < 0.95 * planted.overlap
    vb = energy_basis(aligned["layer.weight"] - base["layer.weight"], 0.99)
    assert np.degrees(float(principal_angles(vb, shared).max())) < 5.0


def test_project_update_splits_exactly_and_orthogonally():
    rng = np.random.default_rng(4)
    u, v = rng.standard_normal((20, 30)), rng.standard_normal((20, 30))
    same, orth = project_update(u, v, 0.25, "same"), project_update(u, v, 0.25, "orthogonal")
    assert torch.allclose(same + orth, torch.as_tensor(u), atol=1e-12)
    assert torch.allclose(project_update(u, v, 0.25, "opposite"), -same)
    basis = torch.linalg.svd(torch.as_tensor(v), full_matrices=False)[0][:, :5]  # round(0.25 * 20) = 5
    assert float((basis.T @ orth).abs().max()) < 1e-6
    diag = update_diagnostics(u, v, 1.0)
    assert diag["energy_kept"] == pytest.approx(1.0, abs=1e-12) and diag["cos_update_projection"] == pytest.approx(1.0)
    ref = float((u * v).sum() / np.linalg.norm(u) / np.linalg.norm(v))
    assert diag["cos_update_reference"] == pytest.approx(ref, abs=1e-12)


def test_safety_bad_inputs():
    z = np.zeros((4, 3))
    with pytest.raises(ValueError, match="all zeros"):
        energy_basis(z)
    with pytest.raises(ValueError, match="energy"):
        energy_basis(np.eye(3), energy=0.0)
    with pytest.raises(ValueError, match="same number of rows"):
        mode_subspace_overlap(np.eye(3), np.eye(4))
    with pytest.raises(ValueError, match="NaN"):
        mode_subspace_overlap(np.full((3, 3), np.nan), np.eye(3))
    with pytest.raises(ValueError, match="same shape"):
        project_update(np.eye(3), np.eye(4), 0.5)
    with pytest.raises(ValueError, match="mode"):
        project_update(np.eye(3), np.eye(3), 0.5, "sideways")
    with pytest.raises(ValueError, match="orthonormal"):
        subspace_overlap(np.ones((3, 1)), np.eye(3)[:, :1])
    with pytest.raises(ValueError, match="k_a"):
        mso_random_baseline(0, 2, 5)
    with pytest.raises(ValueError, match="same keys"):
        fine_tuning_overlaps({"w": np.eye(2)}, {"v": np.eye(2)}, {"w": np.eye(2)})
    with pytest.raises(TypeError, match="mapping"):
        fine_tuning_overlaps([np.eye(2)], {"w": np.eye(2)}, {"w": np.eye(2)})


# ---------------------------------------------------------------- neuron matching
def test_unit_correlation_matches_numpy_and_zeroes_dead_units():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((50, 4)), rng.standard_normal((50, 3))
    b[:, 2] = 0.0  # a dead unit
    ref = np.corrcoef(a.T, b[:, :2].T)[:4, 4:]
    r = unit_correlation(a, b).numpy()
    assert np.allclose(r[:, :2], ref, atol=1e-12) and np.all(r[:, 2] == 0)


def test_planted_permutation_of_neurons_is_recovered():
    rng = np.random.default_rng(6)
    n, units = 2000, 64
    a = rng.standard_normal((n, units)) + 0.5 * rng.standard_normal((n, 1))  # correlated units
    perm = rng.permutation(units)
    b = a[:, perm] + 0.1 * rng.standard_normal((n, units))  # unit j of b is unit perm[j] of a
    match, matched = bipartite_match(unit_correlation(a, b))
    assert np.array_equal(perm[match], np.arange(units))
    assert matched.min() > 0.95
    semi, _ = semi_match(unit_correlation(a, b))
    assert np.array_equal(semi, match)


def test_bipartite_match_beats_semi_matching_on_a_hand_case():
    corr = [[0.9, 0.8, 0.0], [0.85, 0.1, 0.0], [0.0, 0.0, 0.5]]
    match, matched = bipartite_match(corr)
    assert match.tolist() == [1, 0, 2] and np.allclose(matched, [0.8, 0.85, 0.5])
    assert semi_match(corr)[0].tolist() == [0, 0, 2]
    match, matched = bipartite_match([[0.9], [0.1]])  # more units in a than in b
    assert match.tolist() == [0, -1] and np.isnan(matched[1])


def _rotated_groups(rng, n=3000, groups=16, size=4, noise=0.05):
    a = rng.standard_normal((n, groups * size))
    rot = scipy.linalg.block_diag(*[_orth(rng, size, size) for _ in range(groups)])
    return a, a @ rot + noise * rng.standard_normal(a.shape)


def test_planted_group_rotations_found_by_spectral_groups_not_one_to_one():
    rng = np.random.default_rng(7)
    a, b = _rotated_groups(rng)
    assert mean_matched_correlation(a, b) <= 0.8
    labels = spectral_unit_groups(a, b, 16, random_state=0)
    truth = np.tile(np.repeat(np.arange(16), 4), 2)
    assert adjusted_rand_score(truth, labels) >= 0.95
    for g in range(16):
        cols = slice(4 * g, 4 * g + 4)
        assert np.degrees(float(principal_angles(a[:, cols], b[:, cols]).max())) < 5.0


def test_sparse_prediction_finds_two_unit_mixtures():
    rng = np.random.default_rng(8)
    a = rng.standard_normal((1500, 20))
    b = (a[:, 0:10] + a[:, 10:20]) / math.sqrt(2) + 0.05 * rng.standard_normal((1500, 10))
    res = sparse_prediction(a, b, alphas=(0.3, 0.01))
    # the weak penalty keeps exactly the two planted inputs of every unit, at near-zero loss
    assert res.loss[1] < 0.02 and res.nonzeros[1] == pytest.approx(2.0)
    support = np.sort(np.flatnonzero(res.coef[1, 3]))
    assert support.tolist() == [3, 13]
    assert res.loss[0] > res.loss[1] and res.nonzeros[0] <= res.nonzeros[1]


def test_two_digits_mlps_learn_matching_hidden_units():
    """Soft check of the paper's finding on real data: seeds 0 and 1 share units, a random net does not."""
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    hidden = []
    for seed in (0, 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp = MLPClassifier(hidden_layer_sizes=(32,), max_iter=150, random_state=seed).fit(x, y)
        hidden.append(np.maximum(x @ mlp.coefs_[0] + mlp.intercepts_[0], 0))
    rng = np.random.default_rng(2)
    bound = math.sqrt(6 / (64 + 32))  # sklearn's Glorot-uniform initialisation
    random_net = np.maximum(x @ rng.uniform(-bound, bound, (64, 32)) + rng.uniform(-bound, bound, 32), 0)
    trained = mean_matched_correlation(hidden[0], hidden[1])
    assert trained >= 0.5
    assert trained > mean_matched_correlation(hidden[0], random_net)


def test_matching_bad_inputs():
    with pytest.raises(ValueError, match="same number of rows"):
        unit_correlation(np.zeros((5, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        unit_correlation(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="NaN"):
        unit_correlation(np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        bipartite_match([[2.0]])
    with pytest.raises(ValueError, match="n_groups"):
        spectral_unit_groups(np.eye(5), np.eye(5), 11)
    with pytest.raises(ValueError, match="alphas"):
        sparse_prediction(np.eye(5), np.eye(5), alphas=(-1.0,))


# ---------------------------------------------------------------- linear-orthogonal factorisation
N_VALUES = (4, 5, 3)


def _concepts(reps=10):
    grid = np.array(np.meshgrid(*[np.arange(n) for n in N_VALUES], indexing="ij")).reshape(3, -1).T
    return np.repeat(grid, reps, axis=0)


def _additive(rng, y, d=32, noise=0.05, orthogonal=True):
    q = _orth(rng, d, sum(N_VALUES))
    starts = np.cumsum((0,) + N_VALUES)
    x = np.zeros((y.shape[0], d))
    for c, n_c in enumerate(N_VALUES):
        basis = q[:, starts[c] : starts[c] + n_c] if orthogonal else q[:, :n_c]
        x += (basis @ rng.standard_normal((n_c, n_c)))[:, y[:, c]].T
    return x + noise * rng.standard_normal(x.shape)


def _multiplicative(rng, y, d=32, noise=0.05):
    x = np.ones((y.shape[0], d))
    for c, n_c in enumerate(N_VALUES):
        x *= rng.standard_normal((n_c, d))[y[:, c]]
    return x + noise * rng.standard_normal(x.shape)


def test_planted_orthogonal_factors_score_high():
    rng = np.random.default_rng(9)
    y = _concepts()
    x = _additive(rng, y)
    s = factorisation_scores(x, y)
    assert s.r2 >= 0.95
    assert s.between_cos <= 0.1 < s.within_cos
    assert all(k <= n - 1 for k, n in zip(s.ranks, N_VALUES))
    off = s.subspace_overlap[~torch.eye(3, dtype=torch.bool)]
    assert float(off.max()) < 0.05
    assert s.min_dim == 9


def test_non_linear_factors_score_low_and_shared_subspaces_are_not_orthogonal():
    rng = np.random.default_rng(10)
    y = _concepts()
    assert linear_factorization_r2(_multiplicative(rng, y), y) <= 0.6
    assert linear_factorization_r2(_multiplicative(rng, y), y, whiten=True) <= 0.6
    shared = _additive(rng, y, orthogonal=False)  # additive, but all concepts in one subspace
    assert linear_factorization_r2(shared, y) >= 0.95
    assert float(factor_subspace_overlap(shared, y)[0, 1]) > 0.5
    assert cross_concept_orthogonality(shared, y)[0] > 0.2


def test_heldout_combinations_predicted_only_for_additive_embeddings():
    rng = np.random.default_rng(11)
    y = _concepts(reps=5)
    combo = np.ravel_multi_index(y.T, N_VALUES)
    held = rng.permutation(60)[:12]  # 20% of the 60 value combinations
    test = np.isin(combo, held)
    assert heldout_composition_error(_additive(rng, y), y, test) <= 0.1
    assert heldout_composition_error(_multiplicative(rng, y), y, test) >= 0.5


def test_concept_means_against_a_hand_computed_case():
    x = np.array([[1.0, 0.0], [3.0, 0.0], [1.0, 2.0], [3.0, 2.0]])
    y = np.array([[0, 0], [1, 0], [0, 1], [1, 1]])
    m0, m1 = concept_means(x, y)
    assert m0.tolist() == [[-1.0, 0.0], [1.0, 0.0]] and m1.tolist() == [[0.0, -1.0], [0.0, 1.0]]
    assert concept_rank(x, y) == [1, 1]
    assert min_dim_for_composition([2, 2]) == 2


def test_factorisation_bad_inputs():
    x, y = np.zeros((4, 2)), np.array([[0, 0], [1, 0], [0, 1], [1, 1]])
    with pytest.raises(ValueError, match="rows"):
        concept_means(np.ones((3, 2)), y)
    with pytest.raises(ValueError, match="single value"):
        concept_means(np.ones((4, 2)), np.zeros((4, 1), dtype=int))
    with pytest.raises(TypeError, match="integers"):
        concept_means(np.ones((4, 2)), y + 0.5)
    with pytest.raises(ValueError, match="constant"):
        linear_factorization_r2(x, y)
    with pytest.raises(ValueError, match="at least 2 concepts"):
        cross_concept_orthogonality(np.eye(4), y[:, :1])
    with pytest.raises(ValueError, match="never occurs"):
        heldout_composition_error(np.eye(4), y, np.array([True, True, False, False]))
    with pytest.raises(TypeError, match="boolean"):
        heldout_composition_error(np.eye(4), y, np.array([1, 0, 0, 0]))
    with pytest.raises(ValueError, match="at least 2 values"):
        min_dim_for_composition([1, 3])


# ---------------------------------------------------------------- alignment of two spaces
def test_planted_rotation_between_spaces_is_recovered():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((500, 16)) * np.linspace(1, 3, 16)
    rot = _orth(rng, 16, 16)
    y = x @ rot + 0.01 * rng.standard_normal(x.shape) + 5.0
    est = procrustes_align(x, y).numpy()
    assert np.abs(est - rot).max() < 1e-2
    q = x[:200] - x.mean(0)
    assert match_accuracy(q @ est @ (y[:200] - y.mean(0)).T) == 1.0


def _plato(rng, n, shared=8, p=128, q=96, private=16, sigma=6.0):
    z = rng.standard_normal((n, shared))
    mx, my = rng.standard_normal((shared, p)), rng.standard_normal((shared, q))
    px, py = rng.standard_normal((private, p)), rng.standard_normal((private, q))
    x = z @ mx + sigma * rng.standard_normal((n, private)) @ px + rng.standard_normal((n, p))
    y = z @ my + sigma * rng.standard_normal((n, private)) @ py + rng.standard_normal((n, q))
    return x, y


def test_cca_subspace_alignment_beats_full_space_as_in_platos_cave():
    rng = np.random.default_rng(13)
    x, y = _plato(rng, 2500)
    anchors, queries = slice(0, 2000), slice(2000, 2500)
    top1 = {}
    for k in (None, 8, 32):
        aligner = CCAAligner(n_components=k).fit(x[anchors], y[anchors])
        top1[k] = retrieval_topk(aligner.similarity(x[queries], y[queries]), 1)
    assert top1[8] >= 0.8 and top1[8] >= 2 * top1[None]
    assert top1[32] < top1[8]
    aligner = CCAAligner(n_components=8).fit(x[anchors], y[anchors])
    assert aligner.score(x[queries], y[queries]) >= 0.9
    assert float(aligner.correlations_.min()) > 0.5


def test_match_and_retrieval_hand_cases():
    s = [[0.9, 0.8, 0.1], [0.95, 0.5, 0.0], [0.1, 0.2, 0.3]]
    assert match_accuracy(s) == pytest.approx(1 / 3)  # Hungarian: 0-1, 1-0, 2-2 (sum 2.05) -> only query 2 right
    assert retrieval_topk(s, 1) == pytest.approx(2 / 3)  # queries 0 and 2 rank their item first
    assert retrieval_topk(s, 2) == 1.0


def test_alignment_bad_inputs():
    with pytest.raises(ValueError, match="square"):
        match_accuracy(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="k must be"):
        retrieval_topk(np.eye(3), 4)
    with pytest.raises(ValueError, match="same dimension"):
        procrustes_align(np.eye(4), np.eye(4)[:, :3])
    with pytest.raises(ValueError, match="n_components"):
        CCAAligner(n_components=5).fit(np.random.default_rng(0).normal(size=(20, 4)), np.ones((20, 8)))
    with pytest.raises(NotFittedError):
        CCAAligner().transform(np.eye(3))
    aligner = CCAAligner(n_components=2).fit(*_plato(np.random.default_rng(0), 50, shared=2, p=6, q=5, private=1))
    with pytest.raises(ValueError, match="features"):
        aligner.transform(np.eye(5))


# ---------------------------------------------------------------- IsoCLIP
def test_iso_projectors_identity_and_idempotence():
    rng = np.random.default_rng(14)
    w_a, w_b = rng.standard_normal((8, 8)), rng.standard_normal((8, 8))
    new_a, new_b = iso_projectors(w_a, w_b, 0, 0)
    assert torch.allclose(new_a, torch.as_tensor(w_a), atol=1e-10) and torch.allclose(new_b, torch.as_tensor(w_b), atol=1e-10)
    p_a, p_b, s = spectral_band_projectors(inter_modal_operator(w_a, w_b), 2, 3)
    for p in (p_a, p_b):
        assert torch.allclose(p @ p, p, atol=1e-10) and torch.allclose(p, p.T, atol=1e-12)
        assert round(float(torch.trace(p))) == 3
    assert torch.allclose(s, torch.linalg.svdvals(torch.as_tensor(w_a.T @ w_b)))


def test_isoclip_removes_planted_anisotropic_nuisance():
    rng = np.random.default_rng(15)
    d, n_cls, per = 32, 10, 20
    u, v, q = _orth(rng, d, d), _orth(rng, d, d), _orth(rng, d, d)
    s = np.r_[np.full(4, 10.0), np.full(12, 1.0), np.full(d - 16, 0.05)]
    w_a, w_b = q @ np.diag(s) @ u.T, q @ v.T  # Psi = w_a^T w_b = U diag(s) V^T
    labels = np.repeat(np.arange(n_cls), per)
    centres = rng.standard_normal((n_cls, 12))
    h = (u[:, :4] @ rng.standard_normal((4, labels.size)) + u[:, 4:16] @ centres[labels].T).T
    h += 0.1 * rng.standard_normal(h.shape)
    before = map_at_r(h @ w_a.T, labels)
    new_a, _ = iso_projectors(w_a, w_b, k_top=4, k_bottom=0)
    after = map_at_r(h @ new_a.numpy().T, labels)
    assert after - before >= 0.2 and after > 0.9


def test_map_at_r_reference():
    rng = np.random.default_rng(16)
    f, y = rng.standard_normal((30, 5)), rng.integers(0, 3, 30)
    fn = f / np.linalg.norm(f, axis=1, keepdims=True)
    sim = fn @ fn.T
    aps = []
    for i in range(30):  # slow reference: rank all others, walk down the top R
        others = [j for j in np.argsort(-sim[i], kind="stable") if j != i]
        r = int((y == y[i]).sum()) - 1
        hits, ap = 0, 0.0
        for pos, j in enumerate(others[:r], 1):
            if y[j] == y[i]:
                hits += 1
                ap += hits / pos
        aps.append(ap / r)
    assert map_at_r(f, y) == pytest.approx(np.mean(aps), abs=1e-12)


def test_isoclip_bad_inputs():
    with pytest.raises(ValueError, match="same shared space"):
        iso_projectors(np.eye(4), np.eye(3), 0, 0)
    with pytest.raises(ValueError, match="at least one"):
        iso_projectors(np.eye(4), np.eye(4), 2, 2)
    with pytest.raises(ValueError, match="k_top"):
        spectral_band_projectors(np.eye(4), -1, 0)
    with pytest.raises(ValueError, match="no class"):
        map_at_r(np.eye(3), [0, 1, 2])


# ---------------------------------------------------------------- intrinsic dimension
def test_fwht_matches_hadamard_matrix():
    x = torch.randn(3, 16, dtype=F64)
    assert torch.allclose(fwht(x), x @ torch.as_tensor(scipy.linalg.hadamard(16), dtype=F64), atol=1e-12)
    with pytest.raises(ValueError, match="power of 2"):
        fwht(torch.zeros(6))


@pytest.mark.parametrize("projection", ["dense", "fastfood"])
def test_projection_columns_have_unit_norm_and_gradient_is_projected(projection):
    net = torch.nn.Sequential(torch.nn.Linear(7, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8)).double()
    model = RandomSubspaceModel(net, 16, projection, random_state=0)
    assert model.n_params == 7 * 8 + 8 + 8 * 8 + 8
    cols = torch.stack([model.projection(e) for e in torch.eye(16, dtype=F64)], 1)  # P, (D, d)
    if projection == "dense":
        assert torch.allclose(torch.linalg.vector_norm(cols, dim=0), torch.ones(16, dtype=F64), atol=1e-6)
        assert torch.allclose(model.projection.matrix, cols)
    x = torch.randn(5, 7, dtype=F64)
    with torch.no_grad():
        model.theta_d.normal_()
    model(x).pow(2).sum().backward()
    flat = torch.cat([t.reshape(-1) for t in model.full_parameters().values()]).detach().requires_grad_(True)
    params, start = {}, 0
    for name, t in net.named_parameters():
        params[name] = flat[start : start + t.numel()].view(t.shape)
        start += t.numel()
    torch.func.functional_call(net, params, (x,)).pow(2).sum().backward()
    assert torch.allclose(model.theta_d.grad, cols.T @ flat.grad, atol=1e-6)


def test_fastfood_columns_have_unit_norm_when_blocks_divide():
    proj = FastfoodProjection(64, 5, torch.Generator().manual_seed(0), F64)  # L = 8 divides D = 64
    cols = torch.stack([proj(e) for e in torch.eye(5, dtype=F64)], 1)
    assert cols.shape == (64, 5)
    assert torch.allclose(torch.linalg.vector_norm(cols, dim=0), torch.ones(5, dtype=F64), atol=1e-6)
    assert torch.allclose(proj(torch.ones(5, dtype=F64)), cols.sum(1), atol=1e-12)  # linear


def test_identity_projection_reproduces_full_space_training():
    gen = torch.Generator().manual_seed(0)
    net = torch.nn.Linear(6, 3).double()
    ref = torch.nn.Linear(6, 3).double()
    ref.load_state_dict(net.state_dict())
    model = RandomSubspaceModel(net, 21, "dense", random_state=0)
    model.projection.matrix = torch.eye(21, dtype=F64)  # P = I, d = D: plain reparameterisation
    x, y = torch.randn(40, 6, generator=gen, dtype=F64), torch.randint(0, 3, (40,), generator=gen)
    opt_a, opt_b = torch.optim.SGD([model.theta_d], lr=0.1), torch.optim.SGD(ref.parameters(), lr=0.1)
    for _ in range(20):
        for m, opt in ((model, opt_a), (ref, opt_b)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            opt.step()
    trained = torch.cat([t.reshape(-1) for t in model.full_parameters().values()])
    assert torch.allclose(trained, torch.cat([t.reshape(-1) for t in ref.parameters()]), atol=1e-10)


def test_planted_objective_dimension_is_recovered():
    """``||A theta - b||^2`` with rank-7 ``A``: a random ``d``-subspace solves it iff ``d >= 7``."""
    rng = np.random.default_rng(17)
    a = torch.as_tensor(rng.standard_normal((7, 60)))
    b = torch.as_tensor(rng.standard_normal(7))
    net = torch.nn.Linear(60, 1, bias=False).double()
    with torch.no_grad():
        net.weight.copy_(torch.as_tensor(rng.standard_normal((1, 60))))  # theta_0, seeded

    def score(d):
        model = RandomSubspaceModel(net, d, random_state=d)
        opt = torch.optim.LBFGS([model.theta_d], max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-14)

        def loss():
            opt.zero_grad()
            value = (a @ model.full_parameters()["weight"][0] - b).pow(2).sum()
            value.backward()
            return value

        start = float(loss().detach())
        opt.step(loss)
        return 1.0 - float(loss().detach()) / start

    res = intrinsic_dimension(score, range(1, 11), baseline=1.0, threshold=0.999)
    assert res.d_int == 7  # every d < 7 leaves a residual above 0.1% of the starting loss
    assert min(res.scores[6:]) >= 0.999


def test_intrinsic_dimension_small_digits_problem():
    from sklearn.datasets import load_digits

    x, y = load_digits(n_class=4, return_X_y=True)
    est = IntrinsicDimension(hidden=(8,), dims=(4, 32, 256), max_epochs=15, batch_size=256, random_state=0).fit(x / 16, y)
    assert est.n_params_ == 64 * 8 + 8 + 8 * 4 + 4
    assert est.baseline_score_ >= 0.95
    assert est.intrinsic_dimension_ is not None and est.n_params_ / est.intrinsic_dimension_ >= 4
    assert all(later >= earlier - 0.05 for earlier, later in zip(est.scores_, est.scores_[1:]))
    assert est.scores_[0] < 0.9 * est.baseline_score_  # d = 4 is too small for 4 classes


@pytest.mark.slow
def test_intrinsic_dimension_of_digits_mlp_between_80_and_160():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    est = IntrinsicDimension(hidden=(64,), dims=(10, 20, 40, 80, 160, 320), max_epochs=30, random_state=0).fit(x / 16, y)
    assert est.n_params_ == 4810 and est.baseline_score_ > 0.95
    assert 80 <= est.intrinsic_dimension_ <= 160
    assert est.n_params_ / est.intrinsic_dimension_ >= 10


def test_intrinsic_dimension_leaves_the_global_torch_rng_alone():
    # the MLP is initialised from the seeded generator, but building its nn.Linear layers drew from torch's RNG
    x = np.random.default_rng(0).normal(size=(40, 3)) + np.repeat([[0.0], [3.0]], 20, 0)
    y = np.repeat([0, 1], 20)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    IntrinsicDimension(hidden=(4,), dims=(2,), max_epochs=1, random_state=0).fit(x, y)
    torch.testing.assert_close(torch.rand(3), expected, rtol=0, atol=0)


def test_intrinsic_dimension_bad_inputs():
    x, y = np.random.default_rng(0).normal(size=(20, 3)), np.repeat([0, 1], 10)
    with pytest.raises(ValueError, match="dims"):
        IntrinsicDimension(dims=()).fit(x, y)
    with pytest.raises(TypeError, match="hidden"):
        IntrinsicDimension(hidden=64).fit(x, y)
    with pytest.raises(ValueError, match="projection"):
        IntrinsicDimension(projection="sparse").fit(x, y)
    with pytest.raises(ValueError, match="threshold"):
        IntrinsicDimension(threshold=0.0).fit(x, y)
    with pytest.raises(ValueError, match="validation_fraction"):
        IntrinsicDimension(validation_fraction=1.0).fit(x, y)
    with pytest.raises(ValueError, match="at least 2 samples"):
        IntrinsicDimension().fit(x, np.r_[np.zeros(19, int), 1])
    with pytest.raises(ValueError, match="repeat"):
        intrinsic_dimension(lambda d: 1.0, [2, 2], baseline=1.0)
    with pytest.raises(ValueError, match="no parameters"):
        RandomSubspaceModel(torch.nn.ReLU(), 3)
    with pytest.raises(TypeError, match="nn.Module"):
        RandomSubspaceModel(lambda v: v, 3)


@cuda
def test_cuda_models():
    net = torch.nn.Linear(4, 2).cuda()
    model = RandomSubspaceModel(net, 8, "fastfood", random_state=0)
    assert model(torch.randn(3, 4, device="cuda")).device.type == "cuda"
    x, y = _plato(np.random.default_rng(0), 200, shared=2, p=6, q=5, private=1)
    aligner = CCAAligner(n_components=2, device="cuda").fit(x, y)
    assert aligner.transform(x).device.type == "cuda"
    est = IntrinsicDimension(hidden=(4,), dims=(2,), max_epochs=1, random_state=0, device="cuda")
    est.fit(np.random.default_rng(0).normal(size=(20, 3)), np.repeat([0, 1], 10))
