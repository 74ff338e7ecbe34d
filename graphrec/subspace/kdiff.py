"""k-Diff: a generalised diffusion prediction target chosen by the data's dimensionality.

Flow-matching convention (as in JiT): ``z_t = alpha_t x + sigma_t eps`` with ``alpha_t = t``,
``sigma_t = 1 - t``, ``t in (0, 1)`` (``t = 1`` is data) and velocity ``v = x - eps``.
The network predicts the interpolated target

    ``u_k = k x - (1 - k) eps``       (k = 1: x-prediction, k = 0: -eps-prediction, k = 1/2: v / 2)

and the estimates of ``x`` and ``eps`` follow by inverting the 2x2 system
(``den = (1 - k) alpha + k sigma``)::

    x_hat   = ((1 - k) z_t + sigma u_hat) / den
    eps_hat = (k z_t - alpha u_hat) / den

The paper's analysis gives the optimal ``k* = D / (D + d)`` for ambient dimension ``D`` and
intrinsic dimension ``d``: x-prediction (``k -> 1``) when ``d << D``, v-prediction (``k = 1/2``)
when ``d = D``. k-Diff learns ``k = sigmoid(w_k)`` jointly with the network; the loss then has to
live in a space that does not depend on ``k``, which we take to be velocity space,
``||(x_hat - eps_hat) - v||^2`` [recon] (JiT pairs x-prediction with a v-loss).

Reference: Q. Jin, C. Wang, "Revisiting diffusion model predictions through dimensionality",
arXiv 2601.21419, 2026. The notes mark the method details as coming from a second-hand summary;
the conversions are exact algebra (tested), the learnt-k loss space is [recon].
Intrinsic dimension for ``k="auto"``: E. Facco, M. d'Errico, A. Rodriguez, A. Laio, "Estimating the
intrinsic dimension of datasets by a minimal neighborhood information", Sci. Rep. 7, 2017 (TwoNN).
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from torch import nn

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.core._checks import as_tensor
from graphrec.train import Trainer, tensor_batches
from graphrec.utils.validation import (
    check_array,
    check_device,
    check_float,
    check_int,
    check_random_state,
    torch_generator,
)

__all__ = ["KDiffusion", "KDiffusionMLP", "k_target", "optimal_k", "to_x_eps", "twonn_dimension"]


def _check_k(k: Any) -> Any:
    if isinstance(k, torch.Tensor):
        if bool(((k < 0) | (k > 1)).any()):
            raise ValueError("k must lie in [0, 1]")
        return k
    return check_float(k, "k", low=0.0, high=1.0)


def k_target(x: Any, eps: Any, k: Any) -> torch.Tensor:
    """The prediction target ``u_k = k x - (1 - k) eps``; ``x`` and ``eps`` ``(n, D)``, ``k`` in ``[0, 1]``.

    >>> x, e = torch.ones(1, 2), torch.zeros(1, 2)
    >>> k_target(x, e, 0.5).tolist()  # v / 2 with v = x - eps
    [[0.5, 0.5]]
    """
    x = as_tensor(x, "x", ndim=2)
    eps = as_tensor(eps, "eps", ndim=2).to(x)
    if x.shape != eps.shape:
        raise ValueError(f"x and eps must have the same shape, got {tuple(x.shape)} and {tuple(eps.shape)}")
    k = _check_k(k)
    return k * x - (1 - k) * eps


def to_x_eps(u_hat: Any, z_t: Any, t: Any, k: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Invert a ``u_k`` prediction into ``(x_hat, eps_hat)`` at time ``t`` (scalar or ``(n,)`` in ``(0, 1)``).

    ``u_hat`` and ``z_t`` are ``(n, D)``. Exact for the true ``u_k`` whenever ``den > 0``.
    """
    u_hat = as_tensor(u_hat, "u_hat", ndim=2)
    z_t = as_tensor(z_t, "z_t", ndim=2).to(u_hat)
    if u_hat.shape != z_t.shape:
        raise ValueError(f"u_hat and z_t must have the same shape, got {tuple(u_hat.shape)} and {tuple(z_t.shape)}")
    t = as_tensor(t, "t").to(u_hat).reshape(-1)
    if t.numel() not in (1, u_hat.shape[0]):
        raise ValueError(f"t must be a scalar or have {u_hat.shape[0]} entries, got {t.numel()}")
    if bool(((t <= 0) | (t >= 1)).any()):
        raise ValueError("t must lie in the open interval (0, 1)")
    return _invert(u_hat, z_t, t[:, None], _check_k(k))


def _invert(u_hat: torch.Tensor, z_t: torch.Tensor, t: torch.Tensor, k: Any) -> tuple[torch.Tensor, torch.Tensor]:
    alpha, sigma = t, 1 - t
    den = (1 - k) * alpha + k * sigma
    return ((1 - k) * z_t + sigma * u_hat) / den, (k * z_t - alpha * u_hat) / den


def optimal_k(ambient_dim: float, intrinsic_dim: float) -> float:
    """``k* = D / (D + d)`` (k-Diff's optimum for ambient ``D`` and intrinsic ``d``).

    >>> optimal_k(2, 2), round(optimal_k(1024, 16), 4)
    (0.5, 0.9846)
    """
    ambient_dim = check_float(ambient_dim, "ambient_dim", low=0.0, low_open=True)
    intrinsic_dim = check_float(intrinsic_dim, "intrinsic_dim", low=0.0, low_open=True)
    if intrinsic_dim > ambient_dim:
        raise ValueError(f"intrinsic_dim ({intrinsic_dim}) cannot exceed ambient_dim ({ambient_dim})")
    return ambient_dim / (ambient_dim + intrinsic_dim)


def twonn_dimension(X: Any) -> float:
    """TwoNN intrinsic-dimension estimate ``n / sum_i log(r2_i / r1_i)`` of the rows of ``X`` ``(n, D)``.

    ``r1, r2`` are each point's first and second nearest-neighbour distances (maximum-likelihood
    form of Facco et al. 2017); duplicate points are dropped first.
    """
    from sklearn.neighbors import NearestNeighbors

    X = np.unique(check_array(X, "X", ndim=2, min_rows=3), axis=0)
    if X.shape[0] < 3:
        raise ValueError("X needs at least 3 distinct rows to estimate an intrinsic dimension")
    dist, _ = NearestNeighbors(n_neighbors=3).fit(X).kneighbors(X)
    total = np.log(dist[:, 2] / dist[:, 1]).sum()
    if total <= 1e-9 * X.shape[0]:  # r2 = r1 at every point (up to rounding): the ratio carries no dimension
        raise ValueError("X's points are equidistant from their two nearest neighbours (r2 = r1 for every row), "
                         "so the TwoNN estimate is undefined; expected points in general position")
    return float(X.shape[0] / total)


class KDiffusionMLP(nn.Module):
    """MLP ``(z_t, t) -> u_hat`` with a learnable or fixed ``k``.

    Parameters
    ----------
    ambient_dim : int
        ``D`` (input and output width).
    hidden_dim : int
        Width of the hidden layers; a width below ``D`` is a bottleneck that can carry a
        low-dimensional ``x`` but not full-dimensional noise (the regime where k matters).
    n_layers : int
        Number of hidden layers (>= 1).
    k : float or None
        Fixed ``k``; ``None`` learns ``k = sigmoid(w_k)`` starting from ``k = 1/2``.
    """

    def __init__(self, ambient_dim: int, hidden_dim: int, n_layers: int, k: float | None) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = ambient_dim + 1
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden_dim), nn.SiLU()]
            width = hidden_dim
        layers.append(nn.Linear(width, ambient_dim))
        self.net = nn.Sequential(*layers)
        self.k_logit = nn.Parameter(torch.zeros(())) if k is None else None
        self.register_buffer("k_fixed", torch.tensor(0.5 if k is None else float(k)))

    @property
    def k(self) -> torch.Tensor:
        """Current ``k`` (0-d tensor)."""
        return torch.sigmoid(self.k_logit) if self.k_logit is not None else self.k_fixed

    def forward(self, z_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z_t`` ``(n, D)``, ``t`` ``(n,)`` -> ``(x_hat, eps_hat)``, each ``(n, D)``."""
        u_hat = self.net(torch.cat([z_t, t[:, None]], dim=1))
        return _invert(u_hat, z_t, t[:, None], self.k)


def _v_loss(model: KDiffusionMLP, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Velocity-space loss ``mean ||(x_hat - eps_hat) - (x - eps)||^2`` (independent of k) [recon]."""
    x, t, eps = batch
    z_t = t[:, None] * x + (1 - t[:, None]) * eps
    x_hat, eps_hat = model(z_t, t)
    return (((x_hat - eps_hat) - (x - eps)) ** 2).sum(1).mean()


class KDiffusion(GraphrecEstimator):
    """A small diffusion (flow-matching) model with k-Diff's generalised prediction target.

    Parameters
    ----------
    k : float in [0, 1], "learn" or "auto", default "learn"
        Fixed target (1: x-prediction, 0: eps-prediction, 0.5: v/2), learnt jointly (k-Diff), or
        ``optimal_k(D, d_hat)`` with ``d_hat`` the TwoNN estimate of the training data.
    hidden_dim : int, default 128
    n_layers : int, default 3
    n_epochs : int, default 200
    batch_size : int, default 256
    lr : float, default 2e-3
    t_eps : float, default 0.05
        Training times are ``t ~ U(t_eps, 1 - t_eps)``; the sampler integrates over the same range
        (the conversions divide by ``t`` or ``1 - t``).
    random_state, device, verbose
        As everywhere in graphrec.

    Attributes
    ----------
    k_ : float
        The ``k`` used (learnt value for ``"learn"``).
    intrinsic_dim_ : float or None
        TwoNN estimate (``k="auto"`` only).
    net_ : KDiffusionMLP
        Trained network (on CPU).
    history_ : list of dict
        The trainer's per-epoch records.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((256, 2)) @ np.linalg.qr(rng.standard_normal((8, 2)))[0].T
    >>> model = KDiffusion(k=1.0, hidden_dim=16, n_epochs=2, random_state=0).fit(X)
    >>> model.sample(5, random_state=0).shape
    (5, 8)
    """

    def __init__(
        self, k: float | str = "learn", *, hidden_dim: int = 128, n_layers: int = 3, n_epochs: int = 200,
        batch_size: int = 256, lr: float = 2e-3, t_eps: float = 0.05, random_state: Any = None,
        device: str = "cpu", verbose: bool = False,
    ) -> None:
        self.k = k
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.t_eps = t_eps
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _fixed_k(self, X: np.ndarray) -> float | None:
        if isinstance(self.k, str):
            if self.k == "learn":
                return None
            if self.k == "auto":
                self.intrinsic_dim_ = min(twonn_dimension(X), float(X.shape[1]))
                return optimal_k(X.shape[1], self.intrinsic_dim_)
            raise ValueError(f"k={self.k!r} is not valid; expected a number in [0, 1], 'learn' or 'auto'")
        if isinstance(self.k, bool) or not isinstance(self.k, numbers.Real):
            raise TypeError(f"k must be a number in [0, 1], 'learn' or 'auto', got {type(self.k).__name__}")
        return check_float(self.k, "k", low=0.0, high=1.0)

    def fit(self, X: Any, y: Any = None) -> "KDiffusion":
        """Train on samples ``X`` ``(n, D)`` (``y`` ignored)."""
        X = check_array(X, "X", ndim=2, min_rows=2)
        check_int(self.hidden_dim, "hidden_dim", low=1)
        check_int(self.n_layers, "n_layers", low=1)
        check_int(self.n_epochs, "n_epochs", low=1)
        check_int(self.batch_size, "batch_size", low=1)
        check_float(self.lr, "lr", low=0.0, low_open=True)
        t_eps = check_float(self.t_eps, "t_eps", low=0.0, high=0.49, low_open=True)
        device = check_device(self.device)
        self.intrinsic_dim_ = None
        k = self._fixed_k(X)
        rng = check_random_state(self.random_state)
        seed = int(rng.integers(0, 2**31 - 1))
        torch_init = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=torch_init)))
            net = KDiffusionMLP(X.shape[1], int(self.hidden_dim), int(self.n_layers), k)
        x = torch.as_tensor(X, dtype=torch.float32, device=device)

        def batches(epoch: int, generator: torch.Generator):
            t = t_eps + (1 - 2 * t_eps) * torch.rand(x.shape[0], generator=generator, device=generator.device)
            eps = torch.randn(x.shape, generator=generator, device=generator.device)
            return tensor_batches(x, t, eps, batch_size=int(self.batch_size), generator=generator)

        result = Trainer(net, torch.optim.Adam(net.parameters(), lr=float(self.lr)), _v_loss,
                         max_epochs=int(self.n_epochs), device=device, random_state=seed,
                         verbose=self.verbose).fit(batches)
        self.history_ = result.history
        self.net_ = net.cpu().eval()
        self.k_ = float(net.k.detach())
        self.n_features_in_ = X.shape[1]
        return self

    def sample(self, n_samples: int, *, n_steps: int = 50, random_state: Any = None) -> np.ndarray:
        """Draw ``n_samples`` points ``(n_samples, D)`` with an Euler ODE sampler of ``n_steps`` steps.

        Integrates ``dz/dt = x_hat - eps_hat`` from ``t_eps`` (pure noise) to ``1 - t_eps`` and
        returns the final ``x_hat``.
        """
        self._check_is_fitted()
        n_samples = check_int(n_samples, "n_samples", low=1)
        n_steps = check_int(n_steps, "n_steps", low=1)
        gen = torch_generator(random_state, "cpu")
        t_eps = float(self.t_eps)
        grid = torch.linspace(t_eps, 1 - t_eps, n_steps + 1)
        z = torch.randn((n_samples, self.n_features_in_), generator=gen)
        with torch.no_grad():
            for i in range(n_steps):
                t = grid[i].expand(n_samples)
                x_hat, eps_hat = self.net_(z, t)
                z = z + (grid[i + 1] - grid[i]) * (x_hat - eps_hat)
            x_hat, _ = self.net_(z, grid[-1].expand(n_samples))
        return x_hat.double().numpy()


def _spec_input(seed: int) -> tuple[np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((64, 2)) @ rng.standard_normal((2, 6)),)


register_estimator(
    "KDiffusion",
    EstimatorSpec(
        factory=lambda: KDiffusion(hidden_dim=8, n_layers=1, n_epochs=2, random_state=0),
        make_input=_spec_input,
        output=lambda est, args: est.sample(4, random_state=0),
        bad_inputs={
            "nan": lambda: (np.full((10, 4), np.nan),),
            "one-d": lambda: (np.zeros(10),),
            "empty": lambda: (np.zeros((0, 3)),),
        },
        fitted_method="sample",
    ),
)
