/* optimize.c: one update op per parameter, per the recipe: Madam, SGD with momentum, Adam.
 *
 * lns-madam: parameters of rank >= 2 (GEMM/conv weights) get Madam on their LNS codes; the
 * rest (biases, norm scales) get Adam in fp32 (LNS.md section 5). lns-sgd: every parameter gets
 * SGD with momentum as in fp32; the rank >= 2 ones are stored in LNS (precision.c), so their
 * update decodes, steps and re-encodes (round to nearest): the baseline Madam is measured
 * against. fp32: every parameter gets the --optimizer (SGD with momentum by default). Update nodes take (param, grad, state...)
 * and mutate the parameter in place; the plan runs them after every reader. A per-tensor
 * override (PassOptions.override) may name another optimizer for a parameter; it gets that
 * optimizer's defaults (Madam's lr 2^-7 or --lr, SGD's 0.02 or --lr, Adam's 1e-3).
 */
#include <string.h>

#include "passes/passes.h"

static IrValue *state_for(IrGraph *g, IrValue *p, const char *what)
{
	char name[512];
	snprintf(name, sizeof name, "%s/%s", what, p->name);
	IrValue *s = ir_value_new(g, ir_unique_name(g, name), ir_type_f32_like(g->ctx, p->type),
				  IR_ROLE_STATE, NULL, NULL);
	if (s)
		s->param = p;
	return s;
}

static int add_update(IrGraph *g, IrValue *p, IrOp op, const IrAttrOpt *opt)
{
	IrValue *in[4] = {p, p->grad};
	int nin = 2;
	switch (op) {
	case IR_OP_MADAM: in[nin++] = state_for(g, p, "madam.v"); break;
	case IR_OP_SGD: in[nin++] = state_for(g, p, "sgd.momentum"); break;
	case IR_OP_ADAM:
		in[nin++] = state_for(g, p, "adam.m");
		in[nin++] = state_for(g, p, "adam.v");
		break;
	default: return -1;
	}
	for (int i = 2; i < nin; i++)
		if (!in[i])
			return -1;
	char name[512];
	snprintf(name, sizeof name, "update/%s", p->name);
	IrAttrs at = {.opt = *opt};
	IrNode *n = ir_build(g, op, name, nin, in, &at, NULL);
	if (!n)
		return -1;
	n->phase = IR_PHASE_UPDATE;
	return 0;
}

static IrAttrOpt madam_attrs(const PassOptions *o)
{
	LnsMadamParams m = lns_madam_defaults();
	return (IrAttrOpt){.lr = o->lr > 0 ? o->lr : m.lr, .beta2 = m.beta2,
			   .p_scale = m.p_scale, .g_bound = m.g_bound};
}

static IrAttrOpt adam_attrs(float lr)
{
	return (IrAttrOpt){.lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
}

static IrAttrOpt sgd_attrs(const PassOptions *o)
{
	return (IrAttrOpt){.lr = o->lr > 0 ? o->lr : 0.02f, .momentum = o->momentum};
}

/* The optimizer an override names for p (IR_OP_COUNT: the recipe's); -1 on a bad override. */
static int override_op(IrGraph *g, const PassOptions *o, IrValue *p, IrOp *op)
{
	PassOverride ov = {0};
	char msg[256];
	*op = IR_OP_COUNT;
	if (!o->override || o->override(o->override_user, g, p, &ov))
		return o->override ? -1 : 0;
	if (ov.update == PASS_UPD_RECIPE)
		return 0;
	if (pass_override_check(g, p, &ov, msg, sizeof msg)) {
		ir_error(g->ctx, IR_ERR_INPUT, "%s", msg);
		return -1;
	}
	*op = ov.update == PASS_UPD_MADAM ? IR_OP_MADAM
	      : ov.update == PASS_UPD_SGD ? IR_OP_SGD : IR_OP_ADAM;
	return 0;
}

int pass_optimize(IrGraph *g, const PassOptions *o)
{
	if (!o->train)
		return 0;
	int lns = !strcmp(o->recipe, "lns-madam");
	for (int i = 0; i < g->params.n; i++) {
		IrValue *p = g->params.v[i];
		IrAttrOpt a;
		IrOp op;
		if (!p->grad)
			continue; /* not reached by the loss: stays as it is */
		if (override_op(g, o, p, &op))
			return -1;
		if (op == IR_OP_MADAM) {
			a = madam_attrs(o);
		} else if (op == IR_OP_SGD) {
			a = sgd_attrs(o);
		} else if (op == IR_OP_ADAM) {
			a = adam_attrs(o->lr_1d);
		} else if (lns && p->type->rank >= 2) {
			op = IR_OP_MADAM;
			a = madam_attrs(o);
		} else if (lns) {
			op = IR_OP_ADAM;
			a = adam_attrs(o->lr_1d);
		} else if (!strcmp(o->recipe, "lns-sgd")) {
			op = IR_OP_SGD;
			a = sgd_attrs(o);
		} else if (o->optimizer == PASS_OPT_ADAM) {
			op = IR_OP_ADAM;
			a = adam_attrs(o->lr > 0 ? o->lr : 1e-3f);
		} else {
			op = IR_OP_SGD;
			a = sgd_attrs(o);
		}
		if (add_update(g, p, op, &a))
			return -1;
	}
	return 0;
}
