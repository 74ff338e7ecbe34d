"""Knowledge-graph link prediction: filtered ranks and the MRR / MR / Hits@K report.

For a query ``(h, r, ?)`` the model scores every entity; the rank of the true tail is one plus the
number of candidates scored higher. In the *filtered* setting the other known true answers of the
query (from train, valid and test) are removed first, so that ranking a correct answer above the
target is not penalised. Ties with the target are resolved by ``ties``:

* ``"optimistic"``:  ``rank = 1 + #higher``
* ``"pessimistic"``: ``rank = 1 + #higher + #equal``
* ``"realistic"``:   the mean of the two, ``1 + #higher + #equal / 2`` (expected rank under a random
  order of the tied candidates)

Reference: Bordes et al., "Translating embeddings for modeling multi-relational data", NeurIPS 2013
(filtered setting); Berrendorf et al., "On the ambiguity of rank-based evaluation of entity
alignment or link prediction methods", arXiv:2002.06914, 2020 (tie handling).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from graphrec.utils.validation import check_array

if TYPE_CHECKING:
    import torch

__all__ = ["filtered_ranks", "link_prediction_report"]

_TIES = ("realistic", "optimistic", "pessimistic")


def _as_index_tensor(x: Any, name: str, device: "torch.device") -> "torch.Tensor":
    """A 1-d int64 tensor on ``device`` from a numpy array, list or tensor of integers."""
    import torch

    if isinstance(x, torch.Tensor):
        if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
            raise TypeError(f"{name} must hold integers, got dtype {x.dtype}")
        if x.ndim != 1:
            raise ValueError(f"{name} must be 1-dimensional, got shape {tuple(x.shape)}")
        return x.to(device=device, dtype=torch.int64)
    arr = check_array(x, name, ndim=1, dtype=np.int64, min_rows=0)
    return torch.from_numpy(arr).to(device)


def filtered_ranks(
    scores: Any,
    targets: Any,
    filter_indptr: Any = None,
    filter_indices: Any = None,
    ties: str = "realistic",
) -> Any:
    """Filtered rank of each target entity among all entities, vectorised over the batch.

    Parameters
    ----------
    scores : (b, n_entities) float numpy array or torch tensor (any device)
        Higher is better. NaN is rejected; ``-inf`` / ``inf`` are ordinary scores.
    targets : (b,) int
        The true entity of each row, in ``[0, n_entities)``.
    filter_indptr, filter_indices : CSR structure, optional
        ``filter_indices[filter_indptr[i]:filter_indptr[i + 1]]`` are the known true entities of row
        ``i``; they are removed from the ranking except ``targets[i]`` itself (which may be listed).
        ``filter_indptr`` has shape ``(b + 1,)``. Give both or neither (raw, unfiltered ranks).
    ties : {"realistic", "optimistic", "pessimistic"}
        How candidates scored exactly like the target count (see the module docstring).

    Returns
    -------
    ranks : (b,) float64, ``>= 1``; a numpy array for numpy input, else a tensor on ``scores.device``.

    Reference: Bordes et al., NeurIPS 2013 (filtered setting); Berrendorf et al., 2020 (ties).
    """
    import torch

    if ties not in _TIES:
        raise ValueError(f"ties must be one of {_TIES}, got {ties!r}")
    as_numpy = not isinstance(scores, torch.Tensor)
    if as_numpy:
        arr = check_array(scores, "scores", ndim=2, dtype=None, allow_nan=True, min_rows=0)
        s = torch.from_numpy(np.ascontiguousarray(arr))
    else:
        s = scores.detach()
        if s.ndim != 2:
            raise ValueError(f"scores must be 2-dimensional (b, n_entities), got shape {tuple(s.shape)}")
    if not s.dtype.is_floating_point:
        raise TypeError(f"scores must hold floating-point numbers, got dtype {s.dtype}")
    b, n = s.shape
    if n == 0:
        raise ValueError("scores has no columns; expected one score per entity")
    if bool(torch.isnan(s).any()):
        raise ValueError("scores contains NaN; expected a score for every entity")
    t = _as_index_tensor(targets, "targets", s.device)
    if t.shape[0] != b:
        raise ValueError(f"targets has length {t.shape[0]} but scores has {b} rows")
    if b and bool(((t < 0) | (t >= n)).any()):
        raise ValueError(f"targets must be entity ids in [0, {n}), got values in [{int(t.min())}, {int(t.max())}]")

    rows = torch.arange(b, device=s.device)
    keep = torch.ones((b, n), dtype=torch.bool, device=s.device)
    if (filter_indptr is None) != (filter_indices is None):
        raise ValueError("filter_indptr and filter_indices must be given together (or both left out)")
    if filter_indptr is not None:
        indptr = _as_index_tensor(filter_indptr, "filter_indptr", s.device)
        indices = _as_index_tensor(filter_indices, "filter_indices", s.device)
        if indptr.shape[0] != b + 1:
            raise ValueError(f"filter_indptr must have length b + 1 = {b + 1}, got {indptr.shape[0]}")
        counts = indptr[1:] - indptr[:-1]
        if int(indptr[0]) != 0 or int(indptr[-1]) != indices.shape[0] or bool((counts < 0).any()):
            raise ValueError(
                "filter_indptr must start at 0, be non-decreasing and end at len(filter_indices) "
                f"= {indices.shape[0]}"
            )
        if indices.numel() and bool(((indices < 0) | (indices >= n)).any()):
            raise ValueError(f"filter_indices must be entity ids in [0, {n})")
        keep[torch.repeat_interleave(rows, counts), indices] = False
        keep[rows, t] = True

    target_score = s[rows, t].unsqueeze(1)
    higher = ((s > target_score) & keep).sum(dim=1).to(torch.float64)
    equal = ((s == target_score) & keep).sum(dim=1).to(torch.float64) - 1.0  # minus the target itself
    if ties == "optimistic":
        ranks = 1.0 + higher
    elif ties == "pessimistic":
        ranks = 1.0 + higher + equal
    else:
        ranks = 1.0 + higher + equal / 2.0
    return ranks.cpu().numpy() if as_numpy else ranks


def link_prediction_report(ranks: Any) -> dict[str, float]:
    """MRR, mean rank and Hits@{1, 3, 10} from a vector of (filtered) ranks.

    Parameters
    ----------
    ranks : (m,) float array or tensor of ranks ``>= 1`` (fractional ranks from tie handling allowed).

    Returns
    -------
    ``{"mrr": mean(1 / rank), "mr": mean(rank), "hits@1", "hits@3", "hits@10": mean(rank <= K)}``.

    Reference: Bordes et al., NeurIPS 2013; Yang et al., "Embedding entities and relations for
    learning and inference in knowledge bases", ICLR 2015 (MRR).
    """
    r = check_array(ranks, "ranks", ndim=1, dtype=np.float64)
    if r.min() < 1:
        raise ValueError(f"ranks must be >= 1, got min {r.min():g}")
    report = {"mrr": float(np.mean(1.0 / r)), "mr": float(np.mean(r))}
    for k in (1, 3, 10):
        report[f"hits@{k}"] = float(np.mean(r <= k))
    return report
