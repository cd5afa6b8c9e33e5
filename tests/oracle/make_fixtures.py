#!/usr/bin/python3
"""make_fixtures.py: build the small ONNX models and PyTorch-computed expected values that
tests/integration/test_oracle.py checks `lnsc grad` against.

Design: each fixture is a small model (batch 2-8, widths <= 32; the CNNs <= 16 channels and
<= 10x10 images), a batch of inputs, labels, and the expected loss, graph outputs, gradient of
every float initializer and, for models with BatchNormalization, every running statistic after
the step, in the layout and manifest schema `lnsc grad` writes. Together the models use every
op of lnsc's supported set over opsets 7, 11, 12, 13 and 17, including the per-opset
differences (Squeeze/Unsqueeze axes attribute vs input, Softmax/LogSoftmax 2-D coercion vs
single axis, Dropout ratio attribute vs input, Gemm with optional C; Conv-1 vs 11,
BatchNormalization-7 (spatial) / 9 (training by output count) / 15 (training_mode), MaxPool-1
/ 11 / 12 (ceil_mode, dilations), AveragePool-7 / 11, Pad-2 attributes vs Pad-11/13 inputs,
Clip-6 attributes vs Clip-11/13 inputs). The CNNs cover Conv with groups, depthwise, strides,
dilations, asymmetric pads, auto_pad SAME_UPPER / SAME_LOWER / VALID and no bias; pools with
ceil_mode (including a last window dropped because it would start in the end padding, and an
average window running past the end pad), pads, strides, dilations and count_include_pad 0/1;
Pad with crops and values; Clip with one or both bounds from attributes, Constants or float
initializers; residual and broadcasting Add. Most are built with onnx.helper for full control
of ops and attributes; five are realistic torch.onnx.export exports of nn.Modules, two of
them CNNs with BatchNorm exported in training mode. The oracle is onnx_torch.Evaluator: the
ONNX graph executed node by node with torch ops in float64, in training form (BatchNormalization
by batch statistics, running statistics moved per the ONNX rule with the biased variance), with
the loss of lnsc's contract (int64 labels [N]: mean softmax cross-entropy of the first output;
float labels: mean squared error) and autograd for the gradients. For the exported models the
evaluator's outputs, loss, parameter gradients and running statistics are also checked against
the nn.Module itself (train mode; PyTorch's running variance uses the unbiased batch variance,
which the check accounts for). Exports trace one training-mode forward pass that moves the
module's running statistics; export() puts the module and the file's initializers back to the
values from before. Every model is validated with onnx.checker (full check) and strict shape
inference. Everything is seeded: rerunning rewrites identical files.

Usage: /usr/bin/python3 tests/oracle/make_fixtures.py [--out DIR] [--only NAME ...]
       /usr/bin/python3 tests/oracle/make_fixtures.py --selfcheck NODE_TEST_DIR
         (runs the evaluator on ONNX's node tests from tests/onnx_node/gen_node_tests.py)
"""
import argparse
import copy
import io
import json
import math
import os
import re
import shutil
import sys
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_torch import SUPPORTED_OPS, EvalError, Evaluator, onnx_opset  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FLOAT, DOUBLE = TensorProto.FLOAT, TensorProto.DOUBLE


def sanitize(name: str) -> str:
    """File-name form of a tensor name, as lnsc writes it."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


# ---------------------------------------------------------------------------------------------
# A fixture: the model, its feeds and labels, and how it was made.
# ---------------------------------------------------------------------------------------------
class Fixture:
    def __init__(self, name: str, model: onnx.ModelProto, feeds: Dict[str, np.ndarray],
                 labels: np.ndarray, note: str, module: Optional[nn.Module] = None,
                 module_args: Tuple[np.ndarray, ...] = ()):
        self.name, self.model, self.feeds, self.labels = name, model, feeds, labels
        self.note, self.module, self.module_args = note, module, module_args


class GraphBuilder:
    """Terse onnx.helper graph building with seeded parameters and automatic value names."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: List[onnx.NodeProto] = []
        self.inits: List[onnx.TensorProto] = []
        self.inputs: List[onnx.ValueInfoProto] = []
        self.feeds: Dict[str, np.ndarray] = {}
        self.count = 0

    def input(self, name: str, shape: List[int]) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, FLOAT, shape))
        self.feeds[name] = self.rng.standard_normal(shape).astype(np.float32)
        return name

    def param(self, name: str, shape: List[int], scale: Optional[float] = None,
              away_from_zero: bool = False) -> str:
        """Float initializer (trainable): N(0, scale^2), scale 1/sqrt(first dim) by default;
        with away_from_zero, values are +-U(0.5, 2) (safe denominators)."""
        if away_from_zero:
            mag = self.rng.uniform(0.5, 2.0, shape)
            arr = np.where(self.rng.random(shape) < 0.5, -mag, mag)
        else:
            s = scale if scale is not None else 1.0 / math.sqrt(max(shape[0], 1))
            arr = s * self.rng.standard_normal(shape)
        self.inits.append(numpy_helper.from_array(arr.astype(np.float32), name))
        return name

    def ints(self, name: str, values: List[int]) -> str:
        """Integer initializer (a constant: shapes, axes)."""
        self.inits.append(numpy_helper.from_array(np.array(values, np.int64), name))
        return name

    def floats(self, name: str, values) -> str:
        """Float initializer read as a constant (Clip's bounds, Pad's value): no gradient."""
        self.inits.append(numpy_helper.from_array(np.asarray(values, np.float32), name))
        return name

    def bn(self, x: str, c: int, prefix: str, opset: int, form: str = "train", **attrs) -> str:
        """BatchNormalization over c channels with seeded scale (about 1), bias, running mean
        and running variance (U(0.5, 1.5)) initializers. form "train": the node in training
        form (five outputs below opset 14, training_mode=1 and three from 14); "infer": one
        output (lnsc grad trains it in training form all the same)."""
        ins = [x,
               self.floats_param(prefix + ".scale", 1.0 + 0.3 * self.rng.standard_normal(c)),
               self.floats_param(prefix + ".bias", 0.3 * self.rng.standard_normal(c)),
               self.floats(prefix + ".running_mean", 0.2 * self.rng.standard_normal(c)),
               self.floats(prefix + ".running_var", self.rng.uniform(0.5, 1.5, c))]
        if form == "infer":
            return self.node("BatchNormalization", ins, **attrs)
        if opset >= 14:
            return self.node("BatchNormalization", ins, nout=3, training_mode=1, **attrs)[0]
        return self.node("BatchNormalization", ins, nout=5, **attrs)[0]

    def floats_param(self, name: str, values) -> str:
        """Float initializer with the given values (trainable)."""
        self.inits.append(numpy_helper.from_array(np.asarray(values, np.float32), name))
        return name

    def node(self, op: str, inputs: List[str], out=None, nout: int = 1, **attrs):
        if out is None:
            self.count += 1
            out = [f"{op.lower()}{self.count}" + (f"_{k}" if k else "") for k in range(nout)]
        outs = [out] if isinstance(out, str) else list(out)
        self.nodes.append(helper.make_node(op, inputs, outs, name=f"n{len(self.nodes)}_{op}",
                                           **attrs))
        return outs[0] if len(outs) == 1 else outs

    def const(self, arr: np.ndarray) -> str:
        """A Constant node with a value tensor."""
        self.count += 1
        name = f"const{self.count}"
        self.nodes.append(helper.make_node(
            "Constant", [], [name], name=f"n{len(self.nodes)}_Constant",
            value=numpy_helper.from_array(np.asarray(arr), name + "_value")))
        return name

    def model(self, name: str, outputs: List[str], opset: int, ir_version: Optional[int] = None,
              inits_as_inputs: bool = False) -> onnx.ModelProto:
        inputs = list(self.inputs)
        if inits_as_inputs:  # old-style models (IR < 4) list every initializer as an input
            inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                       for t in self.inits]
        # Output types only; shapes are filled in from the evaluator and checked against
        # shape inference in finish().
        outs = [helper.make_tensor_value_info(o, FLOAT, None) for o in outputs]
        g = helper.make_graph(self.nodes, name, inputs, outs, initializer=self.inits)
        kw = {"ir_version": ir_version} if ir_version else {}
        return helper.make_model(g, producer_name="lnsc-oracle",
                                 opset_imports=[helper.make_opsetid("", opset)], **kw)


def ce_labels(rng: np.random.Generator, n: int, c: int) -> np.ndarray:
    return rng.integers(0, c, size=n).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Models built with onnx.helper.
# ---------------------------------------------------------------------------------------------
def helper_o7_mlp() -> Fixture:
    """Opset 7, IR 3 (initializers listed as graph inputs): Transpose, Reshape 0/-1, Flatten
    axis 2, Gemm with required C (alpha, beta), LeakyRelu 0.2, Unsqueeze/Squeeze axes
    attributes, Cast float->float, Dropout ratio attribute, Softmax-1 coerced at axis 1 of a
    3-D input, Mul broadcast [C], Gemm transB with C [1, C]."""
    b = GraphBuilder(seed=7)
    x = b.input("x", [8, 2, 3, 4])
    t = b.node("Transpose", [x], perm=[0, 2, 1, 3])                       # [8,3,2,4]
    r = b.node("Reshape", [t, b.ints("shape_0m1_4", [0, -1, 4])])         # [8,6,4]
    f = b.node("Flatten", [r], axis=2)                                    # [48,4]
    g = b.node("Gemm", [f, b.param("W1", [4, 12]), b.param("b1", [12], 0.3)],
               alpha=0.5, beta=2.0)                                       # [48,12]
    a = b.node("LeakyRelu", [g], alpha=0.2)
    u = b.node("Unsqueeze", [a], axes=[0])                                # [1,48,12]
    s = b.node("Squeeze", [u], axes=[0])                                  # [48,12]
    c = b.node("Cast", [s], to=FLOAT)
    h = b.node("Reshape", [c, b.ints("shape_8_6_m1", [8, 6, -1])])        # [8,6,12]
    d = b.node("Dropout", [h], ratio=0.0)
    sm = b.node("Softmax", [d], axis=1)                                   # over 6*12 per sample
    m = b.node("Mul", [sm, b.param("gain", [12], 20.0)])                  # broadcast [C]
    fl = b.node("Flatten", [m], axis=1)                                   # [8,72]
    b.node("Gemm", [fl, b.param("W2", [10, 72]), b.param("b2", [1, 10], 0.1)], out="logits",
           transB=1)
    model = b.model("o7_mlp", ["logits"], opset=7, ir_version=3, inits_as_inputs=True)
    return Fixture("helper_o7_mlp", model, b.feeds, ce_labels(b.rng, 8, 10),
                   "opset 7, IR 3, initializers as inputs, CE")


def helper_o11_branches() -> Fixture:
    """Opset 11, two inputs and two outputs: Gemm without C (default attrs; transA+transB with
    alpha), Concat axis 1, Sub [1,C], Div [N,1] (denominators away from 0), Constant, Mul, Tanh,
    Sigmoid, Add, Reshape 0/-1, Unsqueeze/Squeeze negative axes attributes, Softmax-11 and
    LogSoftmax-11 coerced at axis 1 of a 3-D input, Flatten, Neg, Identity, Gemm with C."""
    b = GraphBuilder(seed=11)
    x1 = b.input("x1", [6, 5])
    x2 = b.input("x2", [3, 6])                                            # batch on axis 1
    ga = b.node("Gemm", [x1, b.param("Wa", [5, 8])])                      # [6,8], no C
    gb = b.node("Gemm", [x2, b.param("Wb", [8, 3])], transA=1, transB=1, alpha=1.5)  # [6,8]
    c = b.node("Concat", [ga, gb], axis=1)                                # [6,16]
    c = b.node("Sub", [c, b.param("shift", [1, 16], 0.5)])
    c = b.node("Div", [c, b.param("denom", [6, 1], away_from_zero=True)])
    k = b.const(np.linspace(-1.5, 1.5, 16).astype(np.float32))
    c = b.node("Mul", [c, k])
    e = b.node("Add", [b.node("Tanh", [c]), b.node("Sigmoid", [c])])
    r = b.node("Reshape", [e, b.ints("shape_0_4_m1", [0, 4, -1])])        # [6,4,4]
    u = b.node("Unsqueeze", [r], axes=[-1])                               # [6,4,4,1]
    q = b.node("Squeeze", [u], axes=[-1])                                 # [6,4,4]
    sm = b.node("Softmax", [q], out="probs", axis=1)                      # over 16 per sample
    ls = b.node("LogSoftmax", [q], axis=1)                                # over 16 per sample
    z = b.node("Add", [b.node("Mul", [sm, b.param("psc", [4], 4.0)]), ls])
    f = b.node("Flatten", [z], axis=1)                                    # [6,16]
    n = b.node("Identity", [b.node("Neg", [f])])
    b.node("Gemm", [n, b.param("Wo", [16, 4]), b.param("bo", [4], 0.1)], out="logits")
    model = b.model("o11_branches", ["logits", "probs"], opset=11)
    return Fixture("helper_o11_branches", model, b.feeds, ce_labels(b.rng, 6, 4),
                   "opset 11, 2 inputs, 2 outputs, CE")


def helper_o12_mini() -> Fixture:
    """Opset 12: Dropout-12 with ratio (0) as a Constant input, Unsqueeze-11 attribute axes,
    LogSoftmax-11 coerced at a negative axis of a 3-D input, Relu, Sub [N,1], Gemm."""
    b = GraphBuilder(seed=12)
    x = b.input("x", [4, 3, 6])
    d = b.node("Dropout", [x, b.const(np.array(0.0, np.float32))])
    m = b.node("MatMul", [d, b.param("W", [6, 5])])                       # [4,3,5]
    m = b.node("Relu", [b.node("Sub", [m, b.param("off", [4, 1, 1], 0.2)])])
    ls = b.node("LogSoftmax", [m], axis=-2)                               # coerce: over 15
    u = b.node("Unsqueeze", [ls], axes=[1])                               # [4,1,3,5]
    f = b.node("Flatten", [u], axis=1)                                    # [4,15]
    b.node("Gemm", [f, b.param("Wo", [15, 3]), b.param("bo", [3], 0.1)], out="logits")
    model = b.model("o12_mini", ["logits"], opset=12)
    return Fixture("helper_o12_mini", model, b.feeds, ce_labels(b.rng, 4, 3),
                   "opset 12, CE")


def helper_o13_batched() -> Fixture:
    """Opset 13: MatMul batched with broadcasting ([N,3,4]x[4,5] and [2,1,3,4]x[3,4,5]),
    Transpose, Softmax-13 on axis 1 of a 3-D input, LogSoftmax-13 axis -1, Unsqueeze/Squeeze
    axes as an initializer and as a Constant input, Dropout-13 ratio 0 and training_mode True
    as Constants with the mask output, Cast float->double->float (with Identity on the double),
    Reshape 0/-1, Concat axis 1, Mul [5,1], Tanh, Sigmoid, Gemm with C [1,C]."""
    b = GraphBuilder(seed=13)
    x = b.input("x", [6, 3, 4])
    y = b.input("y", [2, 1, 3, 4])
    m1 = b.node("MatMul", [x, b.param("W1", [4, 5])])                     # [6,3,5]
    t1 = b.node("Transpose", [m1], perm=[0, 2, 1])                        # [6,5,3]
    s1 = b.node("Softmax", [t1], axis=1)                                  # along the 5 only
    s1 = b.node("Mul", [s1, b.param("g1", [5, 1], 3.0)])                  # broadcast [5,1]
    u = b.node("Unsqueeze", [s1, b.ints("axes_1_m1", [1, -1])])           # [6,1,5,3,1]
    q = b.node("Squeeze", [u, b.const(np.array([1, 4], np.int64))])       # [6,5,3]
    h1 = b.node("Reshape", [q, b.ints("shape_0_m1", [0, -1])])            # [6,15]
    m2 = b.node("MatMul", [y, b.param("W2", [3, 4, 5])])                  # [2,3,3,5]
    m2 = b.node("Tanh", [m2])
    l2 = b.node("LogSoftmax", [m2], axis=-1)
    h2 = b.node("Reshape", [l2, b.ints("shape_6_m1", [6, -1])])           # [6,15]
    c = b.node("Concat", [h1, h2], axis=1)                                # [6,30]
    dd = b.node("Cast", [c], to=DOUBLE)
    dd = b.node("Identity", [dd])
    c = b.node("Cast", [dd], to=FLOAT)
    dr, _mask = b.node("Dropout", [c, b.const(np.array(0.0, np.float32)),
                                   b.const(np.array(True))], nout=2)
    r = b.node("Sigmoid", [dr])
    b.node("Gemm", [r, b.param("W3", [30, 5]), b.param("b3", [1, 5], 0.1)], out="logits")
    model = b.model("o13_batched", ["logits"], opset=13)
    return Fixture("helper_o13_batched", model, b.feeds, ce_labels(b.rng, 6, 5),
                   "opset 13, 2 inputs, CE")


def helper_o17_mse() -> Fixture:
    """Opset 17, MSE loss (float labels): MatMul 2-D, Add [C], Mul [1,C], Div [C] (away from
    0), Sub [N,1], LeakyRelu-16 alpha 0.2, Identity-16, Relu-14, Reshape-14 0/-1, Transpose,
    Flatten axis 1 and 2, Dropout-13 ratio 0 without training_mode, Cast float->float,
    Unsqueeze/Squeeze axes initializers, Concat axis 1, Neg, Sigmoid, Gemm transB with
    alpha, beta and a full [N,C] matrix C."""
    b = GraphBuilder(seed=17)
    x = b.input("x", [5, 8])
    h = b.node("Add", [b.node("MatMul", [x, b.param("W1", [8, 6])]), b.param("b1", [6], 0.2)])
    h = b.node("Mul", [h, b.param("g", [1, 6], 1.0)])
    h = b.node("Div", [h, b.param("dv", [6], away_from_zero=True)])
    h = b.node("Sub", [h, b.param("sh", [5, 1], 0.3)])
    h = b.node("LeakyRelu", [h], alpha=0.2)
    h = b.node("Identity", [h])
    r = b.node("Reshape", [h, b.ints("shape_0_2_m1", [0, 2, -1])])        # [5,2,3]
    t = b.node("Transpose", [r], perm=[0, 2, 1])                          # [5,3,2]
    f2 = b.node("Flatten", [t], axis=2)                                   # [15,2]
    f2 = b.node("Relu", [b.node("MatMul", [f2, b.param("W2", [2, 2])])])
    k = b.node("Reshape", [f2, b.ints("shape_5_m1", [5, -1])])            # [5,6]
    d = b.node("Dropout", [k, b.const(np.array(0.0, np.float32))])
    d = b.node("Cast", [d], to=FLOAT)
    u = b.node("Unsqueeze", [d, b.ints("axes_0", [0])])                   # [1,5,6]
    s = b.node("Squeeze", [u, b.ints("axes_0b", [0])])                    # [5,6]
    f1 = b.node("Flatten", [t], axis=1)                                   # [5,6]
    c = b.node("Concat", [s, b.node("Neg", [f1])], axis=1)                # [5,12]
    c = b.node("Sigmoid", [c])
    b.node("Gemm", [c, b.param("W3", [3, 12], 0.5), b.param("C3", [5, 3], 0.3)], out="pred",
           transB=1, alpha=0.7, beta=0.3)                                 # [5,3]
    model = b.model("o17_mse", ["pred"], opset=17)
    labels = (0.5 * b.rng.standard_normal([5, 3])).astype(np.float32)
    return Fixture("helper_o17_mse", model, b.feeds, labels, "opset 17, MSE")


# ---------------------------------------------------------------------------------------------
# Convolutional networks built with onnx.helper (batch 2-4, <= 16 channels, <= 10x10 images).
# Shapes in the comments are [N, C, H, W]. No Conv with a bias feeds a BatchNormalization:
# that bias's gradient is zero in exact arithmetic and only rounding noise in fp32.
# ---------------------------------------------------------------------------------------------
def helper_o7_cnn() -> Fixture:
    """Opset 7: Conv-1 with strides 2,1, asymmetric pads and a bias; Pad-2 (pads and value
    as attributes, a negative pad cropping a column); BatchNormalization-7 (spatial=1, the
    five training outputs, momentum 0.8, epsilon 1e-3) over the padded tensor; Relu;
    MaxPool-1 with asymmetric pads and strides; Clip-6 (min and max attributes); AveragePool-7
    with count_include_pad=1 and asymmetric pads; a residual Add; Conv 1x1 without bias;
    GlobalAveragePool; Flatten; Gemm."""
    b = GraphBuilder(seed=70)
    x = b.input("x", [3, 2, 9, 8])
    c = b.node("Conv", [x, b.param("conv1.W", [6, 2, 3, 3], 0.4), b.param("conv1.B", [6], 0.2)],
               kernel_shape=[3, 3], strides=[2, 1], pads=[1, 0, 0, 2])          # [3,6,4,8]
    p = b.node("Pad", [c], pads=[0, 0, 1, -1, 0, 0, 0, 2], value=0.5)          # [3,6,5,9]
    h = b.node("Relu", [b.bn(p, 6, "bn1", 7, momentum=0.8, epsilon=1e-3, spatial=1)])
    m = b.node("MaxPool", [h], kernel_shape=[2, 3], strides=[2, 2], pads=[1, 0, 0, 1])
    k = b.node("Clip", [m], min=0.1, max=1.2)                                  # [3,6,3,4]
    a = b.node("AveragePool", [k], kernel_shape=[2, 2], pads=[0, 1, 1, 0],
               count_include_pad=1)                                            # [3,6,3,4]
    r = b.node("Add", [a, k])
    c2 = b.node("Conv", [r, b.param("conv2.W", [4, 6, 1, 1], 0.5)])             # [3,4,3,4]
    f = b.node("Flatten", [b.node("GlobalAveragePool", [c2])])                 # [3,4]
    b.node("Gemm", [f, b.param("fc.W", [4, 5], 0.5), b.param("fc.B", [5], 0.1)], out="logits")
    model = b.model("o7_cnn", ["logits"], opset=7)
    return Fixture("helper_o7_cnn", model, b.feeds, ce_labels(b.rng, 3, 5),
                   "opset 7 CNN: Conv-1, Pad-2, BN-7, MaxPool-1, Clip-6, AveragePool-7, CE")


def helper_o11_cnn() -> Fixture:
    """Opset 11: Conv-11 with group 2, dilations 2,1, strides 1,2, asymmetric pads and no
    bias into BatchNormalization-9 (five training outputs, momentum 0.7); Clip-11 with min
    from a float initializer and max from a Constant; a depthwise Conv (group = channels)
    with auto_pad SAME_UPPER and stride 2 (odd total pads) and a bias; MaxPool-11 with
    ceil_mode, dilations 1,2 and pads; Pad-11 with pads from an int64 initializer and
    constant_value from a Constant; AveragePool-11 with ceil_mode, count_include_pad=0 and
    asymmetric pads; GlobalMaxPool broadcast-added back ([N,C,H,W] + [N,C,1,1]); Clip-11 with
    only max (min given as the empty name); Flatten; Gemm."""
    b = GraphBuilder(seed=110)
    x = b.input("x", [2, 4, 10, 10])
    c = b.node("Conv", [x, b.param("gconv.W", [8, 2, 3, 3], 0.4)], group=2,
               dilations=[2, 1], strides=[1, 2], pads=[2, 1, 2, 0])            # [2,8,10,5]
    h = b.bn(c, 8, "bn1", 11, momentum=0.7)
    h = b.node("Clip", [h, b.floats("clip_lo", -0.6), b.const(np.array(0.9, np.float32))])
    d = b.node("Conv", [h, b.param("dw.W", [8, 1, 3, 3], 0.6), b.param("dw.B", [8], 0.2)],
               group=8, auto_pad="SAME_UPPER", strides=[2, 2])                 # [2,8,5,3]
    m = b.node("MaxPool", [d], kernel_shape=[2, 2], strides=[2, 1], dilations=[1, 2],
               pads=[0, 1, 0, 1], ceil_mode=1)                     # [2,8,3,3] (floor: 2 rows)
    p = b.node("Pad", [m, b.ints("pads", [0, 0, 1, 0, 0, 0, 0, 2]),
                       b.const(np.array(-0.25, np.float32))])                  # [2,8,4,5]
    a = b.node("AveragePool", [p], kernel_shape=[3, 2], strides=[2, 2], pads=[0, 1, 0, 0],
               ceil_mode=1)                                        # [2,8,2,3] (floor: 1 row)
    g = b.node("GlobalMaxPool", [a])                                           # [2,8,1,1]
    r = b.node("Add", [a, g])
    r = b.node("Clip", [r, "", b.const(np.array(1.1, np.float32))])
    f = b.node("Flatten", [r])                                                 # [2,48]
    b.node("Gemm", [f, b.param("fc.W", [48, 4], 0.3), b.param("fc.B", [4], 0.1)], out="logits")
    model = b.model("o11_cnn", ["logits"], opset=11)
    return Fixture("helper_o11_cnn", model, b.feeds, ce_labels(b.rng, 2, 4),
                   "opset 11 CNN: Conv-11 groups/depthwise/SAME_UPPER, BN-9, Clip-11, "
                   "MaxPool-11 ceil, Pad-11, AveragePool-11 ceil, GlobalMaxPool, CE")


def helper_o13_cnn() -> Fixture:
    """Opset 13: Conv with auto_pad SAME_LOWER and stride 2 (odd total pads, the extra pixel
    at the start); Conv with auto_pad VALID, stride 2, dilations 2 and no bias;
    BatchNormalization-9 in inference form (one output: lnsc grad trains it with batch
    statistics all the same, and moves its running statistics); MaxPool-12 with auto_pad
    SAME_UPPER; AveragePool-11 with auto_pad SAME_LOWER; Pad-13 with pads from a Constant
    and no constant_value; Clip-13 with min and max from float initializers; a residual Add;
    MaxPool-12 with ceil_mode where the last window would start in the end padding (dropped,
    per the ONNX spec since opset 22's text and PyTorch; onnx 1.12's shape inference still
    counts it, so the pool feeds a GlobalAveragePool whose shape does not depend on it);
    Flatten; Gemm."""
    b = GraphBuilder(seed=130)
    x = b.input("x", [4, 3, 9, 9])
    c = b.node("Conv", [x, b.param("c1.W", [6, 3, 2, 2], 0.4)], auto_pad="SAME_LOWER",
               strides=[2, 2])                                                 # [4,6,5,5]
    c = b.node("Conv", [c, b.param("c2.W", [8, 6, 2, 2], 0.3)], auto_pad="VALID",
               strides=[1, 1], dilations=[2, 2])                               # [4,8,3,3]
    h = b.node("Tanh", [b.bn(c, 8, "bn1", 13, form="infer", momentum=0.6)])
    m = b.node("MaxPool", [h], kernel_shape=[2, 2], auto_pad="SAME_UPPER")     # [4,8,3,3]
    a = b.node("AveragePool", [m], kernel_shape=[2, 3], auto_pad="SAME_LOWER",
               strides=[1, 2])                                                 # [4,8,3,2]
    p = b.node("Pad", [a, b.const(np.array([0, 0, 0, 1, 0, 0, 1, 0], np.int64))])  # [4,8,4,3]
    k = b.node("Clip", [p, b.floats("lo", -0.3), b.floats("hi", 0.45)])
    r = b.node("Add", [k, b.param("shift", [8, 1, 1], 0.3)])                   # broadcast
    r = b.node("Add", [r, p])                                                  # residual
    q = b.node("MaxPool", [r], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1],
               ceil_mode=1)                               # [4,8,2,2]: 3rd window dropped
    f = b.node("Flatten", [b.node("GlobalAveragePool", [q])])                  # [4,8]
    b.node("Gemm", [f, b.param("fc.W", [8, 5], 0.8), b.param("fc.B", [5], 0.1)], out="logits")
    model = b.model("o13_cnn", ["logits"], opset=13)
    return Fixture("helper_o13_cnn", model, b.feeds, ce_labels(b.rng, 4, 5),
                   "opset 13 CNN: SAME_LOWER/VALID Conv, BN inference form, MaxPool-12 "
                   "SAME_UPPER and ceil, AveragePool SAME_LOWER, Pad-13, Clip-13, CE")


def helper_o17_cnn() -> Fixture:
    """Opset 17, MSE loss: BatchNormalization-15 with training_mode=1 (three outputs, default
    momentum and epsilon) after a stride-2 Conv with groups 4 and asymmetric pads; Relu; a
    projection shortcut (Conv 1x1 stride 2, bias) and a 3x3 Conv into
    BatchNormalization-15 with training_mode=0 (inference form; trained in training form),
    residual Add; AveragePool-11 with count_include_pad=1 and ceil_mode where the last window
    runs past the end pad (divided by its taps up to the pad, as PyTorch does); MaxPool-12
    with dilations 2 and asymmetric pads; Pad-13 cropping (negative pads) with the value from
    a float initializer; Clip-13 (ReLU6 style, bounds as Constants); GlobalAveragePool; Flatten;
    Gemm."""
    b = GraphBuilder(seed=170)
    x = b.input("x", [3, 8, 8, 8])
    c = b.node("Conv", [x, b.param("gc.W", [8, 2, 3, 3], 0.4)], group=4, strides=[2, 2],
               pads=[1, 0, 0, 1])                                              # [3,8,4,4]
    h = b.node("Relu", [b.bn(c, 8, "bn1", 17)])
    sc = b.node("Conv", [x, b.param("proj.W", [8, 8, 1, 1], 0.4), b.param("proj.B", [8], 0.2)],
                strides=[2, 2])                                                # [3,8,4,4]
    c2 = b.node("Conv", [h, b.param("c2.W", [8, 8, 3, 3], 0.25)], pads=[1, 1, 1, 1])
    y = b.node("Add", [b.bn(c2, 8, "bn2", 17, form="infer", training_mode=0), sc])  # [3,8,4,4]
    a = b.node("AveragePool", [y], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 0, 0, 0],
               ceil_mode=1, count_include_pad=1)           # [3,8,3,2]: last row of 1 tap
    m = b.node("MaxPool", [y], kernel_shape=[2, 2], dilations=[2, 2], pads=[0, 1, 1, 0])
    p = b.node("Pad", [m, b.ints("pads", [0, 0, -1, 1, 0, 0, 0, -1]),
                       b.floats("pad_value", 0.3)])                            # [3,8,2,3]
    p = b.node("Clip", [p, b.const(np.array(0.0, np.float32)),
                        b.const(np.array(6.0, np.float32))])
    g = b.node("Add", [b.node("GlobalAveragePool", [a]), b.node("GlobalAveragePool", [p])])
    f = b.node("Flatten", [g])                                                 # [3,8]
    b.node("Gemm", [f, b.param("fc.W", [3, 8], 0.5), b.param("fc.B", [3], 0.1)], out="pred",
           transB=1)
    model = b.model("o17_cnn", ["pred"], opset=17)
    labels = (0.5 * b.rng.standard_normal([3, 3])).astype(np.float32)
    return Fixture("helper_o17_cnn", model, b.feeds, labels,
                   "opset 17 CNN: BN-15 training_mode 1 and 0, groups, projection, "
                   "AveragePool ceil past the pad, MaxPool dilations, Pad crop, MSE")


# ---------------------------------------------------------------------------------------------
# Models exported from PyTorch.
# ---------------------------------------------------------------------------------------------
def export(module: nn.Module, args: Tuple[torch.Tensor, ...], input_names: List[str],
           output_names: List[str], opset: int, training: bool) -> onnx.ModelProto:
    """The export traces one forward pass, which in train mode moves BatchNorm's running
    statistics in the module and in the file: both are put back to the module's state from
    before the export (file initializers by state_dict name)."""
    buf = io.BytesIO()
    mode = torch.onnx.TrainingMode.TRAINING if training else torch.onnx.TrainingMode.EVAL
    initial = copy.deepcopy(module.state_dict())
    module.train(training)
    torch.onnx.export(module, args, buf, input_names=input_names, output_names=output_names,
                      opset_version=opset, training=mode, do_constant_folding=not training)
    module.load_state_dict(initial)
    model = onnx.load_from_string(buf.getvalue())
    for t in model.graph.initializer:
        if t.name in initial and list(initial[t.name].shape) == list(t.dims):
            arr = initial[t.name].numpy().astype(numpy_helper.to_array(t).dtype)
            t.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(arr), t.name))
    return model


class DropoutMLP(nn.Module):
    """Flatten, Linear, ReLU, Dropout(p=0), Linear, LeakyReLU(0.2), Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Dropout(p=0.0),
            nn.Linear(16, 16), nn.LeakyReLU(0.2), nn.Linear(16, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def torch_o13_dropout_mlp() -> Fixture:
    """nn.Sequential MLP with nn.Dropout(0.0) exported in training mode at opset 13 (Dropout
    stays a node, with ratio and training_mode as Constants)."""
    torch.manual_seed(1301)
    rng = np.random.default_rng(1301)
    mod = DropoutMLP()
    x = rng.standard_normal([8, 3, 4]).astype(np.float32)
    model = export(mod, (torch.from_numpy(x),), ["input"], ["logits"], 13, training=True)
    return Fixture("torch_o13_dropout_mlp", model, {"input": x}, ce_labels(rng, 8, 5),
                   "torch.onnx.export opset 13 (training mode), CE", mod, (x,))


class TinyAttention(nn.Module):
    """One head of self-attention with a sigmoid gate and a linear classifier on top."""

    def __init__(self, dim: int = 8, seq: int = 6, classes: int = 4) -> None:
        super().__init__()
        self.dim = dim
        self.seq = seq
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim)
        self.gate = nn.Linear(dim, dim)
        self.head = nn.Linear(2 * seq * dim, classes)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q(x), self.k(x), self.v(x)                 # [N,S,D] MatMul+Add
        scores = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(self.dim)
        att = torch.softmax(scores - bias.unsqueeze(1), dim=-1)   # [N,S,S]
        o = torch.tanh(torch.matmul(att, v))
        o = o * torch.sigmoid(self.gate(x))
        o = torch.cat([o, -o], dim=2)                             # [N,S,2D]
        return self.head(o.flatten(1))


def torch_o11_attention() -> Fixture:
    """Tiny attention exported at opset 11 with constant folding: batched MatMul with 2-D
    weights, Transpose, Div by a constant, Softmax-11 on the last axis, Sub, Unsqueeze,
    Sigmoid, Tanh, Mul, Neg, Concat, Flatten, Gemm; initializers named onnx::MatMul_*."""
    torch.manual_seed(1101)
    rng = np.random.default_rng(1101)
    mod = TinyAttention()
    x = rng.standard_normal([4, 6, 8]).astype(np.float32)
    bias = rng.standard_normal([4, 6]).astype(np.float32)
    model = export(mod, (torch.from_numpy(x), torch.from_numpy(bias)), ["x", "bias"],
                   ["logits"], 11, training=False)
    return Fixture("torch_o11_attention", model, {"x": x, "bias": bias}, ce_labels(rng, 4, 4),
                   "torch.onnx.export opset 11, 2 inputs, CE", mod, (x, bias))


class Regressor(nn.Module):
    """Linear, Tanh, concat with its negation, Linear, Sigmoid, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(10, 8)
        self.l2 = nn.Linear(16, 8)
        self.l3 = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.l1(x))
        h = torch.cat([h, -h], dim=1).unsqueeze(1)               # [N,1,16]
        h = torch.sigmoid(self.l2(h)).squeeze(1)                 # [N,8]
        return self.l3(h * 2.0 - 1.0)


def torch_o17_mse() -> Fixture:
    """Regressor exported at opset 17 with constant folding, trained with MSE."""
    torch.manual_seed(1701)
    rng = np.random.default_rng(1701)
    mod = Regressor()
    x = rng.standard_normal([6, 10]).astype(np.float32)
    model = export(mod, (torch.from_numpy(x),), ["x"], ["y"], 17, training=False)
    labels = rng.standard_normal([6, 3]).astype(np.float32)
    return Fixture("torch_o17_mse", model, {"x": x}, labels,
                   "torch.onnx.export opset 17, MSE", mod, (x,))


class BnCnn(nn.Module):
    """Conv-BN-ReLU-MaxPool(ceil) and a grouped Conv-BN-ReLU6, then an average pool with
    padding (not counted), an adaptive max pool to 1x1 and a linear classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1, groups=2, bias=False)
        self.b2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.b1(self.c1(x))), 2, ceil_mode=True)
        x = nn.functional.relu6(self.b2(self.c2(x)) * 3.0)
        x = nn.functional.avg_pool2d(x, 2, padding=1, count_include_pad=False)
        x = nn.functional.adaptive_max_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


def torch_o13_bn_cnn() -> Fixture:
    """BnCnn exported in training mode at opset 13 (BatchNormalization with its five
    training outputs, no constant folding): Conv without bias (groups 1 and 2),
    BatchNormalization-9, Relu, MaxPool-12 with ceil_mode, Clip-13 from F.relu6 (bounds as
    Cast(Constant) inputs), AveragePool-11 with pads and count_include_pad=0, MaxPool for
    the adaptive pool, Flatten, Gemm; checked against the module, running statistics
    included."""
    torch.manual_seed(1302)
    rng = np.random.default_rng(1302)
    mod = BnCnn()
    x = rng.standard_normal([4, 3, 7, 7]).astype(np.float32)
    model = export(mod, (torch.from_numpy(x),), ["x"], ["logits"], 13, training=True)
    return Fixture("torch_o13_bn_cnn", model, {"x": x}, ce_labels(rng, 4, 4),
                   "torch.onnx.export opset 13 (training mode) CNN with BatchNorm, CE",
                   mod, (x,))


class TinyResNet(nn.Module):
    """Stem conv-BN-ReLU, one residual block (conv-BN-ReLU-conv-BN + identity, ReLU), a
    3x3 stride-2 average pool (ceil, padding counted), Hardtanh, global average pool,
    linear classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU())
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        x = self.pool(torch.relu(x + y))
        x = nn.functional.hardtanh(x - 0.5, -0.6, 0.8)
        x = nn.functional.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


def torch_o17_resnet() -> Fixture:
    """TinyResNet exported in training mode at opset 17 (BatchNormalization-15 with
    training_mode=1 and three outputs): Conv, BatchNormalization, Relu, residual Add,
    AveragePool with ceil_mode and count_include_pad=1, Sub, Clip from Hardtanh,
    GlobalAveragePool, Flatten, Gemm; checked against the module, running statistics
    included."""
    torch.manual_seed(1702)
    rng = np.random.default_rng(1702)
    mod = TinyResNet()
    x = rng.standard_normal([2, 2, 6, 6]).astype(np.float32)
    model = export(mod, (torch.from_numpy(x),), ["x"], ["logits"], 17, training=True)
    return Fixture("torch_o17_resnet", model, {"x": x}, ce_labels(rng, 2, 3),
                   "torch.onnx.export opset 17 (training mode) residual CNN, CE", mod, (x,))


FIXTURES: List[Callable[[], Fixture]] = [
    helper_o7_mlp, helper_o11_branches, helper_o12_mini, helper_o13_batched, helper_o17_mse,
    torch_o13_dropout_mlp, torch_o11_attention, torch_o17_mse,
    helper_o7_cnn, helper_o11_cnn, helper_o13_cnn, helper_o17_cnn,
    torch_o13_bn_cnn, torch_o17_resnet,
]


# ---------------------------------------------------------------------------------------------
# The oracle: evaluate, loss, backward.
# ---------------------------------------------------------------------------------------------
def loss_of(out: torch.Tensor, labels: np.ndarray) -> torch.Tensor:
    """lnsc's loss contract on the first graph output."""
    if labels.dtype == np.int64:
        if out.dim() != 2 or labels.shape != (out.shape[0],):
            raise ValueError(f"CE needs output [N,C] and labels [N]; got {list(out.shape)} "
                             f"and {list(labels.shape)}")
        return torch.nn.functional.cross_entropy(out, torch.from_numpy(labels))
    if labels.shape != tuple(out.shape):
        raise ValueError("MSE labels must have the first output's shape")
    return ((out - torch.from_numpy(labels).to(out.dtype)) ** 2).mean()


def oracle(model: onnx.ModelProto, feeds: Dict[str, np.ndarray], labels: np.ndarray,
           promote: bool = True):
    """Returns (loss, {output: array}, {initializer: grad array}, {running statistic:
    array after the step}, the loss tensor) in the logical dtypes."""
    ev = Evaluator(model, promote=promote, training=True)
    outs = ev.run(feeds)
    first = model.graph.output[0].name
    loss = loss_of(outs[first][0], labels)
    loss.backward()
    grads = {}
    for name, p in ev.params.items():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        grads[name] = g.detach().to(torch.float32).numpy()
    outputs = {name: ev.to_numpy(v) for name, v in outs.items()}
    missing = ev.state_names - set(ev.state)
    if missing:
        raise EvalError(f"running statistics not updated by the step: {sorted(missing)}")
    state = {name: t.to(torch.float32).numpy() for name, t in ev.state.items()}
    return np.float32(loss.item()), outputs, grads, state, loss


def tol_ratio(a: np.ndarray, b: np.ndarray) -> float:
    """max |a-b| / (1e-4 |b| + 1e-5 max|b|): test_oracle.py's criterion is ratio <= 1."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    if b.size == 0:
        return 0.0
    tol = 1e-4 * np.abs(b) + 1e-5 * np.max(np.abs(b))
    err = np.abs(a - b)
    return float(np.max(np.where(err == 0, 0.0, err / np.maximum(tol, 1e-300))))


def check_fp32_feasible(model, feeds, labels, loss_value, outputs, grads, state) -> str:
    """The same graph evaluated in plain float32 must pass the tolerance of test_oracle.py:
    otherwise the fixture is too ill-conditioned for an fp32 implementation."""
    l32, o32, g32, s32, _ = oracle(model, feeds, labels, promote=False)
    worst, where = tol_ratio(np.array(l32), np.array(loss_value)), "loss"
    for group, got, ref in (("", o32, outputs), ("grad ", g32, grads), ("state ", s32, state)):
        for k in ref:
            r = tol_ratio(got[k], ref[k])
            if r > worst:
                worst, where = r, group + k
    assert worst <= 0.1, f"fp32 evaluation uses {worst:.2f} of the tolerance at {where}"
    return f"fp32 uses {worst:.3f} of tol ({where})"


def check_against_module(fx: Fixture, outputs, loss_value, grads, state) -> str:
    """For exported models: the evaluator must agree with the nn.Module (run in float64, in
    train mode, as lnsc grad runs a training step). Running statistics: the means must
    match; PyTorch moves running_var by the unbiased batch variance (times M / (M - 1), M the
    elements per channel) where ONNX (and so the fixture) uses the biased one, so the
    module's running_var must equal the fixture's with the batch term scaled by M / (M - 1)."""
    mod = copy.deepcopy(fx.module).double()
    mod.train(True)
    before = {k: v.detach().clone() for k, v in mod.state_dict().items()}
    args = [torch.from_numpy(a).double() for a in fx.module_args]
    out = mod(*args)
    first = fx.model.graph.output[0].name
    ref = out.detach().numpy()
    got = outputs[first].astype(np.float64)
    assert ref.shape == got.shape, (ref.shape, got.shape)
    err = np.max(np.abs(ref - got)) / max(np.max(np.abs(ref)), 1e-30)
    assert err < 1e-6, f"{fx.name}: evaluator output differs from nn.Module (rel {err:.3g})"
    loss = loss_of(out, fx.labels)
    assert abs(loss.item() - float(loss_value)) <= 1e-6 * abs(loss.item()) + 1e-7, \
        f"{fx.name}: loss {float(loss_value)} vs module {loss.item()}"
    loss.backward()
    matched = 0
    for pname, p in mod.named_parameters():
        if pname in grads:
            g = p.grad.detach().numpy()
            e = grads[pname].astype(np.float64)
            assert g.shape == e.shape, (pname, g.shape, e.shape)
            gerr = np.max(np.abs(g - e)) / max(np.max(np.abs(g)), 1e-30)
            assert gerr < 1e-5, f"{fx.name}: grad {pname} differs from module (rel {gerr:.3g})"
            matched += 1
    nstate = 0
    for mname, m in mod.named_modules():
        if not isinstance(m, nn.modules.batchnorm._BatchNorm):
            continue
        rm, rv = mname + ".running_mean", mname + ".running_var"
        assert rm in state and rv in state, f"{fx.name}: no expected state for {mname}"
        mom = 1.0 - m.momentum                                   # ONNX's momentum
        mean_err = np.max(np.abs(m.running_mean.numpy() - state[rm]))
        assert mean_err <= 1e-6 * max(np.max(np.abs(state[rm])), 1e-3), \
            f"{fx.name}: {rm} differs from module ({mean_err:.3g})"
        r0 = before[rv].numpy()
        batch_var = (state[rv].astype(np.float64) - mom * r0) / (1 - mom)   # biased
        shape = m.running_mean.shape[0]
        elems = int(np.prod(fx_bn_input_shape(fx, mname))) // shape
        want = mom * r0 + (1 - mom) * batch_var * elems / (elems - 1)
        var_err = np.max(np.abs(m.running_var.numpy() - want)) / np.max(np.abs(want))
        assert var_err < 1e-5, f"{fx.name}: {rv} vs module (unbiased) rel {var_err:.3g}"
        nstate += 2
    return (f"module check ok (output rel err {err:.1e}, {matched} grads and {nstate} running "
            f"statistics matched by name)")


def fx_bn_input_shape(fx: Fixture, module_name: str) -> List[int]:
    """Shape of the input of the BatchNorm submodule module_name in one forward pass."""
    shapes = {}
    mod = copy.deepcopy(fx.module).double().train(True)
    sub = dict(mod.named_modules())[module_name]
    def record(_m, inputs, _out):   # returns None: the output stays as it is
        shapes.setdefault("x", list(inputs[0].shape))

    hook = sub.register_forward_hook(record)
    mod(*[torch.from_numpy(a).double() for a in fx.module_args])
    hook.remove()
    return shapes["x"]


def validate(model: onnx.ModelProto, outputs: Dict[str, np.ndarray]) -> onnx.ModelProto:
    """Fill output shapes/types from the evaluator, then run the checker and strict shape
    inference, which must agree with those shapes."""
    for vi in model.graph.output:
        arr = outputs[vi.name]
        elem = onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[arr.dtype]
        if vi.type.tensor_type.HasField("shape") and len(vi.type.tensor_type.shape.dim):
            dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            if all(d > 0 for d in dims) and dims != list(arr.shape):
                raise AssertionError(f"output {vi.name}: declared {dims}, "
                                     f"evaluated {list(arr.shape)}")
            continue  # exported models declare their own shapes
        vi.CopyFrom(helper.make_tensor_value_info(vi.name, elem, list(arr.shape)))
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    for vi in inferred.graph.output:
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        if dims and all(d > 0 for d in dims):
            assert dims == list(outputs[vi.name].shape), (vi.name, dims, outputs[vi.name].shape)
    return model


def write_fixture(fx: Fixture, outdir: str) -> Dict:
    model = fx.model
    ops = [n.op_type for n in model.graph.node]
    bad = sorted(set(ops) - SUPPORTED_OPS)
    if bad:
        raise AssertionError(f"{fx.name}: uses unsupported ops {bad}")
    for t in model.graph.initializer:
        if t.data_type in (TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16):
            raise AssertionError(f"{fx.name}: non-FLOAT float initializer {t.name}")
    loss_value, outputs, grads, state, _ = oracle(model, fx.feeds, fx.labels)
    model = validate(model, outputs)
    extra = check_fp32_feasible(model, fx.feeds, fx.labels, loss_value, outputs, grads, state)
    if fx.module:
        extra += "; " + check_against_module(fx, outputs, loss_value, grads, state)

    d = os.path.join(outdir, fx.name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(os.path.join(d, "expected"))
    onnx.save(model, os.path.join(d, "model.onnx"))
    for name, arr in fx.feeds.items():
        onnx.save_tensor(numpy_helper.from_array(arr, name),
                         os.path.join(d, f"input_{sanitize(name)}.pb"))
    onnx.save_tensor(numpy_helper.from_array(fx.labels, "labels"), os.path.join(d, "labels.pb"))
    exp = os.path.join(d, "expected")
    manifest = {"loss": "loss.pb", "outputs": {}, "gradients": {}, "state": {}}
    onnx.save_tensor(numpy_helper.from_array(np.array(loss_value, np.float32), "loss"),
                     os.path.join(exp, "loss.pb"))
    for name, arr in outputs.items():
        fname = sanitize(name) + ".pb"
        onnx.save_tensor(numpy_helper.from_array(arr, name), os.path.join(exp, fname))
        manifest["outputs"][name] = fname
    for name, arr in sorted(grads.items()):
        fname = "grad_" + sanitize(name) + ".pb"
        onnx.save_tensor(numpy_helper.from_array(arr, "grad_" + name), os.path.join(exp, fname))
        manifest["gradients"][name] = fname
    for name, arr in sorted(state.items()):
        fname = "state_" + sanitize(name) + ".pb"
        onnx.save_tensor(numpy_helper.from_array(arr, name), os.path.join(exp, fname))
        manifest["state"][name] = fname
    with open(os.path.join(exp, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")

    n_params = sum(int(np.prod(a.shape)) for a in grads.values())
    info = {
        "note": fx.note, "opset": onnx_opset(model), "ir_version": model.ir_version,
        "ops": sorted(set(ops)), "nodes": len(ops),
        "inputs": {k: list(v.shape) for k, v in fx.feeds.items()},
        "outputs": {k: list(v.shape) for k, v in outputs.items()},
        "loss": "cross-entropy" if fx.labels.dtype == np.int64 else "mse",
        "params": len(grads), "param_elements": n_params, "state": len(state),
    }
    print(f"{fx.name}: opset {info['opset']}, {len(ops)} nodes, {len(grads)} params "
          f"({n_params} elements), {len(state)} running statistics, loss {info['loss']} = {float(loss_value):.6f} "
          f"{('; ' + extra) if extra else ''}")
    print(f"    ops: {' '.join(info['ops'])}")
    return info


# ---------------------------------------------------------------------------------------------
# Self-check of the evaluator against ONNX's node tests (reference outputs from numpy).
# ---------------------------------------------------------------------------------------------
def selfcheck(node_dir: str) -> int:
    npass = nfail = nskip = 0
    for case in sorted(os.listdir(node_dir)):
        cdir = os.path.join(node_dir, case)
        if not os.path.isdir(cdir):
            continue
        model = onnx.load(os.path.join(cdir, "model.onnx"))
        ds = os.path.join(cdir, "test_data_set_0")
        feeds, ok = {}, True
        for j, vi in enumerate(model.graph.input):
            if vi.type.WhichOneof("value") != "tensor_type":
                ok = False
                break
            path = os.path.join(ds, f"input_{j}.pb")
            feeds[vi.name] = numpy_helper.to_array(onnx.load_tensor(path))
        if not ok:
            nskip += 1
            continue
        try:  # both storage modes: float32 as is, and float32 held in float64 (fixtures)
            gots = []
            for promote in (False, True):
                ev = Evaluator(model, promote=promote, training=False)
                outs = ev.run(feeds)
                gots += [ev.to_numpy(outs[vi.name]) for vi in model.graph.output]
        except (EvalError, RuntimeError, TypeError) as e:
            print(f"  skip {case}: {str(e).splitlines()[0][:100]}")
            nskip += 1
            continue
        good = True
        for j, got in enumerate(gots):
            j %= len(model.graph.output)
            ref = numpy_helper.to_array(onnx.load_tensor(os.path.join(ds, f"output_{j}.pb")))
            if got.shape != ref.shape or got.dtype != ref.dtype:
                good = False
            elif ref.dtype.kind == "f":
                good &= bool(np.allclose(got, ref, rtol=1e-3, atol=1e-7, equal_nan=True))
            else:
                good &= bool(np.array_equal(got, ref))
        if good:
            npass += 1
        else:
            nfail += 1
            print(f"  FAIL {case}")
    print(f"evaluator selfcheck: {npass} passed, {nfail} failed, {nskip} skipped")
    return 1 if nfail else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(HERE, "fixtures"),
                    help="fixtures directory (default: %(default)s)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="build only these fixtures")
    ap.add_argument("--selfcheck", metavar="NODE_TEST_DIR",
                    help="check the evaluator on generated ONNX node tests instead")
    args = ap.parse_args()
    if args.selfcheck:
        return selfcheck(args.selfcheck)

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    index_path = os.path.join(args.out, "index.json")
    index = {}
    if args.only and os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
    for make in FIXTURES:
        if args.only and make.__name__ not in args.only:
            continue
        fx = make()
        index[fx.name] = write_fixture(fx, args.out)
    with open(index_path, "w") as f:
        json.dump(index, f, indent=1, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
