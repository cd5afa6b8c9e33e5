/* canon.c: canonical form before differentiation: constant folding, Identity removal, dead code.
 *
 * A node whose inputs are all constants is evaluated once by the reference interpreter and
 * replaced by a constant value (a PyTorch export often computes shapes this way). Identity
 * nodes disappear unless they produce a graph output. Dropout is already in training form
 * (it always has its mask output). Nodes nothing reads are removed.
 */
#include <string.h>

#include "passes/passes.h"

static int foldable(const IrNode *n)
{
	if (ir_op_has(n->op, IR_OPF_UPDATE | IR_OPF_RAW) || n->op == IR_OP_DROPOUT || !n->nin)
		return 0;
	for (int i = 0; i < n->nin; i++)
		if (n->in[i]->role != IR_ROLE_CONST)
			return 0;
	return 1;
}

static int fold(IrGraph *g, int idx)
{
	IrNode *n = IR_NODE(g, idx);
	IrTensor out[8];
	if (ir_interp_fold(g, n, out))
		return -1;
	for (int j = 0; j < n->nout; j++) {
		IrValue *v = n->out[j];
		/* the value keeps its name and identity: it becomes a constant in place */
		v->def = NULL;
		v->role = IR_ROLE_CONST;
		v->init = out[j].data;
		v->init_type = out[j].type;
	}
	memmove(&g->nodes.v[idx], &g->nodes.v[idx + 1], (size_t)(g->nodes.n - idx - 1) * sizeof(void *));
	g->nodes.n--;
	return 0;
}

static void drop_identity(IrGraph *g, int idx)
{
	IrNode *n = IR_NODE(g, idx);
	ir_replace_uses(g, n->out[0], n->in[0], idx + 1);
}

int pass_canon(IrGraph *g, const PassOptions *o)
{
	(void)o;
	for (int i = 0; i < g->nodes.n;) {
		IrNode *n = IR_NODE(g, i);
		if (foldable(n)) {
			if (fold(g, i))
				return -1;
			continue;
		}
		if (n->op == IR_OP_IDENTITY && !n->out[0]->is_output &&
		    n->in[0]->type == n->out[0]->type)
			drop_identity(g, i);
		i++;
	}
	ir_remove_dead(g);
	return 0;
}
