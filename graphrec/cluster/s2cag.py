"""S2CAG and M-S2CAG: linear-time spectral subspace clustering of attributed graphs.

Pipeline (official code HKBU-LAGAS/S2CAG, read line by line; see ``shared/papers/s2cag.md``):

1. Propagation operator, doubly self-looped and row-stochastic:
   ``A_sym = D1^{-1/2} (A + I) D1^{-1/2}``, ``P = diag((A_sym + I) 1)^{-1} (A_sym + I)``.
2. Attributes: TF-IDF (scikit-learn defaults, rows L2-normalised), then attribute-degree
   normalisation ``X_hat = diag(delta)^{-1/2} X`` with ``delta = X (X^T 1)`` (zero -> 1), so that
   ``X_hat X_hat^T`` is a normalised affinity of spectral radius 1.
   Real-valued features (any negative entry) skip TF-IDF (meaningless for them): rows are
   L2-normalised and a constant column is appended, ``X <- [X_rownorm, 1] / sqrt(2)``, so that
   ``X X^T = (1 + cos) / 2`` is the cosine affinity shifted into [0, 1]; ``delta`` is then
   non-negative and the same degree normalisation applies (no NaN, spectral radius 1).
3. Normalised smoothed representation (NSR)
   ``Z = c * sum_{t=0..T} alpha^t P^t X_hat``, ``c = (1 - alpha) / (1 - alpha^{T+1})``
   (``1 / (T+1)`` at ``alpha = 1``), evaluated by Horner's rule ``R <- alpha P R + X_hat``.
   One polynomial for every solver: the official code's materialised path uses a slightly
   different one, here the solver choice never changes the model.
4. S2CAG: top ``k+1`` left singular vectors of ``Z`` by a randomised SVD with ``tau`` power
   iterations, re-orthonormalised at every half-step (the official code is not, and collapses to
   chance accuracy for ``tau >= 30``); the first (trivial) vector is dropped.
   M-S2CAG: rows rescaled ``Z <- diag(sqrt(max(Z 1, 0))) Z``, then the ``k`` leading eigenvectors
   of the modularity matrix ``B = Z Z^T - gamma d d^T / (1^T d)``, ``d = Z (Z^T 1)``, by orthogonal
   iteration with QR on a block of ``k + p`` columns followed by a Rayleigh-Ritz step keeping the
   ``k`` algebraically largest Ritz pairs; ``Z Z^T`` is never formed. ``B`` is a PSD matrix minus
   a rank-one PSD term, so it has at most one negative eigenvalue (Weyl interlacing): with
   ``p >= 1`` the block converges to a space holding the top-``k`` algebraic eigenvectors, which
   the official code (block ``k``, largest magnitude, no oversampling) does not guarantee, and
   the extra columns speed convergence up to ``(lambda_{k+p+1} / lambda_k)^tau``.
5. SNEM rounding of the ``n x k`` embedding (:func:`graphrec.cluster.snem.snem_rounding`), or
   k-means on it (``assign_labels="kmeans"``, as scikit-learn's ``SpectralClustering``). SNEM
   starts from the argmax of the embedding, so its result depends on the signs of the columns
   (fixed as scikit-learn's ``svd_flip`` does, as the official code does); where singular values
   are nearly tied (Citeseer), the columns themselves vary with the seed and so does SNEM's
   result. k-means depends only on the subspace.

``Z`` is applied implicitly (``T`` sparse products inside every product with ``Z``; sparse
attributes stay sparse end to end) or materialised once as a dense ``n x d`` array, whichever the
official cost rule says is cheaper (:func:`choose_solver`); ``solver="exact"`` uses a dense SVD /
eigendecomposition, for small graphs and tests.

Reference: X. Lin, R. Yang, H. Zheng, X. Ke, "Spectral Subspace Clustering for Attributed Graphs",
KDD 2025 (arXiv 2411.11074).
"""
from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import ClusterMixin
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.preprocessing import normalize

from graphrec.base import GraphrecEstimator
from graphrec.cluster.snem import snem_rounding
from graphrec.core import SparseOperator, randomized_svd
from graphrec.datasets.graph import as_attributed_graph
from graphrec.utils.validation import (
    check_choice,
    check_device,
    check_random_state,
    check_float,
    check_int,
    torch_generator,
)

logger = logging.getLogger(__name__)

SOLVERS = ("auto", "implicit", "materialize", "exact")
ASSIGN_LABELS = ("snem", "kmeans")

# Official per-dataset hyper-parameters (run.sh of HKBU-LAGAS/S2CAG; Cora from PyAGC's configs,
# it is not in run.sh). ``n_clusters`` is the number of ground-truth classes.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "acm": {
        "S2CAG": dict(n_clusters=3, T=15, alpha=0.8, tau=7),
        "MS2CAG": dict(n_clusters=3, T=15, alpha=0.8, gamma=1.0, tau=50),
    },
    "dblp": {
        "S2CAG": dict(n_clusters=4, T=10, alpha=0.9, tau=7),
        "MS2CAG": dict(n_clusters=4, T=10, alpha=0.9, gamma=1.0, tau=50),
    },
    "wiki": {
        "S2CAG": dict(n_clusters=17, T=6, alpha=1.7, tau=7),
        "MS2CAG": dict(n_clusters=17, T=12, alpha=1.7, gamma=0.9, tau=50),
    },
    "pubmed": {
        "S2CAG": dict(n_clusters=3, T=175, alpha=1.8, tau=7),
        "MS2CAG": dict(n_clusters=3, T=175, alpha=1.8, gamma=1.0, tau=50),
    },
    "arxiv": {
        "S2CAG": dict(n_clusters=40, T=30, alpha=1.4, tau=4),
        "MS2CAG": dict(n_clusters=40, T=30, alpha=2.5, gamma=1.0, tau=50),
    },
    "corafull": {
        "S2CAG": dict(n_clusters=70, T=20, alpha=0.9, tau=7),
        "MS2CAG": dict(n_clusters=70, T=7, alpha=1.4, gamma=1.0, tau=100),
    },
    "citeseer": {
        "S2CAG": dict(n_clusters=6, T=60, alpha=0.8, tau=7),
        "MS2CAG": dict(n_clusters=6, T=40, alpha=0.8, gamma=0.9, tau=100),
    },
    "photo": {
        "S2CAG": dict(n_clusters=8, T=9, alpha=1.5, tau=7),
        "MS2CAG": dict(n_clusters=8, T=9, alpha=1.5, gamma=1.0, tau=50),
    },
    "cora": {
        "S2CAG": dict(n_clusters=7, T=20, alpha=0.9, tau=7),
        "MS2CAG": dict(n_clusters=7, T=16, alpha=1.2, gamma=1.0, tau=100),
    },
}


# --------------------------------------------------------------------------------------------
# Pre-processing
# --------------------------------------------------------------------------------------------
def propagation_matrix(adjacency: sp.spmatrix) -> sp.csr_matrix:
    """The doubly self-looped row-stochastic operator ``P`` (step 1 of the module docs).

    Parameters
    ----------
    adjacency : sparse matrix, shape (n, n)
        Symmetric, non-negative; existing self-loops are kept (and ``I`` is still added).

    Returns
    -------
    P : csr_matrix, shape (n, n), rows summing to 1; not symmetric in general.
    """
    a = sp.csr_matrix(adjacency, dtype=np.float64) + sp.identity(adjacency.shape[0], format="csr")
    inv_sqrt = np.asarray(a.sum(axis=1)).ravel() ** -0.5  # >= 1 after adding I
    a_sym = sp.diags(inv_sqrt) @ a @ sp.diags(inv_sqrt) + sp.identity(a.shape[0], format="csr")
    p = sp.diags(1.0 / np.asarray(a_sym.sum(axis=1)).ravel()) @ a_sym
    p = sp.csr_matrix(p)
    p.sort_indices()
    return p


def normalize_attributes(features: np.ndarray | sp.spmatrix) -> np.ndarray | sp.csr_matrix:
    """``X_hat``: TF-IDF plus attribute-degree normalisation (step 2 of the module docs).

    Parameters
    ----------
    features : ndarray or sparse matrix, shape (n, d)
        Finite. Non-negative features take the official TF-IDF path; features with any negative
        entry take the real-valued path (no TF-IDF, shifted cosine affinity, one extra
        column). Sparse stays sparse.

    Returns
    -------
    X_hat : same kind as ``features``, shape (n, d) (``(n, d + 1)`` on the real-valued path), float64.
    """
    sparse = sp.issparse(features)
    x = sp.csr_matrix(features, dtype=np.float64) if sparse else np.asarray(features, dtype=np.float64)
    negative = (x.data.min() if sparse and x.nnz else x.min()) < 0 if x.size else False
    if negative:
        x = normalize(x, norm="l2", axis=1)
        ones = np.ones((x.shape[0], 1))
        x = (sp.hstack([x, ones], format="csr") if sparse else np.hstack([x, ones])) / np.sqrt(2.0)
    else:
        x = TfidfTransformer().fit_transform(x)
        x = x if sparse else x.toarray()
    delta = np.asarray(x @ np.asarray(x.sum(axis=0)).ravel()).ravel()
    delta[delta <= 0] = 1.0
    scale = delta**-0.5
    return sp.csr_matrix(sp.diags(scale) @ x) if sparse else x * scale[:, None]


# --------------------------------------------------------------------------------------------
# The NSR operator Z, implicit or materialised
# --------------------------------------------------------------------------------------------
def _nsr_constant(T: int, alpha: float) -> float:
    """``c = (1 - alpha) / (1 - alpha^{T+1})`` (``1 / (T+1)`` at ``alpha = 1``), without overflow for large ``alpha^T``."""
    if alpha == 1.0:
        return 1.0 / (T + 1)
    if alpha < 1.0:
        return (1.0 - alpha) / (1.0 - alpha ** (T + 1))
    inv = alpha ** -T   # underflows to 0 harmlessly; alpha ** (T + 1) could overflow
    return (alpha - 1.0) * inv / (alpha - inv)


def _horner_overflows(T: int, alpha: float, dtype: torch.dtype) -> bool:
    """Whether Horner's ``r <- alpha P r + h``, whose iterates grow like ``alpha^T``, leaves ``dtype``'s range.

    A margin of a quarter of the exponent range covers the size of ``h`` and of ``P^T``'s powers.
    """
    return alpha > 1.0 and T * math.log(alpha) > 0.75 * math.log(torch.finfo(dtype).max)


def _scaled_poly(matmul: Any, h: Any, T: int, alpha: float, copy: Any) -> Any:
    """``c * sum_{t=0..T} alpha^t M^t h`` for ``alpha > 1`` in the scaled form that never overflows.

    With ``s_0 = h``, ``s_k = M s_{k-1} + alpha^{-k} h`` one gets ``s_T = alpha^{-T} sum_t alpha^t M^t h``
    (the iterates stay of the size of ``h``), and ``c alpha^T = (alpha - 1) / (alpha - alpha^{-T})``.
    """
    s = copy(h)
    for k in range(1, T + 1):
        s = matmul(s) + alpha ** -k * h
    return s * ((alpha - 1.0) / (alpha - alpha ** -T))


class SmoothedRepresentation:
    """The NSR ``Z = c * sum_{t=0..T} alpha^t P^t X_hat`` (n x d) as an operator, optionally row-scaled.

    Parameters
    ----------
    p : csr_matrix, shape (n, n)
        Propagation operator from :func:`propagation_matrix`.
    x_hat : ndarray or csr_matrix, shape (n, d)
        Normalised attributes from :func:`normalize_attributes`.
    T : int
        Polynomial order (propagation steps).
    alpha : float
        Decay (> 0; values > 1 up-weight long-range propagation).
    device : torch.device
    row_scale : Tensor, shape (n,), optional
        ``w`` in ``diag(w) Z`` (M-S2CAG's rescaling).
    """

    #: whether :meth:`materialize` may form the dense ``Z`` (the out-of-core twin never does)
    can_materialize = True

    def __init__(
        self,
        p: sp.csr_matrix,
        x_hat: Any,
        T: int,
        alpha: float,
        device: torch.device,
        row_scale: torch.Tensor | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        self.n, self.d = x_hat.shape
        self.T, self.alpha, self.device, self.row_scale, self.dtype = T, alpha, device, row_scale, dtype
        self.c = _nsr_constant(T, alpha)
        self.nnz_p = p.nnz
        self.nnz_x = x_hat.nnz if sp.issparse(x_hat) else self.n * self.d
        np_dtype = np.float32 if dtype == torch.float32 else np.float64
        p = p.astype(np_dtype)
        self._p, self._pt = SparseOperator(p, device), SparseOperator(p.T.tocsr(), device)
        if sp.issparse(x_hat):
            x_hat = x_hat.astype(np_dtype)
            self._x, self._xt = SparseOperator(x_hat, device), SparseOperator(x_hat.T.tocsr(), device)
        else:
            self._x = torch.as_tensor(x_hat, device=device, dtype=dtype)
            self._xt = self._x.T

    def with_row_scale(self, row_scale: torch.Tensor) -> "SmoothedRepresentation":
        """A shallow copy representing ``diag(row_scale) Z``."""
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.row_scale = row_scale
        return twin

    def _poly(self, op: SparseOperator, h: torch.Tensor) -> torch.Tensor:
        """``c * sum_t alpha^t op^t h`` by Horner's rule (scaled where ``alpha^T`` would overflow the dtype)."""
        if _horner_overflows(self.T, self.alpha, self.dtype):
            return _scaled_poly(lambda r: op @ r, h, self.T, self.alpha, torch.clone)
        return op.horner(h, self.alpha, self.T).mul_(self.c)

    def matmat(self, g: torch.Tensor) -> torch.Tensor:
        """``Z @ g`` for ``g`` of shape (d, r)."""
        out = self._poly(self._p, self._x @ g)
        return out if self.row_scale is None else self.row_scale[:, None] * out

    def rmatmat(self, h: torch.Tensor) -> torch.Tensor:
        """``Z^T @ h`` for ``h`` of shape (n, r)."""
        if self.row_scale is not None:
            h = self.row_scale[:, None] * h
        return self._xt @ self._poly(self._pt, h)

    def materialize(self) -> torch.Tensor:
        """``Z`` as a dense (n, d) tensor."""
        x = self._x.csr.toarray() if isinstance(self._x, SparseOperator) else self._x.cpu().numpy()
        z = self._poly(self._p, torch.from_numpy(np.ascontiguousarray(x)).to(self.device))
        return z if self.row_scale is None else self.row_scale[:, None] * z


def choose_solver(n: int, d: int, nnz_p: int, nnz_x: int, T: int, n_products: int, width: int) -> str:
    """The official cost rule: ``"materialize"`` if forming ``Z`` once is cheaper, else ``"implicit"``.

    Costs (flops up to a constant) for ``n_products`` products of ``Z`` (and ``Z^T``) with
    ``width`` columns: materialise ``nnz(P) d T + 2 n_products n d width``; implicit
    ``2 n_products (nnz(X_hat) + nnz(P) T) width``. With dense ``X_hat`` this is the official
    ``d < 2 (tau+1) (k+p)`` switch; sparse ``X_hat`` favours the implicit path further.
    """
    materialize = nnz_p * d * T + 2 * n_products * n * d * width
    implicit = 2 * n_products * (nnz_x + nnz_p * T) * width
    return "materialize" if materialize < implicit else "implicit"


def _fix_signs(u: torch.Tensor) -> torch.Tensor:
    """Flip columns so that the largest-magnitude entry of each is positive (sklearn's svd_flip)."""
    idx = u.abs().argmax(dim=0)
    signs = torch.sign(u[idx, torch.arange(u.shape[1], device=u.device)])
    signs[signs == 0] = 1
    return u * signs


def _prepare(graph: Any, n_clusters: int, T: int, alpha: float, device: Any,
             dtype: str = "float64", solver: str = "auto") -> Any:
    """Validate the graph against ``n_clusters`` and build its NSR operator in ``dtype``.

    A :class:`~graphrec.cluster.out_of_core.DiskAttributedGraph` gets the chunked out-of-core
    operator (CPU, float64, implicit solver only).
    """
    from graphrec.cluster.out_of_core import ChunkedSmoothedRepresentation, DiskAttributedGraph

    if isinstance(graph, DiskAttributedGraph):
        if check_device(device).type != "cpu" or dtype != "float64" or solver not in ("auto", "implicit"):
            raise ValueError(
                "an on-disk graph is clustered on the CPU in float64 with solver 'auto' or 'implicit'; got "
                f"device={device!r}, dtype={dtype!r}, solver={solver!r}"
            )
        if n_clusters > graph.n_nodes:
            raise ValueError(f"n_clusters={n_clusters} exceeds the number of nodes {graph.n_nodes}")
        return ChunkedSmoothedRepresentation(graph, T, alpha)
    g = as_attributed_graph(graph)
    dev = check_device(device)
    if n_clusters > g.n_nodes:
        raise ValueError(f"n_clusters={n_clusters} exceeds the number of nodes {g.n_nodes}")
    return SmoothedRepresentation(propagation_matrix(g.adjacency), normalize_attributes(g.features), T, alpha, dev,
                                  dtype=getattr(torch, dtype))


# --------------------------------------------------------------------------------------------
# Functional core
# --------------------------------------------------------------------------------------------
def s2cag_embedding(
    op: SmoothedRepresentation,
    n_clusters: int,
    *,
    tau: int = 7,
    oversample: int = 10,
    solver: str = "auto",
    random_state: Any = None,
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """S2CAG's spectral embedding: left singular vectors 2..k+1 of ``Z``.

    Parameters
    ----------
    op : SmoothedRepresentation
        ``Z`` of shape (n, d); needs ``n_clusters + 1 <= min(n, d)``.
    n_clusters : int
        ``k``.
    tau, oversample : int
        Power iterations and oversampling ``p`` of the randomised SVD (test matrix d x (k+1+p)).
    solver : {"auto", "implicit", "materialize", "exact"}
    random_state : int, Generator or None

    Returns
    -------
    embedding : Tensor, shape (n, k)
    singular_values : Tensor, shape (k,)   (the dropped trivial one excluded)
    solver : str, the solver actually used.
    """
    k1 = n_clusters + 1
    if k1 > min(op.n, op.d):
        raise ValueError(
            f"n_clusters={n_clusters} needs n_clusters + 1 <= min(n_nodes, n_features) = {min(op.n, op.d)}"
        )
    if solver == "auto":
        solver = "implicit" if not op.can_materialize else choose_solver(
            op.n, op.d, op.nnz_p, op.nnz_x, op.T, tau + 1, min(k1 + oversample, op.d))
    if solver == "exact":
        u, s, _ = torch.linalg.svd(op.materialize(), full_matrices=False)
        u, s = _fix_signs(u[:, :k1]), s[:k1]
    else:
        kwargs = dict(n_components=k1, oversample=oversample, n_iter=tau, random_state=random_state, device=op.device,
                      dtype=op.dtype)
        if solver == "materialize":
            u, s, _ = randomized_svd(op.materialize(), **kwargs)
        else:
            u, s, _ = randomized_svd(matmat=op.matmat, rmatmat=op.rmatmat, shape=(op.n, op.d), **kwargs)
    if not float(s[0]) > 0:
        raise ValueError(
            "S2CAG needs non-zero attributes, but the smoothed representation Z is zero (every feature row all-zero?)"
        )
    return u[:, 1:], s[1:], solver


def ms2cag_embedding(
    op: SmoothedRepresentation,
    n_clusters: int,
    *,
    gamma: float = 1.0,
    tau: int = 50,
    oversample: int = 3,
    solver: str = "auto",
    random_state: Any = None,
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """M-S2CAG's embedding: ``k`` leading eigenvectors of the modularity matrix of the rescaled ``Z``.

    Parameters
    ----------
    op : SmoothedRepresentation
        Un-scaled ``Z`` of shape (n, d); the row rescaling is applied here.
    n_clusters : int
        ``k`` (<= n).
    gamma : float
        Resolution of the null model ``gamma d d^T / (1^T d)``.
    tau : int
        Orthogonal iterations.
    oversample : int
        Extra columns ``p`` of the iterated block (width ``k + p``); must be >= 1 so that the
        block also holds ``B``'s single possible negative eigenvector (see the module docs).
    solver : {"auto", "implicit", "materialize", "exact"}
        ``"exact"`` forms the dense n x n matrix ``B`` (small graphs only).
    random_state : int, Generator or None
        Seeds the Gaussian starting block.

    Returns
    -------
    embedding : Tensor, shape (n, k), orthonormal Ritz vectors
    eigenvalues : Tensor, shape (k,), descending (Ritz values of ``B``)
    solver : str, the solver actually used.
    """
    if solver == "auto":
        solver = "implicit" if not op.can_materialize else choose_solver(
            op.n, op.d, op.nnz_p, op.nnz_x, op.T, tau, min(n_clusters + oversample, op.n))
    row_sum = op.matmat(torch.ones(op.d, 1, dtype=op.dtype, device=op.device))[:, 0]
    z = op.with_row_scale(row_sum.clamp(min=0).sqrt())
    if solver != "implicit":
        zm = z.materialize()
        matmat, rmatmat = (lambda g: zm @ g), (lambda h: zm.T @ h)
    else:
        matmat, rmatmat = z.matmat, z.rmatmat
    deg = matmat(rmatmat(torch.ones(op.n, 1, dtype=op.dtype, device=op.device)))  # (n, 1)
    total = float(deg.sum())
    if total <= 0:
        raise ValueError(
            "M-S2CAG needs a positive total affinity 1^T Z Z^T 1, but every row of the smoothed "
            "representation has a non-positive sum (features all <= 0?)"
        )

    def modularity(q: torch.Tensor) -> torch.Tensor:  # B q = Z (Z^T q) - gamma d (d^T q) / s
        return matmat(rmatmat(q)) - (gamma / total) * deg @ (deg.T @ q)

    if solver == "exact":
        b = zm @ zm.T - (gamma / total) * deg @ deg.T
        vals, vecs = torch.linalg.eigh(b)
        return _fix_signs(vecs[:, -n_clusters:].flip(1)), vals[-n_clusters:].flip(0), solver
    gen = torch_generator(random_state, "cpu")
    width = min(n_clusters + oversample, op.n)
    q, _ = torch.linalg.qr(torch.randn(op.n, width, generator=gen, dtype=op.dtype).to(op.device))
    for _ in range(tau):
        q, _ = torch.linalg.qr(modularity(q))
    vals, vecs = torch.linalg.eigh(q.T @ modularity(q))  # Rayleigh-Ritz, ascending
    vals, vecs = vals[-n_clusters:].flip(0), vecs[:, -n_clusters:].flip(1)
    return _fix_signs(q @ vecs), vals, solver


# --------------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------------
class _PresetMixin:
    @classmethod
    def from_preset(cls, name: str, **overrides: Any):
        """The estimator with the official hyper-parameters for dataset ``name`` (see ``PRESETS``).

        ``overrides`` (e.g. ``random_state=0``) replace or add parameters.
        """
        check_choice(name, "name", tuple(PRESETS))
        return cls(**{**PRESETS[name][cls.__name__], **overrides})


def _assign_labels(embedding: torch.Tensor, how: str, random_state: Any) -> np.ndarray:
    """Discrete labels of the rows of ``embedding`` (n, k): SNEM rounding or k-means (10 inits)."""
    if how == "snem":
        return snem_rounding(embedding).cpu().numpy()
    from sklearn.cluster import KMeans

    seed = int(check_random_state(random_state).integers(0, 2**31 - 1))
    return KMeans(embedding.shape[1], n_init=10, random_state=seed).fit_predict(embedding.cpu().numpy())


def _check_common(est: Any) -> None:
    check_int(est.n_clusters, "n_clusters", low=2)
    check_int(est.T, "T", low=0)
    check_float(est.alpha, "alpha", low=0.0, low_open=True)
    check_int(est.tau, "tau", low=0)
    check_choice(est.solver, "solver", SOLVERS)
    check_choice(est.assign_labels, "assign_labels", ASSIGN_LABELS)
    check_choice(est.dtype, "dtype", ("float32", "float64"))


class S2CAG(_PresetMixin, ClusterMixin, GraphrecEstimator):
    """Spectral subspace clustering of attributed graphs (S2CAG), see the module docs.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters ``k`` (>= 2, ``k + 1 <= min(n_nodes, n_features)``).
    T : int, default=10
        Propagation steps of the NSR.
    alpha : float, default=0.9
        Decay of the NSR polynomial (> 0).
    tau : int, default=7
        Power iterations of the randomised SVD.
    oversample : int, default=10
        Oversampling ``p`` of the randomised SVD.
    solver : {"auto", "implicit", "materialize", "exact"}, default="auto"
        How ``Z`` is applied; ``"auto"`` follows :func:`choose_solver`.
    assign_labels : {"snem", "kmeans"}, default="snem"
        Discretisation of the embedding: the official SNEM rounding, or k-means (10 inits).
    dtype : {"float64", "float32"}, default="float64"
        Precision of the propagation and the eigen-solver; float32 halves memory traffic (about
        1.9x faster propagation on large graphs) at about 1e-6 relative accuracy.
    random_state : int, Generator or None
        Seeds the SVD's Gaussian test matrix (and k-means).
    device : str, default="cpu"

    Attributes
    ----------
    labels_ : ndarray of shape (n_nodes,)
    embedding_ : ndarray of shape (n_nodes, n_clusters)
        Left singular vectors 2..k+1 of ``Z``.
    singular_values_ : ndarray of shape (n_clusters,)
    solver_ : str
        The solver used (what ``"auto"`` chose).

    Examples
    --------
    >>> from graphrec.cluster import S2CAG
    >>> from graphrec.datasets import make_attributed_sbm
    >>> g = make_attributed_sbm(n_nodes=300, n_clusters=3, random_state=0)
    >>> labels = S2CAG(n_clusters=3, random_state=0).fit_predict(g)
    """

    def __init__(self, n_clusters: int = 8, *, T: int = 10, alpha: float = 0.9, tau: int = 7, oversample: int = 10,
                 solver: str = "auto", assign_labels: str = "snem", dtype: str = "float64", random_state: Any = None,
                 device: str = "cpu") -> None:
        self.n_clusters = n_clusters
        self.T = T
        self.alpha = alpha
        self.tau = tau
        self.oversample = oversample
        self.solver = solver
        self.assign_labels = assign_labels
        self.dtype = dtype
        self.random_state = random_state
        self.device = device

    def fit(self, graph: Any, y: None = None) -> "S2CAG":
        """Cluster the nodes of ``graph`` (AttributedGraph, PyG ``Data`` or ``(adjacency, features)``)."""
        _check_common(self)
        check_int(self.oversample, "oversample", low=0)
        op = _prepare(graph, self.n_clusters, self.T, self.alpha, self.device, self.dtype, self.solver)
        emb, s, self.solver_ = s2cag_embedding(
            op, self.n_clusters, tau=self.tau, oversample=self.oversample, solver=self.solver,
            random_state=self.random_state,
        )
        logger.debug("S2CAG: solver %s, singular values %s", self.solver_, s.tolist())
        self.labels_ = _assign_labels(emb, self.assign_labels, self.random_state)
        self.embedding_ = emb.cpu().numpy()
        self.singular_values_ = s.cpu().numpy()
        return self


class MS2CAG(_PresetMixin, ClusterMixin, GraphrecEstimator):
    """Modularity-based S2CAG (M-S2CAG), see the module docs.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters ``k`` (2 <= k <= n_nodes).
    T : int, default=10
    alpha : float, default=0.9
    gamma : float, default=1.0
        Modularity resolution (>= 0).
    tau : int, default=50
        Orthogonal iterations.
    oversample : int, default=3
        Extra columns of the iterated block (>= 1). On the five shared graphs 1, 3 and 10 give the
        same labels (``benchmarks/results/s2cag_official*.json`` uses 3); each column costs two
        more propagations per iteration.
    solver : {"auto", "implicit", "materialize", "exact"}, default="auto"
    assign_labels : {"snem", "kmeans"}, default="snem"
        Discretisation of the embedding: the official SNEM rounding, or k-means (10 inits).
    dtype : {"float64", "float32"}, default="float64"
        Precision of the propagation and the eigen-solver; float32 halves memory traffic (about
        1.9x faster propagation on large graphs) at about 1e-6 relative accuracy.
    random_state : int, Generator or None
        Seeds the Gaussian starting block of the orthogonal iteration (and k-means).
    device : str, default="cpu"

    Attributes
    ----------
    labels_ : ndarray of shape (n_nodes,)
    embedding_ : ndarray of shape (n_nodes, n_clusters)
        Leading eigenvectors (Ritz vectors) of the modularity matrix.
    eigenvalues_ : ndarray of shape (n_clusters,)
    solver_ : str

    Examples
    --------
    >>> from graphrec.cluster import MS2CAG
    >>> from graphrec.datasets import make_attributed_sbm
    >>> g = make_attributed_sbm(n_nodes=300, n_clusters=3, random_state=0)
    >>> labels = MS2CAG(n_clusters=3, random_state=0).fit_predict(g)
    """

    def __init__(self, n_clusters: int = 8, *, T: int = 10, alpha: float = 0.9, gamma: float = 1.0, tau: int = 50,
                 oversample: int = 3, solver: str = "auto", assign_labels: str = "snem", dtype: str = "float64",
                 random_state: Any = None, device: str = "cpu") -> None:
        self.n_clusters = n_clusters
        self.T = T
        self.alpha = alpha
        self.gamma = gamma
        self.tau = tau
        self.oversample = oversample
        self.solver = solver
        self.assign_labels = assign_labels
        self.dtype = dtype
        self.random_state = random_state
        self.device = device

    def fit(self, graph: Any, y: None = None) -> "MS2CAG":
        """Cluster the nodes of ``graph`` (AttributedGraph, PyG ``Data`` or ``(adjacency, features)``)."""
        _check_common(self)
        check_float(self.gamma, "gamma", low=0.0)
        check_int(self.oversample, "oversample", low=1)
        op = _prepare(graph, self.n_clusters, self.T, self.alpha, self.device, self.dtype, self.solver)
        emb, vals, self.solver_ = ms2cag_embedding(
            op, self.n_clusters, gamma=self.gamma, tau=self.tau, oversample=self.oversample, solver=self.solver,
            random_state=self.random_state,
        )
        logger.debug("M-S2CAG: solver %s, eigenvalues %s", self.solver_, vals.tolist())
        self.labels_ = _assign_labels(emb, self.assign_labels, self.random_state)
        self.embedding_ = emb.cpu().numpy()
        self.eigenvalues_ = vals.cpu().numpy()
        return self
