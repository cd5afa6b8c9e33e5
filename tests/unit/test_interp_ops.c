/* test_interp_ops.c: the reference interpreter, op by op, against values computed here.
 *
 * Each case builds a small graph with ir_value_new/ir_build (inputs are constants or bound
 * buffers), plans it with pass_plan, runs it, and compares every output with a reference
 * written independently in this file: straightforward loops in double precision, explicit
 * index arithmetic for broadcasting and axes, the PyTorch formulas for SGD and Adam and
 * LNS.md's fp32 form for Madam. The executor itself is checked too: LNS encoding of outputs,
 * telemetry, phases, dead-value reads, NaN reports, constant folding, and a brute-force check
 * that the memory plan never overlaps two live values.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ir/ir.h"
#include "passes/passes.h"
#include "testlib.h"

#define D(...) ((const int64_t[]){__VA_ARGS__})

static IrCtx *C;
static uint32_t seed_state = 12345;

static const LnsFormat LNS8 = {.bits = 8, .log2g = 3, .scale = LNS_SCALE_CURRENT};

/* ---- helpers ---- */

static double urand(void) /* uniform in [-1, 1) */
{
	seed_state = seed_state * 1664525u + 1013904223u;
	return (double)(seed_state >> 8) / 8388608.0 - 1.0;
}

static float *rand_buf(int64_t n, double scale)
{
	float *x = malloc(sizeof(float) * (size_t)(n ? n : 1));
	for (int64_t i = 0; i < n; i++)
		x[i] = (float)(urand() * scale);
	return x;
}

static IrGraph *gnew(void)
{
	return ir_graph_new(C, "t", "test.onnx");
}

static IrValue *cval(IrGraph *g, const char *name, IrDType dt, int rank, const int64_t *dims,
		     const void *data)
{
	const IrType *t = ir_type(C, dt, rank, dims);
	return ir_value_new(g, name, t, IR_ROLE_CONST, data, t);
}

static IrValue *cf32(IrGraph *g, const char *name, int rank, const int64_t *dims,
		     const float *data)
{
	return cval(g, name, IR_DT_F32, rank, dims, data);
}

/* Builds a node whose outputs are graph outputs (kept live to the end). */
static IrNode *node(IrGraph *g, IrOp op, const char *name, int nin, IrValue **in,
		    const IrAttrs *at)
{
	IrNode *n = ir_build(g, op, name, nin, in, at, NULL);
	CHECK_MSG(n != NULL, "build %s: %s", name, ir_diag_text(C));
	if (!n)
		exit(t_finish("test_interp_ops"));
	for (int j = 0; j < n->nout; j++)
		n->out[j]->is_output = 1;
	return n;
}

static IrValue *node1(IrGraph *g, IrOp op, const char *name, int nin, IrValue **in,
		      const IrAttrs *at)
{
	return node(g, op, name, nin, in, at)->out[0];
}

static IrInterp *start(IrGraph *g, uint64_t seed)
{
	CHECK_MSG(pass_plan(g) == 0, "plan: %s", ir_diag_text(C));
	IrInterp *ip = ir_interp_new(g, seed);
	CHECK_MSG(ip != NULL, "interp: %s", ir_diag_text(C));
	if (!ip)
		exit(t_finish("test_interp_ops"));
	return ip;
}

static int run(IrInterp *ip, IrMode mode)
{
	int rc = ir_interp_run(ip, mode);
	CHECK_MSG(rc == 0, "run: %s", ir_interp_error(ip));
	return rc;
}

/* A planned, run, single-mode graph; returns the interpreter (free with done()). */
static IrInterp *go(IrGraph *g)
{
	IrInterp *ip = start(g, 42);
	run(ip, IR_MODE_TRAIN);
	return ip;
}

static void done(IrInterp *ip, IrGraph *g)
{
	ir_interp_free(ip);
	ir_graph_free(g);
}

static float *get(IrInterp *ip, const IrValue *v)
{
	float *x = malloc(ir_type_bytes(v->type) + sizeof(float) * (size_t)v->type->numel + 8);
	CHECK_MSG(ir_interp_read(ip, v, x) == 0, "read %s: %s", v->name, ir_interp_error(ip));
	return x;
}

/* |got - want| <= atol + rtol |want| everywhere; reports the first miss. */
static void near(const float *got, const double *want, int64_t n, double rtol, double atol,
		 const char *what)
{
	int64_t bad = -1;
	for (int64_t i = 0; i < n && bad < 0; i++)
		if (!(fabs((double)got[i] - want[i]) <= atol + rtol * fabs(want[i])))
			bad = i;
	CHECK_MSG(bad < 0, "%s: element %lld is %.9g, want %.9g", what, (long long)bad,
		  bad >= 0 ? (double)got[bad] : 0.0, bad >= 0 ? want[bad] : 0.0);
}

static void near_val(IrInterp *ip, const IrValue *v, const double *want, double rtol,
		     double atol, const char *what)
{
	float *got = get(ip, v);
	near(got, want, v->type->numel, rtol, atol, what);
	free(got);
}

/* Flat index into a tensor of dims (ri, id) for the output multi-index idx over (ro, od),
 * numpy broadcasting: the reference's own index arithmetic. */
static int64_t bidx(const int64_t *idx, int ro, int ri, const int64_t *id)
{
	int64_t f = 0;
	for (int d = 0; d < ri; d++) {
		int64_t i = idx[ro - ri + d];
		f = f * id[d] + (id[d] == 1 ? 0 : i);
	}
	return f;
}

static void unflat(int64_t f, int r, const int64_t *d, int64_t *idx)
{
	for (int i = r - 1; i >= 0; i--) {
		idx[i] = f % d[i];
		f /= d[i];
	}
}

/* ---- GEMM, MatMul ---- */

static void gemm_case(int64_t M, int64_t N, int64_t K, int ta, int tb, int cmode)
{
	IrGraph *g = gnew();
	float *A = rand_buf(M * K, 1), *B = rand_buf(K * N, 1), *Cd = rand_buf(M * N, 1);
	IrAttrs at = {.gemm = {.alpha = 0.5f, .beta = 2.0f, .trans_a = ta, .trans_b = tb}};
	static const int crank[] = {0, 1, 2, 0};
	int64_t cd[2] = {cmode == 2 ? M : N, 1};
	if (cmode == 1)
		cd[0] = N;
	IrValue *in[3] = {cf32(g, "A", 2, ta ? D(K, M) : D(M, K), A),
			  cf32(g, "B", 2, tb ? D(N, K) : D(K, N), B),
			  cf32(g, "C", crank[cmode], cd, Cd)};
	IrValue *y = node1(g, IR_OP_GEMM, "gemm", cmode ? 3 : 2, in, &at);
	IrInterp *ip = go(g);
	double *want = malloc(sizeof(double) * (size_t)(M * N));
	for (int64_t i = 0; i < M; i++)
		for (int64_t j = 0; j < N; j++) {
			double s = 0;
			for (int64_t k = 0; k < K; k++)
				s += (double)(ta ? A[k * M + i] : A[i * K + k]) *
				     (tb ? B[j * K + k] : B[k * N + j]);
			double c = cmode == 1 ? Cd[j] : cmode == 2 ? Cd[i] : Cd[0];
			want[i * N + j] = 0.5 * s + (cmode ? 2.0 * c : 0.0);
		}
	char what[64];
	snprintf(what, sizeof what, "gemm %lldx%lldx%lld ta=%d tb=%d c=%d", (long long)M,
		 (long long)N, (long long)K, ta, tb, cmode);
	near_val(ip, y, want, 1e-5, 1e-5 * (double)K, what);
	free(A), free(B), free(Cd), free(want);
	done(ip, g);
}

static void test_gemm(void)
{
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++)
			for (int c = 0; c < 4; c++)
				gemm_case(5, 19, 7, ta, tb, c);
	gemm_case(33, 40, 50, 0, 1, 1);
	gemm_case(1, 1, 1, 1, 1, 3);
}

static void matmul_case(int ra, const int64_t *ad, int rb, const int64_t *bd, int ro,
			const int64_t *od)
{
	IrGraph *g = gnew();
	int64_t na = 1, nb = 1, no = 1;
	for (int i = 0; i < ra; i++)
		na *= ad[i];
	for (int i = 0; i < rb; i++)
		nb *= bd[i];
	for (int i = 0; i < ro; i++)
		no *= od[i];
	float *A = rand_buf(na, 1), *B = rand_buf(nb, 1);
	IrValue *in[2] = {cf32(g, "A", ra, ad, A), cf32(g, "B", rb, bd, B)};
	IrValue *y = node1(g, IR_OP_MATMUL, "mm", 2, in, NULL);
	CHECK(y->type->rank == ro);
	IrInterp *ip = go(g);
	double *want = malloc(sizeof(double) * (size_t)no);
	int64_t M = od[ro - 2], N = od[ro - 1], K = ad[ra - 1], idx[IR_MAX_RANK];
	for (int64_t f = 0; f < no; f++) {
		unflat(f, ro, od, idx);
		double s = 0;
		for (int64_t k = 0; k < K; k++) {
			idx[ro - 1] = k; /* A[..., i, k] */
			double a = A[bidx(idx, ro, ra, ad)];
			idx[ro - 1] = f % N;
			int64_t i = idx[ro - 2];
			idx[ro - 2] = k; /* B[..., k, j] */
			double b = B[bidx(idx, ro, rb, bd)];
			idx[ro - 2] = i;
			s += a * b;
		}
		want[f] = s;
	}
	(void)M;
	near_val(ip, y, want, 1e-5, 1e-5, "matmul");
	free(A), free(B), free(want);
	done(ip, g);
}

static void test_matmul(void)
{
	matmul_case(3, D(2, 3, 4), 2, D(4, 5), 3, D(2, 3, 5));
	matmul_case(4, D(2, 1, 3, 4), 3, D(5, 4, 6), 4, D(2, 5, 3, 6));
	matmul_case(2, D(9, 17), 2, D(17, 3), 2, D(9, 3));
}

/* ---- elementwise ---- */

static double ref_bin(IrOp op, double a, double b)
{
	switch (op) {
	case IR_OP_ADD: return a + b;
	case IR_OP_SUB: return a - b;
	case IR_OP_MUL: return a * b;
	default: return a / b;
	}
}

static void binary_case(IrOp op, int ra, const int64_t *ad, int rb, const int64_t *bd)
{
	IrGraph *g = gnew();
	int64_t na = 1, nb = 1, od[IR_MAX_RANK], idx[IR_MAX_RANK];
	int ro;
	for (int i = 0; i < ra; i++)
		na *= ad[i];
	for (int i = 0; i < rb; i++)
		nb *= bd[i];
	float *A = rand_buf(na, 2), *B = rand_buf(nb, 1);
	for (int64_t i = 0; i < nb; i++) /* keep divisors away from 0 */
		B[i] = B[i] < 0 ? B[i] - 0.5f : B[i] + 0.5f;
	IrValue *in[2] = {cf32(g, "a", ra, ad, A), cf32(g, "b", rb, bd, B)};
	IrValue *y = node1(g, op, "op", 2, in, NULL);
	IrInterp *ip = go(g);
	CHECK(ir_broadcast_shape(ra, ad, rb, bd, &ro, od) == 0);
	double *want = malloc(sizeof(double) * (size_t)(y->type->numel));
	for (int64_t f = 0; f < y->type->numel; f++) {
		unflat(f, ro, od, idx);
		want[f] = ref_bin(op, A[bidx(idx, ro, ra, ad)], B[bidx(idx, ro, rb, bd)]);
	}
	near_val(ip, y, want, 1e-6, 0, ir_op_name(op));
	free(A), free(B), free(want);
	done(ip, g);
}

static void test_binary(void)
{
	static const IrOp ops[] = {IR_OP_ADD, IR_OP_SUB, IR_OP_MUL, IR_OP_DIV};
	for (int i = 0; i < 4; i++) {
		binary_case(ops[i], 3, D(2, 3, 4), 2, D(3, 1));
		binary_case(ops[i], 1, D(4), 3, D(2, 3, 4));
		binary_case(ops[i], 3, D(2, 3, 4), 0, NULL);
		binary_case(ops[i], 3, D(2, 1, 4), 3, D(1, 3, 1));
		binary_case(ops[i], 2, D(5, 11), 2, D(5, 11));
		binary_case(ops[i], 0, NULL, 0, NULL);
	}
}

static double ref_unary(IrOp op, double x)
{
	switch (op) {
	case IR_OP_NEG: return -x;
	case IR_OP_RELU: return x > 0 ? x : 0;
	case IR_OP_LEAKY_RELU: return x >= 0 ? x : 0.1 * x;
	case IR_OP_SIGMOID: return 1.0 / (1.0 + exp(-x));
	default: return tanh(x);
	}
}

static void test_unary(void)
{
	static const IrOp ops[] = {IR_OP_NEG, IR_OP_RELU, IR_OP_LEAKY_RELU, IR_OP_SIGMOID,
				   IR_OP_TANH};
	float *x = rand_buf(64, 30);
	x[0] = -100, x[1] = 100, x[2] = 0, x[3] = -0.0f, x[4] = 1e-30f;
	for (int i = 0; i < 5; i++) {
		IrGraph *g = gnew();
		IrAttrs at = {.alpha = {.alpha = 0.1f}};
		IrValue *in = cf32(g, "x", 2, D(8, 8), x);
		IrValue *y = node1(g, ops[i], "u", 1, &in, &at);
		IrInterp *ip = go(g);
		double want[64];
		for (int j = 0; j < 64; j++)
			want[j] = ref_unary(ops[i], x[j]);
		near_val(ip, y, want, 2e-6, 1e-30, ir_op_name(ops[i]));
		done(ip, g);
	}
	free(x);
}

/* ---- softmax family on [2,3,4] ---- */

/* The reference groups, written out for this shape: element (a, b, c) belongs to the group
 * of (a, c) along axis 1, or of a alone in legacy mode (and of nobody else at axis 0). */
static int group_of(int legacy, int axis, int a, int b, int c)
{
	if (axis == 0)
		return legacy ? 0 : b * 4 + c;
	if (axis == 1)
		return legacy ? a : a * 4 + c;
	return a * 3 + b; /* axis 2: the same in both modes */
}

static void softmax_ref(IrOp op, int legacy, int axis, const float *x, const float *dy,
			double *want)
{
	double mx[24], s[24], sd[24];
	for (int i = 0; i < 24; i++)
		mx[i] = -INFINITY, s[i] = sd[i] = 0;
	for (int e = 0; e < 24; e++) {
		int k = group_of(legacy, axis, e / 12, e / 4 % 3, e % 4);
		mx[k] = fmax(mx[k], x[e]);
	}
	for (int e = 0; e < 24; e++) {
		int k = group_of(legacy, axis, e / 12, e / 4 % 3, e % 4);
		s[k] += exp(x[e] - mx[k]);
		/* gradients: x holds the saved Y */
		sd[k] += op == IR_OP_SOFTMAX_GRAD ? (double)dy[e] * x[e] : dy ? dy[e] : 0;
	}
	for (int e = 0; e < 24; e++) {
		int k = group_of(legacy, axis, e / 12, e / 4 % 3, e % 4);
		switch (op) {
		case IR_OP_SOFTMAX: want[e] = exp(x[e] - mx[k]) / s[k]; break;
		case IR_OP_LOG_SOFTMAX: want[e] = x[e] - mx[k] - log(s[k]); break;
		case IR_OP_SOFTMAX_GRAD: want[e] = x[e] * (dy[e] - sd[k]); break;
		default: want[e] = dy[e] - exp(x[e]) * sd[k]; break;
		}
	}
}

static void test_softmax(void)
{
	static const IrOp ops[] = {IR_OP_SOFTMAX, IR_OP_LOG_SOFTMAX, IR_OP_SOFTMAX_GRAD,
				   IR_OP_LOG_SOFTMAX_GRAD};
	float *x = rand_buf(24, 5), *dy = rand_buf(24, 1);
	for (int o = 0; o < 4; o++)
		for (int legacy = 0; legacy < 2; legacy++)
			for (int axis = 0; axis < 3; axis++) {
				IrGraph *g = gnew();
				IrAttrs at = {.axis = {.axis = axis, .legacy = legacy}};
				float *s = x;
				if (o == 3) { /* LogSoftmaxGrad's Y is a log-probability */
					s = malloc(sizeof(float) * 24);
					for (int i = 0; i < 24; i++)
						s[i] = -fabsf(x[i]);
				}
				IrValue *in[2] = {cf32(g, "dy", 3, D(2, 3, 4), dy),
						  cf32(g, "y", 3, D(2, 3, 4), s)};
				IrValue *y = o < 2 ? node1(g, ops[o], "sm", 1, &in[1], &at)
						   : node1(g, ops[o], "sm", 2, in, &at);
				IrInterp *ip = go(g);
				double want[24];
				softmax_ref(ops[o], legacy, axis, s, o < 2 ? NULL : dy, want);
				char what[80];
				snprintf(what, sizeof what, "%s legacy=%d axis=%d", ir_op_name(ops[o]),
					 legacy, axis);
				near_val(ip, y, want, 1e-6, 1e-7, what);
				if (s != x)
					free(s);
				done(ip, g);
			}
	free(x), free(dy);
}

static void test_grad_pairs(void)
{
	static const IrOp ops[] = {IR_OP_RELU_GRAD, IR_OP_LEAKY_RELU_GRAD, IR_OP_SIGMOID_GRAD,
				   IR_OP_TANH_GRAD};
	float *dy = rand_buf(30, 2), *s = rand_buf(30, 1);
	s[0] = 0, s[1] = -0.0f;
	for (int o = 0; o < 4; o++) {
		IrGraph *g = gnew();
		IrAttrs at = {.alpha = {.alpha = 0.2f}};
		IrValue *in[2] = {cf32(g, "dy", 2, D(5, 6), dy), cf32(g, "s", 2, D(5, 6), s)};
		IrValue *y = node1(g, ops[o], "gr", 2, in, &at);
		IrInterp *ip = go(g);
		double want[30];
		for (int i = 0; i < 30; i++) {
			double d = dy[i], v = s[i];
			want[i] = o == 0 ? (v > 0 ? d : 0)
				  : o == 1 ? (v > 0 ? d : 0.2 * d)
				  : o == 2 ? d * v * (1 - v)
					   : d * (1 - v * v);
		}
		near_val(ip, y, want, 1e-6, 1e-7, ir_op_name(ops[o]));
		done(ip, g);
	}
	free(dy), free(s);
}

/* ---- data movement ---- */

static void test_moves(void)
{
	IrGraph *g = gnew();
	float *x = rand_buf(24, 1), *p = rand_buf(12, 1);
	int64_t li[12];
	for (int i = 0; i < 12; i++)
		li[i] = (int64_t)i * 1000003 - 5;
	IrValue *xv = cf32(g, "x", 3, D(2, 3, 4), x);
	IrValue *iv = cval(g, "i", IR_DT_I64, 2, D(3, 4), li);
	IrAttrs fl = {.axis = {.axis = 2}}, rs = {.shape = {.rank = 2, .dims = {4, 6}}};
	IrAttrs tp = {.perm = {.n = 3, .perm = {2, 0, 1}}}, ti = {.perm = {.n = 2, .perm = {1, 0}}};
	IrAttrs sq = {.axes = {.n = 0}}, us = {.axes = {.n = 2, .axes = {0, 3}}};
	IrValue *f = node1(g, IR_OP_FLATTEN, "flatten", 1, &xv, &fl);
	IrValue *r = node1(g, IR_OP_RESHAPE, "reshape", 1, &xv, &rs);
	IrValue *t = node1(g, IR_OP_TRANSPOSE, "transpose", 1, &xv, &tp);
	IrValue *it = node1(g, IR_OP_TRANSPOSE, "transpose_i64", 1, &iv, &ti);
	IrValue *u = node1(g, IR_OP_UNSQUEEZE, "unsqueeze", 1, &xv, &us);
	IrValue *s = node1(g, IR_OP_SQUEEZE, "squeeze", 1, &u, &sq);
	IrValue *id = node1(g, IR_OP_IDENTITY, "identity", 1, &s, NULL);
	IrValue *cin[3] = {cf32(g, "c0", 2, D(2, 3), x), cf32(g, "c1", 2, D(2, 1), p),
			   cf32(g, "c2", 2, D(2, 2), p + 4)};
	IrAttrs ca = {.axis = {.axis = 1}}, c0 = {.axis = {.axis = 0}};
	IrValue *cat = node1(g, IR_OP_CONCAT, "concat", 3, cin, &ca);
	IrValue *cat0 = node1(g, IR_OP_CONCAT, "concat0", 2, (IrValue *[]){cin[0], cin[0]}, &c0);
	IrAttrs sl = {.slice = {.axis = 1, .start = 1, .end = 3}};
	IrValue *slc = node1(g, IR_OP_SLICE, "slice", 1, &xv, &sl);
	IrInterp *ip = go(g);
	double w[24];
	for (int i = 0; i < 24; i++)
		w[i] = x[i];
	near_val(ip, f, w, 0, 0, "flatten");
	near_val(ip, r, w, 0, 0, "reshape");
	near_val(ip, id, w, 0, 0, "unsqueeze-squeeze-identity");
	CHECK(u->type->rank == 5 && s->type->rank == 3);
	for (int k = 0; k < 4; k++)
		for (int a = 0; a < 2; a++)
			for (int b = 0; b < 3; b++)
				w[(k * 2 + a) * 3 + b] = x[(a * 3 + b) * 4 + k];
	near_val(ip, t, w, 0, 0, "transpose");
	int64_t got[12];
	CHECK(ir_interp_read(ip, it, got) == 0);
	int ok = 1;
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 4; j++)
			ok &= got[j * 3 + i] == li[i * 4 + j];
	CHECK_MSG(ok, "transpose of i64");
	for (int a = 0; a < 2; a++)
		for (int j = 0; j < 6; j++)
			w[a * 6 + j] = j < 3 ? x[a * 3 + j] : j < 4 ? p[a] : p[4 + a * 2 + (j - 4)];
	near_val(ip, cat, w, 0, 0, "concat axis 1");
	for (int i = 0; i < 12; i++)
		w[i] = x[i % 6];
	near_val(ip, cat0, w, 0, 0, "concat axis 0");
	for (int a = 0; a < 2; a++)
		for (int b = 0; b < 2; b++)
			for (int c = 0; c < 4; c++)
				w[(a * 2 + b) * 4 + c] = x[(a * 3 + b + 1) * 4 + c];
	near_val(ip, slc, w, 0, 0, "slice");
	free(x), free(p);
	done(ip, g);
}

/* Moves on LNS data: identical formats copy codes and k; a different format re-encodes. */
static void test_lns_moves(void)
{
	IrGraph *g = gnew();
	float *x = rand_buf(12, 3);
	const IrType *lt = ir_type_lns(C, LNS8, 2, D(3, 4));
	IrValue *w = ir_value_new(g, "w", lt, IR_ROLE_PARAM, x, ir_type(C, IR_DT_F32, 2, D(3, 4)));
	IrAttrs ti = {.perm = {.n = 2, .perm = {1, 0}}}, rs = {.shape = {.rank = 1, .dims = {12}}};
	IrValue *t = node1(g, IR_OP_TRANSPOSE, "t", 1, &w, &ti);
	IrValue *r = node1(g, IR_OP_RESHAPE, "r", 1, &w, &rs);
	LnsFormat f5 = {.bits = 5, .log2g = 1, .scale = LNS_SCALE_CURRENT};
	r->type = ir_type_lns(C, f5, 1, D(12)); /* as the precision pass would */
	IrInterp *ip = go(g);
	CHECK(t->type->dt == IR_DT_LNS);
	float *wd = get(ip, w), *td = get(ip, t), *rd = get(ip, r);
	int ok = 1;
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 4; j++)
			ok &= td[j * 3 + i] == wd[i * 4 + j];
	CHECK_MSG(ok, "transpose of LNS codes");
	const uint8_t *wc = ir_interp_data(ip, w), *tc = ir_interp_data(ip, t);
	CHECK(tc[0] == wc[0] && tc[1] == wc[4] && tc[3] == wc[1]);
	/* re-encoded: current k of the decoded values, nearest */
	LnsScaleState st = {0};
	uint8_t codes[12];
	float want[12];
	int32_t k = lns_encode_tensor(f5, &st, wd, codes, 12, 0, 0, NULL);
	lns_decode_tensor(f5, k, codes, want, 12);
	ok = 1;
	for (int i = 0; i < 12; i++)
		ok &= rd[i] == want[i];
	CHECK_MSG(ok, "reshape into another LNS format re-encodes");
	free(x), free(wd), free(td), free(rd);
	done(ip, g);
}

/* Relu and Neg between identical LNS formats run on codes (LNS.md 4): same k, negative
 * words zeroed or signs flipped, no rounding whatever the output's scale mode. */
static void test_code_exact(void)
{
	IrGraph *g = gnew();
	float *x = rand_buf(40, 2);
	x[0] = 0;
	const IrType *ft = ir_type(C, IR_DT_F32, 1, D(40));
	LnsFormat fd = LNS8;
	fd.scale = LNS_SCALE_DELAYED;
	IrValue *w = ir_value_new(g, "w", ir_type_lns(C, LNS8, 1, D(40)), IR_ROLE_PARAM, x, ft);
	IrValue *r = node1(g, IR_OP_RELU, "relu", 1, &w, NULL);
	IrValue *ng = node1(g, IR_OP_NEG, "neg", 1, &w, NULL);
	r->type = ng->type = w->type;
	IrValue *rd = node1(g, IR_OP_RELU, "relu_delayed", 1, &w, NULL);
	rd->type = ir_type_lns(C, fd, 1, D(40)); /* another format: decoded, encoded */
	IrInterp *ip = go(g);
	float *wd = get(ip, w), *rv = get(ip, r), *nv = get(ip, ng), *dv = get(ip, rd);
	int ok = 1;
	for (int i = 0; i < 40; i++)
		ok &= rv[i] == (wd[i] > 0 ? wd[i] : 0) && nv[i] == -wd[i] && dv[i] == rv[i];
	CHECK_MSG(ok, "relu/neg on codes");
	const uint8_t *wc = ir_interp_data(ip, w), *nc = ir_interp_data(ip, ng);
	CHECK(nc[0] == 0 && wc[0] == 0 && (nc[1] ^ wc[1]) == 0x80);
	CHECK(ir_interp_scale(ip, r)->n_total == 0 && ir_interp_scale(ip, rd)->n_total == 40);
	free(x), free(wd), free(rv), free(nv), free(dv);
	done(ip, g);
}

/* ---- SumTo ---- */

static void sum_to_case(int rt, const int64_t *td)
{
	IrGraph *g = gnew();
	static const int64_t xd[3] = {2, 3, 4};
	float *x = rand_buf(24, 1);
	IrValue *xv = cf32(g, "x", 3, xd, x);
	IrAttrs at = {.shape = {.rank = rt}};
	if (rt)
		memcpy(at.shape.dims, td, sizeof(int64_t) * (size_t)rt);
	IrValue *y = node1(g, IR_OP_SUM_TO, "sum", 1, &xv, &at);
	IrInterp *ip = go(g);
	double want[24] = {0};
	int64_t idx[3];
	for (int64_t f = 0; f < 24; f++) {
		unflat(f, 3, xd, idx);
		want[bidx(idx, 3, rt, td)] += x[f];
	}
	near_val(ip, y, want, 1e-6, 1e-6, "sum_to");
	free(x);
	done(ip, g);
}

static void test_sum_to(void)
{
	sum_to_case(2, D(3, 1));
	sum_to_case(1, D(4));
	sum_to_case(0, NULL);
	sum_to_case(3, D(2, 1, 4));
	sum_to_case(3, D(2, 3, 4));
	sum_to_case(3, D(1, 1, 1));
}

/* ---- Dropout ---- */

static IrGraph *dropout_graph(float ratio, int training, const float *x, IrValue **y,
			      IrValue **mask, IrValue **dx)
{
	IrGraph *g = gnew();
	IrValue *xv = cf32(g, "x", 2, D(100, 100), x);
	IrAttrs at = {.dropout = {.ratio = ratio, .training = training}};
	IrNode *n = node(g, IR_OP_DROPOUT, "drop", 1, &xv, &at);
	*y = n->out[0];
	*mask = n->out[1];
	IrValue *gin[2] = {xv, *mask};
	*dx = node1(g, IR_OP_DROPOUT_GRAD, "drop_grad", 2, gin, &at);
	(*dx)->def->phase = IR_PHASE_BWD;
	return g;
}

static void test_dropout(void)
{
	enum { N = 10000 };
	float *x = rand_buf(N, 1), *y, *y2, *dx;
	uint8_t *m = malloc(N), *m2 = malloc(N);
	for (int i = 0; i < N; i++)
		x[i] = x[i] < 0 ? x[i] - 0.1f : x[i] + 0.1f;
	IrValue *yv, *mv, *dv;
	IrGraph *g = dropout_graph(0.3f, 0, x, &yv, &mv, &dv);
	IrInterp *ip = start(g, 7), *ip2 = start(g, 7);
	run(ip, IR_MODE_TRAIN);
	run(ip2, IR_MODE_TRAIN);
	y = get(ip, yv), y2 = get(ip2, yv), dx = get(ip, dv);
	ir_interp_read(ip, mv, m);
	ir_interp_read(ip2, mv, m2);
	int kept = 0, ok = 1, same = !memcmp(m, m2, N) && !memcmp(y, y2, sizeof(float) * N);
	for (int i = 0; i < N; i++) {
		kept += m[i];
		ok &= m[i] ? y[i] == x[i] / (1.0f - 0.3f) : y[i] == 0.0f;
		ok &= m[i] ? dx[i] == x[i] / (1.0f - 0.3f) : dx[i] == 0.0f;
	}
	CHECK_MSG(fabs(kept / (double)N - 0.7) < 4 * sqrt(0.21 / N), "kept %d of %d", kept, N);
	CHECK_MSG(ok, "dropout values and mask disagree");
	CHECK_MSG(same, "same seed, same step: different masks");
	run(ip, IR_MODE_TRAIN); /* step 2: a new mask */
	ir_interp_read(ip, mv, m2);
	CHECK(memcmp(m, m2, N) != 0);
	run(ip, IR_MODE_EVAL); /* eval: identity, mask all true */
	free(y);
	y = get(ip, yv);
	ir_interp_read(ip, mv, m);
	ok = 1;
	for (int i = 0; i < N; i++)
		ok &= y[i] == x[i] && m[i] == 1;
	CHECK_MSG(ok, "eval dropout is not the identity");
	ir_interp_set_onnx_semantics(ip, 1); /* training flag off: still the identity */
	run(ip, IR_MODE_EVAL);
	ir_interp_read(ip, mv, m);
	CHECK(memchr(m, 0, N) == NULL);
	free(y), free(y2), free(dx);
	ir_interp_free(ip2);
	done(ip, g);

	g = dropout_graph(0.5f, 1, x, &yv, &mv, &dv); /* ONNX training_mode = true */
	ip = start(g, 7);
	ir_interp_set_onnx_semantics(ip, 1);
	run(ip, IR_MODE_EVAL);
	ir_interp_read(ip, mv, m);
	CHECK(memchr(m, 0, N) != NULL);
	done(ip, g);

	g = dropout_graph(0.0f, 0, x, &yv, &mv, &dv);
	ip = go(g);
	y = get(ip, yv);
	ok = 1;
	for (int i = 0; i < N; i++)
		ok &= y[i] == x[i];
	CHECK_MSG(ok, "ratio 0 must keep everything");
	free(y), free(x), free(m), free(m2);
	done(ip, g);
}

/* ---- Cast ---- */

/* Casts n elements of dtype `from` to `to` through a one-node graph into out. */
static void cast_run(IrDType from, IrDType to, int64_t n, const void *in, void *out)
{
	IrGraph *g = gnew();
	IrValue *x = cval(g, "x", from, 1, D(n), in);
	IrAttrs at = {.cast = {.to = to}};
	IrValue *y = node1(g, IR_OP_CAST, "cast", 1, &x, &at);
	IrInterp *ip = go(g);
	CHECK(ir_interp_read(ip, y, out) == 0);
	done(ip, g);
}

static double f16_value(uint16_t h) /* the definition, for the reference */
{
	int e = (h >> 10) & 31, m = h & 1023;
	double v = e ? (1024 + m) * pow(2, e - 25) : m * pow(2, -24);
	return h & 0x8000 ? -v : v;
}

/* Nearest f16 by search over all finite positive values; ties to the even pattern. */
static uint16_t f16_ref(double x)
{
	uint16_t s = signbit(x) ? 0x8000 : 0;
	double a = fabs(x);
	if (isnan(x))
		return 0x7e00;
	if (a >= 65520.0)
		return s | 0x7c00;
	int lo = 0, hi = 0x7bff;
	while (lo < hi) { /* largest pattern with value <= a */
		int mid = (lo + hi + 1) / 2;
		if (f16_value((uint16_t)mid) <= a)
			lo = mid;
		else
			hi = mid - 1;
	}
	double dl = a - f16_value((uint16_t)lo), dh = f16_value((uint16_t)(lo + 1)) - a;
	int pick = dl < dh ? lo : dh < dl ? lo + 1 : (lo % 2 ? lo + 1 : lo);
	return (uint16_t)(s | pick);
}

static void test_cast_f16(void)
{
	enum { N = 20000 };
	float *x = malloc(sizeof(float) * N);
	uint16_t *h = malloc(2 * N);
	for (int i = 0; i < N; i++)
		x[i] = (float)(urand() * pow(2, (int)(urand() * 24) - 8) * 4);
	float special[] = {1.0f, 65504.0f, 65519.0f, 65520.0f, 1e9f, 0x1p-24f, 0x1p-25f,
			   0x1.8p-25f, 1 + 0x1p-11f, 1 + 0x3p-11f, -0.0f, 0.0f, 0x1p-30f,
			   0x1.ffcp-15f, 0x1.ff8p-15f, INFINITY, -INFINITY, NAN, 0x1p-14f};
	memcpy(x, special, sizeof special);
	cast_run(IR_DT_F32, IR_DT_F16, N, x, h);
	int bad = -1;
	for (int i = 0; i < N && bad < 0; i++) {
		uint16_t want = f16_ref(x[i]);
		if (isnan(x[i]) ? (h[i] & 0x7c00) != 0x7c00 || !(h[i] & 0x3ff) : h[i] != want)
			bad = i;
	}
	CHECK_MSG(bad < 0, "f32 %a -> f16 %#x, want %#x", bad >= 0 ? (double)x[bad] : 0.0,
		  bad >= 0 ? h[bad] : 0, bad >= 0 ? f16_ref(x[bad]) : 0);
	CHECK(h[0] == 0x3c00 && h[1] == 0x7bff && h[2] == 0x7bff && h[3] == 0x7c00 &&
	      h[5] == 0x0001 && h[6] == 0 && h[7] == 0x0001 && h[8] == 0x3c00 &&
	      h[9] == 0x3c02 && h[10] == 0x8000 && h[15] == 0x7c00 && h[16] == 0xfc00);
	/* every f16 pattern through f64 and back */
	uint16_t *all = malloc(2 * 65536), *back = malloc(2 * 65536);
	double *d = malloc(8 * 65536);
	for (int i = 0; i < 65536; i++)
		all[i] = (uint16_t)i;
	cast_run(IR_DT_F16, IR_DT_F64, 65536, all, d);
	cast_run(IR_DT_F64, IR_DT_F16, 65536, d, back);
	int ok = 1;
	for (int i = 0; i < 65536; i++) {
		int nan = (i & 0x7c00) == 0x7c00 && (i & 0x3ff);
		int inf = (i & 0x7fff) == 0x7c00;
		ok &= nan ? isnan(d[i]) && (back[i] & 0x7c00) == 0x7c00 && (back[i] & 0x3ff)
		    : inf ? isinf(d[i]) && back[i] == i
			  : back[i] == i && d[i] == f16_value((uint16_t)i);
	}
	CHECK_MSG(ok, "f16 -> f64 -> f16 round trip");
	free(x), free(h), free(all), free(back), free(d);
}

static void test_cast(void)
{
	float f[] = {1.9f, -1.9f, 3e9f, -3e9f, NAN, 0.5f, -0.0f, 255.9f, -5.0f, 300.0f};
	int32_t i32[10];
	cast_run(IR_DT_F32, IR_DT_I32, 10, f, i32);
	CHECK(i32[0] == 1 && i32[1] == -1 && i32[2] == INT32_MAX && i32[3] == INT32_MIN &&
	      i32[4] == 0 && i32[5] == 0 && i32[6] == 0);
	uint8_t u8[10];
	cast_run(IR_DT_F32, IR_DT_U8, 10, f, u8);
	CHECK(u8[0] == 1 && u8[1] == 0 && u8[2] == 255 && u8[3] == 0 && u8[4] == 0 &&
	      u8[7] == 255 && u8[8] == 0 && u8[9] == 255);
	float big[] = {1e19f, -1e19f, 9.2233715e18f, -9.2233720e18f};
	int64_t i64[4];
	cast_run(IR_DT_F32, IR_DT_I64, 4, big, i64);
	CHECK(i64[0] == INT64_MAX && i64[1] == INT64_MIN && i64[2] == (int64_t)9.2233715e18f &&
	      i64[3] == INT64_MIN);
	uint64_t u64[4];
	cast_run(IR_DT_F32, IR_DT_U64, 4, big, u64);
	CHECK(u64[0] == (uint64_t)1e19f && u64[1] == 0);
	float b[] = {0.0f, -0.0f, 0.1f, NAN};
	uint8_t bo[4];
	cast_run(IR_DT_F32, IR_DT_BOOL, 4, b, bo);
	CHECK(bo[0] == 0 && bo[1] == 0 && bo[2] == 1 && bo[3] == 1);
	int64_t w[] = {300, -129, 127, -1};
	int8_t i8[4];
	cast_run(IR_DT_I64, IR_DT_I8, 4, w, i8);
	CHECK(i8[0] == 44 && i8[1] == 127 && i8[2] == 127 && i8[3] == -1);
	uint32_t u32[4];
	cast_run(IR_DT_I64, IR_DT_U32, 4, w, u32);
	CHECK(u32[3] == UINT32_MAX && u32[0] == 300);
	float back[4];
	cast_run(IR_DT_I64, IR_DT_F32, 4, w, back);
	CHECK(back[0] == 300.0f && back[1] == -129.0f);
	uint8_t bb[] = {0, 1, 1, 0};
	double bd[4];
	cast_run(IR_DT_BOOL, IR_DT_F64, 4, bb, bd);
	CHECK(bd[0] == 0.0 && bd[1] == 1.0);
	int64_t huge[] = {INT64_MAX, INT64_MIN};
	float hf[2];
	cast_run(IR_DT_I64, IR_DT_F32, 2, huge, hf);
	CHECK(hf[0] == 0x1p63f && hf[1] == -0x1p63f);
	test_cast_f16();
}

/* ---- losses ---- */

static void test_losses(void)
{
	IrGraph *g = gnew();
	float *lg = rand_buf(30, 4), *p = rand_buf(12, 1), *t = rand_buf(12, 1);
	int64_t lab[6] = {0, 4, 2, 2, 1, 3};
	IrValue *xin[2] = {cf32(g, "logits", 2, D(6, 5), lg), cval(g, "lab", IR_DT_I64, 1, D(6), lab)};
	IrValue *min[2] = {cf32(g, "p", 2, D(3, 4), p), cf32(g, "t", 2, D(3, 4), t)};
	IrValue *xe = node1(g, IR_OP_XENT, "xent", 2, xin, NULL);
	IrValue *xg = node1(g, IR_OP_XENT_GRAD, "xent_grad", 2, xin, NULL);
	IrValue *ms = node1(g, IR_OP_MSE, "mse", 2, min, NULL);
	IrValue *mg = node1(g, IR_OP_MSE_GRAD, "mse_grad", 2, min, NULL);
	IrInterp *ip = go(g);
	double loss = 0, grad[30], mse = 0, mgrad[12];
	for (int r = 0; r < 6; r++) {
		double s = 0;
		for (int c = 0; c < 5; c++)
			s += exp(lg[r * 5 + c]);
		loss += log(s) - lg[r * 5 + lab[r]];
		for (int c = 0; c < 5; c++)
			grad[r * 5 + c] = (exp(lg[r * 5 + c]) / s - (c == lab[r])) / 6;
	}
	for (int i = 0; i < 12; i++) {
		mse += ((double)p[i] - t[i]) * ((double)p[i] - t[i]) / 12;
		mgrad[i] = 2 * ((double)p[i] - t[i]) / 12;
	}
	loss /= 6;
	near_val(ip, xe, &loss, 1e-6, 0, "xent");
	near_val(ip, xg, grad, 1e-6, 1e-8, "xent_grad");
	near_val(ip, ms, &mse, 1e-6, 0, "mse");
	near_val(ip, mg, mgrad, 1e-6, 0, "mse_grad");
	done(ip, g);

	g = gnew();
	lab[2] = 7;
	xin[0] = cf32(g, "logits", 2, D(6, 5), lg);
	xin[1] = cval(g, "lab", IR_DT_I64, 1, D(6), lab);
	node1(g, IR_OP_XENT, "xent", 2, xin, NULL);
	ip = start(g, 1);
	CHECK(ir_interp_run(ip, IR_MODE_TRAIN) == -1);
	CHECK_MSG(strstr(ir_interp_error(ip),
			 "node 'xent' (lnsc.SoftmaxCrossEntropy): label 7 of row 2 is out of "
			 "range [0, 5)") != NULL,
		  "%s", ir_interp_error(ip));
	done(ip, g);
	free(lg), free(p), free(t);
}

/* ---- LNS outputs and telemetry ---- */

/* Relu with an lns8g8 output ('current' scale, nearest): the decoded result is the correctly
 * rounded LNS value of each output, computed here in double. */
static void test_lns_relu(void)
{
	enum { N = 4000 };
	IrGraph *g = gnew();
	float *x = malloc(sizeof(float) * N);
	for (int i = 0; i < N; i++)
		x[i] = (float)(urand() * pow(2, urand() * 14 - 4));
	IrValue *xv = cf32(g, "x", 1, D(N), x);
	IrValue *y = node1(g, IR_OP_RELU, "relu", 1, &xv, NULL);
	y->type = ir_type_lns(C, LNS8, 1, D(N));
	IrInterp *ip = go(g);
	float *got = get(ip, y);
	double amax = 0;
	for (int i = 0; i < N; i++)
		amax = fmax(amax, x[i] > 0 ? x[i] : 0);
	int k = (int)ceil(8 * log2(amax)) - 127, bad = -1, checked = 0;
	for (int i = 0; i < N && bad < 0; i++) {
		double want = 0;
		if (x[i] > 0) {
			double t = 8 * log2((double)x[i]) - k;
			if (fabs(t - floor(t) - 0.5) < 1e-6)
				continue; /* within the band where either neighbour is allowed */
			long m = lround(t);
			m = m > 127 ? 127 : m;
			want = m < 1 ? 0 : (double)(float)pow(2, (m + k) / 8.0);
		}
		checked++;
		if (got[i] != (float)want)
			bad = i;
	}
	CHECK_MSG(bad < 0, "relu->lns8g8: x = %.9g decodes to %.9g", bad >= 0 ? x[bad] : 0.0,
		  bad >= 0 ? (double)got[bad] : 0.0);
	CHECK(checked > N - 10);
	CHECK(ir_interp_scale(ip, y)->k == k);
	free(got), free(x);
	done(ip, g);
}

/* Saturation and underflow counts: per encode (ir_interp_stats) and accumulated over TRAIN
 * steps in the value's LnsScaleState; EVAL does not record. */
static void test_telemetry(void)
{
	IrGraph *g = gnew();
	float x[5] = {1000.0f, 0.01f, 4.0f, 0.0f, -3.0f};
	IrValue *xv = cf32(g, "x", 1, D(5), x);
	IrValue *q = node1(g, IR_OP_QUANTIZE, "q", 1, &xv, NULL);
	LnsFormat f = {.bits = 4, .log2g = 0, .scale = LNS_SCALE_STATIC}; /* k = 0: 2^1..2^7 */
	q->type = ir_type_lns(C, f, 1, D(5));
	IrInterp *ip = go(g);
	double want[5] = {128, 0, 4, 0, -4};
	near_val(ip, q, want, 0, 0, "lns4g1 quantize");
	LnsScaleState *st = ir_interp_scale(ip, q);
	CHECK(st->n_sat == 1 && st->n_unf == 1 && st->n_total == 5 && st->nhist == 1);
	run(ip, IR_MODE_TRAIN);
	CHECK(st->n_sat == 2 && st->n_unf == 2 && st->n_total == 10 && st->nhist == 2);
	run(ip, IR_MODE_EVAL);
	IrInterpStats s;
	CHECK(ir_interp_stats(ip, q, &s) == 0 && s.n_sat == 1 && s.n_unf == 1 &&
	      s.n_total == 5 && s.amax == 1000.0f);
	CHECK(st->n_total == 10 && st->nhist == 2);
	CHECK(ir_interp_stats(ip, xv, &s) == -1);
	done(ip, g);
}

/* A GEMM reading an LNS parameter sees its decoded values. */
static void test_lns_gemm_input(void)
{
	IrGraph *g = gnew();
	float *w0 = rand_buf(12, 1), *x = rand_buf(8, 1);
	const IrType *ft = ir_type(C, IR_DT_F32, 2, D(3, 4));
	IrValue *w = ir_value_new(g, "w", ir_type_lns(C, LNS8, 2, D(3, 4)), IR_ROLE_PARAM, w0, ft);
	IrAttrs at = {.gemm = {.alpha = 1, .beta = 1}};
	IrValue *in[2] = {cf32(g, "x", 2, D(2, 3), x), w};
	IrValue *y = node1(g, IR_OP_GEMM, "gemm", 2, in, &at);
	IrInterp *ip = go(g);
	float *wd = get(ip, w);
	double want[8];
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 4; j++) {
			want[i * 4 + j] = 0;
			for (int k = 0; k < 3; k++)
				want[i * 4 + j] += (double)x[i * 3 + k] * wd[k * 4 + j];
		}
	near_val(ip, y, want, 1e-6, 1e-7, "gemm of an lns weight");
	free(w0), free(x), free(wd);
	done(ip, g);
}

/* ---- optimizers ---- */

typedef struct Opt {
	IrGraph *g;
	IrValue *w, *grad, *s1, *s2;
	IrInterp *ip;
} Opt;

/* W (param, type wt), its gradient bound each step, and f32 state; one update node. */
static Opt opt_graph(IrOp op, const IrType *wt, const float *w0, const IrAttrOpt *o)
{
	Opt t = {.g = gnew()};
	const IrType *ft = ir_type_f32_like(C, wt);
	t.w = ir_value_new(t.g, "w", wt, IR_ROLE_PARAM, w0, ft);
	t.grad = ir_value_new(t.g, "dw", ft, IR_ROLE_INPUT, NULL, NULL);
	t.s1 = ir_value_new(t.g, "s1", ft, IR_ROLE_STATE, NULL, NULL);
	t.s2 = ir_value_new(t.g, "s2", ft, IR_ROLE_STATE, NULL, NULL);
	IrValue *in[4] = {t.w, t.grad, t.s1, t.s2};
	IrAttrs at = {.opt = *o};
	IrNode *n = node(t.g, op, "update", op == IR_OP_ADAM ? 4 : 3, in, &at);
	n->phase = IR_PHASE_UPDATE;
	t.ip = start(t.g, 99);
	return t;
}

static void test_sgd(void)
{
	enum { N = 35, STEPS = 3 };
	for (int mom = 0; mom < 2; mom++) {
		IrAttrOpt o = {.lr = 0.1f, .momentum = mom ? 0.9f : 0, .weight_decay = 0.01f};
		float *w0 = rand_buf(N, 1);
		Opt t = opt_graph(IR_OP_SGD, ir_type(C, IR_DT_F32, 2, D(5, 7)), w0, &o);
		double w[N], buf[N] = {0};
		for (int i = 0; i < N; i++)
			w[i] = w0[i];
		for (int s = 0; s < STEPS; s++) {
			float *gr = rand_buf(N, 1);
			ir_interp_bind(t.ip, t.grad, gr);
			run(t.ip, IR_MODE_TRAIN);
			for (int i = 0; i < N; i++) { /* torch.optim.SGD */
				double d = gr[i] + 0.01 * w[i];
				if (mom) {
					buf[i] = s == 0 ? d : 0.9 * buf[i] + d;
					d = buf[i];
				}
				w[i] -= 0.1 * d;
			}
			free(gr);
		}
		near_val(t.ip, t.w, w, 1e-5, 1e-7, mom ? "sgd momentum" : "sgd");
		double zero[N] = {0};
		near_val(t.ip, t.s1, mom ? buf : zero, 1e-5, 1e-7, "sgd momentum buffer");
		CHECK(ir_interp_step(t.ip) == STEPS);
		done(t.ip, t.g);
		free(w0);
	}
}

/* lns-sgd: decode, update, re-encode nearest with W's fixed k; tiny updates are lost. */
static void test_sgd_lns(void)
{
	enum { N = 24 };
	IrAttrOpt o = {.lr = 0.05f};
	float *w0 = rand_buf(N, 1), *gr = rand_buf(N, 4), tiny[N];
	LnsFormat f = LNS8;
	Opt t = opt_graph(IR_OP_SGD, ir_type_lns(C, f, 2, D(4, 6)), w0, &o);
	int32_t k = ir_interp_scale(t.ip, t.w)->k;
	float *before = get(t.ip, t.w);
	for (int i = 0; i < N; i++)
		tiny[i] = 1e-6f;
	ir_interp_bind(t.ip, t.grad, tiny);
	run(t.ip, IR_MODE_TRAIN);
	float *after = get(t.ip, t.w);
	CHECK_MSG(!memcmp(before, after, sizeof(float) * N), "a tiny update changed W");
	ir_interp_bind(t.ip, t.grad, gr);
	run(t.ip, IR_MODE_TRAIN);
	free(after);
	after = get(t.ip, t.w);
	f.scale = LNS_SCALE_STATIC;
	int ok = 1;
	for (int i = 0; i < N; i++) {
		int fl;
		float w = before[i] - 0.05f * gr[i];
		ok &= after[i] == lns_decode(f, k, lns_encode(f, k, w, 0, &fl));
	}
	CHECK_MSG(ok, "lns-sgd update");
	CHECK(ir_interp_scale(t.ip, t.w)->k == k);
	free(w0), free(gr), free(before), free(after);
	done(t.ip, t.g);
}

static void test_adam(void)
{
	enum { N = 20, STEPS = 4 };
	for (int wd = 0; wd < 2; wd++) {
		IrAttrOpt o = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
			       .weight_decay = wd ? 0.1f : 0};
		float *w0 = rand_buf(N, 1);
		Opt t = opt_graph(IR_OP_ADAM, ir_type(C, IR_DT_F32, 2, D(4, 5)), w0, &o);
		double w[N], m[N] = {0}, v[N] = {0};
		for (int i = 0; i < N; i++)
			w[i] = w0[i];
		for (int s = 1; s <= STEPS; s++) {
			float *gr = rand_buf(N, 0.5);
			ir_interp_bind(t.ip, t.grad, gr);
			run(t.ip, IR_MODE_TRAIN);
			double b1 = (double)0.9f, b2 = (double)0.999f;
			for (int i = 0; i < N; i++) { /* torch.optim.Adam */
				double gd = gr[i] + (wd ? (double)0.1f * w[i] : 0);
				m[i] = b1 * m[i] + (1 - b1) * gd;
				v[i] = b2 * v[i] + (1 - b2) * gd * gd;
				double mh = m[i] / (1 - pow(b1, s)), vh = v[i] / (1 - pow(b2, s));
				w[i] -= (double)0.01f * mh / (sqrt(vh) + 1e-8);
			}
			free(gr);
		}
		near_val(t.ip, t.w, w, 1e-5, 1e-6, wd ? "adam weight decay" : "adam");
		near_val(t.ip, t.s1, m, 1e-4, 1e-7, "adam m");
		near_val(t.ip, t.s2, v, 1e-4, 1e-9, "adam v");
		done(t.ip, t.g);
		free(w0);
	}
}

/* Madam on lns<12,128> against LNS.md's fp32 form, within one code step. */
static void test_madam(void)
{
	enum { N = 48, STEPS = 6 };
	LnsMadamParams p = lns_madam_defaults();
	IrAttrOpt o = {.lr = p.lr, .beta2 = p.beta2, .p_scale = p.p_scale, .g_bound = p.g_bound};
	LnsFormat fu = {.bits = 12, .log2g = 7};
	float *w0 = rand_buf(N, 0.2);
	w0[0] = 0.0f; /* an exact zero encodes as zero, and Madam leaves zero words alone */
	Opt t = opt_graph(IR_OP_MADAM, ir_type_lns(C, fu, 2, D(6, 8)), w0, &o);
	double ss = 0;
	for (int i = 0; i < N; i++)
		ss += (double)w0[i] * w0[i];
	double max = p.p_scale * sqrt(ss / N);
	int32_t kw = (int32_t)lround(128 * log2(max)) - 2047;
	CHECK_MSG(ir_interp_scale(t.ip, t.w)->k == kw, "k_w %d, want %d",
		  ir_interp_scale(t.ip, t.w)->k, kw);
	float *start_w = get(t.ip, t.w);
	double w[N], v[N] = {0};
	for (int i = 0; i < N; i++)
		w[i] = start_w[i];
	for (int s = 1; s <= STEPS; s++) {
		float *gr = rand_buf(N, 0.01);
		ir_interp_bind(t.ip, t.grad, gr);
		run(t.ip, IR_MODE_TRAIN);
		for (int i = 0; i < N; i++) {
			v[i] = p.beta2 * v[i] + (1 - p.beta2) * (double)gr[i] * gr[i];
			double vh = v[i] / (1 - pow(p.beta2, s));
			double gn = vh > 0 ? gr[i] / sqrt(vh) : 0;
			gn = fmin(fmax(nearbyint(gn), -p.g_bound), p.g_bound);
			w[i] *= pow(2, -(double)p.lr * gn * (w[i] > 0 ? 1 : -1));
			w[i] = fmin(fmax(w[i], -max), max);
		}
		free(gr);
		float *got = get(t.ip, t.w);
		double worst = 0;
		CHECK(got[0] == 0.0f);
		for (int i = 1; i < N; i++) {
			CHECK(!signbit(got[i]) == !signbit(w[i]) && got[i] != 0);
			worst = fmax(worst, fabs(log2(fabs(got[i])) - log2(fabs(w[i]))));
		}
		/* d = lr * gU * gn is an integer with the defaults: only the clamp at max (top
		 * code vs p_scale RMS) may differ, by less than one code step */
		CHECK_MSG(worst <= 1 / 128.0, "madam step %d: %.4g code steps off", s, worst * 128);
		free(got);
	}
	near_val(t.ip, t.s1, v, 1e-4, 1e-12, "madam v");
	free(w0), free(start_w);
	done(t.ip, t.g);
}

/* The forward view of a Madam weight: k fixed at init, words per lns_view_word. */
static void test_weight_view(void)
{
	IrGraph *g = gnew();
	LnsFormat fu = {.bits = 12, .log2g = 7}, fv = {.bits = 8, .log2g = 3};
	float *w0 = rand_buf(32, 0.3);
	const IrType *ft = ir_type(C, IR_DT_F32, 2, D(4, 8));
	IrValue *w = ir_value_new(g, "w", ir_type_lns(C, fu, 2, D(4, 8)), IR_ROLE_PARAM, w0, ft);
	IrValue *dw = ir_value_new(g, "dw", ft, IR_ROLE_INPUT, NULL, NULL);
	IrValue *v = ir_value_new(g, "v", ft, IR_ROLE_STATE, NULL, NULL);
	IrValue *view = node1(g, IR_OP_WEIGHT_VIEW, "view", 1, &w, NULL);
	view->type = ir_type_lns(C, fv, 2, D(4, 8));
	LnsMadamParams p = lns_madam_defaults();
	IrAttrs at = {.opt = {.lr = p.lr, .beta2 = p.beta2, .p_scale = p.p_scale,
			      .g_bound = p.g_bound}};
	IrNode *m = node(g, IR_OP_MADAM, "madam", 3, (IrValue *[]){w, dw, v}, &at);
	m->phase = IR_PHASE_UPDATE;
	IrInterp *ip = start(g, 3);
	int32_t kw = ir_interp_scale(ip, w)->k, kv = lns_view_offset(fu, kw, fv);
	CHECK(ir_interp_scale(ip, view)->k == kv);
	run(ip, IR_MODE_EVAL);
	const uint16_t *wc = ir_interp_data(ip, w);
	const uint8_t *vc = ir_interp_data(ip, view);
	int ok = 1;
	for (int i = 0; i < 32; i++)
		ok &= vc[i] == lns_view_word(fu, kw, wc[i], fv, kv) && (vc[i] & 0x7f) != 0;
	CHECK_MSG(ok, "weight view words");
	free(w0);
	done(ip, g);
}

/* ---- executor: phases, errors, dead values, folding ---- */

static void test_eval_phases(void)
{
	IrGraph *g = gnew();
	float *x = rand_buf(12, 1);
	int64_t lab[3] = {1, 0, 3};
	IrValue *xv = ir_value_new(g, "x", ir_type(C, IR_DT_F32, 2, D(3, 4)), IR_ROLE_INPUT, NULL,
				   NULL);
	IrValue *lv = ir_value_new(g, "labels", ir_type(C, IR_DT_I64, 1, D(3)), IR_ROLE_LABEL,
				   NULL, NULL);
	IrValue *y = node1(g, IR_OP_RELU, "relu", 1, &xv, NULL);
	IrValue *loss = node1(g, IR_OP_XENT, "loss", 2, (IrValue *[]){y, lv}, NULL);
	loss->def->phase = IR_PHASE_LOSS;
	IrInterp *ip = start(g, 1);
	CHECK(ir_interp_run(ip, IR_MODE_EVAL) == -1); /* x not bound */
	CHECK_MSG(strstr(ir_interp_error(ip), "input 'x' is not bound"), "%s", ir_interp_error(ip));
	ir_interp_bind(ip, xv, x);
	run(ip, IR_MODE_EVAL);
	float l, r[12];
	CHECK(ir_interp_read(ip, y, r) == 0 && r[0] == (x[0] > 0 ? x[0] : 0));
	CHECK(ir_interp_read(ip, loss, &l) == -1); /* no labels: no loss */
	CHECK(ir_interp_step(ip) == 0);
	ir_interp_bind(ip, lv, lab);
	run(ip, IR_MODE_EVAL);
	CHECK(ir_interp_read(ip, loss, &l) == 0 && l > 0);
	CHECK(ir_interp_bind(ip, y, x) == -1);
	free(x);
	done(ip, g);
}

static void test_nan(void)
{
	IrGraph *g = gnew();
	float a[3] = {1, 0, 2}, b[3] = {1, 0, 4};
	IrValue *in[2] = {cf32(g, "a", 1, D(3), a), cf32(g, "b", 1, D(3), b)};
	IrNode *n = ir_build(g, IR_OP_DIV, "div", 2, in, NULL, (const char *[]){"q"});
	n->out[0]->is_output = 1;
	IrInterp *ip = start(g, 1);
	CHECK(ir_interp_run(ip, IR_MODE_TRAIN) == -1);
	CHECK_MSG(!strcmp(ir_interp_error(ip),
			  "numeric error: tensor 'q' (node 'div', Div) has NaN/Inf at step 1"),
		  "%s", ir_interp_error(ip));
	done(ip, g);
}

/* b dies after its last reader; its bytes are reused and reading it is refused. */
static void test_dead_read(void)
{
	IrGraph *g = gnew();
	float x[16] = {1, -2, 3};
	IrValue *xv = cf32(g, "x", 1, D(16), x);
	IrValue *b = ir_build1(g, IR_OP_RELU, "b", 1, &xv, NULL);
	IrValue *c = ir_build1(g, IR_OP_NEG, "c", 1, &b, NULL);
	IrValue *d = node1(g, IR_OP_NEG, "d", 1, &c, NULL);
	IrInterp *ip = go(g);
	CHECK(b->loc.offset == d->loc.offset && b->loc.area == IR_AREA_SCRATCH);
	float out[16];
	CHECK(ir_interp_read(ip, b, out) == -1);
	CHECK(ir_interp_read(ip, d, out) == 0 && out[0] == 1 && out[1] == 0);
	done(ip, g);
}

static void test_fold(void)
{
	IrGraph *g = gnew();
	float a[4] = {1, 2, 3, 4}, b[2] = {10, 20};
	IrValue *in[2] = {cf32(g, "a", 2, D(2, 2), a), cf32(g, "b", 1, D(2), b)};
	IrNode *n = ir_build(g, IR_OP_ADD, "add", 2, in, NULL, NULL);
	IrTensor out[1];
	CHECK(ir_interp_fold(g, n, out) == 0);
	const float *o = out[0].data;
	CHECK(o[0] == 11 && o[1] == 22 && o[2] == 13 && o[3] == 24);
	IrValue *x = ir_value_new(g, "x", ir_type(C, IR_DT_F32, 1, D(2)), IR_ROLE_INPUT, NULL, NULL);
	IrNode *m = ir_build(g, IR_OP_NEG, "neg", 1, &x, NULL, NULL);
	ir_diag_clear(C);
	CHECK(ir_interp_fold(g, m, out) == -1);
	CHECK(strstr(ir_diag_text(C), "node 'neg'") && strstr(ir_diag_text(C), "constant"));
	float z[2] = {0, 0};
	IrValue *zin[2] = {cf32(g, "z", 1, D(2), z), cf32(g, "z2", 1, D(2), z)};
	IrNode *q = ir_build(g, IR_OP_DIV, "zdiv", 2, zin, NULL, NULL);
	ir_diag_clear(C);
	CHECK(ir_interp_fold(g, q, out) == -1 && strstr(ir_diag_text(C), "NaN/Inf"));
	ir_graph_free(g);
}

/* ---- the memory plan, brute force ---- */

/* A random DAG of elementwise ops (some read values produced long before, some are dead),
 * planned and run; every graph output must equal a direct evaluation, and no two values
 * whose live ranges meet may share a byte. */
static void test_plan_random(void)
{
	enum { NV = 160, W = 37 };
	static const IrOp ops[] = {IR_OP_ADD, IR_OP_SUB, IR_OP_MUL, IR_OP_NEG, IR_OP_RELU,
				   IR_OP_SIGMOID, IR_OP_TANH};
	IrGraph *g = gnew();
	IrValue *v[NV];
	double *ref = malloc(sizeof(double) * NV * W);
	float *x = rand_buf(W, 1);
	v[0] = cf32(g, "x", 1, D(W), x);
	for (int j = 0; j < W; j++)
		ref[j] = x[j];
	for (int i = 1; i < NV; i++) {
		IrOp op = ops[(seed_state >> 4) % 7];
		int a = (int)((urand() + 1) / 2 * i), b = i - 1 - (int)((urand() + 1) / 2 * 4);
		b = b < 0 ? 0 : b;
		char name[16];
		snprintf(name, sizeof name, "n%d", i);
		IrValue *in[2] = {v[a], v[b]};
		v[i] = ir_build1(g, op, name, op <= IR_OP_MUL ? 2 : 1, in, NULL);
		if (urand() > 0.8)
			v[i]->def->phase = IR_PHASE_BWD; /* phases do not matter to liveness */
		for (int j = 0; j < W; j++) {
			double p = ref[a * W + j], q = ref[b * W + j];
			ref[i * W + j] = op <= IR_OP_MUL ? ref_bin(op, p, q)
				       : op == IR_OP_NEG ? -p
				       : op == IR_OP_RELU ? (p > 0 ? p : 0)
				       : op == IR_OP_SIGMOID ? 1 / (1 + exp(-p))
							     : tanh(p);
		}
		if (urand() > 0.85 || i == NV - 1)
			v[i]->is_output = 1;
	}
	IrInterp *ip = go(g);
	/* live ranges from the node order, computed independently of the plan */
	int nn = g->nodes.n, start[NV * 2], end[NV * 2];
	for (int i = 0; i < g->values.n; i++)
		start[i] = end[i] = -1;
	for (int i = 0; i < nn; i++) {
		IrNode *n = IR_NODE(g, i);
		for (int j = 0; j < n->nin; j++)
			end[n->in[j]->id] = i;
		start[n->out[0]->id] = i;
		if (end[n->out[0]->id] < i)
			end[n->out[0]->id] = i;
	}
	int overlaps = 0, misplaced = 0;
	for (int a = 0; a < g->values.n; a++) {
		IrValue *va = IR_VALUE(g, a);
		if (va->loc.area != IR_AREA_SCRATCH)
			continue;
		if (va->is_output)
			end[a] = nn;
		misplaced += va->loc.offset % 64 != 0 ||
			     va->loc.offset + va->loc.bytes > g->plan->scratch_bytes;
	}
	for (int a = 0; a < g->values.n; a++)
		for (int b = a + 1; b < g->values.n; b++) {
			IrValue *va = IR_VALUE(g, a), *vb = IR_VALUE(g, b);
			if (va->loc.area != IR_AREA_SCRATCH || vb->loc.area != IR_AREA_SCRATCH)
				continue;
			int live = start[a] <= end[b] && start[b] <= end[a];
			int bytes = va->loc.offset < vb->loc.offset + vb->loc.bytes &&
				    vb->loc.offset < va->loc.offset + va->loc.bytes;
			overlaps += live && bytes;
		}
	CHECK_MSG(overlaps == 0, "%d pairs of live values share bytes", overlaps);
	CHECK(misplaced == 0);
	CHECK(g->plan->temp_off < (size_t)NV * W * 4 / 2); /* reuse happened */
	for (int i = 0; i < NV; i++)
		if (v[i]->is_output) {
			char what[32];
			snprintf(what, sizeof what, "random dag value %d", i);
			near_val(ip, v[i], ref + i * W, 1e-5, 1e-6, what);
		}
	free(ref), free(x);
	done(ip, g);
}

/* State blob: header first, params/state/scale slots disjoint and inside. */
static void test_plan_state(void)
{
	Opt t = opt_graph(IR_OP_ADAM, ir_type_lns(C, LNS8, 2, D(3, 5)),
			  (float[15]){1, 2, 3}, &(IrAttrOpt){.lr = 0.1f, .beta1 = 0.9f,
							      .beta2 = 0.99f, .eps = 1e-8f});
	size_t lo[8], hi[8];
	int n = 0;
	for (int i = 0; i < t.g->values.n; i++) {
		IrValue *v = IR_VALUE(t.g, i);
		if (v->loc.area == IR_AREA_STATE)
			lo[n] = v->loc.offset, hi[n++] = v->loc.offset + v->loc.bytes;
		if (v->loc.scale_off >= 0)
			lo[n] = (size_t)v->loc.scale_off,
			hi[n++] = (size_t)v->loc.scale_off + sizeof(LnsScaleState);
		CHECK((v->type->dt == IR_DT_LNS) == (v->loc.scale_off >= 0));
	}
	CHECK(n == 4);
	int bad = 0;
	for (int a = 0; a < n; a++) {
		bad += lo[a] < IR_STATE_HEADER_BYTES || hi[a] > t.g->plan->state_bytes;
		for (int b = a + 1; b < n; b++)
			bad += lo[a] < hi[b] && lo[b] < hi[a];
	}
	CHECK(bad == 0);
	CHECK(t.grad->loc.area == IR_AREA_IO && t.g->plan->first_update == 0);
	done(t.ip, t.g);
}

/* ---- speed of the reference GEMM ---- */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench_gemm(int tb)
{
	IrGraph *g = gnew();
	float *x = rand_buf(64 * 784, 1), *w = rand_buf(784 * 256, 0.05);
	IrAttrs at = {.gemm = {.alpha = 1, .beta = 1, .trans_b = tb}};
	IrValue *in[2] = {cf32(g, "x", 2, D(64, 784), x),
			  cf32(g, "w", 2, tb ? D(256, 784) : D(784, 256), w)};
	node1(g, IR_OP_GEMM, "fc", 2, in, &at);
	IrInterp *ip = start(g, 1);
	double best = 1e9;
	for (int r = 0; r < 15; r++) {
		double t0 = now();
		run(ip, IR_MODE_EVAL);
		best = fmin(best, now() - t0);
	}
	printf("gemm 64x784 @ 784x256 (transB=%d): %.2f ms, %.1f GFLOP/s\n", tb, best * 1e3,
	       2.0 * 64 * 784 * 256 / best * 1e-9);
	free(x), free(w);
	done(ip, g);
}

int main(void)
{
	C = ir_ctx_new();
	test_gemm();
	test_matmul();
	test_binary();
	test_unary();
	test_softmax();
	test_grad_pairs();
	test_moves();
	test_lns_moves();
	test_code_exact();
	test_sum_to();
	test_dropout();
	test_cast();
	test_losses();
	test_lns_relu();
	test_telemetry();
	test_lns_gemm_input();
	test_sgd();
	test_sgd_lns();
	test_adam();
	test_madam();
	test_weight_view();
	test_eval_phases();
	test_nan();
	test_dead_read();
	test_fold();
	test_plan_random();
	test_plan_state();
	bench_gemm(0);
	bench_gemm(1);
	ir_ctx_free(C);
	return t_finish("test_interp_ops");
}
