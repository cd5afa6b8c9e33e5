/* benchlib.h: what the kernel benchmarks (bench_gemm.c, bench_conv.c) share: interleaved,
 * calibrated timing of workloads as median [min-max] GFLOP/s (BENCH.md), and seeded data. */
#ifndef LNSC_BENCHLIB_H
#define LNSC_BENCHLIB_H
#include <stdint.h>

typedef struct Fig {
	double med, lo, hi; /* GFLOP/s */
} Fig;

/* A timed workload: fn(arg) does the benchmark's `flops` floating-point operations. */
typedef struct Work {
	void (*fn)(void *);
	void *arg;
	int reps;     /* calls per timed run, so that a run lasts at least min_s */
	double g[64]; /* GFLOP/s per run */
} Work;

/* Runs the workloads `runs` (<= 64) times each after a warm-up and calibration, interleaved
 * (so that the machine's noise hits them alike), and gives their median, min and max GFLOP/s.
 * Before each timed run the other workloads' threads get time to stop spinning (OpenBLAS's
 * spin for a while after each call and would take a core from the next one), then one
 * untimed call wakes this one's. */
void bench_time_all(Work *w, int nw, double flops, int runs, double min_s, Fig *out);
/* n floats uniform in [-1, 1) from seed (malloc'd; aborts when out of memory). */
float *bench_rand(int64_t n, uint64_t seed);

#endif
