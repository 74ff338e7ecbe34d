"""The estimator contract every graphrec model follows, and the registry the conformance test walks.

Estimators derive from scikit-learn's ``BaseEstimator`` (mixins to the left), keep
hyper-parameters only in ``__init__``, validate them in ``fit``, return ``self`` from ``fit``,
and expose fitted state in attributes ending with ``_``. Randomness comes from ``random_state``
alone; ``device`` places torch work; ``verbose`` switches progress bars and logging.

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

    def _check_params(self, constraints: dict[str, Callable[[Any], bool] | tuple]) -> None:
        """Validate hyper-parameters at fit time.

        ``constraints`` maps a parameter name to a predicate or to a tuple of allowed values;
        a failure raises ``ValueError`` naming the parameter, its value and what is allowed.
        """
        for name, rule in constraints.items():
            value = getattr(self, name)
            if isinstance(rule, tuple):
                if value not in rule:
                    raise ValueError(f"{name}={value!r} is not valid; expected one of {rule}")
            elif not rule(value):
                doc = getattr(rule, "__doc__", None) or "a valid value"
                raise ValueError(f"{name}={value!r} is not valid; expected {doc.strip()}")


def positive_int(value: Any) -> bool:
    """a positive integer"""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def non_negative_int(value: Any) -> bool:
    """a non-negative integer"""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def positive_float(value: Any) -> bool:
    """a positive finite number"""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < float(value) < float("inf")


def unit_interval(value: Any) -> bool:
    """a number in [0, 1]"""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= float(value) <= 1.0


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
_ESTIMATOR_MODULES: list[str] = ["graphrec.cluster"]
