#!/bin/sh
# make bench-gpu: nasdet's CUDA figures (BENCH_BIN, bench/bench_gpu.c) and PyTorch's for the same
# models on the same GPU (bench/gpu_torch.py), one after the other. Skips cleanly without a GPU.
# BENCH_STEPS=N timed steps (5); BENCH_ONLY=cifar|mobile one model.
set -u
here=$(dirname "$0")
steps=${BENCH_STEPS:-5}
only=${BENCH_ONLY:-}
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "bench-gpu: skipped: no GPU (nvidia-smi finds none)"
    exit 0
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/GPU: /'
"$BENCH_BIN" --steps "$steps" ${only:+--only "$only"} || exit 1
py=python3
[ -x /usr/bin/python3 ] && ! python3 -c 'import torch' 2>/dev/null && py=/usr/bin/python3
$py "$here/gpu_torch.py" "$steps" $only
