/* lua_data.c: Dataset: a training and a test split in memory, for trainer:train and :eval.
 *
 * A Dataset owns two LnsrtDatasets, the runtime's in-memory form, so the training driver
 * takes it as it is. Three sources: "fashion-mnist" (Debian's, the default), a folder or a
 * CSV file as `lnsc train --data` reads them (lnsrt_data_open: IDX, NPY or CSV), and a Lua
 * table of examples for small experiments. Datasets opened by name are cached in the
 * registry, so every `data = "fashion-mnist"` of a search shares one copy. Tables are checked
 * element by element (every example the same length, every value a finite number, every
 * label a small non-negative integer) before anything is allocated past the check.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "frontend/lua/lnsc_lua.h"

typedef struct FeLuaData {
	LnsrtDataset train, test;
} FeLuaData;

enum { MAX_CLASSES = 1 << 20 };
#define MAX_FLOATS ((int64_t)1 << 28) /* 1 GiB of examples from a Lua table */

static FeLuaData *check_data(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, FE_LUA_DATASET);
}

static int data_gc(lua_State *L)
{
	FeLuaData *d = check_data(L, 1);
	lnsrt_dataset_free(&d->train);
	lnsrt_dataset_free(&d->test);
	return 0;
}

static FeLuaData *new_data(lua_State *L)
{
	FeLuaData *d = lua_newuserdatauv(L, sizeof *d, 0);
	memset(d, 0, sizeof *d);
	luaL_setmetatable(L, FE_LUA_DATASET);
	return d;
}

/* ---- from a table ---- */

/* The length of a sequence field (raises if it is not a table). */
static lua_Integer seq(lua_State *L, int idx, const char *what)
{
	if (lua_type(L, idx) != LUA_TTABLE)
		fe_lua_fail(L, "dataset: %s must be an array, not %s", what, luaL_typename(L, idx));
	return (lua_Integer)lua_rawlen(L, idx);
}

/* Reads {x=, y=} at idx into d. */
static void read_split(lua_State *L, int idx, const char *name, LnsrtDataset *d)
{
	char what[64];
	snprintf(what, sizeof what, "dataset %s", name);
	if (lua_type(L, idx) != LUA_TTABLE)
		fe_lua_fail(L, "%s must be a table {x=..., y=...}, not %s", what,
		            luaL_typename(L, idx));
	fe_lua_check_opts(L, idx, what, " x y ");
	lua_pushstring(L, "x");
	lua_rawget(L, idx);
	lua_pushstring(L, "y");
	lua_rawget(L, idx);
	int xi = lua_gettop(L) - 1, yi = lua_gettop(L);
	snprintf(what, sizeof what, "%s.x", name);
	lua_Integer n = seq(L, xi, what);
	snprintf(what, sizeof what, "%s.y", name);
	if (seq(L, yi, what) != n || n < 1)
		fe_lua_fail(L,
		            "dataset %s: x has %lld examples and y %lld labels; both must have "
		            "the same number, at least one",
		            name, (long long)n, (long long)lua_rawlen(L, yi));
	lua_rawgeti(L, xi, 1);
	snprintf(what, sizeof what, "%s.x[1]", name);
	lua_Integer e = seq(L, -1, what);
	lua_pop(L, 1);
	if (e < 1 || n * e > MAX_FLOATS)
		fe_lua_fail(L,
		            "dataset %s: %lld examples of %lld values (at least 1 value, at most "
		            "%lld in all)",
		            name, (long long)n, (long long)e, (long long)MAX_FLOATS);
	d->n = n;
	d->rows = 1;
	d->cols = (int)e;
	d->x = malloc((size_t)(n * e) * sizeof *d->x);
	d->y = malloc((size_t)n * sizeof *d->y);
	if (!d->x || !d->y)
		fe_lua_fail(L, "dataset %s: out of memory", name);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, xi, i);
		if (lua_type(L, -1) != LUA_TTABLE || (lua_Integer)lua_rawlen(L, -1) != e)
			fe_lua_fail(L,
			            "dataset %s.x[%lld] must be an array of %lld numbers, like "
			            "x[1]",
			            name, (long long)i, (long long)e);
		for (lua_Integer j = 1; j <= e; j++) {
			int t = lua_rawgeti(L, -1, j);
			double v = lua_tonumber(L, -1);
			if (t != LUA_TNUMBER || !isfinite(v) || fabs(v) > 3.0e38)
				fe_lua_fail(L, "dataset %s.x[%lld][%lld] must be a finite number",
				            name, (long long)i, (long long)j);
			d->x[(i - 1) * e + (j - 1)] = (float)v;
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
		int ok = 0;
		lua_rawgeti(L, yi, i);
		lua_Integer y = lua_tointegerx(L, -1, &ok);
		if (lua_type(L, -1) != LUA_TNUMBER || !ok || y < 0 || y >= MAX_CLASSES)
			fe_lua_fail(L, "dataset %s.y[%lld] must be a class index from 0 to %d",
			            name, (long long)i, MAX_CLASSES - 1);
		d->y[i - 1] = y;
		lua_pop(L, 1);
	}
	lua_pop(L, 2);
}

static int max_label(const LnsrtDataset *d)
{
	int64_t m = -1;
	for (int64_t i = 0; i < d->n; i++)
		m = d->y[i] > m ? d->y[i] : m;
	return (int)m;
}

static void from_table(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	fe_lua_check_opts(L, idx, "dataset", " train test ");
	FeLuaData *d = new_data(L);
	lua_pushstring(L, "train");
	lua_rawget(L, idx);
	read_split(L, lua_gettop(L), "train", &d->train);
	lua_pop(L, 1);
	lua_pushstring(L, "test");
	if (lua_rawget(L, idx) != LUA_TNIL) {
		read_split(L, lua_gettop(L), "test", &d->test);
		if (d->test.cols != d->train.cols)
			fe_lua_fail(L,
			            "dataset: test examples have %d values, training examples %d",
			            d->test.cols, d->train.cols);
	}
	lua_pop(L, 1);
	int nc = max_label(&d->train), t = max_label(&d->test);
	d->train.nclasses = d->test.nclasses = (nc > t ? nc : t) + 1;
}

/* ---- by name ---- */

/* The cached Dataset for spec, opened on first use. */
static void by_name(lua_State *L, const char *spec)
{
	if (lua_getfield(L, LUA_REGISTRYINDEX, "lnsc.datasets") != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_setfield(L, LUA_REGISTRYINDEX, "lnsc.datasets");
	}
	if (lua_getfield(L, -1, spec) != LUA_TNIL) {
		lua_remove(L, -2);
		return;
	}
	lua_pop(L, 1);
	FeLuaData *d = new_data(L);
	char err[1024];
	if (lnsrt_data_open(strcmp(spec, "fashion-mnist") ? spec : NULL, &d->train, &d->test, err,
	                    sizeof err))
		fe_lua_fail(L, "%s", err);
	lua_pushvalue(L, -1);
	lua_setfield(L, -3, spec);
	lua_remove(L, -2);
}

int fe_lua_data_arg(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	switch (lua_type(L, idx)) {
	case LUA_TNONE:
	case LUA_TNIL:
		by_name(L, "fashion-mnist");
		break;
	case LUA_TSTRING:
		by_name(L, lua_tostring(L, idx));
		break;
	case LUA_TTABLE:
		from_table(L, idx);
		break;
	case LUA_TUSERDATA:
		check_data(L, idx);
		lua_pushvalue(L, idx);
		break;
	default:
		fe_lua_fail(L,
		            "data must be a Dataset, 'fashion-mnist', a folder, or a table "
		            "{train={x=, y=}, test={x=, y=}}, not %s",
		            luaL_typename(L, idx));
	}
	return lua_gettop(L);
}

const LnsrtDataset *fe_lua_data_train(lua_State *L, int idx)
{
	return &check_data(L, idx)->train;
}

const LnsrtDataset *fe_lua_data_test(lua_State *L, int idx)
{
	return &check_data(L, idx)->test;
}

int fe_lua_dataset(lua_State *L)
{
	fe_lua_data_arg(L, 1);
	return 1;
}

static int data_index(lua_State *L)
{
	FeLuaData *d = check_data(L, 1);
	const char *key = luaL_checkstring(L, 2);
	if (!strcmp(key, "train_size"))
		lua_pushinteger(L, d->train.n);
	else if (!strcmp(key, "test_size"))
		lua_pushinteger(L, d->test.n);
	else if (!strcmp(key, "example_size"))
		lua_pushinteger(L, (lua_Integer)d->train.rows * d->train.cols);
	else if (!strcmp(key, "classes"))
		lua_pushinteger(L, d->train.nclasses);
	else
		lua_pushnil(L);
	return 1;
}

static int data_tostring(lua_State *L)
{
	FeLuaData *d = check_data(L, 1);
	lua_pushfstring(L, "Dataset (%d training, %d test examples of %d values, %d classes)",
	                (int)d->train.n, (int)d->test.n, d->train.rows * d->train.cols,
	                d->train.nclasses);
	return 1;
}

void fe_lua_data_register(lua_State *L)
{
	if (luaL_newmetatable(L, FE_LUA_DATASET)) {
		lua_pushstring(L, "lnsc");
		lua_setfield(L, -2, "__metatable"); /* scripts cannot reach __gc */
		lua_pushcfunction(L, data_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, data_index);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, data_tostring);
		lua_setfield(L, -2, "__tostring");
	}
	lua_pop(L, 1);
}
