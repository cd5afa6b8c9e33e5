/* cg_jit.c: in-process compilation with ORC LLJIT.
 *
 * The JIT gets a target machine builder made from the same CgTarget as the module, so the code
 * it runs is the code `lnsc compile` would emit for the host. Modules are built in the LLJIT's
 * thread-safe context. The runtime functions generated code calls (thread pool, LNS init
 * helpers) are defined as absolute symbols from this process, so no symbol export is needed.
 */
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"
#include "codegen/cg_rtsyms.h"

struct CgJit {
	IrCtx *ir;
	CgTarget target;
	LLVMOrcThreadSafeContextRef tsc;
	LLVMOrcLLJITRef jit;
};

static int jit_error(IrCtx *ir, const char *what, LLVMErrorRef e)
{
	char *m = LLVMGetErrorMessage(e);
	ir_error(ir, IR_ERR_RUNTIME, "JIT: %s: %s", what, m);
	LLVMDisposeErrorMessage(m);
	return -1;
}

static int define_runtime(CgJit *j)
{
	int n = 0;
	while (cg_rt_symbols[n].name)
		n++;
	LLVMOrcCSymbolMapPair *pairs = calloc((size_t)n, sizeof *pairs);
	if (!pairs)
		abort();
	for (int i = 0; i < n; i++) {
		pairs[i].Name = LLVMOrcLLJITMangleAndIntern(j->jit, cg_rt_symbols[i].name);
		pairs[i].Sym.Address = (LLVMOrcExecutorAddress)(uintptr_t)cg_rt_symbols[i].addr;
		pairs[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported |
						  LLVMJITSymbolGenericFlagsCallable;
	}
	LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(pairs, (size_t)n);
	free(pairs);
	LLVMErrorRef e = LLVMOrcJITDylibDefine(LLVMOrcLLJITGetMainJITDylib(j->jit), mu);
	return e ? jit_error(j->ir, "defining runtime symbols", e) : 0;
}

CgJit *cg_jit_new(IrCtx *ir, const CgTarget *t)
{
	cg_llvm_init();
	CgJit *j = calloc(1, sizeof *j);
	if (!j)
		abort();
	j->ir = ir;
	if (t)
		j->target = *t;
	j->target.triple = NULL; /* the JIT runs on the host */
	/* A target machine for the JIT, configured like the modules' */
	CgCtx *probe = cg_ctx_new(ir, &j->target, "probe", NULL);
	if (!probe) {
		free(j);
		return NULL;
	}
	LLVMTargetMachineRef tm = probe->tm;
	probe->tm = NULL;
	cg_ctx_free(probe);
	LLVMOrcLLJITBuilderRef bld = LLVMOrcCreateLLJITBuilder();
	LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
		bld, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
	LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->jit, bld);
	if (e) {
		jit_error(ir, "creating LLJIT", e);
		free(j);
		return NULL;
	}
	j->tsc = LLVMOrcCreateNewThreadSafeContext();
	/* libc (memcpy, expf, ...) from the process; our runtime as absolute symbols */
	LLVMOrcDefinitionGeneratorRef gen;
	e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
		&gen, LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL, NULL);
	if (e) {
		jit_error(ir, "process symbols", e);
		cg_jit_free(j);
		return NULL;
	}
	LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(j->jit), gen);
	if (define_runtime(j)) {
		cg_jit_free(j);
		return NULL;
	}
	return j;
}

CgCtx *cg_jit_ctx(CgJit *j, const char *name)
{
	return cg_ctx_new(j->ir, &j->target, name, LLVMOrcThreadSafeContextGetContext(j->tsc));
}

int cg_jit_add(CgJit *j, CgCtx *c)
{
	if (cg_optimize_jit(c)) {
		cg_ctx_free(c);
		return -1;
	}
	LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(cg_take_module(c), j->tsc);
	cg_ctx_free(c);
	LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModule(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), tsm);
	if (e) {
		LLVMOrcDisposeThreadSafeModule(tsm);
		return jit_error(j->ir, "adding the module", e);
	}
	return 0;
}

void *cg_jit_lookup(CgJit *j, const char *symbol)
{
	LLVMOrcExecutorAddress addr = 0;
	LLVMErrorRef e = LLVMOrcLLJITLookup(j->jit, &addr, symbol);
	if (e) {
		jit_error(j->ir, symbol, e);
		return NULL;
	}
	return (void *)(uintptr_t)addr;
}

void cg_jit_free(CgJit *j)
{
	if (!j)
		return;
	if (j->jit) {
		LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit);
		if (e)
			LLVMConsumeError(e);
	}
	if (j->tsc)
		LLVMOrcDisposeThreadSafeContext(j->tsc);
	free(j);
}
