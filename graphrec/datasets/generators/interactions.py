"""Implicit feedback from a latent-factor model with item popularity.

Generative model, for ``n_users`` users and ``n_items`` items with ``f`` latent factors:

* user and item factors ``p_u, q_j ~ N(0, I_f / sqrt(f))`` entry-wise, so ``p_u . q_j`` has unit
  variance;
* item popularity bias ``b_j = -popularity_skew * log(rank_j)`` with ``rank`` a random permutation
  of ``1..n_items`` (a Zipf law of exponent ``popularity_skew`` on the attractiveness ``exp(b_j)``);
* user ``u`` interacts with ``n_u ~ 1 + Poisson(mean_interactions - 1)`` distinct items (at most
  ``n_items``), drawn one after the other without replacement with probability
  ``softmax_j((p_u . q_j) / temperature + b_j)`` over the items not drawn yet (a Plackett-Luce
  sequence, sampled exactly with the Gumbel-top-k trick: the ``n_u`` largest perturbed scores in
  decreasing order). The position in this sequence (1-based) is the interaction's ``order``.

References
----------
Koren, Bell & Volinsky, "Matrix factorization techniques for recommender systems", Computer 42(8), 2009.
Kool, van Hoof & Welling, "Stochastic beams and where to find them: the Gumbel-top-k trick for
sampling sequences without replacement", ICML 2019.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from graphrec.utils.validation import check_float, check_int
from graphrec.datasets.interactions import Interactions
from graphrec.utils.validation import check_random_state

__all__ = ["make_latent_factor_interactions"]

_CHUNK_ENTRIES = 1 << 22  # users x items scores held at once


def make_latent_factor_interactions(
    n_users: int = 1000,
    n_items: int = 500,
    n_factors: int = 8,
    *,
    mean_interactions: float = 20.0,
    temperature: float = 0.5,
    popularity_skew: float = 0.5,
    return_factors: bool = False,
    random_state: Any = None,
) -> Interactions | tuple[Interactions, np.ndarray, np.ndarray, np.ndarray]:
    """Implicit feedback sampled from latent factors plus item popularity (see module docs).

    Parameters
    ----------
    n_users, n_items : int, default=1000, 500
    n_factors : int, default=8
        Latent dimension ``f``.
    mean_interactions : float >= 1, default=20
        Mean number of items per user (density ``~ mean_interactions / n_items``).
    temperature : float > 0, default=0.5
        Softmax temperature on the preference ``p_u . q_j``; small values make users follow their
        factors closely, large ones make choices popularity-driven.
    popularity_skew : float >= 0, default=0.5
        Zipf exponent of the item popularity; 0 gives no popularity effect.
    return_factors : bool, default=False
        Also return the true user factors, item factors and item biases.
    random_state : int, numpy Generator or None

    Returns
    -------
    interactions : Interactions
        ``user_items`` (n_users, n_items) binary CSR without duplicate pairs; ``order`` the 1-based
        position of each item in its user's sampling sequence; no splits.
    user_factors : ndarray, shape (n_users, n_factors)
        Only with ``return_factors=True``, as are the two below.
    item_factors : ndarray, shape (n_items, n_factors)
    item_bias : ndarray, shape (n_items,)
    """
    n_users = check_int(n_users, "n_users", low=1)
    n_items = check_int(n_items, "n_items", low=1)
    n_factors = check_int(n_factors, "n_factors", low=1)
    mean_interactions = check_float(mean_interactions, "mean_interactions", low=1.0)
    if mean_interactions > n_items:
        raise ValueError(f"mean_interactions={mean_interactions} exceeds n_items={n_items}")
    temperature = check_float(temperature, "temperature", low=0.0, low_open=True)
    popularity_skew = check_float(popularity_skew, "popularity_skew", low=0.0)
    rng = check_random_state(random_state)

    scale = n_factors**-0.25
    user_factors = scale * rng.standard_normal((n_users, n_factors))
    item_factors = scale * rng.standard_normal((n_items, n_factors))
    item_bias = -popularity_skew * np.log(rng.permutation(n_items) + 1.0)
    counts = np.minimum(1 + rng.poisson(mean_interactions - 1.0, size=n_users), n_items)

    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = np.empty(indptr[-1], dtype=np.int64)
    chunk = max(1, _CHUNK_ENTRIES // n_items)
    for start in range(0, n_users, chunk):
        stop = min(n_users, start + chunk)
        keys = (user_factors[start:stop] @ item_factors.T) / temperature + item_bias
        keys += rng.gumbel(size=keys.shape)
        ranked = np.argsort(-keys, axis=1, kind="stable")
        for u in range(start, stop):
            indices[indptr[u] : indptr[u + 1]] = ranked[u - start, : counts[u]]
    positions = (np.arange(indptr[-1]) - np.repeat(indptr[:-1], counts) + 1).astype(np.float64)
    order = sp.csr_matrix((positions, indices, indptr), shape=(n_users, n_items))
    order.sort_indices()
    user_items = sp.csr_matrix((np.ones(order.nnz, np.float32), order.indices, order.indptr), shape=order.shape)
    interactions = Interactions(user_items, order=order, name="latent_factor")
    if return_factors:
        return interactions, user_factors, item_factors, item_bias
    return interactions
