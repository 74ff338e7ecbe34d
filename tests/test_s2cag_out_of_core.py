"""Out-of-core S2CAG: memory-mapped CSR chunks give the in-memory result."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.linalg import subspace_angles

from graphrec.cluster import MS2CAG, S2CAG, DiskAttributedGraph
from graphrec.cluster.out_of_core import ChunkedSmoothedRepresentation, DiskCSR
from graphrec.cluster.s2cag import _prepare
from graphrec.datasets import make_attributed_sbm


def _graph(seed: int = 0, n: int = 500):
    g = make_attributed_sbm(n_nodes=n, n_clusters=3, p_in=0.04, p_out=0.003, random_state=seed)
    feats = g.features.tolil()
    feats[7, :] = 0  # an all-zero attribute row and an isolated node
    adj = g.adjacency.tolil()
    adj[11, :] = 0
    adj[:, 11] = 0
    return (adj.tocsr(), feats.tocsr())


def test_disk_csr_round_trip_and_chunked_products(tmp_path):
    rng = np.random.default_rng(0)
    a = sp.random(300, 40, density=0.1, random_state=0, format="csr")
    disk = DiskCSR.save(a, tmp_path / "a")
    assert disk.shape == (300, 40) and disk.nnz == a.nnz
    x, h = rng.standard_normal((40, 3)), rng.standard_normal((300, 3))
    for chunk_nnz in (1, 37, 10**6):  # one row per chunk, uneven chunks, one chunk
        assert sum(c.shape[0] for _, _, c in disk.row_chunks(chunk_nnz)) == 300
        np.testing.assert_allclose(disk.matmul(x, chunk_nnz), a @ x, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(disk.rmatmul(h, chunk_nnz), a.T @ h, rtol=1e-12, atol=1e-12)
    with pytest.raises(FileNotFoundError, match="not a DiskCSR folder"):
        DiskCSR(tmp_path)


@pytest.mark.parametrize("T, alpha", [(8, 1.3), (1000, 3.0)])  # 3^1001 overflowed the normalising constant
def test_chunked_operator_equals_the_in_memory_one(tmp_path, T, alpha):
    graph = _graph()
    disk = DiskAttributedGraph.save(graph, tmp_path / "g")
    mem = _prepare(graph, 3, T, alpha, "cpu")
    chunked = ChunkedSmoothedRepresentation(disk, T, alpha, chunk_nnz=500)
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(mem.d, 4, generator=gen, dtype=torch.float64)
    h = torch.randn(mem.n, 4, generator=gen, dtype=torch.float64)
    assert torch.isfinite(chunked.matmat(g)).all() and torch.isfinite(chunked.rmatmat(h)).all()
    torch.testing.assert_close(chunked.matmat(g), mem.matmat(g), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(chunked.rmatmat(h), mem.rmatmat(h), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls", [S2CAG, MS2CAG])
def test_estimators_give_the_in_memory_result(tmp_path, cls):
    graph = _graph(seed=1)
    disk = DiskAttributedGraph.save(graph, tmp_path / "g")
    mem = cls(n_clusters=3, random_state=0).fit(graph)
    out = cls(n_clusters=3, random_state=0).fit(disk)
    assert out.solver_ == "implicit"
    assert np.max(subspace_angles(mem.embedding_, out.embedding_)) < 1e-8
    np.testing.assert_array_equal(mem.labels_, out.labels_)


def test_bad_input(tmp_path):
    adj, feats = _graph()
    with pytest.raises(ValueError, match="non-negative"):
        DiskAttributedGraph.save((adj, -feats), tmp_path / "neg")
    disk = DiskAttributedGraph.save((adj, feats), tmp_path / "g")
    for kwargs in ({"solver": "exact"}, {"dtype": "float32"}):
        with pytest.raises(ValueError, match="on-disk graph"):
            S2CAG(n_clusters=3, **kwargs).fit(disk)
    with pytest.raises(ValueError, match="n_clusters"):
        S2CAG(n_clusters=501).fit(disk)
    data = tmp_path / "g" / "adjacency" / "data.npy"
    data.write_bytes(data.read_bytes()[:-8])  # a truncated copy fails loudly, not with garbage
    with pytest.raises(OSError, match="truncated"):
        S2CAG(n_clusters=3).fit(DiskAttributedGraph(tmp_path / "g"))
    DiskCSR.save(feats[:10], tmp_path / "g" / "features")
    with pytest.raises(ValueError, match="rows"):
        DiskAttributedGraph(tmp_path / "g")
