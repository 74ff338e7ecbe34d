"""Measurements of learned representations and data on the shared core: subspace overlaps, neuron
matching, alignment of embedding spaces, intrinsic dimension, sampling bounds, data selection."""
from graphrec.analysis.alignment import CCAAligner, match_accuracy, procrustes_align, retrieval_topk
from graphrec.analysis.gist import GISTSelector, gradient_subspace, per_example_gradients
from graphrec.analysis.interaction_rank import (
    attention_scores, heads_needed, interaction_rank, interaction_spectrum, lag_gradient_norms, mixing_apply,
    multihead_mixing_tensor, realize_with_heads, semiseparable_rank, ssm_apply, ssm_lag_operators, ssm_mixing_tensor,
)
from graphrec.analysis.factorisation import (
    FactorisationScores, concept_means, concept_rank, cross_concept_orthogonality, factor_subspace_overlap,
    factorisation_scores, heldout_composition_error, linear_factorization_r2, min_dim_for_composition,
)
from graphrec.analysis.intrinsic_dim import (
    DenseProjection, FastfoodProjection, IntrinsicDimension, IntrinsicDimensionResult, RandomSubspaceModel, fwht,
    intrinsic_dimension,
)
from graphrec.analysis.isoclip import inter_modal_operator, iso_projectors, map_at_r, spectral_band_projectors
from graphrec.analysis.matching import (
    SparsePrediction, bipartite_match, mean_matched_correlation, semi_match, sparse_prediction, spectral_unit_groups,
    unit_correlation,
)
from graphrec.analysis.pac import (
    InvariantRepresentation, LinearSEM, PretrainedFactorRegressor, approx_invariance_gap, bayes_risk,
    environment_moments, environment_predictor, invariance_sample_size, make_factor_regression, make_linear_sem,
    pac_invariance_curve,
)
from graphrec.analysis.safety import (
    SubspaceOverlap, energy_basis, fine_tuning_overlaps, mode_subspace_overlap, mso_random_baseline, project_update,
    subspace_overlap, update_diagnostics,
)
from graphrec.analysis.sensitivity import (
    SCHEMES, lp_distortion, root_leverage_scores, sample_complexity, subspace_distortion, total_sensitivity_bound,
)

__all__ = [
    "CCAAligner", "DenseProjection", "FactorisationScores", "FastfoodProjection", "GISTSelector",
    "IntrinsicDimension", "IntrinsicDimensionResult", "InvariantRepresentation", "LinearSEM",
    "PretrainedFactorRegressor", "RandomSubspaceModel", "SCHEMES", "SparsePrediction", "SubspaceOverlap",
    "approx_invariance_gap", "attention_scores", "bayes_risk", "bipartite_match", "concept_means", "concept_rank",
    "cross_concept_orthogonality", "energy_basis", "environment_moments", "environment_predictor",
    "factor_subspace_overlap", "factorisation_scores", "fine_tuning_overlaps", "fwht", "gradient_subspace",
    "heads_needed", "heldout_composition_error", "inter_modal_operator", "interaction_rank", "interaction_spectrum",
    "intrinsic_dimension", "invariance_sample_size", "iso_projectors", "lag_gradient_norms",
    "linear_factorization_r2", "lp_distortion", "make_factor_regression", "make_linear_sem", "map_at_r",
    "match_accuracy", "mean_matched_correlation", "min_dim_for_composition", "mixing_apply",
    "mode_subspace_overlap", "mso_random_baseline", "multihead_mixing_tensor", "pac_invariance_curve",
    "per_example_gradients", "procrustes_align", "project_update", "realize_with_heads", "retrieval_topk",
    "root_leverage_scores", "sample_complexity", "semi_match", "semiseparable_rank", "sparse_prediction",
    "spectral_band_projectors", "spectral_unit_groups", "ssm_apply", "ssm_lag_operators", "ssm_mixing_tensor",
    "subspace_distortion", "subspace_overlap", "total_sensitivity_bound", "unit_correlation", "update_diagnostics",
]
