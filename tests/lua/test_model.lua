-- test_model.lua: lnsc.load, model:tensors, reading and setting formats, policies, and the
-- errors a script gets for misuse (each naming the problem and the script's file:line).
local T = require "testlib"

T.eq(lnsc.version, "0.1.0", "lnsc.version")
T.eq(lnsc.recipes, "fp32, lns-madam, lns-sgd", "lnsc.recipes")
local c0 = lnsc.clock()
T.ok(type(c0) == "number" and lnsc.clock() >= c0, "lnsc.clock is monotonic")
T.eq(require("lnsc"), lnsc, "require 'lnsc' is the global")

local m = lnsc.load(T.mlp)
T.eq(m.recipe, "lns-madam", "default recipe")
T.eq(m.batch, 64, "default batch")
T.ok(tostring(m):find("Model '", 1, true), "Model tostring")

-- ---- tensors and their descriptions ----
local by = {}
for _, t in ipairs(m:tensors()) do
  by[t.name] = t
end
local w1 = by["net.1.weight"]
T.ok(w1, "the first weight is listed")
T.eq(w1.role, "weight", "weight role")
T.eq(w1.shape[1], 256, "weight shape[1]")
T.eq(w1.shape[2], 784, "weight shape[2]")
T.eq(w1.numel, 256 * 784, "weight numel")
T.eq(w1.format.dtype, "lns", "Madam weight is LNS")
T.eq(w1.format.bits, 12, "Madam weight bits")
T.eq(w1.format.gamma, 128, "Madam weight gamma")
T.eq(w1.format.scale, "static", "weight scale")
T.eq(w1.format.underflow, "min", "weight underflow")
T.eq(w1.format.optimizer, "madam", "weight optimizer")
T.eq(w1.optimizer, "madam", "weight optimizer field")
T.eq(w1.bytes, 256 * 784 * 2, "lns12 weight bytes (int16 containers)")
T.eq(w1.op, nil, "a weight has no producer")
T.eq(by["net.1.bias"].format.optimizer, "adam", "1-D params use Adam")
T.eq(by["net.1.bias"].format.dtype, "fp32", "bias fp32")

local relu = by["/net/net.2/Relu_output_0"]
T.eq(relu.role, "activation", "activation role")
T.eq(relu.op, "Relu", "producing op")
T.eq(relu.node, "/net/net.2/Relu", "producing node")
T.eq(relu.format_text, "lns8g8:rn:delayed:uf=zero", "activation format text")
T.eq(relu.format.rounding, "nearest", "activation rounding")
T.eq(relu.format.scale, "delayed", "activation scale")
T.eq(by["view/net.1.weight"].role, "weight_view", "the view's role")
T.eq(by["view/net.1.weight"].param, "net.1.weight", "the view's weight")
T.eq(by["loss/grad"].role, "activation_gradient", "dY role")
T.eq(by["loss/grad"].format_text, "lns5g2:sr:delayed:uf=zero", "dY format")
T.eq(by["/net/net.1/Gemm/grad"].role, "weight_gradient", "dW role")
T.eq(by["/net/net.1/Gemm/grad"].param, "net.1.weight", "dW's weight")
T.eq(by["madam.v/net.1.weight"].role, "optimizer_state", "Madam v role")
T.eq(by["input"].role, "input", "input role")
T.eq(by["labels"].role, "label", "label role")
T.eq(by["loss"].role, "loss", "loss role")
T.eq(relu.settable, true, "an activation's format can be set")
T.eq(by["input"].settable, false, "an input's cannot")

-- by role and by predicate
T.eq(#m:tensors("weight"), 4, "four parameters")
T.eq(#m:tensors("weight_gradient"), 4, "four parameter gradients")
T.eq(#m:tensors(function(t) return t.format.dtype == "lns" end), 10, "LNS tensors")

-- ---- setting formats ----
local st0 = m:state_bytes()
relu.format = "lns6g4"
T.eq(relu.format_text, "lns6g4:rn:delayed:uf=zero", "string format")
relu.format = {rounding = "stochastic", underflow = "min"}
T.eq(relu.format_text, "lns6g4:sr:delayed:uf=min", "a table merges into the format")
relu.format = nil
T.eq(relu.format_text, "lns8g8:rn:delayed:uf=zero", "nil: back to the recipe")
local gemm1 = m:tensor("/net/net.1/Gemm_output_0")
gemm1.format = {bits = 6}
T.eq(gemm1.format_text, "lns6g8:rn:delayed:uf=zero", "fp32 made LNS: lns8g8 defaults merged")
gemm1.format = "fp32"
T.eq(gemm1.format.dtype, "fp32", "back to fp32")
w1.format = {bits = 8, gamma = 16}
T.eq(w1.format_text, "lns8g16:rn:static:uf=min", "weight storage format")
local st1, per = m:state_bytes()
T.eq(st0 - st1, 256 * 784, "int8 storage saves a byte per weight")
T.eq(per["net.1.weight"], 256 * 784 * (1 + 4), "per-parameter bytes: codes and Madam v")
w1.format = "lns10g64" -- a string gives a weight a static scale
T.eq(w1.format.scale, "static", "weight scale stays static")
by["net.1.bias"].format = {optimizer = "sgd"}
T.eq(by["net.1.bias"].format.optimizer, "sgd", "per-parameter optimizer")
local w3 = m:tensor("net.3.weight")
w3.format = {dtype = "fp32", optimizer = "adam"}
T.eq(w3.format.dtype, "fp32", "a weight made fp32 with Adam")
T.eq(m:tensor("net.3.weight").format.optimizer, "adam", "its optimizer")
T.raises(function() return m:tensor("view/net.3.weight") end, {"no tensor named"},
  "an fp32 weight has no view")
local ov = m:overrides()
T.eq(ov["net.1.weight"].format, "lns10g64:rn:static:uf=zero", "overrides() lists formats")
T.ok(ov["net.1.weight"].origin:find("test_model.lua:", 1, true), "with their origin")
T.eq(ov["net.1.bias"].optimizer, "sgd", "and optimizers")
T.ok(m:inspect():find("%net.1.weight : lns10g64", 1, true), "inspect shows the override")
m:reset()
T.eq(next(m:overrides()), nil, "reset drops every override")
T.eq(m:tensor("net.1.weight").format_text, "lns12g128:rn:static:uf=min", "recipe again")

-- ---- policies ----
local n = m:policy(function(t)
  if t.role == "activation" and t.format.dtype == "lns" then
    return {bits = 6, gamma = 4}
  elseif t.role == "activation_gradient" and t.format.dtype == "lns" then
    return "lns4g1:sr"
  end
end)
T.eq(n, 4, "the policy set two activations and two gradients")
T.eq(m:tensor("/net/net.0/Flatten_output_0").format_text, "lns6g4:rn:delayed:uf=zero",
  "policy: activations")
T.eq(m:tensor("loss/grad").format_text, "lns4g1:sr:delayed:uf=zero", "policy: gradients")
T.raises(function()
  m:policy(function(t) if t.role == "activation" then return {bits = 1} end end)
end, {T.here(-1), "policy ", "for tensor", "bits must be from 2 to 16"}, "a policy's bad format")
T.eq(m:tensor("loss/grad").format_text, "lns4g1:sr:delayed:uf=zero",
  "a failed policy leaves the model as it was")
m:reset()

-- fp32 recipe with a Madam override: the weight becomes Madam's lns12g128 with a view
local f = lnsc.load(T.mlp, {recipe = "fp32", batch = 16})
T.eq(f.batch, 16, "batch option")
T.eq(f:tensor("input").shape[1], 16, "batch fixes the input's first dim")
f:tensor("net.1.weight").format = {optimizer = "madam"}
T.eq(f:tensor("net.1.weight").format_text, "lns12g128:rn:static:uf=min", "Madam under fp32")
T.eq(f:tensor("view/net.1.weight").format_text, "lns8g8:rn:static:uf=min", "with its view")
T.eq(f:tensor("/net/net.1/Gemm/grad").format_text, "lns5g2:sr:delayed:uf=zero",
  "and an LNS gradient")

-- lns-sgd: a weight made fp32 is an fp32 SGD weight, without a view
local sg = lnsc.load(T.mlp, {recipe = "lns-sgd"})
T.eq(sg:tensor("view/net.1.weight").format_text, "lns8g8:rn:static:uf=min", "lns-sgd's view")
sg:tensor("net.1.weight").format = "fp32"
T.eq(sg:tensor("net.1.weight").format.optimizer, "sgd", "still SGD")
T.raises(function() return sg:tensor("view/net.1.weight") end, {"no tensor named"},
  "an fp32 weight has no view")

-- ---- misuse: errors name the problem and the line ----
local relu2 = m:tensor("/net/net.2/Relu_output_0")
T.raises(function() relu2.format = {bits = 1} end, {T.here(), "bits must be from 2 to 16"},
  "bits 1")
T.raises(function() relu2.format = {gamma = 3} end, {T.here(), "gamma must be a power of two"},
  "gamma 3")
T.raises(function() relu2.format = {bits = 17} end, {T.here(), "not 17"}, "bits 17")
T.raises(function() relu2.format = {bits = 6.5} end, {T.here(), "bits must be an integer"},
  "fractional bits")
T.raises(function() relu2.format = {bits = "6"} end, {T.here(), "bits must be an integer"},
  "bits as a string")
T.raises(function() relu2.format = {bitz = 6} end, {T.here(), "unknown option 'bitz'"},
  "a misspelt field")
T.raises(function() relu2.format = {rounding = "up"} end, {T.here(), "rounding must be one of"},
  "bad rounding")
T.raises(function() relu2.format = "lns8g3" end, {T.here(), "is not a format"}, "bad string")
T.raises(function() relu2.format = 8 end, {T.here(), "a format is a string"}, "a number")
T.raises(function() relu2.format = {dtype = "fp32", bits = 4} end,
  {T.here(-1), "an fp32 format has no bits"}, "fp32 with bits")
T.raises(function() relu2.shape = {1} end, {T.here(), "only format can"}, "read-only field")
T.raises(function() m:tensor("nope") end, {T.here(), "no tensor named 'nope'"}, "unknown name")
T.raises(function() m:tensor("input").format = "lns8g8" end,
  {T.here(-1), "cannot be set", "data is fed to each step"}, "an input's format")
T.raises(function() m:tensor("labels").format = "lns8g8" end, {T.here(), "cannot be set"},
  "labels")
T.raises(function() m:tensor("loss").format = "lns8g8" end, {T.here(), "the loss is fp32"},
  "the loss")
T.raises(function() m:tensor("madam.v/net.1.weight").format = "lns16g2048" end,
  {T.here(-1), "optimizer state is fp32"}, "optimizer state")
T.raises(function() m:tensor("net.1.weight").format = "fp32" end,
  {T.here(-1), "updated by Madam, which needs an LNS format"}, "fp32 Madam weight")
T.raises(function() m:tensor("net.1.weight").format = {scale = "delayed"} end,
  {T.here(-1), "a parameter's scale is static"}, "delayed weight scale")
T.raises(function() m:tensor("net.1.bias").format = {optimizer = "madam"} end,
  {T.here(-1), "Madam updates weights of rank 2 or more"}, "Madam on a bias")
T.raises(function() m:tensor("net.1.weight").format = {optimizer = "lamb"} end,
  {T.here(-1), "optimizer must be one of madam, sgd, adam"}, "unknown optimizer")
T.raises(function() relu2.format = {optimizer = "sgd"} end,
  {T.here(-1), "not a parameter: it has no optimizer"}, "optimizer of an activation")
T.raises(function() m:tensor("view/net.1.weight").format = "fp32" end,
  {T.here(-1), "as the GEMMs read it"}, "fp32 view")
T.raises(function() m:tensor("net.1.weight").format = {optimizer = "adam", dtype = "fp32"};
  m:tensor("view/net.1.weight") end, {"no tensor named 'view/net.1.weight'"},
  "the view goes with Madam")
m:reset()
-- a setting the passes refuse as a whole is undone: the view of a weight that becomes Adam
m:tensor("view/net.3.weight").format = "lns6g8"
T.raises(function() m:tensor("net.3.weight").format = {optimizer = "adam", dtype = "fp32"} end,
  {T.here(-1), "no tensor named 'view/net.3.weight'"}, "an override left without its tensor")
T.eq(m:tensor("net.3.weight").format.optimizer, "madam", "the refused setting was undone")
m:reset()

T.raises(function() lnsc.load(T.src .. "/no/such.onnx") end, {T.here(), "no/such.onnx"},
  "missing file")
T.raises(function() lnsc.load(T.mlp, {recipe = "int8"}) end, {T.here(), "unknown recipe 'int8'"},
  "bad recipe")
T.raises(function() lnsc.load(T.mlp, {batch = 0}) end, {T.here(), "option 'batch' must be from"},
  "batch 0")
T.raises(function() lnsc.load(T.mlp, {bacth = 8}) end, {T.here(), "unknown option 'bacth'"},
  "misspelt option")
T.raises(function() lnsc.load(T.mlp, 5) end, {T.here(), "options are a table"}, "bad options")
T.raises(function() lnsc.load() end, {"bad argument #1 to 'load'"}, "no path")
T.raises(function() m.tensors(5) end, {"lnsc.Model expected"}, "method on a non-model")
T.raises(function() m:tensors(7) end, {T.here(), "takes a role name or a function"}, "bad filter")
T.raises(function() m:tensors("weights") end, {T.here(), "unknown role 'weights'"}, "bad role")
T.raises(function() m:policy("x") end, {"function expected"}, "policy needs a function")
T.eq(getmetatable(m), "lnsc", "metatables are hidden from scripts")

T.done("test_model.lua")
