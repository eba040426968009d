#!/usr/bin/env bash
# One GPU session's checks (issues 5 and 7), in one call: the CUDA-only tests, then the GPU report.
#
#   bash benchmarks/gpu_check.sh [LOG_DIR]      # from the repository root, on a CUDA machine (~5 minutes)
#
# Uses the Python on PATH (PYTHON= overrides) with this checkout on PYTHONPATH, so a machine
# that already has torch needs no install. The logs go to LOG_DIR (default: the current folder).
set -uo pipefail
out=${1:-.}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
py=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
timeout 180 "$py" -m pytest -q -p no:cacheprovider tests/test_data.py tests/test_batches.py tests/test_resize.py tests/test_protocols.py \
    tests/test_metrics.py tests/test_evaluate.py 2>&1 \
    | tail -n 15 | tee "$out/cuda_tests.log"
timeout 480 "$py" benchmarks/gpu_report.py 2>&1 | tee "$out/gpu_report.log"
