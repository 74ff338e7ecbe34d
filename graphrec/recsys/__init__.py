"""Collaborative filtering: DirectAU (KDD 2022), BPR, LightGCN, protocols and implicit wrappers."""
from graphrec.recsys.estimators import BPR, DirectAU, LightGCN
from graphrec.recsys.optim import SparseRowAdam
from graphrec.recsys.splits import given_split, k_core, ratio_split

__all__ = ["DirectAU", "BPR", "LightGCN", "ratio_split", "given_split", "k_core", "SparseRowAdam"]
