#!/usr/bin/python3
"""test_train_cnn.py: end-to-end training of the example CNNs on Fashion-MNIST (LLVM backend).

examples/cnn/cnn.onnx (conv-BN-ReLU-pool x2, Gemm) trains one epoch (seed 0, batch 64) with
each recipe and must reach the test accuracy floors below, set under what the recipes reach
(measured: fp32 0.884, lns-madam 0.830, lns-sgd 0.803 after one epoch); the running statistics
the eval step uses must have moved from their initial values (the checkpoint holds them).
examples/cnn/resnet.onnx (two residual blocks, global average pool) trains 150 steps with
lns-madam and must beat chance clearly. The same seed twice gives byte-identical metrics.
Prints the per-epoch lines and each run's wall time.
"""
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lnsctest import check, finish, run, train  # noqa: E402

LNSC = os.environ["LNSC_BIN"]
SRC = os.environ["LNSC_SRC"]
CNN = os.path.join(SRC, "examples", "cnn", "cnn.onnx")
RESNET = os.path.join(SRC, "examples", "cnn", "resnet.onnx")
FLOORS = {"fp32": 0.86, "lns-madam": 0.81, "lns-sgd": 0.76}
def running_mean_moved(ckpt):
    """The first BatchNormalization's running mean in the checkpoint differs from its initial
    zeros (lnsc export writes the trained model with it)."""
    out = ckpt + ".onnx"
    if run([LNSC, "export", ckpt, "-m", CNN, "-o", out], timeout=300).returncode != 0:
        return False
    import onnx
    from onnx import numpy_helper
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(out).graph.initializer}
    before = {t.name: numpy_helper.to_array(t) for t in onnx.load(CNN).graph.initializer}
    names = [n for n in inits if n.endswith("running_mean")]
    return bool(names) and all(np.abs(inits[n] - before[n]).max() > 1e-3 for n in names)


with tempfile.TemporaryDirectory() as tmp:
    for recipe, floor in FLOORS.items():
        ckpt = os.path.join(tmp, recipe + ".ckpt")
        rows, dt = train(CNN, recipe, ["--epochs", "1", "--checkpoint", ckpt],
                         os.path.join(tmp, recipe + ".csv"))
        acc = float(rows[-1]["test_acc"])
        print("cnn %s: 1 epoch, test accuracy %.4f, %.1f s" % (recipe, acc, dt))
        check(acc >= floor, "cnn %s test accuracy %.4f >= %.2f" % (recipe, acc, floor))
        if recipe == "lns-madam":
            check(running_mean_moved(ckpt), "cnn lns-madam: the running means were trained")
    rows, dt = train(RESNET, "lns-madam", ["--steps", "150"], os.path.join(tmp, "res.csv"))
    acc = float(rows[-1]["test_acc"])
    print("resnet lns-madam: 150 steps, test accuracy %.4f, %.1f s" % (acc, dt))
    check(acc >= 0.45, "resnet lns-madam test accuracy %.4f >= 0.45 after 150 steps" % acc)
    a, _ = train(CNN, "lns-madam", ["--steps", "60"], os.path.join(tmp, "a.csv"))
    b, _ = train(CNN, "lns-madam", ["--steps", "60"], os.path.join(tmp, "b.csv"))
    strip = lambda rows: [(r["train_loss"], r["test_loss"], r["test_acc"]) for r in rows]
    check(strip(a) == strip(b), "cnn: same seed, same numbers (%s)" % strip(a))

sys.exit(finish("train cnn"))
