"""Where graphrec's SPE forward spends its time on this CPU, and the CPU's float32 GEMM rate.

    OMP_NUM_THREADS=1 python benchmarks/probe_spe_gemm.py --out benchmarks/results/spe_gemm_profile_amd.json

One thread: (1) ``torch.mm`` GFLOP/s at the GIN's product shape ``(1024, 128) x (128, 128)`` and at larger
ones; (2) cProfile of 5 forwards of graphrec's SPE at the official ZINC configuration on the first
128-graph ZINC training batch (``bench_spe_official.zinc_batches``), reporting the time in ``torch.mm``
and in the compiled passes; (3) the floor those products set: the forward's GEMM floating-point
operations (every ``(P, a) x (a, b)`` product of ``rho`` on the ``P = sum n_g^2`` pair rows) divided by the
measured rate; (4) how many pair rows graph automorphisms could save on the three benchmark batches: columns
``j`` and ``sigma(j)`` of an automorphism ``sigma`` give row-permuted copies of each other, so only one column
per automorphism orbit would need computing (orbits found with networkx's VF2 matcher). Explains the
machine dependence of the speed-up against the official code.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import platform
import pstats
import time
from pathlib import Path

import torch

from bench_spe_official import build_graphrec, zinc_batches


def gemm_gflops(m: int, k: int, n: int, seconds: float = 1.0) -> float:
    a, b, out = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
    for _ in range(3):
        torch.mm(a, b, out=out)
    reps = max(1, int(seconds * 1e11 / (2 * m * k * n)))
    start = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b, out=out)
    return 2 * m * k * n * reps / (time.perf_counter() - start) / 1e9


def gemm_flops(model, batch) -> int:
    """Floating-point operations of ``rho``'s products in graphrec's forward on ``batch`` (eval mode)."""
    rows = int((batch.ptr.diff() ** 2).sum())
    layers, _, _ = model.rho._folded_layers()
    flops = 0
    for layer in layers:
        flops += 2 * rows * layer.weight_t.shape[0] * layer.weight_t.shape[1]
        flops += sum(2 * rows * w.shape[0] * w.shape[1] for w, _ in layer.middles)
    return flops


def orbit_row_fraction(batches) -> float:
    """``sum_g n_g * orbits_g / sum_g n_g^2`` over the graphs of ``batches``."""
    import networkx as nx
    from networkx.algorithms.isomorphism import GraphMatcher

    kept = total = 0
    for batch in batches:
        for graph in batch.to_data_list():
            n = graph.num_nodes
            g = nx.Graph()
            g.add_nodes_from(range(n))
            g.add_edges_from(graph.edge_index.t().tolist())
            orbit = {v: {v} for v in range(n)}
            for sigma in GraphMatcher(g, g).isomorphisms_iter():
                for v, w in sigma.items():
                    if orbit[v] is not orbit[w]:
                        merged = orbit[v] | orbit[w]
                        for u in merged:
                            orbit[u] = merged
            kept += n * len({id(o) for o in orbit.values()})
            total += n * n
    return kept / total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/spe_gemm_profile.json")
    parser.add_argument("--forwards", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    shapes = [(1024, 128, 128), (4096, 128, 128), (2048, 2048, 2048)]
    rates = {f"{m}x{k} @ {k}x{n}": gemm_gflops(m, k, n) for m, k, n in shapes}

    torch.manual_seed(0)
    model = build_graphrec().eval()
    batch = zinc_batches(1)[0]
    forward = lambda: model(batch.eigvals, batch.eigvecs, batch.eig_mask, batch.edge_index, batch.batch)  # noqa: E731
    profiler = cProfile.Profile()
    with torch.no_grad():
        forward()
        profiler.enable()
        for _ in range(args.forwards):
            forward()
        profiler.disable()
    flops = gemm_flops(model, batch)
    rate = rates["1024x128 @ 128x128"]
    stats = pstats.Stats(profiler).stats
    by_name = {}
    for (_, _, func), (_, calls, tottime, _, _) in stats.items():
        name = func.strip("<>").replace("built-in method ", "")
        by_name[name] = (by_name.get(name, (0, 0.0))[0] + calls, by_name.get(name, (0, 0.0))[1] + tottime)
    total = sum(t for _, t in by_name.values())
    top = sorted(by_name.items(), key=lambda kv: -kv[1][1])[:6]
    result = {
        "gemm_gflops_1thread": rates,
        "forwards": args.forwards,
        "profile_total_s": total,
        "top_by_own_time": [{"function": f, "calls": c, "seconds": t} for f, (c, t) in top],
        "pair_rows": int((batch.ptr.diff() ** 2).sum()),
        "gemm_gflop_per_forward": flops / 1e9,
        "gemm_floor_s_1thread": flops / (rate * 1e9),
        "forward_s_1thread": total / args.forwards,
        "orbit_row_fraction_3_batches": orbit_row_fraction(zinc_batches(3)),
        "environment": {"torch": torch.__version__, "machine": platform.machine(), "processor": platform.processor(),
                        "time": time.strftime("%Y-%m-%dT%H:%M:%S")},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
