"""S2CAG on generated planted-partition graphs of growing size: wall time, peak memory, ACC.

    python benchmarks/bench_s2cag_scale.py                      # 1e4, 1e5, 1e6 nodes
    python benchmarks/bench_s2cag_scale.py --sizes 10000 100000  # a subset
    python benchmarks/bench_s2cag_scale.py --dtypes float64 float32  # both precisions
    python benchmarks/bench_s2cag_scale.py --device cuda --out benchmarks/results/s2cag_scale_cuda.json

Graphs: contextual SBM with 10 clusters, average degree 10 (8 inside, 2 across clusters), 500
sparse bag-of-words features, 20 words per node. Fit time and the peak resident memory above the
process's level before the fit are recorded per size; results go to
``benchmarks/results/s2cag_scale.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from graphrec.bench.runner import _PeakRSS
from graphrec.cluster import MS2CAG, S2CAG
from graphrec.datasets import make_attributed_sbm
from graphrec.metrics import clustering_report

K = 10


def run(n: int, methods: list[str], dtypes: list[str], device: str) -> list[dict]:
    start = time.perf_counter()
    g = make_attributed_sbm(n, K, p_in=8 * K / n, p_out=2 * K / (n * (K - 1)), n_features=500, random_state=0)
    gen_s = time.perf_counter() - start
    rows = []
    for name, dtype in ((m, dt) for m in methods for dt in dtypes):
        est = (S2CAG if name == "s2cag" else MS2CAG)(n_clusters=K, dtype=dtype, random_state=0, device=device)
        with _PeakRSS() as mem:
            start = time.perf_counter()
            est.fit(g)
            seconds = time.perf_counter() - start
        report = clustering_report(g.labels, est.labels_)
        rows.append(
            {"method": name, "dtype": dtype, "device": device, "n_nodes": n, "n_edges": g.n_edges, "feature_nnz": int(g.features.nnz),
             "generate_seconds": gen_s, "fit_seconds": seconds, "peak_extra_mb": mem.delta_mb,
             "solver": est.solver_, **report}
        )
        print(f"{name:8s} {dtype} n={n:>9,d} edges={g.n_edges:>10,d} fit {seconds:7.2f} s  "
              f"peak +{mem.delta_mb:7.0f} MB  acc {report['acc']:.3f}  ({est.solver_})", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--methods", nargs="+", default=["s2cag"], choices=["s2cag", "m-s2cag"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtypes", nargs="+", default=["float64"], choices=["float64", "float32"])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "s2cag_scale.json"))
    args = parser.parse_args()
    rows = [row for n in args.sizes for row in run(n, args.methods, args.dtypes, args.device)]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps({"rows": rows, "cpu_count": os.cpu_count(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2))
    os.replace(tmp, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
