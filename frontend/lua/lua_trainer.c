/* lua_trainer.c: Trainer: a model compiled in process, trained, evaluated and observed.
 *
 * A Trainer owns everything it runs on: an IrCtx and the planned training graph, the JIT (or
 * the reference interpreter behind a descriptor), the runtime's LnsrtModel with its state and
 * scratch, and the training position, so train{steps=200} twice is the same run as
 * train{steps=400} (the runtime's driver continues from the position as from a checkpoint).
 * With observe (the default) the graph is planned for observation: fusion marks are dropped
 * and every computed value keeps its own scratch bytes, so after a step every tensor's last
 * value can be read (trainer:get, the telemetry histograms); fusion never changes results,
 * so the numbers are those of `lnsc train`. LNS values in scratch are decoded with the scale
 * offset the step used (the plan's k slot), stored ones with their LnsScaleState's.
 *
 * A Trainer is built from an FeTrainerSpec (spec.c): model path, recipe, batch, backend, cpu,
 * threads, seed, overrides. trainer:save writes the spec as the checkpoint's metadata, and
 * lnsc.resume rebuilds the trainer from it. Building runs the passes and LLVM with nothing of
 * Lua on the stack; their diagnostics become one Lua error afterwards. Every option is read
 * and checked before anything is allocated, and what is allocated hangs off the userdata, so
 * an error raised at any point leaks nothing.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <llvm-c/TargetMachine.h>

#include "codegen/cg.h"
#include "frontend/fe.h"
#include "frontend/lua/lnsc_lua.h"

typedef struct FeLuaTrainer {
	FeTrainerSpec spec;
	IrCtx *ctx;
	IrGraph *g;
	CgJit *jit;        /* llvm */
	IrInterpModel *im; /* interp */
	const LnsrtModelDesc *desc;
	LnsrtModel *m;
	LnsrtTrainer tr;
	LnsrtTrainState pos; /* epoch 0: not started */
	uint64_t shuffle;    /* the shuffling seed of a run not started yet */
	double compile_seconds;
	int live; /* counted in the registry's live trainers */
} FeLuaTrainer;

enum { GC_EVERY = 8 }; /* live trainers that make compile run a full collection */

static FeLuaTrainer *check_trainer(lua_State *L, int idx)
{
	FeLuaTrainer *t = luaL_checkudata(L, idx, FE_LUA_TRAINER);
	if (!t->m)
		fe_lua_fail(L, "the trainer is closed");
	return t;
}

/* ---- live trainers: JITs hold memory Lua's collector cannot see ---- */

static int live_count(lua_State *L, int delta)
{
	lua_getfield(L, LUA_REGISTRYINDEX, "lnsc.trainers");
	int n = (int)lua_tointeger(L, -1) + delta;
	lua_pop(L, 1);
	lua_pushinteger(L, n < 0 ? 0 : n);
	lua_setfield(L, LUA_REGISTRYINDEX, "lnsc.trainers");
	return n;
}

static void trainer_release(lua_State *L, FeLuaTrainer *t)
{
	lnsrt_model_free(t->m);
	cg_jit_free(t->jit);
	ir_interp_model_free(t->im);
	ir_graph_free(t->g);
	ir_ctx_free(t->ctx);
	fe_spec_free(&t->spec);
	t->m = NULL;
	t->jit = NULL;
	t->im = NULL;
	t->g = NULL;
	t->ctx = NULL;
	if (t->live) {
		t->live = 0;
		live_count(L, -1);
	}
}

static int trainer_gc(lua_State *L)
{
	trainer_release(L, luaL_checkudata(L, 1, FE_LUA_TRAINER));
	return 0;
}

/* ---- building ---- */

/* Every computed value its own bytes, fusion off: each tensor readable after a step. */
static int plan_for_observation(IrGraph *g)
{
	for (int i = 0; i < g->nodes.n; i++) {
		IrNode *n = IR_NODE(g, i);
		n->epilogue = NULL;
		n->fused = 0;
		for (int j = 0; j < n->nout; j++)
			n->out[j]->is_output = 1;
	}
	return pass_plan(g);
}

static int build_graph(FeLuaTrainer *t)
{
	FeOptions fo = {.batch = t->spec.batch};
	PassOptions po;
	fe_spec_pass_options(&t->spec, &po);
	fe_overrides_hook(&t->spec.ov, &po);
	t->g = fe_onnx_import(t->ctx, t->spec.model, &fo);
	if (!t->g || pass_pipeline(t->g, &po) ||
	    fe_overrides_check_used(t->ctx, &t->spec.ov, t->spec.recipe))
		return -1;
	if (t->g->inputs.n != 1 || ((IrValue *)t->g->inputs.v[0])->type->dt != IR_DT_F32) {
		ir_error(t->ctx, IR_ERR_INPUT,
		         "%s: a trainer needs a model with exactly one f32 data "
		         "input (it has %d inputs)",
		         t->spec.model, t->g->inputs.n);
		return -1;
	}
	if (t->g->outputs.n < 1 || ((IrValue *)t->g->outputs.v[0])->type->rank != 2 ||
	    !t->g->labels || t->g->labels->type->dt != IR_DT_I64) {
		ir_error(t->ctx, IR_ERR_INPUT,
		         "%s: a trainer needs a classifier (logits [batch, "
		         "classes], class-index labels)",
		         t->spec.model);
		return -1;
	}
	if (t->spec.observe && plan_for_observation(t->g))
		return -1;
	/* a batch too large for the machine is an error, not a process the kernel kills */
	double need = (double)t->g->plan->state_bytes + (double)t->g->plan->scratch_bytes;
	double phys = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
	if (phys > 0 && need > phys / 2) {
		ir_error(t->ctx, IR_ERR_INPUT,
		         "%s: batch %lld needs %.1f GB of state and scratch, more "
		         "than half of this machine's memory",
		         t->spec.model, (long long)t->spec.batch, need / 1e9);
		return -1;
	}
	return 0;
}

static int build_backend(FeLuaTrainer *t)
{
	if (!strcmp(t->spec.backend, "interp")) {
		if (!(t->im = ir_interp_model_new(t->g, t->spec.recipe)))
			return -1;
		t->desc = ir_interp_model_desc(t->im);
		return 0;
	}
	CgTarget tg = {.cpu = t->spec.cpu[0] ? t->spec.cpu : NULL};
	if (!(t->jit = cg_jit_new(t->ctx, &tg)))
		return -1;
	CgCtx *cg = cg_jit_ctx(t->jit, "lnsc_model");
	if (!cg)
		return -1;
	cg->recipe = t->spec.recipe;
	if (cg_emit_model(cg, t->g, "lnsc_model", 0)) {
		cg_ctx_free(cg);
		return -1;
	}
	if (cg_jit_add(t->jit, cg))
		return -1;
	t->desc = cg_jit_lookup(t->jit, "lnsc_model");
	return t->desc ? 0 : -1;
}

/* Builds the trainer from t->spec; on failure pushes the message and returns -1. */
static int build(lua_State *L, FeLuaTrainer *t)
{
	char err[1024];
	double t0 = lnsrt_now();
	t->ctx = ir_ctx_new();
	if (build_graph(t) || build_backend(t)) {
		fe_lua_push_diags(L, t->ctx, "cannot compile the model");
		return -1;
	}
	t->m = lnsrt_model_new(t->desc, t->spec.threads, t->spec.seed, err, sizeof err);
	if (!t->m || lnsrt_model_trainer(t->m, &t->tr, err, sizeof err)) {
		lua_pushstring(L, err);
		return -1;
	}
	if (t->spec.lr > 0)
		lnsrt_model_set_lr(t->m, t->spec.lr);
	t->shuffle = t->spec.seed;
	t->compile_seconds = lnsrt_now() - t0;
	return 0;
}

/* A new, empty Trainer userdata on the stack (collected trainers free their JITs). */
static FeLuaTrainer *new_trainer(lua_State *L)
{
	if (live_count(L, 0) >= GC_EVERY)
		lua_gc(L, LUA_GCCOLLECT);
	FeLuaTrainer *t = lua_newuserdatauv(L, sizeof *t, 0);
	memset(t, 0, sizeof *t);
	fe_spec_init(&t->spec);
	luaL_setmetatable(L, FE_LUA_TRAINER);
	t->live = 1;
	live_count(L, 1);
	return t;
}

/* The target: the host's triple, or an error pointing at `lnsc compile`. */
static void check_target(lua_State *L, const char *triple)
{
	if (!triple)
		return;
	char *host = LLVMGetDefaultTargetTriple();
	size_t ha = strcspn(host, "-"), ta = strcspn(triple, "-");
	int same = ha == ta && !strncmp(host, triple, ha) && strstr(triple, "linux");
	lua_pushstring(L, host);
	LLVMDisposeMessage(host);
	if (!same)
		fe_lua_fail(
		    L,
		    "target '%s' is not this machine (%s): a trainer runs in this process; "
		    "build for another target with `lnsc compile MODEL.onnx -o OUT --target "
		    "%s`",
		    triple, lua_tostring(L, -1), triple);
	lua_pop(L, 1);
}

/* Whether LLVM's host feature list ("+sse2,+avx2,-avx512f,...") has feature f ("+avx2"). */
static int has_feature(const char *list, const char *f)
{
	size_t n = strlen(f);
	for (const char *p = list; (p = strstr(p, f)); p += n)
		if ((p == list || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return 1;
	return 0;
}

/* The cpu: one whose code this machine runs (or an error pointing at `lnsc compile`). */
static void check_cpu(lua_State *L, const char *cpu)
{
	static const struct {
		const char *name, *needs[5]; /* host features */
	} known[] = {
	    {"generic", {NULL}},
	    {"x86-64", {"+sse2", NULL}},
	    {"x86-64-v2", {"+sse4.2", "+popcnt", NULL}},
	    {"x86-64-v3", {"+avx2", "+fma", "+bmi2", NULL}},
	    {"x86-64-v4", {"+avx512f", "+avx512bw", "+avx512vl", "+avx512dq", NULL}},
	};
	if (!cpu || !strcmp(cpu, "host"))
		return;
	char *name = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
	int ok = !strcmp(cpu, name), found = ok;
	for (size_t i = 0; !found && i < sizeof known / sizeof *known; i++) {
		if (strcmp(cpu, known[i].name))
			continue;
		found = ok = 1;
		for (int k = 0; known[i].needs[k]; k++)
			ok &= has_feature(feat, known[i].needs[k]);
	}
	lua_pushstring(L, name);
	LLVMDisposeMessage(name);
	LLVMDisposeMessage(feat);
	if (!ok)
		fe_lua_fail(L,
		            "cpu '%s' %s this machine (a %s): a trainer runs in this process; "
		            "build for other CPUs with `lnsc compile MODEL.onnx -o OUT --cpu %s`",
		            cpu, found ? "needs features missing on" : "is not known to run on",
		            lua_tostring(L, -1), cpu);
	lua_pop(L, 1);
}

int fe_lua_compile(lua_State *L, const char *path, const char *recipe, int64_t batch,
                   const FeOverrides *ov, int opts)
{
	opts = lua_absindex(L, opts);
	fe_lua_check_opts(L, opts, "model:compile",
	                  " recipe batch backend target cpu threads seed observe lr ");
	recipe = fe_lua_opt_string(L, opts, "recipe", recipe);
	if (!pass_recipe_known(recipe))
		return fe_lua_fail(L, "unknown recipe '%.40s' (" PASS_RECIPES ")", recipe);
	const char *backend = fe_lua_opt_string(L, opts, "backend", "llvm");
	if (strcmp(backend, "llvm") && strcmp(backend, "interp"))
		return fe_lua_fail(L, "unknown backend '%.40s' (llvm, interp)", backend);
	check_target(L, fe_lua_opt_string(L, opts, "target", NULL));
	const char *cpu = fe_lua_opt_string(L, opts, "cpu", NULL);
	if (cpu && strlen(cpu) >= 64)
		return fe_lua_fail(L, "cpu name too long");
	check_cpu(L, cpu);
	int64_t b = fe_lua_opt_int(L, opts, "batch", batch, 1, 1 << 16);
	int threads = (int)fe_lua_opt_int(L, opts, "threads", 1, 1, 1024);
	int64_t seed = fe_lua_opt_int(L, opts, "seed", 0, 0, INT64_MAX);
	int observe = fe_lua_opt_bool(L, opts, "observe", 1);
	double lr = fe_lua_opt_number(L, opts, "lr", 0);
	if (lr != 0 && !(lr > 0 && lr <= 1e6))
		return fe_lua_fail(L, "option 'lr' must be a positive number (at most 1e6)");
	FeLuaTrainer *t = new_trainer(L);
	FeTrainerSpec *s = &t->spec;
	fe_spec_set_model(s, path);
	snprintf(s->recipe, sizeof s->recipe, "%s", recipe);
	snprintf(s->backend, sizeof s->backend, "%s", backend);
	snprintf(s->cpu, sizeof s->cpu, "%s", cpu && strcmp(cpu, "host") ? cpu : "");
	s->batch = b;
	s->threads = threads;
	s->seed = (uint64_t)seed;
	s->observe = observe;
	s->lr = (float)lr;
	fe_overrides_copy(&s->ov, ov);
	if (build(L, t))
		return fe_lua_fail_top(L);
	return 1;
}

/* ---- train and eval ---- */

static void push_number_or_nil(lua_State *L, double v)
{
	if (isfinite(v))
		lua_pushnumber(L, v);
	else
		lua_pushnil(L);
}

static void set_num(lua_State *L, const char *key, double v)
{
	push_number_or_nil(L, v);
	lua_setfield(L, -2, key);
}

static void interrupted(lua_State *L, const char *err)
{
	lua_pushboolean(L, 1);
	lua_setfield(L, LUA_REGISTRYINDEX, "lnsc.interrupted");
	fe_lua_fail(L, "trainer:train: %s", err);
}

/* The Dataset the `data` option of the table at opts names, pushed; returns its index. */
static int data_option(lua_State *L, int opts)
{
	if (lua_istable(L, opts)) {
		lua_pushstring(L, "data");
		lua_rawget(L, opts);
	} else {
		lua_pushnil(L);
	}
	int d = fe_lua_data_arg(L, -1);
	lua_remove(L, -2);
	return d - 1;
}

/* The shape a dataset must have for t: examples of the model's input size, labels below the
 * model's class count. */
static void check_fit(lua_State *L, FeLuaTrainer *t, const LnsrtDataset *d, const char *what)
{
	int64_t es = (int64_t)d->rows * d->cols;
	if (d->n && es != t->tr.example_size)
		fe_lua_fail(L,
		            "%s: the dataset's examples have %lld values, the model's input %lld",
		            what, (long long)es, (long long)t->tr.example_size);
	if (d->n && d->nclasses > t->tr.nclasses)
		fe_lua_fail(L, "%s: the dataset has labels up to %d, the model %d classes", what,
		            d->nclasses - 1, t->tr.nclasses);
}

/* trainer:train{data=, epochs= | steps=, lr=, seed=, eval=, verbose=} */
static int trainer_train(lua_State *L)
{
	FeLuaTrainer *t = check_trainer(L, 1);
	fe_lua_check_opts(L, 2, "trainer:train", " data epochs steps lr seed eval verbose ");
	int64_t epochs = fe_lua_opt_int(L, 2, "epochs", 0, 1, 100000);
	int64_t steps = fe_lua_opt_int(L, 2, "steps", 0, 1, INT64_MAX / 4);
	double lr = fe_lua_opt_number(L, 2, "lr", 0);
	int64_t seed = fe_lua_opt_int(L, 2, "seed", -1, 0, INT64_MAX);
	int with_eval = fe_lua_opt_bool(L, 2, "eval", 1);
	int verbose = fe_lua_opt_bool(L, 2, "verbose", 0);
	if (epochs && steps)
		return fe_lua_fail(L, "trainer:train takes epochs or steps, not both");
	if (lr != 0 && !(lr > 0 && lr <= 1e6))
		return fe_lua_fail(L, "option 'lr' must be a positive number (at most 1e6)");
	int data = data_option(L, 2);
	const LnsrtDataset *train = fe_lua_data_train(L, data), *test = fe_lua_data_test(L, data);
	check_fit(L, t, train, "trainer:train");
	check_fit(L, t, test, "trainer:train");
	if (train->n < t->tr.batch)
		return fe_lua_fail(L,
		                   "trainer:train: %lld training examples, fewer than one batch "
		                   "of %d",
		                   (long long)train->n, t->tr.batch);
	/* a training set of another size is a new run: the shuffled order depends on it */
	if (t->pos.epoch >= 1 && t->pos.train_n != train->n)
		t->pos = (LnsrtTrainState){.epoch = 0};
	if (seed >= 0) {
		t->shuffle = (uint64_t)seed;
		if (t->pos.epoch >= 1)
			t->pos.seed = (uint64_t)seed;
	}
	if (lr > 0) {
		t->spec.lr = (float)lr;
		lnsrt_model_set_lr(t->m, t->spec.lr);
	}
	LnsrtTrainOpts o;
	lnsrt_train_opts_init(&o);
	int started = t->pos.epoch >= 1;
	int64_t before = started ? t->pos.total_steps : 0;
	int epoch = started ? t->pos.epoch : 1;
	double loss_sum = 0;
	o.seed = t->shuffle;
	o.position = &t->pos;
	o.quiet = !verbose;
	o.progress = verbose ? -1 : 0;
	o.out = stdout;
	o.epochs = steps ? 1 << 30 : epoch + (int)(epochs ? epochs : 1) - 1;
	o.max_steps = steps ? before + steps : 0;
	o.loss_sum = &loss_sum;
	LnsrtEpochResult last;
	char err[2048];
	double t0 = lnsrt_now();
	int rc = lnsrt_train(&t->tr, train, with_eval ? test : NULL, &o, &last, err, sizeof err);
	if (rc == LNSRT_INTERRUPTED)
		interrupted(L, err);
	if (rc)
		return fe_lua_fail(L, "trainer:train: %s", err);
	int64_t done = t->pos.total_steps - before, per_epoch = train->n / t->tr.batch;
	lua_createtable(L, 0, 8);
	lua_pushinteger(L, done);
	lua_setfield(L, -2, "steps");
	set_num(L, "epochs", per_epoch ? (double)done / (double)per_epoch : 0);
	lua_pushinteger(L, t->pos.total_steps);
	lua_setfield(L, -2, "total_steps");
	set_num(L, "train_loss", done ? loss_sum / (double)done : NAN);
	set_num(L, "test_loss", last.test_loss);
	set_num(L, "test_accuracy", last.test_acc);
	set_num(L, "seconds", lnsrt_now() - t0);
	return 1;
}

/* trainer:eval{data=, split=, limit=} */
static int trainer_eval(lua_State *L)
{
	static const char *const SPLITS[] = {"test", "train"};
	FeLuaTrainer *t = check_trainer(L, 1);
	fe_lua_check_opts(L, 2, "trainer:eval", " data split limit ");
	const char *split = fe_lua_opt_string(L, 2, "split", "test");
	int64_t limit = fe_lua_opt_int(L, 2, "limit", 0, 1, INT64_MAX);
	int train = !strcmp(split, SPLITS[1]);
	if (!train && strcmp(split, SPLITS[0]))
		return fe_lua_fail(L, "trainer:eval: split must be 'test' or 'train', not '%.40s'",
		                   split);
	int data = data_option(L, 2);
	LnsrtDataset d = *(train ? fe_lua_data_train(L, data) : fe_lua_data_test(L, data));
	check_fit(L, t, &d, "trainer:eval");
	if (d.n == 0)
		return fe_lua_fail(L, "trainer:eval: the dataset has no %s split", split);
	if (limit && limit < d.n)
		d.n = limit;
	double loss, acc;
	char err[2048];
	if (lnsrt_evaluate(&t->tr, &d, &loss, &acc, err, sizeof err))
		return fe_lua_fail(L, "trainer:eval: %s", err);
	lua_createtable(L, 0, 3);
	set_num(L, "loss", loss);
	set_num(L, "accuracy", acc);
	lua_pushinteger(L, d.n);
	lua_setfield(L, -2, "examples");
	return 1;
}

/* ---- reading and writing tensors ---- */

/* Whether v's value after a step is in memory: state always; scratch when the trainer was
 * planned for observation (otherwise its bytes may be reused or never written, fused). */
static int has_value(const FeLuaTrainer *t, const IrValue *v)
{
	return v->loc.area == IR_AREA_STATE || (v->loc.area == IR_AREA_SCRATCH && t->spec.observe);
}

/* The value called name, readable after a step, or an error. */
static const IrValue *readable(lua_State *L, FeLuaTrainer *t, const char *name)
{
	const IrValue *v = ir_graph_value(t->g, name);
	if (!v)
		return fe_lua_fail(L, "no tensor named '%s'", name), NULL;
	if (!has_value(t, v))
		fe_lua_fail(L, "tensor '%s' (%s) %s: it has no value to read", name,
		            fe_lua_role(t->g, v),
		            v->loc.area == IR_AREA_IO        ? "is fed to each step, not stored"
		            : v->loc.area == IR_AREA_SCRATCH ? "is scratch of a trainer compiled "
		                                               "with observe=false"
		                                             : "is not stored");
	return v;
}

/* v's values after the last step, as f32, into out (numel floats). */
static int read_values(FeLuaTrainer *t, const IrValue *v, float *out, char *err, size_t errn)
{
	size_t n = (size_t)v->type->numel;
	if (v->loc.area == IR_AREA_SCRATCH && v->type->dt == IR_DT_LNS) {
		if (t->im) {
			IrInterp *ip = ir_interp_model_interp(t->im);
			if (!ip || ir_interp_read(ip, v, out))
				memset(out, 0, n * sizeof *out);
			return 0;
		}
		const uint8_t *scratch = lnsrt_model_scratch(t->m);
		int32_t k;
		memcpy(&k, scratch + t->g->plan->kslot_off + 4 * (size_t)v->id, sizeof k);
		lns_decode_tensor(v->type->fmt, k, scratch + v->loc.offset, out, n);
		return 0;
	}
	return lnsrt_model_read(t->m, v->name, out, (int64_t)n, err, errn);
}

/* A scratch buffer of n floats owned by a userdata left on the stack. */
static float *buffer(lua_State *L, int64_t n)
{
	return lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof(float), 0);
}

static int trainer_get(lua_State *L)
{
	FeLuaTrainer *t = check_trainer(L, 1);
	const IrValue *v = readable(L, t, luaL_checkstring(L, 2));
	int64_t n = v->type->numel;
	float *x = buffer(L, n);
	char err[512];
	if (read_values(t, v, x, err, sizeof err))
		return fe_lua_fail(L, "trainer:get: %s", err);
	lua_createtable(L, (int)n, 0);
	for (int64_t i = 0; i < n; i++) {
		lua_pushnumber(L, x[i]);
		lua_rawseti(L, -2, i + 1);
	}
	return 1;
}

static LnsScaleState *scale_state(FeLuaTrainer *t, const IrValue *v)
{
	return v->loc.scale_off >= 0
	           ? (LnsScaleState *)((uint8_t *)lnsrt_model_state(t->m) + v->loc.scale_off)
	           : NULL;
}

/* A weight's values (n floats) stored in its format; counts saturated/underflowed. */
static void store_weight(FeLuaTrainer *t, const IrValue *v, const float *x, uint64_t *sat,
                         uint64_t *unf)
{
	uint8_t *dst = (uint8_t *)lnsrt_model_state(t->m) + v->loc.offset;
	size_t n = (size_t)v->type->numel;
	*sat = *unf = 0;
	if (v->type->dt != IR_DT_LNS) {
		memcpy(dst, x, n * sizeof *x);
		return;
	}
	LnsFormat f = v->type->fmt;
	f.round = LNS_ROUND_NEAREST;
	LnsScaleState *st = scale_state(t, v);
	uint32_t key = lns_rng_key(t->spec.seed, lnsrt_model_step(t->m), (uint32_t)v->id);
	for (size_t i = 0; i < n; i++) {
		int flags = 0;
		lns_store(f, dst, i,
		          lns_encode(f, st->k, x[i], lns_rng_bits(key, (uint32_t)i), &flags));
		*sat += (flags & LNS_F_SAT) != 0;
		*unf += (flags & LNS_F_UNF) != 0;
	}
}

/* A weight of the trainer by name (the only tensors set and set_scale may write). */
static const IrValue *weight(lua_State *L, FeLuaTrainer *t, const char *name, const char *what)
{
	const IrValue *v = ir_graph_value(t->g, name);
	if (!v)
		fe_lua_fail(L, "no tensor named '%s'", name);
	if (v->role != IR_ROLE_PARAM || v->loc.area != IR_AREA_STATE)
		fe_lua_fail(L, "%s: '%s' is %s %s, not a weight", what, name,
		            strchr("aeiou", fe_lua_role(t->g, v)[0]) ? "an" : "a",
		            fe_lua_role(t->g, v));
	return v;
}

static int trainer_set(lua_State *L)
{
	FeLuaTrainer *t = check_trainer(L, 1);
	const IrValue *v = weight(L, t, luaL_checkstring(L, 2), "trainer:set");
	luaL_checktype(L, 3, LUA_TTABLE);
	int64_t n = v->type->numel;
	if ((int64_t)lua_rawlen(L, 3) != n)
		return fe_lua_fail(L, "trainer:set: '%s' has %lld elements, the array %lld",
		                   v->name, (long long)n, (long long)lua_rawlen(L, 3));
	float *x = buffer(L, n);
	for (int64_t i = 0; i < n; i++) {
		int type = lua_rawgeti(L, 3, i + 1);
		double d = lua_tonumber(L, -1);
		lua_pop(L, 1);
		if (type != LUA_TNUMBER || !isfinite(d) || fabs(d) > FLT_MAX)
			return fe_lua_fail(L,
			                   "trainer:set: element %lld of '%s' must be a finite "
			                   "number",
			                   (long long)i + 1, v->name);
		x[i] = (float)d;
	}
	uint64_t sat, unf;
	store_weight(t, v, x, &sat, &unf);
	lua_pushinteger(L, (lua_Integer)sat);
	lua_pushinteger(L, (lua_Integer)unf);
	return 2;
}

static int trainer_set_scale(lua_State *L)
{
	FeLuaTrainer *t = check_trainer(L, 1);
	const char *name = luaL_checkstring(L, 2);
	lua_Integer k = luaL_checkinteger(L, 3);
	const IrValue *v = ir_graph_value(t->g, name);
	if (!v)
		return fe_lua_fail(L, "no tensor named '%s'", name);
	LnsScaleState *st = v->type->dt == IR_DT_LNS ? scale_state(t, v) : NULL;
	if (!st)
		return fe_lua_fail(L,
		                   "trainer:set_scale: '%s' is not an LNS tensor: it has no "
		                   "scale offset",
		                   name);
	if (v->def && v->def->op == IR_OP_WEIGHT_VIEW)
		return fe_lua_fail(
		    L, "trainer:set_scale: the offset of '%s' follows its weight's: set '%s'", name,
		    v->def->in[0]->name);
	LnsFormat f = v->type->fmt;
	if (f.scale != LNS_SCALE_STATIC)
		return fe_lua_fail(L,
		                   "trainer:set_scale: '%s' has %s scaling (k follows amax); "
		                   "give it scale='static' first",
		                   name, f.scale == LNS_SCALE_DELAYED ? "delayed" : "current");
	int64_t g = lns_gamma(f), lo = -126 * g, hi = 127 * g - lns_max_code(f);
	if (k < lo || k > hi)
		return fe_lua_fail(L,
		                   "trainer:set_scale: k for '%s' (%s) must be from %lld to %lld "
		                   "(the fp32 range), not %lld",
		                   name, "lns", (long long)lo, (long long)hi, (long long)k);
	if (v->loc.area != IR_AREA_STATE) {
		st->k = (int32_t)k;
		return 0;
	}
	/* a stored weight keeps its values: decoded with the old k, encoded with the new */
	float *x = buffer(L, v->type->numel);
	char err[512];
	if (read_values(t, v, x, err, sizeof err))
		return fe_lua_fail(L, "trainer:set_scale: %s", err);
	st->k = (int32_t)k;
	uint64_t sat, unf;
	store_weight(t, v, x, &sat, &unf);
	lua_pushinteger(L, (lua_Integer)sat);
	lua_pushinteger(L, (lua_Integer)unf);
	return 2;
}

/* ---- telemetry ---- */

/* hist = {lo=, counts={...}, zeros=}: floor(log2|x|) in bins of 1 from lo. */
static void push_hist(lua_State *L, const float *x, int64_t n)
{
	int lo = INT32_MAX, hi = INT32_MIN;
	int64_t zeros = 0, counts[320] = {0};
	for (int64_t i = 0; i < n; i++) {
		int e;
		if (x[i] == 0.0f || !isfinite(x[i])) {
			zeros += x[i] == 0.0f;
			continue;
		}
		frexpf(x[i], &e);
		e -= 1; /* |x| in [2^e, 2^(e+1)) */
		lo = e < lo ? e : lo;
		hi = e > hi ? e : hi;
		counts[e + 160]++;
	}
	lua_createtable(L, 0, 3);
	lua_pushinteger(L, zeros);
	lua_setfield(L, -2, "zeros");
	lua_createtable(L, hi >= lo ? hi - lo + 1 : 0, 0);
	for (int e = lo; e <= hi; e++) {
		lua_pushinteger(L, counts[e + 160]);
		lua_rawseti(L, -2, e - lo + 1);
	}
	lua_setfield(L, -2, "counts");
	if (hi >= lo) {
		lua_pushinteger(L, lo);
		lua_setfield(L, -2, "lo");
	}
}

/* The scale state's counts and its amax history, oldest first. */
static void push_scale(lua_State *L, const LnsScaleState *st)
{
	lua_pushinteger(L, (lua_Integer)st->n_sat);
	lua_setfield(L, -2, "saturated");
	lua_pushinteger(L, (lua_Integer)st->n_unf);
	lua_setfield(L, -2, "underflowed");
	lua_pushinteger(L, (lua_Integer)st->n_total);
	lua_setfield(L, -2, "total");
	lua_pushinteger(L, st->k);
	lua_setfield(L, -2, "k");
	int nh = st->nhist < 0 ? 0 : st->nhist > LNS_HIST ? LNS_HIST : st->nhist;
	lua_createtable(L, nh, 0);
	for (int i = 0; i < nh; i++) {
		int at = ((st->hpos - nh + i) % LNS_HIST + LNS_HIST) % LNS_HIST;
		lua_pushnumber(L, st->hist[at]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "amax");
}

static void push_telemetry(lua_State *L, FeLuaTrainer *t, const IrValue *v, float *x)
{
	char fmt[64], err[512];
	lua_createtable(L, 0, 9);
	lua_pushstring(L, fe_lua_role(t->g, v));
	lua_setfield(L, -2, "role");
	lua_pushstring(L, v->type->dt == IR_DT_LNS
	                      ? lns_format_str_full(v->type->fmt, fmt, sizeof fmt)
	                  : v->type->dt == IR_DT_F32 ? "fp32"
	                                             : ir_dtype_name(v->type->dt));
	lua_setfield(L, -2, "format");
	const LnsScaleState *st = v->type->dt == IR_DT_LNS ? scale_state(t, v) : NULL;
	if (st)
		push_scale(L, st);
	if (!has_value(t, v) || read_values(t, v, x, err, sizeof err))
		return;
	int64_t n = v->type->numel;
	if (!st) { /* fp32: no history; the max of the last value */
		float m = 0;
		for (int64_t i = 0; i < n; i++)
			m = isfinite(x[i]) && fabsf(x[i]) > m ? fabsf(x[i]) : m;
		lua_createtable(L, 1, 0);
		lua_pushnumber(L, m);
		lua_rawseti(L, -2, 1);
		lua_setfield(L, -2, "amax");
	}
	push_hist(L, x, n);
	lua_setfield(L, -2, "hist");
}

static int trainer_telemetry(lua_State *L)
{
	FeLuaTrainer *t = check_trainer(L, 1);
	IrGraph *g = t->g;
	int64_t most = 1;
	for (int i = 0; i < g->values.n; i++)
		most = IR_VALUE(g, i)->type->numel > most ? IR_VALUE(g, i)->type->numel : most;
	float *x = buffer(L, most);
	lua_createtable(L, 0, g->values.n);
	for (int i = 0; i < g->values.n; i++) {
		const IrValue *v = IR_VALUE(g, i);
		if (v->loc.area != IR_AREA_STATE && v->loc.area != IR_AREA_SCRATCH)
			continue;
		if (v->type->dt != IR_DT_LNS && v->type->dt != IR_DT_F32)
			continue;
		if (!has_value(t, v) && !(v->type->dt == IR_DT_LNS && scale_state(t, v)))
			continue;
		push_telemetry(L, t, v, x);
		lua_setfield(L, -2, v->name);
	}
	return 1;
}

/* ---- checkpoints ---- */

static int trainer_save(lua_State *L)
{
	FeLuaTrainer *t = check_trainer(L, 1);
	const char *path = luaL_checkstring(L, 2);
	char *meta = fe_spec_meta(&t->spec), err[1024];
	const LnsrtTrainState *pos = t->pos.epoch >= 1 ? &t->pos : NULL;
	int rc = lnsrt_checkpoint_save_meta(t->desc, lnsrt_model_state(t->m), pos, meta, path, err,
	                                    sizeof err);
	free(meta);
	if (rc)
		return fe_lua_fail(L, "trainer:save: %s", err);
	return 0;
}

/* lnsc.resume(path [, {backend=, threads=}]) */
int fe_lua_resume(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	fe_lua_check_opts(L, 2, "lnsc.resume", " backend threads ");
	const char *backend = fe_lua_opt_string(L, 2, "backend", NULL);
	if (backend && strcmp(backend, "llvm") && strcmp(backend, "interp"))
		return fe_lua_fail(L, "unknown backend '%s' (llvm, interp)", backend);
	int64_t threads = fe_lua_opt_int(L, 2, "threads", 0, 1, 1024);
	LnsrtCheckpoint ck;
	char err[1024];
	if (lnsrt_checkpoint_read(path, &ck, err, sizeof err))
		return fe_lua_fail(L, "lnsc.resume: %s", err);
	FeLuaTrainer *t = new_trainer(L);
	int bad = fe_spec_parse(ck.meta, &t->spec, err, sizeof err);
	lnsrt_checkpoint_free(&ck);
	if (bad)
		return fe_lua_fail(L, "lnsc.resume: %s: %s", path, err);
	if (backend)
		snprintf(t->spec.backend, sizeof t->spec.backend, "%s", backend);
	if (threads)
		t->spec.threads = (int)threads;
	check_cpu(L, t->spec.cpu[0] ? t->spec.cpu : NULL);
	if (build(L, t)) {
		lua_pushfstring(L, "lnsc.resume: %s: ", path);
		lua_insert(L, -2);
		lua_concat(L, 2);
		return fe_lua_fail_top(L);
	}
	LnsrtTrainState pos;
	if (lnsrt_checkpoint_load(t->desc, lnsrt_model_state(t->m), &pos, path, err, sizeof err))
		return fe_lua_fail(L, "lnsc.resume: %s", err);
	if (pos.epoch >= 1) {
		t->pos = pos;
		t->shuffle = pos.seed;
	}
	return 1;
}

/* ---- the object ---- */

static int trainer_close(lua_State *L)
{
	trainer_release(L, luaL_checkudata(L, 1, FE_LUA_TRAINER));
	return 0;
}

static const luaL_Reg trainer_methods[] = {
    {"train", trainer_train}, {"eval", trainer_eval},   {"telemetry", trainer_telemetry},
    {"get", trainer_get},     {"set", trainer_set},     {"set_scale", trainer_set_scale},
    {"save", trainer_save},   {"close", trainer_close}, {NULL, NULL},
};

static int trainer_index(lua_State *L)
{
	FeLuaTrainer *t = luaL_checkudata(L, 1, FE_LUA_TRAINER);
	const char *key = luaL_checkstring(L, 2);
	if (lua_getfield(L, lua_upvalueindex(1), key) != LUA_TNIL)
		return 1;
	if (!t->m)
		return fe_lua_fail(L, "the trainer is closed");
	const FeTrainerSpec *s = &t->spec;
	if (!strcmp(key, "path"))
		lua_pushstring(L, s->model);
	else if (!strcmp(key, "recipe"))
		lua_pushstring(L, s->recipe);
	else if (!strcmp(key, "backend"))
		lua_pushstring(L, s->backend);
	else if (!strcmp(key, "batch"))
		lua_pushinteger(L, s->batch);
	else if (!strcmp(key, "threads"))
		lua_pushinteger(L, s->threads);
	else if (!strcmp(key, "steps"))
		lua_pushinteger(L, lnsrt_model_step(t->m));
	else if (!strcmp(key, "epoch"))
		lua_pushinteger(L, t->pos.epoch >= 1 ? t->pos.epoch : 1);
	else if (!strcmp(key, "compile_seconds"))
		lua_pushnumber(L, t->compile_seconds);
	else if (!strcmp(key, "state_bytes"))
		lua_pushinteger(L, t->desc->state_bytes);
	else if (!strcmp(key, "observe"))
		lua_pushboolean(L, s->observe);
	else if (!strcmp(key, "seed"))
		lua_pushinteger(L, (lua_Integer)s->seed);
	else
		lua_pushnil(L);
	return 1;
}

static int trainer_tostring(lua_State *L)
{
	FeLuaTrainer *t = luaL_checkudata(L, 1, FE_LUA_TRAINER);
	if (!t->m)
		lua_pushstring(L, "Trainer (closed)");
	else
		lua_pushfstring(L, "Trainer '%s' (%s, %s, batch %d, %d steps)", t->spec.model,
		                t->spec.recipe, t->spec.backend, (int)t->spec.batch,
		                (int)lnsrt_model_step(t->m));
	return 1;
}

void fe_lua_trainer_register(lua_State *L)
{
	if (luaL_newmetatable(L, FE_LUA_TRAINER)) {
		lua_pushstring(L, "lnsc");
		lua_setfield(L, -2, "__metatable"); /* scripts cannot reach __gc */
		lua_pushcfunction(L, trainer_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, trainer_close);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, trainer_tostring);
		lua_setfield(L, -2, "__tostring");
		luaL_newlib(L, trainer_methods);
		lua_pushcclosure(L, trainer_index, 1);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
}
