"""Clustering of attributed graphs."""
from graphrec.base import EstimatorSpec, register_estimator
from graphrec.cluster.out_of_core import DiskAttributedGraph
from graphrec.cluster.s2cag import MS2CAG, PRESETS, S2CAG
from graphrec.cluster.snem import snem_rounding
from graphrec.cluster.spectral import AttributedSpectralClustering, smoothed_feature_embedding

__all__ = ["AttributedSpectralClustering", "DiskAttributedGraph", "MS2CAG", "PRESETS", "S2CAG", "smoothed_feature_embedding", "snem_rounding"]


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


def _s2cag_bad_inputs() -> dict:
    g = _sbm(0)[0]
    return {
        **_bad_inputs(),
        "too many clusters": lambda: ((g.adjacency[:2, :2], g.features[:2]),),
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

for _name, _cls, _extra in (("S2CAG", S2CAG, {}), ("MS2CAG", MS2CAG, {"tau": 20})):
    register_estimator(
        _name,
        EstimatorSpec(
            factory=lambda cls=_cls, extra=_extra: cls(n_clusters=3, random_state=0, **extra),
            make_input=_sbm,
            output=lambda est, args: est.labels_,
            bad_inputs=_s2cag_bad_inputs(),
            fitted_method=None,
        ),
    )
