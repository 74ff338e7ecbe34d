"""Positional encodings for graphs: SPE (stable and expressive PEs) and a GINE model that uses them.

- :class:`AddSPEEigenpairs` / :func:`laplacian_eigenpairs`: the ``d`` smallest Laplacian
  eigenpairs per graph, padded, with a mask (a PyG transform).
- :class:`SPE` with :class:`ElementwisePhi` / :class:`DeepSetsPhi` (``phi``) and :class:`GINRho`
  (``rho``): ``SPE(V, lambda) = rho(V diag(phi_1(lambda)) V^T, ..., V diag(phi_m(lambda)) V^T)``.
- :class:`GINERegressor`: GINE graph regressor taking SPE, PyG's Laplacian-eigenvector PE, the
  random-walk PE, or no PE.
- :class:`SPEEncoder`: estimator returning node PEs as features, ``SPEEncoder().fit_transform(graph)``.

Names load lazily, so ``import graphrec.pe`` costs nothing until a class is used
(:class:`AddSPEEigenpairs` and the GINE data helpers import ``torch_geometric``).

Reference: Huang et al., "On the Stability of Expressive Positional Encodings for Graphs", ICLR 2024.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "AddSPEEigenpairs": "graphrec.pe.transform",
    "laplacian_eigenpairs": "graphrec.pe.eigen",
    "SPE": "graphrec.pe.spe",
    "ElementwisePhi": "graphrec.pe.spe",
    "DeepSetsPhi": "graphrec.pe.spe",
    "GINRho": "graphrec.pe.spe",
    "GINERegressor": "graphrec.pe.gine",
    "PE_KINDS": "graphrec.pe.gine",
    "SPEEncoder": "graphrec.pe.encoder",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'graphrec.pe' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
