"""Parameter-efficient adapters built on ``graphrec.core``, sharing one interface
(:class:`~graphrec.adapters.base.AdapterLayer`, :func:`wrap`, :func:`merge`, :func:`unmerge`): DoRA with
the factored norm, Effort's SVD residual, FLoRA's Tucker core, SVFit's singular values and the
Householder projector, the λ-orthogonal compatibility map; plus CoSO (an optimiser projecting
gradients away from past tasks' subspaces) and spectral-sphere hyper-connections (sHC)."""
from graphrec.adapters.base import AdapterLayer, merge, unmerge, wrap
from graphrec.adapters.coso import CoSO
from graphrec.adapters.dora import DoRALinear, dora_row_norm
from graphrec.adapters.flora import FLoRAConv2d, FLoRALinear, apply_flora
from graphrec.adapters.hyper_connections import Birkhoff, HyperConnectedStack, HyperConnection, SpectralSphere
from graphrec.adapters.lambda_orth import LambdaOrthogonalLinear
from graphrec.adapters.householder import HouseholderProjector, apply_householder_projector, householder_vectors
from graphrec.adapters.svd_residual import SVDResidualLinear, apply_svd_residual
from graphrec.adapters.svfit import SVFitLinear, apply_svfit

__all__ = [
    "AdapterLayer", "Birkhoff", "CoSO", "DoRALinear", "HyperConnectedStack", "HyperConnection",
    "LambdaOrthogonalLinear", "SpectralSphere", "FLoRAConv2d", "FLoRALinear", "HouseholderProjector", "SVDResidualLinear",
    "SVFitLinear", "apply_flora", "apply_householder_projector", "apply_svd_residual", "apply_svfit",
    "dora_row_norm", "householder_vectors", "merge", "unmerge", "wrap",
]
