/* lnsc_lua.h: the Lua module `lnsc` and the per-tensor overrides it shares with the CLI.
 *
 * Two layers. (1) FeOverrides (overrides.c) is a table of per-tensor overrides by name (a
 * format, an optimizer), each remembering where it was given ("fmt.txt:3", "policy.lua:4",
 * "tune.lua:12"). Whatever sets formats fills one: `--formats FILE`, a `--policy FILE.lua`
 * run over the recipe's graph, a Lua model's `t.format = ...`. The passes see it through the
 * one hook in PassOptions (passes.h): optimize asks about each parameter's optimizer,
 * precision, last, about each tensor's format, so the overrides win over the recipe.
 * (2) The Lua module (lua_*.c) puts the compiler behind four userdata types, each with a
 * metatable and a __gc that frees its C state: Model (a path, a recipe, a batch and its
 * FeOverrides, with the training graph built on demand), Tensor (a name in a model), Trainer
 * (its own IrCtx, graph, JIT or interpreter, LnsrtModel and training position) and Dataset
 * (an LnsrtDataset pair). Every C entry checks its arguments before it allocates anything a
 * Lua error would leak, and compiler or runtime failures become Lua errors whose message
 * starts with the calling script's file:line; nothing raises while LLVM, a pass or the
 * runtime is on the C stack (their diagnostics are collected and raised afterwards).
 */
#ifndef LNSC_LNSC_LUA_H
#define LNSC_LNSC_LUA_H

#include <lua.h>

#include "frontend/fe.h"
#include "passes/passes.h"
#include "runtime/lnsrt.h"

/* ---- overrides.c: per-tensor overrides by name ---- */

typedef struct FeOverride {
	char *name;
	char *origin; /* where it was given, for messages */
	PassOverride o;
	int used; /* the last pipeline asked about it */
} FeOverride;

typedef struct FeOverrides {
	FeOverride *v;
	int n, cap;
} FeOverrides;

void fe_overrides_init(FeOverrides *ov);
void fe_overrides_free(FeOverrides *ov);
void fe_overrides_clear(FeOverrides *ov);
/* Copies src into dst (emptied first). */
void fe_overrides_copy(FeOverrides *dst, const FeOverrides *src);
FeOverride *fe_overrides_find(const FeOverrides *ov, const char *name);
/* Sets (replaces) name's override; an override with nothing in it removes the entry. */
void fe_overrides_set(FeOverrides *ov, const char *name, const PassOverride *o, const char *origin);
/* Makes the passes consult ov (po->override, po->override_user) and clears the used marks. */
void fe_overrides_hook(FeOverrides *ov, PassOptions *po);
/* After a pipeline run with the hook: every override must have named a value of the graph.
 * 0, or -1 with "<origin>: no tensor named '<name>'" diagnostics. */
int fe_overrides_check_used(IrCtx *c, const FeOverrides *ov, const char *recipe);
/* The `--formats FILE` file: "<tensor> <format>" lines, '#' comments. 0, or -1 with
 * diagnostics naming file:line. */
int fe_overrides_read_file(IrCtx *c, FeOverrides *ov, const char *path);

/* Whether v's scale is static whatever a format string says: parameters (fixed when first
 * encoded) and weight views (derived from the weight's). */
int fe_static_scale(const IrValue *v);
/* Format text: "fp32" or an LNS format string (lns_format_parse: "lns8g8", "lns5g2:sr",
 * "lns6g4:rn:static:uf=min"). 0, or -1 (out untouched). */
int fe_format_parse(const char *s, PassOverride *out);
/* "fp32", "lns5g2:sr:delayed:uf=zero", or "" for an override without a format. */
char *fe_format_str(const PassOverride *o, char *buf, size_t n);
const char *fe_update_name(PassUpdate u); /* "madam", "sgd", "adam"; NULL for the recipe's */
int fe_update_parse(const char *s, PassUpdate *out); /* 0, or -1 */

/* ---- policy.c: --formats and --policy for the commands ---- */

/* What `--formats FILE` and `--policy FILE.lua` make of a command's options: fills ov (the
 * file's overrides, then what the policy function returns for each tensor of the training
 * graph built with them, which wins) and hooks it into po. Either path may be NULL. 0, or -1
 * with diagnostics (status IR_ERR_INPUT for a bad file or policy). */
int fe_policy_prepare(IrCtx *c, const char *model, const FeOptions *fo, PassOptions *po,
                      const char *formats, const char *policy, FeOverrides *ov);

/* ---- spec.c: what builds a trainer, and its text in a checkpoint ---- */

/* Everything a trainer is compiled from; a checkpoint stores it as its metadata text, so
 * lnsc.resume rebuilds the same trainer. */
typedef struct FeTrainerSpec {
	char *model; /* the ONNX file, an absolute path when it could be resolved */
	char recipe[32], backend[8], cpu[64]; /* cpu "": the host's */
	int64_t batch;
	int threads;
	int observe;    /* every tensor readable after a step (fusion off) */
	uint64_t seed;  /* the model's seed (initialisation, stochastic rounding, dropout) */
	float lr;       /* the main optimizer's learning rate; 0: the recipe's */
	float momentum; /* SGD momentum */
	int adam;       /* fp32 recipe: Adam instead of SGD */
	FeOverrides ov;
} FeTrainerSpec;

void fe_spec_init(FeTrainerSpec *s);
void fe_spec_free(FeTrainerSpec *s);
void fe_spec_set_model(FeTrainerSpec *s, const char *path); /* resolves it if it can */
/* The pass options of the spec: recipe, optimizer, momentum (lr is set at run time:
 * lnsrt_model_set_lr, the same numbers as compiling it in). */
void fe_spec_pass_options(const FeTrainerSpec *s, PassOptions *po);
char *fe_spec_meta(const FeTrainerSpec *s); /* malloc'd text */
/* Reads a metadata text into s (initialised by the caller). 0, or -1 with a message. */
int fe_spec_parse(const char *meta, FeTrainerSpec *s, char *err, size_t errn);

/* ---- lua_lnsc.c: the module, `lnsc run` ---- */

/* Opens the module (the table `lnsc`); the function behind require "lnsc". */
int fe_luaopen_lnsc(lua_State *L);
/* A state with the standard libraries and the module (global `lnsc`, require "lnsc"), or
 * NULL when out of memory. */
lua_State *fe_lua_new_state(void);
/* `lnsc run SCRIPT.lua [ARGS...]`: argv[0] is "run". Returns the exit code: 0, 1 when the
 * script raised an error, 2 for bad usage or a script that does not load, 130 when training
 * was interrupted by SIGINT. */
int fe_lua_run(int argc, char **argv);

/* ---- shared by the lua_*.c files ---- */

/* Metatable names. */
#define FE_LUA_MODEL "lnsc.Model"
#define FE_LUA_TENSOR "lnsc.Tensor"
#define FE_LUA_TRAINER "lnsc.Trainer"
#define FE_LUA_DATASET "lnsc.Dataset"

/* Raises a Lua error: the caller's "file:line: " and the message. Never returns. */
int fe_lua_fail(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Raises the text on the top of the stack with the caller's position in front. */
int fe_lua_fail_top(lua_State *L);
/* Pushes a copy of the context's diagnostics (or `what` when there are none). */
void fe_lua_push_diags(lua_State *L, IrCtx *c, const char *what);
/* Checks that the table at idx has only keys named in `allowed` (" recipe batch "): a typo
 * in an option is an error, not a silent default. nil and none pass (no options); any other
 * type is an error. */
void fe_lua_check_opts(lua_State *L, int idx, const char *what, const char *allowed);
/* Option fields of the table at idx (absent or nil: def). Type errors name the field. */
const char *fe_lua_opt_string(lua_State *L, int idx, const char *key, const char *def);
int64_t fe_lua_opt_int(lua_State *L, int idx, const char *key, int64_t def, int64_t lo, int64_t hi);
double fe_lua_opt_number(lua_State *L, int idx, const char *key, double def);
int fe_lua_opt_bool(lua_State *L, int idx, const char *key, int def);

/* lua_model.c */
void fe_lua_model_register(lua_State *L);
int fe_lua_load(lua_State *L); /* lnsc.load(path [, opts]) */
/* A plain table describing v (what a policy receives and a Tensor shows). */
void fe_lua_push_desc(lua_State *L, IrGraph *g, const IrValue *v);
/* The role name of v in g ("weight", "activation", ...). */
const char *fe_lua_role(const IrGraph *g, const IrValue *v);
/* Applies a policy function (at fn_idx) to every tensor of g, storing what it returns in ov
 * with origin "<policy source>:<line>". Returns the number of tensors it set; raises on
 * errors (no C resources are held while it runs). */
int fe_lua_apply_policy(lua_State *L, int fn_idx, IrGraph *g, FeOverrides *ov);

/* lua_trainer.c */
void fe_lua_trainer_register(lua_State *L);
/* model:compile{...} with the model's path, recipe, batch and overrides. */
int fe_lua_compile(lua_State *L, const char *path, const char *recipe, int64_t batch,
                   const FeOverrides *ov, int opts_idx);
int fe_lua_resume(lua_State *L); /* lnsc.resume(path [, opts]) */

/* lua_data.c */
void fe_lua_data_register(lua_State *L);
int fe_lua_dataset(lua_State *L); /* lnsc.dataset(spec) */
/* The dataset a `data=` option names (a Dataset, a spec string, a table, or nil for the
 * default), left on the stack (so it stays alive) at the returned index. */
int fe_lua_data_arg(lua_State *L, int idx);
const LnsrtDataset *fe_lua_data_train(lua_State *L, int idx);
const LnsrtDataset *fe_lua_data_test(lua_State *L, int idx);

#endif
