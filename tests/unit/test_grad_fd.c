/* test_grad_fd.c: finite-difference checks of every gradient rule, through the whole pipeline.
 *
 * Each case builds a tiny graph whose every differentiable operand is a parameter, runs the
 * fp32 pipeline (autodiff, optimize, plan) and one training step in the interpreter, and
 * compares each parameter's gradient with central differences of the loss, evaluated in
 * double-checked fp32 by fresh interpreters on perturbed initial values (same seed and step,
 * so Dropout draws the same mask). Losses: MSE for arbitrary shapes, cross-entropy for [N,C].
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "testlib.h"

typedef struct Case {
	IrCtx *c;
	IrGraph *g;
	IrValue *labels_v;
	void *labels;
	unsigned seed;
} Case;

static float frand(unsigned *s)
{
	*s = *s * 1664525u + 1013904223u;
	return (float)((*s >> 8) & 0xFFFF) / 65536.0f * 2.0f - 1.0f;
}

static const IrType *ty(Case *k, int rank, const int64_t *dims)
{
	return ir_type(k->c, IR_DT_F32, rank, dims);
}

/* A parameter with random values away from kinks (|x| >= 0.1). */
static IrValue *param(Case *k, const char *name, int rank, const int64_t *dims, float lo_abs)
{
	const IrType *t = ty(k, rank, dims);
	float *d = malloc(ir_type_bytes(t) + 4);
	for (int64_t i = 0; i < t->numel; i++) {
		float v = frand(&k->seed);
		if (fabsf(v) < lo_abs)
			v = v < 0 ? -lo_abs - 0.05f : lo_abs + 0.05f;
		d[i] = v;
	}
	IrValue *v = ir_value_new(k->g, name, t, IR_ROLE_PARAM, d, NULL);
	free(d);
	return v;
}

static void begin(Case *k, const char *name)
{
	k->c = ir_ctx_new();
	k->g = ir_graph_new(k->c, name, name);
	k->g->opset = 13;
	k->seed = 12345u;
	k->labels = NULL;
}

static double loss_at(Case *k)
{
	IrInterp *ip = ir_interp_new(k->g, 7);
	float loss = NAN;
	if (!ip)
		return NAN;
	ir_interp_bind(ip, k->g->labels, k->labels);
	if (ir_interp_run(ip, IR_MODE_TRAIN) == 0)
		ir_interp_read(ip, k->g->loss, &loss);
	ir_interp_free(ip);
	return loss;
}

/* Check every parameter's gradient against central differences. */
static void check_case(Case *k, const char *name, PassLoss loss, double tol)
{
	PassOptions o;
	pass_options_default(&o);
	o.recipe = "fp32";
	o.loss = loss;
	IrValue *out = k->g->outputs.v[0];
	out->is_output = 1;
	if (pass_pipeline(k->g, &o)) {
		CHECK_MSG(0, "%s: pipeline failed: %s", name, ir_diag_text(k->c));
		goto done;
	}
	const IrType *lt = k->g->labels->type;
	k->labels = calloc(1, ir_type_bytes(lt) + 8);
	for (int64_t i = 0; i < lt->numel; i++) {
		if (lt->dt == IR_DT_I64)
			((int64_t *)k->labels)[i] = (int64_t)((unsigned)i * 7u % (unsigned)out->type->dims[1]);
		else
			((float *)k->labels)[i] = frand(&k->seed) * 0.5f;
	}
	IrInterp *ip = ir_interp_new(k->g, 7);
	CHECK_MSG(ip != NULL, "%s: %s", name, ir_diag_text(k->c));
	if (!ip)
		goto done;
	ir_interp_bind(ip, k->g->labels, k->labels);
	CHECK_MSG(ir_interp_run(ip, IR_MODE_TRAIN) == 0, "%s: %s", name, ir_interp_error(ip));
	int checked = 0;
	double worst = 0;
	for (int pi = 0; pi < k->g->params.n; pi++) {
		IrValue *p = k->g->params.v[pi];
		CHECK_MSG(p->grad != NULL, "%s: no gradient for %s", name, p->name);
		if (!p->grad)
			continue;
		int64_t n = p->type->numel;
		float *gr = malloc((size_t)n * sizeof *gr);
		CHECK(ir_interp_read(ip, p->grad, gr) == 0);
		float *w = p->init;
		for (int64_t i = 0; i < n; i++) {
			float save = w[i];
			float h = 1e-2f * fmaxf(1.0f, fabsf(save));
			w[i] = save + h;
			double lp = loss_at(k);
			w[i] = save - h;
			double lm = loss_at(k);
			w[i] = save;
			double fd = (lp - lm) / (2.0 * h);
			double err = fabs(fd - gr[i]) / fmax(1e-2, fabs(fd));
			if (err > worst)
				worst = err;
			CHECK_MSG(err <= tol, "%s: d loss/d %s[%lld]: autodiff %.6g, finite diff %.6g",
				  name, p->name, (long long)i, gr[i], fd);
			checked++;
		}
		free(gr);
	}
	printf("fd %-28s %4d partials, worst rel err %.2e\n", name, checked, worst);
	ir_interp_free(ip);
done:
	free(k->labels);
	ir_graph_free(k->g);
	ir_ctx_free(k->c);
}

static IrValue *node(Case *k, IrOp op, int nin, IrValue **in, const IrAttrs *a)
{
	IrValue *v = ir_build1(k->g, op, ir_op_name(op), nin, in, a);
	CHECK_MSG(v != NULL, "build %s: %s", ir_op_name(op), ir_diag_text(k->c));
	return v;
}

static void output(Case *k, IrValue *v)
{
	v->is_output = 1;
	ir_vec_push(&k->g->outputs, v);
}

static void test_gemm(int ta, int tb, float alpha, float beta, int crank)
{
	Case k;
	char name[64];
	snprintf(name, sizeof name, "Gemm tA%d tB%d C%d", ta, tb, crank);
	begin(&k, name);
	int64_t M = 3, K = 4, N = 5;
	int64_t ad[2] = {ta ? K : M, ta ? M : K}, bd[2] = {tb ? N : K, tb ? K : N};
	int64_t cd1[1] = {N}, cd2[2] = {M, 1};
	IrValue *in[3] = {param(&k, "A", 2, ad, 0), param(&k, "B", 2, bd, 0), NULL};
	if (crank == 1)
		in[2] = param(&k, "C", 1, cd1, 0);
	else if (crank == 2)
		in[2] = param(&k, "C", 2, cd2, 0);
	IrAttrs a = {.gemm = {.alpha = alpha, .beta = beta, .trans_a = ta, .trans_b = tb}};
	output(&k, node(&k, IR_OP_GEMM, crank ? 3 : 2, in, &a));
	check_case(&k, name, PASS_LOSS_XENT, 2e-2);
}

static void test_matmul(int ra, const int64_t *da, int rb, const int64_t *db, const char *name)
{
	Case k;
	begin(&k, name);
	IrValue *in[2] = {param(&k, "A", ra, da, 0), param(&k, "B", rb, db, 0)};
	output(&k, node(&k, IR_OP_MATMUL, 2, in, NULL));
	check_case(&k, name, PASS_LOSS_MSE, 2e-2);
}

static void test_binary(IrOp op, int ra, const int64_t *da, int rb, const int64_t *db)
{
	Case k;
	char name[64];
	snprintf(name, sizeof name, "%s r%d x r%d", ir_op_name(op), ra, rb);
	begin(&k, name);
	IrValue *in[2] = {param(&k, "A", ra, da, 0), param(&k, "B", rb, db, op == IR_OP_DIV ? 0.5f : 0)};
	if (op == IR_OP_DIV) {
		float *b = in[1]->init;
		for (int64_t i = 0; i < in[1]->type->numel; i++)
			b[i] = b[i] < 0 ? b[i] - 0.5f : b[i] + 0.5f;
	}
	output(&k, node(&k, op, 2, in, NULL));
	check_case(&k, name, PASS_LOSS_MSE, 2e-2);
}

static void test_unary(IrOp op, const IrAttrs *a, int rank, const int64_t *dims, PassLoss loss)
{
	Case k;
	char name[64];
	snprintf(name, sizeof name, "%s r%d", ir_op_name(op), rank);
	begin(&k, name);
	IrValue *x = param(&k, "X", rank, dims, 0.1f);
	output(&k, node(&k, op, 1, &x, a));
	check_case(&k, name, loss, 2e-2);
}

static void test_softmax(IrOp op, int axis, int legacy)
{
	int64_t d[3] = {2, 3, 4};
	IrAttrs a = {.axis = {.axis = axis, .legacy = legacy}};
	test_unary(op, &a, 3, d, PASS_LOSS_MSE);
}

static void test_moves(void)
{
	int64_t d[4] = {2, 3, 1, 4};
	IrAttrs flat = {.axis = {.axis = 2}};
	test_unary(IR_OP_FLATTEN, &flat, 4, d, PASS_LOSS_MSE);
	IrAttrs rs = {.shape = {.rank = 2, .dims = {6, 4}}};
	test_unary(IR_OP_RESHAPE, &rs, 4, d, PASS_LOSS_XENT);
	IrAttrs tr = {.perm = {.n = 4, .perm = {3, 0, 2, 1}}};
	test_unary(IR_OP_TRANSPOSE, &tr, 4, d, PASS_LOSS_MSE);
	IrAttrs sq = {.axes = {.n = 1, .axes = {2}}};
	test_unary(IR_OP_SQUEEZE, &sq, 4, d, PASS_LOSS_MSE);
	IrAttrs us = {.axes = {.n = 2, .axes = {0, 3}}};
	test_unary(IR_OP_UNSQUEEZE, &us, 4, d, PASS_LOSS_MSE);
	test_unary(IR_OP_IDENTITY, NULL, 4, d, PASS_LOSS_MSE);
	IrAttrs dr = {.dropout = {.ratio = 0.4f}};
	Case k;
	begin(&k, "Dropout");
	IrValue *x = param(&k, "X", 4, d, 0.1f);
	IrNode *n = ir_build(k.g, IR_OP_DROPOUT, "drop", 1, &x, &dr, NULL);
	CHECK(n != NULL);
	if (n) {
		output(&k, n->out[0]);
		check_case(&k, "Dropout 0.4", PASS_LOSS_MSE, 2e-2);
	}
}

static void test_concat_cast(void)
{
	Case k;
	begin(&k, "Concat");
	int64_t a[2] = {3, 2}, b[2] = {3, 4};
	IrValue *in[3] = {param(&k, "A", 2, a, 0), param(&k, "B", 2, b, 0), param(&k, "C", 2, a, 0)};
	IrAttrs ax = {.axis = {.axis = 1}};
	output(&k, node(&k, IR_OP_CONCAT, 3, in, &ax));
	check_case(&k, "Concat axis 1", PASS_LOSS_XENT, 2e-2);

	begin(&k, "Cast");
	IrValue *x = param(&k, "X", 2, b, 0);
	IrAttrs to64 = {.cast = {.to = IR_DT_F64}}, to32 = {.cast = {.to = IR_DT_F32}};
	IrValue *y = node(&k, IR_OP_CAST, 1, &x, &to64);
	IrValue *z = y ? node(&k, IR_OP_CAST, 1, &y, &to32) : NULL;
	IrValue *sig = z ? node(&k, IR_OP_SIGMOID, 1, &z, NULL) : NULL;
	if (sig) {
		output(&k, sig);
		check_case(&k, "Cast f32->f64->f32", PASS_LOSS_MSE, 2e-2);
	}
}

/* A value used twice: the gradients must accumulate. */
static void test_fanout(void)
{
	Case k;
	begin(&k, "fan-out");
	int64_t d[2] = {4, 3};
	IrValue *x = param(&k, "X", 2, d, 0.1f), *w = param(&k, "W", 2, d, 0);
	IrValue *t = node(&k, IR_OP_TANH, 1, &x, NULL);
	IrValue *m[2] = {t, w};
	IrValue *p = node(&k, IR_OP_MUL, 2, m, NULL);
	IrValue *s[2] = {p, t};
	output(&k, node(&k, IR_OP_ADD, 2, s, NULL));
	check_case(&k, "fan-out Tanh->(Mul,Add)", PASS_LOSS_XENT, 2e-2);
}

/* ---- convolutional networks ---- */

/* Spreads a parameter's values to distinct levels 0.05 apart (a random permutation), so no
 * perturbation of the finite differences moves a maximum to another element. */
static void distinct(Case *k, IrValue *p)
{
	float *d = p->init;
	int64_t n = p->type->numel;
	for (int64_t i = 0; i < n; i++)
		d[i] = (float)(i - n / 2) * 0.05f;
	for (int64_t i = n - 1; i > 0; i--) {
		int64_t j = (int64_t)((frand(&k->seed) + 1.0f) * 0.5f * (float)(i + 1)) % (i + 1);
		float t = d[i];
		d[i] = d[j], d[j] = t;
	}
}

typedef struct ConvFd {
	const char *name;
	int64_t N, C, H, W, M;
	int kh, kw, stride, dil, pad[4], group, bias;
} ConvFd;

static void test_conv(const ConvFd *c)
{
	Case k;
	begin(&k, c->name);
	IrValue *in[3] = {param(&k, "X", 4, (int64_t[]){c->N, c->C, c->H, c->W}, 0),
			  param(&k, "W", 4, (int64_t[]){c->M, c->C / c->group, c->kh, c->kw}, 0),
			  c->bias ? param(&k, "B", 1, (int64_t[]){c->M}, 0) : NULL};
	IrAttrs a = {.conv = {.kernel = {c->kh, c->kw}, .stride = {c->stride, c->stride},
			      .dilation = {c->dil, c->dil}, .group = c->group}};
	memcpy(a.conv.pad, c->pad, sizeof a.conv.pad);
	output(&k, node(&k, IR_OP_CONV, c->bias ? 3 : 2, in, &a));
	check_case(&k, c->name, PASS_LOSS_MSE, 2e-2);
}

static void test_convs(void)
{
	static const ConvFd cases[] = {
		{"Conv 3x3 pad 1", 2, 3, 5, 4, 4, 3, 3, 1, 1, {1, 1, 1, 1}, 1, 1},
		{"Conv groups 2", 2, 4, 5, 5, 6, 3, 3, 1, 1, {1, 1, 1, 1}, 2, 1},
		{"Conv depthwise", 2, 3, 5, 5, 3, 3, 3, 1, 1, {1, 1, 1, 1}, 3, 1},
		{"Conv stride 2", 2, 2, 7, 6, 3, 3, 3, 2, 1, {1, 1, 1, 1}, 1, 1},
		{"Conv dilation 2", 1, 2, 7, 7, 3, 3, 3, 1, 2, {2, 2, 2, 2}, 1, 1},
		{"Conv asymmetric pads", 2, 2, 5, 6, 2, 2, 3, 1, 1, {1, 0, 0, 2}, 1, 1},
		{"Conv no bias", 2, 3, 4, 4, 2, 3, 3, 1, 1, {0, 0, 0, 0}, 1, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		test_conv(&cases[i]);
}

/* Training-mode BatchNormalization: the running statistics become state (canon), the
 * gradients of X, scale and B go through the batch statistics. */
static void test_batch_norm(int rank, const int64_t *xd, const char *name)
{
	Case k;
	begin(&k, name);
	int64_t c[1] = {xd[1]};
	IrValue *in[5] = {param(&k, "X", rank, xd, 0), param(&k, "scale", 1, c, 0.1f),
			  param(&k, "B", 1, c, 0), param(&k, "mean", 1, c, 0),
			  param(&k, "var", 1, c, 0)};
	float *v = in[4]->init;
	for (int64_t i = 0; i < c[0]; i++)
		v[i] = fabsf(v[i]) + 0.5f;
	IrAttrs a = {.bn = {.epsilon = 1e-5f, .momentum = 0.9f}};
	IrNode *n = ir_build(k.g, IR_OP_BATCH_NORM, "bn", 5, in, &a, NULL);
	CHECK_MSG(n != NULL, "%s", ir_diag_text(k.c));
	if (!n)
		return;
	output(&k, n->out[0]);
	check_case(&k, name, PASS_LOSS_MSE, 2e-2);
}

typedef struct PoolFd {
	IrOp op;
	const char *name;
	int k, stride, pad[4], ceil, cip;
} PoolFd;

static void test_pool(const PoolFd *p)
{
	Case k;
	begin(&k, p->name);
	int64_t d[4] = {2, 2, 5, 6};
	IrValue *x = param(&k, "X", 4, d, 0);
	distinct(&k, x);
	int glob = p->op == IR_OP_GLOBAL_AVG_POOL || p->op == IR_OP_GLOBAL_MAX_POOL;
	IrAttrs a = {.pool = {.kernel = {glob ? 5 : p->k, glob ? 6 : p->k},
			      .stride = {p->stride, p->stride}, .dilation = {1, 1},
			      .ceil_mode = p->ceil, .count_include_pad = p->cip}};
	memcpy(a.pool.pad, p->pad, sizeof a.pool.pad);
	output(&k, node(&k, p->op, 1, &x, &a));
	check_case(&k, p->name, PASS_LOSS_MSE, 2e-2);
}

static void test_pools(void)
{
	static const PoolFd cases[] = {
		{IR_OP_MAX_POOL, "MaxPool 2x2", 2, 2, {0, 0, 0, 0}, 0, 0},
		{IR_OP_MAX_POOL, "MaxPool ceil pads", 3, 2, {1, 1, 0, 1}, 1, 0},
		{IR_OP_AVG_POOL, "AvgPool ceil pads", 3, 2, {1, 1, 0, 1}, 1, 0},
		{IR_OP_AVG_POOL, "AvgPool count_include_pad", 3, 2, {1, 1, 0, 1}, 1, 1},
		{IR_OP_AVG_POOL, "AvgPool 3x3 stride 1", 3, 1, {1, 1, 1, 1}, 0, 1},
		{IR_OP_GLOBAL_MAX_POOL, "GlobalMaxPool", 1, 1, {0, 0, 0, 0}, 0, 0},
		{IR_OP_GLOBAL_AVG_POOL, "GlobalAveragePool", 1, 1, {0, 0, 0, 0}, 0, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		test_pool(&cases[i]);
}

static void test_pad_clip(void)
{
	int64_t d[3] = {2, 3, 4};
	IrAttrs pad = {.pad = {.n = 3, .pads = {0, 1, 2, 1, 0, 1}, .value = 0.5f}};
	test_unary(IR_OP_PAD, &pad, 3, d, PASS_LOSS_MSE);
	Case k;
	begin(&k, "Pad with crops");
	IrAttrs crop = {.pad = {.n = 3, .pads = {0, -1, 2, 1, 1, -2}}};
	IrValue *x = param(&k, "X", 3, d, 0);
	output(&k, node(&k, IR_OP_PAD, 1, &x, &crop));
	check_case(&k, "Pad with crops", PASS_LOSS_MSE, 2e-2);

	begin(&k, "Clip");
	x = param(&k, "X", 2, (int64_t[]){4, 5}, 0);
	float *v = x->init;
	for (int i = 0; i < 20; i++) /* away from the bounds by more than the step */
		if (fabsf(fabsf(v[i]) - 0.5f) < 0.05f)
			v[i] += 0.1f;
	IrAttrs clip = {.clip = {.min = -0.5f, .max = 0.5f}};
	output(&k, node(&k, IR_OP_CLIP, 1, &x, &clip));
	check_case(&k, "Clip [-0.5, 0.5]", PASS_LOSS_XENT, 2e-2);
}

/* A small CNN end to end: Conv -> BatchNormalization -> Tanh -> AveragePool -> Conv -> Add
 * (a broadcast [C, 1, 1] term) -> residual Add -> GlobalAveragePool -> Flatten, cross-entropy.
 * Smooth ops only: after BatchNormalization a perturbation moves every value of a channel,
 * and Relu kinks or MaxPool near-ties would then break the finite differences, not the rules
 * (each has its own case above). */
static void test_cnn(void)
{
	Case k;
	begin(&k, "CNN");
	IrValue *x = param(&k, "X", 4, (int64_t[]){2, 2, 6, 6}, 0);
	IrValue *w1 = param(&k, "W1", 4, (int64_t[]){4, 2, 3, 3}, 0);
	IrValue *w2 = param(&k, "W2", 4, (int64_t[]){4, 4, 3, 3}, 0);
	IrValue *r = param(&k, "R", 3, (int64_t[]){4, 1, 1}, 0);
	int64_t c4[1] = {4};
	IrValue *bn[5] = {NULL, param(&k, "scale", 1, c4, 0.1f), param(&k, "B", 1, c4, 0),
			  param(&k, "mean", 1, c4, 0), param(&k, "var", 1, c4, 0)};
	float *var = bn[4]->init;
	for (int i = 0; i < 4; i++)
		var[i] = fabsf(var[i]) + 0.5f;
	IrAttrs c1 = {.conv = {.kernel = {3, 3}, .stride = {1, 1}, .dilation = {1, 1},
			       .pad = {1, 1, 1, 1}, .group = 1}};
	IrAttrs b = {.bn = {.epsilon = 1e-5f, .momentum = 0.9f}};
	IrAttrs mp = {.pool = {.kernel = {2, 2}, .stride = {2, 2}, .dilation = {1, 1}}};
	IrAttrs gp = {.pool = {.kernel = {3, 3}, .stride = {1, 1}, .dilation = {1, 1}}};
	IrAttrs fl = {.axis = {.axis = 1}};
	IrValue *y = node(&k, IR_OP_CONV, 2, (IrValue *[]){x, w1}, &c1);
	bn[0] = y;
	IrNode *bnn = y ? ir_build(k.g, IR_OP_BATCH_NORM, "bn", 5, bn, &b, NULL) : NULL;
	y = bnn ? node(&k, IR_OP_TANH, 1, &bnn->out[0], NULL) : NULL;
	y = y ? node(&k, IR_OP_AVG_POOL, 1, &y, &mp) : NULL;
	IrValue *z = y ? node(&k, IR_OP_CONV, 2, (IrValue *[]){y, w2}, &c1) : NULL;
	z = z ? node(&k, IR_OP_ADD, 2, (IrValue *[]){z, r}, NULL) : NULL;
	z = z ? node(&k, IR_OP_ADD, 2, (IrValue *[]){z, y}, NULL) : NULL; /* residual */
	z = z ? node(&k, IR_OP_GLOBAL_AVG_POOL, 1, &z, &gp) : NULL;
	z = z ? node(&k, IR_OP_FLATTEN, 1, &z, &fl) : NULL;
	CHECK(z != NULL);
	if (!z)
		return;
	output(&k, z);
	check_case(&k, "CNN Conv-BN-Tanh-AvgPool-Conv-Add-GAP", PASS_LOSS_XENT, 2e-2);
}

int main(void)
{
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++)
			test_gemm(ta, tb, 0.7f, 1.3f, 1 + ((ta + tb) & 1));
	test_gemm(0, 1, 1.0f, 1.0f, 0);
	int64_t a2[2] = {3, 4}, b2[2] = {4, 5}, a3[3] = {2, 3, 4}, a4[4] = {2, 1, 3, 4},
		b3[3] = {3, 4, 5};
	test_matmul(2, a2, 2, b2, "MatMul 2-D");
	test_matmul(3, a3, 2, b2, "MatMul [2,3,4]x[4,5]");
	test_matmul(4, a4, 3, b3, "MatMul [2,1,3,4]x[3,4,5]");
	int64_t nc[2] = {4, 3}, c1[1] = {3}, n1[2] = {4, 1};
	IrOp bin[4] = {IR_OP_ADD, IR_OP_SUB, IR_OP_MUL, IR_OP_DIV};
	for (int i = 0; i < 4; i++) {
		test_binary(bin[i], 2, nc, 2, nc);
		test_binary(bin[i], 2, nc, 1, c1);
		test_binary(bin[i], 2, n1, 2, nc);
	}
	int64_t d[2] = {4, 5};
	IrAttrs leaky = {.alpha = {.alpha = 0.2f}};
	test_unary(IR_OP_NEG, NULL, 2, d, PASS_LOSS_MSE);
	test_unary(IR_OP_RELU, NULL, 2, d, PASS_LOSS_XENT);
	test_unary(IR_OP_LEAKY_RELU, &leaky, 2, d, PASS_LOSS_MSE);
	test_unary(IR_OP_SIGMOID, NULL, 2, d, PASS_LOSS_MSE);
	test_unary(IR_OP_TANH, NULL, 2, d, PASS_LOSS_XENT);
	test_softmax(IR_OP_SOFTMAX, 2, 0);
	test_softmax(IR_OP_SOFTMAX, 1, 1);
	test_softmax(IR_OP_LOG_SOFTMAX, 1, 0);
	test_softmax(IR_OP_LOG_SOFTMAX, 1, 1);
	test_moves();
	test_concat_cast();
	test_fanout();
	test_convs();
	test_batch_norm(4, (int64_t[]){3, 2, 2, 3}, "BatchNormalization 4-D");
	test_batch_norm(2, (int64_t[]){5, 3}, "BatchNormalization 2-D");
	test_pools();
	test_pad_clip();
	test_cnn();
	return t_finish("test_grad_fd");
}
