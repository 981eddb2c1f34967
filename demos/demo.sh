#!/bin/sh
# make demo: the main job on the shipped default.
# The detector (issue #6) has not landed yet, so the demo runs the closest working job:
# it generates a small digits-det data set from the real digits and photographs.
set -eu
NASDET=${1:-bin/nasdet}
out=demos/out
mkdir -p "$out"
"$NASDET" --version
echo "demo: the detector has not landed yet; showing the data generator instead"
"$NASDET" data digits-det --out "$out/digits-det" --train 16 --val 8 --seed 1
echo "demo: wrote $out/digits-det (images and COCO annotations)"
