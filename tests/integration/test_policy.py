#!/usr/bin/python3
"""test_policy.py: `--policy FILE.lua` and `--formats FILE` on inspect, train and compile, and
`lnsc run` as a command (arguments, exit codes, errors that name the script's line).

A policy that changes formats must visibly change what `lnsc inspect` prints (the tensors'
formats, the state table) and the trained result; --formats must keep working as a thin case
of the same override table; a bad policy is an error naming the policy file, never a crash.
"""
import os
import re
import subprocess
import sys
import tempfile

LNSC = os.environ["LNSC_BIN"]
SRC = os.environ["LNSC_SRC"]
MLP = os.path.join(SRC, "examples", "mlp", "mlp.onnx")
passes = failures = 0


def run(args, timeout=300):
    return subprocess.run([LNSC] + args, capture_output=True, text=True, timeout=timeout)


def check(cond, what, detail=""):
    global passes, failures
    if cond:
        passes += 1
    else:
        failures += 1
        print("FAIL: %s %s" % (what, detail[:600]))


def expect(args, code, needles, what):
    p = run(args)
    ok = p.returncode == code and all(n in p.stderr for n in needles)
    check(ok, what, "exit %d (want %d), stderr: %s" % (p.returncode, code, p.stderr))
    return p


def fmt_of(inspect_out, name):
    m = re.search(r"%" + re.escape(name) + r" = [^:]*: ([^\[ ]+)\[", inspect_out)
    if not m:
        m = re.search(r"param %" + re.escape(name) + r" : ([^\[ ]+)\[", inspect_out)
    return m.group(1) if m else None


def accuracy(train_out):
    m = re.search(r"test_acc ([0-9.]+)", train_out)
    return float(m.group(1)) if m else None


POLICY = """-- activations at 6 bits with gamma 4, gradients at 4 bits, the first weight in int8 codes
return function(t)
  if t.role == "activation" and t.format.dtype == "lns" then
    return {bits = 6, gamma = 4}
  elseif t.role == "activation_gradient" and t.format.dtype == "lns" then
    return "lns4g1:sr"
  elseif t.name == "net.1.weight" then
    return {bits = 8, gamma = 8}
  end
end
"""

with tempfile.TemporaryDirectory() as tmp:
    pol = os.path.join(tmp, "policy.lua")
    open(pol, "w").write(POLICY)

    # ---- inspect ----
    base = run(["inspect", MLP])
    check(base.returncode == 0, "inspect", base.stderr)
    p = run(["inspect", MLP, "--policy", pol])
    check(p.returncode == 0, "inspect --policy", p.stderr)
    check(fmt_of(base.stdout, "/net/net.2/Relu_output_0") == "lns8g8:rn:delayed:uf=zero",
          "recipe activation format", base.stdout[:300])
    check(fmt_of(p.stdout, "/net/net.2/Relu_output_0") == "lns6g4:rn:delayed:uf=zero",
          "policy activation format", p.stdout[:2000])
    check(fmt_of(p.stdout, "loss/grad") == "lns4g1:sr:delayed:uf=zero", "policy gradient format")
    check(fmt_of(p.stdout, "net.1.weight") == "lns8g8:rn:static:uf=min", "policy weight format")
    check(fmt_of(p.stdout, "net.3.weight") == "lns12g128:rn:static:uf=min",
          "a tensor the policy leaves alone keeps the recipe's format")
    total = lambda out: int(re.search(r"([0-9]+) bytes of state", out).group(1))
    check(total(base.stdout) - total(p.stdout) == 256 * 784,
          "the state table shows the int8 weight's saved bytes")

    # ---- --formats: the same override table, and the policy wins over the file ----
    fmts = os.path.join(tmp, "formats.txt")
    open(fmts, "w").write("# a comment\n/net/net.2/Relu_output_0 lns7g16\nnet.3.weight lns10g64\n")
    p = run(["inspect", MLP, "--formats", fmts])
    check(p.returncode == 0 and fmt_of(p.stdout, "/net/net.2/Relu_output_0") ==
          "lns7g16:rn:delayed:uf=zero", "--formats sets a format", p.stderr)
    check(fmt_of(p.stdout, "net.3.weight") == "lns10g64:rn:static:uf=zero",
          "--formats: a weight's scale is static")
    p = run(["inspect", MLP, "--formats", fmts, "--policy", pol])
    check(fmt_of(p.stdout, "/net/net.2/Relu_output_0") == "lns6g4:rn:delayed:uf=zero",
          "the policy wins over --formats")
    check(fmt_of(p.stdout, "net.3.weight") == "lns10g64:rn:static:uf=zero",
          "--formats where the policy says nothing")
    open(fmts, "w").write("/net/net.2/Relu_output_0 lns7g3\n")
    expect(["inspect", MLP, "--formats", fmts], 2, ["formats.txt:1", "lns7g3", "not a format"],
           "--formats: bad format")
    open(fmts, "w").write("\nnet.1.weight fp32\n")
    expect(["inspect", MLP, "--formats", fmts], 2, ["formats.txt:2", "updated by Madam"],
           "--formats: fp32 Madam weight")

    # ---- train: the policy changes the trained result, deterministically ----
    args = ["train", MLP, "--steps", "150", "--threads", "1", "--no-progress"]
    t0 = run(args)
    t1 = run(args + ["--policy", pol])
    t2 = run(args + ["--policy", pol])
    a0, a1, a2 = accuracy(t0.stdout), accuracy(t1.stdout), accuracy(t2.stdout)
    check(t0.returncode == 0 and t1.returncode == 0, "train with and without a policy",
          t0.stderr + t1.stderr)
    check(a0 is not None and a1 is not None and a0 != a1, "the policy changes the result",
          "%s vs %s" % (a0, a1))
    check(a1 == a2, "the same policy gives the same result", "%s vs %s" % (a1, a2))
    check(a1 is not None and a1 > 0.5, "and still trains", str(a1))

    # ---- checkpoints move between `lnsc train` and Lua, overrides included ----
    ck = os.path.join(tmp, "cli.ckpt")
    p = run(["train", MLP, "--policy", pol, "--checkpoint", ck, "--steps", "7", "--threads", "1",
             "--no-progress"])
    script = os.path.join(tmp, "resume.lua")
    open(script, "w").write(
        "local t = lnsc.resume(%r)\n"
        "print(t.steps, t:telemetry()['/net/net.2/Relu_output_0'].format)\n"
        "t:train{steps = 3, eval = false}\nt:save(%r)\n" % (ck, ck))
    p = run(["run", script])
    check(p.returncode == 0 and p.stdout.strip() == "7\tlns6g4:rn:delayed:uf=zero",
          "lnsc.resume of an `lnsc train --checkpoint` file keeps its policy", p.stdout + p.stderr)
    p = run(["train", MLP, "--policy", pol, "--resume", ck, "--steps", "12", "--threads", "1",
             "--no-progress"])
    check(p.returncode == 0 and "10 steps done" in p.stdout,
          "lnsc train --resume of a trainer:save file", p.stdout + p.stderr)

    # ---- compile ----
    ll = os.path.join(tmp, "m.ll")
    p = run(["compile", MLP, "-o", ll, "--emit", "llvm", "--policy", pol])
    check(p.returncode == 0 and os.path.getsize(ll) > 0, "compile --policy", p.stderr)

    # ---- bad policies ----
    bad = os.path.join(tmp, "bad.lua")
    open(bad, "w").write("return function(t)\n  if t.role == 'activation' then return {bits = 1} end\nend\n")
    expect(["inspect", MLP, "--policy", bad], 2, ["policy", "bad.lua:1", "bits must be from 2 to 16"],
           "policy returns bits 1")
    open(bad, "w").write("return function(t)\n  return {gamma = 3}\nend\n")
    expect(["train", MLP, "--policy", bad], 2, ["bad.lua", "gamma must be a power of two"],
           "policy returns gamma 3")
    open(bad, "w").write("return 42\n")
    expect(["inspect", MLP, "--policy", bad], 2, ["bad.lua", "returns function(tensor)"],
           "policy file returns a number")
    open(bad, "w").write("return function(t) error('policy exploded') end\n")
    expect(["inspect", MLP, "--policy", bad], 2, ["bad.lua:1", "policy exploded"],
           "policy raises")
    open(bad, "w").write("return function(t\n")
    expect(["compile", MLP, "-o", ll, "--emit", "llvm", "--policy", bad], 2, ["bad.lua"],
           "policy does not parse")
    open(bad, "w").write("return function(t) if t.name == 'input' then return 'lns8g8' end end\n")
    expect(["inspect", MLP, "--policy", bad], 2, ["'input'", "cannot be set"],
           "policy sets an input's format")
    expect(["inspect", MLP, "--policy", os.path.join(tmp, "none.lua")], 2, ["none.lua"],
           "missing policy file")

    # ---- lnsc run ----
    script = os.path.join(tmp, "s.lua")
    open(script, "w").write("print(arg[0], arg[1], arg[2], select('#', ...), ...)\n"
                            "print(lnsc == require('lnsc'), lnsc.version ~= nil)\n")
    p = run(["run", script, "a", "b c"])
    check(p.returncode == 0 and p.stdout.split("\n")[0] == "%s\ta\tb c\t2\ta\tb c" % script,
          "arg and ... as lua sets them", p.stdout + p.stderr)
    check(p.stdout.split("\n")[1] == "true\ttrue", "lnsc is preloaded", p.stdout)
    open(script, "w").write("local m = lnsc.load(%r)\nm:tensor('nope')\n" % MLP)
    expect(["run", script], 1, ["s.lua:2:", "no tensor named 'nope'", "traceback"],
           "a script error names the line")
    open(script, "w").write("local m = lnsc.load(%r)\n\nm:tensor('loss/grad').format = {bits = 1}\n" % MLP)
    expect(["run", script], 1, ["s.lua:3:", "bits must be from 2 to 16"], "bits 1 in a script")
    open(script, "w").write("x = = 1\n")
    expect(["run", script], 2, ["s.lua:1"], "a script that does not parse")
    expect(["run", os.path.join(tmp, "none.lua")], 2, ["none.lua"], "a missing script")
    expect(["run"], 2, ["usage: lnsc run"], "run without a script")
    p = run(["run", "--help"])
    check(p.returncode == 0 and "docs/lua.md" in p.stdout, "run --help", p.stdout)

print("policy: %d passed, %d failed" % (passes, failures))
sys.exit(1 if failures else 0)
