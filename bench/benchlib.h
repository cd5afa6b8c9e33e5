/* benchlib.h: what the kernel benchmarks (bench_gemm.c, bench_conv.c) share: interleaved,
 * calibrated timing of workloads as median [min-max] GFLOP/s (BENCH.md), and seeded data. */
#ifndef LNSC_BENCHLIB_H
#define LNSC_BENCHLIB_H
#include <stdint.h>

#include "codegen/cg.h"
#include "runtime/lnsrt.h"

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
/* The command line every kernel benchmark takes, [--smoke] [--runs N (5..64)] (*runs keeps
 * its default otherwise): 0, or 2 after a usage message naming prog. Then prints the command
 * and the OpenBLAS build in use, and initialises LLVM. */
int bench_start(int argc, char **argv, const char *prog, int *smoke, int *runs);
/* One table cell: median [min-max] (21 characters). */
void bench_print_fig(Fig f);
/* n floats uniform in [-1, 1) from seed (malloc'd; aborts when out of memory). */
float *bench_rand(int64_t n, uint64_t seed);

/* A one-node model compiled for the host by its own JIT, timed through its eval step (its LNS
 * operands are constants encoded at init, so the step is the kernel alone); d0, d1 are its
 * IO slots 0 and 1. bench_model_open takes ir and g (g NULL: a failed build) and frees them
 * with the model; 0, or -1 with the diagnostics printed after prog. */
typedef struct BenchModel {
	IrCtx *ir;
	IrGraph *g;
	CgJit *jit;
	const LnsrtModelDesc *d;
	void *state, *scratch;
	const void *io[2];
	LnsrtStepArgs a;
} BenchModel;
int bench_model_open(BenchModel *o, IrCtx *ir, IrGraph *g, const float *d0, const float *d1,
                     int threads, const char *prog);
void bench_model_run(void *arg); /* a Work function: one eval step (aborts on failure) */
void bench_model_free(BenchModel *o);

#endif
