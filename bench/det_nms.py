#!/usr/bin/python3
"""NMS side by side: torchvision.ops.nms (CPU) and nasdet's det_nms on the same boxes.

Usage: det_nms.py BENCH_BIN   (run by bench/det.sh through `make bench-det`)

The boxes come from `BENCH_BIN gen N SEED FILE` (clustered like RPN proposals, random scores,
fixed seed), so both sides read identical float32 data. The two programs alternate round by
round (the machine's pace drifts), each round timing one call of each; the table shows
medians, their ratio, and whether the kept index lists are identical. An sgemm GFLOP/s figure
measured at the start and the end calibrates the machine's pace."""
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torchvision

BIN = sys.argv[1]
CASES = [(1000, 0.5, 21), (1000, 0.7, 21), (5000, 0.5, 9), (5000, 0.7, 9),
         (20000, 0.5, 3), (20000, 0.7, 3)]


def run(*args):
    return subprocess.run([BIN, *map(str, args)], check=True, capture_output=True,
                          text=True).stdout.split()


def calib():
    return float(run("calib")[0])


torch.set_num_threads(1)  # torchvision's CPU nms is single-threaded either way
print("torch %s, torchvision %s; sgemm %.0f GFLOP/s at start" % (
    torch.__version__, torchvision.__version__, calib()))
print("%7s %5s %6s %14s %14s %9s %s" % ("boxes", "iou", "kept", "torchvision ms", "det_nms ms",
                                        "speed-up", "same kept indices"))
with tempfile.TemporaryDirectory() as tmp:
    for n, thr, rounds in CASES:
        path = os.path.join(tmp, "boxes.bin")
        keep_path = os.path.join(tmp, "keep.bin")
        run("gen", n, 1000 + n, path)
        raw = open(path, "rb").read()
        assert raw[:4] == b"NDB1" and int(np.frombuffer(raw[4:12], "<i8")[0]) == n
        boxes = torch.from_numpy(np.frombuffer(raw[12:12 + 16 * n], "<f4").reshape(n, 4).copy())
        scores = torch.from_numpy(np.frombuffer(raw[12 + 16 * n:], "<f4").copy())
        torchvision.ops.nms(boxes, scores, thr)  # warm-up
        tv, ours = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            keep_tv = torchvision.ops.nms(boxes, scores, thr)
            tv.append((time.perf_counter() - t0) * 1e3)
            med, _best, kept = run("nms", path, thr, 1, keep_path)
            ours.append(float(med))
        keep_ours = np.fromfile(keep_path, "<i8")
        same = np.array_equal(keep_ours, keep_tv.numpy())
        mt, mo = statistics.median(tv), statistics.median(ours)
        print("%7d %5.2f %6d %14.2f %14.3f %8.0fx %s" % (
            n, thr, len(keep_tv), mt, mo, mt / mo, "yes" if same else
            "NO (ours %d, torchvision %d)" % (len(keep_ours), len(keep_tv))))
        sys.stdout.flush()
print("sgemm %.0f GFLOP/s at end" % calib())
