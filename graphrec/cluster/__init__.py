"""Clustering of attributed graphs."""
from graphrec.base import EstimatorSpec, register_estimator
from graphrec.cluster.spectral import AttributedSpectralClustering, smoothed_feature_embedding

__all__ = ["AttributedSpectralClustering", "smoothed_feature_embedding"]


def _sbm(seed: int) -> tuple:
    from graphrec.datasets.generators import make_attributed_sbm

    return (make_attributed_sbm(n_nodes=200, n_clusters=3, random_state=seed),)


def _bad_inputs() -> dict:
    import numpy as np
    import scipy.sparse as sp

    ring = sp.diags([np.ones(9), np.ones(9)], [1, -1], shape=(10, 10)).tocsr()
    feats = np.eye(10)
    nan_feats = feats.copy()
    nan_feats[0, 0] = np.nan
    return {
        "not square": lambda: ((sp.csr_matrix(np.ones((10, 9))), feats),),
        "asymmetric": lambda: ((sp.triu(ring).tocsr(), feats),),
        "nan features": lambda: ((ring, nan_feats),),
        "row mismatch": lambda: ((ring, feats[:5]),),
        "empty graph": lambda: ((sp.csr_matrix((0, 0)), np.zeros((0, 3))),),
        "wrong type": lambda: ("graph",),
    }


register_estimator(
    "AttributedSpectralClustering",
    EstimatorSpec(
        factory=lambda: AttributedSpectralClustering(n_clusters=3, random_state=0),
        make_input=_sbm,
        output=lambda est, args: est.labels_,
        bad_inputs=_bad_inputs(),
        fitted_method=None,
    ),
)
