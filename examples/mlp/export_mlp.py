#!/usr/bin/python3
"""export_mlp.py: export the example 784-256-10 MLP (PyTorch) to examples/mlp/mlp.onnx.

The model is the smallest realistic classifier for 28x28 images (Fashion-MNIST, the default
dataset): nn.Flatten, nn.Linear(784, 256), nn.ReLU, nn.Linear(256, 10), with PyTorch's default
initialization under torch.manual_seed(0), so the file is reproducible. It is exported with
torch.onnx.export at opset 13 with constant folding; the input "input" has shape [N, 1, 28, 28]
with a dynamic batch axis N (lnsc fixes the batch at compile time), the output is "logits"
[N, 10]. After writing, the file is checked with onnx.checker and its node ops are printed
(expected: Flatten, Gemm, Relu, Gemm).

Run with Debian's python: /usr/bin/python3 examples/mlp/export_mlp.py [-o PATH]
"""
import argparse
import os
import sys

import torch
from torch import nn


class MLP(nn.Module):
    """784-256-10 multilayer perceptron on [N, 1, 28, 28] images."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(784, 256),
            nn.ReLU(),
            nn.Linear(256, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default=os.path.join(here, "mlp.onnx"),
                    help="output path (default: %(default)s)")
    args = ap.parse_args()

    torch.manual_seed(0)
    model = MLP().eval()
    dummy = torch.zeros(1, 1, 28, 28)
    torch.onnx.export(
        model, dummy, args.output,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        opset_version=13, do_constant_folding=True)

    import onnx  # imported late: export does not need it, the check does
    m = onnx.load(args.output)
    onnx.checker.check_model(m, full_check=True)
    ops = [n.op_type for n in m.graph.node]
    print("wrote", args.output)
    print("opset:", [(o.domain or "ai.onnx", o.version) for o in m.opset_import])
    print("nodes:", ", ".join(ops))
    print("initializers:", ", ".join(f"{t.name}{list(t.dims)}" for t in m.graph.initializer))
    if ops != ["Flatten", "Gemm", "Relu", "Gemm"]:
        print("error: unexpected node ops (wanted Flatten, Gemm, Relu, Gemm)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
