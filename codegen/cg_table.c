/* cg_table.c: the LLVM backend's op table: one kernel emitter per op (ops.def order).
 *
 * Constant has none: the importer folds Constant nodes into constant values, so the IR never
 * holds one. cg_emit_check (cg_entry.c) names any other op left without an emitter.
 */
#include "codegen/cg.h"

const CgEmitFn cg_emit_table[IR_OP_COUNT] = {
	[IR_OP_GEMM] = cg_emit_gemm,
	[IR_OP_MATMUL] = cg_emit_matmul,
	[IR_OP_ADD] = cg_emit_binary,
	[IR_OP_SUB] = cg_emit_binary,
	[IR_OP_MUL] = cg_emit_binary,
	[IR_OP_DIV] = cg_emit_binary,
	[IR_OP_NEG] = cg_emit_unary,
	[IR_OP_RELU] = cg_emit_unary,
	[IR_OP_LEAKY_RELU] = cg_emit_unary,
	[IR_OP_SIGMOID] = cg_emit_unary,
	[IR_OP_TANH] = cg_emit_unary,
	[IR_OP_SOFTMAX] = cg_emit_softmax,
	[IR_OP_LOG_SOFTMAX] = cg_emit_softmax,
	[IR_OP_FLATTEN] = cg_emit_copy,
	[IR_OP_RESHAPE] = cg_emit_copy,
	[IR_OP_TRANSPOSE] = cg_emit_transpose,
	[IR_OP_SQUEEZE] = cg_emit_copy,
	[IR_OP_UNSQUEEZE] = cg_emit_copy,
	[IR_OP_CONCAT] = cg_emit_concat,
	[IR_OP_IDENTITY] = cg_emit_copy,
	[IR_OP_DROPOUT] = cg_emit_dropout,
	[IR_OP_CAST] = cg_emit_cast,
	[IR_OP_SUM_TO] = cg_emit_sum_to,
	[IR_OP_SLICE] = cg_emit_slice,
	[IR_OP_RELU_GRAD] = cg_emit_binary,
	[IR_OP_LEAKY_RELU_GRAD] = cg_emit_binary,
	[IR_OP_SIGMOID_GRAD] = cg_emit_binary,
	[IR_OP_TANH_GRAD] = cg_emit_binary,
	[IR_OP_SOFTMAX_GRAD] = cg_emit_softmax_grad,
	[IR_OP_LOG_SOFTMAX_GRAD] = cg_emit_softmax_grad,
	[IR_OP_DROPOUT_GRAD] = cg_emit_dropout_grad,
	[IR_OP_XENT] = cg_emit_xent,
	[IR_OP_XENT_GRAD] = cg_emit_xent_grad,
	[IR_OP_MSE] = cg_emit_mse,
	[IR_OP_MSE_GRAD] = cg_emit_mse_grad,
	[IR_OP_QUANTIZE] = cg_emit_quantize,
	[IR_OP_WEIGHT_VIEW] = cg_emit_weight_view,
	[IR_OP_MADAM] = cg_emit_madam,
	[IR_OP_SGD] = cg_emit_sgd,
	[IR_OP_ADAM] = cg_emit_adam,
};
