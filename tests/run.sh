#!/bin/sh
# Run every Criterion test binary given as arguments; print one summary line per binary and a
# total. Exit non-zero if any binary fails or leaks. Tests find the CLI through $NASDET_BIN and run from
# the repository root (fixtures are under tests/fixtures).
set -u
failed=""
total=0
start=$(date +%s)
for t in "$@"; do
  name=$(basename "$t")
  t0=$(date +%s)
  out=$("$t" --jobs 2 2>&1)
  rc=$?
  t1=$(date +%s)
  synth=$(printf '%s\n' "$out" | grep 'Synthesis' | tail -1 | sed 's/.*Synthesis: //')
  printf '%-36s %4ss  %s\n' "$name" $((t1 - t0)) "${synth:-no summary}"
  # Criterion runs each test in a child whose LeakSanitizer report (SAN=1 builds) does not
  # change the binary's exit status: a report fails the binary here.
  if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q 'ERROR: LeakSanitizer'; then
    rc=1
    synth="$synth; memory leaked (LeakSanitizer)"
  fi
  if [ $rc -ne 0 ]; then
    failed="$failed $name"
    printf '%s\n' "$out" | grep -v '^\[----\] *$' | tail -40
  fi
  total=$((total + 1))
done
echo "tests: $total binaries in $(( $(date +%s) - start ))s${failed:+; FAILED:$failed}"
[ -z "$failed" ]
