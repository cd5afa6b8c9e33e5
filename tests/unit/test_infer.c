/* test_infer.c: shape and type inference of every op, the accepted cases and the errors.
 *
 * Each case builds one node with ir_build on fresh input values and checks either the output
 * types or that the node was refused with a diagnostic naming it and the problem.
 */
#include <string.h>

#include "ir/ir.h"
#include "testlib.h"

#define D(...) ((const int64_t[]){__VA_ARGS__})

static IrCtx *C;
static IrGraph *G;
static int serial;

static const LnsFormat LNS8 = {.bits = 8, .log2g = 3};
static const LnsFormat LNS5 = {.bits = 5, .log2g = 1};

static IrValue *val(IrDType dt, int rank, const int64_t *dims)
{
	char name[32];
	snprintf(name, sizeof name, "v%d", serial++);
	return ir_value_new(G, name, ir_type(C, dt, rank, dims), IR_ROLE_INPUT, NULL, NULL);
}

static IrValue *lval(LnsFormat f, int rank, const int64_t *dims)
{
	char name[32];
	snprintf(name, sizeof name, "v%d", serial++);
	return ir_value_new(G, name, ir_type_lns(C, f, rank, dims), IR_ROLE_PARAM, NULL, NULL);
}

static IrValue *f32(int rank, const int64_t *dims)
{
	return val(IR_DT_F32, rank, dims);
}

/* Builds a node named "n<serial>" and returns it (NULL if refused). */
static IrNode *build(IrOp op, int nin, IrValue **in, const IrAttrs *at)
{
	char name[32];
	snprintf(name, sizeof name, "n%d", serial++);
	ir_diag_clear(C);
	return ir_build(G, op, name, nin, in, at, NULL);
}

static int type_is(const IrType *t, IrDType dt, int rank, const int64_t *dims)
{
	if (!t || t->dt != dt || t->rank != rank)
		return 0;
	for (int i = 0; i < rank; i++)
		if (t->dims[i] != dims[i])
			return 0;
	return 1;
}

/* The output type of a node that must build. */
static const IrType *out_type(IrOp op, int nin, IrValue **in, const IrAttrs *at, int j)
{
	IrNode *n = build(op, nin, in, at);
	if (!n) {
		fprintf(stderr, "unexpected refusal: %s\n", ir_diag_text(C));
		return NULL;
	}
	return n->out[j]->type;
}

#define OK_SHAPE(op, nin, in, at, dt, rank, dims)                                             \
	do {                                                                                   \
		const IrType *t_ = out_type(op, nin, in, at, 0);                               \
		CHECK_MSG(type_is(t_, dt, rank, dims), "%s", ir_op_name(op));                  \
	} while (0)

/* A node that must be refused with status st and a message containing `what`. */
static void refused(IrOp op, int nin, IrValue **in, const IrAttrs *at, IrStatus st,
		    const char *what, int line)
{
	char node[32];
	snprintf(node, sizeof node, "node 'n%d'", serial);
	IrNode *n = build(op, nin, in, at);
	const char *msg = ir_diag_text(C);
	CHECK_MSG(!n, "line %d: %s was built", line, ir_op_name(op));
	CHECK_MSG(strstr(msg, what) != NULL, "line %d: message '%s' lacks '%s'", line, msg, what);
	CHECK_MSG(strstr(msg, node) != NULL, "line %d: message '%s' does not name %s", line, msg,
		  node);
	CHECK_MSG(strstr(msg, ir_op_name(op)) != NULL, "line %d: no op name in '%s'", line, msg);
	CHECK_MSG(ir_error_status(C) == st, "line %d: status %d, want %d", line,
		  (int)ir_error_status(C), (int)st);
}

#define REFUSED(op, nin, in, at, what) refused(op, nin, in, at, IR_ERR_INPUT, what, __LINE__)
#define UNSUPPORTED(op, nin, in, at, what)                                                     \
	refused(op, nin, in, at, IR_ERR_UNSUPPORTED, what, __LINE__)

static void test_broadcast_shape(void)
{
	int64_t out[IR_MAX_RANK];
	int r;
	CHECK(ir_broadcast_shape(2, D(2, 3), 1, D(3), &r, out) == 0 && r == 2 && out[0] == 2 &&
	      out[1] == 3);
	CHECK(ir_broadcast_shape(3, D(2, 1, 4), 2, D(3, 1), &r, out) == 0 && r == 3 &&
	      out[0] == 2 && out[1] == 3 && out[2] == 4);
	CHECK(ir_broadcast_shape(0, NULL, 2, D(5, 6), &r, out) == 0 && r == 2 && out[1] == 6);
	CHECK(ir_broadcast_shape(2, D(2, 3), 1, D(2), &r, out) == -1);
	CHECK(ir_broadcast_shape(1, D(0), 1, D(1), &r, out) == 0 && out[0] == 0);
}

static void test_gemm(void)
{
	IrAttrs at = {.gemm = {.alpha = 1, .beta = 1}};
	IrValue *in[3] = {f32(2, D(4, 3)), f32(2, D(3, 5)), f32(1, D(5))};
	OK_SHAPE(IR_OP_GEMM, 2, in, &at, IR_DT_F32, 2, D(4, 5));
	OK_SHAPE(IR_OP_GEMM, 3, in, &at, IR_DT_F32, 2, D(4, 5));
	in[2] = f32(2, D(4, 1));
	OK_SHAPE(IR_OP_GEMM, 3, in, &at, IR_DT_F32, 2, D(4, 5));
	in[2] = f32(0, NULL);
	OK_SHAPE(IR_OP_GEMM, 3, in, &at, IR_DT_F32, 2, D(4, 5));
	in[2] = f32(1, D(4));
	REFUSED(IR_OP_GEMM, 3, in, &at, "C is [4], not broadcastable to [4,5]");
	at.gemm.trans_a = 1;
	in[0] = f32(2, D(3, 4));
	OK_SHAPE(IR_OP_GEMM, 2, in, &at, IR_DT_F32, 2, D(4, 5));
	at.gemm.trans_b = 1;
	in[1] = lval(LNS8, 2, D(5, 3));
	OK_SHAPE(IR_OP_GEMM, 2, in, &at, IR_DT_F32, 2, D(4, 5));
	at.gemm.trans_a = at.gemm.trans_b = 0;
	in[0] = f32(2, D(4, 3));
	in[1] = f32(2, D(5, 6));
	REFUSED(IR_OP_GEMM, 2, in, &at,
		"inner dimensions differ: A is [4,3] (transA=0), B is [5,6] (transB=0)");
	in[0] = f32(3, D(1, 4, 3));
	REFUSED(IR_OP_GEMM, 2, in, &at, "A must be 2-D, got [1,4,3]");
	in[0] = val(IR_DT_I64, 2, D(4, 3));
	UNSUPPORTED(IR_OP_GEMM, 2, in, &at, "unsupported dtype i64");
}

static void test_matmul(void)
{
	IrValue *in[2] = {f32(3, D(2, 3, 4)), f32(2, D(4, 5))};
	OK_SHAPE(IR_OP_MATMUL, 2, in, NULL, IR_DT_F32, 3, D(2, 3, 5));
	in[0] = f32(4, D(2, 1, 3, 4));
	in[1] = f32(3, D(5, 4, 6));
	OK_SHAPE(IR_OP_MATMUL, 2, in, NULL, IR_DT_F32, 4, D(2, 5, 3, 6));
	in[0] = f32(2, D(3, 4));
	in[1] = f32(2, D(5, 6));
	REFUSED(IR_OP_MATMUL, 2, in, NULL, "inner dimensions differ: A is [3,4], B is [5,6]");
	in[0] = f32(3, D(2, 3, 4));
	in[1] = f32(3, D(3, 4, 5));
	REFUSED(IR_OP_MATMUL, 2, in, NULL, "batch dimensions of [2,3,4] and [3,4,5]");
	in[1] = f32(1, D(4));
	REFUSED(IR_OP_MATMUL, 2, in, NULL, "rank >= 2");
	in[0] = val(IR_DT_BOOL, 2, D(3, 4));
	in[1] = f32(2, D(4, 5));
	UNSUPPORTED(IR_OP_MATMUL, 2, in, NULL, "unsupported dtype bool");
}

static void test_elementwise(void)
{
	static const IrOp bin[] = {IR_OP_ADD, IR_OP_SUB, IR_OP_MUL, IR_OP_DIV};
	for (int i = 0; i < 4; i++) {
		IrValue *in[2] = {f32(2, D(2, 3)), f32(1, D(3))};
		OK_SHAPE(bin[i], 2, in, NULL, IR_DT_F32, 2, D(2, 3));
		in[0] = f32(2, D(2, 1));
		in[1] = lval(LNS8, 2, D(1, 4));
		OK_SHAPE(bin[i], 2, in, NULL, IR_DT_F32, 2, D(2, 4));
		in[0] = f32(0, NULL);
		in[1] = f32(1, D(7));
		OK_SHAPE(bin[i], 2, in, NULL, IR_DT_F32, 1, D(7));
		in[0] = f32(2, D(2, 3));
		in[1] = f32(1, D(2));
		REFUSED(bin[i], 2, in, NULL, "shapes [2,3] and [2] are not broadcastable");
		in[1] = val(IR_DT_I32, 1, D(3));
		UNSUPPORTED(bin[i], 2, in, NULL, "unsupported dtype i32");
	}
	static const IrOp un[] = {IR_OP_NEG, IR_OP_RELU, IR_OP_LEAKY_RELU, IR_OP_SIGMOID,
				  IR_OP_TANH, IR_OP_QUANTIZE, IR_OP_WEIGHT_VIEW};
	for (int i = 0; i < 7; i++) {
		IrValue *x = lval(LNS8, 3, D(2, 3, 4));
		OK_SHAPE(un[i], 1, &x, NULL, IR_DT_F32, 3, D(2, 3, 4));
		x = val(IR_DT_U8, 1, D(3));
		UNSUPPORTED(un[i], 1, &x, NULL, "unsupported dtype u8");
	}
}

static void test_softmax(void)
{
	IrOp ops[] = {IR_OP_SOFTMAX, IR_OP_LOG_SOFTMAX};
	for (int i = 0; i < 2; i++) {
		IrAttrs at = {.axis = {.axis = 1, .legacy = i}};
		IrValue *x = f32(3, D(2, 3, 4));
		OK_SHAPE(ops[i], 1, &x, &at, IR_DT_F32, 3, D(2, 3, 4));
		at.axis.axis = 3;
		REFUSED(ops[i], 1, &x, &at, "axis 3 is out of range for rank 3");
	}
	IrOp gops[] = {IR_OP_SOFTMAX_GRAD, IR_OP_LOG_SOFTMAX_GRAD};
	for (int i = 0; i < 2; i++) {
		IrAttrs at = {.axis = {.axis = 2}};
		IrValue *in[2] = {f32(3, D(2, 3, 4)), f32(3, D(2, 3, 4))};
		OK_SHAPE(gops[i], 2, in, &at, IR_DT_F32, 3, D(2, 3, 4));
		at.axis.axis = -1;
		REFUSED(gops[i], 2, in, &at, "axis -1 is out of range");
		at.axis.axis = 0;
		in[1] = f32(2, D(2, 3));
		REFUSED(gops[i], 2, in, &at, "is [2,3,4] but input 1");
	}
}

static void test_grad_pairs(void)
{
	IrOp ops[] = {IR_OP_RELU_GRAD, IR_OP_LEAKY_RELU_GRAD, IR_OP_SIGMOID_GRAD,
		      IR_OP_TANH_GRAD};
	IrAttrs at = {.alpha = {.alpha = 0.1f}};
	for (int i = 0; i < 4; i++) {
		IrValue *in[2] = {lval(LNS5, 2, D(4, 6)), lval(LNS8, 2, D(4, 6))};
		OK_SHAPE(ops[i], 2, in, &at, IR_DT_F32, 2, D(4, 6));
		in[1] = f32(2, D(6, 4));
		REFUSED(ops[i], 2, in, &at, "is [4,6] but input 1");
	}
	IrAttrs dr = {.dropout = {.ratio = 0.25f}};
	IrValue *in[2] = {f32(2, D(4, 6)), val(IR_DT_BOOL, 2, D(4, 6))};
	OK_SHAPE(IR_OP_DROPOUT_GRAD, 2, in, &dr, IR_DT_F32, 2, D(4, 6));
	in[1] = f32(2, D(4, 6));
	REFUSED(IR_OP_DROPOUT_GRAD, 2, in, &dr, "must be bool");
}

static void test_flatten_reshape(void)
{
	IrAttrs at = {.axis = {.axis = 1}};
	IrValue *x = f32(3, D(2, 3, 4)), *l = lval(LNS8, 3, D(2, 3, 4));
	OK_SHAPE(IR_OP_FLATTEN, 1, &x, &at, IR_DT_F32, 2, D(2, 12));
	at.axis.axis = 0;
	OK_SHAPE(IR_OP_FLATTEN, 1, &x, &at, IR_DT_F32, 2, D(1, 24));
	at.axis.axis = 3;
	OK_SHAPE(IR_OP_FLATTEN, 1, &x, &at, IR_DT_F32, 2, D(24, 1));
	at.axis.axis = 4;
	REFUSED(IR_OP_FLATTEN, 1, &x, &at, "axis 4 is out of range for rank 3");
	at.axis.axis = 2;
	const IrType *t = out_type(IR_OP_FLATTEN, 1, &l, &at, 0);
	CHECK(type_is(t, IR_DT_LNS, 2, D(6, 4)) && !memcmp(&t->fmt, &LNS8, sizeof LNS8));

	IrAttrs rs = {.shape = {.rank = 2, .dims = {6, 4}}};
	OK_SHAPE(IR_OP_RESHAPE, 1, &x, &rs, IR_DT_F32, 2, D(6, 4));
	t = out_type(IR_OP_RESHAPE, 1, &l, &rs, 0);
	CHECK(type_is(t, IR_DT_LNS, 2, D(6, 4)) && t->fmt.bits == 8);
	rs.shape = (IrAttrShape){.rank = 2, .dims = {5, 5}};
	REFUSED(IR_OP_RESHAPE, 1, &x, &rs,
		"cannot reshape [2,3,4] (24 elements) to [5,5] (25 elements)");
	rs.shape = (IrAttrShape){.rank = 2, .dims = {-1, 24}};
	REFUSED(IR_OP_RESHAPE, 1, &x, &rs, "negative dimension");
	IrValue *i = val(IR_DT_I64, 1, D(6));
	rs.shape = (IrAttrShape){.rank = 2, .dims = {2, 3}};
	OK_SHAPE(IR_OP_RESHAPE, 1, &i, &rs, IR_DT_I64, 2, D(2, 3));
}

static void test_transpose_squeeze(void)
{
	IrAttrs at = {.perm = {.n = 3, .perm = {2, 0, 1}}};
	IrValue *x = f32(3, D(2, 3, 4)), *l = lval(LNS5, 3, D(2, 3, 4));
	OK_SHAPE(IR_OP_TRANSPOSE, 1, &x, &at, IR_DT_F32, 3, D(4, 2, 3));
	OK_SHAPE(IR_OP_TRANSPOSE, 1, &l, &at, IR_DT_LNS, 3, D(4, 2, 3));
	at.perm = (IrAttrPerm){.n = 3, .perm = {0, 0, 1}};
	REFUSED(IR_OP_TRANSPOSE, 1, &x, &at, "not a permutation");
	at.perm = (IrAttrPerm){.n = 2, .perm = {1, 0}};
	REFUSED(IR_OP_TRANSPOSE, 1, &x, &at, "perm has 2 entries, input rank is 3");

	IrValue *y = f32(3, D(1, 3, 1));
	IrAttrs sq = {.axes = {.n = 1, .axes = {0}}};
	OK_SHAPE(IR_OP_SQUEEZE, 1, &y, &sq, IR_DT_F32, 2, D(3, 1));
	sq.axes.n = 0;
	OK_SHAPE(IR_OP_SQUEEZE, 1, &y, &sq, IR_DT_F32, 1, D(3));
	sq.axes = (IrAttrAxes){.n = 1, .axes = {1}};
	REFUSED(IR_OP_SQUEEZE, 1, &y, &sq, "cannot squeeze axis 1 of [1,3,1]");
	sq.axes = (IrAttrAxes){.n = 2, .axes = {2, 0}};
	REFUSED(IR_OP_SQUEEZE, 1, &y, &sq, "sorted");

	IrValue *z = val(IR_DT_BOOL, 1, D(3));
	IrAttrs us = {.axes = {.n = 2, .axes = {0, 2}}};
	OK_SHAPE(IR_OP_UNSQUEEZE, 1, &z, &us, IR_DT_BOOL, 3, D(1, 3, 1));
	us.axes = (IrAttrAxes){.n = 1, .axes = {2}};
	REFUSED(IR_OP_UNSQUEEZE, 1, &z, &us, "axis 2 is out of range for rank 2");
	us.axes = (IrAttrAxes){.n = 2, .axes = {1, 1}};
	REFUSED(IR_OP_UNSQUEEZE, 1, &z, &us, "sorted and distinct");
}

static void test_concat_slice_identity(void)
{
	IrAttrs at = {.axis = {.axis = 1}};
	IrValue *in[3] = {f32(2, D(2, 3)), f32(2, D(2, 5)), f32(2, D(2, 1))};
	OK_SHAPE(IR_OP_CONCAT, 3, in, &at, IR_DT_F32, 2, D(2, 9));
	in[1] = f32(2, D(3, 5));
	REFUSED(IR_OP_CONCAT, 3, in, &at, "does not match [2,3] outside axis 1");
	in[1] = lval(LNS8, 2, D(2, 5));
	REFUSED(IR_OP_CONCAT, 2, in, &at, "input 1");
	IrValue *l[2] = {lval(LNS8, 2, D(2, 3)), lval(LNS8, 2, D(2, 5))};
	const IrType *t = out_type(IR_OP_CONCAT, 2, l, &at, 0);
	CHECK(type_is(t, IR_DT_LNS, 2, D(2, 8)) && t->fmt.log2g == 3);
	IrValue *m[2] = {lval(LNS8, 2, D(2, 3)), lval(LNS5, 2, D(2, 5))};
	REFUSED(IR_OP_CONCAT, 2, m, &at, "lns5g2");
	at.axis.axis = 2;
	REFUSED(IR_OP_CONCAT, 2, l, &at, "axis 2 is out of range for rank 2");

	IrAttrs sl = {.slice = {.axis = 1, .start = 2, .end = 5}};
	IrValue *x = f32(2, D(4, 6)), *lx = lval(LNS5, 2, D(4, 6));
	OK_SHAPE(IR_OP_SLICE, 1, &x, &sl, IR_DT_F32, 2, D(4, 3));
	OK_SHAPE(IR_OP_SLICE, 1, &lx, &sl, IR_DT_LNS, 2, D(4, 3));
	sl.slice.end = 7;
	REFUSED(IR_OP_SLICE, 1, &x, &sl, "slice [2, 7) of axis 1 is out of range for [4,6]");
	sl.slice = (IrAttrSlice){.axis = 0, .start = 3, .end = 2};
	REFUSED(IR_OP_SLICE, 1, &x, &sl, "out of range");

	IrNode *n = build(IR_OP_IDENTITY, 1, &lx, NULL);
	CHECK(n && n->out[0]->type == lx->type);
}

static void test_dropout_cast(void)
{
	IrAttrs at = {.dropout = {.ratio = 0.3f}};
	IrValue *x = lval(LNS8, 2, D(3, 4));
	IrNode *n = build(IR_OP_DROPOUT, 1, &x, &at);
	CHECK(n && type_is(n->out[0]->type, IR_DT_F32, 2, D(3, 4)) &&
	      type_is(n->out[1]->type, IR_DT_BOOL, 2, D(3, 4)));
	at.dropout.ratio = 1.0f;
	REFUSED(IR_OP_DROPOUT, 1, &x, &at, "ratio 1 is out of range [0, 1)");

	IrAttrs c = {.cast = {.to = IR_DT_F32}};
	IrValue *i = val(IR_DT_I64, 1, D(5));
	OK_SHAPE(IR_OP_CAST, 1, &i, &c, IR_DT_F32, 1, D(5));
	c.cast.to = IR_DT_F16;
	OK_SHAPE(IR_OP_CAST, 1, &x, &c, IR_DT_F16, 2, D(3, 4));
	IrValue *b = val(IR_DT_BOOL, 0, NULL);
	c.cast.to = IR_DT_I32;
	OK_SHAPE(IR_OP_CAST, 1, &b, &c, IR_DT_I32, 0, NULL);
	c.cast.to = IR_DT_LNS;
	UNSUPPORTED(IR_OP_CAST, 1, &i, &c, "cannot cast to dtype lns");
}

static void test_sum_to(void)
{
	IrValue *x = f32(3, D(2, 4, 5));
	IrAttrs at = {.shape = {.rank = 1, .dims = {5}}};
	OK_SHAPE(IR_OP_SUM_TO, 1, &x, &at, IR_DT_F32, 1, D(5));
	at.shape = (IrAttrShape){.rank = 2, .dims = {4, 1}};
	OK_SHAPE(IR_OP_SUM_TO, 1, &x, &at, IR_DT_F32, 2, D(4, 1));
	at.shape = (IrAttrShape){.rank = 0};
	OK_SHAPE(IR_OP_SUM_TO, 1, &x, &at, IR_DT_F32, 0, NULL);
	at.shape = (IrAttrShape){.rank = 1, .dims = {4}};
	REFUSED(IR_OP_SUM_TO, 1, &x, &at, "cannot sum [2,4,5] to [4]");
	at.shape = (IrAttrShape){.rank = 4, .dims = {1, 2, 4, 5}};
	REFUSED(IR_OP_SUM_TO, 1, &x, &at, "cannot sum [2,4,5] to [1,2,4,5]");
}

static void test_losses(void)
{
	IrValue *in[2] = {lval(LNS8, 2, D(8, 10)), val(IR_DT_I64, 1, D(8))};
	OK_SHAPE(IR_OP_XENT, 2, in, NULL, IR_DT_F32, 0, NULL);
	OK_SHAPE(IR_OP_XENT_GRAD, 2, in, NULL, IR_DT_F32, 2, D(8, 10));
	in[1] = val(IR_DT_I64, 1, D(7));
	REFUSED(IR_OP_XENT, 2, in, NULL, "labels are [7], logits are [8,10]");
	in[1] = val(IR_DT_I32, 1, D(8));
	UNSUPPORTED(IR_OP_XENT_GRAD, 2, in, NULL, "unsupported dtype i32");
	in[0] = f32(3, D(8, 10, 1));
	in[1] = val(IR_DT_I64, 1, D(8));
	REFUSED(IR_OP_XENT, 2, in, NULL, "logits must be 2-D");

	IrValue *m[2] = {f32(2, D(4, 3)), f32(2, D(4, 3))};
	OK_SHAPE(IR_OP_MSE, 2, m, NULL, IR_DT_F32, 0, NULL);
	OK_SHAPE(IR_OP_MSE_GRAD, 2, m, NULL, IR_DT_F32, 2, D(4, 3));
	m[1] = f32(1, D(3));
	REFUSED(IR_OP_MSE, 2, m, NULL, "is [4,3] but input 1");
}

static void test_updates(void)
{
	IrAttrs at = {.opt = {.lr = 0.01f}};
	IrValue *w = lval((LnsFormat){.bits = 12, .log2g = 7}, 2, D(4, 3));
	IrValue *in[4] = {w, f32(2, D(4, 3)), f32(2, D(4, 3)), f32(2, D(4, 3))};
	IrNode *n = build(IR_OP_MADAM, 3, in, &at);
	CHECK(n && n->nout == 0);
	CHECK(build(IR_OP_SGD, 3, in, &at) != NULL);
	CHECK(build(IR_OP_ADAM, 4, in, &at) != NULL);
	in[2] = lval(LNS8, 2, D(4, 3));
	UNSUPPORTED(IR_OP_MADAM, 3, in, &at, "optimizer state");
	in[2] = f32(2, D(4, 3));
	in[1] = f32(2, D(3, 4));
	REFUSED(IR_OP_SGD, 3, in, &at, "is [4,3] but input 1");
	in[1] = f32(2, D(4, 3));
	in[3] = f32(1, D(12));
	REFUSED(IR_OP_ADAM, 4, in, &at, "input 3");
}

static void test_arity_constant(void)
{
	IrValue *x = f32(1, D(3));
	IrValue *in[3] = {x, x, x};
	ir_diag_clear(C);
	CHECK(!ir_build(G, IR_OP_RELU, "r", 2, in, NULL, NULL));
	CHECK(strstr(ir_diag_text(C), "node 'r'") != NULL);
	IrNode tmp = {.op = IR_OP_CONSTANT, .name = "k", .nin = 0, .nout = 1};
	const IrType *out[1];
	ir_diag_clear(C);
	CHECK(ir_infer_node(G, &tmp, out) == -1);
	CHECK(strstr(ir_diag_text(C), "folded") != NULL);
	ir_diag_clear(C);
	CHECK(ir_ops_check(C) == 0);
	if (ir_error_count(C))
		fprintf(stderr, "%s\n", ir_diag_text(C));
}

int main(void)
{
	C = ir_ctx_new();
	G = ir_graph_new(C, "infer", "test.onnx");
	test_broadcast_shape();
	test_gemm();
	test_matmul();
	test_elementwise();
	test_softmax();
	test_grad_pairs();
	test_flatten_reshape();
	test_transpose_squeeze();
	test_concat_slice_identity();
	test_dropout_cast();
	test_sum_to();
	test_losses();
	test_updates();
	test_arity_constant();
	ir_graph_free(G);
	ir_ctx_free(C);
	return t_finish("test_infer");
}
