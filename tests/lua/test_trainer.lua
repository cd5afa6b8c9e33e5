-- test_trainer.lua: model:compile, trainer:train/eval/telemetry/get/set/set_scale/save,
-- lnsc.resume, datasets built in Lua, and the errors of each.
local T = require "testlib"

local m = lnsc.load(T.mlp)
local fm = lnsc.dataset() -- Debian's Fashion-MNIST, shared by every trainer below
T.eq(fm.train_size, 60000, "Fashion-MNIST training split")
T.eq(fm.test_size, 10000, "test split")
T.eq(fm.example_size, 784, "example size")
T.eq(fm.classes, 10, "classes")

-- ---- train, continue, eval ----
local a = m:compile{}
T.eq(a.recipe, "lns-madam", "trainer recipe")
T.eq(a.backend, "llvm", "default backend")
T.eq(a.threads, 1, "one thread by default")
T.eq(a.steps, 0, "no step yet")
T.ok(a.compile_seconds > 0 and a.compile_seconds < 30, "compile time measured")
local r1 = a:train{steps = 30, eval = false}
T.eq(r1.steps, 30, "steps run")
T.eq(r1.total_steps, 30, "total steps")
T.near(r1.epochs, 30 / 937, 1e-9, "fraction of an epoch")
T.ok(r1.train_loss > 1 and r1.train_loss < 2.5, "first steps' loss")
T.eq(r1.test_accuracy, nil, "eval=false: no test metrics")
local r2 = a:train{steps = 30}
T.eq(a.steps, 60, "the run continues")
T.ok(r2.train_loss < r1.train_loss, "the loss falls")
T.ok(r2.test_accuracy > 0.5 and r2.test_accuracy <= 1, "test accuracy after 60 steps")
local b = m:compile{}
local rb = b:train{steps = 60}
T.eq(rb.test_accuracy, r2.test_accuracy, "60 steps in one call = 30 + 30")
T.near(rb.train_loss, (r1.train_loss + r2.train_loss) / 2, 1e-9, "mean loss of the call")
local wa, wb = a:get("net.1.weight"), b:get("net.1.weight")
local same = #wa == 256 * 784
for i = 1, #wa do
  same = same and wa[i] == wb[i]
end
T.ok(same, "and the same weights, bit for bit")
local e = a:eval{}
T.eq(e.examples, 10000, "eval over the test split")
T.eq(e.accuracy, r2.test_accuracy, "eval = the accuracy train reported")
T.ok(e.loss > 0 and e.loss < 3, "eval loss")
local e2 = a:eval{split = "train", limit = 500}
T.eq(e2.examples, 500, "eval on 500 training examples")
T.ok(e2.accuracy > 0.5, "training accuracy")

-- ---- telemetry ----
local tel = a:telemetry()
local act = tel["/net/net.0/Flatten_output_0"]
T.eq(act.role, "activation", "telemetry role")
T.eq(act.format, "lns8g8:rn:delayed:uf=zero", "telemetry format")
T.eq(act.total, 60 * 64 * 784, "every element of every training step counted")
T.ok(act.saturated + act.underflowed <= act.total, "counts within the total")
T.eq(#act.amax, 16, "amax history of 16 steps")
T.ok(act.amax[16] > 0.9 and act.amax[16] <= 1, "the input's amax (pixels in [0, 1])")
local hsum = act.hist.zeros
for _, c in ipairs(act.hist.counts) do
  hsum = hsum + c
end
T.eq(hsum, 64 * 784, "the histogram covers the last batch")
T.ok(act.hist.lo >= -20 and act.hist.lo <= 0, "log2 bins start below 1")
local dw = tel["/net/net.1/Gemm/grad"]
T.eq(dw.role, "weight_gradient", "the weight gradient is observed")
T.ok(dw.underflowed > 0, "lns5g2 gradients underflow")
T.ok(tel["net.1.weight"].hist, "weights have a histogram")
T.ok(tel["logits"].amax[1] > 0, "fp32 tensors: the last value's amax")

-- a 3-bit gradient format underflows far more than the recipe's 5 bits
local m3 = lnsc.load(T.mlp)
m3:tensor("/net/net.1/Gemm/grad").format = {bits = 3}
local c3 = m3:compile{observe = false}
c3:train{steps = 60, eval = false}
local dw3 = c3:telemetry()["/net/net.1/Gemm/grad"]
T.ok(dw3.underflowed > 2 * dw.underflowed, "fewer bits, more underflow")
T.eq(dw3.hist, nil, "observe=false: no histogram of scratch tensors")
T.ok(c3:telemetry()["net.1.weight"].hist, "but state tensors have one")
T.raises(function() c3:get("/net/net.1/Gemm_output_0") end, {T.here(), "observe=false"},
  "scratch of an unobserved trainer")

-- ---- save and resume ----
local ck = os.tmpname()
a:save(ck)
local c = lnsc.resume(ck)
T.eq(c.steps, 60, "resumed at step 60")
T.eq(c.recipe, "lns-madam", "resumed recipe")
a:train{steps = 25, eval = false}
c:train{steps = 25, eval = false}
wa, wb = a:get("net.3.weight"), c:get("net.3.weight")
same = true
for i = 1, #wa do
  same = same and wa[i] == wb[i]
end
T.ok(same, "a resumed trainer continues bit for bit")
-- the overrides travel with the checkpoint
local mo = lnsc.load(T.mlp)
mo:tensor("/net/net.2/Relu_output_0").format = "lns6g4"
local o1 = mo:compile{}
o1:train{steps = 5, eval = false}
o1:save(ck)
local o2 = lnsc.resume(ck)
T.eq(o2:telemetry()["/net/net.2/Relu_output_0"].format, "lns6g4:rn:delayed:uf=zero",
  "the resumed trainer has the override")
T.raises(function() lnsc.resume("/no/such.ckpt") end, {T.here(), "/no/such.ckpt"},
  "missing checkpoint")
local junk = io.open(ck, "wb")
junk:write("not a checkpoint")
junk:close()
T.raises(function() lnsc.resume(ck) end, {T.here(), ck}, "damaged checkpoint")
os.remove(ck)

-- ---- backends agree; formats the recipe never uses still train ----
local odd = lnsc.load(T.mlp, {batch = 32})
odd:policy(function(t)
  if t.role == "activation" then
    return {bits = 7, gamma = 4, scale = "current", rounding = "stochastic"}
  elseif t.role == "activation_gradient" then
    return {bits = 6, gamma = 1, underflow = "stochastic"}
  elseif t.role == "weight_view" then
    return {bits = 6, gamma = 16}
  elseif t.name == "net.1.bias" then
    return {bits = 10, gamma = 64, optimizer = "sgd"}
  elseif t.name == "net.3.weight" then
    return {bits = 9, gamma = 32}
  end
end)
local li = odd:compile{backend = "interp"}
local ll = odd:compile{backend = "llvm"}
local ri = li:train{steps = 6, eval = false}
local rl = ll:train{steps = 6, eval = false}
T.near(rl.train_loss, ri.train_loss, 1e-5 * ri.train_loss, "llvm = interp on odd formats")
local wi, wl = li:get("net.1.bias"), ll:get("net.1.bias")
local maxd = 0
for i = 1, #wi do
  maxd = math.max(maxd, math.abs(wi[i] - wl[i]))
end
T.ok(maxd < 1e-4, "an LNS bias updated by SGD agrees too")

-- vector widths: AVX2 code computes what the host's does, bit for bit
local v3 = m:compile{cpu = "x86-64-v3"}
local h = m:compile{}
T.eq(v3:train{steps = 5, eval = false}.train_loss, h:train{steps = 5, eval = false}.train_loss,
  "cpu x86-64-v3 = host")
T.ok(m:compile{target = "x86_64-pc-linux-gnu"}, "the host's triple is accepted")

-- ---- datasets built in Lua: a small separable problem ----
local function synth(n, seed)
  local x, y = {}, {}
  local s = seed
  for i = 1, n do
    local cls = (i - 1) % 10
    local ex = {}
    for j = 1, 784 do
      s = (s * 1103515245 + 12345) % 2147483648
      ex[j] = (s % 1000) / 10000 -- noise in [0, 0.1)
    end
    for j = cls * 78 + 1, cls * 78 + 40 do
      ex[j] = ex[j] + 0.9 -- the class lights up its own block of pixels
    end
    x[i], y[i] = ex, cls
  end
  return {x = x, y = y}
end
local ds = lnsc.dataset{train = synth(640, 7), test = synth(200, 8)}
T.eq(ds.train_size, 640, "table dataset: training examples")
T.eq(ds.test_size, 200, "table dataset: test examples")
T.eq(ds.classes, 10, "table dataset: classes")
local s = m:compile{}
local rs = s:train{data = ds, epochs = 3}
T.eq(rs.steps, 30, "3 epochs of 10 steps")
T.ok(rs.test_accuracy >= 0.95, "the synthetic problem is learnt: " .. rs.test_accuracy)
T.eq(s:eval{data = ds}.examples, 200, "eval on the table's test split")
T.eq(s:train{data = {train = synth(64, 9)}, steps = 2}.steps, 2,
  "a table without a test split trains")

-- ---- get, set, set_scale ----
local w = s:get("net.3.bias")
T.eq(#w, 10, "get: a bias")
local vals = {}
for i = 1, 256 * 10 do
  vals[i] = ((i % 7) - 3) * 0.01
end
local sat, unf = s:set("net.3.weight", vals)
T.eq(sat, 0, "set: nothing saturates")
local back = s:get("net.3.weight")
T.near(back[2], vals[2], 0.01 * 0.006, "set then get: within a code step of lns12g128")
T.eq(back[3], vals[3], "zero is exact")
T.raises(function() s:set("net.3.weight", {1, 2}) end, {T.here(), "has 2560 elements"},
  "set: wrong length")
T.raises(function() s:set("logits", {1}) end, {T.here(), "not a weight"}, "set: not a weight")
T.raises(function() s:set("net.3.bias", {1, 2, 3, 4, 5, 6, 7, 8, 9, 0 / 0}) end,
  {T.here(-1), "element 10", "finite"}, "set: NaN")
-- a static activation scale, set by hand
local ms = lnsc.load(T.mlp)
ms:tensor("/net/net.2/Relu_output_0").format = {scale = "static"}
local st = ms:compile{}
st:set_scale("/net/net.2/Relu_output_0", -100)
st:train{steps = 3, eval = false}
T.eq(st:telemetry()["/net/net.2/Relu_output_0"].k, -100, "set_scale: static k in force")
T.raises(function() st:set_scale("/net/net.0/Flatten_output_0", 0) end,
  {T.here(-1), "delayed scaling"}, "set_scale on a delayed tensor")
T.raises(function() st:set_scale("logits", 0) end, {T.here(), "not an LNS tensor"},
  "set_scale on fp32")
T.raises(function() st:set_scale("view/net.1.weight", 0) end,
  {T.here(-1), "follows its weight's: set 'net.1.weight'"}, "set_scale on a view")
T.raises(function() st:set_scale("/net/net.2/Relu_output_0", 1e9) end, {T.here(), "must be from"},
  "k out of range")

-- ---- misuse ----
T.raises(function() m:compile{backend = "gpu"} end, {T.here(), "unknown backend 'gpu'"}, "backend")
T.raises(function() m:compile{recipe = "int8"} end, {T.here(), "unknown recipe"}, "recipe")
T.raises(function() m:compile{batch = 0} end, {T.here(), "option 'batch' must be from"}, "batch")
T.raises(function() m:compile{threads = "2"} end, {T.here(), "must be an integer"}, "threads")
T.raises(function() m:compile{cpu = "x86-64-v9"} end, {T.here(), "not known to run on"}, "cpu")
T.raises(function() m:compile{target = "aarch64-linux-gnu"} end,
  {T.here(-1), "lnsc compile MODEL.onnx -o OUT --target aarch64-linux-gnu"}, "target")
T.raises(function() m:compile{optimise = true} end, {T.here(), "unknown option 'optimise'"},
  "compile option typo")
T.raises(function() m:compile("fast") end, {T.here(), "options are a table"}, "options type")
T.raises(function() a:train{steps = 0} end, {T.here(), "option 'steps' must be from 1"}, "steps 0")
T.raises(function() a:train{steps = 1, epochs = 1} end, {T.here(), "epochs or steps, not both"},
  "both")
T.raises(function() a:train{lr = -1} end, {T.here(), "positive number"}, "negative lr")
T.raises(function() a:train{data = 5} end, {T.here(), "data must be a Dataset"}, "data type")
T.raises(function() a:train{data = "/no/such/dir"} end, {T.here(), "/no/such/dir"}, "data dir")
T.raises(function() a:train{data = {train = {x = {{1, 2}}, y = {0}}}} end,
  {T.here(-1), "examples have 2 values, the model's input 784"}, "wrong example size")
T.raises(function() lnsc.dataset{train = {x = {{1}, {1, 2}}, y = {0, 1}}} end,
  {T.here(-1), "x[2] must be an array of 1 numbers"}, "ragged examples")
T.raises(function() lnsc.dataset{train = {x = {{1}}, y = {-1}}} end,
  {T.here(-1), "must be a class index"}, "negative label")
T.raises(function() lnsc.dataset{train = {x = {{0 / 0}}, y = {0}}} end,
  {T.here(-1), "must be a finite number"}, "NaN example")
T.raises(function() a:eval{split = "val"} end, {T.here(), "split must be 'test' or 'train'"},
  "split")
T.raises(function() a:get("nope") end, {T.here(), "no tensor named 'nope'"}, "get unknown")
T.raises(function() a:get("input") end, {T.here(), "fed to each step"}, "get an input")
T.raises(function() a.train(m) end, {"lnsc.Trainer expected"}, "method on a model")
a:close()
T.raises(function() a:train{steps = 1} end, {T.here(), "the trainer is closed"}, "closed")
T.eq(tostring(a), "Trainer (closed)", "tostring of a closed trainer")
do
  local t <close> = m:compile{observe = false}
  T.eq(t.observe, false, "to-be-closed trainer")
end

T.done("test_trainer.lua")
