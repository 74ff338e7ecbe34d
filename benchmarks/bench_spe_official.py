"""SPE forward pass side by side with the official code (Graph-COM/SPE), equal weights, CPU.

    python benchmarks/bench_spe_official.py --official /tmp/spe_official
    python benchmarks/bench_spe_official.py --official /tmp/spe_official --batches 3 --repeats 3

``--official`` is the root of a checkout of the official code (its ``src`` package is imported,
never copied). ``src/utils.py`` imports matplotlib and torchmetrics at import time for plotting
and AUROC helpers that SPE does not use; stub modules stand in for them when they are missing.

Configuration: the official ZINC setting ``SPE_gine_gin_mlp_pe37`` (d = 37 eigenpairs of the
symmetric normalised Laplacian, m = 16 elementwise eigenvalue MLPs 1-16-16-1 with BatchNorm,
rho = 8-layer GIN, hidden 128, 3-layer BatchNorm MLPs, PE width 37), built at random weights
(seed 0) and copied into graphrec's :class:`graphrec.pe.SPE`; BatchNorm running statistics are
set to random values in both, so that eval mode exercises them. Both run in eval mode under
``torch.no_grad()`` on the same 128-graph ZINC training batches (the first ``--batches`` batches
in data order), in one process, the two calls alternating; the median over ``--repeats`` is kept per batch.
The outputs are compared (max absolute difference, relative to the output scale).

Results: ``benchmarks/results/spe_official.json`` and ``.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import types
from pathlib import Path

import torch


def _import_official(root: str):
    for name, attrs in (("matplotlib", {}), ("matplotlib.pyplot", {}),
                        ("torchmetrics", {}), ("torchmetrics.classification", {"BinaryAUROC": object})):
        try:
            __import__(name)
        except ImportError:
            module = types.ModuleType(name)
            module.__dict__.update(attrs)
            sys.modules[name] = module
    sys.path.insert(0, str(Path(root).resolve()))
    from src.mlp import MLP
    from src.stable_expressive_pe import GINPhi, StableExpressivePE

    return MLP, GINPhi, StableExpressivePE


def build_official(root: str):
    """The official PE module of the ZINC config, exactly as ``construct_model`` builds it."""
    MLP, GINPhi, StableExpressivePE = _import_official(root)

    def create_mlp(in_dims: int, out_dims: int):
        return MLP(3, in_dims, 128, out_dims, True, "relu", 0.0)

    rho = GINPhi(8, 16, 128, 37, create_mlp, False)
    phis = [MLP(3, 1, 16, 1, use_bn=True, activation="relu", dropout_prob=0.0) for _ in range(16)]
    return StableExpressivePE(rho, phis)


def build_graphrec():
    from graphrec.pe import SPE, ElementwisePhi, GINRho

    return SPE(ElementwisePhi(16, 16, 3), GINRho(16, 128, 37, n_layers=8, mlp_layers=3))


def randomise_bn(module: torch.nn.Module, generator: torch.Generator) -> None:
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.copy_(0.3 * torch.randn(m.num_features, generator=generator))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=generator))
            m.weight.data.copy_(1 + 0.2 * torch.randn(m.num_features, generator=generator))
            m.bias.data.copy_(0.2 * torch.randn(m.num_features, generator=generator))


def copy_official_weights(official, ours) -> None:
    """Official ``psi_list[l]`` -> our ``phi`` (stacked over l); official ``phi.gin`` -> our ``rho``."""
    with torch.no_grad():
        m = len(official.psi_list)
        for l, psi in enumerate(official.psi_list):
            linears = [layer.fc for layer in psi.layers] + [psi.fc]
            for k, lin in enumerate(linears):
                ours.phi.weights[k][l].copy_(lin.weight.T)
                ours.phi.biases[k][l].copy_(lin.bias)
            for k, layer in enumerate(psi.layers):
                bn, h = ours.phi.norms[k], layer.bn.num_features
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(bn, name).view(m, h)[l].copy_(getattr(layer.bn, name))
        for t, layer in enumerate(official.phi.gin.layers):
            ours.rho.eps[t].copy_(layer.eps)
            mlp = ours.rho.mlps[t]
            for k, src in enumerate([ly.fc for ly in layer.mlp.layers] + [layer.mlp.fc]):
                mlp.linears[k].load_state_dict(src.state_dict())
            for k, ly in enumerate(layer.mlp.layers):
                mlp.norms[k].load_state_dict(ly.bn.state_dict())


def zinc_batches(n_batches: int, batch_size: int = 128):
    from torch_geometric.data import Batch

    from graphrec.datasets import load
    from graphrec.pe import AddSPEEigenpairs

    train = load("zinc")["train"]
    add = AddSPEEigenpairs(d=37)
    out = []
    for b in range(n_batches):
        graphs = [add(train[i]) for i in range(b * batch_size, (b + 1) * batch_size)]
        out.append(Batch.from_data_list(graphs))
    return out


def _median_times(fns, repeats: int):
    """Median seconds of each function, called in turn (a, b, a, b, ...) so both see the same load."""
    times, outs = [[] for _ in fns], [None] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            outs[i] = fn()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times], outs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, help="root of a Graph-COM/SPE checkout")
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/spe_official")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    official = build_official(args.official)
    ours = build_graphrec()
    gen = torch.Generator().manual_seed(1)
    randomise_bn(official, gen)
    copy_official_weights(official, ours)
    n_official = sum(p.numel() for p in official.parameters())
    n_unused = sum(p.numel() for p in official.phi.mlp.parameters())
    n_ours = sum(p.numel() for p in ours.parameters())
    official.eval()
    ours.eval()

    rows = []
    for b, batch in enumerate(zinc_batches(args.batches)):
        lam_padded = batch.eigvals * batch.eig_mask  # the official code stores 0 for missing eigenvalues
        with torch.no_grad():
            (t_off, t_ours), (pe_off, pe_ours) = _median_times(
                [lambda: official(lam_padded, batch.eigvecs, batch.edge_index, batch.batch),
                 lambda: ours(batch.eigvals, batch.eigvecs, batch.eig_mask, batch.edge_index, batch.batch)],
                args.repeats)
        diff = float((pe_off - pe_ours).abs().max())
        scale = float(pe_off.abs().max())
        rows.append({
            "batch": b, "graphs": int(batch.num_graphs), "nodes": int(batch.num_nodes),
            "max_nodes": int(torch.bincount(batch.batch).max()),
            "official_s": t_off, "graphrec_s": t_ours, "speedup": t_off / t_ours,
            "max_abs_diff": diff, "output_max_abs": scale,
        })
        print(f"batch {b}: official {t_off:.3f}s graphrec {t_ours:.3f}s x{t_off / t_ours:.1f} "
              f"max|diff| {diff:.2e} (output scale {scale:.2e})", flush=True)

    result = {
        "config": "SPE_gine_gin_mlp_pe37 PE module (d=37, m=16, phi 1-16-16-1 BN, rho GIN 8x128 -> 37), eval, no_grad",
        "params": {"official": n_official, "official_unused_rho_mlp": n_unused, "graphrec": n_ours},
        "rows": rows,
        "median_speedup": statistics.median(r["speedup"] for r in rows),
        "command": "python benchmarks/bench_spe_official.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "environment": {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                        "machine": platform.machine(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = [
        "| batch | graphs | nodes | largest | official (s) | graphrec (s) | speed-up | max abs diff |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['batch']} | {r['graphs']} | {r['nodes']} | {r['max_nodes']} | {r['official_s']:.3f} | "
                     f"{r['graphrec_s']:.3f} | {r['speedup']:.1f}x | {r['max_abs_diff']:.1e} |")
    out.with_suffix(".md").write_text(
        f"SPE forward, official ZINC config, CPU ({torch.get_num_threads()} threads), eval mode, equal weights.\n"
        f"Command: `{result['command']}`\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
