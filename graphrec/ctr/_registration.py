"""Conformance-registry entries (graphrec.base.register_estimator) for the CTR estimators."""
from __future__ import annotations

import numpy as np

from graphrec.base import EstimatorSpec, register_estimator
from graphrec.ctr.dnis import DNIS
from graphrec.ctr.estimators import CTRClassifier
from graphrec.ctr.optfs import OptFS


def _small(seed: int) -> tuple:
    from graphrec.datasets.generators import make_ctr

    table = make_ctr(n_rows=400, n_informative_fields=2, n_irrelevant_fields=1, cardinality=5, n_numeric=1,
                     n_irrelevant_numeric=0, random_state=seed)
    return table.frame, table.label


def _bad_inputs() -> dict:
    def labels_out_of_range():
        X, y = _small(0)
        return X, np.where(y == 1, 2.0, 0.0)

    def nan_numeric():
        X, y = _small(0)
        X = X.copy()
        X.loc[0, "I1"] = np.nan
        return X, y

    def not_a_frame():
        X, y = _small(0)
        return X.to_numpy(), y

    def wrong_length():
        X, y = _small(0)
        return X, y[:-1]

    return {"labels_out_of_range": labels_out_of_range, "nan_numeric": nan_numeric, "not_a_frame": not_a_frame,
            "wrong_length": wrong_length}


_SMALL = dict(embed_dim=4, hidden=(8,), max_epochs=2, batch_size=128, random_state=0)
for _name, _factory in {
    "CTRClassifier": lambda: CTRClassifier("deepfm", **_SMALL),
    "OptFS": lambda: OptFS("fm", search_epochs=2, **_SMALL),
    "DNIS": lambda: DNIS("fm", search_epochs=1, **_SMALL),
}.items():
    register_estimator(
        f"graphrec.ctr.{_name}",
        EstimatorSpec(factory=_factory, make_input=_small, output=lambda est, args: est.predict_proba(args[0]),
                      bad_inputs=_bad_inputs(), fitted_method="predict_proba"),
    )
