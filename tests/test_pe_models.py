"""GINE with positional encodings, the training helper, the bench task and SPEEncoder."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

pytest.importorskip("torch_geometric")
from torch_geometric.data import Data  # noqa: E402

from graphrec.bench.tasks.graph_regression import COMPACT, GraphRegressionData, _runner, build_model  # noqa: E402
from graphrec.pe import SPE, ElementwisePhi, GINERegressor, GINRho, SPEEncoder  # noqa: E402
from graphrec.pe.gine import pe_transform  # noqa: E402
from graphrec.pe.training import WarmupLinearDecay, collate, fit_graph_regressor, graph_mae  # noqa: E402
from graphrec.train import CheckpointError  # noqa: E402

_CACHE: dict = {}
TINY = dict(COMPACT, hidden_dims=16, spe_phis=4, spe_rho_layers=2, spe_rho_hidden=8, spe_out=4, batch_size=16)


def _zinc_tiny(n: int = 32) -> GraphRegressionData:
    if "zinc" not in _CACHE:
        from graphrec.datasets import load

        _CACHE["zinc"] = load("zinc")
    raw = _CACHE["zinc"]
    splits = {"train": [raw["train"][i] for i in range(n)], "val": [raw["val"][i] for i in range(n // 2)],
              "test": [raw["test"][i] for i in range(n // 2)]}
    return GraphRegressionData("zinc-tiny", splits, 2, dict(TINY))


@pytest.mark.parametrize("kind", ["spe", "lappe", "rwse", None])
def test_gine_forward_with_each_pe(kind):
    data = _zinc_tiny(8)
    graphs = data.transformed(kind)["train"]
    torch.manual_seed(0)
    model = build_model(kind, TINY)
    out = model(collate(graphs))
    assert out.shape == (8, 1) and torch.isfinite(out).all()
    model.eval()
    with torch.no_grad():  # eval mode: one graph alone gives what it gives inside the batch
        torch.testing.assert_close(model(collate(graphs[:1])), model(collate(graphs))[:1], rtol=1e-5, atol=1e-5)


def test_lappe_sign_flips_only_in_training():
    graphs = _zinc_tiny(8).transformed("lappe")["train"]
    torch.manual_seed(0)
    model = GINERegressor("lappe", pe_dims=8, hidden_dims=16).eval()
    batch = collate(graphs)
    with torch.no_grad():
        torch.testing.assert_close(model.positional_encoding(batch), batch.laplacian_eigenvector_pe)
    model.train()
    flipped = model.positional_encoding(batch)
    assert torch.equal(flipped.abs(), batch.laplacian_eigenvector_pe.abs())


def test_node_level_output_and_continuous_features():
    x = torch.randn(5, 3)
    ei = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])
    g = Data(x=x, edge_index=ei, num_nodes=5)
    g = pe_transform("spe", 5)(g)
    spe = SPE(ElementwisePhi(2, 4), GINRho(2, 4, 3, n_layers=1))
    model = GINERegressor("spe", spe=spe, n_node_types=None, node_feature_dims=3, n_edge_types=None,
                          hidden_dims=8, pooling=None, out_dims=2)
    assert model(collate([g])).shape == (5, 2)


@pytest.mark.parametrize(
    "kwargs,error",
    [
        (dict(pe="spe"), TypeError),
        (dict(pe="laplace"), ValueError),
        (dict(pe=None, n_node_types=None), ValueError),
        (dict(pe=None, pooling="max"), ValueError),
        (dict(pe=None, hidden_dims=0), ValueError),
        (dict(pe="rwse", spe=SPE(ElementwisePhi(2), GINRho(2, 4, 3, n_layers=1))), ValueError),
    ],
)
def test_gine_rejects_bad_configuration(kwargs, error):
    with pytest.raises(error):
        GINERegressor(**kwargs)


def test_missing_pe_attribute_is_a_clear_error():
    graphs = _zinc_tiny(4).transformed(None)["train"]
    with pytest.raises(ValueError, match="random_walk_pe"):
        GINERegressor("rwse", pe_dims=16, hidden_dims=8)(collate(graphs))


def test_training_is_reproducible_and_learns():
    data = _zinc_tiny(32)
    graphs = data.transformed("rwse")

    def run():
        torch.manual_seed(123)   # the model's init; the Trainer's randomness comes from random_state
        model = build_model("rwse", TINY)
        result = fit_graph_regressor(model, graphs["train"], graphs["val"], epochs=4, batch_size=8, random_state=0)
        return model, result

    model, result = run()
    _, again = run()
    assert [r["train_loss"] for r in result.history] == [r["train_loss"] for r in again.history]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert math.isclose(graph_mae(model, graphs["val"]), result.best_score, rel_tol=1e-6)
    with pytest.raises(ValueError, match="train and val"):
        fit_graph_regressor(model, [], graphs["val"], epochs=1)


def _paths(n_graphs: int) -> list:
    """Small path graphs with categorical nodes, edge types and a target, no PE."""
    graphs = []
    for g in range(n_graphs):
        n = 3 + g % 3
        src = torch.arange(n - 1)
        ei = torch.stack([torch.cat([src, src + 1]), torch.cat([src + 1, src])])
        graphs.append(Data(x=torch.arange(n) % 3, edge_index=ei, edge_attr=torch.ones(ei.shape[1], dtype=torch.long),
                           y=torch.tensor([float(n)]), num_nodes=n))
    return graphs


def test_a_last_batch_of_one_graph_joins_the_one_before():
    """9 graphs in batches of 4 used to end every epoch with a one-graph batch that batch norm refuses."""
    graphs = _paths(9)
    torch.manual_seed(0)
    model = GINERegressor(None, n_node_types=3, n_edge_types=1, hidden_dims=8, n_layers=1)
    result = fit_graph_regressor(model, graphs, graphs[:2], epochs=2, batch_size=4, random_state=0)
    assert result.epochs_run == 2 and all(np.isfinite(r["train_loss"]) for r in result.history)


def test_missing_edge_types_are_a_clear_error():
    graphs = [Data(x=g.x, edge_index=g.edge_index, num_nodes=g.num_nodes) for g in _paths(3)]
    model = GINERegressor(None, n_node_types=3, n_edge_types=1, hidden_dims=8, n_layers=1)
    with pytest.raises(ValueError, match="edge_attr"):
        model(collate(graphs))


def test_warmup_linear_decay_factors():
    # warm-up 2 of 10 epochs: 1/3, 2/3 of the rate, then (1 - epoch/10), reaching 0 at epoch 10
    expected = [1 / 3, 2 / 3 * 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    assert [WarmupLinearDecay(2, 10)(e) for e in range(11)] == pytest.approx(expected)
    assert WarmupLinearDecay(0, 4)(0) == 1.0
    with pytest.raises(ValueError, match="epochs"):
        WarmupLinearDecay(2, 0)
    with pytest.raises(ValueError, match="warmup"):
        WarmupLinearDecay(-1, 10)


def test_resuming_with_another_schedule_is_refused(tmp_path):
    # The decay ends at `epochs`: resuming a 4-epoch run as an 8-epoch one would jump to another rate.
    graphs = _zinc_tiny(16).transformed(None)

    def fit(epochs):
        torch.manual_seed(0)
        return fit_graph_regressor(build_model(None, TINY), graphs["train"], graphs["val"], epochs=epochs,
                                   batch_size=8, random_state=0, checkpoint_dir=tmp_path)

    first = fit(4)
    with pytest.raises(CheckpointError, match=r"scheduler\.lr_lambdas\[0\]\.epochs: 4 in the checkpoint vs 8 now"):
        fit(8)
    again = fit(4)   # the same schedule resumes: the run is complete, nothing more is trained
    assert again.epochs_run == first.epochs_run == 4 and again.best_score == first.best_score


def test_bench_runners_return_finite_scores():
    data = _zinc_tiny(16)
    for kind in ("spe", None):
        scores = _runner(kind)(data, 0, "cpu")
        assert set(scores) == {"test_mae", "val_mae"} and all(np.isfinite(v) for v in scores.values())


def test_bench_task_is_registered(capsys):
    from graphrec.bench import get_task
    from graphrec.cli import main

    task = get_task("graph-regression")
    assert {"gine-spe", "gine-lappe", "gine-rwse", "gine"} <= set(task.methods)
    assert {"zinc", "zinc-subset"} <= set(task.datasets)
    assert main(["bench", "graph-regression", "--list"]) == 0
    assert "gine-spe" in capsys.readouterr().out


# ------------------------------------------------------------------------------ SPEEncoder
def _ring(n: int) -> sp.csr_matrix:
    i = np.arange(n)
    a = sp.csr_matrix((np.ones(n), (i, (i + 1) % n)), shape=(n, n))
    return (a + a.T).tocsr()


def test_encoder_chunks_are_exact_and_the_pe_is_equivariant():
    rng = np.random.default_rng(0)
    a = _ring(12).tolil()
    a[0, 6] = a[6, 0] = 1.0   # a chord, so that nodes differ
    a = a.tocsr()
    enc = SPEEncoder(n_components=3, n_eigs=12, rho_hidden=8, column_chunk=5, random_state=0)
    pe = enc.fit_transform(a)
    whole = SPEEncoder(n_components=3, n_eigs=12, rho_hidden=8, column_chunk=100, random_state=0).fit_transform(a)
    np.testing.assert_allclose(pe, whole, atol=1e-5)
    assert pe.shape == (12, 3) and enc.eigvals_.shape == (12,)
    perm = rng.permutation(12)
    moved = sp.csr_matrix(a)[np.argsort(perm)][:, np.argsort(perm)]   # node v becomes perm[v]
    np.testing.assert_allclose(enc.transform(moved)[perm], pe, atol=1e-4)
    assert not np.allclose(pe, pe[0], atol=1e-3)


def test_encoder_accepts_pyg_data_and_attributed_graphs():
    from graphrec.datasets.generators import make_attributed_sbm

    graph = make_attributed_sbm(n_nodes=40, n_clusters=2, random_state=0)
    enc = SPEEncoder(n_components=2, n_eigs=8, rho_hidden=8, random_state=0)
    a = enc.fit_transform(graph)
    b = enc.transform(graph.to_pyg())
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_encoder_uses_the_edge_weights_of_pyg_data():
    rng = np.random.default_rng(0)
    upper = sp.triu(_ring(10), 1).tocsr()
    upper.data = rng.uniform(0.1, 5.0, upper.nnz)
    a = (upper + upper.T).tocoo()
    data = Data(edge_index=torch.from_numpy(np.vstack([a.row, a.col]).astype(np.int64)),
                edge_weight=torch.from_numpy(a.data), num_nodes=10)
    enc = SPEEncoder(n_components=2, n_eigs=6, rho_hidden=8, random_state=0)
    np.testing.assert_allclose(enc.fit_transform(data), enc.fit_transform(a.tocsr()), atol=1e-5)
    np.testing.assert_allclose(enc.eigvals_, SPEEncoder(n_eigs=6).fit(data).eigvals_, atol=1e-6)


def test_encoder_rejects_bad_hyper_parameters():
    with pytest.raises(ValueError, match="n_components"):
        SPEEncoder(n_components=0).fit(_ring(5))
    with pytest.raises(ValueError, match="normalization"):
        SPEEncoder(normalization="rw").fit(_ring(5))
    with pytest.raises(TypeError, match="n_eigs"):
        SPEEncoder(n_eigs=2.0).fit(_ring(5))
