"""Parameter-efficient adapters built on ``graphrec.core``, sharing one interface
(:class:`~graphrec.adapters.base.AdapterLayer`, :func:`wrap`, :func:`merge`, :func:`unmerge`)."""
from graphrec.adapters.base import AdapterLayer, merge, unmerge, wrap
from graphrec.adapters.dora import DoRALinear, dora_row_norm
from graphrec.adapters.svd_residual import SVDResidualLinear, apply_svd_residual

__all__ = ["AdapterLayer", "DoRALinear", "SVDResidualLinear", "apply_svd_residual", "dora_row_norm", "merge", "unmerge", "wrap"]
