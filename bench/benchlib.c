/* benchlib.c: timing and data for the kernel benchmarks (benchlib.h). */
#include "bench/benchlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/cg.h"
#include "runtime/lnsrt.h"

#ifdef LNSC_HAVE_OPENBLAS
#include <cblas.h>
#endif

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Warm-up and calibration: the number of calls that lasts at least min_s seconds. */
static void calibrate(Work *w, double min_s)
{
	w->reps = 1;
	w->fn(w->arg);
	for (;;) {
		double t0 = lnsrt_now();
		for (int r = 0; r < w->reps; r++)
			w->fn(w->arg);
		double t = lnsrt_now() - t0;
		if (t >= min_s || w->reps >= (1 << 20))
			return;
		w->reps = t > 0 ? (int)(w->reps * (min_s / t) * 1.2) + 1 : w->reps * 10;
	}
}

void bench_time_all(Work *w, int nw, double flops, int runs, double min_s, Fig *out)
{
	for (int i = 0; i < nw; i++)
		calibrate(&w[i], min_s);
	for (int r = 0; r < runs; r++)
		for (int i = 0; i < nw; i++) {
			struct timespec pause = {0, 100 * 1000 * 1000};
			nanosleep(&pause, NULL);
			w[i].fn(w[i].arg);
			double t0 = lnsrt_now();
			for (int k = 0; k < w[i].reps; k++)
				w[i].fn(w[i].arg);
			w[i].g[r] = flops * w[i].reps / (lnsrt_now() - t0) * 1e-9;
		}
	for (int i = 0; i < nw; i++) {
		double *g = w[i].g;
		qsort(g, (size_t)runs, sizeof g[0], cmp_double);
		out[i] = (Fig){runs % 2 ? g[runs / 2] : 0.5 * (g[runs / 2 - 1] + g[runs / 2]), g[0],
		               g[runs - 1]};
	}
}

float *bench_rand(int64_t n, uint64_t seed)
{
	float *x = malloc(sizeof(float) * (size_t)(n ? n : 1));
	if (!x)
		abort();
	for (int64_t i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		x[i] = (float)((double)(seed >> 40) / (double)(1 << 24) * 2.0 - 1.0);
	}
	return x;
}

int bench_start(int argc, char **argv, const char *prog, int *smoke, int *runs)
{
	*smoke = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--smoke")) {
			*smoke = 1;
		} else if (!strcmp(argv[i], "--runs") && i + 1 < argc && atoi(argv[i + 1]) >= 5 &&
		           atoi(argv[i + 1]) <= 64) {
			*runs = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: %s [--smoke] [--runs N (5..64)]\n", prog);
			return 2;
		}
	}
	printf("command:");
	for (int i = 0; i < argc; i++)
		printf(" %s", argv[i]);
	printf("\n");
	cg_llvm_init();
#ifdef LNSC_HAVE_OPENBLAS
	printf("OpenBLAS: %s\n", openblas_get_config());
#else
	printf("OpenBLAS: not found at build time (no baseline column)\n");
#endif
	return 0;
}

void bench_print_fig(Fig f)
{
	printf(" %7.1f [%5.1f-%5.1f] |", f.med, f.lo, f.hi);
}

int bench_model_open(BenchModel *o, IrCtx *ir, IrGraph *g, const float *d0, const float *d1,
                     int threads, const char *prog)
{
	memset(o, 0, sizeof *o);
	o->ir = ir;
	o->g = g;
	o->jit = o->g ? cg_jit_new(o->ir, NULL) : NULL;
	CgCtx *c = o->jit ? cg_jit_ctx(o->jit, "bench") : NULL;
	if (!c || cg_emit_model(c, o->g, "bench", 0) || cg_jit_add(o->jit, c) ||
	    !(o->d = cg_jit_lookup(o->jit, "bench"))) {
		fprintf(stderr, "%s: %s\n", prog, ir_diag_text(o->ir));
		return -1;
	}
	o->state = aligned_alloc(64, ((size_t)o->d->state_bytes + 63) / 64 * 64);
	o->scratch = aligned_alloc(64, ((size_t)o->d->scratch_bytes + 63) / 64 * 64);
	if (!o->state || !o->scratch)
		return -1;
	memset(o->scratch, 0, (size_t)o->d->scratch_bytes);
	o->io[0] = d0;
	o->io[1] = d1;
	o->a = (LnsrtStepArgs){.state = o->state,
	                       .scratch = o->scratch,
	                       .io = o->io,
	                       .pool = threads > 1 ? lnsrt_pool_new(threads) : NULL,
	                       .error_tensor = -1};
	return o->d->init(&o->a, 1);
}

void bench_model_run(void *arg)
{
	BenchModel *o = arg;
	if (o->d->eval_step(&o->a))
		abort();
}

void bench_model_free(BenchModel *o)
{
	if (!o->ir)
		return;
	free(o->state);
	free(o->scratch);
	if (o->a.pool)
		lnsrt_pool_free(o->a.pool);
	if (o->jit)
		cg_jit_free(o->jit);
	if (o->g)
		ir_graph_free(o->g);
	ir_ctx_free(o->ir);
}
