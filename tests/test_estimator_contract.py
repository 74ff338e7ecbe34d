"""Every registered estimator honours the scikit-learn contract graphrec promises.

clone, get/set_params, hyper-parameters untouched by fit, fit returns self, not-fitted errors,
clear errors on bad input, determinism under a seed, pickle / deepcopy of a fitted estimator
(also loaded in a fresh process).
"""
from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.base import ClusterMixin, TransformerMixin, clone
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


CLUSTERERS = sorted(n for n, spec in SPECS.items() if isinstance(spec.factory(), ClusterMixin))


@pytest.mark.parametrize("name", CLUSTERERS or [pytest.param("", marks=pytest.mark.skip)])
def test_clusterer_labels_are_one_label_per_sample_and_fit_predict_returns_them(name):
    spec = SPECS[name]
    est = spec.factory().fit(*spec.make_input(0))
    labels = est.labels_
    assert isinstance(labels, np.ndarray) and labels.ndim == 1 and labels.dtype.kind in "iu", (
        f"labels_ must be a 1-d integer array, got {type(labels).__name__} {np.shape(labels)}")
    assert np.array_equal(spec.factory().fit_predict(*spec.make_input(0)), labels)


TRANSFORMERS = sorted(n for n, spec in SPECS.items() if isinstance(spec.factory(), TransformerMixin))


@pytest.mark.parametrize("name", TRANSFORMERS or [pytest.param("", marks=pytest.mark.skip)])
def test_transformer_gives_one_finite_row_per_sample_and_fit_transform_agrees(name):
    spec = SPECS[name]
    args = spec.make_input(0)
    out = np.asarray(spec.factory().fit(*args).transform(args[0]))
    assert out.ndim == 2 and np.isfinite(out).all(), f"transform must give a finite 2-d array, got {out.shape}"
    if isinstance(args[0], np.ndarray):
        assert out.shape[0] == args[0].shape[0]
    np.testing.assert_allclose(np.asarray(spec.factory().fit_transform(*spec.make_input(0))), out, atol=1e-5)


@pytest.mark.parametrize(
    "name,case", [(n, c) for n in sorted(SPECS) for c in sorted(SPECS[n].bad_inputs)] or [pytest.param("", "", marks=pytest.mark.skip)]
)
def test_bad_input_raises_clear_error(name, case):
    spec = SPECS[name]
    with pytest.raises((ValueError, TypeError)) as info:
        spec.factory().fit(*spec.bad_inputs[case]())
    assert len(str(info.value)) > 15, "error message should say what was wrong"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_fitted_survives_pickle_and_deepcopy(name):
    spec = SPECS[name]
    args = spec.make_input(0)
    est = spec.factory().fit(*args)
    expected = spec.output(est, args)
    for twin in (pickle.loads(pickle.dumps(est)), copy.deepcopy(est)):
        assert type(twin) is type(est) and twin.get_params() == est.get_params()
        assert _equal(spec.output(twin, args), expected), "a copy of a fitted estimator must give the same output"
    assert _equal(spec.output(est, args), expected), "copying must not disturb the original"


_LOAD_IN_FRESH_PROCESS = """
import pickle, sys
import numpy as np
import torch
from graphrec.base import registered_estimators
threads, payload = pickle.loads(sys.stdin.buffer.read())
torch.set_num_threads(threads)   # the parent's count: a reduction split otherwise rounds differently
specs, bad = registered_estimators(), []
for name, (blob, expected) in payload.items():
    spec = specs[name]
    args = spec.make_input(0)
    out = spec.output(pickle.loads(blob), args)
    out = out.detach().cpu().numpy() if hasattr(out, "detach") else np.asarray(out)
    floats = np.issubdtype(out.dtype, np.floating)
    same = np.allclose(out, expected, rtol=1e-6, atol=1e-7) if floats else np.array_equal(out, expected)
    if out.shape != expected.shape or not same:
        bad.append(name)
print(bad)
"""


def test_pickled_fitted_estimators_load_in_a_fresh_process():
    payload = {}
    for name in sorted(SPECS):
        spec = SPECS[name]
        args = spec.make_input(0)
        est = spec.factory().fit(*args)
        out = spec.output(est, args)
        payload[name] = (pickle.dumps(est), out.detach().cpu().numpy() if hasattr(out, "detach") else np.asarray(out))
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.run([sys.executable, "-c", _LOAD_IN_FRESH_PROCESS],
                          input=pickle.dumps((torch.get_num_threads(), payload)),
                          capture_output=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout.decode().strip().splitlines()[-1] == "[]", "differ after loading in a fresh process"


def test_registry_is_not_empty():
    assert SPECS, "no estimator registered"
