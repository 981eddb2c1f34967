"""PyTorch's side of bench-gpu: the same NASNet-A models (bench/nasnet_ref.py, a copy of the
peer in /work/shared/peers) on the same GPU, fp32 without TF32, the same batches and step
(forward, loss with the aux head at 0.4, backward, RMSProp), median of N steps after 2 warm-ups.
Prints lines in bench_gpu's format. Needs torch with CUDA; says so and exits 0 otherwise."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("pytorch: skipped: torch is not installed")
    sys.exit(0)
if not torch.cuda.is_available():
    print("pytorch: skipped: torch sees no GPU")
    sys.exit(0)
from nasnet_ref import NASNetA

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True
dev = torch.device("cuda")
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
only = sys.argv[2] if len(sys.argv) > 2 else None


def time_steps(m, batch, size, classes, train, n):
    x = torch.randn(batch, 3, size, size, device=dev)
    y = torch.randint(0, classes, (batch,), device=dev)
    m.train(train)
    opt = torch.optim.RMSprop(m.parameters(), lr=0.01, alpha=0.9, momentum=0.9, eps=1.0, weight_decay=4e-5)
    ts = []
    for i in range(n + 2):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        if train:
            opt.zero_grad(set_to_none=True)
            out = m(x)
            logits, aux = out if isinstance(out, tuple) else (out, None)
            loss = F.cross_entropy(logits, y, label_smoothing=0.1)
            if aux is not None:
                loss = loss + 0.4 * F.cross_entropy(aux, y, label_smoothing=0.1)
            loss.backward()
            opt.step()
            loss.item()
        else:
            with torch.no_grad():
                m(x).cpu()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    ts = sorted(ts[2:])
    return ts[len(ts) // 2]


if only in (None, "cifar"):
    m = NASNetA("cifar", num_classes=10).to(dev)
    t = time_steps(m, 64, 32, 10, True, steps)
    print("pytorch       nasnet-a-cifar  train  batch 64   %8.1f img/s  (%.1f ms/step)" % (64 / t, 1e3 * t), flush=True)
    del m
if only in (None, "mobile"):
    m = NASNetA("mobile", num_classes=1000).to(dev)
    t = time_steps(m, 64, 224, 1000, True, steps)
    print("pytorch       nasnet-a-mobile train  batch 64   %8.1f img/s  (%.1f ms/step)" % (64 / t, 1e3 * t), flush=True)
    t = time_steps(m, 1, 224, 1000, False, steps * 2)
    print("pytorch       nasnet-a-mobile infer  batch 1    %8.2f ms" % (1e3 * t))
    t = time_steps(m, 32, 224, 1000, False, steps * 2)
    print("pytorch       nasnet-a-mobile infer  batch 32   %8.2f ms  (%.1f img/s)" % (1e3 * t, 32 / t), flush=True)
