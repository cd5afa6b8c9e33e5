#!/usr/bin/python3
"""test_export.py: `lnsc export` writes the trained model as ONNX that other runtimes serve.

examples/mlp (fp32 and lns-madam) and examples/cnn (fp32, lns-madam) train a short run with
--checkpoint; the checkpoint is exported; the exported model must pass onnx.checker, keep
every node but with BatchNormalization in inference form (one output, training_mode 0), have
trained initializers (parameters and running statistics changed, everything else identical),
and, evaluated by the PyTorch oracle evaluator (tests/oracle/onnx_torch.py, float64, ONNX
inference semantics) on the Fashion-MNIST test split, reach the test accuracy `lnsc train`
printed: for fp32 within 0.2 point (summation order moves a few borderline images), for
lns-madam within 2 points (lnsc's eval step quantises activations to LNS; the exported model
computes in full precision). Error cases: a checkpoint of another model is refused and writes
nothing; missing arguments are a usage error (exit 2).
"""
import gzip
import os
import re
import sys
import tempfile

import numpy as np
import onnx
import torch
from onnx import numpy_helper

LNSC = os.environ["LNSC_BIN"]
SRC = os.environ["LNSC_SRC"]
sys.path.insert(0, os.path.join(SRC, "tests", "oracle"))
from onnx_torch import Evaluator  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lnsctest import check, finish, run  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"
def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(raw[3])]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * raw[3]).reshape(dims)


def accuracy(path, x, y):
    m = onnx.load(path)
    ev = Evaluator(m, training=False)
    iname, oname = m.graph.input[0].name, m.graph.output[0].name
    right = 0
    with torch.no_grad():
        for i in range(0, len(y), 1000):
            out = ev.run({iname: x[i:i + 1000]})[oname]
            logits = ev.to_numpy(out)
            right += int((logits.argmax(1) == y[i:i + 1000]).sum())
    return right / len(y)


def inits(path):
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


x = (idx(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255.0)
x = x.reshape(-1, 1, 28, 28)
y = idx(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)

with tempfile.TemporaryDirectory() as tmp:
    for name, model in (("mlp", "examples/mlp/mlp.onnx"), ("cnn", "examples/cnn/cnn.onnx")):
        model = os.path.join(SRC, model)
        for recipe, tol in (("fp32", 0.002), ("lns-madam", 0.02)):
            ckpt = os.path.join(tmp, "%s_%s.ckpt" % (name, recipe))
            out = os.path.join(tmp, "%s_%s.onnx" % (name, recipe))
            t = run([LNSC, "train", model, "--recipe", recipe, "--steps", "200", "--seed", "0",
                     "--no-progress", "--checkpoint", ckpt])
            acc = re.findall(r"test_acc (\S+)", t.stdout)
            e = run([LNSC, "export", ckpt, "-m", model, "-o", out])
            check(t.returncode == 0 and acc and e.returncode == 0,
                  "%s %s: train and export" % (name, recipe), t.stderr + e.stdout + e.stderr)
            if e.returncode:
                continue
            m = onnx.load(out)
            onnx.checker.check_model(m, full_check=True)
            orig = onnx.load(model)
            bn = [n for n in m.graph.node if n.op_type == "BatchNormalization"]
            check([n.op_type for n in m.graph.node] == [n.op_type for n in orig.graph.node]
                  and all(len(n.output) == 1 for n in bn)
                  and all(a.i == 0 for n in bn for a in n.attribute if a.name == "training_mode"),
                  "%s %s: same nodes, BatchNormalization in inference form" % (name, recipe))
            a, b = inits(model), inits(out)
            changed = sorted(k for k in a if not np.array_equal(a[k], b[k]))
            stats = [k for k in a if k.endswith("running_mean") or k.endswith("running_var")]
            float_params = [k for k in a if a[k].dtype == np.float32 and a[k].ndim >= 1
                            and k not in stats]
            check(set(changed) == set(float_params + stats) and
                  all(a[k].shape == b[k].shape for k in a),
                  "%s %s: the parameters and running statistics were trained, nothing else "
                  "changed" % (name, recipe), "changed %s" % changed)
            got = accuracy(out, x, y)
            check(abs(got - float(acc[-1])) <= tol,
                  "%s %s: exported model's accuracy %.4f vs lnsc's %s (within %.3f)"
                  % (name, recipe, got, acc[-1], tol))
    mlp_ckpt = os.path.join(tmp, "mlp_fp32.ckpt")
    out = os.path.join(tmp, "wrong.onnx")
    e = run([LNSC, "export", mlp_ckpt, "-m", os.path.join(SRC, "examples/cnn/cnn.onnx"),
             "-o", out])
    check(e.returncode == 1 and "another model" in e.stderr and not os.path.exists(out),
          "a checkpoint of another model is refused, nothing written", e.stderr)
    e = run([LNSC, "export", mlp_ckpt])
    check(e.returncode == 2 and "-m MODEL.onnx" in e.stderr, "missing arguments: usage error")

sys.exit(finish("export"))
