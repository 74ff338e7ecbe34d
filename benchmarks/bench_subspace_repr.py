"""Qualitative claims of the subspace representation learners, measured side by side.

Writes benchmarks/results/subspace_repr.json and .md. Each section is a small CPU run:

* gcr:     digits (70/30 split), MLP 64->64 + GCR head (k=4) vs the same MLP + linear softmax head:
           test accuracy, orthonormality error of the class bases, fit time;
* dsl:     8x8 images with the class pattern in the bottom-right corner and a strong random
           distractor top-left: Recall@1 on held-out images, final number of learners K, mean
           attention on the informative / distractor regions; growth on vs off (patience > epochs);
* hydra:   features = [factor a block | factor b block | noise block]; positive pairs share factor a
           only: mean gate on each block;
* rasa:    planted positional component: position-probe R^2 before / after, semantic-probe accuracy
           change, largest principal angle (deg) between planted and removed subspaces;
* franca:  digits, kNN (k=5) test accuracy of the first 2 / 4 / 32 embedding dims, nested
           Matryoshka head vs a single full-dim head;
* hypcd:   hierarchical blobs (8 leaves, depth 3, d=16), old classes {0,2,4,6} half labelled:
           unlabelled ACC all / old / new, hyperbolic vs euclidean (sphere) vs ss-k-means on the
           standardised raw features.

Usage: python benchmarks/bench_subspace_repr.py [--only gcr,dsl,...] [--seeds 0 1 2]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier


def _digits(seed: int):
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.3, random_state=seed, stratify=y)


def bench_gcr(seed: int) -> dict:
    from graphrec.subspace.grassmann_class import GrassmannClassifier

    Xtr, Xte, ytr, yte = _digits(seed)
    out = {}
    for head in ("gcr", "linear"):
        t0 = time.perf_counter()
        clf = GrassmannClassifier(head, subspace_dim=4, hidden=(64,), n_epochs=30, random_state=seed).fit(Xtr, ytr)
        out[f"{head}_fit_s"] = time.perf_counter() - t0
        out[f"{head}_test_acc"] = clf.score(Xte, yte)
        if head == "gcr":
            b = clf.network_.head.bases.detach()
            out["gcr_orth_err"] = float((b.mT @ b - torch.eye(b.shape[-1])).abs().max())
    return out


def _planted_images(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    patterns = 1.5 * np.random.default_rng(99).standard_normal((4, 3, 3))
    X = 0.3 * rng.standard_normal((n, 8, 8))
    X[:, 5:8, 5:8] += patterns[y]
    X[:, 0:4, 0:4] += 1.5 * rng.standard_normal((n, 4, 4))
    return X, y


def bench_dsl(seed: int) -> dict:
    from graphrec.subspace.dynamic import DynamicSubspaceLearners

    X, y = _planted_images(400, seed)
    Xt, yt = _planted_images(200, seed + 100)
    out = {}
    for name, patience in (("grow", 3), ("fixed", 1000)):
        m = DynamicSubspaceLearners(dim=32, width=16, patience=patience, n_epochs=40, random_state=seed).fit(X, y)
        knn = KNeighborsClassifier(1).fit(m.transform(X), y)
        att = m.attention(Xt)
        out.update({f"{name}_recall@1": knn.score(m.transform(Xt), yt), f"{name}_K": len(m.learners_),
                    f"{name}_att_informative": float(att[:, 5:8, 5:8].mean()),
                    f"{name}_att_distractor": float(att[:, 0:4, 0:4].mean())})
    return out


def bench_hydra(seed: int) -> dict:
    from graphrec.subspace.hydra import SimLAP

    rng = np.random.default_rng(seed)
    na, nb, bd, n = 4, 4, 6, 1200
    A, B = 2 * rng.standard_normal((na, bd)), 2 * rng.standard_normal((nb, bd))
    a, b = rng.integers(0, na, n), rng.integers(0, nb, n)
    X = np.hstack([A[a], B[b], np.zeros((n, bd))]) + 0.5 * rng.standard_normal((n, 3 * bd))
    ca, cb = np.arange(na * nb) // nb, np.arange(na * nb) % nb
    pairs = (ca[:, None] == ca[None, :]) & (cb[:, None] != cb[None, :])
    m = SimLAP(hidden=(), n_epochs=20, batch_size=200, lr=3e-3, random_state=seed).fit(X, a * nb + b, pairs)
    cls = np.arange(na * nb)
    g = m.gate(cls, np.array([np.flatnonzero(pairs[c])[0] for c in cls]))
    return {"gate_shared_factor": float(g[:, :bd].mean()), "gate_other_factor": float(g[:, bd:2 * bd].mean()),
            "gate_noise": float(g[:, 2 * bd:].mean())}


def bench_rasa(seed: int) -> dict:
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from graphrec.core import principal_angles
    from graphrec.subspace.franca import RASA

    rng = np.random.default_rng(seed)
    n, d = 1500, 32
    pos = rng.integers(0, 10, (n, 2)).astype(float)
    y = rng.integers(0, 4, n)
    basis = np.linalg.qr(rng.standard_normal((d, 2)))[0]
    Z = rng.standard_normal((4, d))[y] + 0.5 * rng.standard_normal((n, d)) + 4 * (pos / 10 - 0.5) @ basis.T
    Z += 0.05 * rng.standard_normal((n, d))
    out = {"r2_before": LinearRegression().fit(Z, pos).score(Z, pos)}
    acc0 = LogisticRegression(max_iter=500).fit(Z, y).score(Z, y)
    for it in (1, 2, 3):
        rasa = RASA(n_iter=it).fit(Z, pos)
        Zc = rasa.transform(Z)
        out[f"r2_after_iter{it}"] = LinearRegression().fit(Zc, pos).score(Zc, pos)
        out[f"semantic_acc_change_iter{it}"] = LogisticRegression(max_iter=500).fit(Zc, y).score(Zc, y) - acc0
        out[f"max_angle_deg_iter{it}"] = float(np.degrees(float(principal_angles(basis, rasa.positional_basis_).max())))
    return out


def bench_franca(seed: int) -> dict:
    from graphrec.subspace.franca import MatryoshkaClustering

    Xtr, Xte, ytr, yte = _digits(0)
    out = {}
    for name, nested in (("nested", True), ("single", False)):
        m = MatryoshkaClustering((2, 4, 8, 16, 32), n_prototypes=40, nested=nested, noise=0.3, n_epochs=20,
                                 random_state=seed).fit(Xtr)
        for dim in (2, 4, 32):
            knn = KNeighborsClassifier(5).fit(m.transform(Xtr, dim), ytr)
            out[f"{name}_knn_acc_dim{dim}"] = knn.score(m.transform(Xte, dim), yte)
    return out


def bench_hypcd(seed: int) -> dict:
    from graphrec.subspace.hyperbolic_discovery import (
        HyperbolicCategoryDiscovery,
        gcd_accuracy,
        make_hierarchical_blobs,
        ss_kmeans,
    )

    X, y = make_hierarchical_blobs(60, 3, 16, noise=1.5, random_state=seed)
    old = np.array([0, 2, 4, 6])
    lab = np.isin(y, old) & (np.random.default_rng(seed).random(y.size) < 0.5)
    y_partial = np.where(lab, y, -1)
    codes = np.searchsorted(old, y_partial).clip(0, 3)
    raw = ss_kmeans((X - X.mean(0)) / X.std(0), np.where(lab, codes, -1), 8, random_state=seed)
    out = {f"raw_{k}": v for k, v in gcd_accuracy(y[~lab], raw[~lab], old).items()}
    for geometry in ("hyperbolic", "euclidean"):
        m = HyperbolicCategoryDiscovery(8, geometry=geometry, n_epochs=20, random_state=seed).fit(X, y_partial)
        out.update({f"{geometry}_{k}": v for k, v in gcd_accuracy(y[~lab], m.labels_[~lab], old).items()})
    return out


BENCHES = {"gcr": bench_gcr, "dsl": bench_dsl, "hydra": bench_hydra, "rasa": bench_rasa, "franca": bench_franca,
           "hypcd": bench_hypcd}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated subset of " + ",".join(BENCHES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", default="benchmarks/results/subspace_repr")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    results: dict = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else {}
    for name in args.only.split(","):
        runs = [BENCHES[name](seed) for seed in args.seeds]
        results[name] = {key: [float(r[key]) for r in runs] for key in runs[0]}
        results[name]["seeds"] = args.seeds
        print(name, json.dumps(results[name]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    lines = ["| bench | metric | mean over seeds | per seed |", "|---|---|---|---|"]
    for name, res in results.items():
        lines += [f"| {name} | {k} | {np.mean(v):.4g} | {', '.join(f'{x:.3g}' for x in v)} |"
                  for k, v in res.items() if k != "seeds"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
