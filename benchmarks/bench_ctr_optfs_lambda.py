"""OptFS-FM on Frappe for one reg_lambda and gate_lr: python benchmarks/bench_ctr_optfs_lambda.py LAMBDA GATE_LR (prints test metrics)."""
import sys, time
from graphrec.bench.tasks.ctr import _fit
from graphrec.ctr import OptFS
from graphrec.datasets import load
lam = float(sys.argv[1]); glr = float(sys.argv[2])
t = load("frappe"); s = time.time()
m = OptFS("fm", reg_lambda=lam, tau_final=1000.0, search_epochs=10, rewind_epoch=1, gate_lr=glr, hidden=(400, 400, 400),
          batch_size=1024, lr=1e-3, l2=1e-6, max_epochs=20, patience=2, random_state=0)
print(lam, glr, _fit(m, t), round(time.time() - s, 1), flush=True)
