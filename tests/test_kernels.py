"""Every kernel backend agrees with the numpy/scipy reference, and bad input fails clearly.

The reference itself is checked by hand on small cases; the compiled backends (C++, Numba, the
torch path) are then compared with it exactly (ids and values) on random inputs.
"""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import graphrec.kernels as K
from graphrec.kernels import _reference as R

COMPILED = [b for b in ("cpp", "numba") if b in K.available_backends()]
BACKENDS = COMPILED + ["reference", "auto"]


def _exclusion(b: int, n: int, density: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if b == 0 or n == 0:
        return np.zeros(b + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    excl = sp.random(b, n, density=density, random_state=seed, format="csr")
    return excl.indptr.astype(np.int64), excl.indices.astype(np.int64)


def _scores(b: int, n: int, seed: int, dtype, ties: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values (plus infinities): the id order decides most places
        scores = rng.integers(-3, 3, (b, n)).astype(dtype)
        scores[rng.random((b, n)) < 0.05] = -np.inf
        scores[rng.random((b, n)) < 0.02] = np.inf
        return scores
    return rng.standard_normal((b, n)).astype(dtype)


# ----------------------------------------------------------------------------- the reference


def test_reference_topk_by_hand():
    scores = np.array([[0.1, 0.9, 0.5, 0.9, 0.2], [3.0, -np.inf, 1.0, 1.0, 2.0]])
    indptr, indices = np.array([0, 1, 3]), np.array([2, 0, 4])
    ids, values = R.topk_exclude(scores, 3, indptr, indices)
    # Row 0: 0.5 (id 2) excluded; 0.9 tie -> id 1 before id 3. Row 1: 3.0 and 2.0 excluded.
    np.testing.assert_array_equal(ids, [[1, 3, 4], [2, 3, 1]])
    np.testing.assert_array_equal(values, [[0.9, 0.9, 0.2], [1.0, 1.0, -np.inf]])
    ids, values = R.topk_exclude(scores[:1], 6, np.array([0, 2]), np.array([0, 4]))
    np.testing.assert_array_equal(ids, [[1, 3, 2, -1, -1, -1]])
    np.testing.assert_array_equal(values, [[0.9, 0.9, 0.5, -np.inf, -np.inf, -np.inf]])


# ----------------------------------------------------------------------------- top-k


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "b,n,k,density,ties",
    [
        (1, 5, 3, 0.0, False),  # no exclusions
        (37, 200, 10, 0.05, False),
        (16, 2000, 5, 0.01, True),  # long rows: the blocked threshold scan, equal-to-threshold ties
        (64, 500, 50, 0.3, True),
        (8, 30, 40, 0.2, False),  # k > n_items: padding
        (5, 7, 7, 1.0, False),  # every item excluded
        (3, 0, 2, 0.0, False),  # no items at all
        (0, 10, 3, 0.0, False),  # no rows
    ],
)
def test_topk_matches_reference(backend, dtype, b, n, k, density, ties):
    scores = _scores(b, n, seed=b + n, dtype=dtype, ties=ties)
    indptr, indices = _exclusion(b, n, density, seed=b * n)
    ids, values = K.topk_exclude(scores, k, indptr, indices, backend=backend)
    ref_ids, ref_values = R.topk_exclude(scores, k, indptr, indices)
    assert ids.dtype == np.int64 and values.dtype == dtype and ids.shape == values.shape == (b, k)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(values, ref_values)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("n_threads", [1, 3, 100])
def test_topk_thread_counts(backend, n_threads):
    scores = _scores(20, 300, seed=1, dtype=np.float32, ties=True)
    indptr, indices = _exclusion(20, 300, 0.1, seed=1)
    ids, _ = K.topk_exclude(scores, 9, indptr, indices, backend=backend, n_threads=n_threads)
    np.testing.assert_array_equal(ids, R.topk_exclude(scores, 9, indptr, indices)[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_topk_row_slices_duplicates_and_dtypes(backend):
    scores = _scores(20, 100, seed=3, dtype=np.float64)
    train = sp.random(50, 100, density=0.1, random_state=1, format="csr")  # int32 indptr/indices
    block = train[10:30]
    ref, _ = R.topk_exclude(scores, 15, block.indptr.astype(np.int64), block.indices.astype(np.int64))
    np.testing.assert_array_equal(K.topk_exclude(scores, 15, block.indptr, block.indices, backend=backend)[0], ref)
    # The parent's indptr slice (not starting at 0) with the parent's indices: the same rows.
    ids, _ = K.topk_exclude(scores, 15, train.indptr[10:31], train.indices, backend=backend)
    np.testing.assert_array_equal(ids, ref)
    # Duplicate exclusions count once; list inputs and integer scores work.
    ids, values = K.topk_exclude([[5, 1, 5, 3]], 4, [0, 4], [2, 2, 1, 1], backend=backend)
    np.testing.assert_array_equal(ids, [[0, 3, -1, -1]])
    assert values.dtype == np.float64


def test_topk_torch_tensors():
    scores = _scores(16, 80, seed=5, dtype=np.float32, ties=True)
    indptr, indices = _exclusion(16, 80, 0.1, seed=5)
    ref_ids, ref_values = R.topk_exclude(scores, 12, indptr, indices)
    ids, values = K.topk_exclude(torch.from_numpy(scores), 12, indptr, indices)  # CPU tensor -> numpy
    assert isinstance(ids, np.ndarray)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(values, ref_values)


@pytest.mark.parametrize("b,n,k,density", [(16, 80, 12, 0.1), (6, 9, 20, 0.5), (4, 5, 5, 1.0), (2, 0, 3, 0.0)])
def test_torch_path_matches_reference(b, n, k, density):
    """The CUDA code path, run here on CPU tensors: exact ties and -inf handling, not topk's."""
    scores = _scores(b, n, seed=n + k, dtype=np.float32, ties=True)
    indptr, indices = _exclusion(b, n, density, seed=b + k)
    ref_ids, ref_values = R.topk_exclude(scores, k, indptr, indices)
    ids, values = R.topk_exclude_torch(torch.from_numpy(scores), k, indptr, indices)
    np.testing.assert_array_equal(ids.numpy(), ref_ids)
    np.testing.assert_array_equal(values.numpy(), ref_values)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_topk_cuda_matches_reference():
    scores = _scores(64, 3000, seed=7, dtype=np.float32, ties=True)
    indptr, indices = _exclusion(64, 3000, 0.05, seed=7)
    ref_ids, ref_values = R.topk_exclude(scores, 50, indptr, indices)
    ids, values = K.topk_exclude(torch.from_numpy(scores).cuda(), 50, indptr, indices)
    assert ids.is_cuda and values.is_cuda
    np.testing.assert_array_equal(ids.cpu().numpy(), ref_ids)
    np.testing.assert_array_equal(values.cpu().numpy(), ref_values)
    with pytest.raises(ValueError, match="NaN"):
        K.topk_exclude(torch.full((2, 3), float("nan"), device="cuda"), 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_topk_nan_is_an_error(backend):
    for row, col in [(0, 0), (2, 1999), (1, 700)]:  # first item, last item, inside the blocked scan
        scores = _scores(3, 2000, seed=0, dtype=np.float32)
        scores[row, col] = np.nan
        with pytest.raises(ValueError, match="scores contains NaN"):
            K.topk_exclude(scores, 5, backend=backend)
    with pytest.raises(ValueError, match="scores contains NaN"):  # even where the item is excluded
        K.topk_exclude(np.array([[1.0, np.nan]]), 1, [0, 1], [1], backend=backend)


def test_topk_bad_input():
    scores = np.zeros((3, 4))
    for k in (0, -1, 2.5, True, None):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            K.topk_exclude(scores, k)
    with pytest.raises(ValueError, match="scores must be 2-dimensional"):
        K.topk_exclude(np.zeros(4), 2)
    with pytest.raises(TypeError, match="scores must be float32 or float64"):
        K.topk_exclude(np.ones((2, 2), dtype=np.complex128), 1)
    with pytest.raises(TypeError, match="scores must hold numbers"):
        K.topk_exclude(np.array([[None, 1.0]]), 1)
    with pytest.raises(ValueError, match="length b \\+ 1 = 4"):
        K.topk_exclude(scores, 2, np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match=r"item ids in \[0, 4\)"):
        K.topk_exclude(scores, 2, np.array([0, 1, 1, 1]), np.array([9]))
    with pytest.raises(ValueError, match=r"item ids in \[0, 4\)"):
        K.topk_exclude(scores, 2, np.array([0, 1, 1, 1]), np.array([-1]))
    with pytest.raises(ValueError, match="non-decreasing"):
        K.topk_exclude(scores, 2, np.array([0, 2, 1, 2]), np.array([0, 1]))
    with pytest.raises(ValueError, match="non-decreasing"):
        K.topk_exclude(scores, 2, np.array([0, 1, 1, 5]), np.array([0, 1]))
    with pytest.raises(TypeError, match="exclude_indices must hold integers"):
        K.topk_exclude(scores, 2, np.array([0, 1, 1, 1]), np.array([0.5]))
    with pytest.raises(ValueError, match="together"):
        K.topk_exclude(scores, 2, np.array([0, 0, 0, 0]))
    with pytest.raises(ValueError, match="backend must be one of"):
        K.topk_exclude(scores, 1, backend="gpu")
    with pytest.raises(ValueError, match="n_threads must be a positive integer"):
        K.topk_exclude(scores, 1, backend="cpp" if "cpp" in COMPILED else "numba", n_threads=0)


# ----------------------------------------------------------------------------- CSR x dense


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "m,n,d,density",
    [(1, 1, 1, 1.0), (300, 200, 7, 0.02), (500, 60, 64, 0.1), (200, 90, 33, 0.05), (40, 40, 3, 0.0), (0, 5, 2, 0.0)],
)
def test_csr_matmul_matches_scipy(backend, dtype, m, n, d, density):
    rng = np.random.default_rng(m + d)
    a = sp.random(m, n, density=density, random_state=m, format="csr", dtype=dtype)
    x = rng.standard_normal((n, d)).astype(dtype)
    y = K.csr_matmul(a, x, backend=backend)
    assert y.dtype == dtype and y.shape == (m, d)
    expected = a.astype(np.float64) @ x.astype(np.float64)
    np.testing.assert_allclose(y, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("n_threads", [1, 2, 7, 1000])
def test_csr_matmul_threads_and_skewed_rows(backend, n_threads):
    # Large enough (about 2.4M multiply-adds) that the C++ kernel really starts several threads.
    rng = np.random.default_rng(0)
    a = sp.random(4000, 3000, density=0.01, random_state=0, format="lil")
    a[3, :] = rng.random(3000)  # heavy rows: the nnz-balanced split must still cover every row
    a[3999, :] = rng.random(3000)
    a = a.tocsr()
    x = rng.standard_normal((3000, 20))
    np.testing.assert_allclose(K.csr_matmul(a, x, backend=backend, n_threads=n_threads), a @ x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_csr_matmul_dtypes_formats_and_vectors(backend):
    a = sp.random(30, 20, density=0.2, random_state=2, format="csc", dtype=np.float32)
    x = np.random.default_rng(2).standard_normal((20, 4))
    y = K.csr_matmul(a, x, backend=backend)  # float32 @ float64 -> float64; CSC is converted
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, a.astype(np.float64) @ x, rtol=1e-12)
    adj = sp.csr_matrix(np.array([[0, 2], [1, 0]], dtype=np.int64))  # integer weights -> float64
    np.testing.assert_array_equal(K.csr_matmul(adj, np.ones(2, dtype=np.float32), backend=backend), [2.0, 1.0])
    fortran = np.asfortranarray(x)
    np.testing.assert_allclose(K.csr_matmul(a, fortran, backend=backend), y, rtol=1e-12)
    wide = a.tocsr()  # int64 index arrays, as scipy makes them past 2**31 non-zeros
    wide.indptr, wide.indices = wide.indptr.astype(np.int64), wide.indices.astype(np.int64)
    np.testing.assert_allclose(K.csr_matmul(wide, x, backend=backend), y, rtol=1e-12)


def test_csr_horner_reference_by_hand():
    # a = [[0, 1], [1, 0]] swaps the two entries: h + alpha a h + alpha^2 h + alpha^3 a h
    a = sp.csr_matrix([[0.0, 1.0], [1.0, 0.0]])
    h = np.array([[1.0], [0.0]])
    np.testing.assert_allclose(R.csr_horner(a, h, 0.5, 3), [[1.25], [0.625]])
    np.testing.assert_array_equal(R.csr_horner(a, h, 0.5, 0), h)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,d,steps,alpha", [(1, 1, 3, 0.9), (300, 7, 5, 1.7), (200, 33, 4, -0.8), (50, 16, 0, 0.5),
                                             (120, 3, 1, 1.0), (0, 2, 3, 0.5)])
def test_csr_horner_matches_power_sum(backend, dtype, n, d, steps, alpha):
    rng = np.random.default_rng(n + d)
    a = sp.random(n, n, density=0.05, random_state=n, format="csr", dtype=dtype)
    h = rng.standard_normal((n, d)).astype(dtype)
    y = K.csr_horner(a, h, alpha, steps, backend=backend)
    assert y.dtype == dtype and y.shape == (n, d)
    dense = a.toarray().astype(np.float64)
    expected = sum(alpha**t * np.linalg.matrix_power(dense, t) @ h.astype(np.float64) for t in range(steps + 1))
    np.testing.assert_allclose(y, expected, rtol=1e-4 if dtype == np.float32 else 1e-11, atol=1e-4)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("n_threads", [1, 2, 1000])
def test_csr_horner_threads_vectors_and_wide_indices(backend, n_threads):
    a = sp.random(4000, 4000, density=0.01, random_state=4, format="csr")  # several threads' worth
    h = np.random.default_rng(4).standard_normal((4000, 8))
    expected = R.csr_horner(a, h, 0.7, 6)
    np.testing.assert_allclose(K.csr_horner(a, h, 0.7, 6, backend=backend, n_threads=n_threads), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(K.csr_horner(a, h[:, 0], 0.7, 6, backend=backend), expected[:, 0], rtol=1e-12, atol=1e-12)
    wide = a.copy()
    wide.indptr, wide.indices = wide.indptr.astype(np.int64), wide.indices.astype(np.int64)
    np.testing.assert_allclose(K.csr_horner(wide, h, 0.7, 6, backend=backend), expected, rtol=1e-12, atol=1e-12)


def test_csr_horner_bad_input():
    a = sp.identity(4, format="csr")
    with pytest.raises(ValueError, match="square"):
        K.csr_horner(sp.random(4, 3, density=0.5, format="csr"), np.ones((3, 2)), 0.5, 2)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        K.csr_horner(a, np.ones((4, 2)), 0.5, -1)
    with pytest.raises(ValueError, match="alpha must be a finite"):
        K.csr_horner(a, np.ones((4, 2)), float("nan"), 2)
    with pytest.raises(ValueError, match="h has 3 rows"):
        K.csr_horner(a, np.ones((3, 2)), 0.5, 2)


def test_csr_matmul_bad_input():
    a = sp.random(5, 4, density=0.5, random_state=0, format="csr")
    with pytest.raises(TypeError, match="a must be a scipy sparse matrix"):
        K.csr_matmul(a.toarray(), np.ones((4, 2)))
    with pytest.raises(ValueError, match="a has 4 columns but x has 3 rows"):
        K.csr_matmul(a, np.ones((3, 2)))
    with pytest.raises(ValueError, match="x must be 2-dimensional"):
        K.csr_matmul(a, np.ones((4, 2, 1)))
    with pytest.raises(TypeError, match="x must be a dense array"):
        K.csr_matmul(a, sp.identity(4, format="csr"))
    with pytest.raises(TypeError, match="x must hold float32 or float64"):
        K.csr_matmul(a, np.ones((4, 2), dtype=np.complex64))
    with pytest.raises(TypeError, match="a must hold float32 or float64"):
        K.csr_matmul(a.astype(np.complex128), np.ones((4, 2)))
    with pytest.raises(ValueError, match="n_threads must be a positive integer"):
        K.csr_matmul(a, np.ones((4, 2)), backend=COMPILED[0], n_threads=-2)
    with pytest.raises(ValueError, match="backend must be one of"):
        K.csr_matmul(a, np.ones((4, 2)), backend="torch")


def test_extension_checks_shapes_itself():
    if "cpp" not in COMPILED:
        pytest.skip("graphrec._ext is not built")
    ext = K._load_ext()
    with pytest.raises(ValueError, match="length b \\+ 1"):
        ext.topk_exclude_f64(np.zeros((3, 4)), 2, np.zeros(2, dtype=np.int64), np.zeros(0, dtype=np.int64), 1)
    with pytest.raises(ValueError, match="end within indices"):
        ext.csr_matmul_f64_i64(np.array([0, 5]), np.zeros(1, dtype=np.int64), np.zeros(1), np.zeros((1, 2)), 1)


# ----------------------------------------------------------------------------- dispatch


def test_missing_extension_falls_back_to_numba_with_one_warning(monkeypatch):
    monkeypatch.setattr(K, "_load_ext", lambda: None)
    monkeypatch.setattr(K, "_warned_missing_ext", False)
    monkeypatch.setitem(K._AUTO, "csr_matmul", "cpp")  # both kernels default to C++ here
    scores = _scores(4, 20, seed=0, dtype=np.float64)
    indptr, indices = _exclusion(4, 20, 0.1, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids, _ = K.topk_exclude(scores, 3, indptr, indices)
        K.topk_exclude(scores, 3, indptr, indices)
        K.csr_matmul(sp.identity(20, format="csr"), np.ones((20, 2)))
    assert len([w for w in caught if "graphrec._ext" in str(w.message)]) == 1
    np.testing.assert_array_equal(ids, R.topk_exclude(scores, 3, indptr, indices)[0])
    assert K.available_backends() == ["numba", "reference"]
    with pytest.raises(ImportError, match="graphrec._ext"):
        K.topk_exclude(scores, 3, backend="cpp")
    with pytest.raises(ImportError, match="graphrec._ext"):
        K.csr_matmul(sp.identity(20, format="csr"), np.ones((20, 2)), backend="cpp")


def test_import_is_light():
    code = "import sys, graphrec.kernels; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = set(out.split())
    assert not {"numba", "torch", "torch_geometric"} & loaded


# ----------------------------------------------------------------------------- rarely taken paths
@pytest.mark.parametrize("steps", [2.7, 2.0, "2", None, True])
def test_csr_horner_steps_must_be_an_integer(steps):
    # int(2.7) == 2 used to drop the last power silently; "2" was parsed, None failed inside int()
    a = sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]]))
    with pytest.raises(TypeError, match=f"steps must be an integer >= 0, got {type(steps).__name__}"):
        K.csr_horner(a, np.array([1.0, 0.0]), 0.5, steps)
    # numpy integers are integers: h + 0.5 a h + 0.25 a^2 h
    np.testing.assert_allclose(K.csr_horner(a, np.array([1.0, 0.0]), 0.5, np.int64(2)), [1.25, 0.5])


def test_has_compiled_warns_once_per_fallback_when_a_kernel_is_missing(monkeypatch):
    monkeypatch.setattr(K, "_warned_fallbacks", set())
    present = "topk_exclude_f64" if hasattr(K._load_ext(), "topk_exclude_f64") else None   # when _ext is built
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert K.has_compiled("no_such_kernel", "the test uses its numpy path") is False
        assert K.has_compiled("no_such_kernel", "the test uses its numpy path") is False
        assert K.has_compiled("another_missing_kernel", "another path runs") is False
        if present is not None:
            assert K.has_compiled(present, "unused") is True
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2   # once per fallback, none for a kernel that is there
    assert "missing or outdated; the test uses its numpy path" in messages[0] and "another path runs" in messages[1]
