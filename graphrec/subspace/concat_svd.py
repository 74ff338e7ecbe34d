"""Concatenated-matrix SVD: error bounds, the incremental approximation, and error-constrained clustering.

For blocks ``A_1 ... A_k`` (each ``(m, w_i)``) and their concatenation ``M = [A_1 ... A_k]`` the
relative rank-``r`` error is

    err_r(M)^2 = (||M||_F^2 - sum_{i<=r} sigma_i(M)^2) / ||M||_F^2.

Upper bounds on it that never form the SVD of ``M`` come from lower bounds on the Ky-Fan energy
``sum_{i<=r} sigma_i(M)^2 = max_{rank-r projections P} ||P M||_F^2``:

- ``weyl``: ``sigma_i(M) >= sigma_i(A_j)`` for every ``j``, and the largest-norm blocks whose widths
  fit in ``r`` span at most ``r`` dimensions, so their energy is reachable;
- ``residual``: with blocks ordered by norm and ``R_j = (I - Q Q^T) A_j``, the top-``r`` of the counted
  singular values of all ``R_j`` (``R_1 = A_1``) are energies of mutually orthogonal left directions,
  hence reachable. ``Q`` collects the left singular vectors counted so far; counting only the leading
  directions of each residual (99.9% of its energy) instead of all of its columns keeps noise
  directions out of ``Q`` and the bound tight (the notes' "basis of all columns seen" variant counts
  every direction but projects later blocks onto earlier blocks' noise);
- ``incremental``: Brand's truncated incremental SVD (:class:`graphrec.core.IncrementalSVD`) keeps
  rank ``r`` after every block; its energy is reachable too, and is usually close to the truth.

Error-constrained clustering greedily grows a cluster from the largest unassigned block, adding the
unassigned block with the smallest residual outside the cluster's rank-``r`` subspace while the
cluster's (bounded or exact) error stays ``<= eps``. With ``n_clusters`` the clusters are then merged
pairwise, cheapest increase of unexplained energy first (a Ward-like rule), down to ``n_clusters``.
Merging gives up the ``eps`` guarantee, and a greedy merge cannot move a block that joined the wrong
cluster early, so the merged partition is then refined by K-subspaces (Lloyd) sweeps on the same
objective, the total unexplained rank-``r`` energy ``sum_c (||M_c||_F^2 - sum_{i<=r} sigma_i(M_c)^2)``:
every block moves to the cluster whose rank-``r`` left basis leaves it the least residual energy,
then the bases are recomputed, until no block moves (each sweep can only lower the objective).

Reference: M. Shamrai, "Concatenated matrix SVD: compression bounds, incremental approximation,
and error-constrained clustering", arXiv 2601.11626 (2026); official code
github.com/mshamrai/concatenated-matrix-svd.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import ClusterMixin

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.core import IncrementalSVD
from graphrec.utils.progress import progress
from graphrec.utils.validation import check_array, check_choice, check_float, check_int

__all__ = ["ErrorConstrainedMatrixClustering", "concat_error", "concat_error_bounds"]

_METHODS = ("exact", "incremental", "residual", "weyl")
#: the residual bound spans (and counts) the directions of each residual holding all but this energy fraction
_RESIDUAL_SPAN_TOL = 1e-3


def _check_blocks(blocks: Any) -> list[np.ndarray]:
    if isinstance(blocks, np.ndarray) or hasattr(blocks, "detach"):
        arr = check_array(blocks, "blocks")
        if arr.ndim == 2:  # (n, m): n blocks of width 1
            return [row[:, None] for row in arr]
        if arr.ndim != 3:
            raise ValueError(f"blocks must be (n, m), (k, m, w) or a list of (m, w_i) arrays, got shape {arr.shape}")
        return list(arr)
    if not isinstance(blocks, Sequence) or len(blocks) == 0:
        raise ValueError("blocks must be a non-empty array or list of (m, w_i) arrays")
    out = [check_array(b, f"blocks[{i}]", ndim=2) for i, b in enumerate(blocks)]
    m = out[0].shape[0]
    for i, b in enumerate(out):
        if b.shape[0] != m or b.shape[1] == 0:
            raise ValueError(f"blocks[{i}] must have shape ({m}, w>=1) like blocks[0], got {b.shape}")
    return out


def _ratio(total: float, kept: float) -> float:
    return float(np.sqrt(max(total - kept, 0.0) / total)) if total > 0 else 0.0


def _topr_energy(s: np.ndarray, r: int) -> float:
    return float(np.sum(np.sort(s)[::-1][:r] ** 2))


def concat_error(blocks: Any, rank: int) -> float:
    """Exact relative rank-``rank`` error ``err_r([A_1 ... A_k])`` (see module docs).

    >>> import numpy as np
    >>> concat_error([np.eye(3)[:, :1], np.eye(3)[:, 1:]], 1)  # singular values 1, 1, 1
    0.816496580927726
    """
    return _exact_error(_check_blocks(blocks), check_int(rank, "rank", low=1))


def _exact_error(bl: list[np.ndarray], r: int) -> float:
    s = np.linalg.svd(np.concatenate(bl, axis=1), compute_uv=False)
    return _ratio(float(np.sum(s**2)), _topr_energy(s, r))


def concat_error_bounds(blocks: Any, rank: int) -> dict[str, float]:
    """Exact error and the ``weyl``, ``residual`` (upper bounds) and ``incremental`` estimates.

    Parameters
    ----------
    blocks : list of ndarray (m, w_i), ndarray (k, m, w), or ndarray (n, m) (width-1 blocks)
    rank : int >= 1

    Returns
    -------
    dict with keys ``"exact"``, ``"weyl"``, ``"residual"``, ``"incremental"``; the last three are all
    ``>= exact`` up to rounding.
    """
    bl = _check_blocks(blocks)
    r = check_int(rank, "rank", low=1)
    return {"exact": _exact_error(bl, r), **{name: _ESTIMATES[name](bl, r) for name in ("weyl", "residual", "incremental")}}


def _norm_order(bl: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    norms = np.array([float(np.sum(b**2)) for b in bl])
    return norms, np.argsort(-norms, kind="stable")


def _weyl_bound(bl: list[np.ndarray], r: int) -> float:
    norms, order = _norm_order(bl)
    kept, width = 0.0, 0
    for j in order:
        if width + bl[j].shape[1] <= r:
            kept += norms[j]
            width += bl[j].shape[1]
    best_single = max(_topr_energy(np.linalg.svd(b, compute_uv=False), r) for b in bl)
    return _ratio(float(norms.sum()), max(kept, best_single))


def _residual_bound(bl: list[np.ndarray], r: int) -> float:
    norms, order = _norm_order(bl)
    counted, q = [], np.zeros((bl[0].shape[0], 0))
    for j in order:
        u, s, _ = np.linalg.svd(bl[j] - q @ (q.T @ bl[j]), full_matrices=False)
        energy = np.cumsum(s**2)
        keep = int(np.searchsorted(energy, (1 - _RESIDUAL_SPAN_TOL) * energy[-1])) + 1 if energy[-1] > 0 else 0
        counted.append(s[:keep])
        q = np.concatenate([q, u[:, :keep]], axis=1)
    return _ratio(float(norms.sum()), _topr_energy(np.concatenate(counted), r))


def _incremental_estimate(bl: list[np.ndarray], r: int) -> float:
    norms, order = _norm_order(bl)
    inc = IncrementalSVD(max_rank=r)
    for j in order:
        inc.update(torch.as_tensor(bl[j]))
    return _ratio(float(norms.sum()), float((inc.s_**2).sum()))


_ESTIMATES = {"exact": _exact_error, "weyl": _weyl_bound, "residual": _residual_bound, "incremental": _incremental_estimate}


class _Cluster:
    """One growing cluster: its blocks, energy, and current rank-r left basis."""

    def __init__(self, block: np.ndarray, index: int, rank: int) -> None:
        self.members = [index]
        self.blocks = [block]
        self.rank = rank
        self.refresh()

    @classmethod
    def of(cls, blocks: list[np.ndarray], members: list[int], rank: int) -> "_Cluster":
        cluster = cls(blocks[0], members[0], rank)
        cluster.blocks, cluster.members = list(blocks), list(members)
        cluster.refresh()
        return cluster

    def refresh(self) -> None:
        m = np.concatenate(self.blocks, axis=1)
        u, s, _ = np.linalg.svd(m, full_matrices=False)
        self.energy = float(np.sum(s**2))
        self.basis = u[:, : self.rank]
        self.unexplained = max(self.energy - _topr_energy(s, self.rank), 0.0)


def _merge_cost(a: _Cluster, b: _Cluster) -> float:
    """Increase of rank-r unexplained energy when ``a`` and ``b`` are merged."""
    merged = np.concatenate(a.blocks + b.blocks, axis=1)
    s = np.linalg.svd(merged, compute_uv=False)
    return float(np.sum(s**2)) - _topr_energy(s, a.rank) - a.unexplained - b.unexplained


def _k_subspaces(
    bl: list[np.ndarray], columns: np.ndarray, owner: np.ndarray, labels: np.ndarray, r: int, max_iter: int
) -> tuple[np.ndarray, int]:
    """Lloyd sweeps: move every block to the rank-``r`` cluster basis that leaves it least residual energy.

    Stops when no block moves, after ``max_iter`` sweeps, or before a sweep that would empty a cluster.
    Returns the labels and the number of sweeps that moved blocks.
    """
    k = int(labels.max()) + 1
    for sweep in range(max_iter):
        residual = np.empty((len(bl), k))
        for c in range(k):
            basis = np.linalg.svd(np.concatenate([bl[i] for i in np.flatnonzero(labels == c)], axis=1),
                                  full_matrices=False)[0][:, :r]
            res = columns - basis @ (basis.T @ columns)
            residual[:, c] = np.bincount(owner, weights=np.sum(res**2, axis=0), minlength=len(bl))
        # keep the current cluster on ties, so a sweep moves a block only when it strictly gains
        best = np.where(residual[np.arange(len(bl)), labels] <= residual.min(1), labels, residual.argmin(1))
        if np.array_equal(best, labels) or np.unique(best).size < k:
            return labels, sweep
        labels = best
    return labels, max_iter


class ErrorConstrainedMatrixClustering(ClusterMixin, GraphrecEstimator):
    """Greedy clustering of matrix blocks so that every cluster's concatenation has rank-``rank`` error ``<= eps``.

    Parameters
    ----------
    rank : int, default=10
        Target rank ``r`` of every cluster's concatenation.
    eps : float, default=0.05
        Largest allowed relative error ``err_r`` of a cluster (before any merging).
    method : {"exact", "incremental", "residual", "weyl"}, default="exact"
        How a candidate cluster's error is predicted; ``residual`` and ``weyl`` are upper bounds, so
        their clusters meet ``eps`` for sure; ``incremental`` tracks a rank-``r`` Brand update.
    n_clusters : int or None, default=None
        If set, merge the error-constrained clusters down to this many (Ward-like, see module docs).
    refine_iter : int, default=30
        Cap on the K-subspaces sweeps that refine the merged clusters (only with ``n_clusters``;
        ``0`` keeps the greedy merge as it is).
    verbose : bool, default=False
        Progress bar over the assigned blocks. (The algorithm is deterministic and runs in numpy.)

    Attributes
    ----------
    labels_ : ndarray (k,)
        Cluster of every block.
    cluster_errors_ : ndarray (n_clusters_,)
        Exact ``err_r`` of every final cluster.
    n_clusters_ : int
    n_constrained_clusters_ : int
        Clusters before merging.
    n_refine_iter_ : int
        K-subspaces sweeps that moved at least one block.

    Examples
    --------
    >>> from graphrec.datasets.generators import make_union_of_subspaces
    >>> X, y = make_union_of_subspaces(60, 3, 10, 2, random_state=0)
    >>> est = ErrorConstrainedMatrixClustering(rank=2, eps=1e-6).fit(X)  # rows = width-1 blocks
    >>> est.n_clusters_, bool(est.cluster_errors_.max() <= 1e-6)
    (3, True)
    """

    def __init__(
        self,
        rank: int = 10,
        *,
        eps: float = 0.05,
        method: str = "exact",
        n_clusters: int | None = None,
        refine_iter: int = 30,
        verbose: bool = False,
    ) -> None:
        self.rank = rank
        self.eps = eps
        self.method = method
        self.n_clusters = n_clusters
        self.refine_iter = refine_iter
        self.verbose = verbose

    def fit(self, blocks: Any, y: None = None) -> "ErrorConstrainedMatrixClustering":
        """Cluster ``blocks``: a list of ``(m, w_i)`` arrays, an ``(k, m, w)`` array, or ``(n, m)`` rows."""
        r = check_int(self.rank, "rank", low=1)
        eps = check_float(self.eps, "eps", low=0.0, high=1.0)
        method = check_choice(self.method, "method", _METHODS)
        refine_iter = check_int(self.refine_iter, "refine_iter", low=0)
        bl = _check_blocks(blocks)
        if self.n_clusters is not None:
            check_int(self.n_clusters, "n_clusters", low=1, high=len(bl))
        norms, order = _norm_order(bl)
        columns = np.concatenate(bl, axis=1)  # (m, total width); residuals of all blocks at once
        owner = np.repeat(np.arange(len(bl)), [b.shape[1] for b in bl])
        free = np.ones(len(bl), dtype=bool)
        clusters: list[_Cluster] = []
        bar = progress(total=len(bl), verbose=self.verbose, desc="clustering")
        for seed in order:
            if not free[seed]:
                continue
            free[seed] = False
            cluster = _Cluster(bl[seed], int(seed), r)
            clusters.append(cluster)
            bar.update(1)
            while free.any():
                res = columns - cluster.basis @ (cluster.basis.T @ columns)
                rel = np.bincount(owner, weights=np.sum(res**2, axis=0), minlength=len(bl)) / np.maximum(norms, 1e-300)
                j = int(np.argmin(np.where(free, rel, np.inf)))
                if _ESTIMATES[method]([*cluster.blocks, bl[j]], r) > eps:
                    break
                cluster.blocks.append(bl[j])
                cluster.members.append(j)
                cluster.refresh()
                free[j] = False
                bar.update(1)
        bar.close()
        self.n_constrained_clusters_ = len(clusters)
        target = len(clusters) if self.n_clusters is None else int(self.n_clusters)
        costs = {(a, b): _merge_cost(clusters[a], clusters[b]) for a in range(len(clusters)) for b in range(a + 1, len(clusters))}
        alive = set(range(len(clusters)))
        while len(alive) > target:
            a, b = min(costs, key=costs.get)
            clusters[a].blocks += clusters[b].blocks
            clusters[a].members += clusters[b].members
            clusters[a].refresh()
            alive.discard(b)
            costs = {k: v for k, v in costs.items() if a not in k and b not in k}
            for c in alive - {a}:
                costs[(min(a, c), max(a, c))] = _merge_cost(clusters[min(a, c)], clusters[max(a, c)])
        clusters = [clusters[c] for c in sorted(alive)]
        labels = np.empty(len(bl), dtype=np.int64)
        for c, cluster in enumerate(clusters):
            labels[cluster.members] = c
        self.n_refine_iter_ = 0
        if self.n_clusters is not None and refine_iter > 0:
            labels, self.n_refine_iter_ = _k_subspaces(bl, columns, owner, labels, r, refine_iter)
            members = [np.flatnonzero(labels == c).tolist() for c in range(len(clusters))]
            clusters = [_Cluster.of([bl[i] for i in m], m, r) for m in members]
        self.labels_ = labels
        self.n_clusters_ = len(clusters)
        self.cluster_errors_ = np.array([_ratio(cl.energy, cl.energy - cl.unexplained) for cl in clusters])
        return self


def _points(seed: int) -> tuple:
    from graphrec.datasets.generators import make_union_of_subspaces

    return (make_union_of_subspaces(40, 2, 8, 2, noise=0.01, random_state=seed)[0],)


register_estimator(
    "ErrorConstrainedMatrixClustering",
    EstimatorSpec(
        factory=lambda: ErrorConstrainedMatrixClustering(rank=2, eps=0.05, n_clusters=2),
        make_input=_points,
        output=lambda est, args: est.labels_,
        bad_inputs={
            "nan": lambda: (np.full((5, 3), np.nan),),
            "4-d": lambda: (np.ones((2, 2, 2, 2)),),
            "empty list": lambda: ([],),
            "row mismatch": lambda: ([np.ones((3, 2)), np.ones((4, 2))],),
            "too many clusters": lambda: (np.ones((1, 3)),),
        },
    ),
)
