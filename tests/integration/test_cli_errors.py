#!/usr/bin/python3
"""test_cli_errors.py: every bad input to the lnsc command gives a clear error and the right exit code.

Exit codes: 2 for malformed input or bad usage, 3 for valid ONNX outside what lnsc supports,
never a crash (a signal) and never a Python-style traceback of ours. Malformed models are made
here from examples/mlp/mlp.onnx (truncated at many lengths, garbage, empty) and with onnx.helper.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LNSC = os.environ["LNSC_BIN"]
SRC = os.environ["LNSC_SRC"]
MLP = os.path.join(SRC, "examples", "mlp", "mlp.onnx")
passes = failures = 0


def run(args):
    return subprocess.run([LNSC] + args, capture_output=True, text=True, timeout=120)


def expect(args, code, needle, what):
    global passes, failures
    p = run(args)
    ok = p.returncode == code and needle in p.stderr and "lnsc" in p.stderr
    if ok:
        passes += 1
    else:
        failures += 1
        print("FAIL: %s: exit %d (want %d), stderr: %s" % (what, p.returncode, code, p.stderr[:400]))
    return p


def model_with(nodes, inputs, outputs, inits=(), opset=13):
    g = helper.make_graph(nodes, "m", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


with tempfile.TemporaryDirectory() as tmp:
    data = open(MLP, "rb").read()
    # truncated at many lengths: never a crash, always exit 2 (or success for a valid prefix)
    crashes = 0
    for n in list(range(0, 200, 7)) + [len(data) // 3, len(data) // 2, len(data) - 1]:
        path = os.path.join(tmp, "trunc.onnx")
        open(path, "wb").write(data[:n])
        p = run(["inspect", path])
        if p.returncode < 0 or p.returncode not in (0, 2, 3):
            crashes += 1
            print("FAIL: truncated at %d: exit %d %s" % (n, p.returncode, p.stderr[:300]))
    passes += crashes == 0
    failures += crashes != 0
    garbage = os.path.join(tmp, "garbage.onnx")
    open(garbage, "wb").write(bytes(np.random.RandomState(0).randint(0, 256, 5000, dtype=np.uint8)))
    expect(["inspect", garbage], 2, "garbage.onnx", "garbage file")
    empty = os.path.join(tmp, "empty.onnx")
    open(empty, "wb").close()
    expect(["inspect", empty], 2, "empty.onnx", "empty file")
    expect(["inspect", os.path.join(tmp, "missing.onnx")], 2, "missing.onnx", "missing file")
    expect(["inspect", tmp], 2, tmp, "a directory")

    # unsupported ops: one error naming every node
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
    m = model_with([helper.make_node("ConvTranspose", ["x", "w"], ["c"], name="conv_a"),
                    helper.make_node("LpPool", ["c"], ["y"], name="pool_b", kernel_shape=[2, 2])],
                   [x], [y], [w])
    path = os.path.join(tmp, "unsup.onnx")
    onnx.save(m, path)
    p = expect(["inspect", path], 3, "conv_a", "unsupported ops listed")
    if "pool_b" not in p.stderr:
        failures += 1
        print("FAIL: the unsupported-op error does not name pool_b:", p.stderr)

    # unknown tensor reference, cycle, absurd dims, bad attribute type
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 3])
    o = helper.make_tensor_value_info("o", TensorProto.FLOAT, None)
    cases = {
        "unknown_ref": model_with([helper.make_node("Relu", ["nope"], ["o"], name="r1")], [a], [o]),
        "cycle": model_with([helper.make_node("Relu", ["t2"], ["t1"], name="r1"),
                             helper.make_node("Relu", ["t1"], ["t2"], name="r2"),
                             helper.make_node("Relu", ["a"], ["o"], name="r3")], [a], [o]),
        "absurd": model_with([helper.make_node("Relu", ["b"], ["o"], name="r1")],
                             [helper.make_tensor_value_info("b", TensorProto.FLOAT, [10**12, 10**12])], [o]),
        "bad_attr": model_with([helper.make_node("LeakyRelu", ["a"], ["o"], name="lr", alpha="x")], [a], [o]),
        "shape_mismatch": model_with([helper.make_node("MatMul", ["a", "a"], ["o"], name="mm")], [a], [o]),
    }
    for name, m in cases.items():
        path = os.path.join(tmp, name + ".onnx")
        onnx.save(m, path)
        expect(["inspect", path], 2, name + ".onnx", name)

    # usage errors
    expect(["train"], 2, "MODEL", "train without a model")
    expect(["train", MLP, "--recipe", "int3"], 2, "int3", "unknown recipe")
    expect(["train", MLP, "--epochs", "-1"], 2, "--epochs", "bad epochs")
    expect(["train", MLP, "--lr", "abc"], 2, "--lr", "bad lr")
    expect(["train", MLP, "--bogus", "1"], 2, "--bogus", "unknown flag")
    expect(["frobnicate"], 2, "frobnicate", "unknown command")
    expect(["train", MLP, "--data", os.path.join(tmp, "nodata")], 2, "nodata", "missing data dir")
    expect(["grad", MLP, "-o", tmp], 2, "--labels", "grad without labels")
    lab = os.path.join(tmp, "labels.pb")
    open(lab, "wb").write(numpy_helper.from_array(np.zeros(4, np.int64), "labels").SerializeToString())
    bad_in = os.path.join(tmp, "in.pb")
    open(bad_in, "wb").write(numpy_helper.from_array(np.zeros((4, 3), np.float32), "input").SerializeToString())
    expect(["grad", MLP, "--input", "input=" + bad_in, "--labels", lab, "-o", os.path.join(tmp, "o")],
           2, "input", "input of the wrong shape")
    expect(["grad", MLP, "--input", "input=" + garbage, "--labels", lab, "-o", os.path.join(tmp, "o")],
           2, "garbage.onnx", "input file not a tensor")
    fmt = os.path.join(tmp, "formats.txt")
    open(fmt, "w").write("no_such_tensor lns8g8\n")
    expect(["inspect", MLP, "--formats", fmt], 2, "no_such_tensor", "override of an unknown tensor")

print("cli errors: %d passed, %d failed" % (passes, failures))
sys.exit(1 if failures else 0)
