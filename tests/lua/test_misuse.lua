-- test_misuse.lua: every function and method of the module called with arguments of every
-- wrong kind. Each call must raise a Lua error (a message naming the script's line or the bad
-- argument), never crash the process or succeed silently; the objects must keep working.
local T = require "testlib"

local m = lnsc.load(T.mlp, {batch = 8})
local tr = m:compile{observe = false}
local ds = lnsc.dataset{train = {x = {{0.5}}, y = {0}}}
local t = m:tensor("/net/net.2/Relu_output_0")
local function noop() end
local junk = {nil, true, 0, -1, 2 ^ 70, 0 / 0, "", "x", {}, {1, 2}, {{}}, noop, m, tr, t, ds,
  coroutine.create(function() end), io.stdout}
local njunk = 18 -- the array has holes (nil), so its length is not #junk

-- f(x) for every junk value x: each either raises or (for the values listed in ok) succeeds.
local function sweep(name, f, ok)
  local fine, bad = 0, {}
  for i = 1, njunk do
    local x = junk[i]
    local success, err = pcall(f, x)
    if success then
      if not (ok and ok(x)) then
        bad[#bad + 1] = string.format("accepted %s", tostring(x))
      end
    elseif type(err) ~= "string" or err == "" then
      bad[#bad + 1] = "an error without a message"
    else
      fine = fine + 1
    end
  end
  T.ok(#bad == 0, name .. ": " .. table.concat(bad, ", "))
  return fine
end

local function is_table(x)
  return type(x) == "table"
end

sweep("lnsc.load", function(x) return lnsc.load(x) end)
sweep("lnsc.load options", function(x) return lnsc.load(T.mlp, x) end,
  function(x) return x == nil or (type(x) == "table" and next(x) == nil) end)
sweep("lnsc.dataset", function(x) return lnsc.dataset(x) end,
  function(x) return x == nil or x == ds end)
sweep("lnsc.resume", function(x) return lnsc.resume(x) end)
sweep("model:tensor", function(x) return m:tensor(x) end)
sweep("model:tensors", function(x) return m:tensors(x) end,
  function(x) return x == nil or x == noop end)
sweep("model:policy", function(x) return m:policy(x) end, function(x) return x == noop end)
sweep("model:compile", function(x) return m:compile(x) end,
  function(x) return x == nil or (type(x) == "table" and next(x) == nil) end)
sweep("model method on junk self", function(x) return m.inspect(x) end,
  function(x) return x == m end)
sweep("tensor.format", function(x) t.format = x end, function(x)
  return x == nil or x == "" and false or (is_table(x) and next(x) == nil)
end)
t.format = nil
local function key(x)
  return type(x) == "string" or type(x) == "number" -- Lua reads a number as its string
end
sweep("tensor field", function(x) return t[x] end, key)
sweep("tensor assignment", function(x) t[x] = 1 end)
sweep("trainer:train", function(x) return tr:train(x) end, function(x)
  return x == nil or (is_table(x) and next(x) == nil)
end)
sweep("trainer:train data", function(x) return tr:train{data = x, steps = 1} end,
  function(x) return x == nil end)
sweep("trainer:eval", function(x) return tr:eval(x) end,
  function(x) return x == nil or (is_table(x) and next(x) == nil) end)
sweep("trainer:get", function(x) return tr:get(x) end)
sweep("trainer:set", function(x) return tr:set("net.3.bias", x) end)
sweep("trainer:set name", function(x) return tr:set(x, {}) end)
sweep("trainer:set_scale", function(x) return tr:set_scale("net.3.weight", x) end,
  function(x) return x == 0 or x == -1 end)
local tmp = os.tmpname()
sweep("trainer:save", function(x) -- names go to files beside tmp, removed below
  return tr:save(key(x) and x ~= "" and tmp .. "-" .. x or x)
end, function(x) return x ~= "" and key(x) end)
for i = 1, njunk do
  if key(junk[i]) then
    os.remove(tmp .. "-" .. junk[i])
  end
end
os.remove(tmp)
T.raises(function() tr:save("/no/such/dir/x.ckpt") end, {T.here(), "/no/such/dir/x.ckpt"},
  "save into a missing folder")
sweep("trainer method on junk self", function(x) return tr.telemetry(x) end,
  function(x) return x == tr end)
sweep("dataset field", function(x) return ds[x] end, key)
sweep("option values", function(x) return m:compile{threads = x} end,
  function(x) return x == nil end)
sweep("format fields", function(x) t.format = {bits = x} end, function(x) return x == nil end)
t.format = nil

-- huge and odd requests are refused, not attempted
T.raises(function() m:compile{batch = 1 << 40} end, {"option 'batch' must be from 1 to 65536"},
  "huge batch")
T.raises(function() tr:train{steps = math.maxinteger} end, {"option 'steps' must be from 1"},
  "absurd step count")
T.raises(function() lnsc.dataset{train = {x = {}, y = {}}} end, {"at least one"}, "empty dataset")
T.raises(function() tr:set("net.3.weight", setmetatable({}, {__len = function() return 2560 end}))
end, {"has 2560 elements, the array 0"}, "a table lying about its length")
local deep = {}
for i = 1, 10 do
  deep = {deep}
end
T.raises(function() t.format = deep end, {"option keys are names"}, "a nested table as a format")

-- after all that, everything still works
T.eq(m:tensor("net.1.weight").format_text, "lns12g128:rn:static:uf=min", "the model is intact")
local r = tr:train{steps = 3, eval = false}
T.eq(r.steps, 3, "the trainer still trains")
T.ok(r.train_loss > 0, "with a finite loss")
local e = tr:eval{limit = 100}
T.eq(e.examples, 100, "and evaluates")

T.done("test_misuse.lua")
