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
"""
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
])

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
    def run(self, feeds: Dict[str, np.ndarray]) -> Dict[str, Value]:
        g = self.model.graph
        init_names = set()
        for init in g.initializer:
            arr = numpy_helper.to_array(init)
            t = self.from_numpy(arr, init.data_type)
            if init.data_type == TensorProto.FLOAT:
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
