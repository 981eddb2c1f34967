#!/bin/sh
# On a GPU machine that lacks the build's Debian libraries (this workplace's device machines):
# the GPU checks and bench-gpu from the package of tests/gpu/pack.sh (default .gpu), with
# PyTorch's figures next to ours. Prints everything; exit status of the checks.
#   sh tests/gpu/device_run.sh [PKG] [BENCH_STEPS]
set -u
cd "$(dirname "$0")/../.."
pkg=${1:-.gpu}
steps=${2:-5}
export LD_LIBRARY_PATH="$pkg/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# cuBLAS/cudart: the toolkit's, or the pip wheels' where the toolkit has none
if ! ldd "$pkg/nasdet_gpu" | grep -q "not found"; then :; else
    for m in cublas cuda_runtime; do
        d=$(python3 -c "import nvidia.$m, os; print(os.path.join(list(nvidia.$m.__path__)[0], 'lib'))" 2>/dev/null) &&
            export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
    done
    ldd "$pkg/nasdet_gpu" | grep "not found"
fi
GPU_CHECK_TIMEOUT=${GPU_CHECK_TIMEOUT:-60} GPU_PREBUILT="$pkg" sh tests/gpu/run.sh
rc=$?
echo "== bench-gpu (median of $steps steps after 2 warm-ups; fp32, no TF32)"
timeout 50 "$pkg/nasdet_gpu" bench --steps "$steps" --only cifar || echo "bench cifar: exit $?"
timeout 80 "$pkg/nasdet_gpu" bench --steps "$steps" --only mobile || echo "bench mobile: exit $?"
timeout 90 python3 bench/gpu_torch.py "$steps" || echo "pytorch bench: exit $?"
exit $rc
