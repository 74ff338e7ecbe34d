"""Evaluation metrics: clustering, top-K ranking, KG link prediction, classification, regression.

Importing this package loads numpy and scipy only; scikit-learn and torch are imported by the
functions that need them.
"""
from graphrec.metrics.classification import log_loss, roc_auc
from graphrec.metrics.clustering import ari, clustering_accuracy, clustering_report, f1_macro_matched, nmi
from graphrec.metrics.link_prediction import filtered_ranks, link_prediction_report
from graphrec.metrics.ranking import evaluate_full_ranking, ranking_metrics
from graphrec.metrics.regression import mae, rmse

__all__ = [
    "ari",
    "clustering_accuracy",
    "clustering_report",
    "evaluate_full_ranking",
    "f1_macro_matched",
    "filtered_ranks",
    "link_prediction_report",
    "log_loss",
    "mae",
    "nmi",
    "ranking_metrics",
    "rmse",
    "roc_auc",
]
