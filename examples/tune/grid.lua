-- grid.lua: a 30-configuration sweep of 200-step runs: activation bits against gradient bits.
--
-- Every LNS activation gets lns<A, 2^(A-5)> (gamma at least 1) and every LNS gradient
-- (activation and weight gradients) lns<G, 2^(G-4)>, so that each format keeps the range of
-- the recipe's lns8g8 / lns5g2 and only the resolution changes with the bits. Each cell is a
-- model compiled in process and trained STEPS steps from the same seed; the table shows test
-- accuracy, and the last line the time the whole sweep took, compile times included (this is
-- the speed a bitwidth search runs at: see the README).
--
--   lnsc run examples/tune/grid.lua [--short] [--model M.onnx] [--steps N] [--data DIR]
-- --short: 2 x 2 cells of 20 steps (what the test runs).
local cmdline = dofile((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/cmdline.lua")
local opts = cmdline.parse(arg, {steps = 200},
  "grid.lua [--short] [--model M.onnx] [--steps N] [--data DIR]")
local model = opts.model
local steps = cmdline.int(opts.steps, "--steps")
local abits, gbits = {4, 5, 6, 7, 8}, {3, 4, 5, 6, 7, 8}
if opts.short then
  steps, abits, gbits = 20, {5, 8}, {4, 5}
end
local data = lnsc.dataset(opts.data) -- loaded before the clock starts: the sweep times
                                     -- compiling, training and testing

local t0, cpu0 = lnsc.clock(), os.clock()
local compile_s, train_s = 0, 0
local m = lnsc.load(model)
local head = {string.format("%-12s", "act \\ grad")}
for _, g in ipairs(gbits) do
  head[#head + 1] = string.format("%9s", string.format("lns%dg%d", g, 1 << math.max(0, g - 4)))
end
print(table.concat(head, " "))
local n = 0
for _, a in ipairs(abits) do
  local row = {string.format("%-12s", string.format("lns%dg%d", a, 1 << math.max(0, a - 5)))}
  for _, g in ipairs(gbits) do
    m:policy(function(t)
      if t.format.dtype ~= "lns" then
        return nil
      elseif t.role == "activation" then
        return {bits = a, gamma = 1 << math.max(0, a - 5)}
      elseif t.role == "activation_gradient" or t.role == "weight_gradient" then
        return {bits = g, gamma = 1 << math.max(0, g - 4)}
      end
    end)
    local tr <close> = m:compile{observe = false}
    local r = tr:train{data = data, steps = steps, seed = 0}
    compile_s, train_s = compile_s + tr.compile_seconds, train_s + r.seconds
    row[#row + 1] = string.format("%9.4f", r.test_accuracy)
    n = n + 1
    m:reset()
  end
  print(table.concat(row, " "))
end
print(string.format("%d configurations of %d steps in %.1f s (%.1f s CPU): compile %.1f s, "
  .. "train and test %.1f s", n, steps, lnsc.clock() - t0, os.clock() - cpu0, compile_s,
  train_s))
