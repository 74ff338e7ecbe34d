"""The shared argument checks of graphrec.utils.validation."""
import numpy as np
import pytest

from graphrec.utils.validation import check_adjacency, check_bool


@pytest.mark.parametrize("value", [True, False, np.bool_(True), np.bool_(False)])
def test_check_bool_returns_a_python_bool(value):
    out = check_bool(value, "flag")
    assert type(out) is bool and out == bool(value)


@pytest.mark.parametrize("value", [1, 0, 1.0, "yes", None, np.array([True])])
def test_check_bool_rejects_other_types_naming_the_argument(value):
    with pytest.raises(TypeError, match="flag must be a bool, got"):
        check_bool(value, "flag")


@pytest.mark.parametrize("env, verbose, disabled", [
    (None, True, False), (None, False, True), ("1", True, True), ("true", True, True), ("0", True, False),
])
def test_progress_bar_follows_verbose_and_tqdm_disable(monkeypatch, env, verbose, disabled):
    from graphrec.utils import progress

    if env is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", env)
    bar = progress(range(3), verbose=verbose)
    assert bar.disable is disabled
    assert list(bar) == [0, 1, 2]


def test_adjacency_explicit_zeros_are_not_edges_and_the_input_keeps_them():
    import scipy.sparse as sp

    from graphrec.datasets import AttributedGraph

    # one edge 1-2, plus stored zeros at (0, 1) and (1, 0)
    a = sp.csr_matrix((np.array([0.0, 0.0, 1.0, 1.0]), np.array([1, 0, 2, 1]), np.array([0, 1, 3, 4])), shape=(3, 3))
    out = check_adjacency(a)
    assert out.nnz == 2 and (out != a).nnz == 0
    assert a.nnz == 4  # the caller's matrix is untouched
    assert AttributedGraph(a, np.ones((3, 1))).n_edges == 1


@pytest.mark.parametrize("check", ["array", "adjacency", "adjacency_sparse", "features_dense", "features_sparse"])
def test_complex_input_is_refused_not_cast_to_real(check):
    import scipy.sparse as sp

    from graphrec.utils.validation import check_array, check_features

    z = np.array([[0.0, 1j], [1j, 0.0]])
    calls = {
        "array": lambda: check_array(z, "x"),
        "adjacency": lambda: check_adjacency(z, "x"),
        "adjacency_sparse": lambda: check_adjacency(sp.csr_matrix(z), "x"),
        "features_dense": lambda: check_features(z, 2, "x"),
        "features_sparse": lambda: check_features(sp.csr_matrix(z), 2, "x"),
    }
    with pytest.raises(TypeError, match="x must hold real numbers, got complex dtype complex128"):
        calls[check]()


def test_integral_floats_outside_the_integer_range_are_refused():
    from graphrec.utils.validation import check_array, check_labels

    with pytest.raises(ValueError, match=r"labels holds values outside the int64 range.*max 1e\+20"):
        check_labels(np.array([0.0, 1e20]), 2)
    np.testing.assert_array_equal(check_array(np.array([2.0, -1.0]), "idx", dtype=np.int64), [2, -1])


def test_dense_adjacency_of_any_real_dtype_is_accepted_and_objects_are_named():
    ring = np.roll(np.eye(4), 1, axis=1) + np.roll(np.eye(4), -1, axis=1)
    for dtype in (np.float16, np.float32, np.int8, bool):   # scipy.sparse itself refuses float16
        a = check_adjacency(ring.astype(dtype))
        assert a.dtype == np.float64 and a.nnz == 8
    with pytest.raises(TypeError, match="adjacency must hold numbers"):
        check_adjacency(np.array([[0, "a"], [None, 0]], dtype=object))
