"""Readers for click-through-rate data: one-hot libFM files and headed CSV samples.

Both return a :class:`~graphrec.datasets.ctr.CTRTable`. Malformed lines raise ``ValueError``
naming the file and the 1-based line number.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from graphrec.datasets._cards import DatasetCard
from graphrec.datasets._registry import register_format
from graphrec.datasets.ctr import CTRTable

_LIBFM_LABELS = {"-1": 0, "0": 0, "1": 1, "+1": 1}


def _name(card: DatasetCard | None, default: str) -> str:
    return card.name if card is not None else default


def _read_libfm_rows(path: Path, n_fields: int) -> tuple[np.ndarray, np.ndarray]:
    """``(labels (n,), feature ids (n, n_fields))`` of a one-hot libFM file.

    Each line is ``label idx:1 idx:1 ...`` with exactly ``n_fields`` features; column ``j`` of the
    returned ids is the feature in position ``j`` of its line.
    """
    labels, rows = [], []
    with open(path, encoding="utf-8", newline="") as fh:
        for lineno, line in enumerate(fh, 1):
            tokens = line.split()
            if not tokens:
                continue
            where = f"{path}, line {lineno}"
            if tokens[0] not in _LIBFM_LABELS:
                raise ValueError(f"{where}: label {tokens[0]!r} is not one of -1, +1, 0, 1")
            if len(tokens) != n_fields + 1:
                raise ValueError(f"{where}: expected {n_fields} 'index:value' features, got {len(tokens) - 1}")
            ids = []
            for token in tokens[1:]:
                index, sep, value = token.partition(":")
                if not sep or not index.isdigit() or value not in ("1", "1.0"):
                    raise ValueError(f"{where}: expected a one-hot feature 'index:1', got {token!r}")
                ids.append(int(index))
            labels.append(_LIBFM_LABELS[tokens[0]])
            rows.append(ids)
    if not rows:
        raise ValueError(f"{path} holds no rows")
    return np.asarray(labels, dtype=np.int64), np.asarray(rows, dtype=np.int64)


def _resplit(n: int, fractions: Sequence[float], seed: int) -> dict[str, np.ndarray]:
    """A seeded random partition of ``range(n)`` into train / valid / test row ids (each sorted)."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise ValueError(
            f"fractions must be three non-negative numbers (train, valid, test) summing to 1, got {fractions}"
        )
    perm = np.random.default_rng(seed).permutation(n)
    n_valid, n_test = round(fractions[1] * n), round(fractions[2] * n)
    n_train = n - n_valid - n_test
    parts = np.split(perm, [n_train, n_train + n_valid])
    return {name: np.sort(part) for name, part in zip(("train", "valid", "test"), parts)}


@register_format("libfm-onehot")
def read_libfm_onehot(
    paths: dict[str, Path],
    card: DatasetCard | None,
    *,
    files: Sequence[str],
    fields: Sequence[str],
    seed: int = 2022,
    fractions: Sequence[float] = (0.7, 0.2, 0.1),
) -> CTRTable:
    """One-hot libFM files (``label idx:1 ... idx:1``, one feature per field) -> :class:`CTRTable`.

    The layout of the NFM / AFN releases of Frappe (He & Chua, SIGIR 2017). Labels ``-1``/``+1``
    (or ``0``/``1``) become 0/1. The field of a feature is its position in the line, the same in
    every line; the stored global feature index is kept as the field's categorical value. A
    feature index seen in two different positions raises ``ValueError``: the files would then not
    encode one feature per field.

    Rows of ``files`` are concatenated in the given order and re-split at random into
    train/valid/test (``numpy.random.default_rng(seed).permutation``; valid and test get
    ``round(fraction * n)`` rows, train the rest; row ids sorted within each split).

    Parameters
    ----------
    files : sequence of str
        The libFM files to read, in order.
    fields : sequence of str
        Field names, one per feature position.
    seed : int
        Seed of the re-split.
    fractions : (train, valid, test)
        Split fractions; they must sum to 1.

    Returns
    -------
    CTRTable
        ``frame`` (n_rows, n_fields) int64 feature indices; ``splits`` train/valid/test row ids.
    """
    missing = [f for f in files if f not in paths]
    if missing:
        raise ValueError(f"the 'libfm-onehot' reader needs the files {missing}; got {sorted(paths)}")
    fields = list(fields)
    labels, ids = [], []
    for fname in files:
        y, x = _read_libfm_rows(paths[fname], len(fields))
        labels.append(y)
        ids.append(x)
    x = np.concatenate(ids)
    column_of = {}
    for j in range(x.shape[1]):
        for index in np.unique(x[:, j]).tolist():
            if column_of.setdefault(index, j) != j:
                raise ValueError(
                    f"feature index {index} occurs in position {column_of[index] + 1} and {j + 1} of the rows in "
                    f"{list(files)}; a one-hot libFM file must keep each index in one field"
                )
    frame = pd.DataFrame({name: x[:, j] for j, name in enumerate(fields)})
    return CTRTable(
        frame,
        np.concatenate(labels),
        categorical=fields,
        splits=_resplit(len(frame), fractions, seed),
        name=_name(card, Path(paths[files[0]]).parent.name),
    )


@register_format("ctr-csv")
def read_ctr_csv(
    paths: dict[str, Path],
    card: DatasetCard | None,
    *,
    label: str,
    categorical: Sequence[str],
    numeric: Sequence[str] = (),
    drop: Sequence[str] = (),
    label_threshold: float | None = None,
    missing: str = "<missing>",
) -> CTRTable:
    """A CSV file with a header row -> :class:`CTRTable` (no splits: the samples define none).

    Every header column must be named exactly once in ``label``, ``categorical``, ``numeric`` or
    ``drop``, so a changed file is caught instead of silently mis-typed. Categorical cells are
    kept as raw strings (an empty cell becomes ``missing``); numeric cells are parsed as float64
    (an empty cell becomes NaN).

    Parameters
    ----------
    label : str
        The label column: 0/1 clicks, or a score turned into ``score >= label_threshold``.
    categorical, numeric, drop : sequence of str
        Columns by role; ``drop`` columns are read and discarded (row ids, the label's source).
    label_threshold : float, optional
        When given, the label is ``1`` where the label column is at least this value.
    missing : str
        Token for an empty categorical cell.

    References
    ----------
    The DeepCTR example samples (Shen, https://github.com/shenweichen/DeepCTR).
    """
    if len(paths) != 1:
        raise ValueError(f"the 'ctr-csv' reader expects exactly one file, got {sorted(paths)}")
    path = next(iter(paths.values()))
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a readable CSV file: {exc}") from exc
    roles = [label, *categorical, *numeric, *drop]
    header = list(raw.columns)
    if sorted(roles) != sorted(header) or len(set(roles)) != len(roles):
        raise ValueError(
            f"{path}: the header {header} must match label + categorical + numeric + drop exactly; "
            f"unassigned {sorted(set(header) - set(roles))}, absent {sorted(set(roles) - set(header))}"
        )
    frame = pd.DataFrame(index=raw.index)
    for col in header:
        if col in categorical:
            frame[col] = raw[col].where(raw[col] != "", missing)
        elif col in numeric:
            frame[col] = _numeric_column(raw[col], path, col)
    scores = _numeric_column(raw[label], path, label)
    if np.isnan(scores).any():
        raise ValueError(f"{path}, line {int(np.flatnonzero(np.isnan(scores))[0]) + 2}: empty label {label!r}")
    if label_threshold is not None:
        y = (scores >= label_threshold).astype(np.int64)
    else:
        bad = ~np.isin(scores, (0, 1))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{path}, line {row + 2}: label {label!r} is {scores[row]}, expected 0 or 1")
        y = scores.astype(np.int64)
    return CTRTable(
        frame[[c for c in header if c in categorical or c in numeric]],
        y,
        categorical=[c for c in header if c in categorical],
        numeric=[c for c in header if c in numeric],
        name=_name(card, path.stem),
    )


def _numeric_column(values: pd.Series, path: Path, col: str) -> np.ndarray:
    """float64 values of a string column; empty cells become NaN, anything unparsable raises."""
    parsed = pd.to_numeric(values.where(values != "", None), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(parsed) & (values != "").to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{path}, line {row + 2}: column {col!r} holds {values.iloc[row]!r}, expected a number")
    return parsed
