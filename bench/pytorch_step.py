#!/usr/bin/python3
"""pytorch_step.py: PyTorch fp32 time per training step, the baseline of bench_step (BENCH.md).

One step of the ONNX model (built from its initializers by accuracy_pytorch.OnnxMlp, so it is
the same network lnsc compiles) on a fixed random batch: forward, cross-entropy, backward and
an SGD step with momentum 0.9 (lr 0.02, lnsc's fp32 default). After --warmup steps it times
--runs runs of --steps steps each and prints one line, milliseconds per step:
`median_ms min_ms max_ms`. Usage: bench/pytorch_step.py [--model examples/mlp/mlp.onnx]
[--batch 64] [--threads 1] [--runs 7] [--steps 200] [--warmup 20] [--seed 0]
"""
import argparse
import os
import statistics
import sys
import time

import onnx
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from accuracy_pytorch import OnnxMlp  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="examples/mlp/mlp.onnx")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    o = ap.parse_args()
    if o.runs < 1 or o.steps < 1 or o.batch < 1 or o.threads < 1:
        raise SystemExit("pytorch_step.py: --runs, --steps, --batch and --threads must be >= 1")
    torch.set_num_threads(o.threads)
    torch.manual_seed(o.seed)
    model = onnx.load(o.model)
    net = OnnxMlp(model)
    # Input shape from the model, its first (batch) dim set to --batch; classes from the output.
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    nclasses = model.graph.output[0].type.tensor_type.shape.dim[1].dim_value
    x = torch.rand([o.batch] + dims[1:])
    y = torch.randint(0, nclasses, (o.batch,))
    opt = torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.9)

    def step():
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    for _ in range(o.warmup):
        step()
    ms = []
    for _ in range(o.runs):
        t0 = time.perf_counter()
        for _ in range(o.steps):
            step()
        ms.append((time.perf_counter() - t0) * 1e3 / o.steps)
    print("%.6f %.6f %.6f" % (statistics.median(ms), min(ms), max(ms)))


if __name__ == "__main__":
    main()
