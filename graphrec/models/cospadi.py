"""CoSpaDi: compress a linear layer into a dense dictionary times a column-sparse code matrix.

For a layer ``y = x W`` with ``W`` ``(m, n)`` (``m`` inputs, ``n`` outputs; ``W = linear.weight.T``)
and calibration inputs ``X`` ``(N, m)``, CoSpaDi solves

    min_{D, S} ||X W - X D S||_F^2   subject to   ||s_j||_0 <= s for every column j of S,

with a dense dictionary ``D`` ``(m, K)`` and a sparse ``S`` ``(K, n)``: every output column picks its
own ``s`` atoms, so ``W`` is modelled as a union of subspaces rather than one low-rank subspace.
With the calibration Gram ``X^T X / N = L L^T`` (Cholesky; a small ridge keeps it definite) the
objective equals ``||L^T W - (L^T D) S||_F^2``, so K-SVD (OMP codes + rank-one atom updates) runs on
the whitened weight ``L^T W`` and the dictionary is mapped back with ``D = L^{-T} D~``. The stored
budget is ``m K + n s (1 + index_cost)`` numbers (dictionary, code values, code indices);
inference is ``y = (x D) S``, a dense product followed by a sparse gather.

References
----------
R. Shopkhoev, D. Makhov, N. Zhussip, A. Ali, S. Lefkimmiatis. "CoSpaDi: Compressing LLMs via
Calibration-Guided Sparse Dictionary Learning", arXiv:2509.22075, 2025.
M. Aharon, M. Elad, A. Bruckstein. "K-SVD: An algorithm for designing overcomplete dictionaries for
sparse representation", IEEE Trans. Signal Process. 54(11), 2006 (K-SVD, OMP).
"""
from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch import nn

from graphrec.core._checks import as_tensor
from graphrec.core.subspace import truncated_svd
from graphrec.utils.progress import progress
from graphrec.utils.validation import check_float, check_int, torch_generator

__all__ = [
    "omp",
    "ksvd",
    "calibration_whitener",
    "calibrated_sparse_dictionary",
    "calibrated_truncated_svd",
    "compression_budget",
    "svd_rank_for_budget",
    "SparseDictLinear",
    "compress_linear",
]

logger = logging.getLogger(__name__)


def omp(dictionary: Any, signals: Any, n_nonzero: int) -> torch.Tensor:
    """Orthogonal matching pursuit for every column of ``signals`` at once.

    Parameters
    ----------
    dictionary : Tensor, shape (m, K)
        Atoms as columns (non-zero; they are normalised internally for the selection step only).
    signals : Tensor, shape (m, n)
        Columns to code.
    n_nonzero : int
        Atoms per column, ``1 <= n_nonzero <= min(K, m)``.

    Returns
    -------
    codes : Tensor, shape (K, n)
        At most ``n_nonzero`` non-zeros per column; the non-zeros are the least-squares
        coefficients of the column on its selected atoms.

    Examples
    --------
    >>> d = torch.eye(4, dtype=torch.float64)
    >>> omp(d, torch.tensor([[0.0], [2.0], [0.0], [-1.0]], dtype=torch.float64), 2).flatten().tolist()
    [0.0, 2.0, 0.0, -1.0]
    """
    d = as_tensor(dictionary, "dictionary", ndim=2)
    y = as_tensor(signals, "signals", ndim=2).to(device=d.device, dtype=d.dtype)
    m, k = d.shape
    if y.shape[0] != m:
        raise ValueError(f"signals has {y.shape[0]} rows but dictionary has {m}; expected matching signal length")
    s = check_int(n_nonzero, "n_nonzero", low=1, high=min(k, m))
    norms = torch.linalg.vector_norm(d, dim=0)
    if bool((norms == 0).any()):
        raise ValueError("dictionary has an all-zero atom (column); expected non-zero atoms")
    d_unit = d / norms
    gram, dty = d.T @ d, d.T @ y  # (K, K), (K, n)
    n = y.shape[1]
    rows = torch.arange(n, device=d.device)
    support = torch.zeros(n, s, dtype=torch.long, device=d.device)
    chol = torch.zeros(n, s, s, dtype=d.dtype, device=d.device)  # Cholesky of the support Gram, grown a row a step
    rhs = torch.zeros(n, s, dtype=d.dtype, device=d.device)
    dead = torch.zeros(n, s, dtype=torch.bool, device=d.device)  # atoms in the span of the support: coefficient 0
    coef = torch.zeros(n, 0, dtype=d.dtype, device=d.device)
    r = y
    tiny = 1e3 * torch.finfo(d.dtype).eps
    for t in range(s):
        corr = (d_unit.T @ r).abs().T  # (n, K)
        if t:
            corr[rows[:, None], support[:, :t]] = -1.0
        atom = corr.argmax(1)
        support[:, t] = atom
        g = gram[support[:, :t], atom[:, None]]  # (n, t): Gram entries with the atoms already chosen
        w = _forward_substitution(chol[:, :t, :t], torch.where(dead[:, :t], 0.0, g))
        diag_sq = gram[atom, atom] - (w * w).sum(1)
        ok = diag_sq > tiny * gram[atom, atom]
        dead[:, t] = ~ok  # a dead atom is decoupled: unit row in the factor, zero right-hand side
        chol[:, t, :t] = torch.where(ok[:, None], w, 0.0)
        chol[:, t, t] = torch.where(ok, diag_sq.clamp_min(tiny).sqrt(), 1.0)
        rhs[:, t] = torch.where(ok, dty[atom, rows], 0.0)
        low = chol[:, : t + 1, : t + 1]
        coef = _backward_substitution(low.transpose(1, 2), _forward_substitution(low, rhs[:, : t + 1]))
        r = y - torch.einsum("mnt,nt->mn", d[:, support[:, : t + 1]], coef)
    codes = torch.zeros(k, n, dtype=d.dtype, device=d.device)
    codes.T.scatter_add_(1, support, coef)
    return codes


def _forward_substitution(low: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve ``low x = b`` for batched lower-triangular ``low`` ``(n, t, t)``, ``b`` ``(n, t)`` (small ``t``)."""
    x = torch.zeros_like(b)
    for i in range(b.shape[1]):
        x[:, i] = (b[:, i] - (low[:, i, :i] * x[:, :i]).sum(1)) / low[:, i, i]
    return x


def _backward_substitution(up: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve ``up x = b`` for batched upper-triangular ``up`` ``(n, t, t)``."""
    x = torch.zeros_like(b)
    for i in reversed(range(b.shape[1])):
        x[:, i] = (b[:, i] - (up[:, i, i + 1 :] * x[:, i + 1 :]).sum(1)) / up[:, i, i]
    return x


def ksvd(
    signals: Any,
    n_atoms: int,
    n_nonzero: int,
    *,
    n_iter: int = 30,
    random_state: Any = None,
    verbose: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """K-SVD dictionary learning: ``signals ~ D S`` with unit-norm atoms and ``n_nonzero`` atoms per column.

    Each iteration codes all columns by :func:`omp`, then updates every atom ``d_k`` and its row of
    codes by the best rank-one approximation of the residual on the columns that use it. Unused
    atoms are re-seeded with the worst-represented column. Initial atoms are distinct random
    columns (random Gaussian atoms where there are fewer columns than atoms).

    Parameters
    ----------
    signals : Tensor, shape (m, n)
    n_atoms : int
        ``K``, the dictionary size (>= ``n_nonzero``).
    n_nonzero : int
        ``s``, atoms per column (``<= m``).
    n_iter : int, default 30
        Alternations of coding and atom updates.
    random_state : int, numpy Generator or None, default None
        Seeds the initial atoms.
    verbose : bool, default False
        Progress bar over the iterations.

    Returns
    -------
    dictionary : Tensor, shape (m, K), unit-norm columns
    codes : Tensor, shape (K, n), at most ``s`` non-zeros per column
    """
    y = as_tensor(signals, "signals", ndim=2)
    m, n = y.shape
    k = check_int(n_atoms, "n_atoms", low=1)
    s = check_int(n_nonzero, "n_nonzero", low=1, high=min(k, m))
    n_iter = check_int(n_iter, "n_iter", low=1)
    gen = torch_generator(random_state, "cpu")
    col_norm = torch.linalg.vector_norm(y, dim=0)
    if float(col_norm.max()) == 0:
        raise ValueError("signals is all zeros; nothing to learn a dictionary from")
    nonzero = torch.nonzero(col_norm > 0).squeeze(1).cpu()
    atoms = torch.randn(m, k, generator=gen, dtype=y.dtype).to(y.device)
    take = min(k, nonzero.numel())
    pick = nonzero[torch.randperm(nonzero.numel(), generator=gen)[:take]].to(y.device)
    atoms[:, :take] = y[:, pick]
    d = atoms / torch.linalg.vector_norm(atoms, dim=0)
    for it in progress(range(n_iter), verbose=verbose, desc="K-SVD"):
        codes = omp(d, y, s)
        resid = y - d @ codes
        for j in range(k):
            users = torch.nonzero(codes[j]).squeeze(1)
            if users.numel() == 0:
                worst = int(torch.linalg.vector_norm(resid, dim=0).argmax())
                col = resid[:, worst]
                if float(col.norm()) > 0:
                    d[:, j] = col / col.norm()
                continue
            e = resid[:, users] + torch.outer(d[:, j], codes[j, users])
            u, sv, vt = torch.linalg.svd(e, full_matrices=False)
            d[:, j] = u[:, 0]
            codes[j, users] = sv[0] * vt[0]
            resid[:, users] = e - torch.outer(d[:, j], codes[j, users])
        logger.debug("K-SVD iteration %d: relative error %.4g", it, float(resid.norm() / y.norm()))
    return d, codes


def calibration_whitener(calibration: Any, m: int, ridge: float = 1e-6) -> torch.Tensor:
    """Lower Cholesky factor ``L`` ``(m, m)`` of ``X^T X / N + ridge * mean(diag) * I`` for ``X`` ``(N, m)``."""
    x = as_tensor(calibration, "calibration", ndim=2)
    if x.shape[1] != m:
        raise ValueError(f"calibration has {x.shape[1]} features but the layer has {m} inputs; expected (N, {m})")
    ridge = check_float(ridge, "ridge", low=0.0)
    gram = x.T @ x / x.shape[0]
    scale = float(torch.diagonal(gram).mean())
    if scale == 0:
        raise ValueError("calibration inputs are all zero; expected informative calibration data")
    gram = gram + ridge * scale * torch.eye(m, dtype=x.dtype, device=x.device)
    return torch.linalg.cholesky(gram)


def _whiten(weight: torch.Tensor, calibration: Any, ridge: float) -> torch.Tensor | None:
    if calibration is None:
        return None
    return calibration_whitener(calibration, weight.shape[0], ridge).to(device=weight.device, dtype=weight.dtype)


def calibrated_sparse_dictionary(
    weight: Any,
    calibration: Any = None,
    *,
    n_atoms: int,
    n_nonzero: int,
    n_iter: int = 30,
    ridge: float = 1e-6,
    random_state: Any = None,
    verbose: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CoSpaDi factorisation ``W ~ D S`` of a weight ``W`` ``(m, n)`` (``y = x W``).

    With ``calibration`` ``X`` ``(N, m)`` the error minimised is the functional ``||X (W - D S)||_F``
    (K-SVD on ``L^T W``, then ``D = L^{-T} D~``); without it, the weight-space ``||W - D S||_F``.

    Returns
    -------
    dictionary : Tensor, shape (m, n_atoms)
    codes : Tensor, shape (n_atoms, n), at most ``n_nonzero`` non-zeros per column
    """
    w = as_tensor(weight, "weight", ndim=2)
    low = _whiten(w, calibration, ridge)
    target = w if low is None else low.T @ w
    d, codes = ksvd(target, n_atoms, n_nonzero, n_iter=n_iter, random_state=random_state, verbose=verbose)
    if low is not None:
        d = torch.linalg.solve_triangular(low.T, d, upper=True)
    return d, codes


def calibrated_truncated_svd(
    weight: Any, calibration: Any = None, *, rank: int, ridge: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """The low-rank baseline ``W ~ U V`` (``U`` ``(m, r)``, ``V`` ``(r, n)``), optimal for the same objective.

    Without calibration it is the truncated SVD (Eckart-Young); with it, the SVD of ``L^T W``
    mapped back by ``L^{-T}`` (the data-aware, SVD-LLM-style low-rank compression).
    """
    w = as_tensor(weight, "weight", ndim=2)
    low = _whiten(w, calibration, ridge)
    u, s, vt = truncated_svd(w if low is None else low.T @ w, rank=rank)
    left = u * s
    if low is not None:
        left = torch.linalg.solve_triangular(low.T, left, upper=True)
    return left, vt


def compression_budget(m: int, n: int, n_atoms: int, n_nonzero: int, index_cost: float = 1.0) -> float:
    """Numbers stored by a CoSpaDi factor of an ``(m, n)`` weight: ``m K + n s (1 + index_cost)``.

    ``index_cost`` is the cost of one code index relative to one value (1: indices stored like
    values, as in the paper's accounting; 0.5 for int16 indices beside fp32 values).

    >>> compression_budget(32, 512, 48, 3)
    4608.0
    """
    m, n = check_int(m, "m", low=1), check_int(n, "n", low=1)
    k, s = check_int(n_atoms, "n_atoms", low=1), check_int(n_nonzero, "n_nonzero", low=1)
    return float(m * k + n * s * (1.0 + check_float(index_cost, "index_cost", low=0.0)))


def svd_rank_for_budget(m: int, n: int, budget: float) -> int:
    """Largest rank ``r`` with ``r (m + n) <= budget`` (the truncated-SVD baseline at equal parameters).

    >>> svd_rank_for_budget(32, 512, compression_budget(32, 512, 48, 3))
    8
    """
    m, n = check_int(m, "m", low=1), check_int(n, "n", low=1)
    budget = check_float(budget, "budget", low=0.0)
    r = int(math.floor(budget / (m + n)))
    if r < 1:
        raise ValueError(f"budget={budget} is below one rank-1 factor (m + n = {m + n})")
    return min(r, m, n)


class SparseDictLinear(nn.Module):
    """``y = (x D) S + b`` with a dense dictionary and ``s`` stored (index, value) pairs per output.

    Parameters
    ----------
    dictionary : Tensor, shape (in_features, K)
    codes : Tensor, shape (K, out_features)
        At most ``n_nonzero`` non-zeros per column (the largest-magnitude ones are kept).
    bias : Tensor of shape (out_features,) or None
    n_nonzero : int, optional
        Stored entries per output (default: the largest non-zero count of a column of ``codes``).

    Attributes
    ----------
    dictionary : Parameter (in_features, K)
    values : Parameter (out_features, n_nonzero)
    indices : buffer LongTensor (out_features, n_nonzero)
    bias : Parameter (out_features,) or None
    """

    def __init__(
        self,
        dictionary: torch.Tensor,
        codes: torch.Tensor,
        bias: torch.Tensor | None = None,
        n_nonzero: int | None = None,
    ) -> None:
        super().__init__()
        d = as_tensor(dictionary, "dictionary", ndim=2)
        c = as_tensor(codes, "codes", ndim=2).to(device=d.device, dtype=d.dtype)
        if c.shape[0] != d.shape[1]:
            raise ValueError(f"codes has {c.shape[0]} rows but dictionary has {d.shape[1]} atoms")
        if n_nonzero is None:
            n_nonzero = max(int((c != 0).sum(0).max()), 1)
        s = check_int(n_nonzero, "n_nonzero", low=1, high=c.shape[0])
        top = c.abs().topk(s, dim=0).indices.T  # (out, s)
        self.in_features, self.out_features, self.n_atoms, self.n_nonzero = d.shape[0], c.shape[1], d.shape[1], s
        self.dictionary = nn.Parameter(d.clone())
        self.values = nn.Parameter(torch.gather(c.T, 1, top).clone())
        self.register_buffer("indices", top.clone())
        if bias is not None:
            b = as_tensor(bias, "bias", ndim=1).to(device=d.device, dtype=d.dtype)
            if b.shape[0] != self.out_features:
                raise ValueError(f"bias has length {b.shape[0]}, expected out_features={self.out_features}")
            self.bias = nn.Parameter(b.clone())
        else:
            self.register_parameter("bias", None)

    def codes(self) -> torch.Tensor:
        """The dense code matrix ``S`` ``(K, out_features)``."""
        out = torch.zeros(self.n_atoms, self.out_features, dtype=self.values.dtype, device=self.values.device)
        out.T.scatter_(1, self.indices, self.values.detach())
        return out

    def weight(self) -> torch.Tensor:
        """The reconstructed ``nn.Linear``-layout weight ``(D S)^T`` ``(out_features, in_features)``."""
        return (self.dictionary.detach() @ self.codes()).T

    def n_stored(self, index_cost: float = 1.0) -> float:
        """Stored numbers, as in :func:`compression_budget` (bias excluded)."""
        return compression_budget(self.in_features, self.out_features, self.n_atoms, self.n_nonzero, index_cost)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        z = x @ self.dictionary  # (..., K)
        y = (z[..., self.indices] * self.values).sum(-1)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"n_atoms={self.n_atoms}, n_nonzero={self.n_nonzero}")


def compress_linear(
    linear: nn.Linear,
    n_atoms: int,
    n_nonzero: int,
    *,
    calibration: Any = None,
    n_iter: int = 30,
    ridge: float = 1e-6,
    random_state: Any = None,
    verbose: bool = False,
) -> SparseDictLinear:
    """Compress an ``nn.Linear`` with CoSpaDi; the result runs on the layer's device and dtype.

    Parameters
    ----------
    linear : nn.Linear
    n_atoms, n_nonzero : int
        Dictionary size ``K`` and atoms per output ``s``; the budget is
        ``compression_budget(in_features, out_features, K, s)``.
    calibration : Tensor of shape (N, in_features), optional
        Inputs the layer sees (e.g. activations of a calibration batch); makes the factorisation
        minimise the output error on them.
    n_iter : int, default 30
        K-SVD iterations (see :func:`ksvd`).
    ridge : float >= 0, default 1e-6
        Regulariser of the calibration Gram: ``X^T X / N + ridge * mean(diag) * I`` is factored
        (see :func:`calibration_whitener`); unused without ``calibration``.
    random_state : int, numpy Generator or None, default None
        Seeds the initial atoms.
    verbose : bool, default False
        Progress bar over the K-SVD iterations.

    Examples
    --------
    >>> layer = torch.nn.Linear(16, 32)
    >>> small = compress_linear(layer, n_atoms=8, n_nonzero=2, n_iter=3, random_state=0)
    >>> small(torch.randn(5, 16)).shape
    torch.Size([5, 32])
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
    w = linear.weight.detach()
    work = w.to(torch.float64).T  # (in, out)
    calib = None
    if calibration is not None:
        calib = as_tensor(calibration, "calibration", ndim=2).to(device=w.device, dtype=torch.float64)
    d, codes = calibrated_sparse_dictionary(
        work, calib, n_atoms=n_atoms, n_nonzero=n_nonzero, n_iter=n_iter, ridge=ridge,
        random_state=random_state, verbose=verbose,
    )
    bias = None if linear.bias is None else linear.bias.detach().to(torch.float64)
    return SparseDictLinear(d, codes, bias, n_nonzero=n_nonzero).to(dtype=w.dtype)
