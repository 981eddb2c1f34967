#!/usr/bin/python3
"""PyTorch side of `make bench-nn`: the cases of bench/bench_nn.c, timed the same way.

    /usr/bin/python3 bench/nn_torch.py [--tsv] [FILTER]   name, forward ms, forward+backward ms (medians)
    /usr/bin/python3 bench/nn_torch.py --mem              peak RSS around NASNet-A cell training steps

Protocol (as bench_nn.c): 2 warm-up runs then the median of REPS (wall clock, or the process's CPU
time with BENCH_CLOCK=cpu); forward in training mode
under torch.no_grad(); forward+backward with the input requiring a gradient and d out = 1.
torch uses 2 threads (torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))); run with OPENBLAS_NUM_THREADS=1 (bench/nn.sh
does) or torch stalls. Padding: TF SAME is symmetric for every stride-1 case here; the two
stride-2 cases use symmetric padding k//2, which gives the same output size and cost.
"""
import os
import resource
import sys
import time

import torch
import torch.nn as nn

torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
torch.manual_seed(1)
clock = time.process_time if os.environ.get("BENCH_CLOCK") == "cpu" else time.perf_counter


def rcb(cin, cout):
    return nn.Sequential(nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout, eps=1e-3))


def sep(c, k):
    layers = []
    for _ in range(2):
        layers += [nn.ReLU(), nn.Conv2d(c, c, k, padding=k // 2, groups=c, bias=False),
                   nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c, eps=1e-3)]
    return nn.Sequential(*layers)


class Cell(nn.Module):
    """NASNet-A normal cell, as bench_nn.c builds it."""

    def __init__(self, cin, f):
        super().__init__()
        self.in0, self.in1 = rcb(cin, f), rcb(cin, f)
        self.s0a, self.s0b, self.s1a, self.s1b, self.s4 = sep(f, 5), sep(f, 3), sep(f, 5), sep(f, 3), sep(f, 3)
        self.avg = nn.AvgPool2d(3, 1, 1, count_include_pad=False)

    def forward(self, h, hprev):
        x0, x1 = self.in0(h), self.in1(hprev)
        b0 = self.s0a(x0) + self.s0b(x1)
        b1 = self.s1a(x1) + self.s1b(x1)
        b2 = self.avg(x0) + x1
        b3 = self.avg(x1) + self.avg(x1)
        b4 = self.s4(x0) + x0
        return torch.cat([x1, b0, b1, b2, b3, b4], 1)


class Concat(nn.Module):
    def forward(self, *xs):
        return torch.cat(xs, 1)


class Add(nn.Module):
    def forward(self, a, b):
        return a + b


def conv(cin, cout, k, s=1):
    return nn.Conv2d(cin, cout, k, s, padding=k // 2, bias=False)


def dw(c, k, s=1):
    return nn.Conv2d(c, c, k, s, padding=k // 2, groups=c, bias=False)


CASES = [
    ("conv1x1 192->32 @32x32 b32", [(32, 192, 32, 32)], lambda: conv(192, 32, 1)),
    ("conv1x1 32->32 @32x32 b32", [(32, 32, 32, 32)], lambda: conv(32, 32, 1)),
    ("conv1x1 264->44 @28x28 b8", [(8, 264, 28, 28)], lambda: conv(264, 44, 1)),
    ("conv1x1 256->256 @14x14 b8", [(8, 256, 14, 14)], lambda: conv(256, 256, 1)),
    ("conv3x3 3->96 @32x32 b32", [(32, 3, 32, 32)], lambda: conv(3, 96, 3)),
    ("conv3x3 64->64 @16x16 b32", [(32, 64, 16, 16)], lambda: conv(64, 64, 3)),
    ("conv3x3 s2 3->32 @320x320 b2", [(2, 3, 320, 320)], lambda: conv(3, 32, 3, 2)),
    ("dw3x3 32 @32x32 b32", [(32, 32, 32, 32)], lambda: dw(32, 3)),
    ("dw5x5 32 @32x32 b32", [(32, 32, 32, 32)], lambda: dw(32, 5)),
    ("dw7x7 32 @32x32 b32", [(32, 32, 32, 32)], lambda: dw(32, 7)),
    ("dw5x5 s2 64 @32x32 b32", [(32, 64, 32, 32)], lambda: dw(64, 5, 2)),
    ("dw7x7 s2 32 @159x159 b2", [(2, 32, 159, 159)], lambda: dw(32, 7, 2)),
    ("sep3x3 32 @32x32 b32", [(32, 32, 32, 32)], lambda: sep(32, 3)),
    ("sep5x5 32 @32x32 b32", [(32, 32, 32, 32)], lambda: sep(32, 5)),
    ("sep7x7 32 @32x32 b32", [(32, 32, 32, 32)], lambda: sep(32, 7)),
    ("sep3x3 44 @28x28 b8", [(8, 44, 28, 28)], lambda: sep(44, 3)),
    ("bn 64 @32x32 b32", [(32, 64, 32, 32)], lambda: nn.BatchNorm2d(64, eps=1e-3)),
    ("relu 192 @32x32 b32", [(32, 192, 32, 32)], lambda: nn.ReLU()),
    ("avgpool3x3 same 32 @32x32 b32", [(32, 32, 32, 32)], lambda: nn.AvgPool2d(3, 1, 1, count_include_pad=False)),
    ("maxpool3x3 same 32 @32x32 b32", [(32, 32, 32, 32)], lambda: nn.MaxPool2d(3, 1, 1)),
    ("maxpool3x3 s2 64 @32x32 b32", [(32, 64, 32, 32)], lambda: nn.MaxPool2d(3, 2, 1)),
    ("concat 6x32 @32x32 b32", [(32, 32, 32, 32)] * 6, lambda: Concat()),
    ("add 32 @32x32 b32", [(32, 32, 32, 32)] * 2, lambda: Add()),
    ("linear 4704->256 b256", [(256, 4704, 1, 1)], lambda: nn.Sequential(nn.Flatten(), nn.Linear(4704, 256))),
    ("nasnet-a normal cell F=32 @32x32 b32", [(32, 192, 32, 32)] * 2, lambda: Cell(192, 32)),
    ("nasnet-a normal cell F=44 @28x28 b8", [(8, 264, 28, 28)] * 2, lambda: Cell(264, 44)),
]


def time_case(shapes, make, reps):
    m = make()
    m.train()
    data = [torch.rand(*s) * 2 - 1 for s in shapes]
    out = []
    for mode in (0, 1):
        ts = []
        for r in range(reps + 2):
            xs = [d.clone().requires_grad_(mode == 1) for d in data]
            for p in m.parameters():
                p.grad = None
            t0 = clock()
            if mode == 0:
                with torch.no_grad():
                    m(*xs)
            else:
                y = m(*xs)
                y.backward(torch.ones_like(y))
            t1 = clock()
            if r >= 2:
                ts.append((t1 - t0) * 1e3)
        ts.sort()
        n = len(ts)
        out.append(ts[n // 2] if n % 2 else 0.5 * (ts[n // 2 - 1] + ts[n // 2]))
    return out


def main():
    args = sys.argv[1:]
    if args and args[0] == "--mem":
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        name, shapes, make = CASES[-2]
        time_case(shapes, make, 3)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("peak RSS: %.0f MiB at start (after import torch), %.0f MiB after cell training steps (%s)"
              % (before, after, name))
        return
    tsv = bool(args) and args[0] == "--tsv"
    flt = args[1] if tsv and len(args) > 1 else None
    for name, shapes, make in CASES:
        if flt and flt not in name:
            continue
        f, fb = time_case(shapes, make, 3 if "cell" in name else 7)
        print("%s\t%.4f\t%.4f" % (name, f, fb) if tsv else "%-40s %10.3f %10.3f" % (name, f, fb), flush=True)


if __name__ == "__main__":
    main()
