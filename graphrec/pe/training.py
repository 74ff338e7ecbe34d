"""Training a graph-level model on lists of PyG graphs with the shared :class:`graphrec.train.Trainer`.

Used by the ``graph-regression`` bench task and ``benchmarks/bench_spe_zinc.py``. The official
SPE recipe: Adam (lr 1e-3, weight decay 3e-6, none on biases), L1 loss, the test score read at
the epoch of the best validation score. The official schedule (100 warm-up steps, then linear
decay to 0 per step) is replaced by a per-epoch warm-up and linear decay, since ``Trainer``
steps its scheduler once per epoch.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from graphrec.train import Trainer, TrainResult
from graphrec.train.batching import batch_bounds
from graphrec.utils.validation import check_device, check_int

if TYPE_CHECKING:
    import torch_geometric

__all__ = ["WarmupLinearDecay", "collate", "fit_graph_regressor", "graph_mae", "predict_graphs"]


class WarmupLinearDecay:
    """``LambdaLR`` factor: linear warm-up over ``warmup`` epochs, then linear decay to 0 at ``epochs``.

    A callable object rather than a closure so that ``LambdaLR.state_dict()`` records ``warmup``
    and ``epochs``: resuming a checkpoint with another schedule is then refused by the shared
    trainer's settings check instead of jumping to another learning rate.
    """

    def __init__(self, warmup: int, epochs: int) -> None:
        self.warmup = check_int(warmup, "warmup", low=0)
        self.epochs = check_int(epochs, "epochs", low=1)

    def __call__(self, epoch: int) -> float:
        return min(1.0, (epoch + 1) / (self.warmup + 1)) * max(0.0, 1.0 - epoch / self.epochs)


def collate(graphs: Sequence[Any]) -> "torch_geometric.data.Batch":
    """A PyG ``Batch`` of ``graphs``."""
    from torch_geometric.data import Batch

    return Batch.from_data_list(list(graphs))


def _batches(graphs: Sequence[Any], batch_size: int, generator: torch.Generator | None = None):
    """Batches of ``batch_size`` graphs (shuffled by ``generator`` if given); a last batch of a single
    graph joins the one before it, since training-mode batch norm after pooling needs two graphs."""
    if generator is None:
        order = torch.arange(len(graphs))
    else:
        order = torch.randperm(len(graphs), generator=generator, device=generator.device).cpu()
    bounds = batch_bounds(len(graphs), batch_size, min_rows=2)
    for start, stop in zip(bounds[:-1], bounds[1:]):
        yield collate([graphs[int(i)] for i in order[start:stop]])


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def predict_graphs(model: nn.Module, graphs: Sequence[Any], batch_size: int = 128) -> torch.Tensor:
    """Predictions (n_graphs, out_dims) in eval mode, on CPU."""
    was_training = model.training
    model.eval()
    device = _device_of(model)
    try:
        out = [model(batch.to(device)).cpu() for batch in _batches(graphs, batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out)


def graph_mae(model: nn.Module, graphs: Sequence[Any], batch_size: int = 128) -> float:
    """Mean absolute error of the first output against ``graph.y``."""
    pred = predict_graphs(model, graphs, batch_size)[:, 0]
    y = torch.cat([g.y.reshape(-1)[:1] for g in graphs]).to(pred.dtype)
    return float((pred - y).abs().mean())


def fit_graph_regressor(
    model: nn.Module,
    train: Sequence[Any],
    val: Sequence[Any],
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 3e-6,
    warmup_fraction: float = 0.25,
    random_state: Any = None,
    device: str | torch.device = "cpu",
    checkpoint_dir: str | os.PathLike | None = None,
    max_seconds: float | None = None,
    verbose: bool | int = False,
) -> TrainResult:
    """Train ``model`` (a graph -> (B, 1) regressor) with L1 loss, keeping the weights of the best ``val_mae``.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(batch)`` on a PyG ``Batch``; trained in place.
    train, val : sequences of PyG ``Data``
        Pre-transformed graphs with ``y`` (1,).
    epochs, batch_size : int
        A last batch of a single graph joins the one before it (batch norm needs two rows).
    lr, weight_decay : float
        Adam; biases get no weight decay.
    warmup_fraction : float
        Linear warm-up over this share of the epochs (at least one epoch; 0: none), then linear
        decay towards 0 at ``epochs``.
    random_state, device, checkpoint_dir, max_seconds, verbose
        Passed to :class:`graphrec.train.Trainer` (``checkpoint_dir`` makes the run resumable,
        ``max_seconds`` bounds one call's wall time).

    Returns
    -------
    TrainResult
        ``history`` has ``train_loss`` and ``val_mae`` per epoch.
    """
    epochs = check_int(epochs, "epochs", low=1)
    batch_size = check_int(batch_size, "batch_size", low=1)
    if len(train) == 0 or len(val) == 0:
        raise ValueError(f"train and val must hold graphs, got {len(train)} and {len(val)}")
    dev = check_device(device)
    model.to(dev)
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith("bias")], "weight_decay": weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith("bias")], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.Adam(groups, lr=lr)
    warmup = max(1, round(warmup_fraction * epochs)) if warmup_fraction > 0 else 0
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupLinearDecay(warmup, epochs))

    def loss_fn(m: nn.Module, batch) -> torch.Tensor:
        batch = batch.to(dev)
        return torch.nn.functional.l1_loss(m(batch)[:, 0], batch.y.reshape(-1).to(torch.get_default_dtype()))

    trainer = Trainer(
        model, optimizer, loss_fn, max_epochs=epochs, device=dev,
        eval_fn=lambda m: {"val_mae": graph_mae(m, val, batch_size)}, monitor="val_mae", mode="min",
        checkpoint_dir=checkpoint_dir, scheduler=scheduler, random_state=random_state, max_seconds=max_seconds,
        verbose=verbose,
    )
    return trainer.fit(lambda epoch, generator: _batches(train, batch_size, generator))
