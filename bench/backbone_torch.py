"""PyTorch side of `make bench-backbone`: the same measurements as bench/bench_backbone.c with
shared/peers/nasnet_ref.py (TF-slim NASNet-A in PyTorch), 2 threads.

    /usr/bin/python3 bench/backbone_torch.py [PEERS_DIR] [--steps S] [--runs R]
"""
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

args = sys.argv[1:]
peers = args[0] if args and not args[0].startswith('--') else '/work/shared/peers'
steps = int(args[args.index('--steps') + 1]) if '--steps' in args else 3
runs = int(args[args.index('--runs') + 1]) if '--runs' in args else 5
aux = '--aux' in args
sys.path.insert(0, peers)
import nasnet_ref as R  # noqa: E402

torch.set_num_threads(2)


def sgemm():
    a, b = torch.rand(1024, 1024), torch.rand(1024, 1024)
    best = 0
    for _ in range(4):
        t = time.time()
        a @ b
        best = max(best, 2 * 1024 ** 3 / (time.time() - t) / 1e9)
    return best


def train(nf):
    m = R.NASNetA('cifar', num_classes=10, num_cells=6, num_conv_filters=nf, aux=aux,
                  drop_path_keep_prob=0.6 if aux else 1.0, total_training_steps=1000).train()
    opt = torch.optim.SGD(m.parameters(), lr=0.025, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(32, 3, 32, 32) * 2 - 1
    y = torch.arange(32) % 10
    ts = []
    for s in range(steps + 1):
        t = time.time()
        m.current_step = s
        opt.zero_grad()
        out = m(x)
        loss = F.cross_entropy(out[0], y) + 0.4 * F.cross_entropy(out[1], y) if isinstance(out, tuple) \
            else F.cross_entropy(out, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 5.0)
        opt.step()
        if s:
            ts.append(time.time() - t)
    ms = statistics.median(ts)
    print('train  nasnet-a-cifar N=2 F=%-3d batch 32%s: %8.1f ms/step  %6.2f img/s  process peak %7.1f MB'
          % (nf, ' +aux+droppath' if aux else '', ms * 1e3, 32 / ms,
             resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3))


def infer(b):
    m = R.NASNetA('mobile', num_classes=1000).eval()
    x = torch.rand(b, 3, 224, 224) * 2 - 1
    ts = []
    with torch.no_grad():
        for r in range(runs + 2):  # two untimed passes, as nasdet and onnxruntime get
            t = time.time()
            m(x)
            if r >= 2:
                ts.append(time.time() - t)
    print('infer  nasnet-a-mobile 224 batch %d: %8.1f ms (median of %d)' % (b, statistics.median(ts) * 1e3, runs))


print('pytorch %s bench-backbone: 2 threads; sgemm 1024 %.1f GFLOP/s' % (torch.__version__, sgemm()))
train(32)
train(16)
infer(1)
infer(8)
