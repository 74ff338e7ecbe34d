"""FLoRA: low-rank adaptation in a Tucker core space, for linear and convolution weights.

A frozen weight ``W0`` of shape ``(d_1, ..., d_N)`` (``(d_out, d_in)`` for ``nn.Linear``,
``(c_out, c_in / groups, k_h, k_w)`` for ``nn.Conv2d``) is adapted by a Tucker tensor

    ``ΔW = s · G ×_1 U_1 ×_2 U_2 ... ×_N U_N``,

with a trainable core ``G`` of shape ``(r_1, ..., r_N)`` and factors ``U_n`` ``(d_n, r_n)``, so the
update keeps the N-d structure of the weight (a conv kernel is not flattened to a matrix as in LoRA).
``G`` starts at zero, so the adapted layer starts equal to the frozen one. Trainable parameters:
``prod(r_n) + sum(d_n r_n)``; the 2-D case is LoRA with an ``r_out x r_in`` core, ``U_out G U_in^T``.

Reference: C. Si et al., "FLoRA: low-rank core space for N-dimensional parameter spaces",
arXiv 2405.14739 (official code github.com/SJTU-DeepVisionLab/FLoRA; its init: ``G = 0``, ``U_n``
Kaiming-normal with ``a = sqrt(3)``). Modes here follow PyTorch's weight layout ``[out, in, ...]``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from graphrec.adapters.base import AdapterLayer, wrap
from graphrec.core.tensor import tucker_to_tensor
from graphrec.utils.validation import check_float, check_int, torch_generator


class _TuckerDelta(AdapterLayer):
    """Shared part of the FLoRA layers: frozen ``weight`` / ``bias`` buffers, ``core`` and ``factors``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, ranks: int | Sequence[int], scale: float,
                 random_state: Any) -> None:
        super().__init__()
        shape = tuple(weight.shape)
        ranks_t = tuple(ranks) if isinstance(ranks, Sequence) else (ranks,) * len(shape)
        if len(ranks_t) != len(shape):
            raise ValueError(
                f"ranks must give one rank per weight mode ({len(shape)} for shape {shape}), got {ranks!r}"
            )
        self.ranks = tuple(check_int(r, f"ranks[{n}]", low=1, high=d) for n, (r, d) in enumerate(zip(ranks_t, shape)))
        self.scale = check_float(scale, "scale", low=0.0, low_open=True)
        self.register_buffer("weight", weight.detach().clone())
        self.register_buffer("bias", None if bias is None else bias.detach().clone())
        gen = torch_generator(random_state, "cpu")
        # Kaiming-normal with a = sqrt(3): std = sqrt(2 / (1 + 3)) / sqrt(fan_in = r_n)
        self.factors = nn.ParameterList(
            nn.Parameter((torch.randn(d, r, generator=gen, dtype=weight.dtype) / math.sqrt(2 * r)).to(weight.device))
            for d, r in zip(shape, self.ranks)
        )
        self.core = nn.Parameter(torch.zeros(self.ranks, dtype=weight.dtype, device=weight.device))

    def delta(self) -> torch.Tensor:
        """The update ``ΔW = s · G ×_1 U_1 ... ×_N U_N``, shape of ``weight``."""
        return self.scale * tucker_to_tensor(self.core, list(self.factors))

    def merged_weight(self) -> torch.Tensor:
        """``W0 + ΔW``, shape of ``weight``."""
        return self.weight + self.delta()


class FLoRALinear(_TuckerDelta):
    """FLoRA on a frozen ``nn.Linear``: ``y = W0 x + s U_out G U_in^T x + b``.

    Parameters
    ----------
    base : nn.Linear with weight ``W0`` (d_out, d_in); weight and bias are frozen (copied to buffers)
    ranks : int or (r_out, r_in), with ``1 <= r_out <= d_out`` and ``1 <= r_in <= d_in``
    scale : float > 0, the scale ``s`` of the update
    random_state : seed of the factor init (the core starts at zero)

    Notes
    -----
    Trainable: ``core`` (r_out, r_in), ``factors[0]`` = ``U_out`` (d_out, r_out),
    ``factors[1]`` = ``U_in`` (d_in, r_in). The forward never forms ``ΔW``.
    """

    def __init__(
        self, base: nn.Linear, ranks: int | Sequence[int], scale: float = 1.0, *, random_state: Any = None
    ) -> None:
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be an nn.Linear, got {type(base).__name__}")
        super().__init__(base.weight, base.bias, ranks, scale, random_state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (..., d_in) -> (..., d_out)."""
        u_out, u_in = self.factors
        return F.linear(x, self.weight, self.bias) + self.scale * ((x @ u_in) @ self.core.T) @ u_out.T


class FLoRAConv2d(_TuckerDelta):
    """FLoRA on a frozen ``nn.Conv2d``: the convolution with kernel ``W0 + s G ×_1 U_1 ×_2 U_2 ×_3 U_3 ×_4 U_4``.

    Parameters
    ----------
    base : nn.Conv2d with weight ``W0`` (c_out, c_in / groups, k_h, k_w) and ``padding_mode="zeros"``;
        stride, padding, dilation and groups are kept; weight and bias are frozen
    ranks : int or (r_out, r_in, r_h, r_w), each in ``[1, size of its mode]`` (the official default
        for conv is ``(16, 16, 2, 2)``)
    scale : float > 0, the scale ``s`` of the update
    random_state : seed of the factor init (the core starts at zero)

    Notes
    -----
    Trainable: ``core`` (r_out, r_in, r_h, r_w) and ``factors[n]`` (d_n, r_n). :meth:`to_plain`
    returns an ``nn.Conv2d``, so :func:`graphrec.adapters.merge` folds it back.
    """

    plain_type = nn.Conv2d

    def __init__(
        self, base: nn.Conv2d, ranks: int | Sequence[int], scale: float = 1.0, *, random_state: Any = None
    ) -> None:
        if not isinstance(base, nn.Conv2d):
            raise TypeError(f"base must be an nn.Conv2d, got {type(base).__name__}")
        if base.padding_mode != "zeros":
            raise ValueError(f"only padding_mode='zeros' is supported, got {base.padding_mode!r}")
        super().__init__(base.weight, base.bias, ranks, scale, random_state)
        self.in_channels, self.out_channels = base.in_channels, base.out_channels
        self.kernel_size, self.stride, self.padding = base.kernel_size, base.stride, base.padding
        self.dilation, self.groups = base.dilation, base.groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (batch, c_in, H, W) -> (batch, c_out, H', W')."""
        return F.conv2d(x, self.merged_weight(), self.bias, self.stride, self.padding, self.dilation, self.groups)

    def to_linear(self) -> nn.Linear:
        """Not defined for a convolution; use :meth:`to_plain`."""
        raise TypeError("FLoRAConv2d merges into an nn.Conv2d; use to_plain()")

    @torch.no_grad()
    def to_plain(self) -> nn.Conv2d:
        """A plain ``nn.Conv2d`` with kernel ``W0 + ΔW`` and the same outputs."""
        w = self.merged_weight().detach()
        out = nn.Conv2d(
            self.in_channels, self.out_channels, self.kernel_size, stride=self.stride, padding=self.padding,
            dilation=self.dilation, groups=self.groups, bias=self.bias is not None, device=w.device, dtype=w.dtype,
        )
        out.weight.copy_(w)
        if self.bias is not None:
            out.bias.copy_(self.bias)
        return out


def apply_flora(
    model: nn.Module,
    ranks: int | Sequence[int],
    *,
    conv_ranks: int | Sequence[int] | None = None,
    scale: float = 1.0,
    target: Callable[[str, nn.Module], bool] | None = None,
    random_state: Any = None,
) -> list[str]:
    """Replace (in place) the layers of ``model`` selected by ``target(name, module)`` by FLoRA
    adapters, freeze everything else, and return the replaced names: every ``nn.Linear`` becomes a
    :class:`FLoRALinear` with ``ranks``, and, if ``conv_ranks`` is given, every ``nn.Conv2d`` a
    :class:`FLoRAConv2d` with ``conv_ranks``. Each layer's factors get their own seed from ``random_state``.
    """
    gen = torch_generator(random_state, "cpu")

    def adapter(layer: nn.Module) -> AdapterLayer:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
        if isinstance(layer, nn.Conv2d):
            return FLoRAConv2d(layer, conv_ranks, scale, random_state=seed)
        return FLoRALinear(layer, ranks, scale, random_state=seed)

    return wrap(model, adapter, target, layer_type=nn.Linear if conv_ranks is None else (nn.Linear, nn.Conv2d))
