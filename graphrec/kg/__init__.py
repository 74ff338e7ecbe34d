"""Knowledge-graph link prediction: LowFER and TuckER with 1-N training on reciprocal triples.

* :mod:`graphrec.kg.data`: reciprocal triples, query groups, device-side K-vs-all / 1-vs-all batches;
* :mod:`graphrec.kg.models`: the LowFER / TuckER networks and their bilinear cores;
* :mod:`graphrec.kg.loss`: label-smoothed BCE from the positive positions only;
* :mod:`graphrec.kg.evaluation`: filtered ranks of heads and tails in one vectorised pass;
* :mod:`graphrec.kg.estimators`: the ``LowFER`` / ``TuckER`` estimators and the papers' presets.
"""
from graphrec.kg.data import QueryGroups, check_triples, group_queries, kvsall_batches, onevsall_batches, reciprocal
from graphrec.kg.estimators import PRESETS, LowFER, TuckER
from graphrec.kg.evaluation import filtered_link_ranks, link_prediction_scores
from graphrec.kg.loss import smoothed_bce
from graphrec.kg.models import LowFERNet, TuckERNet, lowfer_core_tensor, lowfer_pool, tucker_contract

__all__ = [
    "LowFER",
    "LowFERNet",
    "PRESETS",
    "QueryGroups",
    "TuckER",
    "TuckERNet",
    "check_triples",
    "filtered_link_ranks",
    "group_queries",
    "kvsall_batches",
    "link_prediction_scores",
    "lowfer_core_tensor",
    "lowfer_pool",
    "onevsall_batches",
    "reciprocal",
    "smoothed_bce",
    "tucker_contract",
]
