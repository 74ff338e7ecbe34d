"""Interaction data sets: every card loads from the shared copy and matches its statistics.

The cards' statistics are compared with the prose of the shared ``recsys/SOURCES.md`` (measured
independently of this code), the loaded objects with the cards, and single interactions with the
raw lines read here.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from graphrec.datasets import Interactions, get_card, list_datasets, load
from graphrec.datasets import _registry
from graphrec.datasets.readers.recsys import read_lightgcn, read_recbole_inter, read_user_sequences

FOLDERS = {"gowalla": "gowalla", "beauty": "beauty", "ml-100k": "ml-100k"}


def _number(pattern: str, text: str) -> int | None:
    m = re.search(pattern, text)
    return int(m.group(1).replace(",", "")) if m else None


@pytest.fixture(scope="module")
def sources(data_root) -> dict[str, dict[str, int | None]]:
    """The ``- Stats:`` line of each folder's section of SOURCES.md, as numbers."""
    path = data_root / "recsys" / "SOURCES.md"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    text = path.read_text(encoding="utf-8")
    out = {}
    for folder in FOLDERS.values():
        section = text.split(f"\n## {folder}/", 1)[1].split("\n## ", 1)[0]
        line = next(ln for ln in section.splitlines() if "Stats:" in ln)
        out[folder] = {
            "n_users": _number(r"([\d,]+) users", line),
            "n_items": _number(r"([\d,]+) items", line),
            "n_interactions": _number(r"([\d,]+) (?:interactions|ratings)", line),
            "train": _number(r"train ([\d,]+)", line),
            "test": _number(r"test ([\d,]+)", line),
        }
    return out


@pytest.fixture(scope="module")
def loaded(data_root) -> dict[str, Interactions]:
    return {}


def _load(cache: dict, name: str) -> Interactions:
    """One load per data set and module (later tests reuse it)."""
    if name not in cache:
        cache[name] = load(name)
    return cache[name]


def test_every_interaction_card_is_covered():
    assert set(FOLDERS) <= set(list_datasets(kind="interactions"))


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_card_stats_are_the_sources_stats(name, sources):
    stats, expected = get_card(name).stats, sources[FOLDERS[name]]
    for key in ("n_users", "n_items", "n_interactions"):
        assert expected[key] is not None and stats[key] == expected[key]
    if expected["train"] is not None:
        assert stats["split_sizes"] == {"train": expected["train"], "test": expected["test"]}


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_interactions_load_and_match_their_card(name, loaded):
    data = _load(loaded, name)
    stats = get_card(name).stats
    assert isinstance(data, Interactions) and data.name == name
    for key in ("n_users", "n_items", "n_interactions"):
        assert getattr(data, key) == stats[key], f"{name}: {key}={getattr(data, key)}, card says {stats[key]}"
    assert {k: v.nnz for k, v in data.splits.items()} == stats.get("split_sizes", {})
    np.testing.assert_array_equal(data.user_items.data, 1.0)
    assert len(data.user_ids) == data.n_users and len(data.item_ids) == data.n_items


def test_gowalla_splits_are_disjoint_and_keep_original_ids(loaded, data_root):
    data = _load(loaded, "gowalla")
    train, test = data.splits["train"], data.splits["test"]
    assert train.multiply(test).nnz == 0
    assert (data.user_items != train + test).nnz == 0
    folder = data_root / "recsys" / "gowalla"
    first_user = (folder / "user_list.txt").read_text().splitlines()[1].split()  # "org_id remap_id"
    first_item = (folder / "item_list.txt").read_text().splitlines()[1].split()
    assert data.user_ids[int(first_user[1])] == int(first_user[0])
    assert data.item_ids[int(first_item[1])] == int(first_item[0])
    with open(folder / "test.txt") as fh:
        uid, *items = map(int, fh.readline().split())
    assert set(test[uid].indices) == set(items)


def test_beauty_order_is_the_position_in_each_sequence(loaded, data_root):
    data = _load(loaded, "beauty")
    lengths = np.diff(data.user_items.indptr)
    assert lengths.min() >= 5  # SOURCES.md: at least 5 per user
    positions = np.split(data.order.data, data.order.indptr[1:-1])
    assert all(np.array_equal(np.sort(p), np.arange(1, len(p) + 1)) for p in positions[:500])
    with open(data_root / "recsys" / "beauty" / "Beauty.txt") as fh:
        uid, *items = map(int, fh.readline().split())
    row = uid - 1
    assert data.user_ids[row] == uid
    for position, item in enumerate(items, 1):
        assert data.order[row, item - 1] == position


def test_ml100k_keeps_every_rating_with_its_timestamp(loaded, data_root):
    data = _load(loaded, "ml-100k")
    lines = (data_root / "recsys" / "ml-100k" / "ml-100k.inter").read_text().splitlines()
    assert data.n_interactions == len(lines) - 1
    for line in (lines[1], lines[-1]):
        user, item, rating, timestamp = line.split("\t")
        u = int(np.flatnonzero(data.user_ids == int(user))[0])
        i = int(np.flatnonzero(data.item_ids == int(item))[0])
        assert data.user_items[u, i] == 1 and data.order[u, i] == float(timestamp)
    assert np.all(np.diff(data.user_ids) > 0) and np.all(np.diff(data.item_ids) > 0)


def test_second_load_comes_from_the_processed_cache(tmp_path, monkeypatch):
    monkeypatch.setattr("graphrec._config.DEFAULT_DATA_HOME", tmp_path / "cache")
    calls = []
    real = _registry._reader("user-sequences")
    monkeypatch.setitem(_registry._READERS, "user-sequences", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = load("beauty")
    assert calls == [1]
    monkeypatch.setitem(_registry._READERS, "user-sequences", lambda *a, **k: pytest.fail("raw files were read again"))
    again = load("beauty")
    assert (again.user_items != first.user_items).nnz == 0 and (again.order != first.order).nnz == 0


# ---------------------------------------------------------------------------------------------
# Bad files
# ---------------------------------------------------------------------------------------------


def _lightgcn(tmp_path, train: str, test: str, users: int = 2, items: int = 4) -> dict:
    files = {
        "train.txt": train,
        "test.txt": test,
        "user_list.txt": "org_id remap_id\n" + "".join(f"u{i} {i}\n" for i in range(users)),
        "item_list.txt": "org_id remap_id\n" + "".join(f"{100 + i} {i}\n" for i in range(items)),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return {name: tmp_path / name for name in files}


def test_lightgcn_reader(tmp_path):
    data = read_lightgcn(_lightgcn(tmp_path, "0 0 1\n1 2\n", "0 3\n1 0\n"), None)
    assert data.n_interactions == 5 and data.order is None
    assert list(data.user_ids) == ["u0", "u1"] and list(data.item_ids) == [100, 101, 102, 103]
    with pytest.raises(ValueError, match=r"train\.txt, line 2: expected whitespace-separated integer ids"):
        read_lightgcn(_lightgcn(tmp_path, "0 0 1\n1 x\n", "0 3\n"), None)
    with pytest.raises(ValueError, match="share 1 .* pairs"):
        read_lightgcn(_lightgcn(tmp_path, "0 0 1\n", "0 1\n"), None)
    with pytest.raises(ValueError, match=r"test\.txt: user 1 has item id 4, unknown"):
        read_lightgcn(_lightgcn(tmp_path, "0 0 1\n", "1 4\n"), None)
    with pytest.raises(ValueError, match=r"train\.txt, line 2: user 0 is listed again \(first on line 1\)"):
        read_lightgcn(_lightgcn(tmp_path, "0 0\n0 1\n", "1 2\n"), None)
    paths = _lightgcn(tmp_path, "0 0\n", "1 2\n")
    paths["user_list.txt"].write_text("org remap\nu0 0\n")
    with pytest.raises(ValueError, match=r"user_list\.txt, line 1: expected the header"):
        read_lightgcn(paths, None)


def test_user_sequence_reader(tmp_path):
    path = tmp_path / "seq.txt"
    path.write_text("1 3 1 2\n2 2\n")
    data = read_user_sequences({"seq.txt": path}, None, id_base=1)
    assert data.order[0].toarray().ravel().tolist() == [2, 3, 1] and data.n_items == 3
    path.write_text("1 3 1 2\n2 0\n")
    with pytest.raises(ValueError, match=r"seq\.txt, line 2: id 0 is below the first id 1"):
        read_user_sequences({"seq.txt": path}, None, id_base=1)
    path.write_text("1 3 1 3\n")
    with pytest.raises(ValueError, match=r"seq\.txt, line 1: user 1 lists an item more than once"):
        read_user_sequences({"seq.txt": path}, None, id_base=1)


def test_recbole_inter_reader(tmp_path):
    path = tmp_path / "toy.inter"
    header = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    path.write_text(header + "a\t10\t5\t100\nb\t2\t1\t50\na\t2\t3\t70\n")
    data = read_recbole_inter({"toy.inter": path}, None)
    assert list(data.user_ids) == ["a", "b"] and list(data.item_ids) == [2, 10]
    np.testing.assert_array_equal(data.order.toarray(), [[70, 100], [50, 0]])
    path.write_text(header + "a\t10\t5\t100\nb\t2\n")
    with pytest.raises(ValueError, match=r"toy\.inter, line 3: expected tab-separated fields"):
        read_recbole_inter({"toy.inter": path}, None)
    path.write_text(header + "a\t10\t5\t100\nb\t2\t1\t50\na\t10\t3\t70\n")
    with pytest.raises(ValueError, match=r"user 'a' and item '10' occur on lines 2, 4"):
        read_recbole_inter({"toy.inter": path}, None)
    path.write_text(header + "a\t10\t5\tnoon\n")
    with pytest.raises(ValueError, match=r"toy\.inter, line 2: timestamp must be a number"):
        read_recbole_inter({"toy.inter": path}, None)
    path.write_text("user_id:token\titem_id:token\n")
    with pytest.raises(ValueError, match=r"toy\.inter, line 1: no column 'timestamp'"):
        read_recbole_inter({"toy.inter": path}, None)


# ---------------------------------------------------------------------------------------------
# Interactions built directly
# ---------------------------------------------------------------------------------------------


def _ui(dense) -> "sp.csr_matrix":
    import scipy.sparse as sp

    return sp.csr_matrix(np.asarray(dense, dtype=np.float64))


def test_interactions_summary_and_checked_splits():
    ui = _ui([[1, 0, 1], [0, 1, 0]])
    data = Interactions(ui, splits={"train": _ui([[1, 0, 0], [0, 1, 0]])}, user_ids=["a", "b"], name="toy")
    assert data.density == 0.5 and data.user_items.dtype == np.float32
    assert repr(data) == "Interactions(name='toy', n_users=2, n_items=3, n_interactions=3, splits={'train': 2})"
    with pytest.raises(ValueError, match=r"splits\['test'\] has shape \(3, 3\), expected \(2, 3\)"):
        Interactions(ui, splits={"test": _ui(np.eye(3))})
    with pytest.raises(ValueError, match=r"item_ids has length 2, expected 3"):
        Interactions(ui, item_ids=[1, 2])


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda sp: np.eye(2), TypeError, "user_items must be a scipy sparse users x items matrix, got ndarray"),
        (lambda sp: sp.csr_matrix((0, 3)), ValueError, r"user_items is empty \(shape \(0, 3\)\)"),
        (lambda sp: sp.csr_matrix(np.array([[np.nan, 1.0]])), ValueError, "user_items contains NaN or infinite"),
        (lambda sp: sp.csr_matrix(np.array([[-1.0, 1.0]])), ValueError, r"user_items has negative values \(min -1\)"),
        (
            lambda sp: sp.csr_matrix((np.array([0.0, 1.0]), np.array([0, 1]), np.array([0, 2])), shape=(1, 2)),
            ValueError, r"user_items stores 1 explicit zero\(s\), which are not interactions",
        ),
        # the imaginary part used to be dropped with only a numpy warning
        (lambda sp: sp.csr_matrix(np.array([[1j, 1.0]])), TypeError, "user_items must hold real numbers, got complex"),
        # a CSR matrix that stores a column twice in one row
        (
            lambda sp: sp.csr_matrix((np.ones(3), np.array([0, 0, 1]), np.array([0, 2, 3])), shape=(2, 2)),
            ValueError, r"user_items has duplicate \(user, item\) entries",
        ),
        # the same pair twice in COO format was summed into one interaction of weight 2, silently
        (
            lambda sp: sp.coo_matrix((np.ones(3), (np.array([0, 0, 1]), np.array([1, 1, 0]))), shape=(2, 2)),
            ValueError, r"user_items has duplicate \(user, item\) entries",
        ),
    ],
)
def test_interactions_refuse_bad_user_items(make, error, message):
    import scipy.sparse as sp

    with pytest.raises(error, match=message):
        Interactions(make(sp))


def test_interactions_order_must_match_and_be_finite():
    ui = _ui([[1, 0, 1], [0, 1, 0]])
    assert Interactions(ui, order=_ui([[5, 0, 7], [0, 1, 0]])).order[0, 2] == 7
    with pytest.raises(ValueError, match="order must have exactly the sparsity pattern of user_items"):
        Interactions(ui, order=_ui([[5, 1, 7], [0, 1, 0]]))
    # NaN / infinite timestamps were accepted
    with pytest.raises(ValueError, match="order contains NaN or infinite values"):
        Interactions(ui, order=_ui([[5, 0, np.inf], [0, 1, 0]]))


# ---------------------------------------------------------------------------------------------
# Readers on small files
# ---------------------------------------------------------------------------------------------


def test_lightgcn_reader_skips_blank_lines_and_names_bad_files(tmp_path):
    data = read_lightgcn(_lightgcn(tmp_path, "\n0 0 1\n\n1 2\n", "0 3\n"), None)
    assert data.splits["train"].nnz == 3 and data.splits["test"].nnz == 1
    paths = _lightgcn(tmp_path, "0 0\n", "1 2\n")
    with pytest.raises(ValueError, match=r"the 'lightgcn' reader needs the file test\.txt; got \['item_list"):
        read_lightgcn({k: v for k, v in paths.items() if k != "test.txt"}, None)
    with pytest.raises(ValueError, match=r"train\.txt, line 1: negative id -1"):
        read_lightgcn(_lightgcn(tmp_path, "0 -1\n", "1 2\n"), None)
    # an id beyond int64 raised a bare OverflowError naming neither file nor line
    with pytest.raises(ValueError, match=r"train\.txt, line 1: expected whitespace-separated integer ids"):
        read_lightgcn(_lightgcn(tmp_path, "0 99999999999999999999\n", "1 2\n"), None)
    with pytest.raises(ValueError, match=r"train\.txt: user id 2 is unknown \(the user list has 2 users\)"):
        read_lightgcn(_lightgcn(tmp_path, "2 0\n", "1 2\n"), None)


@pytest.mark.parametrize(
    "users, message",
    [
        ("org_id remap_id\nu0 0\nu1\n", r"user_list\.txt, line 3: expected 'org_id remap_id', got 'u1'"),
        ("org_id remap_id\nu0 0\nu1 2\n", r"user_list\.txt: remap ids must be 0 \.\. 1, each exactly once"),
        # '²' passed str.isdigit and then failed in int() with a message naming no file
        ("org_id remap_id\nu0 0\nu1 ²\n", r"user_list\.txt, line 3: expected 'org_id remap_id', got 'u1 ²'"),
    ],
)
def test_lightgcn_id_lists_are_checked(tmp_path, users, message):
    paths = _lightgcn(tmp_path, "0 0\n", "1 2\n")
    paths["user_list.txt"].write_text(users, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_lightgcn(paths, None)


def test_lightgcn_id_lists_skip_blank_lines_and_keep_zero_padded_ids(tmp_path):
    paths = _lightgcn(tmp_path, "0 0\n", "1 1\n", items=2)
    paths["user_list.txt"].write_text("org_id remap_id\nu0 0\n\nu1 1\n")
    paths["item_list.txt"].write_text("org_id remap_id\n007 0\n7 1\n")
    data = read_lightgcn(paths, None)
    assert list(data.user_ids) == ["u0", "u1"]
    # both items used to become the int id 7
    assert list(data.item_ids) == ["007", "7"]


def test_recbole_tokens_are_ints_only_when_written_as_ints(tmp_path):
    path = tmp_path / "toy.inter"
    header = "user_id:token\titem_id:token\n"
    path.write_text(header + "10\t-3\n9\t5\n")
    data = read_recbole_inter({"toy.inter": path}, None, time_field=None)
    assert data.user_ids.tolist() == [9, 10] and data.item_ids.tolist() == [-3, 5] and data.order is None
    # '7' and '07' are two users; they were merged into user 7 (one user with two items)
    path.write_text(header + "7\t1\n07\t2\n")
    data = read_recbole_inter({"toy.inter": path}, None, time_field=None)
    assert data.user_ids.tolist() == ["07", "7"] and data.n_users == 2
    np.testing.assert_array_equal(data.user_items.toarray(), [[0, 1], [1, 0]])
    # '--5' failed inside numpy's int conversion
    path.write_text(header + "--5\t1\n-0\t1\n")
    assert read_recbole_inter({"toy.inter": path}, None, time_field=None).user_ids.tolist() == ["--5", "-0"]


@pytest.mark.parametrize(
    "body, message",
    [
        ("", r"toy\.inter holds no interactions"),
        ("\n\n", r"toy\.inter holds no interactions"),
        # NaN and infinite timestamps were stored in order
        ("a\t1\t5\tnan\n", r"toy\.inter, line 2: timestamp must be a finite number, got 'nan'"),
        ("a\t1\t5\t1\nb\t1\t5\t-inf\n", r"toy\.inter, line 3: timestamp must be a finite number, got '-inf'"),
    ],
)
def test_recbole_inter_reader_refuses(tmp_path, body, message):
    path = tmp_path / "toy.inter"
    path.write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + body)
    with pytest.raises(ValueError, match=message):
        read_recbole_inter({"toy.inter": path}, None)


def test_recbole_inter_reader_skips_blank_lines_and_checks_the_header(tmp_path):
    path = tmp_path / "toy.inter"
    path.write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\na\t1\t5\t10\n\nb\t2\t4\t20\n")
    data = read_recbole_inter({"toy.inter": path}, None)
    assert data.n_interactions == 2 and data.order.toarray().tolist() == [[10, 0], [0, 20]]
    path.write_text("user_id:token\titem_id\n")
    with pytest.raises(ValueError, match=r"toy\.inter, line 1: header column 'item_id' is not 'name:type'"):
        read_recbole_inter({"toy.inter": path}, None)
    with pytest.raises(ValueError, match=r"the 'recbole-inter' reader expects exactly one file, got \['a', 'b'\]"):
        read_recbole_inter({"a": path, "b": path}, None)


def test_user_sequence_reader_refuses(tmp_path):
    path = tmp_path / "seq.txt"
    path.write_text("1\n2\n")
    with pytest.raises(ValueError, match=r"seq\.txt holds no interactions"):
        read_user_sequences({"seq.txt": path}, None, id_base=1)
    with pytest.raises(ValueError, match="id_base must be 0 or 1, got 2"):
        read_user_sequences({"seq.txt": path}, None, id_base=2)
