/* precision.c: gives each tensor its number format (LNS.md section 5), recipe then overrides.
 *
 * lns-madam: Madam weights are stored as lns12g128 (static scale, fixed at init) and read by
 * GEMMs through a WeightView node as lns8g8; activations entering a forward GEMM are lns8g8
 * with delayed scaling; the gradient at each GEMM output (dY, quantised once, read by both
 * backward GEMMs) and each Madam weight's gradient are lns5g2 with stochastic rounding.
 * lns-sgd has the same formats, its SGD-updated weights stored as Madam's are.
 * Everything else stays fp32. A value gets its format by retyping its producer's output (the
 * producer encodes); values without a producer (data inputs) get a Quantize node.
 * A parameter that an override gives Madam is stored as Madam's are under any recipe.
 * Per-tensor overrides (PassOptions.override: a --formats file, a Lua policy) come last and
 * win; pass_override_check is the one rule of what an override may set, which the Lua layer
 * also applies when a script sets a format, so a bad one is refused where it is given.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "passes/passes.h"

static const LnsFormat FMT_WEIGHT = {12, 7, LNS_SCALE_STATIC, LNS_ROUND_NEAREST, LNS_UF_MIN};
static const LnsFormat FMT_VIEW = {8, 3, LNS_SCALE_STATIC, LNS_ROUND_NEAREST, LNS_UF_MIN};
static const LnsFormat FMT_ACT = {8, 3, LNS_SCALE_DELAYED, LNS_ROUND_NEAREST, LNS_UF_ZERO};
static const LnsFormat FMT_GRAD = {5, 1, LNS_SCALE_DELAYED, LNS_ROUND_STOCHASTIC, LNS_UF_ZERO};

static int set_format(IrGraph *g, IrValue *v, LnsFormat f)
{
	const IrType *t = ir_type_with_format(g->ctx, v->type, f);
	if (!t)
		return -1;
	v->type = t;
	return 0;
}

static IrNode *updater(const IrGraph *g, const IrValue *p)
{
	for (int i = 0; i < g->nodes.n; i++) {
		IrNode *n = IR_NODE(g, i);
		if (ir_op_has(n->op, IR_OPF_UPDATE) && n->in[0] == p)
			return n;
	}
	return NULL;
}

/* Insert `op(v)` at the top of the graph and make every non-update reader use it. */
static IrValue *insert_front(IrGraph *g, IrValue *v, IrOp op, const char *what, LnsFormat f)
{
	char name[512];
	snprintf(name, sizeof name, "%s/%s", what, v->name);
	IrNode *n = ir_build(g, op, ir_unique_name(g, name), 1, &v, NULL, NULL);
	if (!n)
		return NULL;
	n->phase = IR_PHASE_FWD;
	ir_move_last_node(g, 0);
	IrValue *out = n->out[0];
	for (int i = 1; i < g->nodes.n; i++) {
		IrNode *m = IR_NODE(g, i);
		if (ir_op_has(m->op, IR_OPF_UPDATE))
			continue;
		for (int j = 0; j < m->nin; j++)
			if (m->in[j] == v) {
				m->in[j] = out;
				v->nuses--;
				out->nuses++;
			}
	}
	return set_format(g, out, f) ? NULL : out;
}

/* 1 if an override makes p fp32, 0 if not, -1 on a bad override. */
static int f32_override(IrGraph *g, const PassOptions *o, const IrValue *p)
{
	PassOverride ov = {0};
	if (!o->override)
		return 0;
	if (o->override(o->override_user, g, p, &ov))
		return -1;
	return ov.kind == PASS_FMT_F32;
}

/* Weights updated on their LNS storage: Madam's, and lns-sgd's SGD on rank >= 2 weights
 * (unless an override keeps the weight in fp32: then it has no view either). */
static int lns_weights(IrGraph *g, const PassOptions *o)
{
	for (int i = 0; i < g->params.n; i++) {
		IrValue *p = g->params.v[i];
		IrNode *u = updater(g, p);
		int sgd = u && u->op == IR_OP_SGD && p->type->rank >= 2 &&
			  !strcmp(o->recipe, "lns-sgd");
		if (!u || (u->op != IR_OP_MADAM && !sgd))
			continue;
		int f32 = f32_override(g, o, p);
		if (f32 < 0)
			return -1;
		if (f32)
			continue; /* SGD on an fp32 weight; Madam refuses it below */
		if (set_format(g, p, FMT_WEIGHT) || !insert_front(g, p, IR_OP_WEIGHT_VIEW, "view", FMT_VIEW))
			return -1;
		if (set_format(g, p->grad, FMT_GRAD))
			return -1;
	}
	return 0;
}

static int is_output(const IrGraph *g, const IrValue *v)
{
	for (int i = 0; i < g->outputs.n; i++)
		if (g->outputs.v[i] == v)
			return 1;
	return v->is_output;
}

/* The value whose producer should encode a GEMM operand v: v, or, walking back through
 * one-input ops exact on codes (Relu, MaxPool, Flatten, ...), the earliest f32 input whose
 * producer is neither a GEMM (whose Relu epilogue wants an f32 output) nor absent. Those ops
 * then run on codes with the same result (LNS.md 4) and move a quarter of the bytes: in a CNN,
 * BatchNormalization encodes and Relu and MaxPool work on its codes. */
static IrValue *encode_point(const IrGraph *g, IrValue *v)
{
	for (;;) {
		const IrNode *d = v->def;
		if (!d || d->nin != 1 || d->nout != 1 ||
		    !ir_op_has(d->op, IR_OPF_CODE_EXACT | IR_OPF_MOVE))
			return v;
		IrValue *u = d->in[0];
		if (u->type->dt != IR_DT_F32 || !u->def || ir_op_has(u->def->op, IR_OPF_GEMM) ||
		    ir_op_has(u->def->op, IR_OPF_RAW) || is_output(g, u) ||
		    u->role != IR_ROLE_ACT)
			return v;
		v = u;
	}
}

/* Gives f to v and to every value on the chain of one-input ops from `from` up to v. */
static int set_chain(IrGraph *g, IrValue *v, IrValue *from, LnsFormat f)
{
	for (IrValue *u = v;; u = u->def->in[0]) {
		if (set_format(g, u, f))
			return -1;
		if (u == from)
			return 0;
	}
}

static int gemm_operands(IrGraph *g)
{
	for (int i = 0; i < g->nodes.n; i++) {
		IrNode *n = IR_NODE(g, i);
		if (n->phase != IR_PHASE_FWD || !ir_op_has(n->op, IR_OPF_GEMM))
			continue;
		for (int j = 0; j < 2; j++) {
			IrValue *v = n->in[j];
			if (v->type->dt == IR_DT_LNS || v->role == IR_ROLE_CONST ||
			    v->role == IR_ROLE_PARAM)
				continue;
			if (v->type->dt != IR_DT_F32)
				continue;
			if (!v->def) {
				if (!insert_front(g, v, IR_OP_QUANTIZE, "quant", FMT_ACT))
					return -1;
				i++; /* the node list grew by one in front of n */
			} else if (set_chain(g, v, encode_point(g, v), FMT_ACT))
				return -1;
		}
		IrValue *dy = n->out[0]->grad;
		if (dy && dy->def && dy->type->dt == IR_DT_F32 && set_format(g, dy, FMT_GRAD))
			return -1;
	}
	return 0;
}

static int fail(char *msg, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *msg, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, n, fmt, ap);
	va_end(ap);
	return -1;
}

/* Why the format of a value of this role cannot be set ("" when it can). */
static const char *fixed_role(const IrValue *v)
{
	switch (v->role) {
	case IR_ROLE_PARAM:
	case IR_ROLE_ACT:
	case IR_ROLE_GRAD:
	case IR_ROLE_PGRAD: return "";
	case IR_ROLE_INPUT: return "data is fed to each step as fp32";
	case IR_ROLE_LABEL: return "labels are class indices";
	case IR_ROLE_CONST: return "constants keep their ONNX type";
	case IR_ROLE_STATE:
		return v->param ? "optimizer state is fp32" : "running statistics are fp32";
	case IR_ROLE_LOSS: return "the loss is fp32";
	default: return "its role has no format";
	}
}

static int check_update(const IrGraph *g, const IrValue *v, const PassOverride *o, char *msg,
			size_t n)
{
	(void)g;
	if (v->role != IR_ROLE_PARAM)
		return fail(msg, n, "'%s' (%s) is not a parameter: it has no optimizer", v->name,
			    ir_role_name(v->role));
	if (!v->grad)
		return fail(msg, n, "parameter '%s' is not trained (the loss does not depend on it)",
			    v->name);
	if (o->update == PASS_UPD_MADAM && v->type->rank < 2)
		return fail(msg, n, "Madam updates weights of rank 2 or more (GEMM and conv "
			    "weights); '%s' has rank %d", v->name, v->type->rank);
	if (o->update == PASS_UPD_MADAM && o->kind == PASS_FMT_F32)
		return fail(msg, n, "'%s': Madam updates LNS codes, so it needs an LNS format, not "
			    "fp32", v->name);
	return 0;
}

int pass_override_check(const IrGraph *g, const IrValue *v, const PassOverride *o, char *msg,
			size_t n)
{
	if (o->update != PASS_UPD_RECIPE && check_update(g, v, o, msg, n))
		return -1;
	if (o->kind == PASS_FMT_RECIPE)
		return 0;
	int lns = o->kind == PASS_FMT_LNS;
	const char *why = fixed_role(v);
	if (lns && !lns_format_valid(o->fmt))
		return fail(msg, n, "'%s': not a valid LNS format (bits 2 to %d, gamma a power of "
			    "two from 1 to %d)", v->name, LNS_MAX_BITS, 1 << LNS_MAX_LOG2G);
	if (why[0])
		return fail(msg, n, "the format of '%s' (%s) cannot be set: %s", v->name,
			    ir_role_name(v->role), why);
	if (v->type->dt != IR_DT_F32 && v->type->dt != IR_DT_LNS)
		return fail(msg, n, "'%s' holds %s values: a number format does not apply", v->name,
			    ir_dtype_name(v->type->dt));
	const IrNode *d = v->def;
	if (d && d->op == IR_OP_WEIGHT_VIEW && (!lns || o->fmt.scale != LNS_SCALE_STATIC))
		return fail(msg, n, "'%s' is weight '%s' as the GEMMs read it: an LNS format with a "
			    "static scale (derived from the weight's)", v->name, d->in[0]->name);
	if (d && ir_op_has(d->op, IR_OPF_RAW) && d->op != IR_OP_WEIGHT_VIEW)
		return fail(msg, n, "'%s' is written by %s, which fixes its format", v->name,
			    ir_op_name(d->op));
	if (v->role != IR_ROLE_PARAM)
		return 0;
	if (lns && o->fmt.scale != LNS_SCALE_STATIC)
		return fail(msg, n, "'%s': a parameter's scale is static (fixed when it is first "
			    "encoded), not %s", v->name,
			    o->fmt.scale == LNS_SCALE_DELAYED ? "delayed" : "current");
	const IrNode *u = updater(g, v);
	int madam = o->update == PASS_UPD_MADAM || (o->update == PASS_UPD_RECIPE && u &&
						    u->op == IR_OP_MADAM);
	if (!lns && madam)
		return fail(msg, n, "'%s' is updated by Madam, which needs an LNS format (give it "
			    "another optimizer to keep it in fp32)", v->name);
	return 0;
}

/* The overrides, last: they win over the recipe. */
static int apply_overrides(IrGraph *g, const PassOptions *o)
{
	char msg[512];
	for (int i = 0; i < g->values.n; i++) {
		IrValue *v = IR_VALUE(g, i);
		PassOverride ov = {0};
		if (o->override(o->override_user, g, v, &ov))
			return -1;
		if (ov.kind == PASS_FMT_RECIPE)
			continue;
		if (pass_override_check(g, v, &ov, msg, sizeof msg)) {
			ir_error(g->ctx, IR_ERR_INPUT, "%s", msg);
			return -1;
		}
		if (ov.kind == PASS_FMT_F32) {
			v->type = ir_type_f32_like(g->ctx, v->type);
			continue;
		}
		if (set_format(g, v, ov.fmt))
			return -1;
	}
	return 0;
}

int pass_precision(IrGraph *g, const PassOptions *o)
{
	if (o->train && lns_weights(g, o))
		return -1;
	if (pass_recipe_lns(o->recipe) && gemm_operands(g))
		return -1;
	if (o->override && apply_overrides(g, o))
		return -1;
	return 0;
}
