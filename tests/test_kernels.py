"""Every kernel backend agrees with the numpy/scipy reference, and rejects bad input clearly."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import graphrec.kernels as K
from graphrec.kernels import _reference as R

BACKENDS = [b for b in ("cpp", "numba", "reference") if b in K.available_backends()]


def _case(b, n, density, seed, dtype, ties=False):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((b, n)).astype(dtype)
    if ties:
        scores = np.round(scores, 1)  # many equal scores: the id order decides
    excl = sp.random(b, n, density=density, random_state=seed, format="csr")
    return scores, excl.indptr.astype(np.int64), excl.indices.astype(np.int64)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("b,n,k,density,ties", [(1, 5, 3, 0.0, False), (37, 200, 10, 0.05, False), (64, 500, 50, 0.3, True), (8, 30, 40, 0.2, False), (5, 7, 7, 1.0, False)])
def test_topk_matches_reference(backend, dtype, b, n, k, density, ties):
    scores, indptr, indices = _case(b, n, density, seed=b + n, dtype=dtype, ties=ties)
    ids, vals = K.topk_exclude(scores, k, indptr, indices, backend=backend)
    ref_ids, ref_vals = R.topk_exclude(scores, k, indptr, indices)
    assert ids.dtype == np.int64 and vals.dtype == dtype and ids.shape == (b, k)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(vals, ref_vals)
    for r in range(b):  # excluded items never come back
        assert not set(ids[r]) & set(indices[indptr[r] : indptr[r + 1]])


def test_reference_by_hand():
    scores = np.array([[0.1, 0.9, 0.5, 0.9, 0.2]])
    ids, vals = R.topk_exclude(scores, 3, np.array([0, 1]), np.array([2]))
    np.testing.assert_array_equal(ids, [[1, 3, 4]])  # 0.9 (id 1) before 0.9 (id 3); 0.5 excluded
    np.testing.assert_array_equal(vals, [[0.9, 0.9, 0.2]])
    ids, vals = R.topk_exclude(scores, 7, np.array([0, 2]), np.array([0, 4]))
    np.testing.assert_array_equal(ids, [[1, 3, 2, -1, -1, -1, -1]])
    assert np.all(np.isneginf(vals[0, 3:]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_topk_row_slice_and_duplicates_in_exclusion(backend):
    scores, _, _ = _case(20, 100, 0.0, seed=3, dtype=np.float64)
    train = sp.random(50, 100, density=0.1, random_state=1, format="csr")
    block = slice(10, 30)
    sliced = train[block]
    ids, _ = K.topk_exclude(scores, 15, sliced.indptr, sliced.indices, backend=backend)
    ref, _ = R.topk_exclude(scores, 15, sliced.indptr.astype(np.int64), sliced.indices.astype(np.int64))
    np.testing.assert_array_equal(ids, ref)
    # The raw slice of the parent's arrays (indptr not starting at 0) works too.
    ids2, _ = K.topk_exclude(scores, 15, train.indptr[10:31], train.indices, backend=backend)
    np.testing.assert_array_equal(ids2, ref)
    dup_ptr, dup_idx = np.array([0, 4] + [4] * 19), np.array([5, 5, 7, 7])
    ids3, _ = K.topk_exclude(scores, 98, dup_ptr, dup_idx, backend=backend)
    assert set(ids3[0]) == set(range(100)) - {5, 7}


def test_topk_torch_inputs_follow_the_reference():
    scores, indptr, indices = _case(16, 80, 0.1, seed=5, dtype=np.float32)
    ref_ids, ref_vals = R.topk_exclude(scores, 12, indptr, indices)
    ids, vals = K.topk_exclude(torch.from_numpy(scores), 12, indptr, indices)
    np.testing.assert_array_equal(ids, ref_ids)
    t_ids, t_vals = R.topk_exclude_torch(torch.from_numpy(scores), 12, indptr, indices)
    np.testing.assert_array_equal(t_ids.numpy(), ref_ids)
    np.testing.assert_array_equal(t_vals.numpy(), ref_vals)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_topk_cuda_matches_reference():
    scores, indptr, indices = _case(16, 80, 0.1, seed=5, dtype=np.float32)
    ref_ids, _ = R.topk_exclude(scores, 12, indptr, indices)
    ids, vals = K.topk_exclude(torch.from_numpy(scores).cuda(), 12, indptr, indices)
    assert ids.is_cuda
    np.testing.assert_array_equal(ids.cpu().numpy(), ref_ids)


@pytest.mark.parametrize("backend", BACKENDS)
def test_topk_bad_input(backend):
    scores = np.zeros((3, 4))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        K.topk_exclude(scores, 0, backend=backend)
    with pytest.raises(ValueError, match="2-d"):
        K.topk_exclude(np.zeros(4), 2, backend=backend)
    nan = scores.copy()
    nan[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        K.topk_exclude(nan, 2, backend=backend)
    with pytest.raises(ValueError, match="length b \\+ 1"):
        K.topk_exclude(scores, 2, np.array([0, 1]), np.array([0]), backend=backend)
    with pytest.raises(ValueError, match="outside"):
        K.topk_exclude(scores, 2, np.array([0, 1, 1, 1]), np.array([9]), backend=backend)
    with pytest.raises(ValueError, match="together"):
        K.topk_exclude(scores, 2, np.array([0, 0, 0, 0]), backend=backend)
    with pytest.raises(TypeError, match="float32 or float64"):
        K.topk_exclude(np.array([["a", "b"]]), 1, backend=backend)
    with pytest.raises(ValueError, match="backend"):
        K.topk_exclude(scores, 1, backend="gpu")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,n,d,density", [(1, 1, 1, 1.0), (300, 200, 7, 0.02), (1000, 50, 64, 0.1), (40, 40, 3, 0.0)])
def test_csr_matmul_matches_scipy(backend, dtype, m, n, d, density):
    rng = np.random.default_rng(m + d)
    a = sp.random(m, n, density=density, random_state=m, format="csr", dtype=dtype)
    x = rng.standard_normal((n, d)).astype(dtype)
    y = K.csr_matmul(a, x, backend=backend)
    assert y.dtype == dtype and y.shape == (m, d)
    np.testing.assert_allclose(y, a @ x, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


@pytest.mark.parametrize("n_threads", [1, 2, 7])
def test_csr_matmul_threads_and_skewed_rows(n_threads):
    if "cpp" not in BACKENDS:
        pytest.skip("C++ module not built")
    rng = np.random.default_rng(0)
    a = sp.random(500, 300, density=0.01, random_state=0, format="lil")
    a[3, :] = rng.random(300)  # one heavy row: nnz balancing must still cover every row
    a = a.tocsr()
    x = rng.standard_normal((300, 5))
    np.testing.assert_allclose(K.csr_matmul(a, x, backend="cpp", n_threads=n_threads), a @ x, rtol=1e-12)


def test_csr_matmul_bad_input():
    a = sp.random(5, 4, density=0.5, random_state=0, format="csr")
    with pytest.raises(TypeError, match="scipy sparse"):
        K.csr_matmul(a.toarray(), np.ones((4, 2)))
    with pytest.raises(ValueError, match="4 columns but x has 3 rows"):
        K.csr_matmul(a, np.ones((3, 2)))
    with pytest.raises(ValueError, match="n_threads"):
        K.csr_matmul(a, np.ones((4, 2)), backend="cpp" if "cpp" in BACKENDS else "auto", n_threads=0)
    np.testing.assert_allclose(K.csr_matmul(a, np.ones(4)), a @ np.ones(4))


def test_missing_extension_falls_back_to_numba_with_one_warning(monkeypatch):
    monkeypatch.setattr(K, "_ext", lambda: None)
    monkeypatch.setattr(K, "_warned_missing_ext", False)
    scores, indptr, indices = _case(4, 20, 0.1, seed=0, dtype=np.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        K.topk_exclude(scores, 3, indptr, indices)
        K.csr_matmul(sp.identity(20, format="csr"), np.ones((20, 2)))
    messages = [str(w.message) for w in caught if "graphrec._ext" in str(w.message)]
    assert len(messages) == 1
    assert "cpp" not in K.available_backends()
    with pytest.raises(ImportError, match="graphrec._ext"):
        K.topk_exclude(scores, 3, backend="cpp")
