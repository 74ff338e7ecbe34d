"""MSENet: learnable multi-scale embedding and attention for few-shot (prototype) classification.

A convolutional backbone exposes the feature maps of several stages ("scales"). Each stage ``s``
is refined by SAGAN-style self-attention, ``o = gamma_s * V softmax(Q^T K) + x`` with ``1x1``
convolutions ``Q, K`` (``C/8`` channels) and ``V`` (``C`` channels) and ``gamma_s`` starting at
0, then global-average pooled into ``f_s(x)``. For an episode with support classes ``c``, the
stage prototypes are ``p_{c,s} = mean f_s(support of c)`` and a query's logits are

    ``logit_c(q) = - sum_s w_s ||f_s(q) - p_{c,s}||``

with learnable stage weights ``w_s``; training minimises the episode cross-entropy.

Difference from the official code: there, ``Self_Attn`` modules are created inside every forward
call, so their ``Q/K/V`` convolutions are re-drawn at random and never trained (only ``gamma``
is). Here the attention modules are built once in ``__init__`` and trained with the rest.

Reference: F. Askari, A. Fateh, M. R. Mohammadi, "Enhancing few-shot image classification through
learnable multi-scale embedding and attention mechanisms", arXiv 2409.07989 (code:
github.com/FatemehAskari/MSENet; ResNet-18 backbone with 5 taps). Our backbone is a 3-stage CNN
sized for 8x8 digits; the prototype classifier is J. Snell, K. Swersky, R. Zemel, "Prototypical
networks for few-shot learning", NeurIPS 2017.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.train import Trainer
from graphrec.utils.validation import (
    check_array,
    check_bool,
    check_choice,
    check_device,
    check_float,
    check_int,
    check_random_state,
    torch_generator,
)

__all__ = ["MSENet", "MultiScaleProtoNet", "SelfAttention2d", "prototype_logits"]


class SelfAttention2d(nn.Module):
    """SAGAN self-attention over the ``H W`` positions of a ``(n, C, H, W)`` map; output has the input's shape."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(channels // 8, 1)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2)  # (n, c', hw)
        k = self.key(x).flatten(2)
        v = self.value(x).flatten(2)  # (n, c, hw)
        attn = torch.softmax(q.mT @ k, dim=-1)  # (n, hw, hw): row i attends over positions j
        return self.gamma * (v @ attn.mT).view(n, c, h, w) + x


def prototype_logits(support: list[torch.Tensor], support_labels: torch.Tensor, query: list[torch.Tensor],
                     weights: torch.Tensor, n_way: int) -> torch.Tensor:
    """``-sum_s w_s ||f_s(q) - p_{c,s}||`` for stage features ``support[s]`` ``(n_s, C_s)``, ``query[s]`` ``(n_q, C_s)``.

    ``support_labels`` ``(n_s,)`` hold ``0..n_way-1``; returns ``(n_q, n_way)``.
    """
    logits = 0.0
    onehot = F.one_hot(support_labels, n_way).to(support[0].dtype)  # (n_s, n_way)
    counts = onehot.sum(0)[:, None]
    for s, (fs, fq) in enumerate(zip(support, query)):
        protos = onehot.T @ fs / counts  # (n_way, C_s)
        logits = logits - weights[s] * torch.cdist(fq, protos)
    return logits


class MultiScaleProtoNet(nn.Module):
    """3-stage CNN (``channels`` per stage; stages 2, 3 halve the resolution) with per-stage attention taps.

    ``stages`` selects the taps used (e.g. ``(0, 1, 2)`` multi-scale, ``(2,)`` the single-scale
    ProtoNet); ``attention`` switches the self-attention modules on; ``learn_weights`` makes
    ``w_s`` trainable (else fixed to 1).
    """

    def __init__(self, in_channels: int, channels: tuple[int, ...], stages: tuple[int, ...], attention: bool,
                 learn_weights: bool) -> None:
        super().__init__()
        blocks, c_in = [], in_channels
        for i, c in enumerate(channels):
            layers: list[nn.Module] = [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
            if i > 0:
                layers.append(nn.MaxPool2d(2))
            blocks.append(nn.Sequential(*layers))
            c_in = c
        self.blocks = nn.ModuleList(blocks)
        self.stages = tuple(stages)
        self.attention = nn.ModuleList([SelfAttention2d(channels[s]) for s in self.stages]) if attention else None
        w = torch.ones(len(self.stages))
        self.stage_weights = nn.Parameter(w) if learn_weights else None
        self.register_buffer("fixed_weights", w.clone())

    @property
    def weights(self) -> torch.Tensor:
        """Stage weights ``w_s`` ``(n_stages,)``."""
        return self.stage_weights if self.stage_weights is not None else self.fixed_weights

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Pooled stage features ``[(n, C_s)]`` of images ``x`` ``(n, in_channels, H, W)``."""
        maps = []
        for block in self.blocks:
            x = block(x)
            maps.append(x)
        out = []
        for j, s in enumerate(self.stages):
            m = maps[s] if self.attention is None else self.attention[j](maps[s])
            out.append(m.mean(dim=(2, 3)))
        return out

    def forward(self, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor, n_way: int) -> torch.Tensor:
        """Episode logits ``(n_query, n_way)``."""
        feats = self.features(torch.cat([support_x, query_x]))
        n_s = support_x.shape[0]
        return prototype_logits([f[:n_s] for f in feats], support_y, [f[n_s:] for f in feats], self.weights, n_way)


def _check_images(X: Any, name: str = "X") -> np.ndarray:
    X = check_array(X, name, dtype=np.float32)
    if X.ndim == 3:
        X = X[:, None]
    if X.ndim != 4:
        raise ValueError(f"{name} must be images (n, H, W) or (n, C, H, W), got shape {X.shape}")
    return X


def _episode(y: np.ndarray, classes: np.ndarray, n_way: int, n_shot: int, n_query: int,
             g: torch.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sample indices of an ``n_way``-way episode: (support idx, support labels, query idx, query labels)."""
    chosen = classes[torch.randperm(len(classes), generator=g)[:n_way].numpy()]
    s_idx, s_lab, q_idx, q_lab = [], [], [], []
    for c_new, c in enumerate(chosen):
        pool = np.flatnonzero(y == c)
        pick = pool[torch.randperm(len(pool), generator=g)[: n_shot + n_query].numpy()]
        s_idx.append(pick[:n_shot])
        q_idx.append(pick[n_shot:])
        s_lab.append(np.full(n_shot, c_new))
        q_lab.append(np.full(len(pick) - n_shot, c_new))
    return np.concatenate(s_idx), np.concatenate(s_lab), np.concatenate(q_idx), np.concatenate(q_lab)


class MSENet(GraphrecEstimator):
    """Few-shot classifier with multi-scale prototype distances and trained self-attention.

    Parameters
    ----------
    channels : tuple of int, default (32, 64, 64)
        Channels of the backbone's three stages.
    stages : "all" or "last", default "all"
        Multi-scale (every stage) or the single-scale ProtoNet baseline (last stage).
    attention : bool, default True
    learn_weights : bool, default True
    n_way, n_shot, n_query : int, default 5, 5, 15
        Training episode shape (classes with fewer than ``n_shot + 1`` samples are not sampled).
    n_epochs : int, default 20
    episodes_per_epoch : int, default 50
    lr : float, default 1e-3
        Adam learning rate of the backbone and attention convolutions.
    lr_weights : float, default 5e-3
        Learning rate of the stage weights and the attention ``gamma`` (as in the official code).
    random_state, device, verbose
        As everywhere in graphrec.

    Attributes
    ----------
    net_ : MultiScaleProtoNet
        The trained network (on CPU, eval mode).
    stage_weights_ : ndarray (n_stages,)
    history_ : list of dict
    """

    def __init__(
        self, *, channels: tuple[int, ...] = (32, 64, 64), stages: str = "all", attention: bool = True,
        learn_weights: bool = True, n_way: int = 5, n_shot: int = 5, n_query: int = 15, n_epochs: int = 20,
        episodes_per_epoch: int = 50, lr: float = 1e-3, lr_weights: float = 5e-3, random_state: Any = None,
        device: str = "cpu", verbose: bool = False,
    ) -> None:
        self.channels = channels
        self.stages = stages
        self.attention = attention
        self.learn_weights = learn_weights
        self.n_way = n_way
        self.n_shot = n_shot
        self.n_query = n_query
        self.n_epochs = n_epochs
        self.episodes_per_epoch = episodes_per_epoch
        self.lr = lr
        self.lr_weights = lr_weights
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _check_params(self) -> tuple[int, ...]:
        channels = tuple(self.channels) if isinstance(self.channels, (tuple, list)) else None
        if channels is None or len(channels) != 3:
            raise ValueError(f"channels must be a tuple of 3 positive ints, got {self.channels!r}")
        for i, c in enumerate(channels):
            check_int(c, f"channels[{i}]", low=1)
        check_choice(self.stages, "stages", ("all", "last"))
        for name in ("attention", "learn_weights"):
            check_bool(getattr(self, name), name)
        check_int(self.n_way, "n_way", low=2)
        check_int(self.n_shot, "n_shot", low=1)
        check_int(self.n_query, "n_query", low=1)
        check_int(self.n_epochs, "n_epochs", low=1)
        check_int(self.episodes_per_epoch, "episodes_per_epoch", low=1)
        check_float(self.lr, "lr", low=0.0, low_open=True)
        check_float(self.lr_weights, "lr_weights", low=0.0, low_open=True)
        return channels

    def fit(self, X: Any, y: Any) -> "MSENet":
        """Episodic training on images ``X`` ``(n, H, W)`` or ``(n, C, H, W)`` with class labels ``y`` ``(n,)``."""
        X = _check_images(X)
        y = check_array(y, "y", ndim=1, dtype=np.int64)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y has length {y.shape[0]}, expected {X.shape[0]}")
        channels = self._check_params()
        n_way, n_shot, n_query = int(self.n_way), int(self.n_shot), int(self.n_query)
        values, counts = np.unique(y, return_counts=True)
        classes = values[counts >= n_shot + 1]
        if len(classes) < n_way:
            raise ValueError(f"need at least n_way={n_way} classes with >= n_shot + 1 = {n_shot + 1} samples, "
                             f"got {len(classes)}")
        device = check_device(self.device)
        seed = int(check_random_state(self.random_state).integers(0, 2**31 - 1))
        stages = (0, 1, 2) if self.stages == "all" else (2,)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = MultiScaleProtoNet(X.shape[1], channels, stages, self.attention, self.learn_weights)
        slow = [p for n, p in net.named_parameters() if not (n == "stage_weights" or n.endswith("gamma"))]
        fast = [p for n, p in net.named_parameters() if n == "stage_weights" or n.endswith("gamma")]
        groups = [{"params": slow, "lr": float(self.lr)}] + ([{"params": fast, "lr": float(self.lr_weights)}] if fast else [])
        x_all = torch.as_tensor(X, device=device)
        y_np = y

        def episodes(epoch: int, g: torch.Generator):
            cpu_g = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), generator=g, device=g.device)))
            for _ in range(int(self.episodes_per_epoch)):
                s_idx, s_lab, q_idx, q_lab = _episode(y_np, classes, n_way, n_shot, n_query, cpu_g)
                yield (x_all[torch.as_tensor(s_idx, device=device)], torch.as_tensor(s_lab, device=device),
                       x_all[torch.as_tensor(q_idx, device=device)], torch.as_tensor(q_lab, device=device))

        def loss_fn(model: MultiScaleProtoNet, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
            sx, sy, qx, qy = batch
            return F.cross_entropy(model(sx, sy, qx, n_way), qy)

        result = Trainer(net, torch.optim.Adam(groups), loss_fn, max_epochs=int(self.n_epochs), device=device,
                         random_state=seed, verbose=self.verbose).fit(episodes)
        self.history_ = result.history
        self.net_ = net.cpu().eval()
        self.stage_weights_ = net.weights.detach().cpu().double().numpy()
        self.input_shape_ = X.shape[1:]
        return self

    def _images(self, X: Any, name: str) -> torch.Tensor:
        X = _check_images(X, name)
        if X.shape[1:] != self.input_shape_:
            raise ValueError(f"{name} has image shape {X.shape[1:]}, the model was fitted on {self.input_shape_}")
        return torch.as_tensor(X)

    def predict_episode(self, X_support: Any, y_support: Any, X_query: Any) -> np.ndarray:
        """Labels (from ``y_support``'s values) of ``X_query`` given a labelled support set."""
        self._check_is_fitted()
        sx, qx = self._images(X_support, "X_support"), self._images(X_query, "X_query")
        ys = check_array(y_support, "y_support", ndim=1, dtype=np.int64)
        if ys.shape[0] != sx.shape[0]:
            raise ValueError(f"y_support has length {ys.shape[0]}, expected {sx.shape[0]}")
        values, inverse = np.unique(ys, return_inverse=True)
        with torch.no_grad():
            logits = self.net_(sx, torch.as_tensor(inverse), qx, len(values))
        return values[logits.argmax(1).numpy()]

    def score_episodes(self, X: Any, y: Any, *, n_episodes: int = 100, n_way: int = 5, n_shot: int = 5,
                       n_query: int = 15, random_state: Any = None) -> float:
        """Mean query accuracy over ``n_episodes`` random episodes drawn from ``(X, y)`` (e.g. novel classes)."""
        self._check_is_fitted()
        X = _check_images(X)
        y = check_array(y, "y", ndim=1, dtype=np.int64)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y has length {y.shape[0]}, expected {X.shape[0]}")
        n_episodes = check_int(n_episodes, "n_episodes", low=1)
        n_way, n_shot, n_query = check_int(n_way, "n_way", low=2), check_int(n_shot, "n_shot", low=1), \
            check_int(n_query, "n_query", low=1)
        values, counts = np.unique(y, return_counts=True)
        classes = values[counts >= n_shot + 1]
        if len(classes) < n_way:
            raise ValueError(f"need at least n_way={n_way} classes with >= {n_shot + 1} samples, got {len(classes)}")
        g = torch_generator(random_state, "cpu")
        accs = []
        for _ in range(n_episodes):
            s_idx, s_lab, q_idx, q_lab = _episode(y, classes, n_way, n_shot, n_query, g)
            accs.append(np.mean(self.predict_episode(X[s_idx], s_lab, X[q_idx]) == q_lab))
        return float(np.mean(accs))


def _spec_input(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((24, 4, 4)), np.repeat(np.arange(3), 8)


register_estimator(
    "MSENet",
    EstimatorSpec(
        factory=lambda: MSENet(channels=(4, 4, 4), n_way=2, n_shot=2, n_query=2, n_epochs=2, episodes_per_epoch=2,
                               random_state=0),
        make_input=_spec_input,
        output=lambda est, args: est.stage_weights_,
        bad_inputs={
            "nan": lambda: (np.full((6, 4, 4), np.nan), np.arange(6) % 2),
            "flat": lambda: (np.zeros((6, 16)), np.arange(6) % 2),
            "label_length": lambda: (np.zeros((6, 4, 4)), np.arange(5) % 2),
            "too_few_classes": lambda: (np.zeros((6, 4, 4)), np.zeros(6, dtype=int)),
        },
        fitted_method=None,
    ),
)
