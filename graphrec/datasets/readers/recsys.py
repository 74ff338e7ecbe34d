"""Readers for implicit-feedback data: LightGCN splits, user-sequence text files, RecBole ``.inter``.

Each returns an :class:`~graphrec.datasets.interactions.Interactions` (value 1 per observed
user-item pair). Malformed lines raise ``ValueError`` naming the file and the 1-based line number.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from graphrec.datasets._cards import DatasetCard
from graphrec.datasets._registry import register_format
from graphrec.datasets.interactions import Interactions


def _name(card: DatasetCard | None, default: str) -> str:
    return card.name if card is not None else default


def _file(paths: dict[str, Path], fname: str, fmt: str) -> Path:
    if fname not in paths:
        raise ValueError(f"the {fmt!r} reader needs the file {fname}; got {sorted(paths)}")
    return paths[fname]


def _only_file(paths: dict[str, Path], fmt: str) -> Path:
    if len(paths) != 1:
        raise ValueError(f"the {fmt!r} reader expects exactly one file, got {sorted(paths)}")
    return next(iter(paths.values()))


def _int_lines(path: Path) -> Iterator[tuple[int, np.ndarray]]:
    """``(line number, int64 array)`` for every non-blank line of whitespace-separated non-negative ints."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            tokens = line.split()
            if not tokens:
                continue
            try:
                values = np.array(tokens, dtype=np.int64)
            except (ValueError, OverflowError):
                raise ValueError(
                    f"{path}, line {lineno}: expected whitespace-separated integer ids, got {line.strip()[:80]!r}"
                ) from None
            if values.min() < 0:
                raise ValueError(f"{path}, line {lineno}: negative id {values.min()}")
            yield lineno, values


def _read_user_lists(path: Path, id_base: int = 0) -> dict[int, np.ndarray]:
    """``{user: item array}`` from lines ``user item item ...``, ids shifted to 0-based.

    Raises ``ValueError`` (file and line named) for ids below ``id_base``, a user listed on two
    lines, or an item repeated on one line.
    """
    users: dict[int, np.ndarray] = {}
    first_line: dict[int, int] = {}
    for lineno, values in _int_lines(path):
        if values.min() < id_base:
            raise ValueError(f"{path}, line {lineno}: id {values.min()} is below the first id {id_base}")
        user, items = int(values[0]) - id_base, values[1:] - id_base
        if user in users:
            raise ValueError(
                f"{path}, line {lineno}: user {user + id_base} is listed again (first on line {first_line[user]})"
            )
        if np.unique(items).size != items.size:
            raise ValueError(f"{path}, line {lineno}: user {user + id_base} lists an item more than once")
        users[user] = items
        first_line[user] = lineno
    return users


def _to_csr(users: dict[int, np.ndarray], shape: tuple[int, int], values: str = "ones") -> sp.csr_matrix:
    """users x items CSR of a ``{user: items}`` dict; ``values="position"`` stores 1-based positions."""
    rows = np.repeat(np.fromiter(users, dtype=np.int64, count=len(users)), [len(v) for v in users.values()])
    cols = np.concatenate(list(users.values())) if users else np.zeros(0, dtype=np.int64)
    if values == "position":
        data = np.concatenate([np.arange(1, len(v) + 1) for v in users.values()]).astype(np.float64)
    else:
        data = np.ones(cols.size, dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=shape)


def _read_remap(path: Path) -> np.ndarray:
    """LightGCN's ``org_id remap_id`` table (one header line) -> original ids indexed by remap id."""
    org, remap = [], []
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().split()
        if header != ["org_id", "remap_id"]:
            raise ValueError(f"{path}, line 1: expected the header 'org_id remap_id', got {' '.join(header)!r}")
        for lineno, line in enumerate(fh, 2):
            tokens = line.split()
            if not tokens:
                continue
            if len(tokens) != 2 or not tokens[1].isdecimal():
                raise ValueError(f"{path}, line {lineno}: expected 'org_id remap_id', got {line.strip()[:80]!r}")
            org.append(tokens[0])
            remap.append(int(tokens[1]))
    remap_arr = np.asarray(remap, dtype=np.int64)
    if not np.array_equal(np.sort(remap_arr), np.arange(remap_arr.size)):
        raise ValueError(f"{path}: remap ids must be 0 .. {remap_arr.size - 1}, each exactly once")
    ids = np.empty(remap_arr.size, dtype=object)
    ids[remap_arr] = org
    return _numeric_if_possible(ids)


def _is_int_token(token: str) -> bool:
    """Whether ``token`` is an integer written as ``str(int(token))`` writes it (no sign or zero padding).

    Only such tokens may become int64 ids: ``"7"`` and ``"07"`` are two ids, ``"-0"`` is not ``"0"``.
    """
    digits = token[1:] if token.startswith("-") else token
    return (digits.isascii() and digits.isdigit() and (digits == "0" or digits[0] != "0")
            and token != "-0" and len(digits) <= 18)


def _numeric_if_possible(tokens: np.ndarray) -> np.ndarray:
    """int64 when every token is a canonically written decimal integer (see ``_is_int_token``), else str."""
    if all(_is_int_token(t) for t in tokens):
        return tokens.astype(np.int64)
    return tokens.astype(str)


def _check_ids(users: dict[int, np.ndarray], n_users: int, n_items: int, path: Path) -> None:
    for user, items in users.items():
        if user >= n_users:
            raise ValueError(f"{path}: user id {user} is unknown (the user list has {n_users} users)")
        if items.size and items.max() >= n_items:
            raise ValueError(
                f"{path}: user {user} has item id {items.max()}, unknown (the item list has {n_items} items)"
            )


@register_format("lightgcn")
def read_lightgcn(paths: dict[str, Path], card: DatasetCard | None) -> Interactions:
    """LightGCN's split (He et al., SIGIR 2020): ``train.txt``, ``test.txt``, ``user_list.txt``, ``item_list.txt``.

    ``train.txt``/``test.txt`` hold one line per user, ``uid iid iid ...`` (0-based remapped ids);
    the lists map remapped ids back to the original ones (``user_ids``/``item_ids``). ``user_items``
    is train + test; the two must not share a pair. There is no interaction order.

    Returns
    -------
    Interactions
        user_items (n_users, n_items) with splits ``{"train", "test"}`` as given.
    """
    user_ids = _read_remap(_file(paths, "user_list.txt", "lightgcn"))
    item_ids = _read_remap(_file(paths, "item_list.txt", "lightgcn"))
    shape = (user_ids.size, item_ids.size)
    splits = {}
    for split in ("train", "test"):
        path = _file(paths, f"{split}.txt", "lightgcn")
        users = _read_user_lists(path)
        _check_ids(users, *shape, path)
        splits[split] = _to_csr(users, shape)
    overlap = splits["train"].multiply(splits["test"]).nnz
    if overlap:
        raise ValueError(
            f"{paths['train.txt']} and {paths['test.txt']} share {overlap} (user, item) pairs; "
            "a LightGCN split must keep train and test disjoint"
        )
    return Interactions(
        splits["train"] + splits["test"], splits=splits, user_ids=user_ids, item_ids=item_ids,
        name=_name(card, "lightgcn"),
    )


@register_format("user-sequences")
def read_user_sequences(paths: dict[str, Path], card: DatasetCard | None, *, id_base: int) -> Interactions:
    """One line per user, ``uid iid iid ...`` in time order (the S3-Rec / ICLRec sequence files).

    Ids are shifted by ``id_base`` to 0-based rows/columns; ``user_ids``/``item_ids`` keep the
    original ids. ``order`` is each interaction's 1-based position in the user's sequence. The
    numbers of users and items are the largest ids (every id up to them is a user/item).

    Parameters
    ----------
    id_base : {0, 1}
        The first id used in the file (the Amazon sequence files start at 1).
    """
    if id_base not in (0, 1):
        raise ValueError(f"id_base must be 0 or 1, got {id_base!r}")
    path = _only_file(paths, "user-sequences")
    users = _read_user_lists(path, id_base)
    if not any(items.size for items in users.values()):
        raise ValueError(f"{path} holds no interactions")
    n_users = max(users) + 1
    n_items = max(int(v.max()) for v in users.values() if v.size) + 1
    return Interactions(
        _to_csr(users, (n_users, n_items)),
        order=_to_csr(users, (n_users, n_items), values="position"),
        user_ids=np.arange(n_users, dtype=np.int64) + id_base,
        item_ids=np.arange(n_items, dtype=np.int64) + id_base,
        name=_name(card, path.stem),
    )


def _inter_header(path: Path, header: str, fields: dict[str, str | None]) -> dict[str, int]:
    """Column index of each wanted field in a RecBole header ``name:type<TAB>name:type ...``."""
    columns = {}
    for i, col in enumerate(header.rstrip("\n").split("\t")):
        name, sep, _ = col.partition(":")
        if not sep:
            raise ValueError(f"{path}, line 1: header column {col!r} is not 'name:type'")
        columns[name] = i
    wanted = {}
    for role, field in fields.items():
        if field is None:
            continue
        if field not in columns:
            raise ValueError(f"{path}, line 1: no column {field!r} ({role}); the header has {sorted(columns)}")
        wanted[role] = columns[field]
    return wanted


@register_format("recbole-inter")
def read_recbole_inter(
    paths: dict[str, Path],
    card: DatasetCard | None,
    *,
    user_field: str = "user_id",
    item_field: str = "item_id",
    time_field: str | None = "timestamp",
) -> Interactions:
    """RecBole's atomic ``.inter`` file (Zhao et al., CIKM 2021): TSV with a ``name:type`` header.

    User and item ids are tokens; the vocabularies ``user_ids``/``item_ids`` are the distinct
    tokens sorted (numerically when every token is an integer), and row/column ``i`` is the
    ``i``-th token. Every line is one implicit interaction (value 1) whatever its rating;
    ``order`` holds ``time_field`` (``None``: no order). A (user, item) pair may occur once.
    """
    path = _only_file(paths, "recbole-inter")
    users, items, times, line_numbers = [], [], [], []
    with open(path, encoding="utf-8") as fh:
        cols = _inter_header(path, fh.readline(), {"user": user_field, "item": item_field, "time": time_field})
        n_cols = max(cols.values()) + 1
        for lineno, line in enumerate(fh, 2):
            if not line.strip():
                continue
            tokens = line.rstrip("\n").split("\t")
            if len(tokens) < n_cols or not tokens[cols["user"]] or not tokens[cols["item"]]:
                raise ValueError(
                    f"{path}, line {lineno}: expected tab-separated fields per the header, got {line.strip()[:80]!r}"
                )
            line_numbers.append(lineno)
            users.append(tokens[cols["user"]])
            items.append(tokens[cols["item"]])
            if "time" in cols:
                try:
                    times.append(float(tokens[cols["time"]]))
                except ValueError:
                    raise ValueError(
                        f"{path}, line {lineno}: {time_field} must be a number, got {tokens[cols['time']]!r}"
                    ) from None
                if not np.isfinite(times[-1]):  # NaN / inf would make every split by time meaningless
                    raise ValueError(
                        f"{path}, line {lineno}: {time_field} must be a finite number, got {tokens[cols['time']]!r}"
                    )
    if not users:
        raise ValueError(f"{path} holds no interactions")
    user_ids, rows = _vocabulary(np.asarray(users, dtype=object))
    item_ids, cols_ = _vocabulary(np.asarray(items, dtype=object))
    pairs = rows * item_ids.size + cols_
    uniq, counts = np.unique(pairs, return_counts=True)
    if (counts > 1).any():
        dup = np.flatnonzero(pairs == uniq[counts > 1][0])
        raise ValueError(
            f"{path}: user {users[dup[0]]!r} and item {items[dup[0]]!r} occur on lines "
            f"{', '.join(str(line_numbers[i]) for i in dup)}; expected each pair once"
        )
    shape = (user_ids.size, item_ids.size)
    user_items = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols_)), shape=shape)
    order = None
    if times:
        order = sp.csr_matrix((np.asarray(times, dtype=np.float64), (rows, cols_)), shape=shape)
    return Interactions(user_items, order=order, user_ids=user_ids, item_ids=item_ids, name=_name(card, path.stem))


def _vocabulary(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct tokens (int64 if all are integers) and each token's index in them."""
    typed = _numeric_if_possible(tokens)
    return np.unique(typed, return_inverse=True)
