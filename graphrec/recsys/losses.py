"""Losses for collaborative filtering: DirectAU's alignment + uniformity, and BPR.

DirectAU (Wang et al., "Towards Representation Alignment and Uniformity in Collaborative
Filtering", KDD 2022, Eq. 6-7), on a batch of ``B`` positive pairs with l2-normalised
representations ``x_b`` (users) and ``y_b`` (items):

* ``alignment  = mean_b ||x_b - y_b||^2``
* ``uniformity(z) = log mean_{b < b'} exp(-2 ||z_b - z_b'||^2)`` over the batch rows of one side
  (duplicates kept, so pairs follow the interaction distribution)
* ``loss = alignment + gamma * (uniformity(x) + uniformity(y)) / 2``

BPR (Rendle et al., UAI 2009): ``-mean log sigmoid(s(u, i) - s(u, j))`` for a sampled negative ``j``.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["alignment", "uniformity", "directau_loss", "directau_loss_distributed", "bpr_loss"]


def alignment(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``mean_b ||x_b - y_b||^2`` for (B, d) rows already l2-normalised; shape ``()``."""
    return (x - y).pow(2).sum(dim=1).mean()


@functools.lru_cache(maxsize=16)
def _diagonal(b: int, device: torch.device) -> torch.Tensor:
    """(b, b) boolean identity, cached: a training run asks for the same batch size every step."""
    return torch.eye(b, dtype=torch.bool, device=device)


class _Uniformity(torch.autograd.Function):
    """:func:`uniformity` with a hand-written backward (one (B, B) x (B, d) product instead of two,
    and fewer (B, B) temporaries than autograd's chain through clamp, mask and logsumexp).

    With ``D = dL/d dist`` (``-t`` times the softmax weights of the off-diagonal logits, zero where
    the squared distance was clamped at 0) and ``S = D + D^T``, the gradient of
    ``dist_ij = ||z_i||^2 + ||z_j||^2 - 2 z_i.z_j`` is ``dL/dz = 2 diag(S 1) z - 2 S z``.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, t: float) -> torch.Tensor:
        b = z.shape[0]
        sq = z.pow(2).sum(dim=1)
        dist = sq[:, None] + sq[None, :]
        dist.add_(z @ z.T, alpha=-2.0)  # the same rounding as ``- 2.0 * (z @ z.T)`` (an exact scaling)
        clamped = dist < 0
        # the mean over b != b' equals the mean over b < b' (the matrix is symmetric)
        logits = dist.clamp_min_(0.0).mul_(-t).masked_fill_(_diagonal(b, z.device), float("-inf"))
        lse = torch.logsumexp(logits.flatten(), dim=0)
        ctx.save_for_backward(z, logits, lse, clamped)
        ctx.t = t
        return lse - float(np.log(b * (b - 1)))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        z, logits, lse, clamped = ctx.saved_tensors
        d = (logits - lse).exp_().mul_(grad * -ctx.t).masked_fill_(clamped, 0.0)
        s = d + d.T
        return z * (2.0 * s.sum(dim=1))[:, None] - 2.0 * (s @ z), None


def uniformity(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """``log mean_{b<b'} exp(-t ||z_b - z_b'||^2)`` of (B, d) rows (B >= 2); shape ``()``.

    The squared distances come from the Gram matrix, ``||a||^2 + ||b||^2 - 2 a.b`` (clamped at 0),
    which costs one (B, d) x (d, B) product instead of ``torch.pdist``'s slower backward; the
    gradient is computed in closed form (:class:`_Uniformity`).
    """
    b = z.shape[0]
    if b < 2:
        raise ValueError(f"uniformity needs at least 2 rows, got {b}")
    return _Uniformity.apply(z, float(t))


def directau_loss(user_repr: torch.Tensor, item_repr: torch.Tensor, gamma: float) -> torch.Tensor:
    """DirectAU's batch loss from raw (B, d) encoder outputs of the B positive pairs."""
    x, y = F.normalize(user_repr, dim=-1), F.normalize(item_repr, dim=-1)
    return alignment(x, y) + gamma * (uniformity(x) + uniformity(y)) / 2


def directau_loss_distributed(user_repr: torch.Tensor, item_repr: torch.Tensor, gamma: float) -> torch.Tensor:
    """:func:`directau_loss` of the whole batch when each rank of a process group holds a shard.

    Alignment is a mean over rows (the trainer's weighted gradient sum makes it the batch mean);
    uniformity is computed over every rank's rows (:func:`graphrec.train.distributed.gather_rows`),
    so training on N processes follows the one-process run up to floating-point order.
    """
    from graphrec.train.distributed import gather_rows

    x, y = F.normalize(user_repr, dim=-1), F.normalize(item_repr, dim=-1)
    (xs, share), (ys, _) = gather_rows(x), gather_rows(y)
    uni = (uniformity(xs) + uniformity(ys)) / 2
    return alignment(x, y) + gamma * (uni.detach() + (uni - uni.detach()) / share)


def bpr_loss(user_repr: torch.Tensor, pos_repr: torch.Tensor, neg_repr: torch.Tensor) -> torch.Tensor:
    """``-mean log sigmoid(<u, i> - <u, j>)`` for (B, d) users, positives and negatives."""
    return -F.logsigmoid((user_repr * (pos_repr - neg_repr)).sum(dim=-1)).mean()
