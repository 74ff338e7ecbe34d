"""Koopman representation learned with the information Lagrangian.

An encoder ``phi`` maps states ``x_t`` ``(d)`` to latents ``z_t`` ``(m)``; on each batch the Koopman
operator is fitted in closed form by ridge least squares over the pairs ``(z_t, z_{t+1})``,

    K = (Z^T Z + ridge I)^{-1} Z^T Z'      (rows: ``z_{t+1} ≈ z_t K``, K detached),

and a decoder ``psi`` maps latents back. The loss is the information Lagrangian

    L = L_fwd + lam_id L_id + lam_mi L_MI + entropy_sign * lam_ent * S_vN,

- ``L_fwd = mean_t |psi(z_t K) - x_{t+1}|^2`` (one-step prediction; ``horizon > 1`` averages the
  ``s``-step errors ``|psi(z_t K^s) - x_{t+s}|^2``, ``s = 1..horizon``),
- ``L_id = mean_t |psi(z_t) - x_t|^2`` (reconstruction),
- ``L_MI``: multi-positive temporal InfoNCE (:func:`temporal_infonce`, a bound on the mutual
  information between latents of nearby times),
- ``S_vN = -tr(rho log rho)``, ``rho = Sigma_z / tr Sigma_z`` (:func:`von_neumann_entropy`).

The paper argues the entropy must be *maximised* to keep the latent from collapsing onto a few
modes (``entropy_sign = -1``, the default); the released trainer adds ``+beta S_vN`` (minimises
it), which ``entropy_sign = +1`` reproduces.

References
----------
"Information Shapes Koopman Representation" (official code: github.com/Wenxuan52/InformationKoopman);
B. O. Koopman, "Hamiltonian systems and transformation in Hilbert space", PNAS 1931; S. L. Brunton
et al., "Koopman invariant subspaces and finite linear representations of nonlinear dynamical
systems for control", PLoS ONE 2016 (the slow-manifold example used in the tests).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from graphrec.base import EstimatorSpec, GraphrecEstimator, register_estimator
from graphrec.core._checks import as_tensor
from graphrec.train import Trainer, tensor_batches
from graphrec.utils.validation import check_array, check_choice, check_device, check_float, check_int, check_random_state

__all__ = ["von_neumann_entropy", "temporal_infonce", "ridge_koopman", "InfoKoopman"]

logger = logging.getLogger(__name__)


def von_neumann_entropy(z: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Von Neumann entropy ``-tr(rho log rho)`` of the normalised covariance of ``z`` ``(n, m)``.

    ``rho = (Sigma + eps I) / tr(Sigma + eps I)`` with ``Sigma`` the centred covariance; equals
    ``log k`` for an isotropic rank-``k`` covariance and 0 for rank one. Returns a 0-d tensor
    (differentiable). ``exp`` of it is the effective rank.

    Examples
    --------
    >>> z = torch.eye(4, dtype=torch.float64).repeat(50, 1)
    >>> round(float(von_neumann_entropy(z)), 4)  # rank 3 after centring, isotropic
    1.0986
    """
    z = as_tensor(z, "z", ndim=2)
    if z.shape[0] < 2:
        raise ValueError(f"z needs at least 2 rows to form a covariance, got shape {tuple(z.shape)}")
    zc = z - z.mean(0, keepdim=True)
    cov = zc.T @ zc / (z.shape[0] - 1) + eps * torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
    lam = torch.linalg.eigvalsh(cov / torch.trace(cov)).clamp(min=torch.finfo(z.dtype).tiny)
    return -(lam * lam.log()).sum()


def temporal_infonce(z: torch.Tensor, k: int = 3, tau: float = 0.07) -> torch.Tensor:
    """Multi-positive temporal InfoNCE over trajectories ``z`` ``(B, T, m)``.

    For anchor ``z_n`` of a trajectory, positives are ``z_{n±i}`` (``1 <= i <= k``, inside the
    trajectory) and the denominator runs over every other time step of the same trajectory;
    similarities are cosines over ``tau``. Returns the mean over anchors of
    ``-mean_{p in P(n)} log softmax_{a != n}(s_na / tau)[p]`` (0-d).
    """
    z = as_tensor(z, "z", ndim=3)
    k = check_int(k, "k", low=1)
    tau = check_float(tau, "tau", low=0.0, low_open=True)
    steps = z.shape[1]
    if steps < 2:
        raise ValueError(f"z needs at least 2 time steps, got shape {tuple(z.shape)}")
    zn = F.normalize(z, dim=-1)
    logits = zn @ zn.transpose(1, 2) / tau
    t = torch.arange(steps, device=z.device)
    gap = (t[:, None] - t[None, :]).abs()
    self_mask = gap == 0
    positive = (gap >= 1) & (gap <= k)
    log_prob = logits.masked_fill(self_mask, float("-inf"))
    log_prob = log_prob - torch.logsumexp(log_prob, dim=-1, keepdim=True)
    per_anchor = -(log_prob.masked_fill(~positive, 0.0).sum(-1) / positive.sum(-1))
    return per_anchor.mean()


def ridge_koopman(z: torch.Tensor, z_next: torch.Tensor, ridge: float = 0.1) -> torch.Tensor:
    """``K = (Z^T Z + ridge I)^{-1} Z^T Z'`` for rows ``z`` and ``z_next`` ``(n, m)`` (so ``z_next ≈ z K``).

    The normal equations are formed and solved in float64 (``m`` is small) and ``K`` is returned in
    ``z``'s dtype: in float32, a latent coordinate that has collapsed next to large ones makes
    ``Z^T Z + ridge I`` singular to working precision.
    """
    z = as_tensor(z, "z", ndim=2)
    z_next = as_tensor(z_next, "z_next", ndim=2).to(z)
    if z.shape != z_next.shape:
        raise ValueError(f"z and z_next must have the same shape, got {tuple(z.shape)} and {tuple(z_next.shape)}")
    ridge = check_float(ridge, "ridge", low=0.0)
    z64, z_next64 = z.double(), z_next.double()
    gram = z64.T @ z64 + ridge * torch.eye(z.shape[1], dtype=torch.float64, device=z.device)
    k, info = torch.linalg.solve_ex(gram, z64.T @ z_next64)
    if int(info) != 0:
        raise ValueError(f"Z^T Z + ridge I is singular (ridge={ridge}): the latents z span fewer than their "
                         f"{z.shape[1]} dimensions; use ridge > 0")
    return k.to(z.dtype)


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class _KoopmanAE(nn.Module):
    def __init__(self, d: int, m: int, hidden: Sequence[int], linear_decoder: bool):
        super().__init__()
        self.encoder = _mlp([d, *hidden, m])
        self.decoder = nn.Linear(m, d) if linear_decoder else _mlp([m, *reversed(hidden), d])


class InfoKoopman(GraphrecEstimator):
    """Koopman autoencoder trained with the information Lagrangian (see the module docstring).

    Parameters
    ----------
    n_latent : int
        Latent (Koopman) dimension ``m``.
    hidden : tuple of int
        Hidden widths of the tanh MLP encoder (the decoder mirrors them).
    linear_decoder : bool
        Use a linear decoder (enough when the state is a linear function of the invariant latent).
    ridge : float
        Ridge of the closed-form operator fit (paper 0.1).
    lam_id, lam_mi, lam_ent : float
        Weights of reconstruction, temporal InfoNCE and von Neumann entropy (paper 0.1, 2.0, 0.1).
    entropy_sign : {-1, 0, 1}
        ``-1`` maximises the entropy (the paper's intent), ``+1`` minimises it (released code),
        ``0`` drops the term.
    mi_k, tau : int, float
        InfoNCE window and temperature (paper 3, 0.07).
    horizon : int
        ``L_fwd`` averages the errors of ``psi(z_t K^s)`` against ``x_{t+s}`` for ``s = 1..horizon``
        (paper: 1, one-step prediction; longer horizons pin down the spectrum of ``K``).
    lam_lin : float
        Weight of the latent linearity residual ``|z_{t+1} - z_t K|^2`` relative to the latent
        variance (Lusch et al., 2018; not in the paper, default 0).
    n_epochs, batch_size : int
        Epochs over the trajectories and trajectories per batch.
    lr : float
        Adam learning rate.
    grad_clip : float
    n_init : int, default=1
        Number of trainings from different initialisations; the one with the lowest final training
        loss (its last epoch's mean) is kept, as ``KMeans(n_init=...)`` keeps its lowest inertia.
        Training can stall in a poor local optimum (a pair of slow modes merged into a complex
        pair, say) that shows as a final loss an order of magnitude or more higher.
    random_state, device, verbose

    Attributes
    ----------
    koopman_ : ndarray (m, m)
        ``K`` fitted by ridge regression on all training pairs after training (``z_{t+1} ≈ z_t K``).
    eigenvalues_ : ndarray (m,) complex
        Eigenvalues of ``koopman_``, sorted by decreasing modulus.
    module_ : torch.nn.Module (``encoder``, ``decoder``)
    history_ : list of dict
        Per-epoch records of the kept training.
    best_init_ : int
        Index (from 0) of the kept training among the ``n_init``.

    Examples
    --------
    >>> t = np.arange(20) * 0.1
    >>> X = np.stack([np.stack([a * np.exp(-t), a * np.exp(-2 * t)], 1) for a in np.linspace(0.5, 1.5, 8)])
    >>> model = InfoKoopman(n_latent=2, hidden=(8,), n_epochs=2, random_state=0).fit(X)
    >>> model.predict(X[:, 0], n_steps=5).shape
    (8, 6, 2)
    """

    def __init__(
        self,
        n_latent: int = 3,
        *,
        hidden: tuple[int, ...] = (64, 64),
        linear_decoder: bool = False,
        ridge: float = 0.1,
        lam_id: float = 0.1,
        lam_mi: float = 2.0,
        lam_ent: float = 0.1,
        entropy_sign: int = -1,
        mi_k: int = 3,
        tau: float = 0.07,
        horizon: int = 1,
        lam_lin: float = 0.0,
        n_epochs: int = 100,
        batch_size: int = 16,
        lr: float = 1e-3,
        grad_clip: float = 1.0,
        n_init: int = 1,
        random_state: Any = None,
        device: Any = "cpu",
        verbose: bool | int = False,
    ):
        self.n_latent = n_latent
        self.hidden = hidden
        self.linear_decoder = linear_decoder
        self.ridge = ridge
        self.lam_id = lam_id
        self.lam_mi = lam_mi
        self.lam_ent = lam_ent
        self.entropy_sign = entropy_sign
        self.mi_k = mi_k
        self.tau = tau
        self.horizon = horizon
        self.lam_lin = lam_lin
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.grad_clip = grad_clip
        self.n_init = n_init
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    @staticmethod
    def _check_trajectories(X: Any, n_features: int | None = None) -> np.ndarray:
        X = check_array(X, "X", ndim=3)
        if X.shape[1] < 2:
            raise ValueError(f"X must hold trajectories (n_traj, T >= 2, d), got shape {X.shape}")
        if n_features is not None and X.shape[2] != n_features:
            raise ValueError(f"X has state dimension {X.shape[2]}, the model was fitted with {n_features}")
        return X

    def fit(self, X: Any, y: Any = None) -> "InfoKoopman":
        """Fit on trajectories ``X`` ``(n_traj, T, d)`` sampled at a fixed time step."""
        X = self._check_trajectories(X)
        m = check_int(self.n_latent, "n_latent", low=1)
        if isinstance(self.hidden, (str, bytes)) or not isinstance(self.hidden, Sequence):
            raise TypeError(f"hidden must be a tuple of layer widths, got {self.hidden!r}")
        hidden = [check_int(h, "hidden[i]", low=1) for h in self.hidden]
        ridge = check_float(self.ridge, "ridge", low=0.0)
        lam_id = check_float(self.lam_id, "lam_id", low=0.0)
        lam_mi = check_float(self.lam_mi, "lam_mi", low=0.0)
        lam_ent = check_float(self.lam_ent, "lam_ent", low=0.0)
        sign = check_choice(self.entropy_sign, "entropy_sign", (-1, 0, 1))
        mi_k = check_int(self.mi_k, "mi_k", low=1)
        lam_lin = check_float(self.lam_lin, "lam_lin", low=0.0)
        horizon = check_int(self.horizon, "horizon", low=1, high=X.shape[1] - 1)
        tau = check_float(self.tau, "tau", low=0.0, low_open=True)
        epochs = check_int(self.n_epochs, "n_epochs", low=1)
        batch = check_int(self.batch_size, "batch_size", low=1)
        lr = check_float(self.lr, "lr", low=0.0, low_open=True)
        clip = check_float(self.grad_clip, "grad_clip", low=0.0, low_open=True)
        n_init = check_int(self.n_init, "n_init", low=1)
        device = check_device(self.device)
        rng = check_random_state(self.random_state)
        xt = torch.as_tensor(X, dtype=torch.float32, device=device)

        def loss_fn(model: _KoopmanAE, b: tuple[torch.Tensor]) -> torch.Tensor:
            x = b[0]
            z = model.encoder(x)
            k = ridge_koopman(z[:, :-1].reshape(-1, m), z[:, 1:].reshape(-1, m), ridge).detach()
            loss = lam_id * F.mse_loss(model.decoder(z), x)
            if lam_lin > 0:  # latent linearity, relative to the latent variance (scale-free)
                residual = z[:, 1:] - z[:, :-1] @ k
                loss = loss + lam_lin * residual.pow(2).mean() / z.reshape(-1, m).var(0).sum().clamp(min=1e-12) * m
            pred = z
            for s in range(1, horizon + 1):
                pred = pred[:, :-1] @ k
                loss = loss + F.mse_loss(model.decoder(pred), x[:, s:]) / horizon
            if lam_mi > 0:
                loss = loss + lam_mi * temporal_infonce(z, mi_k, tau)
            if lam_ent > 0 and sign != 0:
                loss = loss + sign * lam_ent * von_neumann_entropy(z.reshape(-1, m))
            return loss

        best = None
        for i in range(n_init):
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(int(rng.integers(0, 2**63 - 1)))
                candidate = _KoopmanAE(X.shape[2], m, hidden, bool(self.linear_decoder))
            optimizer = torch.optim.Adam(candidate.parameters(), lr=lr)
            trainer = Trainer(candidate, optimizer, loss_fn, max_epochs=epochs, device=device, grad_clip=clip,
                              random_state=rng, verbose=self.verbose)
            result = trainer.fit(lambda epoch, g: tensor_batches(xt, batch_size=batch, generator=g))
            final_loss = result.history[-1]["train_loss"]
            logger.debug("InfoKoopman: initialisation %d of %d, final loss %.4g", i + 1, n_init, final_loss)
            if best is None or final_loss < best[0]:
                best = (final_loss, i, candidate, result)
        _, self.best_init_, module, result = best
        self.module_ = module.eval()
        self.n_features_in_ = X.shape[2]
        with torch.no_grad():
            z = module.encoder(xt).double()
            k = ridge_koopman(z[:, :-1].reshape(-1, m), z[:, 1:].reshape(-1, m), ridge)
        self.koopman_ = k.cpu().numpy()
        eig = np.linalg.eigvals(self.koopman_)
        self.eigenvalues_ = eig[np.argsort(-np.abs(eig), kind="stable")]
        self.history_ = result.history
        logger.info("InfoKoopman: final loss %.4g, |eigenvalues| %s", result.history[-1]["train_loss"], np.abs(self.eigenvalues_).round(4).tolist())
        return self

    @torch.no_grad()
    def transform(self, X: Any) -> np.ndarray:
        """Latents ``z = phi(x)`` for states ``X`` ``(..., d)`` -> ``(..., m)``."""
        self._check_is_fitted()
        X = check_array(X, "X")
        if X.ndim < 1 or X.shape[-1] != self.n_features_in_:
            raise ValueError(f"X must end with the state dimension {self.n_features_in_}, got shape {X.shape}")
        device = next(self.module_.parameters()).device
        return self.module_.encoder(torch.as_tensor(X, dtype=torch.float32, device=device)).double().cpu().numpy()

    @torch.no_grad()
    def predict(self, X0: Any, n_steps: int) -> np.ndarray:
        """Roll out ``x_s = psi(phi(x_0) K^s)`` for initial states ``X0`` ``(n, d)``: returns ``(n, n_steps + 1, d)``."""
        self._check_is_fitted()
        X0 = check_array(X0, "X0", ndim=2)
        if X0.shape[1] != self.n_features_in_:
            raise ValueError(f"X0 has state dimension {X0.shape[1]}, the model was fitted with {self.n_features_in_}")
        n_steps = check_int(n_steps, "n_steps", low=0)
        device = next(self.module_.parameters()).device
        z = self.module_.encoder(torch.as_tensor(X0, dtype=torch.float32, device=device)).double()
        k = torch.as_tensor(self.koopman_, device=device)
        latents = [z]
        for _ in range(n_steps):
            latents.append(latents[-1] @ k)
        out = self.module_.decoder(torch.stack(latents, 1).float())
        return out.double().cpu().numpy()


def _decaying(seed: int) -> tuple[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(6) * 0.1
    a = rng.uniform(0.5, 1.5, size=(6, 1))
    return (np.stack([a * np.exp(-t), a**2 * np.exp(-2 * t)], 2),)


register_estimator(
    "InfoKoopman",
    EstimatorSpec(
        factory=lambda: InfoKoopman(n_latent=2, hidden=(4,), n_epochs=2, batch_size=3, random_state=0),
        make_input=_decaying,
        output=lambda est, args: est.koopman_,
        bad_inputs={
            "2-d X": lambda: (np.ones((5, 2)),),
            "one time step": lambda: (np.ones((4, 1, 2)),),
            "nan": lambda: (np.full((3, 4, 2), np.nan),),
        },
        fitted_method="transform",
    ),
)
