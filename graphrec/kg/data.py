"""Reciprocal triples, query groups and device-side 1-N training batches for KG link prediction.

The protocol of ConvE / TuckER / LowFER: every triple ``(h, r, t)`` is also added reversed as
``(t, r + n_relations, h)``, so that predicting heads becomes predicting tails of the reciprocal
relation and a model only ever scores ``(subject, relation) -> all entities``.

Training batches (Dettmers et al., AAAI 2018; Balazevic et al., EMNLP 2019, "1-N scoring"):

* ``"kvsall"``: one row per distinct query ``(s, r)``, labelled with *all* its known tails
  (multi-hot over the entities), as in the official TuckER / LowFER code;
* ``"1vsall"``: one row per triple, labelled with its single tail.

A batch is ``(subjects, relations, rows, cols)``: the ``b`` queries and the ``(row, entity)``
positions of the positive labels. Everything is built with tensor operations on the device that
trains, so no dense ``b x n_entities`` target is built on the host (the official code does that
per batch; see ``shared/papers/lowfer_funbat.md``, pitfall 8).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from graphrec.datasets.triples import Triples
from graphrec.train.batching import batch_bounds

__all__ = ["QueryGroups", "check_triples", "group_queries", "kvsall_batches", "onevsall_batches", "reciprocal"]


def check_triples(triples: Triples, name: str = "triples") -> None:
    """Raise a clear error unless ``triples`` is a :class:`Triples` with valid, duplicate-free splits.

    ``Triples`` checks ids when it is built; this re-checks them (the arrays may have been replaced
    since) and rejects duplicates, inside a split and across splits (a test triple that is also a
    training triple would leak the answer).
    """
    if not isinstance(triples, Triples):
        raise TypeError(f"{name} must be a graphrec.datasets.Triples, got {type(triples).__name__}")
    splits = ("train", "valid", "test")
    for split in splits:
        arr = getattr(triples, split)
        if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.shape[1] != 3:
            raise ValueError(f"{name}.{split} must be an array of shape (n, 3), got {getattr(arr, 'shape', arr)!r}")
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name}.{split} must hold integer ids, got dtype {arr.dtype}")
        if split == "train" and arr.shape[0] == 0:
            raise ValueError(f"{name}.train is empty; link prediction needs training triples")
        if arr.size == 0:
            continue
        ents, rels = arr[:, [0, 2]], arr[:, 1]
        if ents.min() < 0 or ents.max() >= triples.n_entities:
            raise ValueError(
                f"{name}.{split} holds entity ids in [{ents.min()}, {ents.max()}]; expected [0, {triples.n_entities})"
            )
        if rels.min() < 0 or rels.max() >= triples.n_relations:
            raise ValueError(
                f"{name}.{split} holds relation ids in [{rels.min()}, {rels.max()}]; expected [0, {triples.n_relations})"
            )
    arrays = [np.asarray(getattr(triples, split), dtype=np.int64).reshape(-1, 3) for split in splits]
    _, inverse, counts = np.unique(np.concatenate(arrays), axis=0, return_inverse=True, return_counts=True)
    repeated = np.flatnonzero(counts[inverse.ravel()] > 1)
    if repeated.size:
        split_of = np.repeat(np.arange(3), [len(a) for a in arrays])
        rows = repeated[inverse.ravel()[repeated] == inverse.ravel()[repeated[0]]]
        where = [splits[i] for i in split_of[rows]]
        triple = tuple(int(v) for v in np.concatenate(arrays)[rows[0]])
        if len(set(where)) == 1:
            raise ValueError(f"{name}.{where[0]} holds the triple {triple} more than once")
        raise ValueError(f"the triple {triple} is in both {name}.{where[0]} and {name}.{where[-1]}")


def reciprocal(triples: np.ndarray, n_relations: int) -> np.ndarray:
    """``triples`` followed by their reversals ``(t, r + n_relations, h)``.

    Parameters
    ----------
    triples : (m, 3) int64 array of ``(head, relation, tail)``, relations in ``[0, n_relations)``.
    n_relations : int
        Number of original relations.

    Returns
    -------
    (2m, 3) int64 array; relation ids in ``[0, 2 * n_relations)``.

    Examples
    --------
    >>> reciprocal(np.array([[0, 1, 2]]), n_relations=3).tolist()
    [[0, 1, 2], [2, 4, 0]]
    """
    triples = np.asarray(triples, dtype=np.int64).reshape(-1, 3)
    reverse = np.stack([triples[:, 2], triples[:, 1] + n_relations, triples[:, 0]], axis=1)
    return np.concatenate([triples, reverse])


@dataclass
class QueryGroups:
    """Triples grouped by query ``(subject, relation)``, in CSR form.

    Attributes
    ----------
    queries : (q, 2) int64, distinct ``(subject, relation)`` pairs sorted by ``subject * n_rel + relation``.
    indptr : (q + 1,) int64; ``indices[indptr[i]:indptr[i + 1]]`` are the tails of query ``i``.
    indices : (nnz,) int64, sorted tail ids within each query.
    n_relations : int, the size of the relation id space the keys are computed with.
    """

    queries: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    n_relations: int

    def lookup(self, subjects: np.ndarray, relations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """CSR ``(indptr, indices)`` of the known tails of each given query (empty if unknown).

        Returns a fresh ``indptr`` of length ``len(subjects) + 1`` starting at 0, ready for
        :func:`graphrec.metrics.filtered_ranks` / :func:`graphrec.kernels.topk_exclude`.
        """
        keys = self.queries[:, 0] * self.n_relations + self.queries[:, 1]
        want = np.asarray(subjects, np.int64) * self.n_relations + np.asarray(relations, np.int64)
        pos = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
        found = keys[pos] == want
        starts = np.where(found, self.indptr[pos], 0)
        counts = np.where(found, self.indptr[pos + 1] - self.indptr[pos], 0)
        indptr = np.zeros(len(want) + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        offsets = np.arange(indptr[-1]) - np.repeat(indptr[:-1], counts)
        indices = self.indices[np.repeat(starts, counts) + offsets]
        return indptr, indices


def group_queries(triples: np.ndarray, n_relations: int) -> QueryGroups:
    """Group ``(s, r, o)`` triples by query ``(s, r)`` (duplicate triples are counted once).

    Parameters
    ----------
    triples : (m, 3) int64 array, relation ids in ``[0, n_relations)``.
    n_relations : int, size of the relation id space (``2 * n_r`` for reciprocal triples).

    Examples
    --------
    >>> g = group_queries(np.array([[0, 0, 3], [0, 0, 1], [2, 1, 0]]), n_relations=2)
    >>> g.queries.tolist(), g.indptr.tolist(), g.indices.tolist()
    ([[0, 0], [2, 1]], [0, 2, 3], [1, 3, 0])
    """
    triples = np.unique(np.asarray(triples, dtype=np.int64).reshape(-1, 3), axis=0)  # sorted by (s, r, o)
    keys = triples[:, 0] * n_relations + triples[:, 1]
    unique_keys, starts = np.unique(keys, return_index=True)
    indptr = np.append(starts, len(keys)).astype(np.int64)
    queries = np.stack([unique_keys // n_relations, unique_keys % n_relations], axis=1)
    return QueryGroups(queries, indptr, triples[:, 2].copy(), int(n_relations))


class _KvsAllBatches:
    """One epoch of K-vs-all batches; see :func:`kvsall_batches`."""

    def __init__(self, queries: torch.Tensor, query_of_label: torch.Tensor, label_tails: torch.Tensor,
                 batch_size: int, generator: torch.Generator | None, min_rows: int) -> None:
        self._queries, self._query_of_label, self._label_tails = queries, query_of_label, label_tails
        self._batch_size, self._generator, self._min_rows = batch_size, generator, min_rows

    def __len__(self) -> int:
        return len(batch_bounds(self._queries.shape[0], self._batch_size, self._min_rows)) - 1

    def with_generator(self, generator: torch.Generator | None) -> "_KvsAllBatches":
        """The same device data, shuffled by ``generator`` (nothing is copied)."""
        return _KvsAllBatches(self._queries, self._query_of_label, self._label_tails, self._batch_size, generator,
                              self._min_rows)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        q, device = self._queries.shape[0], self._queries.device
        starts = batch_bounds(q, self._batch_size, self._min_rows)
        draw_on = self._generator.device if self._generator is not None else device
        perm = torch.randperm(q, generator=self._generator, device=draw_on).to(device)
        position = torch.empty_like(perm)
        position[perm] = torch.arange(q, device=device)
        label_position = position[self._query_of_label]          # where each label's query sits
        order = torch.argsort(label_position)
        label_position, label_tails = label_position[order], self._label_tails[order]
        bounds = torch.searchsorted(label_position, torch.tensor(starts, device=device))
        bounds = bounds.tolist()                                   # one host sync per epoch
        for i in range(len(starts) - 1):
            start = starts[i]
            batch = perm[start : starts[i + 1]]
            lo, hi = bounds[i], bounds[i + 1]
            rows = label_position[lo:hi] - start
            yield self._queries[batch, 0], self._queries[batch, 1], rows, label_tails[lo:hi]


def kvsall_batches(groups: QueryGroups, batch_size: int, *, device: torch.device | str = "cpu",
                   generator: torch.Generator | None = None, min_rows: int = 2) -> _KvsAllBatches:
    """K-vs-all batches over the distinct queries of ``groups``, shuffled once per pass.

    Parameters
    ----------
    groups : QueryGroups of the (reciprocal) training triples.
    batch_size : int, queries per batch.
    device : where the batches live (the data is copied there once).
    generator : torch.Generator shuffling the queries (``None``: the global RNG of ``device``).
    min_rows : int, a last batch of fewer queries joins the one before it (training-mode batch norm
        needs 2 rows; ``2 * world_size`` when the batches are sharded over ranks).

    Returns
    -------
    An iterable (with ``len``) of ``(subjects (b,), relations (b,), rows (p,), cols (p,))``: the
    positives of the batch are the entries ``(rows[j], cols[j])`` of its ``b x n_entities`` label
    matrix. Every query appears exactly once per pass, with all its tails.
    ``.with_generator(g)`` returns the same device data shuffled by ``g`` (one copy per ``fit``).
    """
    device = torch.device(device)
    counts = np.diff(groups.indptr)
    queries = torch.as_tensor(groups.queries, device=device)
    query_of_label = torch.as_tensor(np.repeat(np.arange(len(counts)), counts), device=device)
    tails = torch.as_tensor(groups.indices, device=device)
    return _KvsAllBatches(queries, query_of_label, tails, int(batch_size), generator, int(min_rows))


class _OneVsAllBatches:
    """One epoch of 1-vs-all batches; see :func:`onevsall_batches`."""

    def __init__(self, triples: torch.Tensor, batch_size: int, generator: torch.Generator | None,
                 min_rows: int) -> None:
        self._triples, self._batch_size, self._generator, self._min_rows = triples, batch_size, generator, min_rows

    def __len__(self) -> int:
        return len(batch_bounds(self._triples.shape[0], self._batch_size, self._min_rows)) - 1

    def with_generator(self, generator: torch.Generator | None) -> "_OneVsAllBatches":
        """The same device data, shuffled by ``generator`` (nothing is copied)."""
        return _OneVsAllBatches(self._triples, self._batch_size, generator, self._min_rows)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        m, device = self._triples.shape[0], self._triples.device
        draw_on = self._generator.device if self._generator is not None else device
        perm = torch.randperm(m, generator=self._generator, device=draw_on).to(device)
        starts = batch_bounds(m, self._batch_size, self._min_rows)
        for start, stop in zip(starts[:-1], starts[1:]):
            batch = self._triples[perm[start:stop]]
            yield batch[:, 0], batch[:, 1], torch.arange(batch.shape[0], device=device), batch[:, 2]


def onevsall_batches(triples: np.ndarray, batch_size: int, *, device: torch.device | str = "cpu",
                     generator: torch.Generator | None = None, min_rows: int = 2) -> _OneVsAllBatches:
    """1-vs-all batches: one row per (reciprocal) triple, labelled with its single tail.

    Same batch format as :func:`kvsall_batches` (here ``rows = arange(b)``, ``cols`` = the tails);
    a last batch of fewer than ``min_rows`` triples joins the one before it, as there.
    """
    data = torch.as_tensor(np.ascontiguousarray(triples, dtype=np.int64), device=torch.device(device))
    return _OneVsAllBatches(data, int(batch_size), generator, int(min_rows))


def shard_label_batch(batch: tuple[torch.Tensor, ...], rank: int, world_size: int) -> tuple[tuple[torch.Tensor, ...], int, int]:
    """Rank ``rank``'s queries of a 1-N batch ``(subjects, relations, rows, cols)`` with their positives.

    The ``shard_fn`` of :class:`graphrec.train.DistributedTrainer` for :func:`kvsall_batches` and
    :func:`onevsall_batches`: contiguous queries, positives kept where ``rows`` falls among them and
    re-indexed from 0. Returns ``(shard, local_queries, total_queries)``.
    """
    from graphrec.train.distributed import shard_bounds

    subjects, relations, rows, cols = batch
    total = subjects.shape[0]
    start, stop = shard_bounds(total, rank, world_size)
    keep = (rows >= start) & (rows < stop)
    return (subjects[start:stop], relations[start:stop], rows[keep] - start, cols[keep]), stop - start, total
