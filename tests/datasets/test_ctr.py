"""CTR data sets: every card loads from the shared copy and matches its statistics.

The cards' statistics are compared with the data inventory of the shared notes
(``papers/optfs_dnis.md`` section 4, which ``ctr/SOURCES.md`` points to; measured independently of
this code), the loaded tables with the cards, and single rows with the raw files read here.
"""
from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from graphrec.datasets import CTRTable, fetch_files, get_card, list_datasets, load
from graphrec.datasets.readers.ctr import read_ctr_csv, read_libfm_onehot

NAMES = ("frappe", "criteo-sample", "avazu-sample", "movielens-sample")
FRAPPE_FIELDS = ["user", "item", "daytime", "weekday", "isweekend", "homework", "cost", "weather", "country", "city"]


def _int(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.fixture(scope="module")
def inventory(data_root) -> dict:
    """Rows and positives per file, and Frappe's per-field cardinalities, from optfs_dnis.md section 4."""
    path = data_root.parent / "papers" / "optfs_dnis.md"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    section = path.read_text(encoding="utf-8").split("## 4. Data inventory", 1)[1].split("\n## ", 1)[0]
    files = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and (m := re.match(r"([\d,]+) rows(?: \(([\d,]+) pos)?", cells[4])):
            files[cells[1].split()[0]] = (_int(m.group(1)), _int(m.group(2)) if m.group(2) else None)
    text = " ".join(section.split())
    card_text = text.split("per-field cardinalities in the shared", 1)[1].split("(full-data", 1)[0]
    cards = {k: _int(v) for k, v in re.findall(r"(\w+) ([\d,]+)(?=,| \(|$)", card_text.split("rows:", 1)[1].strip())}
    return {"files": files, "cardinalities": cards}


@pytest.fixture(scope="module")
def loaded() -> dict[str, CTRTable]:
    return {}


def _load(cache: dict, name: str) -> CTRTable:
    if name not in cache:
        cache[name] = load(name)
    return cache[name]


def _raw_rows(data_root, name: str) -> list[dict[str, str]]:
    card = get_card(name)
    with open(data_root / card.path / card.files[0].name, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_every_ctr_card_is_covered():
    assert set(NAMES) == set(list_datasets(kind="ctr"))


def test_card_stats_are_the_inventory_stats(inventory):
    files = inventory["files"]
    frappe = get_card("frappe").stats
    (n_val, pos_val), (n_test, pos_test) = files["frappe.validation.libfm"], files["frappe.test.libfm"]
    assert (frappe["n_rows"], frappe["n_positive"]) == (n_val + n_test, pos_val + pos_test) == (86582, 28599)
    assert frappe["cardinalities"] == inventory["cardinalities"]
    assert list(inventory["cardinalities"]) == FRAPPE_FIELDS == get_card("frappe").options["fields"]
    for name, fname in (("criteo-sample", "criteo_sample.txt"), ("avazu-sample", "avazu_sample.txt")):
        assert (get_card(name).stats["n_rows"], get_card(name).stats["n_positive"]) == files[fname]
    assert get_card("movielens-sample").stats["n_rows"] == files["movielens_sample.txt"][0]


@pytest.mark.parametrize("name", NAMES)
def test_tables_load_and_match_their_card(name, loaded):
    table = _load(loaded, name)
    stats = get_card(name).stats
    assert isinstance(table, CTRTable) and table.name == name
    assert table.n_rows == stats["n_rows"] and int(table.label.sum()) == stats["n_positive"]
    assert (len(table.categorical), len(table.numeric)) == (stats["n_categorical"], stats["n_numeric"])
    assert {k: len(v) for k, v in table.splits.items()} == stats.get("split_sizes", {})
    if "cardinalities" in stats:
        assert table.frame.nunique().to_dict() == stats["cardinalities"]


def test_frappe_resplit_partitions_rows_and_follows_the_seed(loaded, data_root):
    table = _load(loaded, "frappe")
    parts = [table.splits[s] for s in ("train", "valid", "test")]
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(table.n_rows))
    card = get_card("frappe")
    again = read_libfm_onehot(fetch_files(card), card, **card.options)  # not the processed cache
    assert all(np.array_equal(again.splits[s], table.splits[s]) for s in table.splits)
    other = load("frappe", seed=1)
    assert {k: len(v) for k, v in other.splits.items()} == card.stats["split_sizes"]
    assert not np.array_equal(other.splits["test"], table.splits["test"])


def test_frappe_fields_are_the_positions_in_each_line(loaded, data_root):
    table = _load(loaded, "frappe")
    folder = data_root / "ctr" / "frappe"
    first = (folder / "frappe.validation.libfm").read_text().splitlines()[0].split()
    last = (folder / "frappe.test.libfm").read_text().splitlines()[-1].split()
    for row, tokens in ((0, first), (table.n_rows - 1, last)):
        assert table.label[row] == (1.0 if tokens[0] == "1" else 0.0)
        assert table.frame.iloc[row].tolist() == [int(t.split(":")[0]) for t in tokens[1:]]
    # one field per feature index: the per-field value sets are disjoint
    values = [set(table.frame[f]) for f in FRAPPE_FIELDS]
    assert sum(map(len, values)) == len(set().union(*values)) == 5328


def test_criteo_missing_cells(loaded, data_root):
    table = _load(loaded, "criteo-sample")
    raw = _raw_rows(data_root, "criteo-sample")
    for col in ("I1", "I12", "C19", "C22"):
        empty = np.array([r[col] == "" for r in raw])
        if col.startswith("I"):
            np.testing.assert_array_equal(table.frame[col].isna().to_numpy(), empty)
            full = ~empty
            values = [float(r[col]) for r, f in zip(raw, full) if f]
            np.testing.assert_allclose(table.frame[col].to_numpy()[full], values)
        else:
            np.testing.assert_array_equal((table.frame[col] == "<missing>").to_numpy(), empty)
    assert table.frame["C1"].tolist() == [r["C1"] for r in raw]


def test_movielens_label_is_rating_at_least_four(loaded, data_root):
    table = _load(loaded, "movielens-sample")
    raw = _raw_rows(data_root, "movielens-sample")
    np.testing.assert_array_equal(table.label, [float(int(r["rating"]) >= 4) for r in raw])
    assert "rating" not in table.frame and "title" not in table.frame
    assert table.numeric == ["timestamp"] and table.frame["genres"].tolist() == [r["genres"] for r in raw]


def test_avazu_drops_the_row_id(loaded, data_root):
    table = _load(loaded, "avazu-sample")
    raw = _raw_rows(data_root, "avazu-sample")
    assert "id" not in table.frame and table.numeric == []
    np.testing.assert_array_equal(table.label, [float(r["click"]) for r in raw])
    assert table.frame["C20"].tolist() == [r["C20"] for r in raw]


# ---------------------------------------------------------------------------------------------
# Bad files
# ---------------------------------------------------------------------------------------------


def _libfm(tmp_path, text: str, **options) -> CTRTable:
    path = tmp_path / "toy.libfm"
    path.write_bytes(text.encode())
    opts = {"files": ["toy.libfm"], "fields": ["a", "b"], "seed": 0, "fractions": (0.5, 0.25, 0.25), **options}
    return read_libfm_onehot({"toy.libfm": path}, None, **opts)


def test_libfm_reader_on_a_small_file(tmp_path):
    table = _libfm(tmp_path, "1 3:1 7:1\r\n-1 4:1 7:1\r\n-1 3:1 8:1\r\n+1 4:1 8:1\r\n")
    assert table.frame.to_dict("list") == {"a": [3, 4, 3, 4], "b": [7, 7, 8, 8]}
    np.testing.assert_array_equal(table.label, [1, 0, 0, 1])
    assert {k: len(v) for k, v in table.splits.items()} == {"train": 2, "valid": 1, "test": 1}


@pytest.mark.parametrize(
    "text, message",
    [
        ("1 3:1 7:1\n2 3:1 7:1\n", r"toy\.libfm, line 2: label '2' is not one of"),
        ("1 3:1 7:1\n1 3:1\n", r"toy\.libfm, line 2: expected 2 'index:value' features, got 1"),
        ("1 3:1 7:0.5\n", r"toy\.libfm, line 1: expected a one-hot feature 'index:1', got '7:0.5'"),
        ("1 3:1 x:1\n", r"line 1: expected a one-hot feature"),
        ("1 3:1 7:1\n1 7:1 3:1\n", r"feature index 3 occurs in position 1 and 2"),
        ("\n", r"toy\.libfm holds no rows"),
    ],
)
def test_malformed_libfm_names_file_and_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        _libfm(tmp_path, text)


def test_libfm_rejects_bad_fractions(tmp_path):
    with pytest.raises(ValueError, match="fractions must be three non-negative numbers"):
        _libfm(tmp_path, "1 3:1 7:1\n", fractions=(0.5, 0.5, 0.5))


def _csv(tmp_path, text: str, **options) -> CTRTable:
    path = tmp_path / "toy.csv"
    path.write_text(text)
    opts = {"label": "y", "categorical": ["c"], "numeric": ["x"], **options}
    return read_ctr_csv({"toy.csv": path}, None, **opts)


def test_csv_reader_on_a_small_file(tmp_path):
    table = _csv(tmp_path, "y,c,x,id\n1,a,0.5,9\n0,,,8\n", drop=["id"])
    assert table.frame["c"].tolist() == ["a", "<missing>"] and np.isnan(table.frame["x"][1])
    scored = _csv(tmp_path, "y,c,x\n5,a,1\n2,b,2\n", label_threshold=4)
    np.testing.assert_array_equal(scored.label, [1, 0])


@pytest.mark.parametrize(
    "text, options, message",
    [
        ("y,c,x,z\n1,a,1,2\n", {}, r"toy\.csv: the header .* unassigned \['z'\]"),
        ("y,c\n1,a\n", {}, r"absent \['x'\]"),
        ("y,c,x\n1,a,1\n0,b,oops\n", {}, r"toy\.csv, line 3: column 'x' holds 'oops', expected a number"),
        ("y,c,x\n1,a,1\n2,b,2\n", {}, r"toy\.csv, line 3: label 'y' is 2\.0, expected 0 or 1"),
        ("y,c,x\n,a,1\n", {}, r"toy\.csv, line 2: empty label 'y'"),
    ],
)
def test_malformed_csv_names_file_and_line(tmp_path, text, options, message):
    with pytest.raises(ValueError, match=message):
        _csv(tmp_path, text, **options)


# ---------------------------------------------------------------------------------------------
# CTRTable built directly
# ---------------------------------------------------------------------------------------------


def _frame():
    import pandas as pd

    return pd.DataFrame({"c": ["x", "y", "z", "x"], "n": [0.5, 1.0, 1.5, 2.0]})


def test_ctr_table_splits_and_summary():
    splits = {"train": [0, 2, 3], "test": np.array([1.0]), "valid": []}
    table = CTRTable(_frame(), [1, 0, 0, 1], ["c"], ["n"], splits=splits, name="toy")
    assert (table.n_rows, table.n_fields) == (4, 2)
    rows, y = table.split("train")
    assert rows["c"].tolist() == ["x", "z", "x"] and rows.index.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(y, [1, 0, 1])
    assert table.splits["test"].dtype == np.int64 and table.splits["valid"].size == 0
    assert splits["train"] == [0, 2, 3], "the caller's dict is left as it was"
    assert repr(table) == "CTRTable(name='toy', n_rows=4, categorical=1, numeric=1, positive_rate=0.500)"
    with pytest.raises(KeyError, match=r"split 'dev' not defined; available: \['test', 'train', 'valid'\]"):
        table.split("dev")


@pytest.mark.parametrize(
    "split, error, message",
    [
        # a boolean mask was cast to the row ids 1, 0, 1, 0 and float ids were truncated, silently
        (np.array([True, False, True, False]), TypeError, r"splits\['train'\] must hold integers, got dtype bool"),
        ([0.5, 2.5], TypeError, r"splits\['train'\] must hold integers, got dtype float64"),
        ([[0, 1]], ValueError, r"splits\['train'\] must be 1-dimensional, got shape \(1, 2\)"),
        ([0, 4], ValueError, r"splits\['train'\] holds row ids outside \[0, 4\)"),
    ],
)
def test_ctr_table_refuses_splits_that_are_not_row_ids(split, error, message):
    with pytest.raises(error, match=message):
        CTRTable(_frame(), [1, 0, 0, 1], ["c"], ["n"], splits={"train": split})


def test_ctr_table_checks_frame_fields_and_labels():
    import pandas as pd

    frame = _frame()
    with pytest.raises(TypeError, match="frame must be a pandas DataFrame, got ndarray"):
        CTRTable(frame.to_numpy(), [1, 0, 0, 1], ["c"], ["n"])
    with pytest.raises(ValueError, match=r"exactly once; missing \['n'\], unknown \['m'\], repeated \[\]"):
        CTRTable(frame, [1, 0, 0, 1], ["c"], ["m"])
    with pytest.raises(ValueError, match=r"missing \[\], unknown \[\], repeated \['c'\]"):
        CTRTable(frame, [1, 0, 0, 1], ["c", "c"], ["n"])
    # two columns of one name were accepted as one field (n_fields 2, one declared field)
    twice = pd.DataFrame([["x", "y"]], columns=["c", "c"])
    with pytest.raises(ValueError, match=r"frame has the column name\(s\) \['c'\] more than once"):
        CTRTable(twice, [1], ["c"])
    with pytest.raises(ValueError, match=r"label has shape \(3,\), expected \(4,\)"):
        CTRTable(frame, [1, 0, 0], ["c"], ["n"])
    with pytest.raises(ValueError, match="label must hold only 0 and 1"):
        CTRTable(frame, [1, 0, 2, 1], ["c"], ["n"])
    with pytest.raises(TypeError, match="numeric field 'c' has dtype"):
        CTRTable(frame, [1, 0, 0, 1], ["n"], ["c"])
