/* fuse.c: marks the fusions backends may perform: a Relu in its GEMM's epilogue, and the Madam
 * update in the epilogue of the GEMM that computes the weight's gradient.
 *
 * The pass only sets marks (IrNode.epilogue on the producer, IrNode.fused on the consumer) and
 * reorders nodes within a valid topological order; the interpreter ignores the marks, so its
 * results never change. (a) A Gemm/MatMul whose f32 output is read only by a Relu of the same
 * phase and is not a graph output: its kernel applies the Relu and writes the Relu's output in
 * that value's format. The Relu moves right after the GEMM, so that the plan gives the Relu's
 * output a place that nothing live between the two occupies. (b) A backward Gemm/MatMul whose
 * output is the LNS gradient of a Madam-updated weight, read only by that Madam node: its kernel
 * quantises each gradient tile, decodes it and updates the weight codes and second moment, so
 * the gradient never reaches memory. The update then happens where the GEMM runs instead of
 * after every node, which is only the same computation if nothing scheduled after the GEMM
 * reads the weight or one of its views: the GEMM moves after the last such reader (in an MLP,
 * the same layer's input-gradient GEMM). That is always a valid order, since only the Madam
 * node reads the GEMM's output, and ir_toposort (pass_plan) keeps it: it leaves a sorted graph
 * as it is except for moving UPDATE nodes, which are last already.
 */
#include <string.h>

#include "passes/passes.h"

static int is_graph_output(const IrGraph *g, const IrValue *v)
{
	if (v->is_output || v == g->loss || v->role == IR_ROLE_LOSS)
		return 1;
	for (int i = 0; i < g->outputs.n; i++)
		if (g->outputs.v[i] == v)
			return 1;
	return 0;
}

static int index_of(const IrGraph *g, const IrNode *n)
{
	for (int i = 0; i < g->nodes.n; i++)
		if (IR_NODE(g, i) == n)
			return i;
	return -1;
}

static int reads(const IrNode *n, const IrValue *v)
{
	for (int j = 0; j < n->nin; j++)
		if (n->in[j] == v)
			return 1;
	return 0;
}

/* The one node reading v (v read by no other node and not a graph output), or NULL. */
static IrNode *only_reader(const IrGraph *g, const IrValue *v)
{
	IrNode *r = NULL;
	if (is_graph_output(g, v))
		return NULL;
	for (int i = 0; i < g->nodes.n; i++) {
		IrNode *n = IR_NODE(g, i);
		if (!reads(n, v))
			continue;
		if (r)
			return NULL;
		r = n;
	}
	return r;
}

/* Moves the node at index from to index to; the nodes in between shift by one. */
static void move_node(IrGraph *g, int from, int to)
{
	void *n = g->nodes.v[from];
	if (from < to)
		memmove(&g->nodes.v[from], &g->nodes.v[from + 1], (size_t)(to - from) * sizeof(void *));
	else if (from > to)
		memmove(&g->nodes.v[to + 1], &g->nodes.v[to], (size_t)(from - to) * sizeof(void *));
	g->nodes.v[to] = n;
}

/* (a) GEMM at index i followed (anywhere later) by its only reader, a Relu. */
static int fuse_relu(IrGraph *g, int i)
{
	IrNode *n = IR_NODE(g, i);
	IrValue *y = n->out[0];
	IrNode *r = only_reader(g, y);
	if (!r || r->op != IR_OP_RELU || r->phase != n->phase || r->fused || r->epilogue ||
	    y->type->dt != IR_DT_F32)
		return 0;
	move_node(g, index_of(g, r), i + 1);
	n->epilogue = r;
	r->fused = 1;
	return 1;
}

/* Index of the last node other than skip that reads w or a WeightView of w; -1 if none. */
static int last_weight_reader(const IrGraph *g, const IrValue *w, const IrNode *skip)
{
	int last = -1;
	for (int i = 0; i < g->nodes.n; i++) {
		const IrNode *n = IR_NODE(g, i);
		if (n == skip)
			continue;
		int hit = reads(n, w);
		for (int j = 0; j < n->nin && !hit; j++) {
			const IrNode *d = n->in[j]->def;
			hit = d && d->op == IR_OP_WEIGHT_VIEW && d->in[0] == w;
		}
		if (hit)
			last = i;
	}
	return last;
}

/* (b) Backward GEMM at index i whose output is a Madam weight's LNS gradient. Returns the
 * index the GEMM ends up at (i if it did not move), or -1 if it is not fused. */
static int fuse_madam(IrGraph *g, int i)
{
	IrNode *n = IR_NODE(g, i);
	IrValue *dw = n->out[0];
	IrNode *u = only_reader(g, dw);
	if (!u || u->op != IR_OP_MADAM || u->in[1] != dw || u->fused || n->phase != IR_PHASE_BWD ||
	    u->phase != IR_PHASE_UPDATE || dw->role != IR_ROLE_PGRAD || dw->type->dt != IR_DT_LNS)
		return -1;
	IrValue *w = u->in[0], *v = u->in[2];
	if (w == dw || v == dw || w->type->dt != IR_DT_LNS || v->type->dt != IR_DT_F32 ||
	    w->type->numel != dw->type->numel || v->type->numel != dw->type->numel || reads(n, w) ||
	    reads(n, v))
		return -1;
	int last = last_weight_reader(g, w, u), at = i;
	if (last > i) {
		if (index_of(g, u) < last)
			return -1; /* the update would have to move too: leave it alone */
		move_node(g, i, last);
		at = last;
	}
	n->epilogue = u;
	u->fused = 1;
	return at;
}

int pass_fuse(IrGraph *g, const PassOptions *o)
{
	(void)o;
	for (int i = 0; i < g->nodes.n; i++) {
		IrNode *n = IR_NODE(g, i);
		n->epilogue = NULL;
		n->fused = 0;
	}
	for (int i = 0; i < g->nodes.n; i++) {
		IrNode *n = IR_NODE(g, i);
		if (!ir_op_has(n->op, IR_OPF_GEMM) || n->epilogue || n->nout != 1)
			continue;
		if (fuse_relu(g, i))
			continue;
		int at = fuse_madam(g, i);
		if (at > i)
			i--; /* the node now at i has not been looked at yet */
	}
	return 0;
}
