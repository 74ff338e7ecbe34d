"""Continuous-indexed tensors: every card loads from the shared copy and matches its statistics.

The cards' statistics are compared with the shared ``tensor/SOURCES.md`` and the FunBaT section of
``papers/lowfer_funbat.md`` (measured independently of this code), the loaded tensors with the
cards, and the folds with the raw files read here with numpy's own loader.
"""
from __future__ import annotations

import datetime
import re

import numpy as np
import pytest

from graphrec.datasets import ContinuousTensor, get_card, list_datasets, load
from graphrec.datasets.readers.tensor import load_pickled_npy, read_funbat_conti, read_funbat_disct

BEIJING = ("beijing-pm25", "beijing-pm10", "beijing-so2")
NAMES = (
    *BEIJING,
    *(f"{b}-agg50" for b in BEIJING),
    "us-temp",
    "funbat-synthetic-r1",
    "funbat-synthetic-20x20",
    "funbat-u1u2y-20x20",
)


def _ints(text: str) -> list[int]:
    return [int(t.replace(",", "")) for t in re.findall(r"\d[\d,]*", text)]


@pytest.fixture(scope="module")
def expected(data_root) -> dict[str, dict]:
    """Per card, the statistics stated in tensor/SOURCES.md and the lowfer_funbat notes."""
    path = data_root / "tensor" / "SOURCES.md"
    notes = data_root.parent / "papers" / "lowfer_funbat.md"
    if not path.is_file() or not notes.is_file():
        pytest.skip(f"{path} or {notes} is missing")
    text = path.read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"\d+×\d+×\d+", cells[0]):  # entry counts per Beijing file
            rows[cells[0]] = {"agg": _ints(cells[1]), "no_agg": _ints(cells[2])}
    us = next(ln for ln in text.splitlines() if ln.startswith("| `US_temp`"))
    n, train, test, *bins = _ints(us.split("N = ", 1)[1].split("bins occur")[0])
    duplicates = _ints(us.split("bins occur;", 1)[1])[0]
    synthetic = next(ln for ln in text.splitlines() if ln.startswith("| `synthetic`"))
    r1 = _ints(synthetic.split("simulation_r1.npy` (", 1)[1].split(")", 1)[0])  # 90, 90, 675, 675
    small = _ints(synthetic.split("simulation_100_20x20.npy` (", 1)[1].split(")", 1)[0])
    u1u2 = _ints(next(ln for ln in text.splitlines() if ln.startswith("| `U1_U2_Y`")).split("(", 1)[1].split(";")[0])
    target = re.search(r"temperature in °F \(mean ([\d.]+), sd ([\d.]+)\)", notes.read_text(encoding="utf-8"))

    out = {}
    for b in BEIJING:
        full, coarse = rows["428×501×1461"], rows["50×50×150"]
        out[b] = {
            "n_obs": sum(full["no_agg"]), "grid": [428, 501, 1461], "n_folds": 5,
            "fold_sizes": {"train": full["no_agg"][0], "test": full["no_agg"][1]},
            "n_cells": sum(full["agg"]),  # the aggregated file keeps one entry per occupied cell
            "value_mean": 0.0, "value_std": 1.0,  # z-scored over the whole table
        }
        out[f"{b}-agg50"] = {
            "n_obs": sum(coarse["agg"]), "grid": [50, 50, 150], "n_folds": 5,
            "fold_sizes": {"train": coarse["agg"][0], "test": coarse["agg"][1]}, "n_cells": sum(coarse["agg"]),
        }
    out["us-temp"] = {
        "n_obs": n, "grid": bins[3:], "bins_used": bins[:3], "n_folds": 5,
        "fold_sizes": {"train": train, "test": test}, "n_cells": n - duplicates,
        "value_mean": float(target.group(1)), "value_std": float(target.group(2)),
    }
    out["funbat-synthetic-r1"] = {"n_obs": r1[2] + r1[3], "grid": r1[:2], "n_folds": 1,
                                  "fold_sizes": {"train": r1[2], "test": r1[3]}}
    for name, (tr, te) in (("funbat-synthetic-20x20", small), ("funbat-u1u2y-20x20", u1u2)):
        out[name] = {"n_obs": tr + te, "grid": [20, 20], "n_folds": 1, "fold_sizes": {"train": tr, "test": te}}
    for stats in out.values():
        stats["n_modes"] = len(stats["grid"])
    return out


@pytest.fixture(scope="module")
def loaded() -> dict[str, ContinuousTensor]:
    return {}


def _load(cache: dict, name: str) -> ContinuousTensor:
    if name not in cache:
        cache[name] = load(name)
    return cache[name]


def _raw(data_root, name: str) -> dict:
    card = get_card(name)
    return np.load(data_root / card.path / card.files[0].name, allow_pickle=True).item()


def test_every_tensor_card_is_covered():
    assert set(NAMES) == set(list_datasets(kind="tensor"))


@pytest.mark.parametrize("name", NAMES)
def test_card_stats_are_the_sources_stats(name, expected):
    assert get_card(name).stats == expected[name]


@pytest.mark.parametrize("name", NAMES)
def test_tensors_load_and_match_their_card(name, loaded):
    t = _load(loaded, name)
    stats = get_card(name).stats
    assert isinstance(t, ContinuousTensor) and t.name == name
    assert (t.n_obs, t.n_modes, len(t.folds)) == (stats["n_obs"], stats["n_modes"], stats["n_folds"])
    assert t.meta["grid"].tolist() == stats["grid"] and len(t.mode_names) == t.n_modes
    bins = t.meta["bins"]
    if "n_cells" in stats:
        assert len(np.unique(bins, axis=0)) == stats["n_cells"]
    if "bins_used" in stats:
        assert [np.unique(bins[:, k]).size for k in range(t.n_modes)] == stats["bins_used"]
    if "value_mean" in stats:
        assert abs(t.values.mean() - stats["value_mean"]) < 0.05 and abs(t.values.std() - stats["value_std"]) < 0.05
    assert np.all((t.coords >= 0) & (t.coords <= 1))
    for train, test in t.folds:
        assert {"train": len(train), "test": len(test)} == stats["fold_sizes"]
        assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(t.n_obs))


@pytest.mark.parametrize("name", ("beijing-pm25", "us-temp", "beijing-so2-agg50"))
def test_binned_folds_are_the_files_folds(name, loaded, data_root):
    """Each fold's train and test rows are, as multisets, the file's tr/te rows; coords are bin centres."""
    t = _load(loaded, name)
    raw = _raw(data_root, name)
    grid = np.asarray(raw["ndims"], dtype=float)
    np.testing.assert_allclose(t.coords, (t.meta["bins"] + 0.5) / grid)

    def rows(ind, y):
        r = np.column_stack([np.asarray(ind, dtype=float), y])
        return r[np.lexsort(r.T[::-1])]

    for k in (0, 3):
        fold, (train, test) = raw["data"][k], t.folds[k]
        np.testing.assert_array_equal(rows(t.meta["bins"][train], t.values[train]), rows(fold["tr_ind"], fold["tr_y"]))
        np.testing.assert_array_equal(rows(t.meta["bins"][test], t.values[test]), rows(fold["te_ind"], fold["te_y"]))


@pytest.mark.parametrize("name", ("funbat-synthetic-r1", "funbat-u1u2y-20x20"))
def test_continuous_sets_keep_the_stored_coordinates(name, loaded, data_root):
    t = _load(loaded, name)
    fold = _raw(data_root, name)["data"][0]
    np.testing.assert_array_equal(t.coords, np.vstack([fold["tr_ind_CONTI"], fold["te_ind_CONTI"]]))
    np.testing.assert_array_equal(t.values, np.concatenate([fold["tr_y"], fold["te_y"]]))
    for k in range(t.n_modes):
        np.testing.assert_array_equal(t.meta["grid_coords"][k][t.meta["bins"][:, k]], t.coords[:, k])
    assert ("true_factors" in t.meta) == (name == "funbat-synthetic-r1")
    if "true_factors" in t.meta:
        np.testing.assert_array_equal(t.meta["true_factors"][0], fold["U1_traj_true"])


def test_restricted_loader_matches_numpy(data_root):
    card = get_card("us-temp")
    mine = load_pickled_npy(data_root / card.path / card.files[0].name)
    ref = _raw(data_root, "us-temp")
    assert list(mine) == list(ref)
    np.testing.assert_array_equal(mine["data"][2]["te_ind"], ref["data"][2]["te_ind"])


# ---------------------------------------------------------------------------------------------
# Bad files
# ---------------------------------------------------------------------------------------------


def _save(tmp_path, obj, name: str = "toy.npy") -> dict:
    path = tmp_path / name
    wrapped = np.empty((), dtype=object)  # a 0-d object array, as FunBaT's np.save of a dict
    wrapped[()] = obj
    np.save(path, wrapped, allow_pickle=True)
    return {name: path}


def _disct_fold(tr_ind, tr_y, te_ind, te_y) -> dict:
    return {
        "tr_ind": np.array(tr_ind), "tr_y": np.array(tr_y, float),
        "te_ind": np.array(te_ind), "te_y": np.array(te_y, float),
    }


def test_disct_reader_deduplicates_folds(tmp_path):
    rows = [([0, 0], 1.0), ([1, 2], 2.0), ([1, 2], 2.0), ([3, 1], 0.5)]
    fold0 = _disct_fold([r[0] for r in rows[:3]], [r[1] for r in rows[:3]], [rows[3][0]], [rows[3][1]])
    fold1 = _disct_fold([r[0] for r in rows[1:]], [r[1] for r in rows[1:]], [rows[0][0]], [rows[0][1]])
    t = read_funbat_disct(_save(tmp_path, {"ndims": [4, 3], "data": [fold0, fold1]}), None, mode_names=["a", "b"])
    assert t.n_obs == 4 and t.meta["bins"].tolist() == [[0, 0], [1, 2], [1, 2], [3, 1]]
    np.testing.assert_allclose(t.coords[0], [0.5 / 4, 0.5 / 3])
    assert [(tr.tolist(), te.tolist()) for tr, te in t.folds] == [([0, 1, 2], [3]), ([1, 2, 3], [0])]


_FOLD_A = _disct_fold([[0, 0]], [1], [[1, 1]], [2])
_FOLD_B = _disct_fold([[0, 0]], [1], [[1, 1]], [3])  # same bins, another test value


@pytest.mark.parametrize(
    "obj, message",
    [
        (
            {"ndims": [4, 3], "data": [_FOLD_A, _FOLD_B]},
            "fold 1 does not hold the same observations as fold 0",
        ),
        (
            {"ndims": [4, 3], "data": [_disct_fold([[0, 5]], [1], [[1, 1]], [2])]},
            r"fold 0 holds bin indices outside the grid \[4, 3\]",
        ),
        ({"ndims": [4, 3], "data": [{"tr_ind": np.zeros((1, 2))}]}, "fold 0 lacks the key 'tr_y'"),
        ({"ndims": [4, 3], "data": [_disct_fold([[0, 0, 0]], [1], [[1, 1, 1]], [2])]}, r"expected \(n, 2\) and \(n,\)"),
        ({"data": []}, "the file lacks the key 'ndims'"),
        ([1, 2], "must hold a dict, got list"),
    ],
)
def test_malformed_disct_files_are_named(tmp_path, obj, message):
    with pytest.raises(ValueError, match=f"toy.npy.*{message}"):
        read_funbat_disct(_save(tmp_path, obj), None)


def test_pickles_that_name_other_globals_are_refused(tmp_path):
    paths = _save(tmp_path, {"ndims": [2], "data": [datetime.date(2024, 1, 1)]})
    refused = r"toy\.npy is not a readable FunBaT \.npy file: global datetime\.date is not allowed"
    with pytest.raises(ValueError, match=refused):
        read_funbat_disct(paths, None)
    plain = tmp_path / "plain.npy"
    np.save(plain, np.zeros(3))
    with pytest.raises(ValueError, match="expected a pickled 0-d object array"):
        read_funbat_disct({"plain.npy": plain}, None)
    (tmp_path / "junk.npy").write_bytes(b"not an npy file")
    with pytest.raises(ValueError, match=r"junk\.npy is not a readable FunBaT \.npy file"):
        read_funbat_disct({"junk.npy": tmp_path / "junk.npy"}, None)


def test_conti_reader_checks_grid_consistency(tmp_path):
    fold = {
        "tr_ind_CONTI": np.array([[0.0, 0.5]]), "tr_ind_DISCT": np.array([[0, 1]]), "tr_y": np.array([1.0]),
        "te_ind_CONTI": np.array([[1.0, 0.0]]), "te_ind_DISCT": np.array([[1, 0]]), "te_y": np.array([2.0]),
    }
    good = {"ndims": [2, 2], "data": [fold], "DISCT_2_CONTI_dicts": [{0: 0.0, 1: 1.0}, {0: 0.0, 1: 0.5}]}
    t = read_funbat_conti(_save(tmp_path, good), None)
    assert t.folds[0][0].tolist() == [0] and t.folds[0][1].tolist() == [1] and "true_factors" not in t.meta
    bad = {**good, "DISCT_2_CONTI_dicts": [{0: 0.0, 1: 1.0}, {0: 0.0, 1: 0.7}]}
    with pytest.raises(ValueError, match=r"toy\.npy: the \*_ind_DISCT and \*_ind_CONTI entries of mode 1 disagree"):
        read_funbat_conti(_save(tmp_path, bad), None)


# ---------------------------------------------------------------------------------------------
# ContinuousTensor built directly
# ---------------------------------------------------------------------------------------------


def test_continuous_tensor_checks_its_parts():
    coords, values = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]), np.array([1.0, 2.0, 3.0])
    t = ContinuousTensor(coords, values, folds=[([0, 1], np.array([2.0]))], mode_names=["time", "space"], name="toy")
    assert repr(t) == "ContinuousTensor(name='toy', n_obs=3, n_modes=2, folds=1)"
    assert t.folds[0][1].dtype == np.int64 and t.folds[0][1].tolist() == [2]
    with pytest.raises(ValueError, match="values has 2 entries but coords has 3 rows"):
        ContinuousTensor(coords, values[:2])
    with pytest.raises(ValueError, match=r"folds\[0\] test holds indices outside \[0, 3\)"):
        ContinuousTensor(coords, values, folds=[([0, 1], [3])])
    with pytest.raises(TypeError, match=r"folds\[0\] train must hold integers, got dtype bool"):
        ContinuousTensor(coords, values, folds=[(np.array([True, False, True]), [1])])
    with pytest.raises(ValueError, match="mode_names has 1 names for 2 modes"):
        ContinuousTensor(coords, values, mode_names=["time"])


@pytest.mark.parametrize("fold", [([0, 1],), ([0], [1], [2]), 5])
def test_continuous_tensor_folds_must_be_pairs(fold):
    # was "not enough values to unpack (expected 2, got 1)" or "cannot unpack non-iterable int object"
    with pytest.raises(ValueError, match=r"folds\[1\] must be a \(train_idx, test_idx\) pair, got"):
        ContinuousTensor(np.zeros((3, 2)), np.zeros(3), folds=[([0], [1]), fold])


# ---------------------------------------------------------------------------------------------
# FunBaT readers: more malformed files
# ---------------------------------------------------------------------------------------------


def test_npy_header_versions(tmp_path):
    obj = {"ndims": [4, 3], "data": [_FOLD_A]}
    wrapped = np.empty((), dtype=object)
    wrapped[()] = obj
    for version, ok in (((1, 0), True), ((2, 0), True), ((3, 0), False)):
        path = tmp_path / f"v{version[0]}.npy"
        with open(path, "wb") as fh:
            np.lib.format.write_array(fh, wrapped, version=version, allow_pickle=True)
        if ok:
            assert read_funbat_disct({path.name: path}, None).n_obs == 2
        else:
            with pytest.raises(ValueError, match=r"v3\.npy is not a readable FunBaT \.npy file: unsupported"):
                read_funbat_disct({path.name: path}, None)


@pytest.mark.parametrize(
    "obj, message",
    [
        (
            {"ndims": [4, 3], "data": [_disct_fold([[0, 0]], [np.nan], [[1, 1]], [2])]},
            "fold 0 train values are not all finite",
        ),
        ({"ndims": [4, 0], "data": [_FOLD_A]}, r"ndims must list a positive number of bins per mode, got \[4, 0\]"),
        ({"ndims": [], "data": [_FOLD_A]}, r"ndims must list a positive number of bins per mode, got \[\]"),
        # 4.7 bins were truncated to 4; a string failed inside numpy without naming the file
        ({"ndims": [4.7, 3], "data": [_FOLD_A]}, r"ndims must list a positive number of bins .* got \[4\.7, 3\.0\]"),
        ({"ndims": ["a", 3], "data": [_FOLD_A]}, r"ndims must list a positive number of bins .* got \['a', '3'\]"),
        ({"ndims": [4, 3], "data": []}, "data must be a non-empty list of folds"),
        ({"ndims": [4, 3], "data": _FOLD_A}, "data must be a non-empty list of folds"),
        # an object array of values failed in np.isfinite with a TypeError naming no file
        ({"ndims": [4, 3], "data": [{**_FOLD_A, "tr_y": np.array(["a"], dtype=object)}]},
         "fold 0 tr_y must hold numbers, got dtype object"),
    ],
)
def test_more_malformed_disct_files_are_named(tmp_path, obj, message):
    with pytest.raises(ValueError, match=f"toy.npy: {message}"):
        read_funbat_disct(_save(tmp_path, obj), None)


def test_disct_reader_checks_files_and_mode_names(tmp_path):
    paths = _save(tmp_path, {"ndims": [4, 3], "data": [_FOLD_A]})
    with pytest.raises(ValueError, match="mode_names has 1 names for 2 modes"):
        read_funbat_disct(paths, None, mode_names=["a"])
    with pytest.raises(ValueError, match=r"'funbat-disct' reader expects exactly one file, got \['b\.npy', 't"):
        read_funbat_disct({**paths, "b.npy": paths["toy.npy"]}, None)


_CONTI_FOLD = {
    "tr_ind_CONTI": np.array([[0.0, 0.5]]), "tr_ind_DISCT": np.array([[0, 1]]), "tr_y": np.array([1.0]),
    "te_ind_CONTI": np.array([[1.0, 0.0]]), "te_ind_DISCT": np.array([[1, 0]]), "te_y": np.array([2.0]),
}
_CONTI = {"ndims": [2, 2], "data": [_CONTI_FOLD], "DISCT_2_CONTI_dicts": [{0: 0.0, 1: 1.0}, {0: 0.0, 1: 0.5}]}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"data": [_CONTI_FOLD, _CONTI_FOLD]}, "data must be a list holding one fold"),
        ({"DISCT_2_CONTI_dicts": [{0: 0.0, 1: 1.0}]}, r"DISCT_2_CONTI_dicts must hold one dict per mode \(2\)"),
        ({"DISCT_2_CONTI_dicts": [{0: 0.0}, {0: 0.0, 1: 0.5}]}, r"DISCT_2_CONTI_dicts\[0\] must map every position"),
        # position 0.9 was truncated to 0 and passed, since coordinate 0.0 is position 0's
        (
            {"data": [{**_CONTI_FOLD, "te_ind_DISCT": np.array([[0.9, 0.0]])}]},
            r"the \*_ind_DISCT entries must be whole grid positions",
        ),
    ],
)
def test_malformed_conti_files_are_named(tmp_path, change, message):
    with pytest.raises(ValueError, match=f"toy.npy: {message}"):
        read_funbat_conti(_save(tmp_path, {**_CONTI, **change}), None)


def test_conti_reader_keeps_the_true_factors(tmp_path):
    fold = {**_CONTI_FOLD, "U1_traj_true": np.ones((2, 3)), "U2_traj_true": np.zeros((2, 3))}
    t = read_funbat_conti(_save(tmp_path, {**_CONTI, "data": [fold]}), None, mode_names=["x", "y"])
    assert [f.shape for f in t.meta["true_factors"]] == [(2, 3), (2, 3)] and t.mode_names == ["x", "y"]
    np.testing.assert_array_equal(t.meta["bins"], [[0, 1], [1, 0]])
