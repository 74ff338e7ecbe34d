#!/usr/bin/env bash
# SPE on ZINC-12k at the official configuration, on one GPU (H100), in sessions of at most 8 minutes.
#
#   bash benchmarks/spe_gpu.sh            # run again in a later session to resume
#
# 1. Checks: the SPE tests on CUDA (CPU/GPU agreement) and the forward-pass timing of the
#    official-size SPE on a 128-graph ZINC batch (graphrec only; the official code is not here).
# 2. Trains gine-spe and gine (seed 0) for up to 1000 epochs each; every run is cut by `timeout`
#    and resumes from runs/spe_zinc/<method>-<seed>/last.pt (written after every epoch). A run that
#    has finished appends its test MAE to benchmarks/results/spe_zinc_gpu.jsonl.
# 3. Copies the checkpoints (about 12 MB each) and the results to $OUT when it is set.
# Budget: BUDGET_S seconds in all (default 480 = 8 minutes).
set -u
cd "$(dirname "$0")/.."
BUDGET_S=${BUDGET_S:-480}
EPOCHS=${EPOCHS:-1000}
if [ -x .venv/bin/python ]; then PY=${PY:-.venv/bin/python}; else PY=${PY:-python3}; fi
export GRAPHREC_DATA=${GRAPHREC_DATA:-/work/shared/datasets} TQDM_DISABLE=1
deadline=$(( $(date +%s) + BUDGET_S ))
left() { echo $(( deadline - $(date +%s) )); }

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || exit 1
timeout 90 $PY -m pytest -q tests/test_pe.py -k cuda -p no:cacheprovider || echo "cuda test failed"
timeout 60 $PY benchmarks/spe_forward_cuda.py --repeats 10 || echo "timing failed"

for method in gine-spe gine; do
  t=$(( $(left) / 2 ))
  [ "$method" = gine ] && t=$(left)
  [ "$t" -lt 30 ] && break
  echo "== $method: ${t}s (resumes from runs/spe_zinc/${method}-0)"
  timeout "$t" $PY benchmarks/bench_spe_zinc.py --method "$method" --seed 0 --epochs "$EPOCHS" --device cuda \
      --checkpoint-dir "runs/spe_zinc/${method}-0" 2>&1 | grep -E "epoch|test_mae|Error" | tail -n 5
done
echo "finished runs: $(cat benchmarks/results/spe_zinc_gpu.jsonl 2>/dev/null | wc -l)"
# A device session gets a fresh machine: hand the checkpoints back through $OUT. Put the returned
# runs/ folder back into the working tree (untracked files travel with it) to resume next time.
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  for f in runs/spe_zinc/*/last.pt; do [ -f "$f" ] && mkdir -p "$OUT/$(dirname "$f")" && cp "$f" "$OUT/$f"; done
  [ -f benchmarks/results/spe_zinc_gpu.jsonl ] && mkdir -p "$OUT/benchmarks/results" && \
    cp benchmarks/results/spe_zinc_gpu.jsonl "$OUT/benchmarks/results/"
fi
