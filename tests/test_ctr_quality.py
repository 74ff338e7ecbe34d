"""CTR quality options: MLP batch norm, the whole-table embedding L2 (``embed_l2``) and ``lr_decay``."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from graphrec.ctr import DNIS, CTRClassifier, OptFS
from graphrec.ctr.backbones import CTRNet
from graphrec.ctr.estimators import AdamWithSGDGroups
from graphrec.datasets.generators import make_ctr

SMALL = dict(embed_dim=4, hidden=(16,), batch_size=256, lr=1e-2, random_state=0)


@pytest.fixture(scope="module")
def table():
    return make_ctr(n_rows=3000, n_informative_fields=2, n_irrelevant_fields=1, cardinality=8, n_numeric=1,
                    n_irrelevant_numeric=0, random_state=0)


def _oov_rows(clf) -> np.ndarray:
    """Embedding rows of every field's out-of-vocabulary id: never in a training batch (min_count=1)."""
    return clf.net_.embedding.weight.detach()[torch.as_tensor(clf.schema_.offsets_)].numpy()


# ---------------------------------------------------------------- batch norm
@pytest.mark.parametrize("backbone", ["deepfm", "dcn", "ipnn"])
def test_batch_norm_sits_between_each_linear_and_its_relu(backbone):
    net = CTRNet(backbone, n_features=20, n_fields=4, embed_dim=3, hidden=(8, 6), dropout=0.1, batch_norm=True)
    kinds = [type(m) for m in net.mlp]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Dropout] * 2
    assert [m.num_features for m in net.mlp if isinstance(m, nn.BatchNorm1d)] == [8, 6]
    plain = CTRNet(backbone, n_features=20, n_fields=4, embed_dim=3, hidden=(8, 6))
    assert [type(m) for m in plain.mlp] == [nn.Linear, nn.ReLU] * 2


def test_batch_norm_uses_batch_statistics_in_train_mode_and_running_ones_in_eval_mode():
    torch.manual_seed(0)
    net = CTRNet("deepfm", n_features=30, n_fields=3, embed_dim=2, hidden=(5,), batch_norm=True).double()
    linear, bn = net.mlp[0], net.mlp[1]
    x = torch.randint(0, 30, (64, 3))
    z = linear(net.embedding(x).flatten(1)).detach()
    mean, var_biased, var_unbiased = z.mean(0), z.var(0, unbiased=False), z.var(0, unbiased=True)
    captured = {}
    bn.register_forward_hook(lambda m, i, o: captured.__setitem__("out", o.detach()))
    net.train()
    net(x)
    torch.testing.assert_close(captured["out"], (z - mean) / torch.sqrt(var_biased + bn.eps))
    # one update with momentum 0.1 from the (0, 1) start
    torch.testing.assert_close(bn.running_mean, 0.1 * mean)
    torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * var_unbiased)
    net.eval()
    net(x)
    torch.testing.assert_close(captured["out"], (z - 0.1 * mean) / torch.sqrt(0.9 + 0.1 * var_unbiased + bn.eps))


def test_fitted_batch_norm_model_scores_each_row_on_its_own(table):
    # batch statistics at prediction time would make a row's score depend on the rows predicted with it
    X, y = table.split("train")
    clf = CTRClassifier("deepfm", batch_norm=True, dropout=0.2, max_epochs=2, **SMALL).fit(X, y)
    assert any(isinstance(m, nn.BatchNorm1d) for m in clf.net_.mlp)
    full = clf.decision_function(X.iloc[:50])
    alone = np.array([clf.decision_function(X.iloc[i:i + 1])[0] for i in range(5)])
    np.testing.assert_allclose(alone, full[:5], rtol=1e-5, atol=1e-6)
    assert clf.net_.training  # _logits restores the train flag it found
    assert clf.score(*table.split("test")) > 0.6



def test_batch_norm_leaves_out_a_last_training_batch_of_one_row(table):
    # 257 rows at batch 256 would end every epoch on a 1-row batch, which has no batch statistics
    X, y = table.split("train")
    X, y = X.iloc[:257], np.asarray(y)[:257]
    clf = CTRClassifier("deepfm", batch_norm=True, max_epochs=2, **SMALL).fit(X, y, eval_set=(X, y))
    assert np.isfinite(clf.decision_function(X)).all()
    with pytest.raises(ValueError, match="batch_norm=True needs at least 2 training rows"):
        CTRClassifier("deepfm", batch_norm=True, max_epochs=1, **SMALL).fit(X.iloc[:1], y[:1], eval_set=(X, y))

# ---------------------------------------------------------------- embedding L2
def test_embedding_penalty_value_and_gradient_match_closed_form():
    torch.manual_seed(1)
    net = CTRNet("deepfm", n_features=7, n_fields=2, embed_dim=3, hidden=(4,))
    with torch.no_grad():
        net.linear.weight.normal_()
    lam = 0.3
    E, w = net.embedding.weight.detach().clone(), net.linear.weight.detach().clone()
    penalty = CTRClassifier(embed_l2=lam)._embedding_penalty(net)
    assert penalty.item() == pytest.approx(lam / 2 * (float((E ** 2).sum()) + float((w ** 2).sum())), rel=1e-6)
    penalty.backward()
    torch.testing.assert_close(net.embedding.weight.grad, lam * E)
    torch.testing.assert_close(net.linear.weight.grad, lam * w)
    assert all(p.grad is None for n, p in net.named_parameters() if not n.startswith(("embedding", "linear")))
    dcn = CTRNet("dcn", n_features=7, n_fields=2, embed_dim=3, hidden=(4,))  # no first-order table
    torch.testing.assert_close(CTRClassifier(embed_l2=lam)._embedding_penalty(dcn),
                               lam / 2 * (dcn.embedding.weight.detach() ** 2).sum())


@pytest.mark.parametrize("make", [
    lambda **kw: CTRClassifier("fm", max_epochs=2, l2=0.0, **kw, **SMALL),
    lambda **kw: OptFS("fm", search_epochs=2, max_epochs=1, l2=0.0, reg_lambda=0.0, **kw, **SMALL),
    lambda **kw: DNIS("fm", search_epochs=1, max_epochs=1, l2=0.0, **kw, **SMALL),
], ids=["CTRClassifier", "OptFS", "DNIS"])
def test_embed_l2_shrinks_rows_never_seen_in_a_batch(table, make):
    X, y = table.split("train")
    valid = table.split("valid")
    plain = make().fit(X, y, eval_set=valid)
    reg = make()
    reg.embed_l2 = 0.5  # OptFS / DNIS inherit the shared loss path (CTRClassifier takes it in __init__)
    reg.fit(X, y, eval_set=valid)
    before, after = _oov_rows(plain), _oov_rows(reg)
    assert np.abs(before).sum() > 0
    # same init (same random_state); no data gradient reaches these rows, only the penalty shrinks them
    assert np.linalg.norm(after) < 0.9 * np.linalg.norm(before)


def test_embed_l2_off_leaves_unseen_rows_at_their_initial_values(table):
    X, y = table.split("train")
    a = CTRClassifier("fm", max_epochs=1, l2=0.0, **SMALL).fit(X, y)
    b = CTRClassifier("fm", max_epochs=3, l2=0.0, **SMALL).fit(X, y)
    np.testing.assert_array_equal(_oov_rows(a), _oov_rows(b))


# ---------------------------------------------------------------- lr decay
def test_lr_decay_multiplies_lr_after_each_evaluation_without_improvement(table, monkeypatch):
    X, y = table.split("train")
    scripted = iter([0.6, 0.7, 0.65, 0.66, 0.8, 0.81])  # no gain after epochs 2 and 3
    seen: list[float] = []
    step = AdamWithSGDGroups.step

    def recording_step(self, closure=None):
        seen.append(self.param_groups[0]["lr"])
        return step(self, closure)

    monkeypatch.setattr(AdamWithSGDGroups, "step", recording_step)
    clf = CTRClassifier("fm", max_epochs=6, patience=None, lr_decay=0.5, **{**SMALL, "batch_size": 4096})
    clf._valid_scores = lambda net, xv, yv: {"valid_auc": next(scripted)}
    clf.fit(X, y)
    # one batch per epoch: lr during epochs 0..5
    assert seen == pytest.approx([1e-2, 1e-2, 1e-2, 5e-3, 2.5e-3, 2.5e-3])
    assert clf.best_epoch_ == 5


# ---------------------------------------------------------------- defaults and bad values
def test_defaults_keep_the_previous_model():
    clf = CTRClassifier()
    assert (clf.batch_norm, clf.embed_l2, clf.lr_decay) == (False, 0.0, 1.0)
    for cls in (OptFS, DNIS):  # the searches keep the off values of _CTRBase
        assert (cls.batch_norm, cls.embed_l2, cls.lr_decay) == (False, 0.0, 1.0)
    net = CTRNet("deepfm", n_features=10, n_fields=2, embed_dim=3, hidden=(4, 4))
    assert sorted(net.state_dict()) == sorted([
        "embedding.weight", "linear.weight", "bias", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias",
        "head.weight", "head.bias"])


@pytest.mark.parametrize("kw, err, match", [
    (dict(batch_norm=1), TypeError, "batch_norm must be a bool"),
    (dict(batch_norm="yes"), TypeError, "batch_norm must be a bool"),
    (dict(embed_l2=-0.1), ValueError, "embed_l2"),
    (dict(embed_l2=float("nan")), ValueError, "embed_l2"),
    (dict(embed_l2="0.1"), TypeError, "embed_l2"),
    (dict(lr_decay=0.0), ValueError, "lr_decay"),
    (dict(lr_decay=1.5), ValueError, "lr_decay"),
])
def test_bad_values_are_rejected(table, kw, err, match):
    X, y = table.split("train")
    with pytest.raises(err, match=match):
        CTRClassifier("deepfm", max_epochs=1, **kw, **SMALL).fit(X, y)


# ---------------------------------------------------------------- bench settings
def test_bench_deepfm_on_frappe_takes_its_own_validated_setting():
    from graphrec.bench.tasks.ctr import SETTINGS, estimator_for

    tuned = SETTINGS["frappe/deepfm"]
    deepfm = estimator_for("deepfm", "frappe", 1, "cpu")
    assert {k: getattr(deepfm, k) for k in tuned} == tuned and deepfm.random_state == 1
    assert estimator_for("deepfm", "frappe", 1, "cpu", batch_norm=False).batch_norm is False  # overrides win
    fm = estimator_for("fm", "frappe", 0, "cpu")  # other backbones and the searches keep SETTINGS["frappe"]
    assert (fm.batch_norm, fm.embed_l2, fm.lr_decay) == (False, 0.0, 1.0)
    assert fm.embed_dim == 16 and fm.dropout == 0.0
    for method in ("optfs-deepfm", "rewind-deepfm", "dnis-deepfm"):
        est = estimator_for(method, "frappe", 0, "cpu")
        assert (est.batch_norm, est.embed_l2, est.embed_dim, est.dropout) == (False, 0.0, 16, 0.0)
