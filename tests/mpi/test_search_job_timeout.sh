# Timeouts: a child that runs past --job-timeout is killed by its worker and re-queued; after
# --max-attempts hand-outs it is logged as failed (reward 0) and the search still completes.
# A worker rank that stops answering (SIGSTOP) is given up after --job-timeout + --worker-grace,
# its job goes to the other worker, and the search completes.
. tests/mpi/common.sh
cd "$TEST_TMP"
make_digits digits 600
CH=$(echo "$SEARCH_CHILD" | sed 's/--child-steps 2/--child-steps 400/')
$MPIRUN -np 3 "$NASDET_BIN" search --data cifar:digits --out slow --children 2 $CH --job-timeout 1 --max-attempts 2 \
  > slow.log 2>&1 || { cat slow.log; fail "the search with timed-out children did not complete"; }
grep -q "job timeout" slow.log || { cat slow.log; fail "no timeout message"; }
[ "$(wc -l < slow/children.jsonl)" -eq 2 ] || fail "expected 2 children"
[ "$(grep -c '"ok":false,"reward":0,.*lost 2 times' slow/children.jsonl)" -eq 2 ] ||
  { cat slow/children.jsonl; fail "timed-out children should be logged as failed after 2 attempts"; }
# A worker rank that stops answering: the test stops rank 2 as soon as it reports a job in
# training, so the job is surely in flight whatever the machine's speed (the forked child
# finishes, but the stopped rank cannot pass its result on). The timeout leaves rank 1 time
# for its 20-step children even under the sanitizers on a loaded machine.
CH=$(echo "$SEARCH_CHILD" | sed 's/--child-steps 2/--child-steps 20/')
$MPIRUN -np 3 "$NASDET_BIN" search --data cifar:digits --out stopped --children 4 $CH \
  --job-timeout 60 --worker-grace 2 \
  > stopped.log 2>&1 &
mpirun_pid=$!
rank=""
for i in $(seq 1 2400); do
  rank=$(sed -n 's/.*worker rank 2: process \([0-9]*\) on .*, ready.*/\1/p' stopped.log | head -1)
  [ -n "$rank" ] && grep -q "worker rank 2: job [0-9]* training in process" stopped.log && break
  sleep 0.05
done
[ -n "$rank" ] || { kill $mpirun_pid; cat stopped.log; fail "worker rank 2 not found"; }
kill -STOP "$rank" # whenever rank 0 hands it a job, that job's clock runs out
for i in $(seq 1 2400); do
  grep -q "worker rank 2 sent nothing" stopped.log && break
  sleep 0.1
done
# Running again, it sends its late result (ignored, or taken if the job is still open) and gets
# work again. (Open MPI's mpirun cannot end a job while one of its processes is stopped.)
kill -CONT "$rank"
wait $mpirun_pid || { cat stopped.log; fail "mpirun failed after a worker rank was given up"; }
grep -q "worker rank 2 sent nothing" stopped.log || { cat stopped.log; fail "rank 2 was not given up"; }
[ "$(wc -l < stopped/children.jsonl)" -eq 4 ] || fail "expected 4 children"
[ "$(grep -c '"ok":true' stopped/children.jsonl)" -eq 4 ] || fail "every child should have trained on rank 1"
echo ok
