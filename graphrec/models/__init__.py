"""Model papers built on the shared core: Grassmann-flow sequence layers, sparse subspace variational
inference, subspace-pruned mixtures of experts, task-vector merging masks, sparse-dictionary layer
compression and Koopman representations."""
from graphrec.models.concrete_merging import (
    ConcreteMask, ConcreteTaskArithmetic, make_merging_tasks, merge_task_vectors, prediction_entropy, task_arithmetic,
    task_vectors,
)
from graphrec.models.grassmann import CausalGrassmannMixing, CausalTransformerLM, CharLanguageModel, GrassmannLM, plucker
from graphrec.models.koopman import InfoKoopman, ridge_koopman, temporal_infonce, von_neumann_entropy
from graphrec.models.moe import CDSPMoERegressor, SharedSubspaceMoE, conflict_loss, sparse_aligned_cosine
from graphrec.models.cospadi import (
    SparseDictLinear, calibrated_sparse_dictionary, calibrated_truncated_svd, calibration_whitener, compress_linear,
    compression_budget, ksvd, omp, svd_rank_for_budget,
)
from graphrec.models.ssvi import SSVIClassifier, SparseMeanFieldLinear, folded_normal_mean, folded_normal_snr

__all__ = [
    "CDSPMoERegressor", "CausalGrassmannMixing", "CausalTransformerLM", "CharLanguageModel", "ConcreteMask",
    "ConcreteTaskArithmetic", "GrassmannLM", "InfoKoopman", "SSVIClassifier", "SharedSubspaceMoE",
    "SparseDictLinear", "SparseMeanFieldLinear", "calibrated_sparse_dictionary", "calibrated_truncated_svd",
    "calibration_whitener", "compress_linear", "compression_budget", "conflict_loss", "folded_normal_mean",
    "folded_normal_snr", "ksvd", "make_merging_tasks", "merge_task_vectors", "omp", "plucker", "prediction_entropy",
    "ridge_koopman", "sparse_aligned_cosine", "svd_rank_for_budget", "task_arithmetic", "task_vectors",
    "temporal_infonce", "von_neumann_entropy",
]
