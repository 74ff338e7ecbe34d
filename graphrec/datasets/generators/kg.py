"""Knowledge graph with a planted bilinear structure.

Generative model, for ``n_e`` entities and ``n_r`` relations in dimension ``d``:

* entity embeddings ``e_i`` uniform on the unit sphere of R^d;
* one random orthogonal map ``W_r`` (d x d, Haar) per relation;
* a triple draws its head ``h`` and relation ``r`` uniformly and its tail from
  ``softmax_t(<W_r e_h, e_t> / temperature)``: the tail is an entity near the rotated head, with
  ``temperature`` setting the noise. The score ``e_h^T W_r^T e_t`` is bilinear, the model class of
  RESCAL, DistMult/ComplEx (with restricted ``W_r``), TuckER and LowFER.

Duplicate triples are dropped and sampling continues until ``n_triples`` distinct ones exist.
The split keeps, for every entity and relation that occurs, one triple that holds it in train,
then draws valid and test at random from the rest, so that every entity and relation of valid
and test is seen in train.

References
----------
Nickel, Tresp & Kriegel, "A three-way model for collective learning on multi-relational data"
(RESCAL), ICML 2011.
Amin, Varanasi, Jones, Nejdl & Dengel, "LowFER: low-rank bilinear pooling for link prediction",
ICML 2020.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from graphrec.datasets.generators._checks import check_split_fractions
from graphrec.utils.validation import check_float, check_int
from graphrec.datasets.triples import Triples
from graphrec.utils.validation import check_random_state

__all__ = ["make_knowledge_graph"]

_MAX_ROUNDS = 50
_CHUNK_ENTRIES = 1 << 22  # triples x entities logits held at once


def _sample_tails(
    heads: np.ndarray,
    rels: np.ndarray,
    mapped: np.ndarray,
    entities: np.ndarray,
    temperature: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Gumbel-max draw of one tail per (head, relation) from the softmax of bilinear scores."""
    tails = np.empty(heads.size, dtype=np.int64)
    chunk = max(1, _CHUNK_ENTRIES // entities.shape[0])
    for s in range(0, heads.size, chunk):
        h, r = heads[s : s + chunk], rels[s : s + chunk]
        logits = np.einsum("nd,ed->ne", mapped[r, h], entities) / temperature
        tails[s : s + chunk] = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)
    return tails


def _split_covering(
    triples: np.ndarray, n_valid: int, n_test: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train / valid / test with every entity and relation of valid and test present in train."""
    n = triples.shape[0]
    shuffled = triples[rng.permutation(n)]
    forced = np.zeros(n, dtype=bool)
    for cols in ((0, 2), (1,)):  # entities (head or tail), relations
        ids = shuffled[:, cols]
        flat = ids.ravel()
        _, first = np.unique(flat, return_index=True)
        forced[first // len(cols)] = True
    free = np.flatnonzero(~forced)
    if free.size < n_valid + n_test:
        raise ValueError(
            f"valid_fraction and test_fraction ask for {n_valid + n_test} held-out triples but only "
            f"{free.size} can be held out while keeping every entity and relation in train; "
            "use more triples or smaller fractions"
        )
    valid = free[:n_valid]
    test = free[n_valid : n_valid + n_test]
    train = np.setdiff1d(np.arange(n), np.concatenate([valid, test]))
    return shuffled[train], shuffled[valid], shuffled[test]


def make_knowledge_graph(
    n_entities: int = 500,
    n_relations: int = 10,
    n_triples: int = 10000,
    *,
    dim: int = 16,
    temperature: float = 0.05,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    return_truth: bool = False,
    random_state: Any = None,
) -> Triples | tuple[Triples, dict[str, np.ndarray]]:
    """Triples sampled from a bilinear model with rotation relations (see module docs).

    Parameters
    ----------
    n_entities, n_relations : int, default=500, 10
    n_triples : int, default=10000
        Distinct triples generated in total (train + valid + test).
    dim : int, default=16
        Dimension ``d`` of the planted embeddings.
    temperature : float > 0, default=0.05
        Noise of the tail choice; smaller makes the tail of ``(h, r)`` nearly deterministic (and
        limits how many distinct triples exist).
    valid_fraction, test_fraction : float, default=0.1
        Shares of the triples held out.
    return_truth : bool, default=False
        Also return ``{"entity_embeddings": (n_entities, dim), "relation_matrices":
        (n_relations, dim, dim)}``; the planted score of ``(h, r, t)`` is
        ``entity_embeddings[t] @ relation_matrices[r] @ entity_embeddings[h]``.
    random_state : int, numpy Generator or None

    Returns
    -------
    Triples
        Entities ``"e0"..``, relations ``"r0"..``; ``train``, ``valid``, ``test`` int64 (n, 3)
        (head, relation, tail), disjoint and without duplicates.
    """
    n_entities = check_int(n_entities, "n_entities", low=2)
    n_relations = check_int(n_relations, "n_relations", low=1)
    n_triples = check_int(n_triples, "n_triples", low=1, high=n_entities * n_entities * n_relations)
    dim = check_int(dim, "dim", low=1)
    temperature = check_float(temperature, "temperature", low=0.0, low_open=True)
    valid_fraction, test_fraction = check_split_fractions(valid_fraction, test_fraction)
    rng = check_random_state(random_state)

    entities = rng.standard_normal((n_entities, dim))
    entities /= np.linalg.norm(entities, axis=1, keepdims=True)
    q, rr = np.linalg.qr(rng.standard_normal((n_relations, dim, dim)))
    relations = q * np.sign(np.diagonal(rr, axis1=1, axis2=2))[:, None, :]  # Haar-distributed
    mapped = np.einsum("rij,ej->rei", relations, entities)  # W_r e_h, shape (n_r, n_e, d)

    seen = np.zeros((0, 3), dtype=np.int64)
    for _ in range(_MAX_ROUNDS):
        need = n_triples - seen.shape[0]
        if need <= 0:
            break
        batch = 2 * need
        heads = rng.integers(0, n_entities, size=batch)
        rels = rng.integers(0, n_relations, size=batch)
        tails = _sample_tails(heads, rels, mapped, entities, temperature, rng)
        new = np.column_stack([heads, rels, tails])
        combined = np.concatenate([seen, new])
        _, first = np.unique(combined, axis=0, return_index=True)
        seen = combined[np.sort(first)][:n_triples]
    if seen.shape[0] < n_triples:
        raise ValueError(
            f"only {seen.shape[0]} distinct triples could be drawn for n_triples={n_triples}; "
            "raise temperature or n_entities, or ask for fewer triples"
        )
    n_valid = int(round(valid_fraction * n_triples))
    n_test = int(round(test_fraction * n_triples))
    train, valid, test = _split_covering(seen, n_valid, n_test, rng)
    kg = Triples(
        [f"e{i}" for i in range(n_entities)],
        [f"r{i}" for i in range(n_relations)],
        train,
        valid,
        test,
        name="planted_bilinear",
    )
    if return_truth:
        return kg, {"entity_embeddings": entities, "relation_matrices": relations}
    return kg
