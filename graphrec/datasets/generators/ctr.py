"""Click-through-rate table with planted informative and irrelevant fields.

Generative model, for ``n_rows`` impressions:

* categorical field ``f`` with cardinality ``c_f`` takes value ``v`` with probability
  ``proportional to 1 / (rank_f(v) + 1)`` (Zipf's law, a random rank per value), independently
  across fields and rows; numeric fields are independent ``N(0, 1)``;
* the click logit over the *informative* fields ``F`` (categorical) and ``N`` (numeric) is

      z = bias + main_effect_strength * (sum_{f in F} w_f[v_f] + sum_{n in N} beta_n x_n) / sqrt(|F| + |N|)
               + interaction_strength * sum_{f < g in F} <a_f[v_f], a_g[v_g]> / sqrt(|F| (|F| - 1) / 2)

  with ``w_f[v], beta_n ~ N(0, 1)`` and factor vectors ``a_f[v] ~ N(0, I_k / sqrt(k))`` (a
  factorisation-machine interaction of rank ``k = n_factors``, each term of unit variance);
  ``bias`` is solved so that the mean click probability is ``base_rate``;
* ``label ~ Bernoulli(sigmoid(z))``. Irrelevant fields enter nowhere, so they are independent of
  the label.

Categorical fields are named ``C1, C2, ...`` and numeric ones ``I1, I2, ...`` (as in Criteo); which
of them are informative is a random draw, returned with ``return_truth=True``.

References
----------
Rendle, "Factorization machines", ICDM 2010.
Lyu et al., "Optimizing feature set for click-through rate prediction" (OptFS), WWW 2023: field
selection, which this table's planted irrelevant fields let one test.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

from graphrec.datasets.ctr import CTRTable
from graphrec.datasets.generators._checks import check_split_fractions
from graphrec.utils.validation import check_float, check_int
from graphrec.utils.validation import check_random_state

__all__ = ["make_ctr"]


def _cardinalities(cardinality: int | Sequence[int], n_fields: int) -> list[int]:
    if isinstance(cardinality, (int, np.integer)) and not isinstance(cardinality, bool):
        return [check_int(cardinality, "cardinality", low=2)] * n_fields
    values = list(cardinality)
    if len(values) != n_fields:
        raise ValueError(
            f"cardinality must be an int or one int per categorical field ({n_fields}), got {len(values)} values"
        )
    return [check_int(v, f"cardinality[{i}]", low=2) for i, v in enumerate(values)]


def make_ctr(
    n_rows: int = 20000,
    n_informative_fields: int = 4,
    n_irrelevant_fields: int = 4,
    *,
    cardinality: int | Sequence[int] = 20,
    n_numeric: int = 2,
    n_irrelevant_numeric: int = 1,
    main_effect_strength: float = 1.0,
    interaction_strength: float = 1.0,
    n_factors: int = 4,
    base_rate: float = 0.25,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    return_truth: bool = False,
    random_state: Any = None,
) -> CTRTable | tuple[CTRTable, dict[str, Any]]:
    """A CTR table whose clicks follow a logistic model of planted informative fields (see module docs).

    Parameters
    ----------
    n_rows : int, default=20000
    n_informative_fields, n_irrelevant_fields : int, default=4, 4
        Categorical fields that do / do not enter the click model (at least one field in all).
    cardinality : int or sequence of int, default=20
        Number of values of every categorical field, or one per field in the order ``C1, C2, ...``.
    n_numeric, n_irrelevant_numeric : int, default=2, 1
        Informative (linear effect) and irrelevant numeric fields.
    main_effect_strength, interaction_strength : float >= 0, default=1.0
        Standard deviations of the first-order and of the pairwise-interaction parts of the logit.
    n_factors : int, default=4
        Rank ``k`` of the pairwise interactions.
    base_rate : float in (0, 1), default=0.25
        Mean click probability.
    valid_fraction, test_fraction : float, default=0.1
        Shares of rows in the random valid / test splits (train gets the rest).
    return_truth : bool, default=False
        Also return a dict with ``"informative"`` and ``"irrelevant"`` (field names),
        ``"logit"`` (n_rows,) the true logit ``z``, ``"bias"``, ``"main_effects"`` (field ->
        ``w_f`` of shape (c_f,) or ``beta_n`` float) and ``"interaction_factors"`` (field -> ``a_f``
        of shape (c_f, k)).
    random_state : int, numpy Generator or None

    Returns
    -------
    CTRTable
        ``frame`` (n_rows, n_fields): int64 value ids in ``[0, c_f)`` for categorical fields,
        float64 for numeric ones; ``label`` (n_rows,) in {0, 1}; ``splits`` train / valid / test.
    """
    n_rows = check_int(n_rows, "n_rows", low=3)
    n_inf = check_int(n_informative_fields, "n_informative_fields", low=0)
    n_irr = check_int(n_irrelevant_fields, "n_irrelevant_fields", low=0)
    n_num = check_int(n_numeric, "n_numeric", low=0)
    n_irr_num = check_int(n_irrelevant_numeric, "n_irrelevant_numeric", low=0)
    if n_inf + n_irr + n_num + n_irr_num == 0:
        raise ValueError("the table needs at least one field; all field counts are 0")
    cards = _cardinalities(cardinality, n_inf + n_irr)
    main = check_float(main_effect_strength, "main_effect_strength", low=0.0)
    inter = check_float(interaction_strength, "interaction_strength", low=0.0)
    n_factors = check_int(n_factors, "n_factors", low=1)
    base_rate = check_float(base_rate, "base_rate", low=0.0, high=1.0, low_open=True)
    if base_rate >= 1.0:
        raise ValueError(f"base_rate must be in (0, 1), got {base_rate}")
    valid_fraction, test_fraction = check_split_fractions(valid_fraction, test_fraction)
    rng = check_random_state(random_state)

    cat_names = [f"C{i + 1}" for i in range(n_inf + n_irr)]
    num_names = [f"I{i + 1}" for i in range(n_num + n_irr_num)]
    informative_cat = set(rng.choice(len(cat_names), size=n_inf, replace=False).tolist())
    informative_num = set(rng.choice(len(num_names), size=n_num, replace=False).tolist())

    columns: dict[str, np.ndarray] = {}
    for name, c in zip(cat_names, cards):
        probs = 1.0 / (rng.permutation(c) + 1.0)
        columns[name] = rng.choice(c, size=n_rows, p=probs / probs.sum())
    for name in num_names:
        columns[name] = rng.standard_normal(n_rows)

    main_effects: dict[str, Any] = {}
    factors: dict[str, np.ndarray] = {}
    first_order = np.zeros(n_rows)
    for i in sorted(informative_cat):
        name = cat_names[i]
        main_effects[name] = rng.standard_normal(cards[i])
        factors[name] = n_factors**-0.25 * rng.standard_normal((cards[i], n_factors))
        first_order += main_effects[name][columns[name]]
    for i in sorted(informative_num):
        name = num_names[i]
        main_effects[name] = float(rng.standard_normal())
        first_order += main_effects[name] * columns[name]
    logit = np.zeros(n_rows)
    if main_effects:
        logit += main * first_order / np.sqrt(len(main_effects))
    if n_inf >= 2:
        embedded = [factors[name][columns[name]] for name in factors]  # each (n_rows, k)
        total, squares = sum(embedded), sum(e * e for e in embedded)
        pairwise = 0.5 * (total * total - squares).sum(axis=1)  # sum over f < g of <a_f, a_g>
        logit += inter * pairwise / np.sqrt(n_inf * (n_inf - 1) / 2)
    span = 50.0 + np.abs(logit).max()
    bias = brentq(lambda b: expit(logit + b).mean() - base_rate, -span, span)
    logit += bias
    label = (rng.random(n_rows) < expit(logit)).astype(np.float32)

    perm = rng.permutation(n_rows)
    n_test = int(round(test_fraction * n_rows))
    n_valid = int(round(valid_fraction * n_rows))
    splits = {
        "train": np.sort(perm[n_test + n_valid :]),
        "valid": np.sort(perm[n_test : n_test + n_valid]),
        "test": np.sort(perm[:n_test]),
    }
    table = CTRTable(pd.DataFrame(columns), label, cat_names, num_names, splits, name="planted_ctr")
    if not return_truth:
        return table
    truth = {
        "informative": [n for n in cat_names + num_names if n in main_effects],
        "irrelevant": [n for n in cat_names + num_names if n not in main_effects],
        "logit": logit,
        "bias": float(bias),
        "main_effects": main_effects,
        "interaction_factors": factors,
    }
    return table, truth
