#!/bin/sh
# make bench-nn: sgemm calibration, then every case of bench/bench_nn.c next to the same case in
# PyTorch (bench/nn_torch.py, Debian's python3-torch, 2 threads each), alternating the two
# programs ROUNDS times (default 1), then the ratio table and the peak memory of a training step.
# Environment: BENCH_BIN (set by make), ROUNDS, FILTER (substring of case names), BENCH_THREADS,
# BENCH_CLOCK=cpu (both sides time with process CPU time: with BENCH_THREADS=1, a comparison of the
# work done that holds up on a machine shared with other jobs, where wall-clock medians do not).
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-1}
FILTER=${FILTER:-}
PY=/usr/bin/python3
# PyTorch's CPU tensors come from malloc, which maps and unmaps blocks over 128 KiB-32 MiB on
# every call; page faults on this VM have cost up to 14 us a page (a 12 MiB output: 43 ms), which
# would bill PyTorch for the machine's memory manager. Keeping freed blocks in the heap gives it
# the steady state our arenas have. Measured figures below are with these set.
export MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "== calibration"
"$BENCH_BIN" --sgemm
have_torch=0
if OPENBLAS_NUM_THREADS=1 "$PY" -c 'import torch' 2>/dev/null; then have_torch=1; else
  echo "(python3-torch is not installed: nasdet figures only)"; fi
i=1
while [ "$i" -le "$ROUNDS" ]; do
  echo "== round $i: nasdet"
  "$BENCH_BIN" --tsv $FILTER > "$tmp/ours$i.tsv"
  if [ $have_torch = 1 ]; then
    echo "== round $i: pytorch"
    OPENBLAS_NUM_THREADS=1 "$PY" bench/nn_torch.py --tsv $FILTER > "$tmp/torch$i.tsv"
  fi
  i=$((i + 1))
done
echo "== calibration (after)"
"$BENCH_BIN" --sgemm
echo
"$PY" bench/nn_table.py "$tmp"/ours*.tsv -- $( [ $have_torch = 1 ] && ls "$tmp"/torch*.tsv )
echo
echo "== peak memory"
printf 'nasdet:  '; "$BENCH_BIN" --mem
if [ $have_torch = 1 ]; then printf 'pytorch: '; OPENBLAS_NUM_THREADS=1 "$PY" bench/nn_torch.py --mem; fi
