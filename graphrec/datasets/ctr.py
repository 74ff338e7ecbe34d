"""``CTRTable``: click-through-rate data with categorical and numeric fields."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from graphrec.utils.validation import check_array


@dataclass
class CTRTable:
    """A CTR data set.

    Attributes
    ----------
    frame : pandas.DataFrame, shape (n_rows, n_fields)
        One column per field; categorical fields hold raw values (str or int), numeric fields floats.
    label : ndarray of float32, shape (n_rows,)
        Click labels in {0, 1}.
    categorical, numeric : list of str
        Field names by kind; together they are exactly the columns of ``frame``.
    splits : dict of str -> ndarray of int64
        Row indices per split (``"train"``, ``"valid"``, ``"test"``), when the source defines them.
    """

    frame: pd.DataFrame
    label: np.ndarray
    categorical: list[str]
    numeric: list[str] = field(default_factory=list)
    splits: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = "ctr"

    def __post_init__(self) -> None:
        if not isinstance(self.frame, pd.DataFrame):
            raise TypeError(f"frame must be a pandas DataFrame, got {type(self.frame).__name__}")
        if not self.frame.columns.is_unique:
            repeated = sorted(set(self.frame.columns[self.frame.columns.duplicated()]))
            raise ValueError(f"frame has the column name(s) {repeated} more than once; expected one column per field")
        cols = set(self.frame.columns)
        declared = list(self.categorical) + list(self.numeric)
        if set(declared) != cols or len(declared) != len(cols):
            repeated = sorted({c for c in declared if declared.count(c) > 1})
            raise ValueError(
                f"categorical + numeric must list every column of frame exactly once; "
                f"missing {sorted(cols - set(declared))}, unknown {sorted(set(declared) - cols)}, repeated {repeated}"
            )
        y = np.asarray(self.label)
        if y.shape != (len(self.frame),):
            raise ValueError(f"label has shape {y.shape}, expected ({len(self.frame)},)")
        if not np.all(np.isin(y, (0, 1))):
            raise ValueError("label must hold only 0 and 1")
        self.label = y.astype(np.float32)
        for name in self.numeric:
            if not pd.api.types.is_numeric_dtype(self.frame[name]):
                raise TypeError(f"numeric field {name!r} has dtype {self.frame[name].dtype}")
        splits = {}
        for split, idx in self.splits.items():
            # integer row ids only: a boolean mask or float ids would be cast to wrong rows silently
            idx = check_array(idx, f"splits[{split!r}]", ndim=1, dtype=np.int64, min_rows=0)
            if idx.size and (idx.min() < 0 or idx.max() >= len(self.frame)):
                raise ValueError(f"splits[{split!r}] holds row ids outside [0, {len(self.frame)})")
            splits[split] = idx
        self.splits = splits

    @property
    def n_rows(self) -> int:
        return len(self.frame)

    @property
    def n_fields(self) -> int:
        return self.frame.shape[1]

    def split(self, name: str) -> tuple[pd.DataFrame, np.ndarray]:
        """``(frame rows, labels)`` of one split."""
        if name not in self.splits:
            raise KeyError(f"split {name!r} not defined; available: {sorted(self.splits)}")
        idx = self.splits[name]
        return self.frame.iloc[idx].reset_index(drop=True), self.label[idx]

    def __repr__(self) -> str:
        return (
            f"CTRTable(name={self.name!r}, n_rows={self.n_rows}, categorical={len(self.categorical)}, "
            f"numeric={len(self.numeric)}, positive_rate={self.label.mean():.3f})"
        )
