#!/bin/sh
# make bench-det: detector benchmarks, side by side with torchvision's CPU ops when
# /usr/bin/python3 has torch and torchvision (Debian's python3-torchvision), else ours alone.
# $BENCH_BIN is build/.../bench_det, $NASDET_BIN the CLI (both set by the Makefile).
#
# Each section is a shell function that prints its own table; to add one (ROIAlign, inference
# time per image), define section_<name> below and append it to SECTIONS.
set -eu
here=$(dirname "$0")
PY=/usr/bin/python3

have_torchvision() {
    [ -x "$PY" ] && OPENBLAS_NUM_THREADS=1 "$PY" -c 'import torch, torchvision' 2>/dev/null
}

section_nms() {
    echo "== NMS: det_nms vs torchvision.ops.nms (CPU), clustered boxes, fixed seed"
    if have_torchvision; then
        OPENBLAS_NUM_THREADS=1 "$PY" "$here/det_nms.py" "$BENCH_BIN"
    else
        echo "(torchvision not found at $PY: our figures only)"
        "$BENCH_BIN"
    fi
}

SECTIONS="section_nms"
for s in $SECTIONS; do
    $s
    echo
done
