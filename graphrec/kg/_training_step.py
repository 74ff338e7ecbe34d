"""One training step of LowFER / TuckER as a single autograd node: forward, loss and hand-written backward.

The step computes the same function as the networks' modules followed by
:func:`graphrec.kg.loss.smoothed_bce` (tests compare losses and gradients with autograd), with
fewer operations and no fresh large tensors:

* **LowFER on CPU: compiled core and Philox masks** (:mod:`graphrec.kg._fused`, when
  ``graphrec._ext`` is built): the three masks come from one Philox key (:func:`draw_compiled_masks`),
  the hidden mask is drawn byte-wide inside the compiled passes, mask + Hadamard product + k-sum
  pooling run as one pass forward and one backward, and ``r V`` is computed once per distinct
  relation of the batch. Otherwise (TuckER, CUDA, explicit masks, module missing) the torch path:
* **one random draw for the three dropouts**: a single ``uniform_`` fills a ``(b, w_0 + w_1 + w_2)``
  buffer whose column blocks become the input, hidden-1 and hidden-2 masks ``1[u < 1 - p] / (1 - p)``
  (two in-place operations for all three). Each entry is an independent Bernoulli(``1 - p``)
  variable up to the 24-bit grid of float32 uniforms (as in CUDA dropout), the distribution of
  ``nn.Dropout``'s masks; the stream of random numbers differs, so trajectories are equal in
  distribution, not bit-identical, to the module path. On CPU ``uniform_`` is 2-3x faster than
  ``bernoulli_``, which drew the masks before;
* **loss without targets and with a closed-form gradient**: the logits gradient of the smoothed
  BCE is ``(sigmoid(l) - 1 / n - (1 - eps) y) / (b n)`` (no ``1 / n`` when ``eps = 0``); it is
  formed in place in the logits buffer (one sigmoid, one subtraction, one scatter at the positive
  positions), the scale is folded into the two products that consume it, and no ``b x n``
  target is built;
* **reused buffers**: the logits, the dropout noise and the ``(b, k d_e)`` / ``(b, d_e^2)``
  intermediates of the bilinear core live in a :class:`StepWorkspace` sized for the largest
  batch seen (smaller batches use its first rows); on CPU each fresh multi-megabyte tensor costs
  page faults, on CUDA each saved autograd node costs host time;
* batch norm runs through ``native_batch_norm`` and its backward (running statistics and
  ``num_batches_tracked`` updated as by ``nn.BatchNorm1d``), embeddings through ``index_select``
  forward and ``index_add_`` backward.

A buffer is reused by the next step, so the backward of a step must run before the next step
with the same workspace; a generation counter turns a violation into an error instead of wrong
gradients. The network supplies its bilinear core (``core_forward`` / ``core_backward``) and an
optional ``post_forward`` / ``post_backward`` (LowFER's signed square root and L2 normalisation).

References: Amin et al., ICML 2020 (LowFER); Balazevic et al., EMNLP 2019 (TuckER, loss and label
smoothing of the official code).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

from graphrec.kg import _fused

__all__ = ["StepWorkspace", "draw_compiled_masks", "draw_dropout_masks", "training_step"]


class StepWorkspace:
    """Named reusable buffers (first dimension = batch rows, sliced) and cached constants."""

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}
        self._constants: dict[Any, torch.Tensor] = {}
        self.generation = 0

    def clear(self) -> None:
        """Free every buffer and constant (they are rebuilt on the next step)."""
        self._buffers.clear()
        self._constants.clear()

    def __getstate__(self) -> dict:
        return {}  # scratch space: a pickled or copied network gets an empty workspace

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def buffer(self, name: str, rows: int, tail: tuple[int, ...], like: torch.Tensor,
               dtype: torch.dtype | None = None) -> torch.Tensor:
        """A ``(rows, *tail)`` view of buffer ``name`` on ``like``'s device, of ``like``'s dtype unless
        ``dtype`` is given (reallocated when too small or of another kind)."""
        dtype = like.dtype if dtype is None else dtype
        buf = self._buffers.get(name)
        if (buf is None or buf.shape[0] < rows or tuple(buf.shape[1:]) != tuple(tail) or buf.dtype != dtype
                or buf.device != like.device):
            buf = torch.empty((rows, *tail), dtype=dtype, device=like.device)
            self._buffers[name] = buf
        return buf[:rows]

    def constant(self, key: Any, make: Callable[[], torch.Tensor], like: torch.Tensor) -> torch.Tensor:
        """``make()`` moved to ``like``'s device and dtype, built once per ``key``."""
        full_key = (key, like.dtype, like.device)
        value = self._constants.get(full_key)
        if value is None:
            value = make().to(dtype=like.dtype, device=like.device)
            self._constants[full_key] = value
        return value


def draw_dropout_masks(batch: int, widths: Sequence[int], probs: Sequence[float], workspace: StepWorkspace,
                       like: torch.Tensor) -> list[torch.Tensor | None]:
    """Inverted-dropout masks ``1[u < 1 - p_i] / (1 - p_i)`` of shapes ``(batch, widths[i])`` from one draw.

    Parameters
    ----------
    batch : int, rows of every mask.
    widths, probs : per mask, its width and its dropout probability ``p_i`` in ``[0, 1)``.
    workspace : holds the noise buffer (the masks are views of it, valid until the next draw).
    like : tensor giving the dtype and device.

    Returns
    -------
    One ``(batch, widths[i])`` tensor per mask, ``None`` where ``p_i == 0``. Entries are independent;
    each is ``1 / (1 - p_i)`` with probability ``1 - p_i`` (up to the float uniform's grid) and ``0`` otherwise.
    """
    active = [i for i, p in enumerate(probs) if p > 0]
    masks: list[torch.Tensor | None] = [None] * len(probs)
    if not active:
        return masks
    total = sum(widths[i] for i in active)

    def rows(value: Callable[[float], float]) -> torch.Tensor:
        return torch.cat([torch.full((widths[i],), value(probs[i]), dtype=torch.float64) for i in active])

    key = tuple((widths[i], probs[i]) for i in active)
    keep = workspace.constant(("keep", key), lambda: rows(lambda p: 1.0 - p), like)
    scale = workspace.constant(("scale", key), lambda: rows(lambda p: 1.0 / (1.0 - p)), like)
    noise = workspace.buffer("noise", batch, (total,), like)
    noise.uniform_().lt_(keep).mul_(scale)
    start = 0
    for i in active:
        masks[i] = noise[:, start : start + widths[i]]
        start += widths[i]
    return masks


def draw_compiled_masks(batch: int, widths: Sequence[int], probs: Sequence[float], workspace: StepWorkspace,
                        like: torch.Tensor) -> list[torch.Tensor | _fused.PhiloxDropout | None]:
    """The three dropout masks of a step from one Philox key, for a network with a compiled core.

    Mask ``i`` is Philox stream ``i`` (:mod:`graphrec.kg._fused`). The input and output masks
    (``i = 0, 2``) are scaled ``(batch, widths[i])`` masks in ``workspace`` as from
    :func:`draw_dropout_masks` (``None`` where ``p_i == 0``); the hidden mask is returned as a
    :class:`~graphrec.kg._fused.PhiloxDropout` that the compiled core draws itself, byte-wide,
    inside its passes.
    """
    key = _fused.draw_key()
    masks: list[torch.Tensor | _fused.PhiloxDropout | None] = []
    for stream, (width, p) in enumerate(zip(widths, probs)):
        drop = _fused.PhiloxDropout(key, stream, float(p))
        if stream == 1:
            masks.append(drop)
        elif p > 0:
            masks.append(_fused.dropout_mask(workspace.buffer(f"mask{stream}", batch, (width,), like), drop))
        else:
            masks.append(None)
    return masks


def _batch_norm(x: torch.Tensor, bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training-mode batch norm of ``x`` with ``bn``'s parameters, updating its running statistics."""
    bn.num_batches_tracked.add_(1)
    return torch.native_batch_norm(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, True, bn.momentum,
                                   bn.eps)


def _batch_norm_backward(grad: torch.Tensor, x: torch.Tensor, bn: nn.BatchNorm1d, mean: torch.Tensor,
                         invstd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.ops.aten.native_batch_norm_backward(grad, x, bn.weight, bn.running_mean, bn.running_var, mean,
                                                     invstd, True, bn.eps, [True, True, True])


class _TrainingStep(torch.autograd.Function):
    """``smoothed_bce(net(subjects, relations), rows, cols, eps)`` with given dropout masks (module docs)."""

    @staticmethod
    def forward(ctx: Any, net: nn.Module, masks: Sequence[torch.Tensor | _fused.PhiloxDropout | None],
                subjects: torch.Tensor, relations: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, eps: float,
                E: torch.Tensor, R: torch.Tensor, g0: torch.Tensor, b0: torch.Tensor, g1: torch.Tensor,
                b1: torch.Tensor, *core: torch.Tensor) -> torch.Tensor:
        ws: StepWorkspace = net._step_workspace
        ws.generation += 1
        m0, m1, m2 = masks
        b, n = subjects.shape[0], E.shape[0]
        e = E.index_select(0, subjects)
        x0, mean0, invstd0 = _batch_norm(e, net.bn0)
        x = x0 if m0 is None else x0.mul_(m0)
        z, core_saved = net.core_forward(x, relations, R, m1, ws)
        y, post_saved = net.post_forward(z)
        h, mean1, invstd1 = _batch_norm(y, net.bn1)
        q = h if m2 is None else h.mul_(m2)
        logits = torch.mm(q, E.t(), out=ws.buffer("logits", b, (n,), q))
        flat = torch.add(cols, rows, alpha=n)                        # positions of the positives in logits
        # sum(BCE) = sum softplus(l) - (1 / n) sum l - (1 - eps) sum_positives l   (see graphrec.kg.loss;
        # the middle term only when eps > 0: targets (1 - eps) y + 1 / n, as in the official code)
        terms = torch.logaddexp(logits, ws.constant("zero", lambda: torch.zeros(()), q),
                                out=ws.buffer("softplus", b, (n,), q))
        if eps > 0:
            terms.add_(logits, alpha=-1.0 / n)
        total = torch.add(terms.sum(), torch.take(logits, flat).sum(), alpha=-(1.0 - eps))
        ctx.save_for_backward(subjects, relations, flat, E, R, e, x, y, q, mean0, invstd0, mean1, invstd1, *core)
        ctx.net, ctx.masks, ctx.eps, ctx.generation = net, masks, eps, ws.generation
        ctx.core_saved, ctx.post_saved, ctx.n_core = core_saved, post_saved, len(core)
        return total.div_(b * n)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        net = ctx.net
        ws: StepWorkspace = net._step_workspace
        if ws.generation != ctx.generation:
            raise RuntimeError(
                "the KG training step's buffers were reused by another training step before this backward; "
                "run backward after each training step"
            )
        subjects, relations, flat, E, R, e, x, y, q, mean0, invstd0, mean1, invstd1, *_ = ctx.saved_tensors
        m0, m1, m2 = ctx.masks
        b, n, eps = subjects.shape[0], E.shape[0], ctx.eps
        # d loss / d logits, up to the factor grad / (b n), in the logits buffer
        g_logits = ws.buffer("logits", b, (n,), q).sigmoid_()
        if eps > 0:
            g_logits.sub_(1.0 / n)
        neg = ws.constant(("positive", eps), lambda: torch.tensor(-(1.0 - eps)), q)
        g_logits.view(-1).index_add_(0, flat, neg.expand(flat.shape[0]))
        scale = grad / (b * n)
        dq = torch.mm(g_logits, E).mul_(scale)
        dE = torch.mm(g_logits.t(), q.mul(scale))
        dh = dq if m2 is None else dq.mul_(m2)
        dy, dg1, db1 = _batch_norm_backward(dh, y, net.bn1, mean1, invstd1)
        dz = net.post_backward(dy, ctx.post_saved)
        dx, dR, *dcore = net.core_backward(dz, ctx.core_saved, x, relations, R, m1, ws)
        if m0 is not None:
            dx = dx.mul_(m0)
        de, dg0, db0 = _batch_norm_backward(dx, e, net.bn0, mean0, invstd0)
        dE.index_add_(0, subjects, de)
        return (None, None, None, None, None, None, None, dE, dR, dg0, db0, dg1, db1, *dcore)


def training_step(net: nn.Module, subjects: torch.Tensor, relations: torch.Tensor, rows: torch.Tensor,
                  cols: torch.Tensor, label_smoothing: float,
                  masks: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
    """The training loss of ``net`` on a 1-N batch, as one autograd node.

    Parameters
    ----------
    net : a ``LowFERNet`` or ``TuckERNet`` (uses its embeddings, batch norms, dropouts and core).
    subjects, relations : (b,) int64 query ids.
    rows, cols : (p,) int64, positions of the positive labels in the ``b x n_entities`` label matrix.
    label_smoothing : ``eps`` of :func:`graphrec.kg.loss.smoothed_bce`.
    masks : three scaled dropout masks ``(b, d_e)``, ``(b, w_1)``, ``(b, d_e)`` (``None`` entries:
        no dropout); by default drawn from ``net``'s dropout rates by :func:`draw_compiled_masks`
        where ``net`` has a compiled core that serves its parameters (LowFER on CPU), else by
        :func:`draw_dropout_masks`.

    Returns
    -------
    Scalar loss equal to ``smoothed_bce(logits, rows, cols, label_smoothing)`` of the network with
    these masks; ``backward`` fills the gradients of all parameters and the batch norms' running
    statistics are updated, as in a training-mode forward of the modules.
    """
    if subjects.shape[0] < 2:
        raise ValueError(f"a training batch needs at least 2 queries for batch norm, got {subjects.shape[0]}")
    if masks is None:
        d_e = net.E.weight.shape[1]
        compiled = net.compiled_core and _fused.available(net.E.weight)
        masks = (draw_compiled_masks if compiled else draw_dropout_masks)(
            subjects.shape[0], (d_e, net.hidden_width, d_e),
            (net.input_dropout.p, net.hidden_dropout1.p, net.hidden_dropout2.p), net._step_workspace, net.E.weight,
        )
    return _TrainingStep.apply(net, tuple(masks), subjects, relations, rows, cols, float(label_smoothing),
                               net.E.weight, net.R.weight, net.bn0.weight, net.bn0.bias, net.bn1.weight, net.bn1.bias,
                               *net.core_parameters())
