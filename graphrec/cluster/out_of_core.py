"""S2CAG on graphs that do not fit in memory: CSR arrays on disk, read in row chunks.

:class:`DiskAttributedGraph` stores a symmetric adjacency and non-negative sparse attributes as
``.npy`` CSR arrays in a folder (:meth:`DiskAttributedGraph.save`); products read them back one
chunk of rows at a time.
:class:`ChunkedSmoothedRepresentation` applies S2CAG's ``Z`` and ``Z^T`` from those files with
only vectors and thin ``n x r`` blocks in memory:

* ``P`` is never stored: with ``A1 = A + I``, ``D1 = diag(A1 1)``, ``A_sym = D1^{-1/2} A1 D1^{-1/2}``
  and ``D2 = diag((A_sym + I) 1)``, ``P x = D2^{-1} (A_sym x + x)`` and, since ``A`` is symmetric,
  ``P^T x = A_sym D2^{-1} x + D2^{-1} x``: products with the stored ``A`` and diagonal scalings.
* ``X_hat = diag(s) X diag(idf)`` exactly as :func:`~graphrec.cluster.s2cag.normalize_attributes`
  (TF-IDF with scikit-learn's defaults, then the attribute-degree normalisation), with the row
  scaling ``s`` and ``idf`` found in three streaming passes over ``X``.

Every product streams the files once in chunks of about ``chunk_nnz`` non-zeros, so peak memory
is a few ``n x (k + 1 + p)`` blocks plus one chunk, whatever the number of edges. The results equal
the in-memory estimator's up to floating-point order (tested).

Reference: X. Lin, R. Yang, H. Zheng, X. Ke, "Spectral Subspace Clustering for Attributed Graphs",
KDD 2025 (arXiv 2411.11074).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.cluster.s2cag import SmoothedRepresentation, _horner_overflows, _nsr_constant, _scaled_poly
from graphrec.kernels import csr_matmul

__all__ = ["ChunkedSmoothedRepresentation", "DiskAttributedGraph", "DiskCSR"]


class _NpyRows:
    """Slices of a 1-D ``.npy`` file read on demand with ``pread`` (nothing mapped, nothing cached)."""

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as f:
            major, _ = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(f)
            self.offset = f.tell()
        if len(shape) != 1:
            raise ValueError(f"{str(path)!r} must hold a 1-D array, got shape {shape}")
        self.path, self.shape, self.dtype = path, shape, np.dtype(dtype)

    def __getitem__(self, item: slice) -> np.ndarray:
        start, stop, _ = item.indices(self.shape[0])
        count = max(stop - start, 0)
        out = np.empty(count, dtype=self.dtype)
        with open(self.path, "rb", buffering=0) as f:
            f.seek(self.offset + start * self.dtype.itemsize)
            read = f.readinto(memoryview(out).cast("B"))
        if read != out.nbytes:
            raise OSError(f"{str(self.path)!r} is truncated: expected {out.nbytes} bytes at element {start}, got {read}")
        return out


class DiskCSR:
    """A CSR matrix whose ``indptr`` / ``indices`` / ``data`` are ``.npy`` files on disk.

    ``indptr`` (``n + 1`` integers) is held in memory; ``indices`` and ``data`` are read one row
    chunk at a time with plain file reads, so the resident memory is one chunk, not the file.

    Parameters
    ----------
    folder : path
        Holds ``indptr.npy``, ``indices.npy``, ``data.npy`` and ``shape.json`` (see :meth:`save`).
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        missing = [f for f in ("indptr.npy", "indices.npy", "data.npy", "shape.json") if not (folder / f).exists()]
        if missing:
            raise FileNotFoundError(f"{str(folder)!r} is not a DiskCSR folder: missing {', '.join(missing)}")
        self.indptr = np.load(folder / "indptr.npy")
        self.indices = _NpyRows(folder / "indices.npy")
        self.data = _NpyRows(folder / "data.npy")
        self.shape = tuple(json.loads((folder / "shape.json").read_text()))
        if self.indptr.shape != (self.shape[0] + 1,) or self.indices.shape != self.data.shape:
            raise ValueError(f"{str(folder)!r}: CSR arrays do not match the stored shape {self.shape}")

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    @staticmethod
    def save(matrix: sp.spmatrix, folder: str | os.PathLike) -> "DiskCSR":
        """Write ``matrix`` as CSR files into ``folder`` (created; written atomically as a whole)."""
        folder = Path(folder)
        csr = sp.csr_matrix(matrix)
        csr.sort_indices()
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            np.save(tmp / "indptr.npy", csr.indptr.astype(np.int64))
            np.save(tmp / "indices.npy", csr.indices)
            np.save(tmp / "data.npy", csr.data)
            (tmp / "shape.json").write_text(json.dumps(list(csr.shape)))
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return DiskCSR(folder)

    def row_chunks(self, chunk_nnz: int) -> Iterator[tuple[int, int, sp.csr_matrix]]:
        """``(start, stop, rows start:stop as an in-memory csr_matrix)`` with about ``chunk_nnz`` non-zeros each."""
        n_rows = self.shape[0]
        start = 0
        while start < n_rows:
            target = int(self.indptr[start]) + chunk_nnz
            stop = int(np.searchsorted(self.indptr, target, side="right")) - 1
            stop = min(max(stop, start + 1), n_rows)
            p0, p1 = int(self.indptr[start]), int(self.indptr[stop])
            chunk = sp.csr_matrix(
                (self.data[p0:p1], self.indices[p0:p1], self.indptr[start:stop + 1] - p0),
                shape=(stop - start, self.shape[1]),
            )
            yield start, stop, chunk
            start = stop

    def matmul(self, x: np.ndarray, chunk_nnz: int) -> np.ndarray:
        """``self @ x`` for a dense ``x`` of shape (n_cols, r), one chunk of rows at a time."""
        out = np.empty((self.shape[0], x.shape[1]), dtype=np.result_type(self.data.dtype, x.dtype))
        for start, stop, chunk in self.row_chunks(chunk_nnz):
            out[start:stop] = csr_matmul(chunk, x)
        return out

    def rmatmul(self, h: np.ndarray, chunk_nnz: int) -> np.ndarray:
        """``self^T @ h`` for a dense ``h`` of shape (n_rows, r), accumulated over row chunks."""
        out = np.zeros((self.shape[1], h.shape[1]), dtype=np.result_type(self.data.dtype, h.dtype))
        for start, stop, chunk in self.row_chunks(chunk_nnz):
            out += csr_matmul(chunk.T.tocsr(), h[start:stop])
        return out


class DiskAttributedGraph:
    """An attributed graph on disk: ``adjacency/`` and ``features/`` DiskCSR folders, optional ``labels.npy``.

    Attributes
    ----------
    adjacency : DiskCSR, shape (n, n), symmetric, non-negative
    features : DiskCSR, shape (n, d), non-negative
    labels : ndarray of shape (n,) or None
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        self.folder = folder
        self.adjacency = DiskCSR(folder / "adjacency")
        self.features = DiskCSR(folder / "features")
        labels = folder / "labels.npy"
        self.labels = np.load(labels) if labels.exists() else None
        n = self.adjacency.shape[0]
        if self.adjacency.shape != (n, n):
            raise ValueError(f"adjacency must be square, got shape {self.adjacency.shape}")
        if self.features.shape[0] != n:
            raise ValueError(f"features have {self.features.shape[0]} rows but the adjacency has {n} nodes")

    @property
    def n_nodes(self) -> int:
        return self.adjacency.shape[0]

    @staticmethod
    def save(graph: Any, folder: str | os.PathLike) -> "DiskAttributedGraph":
        """Write an in-memory graph (AttributedGraph, PyG ``Data`` or ``(adjacency, features)``) to ``folder``."""
        from graphrec.datasets.graph import as_attributed_graph

        g = as_attributed_graph(graph)
        if sp.issparse(g.features):
            negative = g.features.nnz and g.features.data.min() < 0
        else:
            negative = np.asarray(g.features).min(initial=0) < 0
        if negative:
            raise ValueError("out-of-core S2CAG supports non-negative attributes only (the TF-IDF path)")
        folder = Path(folder)
        DiskCSR.save(g.adjacency, folder / "adjacency")
        DiskCSR.save(sp.csr_matrix(g.features, dtype=np.float64), folder / "features")
        if g.labels is not None:
            np.save(folder / "labels.npy", np.asarray(g.labels))
        return DiskAttributedGraph(folder)


class ChunkedSmoothedRepresentation:
    """S2CAG's ``Z = c sum_t alpha^t P^t X_hat`` applied from a :class:`DiskAttributedGraph` (module docs).

    Offers what :func:`~graphrec.cluster.s2cag.s2cag_embedding` needs of an operator (``n``,
    ``d``, ``matmat``, ``rmatmat``, ...) for the ``"implicit"`` solver.

    Parameters
    ----------
    graph : DiskAttributedGraph
    T : int
    alpha : float
    chunk_nnz : int, default=2**22
        Non-zeros read per chunk (about 50 MB of float64 data and int32 indices).
    """

    can_materialize = False

    def __init__(self, graph: DiskAttributedGraph, T: int, alpha: float, chunk_nnz: int = 2**22) -> None:
        self.graph, self.T, self.alpha, self.chunk_nnz = graph, T, alpha, chunk_nnz
        self.n, self.d = graph.features.shape
        self.device, self.dtype, self.row_scale = torch.device("cpu"), torch.float64, None
        self.c = _nsr_constant(T, alpha)
        a = graph.adjacency
        self.nnz_p = a.nnz + 2 * self.n
        self.nnz_x = graph.features.nnz
        ones = np.ones((self.n, 1))
        self._inv_sqrt = (a.matmul(ones, chunk_nnz)[:, 0] + 1.0) ** -0.5  # D1^{-1/2}, D1 >= 1
        self._inv_d2 = 1.0 / (self._a_sym(ones)[:, 0] + 1.0)
        self._idf, self._row = self._attribute_scalings()

    def _a_sym(self, x: np.ndarray) -> np.ndarray:
        """``D1^{-1/2} (A + I) D1^{-1/2} x``."""
        y = self._inv_sqrt[:, None] * x
        return self._inv_sqrt[:, None] * (self.graph.adjacency.matmul(y, self.chunk_nnz) + y)

    def _p(self, x: np.ndarray) -> np.ndarray:
        return self._inv_d2[:, None] * (self._a_sym(x) + x)

    def _pt(self, x: np.ndarray) -> np.ndarray:
        y = self._inv_d2[:, None] * x
        return self._a_sym(y) + y

    def _attribute_scalings(self) -> tuple[np.ndarray, np.ndarray]:
        """``idf`` (d,) and the row scaling (n,) with ``X_hat = diag(row) X diag(idf)``."""
        x = self.graph.features
        df = np.zeros(self.d)
        for _, _, chunk in x.row_chunks(self.chunk_nnz):
            if chunk.nnz and chunk.data.min() < 0:
                raise ValueError("out-of-core S2CAG supports non-negative attributes only (the TF-IDF path)")
            df += np.bincount(chunk.indices, minlength=self.d)
        idf = np.log((1.0 + self.n) / (1.0 + df)) + 1.0  # scikit-learn's smooth idf
        norm = np.zeros(self.n)
        colsum = np.zeros(self.d)
        for start, stop, chunk in x.row_chunks(self.chunk_nnz):
            tfidf = chunk @ sp.diags(idf)
            norm[start:stop] = np.sqrt(np.asarray(tfidf.multiply(tfidf).sum(axis=1)).ravel())
            inv = np.divide(1.0, norm[start:stop], out=np.zeros(stop - start), where=norm[start:stop] > 0)
            colsum += np.asarray((sp.diags(inv) @ tfidf).sum(axis=0)).ravel()
        inv_norm = np.divide(1.0, norm, out=np.zeros(self.n), where=norm > 0)
        delta = inv_norm * x.matmul((idf * colsum)[:, None], self.chunk_nnz)[:, 0]
        delta[delta == 0] = 1.0
        return idf, inv_norm / np.sqrt(delta)

    def _poly(self, op, h: np.ndarray) -> np.ndarray:
        if _horner_overflows(self.T, self.alpha, self.dtype):
            return _scaled_poly(op, h, self.T, self.alpha, np.copy)
        r = h
        for _ in range(self.T):
            r = self.alpha * op(r) + h
        return self.c * r

    with_row_scale = SmoothedRepresentation.with_row_scale  # a shallow copy for diag(row_scale) Z

    def matmat(self, g: torch.Tensor) -> torch.Tensor:
        """``Z @ g`` for ``g`` of shape (d, r)."""
        xg = self._row[:, None] * self.graph.features.matmul(self._idf[:, None] * g.numpy(), self.chunk_nnz)
        out = torch.from_numpy(self._poly(self._p, xg))
        return out if self.row_scale is None else self.row_scale[:, None] * out

    def rmatmat(self, h: torch.Tensor) -> torch.Tensor:
        """``Z^T @ h`` for ``h`` of shape (n, r)."""
        if self.row_scale is not None:
            h = self.row_scale[:, None] * h
        ph = self._row[:, None] * self._poly(self._pt, h.numpy())
        return torch.from_numpy(self._idf[:, None] * self.graph.features.rmatmul(ph, self.chunk_nnz))
