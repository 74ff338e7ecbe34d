"""CKA against the dense HSIC formula, CCA against scikit-learn and a planted shared latent."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

from graphrec.core import cca, hsic, kernel_cka, linear_cka


def _dense_cka(x, y):
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k, l = x @ x.T, y @ y.T  # noqa: E741

    def hs(a, b):
        return np.trace(a @ h @ b @ h) / (n - 1) ** 2

    return hs(k, l) / np.sqrt(hs(k, k) * hs(l, l))


def test_linear_cka_matches_dense_formula_and_invariances():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 6))
    y = x @ rng.standard_normal((6, 4)) + 0.5 * rng.standard_normal((40, 4))
    got = float(linear_cka(x, y))
    assert abs(got - _dense_cka(x, y)) < 1e-12
    assert abs(float(kernel_cka(x @ x.T, y @ y.T)) - got) < 1e-12
    q = ortho_group.rvs(6, random_state=1)
    assert abs(float(linear_cka(3.0 * x @ q + 2.0, y)) - got) < 1e-10  # orthogonal, scale, shift
    assert abs(float(linear_cka(x, x)) - 1.0) < 1e-12
    n = 40
    h = np.eye(n) - 1 / n
    k, l = x @ x.T, y @ y.T  # noqa: E741
    assert abs(float(hsic(k, l)) - np.trace(k @ h @ l @ h) / (n - 1) ** 2) < 1e-9


def test_cka_bad_input():
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match="same number of rows"):
        linear_cka(x, torch.randn(9, 3))
    with pytest.raises(ValueError, match="constant"):
        linear_cka(x, torch.ones(10, 2))
    with pytest.raises(ValueError, match="square"):
        kernel_cka(torch.randn(3, 4), torch.randn(3, 4))
    with pytest.raises(ValueError, match="NaN"):
        linear_cka(x, torch.full((10, 3), float("nan")))


def test_cca_matches_sklearn():
    from sklearn.cross_decomposition import CCA

    rng = np.random.default_rng(0)
    z = rng.standard_normal((500, 3))
    x = z @ rng.standard_normal((3, 6)) + 0.7 * rng.standard_normal((500, 6))
    y = z @ rng.standard_normal((3, 5)) + 0.7 * rng.standard_normal((500, 5))
    rho, wx, wy = cca(x, y, 3)
    sk = CCA(n_components=3, scale=False, max_iter=5000, tol=1e-12).fit(x, y)
    xs, ys = sk.transform(x, y)
    sk_rho = np.array([np.corrcoef(xs[:, k], ys[:, k])[0, 1] for k in range(3)])
    np.testing.assert_allclose(rho.numpy(), sk_rho, atol=1e-3)
    # our own variates: unit variance, uncorrelated, correlations on the diagonal
    u = (x - x.mean(0)) @ wx.numpy()
    v = (y - y.mean(0)) @ wy.numpy()
    np.testing.assert_allclose(np.cov(u.T), np.eye(3), atol=1e-10)
    np.testing.assert_allclose(u.T @ v / (len(x) - 1), np.diag(rho.numpy()), atol=1e-10)


def test_cca_rank_deficient_and_planted():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((200, 2))
    # x has a duplicated column (rank deficient); y is an exact linear function of z plus noise dims
    x = np.column_stack([z, z[:, :1], rng.standard_normal((200, 1))])
    y = np.column_stack([z @ np.array([[1.0, 2.0], [0.5, -1.0]]), rng.standard_normal((200, 2))])
    rho, wx, _ = cca(x, y, 2)
    np.testing.assert_allclose(rho.numpy(), [1.0, 1.0], atol=1e-10)
    assert np.all(np.isfinite(wx.numpy()))
    with pytest.raises(ValueError, match="exceeds"):
        cca(x, y, 4)  # rank x = 3
    with pytest.raises(ValueError, match="constant"):
        cca(np.ones((10, 2)), rng.standard_normal((10, 2)), 1)
    # ridge shrinks correlations
    assert float(cca(x, y, 1, reg=10.0)[0][0]) < 1.0


def test_cca_matches_dense_eigen_formula():
    # canonical correlations^2 are the eigenvalues of Cxx^-1 Cxy Cyy^-1 Cyx
    rng = np.random.default_rng(4)
    x = rng.standard_normal((80, 4)) @ rng.standard_normal((4, 4))
    y = x[:, :2] @ rng.standard_normal((2, 3)) + rng.standard_normal((80, 3))
    c = np.cov(np.column_stack([x, y]).T)
    cxx, cxy, cyy = c[:4, :4], c[:4, 4:], c[4:, 4:]
    ev = np.sort(np.linalg.eigvals(np.linalg.solve(cxx, cxy) @ np.linalg.solve(cyy, cxy.T)).real)[::-1]
    np.testing.assert_allclose(cca(x, y, 3)[0].numpy(), np.sqrt(np.clip(ev[:3], 0, None)), atol=1e-10)
    # ridge: the same with Cxx + reg I and Cyy + reg I
    reg = 0.3
    ev = np.sort(np.linalg.eigvals(np.linalg.solve(cxx + reg * np.eye(4), cxy) @ np.linalg.solve(cyy + reg * np.eye(3), cxy.T)).real)[::-1]
    np.testing.assert_allclose(cca(x, y, 3, reg=reg)[0].numpy(), np.sqrt(ev[:3]), atol=1e-10)
