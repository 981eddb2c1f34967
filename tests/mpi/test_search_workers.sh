# A search with 2 worker ranks gives the same children (genotypes, seeds, rewards) as the
# in-process search with the same seed, and rank 0 wrote the run folder.
. tests/mpi/common.sh
cd "$TEST_TMP"
make_digits digits 600
"$NASDET_BIN" search --data cifar:digits --out local --children 4 $SEARCH_CHILD > local.log 2>&1 ||
  { cat local.log; fail "in-process search"; }
$MPIRUN -np 3 "$NASDET_BIN" search --data cifar:digits --out mpi --children 4 $SEARCH_CHILD > mpi.log 2>&1 ||
  { cat mpi.log; fail "mpirun -np 3 search"; }
grep -q "2 worker ranks" mpi.log || fail "the MPI run did not use 2 worker ranks"
[ "$(wc -l < mpi/children.jsonl)" -eq 4 ] || fail "expected 4 children"
children_key local > local.key
children_key mpi > mpi.key
cmp -s local.key mpi.key || { diff local.key mpi.key | head; fail "children differ from the in-process run"; }
# Both worker ranks trained children (the queue spread the jobs).
grep -q '"worker":1,' mpi/children.jsonl && grep -q '"worker":2,' mpi/children.jsonl || fail "a worker rank idled"
for f in best.json top.json checkpoint.safetensors timing.jsonl; do [ -f "mpi/$f" ] || fail "mpi/$f missing"; done
# Resume with another number of ranks: the budget grows to 6, one worker rank this time.
$MPIRUN -np 2 "$NASDET_BIN" search --data cifar:digits --out mpi --children 6 $SEARCH_CHILD --resume \
  > resume.log 2>&1 ||
  { cat resume.log; fail "resume with -np 2"; }
"$NASDET_BIN" search --data cifar:digits --out local --children 6 $SEARCH_CHILD --resume > local2.log 2>&1 ||
  fail "local resume"
children_key local > local.key
children_key mpi > mpi.key
cmp -s local.key mpi.key || { diff local.key mpi.key | head; fail "resumed children differ"; }
echo ok
