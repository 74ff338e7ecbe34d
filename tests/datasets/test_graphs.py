"""Attributed-graph data sets: every card loads from the shared copy and matches its statistics.

The cards' statistics are compared with the table in the shared ``graphs/MANIFEST.md`` (measured
independently of this code), the loaded graphs with the cards, and a few properties are checked
across sources of the same network.
"""
from __future__ import annotations

import re
import shutil
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.io import savemat

from graphrec.datasets import AttributedGraph, get_card, list_datasets, load
from graphrec.datasets import _registry
from graphrec.datasets.readers.graphs import read_gnnbench_npz, read_npy_zip, read_planetoid, read_s2cag_mat

# Card name -> row label of the "Contents per dataset" table in graphs/MANIFEST.md.
MANIFEST_ROWS = {
    "cora": "cora (planetoid)",
    "citeseer": "citeseer (planetoid)",
    "pubmed": "pubmed (planetoid)",
    "citeseer-mat": "citeseer.mat (S2CAG)",
    "acm": "acm.mat (S2CAG)",
    "wiki": "wiki.mat (S2CAG)",
    "dblp": "dblp.zip (Awesome-DGC)",
    "cora-gnnbench": "gnnbench_cora",
    "citeseer-gnnbench": "gnnbench_citeseer",
}
STATS = ("n_nodes", "n_edges", "n_self_loops", "n_features", "n_classes")
MANIFEST_COLUMNS = ("n_nodes", "n_edges", "n_self_loops", "n_isolated", "n_features", "n_classes")


def _leading_int(cell: str) -> int | None:
    m = re.match(r"\s*(\d+)", cell)
    return int(m.group(1)) if m else None


@pytest.fixture(scope="module")
def manifest(data_root) -> dict[str, dict[str, int | None]]:
    """The manifest's per-dataset table: row label -> {statistic: leading integer of the cell or None}."""
    path = data_root / "graphs" / "MANIFEST.md"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    table = path.read_text(encoding="utf-8").split("## Contents per dataset", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[0] not in ("folder",) and not cells[0].startswith("---"):
            rows[cells[0]] = dict(zip(MANIFEST_COLUMNS, map(_leading_int, cells[1:7])))
    return rows


@pytest.fixture(scope="module")
def graphs(data_root) -> dict[str, AttributedGraph]:
    return {}


def _load(graphs: dict, name: str) -> AttributedGraph:
    """One load per data set and module (later tests reuse it)."""
    if name not in graphs:
        graphs[name] = load(name)
    return graphs[name]


def _n_isolated(a: sp.csr_matrix) -> int:
    """Nodes without a neighbour other than themselves."""
    off = a - sp.diags(a.diagonal())
    off.eliminate_zeros()
    return int((np.diff(off.tocsr().indptr) == 0).sum())


def test_every_graph_card_is_covered():
    assert set(MANIFEST_ROWS) <= set(list_datasets(kind="graph"))


@pytest.mark.parametrize("name", sorted(MANIFEST_ROWS))
def test_card_stats_are_the_manifest_stats(name, manifest):
    stats = get_card(name).stats
    row = manifest[MANIFEST_ROWS[name]]
    assert None not in (row["n_nodes"], row["n_edges"], row["n_features"], row["n_classes"])
    for key in STATS:
        if row[key] is not None:  # the manifest has no self-loop count for PubMed
            assert stats[key] == row[key], f"{name}: card {key}={stats[key]}, manifest {row[key]}"


@pytest.mark.parametrize("name", sorted(MANIFEST_ROWS))
def test_graph_loads_and_matches_its_card(name, graphs, manifest):
    g = _load(graphs, name)
    card = get_card(name)
    assert isinstance(g, AttributedGraph) and g.name == name
    for key in STATS:
        assert getattr(g, key) == card.stats[key], f"{name}: {key}={getattr(g, key)}, card says {card.stats[key]}"
    a = g.adjacency
    assert (a != a.T).nnz == 0
    expected_isolated = manifest[MANIFEST_ROWS[name]]["n_isolated"]
    if expected_isolated is not None:
        assert _n_isolated(a) == expected_isolated
    # Degree sum of the binary pattern: two ends per edge plus one per self-loop.
    assert (a != 0).sum() == 2 * g.n_edges + g.n_self_loops


def test_class_histograms_agree_across_copies_of_cora_and_citeseer(graphs):
    """Node orders differ between Planetoid and gnn-benchmark, class sizes do not."""
    for planetoid, bench in (("cora", "cora-gnnbench"), ("citeseer", "citeseer-gnnbench")):
        y1, y2 = _load(graphs, planetoid).labels, _load(graphs, bench).labels
        assert sorted(np.bincount(y1[y1 >= 0])) == sorted(np.bincount(y2))
    assert sorted(np.bincount(_load(graphs, "cora").labels)) == [180, 217, 298, 351, 418, 426, 818]


def test_citeseer_mat_is_the_planetoid_graph(graphs):
    planetoid, mat = _load(graphs, "citeseer"), _load(graphs, "citeseer-mat")
    assert (planetoid.adjacency != mat.adjacency).nnz == 0
    assert (planetoid.features != mat.features).nnz == 0
    phantom = planetoid.labels < 0
    assert phantom.sum() == 15 and np.array_equal(np.flatnonzero(phantom), planetoid.meta["missing_feature_rows"])
    np.testing.assert_array_equal(planetoid.labels[~phantom], mat.labels[~phantom])
    assert set(mat.labels[phantom]) == {0}  # the manifest: the label-less nodes sit in class 1 (0-based: 0)
    assert planetoid.features[phantom].nnz == 0
    # gnn-benchmark's copy is the same graph without the 15 phantom nodes.
    bench = _load(graphs, "citeseer-gnnbench")
    degrees = lambda a: np.sort(np.diff(a.indptr))  # noqa: E731
    kept = np.flatnonzero(~phantom)
    assert np.array_equal(degrees(planetoid.adjacency[kept][:, kept]), degrees(bench.adjacency))


def test_pubmed_keeps_graph_and_labels_and_documents_missing_features(graphs):
    g = _load(graphs, "pubmed")
    assert (g.labels >= 0).all()
    missing = g.meta["missing_feature_rows"]
    known = np.setdiff1d(np.arange(g.n_nodes), missing)
    # x holds the 60 labelled training nodes 0..59, tx the test block 18717..19716.
    np.testing.assert_array_equal(known, np.r_[0:60, 18717:19717])
    assert g.features[missing].nnz == 0
    assert (np.diff(g.features[known].indptr) > 0).all()
    assert "allx" in get_card("pubmed").conversion


def test_weights_labels_and_self_loops_stay_as_stored(graphs):
    wiki = _load(graphs, "wiki")
    assert np.unique(wiki.adjacency.data).size == 11  # manifest: 11 distinct integer weights
    np.testing.assert_array_equal(np.unique(wiki.labels), np.arange(17))
    acm = _load(graphs, "acm")
    assert (acm.adjacency.diagonal() != 0).all() and acm.labels.min() == 0
    for name in ("acm", "wiki", "citeseer-mat", "dblp"):
        assert sp.issparse(_load(graphs, name).features)


def test_gnnbench_metadata(graphs):
    g = _load(graphs, "cora-gnnbench")
    assert len(g.meta["node_names"]) == g.n_nodes and len(g.meta["class_names"]) == 7


def test_pyg_round_trip(graphs):
    pytest.importorskip("torch_geometric")
    g = _load(graphs, "wiki")  # weighted, with self-loops
    back = AttributedGraph.from_pyg(g.to_pyg(), name="wiki")
    assert (back.adjacency != g.adjacency).nnz == 0
    np.testing.assert_allclose(back.features, g.features.toarray(), rtol=1e-6)
    np.testing.assert_array_equal(back.labels, g.labels)


def test_second_load_comes_from_the_processed_cache(tmp_path, monkeypatch):
    monkeypatch.setattr("graphrec._config.DEFAULT_DATA_HOME", tmp_path / "cache")
    calls = []
    real = _registry._reader("s2cag-mat")
    monkeypatch.setitem(_registry._READERS, "s2cag-mat", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = load("acm")
    assert calls == [1] and list((tmp_path / "cache" / "processed").glob("acm-*.pkl"))
    monkeypatch.setitem(_registry._READERS, "s2cag-mat", lambda *a, **k: pytest.fail("raw files were read again"))
    again = load("acm")
    assert (again.adjacency != first.adjacency).nnz == 0 and (again.features != first.features).nnz == 0
    np.testing.assert_array_equal(again.labels, first.labels)


# ---------------------------------------------------------------------------------------------
# Bad files
# ---------------------------------------------------------------------------------------------


def test_planetoid_reader_names_the_bad_file(tmp_path, data_root):
    src = data_root / "graphs" / "cora"
    paths = {}
    for p in src.glob("ind.cora.*"):
        paths[p.name] = tmp_path / p.name
        shutil.copyfile(p, paths[p.name])
    without_ty = {k: v for k, v in paths.items() if k != "ind.cora.ty"}
    with pytest.raises(ValueError, match=r"needs the file ind\.cora\.ty"):
        read_planetoid(without_ty, None, name="cora")
    (tmp_path / "ind.cora.test.index").write_text("2692\n2532\nnode\n")
    with pytest.raises(ValueError, match=r"ind\.cora\.test\.index, line 3"):
        read_planetoid(paths, None, name="cora")
    (tmp_path / "ind.cora.tx").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=r"ind\.cora\.tx is not a readable Planetoid pickle"):
        read_planetoid(paths, None, name="cora")


def test_s2cag_reader_errors(tmp_path):
    w = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=float))
    path = tmp_path / "g.mat"
    savemat(path, {"W": w, "gnd": np.array([[1, 2, 2]])})
    with pytest.raises(ValueError, match=r"g\.mat lacks the key\(s\) \['fea'\]"):
        read_s2cag_mat({"g.mat": path}, None, label_base=1)
    savemat(path, {"W": w, "fea": np.eye(3), "gnd": np.array([[1, 2, 2]])})
    g = read_s2cag_mat({"g.mat": path}, None, label_base=1)
    assert g.n_self_loops == 1 and g.n_edges == 2 and list(g.labels) == [0, 1, 1] and g.name == "g"
    savemat(path, {"W": w, "fea": np.eye(3), "gnd": np.array([[0, 1, 1]])})
    with pytest.raises(ValueError, match="below label_base=1"):
        read_s2cag_mat({"g.mat": path}, None, label_base=1)
    savemat(path, {"W": np.triu(w.toarray()), "fea": np.eye(3), "gnd": np.array([[0, 1, 1]])})
    with pytest.raises(ValueError, match=r"g\.mat is not symmetric"):
        read_s2cag_mat({"g.mat": path}, None, label_base=0)


def _save_gnnbench(path, adj: sp.csr_matrix, **extra) -> None:
    np.savez(path, adj_data=adj.data, adj_indices=adj.indices, adj_indptr=adj.indptr, adj_shape=adj.shape, **extra)


def test_gnnbench_reader_handles_every_variant_of_the_format(tmp_path):
    directed = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 2, 0], [0, 0, 1, 0], [1, 0, 0, 0]], dtype=np.float32))
    onehot = sp.csr_matrix(np.array([[1, 0], [0, 1], [0, 0], [0, 1]]))
    path = tmp_path / "toy.npz"
    _save_gnnbench(
        path, directed, attr_matrix=np.arange(8.0).reshape(4, 2), labels_data=onehot.data,
        labels_indices=onehot.indices, labels_indptr=onehot.indptr, labels_shape=onehot.shape,
    )
    g = read_gnnbench_npz({"toy.npz": path}, None)
    expected = np.array([[0, 1, 0, 1], [1, 0, 2, 0], [0, 2, 1, 0], [1, 0, 0, 0]])
    np.testing.assert_array_equal(g.adjacency.toarray(), expected)
    np.testing.assert_array_equal(g.labels, [0, 1, -1, 1])
    assert not sp.issparse(g.features) and g.n_features == 2
    _save_gnnbench(path, directed, labels=np.array([0, 0, 1, 1]))
    g = read_gnnbench_npz({"toy.npz": path}, None)
    assert g.meta["features"] == "identity" and (g.features != sp.identity(4)).nnz == 0
    np.savez(path, adj_data=directed.data)
    with pytest.raises(ValueError, match=r"toy\.npz lacks \['adj_indices'"):
        read_gnnbench_npz({"toy.npz": path}, None)
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"toy\.npz is not a readable \.npz archive"):
        read_gnnbench_npz({"toy.npz": path}, None)


def test_npy_zip_reader_names_a_missing_member(tmp_path):
    path = tmp_path / "toy.zip"
    with zipfile.ZipFile(path, "w") as z:
        for member, arr in (("a.npy", np.array([[0.0, 1], [1, 0]])), ("x.npy", np.eye(2))):
            with z.open(member, "w") as fh:
                np.save(fh, arr)
    with pytest.raises(ValueError, match=r"toy\.zip has no member 'y\.npy'"):
        read_npy_zip({"toy.zip": path}, None, adjacency="a.npy", features="x.npy", labels="y.npy")


# ---------------------------------------------------------------------------------------------
# AttributedGraph from PyG data and tuples
# ---------------------------------------------------------------------------------------------


def test_from_pyg_symmetrises_and_checks_its_input():
    torch = pytest.importorskip("torch")
    pytest.importorskip("torch_geometric")
    from torch_geometric.data import Data

    x = torch.eye(3)
    directed = torch.tensor([[0, 1, 1], [1, 0, 2]])
    g = AttributedGraph.from_pyg(Data(x=x, edge_index=directed, edge_weight=torch.tensor([1.0, 3.0, 2.0]),
                                      edge_attr=torch.tensor([7, 7, 7])))
    np.testing.assert_array_equal(g.adjacency.toarray(), [[0, 3, 0], [3, 0, 2], [0, 2, 0]])
    assert g.labels is None and g.n_classes == 0
    with pytest.raises(ValueError, match="data.x is missing; an AttributedGraph needs node features"):
        AttributedGraph.from_pyg(Data(edge_index=directed, num_nodes=3))
    with pytest.raises(ValueError, match=r"data.edge_index must have shape \(2, n_edges\), got \(3,\)"):
        AttributedGraph.from_pyg(Data(x=x, edge_index=torch.tensor([0, 1, 2])))
    with pytest.raises(ValueError, match=r"data.edge_index holds node ids outside \[0, 3\)"):
        AttributedGraph.from_pyg(Data(x=x, edge_index=torch.tensor([[0], [3]])))
    # float ids were truncated (0.5 became node 0); a weight per edge too few failed inside scipy
    # with "all index and data arrays must have the same length"
    with pytest.raises(TypeError, match="data.edge_index must hold integer node ids, got dtype float32"):
        AttributedGraph.from_pyg(Data(x=x, edge_index=torch.tensor([[0.5, 1.0], [1.0, 0.0]])))
    with pytest.raises(ValueError, match="data.edge_weight has 2 entries for the 3 edges of data.edge_index"):
        AttributedGraph.from_pyg(Data(x=x, edge_index=directed, edge_weight=torch.tensor([1.0, 2.0])))


def test_as_attributed_graph_accepts_only_its_three_inputs():
    from graphrec.datasets.graph import as_attributed_graph

    a = sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]]))
    g = as_attributed_graph((a, np.eye(2)))
    assert as_attributed_graph(g) is g and g.n_edges == 1
    assert repr(g) == "AttributedGraph(name='graph', n_nodes=2, n_edges=1, n_features=2 (dense), n_classes=0)"
    pytest.importorskip("torch_geometric")
    from_pyg = as_attributed_graph(g.to_pyg())
    assert (from_pyg.adjacency != a).nnz == 0 and from_pyg.features.tolist() == [[1, 0], [0, 1]]
    with pytest.raises(ValueError, match=r"graph tuple must be \(adjacency, features\), got 3 items"):
        as_attributed_graph((a, np.eye(2), np.zeros(2)))
    with pytest.raises(TypeError, match="graph must be an AttributedGraph, a torch_geometric Data or .* got list"):
        as_attributed_graph([a, np.eye(2)])


# ---------------------------------------------------------------------------------------------
# Readers on small files
# ---------------------------------------------------------------------------------------------


def _planetoid(tmp_path, test_index: str = "4\n3\n", **objects) -> dict:
    """A 5-node Planetoid set: nodes 0-2 in allx/ally (node 2 unlabelled), test nodes 4 and 3."""
    import pickle

    objs = {
        "x": sp.csr_matrix(np.array([[1.0, 0], [0, 1]])),
        "allx": sp.csr_matrix(np.array([[1.0, 0], [0, 1], [1, 1]])),
        "tx": sp.csr_matrix(np.array([[2.0, 0], [0, 2]])),
        "y": np.array([[1, 0], [0, 1]]),
        "ally": np.array([[1, 0], [0, 1], [0, 0]]),
        "ty": np.array([[0, 1], [1, 0]]),
        "graph": {0: [1], 1: [0, 2], 2: [1], 3: [4], 4: [3]},
        **objects,
    }
    paths = {}
    for key, obj in objs.items():
        if obj is not None:
            path = tmp_path / f"ind.toy.{key}"
            path.write_bytes(pickle.dumps(obj))
            paths[path.name] = path
    (tmp_path / "ind.toy.test.index").write_text(test_index)
    paths["ind.toy.test.index"] = tmp_path / "ind.toy.test.index"
    return paths


def test_planetoid_reader_places_the_test_block(tmp_path):
    g = read_planetoid(_planetoid(tmp_path, test_index="\n4\n\n3\n"), None, name="toy")
    np.testing.assert_array_equal(g.features.toarray(), [[1, 0], [0, 1], [1, 1], [0, 2], [2, 0]])
    np.testing.assert_array_equal(g.labels, [0, 1, -1, 0, 1])
    assert g.n_edges == 3 and g.name == "toy" and g.meta["missing_feature_rows"].size == 0
    without_allx = read_planetoid(_planetoid(tmp_path, allx=None), None, name="toy")
    np.testing.assert_array_equal(without_allx.meta["missing_feature_rows"], [2])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"test_index": "\n"}, r"ind\.toy\.test\.index lists no test node ids"),
        ({"test_index": "4\n4\n"}, r"ind\.toy\.test\.index lists a test node id more than once"),
        ({"test_index": "4\n³\n"}, r"ind\.toy\.test\.index, line 2: expected one non-negative node id, got '³'"),
        ({"ty": np.array([1, 0])}, r"ind\.toy\.ty must hold a 2-d one-hot label matrix, got shape \(2,\)"),
        ({"graph": [[1], [0]]}, r"ind\.toy\.graph must hold a dict of adjacency lists, got list"),
        ({"test_index": "4\n"}, r"ind\.toy\.tx has 2 rows and .*ind\.toy\.ty 2, but .*test\.index lists 1 test nodes"),
        ({"test_index": "2\n3\n"}, r"test\.index lists node ids below 3, which .*ind\.toy\.ally already covers"),
        ({"allx": sp.csr_matrix(np.ones((2, 2)))}, r"ind\.toy\.allx has 2 rows, .*ind\.toy\.ally has 3"),
        ({"allx": sp.csr_matrix(np.ones((3, 3)))}, r"the feature files of 'toy' disagree on the number of columns"),
        ({"graph": {0: [1], 1: [0, 7]}}, r"ind\.toy\.graph holds node ids outside \[0, 5\)"),
        # was "max() arg is an empty sequence" / "can only concatenate str (not "int") to str"
        ({"graph": {}}, None),
        ({"graph": {"a": [1]}}, r"ind\.toy\.graph must map node ids to lists of node ids"),
        ({"graph": {0: 1}}, r"ind\.toy\.graph must map node ids to lists of node ids"),
        # without allx, x rows beyond ally's nodes were summed onto the test rows placed there
        ({"allx": None, "x": sp.csr_matrix(np.ones((4, 2)))}, r"ind\.toy\.x has 4 rows, more than the 3 nodes"),
    ],
)
def test_malformed_planetoid_files_are_named(tmp_path, change, message):
    paths = _planetoid(tmp_path, **change)
    if message is None:  # an empty graph dict is a graph without edges
        g = read_planetoid(paths, None, name="toy")
        assert g.n_nodes == 5 and g.n_edges == 0
        return
    with pytest.raises(ValueError, match=message):
        read_planetoid(paths, None, name="toy")


@pytest.mark.parametrize(
    "content, message",
    [
        # a non-square W raised AttributeError: 'bool' object has no attribute 'nnz'
        ({"W": np.ones((2, 3))}, r"adjacency in .*g\.mat has shape \(2, 3\); expected a square \(n, n\) matrix"),
        # NaN weights were reported as "not symmetric"
        ({"W": np.array([[0, np.nan, 0], [np.nan, 0, 1], [0, 1, 0]])}, r"adjacency in .*g\.mat holds NaN or infinite"),
        # class 1.5 was truncated to 1
        ({"gnd": np.array([[1, 1.5, 2]])}, r"gnd in .*g\.mat must hold integer class ids, got dtype float64"),
        ({"fea": np.ones((3, 2, 2))}, r"features in .*g\.mat must be a 2-d \(n_nodes, n_features\) array"),
    ],
)
def test_malformed_s2cag_files_are_named(tmp_path, content, message):
    w = np.array([[0.0, 1, 0], [1, 0, 1], [0, 1, 1]])
    path = tmp_path / "g.mat"
    savemat(path, {"W": w, "fea": np.eye(3), "gnd": np.array([[1, 2, 2]]), **content})
    with pytest.raises(ValueError, match=message):
        read_s2cag_mat({"g.mat": path}, None, label_base=1)


def test_s2cag_reader_refuses_unreadable_files_and_bad_options(tmp_path):
    path = tmp_path / "g.mat"
    savemat(path, {"W": np.eye(2), "fea": np.eye(2), "gnd": np.array([[0, 1]])})
    with pytest.raises(ValueError, match="label_base must be 0 or 1, got 2"):
        read_s2cag_mat({"g.mat": path}, None, label_base=2)
    with pytest.raises(ValueError, match=r"'s2cag-mat' reader expects exactly one file, got \['a\.mat', 'g\.mat'\]"):
        read_s2cag_mat({"g.mat": path, "a.mat": path}, None, label_base=0)
    path.write_bytes(b"not a MATLAB file at all" * 8)
    with pytest.raises(ValueError, match=r"g\.mat is not a readable MATLAB file"):
        read_s2cag_mat({"g.mat": path}, None, label_base=0)
    # a truncated file raised scipy's MatReadError, which is no ValueError
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"g\.mat is not a readable MATLAB file: .*truncated"):
        read_s2cag_mat({"g.mat": path}, None, label_base=0)


def _npy_zip(path, members: dict) -> dict:
    with zipfile.ZipFile(path, "w") as z:
        for member, value in members.items():
            with z.open(member, "w") as fh:
                if isinstance(value, bytes):
                    fh.write(value)
                else:
                    np.save(fh, value)
    return {path.name: path}


@pytest.mark.parametrize(
    "members, message",
    [
        ({"a.npy": np.ones(3)}, r"toy\.zip: a\.npy must be a 2-d \(n, n\) array, got shape \(3,\)"),
        # a non-square adjacency raised AttributeError: 'bool' object has no attribute 'nnz'
        ({"a.npy": np.ones((2, 3))}, r"adjacency in .*toy\.zip:a\.npy has shape \(2, 3\); expected a square"),
        ({"a.npy": b"\x93NUMPY junk"}, r"toy\.zip: member 'a\.npy' is not a readable \.npy array"),
        ({"x.npy": np.ones(2)}, r"features in .*toy\.zip:x\.npy must be a 2-d \(n_nodes, n_features\) array"),
    ],
)
def test_malformed_npy_zip_members_are_named(tmp_path, members, message):
    good = {"a.npy": np.array([[0.0, 1], [1, 0]]), "x.npy": np.eye(2), "y.npy": np.array([0, 1])}
    paths = _npy_zip(tmp_path / "toy.zip", {**good, **members})
    with pytest.raises(ValueError, match=message):
        read_npy_zip(paths, None, adjacency="a.npy", features="x.npy", labels="y.npy")


def test_npy_zip_reader_reads_a_small_archive_and_refuses_other_files(tmp_path):
    members = {"a.npy": np.array([[0.0, 1], [1, 0]]), "x.npy": np.eye(2), "y.npy": np.array([[1], [0]])}
    g = read_npy_zip(_npy_zip(tmp_path / "toy.zip", members), None, adjacency="a.npy", features="x.npy", labels="y.npy")
    assert g.n_edges == 1 and g.labels.tolist() == [1, 0] and g.name == "toy"
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"bad\.zip is not a readable zip archive"):
        read_npy_zip({"bad.zip": tmp_path / "bad.zip"}, None, adjacency="a.npy", features="x.npy", labels="y.npy")


def test_gnnbench_reader_refuses_malformed_archives(tmp_path):
    sym = sp.csr_matrix(np.array([[0.0, 1], [1, 0]]))
    path = tmp_path / "toy.npz"
    # a column id beyond the shape passed scipy's constructor and was read out of bounds later
    # (wrong "not symmetric" errors, or a crash of the interpreter)
    np.savez(path, adj_data=np.ones(2), adj_indices=np.array([1, 5]), adj_indptr=np.array([0, 1, 2]), adj_shape=(2, 2))
    with pytest.raises(ValueError, match=r"toy\.npz: the adj_\* arrays do not form a valid CSR matrix: indices must"):
        read_gnnbench_npz({"toy.npz": path}, None)
    np.savez(path, adj_data=np.ones(2), adj_indices=np.array([1, 0]), adj_indptr=np.array([0, 1, 2]), adj_shape=(2, 3))
    with pytest.raises(ValueError, match=r"adj_shape in .*toy\.npz is \(2, 3\); expected a square matrix"):
        read_gnnbench_npz({"toy.npz": path}, None)
    multi = sp.csr_matrix(np.array([[1, 1], [0, 1]]))
    _save_gnnbench(path, sym, labels_data=multi.data, labels_indices=multi.indices, labels_indptr=multi.indptr,
                   labels_shape=multi.shape)
    with pytest.raises(ValueError, match=r"toy\.npz holds multi-label rows"):
        read_gnnbench_npz({"toy.npz": path}, None)
    # labels 0.5 and 1.0 became classes 0 and 1
    _save_gnnbench(path, sym, labels=np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"labels in .*toy\.npz must hold integer class ids, got dtype float64"):
        read_gnnbench_npz({"toy.npz": path}, None)
    _save_gnnbench(path, sym, labels=np.array([1.0, 0.0]))
    assert read_gnnbench_npz({"toy.npz": path}, None).labels.tolist() == [1, 0]
    _save_gnnbench(path, sym)
    assert read_gnnbench_npz({"toy.npz": path}, None).labels is None
    with zipfile.ZipFile(path, "w") as z:  # a zip whose .npy member is cut short
        z.writestr("adj_data.npy", _npy_bytes(np.arange(10.0))[:-40])
    with pytest.raises(ValueError, match=r"toy\.npz is not a readable \.npz archive: EOF"):
        read_gnnbench_npz({"toy.npz": path}, None)
    with pytest.raises(ValueError, match=r"the 'gnnbench-npz' reader expects exactly one file"):
        read_gnnbench_npz({}, None)


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()
