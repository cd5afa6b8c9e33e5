/* cgjit.h: one model compiled by a JIT of its own, for the codegen kernel tests
 * (test_cg_gemm.c, test_cg_conv.c); implemented in cgdiff.c with the differential harness. */
#ifndef LNSC_CGJIT_H
#define LNSC_CGJIT_H
#include <stdint.h>

#include "codegen/cg.h"
#include "runtime/lnsrt.h"

typedef struct Jit {
	CgJit *j;
	const LnsrtModelDesc *d;
	uint8_t *state, *scratch;
	const void *io[8];
	LnsrtPool *pool;
	LnsrtStepArgs a;
	IrGraph *g;
	int owner; /* compiled the model (else shares another Jit's) */
} Jit;
/* Compiles g (planned) for cpu with a JIT of its own and makes an instance initialised with
 * seed (zeroed blobs); jit_share makes another instance of src's model. 0, or -1 (printed). */
int jit_open(Jit *J, IrCtx *ctx, IrGraph *g, const char *cpu, uint64_t seed);
int jit_share(Jit *J, const Jit *src, uint64_t seed);
void jit_close(Jit *J);
void jit_threads(Jit *J, int n); /* run the steps on n threads (1: no pool) */
int jit_step(Jit *J, IrMode mode);
void *jit_data(Jit *J, const IrValue *v); /* v's storage in the instance */
int32_t jit_k(Jit *J, const IrValue *v);  /* v's scale offset this step (LNS values) */

/* The CPUs whose results must agree bit for bit, widest first: x86-64-v4 (16 lanes) and
 * x86-64-v3 (8) as the host allows, and (baseline) x86-64 (4); NULL (the host) elsewhere.
 * Returns how many (at most 3); tells when the host has no AVX-512. */
int host_cpus(const char **cpus, int baseline, const char *prog);

/* t with the LNS format fmt ("lns8g8", ...; NULL: t itself), and v made a graph output. */
const IrType *with_fmt(IrCtx *ctx, const IrType *t, const char *fmt);
void make_output(IrGraph *g, IrValue *v);

/* Two instances (threads, vector widths) must agree bit for bit: state blob past its header's
 * first 16 bytes, and v with its k. */
void check_same(const char *what, Jit *a, Jit *b, const IrValue *v);

/* Checks that |y[i] - ref[i]| <= bound[i] for the n elements (the fp32 error bound of a
 * GEMM or convolution against its fp64 reference); what names the case in the message. */
void check_bound(const char *what, const float *y, const double *ref, const double *bound,
                 int64_t n);

/* Seeded data: an LCG whose state is s; unit [0, 1), an int in [lo, hi], n floats in
 * [-scale, scale) (malloc'd). */
typedef struct Rng {
	uint64_t s;
} Rng;
double rng_unit(Rng *r);
int rng_int(Rng *r, int lo, int hi);
float *rng_data(Rng *r, int64_t n, float scale);

#endif
