"""``SPEEncoder``: SPE node positional encodings as features, scikit-learn style.

``SPEEncoder(...).fit_transform(graph)`` returns an ``(n_nodes, n_components)`` array: the output
of a randomly initialised (seeded) SPE network, ``rho(V diag(phi_l(lambda)) V^T)``, whose
BatchNorm statistics are fitted to the graph. Such untrained SPE features are still invariant to
the eigenvector basis, permutation-equivariant and stable under small graph edits (Huang et al.,
ICLR 2024, Theorem 3.1 holds for any Lipschitz ``phi`` and ``rho``), which makes them a
drop-in positional feature for downstream models (e.g. a linear classifier on node attributes
plus PEs). For a trained SPE, use :class:`graphrec.pe.SPE` inside a model
(:class:`graphrec.pe.GINERegressor`).

Fitting: (1) the ``n_eigs`` smallest eigenpairs of the graph's Laplacian (dense ``eigh``,
``O(n^3)``: graphs of up to a few thousand nodes); (2) a seeded SPE; (3) BatchNorm statistics
estimated in one training-mode pass over ``calibration_columns`` random columns of the
``n x n x m`` tensor. ``transform`` then runs in eval mode, ``column_chunk`` columns at a time
(the columns of ``rho`` are independent, so chunking is exact), in ``O(n * column_chunk * h)``
memory.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from sklearn.base import TransformerMixin

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.utils.progress import progress
from graphrec.utils.validation import check_adjacency, check_choice, check_device, check_int, check_random_state

__all__ = ["SPEEncoder"]

logger = logging.getLogger(__name__)


def _adjacency(graph: Any):
    """The adjacency of an ``AttributedGraph``, a PyG ``Data``, an ``(adjacency, features)`` tuple or a matrix.

    A ``Data`` is weighted by its ``edge_weight`` when it has one; a directed ``edge_index`` is
    symmetrised by the larger weight of both directions.
    """
    from graphrec.datasets.graph import AttributedGraph

    if isinstance(graph, AttributedGraph):
        return graph.adjacency
    if isinstance(graph, tuple):
        if len(graph) != 2:
            raise ValueError(f"graph tuple must be (adjacency, features), got {len(graph)} items")
        return check_adjacency(graph[0])
    if hasattr(graph, "edge_index") and hasattr(graph, "num_nodes"):
        import scipy.sparse as sp

        n = int(graph.num_nodes)
        ei = graph.edge_index.detach().cpu().numpy()
        if ei.size and (ei.min() < 0 or ei.max() >= n):
            raise ValueError(f"data.edge_index holds node ids outside [0, {n})")
        w = getattr(graph, "edge_weight", None)   # weighted as by AddSPEEigenpairs and AttributedGraph.from_pyg
        w = np.ones(ei.shape[1]) if w is None else w.detach().cpu().numpy().astype(np.float64).reshape(-1)
        if w.shape[0] != ei.shape[1]:
            raise ValueError(f"data.edge_weight has {w.shape[0]} entries for {ei.shape[1]} edges")
        a = sp.csr_matrix((w, (ei[0], ei[1])), shape=(n, n))
        return check_adjacency(a.maximum(a.T))
    if isinstance(graph, (str, bytes)) or not hasattr(graph, "shape"):
        raise TypeError(
            "graph must be an AttributedGraph, a torch_geometric Data, an (adjacency, features) tuple or an "
            f"adjacency matrix, got {type(graph).__name__}"
        )
    return check_adjacency(graph)


class SPEEncoder(TransformerMixin, GraphrecEstimator):
    """Node positional encodings from a seeded SPE network (Huang et al., ICLR 2024).

    Parameters
    ----------
    n_components : int
        PE width (``rho``'s output).
    n_eigs : int
        Eigenpairs ``d`` (the smallest, trivial one included; graphs with fewer nodes use all).
    normalization : {"sym", None}
        Laplacian: ``I - D^-1/2 A D^-1/2`` or ``D - A``.
    n_phis : int
        ``m``, eigenvalue functions (elementwise MLPs 1-16-16-1).
    rho_layers, rho_hidden : int
        GIN depth and width of ``rho``.
    calibration_columns : int
        Columns of the pair tensor used to fit BatchNorm statistics.
    column_chunk : int
        Columns processed at once by ``transform``.
    random_state : None, int or numpy Generator
        Seeds the network's weights and the calibration columns.
    device : str
        ``"cpu"``, ``"cuda"``, ``"auto"``.
    verbose : bool
        Progress bar over column chunks.

    Attributes
    ----------
    eigvals_ : ndarray, shape (n_eigs,)
        Eigenvalues of the fitted graph (0 beyond its size).
    module_ : graphrec.pe.SPE
        The network, in eval mode, on CPU.
    n_features_in_ : int
        Nodes of the fitted graph.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> ring = sp.diags([np.ones(9), np.ones(9), [1.0], [1.0]], [1, -1, 9, -9], shape=(10, 10)).tocsr()
    >>> pe = SPEEncoder(n_components=4, n_eigs=10, random_state=0).fit_transform(ring)
    >>> pe.shape, bool(np.allclose(pe, pe[0], atol=1e-4))   # every node of a ring looks the same
    ((10, 4), True)
    """

    def __init__(
        self,
        n_components: int = 16,
        *,
        n_eigs: int = 32,
        normalization: str | None = "sym",
        n_phis: int = 8,
        rho_layers: int = 3,
        rho_hidden: int = 32,
        calibration_columns: int = 256,
        column_chunk: int = 256,
        random_state: Any = None,
        device: str = "cpu",
        verbose: bool = False,
    ) -> None:
        self.n_components = n_components
        self.n_eigs = n_eigs
        self.normalization = normalization
        self.n_phis = n_phis
        self.rho_layers = rho_layers
        self.rho_hidden = rho_hidden
        self.calibration_columns = calibration_columns
        self.column_chunk = column_chunk
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _eigenpairs(self, graph: Any, dtype: torch.dtype):
        from graphrec.pe.eigen import laplacian_eigenpairs

        a = _adjacency(graph).tocoo()
        edge_index = torch.from_numpy(np.vstack([a.row, a.col]).astype(np.int64))
        weight = torch.from_numpy(a.data.astype(np.float64))
        lam, vecs, mask = laplacian_eigenpairs(edge_index, a.shape[0], self.n_eigs, normalization=self.normalization,
                                               edge_weight=weight, dtype=dtype)
        keep = edge_index[0] != edge_index[1]
        return lam, vecs, mask, edge_index[:, keep]

    def fit(self, graph: Any, y: Any = None) -> "SPEEncoder":
        """Eigenpairs of ``graph``, a seeded SPE, BatchNorm statistics fitted to the graph; returns ``self``."""
        from graphrec.pe.spe import SPE, ElementwisePhi, GINRho

        check_int(self.n_components, "n_components", low=1)
        check_int(self.n_eigs, "n_eigs", low=1)
        check_choice(self.normalization, "normalization", ("sym", None))
        check_int(self.n_phis, "n_phis", low=1)
        check_int(self.rho_layers, "rho_layers", low=1)
        check_int(self.rho_hidden, "rho_hidden", low=1)
        check_int(self.calibration_columns, "calibration_columns", low=2)
        check_int(self.column_chunk, "column_chunk", low=1)
        device = check_device(self.device)
        rng = check_random_state(self.random_state)
        lam, vecs, mask, edge_index = self._eigenpairs(graph, torch.float32)
        n = vecs.shape[0]
        if n < 2:
            raise ValueError(f"graph has {n} node(s); SPEEncoder needs at least 2 nodes")
        logger.info("SPEEncoder: %d nodes, %d eigenpairs (smallest %.4g, largest kept %.4g)", n, int(mask.sum()),
                    float(lam[0]), float(lam[mask][-1]))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(0, 2**63 - 1)))
            module = SPE(ElementwisePhi(self.n_phis, 16, 3),
                         GINRho(self.n_phis, self.rho_hidden, self.n_components, self.rho_layers, 3))
        module.to(device)
        columns = torch.from_numpy(np.sort(rng.permutation(n)[: self.calibration_columns])).to(device)
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.reset_running_stats()
                m.momentum = None  # cumulative average: one pass sets the statistics of that pass
        module.train()
        with torch.no_grad():
            module(lam[None].to(device), vecs.to(device), mask[None].to(device), edge_index.to(device), columns=columns)
        module.eval()
        self.module_ = module.cpu()
        self.eigvals_ = lam.numpy()
        self.n_features_in_ = n
        return self

    def transform(self, graph: Any) -> np.ndarray:
        """Node PEs of ``graph`` (the fitted one, or another) with the fitted network: (n_nodes, n_components)."""
        self._check_is_fitted()
        device = check_device(self.device)
        lam, vecs, mask, edge_index = self._eigenpairs(graph, torch.float32)
        n = vecs.shape[0]
        module = self.module_.to(device)
        args = (lam[None].to(device), vecs.to(device), mask[None].to(device), edge_index.to(device))
        out = torch.zeros(n, self.n_components, device=device)
        chunks = range(0, n, self.column_chunk)
        try:
            with torch.no_grad():
                for start in progress(chunks, verbose=self.verbose, desc="SPE columns", unit="chunk"):
                    cols = torch.arange(start, min(n, start + self.column_chunk), device=device)
                    out += module(*args, columns=cols)
        finally:
            self.module_ = module.cpu()
        return out.cpu().numpy().astype(np.float64)

    def fit_transform(self, graph: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """``fit(graph).transform(graph)``."""
        return self.fit(graph).transform(graph)


def _ring_graph(seed: int) -> tuple:
    from graphrec.datasets.generators import make_attributed_sbm

    return (make_attributed_sbm(n_nodes=60, n_clusters=3, random_state=seed),)


def _bad_inputs() -> dict:
    import scipy.sparse as sp

    ring = sp.diags([np.ones(9), np.ones(9)], [1, -1], shape=(10, 10)).tocsr()
    nan = ring.copy().astype(float)
    nan.data[0] = np.nan
    return {
        "not square": lambda: (sp.csr_matrix(np.ones((10, 9))),),
        "asymmetric": lambda: (sp.triu(ring).tocsr(),),
        "nan weights": lambda: (nan,),
        "empty graph": lambda: (sp.csr_matrix((0, 0)),),
        "one node": lambda: (sp.csr_matrix((1, 1)),),
        "wrong type": lambda: ("graph",),
    }


register_estimator(
    "SPEEncoder",
    EstimatorSpec(
        factory=lambda: SPEEncoder(n_components=4, n_eigs=8, rho_hidden=8, rho_layers=2, random_state=0),
        make_input=_ring_graph,
        output=lambda est, args: est.transform(*args),
        bad_inputs=_bad_inputs(),
        fitted_method="transform",
    ),
)
