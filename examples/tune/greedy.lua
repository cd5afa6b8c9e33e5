-- greedy.lua: lower each tensor's bits one at a time while test accuracy stays within a budget.
--
-- Starting from the lns-madam recipe, each weight (its stored codes), weight view (what the
-- GEMMs read), activation, activation gradient and weight gradient in LNS is lowered by one
-- bit at a time, its gamma halved with it (down to 1) so that its range in octaves stays
-- about the same and only the resolution drops. Each step compiles the model, trains it
-- STEPS steps from the same seed and measures test accuracy; the step is kept while the
-- accuracy stays within BUDGET of the starting run, and the next tensor is tried when it
-- does not. Prints every trial, the final per-tensor table, the bytes of model state saved
-- and the accuracy.
--
--   lnsc run examples/tune/greedy.lua [--short] [--model M.onnx] [--steps N] [--budget B]
--                                     [--data DIR]
-- --short: 40 steps, the two weights only (what the test runs).
local cmdline = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/cmdline.lua")
local opts = cmdline.parse(arg, {steps = 200, budget = 0.01},
  "greedy.lua [--short] [--model M.onnx] [--steps N] [--budget B] [--data DIR]")
local model = opts.model
local steps = cmdline.int(opts.steps, "--steps")
local budget = tonumber(opts.budget) or error("--budget wants a number")
if opts.short then
  steps = 40
end
local data = lnsc.dataset(opts.data)

local m = lnsc.load(model)
local order = {"weight", "weight_view", "activation", "activation_gradient", "weight_gradient"}
local candidates = {}
for _, role in ipairs(order) do
  for _, t in ipairs(m:tensors(role)) do
    if t.format.dtype == "lns" and (not opts.short or role == "weight") then
      candidates[#candidates + 1] = t
    end
  end
end
local recipe = {}
for _, t in ipairs(candidates) do
  recipe[t.name] = t.format_text
end

local trials, t0, clock0 = 0, lnsc.clock(), os.clock()
local function accuracy()
  local tr <close> = m:compile{observe = false}
  local r = tr:train{data = data, steps = steps, seed = 0}
  trials = trials + 1
  return r.test_accuracy
end

local function short(fmt)
  return (fmt:gsub(":.*", ""))
end

local base = accuracy()
local base_bytes = m:state_bytes()
print(string.format("lns-madam, %d steps: test accuracy %.4f, %d bytes of state; budget %.4f",
  steps, base, base_bytes, budget))
print(string.format("%-32s %-10s %-10s %8s  %s", "tensor", "from", "to", "accuracy", "kept"))
for _, t in ipairs(candidates) do
  while t.format.bits > 2 do
    local f = t.format
    local from = short(t.format_text)
    t.format = {bits = f.bits - 1, gamma = math.max(1, f.gamma // 2)}
    local acc = accuracy()
    local keep = acc >= base - budget
    print(string.format("%-32s %-10s %-10s %8.4f  %s", t.name, from, short(t.format_text), acc,
      keep and "yes" or "no"))
    if not keep then
      t.format = f -- back to the last format that stayed within the budget
      break
    end
  end
end

local final = accuracy()
local bytes, per = m:state_bytes()
print()
print(string.format("%-32s %-20s %-28s %-28s %10s", "tensor", "role", "recipe", "final", "bytes"))
for _, t in ipairs(candidates) do
  print(string.format("%-32s %-20s %-28s %-28s %10s", t.name, t.role, recipe[t.name],
    t.format_text, per[t.name] and tostring(per[t.name]) or "-"))
end
print()
print(string.format("state: %d -> %d bytes, %d saved (%.1f%%)", base_bytes, bytes,
  base_bytes - bytes, 100 * (base_bytes - bytes) / base_bytes))
print(string.format("test accuracy: %.4f (start %.4f, budget %.4f)", final, base, budget))
print(string.format("%d configurations of %d steps in %.1f s (%.1f s CPU)", trials, steps,
  lnsc.clock() - t0, os.clock() - clock0))
