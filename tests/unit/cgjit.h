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

#endif
