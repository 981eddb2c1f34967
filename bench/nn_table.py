#!/usr/bin/python3
"""Merge bench_nn.c and nn_torch.py timings (TSV files: name, forward ms, forward+backward ms)
into the ratio table of `make bench-nn`. With several rounds per side, each side's figure for a
case is the lowest of its per-round medians (the machine is shared; the least disturbed round).
Ratio = PyTorch time / our time: above 1 means nasdet is faster.

    python3 bench/nn_table.py ours1.tsv [ours2.tsv ...] -- torch1.tsv [torch2.tsv ...]
"""
import sys


def load(files):
    best = {}
    order = []
    for fn in files:
        for line in open(fn):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                continue
            name, f, fb = parts[0], float(parts[1]), float(parts[2])
            if name not in best:
                order.append(name)
                best[name] = (f, fb)
            else:
                best[name] = (min(best[name][0], f), min(best[name][1], fb))
    return best, order


def main():
    argv = sys.argv[1:]
    sep = argv.index("--")
    ours, order = load(argv[:sep])
    theirs, _ = load(argv[sep + 1:])
    print("%-38s %9s %9s %6s   %9s %9s %6s" % ("case (medians, ms)", "nasdet", "pytorch", "ratio", "nasdet", "pytorch",
                                               "ratio"))
    print("%-38s %26s   %26s" % ("", "---------- forward ----------", "----- forward+backward -----"))
    for name in order:
        o = ours[name]
        t = theirs.get(name)
        if t is None:
            print("%-38s %9.2f %9s %6s   %9.2f %9s %6s" % (name, o[0], "-", "-", o[1], "-", "-"))
            continue
        print("%-38s %9.2f %9.2f %6.2f   %9.2f %9.2f %6.2f" % (name, o[0], t[0], t[0] / o[0], o[1], t[1], t[1] / o[1]))


if __name__ == "__main__":
    main()
