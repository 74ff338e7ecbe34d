"""Side-by-side numbers for SSVI (vs dense VI) and CDSP-MoE (vs unpruned / dense MoE); InfoKoopman: bench_koopman.py.

    python benchmarks/bench_models_extra.py benchmarks/results/models_extra.json
"""
import json, sys
import numpy as np, torch
torch.set_num_threads(1)
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from graphrec.models.ssvi import SSVIClassifier
from graphrec.models.moe import CDSPMoERegressor

out = {}
def ece(p, y, bins=10):
    conf, ok = p.max(1), p.argmax(1) == y
    e = np.linspace(0, 1, bins + 1)
    return float(sum(((conf > a) & (conf <= b)).mean() * abs(ok[(conf > a) & (conf <= b)].mean() - conf[(conf > a) & (conf <= b)].mean())
                     for a, b in zip(e[:-1], e[1:]) if ((conf > a) & (conf <= b)).any()))
X, y = load_digits(return_X_y=True); X = X / 16
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0)
for density in (1.0, 0.1):
    c = SSVIClassifier(hidden=(100,), density=density, n_epochs=60, delta=20, random_state=0).fit(Xtr, ytr)
    p = c.predict_proba(Xte)
    out[f"ssvi_digits_density_{density}"] = dict(accuracy=round(float((p.argmax(1) == yte).mean()), 4), ece=round(ece(p, yte), 4),
                                                  active_weights=[int(l.mask.sum()) for l in c.module_.layers])
    print(out, flush=True)

rng = np.random.default_rng(0)
def tasks(n):
    X = rng.normal(size=(n, 8)); t = rng.integers(0, 4, n)
    f = np.sin(2 * X @ a) + X @ b
    return X, np.select([t == 0, t == 1, t == 2, t == 3], [f, -f, f + 0.5 * np.cos(X @ b), 0.5 * f]), t
a = rng.normal(size=8) / np.sqrt(8); b = rng.normal(size=8) / np.sqrt(8)
(Xm, ym, tm), (Xv, yv, tv) = tasks(2000), tasks(1000)
for name, kw in {"cdsp (lambda_conf=10, r=D/sqrt(N))": {}, "no game (lambda_conf=0, r=D/sqrt(N))": dict(lambda_conf=0.0),
                 "dense MoE (lambda_conf=0, r=D)": dict(lambda_conf=0.0, rank_quota=64)}.items():
    m = CDSPMoERegressor(d_model=16, n_experts=4, n_epochs=15, random_state=0, **kw).fit(Xm, ym, tm)
    neg = [float(np.clip(-c, 0, None)[~np.eye(4, dtype=bool)].sum()) for c in m.conflict_history_]
    out["moe " + name] = dict(test_mse=round(float(np.mean((m.predict(Xv, tv) - yv) ** 2)), 4), var_y=round(float(np.var(yv)), 4),
                              conflict_last5_epochs=round(float(np.mean(neg[-5:])), 3),
                              offdiag_alpha_mean=round(float(m.alpha_[~np.eye(4, dtype=bool)].mean()), 3))
    print(out["moe " + name], flush=True)

json.dump(out, open(sys.argv[1], "w"), indent=1)
