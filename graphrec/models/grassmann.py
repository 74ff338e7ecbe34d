"""Grassmann flows: a causal sequence layer built from Plücker coordinates of token-pair 2-planes.

For hidden states ``h_t`` (``d``) each causal Grassmann mixing layer does (Zhang et al., 2025):

1. reduce ``z_t = W_red h_t + b`` (``r`` dimensions);
2. for every offset ``delta`` in ``offsets`` with ``t - delta >= 0``, embed the 2-plane
   ``span(z_t, z_{t-delta})`` of ``R^r`` by its Plücker coordinates
   ``p_ij = z_{t,i} z_{t-delta,j} - z_{t,j} z_{t-delta,i}`` (``i < j``, ``r(r-1)/2`` numbers), a point
   of the Grassmannian ``Gr(2, r)`` up to scale and sign, and L2-normalise it;
3. ``g_t = W_plu mean_delta(p_hat) + b`` (the mean over the valid offsets; ``W_plu`` is shared, so
   this equals the mean of the per-offset projections). Since ``p`` is bilinear the mean is computed
   as one Plücker vector ``p(z_t, w_t)``, ``w_t = mean_delta z_{t-delta} / ||p(z_t, z_{t-delta})||``,
   and ``W_plu p`` as the antisymmetric bilinear form ``z_t^T S w_t`` (exact, and much faster than
   gathering the coordinates of every offset);
4. gate ``alpha = sigmoid(W_gate [h_t; g_t])`` and output ``LN(alpha * h_t + (1 - alpha) * g_t)``.

Position ``t`` reads only ``z_t`` and ``z_{t-delta}``: the layer is causal by construction and its
cost is linear in the sequence length. :class:`GrassmannLM` stacks pre-LN blocks (mixer + 4d FFN,
each with a residual) into a character-level language model; :class:`CausalTransformerLM` is the
attention baseline with the same embedding, blocks of ``torch.nn.TransformerEncoderLayer`` under a
causal mask, and the same head. :class:`CharLanguageModel` trains either one on a text.

References
----------
Z. Zhang et al. "Attention Is Not What You Need: Grassmann Flows as an Attention-Free Alternative
for Sequence Modeling", arXiv:2512.19428, 2025.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.train import Trainer
from graphrec.utils.validation import check_choice, check_device, check_float, check_int, check_random_state

__all__ = [
    "plucker",
    "CausalGrassmannMixing",
    "GrassmannLM",
    "CausalTransformerLM",
    "CharLanguageModel",
]

logger = logging.getLogger(__name__)


def plucker(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Plücker coordinates of the 2-plane ``span(u, v)``: ``p_ij = u_i v_j - u_j v_i`` for ``i < j``.

    Parameters
    ----------
    u, v : Tensor, shape (..., r)
        Spanning vectors (broadcastable leading dimensions, ``r >= 2``).

    Returns
    -------
    Tensor, shape (..., r(r-1)/2)
        Coordinates ordered like ``torch.triu_indices(r, r, 1)``. They satisfy the Plücker
        relations ``p_ij p_kl - p_ik p_jl + p_il p_jk = 0`` and change by the factor
        ``det [[a, b], [c, d]]`` under the change of basis ``(a u + b v, c u + d v)``.

    Examples
    --------
    >>> plucker(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]))
    tensor([1., 0., 0.])
    """
    if not isinstance(u, torch.Tensor) or not isinstance(v, torch.Tensor):
        raise TypeError(f"u and v must be torch tensors, got {type(u).__name__} and {type(v).__name__}")
    if u.ndim == 0 or v.ndim == 0 or u.shape[-1] != v.shape[-1] or u.shape[-1] < 2:
        raise ValueError(
            f"u and v must share a last dimension r >= 2, got shapes {tuple(u.shape)} and {tuple(v.shape)}"
        )
    i, j = torch.triu_indices(u.shape[-1], u.shape[-1], 1, device=u.device)
    return u[..., i] * v[..., j] - u[..., j] * v[..., i]


def _check_offsets(offsets: Any) -> tuple[int, ...]:
    if isinstance(offsets, (str, bytes)) or not isinstance(offsets, Sequence) or len(offsets) == 0:
        raise ValueError(f"offsets must be a non-empty sequence of positive integers, got {offsets!r}")
    values = tuple(check_int(o, "offsets[i]", low=1) for o in offsets)
    if len(set(values)) != len(values):
        raise ValueError(f"offsets must not repeat, got {values}")
    return values


class CausalGrassmannMixing(nn.Module):
    """Causal Grassmann mixing of a sequence ``(batch, length, d_model)`` (see the module docstring).

    Parameters
    ----------
    d_model : int
        Width ``d`` of the hidden states.
    rank : int
        Reduced dimension ``r`` (Plücker vectors have ``r(r-1)/2`` entries); the paper uses 32.
    offsets : sequence of int
        Look-back offsets ``delta`` pairing ``z_t`` with ``z_{t-delta}``; paper: (1, 2, 4, 8, 12, 16).
    eps : float
        Added to the Plücker norm before dividing (a zero plane stays zero).

    Notes
    -----
    Shapes: input ``(B, L, d)`` -> output ``(B, L, d)``. At ``t = 0`` no offset is valid and
    ``g_0`` is the bias of ``W_plu``.
    """

    def __init__(self, d_model: int, rank: int = 32, offsets: Sequence[int] = (1, 2, 4, 8, 12, 16), eps: float = 1e-8):
        super().__init__()
        d_model = check_int(d_model, "d_model", low=1)
        rank = check_int(rank, "rank", low=2)
        self.offsets = _check_offsets(offsets)
        self.eps = check_float(eps, "eps", low=0.0, low_open=True)
        self.reduce = nn.Linear(d_model, rank)
        self.plucker_proj = nn.Linear(rank * (rank - 1) // 2, d_model)
        self.gate = nn.Linear(2 * d_model, d_model)
        self.norm = nn.LayerNorm(d_model)

    def plucker_weight(self) -> torch.Tensor:
        """``W_plu`` as antisymmetric bilinear forms ``S`` ``(d_model, r, r)``: ``u^T S_c v = (W_plu p(u, v))_c``."""
        rank = self.reduce.out_features
        i, j = torch.triu_indices(rank, rank, 1, device=self.plucker_proj.weight.device)
        weight = self.plucker_proj.weight
        s = weight.new_zeros(weight.shape[0], rank, rank)
        s[:, i, j] = weight
        s[:, j, i] = -weight
        return s

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if h.ndim != 3:
            raise ValueError(f"h must have shape (batch, length, d_model), got {tuple(h.shape)}")
        length = h.shape[1]
        z = self.reduce(h)
        # p is bilinear, so mean_delta p(z_t, z_{t-delta}) / ||.|| = p(z_t, w_t) with
        # w_t = mean_delta z_{t-delta} / ||p(z_t, z_{t-delta})||: one Plücker map per position, not one per offset.
        # ||p(u, v)||^2 = |u|^2 |v|^2 - (u.v)^2 (Lagrange's identity).
        sq = z.pow(2).sum(-1)
        w = torch.zeros_like(z)
        count = z.new_zeros(length)
        for delta in self.offsets:
            if delta >= length:
                continue
            dot = (z[:, delta:] * z[:, :-delta]).sum(-1)
            norm_sq = (sq[:, delta:] * sq[:, :-delta] - dot.pow(2)).clamp(min=0.0)
            # sqrt has an infinite derivative at 0 (a degenerate plane: z_t parallel to z_{t-delta},
            # e.g. a repeated hidden state), which would turn every gradient into NaN; the inner
            # where keeps the value and gives that point a zero gradient instead.
            positive = norm_sq > 0
            norm = torch.where(positive, torch.where(positive, norm_sq, 1.0).sqrt(), 0.0)
            w[:, delta:] += z[:, :-delta] / (norm + self.eps)[..., None]
            count[delta:] += 1
        w = w / count.clamp(min=1.0)[None, :, None]
        outer = (z[..., :, None] * w[..., None, :]).flatten(-2)
        g = outer @ self.plucker_weight().flatten(1).T + self.plucker_proj.bias
        alpha = torch.sigmoid(self.gate(torch.cat([h, g], dim=-1)))
        return self.norm(alpha * h + (1.0 - alpha) * g)


class _GrassmannBlock(nn.Module):
    """Pre-LN block: ``h + mix(LN(h))`` then ``h + FFN(LN(h))`` with a ``4 d`` GELU FFN."""

    def __init__(self, d_model: int, rank: int, offsets: Sequence[int], dim_feedforward: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.mix = CausalGrassmannMixing(d_model, rank, offsets)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, dim_feedforward), nn.GELU(), nn.Linear(dim_feedforward, d_model))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.mix(self.norm1(h))
        return h + self.ffn(self.norm2(h))


class _CausalLM(nn.Module):
    """Token + learned position embedding -> blocks -> LN -> vocabulary logits."""

    def __init__(self, vocab_size: int, d_model: int, max_len: int, blocks: nn.ModuleList):
        super().__init__()
        self.vocab_size = check_int(vocab_size, "vocab_size", low=1)
        self.max_len = check_int(max_len, "max_len", low=1)
        self.embed = nn.Embedding(vocab_size, d_model)
        self.position = nn.Embedding(max_len, d_model)
        self.blocks = blocks
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def _run_blocks(self, h: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            h = block(h)
        return h

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, L, vocab_size)`` for integer ``tokens`` ``(B, L)``, ``L <= max_len``."""
        if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2:
            raise ValueError(f"tokens must be a 2-d tensor (batch, length), got {getattr(tokens, 'shape', tokens)!r}")
        if tokens.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"tokens must be an integer tensor, got dtype {tokens.dtype}")
        if tokens.shape[1] > self.max_len or tokens.shape[1] == 0:
            raise ValueError(f"sequence length must be in [1, {self.max_len}], got {tokens.shape[1]}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size):
            raise ValueError(f"token ids must be in [0, {self.vocab_size - 1}]")
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        h = self.embed(tokens) + self.position(pos)[None]
        return self.head(self.norm(self._run_blocks(h)))


class GrassmannLM(_CausalLM):
    """Attention-free causal language model of ``n_layers`` Grassmann blocks.

    Parameters
    ----------
    vocab_size : int
        Number of token ids.
    d_model : int, default 128
        Width of the embeddings and hidden states.
    n_layers : int, default 4
        Number of pre-LN blocks (mixer + GELU FFN, each with a residual).
    rank : int, default 32
        Reduced dimension ``r`` of every mixing layer (see :class:`CausalGrassmannMixing`).
    offsets : sequence of int, default (1, 2, 4, 8, 12, 16)
        Look-back offsets of every mixing layer (see :class:`CausalGrassmannMixing`).
    dim_feedforward : int, optional
        Hidden width of each FFN (default ``4 d_model``).
    max_len : int, default 256
        Longest sequence ``L`` (size of the learned position embedding).

    Notes
    -----
    ``forward(tokens (B, L) int) -> logits (B, L, vocab_size)``; logits at ``t`` depend on
    ``tokens[:, :t+1]`` only.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 128,
        n_layers: int = 4,
        rank: int = 32,
        offsets: Sequence[int] = (1, 2, 4, 8, 12, 16),
        dim_feedforward: int | None = None,
        max_len: int = 256,
    ):
        ff = 4 * d_model if dim_feedforward is None else check_int(dim_feedforward, "dim_feedforward", low=1)
        blocks = nn.ModuleList(_GrassmannBlock(d_model, rank, offsets, ff) for _ in range(check_int(n_layers, "n_layers", low=1)))
        super().__init__(vocab_size, d_model, max_len, blocks)


class CausalTransformerLM(_CausalLM):
    """Causal Transformer baseline: pre-LN ``nn.TransformerEncoderLayer`` blocks under a causal mask.

    Same embedding, final LN and head as :class:`GrassmannLM`; ``n_heads`` attention heads, GELU
    FFN of width ``dim_feedforward`` (default ``4 d_model``), no dropout.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 128,
        n_layers: int = 4,
        n_heads: int = 4,
        dim_feedforward: int | None = None,
        max_len: int = 256,
    ):
        ff = 4 * d_model if dim_feedforward is None else check_int(dim_feedforward, "dim_feedforward", low=1)
        n_heads = check_int(n_heads, "n_heads", low=1)
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, n_heads, ff, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
            for _ in range(check_int(n_layers, "n_layers", low=1))
        )
        super().__init__(vocab_size, d_model, max_len, blocks)

    def _run_blocks(self, h: torch.Tensor) -> torch.Tensor:
        mask = nn.Transformer.generate_square_subsequent_mask(h.shape[1], device=h.device, dtype=h.dtype)
        for block in self.blocks:
            h = block(h, src_mask=mask, is_causal=True)
        return h


# ---------------------------------------------------------------------------- estimator
def _check_text(text: Any, name: str, min_len: int) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    if len(text) < min_len:
        raise ValueError(f"{name} has {len(text)} characters; expected at least {min_len} (context_length + 1)")
    return text


class CharLanguageModel(GraphrecEstimator):
    """Character-level causal language model: Grassmann flows or the Transformer baseline.

    ``fit(text)`` builds the vocabulary (sorted distinct characters) and trains with
    :class:`graphrec.train.Trainer` on random windows of ``context_length + 1`` characters
    (AdamW, cross-entropy on every position); ``perplexity(text)`` evaluates on consecutive
    windows.

    Parameters
    ----------
    architecture : {'grassmann', 'transformer'}
    d_model, n_layers : int
    rank : int
        Grassmann reduced dimension ``r``.
    offsets : tuple of int
        Grassmann look-back offsets.
    n_heads : int
        Transformer heads.
    dim_feedforward : int or None
        FFN width (default ``4 d_model``); set it to size-match the two architectures.
    context_length : int
        Training / evaluation window ``L``.
    batch_size, steps_per_epoch, n_epochs : int
        ``n_epochs * steps_per_epoch`` optimiser steps of ``batch_size`` windows.
    lr, weight_decay : float
        AdamW settings (per-epoch cosine decay to ``0.1 lr``).
    grad_clip : float
    random_state, device, verbose

    Attributes
    ----------
    vocab_ : str
        Sorted distinct training characters (token ``i`` is ``vocab_[i]``).
    module_ : GrassmannLM or CausalTransformerLM
    n_parameters_ : int
    history_ : list of dict
        Trainer history (``train_loss`` per epoch, mean cross-entropy in nats).

    Examples
    --------
    >>> lm = CharLanguageModel(d_model=16, n_layers=1, rank=4, offsets=(1, 2), context_length=16,
    ...                        batch_size=8, steps_per_epoch=5, n_epochs=1, random_state=0, verbose=False)
    >>> lm.fit("abcab" * 40).perplexity("abcab" * 10) < 5
    True
    """

    def __init__(
        self,
        architecture: str = "grassmann",
        *,
        d_model: int = 128,
        n_layers: int = 4,
        rank: int = 32,
        offsets: tuple[int, ...] = (1, 2, 4, 8, 12, 16),
        n_heads: int = 4,
        dim_feedforward: int | None = None,
        context_length: int = 128,
        batch_size: int = 32,
        steps_per_epoch: int = 100,
        n_epochs: int = 10,
        lr: float = 3e-3,
        weight_decay: float = 0.01,
        grad_clip: float = 1.0,
        random_state: Any = None,
        device: Any = "cpu",
        verbose: bool | int = False,
    ):
        self.architecture = architecture
        self.d_model = d_model
        self.n_layers = n_layers
        self.rank = rank
        self.offsets = offsets
        self.n_heads = n_heads
        self.dim_feedforward = dim_feedforward
        self.context_length = context_length
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.n_epochs = n_epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _build(self, vocab_size: int) -> _CausalLM:
        check_choice(self.architecture, "architecture", ("grassmann", "transformer"))
        d = check_int(self.d_model, "d_model", low=1)
        layers = check_int(self.n_layers, "n_layers", low=1)
        ff = None if self.dim_feedforward is None else check_int(self.dim_feedforward, "dim_feedforward", low=1)
        length = check_int(self.context_length, "context_length", low=1)
        if self.architecture == "grassmann":
            return GrassmannLM(vocab_size, d, layers, check_int(self.rank, "rank", low=2), _check_offsets(self.offsets), ff, length)
        return CausalTransformerLM(vocab_size, d, layers, self.n_heads, ff, length)

    def fit(self, text: str, y: Any = None) -> "CharLanguageModel":
        """Train on ``text`` (a str of at least ``context_length + 2`` characters); returns ``self``."""
        length = check_int(self.context_length, "context_length", low=1)
        text = _check_text(text, "text", length + 2)
        batch = check_int(self.batch_size, "batch_size", low=1)
        steps = check_int(self.steps_per_epoch, "steps_per_epoch", low=1)
        epochs = check_int(self.n_epochs, "n_epochs", low=1)
        lr = check_float(self.lr, "lr", low=0.0, low_open=True)
        wd = check_float(self.weight_decay, "weight_decay", low=0.0)
        clip = check_float(self.grad_clip, "grad_clip", low=0.0, low_open=True)
        device = check_device(self.device)
        rng = check_random_state(self.random_state)
        vocab = "".join(sorted(set(text)))
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(int(rng.integers(0, 2**63 - 1)))
            module = self._build(len(vocab))
        self.vocab_ = vocab
        data = self._encode(text).to(device)
        optimizer = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=wd)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=0.1 * lr)

        def batches(epoch: int, generator: torch.Generator):
            starts = torch.randint(0, data.shape[0] - length - 1, (steps, batch), generator=generator, device=generator.device)
            offsets = torch.arange(length + 1, device=data.device)
            for row in starts.to(data.device):
                yield data[row[:, None] + offsets]

        def loss_fn(model: nn.Module, window: torch.Tensor) -> torch.Tensor:
            logits = model(window[:, :-1])
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), window[:, 1:].reshape(-1))

        trainer = Trainer(module, optimizer, loss_fn, max_epochs=epochs, device=device, grad_clip=clip,
                          scheduler=scheduler, random_state=rng, verbose=self.verbose)
        result = trainer.fit(batches)
        self.module_ = module.eval()
        self.n_parameters_ = sum(p.numel() for p in module.parameters())
        self.history_ = result.history
        logger.info("%s LM: %d parameters, final train loss %.4f", self.architecture, self.n_parameters_, result.history[-1]["train_loss"])
        return self

    def _encode(self, text: str) -> torch.Tensor:
        index = {c: i for i, c in enumerate(self.vocab_)}
        unknown = sorted(set(text) - index.keys())
        if unknown:
            raise ValueError(f"text contains characters not seen in fit: {unknown[:10]!r}")
        return torch.tensor([index[c] for c in text], dtype=torch.long)

    @torch.no_grad()
    def log_likelihood(self, text: str) -> tuple[float, int]:
        """Summed natural-log likelihood of ``text`` and the number of predicted characters.

        ``text`` is cut into consecutive windows of ``context_length + 1`` characters (the
        remainder is dropped); within a window character ``t`` is predicted from the ones before it.
        """
        self._check_is_fitted()
        length = self.context_length
        tokens = self._encode(_check_text(text, "text", length + 1))
        n = (tokens.shape[0] - 1) // length
        device = next(self.module_.parameters()).device
        inputs = tokens[: n * length].view(n, length)
        targets = tokens[1 : n * length + 1].view(n, length)
        total = 0.0
        for start in range(0, n, 64):
            logits = self.module_(inputs[start : start + 64].to(device))
            total -= float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets[start : start + 64].reshape(-1).to(device), reduction="sum"))
        return total, n * length

    def perplexity(self, text: str) -> float:
        """``exp(-mean log-likelihood per character)`` of ``text`` (see :meth:`log_likelihood`)."""
        total, count = self.log_likelihood(text)
        return float(np.exp(-total / count))


def _markov_text(seed: int) -> tuple[str]:
    rng = np.random.default_rng(seed)
    return ("".join(rng.choice(list("abcd "), size=300)),)


register_estimator(
    "CharLanguageModel",
    EstimatorSpec(
        factory=lambda: CharLanguageModel(d_model=8, n_layers=1, rank=3, offsets=(1, 2), context_length=8, batch_size=4,
                                          steps_per_epoch=3, n_epochs=1, random_state=0),
        make_input=_markov_text,
        output=lambda est, args: np.array([est.perplexity(args[0])]),
        bad_inputs={
            "not a string": lambda: ([1, 2, 3],),
            "too short": lambda: ("abc",),
        },
        fitted_method="perplexity",
    ),
)
