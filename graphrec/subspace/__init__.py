"""Subspace clustering and subspace representation learning on the shared core (:mod:`graphrec.core`)."""
from graphrec.subspace.anomaly import SubspaceAD
from graphrec.subspace.concat_svd import ErrorConstrainedMatrixClustering, concat_error, concat_error_bounds
from graphrec.subspace.deep_sc import (
    DeepSubspaceClustering, LSRSubspaceClustering, RelativeErrorStopper, affinity_spectral_clustering,
    keep_topk_per_column, layerwise_self_expression_loss, lsr_coefficients, structured_l1,
)
from graphrec.subspace.diffusion import DiffusionSubspaceClustering, MoLRGDenoiser, molrg_denoiser, molrg_posterior
from graphrec.subspace.dynamic import (
    DynamicSubspaceLearners, PlateauGrowth, SpatialAttentionGate, margin_loss, split_newest, taylor_scores,
)
from graphrec.subspace.franca import RASA, MatryoshkaClusterHead, MatryoshkaClustering, nested_cluster_loss, sinkhorn_targets
from graphrec.subspace.grassmann_class import GrassmannClassHead, GrassmannClassifier, GrassmannSGD
from graphrec.subspace.kdiff import KDiffusion, k_target, optimal_k, to_x_eps, twonn_dimension
from graphrec.subspace.mlc import MLC, mlc_loss, partition_rate_reduction, tcr_loss
from graphrec.subspace.msenet import MSENet
from graphrec.subspace.hydra import PairGate, SimLAP, gated_multipositive_info_nce
from graphrec.subspace.hyperbolic_discovery import (
    HyperbolicCategoryDiscovery, gcd_accuracy, hybrid_similarity, make_hierarchical_blobs, similarity_supcon, ss_kmeans,
)
from graphrec.subspace.temporal_scl import TemporalSCL, make_progression_sequences
from graphrec.subspace.xfactors import XFactors, make_factor_data

__all__ = [
    "DeepSubspaceClustering", "DiffusionSubspaceClustering", "DynamicSubspaceLearners",
    "ErrorConstrainedMatrixClustering", "GrassmannClassHead", "GrassmannClassifier", "GrassmannSGD",
    "HyperbolicCategoryDiscovery", "KDiffusion", "LSRSubspaceClustering", "MLC", "MSENet", "MatryoshkaClusterHead",
    "MatryoshkaClustering", "MoLRGDenoiser", "PairGate", "PlateauGrowth", "RASA", "RelativeErrorStopper", "SimLAP",
    "SpatialAttentionGate", "SubspaceAD", "TemporalSCL", "XFactors", "affinity_spectral_clustering", "concat_error",
    "concat_error_bounds", "gated_multipositive_info_nce", "gcd_accuracy", "hybrid_similarity", "k_target",
    "keep_topk_per_column", "layerwise_self_expression_loss", "lsr_coefficients", "make_factor_data",
    "make_hierarchical_blobs", "make_progression_sequences", "margin_loss", "mlc_loss", "molrg_denoiser",
    "molrg_posterior", "nested_cluster_loss", "optimal_k", "partition_rate_reduction", "similarity_supcon",
    "sinkhorn_targets", "split_newest", "ss_kmeans", "structured_l1", "taylor_scores", "tcr_loss", "to_x_eps",
    "twonn_dimension",
]
