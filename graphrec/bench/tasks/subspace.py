"""Bench task ``subspace``: subspace clustering of feature vectors, scored by ACC / NMI / ARI / F1.

Datasets are ``(X (n, d), labels (n,))`` pairs; every method gets the true number of clusters.
"""
from __future__ import annotations

from typing import Any

from graphrec.bench.registry import register_dataset, register_method, register_task

register_task(
    "subspace",
    "subspace clustering of feature vectors (self-expression, coding rate, concatenated SVD)",
    ["acc", "nmi", "ari", "f1"],
    default_method="lsr",
    default_dataset="generated",
)


def _n_clusters(labels: Any) -> int:
    import numpy as np

    return int(np.unique(labels).size)


def _runner(build):
    def run(data: Any, seed: int, device: str) -> dict[str, float]:
        from graphrec.metrics import clustering_report

        X, labels = data
        return clustering_report(labels, build(_n_clusters(labels), seed, device).fit_predict(X))

    return run


def _lsr(k: int, seed: int, device: str) -> Any:
    from graphrec.subspace.deep_sc import LSRSubspaceClustering

    return LSRSubspaceClustering(n_clusters=k, lam=1.0, k_keep=10, random_state=seed, device=device)


def _deep(k: int, seed: int, device: str) -> Any:
    from graphrec.subspace.deep_sc import DeepSubspaceClustering

    return DeepSubspaceClustering(n_clusters=k, random_state=seed, device=device)


def _mlc(k: int, seed: int, device: str) -> Any:
    from graphrec.subspace.mlc import MLC

    return MLC(n_clusters=k, random_state=seed, device=device)


def _concat_svd(k: int, seed: int, device: str) -> Any:
    from graphrec.subspace.concat_svd import ErrorConstrainedMatrixClustering

    return ErrorConstrainedMatrixClustering(rank=4, eps=0.05, method="incremental", n_clusters=k)  # deterministic


def _molrg(k: int, seed: int, device: str) -> Any:
    from graphrec.subspace.diffusion import DiffusionSubspaceClustering

    return DiffusionSubspaceClustering(n_subspaces=k, subspace_dim=4, center=True, random_state=seed, device=device)


register_method("subspace", "lsr", _runner(_lsr),
                "baseline: closed-form least-squares representation (lam=1), top-10 per column, spectral clustering "
                "(dense eigensolver)")
register_method("subspace", "deep-sc", _runner(_deep), "LIHFSS-SVDSC staged deep subspace clustering (arXiv 2504.18179)")
register_method("subspace", "mlc", _runner(_mlc),
                "MLC coding-rate reduction with doubly stochastic membership, eta in {0.025, 0.05, 0.1, 0.2} kept by "
                "the input rate reduction of its partition (ICCV 2023)")
register_method("subspace", "concat-svd", _runner(_concat_svd),
                "error-constrained concatenated-SVD clustering, rank 4, eps 0.05, incremental, merged to k and "
                "refined by K-subspaces sweeps (arXiv 2601.11626)")
register_method("subspace", "molrg-diffusion", _runner(_molrg),
                "diffusion as subspace clustering: MoLRG denoiser trained by score matching on centred data, "
                "subspace dim 4 (NeurIPS 2024)")


def _digits() -> Any:
    from sklearn.datasets import load_digits

    return load_digits(return_X_y=True)


def _generated() -> Any:
    from graphrec.datasets.generators import make_union_of_subspaces

    return make_union_of_subspaces(500, 10, 30, 4, noise=0.01, random_state=0)


register_dataset("subspace", "digits", _digits, "scikit-learn digits, 1797 x 64 raw pixels, 10 classes")
register_dataset("subspace", "generated", _generated,
                 "union of 10 random 4-dim subspaces of R^30, 500 points, noise 0.01 (make_union_of_subspaces)")
