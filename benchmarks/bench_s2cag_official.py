"""S2CAG / M-S2CAG side by side with the official code and scikit-learn, on the shared graphs.

    python benchmarks/bench_s2cag_official.py --official /path/to/S2CAG/src --official-python /path/to/venv/bin/python
    python benchmarks/bench_s2cag_official.py ... --datasets cora acm --repeats 5

``--official`` is the ``src`` folder of a checkout of the official code (HKBU-LAGAS/S2CAG); it is
imported, never copied. It needs the library versions of its time (it relies on scipy < 1.11
returning dense matrices from ``sparse / dense``; with current scipy its SNEM step runs for
minutes), so it runs under ``--official-python``, an interpreter with numpy 1.24, scipy 1.10 and
scikit-learn 1.3, in a subprocess fed the same pre-processed arrays. Its scripts import TensorFlow
only to parse command-line flags, so the driver puts a stub ``tensorflow`` module in ``sys.modules``.

Per dataset and method, one after the other on the same machine with the same thread counts:

- ``official_step``: the official ``run_SSCAG`` call (its own "time": from the TF-IDF'd dense
  attributes and the normalised adjacency to labels; pre-processing excluded), seed 0 as hard-coded;
- ``official_total``: the official pre-processing (``preprocess_dataset`` + densify) plus ``run_SSCAG``;
- ``graphrec``: graphrec's whole ``fit`` from the raw graph (pre-processing included), seed 0;
- ``sklearn``: scikit-learn's ``SpectralClustering(affinity="precomputed")`` on the same affinity
  ``Z Z^T`` (S2CAG's affinity; dense n x n, formed outside the timing), k-means labels.

The median over ``--repeats`` runs is kept; ratios are official / graphrec. ACC / NMI / ARI of
each (seed 0) are recorded too, so the harness doubles as a check that the official numbers of
``shared/papers/s2cag.md`` are reproduced. Results: ``benchmarks/results/s2cag_official.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from graphrec.cluster import MS2CAG, PRESETS, S2CAG
from graphrec.cluster.s2cag import _prepare
from graphrec.datasets import load
from graphrec.metrics import clustering_report


# Runs in the official code's interpreter: pre-process, then time run_SSCAG; prints JSON.
_DRIVER = """
import json, sys, time, types
import numpy as np, scipy.sparse as sp
sys.modules["tensorflow"] = types.ModuleType("tensorflow")
src, inputs, repeats, kwargs = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
seeds = int(sys.argv[5])
sys.path.insert(0, src)
import func
import utils
data = np.load(inputs)
adj = sp.csr_matrix((data["data"], data["indices"], data["indptr"]), shape=tuple(data["shape"]))
x = sp.csr_matrix((data["xdata"], data["xindices"], data["xindptr"]), shape=tuple(data["xshape"]))
pre, step = [], []
for _ in range(repeats):
    t = time.perf_counter()
    norm_adj, feats = utils.preprocess_dataset(adj, x, tf_idf=True, sparse=True)
    feats = feats.toarray()
    pre.append(time.perf_counter() - t)
    t = time.perf_counter()
    labels, _ = utils.run_SSCAG(feats, adj_normalized=norm_adj, **kwargs)
    step.append(time.perf_counter() - t)
# Further seeds: the official functions draw from check_random_state(0); hand them seed s instead.
by_seed = [np.asarray(labels).ravel().tolist()]
for seed in range(1, seeds):
    func.check_random_state = lambda _, s=seed: np.random.RandomState(s)
    by_seed.append(np.asarray(utils.run_SSCAG(feats, adj_normalized=norm_adj, **kwargs)[0]).ravel().tolist())
print(json.dumps({"pre": sorted(pre)[len(pre) // 2], "step": sorted(step)[len(step) // 2], "labels": by_seed}))
"""


def _run_official(python: str, src: str, g, repeats: int, kwargs: dict, seeds: int) -> dict:
    """Median pre-processing and ``run_SSCAG`` seconds of the official code, and its labels per seed."""
    adj, x = sp.csr_matrix(g.adjacency, dtype=np.float64), sp.csr_matrix(g.features, dtype=np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "inputs.npz"
        np.savez(inputs, data=adj.data, indices=adj.indices, indptr=adj.indptr, shape=adj.shape,
                 xdata=x.data, xindices=x.indices, xindptr=x.indptr, xshape=x.shape)
        out = subprocess.run([python, "-c", _DRIVER, str(Path(src).resolve()), str(inputs), str(repeats),
                              json.dumps(kwargs), str(seeds)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"the official code failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def _seed_summary(y, labels_by_seed: list) -> dict:
    reports = [clustering_report(y, np.asarray(labels)) for labels in labels_by_seed]
    return {m: {"mean": float(np.mean([r[m] for r in reports])), "std": float(np.std([r[m] for r in reports]))}
            for m in reports[0]}


def run(dataset: str, method: str, official: tuple[str, str], repeats: int, seeds: int) -> dict:
    g = load(dataset)
    cls = S2CAG if method == "s2cag" else MS2CAG
    preset = PRESETS[dataset][cls.__name__]
    k = preset["n_clusters"]
    kwargs = dict(k=k, T=preset["T"], alpha=preset["alpha"], tau=preset["tau"], dataset=dataset,
                  method="sub" if method == "s2cag" else "mod")
    if method == "m-s2cag":
        kwargs["gamma"] = preset["gamma"]
    off = _run_official(*official, g, repeats, kwargs, seeds)
    step, pre, labels_off = off["step"], off["pre"], off["labels"][0]
    row = {"dataset": dataset, "method": method, "n_nodes": g.n_nodes, "n_features": g.n_features}
    est = cls.from_preset(dataset, random_state=0)
    ours, _ = _median_time(lambda: est.fit(g), repeats)
    row.update(official_step_s=step, official_total_s=step + pre, graphrec_s=ours,
               step_ratio=step / ours, total_ratio=(step + pre) / ours, solver=est.solver_)
    row["official"] = clustering_report(g.labels, np.asarray(labels_off))
    row["graphrec"] = clustering_report(g.labels, est.labels_)
    row["seeds"] = seeds
    row["official_over_seeds"] = _seed_summary(g.labels, off["labels"])
    row["graphrec_over_seeds"] = _seed_summary(
        g.labels, [cls.from_preset(dataset, random_state=s).fit(g).labels_ for s in range(seeds)])
    if method == "s2cag":
        from sklearn.cluster import SpectralClustering

        z = _prepare(g, k, preset["T"], preset["alpha"], "cpu").materialize().numpy()
        affinity = z @ z.T
        sk = SpectralClustering(k, affinity="precomputed", random_state=0)
        row["sklearn_s"], labels_sk = _median_time(lambda: sk.fit_predict(affinity), repeats)
        row["sklearn_ratio"] = row["sklearn_s"] / ours
        row["sklearn"] = clustering_report(g.labels, labels_sk)
    print(f"{dataset:9s} {method:8s} official step {step:6.3f} s (+pre {pre:5.3f})  graphrec fit {ours:6.3f} s  "
          f"ratio {row['step_ratio']:5.1f}x / {row['total_ratio']:5.1f}x  "
          f"ACC official {row['official']['acc']:.4f} graphrec {row['graphrec']['acc']:.4f}"
          + f"  over {seeds} seeds: official {row['official_over_seeds']['acc']['mean']:.4f} "
            f"graphrec {row['graphrec_over_seeds']['acc']['mean']:.4f}"
          + (f"  sklearn {row['sklearn_s']:6.3f} s ACC {row['sklearn']['acc']:.4f}" if "sklearn" in row else ""),
          flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, help="src folder of an official S2CAG checkout")
    parser.add_argument("--official-python", required=True,
                        help="python with numpy 1.24 / scipy 1.10 / scikit-learn 1.3 for the official code")
    parser.add_argument("--datasets", nargs="+", default=["cora", "citeseer", "acm", "wiki", "dblp"])
    parser.add_argument("--methods", nargs="+", default=["s2cag", "m-s2cag"], choices=["s2cag", "m-s2cag"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5,
                        help="ACC / NMI / ARI of both codes over seeds 0..N-1 (the official code fixes seed 0: "
                             "its random draws are redirected to seed s)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "s2cag_official.json"))
    args = parser.parse_args()
    official = (args.official_python, args.official)
    rows = [run(d, m, official, args.repeats, args.seeds) for d in args.datasets for m in args.methods]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    meta = {"official_versions": subprocess.run(
        [args.official_python, "-c", "import numpy, scipy, sklearn; print(numpy.__version__, scipy.__version__, "
         "sklearn.__version__)"], check=True, capture_output=True, text=True).stdout.strip(), "cpu_count": os.cpu_count(), "repeats": args.repeats, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    tmp.write_text(json.dumps({"rows": rows, **meta}, indent=2))
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
