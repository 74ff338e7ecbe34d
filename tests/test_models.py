"""Model papers: Grassmann flows, SSVI, CDSP-MoE, information-shaped Koopman representations.

Closed forms (Plücker relations, folded-normal moments, von Neumann entropy of isotropic
covariances, ridge operators of linear systems), slow references (per-offset Plücker mixing,
gathered-column cosines, looped InfoNCE), exact causality, and planted answers (gradient conflict
of opposite tasks, the slow-manifold Koopman spectrum).
"""
from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from graphrec.datasets.generators import make_slow_manifold
from graphrec.models.grassmann import CausalGrassmannMixing, CausalTransformerLM, CharLanguageModel, GrassmannLM, plucker
from graphrec.models.koopman import InfoKoopman, ridge_koopman, temporal_infonce, von_neumann_entropy
from graphrec.models.moe import CDSPMoERegressor, SharedSubspaceMoE, conflict_loss, sparse_aligned_cosine
from graphrec.models.ssvi import SparseMeanFieldLinear, SSVIClassifier, folded_normal_mean, folded_normal_snr

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ================================================================== Grassmann flows
def test_plucker_coordinates_satisfy_the_plucker_relations_and_scale_by_the_determinant():
    g = torch.Generator().manual_seed(0)
    r = 6
    u, v = torch.randn(r, generator=g, dtype=torch.float64), torch.randn(r, generator=g, dtype=torch.float64)
    p = plucker(u, v)
    assert p.shape == (r * (r - 1) // 2,)
    idx = {(int(i), int(j)): k for k, (i, j) in enumerate(torch.triu_indices(r, r, 1).T)}
    worst = 0.0
    for i in range(r):
        for j in range(i + 1, r):
            for k in range(j + 1, r):
                for m in range(k + 1, r):
                    rel = p[idx[i, j]] * p[idx[k, m]] - p[idx[i, k]] * p[idx[j, m]] + p[idx[i, m]] * p[idx[j, k]]
                    worst = max(worst, abs(float(rel)))
    assert worst < 1e-10
    a, b, c, d = 1.5, -0.3, 0.7, 2.0
    torch.testing.assert_close(plucker(a * u + b * v, c * u + d * v), (a * d - b * c) * p, atol=1e-12, rtol=0)
    # Hand case: span(e1, e3) in R^3 has p_13 = 1 only (order (0,1), (0,2), (1,2)).
    assert plucker(torch.tensor([1.0, 0, 0]), torch.tensor([0, 0, 1.0])).tolist() == [0.0, 1.0, 0.0]


def _slow_grassmann_mixing(layer: CausalGrassmannMixing, h: torch.Tensor) -> torch.Tensor:
    """Per-position, per-offset reference written straight from the paper's steps 1-5."""
    z = layer.reduce(h)
    batch, length, _ = h.shape
    g = torch.zeros_like(h)
    for t in range(length):
        ps = []
        for delta in layer.offsets:
            if t - delta >= 0:
                p = plucker(z[:, t], z[:, t - delta])
                ps.append(p / (p.norm(dim=-1, keepdim=True) + layer.eps))
        mean = torch.stack(ps).mean(0) if ps else torch.zeros(batch, layer.plucker_proj.in_features, dtype=h.dtype)
        g[:, t] = layer.plucker_proj(mean)
    alpha = torch.sigmoid(layer.gate(torch.cat([h, g], -1)))
    return layer.norm(alpha * h + (1 - alpha) * g)


def test_grassmann_mixing_matches_the_per_offset_reference():
    torch.manual_seed(0)
    layer = CausalGrassmannMixing(12, rank=5, offsets=(1, 2, 4)).double()
    h = torch.randn(2, 9, 12, dtype=torch.float64)
    torch.testing.assert_close(layer(h), _slow_grassmann_mixing(layer, h), atol=1e-10, rtol=0)


def test_grassmann_mixing_gradients_are_finite_on_degenerate_planes():
    # A repeated hidden state makes z_t parallel to z_{t-delta}: the Plücker norm is exactly 0,
    # where the derivative of its square root is infinite; the gradients must stay finite.
    torch.manual_seed(0)
    layer = CausalGrassmannMixing(8, rank=4, offsets=(1, 2))
    h = torch.randn(1, 1, 8).expand(2, 5, 8).clone().requires_grad_()
    out = layer(h)
    out.sum().backward()
    assert bool(torch.isfinite(out).all())
    assert bool(torch.isfinite(h.grad).all())
    assert all(bool(torch.isfinite(p.grad).all()) for p in layer.parameters())


@pytest.mark.parametrize("arch", ["grassmann", "transformer"])
def test_language_models_are_exactly_causal(arch):
    torch.manual_seed(0)
    model = GrassmannLM(11, 16, 2, rank=4, max_len=40) if arch == "grassmann" else CausalTransformerLM(11, 16, 2, n_heads=2, max_len=40)
    model.eval()
    tokens = torch.randint(0, 11, (3, 40))
    for t in (0, 7, 25):
        other = tokens.clone()
        other[:, t + 1 :] = (other[:, t + 1 :] + 1 + torch.randint(0, 9, other[:, t + 1 :].shape)) % 11
        with torch.no_grad():
            a, b = model(tokens), model(other)
        assert torch.equal(a[:, : t + 1], b[:, : t + 1]), f"position <= {t} saw the future"
        assert not torch.equal(a[:, t + 1 :], b[:, t + 1 :])


def _markov_text(n: int, seed: int) -> str:
    """An order-1 Markov chain over 6 symbols with a sparse, peaked transition table."""
    rng = np.random.default_rng(seed)
    symbols = list("abcde ")
    nxt = {s: rng.permutation(symbols)[:2] for s in symbols}
    out = ["a"]
    for _ in range(n - 1):
        out.append(nxt[out[-1]][0] if rng.random() < 0.8 else nxt[out[-1]][1])
    return "".join(out)


def test_short_training_lowers_the_loss_of_both_architectures():
    text = _markov_text(3000, 0)
    for arch in ("grassmann", "transformer"):
        lm = CharLanguageModel(arch, d_model=16, n_layers=1, rank=4, offsets=(1, 2), n_heads=2, context_length=24,
                               batch_size=16, steps_per_epoch=10, n_epochs=4, lr=1e-2, random_state=0).fit(text)
        losses = [r["train_loss"] for r in lm.history_]
        assert losses[-1] < losses[0] - 0.3, losses
        # The chain's entropy rate is ~0.5 nats (perplexity ~1.65); uniform over 6 symbols is 6.
        assert lm.perplexity(_markov_text(800, 0)) < 3.0
        assert lm.vocab_ == " abcde"


def test_char_lm_errors_and_reproducibility():
    text = _markov_text(400, 1)
    kw = dict(d_model=8, n_layers=1, rank=3, offsets=(1,), context_length=8, batch_size=4, steps_per_epoch=3, n_epochs=1)
    a = CharLanguageModel(**kw, random_state=3).fit(text)
    b = CharLanguageModel(**kw, random_state=3).fit(text)
    assert a.perplexity(text) == b.perplexity(text)
    with pytest.raises(ValueError, match="not seen in fit"):
        a.perplexity("xyz" * 10)
    with pytest.raises(ValueError, match="architecture"):
        CharLanguageModel("rnn", **kw).fit(text)
    with pytest.raises(ValueError, match="offsets"):
        CharLanguageModel(**{**kw, "offsets": (1, 1)}).fit(text)
    with pytest.raises(TypeError, match="text must be a str"):
        CharLanguageModel(**kw).fit(b"bytes" * 10)
    with pytest.raises(ValueError, match="share a last dimension"):
        plucker(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match="token ids"):
        a.module_(torch.tensor([[0, 99]]))
    with pytest.raises(ValueError, match="sequence length"):
        a.module_(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible"):
        CausalTransformerLM(5, d_model=10, n_heads=3)


# ================================================================== SSVI
def test_folded_normal_moments_match_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu, sigma = torch.tensor([0.3, -1.2, 0.0], dtype=torch.float64), torch.tensor([0.5, 0.7, 2.0], dtype=torch.float64)
    theta = (mu[:, None] + sigma[:, None] * torch.randn(3, 2_000_000, generator=g, dtype=torch.float64)).abs()
    mc_mean = theta.mean(1)
    mc_snr = mc_mean / theta.std(1)
    torch.testing.assert_close(folded_normal_mean(mu, sigma), mc_mean, rtol=3e-3, atol=0)
    torch.testing.assert_close(folded_normal_snr(mu, sigma), mc_snr, rtol=3e-3, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_folded_normal_snr_is_accurate_for_confident_weights(dtype):
    # Var|theta| = mu^2 + sigma^2 - E|theta|^2 cancels catastrophically for |mu| >> sigma (float32:
    # SNR 1e4 came out as 9e18); the exact SNR tends to |mu| / sigma.
    from scipy.stats import foldnorm

    mu = torch.tensor([1.0, 100.0, -1.0, 3.0, -5.0, 0.0], dtype=dtype)
    sigma = torch.tensor([1e-3, 1e-2, 1e-4, 0.2, 0.7, 1.0], dtype=dtype)
    ref = []
    for m, s in zip(mu.tolist(), sigma.tolist()):
        mean, var = foldnorm.stats(abs(m) / s, scale=s, moments="mv")
        ref.append(float(mean / np.sqrt(var)))
    got = folded_normal_snr(mu, sigma)
    assert got.dtype == dtype
    np.testing.assert_allclose(got.double().numpy(), ref, rtol=1e-5 if dtype == torch.float32 else 1e-9)


def test_drop_and_grow_keeps_the_count_drops_lowest_snr_and_resets_grown_weights():
    g = torch.Generator().manual_seed(0)
    layer = SparseMeanFieldLinear(10, 6, density=0.25, generator=g)
    n_active = layer.n_active
    assert n_active == 15 and int(layer.mask.sum()) == 15
    active = layer.mask.view(-1).nonzero().view(-1)
    with torch.no_grad():  # planted SNRs: active weight k gets |mu| = k + 1 with sigma 1, so the 4 first are weakest
        layer.weight_mu.view(-1)[active] = torch.arange(1.0, 16.0)
        layer.weight_rho.view(-1)[active] = math.log(math.e - 1)  # softplus = 1
        layer.weight_rho.view(-1)[active[-1]] = math.log(math.exp(3.0) - 1)  # sigma 3 for the strongest mean
    layer(torch.randn(7, 10, generator=g)).sum().backward()
    planted_grad = torch.zeros(60)
    inactive = (~layer.mask.view(-1)).nonzero().view(-1)
    planted_grad[inactive[[3, 17, 30, 44]]] = torch.tensor([5.0, -9.0, 7.0, 6.0])
    layer.dense_grad = planted_grad.view(6, 10)
    mean_sigma = (14 * 1.0 + 3.0) / 15
    grown = layer.drop_and_grow(4)
    assert int(layer.mask.sum()) == n_active
    assert sorted(grown.tolist()) == sorted(inactive[[3, 17, 30, 44]].tolist())
    assert not layer.mask.view(-1)[active[:4]].any() and layer.mask.view(-1)[active[4:]].all()
    assert torch.all(layer.weight_mu.view(-1)[grown] == 0)
    torch.testing.assert_close(layer.weight_sigma.view(-1)[grown], torch.full((4,), mean_sigma), rtol=1e-5, atol=0)


def _digits():
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    x = x[order] / 16.0
    return x[:1300], y[order][:1300], x[1300:], y[order][1300:]


def _ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    conf, correct = p.max(1), p.argmax(1) == y
    edges = np.linspace(0, 1, bins + 1)
    return float(sum(((conf > a) & (conf <= b)).mean() * abs(correct[(conf > a) & (conf <= b)].mean() - conf[(conf > a) & (conf <= b)].mean())
                     for a, b in zip(edges[:-1], edges[1:]) if ((conf > a) & (conf <= b)).any()))


def test_ssvi_keeps_its_sparsity_exactly_and_classifies_digits_with_calibrated_uncertainty():
    x, y, x_test, y_test = _digits()
    clf = SSVIClassifier(hidden=(64,), density=0.1, delta=15, n_epochs=25, batch_size=128, random_state=0).fit(x, y)
    targets = [round(0.1 * 64 * 64), round(0.1 * 64 * 10)]
    assert len(clf.active_history_) >= 5
    assert all(record == targets for record in clf.active_history_)
    assert [int(layer.mask.sum()) for layer in clf.module_.layers] == [round(0.1 * 64 * 64), round(0.1 * 64 * 10)]
    proba = clf.predict_proba(x_test)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    acc = float((clf.classes_[proba.argmax(1)] == y_test).mean())
    assert acc > 0.85, acc  # chance is 0.1
    assert _ece(proba, y_test) < 0.08
    # Uncertainty: predictive entropy is higher on pure-noise inputs than on real digits.
    noise = np.random.default_rng(1).uniform(0, 1, size=(200, 64))
    entropy = lambda p: -(p * np.log(p + 1e-12)).sum(1).mean()  # noqa: E731
    assert entropy(clf.predict_proba(noise)) > entropy(proba)


def test_ssvi_errors():
    x, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError, match="density"):
        SSVIClassifier(density=0.0).fit(x, y)
    with pytest.raises(ValueError, match="alpha"):
        SSVIClassifier(alpha=1.5).fit(x, y)
    clf = SSVIClassifier(hidden=(4,), n_epochs=1, random_state=0).fit(x, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(np.ones((2, 4)))
    with pytest.raises(RuntimeError, match="backward"):
        SparseMeanFieldLinear(3, 3, 0.5).drop_and_grow(1)


# ================================================================== CDSP-MoE
def test_sparse_aligned_cosine_equals_the_gathered_cosine():
    g = torch.Generator().manual_seed(0)
    s_i, s_j = torch.tensor([0, 2, 3, 7, 9]), torch.tensor([1, 3, 4, 9, 11, 12])
    g_i, g_j = torch.randn(4, 5, generator=g, dtype=torch.float64), torch.randn(4, 6, generator=g, dtype=torch.float64)
    a = g_i[:, [2, 4]].reshape(-1)  # columns 3 and 9
    b = g_j[:, [1, 3]].reshape(-1)
    expected = a @ b / (a.norm() * b.norm())
    torch.testing.assert_close(sparse_aligned_cosine(g_i, s_i, g_j, s_j), expected, atol=1e-14, rtol=0)
    assert float(sparse_aligned_cosine(g_i, s_i, g_j[:, :2], torch.tensor([5, 6]))) == 0.0


def test_conflict_loss_gradient_is_relu_of_minus_cosine_off_the_diagonal():
    alpha = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    cos = torch.tensor([[1.0, -0.4, 0.2], [-0.4, 1.0, -0.9], [0.2, -0.9, 1.0]], dtype=torch.float64)
    conflict_loss(alpha, cos).backward()
    expected = torch.tensor([[0, 0.4, 0], [0.4, 0, 0.9], [0, 0.9, 0]], dtype=torch.float64)
    torch.testing.assert_close(alpha.grad, expected)


def test_moe_subspaces_start_on_home_blocks_with_the_default_quota():
    moe = SharedSubspaceMoE(8, n_experts=4, n_tasks=2, generator=torch.Generator().manual_seed(0))
    s = moe.subspaces()
    assert s.shape == (4, math.floor(32 / 2))
    for i in range(4):  # sigmoid(1) on the diagonal beats sigmoid(0.1 + noise): the home block is selected
        assert set(range(8 * i, 8 * i + 8)) <= set(s[i].tolist())
    y = moe(torch.randn(5, 8), torch.tensor([0, 1, 0, 1, 1]))
    assert y.shape == (5, 8)


def _two_task_data(sign: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, 6))
    task = np.arange(600) % 2
    f = np.tanh(2 * x @ (rng.normal(size=6) / math.sqrt(6)))
    return x, np.where(task == 0, f, sign * f), task


def test_planted_gradient_conflict_prunes_the_shared_topology():
    # Two experts, two tasks: with opposite targets (sign -1) the experts' gradients on their shared
    # units conflict, cos < 0, and the game lowers alpha_01; with equal targets it does not.
    # Both fits start from the same alpha (same random_state).
    final = {}
    for sign in (-1.0, 1.0):
        x, y, task = _two_task_data(sign)
        reg = CDSPMoERegressor(d_model=8, n_experts=2, top_k=1, n_epochs=3, batch_size=64, random_state=0).fit(x, y, task)
        cos = [c[0, 1] for c in reg.conflict_history_]  # epoch means of the lagged cosine
        assert (min(cos) < -0.2) if sign < 0 else (min(cos) > 0.0), cos
        final[sign] = (reg.alpha_[0, 1] + reg.alpha_[1, 0]) / 2
    assert final[-1.0] < final[1.0] - 0.5, final


def test_moe_quality_against_the_unpruned_dense_moe_is_reported_not_hidden():
    x, y, task = _two_task_data(-1.0, seed=1)
    scores = {}
    for name, kw in {"cdsp": {}, "dense": dict(lambda_conf=0.0, rank_quota=32)}.items():
        reg = CDSPMoERegressor(d_model=8, n_experts=2, n_epochs=15, batch_size=64, random_state=0, **kw).fit(x[:400], y[:400], task[:400])
        scores[name] = float(np.mean((reg.predict(x[400:], task[400:]) - y[400:]) ** 2) / np.var(y[400:]))
    assert scores["cdsp"] < 0.5 and scores["dense"] < 0.5, scores  # both fit the opposite tasks (R^2 > 0.5)


def test_moe_errors():
    x, y, task = _two_task_data(1.0)
    with pytest.raises(ValueError, match="divisible"):
        CDSPMoERegressor(d_model=8, n_experts=3).fit(x, y, task)
    with pytest.raises(ValueError, match="top_k"):
        CDSPMoERegressor(d_model=8, n_experts=2, top_k=3).fit(x, y, task)
    reg = CDSPMoERegressor(d_model=4, n_experts=2, n_epochs=1, random_state=0).fit(x, y, task)
    with pytest.raises(ValueError, match="task ids"):
        reg.predict(x[:2], np.array([0, 5]))
    with pytest.raises(ValueError, match="square"):
        conflict_loss(torch.zeros(2, 3), torch.zeros(2, 3))


# ================================================================== Koopman
def test_von_neumann_entropy_of_isotropic_and_rank_one_covariances():
    # Rows +-e_i (i < 5) in R^7: the covariance is exactly isotropic of rank 5.
    eye = torch.eye(7, dtype=torch.float64)[:5]
    z = torch.cat([eye, -eye]).repeat(3, 1)
    assert float(von_neumann_entropy(z)) == pytest.approx(math.log(5), abs=1e-6)
    line = torch.linspace(-1, 1, 50, dtype=torch.float64)[:, None] * torch.tensor([[1.0, 2.0, -1.0]], dtype=torch.float64)
    assert float(von_neumann_entropy(line)) < 1e-3


def test_ridge_koopman_recovers_a_linear_system():
    g = torch.Generator().manual_seed(0)
    a = torch.tensor([[0.9, 0.2, 0.0], [-0.1, 0.8, 0.1], [0.0, 0.05, 0.95]], dtype=torch.float64)
    z = [torch.randn(40, 3, generator=g, dtype=torch.float64)]
    for _ in range(10):
        z.append(z[-1] @ a)
    zz = torch.stack(z, 1)
    k = ridge_koopman(zz[:, :-1].reshape(-1, 3), zz[:, 1:].reshape(-1, 3), ridge=1e-8)
    torch.testing.assert_close(k, a, atol=1e-6, rtol=0)


def test_ridge_koopman_survives_collinear_float32_latents():
    # A latent coordinate that copies another, next to large ones: in float32, Z^T Z + 1e-4 I rounds to a
    # singular matrix (torch.linalg.solve raises on it); the float64 solve still fits K.
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3712, 3, generator=g) * 1e3
    z = torch.cat([z, z[:, :1]], 1)
    z_next = z @ torch.randn(4, 4, generator=g) * 0.1
    k = ridge_koopman(z, z_next, ridge=1e-4)
    assert k.dtype == torch.float32
    assert float((z @ k - z_next).abs().max() / z_next.abs().max()) < 1e-5
    with pytest.raises(ValueError, match="ridge"):  # a zero coordinate and no ridge: singular in any precision
        ridge_koopman(torch.cat([z, torch.zeros(3712, 1)], 1), torch.cat([z_next, torch.zeros(3712, 1)], 1), ridge=0.0)


def test_temporal_infonce_matches_a_loop():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 6, 3, generator=g, dtype=torch.float64)
    tau, k = 0.5, 2
    total, count = 0.0, 0
    for b in range(2):
        zn = F.normalize(z[b], dim=1)
        for n in range(6):
            others = [a for a in range(6) if a != n]
            log_den = torch.logsumexp(torch.stack([zn[n] @ zn[a] / tau for a in others]), 0)
            pos = [p for p in others if abs(p - n) <= k]
            total += float(-sum(zn[n] @ zn[p] / tau - log_den for p in pos) / len(pos))
            count += 1
    assert float(temporal_infonce(z, k=k, tau=tau)) == pytest.approx(total / count, abs=1e-12)


def test_koopman_eigenvalues_recover_the_slow_manifold_spectrum():
    # A single training can stall in a poor optimum whose final loss is 8-270x higher (seeds 1, 3 and 7 of 0-7
    # at 600 epochs: slow modes merged into a complex pair or 50-step errors of 25-65%), and which seeds do
    # changes with the CPU's float rounding; n_init=3 keeps the lowest-loss training. Measured with n_init=3
    # over random_state 0-5: slow eigenvalues within .036, the fast one within .092 (it decays to 5% within
    # 10 steps, so the trajectories pin it loosely), 50-step relative errors .002-.010.
    # planted: the constant, x1, x1^2 and x2 - b x1^2
    x, planted = make_slow_manifold(128, 30, return_eigenvalues=True, random_state=0)
    model = InfoKoopman(n_latent=4, hidden=(32, 32), linear_decoder=True, ridge=1e-4, lam_mi=0.0, lam_ent=0.0, horizon=10,
                        lam_lin=1.0, n_epochs=600, batch_size=128, lr=5e-3, n_init=3, random_state=0).fit(x)
    found = np.sort(np.abs(model.eigenvalues_))[::-1]
    assert np.abs(model.eigenvalues_.imag).max() < 1e-6
    np.testing.assert_allclose(found[:3], planted[:3], atol=0.05)
    assert abs(found[3] - planted[3]) < 0.12
    test = make_slow_manifold(30, 51, random_state=1)
    assert np.mean((model.predict(test[:, 0], 50) - test) ** 2) < 0.05 * np.mean(test**2)


def test_koopman_n_init_keeps_the_lowest_loss_training(caplog):
    x = make_slow_manifold(32, 12, random_state=0)
    kw = dict(n_latent=4, hidden=(8,), linear_decoder=True, ridge=1e-4, horizon=3, n_epochs=15, batch_size=16, random_state=0)
    with caplog.at_level(logging.DEBUG, logger="graphrec.models.koopman"):
        model = InfoKoopman(n_init=4, **kw).fit(x)
    losses = [float(r.getMessage().rsplit(" ", 1)[1]) for r in caplog.records if "initialisation" in r.getMessage()]
    assert len(losses) == 4 and len(set(losses)) == 4   # four different trainings
    assert model.best_init_ == int(np.argmin(losses))
    assert model.history_[-1]["train_loss"] == pytest.approx(min(losses), rel=1e-3)
    # n_init=1 is the first of those trainings, as before the option existed
    first = InfoKoopman(**kw).fit(x)
    assert first.best_init_ == 0 and first.history_[-1]["train_loss"] == pytest.approx(losses[0], rel=1e-3)
    with pytest.raises(ValueError, match="n_init"):
        InfoKoopman(n_init=0, **kw).fit(x)


def test_entropy_sign_is_a_parameter_that_shapes_the_latent():
    x = make_slow_manifold(64, 20, random_state=2)
    ranks = {}
    for sign in (-1, 1):
        model = InfoKoopman(n_latent=4, hidden=(16,), lam_mi=0.0, lam_ent=1.0, entropy_sign=sign, n_epochs=40, batch_size=64,
                            lr=5e-3, random_state=0).fit(x)
        ranks[sign] = float(von_neumann_entropy(torch.as_tensor(model.transform(x).reshape(-1, 4))))
    assert ranks[-1] > ranks[1] + 0.2, ranks


def test_koopman_errors():
    x = make_slow_manifold(8, 5, random_state=0)
    with pytest.raises(ValueError, match="entropy_sign"):
        InfoKoopman(entropy_sign=2).fit(x)
    with pytest.raises(ValueError, match="horizon"):
        InfoKoopman(horizon=5).fit(x)
    model = InfoKoopman(n_latent=2, hidden=(4,), n_epochs=1, random_state=0).fit(x)
    with pytest.raises(ValueError, match="state dimension"):
        model.predict(np.ones((2, 3)), 4)
    with pytest.raises(ValueError, match="at least 2 rows"):
        von_neumann_entropy(torch.ones(1, 3))


# ================================================================== devices
@CUDA
def test_models_run_on_cuda():
    text = _markov_text(300, 0)
    lm = CharLanguageModel(d_model=8, n_layers=1, rank=3, offsets=(1,), context_length=8, batch_size=4, steps_per_epoch=2,
                           n_epochs=1, device="cuda", random_state=0).fit(text)
    assert np.isfinite(lm.perplexity(text))
    x, y, _, _ = _digits()
    assert SSVIClassifier(hidden=(8,), n_epochs=1, device="cuda", random_state=0).fit(x[:200], y[:200]).predict(x[:5]).shape == (5,)
    xm, ym, task = _two_task_data(-1.0)
    assert CDSPMoERegressor(d_model=8, n_experts=2, n_epochs=1, device="cuda", random_state=0).fit(xm, ym, task).predict(xm[:3], task[:3]).shape == (3,)
    traj = make_slow_manifold(8, 6, random_state=0)
    assert InfoKoopman(n_latent=2, hidden=(4,), n_epochs=1, device="cuda", random_state=0).fit(traj).predict(traj[:, 0], 3).shape == (8, 4, 2)
