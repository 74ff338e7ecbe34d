"""InfoKoopman on the slow-manifold system: the entropy term's sign over random_state 0-4 (one training each),
then the test setting (no entropy term, 600 epochs) with one training (random_state 0-7) and n_init=3 (0-5).

    python benchmarks/bench_koopman.py benchmarks/results/koopman_slow_manifold.json

``make_slow_manifold``'s defaults (mu = -0.5, lambda = -3, dt = 0.1; a 4-d Koopman latent is exact).
128 training trajectories of 30 steps, 30 test trajectories of 51 steps; the 50-step rollout from each
test trajectory's first state is scored.
"""
import json
import sys

import numpy as np
import torch

from graphrec.datasets.generators import make_slow_manifold
from graphrec.models.koopman import InfoKoopman, von_neumann_entropy

SEEDS = range(5)


def _test_setting_run(x: np.ndarray, test: np.ndarray, planted: np.ndarray, n_init: int, seed: int) -> dict:
    """``tests/test_models.py``'s spectrum fit with ``n_init`` and ``random_state=seed``."""
    k = InfoKoopman(n_latent=4, hidden=(32, 32), linear_decoder=True, ridge=1e-4, lam_mi=0.0, lam_ent=0.0, horizon=10,
                    lam_lin=1.0, n_epochs=600, batch_size=128, lr=5e-3, n_init=n_init, random_state=seed).fit(x)
    found = np.sort(np.abs(k.eigenvalues_))[::-1]
    run = dict(random_state=seed, final_loss=round(float(k.history_[-1]["train_loss"]), 6),
               max_abs_imag=round(float(np.abs(k.eigenvalues_.imag).max()), 4),
               abs_eigenvalue_errors=(found - planted).round(4).tolist(),
               rollout50_rel_mse=round(float(np.mean((k.predict(test[:, 0], 50) - test) ** 2) / np.mean(test**2)), 5))
    print(f"n_init={n_init}", run, flush=True)
    return run


def main(path: str) -> None:
    torch.set_num_threads(1)
    x, planted = make_slow_manifold(128, 30, return_eigenvalues=True, random_state=0)
    test = make_slow_manifold(30, 51, random_state=1)
    out = {"planted_abs_eigenvalues": planted.round(4).tolist()}
    for sign in (-1, 1):
        runs = []
        for seed in SEEDS:
            k = InfoKoopman(n_latent=4, hidden=(32, 32), linear_decoder=True, ridge=1e-4, lam_mi=0.0, lam_ent=0.01,
                            entropy_sign=sign, horizon=10, lam_lin=1.0, n_epochs=300, batch_size=128, lr=5e-3,
                            random_state=seed).fit(x)
            found = np.sort(np.abs(k.eigenvalues_))[::-1]
            runs.append(dict(
                random_state=seed,
                abs_eigenvalues=found.round(4).tolist(),
                max_abs_eigenvalue_error=round(float(np.abs(found - planted).max()), 4),
                rollout50_rel_mse=round(float(np.mean((k.predict(test[:, 0], 50) - test) ** 2) / np.mean(test**2)), 5),
                latent_entropy=round(float(von_neumann_entropy(torch.as_tensor(k.transform(x).reshape(-1, 4)))), 4),
                final_loss=round(float(k.history_[-1]["train_loss"]), 6)))
            print(sign, runs[-1], flush=True)
        out[f"entropy_sign={sign}"] = dict(
            runs=runs, **{f"median_{key}": float(np.median([r[key] for r in runs]))
                          for key in ("max_abs_eigenvalue_error", "rollout50_rel_mse", "latent_entropy")})
    out["test_setting"] = {f"n_init={n_init}": [_test_setting_run(x, test, planted, n_init, seed) for seed in seeds]
                           for n_init, seeds in ((1, range(8)), (3, range(6)))}
    with open(path, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
