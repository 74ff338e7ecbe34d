"""``graphrec bench``: registry, runner, JSON output and the command line."""
from __future__ import annotations

import json

import pytest

from graphrec.bench import get_task, run_bench
from graphrec.cli import main


def test_run_bench_cluster_default_is_reproducible_and_scored():
    result = run_bench("cluster", seeds=[0, 1])
    (row,) = result.summary()
    assert row["method"] == "s2cag" and row["dataset"] == "csbm" and row["n_seeds"] == 2
    assert 0.85 <= row["acc"]["mean"] <= 1.0 and row["seconds"]["mean"] > 0
    again = run_bench("cluster", seeds=[0, 1])
    assert [r.metrics for r in again.records] == [r.metrics for r in result.records]


def test_cli_bench_prints_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "res.json"
    assert main(["bench", "cluster", "--seeds", "2", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| csbm | s2cag |" in printed and "±" in printed
    data = json.loads(out.read_text())
    assert data["task"] == "cluster" and len(data["runs"]) == 2
    assert set(data["summary"][0]) >= {"acc", "nmi", "ari", "seconds", "peak_mb"}


def test_cli_bench_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "res.png"
    assert main(["bench", "cluster", "--seeds", "1", "--plot", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "res_embedding.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_embeddings_draws_methods_with_an_embedding(tmp_path):
    pytest.importorskip("matplotlib")
    from graphrec.bench.runner import plot_embeddings

    task = get_task("cluster")
    out = tmp_path / "emb.png"
    pairs = plot_embeddings(task, ["s2cag", "kmeans", "m-s2cag"], ["karate"], out)
    assert pairs == [("s2cag", "karate"), ("m-s2cag", "karate")]  # kmeans has no embedding
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert plot_embeddings(task, ["kmeans"], ["karate"], tmp_path / "none.png") == []
    assert not (tmp_path / "none.png").exists()


def test_unknown_names_give_clear_errors(capsys):
    assert main(["bench", "cluster", "--method", "nope"]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err
    assert main(["bench", "no-task"]) == 2
    assert "unknown bench task" in capsys.readouterr().err
    with pytest.raises(KeyError):
        run_bench("cluster", datasets=["nope"])


def test_cli_lists_the_tasks_and_asks_for_one(capsys):
    assert main(["bench", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert {"cluster", "kg", "recsys", "graph-regression", "ctr", "tensor", "subspace"} <= set(listed)
    assert main(["bench"]) == 2
    err = capsys.readouterr().err
    assert "a TASK is required" in err and "graph-regression" in err


def test_all_tasks_stays_a_function_once_the_task_modules_are_imported():
    # a public name equal to the subpackage `graphrec.bench.tasks` would be replaced by it on first import
    import graphrec.bench
    import graphrec.bench.tasks.kg  # noqa: F401

    assert callable(graphrec.bench.all_tasks) and "kg" in graphrec.bench.all_tasks()


def test_task_lists_real_graphs():
    assert {"csbm", "karate", "digits", "cora"} <= set(get_task("cluster").datasets)


def test_cli_datasets_list_and_info(capsys):
    assert main(["datasets", "list"]) == 0
    assert "cora" in capsys.readouterr().out
    assert main(["datasets", "info", "cora"]) == 0
    assert "sha256=" in capsys.readouterr().out
    assert main(["datasets", "info", "nope"]) == 2


@pytest.mark.parametrize("option", ["--json", "--plot"])
@pytest.mark.parametrize("where", ["folder", "under_a_file"])
def test_unwritable_output_path_fails_before_the_run(tmp_path, capsys, monkeypatch, option, where):
    import graphrec.bench

    monkeypatch.setattr(graphrec.bench, "run_bench", lambda *a, **k: pytest.fail("ran before checking the output path"))
    (tmp_path / "a_file").write_text("")
    path = tmp_path if where == "folder" else tmp_path / "a_file" / "out.json"
    assert main(["bench", "cluster", "--seeds", "1", option, str(path)]) == 2
    assert f"{option} {path}" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_write_json_leaves_no_temp_file_when_it_fails(tmp_path):
    from graphrec.bench.runner import BenchResult, write_json

    (tmp_path / "taken").mkdir()
    with pytest.raises(OSError):
        write_json(BenchResult("cluster", "cpu", [0]), tmp_path / "taken")
    assert [p.name for p in tmp_path.iterdir()] == ["taken"] and not any((tmp_path / "taken").iterdir())


def test_cli_reports_a_corrupt_data_file_without_a_traceback(tmp_path, data_root, capsys):
    from graphrec.datasets import get_card

    card = get_card("cora")
    folder = tmp_path / card.path
    folder.mkdir(parents=True)
    for f in card.files:
        (folder / f.name).write_bytes((data_root / card.path / f.name).read_bytes())
    bad = folder / card.files[0].name
    bad.write_bytes(bad.read_bytes()[:100])
    assert main(["datasets", "fetch", "cora", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("graphrec datasets: ") and f"{bad} is corrupt or truncated" in err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error_before_any_data_is_loaded(capsys):
    task = get_task("cluster")
    loader, description = task.datasets["karate"]
    task.datasets["karate"] = (lambda: pytest.fail("loaded data before checking the device"), description)
    try:
        with pytest.raises(ValueError, match="CUDA is not available"):
            run_bench("cluster", datasets=["karate"], seeds=[0], device="cuda")
        assert main(["bench", "cluster", "--dataset", "karate", "--seeds", "1", "--device", "cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err
    finally:
        task.datasets["karate"] = (loader, description)


def test_recsys_task_end_to_end_beats_random_ranking():
    # the generated default (1000 users x 500 items); a random ranking has recall@20 about 20/500 = 0.04
    result = run_bench("recsys", methods=["directau", "bpr"], seeds=[0])
    recall = {row["method"]: row["recall@20"]["mean"] for row in result.summary()}
    assert set(recall) == {"directau", "bpr"} and min(recall.values()) > 0.15, recall


def test_tensor_task_on_the_synthetic_set_continuous_beats_binned(data_root):
    # FunBaT's rank-1 simulation: targets of sd 0.063; the functional model fits between the binned grid's cells
    result = run_bench("tensor", methods=["funbat-cp", "cp-als", "tucker-als"], datasets=["synthetic"], seeds=[0])
    rmse = {row["method"]: row["rmse"]["mean"] for row in result.summary()}
    assert rmse["funbat-cp"] < 0.01 and rmse["funbat-cp"] < min(rmse["cp-als"], rmse["tucker-als"]) / 2, rmse


# ---------------------------------------------------------------- methods and datasets the tests above do not run
def test_cluster_kmeans_peer_is_sklearn_kmeans_on_the_normalised_attributes():
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import normalize

    from graphrec.datasets.builtin import load_digits_graph
    from graphrec.metrics import clustering_report

    result = run_bench("cluster", methods=["kmeans"], datasets=["digits"], seeds=[4])
    graph = load_digits_graph()
    labels = KMeans(graph.n_classes, n_init=10, random_state=4).fit_predict(normalize(graph.features))
    assert result.records[0].metrics == pytest.approx(clustering_report(graph.labels, labels))
    assert graph.n_nodes == 1797 and graph.n_classes == 10


@pytest.mark.parametrize("method", ["spectral", "sklearn-spectral"])
def test_cluster_spectral_methods_recover_the_karate_club_split(method):
    # the two factions of Zachary's club; graph spectral clustering misplaces at most a few members
    (row,) = run_bench("cluster", methods=[method], datasets=["karate"], seeds=[0]).summary()
    assert row["acc"]["mean"] >= 30 / 34 and row["nmi"]["mean"] > 0.5


def test_cluster_spectral_embedding_matches_its_run():
    from graphrec.metrics import clustering_report

    task = get_task("cluster")
    graph = task.datasets["karate"][0]()
    embedding, labels = task.embedders["spectral"](graph, 0, "cpu")
    assert embedding.shape[0] == labels.shape[0] == graph.n_nodes
    assert clustering_report(graph.labels, labels) == pytest.approx(task.methods["spectral"][0](graph, 0, "cpu"))


def test_real_data_loaders_return_the_named_set(data_root):
    # the runners look their settings up by data.name (kg presets, FunBaT configs, DirectAU's gamma)
    from graphrec.bench.tasks.tensor import _CONFIGS

    for task_name, name in (("cluster", "cora"), ("kg", "nations"), ("recsys", "ml-100k")):
        assert get_task(task_name).datasets[name][0]().name == name
    tensor = get_task("tensor")
    for name in sorted(set(tensor.datasets) - {"synthetic"}):
        assert tensor.datasets[name][0]().name == name
        assert ("tucker", name) in _CONFIGS and ("cp", name) in _CONFIGS   # funbat-authors / funbat-cp settings


@pytest.mark.parametrize("method", ["deep-sc", "mlc", "concat-svd", "molrg-diffusion"])
def test_subspace_methods_separate_the_generated_union_of_subspaces(method):
    # 10 random 4-dim subspaces of R^30, noise 0.01: every method should find them (chance ACC ~0.1)
    (row,) = run_bench("subspace", methods=[method], seeds=[0]).summary()
    assert row["acc"]["mean"] >= 0.95 and row["nmi"]["mean"] >= 0.95


def test_subspace_digits_loader():
    X, labels = get_task("subspace").datasets["digits"][0]()
    assert X.shape == (1797, 64) and sorted(set(labels.tolist())) == list(range(10))


def test_ctr_report_computes_each_metric():
    from sklearn.metrics import log_loss as sk_log_loss
    from sklearn.metrics import roc_auc_score

    from graphrec.bench.tasks.ctr import report
    from graphrec.ctr import CTRClassifier
    from graphrec.datasets.generators import make_ctr

    table = make_ctr(n_rows=2000, random_state=0)
    est = CTRClassifier("fm", embed_dim=4, max_epochs=3, random_state=0).fit(*table.split("train"),
                                                                            eval_set=table.split("valid"))
    got = report(est, table, seconds=2.0)
    X, y = table.split("test")
    p = est.predict_proba(X)[:, 1]
    n_features = est.schema_.n_features_
    assert got["auc"] == pytest.approx(roc_auc_score(y, p)) and got["logloss"] == pytest.approx(sk_log_loss(y, p))
    assert got["feature_ratio"] == 1.0 and got["emb_params"] == n_features * 4
    assert got["params"] == n_features * (4 + 1) + 1   # FM: embeddings, first-order weights, bias
    assert got["rows_per_s"] == pytest.approx(len(est.history_) * len(table.splits["train"]) / 2.0)


def test_ctr_task_end_to_end_on_the_generated_default():
    (row,) = run_bench("ctr", methods=["fm"], seeds=[0]).summary()
    assert row["dataset"] == "synthetic" and row["auc"]["mean"] > 0.65 and row["rows_per_s"]["mean"] > 0
    assert row["emb_params"]["mean"] == row["params"]["mean"] * 16 // 17   # FM, embed_dim 16: n_f*16 of n_f*17+1
