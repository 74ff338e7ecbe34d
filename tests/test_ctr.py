"""graphrec.ctr: schema, backbones, CTRClassifier, OptFS, DNIS."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from graphrec.ctr import DNIS, CTRClassifier, CTRSchema, OptFS, log_bin
from graphrec.ctr.backbones import CTRNet, fm_pairwise, fm_pairwise_naive
from graphrec.ctr.estimators import AdamWithSGDGroups
from graphrec.datasets.generators import make_ctr
from graphrec.metrics import roc_auc

SMALL = dict(embed_dim=8, hidden=(32,), batch_size=256, lr=1e-2, random_state=0)


@pytest.fixture(scope="module")
def planted():
    table, truth = make_ctr(n_rows=6000, n_informative_fields=3, n_irrelevant_fields=3, cardinality=10,
                            n_numeric=1, n_irrelevant_numeric=0, main_effect_strength=2.0, random_state=1,
                            return_truth=True)
    return table, truth


# ---------------------------------------------------------------- schema
def test_log_bin_matches_criteo_rule_by_hand():
    # v > 2: floor(ln(v)^2); ln(10)^2 = 5.30, ln(3)^2 = 1.21, ln(1000)^2 = 47.7; else trunc(v)
    assert log_bin(np.array([10.0, 3.0, 1000.0, 2.0, 1.5, -3.7])).tolist() == [5, 1, 47, 2, 1, -3]


def test_schema_unseen_and_rare_values_map_to_oov():
    train = pd.DataFrame({"a": ["x", "x", "y", "z"], "n": [1.0, 5.0, 5.0, 100.0]})
    schema = CTRSchema(["a"], ["n"], min_count=2).fit(train)
    # field a keeps only "x" (y, z seen once) -> ids {0: OOV, 1: x}; numeric bins exempt from min_count
    assert schema.field_dims_.tolist() == [2, 4]
    ids = schema.transform(pd.DataFrame({"a": ["x", "y", "never"], "n": [5.0, 1.0, 1e9]}))
    assert ids[:, 0].tolist() == [1, 0, 0]
    assert ids[1, 1] != schema.offsets_[1] and ids[2, 1] == schema.offsets_[1]  # 1e9 -> unseen bin -> OOV


@pytest.mark.parametrize("frame, err", [
    (pd.DataFrame({"a": ["x"]}), ValueError),                      # missing column
    (pd.DataFrame({"a": ["x"], "n": [1.0], "b": [1]}), ValueError),  # extra column
    (pd.DataFrame({"a": ["x"], "n": [np.nan]}), ValueError),        # NaN numeric
    (pd.DataFrame({"a": ["x"], "n": ["1"]}), TypeError),            # non-numeric numeric field
])
def test_schema_rejects_bad_frames(frame, err):
    schema = CTRSchema(["a"], ["n"]).fit(pd.DataFrame({"a": ["x", "y"], "n": [1.0, 2.0]}))
    with pytest.raises(err):
        schema.transform(frame)


def test_schema_before_fit_raises_not_fitted():
    from sklearn.exceptions import NotFittedError

    schema = CTRSchema(["a"])
    with pytest.raises(NotFittedError, match="CTRSchema is not fitted"):
        schema.transform(pd.DataFrame({"a": ["x"]}))
    with pytest.raises(NotFittedError, match="CTRSchema is not fitted"):
        schema.field_of()


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_schema_rejects_infinite_numerics(value):
    # log_bin would send both infinities to the same int64-min bin, silently
    bad = pd.DataFrame({"a": ["x", "y"], "n": [1.0, value]})
    with pytest.raises(ValueError, match="numeric field 'n' holds an infinite value in row 1"):
        CTRSchema(["a"], ["n"]).fit(bad)
    schema = CTRSchema(["a"], ["n"]).fit(pd.DataFrame({"a": ["x", "y"], "n": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="infinite"):
        schema.transform(bad)


# ---------------------------------------------------------------- backbones
def test_fm_pairwise_equals_naive_double_sum_and_hand_case():
    e = torch.randn(7, 5, 3, dtype=torch.float64)
    torch.testing.assert_close(fm_pairwise(e), fm_pairwise_naive(e))
    hand = torch.tensor([[[1.0, 2.0], [3.0, -1.0], [0.5, 0.0]]])  # <1,2>: 1, <1,3>: .5, <2,3>: 1.5
    assert fm_pairwise(hand).item() == pytest.approx(3.0)


@pytest.mark.parametrize("backbone", ["fm", "deepfm", "dcn", "ipnn"])
def test_backbone_shapes(backbone):
    net = CTRNet(backbone, n_features=20, n_fields=4, embed_dim=3, hidden=(8,))
    assert net(torch.randint(0, 20, (6, 4))).shape == (6,)


# ---------------------------------------------------------------- CTRClassifier
@pytest.mark.parametrize("backbone", ["fm", "deepfm", "dcn", "ipnn"])
def test_classifier_learns_planted_signal(planted, backbone):
    table, truth = planted
    X, y = table.split("train")
    clf = CTRClassifier(backbone, max_epochs=5, **SMALL).fit(X, y, eval_set=table.split("valid"))
    test = table.splits["test"]
    oracle = roc_auc(table.label[test], truth["logit"][test])  # AUC of the true logit (0.885)
    assert clf.score(*table.split("test")) > oracle - 0.08
    proba = clf.predict_proba(table.split("test")[0])
    assert proba.shape == (len(table.splits["test"]), 2) and np.allclose(proba.sum(1), 1.0)


def test_predict_proba_saturates_without_overflow():
    """Logits beyond +-709 overflow exp(-l); the probabilities must still be exact 0 / 1, with no warning."""
    clf = CTRClassifier("fm")
    clf.decision_function = lambda X: np.array([-800.0, 0.0, 800.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        proba = clf.predict_proba(None)
    np.testing.assert_array_equal(proba, [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])


def test_classifier_bad_input(planted):
    table, _ = planted
    X, y = table.split("train")
    with pytest.raises(ValueError, match="only 0 and 1"):
        CTRClassifier("fm", max_epochs=1, **SMALL).fit(X, np.where(y == 1, -1, 0))
    with pytest.raises(ValueError, match="backbone"):
        CTRClassifier("xdeepfm", **SMALL).fit(X, y)
    with pytest.raises(TypeError, match="hidden must be a sequence"):
        CTRClassifier("deepfm", max_epochs=1, **{**SMALL, "hidden": 32}).fit(X, y)
    clf = CTRClassifier("fm", max_epochs=1, **SMALL).fit(X, y)
    with pytest.raises(ValueError, match="missing columns"):
        clf.predict_proba(X.drop(columns=[X.columns[0]]))
    with pytest.raises(ValueError, match="unexpected columns"):
        clf.predict_proba(X.assign(extra=1))


# ---------------------------------------------------------------- OptFS
@pytest.fixture(scope="module")
def planted_large():
    # 20k rows: enough occurrences of the rare Zipf values of the informative fields to tell them useful
    return make_ctr(n_rows=20000, n_informative_fields=3, n_irrelevant_fields=3, cardinality=10, n_numeric=1,
                    n_irrelevant_numeric=0, main_effect_strength=2.0, random_state=1, return_truth=True)


def _fit_optfs(planted_large, **kw):
    table, truth = planted_large
    X, y = table.split("train")
    model = OptFS("fm", reg_lambda=3e-4, gate_lr=10.0, tau_final=1000.0, search_epochs=10, max_epochs=5, **kw,
                  **SMALL)
    return model.fit(X, y, eval_set=table.split("valid")), table, truth


@pytest.fixture(scope="module")
def optfs_fit(planted_large):
    return _fit_optfs(planted_large)


def test_optfs_gates_reach_zero_one_at_end_of_continuation(optfs_fit):
    model, _, _ = optfs_fit
    soft = torch.sigmoid(model.tau_final * torch.as_tensor(model.gate_logits_)).numpy()
    # at tau_final the soft gate is (numerically) the hard gate for (almost) every feature value
    assert np.mean(np.abs(soft - model.feature_mask_) < 0.01) >= 0.99


def test_optfs_removed_feature_changes_no_prediction(optfs_fit):
    model, table, _ = optfs_fit
    removed = np.flatnonzero(~model.feature_mask_)
    assert removed.size > 0
    X = table.split("test")[0]
    before = model.decision_function(X)
    with torch.no_grad():
        model.net_.embedding.weight[removed] += 100.0 * torch.randn(removed.size, model.embed_dim)
        model.net_.linear.weight[removed] += 100.0
    np.testing.assert_array_equal(model.decision_function(X), before)


def _planted_kept(model, truth):
    """(kept informative, informative, kept irrelevant, irrelevant) categorical values, OOV ids excluded."""
    sel, schema = model.selected_features_, model.schema_
    n_values = lambda fields: sum(len(schema.vocab_[f]) for f in fields)  # noqa: E731
    kept = lambda fields: sum(len([v for v in sel[f] if v != "<OOV>"]) for f in fields)  # noqa: E731
    irrelevant = [f for f in truth["irrelevant"] if f in schema.categorical]
    informative = [f for f in truth["informative"] if f in schema.categorical]
    return kept(informative), n_values(informative), kept(irrelevant), n_values(irrelevant)


def test_optfs_drops_planted_irrelevant_values(optfs_fit):
    model, _, truth = optfs_fit
    kept_inf, n_inf, kept_irr, n_irr = _planted_kept(model, truth)
    # Issue targets: >= 95% of the informative values kept, >= 90% of the irrelevant ones dropped.
    # Fails for no selection (0% dropped), for indiscriminate pruning, and for Adam on the gates (below).
    assert kept_inf >= 0.95 * n_inf
    assert kept_irr <= 0.10 * n_irr


def test_adam_with_sgd_groups_steps_by_hand():
    # A gate that only feels the penalty (gradient c = 1e-6 every step): Adam's first step is
    # lr * c / (|c| + eps) ~ lr whatever c is (the penalty acts at full strength), SGD's is lr * c.
    a = torch.nn.Parameter(torch.zeros(3))
    b = torch.nn.Parameter(torch.zeros(3))
    opt = AdamWithSGDGroups([{"params": [a]}, {"params": [b], "lr": 10.0, "sgd": True}], lr=0.01)
    a.grad = torch.full((3,), 1e-6)
    b.grad = torch.full((3,), 1e-6)
    opt.step()
    torch.testing.assert_close(a.detach(), torch.full((3,), -0.01 * 1e-6 / (1e-6 + 1e-8)))
    torch.testing.assert_close(b.detach(), torch.full((3,), -1e-5))
    # the same Adam group as torch.optim.Adam alone, also after a second step and through state_dict
    ref = torch.nn.Parameter(torch.zeros(3))
    ref_opt = torch.optim.Adam([ref], lr=0.01)
    ref.grad = torch.full((3,), 1e-6)
    ref_opt.step()
    for p in (a, b, ref):
        p.grad = torch.tensor([1.0, -2.0, 3.0])
    opt.load_state_dict(opt.state_dict())
    opt.step()
    ref_opt.step()
    torch.testing.assert_close(a.detach(), ref.detach())
    torch.testing.assert_close(b.detach(), torch.tensor([-1e-5 - 10.0, -1e-5 + 20.0, -1e-5 - 30.0]))


def test_optfs_bad_hyper_parameters(planted):
    X, y = planted[0].split("train")
    with pytest.raises(ValueError, match="rewind_epoch"):
        OptFS("fm", search_epochs=2, rewind_epoch=2, **SMALL).fit(X, y)
    with pytest.raises(ValueError, match="tau_final"):
        OptFS("fm", tau_final=0.5, **SMALL).fit(X, y)
    with pytest.raises(ValueError, match="gate_optimizer"):
        OptFS("fm", gate_optimizer="rmsprop", **SMALL).fit(X, y)


# ---------------------------------------------------------------- DNIS
def test_dnis_prunes_to_budget_and_keeps_pruned_weights_at_zero(planted):
    table, _ = planted
    X, y = table.split("train")
    model = DNIS("fm", target_params=0.25, search_epochs=1, max_epochs=3, **SMALL)
    model.fit(X, y, eval_set=table.split("valid"))
    table_size = model.schema_.n_features_ * model.embed_dim
    assert model.n_embedding_params_ == int(0.25 * table_size) == model.dims_.sum()
    weight = model.net_.embedding.weight.detach().numpy()
    assert np.all(weight[~model.mask_] == 0.0)
    assert model.alpha_.shape == (5, 8) and model.alpha_.min() >= 0.0 and model.alpha_.max() <= 1.0
    assert model.score(*table.split("test")) > 0.65


def test_dnis_bad_budget(planted):
    X, y = planted[0].split("train")
    with pytest.raises(ValueError, match="target_params"):
        DNIS("fm", target_params=1.5, **SMALL).fit(X, y)
    with pytest.raises(ValueError, match="block_fractions"):
        DNIS("fm", block_fractions=(0.5, 0.2), **SMALL).fit(X, y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cls", [CTRClassifier, OptFS, DNIS])
def test_cuda(planted, cls):
    table, _ = planted
    X, y = table.split("train")
    extra = {"search_epochs": 2} if cls is not CTRClassifier else {}
    model = cls("deepfm", max_epochs=1, device="cuda", **extra, **{**SMALL}).fit(X, y)
    assert model.predict_proba(X).shape == (len(X), 2)


@pytest.mark.slow
def test_frappe_deepfm_real_data(data_root):
    from graphrec.datasets import load

    table = load("frappe")
    assert {k: len(v) for k, v in table.splits.items()} == {"train": 60608, "valid": 17316, "test": 8658}
    clf = CTRClassifier("deepfm", hidden=(400, 400, 400), max_epochs=3, random_state=0)
    clf.fit(*table.split("train"), eval_set=table.split("valid"))
    assert clf.score(*table.split("test")) > 0.9


# ---------------------------------------------------------------- bench task
def test_bench_estimator_for_merges_settings():
    from graphrec.bench.tasks.ctr import OPTFS, estimator_for

    plain = estimator_for("deepfm", "frappe", 3, "cpu", dropout=0.2)
    assert type(plain) is CTRClassifier and plain.dropout == 0.2 and plain.random_state == 3
    optfs = estimator_for("optfs-fm", "frappe", 0, "cpu")
    assert type(optfs) is OptFS and optfs.reg_lambda == OPTFS["frappe"]["reg_lambda"] > 0
    assert estimator_for("optfs-deepfm", "frappe", 0, "cpu").reg_lambda == OPTFS["frappe/deepfm"]["reg_lambda"]
    rewind = estimator_for("rewind-fm", "frappe", 0, "cpu", tau_final=10.0)
    assert rewind.reg_lambda == 0.0 and rewind.tau_final == 10.0 and rewind.gate_optimizer == "sgd"
    dnis = estimator_for("dnis-deepfm", "unknown-set", 0, "cpu")  # falls back to the synthetic settings
    assert type(dnis) is DNIS and dnis.target_params == 0.5 and dnis.hidden == (64, 64)
    with pytest.raises(ValueError, match="unknown ctr method"):
        estimator_for("autofis-fm", "frappe", 0, "cpu")


# ---------------------------------------------------------------- rarely taken paths
def _tiny(n_rows=400, seed=0):
    table = make_ctr(n_rows=n_rows, n_informative_fields=2, n_irrelevant_fields=1, cardinality=5, n_numeric=1,
                     n_irrelevant_numeric=0, random_state=seed)
    return table.frame, table.label   # columns C1, C2, C3 (int64) and I1 (float64)


TINY = dict(embed_dim=4, hidden=(8,), batch_size=128, max_epochs=1, random_state=0)


def test_fit_on_no_rows_or_too_few_to_hold_out_a_validation_split_names_the_problem():
    # both used to fail with 'the validation labels hold a single class'
    X, y = _tiny()
    with pytest.raises(ValueError, match="X has no rows"):
        CTRClassifier("fm", **TINY).fit(X.iloc[:0], y[:0])
    with pytest.raises(ValueError, match=r"X has 1 row\(s\): too few to hold out valid_fraction=0.1.*eval_set"):
        CTRClassifier("fm", **TINY).fit(X.iloc[:1], y[:1])
    # with an eval_set one training row is enough (without batch norm)
    assert CTRClassifier("fm", **TINY).fit(X.iloc[:1], y[:1], eval_set=(X, y)).predict(X).shape == (len(X),)
    with pytest.raises(ValueError, match="batch_norm=True needs at least 2 training rows, got 1"):
        CTRClassifier("deepfm", batch_norm=True, **TINY).fit(X.iloc[:1], y[:1], eval_set=(X, y))


@pytest.mark.parametrize("hidden", [(8.7,), ("a",), (None,), (True, 8)])
def test_hidden_widths_must_be_integers(hidden):
    # (8.7,) used to build a width-8 layer silently; ("a",) and (None,) failed inside int()
    X, y = _tiny()
    with pytest.raises(TypeError, match="hidden must list integer layer widths"):
        CTRClassifier("deepfm", **{**TINY, "hidden": hidden}).fit(X, y)


def test_hidden_widths_positive_and_numpy_integers_accepted():
    X, y = _tiny()
    with pytest.raises(ValueError, match="hidden must list positive layer widths"):
        CTRClassifier("deepfm", **{**TINY, "hidden": (8, 0)}).fit(X, y)
    clf = CTRClassifier("deepfm", **{**TINY, "hidden": np.array([6, 5])}).fit(X, y)
    assert [m.out_features for m in clf.net_.mlp if isinstance(m, torch.nn.Linear)] == [6, 5]


@pytest.mark.parametrize("given", [dict(numeric=["C1"]), dict(categorical=["C2", "C3", "I1"])],
                         ids=["numeric_only", "categorical_only"])
def test_one_field_role_given_the_other_takes_the_remaining_columns(given):
    # naming only one role used to leave the other empty, so fit failed with 'unexpected columns'
    X, y = _tiny()
    explicit = CTRClassifier("fm", categorical=["C2", "C3", "I1"], numeric=["C1"], **TINY).fit(X, y)
    clf = CTRClassifier("fm", **given, **TINY).fit(X, y)
    assert clf.schema_.categorical == ["C2", "C3", "I1"] and clf.schema_.numeric == ["C1"]
    np.testing.assert_array_equal(clf.predict_proba(X), explicit.predict_proba(X))


def test_bad_labels_and_eval_sets_name_the_argument():
    X, y = _tiny()
    clf = CTRClassifier("fm", **TINY)
    with pytest.raises(ValueError, match=r"y must have shape \(400,\) to match X, got \(400, 1\)"):
        clf.fit(X, y.reshape(-1, 1))
    with pytest.raises(TypeError, match="y must be numeric 0/1 labels, got dtype <U3"):
        clf.fit(X, np.where(y == 1, "yes", "no"))
    with pytest.raises(TypeError, match=r"eval_set must be a tuple \(X_valid, y_valid\) or None"):
        clf.fit(X, y, eval_set=[X, y])
    with pytest.raises(TypeError, match="eval_set\\[0\\] must be a pandas DataFrame, got ndarray"):
        clf.fit(X, y, eval_set=(X.to_numpy(), y))
    with pytest.raises(ValueError, match=r"eval_set\[1\] must hold only 0 and 1"):
        clf.fit(X, y, eval_set=(X, y * 2.0))
    with pytest.raises(ValueError, match="validation labels hold a single class"):
        clf.fit(X, y, eval_set=(X, np.zeros(len(X))))
    with pytest.raises(TypeError, match="X must be a pandas DataFrame, got ndarray"):
        clf.fit(X.to_numpy(), y)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.0"):
        CTRClassifier("fm", dropout=1.0, **TINY).fit(X, y)
    with pytest.raises(ValueError, match=r"valid_fraction must be in \(0, 1\), got 1.0"):
        CTRClassifier("fm", valid_fraction=1.0, **TINY).fit(X, y)


def test_predict_and_embedding_size_before_and_after_fit():
    from sklearn.exceptions import NotFittedError

    X, y = _tiny()
    clf = CTRClassifier("fm", **TINY)
    with pytest.raises(NotFittedError):
        clf.predict(X)
    with pytest.raises(NotFittedError):
        clf.n_embedding_params_
    clf.fit(X, y)
    np.testing.assert_array_equal(clf.predict(X), (clf.predict_proba(X)[:, 1] > 0.5).astype(np.int64))
    assert clf.n_embedding_params_ == clf.schema_.n_features_ * 4 == clf.net_.embedding.weight.numel()


@pytest.mark.parametrize("backbone", ["fm", "dcn"])
def test_embed_l2_adds_half_the_squared_norm_of_the_tables_to_the_loss(backbone):
    # One batch per epoch: the first recorded loss is taken at the initial weights, which are the same
    # for both runs (same seed); the difference is the penalty embed_l2 / 2 * (||E||^2 + ||w||^2).
    # lr is tiny, so the fitted tables are the initial ones to ~1e-12.
    X, y = _tiny()
    settings = dict(TINY, batch_size=1024, lr=1e-12)
    plain = CTRClassifier(backbone, **settings).fit(X, y)
    penalised = CTRClassifier(backbone, embed_l2=0.3, **settings).fit(X, y)
    net = penalised.net_
    squares = net.embedding.weight.pow(2).sum() + (net.linear.weight.pow(2).sum() if backbone == "fm" else 0.0)
    assert hasattr(net, "linear") == (backbone == "fm")
    expected = 0.5 * 0.3 * squares.item()
    got = penalised.history_[0]["train_loss"] - plain.history_[0]["train_loss"]
    assert got == pytest.approx(expected, rel=1e-4) and expected > 0.1


def test_lr_decay_multiplies_the_rate_after_every_epoch_without_a_better_valid_auc(monkeypatch):
    import graphrec.ctr.estimators as estimators

    optimizers = []

    class Recording(AdamWithSGDGroups):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            optimizers.append(self)

    monkeypatch.setattr(estimators, "AdamWithSGDGroups", Recording)
    X, y = _tiny()
    for decay, expected in ((0.1, [1e-2, 1e-2, 1e-3, 1e-4, 1e-4]), (1.0, [1e-2] * 5)):
        scores, lrs = iter([0.6, 0.5, 0.55, 0.7, 0.65]), []

        def scripted(net, xv, yv):   # the learning rate of the epoch just run, then its scripted valid AUC
            lrs.append(optimizers[-1].param_groups[0]["lr"])
            return {"valid_auc": next(scores), "valid_logloss": 0.5}

        clf = CTRClassifier("fm", **{**TINY, "max_epochs": 5, "lr": 1e-2, "patience": None, "lr_decay": decay})
        monkeypatch.setattr(clf, "_valid_scores", scripted)
        clf.fit(X, y)
        assert lrs == pytest.approx(expected) and clf.best_epoch_ == 3


def test_schema_field_of_and_bad_frames():
    frame = pd.DataFrame({"a": ["x", "y", "x"], "b": [1, 2, 3], "n": [1.0, 10.0, 100.0]})
    schema = CTRSchema(["a", "b"], ["n"]).fit(frame)
    field = schema.field_of()
    assert field.shape == (schema.n_features_,)
    for j in range(3):   # every id of field j's block, OOV included, maps to j
        lo, size = schema.offsets_[j], schema.field_dims_[j]
        assert (field[lo:lo + size] == j).all()
    assert (field[schema.transform(frame)] == np.arange(3)).all()
    with pytest.raises(TypeError, match="X must be a pandas DataFrame, got dict"):
        schema.transform(frame.to_dict())
    with pytest.raises(ValueError, match="X has no rows"):
        schema.transform(frame.iloc[:0])
    with pytest.raises(ValueError, match="categorical and numeric must be disjoint"):
        CTRSchema(["a", "n"], ["n"]).fit(frame)
    with pytest.raises(ValueError, match="name at least one field"):
        CTRSchema([]).fit(frame)


def test_optfs_hard_gates_and_embedding_size_follow_the_kept_values(optfs_fit):
    model, table, _ = optfs_fit
    gates = model.net_.mask.gates().detach().numpy()
    np.testing.assert_array_equal(gates, model.feature_mask_.astype(gates.dtype))   # 0/1 once retrained
    assert model.n_embedding_params_ == int(model.feature_mask_.sum()) * model.embed_dim
    assert 0 < model.n_embedding_params_ < model.schema_.n_features_ * model.embed_dim
    from graphrec.bench.tasks.ctr import report

    got = report(model, table, seconds=1.0)
    assert got["feature_ratio"] == pytest.approx(model.feature_mask_.mean())
    assert got["emb_params"] == model.n_embedding_params_


def test_optfs_frozen_network_needs_a_warm_up():
    X, y = _tiny()
    with pytest.raises(ValueError, match="freeze_network=True needs warmup_epochs >= 1"):
        OptFS("fm", freeze_network=True, warmup_epochs=0, search_epochs=2, **TINY).fit(X, y)


def test_dnis_integer_budget_keeps_exactly_that_many_entries():
    X, y = _tiny()
    model = DNIS("fm", target_params=37, search_epochs=1, **TINY).fit(X, y)
    assert model.n_embedding_params_ == model.mask_.sum() == model.dims_.sum() == 37
    assert np.count_nonzero(model.net_.embedding.weight.detach().numpy()) <= 37
    table_size = model.schema_.n_features_ * 4
    with pytest.raises(ValueError, match=rf"target_params must be an integer in \[1, {table_size}\], got 1000000"):
        DNIS("fm", target_params=10**6, search_epochs=1, **TINY).fit(X, y)
    for bad in (True, "half"):
        with pytest.raises(TypeError, match="target_params must be an int count or a float share"):
            DNIS("fm", target_params=bad, search_epochs=1, **TINY).fit(X, y)
