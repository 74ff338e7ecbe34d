"""Streaming low-rank sketches: Frequent Directions and incremental (Brand) SVD.

References: E. Liberty, "Simple and deterministic matrix sketching", KDD 2013, and M. Ghashami,
E. Liberty, J. M. Phillips, D. P. Woodruff, "Frequent Directions: simple and deterministic matrix
sketching", SIAM J. Comput. 45(5), 2016 (the ``||A^T A - B^T B||_2 <= ||A - A_k||_F^2 / (l - k)``
bound); M. Brand, "Fast low-rank modifications of the thin singular value decomposition", Linear
Algebra Appl. 415, 2006.
"""
from __future__ import annotations

from typing import Any

import torch

from graphrec.core._checks import as_tensor
from graphrec.utils.validation import check_device, check_float, check_int


class FrequentDirections:
    """Deterministic ``(sketch_size, d)`` sketch ``B`` of a stream of rows with ``B^T B ~ A^T A``.

    Rows arrive in batches through :meth:`update`; every time the buffer of ``2 * sketch_size`` rows
    fills, it is shrunk by one SVD: ``B <- diag(sqrt(max(s^2 - s_l^2, 0))) V^T`` (the
    ``sketch_size``-th squared singular value ``s_l^2`` is subtracted).

    Parameters
    ----------
    sketch_size : int, the number of rows ``l`` kept
    n_features : int, the row length ``d``
    decay : float in (0, 1], default 1.0
        Multiplies the old sketch before each :meth:`update` (CoSO's decayed sketch; 1 is the
        classic one).
    device : str or torch.device, default "cpu"
        Device the sketch lives on.
    dtype : torch.dtype, default torch.float64
        Dtype of the sketch; incoming rows are cast to it.
    """

    def __init__(
        self, sketch_size: int, n_features: int, *, decay: float = 1.0, device: Any = "cpu", dtype: torch.dtype = torch.float64
    ) -> None:
        self.sketch_size = check_int(sketch_size, "sketch_size", low=1)
        self.n_features = check_int(n_features, "n_features", low=1)
        self.decay = check_float(decay, "decay", low=0.0, high=1.0, low_open=True)
        self._buffer = torch.zeros(0, self.n_features, device=check_device(device), dtype=dtype)
        self.n_seen_ = 0

    def update(self, rows: Any) -> "FrequentDirections":
        """Absorb ``rows`` ``(b, d)`` (or one row ``(d,)``) into the sketch; returns ``self``."""
        rows = as_tensor(rows, "rows", min_ndim=1).to(self._buffer)
        rows = rows[None] if rows.ndim == 1 else rows
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise ValueError(f"rows must have shape (b, {self.n_features}), got {tuple(rows.shape)}")
        if self.decay != 1.0:
            self._buffer = self.decay * self._buffer
        start = 0
        while start < rows.shape[0]:
            room = 2 * self.sketch_size - self._buffer.shape[0]
            self._buffer = torch.cat([self._buffer, rows[start:start + room]])
            start += room
            if self._buffer.shape[0] >= 2 * self.sketch_size:
                self._shrink()
        self.n_seen_ += rows.shape[0]
        return self

    def _shrink(self) -> None:
        _, s, vt = torch.linalg.svd(self._buffer, full_matrices=False)
        l = self.sketch_size  # noqa: E741
        delta = s[l - 1] ** 2 if s.shape[0] >= l else s.new_zeros(())
        s_new = torch.sqrt(torch.clamp(s[:l] ** 2 - delta, min=0.0))
        keep = s_new > 0
        self._buffer = s_new[keep, None] * vt[:l][keep]

    @property
    def sketch(self) -> torch.Tensor:
        """The sketch ``B``, shape ``(<= sketch_size, d)`` (shrunk to at most ``sketch_size`` rows)."""
        if self._buffer.shape[0] > self.sketch_size:
            self._shrink()
        return self._buffer

    def components(self, energy: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Right singular vectors ``(d, k)`` and singular values ``(k,)`` of the sketch.

        With ``energy`` in (0, 1], only the directions holding that fraction of the sketch's energy.
        """
        from graphrec.core.subspace import energy_rank

        _, s, vt = torch.linalg.svd(self.sketch, full_matrices=False)
        k = s.shape[0] if energy is None else energy_rank(s, energy)
        return vt[:k].T, s[:k]


class IncrementalSVD:
    """Thin SVD ``A ~ U diag(s) V^T`` of a matrix whose columns arrive in batches (Brand, 2006).

    Each :meth:`update` with new columns ``C`` ``(m, c)`` costs one SVD of a ``(k + c) x (k + c)``
    matrix; the rank is then truncated to ``max_rank`` (``None`` keeps everything above
    ``rtol * s_max``, so without truncation the result equals the SVD of the concatenation).

    Fitted attributes: ``u_`` ``(m, k)``, ``s_`` ``(k,)``, ``vt_`` ``(k, n_seen)``.
    """

    def __init__(self, max_rank: int | None = None, *, rtol: float = 1e-12) -> None:
        self.max_rank = None if max_rank is None else check_int(max_rank, "max_rank", low=1)
        self.rtol = check_float(rtol, "rtol", low=0.0)
        self.u_: torch.Tensor | None = None

    def update(self, columns: Any) -> "IncrementalSVD":
        """Append ``columns`` ``(m, c)`` to the factored matrix; returns ``self``."""
        c = as_tensor(columns, "columns", ndim=2)
        if self.u_ is None:
            u, s, vt = torch.linalg.svd(c, full_matrices=False)
            return self._truncate(u, s, vt)
        u, s, vt = self.u_, self.s_, self.vt_
        c = c.to(u)
        if c.shape[0] != u.shape[0]:
            raise ValueError(f"columns must have {u.shape[0]} rows like the earlier ones, got {c.shape[0]}")
        proj = u.T @ c  # (k, c)
        res = c - u @ proj
        res = res - u @ (u.T @ res)  # second Gram-Schmidt pass for orthogonality
        q, r = torch.linalg.qr(res)
        k, nc = s.shape[0], c.shape[1]
        middle = torch.zeros(k + q.shape[1], k + nc, dtype=u.dtype, device=u.device)
        middle[:k, :k] = torch.diag(s)
        middle[:k, k:] = proj
        middle[k:, k:] = r
        um, sm, vtm = torch.linalg.svd(middle, full_matrices=False)
        n_old = vt.shape[1]
        v_big = torch.zeros(n_old + nc, k + nc, dtype=u.dtype, device=u.device)
        v_big[:n_old, :k] = vt.T
        v_big[n_old:, k:] = torch.eye(nc, dtype=u.dtype, device=u.device)
        return self._truncate(torch.cat([u, q], 1) @ um, sm, (v_big @ vtm.T).T)

    def _truncate(self, u: torch.Tensor, s: torch.Tensor, vt: torch.Tensor) -> "IncrementalSVD":
        k = int((s > self.rtol * s[0]).sum()) if float(s[0]) > 0 else 1
        if self.max_rank is not None:
            k = min(k, self.max_rank)
        k = max(k, 1)
        self.u_, self.s_, self.vt_ = u[:, :k], s[:k], vt[:k]
        return self


class StreamingPCA:
    """PCA of a stream of row batches from a float64 running mean and scatter matrix.

    Batches are merged with the pairwise (Chan-Golub-LeVeque) update, which avoids the
    cancellation of the naive ``E[x x^T] - mu mu^T``; memory is ``O(d^2)``. Reference: T. F. Chan,
    G. H. Golub, R. J. LeVeque, "Algorithms for computing the sample variance", Am. Stat. 37, 1983.

    Attributes (after at least one :meth:`update`): ``n_seen_``, ``mean_`` ``(d,)``,
    ``covariance_`` ``(d, d)`` (``ddof=1``).
    """

    def __init__(self, n_features: int, *, device: Any = "cpu") -> None:
        self.n_features = check_int(n_features, "n_features", low=1)
        dev = check_device(device)
        self.n_seen_ = 0
        self.mean_ = torch.zeros(self.n_features, dtype=torch.float64, device=dev)
        self._scatter = torch.zeros(self.n_features, self.n_features, dtype=torch.float64, device=dev)

    def update(self, rows: Any) -> "StreamingPCA":
        """Absorb ``rows`` ``(b, d)``; returns ``self``."""
        x = as_tensor(rows, "rows", ndim=2).to(self.mean_)
        if x.shape[1] != self.n_features:
            raise ValueError(f"rows must have shape (b, {self.n_features}), got {tuple(x.shape)}")
        nb = x.shape[0]
        mb = x.mean(0)
        xc = x - mb
        delta = mb - self.mean_
        n = self.n_seen_ + nb
        self._scatter += xc.T @ xc + torch.outer(delta, delta) * (self.n_seen_ * nb / n)
        self.mean_ = self.mean_ + delta * (nb / n)
        self.n_seen_ = n
        return self

    @property
    def covariance_(self) -> torch.Tensor:
        if self.n_seen_ < 2:
            raise ValueError(f"the covariance needs at least 2 rows, got {self.n_seen_}")
        return self._scatter / (self.n_seen_ - 1)

    def components(self, n_components: int | None = None, *, energy: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Principal axes ``(d, k)`` and their variances ``(k,)``, descending.

        ``k`` is ``n_components``, or the smallest count explaining ``energy`` of the total variance
        (at most one of the two; default all ``d``).
        """
        from graphrec.core.subspace import energy_rank

        if n_components is not None and energy is not None:
            raise ValueError("pass at most one of n_components and energy")
        evals, evecs = torch.linalg.eigh(self.covariance_)
        evals, evecs = evals.flip(0).clamp(min=0.0), evecs.flip(1)
        if n_components is not None:
            k = check_int(n_components, "n_components", low=1, high=self.n_features)
        elif energy is not None:
            k = max(energy_rank(evals.sqrt(), energy), 1)
        else:
            k = self.n_features
        return evecs[:, :k], evals[:k]
