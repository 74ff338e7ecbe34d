"""The interface every adapter layer shares: wrap a frozen layer, merge back to a plain layer, unmerge.

An :class:`AdapterLayer` holds a frozen copy of the layer it adapts (``weight`` and ``bias`` buffers)
and trainable adapter parameters, and can always express itself as one dense weight
(:meth:`AdapterLayer.merged_weight`), so a trained model exports to plain ``nn.Linear`` layers with the
same outputs. :func:`wrap` swaps selected linear layers of a model for adapters (freezing every other
parameter), :func:`merge` swaps the adapters for plain layers and returns them, :func:`unmerge` puts them
back to continue training.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class AdapterLayer(nn.Module):
    """Base class of adapters on an ``nn.Linear`` with weight (d_out, d_in).

    Subclasses register the frozen ``weight`` / ``bias`` buffers and implement
    :meth:`merged_weight`; :meth:`to_linear` then folds the adapter into a plain layer.
    """

    weight: torch.Tensor
    bias: torch.Tensor | None
    #: the plain layer type :meth:`to_plain` returns (adapters on convolutions override it)
    plain_type: type[nn.Module] = nn.Linear

    def merged_weight(self) -> torch.Tensor:
        """The dense adapted weight, shape (d_out, d_in)."""
        raise NotImplementedError

    def merged_bias(self) -> torch.Tensor | None:
        """The adapted bias, shape (d_out,) or None; the frozen bias unless the adapter changes it."""
        return self.bias

    @torch.no_grad()
    def to_linear(self) -> nn.Linear:
        """A plain ``nn.Linear`` whose outputs equal this adapter's (up to rounding)."""
        w = self.merged_weight().detach()
        b = self.merged_bias()
        out = nn.Linear(w.shape[1], w.shape[0], bias=b is not None, device=w.device, dtype=w.dtype)
        out.weight.copy_(w)
        if b is not None:
            out.bias.copy_(b.detach())
        return out

    def to_plain(self) -> nn.Module:
        """The plain :attr:`plain_type` layer this adapter merges into (:meth:`to_linear` by default)."""
        return self.to_linear()


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def wrap(
    model: nn.Module,
    adapter: Callable[[nn.Linear], AdapterLayer],
    target: Callable[[str, nn.Linear], bool] | None = None,
    *,
    layer_type: type[nn.Module] | tuple[type[nn.Module], ...] = nn.Linear,
) -> list[str]:
    """Replace (in place) each ``nn.Linear`` of ``model`` selected by ``target(name, module)`` with
    ``adapter(module)``, freeze every parameter outside the adapters, and return the replaced names.

    ``adapter`` is e.g. ``functools.partial(DoRALinear, rank=8)``; ``target`` defaults to all linear
    layers. ``layer_type`` selects another kind of layer (e.g. ``nn.Conv2d`` for
    :class:`~graphrec.adapters.flora.FLoRAConv2d`). Raises ``ValueError`` if nothing matched or if
    ``model`` itself was selected (a bare layer cannot be replaced in place: call ``adapter(model)``).
    """
    names = [n for n, m in model.named_modules() if isinstance(m, layer_type) and (target is None or target(n, m))]
    if not names:
        types = layer_type if isinstance(layer_type, tuple) else (layer_type,)
        raise ValueError(f"target matched no {' / '.join('nn.' + t.__name__ for t in types)} layer of model")
    if "" in names:
        raise ValueError(
            f"target selected the model itself (a bare nn.{type(model).__name__}); wrap replaces layers inside "
            "a model in place, so build the adapter directly, e.g. adapter(model)"
        )
    for p in model.parameters():
        p.requires_grad_(False)
    for name in names:
        layer = adapter(model.get_submodule(name))
        if not isinstance(layer, AdapterLayer):
            raise TypeError(f"adapter must build an AdapterLayer, got {type(layer).__name__}")
        _set_submodule(model, name, layer)
    return names


def merge(model: nn.Module) -> dict[str, AdapterLayer]:
    """Replace (in place) every :class:`AdapterLayer` of ``model`` with its plain layer (``nn.Linear``,
    or the adapter's :attr:`~AdapterLayer.plain_type`, via :meth:`AdapterLayer.to_plain`); return the
    adapters by name, for :func:`unmerge`."""
    adapters = {n: m for n, m in model.named_modules() if isinstance(m, AdapterLayer)}
    if not adapters:
        raise ValueError("model has no AdapterLayer to merge")
    if "" in adapters:
        raise ValueError(
            f"model itself is an AdapterLayer ({type(model).__name__}); merge replaces layers inside a model "
            "in place, so call model.to_plain() instead"
        )
    for name, layer in adapters.items():
        _set_submodule(model, name, layer.to_plain())
    return adapters


def unmerge(model: nn.Module, adapters: dict[str, AdapterLayer]) -> None:
    """Put the adapters returned by :func:`merge` back into ``model`` (in place)."""
    for name, layer in adapters.items():
        if not isinstance(model.get_submodule(name), layer.plain_type):
            plain = layer.plain_type.__name__
            raise ValueError(f"module {name!r} of model is not the merged nn.{plain}; cannot unmerge")
        _set_submodule(model, name, layer)
