/* test_cg_conv.c: the convolution kernels (Conv, ConvGradX, ConvGradW as implicit GEMMs,
 * codegen/cg_conv.c and cg_gemm.c) against an fp64 reference, across thread counts and
 * vector widths.
 *
 * Each case builds a one-node graph (the data operand an f32 input, quantised in the graph when
 * it is LNS; the other a constant, LNS ones encoded at init), compiles it with the JIT and runs
 * two training steps (the first encodes an LNS output in two passes, the second in one, with
 * the history). The f32 result must be within the fp32 bound of an fp64 convolution of the
 * decoded operands, (K + 3) 2^-24 sum |a b| per element, K the number of products. A case with
 * an LNS output (the fused encode) runs beside its twin with an f32 output: the two share the
 * FMA chains, so the LNS model's codes must be exactly the twin's results encoded by ir/lns.c
 * with the LNS model's k (the k itself checked against lns_scale_pick of the twin's amax on the
 * first step), stochastic rounding keyed as the interpreter keys it. Every case runs with 1 and
 * 2 threads and at vector widths 16, 8 and 4 (x86-64-v4, -v3 and baseline x86-64, as the host
 * allows): results must be bit-identical. The fused Madam update on ConvGradW must leave the
 * state blob (weight codes, second moments, scale states) byte-identical to the unfused llvm
 * step's (ConvGradW encoding dW, then the Madam kernel), which test_cg_ops checks against the
 * interpreter.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cgjit.h"
#include "codegen/cg.h"
#include "passes/passes.h"
#include "runtime/lnsrt.h"
#include "testlib.h"

static IrCtx *C;
static const char *cpus[3];
static int ncpus;

/* ---- deterministic data ---- */

static Rng R = {0x2545F4914F6CDD1Dull};

/* The f32 values of an operand as the model read them: decoded LNS codes (computed or
 * encoded at init), an f32 constant's data, or the input bound this step. */
static void read_value(Jit *J, const IrValue *v, const float *input, float *out)
{
	size_t n = (size_t)v->type->numel;
	if (v->type->dt == IR_DT_LNS)
		lns_decode_tensor(v->type->fmt, jit_k(J, v), jit_data(J, v), out, n);
	else if (v->loc.area == IR_AREA_CONST)
		memcpy(out, v->init, n * sizeof(float));
	else
		memcpy(out, input, n * sizeof(float));
}

/* ---- cases ---- */

typedef struct Case {
	IrOp op;
	int64_t n, c, h, w, m; /* X [n, c, h, w], W [m, c / group, kh, kw] */
	int k[2], s[2], d[2], pad[4], group;
	int bias, relu;
	const char *fa, *fb; /* formats of the data operand (X, or dY) and of the constant one */
	const char *fy;      /* output format (NULL: f32) */
} Case;

static IrAttrConv conv_attr(const Case *k)
{
	IrAttrConv a = {.group = k->group, .xhw = {0, 0}};
	for (int i = 0; i < 2; i++)
		a.kernel[i] = k->k[i], a.stride[i] = k->s[i], a.dilation[i] = k->d[i];
	for (int i = 0; i < 4; i++)
		a.pad[i] = k->pad[i];
	return a;
}

static void out_hw(const Case *k, int64_t *ohw)
{
	int64_t in[2] = {k->h, k->w};
	for (int i = 0; i < 2; i++)
		ohw[i] =
		    ir_window_out(in[i], k->k[i], k->s[i], k->d[i], k->pad[i], k->pad[i + 2], 0);
}

/* The data operand: an f32 input, quantised in the graph when LNS (kept as a graph output so
 * that its codes can be read after the step). */
static IrValue *data_operand(IrGraph *g, const char *name, int64_t *dims, const char *fmt)
{
	IrValue *x =
	    ir_value_new(g, name, ir_type(C, IR_DT_F32, 4, dims), IR_ROLE_INPUT, NULL, NULL);
	if (!fmt)
		return x;
	IrNode *q = ir_build(g, IR_OP_QUANTIZE, "quant", 1, &x, NULL, NULL);
	q->out[0]->type = with_fmt(C, q->out[0]->type, fmt);
	make_output(g, q->out[0]);
	return q->out[0];
}

typedef struct Data {
	float *cst, *bias; /* the constant operand, the bias */
} Data;

/* Dims of the tensors of a case: X, W, Y (= dY). */
static void dims_of(const Case *k, int64_t *x, int64_t *w, int64_t *y)
{
	int64_t ohw[2];
	out_hw(k, ohw);
	int64_t xd[4] = {k->n, k->c, k->h, k->w}, wd[4] = {k->m, k->c / k->group, k->k[0], k->k[1]};
	int64_t yd[4] = {k->n, k->m, ohw[0], ohw[1]};
	memcpy(x, xd, sizeof xd);
	memcpy(w, wd, sizeof wd);
	memcpy(y, yd, sizeof yd);
}

/* The graph of a case with output format fy (the twin of an LNS case passes NULL). */
static IrGraph *case_graph(const Case *k, const Data *dt, const char *fy, IrNode **conv)
{
	int64_t xd[4], wd[4], yd[4];
	dims_of(k, xd, wd, yd);
	IrGraph *g = ir_graph_new(C, "conv", "test");
	IrAttrs at = {.conv = conv_attr(k)};
	IrValue *in[3];
	int nin = 2;
	const IrType *tw = ir_type(C, IR_DT_F32, 4, wd), *tx = ir_type(C, IR_DT_F32, 4, xd);
	if (k->op == IR_OP_CONV) {
		in[0] = data_operand(g, "x", xd, k->fa);
		in[1] = ir_value_new(g, "w", with_fmt(C, tw, k->fb), IR_ROLE_CONST, dt->cst, tw);
		if (k->bias) {
			const IrType *tb = ir_type(C, IR_DT_F32, 1, &k->m);
			in[nin++] = ir_value_new(g, "b", tb, IR_ROLE_CONST, dt->bias, tb);
		}
	} else if (k->op == IR_OP_CONV_GRAD_X) {
		in[0] = data_operand(g, "dy", yd, k->fa);
		in[1] = ir_value_new(g, "w", with_fmt(C, tw, k->fb), IR_ROLE_CONST, dt->cst, tw);
		at.conv.xhw[0] = k->h, at.conv.xhw[1] = k->w;
	} else {
		in[0] = data_operand(g, "dy", yd, k->fa);
		in[1] = ir_value_new(g, "x", with_fmt(C, tx, k->fb), IR_ROLE_CONST, dt->cst, tx);
	}
	IrNode *n = ir_build(g, k->op, "conv", nin, in, &at, NULL);
	if (!n) {
		fprintf(stderr, "%s\n", ir_diag_text(C));
		ir_graph_free(g);
		return NULL;
	}
	*conv = n;
	IrValue *y = n->out[0];
	if (k->relu)
		y = ir_build(g, IR_OP_RELU, "relu", 1, &y, NULL, NULL)->out[0];
	y->type = with_fmt(C, y->type, fy);
	make_output(g, y);
	PassOptions o;
	pass_options_default(&o);
	if (pass_fuse(g, &o) || pass_plan(g) || ir_verify(g)) {
		fprintf(stderr, "%s\n", ir_diag_text(C));
		ir_graph_free(g);
		return NULL;
	}
	return g;
}

/* fp64 convolution of the decoded operands, the three ops from one loop nest: ref (the op's
 * output) and its bound (K + 3) u sum |a b| (+ |bias|), then Relu. */
static void reference(const Case *k, const float *a, const float *b, const float *bias, double *ref,
                      double *bound)
{
	int64_t xd[4], wd[4], yd[4];
	dims_of(k, xd, wd, yd);
	const float *x = k->op == IR_OP_CONV ? a : k->op == IR_OP_CONV_GRAD_W ? b : NULL;
	const float *w = k->op == IR_OP_CONV_GRAD_W ? NULL : b;
	const float *dy = k->op == IR_OP_CONV ? NULL : a;
	int64_t cg = k->c / k->group, mg = k->m / k->group, ny;
	ny = k->op == IR_OP_CONV          ? yd[0] * yd[1] * yd[2] * yd[3]
	     : k->op == IR_OP_CONV_GRAD_X ? xd[0] * xd[1] * xd[2] * xd[3]
	                                  : wd[0] * wd[1] * wd[2] * wd[3];
	double *sabs = calloc((size_t)ny, sizeof(double));
	int64_t *terms = calloc((size_t)ny, sizeof(int64_t));
	memset(ref, 0, sizeof(double) * (size_t)ny);
	for (int64_t n = 0; n < k->n; n++)
		for (int64_t m = 0; m < k->m; m++)
			for (int64_t oh = 0; oh < yd[2]; oh++)
				for (int64_t ow = 0; ow < yd[3]; ow++)
					for (int64_t c = 0; c < cg; c++)
						for (int kh = 0; kh < k->k[0]; kh++)
							for (int kw = 0; kw < k->k[1]; kw++) {
								int64_t g = m / mg, ci = g * cg + c;
								int64_t ih = oh * k->s[0] -
								             k->pad[0] +
								             kh * k->d[0];
								int64_t iw = ow * k->s[1] -
								             k->pad[1] +
								             kw * k->d[1];
								int64_t yi =
								    ((n * k->m + m) * yd[2] + oh) *
								        yd[3] +
								    ow;
								int64_t wi =
								    ((m * cg + c) * k->k[0] + kh) *
								        k->k[1] +
								    kw;
								int64_t xi =
								    ((n * k->c + ci) * k->h + ih) *
								        k->w +
								    iw;
								int in = ih >= 0 && ih < k->h &&
								         iw >= 0 && iw < k->w;
								double p, *r;
								int64_t at;
								if (k->op == IR_OP_CONV) {
									at = yi;
									p = in ? (double)w[wi] *
									             x[xi]
									       : 0;
								} else if (k->op ==
								           IR_OP_CONV_GRAD_X) {
									if (!in)
										continue;
									at = xi;
									p = (double)w[wi] * dy[yi];
								} else {
									at = wi;
									p = in ? (double)dy[yi] *
									             x[xi]
									       : 0;
								}
								r = &ref[at];
								*r += p;
								sabs[at] += fabs(p);
								terms[at]++;
							}
	for (int64_t i = 0; i < ny; i++) {
		if (bias) {
			int64_t m = i / (yd[2] * yd[3]) % k->m;
			ref[i] += bias[m];
			sabs[i] += fabs(bias[m]);
		}
		bound[i] = (double)(terms[i] + 3) * 0x1p-24 * sabs[i] + 1e-37;
		if (k->relu && ref[i] < 0)
			ref[i] = 0;
	}
	free(sabs);
	free(terms);
}

/* The LNS output y of model L against the f32 results t of its twin: k (step 1: picked from
 * the twin's amax with an empty history) and every code, encoded from t by ir/lns.c with
 * the interpreter's random bits. */
static void check_encoded(const char *what, Jit *L, const IrValue *y, const float *t, int step)
{
	LnsFormat f = y->type->fmt;
	int64_t n = y->type->numel;
	int32_t k = jit_k(L, y);
	if (step == 1) {
		float amax = 0;
		for (int64_t i = 0; i < n; i++)
			amax = fmaxf(amax, fabsf(t[i]));
		LnsScaleState st;
		memset(&st, 0, sizeof st);
		int32_t want = lns_scale_pick(f, &st, amax);
		CHECK_MSG(k == want, "%s: k %d, want %d (amax %g)", what, k, want, amax);
	}
	uint32_t key = lns_rng_key(7, (uint32_t)step, (uint32_t)y->id);
	int64_t bad = 0, first = -1;
	for (int64_t i = 0; i < n; i++) {
		int fl;
		uint32_t want = lns_encode(f, k, t[i], lns_rng_bits(key, (uint32_t)i), &fl);
		if (lns_load(f, jit_data(L, y), (size_t)i) != want) {
			bad++;
			first = first < 0 ? i : first;
		}
	}
	CHECK_MSG(bad == 0,
	          "%s: %lld of %lld codes differ from the encoded f32 results (first %lld)", what,
	          (long long)bad, (long long)n, (long long)first);
}

static void case_name(const Case *k, char *buf, size_t len)
{
	snprintf(buf, len,
	         "%s x[%lld,%lld,%lld,%lld] m%lld k%dx%d s%d,%d d%d,%d p%d,%d,%d,%d g%d%s "
	         "%s*%s->%s%s",
	         ir_op_name(k->op), (long long)k->n, (long long)k->c, (long long)k->h,
	         (long long)k->w, (long long)k->m, k->k[0], k->k[1], k->s[0], k->s[1], k->d[0],
	         k->d[1], k->pad[0], k->pad[1], k->pad[2], k->pad[3], k->group,
	         k->bias ? " bias" : "", k->fa ? k->fa : "f32", k->fb ? k->fb : "f32",
	         k->fy ? k->fy : "f32", k->relu ? " relu" : "");
}

enum { MAXJ = 5 };

/* Models of one graph: [0] the first CPU, [1] the same with 2 threads, then the other CPUs. */
static int open_models(IrGraph *g, Jit *J, int *nj)
{
	*nj = 0;
	if (jit_open(&J[0], C, g, cpus[0], 7) || jit_share(&J[1], &J[0], 7))
		return -1;
	jit_threads(&J[1], 2);
	*nj = 2;
	for (int i = 1; i < ncpus; i++) {
		if (jit_open(&J[*nj], C, g, cpus[i], 7))
			return -1;
		(*nj)++;
	}
	return 0;
}

static void close_models(Jit *J, int nj)
{
	for (int i = nj - 1; i >= 0; i--)
		jit_close(&J[i]);
}

static void run_case(const Case *k)
{
	char name[300];
	case_name(k, name, sizeof name);
	int64_t xd[4], wd[4], yd[4];
	dims_of(k, xd, wd, yd);
	int64_t nx = xd[0] * xd[1] * xd[2] * xd[3], nw = wd[0] * wd[1] * wd[2] * wd[3];
	int64_t nyd = yd[0] * yd[1] * yd[2] * yd[3];
	Data dt = {rng_data(&R, k->op == IR_OP_CONV_GRAD_W ? nx : nw, 1.0f),
	           rng_data(&R, k->m, 0.5f)};
	IrNode *n, *nl = NULL;
	IrGraph *g = case_graph(k, &dt, NULL, &n),
	        *gl = k->fy ? case_graph(k, &dt, k->fy, &nl) : NULL;
	CHECK_MSG(g && (!k->fy || gl), "%s: graph", name);
	if (!g || (k->fy && !gl))
		return;
	CHECK_MSG(!k->relu || (n->epilogue && n->epilogue->fused), "%s: Relu not fused", name);
	IrValue *y = g->outputs.v[g->outputs.n - 1];
	IrValue *yl = gl ? gl->outputs.v[gl->outputs.n - 1] : NULL;
	Jit J[MAXJ], JL[MAXJ];
	int nj = 0, njl = 0;
	int ok = !open_models(g, J, &nj) && (!gl || !open_models(gl, JL, &njl));
	CHECK_MSG(ok, "%s: setup", name);
	int64_t na = n->in[0]->type->numel, nb = n->in[1]->type->numel, ny = y->type->numel;
	float *a = malloc(sizeof(float) * (size_t)na), *b = malloc(sizeof(float) * (size_t)nb);
	double *ref = malloc(sizeof(double) * (size_t)ny),
	       *bound = malloc(sizeof(double) * (size_t)ny);
	for (int step = 1; step <= 2 && ok; step++) {
		float *xin = rng_data(&R, k->op == IR_OP_CONV ? nx : nyd, step == 1 ? 1.0f : 3.0f);
		char what[400];
		for (int i = 0; i < nj + njl; i++) {
			Jit *M = i < nj ? &J[i] : &JL[i - nj];
			M->io[0] = xin;
			int rc = M->d->train_step(&M->a);
			CHECK_MSG(rc == 0, "%s: llvm step %d failed: rc %d (tensor %d)", name, step,
			          rc, M->a.error_tensor);
		}
		read_value(&J[0], n->in[0], xin, a);
		read_value(&J[0], n->in[1], xin, b);
		reference(k, a, b, k->bias ? dt.bias : NULL, ref, bound);
		snprintf(what, sizeof what, "%s, step %d", name, step);
		check_bound(what, jit_data(&J[0], y), ref, bound, ny);
		if (gl)
			check_encoded(what, &JL[0], yl, jit_data(&J[0], y), step);
		for (int i = 1; i < nj; i++) {
			snprintf(what, sizeof what, "%s, step %d, %s", name, step,
			         i == 1 ? "2 threads" : cpus[i - 1]);
			check_same(what, &J[0], &J[i], y);
			if (gl)
				check_same(what, &JL[0], &JL[i], yl);
		}
		free(xin);
	}
	close_models(J, nj);
	if (gl)
		close_models(JL, njl);
	free(a);
	free(b);
	free(ref);
	free(bound);
	free(dt.cst);
	free(dt.bias);
	ir_graph_free(g);
	if (gl)
		ir_graph_free(gl);
}

/* ---- the case lists ---- */

static Case conv_case(IrOp op, int64_t n, int64_t c, int64_t h, int64_t w, int64_t m, int kh,
                      int kw)
{
	return (Case){.op = op,
	              .n = n,
	              .c = c,
	              .h = h,
	              .w = w,
	              .m = m,
	              .k = {kh, kw},
	              .s = {1, 1},
	              .d = {1, 1},
	              .group = 1};
}

static void set_pad(Case *k, int t, int l, int b, int r)
{
	k->pad[0] = t, k->pad[1] = l, k->pad[2] = b, k->pad[3] = r;
}

/* The shapes every op runs: groups, depthwise, strides, dilations, asymmetric pads, 1x1
 * kernels, a 1x1 output, the example CNN's second layer. */
static int shape_cases(IrOp op, Case *out)
{
	int n = 0;
	Case k = conv_case(op, 2, 3, 9, 9, 8, 3, 3);
	set_pad(&k, 1, 1, 1, 1);
	out[n++] = k;
	k = conv_case(op, 2, 4, 11, 10, 6, 3, 3); /* groups 2, stride 2, asymmetric pads */
	k.group = 2, k.s[0] = k.s[1] = 2;
	set_pad(&k, 0, 1, 2, 1);
	out[n++] = k;
	k = conv_case(op, 3, 5, 8, 13, 5, 3, 3); /* depthwise, dilation 2 */
	k.group = 5, k.d[0] = k.d[1] = 2;
	set_pad(&k, 2, 2, 2, 2);
	out[n++] = k;
	k = conv_case(op, 2, 16, 7, 7, 32, 1, 1); /* 1x1 */
	out[n++] = k;
	k = conv_case(op, 2, 6, 11, 6, 4, 2, 3); /* odd window: stride 2,1, dilation 1,2 */
	k.s[0] = 2, k.d[1] = 2;
	set_pad(&k, 1, 0, 0, 2);
	out[n++] = k;
	k = conv_case(op, 3, 4, 3, 3, 5, 3, 3); /* a 1x1 output */
	out[n++] = k;
	k = conv_case(op, 4, 16, 14, 14, 32, 3, 3); /* the example CNN's second layer */
	set_pad(&k, 1, 1, 1, 1);
	out[n++] = k;
	k = conv_case(op, 2, 6, 30, 33, 9, 5, 4); /* wide rows, groups 3, stride 3 */
	k.group = 3, k.s[0] = k.s[1] = 3;
	set_pad(&k, 2, 1, 0, 3);
	out[n++] = k;
	return n;
}

static const char *data_fmt(IrOp op, int i)
{
	static const char *const fwd[] = {NULL, "lns8g8", "lns8g8:current"};
	static const char *const bwd[] = {NULL, "lns5g2:sr", "lns8g8"};
	return op == IR_OP_CONV ? fwd[i % 3] : bwd[i % 3];
}

static void test_shapes(void)
{
	static const IrOp ops[] = {IR_OP_CONV, IR_OP_CONV_GRAD_X, IR_OP_CONV_GRAD_W};
	int nc = 0;
	for (int o = 0; o < 3; o++) {
		Case ks[16];
		int n = shape_cases(ops[o], ks);
		for (int i = 0; i < n; i++) {
			Case k = ks[i];
			k.fa = data_fmt(k.op, i);
			k.fb = i % 2 ? "lns8g8" : NULL;
			k.bias = k.op == IR_OP_CONV && i % 3 != 2;
			run_case(&k);
			nc++;
		}
	}
	printf("test_cg_conv: %d shape cases\n", nc);
}

/* Fused epilogues: bias + Relu to f32 and LNS, LNS outputs of each rounding and scaling. */
static void test_epilogues(void)
{
	static const char *const outs[] = {"lns8g8", "lns5g2:sr", "lns8g8:current", "lns8g8:uf=sr"};
	int nc = 0;
	for (int i = 0; i < 8; i++) {
		IrOp op = i < 4 ? IR_OP_CONV : i < 6 ? IR_OP_CONV_GRAD_X : IR_OP_CONV_GRAD_W;
		Case k = conv_case(op, 3, 6, 10, 9, 12, 3, 3);
		set_pad(&k, 1, 1, 1, 1);
		k.group = i % 3 == 1 ? 3 : 1;
		k.fa = data_fmt(op, 1);
		k.fb = "lns8g8";
		k.fy = outs[i % 4];
		k.bias = op == IR_OP_CONV && i != 2;
		k.relu = op == IR_OP_CONV && i % 2 == 0;
		run_case(&k);
		nc++;
		if (op == IR_OP_CONV && i < 2) {
			k.fy = NULL; /* bias + Relu to f32 */
			k.relu = 1;
			run_case(&k);
			nc++;
		}
	}
	printf("test_cg_conv: %d fused-epilogue cases\n", nc);
}

static void test_random(void)
{
	static const IrOp ops[] = {IR_OP_CONV, IR_OP_CONV_GRAD_X, IR_OP_CONV_GRAD_W};
	int nc = 0;
	for (int i = 0; i < 12; i++) {
		int group = rng_int(&R, 1, 3);
		Case k = conv_case(ops[i % 3], rng_int(&R, 1, 3), group * rng_int(&R, 1, 5),
		                   rng_int(&R, 1, 17), rng_int(&R, 1, 17),
		                   group * rng_int(&R, 1, 6), rng_int(&R, 1, 4), rng_int(&R, 1, 4));
		k.group = group;
		for (int a = 0; a < 2; a++) {
			k.s[a] = rng_int(&R, 1, 3), k.d[a] = rng_int(&R, 1, 2);
			k.pad[a] = rng_int(&R, 0, 2), k.pad[a + 2] = rng_int(&R, 0, 2);
		}
		int64_t need[2] = {k.d[0] * (k.k[0] - 1) + 1, k.d[1] * (k.k[1] - 1) + 1};
		if (k.h + k.pad[0] + k.pad[2] < need[0])
			k.h = need[0];
		if (k.w + k.pad[1] + k.pad[3] < need[1])
			k.w = need[1];
		k.fa = data_fmt(k.op, rng_int(&R, 0, 2));
		k.fb = rng_int(&R, 0, 1) ? "lns8g8" : NULL;
		k.bias = k.op == IR_OP_CONV && rng_int(&R, 0, 1);
		k.relu = k.op == IR_OP_CONV && rng_int(&R, 0, 1);
		k.fy = rng_int(&R, 0, 2) ? NULL : k.op == IR_OP_CONV ? "lns8g8" : "lns5g2:sr";
		run_case(&k);
		nc++;
	}
	printf("test_cg_conv: %d random cases\n", nc);
}

/* ---- the Madam update fused with ConvGradW ---- */

/* dY (quantised to lns5g2, stochastic) and X (lns8g8) -> dW (lns5g2, stochastic), the
 * gradient of a Madam weight W (lns12g128) with its second moment: the one-node backward
 * graph the pipeline builds for a conv weight. fuse: run pass_fuse. */
static IrGraph *madam_graph(const Case *k, const float *x, const float *w0, int fuse)
{
	int64_t xd[4], wd[4], yd[4];
	dims_of(k, xd, wd, yd);
	IrGraph *g = ir_graph_new(C, "conv_madam", "test");
	const IrType *tw = ir_type(C, IR_DT_F32, 4, wd), *tx = ir_type(C, IR_DT_F32, 4, xd);
	IrValue *w =
	    ir_value_new(g, "w", with_fmt(C, tw, "lns12g128:static:uf=min"), IR_ROLE_PARAM, w0, tw);
	IrValue *v = ir_value_new(g, "madam.v/w", tw, IR_ROLE_STATE, NULL, NULL);
	v->param = w;
	IrValue *in[3] = {data_operand(g, "dy", yd, "lns5g2:sr"),
	                  ir_value_new(g, "x", with_fmt(C, tx, "lns8g8"), IR_ROLE_CONST, x, tx)};
	IrAttrs at = {.conv = conv_attr(k)};
	IrNode *n = ir_build(g, IR_OP_CONV_GRAD_W, "conv/grad_w", 2, in, &at, NULL);
	n->phase = in[0]->def->phase = IR_PHASE_BWD;
	IrValue *dw = n->out[0];
	dw->type = with_fmt(C, dw->type, "lns5g2:sr");
	dw->role = IR_ROLE_PGRAD;
	dw->param = w;
	w->grad = dw;
	LnsMadamParams mp = lns_madam_defaults();
	IrAttrs ao = {
	    .opt = {.lr = mp.lr, .beta2 = mp.beta2, .p_scale = mp.p_scale, .g_bound = mp.g_bound}};
	IrValue *u[3] = {w, dw, v};
	ir_build(g, IR_OP_MADAM, "update/w", 3, u, &ao, NULL)->phase = IR_PHASE_UPDATE;
	PassOptions o;
	pass_options_default(&o);
	if ((fuse && pass_fuse(g, &o)) || pass_plan(g) || ir_verify(g)) {
		fprintf(stderr, "%s\n", ir_diag_text(C));
		ir_graph_free(g);
		return NULL;
	}
	CHECK_MSG(!fuse || (n->epilogue && n->epilogue->op == IR_OP_MADAM),
	          "ConvGradW: Madam not fused");
	return g;
}

static void madam_case(const Case *k)
{
	char name[300];
	case_name(k, name, sizeof name);
	int64_t xd[4], wd[4], yd[4];
	dims_of(k, xd, wd, yd);
	float *x = rng_data(&R, xd[0] * xd[1] * xd[2] * xd[3], 1.0f);
	float *w0 = rng_data(&R, wd[0] * wd[1] * wd[2] * wd[3], 0.3f);
	IrGraph *gf = madam_graph(k, x, w0, 1), *gu = madam_graph(k, x, w0, 0);
	CHECK_MSG(gf && gu, "%s: Madam graphs", name);
	Jit J[MAXJ], U;
	int nj = 0;
	int ok = gf && gu && !open_models(gf, J, &nj) && !jit_open(&U, C, gu, cpus[0], 7);
	CHECK_MSG(ok, "%s: Madam setup", name);
	const IrValue *w = gu ? ir_graph_value(gu, "w") : NULL;
	size_t wbytes = w ? ir_type_bytes(w->type) : 0;
	uint8_t *winit = malloc(wbytes ? wbytes : 1);
	if (ok && w)
		memcpy(winit, U.state + w->loc.offset, wbytes);
	for (int step = 1; step <= 4 && ok; step++) {
		float *dy = rng_data(&R, yd[0] * yd[1] * yd[2] * yd[3], step % 2 ? 1.0f : 0.01f);
		for (int i = 0; i <= nj; i++) {
			Jit *M = i < nj ? &J[i] : &U;
			M->io[0] = dy;
			int rc = M->d->train_step(&M->a);
			CHECK_MSG(rc == 0, "%s: Madam step %d: rc %d", name, step, rc);
		}
		CHECK_MSG(J[0].d->state_bytes == U.d->state_bytes &&
		              !memcmp(J[0].state, U.state, (size_t)U.d->state_bytes),
		          "%s, Madam step %d: fused and unfused llvm states differ", name, step);
		for (int i = 1; i < nj; i++)
			CHECK_MSG(!memcmp(J[0].state, J[i].state, (size_t)U.d->state_bytes),
			          "%s, Madam step %d: %s differs", name, step,
			          i == 1 ? "2 threads" : cpus[i - 1]);
		free(dy);
	}
	CHECK_MSG(ok && w && memcmp(U.state + w->loc.offset, winit, wbytes),
	          "%s: the weight did not move", name);
	free(winit);
	if (ok) {
		close_models(J, nj);
		jit_close(&U);
	}
	free(x);
	free(w0);
	if (gf)
		ir_graph_free(gf);
	if (gu)
		ir_graph_free(gu);
}

static void test_madam(void)
{
	Case k = conv_case(IR_OP_CONV_GRAD_W, 4, 16, 14, 14, 32, 3, 3);
	set_pad(&k, 1, 1, 1, 1);
	madam_case(&k);
	k = conv_case(IR_OP_CONV_GRAD_W, 3, 6, 9, 11, 9, 3, 2);
	k.group = 3, k.s[1] = 2;
	set_pad(&k, 0, 1, 1, 0);
	madam_case(&k);
	k = conv_case(IR_OP_CONV_GRAD_W, 5, 1, 12, 12, 7, 3, 3);
	madam_case(&k);
	printf("test_cg_conv: 3 fused Madam cases\n");
}

int main(void)
{
	C = ir_ctx_new();
	ncpus = host_cpus(cpus, 1, "test_cg_conv");
	test_shapes();
	test_epilogues();
	test_random();
	test_madam();
	ir_ctx_free(C);
	return t_finish("test_cg_conv");
}
