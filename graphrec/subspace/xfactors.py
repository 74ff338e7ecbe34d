"""XFactors: a disentangled information bottleneck with contrastive supervision of factor subspaces.

Two Gaussian encoders share the input ``x`` (D,):

* ``q(z_s | x) = N(mu_s, diag sigma_s^2)`` spans the residual subspace S (``residual_dim``);
* ``q(z_t | x) = N(mu_t, diag sigma_t^2)`` spans the target subspace T, split into axis-aligned
  blocks ``T_1 .. T_K`` of ``dims_per_factor`` coordinates, one per supervised factor.

One decoder reads ``[z_s, z_t]``. The loss of a batch is

    ``L = ||x_hat - x||^2 + kl_weight (beta_s KL(q_s || N(0, I)) + beta_t KL(q_t || N(0, I)))
         + nce_weight sum_i NCE_sup(z_t[T_i], y_i; tau)``

where ``NCE_sup`` is the supervised InfoNCE of :func:`graphrec.core.supcon_loss` (the official
code uses the "L_in" variant, positives inside the log; we default to "L_out", see ``variant``): samples sharing the value of factor ``i`` are pulled
together *in block* ``T_i`` only, so each factor lands in its own coordinate subspace while the
KL bottleneck keeps the blocks from carrying anything else. Swapping block ``T_i`` between two
codes and decoding transfers factor ``i`` (:meth:`XFactors.swap`).

Reference: XFactors, "Disentangled information bottleneck via contrastive supervision"
(ICML 2026 submission, code github.com/ICML26-anon/XFactors: ``disdiff_adapters/loss/loss.py``;
defaults tau = 0.07, 2 dims per factor). Our encoders are MLPs for vector data.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import TransformerMixin
from torch import nn

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.core import supcon_loss
from graphrec.core._checks import as_tensor
from graphrec.train import Trainer, tensor_batches
from graphrec.utils.validation import check_array, check_choice, check_device, check_float, check_int, check_random_state

__all__ = ["XFactors", "XFactorsVAE", "gaussian_kl", "make_factor_data"]


def gaussian_kl(mu: Any, logvar: Any) -> torch.Tensor:
    """``KL(N(mu, diag exp(logvar)) || N(0, I))`` per row: ``1/2 sum(mu^2 + e^logvar - logvar - 1)``, shape ``(n,)``.

    >>> gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)).tolist()
    [0.0, 0.0]
    """
    mu = as_tensor(mu, "mu", ndim=2)
    logvar = as_tensor(logvar, "logvar", ndim=2).to(mu)
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    return 0.5 * (mu**2 + logvar.exp() - logvar - 1).sum(1)


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, d_out))


class XFactorsVAE(nn.Module):
    """The two-encoder, one-decoder Gaussian VAE of XFactors (MLPs).

    ``forward(x)`` with ``x`` ``(n, D)`` returns ``(x_hat, mu_s, logvar_s, mu_t, logvar_t, z_t)``;
    ``z_t`` ``(n, n_factors * dims_per_factor)`` is the sampled target code whose block
    ``[i * dims_per_factor, (i + 1) * dims_per_factor)`` is factor ``i``'s subspace.
    """

    def __init__(self, n_features: int, n_factors: int, dims_per_factor: int, residual_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.target_dim = n_factors * dims_per_factor
        self.residual_dim = residual_dim
        self.encoder_s = _mlp(n_features, hidden_dim, 2 * residual_dim)
        self.encoder_t = _mlp(n_features, hidden_dim, 2 * self.target_dim)
        self.decoder = _mlp(residual_dim + self.target_dim, hidden_dim, n_features)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(mu_s, logvar_s, mu_t, logvar_t)``."""
        mu_s, logvar_s = self.encoder_s(x).chunk(2, dim=1)
        mu_t, logvar_t = self.encoder_t(x).chunk(2, dim=1)
        return mu_s, logvar_s, mu_t, logvar_t

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mu_s, logvar_s, mu_t, logvar_t = self.encode(x)
        z_s = mu_s + torch.randn_like(mu_s) * (0.5 * logvar_s).exp()
        z_t = mu_t + torch.randn_like(mu_t) * (0.5 * logvar_t).exp()
        return self.decoder(torch.cat([z_s, z_t], 1)), mu_s, logvar_s, mu_t, logvar_t, z_t


def make_factor_data(
    n_samples: int = 2000, n_factors: int = 3, n_values: int = 4, n_features: int = 32, *,
    nuisance_dim: int = 2, noise: float = 0.05, random_state: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Vectors generated from planted discrete factors plus a continuous nuisance.

    Each factor ``i`` takes a uniform value in ``{0..n_values-1}`` with its own random 4-d
    embedding; the embeddings and a Gaussian nuisance ``(nuisance_dim,)`` are concatenated and
    mixed by a random two-layer tanh network into ``n_features`` dimensions, plus Gaussian noise.

    Returns
    -------
    X : ndarray (n_samples, n_features), float64
    factors : ndarray (n_samples, n_factors), int64
    """
    n_samples = check_int(n_samples, "n_samples", low=2)
    n_factors = check_int(n_factors, "n_factors", low=1)
    n_values = check_int(n_values, "n_values", low=2)
    n_features = check_int(n_features, "n_features", low=1)
    nuisance_dim = check_int(nuisance_dim, "nuisance_dim", low=0)
    noise = check_float(noise, "noise", low=0.0)
    rng = check_random_state(random_state)
    factors = rng.integers(0, n_values, size=(n_samples, n_factors))
    tables = rng.standard_normal((n_factors, n_values, 4))
    h = np.concatenate([tables[i][factors[:, i]] for i in range(n_factors)]
                       + [rng.standard_normal((n_samples, nuisance_dim))], axis=1)
    w1 = rng.standard_normal((h.shape[1], 64)) / np.sqrt(h.shape[1])
    w2 = rng.standard_normal((64, n_features)) / 8.0
    X = np.tanh(h @ w1) @ w2 + noise * rng.standard_normal((n_samples, n_features))
    return X, factors.astype(np.int64)


def _check_factors(factors: Any, n: int) -> np.ndarray:
    y = check_array(factors, "factors", dtype=np.int64, min_rows=1)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != n:
        raise ValueError(f"factors must have shape ({n}, n_factors), got {y.shape}")
    if y.min() < 0:
        raise ValueError(f"factors must be non-negative integer labels, got min {y.min()}")
    return y


class XFactors(TransformerMixin, GraphrecEstimator):
    """Factor-subspace encoder trained with a KL bottleneck and per-factor supervised InfoNCE.

    Parameters
    ----------
    dims_per_factor : int, default 2
        Width of each factor block ``T_i``.
    residual_dim : int, default 4
        Width of the residual subspace S.
    hidden_dim : int, default 128
    beta_s, beta_t : float, default 1.0
        KL weights of the residual and target encoders.
    kl_weight : float, default 1e-2
        Global KL weight ``w_kl``.
    nce_weight : float, default 1.0
        ``lambda_i`` (the same for every factor).
    temperature : float, default 0.07
    variant : {"out", "in"}, default "out"
        SupCon form of ``NCE_sup`` (see :func:`graphrec.core.supcon_loss`). The official code uses
        ``"in"`` (positives inside the log); on our generated factors ``"in"`` leaves other
        factors linearly decodable from a block (BENCHMARKS.md), ``"out"`` does not, so it is the
        default here.
    n_epochs : int, default 60
    batch_size : int, default 256
    lr : float, default 2e-3
    random_state, device, verbose
        As everywhere in graphrec.

    Attributes
    ----------
    net_ : XFactorsVAE
        The trained model (on CPU).
    n_factors_ : int
    factor_slices_ : list of slice
        Columns of :meth:`transform`'s output that form each factor block.
    history_ : list of dict
    """

    def __init__(
        self, *, dims_per_factor: int = 2, residual_dim: int = 4, hidden_dim: int = 128, beta_s: float = 1.0,
        beta_t: float = 1.0, kl_weight: float = 1e-2, nce_weight: float = 1.0, temperature: float = 0.07, variant: str = "out",
        n_epochs: int = 60, batch_size: int = 256, lr: float = 2e-3, random_state: Any = None, device: str = "cpu",
        verbose: bool = False,
    ) -> None:
        self.dims_per_factor = dims_per_factor
        self.residual_dim = residual_dim
        self.hidden_dim = hidden_dim
        self.beta_s = beta_s
        self.beta_t = beta_t
        self.kl_weight = kl_weight
        self.nce_weight = nce_weight
        self.temperature = temperature
        self.variant = variant
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _check_params(self) -> None:
        check_int(self.dims_per_factor, "dims_per_factor", low=1)
        check_int(self.residual_dim, "residual_dim", low=1)
        check_int(self.hidden_dim, "hidden_dim", low=1)
        for name in ("beta_s", "beta_t", "kl_weight", "nce_weight"):
            check_float(getattr(self, name), name, low=0.0)
        check_float(self.temperature, "temperature", low=0.0, low_open=True)
        check_choice(self.variant, "variant", ("out", "in"))
        check_int(self.n_epochs, "n_epochs", low=1)
        check_int(self.batch_size, "batch_size", low=2)
        check_float(self.lr, "lr", low=0.0, low_open=True)

    def fit(self, X: Any, factors: Any) -> "XFactors":
        """Train on ``X`` ``(n, D)`` with integer factor labels ``factors`` ``(n, K)`` (or ``(n,)`` for K = 1)."""
        X = check_array(X, "X", ndim=2, min_rows=2)
        y = _check_factors(factors, X.shape[0])
        self._check_params()
        device = check_device(self.device)
        seed = int(check_random_state(self.random_state).integers(0, 2**31 - 1))
        m, k = int(self.dims_per_factor), y.shape[1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = XFactorsVAE(X.shape[1], k, m, int(self.residual_dim), int(self.hidden_dim))
        x = torch.as_tensor(X, dtype=torch.float32, device=device)
        labels = torch.as_tensor(y, device=device)
        w_s = float(self.kl_weight) * float(self.beta_s)
        w_t = float(self.kl_weight) * float(self.beta_t)
        nce_w, tau = float(self.nce_weight), float(self.temperature)

        def loss_fn(model: XFactorsVAE, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            xb, yb = batch
            x_hat, mu_s, logvar_s, mu_t, logvar_t, z_t = model(xb)
            loss = ((x_hat - xb) ** 2).sum(1).mean()
            loss = loss + w_s * gaussian_kl(mu_s, logvar_s).mean() + w_t * gaussian_kl(mu_t, logvar_t).mean()
            for i in range(k):
                block, yi = z_t[:, i * m:(i + 1) * m], yb[:, i]
                if bool((torch.bincount(yi) > 1).any()):  # supcon needs a repeated label in the batch
                    loss = loss + nce_w * supcon_loss(block, yi, tau, variant=self.variant)
            return loss

        result = Trainer(net, torch.optim.Adam(net.parameters(), lr=float(self.lr)), loss_fn,
                         max_epochs=int(self.n_epochs), device=device, random_state=seed,
                         verbose=self.verbose).fit(
            lambda epoch, g: tensor_batches(x, labels, batch_size=int(self.batch_size), generator=g, drop_last=x.shape[0] > int(self.batch_size)))
        self.history_ = result.history
        self.net_ = net.cpu().eval()
        self.n_factors_ = k
        self.n_features_in_ = X.shape[1]
        self.factor_slices_ = [slice(i * m, (i + 1) * m) for i in range(k)]
        return self

    def _encode(self, X: Any) -> tuple[torch.Tensor, torch.Tensor]:
        X = self._check_fitted_input(X)
        with torch.no_grad():
            mu_s, _, mu_t, _ = self.net_.encode(torch.as_tensor(X, dtype=torch.float32))
        return mu_s, mu_t

    def transform(self, X: Any, *, normalize: bool = False) -> np.ndarray:
        """Target means ``mu_t`` ``(n, n_factors * dims_per_factor)``; block ``factor_slices_[i]`` is factor ``i``.

        With ``normalize`` each block is scaled to unit norm: the direction is what ``NCE_sup``
        shapes; the block norm is only held down by the KL term.
        """
        z = self._encode(X)[1]
        if normalize:
            z = torch.cat([torch.nn.functional.normalize(z[:, cols], dim=1) for cols in self.factor_slices_], 1)
        return z.double().numpy()

    def transform_residual(self, X: Any) -> np.ndarray:
        """Residual means ``mu_s`` ``(n, residual_dim)``."""
        return self._encode(X)[0].double().numpy()

    def swap(self, X_host: Any, X_donor: Any, factor: int) -> np.ndarray:
        """Decode the host codes with block ``factor`` replaced by the donor's (means, no sampling); ``(n, D)``."""
        mu_s, mu_t = self._encode(X_host)
        _, mu_t_donor = self._encode(X_donor)
        if mu_t_donor.shape != mu_t.shape:
            raise ValueError(f"X_host and X_donor must have the same shape, got {tuple(mu_t.shape)} and {tuple(mu_t_donor.shape)}")
        factor = check_int(factor, "factor", low=0, high=self.n_factors_ - 1)
        cols = self.factor_slices_[factor]
        mu_t = mu_t.clone()
        mu_t[:, cols] = mu_t_donor[:, cols]
        with torch.no_grad():
            return self.net_.decoder(torch.cat([mu_s, mu_t], 1)).double().numpy()


register_estimator(
    "XFactors",
    EstimatorSpec(
        factory=lambda: XFactors(hidden_dim=8, n_epochs=2, batch_size=32, random_state=0),
        make_input=lambda seed: make_factor_data(64, 2, 2, 6, random_state=seed),
        output=lambda est, args: est.transform(args[0]),
        bad_inputs={
            "nan": lambda: (np.full((10, 4), np.nan), np.zeros((10, 1), dtype=int)),
            "negative_factor": lambda: (np.zeros((10, 4)), -np.ones((10, 1), dtype=int)),
            "length_mismatch": lambda: (np.zeros((10, 4)), np.zeros((9, 1), dtype=int)),
            "float_factor": lambda: (np.zeros((10, 4)), np.full((10, 1), 0.5)),
        },
        fitted_method="transform",
    ),
)
