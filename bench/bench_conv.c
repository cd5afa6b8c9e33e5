/* bench_conv.c: throughput of lnsc's convolution kernels against im2col + OpenBLAS sgemm, on
 * the conv layers of the example CNN (examples/cnn: Conv(1,16,3,pad 1) on 28x28 and
 * Conv(16,32,3,pad 1) on 14x14, batch 64).
 *
 * For each layer, op (forward Conv, ConvGradX, ConvGradW) and thread count (1, 2) it times, in
 * one run: lnsc's kernel with lns8g8 operands (decoded while packing; the column matrix never
 * exists), the same kernel with f32 operands, and the usual fp32 baseline: per image im2col
 * and cblas_sgemm (forward: W x col; ConvGradX: W^T x dY then a col2im scatter-add;
 * ConvGradW: dY x col^T accumulated over the batch), with OpenBLAS on the same thread count.
 * The lnsc kernels are the ones a compiled model runs: a one-node graph planned, emitted by
 * cg_emit_model and jitted for the host, timed through its eval step (LNS operands are
 * constants encoded at init, so the step is the convolution alone). Each figure is the median
 * of RUNS timed runs after a warm-up (a run repeats the op for at least 50 ms), with the min
 * and max, in GFLOP/s = 2 M N K / t (the convolution's multiply-adds, the same for the three
 * ops). --smoke runs a tiny layer once (CI keeps the program working); --runs N sets RUNS.
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

/* A layer: X [n, c, h, w], W [m, c, k, k], stride 1, pads p, group 1. */
typedef struct Layer {
	const char *name;
	int n, c, h, w, m, k, p;
} Layer;

static int out_dim(const Layer *L, int in)
{
	return in + 2 * L->p - L->k + 1;
}

static double layer_flops(const Layer *L)
{
	return 2.0 * L->n * L->m * out_dim(L, L->h) * out_dim(L, L->w) * L->c * L->k * L->k;
}

/* ---- lnsc: a one-node model ---- */

static IrValue *operand(IrGraph *g, const char *name, const int64_t *dims, int lns,
                        const float *data)
{
	IrCtx *ir = g->ctx;
	const IrType *t = ir_type(ir, IR_DT_F32, 4, dims);
	if (!lns)
		return ir_value_new(g, name, t, IR_ROLE_INPUT, NULL, NULL);
	LnsFormat f;
	lns_format_parse("lns8g8:static", &f);
	return ir_value_new(g, name, ir_type_with_format(ir, t, f), IR_ROLE_CONST, data, t);
}

/* The op's graph: forward (X, W), ConvGradX (dY, W), ConvGradW (dY, X); data0, data1 its
 * operands' values. */
static IrGraph *conv_graph(IrCtx *ir, const Layer *L, IrOp op, int lns, const float *d0,
                           const float *d1)
{
	int oh = out_dim(L, L->h), ow = out_dim(L, L->w);
	int64_t xd[4] = {L->n, L->c, L->h, L->w}, wd[4] = {L->m, L->c, L->k, L->k};
	int64_t yd[4] = {L->n, L->m, oh, ow};
	IrGraph *g = ir_graph_new(ir, "bench_conv", NULL);
	IrAttrs at = {.conv = {.kernel = {L->k, L->k},
	                       .stride = {1, 1},
	                       .dilation = {1, 1},
	                       .pad = {L->p, L->p, L->p, L->p},
	                       .group = 1}};
	IrValue *in[2];
	if (op == IR_OP_CONV) {
		in[0] = operand(g, "x", xd, lns, d0);
		in[1] = operand(g, "w", wd, lns, d1);
	} else if (op == IR_OP_CONV_GRAD_X) {
		in[0] = operand(g, "dy", yd, lns, d0);
		in[1] = operand(g, "w", wd, lns, d1);
		at.conv.xhw[0] = L->h, at.conv.xhw[1] = L->w;
	} else {
		in[0] = operand(g, "dy", yd, lns, d0);
		in[1] = operand(g, "x", xd, lns, d1);
	}
	IrNode *n = ir_build(g, op, "conv", 2, in, &at, NULL);
	if (!n)
		return NULL;
	n->out[0]->is_output = 1;
	ir_vec_push(&g->outputs, n->out[0]);
	return pass_plan(g) ? NULL : g;
}

static int ours_init(BenchModel *o, const Layer *L, IrOp op, int lns, const float *d0,
                     const float *d1, int threads)
{
	IrCtx *ir = ir_ctx_new();
	return bench_model_open(o, ir, conv_graph(ir, L, op, lns, d0, d1), d0, d1, threads,
	                        "bench_conv");
}

/* ---- the baseline: im2col + OpenBLAS sgemm per image ---- */

typedef struct Blas {
	const Layer *L;
	IrOp op;
	const float *d0, *d1;
	float *y, *col;
} Blas;

#ifdef LNSC_HAVE_OPENBLAS
/* col[(c, kh, kw)][(oh, ow)] of one image (zero where the window is in the padding); with
 * add, the other way: x[c][ih][iw] += col[...] (col2im). */
static void im2col(const Layer *L, const float *x, float *col, int add)
{
	int oh = out_dim(L, L->h), ow = out_dim(L, L->w), k = L->k;
	for (int c = 0; c < L->c; c++)
		for (int kh = 0; kh < k; kh++)
			for (int kw = 0; kw < k; kw++) {
				float *row = col + ((int64_t)(c * k + kh) * k + kw) * oh * ow;
				for (int i = 0; i < oh; i++) {
					int ih = i - L->p + kh;
					for (int j = 0; j < ow; j++) {
						int iw = j - L->p + kw;
						int in =
						    ih >= 0 && ih < L->h && iw >= 0 && iw < L->w;
						float *xp = (float *)x +
						            ((int64_t)c * L->h + ih) * L->w + iw;
						if (add && in)
							*xp += row[i * ow + j];
						else if (!add)
							row[i * ow + j] = in ? *xp : 0.0f;
					}
				}
			}
}

static void blas_run(void *arg)
{
	Blas *b = arg;
	const Layer *L = b->L;
	int P = out_dim(L, L->h) * out_dim(L, L->w), K = L->c * L->k * L->k, M = L->m;
	int64_t xs = (int64_t)L->c * L->h * L->w, ys = (int64_t)M * P;
	if (b->op == IR_OP_CONV_GRAD_X)
		memset(b->y, 0, sizeof(float) * (size_t)(xs * L->n));
	for (int n = 0; n < L->n; n++) {
		if (b->op == IR_OP_CONV) {
			im2col(L, b->d0 + n * xs, b->col, 0);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, P, K, 1.0f, b->d1,
			            K, b->col, P, 0.0f, b->y + n * ys, P);
		} else if (b->op == IR_OP_CONV_GRAD_X) {
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, M, 1.0f, b->d1,
			            K, b->d0 + n * ys, P, 0.0f, b->col, P);
			im2col(L, b->y + n * xs, b->col, 1);
		} else {
			im2col(L, b->d1 + n * xs, b->col, 0);
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, K, P, 1.0f,
			            b->d0 + n * ys, P, b->col, P, n ? 1.0f : 0.0f, b->y, K);
		}
	}
}
#endif

static const char *op_label(IrOp op)
{
	return op == IR_OP_CONV ? "forward" : op == IR_OP_CONV_GRAD_X ? "grad X" : "grad W";
}

/* One row: a layer's op on the given thread count. */
static int row(const Layer *L, IrOp op, int threads, int runs, double min_s)
{
	int oh = out_dim(L, L->h), ow = out_dim(L, L->w);
	int64_t nx = (int64_t)L->n * L->c * L->h * L->w, nw = (int64_t)L->m * L->c * L->k * L->k;
	int64_t ny = (int64_t)L->n * L->m * oh * ow;
	int64_t n0 = op == IR_OP_CONV ? nx : ny, n1 = op == IR_OP_CONV_GRAD_W ? nx : nw;
	float *d0 = bench_rand(n0, 1), *d1 = bench_rand(n1, 2);
	int64_t nout = op == IR_OP_CONV ? ny : op == IR_OP_CONV_GRAD_X ? nx : nw;
	float *y = malloc(sizeof(float) * (size_t)nout);
	float *col = malloc(sizeof(float) * (size_t)(L->c * L->k * L->k) * (size_t)(oh * ow));
	Fig f[3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
	BenchModel o[2];
	memset(o, 0, sizeof o);
	int rc = ours_init(&o[0], L, op, 1, d0, d1, threads) ||
	         ours_init(&o[1], L, op, 0, d0, d1, threads);
	Work w[3] = {{bench_model_run, &o[0], 0, {0}},
	             {bench_model_run, &o[1], 0, {0}},
	             {NULL, NULL, 0, {0}}};
	int nw_ = 2;
#ifdef LNSC_HAVE_OPENBLAS
	Blas b = {L, op, d0, d1, y, col};
	openblas_set_num_threads(threads);
	w[nw_++] = (Work){blas_run, &b, 0, {0}};
#endif
	if (!rc)
		bench_time_all(w, nw_, layer_flops(L), runs, min_s, f);
	bench_model_free(&o[0]);
	bench_model_free(&o[1]);
	free(d0);
	free(d1);
	free(y);
	free(col);
	if (rc)
		return -1;
	printf("| %-6s | %-7s | %7d |", L->name, op_label(op), threads);
	for (int i = 0; i < 3; i++)
		bench_print_fig(f[i]);
	if (f[2].med > 0)
		printf(" %8.2f | %8.2f |\n", f[0].med / f[2].med, f[1].med / f[2].med);
	else
		printf(" %8s | %8s |\n", "-", "-");
	return 0;
}

int main(int argc, char **argv)
{
	int smoke, runs = 7;
	if (bench_start(argc, argv, "bench_conv", &smoke, &runs))
		return 2;
	static const Layer layers[] = {{"conv1", 64, 1, 28, 28, 16, 3, 1},
	                               {"conv2", 64, 16, 14, 14, 32, 3, 1}};
	static const Layer tiny[] = {{"tiny", 2, 3, 9, 9, 4, 3, 1}};
	const Layer *ls = smoke ? tiny : layers;
	int nl = smoke ? 1 : 2;
	if (smoke)
		runs = 1;
	printf("GFLOP/s (2 M N K / t: the layer's multiply-adds, batch 64, f32 result); median "
	       "[min-max] of %d runs after a warm-up\n\n",
	       runs);
	printf("| layer  | op      | threads | lnsc lns8g8 operands  | lnsc f32 operands     | "
	       "im2col + OpenBLAS     | lns/BLAS | f32/BLAS |\n");
	printf("|--------|---------|---------|-----------------------|-----------------------|"
	       "-----------------------|----------|----------|\n");
	static const IrOp ops[] = {IR_OP_CONV, IR_OP_CONV_GRAD_X, IR_OP_CONV_GRAD_W};
	for (int threads = 1; threads <= 2; threads++)
		for (int l = 0; l < nl; l++)
			for (int i = 0; i < 3; i++)
				if (row(&ls[l], ops[i], threads, runs, smoke ? 0.0 : 0.05))
					return 1;
	return 0;
}
