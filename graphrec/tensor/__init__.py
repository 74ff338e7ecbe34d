"""Continuous-indexed tensors: FunBaT (Fang et al., ICLR 2024), state-space GP priors, splits, ALS baselines."""
from graphrec.tensor.baselines import MaskedCPALS, MaskedTuckerALS, bin_coords
from graphrec.tensor.funbat import FunBaT
from graphrec.tensor.splits import kfold_splits
from graphrec.tensor.statespace import MaternSDE, matern_kernel

__all__ = ["FunBaT", "MaskedCPALS", "MaskedTuckerALS", "MaternSDE", "bin_coords", "kfold_splits", "matern_kernel"]
