#!/usr/bin/python3
"""export_resnet.py: export the example residual network (PyTorch) to examples/cnn/resnet.onnx.

The model is a small ResNet for 28x28 grey images: a stem Conv(1->16, 3x3, pad 1) - BatchNorm
- ReLU, then two residual blocks, each Conv 3x3 - BatchNorm - ReLU - Conv 3x3 - BatchNorm plus
a shortcut, Add, ReLU. The first block keeps 16 channels at 28x28 with the identity shortcut;
the second goes to 32 channels at 14x14 (its first conv has stride 2) with a projection
shortcut, Conv 1x1 stride 2 - BatchNorm. The head is global average pooling, Flatten and
Linear(32 -> 10). Convs followed by BatchNorm have no bias, as in ResNet. PyTorch's default
initialization under torch.manual_seed(0) makes the file reproducible. It is exported in
training form at opset 13 (train_export.py: BatchNormalization stays a node with the five
outputs that mean training mode below opset 14, no constant folding), so the two examples
cover both of ONNX's ways of saying "training"; the input "input" is [N, 1, 28, 28] with a
dynamic batch N, the output "logits" [N, 10]. After writing, the file is checked with
onnx.checker and its node ops must be the expected list (printed).

Run with Debian's python: /usr/bin/python3 examples/cnn/export_resnet.py [-o PATH]
"""
import argparse
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_export import export_training  # noqa: E402

CBR = ["Conv", "BatchNormalization", "Relu"]
EXPECTED_OPS = (CBR                                                         # stem
                + CBR + ["Conv", "BatchNormalization", "Add", "Relu"]       # identity block
                + CBR + ["Conv", "BatchNormalization"]                      # projection block
                + ["Conv", "BatchNormalization", "Add", "Relu"]
                + ["GlobalAveragePool", "Flatten", "Gemm"])


class Block(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the shortcut (identity, or 1x1 conv-BN when the shape
    changes), then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (self.proj(x) if self.proj is not None else x))


class ResNet(nn.Module):
    """Stem, two residual blocks, global average pool, linear classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.block1 = Block(16, 16, 1)     # [N, 16, 28, 28]
        self.block2 = Block(16, 32, 2)     # [N, 32, 14, 14]
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))
        x = self.block2(self.block1(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default=os.path.join(here, "resnet.onnx"),
                    help="output path (default: %(default)s)")
    args = ap.parse_args()

    torch.manual_seed(0)
    return export_training(ResNet(), args.output, 13, EXPECTED_OPS)


if __name__ == "__main__":
    sys.exit(main())
