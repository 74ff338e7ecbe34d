"""Time graphrec's SPE forward pass (official ZINC configuration, eval mode) on one 128-graph ZINC batch on CUDA.

Usage: python benchmarks/spe_forward_cuda.py [--repeats 20]   (prints the mean milliseconds per forward pass)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_spe_official import build_graphrec, zinc_batches  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    spe = build_graphrec().cuda().eval()
    b = zinc_batches(1)[0].to("cuda")
    inputs = (b.eigvals, b.eigvecs, b.eig_mask, b.edge_index, b.batch)
    with torch.no_grad():
        for _ in range(3):
            spe(*inputs)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.repeats):
            spe(*inputs)
        torch.cuda.synchronize()
    ms = (time.perf_counter() - start) / args.repeats * 1e3
    print(f"SPE forward, 128 ZINC graphs, {torch.cuda.get_device_name()}: {ms:.2f} ms")


if __name__ == "__main__":
    main()
