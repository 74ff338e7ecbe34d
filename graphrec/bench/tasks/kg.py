"""Bench task ``kg``: knowledge-graph link prediction, filtered MRR / Hits@K of heads and tails.

Methods fit on the train split with the papers' per-dataset settings (:data:`graphrec.kg.PRESETS`;
datasets without a preset use a small configuration), keep the epoch with the best validation MRR,
and report the test split. Extra metrics: ``epochs`` run, ``best_epoch`` (1-based) and
``valid_mrr`` of the kept weights.
"""
from __future__ import annotations

from typing import Any

from graphrec.bench.registry import register_dataset, register_method, register_task

register_task(
    "kg",
    "knowledge-graph link prediction (filtered, both directions)",
    ["mrr", "hits@1", "hits@3", "hits@10", "mr"],
    default_method="lowfer",
    default_dataset="synthetic",
)

#: Settings for datasets without a paper preset (the generated default).
SMALL = dict(d_e=32, d_r=16, max_epochs=20, eval_every=5, lr=0.01, input_dropout=0.0, hidden_dropout1=0.0,
             hidden_dropout2=0.0)


def _runner(class_name: str):
    def run(kg: Any, seed: int, device: str) -> dict[str, float]:
        from graphrec import kg as kg_module

        cls = getattr(kg_module, class_name)
        if kg.name in kg_module.PRESETS:
            est = cls.from_preset(kg.name, random_state=seed, device=device)
        else:
            extra = dict(k=8) if class_name == "LowFER" else {}
            est = cls(**SMALL, **extra, random_state=seed, device=device)
        est.fit(kg)
        report = est.evaluate(kg, "test")
        report["epochs"] = float(est.n_epochs_)
        if est.best_epoch_ is not None:
            report["best_epoch"] = float(est.best_epoch_ + 1)
            report["valid_mrr"] = float(est.history_[est.best_epoch_]["valid_mrr"])
        return report

    return run


register_method("kg", "lowfer", _runner("LowFER"), "LowFER, Amin et al. ICML 2020 (official settings per dataset)")
register_method("kg", "tucker", _runner("TuckER"), "TuckER, Balazevic et al. EMNLP 2019 (official settings per dataset)")


def _synthetic() -> Any:
    from graphrec.datasets import make_knowledge_graph

    return make_knowledge_graph(n_entities=80, n_relations=4, n_triples=1500, random_state=0)


register_dataset("kg", "synthetic", _synthetic, "generated KG with planted rotations (no download)")


def _real(name: str):
    def load() -> Any:
        from graphrec.datasets import load as load_dataset

        return load_dataset(name)

    return load


def _register_real_kgs() -> None:
    from graphrec.datasets import list_datasets

    for name in list_datasets(kind="triples"):
        register_dataset("kg", name, _real(name), f"real knowledge graph {name!r} (datasets/{name}.toml)")


_register_real_kgs()
