"""Tests for graphrec.train: the shared Trainer loop, tensor_batches, early stopping, checkpoints."""
from __future__ import annotations

import logging
from collections import namedtuple

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from graphrec.train import (
    CheckpointError,
    EarlyStopping,
    Trainer,
    TrainResult,
    move_to_device,
    tensor_batches,
)

CPU = torch.device("cpu")
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")),
]


# ---------------------------------------------------------------------------- helpers
def regression_data(n: int = 256, d: int = 3, seed: int = 0, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = x @ np.array([1.5, -2.0, 0.5])[:d] + 0.3 + 0.1 * rng.normal(size=n)
    return (torch.tensor(x, dtype=torch.float32, device=device),
            torch.tensor(y[:, None], dtype=torch.float32, device=device))


def mse(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return F.mse_loss(model(x), y)


class NoisyNet(nn.Module):
    """Uses dropout and randn in forward, so results depend on the torch RNG of the model's device."""

    def __init__(self, d: int = 3) -> None:
        super().__init__()
        self.hidden = nn.Linear(d, 8)
        self.drop = nn.Dropout(0.3)
        self.out = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(torch.relu(self.hidden(x)))
        if self.training:
            h = h + 0.01 * torch.randn_like(h)
        return self.out(h)


def fresh_noisy(seed: int = 0) -> NoisyNet:
    """A NoisyNet whose initial weights come from ``seed`` without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # torch.manual_seed would also reseed CUDA
        return NoisyNet()


def batches_of(x: torch.Tensor, y: torch.Tensor, batch_size: int = 32):
    return lambda epoch, generator: tensor_batches(x, y, batch_size=batch_size, generator=generator)


def noisy_trainer(model: nn.Module, lr: float = 0.01, weight_decay: float = 0.0, scheduler: str | None = "step",
                  gamma: float = 0.5, step_size: int = 3, **kwargs) -> Trainer:
    """Adam with a StepLR ("step"), ReduceLROnPlateau ("plateau") or no scheduler (None)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedulers = {
        "step": lambda: torch.optim.lr_scheduler.StepLR(opt, step_size=step_size, gamma=gamma),
        "plateau": lambda: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=gamma, patience=0),
        None: lambda: None,
    }
    kwargs.setdefault("random_state", 7)
    kwargs.setdefault("verbose", False)
    return Trainer(model, opt, mse, scheduler=schedulers[scheduler](), **kwargs)


def scripted_eval(scores: list[float], snapshots: list[dict[str, torch.Tensor]]):
    """eval_fn returning the next scripted score and recording the weights it saw."""
    calls = iter(scores)

    def eval_fn(model: nn.Module) -> dict[str, float]:
        assert not model.training and not torch.is_grad_enabled()
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"score": next(calls)}

    return eval_fn


def assert_same_params(a: nn.Module, b: nn.Module) -> None:
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


# ---------------------------------------------------------------------------- convergence
def test_linear_regression_reaches_least_squares():
    x, y = regression_data()
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    result = Trainer(model, opt, mse, max_epochs=60, scheduler=sched, random_state=0, verbose=False).fit(
        batches_of(x, y, batch_size=64)
    )
    design = np.hstack([x.numpy(), np.ones((len(x), 1))]).astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, y.numpy()[:, 0].astype(np.float64), rcond=None)
    fitted = np.concatenate([model.weight.detach().numpy()[0], model.bias.detach().numpy()])
    np.testing.assert_allclose(fitted, coef, atol=2e-3)
    assert isinstance(result, TrainResult)
    assert result.epochs_run == 60 and len(result.history) == 60
    assert [r["epoch"] for r in result.history] == list(range(60))
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.best_epoch is None and result.best_score is None and not result.stopped_early


# ---------------------------------------------------------------------------- early stopping
@pytest.mark.parametrize(
    "scores, mode, patience, eval_every, best_eval, stop_eval",
    [
        ([0.1, 0.3, 0.2, 0.25, 0.28, 0.9, 0.9], "max", 3, 1, 1, 4),
        ([5.0, 4.0, 4.0, 3.0, 3.5, 3.9, 1.0], "min", 2, 1, 3, 5),
        ([0.1, 0.3, 0.2, 0.25, 0.9], "max", 2, 2, 1, 3),
    ],
)
def test_early_stopping_stops_at_patience_and_restores_best(scores, mode, patience, eval_every, best_eval, stop_eval):
    x, y = regression_data(64)
    model = nn.Linear(3, 1)
    snapshots: list[dict[str, torch.Tensor]] = []
    trainer = Trainer(
        model, torch.optim.SGD(model.parameters(), lr=0.05), mse, max_epochs=20,
        eval_fn=scripted_eval(scores, snapshots), monitor="score", mode=mode, patience=patience, eval_every=eval_every, random_state=0, verbose=False,
    )
    result = trainer.fit(batches_of(x, y))
    best_epoch = (best_eval + 1) * eval_every - 1
    assert result.stopped_early
    assert len(snapshots) == stop_eval + 1
    assert result.epochs_run == (stop_eval + 1) * eval_every
    assert result.best_epoch == best_epoch and result.best_score == scores[best_eval]
    evaluated = [r for r in result.history if "score" in r]
    assert [r["epoch"] for r in evaluated] == [(i + 1) * eval_every - 1 for i in range(stop_eval + 1)]
    for name, value in model.state_dict().items():
        assert torch.equal(value, snapshots[best_eval][name]), name
    assert not torch.equal(model.weight, snapshots[-1]["weight"])


def test_early_stopping_tracker_ignores_nan_and_counts_patience():
    tracker = EarlyStopping(mode="min", patience=2)
    assert not tracker.update(float("nan"), 0) and tracker.best_score is None
    assert tracker.update(3.0, 1) and tracker.wait == 0
    assert not tracker.update(3.0, 2) and not tracker.should_stop
    assert not tracker.update(float("inf"), 3) and tracker.should_stop
    restored = EarlyStopping(mode="min", patience=2)
    restored.load_state_dict(tracker.state_dict())
    assert (restored.best_score, restored.best_epoch, restored.wait) == (3.0, 1, 2)


def test_monitor_train_loss_without_eval_fn():
    x, y = regression_data(64)
    model = nn.Linear(3, 1)
    result = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.05), mse, max_epochs=5, monitor="train_loss",
                     mode="min", random_state=0, verbose=False).fit(batches_of(x, y))
    losses = [r["train_loss"] for r in result.history]
    assert result.best_score == min(losses) and result.best_epoch == int(np.argmin(losses))


def test_reduce_lr_on_plateau_steps_with_monitored_metric():
    x, y = regression_data(64)
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", patience=0, factor=0.5)
    Trainer(model, opt, mse, max_epochs=3, eval_fn=scripted_eval([1.0, 0.5, 0.4], []), monitor="score",
            scheduler=sched, random_state=0, verbose=False).fit(batches_of(x, y))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**2)


# ---------------------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("device", DEVICES)
def test_same_seed_is_bitwise_identical_and_global_rng_untouched(device):
    x, y = regression_data(128, device=device)
    cuda_state = torch.cuda.get_rng_state if device == "cuda" else lambda: torch.zeros(0)
    models = []
    for global_seed, seed in ((1, 3), (2, 3), (2, 4)):
        torch.manual_seed(global_seed)  # the caller's RNG must neither matter nor change
        before, before_cuda = torch.get_rng_state(), cuda_state()
        model = fresh_noisy()
        noisy_trainer(model, max_epochs=3, random_state=seed, device=device).fit(batches_of(x, y))
        assert torch.equal(torch.get_rng_state(), before) and torch.equal(cuda_state(), before_cuda)
        models.append(model)
    assert_same_params(models[0], models[1])
    assert not torch.equal(models[0].out.weight, models[2].out.weight)


def test_generator_passed_to_train_batches_is_seeded():
    draws = []

    def record(epoch, generator):
        assert isinstance(generator, torch.Generator) and generator.device == CPU
        draws.append(torch.randint(0, 10**9, (1,), generator=generator).item())
        return tensor_batches(*regression_data(32), batch_size=16, generator=generator)

    for _ in range(2):
        model = nn.Linear(3, 1)
        Trainer(model, torch.optim.SGD(model.parameters(), lr=0.01), mse, max_epochs=2,
                random_state=np.random.default_rng(5), verbose=False).fit(record)
    assert draws[:2] == draws[2:] and draws[0] != draws[1]


# ---------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("device", DEVICES)
def test_resume_matches_uninterrupted_run(tmp_path, device):
    x, y = regression_data(128, device=device)

    def eval_fn(model):
        return {"neg_mse": -F.mse_loss(model(x), y).item()}

    common = dict(eval_fn=eval_fn, monitor="neg_mse", patience=10, grad_clip=1.0, device=device)
    straight = fresh_noisy()
    full = noisy_trainer(straight, max_epochs=4, **common).fit(batches_of(x, y))

    first = fresh_noisy()
    noisy_trainer(first, max_epochs=2, checkpoint_dir=tmp_path, **common).fit(batches_of(x, y))
    assert (tmp_path / "last.pt").exists() and not list(tmp_path.glob("*.tmp"))
    resumed_model = fresh_noisy(seed=99)  # different init: everything must come from the checkpoint
    resumed = noisy_trainer(resumed_model, max_epochs=4, checkpoint_dir=tmp_path, **common).fit(batches_of(x, y))

    assert_same_params(straight, resumed_model)
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in full.history]
    assert [r["neg_mse"] for r in resumed.history] == [r["neg_mse"] for r in full.history]
    assert (resumed.best_epoch, resumed.best_score, resumed.epochs_run) == (full.best_epoch, full.best_score, 4)


def test_resume_after_early_stop_trains_no_further(tmp_path):
    x, y = regression_data(64)
    snapshots: list[dict[str, torch.Tensor]] = []
    common = dict(eval_fn=scripted_eval([1.0, 0.5, 2.0], snapshots), monitor="score", patience=1,
                  checkpoint_dir=tmp_path, scheduler=None)
    first = noisy_trainer(fresh_noisy(), max_epochs=10, **common).fit(batches_of(x, y))
    model = fresh_noisy(seed=5)
    again = noisy_trainer(model, max_epochs=10, **common).fit(batches_of(x, y))
    assert first.stopped_early and again.stopped_early and again.epochs_run == first.epochs_run == 2
    assert len(snapshots) == 2 and again.best_epoch == 0
    assert torch.equal(model.out.weight, snapshots[0]["out.weight"])  # best weights restored from the checkpoint


def test_max_seconds_stops_between_epochs_keeps_best_and_resumes(tmp_path, monkeypatch):
    import graphrec.train.trainer as trainer_module

    clock = iter(range(1000))  # a fake wall clock: every reading advances one "second"
    monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: float(next(clock)))
    x, y = regression_data(64)
    snapshots: list[dict[str, torch.Tensor]] = []
    common = dict(eval_fn=scripted_eval([1.0, 3.0, 2.0, 0.0, 5.0, 4.0], snapshots), monitor="score",
                  checkpoint_dir=tmp_path, scheduler=None, max_epochs=6)
    model = fresh_noisy()
    # The deadline is read once, then each epoch reads the clock twice (start, seconds) and once at
    # the budget check: a 6-second budget is spent at the check after the second epoch.
    first = noisy_trainer(model, max_seconds=6, **common).fit(batches_of(x, y))
    assert first.stopped_by_time and not first.stopped_early and first.epochs_run == 2
    assert first.best_epoch == 1 and torch.equal(model.out.weight, snapshots[1]["out.weight"])
    # The next call resumes from the checkpoint with a fresh budget and finishes the run.
    again = noisy_trainer(fresh_noisy(seed=3), max_seconds=100, **common).fit(batches_of(x, y))
    assert not again.stopped_by_time and again.epochs_run == 6 and again.best_epoch == 4


def _scheduled_trainer(model, tmp_path, **kwargs):
    return noisy_trainer(model, step_size=1, checkpoint_dir=tmp_path, **kwargs)


@pytest.mark.parametrize("scheduler, changed, named", [
    ("step", dict(lr=0.02), "optimizer group 0.initial_lr: 0.01 in the checkpoint vs 0.02 now"),
    ("step", dict(weight_decay=1e-3), "optimizer group 0.weight_decay: 0.0 in the checkpoint vs 0.001 now"),
    ("step", dict(gamma=0.9), "scheduler.gamma: 0.5 in the checkpoint vs 0.9 now"),
    (None, dict(lr=0.02), "optimizer group 0.lr: 0.01 in the checkpoint vs 0.02 now"),
    ("plateau", dict(gamma=0.9), "scheduler.factor: 0.5 in the checkpoint vs 0.9 now"),
], ids=["lr", "weight_decay", "gamma", "lr_without_scheduler", "plateau_factor"])
def test_resume_with_other_optimizer_or_scheduler_settings_is_an_error(tmp_path, scheduler, changed, named):
    # Loading the optimizer and scheduler states would replace the new settings with the
    # checkpoint's: the run would silently go on at the old learning rate / decay.
    x, y = regression_data(64)
    _scheduled_trainer(fresh_noisy(), tmp_path, max_epochs=2, scheduler=scheduler).fit(batches_of(x, y))
    resumed = _scheduled_trainer(fresh_noisy(), tmp_path, max_epochs=4, scheduler=scheduler, **changed)
    with pytest.raises(CheckpointError, match="was trained with other settings") as info:
        resumed.fit(batches_of(x, y))
    assert named in str(info.value) and str(tmp_path / "last.pt") in str(info.value)
    assert torch.equal(resumed.model.out.weight, fresh_noisy().out.weight)   # the error comes before any loading
    # the same settings with a longer max_epochs resume
    again = _scheduled_trainer(fresh_noisy(), tmp_path, max_epochs=4, scheduler=scheduler).fit(batches_of(x, y))
    assert again.epochs_run == 4


def test_resume_checks_settings_of_the_same_schedule_not_its_progress(tmp_path):
    x, y = regression_data(64)
    model = fresh_noisy()
    trainer = _scheduled_trainer(model, tmp_path, max_epochs=3)
    trainer.fit(batches_of(x, y))
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.5**3)   # decayed: progress, not a setting
    resumed = _scheduled_trainer(fresh_noisy(), tmp_path, max_epochs=5)
    resumed.fit(batches_of(x, y))
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.5**5)


def test_resume_false_starts_over(tmp_path):
    x, y = regression_data(64)
    noisy_trainer(fresh_noisy(), max_epochs=2, checkpoint_dir=tmp_path).fit(batches_of(x, y))
    result = noisy_trainer(fresh_noisy(), max_epochs=1, checkpoint_dir=tmp_path, resume=False).fit(batches_of(x, y))
    assert result.epochs_run == 1


def test_corrupt_checkpoint_names_the_file(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="last.pt"):
        noisy_trainer(fresh_noisy(), max_epochs=2, checkpoint_dir=tmp_path).fit(batches_of(*regression_data(32)))


def test_checkpoint_with_other_shapes_is_rejected(tmp_path):
    x, y = regression_data(32)
    small = nn.Linear(3, 1)
    Trainer(small, torch.optim.SGD(small.parameters(), lr=0.1), mse, max_epochs=1, checkpoint_dir=tmp_path,
            random_state=0, verbose=False).fit(batches_of(x, y))
    wide = nn.Linear(4, 1)
    trainer = Trainer(wide, torch.optim.SGD(wide.parameters(), lr=0.1), mse, max_epochs=2, checkpoint_dir=tmp_path,
                      random_state=0, verbose=False)
    with pytest.raises(CheckpointError, match=r"last\.pt.*weight: checkpoint \(1, 3\) vs model \(1, 4\)"):
        trainer.fit(batches_of(torch.randn(32, 4), y))


def test_checkpoint_without_scheduler_is_rejected_with_one(tmp_path):
    x, y = regression_data(32)
    model = nn.Linear(3, 1)
    Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), mse, max_epochs=1, checkpoint_dir=tmp_path,
            random_state=0, verbose=False).fit(batches_of(x, y))
    with pytest.raises(CheckpointError, match="without a scheduler"):
        noisy_trainer(nn.Linear(3, 1), max_epochs=2, checkpoint_dir=tmp_path).fit(batches_of(x, y))


@pytest.mark.parametrize("changed", [dict(monitor="other"), dict(mode="min")], ids=["monitor", "mode"])
def test_resume_with_other_monitor_or_mode_is_an_error(tmp_path, changed):
    # The early-stopping state holds the best score of the checkpoint's monitor in its mode: resuming
    # with another would compare new scores against it and keep the wrong weights.
    x, y = regression_data(32)
    metrics = lambda model: {"score": 1.0, "other": 2.0}  # noqa: E731
    common = dict(eval_fn=metrics, checkpoint_dir=tmp_path, scheduler=None)
    noisy_trainer(fresh_noisy(), max_epochs=1, monitor="score", mode="max", **common).fit(batches_of(x, y))
    settings = {"monitor": "score", "mode": "max", **changed}
    with pytest.raises(CheckpointError, match=r"last\.pt.*monitor='score', mode='max'.*resume=False"):
        noisy_trainer(fresh_noisy(), max_epochs=2, **settings, **common).fit(batches_of(x, y))
    again = noisy_trainer(fresh_noisy(), max_epochs=2, monitor="score", mode="max", **common).fit(batches_of(x, y))
    assert again.epochs_run == 2


# ---------------------------------------------------------------------------- errors
def _trainer(**overrides):
    model = nn.Linear(3, 1)
    kwargs = dict(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), loss_fn=mse, max_epochs=2,
                  verbose=False)
    kwargs.update(overrides)
    return Trainer(kwargs.pop("model"), kwargs.pop("optimizer"), kwargs.pop("loss_fn"), **kwargs)


@pytest.mark.parametrize(
    "overrides, error, match",
    [
        (dict(model="linear"), TypeError, "model must be a torch.nn.Module"),
        (dict(optimizer=None), TypeError, "optimizer must be a torch.optim.Optimizer"),
        (dict(loss_fn=3), TypeError, "loss_fn must be callable"),
        (dict(eval_fn="f"), TypeError, "eval_fn must be callable"),
        (dict(max_epochs=0), ValueError, "max_epochs must be a positive integer"),
        (dict(max_epochs=2.0), ValueError, "max_epochs must be a positive integer"),
        (dict(eval_every=0), ValueError, "eval_every must be a positive integer"),
        (dict(mode="avg", monitor="train_loss"), ValueError, "mode must be one of"),
        (dict(patience=0, monitor="train_loss"), ValueError, "patience must be a positive integer"),
        (dict(patience=3), ValueError, "patience=3 needs monitor"),
        (dict(monitor="auc"), ValueError, "monitor='auc' needs an eval_fn"),
        (dict(grad_clip=-1.0), ValueError, "grad_clip must be a positive finite"),
        (dict(scheduler=object()), TypeError, "scheduler must be a torch learning-rate scheduler"),
        (dict(device="tpu"), ValueError, "device must be"),
        (dict(random_state="seed"), TypeError, "random_state must be"),
        (dict(checkpoint_dir=5), TypeError, "checkpoint_dir must be a path"),
        (dict(max_seconds=0), ValueError, "max_seconds must be a positive number"),
        (dict(max_seconds="1h"), ValueError, "max_seconds must be a positive number"),
    ],
)
def test_bad_constructor_arguments(overrides, error, match):
    with pytest.raises(error, match=match):
        _trainer(**overrides)


def test_checkpoint_dir_that_is_a_file_fails_before_training(tmp_path):
    not_a_folder = tmp_path / "ckpt.pt"
    not_a_folder.write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="checkpoint_dir=.*ckpt.pt.* is a file"):
        _trainer(checkpoint_dir=not_a_folder)


def test_bad_fit_inputs():
    x, y = regression_data(32)
    with pytest.raises(TypeError, match="train_batches must be callable"):
        _trainer().fit([(x, y)])
    with pytest.raises(TypeError, match="must return an iterable"):
        _trainer().fit(lambda epoch, g: 5)
    with pytest.raises(ValueError, match="yielded no batches"):
        _trainer().fit(lambda epoch, g: [])
    with pytest.raises(ValueError, match=r"scalar tensor of shape \(\), got shape \(32, 1\)"):
        _trainer(loss_fn=lambda m, b: (m(b[0]) - b[1]) ** 2).fit(batches_of(x, y, 32))
    with pytest.raises(ValueError, match="monitor='auc' is not among the metrics"):
        _trainer(eval_fn=lambda m: {"acc": 1.0}, monitor="auc").fit(batches_of(x, y))
    with pytest.raises(TypeError, match="eval_fn returned acc='high'"):
        _trainer(eval_fn=lambda m: {"acc": "high"}).fit(batches_of(x, y))
    with pytest.raises(ValueError, match="metric name 'train_loss'"):
        _trainer(eval_fn=lambda m: {"train_loss": 1.0}).fit(batches_of(x, y))


def test_nan_loss_names_epoch_and_batch():
    x, y = regression_data(96)
    calls = []

    def loss_fn(model, batch):
        calls.append(None)
        loss = mse(model, batch)
        return loss * float("nan") if len(calls) == 5 else loss  # epoch 1, batch 1 (3 batches per epoch)

    with pytest.raises(FloatingPointError, match="epoch 1, batch 1"):
        _trainer(loss_fn=loss_fn, max_epochs=3).fit(batches_of(x, y, 32))


def test_grad_clip_bounds_the_update():
    model = nn.Linear(3, 1)
    before = torch.cat([p.detach().clone().ravel() for p in model.parameters()])
    x, y = regression_data(32)
    _trainer(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=1.0), grad_clip=0.01,
             max_epochs=1).fit(lambda epoch, g: [(x, y + 100.0)])
    after = torch.cat([p.detach().ravel() for p in model.parameters()])
    assert torch.linalg.vector_norm(after - before).item() == pytest.approx(0.01, rel=1e-4)


def test_verbose_false_is_silent_and_epochs_are_logged(capsys, caplog):
    x, y = regression_data(32)
    with caplog.at_level(logging.INFO, logger="graphrec.train.trainer"):
        _trainer(max_epochs=2).fit(batches_of(x, y))
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    lines = [r.getMessage() for r in caplog.records if "train_loss=" in r.getMessage()]
    assert len(lines) == 2 and lines[1].startswith("epoch 1 (2/2)")


# ---------------------------------------------------------------------------- batching
@pytest.mark.parametrize("n, batch_size, drop_last", [(10, 3, False), (10, 3, True), (9, 3, True), (5, 8, False)])
def test_tensor_batches_cover_every_row_once(n, batch_size, drop_last):
    x = torch.arange(n)
    y = torch.arange(n) * 10.0
    g = torch.Generator().manual_seed(0)
    epochs = [list(tensor_batches(x, y, batch_size=batch_size, generator=g, drop_last=drop_last)) for _ in range(2)]
    full, rest = divmod(n, batch_size)
    for batches in epochs:
        sizes = [len(bx) for bx, _ in batches]
        assert sizes == [batch_size] * full + ([] if drop_last or rest == 0 else [rest])
        seen = torch.cat([bx for bx, _ in batches])
        assert len(set(seen.tolist())) == len(seen) == sum(sizes)  # no row twice
        if not drop_last:
            assert sorted(seen.tolist()) == list(range(n))
        for bx, by in batches:
            assert torch.equal(by, bx * 10.0)  # rows stay aligned
    assert len(tensor_batches(x, batch_size=batch_size, drop_last=drop_last)) == len(epochs[0])
    if n > batch_size:
        assert not torch.equal(torch.cat([b[0] for b in epochs[0]]), torch.cat([b[0] for b in epochs[1]]))


def test_tensor_batches_reproducible_and_ordered_without_shuffle():
    x = torch.randn(20, 2)
    one = list(tensor_batches(x, batch_size=6, generator=torch.Generator().manual_seed(1)))
    two = list(tensor_batches(x, batch_size=6, generator=torch.Generator().manual_seed(1)))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(one, two))
    ordered = list(tensor_batches(x, batch_size=6, shuffle=False))
    assert torch.equal(torch.cat([b[0] for b in ordered]), x) and isinstance(ordered[0], tuple)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((), dict(batch_size=2), ValueError, "at least one tensor"),
        ((torch.zeros(4), torch.zeros(5)), dict(batch_size=2), ValueError, r"equal first dimensions, got \[4, 5\]"),
        ((torch.zeros(4),), dict(batch_size=0), ValueError, "batch_size must be a positive integer"),
        ((torch.zeros(4),), dict(batch_size=True), ValueError, "batch_size must be a positive integer"),
        ((torch.zeros(4),), dict(batch_size=2.5), ValueError, "batch_size must be a positive integer"),
        ((np.zeros(4),), dict(batch_size=2), TypeError, r"tensors\[0\] must be a torch.Tensor"),
        ((torch.tensor(1.0),), dict(batch_size=2), ValueError, "0-dimensional"),
        ((torch.zeros(4),), dict(batch_size=2, generator=np.random.default_rng()), TypeError, "generator must be"),
    ],
)
def test_tensor_batches_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        tensor_batches(*args, **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batches_with_cpu_or_cuda_generator_and_host_batches_are_moved():
    x = torch.arange(10, device="cuda")
    for generator in (torch.Generator().manual_seed(0), torch.Generator(device="cuda").manual_seed(0)):
        batches = list(tensor_batches(x, batch_size=4, generator=generator))
        assert all(b[0].device.type == "cuda" for b in batches)
        assert sorted(torch.cat([b[0] for b in batches]).tolist()) == list(range(10))
    xc, yc = regression_data(64)
    model = nn.Linear(3, 1)
    Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), mse, max_epochs=1, device="cuda", random_state=0,
            verbose=False).fit(lambda epoch, g: tensor_batches(xc, yc, batch_size=16, generator=torch.Generator()))
    assert model.weight.device.type == "cuda"
    moved = move_to_device({"a": [xc]}, torch.device("cuda"))
    assert moved["a"][0].device.type == "cuda" and torch.equal(moved["a"][0].cpu(), xc)


def test_move_to_device_keeps_structure():
    Pair = namedtuple("Pair", "a b")
    batch = {"x": torch.ones(2), "rest": [Pair(torch.zeros(1), 3), ("s", None)]}
    moved = move_to_device(batch, CPU)
    assert isinstance(moved["rest"][0], Pair) and moved["rest"][0].b == 3
    assert moved["rest"][1] == ("s", None) and torch.equal(moved["x"], batch["x"])


def test_batch_bounds_joins_a_too_small_last_batch_and_names_bad_arguments():
    from graphrec.train.batching import batch_bounds

    assert batch_bounds(9, 4) == [0, 4, 8, 9] and batch_bounds(9, 4, min_rows=2) == [0, 4, 9]
    assert batch_bounds(11, 4, min_rows=4) == [0, 4, 11] and batch_bounds(3, 4, min_rows=4) == [0, 3]
    for args, name in (((9, 0), "batch_size"), ((9, 4, 0), "min_rows"), ((-1, 4), "n")):
        with pytest.raises(ValueError, match=name):
            batch_bounds(*args)


# ---------------------------------------------------------------------------- rarely taken paths
@pytest.mark.parametrize(
    "overrides, error, match",
    [
        (dict(monitor=5), TypeError, "monitor must be a metric name \\(str\\) or None, got int"),
        (dict(verbose="yes"), TypeError, "verbose must be a bool or an int, got str"),
        (dict(device="meta"), ValueError, "device must be a CPU or CUDA device, got 'meta'"),
    ],
)
def test_more_bad_constructor_arguments(overrides, error, match):
    with pytest.raises(error, match=match):
        _trainer(**overrides)


def test_bad_loss_and_eval_results_name_the_problem():
    x, y = regression_data(32)
    with pytest.raises(TypeError, match="loss_fn must return a torch.Tensor, got float at epoch 0, batch 0"):
        _trainer(loss_fn=lambda m, b: 1.0).fit(batches_of(x, y))
    with pytest.raises(ValueError, match="epoch 0, batch 0 does not require grad"):
        _trainer(loss_fn=lambda m, b: torch.tensor(1.0)).fit(batches_of(x, y))
    with pytest.raises(TypeError, match="eval_fn must return a dict of metric name -> float, got list"):
        _trainer(eval_fn=lambda m: [1.0]).fit(batches_of(x, y))
    with pytest.raises(ValueError, match="eval_fn returned metric name 1"):
        _trainer(eval_fn=lambda m: {1: 1.0}).fit(batches_of(x, y))


def _linear_checkpoint(folder, **kwargs):
    """Train a Linear(3, 1) for one epoch with a checkpoint in ``folder``; returns the checkpoint path."""
    model = nn.Linear(3, 1)
    Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), mse, max_epochs=1, checkpoint_dir=folder,
            random_state=0, verbose=False, **kwargs).fit(batches_of(*regression_data(32)))
    return folder / "last.pt"


def _resume_linear(folder, **kwargs):
    model = nn.Linear(3, 1)
    return Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), mse, max_epochs=2, checkpoint_dir=folder,
                   random_state=0, verbose=False, **kwargs).fit(batches_of(*regression_data(32)))


@pytest.mark.parametrize("edit, match", [
    (lambda state: [1, 2], "holds a list, expected a dict"),
    (lambda state: {k: v for k, v in state.items() if k not in ("rng", "history")},
     r"is missing keys \['history', 'rng'\]"),
    (lambda state: {**state, "format_version": 2}, "has format_version 2, this graphrec reads 1"),
    (lambda state: {**state, "device_type": "cuda"}, "was written on a cuda device; resume on cuda, not cpu"),
    (lambda state: {**state, "rng": {**state["rng"], "generator": torch.zeros(3, dtype=torch.uint8)}},
     r"could not be restored \(RuntimeError"),
], ids=["not_a_dict", "missing_keys", "format_version", "device_type", "bad_rng_state"])
def test_damaged_or_foreign_checkpoint_is_rejected_naming_the_file(tmp_path, edit, match):
    path = _linear_checkpoint(tmp_path)
    state = torch.load(path, weights_only=True)
    torch.save(edit(state), path)
    with pytest.raises(CheckpointError, match=match) as info:
        _resume_linear(tmp_path)
    assert str(path) in str(info.value)


def test_checkpoint_written_with_or_without_a_monitor_is_rejected_by_the_other(tmp_path):
    _linear_checkpoint(tmp_path / "plain")
    with pytest.raises(CheckpointError, match="written without a monitor, but this Trainer has monitor='train_loss'"):
        _resume_linear(tmp_path / "plain", monitor="train_loss")
    _linear_checkpoint(tmp_path / "watched", monitor="train_loss")
    with pytest.raises(CheckpointError, match="written with a monitor, but this Trainer has monitor=None"):
        _resume_linear(tmp_path / "watched")


def test_checkpoint_of_another_architecture_lists_missing_and_unexpected_keys(tmp_path):
    path = _linear_checkpoint(tmp_path)
    model = nn.Sequential(nn.Linear(3, 1))
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), mse, max_epochs=2, checkpoint_dir=tmp_path,
                      random_state=0, verbose=False)
    with pytest.raises(CheckpointError, match=r"missing \['0.bias', '0.weight'\]; unexpected \['bias', 'weight'\]"):
        trainer.fit(batches_of(*regression_data(32)))
    assert path.exists()


def test_checkpoint_with_another_number_of_parameter_groups_is_rejected(tmp_path):
    _linear_checkpoint(tmp_path)
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD([{"params": [model.weight]}, {"params": [model.bias]}], lr=0.1)
    trainer = Trainer(model, opt, mse, max_epochs=2, checkpoint_dir=tmp_path, random_state=0, verbose=False)
    with pytest.raises(CheckpointError, match=r"has 1 optimizer parameter group\(s\), this optimizer 2"):
        trainer.fit(batches_of(*regression_data(32)))


def test_failed_checkpoint_write_keeps_the_previous_file_and_leaves_no_temp_file(tmp_path):
    from graphrec.train.checkpoint import load_checkpoint, save_checkpoint

    path = _linear_checkpoint(tmp_path)
    before = path.read_bytes()
    state = load_checkpoint(path)
    with pytest.raises(Exception):   # a lambda cannot be pickled: torch.save fails mid-write
        save_checkpoint({**state, "history": [lambda: None]}, path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def _lr_trainer(folder, scheduler, max_epochs):
    with torch.random.fork_rng(devices=[]):   # the same initial weights every time, global RNG untouched
        torch.default_generator.manual_seed(0)
        model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return Trainer(model, opt, mse, max_epochs=max_epochs, scheduler=scheduler(opt), checkpoint_dir=folder,
                   random_state=0, verbose=False)


def test_resume_with_other_multistep_milestones_is_an_error(tmp_path):
    # MultiStepLR keeps its milestones as a Counter {epoch: count}: a resumed run with other milestones
    # used to go on silently with the checkpoint's (they were compared only where both sides had a key).
    x, y = regression_data(32)
    _lr_trainer(tmp_path, lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [1, 2]), 1).fit(batches_of(x, y))
    for milestones, named in (([5, 6], "[1, 2] in the checkpoint vs [5, 6] now"),
                              ([1, 2, 3], "[1, 2] in the checkpoint vs [1, 2, 3] now")):
        resumed = _lr_trainer(tmp_path, lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones), 4)
        with pytest.raises(CheckpointError, match="was trained with other settings") as info:
            resumed.fit(batches_of(x, y))
        assert f"scheduler.milestones: {named}" in str(info.value)
    same = _lr_trainer(tmp_path, lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [1, 2]), 4)
    same.fit(batches_of(x, y))
    assert same.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.1**2)


def test_cosine_warm_restarts_resumes_like_an_uninterrupted_run(tmp_path):
    # T_cur and T_i are the position in the restart cycle (progress), not settings: resuming used to
    # fail with 'scheduler.T_cur: 1 in the checkpoint vs 0 now'.
    x, y = regression_data(32)
    warm = lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=2)  # noqa: E731
    straight = _lr_trainer(tmp_path / "straight", warm, 5)
    straight.fit(batches_of(x, y))
    _lr_trainer(tmp_path / "split", warm, 3).fit(batches_of(x, y))
    resumed = _lr_trainer(tmp_path / "split", warm, 5)
    result = resumed.fit(batches_of(x, y))
    assert result.epochs_run == 5
    # 5 steps: the first cycle (2 epochs), then 3 epochs into the second (T_i = 2 * 2)
    assert resumed.scheduler.state_dict()["T_cur"] == straight.scheduler.state_dict()["T_cur"] == 3
    assert resumed.scheduler.state_dict()["T_i"] == straight.scheduler.state_dict()["T_i"] == 4
    assert resumed.optimizer.param_groups[0]["lr"] == straight.optimizer.param_groups[0]["lr"]
    assert_same_params(resumed.model, straight.model)
    # its settings are still checked
    other = _lr_trainer(tmp_path / "split", lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=3), 6)
    with pytest.raises(CheckpointError, match="scheduler.T_0: 2 in the checkpoint vs 3 now"):
        other.fit(batches_of(x, y))


def test_sequential_schedule_with_another_number_of_stages_is_an_error(tmp_path):
    from graphrec.train.checkpoint import check_training_settings_match

    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    lr = torch.optim.lr_scheduler

    def sequential(n_stages):
        stages = [lr.ConstantLR(opt, factor=0.5, total_iters=2)] + [lr.ExponentialLR(opt, 0.9)] * (n_stages - 1)
        return lr.SequentialLR(opt, stages, milestones=[2 * (i + 1) for i in range(n_stages - 1)])

    saved = sequential(2).state_dict()
    check_training_settings_match(opt.state_dict(), opt, saved, sequential(2), tmp_path / "last.pt")   # same: no error
    with pytest.raises(CheckpointError) as info:
        check_training_settings_match(opt.state_dict(), opt, saved, sequential(3), tmp_path / "last.pt")
    message = str(info.value)
    assert "scheduler._milestones: 1 entries in the checkpoint vs 2 now" in message
    assert "scheduler._schedulers: 2 entries in the checkpoint vs 3 now" in message


def test_random_state_forms_and_bad_seeds():
    x, y = regression_data(64)
    with pytest.raises(ValueError, match="random_state must be a non-negative integer, got -1"):
        _trainer(random_state=-1)
    for flag in (True, np.bool_(False)):   # used to be taken as the seed 1 / 0
        with pytest.raises(TypeError, match="random_state must be None, an int, a numpy Generator or RandomState, "
                                            "got bool"):
            _trainer(random_state=flag)
    # a legacy RandomState seeds the run like any other form: the same state, the same result
    runs = []
    for seed in (3, 3, 4):
        model = fresh_noisy()
        noisy_trainer(model, max_epochs=2, random_state=np.random.RandomState(seed)).fit(batches_of(x, y))
        runs.append(model.out.weight.detach().clone())
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_device_auto_picks_cuda_when_there_is_one():
    expected = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert _trainer(device="auto").device == expected and _trainer(device=None).device == expected
