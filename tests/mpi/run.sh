#!/bin/sh
# Run the MPI tests (tests/mpi/test_*.sh) given as arguments, each under a time limit, from the
# repository root; one summary line per test and a total; non-zero exit if any fails.
# The scripts get NASDET_BIN (an MPI=1 nasdet), MPI_TOOLS (helper programs built with it),
# MPIRUN (mpirun with the options this one machine needs) and a fresh TEST_TMP folder.
set -u
export NASDET_DATA_DIR="${NASDET_DATA_DIR:-$(pwd)/demos}"
export MPIRUN="${MPIRUN:-mpirun --allow-run-as-root --oversubscribe}"
# Open MPI allocates for the process lifetime; leak reports of a SAN=1 build would be its own.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
# Containers often forbid the cross-process memory copy of Open MPI's shared-memory transport.
export OMPI_MCA_btl_vader_single_copy_mechanism="${OMPI_MCA_btl_vader_single_copy_mechanism:-none}"
failed=""
total=0
start=$(date +%s)
for t in "$@"; do
  name=$(basename "$t" .sh)
  TEST_TMP=$(mktemp -d /tmp/nasdet-mpi-XXXXXX)
  export TEST_TMP
  t0=$(date +%s)
  out=$(timeout 300 sh "$t" 2>&1)
  rc=$?
  t1=$(date +%s)
  if [ $rc -eq 0 ]; then
    printf '%-36s %4ss  passed\n' "mpi/$name" $((t1 - t0))
    rm -rf "$TEST_TMP"
  else
    printf '%-36s %4ss  FAILED (exit %d; files in %s)\n' "mpi/$name" $((t1 - t0)) $rc "$TEST_TMP"
    printf '%s\n' "$out" | tail -40
    failed="$failed $name"
  fi
  total=$((total + 1))
done
echo "mpi tests: $total scripts in $(( $(date +%s) - start ))s${failed:+; FAILED:$failed}"
[ -z "$failed" ]
