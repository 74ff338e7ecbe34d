"""Bench task ``ctr``: click-through-rate prediction; test AUC / logloss, kept features, embedding size.

Methods: the plain backbones (``fm``, ``deepfm``, ``dcn``, ``ipnn``: one early-stopped training);
``rewind-<backbone>``: the OptFS recipe with no sparsity penalty and the gates practically frozen
(SGD, lr 2e-2: every value kept; search epochs, rewind, retrain), the fair baseline for
``optfs-<backbone>`` since rewinding alone changes AUC (notes 5.2); and
``dnis-<backbone>`` (pruned to half of the embedding table). All methods early-stop on the
validation split and report the test split. Extra metrics: ``feature_ratio`` (kept share of
feature values), ``emb_params`` (embedding entries in use), ``params`` (all trainable weights of
the backbone, embedding table counted in full), ``rows_per_s`` (training rows per second over the
whole fit).
"""
from __future__ import annotations

import time
from typing import Any

from graphrec.bench.registry import register_dataset, register_method, register_task

register_task(
    "ctr",
    "click-through-rate prediction (test AUC / logloss)",
    ["auc", "logloss", "feature_ratio", "emb_params", "params", "rows_per_s"],
    default_method="deepfm",
    default_dataset="synthetic",
)

#: Shared settings per dataset (the generated default is small and fast).
SETTINGS = {
    "frappe": dict(hidden=(400, 400, 400), batch_size=1024, lr=1e-3, l2=1e-6, max_epochs=20, patience=2),
    "synthetic": dict(hidden=(64, 64), batch_size=1024, lr=1e-3, l2=1e-6, max_epochs=20, patience=2),
    # the plain "backbone" method on "dataset" adds these to SETTINGS[dataset]: DeepFM on Frappe, chosen on mean
    # valid AUC over seeds 0-2 (benchmarks/bench_ctr_search.py runs, see BENCHMARKS.md)
    "frappe/deepfm": dict(embed_dim=32, batch_norm=True, dropout=0.2, embed_l2=0.02, lr_decay=0.1),
}
#: OptFS search settings per dataset (or "dataset/backbone"); reg_lambda / gate_lr chosen on validation AUC against
#: the kept ratio (frappe: benchmarks/bench_ctr_search.py runs, see BENCHMARKS.md). frappe (FM): 60 warm-up epochs
#: before the continuation (Adam on the gates), retrain up to 60 epochs (the FM is still improving at 20); rewind-fm
#: takes the same recipe, so both retrain for up to 60 epochs.
OPTFS = {
    "frappe": dict(gate_optimizer="adam", reg_lambda=4e-5, gate_lr=0.02, tau_final=1000.0, search_epochs=10,
                   warmup_epochs=60, rewind_epoch=1, max_epochs=60),
    "frappe/deepfm": dict(gate_optimizer="sgd", reg_lambda=2e-6, gate_lr=300.0, tau_final=1000.0, search_epochs=10,
                          rewind_epoch=1),
    "synthetic": dict(gate_optimizer="sgd", reg_lambda=3e-4, gate_lr=10.0, tau_final=1000.0, search_epochs=10,
                      rewind_epoch=1),
}
BACKBONE_NAMES = ("fm", "deepfm", "dcn", "ipnn")


#: DNIS search settings per dataset (pruned to half of the embedding table).
DNIS_SETTINGS = {
    "frappe": dict(target_params=0.5, search_epochs=3),
    "synthetic": dict(target_params=0.5, search_epochs=3),
}


def estimator_for(method: str, dataset: str, seed: int, device: str, **overrides: Any) -> Any:
    """The unfitted estimator of bench ``method`` (e.g. ``"optfs-fm"``) with the settings of ``dataset``.

    ``overrides`` replace entries of ``SETTINGS`` / ``OPTFS`` / ``DNIS_SETTINGS`` (hyper-parameter search).
    """
    from graphrec.ctr import DNIS, CTRClassifier, OptFS

    kind, _, backbone = method.rpartition("-")
    common = {**SETTINGS.get(dataset, SETTINGS["synthetic"]), "random_state": seed, "device": device}
    if kind == "":  # a "dataset/backbone" entry (validated best of that backbone) replaces the shared settings
        return CTRClassifier(backbone, **{**common, **SETTINGS.get(f"{dataset}/{backbone}", {}), **overrides})
    if kind in ("rewind", "optfs"):
        search = OPTFS.get(f"{dataset}/{backbone}") or OPTFS.get(dataset, OPTFS["synthetic"])
        if kind == "rewind":  # no penalty and gates kept at ~1 (SGD, tiny lr): every value kept, same recipe
            search = {**search, "reg_lambda": 0.0, "gate_optimizer": "sgd", "gate_lr": 2e-2}
        return OptFS(backbone, **{**common, **search, **overrides})
    if kind == "dnis":
        return DNIS(backbone, **{**common, **DNIS_SETTINGS.get(dataset, DNIS_SETTINGS["synthetic"]), **overrides})
    raise ValueError(f"unknown ctr method {method!r}")


def report(est: Any, table: Any, seconds: float) -> dict[str, float]:
    """Test metrics of a fitted estimator; ``rows_per_s`` = training rows x epochs (all stages) / ``seconds``."""
    from graphrec.metrics import log_loss

    X, y = table.split("test")
    p = est.predict_proba(X)[:, 1]
    net = est.net_
    epochs = sum(len(getattr(est, h, [])) for h in ("warm_history_", "search_history_", "history_"))
    return {
        "auc": est.score(X, y),
        "logloss": log_loss(y, p),
        "feature_ratio": float(getattr(est, "feature_ratio_", 1.0)),
        "emb_params": float(est.n_embedding_params_),
        "params": float(sum(p.numel() for n, p in net.named_parameters() if not n.startswith("mask."))),
        "rows_per_s": epochs * len(table.splits["train"]) / seconds,
    }


def _runner(method: str):
    def run(table: Any, seed: int, device: str) -> dict[str, float]:
        est = estimator_for(method, table.name, seed, device)
        start = time.perf_counter()
        est.fit(*table.split("train"), eval_set=table.split("valid"))
        return report(est, table, time.perf_counter() - start)

    return run


for _bb in BACKBONE_NAMES:
    register_method("ctr", _bb, _runner(_bb), f"{_bb} backbone, early stopping on valid AUC")
    register_method("ctr", f"rewind-{_bb}", _runner(f"rewind-{_bb}"), f"{_bb} with the OptFS rewind-and-retrain recipe, "
                    "no sparsity penalty (the fair baseline of optfs)")
    register_method("ctr", f"optfs-{_bb}", _runner(f"optfs-{_bb}"), f"OptFS on {_bb}, Lyu et al. WWW 2023")
    register_method("ctr", f"dnis-{_bb}", _runner(f"dnis-{_bb}"), f"DNIS on {_bb} pruned to 50% of the embedding "
                    "table, Cheng et al. 2020")


def _synthetic() -> Any:
    from graphrec.datasets.generators import make_ctr

    table = make_ctr(n_rows=20000, random_state=0)
    table.name = "synthetic"
    return table


def _frappe() -> Any:
    from graphrec.datasets import load

    return load("frappe")


register_dataset("ctr", "synthetic", _synthetic, "generated CTR table, 8 categorical + 3 numeric fields, 20k rows")
register_dataset("ctr", "frappe", _frappe, "Frappe libFM files (NFM release), re-split 7:2:1 with seed 2022")
