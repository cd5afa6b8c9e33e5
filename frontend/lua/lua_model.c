/* lua_model.c: Model and Tensor: a model file, its training graph, per-tensor formats.
 *
 * A Model is the path, recipe and batch given to lnsc.load plus the overrides set since
 * (FeOverrides by tensor name), and the training graph those make (import, then the whole
 * pass pipeline with the overrides hooked in). Setting a format rebuilds the graph at once,
 * and a setting the passes refuse (a weight that Madam updates made fp32, a view's weight
 * given another optimizer) is undone and raised at the assignment, so the graph a script
 * reads is always the one a compile would build now. A Tensor is a name and a reference to
 * its model (the userdata's user value): reading a field looks the name up in the current
 * graph, assigning `format` checks the format against that tensor (pass_override_check, the
 * rule the precision pass applies) and records it. Formats cross the boundary as plain
 * tables ({dtype=, bits=, gamma=, rounding=, underflow=, scale=, optimizer=}) or strings
 * ("lns6g8", "fp32"); a table is merged into the tensor's current format. A policy is a Lua
 * function called once per tensor with a plain description table; what it returns goes
 * through the same reader as an assignment.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "frontend/cli.h"
#include "frontend/lua/lnsc_lua.h"

typedef struct FeLuaModel {
	char *path;
	char recipe[32];
	int64_t batch;
	FeOverrides ov;
	IrCtx *ctx; /* the graph's */
	IrGraph *g; /* NULL: to be built */
} FeLuaModel;

typedef struct FeLuaTensor {
	char *name;
} FeLuaTensor;

static FeLuaModel *check_model(lua_State *L, int idx)
{
	FeLuaModel *m = luaL_checkudata(L, idx, FE_LUA_MODEL);
	if (!m->path)
		fe_lua_fail(L, "the model is freed");
	return m;
}

static void drop_graph(FeLuaModel *m)
{
	ir_graph_free(m->g);
	ir_ctx_free(m->ctx);
	m->g = NULL;
	m->ctx = NULL;
}

/* Builds the training graph for the model's recipe, batch and overrides. 0, or -1 with the
 * diagnostics pushed (and no graph). Runs the passes with no Lua error possible. */
static int build_graph(lua_State *L, FeLuaModel *m)
{
	m->ctx = ir_ctx_new();
	FeOptions fo = {.batch = m->batch};
	PassOptions po;
	pass_options_default(&po);
	po.recipe = m->recipe;
	fe_overrides_hook(&m->ov, &po);
	m->g = fe_onnx_import(m->ctx, m->path, &fo);
	if (m->g && !pass_pipeline(m->g, &po) &&
	    !fe_overrides_check_used(m->ctx, &m->ov, m->recipe))
		return 0;
	fe_lua_push_diags(L, m->ctx, "cannot build the training graph");
	drop_graph(m);
	return -1;
}

/* The current training graph (raises on failure). */
static IrGraph *graph(lua_State *L, FeLuaModel *m)
{
	if (!m->g && build_graph(L, m))
		fe_lua_fail_top(L);
	return m->g;
}

/* ---- tensors of a graph ---- */

const char *fe_lua_role(const IrGraph *g, const IrValue *v)
{
	(void)g;
	switch (v->role) {
	case IR_ROLE_INPUT:
		return "input";
	case IR_ROLE_LABEL:
		return "label";
	case IR_ROLE_PARAM:
		return "weight";
	case IR_ROLE_CONST:
		return "constant";
	case IR_ROLE_ACT:
		return v->def && v->def->op == IR_OP_WEIGHT_VIEW ? "weight_view" : "activation";
	case IR_ROLE_GRAD:
		return "activation_gradient";
	case IR_ROLE_PGRAD:
		return "weight_gradient";
	case IR_ROLE_STATE:
		return v->param ? "optimizer_state" : "running_stat";
	case IR_ROLE_LOSS:
		return "loss";
	default:
		return "?";
	}
}

static const char ROLES[] = " input label weight weight_view activation activation_gradient "
                            "weight_gradient optimizer_state running_stat loss ";

/* A tensor of the model: a value with a place (state, scratch, IO) or a scale state;
 * constants and values nothing reads are left out. */
static int listed(const IrValue *v)
{
	if (v->role == IR_ROLE_CONST)
		return 0;
	return (v->loc.area != IR_AREA_NONE && v->loc.area != IR_AREA_CONST) ||
	       v->loc.scale_off >= 0;
}

/* The tensors in graph order (as `lnsc inspect` prints them): values without a producer by
 * id, then node outputs in schedule order. Returns the count; out has g->values.n slots. */
static int graph_tensors(const IrGraph *g, const IrValue **out)
{
	int n = 0;
	for (int i = 0; i < g->values.n; i++) {
		const IrValue *v = IR_VALUE(g, i);
		if (!v->def && listed(v))
			out[n++] = v;
	}
	for (int i = 0; i < g->nodes.n; i++) {
		const IrNode *nd = IR_NODE(g, i);
		for (int j = 0; j < nd->nout; j++)
			if (listed(nd->out[j]))
				out[n++] = nd->out[j];
	}
	return n;
}

static const IrNode *updater(const IrGraph *g, const IrValue *p)
{
	for (int i = 0; i < g->nodes.n; i++) {
		const IrNode *n = IR_NODE(g, i);
		if (ir_op_has(n->op, IR_OPF_UPDATE) && n->in[0] == p)
			return n;
	}
	return NULL;
}

/* The parameter a view, weight gradient or optimizer state belongs to, or NULL. */
static const IrValue *owner(const IrValue *v)
{
	if (v->def && v->def->op == IR_OP_WEIGHT_VIEW)
		return v->def->in[0];
	return v->role == IR_ROLE_PGRAD || v->role == IR_ROLE_STATE ? v->param : NULL;
}

static const char *const ROUNDING[] = {"nearest", "stochastic"};
static const char *const UNDERFLOW[] = {"zero", "min", "stochastic"};
static const char *const SCALE[] = {"static", "current", "delayed"};

static const char *update_name(const IrGraph *g, const IrValue *v)
{
	const IrNode *u = v->role == IR_ROLE_PARAM ? updater(g, v) : NULL;
	if (!u)
		return NULL;
	return u->op == IR_OP_MADAM ? "madam" : u->op == IR_OP_SGD ? "sgd" : "adam";
}

static void push_format(lua_State *L, const IrGraph *g, const IrValue *v)
{
	lua_createtable(L, 0, 7);
	const IrType *t = v->type;
	if (t->dt == IR_DT_LNS) {
		lua_pushstring(L, "lns");
		lua_setfield(L, -2, "dtype");
		lua_pushinteger(L, t->fmt.bits);
		lua_setfield(L, -2, "bits");
		lua_pushinteger(L, lns_gamma(t->fmt));
		lua_setfield(L, -2, "gamma");
		lua_pushstring(L, ROUNDING[t->fmt.round % 2]);
		lua_setfield(L, -2, "rounding");
		lua_pushstring(L, UNDERFLOW[t->fmt.underflow % 3]);
		lua_setfield(L, -2, "underflow");
		lua_pushstring(L, SCALE[t->fmt.scale % 3]);
		lua_setfield(L, -2, "scale");
	} else {
		lua_pushstring(L, t->dt == IR_DT_F32 ? "fp32" : ir_dtype_name(t->dt));
		lua_setfield(L, -2, "dtype");
	}
	const char *u = update_name(g, v);
	if (u) {
		lua_pushstring(L, u);
		lua_setfield(L, -2, "optimizer");
	}
}

static void push_format_text(lua_State *L, const IrValue *v)
{
	char buf[64];
	const IrType *t = v->type;
	lua_pushstring(L, t->dt == IR_DT_LNS   ? lns_format_str_full(t->fmt, buf, sizeof buf)
	                  : t->dt == IR_DT_F32 ? "fp32"
	                                       : ir_dtype_name(t->dt));
}

static int settable(const IrGraph *g, const IrValue *v)
{
	PassOverride o = {.kind = v->type->dt == IR_DT_LNS ? PASS_FMT_LNS : PASS_FMT_F32,
	                  .fmt = v->type->fmt};
	char msg[256];
	return !pass_override_check(g, v, &o, msg, sizeof msg);
}

/* One field of v's description onto the stack; 0 if key is not a field. */
static int push_field(lua_State *L, IrGraph *g, const IrValue *v, const char *key)
{
	const IrValue *p;
	if (!strcmp(key, "name")) {
		lua_pushstring(L, v->name);
	} else if (!strcmp(key, "role")) {
		lua_pushstring(L, fe_lua_role(g, v));
	} else if (!strcmp(key, "shape")) {
		lua_createtable(L, v->type->rank, 0);
		for (int i = 0; i < v->type->rank; i++) {
			lua_pushinteger(L, v->type->dims[i]);
			lua_rawseti(L, -2, i + 1);
		}
	} else if (!strcmp(key, "numel")) {
		lua_pushinteger(L, v->type->numel);
	} else if (!strcmp(key, "bytes")) {
		lua_pushinteger(L, (lua_Integer)ir_type_bytes(v->type));
	} else if (!strcmp(key, "op")) {
		if (v->def)
			lua_pushstring(L, ir_op_name(v->def->op));
		else
			lua_pushnil(L);
	} else if (!strcmp(key, "node")) {
		if (v->def)
			lua_pushstring(L, v->def->name);
		else
			lua_pushnil(L);
	} else if (!strcmp(key, "param")) {
		if ((p = owner(v)))
			lua_pushstring(L, p->name);
		else
			lua_pushnil(L);
	} else if (!strcmp(key, "format")) {
		push_format(L, g, v);
	} else if (!strcmp(key, "format_text")) {
		push_format_text(L, v);
	} else if (!strcmp(key, "optimizer")) {
		const char *u = update_name(g, v);
		if (u)
			lua_pushstring(L, u);
		else
			lua_pushnil(L);
	} else if (!strcmp(key, "settable")) {
		lua_pushboolean(L, settable(g, v));
	} else {
		return 0;
	}
	return 1;
}

static const char *const FIELDS[] = {"name",      "role",     "shape", "numel",  "bytes",
                                     "op",        "node",     "param", "format", "format_text",
                                     "optimizer", "settable", NULL};

void fe_lua_push_desc(lua_State *L, IrGraph *g, const IrValue *v)
{
	lua_createtable(L, 0, 12);
	for (int i = 0; FIELDS[i]; i++)
		if (push_field(L, g, v, FIELDS[i]))
			lua_setfield(L, -2, FIELDS[i]);
}

/* ---- reading a format ---- */

static int pick(lua_State *L, const char *who, const char *key, const char *s,
                const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return i;
	char list[128] = "";
	for (int i = 0; i < n; i++)
		snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
		         names[i]);
	return fe_lua_fail(L, "%s: %s must be one of %s, not '%.40s'", who, key, list, s);
}

/* t[key] of the table at the absolute index idx, without metamethods: reading a format runs
 * no Lua code. */
static int rawfield(lua_State *L, int idx, const char *key)
{
	lua_pushstring(L, key);
	return lua_rawget(L, idx);
}

/* Field key of the format table at idx as an integer (raises on other types). */
static int field_int(lua_State *L, int idx, const char *who, const char *key, int *out)
{
	if (rawfield(L, idx, key) == LUA_TNIL) {
		lua_pop(L, 1);
		return 0;
	}
	int ok = 0;
	lua_Integer n = lua_tointegerx(L, -1, &ok);
	if (lua_type(L, -1) != LUA_TNUMBER || !ok)
		fe_lua_fail(L, "%s: %s must be an integer, not %s", who, key,
		            lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1)
		                                           : luaL_typename(L, -1));
	lua_pop(L, 1);
	*out = n < INT_MIN ? INT_MIN : n > INT_MAX ? INT_MAX : (int)n;
	return 1;
}

static const char *field_str(lua_State *L, int idx, const char *who, const char *key)
{
	int t = rawfield(L, idx, key);
	const char *s = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
	if (t != LUA_TNIL && t != LUA_TSTRING)
		fe_lua_fail(L, "%s: %s must be a string, not %s", who, key, luaL_typename(L, -1));
	lua_pop(L, 1); /* the table keeps the string alive */
	return s;
}

static int log2_exact(int g)
{
	for (int i = 0; i <= LNS_MAX_LOG2G; i++)
		if (g == 1 << i)
			return i;
	return -1;
}

/* The LNS fields of a format table merged into f; returns whether any was given. */
static int merge_lns_fields(lua_State *L, int idx, const char *who, LnsFormat *f)
{
	int any = 0, bits, gamma;
	if (field_int(L, idx, who, "bits", &bits)) {
		if (bits < 2 || bits > LNS_MAX_BITS)
			fe_lua_fail(L, "%s: bits must be from 2 to %d (sign included), not %d", who,
			            LNS_MAX_BITS, bits);
		f->bits = (uint8_t)bits;
		any = 1;
	}
	if (field_int(L, idx, who, "gamma", &gamma)) {
		if (log2_exact(gamma) < 0)
			fe_lua_fail(L, "%s: gamma must be a power of two from 1 to %d, not %d", who,
			            1 << LNS_MAX_LOG2G, gamma);
		f->log2g = (uint8_t)log2_exact(gamma);
		any = 1;
	}
	const char *s;
	if ((s = field_str(L, idx, who, "rounding")) && (any = 1))
		f->round = (uint8_t)pick(L, who, "rounding", s, ROUNDING, 2);
	if ((s = field_str(L, idx, who, "underflow")) && (any = 1))
		f->underflow = (uint8_t)pick(L, who, "underflow", s, UNDERFLOW, 3);
	if ((s = field_str(L, idx, who, "scale")) && (any = 1))
		f->scale = (uint8_t)pick(L, who, "scale", s, SCALE, 3);
	return any;
}

/* A format table merged into v's current format (and cur's optimizer). */
static void read_table(lua_State *L, int idx, const IrValue *v, const char *who, PassOverride *out)
{
	static const char *const DT[] = {"lns", "fp32"};
	fe_lua_check_opts(L, idx, who, " dtype bits gamma rounding underflow scale optimizer ");
	LnsFormat f = v->type->fmt;
	if (v->type->dt != IR_DT_LNS) /* made LNS: lns8g8, nearest, no underflow, the scale a
	                                 parameter (static) or an activation (delayed) has */
		f = (LnsFormat){8, 3, fe_static_scale(v) ? LNS_SCALE_STATIC : LNS_SCALE_DELAYED,
		                LNS_ROUND_NEAREST, LNS_UF_ZERO};
	const char *dt = field_str(L, idx, who, "dtype");
	int want_lns = dt ? pick(L, who, "dtype", dt, DT, 2) == 0 : -1;
	int any = merge_lns_fields(L, idx, who, &f);
	if (want_lns == 0 && any)
		fe_lua_fail(
		    L, "%s: an fp32 format has no bits, gamma, rounding, underflow or scale", who);
	if (want_lns == 0) {
		out->kind = PASS_FMT_F32;
	} else if (want_lns == 1 || any) {
		out->kind = PASS_FMT_LNS;
		out->fmt = f;
	}
	const char *opt = field_str(L, idx, who, "optimizer");
	if (opt && fe_update_parse(opt, &out->update))
		fe_lua_fail(L, "%s: optimizer must be one of madam, sgd, adam, not '%.40s'", who,
		            opt);
}

/* Reads a format given to t.format or returned by a policy (nil, a string, a table merged
 * into v's current format) into out, starting from cur. Errors (raised) start with `who`.
 * Returns 0 for nil (no override), 1 otherwise. */
static int read_format(lua_State *L, int idx, IrGraph *g, const IrValue *v, const PassOverride *cur,
                       const char *who, PassOverride *out)
{
	idx = lua_absindex(L, idx);
	*out = *cur;
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		return 0;
	case LUA_TSTRING:
		if (fe_format_parse(lua_tostring(L, idx), out))
			fe_lua_fail(L,
			            "%s: '%.60s' is not a format (fp32, or like lns8g8, "
			            "lns5g2:sr, lns6g4:rn:static:uf=min)",
			            who, lua_tostring(L, idx));
		if (out->kind == PASS_FMT_LNS && fe_static_scale(v))
			out->fmt.scale = LNS_SCALE_STATIC;
		break;
	case LUA_TTABLE:
		read_table(L, idx, v, who, out);
		break;
	default:
		fe_lua_fail(L,
		            "%s: a format is a string ('lns8g8', 'fp32') or a table ({bits=6}), "
		            "not %s",
		            who, luaL_typename(L, idx));
	}
	char msg[512];
	if (pass_override_check(g, v, out, msg, sizeof msg))
		fe_lua_fail(L, "%s", msg);
	return 1;
}

/* ---- Tensor ---- */

static FeLuaTensor *check_tensor(lua_State *L, int idx)
{
	FeLuaTensor *t = luaL_checkudata(L, idx, FE_LUA_TENSOR);
	if (!t->name)
		fe_lua_fail(L, "the tensor is freed");
	return t;
}

/* The tensor's model (pushed) and its value in the current graph. */
static const IrValue *tensor_value(lua_State *L, int idx, FeLuaModel **mp, IrGraph **gp)
{
	FeLuaTensor *t = check_tensor(L, idx);
	lua_getiuservalue(L, idx, 1);
	FeLuaModel *m = check_model(L, -1);
	IrGraph *g = graph(L, m);
	const IrValue *v = ir_graph_value(g, t->name);
	if (!v || !listed(v))
		fe_lua_fail(L,
		            "no tensor named '%s' in the model's training graph (it changed "
		            "since this Tensor was made)",
		            t->name);
	*mp = m;
	*gp = g;
	return v;
}

static int tensor_index(lua_State *L)
{
	FeLuaModel *m;
	IrGraph *g;
	const char *key = luaL_checkstring(L, 2);
	const IrValue *v = tensor_value(L, 1, &m, &g);
	if (!push_field(L, g, v, key))
		lua_pushnil(L);
	return 1;
}

/* "script.lua:12" of the Lua code calling into the module. */
static void caller_origin(lua_State *L, char *buf, size_t n)
{
	luaL_where(L, 1);
	snprintf(buf, n, "%s", lua_tostring(L, -1));
	lua_pop(L, 1);
	size_t len = strlen(buf);
	while (len && (buf[len - 1] == ' ' || buf[len - 1] == ':'))
		buf[--len] = 0;
	if (!len)
		snprintf(buf, n, "lua");
}

/* Makes `next` the model's overrides and rebuilds the graph; when the passes refuse it, the
 * old overrides come back and the error is raised. next is a copy the caller owns (a
 * userdata), so nothing leaks when this raises. */
static void commit(lua_State *L, FeLuaModel *m, FeOverrides *next)
{
	FeOverrides old = m->ov;
	m->ov = *next;
	*next = old; /* the caller's userdata frees the old set */
	drop_graph(m);
	if (!build_graph(L, m))
		return;
	FeOverrides bad = m->ov;
	m->ov = *next;
	*next = bad;
	fe_lua_fail_top(L);
}

static int overrides_gc(lua_State *L)
{
	fe_overrides_free(lua_touserdata(L, 1));
	return 0;
}

/* A userdata at the top of the stack holding a copy of ov; its __gc frees it. */
static FeOverrides *push_copy(lua_State *L, const FeOverrides *ov)
{
	FeOverrides *c = lua_newuserdatauv(L, sizeof *c, 0);
	fe_overrides_init(c);
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, overrides_gc);
	lua_setfield(L, -2, "__gc");
	lua_setmetatable(L, -2);
	fe_overrides_copy(c, ov);
	return c;
}

static int tensor_newindex(lua_State *L)
{
	FeLuaModel *m;
	IrGraph *g;
	const char *key = luaL_checkstring(L, 2);
	const IrValue *v = tensor_value(L, 1, &m, &g);
	if (strcmp(key, "format"))
		return fe_lua_fail(L, "tensor '%s': '%s' cannot be set (only format can)", v->name,
		                   key);
	char origin[300], who[600];
	caller_origin(L, origin, sizeof origin);
	snprintf(who, sizeof who, "tensor '%s'", v->name);
	FeOverride *e = fe_overrides_find(&m->ov, v->name);
	PassOverride cur = e ? e->o : (PassOverride){0}, o;
	if (!read_format(L, 3, g, v, &cur, who, &o))
		o = (PassOverride){0}; /* nil: back to the recipe's */
	FeOverrides *next = push_copy(L, &m->ov);
	fe_overrides_set(next, v->name, &o, origin);
	commit(L, m, next);
	return 0;
}

static int tensor_tostring(lua_State *L)
{
	FeLuaTensor *t = check_tensor(L, 1);
	lua_pushfstring(L, "Tensor '%s'", t->name);
	return 1;
}

static int tensor_gc(lua_State *L)
{
	FeLuaTensor *t = luaL_checkudata(L, 1, FE_LUA_TENSOR);
	free(t->name);
	t->name = NULL;
	return 0;
}

/* A Tensor for name in the model at model_idx. */
static void push_tensor(lua_State *L, int model_idx, const char *name)
{
	model_idx = lua_absindex(L, model_idx);
	FeLuaTensor *t = lua_newuserdatauv(L, sizeof *t, 1);
	t->name = NULL;
	luaL_setmetatable(L, FE_LUA_TENSOR);
	if (!(t->name = strdup(name)))
		fe_lua_fail(L, "out of memory");
	lua_pushvalue(L, model_idx);
	lua_setiuservalue(L, -2, 1);
}

/* ---- Model ---- */

static int model_gc(lua_State *L)
{
	FeLuaModel *m = luaL_checkudata(L, 1, FE_LUA_MODEL);
	drop_graph(m);
	fe_overrides_free(&m->ov);
	free(m->path);
	m->path = NULL;
	return 0;
}

/* model:tensors([role | fn]): names are collected first, so a predicate that changes formats
 * (and so rebuilds the graph) leaves nothing dangling. */
static int model_tensors(lua_State *L)
{
	check_model(L, 1);
	int t = lua_type(L, 2);
	if (t == LUA_TSTRING) {
		char key[80];
		snprintf(key, sizeof key, " %s ", lua_tostring(L, 2));
		if (strlen(lua_tostring(L, 2)) > 60 || !strstr(ROLES, key))
			return fe_lua_fail(L, "unknown role '%.60s' (roles:%s)", lua_tostring(L, 2),
			                   ROLES);
	} else if (t != LUA_TNONE && t != LUA_TNIL && t != LUA_TFUNCTION) {
		return fe_lua_fail(L, "model:tensors takes a role name or a function, not %s",
		                   luaL_typename(L, 2));
	}
	IrGraph *g = graph(L, check_model(L, 1));
	const IrValue **vs = lua_newuserdatauv(L, sizeof *vs * (size_t)(g->values.n + 1), 0);
	int n = graph_tensors(g, vs), k = 0;
	lua_createtable(L, n, 0); /* names */
	for (int i = 0; i < n; i++)
		if (t != LUA_TSTRING || !strcmp(fe_lua_role(g, vs[i]), lua_tostring(L, 2))) {
			lua_pushstring(L, vs[i]->name);
			lua_rawseti(L, -2, ++k);
		}
	int names = lua_gettop(L);
	lua_createtable(L, k, 0);
	int out = 0;
	for (int i = 1; i <= k; i++) {
		lua_rawgeti(L, names, i);
		push_tensor(L, 1, lua_tostring(L, -1));
		lua_remove(L, -2);
		if (t == LUA_TFUNCTION) {
			lua_pushvalue(L, 2);
			lua_pushvalue(L, -2);
			lua_call(L, 1, 1);
			int keep = lua_toboolean(L, -1);
			lua_pop(L, 1);
			if (!keep) {
				lua_pop(L, 1);
				continue;
			}
		}
		lua_rawseti(L, -2, ++out);
	}
	return 1;
}

static int model_tensor(lua_State *L)
{
	FeLuaModel *m = check_model(L, 1);
	const char *name = luaL_checkstring(L, 2);
	IrGraph *g = graph(L, m);
	const IrValue *v = ir_graph_value(g, name);
	if (!v || !listed(v))
		return fe_lua_fail(L, "no tensor named '%s'", name);
	push_tensor(L, 1, name);
	return 1;
}

static int model_reset(lua_State *L)
{
	FeLuaModel *m = check_model(L, 1);
	fe_overrides_clear(&m->ov);
	drop_graph(m);
	graph(L, m);
	return 0;
}

int fe_lua_apply_policy(lua_State *L, int fn_idx, IrGraph *g, FeOverrides *ov)
{
	fn_idx = lua_absindex(L, fn_idx);
	lua_Debug ar;
	lua_pushvalue(L, fn_idx);
	lua_getinfo(L, ">S", &ar);
	char origin[300];
	snprintf(origin, sizeof origin, "policy %s:%d", ar.short_src, ar.linedefined);
	const IrValue **vs = lua_newuserdatauv(L, sizeof *vs * (size_t)(g->values.n + 1), 0);
	int n = graph_tensors(g, vs), set = 0;
	for (int i = 0; i < n; i++) {
		lua_pushvalue(L, fn_idx);
		fe_lua_push_desc(L, g, vs[i]);
		lua_call(L, 1, 1);
		FeOverride *e = fe_overrides_find(ov, vs[i]->name);
		PassOverride cur = e ? e->o : (PassOverride){0}, o;
		char who[800];
		snprintf(who, sizeof who, "%s, for tensor '%s'", origin, vs[i]->name);
		if (read_format(L, -1, g, vs[i], &cur, who, &o)) {
			fe_overrides_set(ov, vs[i]->name, &o, origin);
			set++;
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return set;
}

/* Graph and context owned by a userdata while Lua code runs over them. */
typedef struct GraphHold {
	IrCtx *ctx;
	IrGraph *g;
} GraphHold;

static int hold_gc(lua_State *L)
{
	GraphHold *h = lua_touserdata(L, 1);
	ir_graph_free(h->g);
	ir_ctx_free(h->ctx);
	h->g = NULL;
	h->ctx = NULL;
	return 0;
}

/* model:policy(fn). The policy runs over a graph the model hands over for the time (so the
 * policy may use the model itself, and even set formats) and into a copy of the overrides
 * (so one that fails half-way leaves the model as it was). */
static int model_policy(lua_State *L)
{
	FeLuaModel *m = check_model(L, 1);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	graph(L, m);
	GraphHold *h = lua_newuserdatauv(L, sizeof *h, 0);
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, hold_gc);
	lua_setfield(L, -2, "__gc");
	lua_setmetatable(L, -2);
	h->ctx = m->ctx;
	h->g = m->g;
	m->ctx = NULL;
	m->g = NULL;
	FeOverrides *next = push_copy(L, &m->ov);
	int n = fe_lua_apply_policy(L, 2, h->g, next);
	commit(L, m, next);
	lua_pushinteger(L, n);
	return 1;
}

static int model_overrides(lua_State *L)
{
	FeLuaModel *m = check_model(L, 1);
	lua_createtable(L, 0, m->ov.n);
	for (int i = 0; i < m->ov.n; i++) {
		const FeOverride *e = &m->ov.v[i];
		char buf[96];
		lua_createtable(L, 0, 3);
		if (e->o.kind != PASS_FMT_RECIPE) {
			lua_pushstring(L, fe_format_str(&e->o, buf, sizeof buf));
			lua_setfield(L, -2, "format");
		}
		if (e->o.update != PASS_UPD_RECIPE) {
			lua_pushstring(L, fe_update_name(e->o.update));
			lua_setfield(L, -2, "optimizer");
		}
		lua_pushstring(L, e->origin);
		lua_setfield(L, -2, "origin");
		lua_setfield(L, -2, e->name);
	}
	return 1;
}

static int model_inspect(lua_State *L)
{
	FeLuaModel *m = check_model(L, 1);
	IrGraph *g = graph(L, m);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return fe_lua_fail(L, "out of memory");
	cli_inspect_print(f, g);
	fclose(f);
	lua_pushlstring(L, text, len);
	free(text);
	return 1;
}

/* model:state_bytes(): bytes of model state (parameters in their storage formats and their
 * optimizer state, as `lnsc inspect` totals them), and a table of them per parameter. */
static int model_state_bytes(lua_State *L)
{
	IrGraph *g = graph(L, check_model(L, 1));
	lua_Integer total = 0;
	lua_createtable(L, 0, g->params.n);
	for (int i = 0; i < g->params.n; i++) {
		const IrValue *p = g->params.v[i];
		lua_Integer b = (lua_Integer)ir_type_bytes(p->type);
		for (int j = 0; j < g->values.n; j++) {
			const IrValue *s = IR_VALUE(g, j);
			if (s->role == IR_ROLE_STATE && s->param == p)
				b += (lua_Integer)ir_type_bytes(s->type);
		}
		lua_pushinteger(L, b);
		lua_setfield(L, -2, p->name);
		total += b;
	}
	lua_pushinteger(L, total);
	lua_insert(L, -2);
	return 2;
}

static int model_compile(lua_State *L)
{
	FeLuaModel *m = check_model(L, 1);
	return fe_lua_compile(L, m->path, m->recipe, m->batch, &m->ov, 2);
}

static const luaL_Reg model_methods[] = {
    {"tensors", model_tensors},         {"tensor", model_tensor},       {"reset", model_reset},
    {"policy", model_policy},           {"overrides", model_overrides}, {"inspect", model_inspect},
    {"state_bytes", model_state_bytes}, {"compile", model_compile},     {NULL, NULL},
};

static int model_index(lua_State *L)
{
	FeLuaModel *m = check_model(L, 1);
	const char *key = luaL_checkstring(L, 2);
	if (lua_getfield(L, lua_upvalueindex(1), key) != LUA_TNIL)
		return 1;
	if (!strcmp(key, "path"))
		lua_pushstring(L, m->path);
	else if (!strcmp(key, "recipe"))
		lua_pushstring(L, m->recipe);
	else if (!strcmp(key, "batch"))
		lua_pushinteger(L, m->batch);
	else
		lua_pushnil(L);
	return 1;
}

static int model_tostring(lua_State *L)
{
	FeLuaModel *m = check_model(L, 1);
	lua_pushfstring(L, "Model '%s' (%s, batch %d)", m->path, m->recipe, (int)m->batch);
	return 1;
}

/* lnsc.load(path [, {recipe=, batch=}]) */
int fe_lua_load(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	fe_lua_check_opts(L, 2, "lnsc.load", " recipe batch ");
	const char *recipe = fe_lua_opt_string(L, 2, "recipe", "lns-madam");
	if (!pass_recipe_known(recipe))
		return fe_lua_fail(L, "unknown recipe '%.40s' (" PASS_RECIPES ")", recipe);
	int64_t batch = fe_lua_opt_int(L, 2, "batch", 64, 1, 1 << 16);
	FeLuaModel *m = lua_newuserdatauv(L, sizeof *m, 0);
	memset(m, 0, sizeof *m);
	fe_overrides_init(&m->ov);
	luaL_setmetatable(L, FE_LUA_MODEL);
	if (!(m->path = strdup(path)))
		return fe_lua_fail(L, "out of memory");
	snprintf(m->recipe, sizeof m->recipe, "%s", recipe);
	m->batch = batch;
	graph(L, m); /* a bad file is an error now */
	return 1;
}

void fe_lua_model_register(lua_State *L)
{
	if (luaL_newmetatable(L, FE_LUA_MODEL)) {
		lua_pushstring(L, "lnsc");
		lua_setfield(L, -2, "__metatable"); /* scripts cannot reach __gc */
		lua_pushcfunction(L, model_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, model_tostring);
		lua_setfield(L, -2, "__tostring");
		luaL_newlib(L, model_methods);
		lua_pushcclosure(L, model_index, 1);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	if (luaL_newmetatable(L, FE_LUA_TENSOR)) {
		lua_pushstring(L, "lnsc");
		lua_setfield(L, -2, "__metatable"); /* scripts cannot reach __gc */
		lua_pushcfunction(L, tensor_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, tensor_index);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, tensor_newindex);
		lua_setfield(L, -2, "__newindex");
		lua_pushcfunction(L, tensor_tostring);
		lua_setfield(L, -2, "__tostring");
	}
	lua_pop(L, 1);
}
