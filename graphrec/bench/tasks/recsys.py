"""Bench task ``recsys``: top-K recommendation on DirectAU's protocol (5-core, per-user 8:1:1, seeded).

Each method trains on ``train``, early-stops on valid NDCG@20 where it can, and is tested with
full ranking (train + valid items masked): Recall / NDCG / HitRate @10/20/50.
"""
from __future__ import annotations

from typing import Any

from graphrec.bench.registry import register_dataset, register_method, register_task

register_task("recsys", "top-K recommendation, full ranking (DirectAU protocol)",
              ["recall@20", "ndcg@20", "recall@10", "ndcg@10", "hitrate@20"],
              default_method="directau", default_dataset="latent")

_GAMMA = {"beauty": 0.5, "gowalla": 5.0}
_BATCH = {"gowalla": 1024}


def _runner(kind: str):
    def run(data: Any, seed: int, device: str) -> dict[str, float]:
        from graphrec.metrics import evaluate_full_ranking
        from graphrec.recsys import BPR, DirectAU, LightGCN, ratio_split

        split = ratio_split(data, random_state=seed, min_interactions=5 if data.name != "latent" else 1)
        name = data.name
        if kind == "als":
            from graphrec.recsys.peers import ImplicitALS

            model = ImplicitALS(factors=64, random_state=seed).fit(split.splits["train"])
        elif kind.startswith("directau"):
            model = DirectAU(encoder="lightgcn" if kind.endswith("lightgcn") else "mf", gamma=_GAMMA.get(name, 1.0),
                             batch_size=_BATCH.get(name, 256), random_state=seed, device=device).fit(split)
        else:
            model = (BPR if kind == "bpr" else LightGCN)(random_state=seed, device=device).fit(split)
        seen = (split.splits["train"] + split.splits["valid"]).tocsr()
        u, i = model.user_factors_, model.item_factors_
        return evaluate_full_ranking(lambda b: u[b] @ i.T, seen, split.splits["test"], ks=(10, 20, 50))

    return run


for _kind, _desc in (("directau", "DirectAU-MF, Wang et al. KDD 2022"),
                     ("directau-lightgcn", "DirectAU with a 2-layer LightGCN encoder"),
                     ("bpr", "BPR-MF (Rendle et al. 2009)"), ("lightgcn", "LightGCN + BPR (He et al. 2020)"),
                     ("als", "peer: implicit's ALS (needs the recsys extra)")):
    register_method("recsys", _kind, _runner(_kind), _desc)


def _latent() -> Any:
    from graphrec.datasets import make_latent_factor_interactions

    data = make_latent_factor_interactions(n_users=1000, n_items=500, random_state=0)
    data.name = "latent"
    return data


def _real(name: str):
    def load() -> Any:
        from graphrec.datasets import load as load_dataset

        return load_dataset(name)

    return load


register_dataset("recsys", "latent", _latent, "generated latent-factor feedback (no download)")
for _name in ("beauty", "gowalla", "ml-100k"):
    register_dataset("recsys", _name, _real(_name), f"{_name}, 5-core per-user 8:1:1")
