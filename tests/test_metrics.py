"""Tests for graphrec.metrics: hand-worked cases, scikit-learn / scipy references, brute force."""
from __future__ import annotations

import itertools
import subprocess
import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.optimize import linear_sum_assignment
from scipy.stats import rankdata
from sklearn import metrics as skm

from graphrec.metrics import (
    ari,
    clustering_accuracy,
    clustering_report,
    evaluate_full_ranking,
    f1_macro_matched,
    filtered_ranks,
    link_prediction_report,
    log_loss,
    mae,
    nmi,
    ranking_metrics,
    rmse,
    roc_auc,
)

INV_LOG2_3 = 1.0 / np.log2(3.0)  # discount of rank 2


def test_import_does_not_load_torch_geometric():
    code = "import sys, graphrec.metrics; print('torch_geometric' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# ----------------------------------------------------------------------------- clustering


def test_clustering_hand_worked():
    # clusters: 1 -> {c0, c0}, 0 -> {c0, c1, c1, c1}; best map 1->0, 0->1 gets 2 + 3 = 5 of 6.
    y_true = [0, 0, 0, 1, 1, 1]
    y_pred = [1, 1, 0, 0, 0, 0]
    assert clustering_accuracy(y_true, y_pred) == pytest.approx(5 / 6)
    # class 0: 2*2/(2+3) = 0.8; class 1: 2*3/(4+3) = 6/7.
    assert f1_macro_matched(y_true, y_pred) == pytest.approx((0.8 + 6 / 7) / 2)


def test_clustering_more_clusters_than_classes():
    # clusters 0 and 1 each hold one node of class 0; cluster 2 holds both class-1 nodes.
    y_true = [0, 0, 1, 1]
    y_pred = [0, 1, 2, 2]
    assert clustering_accuracy(y_true, y_pred) == pytest.approx(3 / 4)
    # class 0 matched to a size-1 cluster: 2*1/(1+2); class 1: 2*2/(2+2).
    assert f1_macro_matched(y_true, y_pred) == pytest.approx((2 / 3 + 1) / 2)


def test_clustering_fewer_clusters_than_classes():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 0, 0, 1, 1]
    assert clustering_accuracy(y_true, y_pred) == pytest.approx(4 / 6)
    # class 2: F1 1; one of classes 0/1 matched to the size-4 cluster: 2*2/(4+2); the other: 0.
    assert f1_macro_matched(y_true, y_pred) == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_clustering_perfect_up_to_relabelling_and_unlabelled_ignored():
    y_true = np.array([0, 0, -1, 1, 1, -1, 2])
    y_pred = np.array([7, 7, 3, 5, 5, 7, -1])  # -1 in y_pred is an ordinary cluster id
    assert clustering_report(y_true, y_pred) == pytest.approx({"acc": 1.0, "nmi": 1.0, "ari": 1.0, "f1": 1.0})


def _brute_force_accuracy(y_true, y_pred):
    classes, clusters = np.unique(y_true), np.unique(y_pred)
    m = max(len(classes), len(clusters))
    counts = np.zeros((m, m))
    for i, c in enumerate(clusters):
        for j, k in enumerate(classes):
            counts[i, j] = np.sum((y_pred == c) & (y_true == k))
    best = max(counts[np.arange(m), list(perm)].sum() for perm in itertools.permutations(range(m)))
    return best / len(y_true)


@pytest.mark.parametrize("seed", range(6))
def test_clustering_random_against_references(seed):
    rng = np.random.default_rng(seed)
    n = 40
    y_true = rng.integers(-1, 3 + seed % 2, size=n)
    y_pred = rng.integers(0, 2 + seed % 4, size=n)
    keep = y_true >= 0
    yt, yp = y_true[keep], y_pred[keep]

    assert clustering_accuracy(y_true, y_pred) == pytest.approx(_brute_force_accuracy(yt, yp))
    assert nmi(y_true, y_pred) == pytest.approx(skm.normalized_mutual_info_score(yt, yp))
    assert ari(y_true, y_pred) == pytest.approx(skm.adjusted_rand_score(yt, yp))

    # macro-F1 with sklearn after an independent Hungarian map; unmatched clusters map to -2.
    classes, clusters = np.unique(yt), np.unique(yp)
    counts = np.array([[np.sum((yp == c) & (yt == k)) for k in classes] for c in clusters])
    rows, cols = linear_sum_assignment(-counts)
    mapping = {clusters[r]: classes[c] for r, c in zip(rows, cols)}
    mapped = np.array([mapping.get(c, -2) for c in yp])
    expected = skm.f1_score(yt, mapped, labels=classes, average="macro", zero_division=0)
    assert f1_macro_matched(y_true, y_pred) == pytest.approx(expected)


@pytest.mark.parametrize(
    "y_true, y_pred, exc, match",
    [
        ([0, 1, 1], [0, 1], ValueError, "same length"),
        ([-1, -1], [0, 1], ValueError, "no labelled node"),
        ([0, -2], [0, 1], ValueError, "-1 for unlabelled"),
        ([0.5, 1.0], [0, 1], TypeError, "y_true must hold integers"),
        ([0, 1], [0, np.nan], TypeError, "y_pred must hold integers"),
        ([[0, 1]], [[0, 1]], ValueError, "1-dimensional"),
    ],
)
def test_clustering_bad_input(y_true, y_pred, exc, match):
    with pytest.raises(exc, match=match):
        clustering_report(y_true, y_pred)


# ----------------------------------------------------------------------------- ranking


@pytest.fixture
def topk_kernel(monkeypatch):
    """The real ``graphrec.kernels.topk_exclude``; a numpy stand-in only while it does not exist."""
    try:
        from graphrec.kernels import topk_exclude

        return topk_exclude
    except ImportError:
        def topk_exclude(scores, k, exclude_indptr=None, exclude_indices=None):
            s = np.asarray(scores.cpu().numpy() if hasattr(scores, "detach") else scores, dtype=np.float64)
            ids = np.full((s.shape[0], k), -1, dtype=np.int64)
            for u in range(s.shape[0]):
                banned = set(exclude_indices[exclude_indptr[u] : exclude_indptr[u + 1]].tolist())
                order = [i for i in np.lexsort((np.arange(s.shape[1]), -s[u])) if i not in banned][:k]
                ids[u, : len(order)] = order
            return ids, None

        module = types.ModuleType("graphrec.kernels")
        module.topk_exclude = topk_exclude
        monkeypatch.setitem(sys.modules, "graphrec.kernels", module)
        return topk_exclude


def _csr(rows, n_items):
    """CSR matrix with a 1 at (u, i) for every i in rows[u]."""
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    return sp.csr_matrix((np.ones(len(c)), (r, c)), shape=(len(rows), n_items))


def test_ranking_metrics_hand_worked():
    topk = np.array([[2, 0, 5], [4, 1, -1], [1, 2, 3], [0, 1, 2]])
    test = _csr([[0, 3], [4], [], [0, 1, 2, 3, 4]], n_items=6)
    got = ranking_metrics(topk, test, ks=(3, 1))
    # user 0: hits [0, 1, 0], |test| = 2 -> IDCG@3 = 1 + 1/log2(3)
    # user 1: hits [1, 0, miss] (only two candidates), |test| = 1
    # user 2: no test item -> not averaged
    # user 3: hits [1, 1, 1], |test| = 5 -> IDCG@3 uses min(5, 3) = 3 ranks, so NDCG@3 = 1
    per_user = {
        "recall@1": [0, 1, 1 / 5],
        "recall@3": [1 / 2, 1, 3 / 5],
        "ndcg@1": [0, 1, 1],
        "ndcg@3": [INV_LOG2_3 / (1 + INV_LOG2_3), 1, 1],
        "precision@1": [0, 1, 1],
        "precision@3": [1 / 3, 1 / 3, 1],
        "hitrate@1": [0, 1, 1],
        "hitrate@3": [1, 1, 1],
        "mrr@1": [0, 1, 1],
        "mrr@3": [1 / 2, 1, 1],
    }
    assert list(got) == [f"{m}@{k}" for m in ("recall", "ndcg", "precision", "hitrate", "mrr") for k in (1, 3)]
    assert got == pytest.approx({key: np.mean(v) for key, v in per_user.items()})


def test_ranking_ndcg_matches_sklearn():
    rng = np.random.default_rng(0)
    n_users, n_items, k = 30, 40, 10
    scores = rng.random((n_users, n_items))
    relevance = (rng.random((n_users, n_items)) < 0.15).astype(float)
    relevance[relevance.sum(axis=1) == 0, 0] = 1.0  # every user has a test item
    topk = np.argsort(-scores, axis=1)[:, :k]
    got = ranking_metrics(topk, sp.csr_matrix(relevance), ks=(k,))
    assert got[f"ndcg@{k}"] == pytest.approx(skm.ndcg_score(relevance, scores, k=k))


def _brute_force_full_ranking(scores, train, test, ks):
    train, test = train.toarray() != 0, test.toarray() != 0
    out = {f"{m}@{k}": [] for m in ("recall", "ndcg", "precision", "hitrate", "mrr") for k in ks}
    for u in range(scores.shape[0]):
        relevant = set(np.flatnonzero(test[u]).tolist())
        if not relevant:
            continue
        candidates = sorted((i for i in range(scores.shape[1]) if not train[u, i]), key=lambda i: (-scores[u, i], i))
        for k in ks:
            top = candidates[:k]
            hits = [i in relevant for i in top]
            dcg = sum(1 / np.log2(j + 2) for j, h in enumerate(hits) if h)
            idcg = sum(1 / np.log2(j + 2) for j in range(min(len(relevant), k)))
            out[f"recall@{k}"].append(sum(hits) / len(relevant))
            out[f"ndcg@{k}"].append(dcg / idcg)
            out[f"precision@{k}"].append(sum(hits) / k)
            out[f"hitrate@{k}"].append(float(any(hits)))
            out[f"mrr@{k}"].append(1 / (hits.index(True) + 1) if any(hits) else 0.0)
    return {key: float(np.mean(v)) for key, v in out.items()}


def test_evaluate_full_ranking_hand_worked(topk_kernel):
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5]])
    train = _csr([[0], [4, 3]], n_items=5)
    test = _csr([[1, 4], [0]], n_items=5)
    got = evaluate_full_ranking(lambda users: scores[users], train, test, ks=(2,))
    # user 0: item 0 masked -> top-2 [1, 2], hits [1, 0]; user 1: items 4, 3 masked -> [2, 1], no hit.
    expected = {
        "recall@2": (1 / 2 + 0) / 2,
        "ndcg@2": (1 / (1 + INV_LOG2_3) + 0) / 2,
        "precision@2": (1 / 2 + 0) / 2,
        "hitrate@2": (1 + 0) / 2,
        "mrr@2": (1 + 0) / 2,
    }
    assert got == pytest.approx(expected)


def test_evaluate_full_ranking_ties_break_by_ascending_id(topk_kernel):
    scores = np.ones((1, 6))
    train = _csr([[0]], n_items=6)
    test = _csr([[3]], n_items=6)
    # all scores equal: the ranking is items 1, 2, 3, 4, 5, so item 3 is at rank 3.
    got = evaluate_full_ranking(lambda users: scores[users], train, test, ks=(2, 3))
    assert got["hitrate@2"] == 0.0
    assert got["mrr@3"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("as_torch", [False, True])
def test_evaluate_full_ranking_random_against_brute_force(topk_kernel, as_torch):
    rng = np.random.default_rng(1)
    n_users, n_items = 37, 25
    scores = rng.integers(0, 6, size=(n_users, n_items)).astype(np.float32)  # many ties
    both = sp.random(n_users, n_items, density=0.3, random_state=2, format="coo")
    to_train = rng.random(both.nnz) < 0.6
    train = sp.csr_matrix((both.data[to_train], (both.row[to_train], both.col[to_train])), shape=both.shape)
    test = sp.csr_matrix((both.data[~to_train], (both.row[~to_train], both.col[~to_train])), shape=both.shape)
    calls = []

    def score_fn(users):
        calls.append(len(users))
        block = scores[users]
        return torch.from_numpy(block) if as_torch else block

    ks = (1, 5, 10)
    got = evaluate_full_ranking(score_fn, train, test, ks=ks, block_size=8)
    assert max(calls) <= 8
    assert sum(calls) == np.count_nonzero(np.diff(test.indptr))  # users without test items are not scored
    assert got == pytest.approx(_brute_force_full_ranking(scores, train, test, ks))

    subset = np.array([3, 0, 17, 36])
    keep = sp.diags(np.isin(np.arange(n_users), subset).astype(float)) @ test
    got_subset = evaluate_full_ranking(score_fn, train, test, ks=ks, users=subset)
    assert got_subset == pytest.approx(_brute_force_full_ranking(scores, train, keep, ks))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_evaluate_full_ranking_cuda_scores(topk_kernel):
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5]], dtype=np.float32)
    train = _csr([[0], [4, 3]], n_items=5)
    test = _csr([[1, 4], [0]], n_items=5)
    on_gpu = torch.from_numpy(scores).cuda()
    got = evaluate_full_ranking(lambda users: on_gpu[torch.from_numpy(users).cuda()], train, test, ks=(2,))
    assert got == pytest.approx(evaluate_full_ranking(lambda users: scores[users], train, test, ks=(2,)))
    assert got["mrr@2"] == pytest.approx(0.5)  # hand-worked in test_evaluate_full_ranking_hand_worked


@pytest.mark.parametrize(
    "topk, test, ks, exc, match",
    [
        (np.zeros((2, 3), int), sp.csr_matrix((3, 5)), (1,), ValueError, "one row per user"),
        (np.zeros((1, 2), int), sp.csr_matrix(np.ones((1, 5))), (3,), ValueError, "max\\(ks\\)=3"),
        (np.array([[0, 5]]), sp.csr_matrix(np.ones((1, 5))), (2,), ValueError, "ids in \\[0, 5\\)"),
        (np.array([[1, 1]]), sp.csr_matrix(np.ones((1, 5))), (2,), ValueError, "repeats an item"),
        (np.array([[0.5, 1]]), sp.csr_matrix(np.ones((1, 5))), (2,), TypeError, "topk_ids must hold integers"),
        (np.array([[0, 1]]), np.ones((1, 5)), (2,), TypeError, "test_items must be a scipy sparse"),
        (np.array([[0, 1]]), sp.csr_matrix([[np.nan, 1.0]]), (1,), ValueError, "NaN"),
        (np.array([[0, 1]]), sp.csr_matrix((1, 5)), (1,), ValueError, "no nonzero entry"),
        (np.array([[0, 1]]), sp.csr_matrix(np.ones((1, 5))), (0,), ValueError, "positive integers"),
        (np.array([[0, 1]]), sp.csr_matrix(np.ones((1, 5))), (), ValueError, "ks is empty"),
    ],
)
def test_ranking_metrics_bad_input(topk, test, ks, exc, match):
    with pytest.raises(exc, match=match):
        ranking_metrics(topk, test, ks=ks)


def test_evaluate_full_ranking_bad_input(topk_kernel):
    train = _csr([[0], [1]], n_items=4)
    test = _csr([[2], [3]], n_items=4)
    good = lambda users: np.ones((len(users), 4))  # noqa: E731
    with pytest.raises(ValueError, match="same \\(n_users, n_items\\) shape"):
        evaluate_full_ranking(good, train, _csr([[2]], n_items=4), ks=(1,))
    with pytest.raises(ValueError, match="expected \\(2, 4\\)"):
        evaluate_full_ranking(lambda users: np.ones((len(users), 3)), train, test, ks=(1,))
    with pytest.raises(ValueError, match="NaN"):
        evaluate_full_ranking(lambda users: np.full((len(users), 4), np.nan), train, test, ks=(1,))
    with pytest.raises(TypeError, match="real-valued"):
        evaluate_full_ranking(lambda users: np.ones((len(users), 4), dtype=bool), train, test, ks=(1,))
    with pytest.raises(ValueError, match="users must be ids in \\[0, 2\\)"):
        evaluate_full_ranking(good, train, test, ks=(1,), users=[0, 2])
    with pytest.raises(ValueError, match="duplicate"):
        evaluate_full_ranking(good, train, test, ks=(1,), users=[1, 1])
    with pytest.raises(ValueError, match="block_size"):
        evaluate_full_ranking(good, train, test, ks=(1,), block_size=0)
    with pytest.raises(TypeError, match="score_fn must be callable"):
        evaluate_full_ranking(None, train, test, ks=(1,))
    with pytest.raises(ValueError, match="none of the evaluated users"):
        evaluate_full_ranking(good, train, _csr([[], []], n_items=4), ks=(1,))


# ----------------------------------------------------------------------------- link prediction


LP_SCORES = np.array(
    [
        [0.5, 0.9, 0.5, 0.1, 0.7],
        [0.3, 0.3, 0.3, 0.3, 0.3],
        [0.2, 0.1, 0.4, 0.3, 0.0],
    ]
)
LP_TARGETS = np.array([0, 3, 2])
LP_INDPTR = np.array([0, 2, 4, 4])
LP_INDICES = np.array([1, 0, 0, 2])  # row 0 lists the target itself, which must stay ranked

# row 0: target 0.5; filtered out {1}; higher {4}, equal {2} -> 2 / 3 / 2.5
# row 1: all 0.3; filtered out {0, 2}; equal {1, 4} -> 1 / 3 / 2
# row 2: target is the maximum -> 1
LP_EXPECTED = {"optimistic": [2, 1, 1], "pessimistic": [3, 3, 1], "realistic": [2.5, 2, 1]}


@pytest.mark.parametrize("ties", ["optimistic", "pessimistic", "realistic"])
def test_filtered_ranks_hand_worked(ties):
    ranks = filtered_ranks(LP_SCORES, LP_TARGETS, LP_INDPTR, LP_INDICES, ties=ties)
    assert isinstance(ranks, np.ndarray) and ranks.dtype == np.float64
    np.testing.assert_allclose(ranks, LP_EXPECTED[ties])


def test_filtered_ranks_unfiltered_default_is_realistic():
    # row 0 without the filter: higher {1, 4}, equal {2} -> 3.5; row 1: 4 ties -> 1 + 4/2 = 3.
    np.testing.assert_allclose(filtered_ranks(LP_SCORES, LP_TARGETS), [3.5, 3.0, 1.0])


def test_filtered_ranks_torch_keeps_type_and_device():
    ranks = filtered_ranks(
        torch.tensor(LP_SCORES, dtype=torch.float32), torch.tensor(LP_TARGETS),
        torch.tensor(LP_INDPTR), torch.tensor(LP_INDICES),
    )
    assert isinstance(ranks, torch.Tensor) and ranks.dtype == torch.float64
    np.testing.assert_allclose(ranks.numpy(), LP_EXPECTED["realistic"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_filtered_ranks_cuda():
    scores = torch.tensor(LP_SCORES, device="cuda")
    ranks = filtered_ranks(scores, LP_TARGETS, LP_INDPTR, LP_INDICES, ties="pessimistic")
    assert ranks.device.type == "cuda"
    np.testing.assert_allclose(ranks.cpu().numpy(), LP_EXPECTED["pessimistic"])


@pytest.mark.parametrize("ties, method", [("realistic", "average"), ("optimistic", "min"), ("pessimistic", "max")])
def test_filtered_ranks_random_against_rankdata(ties, method):
    rng = np.random.default_rng(3)
    b, n = 20, 15
    scores = rng.integers(0, 4, size=(b, n)).astype(float)  # plenty of ties
    targets = rng.integers(0, n, size=b)
    lists = [rng.integers(0, n, size=rng.integers(0, 6)) for _ in range(b)]  # may repeat, may hold target
    indptr = np.concatenate([[0], np.cumsum([len(x) for x in lists])])
    indices = np.concatenate(lists).astype(np.int64)
    expected = []
    for i in range(b):
        keep = np.ones(n, dtype=bool)
        keep[lists[i]] = False
        keep[targets[i]] = True
        position = np.flatnonzero(keep).tolist().index(targets[i])
        expected.append(rankdata(-scores[i, keep], method=method)[position])
    np.testing.assert_allclose(filtered_ranks(scores, targets, indptr, indices, ties=ties), expected)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"scores": np.ones(3)}, ValueError, "2-dimensional"),
        ({"scores": np.ones((2, 3), dtype=int)}, TypeError, "floating-point"),
        ({"scores": np.array([[np.nan, 1.0], [1.0, 1.0]])}, ValueError, "NaN"),
        ({"targets": [0, 1, 2]}, ValueError, "length 3 but scores has 2 rows"),
        ({"targets": [0, 3]}, ValueError, "targets must be entity ids in \\[0, 3\\)"),
        ({"targets": [0.5, 1.0]}, TypeError, "targets must hold integers"),
        ({"filter_indptr": [0, 1, 1]}, ValueError, "given together"),
        ({"filter_indptr": [0, 1], "filter_indices": [0]}, ValueError, "length b \\+ 1 = 3"),
        ({"filter_indptr": [0, 2, 1], "filter_indices": [0]}, ValueError, "non-decreasing"),
        ({"filter_indptr": [0, 1, 1], "filter_indices": [7]}, ValueError, "filter_indices must be entity ids"),
        ({"ties": "average"}, ValueError, "ties must be one of"),
    ],
)
def test_filtered_ranks_bad_input(kwargs, exc, match):
    args = {"scores": np.ones((2, 3)), "targets": [0, 1], **kwargs}
    with pytest.raises(exc, match=match):
        filtered_ranks(**args)


def test_link_prediction_report_hand_worked():
    got = link_prediction_report(np.array([2.5, 2.0, 1.0, 11.0]))
    expected = {
        "mrr": (1 / 2.5 + 1 / 2 + 1 + 1 / 11) / 4,
        "mr": (2.5 + 2 + 1 + 11) / 4,
        "hits@1": 1 / 4,
        "hits@3": 3 / 4,
        "hits@10": 3 / 4,
    }
    assert got == pytest.approx(expected)
    assert link_prediction_report(torch.tensor([1.0, 4.0]))["mr"] == pytest.approx(2.5)


@pytest.mark.parametrize("ranks, match", [([0.5, 2.0], ">= 1"), ([], "at least 1 row"), ([np.nan], "NaN")])
def test_link_prediction_report_bad_input(ranks, match):
    with pytest.raises(ValueError, match=match):
        link_prediction_report(ranks)


# ----------------------------------------------------------------------------- classification / regression


def test_roc_auc_hand_worked_and_sklearn():
    # pairs (pos, neg): (0.35 > 0.1), (0.35 < 0.4), (0.8 > 0.1), (0.8 > 0.4) -> 3 of 4.
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([True, False], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts one half
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, size=200)
    s = np.round(rng.random(200) + 0.3 * y, 1)  # rounded: many ties
    assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s))


def test_log_loss_hand_worked_and_sklearn():
    assert log_loss([1, 0], [0.8, 0.4]) == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)
    assert log_loss([1, 0], [0.0, 0.0]) == pytest.approx(-np.log(1e-7) / 2)  # clipped, not infinite
    assert log_loss([1], [0.0], eps=1e-3) == pytest.approx(-np.log(1e-3))
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, size=100)
    p = rng.uniform(0.05, 0.95, size=100)
    assert log_loss(y, p) == pytest.approx(skm.log_loss(y, p))


@pytest.mark.parametrize(
    "fn, y, p, exc, match",
    [
        (roc_auc, [1, 1, 1], [0.1, 0.2, 0.3], ValueError, "single class"),
        (roc_auc, [0, 2], [0.1, 0.2], ValueError, "binary labels"),
        (roc_auc, [0, 1], [0.1, np.nan], ValueError, "NaN"),
        (roc_auc, [0, 1, 1], [0.1, 0.2], ValueError, "same length"),
        (log_loss, [0, 1], [0.1, 1.2], ValueError, "probabilities in \\[0, 1\\]"),
        (log_loss, [0, 1], [-0.1, 0.5], ValueError, "probabilities in \\[0, 1\\]"),
        (log_loss, [0, 0.5], [0.1, 0.5], TypeError, "y_true must hold integers"),
    ],
)
def test_classification_bad_input(fn, y, p, exc, match):
    with pytest.raises(exc, match=match):
        fn(y, p)


def test_log_loss_bad_eps():
    with pytest.raises(ValueError, match="eps must be a number in \\(0, 0.5\\)"):
        log_loss([0, 1], [0.2, 0.7], eps=0)


def test_regression_hand_worked_and_sklearn():
    assert rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(np.sqrt(4 / 3))
    assert mae([1, 2, 3], [1, 2, 5]) == pytest.approx(2 / 3)
    rng = np.random.default_rng(6)
    y, p = rng.normal(size=(10, 3)), rng.normal(size=(10, 3))
    assert rmse(y, p) == pytest.approx(np.sqrt(skm.mean_squared_error(y.ravel(), p.ravel())))
    assert mae(torch.from_numpy(y), p) == pytest.approx(skm.mean_absolute_error(y.ravel(), p.ravel()))


@pytest.mark.parametrize(
    "y, p, match",
    [
        ([1.0, 2.0], [1.0], "same shape"),
        ([], [], "at least 1 row"),
        ([1.0, np.inf], [1.0, 2.0], "infinite"),
        (1.0, 1.0, "scalar"),
    ],
)
def test_regression_bad_input(y, p, match):
    with pytest.raises(ValueError, match=match):
        rmse(y, p)


# ----------------------------------------------------------------------------- rarely taken paths
@pytest.mark.parametrize("convert", [
    lambda s: s,                                     # integer numpy scores: ranked as float64
    lambda s: torch.from_numpy(s),                   # integer tensor
    lambda s: s.astype(np.float16),                  # half precision, numpy and torch: widened
    lambda s: torch.from_numpy(s).half(),
], ids=["numpy_int", "torch_int", "numpy_half", "torch_half"])
def test_evaluate_full_ranking_takes_integer_and_half_scores_like_float64(convert):
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 40, size=(30, 12))     # many ties: broken by ascending id either way
    train = sp.csr_matrix(rng.random((30, 12)) < 0.2)
    test = sp.csr_matrix((rng.random((30, 12)) < 0.25) & ~train.toarray())
    got = evaluate_full_ranking(lambda users: convert(scores[users]), train, test, ks=(3, 5))
    assert got == pytest.approx(_brute_force_full_ranking(scores.astype(np.float64), train, test, (3, 5)))


def test_evaluate_full_ranking_refuses_boolean_and_complex_tensors():
    train, test = _csr([[0], [1]], n_items=4), _csr([[2], [3]], n_items=4)
    for dtype in (torch.bool, torch.complex64):
        with pytest.raises(TypeError, match=f"score_fn must return real-valued scores, got dtype {dtype}"):
            evaluate_full_ranking(lambda users: torch.ones((len(users), 4), dtype=dtype), train, test, ks=(1,))


def test_ks_as_one_integer_and_bad_ks():
    topk = np.array([[1, 0], [2, 0]])
    test = sp.csr_matrix(np.array([[0, 1, 1, 0], [1, 0, 0, 0]], dtype=float))
    assert ranking_metrics(topk, test, ks=2) == ranking_metrics(topk, test, ks=(2,))
    assert ranking_metrics(topk, test, ks=np.int64(2)) == ranking_metrics(topk, test, ks=[2])
    for ks in (2.0, None):
        with pytest.raises(TypeError, match=f"ks must be an iterable of positive integers, got {ks}"):
            ranking_metrics(topk, test, ks=ks)
    with pytest.raises(TypeError, match="test_items must hold real numbers, got dtype complex128"):
        ranking_metrics(topk, test.astype(np.complex128), ks=2)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"targets": torch.tensor([0.0, 1.0])}, TypeError, "targets must hold integers, got dtype torch.float32"),
    ({"targets": torch.tensor([True, False])}, TypeError, "targets must hold integers, got dtype torch.bool"),
    ({"targets": torch.tensor([[0], [1]])}, ValueError, r"targets must be 1-dimensional, got shape \(2, 1\)"),
    ({"scores": torch.ones(2, 3, 1)}, ValueError,
     r"scores must be 2-dimensional \(b, n_entities\), got shape \(2, 3, 1\)"),
    ({"scores": torch.ones(2, 0)}, ValueError, "scores has no columns"),
    ({"scores": np.ones((2, 0))}, ValueError, "scores has no columns"),
    ({"filter_indptr": torch.tensor([0.0, 1.0, 1.0]), "filter_indices": [0]}, TypeError,
     "filter_indptr must hold integers"),
])
def test_filtered_ranks_bad_tensor_input(kwargs, exc, match):
    args = {"scores": torch.ones(2, 3), "targets": torch.tensor([0, 1]), **kwargs}
    with pytest.raises(exc, match=match):
        filtered_ranks(**args)


def test_filtered_ranks_tensor_targets_and_filter_match_numpy():
    scores = torch.from_numpy(LP_SCORES)
    got = filtered_ranks(scores, torch.from_numpy(LP_TARGETS).int(), torch.from_numpy(LP_INDPTR),
                         torch.from_numpy(LP_INDICES).short(), ties="pessimistic")
    assert isinstance(got, torch.Tensor) and got.tolist() == LP_EXPECTED["pessimistic"]


def test_regression_on_arrays_without_entries():
    with pytest.raises(ValueError, match="y_true and y_pred are empty; expected at least one value"):
        rmse(np.zeros((2, 0)), np.zeros((2, 0)))
    with pytest.raises(ValueError, match="y_true and y_pred are empty"):
        mae(np.zeros((3, 0)), np.zeros((3, 0)))
