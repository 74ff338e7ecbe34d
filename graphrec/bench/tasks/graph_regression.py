"""Bench task ``graph-regression``: GINE with SPE / LapPE / RWSE / no PE on ZINC-12k, scored by MAE.

Datasets carry their training budget, so every method gets the same one:

- ``zinc``: ZINC-12k (10k / 1k / 1k), a compact model (hidden 64, SPE m = 8, rho 4 x 32) and
  10 epochs: a CPU-sized budget, not the paper's (use ``benchmarks/bench_spe_zinc.py`` for the
  official configuration).
- ``zinc-subset``: the first 2000 / 500 / 500 graphs of the splits, same model, 8 epochs: the
  equal small budget of the CPU comparison in BENCHMARKS.md.

Methods: ``gine-spe`` (SPE on all eigenpairs, d = 37), ``gine-lappe`` (8 Laplacian eigenvectors,
random sign flips in training), ``gine-rwse`` (16 random-walk steps), ``gine`` (no PE). The test
MAE is read at the epoch of the best validation MAE.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphrec.bench.registry import register_dataset, register_method, register_task

register_task(
    "graph-regression",
    "graph-level regression (ZINC-12k), GINE with positional encodings",
    ["test_mae", "val_mae"],
    default_method="gine-spe",
    default_dataset="zinc-subset",
)

#: Compact CPU configuration shared by every method (PE width 16 for SPE).
COMPACT = dict(hidden_dims=64, n_layers=4, mlp_layers=2, spe_phis=8, spe_phi_hidden=16, spe_rho_layers=4,
               spe_rho_hidden=32, spe_out=16, spe_d=37, lappe_k=8, rwse_steps=16, batch_size=128)

#: The official ZINC configuration (SPE_gine_gin_mlp_pe37), for GPUs: benchmarks/bench_spe_zinc.py.
OFFICIAL = dict(hidden_dims=128, n_layers=4, mlp_layers=3, spe_phis=16, spe_phi_hidden=16, spe_rho_layers=8,
                spe_rho_hidden=128, spe_out=37, spe_d=37, lappe_k=8, rwse_steps=20, batch_size=128)


@dataclass
class GraphRegressionData:
    """Splits of raw PyG graphs plus the training budget every method gets."""

    name: str
    splits: dict[str, Any]
    epochs: int
    config: dict[str, int]
    _cache: dict = field(default_factory=dict, repr=False)

    def transformed(self, kind: str | None) -> dict[str, list]:
        """The splits with ``pe_transform(kind)`` applied once (cached per kind)."""
        if kind not in self._cache:
            from graphrec.pe.gine import pe_transform

            dims = {"spe": self.config["spe_d"], "lappe": self.config["lappe_k"], "rwse": self.config["rwse_steps"]}
            transform = pe_transform(kind, dims.get(kind, 1))
            self._cache[kind] = {
                split: [g if transform is None else transform(g) for g in graphs]
                for split, graphs in self.splits.items()
            }
        return self._cache[kind]


def build_model(kind: str | None, config: dict[str, int]):
    """The GINE regressor of ``config`` for PE ``kind`` (SPE with elementwise phi and a GIN rho)."""
    from graphrec.pe.gine import GINERegressor
    from graphrec.pe.spe import SPE, ElementwisePhi, GINRho

    spe = None
    if kind == "spe":
        spe = SPE(
            ElementwisePhi(config["spe_phis"], config["spe_phi_hidden"], 3),
            GINRho(config["spe_phis"], config["spe_rho_hidden"], config["spe_out"], config["spe_rho_layers"],
                   config["mlp_layers"]),
        )
    pe_dims = {"lappe": config["lappe_k"], "rwse": config["rwse_steps"]}.get(kind, 8)
    return GINERegressor(kind, spe=spe, pe_dims=pe_dims, hidden_dims=config["hidden_dims"],
                         n_layers=config["n_layers"], mlp_layers=config["mlp_layers"])


def _runner(kind: str | None):
    def run(data: GraphRegressionData, seed: int, device: str) -> dict[str, float]:
        import torch

        from graphrec.pe.training import fit_graph_regressor, graph_mae
        from graphrec.train.rng import isolated_rng

        splits = data.transformed(kind)
        with isolated_rng(seed, torch.device(device)):
            model = build_model(kind, data.config)
        result = fit_graph_regressor(model, splits["train"], splits["val"], epochs=data.epochs,
                                     batch_size=data.config["batch_size"], random_state=seed, device=device)
        return {"test_mae": graph_mae(model, splits["test"]), "val_mae": float(result.best_score)}

    return run


for _name, _kind, _text in (
    ("gine-spe", "spe", "GINE + SPE (Huang et al., ICLR 2024), all eigenpairs"),
    ("gine-lappe", "lappe", "GINE + Laplacian eigenvectors (8, random sign flips)"),
    ("gine-rwse", "rwse", "GINE + random-walk structural encoding (16 steps)"),
    ("gine", None, "GINE, no positional encoding"),
):
    register_method("graph-regression", _name, _runner(_kind), _text)


def _zinc(n: int | None, epochs: int):
    def load() -> GraphRegressionData:
        from graphrec.datasets import load as load_dataset

        raw = load_dataset("zinc")
        sizes = {"train": n, "val": None if n is None else n // 4, "test": None if n is None else n // 4}
        splits = {s: [raw[s][i] for i in range(len(raw[s]) if sizes[s] is None else sizes[s])] for s in raw}
        return GraphRegressionData("zinc" if n is None else "zinc-subset", splits, epochs, dict(COMPACT))

    return load


register_dataset("graph-regression", "zinc", _zinc(None, 10), "ZINC-12k 10k/1k/1k, compact model, 10 epochs")
register_dataset("graph-regression", "zinc-subset", _zinc(2000, 8), "ZINC-12k first 2000/500/500 graphs, 8 epochs")
