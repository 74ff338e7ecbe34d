"""The one training loop every graphrec torch model uses.

``Trainer.fit`` runs epochs of ``loss_fn(model, batch)`` -> ``backward`` -> optional gradient
clipping -> ``optimizer.step``, steps the scheduler once per epoch, evaluates every
``eval_every`` epochs, keeps the best weights of a monitored metric with patience-based early
stopping (Prechelt, "Early Stopping - But When?", 1998), and can checkpoint after every epoch
and resume bit-for-bit. All randomness is drawn from ``random_state`` inside a forked torch RNG,
so the caller's global RNG is untouched.

The pieces a data-parallel (DDP) subclass needs to change are separate methods:
:meth:`Trainer.train_epoch` (reduce the loss across ranks), :meth:`Trainer.evaluate` (rank 0),
and :meth:`Trainer.save_checkpoint` (rank 0); ``train_batches`` receives the epoch and the
generator, which is enough to shard a shared permutation.
"""
from __future__ import annotations

import copy
import logging
import math
import numbers
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from graphrec.train.batching import move_to_device
from graphrec.train.checkpoint import (
    CHECKPOINT_FILENAME,
    CheckpointError,
    check_state_dict_compatible,
    check_training_settings_match,
    load_checkpoint,
    save_checkpoint,
)
from graphrec.train.early_stopping import EarlyStopping
from graphrec.train.rng import capture_rng_state, isolated_rng, restore_rng_state
from graphrec.utils.progress import progress
from graphrec.utils.validation import check_device, check_random_state, torch_generator

__all__ = ["TrainResult", "Trainer"]

logger = logging.getLogger(__name__)

#: Keys of a history record that ``eval_fn`` may not return.
RESERVED_KEYS = ("epoch", "train_loss", "seconds")

LossFn = Callable[[nn.Module, Any], torch.Tensor]
EvalFn = Callable[[nn.Module], Mapping[str, float]]
BatchFn = Callable[[int, torch.Generator], Iterable[Any]]


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    Attributes
    ----------
    history
        One dict per epoch run (including epochs restored from a checkpoint): ``epoch``
        (0-based), ``train_loss`` (mean batch loss), the ``eval_fn`` metrics on evaluation
        epochs, and ``seconds`` (wall time of the epoch, evaluation included).
    best_epoch, best_score
        Epoch and value of the best monitored score; ``None`` without ``monitor`` or when no
        evaluation produced a finite score.
    stopped_early
        Whether ``patience`` evaluations in a row brought no improvement (training stopped there,
        possibly at the last epoch).
    epochs_run
        Number of epochs completed, ``len(history)``.
    stopped_by_time
        Whether ``max_seconds`` ran out before ``max_epochs`` (training stopped after the epoch
        in flight; the best weights are loaded as usual).
    """

    history: list[dict[str, float]]
    best_epoch: int | None
    best_score: float | None
    stopped_early: bool
    epochs_run: int
    stopped_by_time: bool = False


@dataclass
class _RunState:
    """The mutable state of one ``fit`` that a checkpoint carries besides model/optimizer/scheduler."""

    tracker: EarlyStopping | None
    epochs_done: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_state: dict[str, Any] | None = None
    stopped_early: bool = False
    stopped_by_time: bool = False


def _cpu_copy(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Detached CPU copies of a ``state_dict`` (non-tensor entries deep-copied)."""
    return {
        key: value.detach().to("cpu", copy=True) if isinstance(value, torch.Tensor) else copy.deepcopy(value)
        for key, value in state_dict.items()
    }


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class Trainer:
    """Train a ``torch.nn.Module`` with mini-batches, evaluation, early stopping and checkpoints.

    Parameters
    ----------
    model
        The module to train; moved to ``device`` in place.
    optimizer
        A ``torch.optim.Optimizer`` over ``model``'s parameters.
    loss_fn
        ``loss_fn(model, batch) -> Tensor`` of shape ``()``; ``batch`` is already on ``device``.
    max_epochs
        Number of epochs (>= 1), counting epochs restored from a checkpoint.
    device
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"`` or a ``torch.device``.
    eval_fn
        ``eval_fn(model) -> {name: float}``, run under ``torch.no_grad()`` with ``model.eval()``
        every ``eval_every`` epochs (after epochs ``eval_every - 1, 2 * eval_every - 1, ...``).
    monitor
        Key of the score that selects the best weights and drives early stopping: a key of
        ``eval_fn``'s result, or ``"train_loss"``. ``None``: no best-weight tracking.
    mode
        ``"max"`` if a larger ``monitor`` is better, ``"min"`` otherwise.
    patience
        Stop after this many evaluations in a row without improvement (``None``: never).
    eval_every
        Evaluate every this many epochs (>= 1).
    checkpoint_dir
        Folder for ``last.pt``, written atomically after every epoch. ``None``: no checkpoints.
    resume
        If ``checkpoint_dir`` holds a checkpoint, continue from it (model, optimizer, scheduler,
        history, early-stopping state and RNG states; the checkpoint's RNG states take the place
        of ``random_state``); otherwise start over and overwrite it. The optimizer and scheduler
        must have the checkpoint's settings (``max_epochs`` may grow): a changed learning rate,
        decay, weight decay, ... is an error, not silently replaced by the checkpoint's; so is
        another ``monitor`` or ``mode`` (the early-stopping state holds the best score of the
        checkpoint's).
    grad_clip
        Max L2 norm of all gradients together (``clip_grad_norm_``); ``None``: no clipping.
    scheduler
        A learning-rate scheduler, stepped once per epoch. ``ReduceLROnPlateau`` is stepped with
        the monitored score on evaluation epochs (with ``train_loss`` every epoch if no monitor).
    random_state
        ``None`` / int / numpy ``Generator``: seeds the torch CPU RNG (and the CUDA RNG of
        ``device``) inside ``fit`` and the shuffling generator passed to ``train_batches``.
        Only torch RNGs are controlled; draw randomness from them, not from numpy / ``random``.
    max_seconds
        Wall-time budget of one ``fit`` call in seconds: no new epoch starts once it is spent
        (the epoch in flight finishes, is evaluated and checkpointed). ``None``: no budget. A
        resumed run gets a fresh budget, so a long run can be spread over bounded calls.
    verbose
        Falsy: silent. ``True`` / 1: a progress bar over epochs showing the loss and the
        monitored metric. >= 2: also a bar over the batches of each epoch. Per-epoch lines are
        logged at INFO level through ``logging`` regardless.

    Examples
    --------
    >>> from graphrec.train import Trainer, tensor_batches
    >>> model = torch.nn.Linear(3, 1)
    >>> x, y = torch.randn(64, 3), torch.randn(64, 1)
    >>> trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1),
    ...                   lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1]),
    ...                   max_epochs=2, random_state=0, verbose=False)
    >>> result = trainer.fit(lambda epoch, g: tensor_batches(x, y, batch_size=16, generator=g))
    >>> result.epochs_run
    2
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: LossFn,
        *,
        max_epochs: int,
        device: str | torch.device = "cpu",
        eval_fn: EvalFn | None = None,
        monitor: str | None = None,
        mode: str = "max",
        patience: int | None = None,
        eval_every: int = 1,
        checkpoint_dir: str | os.PathLike | None = None,
        resume: bool = True,
        grad_clip: float | None = None,
        scheduler: Any = None,
        random_state: Any = None,
        max_seconds: float | None = None,
        verbose: bool | int = True,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable as loss_fn(model, batch), got {type(loss_fn).__name__}")
        if eval_fn is not None and not callable(eval_fn):
            raise TypeError(f"eval_fn must be callable as eval_fn(model) or None, got {type(eval_fn).__name__}")
        if not _is_int(max_epochs) or max_epochs < 1:
            raise ValueError(f"max_epochs must be a positive integer, got {max_epochs!r}")
        if not _is_int(eval_every) or eval_every < 1:
            raise ValueError(f"eval_every must be a positive integer, got {eval_every!r}")
        if monitor is not None and not isinstance(monitor, str):
            raise TypeError(f"monitor must be a metric name (str) or None, got {type(monitor).__name__}")
        if monitor is not None and eval_fn is None and monitor != "train_loss":
            raise ValueError(f"monitor={monitor!r} needs an eval_fn that returns it (or use monitor='train_loss')")
        if patience is not None and monitor is None:
            raise ValueError(f"patience={patience!r} needs monitor, the metric to watch; got monitor=None")
        EarlyStopping(mode=mode, patience=patience)  # validates mode and patience
        if grad_clip is not None and (
            isinstance(grad_clip, bool)
            or not isinstance(grad_clip, numbers.Real)
            or not 0 < grad_clip < math.inf
        ):
            raise ValueError(f"grad_clip must be a positive finite max-norm or None, got {grad_clip!r}")
        if scheduler is not None and not all(
            callable(getattr(scheduler, name, None)) for name in ("step", "state_dict", "load_state_dict")
        ):
            raise TypeError(
                "scheduler must be a torch learning-rate scheduler (with step, state_dict, load_state_dict) "
                f"or None, got {type(scheduler).__name__}"
            )
        if checkpoint_dir is not None and not isinstance(checkpoint_dir, (str, os.PathLike)):
            raise TypeError(f"checkpoint_dir must be a path or None, got {type(checkpoint_dir).__name__}")
        if checkpoint_dir is not None and Path(checkpoint_dir).exists() and not Path(checkpoint_dir).is_dir():
            raise NotADirectoryError(f"checkpoint_dir={str(checkpoint_dir)!r} is a file; expected a folder "
                                     "(found before training rather than at the first checkpoint)")
        if max_seconds is not None and (
            isinstance(max_seconds, bool) or not isinstance(max_seconds, numbers.Real) or not max_seconds > 0
        ):
            raise ValueError(f"max_seconds must be a positive number of seconds or None, got {max_seconds!r}")
        if not isinstance(verbose, (bool, numbers.Integral)):
            raise TypeError(f"verbose must be a bool or an int, got {type(verbose).__name__}")
        check_random_state(random_state)  # validates; fit draws its seeds afresh
        self.device = check_device(device)
        if self.device.type not in ("cpu", "cuda"):
            raise ValueError(f"device must be a CPU or CUDA device, got {device!r}")

        self.model = model.to(self.device)
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.max_epochs = int(max_epochs)
        self.eval_fn = eval_fn
        self.monitor = monitor
        self.mode = mode
        self.patience = patience
        self.eval_every = int(eval_every)
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.resume = bool(resume)
        self.grad_clip = None if grad_clip is None else float(grad_clip)
        self.scheduler = scheduler
        self.random_state = random_state
        self.max_seconds = None if max_seconds is None else float(max_seconds)
        self.verbose = verbose

    @property
    def checkpoint_path(self) -> Path | None:
        """``checkpoint_dir / "last.pt"``, or ``None`` without a ``checkpoint_dir``."""
        return None if self.checkpoint_dir is None else self.checkpoint_dir / CHECKPOINT_FILENAME

    # ------------------------------------------------------------------ the loop
    def fit(self, train_batches: BatchFn) -> TrainResult:
        """Train for up to ``max_epochs`` epochs and load the best weights into ``model``.

        Parameters
        ----------
        train_batches
            ``train_batches(epoch, generator) -> iterable of batches`` for 0-based ``epoch``;
            shuffle with ``generator`` (a ``torch.Generator`` on ``device``, e.g. through
            :func:`graphrec.train.tensor_batches`) so that runs are reproducible and resumable.
            A batch is a tensor or a tuple / list / dict nesting tensors; it is moved to
            ``device`` before ``loss_fn`` sees it.

        Returns
        -------
        TrainResult

        Raises
        ------
        FloatingPointError
            If a batch loss is NaN or infinite (the message names epoch and batch).
        CheckpointError
            If resuming from an unreadable checkpoint, one that does not fit the model, or one
            trained with other optimizer or scheduler settings (learning rate, decay, ...).
        """
        if not callable(train_batches):
            raise TypeError(
                f"train_batches must be callable as train_batches(epoch, generator), got {type(train_batches).__name__}"
            )
        rng = check_random_state(self.random_state)
        seed = int(rng.integers(0, 2**63 - 1))
        with isolated_rng(seed, self.device):
            generator = torch_generator(rng, self.device)
            path = self.checkpoint_path
            if path is not None and self.resume and path.exists():
                run = self._resume(path, generator)
            else:
                run = _RunState(tracker=None if self.monitor is None else EarlyStopping(self.mode, self.patience))
            self._run_epochs(train_batches, generator, run)
        if run.best_state is not None:
            self.model.load_state_dict(run.best_state)
        return TrainResult(
            history=run.history,
            best_epoch=None if run.tracker is None else run.tracker.best_epoch,
            best_score=None if run.tracker is None else run.tracker.best_score,
            stopped_early=run.stopped_early,
            epochs_run=len(run.history),
            stopped_by_time=run.stopped_by_time,
        )

    def _run_epochs(self, train_batches: BatchFn, generator: torch.Generator, run: _RunState) -> None:
        if run.stopped_early or run.epochs_done >= self.max_epochs:
            return
        deadline = None if self.max_seconds is None else time.perf_counter() + self.max_seconds
        epochs = range(run.epochs_done, self.max_epochs)
        with progress(epochs, verbose=self.verbose, initial=run.epochs_done, total=self.max_epochs,
                      desc="train", unit="epoch") as bar:
            for epoch in bar:
                start = time.perf_counter()
                record: dict[str, float] = {"epoch": epoch}
                record["train_loss"] = self.train_epoch(train_batches(epoch, generator), epoch)
                evaluated = (epoch + 1) % self.eval_every == 0
                if evaluated and self.eval_fn is not None:
                    record.update(self.evaluate())
                if evaluated and run.tracker is not None:
                    if run.tracker.update(self._monitored(record), epoch):
                        run.best_state = _cpu_copy(self.model.state_dict())
                    run.stopped_early = run.tracker.should_stop
                self._step_scheduler(record, evaluated)
                record["seconds"] = time.perf_counter() - start
                run.history.append(record)
                run.epochs_done = epoch + 1
                self._report(bar, run)
                if self.checkpoint_path is not None:
                    self.save_checkpoint(self._checkpoint_state(run, generator))
                if run.stopped_early:
                    logger.info(
                        "early stopping after epoch %d: %s has not improved for %d evaluations (best %.6g at epoch %d)",
                        epoch, self.monitor, run.tracker.wait, run.tracker.best_score, run.tracker.best_epoch,
                    )
                    break
                if deadline is not None and time.perf_counter() >= deadline and epoch + 1 < self.max_epochs:
                    run.stopped_by_time = True
                    logger.info("max_seconds=%g spent after epoch %d of %d", self.max_seconds, epoch, self.max_epochs)
                    break

    def train_epoch(self, batches: Iterable[Any], epoch: int) -> float:
        """One pass of optimisation over ``batches``; returns the mean batch loss.

        Batch losses stay on the device until the end of the epoch (one host sync per epoch),
        where non-finite values are reported with the index of the first bad batch.
        """
        try:
            iterator = iter(batches)
        except TypeError:
            raise TypeError(
                f"train_batches(epoch, generator) must return an iterable of batches, got {type(batches).__name__}"
            ) from None
        self.model.train()
        losses: list[torch.Tensor] = []
        for batch in progress(iterator, verbose=self.verbose >= 2, desc=f"epoch {epoch}", unit="batch",
                              total=len(batches) if hasattr(batches, "__len__") else None):
            losses.append(self._train_step(batch, epoch, len(losses)))
        if not losses:
            raise ValueError(f"train_batches({epoch}, generator) yielded no batches; expected at least one")
        stacked = self._batch_losses(torch.stack(losses).double())
        finite = torch.isfinite(stacked)
        if not bool(finite.all()):
            bad = int((~finite).nonzero()[0, 0])
            raise FloatingPointError(
                f"loss is {stacked[bad].item()} at epoch {epoch}, batch {bad}; lower the learning rate, "
                "set grad_clip, or check the data and loss_fn for invalid values"
            )
        return float(stacked.mean())

    def _train_step(self, batch: Any, epoch: int, index: int) -> torch.Tensor:
        """Forward, backward, clip and step on one batch; returns the detached batch loss."""
        batch = move_to_device(batch, self.device)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model, batch)
        self._check_loss(loss, epoch, index)
        loss.backward()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        return loss.detach()

    def _batch_losses(self, losses: torch.Tensor) -> torch.Tensor:
        """The epoch's batch losses as recorded (a data-parallel trainer combines its ranks' here)."""
        return losses

    @staticmethod
    def _check_loss(loss: Any, epoch: int, batch: int) -> None:
        if not isinstance(loss, torch.Tensor):
            raise TypeError(
                f"loss_fn must return a torch.Tensor, got {type(loss).__name__} at epoch {epoch}, batch {batch}"
            )
        if loss.dim() != 0:
            raise ValueError(
                f"loss_fn must return a scalar tensor of shape (), got shape {tuple(loss.shape)} "
                f"at epoch {epoch}, batch {batch}; reduce it, e.g. with .mean()"
            )
        if not loss.requires_grad:
            raise ValueError(
                f"the loss at epoch {epoch}, batch {batch} does not require grad; "
                "loss_fn must compute it from the model's parameters"
            )

    def evaluate(self) -> dict[str, float]:
        """Run ``eval_fn(model)`` under ``torch.no_grad()`` in eval mode; return its metrics as floats."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                metrics = self.eval_fn(self.model)
        finally:
            self.model.train(was_training)
        if not isinstance(metrics, Mapping):
            raise TypeError(f"eval_fn must return a dict of metric name -> float, got {type(metrics).__name__}")
        out: dict[str, float] = {}
        for name, value in metrics.items():
            if not isinstance(name, str) or name in RESERVED_KEYS:
                raise ValueError(f"eval_fn returned metric name {name!r}; expected a str other than {RESERVED_KEYS}")
            try:
                out[name] = float(value)
            except (TypeError, ValueError):
                raise TypeError(
                    f"eval_fn returned {name}={value!r} ({type(value).__name__}); expected a number"
                ) from None
        return out

    def _monitored(self, record: Mapping[str, float]) -> float:
        if self.monitor not in record:
            available = sorted(k for k in record if k != "epoch")
            raise ValueError(
                f"monitor={self.monitor!r} is not among the metrics of epoch {record['epoch']}: {available}"
            )
        return record[self.monitor]

    def _step_scheduler(self, record: Mapping[str, float], evaluated: bool) -> None:
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            if self.monitor is None:
                self.scheduler.step(record["train_loss"])
            elif evaluated:
                self.scheduler.step(record[self.monitor])
        else:
            self.scheduler.step()

    def _report(self, bar: Any, run: _RunState) -> None:
        record = run.history[-1]
        postfix = {"loss": f"{record['train_loss']:.4g}"}
        if self.monitor is not None and self.monitor != "train_loss":
            last = next((r[self.monitor] for r in reversed(run.history) if self.monitor in r), None)
            if last is not None:
                postfix[self.monitor] = f"{last:.4g}"
        bar.set_postfix(postfix, refresh=False)
        if logger.isEnabledFor(logging.INFO):
            metrics = " ".join(f"{k}={v:.6g}" for k, v in record.items() if k not in ("epoch", "seconds"))
            logger.info("epoch %d (%d/%d): %s (%.2fs)", record["epoch"], run.epochs_done, self.max_epochs,
                        metrics, record["seconds"])

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint_state(self, run: _RunState, generator: torch.Generator) -> dict[str, Any]:
        return {
            "epochs_done": run.epochs_done,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "history": run.history,
            "early_stopping": None if run.tracker is None else run.tracker.state_dict(),
            "best_state": run.best_state,
            "stopped_early": run.stopped_early,
            "monitor": self.monitor,
            "mode": self.mode,
            "rng": capture_rng_state(generator, self.device),
            "device_type": self.device.type,
        }

    def save_checkpoint(self, state: Mapping[str, Any]) -> None:
        """Write ``state`` to :attr:`checkpoint_path` atomically."""
        save_checkpoint(state, self.checkpoint_path)

    def _resume(self, path: Path, generator: torch.Generator) -> _RunState:
        state = load_checkpoint(path)
        where = f"checkpoint file {str(path)!r}"
        if state["device_type"] != self.device.type:
            raise CheckpointError(
                f"{where} was written on a {state['device_type']} device; resume on {state['device_type']}, "
                f"not {self.device.type}"
            )
        check_state_dict_compatible(state["model"], self.model, path)
        if (state["scheduler"] is None) != (self.scheduler is None):
            raise CheckpointError(
                f"{where} was written {'without' if state['scheduler'] is None else 'with'} a scheduler, "
                f"but this Trainer has {'one' if self.scheduler is not None else 'none'}"
            )
        if (state["early_stopping"] is None) != (self.monitor is None):
            raise CheckpointError(
                f"{where} was written {'without' if state['early_stopping'] is None else 'with'} a monitor, "
                f"but this Trainer has monitor={self.monitor!r}"
            )
        # The early-stopping state holds a best score of the checkpoint's monitor, compared in its mode;
        # checkpoints written before these keys were saved are not checked.
        saved_monitor, saved_mode = state.get("monitor", self.monitor), state.get("mode", self.mode)
        if self.monitor is not None and (saved_monitor, saved_mode) != (self.monitor, self.mode):
            raise CheckpointError(
                f"{where} was written with monitor={saved_monitor!r}, mode={saved_mode!r}, but this Trainer has "
                f"monitor={self.monitor!r}, mode={self.mode!r}: its best score would be compared with another "
                "metric or direction; use another checkpoint_dir or resume=False"
            )
        check_training_settings_match(state["optimizer"], self.optimizer, state["scheduler"], self.scheduler, path)
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            restore_rng_state(state["rng"], generator, self.device)
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{where} could not be restored ({type(exc).__name__}: {exc})") from exc
        tracker = None
        if self.monitor is not None:
            tracker = EarlyStopping(self.mode, self.patience)
            tracker.load_state_dict(state["early_stopping"])
        logger.info("resuming from %s after %d epoch(s)", path, state["epochs_done"])
        return _RunState(
            tracker=tracker,
            epochs_done=int(state["epochs_done"]),
            history=list(state["history"]),
            best_state=state["best_state"],
            stopped_early=bool(state["stopped_early"]),
        )
