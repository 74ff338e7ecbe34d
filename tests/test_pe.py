"""SPE: eigenpairs, invariance, equivariance, a hand-computed case, batching, padding, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("torch_geometric")
from torch_geometric.data import Batch, Data  # noqa: E402

from graphrec.pe import SPE, AddSPEEigenpairs, DeepSetsPhi, ElementwisePhi, GINRho, laplacian_eigenpairs  # noqa: E402

_CACHE: dict = {}


def _zinc(split: str = "train", count: int = 60) -> list:
    """The first ``count`` ZINC graphs of ``split`` (loaded inside a test, after the cache is isolated)."""
    if "zinc" not in _CACHE:
        from graphrec.datasets import load

        _CACHE["zinc"] = load("zinc")
    data = _CACHE["zinc"][split]
    return [data[i] for i in range(count)]


def _graph(edges: list[tuple[int, int]], n: int) -> Data:
    ei = torch.tensor(edges, dtype=torch.long).reshape(-1, 2).T
    return Data(edge_index=torch.cat([ei, ei.flip(0)], 1), num_nodes=n)


def _spe(phi: str = "mlp", seed: int = 0, out: int = 5) -> SPE:
    torch.manual_seed(seed)
    phi_net = ElementwisePhi(4, 8, 3) if phi == "mlp" else DeepSetsPhi(4, 8, 3)
    spe = SPE(phi_net, GINRho(4, 12, out, n_layers=3, mlp_layers=3)).double()
    gen = torch.Generator().manual_seed(seed + 1)
    for m in spe.modules():  # non-trivial BatchNorm running statistics, so eval mode uses them
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.copy_(0.3 * torch.randn(m.num_features, generator=gen, dtype=torch.float64))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen, dtype=torch.float64))
    return spe


def _encode(spe: SPE, graphs: list[Data]) -> torch.Tensor:
    b = Batch.from_data_list(graphs)
    return spe(b.eigvals, b.eigvecs, b.eig_mask, b.edge_index, b.batch)


def _with_pairs(graphs: list[Data], d: int = 37) -> list[Data]:
    add = AddSPEEigenpairs(d=d, dtype=torch.float64)
    return [add(Data(edge_index=g.edge_index, num_nodes=g.num_nodes)) for g in graphs]


def _eigenspaces(lam: np.ndarray, tol: float = 1e-6) -> list[np.ndarray]:
    groups, start = [], 0
    for k in range(1, len(lam) + 1):
        if k == len(lam) or lam[k] - lam[k - 1] > tol:
            groups.append(np.arange(start, k))
            start = k
    return groups


def _rotate_within_eigenspaces(g: Data, rng: np.random.Generator) -> tuple[Data, float]:
    """Random signs and random orthogonal mixing inside every eigenspace; returns the graph and max |V - V'|."""
    k = int(g.eig_mask.sum())
    lam = g.eigvals[0, :k].numpy()
    v = g.eigvecs.clone()
    for idx in _eigenspaces(lam):
        q, _ = np.linalg.qr(rng.standard_normal((len(idx), len(idx))))
        q = q * rng.choice([-1.0, 1.0], size=len(idx))
        v[:, idx] = g.eigvecs[:, idx] @ torch.from_numpy(q)
    out = g.clone()
    out.eigvecs = v
    return out, float((v - g.eigvecs).abs().max())


# ------------------------------------------------------------------------------ eigenpairs
def test_eigenpairs_of_a_path_match_the_closed_form():
    # path on 4 nodes: normalised Laplacian eigenvalues 1 - cos(pi k / 3), k = 0..3
    lam, v, mask = laplacian_eigenpairs(_graph([(0, 1), (1, 2), (2, 3)], 4).edge_index, 4, 6, dtype=torch.float64)
    expected = 1 - np.cos(np.pi * np.arange(4) / 3)
    np.testing.assert_allclose(lam[:4].numpy(), expected, atol=1e-12)
    assert mask.tolist() == [True] * 4 + [False] * 2 and lam[4:].abs().max() == 0
    np.testing.assert_allclose((v[:, :4].T @ v[:, :4]).numpy(), np.eye(4), atol=1e-12)
    assert v[:, 4:].abs().max() == 0
    deg = np.array([1.0, 2.0, 2.0, 1.0])
    np.testing.assert_allclose(np.abs(v[:, 0].numpy()), np.sqrt(deg / deg.sum()), atol=1e-12)


def test_combinatorial_laplacian_option():
    lam, _, _ = laplacian_eigenpairs(_graph([(0, 1), (1, 2), (2, 0)], 3).edge_index, 3, 3,
                                     normalization=None, dtype=torch.float64)
    np.testing.assert_allclose(lam.numpy(), [0.0, 3.0, 3.0], atol=1e-12)   # triangle: D - A


def test_isolated_nodes_and_components_give_one_zero_eigenvalue_each():
    g = _graph([(0, 1), (2, 3)], 6)                    # two edges plus isolated nodes 4 and 5
    lam, v, mask = laplacian_eigenpairs(g.edge_index, 6, 6, dtype=torch.float64)
    assert int((lam[mask].abs() < 1e-12).sum()) == 4
    assert torch.isfinite(v).all()


def test_transform_stores_padded_rows_that_batch():
    graphs = _with_pairs([_graph([(0, 1)], 2), _graph([(0, 1), (1, 2)], 3)], d=4)
    b = Batch.from_data_list(graphs)
    assert b.eigvals.shape == (2, 4) and b.eig_mask.shape == (2, 4) and b.eigvecs.shape == (5, 4)
    assert b.eig_mask.sum(1).tolist() == [2, 3]
    assert "AddSPEEigenpairs(d=4" in repr(AddSPEEigenpairs(d=4))


def test_empty_graph_and_d_larger_than_n():
    empty = AddSPEEigenpairs(d=3)(Data(edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=0))
    assert empty.eigvecs.shape == (0, 3) and not empty.eig_mask.any()
    spe = _spe().eval()
    graphs = _with_pairs([_graph([], 0), _graph([(0, 1), (1, 2)], 3), _graph([], 0), _graph([(0, 1)], 2)], d=8)
    pe = _encode(spe, graphs)
    assert pe.shape == (5, 5) and torch.isfinite(pe).all()
    alone = torch.cat([_encode(spe, [g]) for g in graphs[1::2]])
    torch.testing.assert_close(pe, alone, rtol=0, atol=1e-12)
    assert _encode(spe, graphs[:1]).shape == (0, 5)


@pytest.mark.parametrize(
    "kwargs,error",
    [
        (dict(d=0), ValueError),
        (dict(d=2.5), TypeError),
        (dict(normalization="rw"), ValueError),
        (dict(dtype=torch.int64), TypeError),
    ],
)
def test_transform_rejects_bad_options(kwargs, error):
    with pytest.raises(error):
        AddSPEEigenpairs(**kwargs)


def test_eigenpairs_reject_bad_graphs():
    with pytest.raises(ValueError, match="outside"):
        laplacian_eigenpairs(torch.tensor([[0, 5]]).T.reshape(2, 1), 3, 2)
    with pytest.raises(ValueError, match="edge_index"):
        laplacian_eigenpairs(torch.zeros(3, 2, dtype=torch.long), 3, 2)
    with pytest.raises(TypeError, match="integers"):
        laplacian_eigenpairs(torch.zeros(2, 1), 3, 2)
    with pytest.raises(ValueError, match="edge_weight"):
        laplacian_eigenpairs(torch.tensor([[0], [1]]), 2, 2, edge_weight=torch.tensor([-1.0]))


# ------------------------------------------------------------------------------ the model
def test_hand_computed_pe_on_a_path():
    """Path 0-1-2, phi_1(lam) = lam, phi_2(lam) = 1, so W_1 = L_sym and W_2 = I (full spectrum);
    one GIN layer with eps = 0 and an identity linear map: PE[i] = sum_j ((I + A) W_l)[i, j]."""
    spe = SPE(ElementwisePhi(2, 1, n_layers=1), GINRho(2, 2, 2, n_layers=1, mlp_layers=1, batch_norm=False)).double()
    with torch.no_grad():
        spe.phi.weights[0].copy_(torch.tensor([1.0, 0.0]).view(2, 1, 1))
        spe.phi.biases[0].copy_(torch.tensor([0.0, 1.0]).view(2, 1))
        spe.rho.eps[0].zero_()
        spe.rho.mlps[0].linears[0].weight.copy_(torch.eye(2))
        spe.rho.mlps[0].linears[0].bias.zero_()
    (g,) = _with_pairs([_graph([(0, 1), (1, 2)], 3)], d=3)
    r = math.sqrt(2)
    # (I + A) L_sym row sums: 2 - 3/sqrt(2), 3 - 2 sqrt(2), 2 - 3/sqrt(2); (I + A) I row sums: 1 + degree
    expected = torch.tensor([[2 - 3 / r, 2.0], [3 - 2 * r, 3.0], [2 - 3 / r, 2.0]], dtype=torch.float64)
    for mode in (spe.train, spe.eval):
        mode()
        torch.testing.assert_close(_encode(spe, [g]), expected, rtol=0, atol=1e-12)


def _reference_spe(spe: SPE, graphs: list[Data]) -> torch.Tensor:
    """Slow reference: per-graph dense tensors, BatchNorm over the real eigenvalues / pairs only."""
    phi, rho = spe.phi, spe.rho
    lam = torch.cat([g.eigvals[g.eig_mask] for g in graphs])
    m = phi.n_phis
    z_cols = []
    for l in range(m):
        x = lam.unsqueeze(1)
        for k, (w, b) in enumerate(zip(phi.weights, phi.biases)):
            x = x @ w[l] + b[l]
            if k < len(phi.weights) - 1:
                bn = phi.norms[k]
                h = x.shape[1]
                sl = slice(l * h, (l + 1) * h)
                x = F.batch_norm(x, bn.running_mean[sl], bn.running_var[sl], bn.weight[sl], bn.bias[sl],
                                 training=False) if not spe.training else F.batch_norm(
                    x, None, None, bn.weight[sl], bn.bias[sl], training=True, eps=bn.eps)
                x = torch.relu(x)
        z_cols.append(x[:, 0])
    z = torch.stack(z_cols, 1)
    hs, start = [], 0
    for g in graphs:
        k = int(g.eig_mask.sum())
        v = g.eigvecs[:, :k]
        zg = z[start : start + k]
        start += k
        hs.append(torch.einsum("ik,kl,jk->ijl", v, zg, v))
    adj = []
    for g in graphs:
        a = torch.zeros(g.num_nodes, g.num_nodes, dtype=torch.float64)
        a.index_put_((g.edge_index[1], g.edge_index[0]), torch.ones(g.edge_index.shape[1], dtype=torch.float64),
                     accumulate=True)
        adj.append(a)
    for mlp, eps in zip(rho.mlps, rho.eps):
        rows = [((1 + eps) * h + torch.einsum("iu,ujc->ijc", a, h)) for h, a in zip(hs, adj)]
        flat = mlp(torch.cat([r.reshape(-1, r.shape[-1]) for r in rows]))
        hs, start = [], 0
        for g in graphs:
            n = g.num_nodes
            hs.append(flat[start : start + n * n].reshape(n, n, -1))
            start += n * n
    return torch.cat([h.sum(1) for h in hs])


@pytest.mark.parametrize("phi", ["mlp", "deepsets"])
@pytest.mark.parametrize("train", [True, False])
def test_batch_matches_reference_with_padding_kept_out_of_normalisation(phi, train):
    """Graphs of 9..37 nodes with d = 37 (padded eigenvalues): equal to the per-graph reference whose
    BatchNorm sees real eigenvalues and pairs only, in train mode (batch statistics) and eval mode."""
    spe = _spe(phi)
    spe.train(train)
    graphs = _with_pairs(_zinc(count=12))
    assert len({g.num_nodes for g in graphs}) > 5 and any(int(g.eig_mask.sum()) < 37 for g in graphs)
    ours = _encode(spe, graphs)
    if phi == "deepsets":
        ref_phi = spe.phi
        lam = torch.cat([g.eigvals[g.eig_mask] for g in graphs])
        graph = torch.cat([torch.full((int(g.eig_mask.sum()),), i) for i, g in enumerate(graphs)])
        z = ref_phi(lam, graph, len(graphs))
        # the DeepSets phi of graph i must not depend on the other graphs or on padding
        alone = ref_phi(graphs[0].eigvals[graphs[0].eig_mask], torch.zeros(int(graphs[0].eig_mask.sum()),
                                                                            dtype=torch.long), 1)
        torch.testing.assert_close(z[: len(alone)], alone, rtol=0, atol=1e-12)
        return
    torch.testing.assert_close(ours, _reference_spe(spe, graphs), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("train", [True, False])
def test_inference_path_without_autograd_equals_the_autograd_path(train):
    """Without autograd rho folds BatchNorm (eval), fuses the aggregation and reuses two result buffers
    across products; the PE must equal the autograd path's and stay equal on a second call."""
    spe = _spe().train(train)
    graphs = _with_pairs(_zinc(count=12))
    with torch.no_grad():
        fast = [_encode(spe, graphs) for _ in range(2)]
        single = _encode(spe, graphs[:3])   # a smaller layout after a larger one
    plain = _encode(spe, graphs).detach()
    for out in fast:
        torch.testing.assert_close(out, plain, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(single, _encode(spe, graphs[:3]).detach(), rtol=1e-10, atol=1e-10)


def test_batching_graphs_of_different_sizes_equals_one_at_a_time():
    spe = _spe().eval()
    graphs = _with_pairs(_zinc(count=20))
    batched = _encode(spe, graphs)
    alone = torch.cat([_encode(spe, [g]) for g in graphs])
    torch.testing.assert_close(batched, alone, rtol=0, atol=1e-10)


def test_eigenvalue_padding_does_not_change_the_pe():
    """d = n (no padding) and d = 37 (padding) give the same PE, in train mode too."""
    spe = _spe().train()
    graphs = _zinc(count=3)
    exact = torch.cat([_encode(spe, _with_pairs([g], d=g.num_nodes)) for g in graphs])
    padded = torch.cat([_encode(spe, _with_pairs([g], d=37)) for g in graphs])
    torch.testing.assert_close(exact, padded, rtol=0, atol=1e-10)


@pytest.mark.parametrize("phi", ["mlp", "deepsets"])
def test_invariance_to_signs_and_bases_of_repeated_eigenspaces(phi):
    rng = np.random.default_rng(0)
    graphs = _with_pairs(_zinc(count=60))
    repeated = [g for g in graphs
                if any(len(s) > 1 for s in _eigenspaces(g.eigvals[0, : int(g.eig_mask.sum())].numpy()))]
    assert len(repeated) >= 10, "ZINC should have many graphs with repeated eigenvalues"
    repeated = repeated[:12]
    for train in (False, True):
        spe = _spe(phi).train(train)
        before = _encode(spe, repeated)
        moved, changes = zip(*(_rotate_within_eigenspaces(g, rng) for g in repeated))
        after = _encode(spe, list(moved))
        assert max(changes) > 0.1, "the eigenvectors themselves must change"
        assert float((before - after).detach().abs().max()) <= 1e-5
        # the raw eigenvectors are not invariant: a naive PE would change
        raw_change = torch.cat([g.eigvecs for g in repeated]) - torch.cat([g.eigvecs for g in moved])
        assert float(raw_change.abs().max()) > 0.1


def test_permutation_equivariance():
    rng = np.random.default_rng(1)
    spe = _spe().eval()
    graphs = _zinc(count=8)
    for g in graphs:
        perm = torch.from_numpy(rng.permutation(g.num_nodes))   # new id of old node v is perm[v]
        moved = Data(edge_index=perm[g.edge_index], num_nodes=g.num_nodes)
        pe = _encode(spe, _with_pairs([g]))
        pe_moved = _encode(spe, _with_pairs([moved]))
        assert float((pe_moved[perm] - pe).detach().abs().max()) <= 1e-5


def test_disconnected_graph_with_isolated_nodes_is_invariant_too():
    rng = np.random.default_rng(2)
    spe = _spe().eval()
    (g,) = _with_pairs([_graph([(0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3)], 8)], d=8)  # 2 triangles, 2 lone
    pe = _encode(spe, [g])
    moved, change = _rotate_within_eigenspaces(g, rng)
    assert change > 0.1 and torch.isfinite(pe).all()
    assert float((_encode(spe, [moved]) - pe).detach().abs().max()) <= 1e-5
    torch.testing.assert_close(pe[6], pe[7])   # the two isolated nodes are interchangeable
    torch.testing.assert_close(pe[0], pe[4])   # as are the triangles' nodes


def test_column_chunks_sum_to_the_full_pe():
    spe = _spe().eval()
    (g,) = _with_pairs(_zinc(count=1))
    full = _encode(spe, [g])
    n = g.num_nodes
    parts = sum(spe(g.eigvals, g.eigvecs, g.eig_mask, g.edge_index, columns=torch.arange(s, min(n, s + 7)))
                for s in range(0, n, 7))
    torch.testing.assert_close(parts, full, rtol=0, atol=1e-10)


def test_gradients_flow_to_every_parameter():
    spe = _spe().train()
    _encode(spe, _with_pairs(_zinc(count=4))).square().sum().backward()
    missing = [name for name, p in spe.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_forward_rejects_bad_input():
    spe = _spe().eval()
    (g,) = _with_pairs([_graph([(0, 1), (1, 2)], 3)], d=3)
    args = dict(eigvals=g.eigvals, eigvecs=g.eigvecs, eig_mask=g.eig_mask, edge_index=g.edge_index)
    with pytest.raises(ValueError, match="same d"):
        spe(**{**args, "eigvecs": g.eigvecs[:, :2]})
    with pytest.raises(ValueError, match="finite"):
        spe(**{**args, "eigvecs": g.eigvecs * float("nan")})
    with pytest.raises(ValueError, match="eig_mask"):
        spe(**{**args, "eig_mask": g.eig_mask.float()})
    with pytest.raises(ValueError, match="outside"):
        spe(**{**args, "edge_index": torch.tensor([[0], [3]])})
    with pytest.raises(ValueError, match="batch is needed"):
        spe(**{**args, "eigvals": g.eigvals.repeat(2, 1), "eig_mask": g.eig_mask.repeat(2, 1)})
    two = Batch.from_data_list([g, g])
    with pytest.raises(ValueError, match="non-decreasing"):
        spe(two.eigvals, two.eigvecs, two.eig_mask, two.edge_index, two.batch.flip(0))
    with pytest.raises(ValueError, match="different graphs"):
        spe(two.eigvals, two.eigvecs, two.eig_mask, torch.tensor([[0], [4]]), two.batch)
    with pytest.raises(TypeError):
        spe(**{**args, "eigvals": g.eigvals.numpy()})
    with pytest.raises(ValueError, match="columns"):
        spe(**args, columns=torch.tensor([5]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    spe = _spe().eval()
    graphs = _with_pairs(_zinc(count=8))
    cpu = _encode(spe, graphs)
    b = Batch.from_data_list(graphs).to("cuda")
    gpu = spe.to("cuda")(b.eigvals, b.eigvecs, b.eig_mask, b.edge_index, b.batch)
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-8, atol=1e-8)


# ------------------------------------------------------------------------------ compiled inference passes
def _random_csr(m: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """int64 CSR structure (m x m) with repeated column ids and empty rows."""
    counts = torch.randint(0, 4, (m,), generator=gen)
    counts[:: 3] = 0                                               # empty rows
    indptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    indices = torch.randint(0, m, (int(indptr[-1]),), generator=gen)
    indices[1::4] = indices[0::4][: len(indices[1::4])]               # duplicates inside rows
    return indptr, indices


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("width", [20, 64, 128])
def test_compiled_passes_equal_their_torch_reference(dtype, relu, width):
    """gin_aggregate = act(alpha Y + S Y + (alpha + deg) b + post) and bias_act = act(X + b), with S
    built here as a dense matrix (duplicates add up, empty rows get only the bias terms)."""
    from graphrec.pe import _fused

    gen = torch.Generator().manual_seed(width)
    m = 257
    indptr, indices = _random_csr(m, gen)
    assert bool((indptr.diff() == 0).any()) and len(set(indices[indptr[1]:indptr[2]].tolist())) <= 3
    y, bias, post = (torch.randn(*shape, generator=gen, dtype=dtype) for shape in ((m, width), (width,), (width,)))
    dense = torch.zeros(m, m, dtype=torch.float64)
    rows = torch.repeat_interleave(torch.arange(m), indptr.diff())
    dense.index_put_((rows, indices), torch.ones(len(indices), dtype=torch.float64), accumulate=True)
    alpha = 0.7
    act = torch.relu if relu else (lambda t: t)
    y64 = y.double()
    expected = act(alpha * y64 + dense @ y64 + (alpha + dense.sum(1, keepdim=True)) * bias.double() + post.double())
    out = _fused.gin_aggregate(indptr, indices, y, alpha, bias, post, relu, torch.empty_like(y))
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out.double(), expected, rtol=tol, atol=tol)
    no_bias = _fused.gin_aggregate(indptr, indices, y, alpha, None, None, relu, torch.empty_like(y))
    torch.testing.assert_close(no_bias.double(), act(alpha * y64 + dense @ y64), rtol=tol, atol=tol)
    x = y.clone()
    assert _fused.bias_act(x, bias, relu) is x
    torch.testing.assert_close(x.double(), act(y64 + bias.double()), rtol=tol, atol=tol)


def test_compiled_passes_reject_bad_input():
    from graphrec.pe import _fused

    indptr, indices = torch.tensor([0, 2, 2, 3]), torch.tensor([0, 2, 1])
    y, out = torch.randn(3, 4), torch.empty(3, 4)
    ok = dict(indptr=indptr, indices=indices, y=y, alpha=1.0, bias=None, post=None, relu=True, out=out)
    with pytest.raises(TypeError):                                      # float64 out for float32 y
        _fused.gin_aggregate(**{**ok, "out": out.double()})
    with pytest.raises(TypeError):                                      # int32 structure
        _fused.gin_aggregate(**{**ok, "indptr": indptr.int()})
    with pytest.raises(TypeError):                                      # not contiguous
        _fused.gin_aggregate(**{**ok, "y": torch.randn(4, 3).T})
    with pytest.raises(ValueError, match="indptr must have length"):
        _fused.gin_aggregate(**{**ok, "indptr": indptr[:3]})
    with pytest.raises(ValueError, match="non-decreasing"):
        _fused.gin_aggregate(**{**ok, "indptr": torch.tensor([0, 3, 2, 3])})
    with pytest.raises(ValueError, match=r"column ids in \[0, m\)"):
        _fused.gin_aggregate(**{**ok, "indices": torch.tensor([0, 3, 1])})
    with pytest.raises(ValueError, match=r"column ids in \[0, m\)"):
        _fused.gin_aggregate(**{**ok, "indices": torch.tensor([0, -1, 1])})
    with pytest.raises(ValueError, match="end within indices"):
        _fused.gin_aggregate(**{**ok, "indices": indices[:2]})
    with pytest.raises(ValueError, match="out must have the shape"):
        _fused.gin_aggregate(**{**ok, "out": torch.empty(3, 5)})
    with pytest.raises(ValueError, match="overlap"):
        _fused.gin_aggregate(**{**ok, "out": y})
    with pytest.raises(ValueError, match="post must have shape"):
        _fused.gin_aggregate(**{**ok, "post": torch.zeros(5)})
    with pytest.raises(ValueError, match="bias must have shape"):
        _fused.bias_act(y, torch.zeros(3), True)
    with pytest.raises(TypeError):
        _fused.bias_act(y, torch.zeros(4, dtype=torch.float64), True)


def _rho_variants():
    """(hidden, mlp_layers, batch_norm): the compiled block kernel (widths 32, 64), the generic width,
    one-layer MLPs (no ReLU, no middle map), two-layer MLPs, no BatchNorm."""
    return [(32, 3, True), (64, 2, True), (12, 1, True), (20, 3, False)]


@pytest.mark.parametrize("hidden, mlp_layers, batch_norm", _rho_variants())
@pytest.mark.parametrize("block_rows", [1, 300, 10**6])
@pytest.mark.parametrize("threads", [1, 2])
def test_blocked_inference_equals_the_autograd_path(monkeypatch, intra_op_threads, hidden, mlp_layers, batch_norm,
                                                    block_rows, threads):
    """Eval mode without autograd runs rho block by block of whole graphs with the compiled passes:
    blocks of one graph each (every graph exceeds 1 row), a few graphs, and the whole batch; with
    two threads and several blocks, the blocks run side by side on two single-threaded workers."""
    import graphrec.pe.spe as spe_module

    monkeypatch.setattr(spe_module, "_BLOCK_ROWS", block_rows)
    intra_op_threads(threads)
    parallel_calls, original = [], spe_module.for_each_on_workers

    def spy(fn, items, n_workers):
        parallel_calls.append((len(items), n_workers))
        original(fn, items, n_workers)

    monkeypatch.setattr(spe_module, "for_each_on_workers", spy)
    torch.manual_seed(3)
    spe = SPE(ElementwisePhi(4, 8, 3), GINRho(4, hidden, 5, n_layers=3, mlp_layers=mlp_layers,
                                               batch_norm=batch_norm)).double().eval()
    graphs = _with_pairs(_zinc(count=10))
    with torch.no_grad():
        fast = _encode(spe, graphs)
        g = graphs[0]
        columns = torch.tensor([0, 3, 5])
        fast_columns = spe(g.eigvals, g.eigvecs, g.eig_mask, g.edge_index, columns=columns)
    torch.testing.assert_close(fast, _encode(spe, graphs).detach(), rtol=1e-10, atol=1e-10)
    plain = spe(g.eigvals, g.eigvecs, g.eig_mask, g.edge_index, columns=columns).detach()
    torch.testing.assert_close(fast_columns, plain, rtol=1e-10, atol=1e-10)
    # the batch's blocks ran on the workers when there were two threads and several blocks
    assert [n > 1 for n, _ in parallel_calls] == ([True] if threads == 2 and block_rows < 10**6 else [])
    assert all(workers == 2 for _, workers in parallel_calls)   # the pool of the caller's thread count
    assert torch.get_num_threads() == threads   # the caller's count is untouched


def test_missing_compiled_passes_fall_back_with_one_warning(monkeypatch):
    from graphrec import kernels

    spe = _spe().eval()
    graphs = _with_pairs(_zinc(count=5))
    with torch.no_grad():
        compiled = _encode(spe, graphs)
    monkeypatch.setattr(kernels, "_load_ext", lambda: None)
    monkeypatch.setattr(kernels, "_warned_fallbacks", set())
    with torch.no_grad(), pytest.warns(UserWarning, match="graphrec._ext") as record:
        first, second = _encode(spe, graphs), _encode(spe, graphs)
    assert sum("graphrec._ext" in str(w.message) for w in record) == 1
    torch.testing.assert_close(first, compiled, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(second, compiled, rtol=1e-10, atol=1e-10)


def test_propagator_is_built_in_row_order_with_every_entry():
    """The sparse propagation matrix (made in row order, without a sort) equals the dense
    ``(A H)[(g, i, j)] = sum_{u -> i} H[(g, u, j)]`` built entry by entry here, duplicate edges included."""
    from graphrec.pe.spe import PairLayout

    graphs = [_graph([(0, 1), (1, 2), (0, 1)], 3), _graph([(0, 1)], 2), _graph([(0, 1), (2, 3), (1, 3)], 4),
              _graph([(1, 0), (0, 2)], 3)]
    b = Batch.from_data_list(graphs)
    sizes = [g.num_nodes for g in graphs]
    ptr = torch.tensor([0, *np.cumsum(sizes)])
    layout = PairLayout(sizes, ptr, b.edge_index, torch.device("cpu"), torch.float64)
    row_of, start = {}, 0                       # (graph, i, j) -> pair row: graphs grouped by size
    for s in sorted(set(sizes)):
        for g in [g for g in range(len(sizes)) if sizes[g] == s]:
            for i in range(s):
                for j in range(s):
                    row_of[g, i, j] = start
                    start += 1
    dense = torch.zeros(start, start, dtype=torch.float64)
    for g, graph in enumerate(graphs):
        for u, i in graph.edge_index.T.tolist():
            for j in range(sizes[g]):
                dense[row_of[g, i, j], row_of[g, u, j]] += 1
    assert float(dense.max()) == 2.0             # the repeated edge counts twice
    torch.testing.assert_close(layout.propagator.to_dense(), dense, rtol=0, atol=0)
    torch.testing.assert_close(layout.propagator_t().to_dense(), dense.T, rtol=0, atol=0)


def test_compiled_passes_split_large_inputs_across_threads_with_equal_results():
    """Rows are independent, so 1 and 3 threads give bit-equal results (the input is large enough
    to be split)."""
    from graphrec.pe import _fused

    gen = torch.Generator().manual_seed(0)
    m, width = 20_000, 128
    indptr, indices = _random_csr(m, gen)
    y, bias, post = torch.randn(m, width, generator=gen), torch.randn(width, generator=gen), torch.randn(width)
    one = _fused.gin_aggregate(indptr, indices, y, 1.5, bias, post, True, torch.empty_like(y), n_threads=1)
    three = _fused.gin_aggregate(indptr, indices, y, 1.5, bias, post, True, torch.empty_like(y), n_threads=3)
    assert torch.equal(one, three)
    a, b = y.clone(), y.clone()
    assert torch.equal(_fused.bias_act(a, bias, True, n_threads=1), _fused.bias_act(b, bias, True, n_threads=3))
