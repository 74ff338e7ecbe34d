"""Subspace overlap of fine-tuning updates: energy bases, the mode subspace overlap (MSO) and the
projection of one weight update onto the top singular subspace of another.

Per weight matrix the alignment update is ``V = W_aligned - W_base`` and the fine-tuning update
``U = W_ft - W_aligned`` (both ``(m, n)``). The MSO of two updates compares the left singular
subspaces holding a fraction ``energy`` of their squared Frobenius norm:
``MSO = ||Q_A^T Q_B||_F^2 / min(k_A, k_B)``, 1 when one subspace contains the other, and
``max(k_A, k_B) / m`` in expectation for independent uniformly random subspaces.

Reference: S. Ponkshe, S. Shah, A. Singh, P. Vepakomma, "Safety subspaces are not distinct: a
fine-tuning case study", arXiv 2505.14185, 2025 (code: github.com/CERT-Lab/safety-subspaces).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from graphrec.core import principal_angles, truncated_svd
from graphrec.core._checks import as_tensor
from graphrec.utils.validation import check_choice, check_float

__all__ = [
    "SubspaceOverlap",
    "energy_basis",
    "fine_tuning_overlaps",
    "mso_random_baseline",
    "mode_subspace_overlap",
    "project_update",
    "subspace_overlap",
    "update_diagnostics",
]


@dataclass(frozen=True)
class SubspaceOverlap:
    """The MSO of two matrices and what it was computed from.

    Attributes
    ----------
    overlap : float
        ``||Q_A^T Q_B||_F^2 / min(k_A, k_B)`` in [0, 1].
    k_a, k_b : int
        Energy ranks of the two matrices.
    random_baseline : float
        ``max(k_A, k_B) / m``, the expected overlap of independent random subspaces.
    angles : Tensor, shape (min(k_A, k_B),)
        Principal angles (radians, descending) between the two energy subspaces.
    """

    overlap: float
    k_a: int
    k_b: int
    random_baseline: float
    angles: torch.Tensor


def energy_basis(delta: Any, energy: float = 0.9) -> torch.Tensor:
    """Left singular vectors ``(m, k)`` of ``delta`` ``(m, n)`` holding ``energy`` of ``||delta||_F^2``.

    ``k`` is the smallest number of singular values whose squares reach the fraction ``energy``.

    >>> d = torch.diag(torch.tensor([3.0, 1.0, 0.0], dtype=torch.float64))
    >>> energy_basis(d, 0.8).shape  # 9 / 10 of the energy is in the first direction
    torch.Size([3, 1])
    """
    delta = as_tensor(delta, "delta", ndim=2)
    energy = check_float(energy, "energy", low=0.0, high=1.0, low_open=True)
    if float(torch.linalg.matrix_norm(delta)) == 0:
        raise ValueError("delta is all zeros; its singular subspace is undefined")
    u, _, _ = truncated_svd(delta, energy=energy)
    return u


def subspace_overlap(q_a: Any, q_b: Any) -> float:
    """``||Q_A^T Q_B||_F^2 / min(k_A, k_B)`` of two orthonormal bases ``(m, k_A)`` and ``(m, k_B)``.

    >>> e = torch.eye(4, dtype=torch.float64)
    >>> subspace_overlap(e[:, :2], e[:, 1:3])  # one shared direction out of two
    0.5
    """
    q_a = as_tensor(q_a, "q_a", ndim=2)
    q_b = as_tensor(q_b, "q_b", ndim=2).to(q_a)
    if q_a.shape[0] != q_b.shape[0]:
        raise ValueError(f"q_a and q_b must have the same number of rows, got {q_a.shape[0]} and {q_b.shape[0]}")
    for name, q in (("q_a", q_a), ("q_b", q_b)):
        gram = q.T @ q
        if float((gram - torch.eye(q.shape[1], dtype=q.dtype, device=q.device)).abs().max()) > 1e-6:
            raise ValueError(f"{name} must have orthonormal columns (see graphrec.core.orthonormal_basis)")
    return float(torch.linalg.matrix_norm(q_a.T @ q_b) ** 2) / min(q_a.shape[1], q_b.shape[1])


def mso_random_baseline(k_a: int, k_b: int, dim: int) -> float:
    """Expected MSO ``max(k_a, k_b) / dim`` of independent uniformly random subspaces of ``R^dim``.

    ``E ||Q_A^T Q_B||_F^2 = k_a k_b / dim`` for Haar-distributed bases.

    >>> mso_random_baseline(10, 10, 200)
    0.05
    """
    if min(k_a, k_b) < 1 or max(k_a, k_b) > dim:
        raise ValueError(f"need 1 <= k_a, k_b <= dim, got k_a={k_a}, k_b={k_b}, dim={dim}")
    return max(k_a, k_b) / dim


def mode_subspace_overlap(a: Any, b: Any, energy: float = 0.9) -> SubspaceOverlap:
    """Mode subspace overlap of the left energy subspaces of ``a`` and ``b`` (both ``(m, n_a)``, ``(m, n_b)``).

    Returns
    -------
    SubspaceOverlap
        The overlap, both energy ranks, the random baseline and the principal angles.
    """
    a = as_tensor(a, "a", ndim=2)
    b = as_tensor(b, "b", ndim=2).to(a)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must have the same number of rows, got {a.shape[0]} and {b.shape[0]}")
    q_a, q_b = energy_basis(a, energy), energy_basis(b, energy)
    k_a, k_b = q_a.shape[1], q_b.shape[1]
    return SubspaceOverlap(
        overlap=float(torch.linalg.matrix_norm(q_a.T @ q_b) ** 2) / min(k_a, k_b),
        k_a=k_a,
        k_b=k_b,
        random_baseline=mso_random_baseline(k_a, k_b, a.shape[0]),
        angles=principal_angles(q_a, q_b),
    )


def _update_pair(update: Any, reference: Any) -> tuple[torch.Tensor, torch.Tensor]:
    update = as_tensor(update, "update", ndim=2)
    reference = as_tensor(reference, "reference", ndim=2).to(update)
    if update.shape != reference.shape:
        raise ValueError(
            f"update and reference must have the same shape, got {tuple(update.shape)} and {tuple(reference.shape)}"
        )
    return update, reference


def _top_left_basis(reference: torch.Tensor, frac: float) -> torch.Tensor:
    frac = check_float(frac, "frac", low=0.0, high=1.0, low_open=True)
    k = max(1, round(frac * min(reference.shape)))
    u, _, _ = truncated_svd(reference, rank=k)
    return u


def project_update(update: Any, reference: Any, frac: float, mode: str = "same") -> torch.Tensor:
    """The part of ``update`` ``U`` ``(m, n)`` kept by a merge along the top subspace of ``reference`` ``V``.

    ``L`` holds the top ``k = round(frac * min(m, n))`` left singular vectors of ``V`` and
    ``U_par = L L^T U``. ``mode="same"`` returns ``U_par`` (add it to ``W_aligned``),
    ``"opposite"`` returns ``-U_par`` and ``"orthogonal"`` returns ``U - U_par``.

    >>> u = torch.ones(3, 2, dtype=torch.float64)
    >>> v = torch.tensor([[1.0, 0], [0, 0], [0, 0]], dtype=torch.float64)
    >>> project_update(u, v, 0.5, "orthogonal").tolist()
    [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]
    """
    update, reference = _update_pair(update, reference)
    mode = check_choice(mode, "mode", ("same", "opposite", "orthogonal"))
    basis = _top_left_basis(reference, frac)
    parallel = basis @ (basis.T @ update)
    return {"same": parallel, "opposite": -parallel, "orthogonal": update - parallel}[mode]


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    denom = float(torch.linalg.matrix_norm(a) * torch.linalg.matrix_norm(b))
    return float((a * b).sum()) / denom if denom > 0 else 0.0


def update_diagnostics(update: Any, reference: Any, frac: float) -> dict[str, float]:
    """Energy kept ``||U_par||^2 / ||U||^2``, ``cos(U, U_par)`` and ``cos(U, V)`` (Frobenius cosines)."""
    update, reference = _update_pair(update, reference)
    if float(torch.linalg.matrix_norm(update)) == 0:
        raise ValueError("update is all zeros; the diagnostics are undefined")
    basis = _top_left_basis(reference, frac)
    parallel = basis @ (basis.T @ update)
    return {
        "energy_kept": float(torch.linalg.matrix_norm(parallel) ** 2 / torch.linalg.matrix_norm(update) ** 2),
        "cos_update_projection": _cosine(update, parallel),
        "cos_update_reference": _cosine(update, reference),
    }


def fine_tuning_overlaps(
    base: Mapping[str, Any], aligned: Mapping[str, Any], finetuned: Mapping[str, Any], energy: float = 0.9
) -> dict[str, SubspaceOverlap]:
    """MSO between the alignment update ``W_aligned - W_base`` and the fine-tuning update ``W_ft - W_aligned``.

    Parameters
    ----------
    base, aligned, finetuned : mappings name -> weight
        State dicts with the same keys; only 2-d weights whose updates are both non-zero are compared.
    energy : float in (0, 1], default 0.9
        Fraction of each update's ``||.||_F^2`` its energy basis keeps (see :func:`energy_basis`).

    Returns
    -------
    dict name -> SubspaceOverlap
    """
    for name, sd in (("base", base), ("aligned", aligned), ("finetuned", finetuned)):
        if not isinstance(sd, Mapping):
            raise TypeError(f"{name} must be a mapping name -> weight (a state dict), got {type(sd).__name__}")
    if not (set(base) == set(aligned) == set(finetuned)):
        raise ValueError("base, aligned and finetuned must have the same keys")
    out: dict[str, SubspaceOverlap] = {}
    for key in base:
        w_b, w_a, w_f = (as_tensor(sd[key], key) for sd in (base, aligned, finetuned))
        if not (w_b.shape == w_a.shape == w_f.shape):
            raise ValueError(f"weight {key!r} has different shapes in base, aligned and finetuned")
        if w_b.ndim != 2:
            continue
        w_a, w_f = w_a.to(w_b), w_f.to(w_b)
        v, u = w_a - w_b, w_f - w_a
        if float(torch.linalg.matrix_norm(v)) == 0 or float(torch.linalg.matrix_norm(u)) == 0:
            continue
        out[key] = mode_subspace_overlap(v, u, energy)
    if not out:
        raise ValueError("no 2-d weight has non-zero alignment and fine-tuning updates")
    return out
