"""Graph-level data sets through PyTorch Geometric: ZINC-12k and the TU sets.

The cards' statistics are compared with the shared ``molecules/PROVENANCE.md`` (measured
independently of this code), the loaded PyG datasets with the cards, and ZINC's graphs with the
independently derived ``molecules/ZINC/pyg_raw_derived`` pickles of the shared copy.
"""
from __future__ import annotations

import json
import pickle
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_geometric")

from graphrec.datasets import get_card, list_datasets, load  # noqa: E402
from graphrec.datasets.readers.molecules import read_tu, read_zinc, write_zinc_raw  # noqa: E402

# Card name -> first cell of its row in PROVENANCE.md.
ROWS = {
    "zinc": "ZINC/rulegnn_text/",
    "mutag": "MUTAG/raw/",
    "enzymes": "ENZYMES/raw/",
    "proteins-full": "PROTEINS_full/raw/",
}
TU = ("mutag", "enzymes", "proteins-full")


def _count(pattern: str, text: str) -> int | None:
    m = re.search(pattern, text)
    return int(m.group(1).replace(",", "")) if m else None


@pytest.fixture(scope="module")
def provenance(data_root) -> dict[str, dict]:
    """Statistics stated in each card's row of PROVENANCE.md (None where the row states none)."""
    path = data_root / "molecules" / "PROVENANCE.md"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    lines = path.read_text(encoding="utf-8").splitlines()
    out = {}
    for name, first in ROWS.items():
        row = next(ln for ln in lines if ln.startswith(f"| {first} "))
        labels = re.search(r"labels \{([^}]*)\}", row)
        out[name] = {
            "n_graphs": _count(r"([\d,]+) graphs", row),
            "n_nodes": _count(r"([\d,]+) nodes", row),
            "n_edges": _count(r"([\d,]+) directed edge lines", row),
            "n_bonds": _count(r"([\d,]+) bonds", row),
            "n_classes": len(labels.group(1).split(",")) if labels else _count(r"(\d+) classes", row),
            "n_node_labels": _count(r"(\d+) node labels", row),
            "n_edge_labels": _count(r"(\d+) edge labels", row),
            "n_node_attributes": _count(r"(\d+)-dim node attributes", row),
        }
        if name == "zinc":
            ranges = re.findall(r"(\d+)-(\d+) (train|val|test)", row)
            out[name]["split_sizes"] = {s: int(b) - int(a) + 1 for a, b, s in ranges}
    return out


@pytest.fixture(scope="module")
def loaded() -> dict:
    return {}


def _load(cache: dict, name: str):
    if name not in cache:
        cache[name] = load(name)
    return cache[name]


def test_every_molecule_card_is_covered():
    assert set(ROWS) == set(list_datasets(kind="molecules"))


@pytest.mark.parametrize("name", sorted(ROWS))
def test_card_stats_are_the_provenance_stats(name, provenance, data_root):
    stats = get_card(name).stats
    stated = {k: v for k, v in provenance[name].items() if v is not None}
    assert {k: stats[k] for k in stated} == stated
    if name in ("enzymes", "proteins-full"):  # the node-label count is not in PROVENANCE.md: count it here
        card = get_card(name)
        fname = next(f.name for f in card.files if f.name.endswith("_node_labels.txt"))
        values = (data_root / card.path / fname).read_text().split()
        assert stats["n_node_labels"] == len(set(values))


@pytest.mark.parametrize("name", TU)
def test_tu_sets_load_and_match_their_card(name, loaded):
    ds = _load(loaded, name)
    stats = get_card(name).stats
    assert type(ds).__name__ == "TUDataset"
    assert len(ds) == stats["n_graphs"] and ds.num_classes == stats["n_classes"]
    assert ds._data.x.size(0) == stats["n_nodes"] and ds._data.edge_index.size(1) == stats["n_edges"]
    assert ds.num_node_labels == stats["n_node_labels"]
    assert ds.num_edge_labels == stats.get("n_edge_labels", 0)
    assert ds.num_node_attributes == stats.get("n_node_attributes", 0)
    assert ds.num_features == stats.get("n_node_attributes", 0) + stats["n_node_labels"]


def test_mutag_labels_follow_the_raw_file(loaded, data_root):
    ds = _load(loaded, "mutag")
    raw = [int(v) for v in (data_root / "molecules" / "MUTAG" / "raw" / "MUTAG_graph_labels.txt").read_text().split()]
    np.testing.assert_array_equal(ds._data.y.numpy(), [0 if v == -1 else 1 for v in raw])


def test_changed_stamp_rebuilds_the_raw_layout(tmp_path):
    first = load("mutag", root=tmp_path)
    folder = tmp_path / "molecules" / "tu" / "MUTAG"
    (folder / "raw" / "SOURCE").write_text("stale\n")
    (folder / "processed" / "junk").write_text("x")
    again = load("mutag", root=tmp_path)
    assert not (folder / "processed" / "junk").exists()
    assert (folder / "raw" / "SOURCE").read_text() != "stale\n"
    assert torch.equal(again._data.edge_index, first._data.edge_index)


def test_zinc_loads_and_matches_its_card(loaded, data_root):
    splits = _load(loaded, "zinc")
    stats = get_card("zinc").stats
    assert {k: len(v) for k, v in splits.items()} == stats["split_sizes"]
    assert sum(len(v) for v in splits.values()) == stats["n_graphs"]
    assert sum(v._data.x.size(0) for v in splits.values()) == stats["n_nodes"]
    assert sum(v._data.edge_index.size(1) for v in splits.values()) == 2 * stats["n_bonds"]
    label_file = data_root / "molecules" / "ZINC" / "rulegnn_text" / "ZINC_Labels.txt"
    labels = dict(line.split() for line in label_file.read_text().splitlines())
    assert splits["test"][0].y.item() == np.float32(labels["11000"])
    assert splits["train"][9999].y.item() == np.float32(labels["9999"])


@pytest.mark.parametrize("split", ("val", "test"))
def test_zinc_graphs_equal_the_shared_pyg_raw_copy(split, loaded, data_root):
    """The shared pyg_raw_derived pickles were derived independently from the same text files."""
    ds = _load(loaded, "zinc")[split]
    with open(data_root / "molecules" / "ZINC" / "pyg_raw_derived" / f"{split}.pickle", "rb") as fh:
        reference = pickle.load(fh)  # a trusted local test fixture
    assert len(ds) == len(reference)
    for data, mol in zip(ds, reference):
        assert torch.equal(data.x.view(-1), mol["atom_type"])
        adj = mol["bond_type"]
        assert torch.equal(data.edge_index, adj.nonzero().t())
        assert torch.equal(data.edge_attr, adj[adj.nonzero(as_tuple=True)].long())
        assert torch.equal(data.y, mol["logP_SA_cycle_normalized"])


# ---------------------------------------------------------------------------------------------
# Bad files
# ---------------------------------------------------------------------------------------------


def _zinc_files(tmp_path, nodes: str, edges: str, labels: str, splits=None) -> dict:
    splits = splits or [{"test": [2], "model_selection": [{"train": [0], "validation": [1]}]}]
    texts = {
        "ZINC_Nodes.txt": nodes,
        "ZINC_Edges.txt": edges,
        "ZINC_Labels.txt": labels,
        "ZINC_splits.json": json.dumps(splits),
    }
    folder = tmp_path / "text"
    folder.mkdir(exist_ok=True)
    for name, text in texts.items():
        (folder / name).write_text(text)
    return {name: folder / name for name in texts}


GOOD = {
    "nodes": "0 1 5\n0 0 2\n1 0 1\n1 1 1\n1 2 3\n2 0 4\n2 1 4\n",
    "edges": "0 0 1 2\n1 0 1 1\n1 2 1 3\n2 1 0 1\n",
    "labels": "0 0.5\n1 -1.25\n2 2.0\n",
}


def test_zinc_reader_on_three_small_graphs(tmp_path):
    splits = read_zinc(_zinc_files(tmp_path, **GOOD), None, root=tmp_path / "root")
    assert {k: len(v) for k, v in splits.items()} == {"train": 1, "val": 1, "test": 1}
    g = splits["val"][0]
    assert g.x.view(-1).tolist() == [1, 1, 3]  # ordered by node id
    assert g.edge_index.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]] and g.edge_attr.tolist() == [1, 1, 3, 3]
    assert splits["train"][0].x.view(-1).tolist() == [2, 5] and splits["test"][0].y.item() == 2.0


@pytest.mark.parametrize(
    "change, message",
    [
        ({"nodes": "0 0 x\n"}, r"ZINC_Nodes\.txt, line 1: expected 3 numbers, got '0 0 x'"),
        ({"edges": "0 0 1 2\n1 0 1\n"}, r"ZINC_Edges\.txt, line 2: expected 4 numbers"),
        ({"nodes": GOOD["nodes"].replace("1 2 3", "1 3 3")}, r"node ids of every graph must be 0 \.\. n-1"),
        ({"edges": GOOD["edges"] + "2 0 2 1\n"}, r"ZINC_Edges\.txt holds a bond between missing nodes or a self-loop"),
        ({"edges": GOOD["edges"] + "2 0 1 1\n"}, r"graph 2 lists a bond twice"),
        ({"labels": "0 0.5\n0 1.0\n2 2.0\n"}, r"ZINC_Labels\.txt: graph ids must be 0 \.\. 2, each once"),
        (
            {"splits": [{"test": [2], "model_selection": [{"train": [0], "validation": [0]}]}]},
            "must partition the graph ids",
        ),
        ({"splits": {"test": [2]}}, r"ZINC_splits\.json must hold"),
    ],
)
def test_malformed_zinc_text_is_named(tmp_path, change, message):
    args = {**GOOD, **change}
    with pytest.raises(ValueError, match=message):
        write_zinc_raw(_zinc_files(tmp_path, **args), tmp_path / "raw")


def test_tu_reader_checks_file_names(tmp_path):
    path = tmp_path / "TOY_A.txt"
    path.write_text("1, 2\n")
    with pytest.raises(ValueError, match=r"takes only files named TOY_\*\.txt; got \['other.txt'\]"):
        read_tu({"TOY_A.txt": path, "other.txt": path}, None, name="TOY", root=tmp_path)
    with pytest.raises(ValueError, match="needs the file TOY_graph_indicator.txt"):
        read_tu({"TOY_A.txt": path}, None, name="TOY", root=tmp_path)


def test_a_first_load_waits_for_the_lock_held_by_another_process(tmp_path):
    # concurrent first loads used to race: one process emptied the raw folder while another wrote it
    import subprocess
    import sys
    import time

    from graphrec.datasets._lock import file_lock

    code = ("import sys; from graphrec.datasets import load; "
            "print(load('mutag', root=sys.argv[1])._data.edge_index.size(1))")
    folder = tmp_path / "molecules" / "tu"
    with file_lock(folder / ".MUTAG.lock"):
        proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        time.sleep(8)
        assert proc.poll() is None, "the load did not wait for the lock"
        assert not (folder / "MUTAG" / "raw" / "SOURCE").exists()
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and int(out.split()[-1]) == get_card("mutag").stats["n_edges"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"nodes": "0 1 5\n\n0 0 2\n\n1 0 x\n"}, r"ZINC_Nodes\.txt, line 5: expected 3 numbers, got '1 0 x'"),
        # an empty file was "not a table of 2 numeric columns", after a numpy warning
        ({"labels": "\n"}, r"ZINC_Labels\.txt holds no rows"),
        # NaN / infinite targets passed into the PyG pickles
        ({"labels": "0 0.5\n1 nan\n2 2.0\n"}, r"ZINC_Labels\.txt, line 2: expected 2 numbers, got '1 nan'"),
        ({"labels": "0 0.5\n1 1.0\n2 -inf\n"}, r"ZINC_Labels\.txt, line 3: expected 2 numbers, got '2 -inf'"),
        ({"labels": "0 1_000\n1 1.0\n2 2.0\n"}, r"ZINC_Labels\.txt is not a table of 2 numeric columns: could not"),
        ({"nodes": GOOD["nodes"].replace("0 1 5", "0 1 5.5")}, r"ZINC_Nodes\.txt: node rows must be non-negative"),
        ({"nodes": GOOD["nodes"] + "3 0 1\n"}, r"ZINC_Nodes\.txt names graph 3, beyond the 3 labelled graphs"),
        ({"edges": GOOD["edges"].replace("0 0 1 2", "0 0 1 0")}, r"ZINC_Edges\.txt: bond types must lie in 1 \.\. 255"),
        ({"edges": GOOD["edges"].replace("0 0 1 2", "0 0 1 256")}, r"ZINC_Edges\.txt: bond types must lie in"),
    ],
)
def test_more_malformed_zinc_text_is_named(tmp_path, change, message):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's own "input contained no data" warning included
        with pytest.raises(ValueError, match=message):
            write_zinc_raw(_zinc_files(tmp_path, **{**GOOD, **change}), tmp_path / "raw")
