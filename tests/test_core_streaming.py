"""Frequent Directions against its deterministic error bound; incremental SVD against numpy's SVD."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from graphrec.core import FrequentDirections, IncrementalSVD, StreamingPCA


def _stream(n=400, d=30, r=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, r)) @ np.diag(np.linspace(10, 3, r)) @ rng.standard_normal((r, d)) + 0.3 * rng.standard_normal((n, d))


@pytest.mark.parametrize("batch", [1, 7, 400])
def test_frequent_directions_error_bound(batch):
    a = _stream()
    ell, k = 10, 5
    fd = FrequentDirections(ell, a.shape[1])
    for i in range(0, len(a), batch):
        fd.update(a[i : i + batch] if batch > 1 else a[i])
    b = fd.sketch.numpy()
    assert b.shape[0] <= ell and fd.n_seen_ == len(a)
    err = np.linalg.norm(a.T @ a - b.T @ b, 2)
    s = np.linalg.svd(a, compute_uv=False)
    assert err <= np.sum(s[k:] ** 2) / (ell - k) + 1e-8  # Ghashami et al. Theorem 1.1
    # the sketch never over-estimates: A^T A - B^T B is positive semi-definite
    assert np.linalg.eigvalsh(a.T @ a - b.T @ b).min() > -1e-8
    v, sv = fd.components(energy=0.9)
    true_v = np.linalg.svd(a, full_matrices=False)[2][:5].T
    assert v.shape[1] <= 5
    assert np.linalg.norm(true_v[:, : v.shape[1]].T @ v.numpy(), 2) > 0.99


def test_frequent_directions_exact_when_stream_is_short_and_bad_input():
    a = _stream(n=6)
    fd = FrequentDirections(8, a.shape[1]).update(a)
    np.testing.assert_allclose(fd.sketch.numpy().T @ fd.sketch.numpy(), a.T @ a, atol=1e-10)
    with pytest.raises(ValueError, match="shape"):
        fd.update(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        fd.update(np.full((1, a.shape[1]), np.nan))
    with pytest.raises(ValueError, match="sketch_size"):
        FrequentDirections(0, 3)


def test_incremental_svd_matches_full_svd():
    a = _stream(n=50, d=40).T  # (40, 50): columns arrive in batches
    inc = IncrementalSVD()
    for i in range(0, 50, 9):
        inc.update(a[:, i : i + 9])
    s_ref = np.linalg.svd(a, compute_uv=False)
    np.testing.assert_allclose(inc.s_.numpy(), s_ref[: inc.s_.shape[0]], rtol=1e-9)
    np.testing.assert_allclose((inc.u_ * inc.s_ @ inc.vt_).numpy(), a, atol=1e-9)
    np.testing.assert_allclose(inc.u_.T @ inc.u_, np.eye(inc.s_.shape[0]), atol=1e-10)


def test_incremental_svd_truncated_tracks_top_subspace():
    a = _stream(n=300, d=20).T  # rank-5 signal plus noise
    inc = IncrementalSVD(max_rank=8)
    for i in range(0, 300, 25):
        inc.update(torch.from_numpy(a[:, i : i + 25]))
    u_ref, s_ref, _ = np.linalg.svd(a, full_matrices=False)
    np.testing.assert_allclose(inc.s_[:5].numpy(), s_ref[:5], rtol=2e-2)
    cos = np.linalg.svd(u_ref[:, :5].T @ inc.u_[:, :5].numpy(), compute_uv=False)
    assert cos.min() > 0.99
    with pytest.raises(ValueError, match="rows"):
        inc.update(np.zeros((3, 2)))


def test_streaming_pca_matches_sklearn_on_offset_data():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(5)
    # a large common offset makes the naive E[xx^T] - mu mu^T lose most digits
    x = 1e6 + rng.standard_normal((500, 6)) @ np.diag([5.0, 3, 2, 1, 0.5, 0.1])
    pca = StreamingPCA(6)
    for i in range(0, 500, 37):
        pca.update(x[i : i + 37])
    np.testing.assert_allclose(pca.covariance_.numpy(), np.cov(x.T), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(pca.mean_.numpy(), x.mean(0), rtol=1e-14)
    v, var = pca.components(3)
    ref = PCA(3, svd_solver="full").fit(x)
    np.testing.assert_allclose(var.numpy(), ref.explained_variance_, rtol=1e-8)
    np.testing.assert_allclose(np.abs(v.numpy().T @ ref.components_.T), np.eye(3), atol=1e-6)
    ratio = np.cumsum(PCA(svd_solver="full").fit(x).explained_variance_ratio_)
    assert pca.components(energy=0.95)[0].shape[1] == int(np.searchsorted(ratio, 0.95) + 1)
    with pytest.raises(ValueError, match="at least 2 rows"):
        StreamingPCA(3).update(np.ones((1, 3))).covariance_
    with pytest.raises(ValueError, match="at most one"):
        pca.components(2, energy=0.9)
