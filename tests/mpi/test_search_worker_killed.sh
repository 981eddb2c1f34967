# A child's training process killed mid-job: the job is re-queued with its seed and retrained,
# the search completes with every child, and the retrained child's reward is the one the
# in-process search gets.
. tests/mpi/common.sh
cd "$TEST_TMP"
make_digits digits 600
CH=$(echo "$SEARCH_CHILD" | sed 's/--child-steps 2/--child-steps 15/')
$MPIRUN -np 3 "$NASDET_BIN" search --data cifar:digits --out mpi --children 4 $CH > mpi.log 2>&1 &
mpirun_pid=$!
pid=""
for i in $(seq 1 600); do
  pid=$(sed -n 's/.*job 1 training in process \([0-9]*\).*/\1/p' mpi.log | head -1)
  [ -n "$pid" ] && break
  sleep 0.1
done
[ -n "$pid" ] || { kill $mpirun_pid; cat mpi.log; fail "job 1 never started"; }
kill -9 "$pid" || fail "could not kill process $pid (job 1 finished too fast?)"
wait $mpirun_pid || { cat mpi.log; fail "the search did not complete after a worker's child was killed"; }
grep -q "job 1 lost on rank" mpi.log || { cat mpi.log; fail "no re-queue message"; }
[ "$(wc -l < mpi/children.jsonl)" -eq 4 ] || fail "expected 4 children"
grep -q '"job":1,.*"ok":true' mpi/children.jsonl || fail "job 1 was not retrained"
"$NASDET_BIN" search --data cifar:digits --out local --children 4 $CH > local.log 2>&1 || fail "in-process search"
children_key local > local.key
children_key mpi > mpi.key
cmp -s local.key mpi.key || { diff local.key mpi.key | head; fail "children differ from the in-process run"; }
echo ok
