#!/usr/bin/python3
"""ROIAlign side by side: torchvision.ops.roi_align (CPU) and nasdet's nn_roi_align on the same
feature map and rois (run by bench/det.sh through `make bench-det`).

Usage: det_roi.py BENCH_ROI_BIN

`BENCH_ROI_BIN gen K SEED FILE` writes a 1x256x50x50 map and K rois (sizes 16..400 px in an
800x800 image, fixed seed); both sides read those float32 values and run 7x7 bins, spatial
scale 1/16, sampling ratio 2, aligned=False (torchvision's Faster R-CNN), forward only. The two
alternate round by round; the table shows medians, their ratio, the thread counts and the
largest difference between the two outputs. Each of our rounds is one process that runs an
untimed pass and then 3 timed ones and reports their median: the first timed pass touches the
arena chunk that the untimed one grew (page faults on 100 MB at 2000 rois, 3.5x the time of a
warm pass here), which training and detection pay once per run, not per call; torchvision's
rounds run in one process, after its own warm-up call."""
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
CASES = [(512, 9), (2000, 5)]


def run(*args):
    return subprocess.run([BIN, *map(str, args)], check=True, capture_output=True,
                          text=True).stdout.split()


threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
torch.set_num_threads(threads)
print("torch %s, torchvision %s; %d thread(s) on both sides" % (
    torch.__version__, torchvision.__version__, threads))
print("%6s %16s %14s %9s %s" % ("rois", "torchvision ms", "nasdet ms", "speed-up", "max |diff|"))
with tempfile.TemporaryDirectory() as tmp:
    for k, rounds in CASES:
        path, out = os.path.join(tmp, "roi.bin"), os.path.join(tmp, "out.bin")
        run("gen", k, 2000 + k, path)
        raw = open(path, "rb").read()
        assert raw[:4] == b"NDR1" and int(np.frombuffer(raw[4:12], "<i8")[0]) == k
        nf = 256 * 50 * 50
        x = torch.from_numpy(np.frombuffer(raw[12:12 + 4 * nf], "<f4").reshape(1, 256, 50, 50).copy())
        rois = torch.from_numpy(np.frombuffer(raw[12 + 4 * nf:], "<f4").reshape(k, 5).copy())
        torchvision.ops.roi_align(x, rois, (7, 7), 1 / 16, 2, False)  # warm-up
        tv, ours = [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            y_tv = torchvision.ops.roi_align(x, rois, (7, 7), 1 / 16, 2, False)
            tv.append((time.perf_counter() - t0) * 1e3)
            med, _best, _thr = run("run", path, 3, out)
            ours.append(float(med))
        y = np.fromfile(out, "<f4").reshape(k, 256, 7, 7)
        diff = float(np.abs(y - y_tv.numpy()).max())
        mt, mo = statistics.median(tv), statistics.median(ours)
        print("%6d %16.1f %14.1f %8.1fx %.2g" % (k, mt, mo, mt / mo, diff))
