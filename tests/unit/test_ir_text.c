/* test_ir_text.c: unit tests of the textual IR (ir/print.c, ir/parse.c) and the verifier.
 *
 * Graphs built with the builders (every attribute kind, LNS types, Dropout's two outputs,
 * roles and links, update nodes, names that need quotes, data of every dtype, and what the
 * real passes make of an MLP) must print, parse and print to the same text. The files
 * tests/ir/<name>.ir are in canonical form: parse then print gives each file back. Malformed
 * texts fail with one diagnostic at the right line and column; random mutations of valid
 * texts never crash, and what the parser accepts prints to a text that parses to itself. The
 * verifier accepts what the builders make and names the node or value of each breakage.
 */
#include "ir/ir.h"
#include "passes/passes.h"
#include "testlib.h"

#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static IrCtx *C;

/* ---- builders ---- */

static const IrType *ty(IrDType dt, int rank, ...)
{
	int64_t d[IR_MAX_RANK];
	va_list ap;
	va_start(ap, rank);
	for (int i = 0; i < rank; i++)
		d[i] = va_arg(ap, int);
	va_end(ap);
	return ir_type(C, dt, rank, d);
}

static const IrType *lns(const char *fmt, const IrType *like)
{
	LnsFormat f;
	if (lns_format_parse(fmt, &f))
		return NULL;
	return ir_type_with_format(C, like, f);
}

static IrValue *val(IrGraph *g, const char *name, const IrType *t, IrRole r, const void *init)
{
	IrValue *v = ir_value_new(g, name, t, r, init, NULL);
	CHECK_MSG(v != NULL, "value %s: %s", name, ir_diag_text(C));
	return v;
}

static IrNode *node(IrGraph *g, IrOp op, const char *name, const IrAttrs *a, int nin, ...)
{
	IrValue *in[8];
	va_list ap;
	va_start(ap, nin);
	for (int i = 0; i < nin; i++)
		in[i] = va_arg(ap, IrValue *);
	va_end(ap);
	IrNode *n = ir_build(g, op, name, nin, in, a, NULL);
	CHECK_MSG(n != NULL, "node %s: %s", name, ir_diag_text(C));
	if (!n) {
		ir_diag_print(C, stderr);
		exit(1); /* the graph builders below rely on every node */
	}
	return n;
}

#define OP(g, op, name, a, ...) node(g, op, name, a, __VA_ARGS__)->out[0]

static void output(IrGraph *g, IrValue *v)
{
	v->is_output = 1;
	ir_vec_push(&g->outputs, v);
}

static IrAttrs gemm(float alpha, float beta, int ta, int tb)
{
	return (IrAttrs){.gemm = {alpha, beta, ta, tb}};
}

static IrAttrs axis(int ax, int legacy)
{
	return (IrAttrs){.axis = {ax, legacy}};
}

/* ---- graphs ---- */

/* Flatten, Gemm with inline weights, Relu, LeakyRelu, Softmax. */
static IrGraph *g_mlp(int with_softmax)
{
	IrGraph *g = ir_graph_new(C, "mlp", "mlp.onnx");
	float w1[12], b1[3] = {0.5f, -0.25f, 1e-3f}, w2[6];
	for (int i = 0; i < 12; i++)
		w1[i] = (float)i * 0.25f - 1.0f;
	for (int i = 0; i < 6; i++)
		w2[i] = 1.0f / (float)(i + 3);
	g->opset = 13;
	IrValue *x = val(g, "input", ty(IR_DT_F32, 4, 4, 1, 2, 2), IR_ROLE_INPUT, NULL);
	IrValue *W1 = val(g, "fc1.weight", ty(IR_DT_F32, 2, 3, 4), IR_ROLE_PARAM, w1);
	IrValue *B1 = val(g, "fc1.bias", ty(IR_DT_F32, 1, 3), IR_ROLE_PARAM, b1);
	IrValue *W2 = val(g, "fc2.weight", ty(IR_DT_F32, 2, 2, 3), IR_ROLE_PARAM, w2);
	IrAttrs a1 = axis(1, 0), ga = gemm(1, 1, 0, 1), gb = gemm(0.5f, 0, 0, 1);
	IrAttrs lr = {.alpha = {0.01f}};
	IrValue *f = OP(g, IR_OP_FLATTEN, "flatten", &a1, 1, x);
	IrValue *h = OP(g, IR_OP_GEMM, "fc1", &ga, 3, f, W1, B1);
	IrValue *r = OP(g, IR_OP_RELU, "relu", NULL, 1, h);
	IrValue *l = OP(g, IR_OP_LEAKY_RELU, "leaky", &lr, 1, r);
	IrValue *o = OP(g, IR_OP_GEMM, "fc2", &gb, 2, l, W2);
	output(g, with_softmax ? OP(g, IR_OP_SOFTMAX, "softmax", &a1, 1, o) : o);
	return g;
}

/* Every attribute kind and most forward ops; Dropout's two outputs. */
static IrGraph *g_attrs(void)
{
	IrGraph *g = ir_graph_new(C, "attrs", NULL);
	g->opset = 17;
	IrValue *a = val(g, "a", ty(IR_DT_F32, 3, 2, 3, 4), IR_ROLE_INPUT, NULL);
	IrValue *b = val(g, "b", ty(IR_DT_F32, 1, 4), IR_ROLE_INPUT, NULL);
	IrValue *w = val(g, "w", ty(IR_DT_F32, 2, 4, 5), IR_ROLE_PARAM, NULL);
	IrAttrs tp = {.perm = {3, {2, 0, 1}}}, rs = {.shape = {2, {8, 3}}};
	IrAttrs us = {.axes = {2, {0, 2}}}, sq0 = {.axes = {0, {0}}}, c0 = axis(0, 0);
	IrAttrs sl = {.slice = {0, 2, 10}}, cs = {.cast = {IR_DT_I32}}, ls = axis(2, 1);
	IrAttrs fl = axis(3, 0), dr = {.dropout = {0.25f, 1}}, st = {.shape = {2, {1, 5}}};
	IrValue *t = OP(g, IR_OP_TRANSPOSE, "t", &tp, 1, a);
	IrValue *r = OP(g, IR_OP_RESHAPE, "r", &rs, 1, t);
	IrValue *u = OP(g, IR_OP_UNSQUEEZE, "u", &us, 1, r);
	IrValue *s = OP(g, IR_OP_SQUEEZE, "s", &us, 1, u);
	IrValue *s0 = OP(g, IR_OP_SQUEEZE, "s0", &sq0, 1, u);
	IrValue *c = OP(g, IR_OP_CONCAT, "c", &c0, 3, s, s0, s);
	IrValue *cut = OP(g, IR_OP_SLICE, "cut", &sl, 1, c);
	output(g, OP(g, IR_OP_CAST, "cast", &cs, 1, cut));
	IrValue *e = OP(g, IR_OP_ADD, "add", NULL, 2, a, b);
	e = OP(g, IR_OP_SUB, "sub", NULL, 2, e, b);
	e = OP(g, IR_OP_MUL, "mul", NULL, 2, b, e);
	e = OP(g, IR_OP_DIV, "div", NULL, 2, e, a);
	e = OP(g, IR_OP_NEG, "neg", NULL, 1, e);
	e = OP(g, IR_OP_SIGMOID, "sig", NULL, 1, e);
	e = OP(g, IR_OP_TANH, "tanh", NULL, 1, e);
	e = OP(g, IR_OP_IDENTITY, "id", NULL, 1, e);
	IrValue *mm = OP(g, IR_OP_MATMUL, "mm", NULL, 2, e, w);
	IrValue *lsm = OP(g, IR_OP_LOG_SOFTMAX, "lsm", &ls, 1, mm);
	IrValue *f = OP(g, IR_OP_FLATTEN, "f", &fl, 1, lsm);
	IrNode *d = node(g, IR_OP_DROPOUT, "drop", &dr, 1, f);
	output(g, OP(g, IR_OP_DROPOUT_GRAD, "dg", &dr, 2, d->out[0], d->out[1]));
	output(g, OP(g, IR_OP_SUM_TO, "sumto", &st, 1, mm));
	return g;
}

/* The convolutional ops and their gradients: Conv (plain, depthwise with strides, dilations
 * and asymmetric pads, no bias), BatchNormalization's five outputs with running statistics as
 * state values of no parameter, the pools, Pad (crop and grow), Clip with open bounds, the
 * gradient ops and the running-statistic Assign. */
static IrGraph *g_cnn(void)
{
	IrGraph *g = ir_graph_new(C, "cnn", "cnn.onnx");
	g->opset = 15;
	float mean0[4] = {0, 0.5f, -1, 2}, var0[4] = {1, 1, 0.25f, 4};
	IrValue *x = val(g, "x", ty(IR_DT_F32, 4, 2, 3, 8, 8), IR_ROLE_INPUT, NULL);
	IrValue *w = val(g, "w", ty(IR_DT_F32, 4, 4, 3, 3, 3), IR_ROLE_PARAM, NULL);
	IrValue *b = val(g, "b", ty(IR_DT_F32, 1, 4), IR_ROLE_PARAM, NULL);
	IrValue *dw = val(g, "dw", ty(IR_DT_F32, 4, 4, 1, 3, 2), IR_ROLE_PARAM, NULL);
	IrValue *sc = val(g, "bn.scale", ty(IR_DT_F32, 1, 4), IR_ROLE_PARAM, NULL);
	IrValue *bb = val(g, "bn.bias", ty(IR_DT_F32, 1, 4), IR_ROLE_PARAM, NULL);
	IrValue *rm = val(g, "bn.running_mean", ty(IR_DT_F32, 1, 4), IR_ROLE_STATE, mean0);
	IrValue *rv = val(g, "bn.running_var", ty(IR_DT_F32, 1, 4), IR_ROLE_STATE, var0);
	IrAttrs cv = {.conv = {{3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, {0, 0}}};
	IrAttrs dc = {.conv = {{3, 2}, {2, 1}, {2, 3}, {2, 0, 1, 3}, 4, {0, 0}}};
	IrAttrs bn = {.bn = {1e-5f, 0.9f, 1}};
	IrAttrs mp = {.pool = {{2, 2}, {2, 2}, {1, 1}, {0, 0, 1, 1}, 1, 0, {0, 0}}};
	IrAttrs ap = {.pool = {{3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 0, 1, {0, 0}}};
	IrAttrs gp = {.pool = {{4, 4}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 0, 0, {0, 0}}};
	IrAttrs pd = {.pad = {4, {0, 0, 1, -1, 0, 0, 2, 3}, 0.5f}};
	IrAttrs cl = {.clip = {-FLT_MAX, 6.0f}}, cl0 = {.clip = {0.0f, FLT_MAX}};
	IrValue *y = OP(g, IR_OP_CONV, "conv", &cv, 3, x, w, b);
	IrNode *bnn = node(g, IR_OP_BATCH_NORM, "bn", &bn, 5, y, sc, bb, rm, rv);
	IrValue *z = bnn->out[0];
	IrValue *d = OP(g, IR_OP_CONV, "dwconv", &dc, 2, z, dw);
	IrValue *r = OP(g, IR_OP_CLIP, "relu6", &cl, 1, d);
	IrValue *m = OP(g, IR_OP_MAX_POOL, "maxpool", &mp, 1, z);
	IrValue *a = OP(g, IR_OP_AVG_POOL, "avgpool", &ap, 1, m);
	output(g, OP(g, IR_OP_GLOBAL_AVG_POOL, "gap", &gp, 1, m));
	output(g, OP(g, IR_OP_GLOBAL_MAX_POOL, "gmp", &gp, 1, m));
	output(g, OP(g, IR_OP_PAD, "pad", &pd, 1, x));
	output(g, OP(g, IR_OP_CLIP, "clip0", &cl0, 1, r));
	output(g, a);
	/* gradients, as autodiff would build them, with dY stand-ins */
	IrValue *dy = val(g, "dy", y->type, IR_ROLE_INPUT, NULL);
	IrValue *dm = val(g, "dm", m->type, IR_ROLE_INPUT, NULL);
	IrValue *da = val(g, "da", a->type, IR_ROLE_INPUT, NULL);
	IrAttrs cvx = cv, apx = ap;
	cvx.conv.xhw[0] = cvx.conv.xhw[1] = 8;
	apx.pool.xhw[0] = apx.pool.xhw[1] = 4;
	IrNode *gr[] = {
		node(g, IR_OP_CONV_GRAD_X, "conv/grad_x", &cvx, 2, dy, w),
		node(g, IR_OP_CONV_GRAD_W, "conv/grad_w", &cv, 2, dy, x),
		node(g, IR_OP_BATCH_NORM_GRAD, "bn/grad", &bn, 5, dy, y, sc, bnn->out[3],
		     bnn->out[4]),
		node(g, IR_OP_MAX_POOL_GRAD, "maxpool/grad", &mp, 2, dm, z),
		node(g, IR_OP_AVG_POOL_GRAD, "avgpool/grad", &apx, 1, da),
		node(g, IR_OP_CLIP_GRAD, "relu6/grad", &cl, 2, d, d),
	};
	for (size_t i = 0; i < sizeof gr / sizeof gr[0]; i++) {
		gr[i]->phase = IR_PHASE_BWD;
		for (int k = 0; k < gr[i]->nout; k++) {
			gr[i]->out[k]->role = IR_ROLE_GRAD;
			output(g, gr[i]->out[k]);
		}
	}
	node(g, IR_OP_ASSIGN, "bn/assign_mean", NULL, 2, rm, bnn->out[1])->phase = IR_PHASE_UPDATE;
	node(g, IR_OP_ASSIGN, "bn/assign_var", NULL, 2, rv, bnn->out[2])->phase = IR_PHASE_UPDATE;
	return g;
}

/* A training graph as the passes make it: LNS formats, loss, backward, three optimizers. */
static IrGraph *g_train(void)
{
	IrGraph *g = ir_graph_new(C, "train", "train.onnx");
	float w0[6] = {0.1f, -0.2f, 0.3f, -0.4f, 0.5f, -0.6f}, b0[2] = {0, 0};
	const IrType *wt = ty(IR_DT_F32, 2, 2, 3), *bt = ty(IR_DT_F32, 1, 2);
	IrValue *x = val(g, "x", ty(IR_DT_F32, 2, 4, 3), IR_ROLE_INPUT, NULL);
	IrValue *y = val(g, "y", ty(IR_DT_I64, 1, 4), IR_ROLE_LABEL, NULL);
	IrValue *w = ir_value_new(g, "w", lns("lns12g128:rn:static:uf=min", wt), IR_ROLE_PARAM,
				  w0, wt);
	IrValue *b = val(g, "b", bt, IR_ROLE_PARAM, b0);
	IrValue *b2 = val(g, "b2", bt, IR_ROLE_PARAM, b0);
	IrAttrs g1 = gemm(1, 1, 0, 1), gw = gemm(1, 0, 1, 0), sb = {.shape = {1, {2}}};
	IrNode *wv = node(g, IR_OP_WEIGHT_VIEW, "view/w", NULL, 1, w);
	wv->out[0]->type = lns("lns8g8:rn:static:uf=min", wv->out[0]->type);
	IrNode *q = node(g, IR_OP_QUANTIZE, "quant/x", NULL, 1, x);
	q->out[0]->type = lns("lns8g8", q->out[0]->type);
	IrValue *h = OP(g, IR_OP_GEMM, "fc", &g1, 3, q->out[0], wv->out[0], b);
	IrValue *h2 = OP(g, IR_OP_ADD, "add", NULL, 2, h, b2);
	output(g, h2);
	IrNode *ln = node(g, IR_OP_XENT, "loss", NULL, 2, h2, y);
	ln->phase = IR_PHASE_LOSS;
	ln->out[0]->role = IR_ROLE_LOSS;
	g->loss = ln->out[0];
	IrNode *dn = node(g, IR_OP_XENT_GRAD, "loss/grad", NULL, 2, h2, y);
	IrValue *dh = dn->out[0];
	dn->phase = IR_PHASE_BWD;
	dh->role = IR_ROLE_GRAD;
	dh->type = lns("lns5g2:sr:delayed:uf=zero", dh->type);
	h2->grad = h->grad = dh; /* shared: Add passes the gradient through */
	IrValue *ins[] = {dh, q->out[0]};
	IrNode *dw = ir_build(g, IR_OP_GEMM, "fc/grad", 2, ins, &gw, NULL);
	IrNode *db = node(g, IR_OP_SUM_TO, "fc/grad.b", &sb, 1, dh);
	IrNode *db2 = node(g, IR_OP_RESHAPE, "add/grad", &sb, 1, db->out[0]);
	IrNode *gs[] = {dw, db, db2};
	IrValue *ps[] = {w, b, b2};
	for (int i = 0; i < 3; i++) {
		gs[i]->phase = IR_PHASE_BWD;
		gs[i]->out[0]->role = IR_ROLE_PGRAD;
		gs[i]->out[0]->param = ps[i];
		ps[i]->grad = gs[i]->out[0];
	}
	dw->out[0]->type = lns("lns5g2:sr:delayed:uf=zero", dw->out[0]->type);
	IrValue *v = val(g, "madam.v/w", wt, IR_ROLE_STATE, NULL);
	IrValue *m = val(g, "adam.m/b", bt, IR_ROLE_STATE, NULL);
	IrValue *v2 = val(g, "adam.v/b", bt, IR_ROLE_STATE, NULL);
	IrValue *mo = val(g, "sgd.momentum/b2", bt, IR_ROLE_STATE, NULL);
	v->param = w;
	m->param = v2->param = b;
	mo->param = b2;
	LnsMadamParams mp = lns_madam_defaults();
	IrAttrs om = {.opt = {.lr = mp.lr, .beta2 = mp.beta2, .p_scale = mp.p_scale,
			      .g_bound = mp.g_bound}};
	IrAttrs oa = {.opt = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
			      .weight_decay = 5e-4f}};
	IrAttrs os = {.opt = {.lr = 0.1f, .momentum = 0.9f}};
	node(g, IR_OP_MADAM, "update/w", &om, 3, w, dw->out[0], v)->phase = IR_PHASE_UPDATE;
	node(g, IR_OP_ADAM, "update/b", &oa, 4, b, db->out[0], m, v2)->phase = IR_PHASE_UPDATE;
	node(g, IR_OP_SGD, "update/b2", &os, 3, b2, db2->out[0], mo)->phase = IR_PHASE_UPDATE;
	return g;
}

/* The gradient helpers and losses not in g_train. */
static IrGraph *g_grads(void)
{
	IrGraph *g = ir_graph_new(C, "grads", NULL);
	const IrType *t = ty(IR_DT_F32, 2, 3, 5);
	IrValue *dy = val(g, "dy", t, IR_ROLE_INPUT, NULL);
	IrValue *y = val(g, "y", t, IR_ROLE_INPUT, NULL);
	IrAttrs al = {.alpha = {-0.5f}}, a1 = axis(1, 0), a0 = axis(0, 1);
	IrValue *r[8];
	r[0] = OP(g, IR_OP_RELU_GRAD, "rg", NULL, 2, dy, y);
	r[1] = OP(g, IR_OP_LEAKY_RELU_GRAD, "lrg", &al, 2, r[0], y);
	r[2] = OP(g, IR_OP_SIGMOID_GRAD, "sg", NULL, 2, r[1], y);
	r[3] = OP(g, IR_OP_TANH_GRAD, "tg", NULL, 2, r[2], y);
	r[4] = OP(g, IR_OP_SOFTMAX_GRAD, "smg", &a1, 2, r[3], y);
	r[5] = OP(g, IR_OP_LOG_SOFTMAX_GRAD, "lsmg", &a0, 2, r[4], y);
	r[6] = OP(g, IR_OP_MSE, "mse", NULL, 2, r[5], y);
	r[7] = OP(g, IR_OP_MSE_GRAD, "mseg", NULL, 2, r[5], y);
	for (int i = 0; i < 8; i++)
		r[i]->role = i & 1 ? IR_ROLE_GRAD : IR_ROLE_ACT;
	output(g, r[6]);
	output(g, r[7]);
	return g;
}

/* Names that need quotes (ONNX allows anything), node names with escapes. */
static IrGraph *g_names(void)
{
	IrGraph *g = ir_graph_new(C, "names \"quoted\"\t\\", NULL);
	IrValue *x = val(g, "/fc1/Gemm_output_0", ty(IR_DT_F32, 1, 2), IR_ROLE_INPUT, NULL);
	IrValue *a = val(g, "123", ty(IR_DT_F32, 1, 2), IR_ROLE_INPUT, NULL);
	IrValue *u = val(g, "caf\xc3\xa9 cr\xc3\xa8me", ty(IR_DT_F32, 1, 2), IR_ROLE_INPUT, NULL);
	IrValue *in[2] = {x, a};
	const char *on[1] = {"sum\n\"1\"\x01\x7f"};
	IrNode *n = ir_build(g, IR_OP_ADD, "add \"x\"\\", 2, in, NULL, on);
	CHECK(n != NULL);
	IrValue *in2[2] = {n->out[0], u};
	const char *on2[1] = {"prod"};
	IrNode *m = ir_build(g, IR_OP_MUL, "", 2, in2, NULL, on2); /* an empty node name */
	CHECK(m != NULL);
	IrValue *p = m->out[0];
	IrValue *q = OP(g, IR_OP_RELU, "onnx::Relu_7", NULL, 1, p);
	output(g, q);
	output(g, x);
	return g;
}

/* Initial data of every dtype, float specials, non-canonical data types, big data. */
static IrGraph *g_data(void)
{
	IrGraph *g = ir_graph_new(C, "data", NULL);
	int8_t i8[3] = {-128, 0, 127};
	int16_t i16[2] = {-32768, 32767};
	int32_t i32[2] = {INT32_MIN, INT32_MAX};
	int64_t i64[3] = {INT64_MIN, -1, INT64_MAX};
	uint8_t u8[2] = {0, 255}, bl[4] = {1, 0, 0, 1};
	uint16_t u16[1] = {65535};
	uint32_t u32[1] = {4294967295u};
	uint64_t u64[2] = {0, UINT64_MAX};
	float f[8] = {0.1f, -0.0f, INFINITY, -INFINITY, 1e-45f, 3.4028235e38f, 1.17549435e-38f,
		      0.333333343f};
	double f64[2] = {0.1, -1e300};
	static float big[1000];
	for (int i = 0; i < 1000; i++)
		big[i] = (float)i;
	val(g, "i8", ty(IR_DT_I8, 1, 3), IR_ROLE_CONST, i8);
	val(g, "i16", ty(IR_DT_I16, 1, 2), IR_ROLE_CONST, i16);
	val(g, "i32", ty(IR_DT_I32, 1, 2), IR_ROLE_CONST, i32);
	val(g, "i64", ty(IR_DT_I64, 1, 3), IR_ROLE_CONST, i64);
	val(g, "u8", ty(IR_DT_U8, 1, 2), IR_ROLE_CONST, u8);
	val(g, "u16", ty(IR_DT_U16, 1, 1), IR_ROLE_CONST, u16);
	val(g, "u32", ty(IR_DT_U32, 1, 1), IR_ROLE_CONST, u32);
	val(g, "u64", ty(IR_DT_U64, 1, 2), IR_ROLE_CONST, u64);
	val(g, "bool", ty(IR_DT_BOOL, 2, 2, 2), IR_ROLE_CONST, bl);
	val(g, "f32", ty(IR_DT_F32, 2, 2, 4), IR_ROLE_CONST, f);
	val(g, "scalar", ty(IR_DT_F32, 0), IR_ROLE_CONST, f);
	val(g, "empty", ty(IR_DT_F32, 2, 0, 3), IR_ROLE_CONST, f);
	ir_value_new(g, "f64", ty(IR_DT_F32, 1, 2), IR_ROLE_CONST, f64, ty(IR_DT_F64, 1, 2));
	ir_value_new(g, "lnsp", lns("lns4g1:sr:current:uf=sr", ty(IR_DT_F32, 1, 3)),
		     IR_ROLE_PARAM, f, ty(IR_DT_F32, 1, 3));
	IrValue *bg = val(g, "big", ty(IR_DT_F32, 2, 10, 100), IR_ROLE_PARAM, big);
	output(g, bg);
	return g;
}

/* ---- round trips ---- */

static int op_seen[IR_OP_COUNT];

/* print -> parse -> print gives the same text, and both graphs verify. */
static void round_trip(IrGraph *g, const char *what)
{
	for (int i = 0; i < g->nodes.n; i++)
		op_seen[IR_NODE(g, i)->op] = 1;
	ir_diag_clear(C);
	CHECK_MSG(ir_verify(g) == 0, "%s: verify: %s", what, ir_diag_text(C));
	char *s1 = ir_print_str(g);
	IrGraph *g2 = ir_parse(C, s1, what);
	CHECK_MSG(g2 != NULL, "%s: parse: %s\n%s", what, ir_diag_text(C), s1);
	if (g2) {
		char *s2 = ir_print_str(g2);
		CHECK_MSG(!strcmp(s1, s2), "%s: round trip differs:\n%s---\n%s", what, s1, s2);
		CHECK_MSG(ir_verify(g2) == 0, "%s: verify after parse: %s", what, ir_diag_text(C));
		CHECK(g2->values.n <= g->values.n && g2->nodes.n == g->nodes.n);
		free(s2);
		ir_graph_free(g2);
	}
	if (getenv("TEST_IR_TEXT_SHOW"))
		fputs(s1, stdout);
	free(s1);
	ir_graph_free(g);
}

static IrNode *find(IrGraph *g, const char *name)
{
	for (int i = 0; i < g->nodes.n; i++)
		if (!strcmp(IR_NODE(g, i)->name, name))
			return IR_NODE(g, i);
	return NULL;
}

static void test_round_trips(void)
{
	round_trip(g_mlp(1), "mlp");
	round_trip(g_attrs(), "attrs");
	round_trip(g_train(), "train");
	round_trip(g_grads(), "grads");
	round_trip(g_names(), "names");
	round_trip(g_data(), "data");
	round_trip(g_cnn(), "cnn");
	for (int op = 0; op < IR_OP_COUNT; op++) /* a new op needs a line here (not Constant) */
		CHECK_MSG(op_seen[op] || op == IR_OP_CONSTANT, "op %s is in no round-trip graph",
			  ir_op_name((IrOp)op));
}

/* Details the text must keep: data bits, types, roles, links, attributes. */
static void test_parsed_details(void)
{
	IrGraph *g = g_data();
	char *s = ir_print_str(g);
	IrGraph *h = ir_parse(C, s, "data");
	CHECK(h != NULL);
	if (h) {
		IrValue *f = ir_graph_value(h, "f32"), *u = ir_graph_value(h, "u64");
		IrValue *big = ir_graph_value(h, "big"), *d = ir_graph_value(h, "f64");
		CHECK(f && !memcmp(f->init, ir_graph_value(g, "f32")->init, 32));
		CHECK(u && ((uint64_t *)u->init)[1] == UINT64_MAX);
		CHECK(big && big->init && ((float *)big->init)[999] == 0.0f); /* size only */
		CHECK(d && d->init_type->dt == IR_DT_F64 && ((double *)d->init)[1] == -1e300);
		CHECK(strstr(s, "= <4000 bytes>") && strstr(s, "= f64 [0.1"));
		ir_graph_free(h);
	}
	free(s);
	ir_graph_free(g);
	g = g_train();
	s = ir_print_str(g);
	h = ir_parse(C, s, "train");
	CHECK(h != NULL);
	if (h) {
		IrValue *w = ir_graph_value(h, "w"), *dh = ir_graph_value(h, "loss/grad");
		IrValue *st = ir_graph_value(h, "madam.v/w");
		CHECK(w && w->type->dt == IR_DT_LNS && w->type->fmt.bits == 12 &&
		      w->type->fmt.scale == LNS_SCALE_STATIC);
		CHECK(w && w->grad && w->grad->role == IR_ROLE_PGRAD && w->grad->param == w);
		CHECK(dh && ir_graph_value(h, "fc")->grad == dh && ir_graph_value(h, "add")->grad == dh);
		CHECK(dh && dh->type->fmt.round == LNS_ROUND_STOCHASTIC);
		CHECK(st && st->param == w && st->role == IR_ROLE_STATE);
		CHECK(h->loss && h->loss->role == IR_ROLE_LOSS && h->labels &&
		      !strcmp(h->labels->name, "y"));
		IrNode *u = IR_NODE(h, h->nodes.n - 2);
		CHECK(u->op == IR_OP_ADAM && u->phase == IR_PHASE_UPDATE &&
		      u->attr.opt.eps == 1e-8f && u->attr.opt.weight_decay == 5e-4f);
	}
	ir_graph_free(h);
	free(s);
	ir_graph_free(g);
}

static int same_field(const IrAttrField *f, const IrAttrs *a, const IrAttrs *b)
{
	const char *pa = (const char *)a + f->off, *pb = (const char *)b + f->off;
	int n;
	switch (f->type) {
	case IR_AF_FLOAT: return !memcmp(pa, pb, sizeof(float));
	case IR_AF_I64: return !memcmp(pa, pb, sizeof(int64_t));
	case IR_AF_DTYPE: return !memcmp(pa, pb, sizeof(IrDType));
	case IR_AF_INTS:
	case IR_AF_I64S:
		n = ir_attr_list_len(f, a);
		size_t esz = f->type == IR_AF_INTS ? sizeof(int) : sizeof(int64_t);
		return n >= 0 && n == ir_attr_list_len(f, b) && !memcmp(pa, pb, (size_t)n * esz);
	default: return !memcmp(pa, pb, sizeof(int));
	}
}

/* The CNN attributes come back field for field: fixed lists, Pad's 2 per dim, FLT_MAX. */
static void test_parsed_cnn(void)
{
	IrGraph *g = g_cnn();
	char *s = ir_print_str(g);
	IrGraph *h = ir_parse(C, s, "cnn");
	CHECK_MSG(h != NULL, "%s", ir_diag_text(C));
	for (int i = 0; h && i < g->nodes.n; i++) {
		const IrNode *a = IR_NODE(g, i), *b = IR_NODE(h, i);
		int nf;
		const IrAttrField *fl = ir_attr_fields(ir_op_info[a->op].attr, &nf);
		for (int k = 0; k < nf; k++) /* field by field: other union bytes are not set */
			CHECK_MSG(same_field(&fl[k], &a->attr, &b->attr), "node %s, attribute %s",
				  a->name, fl[k].name);
	}
	IrNode *clip = h ? find(h, "relu6") : NULL, *pad = h ? find(h, "pad") : NULL;
	CHECK(clip && clip->attr.clip.min == -FLT_MAX && clip->attr.clip.max == 6.0f);
	CHECK(pad && pad->attr.pad.n == 4 && pad->attr.pad.pads[3] == -1 &&
	      pad->attr.pad.pads[7] == 3 && pad->attr.pad.value == 0.5f);
	ir_graph_free(h);
	free(s);
	ir_graph_free(g);
}

/* The real passes' output round-trips and verifies. */
static void test_pipeline_graphs(void)
{
	const char *recipes[] = {"lns-madam", "fp32"};
	for (int r = 0; r < 2; r++) {
		IrGraph *g = g_mlp(0);
		PassOptions o;
		pass_options_default(&o);
		o.recipe = recipes[r];
		ir_diag_clear(C);
		int rc = pass_canon(g, &o) || pass_autodiff(g, &o) || pass_optimize(g, &o) ||
			 pass_precision(g, &o);
		CHECK_MSG(rc == 0, "%s passes: %s", recipes[r], ir_diag_text(C));
		if (rc) {
			ir_graph_free(g);
			continue;
		}
		char *s = ir_print_str(g);
		CHECK_MSG(strstr(s, "@update") && strstr(s, " pgrad for %fc1.weight grad_of %fc1.weight"),
			  "%s", s);
		free(s);
		round_trip(g, recipes[r]);
	}
}

/* ---- canonical files ---- */

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
		free(s);
		s = NULL;
	}
	if (s)
		s[n] = 0;
	fclose(f);
	return s;
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The .ir files, sorted; *dir gets their folder. */
static int ir_files(char *dir, size_t n, char ***names)
{
	const char *src = getenv("LNSC_SRC");
	snprintf(dir, n, "%s%s", src ? src : "..", "/tests/ir");
	DIR *d = opendir(dir);
	int k = 0;
	*names = NULL;
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));) {
		size_t l = strlen(e->d_name);
		if (l < 4 || strcmp(e->d_name + l - 3, ".ir"))
			continue;
		*names = realloc(*names, sizeof(char *) * (size_t)(k + 1));
		(*names)[k++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(*names, (size_t)k, sizeof(char *), by_str);
	return k;
}

/* The text after the leading '#' lines that say what a file is for. */
static const char *body(const char *text)
{
	while (*text == '#') {
		const char *nl = strchr(text, '\n');
		text = nl ? nl + 1 : text + strlen(text);
	}
	return text;
}

static void test_files(void)
{
	char dir[1024], path[2048], **names;
	int n = ir_files(dir, sizeof dir, &names);
	CHECK_MSG(n >= 4, "found %d .ir files in %s", n, dir);
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		char *text = read_file(path);
		CHECK_MSG(text != NULL, "cannot read %s", path);
		ir_diag_clear(C);
		IrGraph *g = text ? ir_parse(C, text, names[i]) : NULL;
		CHECK_MSG(g != NULL, "%s: %s", names[i], ir_diag_text(C));
		if (g) {
			char *out = ir_print_str(g);
			CHECK_MSG(!strcmp(out, body(text)), "%s is not canonical; it prints as:\n%s",
				  names[i], out);
			CHECK_MSG(ir_verify(g) == 0, "%s: %s", names[i], ir_diag_text(C));
			free(out);
			ir_graph_free(g);
		}
		free(text);
		free(names[i]);
	}
	free(names);
}

/* ---- errors ---- */

#define HEAD "graph \"t\" opset 13 {\n\tinput %x : f32[2,3]\n"

static const struct {
	const char *text, *want;
} bad_texts[] = {
	{HEAD "\t%y = Foo(%x) @fwd\n}\n", "t.ir:3:7: unknown op 'Foo'"},
	{HEAD "\t%y = Relu(%z) : f32[2,3] @fwd\n}\n", "t.ir:3:12: undefined value %z"},
	{HEAD "\t%x = Relu(%x) : f32[2,3] @fwd\n}\n",
	 "t.ir:3:2: redefinition of %x (first defined on line 2)"},
	{HEAD "\tinput %w : f33[2]\n}\n", "t.ir:3:13: unknown type 'f33'"},
	{HEAD "\tparam %w : lns99g2[2]\n}\n", "t.ir:3:13: bad LNS format 'lns99g2'"},
	{HEAD "\tinput %w : f32[2,-1]\n}\n", "t.ir:3:19: integer -1 out of range"},
	{HEAD "\tinput %w : f32[1,1,1,1,1,1,1,1,1]\n}\n", "t.ir:3:33: more than 8 dimensions"},
	{HEAD "\t%y = Transpose(%x) {perm=[0, 0]} : f32[3,2] @fwd\n}\n",
	 "t.ir:3:21: Transpose: perm is not a permutation of 0..1"},
	{HEAD "\t%y = LeakyRelu(%x) {beta=1} : f32[2,3] @fwd\n}\n",
	 "t.ir:3:22: LeakyRelu has no attribute 'beta'"},
	{HEAD "\t%y = LeakyRelu(%x) : f32[2,3] @fwd\n}\n",
	 "t.ir:3:21: LeakyRelu needs its attributes {alpha=...}"},
	{HEAD "\t%y = Relu(%x) {alpha=1} : f32[2,3] @fwd\n}\n", "t.ir:3:16: Relu takes no attributes"},
	{HEAD "\t%y = Softmax(%x) {axis=1} : f32[2,3] @fwd\n}\n",
	 "t.ir:3:26: missing attribute 'legacy' of Softmax"},
	{HEAD "\t%y = Softmax(%x) {axis=1, axis=1} : f32[2,3] @fwd\n}\n",
	 "t.ir:3:28: attribute 'axis' given twice"},
	{HEAD "\t%y, %m = Dropout(%x) {ratio=1.5, training=0} : f32[2,3], bool[2,3] @fwd\n}\n",
	 "t.ir:3:23: Dropout: ratio 1.5 out of range [0,1)"},
	{HEAD "\t%y = LeakyRelu(%x) {alpha=0.1x} : f32[2,3] @fwd\n}\n",
	 "t.ir:3:28: malformed number"},
	{HEAD "\t%y = Relu(%x) : f32[3,2] @fwd\n}\n",
	 "t.ir:3:18: type of %y is f32[3,2], inferred f32[2,3]"},
	{HEAD "\t%y = Relu(%x) : i64[2,3] @fwd\n}\n",
	 "t.ir:3:18: type of %y is i64[2,3], inferred f32[2,3]"},
	{HEAD "\tparam %w : f32[4,5]\n\t%y = Gemm(%x, %w) {alpha=1, beta=1, transA=0, transB=0}"
	      " : f32[2,5] @fwd \"g\"\n}\n",
	 "t.ir:4:7: node 'g' (Gemm): inner dimensions differ"},
	{HEAD "\t%y = Add(%x) : f32[2,3] @fwd\n}\n", "t.ir:3:7: Add takes 2 inputs, got 1"},
	{HEAD "\t%y = Dropout(%x) {ratio=0.5, training=0} : f32[2,3] @fwd\n}\n",
	 "t.ir:3:2: Dropout has 2 outputs, 1 named"},
	{HEAD "\t%y, %y = Dropout(%x) {ratio=0.5, training=0} : f32[2,3], bool[2,3] @fwd\n}\n",
	 "t.ir:3:6: %y is named twice"},
	{HEAD "\t%y = Clip(%x) {min=1, max=0} : f32[2,3] @fwd\n}\n",
	 "t.ir:3:16: Clip: min 1 must be <= max 0"},
	{HEAD "\t%y = Pad(%x) {pads=[0, 1, 1], value=0} : f32[3,5] @fwd\n}\n",
	 "t.ir:3:21: 'pads' needs a multiple of 2 entries, has 3"},
	{HEAD "\t%y = Pad(%x) {pads=[0], value=0} : f32[2,3] @fwd\n}\n",
	 "t.ir:3:21: 'pads' needs a multiple of 2 entries, has 1"},
	{HEAD "\t%y = Pad(%x) {pads=[99999999999, 0, 0, 0], value=0} : f32[2,3] @fwd\n}\n",
	 "t.ir:3:15: Pad: padded shape of more than"},
	{HEAD "\t%y = Pad(%x) {pads=[0, 1], value=0} : f32[2,4] @fwd\n}\n",
	 "t.ir:3:15: Pad: pads for 1 dims, input rank 2"},
	{HEAD "\t%y = MaxPool(%x) {kernel=[2], strides=[1, 1], dilations=[1, 1], pads=[0, 0, 0, 0],"
	      " ceil_mode=0, count_include_pad=0, xhw=[0, 0]} : f32[2,3] @fwd\n}\n",
	 "t.ir:3:27: 'kernel' needs 2 entries, has 1"},
	{HEAD "\t%y = MaxPool(%x) {kernel=[2, 2, 2]} : f32[2,3] @fwd\n}\n",
	 "t.ir:3:34: more than 2 entries"},
	{HEAD "\t%y = MaxPool(%x) {kernel=[2, 2], strides=[1, 1], dilations=[1, 1], pads=[0, 0, 0,"
	      " 0], ceil_mode=0, count_include_pad=0, xhw=[0, 0]} : f32[2,3] @fwd \"mp\"\n}\n",
	 "node 'mp' (MaxPool): X must be 4-D"},
	{HEAD "\t%y = Relu(%x) : f32[2,3]\n}\n", "t.ir:3:26: expected '@', found end of line"},
	{HEAD "\t%y = Relu(%x) : f32[2,3] @back\n}\n", "t.ir:3:28: unknown phase 'back'"},
	{HEAD "\t%y = Relu(%x) : f32[2,3] @fwd \"r\" junk\n}\n",
	 "t.ir:3:36: expected end of line, found 'junk'"},
	{HEAD "\tinputs %w : f32[2]\n}\n", "t.ir:3:2: unknown statement 'inputs'"},
	{HEAD "\tconst %c : i64[2] = [1, 2, 3]\n}\n", "t.ir:3:29: more than 2 elements"},
	{HEAD "\tconst %c : i64[2] = [1]\n}\n", "t.ir:3:22: 1 elements given, the type has 2"},
	{HEAD "\tconst %c : u8[1] = [256]\n}\n", "t.ir:3:22: integer 256 out of range (0..255)"},
	{HEAD "\tconst %c : f32[1] = [1e39]\n}\n", "t.ir:3:23: number out of range for f32"},
	{HEAD "\tconst %c : f32[2] = <4 bytes>\n}\n", "t.ir:3:23: the data is 8 bytes, not 4"},
	{HEAD "\tconst %c : f32[2] = 4\n}\n", "t.ir:3:22: expected '[', found '4'"},
	{HEAD "\tconst %c : f32[2] = f16 [1, 2]\n}\n", "t.ir:3:26: inline data of this type"},
	{HEAD "\tstate %s : f32[2,3] for %nope\n}\n", "t.ir:3:26: undefined value %nope"},
	{HEAD "\tinput %\"a\\qb\" : f32[2]\n}\n", "t.ir:3:11: unknown escape '\\q'"},
	{HEAD "\tinput %\"ab : f32[2]\n}\n", "t.ir:3:9: unterminated string"},
	{HEAD "\tinput % : f32[2]\n}\n", "t.ir:3:8: expected a name after '%'"},
	{HEAD "\toutput %x\n\toutput %x\n}\n", "t.ir:4:9: %x is an output already"},
	{HEAD "\tlabel %a : i64[2]\n\tlabel %b : i64[2]\n}\n",
	 "t.ir:4:8: a second label value (the first is %a)"},
	{HEAD "\t%y = Relu(%x) : f32[2,3] @fwd\n}\nfoo\n", "t.ir:5:1: unexpected 'foo' after the graph"},
	{HEAD, "t.ir:3:1: unexpected end of input: expected '}'"},
	{"graph \"t\" opset 13 {\n\tinput %x : f32[2,", "t.ir:2:19: expected a number, found end of input"},
	{"graph \"t opset 13 {\n}\n", "t.ir:1:7: unterminated string"},
	{"graph \"t\" opset 13\n}\n", "t.ir:1:19: expected '{', found end of line"},
	{"  # comment\n\ngrph \"t\"", "t.ir:3:1: expected 'graph', found 'grph'"},
	{"", "t.ir:1:1: expected 'graph', found end of input"},
};

static void test_errors(void)
{
	for (size_t i = 0; i < sizeof bad_texts / sizeof bad_texts[0]; i++) {
		ir_diag_clear(C);
		IrGraph *g = ir_parse(C, bad_texts[i].text, "t.ir");
		const char *d = ir_diag_text(C);
		CHECK_MSG(g == NULL, "case %zu parsed", i);
		CHECK_MSG(ir_error_status(C) == IR_ERR_INPUT, "case %zu: status %d", i,
			  (int)ir_error_status(C));
		CHECK_MSG(strstr(d, bad_texts[i].want) != NULL, "case %zu: want '%s', got '%s'", i,
			  bad_texts[i].want, d);
		ir_graph_free(g);
	}
}

/* ---- fuzzing ---- */

static uint32_t rng_state = 12345;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return n ? rng_state % n : 0;
}

/* One random edit of s (length *n, capacity enough for +64). */
static void mutate(char *s, size_t *n)
{
	static const char alphabet[] = "%[](){}:,=@\"\\\n\t #-.0123456789aefglnrsx_/";
	size_t at = rnd((uint32_t)*n + 1), len = rnd(8) + 1;
	switch (rnd(6)) {
	case 0: /* truncate */
		*n = at;
		break;
	case 1: /* delete a run */
		if (at + len > *n)
			len = *n - at;
		memmove(s + at, s + at + len, *n - at - len);
		*n -= len;
		break;
	case 2: /* insert a char */
		memmove(s + at + 1, s + at, *n - at);
		s[at] = alphabet[rnd(sizeof alphabet - 1)];
		(*n)++;
		break;
	case 3: /* replace a char, sometimes by any byte */
		if (at < *n)
			s[at] = rnd(4) ? alphabet[rnd(sizeof alphabet - 1)] : (char)(rnd(255) + 1);
		break;
	case 4: /* duplicate a run */
		if (at + len > *n)
			len = *n - at;
		memmove(s + at + len, s + at, *n - at);
		*n += len;
		break;
	default: { /* change a digit to a big or negative number */
		static const char *const nums[] = {"99999999999", "-1", "0", "1e30", "nan", "9"};
		const char *r = nums[rnd(6)];
		size_t rl = strlen(r);
		if (at < *n && s[at] >= '0' && s[at] <= '9') {
			memmove(s + at + rl, s + at + 1, *n - at - 1);
			memcpy(s + at, r, rl);
			*n += rl - 1;
		}
	}
	}
	s[*n] = 0;
}

static int fuzz_total, fuzz_accepted;

static void fuzz_one(const char *text, int iters)
{
	size_t cap = strlen(text) + 64 * 8 + 1;
	char *s = malloc(cap);
	for (int it = 0; it < iters; it++) {
		size_t n = strlen(text);
		memcpy(s, text, n + 1);
		for (int k = rnd(4) + 1; k > 0 && n + 64 < cap; k--)
			mutate(s, &n);
		ir_diag_clear(C);
		IrGraph *g = ir_parse(C, s, "fuzz.ir");
		fuzz_total++;
		if (!g) {
			const char *d = ir_diag_text(C);
			CHECK_MSG(ir_error_status(C) == IR_ERR_INPUT && !strncmp(d, "fuzz.ir:", 8),
				  "rejected without a positioned input error: '%s' for:\n%s", d, s);
			continue;
		}
		fuzz_accepted++;
		ir_verify(g); /* may fail; must not crash */
		char *p1 = ir_print_str(g);
		ir_diag_clear(C);
		IrGraph *h = ir_parse(C, p1, "again.ir");
		CHECK_MSG(h != NULL, "accepted text prints unparseably: %s\n%s", ir_diag_text(C), p1);
		if (h) {
			char *p2 = ir_print_str(h);
			CHECK_MSG(!strcmp(p1, p2), "print is not a fixed point:\n%s---\n%s", p1, p2);
			free(p2);
			ir_graph_free(h);
		}
		free(p1);
		ir_graph_free(g);
	}
	free(s);
}

/* Mutations of the built graphs' texts and of the files (TEST_IR_FUZZ mutants of each,
 * TEST_IR_SEED to vary them). */
static void test_fuzz(void)
{
	IrGraph *gs[] = {g_mlp(1), g_attrs(), g_train(), g_names(), g_data(), g_grads(), g_cnn()};
	int iters = getenv("TEST_IR_FUZZ") ? atoi(getenv("TEST_IR_FUZZ")) : 4000;
	if (getenv("TEST_IR_SEED"))
		rng_state = (uint32_t)strtoul(getenv("TEST_IR_SEED"), NULL, 10) | 1u;
	char dir[1024], path[2048], **names;
	for (int i = 0; i < (int)(sizeof gs / sizeof gs[0]); i++) {
		char *s = ir_print_str(gs[i]);
		fuzz_one(s, iters);
		free(s);
		ir_graph_free(gs[i]);
	}
	int n = ir_files(dir, sizeof dir, &names);
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		char *s = read_file(path);
		if (s)
			fuzz_one(s, iters);
		free(s);
		free(names[i]);
	}
	free(names);
	printf("fuzz: %d of %d mutated texts parsed\n", fuzz_accepted, fuzz_total);
}

/* ---- verifier ---- */

/* ir_verify fails and some diagnostic contains want. */
static void expect_broken(IrGraph *g, const char *want, const char *what)
{
	ir_diag_clear(C);
	int rc = ir_verify(g);
	const char *d = ir_diag_text(C);
	CHECK_MSG(rc == -1, "%s: verifier accepted it", what);
	CHECK_MSG(strstr(d, want) != NULL, "%s: want '%s' in:\n%s", what, want, d);
}

static void test_verifier(void)
{
	IrGraph *g = g_mlp(1);
	char buf[256];
	ir_diag_clear(C);
	CHECK_MSG(ir_verify(g) == 0, "%s", ir_diag_text(C));
	/* use before definition: swap fc1 and relu */
	void *t = g->nodes.v[1];
	g->nodes.v[1] = g->nodes.v[2];
	g->nodes.v[2] = t;
	expect_broken(g, "mlp.onnx: node 'relu' (Relu): uses 'fc1' before its definition",
		      "use-before-def");
	ir_graph_free(g);

	g = g_mlp(1);
	find(g, "fc2")->nin = 1;
	expect_broken(g, "node 'fc2' (Gemm): has 1 inputs (2..3)", "arity");
	ir_graph_free(g);

	g = g_attrs();
	find(g, "t")->attr.perm.perm[1] = 2;
	expect_broken(g, "node 't' (Transpose): perm is not a permutation of 0..2", "perm");
	ir_graph_free(g);

	g = g_attrs();
	find(g, "u")->attr.axes.axes[0] = 2;
	expect_broken(g, "node 'u' (Unsqueeze): axes are not sorted", "axes");
	ir_graph_free(g);

	g = g_mlp(1);
	IrValue *h = find(g, "fc1")->out[0];
	h->type = ty(IR_DT_F32, 2, 4, 5);
	snprintf(buf, sizeof buf, "node 'fc1' (Gemm): output 'fc1' has type f32[4,5], "
				  "inference gives f32[4,3]");
	expect_broken(g, buf, "shape");
	h->type = ty(IR_DT_I32, 2, 4, 3);
	expect_broken(g, "output 'fc1' has type i32[4,3]", "dtype");
	h->type = lns("lns8g8", ty(IR_DT_F32, 2, 4, 3)); /* a format the precision pass chose */
	ir_diag_clear(C);
	CHECK_MSG(ir_verify(g) == 0, "LNS output: %s", ir_diag_text(C));
	ir_graph_free(g);

	g = g_mlp(1);
	IrNode *relu = find(g, "relu"), *leaky = find(g, "leaky");
	leaky->out[0] = relu->out[0]; /* SSA: one value, two producers */
	expect_broken(g, "node 'leaky' (LeakyRelu): output 0 is 'relu', which says node 'relu'",
		      "ssa");
	CHECK(strstr(ir_diag_text(C), "defines 'relu' again (node 'relu' did)"));
	ir_graph_free(g);

	g = g_train();
	IrNode *u = find(g, "update/w");
	u->in[0] = ir_graph_value(g, "x");
	ir_recount_uses(g);
	expect_broken(g, "node 'update/w' (lnsc.Madam): updates 'x', which is not a parameter",
		      "update");
	ir_graph_free(g);

	g = g_train();
	ir_graph_value(g, "b")->role = IR_ROLE_CONST;
	ir_graph_value(g, "x")->nuses = 7;
	expect_broken(g, "value 'adam.m/b': belongs to 'b', which is not a parameter", "state");
	const char *d = ir_diag_text(C);
	CHECK(strstr(d, "value 'b': is a graph parameter but its role is not param"));
	CHECK(strstr(d, "value 'x': nuses is 7 but 1 node inputs use it"));
	CHECK(strstr(d, "node 'update/b' (lnsc.Adam): updates 'b'"));
	CHECK(ir_error_count(C) >= 5); /* every problem, not just the first */
	ir_graph_free(g);

	g = g_attrs();
	find(g, "drop")->attr.dropout.ratio = 1.0f;
	find(g, "cut")->attr.slice.end = 25;
	find(g, "cast")->out[0]->role = IR_ROLE_PARAM;
	expect_broken(g, "node 'drop' (Dropout): ratio 1 out of range [0,1)", "ratio");
	d = ir_diag_text(C);
	CHECK(strstr(d, "node 'cut' (lnsc.Slice): slice [2, 25) out of range 0..24"));
	CHECK(strstr(d, "value 'cast': is a param value but node 'cast' produces it"));
	ir_graph_free(g);

	/* a state value of no parameter is a running statistic, which only Assign writes */
	g = g_cnn();
	ir_diag_clear(C);
	CHECK_MSG(ir_verify(g) == 0, "%s", ir_diag_text(C));
	IrNode *am = find(g, "bn/assign_mean");
	am->in[0] = ir_graph_value(g, "b");
	ir_recount_uses(g);
	expect_broken(g, "node 'bn/assign_mean' (lnsc.Assign): assigns 'b', which is not a "
			 "running statistic", "assign");
	am->in[0] = ir_graph_value(g, "bn.running_mean");
	ir_graph_value(g, "bn.running_var")->param = ir_graph_value(g, "w");
	expect_broken(g, "assigns 'bn.running_var', which is not a running statistic", "assign2");
	ir_graph_value(g, "bn.running_var")->param = NULL;
	find(g, "dwconv")->attr.conv.group = 0;
	find(g, "maxpool")->attr.pool.stride[1] = 0;
	find(g, "pad")->attr.pad.n = 3;
	find(g, "relu6")->attr.clip.min = 7.0f;
	find(g, "bn")->attr.bn.momentum = 1.5f;
	expect_broken(g, "node 'dwconv' (Conv): group 0 must be >= 1", "group");
	d = ir_diag_text(C);
	CHECK(strstr(d, "node 'maxpool' (MaxPool): kernel, strides and dilations must be >= 1"));
	CHECK(strstr(d, "node 'pad' (Pad): pads for 3 dims, input rank 4"));
	CHECK(strstr(d, "node 'relu6' (Clip): min 7 must be <= max 6"));
	CHECK(strstr(d, "node 'bn' (BatchNormalization): momentum 1.5 out of range [0,1]"));
	ir_graph_free(g);

	g = g_mlp(0);
	g->outputs.n = 0;
	expect_broken(g, "has is_output set but is not a graph output", "outputs");
	CHECK(strstr(ir_diag_text(C), "the graph has no output and no loss"));
	ir_graph_free(g);
}

/* Runs ir_dump_pass with LNSC_DUMP=env and returns what it wrote to stderr (malloc'd). */
static char *dump(const IrGraph *g, const char *env, const char *pass)
{
	char path[] = "/tmp/test_ir_text.XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	fflush(stderr);
	dup2(fd, 2);
	setenv("LNSC_DUMP", env, 1);
	ir_dump_pass(g, pass);
	unsetenv("LNSC_DUMP");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	char *s = read_file(path);
	unlink(path);
	return s;
}

static void test_dump(void)
{
	IrGraph *g = g_mlp(1);
	char *want = ir_print_str(g), *s;
	s = dump(g, "canon,autodiff", "autodiff");
	CHECK(s && !strncmp(s, "=== after autodiff ===\n", 23) && !strcmp(s + 23, want));
	free(s);
	s = dump(g, "canon,autodiffx", "autodiff");
	CHECK(s && !*s);
	free(s);
	s = dump(g, "all", "plan");
	CHECK(s && strstr(s, "=== after plan ===\ngraph \"mlp\" opset 13 {\n"));
	free(s);
	free(want);
	ir_graph_free(g);
}

int main(void)
{
	C = ir_ctx_new();
	test_round_trips();
	test_parsed_details();
	test_parsed_cnn();
	test_pipeline_graphs();
	test_files();
	test_errors();
	test_verifier();
	test_fuzz();
	test_dump();
	ir_ctx_free(C);
	return t_finish("test_ir_text");
}
