#!/usr/bin/python3
"""test_onnx_nodes.py: run ONNX's own node test cases (for lnsc's op set) through `lnsc eval`,
on both backends.

Design: the cases come from tests/onnx_node/gen_node_tests.py, which writes them into
$LNSC_BUILD/onnx_node_tests; they are regenerated when that directory's index.json is missing
or its stamp (generator hash, onnx and numpy versions) is stale. Each case is one model.onnx and
test_data_set_N/{input_i.pb, output_i.pb}; this runs, for each backend (the reference
interpreter and the LLVM-compiled step; --backend picks one),
`$LNSC_BIN eval model.onnx --backend B --input <graph input i>=input_i.pb ... -o TMP` and
compares each
graph output (through lnsc's manifest.json) with output_i.pb the way onnx's backend test
runner does: same dtype and shape, floats within rtol=1e-3, atol=1e-7 (the TestCase defaults
of onnx.backend.test.case.node.expect), NaNs equal, integers and bools exact.
Training-mode Dropout with a non-zero ratio depends on the RNG, so those cases get a structural
check instead (each output element is 0 or x/(1-ratio); the mask is true exactly where the
output is non-zero, wherever x != 0; ratio 0 gives the input back), reported as such.
lnsc exiting with 3 means "valid ONNX that lnsc does not support": such a case must be in
EXPECTED_UNSUPPORTED below (case -> reason), and a listed case must still be unsupported on
every backend, so the list stays true. Prints per-op counts per backend (passed / failed /
unsupported), then per backend and in total over (case, backend) runs
`onnx node tests: N passed, M failed, K unsupported`; exit status 1 on any failure.

Environment: LNSC_BIN (the lnsc binary), LNSC_BUILD (build dir; the cases go to
$LNSC_BUILD/onnx_node_tests), LNSC_SRC (source root).
"""
import argparse
import collections
import concurrent.futures
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

import numpy as np
import onnx
from onnx import numpy_helper

RTOL, ATOL = 1e-3, 1e-7  # onnx.backend.test.case.node.expect's TestCase(rtol, atol)

# Cases lnsc rejects with exit 3 (valid ONNX, unsupported), with the reason. Compute ops are
# float32 only; data movement ops and Cast take float32/64/16, int8..64, uint8..64 and bool.
_UINT8_ARITH = "uint8 arithmetic: compute ops are float32 only"
_STRING = "string tensors are not supported"
_BF16 = "bfloat16 is not supported"
_NOT_2D = "only 2-D (NCHW) convolution and pooling are supported"
_INT8_CLIP = "int8 Clip: compute ops are float32 only"
EXPECTED_UNSUPPORTED: Dict[str, str] = {
    "test_add_uint8": _UINT8_ARITH,
    "test_sub_uint8": _UINT8_ARITH,
    "test_mul_uint8": _UINT8_ARITH,
    "test_div_uint8": _UINT8_ARITH,
    "test_cast_FLOAT_to_STRING": _STRING,
    "test_cast_STRING_to_FLOAT": _STRING,
    "test_castlike_FLOAT_to_STRING_expanded": _STRING,
    "test_castlike_STRING_to_FLOAT_expanded": _STRING,
    "test_cast_FLOAT_to_BFLOAT16": _BF16,
    "test_cast_BFLOAT16_to_FLOAT": _BF16,
    "test_castlike_FLOAT_to_BFLOAT16_expanded": _BF16,
    "test_castlike_BFLOAT16_to_FLOAT_expanded": _BF16,
    "test_identity_sequence": "sequence-typed graph input/output",
    "test_identity_opt": "optional-typed graph input/output",
    "test_averagepool_1d_default": _NOT_2D,
    "test_averagepool_3d_default": _NOT_2D,
    "test_maxpool_1d_default": _NOT_2D,
    "test_maxpool_3d_default": _NOT_2D,
    "test_maxpool_2d_uint8": "uint8 MaxPool: compute ops are float32 only",
    "test_maxpool_with_argmax_2d_precomputed_pads": "MaxPool's Indices output is not supported",
    "test_maxpool_with_argmax_2d_precomputed_strides":
        "MaxPool's Indices output is not supported",
    "test_reflect_pad": "Pad mode 'reflect' is not supported (constant only)",
    "test_edge_pad": "Pad mode 'edge' is not supported (constant only)",
    "test_clip_default_int8_inbounds": _INT8_CLIP,
    "test_clip_default_int8_max": _INT8_CLIP,
    "test_clip_default_int8_min": _INT8_CLIP,
}


def load_gen_module(path: str):
    spec = importlib.util.spec_from_file_location("gen_node_tests", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def ensure_cases(gen_path: str, outdir: str) -> Dict:
    """Generate the cases unless outdir already holds an up-to-date generation."""
    want = load_gen_module(gen_path).stamp()
    index_path = os.path.join(outdir, "index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
        if index.get("stamp") == want:
            return index
    print(f"generating ONNX node tests into {outdir}", flush=True)
    subprocess.run([sys.executable, gen_path, outdir, "--quiet"], check=True)
    with open(index_path) as f:
        return json.load(f)


def load_pb(path: str) -> np.ndarray:
    return numpy_helper.to_array(onnx.load_tensor(path))


def compare(got: np.ndarray, ref: np.ndarray) -> Optional[str]:
    """None if equal in onnx's sense, else what differs."""
    if got.dtype != ref.dtype:
        return f"dtype {got.dtype} != expected {ref.dtype}"
    if got.shape != ref.shape:
        return f"shape {list(got.shape)} != expected {list(ref.shape)}"
    if ref.dtype.kind in "fc":
        g, r = got.astype(np.float64), ref.astype(np.float64)
        close = np.isclose(g, r, rtol=RTOL, atol=ATOL, equal_nan=True)
        if not np.all(close):
            i = int(np.argmin(close.reshape(-1)))
            return (f"{int(np.sum(~close))}/{close.size} elements differ, e.g. "
                    f"{g.reshape(-1)[i]!r} vs {r.reshape(-1)[i]!r}")
        return None
    if not np.array_equal(got, ref):
        return f"{int(np.sum(got != ref))}/{ref.size} elements differ"
    return None


def training_dropout(model: onnx.ModelProto, inputs: Dict[str, np.ndarray]):
    """(node, x, ratio) if the case is a Dropout run in training mode, else None."""
    nodes = list(model.graph.node)
    if len(nodes) != 1 or nodes[0].op_type != "Dropout":
        return None
    n = nodes[0]
    if len(n.input) < 3 or not n.input[2] or n.input[2] not in inputs:
        return None
    if not bool(inputs[n.input[2]]):
        return None
    ratio = float(inputs[n.input[1]]) if (len(n.input) > 1 and n.input[1]) else 0.5
    return n, inputs[n.input[0]], ratio


def check_dropout(node, x: np.ndarray, ratio: float,
                  outs: Dict[str, np.ndarray]) -> Tuple[Optional[str], str]:
    """Structural check of a training-mode Dropout. Returns (error or None, description)."""
    y = outs.get(node.output[0])
    if y is None:
        return "output missing", ""
    if y.dtype != x.dtype or y.shape != x.shape:
        return f"output {y.dtype}{list(y.shape)} != input {x.dtype}{list(x.shape)}", ""
    kept = y != 0
    if ratio == 0.0:
        if not np.array_equal(y, x):
            return "ratio 0 must give the input back", ""
    else:
        scale = 1.0 / (1.0 - ratio)
        want = x.astype(np.float64) * scale
        bad = kept & ~np.isclose(y.astype(np.float64), want, rtol=1e-5, atol=1e-7)
        if np.any(bad):
            return f"{int(np.sum(bad))} non-zero outputs are not x/(1-ratio)", ""
        nz = x != 0
        if np.sum(nz) >= 20 and (np.all(kept[nz]) or not np.any(kept[nz])):
            return f"all or none of {int(np.sum(nz))} elements kept at ratio {ratio}", ""
    if len(node.output) > 1 and node.output[1]:
        mask = outs.get(node.output[1])
        if mask is None:
            return "mask output missing", ""
        if mask.dtype != np.bool_ or mask.shape != x.shape:
            return f"mask {mask.dtype}{list(mask.shape)}, want bool{list(x.shape)}", ""
        nz = x != 0
        if not np.array_equal(mask[nz], kept[nz]):
            return "mask is not true exactly where the output is non-zero", ""
        if ratio == 0.0 and not np.all(mask):
            return "ratio 0 must keep every element", ""
    if ratio == 0.0:
        return None, "training-mode Dropout, ratio 0: structural check, output == input"
    return None, (f"training-mode Dropout: structural check, the output depends on the RNG: "
                  f"{int(np.sum(kept))}/{x.size} non-zero at ratio {ratio:g}")


def run_case(lnsc: str, backend: str, cdir: str, timeout: float) -> Tuple[str, str, str]:
    """Returns (status, detail, lnsc message); status in pass|fail|unsupported."""
    model = onnx.load(os.path.join(cdir, "model.onnx"))
    inits = {t.name for t in model.graph.initializer}
    names = [vi.name for vi in model.graph.input if vi.name not in inits]
    sets = sorted(d for d in os.listdir(cdir) if d.startswith("test_data_set_"))
    notes = []
    for ds in sets:
        dpath = os.path.join(cdir, ds)
        cmd = [lnsc, "eval", os.path.join(cdir, "model.onnx"), "--backend", backend]
        for j, name in enumerate(names):
            cmd += ["--input", f"{name}={os.path.join(dpath, f'input_{j}.pb')}"]
        tmp = tempfile.mkdtemp(prefix="lnsc_node_")
        try:
            cmd += ["-o", tmp]
            try:
                p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                   timeout=timeout)
            except subprocess.TimeoutExpired:
                return "fail", f"timed out after {timeout:g}s", ""
            msg = " | ".join(p.stderr.strip().splitlines()[-2:])
            if p.returncode == 3:
                return "unsupported", "", msg
            if p.returncode != 0:
                return "fail", f"exit {p.returncode}", msg
            try:
                with open(os.path.join(tmp, "manifest.json")) as f:
                    manifest = json.load(f).get("outputs", {})
            except (OSError, ValueError) as e:
                return "fail", f"bad manifest.json: {e}", msg
            want = [vi.name for vi in model.graph.output]
            if set(manifest) != set(want):
                return "fail", f"outputs {sorted(manifest)} != graph outputs {sorted(want)}", msg
            outs = {}
            for name, fn in manifest.items():
                try:
                    outs[name] = load_pb(os.path.join(tmp, fn))
                except Exception as e:  # noqa: BLE001 - unreadable output is a failure
                    return "fail", f"cannot read output {name} ({fn}): {e}", msg
            inputs = {name: load_pb(os.path.join(dpath, f"input_{j}.pb"))
                      for j, name in enumerate(names)}
            drop = training_dropout(model, inputs)
            if drop:
                err, note = check_dropout(drop[0], drop[1], drop[2], outs)
                if err:
                    return "fail", f"{ds}: dropout {err}", msg
                notes.append(note)
                continue
            for j, name in enumerate(want):
                err = compare(outs[name], load_pb(os.path.join(dpath, f"output_{j}.pb")))
                if err:
                    return "fail", f"{ds}: output {name}: {err}", msg
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return "pass", "; ".join(notes), ""


BACKENDS = ("interp", "llvm")
CNN_OPS = ("Conv", "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool",
           "GlobalMaxPool", "Pad", "Clip")


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    src = os.environ.get("LNSC_SRC", os.path.dirname(os.path.dirname(here)))
    build = os.environ.get("LNSC_BUILD")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.environ.get("LNSC_BIN"), help="lnsc binary ($LNSC_BIN)")
    ap.add_argument("--cases", default=os.path.join(build, "onnx_node_tests") if build else None,
                    help="generated cases directory ($LNSC_BUILD/onnx_node_tests)")
    ap.add_argument("--only", nargs="+", metavar="CASE", help="run only these cases")
    ap.add_argument("--backend", choices=BACKENDS, action="append",
                    help="run only this backend (repeatable; default: both)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per lnsc run")
    ap.add_argument("-j", "--jobs", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("-v", "--verbose", action="store_true", help="print every case")
    args = ap.parse_args()
    backends = args.backend or list(BACKENDS)
    if not args.cases:
        print("set LNSC_BUILD or pass --cases")
        print("onnx node tests: 0 passed, 1 failed, 0 unsupported")
        return 1

    index = ensure_cases(os.path.join(src, "tests", "onnx_node", "gen_node_tests.py"), args.cases)
    cases = sorted(index["cases"])
    if args.only:
        cases = [c for c in cases if c in args.only]
    if not args.bin or not os.access(args.bin, os.X_OK):
        print(f"lnsc binary not found (LNSC_BIN={args.bin!r})")
        print(f"onnx node tests: 0 passed, {len(cases) * len(backends)} failed, 0 unsupported")
        return 1

    runs = [(c, b) for c in cases for b in backends]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futs = {r: pool.submit(run_case, args.bin, r[1], os.path.join(args.cases, r[0]),
                               args.timeout) for r in runs}
        results = {r: f.result() for r, f in futs.items()}

    # op -> backend -> [passed, failed, unsupported]
    per_op = collections.defaultdict(lambda: {b: [0, 0, 0] for b in backends})
    totals = {b: [0, 0, 0] for b in backends}
    unsupported: Dict[str, List[str]] = {}   # case -> backends, in order
    messages: Dict[str, str] = {}
    for c, b in runs:
        status, detail, msg = results[(c, b)]
        expected_unsup = c in EXPECTED_UNSUPPORTED
        if status == "unsupported":
            if expected_unsup:
                unsupported.setdefault(c, []).append(b)
                messages.setdefault(c, msg)
            else:
                status, detail = "fail", "lnsc says unsupported (exit 3) but the case is not " \
                                         "in EXPECTED_UNSUPPORTED"
        elif status == "pass" and expected_unsup:
            status, detail = "fail", "passes but is listed in EXPECTED_UNSUPPORTED: remove it"
        elif status == "fail" and expected_unsup:
            detail += " (listed in EXPECTED_UNSUPPORTED but lnsc did not exit 3)"
        k = {"pass": 0, "fail": 1, "unsupported": 2}[status]
        totals[b][k] += 1
        for op in sorted(set(index["cases"][c]["ops"])):
            per_op[op][b][k] += 1
        if status == "pass":
            if args.verbose or detail:
                print(f"PASS {c} [{b}]" + (f" ({detail})" if detail else ""))
        elif status == "fail":
            print(f"FAIL {c} [{b}]: {detail}" + (f" -- lnsc: {msg}" if msg else ""))
        elif args.verbose:
            print(f"UNSUPPORTED {c} [{b}]")

    print("per op, passed/failed/unsupported of the cases using it:")
    print(f"  {'op':<20}" + "".join(f"{b:>16}" for b in backends))
    ops = sorted(per_op, key=lambda o: (o not in CNN_OPS, o))
    for op in ops:
        print(f"  {op:<20}" + "".join(f"{'/'.join(map(str, per_op[op][b])):>16}"
                                     for b in backends))
    stale = sorted(set(EXPECTED_UNSUPPORTED) - set(index["cases"]))
    if stale and not args.only:
        print(f"warning: EXPECTED_UNSUPPORTED names cases that were not generated: {stale}")
    print(f"unsupported (expected, exit 3): {len(unsupported)} cases")
    for c, bs in unsupported.items():
        print(f"  {c} [{', '.join(bs)}]: {EXPECTED_UNSUPPORTED[c]} -- lnsc: {messages[c]}")
    for b in backends:
        p, f, u = totals[b]
        print(f"  {b}: {p} passed, {f} failed, {u} unsupported")
    npass, nfail, nunsup = (sum(totals[b][i] for b in backends) for i in range(3))
    print(f"onnx node tests: {npass} passed, {nfail} failed, {nunsup} unsupported")
    return 1 if nfail else 0


if __name__ == "__main__":
    sys.exit(main())
