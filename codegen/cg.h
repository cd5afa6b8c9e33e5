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
 * cg_ew.c (elementwise, data movement, losses, softmax), cg_gemm.c (packed GEMM with LNS
 * decode-on-pack, FMA microkernels, fused epilogues), cg_update.c (Madam, SGD, Adam),
 * cg_entry.c (entry points, the model descriptor).
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
	/* the function being emitted */
	LLVMValueRef fn;
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
/* Declares (once) an external function in the module. */
LLVMValueRef cg_extern_fn(CgCtx *c, const char *name, LLVMTypeRef fty);

#endif
