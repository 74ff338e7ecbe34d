"""LowFER training-epoch speed side by side with the official code, and the WN18RR GPU run.

    python benchmarks/bench_kg.py speed --official /path/to/LowFER --datasets umls kinship --epochs 6
    python benchmarks/bench_kg.py wn18rr --device cuda --checkpoint-dir runs/kg_wn18rr --epochs 500
    python benchmarks/bench_kg.py ops --datasets umls wn18rr

``speed``: ``--official`` is a checkout of the official code (suamin/LowFER) whose ``data/UMLS``
and ``data/Kinship`` folders hold the same files as ``$GRAPHREC_DATA/kg``; the official code hard-codes
``device="cuda"`` for ``U`` / ``V`` and crashes on ``None > 1`` without a GPU, so a CPU run needs a
copy with those two device lines changed (nothing else). Both sides run in fresh subprocesses,
alternately (official, graphrec, official, graphrec, ...: ``--rounds``), with the same settings
(the WN18RR configuration: d_e 200, d_r 30, k 30, dropouts .2/.2/.3, eps .1, lr .003, batch 128)
and no evaluation inside the timed epochs. The official per-epoch time is the one it logs
("Epoch i / time t": host-side batching, forward, backward, step); graphrec's is the Trainer's
per-epoch ``seconds``. The first epoch of every run is dropped as warm-up; the median of the rest,
over all rounds, is kept; ratio = official / graphrec. With ``--cpu-time`` each side also runs one
1-epoch call per round, and the CPU seconds (user + system of the child process) of the longer run
minus those of the 1-epoch run, over ``epochs - 1``, give CPU seconds per epoch: on a machine shared
with other jobs wall time mostly measures waiting, CPU time much less. Results:
``results/kg_speed.json`` (+ .md).

``wn18rr``: trains LowFER (or ``--method tucker``) on WN18RR with the paper's settings, writing a
checkpoint after every epoch to ``--checkpoint-dir`` so that a later call continues where the last
stopped (``--epochs`` counts all epochs, restored ones included; ``--epochs-this-call`` bounds one call), then reports the validation-selected
test metrics (``test``), the last epoch's (``test_last_epoch``, read from the checkpoint: the paper's protocol)
and the median epoch time to ``results/kg_<dataset>_<method>_<device>.json``. ``--time-epochs N``
first times N epochs without checkpoints (data kept on the device, no host-side batching).

``ops``: operators per LowFER training step (the estimator's loss, backward and fused Adam step on
real batches, WN18RR settings), counted with ``torch.profiler`` on CPU as a proxy for kernel
launches and host work on a GPU: ``aten_calls`` counts every ``aten::`` call at any nesting level,
``kernels`` only the innermost ones that compute (views, ``empty`` and other metadata-only
operators left out; ``kernels_outside_optimizer`` without Adam's, whose CPU step counters add
copies and ``item`` calls that a CUDA step does not have), ``autograd_nodes`` the backward nodes run.
Also the median wall and CPU (process) milliseconds per step over ``--steps`` steps, one intra-op
thread. Results: ``results/kg_ops.json`` (+ .md).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
OFFICIAL_NAMES = {"umls": "UMLS", "kinship": "Kinship"}
SETTINGS = dict(lr=0.003, dr=1.0, edim=200, rdim=30, k=30, input_dropout=0.2, hidden_dropout1=0.2,
                hidden_dropout2=0.3, label_smoothing=0.1, batch_size=128)

_OURS = """
import json, sys
from graphrec.datasets import load
from graphrec.kg import LowFER
kg = load(sys.argv[1])
est = LowFER(d_e=200, d_r=30, k=30, input_dropout=0.2, hidden_dropout1=0.2, hidden_dropout2=0.3,
             label_smoothing=0.1, lr=0.003, batch_size=128, max_epochs=int(sys.argv[2]),
             eval_every=10**6, random_state=20).fit(kg)
print(json.dumps([h["seconds"] for h in est.history_]))
"""


def _official_epochs(official: Path, dataset: str, epochs: int) -> list[float]:
    args = [sys.executable, "main.py", "--dataset", OFFICIAL_NAMES[dataset], "--num_iterations", str(epochs),
            "--cuda", ""]
    for key, value in SETTINGS.items():
        args += [f"--{key}", str(value)]
    out = subprocess.run(args, cwd=official, capture_output=True, text=True, check=True)
    times = [float(t) for t in re.findall(r"Epoch \d+ / time ([0-9.]+)", out.stderr + out.stdout)]
    if len(times) != epochs:
        raise RuntimeError(f"expected {epochs} epoch lines from the official code, got {len(times)}:\n{out.stderr[-2000:]}")
    return times


def _graphrec_epochs(dataset: str, epochs: int) -> list[float]:
    out = subprocess.run([sys.executable, "-c", _OURS, dataset, str(epochs)], capture_output=True, text=True,
                         check=True, env={**os.environ, "TQDM_DISABLE": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _child_cpu_seconds() -> float:
    """User + system CPU seconds of all waited-for child processes so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(run, *args) -> tuple[list[float], float]:
    """``run(*args)`` (a subprocess) and the CPU seconds it used."""
    before = _child_cpu_seconds()
    return run(*args), _child_cpu_seconds() - before


def speed(args: argparse.Namespace) -> None:
    import torch

    official = Path(args.official).resolve()
    sides = {"official": lambda d, e: _official_epochs(official, d, e), "graphrec": _graphrec_epochs}
    rows = []
    load_before = os.getloadavg()
    for dataset in args.datasets:
        runs: dict[str, list[list[float]]] = {"official": [], "graphrec": []}
        cpu: dict[str, list[float]] = {"official": [], "graphrec": []}
        for _ in range(args.rounds):
            for side, run in sides.items():
                epochs, seconds = _timed(run, dataset, args.epochs)
                runs[side].append(epochs)
                if args.cpu_time:  # CPU seconds of the extra epochs: robust to other jobs on the machine
                    _, one_epoch = _timed(run, dataset, 1)
                    cpu[side].append((seconds - one_epoch) / (args.epochs - 1))
        med = {k: statistics.median(t for run in v for t in run[1:]) for k, v in runs.items()}
        row = {"dataset": dataset, "official_s_per_epoch": med["official"], "graphrec_s_per_epoch": med["graphrec"],
               "ratio": med["official"] / med["graphrec"], "epochs_per_run": args.epochs, "rounds": args.rounds,
               "raw": runs}
        line = (f"{dataset}: official {med['official']:.3f} s/epoch, graphrec {med['graphrec']:.3f} s/epoch, "
                f"ratio {row['ratio']:.2f}x")
        if args.cpu_time:
            cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
            row.update(official_cpu_s_per_epoch=cpu_med["official"], graphrec_cpu_s_per_epoch=cpu_med["graphrec"],
                       cpu_ratio=cpu_med["official"] / cpu_med["graphrec"], raw_cpu=cpu)
            line += (f"; CPU time official {cpu_med['official']:.3f} s/epoch, graphrec {cpu_med['graphrec']:.3f} "
                     f"s/epoch, ratio {row['cpu_ratio']:.2f}x")
        rows.append(row)
        print(line, flush=True)
    result = {"command": "python " + " ".join(sys.argv), "settings": SETTINGS, "rows": rows,
              "environment": {"torch": torch.__version__, "python": platform.python_version(),
                              "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                              "load_avg_before": load_before, "load_avg_after": os.getloadavg(),
                              "time": time.strftime("%Y-%m-%dT%H:%M:%S")}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "kg_speed.json").write_text(json.dumps(result, indent=2))
    lines = ["| dataset | official s/epoch | graphrec s/epoch | ratio |", "|---|---|---|---|"]
    lines += [f"| {r['dataset']} | {r['official_s_per_epoch']:.3f} | {r['graphrec_s_per_epoch']:.3f} | "
              f"{r['ratio']:.2f}x |" for r in rows]
    if args.cpu_time:
        lines += ["", "| dataset | official CPU s/epoch | graphrec CPU s/epoch | ratio |", "|---|---|---|---|"]
        lines += [f"| {r['dataset']} | {r['official_cpu_s_per_epoch']:.3f} | {r['graphrec_cpu_s_per_epoch']:.3f} | "
                  f"{r['cpu_ratio']:.2f}x |" for r in rows]
    (RESULTS / "kg_speed.md").write_text(f"`{result['command']}`\n\n" + "\n".join(lines) + "\n")


_METADATA_OPS = {"empty", "empty_like", "empty_strided", "view", "_unsafe_view", "reshape", "_reshape_alias", "as_strided",
                 "t", "transpose", "expand", "expand_as", "unsqueeze", "squeeze", "slice", "select", "alias", "detach",
                 "permute", "result_type", "resize_", "lift_fresh", "numpy_T", "contiguous", "to", "_to_copy_noop",
                 "is_nonzero", "size", "stride", "set_", "resolve_conj", "resolve_neg", "unfold"}


def _in_optimizer(event) -> bool:
    while event is not None:
        if event.name.startswith("Optimizer."):
            return True
        event = event.cpu_parent
    return False


def _count_ops(events: list, steps: int) -> dict[str, float]:
    aten = [e for e in events if e.name.startswith("aten::")]
    parents = {id(e.cpu_parent) for e in aten if e.cpu_parent is not None}
    kernels = [e for e in aten if id(e) not in parents and e.name[len("aten::"):] not in _METADATA_OPS]
    nodes = [e for e in events if e.name.startswith("autograd::engine::evaluate_function")]
    model = [e for e in kernels if not _in_optimizer(e)]
    return {"aten_calls": len(aten) / steps, "kernels": len(kernels) / steps,
            "kernels_outside_optimizer": len(model) / steps, "autograd_nodes": len(nodes) / steps}


def ops(args: argparse.Namespace) -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from graphrec.datasets import load
    from graphrec.kg import LowFER, group_queries, kvsall_batches, reciprocal

    torch.set_num_threads(1)
    rows = []
    for dataset in args.datasets:
        kg = load(dataset)
        est = LowFER(d_e=200, d_r=30, k=30, input_dropout=0.2, hidden_dropout1=0.2, hidden_dropout2=0.3,
                     label_smoothing=0.1, lr=0.003, batch_size=128)
        n_r = kg.n_relations
        net = est._build_net(kg.n_entities, 2 * n_r, torch.Generator().manual_seed(0)).train()
        batches = list(kvsall_batches(group_queries(reciprocal(kg.train, n_r), 2 * n_r), est.batch_size,
                                      generator=torch.Generator().manual_seed(1)))[: args.steps]
        opt = torch.optim.Adam(net.parameters(), lr=est.lr, fused=True)

        def step(batch: tuple) -> None:
            opt.zero_grad(set_to_none=True)
            net.training_loss(*batch, est.label_smoothing).backward()
            opt.step()

        for batch in batches[:3]:
            step(batch)
        profiled = batches[3:8]
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for batch in profiled:
                step(batch)
        counts = _count_ops(list(prof.events()), len(profiled))
        times, cpu_times = [], []
        for batch in batches:
            start, cpu_start = time.perf_counter(), time.process_time()
            step(batch)
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
        row = {"dataset": dataset, **counts, "ms_per_step": 1000 * statistics.median(times),
               "cpu_ms_per_step": 1000 * statistics.median(cpu_times), "steps": len(batches),
               "batch_size": est.batch_size, "n_entities": kg.n_entities}
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"command": "python " + " ".join(sys.argv), "rows": rows,
              "environment": {"torch": torch.__version__, "load_avg": os.getloadavg(), "cpu_count": os.cpu_count(),
                              "time": time.strftime("%Y-%m-%dT%H:%M:%S")}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "kg_ops.json").write_text(json.dumps(result, indent=2))
    lines = ["| dataset | aten calls / step | kernels / step | kernels outside Adam | autograd nodes / step | "
             "ms / step (wall) | CPU ms / step |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['dataset']} | {r['aten_calls']:.0f} | {r['kernels']:.0f} | {r['kernels_outside_optimizer']:.0f} | "
              f"{r['autograd_nodes']:.0f} | {r['ms_per_step']:.1f} | {r['cpu_ms_per_step']:.1f} |" for r in rows]
    (RESULTS / "kg_ops.md").write_text(f"`{result['command']}`\n\n" + "\n".join(lines) + "\n")


def wn18rr(args: argparse.Namespace) -> None:
    import torch

    from graphrec.datasets import load
    from graphrec.kg import LowFER, TuckER
    from graphrec.train import load_checkpoint

    cls = {"lowfer": LowFER, "tucker": TuckER}[args.method]
    kg = load(args.dataset)
    result: dict = {"command": "python " + " ".join(sys.argv), "method": args.method, "dataset": args.dataset,
                    "device": args.device}
    if args.device.startswith("cuda"):
        result["cuda_device"] = torch.cuda.get_device_name()
    if args.time_epochs:
        timed = cls.from_preset(args.dataset, max_epochs=args.time_epochs, eval_every=10**6, random_state=0,
                                device=args.device).fit(kg)
        seconds = [h["seconds"] for h in timed.history_]
        result["timing"] = {"epochs": seconds, "median_s_per_epoch": statistics.median(seconds[1:] or seconds),
                            "official_h100_s_per_epoch": 14.0}
        print("epoch seconds:", [round(s, 3) for s in seconds], flush=True)
    schedule = {k: v for k, v in (("lr", args.lr), ("lr_decay", args.lr_decay)) if v is not None}
    if schedule:
        result["schedule_override"] = schedule
    total = args.epochs
    last = Path(args.checkpoint_dir or ".") / "last.pt"
    if args.epochs_this_call and args.checkpoint_dir and last.exists():
        total = min(total, int(load_checkpoint(last)["epochs_done"]) + args.epochs_this_call)
    elif args.epochs_this_call:
        total = min(total, args.epochs_this_call)
    start = time.perf_counter()
    est = cls.from_preset(args.dataset, max_epochs=total, eval_every=args.eval_every, random_state=0,
                          device=args.device, checkpoint_dir=args.checkpoint_dir or None, max_seconds=args.max_seconds,
                          verbose=True, **schedule).fit(kg)
    result["train"] = {"epochs_done": est.n_epochs_, "best_epoch": est.best_epoch_,
                       "wall_s_this_call": time.perf_counter() - start,
                       "valid_mrr": [(h["epoch"], h["valid_mrr"]) for h in est.history_ if "valid_mrr" in h]}
    result["test"] = est.evaluate(kg, "test")
    print(json.dumps(result["test"]), flush=True)
    if args.checkpoint_dir and last.exists() and est.best_epoch_ is not None:
        state = load_checkpoint(last)  # its "model" holds the last epoch's weights, as the paper reports them
        est.net_.load_state_dict(state["model"])
        result["test_last_epoch"] = {"epoch": int(state["epochs_done"]) - 1, **est.evaluate(kg, "test")}
        print(json.dumps(result["test_last_epoch"]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    tag = "cuda" if args.device.startswith("cuda") else args.device
    tag += "".join(f"_{key}{value:g}" for key, value in schedule.items())  # a paper-settings file is never overwritten
    out = Path(args.out) if args.out else RESULTS / f"kg_{args.dataset}_{args.method}_{tag}.json"
    out.write_text(json.dumps(result, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("speed", help="CPU epoch time against the official LowFER code")
    p.add_argument("--official", required=True, help="checkout of suamin/LowFER (CPU device lines patched)")
    p.add_argument("--datasets", nargs="+", default=["umls", "kinship"], choices=sorted(OFFICIAL_NAMES))
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--cpu-time", action="store_true",
                   help="also a 1-epoch run per side and round: CPU seconds per extra epoch (robust to machine load)")
    p.set_defaults(func=speed)
    p = sub.add_parser("wn18rr", help="train on WN18RR with checkpoints (resumes across calls)")
    p.add_argument("--method", default="lowfer", choices=["lowfer", "tucker"])
    p.add_argument("--dataset", default="wn18rr", help="any dataset with a preset (nations for a quick dry run)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--epochs", type=int, default=500, help="total epochs, restored ones included")
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--checkpoint-dir", default="runs/kg_wn18rr", help="'' for none (no resume)")
    p.add_argument("--epochs-this-call", type=int, default=0,
                   help="stop after this many more epochs than the checkpoint holds (0: run to --epochs)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="wall-time budget of the training call (ends normally: test at the best valid epoch)")
    p.add_argument("--time-epochs", type=int, default=0, help="first time this many epochs without checkpoints")
    p.add_argument("--lr", type=float, default=None, help="override the preset's learning rate")
    p.add_argument("--lr-decay", type=float, default=None, help="override the preset's per-epoch learning-rate decay")
    p.add_argument("--out", default=None,
                   help="result file (default results/kg_<dataset>_<method>_<device>.json; one per call of a long run)")
    p.set_defaults(func=wn18rr)
    p = sub.add_parser("ops", help="operators and milliseconds per LowFER training step (CPU profiler)")
    p.add_argument("--datasets", nargs="+", default=["umls", "wn18rr"])
    p.add_argument("--steps", type=int, default=30, help="timed steps (the first 8 are also profiled/warm-up)")
    p.set_defaults(func=ops)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")  # epochs, also without tqdm
    args.func(args)


if __name__ == "__main__":
    main()
