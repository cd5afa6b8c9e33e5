/* ops.c: the op table (from ops.def), name lookup, and the ir/ half of the hook self-check.
 *
 * Every stage keeps its own per-op hook table; each stage's check function names the ops
 * missing a hook, so adding an op to ops.def and forgetting a stage fails at start-up and in
 * the unit tests, not at the first model that uses it.
 */
#include <string.h>

#include "ir/ir.h"

const IrOpInfo ir_op_info[IR_OP_COUNT] = {
#define X(id, nm, mi, ma, no, at, fl) [IR_OP_##id] = {nm, mi, ma, no, IR_ATTR_##at, fl},
#include "ir/ops.def"
#undef X
};

const char *ir_op_name(IrOp op)
{
	return op < IR_OP_COUNT ? ir_op_info[op].name : "?";
}

int ir_op_lookup(const char *name, IrOp *out)
{
	for (int i = 0; i < IR_OP_COUNT; i++)
		if (!strcmp(ir_op_info[i].name, name)) {
			*out = (IrOp)i;
			return 0;
		}
	return -1;
}

/* Ops folded away at import (Constant) need no shape or interpreter hook. */
static int folded_at_import(IrOp op)
{
	return ir_op_info[op].max_in == 0;
}

int ir_ops_check(IrCtx *c)
{
	int missing = 0;
	for (int i = 0; i < IR_OP_COUNT; i++) {
		if (folded_at_import((IrOp)i))
			continue;
		if (!ir_infer_table[i]) {
			ir_error(c, IR_ERR_RUNTIME, "self-check: op %s has no shape inference",
				 ir_op_info[i].name);
			missing++;
		}
		if (!ir_interp_table[i]) {
			ir_error(c, IR_ERR_RUNTIME, "self-check: op %s has no interpreter kernel",
				 ir_op_info[i].name);
			missing++;
		}
	}
	return missing ? -1 : 0;
}
