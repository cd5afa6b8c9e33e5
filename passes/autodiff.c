/* autodiff.c: appends the loss to the first graph output and builds the backward graph.
 *
 * Reverse mode over the forward nodes: a value needs a gradient when a parameter reaches it.
 * Rules (grad.c) build backward nodes; contributions to one value are summed with Add.
 * Every op on a gradient path without a rule is reported in one error naming all such
 * nodes. The loss's own gradient is a fused op (softmax cross-entropy or MSE gradient), so
 * the seed dL/dL = 1 never materialises. Final parameter gradients get role PGRAD.
 */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

struct PassGrad {
	IrGraph *g;
	IrNode *fwd; /* the forward node whose rule is running */
};

IrGraph *pass_grad_graph(PassGrad *pg)
{
	return pg->g;
}

IrValue *pass_grad_op(PassGrad *pg, IrOp op, int nin, IrValue *const *in, const IrAttrs *a)
{
	char name[512];
	snprintf(name, sizeof name, "%s/grad", pg->fwd ? pg->fwd->name : "loss");
	IrNode *n = ir_build(pg->g, op, name, nin, in, a, NULL);
	if (!n)
		return NULL;
	n->phase = IR_PHASE_BWD;
	for (int i = 0; i < n->nout; i++)
		n->out[i]->role = IR_ROLE_GRAD;
	return n->out[0];
}

IrValue *pass_grad_scale(PassGrad *pg, IrValue *x, float s)
{
	if (!x || s == 1.0f)
		return x;
	char name[512];
	snprintf(name, sizeof name, "%s/scale", pg->fwd ? pg->fwd->name : "loss");
	IrValue *c = ir_value_new(pg->g, ir_unique_name(pg->g, name),
				  ir_type(pg->g->ctx, IR_DT_F32, 0, NULL), IR_ROLE_CONST, &s, NULL);
	IrValue *in[2] = {x, c};
	return pass_grad_op(pg, IR_OP_MUL, 2, in, NULL);
}

IrValue *pass_grad_sum_to(PassGrad *pg, IrValue *x, const IrType *to)
{
	if (!x || ir_type_same_shape(x->type, to))
		return x;
	IrAttrs at = {.shape = {.rank = to->rank}};
	memcpy(at.shape.dims, to->dims, sizeof at.shape.dims);
	return pass_grad_op(pg, IR_OP_SUM_TO, 1, &x, &at);
}

/* needs[v] = 1 when a parameter reaches value v (forward order). */
static char *compute_needs(IrGraph *g)
{
	char *needs = calloc((size_t)g->values.n + 1, 1);
	if (!needs)
		abort();
	for (int i = 0; i < g->params.n; i++)
		needs[((IrValue *)g->params.v[i])->id] = 1;
	for (int i = 0; i < g->nodes.n; i++) {
		IrNode *n = IR_NODE(g, i);
		int any = 0;
		if (ir_op_has(n->op, IR_OPF_NOGRAD))
			continue;
		for (int j = 0; j < n->nin; j++)
			any |= needs[n->in[j]->id];
		if (n->op == IR_OP_CAST && !ir_dtype_is_float(n->attr.cast.to))
			any = 0;
		for (int j = 0; j < n->nout; j++)
			needs[n->out[j]->id] = (char)any;
	}
	return needs;
}

static int check_rules(IrGraph *g, const char *needs)
{
	char list[4096] = "";
	size_t len = 0;
	int count = 0;
	for (int i = 0; i < g->nodes.n; i++) {
		IrNode *n = IR_NODE(g, i);
		if (!n->nout || !needs[n->out[0]->id] || pass_grad_table[n->op])
			continue;
		if (len < sizeof list - 256)
			len += (size_t)snprintf(list + len, sizeof list - len, "%snode '%s' (%s)",
						count ? ", " : "", n->name, ir_op_name(n->op));
		count++;
	}
	if (!count)
		return 0;
	ir_error(g->ctx, IR_ERR_UNSUPPORTED, "%s: %d op%s without a gradient rule: %s",
		 g->source ? g->source : g->name, count, count > 1 ? "s" : "", list);
	return -1;
}

static IrValue *accumulate(PassGrad *pg, IrValue *old, IrValue *add)
{
	if (!old)
		return add;
	if (!add)
		return old;
	IrValue *in[2] = {old, add};
	return pass_grad_op(pg, IR_OP_ADD, 2, in, NULL);
}

static IrValue *build_loss(IrGraph *g, const PassOptions *o, IrValue *out, PassGrad *pg)
{
	IrCtx *c = g->ctx;
	const IrType *lt;
	if (o->loss == PASS_LOSS_XENT) {
		if (out->type->rank != 2) {
			ir_error(c, IR_ERR_INPUT,
				 "%s: softmax cross-entropy needs a [N, C] output, '%s' has rank %d",
				 g->source ? g->source : g->name, out->name, out->type->rank);
			return NULL;
		}
		lt = ir_type(c, IR_DT_I64, 1, out->type->dims);
	} else {
		lt = ir_type_f32_like(c, out->type);
	}
	IrValue *labels = g->labels;
	if (!labels)
		labels = ir_value_new(g, ir_unique_name(g, "labels"), lt, IR_ROLE_LABEL, NULL, NULL);
	else if (labels->type != lt) {
		char a[128], b[128];
		ir_error(c, IR_ERR_INPUT, "labels are %s, the loss needs %s",
			 ir_type_str(labels->type, 0, a, sizeof a), ir_type_str(lt, 0, b, sizeof b));
		return NULL;
	}
	if (!labels)
		return NULL;
	IrValue *in[2] = {out, labels};
	IrOp lop = o->loss == PASS_LOSS_XENT ? IR_OP_XENT : IR_OP_MSE;
	IrNode *ln = ir_build(g, lop, "loss", 2, in, NULL, (const char *[]){"loss"});
	if (!ln)
		return NULL;
	ln->phase = IR_PHASE_LOSS;
	ln->out[0]->role = IR_ROLE_LOSS;
	g->loss = ln->out[0];
	pg->fwd = NULL;
	return pass_grad_op(pg, lop == IR_OP_XENT ? IR_OP_XENT_GRAD : IR_OP_MSE_GRAD, 2, in, NULL);
}

static int backward(IrGraph *g, PassGrad *pg, const char *needs, int nfwd)
{
	for (int i = nfwd - 1; i >= 0; i--) {
		IrNode *n = IR_NODE(g, i);
		IrValue *dout[8] = {0}, *din[IR_MAX_IN] = {0};
		int need[IR_MAX_IN] = {0}, any = 0;
		for (int j = 0; j < n->nout; j++)
			any |= (dout[j] = n->out[j]->grad) != NULL;
		if (!any || ir_op_has(n->op, IR_OPF_NOGRAD))
			continue;
		for (int j = 0; j < n->nin; j++)
			need[j] = needs[n->in[j]->id];
		pg->fwd = n;
		int nerr = ir_error_count(g->ctx);
		if (pass_grad_table[n->op](pg, n, dout, need, din) || ir_error_count(g->ctx) > nerr)
			return -1;
		for (int j = 0; j < n->nin; j++)
			if (need[j] && din[j])
				n->in[j]->grad = accumulate(pg, n->in[j]->grad, din[j]);
		if (ir_error_count(g->ctx) > nerr)
			return -1;
	}
	return 0;
}

static int shared(IrGraph *g, const IrValue *p, const IrValue *gr)
{
	for (int i = 0; i < g->values.n; i++)
		if (IR_VALUE(g, i) != p && IR_VALUE(g, i)->grad == gr)
			return 1;
	return 0;
}

int pass_autodiff(IrGraph *g, const PassOptions *o)
{
	if (!o->train)
		return 0;
	if (!g->outputs.n) {
		ir_error(g->ctx, IR_ERR_INPUT, "%s: the graph has no output to train",
			 g->source ? g->source : g->name);
		return -1;
	}
	int nfwd = g->nodes.n;
	char *needs = compute_needs(g);
	int rc = check_rules(g, needs);
	PassGrad pg = {.g = g};
	IrValue *out = g->outputs.v[0];
	IrValue *seed = rc ? NULL : build_loss(g, o, out, &pg);
	if (!seed)
		rc = -1;
	if (!rc && needs[out->id]) {
		out->grad = seed;
		rc = backward(g, &pg, needs, nfwd);
	}
	for (int i = 0; !rc && i < g->params.n; i++) {
		IrValue *p = g->params.v[i], *gr = p->grad;
		if (!gr)
			continue;
		if (gr->def == NULL || gr->role == IR_ROLE_PGRAD || gr->param || shared(g, p, gr)) {
			/* the gradient is also another value's (Identity, or a bias whose gradient
			 * is dY itself): give the parameter gradient a node of its own, so that
			 * its format can differ from the activation gradient's */
			IrAttrs at = {.shape = {.rank = p->type->rank}};
			memcpy(at.shape.dims, p->type->dims, sizeof at.shape.dims);
			pg.fwd = NULL;
			gr = pass_grad_op(&pg, IR_OP_RESHAPE, 1, &gr, &at);
			if (!gr) {
				rc = -1;
				break;
			}
			p->grad = gr;
		}
		gr->role = IR_ROLE_PGRAD;
		gr->param = p;
	}
	free(needs);
	return rc;
}
