/* cg_ctx.c: the codegen context: target machine, module, verification, optimisation, emission.
 *
 * The vector width is a codegen parameter taken from the target (never from #ifdef in the
 * compiler): 16 f32 lanes when the CPU has AVX-512F, 8 with AVX2, 4 otherwise (SSE, NEON).
 * For the host CPU the features come from LLVM's host detection; for a named CPU from the
 * table below, which lists the x86 CPU names whose feature sets we know.
 *
 * Optimisation: `lnsc compile` runs default<O3>. The JIT, which sits inside every Lua search
 * loop, runs a shorter function pipeline (CG_JIT_PIPELINE): codegen emits its kernels already
 * vectorised for the target's width, so what the step needs from LLVM is promotion of the
 * allocas, one round each of the scalar clean-ups (CSE, InstCombine, CFG simplification,
 * GVN, DSE) and LICM, rotation, IndVars and unrolling for its loops. On examples/mlp it halves
 * the compile time and leaves the step time as it was (docs/decisions.md has the figures).
 */
#include <llvm-c/Analysis.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"

void cg_llvm_init(void)
{
	/* LLVM's registries are process-wide and idempotent; these are safe to call again. */
	LLVMInitializeX86TargetInfo();
	LLVMInitializeX86Target();
	LLVMInitializeX86TargetMC();
	LLVMInitializeX86AsmPrinter();
	LLVMInitializeX86AsmParser();
	LLVMInitializeAArch64TargetInfo();
	LLVMInitializeAArch64Target();
	LLVMInitializeAArch64TargetMC();
	LLVMInitializeAArch64AsmPrinter();
	LLVMInitializeAArch64AsmParser();
}

static void diag_handler(LLVMDiagnosticInfoRef di, void *arg)
{
	CgCtx *c = arg;
	if (LLVMGetDiagInfoSeverity(di) != LLVMDSError)
		return;
	char *msg = LLVMGetDiagInfoDescription(di);
	ir_error(c->ir, IR_ERR_RUNTIME, "LLVM: %s", msg);
	LLVMDisposeMessage(msg);
}

/* f32 lanes for an x86 CPU name, 0 if unknown. */
static int x86_cpu_lanes(const char *cpu)
{
	static const char *const v4[] = {"x86-64-v4", "skylake-avx512", "cascadelake", "cooperlake",
					 "cannonlake", "icelake-client", "icelake-server", "tigerlake",
					 "sapphirerapids", "graniterapids", "znver4", "znver5",
					 "rocketlake", "emeraldrapids", NULL};
	static const char *const v3[] = {"x86-64-v3", "haswell", "broadwell", "skylake", "alderlake",
					 "raptorlake", "meteorlake", "znver1", "znver2", "znver3",
					 "arrowlake", "lunarlake", "gracemont", NULL};
	for (int i = 0; v4[i]; i++)
		if (!strcmp(cpu, v4[i]))
			return 16;
	for (int i = 0; v3[i]; i++)
		if (!strcmp(cpu, v3[i]))
			return 8;
	return 0;
}

static int lanes_for(CgCtx *c, int host_features)
{
	if (c->is_aarch64)
		return 4;
	const char *f = c->features ? c->features : "";
	if (host_features || *f) {
		if (strstr(f, "+avx512f"))
			return 16;
		if (strstr(f, "+avx2"))
			return 8;
		if (*f)
			return 4;
	}
	int l = x86_cpu_lanes(c->cpu);
	return l ? l : 4;
}

static void cache_types(CgCtx *c)
{
	LLVMContextRef x = c->llctx;
	c->t_void = LLVMVoidTypeInContext(x);
	c->t_i1 = LLVMInt1TypeInContext(x);
	c->t_i8 = LLVMInt8TypeInContext(x);
	c->t_i16 = LLVMInt16TypeInContext(x);
	c->t_i32 = LLVMInt32TypeInContext(x);
	c->t_i64 = LLVMInt64TypeInContext(x);
	c->t_f32 = LLVMFloatTypeInContext(x);
	c->t_f64 = LLVMDoubleTypeInContext(x);
	c->t_ptr = LLVMPointerTypeInContext(x, 0);
	c->t_vf32 = LLVMVectorType(c->t_f32, (unsigned)c->vw);
	c->t_vi32 = LLVMVectorType(c->t_i32, (unsigned)c->vw);
}

/* Our own copy of an LLVM-allocated message. */
static char *own(char *llvm_msg)
{
	char *s = strdup(llvm_msg ? llvm_msg : "");
	LLVMDisposeMessage(llvm_msg);
	return s;
}

static int make_target_machine(CgCtx *c, const CgTarget *t)
{
	int host = !t || !t->triple;
	c->triple = host ? own(LLVMGetDefaultTargetTriple()) : strdup(t->triple);
	int host_cpu = host && (!t || !t->cpu || !strcmp(t->cpu, "native"));
	if (host_cpu) {
		c->cpu = own(LLVMGetHostCPUName());
		c->features = (t && t->features) ? strdup(t->features) : own(LLVMGetHostCPUFeatures());
	} else {
		c->cpu = strdup(t && t->cpu ? t->cpu : "generic");
		c->features = strdup(t && t->features ? t->features : "");
	}
	char *err = NULL;
	LLVMTargetRef target;
	if (LLVMGetTargetFromTriple(c->triple, &target, &err)) {
		ir_error(c->ir, IR_ERR_INPUT, "target '%s': %s", c->triple, err);
		LLVMDisposeMessage(err);
		return -1;
	}
	c->is_x86 = !strncmp(c->triple, "x86_64", 6);
	c->is_aarch64 = !strncmp(c->triple, "aarch64", 7) || !strncmp(c->triple, "arm64", 5);
	int opt = t && t->opt_level ? t->opt_level : 3;
	LLVMCodeGenOptLevel lvl = opt >= 3 ? LLVMCodeGenLevelAggressive
			      : opt == 2 ? LLVMCodeGenLevelDefault : LLVMCodeGenLevelLess;
	c->tm = LLVMCreateTargetMachine(target, c->triple, c->cpu, c->features, lvl, LLVMRelocPIC,
					LLVMCodeModelDefault);
	if (!c->tm) {
		ir_error(c->ir, IR_ERR_INPUT, "cannot create a target machine for %s (cpu %s)",
			 c->triple, c->cpu);
		return -1;
	}
	c->td = LLVMCreateTargetDataLayout(c->tm);
	c->vw = lanes_for(c, host_cpu);
	return 0;
}

CgCtx *cg_ctx_new(IrCtx *ir, const CgTarget *t, const char *name, LLVMContextRef llctx)
{
	cg_llvm_init();
	CgCtx *c = calloc(1, sizeof *c);
	if (!c)
		abort();
	c->ir = ir;
	if (make_target_machine(c, t)) {
		cg_ctx_free(c);
		return NULL;
	}
	c->own_llctx = llctx == NULL;
	c->llctx = llctx ? llctx : LLVMContextCreate();
	LLVMContextSetDiagnosticHandler(c->llctx, diag_handler, c);
	c->mod = LLVMModuleCreateWithNameInContext(name, c->llctx);
	LLVMSetTarget(c->mod, c->triple);
	LLVMSetModuleDataLayout(c->mod, c->td);
	c->b = LLVMCreateBuilderInContext(c->llctx);
	cache_types(c);
	return c;
}

void cg_ctx_free(CgCtx *c)
{
	if (!c)
		return;
	if (c->b)
		LLVMDisposeBuilder(c->b);
	if (c->mod)
		LLVMDisposeModule(c->mod);
	if (c->td)
		LLVMDisposeTargetData(c->td);
	if (c->tm)
		LLVMDisposeTargetMachine(c->tm);
	if (c->llctx && c->own_llctx)
		LLVMContextDispose(c->llctx);
	free(c->triple);
	free(c->cpu);
	free(c->features);
	free(c);
}

LLVMModuleRef cg_take_module(CgCtx *c)
{
	LLVMModuleRef m = c->mod;
	c->mod = NULL;
	return m;
}

static void dump(CgCtx *c, const char *when)
{
	const char *d = getenv("LNSC_LLVM_DUMP");
	if (!d || (strcmp(d, when) && strcmp(d, "both")))
		return;
	char *s = LLVMPrintModuleToString(c->mod);
	fprintf(stderr, "=== LLVM IR %s optimisation ===\n%s", when, s);
	LLVMDisposeMessage(s);
}

/* InstCombine runs to a fixpoint only if told not to check that it got there in a custom
 * pipeline (the default pipelines do the same): LLVM aborts otherwise. */
#define CG_IC "instcombine<no-verify-fixpoint>"
static const char CG_JIT_PIPELINE[] =
	"function(sroa,early-cse<memssa>," CG_IC ",simplifycfg,loop(loop-rotate),"
	"loop-mssa(licm),indvars,loop-unroll<O2>,gvn," CG_IC ",simplifycfg,dse)";

static int run_pipeline(CgCtx *c, const char *pipeline)
{
	char *err = NULL;
	if (LLVMVerifyModule(c->mod, LLVMReturnStatusAction, &err)) {
		ir_error(c->ir, IR_ERR_RUNTIME, "codegen produced an invalid module (a bug): %s", err);
		LLVMDisposeMessage(err);
		return -1;
	}
	LLVMDisposeMessage(err);
	dump(c, "before");
	LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
	LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
	LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
	LLVMPassBuilderOptionsSetLoopUnrolling(po, 1);
	LLVMErrorRef e = LLVMRunPasses(c->mod, pipeline, c->tm, po);
	LLVMDisposePassBuilderOptions(po);
	if (e) {
		char *m = LLVMGetErrorMessage(e);
		ir_error(c->ir, IR_ERR_RUNTIME, "LLVM optimisation failed: %s", m);
		LLVMDisposeErrorMessage(m);
		return -1;
	}
	dump(c, "after");
	return 0;
}

int cg_optimize(CgCtx *c)
{
	return run_pipeline(c, "default<O3>");
}

int cg_optimize_jit(CgCtx *c)
{
	const char *p = getenv("LNSC_JIT_PIPELINE");
	return run_pipeline(c, p && *p ? p : CG_JIT_PIPELINE);
}

int cg_emit_file(CgCtx *c, CgEmitKind kind, const char *path)
{
	char *err = NULL;
	if (kind == CG_EMIT_LLVM) {
		if (LLVMPrintModuleToFile(c->mod, path, &err)) {
			ir_error(c->ir, IR_ERR_RUNTIME, "%s: %s", path, err);
			LLVMDisposeMessage(err);
			return -1;
		}
		return 0;
	}
	/* LLVMTargetMachineEmitToFile takes a non-const char* path */
	char *p = strdup(path);
	LLVMBool bad = LLVMTargetMachineEmitToFile(c->tm, c->mod, p,
						   kind == CG_EMIT_ASM ? LLVMAssemblyFile : LLVMObjectFile,
						   &err);
	free(p);
	if (bad) {
		ir_error(c->ir, IR_ERR_RUNTIME, "%s: %s", path, err ? err : "emission failed");
		LLVMDisposeMessage(err);
		return -1;
	}
	return 0;
}
