/* lua_lnsc.c: the module table `lnsc`, `lnsc run SCRIPT.lua`, and the error and option
 * helpers every lua_*.c file uses.
 *
 * `lnsc run` is a small stand-alone Lua interpreter: a fresh state with the standard
 * libraries, the module preloaded (require "lnsc", and the global `lnsc`), `arg` and the
 * chunk's varargs set as the `lua` program sets them, and errors reported with a traceback.
 * Errors are raised with luaL_where(L, 1) in front, the position of the Lua code that called
 * into the module, so every message a script sees names its file:line. Messages are formatted
 * into a buffer first because lua_pushfstring knows only a few conversions. Options tables
 * are read with raw gets (no metamethods run while C code holds state) and checked against
 * the keys a function takes, so a misspelt option is an error and never a silent default.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "frontend/cli.h"
#include "frontend/lua/lnsc_lua.h"

/* ---- errors and options ---- */

int fe_lua_fail_top(lua_State *L)
{
	luaL_where(L, 1);
	lua_insert(L, -2);
	lua_concat(L, 2);
	return lua_error(L);
}

int fe_lua_fail(lua_State *L, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	lua_pushstring(L, buf);
	return fe_lua_fail_top(L);
}

void fe_lua_push_diags(lua_State *L, IrCtx *c, const char *what)
{
	const char *t = ir_error_count(c) ? ir_diag_text(c) : "";
	lua_pushstring(L, t[0] ? t : what);
}

void fe_lua_check_opts(lua_State *L, int idx, const char *what, const char *allowed)
{
	idx = lua_absindex(L, idx);
	if (lua_isnoneornil(L, idx))
		return; /* no options: all defaults */
	if (!lua_istable(L, idx))
		fe_lua_fail(L, "%s: options are a table {...}, not %s", what,
		            luaL_typename(L, idx));
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		char key[80];
		if (lua_type(L, -1) != LUA_TSTRING)
			fe_lua_fail(L, "%s: option keys are names, not %s", what,
			            luaL_typename(L, -1));
		const char *k = lua_tostring(L, -1);
		snprintf(key, sizeof key, " %s ", k);
		if (strlen(k) > 60 || strchr(k, ' ') || !strstr(allowed, key))
			fe_lua_fail(L, "%s: unknown option '%.60s' (options:%s)", what, k, allowed);
	}
}

/* Pushes t[key] of an options table (nil when idx is not a table: all defaults). */
static int opt_get(lua_State *L, int idx, const char *key)
{
	if (lua_type(L, idx) != LUA_TTABLE) {
		lua_pushnil(L);
		return LUA_TNIL;
	}
	lua_pushstring(L, key);
	return lua_rawget(L, idx);
}

const char *fe_lua_opt_string(lua_State *L, int idx, const char *key, const char *def)
{
	idx = lua_absindex(L, idx);
	int t = opt_get(L, idx, key);
	const char *s = def;
	if (t == LUA_TSTRING)
		s = lua_tostring(L, -1); /* the table keeps it alive */
	else if (t != LUA_TNIL)
		fe_lua_fail(L, "option '%s' must be a string, not %s", key, luaL_typename(L, -1));
	lua_pop(L, 1);
	return s;
}

int64_t fe_lua_opt_int(lua_State *L, int idx, const char *key, int64_t def, int64_t lo, int64_t hi)
{
	idx = lua_absindex(L, idx);
	int t = opt_get(L, idx, key);
	int64_t v = def;
	if (t != LUA_TNIL) {
		int ok = 0;
		lua_Integer n = lua_tointegerx(L, -1, &ok);
		if (t != LUA_TNUMBER || !ok)
			fe_lua_fail(L, "option '%s' must be an integer, not %s", key,
			            t == LUA_TNUMBER ? lua_tostring(L, -1) : luaL_typename(L, -1));
		if (n < lo || n > hi)
			fe_lua_fail(L, "option '%s' must be from %lld to %lld, not %lld", key,
			            (long long)lo, (long long)hi, (long long)n);
		v = (int64_t)n;
	}
	lua_pop(L, 1);
	return v;
}

double fe_lua_opt_number(lua_State *L, int idx, const char *key, double def)
{
	idx = lua_absindex(L, idx);
	int t = opt_get(L, idx, key);
	double v = def;
	if (t == LUA_TNUMBER)
		v = lua_tonumber(L, -1);
	else if (t != LUA_TNIL)
		fe_lua_fail(L, "option '%s' must be a number, not %s", key, luaL_typename(L, -1));
	lua_pop(L, 1);
	return v;
}

int fe_lua_opt_bool(lua_State *L, int idx, const char *key, int def)
{
	idx = lua_absindex(L, idx);
	int t = opt_get(L, idx, key);
	int v = def;
	if (t == LUA_TBOOLEAN)
		v = lua_toboolean(L, -1);
	else if (t != LUA_TNIL)
		fe_lua_fail(L, "option '%s' must be true or false, not %s", key,
		            luaL_typename(L, -1));
	lua_pop(L, 1);
	return v;
}

/* ---- the module ---- */

/* lnsc.clock(): seconds on the monotonic clock, for timing in scripts (os.clock is CPU time
 * and os.time whole seconds). */
static int lnsc_clock(lua_State *L)
{
	lua_pushnumber(L, lnsrt_now());
	return 1;
}

static const luaL_Reg lnsc_funcs[] = {
    {"load", fe_lua_load},
    {"dataset", fe_lua_dataset},
    {"resume", fe_lua_resume},
    {"clock", lnsc_clock},
    {NULL, NULL},
};

int fe_luaopen_lnsc(lua_State *L)
{
	fe_lua_model_register(L);
	fe_lua_trainer_register(L);
	fe_lua_data_register(L);
	luaL_newlib(L, lnsc_funcs);
	lua_pushstring(L, LNSC_VERSION);
	lua_setfield(L, -2, "version");
	lua_pushstring(L, PASS_RECIPES);
	lua_setfield(L, -2, "recipes");
	return 1;
}

/* lua_pcall'd by fe_lua_new_state: a failure here is out of memory. */
static int open_all(lua_State *L)
{
	luaL_openlibs(L);
	luaL_requiref(L, "lnsc", fe_luaopen_lnsc, 1);
	return 0;
}

lua_State *fe_lua_new_state(void)
{
	lua_State *L = luaL_newstate();
	if (!L)
		return NULL;
	lua_pushcfunction(L, open_all);
	if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
		lua_close(L);
		return NULL;
	}
	return L;
}

/* The message handler: the error with a traceback (as the `lua` program prints it). */
static int msgh(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (!msg) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			return 1;
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

/* ---- lnsc run ---- */

static const char run_help[] =
    "usage: lnsc run SCRIPT.lua [ARGS...]\n"
    "Runs a Lua 5.4 script with the module `lnsc` loaded (the global lnsc, or require\n"
    "\"lnsc\"): load ONNX models, set per-tensor formats, compile and train in process, read\n"
    "telemetry. The script's arguments are in `arg` (arg[0] is the script) and in `...`.\n"
    "docs/lua.md describes the module.\n";

/* lua_pcall'd: arg = {[-2]="lnsc", [-1]="run", [0]=script, args...}, as `lua` sets it. */
static int set_args(lua_State *L)
{
	int argc = (int)lua_tointeger(L, 1);
	char **argv = lua_touserdata(L, 2);
	lua_createtable(L, argc, 2);
	lua_pushstring(L, "lnsc");
	lua_rawseti(L, -2, -2);
	lua_pushstring(L, "run");
	lua_rawseti(L, -2, -1);
	for (int i = 1; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i - 1);
	}
	lua_setglobal(L, "arg");
	return 0;
}

int fe_lua_run(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(run_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	IrCtx *c = ir_ctx_new();
	if (cli_self_check(c)) {
		ir_diag_print(c, stderr);
		ir_ctx_free(c);
		return 1;
	}
	ir_ctx_free(c);
	lua_State *L = fe_lua_new_state();
	if (!L) {
		fprintf(stderr, "lnsc run: cannot create a Lua state (out of memory)\n");
		return 1;
	}
	int rc = 0;
	lua_pushcfunction(L, set_args);
	lua_pushinteger(L, argc);
	lua_pushlightuserdata(L, argv);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		fprintf(stderr, "lnsc run: %s\n", lua_tostring(L, -1));
		lua_close(L);
		return 1;
	}
	lua_pushcfunction(L, msgh);
	if (luaL_loadfile(L, argv[1]) != LUA_OK) {
		fprintf(stderr, "lnsc run: %s\n", lua_tostring(L, -1));
		rc = 2;
	} else if (!lua_checkstack(L, argc)) {
		fprintf(stderr, "lnsc run: too many arguments\n");
		rc = 2;
	} else {
		for (int i = 2; i < argc; i++)
			lua_pushstring(L, argv[i]);
		if (lua_pcall(L, argc - 2, 0, 1) != LUA_OK) {
			fflush(stdout);
			fprintf(stderr, "lnsc run: %s\n", lua_tostring(L, -1));
			lua_getfield(L, LUA_REGISTRYINDEX, "lnsc.interrupted");
			rc = lua_toboolean(L, -1) ? LNSRT_INTERRUPTED : 1;
		}
	}
	fflush(stdout);
	lua_close(L);
	return rc;
}
