"""Shared torch subspace primitives.

Every function takes and returns torch tensors on any device (numpy input is accepted and becomes
float64), checks its input (shape, NaN/inf, ranks) with clear errors, and is batched over leading
dimensions where that is natural. Modules: ``linalg`` (randomised SVD), ``subspace`` (truncated SVD,
energy rank, projections, principal angles), ``similarity`` (CKA, CCA), ``streaming`` (Frequent
Directions, incremental SVD), ``orthogonal`` (Householder / Cayley parametrisations, Stiefel and
Grassmann retractions, penalties, spectral norm), ``tensor`` (n-mode products, Tucker, HOSVD),
``transport`` (log-domain Sinkhorn), ``contrastive`` (InfoNCE, SupCon, coding rate), ``hyperbolic``
(Poincaré ball), ``sampling`` (leverage scores and sensitivity sampling), ``sparse``, ``scatter``.
"""
from graphrec.core.contrastive import coding_rate, coding_rate_membership, info_nce, supcon_loss
from graphrec.core.hyperbolic import clip_norm, expmap0, logmap0, mobius_add, poincare_distance
from graphrec.core.linalg import randomized_svd
from graphrec.core.orthogonal import (
    CayleyOrthogonal,
    HouseholderOrthogonal,
    cayley,
    cayley_retraction,
    clip_spectral_norm,
    grassmann_exp,
    grassmann_tangent,
    householder_product,
    orthogonality_error,
    orthogonality_penalty,
    procrustes,
    project_spectral_sphere,
    qr_retraction,
    spectral_norm,
    stiefel_tangent,
)
from graphrec.core.sampling import leverage_scores, lp_sensitivities, sensitivity_sample
from graphrec.core.scatter import scatter
from graphrec.core.similarity import cca, hsic, kernel_cka, linear_cka
from graphrec.core.sparse import SparseOperator, normalized_adjacency, to_torch_sparse
from graphrec.core.streaming import FrequentDirections, IncrementalSVD, StreamingPCA
from graphrec.core.subspace import (
    energy_rank,
    numerical_rank,
    orthonormal_basis,
    principal_angles,
    project,
    residual,
    subspace_distance,
    truncated_svd,
)
from graphrec.core.tensor import fold, hosvd, mode_dot, multi_mode_dot, tucker_to_tensor, unfold
from graphrec.core.transport import doubly_stochastic, sinkhorn, symmetric_doubly_stochastic

__all__ = [
    "CayleyOrthogonal", "FrequentDirections", "HouseholderOrthogonal", "IncrementalSVD", "SparseOperator", "StreamingPCA",
    "cayley", "cayley_retraction", "cca", "clip_norm", "clip_spectral_norm", "coding_rate",
    "coding_rate_membership", "doubly_stochastic", "energy_rank", "expmap0", "fold", "grassmann_exp",
    "grassmann_tangent", "hosvd", "householder_product", "hsic", "info_nce", "kernel_cka", "leverage_scores",
    "linear_cka", "logmap0", "lp_sensitivities", "mobius_add", "mode_dot", "multi_mode_dot",
    "normalized_adjacency", "numerical_rank", "orthogonality_error", "orthogonality_penalty",
    "orthonormal_basis", "poincare_distance", "principal_angles", "procrustes", "project",
    "project_spectral_sphere", "qr_retraction", "randomized_svd", "residual", "scatter", "sensitivity_sample",
    "sinkhorn", "spectral_norm", "stiefel_tangent", "subspace_distance", "supcon_loss", "symmetric_doubly_stochastic",
    "to_torch_sparse",
    "truncated_svd", "tucker_to_tensor", "unfold",
]
