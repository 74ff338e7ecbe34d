"""``Triples``: a knowledge graph as id-encoded (head, relation, tail) splits with vocabularies."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Triples:
    """Knowledge-graph triples.

    Attributes
    ----------
    entities, relations : list of str
        Vocabularies; an id is a position in the list.
    train, valid, test : ndarray of int64, shape (n, 3)
        Columns (head, relation, tail).
    """

    entities: list[str]
    relations: list[str]
    train: np.ndarray
    valid: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))
    test: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))
    name: str = "kg"

    def __post_init__(self) -> None:
        if len(set(self.entities)) != len(self.entities):
            raise ValueError("entities contains duplicate names")
        if len(set(self.relations)) != len(self.relations):
            raise ValueError("relations contains duplicate names")
        for split in ("train", "valid", "test"):
            arr = np.asarray(getattr(self, split))
            if arr.size == 0:   # an empty split holds no ids, whatever its dtype (``[]`` is float64)
                arr = np.zeros((0, 3), np.int64)
            if arr.ndim != 2 or arr.shape[1] != 3:
                raise ValueError(f"{split} must have shape (n, 3) = (head, relation, tail), got {arr.shape}")
            if not np.issubdtype(arr.dtype, np.integer):
                raise TypeError(f"{split} must hold integer ids, got dtype {arr.dtype}")
            arr = arr.astype(np.int64)
            if arr.size:
                if arr[:, [0, 2]].min() < 0 or arr[:, [0, 2]].max() >= self.n_entities:
                    raise ValueError(f"{split} holds entity ids outside [0, {self.n_entities})")
                if arr[:, 1].min() < 0 or arr[:, 1].max() >= self.n_relations:
                    raise ValueError(f"{split} holds relation ids outside [0, {self.n_relations})")
            setattr(self, split, arr)
        if self.train.shape[0] == 0:
            raise ValueError("train is empty; a knowledge graph needs training triples")

    @property
    def n_entities(self) -> int:
        return len(self.entities)

    @property
    def n_relations(self) -> int:
        return len(self.relations)

    def encode(self, triples: list[tuple[str, str, str]]) -> np.ndarray:
        """Map string triples to ids; unknown names raise ``KeyError`` naming the first one."""
        ent = {e: i for i, e in enumerate(self.entities)}
        rel = {r: i for i, r in enumerate(self.relations)}
        out = np.empty((len(triples), 3), np.int64)
        for i, (h, r, t) in enumerate(triples):
            for name, vocab, kind in ((h, ent, "entity"), (r, rel, "relation"), (t, ent, "entity")):
                if name not in vocab:
                    raise KeyError(f"unknown {kind} {name!r} in triple {i}")
            out[i] = ent[h], rel[r], ent[t]
        return out

    def __repr__(self) -> str:
        return (
            f"Triples(name={self.name!r}, n_entities={self.n_entities}, n_relations={self.n_relations}, "
            f"train={len(self.train)}, valid={len(self.valid)}, test={len(self.test)})"
        )
