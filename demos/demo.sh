#!/bin/sh
# make demo: the main job on the shipped default model.
#  1. nasdet detect with the shipped model (demos/models/default.safetensors) on demos/images/
#     (digits pasted on photographs, and two plain photographs): COCO results JSON and pictures
#     with boxes, class names and scores in demos/out/.
#  2. nasdet eval of the shipped model on a small, freshly generated digits-det val set (digit
#     instances the model never saw in training): detect --gt, then eval.
set -eu
NASDET=${1:-bin/nasdet}
out=demos/out
# the generator and the default model are found under demos/ whatever folder the binary is in
NASDET_DATA_DIR=${NASDET_DATA_DIR:-$(pwd)/demos}
export NASDET_DATA_DIR
# OpenMP threads that sleep rather than spin while they wait: on a machine shared with other
# jobs, spinning threads make detection ~10x slower (1.1 s instead of 0.13 s a picture on 2
# busy cores); on an idle machine the difference is small.
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
export OMP_WAIT_POLICY
rm -rf "$out"
mkdir -p "$out"
start=$(date +%s)
"$NASDET" --version

echo "== 1. detect: demos/images -> $out/detections.json, $out/drawn/"
"$NASDET" detect --score-thresh 0.3 --out-json "$out/detections.json" --out-dir "$out/drawn" demos/images

echo "== 2. evaluate the shipped model on 50 new digits-det val images"
"$NASDET" data digits-det --out "$out/val-set" --train 1 --val 50 --seed 7 > /dev/null
"$NASDET" detect --score-thresh 0.01 --gt "$out/val-set/annotations/instances_val.json" \
    --out-json "$out/val-results.json" "$out/val-set/val" | tail -1
"$NASDET" eval --gt "$out/val-set/annotations/instances_val.json" --dt "$out/val-results.json" \
    --json "$out/val-eval.json"

echo "demo: done in $(( $(date +%s) - start )) s; see $out/drawn/ and $out/detections.json"
