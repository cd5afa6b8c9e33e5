/* precision.c: gives each tensor its number format (LNS.md section 5), recipe then overrides.
 *
 * lns-madam: Madam weights are stored as lns12g128 (static scale, fixed at init) and read by
 * GEMMs through a WeightView node as lns8g8; activations entering a forward GEMM are lns8g8
 * with delayed scaling; the gradient at each GEMM output (dY, quantised once, read by both
 * backward GEMMs) and each Madam weight's gradient are lns5g2 with stochastic rounding.
 * lns-sgd has the same formats, its SGD-updated weights stored as Madam's are.
 * Everything else stays fp32. A value gets its format by retyping its producer's output (the
 * producer encodes); values without a producer (data inputs) get a Quantize node.
 * Overrides come last and win: lines "<tensor> <format>" in a file, '#' comments, where the
 * format is fp32 or an LNS format string (lns_format_parse).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
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

static IrNode *updater(IrGraph *g, const IrValue *p)
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

/* Weights updated on their LNS storage: Madam's, and lns-sgd's SGD on rank >= 2 weights. */
static int lns_weights(IrGraph *g, const char *recipe)
{
	for (int i = 0; i < g->params.n; i++) {
		IrValue *p = g->params.v[i];
		IrNode *u = updater(g, p);
		int sgd = u && u->op == IR_OP_SGD && p->type->rank >= 2 && !strcmp(recipe, "lns-sgd");
		if (!u || (u->op != IR_OP_MADAM && !sgd))
			continue;
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

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

static int apply_override(IrGraph *g, const char *path, int line, const char *name,
			  const char *fmt)
{
	IrValue *v = ir_graph_value(g, name);
	LnsFormat f;
	if (!v) {
		ir_error(g->ctx, IR_ERR_INPUT, "%s:%d: no tensor named '%s'", path, line, name);
		return -1;
	}
	if (v->role == IR_ROLE_INPUT || v->role == IR_ROLE_LABEL || v->role == IR_ROLE_CONST ||
	    v->role == IR_ROLE_STATE || ir_op_has(v->def ? v->def->op : IR_OP_GEMM, IR_OPF_RAW)) {
		ir_error(g->ctx, IR_ERR_INPUT, "%s:%d: the format of '%s' (%s) cannot be set", path,
			 line, name, ir_role_name(v->role));
		return -1;
	}
	IrNode *u = v->role == IR_ROLE_PARAM ? updater(g, v) : NULL;
	if (!strcmp(fmt, "fp32") || !strcmp(fmt, "f32")) {
		if (u && u->op == IR_OP_MADAM) {
			ir_error(g->ctx, IR_ERR_INPUT, "%s:%d: '%s' is updated by Madam, which needs "
				 "an LNS format", path, line, name);
			return -1;
		}
		v->type = ir_type_f32_like(g->ctx, v->type);
		return 0;
	}
	if (lns_format_parse(fmt, &f)) {
		ir_error(g->ctx, IR_ERR_INPUT, "%s:%d: '%s' is not a format (fp32, or like lns8g8, "
			 "lns5g2:sr)", path, line, fmt);
		return -1;
	}
	if (v->role == IR_ROLE_PARAM)
		f.scale = LNS_SCALE_STATIC;
	return set_format(g, v, f);
}

static int read_overrides(IrGraph *g, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		ir_error(g->ctx, IR_ERR_INPUT, "%s: %s", path, strerror(errno));
		return -1;
	}
	char buf[1024];
	int line = 0, rc = 0;
	while (fgets(buf, sizeof buf, f)) {
		line++;
		char *hash = strchr(buf, '#');
		if (hash)
			*hash = 0;
		char *s = trim(buf);
		if (!*s)
			continue;
		char *sp = s;
		while (*sp && !isspace((unsigned char)*sp))
			sp++;
		if (!*sp) {
			ir_error(g->ctx, IR_ERR_INPUT, "%s:%d: expected '<tensor> <format>'", path,
				 line);
			rc = -1;
			continue;
		}
		*sp = 0;
		if (apply_override(g, path, line, s, trim(sp + 1)))
			rc = -1;
	}
	fclose(f);
	return rc;
}

int pass_precision(IrGraph *g, const PassOptions *o)
{
	if (pass_recipe_lns(o->recipe)) {
		if (o->train && lns_weights(g, o->recipe))
			return -1;
		if (gemm_operands(g))
			return -1;
	}
	if (o->formats_path && read_overrides(g, o->formats_path))
		return -1;
	return 0;
}
