"""Sampling bounds, interaction rank, GIST, PAC invariance / pretraining, CoSpaDi and Concrete merging.

Every check is against a planted answer, a closed form or an independent reference (numpy / scipy /
scikit-learn / a plain recurrence), never against numbers produced by the code under test.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from graphrec.analysis.gist import GISTSelector, gradient_subspace, per_example_gradients
from graphrec.analysis.interaction_rank import (
    attention_scores,
    heads_needed,
    interaction_rank,
    lag_gradient_norms,
    mixing_apply,
    multihead_mixing_tensor,
    realize_with_heads,
    semiseparable_rank,
    ssm_apply,
    ssm_lag_operators,
    ssm_mixing_tensor,
)
from graphrec.analysis.pac import (
    InvariantRepresentation,
    PretrainedFactorRegressor,
    approx_invariance_gap,
    bayes_risk,
    environment_moments,
    invariance_sample_size,
    make_factor_regression,
    make_linear_sem,
    pac_invariance_curve,
)
from graphrec.analysis.sensitivity import (
    lp_distortion,
    root_leverage_scores,
    sample_complexity,
    subspace_distortion,
    total_sensitivity_bound,
)
from graphrec.core.sampling import leverage_scores, lp_sensitivities, sensitivity_sample
from graphrec.datasets.generators import make_union_of_subspaces
from graphrec.models.concrete_merging import (
    ConcreteMask,
    ConcreteTaskArithmetic,
    make_merging_tasks,
    merge_task_vectors,
    task_arithmetic,
    task_vectors,
)
from graphrec.models.cospadi import (
    SparseDictLinear,
    calibrated_sparse_dictionary,
    calibrated_truncated_svd,
    compress_linear,
    compression_budget,
    ksvd,
    omp,
    svd_rank_for_budget,
)

F64 = torch.float64
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ================================================================== ℓp sensitivity sampling
def _heavy_rows(n: int = 4000, d: int = 6, seed: int = 0) -> torch.Tensor:
    a = torch.randn(n, d, generator=_gen(seed), dtype=F64)
    a[:8] *= 60.0  # a few heavy rows that uniform sampling misses
    return a


def test_subspace_bound_holds_with_the_stated_probability_and_is_not_vacuous():
    a = _heavy_rows()
    n, d = a.shape
    eps, delta = 0.3, 0.1
    m = sample_complexity(n, d, 2.0, eps, delta, scheme="subspace")
    assert m < n
    tau = leverage_scores(a)
    fails, fails_small = 0, 0
    for t in range(60):
        idx, w = sensitivity_sample(tau, m, random_state=t)
        fails += subspace_distortion(a, idx, w) > eps
        idx, w = sensitivity_sample(tau, m / 30, random_state=1000 + t)
        fails_small += subspace_distortion(a, idx, w) > eps
    assert fails / 60 <= delta
    assert fails_small / 60 > delta  # far fewer rows than the bound: the guarantee is lost


def test_subspace_distortion_is_the_sup_over_directions():
    a = _heavy_rows(500, 4)
    idx, w = sensitivity_sample(leverage_scores(a), 60, random_state=0)
    sup = subspace_distortion(a, idx, w)
    # brute-force over many directions of ||SAx||^2 / ||Ax||^2 (not the norm ratio): never above the sup
    x = torch.randn(4, 4000, generator=_gen(1), dtype=F64)
    ratio = (w[:, None] * (a[idx] @ x) ** 2).sum(0) / ((a @ x) ** 2).sum(0)
    assert float((ratio - 1).abs().max()) <= sup + 1e-12
    assert float((ratio - 1).abs().max()) >= 0.8 * sup


@pytest.fixture(scope="module")
def cauchy_p1():
    a = torch.as_tensor(np.random.default_rng(0).standard_cauchy((150, 3)))
    return a, lp_sensitivities(a, 1.0)


def test_fixed_direction_l1_bound_holds_with_the_stated_probability(cauchy_p1):
    a, sens = cauchy_p1
    total = float(sens.sum())
    assert total <= 3 + 1e-9  # total ℓ1 sensitivity <= d
    eps, delta = 0.4, 0.25
    m = sample_complexity(a.shape[0], 3, 1.0, eps, delta, scheme="fixed", total_sensitivity=total)
    assert m == math.ceil(2 * total * (1 + eps / 3) * math.log(2 / delta) / eps**2) and m < a.shape[0]
    x = torch.randn(3, 20, generator=_gen(0), dtype=F64)
    errs = torch.cat([lp_distortion(a, *sensitivity_sample(sens, m, random_state=t), 1.0, x) for t in range(100)])
    assert float((errs > eps).double().mean()) <= delta
    small = torch.cat([lp_distortion(a, *sensitivity_sample(sens, m / 15, random_state=t), 1.0, x) for t in range(100)])
    assert float((small > eps).double().mean()) > float((errs > eps).double().mean())


def test_sketch_is_unbiased_for_the_p_th_power():
    a = _heavy_rows(800, 4)
    x = torch.randn(4, generator=_gen(3), dtype=F64)
    tau = root_leverage_scores(a, 1.0)  # any positive scores give an unbiased estimate
    exact = float((a @ x).abs().sum())
    est = [float((w * (a[idx] @ x).abs()).sum()) for idx, w in (sensitivity_sample(tau, 40, random_state=t) for t in range(2000))]
    assert abs(np.mean(est) / exact - 1) < 0.02


def test_leverage_sampling_beats_uniform_sampling_on_heavy_rows():
    a = _heavy_rows(4000, 6)
    m = 200
    tau = leverage_scores(a)
    uni = torch.ones(a.shape[0], dtype=F64)
    sens = [subspace_distortion(a, *sensitivity_sample(tau, m, random_state=t)) for t in range(20)]
    unif = [subspace_distortion(a, *sensitivity_sample(uni, m, random_state=t)) for t in range(20)]
    assert np.max(sens) * 2 <= np.max(unif)


def test_sample_complexity_rates_and_regimes():
    assert total_sensitivity_bound(16, 1.5) == 16 and total_sensitivity_bound(16, 3.0) == 64
    big = 10**12  # no cap at n, and the log(n/δ) factor identical in both
    ratio = lambda scheme, p: sample_complexity(big, 32, p, 0.1, 0.1, scheme=scheme) / sample_complexity(big, 16, p, 0.1, 0.1, scheme=scheme)  # noqa: E731
    # worst-case 𝔖 = d^{p/2} at p = 3: rate 𝔖^{2 - 2/p} = d^{2}; doubling d quadruples m
    assert ratio("sensitivity", 3.0) == pytest.approx(4.0, rel=1e-3)
    # p = 1: 𝔖^{2/p} = d^2 (Woodruff-Yasuda v1) vs root leverage d
    assert ratio("sensitivity", 1.0) == pytest.approx(4.0, rel=1e-3)
    assert ratio("root_leverage", 1.0) == pytest.approx(2.0, rel=1e-3)
    # p = 4: leverage + sensitivity d^{2/p} 𝔖^{2-4/p} = d^{1/2} d^{2} = d^{2.5}
    assert ratio("leverage_sensitivity", 4.0) == pytest.approx(2**2.5, rel=1e-3)
    assert ratio("chen_derezinski", 1.0) == pytest.approx(2**1.5, rel=1e-3)
    # smaller eps or delta never needs fewer rows; the answer is capped at n
    assert sample_complexity(10**6, 8, 1.0, 0.1, 0.1) > sample_complexity(10**6, 8, 1.0, 0.2, 0.1)
    assert sample_complexity(10**6, 8, 1.0, 0.1, 0.01) > sample_complexity(10**6, 8, 1.0, 0.1, 0.1)
    assert sample_complexity(50, 8, 1.0, 0.01, 0.01) == 50
    with pytest.raises(ValueError, match="p < 2"):
        sample_complexity(100, 4, 3.0, 0.1, 0.1, scheme="root_leverage")
    with pytest.raises(ValueError, match="p > 2"):
        sample_complexity(100, 4, 1.0, 0.1, 0.1, scheme="leverage_sensitivity")
    with pytest.raises(ValueError, match="p = 2"):
        sample_complexity(100, 4, 1.0, 0.1, 0.1, scheme="subspace")


@pytest.mark.parametrize(
    "kwargs",
    [dict(eps=0.0), dict(eps=1.0), dict(delta=0.0), dict(delta=1.5), dict(p=0.5), dict(scheme="magic"),
     dict(total_sensitivity=-1.0), dict(d=0), dict(eps=float("nan"))],
)
def test_sample_complexity_rejects_bad_arguments(kwargs):
    args = dict(n=100, d=4, p=1.0, eps=0.1, delta=0.1) | kwargs
    scheme = args.pop("scheme", "fixed")
    total = args.pop("total_sensitivity", None)
    with pytest.raises((ValueError, TypeError)):
        sample_complexity(**args, scheme=scheme, total_sensitivity=total)


def test_distortion_rejects_bad_sketches():
    a = _heavy_rows(50, 3)
    with pytest.raises(ValueError, match="outside"):
        lp_distortion(a, torch.tensor([0, 50]), torch.ones(2, dtype=F64), 1.0)
    with pytest.raises(ValueError, match="equal length"):
        lp_distortion(a, torch.tensor([0, 1]), torch.ones(3, dtype=F64), 1.0)
    with pytest.raises(TypeError, match="integer"):
        subspace_distortion(a, torch.tensor([0.0, 1.0]), torch.ones(2, dtype=F64))
    with pytest.raises(ValueError, match="null space"):
        lp_distortion(torch.tensor([[1.0, 0.0], [2.0, 0.0]]), torch.tensor([0]), torch.ones(1), 1.0, torch.tensor([[0.0], [1.0]]))


# ================================================================== interaction rank
def _random_ssm(n_state: int, m: int, p: int, seed: int = 0):
    g = _gen(seed)
    a = torch.randn(n_state, n_state, generator=g, dtype=F64)
    a = 0.9 * a / torch.linalg.eigvals(a).abs().max()
    return a, torch.randn(n_state, m, generator=g, dtype=F64), torch.randn(p, n_state, generator=g, dtype=F64)


def test_ssm_needs_exactly_state_size_heads_and_the_heads_reproduce_it():
    a, b, c = _random_ssm(6, 4, 4)
    n = 32
    assert heads_needed(a, b, c, n) == 6
    assert interaction_rank(ssm_mixing_tensor(a, b, c, n)) == 6
    x = torch.randn(n, 4, generator=_gen(1), dtype=F64)
    values, scores = realize_with_heads(ssm_lag_operators(a, b, c, n))
    assert values.shape == (6, 4, 4) and scores.shape == (6, n, n)
    assert torch.allclose(scores, scores.tril())
    y = mixing_apply(multihead_mixing_tensor(scores, values), x)
    assert torch.allclose(y, ssm_apply(a, b, c, x), atol=1e-8)  # the plain recurrence


def test_fewer_heads_leave_the_eckart_young_residual():
    a, b, c = _random_ssm(6, 4, 4, seed=2)
    n = 32
    kernels = ssm_lag_operators(a, b, c, n)
    sv = np.linalg.svd(kernels.numpy().reshape(n, -1), compute_uv=False)
    for h in (1, 5):
        values, scores = realize_with_heads(kernels, n_heads=h)
        fit = torch.einsum("hl,hpm->lpm", scores[:, :, 0], values)  # lag ℓ operator read off column 0
        resid = float(torch.linalg.vector_norm(fit - kernels))
        assert resid == pytest.approx(float(np.sqrt((sv[h:] ** 2).sum())), rel=1e-6)
        assert resid > 1e-3


def test_cayley_hamilton_caps_interaction_rank_at_pm():
    a, b, c = _random_ssm(8, 2, 1)  # p m = 2 < N = 8
    assert heads_needed(a, b, c, 40) == 2


def test_semiseparable_rank_separates_ssm_from_softmax_attention():
    g = _gen(3)
    for n_state in (2, 3, 5):
        a, b, c = _random_ssm(n_state, 1, 1, seed=n_state)
        assert semiseparable_rank(ssm_mixing_tensor(a, b, c, 24)[:, :, 0, 0]) == n_state
    a, b, c = _random_ssm(3, 2, 2, seed=7)
    assert semiseparable_rank(ssm_mixing_tensor(a, b, c, 20)) == 3  # multi-channel: still the state size
    x = torch.randn(24, 8, generator=g, dtype=F64)
    for d_k in (2, 4):
        wq, wk = torch.randn(8, d_k, generator=g, dtype=F64), torch.randn(8, d_k, generator=g, dtype=F64)
        assert semiseparable_rank(attention_scores(x, wq, wk, kind="linear")) == d_k
        assert semiseparable_rank(attention_scores(x, wq, wk)) == 12  # full: min(k, n - k) at k = n / 2
    soft = attention_scores(x, wq, wk)
    np.testing.assert_allclose(soft.sum(1).numpy(), np.ones(24), atol=1e-12)
    assert float(soft.triu(1).abs().max()) == 0.0


def test_h_head_attention_has_interaction_rank_h():
    g = _gen(4)
    x = torch.randn(16, 6, generator=g, dtype=F64)
    for h in (1, 3):
        scores = torch.stack([attention_scores(x, torch.randn(6, 4, generator=g, dtype=F64), torch.randn(6, 4, generator=g, dtype=F64)) for _ in range(h)])
        w = multihead_mixing_tensor(scores, torch.randn(h, 3, 3, generator=g, dtype=F64))
        assert interaction_rank(w) == h


def test_ssm_gradient_path_decays_like_the_spectral_radius_and_attention_does_not():
    q = torch.linalg.qr(torch.randn(5, 5, generator=_gen(5), dtype=F64))[0]
    eye = torch.eye(5, dtype=F64)
    norms = lag_gradient_norms(ssm_lag_operators(0.9 * q, eye, eye, 64))
    assert float(norms[63] / norms[15]) == pytest.approx(0.9**48, rel=1e-10)
    # attention with all weight on token 0: y_i = V x_0, the same Jacobian norm at every distance
    n, v = 64, torch.randn(5, 5, generator=_gen(6), dtype=F64)
    scores = torch.zeros(1, n, n, dtype=F64)
    scores[0, :, 0] = 1.0
    x = torch.randn(n, 5, generator=_gen(7), dtype=F64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(lambda z: mixing_apply(multihead_mixing_tensor(scores, v[None]), z), x)
    path = torch.stack([torch.linalg.matrix_norm(jac[i, :, 0, :], ord=2) for i in range(n)])
    assert torch.allclose(path, path[0].expand(n), rtol=1e-12)


def test_interaction_rank_rejects_bad_input():
    with pytest.raises(ValueError, match="square"):
        ssm_lag_operators(torch.ones(2, 3), torch.ones(2, 1), torch.ones(1, 2), 4)
    with pytest.raises(ValueError, match="rows"):
        ssm_lag_operators(torch.eye(2), torch.ones(3, 1), torch.ones(1, 2), 4)
    with pytest.raises(ValueError, match="columns"):
        ssm_apply(torch.eye(2), torch.ones(2, 1), torch.ones(1, 3), torch.ones(4, 1))
    with pytest.raises(ValueError, match="n >= 2"):
        semiseparable_rank(torch.ones(1, 1))
    with pytest.raises(ValueError):
        interaction_rank(torch.ones(2, 2, 2, 2, 2))
    with pytest.raises(ValueError, match="NaN"):
        interaction_rank(torch.full((3, 2, 2), float("nan")))
    with pytest.raises(ValueError, match="kind"):
        attention_scores(torch.ones(3, 2), torch.ones(2, 2), torch.ones(2, 2), kind="cosine")
    with pytest.raises(ValueError, match="n_heads"):
        realize_with_heads(torch.ones(4, 2, 2), n_heads=5)


# ================================================================== GIST
def _gist_pool(seed: int = 0, dim: int = 300, k: int = 5):
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((dim, k)))[0]
    center = 2.0 * rng.standard_normal(k)
    coef = lambda n: center + 0.5 * rng.standard_normal((n, k))  # noqa: E731
    g_val = coef(40) @ basis.T + 0.05 * rng.standard_normal((40, dim))
    relevant = coef(100) @ basis.T + 0.15 * rng.standard_normal((100, dim))
    distract = 0.4 * rng.standard_normal((900, dim))
    distract[:, :10] += 6.0 * rng.standard_normal((900, 10))  # larger norm, spurious axis-aligned variance
    pool = np.concatenate([relevant, distract])
    return g_val, pool, np.r_[np.ones(100), np.zeros(900)].astype(bool), basis


def test_gist_projector_is_the_top_right_singular_subspace():
    g_val, _, _, _ = _gist_pool()
    p, sv = gradient_subspace(g_val, 5)
    _, s, vt = np.linalg.svd(g_val, full_matrices=False)
    np.testing.assert_allclose(sv.numpy(), s[:5], rtol=1e-8)
    cos = np.abs(np.sum(p.numpy() * vt[:5].T, axis=0))
    assert cos.min() > 1 - 1e-6
    np.testing.assert_allclose(p.numpy().T @ p.numpy(), np.eye(5), atol=1e-8)


def test_gist_selects_the_planted_relevant_examples():
    g_val, pool, relevant, _ = _gist_pool()
    sel = GISTSelector(n_components=5, fraction=0.1).fit(g_val)
    chosen = sel.select(pool).numpy()
    precision = relevant[chosen].mean()
    assert len(chosen) == 100 and precision >= 0.85  # random selection: 0.1
    # it scores from k = 5 stored numbers per example instead of D = 300
    assert sel.transform(pool).shape == (1000, 5)


def test_gist_subtasks_are_scored_by_their_best_target():
    a_val, a_pool, a_rel, _ = _gist_pool(seed=1)
    b_val, b_pool, b_rel, _ = _gist_pool(seed=2)
    g_val = np.concatenate([a_val, b_val])
    pool = np.concatenate([a_pool[:100], b_pool[:100], a_pool[100:]])
    sel = GISTSelector(n_components=10, fraction=0.2).fit(g_val, subtask_ids=np.r_[np.zeros(40), np.ones(40)])
    chosen = sel.select(pool).numpy()  # 220 of 1100: room for both relevant groups of 100
    assert (chosen < 100).sum() >= 85 and ((chosen >= 100) & (chosen < 200)).sum() >= 85
    single = GISTSelector(n_components=10, fraction=0.2).fit(g_val).select(pool).numpy()
    assert (chosen < 200).sum() >= (single < 200).sum()


def test_per_example_gradients_match_autograd_one_by_one():
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    x = torch.randn(6, 4, generator=_gen(0), dtype=F64)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    loss = nn.functional.cross_entropy
    grads = per_example_gradients(model, loss, x, y, params=["2.weight", "2.bias"])
    assert grads.shape == (6, 18)
    for i in range(6):
        model.zero_grad()
        loss(model(x[i : i + 1]), y[i : i + 1]).backward()
        ref = torch.cat([model[2].weight.grad.flatten(), model[2].bias.grad])
        assert torch.allclose(grads[i], ref, atol=1e-12)
    with pytest.raises(ValueError, match="unknown"):
        per_example_gradients(model, loss, x, y, params=["nope"])


def test_gist_rejects_bad_input():
    g_val, pool, _, _ = _gist_pool()
    sel = GISTSelector(n_components=5).fit(g_val)
    with pytest.raises(ValueError, match="columns"):
        sel.score_samples(pool[:, :10])
    with pytest.raises(ValueError, match="fraction"):
        GISTSelector(fraction=1.5).fit(g_val)
    with pytest.raises(ValueError, match="subtask_ids"):
        GISTSelector().fit(g_val, subtask_ids=np.zeros(3))
    with pytest.raises(ValueError, match="zero"):
        GISTSelector().fit(np.zeros((4, 6)))


# ================================================================== PAC invariance and pretraining
def _causal_vector(sem) -> np.ndarray:
    keep = np.delete(np.arange(sem.weights.shape[0]), sem.target)
    return sem.weights[sem.target, keep]


def test_parents_are_invariant_and_a_child_breaks_invariance():
    sem = make_linear_sem(10, random_state=0)
    rng = np.random.default_rng(0)
    child_node = sem.weights.shape[0] - 1
    envs = []
    for e in range(4):
        scales = np.ones(10)
        if e:
            scales[[0, child_node]] = rng.uniform(0.5, 3.0, 2)  # two non-target sites, one of them the child
        envs.append(sem.sample(20000, scales, rng))
    eye = np.eye(sem.n_features)
    assert approx_invariance_gap(eye[list(sem.parents)], envs) < 0.05
    assert approx_invariance_gap(eye[list(sem.parents) + list(sem.children)], envs) > 0.2

    est = InvariantRepresentation(eps=0.05).fit(envs)
    assert set(sem.parents) <= set(est.support_.tolist()) and not set(sem.children) & set(est.support_.tolist())
    beta = np.zeros(sem.n_features)
    beta[est.support_] = est.coef_
    truth = _causal_vector(sem)
    angle = np.degrees(np.arccos(abs(beta @ truth) / np.linalg.norm(beta) / np.linalg.norm(truth)))
    assert angle < 5.0


def test_pac_curve_violations_fall_with_the_number_of_training_interventions():
    sem = make_linear_sem(10, random_state=0)
    sites = [i for i in range(10) if i != sem.target]

    def family(rng):
        scales = np.ones(10)
        scales[rng.choice(sites)] = np.exp(rng.uniform(np.log(0.3), np.log(3.0)))
        return scales

    rates = pac_invariance_curve(sem, family, [2, 5, 10, 20, 50], eps=0.05, n_test=200, n_repeats=10, random_state=0)
    assert np.all(np.diff(rates) <= 1e-12) and rates[-1] <= 0.05 and rates[0] > 0.05


def test_invariance_sample_size_matches_blumer_et_al():
    # q = 2 parameters, degree 2: D = C(4, 2) = 6; max(40 log2 40, 480 log2 130) = 3370.7
    assert invariance_sample_size(2, 2, 0.1, 0.05) == 3371
    assert invariance_sample_size(3, 2, 0.1, 0.05) > invariance_sample_size(2, 2, 0.1, 0.05)
    with pytest.raises(ValueError):
        invariance_sample_size(2, 2, 1.0, 0.05)


def _exact_risk(est, a, th, noise, label_noise) -> float:
    """E[(w^T x + b - y)^2] in closed form for the linear predictor est.predict."""
    d = a.shape[0]
    b = float(est.predict(np.zeros((1, d)))[0])
    w = est.predict(np.eye(d)) - b
    cov = a @ a.T + noise**2 * np.eye(d)
    return float(w @ cov @ w - 2 * w @ a @ th + th @ th + label_noise**2 + b**2)


def test_pretraining_beats_supervised_learning_when_unlabelled_data_abound():
    from sklearn.linear_model import RidgeCV

    x_u, _, a, th = make_factor_regression(20000, 100, 5, noise=0.5, random_state=0)
    bayes = bayes_risk(a, th, 0.5, 0.1)
    excess_two, excess_raw = [], []
    for n in (50, 150, 500):
        x, y, _, _ = make_factor_regression(n, 100, 5, noise=0.5, loadings=a, theta=th, random_state=n)
        two = PretrainedFactorRegressor(n_components=5).fit(x, y, X_unlabeled=x_u)
        raw = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(x, y)
        excess_two.append(_exact_risk(two, a, th, 0.5, 0.1) - bayes)
        excess_raw.append(_exact_risk(raw, a, th, 0.5, 0.1) - bayes)
    assert min(excess_two) >= -1e-9 and min(excess_raw) >= -1e-9  # nothing beats the Bayes risk
    assert excess_two[1] <= excess_raw[1] / 3  # n = 150
    assert excess_two[0] > excess_two[2]  # more labels, less excess risk
    # without the unlabelled pool, phase 1 on 50 points is much worse than with it
    x, y, _, _ = make_factor_regression(50, 100, 5, noise=0.5, loadings=a, theta=th, random_state=50)
    alone = PretrainedFactorRegressor(n_components=5).fit(x, y)
    assert _exact_risk(alone, a, th, 0.5, 0.1) - bayes > excess_two[0]


def test_pac_estimators_reject_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        approx_invariance_gap(np.eye(2), [(np.eye(2), np.ones(2))])
    with pytest.raises(ValueError, match="same number"):
        InvariantRepresentation().fit([(np.eye(2), np.ones(2)), (np.eye(3), np.ones(3))])
    with pytest.raises(ValueError, match="d <= 16"):
        InvariantRepresentation().fit([environment_moments(np.random.default_rng(0).standard_normal((40, 17)), np.ones(40))] * 2)
    with pytest.raises(ValueError, match="X_unlabeled"):
        PretrainedFactorRegressor(2).fit(np.ones((5, 4)), np.ones(5), X_unlabeled=np.ones((6, 3)))
    with pytest.raises(ValueError, match="scales"):
        make_linear_sem(5, random_state=0).sample(10, np.ones(4))


# ================================================================== CoSpaDi
def test_omp_is_exact_on_sparse_codes_and_matches_scikit_learn():
    from sklearn.linear_model import orthogonal_mp

    rng = np.random.default_rng(0)
    d = rng.standard_normal((64, 80))
    d /= np.linalg.norm(d, axis=0)
    codes = np.zeros((80, 200))
    for j in range(200):
        codes[rng.choice(80, 3, replace=False), j] = rng.choice([-1, 1], 3) * rng.uniform(1, 2, 3)
    got = omp(torch.as_tensor(d), torch.as_tensor(d @ codes), 3).numpy()
    np.testing.assert_allclose(got, codes, atol=1e-8)
    y = rng.standard_normal((64, 50))
    np.testing.assert_allclose(omp(torch.as_tensor(d), torch.as_tensor(y), 4).numpy(), orthogonal_mp(d, y, n_nonzero_coefs=4), atol=1e-10)


def test_omp_gives_zero_to_an_atom_already_in_the_span():
    d = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]], dtype=F64)  # atoms 0, 1 equal
    y = torch.tensor([[2.0, 1.0], [1.0, 0.0], [0.0, 3.0]], dtype=F64)
    codes = omp(d, y, 3)  # the third pick is forced onto a duplicate (or spare) atom after an exact fit
    np.testing.assert_allclose((d @ codes).numpy(), y.numpy(), atol=1e-12)
    assert torch.isfinite(codes).all() and float(codes.abs().max()) <= 3.0 + 1e-12


def _union_weight(seed: int = 0) -> torch.Tensor:
    x, _ = make_union_of_subspaces(512, 16, 32, 3, noise=0.01, random_state=seed)
    return torch.as_tensor(x.T)  # (m = 32 inputs, n = 512 outputs): every column in one of 16 3-d subspaces


def test_cospadi_beats_truncated_svd_at_equal_budget_on_a_union_of_subspaces():
    w = _union_weight()
    budget = compression_budget(32, 512, 48, 3)
    rank = svd_rank_for_budget(32, 512, budget)
    assert (budget, rank) == (32 * 48 + 512 * 3 * 2, 8)
    d, s = calibrated_sparse_dictionary(w, n_atoms=48, n_nonzero=3, n_iter=30, random_state=0)
    assert int((s != 0).sum(0).max()) <= 3
    err = float(torch.linalg.vector_norm(w - d @ s) / torch.linalg.vector_norm(w))
    u, v = calibrated_truncated_svd(w, rank=rank)
    err_svd = float(torch.linalg.vector_norm(w - u @ v) / torch.linalg.vector_norm(w))
    sv = np.linalg.svd(w.numpy(), compute_uv=False)
    assert err_svd == pytest.approx(np.sqrt((sv[rank:] ** 2).sum() / (sv**2).sum()), rel=1e-8)  # Eckart-Young
    assert err < 0.5 * err_svd


def test_calibration_lowers_the_functional_error():
    g = _gen(0)
    w = torch.randn(32, 128, generator=g, dtype=F64)
    q = torch.linalg.qr(torch.randn(32, 32, generator=g, dtype=F64))[0]
    x = (torch.randn(1000, 32, generator=g, dtype=F64) * torch.logspace(0, -2, 32, dtype=F64)) @ q.T
    rel = lambda approx: float(torch.linalg.vector_norm(x @ (w - approx)) / torch.linalg.vector_norm(x @ w))  # noqa: E731
    d, s = calibrated_sparse_dictionary(w, x, n_atoms=16, n_nonzero=3, n_iter=15, random_state=0)
    d0, s0 = calibrated_sparse_dictionary(w, None, n_atoms=16, n_nonzero=3, n_iter=15, random_state=0)
    assert rel(d @ s) <= 0.8 * rel(d0 @ s0)
    u, v = calibrated_truncated_svd(w, x, rank=4)
    u0, v0 = calibrated_truncated_svd(w, None, rank=4)
    assert rel(u @ v) <= rel(u0 @ v0)  # data-aware SVD is optimal for the functional error


def test_ksvd_error_does_not_increase_with_iterations():
    w = _union_weight(1)
    errs = []
    for it in (1, 5, 20):
        d, s = ksvd(w, 48, 3, n_iter=it, random_state=0)
        errs.append(float(torch.linalg.vector_norm(w - d @ s)))
        np.testing.assert_allclose(torch.linalg.vector_norm(d, dim=0).numpy(), 1.0, atol=1e-10)
    assert errs[0] >= errs[1] >= errs[2]


def test_compress_linear_returns_a_module_computing_x_d_s_plus_b():
    lin = nn.Linear(32, 512).double()
    with torch.no_grad():
        lin.weight.copy_(_union_weight().T)
    x = torch.randn(20, 32, generator=_gen(0), dtype=F64)
    small = compress_linear(lin, n_atoms=48, n_nonzero=3, calibration=x, random_state=0)
    assert isinstance(small, SparseDictLinear) and small.values.shape == (512, 3)
    assert small.n_stored() == compression_budget(32, 512, 48, 3)
    ref = x @ (small.dictionary @ small.codes()) + lin.bias
    assert torch.allclose(small(x), ref, atol=1e-10)
    assert torch.allclose(small(x), x @ small.weight().T + lin.bias, atol=1e-10)
    with torch.no_grad():
        rel = float(torch.linalg.vector_norm(small(x) - lin(x)) / torch.linalg.vector_norm(lin(x) - lin.bias))
    assert rel < 0.3
    out = small(x)
    out.sum().backward()  # fine-tunable: gradients reach the dictionary and the stored values
    assert small.dictionary.grad is not None and small.values.grad is not None


def test_cospadi_rejects_bad_input():
    with pytest.raises(ValueError, match="rows"):
        omp(torch.eye(4), torch.ones(3, 2), 1)
    with pytest.raises(ValueError, match="zero atom"):
        omp(torch.zeros(4, 4), torch.ones(4, 2), 1)
    with pytest.raises(ValueError, match="n_nonzero"):
        omp(torch.eye(4), torch.ones(4, 2), 5)
    with pytest.raises(TypeError, match="nn.Linear"):
        compress_linear(nn.Conv1d(2, 2, 1), 4, 2)
    with pytest.raises(ValueError, match="features"):
        compress_linear(nn.Linear(8, 4), 4, 2, calibration=torch.ones(10, 7))
    with pytest.raises(ValueError, match="all zero"):
        ksvd(torch.zeros(4, 6), 3, 1)
    with pytest.raises(ValueError, match="budget"):
        svd_rank_for_budget(32, 512, 100)


# ================================================================== Concrete masks for merging
def test_all_ones_mask_is_plain_task_arithmetic():
    base, finetuned, _, _ = make_merging_tasks(3, random_state=0)
    taus = task_vectors(base, finetuned)
    theta0 = {"weight": base.weight.detach()}
    expected = base.weight.detach() + 0.3 * sum(f.weight.detach() - base.weight.detach() for f in finetuned)
    ones = {"weight": torch.ones_like(base.weight)}
    assert torch.allclose(merge_task_vectors(theta0, taus, ones)["weight"], expected, atol=1e-6)
    assert torch.allclose(task_arithmetic(base, finetuned).weight, expected, atol=1e-6)
    half = {"weight": (torch.arange(base.weight.numel()) % 2).reshape(base.weight.shape).float()}
    merged = merge_task_vectors(theta0, taus, half)["weight"]
    assert torch.allclose(merged[half["weight"] == 0], base.weight.detach()[half["weight"] == 0])


def test_concrete_mask_samples_are_differentiable_and_the_hard_mask_is_binary():
    mask = ConcreteMask({"w": (4, 5), "b": (5,)})
    sample = mask.sample(0.5, generator=_gen(0))
    assert all(((v > 0) & (v < 1)).all() for v in sample.values())
    (sample["w"].sum() + sample["b"].sum()).backward()
    grads = [p.grad for p in mask.parameters()]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    with torch.no_grad():
        mask.logits["w"].fill_(2.0)
        mask.logits["b"].fill_(-2.0)
    hard = mask.hard()
    assert hard["w"].eq(1).all() and hard["b"].eq(0).all()
    # keep probability sigmoid(2): the empirical mean of many hard-thresholded samples at T -> 0 matches
    freq = torch.stack([(mask.sample(1e-3, generator=_gen(s))["w"] > 0.5).double().mean() for s in range(200)]).mean()
    assert float(freq) == pytest.approx(1 / (1 + math.exp(-2)), abs=0.02)


def test_concrete_masks_beat_plain_task_arithmetic_on_interfering_tasks():
    gains = []
    for seed in (0, 1):
        base, finetuned, heads, tests = make_merging_tasks(4, random_state=seed)
        acc = lambda body: np.mean([float((heads[t](body(x)).argmax(1) == y).float().mean()) for t, (x, y) in enumerate(tests)])  # noqa: E731
        plain = acc(task_arithmetic(base, finetuned, 0.3))
        est = ConcreteTaskArithmetic(0.3, n_epochs=30, random_state=0).fit(base, finetuned, [x for x, _ in tests], heads)
        assert 0 < est.keep_fraction_ < 1
        assert est.history_[-1]["train_loss"] < est.history_[0]["train_loss"]  # entropy went down
        gains.append(acc(est.merged_model()) - plain)
    assert min(gains) > 0 and np.mean(gains) >= 0.03


# ================================================================== CUDA
@CUDA
def test_models_and_selectors_run_on_cuda():
    lin = nn.Linear(16, 32).cuda()
    small = compress_linear(lin, 8, 2, calibration=torch.randn(50, 16, device="cuda"), n_iter=3, random_state=0)
    assert small(torch.randn(4, 16, device="cuda")).device.type == "cuda"
    g_val, pool, _, _ = _gist_pool()
    sel = GISTSelector(n_components=5, device="cuda").fit(g_val)
    assert sel.score_samples(pool).device.type == "cuda"
    base, finetuned, heads, tests = make_merging_tasks(2, random_state=0)
    est = ConcreteTaskArithmetic(n_epochs=2, device="cuda", random_state=0).fit(base, finetuned, [x for x, _ in tests], heads)
    assert est.merged_model().weight.device.type == "cuda"
