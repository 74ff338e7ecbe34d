"""Knowledge-graph data sets: every card loads from the shared copy and matches its statistics.

The cards' statistics are compared with the tables of the shared ``kg/SOURCES.md`` (measured
independently of this code), the loaded triples with the cards, and single triples with the raw
lines read here.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from graphrec.datasets import Triples, get_card, list_datasets, load
from graphrec.datasets.readers.kg import read_kg_tsv

# Card name -> dataset label in kg/SOURCES.md (and shared folder name).
FOLDERS = {"umls": "UMLS", "kinship": "Kinship", "nations": "Nations", "wn18rr": "WN18RR", "fb15k-237": "FB15k-237"}


def _int(text: str) -> int:
    return int(text.replace(",", "").strip())


@pytest.fixture(scope="module")
def sources(data_root) -> dict[str, dict[str, int]]:
    """Per SOURCES.md label: #ent, #rel, split sizes and the counts of triples with unseen entities."""
    path = data_root / "kg" / "SOURCES.md"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    out: dict[str, dict[str, int]] = {label: {} for label in FOLDERS.values()}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        labels = [lab.strip() for lab in cells[0].split(",")]
        if len(cells) == 7 and cells[0] in out:  # statistics table
            sizes = [_int(s) for s in cells[5].split("/")]
            out[cells[0]].update(
                n_entities=_int(cells[3]), n_relations=_int(cells[4]),
                n_train=sizes[0], n_valid=sizes[1], n_test=sizes[2],
            )
        elif len(cells) == 3 and all(lab in out for lab in labels) and re.fullmatch(r"[\d,]+", cells[1]):
            for lab in labels:  # unseen-entity table
                out[lab].update(n_valid_unseen=_int(cells[1]), n_test_unseen=_int(cells[2]))
    return out


@pytest.fixture(scope="module")
def loaded() -> dict[str, Triples]:
    return {}


def _load(cache: dict, name: str) -> Triples:
    if name not in cache:
        cache[name] = load(name)
    return cache[name]


def _unseen(kg: Triples, split: str) -> int:
    """Triples of ``split`` with a head or tail that never occurs in train."""
    seen = np.zeros(kg.n_entities, dtype=bool)
    seen[kg.train[:, [0, 2]].ravel()] = True
    arr = getattr(kg, split)
    return int((~(seen[arr[:, 0]] & seen[arr[:, 2]])).sum())


def test_every_kg_card_is_covered():
    assert set(FOLDERS) == set(list_datasets(kind="triples"))


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_card_stats_are_the_sources_stats(name, sources):
    expected = sources[FOLDERS[name]]
    assert len(expected) == 7, f"SOURCES.md lacks statistics for {FOLDERS[name]}: {expected}"
    assert get_card(name).stats == expected


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_triples_load_and_match_their_card(name, loaded):
    kg = _load(loaded, name)
    stats = get_card(name).stats
    assert isinstance(kg, Triples) and kg.name == name
    assert (kg.n_entities, kg.n_relations) == (stats["n_entities"], stats["n_relations"])
    assert (len(kg.train), len(kg.valid), len(kg.test)) == (stats["n_train"], stats["n_valid"], stats["n_test"])
    assert (_unseen(kg, "valid"), _unseen(kg, "test")) == (stats["n_valid_unseen"], stats["n_test_unseen"])
    # sorted vocabularies, every entity and relation used somewhere
    assert kg.entities == sorted(kg.entities) and kg.relations == sorted(kg.relations)
    used = np.concatenate([kg.train, kg.valid, kg.test])
    assert np.unique(used[:, [0, 2]]).size == kg.n_entities and np.unique(used[:, 1]).size == kg.n_relations


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_first_and_last_lines_round_trip(name, loaded, data_root):
    kg = _load(loaded, name)
    for split in ("train", "valid", "test"):
        raw = (data_root / "kg" / FOLDERS[name] / f"{split}.txt").read_bytes().decode("utf-8")
        lines = [ln for ln in raw.replace("\r\n", "\n").split("\n") if ln]
        arr = getattr(kg, split)
        for line, ids in ((lines[0], arr[0]), (lines[-1], arr[-1])):
            h, r, t = line.split("\t")
            assert (kg.entities[ids[0]], kg.relations[ids[1]], kg.entities[ids[2]]) == (h, r, t)


def test_fb15k237_tails_carry_no_carriage_return(loaded, data_root):
    assert (data_root / "kg" / "FB15k-237" / "test.txt").read_bytes().count(b"\r\n") == 20466
    kg = _load(loaded, "fb15k-237")
    assert not any(e.endswith("\r") for e in kg.entities)


# ---------------------------------------------------------------------------------------------
# Bad files
# ---------------------------------------------------------------------------------------------


def _files(tmp_path, train: str, valid: str = "a\tr\tb\n", test: str = "b\tr\ta\n") -> dict:
    paths = {}
    for name, text in (("train.txt", train), ("valid.txt", valid), ("test.txt", test)):
        (tmp_path / name).write_bytes(text.encode())
        paths[name] = tmp_path / name
    return paths


def test_reader_on_small_files(tmp_path):
    kg = read_kg_tsv(_files(tmp_path, "b\tr2\tc\r\n\r\na\tr1\tb\r\n", test="c\tr1\td\n"), None)
    assert kg.entities == ["a", "b", "c", "d"] and kg.relations == ["r", "r1", "r2"]
    np.testing.assert_array_equal(kg.train, [[1, 2, 2], [0, 1, 1]])
    np.testing.assert_array_equal(kg.test, [[2, 1, 3]])
    assert kg.name == tmp_path.name


@pytest.mark.parametrize(
    "train, message",
    [
        ("a\tr\tb\na\tr\n", r"train\.txt, line 2: expected 'head<TAB>relation<TAB>tail'"),
        ("a\tr\tb\tc\n", r"train\.txt, line 1: expected"),
        ("a\t\tb\n", r"train\.txt, line 1: expected .* three non-empty fields"),
        ("a r b\n", r"train\.txt, line 1: expected"),
        ("\n", r"train\.txt holds no triples"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, train, message):
    with pytest.raises(ValueError, match=message):
        read_kg_tsv(_files(tmp_path, train), None)


def test_missing_split_file_is_named(tmp_path):
    paths = _files(tmp_path, "a\tr\tb\n")
    del paths["valid.txt"]
    with pytest.raises(ValueError, match="needs the valid file valid.txt"):
        read_kg_tsv(paths, None)


def _toy(**overrides):
    from graphrec.datasets import Triples

    kw = dict(entities=["a", "b", "c"], relations=["r", "s"], train=np.array([[0, 0, 1], [1, 1, 2]]))
    kw.update(overrides)
    return Triples(**kw)


@pytest.mark.parametrize("overrides, error, match", [
    (dict(entities=["a", "a", "c"]), ValueError, "entities contains duplicate"),
    (dict(relations=["r", "r"]), ValueError, "relations contains duplicate"),
    (dict(train=np.array([0, 0, 1])), ValueError, r"train must have shape \(n, 3\)"),
    (dict(valid=np.zeros((2, 2), np.int64)), ValueError, r"valid must have shape \(n, 3\)"),
    (dict(train=np.array([[0.0, 0.0, 1.0]])), TypeError, "train must hold integer ids"),
    (dict(test=np.array([[0, 0, 3]])), ValueError, r"test holds entity ids outside \[0, 3\)"),
    (dict(train=np.array([[-1, 0, 1]])), ValueError, "entity ids outside"),
    (dict(valid=np.array([[0, 2, 1]])), ValueError, r"valid holds relation ids outside \[0, 2\)"),
    (dict(train=np.zeros((0, 3), np.int64)), ValueError, "train is empty"),
])
def test_triples_reject_bad_input_naming_the_split(overrides, error, match):
    with pytest.raises(error, match=match):
        _toy(**overrides)


def test_triples_encode_maps_names_and_names_the_unknown_one():
    kg = _toy(valid=[])
    assert kg.valid.shape == (0, 3) and kg.valid.dtype == np.int64
    np.testing.assert_array_equal(kg.encode([("a", "s", "c"), ("c", "r", "b")]), [[0, 1, 2], [2, 0, 1]])
    with pytest.raises(KeyError, match="unknown relation 'x' in triple 1"):
        kg.encode([("a", "r", "b"), ("a", "x", "b")])
    assert repr(kg) == "Triples(name='kg', n_entities=3, n_relations=2, train=2, valid=0, test=0)"
