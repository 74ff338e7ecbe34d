"""Field schema of a CTR table: categorical ids with a min-count, log-binned numerics, one global id space.

Every field ``f`` owns a contiguous block ``[offsets_[f], offsets_[f] + field_dims_[f])`` of the
global feature ids (the rows of one embedding table). Local id ``0`` of every block is the field's
out-of-vocabulary (OOV) id: categories unseen in the fitted frame, or seen fewer than
``min_count`` times, map to it. Numeric fields are binned as in the Criteo preprocessing of
OptFS (Lyu et al., WWW 2023): ``v -> floor(ln(v) ** 2)`` for ``v > 2``, else ``int(v)``; the bins
are categories exempt from ``min_count``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError

from graphrec.utils.validation import check_int

__all__ = ["CTRSchema", "log_bin"]


def log_bin(values: np.ndarray) -> np.ndarray:
    """Criteo integer binning: ``floor(ln(v)^2)`` for ``v > 2``, ``trunc(v)`` otherwise; shape kept.

    >>> log_bin(np.array([-1.0, 0.0, 2.0, 3.0, 100.0])).tolist()
    [-1, 0, 2, 1, 21]
    """
    v = np.asarray(values, dtype=np.float64)
    big = v > 2
    out = np.trunc(v)
    out[big] = np.floor(np.log(v[big]) ** 2)
    return out.astype(np.int64)


class CTRSchema:
    """Encode a DataFrame of categorical and numeric fields into global feature ids.

    Parameters
    ----------
    categorical, numeric : sequence of str
        Field names by kind; the encoded columns follow ``[*categorical, *numeric]``.
    min_count : int, default=1
        Categorical values seen fewer times than this in the fitted frame map to the OOV id.

    Attributes
    ----------
    fields_ : list of str
    field_dims_ : ndarray of int64, shape (n_fields,)
        Ids per field, OOV included.
    offsets_ : ndarray of int64, shape (n_fields,)
    n_features_ : int
        Size of the global id space.
    """

    def __init__(self, categorical: Sequence[str], numeric: Sequence[str] = (), min_count: int = 1) -> None:
        self.categorical = list(categorical)
        self.numeric = list(numeric)
        self.min_count = min_count

    def _columns(self, frame: pd.DataFrame) -> None:
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(frame).__name__}")
        expected = self.categorical + self.numeric
        missing = [c for c in expected if c not in frame.columns]
        extra = [c for c in frame.columns if c not in expected]
        if missing or extra:
            raise ValueError(
                f"X does not match the schema: missing columns {missing}, unexpected columns {extra}; "
                f"expected exactly {expected}"
            )
        if len(frame) == 0:
            raise ValueError("X has no rows")
        for name in self.numeric:
            col = frame[name]
            if not pd.api.types.is_numeric_dtype(col):
                raise TypeError(f"numeric field {name!r} has dtype {col.dtype}; expected a numeric dtype")
            if col.isna().any():
                raise ValueError(
                    f"numeric field {name!r} holds NaN in row {int(np.flatnonzero(col.isna().to_numpy())[0])}; "
                    f"impute it or declare the field categorical"
                )
            infinite = ~np.isfinite(col.to_numpy(dtype=np.float64))
            if infinite.any():
                raise ValueError(
                    f"numeric field {name!r} holds an infinite value in row {int(np.flatnonzero(infinite)[0])}; "
                    f"expected finite numbers (clip it or declare the field categorical)"
                )

    def _values(self, frame: pd.DataFrame, name: str) -> pd.Index:
        if name in self.numeric:
            return pd.Index(log_bin(frame[name].to_numpy()))
        return pd.Index(frame[name].to_numpy())

    def fit(self, frame: pd.DataFrame) -> "CTRSchema":
        """Learn the vocabulary of every field from ``frame`` (the training rows only)."""
        self.min_count = check_int(self.min_count, "min_count", low=1)
        if set(self.categorical) & set(self.numeric) or not self.categorical + self.numeric:
            raise ValueError("categorical and numeric must be disjoint and name at least one field")
        self._columns(frame)
        self.fields_ = self.categorical + self.numeric
        self.vocab_: dict[str, pd.Index] = {}
        for name in self.fields_:
            counts = pd.Series(self._values(frame, name)).value_counts(dropna=False)
            keep = counts.index if name in self.numeric else counts.index[counts.to_numpy() >= self.min_count]
            self.vocab_[name] = pd.Index(keep)
        self.field_dims_ = np.array([len(self.vocab_[n]) + 1 for n in self.fields_], dtype=np.int64)
        self.offsets_ = np.concatenate([[0], np.cumsum(self.field_dims_)[:-1]]).astype(np.int64)
        self.n_features_ = int(self.field_dims_.sum())
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Global feature ids, int64 of shape (n_rows, n_fields); unseen values get their field's OOV id."""
        if not hasattr(self, "vocab_"):
            raise NotFittedError("this CTRSchema is not fitted yet; call fit(frame) on the training rows first")
        self._columns(frame)
        out = np.empty((len(frame), len(self.fields_)), dtype=np.int64)
        for j, name in enumerate(self.fields_):
            local = self.vocab_[name].get_indexer(self._values(frame, name)) + 1  # -1 (unseen) -> 0 = OOV
            out[:, j] = local + self.offsets_[j]
        return out

    def field_of(self) -> np.ndarray:
        """Field index of every global feature id, int64 of shape (n_features,)."""
        if not hasattr(self, "field_dims_"):
            raise NotFittedError("this CTRSchema is not fitted yet; call fit(frame) on the training rows first")
        return np.repeat(np.arange(len(self.fields_)), self.field_dims_)
