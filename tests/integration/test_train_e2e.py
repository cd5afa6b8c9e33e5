#!/usr/bin/python3
"""test_train_e2e.py: end-to-end training of examples/mlp on Fashion-MNIST (default backend).

Trains one epoch with the fp32 recipe (SGD with momentum) and with lns-madam, and asserts the
test accuracies the foundation issue sets (>= 0.82 and >= 0.80). Then checks determinism: the
same seed gives byte-identical metrics twice (on shorter runs, --steps, to keep the suite fast).
Prints the per-epoch lines and the wall time of each run.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lnsctest import check, finish, train as lnsc_train  # noqa: E402

SRC = os.environ["LNSC_SRC"]
MODEL = os.path.join(SRC, "examples", "mlp", "mlp.onnx")


def train(recipe, extra, metrics):
    return lnsc_train(MODEL, recipe, extra, metrics)


with tempfile.TemporaryDirectory() as tmp:
    for recipe, target in (("fp32", 0.82), ("lns-madam", 0.80)):
        rows, dt = train(recipe, ["--epochs", "1"], os.path.join(tmp, recipe + ".csv"))
        acc = float(rows[-1]["test_acc"])
        print("%s: 1 epoch, test accuracy %.4f, %.1f s" % (recipe, acc, dt))
        check(acc >= target, "%s test accuracy %.4f >= %.2f" % (recipe, acc, target))
    for recipe in ("fp32", "lns-madam"):
        a, _ = train(recipe, ["--steps", "150"], os.path.join(tmp, "a.csv"))
        b, _ = train(recipe, ["--steps", "150"], os.path.join(tmp, "b.csv"))
        strip = lambda rows: [(r["train_loss"], r["test_loss"], r["test_acc"]) for r in rows]
        check(strip(a) == strip(b), "%s: same seed, same numbers (%s)" % (recipe, strip(a)))
        c, _ = train(recipe, ["--steps", "150", "--seed", "1"], os.path.join(tmp, "c.csv"))
        check(strip(a) != strip(c), "%s: another seed, other numbers" % recipe)

sys.exit(finish("train e2e"))
