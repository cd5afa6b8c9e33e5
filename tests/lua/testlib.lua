-- testlib.lua: assertions for the Lua tests (tests/lua/test_*.lua, run by `lnsc run`).
--
-- Each check counts a pass or a failure with the caller's file:line; T.done() prints the
-- summary line CTest output shows ("test_model.lua: 41 passed, 0 failed") and raises (so
-- `lnsc run` exits 1) when anything failed: a script keeps going after a failure and reports
-- all of them.
local T = {passed = 0, failed = 0}

-- The first caller outside this file.
local function where()
  local me = debug.getinfo(1, "S").short_src
  for level = 2, 20 do
    local info = debug.getinfo(level, "Sl")
    if not info then
      break
    end
    if info.short_src ~= me then
      return string.format("%s:%d", info.short_src, info.currentline)
    end
  end
  return "?"
end

local function record(ok, what, detail)
  if ok then
    T.passed = T.passed + 1
  else
    T.failed = T.failed + 1
    io.stderr:write(string.format("FAIL %s: %s%s\n", where(), what,
      detail and (" (" .. detail .. ")") or ""))
  end
  return ok
end

function T.ok(cond, what)
  return record(cond and true or false, what or "expected true")
end

function T.eq(got, want, what)
  return record(got == want, what or "values differ",
    string.format("got %s, want %s", tostring(got), tostring(want)))
end

function T.near(got, want, tol, what)
  local ok = type(got) == "number" and math.abs(got - want) <= tol
  return record(ok, what or "not within tolerance",
    string.format("got %s, want %s +/- %g", tostring(got), tostring(want), tol))
end

-- f() must raise an error whose message contains every pattern (plain text) in pats; the
-- first is usually the caller's "file:line:" so that errors point at the script.
function T.raises(f, pats, what)
  local ok, err = pcall(f)
  if ok then
    return record(false, what or "expected an error", "no error")
  end
  err = tostring(err)
  for _, p in ipairs(pats) do
    if not err:find(p, 1, true) then
      return record(false, what or "error message", string.format("%q lacks %q", err, p))
    end
  end
  return record(true)
end

-- "file.lua:N:" for the line that calls here plus d (the line a raise is expected on).
function T.here(d)
  local info = debug.getinfo(2, "Sl")
  return string.format("%s:%d:", info.short_src, info.currentline + (d or 0))
end

function T.done(name)
  print(string.format("%s: %d passed, %d failed", name, T.passed, T.failed))
  if T.failed > 0 then
    error(string.format("%s: %d checks failed", name, T.failed), 0)
  end
end

-- The repository, for paths to examples.
T.src = os.getenv("LNSC_SRC") or "."
T.mlp = T.src .. "/examples/mlp/mlp.onnx"

return T
