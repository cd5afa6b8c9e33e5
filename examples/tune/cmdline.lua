-- cmdline.lua: the command line the tune scripts share, loaded with dofile.
--
-- parse(arg, defaults, usage) reads `--short` (a switch) and `--NAME VALUE` for every NAME in
-- defaults (plus --model and --data, always accepted) into a table that starts as a copy of
-- defaults; anything else raises the usage text. The result's `model` defaults to
-- examples/mlp/mlp.onnx beside the script; int(v, what) is v as an integer or an error naming
-- the flag.
local M = {}

function M.parse(arg, defaults, usage)
  local opts = {}
  for k, v in pairs(defaults) do opts[k] = v end
  local i = 1
  while arg[i] do
    local a, name = arg[i], arg[i]:match("^%-%-(.+)$")
    if a == "--short" then
      opts.short = true
    elseif name and (defaults[name] ~= nil or name == "model" or name == "data") and
        arg[i + 1] then
      opts[name] = arg[i + 1]
      i = i + 1
    else
      error("usage: " .. usage, 2)
    end
    i = i + 1
  end
  local here = arg[0]:match("^(.*)/[^/]*$") or "."
  opts.model = opts.model or (here .. "/../mlp/mlp.onnx")
  return opts
end

function M.int(v, what)
  return math.tointeger(tonumber(v)) or error(what .. " wants an integer", 2)
end

return M
