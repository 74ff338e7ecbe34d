"""Readers for attributed graphs: Planetoid ``ind.*``, S2CAG ``.mat``, gnn-benchmark ``.npz``, ``.npy`` zips.

Every reader returns an :class:`~graphrec.datasets.graph.AttributedGraph` with a symmetric adjacency
(stored self-loops kept), features sparse when the stored matrix is mostly zeros, and 0-based
labels (``-1`` for unlabelled nodes). Malformed files raise ``ValueError`` naming the file.
"""
from __future__ import annotations

import io
import logging
import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from graphrec.datasets._cards import DatasetCard
from graphrec.datasets._registry import register_format
from graphrec.datasets.graph import AttributedGraph

logger = logging.getLogger(__name__)

# A dense feature matrix with at most this fraction of non-zeros is stored as CSR
# (CSR costs about 12 bytes per non-zero against 8 bytes per dense entry).
SPARSE_FEATURE_DENSITY = 0.5


def _graph_name(card: DatasetCard | None, path: Path) -> str:
    return card.name if card is not None else path.stem


def _only_file(paths: dict[str, Path], fmt: str) -> Path:
    if len(paths) != 1:
        raise ValueError(f"the {fmt!r} reader expects exactly one file, got {sorted(paths)}")
    return next(iter(paths.values()))


def _as_features(x, source: str) -> sp.csr_matrix | np.ndarray:
    """Sparse input -> CSR float64; dense input -> CSR when mostly zeros, else a float64 array."""
    if sp.issparse(x):
        return sp.csr_matrix(x, dtype=np.float64)
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"features in {source} must be a 2-d (n_nodes, n_features) array, got shape {x.shape}")
    if np.count_nonzero(x) <= SPARSE_FEATURE_DENSITY * x.size:
        return sp.csr_matrix(x, dtype=np.float64)
    return x.astype(np.float64)


def _integer_labels(y, source: str) -> np.ndarray:
    """``y`` flattened to int64; class ids stored as floats must be whole numbers (no silent truncation)."""
    y = np.asarray(y).ravel()
    if y.dtype.kind not in "biuf" or (y.dtype.kind == "f" and not np.all(y == np.round(y))):
        raise ValueError(f"{source} must hold integer class ids, got dtype {y.dtype}")
    return y.astype(np.int64)


def _check_symmetric(a: sp.csr_matrix, source: str) -> sp.csr_matrix:
    if a.shape[0] != a.shape[1]:
        raise ValueError(f"adjacency in {source} has shape {a.shape}; expected a square (n, n) matrix")
    if not np.all(np.isfinite(a.data)):  # NaN != NaN would otherwise read as "not symmetric"
        raise ValueError(f"adjacency in {source} holds NaN or infinite weights")
    if (a != a.T).nnz:
        raise ValueError(f"adjacency in {source} is not symmetric; expected an undirected graph as stored")
    return a


# --------------------------------------------------------------------------------------------
# Planetoid
# --------------------------------------------------------------------------------------------


def _unpickle(path: Path):
    """Load a Python 2 pickle; scipy's moved ``scipy.sparse.csr`` module path is not the caller's concern."""
    try:
        with open(path, "rb") as fh, warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*scipy.sparse.*")
            return pickle.load(fh, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as exc:
        raise ValueError(f"{path} is not a readable Planetoid pickle: {exc}") from exc


def _read_test_index(path: Path) -> np.ndarray:
    ids = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            token = line.strip()
            if not token:
                continue
            if not token.isdecimal():
                raise ValueError(f"{path}, line {lineno}: expected one non-negative node id, got {token!r}")
            ids.append(int(token))
    idx = np.asarray(ids, dtype=np.int64)
    if idx.size == 0:
        raise ValueError(f"{path} lists no test node ids")
    if np.unique(idx).size != idx.size:
        raise ValueError(f"{path} lists a test node id more than once")
    return idx


def _onehot_labels(onehot: np.ndarray, source: Path) -> np.ndarray:
    """Argmax of each one-hot row; all-zero rows become ``-1``."""
    onehot = np.asarray(onehot)
    if onehot.ndim != 2:
        raise ValueError(f"{source} must hold a 2-d one-hot label matrix, got shape {onehot.shape}")
    return np.where(onehot.sum(1) > 0, onehot.argmax(1), -1).astype(np.int64)


def _place_rows(block: sp.csr_matrix, rows: np.ndarray, n: int) -> sp.csr_matrix:
    """An (n, d) CSR matrix holding ``block[i]`` at row ``rows[i]`` and zeros elsewhere."""
    scatter = sp.csr_matrix((np.ones(rows.size), (rows, np.arange(rows.size))), shape=(n, rows.size))
    return (scatter @ block).tocsr()


@register_format("planetoid")
def read_planetoid(paths: dict[str, Path], card: DatasetCard | None, *, name: str) -> AttributedGraph:
    """Planetoid's ``ind.{name}.{x,tx,allx,y,ty,ally,graph,test.index}`` (Yang et al., ICML 2016).

    The test block (``tx``, ``ty``) is placed at the node ids listed in ``test.index``, as in the
    reference loaders. Test-range ids missing from ``test.index`` (Citeseer's isolated "phantom"
    nodes) get zero features and label -1. The adjacency is the symmetrised, binarised ``graph``
    dict of adjacency lists; stored self-loops are kept (weight 1).

    When ``ind.{name}.allx`` is absent from ``paths`` (the shared PubMed copy), the features of the
    nodes ``0 .. len(ally)-1`` are known only for the labelled training prefix held in ``x``; every
    other such row is zero. ``meta["missing_feature_rows"]`` lists the nodes (int64, sorted) whose
    feature row is not in the files, in every case.

    Returns
    -------
    AttributedGraph
        adjacency (n, n) binary; features (n, d) CSR; labels (n,) in ``0 .. n_classes-1`` or -1.
    """
    def file(key: str) -> Path:
        fname = f"ind.{name}.{key}"
        if fname not in paths:
            raise ValueError(f"Planetoid data set {name!r} needs the file {fname}; got {sorted(paths)}")
        return paths[fname]

    tx = sp.csr_matrix(_unpickle(file("tx")), dtype=np.float64)
    ty_labels = _onehot_labels(_unpickle(file("ty")), file("ty"))
    ally_labels = _onehot_labels(_unpickle(file("ally")), file("ally"))
    graph = _unpickle(file("graph"))
    if not isinstance(graph, dict):
        raise ValueError(f"{file('graph')} must hold a dict of adjacency lists, got {type(graph).__name__}")
    test_index = _read_test_index(file("test.index"))
    if tx.shape[0] != test_index.size or ty_labels.size != test_index.size:
        raise ValueError(
            f"{file('tx')} has {tx.shape[0]} rows and {file('ty')} {ty_labels.size}, "
            f"but {file('test.index')} lists {test_index.size} test nodes"
        )
    n_known = ally_labels.size
    if test_index.min() < n_known:
        raise ValueError(f"{file('test.index')} lists node ids below {n_known}, which {file('ally')} already covers")
    if f"ind.{name}.allx" in paths:
        head = sp.csr_matrix(_unpickle(file("allx")), dtype=np.float64)
        if head.shape[0] != n_known:
            raise ValueError(f"{file('allx')} has {head.shape[0]} rows, {file('ally')} has {n_known}")
    else:
        head = sp.csr_matrix(_unpickle(file("x")), dtype=np.float64)
        if head.shape[0] > n_known:  # its rows beyond ally would be added onto other nodes' rows
            raise ValueError(
                f"{file('x')} has {head.shape[0]} rows, more than the {n_known} nodes {file('ally')} covers"
            )
        logger.warning(
            "%s: ind.%s.allx is absent; features are known for the %d training rows of x and the %d test rows only",
            name, name, head.shape[0], tx.shape[0],
        )
    if head.shape[1] != tx.shape[1]:
        raise ValueError(
            f"the feature files of {name!r} disagree on the number of columns ({head.shape[1]} vs {tx.shape[1]})"
        )

    try:
        keys = np.fromiter(graph, dtype=np.int64, count=len(graph))
        rows = np.fromiter((u for u, nbrs in graph.items() for _ in nbrs), dtype=np.int64)
        cols = np.fromiter((v for nbrs in graph.values() for v in nbrs), dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{file('graph')} must map node ids to lists of node ids: {exc}") from exc
    n = max(int(keys.max(initial=-1)) + 1, int(test_index.max()) + 1, n_known)
    feature_rows = np.concatenate([np.arange(head.shape[0]), test_index])
    features = _place_rows(sp.vstack([head, tx]).tocsr(), feature_rows, n)
    missing = np.setdiff1d(np.arange(n), feature_rows)
    labels = np.full(n, -1, dtype=np.int64)
    labels[:n_known] = ally_labels
    labels[test_index] = ty_labels

    if rows.size and (min(rows.min(), cols.min()) < 0 or max(rows.max(), cols.max()) >= n):
        raise ValueError(f"{file('graph')} holds node ids outside [0, {n})")
    a = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    a = ((a + a.T) > 0).astype(np.float64).tocsr()
    name_out = card.name if card is not None else name
    return AttributedGraph(a, features, labels, name=name_out, meta={"missing_feature_rows": missing})


# --------------------------------------------------------------------------------------------
# S2CAG .mat
# --------------------------------------------------------------------------------------------


@register_format("s2cag-mat")
def read_s2cag_mat(paths: dict[str, Path], card: DatasetCard | None, *, label_base: int) -> AttributedGraph:
    """A MATLAB file with keys ``W`` (n, n adjacency), ``fea`` (n, d features), ``gnd`` (n labels).

    The layout of the attributed-graph clustering repositories (AGC, SAGSC, S2CAG; Fettal et al.
    and Lin et al.). ``W`` is kept exactly as stored (weights and self-loops included) and must be
    symmetric; ``gnd`` (shape (1, n) or (n, 1)) is shifted by ``label_base`` to 0-based labels.

    Parameters
    ----------
    label_base : {0, 1}
        The smallest class id used by ``gnd`` in this file (ACM: 0; Citeseer, Wiki: 1).
    """
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    path = _only_file(paths, "s2cag-mat")
    if label_base not in (0, 1):
        raise ValueError(f"label_base must be 0 or 1, got {label_base!r}")
    try:
        mat = loadmat(path)
    except (ValueError, TypeError, OSError, NotImplementedError, MatReadError) as exc:
        raise ValueError(f"{path} is not a readable MATLAB file: {exc}") from exc
    missing = [k for k in ("W", "fea", "gnd") if k not in mat]
    if missing:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path} lacks the key(s) {missing}; found {found}, expected W, fea and gnd")
    a = _check_symmetric(sp.csr_matrix(mat["W"], dtype=np.float64), str(path))
    gnd = _integer_labels(mat["gnd"], f"gnd in {path}")
    if gnd.size and gnd.min() < label_base:
        raise ValueError(f"gnd in {path} holds class {gnd.min()} below label_base={label_base}")
    features = _as_features(mat["fea"], str(path))
    return AttributedGraph(a, features, gnd - label_base, name=_graph_name(card, path))


# --------------------------------------------------------------------------------------------
# gnn-benchmark .npz
# --------------------------------------------------------------------------------------------


def _npz_csr(data, prefix: str, path: Path) -> sp.csr_matrix:
    keys = [f"{prefix}_{k}" for k in ("data", "indices", "indptr", "shape")]
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"{path} lacks {missing}; a CSR block needs {keys}")
    try:
        m = sp.csr_matrix((data[keys[0]], data[keys[1]], data[keys[2]]), shape=tuple(data[keys[3]]))
        m.check_format(full_check=True)  # column ids in range: scipy's kernels do not check them
        return m
    except ValueError as exc:
        raise ValueError(f"{path}: the {prefix}_* arrays do not form a valid CSR matrix: {exc}") from exc


def _npz_labels(data, path: Path) -> np.ndarray | None:
    if "labels" in data:
        return _integer_labels(data["labels"], f"labels in {path}")
    if "labels_data" in data:
        onehot = _npz_csr(data, "labels", path)
        if (np.diff(onehot.indptr) > 1).any():
            raise ValueError(f"{path} holds multi-label rows; an AttributedGraph takes one class per node")
        labels = np.full(onehot.shape[0], -1, dtype=np.int64)
        has = np.diff(onehot.indptr) == 1
        labels[has] = onehot.indices[onehot.indptr[:-1][has]]
        return labels
    return None


@register_format("gnnbench-npz")
def read_gnnbench_npz(paths: dict[str, Path], card: DatasetCard | None) -> AttributedGraph:
    """A graph in the ``.npz`` layout of gnn-benchmark (Shchur et al., "Pitfalls of GNN evaluation", 2018).

    Keys: ``adj_{data,indices,indptr,shape}`` (CSR adjacency, possibly directed), node attributes
    as ``attr_{data,indices,indptr,shape}`` (CSR) or ``attr_matrix`` (dense), labels as ``labels``
    (n,) or ``labels_{data,indices,indptr,shape}`` (one-hot CSR), optional ``node_names``,
    ``attr_names``, ``class_names`` (kept in ``meta``). The adjacency is symmetrised with
    ``A.maximum(A.T)``; stored self-loops are kept. A file without attributes gets the sparse
    identity as features (``meta["features"] = "identity"``). Object arrays are unpickled, so
    read only checksum-verified files.
    """
    path = _only_file(paths, "gnnbench-npz")
    if not zipfile.is_zipfile(path):  # checked first: np.load would unpickle a non-zip file
        raise ValueError(f"{path} is not a readable .npz archive (not a zip file)")
    try:
        with np.load(path, allow_pickle=True) as npz:
            data = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, pickle.UnpicklingError) as exc:
        raise ValueError(f"{path} is not a readable .npz archive: {exc}") from exc
    a = _npz_csr(data, "adj", path).astype(np.float64)
    if a.shape[0] != a.shape[1]:
        raise ValueError(f"adj_shape in {path} is {a.shape}; expected a square matrix")
    a = a.maximum(a.T).tocsr()
    meta = {k: data[k] for k in ("node_names", "attr_names", "class_names") if k in data}
    if "attr_data" in data:
        features = _npz_csr(data, "attr", path)
    elif "attr_matrix" in data:
        features = _as_features(data["attr_matrix"], str(path))
    else:
        features = sp.identity(a.shape[0], format="csr")
        meta["features"] = "identity"
    return AttributedGraph(a, features, _npz_labels(data, path), name=_graph_name(card, path), meta=meta)


# --------------------------------------------------------------------------------------------
# .npy arrays inside a zip (Awesome Deep Graph Clustering)
# --------------------------------------------------------------------------------------------


def _zip_member(archive: zipfile.ZipFile, member: str, path: Path) -> np.ndarray:
    if member not in archive.namelist():
        raise ValueError(f"{path} has no member {member!r}; members: {archive.namelist()}")
    try:
        with archive.open(member) as fh:
            return np.load(io.BytesIO(fh.read()), allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{path}: member {member!r} is not a readable .npy array: {exc}") from exc


@register_format("npy-zip")
def read_npy_zip(
    paths: dict[str, Path], card: DatasetCard | None, *, adjacency: str, features: str, labels: str
) -> AttributedGraph:
    """A zip holding ``.npy`` members: dense (n, n) adjacency, (n, d) features and (n,) 0-based labels.

    The layout of the Awesome Deep Graph Clustering data sets (Liu et al., 2022), e.g. ``dblp.zip``
    with ``dblp_adj.npy``, ``dblp_feat.npy``, ``dblp_label.npy``. Members are read straight from
    the archive; the adjacency must be symmetric and is stored as CSR.

    Parameters
    ----------
    adjacency, features, labels : str
        Member names inside the archive.
    """
    path = _only_file(paths, "npy-zip")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{path} is not a readable zip archive: {exc}") from exc
    with archive:
        adj = _zip_member(archive, adjacency, path)
        feat = _zip_member(archive, features, path)
        y = _zip_member(archive, labels, path)
    if adj.ndim != 2:
        raise ValueError(f"{path}: {adjacency} must be a 2-d (n, n) array, got shape {adj.shape}")
    a = _check_symmetric(sp.csr_matrix(adj, dtype=np.float64), f"{path}:{adjacency}")
    return AttributedGraph(
        a, _as_features(feat, f"{path}:{features}"), np.asarray(y).ravel(), name=_graph_name(card, path)
    )
