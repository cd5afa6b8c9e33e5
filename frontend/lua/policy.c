/* policy.c: `--formats FILE` and `--policy FILE.lua` for train, compile and inspect.
 *
 * A policy file is a Lua chunk that returns function(tensor) -> format. It runs in a Lua
 * state of its own (with the `lnsc` module, so it may load other models to decide) over the
 * training graph the recipe and the --formats file make, once per tensor in the order
 * `lnsc inspect` prints them, and what it returns becomes overrides, so the passes see a
 * policy exactly as they see --formats or a Lua model's `t.format = ...`; the policy wins
 * over the file. The function runs after the pipeline is done and before the real one, so
 * no pass or LLVM frame is on the C stack while Lua code runs, and a Lua error (a policy that
 * raises, or returns something that is not a format) becomes one diagnostic naming the file.
 */
#include <string.h>

#include <lauxlib.h>

#include "frontend/lua/lnsc_lua.h"

typedef struct PolicyRun {
	IrGraph *g;
	FeOverrides *ov;
	int n;
} PolicyRun;

/* lua_pcall'd: the function at 1 over the graph (a light userdata at 2). */
static int policy_apply(lua_State *L)
{
	PolicyRun *r = lua_touserdata(L, 2);
	r->n = fe_lua_apply_policy(L, 1, r->g, r->ov);
	return 0;
}

/* Loads the policy file: the function it returns stays on top of the stack. */
static int policy_load(IrCtx *c, lua_State *L, const char *path)
{
	if (luaL_loadfile(L, path) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
		ir_error(c, IR_ERR_INPUT, "policy: %s", lua_tostring(L, -1));
		return -1;
	}
	if (!lua_isfunction(L, -1)) {
		ir_error(c, IR_ERR_INPUT,
		         "%s: a policy file returns function(tensor) -> format, "
		         "not a %s",
		         path, luaL_typename(L, -1));
		return -1;
	}
	return 0;
}

static int run_policy(IrCtx *c, const char *model, const FeOptions *fo, const PassOptions *po,
                      const char *policy, FeOverrides *ov)
{
	lua_State *L = fe_lua_new_state();
	if (!L) {
		ir_error(c, IR_ERR_RUNTIME, "%s: cannot create a Lua state", policy);
		return -1;
	}
	IrGraph *g = NULL;
	int rc = -1;
	if (policy_load(c, L, policy))
		goto out;
	PassOptions p = *po;
	fe_overrides_hook(ov, &p);
	g = fe_onnx_import(c, model, fo);
	if (!g || pass_pipeline(g, &p) || fe_overrides_check_used(c, ov, po->recipe))
		goto out;
	PolicyRun r = {g, ov, 0};
	lua_pushcfunction(L, policy_apply);
	lua_insert(L, -2);
	lua_pushlightuserdata(L, &r);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		ir_error(c, IR_ERR_INPUT, "policy: %s", lua_tostring(L, -1));
		goto out;
	}
	rc = 0;
out:
	ir_graph_free(g);
	lua_close(L);
	return rc;
}

int fe_policy_prepare(IrCtx *c, const char *model, const FeOptions *fo, PassOptions *po,
                      const char *formats, const char *policy, FeOverrides *ov)
{
	if (formats && fe_overrides_read_file(c, ov, formats))
		return -1;
	if (policy && run_policy(c, model, fo, po, policy, ov))
		return -1;
	fe_overrides_hook(ov, po);
	return 0;
}
