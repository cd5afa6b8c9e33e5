-- lapq.lua: loss-aware choice of per-tensor LNS scales for a model trained in fp32.
--
-- In the spirit of LAPQ (Nahshan et al., "Loss Aware Post-training Quantization"): the
-- scales of all quantised tensors are chosen jointly to minimise the loss on a calibration
-- batch, instead of each from its own range. Here a tensor's scale is its LNS offset k, which
-- puts the top of its range at 2^((M + k)/g): a smaller k clips the largest values (they
-- saturate) and gives the small ones more of the range. The script trains the model in fp32,
-- copies its weights into a post-training LNS model (weights and GEMM activations in
-- lns<BITS, GAMMA> with static scales, the weights read directly by the GEMMs), starts every
-- k from the tensor's own amax (no clipping: what a max calibration does), and then runs a
-- coordinate descent on all offsets together: each k in turn is moved by +-1, +-g/2 and +-g
-- code steps (g steps are one octave), keeping a move when the loss of the whole network on
-- the calibration examples falls, until a sweep moves nothing. The test split then measures
-- the fp32 model, the LNS model with max scales and with the chosen ones.
--
--   lnsc run examples/tune/lapq.lua [--short] [--model M.onnx] [--steps N]
--                                   [--formats lns5g4,lns4g4,...] [--calibration N] [--data DIR]
-- --short: 200 fp32 steps, 256 calibration examples, one sweep, lns4g4 (what the test runs).
local cmdline = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/cmdline.lua")
local opts = cmdline.parse(arg, {steps = 937, formats = "lns5g4,lns4g2,lns4g4,lns3g1", calibration = 512},
  "lapq.lua [--short] [--model M.onnx] [--steps N] [--formats LIST] [--calibration N] [--data DIR]")
local model = opts.model
local steps, ncal, sweeps = cmdline.int(opts.steps, "--steps"),
  cmdline.int(opts.calibration, "--calibration"), 8
if opts.short then
  steps, ncal, sweeps, opts.formats = 200, 256, 1, "lns4g4"
end
local formats = {}
for f in opts.formats:gmatch("[^,]+") do
  local b, g = f:match("^lns(%d+)g(%d+)$")
  formats[#formats + 1] = {name = f, bits = cmdline.int(b, "--formats"), gamma = cmdline.int(g, "--formats")}
end
local data = lnsc.dataset(opts.data)
local t0 = lnsc.clock()

-- 1. the model trained in fp32
local m32 = lnsc.load(model, {recipe = "fp32"})
local t32 = m32:compile{}
local r32 = t32:train{data = data, steps = steps, seed = 0}
print(string.format("fp32: %d steps, test accuracy %.4f, test loss %.4f", steps,
  r32.test_accuracy, r32.test_loss))

-- 2. per format: the post-training LNS model, max scales, then loss-aware ones
local function ptq(bits, gamma)
  local M = (1 << (bits - 1)) - 1
  local fmt = string.format("lns%dg%d", bits, gamma)
  -- weights and GEMM activations in lns<bits, gamma>, static scales, weights read directly
  local mq = lnsc.load(model)
  mq:policy(function(t)
    if t.role == "weight" and t.format.dtype == "lns" then
      return {bits = bits, gamma = gamma, underflow = "zero", optimizer = "sgd"}
    elseif t.role == "activation" and t.format.dtype == "lns" then
      return {bits = bits, gamma = gamma, scale = "static"}
    end
  end)
  local tq <close> = mq:compile{}
  -- the offset that puts the top of the range at amax (lns_scale_current)
  local function k_max(amax)
    return math.ceil(gamma * math.log(amax, 2) - 1e-9) - M
  end
  local function amax_of(v)
    local a = 0
    for j = 1, #v do
      a = math.max(a, math.abs(v[j]))
    end
    return a
  end
  -- the calibration examples: the first ncal of the training split, as one fp32 forward
  -- sees them (the activations' amax comes from its last batch)
  t32:eval{data = data, split = "train", limit = ncal}
  local tensors, w32 = {}, {}
  for _, t in ipairs(mq:tensors("weight")) do
    local v = t32:get(t.name)
    if t.format.dtype == "lns" then
      w32[t.name] = v
      tensors[#tensors + 1] = {name = t.name, kind = "weight", amax = amax_of(v)}
    else
      tq:set(t.name, v) -- biases stay fp32
    end
  end
  for _, t in ipairs(mq:tensors("activation")) do
    if t.format.dtype == "lns" then
      tensors[#tensors + 1] = {name = t.name, kind = "activation",
        amax = amax_of(t32:get(t.name))}
    end
  end
  local function set_k(x, k)
    x.k = k
    tq:set_scale(x.name, k)
    if w32[x.name] then
      tq:set(x.name, w32[x.name]) -- re-encoded from the fp32 weights: nothing lost to earlier k
    end
  end
  local evals = 0
  local function cal_loss()
    evals = evals + 1
    return tq:eval{data = data, split = "train", limit = ncal}.loss
  end
  for _, x in ipairs(tensors) do
    x.k0 = k_max(x.amax)
    set_k(x, x.k0)
  end
  local loss0 = cal_loss()
  local acc0 = tq:eval{data = data}.accuracy
  -- coordinate descent on all offsets together
  local moves = {-gamma, -gamma // 2, -1, 1, gamma // 2, gamma}
  local loss, sweep = loss0, 0
  repeat
    local moved = false
    sweep = sweep + 1
    for _, x in ipairs(tensors) do
      local k0, best_k, best = x.k, x.k, loss
      for _, d in ipairs(moves) do
        if d ~= 0 then
          set_k(x, k0 + d)
          local l = cal_loss()
          if l < best then
            best_k, best = k0 + d, l
          end
        end
      end
      set_k(x, best_k)
      if best_k ~= k0 then
        loss, moved = best, true
      end
    end
  until not moved or sweep >= sweeps
  local acc1 = tq:eval{data = data}.accuracy
  print()
  print(string.format("%s: weights and GEMM activations, static scales; calibration: %d "
    .. "training examples", fmt, ncal))
  print(string.format("%-32s %-10s %10s %6s %6s %8s %12s", "tensor", "kind", "amax", "k max",
    "k", "octaves", "top"))
  for _, x in ipairs(tensors) do
    print(string.format("%-32s %-10s %10.4g %6d %6d %+8.2f %12.4g", x.name, x.kind, x.amax,
      x.k0, x.k, (x.k - x.k0) / gamma, 2 ^ ((M + x.k) / gamma)))
  end
  print(string.format("calibration loss: %.4f with max scales, %.4f chosen (%d sweeps, %d "
    .. "evaluations)", loss0, loss, sweep, evals))
  return {fmt = fmt, loss0 = loss0, loss = loss, acc0 = acc0, acc1 = acc1}
end

local results = {}
for _, f in ipairs(formats) do
  results[#results + 1] = ptq(f.bits, f.gamma)
end
print()
print(string.format("test accuracy (fp32: %.4f)", r32.test_accuracy))
print(string.format("%-8s %12s %12s %12s %12s", "format", "cal. loss", "max scales",
  "cal. loss", "loss-aware"))
for _, r in ipairs(results) do
  print(string.format("%-8s %12.4f %12.4f %12.4f %12.4f", r.fmt, r.loss0, r.acc0, r.loss, r.acc1))
end
print(string.format("in %.1f s", lnsc.clock() - t0))
