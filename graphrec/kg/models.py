"""LowFER and TuckER scoring networks (torch modules) and their bilinear cores as plain functions.

Notation of the papers: ``d_e`` entity dimension, ``d_r`` relation dimension, ``k`` LowFER's
factorization rank, ``U`` (``d_e x k d_e``), ``V`` (``d_r x k d_e``), TuckER core ``W``
(``d_r x d_e x d_e``).

* LowFER (Amin et al., "LowFER: Low-rank Bilinear Pooling for Link Prediction", ICML 2020):
  ``f(e_s, r, e_o) = e_o^T SumPool_k((U^T e_s) * (V^T r))``, where ``SumPool_k`` (the fixed 0/1
  matrix ``S^k``) sums non-overlapping windows of ``k`` consecutive entries. The network of the
  official code applies, in order: ``BN0``, input dropout, the Hadamard product of both
  projections, hidden dropout 1, k-sum pooling, signed square root ``sign(z) sqrt(|z| + 1e-12)``,
  L2 row normalisation, ``BN1``, hidden dropout 2, and the product with all entity embeddings.
* TuckER (Balazevic et al., "TuckER: Tensor Factorization for Knowledge Graph Completion",
  EMNLP 2019): ``f = W x_1 r x_2 e_s x_3 e_o``, with ``BN0``, input dropout, hidden dropout 1 on
  the relation-specific matrix ``W x_1 r``, ``BN1`` and hidden dropout 2.

LowFER is TuckER with the core ``G[m, a, b] = sum_{j in window b} V[m, j] U[a, j]``, i.e. core
slices of rank ``<= k`` (:func:`lowfer_core_tensor`); tests check both forms agree.

Entity and relation embeddings have no ``padding_idx``: the official LowFER code freezes entity 0
and relation 0 with ``padding_idx=0``; here every embedding is trained.

``forward`` is the plain autograd form of the networks (``nn.Dropout`` modules; used for scoring
and as the reference). Training goes through :meth:`training_loss`, which in training mode runs
the same function and its loss as one autograd node (:mod:`graphrec.kg._training_step`); each
network supplies its core's forward and backward to it (LowFER's also a compiled CPU form,
:mod:`graphrec.kg._fused`).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from graphrec.kg import _fused
from graphrec.kg._training_step import StepWorkspace, training_step
from graphrec.kg.loss import smoothed_bce

__all__ = ["LowFERNet", "TuckERNet", "lowfer_core_tensor", "lowfer_pool", "tucker_contract"]


def lowfer_pool(subjects: torch.Tensor, relations: torch.Tensor, U: torch.Tensor, V: torch.Tensor, k: int,
                dropout: nn.Module | None = None) -> torch.Tensor:
    """``SumPool_k((U^T e_s) * (V^T r))`` for a batch, before any normalisation.

    Parameters
    ----------
    subjects : Tensor, shape (b, d_e)
        Subject embeddings ``e_s``.
    relations : Tensor, shape (b, d_r)
        Relation embeddings ``r``.
    U : Tensor, shape (d_e, k * d_e)
        Subject projection.
    V : Tensor, shape (d_r, k * d_e)
        Relation projection.
    k : int
        Pooling window (factorization rank).
    dropout : nn.Module, optional
        Applied to the ``(b, k * d_e)`` product before pooling.

    Returns
    -------
    (b, d_e) tensor; entry ``i`` sums product entries ``i k .. i k + k - 1``.
    """
    z = (subjects @ U) * (relations @ V)
    if dropout is not None:
        z = dropout(z)
    return z.view(z.shape[0], -1, k).sum(-1)


def lowfer_core_tensor(U: torch.Tensor, V: torch.Tensor, k: int) -> torch.Tensor:
    """The TuckER core LowFER implies: ``G[m, a, b] = sum_{j in window b} V[m, j] U[a, j]``.

    Returns a ``(d_r, d_e, d_e)`` tensor such that ``tucker_contract(e_s, r, G) ==
    lowfer_pool(e_s, r, U, V, k)`` (notes A.2).
    """
    d_e, d_r = U.shape[0], V.shape[0]
    return torch.einsum("mbj,abj->mab", V.view(d_r, d_e, k), U.view(d_e, d_e, k))


def tucker_contract(subjects: torch.Tensor, relations: torch.Tensor, W: torch.Tensor,
                    dropout: nn.Module | None = None) -> torch.Tensor:
    """``(W x_1 r) x_2 e_s`` for a batch: the (b, d_e) vector whose dot with ``e_o`` is the score.

    Parameters
    ----------
    subjects : Tensor, shape (b, d_e)
        Subject embeddings ``e_s``.
    relations : Tensor, shape (b, d_r)
        Relation embeddings ``r``.
    W : Tensor, shape (d_r, d_e, d_e)
        Core tensor.
    dropout : nn.Module, optional
        Applied to the relation-specific matrices ``W x_1 r`` (b, d_e, d_e).
    """
    d_r, d_e, _ = W.shape
    w = (relations @ W.reshape(d_r, d_e * d_e)).view(-1, d_e, d_e)
    if dropout is not None:
        w = dropout(w)
    return torch.bmm(subjects.unsqueeze(1), w).squeeze(1)


class _BilinearKGNet(nn.Module):
    """Shared parts: embeddings, batch norms, dropouts and the 1-N output layer."""

    def __init__(self, n_entities: int, n_relations: int, d_e: int, d_r: int, input_dropout: float,
                 hidden_dropout1: float, hidden_dropout2: float) -> None:
        super().__init__()
        # ``_weight`` skips nn.Embedding's own initialisation, which would draw from the global torch RNG
        # (``_reset_embeddings`` initialises them from the network's generator)
        self.E = nn.Embedding(n_entities, d_e, _weight=torch.empty(n_entities, d_e))
        self.R = nn.Embedding(n_relations, d_r, _weight=torch.empty(n_relations, d_r))
        self.bn0 = nn.BatchNorm1d(d_e)
        self.bn1 = nn.BatchNorm1d(d_e)
        self.input_dropout = nn.Dropout(input_dropout)
        self.hidden_dropout1 = nn.Dropout(hidden_dropout1)
        self.hidden_dropout2 = nn.Dropout(hidden_dropout2)
        self._step_workspace = StepWorkspace()

    def _reset_embeddings(self, generator: torch.Generator | None) -> None:
        nn.init.xavier_normal_(self.E.weight, generator=generator)
        nn.init.xavier_normal_(self.R.weight, generator=generator)

    def query(self, subjects: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        """The (b, d_e) query vector ``q`` whose dot with ``e_o`` is the score of ``(s, r, o)``."""
        raise NotImplementedError

    def forward(self, subjects: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        """Logits ``(b, n_entities)`` of every entity as the tail of ``(subjects[i], relations[i])``."""
        return self.query(subjects, relations) @ self.E.weight.t()

    def training_loss(self, subjects: torch.Tensor, relations: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
                      label_smoothing: float) -> torch.Tensor:
        """``smoothed_bce(self(subjects, relations), rows, cols, label_smoothing)``.

        In training mode with gradients enabled this runs as one autograd node with reused buffers
        and the three dropout masks drawn at once (:func:`graphrec.kg._training_step.training_step`):
        the same function and gradients, masks equal in distribution to the modules' ones. Its
        backward must run before the next training step of this network.
        """
        if self.training and torch.is_grad_enabled():
            return training_step(self, subjects, relations, rows, cols, label_smoothing)
        return smoothed_bce(self(subjects, relations), rows, cols, label_smoothing)

    # hooks of graphrec.kg._training_step: the bilinear core between the two batch norms
    hidden_width: int
    compiled_core = False   # whether the core takes a hidden mask drawn in graphrec.kg._fused's kernels

    def core_parameters(self) -> tuple[nn.Parameter, ...]:
        """The core's parameters, in the order ``core_backward`` returns their gradients."""
        raise NotImplementedError

    def core_forward(self, x: torch.Tensor, relations: torch.Tensor, R: torch.Tensor, mask: Any,
                     workspace: StepWorkspace) -> tuple[torch.Tensor, Any]:
        """(b, d_e) core output from ``x`` (b, d_e) and the relations ``R[relations]`` ((b,) ids into
        ``R`` (n_relations, d_r)) with hidden mask ``mask`` ((b, hidden_width) tensor, ``None``, or a
        :class:`~graphrec.kg._fused.PhiloxDropout` where ``compiled_core``); what the backward needs."""
        raise NotImplementedError

    def core_backward(self, grad: torch.Tensor, saved: Any, x: torch.Tensor, relations: torch.Tensor,
                      R: torch.Tensor, mask: Any, workspace: StepWorkspace) -> tuple[torch.Tensor, ...]:
        """Gradients ``(dx, dR, *d core_parameters)`` of the core given ``grad`` = d loss / d output
        (``dR`` shaped like ``R``)."""
        raise NotImplementedError

    def post_forward(self, z: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Map between the core and ``BN1`` (identity here); returns the output and what its backward needs."""
        return z, None

    def post_backward(self, grad: torch.Tensor, saved: Any) -> torch.Tensor:
        return grad


class LowFERNet(_BilinearKGNet):
    """LowFER's scoring network (module docs); ``U`` and ``V`` start uniform in ``[-1, 1]``."""

    def __init__(self, n_entities: int, n_relations: int, d_e: int, d_r: int, k: int, *, input_dropout: float = 0.0,
                 hidden_dropout1: float = 0.0, hidden_dropout2: float = 0.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(n_entities, n_relations, d_e, d_r, input_dropout, hidden_dropout1, hidden_dropout2)
        self.k = k
        self.hidden_width = k * d_e
        self.U = nn.Parameter(torch.empty(d_e, k * d_e))
        self.V = nn.Parameter(torch.empty(d_r, k * d_e))
        self._reset_embeddings(generator)
        nn.init.uniform_(self.U, -1.0, 1.0, generator=generator)
        nn.init.uniform_(self.V, -1.0, 1.0, generator=generator)

    def query(self, subjects: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        x = self.input_dropout(self.bn0(self.E(subjects)))
        z = lowfer_pool(x, self.R(relations), self.U, self.V, self.k, self.hidden_dropout1)
        z = torch.sign(z) * torch.sqrt(z.abs() + 1e-12)
        z = nn.functional.normalize(z, p=2.0, dim=-1)
        return self.hidden_dropout2(self.bn1(z))

    compiled_core = True   # on CPU with graphrec._ext: _compiled_core_forward / _compiled_core_backward

    def core_parameters(self) -> tuple[nn.Parameter, ...]:
        return self.U, self.V

    def core_forward(self, x: torch.Tensor, relations: torch.Tensor, R: torch.Tensor, mask: Any,
                     workspace: StepWorkspace) -> tuple[torch.Tensor, Any]:
        if isinstance(mask, _fused.PhiloxDropout):
            return self._compiled_core_forward(x, relations, R, mask, workspace)
        # A = x U and B = r V (masked in place) live in reused (b, k d_e) buffers
        b = x.shape[0]
        r = R.index_select(0, relations)
        A = torch.mm(x, self.U, out=workspace.buffer("A", b, (self.hidden_width,), x))
        B = torch.mm(r, self.V, out=workspace.buffer("B", b, (self.hidden_width,), x))
        if mask is not None:
            B.mul_(mask)
        product = torch.mul(A, B, out=workspace.buffer("product", b, (self.hidden_width,), x))
        return product.view(b, -1, self.k).sum(-1), (A, B, r)

    def core_backward(self, grad: torch.Tensor, saved: Any, x: torch.Tensor, relations: torch.Tensor,
                      R: torch.Tensor, mask: Any, workspace: StepWorkspace) -> tuple[torch.Tensor, ...]:
        if isinstance(mask, _fused.PhiloxDropout):
            return self._compiled_core_backward(grad, saved, x, R, mask, workspace)
        A, B, r = saved
        b = x.shape[0]
        g = grad.unsqueeze(-1)                                   # pooling backward: broadcast over each window
        dB = workspace.buffer("product", b, (self.hidden_width,), x)
        torch.mul(A.view(b, -1, self.k), g, out=dB.view(b, -1, self.k))
        if mask is not None:
            dB.mul_(mask)
        dA = B.view(b, -1, self.k).mul_(g).view(b, -1)           # B already holds the mask
        dR = torch.zeros_like(R).index_add_(0, relations, dB @ self.V.t())
        return dA @ self.U.t(), dR, x.t() @ dA, r.t() @ dB

    def _compiled_core_forward(self, x: torch.Tensor, relations: torch.Tensor, R: torch.Tensor,
                               mask: _fused.PhiloxDropout, workspace: StepWorkspace) -> tuple[torch.Tensor, Any]:
        # R_u V once per distinct relation u of the batch; the mask, Hadamard product and pooling
        # in one compiled pass that reads row i's relation row of R_u V (graphrec.kg._fused)
        b, width = x.shape[0], self.hidden_width
        distinct, row_of = torch.unique(relations, return_inverse=True)
        R_u = R.index_select(0, distinct)
        RV = torch.mm(R_u, self.V, out=workspace.buffer("RV", distinct.shape[0], (width,), x))
        A = torch.mm(x, self.U, out=workspace.buffer("A", b, (width,), x))
        keep = _fused.dropout_keep(workspace.buffer("keep", b, (width,), x, torch.uint8), mask)
        z = _fused.pool_forward(A, RV, row_of, keep, self.k, mask.scale, x.new_empty(b, x.shape[1]))
        return z, (A, RV, row_of, keep, distinct, R_u)

    def _compiled_core_backward(self, grad: torch.Tensor, saved: Any, x: torch.Tensor, R: torch.Tensor,
                                mask: _fused.PhiloxDropout, workspace: StepWorkspace) -> tuple[torch.Tensor, ...]:
        A, RV, row_of, keep, distinct, R_u = saved
        dRV = workspace.buffer("dRV", RV.shape[0], (self.hidden_width,), x)
        dA, dRV = _fused.pool_backward(grad, A, RV, row_of, keep, self.k, mask.scale, dRV)   # dA overwrites A
        dR = torch.zeros_like(R).index_copy_(0, distinct, dRV @ self.V.t())
        return dA @ self.U.t(), dR, x.t() @ dA, R_u.t() @ dRV

    def post_forward(self, z: torch.Tensor) -> tuple[torch.Tensor, Any]:
        # signed square root and L2 normalisation of the pooled vector
        sign = torch.sign(z)
        root = z.abs_().add_(1e-12).sqrt_()
        y = sign * root
        norm = torch.linalg.vector_norm(y, dim=-1, keepdim=True).clamp_min_(1e-12)
        out = y.div_(norm)
        return out, (sign, root, norm, out)

    def post_backward(self, grad: torch.Tensor, saved: Any) -> torch.Tensor:
        # every |y_i| >= 1e-6, so the norm exceeds normalize's 1e-12 floor and d out / d y is
        # (I - out out^T) / ||y||; d y / d z = sign(z)^2 / (2 sqrt(|z| + 1e-12)) (0 where z == 0)
        sign, root, norm, out = saved
        dot = (out * grad).sum(-1, keepdim=True)
        dy = grad.addcmul_(out, dot, value=-1.0).div_(norm)
        return dy.mul_(sign.abs()).div_(root).mul_(0.5)


class TuckERNet(_BilinearKGNet):
    """TuckER's scoring network (module docs); the core ``W`` starts uniform in ``[-1, 1]``."""

    def __init__(self, n_entities: int, n_relations: int, d_e: int, d_r: int, *, input_dropout: float = 0.0,
                 hidden_dropout1: float = 0.0, hidden_dropout2: float = 0.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(n_entities, n_relations, d_e, d_r, input_dropout, hidden_dropout1, hidden_dropout2)
        self.W = nn.Parameter(torch.empty(d_r, d_e, d_e))
        self.hidden_width = d_e * d_e
        self._reset_embeddings(generator)
        nn.init.uniform_(self.W, -1.0, 1.0, generator=generator)

    def query(self, subjects: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        x = self.input_dropout(self.bn0(self.E(subjects)))
        x = tucker_contract(x, self.R(relations), self.W, self.hidden_dropout1)
        return self.hidden_dropout2(self.bn1(x))

    def core_parameters(self) -> tuple[nn.Parameter, ...]:
        return (self.W,)

    def core_forward(self, x: torch.Tensor, relations: torch.Tensor, R: torch.Tensor, mask: Any,
                     workspace: StepWorkspace) -> tuple[torch.Tensor, Any]:
        # w = W x_1 r (masked in place) in a reused (b, d_e^2) buffer
        b, (d_r, d_e, _) = x.shape[0], self.W.shape
        r = R.index_select(0, relations)
        w = torch.mm(r, self.W.view(d_r, -1), out=workspace.buffer("w", b, (self.hidden_width,), x))
        if mask is not None:
            w.mul_(mask)
        return torch.bmm(x.unsqueeze(1), w.view(b, d_e, d_e)).squeeze(1), (w, r)

    def core_backward(self, grad: torch.Tensor, saved: Any, x: torch.Tensor, relations: torch.Tensor,
                      R: torch.Tensor, mask: Any, workspace: StepWorkspace) -> tuple[torch.Tensor, ...]:
        w, r = saved
        b, (d_r, d_e, _) = x.shape[0], self.W.shape
        dx = torch.bmm(w.view(b, d_e, d_e), grad.unsqueeze(2)).squeeze(2)
        dw = workspace.buffer("dw", b, (self.hidden_width,), x)
        torch.bmm(x.unsqueeze(2), grad.unsqueeze(1), out=dw.view(b, d_e, d_e))
        if mask is not None:
            dw.mul_(mask)
        dR = torch.zeros_like(R).index_add_(0, relations, dw @ self.W.view(d_r, -1).t())
        return dx, dR, (r.t() @ dw).view(d_r, d_e, d_e)
