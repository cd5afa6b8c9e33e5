#!/usr/bin/python3
"""test_resume.py: `lnsc train --checkpoint/--resume`: a run stopped at step k and resumed ends
with exactly the state of an uninterrupted run (byte-identical checkpoints), on the native
backend for both recipes; and a corrupted checkpoint is refused with a clear error."""
import os
import subprocess
import sys
import tempfile

LNSC = os.environ["LNSC_BIN"]
MLP = os.path.join(os.environ["LNSC_SRC"], "examples", "mlp", "mlp.onnx")
passes = failures = 0


def train(*args):
    p = subprocess.run([LNSC, "train", MLP, "--no-progress", "--threads", "1"] + list(args),
                       capture_output=True, text=True, timeout=600)
    if p.returncode:
        print(p.stdout, p.stderr)
    return p


def check(cond, what):
    global passes, failures
    passes += bool(cond)
    failures += not cond
    print(("ok: " if cond else "FAIL: ") + what)


with tempfile.TemporaryDirectory() as t:
    for recipe in ("fp32", "lns-madam"):
        full, part, res = (os.path.join(t, n + recipe) for n in ("full", "part", "res"))
        a = train("--recipe", recipe, "--steps", "200", "--checkpoint", full)
        b = train("--recipe", recipe, "--steps", "70", "--checkpoint", part)
        c = train("--recipe", recipe, "--steps", "200", "--resume", part, "--checkpoint", res)
        same = all(p.returncode == 0 for p in (a, b, c)) and \
            open(full, "rb").read() == open(res, "rb").read()
        check(same, "%s: resumed at step 70 of 200 == uninterrupted (byte-identical state)" % recipe)
        nums = lambda p: p.stdout.splitlines()[-1].split("time")[0]
        check(nums(a) == nums(c), "%s: same final losses and accuracy: %s" % (recipe, nums(c)))
    data = bytearray(open(full, "rb").read())
    data[len(data) // 2] ^= 0x40
    bad = os.path.join(t, "bad.ckpt")
    open(bad, "wb").write(bytes(data))
    p = train("--recipe", "lns-madam", "--steps", "10", "--resume", bad)
    check(p.returncode != 0 and "bad.ckpt" in p.stderr and "corrupt" in p.stderr,
          "a corrupted checkpoint is refused: " + p.stderr.strip()[:200])
    p = train("--recipe", "fp32", "--steps", "10", "--resume", full.replace("full", "res").replace("fp32", "lns-madam"))
    check(p.returncode != 0 and "different model" in p.stderr,
          "a checkpoint of another recipe is refused: " + p.stderr.strip()[:200])

print("resume: %d passed, %d failed" % (passes, failures))
sys.exit(1 if failures else 0)
