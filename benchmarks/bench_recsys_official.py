"""DirectAU-MF training-epoch time side by side with the official code (THUwangcy/DirectAU, on RecBole).

    python benchmarks/bench_recsys_official.py --official /path/to/DirectAU --python /path/to/venv/bin/python
    python benchmarks/bench_recsys_official.py ... --rounds 3 --epochs 3

``--official`` is a checkout of the official code; it is run, never copied or modified. Its RecBole
fork needs the library versions of its time (numpy < 1.24 for ``np.float``), so it runs under
``--python``, an interpreter with numpy 1.23, pandas 1.5, scipy 1.10 and torch. The official
``Beauty.inter`` is not in the repository, so the script writes one from
``graphrec.datasets.load("beauty")`` (all 198,502 interactions) into a temporary folder, with a
RecBole config that points ``data_path`` and ``checkpoint_dir`` there and loads only
``user_id`` / ``item_id``; the checkout itself is left untouched (the run's working directory is
the temporary folder, so RecBole's ``log/`` goes there too).

Settings on both sides: DirectAU with the MF encoder, batch 256, d 64, gamma 0.5, Adam lr 1e-3 with
(coupled) weight decay 1e-6, ``OMP_NUM_THREADS=1`` and ``torch.set_num_threads(1)``, no evaluation
inside the run (official: the README's Beauty command plus ``--epochs=E --eval_step=0
use_gpu=False``; graphrec: ``DirectAU(...).fit`` on the train CSR of ``ratio_split(beauty, seed 0)``,
which has no valid split, so nothing is evaluated). Each side runs in a fresh subprocess, alternately
(official, graphrec, official, graphrec, ...: ``--rounds``), ``--epochs`` epochs each. The official
per-epoch time is the one it logs ("epoch N training [time: X s ...]": RecBole's data loader,
forward, backward, Adam step; wall clock, 2 decimals); graphrec's is the Trainer history's
``seconds`` (wall clock; no eval runs). The first epoch of every run is dropped as warm-up; the
median of the rest over all rounds is kept; ratio = official / graphrec. With ``--clock cpu`` both
timers read the process CPU time instead (``time.process_time``, patched into RecBole's trainer
module and graphrec's Trainer module inside the subprocesses; nothing else changes), which other
jobs on a shared machine disturb much less than the wall clock. Both sides split the same
interactions per user 8:1:1 with RecBole's rounding, but with different random draws, so the two
training sets have the same size per user and differ in which items they hold; both sizes are
reported. The load average (the machine is shared) is recorded before every run.

Results: ``benchmarks/results/recsys_official_speed.json`` (+ ``.md``; ``_cpu`` suffix with ``--clock cpu``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SETTINGS = {"encoder": "MF", "embedding_size": 64, "train_batch_size": 256, "gamma": 0.5,
            "learning_rate": 1e-3, "weight_decay": 1e-6}
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "TQDM_DISABLE": "1"}

# The official side: the README command through run_recbole.py, in one torch thread.
_OFFICIAL = """
import runpy, sys, time, torch
torch.set_num_threads(1)
official, clock, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
sys.path.insert(0, official)
if clock == "cpu":  # the trainer's epoch timer (``from time import time``) reads the process CPU clock
    import recbole.trainer.trainer
    recbole.trainer.trainer.time = time.process_time
sys.argv = [official + "/run_recbole.py"] + argv
runpy.run_path(official + "/run_recbole.py", run_name="__main__")
"""

# The official split's training size (RecBole's own data preparation on the same config).
_OFFICIAL_COUNT = """
import json, sys
sys.path.insert(0, sys.argv[1])
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import init_seed
config = Config(model="DirectAU", dataset="Beauty", config_file_list=[sys.argv[2]])
init_seed(config["seed"], config["reproducibility"])
dataset = create_dataset(config)
train, valid, test = data_preparation(config, dataset)
print(json.dumps({"train": len(train.dataset), "valid": len(valid.dataset), "test": len(test.dataset),
                  "interactions": len(dataset)}))
"""

_OURS = """
import json, sys, time, types, torch
torch.set_num_threads(1)
from graphrec.datasets import load
from graphrec.recsys import DirectAU, ratio_split
epochs, clock = int(sys.argv[1]), sys.argv[2]
if clock == "cpu":  # the Trainer's epoch timer (``time.perf_counter``) reads the process CPU clock
    import graphrec.train.trainer
    graphrec.train.trainer.time = types.SimpleNamespace(perf_counter=time.process_time)
train = ratio_split(load("beauty"), random_state=0).splits["train"]
est = DirectAU(encoder="mf", factors=64, gamma=0.5, batch_size=256, learning_rate=1e-3, weight_decay=1e-6,
               epochs=epochs, random_state=0).fit(train)
print(json.dumps({"seconds": [h["seconds"] for h in est.train_result_.history],
                  "train_loss": [h["train_loss"] for h in est.train_result_.history], "train": int(train.nnz),
                  "threads": torch.get_num_threads()}))
"""

_EPOCH_LINE = re.compile(r"epoch (\d+) training \[time: ([0-9.]+)s, train loss: (-?[0-9.]+)\]")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _write_official_data(folder: Path) -> Path:
    """``folder/Beauty/Beauty.inter`` from graphrec's Beauty, and the RecBole config; returns the config path."""
    from graphrec.datasets import load

    coo = load("beauty").user_items.tocoo()
    (folder / "Beauty").mkdir(parents=True, exist_ok=True)
    with open(folder / "Beauty" / "Beauty.inter", "w") as fh:
        fh.write("user_id:token\titem_id:token\n")
        fh.writelines(f"{u}\t{i}\n" for u, i in zip(coo.row.tolist(), coo.col.tolist()))
    config = folder / "beauty.yaml"
    config.write_text(f"data_path: {folder}/\ncheckpoint_dir: {folder}/saved\nuse_gpu: False\n"
                      "show_progress: False\nload_col:\n  inter: [user_id, item_id]\n")
    return config


def _official_args(config: Path, epochs: int) -> list[str]:
    return (["--model=DirectAU", "--dataset=Beauty"] + [f"--{k}={v}" for k, v in SETTINGS.items()]
            + [f"--epochs={epochs}", "--eval_step=0", f"--config_files={config}"])


def _official_epochs(python: str, official: Path, config: Path, epochs: int, cwd: Path, clock: str) -> dict:
    """Run the official code for ``epochs`` epochs; stop it once the last epoch line is logged."""
    proc = subprocess.Popen([python, "-c", _OFFICIAL, str(official), clock] + _official_args(config, epochs),
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **THREAD_ENV, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"})
    seconds, losses, tail = [], [], []
    for line in proc.stdout:
        tail = (tail + [line])[-40:]
        match = _EPOCH_LINE.search(_ANSI.sub("", line))
        if match:
            seconds.append(float(match.group(2)))
            losses.append(float(match.group(3)))
            if len(seconds) == epochs:  # the rest (checkpoint, test evaluation) is not timed
                proc.terminate()
                break
    proc.wait()
    if len(seconds) != epochs:
        raise RuntimeError(f"expected {epochs} epoch lines from the official code, got {len(seconds)}:\n"
                           + "".join(tail))
    return {"seconds": seconds, "train_loss": losses}


def _official_count(python: str, official: Path, config: Path, cwd: Path) -> dict:
    out = subprocess.run([python, "-c", _OFFICIAL_COUNT, str(official), str(config)], cwd=cwd, capture_output=True,
                         text=True, check=True, env={**os.environ, **THREAD_ENV})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _graphrec_epochs(epochs: int, clock: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _OURS, str(epochs), clock], capture_output=True, text=True, check=True,
                         env={**os.environ, **THREAD_ENV})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _version(python: str, module: str) -> str:
    out = subprocess.run([python, "-c", f"import {module}; print({module}.__version__)"], capture_output=True,
                         text=True, env={**os.environ, **THREAD_ENV})
    return out.stdout.strip() or "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", required=True, help="checkout of THUwangcy/DirectAU")
    parser.add_argument("--python", required=True, help="interpreter able to run it (numpy < 1.24, torch)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (the first one is dropped)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="what both sides' own epoch timers read: wall time (default) or the process CPU time, "
                             "less sensitive to other jobs on a shared machine (results get a _cpu suffix)")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch of every run is dropped)")
    official = Path(args.official).resolve()
    if not (official / "recbole" / "model" / "general_recommender" / "directau.py").exists():
        parser.error(f"--official {official} is not a checkout of THUwangcy/DirectAU (no recbole/.../directau.py)")

    runs: dict[str, list[dict]] = {"official": [], "graphrec": []}
    with tempfile.TemporaryDirectory(prefix="directau_official_") as tmp:
        folder = Path(tmp)
        config = _write_official_data(folder)
        counts = {"official": _official_count(args.python, official, config, folder)}
        for r in range(args.rounds):
            for side in ("official", "graphrec"):
                load = os.getloadavg()[0]
                run = (_official_epochs(args.python, official, config, args.epochs, folder, args.clock)
                       if side == "official" else _graphrec_epochs(args.epochs, args.clock))
                run["loadavg_1min_before"] = load
                runs[side].append(run)
                print(f"round {r} {side}: " + ", ".join(f"{s:.2f}" for s in run["seconds"])
                      + f" s/epoch (load {load:.2f})", flush=True)
    counts["graphrec"] = {"train": runs["graphrec"][0]["train"]}
    med = {side: statistics.median(s for run in v for s in run["seconds"][1:]) for side, v in runs.items()}
    ratio = med["official"] / med["graphrec"]
    print(f"official {med['official']:.3f} s/epoch, graphrec {med['graphrec']:.3f} s/epoch, ratio {ratio:.2f}x")

    import torch

    result = {
        "command": "python " + " ".join(sys.argv), "settings": SETTINGS, "dataset": "beauty",
        "epochs_per_run": args.epochs, "rounds": args.rounds, "clock": args.clock,
        "official_s_per_epoch": med["official"], "graphrec_s_per_epoch": med["graphrec"], "ratio": ratio,
        "train_interactions": {"official": counts["official"]["train"], "graphrec": counts["graphrec"]["train"]},
        "official_split": counts["official"], "runs": runs,
        "environment": {"machine": platform.machine(), "cpu_count": os.cpu_count(), "threads": 1,
                        "python": platform.python_version(), "torch": torch.__version__,
                        "official_torch": _version(args.python, "torch"),
                        "official_numpy": _version(args.python, "numpy"),
                        "loadavg_end": list(os.getloadavg()), "time": time.strftime("%Y-%m-%dT%H:%M:%S")},
    }
    RESULTS.mkdir(exist_ok=True)
    name = "recsys_official_speed" + ("_cpu" if args.clock == "cpu" else "")
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
    loads = [run["loadavg_1min_before"] for v in runs.values() for run in v]
    lines = [f"`{result['command']}`", "",
             f"| side | training interactions | {args.clock} s/epoch (median; first epoch of each run dropped) "
             "| ratio |",
             "|---|---|---|---|",
             f"| official (THUwangcy/DirectAU, RecBole) | {counts['official']['train']:,} | {med['official']:.3f} | |",
             f"| graphrec DirectAU | {counts['graphrec']['train']:,} | {med['graphrec']:.3f} | {ratio:.2f}x |", "",
             f"Beauty, batch 256, d 64, gamma 0.5, lr 1e-3, weight decay 1e-6, 1 thread; {args.rounds} rounds x "
             f"{args.epochs} epochs, alternating; load average before the runs {min(loads):.2f}-{max(loads):.2f}; "
             f"{os.cpu_count()} CPUs; torch {torch.__version__} (graphrec), {result['environment']['official_torch']} "
             f"with numpy {result['environment']['official_numpy']} (official)."]
    for side, v in runs.items():
        lines.append(f"- {side} per-epoch seconds: " + "; ".join(", ".join(f"{s:.2f}" for s in run["seconds"])
                                                                 for run in v))
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
