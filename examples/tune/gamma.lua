-- gamma.lua: per-role choice of gamma at fixed bits from telemetry, then verified by training.
--
-- At a fixed number of bits, gamma trades range for resolution: lns<B, g> spans (2^(B-1) - 2)/g
-- octaves in steps of 2^(1/g). With delayed scaling the top of the range follows the
-- tensor's recent amax, so too large a gamma shows up in telemetry as elements that
-- underflow (flushed below the bottom of the range) and, when amax grows, saturate. For each
-- role (activations, activation gradients, weight gradients) the script sets every LNS tensor
-- of the role to BITS bits and each candidate gamma in turn (the other roles as the recipe
-- has them), trains a short run and reads the fraction of encoded elements that saturated or
-- underflowed. The recipe's own formats, run the same way, set the tolerance: a role may lose
-- as large a fraction as the recipe loses for it (at least 0.5%). The chosen gamma is the
-- largest (finest steps) within the tolerance. The choice is then verified by training:
-- the chosen formats against the same bits with gamma 1 and with the recipe's gammas.
--
--   lnsc run examples/tune/gamma.lua [--short] [--model M.onnx] [--steps N] [--verify N]
--                                    [--data DIR]
-- --short: 30-step runs, gammas 1 and 4, a 60-step verification (what the test runs).
local cmdline = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/cmdline.lua")
local opts = cmdline.parse(arg, {steps = 200, verify = 937},
  "gamma.lua [--short] [--model M.onnx] [--steps N] [--verify N] [--data DIR]")
local model = opts.model
local steps, verify = cmdline.int(opts.steps, "--steps"), cmdline.int(opts.verify, "--verify")
local gammas = {1, 2, 4, 8, 16}
if opts.short then
  steps, verify, gammas = 30, 60, {1, 4}
end
local data = lnsc.dataset(opts.data)
local roles = {
  {role = "activation", bits = 6},
  {role = "activation_gradient", bits = 4},
  {role = "weight_gradient", bits = 5},
}
local t0, configs = lnsc.clock(), 0

-- A model with formats[role] = {bits=, gamma=} for every LNS tensor of the role.
local function model_with(formats)
  local m = lnsc.load(model)
  m:policy(function(t)
    local f = formats[t.role]
    if f and t.format.dtype == "lns" then
      return f
    end
  end)
  return m
end

-- Trains m for n steps; returns the metrics and the fractions of encoded elements of each
-- role that saturated and underflowed.
local function run(m, n)
  local tr <close> = m:compile{observe = false}
  local r = tr:train{data = data, steps = n, seed = 0}
  configs = configs + 1
  local acc = {}
  for _, x in pairs(tr:telemetry()) do
    if x.total and x.total > 0 then
      local a = acc[x.role] or {sat = 0, unf = 0, total = 0}
      a.sat, a.unf, a.total = a.sat + x.saturated, a.unf + x.underflowed, a.total + x.total
      acc[x.role] = a
    end
  end
  local frac = {}
  for role, a in pairs(acc) do
    frac[role] = {sat = a.sat / a.total, unf = a.unf / a.total}
  end
  return r, frac
end

-- the recipe: its formats per role and what they lose
local recipe_model = lnsc.load(model)
local recipe_fmt = {}
for _, t in ipairs(recipe_model:tensors()) do
  if t.format.dtype == "lns" and not recipe_fmt[t.role] then
    recipe_fmt[t.role] = t.format
  end
end
local _, recipe_frac = run(recipe_model, steps)

print(string.format("search: %d-step runs; a gamma is kept when saturated + underflowed "
  .. "elements stay within what the recipe loses (at least 0.5%%)", steps))
print(string.format("%-20s %-8s %10s %12s %9s  %s", "role", "format", "saturated",
  "underflowed", "accuracy", "within"))
local chosen = {}
for _, r in ipairs(roles) do
  local rf = recipe_frac[r.role]
  local tol = math.max(0.005, rf.sat + rf.unf)
  print(string.format("%-20s %-8s %9.4f%% %11.4f%% %9s  (recipe; tolerance %.2f%%)", r.role,
    string.format("lns%dg%d", recipe_fmt[r.role].bits, recipe_fmt[r.role].gamma), 100 * rf.sat,
    100 * rf.unf, "", 100 * tol))
  local least, least_g = math.huge, gammas[1]
  for _, g in ipairs(gammas) do
    local res, frac = run(model_with({[r.role] = {bits = r.bits, gamma = g}}), steps)
    local f = frac[r.role]
    local ok = f.sat + f.unf <= tol
    if ok and (not chosen[r.role] or g > chosen[r.role].gamma) then
      chosen[r.role] = {bits = r.bits, gamma = g}
    end
    if f.sat + f.unf < least then
      least, least_g = f.sat + f.unf, g
    end
    print(string.format("%-20s %-8s %9.4f%% %11.4f%% %9.4f  %s", r.role,
      string.format("lns%dg%d", r.bits, g), 100 * f.sat, 100 * f.unf, res.test_accuracy,
      ok and "yes" or "no"))
  end
  if not chosen[r.role] then
    print(string.format("%-20s none within the tolerance: gamma %d loses the least", r.role,
      least_g))
    chosen[r.role] = {bits = r.bits, gamma = least_g}
  end
end

-- verification: the choice against gamma 1 and the recipe's gammas, at the same bits
local function label(formats)
  local parts = {}
  for _, r in ipairs(roles) do
    parts[#parts + 1] = string.format("lns%dg%d", formats[r.role].bits, formats[r.role].gamma)
  end
  return table.concat(parts, " / ")
end
local g1, rg = {}, {}
for _, r in ipairs(roles) do
  g1[r.role] = {bits = r.bits, gamma = 1}
  rg[r.role] = {bits = r.bits, gamma = recipe_fmt[r.role].gamma}
end
print()
print(string.format("verification: %d steps; formats are activation / activation gradient / "
  .. "weight gradient", verify))
print(string.format("%-10s %-26s %10s %9s", "", "formats", "test loss", "accuracy"))
local results = {}
for _, v in ipairs{{"chosen", chosen}, {"gamma 1", g1}, {"recipe g", rg}} do
  local res = run(model_with(v[2]), verify)
  results[v[1]] = res.test_accuracy
  print(string.format("%-10s %-26s %10.4f %9.4f", v[1], label(v[2]), res.test_loss,
    res.test_accuracy))
end
local best = math.max(results["gamma 1"], results["recipe g"])
print(string.format("chosen %s: %.4f, %+.4f against the better of the two others",
  label(chosen), results.chosen, results.chosen - best))
print(string.format("%d configurations in %.1f s", configs, lnsc.clock() - t0))
