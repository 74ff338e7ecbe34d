"""Every registered estimator honours the scikit-learn contract graphrec promises.

clone, get/set_params, hyper-parameters untouched by fit, fit returns self, not-fitted errors,
clear errors on bad input, determinism under a seed.
"""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from graphrec.base import registered_estimators

SPECS = registered_estimators()


def _equal(a, b) -> bool:
    a = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().cpu().numpy() if hasattr(b, "detach") else np.asarray(b)
    return a.shape == b.shape and np.array_equal(a, b)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_clone_and_params(name):
    est = SPECS[name].factory()
    params = est.get_params()
    twin = clone(est)
    assert twin is not est and twin.get_params() == params
    key = next(iter(params))
    assert est.set_params(**{key: params[key]}) is est
    with pytest.raises(ValueError):
        est.set_params(no_such_parameter=1)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_not_fitted(name):
    spec = SPECS[name]
    est = spec.factory()
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    if spec.fitted_method is not None:
        with pytest.raises(NotFittedError):
            getattr(est, spec.fitted_method)(*spec.make_input(0)[:1])


@pytest.mark.parametrize("name", sorted(SPECS))
def test_fit_returns_self_keeps_params_and_is_deterministic(name):
    spec = SPECS[name]
    args = spec.make_input(0)
    est = spec.factory()
    before = est.get_params()
    assert est.fit(*args) is est
    assert est.get_params() == before, "fit must not change hyper-parameters"
    check_is_fitted(est)
    again = clone(est).fit(*spec.make_input(0))
    assert _equal(spec.output(est, args), spec.output(again, args)), "same random_state, different result"


@pytest.mark.parametrize(
    "name,case", [(n, c) for n in sorted(SPECS) for c in sorted(SPECS[n].bad_inputs)] or [pytest.param("", "", marks=pytest.mark.skip)]
)
def test_bad_input_raises_clear_error(name, case):
    spec = SPECS[name]
    with pytest.raises((ValueError, TypeError)) as info:
        spec.factory().fit(*spec.bad_inputs[case]())
    assert len(str(info.value)) > 15, "error message should say what was wrong"


def test_registry_is_not_empty():
    assert SPECS, "no estimator registered"
