# Data-parallel training: 2 ranks with a global batch of 16 (8 per rank) and synchronised batch
# norm end with the same weights and BN statistics as 1 process with batch 16 (no aux head,
# drop-path off), after a few SGD steps, within float tolerance; so do 2 ranks whose parameters
# are on a device (the emulated one). Without --sync-bn the per-rank statistics make them differ,
# which shows that the comparison can fail.
. tests/mpi/common.sh
cd "$TEST_TMP"
make_digits digits 300
COMMON="--arch nasnet-a-cifar --N 1 --F 8 --no-aux --drop-path-keep 1 --steps 4 --batch 16 --lr 0.05 --pad 0
--threads 1 --seed 3 --train-limit 256 --test-limit 20 --eval-every 0"
"$NASDET_BIN" train --data cifar:digits --out one $COMMON > one.log 2>&1 || { cat one.log; fail "1-process training"; }
$MPIRUN -np 2 "$NASDET_BIN" train --data cifar:digits --out two $COMMON --sync-bn > two.log 2>&1 ||
  { cat two.log; fail "mpirun -np 2 training"; }
grep -q "data-parallel: 2 ranks" two.log || { cat two.log; fail "not data-parallel"; }
"$MPI_TOOLS/st_compare" one/model.safetensors two/model.safetensors 2e-5 || fail "2 ranks x 8 != 1 x 16 (sync BN)"
$MPIRUN -np 2 "$NASDET_BIN" train --data cifar:digits --out perrank $COMMON > perrank.log 2>&1 ||
  { cat perrank.log; fail "mpirun -np 2 training without --sync-bn"; }
if "$MPI_TOOLS/st_compare" one/model.safetensors perrank/model.safetensors 2e-5; then
  fail "per-rank BN statistics gave the 1-process weights: the comparison cannot tell"
fi
# The device path: parameters on the "emulated" device (host memory behind the device code, as a
# GPU's would be) go through the host-staged gradient sync, device broadcast and synchronised BN
# through the device path's fallback: the same weights as the CPU ranks, and as 1 x 16.
$MPIRUN -np 2 "$NASDET_BIN" train --data cifar:digits --out emu $COMMON --sync-bn --device emulated > emu.log 2>&1 ||
  { cat emu.log; fail "mpirun -np 2 training on the emulated device"; }
grep -q "data-parallel: 2 ranks on emulated@.*, emulated@" emu.log || { cat emu.log; fail "no device per rank in the log"; }
grep -q "gradients: MPI_Allreduce over host copies of the emulated gradients" emu.log ||
  { cat emu.log; fail "the device gradients did not take the host path"; }
"$MPI_TOOLS/st_compare" two/model.safetensors emu/model.safetensors 1e-6 || fail "emulated ranks != CPU ranks"
"$MPI_TOOLS/st_compare" one/model.safetensors emu/model.safetensors 2e-5 || fail "2 emulated ranks x 8 != 1 x 16"
# Rank 0 alone wrote the run folder: one log line per epoch, not one per rank.
[ "$(wc -l < two/log.jsonl)" -eq 1 ] || fail "log.jsonl should have 1 line"
# A batch that does not split over the ranks is refused.
if $MPIRUN -np 2 "$NASDET_BIN" train --data cifar:digits --out odd $COMMON --batch 15 > odd.log 2>&1; then
  fail "batch 15 on 2 ranks accepted"
fi
grep -q "split evenly" odd.log || { cat odd.log; fail "no message for an uneven batch"; }
echo ok
