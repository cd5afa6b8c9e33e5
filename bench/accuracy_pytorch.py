#!/usr/bin/python3
"""accuracy_pytorch.py: the PyTorch fp32 baseline for lnsc's training accuracy (BENCH.md).

Trains the same ONNX model (initial weights read from the .onnx file, so both sides start
identically) on the same Fashion-MNIST files with the same optimizer, batch and epochs, and
prints the test-split accuracy after each epoch. The graph is executed node by node by
OnnxNet with torch ops: the op set of examples/mlp (Flatten, Gemm, Relu) and of examples/cnn
(Conv, BatchNormalization, MaxPool, GlobalAveragePool, Add as well). BatchNormalization trains
as PyTorch's nn.BatchNorm2d does (F.batch_norm: batch statistics, running statistics moved by
PyTorch's momentum = 1 - the ONNX momentum, the running variance by the unbiased batch
variance where ONNX and lnsc use the biased one, a factor M/(M-1) = 1.00002 at batch 64 of
28x28) and evaluates with the running statistics, as lnsc's test evaluation does. Float
initializers are parameters except BatchNormalization's running mean and variance (buffers).
Attributes torch cannot express directly (asymmetric pads, auto_pad) are refused, not
approximated. The optimizer is lnsc's fp32 recipe: SGD with momentum 0.9 and lr 0.02, or
Adam (beta 0.9, 0.999, eps 1e-8) with lr 1e-3, unless --lr is given. Shuffling uses
torch.randperm with --seed (not lnsc's shuffle, so the batch order differs); the last partial
batch of an epoch is dropped, as in lnsc. The test split is evaluated in chunks of 1000 images.
The first line printed is the exact command.

Usage: /usr/bin/python3 bench/accuracy_pytorch.py [--model examples/mlp/mlp.onnx] [--epochs 1]
       [--optimizer sgd|adam] [--lr X] [--momentum 0.9] [--batch 64] [--seed 0] [--threads 1]
       [--steps N (per epoch, a smoke run)]
"""
import argparse
import gzip
import shlex
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

DATA = "/usr/share/datasets/fashion-mnist"
DEFAULT_LR = {"sgd": 0.02, "adam": 1e-3}   # lnsc's fp32 defaults (docs/cli.md)


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def window(a, node):
    """(strides, padding, dilations) of a 2-D Conv/MaxPool with symmetric explicit pads."""
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise SystemExit(f"{node.name}: auto_pad is not supported by this baseline")
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:]:
        raise SystemExit(f"{node.name}: asymmetric pads {pads} are not supported")
    return list(a.get("strides", [1, 1])), pads[:2], list(a.get("dilations", [1, 1]))


class OnnxNet(torch.nn.Module):
    """An ONNX graph of the supported ops, executed node by node; the float initializers are
    parameters, BatchNormalization's running statistics buffers."""

    def __init__(self, model):
        super().__init__()
        self.graph = model.graph
        running = {n.input[i] for n in model.graph.node if n.op_type == "BatchNormalization"
                   for i in (3, 4)}
        self.params = torch.nn.ParameterDict()
        self.key = {}
        for i, init in enumerate(model.graph.initializer):
            k = "p%d" % i
            self.key[init.name] = k
            t = torch.tensor(numpy_helper.to_array(init).copy())
            if init.name in running:
                self.register_buffer(k, t)
            else:
                self.params[k] = torch.nn.Parameter(t)

    def value(self, env, name):
        if name in self.key:
            k = self.key[name]
            return self.params[k] if k in self.params else getattr(self, k)
        return env[name]

    def forward(self, x):
        env = {self.graph.input[0].name: x}
        for node in self.graph.node:
            a = {at.name: onnx.helper.get_attribute_value(at) for at in node.attribute}
            ins = [self.value(env, n) if n else None for n in node.input]
            op = node.op_type
            if op == "Flatten":
                y = torch.flatten(ins[0], a.get("axis", 1))
            elif op == "Relu":
                y = torch.relu(ins[0])
            elif op == "Add":
                y = ins[0] + ins[1]
            elif op == "Gemm":
                A, B = ins[0], ins[1]
                A = A.t() if a.get("transA", 0) else A
                B = B.t() if a.get("transB", 0) else B
                y = a.get("alpha", 1.0) * A @ B
                if len(ins) > 2 and ins[2] is not None:
                    y = y + a.get("beta", 1.0) * ins[2]
            elif op == "Conv":
                s, p, d = window(a, node)
                y = F.conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None, s, p, d,
                             a.get("group", 1))
            elif op == "MaxPool":
                s, p, d = window(a, node)
                y = F.max_pool2d(ins[0], list(a["kernel_shape"]), s, p, d,
                                 ceil_mode=bool(a.get("ceil_mode", 0)))
            elif op == "GlobalAveragePool":
                y = ins[0].mean(dim=(2, 3), keepdim=True)
            elif op == "BatchNormalization":
                y = F.batch_norm(ins[0], ins[3], ins[4], ins[1], ins[2], training=self.training,
                                 momentum=1.0 - a.get("momentum", 0.9),
                                 eps=a.get("epsilon", 1e-5))
            else:
                raise SystemExit("unsupported op for this baseline: " + op)
            env[node.output[0]] = y   # BatchNormalization: Y; its running outputs are buffers
        return env[self.graph.output[0].name]


OnnxMlp = OnnxNet  # the name bench/pytorch_step.py imports


def evaluate(net, x, y, chunk=1000):
    """(test loss, test accuracy) in eval mode, in chunks."""
    net.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            logits = net(x[i:i + chunk])
            loss_sum += F.cross_entropy(logits, y[i:i + chunk], reduction="sum").item()
            correct += (logits.argmax(1) == y[i:i + chunk]).sum().item()
    net.train()
    return loss_sum / len(x), correct / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="examples/mlp/mlp.onnx")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="sgd")
    ap.add_argument("--lr", type=float, default=None, help="default: sgd 0.02, adam 1e-3")
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=None,
                    help="stop each epoch after this many steps (a smoke run)")
    o = ap.parse_args()
    lr = DEFAULT_LR[o.optimizer] if o.lr is None else o.lr
    print("command: " + " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv),
          flush=True)
    torch.set_num_threads(o.threads)
    torch.manual_seed(o.seed)
    xtr = torch.tensor(idx(DATA + "/train-images-idx3-ubyte.gz"), dtype=torch.float32) / 255.0
    ytr = torch.tensor(idx(DATA + "/train-labels-idx1-ubyte.gz").astype(np.int64))
    xte = torch.tensor(idx(DATA + "/t10k-images-idx3-ubyte.gz"), dtype=torch.float32) / 255.0
    yte = torch.tensor(idx(DATA + "/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    xtr, xte = xtr.unsqueeze(1), xte.unsqueeze(1)
    net = OnnxNet(onnx.load(o.model)).train()
    if o.optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=lr)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=o.momentum)
    g = torch.Generator().manual_seed(o.seed)
    desc = o.optimizer + (f" momentum {o.momentum:g}" if o.optimizer == "sgd" else "")
    for ep in range(o.epochs):
        t0 = time.time()
        perm = torch.randperm(len(xtr), generator=g)
        losses = []
        nsteps = len(xtr) // o.batch
        for s in range(nsteps if o.steps is None else min(o.steps, nsteps)):
            idxs = perm[s * o.batch:(s + 1) * o.batch]
            loss = F.cross_entropy(net(xtr[idxs]), ytr[idxs])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        tl, acc = evaluate(net, xte, yte)
        print("pytorch fp32 %s lr %g: epoch %d/%d  train_loss %.4f  test_loss %.4f  test_acc %.4f"
              "  time %.1fs" % (desc, lr, ep + 1, o.epochs, np.mean(losses), tl, acc,
                                time.time() - t0), flush=True)


if __name__ == "__main__":
    main()
