"""Qualitative claims of the generative / representation subspace methods, measured side by side.

Writes benchmarks/results/subspace_generative.json and .md. Each section is a small CPU run:

* molrg:    trained MoLRG denoiser vs its seeding (principal angles to the planted subspaces, ACC);
* molrg_datasets: DiffusionSubspaceClustering on the ``graphrec bench subspace`` datasets (generated, digits);
* kdiff:    off-manifold residual of samples for x- vs eps-prediction, learnt k for D = 64 and D = 2;
* xfactors: linear-probe accuracy of each factor from each block, "out" vs "in" InfoNCE;
* temporal: latent-state kNN agreement and adjacent-step distance ratio (temporal term on / off,
            neighbour vs label positives);
* msenet:   5-way 5-shot accuracy on novel digit classes 5-9: multi-scale + attention vs the
            single-scale ProtoNet vs raw-pixel prototypes.

Usage: python benchmarks/bench_subspace_generative.py [--only molrg,kdiff,...] [--seeds 0 1 2]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def _angles(found, planted):
    from scipy.optimize import linear_sum_assignment

    from graphrec.core import principal_angles

    cost = np.array([[float(principal_angles(torch.tensor(f), torch.tensor(p)).max()) for p in planted] for f in found])
    r, c = linear_sum_assignment(cost)
    return np.degrees(cost[r, c])


def bench_molrg(seed: int) -> dict:
    from graphrec.datasets.generators import make_union_of_subspaces
    from graphrec.metrics import clustering_accuracy
    from graphrec.subspace.diffusion import DiffusionSubspaceClustering

    X, y, B = make_union_of_subspaces(600, 3, 30, 3, noise=0.1, return_bases=True, random_state=seed)
    seeded = DiffusionSubspaceClustering(3, 3, n_epochs=1, lr=1e-9, n_init=1, batch_size=600, random_state=seed).fit(X)
    t0 = time.perf_counter()
    model = DiffusionSubspaceClustering(3, 3, n_epochs=40, n_init=1, batch_size=600, random_state=seed).fit(X)
    return {"seed_max_angle_deg": float(_angles(seeded.bases_, B).max()),
            "trained_max_angle_deg": float(_angles(model.bases_, B).max()),
            "acc": clustering_accuracy(y, model.labels_), "fit_s": time.perf_counter() - t0}


def bench_molrg_datasets(seed: int) -> dict:
    """DiffusionSubspaceClustering (defaults) on the ``graphrec bench subspace`` datasets."""
    from sklearn.datasets import load_digits

    from graphrec.datasets.generators import make_union_of_subspaces
    from graphrec.metrics import clustering_accuracy
    from graphrec.subspace.diffusion import DiffusionSubspaceClustering

    X, y = make_union_of_subspaces(500, 10, 30, 4, noise=0.01, random_state=0)
    Xd, yd = load_digits(return_X_y=True)
    return {"generated_acc": clustering_accuracy(y, DiffusionSubspaceClustering(10, 4, random_state=seed).fit_predict(X)),
            "digits_acc": clustering_accuracy(yd, DiffusionSubspaceClustering(10, 5, random_state=seed).fit_predict(Xd))}


def _ring(D: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    th = rng.uniform(0, 2 * np.pi, n)
    a = np.c_[np.cos(th), np.sin(th)] * (1 + 0.05 * rng.standard_normal(n))[:, None]
    u = np.linalg.qr(rng.standard_normal((D, 2)))[0]
    return a @ u.T, u


def bench_kdiff(seed: int) -> dict:
    from graphrec.subspace.kdiff import KDiffusion

    out = {}
    X, u = _ring(64, 2000, seed)
    for name, k in (("x_pred", 1.0), ("eps_pred", 0.0), ("v_pred", 0.5), ("learn", "learn"), ("auto", "auto")):
        m = KDiffusion(k=k, hidden_dim=32, n_epochs=200, random_state=seed).fit(X)
        S = m.sample(500, random_state=seed + 1)
        out[f"D64_{name}_offmanifold"] = float(np.linalg.norm(S - S @ u @ u.T, axis=1).mean())
        out[f"D64_{name}_k"] = m.k_
    X2, _ = _ring(2, 2000, seed)
    out["D2_learn_k"] = KDiffusion(k="learn", hidden_dim=32, n_epochs=200, random_state=seed).fit(X2).k_
    return out


def bench_xfactors(seed: int) -> dict:
    from sklearn.linear_model import LogisticRegression

    from graphrec.subspace.xfactors import XFactors, make_factor_data

    X, F = make_factor_data(3000, 3, 4, 32, random_state=seed)
    out = {}
    for variant in ("out", "in"):
        m = XFactors(n_epochs=60, variant=variant, random_state=seed).fit(X[:2000], F[:2000])
        Z = m.transform(X)
        acc = np.array([[LogisticRegression(max_iter=2000).fit(Z[:2000, b], F[:2000, f]).score(Z[2000:, b], F[2000:, f])
                         for f in range(3)] for b in m.factor_slices_])
        out[f"{variant}_own_block_min_acc"] = float(np.diag(acc).min())
        out[f"{variant}_other_block_max_acc"] = float(acc[~np.eye(3, dtype=bool)].max())
    out["chance"] = 0.25
    return out


def bench_temporal(seed: int) -> dict:
    from sklearn.neighbors import KNeighborsClassifier

    from graphrec.subspace.temporal_scl import TemporalSCL, make_progression_sequences

    X, S, y = make_progression_sequences(300, 20, noise=1.5, random_state=seed)
    X, Xt, S, St, y, yt = X[:200], X[200:], S[:200], S[200:], y[:200], y[200:]

    def agree(Z, Zt):
        return KNeighborsClassifier(5).fit(Z.reshape(-1, Z.shape[-1]), S.ravel()).score(Zt.reshape(-1, Zt.shape[-1]), St.ravel())

    def ratio(Z):
        flat = Z.reshape(-1, Z.shape[-1])
        idx = np.random.default_rng(0).integers(0, len(flat), (3000, 2))
        return float(np.linalg.norm(Z[:, 1:] - Z[:, :-1], axis=2).mean()
                     / np.linalg.norm(flat[idx[:, 0]] - flat[idx[:, 1]], axis=1).mean())

    out = {"raw_agree": agree(X, Xt), "raw_adjacent_ratio": ratio(Xt)}
    for name, kw in (("neighbour_temporal", dict(positives="neighbour", lambda_temporal=5.0)),
                     ("neighbour_no_temporal", dict(positives="neighbour", lambda_temporal=0.0)),
                     ("label_temporal", dict(positives="label", lambda_temporal=5.0))):
        m = TemporalSCL(n_epochs=20, random_state=seed, **kw).fit(X, y)
        Zt = m.transform(Xt)
        out[f"{name}_agree"] = agree(m.transform(X), Zt)
        out[f"{name}_adjacent_ratio"] = ratio(Zt)
        out[f"{name}_last_step_acc"] = float((m.predict_proba(Xt)[:, -1].argmax(1) == yt).mean())
    return out


def _raw_prototypes(X, y, seed: int, n_episodes: int = 100) -> float:
    from graphrec.subspace.msenet import _episode

    g = torch.Generator().manual_seed(seed)
    flat = X.reshape(len(X), -1)
    accs = []
    for _ in range(n_episodes):
        s, sl, q, ql = _episode(y, np.unique(y), 5, 5, 15, g)
        protos = np.stack([flat[s][sl == c].mean(0) for c in range(5)])
        accs.append(np.mean(np.linalg.norm(flat[q][:, None] - protos[None], axis=2).argmin(1) == ql))
    return float(np.mean(accs))


def bench_msenet(seed: int) -> dict:
    from sklearn.datasets import load_digits

    from graphrec.subspace.msenet import MSENet

    d = load_digits()
    X, y = d.images / 16.0, d.target
    base, novel = y < 5, y >= 5
    out = {"raw_pixel_prototypes": _raw_prototypes(X[novel], y[novel], seed)}
    for name, kw in (("multiscale_attention", {}),
                     ("single_scale_protonet", dict(stages="last", attention=False, learn_weights=False))):
        m = MSENet(n_epochs=10, episodes_per_epoch=30, random_state=seed, **kw).fit(X[base], y[base])
        out[name] = m.score_episodes(X[novel], y[novel], n_episodes=100, random_state=seed)
    return out


BENCHES = {"molrg": bench_molrg, "molrg_datasets": bench_molrg_datasets, "kdiff": bench_kdiff, "xfactors": bench_xfactors, "temporal": bench_temporal,
           "msenet": bench_msenet}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset of " + ",".join(BENCHES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", default="benchmarks/results/subspace_generative")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results: dict = {}
    for name in args.only.split(","):
        runs = [BENCHES[name](seed) for seed in args.seeds]
        results[name] = {key: float(np.mean([r[key] for r in runs])) for key in runs[0]}
        results[name]["seeds"] = args.seeds
        print(name, json.dumps(results[name], indent=1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    lines = ["| bench | metric | value (mean over seeds) |", "|---|---|---|"]
    for name, res in results.items():
        lines += [f"| {name} | {k} | {v:.4g} |" for k, v in res.items() if k != "seeds"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
