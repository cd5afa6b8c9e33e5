#!/usr/bin/python3
"""gen_node_tests.py: generate ONNX's own node test cases (from python3-onnx) for lnsc's op set.

Design: python3-onnx ships the node test *definitions* (onnx.backend.test.case.node: one
module per op whose export_* functions build a one-node model and its numpy reference
outputs) but not the generated data. Importing those modules runs every export function and
collects the cases (onnx.backend.test.case.node.collect_testcases); each case is then written
the way onnx's own `backend-test-tools generate-data` does: CASE/model.onnx and
CASE/test_data_set_0/{input_i.pb,output_i.pb}. Only cases whose graph uses nothing but lnsc's
supported ops are kept. A case whose opset is below lnsc's 7 (onnx gives each case the
opset where its op was last changed: GlobalAveragePool and GlobalMaxPool are opset 1) is
written with opset 7 when every op in it has that same definition at opset 7, so it tests
the op lnsc supports unchanged; others stay as they are. OUTDIR/index.json describes the
kept cases (ops, opset, the opset onnx gave when it was raised, input and output names and
types) and carries a stamp (this script's hash plus the onnx and numpy
versions) that tests/integration/test_onnx_nodes.py uses to decide whether to regenerate.
The output goes to the build directory and is never committed.

Usage: /usr/bin/python3 tests/onnx_node/gen_node_tests.py OUTDIR [--quiet]
"""
import argparse
import collections
import hashlib
import json
import os
import shutil
import sys
from typing import Optional

import numpy as np

# Debian's numpy 1.24 removed the deprecated scalar aliases (np.bool, np.object, np.int,
# np.float, np.complex, np.str, ...), but the test-case modules of onnx 1.12 still use some of
# them (bernoulli.py: np.float; castlike.py: np.object; the runner: np.object). Restore them,
# as the builtins they used to alias, before anything imports those modules.
for _alias, _builtin in (("bool", bool), ("object", object), ("int", int), ("float", float),
                         ("complex", complex), ("str", str), ("long", int), ("unicode", str)):
    if _alias not in vars(np):  # vars(): plain getattr would warn or raise
        setattr(np, _alias, _builtin)

import onnx  # noqa: E402  (after the numpy aliases)
import onnx.defs  # noqa: E402
from onnx import numpy_helper  # noqa: E402

SUPPORTED_OPS = frozenset([
    "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "Sigmoid", "Tanh",
    "Softmax", "LogSoftmax", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze",
    "Concat", "Identity", "Dropout", "Constant", "Cast", "Neg",
    "Conv", "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool",
    "GlobalMaxPool", "Pad", "Clip",
])
OPSET_MIN = 7  # lnsc supports the default domain's opsets 7 to 17


def raise_opset(model: onnx.ModelProto) -> Optional[int]:
    """Moves a model below OPSET_MIN to OPSET_MIN when each of its ops has the same schema
    there (so the case means the same); returns the old opset, or None if left alone."""
    imports = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if len(imports) != 1 or imports[0].version >= OPSET_MIN:
        return None
    old = imports[0].version
    for n in model.graph.node:
        try:
            since = onnx.defs.get_schema(n.op_type, OPSET_MIN, n.domain).since_version
        except onnx.defs.SchemaError:
            return None
        if since > old:
            return None
    imports[0].version = OPSET_MIN
    return old


def stamp() -> str:
    """Identifies the generator and the library versions the data came from."""
    with open(os.path.abspath(__file__), "rb") as f:
        h = hashlib.sha256(f.read()).hexdigest()[:16]
    return f"gen={h} onnx={onnx.__version__} numpy={np.__version__}"


def type_str(tp: onnx.TypeProto) -> str:
    kind = tp.WhichOneof("value")
    if kind == "tensor_type":
        elem = onnx.TensorProto.DataType.Name(tp.tensor_type.elem_type)
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                for d in tp.tensor_type.shape.dim]
        return f"{elem}{dims}"
    return str(kind)


def serialize_value(value, vi: onnx.ValueInfoProto) -> bytes:
    """One input or output as onnx's generate-data writes it (tensor, sequence, optional)."""
    kind = vi.type.WhichOneof("value")
    if kind == "sequence_type":
        return numpy_helper.from_list(value, vi.name).SerializeToString()
    if kind == "optional_type":
        return numpy_helper.from_optional(value, vi.name).SerializeToString()
    if kind == "map_type":
        return numpy_helper.from_dict(value, vi.name).SerializeToString()
    return numpy_helper.from_array(value, vi.name).SerializeToString()


def prepare_outdir(path: str) -> None:
    """Empty OUTDIR, refusing to delete a non-empty directory this script did not write."""
    if os.path.isdir(path) and os.listdir(path):
        if not os.path.exists(os.path.join(path, "index.json")):
            sys.exit(f"gen_node_tests: {path} is not empty and has no index.json; not deleting it")
        shutil.rmtree(path)
    os.makedirs(path, exist_ok=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", help="output directory (in the build tree)")
    ap.add_argument("--quiet", action="store_true", help="print only the summary line")
    args = ap.parse_args()

    import onnx.backend.test.case.node as node_cases
    cases = sorted(node_cases.collect_testcases(None), key=lambda c: c.name)

    prepare_outdir(args.outdir)
    index = {"stamp": stamp(), "cases": {}}
    kept_per_op = collections.Counter()
    using_per_op = collections.Counter()
    for case in cases:
        ops = [n.op_type for n in case.model.graph.node]
        for op in set(ops) & SUPPORTED_OPS:
            using_per_op[op] += 1
        if not ops or not set(ops) <= SUPPORTED_OPS:
            continue
        if any(n.domain not in ("", "ai.onnx") for n in case.model.graph.node):
            continue
        for op in set(ops):
            kept_per_op[op] += 1
        raised_from = raise_opset(case.model)
        d = os.path.join(args.outdir, case.name)
        os.makedirs(d)
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        g = case.model.graph
        for k, (inputs, outputs) in enumerate(case.data_sets):
            ds = os.path.join(d, f"test_data_set_{k}")
            os.makedirs(ds)
            for j, value in enumerate(inputs):
                with open(os.path.join(ds, f"input_{j}.pb"), "wb") as f:
                    f.write(serialize_value(value, g.input[j]))
            for j, value in enumerate(outputs):
                with open(os.path.join(ds, f"output_{j}.pb"), "wb") as f:
                    f.write(serialize_value(value, g.output[j]))
        opset = [o.version for o in case.model.opset_import if o.domain in ("", "ai.onnx")]
        index["cases"][case.name] = {
            "ops": ops,
            "opset": opset[0] if opset else None,
            "opset_raised_from": raised_from,
            "inputs": [[vi.name, type_str(vi.type)] for vi in g.input],
            "outputs": [[vi.name, type_str(vi.type)] for vi in g.output],
            "data_sets": len(case.data_sets),
        }
    index["per_op"] = {op: {"kept": kept_per_op[op], "using": using_per_op[op]}
                       for op in sorted(SUPPORTED_OPS)}
    # index.json last: its presence with the right stamp marks a complete generation.
    with open(os.path.join(args.outdir, "index.json"), "w") as f:
        json.dump(index, f, indent=1, sort_keys=True)

    if not args.quiet:
        print(f"{'op':<18} {'kept':>5} {'using':>6}   (kept: graph uses only supported ops;"
              " using: any case whose graph contains the op)")
        for op in sorted(SUPPORTED_OPS):
            print(f"{op:<18} {kept_per_op[op]:>5} {using_per_op[op]:>6}")
    print(f"gen_node_tests: {len(cases)} node cases in onnx {onnx.__version__}, "
          f"{len(index['cases'])} kept -> {args.outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
