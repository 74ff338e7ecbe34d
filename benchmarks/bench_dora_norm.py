"""Factored vs dense DoRA row norm on CPU: time, largest single allocation, and peak memory.

    python benchmarks/bench_dora_norm.py [--threads 2]

For ``d_out = d_in = d`` and LoRA rank ``r`` in {(1024, 64), (4096, 384)}, fp32:

- ``norm``: the row norm alone, ``graphrec.adapters.dora_row_norm`` (never forms the ``d x d`` update
  ``B A``) against ``||W + s B A||`` per row;
- ``layer``: forward + backward of ``DoRALinear(norm="factored" | "dense")`` on a batch of 16.

Measured per variant: median time of 5 runs; the largest tensor allocated (a ``TorchDispatchMode``
probe, views excluded); and the **peak extra resident memory** of one run in a fresh subprocess
(the kernel's high-water mark ``VmHWM`` is reset through ``/proc/self/clear_refs`` after the inputs
are built, so the peak counts only what the computation itself adds; Linux only).
Results: ``benchmarks/results/dora_norm.json`` and ``.md`` (ratios dense / factored).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from graphrec.adapters import DoRALinear, dora_row_norm

CONFIGS = [(1024, 64), (4096, 384)]
BATCH = 16


class MaxNumel(TorchDispatchMode):
    """Records the largest tensor any op allocates (outputs sharing an input's storage are views)."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        ins = {a.untyped_storage().data_ptr() for a in list(args) + list((kwargs or {}).values()) if isinstance(a, torch.Tensor)}
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in ins:
                self.largest = max(self.largest, t.numel() * t.element_size())
        return out


def make(what: str, variant: str, d: int, r: int):
    """The inputs for one measurement and a closure that runs it once."""
    g = torch.Generator().manual_seed(0)
    if what == "norm":
        w = torch.randn(d, d, generator=g)
        a = torch.randn(r, d, generator=g).div_(d**0.5)
        b = torch.randn(d, r, generator=g).div_(r**0.5)
        base_sq = torch.linalg.vector_norm(w, dim=1).square_()
        if variant == "factored":
            return lambda: dora_row_norm(w, a, b, 0.5, base_sq)
        return lambda: torch.linalg.vector_norm(w + 0.5 * (b @ a), dim=1)
    torch.manual_seed(0)
    layer = DoRALinear(nn.Linear(d, d), r, norm=variant, random_state=0)
    with torch.no_grad():
        layer.lora_B.normal_(0, r**-0.5)
    x = torch.randn(BATCH, d, generator=g)

    def step():
        layer.zero_grad(set_to_none=True)
        layer(x).square().sum().backward()

    return step


def _status_kib(key: str) -> int:
    return int(re.search(rf"{key}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1))


def probe(what: str, variant: str, d: int, r: int) -> int:
    """Peak extra resident memory (KiB) of one run, measured in this (fresh) process."""
    fn = make(what, variant, d, r)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current VmRSS
    before = _status_kib("VmRSS")
    fn()
    return _status_kib("VmHWM") - before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/dora_norm")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (also in the probes)")
    parser.add_argument("--probe", nargs=4, metavar=("WHAT", "VARIANT", "D", "R"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.probe:
        what, variant, d, r = args.probe
        print(probe(what, variant, int(d), int(r)))
        return 0
    rows = []
    for d, r in CONFIGS:
        for what in ("norm", "layer"):
            row = {"what": what, "d": d, "r": r}
            for variant in ("factored", "dense"):
                fn = make(what, variant, d, r)
                fn()
                ts = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    fn()
                    ts.append(time.perf_counter() - t0)
                with MaxNumel() as m:
                    fn()
                del fn
                cmd = [sys.executable, __file__, "--threads", str(args.threads), "--probe", what, variant, str(d), str(r)]
                peak = int(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()[-1])
                row[variant] = {"median_s": sorted(ts)[2], "largest_alloc_mib": m.largest / 2**20, "peak_extra_mib": peak / 1024}
            if what == "norm":
                fac, den = make("norm", "factored", d, r)(), make("norm", "dense", d, r)()
                row["max_rel_diff"] = float(((fac - den) / den).abs().max())
            row["peak_ratio_dense_over_factored"] = row["dense"]["peak_extra_mib"] / max(row["factored"]["peak_extra_mib"], 1 / 1024)
            row["speedup_dense_over_factored"] = row["dense"]["median_s"] / row["factored"]["median_s"]
            rows.append(row)
            print(json.dumps(row))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"machine": "2-core CPU, torch %s, fp32, %d threads, load average %.1f at the end (other jobs running)"
              % (torch.__version__, torch.get_num_threads(), os.getloadavg()[0]),
              "batch": BATCH, "rows": rows}
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = [
        "Factored vs dense DoRA row norm, fp32, d_out = d_in = d, LoRA rank r. Peak = extra resident memory of one",
        "run in a fresh process (VmHWM reset after the inputs are built); largest = largest single tensor allocated.",
        f"Command: `python benchmarks/bench_dora_norm.py --threads {args.threads}` ({result['machine']}).",
        "",
        "| what | d | r | factored time (ms) | dense time (ms) | factored peak (MiB) | dense peak (MiB) | peak ratio dense/factored | factored largest (MiB) | dense largest (MiB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        f, dn = row["factored"], row["dense"]
        lines.append(
            f"| {row['what']} | {row['d']} | {row['r']} | {f['median_s'] * 1e3:.1f} | {dn['median_s'] * 1e3:.1f} | "
            f"{f['peak_extra_mib']:.1f} | {dn['peak_extra_mib']:.1f} | {row['peak_ratio_dense_over_factored']:.1f} | "
            f"{f['largest_alloc_mib']:.2f} | {dn['largest_alloc_mib']:.2f} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
