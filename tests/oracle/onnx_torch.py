"""onnx_torch.py: execute an ONNX graph node by node with PyTorch ops (the oracle's evaluator).

Design: each node of lnsc's supported op set (opsets 7..17) is implemented directly from the
ONNX operator spec with torch ops, so autograd gives the backward pass for free. Values are
kept as (torch tensor, ONNX elem type) pairs; the ONNX type is the logical one. With
promote=True (the default) logical FLOAT tensors are held in float64, so the expected values
are more accurate than any fp32 implementation can be; a Cast to FLOAT rounds through float32
so the graph's own precision changes are still honoured. Float (FLOAT) initializers become leaf
tensors with requires_grad: they are the trainable parameters, as in lnsc's contract. Dropout
is evaluated in training form (as lnsc's grad does) and therefore only with ratio 0, where it
is the identity: any other ratio raises, because no oracle can match another RNG.

Inputs that lnsc reads as constants (Clip's bounds and Pad's pads and value from opset 11,
Dropout's ratio and training_mode) are not parameters even when they are float
initializers, and BatchNormalization's running mean and variance (inputs 3 and 4) are model
state: neither gets a gradient. In training form (training=True, what `lnsc grad` runs, or
the node's own training mode otherwise: training_mode=1 from opset 14, more than one output
before) BatchNormalization normalises by the batch mean and the biased batch variance and
moves the running statistics by the ONNX rule, running * momentum + batch * (1 - momentum),
with the biased variance (the spec: ReduceVar is the population variance; PyTorch's own
module uses the unbiased one for its running variance). The moved values are collected in
self.state (initializer name -> tensor) for the oracle's state check.

Conv and the pools resolve their windows from the ONNX attributes here (explicit pads,
auto_pad SAME_UPPER / SAME_LOWER / VALID, ceil_mode with the rule that a window starting in
the end padding is dropped), pad the input explicitly (zeros for Conv, -inf for MaxPool,
zeros plus a count of the window's taps for AveragePool, inside X or inside X and its pads by
count_include_pad) and run torch's unpadded conv2d / max_pool2d / avg_pool2d, so asymmetric
pads, which torch cannot express, work too. Where torch can express a pool itself (symmetric
pads of at most half the kernel) the result is checked against torch's padded pool.
"""
import math
from typing import Dict, List, Optional, Tuple

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

# lnsc's supported op set: fixtures and node tests are restricted to these.
SUPPORTED_OPS = frozenset([
    "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "Sigmoid", "Tanh",
    "Softmax", "LogSoftmax", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze",
    "Concat", "Identity", "Dropout", "Constant", "Cast", "Neg",
    "Conv", "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool",
    "GlobalMaxPool", "Pad", "Clip",
])

# Inputs lnsc reads as constants from opset `since` on ({op: (since, input indices)}), and
# BatchNormalization's running statistics (model state).
_CONST_INPUTS = {"Clip": (11, (1, 2)), "Pad": (11, (1, 2)), "Dropout": (12, (1, 2)),
                 "Reshape": (5, (1,)), "Squeeze": (13, (1,)), "Unsqueeze": (13, (1,))}
_STATE_INPUTS = {"BatchNormalization": (3, 4)}

_TORCH_DTYPE = {
    TensorProto.FLOAT: torch.float32, TensorProto.DOUBLE: torch.float64,
    TensorProto.FLOAT16: torch.float16, TensorProto.BFLOAT16: torch.bfloat16,
    TensorProto.INT8: torch.int8, TensorProto.INT16: torch.int16,
    TensorProto.INT32: torch.int32, TensorProto.INT64: torch.int64,
    TensorProto.UINT8: torch.uint8, TensorProto.BOOL: torch.bool,
}
_FLOATS = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16)

Value = Tuple[torch.Tensor, int]  # (tensor, ONNX elem type)


class EvalError(Exception):
    """The graph uses something the evaluator (and so the oracle) does not cover."""


def onnx_opset(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    raise EvalError("model imports no ai.onnx opset")


def _prod(xs) -> int:
    p = 1
    for x in xs:
        p *= int(x)
    return p


class Evaluator:
    """Runs one ModelProto. Call run(feeds) once; parameters are exposed as self.params."""

    def __init__(self, model: onnx.ModelProto, promote: bool = True, training: bool = True):
        self.model = model
        self.opset = onnx_opset(model)
        self.promote = promote
        self.training = training
        self.params: Dict[str, torch.Tensor] = {}   # float initializers (leaves, requires_grad)
        self.state: Dict[str, torch.Tensor] = {}    # running statistics after the step
        self.state_names: set = set()               # initializers that are running statistics
        self.env: Dict[str, Value] = {}

    # -- value helpers ------------------------------------------------------------------------
    def storage(self, elem: int) -> torch.dtype:
        if elem == TensorProto.FLOAT and self.promote:
            return torch.float64
        if elem not in _TORCH_DTYPE:
            raise EvalError(f"dtype {TensorProto.DataType.Name(elem)} not supported by evaluator")
        return _TORCH_DTYPE[elem]

    def from_numpy(self, arr: np.ndarray, elem: int) -> torch.Tensor:
        return torch.from_numpy(np.array(arr, copy=True)).to(self.storage(elem))

    def to_numpy(self, v: Value) -> np.ndarray:
        """The value as numpy in its logical ONNX type (FLOAT -> float32)."""
        t, elem = v
        t = t.detach()
        if elem == TensorProto.FLOAT:
            t = t.to(torch.float32)
        return t.numpy().copy()

    def _get(self, name: str) -> Optional[Value]:
        if name == "":
            return None
        if name not in self.env:
            raise EvalError(f"value '{name}' used before it is defined")
        return self.env[name]

    @staticmethod
    def _ints(v: Value) -> List[int]:
        t, elem = v
        if elem not in (TensorProto.INT64, TensorProto.INT32):
            raise EvalError("shape/axes tensor must be int64")
        return [int(x) for x in t.reshape(-1).tolist()]

    # -- running ------------------------------------------------------------------------------
    def _non_params(self) -> Tuple[set, set]:
        """(initializers read as constants, initializers that are running statistics)."""
        const, state, plain = set(), set(), set()
        inits = {t.name for t in self.model.graph.initializer}
        for n in self.model.graph.node:
            since, cidx = _CONST_INPUTS.get(n.op_type, (0, ()))
            sidx = _STATE_INPUTS.get(n.op_type, ())
            for i, name in enumerate(n.input):
                if name not in inits:
                    continue
                if i in sidx:
                    state.add(name)
                elif i in cidx and self.opset >= since:
                    const.add(name)
                else:
                    plain.add(name)
        mixed = (const | state) & plain | (const & state)
        if mixed:
            raise EvalError(f"initializers used both as constants/state and as data: "
                            f"{sorted(mixed)}")
        return const, state

    def run(self, feeds: Dict[str, np.ndarray]) -> Dict[str, Value]:
        g = self.model.graph
        init_names = set()
        const_names, self.state_names = self._non_params()
        for init in g.initializer:
            arr = numpy_helper.to_array(init)
            t = self.from_numpy(arr, init.data_type)
            if init.name in const_names or init.name in self.state_names:
                pass  # a constant or a running statistic: no gradient
            elif init.data_type == TensorProto.FLOAT:
                t.requires_grad_(True)
                self.params[init.name] = t
            elif init.data_type in _FLOATS:
                raise EvalError(f"initializer {init.name}: only FLOAT initializers are parameters; "
                                "fixtures keep other float types out of initializers")
            self.env[init.name] = (t, init.data_type)
            init_names.add(init.name)
        for vi in g.input:
            if vi.name in init_names:
                continue
            if vi.name not in feeds:
                raise EvalError(f"no feed for graph input {vi.name}")
            elem = vi.type.tensor_type.elem_type
            self.env[vi.name] = (self.from_numpy(feeds[vi.name], elem), elem)
        for node in g.node:
            if node.domain not in ("", "ai.onnx"):
                raise EvalError(f"node {node.name}: domain {node.domain} not supported")
            if node.op_type not in SUPPORTED_OPS:
                raise EvalError(f"node {node.name}: op {node.op_type} not supported")
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            ins = [self._get(n) for n in node.input]
            self._node = node
            outs = getattr(self, "op_" + node.op_type)(ins, attrs, len(node.output))
            for name, v in zip(node.output, outs):
                if name:
                    self.env[name] = v
        return {o.name: self.env[o.name] for o in g.output}

    # -- ops: linear algebra ------------------------------------------------------------------
    def op_Gemm(self, ins, attrs, nout):
        (a, elem), (b, _) = ins[0], ins[1]
        if attrs.get("transA", 0):
            a = a.t()
        if attrs.get("transB", 0):
            b = b.t()
        y = attrs.get("alpha", 1.0) * (a @ b)
        if len(ins) > 2 and ins[2] is not None:
            y = y + attrs.get("beta", 1.0) * ins[2][0]
        return [(y, elem)]

    def op_MatMul(self, ins, attrs, nout):
        return [(torch.matmul(ins[0][0], ins[1][0]), ins[0][1])]

    # -- ops: elementwise ---------------------------------------------------------------------
    def _binary(self, ins, fn):
        (a, ea), (b, eb) = ins
        if ea != eb:
            raise EvalError("binary op with mixed dtypes")
        return [(fn(a, b), ea)]

    def op_Add(self, ins, attrs, nout):
        return self._binary(ins, torch.add)

    def op_Sub(self, ins, attrs, nout):
        return self._binary(ins, torch.sub)

    def op_Mul(self, ins, attrs, nout):
        return self._binary(ins, torch.mul)

    def op_Div(self, ins, attrs, nout):
        if ins[0][1] in _FLOATS:
            return self._binary(ins, torch.div)
        return self._binary(ins, lambda a, b: torch.div(a, b, rounding_mode="trunc"))

    def op_Relu(self, ins, attrs, nout):
        return [(torch.relu(ins[0][0]), ins[0][1])]

    def op_LeakyRelu(self, ins, attrs, nout):
        return [(F.leaky_relu(ins[0][0], attrs.get("alpha", 0.01)), ins[0][1])]

    def op_Sigmoid(self, ins, attrs, nout):
        return [(torch.sigmoid(ins[0][0]), ins[0][1])]

    def op_Tanh(self, ins, attrs, nout):
        return [(torch.tanh(ins[0][0]), ins[0][1])]

    def op_Neg(self, ins, attrs, nout):
        return [(-ins[0][0], ins[0][1])]

    def op_Identity(self, ins, attrs, nout):
        return [ins[0]]

    # -- ops: softmax family (opset < 13: coerce to 2-D at axis; >= 13: one axis) ------------
    def _softmax(self, ins, attrs, fn):
        x, elem = ins[0]
        r = x.dim()
        if self.opset < 13:
            axis = attrs.get("axis", 1)
            axis = axis + r if axis < 0 else axis
            shape = list(x.shape)
            x2 = x.reshape(_prod(shape[:axis]), _prod(shape[axis:]))
            return [(fn(x2, dim=1).reshape(shape), elem)]
        axis = attrs.get("axis", -1)
        return [(fn(x, dim=axis), elem)]

    def op_Softmax(self, ins, attrs, nout):
        return self._softmax(ins, attrs, torch.softmax)

    def op_LogSoftmax(self, ins, attrs, nout):
        return self._softmax(ins, attrs, torch.log_softmax)

    # -- ops: data movement -------------------------------------------------------------------
    def op_Flatten(self, ins, attrs, nout):
        x, elem = ins[0]
        r = x.dim()
        axis = attrs.get("axis", 1)
        axis = axis + r if axis < 0 else axis
        shape = list(x.shape)
        return [(x.reshape(_prod(shape[:axis]), _prod(shape[axis:])), elem)]

    def op_Reshape(self, ins, attrs, nout):
        x, elem = ins[0]
        if self.opset < 5:
            raise EvalError("Reshape-1 (shape attribute) not supported")
        shape = self._ints(ins[1])
        allowzero = attrs.get("allowzero", 0)
        out = []
        for i, d in enumerate(shape):
            out.append(int(x.shape[i]) if (d == 0 and not allowzero) else d)
        return [(x.reshape(out), elem)]

    def op_Transpose(self, ins, attrs, nout):
        x, elem = ins[0]
        perm = attrs.get("perm", list(range(x.dim()))[::-1])
        return [(x.permute(*perm), elem)]

    def _axes(self, ins, attrs) -> Optional[List[int]]:
        if self.opset < 13:
            return list(attrs["axes"]) if "axes" in attrs else None
        if len(ins) > 1 and ins[1] is not None:
            return self._ints(ins[1])
        return None

    def op_Squeeze(self, ins, attrs, nout):
        x, elem = ins[0]
        r = x.dim()
        axes = self._axes(ins, attrs)
        shape = list(x.shape)
        if axes is None:
            drop = {i for i, d in enumerate(shape) if d == 1}
        else:
            drop = {a + r if a < 0 else a for a in axes}
            for a in drop:
                if shape[a] != 1:
                    raise EvalError(f"Squeeze of axis {a} with size {shape[a]}")
        return [(x.reshape([d for i, d in enumerate(shape) if i not in drop]), elem)]

    def op_Unsqueeze(self, ins, attrs, nout):
        x, elem = ins[0]
        axes = self._axes(ins, attrs)
        if axes is None:
            raise EvalError("Unsqueeze without axes")
        r = x.dim() + len(axes)
        for a in sorted(a + r if a < 0 else a for a in axes):
            x = x.unsqueeze(a)
        return [(x, elem)]

    def op_Concat(self, ins, attrs, nout):
        vals = [v for v in ins if v is not None]
        axis = attrs["axis"]
        return [(torch.cat([t for t, _ in vals], dim=axis), vals[0][1])]

    # -- ops: constants, casts, dropout -------------------------------------------------------
    def op_Constant(self, ins, attrs, nout):
        if "value" in attrs:
            tp = attrs["value"]
            return [(self.from_numpy(numpy_helper.to_array(tp), tp.data_type), tp.data_type)]
        if "value_float" in attrs:
            return [(self.from_numpy(np.float32(attrs["value_float"]), TensorProto.FLOAT),
                     TensorProto.FLOAT)]
        if "value_floats" in attrs:
            return [(self.from_numpy(np.array(attrs["value_floats"], np.float32),
                                     TensorProto.FLOAT), TensorProto.FLOAT)]
        if "value_int" in attrs:
            return [(self.from_numpy(np.int64(attrs["value_int"]), TensorProto.INT64),
                     TensorProto.INT64)]
        if "value_ints" in attrs:
            return [(self.from_numpy(np.array(attrs["value_ints"], np.int64), TensorProto.INT64),
                     TensorProto.INT64)]
        raise EvalError(f"Constant with attributes {sorted(attrs)} not supported")

    def op_Cast(self, ins, attrs, nout):
        x, _ = ins[0]
        to = attrs["to"]
        if to == TensorProto.FLOAT:
            y = x.to(torch.float32).to(self.storage(to))  # round through float32
        else:
            y = x.to(self.storage(to))
        return [(y, to)]

    def op_Dropout(self, ins, attrs, nout):
        x, elem = ins[0]
        if self.opset < 12:
            ratio = float(attrs.get("ratio", 0.5))
            training = self.training
        else:
            ratio = float(ins[1][0].item()) if len(ins) > 1 and ins[1] is not None else 0.5
            training = self.training or (len(ins) > 2 and ins[2] is not None
                                         and bool(ins[2][0].item()))
        if training and ratio != 0.0:
            raise EvalError(f"Dropout with ratio {ratio} in training form: RNG-dependent, "
                            "the oracle needs ratio 0")
        outs = [(x, elem)]
        if nout > 1:
            if self.opset >= 10:
                outs.append((torch.ones(x.shape, dtype=torch.bool), TensorProto.BOOL))
            else:
                outs.append((torch.ones(x.shape, dtype=x.dtype), elem))
        return outs


    # -- ops: convolutional networks (2-D, NCHW) ----------------------------------------------
    @staticmethod
    def _str(attrs, name: str, default: str) -> str:
        v = attrs.get(name, default)
        return v.decode() if isinstance(v, bytes) else v

    def _window(self, attrs, hw: List[int], kernel: List[int], ceil_ok: bool):
        """Strides, dilations, pads [top, left, bottom, right] and output H, W of a window
        op, per the ONNX attributes (auto_pad resolved; ceil_mode drops a last window that
        would start in the end padding)."""
        strides = list(attrs.get("strides", [1, 1]))
        dil = list(attrs.get("dilations", [1, 1]))
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        auto = self._str(attrs, "auto_pad", "NOTSET")
        ceil = bool(attrs.get("ceil_mode", 0)) if ceil_ok else False
        if len(kernel) != 2 or len(strides) != 2 or len(dil) != 2 or len(pads) != 4:
            raise EvalError("only 2-D windows are supported")
        out = [0, 0]
        for i in range(2):
            eff = dil[i] * (kernel[i] - 1) + 1
            if auto in ("SAME_UPPER", "SAME_LOWER"):
                out[i] = -(-hw[i] // strides[i])
                total = max(0, (out[i] - 1) * strides[i] + eff - hw[i])
                small, big = total // 2, total - total // 2
                pads[i], pads[i + 2] = (big, small) if auto == "SAME_LOWER" else (small, big)
                continue
            if auto == "VALID":
                pads[i] = pads[i + 2] = 0
            elif auto != "NOTSET":
                raise EvalError(f"auto_pad {auto}")
            span = hw[i] + pads[i] + pads[i + 2] - eff
            if span < 0:
                raise EvalError("window larger than the padded input")
            out[i] = (-(-span // strides[i]) if ceil else span // strides[i]) + 1
            if ceil and (out[i] - 1) * strides[i] >= hw[i] + pads[i]:
                out[i] -= 1
        return strides, dil, pads, out

    @staticmethod
    def _pad_to(x: torch.Tensor, pads, strides, dil, kernel, out, value: float):
        """x padded by pads' begins and cut or extended at the end so that an unpadded
        window op with floor rounding gives exactly out positions."""
        ends = []
        for i in range(2):
            extent = (out[i] - 1) * strides[i] + dil[i] * (kernel[i] - 1) + 1
            ends.append(extent - x.shape[2 + i] - pads[i])
        return F.pad(x, [pads[1], ends[1], pads[0], ends[0]], value=value)

    def op_Conv(self, ins, attrs, nout):
        (x, elem), (w, _) = ins[0], ins[1]
        kernel = list(attrs.get("kernel_shape", list(w.shape[2:])))
        if kernel != list(w.shape[2:]):
            raise EvalError(f"kernel_shape {kernel} != W's {list(w.shape[2:])}")
        strides, dil, pads, out = self._window(attrs, list(x.shape[2:]), kernel, False)
        bias = ins[2][0] if len(ins) > 2 and ins[2] is not None else None
        xp = self._pad_to(x, pads, strides, dil, kernel, out, 0.0)
        y = F.conv2d(xp, w, bias, stride=strides, dilation=dil, groups=attrs.get("group", 1))
        assert list(y.shape[2:]) == out, (list(y.shape), out)
        return [(y, elem)]

    def _torch_pool_args(self, attrs, kernel, pads):
        """(padding) when torch's own pool expresses these pads, else None."""
        if self._str(attrs, "auto_pad", "NOTSET") != "NOTSET":
            return None
        if pads[0] != pads[2] or pads[1] != pads[3]:
            return None
        if any(pads[i] > kernel[i] // 2 for i in range(2)):
            return None
        return [pads[0], pads[1]]

    def op_MaxPool(self, ins, attrs, nout):
        x, elem = ins[0]
        if nout > 1:
            raise EvalError("MaxPool's Indices output")
        if attrs.get("storage_order", 0):
            raise EvalError("storage_order only matters for Indices")
        kernel = list(attrs["kernel_shape"])
        strides, dil, pads, out = self._window(attrs, list(x.shape[2:]), kernel,
                                               self.opset >= 10)
        xp = self._pad_to(x, pads, strides, dil, kernel, out, -math.inf)
        y = F.max_pool2d(xp, kernel, strides, 0, dil)
        if bool(torch.isinf(y).any()):
            raise EvalError("a MaxPool window lies entirely in the padding")
        tp = self._torch_pool_args(attrs, kernel, pads)
        if tp is not None:
            ref = F.max_pool2d(x, kernel, strides, tp, dil,
                               ceil_mode=bool(attrs.get("ceil_mode", 0)))
            assert ref.shape == y.shape and torch.equal(ref, y), "MaxPool vs torch"
        return [(y, elem)]

    def op_AveragePool(self, ins, attrs, nout):
        x, elem = ins[0]
        kernel = list(attrs["kernel_shape"])
        if list(attrs.get("dilations", [1, 1])) != [1, 1]:
            raise EvalError("AveragePool dilations (opset 19)")
        strides, dil, pads, out = self._window(attrs, list(x.shape[2:]), kernel,
                                               self.opset >= 10)
        include = attrs.get("count_include_pad", 0)
        taps = kernel[0] * kernel[1]
        xp = self._pad_to(x, pads, strides, dil, kernel, out, 0.0)
        sums = F.avg_pool2d(xp, kernel, strides, 0) * taps
        # the divisor: the window's taps inside X, or inside X and its declared pads
        h, w = x.shape[2], x.shape[3]
        if include:
            ones = torch.ones(1, 1, h + pads[0] + pads[2], w + pads[1] + pads[3],
                              dtype=x.dtype)
            mask = self._pad_to(ones, [0, 0, 0, 0], strides, dil, kernel, out, 0.0)
        else:
            mask = self._pad_to(torch.ones(1, 1, h, w, dtype=x.dtype), pads, strides, dil,
                                kernel, out, 0.0)
        count = torch.round(F.avg_pool2d(mask, kernel, strides, 0) * taps)
        if bool((count == 0).any()):
            raise EvalError("an AveragePool window covers no element")
        y = sums / count
        tp = self._torch_pool_args(attrs, kernel, pads)
        if tp is not None:
            ref = F.avg_pool2d(x, kernel, strides, tp, ceil_mode=bool(attrs.get("ceil_mode", 0)),
                               count_include_pad=bool(include))
            tol = 1e-12 if y.dtype == torch.float64 else 1e-5
            assert ref.shape == y.shape and torch.allclose(ref, y, rtol=tol, atol=tol), \
                "AveragePool vs torch"
        return [(y, elem)]

    def op_GlobalAveragePool(self, ins, attrs, nout):
        x, elem = ins[0]
        return [(x.mean(dim=tuple(range(2, x.dim())), keepdim=True), elem)]

    def op_GlobalMaxPool(self, ins, attrs, nout):
        x, elem = ins[0]
        if x.dim() != 4:
            raise EvalError("GlobalMaxPool of a non-4-D input")
        return [(F.max_pool2d(x, list(x.shape[2:])), elem)]   # first maximum takes the grad

    def op_BatchNormalization(self, ins, attrs, nout):
        (x, elem), (scale, _), (bias, _), (mean, _), (var, _) = ins
        if self.opset < 9 and attrs.get("spatial", 1) != 1:
            raise EvalError("BatchNormalization spatial=0")
        eps = attrs.get("epsilon", 1e-5)
        mom = attrs.get("momentum", 0.9)
        if self.opset >= 14:
            node_training = bool(attrs.get("training_mode", 0))
        else:
            node_training = nout > 1
        shape = [1, -1] + [1] * (x.dim() - 2)
        axes = [0] + list(range(2, x.dim()))
        if not (self.training or node_training):
            y = (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps)
            return [(y * scale.reshape(shape) + bias.reshape(shape), elem)]
        bm = x.mean(dim=axes)
        bv = ((x - bm.reshape(shape)) ** 2).mean(dim=axes)     # biased (population)
        y = (x - bm.reshape(shape)) / torch.sqrt(bv.reshape(shape) + eps)
        y = y * scale.reshape(shape) + bias.reshape(shape)
        rm = mean * mom + bm * (1 - mom)
        rv = var * mom + bv * (1 - mom)
        node_ins = self._node.input
        for name, t in ((node_ins[3], rm), (node_ins[4], rv)):
            if name in self.state_names:
                if name in self.state:
                    raise EvalError(f"running statistic {name} updated twice")
                self.state[name] = t.detach()
        outs = [(y, elem), (rm, elem), (rv, elem), (bm, elem), (bv, elem)]
        return outs[:nout]

    def op_Pad(self, ins, attrs, nout):
        x, elem = ins[0]
        if self._str(attrs, "mode", "constant") != "constant":
            raise EvalError("Pad mode " + self._str(attrs, "mode", "constant"))
        if self.opset < 11:
            pads = list(attrs["pads"])
            value = float(attrs.get("value", 0.0))
        else:
            pads = self._ints(ins[1])
            value = 0.0
            if len(ins) > 2 and ins[2] is not None:
                value = float(ins[2][0].reshape(-1)[0].item())
        r = x.dim()
        if len(pads) != 2 * r:
            raise EvalError(f"Pad: {len(pads)} pads for rank {r}")
        tp = []
        for d in reversed(range(r)):
            tp += [pads[d], pads[d + r]]
        return [(F.pad(x, tp, value=value), elem)]

    def op_Clip(self, ins, attrs, nout):
        x, elem = ins[0]
        if self.opset < 11:
            lo, hi = attrs.get("min"), attrs.get("max")
        else:
            lo = ins[1][0].reshape(-1)[0].item() if len(ins) > 1 and ins[1] is not None else None
            hi = ins[2][0].reshape(-1)[0].item() if len(ins) > 2 and ins[2] is not None else None
        if elem not in _FLOATS:
            raise EvalError("integer Clip")
        if lo is None and hi is None:
            return [(x, elem)]
        if lo is not None and hi is not None and lo > hi:
            lo = hi    # ONNX: all values become max
        return [(torch.clamp(x, min=lo, max=hi), elem)]
