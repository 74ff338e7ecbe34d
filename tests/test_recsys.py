"""DirectAU / BPR / LightGCN: losses by hand, the 8:1:1 protocol, evaluation, recommend and bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.datasets import make_latent_factor_interactions
from graphrec.metrics import evaluate_full_ranking
from graphrec.recsys import BPR, DirectAU, LightGCN, given_split, k_core, ratio_split
from graphrec.recsys.encoders import normalized_bipartite_adjacency
from graphrec.recsys.encoders import MFEncoder
from graphrec.recsys.losses import alignment, bpr_loss, directau_loss, uniformity
from graphrec.recsys.optim import SparseRowAdam
from graphrec.recsys.splits import split_counts


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- losses
def test_directau_loss_hand_computed():
    # users (1,0), (0,1); items (3,0), (2,0) -> normalised (1,0), (1,0)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([[3.0, 0.0], [2.0, 0.0]])
    # alignment: (0 + ||(0,1)-(1,0)||^2 = 2) / 2 = 1; uniformity users: log exp(-2*2) = -4; items: log exp(0) = 0
    assert directau_loss(x, y, gamma=1.0).item() == pytest.approx(1.0 + (-4.0 + 0.0) / 2, abs=1e-6)
    assert directau_loss(x, y, gamma=0.0).item() == pytest.approx(1.0, abs=1e-6)


def test_uniformity_matches_pdist_reference_with_duplicates():
    z = torch.nn.functional.normalize(torch.randn(17, 5, generator=torch.Generator().manual_seed(0)), dim=1)
    z = torch.cat([z, z[:3]])  # duplicated rows count, as in the official in-batch loss
    reference = torch.pdist(z, p=2).pow(2).mul(-2).exp().mean().log()
    assert uniformity(z).item() == pytest.approx(reference.item(), abs=1e-5)
    assert alignment(z, z).item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="at least 2"):
        uniformity(z[:1])


def _pdist_uniformity(z: torch.Tensor) -> torch.Tensor:
    """The official recipe's uniformity (torch.pdist over the pairs b < b'), differentiated by autograd."""
    return torch.pdist(z, p=2).pow(2).mul(-2).exp().mean().log()


def test_uniformity_gradient_matches_pdist_autograd_and_finite_differences():
    g = torch.Generator().manual_seed(1)
    z = torch.nn.functional.normalize(torch.randn(23, 6, generator=g, dtype=torch.float64), dim=1)
    z = torch.cat([z, z[:4]]).requires_grad_()  # duplicates: zero distances, kept as pairs
    ours, = torch.autograd.grad(uniformity(z), z)
    reference, = torch.autograd.grad(_pdist_uniformity(z), z)
    torch.testing.assert_close(ours, reference, rtol=1e-9, atol=1e-12)
    x = torch.randn(9, 4, generator=g, dtype=torch.float64, requires_grad=True)  # not normalised, t = 0.7
    assert torch.autograd.gradcheck(lambda q: uniformity(q, t=0.7), (x,))


def test_directau_loss_gradient_matches_official_recipe():
    g = torch.Generator().manual_seed(2)
    u, i = (torch.randn(31, 8, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2))

    def official(u, i, gamma):  # the README's alignment / uniformity, written out
        x, y = torch.nn.functional.normalize(u, dim=-1), torch.nn.functional.normalize(i, dim=-1)
        align = (x - y).norm(p=2, dim=1).pow(2).mean()
        return align + gamma * (_pdist_uniformity(x) + _pdist_uniformity(y)) / 2

    ours = directau_loss(u, i, 0.5)
    reference = official(u, i, 0.5)
    assert ours.item() == pytest.approx(reference.item(), abs=1e-12)
    for a, b in zip(torch.autograd.grad(ours, (u, i)), torch.autograd.grad(reference, (u, i))):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- optimiser
def _adam_pair(sparse_rows, steps, weight_decay=1e-2):
    """The same embedding trained with dense grads + torch Adam and with sparse grads + SparseRowAdam."""
    out = []
    for sparse in (False, True):
        torch.manual_seed(0)
        emb = torch.nn.Embedding(7, 3, sparse=sparse)
        opt = (SparseRowAdam if sparse else torch.optim.Adam)(emb.parameters(), lr=0.05, weight_decay=weight_decay)
        for step in range(steps):
            opt.zero_grad(set_to_none=True)
            emb(sparse_rows[step % len(sparse_rows)]).pow(2).sum().backward()
            opt.step()
        out.append((emb, opt))
    return out


def test_sparse_row_adam_equals_dense_adam_on_every_row():
    rows = [torch.tensor([0, 2, 2, 5]), torch.tensor([1, 1]), torch.tensor([6, 0, 3])]  # duplicates summed
    (dense, dense_opt), (sparse, sparse_opt) = _adam_pair(rows, steps=7)
    torch.testing.assert_close(sparse.weight, dense.weight, rtol=0, atol=0)
    state_d, state_s = dense_opt.state[dense.weight], sparse_opt.state[sparse.weight]
    for key in ("exp_avg", "exp_avg_sq", "step"):
        torch.testing.assert_close(state_s[key], state_d[key], rtol=0, atol=0)
    assert sparse.weight.grad.is_sparse  # the gradient is left as backward made it
    # row 4 is never looked up: coupled weight decay still moves it, as in torch.optim.Adam
    torch.manual_seed(0)
    assert not torch.equal(sparse.weight[4], torch.nn.Embedding(7, 3).weight[4])
    # the scratch buffer is clean again, so the next step sees only its own rows
    assert all(float(buf.abs().sum()) == 0.0 for buf in sparse_opt._row_buffers.values())


def test_sparse_row_adam_state_dict_is_adams_and_dense_grads_pass_through():
    (dense, dense_opt), (sparse, sparse_opt) = _adam_pair([torch.tensor([1, 3])], steps=2)
    resumed = torch.optim.Adam(dense.parameters(), lr=0.05, weight_decay=1e-2)
    resumed.load_state_dict(sparse_opt.state_dict())
    assert resumed.state_dict()["param_groups"] == dense_opt.state_dict()["param_groups"]
    lin = torch.nn.Linear(2, 1)
    before = lin.weight.detach().clone()
    opt = SparseRowAdam(lin.parameters(), lr=0.1)
    lin(torch.ones(1, 2)).sum().backward()
    opt.step()
    assert not torch.equal(lin.weight, before)


def test_sparse_row_adam_rejects_fully_sparse_gradients():
    p = torch.nn.Parameter(torch.zeros(3, 3))
    p.grad = torch.sparse_coo_tensor(torch.tensor([[0, 1], [1, 2]]), torch.tensor([1.0, 2.0]), (3, 3),
                                     check_invariants=True)
    with pytest.raises(ValueError, match="row-sparse"):
        SparseRowAdam([p], lr=0.1).step()


def test_mf_encoder_sparse_gradients_and_bad_combination():
    enc = MFEncoder(5, 4, 3, sparse=True)
    u, i = enc.encode(torch.tensor([0, 4]), torch.tensor([1, 1]))
    (u.sum() + i.sum()).backward()
    assert enc.user.weight.grad.is_sparse and enc.item.weight.grad.is_sparse
    with pytest.raises(ValueError, match="sharded"):
        MFEncoder(5, 4, 3, sharded=True, sparse=True)


def test_directau_fit_follows_dense_reference_loop(planted):
    """The estimator (sparse rows, SparseRowAdam, closed-form uniformity gradient) against a plain
    loop with dense embedding gradients, torch Adam and the pdist loss, on the same batches."""
    from graphrec.train import Trainer, tensor_batches

    train = planted.splits["train"]
    model = DirectAU(factors=8, gamma=0.5, batch_size=128, learning_rate=1e-3, weight_decay=1e-6, epochs=2,
                     random_state=5).fit(train)
    torch.manual_seed(5)
    ref = MFEncoder(*train.shape, 8)
    rows, cols = (torch.from_numpy(a.astype(np.int64)) for a in train.nonzero())

    def loss(m, batch):
        x, y = (torch.nn.functional.normalize(e, dim=-1) for e in m.encode(*batch))
        return (x - y).norm(p=2, dim=1).pow(2).mean() + 0.5 * (_pdist_uniformity(x) + _pdist_uniformity(y)) / 2

    drop_last = rows.shape[0] % 128 == 1
    result = Trainer(ref, torch.optim.Adam(ref.parameters(), lr=1e-3, weight_decay=1e-6), loss, max_epochs=2,
                     random_state=5, verbose=False).fit(
        lambda epoch, g: tensor_batches(rows, cols, batch_size=128, generator=g, drop_last=drop_last))
    np.testing.assert_allclose(model.user_factors_, ref.user.weight.detach().numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.item_factors_, ref.item.weight.detach().numpy(), rtol=1e-4, atol=1e-6)
    assert [h["train_loss"] for h in model.train_result_.history] == pytest.approx(
        [h["train_loss"] for h in result.history], abs=1e-6)


def test_bpr_loss_hand_computed():
    u, i, j = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 5.0]]), torch.tensor([[0.0, 1.0]])
    assert bpr_loss(u, i, j).item() == pytest.approx(-math.log(1 / (1 + math.exp(-2.0))), abs=1e-6)


def test_normalized_adjacency_small_case():
    r = sp.csr_matrix(np.array([[1, 1], [0, 1]], dtype=np.float32))  # user0: 2, user1: 1, item0: 1, item1: 2
    a = normalized_bipartite_adjacency(r).toarray()
    assert a[0, 2] == pytest.approx(1 / math.sqrt(2 * 1)) and a[0, 3] == pytest.approx(1 / 2)
    assert a[1, 3] == pytest.approx(1 / math.sqrt(2)) and a[1, 2] == 0
    np.testing.assert_allclose(a, a.T)


# ---------------------------------------------------------------- splits
def test_split_counts_follow_recbole_rounding():
    ratios = (0.8, 0.1, 0.1)
    assert split_counts(5, ratios) == [3, 1, 1]  # 60/20/20 for the smallest users
    assert split_counts(20, ratios) == [16, 2, 2]
    assert split_counts(2, ratios) == [1, 0, 1]


def test_ratio_split_is_disjoint_complete_and_seeded():
    data = make_latent_factor_interactions(n_users=300, n_items=120, random_state=0)
    a, b, c = ratio_split(data, random_state=1), ratio_split(data, random_state=1), ratio_split(data, random_state=2)
    tr, va, te = (a.splits[k] for k in ("train", "valid", "test"))
    assert (tr + va + te - a.user_items).nnz == 0
    assert tr.multiply(va).nnz == 0 and tr.multiply(te).nnz == 0 and va.multiply(te).nnz == 0
    assert (a.splits["test"] != b.splits["test"]).nnz == 0 and (a.splits["test"] != c.splits["test"]).nnz > 0
    per_user = np.diff(a.user_items.indptr)
    for u in range(0, 300, 37):
        assert [np.diff(s.indptr)[u] for s in (tr, va, te)] == split_counts(per_user[u], (0.8, 0.1, 0.1))
    with pytest.raises(ValueError, match="ratios"):
        ratio_split(data, ratios=(0.8, 0.0, 0.2))
    with pytest.raises(ValueError, match="given train/test"):
        given_split(data)
    stored_zero, negative = data.user_items.copy(), data.user_items.copy()
    stored_zero.data[:50] = 0.0   # stored but not interactions: the k-core would count them
    negative.data[0] = -1.0
    with pytest.raises(ValueError, match="50 explicit zero"):
        ratio_split(stored_zero)
    with pytest.raises(ValueError, match="negative values"):
        ratio_split(negative)


def test_k_core_removes_until_stable():
    # user 2 has 1 item; removing it leaves item 2 with 1 user -> removed too
    m = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=np.float32))
    core, users, items = k_core(m, 2)
    assert users.tolist() == [0, 1] and items.tolist() == [0, 1] and core.nnz == 4


def test_real_splits(data_root):
    from graphrec.datasets import load

    beauty = ratio_split(load("beauty", root=data_root), random_state=0)
    assert [beauty.splits[k].nnz for k in ("train", "valid", "test")] == [148766, 24868, 24868]
    train, test = given_split(load("gowalla", root=data_root))
    assert (train.nnz, test.nnz) == (810128, 217242)


# ---------------------------------------------------------------- models
@pytest.fixture(scope="module")
def planted():
    data = make_latent_factor_interactions(n_users=400, n_items=200, n_factors=4, mean_interactions=25,
                                           temperature=0.3, random_state=0)
    return ratio_split(data, min_interactions=1, random_state=0)


def _brute_force(scores, train, test, k):
    recall, ndcg, hit = [], [], []
    for u in np.flatnonzero(np.diff(test.indptr)):
        s = scores[u].astype(np.float64).copy()
        s[train[u].indices] = -np.inf
        top = sorted(range(len(s)), key=lambda j: (-s[j], j))[:k]
        rel = set(test[u].indices)
        hits = [j in rel for j in top]
        recall.append(sum(hits) / len(rel))
        hit.append(float(any(hits)))
        ndcg.append(sum(h / math.log2(r + 2) for r, h in enumerate(hits))
                    / sum(1 / math.log2(r + 2) for r in range(min(len(rel), k))))
    return np.mean(recall), np.mean(ndcg), np.mean(hit)


def test_directau_recovers_latent_factors_and_evaluator_matches_brute_force(planted):
    train, test = planted.splits["train"], planted.splits["test"]
    model = DirectAU(factors=16, gamma=1.0, batch_size=256, learning_rate=0.01, epochs=30, random_state=0).fit(train)
    scores = model.user_factors_ @ model.item_factors_.T
    ours = evaluate_full_ranking(lambda b: scores[b], train, test, ks=(10,))
    popularity = np.asarray(train.sum(axis=0)).ravel()
    pop = evaluate_full_ranking(lambda b: np.tile(popularity, (len(b), 1)), train, test, ks=(10,))
    assert ours["recall@10"] > 1.5 * pop["recall@10"]
    ref = _brute_force(scores, train, test, 10)
    assert (ours["recall@10"], ours["ndcg@10"], ours["hitrate@10"]) == pytest.approx(ref, abs=1e-9)


def test_early_stopping_on_valid_split(planted):
    model = DirectAU(factors=8, epochs=6, eval_every=2, patience=1, random_state=0).fit(planted)
    assert model.train_result_.best_epoch is not None and model.user_factors_.shape == (400, 8)


@pytest.mark.parametrize("cls", [BPR, LightGCN, lambda **kw: DirectAU(encoder="lightgcn", n_layers=2, **kw)])
def test_other_models_beat_random(planted, cls):
    train, test = planted.splits["train"], planted.splits["test"]
    model = cls(factors=16, epochs=15, learning_rate=0.01, batch_size=256, random_state=0).fit(train)
    ours = evaluate_full_ranking(lambda b: model.user_factors_[b] @ model.item_factors_.T, train, test, ks=(10,))
    rng = np.random.default_rng(0)
    rand = evaluate_full_ranking(lambda b: rng.random((len(b), 200)), train, test, ks=(10,))
    assert ours["recall@10"] > 2 * rand["recall@10"]


def test_cosine_scoring_gives_unit_factors(planted):
    model = DirectAU(factors=8, epochs=1, scoring="cosine", random_state=0).fit(planted.splits["train"])
    np.testing.assert_allclose(np.linalg.norm(model.item_factors_, axis=1), 1.0, rtol=1e-5)


def test_same_seed_same_factors(planted):
    a = DirectAU(factors=8, epochs=2, random_state=3).fit(planted.splits["train"])
    b = DirectAU(factors=8, epochs=2, random_state=3).fit(planted.splits["train"])
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)


@pytest.fixture(scope="module")
def fitted(planted):
    return DirectAU(factors=8, epochs=2, random_state=0).fit(planted.splits["train"]), planted.splits["train"]


def test_recommend_excludes_liked_items_one_and_many(fitted):
    model, train = fitted
    ids, scores = model.recommend(3, train[3], N=10)
    assert ids.shape == (10,) and not set(ids) & set(train[3].indices)
    assert np.all(np.diff(scores) <= 0)
    expected = model.user_factors_[3] @ model.item_factors_.T
    np.testing.assert_allclose(scores, expected[ids], rtol=1e-5)
    users = np.array([0, 5, 7])
    many, _ = model.recommend(users, train[users], N=5)
    assert many.shape == (3, 5)
    for row, u in zip(many, users):
        assert not set(row) & set(train[u].indices)
    unfiltered, _ = model.recommend(3, train[3], N=200, filter_already_liked_items=False)
    assert set(train[3].indices) <= set(unfiltered)


def test_similar_items_and_users(fitted):
    model, _ = fitted
    ids, sims = model.similar_items(4, N=5)
    assert ids[0] == 4 and sims[0] == pytest.approx(1.0, abs=1e-5) and ids.shape == (5,)
    assert model.similar_users([1, 2], N=3)[0].shape == (2, 3)


def test_save_load_roundtrip(fitted, tmp_path):
    model, train = fitted
    model.save(tmp_path / "m.pkl")
    again = DirectAU.load(tmp_path / "m.pkl")
    np.testing.assert_array_equal(again.recommend(1, train[1])[0], model.recommend(1, train[1])[0])
    with pytest.raises(TypeError, match="expected BPR"):
        BPR.load(tmp_path / "m.pkl")


def test_recommend_bad_ids(fitted):
    model, train = fitted
    with pytest.raises(ValueError, match="userid must be ids in"):
        model.recommend(10_000, train[0])
    with pytest.raises(ValueError, match="itemid must be ids in"):
        model.similar_items(-1)
    with pytest.raises(ValueError, match="rows"):
        model.recommend(np.array([0, 1]), train[:3])


def test_cold_users_get_popularity_fallback():
    m = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0], [1, 1, 0, 1]], dtype=np.float32))
    model = DirectAU(factors=4, epochs=1, batch_size=4, random_state=0).fit(m)
    ids, scores = model.recommend(2, m[2], N=4)
    assert ids.tolist() == [1, 0, 2, 3]  # item popularity 3, 2, 1, 1 (ties by id)


def test_bad_training_input():
    good = sp.csr_matrix(np.eye(4, dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        DirectAU(epochs=1).fit(sp.csr_matrix(np.array([[np.nan, 1.0], [1.0, 0.0]])))
    with pytest.raises(ValueError, match="empty"):
        DirectAU(epochs=1).fit(sp.csr_matrix((0, 3)))
    with pytest.raises(TypeError, match="scipy sparse"):
        DirectAU(epochs=1).fit(np.eye(3))
    dup = sp.coo_matrix((np.ones(3), ([0, 0, 1], [1, 1, 0])), shape=(2, 2))
    with pytest.raises(ValueError, match="duplicate"):
        DirectAU(epochs=1).fit(dup)
    with pytest.raises(ValueError, match="gamma"):
        DirectAU(gamma=-1.0, epochs=1).fit(good)
    with pytest.raises(ValueError, match="encoder"):
        DirectAU(encoder="gcn", epochs=1).fit(good)
    with pytest.raises(ValueError, match="threshold"):
        DirectAU(threshold=5.0, epochs=1).fit(sp.csr_matrix(np.array([[1.0, 4.0], [2.0, 3.0]])))


@pytest.mark.parametrize("cls", [DirectAU, LightGCN])
def test_seeded_fit_leaves_the_global_torch_rng_alone(cls):
    m = sp.csr_matrix(np.kron(np.eye(3), np.ones((2, 2))).astype(np.float32))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    cls(factors=4, epochs=1, batch_size=4, random_state=0).fit(m)
    torch.testing.assert_close(torch.rand(3), expected)


def test_recommend_takes_a_sparse_array_row():
    m = sp.csr_array(np.kron(np.eye(3), np.ones((2, 2))).astype(np.float32))
    model = DirectAU(factors=4, epochs=1, batch_size=4, random_state=0).fit(m)
    assert m[1].ndim == 1  # indexing a sparse array with an int gives a 1-D row
    ids, scores = model.recommend(1, m[1], N=3)
    expected_ids, expected_scores = model.recommend(1, m[[1]], N=3)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(scores, expected_scores)
    assert not set(ids) & {0, 1}
    with pytest.raises(ValueError, match="user_items must be a 2-D"):
        DirectAU(epochs=1).fit(m[1])


def test_directau_with_too_few_interactions_names_the_input():
    one = sp.csr_matrix(([1.0], ([0], [0])), shape=(3, 3))
    with pytest.raises(ValueError, match="user_items has 1 interaction.*DirectAU needs at least 2"):
        DirectAU(factors=2, epochs=1, random_state=0).fit(one)
    assert BPR(factors=2, epochs=1, random_state=0).fit(one).user_factors_.shape == (3, 2)


def test_threshold_keeps_high_ratings_only():
    ratings = sp.csr_matrix(np.array([[5, 1, 0, 4], [2, 5, 4, 0], [0, 3, 5, 5]], dtype=np.float32))
    model = DirectAU(factors=4, epochs=1, batch_size=4, threshold=3.5, random_state=0).fit(ratings)
    assert model.user_counts_.tolist() == [2, 2, 2]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda(planted):
    model = DirectAU(factors=8, epochs=1, device="cuda", random_state=0).fit(planted.splits["train"])
    assert model.user_factors_.shape == (400, 8)


def test_implicit_wrappers(planted):
    pytest.importorskip("implicit")
    from graphrec.recsys.peers import ImplicitALS, ImplicitBPR

    train, test = planted.splits["train"], planted.splits["test"]
    for model in (ImplicitALS(factors=8, regularization=0.1, random_state=0), ImplicitBPR(factors=8, random_state=0)):
        model.fit(train)
        ids, _ = model.recommend(0, train[0], N=5)
        assert not set(ids) & set(train[0].indices)
    ours = evaluate_full_ranking(lambda b: model.user_factors_[b] @ model.item_factors_.T, train, test, ks=(10,))
    assert ours["recall@10"] > 0


def test_implicit_wrappers_check_threshold():
    pytest.importorskip("implicit")
    from graphrec.recsys.peers import ImplicitALS, ImplicitBPR

    m = sp.csr_matrix(np.eye(4, dtype=np.float32))
    for cls in (ImplicitALS, ImplicitBPR):
        with pytest.raises(TypeError, match="threshold must be a real number"):
            cls(factors=2, iterations=1, threshold="3").fit(m)


def test_implicit_missing_gives_clear_error(monkeypatch):
    import builtins

    from graphrec.recsys.peers import ImplicitALS

    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name.startswith("implicit"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match="recsys"):
        ImplicitALS().fit(sp.csr_matrix(np.eye(3)))


# ---------------------------------------------------------------- rarely taken paths
def _rated(n_users=150, n_items=60, seed=0):
    """Latent-factor interactions whose values are ratings 1..5 (weights, not just 1)."""
    data = make_latent_factor_interactions(n_users=n_users, n_items=n_items, random_state=seed)
    ratings = data.user_items.copy()
    ratings.data = np.random.default_rng(seed).integers(1, 6, ratings.nnz).astype(np.float32)
    return ratings


def test_ratio_split_joins_existing_splits_back_with_their_weights():
    # An Interactions with given splits is joined back before the per-user split: the result must be
    # the split of the whole data. The join used to add the splits and set every value to 1, so the
    # ratings were lost (and a threshold on them could no longer be applied).
    from graphrec.datasets.interactions import Interactions

    ratings = _rated()
    coo = ratings.tocoo()
    first = np.random.default_rng(1).random(coo.nnz) < 0.7
    part = lambda keep: sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=coo.shape)  # noqa: E731
    overlap = first | (np.arange(coo.nnz) % 11 == 0)   # some pairs are in both given splits
    given = Interactions(ratings, splits={"train": part(overlap), "test": part(~first)})
    whole = Interactions(ratings)
    a, b = ratio_split(given, random_state=3), ratio_split(whole, random_state=3)
    assert (a.user_items != b.user_items).nnz == 0 and set(a.user_items.data) == {1, 2, 3, 4, 5}
    for name in ("train", "valid", "test"):
        assert (a.splits[name] != b.splits[name]).nnz == 0, name


def test_ratio_split_keeps_the_original_ids_of_the_kept_rows_and_columns():
    from graphrec.datasets.interactions import Interactions

    ratings = _rated(n_items=400)
    user_ids = np.array([f"user{u}" for u in range(ratings.shape[0])])
    item_ids = np.arange(ratings.shape[1]) * 10 + 7
    out = ratio_split(Interactions(ratings, user_ids=user_ids, item_ids=item_ids), min_interactions=8, random_state=0)
    core, users, items = k_core(ratings, 8)
    assert 0 < len(users) < ratings.shape[0] and len(items) < ratings.shape[1]   # the core drops rows and columns
    np.testing.assert_array_equal(out.user_ids, user_ids[users])
    np.testing.assert_array_equal(out.item_ids, item_ids[items])
    assert (out.user_items != ratings[users][:, items]).nnz == 0
    # without ids, the kept positions in the input
    bare = ratio_split(ratings, min_interactions=8, random_state=0)
    np.testing.assert_array_equal(bare.user_ids, users)
    np.testing.assert_array_equal(bare.item_ids, items)


def test_ratio_split_and_given_split_bad_input():
    ratings = _rated()
    for ratios in (0.8, "abc", (0.8, None, 0.1)):
        with pytest.raises(TypeError, match=r"ratios must be three positive shares \(train, valid, test\), got"):
            ratio_split(ratings, ratios=ratios)
    with pytest.raises(TypeError, match="data must be an Interactions or a scipy sparse users x items matrix, got nd"):
        ratio_split(ratings.toarray())
    with pytest.raises(ValueError, match="no interaction is left after the 1000-core filter"):
        ratio_split(ratings, min_interactions=1000)
    with pytest.raises(TypeError, match="data must be an Interactions, got csr_matrix"):
        given_split(ratings)


def test_recommend_reads_the_rows_of_the_given_users_from_the_full_matrix(fitted):
    model, train = fitted
    users = np.array([9, 3, 40])
    from_full, full_scores = model.recommend(users, train, N=6)   # (n_users, n_items): rows picked by id
    from_rows, row_scores = model.recommend(users, train[users], N=6)
    np.testing.assert_array_equal(from_full, from_rows)
    np.testing.assert_array_equal(full_scores, row_scores)
    for row, u in zip(from_full, users):
        assert not set(row) & set(train[u].indices)
    with pytest.raises(ValueError, match=f"user_items has 10 items, the model {train.shape[1]}"):
        model.recommend(3, train[3][:, :10])
    with pytest.raises(TypeError, match="userid must be integer ids, got dtype float64"):
        model.recommend(3.0, train[3])
    with pytest.raises(TypeError, match="itemid must be integer ids"):
        model.similar_items([0.5])


def test_check_user_items_refuses_complex_and_negative_values():
    from graphrec.recsys.estimators import check_user_items

    with pytest.raises(TypeError, match="user_items must hold numbers, got dtype complex128"):
        check_user_items(sp.csr_matrix(np.array([[1 + 1j, 0.0]])))
    with pytest.raises(ValueError, match="train split contains negative values"):
        check_user_items(sp.csr_matrix(np.array([[1.0, -2.0]])), name="train split")


def test_bad_time_budget_and_sharding_without_distributed():
    good = sp.csr_matrix(np.eye(4, dtype=np.float32))
    with pytest.raises(ValueError, match=r"max_seconds must be a finite number in \(0.0, inf\], got 0.0"):
        DirectAU(epochs=1, max_seconds=0).fit(good)
    with pytest.raises(ValueError, match="shard_embeddings=True needs distributed=True and encoder='mf'"):
        BPR(epochs=1, shard_embeddings=True).fit(good)


def test_sparse_row_adam_step_with_closure_matches_adam_on_a_dense_table():
    ids = torch.tensor([0, 3, 3, 1])
    tables = []
    for sparse in (True, False):
        emb = torch.nn.Embedding(5, 2, sparse=sparse)
        with torch.no_grad():
            emb.weight.copy_(torch.arange(10.0).reshape(5, 2) / 10)
        tables.append(emb)
    sparse_emb, dense_emb = tables
    opt = SparseRowAdam(sparse_emb.parameters(), lr=0.1, weight_decay=0.01)
    ref = torch.optim.Adam(dense_emb.parameters(), lr=0.1, weight_decay=0.01)

    def closure_for(emb, optimizer):
        def closure():
            optimizer.zero_grad()
            loss = emb(ids).pow(2).sum()
            loss.backward()
            return loss
        return closure

    for _ in range(3):
        loss = opt.step(closure_for(sparse_emb, opt))
        ref_loss = ref.step(closure_for(dense_emb, ref))
        assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-6)
        assert sparse_emb.weight.grad.is_sparse   # the closure's sparse gradient is left in place
    torch.testing.assert_close(sparse_emb.weight, dense_emb.weight)
