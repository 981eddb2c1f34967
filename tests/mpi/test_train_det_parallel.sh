# Data-parallel train-det: 2 ranks share each batch of 3 (shards of 1 and 2 images; the last
# batch of 1 leaves rank 0 an empty shard, which adds zero gradients), rank 0 alone writes the
# run folder, and --resume on 2 ranks continues from rank 0's checkpoint; parameters on a device
# (the emulated one) train to the same weights.
. tests/mpi/common.sh
cd "$TEST_TMP"
"$NASDET_BIN" data digits-det --out det --train 7 --val 2 --size 128 > /dev/null
OPTS="--train coco:det/annotations/instances_train.json:det/train --arch nasnet-a-mobile --N 1 --F 8 --stem-filters 16
--min-size 128 --max-size 128 --anchor-sizes 16,32,64 --anchor-ratios 0.5,1 --rpn-channels 32 --roi-batch 16
--head-dim 64 --batch 3 --optim adam --lr 0.001 --threads 1 --log-every 1 --epochs 2"
$MPIRUN -np 2 "$NASDET_BIN" train-det $OPTS --out run --max-steps 3 > a.log 2>&1 ||
  { cat a.log; fail "train-det on 2 ranks"; }
grep -q "data-parallel over 2 ranks" a.log || { cat a.log; fail "not data-parallel"; }
[ "$(wc -l < run/log.jsonl)" -eq 3 ] || { cat run/log.jsonl; fail "log.jsonl: 3 lines expected (rank 0 only)"; }
[ -f run/model.safetensors ] && [ -f run/checkpoint.safetensors ] || fail "rank 0 did not write the model"
# The same 3 steps with the parameters on a device (emulated: host memory behind the device
# path): broadcast and gradients through host copies, the same weights.
cp run/model.safetensors cpu3.safetensors
$MPIRUN -np 2 "$NASDET_BIN" train-det $OPTS --device emulated --out emu --max-steps 3 > e.log 2>&1 ||
  { cat e.log; fail "train-det on 2 emulated ranks"; }
grep -q "on emulated@.*, emulated@.*; gradients: MPI_Allreduce over host copies" e.log ||
  { cat e.log; fail "no device per rank / host path in the log"; }
"$MPI_TOOLS/st_compare" cpu3.safetensors emu/model.safetensors 1e-5 || fail "emulated ranks != CPU ranks"
$MPIRUN -np 2 "$NASDET_BIN" train-det $OPTS --out run --resume > b.log 2>&1 || { cat b.log; fail "resume on 2 ranks"; }
[ "$(wc -l < run/log.jsonl)" -eq 6 ] || { cat run/log.jsonl; fail "log.jsonl: 6 lines expected after the resume"; }
if $MPIRUN -np 2 "$NASDET_BIN" train-det $OPTS --out run2 --time-limit 1 > c.log 2>&1; then
  fail "--time-limit accepted"
fi
grep -q "max-steps" c.log || { cat c.log; fail "no message for --time-limit"; }
echo ok
