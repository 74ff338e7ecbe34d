"""Bench task ``cluster``: node clustering of attributed graphs, scored by ACC / NMI / ARI / F1."""
from __future__ import annotations

from typing import Any

from graphrec.bench.registry import register_dataset, register_method, register_task

register_task(
    "cluster",
    "node clustering of attributed graphs",
    ["acc", "nmi", "ari", "f1"],
    default_method="s2cag",
    default_dataset="csbm",
)


def _score(graph: Any, labels) -> dict[str, float]:
    from graphrec.metrics import clustering_report

    return clustering_report(graph.labels, labels)


def _spectral(graph: Any, seed: int, device: str) -> dict[str, float]:
    from graphrec.cluster import AttributedSpectralClustering

    est = AttributedSpectralClustering(n_clusters=graph.n_classes, random_state=seed, device=device)
    return _score(graph, est.fit_predict(graph))


def _sklearn_spectral(graph: Any, seed: int, device: str) -> dict[str, float]:
    """Peer: scikit-learn's spectral clustering of the graph alone (attributes ignored)."""
    import scipy.sparse as sp
    from sklearn.cluster import SpectralClustering

    affinity = graph.adjacency + sp.identity(graph.n_nodes, format="csr")
    est = SpectralClustering(graph.n_classes, affinity="precomputed", random_state=seed, assign_labels="kmeans")
    return _score(graph, est.fit_predict(affinity))


def _kmeans_features(graph: Any, seed: int, device: str) -> dict[str, float]:
    """Peer: scikit-learn's k-means on the row-normalised attributes alone (graph ignored)."""
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import normalize

    est = KMeans(graph.n_classes, n_init=10, random_state=seed)
    return _score(graph, est.fit_predict(normalize(graph.features)))


def _s2cag_estimator(class_name: str, graph: Any, seed: int, device: str, **overrides: Any) -> Any:
    """S2CAG / M-S2CAG with the official preset when the dataset has one, else the defaults."""
    from graphrec import cluster

    cls = getattr(cluster, class_name)
    if graph.name in cluster.PRESETS:
        return cls.from_preset(graph.name, random_state=seed, device=device, **overrides)
    return cls(n_clusters=graph.n_classes, random_state=seed, device=device, **overrides)


def _s2cag_runner(class_name: str, **overrides: Any):
    def run(graph: Any, seed: int, device: str) -> dict[str, float]:
        return _score(graph, _s2cag_estimator(class_name, graph, seed, device, **overrides).fit_predict(graph))

    return run


def _s2cag_embed(class_name: str, **overrides: Any):
    def embed(graph: Any, seed: int, device: str) -> tuple[Any, Any]:
        est = _s2cag_estimator(class_name, graph, seed, device, **overrides).fit(graph)
        return est.embedding_, est.labels_

    return embed


def _spectral_embed(graph: Any, seed: int, device: str) -> tuple[Any, Any]:
    from graphrec.cluster import AttributedSpectralClustering

    est = AttributedSpectralClustering(n_clusters=graph.n_classes, random_state=seed, device=device).fit(graph)
    return est.embedding_, est.labels_


register_method("cluster", "spectral", _spectral, "k-means on the SVD of graph-smoothed attributes (baseline)",
                embed=_spectral_embed)
register_method("cluster", "sklearn-spectral", _sklearn_spectral, "peer: sklearn SpectralClustering on the graph only")
register_method("cluster", "kmeans", _kmeans_features, "peer: sklearn KMeans on the attributes only")
for _name, _cls in (("s2cag", "S2CAG"), ("m-s2cag", "MS2CAG")):
    register_method("cluster", _name, _s2cag_runner(_cls), f"{_cls}, Lin et al. KDD 2025 (official preset per dataset)",
                    embed=_s2cag_embed(_cls))
    register_method("cluster", f"{_name}-kmeans", _s2cag_runner(_cls, assign_labels="kmeans"),
                    f"{_cls} with k-means instead of SNEM rounding", embed=_s2cag_embed(_cls, assign_labels="kmeans"))


def _csbm() -> Any:
    from graphrec.datasets.generators import make_attributed_sbm

    return make_attributed_sbm(random_state=0)


def _karate() -> Any:
    from graphrec.datasets.builtin import load_karate_club

    return load_karate_club()


def _digits() -> Any:
    from graphrec.datasets.builtin import load_digits_graph

    return load_digits_graph()


register_dataset("cluster", "csbm", _csbm, "generated planted-partition attributed graph (no download)")
register_dataset("cluster", "karate", _karate, "Zachary's karate club (networkx)")
register_dataset("cluster", "digits", _digits, "scikit-learn digits with a kNN graph")


def _real(name: str):
    def load() -> Any:
        from graphrec.datasets import load as load_dataset

        return load_dataset(name)

    return load


def _register_real_graphs() -> None:
    from graphrec.datasets import list_datasets

    for name in list_datasets(kind="graph"):
        register_dataset("cluster", name, _real(name), f"real attributed graph {name!r} (datasets/{name}.toml)")


_register_real_graphs()
