"""Subspace clustering and subspace representation learning on the shared core (:mod:`graphrec.core`)."""
from graphrec.subspace.diffusion import DiffusionSubspaceClustering, MoLRGDenoiser, molrg_denoiser, molrg_posterior
from graphrec.subspace.dynamic import (
    DynamicSubspaceLearners, PlateauGrowth, SpatialAttentionGate, margin_loss, split_newest, taylor_scores,
)
from graphrec.subspace.franca import RASA, MatryoshkaClusterHead, MatryoshkaClustering, nested_cluster_loss, sinkhorn_targets
from graphrec.subspace.grassmann_class import GrassmannClassHead, GrassmannClassifier, GrassmannSGD
from graphrec.subspace.kdiff import KDiffusion, k_target, optimal_k, to_x_eps, twonn_dimension
from graphrec.subspace.msenet import MSENet
from graphrec.subspace.hydra import PairGate, SimLAP, gated_multipositive_info_nce
from graphrec.subspace.hyperbolic_discovery import (
    HyperbolicCategoryDiscovery, gcd_accuracy, hybrid_similarity, make_hierarchical_blobs, similarity_supcon, ss_kmeans,
)
from graphrec.subspace.temporal_scl import TemporalSCL, make_progression_sequences
from graphrec.subspace.xfactors import XFactors, make_factor_data
