#!/usr/bin/python3
"""accuracy_pytorch.py: the PyTorch fp32 baseline for lnsc's training accuracy (BENCH.md).

Trains the same ONNX model (initial weights read from the .onnx file, so both sides start
identically) on the same Fashion-MNIST files with the same optimizer, batch and epochs, and
prints test accuracy per epoch. Supports the MLP op set (Flatten, Gemm, Relu) used by
examples/mlp. Usage: bench/accuracy_pytorch.py [--model examples/mlp/mlp.onnx] [--epochs 1]
[--lr 0.02] [--momentum 0.9] [--optimizer sgd|adam] [--batch 64] [--seed 0] [--threads 1]
"""
import argparse
import gzip
import time

import numpy as np
import onnx
import torch
from onnx import numpy_helper

DATA = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


class OnnxMlp(torch.nn.Module):
    """Flatten/Gemm/Relu graphs, executed node by node with the initializers as parameters."""

    def __init__(self, model):
        super().__init__()
        self.graph = model.graph
        self.params = torch.nn.ParameterDict()
        self.key = {}
        for i, init in enumerate(model.graph.initializer):
            k = "p%d" % i
            self.key[init.name] = k
            self.params[k] = torch.nn.Parameter(torch.tensor(numpy_helper.to_array(init).copy()))

    def forward(self, x):
        env = {self.graph.input[0].name: x}
        get = lambda n: self.params[self.key[n]] if n in self.key else env[n]
        for node in self.graph.node:
            a = {at.name: onnx.helper.get_attribute_value(at) for at in node.attribute}
            if node.op_type == "Flatten":
                y = torch.flatten(get(node.input[0]), a.get("axis", 1))
            elif node.op_type == "Relu":
                y = torch.relu(get(node.input[0]))
            elif node.op_type == "Gemm":
                A, B = get(node.input[0]), get(node.input[1])
                A = A.t() if a.get("transA", 0) else A
                B = B.t() if a.get("transB", 0) else B
                y = a.get("alpha", 1.0) * A @ B
                if len(node.input) > 2 and node.input[2]:
                    y = y + a.get("beta", 1.0) * get(node.input[2])
            else:
                raise SystemExit("unsupported op for this baseline: " + node.op_type)
            env[node.output[0]] = y
        return env[self.graph.output[0].name]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="examples/mlp/mlp.onnx")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--optimizer", default="sgd")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    o = ap.parse_args()
    torch.set_num_threads(o.threads)
    torch.manual_seed(o.seed)
    xtr = torch.tensor(idx(DATA + "/train-images-idx3-ubyte.gz"), dtype=torch.float32) / 255.0
    ytr = torch.tensor(idx(DATA + "/train-labels-idx1-ubyte.gz").astype(np.int64))
    xte = torch.tensor(idx(DATA + "/t10k-images-idx3-ubyte.gz"), dtype=torch.float32) / 255.0
    yte = torch.tensor(idx(DATA + "/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    xtr, xte = xtr.unsqueeze(1), xte.unsqueeze(1)
    net = OnnxMlp(onnx.load(o.model))
    if o.optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=o.lr)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=o.lr, momentum=o.momentum)
    g = torch.Generator().manual_seed(o.seed)
    for ep in range(o.epochs):
        t0 = time.time()
        perm = torch.randperm(len(xtr), generator=g)
        losses = []
        for s in range(len(xtr) // o.batch):
            idxs = perm[s * o.batch:(s + 1) * o.batch]
            loss = torch.nn.functional.cross_entropy(net(xtr[idxs]), ytr[idxs])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        with torch.no_grad():
            logits = net(xte)
            acc = (logits.argmax(1) == yte).float().mean().item()
            tl = torch.nn.functional.cross_entropy(logits, yte).item()
        print("pytorch fp32 %s lr %g: epoch %d/%d  train_loss %.4f  test_loss %.4f  test_acc %.4f  "
              "time %.1fs" % (o.optimizer, o.lr, ep + 1, o.epochs, np.mean(losses), tl, acc,
                              time.time() - t0))


if __name__ == "__main__":
    main()
