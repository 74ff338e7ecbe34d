"""Clustering quality: accuracy and macro-F1 after Hungarian matching, NMI and ARI.

Every function takes ``y_true`` and ``y_pred`` of shape ``(n,)``. ``y_true`` holds class labels
``>= 0``, with ``-1`` marking unlabelled nodes: those nodes are dropped from *both* vectors before
scoring, so a clustering of the whole graph can be scored against a partial ground truth.
``y_pred`` holds arbitrary integer cluster ids (``-1`` included, e.g. a noise cluster); the number of
clusters may differ from the number of classes.

Reference: the matched accuracy follows Cai, He & Han, "Document clustering using locality
preserving indexing", IEEE TKDE 17(12), 2005 (the ACC measure), with the optimal one-to-one
cluster-to-class map found by the Hungarian algorithm (Kuhn, 1955).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from graphrec.utils.validation import check_array, check_labels

__all__ = ["ari", "clustering_accuracy", "clustering_report", "f1_macro_matched", "nmi"]


def _labelled_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate both label vectors and drop the nodes whose ``y_true`` is ``-1``."""
    yp = check_array(y_pred, "y_pred", ndim=1, dtype=np.int64, min_rows=0)
    yt = check_array(y_true, "y_true", ndim=1, dtype=np.int64, min_rows=0)
    if yt.shape[0] != yp.shape[0]:
        raise ValueError(f"y_true and y_pred must have the same length, got {yt.shape[0]} and {yp.shape[0]}")
    yt = check_labels(yt, yp.shape[0], "y_true")
    keep = yt >= 0
    if not keep.any():
        raise ValueError("y_true has no labelled node (all are -1 or it is empty); expected at least one label >= 0")
    return yt[keep], yp[keep]


def _contingency(yt: np.ndarray, yp: np.ndarray) -> np.ndarray:
    """Counts ``C[i, j]`` of nodes in predicted cluster ``i`` and class ``j``; shape ``(n_clusters, n_classes)``."""
    _, cls = np.unique(yt, return_inverse=True)
    _, clu = np.unique(yp, return_inverse=True)
    counts = np.zeros((clu.max() + 1, cls.max() + 1), dtype=np.int64)
    np.add.at(counts, (clu, cls), 1)
    return counts


def _matching(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian one-to-one map (cluster rows -> class columns) maximising matched nodes."""
    return linear_sum_assignment(counts, maximize=True)


def clustering_accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of labelled nodes whose cluster maps to their class under the best one-to-one map.

    Parameters
    ----------
    y_true : (n,) int array, class labels ``>= 0``; ``-1`` (unlabelled) nodes are ignored.
    y_pred : (n,) int array, cluster ids.

    Notes
    -----
    With more clusters than classes, nodes in unmatched clusters count as errors; with fewer, the
    unmatched classes are simply never predicted.

    References
    ----------
    Cai, He & Han, IEEE TKDE 2005 (ACC); Kuhn, "The Hungarian method", 1955.
    """
    yt, yp = _labelled_pair(y_true, y_pred)
    counts = _contingency(yt, yp)
    rows, cols = _matching(counts)
    return float(counts[rows, cols].sum() / yt.shape[0])


def f1_macro_matched(y_true: Any, y_pred: Any) -> float:
    """Macro-averaged F1 over the true classes after the Hungarian cluster-to-class map.

    Parameters
    ----------
    y_true : (n,) int array, class labels ``>= 0``; ``-1`` (unlabelled) nodes are ignored.
    y_pred : (n,) int array, cluster ids.

    Notes
    -----
    Each class matched to cluster ``c`` scores ``F1 = 2 |c ∩ class| / (|c| + |class|)``; a class no
    cluster maps to scores 0, and nodes of unmatched clusters are false negatives for their class.
    The mean is taken over all classes present in the labelled part of ``y_true``.

    References
    ----------
    F1 as in van Rijsbergen, "Information Retrieval", 2nd ed., 1979, applied per class
    after the Hungarian map of Kuhn, 1955 (the usual "F1" column of graph-clustering papers).
    """
    yt, yp = _labelled_pair(y_true, y_pred)
    counts = _contingency(yt, yp)
    rows, cols = _matching(counts)
    f1 = np.zeros(counts.shape[1])
    cluster_sizes = counts.sum(axis=1)
    class_sizes = counts.sum(axis=0)
    f1[cols] = 2.0 * counts[rows, cols] / (cluster_sizes[rows] + class_sizes[cols])
    return float(f1.mean())


def nmi(y_true: Any, y_pred: Any) -> float:
    """Normalised mutual information (arithmetic-mean normalisation) on the labelled nodes.

    Parameters
    ----------
    y_true : (n,) int array, class labels ``>= 0``; ``-1`` (unlabelled) nodes are ignored.
    y_pred : (n,) int array, cluster ids.

    Notes
    -----
    Computed with ``sklearn.metrics.normalized_mutual_info_score``.

    References
    ----------
    Strehl & Ghosh, "Cluster ensembles", JMLR 3, 2002.
    """
    from sklearn.metrics import normalized_mutual_info_score

    yt, yp = _labelled_pair(y_true, y_pred)
    return float(normalized_mutual_info_score(yt, yp))


def ari(y_true: Any, y_pred: Any) -> float:
    """Adjusted Rand index on the labelled nodes.

    Parameters
    ----------
    y_true : (n,) int array, class labels ``>= 0``; ``-1`` (unlabelled) nodes are ignored.
    y_pred : (n,) int array, cluster ids.

    Notes
    -----
    Computed with ``sklearn.metrics.adjusted_rand_score``.

    References
    ----------
    Hubert & Arabie, "Comparing partitions", J. Classification 2, 1985.
    """
    from sklearn.metrics import adjusted_rand_score

    yt, yp = _labelled_pair(y_true, y_pred)
    return float(adjusted_rand_score(yt, yp))


def clustering_report(y_true: Any, y_pred: Any) -> dict[str, float]:
    """All four clustering scores: ``{"acc", "nmi", "ari", "f1"}`` (see the individual functions).

    Parameters
    ----------
    y_true : (n,) int array, class labels ``>= 0``; ``-1`` (unlabelled) nodes are ignored.
    y_pred : (n,) int array, cluster ids.
    """
    return {
        "acc": clustering_accuracy(y_true, y_pred),
        "nmi": nmi(y_true, y_pred),
        "ari": ari(y_true, y_pred),
        "f1": f1_macro_matched(y_true, y_pred),
    }
