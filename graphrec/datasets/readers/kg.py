"""Reader for knowledge graphs stored as tab-separated ``head<TAB>relation<TAB>tail`` split files.

The layout of ConvE, TuckER, LowFER and PyKEEN (``train.txt``, ``valid.txt``, ``test.txt``).
Returns a :class:`~graphrec.datasets.triples.Triples`. Malformed lines raise ``ValueError``
naming the file and the 1-based line number.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from graphrec.datasets._cards import DatasetCard
from graphrec.datasets._registry import register_format
from graphrec.datasets.triples import Triples

_SPLITS = ("train", "valid", "test")


def read_triples_file(path: Path) -> list[tuple[str, str, str]]:
    """String triples of one split file, in file order.

    Lines end in LF or CRLF (FB15k-237 from ConvE/TuckER uses CRLF; the ``\\r`` is not part of the
    tail). Blank lines are skipped; every other line must hold exactly three non-empty
    tab-separated fields.
    """
    triples = []
    with open(path, encoding="utf-8", newline="") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 3 or not all(fields):
                raise ValueError(
                    f"{path}, line {lineno}: expected 'head<TAB>relation<TAB>tail' with three non-empty fields, "
                    f"got {line[:80]!r}"
                )
            triples.append((fields[0], fields[1], fields[2]))
    return triples


@register_format("kg-tsv")
def read_kg_tsv(
    paths: dict[str, Path],
    card: DatasetCard | None,
    *,
    train: str = "train.txt",
    valid: str = "valid.txt",
    test: str = "test.txt",
) -> Triples:
    """Tab-separated train/valid/test triples -> :class:`Triples` with id-encoded splits.

    Vocabularies are the union over all three splits, each **sorted** by name (Python string
    order), so ids do not depend on line order: entity ``i`` is ``entities[i]``. Entities that
    occur only in valid or test (WN18RR, FB15k-237) therefore get ids as well. Duplicate lines are
    kept as they are.

    Parameters
    ----------
    paths : dict of file name -> Path
        Must hold the three split files; other files (e.g. ``README.txt``) are ignored.
    train, valid, test : str
        File names of the splits.

    Returns
    -------
    Triples
        ``train``, ``valid``, ``test`` int64 arrays of shape (n, 3) = (head, relation, tail).

    References
    ----------
    Dettmers et al., "Convolutional 2D Knowledge Graph Embeddings", AAAI 2018 (the file layout).
    """
    raw = {}
    for split, fname in zip(_SPLITS, (train, valid, test)):
        if fname not in paths:
            raise ValueError(f"the 'kg-tsv' reader needs the {split} file {fname}; got {sorted(paths)}")
        raw[split] = read_triples_file(paths[fname])
    if not raw["train"]:
        raise ValueError(f"{paths[train]} holds no triples")
    entities = sorted({e for triples in raw.values() for h, _, t in triples for e in (h, t)})
    relations = sorted({r for triples in raw.values() for _, r, _ in triples})
    ent = {e: i for i, e in enumerate(entities)}
    rel = {r: i for i, r in enumerate(relations)}
    encoded = {
        split: np.array([(ent[h], rel[r], ent[t]) for h, r, t in triples], dtype=np.int64).reshape(-1, 3)
        for split, triples in raw.items()
    }
    name = card.name if card is not None else Path(paths[train]).parent.name
    return Triples(entities, relations, encoded["train"], encoded["valid"], encoded["test"], name=name)
