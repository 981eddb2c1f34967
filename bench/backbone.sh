#!/bin/sh
# make bench-backbone: nasdet and PyTorch (shared/peers/nasnet_ref.py) side by side, alternated,
# each with its sgemm calibration figure (the machine's speed drifts; compare within one run).
# Figures are printed, never asserted. STEPS/RUNS/PEERS may be set in the environment.
set -u
STEPS=${STEPS:-3}
RUNS=${RUNS:-5}
PEERS=${PEERS:-$(dirname "$0")/../../shared/peers}
[ -d "$PEERS" ] || PEERS=/work/shared/peers
echo "== nasdet"
OPENBLAS_NUM_THREADS=1 "$BENCH_BIN" --steps "$STEPS" --runs "$RUNS" --threads 2 || exit 1
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "== pytorch"
  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 "$(dirname "$0")/backbone_torch.py" "$PEERS" --steps "$STEPS" --runs "$RUNS"
  echo "== nasdet (again, for drift)"
  OPENBLAS_NUM_THREADS=1 "$BENCH_BIN" --steps "$STEPS" --runs "$RUNS" --threads 2
else
  echo "== pytorch: not installed (apt-get install python3-torch); no side-by-side figures"
fi
echo "== onnxruntime: not run here (needs onnxruntime-node, see shared/peers/README.md: Mobile batch 1 16-17 ms)"
