"""The estimator contract every graphrec model follows, and the registry the conformance test walks.

Estimators derive from scikit-learn's ``BaseEstimator`` (mixins to the left), keep
hyper-parameters only in ``__init__``, validate them in ``fit``, return ``self`` from ``fit``,
and expose fitted state in attributes ending with ``_``. Randomness comes from ``random_state``
alone; ``device`` places torch work; ``verbose`` switches progress bars and logging.

Hyper-parameters are checked in ``fit`` with ``graphrec.utils.validation.check_int`` /
``check_float`` / ``check_choice``, which name the parameter and the allowed range.

A method registers its estimator with :func:`register_estimator`, giving a small valid input
and a few bad inputs, so that ``tests/test_estimator_contract.py`` checks it automatically.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

__all__ = ["GraphrecEstimator", "EstimatorSpec", "register_estimator", "registered_estimators", "NotFittedError"]


class GraphrecEstimator(BaseEstimator):
    """Base class: scikit-learn's parameter handling plus graphrec's shared checks."""

    def _check_is_fitted(self) -> None:
        check_is_fitted(self)

    def _check_fitted_input(self, X: Any, name: str = "X") -> Any:
        """Check that the estimator is fitted and that ``X`` is a finite 2-D array with the
        ``n_features_in_`` columns seen in ``fit``; return it as an ndarray (n, n_features_in_)."""
        from graphrec.utils.validation import check_array

        self._check_is_fitted()
        X = check_array(X, name, ndim=2)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"{name} has {X.shape[1]} features, the model was fitted on {self.n_features_in_}")
        return X


@dataclass(frozen=True)
class EstimatorSpec:
    """How the conformance test exercises one estimator.

    Attributes
    ----------
    factory : callable () -> estimator
        Builds a small, fast configuration with ``random_state`` set.
    make_input : callable (seed) -> tuple
        Positional arguments for ``fit`` (e.g. ``(graph,)`` or ``(X, y)``).
    output : callable (fitted estimator, fit args) -> array
        What must be identical for two fits with the same seed (e.g. ``labels_``).
    bad_inputs : dict name -> callable () -> tuple
        Arguments for ``fit`` that must raise ``ValueError`` / ``TypeError``.
    fitted_method : str
        A method that must raise ``NotFittedError`` before ``fit`` (``predict``, ``transform``...).
    """

    factory: Callable[[], Any]
    make_input: Callable[[int], tuple]
    output: Callable[[Any, tuple], Any]
    bad_inputs: dict[str, Callable[[], tuple]] = field(default_factory=dict)
    fitted_method: str | None = None


_ESTIMATORS: dict[str, EstimatorSpec] = {}


def register_estimator(name: str, spec: EstimatorSpec) -> None:
    """Add an estimator to the conformance registry (idempotent for the same name)."""
    _ESTIMATORS[name] = spec


def registered_estimators() -> dict[str, EstimatorSpec]:
    """All registered estimators, importing every subpackage that registers one."""
    import importlib

    for module in _ESTIMATOR_MODULES:
        importlib.import_module(module)
    return dict(_ESTIMATORS)


# Subpackages that register estimators; each method issue appends its module here.
_ESTIMATOR_MODULES: list[str] = ["graphrec.cluster", "graphrec.pe.encoder", "graphrec.kg.estimators", "graphrec.ctr", "graphrec.recsys", "graphrec.tensor", "graphrec.analysis.alignment", "graphrec.analysis.intrinsic_dim", "graphrec.analysis.gist", "graphrec.analysis.pac", "graphrec.models.concrete_merging", "graphrec.subspace.deep_sc", "graphrec.subspace.concat_svd", "graphrec.subspace.mlc", "graphrec.subspace.anomaly", "graphrec.subspace.grassmann_class", "graphrec.subspace.dynamic", "graphrec.subspace.hydra", "graphrec.subspace.franca", "graphrec.subspace.hyperbolic_discovery", "graphrec.subspace.diffusion", "graphrec.subspace.kdiff", "graphrec.subspace.xfactors", "graphrec.subspace.temporal_scl", "graphrec.subspace.msenet", "graphrec.models.grassmann", "graphrec.models.ssvi", "graphrec.models.moe", "graphrec.models.koopman"]
