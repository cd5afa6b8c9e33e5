/* bench_gemm.c: GEMM throughput of lnsc's generated kernels against OpenBLAS sgemm.
 *
 * For each size n (256, 512, 1024) and thread count (1, 2) it times C = A B (n x n, row-major,
 * f32 result) three ways in one run: lnsc's kernel with lns8g8 operands (decoded while packing),
 * lnsc's kernel with f32 operands, and OpenBLAS's cblas_sgemm. The lnsc kernels are the ones
 * a compiled model runs: a one-node graph (Gemm) planned, emitted by cg_emit_model and jitted
 * for the host, timed through its eval step (LNS operands are constants encoded at init, so
 * the step is the GEMM alone). Each figure is the median of RUNS timed runs after a warm-up
 * (a run repeats the GEMM for at least 50 ms), with the min and max, in GFLOP/s = 2 n^3 / t.
 * --smoke runs tiny sizes once (CI keeps the program working); --runs N sets RUNS (>= 5).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/benchlib.h"
#include "codegen/cg.h"
#include "passes/passes.h"
#include "runtime/lnsrt.h"

#ifdef LNSC_HAVE_OPENBLAS
#include <cblas.h>
#endif

/* ---- lnsc: a one-Gemm model ---- */

/* A, B: n x n; LNS operands are constants (lns8g8, encoded at init), f32 ones inputs. */
static IrGraph *gemm_graph(IrCtx *ir, int64_t n, int lns, const float *a, const float *b)
{
	int64_t d[2] = {n, n};
	const IrType *t = ir_type(ir, IR_DT_F32, 2, d);
	IrGraph *g = ir_graph_new(ir, "bench_gemm", NULL);
	IrValue *in[2];
	const float *data[2] = {a, b};
	const char *names[2] = {"a", "b"};
	for (int i = 0; i < 2; i++) {
		if (lns) {
			LnsFormat f;
			lns_format_parse("lns8g8:static", &f);
			in[i] = ir_value_new(g, names[i], ir_type_with_format(ir, t, f),
			                     IR_ROLE_CONST, data[i], t);
		} else {
			in[i] = ir_value_new(g, names[i], t, IR_ROLE_INPUT, NULL, NULL);
		}
	}
	IrAttrs at = {.gemm = {1.0f, 1.0f, 0, 0}};
	IrNode *m = ir_build(g, IR_OP_GEMM, "gemm", 2, in, &at, NULL);
	if (!m)
		return NULL;
	m->out[0]->is_output = 1;
	ir_vec_push(&g->outputs, m->out[0]);
	return pass_plan(g) ? NULL : g;
}

static int ours_init(BenchModel *o, int64_t n, int lns, const float *a, const float *b, int threads)
{
	IrCtx *ir = ir_ctx_new();
	return bench_model_open(o, ir, gemm_graph(ir, n, lns, a, b), a, b, threads, "bench_gemm");
}

/* ---- OpenBLAS ---- */

typedef struct Blas {
	int n;
	const float *a, *b;
	float *c;
} Blas;

#ifdef LNSC_HAVE_OPENBLAS
static void blas_run(void *arg)
{
	Blas *x = arg;
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, x->n, x->n, x->n, 1.0f, x->a, x->n,
	            x->b, x->n, 0.0f, x->c, x->n);
}
#endif

/* One row: size n with the given thread count. */
static int row(int64_t n, int threads, int runs, double min_s)
{
	double flops = 2.0 * (double)n * (double)n * (double)n;
	float *a = bench_rand(n * n, 1), *b = bench_rand(n * n, 2);
	float *c = malloc(sizeof(float) * (size_t)(n * n));
	Fig f[3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
	BenchModel o[2];
	memset(o, 0, sizeof o);
	int rc = ours_init(&o[0], n, 1, a, b, threads) || ours_init(&o[1], n, 0, a, b, threads);
	Work w[3] = {{bench_model_run, &o[0], 0, {0}},
	             {bench_model_run, &o[1], 0, {0}},
	             {NULL, NULL, 0, {0}}};
	int nw = 2;
#ifdef LNSC_HAVE_OPENBLAS
	Blas x = {(int)n, a, b, c};
	openblas_set_num_threads(threads);
	w[nw++] = (Work){blas_run, &x, 0, {0}};
#endif
	if (!rc)
		bench_time_all(w, nw, flops, runs, min_s, f);
	bench_model_free(&o[0]);
	bench_model_free(&o[1]);
	free(a);
	free(b);
	free(c);
	if (rc)
		return -1;
	printf("| %5lld | %7d |", (long long)n, threads);
	for (int i = 0; i < 3; i++)
		bench_print_fig(f[i]);
	if (f[2].med > 0)
		printf(" %9.2f | %9.2f |\n", f[0].med / f[2].med, f[1].med / f[2].med);
	else
		printf(" %9s | %9s |\n", "-", "-");
	return 0;
}

int main(int argc, char **argv)
{
	int smoke, runs = 7;
	if (bench_start(argc, argv, "bench_gemm", &smoke, &runs))
		return 2;
	static const int64_t sizes[] = {256, 512, 1024}, smoke_sizes[] = {16, 37};
	const int64_t *sz = smoke ? smoke_sizes : sizes;
	int nsz = smoke ? 2 : 3;
	if (smoke)
		runs = 1;
	printf("GFLOP/s (2 n^3 / t), C = A B with n x n row-major matrices, f32 result; median "
	       "[min-max] of %d runs after a warm-up\n\n",
	       runs);
	printf("| n     | threads | lnsc lns8g8 operands  | lnsc f32 operands     | OpenBLAS sgemm "
	       "       | lns/BLAS  | f32/BLAS  |\n");
	printf("|-------|---------|-----------------------|-----------------------|---------------"
	       "--------|-----------|-----------|\n");
	for (int threads = 1; threads <= 2; threads++)
		for (int i = 0; i < nsz; i++)
			if (row(sz[i], threads, runs, smoke ? 0.0 : 0.05))
				return 1;
	return 0;
}
