#!/bin/sh
# Data-parallel training on GPUs (issue #9), for a machine with a GPU and Open MPI: 2 ranks with
# --device cuda and --sync-bn against 1 process on the CPU with the whole batch of 16 (the setting
# of tests/mpi/test_train_equivalence.sh). With one GPU both ranks share it, so the gradients take
# the host path (and the CUDA synchronised batch norm runs); with two GPUs and NCCL in the build,
# NCCL's. Prints rank 0's device and gradient line; exits 0 with "skipped" where no GPU or no
# mpirun is found, 1 when the weights differ.
#
#   sh tests/gpu/mpi_train.sh      build in build/gpu-mpi (make CUDA=1 MPI=1) and run
#   DEVICE=emulated NASDET_BIN=B MPI_TOOLS=D sh tests/gpu/mpi_train.sh
#                                  try the script without a GPU: an MPI=1 nasdet B, st_compare in D
set -eu
cd "$(dirname "$0")/../.."
dev=${DEVICE:-cuda}
if [ "$dev" = cuda ] && ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }; then
    echo "tests/gpu/mpi_train: skipped: no GPU (nvidia-smi finds none)"
    exit 0
fi
command -v mpirun >/dev/null 2>&1 || { echo "tests/gpu/mpi_train: skipped: no mpirun (apt-get install openmpi-bin)"; exit 0; }
if [ -z "${NASDET_BIN:-}" ]; then
    make CUDA=1 MPI=1 BUILD=build/gpu-mpi BIN=build/gpu-mpi/bin -j"$(nproc)" build/gpu-mpi/bin/nasdet \
        build/gpu-mpi/tests/mpi/st_compare
    NASDET_BIN=build/gpu-mpi/bin/nasdet
    MPI_TOOLS=build/gpu-mpi/tests/mpi
fi
bin=$(cd "$(dirname "$NASDET_BIN")" && pwd)/$(basename "$NASDET_BIN")
cmp="$(cd "$MPI_TOOLS" && pwd)/st_compare"
# The GPU's float sums differ from the CPU's in rounding: a looser bound than the CPU ranks' 2e-5.
tol=${TOL:-$([ "$dev" = cuda ] && echo 1e-3 || echo 2e-5)}
export OMPI_MCA_btl_vader_single_copy_mechanism="${OMPI_MCA_btl_vader_single_copy_mechanism:-none}"
tmp=$(mktemp -d /tmp/nasdet-gpu-mpi-XXXXXX)
cd "$tmp"
"$bin" data digits-cls --out digits --train 300 --test 10 >/dev/null
COMMON="--arch nasnet-a-cifar --N 1 --F 8 --no-aux --drop-path-keep 1 --steps 4 --batch 16 --lr 0.05 --pad 0
--threads 1 --seed 3 --train-limit 256 --test-limit 20 --eval-every 0"
"$bin" train --data cifar:digits --out one $COMMON >one.log 2>&1 || { cat one.log; echo "FAIL: 1-process CPU training"; exit 1; }
mpirun --allow-run-as-root --oversubscribe -np 2 "$bin" train --data cifar:digits --out two $COMMON --sync-bn \
    --device "$dev" >two.log 2>&1 || { cat two.log; echo "FAIL: mpirun -np 2 --device $dev (files in $tmp)"; exit 1; }
grep "^data-parallel: 2 ranks on" two.log || { cat two.log; echo "FAIL: no device line"; exit 1; }
if "$cmp" one/model.safetensors two/model.safetensors "$tol"; then
    echo "tests/gpu/mpi_train: PASSED: 2 ranks on $dev x 8 images = 1 CPU process x 16 (tolerance $tol)"
    rm -rf "$tmp"
else
    echo "tests/gpu/mpi_train: FAILED: the weights differ beyond $tol (files in $tmp)"
    exit 1
fi
