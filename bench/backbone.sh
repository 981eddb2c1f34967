#!/bin/sh
# make bench-backbone: nasdet and PyTorch (shared/peers/nasnet_ref.py) side by side, alternated,
# each with its sgemm calibration figure (the machine's speed drifts; compare within one run).
# Figures are printed, never asserted. STEPS/RUNS/PEERS may be set in the environment.
set -u
STEPS=${STEPS:-3}
RUNS=${RUNS:-11}
PEERS=${PEERS:-$(dirname "$0")/../../shared/peers}
[ -d "$PEERS" ] || PEERS=/work/shared/peers
# As bench/nn.sh: glibc keeps PyTorch's freed blocks in the heap, so its tensors do not pay
# this VM's page faults again on every call (our arenas reuse their pages).
export MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296
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
# ONNX Runtime (inference only): onnxruntime-node from npm in build/ort, the models exported from
# the same PyTorch NASNet-A (bench/export_onnx.py, cached in build/ort). ORT=0 skips it.
ORT_DIR=${ORT_DIR:-build/ort}
if [ "${ORT:-1}" = 1 ] && command -v node >/dev/null && /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  if [ ! -d "$ORT_DIR/node_modules/onnxruntime-node" ] && command -v npm >/dev/null; then
    mkdir -p "$ORT_DIR"
    ONNXRUNTIME_NODE_INSTALL=skip npm install --silent --prefix "$ORT_DIR" onnxruntime-node@1.30.0 >/dev/null 2>&1
  fi
  if [ -d "$ORT_DIR/node_modules/onnxruntime-node" ]; then
    for b in 1 8; do
      [ -s "$ORT_DIR/mobile_b$b.onnx" ] || /usr/bin/python3 "$(dirname "$0")/export_onnx.py" "$PEERS" \
        "$ORT_DIR/mobile_b$b.onnx" $b 2>/dev/null || echo "export of batch $b failed"
    done
    echo "== onnxruntime"
    node "$(dirname "$0")/backbone_ort.js" "$ORT_DIR/node_modules" "$ORT_DIR/mobile_b1.onnx" "$ORT_DIR/mobile_b8.onnx" "$RUNS"
    # Inference alone, nasdet and ONNX Runtime alternated ROUNDS times: this machine's speed
    # drifts by tens of percent within a minute, so one measurement each decides nothing; the
    # medians of the rounds' medians do.
    ROUNDS=${ROUNDS:-5}
    echo "== inference, nasdet and onnxruntime alternated $ROUNDS times ($RUNS runs each)"
    r=1
    while [ "$r" -le "$ROUNDS" ]; do
      OPENBLAS_NUM_THREADS=1 "$BENCH_BIN" --infer-only --runs "$RUNS" --threads 2 | sed -n 's/^infer .* batch \([0-9]*\): *\([0-9.]*\) ms.*/nasdet \1 \2/p'
      node "$(dirname "$0")/backbone_ort.js" "$ORT_DIR/node_modules" "$ORT_DIR/mobile_b1.onnx" "$ORT_DIR/mobile_b8.onnx" \
        "$RUNS" | sed -n 's/^infer .* batch \([0-9]*\): *\([0-9.]*\) ms.*/onnxruntime \1 \2/p'
      r=$((r + 1))
    done | awk '{ v[$1 " " $2] = v[$1 " " $2] " " $3 }
      function median(s,   a, n, i, j, t) { n = split(s, a, " ")
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
      END { for (b = 1; b <= 8; b *= 8) { o = median(v["nasdet " b]); x = median(v["onnxruntime " b])
              printf "infer batch %d: nasdet %.1f ms (rounds:%s), onnxruntime %.1f ms (rounds:%s): nasdet %.2fx ORT speed\n", \
                     b, o, v["nasdet " b], x, v["onnxruntime " b], x / o } }'
  else
    echo "== onnxruntime: onnxruntime-node could not be installed (npm install onnxruntime-node@1.30.0)"
  fi
else
  echo "== onnxruntime: needs node, npm and python3-torch (for the export); not run"
fi
