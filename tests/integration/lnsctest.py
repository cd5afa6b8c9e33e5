"""lnsctest.py: what the integration tests share: pass/fail counting and running lnsc.

check(cond, what, detail) prints `ok:` or `FAIL:` and counts; finish(name) prints
`NAME: N passed, M failed` and returns the exit status. run(cmd) runs a command, printing its
output tails when it fails. train(model, recipe, extra, metrics) runs `lnsc train` with a
metrics CSV and returns its rows and the wall time. Not a test itself (CTest runs test_*.py).
"""
import csv
import os
import subprocess
import sys
import time

LNSC = os.environ.get("LNSC_BIN", "lnsc")
_counts = {"passed": 0, "failed": 0}


def check(cond, what, detail=""):
    if cond:
        _counts["passed"] += 1
        print("ok:", what)
    else:
        _counts["failed"] += 1
        print("FAIL:", what, detail)
    return cond


def finish(name):
    print("%s: %d passed, %d failed" % (name, _counts["passed"], _counts["failed"]))
    return 1 if _counts["failed"] else 0


def run(cmd, timeout=900, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if p.returncode != 0:
        print("command failed (%d): %s\n%s%s" % (p.returncode, " ".join(cmd), p.stdout[-2000:],
                                                p.stderr[-2000:]))
    return p


def train(model, recipe, extra, metrics):
    cmd = [LNSC, "train", model, "--recipe", recipe, "--seed", "0", "--no-progress",
           "--metrics", metrics] + extra
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    dt = time.time() - t0
    sys.stdout.write(p.stdout)
    if p.returncode != 0:
        sys.stdout.write(p.stderr)
        raise RuntimeError("%s exited %d" % (" ".join(cmd), p.returncode))
    with open(metrics) as f:
        return list(csv.DictReader(f)), dt
