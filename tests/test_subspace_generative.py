"""Generative / representation subspace methods: MoLRG diffusion, k-Diff, XFactors, Temporal-SCL, MSENet.

Closed forms are checked against independent references (full-covariance Gaussian conditioning,
hand-computed prototypes); each method's qualitative claim is checked on planted generated data.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from graphrec.core import principal_angles
from graphrec.datasets.generators import make_union_of_subspaces
from graphrec.metrics import clustering_accuracy
from graphrec.subspace.diffusion import DiffusionSubspaceClustering, molrg_denoiser, molrg_posterior, noise_levels
from graphrec.subspace.kdiff import KDiffusion, k_target, optimal_k, to_x_eps, twonn_dimension
from graphrec.subspace.msenet import MSENet, MultiScaleProtoNet, SelfAttention2d
from graphrec.subspace.temporal_scl import TemporalSCL, make_progression_sequences, same_label_neighbours
from graphrec.subspace.xfactors import XFactors, gaussian_kl, make_factor_data

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ------------------------------------------------------------------ MoLRG closed form
def _reference_denoiser(x_t, bases, s, gamma, variances, weights):
    """E[x0 | x_t] by explicit Gaussian conditioning with full covariances (slow, independent)."""
    D = x_t.shape[1]
    logp, means = [], []
    for u, v, w in zip(bases, variances, weights):
        cov_x0 = v * u @ u.T
        cov_xt = s**2 * cov_x0 + gamma**2 * np.eye(D)
        cross = s * cov_x0  # Cov(x0, x_t)
        means.append(x_t @ np.linalg.solve(cov_xt, cross.T))
        _, logdet = np.linalg.slogdet(cov_xt)
        quad = np.einsum("nd,nd->n", x_t, np.linalg.solve(cov_xt, x_t.T).T)
        logp.append(np.log(w) - 0.5 * (quad + logdet))
    logp = np.stack(logp, 1)
    post = np.exp(logp - logp.max(1, keepdims=True))
    post /= post.sum(1, keepdims=True)
    return post, np.einsum("nk,knd->nd", post, np.stack(means))


def test_molrg_denoiser_matches_full_covariance_gaussian_conditioning():
    rng = np.random.default_rng(0)
    D = 7
    bases = [np.linalg.qr(rng.standard_normal((D, d)))[0] for d in (2, 3, 1)]  # unequal dimensions
    variances, weights = np.array([0.5, 1.0, 2.0]), np.array([0.2, 0.3, 0.5])
    x_t = rng.standard_normal((20, D))
    for s, gamma in [(1.0, 0.3), (0.8, 0.6), (0.3, 1.0)]:
        post_ref, mean_ref = _reference_denoiser(x_t, bases, s, gamma, variances, weights)
        post = molrg_posterior(x_t, bases, s, gamma, variances=variances, weights=weights).numpy()
        mean = molrg_denoiser(x_t, bases, s, gamma, variances=variances, weights=weights).numpy()
        np.testing.assert_allclose(post, post_ref, atol=1e-10)
        np.testing.assert_allclose(mean, mean_ref, atol=1e-10)


def test_molrg_denoiser_is_the_mmse_estimator_by_monte_carlo():
    # Among estimators, E[x0|x_t] has the smallest squared error: beat the plain projection.
    X, _, B = make_union_of_subspaces(4000, 3, 10, 2, return_bases=True, random_state=1)
    s, g = 0.8, 0.6
    rng = np.random.default_rng(2)
    v = 1.0 / 2  # make_union_of_subspaces draws codes with variance 1 / subspace_dim
    x_t = s * X + g * rng.standard_normal(X.shape)
    best = molrg_denoiser(x_t, B, s, g, variances=np.full(3, v)).numpy()
    mse_best = ((best - X) ** 2).sum(1).mean()
    for scale in (0.7, 1.3):
        worse = molrg_denoiser(x_t, B, s, g, variances=np.full(3, v * scale)).numpy()
        assert mse_best < ((worse - X) ** 2).sum(1).mean()


def test_noise_levels_and_input_validation():
    s, g = noise_levels(torch.tensor([0.25, 0.75]))
    np.testing.assert_allclose((s**2 + g**2).numpy(), 1.0, rtol=1e-6)
    u = np.eye(4)[:, :2]
    with pytest.raises(ValueError, match="t must lie"):
        noise_levels(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="rows but x_t has"):
        molrg_denoiser(np.ones((3, 5)), [u], 1.0, 1.0)
    with pytest.raises(ValueError, match="gamma must be positive"):
        molrg_denoiser(np.ones((3, 4)), [u], 1.0, 0.0)
    with pytest.raises(ValueError, match="weights must be"):
        molrg_denoiser(np.ones((3, 4)), [u, u], 1.0, 1.0, weights=[0.9, 0.9])
    with pytest.raises(ValueError, match="NaN"):
        molrg_denoiser(np.full((3, 4), np.nan), [u], 1.0, 1.0)
    with pytest.raises(TypeError, match="bases"):
        molrg_denoiser(np.ones((3, 4)), [], 1.0, 1.0)
    with pytest.raises(ValueError, match="t_min < t_max"):
        DiffusionSubspaceClustering(t_min=0.6, t_max=0.5).fit(np.random.default_rng(0).standard_normal((20, 5)))
    with pytest.raises(ValueError, match="init"):
        DiffusionSubspaceClustering(2, 1, init="kmeans").fit(np.random.default_rng(0).standard_normal((20, 5)))


def _max_angles_deg(found, planted):
    cost = np.array([[float(principal_angles(torch.tensor(f), torch.tensor(p)).max()) for p in planted] for f in found])
    rows, cols = linear_sum_assignment(cost)
    return np.degrees(cost[rows, cols])


@pytest.fixture(scope="module")
def trained_molrg():
    X, y, B = make_union_of_subspaces(600, 3, 30, 3, noise=0.1, return_bases=True, random_state=0)
    start = DiffusionSubspaceClustering(3, 3, n_epochs=1, lr=1e-9, n_init=1, batch_size=600, random_state=0).fit(X)
    model = DiffusionSubspaceClustering(3, 3, n_epochs=40, n_init=1, batch_size=600, random_state=0).fit(X)
    return X, y, B, start, model


def test_trained_denoiser_recovers_the_planted_subspaces(trained_molrg):
    X, y, B, start, model = trained_molrg
    angles = _max_angles_deg(model.bases_, B)
    assert angles.max() < 5.0, angles
    # The training, not the seeding, does the work: the seeded bases are far off.
    assert _max_angles_deg(start.bases_, B).min() > 10.0
    assert clustering_accuracy(y, model.labels_) >= 0.95
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    # Learnt latent variance matches the generator's 1 / subspace_dim.
    np.testing.assert_allclose(model.variances_, 1 / 3, rtol=0.2)


def test_trained_denoiser_matches_the_closed_form_optimum(trained_molrg):
    X, _, B, _, model = trained_molrg
    rng = np.random.default_rng(3)
    for t in (0.1, 0.3):
        s, g = math.cos(math.pi * t / 2), math.sin(math.pi * t / 2)
        x_t = s * X + g * rng.standard_normal(X.shape)
        optimal = molrg_denoiser(x_t, B, s, g, variances=np.full(3, 1 / 3)).numpy()
        learnt = model.denoise(x_t, t)
        rel = np.linalg.norm(learnt - optimal) / np.linalg.norm(optimal)
        assert rel < 0.1, (t, rel)
    with pytest.raises(ValueError, match="one per row"):
        model.denoise(X[:3], [0.1, 0.2])
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :5])


def test_one_component_molrg_training_is_pca():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 3)) * np.array([3.0, 2.0, 1.5]) @ np.linalg.qr(rng.standard_normal((12, 3)))[0].T
    X += 0.05 * rng.standard_normal(X.shape)
    model = DiffusionSubspaceClustering(1, 3, n_epochs=60, n_init=1, batch_size=100, init="random", random_state=0).fit(X)
    pca = np.linalg.svd(X, full_matrices=False)[2][:3].T
    assert np.degrees(float(principal_angles(torch.tensor(model.bases_[0]), torch.tensor(pca)).max())) < 3.0


# ------------------------------------------------------------------ k-Diff
@pytest.mark.parametrize("k", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_k_target_conversions_recover_x_and_eps(k):
    gen = torch.Generator().manual_seed(0)
    x, eps = torch.randn(16, 5, generator=gen, dtype=torch.float64), torch.randn(16, 5, generator=gen, dtype=torch.float64)
    t = torch.linspace(0.05, 0.95, 16, dtype=torch.float64)
    z = t[:, None] * x + (1 - t[:, None]) * eps
    x_hat, eps_hat = to_x_eps(k_target(x, eps, k), z, t, k)
    torch.testing.assert_close(x_hat, x, atol=1e-10, rtol=0)
    torch.testing.assert_close(eps_hat, eps, atol=1e-10, rtol=0)
    if k == 0.5:
        torch.testing.assert_close(k_target(x, eps, k), (x - eps) / 2)


def test_optimal_k_and_intrinsic_dimension():
    assert optimal_k(2, 2) == 0.5
    assert optimal_k(1024, 16) == pytest.approx(1024 / 1040)
    rng = np.random.default_rng(0)
    plane = rng.standard_normal((2000, 3)) @ rng.standard_normal((3, 20))
    assert twonn_dimension(plane) == pytest.approx(3.0, abs=0.4)
    triangle = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])   # r2 = r1 everywhere: no estimate
    with pytest.raises(ValueError, match="equidistant"):
        twonn_dimension(triangle)
    with pytest.raises(ValueError, match="cannot exceed"):
        optimal_k(2, 3)
    with pytest.raises(ValueError, match="k must"):
        k_target(np.ones((2, 2)), np.ones((2, 2)), 1.5)
    with pytest.raises(ValueError, match="same shape"):
        k_target(np.ones((2, 2)), np.ones((3, 2)), 0.5)
    with pytest.raises(ValueError, match="open interval"):
        to_x_eps(np.ones((2, 2)), np.ones((2, 2)), 1.0, 0.5)
    with pytest.raises(ValueError, match="'learn' or 'auto'"):
        KDiffusion(k="x0").fit(np.ones((4, 2)))


def _ring_in(D: int, n: int = 1000, seed: int = 0):
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0, 2 * np.pi, n)
    a = np.c_[np.cos(theta), np.sin(theta)] * (1 + 0.05 * rng.standard_normal(n))[:, None]
    u = np.linalg.qr(rng.standard_normal((D, 2)))[0]
    return a @ u.T, u


def test_x_prediction_beats_eps_prediction_when_intrinsic_dim_is_small():
    # d = 2 << D = 32 with a width-16 network: eps (full-dimensional) cannot pass the bottleneck.
    X, u = _ring_in(32)
    off = {}
    for k in (1.0, 0.0):
        model = KDiffusion(k=k, hidden_dim=16, n_epochs=30, random_state=0).fit(X)
        S = model.sample(300, random_state=1)
        off[k] = np.linalg.norm(S - S @ u @ u.T, axis=1).mean()
    assert off[1.0] <= off[0.0] / 3, off


@pytest.mark.slow
def test_learnt_k_follows_the_data_dimension():
    X, _ = _ring_in(64, n=2000)
    high = KDiffusion(k="learn", hidden_dim=32, n_epochs=200, random_state=0).fit(X)
    assert high.k_ >= 0.75
    X2, _ = _ring_in(2, n=2000)
    low = KDiffusion(k="learn", hidden_dim=32, n_epochs=200, random_state=0).fit(X2)
    assert 0.3 <= low.k_ <= 0.8


def test_auto_k_uses_the_twonn_dimension():
    X, _ = _ring_in(16, n=400)
    model = KDiffusion(k="auto", hidden_dim=8, n_epochs=1, random_state=0).fit(X)
    assert 1.0 <= model.intrinsic_dim_ <= 2.5
    assert model.k_ == pytest.approx(optimal_k(16, model.intrinsic_dim_))


# ------------------------------------------------------------------ XFactors
def test_gaussian_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    torch.testing.assert_close(gaussian_kl(mu, logvar), torch.distributions.kl_divergence(q, p).sum(1))


@pytest.fixture(scope="module")
def xfactors_fit():
    X, F = make_factor_data(1500, 3, 3, 24, random_state=0)
    model = XFactors(hidden_dim=64, n_epochs=80, batch_size=128, variant="out", random_state=0).fit(X[:1000], F[:1000])
    return X, F, model


def _probe(z_train, y_train, z_test, y_test) -> float:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000).fit(z_train, y_train).score(z_test, y_test)


def test_xfactors_puts_each_factor_in_its_own_block(xfactors_fit):
    X, F, model = xfactors_fit
    chance, off = 1 / 3, ~np.eye(3, dtype=bool)
    for normalize, margin in ((True, 0.1), (False, 0.2)):
        Z = model.transform(X, normalize=normalize)
        acc = np.array([[_probe(Z[:1000, b], F[:1000, f], Z[1000:, b], F[1000:, f]) for f in range(3)]
                        for b in model.factor_slices_])
        assert np.diag(acc).min() >= 0.9, acc
        # Block directions (what the InfoNCE shapes) carry nothing of the other factors; block
        # norms leak a little (held down only by the KL term).
        assert acc[off].max() <= chance + margin, (normalize, acc)


def test_xfactors_swap_transfers_the_factor(xfactors_fit):
    X, F, model = xfactors_fit
    host, donor = X[1000:1200], X[1200:1400]
    swapped = model.transform(model.swap(host, donor, 0))
    blk = model.factor_slices_[0]
    z_host, z_donor = model.transform(host), model.transform(donor)
    closer_to_donor = np.linalg.norm(swapped[:, blk] - z_donor[:, blk], axis=1) < np.linalg.norm(swapped[:, blk] - z_host[:, blk], axis=1)
    differs = F[1000:1200, 0] != F[1200:1400, 0]
    assert closer_to_donor[differs].mean() >= 0.8
    with pytest.raises(ValueError, match="factor"):
        model.swap(host, donor, 3)


# ------------------------------------------------------------------ Temporal-SCL
def test_same_label_neighbours_by_brute_force():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 3)), rng.integers(0, 3, 40)
    nn_idx = same_label_neighbours(X, y)
    for i in range(40):
        same = [j for j in range(40) if y[j] == y[i] and j != i]
        assert nn_idx[i] == min(same, key=lambda j: np.linalg.norm(X[j] - X[i]))


@pytest.fixture(scope="module")
def progression():
    X, states, outcomes = make_progression_sequences(130, 20, noise=1.5, random_state=0)
    return X[:80], states[:80], outcomes[:80], X[80:], states[80:], outcomes[80:]


def _adjacent_ratio(Z):
    flat = Z.reshape(-1, Z.shape[-1])
    idx = np.random.default_rng(0).integers(0, len(flat), (3000, 2))
    return np.linalg.norm(Z[:, 1:] - Z[:, :-1], axis=2).mean() / np.linalg.norm(flat[idx[:, 0]] - flat[idx[:, 1]], axis=1).mean()


def test_temporal_scl_keeps_latent_states_and_smooths_trajectories(progression):
    from sklearn.neighbors import KNeighborsClassifier

    X, S, y, Xt, St, yt = progression
    smooth = TemporalSCL(lambda_temporal=5.0, n_epochs=10, random_state=0).fit(X, y)
    rough = TemporalSCL(lambda_temporal=0.0, n_epochs=10, random_state=0).fit(X, y)
    Z, Zt = smooth.transform(X), smooth.transform(Xt)
    agree = KNeighborsClassifier(5).fit(Z.reshape(-1, Z.shape[-1]), S.ravel()).score(Zt.reshape(-1, Z.shape[-1]), St.ravel())
    assert agree >= 0.9
    assert _adjacent_ratio(Zt) <= 0.85 * _adjacent_ratio(rough.transform(Xt))
    proba = smooth.predict_proba(Xt)
    assert proba.shape == (50, 20, smooth.n_classes_)
    assert (proba[:, -1].argmax(1) == yt).mean() >= 0.6
    with pytest.raises(ValueError, match="got shape"):
        smooth.transform(np.ones((3, 4)))


# ------------------------------------------------------------------ MSENet
def test_single_stage_without_attention_is_a_hand_computed_protonet():
    torch.manual_seed(0)
    net = MultiScaleProtoNet(1, (4, 6, 8), (2,), attention=False, learn_weights=False).eval()
    sx, qx = torch.randn(6, 1, 8, 8), torch.randn(4, 1, 8, 8)
    sy = torch.tensor([0, 0, 1, 1, 2, 2])
    with torch.no_grad():
        logits = net(sx, sy, qx, 3)
        f = lambda x: net.blocks[2](net.blocks[1](net.blocks[0](x))).mean(dim=(2, 3))  # noqa: E731
        fs, fq = f(sx), f(qx)
        protos = torch.stack([fs[sy == c].mean(0) for c in range(3)])
        expected = -torch.sqrt(((fq[:, None] - protos[None]) ** 2).sum(-1))
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)


def test_self_attention_starts_as_identity_and_is_trainable():
    attn = SelfAttention2d(16)
    x = torch.randn(2, 16, 4, 4)
    torch.testing.assert_close(attn(x), x)
    names = {n for n, _ in attn.named_parameters()}
    assert {"query.weight", "key.weight", "value.weight", "gamma"} <= names


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images / 16.0, d.target


def test_msenet_learns_novel_digit_classes_above_chance(digits):
    X, y = digits
    base, novel = y < 5, y >= 5
    model = MSENet(channels=(8, 16, 16), n_epochs=5, episodes_per_epoch=10, random_state=0)
    before = {n: p.detach().clone() for n, p in
              MSENet(channels=(8, 16, 16), n_epochs=1, episodes_per_epoch=1, lr=1e-12, lr_weights=1e-12,
                     random_state=0).fit(X[base], y[base]).net_.named_parameters()}
    model.fit(X[base], y[base])
    acc = model.score_episodes(X[novel], y[novel], n_episodes=20, random_state=0)
    assert acc >= 0.5, acc  # 5-way: chance is 0.2
    after = dict(model.net_.named_parameters())
    # The attention convolutions themselves are trained (unlike the official code).
    assert not torch.allclose(before["attention.0.query.weight"], after["attention.0.query.weight"])
    assert model.stage_weights_.shape == (3,)
    with pytest.raises(ValueError, match="image shape"):
        model.predict_episode(np.zeros((5, 4, 4)), np.arange(5), np.zeros((2, 4, 4)))


# ------------------------------------------------------------------ devices
@cuda
def test_models_run_on_cuda():
    X, _ = make_union_of_subspaces(60, 2, 8, 2, random_state=0)
    DiffusionSubspaceClustering(2, 2, n_epochs=2, n_init=1, device="cuda", random_state=0).fit(X)
    KDiffusion(k="learn", hidden_dim=8, n_epochs=2, device="cuda", random_state=0).fit(X).sample(3)
    Xf, F = make_factor_data(64, 2, 2, 6, random_state=0)
    XFactors(hidden_dim=8, n_epochs=2, batch_size=32, device="cuda", random_state=0).fit(Xf, F).transform(Xf)
    Xs, _, ys = make_progression_sequences(10, 5, 3, 4, random_state=0)
    TemporalSCL(hidden_dim=8, n_epochs=2, device="cuda", random_state=0).fit(Xs, ys)
    MSENet(channels=(4, 4, 4), n_way=2, n_shot=2, n_query=2, n_epochs=1, episodes_per_epoch=2, device="cuda",
           random_state=0).fit(np.random.default_rng(0).standard_normal((24, 4, 4)), np.repeat(np.arange(3), 8))
