/* grad.c: one gradient rule per op, built from graph ops (the ggml way).
 *
 * A rule sees the forward node, the gradients of its outputs and which inputs need one, and
 * builds backward nodes with the pass_grad_* helpers. Rules reuse forward ops wherever the
 * math allows (a Gemm's input gradients are Gemms), so the backward graph gets the same
 * kernels, formats and fusion as the forward one. Broadcasting is undone with SumTo.
 */
#include <string.h>

#include "passes/passes.h"

static IrValue *op1(PassGrad *pg, IrOp op, IrValue *a, const IrAttrs *at)
{
	return pass_grad_op(pg, op, 1, &a, at);
}

static IrValue *op2(PassGrad *pg, IrOp op, IrValue *a, IrValue *b, const IrAttrs *at)
{
	IrValue *in[2] = {a, b};
	return pass_grad_op(pg, op, 2, in, at);
}

static IrValue *gemm(PassGrad *pg, IrValue *a, IrValue *b, int ta, int tb, float alpha)
{
	IrAttrs at = {.gemm = {.alpha = alpha, .beta = 1.0f, .trans_a = ta, .trans_b = tb}};
	return op2(pg, IR_OP_GEMM, a, b, &at);
}

static IrValue *reshape_to(PassGrad *pg, IrValue *x, const IrType *to)
{
	IrAttrs at = {.shape = {.rank = to->rank}};
	memcpy(at.shape.dims, to->dims, sizeof at.shape.dims);
	return op1(pg, IR_OP_RESHAPE, x, &at);
}

/* Y = alpha op(A) op(B) + beta C */
static int grad_gemm(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
		     IrValue **din)
{
	IrAttrGemm a = n->attr.gemm;
	IrValue *dy = dout[0], *A = n->in[0], *B = n->in[1];
	if (need[0])
		din[0] = a.trans_a ? gemm(pg, B, dy, a.trans_b, 1, a.alpha)
				   : gemm(pg, dy, B, 0, !a.trans_b, a.alpha);
	if (need[1])
		din[1] = a.trans_b ? gemm(pg, dy, A, 1, a.trans_a, a.alpha)
				   : gemm(pg, A, dy, !a.trans_a, 0, a.alpha);
	if (n->nin > 2 && need[2])
		din[2] = pass_grad_sum_to(pg, pass_grad_scale(pg, dy, a.beta), n->in[2]->type);
	return 0;
}

static IrValue *swap_last2(PassGrad *pg, IrValue *x)
{
	IrAttrs at = {.perm = {.n = x->type->rank}};
	for (int i = 0; i < x->type->rank; i++)
		at.perm.perm[i] = i;
	at.perm.perm[x->type->rank - 1] = x->type->rank - 2;
	at.perm.perm[x->type->rank - 2] = x->type->rank - 1;
	return op1(pg, IR_OP_TRANSPOSE, x, &at);
}

static int grad_matmul(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
		       IrValue **din)
{
	IrValue *dy = dout[0], *A = n->in[0], *B = n->in[1];
	if (A->type->rank == 2 && B->type->rank == 2) {
		if (need[0])
			din[0] = gemm(pg, dy, B, 0, 1, 1.0f);
		if (need[1])
			din[1] = gemm(pg, A, dy, 1, 0, 1.0f);
		return 0;
	}
	if (need[0])
		din[0] = pass_grad_sum_to(pg, op2(pg, IR_OP_MATMUL, dy, swap_last2(pg, B), NULL),
					  A->type);
	if (need[1])
		din[1] = pass_grad_sum_to(pg, op2(pg, IR_OP_MATMUL, swap_last2(pg, A), dy, NULL),
					  B->type);
	return 0;
}

static int grad_add_sub(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
			IrValue **din)
{
	if (need[0])
		din[0] = pass_grad_sum_to(pg, dout[0], n->in[0]->type);
	if (need[1]) {
		IrValue *d = pass_grad_sum_to(pg, dout[0], n->in[1]->type);
		din[1] = n->op == IR_OP_SUB ? op1(pg, IR_OP_NEG, d, NULL) : d;
	}
	return 0;
}

static int grad_mul(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
		    IrValue **din)
{
	for (int i = 0; i < 2; i++)
		if (need[i])
			din[i] = pass_grad_sum_to(pg, op2(pg, IR_OP_MUL, dout[0], n->in[1 - i], NULL),
						  n->in[i]->type);
	return 0;
}

/* Y = A / B: dA = dY / B, dB = -dY * Y / B */
static int grad_div(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
		    IrValue **din)
{
	IrValue *q = op2(pg, IR_OP_DIV, dout[0], n->in[1], NULL);
	if (need[0])
		din[0] = pass_grad_sum_to(pg, q, n->in[0]->type);
	if (need[1]) {
		IrValue *t = op2(pg, IR_OP_MUL, q, n->out[0], NULL);
		din[1] = pass_grad_sum_to(pg, op1(pg, IR_OP_NEG, t, NULL), n->in[1]->type);
	}
	return 0;
}

static int grad_neg(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
		    IrValue **din)
{
	(void)n;
	if (need[0])
		din[0] = op1(pg, IR_OP_NEG, dout[0], NULL);
	return 0;
}

/* Rules of the form din = OpGrad(dY, Y) (or (dY, X)), attributes carried over. */
static int grad_unary(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
		      IrValue **din)
{
	IrOp g;
	IrValue *saved = n->out[0];
	switch (n->op) {
	case IR_OP_RELU: g = IR_OP_RELU_GRAD; break;
	case IR_OP_LEAKY_RELU: g = IR_OP_LEAKY_RELU_GRAD; saved = n->in[0]; break;
	case IR_OP_SIGMOID: g = IR_OP_SIGMOID_GRAD; break;
	case IR_OP_TANH: g = IR_OP_TANH_GRAD; break;
	case IR_OP_SOFTMAX: g = IR_OP_SOFTMAX_GRAD; break;
	case IR_OP_LOG_SOFTMAX: g = IR_OP_LOG_SOFTMAX_GRAD; break;
	default: return -1;
	}
	if (need[0])
		din[0] = op2(pg, g, dout[0], saved, &n->attr);
	return 0;
}

static int grad_reshape(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
			IrValue **din)
{
	if (need[0])
		din[0] = reshape_to(pg, dout[0], n->in[0]->type);
	return 0;
}

static int grad_identity(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
			 IrValue **din)
{
	(void)pg;
	(void)n;
	if (need[0])
		din[0] = dout[0];
	return 0;
}

static int grad_transpose(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
			  IrValue **din)
{
	IrAttrs at = {.perm = {.n = n->attr.perm.n}};
	for (int i = 0; i < n->attr.perm.n; i++)
		at.perm.perm[n->attr.perm.perm[i]] = i;
	if (need[0])
		din[0] = op1(pg, IR_OP_TRANSPOSE, dout[0], &at);
	return 0;
}

static int grad_concat(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
		       IrValue **din)
{
	int axis = n->attr.axis.axis;
	int64_t start = 0;
	for (int i = 0; i < n->nin; i++) {
		int64_t len = n->in[i]->type->dims[axis];
		IrAttrs at = {.slice = {.axis = axis, .start = start, .end = start + len}};
		if (need[i])
			din[i] = op1(pg, IR_OP_SLICE, dout[0], &at);
		start += len;
	}
	return 0;
}

static int grad_dropout(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
			IrValue **din)
{
	if (need[0] && dout[0])
		din[0] = op2(pg, IR_OP_DROPOUT_GRAD, dout[0], n->out[1], &n->attr);
	return 0;
}

/* Only float -> float casts carry a gradient; others stop it (need[] is 0 there). */
static int grad_cast(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
		     IrValue **din)
{
	IrDType from = n->in[0]->type->dt;
	if (!need[0])
		return 0;
	if (!ir_dtype_is_float(from))
		return 0;
	if (dout[0]->type->dt == from)
		din[0] = dout[0];
	else {
		IrAttrs at = {.cast = {.to = from}};
		din[0] = op1(pg, IR_OP_CAST, dout[0], &at);
	}
	return 0;
}

/* ---- convolutional networks ---- */

/* Y = Conv(X, W, B): dX = ConvGradX(dY, W) (X's spatial dims in xhw, which dY cannot tell
 * when the stride is > 1), dW = ConvGradW(dY, X), dB = dY summed to [1, M, 1, 1], as [M]. */
static int grad_conv(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
		     IrValue **din)
{
	IrValue *dy = dout[0], *X = n->in[0], *W = n->in[1];
	if (need[0]) {
		IrAttrs at = n->attr;
		at.conv.xhw[0] = X->type->dims[2];
		at.conv.xhw[1] = X->type->dims[3];
		din[0] = op2(pg, IR_OP_CONV_GRAD_X, dy, W, &at);
	}
	if (need[1])
		din[1] = op2(pg, IR_OP_CONV_GRAD_W, dy, X, &n->attr);
	if (n->nin > 2 && need[2]) {
		int64_t d[4] = {1, W->type->dims[0], 1, 1};
		IrGraph *g = pass_grad_graph(pg);
		IrValue *s = pass_grad_sum_to(pg, dy, ir_type(g->ctx, IR_DT_F32, 4, d));
		din[2] = s ? reshape_to(pg, s, n->in[2]->type) : NULL;
	}
	return 0;
}

/* Training-mode statistics (the batch mean and variance outputs): BatchNormGrad gives dX,
 * dscale and dB at once. The running statistics (inputs 3, 4) get no gradient. */
static int grad_batch_norm(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
			   IrValue **din)
{
	if (!dout[0] || !(need[0] || need[1] || need[2]))
		return 0;
	IrValue *in[5] = {dout[0], n->in[0], n->in[1], n->out[3], n->out[4]};
	IrValue *dx = pass_grad_op(pg, IR_OP_BATCH_NORM_GRAD, 5, in, &n->attr);
	if (!dx)
		return 0;
	for (int i = 0; i < 3; i++)
		if (need[i])
			din[i] = dx->def->out[i];
	return 0;
}

/* MaxPool, GlobalMaxPool: dY to the first maximum of each window of X. */
static int grad_max_pool(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
			 IrValue **din)
{
	if (need[0])
		din[0] = op2(pg, IR_OP_MAX_POOL_GRAD, dout[0], n->in[0], &n->attr);
	return 0;
}

/* AveragePool, GlobalAveragePool: dY spread over each window (X's dims in xhw). */
static int grad_avg_pool(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
			 IrValue **din)
{
	IrAttrs at = n->attr;
	at.pool.xhw[0] = n->in[0]->type->dims[2];
	at.pool.xhw[1] = n->in[0]->type->dims[3];
	if (need[0])
		din[0] = op1(pg, IR_OP_AVG_POOL_GRAD, dout[0], &at);
	return 0;
}

/* Pad: the gradient is the Pad with the pads negated (crop what was padded, pad with zeros
 * what was cropped). */
static int grad_pad(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
		    IrValue **din)
{
	IrAttrs at = {.pad = {.n = n->attr.pad.n}};
	for (int i = 0; i < 2 * at.pad.n; i++)
		at.pad.pads[i] = -n->attr.pad.pads[i];
	if (need[0])
		din[0] = op1(pg, IR_OP_PAD, dout[0], &at);
	return 0;
}

static int grad_clip(PassGrad *pg, IrNode *n, IrValue *const *dout, const int *need,
		     IrValue **din)
{
	if (need[0])
		din[0] = op2(pg, IR_OP_CLIP_GRAD, dout[0], n->in[0], &n->attr);
	return 0;
}

const PassGradFn pass_grad_table[IR_OP_COUNT] = {
	[IR_OP_GEMM] = grad_gemm,
	[IR_OP_MATMUL] = grad_matmul,
	[IR_OP_ADD] = grad_add_sub,
	[IR_OP_SUB] = grad_add_sub,
	[IR_OP_MUL] = grad_mul,
	[IR_OP_DIV] = grad_div,
	[IR_OP_NEG] = grad_neg,
	[IR_OP_RELU] = grad_unary,
	[IR_OP_LEAKY_RELU] = grad_unary,
	[IR_OP_SIGMOID] = grad_unary,
	[IR_OP_TANH] = grad_unary,
	[IR_OP_SOFTMAX] = grad_unary,
	[IR_OP_LOG_SOFTMAX] = grad_unary,
	[IR_OP_FLATTEN] = grad_reshape,
	[IR_OP_RESHAPE] = grad_reshape,
	[IR_OP_SQUEEZE] = grad_reshape,
	[IR_OP_UNSQUEEZE] = grad_reshape,
	[IR_OP_TRANSPOSE] = grad_transpose,
	[IR_OP_CONCAT] = grad_concat,
	[IR_OP_IDENTITY] = grad_identity,
	[IR_OP_DROPOUT] = grad_dropout,
	[IR_OP_CAST] = grad_cast,
	[IR_OP_QUANTIZE] = grad_identity,
	[IR_OP_CONV] = grad_conv,
	[IR_OP_BATCH_NORM] = grad_batch_norm,
	[IR_OP_MAX_POOL] = grad_max_pool,
	[IR_OP_GLOBAL_MAX_POOL] = grad_max_pool,
	[IR_OP_AVG_POOL] = grad_avg_pool,
	[IR_OP_GLOBAL_AVG_POOL] = grad_avg_pool,
	[IR_OP_PAD] = grad_pad,
	[IR_OP_CLIP] = grad_clip,
};

int pass_grad_check(IrCtx *c)
{
	int missing = 0;
	for (int i = 0; i < IR_OP_COUNT; i++)
		if ((ir_op_info[i].flags & IR_OPF_ONNX) && !(ir_op_info[i].flags & IR_OPF_NOGRAD) &&
		    !pass_grad_table[i]) {
			ir_error(c, IR_ERR_RUNTIME, "self-check: op %s has no gradient rule",
				 ir_op_info[i].name);
			missing++;
		}
	return missing ? -1 : 0;
}
