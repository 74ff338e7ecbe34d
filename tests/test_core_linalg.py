"""Randomised SVD against numpy's exact SVD."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.core import normalized_adjacency, randomized_svd


def _low_rank(m=300, n=200, r=6, noise=1e-3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, r)) @ np.diag(np.linspace(10, 5, r)) @ rng.standard_normal((r, n)) + noise * rng.standard_normal((m, n))


@pytest.mark.parametrize("kind", ["dense", "tensor", "sparse", "operator"])
def test_matches_exact_svd(kind):
    a = _low_rank()
    exact_u, exact_s, _ = np.linalg.svd(a, full_matrices=False)
    if kind == "dense":
        u, s, vt = randomized_svd(a, 6, random_state=0)
    elif kind == "tensor":
        u, s, vt = randomized_svd(torch.from_numpy(a), 6, random_state=0)
    elif kind == "sparse":
        u, s, vt = randomized_svd(sp.csr_matrix(a), 6, random_state=0)
    else:
        t = torch.from_numpy(a)
        u, s, vt = randomized_svd(matmat=lambda x: t @ x, rmatmat=lambda y: t.T @ y, shape=a.shape, n_components=6, random_state=0)
    np.testing.assert_allclose(s.numpy(), exact_s[:6], rtol=1e-6)
    # Same subspace: |U^T U_exact| is a signed identity.
    np.testing.assert_allclose(np.abs(u.numpy().T @ exact_u[:, :6]), np.eye(6), atol=1e-5)
    np.testing.assert_allclose(u.numpy() @ np.diag(s.numpy()) @ vt.numpy(), exact_u[:, :6] * exact_s[:6] @ np.linalg.svd(a)[2][:6], atol=1e-6)


def test_power_iteration_stays_accurate_for_many_steps():
    # Without re-orthonormalisation, 60 power steps collapse every column onto the top vector.
    a = _low_rank(noise=0.0)
    _, s, _ = randomized_svd(a, 6, n_iter=60, oversample=0, random_state=1)
    np.testing.assert_allclose(s.numpy(), np.linalg.svd(a, compute_uv=False)[:6], rtol=1e-8)


def test_reproducible_and_argument_errors():
    a = _low_rank()
    u1, _, _ = randomized_svd(a, 3, random_state=5)
    u2, _, _ = randomized_svd(a, 3, random_state=5)
    assert torch.equal(u1, u2)
    with pytest.raises(ValueError, match="n_components"):
        randomized_svd(a, 0)
    with pytest.raises(ValueError, match="exceeds"):
        randomized_svd(a, 500)
    with pytest.raises(ValueError, match="either a or"):
        randomized_svd(a, 2, matmat=lambda x: x)
    with pytest.raises(ValueError, match="required"):
        randomized_svd(None, 2)


def test_normalized_adjacency_closed_form():
    a = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float))
    p = normalized_adjacency(a).toarray()
    d = np.array([2.0, 3.0, 2.0])
    expected = (a.toarray() + np.eye(3)) / np.sqrt(np.outer(d, d))
    np.testing.assert_allclose(p, expected)
    isolated = normalized_adjacency(sp.csr_matrix((2, 2)), self_loops=False).toarray()
    np.testing.assert_array_equal(isolated, np.zeros((2, 2)))


def test_sparse_operator_matches_dense_product():
    from graphrec.core import SparseOperator

    a = sp.random(40, 30, density=0.2, random_state=0, format="csr")
    h = torch.from_numpy(np.random.default_rng(0).standard_normal((30, 4)))
    op = SparseOperator(a)
    assert op.shape == (40, 30)
    np.testing.assert_allclose((op @ h).numpy(), a.toarray() @ h.numpy(), rtol=1e-12)


def test_randomized_svd_rejects_nan_and_non_2d():
    a = _low_rank(m=20, n=10)
    a[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        randomized_svd(a, 2)
    with pytest.raises(ValueError, match="NaN"):
        randomized_svd(sp.csr_matrix(a), 2)
    with pytest.raises(ValueError, match="2-d"):
        randomized_svd(np.ones((2, 3, 4)), 1)


def test_randomized_svd_with_energy_rank_against_exact():
    from graphrec.core import energy_rank

    a = _low_rank(noise=1e-2)
    s_exact = np.linalg.svd(a, compute_uv=False)
    cum = np.cumsum(s_exact**2) / np.sum(s_exact**2)
    fro2 = float(np.sum(a**2))
    _, s, _ = randomized_svd(a, 10, random_state=0)
    for frac in (0.5, 0.9, 0.99):
        assert energy_rank(s, frac, total=fro2) == int(np.searchsorted(cum, frac) + 1)
    # the top 10 of a noisy matrix cannot hold all of its energy: the caller gets 10 back
    assert energy_rank(s, 1.0, total=fro2) == 10
    with pytest.raises(ValueError, match="total"):
        energy_rank(s, 0.5, total=1.0)


@pytest.mark.parametrize("layout", [torch.sparse_coo, torch.sparse_csr])
def test_to_torch_sparse_sums_duplicates_in_both_layouts_without_a_warning(layout):
    import warnings

    from graphrec.core.sparse import to_torch_sparse

    # unsorted columns and a duplicate (1, 2) entry, as scipy allows before sum_duplicates
    a = sp.csr_matrix((np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([2, 0, 2, 1, 2]), np.array([0, 2, 5])), shape=(2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = to_torch_sparse(a, dtype=torch.float32, layout=layout)
    assert t.layout == layout and t.dtype == torch.float32
    np.testing.assert_array_equal(t.to_dense().numpy(), a.toarray())
    assert a.nnz == 5, "the caller's matrix is left as it was"
    x = torch.randn(3, 4)
    torch.testing.assert_close(t @ x, torch.from_numpy(a.toarray()).float() @ x)
    with pytest.raises(ValueError, match="layout"):
        to_torch_sparse(a, layout=torch.strided)


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_are_computed_in_float32(half):
    # CPU SVD and logdet have no half kernels; the primitives compute half inputs in float32
    from graphrec.core import coding_rate, principal_angles, truncated_svd

    x = torch.randn(40, 8, generator=torch.Generator().manual_seed(0)).to(half)
    ref = x.float()
    u, s, vt = truncated_svd(x, 3)
    assert s.dtype == torch.float32
    torch.testing.assert_close(s, truncated_svd(ref, 3)[1])
    angles = principal_angles(x[:, :3], x[:, 3:6])
    torch.testing.assert_close(angles, principal_angles(ref[:, :3], ref[:, 3:6]))
    torch.testing.assert_close(coding_rate(x), coding_rate(ref))


# ---------------------------------------------------------------------------------------------
# as_tensor, the argument check of the core primitives
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x, error, message",
    [
        (np.array([1, None], dtype=object), TypeError, "x must hold numbers, got an object array"),
        (np.array(["1", "2"]), TypeError, "x must hold numbers, got dtype <U1"),
        (np.array([1.0, 2.0 + 1.0j]), TypeError, "x must be real, got dtype complex128"),
        (torch.tensor([1.0 + 1.0j]), TypeError, r"x must be real, got dtype torch\.complex64"),
        (np.zeros((0, 3)), ValueError, r"x is empty \(shape \(0, 3\)\); expected at least one entry"),
        (torch.tensor([1.0, float("inf")]), ValueError, "x contains NaN or infinite values"),
    ],
)
def test_as_tensor_refuses_bad_input_naming_the_argument(x, error, message):
    from graphrec.core._checks import as_tensor

    # numpy complex input used to lose its imaginary part with only a warning; numpy strings
    # failed inside torch with a message that did not name the argument
    with pytest.raises(error, match=message):
        as_tensor(x, "x")


def test_as_tensor_casts_integers_and_keeps_empty_input_when_allowed():
    from graphrec.core._checks import as_tensor

    t = as_tensor(torch.tensor([[1, 2], [3, 4]]), "x", ndim=2)
    assert t.dtype == torch.get_default_dtype() and t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert as_tensor(np.array([True, False]), "x").dtype == torch.float64
    assert as_tensor(np.zeros((0, 2)), "x", allow_empty=True).shape == (0, 2)
    assert as_tensor(np.ones(3), "x", dtype=torch.float32).dtype == torch.float32
    with pytest.raises(ValueError, match=r"x must be 2-dimensional, got shape \(3,\)"):
        as_tensor(np.ones(3), "x", ndim=2)
    with pytest.raises(ValueError, match=r"x must have at least 2 dimensions, got shape \(3,\)"):
        as_tensor(torch.ones(3), "x", min_ndim=2)


# ---------------------------------------------------------------------------------------------
# SparseOperator off the CPU: torch's sparse product instead of the compiled kernels
# ---------------------------------------------------------------------------------------------


def _off_cpu_operator(monkeypatch, a: sp.spmatrix):
    """A SparseOperator that takes its non-CPU branch (torch sparse tensors), run on the CPU.

    The device only selects the branch; the sparse tensor is built on the CPU so that the torch
    arithmetic of that branch is checked without an accelerator.
    """
    from graphrec.core import sparse

    real = sparse.to_torch_sparse
    monkeypatch.setattr(sparse, "to_torch_sparse", lambda m, device, dtype: real(m, "cpu", dtype=dtype))
    return sparse.SparseOperator(a, device="cuda")


def test_sparse_operator_torch_branch_matches_the_cpu_kernels(monkeypatch):
    from graphrec.core import SparseOperator

    a = sp.random(30, 30, density=0.2, random_state=1, format="csr")
    h = torch.from_numpy(np.random.default_rng(1).standard_normal((30, 3)))
    cpu, off = SparseOperator(a), _off_cpu_operator(monkeypatch, a)
    assert off.device.type == "cuda" and off.t.dtype == torch.float64 and off.shape == (30, 30)
    torch.testing.assert_close(off @ h, cpu @ h, rtol=1e-12, atol=1e-12)
    for steps in (1, 4):
        torch.testing.assert_close(off.horner(h, 0.7, steps), cpu.horner(h, 0.7, steps), rtol=1e-12, atol=1e-12)


def test_sparse_operator_horner_of_degree_zero_is_a_copy_on_every_device(monkeypatch):
    # the torch branch returned h itself for steps=0, so a caller scaling the result in place
    # (S2CAG's ``op.horner(h, alpha, T).mul_(c)``) also changed its input; the CPU kernel copies
    from graphrec.core import SparseOperator

    a = sp.random(5, 5, density=0.4, random_state=0, format="csr")
    for op in (SparseOperator(a), _off_cpu_operator(monkeypatch, a)):
        h = torch.ones(5, 2, dtype=torch.float64)
        out = op.horner(h, 0.5, 0)
        torch.testing.assert_close(out, h)
        out.mul_(3.0)
        assert torch.equal(h, torch.ones(5, 2, dtype=torch.float64)), op.device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_sparse_operator_on_cuda_matches_the_cpu_kernels():
    from graphrec.core import SparseOperator

    a = sp.random(50, 50, density=0.1, random_state=2, format="csr")
    h = torch.from_numpy(np.random.default_rng(2).standard_normal((50, 4)))
    cpu, gpu = SparseOperator(a), SparseOperator(a, device="cuda")
    torch.testing.assert_close((gpu @ h.cuda()).cpu(), cpu @ h, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gpu.horner(h.cuda(), 0.6, 5).cpu(), cpu.horner(h, 0.6, 5), rtol=1e-10, atol=1e-12)
    hc = h.cuda()
    assert gpu.horner(hc, 0.6, 0).data_ptr() != hc.data_ptr()
