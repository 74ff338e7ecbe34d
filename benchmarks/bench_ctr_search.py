"""One CTR fit on Frappe with the bench settings plus overrides; prints valid AND test metrics (select on valid).

Usage: python benchmarks/bench_ctr_search.py METHOD SEED [key=value ...]
METHOD is a ``ctr`` bench method (``deepfm``, ``rewind-fm``, ``optfs-deepfm``, ``dnis-deepfm``, ...); the
overrides replace entries of ``SETTINGS["frappe"]`` / ``OPTFS["frappe"]`` (``OPTFS["frappe/deepfm"]``) / ``DNIS_SETTINGS["frappe"]`` in
graphrec/bench/tasks/ctr.py (values parsed as Python literals). One JSON line per run is appended to
benchmarks/results/ctr_search.jsonl; hyper-parameters are chosen on ``valid_auc``, ``auc`` is the test split.
"""
import ast
import json
import sys
import time
from pathlib import Path

import torch

from graphrec.bench.tasks.ctr import estimator_for, report
from graphrec.datasets import load

method, seed = sys.argv[1], int(sys.argv[2])
overrides = {k: ast.literal_eval(v) for k, v in (a.split("=", 1) for a in sys.argv[3:])}
torch.set_num_threads(1)
table = load("frappe")
est = estimator_for(method, "frappe", seed, "cpu", **overrides)
start = time.perf_counter()
est.fit(*table.split("train"), eval_set=table.split("valid"))
seconds = time.perf_counter() - start
row = {"method": method, "seed": seed, **{k: str(v) for k, v in overrides.items()},
       "valid_auc": est.score(*table.split("valid")), **report(est, table, seconds), "seconds": round(seconds, 1)}
print(json.dumps(row), flush=True)
out = Path(__file__).parent / "results" / "ctr_search.jsonl"
with out.open("a") as f:
    f.write(json.dumps(row) + "\n")
