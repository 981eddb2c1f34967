#!/bin/sh
# The GPU checks: build nasdet with CUDA=1 and run tests/gpu/gpu_check (ops, train, detect: CUDA
# against the CPU), each part in its own process (a crashing op case is reported and the next one
# runs), then print a summary. Exits 0 with "skipped: no GPU" where nvidia-smi finds no GPU, 1
# when a check fails.
#
#   sh tests/gpu/run.sh [PART ...]      build in build/gpu (make CUDA=1 ...) and run the parts
#                                       (ops, train, detect; default all three)
#   GPU_PREBUILT=DIR sh tests/gpu/run.sh
#                                       run DIR/nasdet_gpu made by tests/gpu/pack.sh instead of
#                                       building (a GPU machine without the build's libraries)
set -u
cd "$(dirname "$0")/../.."
start=$(date +%s)
# GPU_CHECK_DEVICE=emulated runs the same checks against the host-memory backend that takes the
# device path: a try of this script (and of the seam) where no GPU exists.
if [ "${GPU_CHECK_DEVICE:-cuda}" = cuda ]; then
    if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
        echo "tests/gpu: skipped: no GPU (nvidia-smi finds none)"
        exit 0
    fi
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/GPU: /'
fi
if [ -n "${GPU_PREBUILT:-}" ]; then
    bin="$GPU_PREBUILT/nasdet_gpu"
    export LD_LIBRARY_PATH="$GPU_PREBUILT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    [ -x "$bin" ] || { echo "tests/gpu: $bin missing (run tests/gpu/pack.sh)"; exit 1; }
    [ -z "${GPU_CHECK_IMAGES:-}" ] && [ -d "$GPU_PREBUILT/images" ] && export GPU_CHECK_IMAGES="$(ls "$GPU_PREBUILT"/images/*.ppm | tr '\n' ' ')"
else
    jobs=$(nproc 2>/dev/null || echo 2)
    make CUDA=1 BUILD=build/gpu BIN=build/gpu/bin -j"$jobs" build/gpu/tests/gpu/gpu_check || {
        echo "tests/gpu: FAILED: the CUDA=1 build failed"
        exit 1
    }
    bin=build/gpu/tests/gpu/gpu_check
fi
parts=${*:-ops train detect}
failed=""
log=$(mktemp)
for part in $parts; do
    first=0
    while :; do
        # GPU_CHECK_TIMEOUT seconds a part (150): the whole script stays under 8 minutes on one H100
        t=${GPU_CHECK_TIMEOUT:-150}
        if [ "$part" = ops ]; then timeout "$t" "$bin" ops "$first" >"$log" 2>&1; else timeout "$t" "$bin" "$part" >"$log" 2>&1; fi
        rc=$?
        grep -v "has no cuda kernel; running it on the CPU" "$log"
        grep "has no cuda kernel; running it on the CPU" "$log" | sort -u
        [ $rc -eq 0 ] && break
        if [ "$part" = ops ] && [ $rc -gt 1 ] && [ $rc -ne 124 ]; then
            # a crash: the case after the last one reported crashed; go on from the next
            n=$(grep -c '^  \(ok  \|FAIL\) ' "$log")
            echo "  CRASH op case $((first + n)) (exit $rc); continuing with the next case"
            failed="$failed ops-case-$((first + n))"
            first=$((first + n + 1))
            continue
        fi
        failed="$failed $part(exit $rc)"
        break
    done
done
rm -f "$log"
if [ -z "$failed" ]; then
    echo "tests/gpu: PASSED ($parts) in $(( $(date +%s) - start )) s"
    exit 0
fi
echo "tests/gpu: FAILED:$failed ($(( $(date +%s) - start )) s)"
exit 1
