"""DeepFM training throughput on Frappe: graphrec's ``CTRClassifier("deepfm")`` against deepctr-torch, side by side.

Both train the same DeepFM (embedding dim 16 per field, DNN 400-400-400 with ReLU, no dropout, no batch
norm, no L2) with Adam (lr 1e-3) on the same 60,608 Frappe training rows (``graphrec.datasets.load("frappe")``,
split ``"train"``) for the same number of epochs, with the same batch size, on one torch thread, and
evaluate AUC and log loss on the same 17,316 validation rows after every epoch (graphrec for its early
stopping, here with ``patience=None`` so every epoch runs; deepctr-torch through ``validation_data``).

deepctr-torch is not a graphrec dependency: install it into its own virtual environment and pass that
environment's interpreter with ``--python``. Its side runs a small runner written to a temporary folder at
run time, which only imports ``deepctr_torch`` and calls its public API (``SparseFeat``, ``DeepFM``,
``compile``, ``fit`` with a ``Callback`` that stamps the epoch boundaries). deepctr-torch 0.3.0 imports
``requests`` only to look up its latest version on PyPI in a background thread; the runner puts a stub
``requests`` module in ``sys.modules`` (its ``get`` raises, which the check catches), the package is not
modified. Its input is graphrec's encoding of the training rows (``CTRSchema`` fitted on them, local id
per field, 0 = unseen), written with numpy to the temporary folder, so both see the same integer ids.

Timing. ``loop``: the epoch loop only (training + the per-epoch validation pass), set-up excluded from
both (graphrec: encoding the DataFrame and building the network; deepctr-torch: feature columns, model,
optimizer, its ``TensorDataset``): graphrec's Trainer run (``_train``: every epoch, the best-weight
copies, loading the best weights), deepctr-torch's first ``on_epoch_begin`` to its last ``on_epoch_end``.
``fit``: the whole call (graphrec's ``fit`` from the DataFrame, its encoding included; deepctr-torch's
model construction + ``compile`` + ``fit`` on ids encoded in advance, i.e. without an encoding step).
The first ``torch.optim`` optimizer of a process imports ``torch._dynamo`` (1-3 s, once per process):
both sides build a throwaway Adam before timing. CPU seconds are the process CPU time
(``time.process_time``) over the same spans. Each run is a fresh subprocess, one at a time; rounds
alternate which goes first. The headline is the ratio of median ``loop`` rows/s, graphrec /
deepctr-torch (> 1: graphrec faster); the per-round ratios and the CPU-second ratio are reported too,
since on a shared machine wall times move with the load.

Usage:
  python3 -m venv /tmp/deepctr_venv
  /tmp/deepctr_venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
  /tmp/deepctr_venv/bin/pip install deepctr-torch==0.3.0 scikit-learn pandas
  GRAPHREC_DATA=/work/shared/datasets python benchmarks/bench_ctr_deepctr.py \
      --python /tmp/deepctr_venv/bin/python [--batch-sizes 1024 4096] [--epochs 3] [--rounds 3] [--threads 1]
Writes benchmarks/results/<--out>.json and .md (default ctr_deepctr).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _workers import run_worker

OUT = Path(__file__).parent / "results"
EMBED_DIM = 16
HIDDEN = (400, 400, 400)
LR = 1e-3
SEED = 0

RUNNER = r'''
import json, sys, time, types

import numpy as np
import torch

sys.modules.setdefault("requests", types.SimpleNamespace(get=None))  # version check only; see the benchmark
from deepctr_torch.callbacks import Callback
from deepctr_torch.inputs import SparseFeat
from deepctr_torch.models import DeepFM


class EpochClock(Callback):
    def on_train_begin(self, logs=None):
        self.stamps = []

    def on_epoch_begin(self, epoch, logs=None):
        self.stamps.append([time.perf_counter(), time.process_time()])

    def on_epoch_end(self, epoch, logs=None):
        self.stamps[-1] += [time.perf_counter(), time.process_time()]
        self.last = dict(logs or {})


cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # one-off lazy import of torch._dynamo, untimed in both
d = np.load(cfg["data"])
names = [f"f{j}" for j in range(d["x_train"].shape[1])]
as_dict = lambda x: {n: x[:, j] for j, n in enumerate(names)}
x_train, x_valid = as_dict(d["x_train"]), as_dict(d["x_valid"])
t0, c0 = time.perf_counter(), time.process_time()
columns = [SparseFeat(n, vocabulary_size=int(v), embedding_dim=cfg["embed_dim"])
           for n, v in zip(names, d["field_dims"])]
model = DeepFM(columns, columns, dnn_hidden_units=tuple(cfg["hidden"]), l2_reg_linear=0.0, l2_reg_embedding=0.0,
               l2_reg_dnn=0.0, dnn_dropout=0.0, dnn_use_bn=False, seed=cfg["seed"], device="cpu")
model.compile(torch.optim.Adam(model.parameters(), lr=cfg["lr"]), "binary_crossentropy",
              metrics=["binary_crossentropy", "auc"])
clock = EpochClock()
model.fit(x_train, d["y_train"], batch_size=cfg["batch_size"], epochs=cfg["epochs"], verbose=0,
          validation_data=(x_valid, d["y_valid"]), shuffle=True, callbacks=[clock])
fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
out = dict(impl="deepctr-torch", fit_s=fit_s, fit_cpu_s=fit_cpu,
           loop_s=sum(s[2] - s[0] for s in clock.stamps), loop_cpu_s=sum(s[3] - s[1] for s in clock.stamps),
           epoch_s=[s[2] - s[0] for s in clock.stamps], valid_auc=float(clock.last["val_auc"]),
           threads=torch.get_num_threads(), torch=torch.__version__)
print("RESULT " + json.dumps(out), flush=True)
'''


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(x.split(":", 1)[1].strip() for x in lines if x.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def load_frappe():
    from graphrec.datasets import load

    table = load("frappe")
    return table, table.split("train"), table.split("valid")


def write_peer_input(path: Path) -> int:
    """graphrec's encoding of the train / valid rows as per-field local ids (0 = unseen), saved with numpy."""
    from graphrec.ctr import CTRSchema

    table, (X, y), (Xv, yv) = load_frappe()
    schema = CTRSchema(table.categorical, table.numeric).fit(X)
    local = lambda frame: schema.transform(frame) - schema.offsets_  # noqa: E731
    np.savez(path, x_train=local(X), y_train=y.astype(np.float32), x_valid=local(Xv),
             y_valid=yv.astype(np.float32), field_dims=schema.field_dims_)
    return len(X)


def run_ours(batch_size: int, epochs: int) -> dict:
    import torch

    from graphrec.ctr import CTRClassifier

    table, (X, y), valid = load_frappe()
    clf = CTRClassifier("deepfm", embed_dim=EMBED_DIM, hidden=HIDDEN, dropout=0.0, lr=LR, l2=0.0,
                        batch_size=batch_size, max_epochs=epochs, patience=None, categorical=table.categorical,
                        numeric=table.numeric, random_state=SEED)
    clock = {}
    inner = clf._train

    def timed_train(*a, **kw):  # the epoch loop: graphrec's Trainer run, after encoding and network set-up
        w, c = time.perf_counter(), time.process_time()
        result = inner(*a, **kw)
        clock.update(loop_s=time.perf_counter() - w, loop_cpu_s=time.process_time() - c)
        return result

    clf._train = timed_train
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # one-off lazy import of torch._dynamo, untimed in both
    t0, c0 = time.perf_counter(), time.process_time()
    clf.fit(X, y, eval_set=valid)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    return dict(impl="graphrec", fit_s=fit_s, fit_cpu_s=fit_cpu, loop_s=clock["loop_s"], loop_cpu_s=clock["loop_cpu_s"],
                epoch_s=[h["seconds"] for h in clf.history_], valid_auc=clf.history_[-1]["valid_auc"],
                threads=torch.get_num_threads(), torch=torch.__version__)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", required=True, help="interpreter of a virtual environment with deepctr-torch")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="ctr_deepctr")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(args.threads)
        print("RESULT " + json.dumps(run_ours(args.batch_size, args.epochs)), flush=True)
        return
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "frappe_ids.npz"
        n_train = write_peer_input(data)
        runner = Path(tmp) / "deepctr_runner.py"
        runner.write_text(RUNNER)
        for batch_size in args.batch_sizes:
            for r in range(args.rounds):
                order = ("deepctr-torch", "graphrec") if r % 2 == 0 else ("graphrec", "deepctr-torch")
                for impl in order:
                    if impl == "graphrec":
                        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--python", args.python,
                               "--batch-size", str(batch_size), "--epochs", str(args.epochs),
                               "--threads", str(args.threads)]
                    else:
                        cfg = dict(data=str(data), batch_size=batch_size, epochs=args.epochs, threads=args.threads,
                                   embed_dim=EMBED_DIM, hidden=list(HIDDEN), lr=LR, seed=SEED)
                        cmd = [args.python, str(runner), json.dumps(cfg)]
                    res = run_worker(cmd, env, impl)
                    res.update(batch_size=batch_size, round=r, rows_per_s=n_train * args.epochs / res["loop_s"])
                    runs.append(res)
                    print(json.dumps(res), flush=True)
    summary = []
    for batch_size in args.batch_sizes:
        med = {}
        for impl in ("graphrec", "deepctr-torch"):
            rs = [x for x in runs if x["impl"] == impl and x["batch_size"] == batch_size]
            med[impl] = {k: float(np.median([x[k] for x in rs]))
                         for k in ("rows_per_s", "loop_s", "loop_cpu_s", "fit_s", "fit_cpu_s", "valid_auc")}
        ratios = [a["rows_per_s"] / b["rows_per_s"] for a, b in zip(
            [x for x in runs if x["impl"] == "graphrec" and x["batch_size"] == batch_size],
            [x for x in runs if x["impl"] == "deepctr-torch" and x["batch_size"] == batch_size])]
        summary.append(dict(batch_size=batch_size, median=med,
                            ratio_rows_per_s=med["graphrec"]["rows_per_s"] / med["deepctr-torch"]["rows_per_s"],
                            ratio_per_round=ratios, ratio_per_round_median=float(np.median(ratios)),
                            ratio_cpu=med["deepctr-torch"]["loop_cpu_s"] / med["graphrec"]["loop_cpu_s"],
                            ratio_fit=med["deepctr-torch"]["fit_s"] / med["graphrec"]["fit_s"]))
    result = dict(machine=f"{cpu_model()}, {os.cpu_count()} CPU cores (shared)", threads=args.threads,
                  n_train=n_train, epochs=args.epochs, embed_dim=EMBED_DIM, hidden=list(HIDDEN), lr=LR,
                  command=" ".join([Path(sys.executable).name, *sys.argv]), runs=runs, summary=summary)
    OUT.mkdir(exist_ok=True)
    (OUT / f"{args.out}.json").write_text(json.dumps(result, indent=2))
    lines = ["| batch | implementation | round | loop s | loop CPU s | rows/s | fit s | fit CPU s | valid AUC | "
             "load (1 min) before / after |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {x['batch_size']} | {x['impl']} | {x['round']} | {x['loop_s']:.2f} | {x['loop_cpu_s']:.2f} | "
              f"{x['rows_per_s']:.0f} | {x['fit_s']:.2f} | {x['fit_cpu_s']:.2f} | {x['valid_auc']:.4f} | "
              f"{x['load1_before']:.2f} / {x['load1_after']:.2f} |" for x in runs]
    lines += ["", "| batch | graphrec rows/s | deepctr-torch rows/s | ratio (graphrec / deepctr-torch) | "
              "per-round ratios (median) | loop CPU-s ratio (deepctr / graphrec) | "
              "fit-time ratio (deepctr / graphrec) |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {s['batch_size']} | {s['median']['graphrec']['rows_per_s']:.0f} | "
              f"{s['median']['deepctr-torch']['rows_per_s']:.0f} | {s['ratio_rows_per_s']:.2f} | "
              f"{', '.join(f'{r:.2f}' for r in s['ratio_per_round'])} ({s['ratio_per_round_median']:.2f}) | "
              f"{s['ratio_cpu']:.2f} | {s['ratio_fit']:.2f} |"
              for s in summary]
    lines += ["", f"Frappe train {n_train} rows, {args.epochs} epochs, DeepFM d={EMBED_DIM}, DNN "
              f"{'-'.join(map(str, HIDDEN))}, Adam lr {LR}, {args.threads} torch thread(s); medians over "
              f"{args.rounds} alternating rounds; loop = epoch loop with per-epoch validation, set-up excluded."]
    (OUT / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
