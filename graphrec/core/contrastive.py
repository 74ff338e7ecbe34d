"""Contrastive and rate-reduction objectives: InfoNCE, supervised contrastive (SupCon) and coding rate.

References: A. van den Oord, Y. Li, O. Vinyals, "Representation learning with contrastive predictive
coding", 2018 (InfoNCE); P. Khosla et al., "Supervised contrastive learning", NeurIPS 2020 (the
``L_out`` and ``L_in`` variants); Y. Yu, K. H. R. Chan, C. You, C. Song, Y. Ma, "Learning diverse and
discriminative representations via the principle of maximal coding rate reduction", NeurIPS 2020.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from graphrec.core._checks import as_tensor
from graphrec.utils.validation import check_choice, check_float


def info_nce(query: torch.Tensor, key: torch.Tensor, temperature: float = 0.1, *, normalize: bool = True) -> torch.Tensor:
    """InfoNCE: mean over i of ``-log softmax_j(q_i . k_j / t)[i]`` (row i of ``key`` is the positive of row i).

    ``query`` and ``key`` are ``(n, d)``; with ``normalize`` the rows are L2-normalised first
    (cosine similarity). Returns a 0-d tensor, differentiable in both inputs.
    """
    temperature = check_float(temperature, "temperature", low=0.0, low_open=True)
    query = as_tensor(query, "query", ndim=2)
    key = as_tensor(key, "key", ndim=2).to(query)
    if query.shape != key.shape:
        raise ValueError(f"query and key must have the same shape, got {tuple(query.shape)} and {tuple(key.shape)}")
    if normalize:
        query, key = F.normalize(query, dim=1), F.normalize(key, dim=1)
    logits = query @ key.T / temperature
    return F.cross_entropy(logits, torch.arange(query.shape[0], device=query.device))


def supcon_loss(
    features: torch.Tensor,
    labels: Any,
    temperature: float = 0.1,
    *,
    variant: str = "out",
    normalize: bool = True,
) -> torch.Tensor:
    """Supervised contrastive loss over a batch ``features`` ``(n, d)`` with integer ``labels`` ``(n,)``.

    For anchor ``i``, positives ``P(i)`` are the other rows with the same label and the
    denominator runs over all ``a != i``:

    - ``variant="out"`` (SupCon's recommended form): ``-1/|P(i)| sum_p log(e^{s_ip/t} / sum_a e^{s_ia/t})``
    - ``variant="in"``: ``-log(1/|P(i)| sum_p e^{s_ip/t} / sum_a e^{s_ia/t})`` (positives inside the log)

    The mean over anchors with at least one positive is returned (0-d); several views of a sample
    are passed as extra rows with the same label. Raises if no anchor has a positive.
    """
    temperature = check_float(temperature, "temperature", low=0.0, low_open=True)
    check_choice(variant, "variant", ("out", "in"))
    features = as_tensor(features, "features", ndim=2)
    labels = torch.as_tensor(labels, device=features.device)
    if labels.ndim != 1 or labels.shape[0] != features.shape[0]:
        raise ValueError(f"labels must have shape ({features.shape[0]},), got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex():
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    if normalize:
        features = F.normalize(features, dim=1)
    n = features.shape[0]
    self_mask = torch.eye(n, dtype=torch.bool, device=features.device)
    logits = (features @ features.T / temperature).masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = (labels[:, None] == labels[None, :]) & ~self_mask
    n_pos = pos.sum(1)
    has = n_pos > 0
    if not bool(has.any()):
        raise ValueError("no anchor has a positive (every label occurs once); supcon_loss needs repeated labels")
    if variant == "out":
        per_anchor = -(log_prob.masked_fill(~pos, 0.0).sum(1)[has] / n_pos[has])
    else:
        per_anchor = -(torch.logsumexp(log_prob.masked_fill(~pos, float("-inf")), dim=1)[has] - torch.log(n_pos[has].to(features.dtype)))
    return per_anchor.mean()


def _logdet_gram(z: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """``logdet(I_d + scale z^T z)`` for ``z`` ``(..., n, d)`` via the smaller Gram (Sylvester's identity)."""
    g = z.mT @ z if z.shape[-1] <= z.shape[-2] else z @ z.mT
    eye = torch.eye(g.shape[-1], dtype=z.dtype, device=z.device)
    return torch.logdet(eye + scale * g)


def coding_rate(z: torch.Tensor, eps: float = 0.5) -> torch.Tensor:
    """Coding rate ``R(Z; eps) = 1/2 logdet(I + d / (n eps^2) Z^T Z)`` of ``z`` ``(..., n, d)`` (one sample per row).

    The ½ follows MCR² (Yu et al., 2020); MLC's ``R`` is twice this. Returns shape ``(...)``.

    >>> z = torch.eye(2, dtype=torch.float64)  # n = d = 2: R = 1/2 * 2 * log(1 + 1/eps^2)
    >>> round(float(coding_rate(z, eps=1.0)), 6) == round(float(torch.log(torch.tensor(2.0))), 6)
    True
    """
    eps = check_float(eps, "eps", low=0.0, low_open=True)
    z = as_tensor(z, "z", min_ndim=2)
    n, d = z.shape[-2], z.shape[-1]
    return 0.5 * _logdet_gram(z, d / (n * eps**2))


def coding_rate_membership(z: torch.Tensor, membership: Any, eps: float = 0.5) -> torch.Tensor:
    """Membership-weighted coding rate ``R_c = sum_j m_j / (2n) logdet(I + d / (m_j eps^2) Z^T diag(w_j) Z)``.

    ``z`` is ``(n, d)``; ``membership`` is ``(k, n)`` with non-negative rows ``w_j`` of mass
    ``m_j = sum(w_j)`` (rows of zero mass are skipped). Class indicators give MCR²'s ``R_c``; the rows
    of MLC's doubly stochastic ``Γ`` (mass 1) give MLC's ``(1/n) sum_j logdet(I + d/eps^2 Z diag(Γ_j) Z^T)`` / 2.
    Returns a 0-d tensor.
    """
    eps = check_float(eps, "eps", low=0.0, low_open=True)
    z = as_tensor(z, "z", ndim=2)
    w = as_tensor(membership, "membership", ndim=2).to(z)
    n, d = z.shape
    if w.shape[1] != n:
        raise ValueError(f"membership must have shape (k, {n}), got {tuple(w.shape)}")
    if bool((w < 0).any()):
        raise ValueError("membership must be non-negative")
    mass = w.sum(1)
    keep = mass > 0
    w, mass = w[keep], mass[keep]
    scale = (d / (mass * eps**2))[:, None, None]
    # The d x d Gram Z^T diag(w_j) Z, or for n < d the n x n Z Z^T diag(w_j) of the same determinant
    # (Sylvester). Both are linear in w: a sqrt(w) factorisation would have an infinite derivative
    # at a zero membership entry and make the gradient with respect to the membership NaN.
    g = z.mT @ (w.unsqueeze(-1) * z) if d <= n else (z @ z.mT) * w.unsqueeze(-2)
    eye = torch.eye(g.shape[-1], dtype=z.dtype, device=z.device)
    return (mass / (2 * n) * torch.logdet(eye + scale * g)).sum()
