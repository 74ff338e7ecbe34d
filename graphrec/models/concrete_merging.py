"""Concrete subspace masks for merging task vectors with less interference.

Task vectors ``τ_i = θ_i - θ_0`` of models fine-tuned from one base ``θ_0`` are merged by task
arithmetic, ``θ = θ_0 + λ Σ_i τ_i``. Concrete subspace learning puts one shared mask ``m`` on every
parameter tensor, a relaxed-Bernoulli (Concrete / Gumbel-sigmoid) sample
``m = sigmoid((w + log u - log(1 - u)) / T)``, ``u ~ U(0, 1)``, with logits ``w`` (init 0), and
merges ``θ(w) = θ_0 + λ Σ_i (m ⊙ τ_i) / mean(m)``. The logits are learned by minimising the mean
prediction entropy of the merged model on unlabelled inputs of every task (test-time adaptation);
the final model uses the hard mask ``1[w > 0]``. The mask selects a shared coordinate subspace in
which the task vectors agree, removing the coordinates where they interfere.

References
----------
A. Tang, L. Shen, Y. Luo, L. Ding, H. Hu, B. Du, D. Tao. "Concrete Subspace Learning based
Interference Elimination for Multi-task Model Fusion", arXiv:2312.06173, 2023.
G. Ilharco et al. "Editing Models with Task Arithmetic", ICLR 2023.
"""
from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.train import Trainer
from graphrec.utils.validation import check_device, check_float, check_int, torch_generator

__all__ = [
    "ConcreteMask",
    "task_vectors",
    "merge_task_vectors",
    "task_arithmetic",
    "prediction_entropy",
    "ConcreteTaskArithmetic",
    "make_merging_tasks",
]

logger = logging.getLogger(__name__)


def _key(name: str) -> str:
    return name.replace(".", "__")


class ConcreteMask(nn.Module):
    """Relaxed-Bernoulli mask logits ``w``, one tensor per named parameter shape.

    Parameters
    ----------
    shapes : mapping name -> shape
        Parameters to mask (e.g. ``{n: p.shape for n, p in model.named_parameters()}``).
    init_logit : float
        Initial ``w`` (0: every coordinate kept with probability 1/2).
    """

    def __init__(self, shapes: Mapping[str, Sequence[int]], init_logit: float = 0.0) -> None:
        super().__init__()
        if not shapes:
            raise ValueError("shapes is empty; expected at least one parameter to mask")
        init = check_float(init_logit, "init_logit")
        self.names = list(shapes)
        self.logits = nn.ParameterDict({_key(n): nn.Parameter(torch.full(tuple(s), init)) for n, s in shapes.items()})

    def sample(self, temperature: float = 0.5, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """A differentiable Concrete sample ``sigmoid((w + log u - log(1 - u)) / T)`` per parameter."""
        t = check_float(temperature, "temperature", low=0.0, low_open=True)
        out = {}
        for n in self.names:
            w = self.logits[_key(n)]
            u = torch.rand(w.shape, generator=generator, device=w.device, dtype=w.dtype).clamp(1e-6, 1 - 1e-6)
            out[n] = torch.sigmoid((w + torch.log(u) - torch.log1p(-u)) / t)
        return out

    def probabilities(self) -> dict[str, torch.Tensor]:
        """Keep probabilities ``sigmoid(w)``."""
        return {n: torch.sigmoid(self.logits[_key(n)]).detach() for n in self.names}

    def hard(self) -> dict[str, torch.Tensor]:
        """The final mask ``1[w > 0]`` (a sample at temperature 0 thresholded at 1/2)."""
        return {n: (self.logits[_key(n)] > 0).to(self.logits[_key(n)].dtype).detach() for n in self.names}


def task_vectors(
    base: nn.Module | Mapping[str, torch.Tensor], finetuned: Sequence[nn.Module | Mapping[str, torch.Tensor]]
) -> list[dict[str, torch.Tensor]]:
    """``τ_i = θ_i - θ_0`` over the floating-point parameters of ``base`` (modules or state dicts)."""
    theta0 = _params(base, "base")
    if len(finetuned) == 0:
        raise ValueError("finetuned is empty; expected at least one fine-tuned model")
    out = []
    for i, model in enumerate(finetuned):
        theta = _params(model, f"finetuned[{i}]")
        if theta.keys() != theta0.keys() or any(theta[k].shape != theta0[k].shape for k in theta0):
            raise ValueError(f"finetuned[{i}] does not have the parameter names and shapes of base")
        out.append({k: theta[k] - theta0[k] for k in theta0})
    return out


def _params(model: Any, name: str) -> dict[str, torch.Tensor]:
    if isinstance(model, nn.Module):
        return {k: v.detach() for k, v in model.named_parameters()}
    if isinstance(model, Mapping):
        return {k: v.detach() for k, v in model.items() if torch.is_tensor(v) and v.is_floating_point()}
    raise TypeError(f"{name} must be an nn.Module or a state dict, got {type(model).__name__}")


def merge_task_vectors(
    base: Mapping[str, torch.Tensor],
    taus: Sequence[Mapping[str, torch.Tensor]],
    mask: Mapping[str, torch.Tensor] | None = None,
    scaling: float = 0.3,
    rescale: bool = True,
) -> dict[str, torch.Tensor]:
    """``θ_0 + λ Σ_i (m ⊙ τ_i) / mean(m)`` per parameter (plain task arithmetic without ``mask``).

    Parameters
    ----------
    base : mapping name -> Tensor
        The pretrained parameters ``θ_0``; the result has the same keys.
    taus : sequence of mapping name -> Tensor
        Task vectors ``τ_i = θ_i - θ_0`` (see :func:`task_vectors`), each with every key of ``base``.
    mask : mapping name -> Tensor, optional
        Mask ``m`` per parameter, of that parameter's shape: hard (0/1) or a relaxed Concrete sample.
        Parameters without a mask entry are merged unmasked; an all-zero mask leaves that parameter
        at ``θ_0``.
    scaling : float, default 0.3
        Task-arithmetic coefficient ``λ``.
    rescale : bool, default True
        Divide the masked sum by ``mean(m)``; ``False`` drops ``/ mean(m)``.
    """
    lam = check_float(scaling, "scaling")
    if len(taus) == 0:
        raise ValueError("taus is empty; expected at least one task vector")
    out = {}
    for k, theta in base.items():
        total = sum(t[k] for t in taus)
        if mask is not None and k in mask:
            m = mask[k]
            total = total * m
            if rescale:
                total = total / m.mean().clamp_min(1e-12)
        out[k] = theta + lam * total
    return out


def task_arithmetic(base: nn.Module, finetuned: Sequence[nn.Module], scaling: float = 0.3) -> nn.Module:
    """A copy of ``base`` with parameters ``θ_0 + λ Σ_i τ_i``."""
    merged = merge_task_vectors(_params(base, "base"), task_vectors(base, finetuned), scaling=scaling)
    out = copy.deepcopy(base)
    out.load_state_dict(merged, strict=False)
    return out


def prediction_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean Shannon entropy of ``softmax(logits)`` over the rows of ``logits`` ``(n, C)``."""
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1).mean()


class _MaskedMerge(nn.Module):
    """The trainable part: mask logits; the merge is computed functionally from frozen θ_0 and τ_i."""

    def __init__(self, mask: ConcreteMask, base: dict[str, torch.Tensor], taus: list[dict[str, torch.Tensor]]) -> None:
        super().__init__()
        self.mask = mask
        self.base = base
        self.taus = taus

    def to(self, *args: Any, **kwargs: Any) -> _MaskedMerge:
        super().to(*args, **kwargs)
        self.base = {k: v.to(*args, **kwargs) for k, v in self.base.items()}
        self.taus = [{k: v.to(*args, **kwargs) for k, v in t.items()} for t in self.taus]
        return self


class ConcreteTaskArithmetic(GraphrecEstimator):
    """Learn a shared Concrete mask over task vectors by entropy minimisation on unlabelled task inputs.

    Parameters
    ----------
    scaling : float
        Task-arithmetic coefficient ``λ`` (0.3 in the paper).
    temperature : float
        Concrete temperature ``T`` (0.5).
    lr : float
        Adam learning rate on the mask logits.
    n_epochs : int
        Passes over the unlabelled inputs (one step per mini-batch of every task at once).
    batch_size : int
        Unlabelled inputs per task per step.
    device : str
    random_state : int, optional
    verbose : bool

    Attributes
    ----------
    mask_ : dict name -> Tensor
        The hard mask ``1[w > 0]`` per masked parameter.
    keep_fraction_ : float
        Share of coordinates kept by ``mask_``.
    merged_state_ : dict name -> Tensor
        Merged parameters with the hard mask.
    history_ : list of dict
        Per-epoch mean entropy (``train_loss``) from the training loop.
    base_model_ : nn.Module
        The base model (architecture template of :meth:`merged_model`).

    Notes
    -----
    ``fit(base, finetuned, inputs, heads=None)``: ``base`` and the ``finetuned`` models share an
    architecture (the body that is merged); ``inputs[t]`` are unlabelled inputs of task ``t``;
    ``heads[t]`` (optional, frozen) maps the body's output to task ``t``'s logits.
    """

    def __init__(
        self,
        scaling: float = 0.3,
        *,
        temperature: float = 0.5,
        lr: float = 0.02,
        n_epochs: int = 30,
        batch_size: int = 64,
        device: str = "cpu",
        random_state: Any = None,
        verbose: bool = False,
    ) -> None:
        self.scaling = scaling
        self.temperature = temperature
        self.lr = lr
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def fit(
        self,
        base: nn.Module,
        finetuned: Sequence[nn.Module],
        inputs: Sequence[torch.Tensor],
        heads: Sequence[nn.Module] | None = None,
    ) -> ConcreteTaskArithmetic:
        """Learn the mask; see the class notes for the arguments."""
        lam = check_float(self.scaling, "scaling")
        temp = check_float(self.temperature, "temperature", low=0.0, low_open=True)
        lr = check_float(self.lr, "lr", low=0.0, low_open=True)
        n_epochs = check_int(self.n_epochs, "n_epochs", low=1)
        batch = check_int(self.batch_size, "batch_size", low=1)
        dev = check_device(self.device)
        if not isinstance(base, nn.Module):
            raise TypeError(f"base must be an nn.Module, got {type(base).__name__}")
        taus = task_vectors(base, finetuned)
        if len(inputs) != len(taus):
            raise ValueError(
                f"inputs has {len(inputs)} tasks but there are {len(taus)} fine-tuned models; "
                "expected one input tensor per task"
            )
        if heads is not None and len(heads) != len(taus):
            raise ValueError(f"heads has {len(heads)} entries, expected one per task ({len(taus)})")
        xs = []
        for t, x in enumerate(inputs):
            if not torch.is_tensor(x) or x.ndim < 1 or x.shape[0] == 0:
                raise ValueError(f"inputs[{t}] must be a non-empty tensor of unlabelled inputs")
            if x.is_floating_point() and not bool(torch.isfinite(x).all()):
                raise ValueError(f"inputs[{t}] contains NaN or infinite values")
            xs.append(x.to(dev))
        body = copy.deepcopy(base).to(dev).eval()
        task_heads = None if heads is None else [copy.deepcopy(h).to(dev).eval() for h in heads]
        for module in [body, *(task_heads or [])]:
            module.requires_grad_(False)
        theta0 = _params(base, "base")
        mask = ConcreteMask({k: v.shape for k, v in theta0.items()})
        model = _MaskedMerge(mask, theta0, taus)

        def loss_fn(m: _MaskedMerge, batches: tuple[torch.Tensor, ...]) -> torch.Tensor:
            merged = merge_task_vectors(m.base, m.taus, m.mask.sample(temp), scaling=lam)
            total = 0.0
            for t, xb in enumerate(batches):
                out = functional_call(body, merged, (xb,))
                total = total + prediction_entropy(out if task_heads is None else task_heads[t](out))
            return total / len(batches)

        def batches(epoch: int, g: torch.Generator):
            perms = [torch.randperm(x.shape[0], generator=g, device=g.device).to(dev) for x in xs]
            n_steps = max(1, min(x.shape[0] for x in xs) // batch)
            for s in range(n_steps):
                yield tuple(x[p[s * batch : (s + 1) * batch]] for x, p in zip(xs, perms))

        trainer = Trainer(model, torch.optim.Adam(mask.parameters(), lr=lr), loss_fn, max_epochs=n_epochs, device=dev,
                          random_state=self.random_state, verbose=self.verbose)
        result = trainer.fit(batches)
        self.history_ = result.history
        self.mask_ = mask.hard()
        kept = sum(float(v.sum()) for v in self.mask_.values())
        self.keep_fraction_ = kept / sum(v.numel() for v in self.mask_.values())
        self.merged_state_ = merge_task_vectors(
            {k: v.to(dev) for k, v in theta0.items()}, [{k: v.to(dev) for k, v in t.items()} for t in taus],
            {k: v.to(theta0[k].dtype) for k, v in self.mask_.items()}, scaling=lam,
        )
        self.base_model_ = base
        logger.info("Concrete TA: kept %.3f of the coordinates", self.keep_fraction_)
        return self

    def merged_model(self) -> nn.Module:
        """A copy of the base model with the merged (hard-masked) parameters."""
        self._check_is_fitted()
        out = copy.deepcopy(self.base_model_).to(next(iter(self.merged_state_.values())).device)
        out.load_state_dict(self.merged_state_, strict=False)
        return out


def make_merging_tasks(
    n_tasks: int = 4,
    *,
    n_features: int = 16,
    rows_per_task: int = 8,
    n_free_rows: int = 32,
    noise: float = 0.3,
    margin: float = 2.5,
    n_samples: int = 400,
    random_state: Any = None,
) -> tuple[nn.Linear, list[nn.Linear], list[nn.Linear], list[tuple[torch.Tensor, torch.Tensor]]]:
    """Generated multi-task fusion problem with interfering task vectors.

    A base body ``nn.Linear(n_features, h)`` (``h = n_tasks * rows_per_task + n_free_rows``) with
    small random weights; task ``t`` is two Gaussian clusters ``x = ±margin · v_t/||v_t|| + N(0, I)``
    read by a frozen dense head ``a_t``. Its fine-tuned body adds a task vector with a signal on its
    own ``rows_per_task`` rows (making ``a_t^T W x ∝ v_t^T x``) plus dense noise of std ``noise`` on
    the free rows, which the other tasks' heads also read: interference.

    Returns
    -------
    base : nn.Linear
    finetuned : list of nn.Linear
    heads : list of nn.Linear (h -> 2, frozen)
    tests : list of (X (n_samples, n_features), y (n_samples,)) per task
    """
    n_tasks = check_int(n_tasks, "n_tasks", low=1)
    d = check_int(n_features, "n_features", low=1)
    rows = check_int(rows_per_task, "rows_per_task", low=1)
    free = check_int(n_free_rows, "n_free_rows", low=0)
    noise = check_float(noise, "noise", low=0.0)
    margin = check_float(margin, "margin", low=0.0)
    n = check_int(n_samples, "n_samples", low=1)
    g = torch_generator(random_state, "cpu")
    h = n_tasks * rows + free
    base = nn.Linear(d, h, bias=False)
    with torch.no_grad():
        base.weight.copy_(0.1 * torch.randn(h, d, generator=g))
    finetuned, heads, tests = [], [], []
    for t in range(n_tasks):
        v, a = torch.randn(d, generator=g), torch.randn(h, generator=g)
        head = nn.Linear(h, 2, bias=False).requires_grad_(False)
        with torch.no_grad():
            head.weight.copy_(torch.stack([-a / 2, a / 2]))
        own = torch.arange(t * rows, (t + 1) * rows)
        tau = torch.zeros(h, d)
        tau[own] = 3.0 * torch.outer(a[own], v) / (a[own] ** 2).sum()
        tau[n_tasks * rows :] = noise * torch.randn(free, d, generator=g)
        model = copy.deepcopy(base)
        with torch.no_grad():
            model.weight.add_(tau)
        y = torch.randint(0, 2, (n,), generator=g)
        x = torch.randn(n, d, generator=g) + (2 * y[:, None] - 1) * margin * v / v.norm()
        finetuned.append(model)
        heads.append(head)
        tests.append((x, y))
    return base, finetuned, heads, tests


def _toy(seed: int) -> tuple:
    base, finetuned, heads, tests = make_merging_tasks(
        2, rows_per_task=2, n_free_rows=4, n_samples=64, random_state=seed
    )
    return base, finetuned, [x for x, _ in tests], heads


def _bad_inputs() -> dict:
    def nan_inputs() -> tuple:
        base, finetuned, inputs, heads = _toy(0)
        inputs[0] = inputs[0].clone()
        inputs[0][0, 0] = float("nan")
        return base, finetuned, inputs, heads

    return {
        "missing task inputs": lambda: _toy(0)[:2] + (_toy(0)[2][:1], _toy(0)[3]),
        "nan inputs": nan_inputs,
        "shape mismatch": lambda: (_toy(0)[0], [nn.Linear(3, 3)], [torch.ones(4, 16)]),
        "no finetuned": lambda: (_toy(0)[0], [], []),
    }


register_estimator(
    "ConcreteTaskArithmetic",
    EstimatorSpec(
        factory=lambda: ConcreteTaskArithmetic(n_epochs=2, batch_size=32, random_state=0),
        make_input=_toy,
        output=lambda est, args: est.mask_["weight"],
        bad_inputs=_bad_inputs(),
        fitted_method=None,
    ),
)
