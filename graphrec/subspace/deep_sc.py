"""Self-expressive subspace clustering: the closed-form least-squares representation (LSR) and the
label-independent, hyperparameter-free deep subspace clustering of Sindičić & Kopriva (LIHFSS-SVDSC).

Self-expression writes every sample (a column of ``X`` ``(d, n)``) as a combination of the others,
``X ~ X C`` with ``diag(C) = 0``. For data drawn from a union of independent subspaces the
least-squares solution is block diagonal (Lu et al., "Robust and efficient subspace segmentation via
least squares regression", ECCV 2012), so ``A = |C| + |C|^T`` is an affinity for spectral clustering.
With ``P = (X^T X + lam I)^{-1}`` the minimiser of ``||X - X C||_F^2 + lam ||C||_F^2`` subject to
``diag(C) = 0`` is ``C = -P diag(P)^{-1}`` with its diagonal set to zero (Lu et al., Eq. 14).

The deep model (Sindičić & Kopriva, "Label-independent hyperparameter-free self-supervised
single-view deep subspace clustering", arXiv 2504.18179) trains an autoencoder and one joint ``C``
for the representations ``H_l`` of all encoder layers in a sequence of stages, each regulariser in its
own stage instead of a tuned weighted sum, and each stage stops by itself when the relative change of
its loss falls below ``tol``:

1. pre-training: reconstruction ``||X - g(f(X))||^2``;
2. layer-wise self-expression ``sum_l ||H_l - H_l C||_F^2 + lam ||C||_F^2`` (+ reconstruction),
   alternating the closed-form ``C`` (on layers scaled to equal energy) with network updates;
3. the subspace-structured norm ``||C||_Q = sum_ij |C_ij| 1[q_i != q_j]`` (S3C, Li & Vidal 2015;
   ``1/2 ||q_i - q_j||^2`` for one-hot memberships ``q``), minimised by ``10 * patience`` proximal
   gradient steps per round and alternated with spectral re-clustering until the fraction of
   re-assigned samples (after Hungarian matching) is below ``tol``.

The notes reconstruct the stage schedule from the abstract ([recon]); the weights here are fixed by
scaling (every layer to unit mean squared column norm) rather than tuned.
Post-processing keeps the ``k_keep`` largest ``|C_ij|`` of every column before ``A = |C| + |C|^T``.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import lobpcg
from sklearn.base import ClusterMixin
from sklearn.cluster import KMeans
from torch import nn

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.core._checks import as_tensor
from graphrec.metrics import clustering_accuracy
from graphrec.utils.progress import progress
from graphrec.utils.validation import (
    check_array,
    check_device,
    check_float,
    check_int,
    check_random_state,
)

__all__ = [
    "DeepSubspaceClustering",
    "LSRSubspaceClustering",
    "RelativeErrorStopper",
    "affinity_spectral_clustering",
    "keep_topk_per_column",
    "layerwise_self_expression_loss",
    "lsr_coefficients",
    "structured_l1",
]

logger = logging.getLogger(__name__)

#: affinities up to this many samples get a dense eigensolver in :func:`affinity_spectral_clustering`
_DENSE_EIGH_MAX = 5000


class RelativeErrorStopper:
    """Stop a stage when ``|L_t - L_{t-1}| / |L_{t-1}| < tol`` for ``patience`` steps in a row.

    >>> stop = RelativeErrorStopper(tol=0.01, patience=2)
    >>> [stop.step(v) for v in (10.0, 5.0, 4.99, 4.985)]
    [False, False, False, True]
    """

    def __init__(self, tol: float = 1e-3, patience: int = 1) -> None:
        self.tol = check_float(tol, "tol", low=0.0)
        self.patience = check_int(patience, "patience", low=1)
        self.previous: float | None = None
        self.wait = 0

    def step(self, loss: float) -> bool:
        """Record one loss value; ``True`` once the stopping rule is met."""
        loss = float(loss)
        if not math.isfinite(loss):
            raise ValueError(f"the loss became {loss}; lower the learning rate")
        if self.previous is not None:
            change = abs(loss - self.previous) / max(abs(self.previous), 1e-300)
            self.wait = self.wait + 1 if change < self.tol else 0
        self.previous = loss
        return self.wait >= self.patience


def lsr_coefficients(X: Any, lam: float = 1.0, *, zero_diagonal: bool = True) -> torch.Tensor:
    """Least-squares self-expression ``C`` ``(n, n)`` of the rows of ``X`` ``(n, d)``.

    Minimises ``||X^T - X^T C||_F^2 + lam ||C||_F^2`` (samples are the columns of ``X^T``), with
    ``diag(C) = 0`` when ``zero_diagonal`` (closed form ``C = -P diag(P)^{-1}``, ``P = (X X^T + lam I)^{-1}``),
    else ``C = (X X^T + lam I)^{-1} X X^T``.

    >>> X = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    >>> C = lsr_coefficients(X, 1e-9)
    >>> [abs(round(float(v), 4)) for v in C[:, 0]]  # sample 0 = 0.5 * sample 1
    [0.0, 0.5, 0.0]
    """
    x = as_tensor(X, "X", ndim=2)
    lam = check_float(lam, "lam", low=0.0, low_open=True)
    gram = x @ x.T
    eye = torch.eye(gram.shape[0], dtype=x.dtype, device=x.device)
    if not zero_diagonal:
        return torch.linalg.solve(gram + lam * eye, gram)
    p = torch.linalg.inv(gram + lam * eye)
    c = -p / torch.diagonal(p).unsqueeze(0)
    return c.fill_diagonal_(0.0)


def keep_topk_per_column(C: Any, k: int) -> torch.Tensor:
    """Keep the ``k`` entries of largest magnitude in every column of ``C`` ``(n, n)``, zero the rest.

    >>> keep_topk_per_column(torch.tensor([[1.0, -5.0], [-3.0, 2.0], [2.0, 0.0]]), 1)
    tensor([[ 0., -5.],
            [-3.,  0.],
            [ 0.,  0.]])
    """
    c = as_tensor(C, "C", ndim=2)
    k = check_int(k, "k", low=1)
    k = min(k, c.shape[0])
    idx = c.abs().topk(k, dim=0).indices
    return torch.zeros_like(c).scatter_(0, idx, c.gather(0, idx))


def layerwise_self_expression_loss(Hs: Sequence[torch.Tensor], C: torch.Tensor) -> torch.Tensor:
    """``sum_l ||H_l - C^T H_l||_F^2 / ||H_l||_F^2`` for row-sample representations ``H_l`` ``(n, d_l)``.

    (``C^T H_l`` is the row-sample form of ``H_l C`` for column samples.) Each layer is divided by its
    energy, so layers of any width and scale weigh the same.
    """
    if len(Hs) == 0:
        raise ValueError("Hs must hold at least one layer representation")
    total = C.new_zeros(())
    for h in Hs:
        if h.shape[0] != C.shape[0]:
            raise ValueError(f"every H_l must have {C.shape[0]} rows (samples), got shape {tuple(h.shape)}")
        total = total + (h - C.T @ h).pow(2).sum() / h.pow(2).sum().clamp_min(1e-12)
    return total


def structured_l1(C: Any, labels: Any) -> torch.Tensor:
    """Subspace-structured norm ``sum_ij |C_ij| 1[q_i != q_j]`` of S3C for cluster labels ``q`` ``(n,)``.

    >>> structured_l1(torch.tensor([[0.0, 2.0], [-3.0, 0.0]]), [0, 1])
    tensor(5.)
    """
    c = as_tensor(C, "C", ndim=2)
    q = torch.as_tensor(np.asarray(labels), device=c.device)
    if q.shape != (c.shape[0],):
        raise ValueError(f"labels must have shape ({c.shape[0]},), got {tuple(q.shape)}")
    return (c.abs() * (q[:, None] != q[None, :])).sum()


def affinity_spectral_clustering(affinity: Any, n_clusters: int, *, random_state: Any = None) -> np.ndarray:
    """Normalised spectral clustering (Ng, Jordan & Weiss 2001) of a symmetric non-negative affinity.

    The top ``n_clusters`` eigenvectors of ``D^{-1/2} A D^{-1/2}``, row-normalised, are clustered by
    k-means (``n_init=10``). ``affinity`` is a dense array/tensor or a scipy sparse matrix ``(n, n)``;
    returns int64 labels ``(n,)``.

    A self-expressive affinity of ``K`` well-separated subspaces has (nearly) ``K`` connected
    components, i.e. the eigenvalue 1 repeated ``K`` times. A single-vector Lanczos solver can miss
    copies of a repeated eigenvalue (it returned 6 of the 10 on the top-10 LSR graph of
    ``make_union_of_subspaces(500, 10, 30, 4, noise=0.01, random_state=0)``), so the eigenvectors
    come from a dense symmetric solver up to ``n = 5000`` and from a block solver (LOBPCG, seeded
    random block) above.
    """
    if sp.issparse(affinity):
        a = sp.csr_matrix(affinity, dtype=np.float64)
        if a.nnz and not np.all(np.isfinite(a.data)):
            raise ValueError("affinity contains NaN or infinite values")
    else:
        a = check_array(affinity, "affinity", ndim=2)
    n = a.shape[0]
    if a.shape != (n, n):
        raise ValueError(f"affinity must be square, got shape {a.shape}")
    n_clusters = check_int(n_clusters, "n_clusters", low=1, high=n)
    if (a.min() if not sp.issparse(a) else (a.data.min() if a.nnz else 0.0)) < 0:
        raise ValueError("affinity must be non-negative")
    if abs(a - a.T).max() > 1e-8 * max(abs(a).max(), 1e-300):
        raise ValueError("affinity must be symmetric")
    rng = check_random_state(random_state)
    deg = np.asarray(a.sum(1)).ravel()
    inv_sqrt = 1.0 / np.sqrt(np.where(deg > 0, deg, 1.0))
    if sp.issparse(a):
        lap = sp.diags(inv_sqrt) @ a @ sp.diags(inv_sqrt)
    else:
        lap = inv_sqrt[:, None] * a * inv_sqrt[None, :]
    if n <= _DENSE_EIGH_MAX or n_clusters >= n // 5:
        dense = lap.toarray() if sp.issparse(lap) else lap
        vecs = np.linalg.eigh(dense)[1][:, n - n_clusters:]
    else:
        block = rng.standard_normal((n, n_clusters))
        vecs = lobpcg(sp.csr_matrix(lap), block, largest=True, tol=1e-6, maxiter=500)[1]
    vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    km = KMeans(n_clusters=n_clusters, n_init=10, random_state=int(rng.integers(0, 2**31 - 1)))
    return km.fit_predict(vecs).astype(np.int64)


def _affinity(c: torch.Tensor, k_keep: int) -> sp.csr_matrix:
    kept = keep_topk_per_column(c, k_keep).abs().cpu().numpy()
    a = sp.csr_matrix(kept)
    return (a + a.T).tocsr()


def _check_samples(X: Any, n_clusters: int) -> np.ndarray:
    x = check_array(X, "X", ndim=2)
    if x.shape[1] == 0:
        raise ValueError("X must have at least one feature column")
    if x.shape[0] < max(n_clusters, 2):
        raise ValueError(f"X must have at least max(n_clusters, 2)={max(n_clusters, 2)} rows, got {x.shape[0]}")
    return x


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class LSRSubspaceClustering(ClusterMixin, GraphrecEstimator):
    """Closed-form least-squares representation + top-``k_keep`` per column + spectral clustering.

    The raw-feature linear subspace baseline (Lu et al., ECCV 2012); rows of ``X`` are scaled to unit
    norm first when ``normalize``.

    Parameters
    ----------
    n_clusters : int, default=8
    lam : float, default=1.0
        Ridge weight of ``||C||_F^2``.
    k_keep : int, default=10
        Coefficients kept per column before building the affinity.
    normalize : bool, default=True
    random_state, device, verbose : see :class:`DeepSubspaceClustering`.

    Attributes
    ----------
    coefficient_ : ndarray (n, n)
        Self-expression ``C`` (``diag(C) = 0``).
    affinity_ : scipy.sparse.csr_matrix (n, n)
    labels_ : ndarray (n,)

    Examples
    --------
    >>> from graphrec.datasets.generators import make_union_of_subspaces
    >>> X, y = make_union_of_subspaces(120, 3, 20, 2, random_state=0)
    >>> labels = LSRSubspaceClustering(n_clusters=3, lam=0.1, random_state=0).fit_predict(X)
    >>> from graphrec.metrics import clustering_accuracy
    >>> clustering_accuracy(y, labels)
    1.0
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        lam: float = 1.0,
        k_keep: int = 10,
        normalize: bool = True,
        random_state: Any = None,
        device: str = "cpu",
        verbose: bool = False,
    ) -> None:
        self.n_clusters = n_clusters
        self.lam = lam
        self.k_keep = k_keep
        self.normalize = normalize
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def fit(self, X: Any, y: None = None) -> "LSRSubspaceClustering":
        """Cluster the rows of ``X`` ``(n, d)``."""
        n_clusters = check_int(self.n_clusters, "n_clusters", low=1)
        k_keep = check_int(self.k_keep, "k_keep", low=1)
        lam = check_float(self.lam, "lam", low=0.0, low_open=True)
        x = _check_samples(X, n_clusters)
        if self.normalize:
            x = _unit_rows(x)
        dev = check_device(self.device)
        c = lsr_coefficients(torch.as_tensor(x, device=dev), lam)
        self.coefficient_ = c.cpu().numpy()
        self.affinity_ = _affinity(c, k_keep)
        self.labels_ = affinity_spectral_clustering(self.affinity_, n_clusters, random_state=self.random_state)
        return self


class _AutoEncoder(nn.Module):
    """Fully connected encoder (tanh after every layer but the last) and its mirrored decoder."""

    def __init__(self, dims: Sequence[int]) -> None:
        super().__init__()
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        rev = list(dims[::-1])
        self.decoder = nn.Sequential(*[m for a, b in zip(rev[:-1], rev[1:]) for m in (nn.Linear(a, b), nn.Tanh())][:-1])

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        hs, h = [], x
        for i, layer in enumerate(self.encoder):
            h = layer(h)
            if i < len(self.encoder) - 1:
                h = torch.tanh(h)
            hs.append(h)
        return hs, self.decoder(h)


class DeepSubspaceClustering(ClusterMixin, GraphrecEstimator):
    """Label-independent, hyperparameter-free deep subspace clustering (LIHFSS-SVDSC), staged.

    See the module docs for the three stages. Each stage runs full-batch Adam epochs until
    :class:`RelativeErrorStopper` (``tol``, ``patience``) fires or ``max_epochs`` is reached; the
    epochs each stage took are in ``stage_epochs_``.

    Parameters
    ----------
    n_clusters : int, default=8
    hidden_dims : sequence of int, default=(128, 32)
        Widths of the encoder layers; every layer's output enters the self-expression.
    k_keep : int, default=10
        Coefficients kept per column of ``C`` before ``A = |C| + |C|^T``.
    lam : float, default=1.0
        Ridge weight of ``||C||_F^2`` relative to the (unit mean squared norm) layer representations.
    structure_weight : float, default=1.0
        Weight ``mu`` of the structured norm ``mu ||C||_Q`` in stage 3 (soft-threshold ``step * mu`` on
        the coefficients that join different clusters).
    tol : float, default=1e-3
        Relative loss change that ends a stage.
    patience : int, default=3
    max_epochs : int, default=100
        Cap on the epochs of each stage.
    n_rounds : int, default=2
        Cap on the self-expression / re-clustering rounds of stages 2 and 3 (each also stops by ``tol``).
    lr : float, default=1e-3
    normalize : bool, default=True
        Scale the rows of ``X`` to unit norm first.
    random_state : int, Generator or None
    device : str, default="cpu"
    verbose : bool, default=False

    Attributes
    ----------
    coefficient_ : ndarray (n, n)
        Final self-expression ``C`` (``diag(C) = 0``).
    affinity_ : scipy.sparse.csr_matrix (n, n)
    labels_ : ndarray (n,)
    stage_epochs_ : dict str -> int
        Epochs (stage 1) or rounds (stages 2, 3) each stage ran.
    loss_history_ : dict str -> list of float

    Examples
    --------
    >>> from graphrec.datasets.generators import make_union_of_subspaces
    >>> X, y = make_union_of_subspaces(120, 3, 20, 2, random_state=0)
    >>> est = DeepSubspaceClustering(n_clusters=3, max_epochs=50, random_state=0).fit(X)
    >>> est.labels_.shape
    (120,)
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        hidden_dims: Sequence[int] = (128, 32),
        k_keep: int = 10,
        lam: float = 1.0,
        structure_weight: float = 1.0,
        tol: float = 1e-3,
        patience: int = 3,
        max_epochs: int = 100,
        n_rounds: int = 2,
        lr: float = 1e-3,
        normalize: bool = True,
        random_state: Any = None,
        device: str = "cpu",
        verbose: bool = False,
    ) -> None:
        self.n_clusters = n_clusters
        self.hidden_dims = hidden_dims
        self.k_keep = k_keep
        self.lam = lam
        self.structure_weight = structure_weight
        self.tol = tol
        self.patience = patience
        self.max_epochs = max_epochs
        self.n_rounds = n_rounds
        self.lr = lr
        self.normalize = normalize
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _validate(self) -> None:
        check_int(self.n_clusters, "n_clusters", low=1)
        check_int(self.k_keep, "k_keep", low=1)
        check_float(self.lam, "lam", low=0.0, low_open=True)
        check_float(self.structure_weight, "structure_weight", low=0.0)
        check_float(self.tol, "tol", low=0.0)
        check_int(self.patience, "patience", low=1)
        check_int(self.max_epochs, "max_epochs", low=1)
        check_int(self.n_rounds, "n_rounds", low=1)
        check_float(self.lr, "lr", low=0.0, low_open=True)
        dims = list(self.hidden_dims) if isinstance(self.hidden_dims, (list, tuple)) else None
        if not dims:
            raise ValueError(f"hidden_dims must be a non-empty sequence of positive ints, got {self.hidden_dims!r}")
        for i, w in enumerate(dims):
            check_int(w, f"hidden_dims[{i}]", low=1)

    def _layer_features(self, hs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Layers scaled to unit mean squared row norm, side by side ``(n, sum d_l)``."""
        n = hs[0].shape[0]
        return torch.cat([h * math.sqrt(n) / h.norm().clamp_min(1e-12) for h in hs], dim=1)

    def _train(self, model: nn.Module, opt: torch.optim.Optimizer, loss_fn, name: str) -> int:
        stopper = RelativeErrorStopper(self.tol, self.patience)
        history = self.loss_history_.setdefault(name, [])
        bar = progress(range(self.max_epochs), verbose=self.verbose, desc=name)
        for epoch in bar:
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            opt.step()
            history.append(float(loss.detach()))
            if stopper.step(history[-1]):
                return epoch + 1
        logger.info("stage %s reached max_epochs=%d before the relative-error stop", name, self.max_epochs)
        return self.max_epochs

    def fit(self, X: Any, y: None = None) -> "DeepSubspaceClustering":
        """Cluster the rows of ``X`` ``(n, d)``."""
        self._validate()
        x_np = _check_samples(X, self.n_clusters)
        if self.normalize:
            x_np = _unit_rows(x_np)
        dev = check_device(self.device)
        rng = check_random_state(self.random_state)
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
        x = torch.as_tensor(x_np, dtype=torch.float32, device=dev)
        with torch.random.fork_rng(devices=[]):  # nn.Linear's default init draws from the global RNG
            model = _AutoEncoder([x.shape[1], *[int(w) for w in self.hidden_dims]])
        with torch.no_grad():
            for p in model.parameters():  # seeded init that does not touch the global RNG
                p.copy_(torch.randn(p.shape, generator=gen) * (1.0 / math.sqrt(p.shape[-1])) if p.ndim > 1 else 0.0 * p)
        model = model.to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        self.loss_history_: dict[str, list[float]] = {}
        self.stage_epochs_: dict[str, int] = {}

        def reconstruction() -> torch.Tensor:
            return (model(x)[1] - x).pow(2).sum() / x.pow(2).sum()

        # Stage 1: pre-train the autoencoder.
        self.stage_epochs_["pretrain"] = self._train(model, opt, reconstruction, "pretrain")

        # Stage 2: closed-form joint C on all layers, alternated with network updates.
        def self_expression_c() -> torch.Tensor:
            with torch.no_grad():
                feats = self._layer_features(model(x)[0]).double()
            return lsr_coefficients(feats, self.lam * len(self.hidden_dims)).float()

        c = self_expression_c()
        stopper = RelativeErrorStopper(self.tol, 1)
        rounds = 0
        for rounds in range(1, self.n_rounds + 1):
            def stage2_loss(c: torch.Tensor = c) -> torch.Tensor:
                hs, rec = model(x)
                return layerwise_self_expression_loss(hs, c) + (rec - x).pow(2).sum() / x.pow(2).sum()

            self._train(model, opt, stage2_loss, "self_expression")
            c = self_expression_c()
            with torch.no_grad():
                value = float(stage2_loss(c))
            if stopper.step(value):
                break
        self.stage_epochs_["self_expression"] = rounds

        # Stage 3: subspace-structured norm by proximal gradient, alternated with re-clustering.
        with torch.no_grad():
            feats = self._layer_features(model(x)[0])
        labels = affinity_spectral_clustering(_affinity(c, self.k_keep), self.n_clusters, random_state=rng)
        lam = self.lam * len(self.hidden_dims)
        step = 1.0 / (2 * (torch.linalg.matrix_norm(feats, ord=2).pow(2) + lam))
        mu = float(self.structure_weight)  # weight of ||C||_Q against the unit-scaled self-expression
        rounds = 0
        for rounds in range(1, self.n_rounds + 1):
            q = torch.as_tensor(labels, device=dev)
            mask = (q[:, None] != q[None, :]).to(c.dtype)
            for _ in range(self.patience * 10):
                grad = 2 * (feats @ (feats.T @ c) - feats @ feats.T) + 2 * lam * c
                c = c - step * grad
                c = torch.sign(c) * (c.abs() - step * mu * mask).clamp_min(0.0)
                c.fill_diagonal_(0.0)
            new = affinity_spectral_clustering(_affinity(c, self.k_keep), self.n_clusters, random_state=rng)
            changed = 1.0 - clustering_accuracy(labels, new)
            labels = new
            self.loss_history_.setdefault("structured", []).append(changed)
            if changed < self.tol:
                break
        self.stage_epochs_["structured"] = rounds

        self.coefficient_ = c.double().cpu().numpy()
        self.affinity_ = _affinity(c, self.k_keep)
        self.labels_ = labels
        return self


def _subspace_points(seed: int) -> tuple:
    from graphrec.datasets.generators import make_union_of_subspaces

    return (make_union_of_subspaces(60, 3, 10, 2, noise=0.01, random_state=seed)[0],)


def _bad_points() -> dict:
    nan = np.ones((20, 4))
    nan[0, 0] = np.nan
    return {
        "nan": lambda: (nan,),
        "1-d": lambda: (np.ones(10),),
        "too few rows": lambda: (np.ones((2, 4)),),
        "no features": lambda: (np.ones((20, 0)),),
        "strings": lambda: (np.array([["a", "b"]] * 10),),
    }


register_estimator(
    "LSRSubspaceClustering",
    EstimatorSpec(
        factory=lambda: LSRSubspaceClustering(n_clusters=3, k_keep=5, random_state=0),
        make_input=_subspace_points,
        output=lambda est, args: est.labels_,
        bad_inputs=_bad_points(),
    ),
)
register_estimator(
    "DeepSubspaceClustering",
    EstimatorSpec(
        factory=lambda: DeepSubspaceClustering(n_clusters=3, hidden_dims=(16, 8), k_keep=5, max_epochs=5, random_state=0),
        make_input=_subspace_points,
        output=lambda est, args: est.coefficient_,
        bad_inputs=_bad_points(),
    ),
)
