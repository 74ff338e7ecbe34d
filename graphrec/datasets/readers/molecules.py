"""Readers for graph-level data sets through PyTorch Geometric: ZINC-12k and TU data sets.

PyG keeps its own processed cache, so these formats are registered with ``cache=False``: each
reader writes PyG's ``raw/`` folder under ``<writable root>/molecules/`` (never in a read-only
shared copy) and lets the PyG dataset class process it once. A ``SOURCE`` stamp in ``raw/``
records the sha256 of the inputs; when it changes, the raw layout and PyG's processed files are
rebuilt. ``torch_geometric`` is imported only inside the readers.
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from graphrec._config import writable_root
from graphrec.datasets._cards import DatasetCard
from graphrec.datasets._fetch import sha256sum
from graphrec.datasets._lock import file_lock
from graphrec.datasets._registry import register_format

if TYPE_CHECKING:
    from torch_geometric.datasets import ZINC, TUDataset

logger = logging.getLogger(__name__)

ZINC_SPLITS = ("train", "val", "test")
_ZINC_FILES = ("ZINC_Nodes.txt", "ZINC_Edges.txt", "ZINC_Labels.txt", "ZINC_splits.json")


# --------------------------------------------------------------------------------------------
# Small helpers: stamps and atomic writes
# --------------------------------------------------------------------------------------------


def _stamp(paths: dict[str, Path]) -> str:
    """One line per input file, ``name sha256``, sorted by name."""
    return "".join(f"{name} {sha256sum(paths[name])}\n" for name in sorted(paths))


def _atomic_write(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _is_current(raw: Path, stamp: str) -> bool:
    source = raw / "SOURCE"
    return source.is_file() and source.read_text(encoding="utf-8") == stamp


def _reset(folder: Path, processed: Path) -> None:
    """Empty ``folder`` (our raw layout) and drop PyG's processed files built from it."""
    shutil.rmtree(processed, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


# --------------------------------------------------------------------------------------------
# ZINC-12k from the RuleGNN text files
# --------------------------------------------------------------------------------------------


def _read_table(path: Path, n_cols: int) -> np.ndarray:
    """A whitespace-separated numeric table with exactly ``n_cols`` columns, as float64 (n, n_cols)."""
    try:
        with warnings.catch_warnings():  # an empty file is reported below, by name
            warnings.filterwarnings("ignore", message="loadtxt: input contained no data", category=UserWarning)
            table = np.loadtxt(path, dtype=np.float64, ndmin=2)
        problem = ""
    except ValueError as exc:  # e.g. "1_000", which Python's float() reads but numpy does not
        table, problem = None, f": {exc}"
    # loadtxt reads "nan" and "inf" as numbers: such rows are reported like unparsable ones
    if table is None or table.shape[1] != n_cols or table.shape[0] == 0 or not np.all(np.isfinite(table)):
        rows = 0
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                tokens = line.split()
                if not tokens:
                    continue
                rows += 1
                try:
                    ok = len(tokens) == n_cols and all(np.isfinite(float(t)) for t in tokens)
                except ValueError:
                    ok = False
                if not ok:
                    raise ValueError(f"{path}, line {lineno}: expected {n_cols} numbers, got {line.strip()[:80]!r}")
        if rows == 0:
            raise ValueError(f"{path} holds no rows")
        raise ValueError(f"{path} is not a table of {n_cols} numeric columns{problem}")
    return table


def _int_columns(table: np.ndarray, path: Path, what: str) -> np.ndarray:
    if not np.all(table == np.round(table)) or table.min() < 0:
        raise ValueError(f"{path}: {what} must be non-negative integers")
    return table.astype(np.int64)


def _zinc_molecules(paths: dict[str, Path]) -> list[dict]:
    """One dict per graph in PyG's ZINC pickle layout, from ``ZINC_{Nodes,Edges,Labels}.txt``.

    Nodes: ``graph node atom_type`` (node ids are a permutation of 0..n-1 per graph, in any
    order); Edges: ``graph u v bond_type`` (each undirected bond once); Labels: ``graph y``.
    """
    import torch

    labels_table = _read_table(paths["ZINC_Labels.txt"], 2)
    graph_of_label = _int_columns(labels_table[:, :1], paths["ZINC_Labels.txt"], "graph ids").ravel()
    n_graphs = len(graph_of_label)
    if not np.array_equal(np.sort(graph_of_label), np.arange(n_graphs)):
        raise ValueError(f"{paths['ZINC_Labels.txt']}: graph ids must be 0 .. {n_graphs - 1}, each once")
    y = np.empty(n_graphs, dtype=np.float32)
    y[graph_of_label] = labels_table[:, 1]

    nodes = _int_columns(_read_table(paths["ZINC_Nodes.txt"], 3), paths["ZINC_Nodes.txt"], "node rows")
    nodes = nodes[np.lexsort((nodes[:, 1], nodes[:, 0]))]
    if nodes[:, 0].max() >= n_graphs:
        raise ValueError(
            f"{paths['ZINC_Nodes.txt']} names graph {nodes[:, 0].max()}, beyond the {n_graphs} labelled graphs"
        )
    sizes = np.bincount(nodes[:, 0], minlength=n_graphs)
    node_start = np.concatenate([[0], np.cumsum(sizes)])
    if sizes.min() == 0 or not np.array_equal(nodes[:, 1], np.arange(len(nodes)) - node_start[nodes[:, 0]]):
        raise ValueError(f"{paths['ZINC_Nodes.txt']}: the node ids of every graph must be 0 .. n-1, each once")

    edges = _int_columns(_read_table(paths["ZINC_Edges.txt"], 4), paths["ZINC_Edges.txt"], "edge rows")
    edges = edges[np.argsort(edges[:, 0], kind="stable")]
    g, u, v, bond = edges.T
    if g.max() >= n_graphs or np.any(u >= sizes[g]) or np.any(v >= sizes[g]) or np.any(u == v):
        raise ValueError(f"{paths['ZINC_Edges.txt']} holds a bond between missing nodes or a self-loop")
    if bond.min() < 1 or bond.max() > 255:
        raise ValueError(f"{paths['ZINC_Edges.txt']}: bond types must lie in 1 .. 255")
    edge_start = np.searchsorted(g, np.arange(n_graphs + 1))

    molecules = []
    for i in range(n_graphs):
        n = int(sizes[i])
        adj = np.zeros((n, n), dtype=np.uint8)
        e = slice(edge_start[i], edge_start[i + 1])
        adj[u[e], v[e]] = bond[e]
        adj[v[e], u[e]] = bond[e]
        if np.count_nonzero(adj) != 2 * (edge_start[i + 1] - edge_start[i]):
            raise ValueError(f"{paths['ZINC_Edges.txt']}: graph {i} lists a bond twice")
        molecules.append(
            {
                "num_atom": n,
                "atom_type": torch.from_numpy(nodes[node_start[i] : node_start[i + 1], 2].copy()),
                "bond_type": torch.from_numpy(adj),
                "logP_SA_cycle_normalized": torch.tensor([y[i]], dtype=torch.float32),
            }
        )
    return molecules


def _zinc_split_ids(path: Path, n_graphs: int) -> dict[str, list[int]]:
    """Graph ids per split from RuleGNN's ``ZINC_splits.json``."""
    try:
        with open(path, encoding="utf-8") as fh:
            fold = json.load(fh)[0]
        ids = {
            "train": fold["model_selection"][0]["train"],
            "val": fold["model_selection"][0]["validation"],
            "test": fold["test"],
        }
    except (json.JSONDecodeError, UnicodeDecodeError, LookupError, TypeError) as exc:
        raise ValueError(
            f"{path} must hold [{{'test': [...], 'model_selection': [{{'train': [...], 'validation': [...]}}]}}]: {exc}"
        ) from exc
    everything = sorted(i for part in ids.values() for i in part)
    if everything != list(range(n_graphs)):
        raise ValueError(f"{path}: the splits must partition the graph ids 0 .. {n_graphs - 1}")
    return ids


def write_zinc_raw(paths: dict[str, Path], raw: Path) -> None:
    """Write PyG's ZINC raw layout (``{split}.pickle`` + identity ``{split}.index``) into ``raw``.

    Each pickle is the list of the split's molecules in split order, so the identity index
    ``0,1,...,N-1`` selects them all with ``ZINC(root, subset=True)``.
    """
    molecules = _zinc_molecules(paths)
    for split, ids in _zinc_split_ids(paths["ZINC_splits.json"], len(molecules)).items():
        chosen = [molecules[i] for i in ids]
        _atomic_write(raw / f"{split}.pickle", pickle.dumps(chosen, protocol=pickle.HIGHEST_PROTOCOL))
        _atomic_write(raw / f"{split}.index", (",".join(map(str, range(len(chosen)))) + "\n").encode())


@register_format("pyg-zinc", cache=False)
def read_zinc(
    paths: dict[str, Path], card: DatasetCard | None, *, root: str | os.PathLike | None = None
) -> dict[str, ZINC]:
    """ZINC-12k (``subset=True``) as ``{"train", "val", "test"}`` -> ``torch_geometric.datasets.ZINC``.

    Builds PyG's raw layout from the RuleGNN text files under ``<writable root>/molecules/ZINC/raw``
    (atom types ordered by node id, a symmetric uint8 bond-type matrix, the float32
    ``logP_SA_cycle_normalized`` target) and lets PyG process it into ``.../ZINC/subset/processed``.

    Returns
    -------
    dict of str -> torch_geometric.datasets.ZINC
        Graphs with ``x`` (n, 1) atom type, ``edge_index`` (2, 2 * bonds), ``edge_attr`` bond type,
        ``y`` (1,) constrained solubility.

    References
    ----------
    Dwivedi et al., "Benchmarking Graph Neural Networks", JMLR 2023 (the 12k subset and split).
    """
    missing = [f for f in _ZINC_FILES if f not in paths]
    if missing:
        raise ValueError(f"the 'pyg-zinc' reader needs the files {missing}; got {sorted(paths)}")
    base = writable_root(root) / "molecules" / "ZINC"
    raw = base / "raw"
    stamp = _stamp({f: paths[f] for f in _ZINC_FILES})
    from torch_geometric.datasets import ZINC

    with file_lock(base.parent / ".ZINC.lock"):   # concurrent first loads build the folders once
        if not _is_current(raw, stamp):
            logger.info("building the PyG ZINC raw layout in %s", raw)
            _reset(raw, base / "subset")
            write_zinc_raw(paths, raw)
            _atomic_write(raw / "SOURCE", stamp.encode())
        return {split: ZINC(str(base), subset=True, split=split) for split in ZINC_SPLITS}


# --------------------------------------------------------------------------------------------
# TU data sets
# --------------------------------------------------------------------------------------------


@register_format("pyg-tu", cache=False)
def read_tu(
    paths: dict[str, Path],
    card: DatasetCard | None,
    *,
    name: str,
    use_node_attr: bool = False,
    root: str | os.PathLike | None = None,
) -> TUDataset:
    """A TU data set (``<NAME>_A.txt``, ``<NAME>_graph_indicator.txt``, ...) -> ``TUDataset``.

    The verified files are copied into ``<writable root>/molecules/tu/<NAME>/raw`` (copies, not
    links, so that moving the data root later cannot leave PyG with dangling raw files) and
    ``torch_geometric.datasets.TUDataset(<writable root>/molecules/tu, name=NAME)`` processes them.

    Parameters
    ----------
    name : str
        The TU name; every file must be called ``<name>_*.txt``.
    root : path, optional
        Data root passed to ``load``; PyG's folders go to its writable root.
    use_node_attr : bool
        Put the continuous node attributes (``<name>_node_attributes.txt``) in front of the
        one-hot node labels in ``x``.

    References
    ----------
    Morris et al., "TUDataset: A collection of benchmark datasets for learning with graphs", 2020.
    """
    strays = [f for f in paths if not (f.startswith(f"{name}_") and f.endswith(".txt"))]
    if strays:
        raise ValueError(f"TU data set {name!r} takes only files named {name}_*.txt; got {strays}")
    for needed in (f"{name}_A.txt", f"{name}_graph_indicator.txt"):
        if needed not in paths:
            raise ValueError(f"TU data set {name!r} needs the file {needed}; got {sorted(paths)}")
    base = writable_root(root) / "molecules" / "tu"
    raw = base / name / "raw"
    stamp = _stamp(paths)
    from torch_geometric.datasets import TUDataset

    with file_lock(base / f".{name}.lock"):   # concurrent first loads build the folders once
        if not _is_current(raw, stamp):
            _reset(raw, base / name / "processed")
            for fname, src in paths.items():
                _atomic_write(raw / fname, src.read_bytes())
            _atomic_write(raw / "SOURCE", stamp.encode())
        return TUDataset(str(base), name=name, use_node_attr=use_node_attr)
