/* test_cg_gemm.c: the GEMM kernels (codegen/cg_gemm.c) and the fusion pass (passes/fuse.c)
 * against the reference interpreter.
 *
 * Each case builds a small graph (Gemm or MatMul over f32 inputs, LNS inputs quantised in the
 * graph, LNS constants, C of every broadcast shape, a fused Relu), compiles it with the JIT and
 * runs two training steps (the first encodes an LNS output in two passes, the second in one,
 * with the history) on both backends. f32 results must be within the fp32 GEMM error bound of
 * an fp64 GEMM of the decoded operands; LNS results must have the interpreter's scale offset
 * and codes, up to max(1, n/1000) codes off by one (the FMA chain rounds differently from the
 * interpreter's multiply-add). Every case also runs with 2 threads and, where the CPU has
 * AVX-512, at vector widths 8 and 16: results must be bit-identical. The MLP of examples/mlp
 * trains under lns-madam: the fused Madam update gives the interpreter's state blob (within
 * the same tolerance) and exactly the state of the unfused LLVM step, and fusion leaves the
 * interpreter's results unchanged bit for bit.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cgjit.h"
#include "codegen/cg.h"
#include "frontend/fe.h"
#include "passes/passes.h"
#include "runtime/lnsrt.h"
#include "testlib.h"

static IrCtx *C;
/* Targets whose results must agree bit for bit: x86-64-v4 (16 lanes) and x86-64-v3 (8) as the
 * host allows, else the host alone. */
static const char *cpus[2];
static int ncpus;

/* ---- deterministic data ---- */

static Rng R = {0x9E3779B97F4A7C15ull};

/* ---- comparisons ---- */

/* LNS codes a (llvm) and b (interpreter) of n elements: equal up to `budget` codes off by one
 * magnitude step (same sign; zero counts as magnitude 0). Returns the number off by one, or -1
 * if any differs more. */
static int64_t code_diff(LnsFormat f, const void *a, const void *b, int64_t n)
{
	int64_t off1 = 0;
	for (int64_t i = 0; i < n; i++) {
		uint32_t x = lns_load(f, a, (size_t)i), y = lns_load(f, b, (size_t)i);
		if (x == y)
			continue;
		int32_t mx = (int32_t)lns_word_mag(f, x), my = (int32_t)lns_word_mag(f, y);
		int sx = mx ? lns_word_sign(f, x) : lns_word_sign(f, y);
		int sy = my ? lns_word_sign(f, y) : sx;
		if (sx != sy || abs(mx - my) != 1)
			return -1;
		off1++;
	}
	return off1;
}

static int64_t budget(int64_t n)
{
	return n / 1000 > 1 ? n / 1000 : 1;
}

/* An LNS value of the llvm model against the interpreter's (training step: the interpreter
 * recorded its k in the scale state). */
static void check_lns(const char *what, Jit *J, IrInterp *ip, const IrValue *v)
{
	LnsFormat f = v->type->fmt;
	int32_t kj = jit_k(J, v), ki = ir_interp_scale(ip, v)->k;
	CHECK_MSG(kj == ki, "%s: '%s' k %d, interpreter %d", what, v->name, kj, ki);
	int64_t d = code_diff(f, jit_data(J, v), ir_interp_data(ip, v), v->type->numel);
	CHECK_MSG(d >= 0 && d <= budget(v->type->numel),
	          "%s: '%s': %lld codes off by one of %lld%s", what, v->name, (long long)d,
	          (long long)v->type->numel, d < 0 ? " (or worse)" : "");
}

/* ---- one GEMM case ---- */

typedef struct Case {
	int matmul;
	int64_t M, N, K;
	int ta, tb;
	float alpha, beta;
	int crank;           /* -1: no C; 0 scalar; 1 [N]; 2 [M,1]; 3 [M,N]; 4 [1,N]; 5 [1] */
	const char *fa, *fb; /* NULL: f32; else an LNS format (A quantised in the graph, B const) */
	const char *fy;      /* output format, NULL: f32 */
	int relu;
	/* MatMul batch dims of A and B (rank 0..2 each) */
	int ra, rb;
	int64_t ba[2], bb[2];
} Case;

static const IrType *ftype(int rank, const int64_t *dims)
{
	return ir_type(C, IR_DT_F32, rank, dims);
}

/* A operand: an f32 input, quantised in the graph when LNS (kept as a graph output so the
 * interpreter can still read it after the step). */
static IrValue *operand_a(IrGraph *g, const IrType *t, const char *fmt)
{
	IrValue *x = ir_value_new(g, "a", t, IR_ROLE_INPUT, NULL, NULL);
	if (!fmt)
		return x;
	IrNode *q = ir_build(g, IR_OP_QUANTIZE, "quant", 1, &x, NULL, NULL);
	q->out[0]->type = with_fmt(C, q->out[0]->type, fmt);
	make_output(g, q->out[0]);
	return q->out[0];
}

static IrValue *operand_b(IrGraph *g, const IrType *t, const char *fmt, float *data)
{
	return ir_value_new(g, "b", with_fmt(C, t, fmt), IR_ROLE_CONST, data, t);
}

static IrValue *operand_c(IrGraph *g, const Case *k, float *data, const IrType **ct)
{
	int64_t d[2];
	int r;
	switch (k->crank) {
	case 0:
		r = 0;
		break;
	case 1:
		r = 1, d[0] = k->N;
		break;
	case 2:
		r = 2, d[0] = k->M, d[1] = 1;
		break;
	case 3:
		r = 2, d[0] = k->M, d[1] = k->N;
		break;
	case 4:
		r = 2, d[0] = 1, d[1] = k->N;
		break;
	default:
		r = 1, d[0] = 1;
		break;
	}
	*ct = ftype(r, d);
	return ir_value_new(g, "c", *ct, IR_ROLE_CONST, data, *ct);
}

/* The graph of a case; data arrays are owned by the caller. */
static IrGraph *case_graph(const Case *k, float *bdata, float *cdata, IrNode **gemm)
{
	IrGraph *g = ir_graph_new(C, "gemm", "test");
	IrValue *in[3];
	int nin = 2;
	if (k->matmul) {
		int64_t da[4], db[4];
		memcpy(da, k->ba, sizeof(int64_t) * (size_t)k->ra);
		memcpy(db, k->bb, sizeof(int64_t) * (size_t)k->rb);
		da[k->ra] = k->M, da[k->ra + 1] = k->K;
		db[k->rb] = k->K, db[k->rb + 1] = k->N;
		in[0] = operand_a(g, ftype(k->ra + 2, da), k->fa);
		in[1] = operand_b(g, ftype(k->rb + 2, db), k->fb, bdata);
	} else {
		int64_t da[2] = {k->ta ? k->K : k->M, k->ta ? k->M : k->K};
		int64_t db[2] = {k->tb ? k->N : k->K, k->tb ? k->K : k->N};
		in[0] = operand_a(g, ftype(2, da), k->fa);
		in[1] = operand_b(g, ftype(2, db), k->fb, bdata);
		const IrType *ct;
		if (k->crank >= 0)
			in[nin++] = operand_c(g, k, cdata, &ct);
	}
	IrAttrs at = {.gemm = {k->alpha, k->beta, k->ta, k->tb}};
	IrNode *n = ir_build(g, k->matmul ? IR_OP_MATMUL : IR_OP_GEMM, "gemm", nin, in,
	                     k->matmul ? NULL : &at, NULL);
	*gemm = n;
	IrValue *y = n->out[0];
	if (k->relu) {
		IrNode *r = ir_build(g, IR_OP_RELU, "relu", 1, &y, NULL, NULL);
		y = r->out[0];
	}
	y->type = with_fmt(C, y->type, k->fy);
	make_output(g, y);
	PassOptions o;
	pass_options_default(&o);
	if (pass_fuse(g, &o) || pass_plan(g) || ir_verify(g)) {
		fprintf(stderr, "%s\n", ir_diag_text(C));
		return NULL;
	}
	return g;
}

static int64_t nelem(const IrType *t)
{
	return t->numel;
}

/* fp64 reference of the case from the interpreter's decoded operands, with the fp32 bound
 * (K + 3) u (|alpha| sum|a||b| + |beta c|) per element. */
static void reference(const Case *k, IrInterp *ip, const IrNode *n, double *ref, double *bound)
{
	const IrValue *A = n->in[0], *B = n->in[1];
	float *a = malloc(sizeof(float) * (size_t)nelem(A->type)),
	      *b = malloc(sizeof(float) * (size_t)nelem(B->type));
	float *cv = NULL;
	CHECK(ir_interp_read(ip, A, a) == 0 && ir_interp_read(ip, B, b) == 0);
	if (n->nin > 2) {
		cv = malloc(sizeof(float) * (size_t)nelem(n->in[2]->type));
		CHECK(ir_interp_read(ip, n->in[2], cv) == 0);
	}
	const IrType *to = n->out[0]->type;
	int64_t M = k->M, N = k->N, K = k->K, nb = nelem(to) / (M * N);
	int64_t cd0 = 1, cd1 = 1;
	if (cv) {
		const IrType *ct = n->in[2]->type;
		cd1 = ct->rank ? ct->dims[ct->rank - 1] : 1;
		cd0 = ct->rank == 2 ? ct->dims[0] : 1;
	}
	for (int64_t ob = 0; ob < nb; ob++) {
		/* matrix indices of A and B by broadcasting (MatMul; Gemm has nb = 1) */
		int64_t ia = 0, ib = 0, rest = ob, sa = 1, sb = 1;
		int ro = to->rank - 2;
		for (int i = ro - 1; i >= 0; i--) {
			int64_t oi = rest % to->dims[i];
			rest /= to->dims[i];
			int dia = i - (ro - k->ra), dib = i - (ro - k->rb);
			if (dia >= 0) {
				ia += k->ba[dia] != 1 ? oi * sa : 0;
				sa *= k->ba[dia];
			}
			if (dib >= 0) {
				ib += k->bb[dib] != 1 ? oi * sb : 0;
				sb *= k->bb[dib];
			}
		}
		for (int64_t i = 0; i < M; i++)
			for (int64_t j = 0; j < N; j++) {
				double s = 0, sabs = 0;
				for (int64_t q = 0; q < K; q++) {
					double x = k->ta ? a[q * M + i] : a[ia * M * K + i * K + q];
					double y = k->tb ? b[j * K + q] : b[ib * K * N + q * N + j];
					s += x * y;
					sabs += fabs(x * y);
				}
				double r = k->alpha * s, e = fabs(k->alpha) * sabs;
				if (cv) {
					double c =
					    cv[(cd0 == 1 ? 0 : i * cd1) + (cd1 == 1 ? 0 : j)];
					r += k->beta * c;
					e += fabs(k->beta * c);
				}
				if (k->relu)
					r = r > 0 ? r : 0;
				ref[(ob * M + i) * N + j] = r;
				bound[(ob * M + i) * N + j] = (double)(K + 3) * 0x1p-24 * e + 1e-37;
			}
	}
	free(a);
	free(b);
	free(cv);
}

static void case_name(const Case *k, char *buf, size_t len)
{
	if (k->matmul)
		snprintf(buf, len, "MatMul a[%d]b[%d] M%lld N%lld K%lld %s*%s->%s", k->ra, k->rb,
		         (long long)k->M, (long long)k->N, (long long)k->K, k->fa ? k->fa : "f32",
		         k->fb ? k->fb : "f32", k->fy ? k->fy : "f32");
	else
		snprintf(buf, len,
		         "Gemm M%lld N%lld K%lld tA%d tB%d alpha %g beta %g C%d %s*%s->%s%s",
		         (long long)k->M, (long long)k->N, (long long)k->K, k->ta, k->tb, k->alpha,
		         k->beta, k->crank, k->fa ? k->fa : "f32", k->fb ? k->fb : "f32",
		         k->fy ? k->fy : "f32", k->relu ? " relu" : "");
}

/* One case: two training steps on the interpreter, the llvm model at the host's width with
 * 1 and 2 threads, and at width 8 when the host has 16. */
static void run_case(const Case *k)
{
	char name[256];
	case_name(k, name, sizeof name);
	IrNode *n;
	float *bdata = NULL, *cdata = NULL;
	int64_t bn = k->matmul ? k->K * k->N : k->K * k->N, cn = k->M * k->N;
	for (int i = 0; i < k->rb; i++)
		bn *= k->bb[i];
	bdata = rng_data(&R, bn, 1.0f);
	cdata = rng_data(&R, cn ? cn : 1, 2.0f);
	IrGraph *g = case_graph(k, bdata, cdata, &n);
	CHECK_MSG(g != NULL, "%s: graph", name);
	if (!g)
		return;
	CHECK_MSG(!k->relu || (n->epilogue && n->epilogue->fused), "%s: Relu not fused", name);
	IrValue *x = g->inputs.v[0], *y = g->outputs.v[g->outputs.n - 1];
	int64_t ny = nelem(y->type);
	IrInterp *ip = ir_interp_new(g, 7);
	Jit J[3];
	int nj = ncpus + 1;
	int ok =
	    ip != NULL && jit_open(&J[0], C, g, cpus[0], 7) == 0 && jit_share(&J[1], &J[0], 7) == 0;
	if (ok && ncpus == 2)
		ok = jit_open(&J[2], C, g, cpus[1], 7) == 0;
	if (ok)
		jit_threads(&J[1], 2);
	CHECK_MSG(ok, "%s: setup", name);
	double *ref = malloc(sizeof(double) * (size_t)ny),
	       *bound = malloc(sizeof(double) * (size_t)ny);
	float *yf = malloc(sizeof(float) * (size_t)ny);
	for (int step = 0; step < 2 && ok; step++) {
		float *xd = rng_data(&R, nelem(x->type), step ? 3.0f : 1.0f);
		ir_interp_bind(ip, x, xd);
		CHECK_MSG(ir_interp_run(ip, IR_MODE_TRAIN) == 0, "%s: interp: %s", name,
		          ir_interp_error(ip));
		for (int i = 0; i < nj; i++) {
			J[i].io[0] = xd;
			{
				int rc_ = jit_step(&J[i], IR_MODE_TRAIN);
				CHECK_MSG(rc_ == 0, "%s: llvm step %d failed: rc %d (tensor %d)",
				          name, step + 1, rc_, J[i].a.error_tensor);
			}
		}
		char what[300];
		snprintf(what, sizeof what, "%s, step %d", name, step + 1);
		if (y->type->dt == IR_DT_LNS) {
			check_lns(what, &J[0], ip, y);
		} else {
			reference(k, ip, n, ref, bound);
			check_bound(what, jit_data(&J[0], y), ref, bound, ny);
			CHECK(ir_interp_read(ip, y, yf) == 0);
			check_bound("(interpreter)", yf, ref, bound, ny);
		}
		snprintf(what, sizeof what, "%s, step %d, 2 threads", name, step + 1);
		check_same(what, &J[0], &J[1], y);
		if (nj == 3) {
			snprintf(what, sizeof what, "%s, step %d, %s vs %s", name, step + 1,
			         cpus[0], cpus[1]);
			check_same(what, &J[0], &J[2], y);
		}
		free(xd);
	}
	for (int i = nj - 1; i >= 0 && ok; i--)
		jit_close(&J[i]);
	ir_interp_free(ip);
	free(ref);
	free(bound);
	free(yf);
	free(bdata);
	free(cdata);
	ir_graph_free(g);
}

static const char *pick_fmt(int i)
{
	static const char *const f[] = {NULL, "lns8g8", "lns5g2:sr"};
	return f[i % 3];
}

static void test_gemm_cases(void)
{
	static const int64_t sizes[][3] = {{1, 1, 1},     {3, 5, 7},     {8, 32, 16},
	                                   {17, 33, 9},   {64, 256, 96}, {13, 70, 131},
	                                   {40, 10, 300}, {6, 47, 64}};
	static const int cranks[] = {-1, 0, 1, 2, 3, 4, 5};
	int nc = 0;
	for (int s = 0; s < (int)(sizeof sizes / sizeof sizes[0]); s++)
		for (int t = 0; t < 4; t++) {
			Case k = {.M = sizes[s][0],
			          .N = sizes[s][1],
			          .K = sizes[s][2],
			          .ta = t & 1,
			          .tb = t >> 1,
			          .alpha = t == 1   ? 0.5f
			                   : t == 2 ? -1.25f
			                            : 1.0f,
			          .beta = t == 3 ? 0.75f : 1.0f,
			          .crank = cranks[(s + t) % 7]};
			k.fa = pick_fmt(s + t);
			k.fb = pick_fmt(s + 2 * t + 1);
			run_case(&k);
			nc++;
		}
	/* outputs: LNS of each scaling and rounding, fused Relu to f32 and LNS */
	static const char *const outs[] = {"lns8g8", "lns5g2:sr", "lns8g8:current",
	                                   "lns12g128:static", "lns8g8:uf=sr"};
	for (int i = 0; i < 5; i++) {
		Case k = {.M = 19 + 9 * i,
		          .N = 45 - 4 * i,
		          .K = 37 + 20 * i,
		          .ta = i & 1,
		          .tb = i == 2,
		          .alpha = 1,
		          .beta = 1,
		          .crank = 1,
		          .fa = "lns8g8",
		          .fb = "lns8g8",
		          .fy = outs[i],
		          .relu = i >= 3};
		run_case(&k);
		nc++;
	}
	for (int i = 0; i < 4; i++) {
		Case k = {.M = 64,
		          .N = 20 + 17 * i,
		          .K = 100 + i,
		          .tb = 1,
		          .alpha = 1,
		          .beta = 1,
		          .crank = 1,
		          .fa = i ? "lns8g8" : NULL,
		          .fb = i ? "lns8g8" : NULL,
		          .fy = i >= 2 ? "lns8g8" : NULL,
		          .relu = 1};
		run_case(&k);
		nc++;
	}
	/* random shapes */
	for (int i = 0; i < 12; i++) {
		Case k = {.M = rng_int(&R, 1, 80),
		          .N = rng_int(&R, 1, 80),
		          .K = rng_int(&R, 1, 200),
		          .ta = rng_int(&R, 0, 1),
		          .tb = rng_int(&R, 0, 1),
		          .alpha = rng_int(&R, 0, 1) ? 1.0f : 0.375f,
		          .beta = rng_int(&R, 0, 1) ? 1.0f : -2.0f,
		          .crank = rng_int(&R, -1, 5),
		          .fa = pick_fmt(rng_int(&R, 0, 2)),
		          .fb = pick_fmt(rng_int(&R, 0, 2)),
		          .fy = rng_int(&R, 0, 1) ? NULL : pick_fmt(rng_int(&R, 1, 2)),
		          .relu = rng_int(&R, 0, 1)};
		run_case(&k);
		nc++;
	}
	printf("test_cg_gemm: %d Gemm cases\n", nc);
}

static void test_matmul_cases(void)
{
	static const struct {
		int ra, rb;
		int64_t ba[2], bb[2];
	} b[] = {
	    {0, 0, {0}, {0}},    {1, 0, {3}, {0}},       {2, 0, {2, 3}, {0}}, {1, 1, {4}, {4}},
	    {2, 1, {2, 3}, {3}}, {2, 2, {2, 1}, {1, 3}}, {0, 1, {0}, {5}},    {1, 2, {3}, {2, 1}},
	};
	int nc = 0;
	for (int i = 0; i < (int)(sizeof b / sizeof b[0]); i++) {
		Case k = {.matmul = 1,
		          .M = rng_int(&R, 1, 40),
		          .N = rng_int(&R, 1, 70),
		          .K = rng_int(&R, 1, 90),
		          .alpha = 1,
		          .beta = 1,
		          .crank = -1,
		          .ra = b[i].ra,
		          .rb = b[i].rb,
		          .fa = pick_fmt(i),
		          .fb = pick_fmt(i + 1),
		          .fy = i % 4 == 3 ? "lns8g8" : NULL};
		memcpy(k.ba, b[i].ba, sizeof k.ba);
		memcpy(k.bb, b[i].bb, sizeof k.bb);
		run_case(&k);
		nc++;
	}
	printf("test_cg_gemm: %d MatMul cases\n", nc);
}

/* A NaN or an infinity in an operand: the step fails naming the GEMM's output (before a fused
 * Relu, which would hide a NaN), as the interpreter does. */
static void test_nonfinite(void)
{
	for (int relu = 0; relu < 2; relu++) {
		Case k = {.M = 9,
		          .N = 40,
		          .K = 33,
		          .alpha = 1,
		          .beta = 1,
		          .crank = 1,
		          .fy = relu ? "lns8g8" : NULL,
		          .relu = relu};
		float *bd = rng_data(&R, k.K * k.N, 1.0f), *cd = rng_data(&R, k.N, 1.0f);
		IrNode *n;
		IrGraph *g = case_graph(&k, bd, cd, &n);
		Jit J;
		CHECK(g && jit_open(&J, C, g, cpus[0], 3) == 0);
		if (!g)
			continue;
		float *x = rng_data(&R, k.M * k.K, 1.0f);
		x[5 * k.K + 7] = relu ? -INFINITY : NAN;
		J.io[0] = x;
		int rc = jit_step(&J, IR_MODE_TRAIN), want = -1;
		for (int i = 0; i < J.d->ntensors; i++)
			if (!strcmp(J.d->tensors[i].name, n->out[0]->name))
				want = i;
		CHECK_MSG(rc == 1 && J.a.error_tensor == want && want >= 0,
		          "non-finite GEMM result (relu %d): rc %d, tensor %d, want %d", relu, rc,
		          J.a.error_tensor, want);
		IrInterp *ip = ir_interp_new(g, 3);
		ir_interp_bind(ip, g->inputs.v[0], x);
		CHECK(ir_interp_run(ip, IR_MODE_TRAIN) != 0 &&
		      strstr(ir_interp_error(ip), "NaN/Inf"));
		ir_interp_free(ip);
		jit_close(&J);
		free(x);
		free(bd);
		free(cd);
		ir_graph_free(g);
	}
}

/* ---- fusion marks and the MLP under lns-madam ---- */

static IrGraph *mlp(int batch, int fuse)
{
	char path[1024];
	const char *src = getenv("LNSC_SRC");
	snprintf(path, sizeof path, "%s/examples/mlp/mlp.onnx", src ? src : "..");
	FeOptions fo = {.batch = batch};
	IrGraph *g = fe_onnx_import(C, path, &fo);
	PassOptions o;
	pass_options_default(&o);
	if (!g || pass_infer(g, &o) || pass_canon(g, &o) || pass_autodiff(g, &o) ||
	    pass_optimize(g, &o) || pass_precision(g, &o) || (fuse && pass_fuse(g, &o)) ||
	    pass_plan(g) || ir_verify(g)) {
		fprintf(stderr, "%s\n", ir_diag_text(C));
		return NULL;
	}
	return g;
}

static int count_marks(const IrGraph *g, IrOp op)
{
	int n = 0;
	for (int i = 0; i < g->nodes.n; i++) {
		const IrNode *x = IR_NODE(g, i);
		n += x->epilogue && x->epilogue->op == op && x->epilogue->fused;
	}
	return n;
}

/* The fused graph's order: each fused dW GEMM after every reader of its weight and views. */
static void check_order(const IrGraph *g)
{
	for (int i = 0; i < g->nodes.n; i++) {
		const IrNode *n = IR_NODE(g, i);
		if (!n->epilogue || n->epilogue->op != IR_OP_MADAM)
			continue;
		const IrValue *w = n->epilogue->in[0];
		for (int j = i + 1; j < g->nodes.n; j++) {
			const IrNode *m = IR_NODE(g, j);
			for (int q = 0; q < m->nin && m != n->epilogue; q++) {
				const IrNode *d = m->in[q]->def;
				CHECK_MSG(m->in[q] != w &&
				              !(d && d->op == IR_OP_WEIGHT_VIEW && d->in[0] == w),
				          "node '%s' reads weight '%s' after the fused update",
				          m->name, w->name);
			}
		}
	}
}

typedef struct Batch {
	float *x;
	int64_t *y;
} Batch;

static Batch batch_data(int64_t n, int64_t feat, int step)
{
	Batch b = {rng_data(&R, n * feat, 1.0f), malloc(sizeof(int64_t) * (size_t)n)};
	for (int64_t i = 0; i < n * feat; i++)
		b.x[i] = fabsf(b.x[i]) * (float)(1 + step % 2);
	for (int64_t i = 0; i < n; i++)
		b.y[i] = rng_int(&R, 0, 9);
	return b;
}

/* State blobs of the interpreter (ref) and an llvm model: parameters, optimizer state and scale
 * states value by value, within the tolerance of the GEMM order. */
static void check_state(const char *what, IrGraph *g, IrInterp *ip, Jit *J)
{
	const uint8_t *ist = ir_interp_state_blob(ip);
	for (int i = 0; i < g->values.n; i++) {
		const IrValue *v = IR_VALUE(g, i);
		if (v->loc.area == IR_AREA_STATE && v->type->dt == IR_DT_LNS) {
			int64_t d = code_diff(v->type->fmt, J->state + v->loc.offset,
			                      ist + v->loc.offset, v->type->numel);
			CHECK_MSG(d >= 0 && d <= budget(v->type->numel),
			          "%s: '%s': %lld codes off by one", what, v->name, (long long)d);
		} else if (v->loc.area == IR_AREA_STATE && v->type->dt == IR_DT_F32) {
			const float *a = (const float *)(J->state + v->loc.offset);
			const float *b = (const float *)(ist + v->loc.offset);
			int64_t bad = 0;
			for (int64_t e = 0; e < v->type->numel; e++)
				bad += !(fabsf(a[e] - b[e]) <= 1e-3f * fabsf(b[e]) + 1e-12f);
			CHECK_MSG(bad <= budget(v->type->numel), "%s: '%s': %lld values differ",
			          what, v->name, (long long)bad);
		}
		if (v->type->dt == IR_DT_LNS && v->loc.scale_off >= 0) {
			LnsScaleState a, b;
			memcpy(&a, J->state + v->loc.scale_off, sizeof a);
			memcpy(&b, ist + v->loc.scale_off, sizeof b);
			int ok = a.k == b.k && a.nhist == b.nhist && a.n_total == b.n_total;
			for (int h = 0; h < LNS_HIST && ok; h++)
				ok = fabsf(a.hist[h] - b.hist[h]) <= 1e-5f * fabsf(b.hist[h]);
			uint64_t tol = (uint64_t)budget((int64_t)b.n_total);
			ok = ok && a.n_sat + tol >= b.n_sat && b.n_sat + tol >= a.n_sat;
			ok = ok && a.n_unf + tol >= b.n_unf && b.n_unf + tol >= a.n_unf;
			CHECK_MSG(ok, "%s: scale state of '%s' (k %d vs %d, amax %g vs %g)", what,
			          v->name, a.k, b.k, a.hist[0], b.hist[0]);
		}
	}
}

static void test_mlp_madam(void)
{
	enum { BATCH = 32, STEPS = 4 };
	IrGraph *gf = mlp(BATCH, 1), *gu = mlp(BATCH, 0), *gi = mlp(BATCH, 1);
	CHECK(gf && gu && gi);
	if (!gf || !gu || !gi)
		return;
	CHECK_MSG(count_marks(gf, IR_OP_MADAM) == 2 && count_marks(gf, IR_OP_RELU) == 1,
	          "fusion marks: %d Madam, %d Relu", count_marks(gf, IR_OP_MADAM),
	          count_marks(gf, IR_OP_RELU));
	check_order(gf);
	CHECK(gf->plan->state_bytes == gu->plan->state_bytes);
	IrInterp *ip = ir_interp_new(gu, 11), *ipf = ir_interp_new(gi, 11);
	Jit Jf, Ju, J2;
	int ok = ip && ipf && !jit_open(&Jf, C, gf, cpus[0], 11) &&
	         !jit_open(&Ju, C, gu, cpus[0], 11) && !jit_share(&J2, &Jf, 11);
	CHECK_MSG(ok, "MLP setup");
	if (!ok)
		return;
	jit_threads(&J2, 2);
	IrValue *x = gu->inputs.v[0], *lab = gu->labels;
	int64_t feat = x->type->numel / BATCH;
	for (int s = 0; s < STEPS; s++) {
		Batch b = batch_data(BATCH, feat, s);
		ir_interp_bind(ip, x, b.x);
		ir_interp_bind(ip, lab, b.y);
		ir_interp_bind(ipf, gi->inputs.v[0], b.x);
		ir_interp_bind(ipf, gi->labels, b.y);
		CHECK_MSG(ir_interp_run(ip, IR_MODE_TRAIN) == 0, "%s", ir_interp_error(ip));
		CHECK_MSG(ir_interp_run(ipf, IR_MODE_TRAIN) == 0, "%s", ir_interp_error(ipf));
		Jit *js[3] = {&Jf, &Ju, &J2};
		for (int i = 0; i < 3; i++) {
			js[i]->io[0] = b.x;
			js[i]->io[1] = b.y;
			CHECK_MSG(jit_step(js[i], IR_MODE_TRAIN) == 0,
			          "MLP llvm step %d (tensor %d)", s + 1, js[i]->a.error_tensor);
		}
		char what[64];
		snprintf(what, sizeof what, "MLP step %d", s + 1);
		CHECK_MSG(!memcmp(ir_interp_state_blob(ip), ir_interp_state_blob(ipf),
		                  gu->plan->state_bytes),
		          "%s: fusion marks change the interpreter's state", what);
		check_state(what, gu, ip, &Jf);
		CHECK_MSG(!memcmp(Jf.state, Ju.state, (size_t)Jf.d->state_bytes),
		          "%s: fused and unfused llvm states differ", what);
		CHECK_MSG(!memcmp(Jf.state, J2.state, (size_t)Jf.d->state_bytes),
		          "%s: 1 and 2 threads differ", what);
		free(b.x);
		free(b.y);
	}
	printf(
	    "test_cg_gemm: MLP 784-256-10, batch %d, %d lns-madam steps: fused llvm vs interpreter "
	    "vs unfused llvm vs 2 threads\n",
	    BATCH, STEPS);
	jit_close(&J2);
	jit_close(&Jf);
	jit_close(&Ju);
	ir_interp_free(ip);
	ir_interp_free(ipf);
	ir_graph_free(gf);
	ir_graph_free(gu);
	ir_graph_free(gi);
}

int main(void)
{
	C = ir_ctx_new();
	ncpus = host_cpus(cpus, 0, "test_cg_gemm");
	test_gemm_cases();
	test_matmul_cases();
	test_nonfinite();
	test_mlp_madam();
	ir_ctx_free(C);
	return t_finish("test_cg_gemm");
}
