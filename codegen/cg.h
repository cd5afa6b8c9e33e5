/* cg.h: the LLVM backend's one internal header: the codegen context and every cg_ entry point.
 *
 * Codegen turns a planned graph (passes/plan.c: state blob, scratch arena, IO buffers) into
 * LLVM IR through the LLVM C API: one module per model holding the kernels (specialised to
 * shapes and formats, vectorised with the target's width) and the entry points (init, train
 * step, eval step) that call them in schedule order. The state layout is the plan's, the same
 * one the interpreter uses, so checkpoints are backend-independent. The module is verified,
 * optimised with the new pass manager (default<O3>), then handed to ORC LLJIT or written as
 * an object, assembly or LLVM IR.
 *
 * Ownership: a CgCtx owns its LLVMContext (an ORC thread-safe context when jitting), module,
 * builder and target machine; cg_ctx_free disposes of what is still owned. LLVM diagnostics are
 * routed into the IrCtx's diagnostics.
 *
 * Split by concern: cg_ctx.c (context, target, optimise, emit), cg_jit.c (LLJIT), cg_loops.c
 * (loop and vector helpers), cg_lns.c (LNS encode/decode in IR, bit-exact with ir/lns.c),
 * cg_ew.c (kernel building blocks, elementwise ops), cg_move.c (data movement, Cast),
 * cg_loss.c (softmax, losses, SumTo), cg_gemm.c (packed GEMM with LNS decode-on-pack, FMA
 * microkernels, fused epilogues), cg_conv.c (convolutions as implicit GEMMs), cg_nn.c
 * (BatchNormalization, pools), cg_update.c (Madam, SGD, Adam, Assign), cg_table.c (the op table),
 * cg_entry.c (entry points, the model descriptor, plumbing every kernel uses).
 */
#ifndef LNSC_CG_H
#define LNSC_CG_H

#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>

#include "ir/ir.h"

/* What to build for. triple NULL = host; cpu NULL = host CPU (or "generic" for a cross
 * triple); features NULL = the CPU's. */
typedef struct CgTarget {
	const char *triple;
	const char *cpu;
	const char *features;
	int opt_level; /* 0..3 (default 3) */
} CgTarget;

typedef struct CgCtx {
	IrCtx *ir;
	IrGraph *g;
	LLVMContextRef llctx;
	int own_llctx; /* 0 when the context belongs to an ORC thread-safe context */
	LLVMModuleRef mod;
	LLVMBuilderRef b;
	LLVMTargetMachineRef tm;
	LLVMTargetDataRef td;
	char *triple, *cpu, *features; /* LLVM-allocated (LLVMDisposeMessage) or strdup'd */
	int vw;          /* f32 lanes per vector: 16 AVX-512, 8 AVX2, 4 NEON/SSE */
	int is_x86, is_aarch64;
	/* cached types */
	LLVMTypeRef t_void, t_i1, t_i8, t_i16, t_i32, t_i64, t_f32, t_f64, t_ptr;
	LLVMTypeRef t_vf32, t_vi32; /* <vw x float>, <vw x i32> */
	/* the function being emitted, and in it the step's base pointers (loaded from the
	 * LnsrtStepArgs* argument by cg_fn_begin) */
	LLVMValueRef fn;
	LLVMValueRef args, state, scratch, io;
	LLVMTypeRef t_args; /* struct LnsrtStepArgs */
	IrMode mode;        /* the step being emitted (TRAIN or EVAL) */
	int eval_dropout;   /* EVAL applies Dropout nodes with training=1 (lnsc eval semantics) */
	/* per value id while cg_emit_model runs: index in the descriptor's tensor table and IO
	 * slot (-1 if none) */
	int32_t *tindex, *ioslot;
	const char *recipe; /* the descriptor's recipe string (set before cg_emit_model; NULL: "") */
	/* per-model constant tables (LNS thresholds etc.), created on first use by cg_lns.c */
	LLVMValueRef lns_tables[LNS_MAX_LOG2G + 1][4];
} CgCtx;

/* ---- cg_ctx.c ---- */
/* Initialises LLVM's targets once per process (idempotent; the only process-wide state, owned
 * by LLVM itself). */
void cg_llvm_init(void);
/* A context for target t, with a fresh module named name. llctx: NULL to create one, else an
 * existing context (e.g. from an ORC thread-safe context) that the CgCtx does not own.
 * NULL with a diagnostic on failure (unknown triple or CPU). */
CgCtx *cg_ctx_new(IrCtx *ir, const CgTarget *t, const char *name, LLVMContextRef llctx);
void cg_ctx_free(CgCtx *c);
/* Verifies the module (errors become diagnostics), then runs default<O{opt_level}>.
 * LNSC_LLVM_DUMP=before|after|both prints the IR to stderr. */
int cg_optimize(CgCtx *c);
/* The same with the JIT's shorter pipeline (CG_JIT_PIPELINE in cg_ctx.c, or the
 * LNSC_JIT_PIPELINE environment variable): the kernels arrive vectorised, so the loop and SLP
 * vectorisers and most of O3's repeated clean-ups buy nothing but compile time. */
int cg_optimize_jit(CgCtx *c);
typedef enum { CG_EMIT_OBJ, CG_EMIT_ASM, CG_EMIT_LLVM } CgEmitKind;
int cg_emit_file(CgCtx *c, CgEmitKind kind, const char *path);
/* Takes the module out of the context (for the JIT, which then owns it). */
LLVMModuleRef cg_take_module(CgCtx *c);

/* ---- cg_jit.c ---- */
typedef struct CgJit CgJit;
/* Creates an LLJIT for the host whose thread-safe context is used to create a CgCtx: call
 * cg_jit_ctx to get the CgCtx to emit into, then cg_jit_add to compile it. */
CgJit *cg_jit_new(IrCtx *ir, const CgTarget *t);
CgCtx *cg_jit_ctx(CgJit *j, const char *name);
/* Optimises and adds the module of c (the CgCtx is consumed: freed). */
int cg_jit_add(CgJit *j, CgCtx *c);
void *cg_jit_lookup(CgJit *j, const char *symbol);
void cg_jit_free(CgJit *j);

/* ---- cg_loops.c: small helpers so kernels read like the math ---- */
LLVMValueRef cg_i32(CgCtx *c, int64_t v);
LLVMValueRef cg_i64(CgCtx *c, int64_t v);
LLVMValueRef cg_f32(CgCtx *c, float v);
LLVMValueRef cg_splat(CgCtx *c, LLVMValueRef scalar, int lanes);
/* Pointer to base + byte offset (i8 GEP). */
LLVMValueRef cg_gep(CgCtx *c, LLVMValueRef base, LLVMValueRef byte_off);
LLVMValueRef cg_gep_c(CgCtx *c, LLVMValueRef base, int64_t byte_off);
/* A counted loop: for (i = lo; i < hi; i += step) body(i). The builder is left after the
 * loop. Usage:
 *     CgLoop L; LLVMValueRef i = cg_loop_begin(c, &L, lo, hi, step, "i");
 *     ... emit body using i ...
 *     cg_loop_end(c, &L);
 */
typedef struct CgLoop {
	LLVMBasicBlockRef head, body, exit;
	LLVMValueRef iv, step, hi;
} CgLoop;
LLVMValueRef cg_loop_begin(CgCtx *c, CgLoop *L, LLVMValueRef lo, LLVMValueRef hi, int64_t step,
			   const char *name);
void cg_loop_end(CgCtx *c, CgLoop *L);
/* Intrinsic call helper: name like "llvm.fma", overloaded on type ty. */
LLVMValueRef cg_intrinsic(CgCtx *c, const char *name, LLVMTypeRef ty, LLVMValueRef *args,
			  int nargs);
/* The same for intrinsics overloaded on several types (tys, as LLVM lists them). */
LLVMValueRef cg_intrinsic_n(CgCtx *c, const char *name, LLVMTypeRef *tys, int ntys,
			     LLVMValueRef *args, int nargs);
/* A vector load / store of type vt at p, masked when mask (<n x i1>) is not NULL: lanes off
 * read as zero and touch no memory. */
LLVMValueRef cg_vload(CgCtx *c, LLVMTypeRef vt, LLVMValueRef p, LLVMValueRef mask, unsigned align);
void cg_vstore(CgCtx *c, LLVMValueRef v, LLVMValueRef p, LLVMValueRef mask, unsigned align);
/* Declares (once) an external function in the module. */
LLVMValueRef cg_extern_fn(CgCtx *c, const char *name, LLVMTypeRef fty);

/* ---- cg_entry.c: entry points and the model descriptor ---- */
/* Emits the whole model into c: the descriptor `<sym>` (an LnsrtModelDesc, runtime/lnsrt.h)
 * with its tensor table, init/train/eval entry points, and every kernel. The graph must be
 * planned (and fused). eval_dropout: see CgCtx. Returns 0 or -1 with diagnostics. */
int cg_emit_model(CgCtx *c, IrGraph *g, const char *sym, int eval_dropout);
/* Starts a function `void|i32 name(LnsrtStepArgs *a, ...)`: entry block, loads the bases. */
LLVMValueRef cg_fn_begin(CgCtx *c, const char *name, LLVMTypeRef fty);
/* Address of a value's storage / its LnsScaleState in the current function. */
LLVMValueRef cg_value_ptr(CgCtx *c, const IrValue *v);
LLVMValueRef cg_scale_ptr(CgCtx *c, const IrValue *v);
/* The step number (1-based while training) and seed, loaded from the state header. */
LLVMValueRef cg_step(CgCtx *c);
LLVMValueRef cg_seed(CgCtx *c);
/* Runs task(a, i) for i in [0, n) through lnsrt_parallel_for with the step's pool; the task
 * function has the signature void(LnsrtStepArgs *a, i64 i) and must start with cg_fn_begin. */
void cg_parallel_for(CgCtx *c, LLVMValueRef task, LLVMValueRef n);
/* Reports a numeric error for value v: sets a->error_tensor and returns 1 from the step. Call
 * with a condition (i1) that is true on error; the builder continues on the no-error path.
 * Step functions only (a task function records errors in its partials, cg_partial_ptr). */
void cg_check_error(CgCtx *c, LLVMValueRef bad, const IrValue *v);
/* The scale offset (i32) of the LNS data v holds this step: LnsScaleState.k for values in the
 * state blob (fixed at init), else v's k slot in scratch (IrPlan.kslot_off), which v's
 * producer writes before any reader runs. */
LLVMValueRef cg_value_k(CgCtx *c, const IrValue *v);
/* Like cg_check_error for bad input data (a label out of range, an unbound input): returns 2
 * with a->error_tensor naming v. */
void cg_check_input(CgCtx *c, LLVMValueRef bad, const IrValue *v);
/* The learning rate of an optimizer node: a->lr when nonzero and main (the node is one of the
 * model's main optimizer: Madam if there is any, else every update), else dflt (f32). */
LLVMValueRef cg_lr(CgCtx *c, float dflt, int main);
LLVMValueRef cg_kslot_ptr(CgCtx *c, const IrValue *v);
/* The running node's temporary area (IrPlan.temp_off): per-task partials first (CG_PARTIAL
 * bytes per task, at most CG_MAX_TASKS), then f32 buffers from CG_TEMP_DATA on. */
enum { CG_MAX_TASKS = 256, CG_PARTIAL = 16, CG_TEMP_DATA = IR_PLAN_TEMP_EXTRA };
LLVMValueRef cg_temp_ptr(CgCtx *c, int64_t off);
/* Partial of task i: {u32 amax bits (max |x| of the f32 results, >= 0x7f800000 when one is
 * NaN/Inf), u32 saturated, u32 underflowed, u32 spare}. */
LLVMValueRef cg_partial_ptr(CgCtx *c, LLVMValueRef i);
/* Emitting a task function in the middle of another: save, cg_fn_begin, ..., restore. */
typedef struct CgFnSave {
	LLVMValueRef fn, args, state, scratch, io;
	LLVMBasicBlockRef bb;
} CgFnSave;
void cg_fn_save(CgCtx *c, CgFnSave *s);
void cg_fn_restore(CgCtx *c, const CgFnSave *s);
/* Calls the external C function name (declared on first use from the argument types). */
LLVMValueRef cg_call(CgCtx *c, const char *name, LLVMTypeRef ret, LLVMValueRef *args, int n);
/* An LnsFormat passed by value to ir/lns.c (a 5-byte struct: one i64 register on x86-64 and
 * AArch64). */
LLVMValueRef cg_fmt_arg(CgCtx *c, LnsFormat f);

/* ---- cg_ew.c: kernel building blocks (cg_ew.c, cg_move.c, cg_loss.c, cg_update.c) ----
 * A kernel is a task function over `items` items of `cost` elements each, split into at most
 * CG_MAX_TASKS tasks of whole `align`-item blocks, by size alone (never by thread count). It
 * reads operands through CgSrc (f32, LNS decoded, bool as 0/1) and writes f32 results through
 * CgDst (the output, or the temporary area when the output is LNS), which tracks max |x|. */
typedef struct CgTask {
	CgFnSave save;
	LLVMValueRef fn, lo, hi;     /* task function; this task's items [lo, hi) (i64) */
	int64_t per, ntasks;
	LLVMValueRef amax_v, amax_s; /* allocas: max |x| bits, <vw x i32> and <1 x i32> */
} CgTask;
/* Starts the task function `name` (the builder moves into it). */
void cg_task_begin(CgCtx *c, CgTask *t, const char *name, int64_t items, int64_t cost,
		   int64_t align);
/* Ends it (its max |x| into its partial), returns to the step function and runs the tasks. */
void cg_task_end(CgCtx *c, CgTask *t);
/* In the step function after cg_task_end: max |x| bits (i32) over the tasks' partials. */
LLVMValueRef cg_tasks_amax(CgCtx *c, const CgTask *t);
/* A name for a task of node n: "<t|e><node id>.<what>" (train or eval step). */
const char *cg_task_name(CgCtx *c, const IrNode *n, const char *what, char *buf, size_t len);
/* Entry-block alloca of the current function, zero-initialised at the insertion point. */
LLVMValueRef cg_alloca_zero(CgCtx *c, LLVMTypeRef t);

typedef struct CgSrc {
	const IrValue *v;
	LLVMValueRef base, k;
} CgSrc;
void cg_src_open(CgCtx *c, CgSrc *s, const IrValue *v);
/* lanes f32 values from element e (i64) on, as <lanes x float>. */
LLVMValueRef cg_src_load(CgCtx *c, const CgSrc *s, LLVMValueRef e, int lanes);

typedef struct CgDst {
	const IrValue *v;
	LLVMValueRef base;
} CgDst;
void cg_dst_open(CgCtx *c, CgDst *d, const IrValue *v);
void cg_dst_store(CgCtx *c, CgTask *t, const CgDst *d, LLVMValueRef e, LLVMValueRef x);
/* Folds |x| (<n x float>, n a power of two; any n) into t's max |x| accumulators. */
void cg_task_track(CgCtx *c, CgTask *t, LLVMValueRef x);
/* In the step function after the tasks: NaN/Inf check of the results, then the encode of an
 * LNS output (cg_encode_f32 from the temporary area). */
void cg_dst_finish(CgCtx *c, const CgTask *t, const IrValue *v);
/* A kernel written inline in the step function (serial; it may return input errors): the
 * same accumulators without a task function, and cg_dst_finish for it. */
void cg_inline_begin(CgCtx *c, CgTask *t);
void cg_inline_finish(CgCtx *c, const CgTask *t, const IrValue *v);
/* Encodes v (LNS) from its numel f32 values at cg_temp_ptr(temp_off): NaN/Inf check on
 * amax_bits (max |x| bits, i32; NULL: computed here), k = lns_scale_pick, k into v's slot,
 * parallel encode with saturation/underflow counts, lns_scale_record when training. */
void cg_encode_f32(CgCtx *c, const IrValue *v, int64_t temp_off, LLVMValueRef amax_bits);
/* Whether n runs on LNS codes (one-input move or code-exact op between identical formats). */
int cg_on_codes(const IrNode *n);

/* Vector math: constants, <n x i32> 0..n-1, expf (within 2 ulp), tanhf (within 4 ulp). */
LLVMValueRef cg_vf32(CgCtx *c, float f, int lanes);
LLVMValueRef cg_vi32(CgCtx *c, int32_t v, int lanes);
LLVMValueRef cg_iota(CgCtx *c, int lanes);
LLVMValueRef cg_vexp(CgCtx *c, LLVMValueRef x);
LLVMValueRef cg_vtanh(CgCtx *c, LLVMValueRef x);
int cg_lanes(LLVMValueRef v);

/* Per-op kernel emitters, a table indexed by IrOp (cg_table.c). An emitter writes the node's
 * kernel (as task functions run in parallel where worthwhile) and the code in the current step
 * function that runs it. Fused consumers (IrNode.fused) are emitted by their producer's
 * emitter. */
typedef int (*CgEmitFn)(CgCtx *c, const IrNode *n);
extern const CgEmitFn cg_emit_table[IR_OP_COUNT];
int cg_emit_check(IrCtx *ir); /* names every op without an emitter */
/* cg_ew.c */
int cg_emit_binary(CgCtx *c, const IrNode *n); /* Add Sub Mul Div, the *Grad pairs */
int cg_emit_unary(CgCtx *c, const IrNode *n);  /* Neg Relu LeakyRelu Sigmoid Tanh Clip */
int cg_emit_dropout(CgCtx *c, const IrNode *n);
int cg_emit_dropout_grad(CgCtx *c, const IrNode *n);
int cg_emit_mse_grad(CgCtx *c, const IrNode *n);
int cg_emit_quantize(CgCtx *c, const IrNode *n);
int cg_emit_weight_view(CgCtx *c, const IrNode *n);
/* cg_move.c */
int cg_emit_copy(CgCtx *c, const IrNode *n); /* Reshape Flatten Squeeze Unsqueeze Identity */
int cg_emit_transpose(CgCtx *c, const IrNode *n);
int cg_emit_slice(CgCtx *c, const IrNode *n);
int cg_emit_concat(CgCtx *c, const IrNode *n);
int cg_emit_cast(CgCtx *c, const IrNode *n);
int cg_emit_pad(CgCtx *c, const IrNode *n); /* constant mode, any dtype, LNS codes */
/* cg_loss.c */
int cg_emit_softmax(CgCtx *c, const IrNode *n); /* and LogSoftmax */
int cg_emit_softmax_grad(CgCtx *c, const IrNode *n);
int cg_emit_xent(CgCtx *c, const IrNode *n);
int cg_emit_xent_grad(CgCtx *c, const IrNode *n);
int cg_emit_mse(CgCtx *c, const IrNode *n);
int cg_emit_sum_to(CgCtx *c, const IrNode *n);
/* cg_update.c */
int cg_emit_madam(CgCtx *c, const IrNode *n);
int cg_emit_sgd(CgCtx *c, const IrNode *n);
int cg_emit_adam(CgCtx *c, const IrNode *n);
int cg_emit_assign(CgCtx *c, const IrNode *n); /* a running statistic's update */
/* cg_nn.c */
int cg_emit_batch_norm(CgCtx *c, const IrNode *n);
int cg_emit_batch_norm_grad(CgCtx *c, const IrNode *n);
int cg_emit_pool(CgCtx *c, const IrNode *n);      /* MaxPool AveragePool, the global pools */
int cg_emit_pool_grad(CgCtx *c, const IrNode *n); /* MaxPoolGrad AvgPoolGrad */
/* cg_gemm.c */
int cg_emit_gemm(CgCtx *c, const IrNode *n);
int cg_emit_matmul(CgCtx *c, const IrNode *n);
/* Conv, ConvGradX, ConvGradW: implicit GEMMs on the same machinery (cg_conv.c views). */
int cg_emit_conv(CgCtx *c, const IrNode *n);
/* Bytes of kernel workspace a GEMM-flagged node (Gemm, MatMul, the convolutions) needs past
 * the plan's scratch (64-aligned). */
size_t cg_gemm_workspace(const CgCtx *c, const IrNode *n);

/* ---- cg_conv.c: convolutions as implicit GEMMs over gather views ----
 * A view is a GEMM operand read straight from a tensor by index arithmetic: element (o, k) of
 * matrix m (o along the packed panel: a row of A, a column of B; k the reduction) is, with the
 * digits d of o and of k (mixed radix, outermost first) and
 *     f = f0 + sum cf d,   h = h0 + sum ch d,   w = w0 + sum cw d,
 * the source element m * mat + f + (h / qh) * W + (w / qw) if h and w are multiples of qh, qw
 * with 0 <= h / qh < H and 0 <= w / qw < W, else zero (padding; the holes of a transposed
 * strided convolution). A plain strided matrix is a view with one digit per side and H = W = 1.
 */
enum { CG_VIEW_DIGITS = 3, CG_VIEW_RUNS = 6 };
typedef struct CgDigit {
	int64_t radix, cf, ch, cw;
} CgDigit;
typedef struct CgView {
	int nd[2]; /* digits of o (0) and k (1) */
	CgDigit d[2][CG_VIEW_DIGITS];
	int64_t f0, h0, w0, H, W, qh, qw;
} CgView;
/* A convolution node as nb output matrices of M x N over K, stored one after another (NCHW
 * order). A's and B's matrix for output matrix ob are ob % nmat. bias (Conv's B, or NULL):
 * row i of output matrix ob adds bias[(ob % group) * M + i]. */
typedef struct CgConvOpnd {
	const IrValue *v;
	CgView view;
	int64_t mat, nmat; /* matrix m starts at element m * mat */
} CgConvOpnd;
typedef struct CgConvGemm {
	int64_t M, N, K, nb, group;
	CgConvOpnd a, b;
	const IrValue *bias;
} CgConvGemm;
/* The GEMM of a Conv, ConvGradX or ConvGradW node (shapes from its inferred types). Returns
 * -1 if an index does not fit in 31 bits, with a diagnostic naming the node when g is set. */
int cg_conv_gemm(IrGraph *g, const IrNode *n, CgConvGemm *s);
/* Whether v is a plain strided matrix (element (o, k) at o so + k sk). */
int cg_view_plain(const CgView *v, int64_t *so, int64_t *sk);
/* Memory runs a vector of n lanes along direction dir (0: o, 1: k) falls into when the
 * innermost digit of that side steps through contiguous elements (one masked vector load per
 * run); 0 if it does not, or if more than CG_VIEW_RUNS (the vector is then a gather). */
int cg_view_runs(const CgView *v, int dir, int n);
/* The lanes of a vector along dir: positions start .. start + n - 1 (start an i64 value), those
 * at or past extent (-1: none are) reading zero. Emitted once and reused for every position on
 * the other side (cg_view_load). */
typedef struct CgViewLanes {
	const CgView *v;
	int dir, n, nrun;          /* nrun 0: a gather */
	LLVMValueRef valid;        /* <n x i1> lanes before extent, or NULL */
	LLVMValueRef f, h, w;      /* gather: <n x i32> the lanes' parts; runs: w when it steps */
	LLVMValueRef run[CG_VIEW_RUNS];                     /* runs: <n x i1> the run's lanes */
	LLVMValueRef rf[CG_VIEW_RUNS], rh[CG_VIEW_RUNS], rw[CG_VIEW_RUNS]; /* runs: i64 parts of
								 * the run's lane 0 */
} CgViewLanes;
void cg_view_lanes(CgCtx *c, const CgView *v, int dir, LLVMValueRef start, int n,
		   int64_t extent, CgViewLanes *L);
/* The n elements (<n x et>, et the source's element type: f32, i8 or i16 LNS words) at the
 * lanes of L and position pos (i64) on the other side, from the matrix at src; ok (an i1, or
 * NULL) false makes them all zero. */
LLVMValueRef cg_view_load(CgCtx *c, const CgViewLanes *L, LLVMTypeRef et, LLVMValueRef src,
			  LLVMValueRef pos, LLVMValueRef ok);

/* ---- cg_lns.c: LNS numerics in IR, bit-exact with ir/lns.c ----
 * Vectors of words are <n x i32> holding the container values (sign at bit B-1), values
 * <n x float>, for any n (c->vw in vector bodies, 1 in scalar tails: <1 x ...>); k is an i32
 * scalar (the tensor's scale offset this step). Look-up tables are private constants made once
 * per module (CgCtx.lns_tables). */
/* n words from element idx (i64) of a uint8 / uint16 container array; zero-extended. */
LLVMValueRef cg_lns_load(CgCtx *c, LnsFormat f, LLVMValueRef base, LLVMValueRef idx, int n);
void cg_lns_store(CgCtx *c, LnsFormat f, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef w);
/* lns_decode: the sign applied to 0 and inf too, m = 0 gives +0. */
LLVMValueRef cg_lns_decode(CgCtx *c, LnsFormat f, LLVMValueRef k, LLVMValueRef w);
/* lns_encode, for the f's rounding and underflow modes. rnd: <n x i32> random bits
 * (cg_lns_rng_bits of the element indices) or NULL when f needs none (nearest rounding and
 * underflow zero or min). sat/unf (may be NULL) receive <n x i1> flags for telemetry. x must
 * be finite; NaN/Inf give some word (no UB). Stochastic rounding may add basic blocks (a
 * branch for subnormal inputs): the builder is left in the block that continues. */
LLVMValueRef cg_lns_encode(CgCtx *c, LnsFormat f, LLVMValueRef k, LLVMValueRef x,
			   LLVMValueRef rnd, LLVMValueRef *sat, LLVMValueRef *unf);
LLVMValueRef cg_lns_rng_key(CgCtx *c, const IrValue *v); /* lns_rng_key(seed, step, v->id) */
/* lns_rng_key from values: seed (integer, extended to i64), step and id (integers, i32). */
LLVMValueRef cg_lns_rng_key_of(CgCtx *c, LLVMValueRef seed, LLVMValueRef step, LLVMValueRef id);
/* lns_rng_bits(key, idx) per lane: key an i32 scalar, idx <n x i32>. */
LLVMValueRef cg_lns_rng_bits(CgCtx *c, LLVMValueRef key, LLVMValueRef idx);
/* <n x i32> element indices i, i+1, ..., i+n-1 (i: i64, taken mod 2^32 as lns.c does). */
LLVMValueRef cg_lns_lane_idx(CgCtx *c, LLVMValueRef i, int n);
/* Madam (LNS.md 5, lns_madam_update) on n weight words: returns the new words; o gives
 * beta2 and g_bound (compile-time), lr the learning rate (f32 value, may come from the step
 * arguments), t the step (i32 value, 1-based), gw the decoded gradient <n x float>, *v the
 * second moment (the caller loads it and stores the updated *v), key the tensor's RNG key and
 * idx the element indices (<n x i32>) for the stochastic rounding of a non-integer step. */
LLVMValueRef cg_lns_madam(CgCtx *c, LnsFormat fw, const IrAttrOpt *o, LLVMValueRef lr,
			  LLVMValueRef t, LLVMValueRef w, LLVMValueRef gw, LLVMValueRef *v,
			  LLVMValueRef key, LLVMValueRef idx);
/* Weight view words (lns_view_word). */
LLVMValueRef cg_lns_view(CgCtx *c, LnsFormat fu, LLVMValueRef kw, LnsFormat fv, LLVMValueRef kv,
			 LLVMValueRef w);
/* Fast decoding of a B <= 8 format with a run-time k: cg_lns_decode_table emits (at the
 * builder) a loop filling a 2^B-entry f32 table, entry w = lns_decode(f, k, w) for every word
 * w, into tab (NULL: a 64-byte aligned alloca in the entry block) and returns the table;
 * cg_lns_decode_lut then decodes words with one look-up (a register permute when the table
 * fits, else a gather). */
LLVMValueRef cg_lns_decode_table(CgCtx *c, LnsFormat f, LLVMValueRef k, LLVMValueRef tab);
LLVMValueRef cg_lns_decode_lut(CgCtx *c, LnsFormat f, LLVMValueRef tab, LLVMValueRef w);
/* Whether cg_lns_decode_lut of n lanes is a register permute (B <= 6 with AVX-512, B <= 4 with
 * AVX2, n = c->vw): then it is the fastest decode (1-3 instructions). Otherwise it is a gather,
 * slower than cg_lns_decode (lns8g8 on a Zen 4: 16 lanes 0.72 ns/element vs 0.37, 8 lanes 0.82
 * vs 0.50). */
int cg_lns_lut_in_regs(CgCtx *c, LnsFormat f, int n);
/* Running max of |x| as fp32 bit patterns (unsigned max, as lns_encode_tensor's amax; NaN
 * patterns exceed inf's): acc <n x i32> (start at 0), x <n x float>. Reduce gives an f32. */
LLVMValueRef cg_lns_amax_update(CgCtx *c, LLVMValueRef acc, LLVMValueRef x);
LLVMValueRef cg_lns_amax_reduce(CgCtx *c, LLVMValueRef acc);
/* Number of set lanes of an <n x i1> (e.g. sat/unf flags of an encode), as an i32. */
LLVMValueRef cg_lns_flag_count(CgCtx *c, LLVMValueRef flags);

#endif
