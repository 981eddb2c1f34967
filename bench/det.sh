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
# As bench/nn.sh: glibc keeps PyTorch's freed blocks in the heap, so its tensors do not pay
# this VM's page faults again on every call (our arenas reuse their pages).
export MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296

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

section_roialign() {
    echo "== ROIAlign: nn_roi_align vs torchvision.ops.roi_align (CPU), 256x50x50 map, 7x7, sampling 2"
    roi_bin=$(dirname "$BENCH_BIN")/bench_det_roi
    if have_torchvision; then
        "$PY" "$here/det_roi.py" "$roi_bin"
    else
        echo "(torchvision not found at $PY: our figures only; median_ms min_ms threads)"
        for k in 512 2000; do
            "$roi_bin" gen $k $((2000 + k)) /tmp/nasdet-bench-roi.$$
            printf "%6d rois: " $k
            "$roi_bin" run /tmp/nasdet-bench-roi.$$ 5
        done
        rm -f /tmp/nasdet-bench-roi.$$
    fi
}

section_inference() {
    echo "== inference per image: the shipped default model"
    "$(dirname "$BENCH_BIN")/bench_det_model"
}

SECTIONS="section_nms section_roialign section_inference"
for s in $SECTIONS; do
    $s
    echo
done
