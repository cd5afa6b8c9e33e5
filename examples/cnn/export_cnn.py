#!/usr/bin/python3
"""export_cnn.py: export the example convolutional network (PyTorch) to examples/cnn/cnn.onnx.

The model is a small CNN for 28x28 grey images (Fashion-MNIST, the default dataset):
Conv(1->16, 3x3, pad 1) - BatchNorm - ReLU - MaxPool 2x2 - Conv(16->32, 3x3, pad 1) -
BatchNorm - ReLU - MaxPool 2x2 - Flatten - Linear(1568 -> 10), with PyTorch's default
initialization under torch.manual_seed(0) (BatchNorm: scale 1, bias 0, running mean 0,
running variance 1), so the file is reproducible. It is exported in training form at opset 17
(train_export.py: BatchNormalization stays a node with training_mode=1 and its running
statistics as outputs, no constant folding); the input "input" has shape [N, 1, 28, 28] with
a dynamic batch axis N (lnsc fixes the batch at compile time), the output is "logits"
[N, 10]. After writing, the file is checked with onnx.checker and its node ops are printed
(expected: Conv, BatchNormalization, Relu, MaxPool twice, then Flatten, Gemm).

Run with Debian's python: /usr/bin/python3 examples/cnn/export_cnn.py [-o PATH]
"""
import argparse
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_export import export_training  # noqa: E402

EXPECTED_OPS = ["Conv", "BatchNormalization", "Relu", "MaxPool"] * 2 + ["Flatten", "Gemm"]


class CNN(nn.Module):
    """Two conv-BN-ReLU-pool stages and a linear classifier on [N, 1, 28, 28] images."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))    # [N, 16, 14, 14]
        x = self.pool(torch.relu(self.bn2(self.conv2(x))))    # [N, 32, 7, 7]
        return self.fc(torch.flatten(x, 1))


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default=os.path.join(here, "cnn.onnx"),
                    help="output path (default: %(default)s)")
    args = ap.parse_args()

    torch.manual_seed(0)
    return export_training(CNN(), args.output, 17, EXPECTED_OPS)


if __name__ == "__main__":
    sys.exit(main())
