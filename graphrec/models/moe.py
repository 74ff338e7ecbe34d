"""CDSP-MoE: a mixture of experts on one shared subspace, its topology pruned by gradient conflict.

All experts draw their hidden units from one shared pair of factors ``U`` ``(d_model, D)`` and
``V`` ``(D, d_model)``. A partition gives expert ``i`` the home block ``[i B, (i + 1) B)``,
``B = D / N``; topology logits ``alpha`` ``(N, N)`` (1 on the diagonal, ``0.1 + N(0, 0.02)`` off it)
give the influence ``I_i[c] = sigmoid(alpha[i, owner(c)])`` and expert ``i`` uses the ``r`` units of
largest influence, ``S_i = topk(I_i, r)``, ``r = floor(D / sqrt(N))``:

    y_i(x) = SiLU(x U[:, S_i]) V[S_i] * mean(I_i[S_i])

A router ``softmax(W_g [LN(x); emb(task)])`` (the task embedding dropped with probability
``p_drop``) weights the ``top_k`` experts. The *lagged gradient game* reads the gradients that the
previous step sent into each expert's copy of ``U[:, S_i]``; ``cos_ij`` is their cosine on the shared
units ``S_i ∩ S_j`` (0 if disjoint) and

    L = L_task + lambda_conf * sum_{i != j} alpha_ij ReLU(-cos_ij) + 1e-4 mean|alpha| + 1e-3 mean(s (1 - s)),

``s = sigmoid(alpha)``, with ``cos`` detached (so ``dL/d alpha_ij = lambda_conf ReLU(-cos_ij)``, raw
``alpha`` as in the released code). Experts whose gradients conflict on shared units lower their
mutual logits until they stop sharing them: the topology is pruned where tasks conflict.

References
----------
CDSP-MoE, "Conflict-Driven Subspace Pruning Mixture of Experts" (official code:
github.com/konodiodaaaaa1/Conflict-Driven-Subspace-Pruning-Mixture-of-Experts).
"""
from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.train import Trainer, tensor_batches
from graphrec.utils.validation import check_array, check_device, check_float, check_int, check_random_state

__all__ = ["sparse_aligned_cosine", "conflict_loss", "SharedSubspaceMoE", "CDSPMoERegressor"]

logger = logging.getLogger(__name__)


def sparse_aligned_cosine(grad_i: torch.Tensor, support_i: torch.Tensor, grad_j: torch.Tensor, support_j: torch.Tensor) -> torch.Tensor:
    """Cosine of two experts' gradients on the units both use.

    Parameters
    ----------
    grad_i, grad_j : Tensor, shape (d_model, r_i) and (d_model, r_j)
        Gradients of the loss w.r.t. each expert's gathered columns ``U[:, support]``.
    support_i, support_j : LongTensor, shape (r_i,) and (r_j,)
        The columns of ``U`` each expert uses (no repeats).

    Returns
    -------
    0-d tensor: ``cos(vec grad_i[:, S_i ∩ S_j], vec grad_j[:, S_i ∩ S_j])``; 0 when the supports are
    disjoint or a restricted gradient is zero.
    """
    if grad_i.ndim != 2 or grad_i.shape[1] != support_i.shape[0] or grad_j.ndim != 2 or grad_j.shape[1] != support_j.shape[0]:
        raise ValueError("grad_k must be (d_model, len(support_k)) for k in (i, j)")
    n = int(max(support_i.max(), support_j.max())) + 1
    pos_i = torch.full((n,), -1, dtype=torch.long, device=support_i.device)
    pos_j = pos_i.clone()
    pos_i[support_i] = torch.arange(support_i.shape[0], device=support_i.device)
    pos_j[support_j] = torch.arange(support_j.shape[0], device=support_j.device)
    shared = (pos_i >= 0) & (pos_j >= 0)
    if not bool(shared.any()):
        return grad_i.new_zeros(())
    a, b = grad_i[:, pos_i[shared]].reshape(-1), grad_j[:, pos_j[shared]].reshape(-1)
    denom = a.norm() * b.norm()
    return (a @ b) / denom if float(denom) > 0 else grad_i.new_zeros(())


def conflict_loss(alpha: torch.Tensor, cosines: torch.Tensor) -> torch.Tensor:
    """``sum_{i != j} alpha_ij ReLU(-cos_ij)`` with ``cosines`` ``(N, N)`` treated as constants."""
    if alpha.shape != cosines.shape or alpha.ndim != 2 or alpha.shape[0] != alpha.shape[1]:
        raise ValueError(f"alpha and cosines must be square of one shape, got {tuple(alpha.shape)} and {tuple(cosines.shape)}")
    off = ~torch.eye(alpha.shape[0], dtype=torch.bool, device=alpha.device)
    return (alpha * F.relu(-cosines.detach()))[off].sum()


class SharedSubspaceMoE(nn.Module):
    """CDSP mixture-of-experts layer (see the module docstring).

    Parameters
    ----------
    d_model : int
    n_experts : int
        ``N`` (must divide ``d_base``).
    n_tasks : int
        Size of the task-embedding table used by the router.
    d_base : int, optional
        Shared units ``D`` (default ``4 d_model``).
    top_k : int
        Experts per input.
    rank_quota : int, optional
        Units per expert ``r`` (default ``floor(D / sqrt(N))``); ``r = D`` gives every expert
        the whole basis (a dense shared MoE).
    p_drop : float
        Probability of dropping the task embedding during training (blind routing).
    generator : torch.Generator, optional

    Notes
    -----
    Shapes: ``forward(x (n, d_model), task (n,) long) -> (n, d_model)``. After a backward pass
    ``expert_grads`` holds each expert's ``(d_model, r)`` gradient on ``U[:, S_i]`` and
    ``supports`` the ``S_i`` used.
    """

    def __init__(
        self,
        d_model: int,
        n_experts: int,
        n_tasks: int,
        d_base: int | None = None,
        top_k: int = 2,
        rank_quota: int | None = None,
        p_drop: float = 0.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        d_model = check_int(d_model, "d_model", low=1)
        self.n_experts = check_int(n_experts, "n_experts", low=1)
        n_tasks = check_int(n_tasks, "n_tasks", low=1)
        d_base = 4 * d_model if d_base is None else check_int(d_base, "d_base", low=1)
        if d_base % self.n_experts:
            raise ValueError(f"d_base={d_base} must be divisible by n_experts={self.n_experts}")
        self.top_k = check_int(top_k, "top_k", low=1, high=self.n_experts)
        default_r = int(math.floor(d_base / math.sqrt(self.n_experts)))
        self.rank_quota = default_r if rank_quota is None else check_int(rank_quota, "rank_quota", low=1, high=d_base)
        self.p_drop = check_float(p_drop, "p_drop", low=0.0, high=1.0)
        u = torch.linalg.qr(torch.randn(max(d_model, d_base), min(d_model, d_base), generator=generator))[0]
        u = u.T if d_model < d_base else u
        self.U = nn.Parameter(u[:d_model, :d_base].contiguous())
        self.V = nn.Parameter(torch.randn(d_base, d_model, generator=generator) / math.sqrt(d_base))
        alpha = 0.1 + 0.02 * torch.randn(self.n_experts, self.n_experts, generator=generator)
        alpha.fill_diagonal_(1.0)
        self.alpha = nn.Parameter(alpha)
        self.register_buffer("owner", torch.arange(d_base) // (d_base // self.n_experts))
        self.norm = nn.LayerNorm(d_model)
        self.task_embed = nn.Embedding(n_tasks, d_model)
        self.router = nn.Linear(2 * d_model, self.n_experts)
        self.expert_grads: list[torch.Tensor | None] = [None] * self.n_experts
        self.supports: list[torch.Tensor | None] = [None] * self.n_experts

    def influence(self) -> torch.Tensor:
        """``I = sigmoid(alpha) Pi``, shape ``(N, D)``."""
        return torch.sigmoid(self.alpha)[:, self.owner]

    def subspaces(self) -> torch.Tensor:
        """``S_i = topk(I_i, r)`` for every expert, LongTensor ``(N, r)`` (sorted unit indices)."""
        return torch.topk(self.influence().detach(), self.rank_quota, dim=1).indices.sort(dim=1).values

    def route(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """Router probabilities ``(n, N)``."""
        emb = self.task_embed(task)
        if self.training and self.p_drop > 0:
            emb = emb * (torch.rand(emb.shape[0], 1, device=emb.device) >= self.p_drop)
        return F.softmax(self.router(torch.cat([self.norm(x), emb], dim=1)), dim=1)

    def _hook(self, i: int):
        def store(grad: torch.Tensor) -> None:
            self.expert_grads[i] = grad.detach()
        return store

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        probs = self.route(x, task)
        weights, chosen = torch.topk(probs, self.top_k, dim=1)
        influence = self.influence()
        supports = self.subspaces()
        out = torch.zeros_like(x)
        for i in range(self.n_experts):
            rows, slot = (chosen == i).nonzero(as_tuple=True)
            support = supports[i]
            u_i = self.U[:, support]
            if u_i.requires_grad:
                u_i.register_hook(self._hook(i))
            self.supports[i] = support
            if rows.numel() == 0:
                continue
            scale = influence[i, support].mean()
            y = F.silu(x[rows] @ u_i) @ self.V[support] * scale
            out = out.index_add(0, rows, y * weights[rows, slot, None])
        return out

    def conflict_cosines(self) -> torch.Tensor:
        """``cos_ij`` ``(N, N)`` from the last backward pass (0 where an expert got no gradient)."""
        n = self.n_experts
        cos = self.alpha.new_zeros(n, n)
        for i in range(n):
            for j in range(i + 1, n):
                gi, gj = self.expert_grads[i], self.expert_grads[j]
                if gi is None or gj is None:
                    continue
                cos[i, j] = cos[j, i] = sparse_aligned_cosine(gi, self.supports[i], gj, self.supports[j])
        return cos

    def regularizer(self) -> torch.Tensor:
        """``1e-4 mean|alpha| + 1e-3 mean(sigmoid(alpha)(1 - sigmoid(alpha)))``."""
        s = torch.sigmoid(self.alpha)
        return 1e-4 * self.alpha.abs().mean() + 1e-3 * (s * (1 - s)).mean()


class _MultiTaskNet(nn.Module):
    def __init__(self, d_in: int, d_out: int, moe: SharedSubspaceMoE, d_model: int):
        super().__init__()
        self.inp = nn.Linear(d_in, d_model)
        self.moe = moe
        self.head = nn.Linear(d_model, d_out)

    def forward(self, x: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        return self.head(h + self.moe(h, task))


class CDSPMoERegressor(GraphrecEstimator):
    """Multi-task regression with a conflict-driven subspace-pruned MoE layer.

    Network: ``Linear(d_in, d_model)`` -> residual :class:`SharedSubspaceMoE` -> ``Linear(d_model, d_out)``,
    trained with MSE + the conflict game (two learning rates: ``lr`` with weight decay for the
    weights, ``lr_alpha`` without for ``alpha``; AdamW).

    Parameters
    ----------
    d_model, n_experts, d_base, top_k, rank_quota, p_drop
        See :class:`SharedSubspaceMoE`.
    lambda_conf : float
        Weight of the conflict loss (paper 10; 0 disables the game: the unpruned baseline).
    n_epochs, batch_size : int
    lr, lr_alpha, weight_decay : float
    random_state, device, verbose

    Attributes
    ----------
    n_tasks_ : int
    alpha_ : ndarray (N, N)
        Learned topology logits.
    subspaces_ : ndarray (N, r)
        Units of ``U`` each expert uses.
    overlap_ : ndarray (N, N)
        ``|S_i ∩ S_j|``.
    conflict_history_ : list of ndarray (N, N)
        ``cos_ij`` averaged over the steps of each epoch.
    module_ : torch.nn.Module
    history_ : list of dict

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 4)); task = rng.integers(0, 2, 300)
    >>> y = np.where(task == 0, X[:, 0], -X[:, 0])
    >>> reg = CDSPMoERegressor(d_model=8, n_experts=2, n_epochs=5, random_state=0).fit(X, y, task)
    >>> reg.predict(X[:3], task[:3]).shape
    (3,)
    """

    def __init__(
        self,
        d_model: int = 64,
        *,
        n_experts: int = 8,
        d_base: int | None = None,
        top_k: int = 2,
        rank_quota: int | None = None,
        p_drop: float = 0.0,
        lambda_conf: float = 10.0,
        n_epochs: int = 10,
        batch_size: int = 64,
        lr: float = 5e-3,
        lr_alpha: float = 5e-2,
        weight_decay: float = 0.01,
        random_state: Any = None,
        device: Any = "cpu",
        verbose: bool | int = False,
    ):
        self.d_model = d_model
        self.n_experts = n_experts
        self.d_base = d_base
        self.top_k = top_k
        self.rank_quota = rank_quota
        self.p_drop = p_drop
        self.lambda_conf = lambda_conf
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_alpha = lr_alpha
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _check_inputs(self, X: Any, task: Any, n_features: int | None = None, n_tasks: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        X = check_array(X, "X", ndim=2)
        if n_features is not None and X.shape[1] != n_features:
            raise ValueError(f"X has {X.shape[1]} features, but the model was fitted with {n_features}")
        task = check_array(task, "task", ndim=1, dtype=np.int64)
        if task.shape[0] != X.shape[0]:
            raise ValueError(f"task must have one id per row of X ({X.shape[0]}), got {task.shape[0]}")
        if task.min() < 0 or (n_tasks is not None and task.max() >= n_tasks):
            raise ValueError(f"task ids must be in [0, {'n_tasks - 1' if n_tasks is None else n_tasks - 1}], got [{task.min()}, {task.max()}]")
        return X, task

    def fit(self, X: Any, y: Any, task: Any) -> "CDSPMoERegressor":
        """Fit on ``X`` ``(n, d_in)``, targets ``y`` ``(n,)`` or ``(n, d_out)`` and task ids ``task`` ``(n,)``."""
        X, task = self._check_inputs(X, task)
        y = check_array(y, "y")
        if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have shape ({X.shape[0]},) or ({X.shape[0]}, d_out), got {y.shape}")
        d_model = check_int(self.d_model, "d_model", low=1)
        lam = check_float(self.lambda_conf, "lambda_conf", low=0.0)
        epochs = check_int(self.n_epochs, "n_epochs", low=1)
        batch = check_int(self.batch_size, "batch_size", low=1)
        lr = check_float(self.lr, "lr", low=0.0, low_open=True)
        lr_alpha = check_float(self.lr_alpha, "lr_alpha", low=0.0, low_open=True)
        wd = check_float(self.weight_decay, "weight_decay", low=0.0)
        device = check_device(self.device)
        rng = check_random_state(self.random_state)
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
        n_tasks = int(task.max()) + 1
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(int(rng.integers(0, 2**63 - 1)))
            moe = SharedSubspaceMoE(d_model, self.n_experts, n_tasks, self.d_base, self.top_k, self.rank_quota, self.p_drop, gen)
            net = _MultiTaskNet(X.shape[1], 1 if y.ndim == 1 else y.shape[1], moe, d_model).to(device)
        weights = [p for name, p in net.named_parameters() if name != "moe.alpha"]
        optimizer = torch.optim.AdamW(
            [{"params": weights, "lr": lr, "weight_decay": wd}, {"params": [moe.alpha], "lr": lr_alpha, "weight_decay": 0.0}]
        )
        xt = torch.as_tensor(X, dtype=torch.float32, device=device)
        yt = torch.as_tensor(y.reshape(X.shape[0], -1), dtype=torch.float32, device=device)
        tt = torch.as_tensor(task, dtype=torch.long, device=device)
        epoch_cos: list[torch.Tensor] = []

        def loss_fn(model: _MultiTaskNet, b: tuple[torch.Tensor, ...]) -> torch.Tensor:
            cos = model.moe.conflict_cosines()  # lagged: gradients of the previous step
            epoch_cos.append(cos)
            loss = F.mse_loss(model(b[0], b[2]), b[1]) + model.moe.regularizer()
            return loss + lam * conflict_loss(model.moe.alpha, cos) if lam > 0 else loss

        self.conflict_history_: list[np.ndarray] = []

        def eval_fn(model: _MultiTaskNet) -> dict[str, float]:
            self.conflict_history_.append(torch.stack(epoch_cos).mean(0).cpu().numpy())
            epoch_cos.clear()
            return {}

        trainer = Trainer(net, optimizer, loss_fn, max_epochs=epochs, device=device, eval_fn=eval_fn, random_state=rng,
                          verbose=self.verbose)
        result = trainer.fit(lambda epoch, g: tensor_batches(xt, yt, tt, batch_size=batch, generator=g))
        self.module_ = net.eval()
        self.n_features_in_, self.n_tasks_, self._y_1d = X.shape[1], n_tasks, y.ndim == 1
        self.alpha_ = moe.alpha.detach().cpu().numpy().copy()
        supports = moe.subspaces().cpu()
        self.subspaces_ = supports.numpy()
        self.overlap_ = np.array([[np.intersect1d(a, b).size for b in self.subspaces_] for a in self.subspaces_])
        self.history_ = result.history
        logger.info("CDSP-MoE: final loss %.4f, expert overlaps %s", result.history[-1]["train_loss"], self.overlap_.tolist())
        return self

    @torch.no_grad()
    def predict(self, X: Any, task: Any) -> np.ndarray:
        """Predictions ``(n,)`` (or ``(n, d_out)``) for rows ``X`` of tasks ``task``."""
        self._check_is_fitted()
        X, task = self._check_inputs(X, task, self.n_features_in_, self.n_tasks_)
        device = self.module_.inp.weight.device
        out = self.module_(torch.as_tensor(X, dtype=torch.float32, device=device), torch.as_tensor(task, device=device))
        out = out.cpu().double().numpy()
        return out[:, 0] if self._y_1d else out

    @torch.no_grad()
    def expert_usage(self, X: Any, task: Any) -> np.ndarray:
        """Mean router probability of each expert per task, ``(n_tasks, N)`` (task embedding kept)."""
        self._check_is_fitted()
        X, task = self._check_inputs(X, task, self.n_features_in_, self.n_tasks_)
        device = self.module_.inp.weight.device
        xt = torch.as_tensor(X, dtype=torch.float32, device=device)
        probs = self.module_.moe.route(self.module_.inp(xt), torch.as_tensor(task, device=device)).cpu().numpy()
        return np.stack([probs[task == t].mean(0) if np.any(task == t) else np.zeros(probs.shape[1]) for t in range(self.n_tasks_)])


def _two_tasks(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(64, 3))
    task = np.arange(64) % 2
    return X, np.where(task == 0, X[:, 0], -X[:, 0]), task


register_estimator(
    "CDSPMoERegressor",
    EstimatorSpec(
        factory=lambda: CDSPMoERegressor(d_model=4, n_experts=2, n_epochs=2, batch_size=16, random_state=0),
        make_input=_two_tasks,
        output=lambda est, args: est.predict(args[0], args[2]),
        bad_inputs={
            "negative task": lambda: (np.ones((4, 2)), np.ones(4), np.array([0, 1, -1, 0])),
            "task length": lambda: (np.ones((4, 2)), np.ones(4), np.array([0, 1])),
            "nan y": lambda: (np.ones((4, 2)), np.array([1.0, np.nan, 0.0, 1.0]), np.zeros(4, dtype=int)),
            "float task": lambda: (np.ones((4, 2)), np.ones(4), np.array([0.5, 1.0, 0.0, 1.0])),
        },
        fitted_method=None,
    ),
)
