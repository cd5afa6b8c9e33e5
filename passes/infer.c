/* infer.c: the infer pass: re-derives every node's output types from its inputs.
 *
 * Builders already infer types as nodes are made; this pass re-runs inference over the whole
 * graph in order so that a graph whose input shapes changed (another --batch, a parsed text
 * form) is consistent, and reports any output whose declared type disagrees.
 */
#include "passes/passes.h"

int pass_infer(IrGraph *g, const PassOptions *o)
{
	(void)o;
	int rc = 0;
	for (int i = 0; i < g->nodes.n; i++) {
		IrNode *n = IR_NODE(g, i);
		const IrType *out[8] = {0};
		if (ir_infer_node(g, n, out)) {
			rc = -1;
			continue;
		}
		for (int j = 0; j < n->nout; j++) {
			IrValue *v = n->out[j];
			if (v->type->dt == IR_DT_LNS && out[j]->dt == IR_DT_F32) {
				/* keep the format the precision pass chose; take the new shape */
				v->type = ir_type_with_shape(g->ctx, v->type, out[j]->rank, out[j]->dims);
			} else {
				v->type = out[j];
			}
		}
	}
	return rc;
}
