/* benchlib.c: timing and data for the kernel benchmarks (benchlib.h). */
#include "bench/benchlib.h"

#include <stdlib.h>
#include <time.h>

#include "runtime/lnsrt.h"

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
