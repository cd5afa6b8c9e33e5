#!/usr/bin/python3
"""test_compile.py: `lnsc compile` outputs: executable, static library + header, obj/asm/llvm, AArch64.

- exe: the standalone trainer built from examples/mlp gives the same numbers as `lnsc train`
  (same code, JIT vs ahead of time) for a short run, for fp32 and lns-madam.
- lib: the generated example program builds against the library and header, trains (the loss
  falls), saves and loads a checkpoint.
- obj/asm/llvm: files exist; the assembly uses zmm registers for x86-64-v4, ymm for x86-64-v3.
- aarch64: a tiny MLP's and a tiny CNN's trainers (Conv, BatchNormalization, Relu, MaxPool,
  GlobalAveragePool, Gemm) cross-compiled for aarch64-linux-gnu run under qemu-aarch64 on tiny
  NPY datasets and match the x86-64 trainers' numbers (fp32 within 1e-4 relative; lns-madam:
  loss within 2 %, since fp32 accumulation order differs with the vector width).
"""
import os
import re
import shutil
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lnsctest import check, finish, run  # noqa: E402

LNSC = os.environ["LNSC_BIN"]
SRC = os.environ["LNSC_SRC"]
MLP = os.path.join(SRC, "examples", "mlp", "mlp.onnx")
def epoch_numbers(text):
    """(train_loss, test_loss, test_acc) of every epoch line."""
    return re.findall(r"train_loss (\S+)\s+test_loss (\S+)\s+test_acc (\S+)", text)


def tiny_model(path):
    rng = np.random.RandomState(0)
    w1 = numpy_helper.from_array((rng.randn(8, 16) * 0.3).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(np.zeros(8, np.float32), "b1")
    w2 = numpy_helper.from_array((rng.randn(4, 8) * 0.3).astype(np.float32), "w2")
    b2 = numpy_helper.from_array(np.zeros(4, np.float32), "b2")
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "w1", "b1"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["logits"], transB=1)]
    g = helper.make_graph(nodes, "tiny",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4])],
                          initializer=[w1, b1, w2, b2])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)


def tiny_cnn(path):
    """x [N,1,6,6]: Conv(1->3, 3x3, pad 1)-BN-Relu-MaxPool(2)-Conv(3->4, 3x3, pad 1)-BN-Relu-
    GlobalAveragePool-Flatten-Gemm(4->4), BatchNormalization in training mode (opset 13)."""
    rng = np.random.RandomState(2)

    def t(name, a):
        return numpy_helper.from_array(np.asarray(a, np.float32), name)

    inits = [t("c1w", rng.randn(3, 1, 3, 3) * 0.5), t("c1b", np.zeros(3)),
             t("s1", np.ones(3)), t("h1", np.zeros(3)), t("m1", np.zeros(3)), t("v1", np.ones(3)),
             t("c2w", rng.randn(4, 3, 3, 3) * 0.3), t("s2", np.ones(4)), t("h2", np.zeros(4)),
             t("m2", np.zeros(4)), t("v2", np.ones(4)),
             t("fw", rng.randn(4, 4) * 0.5), t("fb", np.zeros(4))]
    nodes = [helper.make_node("Conv", ["x", "c1w", "c1b"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["a", "s1", "h1", "m1", "v1"],
                              ["b", "m1o", "v1o"], training_mode=1),
             helper.make_node("Relu", ["b"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p", "c2w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s2", "h2", "m2", "v2"],
                              ["d", "m2o", "v2o"], training_mode=1),
             helper.make_node("Relu", ["d"], ["e"]),
             helper.make_node("GlobalAveragePool", ["e"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1)]
    g = helper.make_graph(nodes, "tinycnn",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 6, 6])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4])],
                          initializer=inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 15)]), path)


def tiny_data(d, side=4):
    os.makedirs(d)
    rng = np.random.RandomState(1)
    for split, n in (("train", 64), ("test", 16)):
        y = rng.randint(0, 4, n).astype(np.int64)
        x = rng.rand(n, side, side).astype(np.float32) * 0.2
        for i in range(n):
            x[i, y[i], :] += 0.8  # a learnable pattern: the row of the class is bright
        np.save(os.path.join(d, "x_%s.npy" % split), x)
        np.save(os.path.join(d, "y_%s.npy" % split), y)


def test_exe(tmp):
    for recipe in ("fp32", "lns-madam"):
        exe = os.path.join(tmp, "mlp_" + recipe)
        p = run([LNSC, "compile", MLP, "-o", exe, "--emit", "exe", "--recipe", recipe])
        check(p.returncode == 0 and os.access(exe, os.X_OK), "compile --emit exe (%s)" % recipe,
              p.stderr)
        if p.returncode:
            continue
        args = ["--steps", "120", "--seed", "3", "--no-progress", "--threads", "1"]
        a = run([exe] + args)
        b = run([LNSC, "train", MLP, "--recipe", recipe] + args)
        na, nb = epoch_numbers(a.stdout), epoch_numbers(b.stdout)
        check(a.returncode == 0 and na and na == nb,
              "exe and `lnsc train` give the same numbers (%s): %s" % (recipe, na), nb)
        bad = run([exe, "--epochs", "zero"])
        check(bad.returncode == 2 and "--epochs" in bad.stderr, "exe rejects bad flags")


def test_lib(tmp):
    out = os.path.join(tmp, "libmlp.a")
    p = run([LNSC, "compile", MLP, "-o", out, "--emit", "lib", "--recipe", "lns-madam"])
    hdr, ex = os.path.join(tmp, "libmlp.h"), os.path.join(tmp, "libmlp_example.c")
    check(p.returncode == 0 and all(map(os.path.exists, (out, hdr, ex))), "compile --emit lib",
          p.stderr)
    if p.returncode:
        return
    text = open(hdr).read()
    for fn in ("mlp_create", "mlp_train_step", "mlp_eval_step", "mlp_save", "mlp_load", "mlp_free"):
        check(fn in text, "header declares " + fn)
    exe = os.path.join(tmp, "example")
    c = run(["cc", "-O2", "-I", tmp, ex, out, "-lz", "-lm", "-lpthread", "-o", exe])
    check(c.returncode == 0, "the example program builds with cc", c.stderr)
    if c.returncode == 0:
        r = run([exe, os.path.join(tmp, "ex.ckpt")], cwd=tmp)
        check(r.returncode == 0 and "->" in r.stdout, "the example trains, saves and loads",
              r.stdout + r.stderr)


def test_emit(tmp):
    for kind, cpu, needle in (("asm", "x86-64-v4", "zmm"), ("asm", "x86-64-v3", "ymm"),
                              ("llvm", "x86-64-v3", "define"), ("obj", "x86-64-v3", None)):
        out = os.path.join(tmp, "mlp.%s.%s" % (cpu, kind))
        p = run([LNSC, "compile", MLP, "-o", out, "--emit", kind, "--cpu", cpu])
        ok = p.returncode == 0 and os.path.exists(out)
        if ok and needle:
            ok = needle in open(out, errors="replace").read()
        check(ok, "compile --emit %s --cpu %s%s" % (kind, cpu, " has " + needle if needle else ""),
              p.stderr)
    p = run([LNSC, "compile", MLP, "-o", os.path.join(tmp, "x"), "--emit", "wasm"])
    check(p.returncode == 2 and "--emit" in p.stderr, "unknown --emit is a usage error")
    p = run([LNSC, "compile", MLP, "-o", os.path.join(tmp, "x"), "--target", "sparc-sun-none"])
    check(p.returncode != 0 and "sparc" in p.stderr, "unknown target is an error")


def test_aarch64(tmp):
    if not shutil.which("qemu-aarch64") or not os.path.isdir("/usr/aarch64-linux-gnu"):
        check(False, "aarch64: qemu-aarch64 and the aarch64 cross libc are needed "
                     "(scripts/setup.sh --tests installs them)")
        return
    cases = []
    for name, make, side in (("tiny", tiny_model, 4), ("tinycnn", tiny_cnn, 6)):
        model, data = os.path.join(tmp, name + ".onnx"), os.path.join(tmp, name + "_data")
        make(model)
        tiny_data(data, side)
        cases += [(name, model, data, recipe) for recipe in ("fp32", "lns-madam")]
    for name, model, data, recipe in cases:
        x86 = os.path.join(tmp, "%s_x86_%s" % (name, recipe))
        arm = os.path.join(tmp, "%s_arm_%s" % (name, recipe))
        common = ["--emit", "exe", "--recipe", recipe, "--batch", "8"]
        p1 = run([LNSC, "compile", model, "-o", x86] + common)
        p2 = run([LNSC, "compile", model, "-o", arm, "--target", "aarch64-linux-gnu"] + common)
        check(p1.returncode == 0 and p2.returncode == 0, "compile %s for x86-64 and aarch64 "
              "(%s)" % (name, recipe), p1.stderr + p2.stderr)
        if p1.returncode or p2.returncode:
            continue
        info = run(["file", arm]).stdout
        check("aarch64" in info.lower() or "arm" in info.lower(), "the aarch64 binary is AArch64", info)
        args = ["--data", data, "--epochs", "2", "--seed", "0", "--no-progress", "--threads", "1"]
        a = run([x86] + args)
        b = run(["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", arm] + args, timeout=1200)
        na, nb = epoch_numbers(a.stdout), epoch_numbers(b.stdout)
        tol = 1e-4 if recipe == "fp32" else 2e-2
        same = bool(na) and len(na) == len(nb) and all(
            abs(float(x[0]) - float(y[0])) <= tol * max(1e-3, abs(float(x[0])))
            for x, y in zip(na, nb))
        check(b.returncode == 0 and same, "aarch64 under qemu matches x86-64 (%s %s): %s vs %s" %
              (name, recipe, nb, na), b.stderr)


with tempfile.TemporaryDirectory() as tmp:
    test_emit(tmp)
    test_exe(tmp)
    test_lib(tmp)
    test_aarch64(tmp)
sys.exit(finish("compile"))
