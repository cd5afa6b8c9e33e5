#!/usr/bin/python3
"""test_oracle.py: check `lnsc grad --recipe fp32` against the PyTorch oracle fixtures, on
both backends.

Design: every directory under tests/oracle/fixtures (made by tests/oracle/make_fixtures.py)
holds model.onnx, input_*.pb (the TensorProto's name is the graph input's name), labels.pb
and expected/ with the loss, each graph output, the gradient of each float initializer, each
running statistic after the step (BatchNormalization's running mean and variance, the
manifest's "state") and a manifest.json in the schema lnsc writes. For each fixture and each
backend (`--backend interp`, the reference interpreter, and `--backend llvm`, the compiled
step; --backend picks one) this runs `$LNSC_BIN grad` into a temporary directory and
compares, through both manifests, the loss, every output, every gradient and every running
statistic: a tensor passes iff its shape and dtype match and for every element
|a - b| <= 1e-4 |b| + 1e-5 max|b| (b expected, max over the tensor). The printed "rel err" is
max |a - b| / (|b| + 0.1 max|b|), so a tensor passes iff it is <= 1e-4. A missing file, a
missing or extra output, gradient or state name, or a non-zero exit is a failure. Each model
is then rerun with a different --seed: the fixtures use Dropout only with ratio 0, so the loss
must be bit-identical. Prints, per backend, the fixtures passed and failed, the tensors
compared and the worst rel err (and where); ends with `oracle: N passed, M failed` over all
(fixture, backend) runs; exit status 1 if anything failed.

Environment: LNSC_BIN (the lnsc binary), LNSC_SRC (source root; fixtures default to
$LNSC_SRC/tests/oracle/fixtures, else the copy beside this script).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

import numpy as np
import onnx
from onnx import numpy_helper

RTOL, STOL = 1e-4, 1e-5      # element tolerance: RTOL*|b| + STOL*max|b|
RERUN_SEED = "987654321"
BACKENDS = ("interp", "llvm")


def load_pb(path: str) -> np.ndarray:
    return numpy_helper.to_array(onnx.load_tensor(path))


def compare(a: np.ndarray, b: np.ndarray) -> Tuple[bool, float, str]:
    """a: lnsc's tensor, b: expected. Returns (ok, rel err (inf if not comparable),
    description)."""
    if a.shape != b.shape:
        return False, math.inf, f"shape {list(a.shape)} != expected {list(b.shape)}"
    if a.dtype != b.dtype:
        return False, math.inf, f"dtype {a.dtype} != expected {b.dtype}"
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if a.size == 0:
        return True, 0.0, "empty"
    if not np.all(np.isfinite(a64)):
        return False, math.inf, f"{int(np.sum(~np.isfinite(a64)))} non-finite values"
    scale = float(np.max(np.abs(b64)))
    err = np.abs(a64 - b64)
    denom = np.abs(b64) + (STOL / RTOL) * scale
    rel = np.where(err == 0, 0.0, err / np.where(denom == 0, 1e-300, denom))
    i = int(np.argmax(rel))
    worst = float(rel.reshape(-1)[i])
    ok = bool(np.all(err <= RTOL * np.abs(b64) + STOL * scale))
    idx = np.unravel_index(i, a.shape) if a.ndim else ()
    at = f"at {list(int(k) for k in idx)}: {a64.reshape(-1)[i]:.7g} vs {b64.reshape(-1)[i]:.7g}"
    return ok, worst, f"rel err {worst:.2e}" + ("" if ok else f" > {RTOL:g} ({at})")


def fixture_inputs(fdir: str) -> List[Tuple[str, str]]:
    """(graph input name, file) for every input_*.pb of a fixture."""
    out = []
    for fn in sorted(os.listdir(fdir)):
        if fn.startswith("input_") and fn.endswith(".pb"):
            path = os.path.join(fdir, fn)
            out.append((onnx.load_tensor(path).name, path))
    return out


def run_grad(lnsc: str, backend: str, fdir: str, outdir: str, timeout: float,
             seed: Optional[str]) -> Tuple[Optional[str], Optional[Dict]]:
    """Runs lnsc grad; returns (error message or None, manifest)."""
    cmd = [lnsc, "grad", os.path.join(fdir, "model.onnx")]
    for name, path in fixture_inputs(fdir):
        cmd += ["--input", f"{name}={path}"]
    cmd += ["--labels", os.path.join(fdir, "labels.pb"), "-o", outdir, "--recipe", "fp32",
            "--backend", backend]
    if seed is not None:
        cmd += ["--seed", seed]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:g}s", None
    except OSError as e:
        return f"cannot run {lnsc}: {e}", None
    if p.returncode != 0:
        tail = " | ".join(p.stderr.strip().splitlines()[-3:])
        return f"exit {p.returncode}: {tail}", None
    mpath = os.path.join(outdir, "manifest.json")
    try:
        with open(mpath) as f:
            return None, json.load(f)
    except (OSError, ValueError) as e:
        return f"bad manifest.json: {e}", None


class Result:
    """One (fixture, backend) run: verdict, report lines, tensors compared, worst rel err."""

    def __init__(self) -> None:
        self.ok = True
        self.lines: List[str] = []
        self.tensors = 0
        self.worst, self.where = 0.0, ""


def check_fixture(lnsc: str, backend: str, fdir: str, timeout: float, keep: bool) -> Result:
    name = os.path.basename(fdir)
    res = Result()
    lines = res.lines
    with open(os.path.join(fdir, "expected", "manifest.json")) as f:
        exp = json.load(f)
    exp.setdefault("state", {})
    tmp = tempfile.mkdtemp(prefix=f"lnsc_oracle_{name}_{backend}_")
    out1, out2 = os.path.join(tmp, "run"), os.path.join(tmp, "seed")
    try:
        err, got = run_grad(lnsc, backend, fdir, out1, timeout, None)
        if err:
            res.ok = False
            lines.append(f"    grad: {err}")
            return res
        ok = True
        # Names first: missing or extra outputs / gradients / running statistics fail.
        for key in ("outputs", "gradients", "state"):
            have, want = set(got.get(key, {})), set(exp[key])
            if have != want:
                ok = False
                if want - have:
                    lines.append(f"    missing {key}: {sorted(want - have)}")
                if have - want:
                    lines.append(f"    extra {key}: {sorted(have - want)}")
        pairs = [("loss", got.get("loss"), exp["loss"])]
        pairs += [(f"output {k}", got["outputs"].get(k), v) for k, v in exp["outputs"].items()]
        pairs += [(f"grad {k}", got["gradients"].get(k), v) for k, v in exp["gradients"].items()]
        pairs += [(f"state {k}", got.get("state", {}).get(k), v)
                  for k, v in exp["state"].items()]
        for label, gfile, efile in pairs:
            if gfile is None:
                continue  # already reported as missing
            gpath = os.path.join(out1, gfile)
            if not os.path.isfile(gpath):
                ok = False
                lines.append(f"    {label}: file {gfile} missing")
                continue
            try:
                a = load_pb(gpath)
            except Exception as e:  # noqa: BLE001 - any parse failure is a test failure
                ok = False
                lines.append(f"    {label}: cannot read {gfile}: {e}")
                continue
            good, rel, msg = compare(a, load_pb(os.path.join(fdir, "expected", efile)))
            res.tensors += 1
            if rel > res.worst or not res.where:
                res.worst, res.where = rel, f"{name}: {label}"
            ok &= good
            lines.append(f"    {'ok  ' if good else 'FAIL'} {label:<28} {msg}")
        # Rerun with another seed: no randomness at Dropout ratio 0, so the loss is identical.
        err, got2 = run_grad(lnsc, backend, fdir, out2, timeout, RERUN_SEED)
        if err:
            ok = False
            lines.append(f"    FAIL rerun with --seed {RERUN_SEED}: {err}")
        elif got.get("loss") and got2.get("loss"):
            try:
                l1 = load_pb(os.path.join(out1, got["loss"]))
                l2 = load_pb(os.path.join(out2, got2["loss"]))
                same = l1.shape == l2.shape and l1.tobytes() == l2.tobytes()
            except Exception as e:  # noqa: BLE001
                same, l1, l2 = False, str(e), ""
            ok &= same
            lines.append(f"    {'ok  ' if same else 'FAIL'} {'loss with --seed ' + RERUN_SEED:<28} "
                         + ("identical" if same else f"differs: {l1} vs {l2}"))
        res.ok = ok
        return res
    finally:
        if keep:
            lines.append(f"    (outputs kept in {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    src = os.environ.get("LNSC_SRC", os.path.dirname(os.path.dirname(here)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.environ.get("LNSC_BIN"), help="lnsc binary ($LNSC_BIN)")
    ap.add_argument("--fixtures", default=os.path.join(src, "tests", "oracle", "fixtures"))
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these fixtures")
    ap.add_argument("--backend", choices=BACKENDS, action="append",
                    help="run only this backend (repeatable; default: both)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per lnsc run")
    ap.add_argument("--keep", action="store_true", help="keep lnsc's output directories")
    args = ap.parse_args()
    backends = args.backend or list(BACKENDS)

    fixtures = sorted(d for d in os.listdir(args.fixtures)
                      if os.path.isfile(os.path.join(args.fixtures, d, "model.onnx")))
    if args.only:
        fixtures = [f for f in fixtures if f in args.only]
    if not fixtures:
        print(f"no fixtures under {args.fixtures}")
        print("oracle: 0 passed, 1 failed")
        return 1
    if not args.bin or not os.access(args.bin, os.X_OK):
        print(f"lnsc binary not found (LNSC_BIN={args.bin!r})")
        print(f"oracle: 0 passed, {len(fixtures) * len(backends)} failed")
        return 1

    summary = []
    npass = nfail = 0
    for backend in backends:
        bpass = bfail = tensors = 0
        worst, where = 0.0, ""
        for name in fixtures:
            res = check_fixture(args.bin, backend, os.path.join(args.fixtures, name),
                                args.timeout, args.keep)
            print(f"{'PASS' if res.ok else 'FAIL'} {name} [{backend}]", flush=True)
            for line in res.lines:
                print(line)
            bpass += res.ok
            bfail += not res.ok
            tensors += res.tensors
            if res.worst > worst or not where:
                worst, where = res.worst, res.where
        summary.append(f"  {backend:<7} {bpass} passed, {bfail} failed; {tensors} tensors "
                       f"compared, worst rel err {worst:.2e} ({where})")
        npass += bpass
        nfail += bfail
    print("per backend:")
    for line in summary:
        print(line)
    print(f"oracle: {npass} passed, {nfail} failed")
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
