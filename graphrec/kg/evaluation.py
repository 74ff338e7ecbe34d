"""Filtered link-prediction ranks of both directions, in blocks of queries, on the model's device.

Each test triple ``(h, r, t)`` gives two queries: ``(h, r) -> t`` and, through the reciprocal
relation, ``(t, r + n_relations) -> h``. Both are ranked by one pass of 1-N scoring over blocks of
queries; the other known answers (train, valid and test, reciprocals included) are filtered out
by the shared :func:`graphrec.metrics.filtered_ranks`, with tied scores ranked "realistically"
(Berrendorf et al., 2020) rather than by an unstable sort as in the official code.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from graphrec.kg.data import QueryGroups, reciprocal
from graphrec.metrics import filtered_ranks, link_prediction_report

__all__ = ["filtered_link_ranks", "link_prediction_scores"]

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def filtered_link_ranks(score_fn: ScoreFn, triples: np.ndarray, n_relations: int, known: QueryGroups, *,
                        device: torch.device | str = "cpu", batch_size: int = 1024,
                        ties: str = "realistic") -> np.ndarray:
    """Filtered ranks of the tails and the heads of ``triples``.

    Parameters
    ----------
    score_fn : ``(subjects (b,), relations (b,)) -> (b, n_entities)`` scores on ``device``;
        relation ids ``>= n_relations`` are the reciprocals.
    triples : (m, 3) int64 ``(head, relation, tail)``, relations in ``[0, n_relations)``; m >= 1.
    n_relations : int, number of original relations.
    known : QueryGroups of every known reciprocal triple (the filter), keyed with ``2 * n_relations``.
    device : where the queries are scored.
    batch_size : queries per block.
    ties : see :func:`graphrec.metrics.filtered_ranks`.

    Returns
    -------
    (2m,) float64 ranks: the ``m`` tail ranks, then the ``m`` head ranks.
    """
    queries = reciprocal(triples, n_relations)
    filter_indptr, filter_indices = known.lookup(queries[:, 0], queries[:, 1])
    device = torch.device(device)
    subjects = torch.as_tensor(queries[:, 0], device=device)
    relations = torch.as_tensor(queries[:, 1], device=device)
    targets = torch.as_tensor(queries[:, 2], device=device)
    indices = torch.as_tensor(filter_indices, device=device)
    ranks = []
    for lo in range(0, len(queries), batch_size):
        hi = min(lo + batch_size, len(queries))
        scores = score_fn(subjects[lo:hi], relations[lo:hi])
        a, b = filter_indptr[lo], filter_indptr[hi]
        ranks.append(filtered_ranks(scores, targets[lo:hi], filter_indptr[lo : hi + 1] - a, indices[a:b], ties=ties))
    return torch.cat(ranks).cpu().numpy()


def link_prediction_scores(ranks: np.ndarray, prefix: str = "") -> dict[str, float]:
    """MRR / MR / Hits@{1,3,10} of both directions together, plus ``mrr_tail`` and ``mrr_head``.

    ``ranks`` is the output of :func:`filtered_link_ranks` (tails first, then heads).
    """
    m = len(ranks) // 2
    report = link_prediction_report(ranks)
    report["mrr_tail"] = float(np.mean(1.0 / ranks[:m]))
    report["mrr_head"] = float(np.mean(1.0 / ranks[m:]))
    return {f"{prefix}{key}": value for key, value in report.items()}
