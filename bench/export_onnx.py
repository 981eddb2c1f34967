"""Export NASNet-A Mobile (shared/peers/nasnet_ref.py, 1000 classes, eval mode, random init)
to ONNX (opset 13) for the ONNX Runtime side of `make bench-backbone`.

    /usr/bin/python3 bench/export_onnx.py PEERS_DIR OUT.onnx BATCH

The batch is fixed in the file (ONNX Runtime plans for it); weights do not change the time.
"""
import sys

import torch

peers, out, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, peers)
import nasnet_ref as R  # noqa: E402

torch.manual_seed(0)
m = R.NASNetA('mobile', num_classes=1000).eval()
x = torch.rand(batch, 3, 224, 224) * 2 - 1
with torch.no_grad():
    torch.onnx.export(m, x, out, opset_version=13, input_names=['image'], output_names=['logits'])
