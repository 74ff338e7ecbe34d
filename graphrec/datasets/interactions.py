"""``Interactions``: implicit feedback as a users x items CSR matrix, with optional order and splits."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from graphrec.utils.validation import _check_not_complex


def _check_user_items(m, name: str, shape: tuple[int, int] | None = None) -> sp.csr_matrix:
    if not sp.issparse(m):
        raise TypeError(f"{name} must be a scipy sparse users x items matrix, got {type(m).__name__}")
    _check_not_complex(m.dtype, name, np.float32)
    coo = m.tocoo()  # before CSR conversion, which would sum a pair stored twice in COO format
    if coo.nnz and np.unique(coo.row.astype(np.int64) * m.shape[1] + coo.col).size != coo.nnz:
        raise ValueError(f"{name} has duplicate (user, item) entries; expected each pair once")
    m = sp.csr_matrix(m, dtype=np.float32)
    if shape is not None and m.shape != shape:
        raise ValueError(f"{name} has shape {m.shape}, expected {shape}")
    if m.shape[0] == 0 or m.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {m.shape}); expected at least one user and one item")
    if not np.all(np.isfinite(m.data)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if m.nnz and m.data.min() < 0:
        raise ValueError(f"{name} has negative values (min {m.data.min():g}); expected interaction weights >= 0")
    if m.nnz and not m.data.all():  # k-cores and splits would count them as interactions
        raise ValueError(f"{name} stores {m.nnz - np.count_nonzero(m.data)} explicit zero(s), which are not "
                         "interactions; drop them first (m.eliminate_zeros())")
    m.sort_indices()
    return m


@dataclass
class Interactions:
    """Implicit-feedback interactions.

    Attributes
    ----------
    user_items : scipy.sparse.csr_matrix, shape (n_users, n_items)
        All interactions (value 1, or a positive weight), sorted CSR float32, no duplicate pairs and
        no stored zeros.
    order : scipy.sparse.csr_matrix, optional
        Same sparsity as ``user_items``; the value is the interaction's position in the user's
        history (1-based) or its timestamp, so splits by time are possible.
    splits : dict of str -> csr_matrix
        Named splits (``"train"``, ``"valid"``, ``"test"``), each (n_users, n_items).
    user_ids, item_ids : ndarray, optional
        Original ids of rows / columns.
    """

    user_items: sp.csr_matrix
    order: sp.csr_matrix | None = None
    splits: dict[str, sp.csr_matrix] = field(default_factory=dict)
    user_ids: np.ndarray | None = None
    item_ids: np.ndarray | None = None
    name: str = "interactions"

    def __post_init__(self) -> None:
        self.user_items = _check_user_items(self.user_items, "user_items")
        shape = self.user_items.shape
        if self.order is not None:
            self.order = sp.csr_matrix(self.order)
            self.order.sort_indices()
            if self.order.shape != shape or not (
                np.array_equal(self.order.indptr, self.user_items.indptr)
                and np.array_equal(self.order.indices, self.user_items.indices)
            ):
                raise ValueError("order must have exactly the sparsity pattern of user_items")
            if not np.all(np.isfinite(self.order.data)):
                raise ValueError("order contains NaN or infinite values; expected positions or timestamps")
        self.splits = {k: _check_user_items(v, f"splits[{k!r}]", shape) for k, v in self.splits.items()}
        for ids, n, nm in ((self.user_ids, shape[0], "user_ids"), (self.item_ids, shape[1], "item_ids")):
            if ids is not None and len(ids) != n:
                raise ValueError(f"{nm} has length {len(ids)}, expected {n}")

    @property
    def n_users(self) -> int:
        return self.user_items.shape[0]

    @property
    def n_items(self) -> int:
        return self.user_items.shape[1]

    @property
    def n_interactions(self) -> int:
        return self.user_items.nnz

    @property
    def density(self) -> float:
        return self.n_interactions / (self.n_users * self.n_items)

    def __repr__(self) -> str:
        splits = {k: v.nnz for k, v in self.splits.items()}
        return (
            f"Interactions(name={self.name!r}, n_users={self.n_users}, n_items={self.n_items}, "
            f"n_interactions={self.n_interactions}, splits={splits})"
        )
