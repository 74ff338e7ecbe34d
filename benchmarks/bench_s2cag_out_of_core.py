"""Out-of-core S2CAG on a generated graph of 1e7 edges: time, peak memory, ACC, against in memory.

    python benchmarks/bench_s2cag_out_of_core.py                       # 1e6 nodes, 1e7 edges
    python benchmarks/bench_s2cag_out_of_core.py --nodes 100000 --degree 20 --in-memory

A contextual SBM (10 clusters, average degree ``--degree``, 500 sparse features, 20 words per
node) is generated and written to ``--folder`` by a first process; a fresh process then fits
S2CAG on the on-disk graph (``DiskAttributedGraph``) and records its peak resident memory
(``getrusage`` ``ru_maxrss``: everything the process ever held, interpreter and torch included).
With ``--in-memory`` a third process fits the in-memory estimator on the same graph for the
comparison. Results: ``benchmarks/results/s2cag_out_of_core.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

K = 10

_GENERATE = """
import sys
from graphrec.cluster import DiskAttributedGraph
from graphrec.datasets import make_attributed_sbm
n, degree, folder = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
K = 10
g = make_attributed_sbm(n, K, p_in=0.8 * degree * K / n, p_out=0.2 * degree * K / (n * (K - 1)),
                        n_features=500, random_state=0)
DiskAttributedGraph.save(g, folder)
print(g.n_edges)
"""

_FIT = """
import json, resource, sys, time
import numpy as np
from graphrec.cluster import S2CAG, DiskAttributedGraph
from graphrec.metrics import clustering_report
folder, in_memory = sys.argv[1], sys.argv[2] == "1"
disk = DiskAttributedGraph(folder)
graph = disk
if in_memory:
    import scipy.sparse as sp
    from graphrec.datasets import AttributedGraph
    def load(part):
        import numpy as np
        from pathlib import Path
        p = Path(folder) / part
        shape = tuple(json.loads((p / "shape.json").read_text()))
        return sp.csr_matrix((np.load(p / "data.npy"), np.load(p / "indices.npy"), np.load(p / "indptr.npy")), shape=shape)
    graph = AttributedGraph(adjacency=load("adjacency"), features=load("features"), labels=disk.labels)
start = time.perf_counter()
est = S2CAG(n_clusters=10, random_state=0).fit(graph)
seconds = time.perf_counter() - start
print(json.dumps({"fit_seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "labels_head": est.labels_[:1000].tolist(), **clustering_report(disk.labels, est.labels_)}))
"""


def _python(code: str, *args: str) -> str:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return out.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--degree", type=float, default=20.0)
    parser.add_argument("--folder", default="/tmp/graphrec_ooc_graph")
    parser.add_argument("--in-memory", action="store_true", help="also fit the in-memory estimator")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "s2cag_out_of_core.json"))
    args = parser.parse_args()
    start = time.perf_counter()
    edges = int(_python(_GENERATE, str(args.nodes), str(args.degree), args.folder))
    files_mb = sum(f.stat().st_size for f in Path(args.folder).rglob("*") if f.is_file()) / 2**20
    row = {"n_nodes": args.nodes, "n_edges": edges, "files_mb": files_mb, "generate_seconds": time.perf_counter() - start}
    row["out_of_core"] = json.loads(_python(_FIT, args.folder, "0"))
    print(f"out-of-core: {row['out_of_core']['fit_seconds']:.1f} s, peak RSS {row['out_of_core']['peak_rss_mb']:.0f} MB, "
          f"ACC {row['out_of_core']['acc']:.3f} ({edges:,} edges, {files_mb:.0f} MB on disk)", flush=True)
    if args.in_memory:
        row["in_memory"] = json.loads(_python(_FIT, args.folder, "1"))
        row["same_labels_first_1000"] = row["in_memory"]["labels_head"] == row["out_of_core"]["labels_head"]
        print(f"in memory:   {row['in_memory']['fit_seconds']:.1f} s, peak RSS {row['in_memory']['peak_rss_mb']:.0f} MB, "
              f"ACC {row['in_memory']['acc']:.3f}", flush=True)
    for part in ("out_of_core", "in_memory"):
        row.get(part, {}).pop("labels_head", None)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps({"rows": [row], "cpu_count": os.cpu_count(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2))
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
