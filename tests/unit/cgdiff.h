/* cgdiff.h: the LLVM-vs-interpreter differential harness of the codegen op tests
 * (test_cg_ops.c, test_cg_nn.c).
 *
 * A Case is a small graph built with ir_build from random data (deterministic: one LCG for the
 * whole program). run() plans it, compiles it at every vector width the host has (8: x86-64-v3,
 * 16: x86-64-v4 with AVX-512) and runs it on both backends from the same seed: the state blobs
 * must be byte-identical after init; after each of two training steps and an eval step every
 * value the interpreter still holds is compared: f32 within 1e-5 relative (bit-exact when the
 * case is exact), LNS codes equal except, for inexact cases, a few in a thousand off by one
 * code; the state blob (parameters, optimizer state, scale histories and counters) likewise.
 * Big cases also run with 1 and 2 threads, which must agree bit for bit.
 */
#ifndef LNSC_CGDIFF_H
#define LNSC_CGDIFF_H
#include <stdint.h>

#include "codegen/cg.h"
#include "passes/passes.h"
#include "runtime/lnsrt.h"

#define D(...) ((const int64_t[]){__VA_ARGS__})

typedef struct Case {
	IrGraph *g;
	char name[160];
	int exact;     /* fp32 results must be bit-identical */
	int model;     /* a whole model: GEMMs sum in another order than the interpreter */
	int big;       /* run 1 vs 2 threads too */
	int eval_drop; /* compile with eval_dropout */
	int nio;
	IrValue *iov[8];
	void *iod[8];
} Case;

typedef struct Llvm {
	const LnsrtModelDesc *d;
	uint8_t *state, *scratch;
	const void *io[8];
	LnsrtStepArgs a;
} Llvm;

extern IrCtx *C;
extern CgJit *J[2];
extern int NJ, ncases;
extern uint32_t seed_state;
extern LnsrtPool *POOL2;
/* formats the cases use: lns<8,8> delayed / current / underflow min / static, lns<5,2>
 * stochastic (delayed; current with stochastic underflow), lns<12,128> static */
extern const LnsFormat F8, F8C, F5, F5U, F8M, F12, F8S;
extern const LnsFormat FNONE; /* output 0 as inferred */
extern const LnsFormat FF32;  /* output 0 forced to f32 */

/* Sets up the context and JITs (name: the program, for messages); 0, or -1 after a failed
 * check. cgdiff_done frees them. */
int cgdiff_init(const char *name);
void cgdiff_done(void);

double urand(void); /* [-1, 1) */
float *rand_buf(int64_t n, double scale);
void begin(Case *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const IrType *ty(IrDType dt, int rank, const int64_t *dims);
/* A constant operand: f32 random data, stored as f32 or (fmt.bits) LNS, encoded by init. */
IrValue *cst(Case *k, const char *name, int rank, const int64_t *dims, LnsFormat fmt, double scale);
/* A data input fed each step (f32), and the labels (int64 class indices). */
IrValue *input(Case *k, const char *name, int rank, const int64_t *dims, double scale);
IrValue *labels(Case *k, int64_t n, int64_t classes);
/* Builds a node; its outputs are graph outputs (live to the end of the step), output 0 in
 * format fmt (FNONE: as inferred, FF32: f32). */
IrNode *node(Case *k, IrOp op, int nin, IrValue **in, const IrAttrs *at, LnsFormat fmt);
/* Compiles the case's planned graph with JIT w; the model descriptor or NULL. */
const LnsrtModelDesc *compile(Case *k, int w);
/* A model instance on garbage-filled blobs, initialised from seed (init's return value). */
int llvm_start(Llvm *L, const LnsrtModelDesc *d, Case *k, LnsrtPool *pool, uint64_t seed);
void llvm_free(Llvm *L);
/* The state blobs of the interpreter and of L: identical when exact; else value by value. */
void cmp_state(const Case *k, IrInterp *ip, Llvm *L, const char *when);
/* Plans (unless planned) and runs the case at every vector width, then frees it. */
void run(Case *k);
const char *fname(LnsFormat f); /* "f32" or the format's full name */
/* Makes y the graph's output, runs the pass pipeline (recipe, loss, SGD or Adam for fp32),
 * adds labels and runs the case (freed; y NULL: a failed build, reported). */
void run_trained(Case *k, IrValue *y, const char *recipe, PassLoss loss, int adam);
/* An ONNX model through the whole pipeline at batch, with random inputs and labels, compared
 * with model tolerance. threads: also on 2 threads (bit-identical); unfused: the fusion marks
 * dropped (every node its own kernel, as `lnsc grad` runs). */
void model_case(const char *path, const char *recipe, int64_t batch, int threads, int unfused);

#endif
