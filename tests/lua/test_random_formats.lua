-- test_random_formats.lua: random per-tensor formats and optimizers, llvm against interp.
--
-- Policies drawn at random (fixed seeds: the same draws every run) give every settable tensor
-- of the MLP some format (bits 2 to 16, gamma 1 to 4096, any rounding, underflow and scale
-- mode; fp32 now and then; weights another optimizer, or Madam under the fp32 recipe) under
-- each recipe. A policy the passes refuse must be refused with an error; one they accept must
-- compile and train on both backends. They must agree: on the first step's loss to fp32
-- summation order (1e-5), and after two more steps loosely, since the coarsest formats (a
-- static scale left at k = 0 clamps every small gradient to one code) amplify a last-bit
-- difference in a GEMM sum into visibly different updates.
local T = require "testlib"

local rounds = {"nearest", "stochastic"}
local ufs = {"zero", "min", "stochastic"}
local scales = {"static", "current", "delayed"}
local function fmt(static)
  local f = {bits = math.random(2, 16), gamma = 1 << math.random(0, 12),
    rounding = rounds[math.random(2)], underflow = ufs[math.random(3)]}
  if not static then
    f.scale = scales[math.random(3)]
  end
  return f
end

local function policy(t)
  if not t.settable or math.random() < 0.3 then
    return nil
  elseif t.role == "weight_view" or (t.role == "weight" and t.optimizer == "madam") then
    return fmt(true)
  elseif t.role == "weight" then
    if math.random() < 0.4 then
      return {dtype = "fp32", optimizer = ({"sgd", "adam"})[math.random(2)]}
    end
    local f = fmt(true)
    f.rounding = nil
    if t.numel > 1000 and math.random() < 0.3 then
      f.optimizer = "madam"
    end
    return f
  elseif math.random() < 0.2 then
    return "fp32"
  end
  return fmt(false)
end

local trained, refused, worst = 0, 0, 0
for seed = 1, 12 do
  math.randomseed(seed)
  local recipe = ({"fp32", "lns-madam", "lns-sgd"})[seed % 3 + 1]
  local m = lnsc.load(T.mlp, {batch = 16, recipe = recipe})
  local ok, err = pcall(m.policy, m, policy)
  if not ok then
    refused = refused + 1
    T.ok(tostring(err):find("policy ", 1, true), "a refused policy says why: " .. tostring(err))
  else
    local first, later = {}, {}
    for _, backend in ipairs{"llvm", "interp"} do
      local t <close> = m:compile{backend = backend, observe = seed % 2 == 0}
      first[backend] = t:train{steps = 1, eval = false}.train_loss
      later[backend] = t:train{steps = 2, eval = false}.train_loss
    end
    local d = math.abs(first.llvm - first.interp) / math.abs(first.interp)
    worst = math.max(worst, d)
    T.ok(d < 1e-5, string.format("seed %d (%s), step 1: llvm %.9g, interp %.9g", seed, recipe,
      first.llvm, first.interp))
    T.ok(math.abs(later.llvm - later.interp) < 0.05 * later.interp,
      string.format("seed %d (%s), steps 2-3: llvm %.9g, interp %.9g", seed, recipe,
        later.llvm, later.interp))
    trained = trained + 1
  end
end
T.ok(trained >= 8, "most random policies train: " .. trained)
T.ok(refused >= 1, "some are refused: " .. refused)
print(string.format("%d policies trained on both backends (worst first-step difference %.2g), "
  .. "%d refused", trained, worst, refused))
T.done("test_random_formats.lua")
