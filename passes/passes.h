/* passes.h: the passes' one internal header: options, and one entry function per pass file.
 *
 * passes/pipeline.c is the only place that orders them. Each pass takes the graph and the
 * options, reports user errors as diagnostics on the graph's context, and returns 0 or -1.
 */
#ifndef LNSC_PASSES_H
#define LNSC_PASSES_H

#include "ir/ir.h"

typedef enum { PASS_LOSS_XENT, PASS_LOSS_MSE } PassLoss;
typedef enum { PASS_OPT_SGD, PASS_OPT_ADAM } PassOptimizer;

/* A per-tensor override: a format (the recipe's, fp32, or an LNS format) and, for a parameter,
 * its optimizer. The frontend fills them from `--formats FILE`, a `--policy FILE.lua` or a Lua
 * script's `t.format = ...` (frontend/lua/overrides.c); the passes ask through the hook below:
 * optimize about each parameter's optimizer, precision (after the recipe, so they win) about
 * every value's format. */
typedef enum { PASS_FMT_RECIPE, PASS_FMT_F32, PASS_FMT_LNS } PassFmtKind;
typedef enum { PASS_UPD_RECIPE, PASS_UPD_MADAM, PASS_UPD_SGD, PASS_UPD_ADAM } PassUpdate;
typedef struct PassOverride {
	PassFmtKind kind;
	LnsFormat fmt; /* kind PASS_FMT_LNS */
	PassUpdate update;
} PassOverride;
/* Fills *out for v (zeroed: nothing to override); 0, or -1 after a diagnostic. */
typedef int (*PassOverrideFn)(void *user, IrGraph *g, const IrValue *v, PassOverride *out);

typedef struct PassOptions {
	const char *recipe;      /* one of PASS_RECIPES */
	int train;               /* build the training graph (loss, backward, updates) */
	PassLoss loss;           /* on the first graph output */
	PassOptimizer optimizer; /* fp32 recipe: sgd (momentum) or adam */
	float lr;                /* 0: the recipe's default */
	float momentum;          /* SGD momentum (default 0.9) */
	float lr_1d;             /* lns-madam: Adam lr for 1-D params (default 1e-3) */
	PassOverrideFn override; /* per-tensor overrides, or NULL */
	void *override_user;
} PassOptions;

/* The recipes, for messages: fp32 (SGD with momentum or Adam), lns-madam (LNS.md 5), lns-sgd
 * (lns-madam's formats, the weights updated by SGD with momentum: decode, update, re-encode). */
#define PASS_RECIPES "fp32, lns-madam, lns-sgd"
#define PASS_RECIPES_BAR "fp32|lns-madam|lns-sgd"
void pass_options_default(PassOptions *o);
int pass_recipe_known(const char *recipe);
/* Whether the recipe stores weights and GEMM/conv operands in LNS (lns-madam, lns-sgd). */
int pass_recipe_lns(const char *recipe);

/* The whole pipeline: infer, canon, autodiff, optimize, precision, fuse, plan (pipeline.c). */
int pass_pipeline(IrGraph *g, const PassOptions *o);

int pass_infer(IrGraph *g, const PassOptions *o);     /* infer.c */
int pass_canon(IrGraph *g, const PassOptions *o);     /* canon.c */
int pass_autodiff(IrGraph *g, const PassOptions *o);  /* autodiff.c (rules in grad.c) */
int pass_optimize(IrGraph *g, const PassOptions *o);  /* optimize.c */
int pass_precision(IrGraph *g, const PassOptions *o); /* precision.c */
/* Whether the override o can apply to v in g as the passes see it (precision.c): 0, or -1
 * with the reason in msg ("a weight updated by Madam needs an LNS format"). */
int pass_override_check(const IrGraph *g, const IrValue *v, const PassOverride *o, char *msg,
			size_t n);
int pass_fuse(IrGraph *g, const PassOptions *o);      /* fuse.c */
int pass_plan(IrGraph *g);                            /* plan.c */

/* ---- gradient rules (grad.c) ---- */
typedef struct PassGrad PassGrad;
/* Builds the gradients of n's inputs from dout (NULL where an output has no gradient).
 * need[i] says whether input i wants one; the rule stores it in din[i] (or leaves NULL).
 * Returns 0, or -1 after a diagnostic. */
typedef int (*PassGradFn)(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
			  IrValue **din);
extern const PassGradFn pass_grad_table[IR_OP_COUNT];
int pass_grad_check(IrCtx *c);

/* Builder helpers for rules (autodiff.c): every node they build is in the backward phase,
 * named after the forward node, with role GRAD outputs. */
IrValue *pass_grad_op(PassGrad *pg, IrOp op, int nin, IrValue *const *in, const IrAttrs *a);
IrValue *pass_grad_scale(PassGrad *pg, IrValue *x, float s); /* x * s (s != 1) or x */
IrValue *pass_grad_sum_to(PassGrad *pg, IrValue *x, const IrType *to); /* or x if same shape */
IrGraph *pass_grad_graph(PassGrad *pg);

#endif
