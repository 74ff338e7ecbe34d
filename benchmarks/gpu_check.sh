#!/usr/bin/env bash
# One prepared GPU run: build graphrec there, run the CUDA tests, the cluster bench on CUDA and
# on the host CPU of the same machine (spectral baseline, S2CAG / M-S2CAG and their scale run),
# and the kernel benchmark with the CUDA contenders.
# Usage (on a GPU machine, repo root): GRAPHREC_DATA=<data root> OUT=<folder> bash benchmarks/gpu_check.sh
set -uo pipefail
export TQDM_DISABLE=1 PYTHONUNBUFFERED=1
OUT="${OUT:-gpu_out}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2
python3 -c "import torch, graphrec.kernels as k; print('torch', torch.__version__, torch.cuda.get_device_name(), k.available_backends())" | tee -a "$OUT/gpu.txt"
python3 -m pytest -q -rs tests/test_kernels.py tests/test_metrics.py tests/test_train.py tests/test_cluster.py \
    tests/test_core_linalg.py tests/test_estimator_contract.py 2>&1 | tail -15 | tee "$OUT/pytest.txt"
for dev in cuda cpu; do
  python3 -m graphrec bench cluster --method spectral --dataset csbm cora citeseer acm --seeds 3 \
      --device "$dev" --json "$OUT/cluster_$dev.json" 2>&1 | tail -7
done
for dev in cuda cpu; do  # S2CAG / M-S2CAG on the shared graphs and at scale, device vs host
  python3 -m graphrec bench cluster --method s2cag m-s2cag --dataset cora citeseer acm wiki dblp --seeds 3 \
      --device "$dev" --json "$OUT/cluster_s2cag_$dev.json" 2>&1 | tail -12
  python3 benchmarks/bench_s2cag_scale.py --methods s2cag m-s2cag --dtypes float64 float32 --device "$dev" \
      --out "$OUT/s2cag_scale_$dev.json" 2>&1 | tail -12
done
python3 benchmarks/bench_kernels.py --out "$OUT/kernels_gpu_host.json" 2>&1 | tail -22
