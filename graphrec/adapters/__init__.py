"""Parameter-efficient adapters built on ``graphrec.core``: DoRA with the factored row norm and the
Effort SVD-residual (minor-subspace) adapter."""
from graphrec.adapters.dora import DoRALinear, dora_row_norm
from graphrec.adapters.svd_residual import SVDResidualLinear, apply_svd_residual

__all__ = ["DoRALinear", "SVDResidualLinear", "apply_svd_residual", "dora_row_norm"]
