#!/usr/bin/python3
"""test_tune.py: the examples/tune scripts, each run in its short mode, checked for what their
algorithms promise.

greedy.lua keeps exactly the steps whose accuracy stays within the budget, ends within it,
and reports the state it saved consistently with its table; gamma.lua chooses, per role, the
largest gamma within its tolerance (or the one that loses least) and verifies the choice;
lapq.lua's coordinate descent never raises the calibration loss; grid.lua fills its table.
"""
import os
import re
import subprocess
import sys

LNSC = os.environ["LNSC_BIN"]
SRC = os.environ["LNSC_SRC"]
TUNE = os.path.join(SRC, "examples", "tune")
passes = failures = 0


def check(cond, what, detail=""):
    global passes, failures
    if cond:
        passes += 1
    else:
        failures += 1
        print("FAIL: %s %s" % (what, detail[:2000]))


def run(script, *args):
    p = subprocess.run([LNSC, "run", os.path.join(TUNE, script), "--short"] + list(args),
                       capture_output=True, text=True, timeout=900)
    check(p.returncode == 0, script + " runs", p.stdout + p.stderr)
    return p.stdout


# ---- greedy.lua ----
out = run("greedy.lua")
m = re.search(r"lns-madam, (\d+) steps: test accuracy ([0-9.]+), (\d+) bytes of state; budget ([0-9.]+)", out)
check(m is not None, "greedy: the starting run", out)
if m:
    base, bytes0, budget = float(m.group(2)), int(m.group(3)), float(m.group(4))
    trials = re.findall(r"^(\S+)\s+(lns\d+g\d+)\s+(lns\d+g\d+)\s+([0-9.]+)\s+(yes|no)$", out, re.M)
    check(len(trials) >= 2, "greedy: trials printed", out)
    for name, frm, to, acc, kept in trials:
        within = float(acc) >= base - budget
        check(within == (kept == "yes"), "greedy: a step is kept iff within the budget",
              "%s %s->%s %s %s" % (name, frm, to, acc, kept))
        fb, tb = int(re.match(r"lns(\d+)", frm).group(1)), int(re.match(r"lns(\d+)", to).group(1))
        check(tb == fb - 1, "greedy: one bit at a time", frm + " " + to)
    fin = re.search(r"test accuracy: ([0-9.]+) \(start ([0-9.]+), budget", out)
    check(fin and float(fin.group(1)) >= base - budget, "greedy: ends within the budget", out)
    st = re.search(r"state: (\d+) -> (\d+) bytes, (\d+) saved", out)
    check(st and int(st.group(1)) == bytes0 and int(st.group(1)) - int(st.group(2)) ==
          int(st.group(3)), "greedy: bytes saved add up", out)
    # the final format of each weight is the last kept step (or the recipe's)
    for name in {t[0] for t in trials}:
        kept = [t[2] for t in trials if t[0] == name and t[4] == "yes"]
        row = re.search(r"^" + re.escape(name) + r"\s+[a-z_]+\s+(lns\S+)\s+(lns\S+)\s+\S+$", out,
                        re.M)
        want = kept[-1] if kept else re.match(r"lns\d+g\d+", row.group(1)).group(0)
        check(row and row.group(2).startswith(want + ":"), "greedy: final table", name)
    # an int8 weight saves a byte per element against the recipe's int16 codes
    rows = re.findall(r"^(net\.\d\.weight)\s+weight\s+\S+\s+lns(\d+)g\d+\S*\s+(\d+)$", out, re.M)
    check(len(rows) == 2, "greedy: the weights' table rows", out)

# ---- gamma.lua ----
out = run("gamma.lua")
rows = re.findall(r"^(\w+)\s+lns(\d+)g(\d+)\s+([0-9.]+)%\s+([0-9.]+)%\s+(.*)$", out, re.M)
tol, cand = {}, {}
for role, b, g, sat, unf, rest in rows:
    t = re.search(r"tolerance ([0-9.]+)%", rest)
    if t:
        tol[role] = float(t.group(1))
    else:
        cand.setdefault(role, []).append((int(b), int(g), float(sat) + float(unf), rest.split()[-1]))
check(set(tol) == {"activation", "activation_gradient", "weight_gradient"}, "gamma: three roles", out)
ver = re.search(r"^chosen\s+lns(\d+)g(\d+) / lns(\d+)g(\d+) / lns(\d+)g(\d+)\s+([0-9.]+)\s+([0-9.]+)$",
                out, re.M)
check(ver is not None, "gamma: verification of the choice", out)
if ver and set(tol) == set(cand):
    got = {"activation": int(ver.group(2)), "activation_gradient": int(ver.group(4)),
           "weight_gradient": int(ver.group(6))}
    for role, cs in cand.items():
        for b, g, lost, within in cs:
            check((lost <= tol[role] + 1e-3) == (within == "yes"), "gamma: within the tolerance",
                  "%s g%d %.4f vs %.4f %s" % (role, g, lost, tol[role], within))
        ok = [g for b, g, lost, w in cs if w == "yes"]
        want = max(ok) if ok else min(cs, key=lambda c: c[2])[1]
        check(got[role] == want, "gamma: the largest gamma within the tolerance", role)
    check(0 < float(ver.group(8)) <= 1, "gamma: verified accuracy", out)
for line in ("gamma 1 ", "recipe g "):
    check(re.search(r"^" + line + r"\s+lns", out, re.M) is not None, "gamma: " + line, out)

# ---- lapq.lua ----
out = run("lapq.lua")
fp = re.search(r"fp32: \d+ steps, test accuracy ([0-9.]+)", out)
check(fp and float(fp.group(1)) > 0.6, "lapq: the fp32 model trains", out)
cal = re.findall(r"calibration loss: ([0-9.]+) with max scales, ([0-9.]+) chosen", out)
check(len(cal) == 1 and float(cal[0][1]) <= float(cal[0][0]), "lapq: the loss never rises", out)
res = re.search(r"^lns4g4\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)$", out, re.M)
check(res is not None and float(res.group(3)) == float(cal[0][1]), "lapq: summary table", out)
ks = re.findall(r"^(\S+)\s+(weight|activation)\s+([0-9.e+-]+)\s+(-?\d+)\s+(-?\d+)\s+([+-][0-9.]+)", out, re.M)
check(len(ks) == 4, "lapq: four tensors scaled", out)
for name, kind, amax, k0, k, oct_ in ks:
    check(abs((int(k) - int(k0)) / 4 - float(oct_)) < 1e-9, "lapq: octaves = (k - k max) / g", name)
    # k max puts amax at the top: 2^((M + k0 - 1)/g) < amax <= 2^((M + k0)/g), M = 7, g = 4
    a = float(amax)
    check(2 ** ((6 + int(k0)) / 4) < a * (1 + 1e-4) and a <= 2 ** ((7 + int(k0)) / 4) * (1 + 1e-4),
          "lapq: k max from amax", "%s %s %s" % (name, amax, k0))

# ---- grid.lua ----
out = run("grid.lua")
cells = re.findall(r"^lns\d+g\d+\s+([0-9.]+)\s+([0-9.]+)$", out, re.M)
check(len(cells) == 2, "grid: 2 x 2 table", out)
check(re.search(r"^4 configurations of 20 steps in", out, re.M) is not None, "grid: timing line", out)

print("tune: %d passed, %d failed" % (passes, failures))
sys.exit(1 if failures else 0)
