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
	return t_finish("test_grad_fd");
}
