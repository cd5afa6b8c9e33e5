/* canon.c: canonical form before differentiation: constant folding, Identity removal, dead
 * code, BatchNormalization in training form.
 *
 * A node whose inputs are all constants is evaluated once by the reference interpreter and
 * replaced by a constant value (a PyTorch export often computes shapes this way). Identity
 * nodes disappear unless they produce a graph output. Dropout is already in training form
 * (it always has its mask output). When the graph is built for training, a
 * BatchNormalization's running mean and variance become state values that the train step
 * updates (see bn_training_form). Nodes nothing reads are removed.
 */
#include <string.h>

#include "passes/passes.h"

static void drop_identity(IrGraph *g, int idx)
{
	IrNode *n = IR_NODE(g, idx);
	ir_replace_uses(g, n->out[0], n->in[0], idx + 1);
}

static void drop_param(IrGraph *g, const IrValue *v)
{
	int k = 0;
	for (int i = 0; i < g->params.n; i++)
		if (g->params.v[i] != v)
			g->params.v[k++] = g->params.v[i];
	g->params.n = k;
}

/* Node inputs reading v (folding leaves nuses of constants stale, so count). */
static int readers(const IrGraph *g, const IrValue *v)
{
	int k = 0;
	for (int i = 0; i < g->nodes.n; i++)
		for (int j = 0; j < IR_NODE(g, i)->nin; j++)
			k += IR_NODE(g, i)->in[j] == v;
	return k;
}

/* One running statistic (input 3 or 4 of n) as a state value of no parameter, keeping its
 * initial data. It must be an initializer that only this node reads: the train step
 * overwrites it, which no other reader of the ONNX tensor would expect. */
static int running_to_state(IrGraph *g, IrNode *n, IrValue *s, const char *what)
{
	if ((s->role != IR_ROLE_PARAM && s->role != IR_ROLE_CONST) || !s->init) {
		ir_node_error(g, n, IR_ERR_UNSUPPORTED, "the running %s '%s' is not an initializer "
			      "(lnsc keeps running statistics in the model state)", what, s->name);
		return -1;
	}
	if (readers(g, s) != 1) {
		ir_node_error(g, n, IR_ERR_UNSUPPORTED, "the running %s '%s' is also read by other "
			      "nodes; training overwrites it", what, s->name);
		return -1;
	}
	if (s->role == IR_ROLE_PARAM)
		drop_param(g, s);
	s->role = IR_ROLE_STATE;
	s->param = NULL;
	return 0;
}

/* BatchNormalization in training form (DESIGN.md): the running mean and variance become
 * state values (out of g->params, so autodiff and the optimizer leave them alone), and two
 * Assign nodes in the update phase, which runs after every reader, write the node's
 * running_mean' and running_var' outputs into them at the end of each train step. */
static int bn_training_form(IrGraph *g, IrNode *n)
{
	static const char *const what[2] = {"mean", "var"};
	for (int i = 0; i < 2; i++) {
		IrValue *s = n->in[3 + i], *in[2] = {s, n->out[1 + i]};
		if (running_to_state(g, n, s, what[i]))
			return -1;
		char name[512];
		snprintf(name, sizeof name, "%s/assign_running_%s", n->name, what[i]);
		IrNode *a = ir_build(g, IR_OP_ASSIGN, name, 2, in, NULL, NULL);
		if (!a)
			return -1;
		a->phase = IR_PHASE_UPDATE;
	}
	return 0;
}

int pass_canon(IrGraph *g, const PassOptions *o)
{
	for (int i = 0; i < g->nodes.n;) {
		IrNode *n = IR_NODE(g, i);
		if (ir_interp_can_fold(n)) {
			if (ir_interp_fold_node(g, i))
				return -1;
			continue;
		}
		if (n->op == IR_OP_IDENTITY && !n->out[0]->is_output &&
		    n->in[0]->type == n->out[0]->type)
			drop_identity(g, i);
		if (o->train && n->op == IR_OP_BATCH_NORM && bn_training_form(g, n))
			return -1;
		i++;
	}
	ir_remove_dead(g);
	return 0;
}
