/* cg_loops.c: constants, pointer arithmetic, counted loops, intrinsics: the vocabulary kernels
 * are written in, so that a kernel reads like the math it computes. */
#include <string.h>

#include "codegen/cg.h"

LLVMValueRef cg_i32(CgCtx *c, int64_t v)
{
	return LLVMConstInt(c->t_i32, (unsigned long long)v, 1);
}

LLVMValueRef cg_i64(CgCtx *c, int64_t v)
{
	return LLVMConstInt(c->t_i64, (unsigned long long)v, 1);
}

LLVMValueRef cg_f32(CgCtx *c, float v)
{
	return LLVMConstReal(c->t_f32, v);
}

LLVMValueRef cg_splat(CgCtx *c, LLVMValueRef scalar, int lanes)
{
	LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(scalar), (unsigned)lanes);
	LLVMValueRef v = LLVMGetPoison(vt);
	v = LLVMBuildInsertElement(c->b, v, scalar, cg_i32(c, 0), "");
	LLVMValueRef zero = LLVMConstNull(LLVMVectorType(c->t_i32, (unsigned)lanes));
	return LLVMBuildShuffleVector(c->b, v, LLVMGetPoison(vt), zero, "splat");
}

LLVMValueRef cg_gep(CgCtx *c, LLVMValueRef base, LLVMValueRef byte_off)
{
	return LLVMBuildGEP2(c->b, c->t_i8, base, &byte_off, 1, "p");
}

LLVMValueRef cg_gep_c(CgCtx *c, LLVMValueRef base, int64_t byte_off)
{
	return byte_off ? cg_gep(c, base, cg_i64(c, byte_off)) : base;
}

LLVMValueRef cg_loop_begin(CgCtx *c, CgLoop *L, LLVMValueRef lo, LLVMValueRef hi, int64_t step,
			   const char *name)
{
	LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
	L->head = LLVMAppendBasicBlockInContext(c->llctx, c->fn, name);
	L->body = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "body");
	L->exit = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "exit");
	L->step = LLVMConstInt(LLVMTypeOf(lo), (unsigned long long)step, 1);
	L->hi = hi;
	LLVMBuildBr(c->b, L->head);
	LLVMPositionBuilderAtEnd(c->b, L->head);
	L->iv = LLVMBuildPhi(c->b, LLVMTypeOf(lo), name);
	LLVMAddIncoming(L->iv, &lo, &pre, 1);
	LLVMValueRef cond = LLVMBuildICmp(c->b, LLVMIntSLT, L->iv, hi, "");
	LLVMBuildCondBr(c->b, cond, L->body, L->exit);
	LLVMPositionBuilderAtEnd(c->b, L->body);
	return L->iv;
}

void cg_loop_end(CgCtx *c, CgLoop *L)
{
	LLVMValueRef next = LLVMBuildAdd(c->b, L->iv, L->step, "next");
	LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
	LLVMAddIncoming(L->iv, &next, &latch, 1);
	LLVMBuildBr(c->b, L->head);
	LLVMPositionBuilderAtEnd(c->b, L->exit);
}

LLVMValueRef cg_intrinsic(CgCtx *c, const char *name, LLVMTypeRef ty, LLVMValueRef *args,
			  int nargs)
{
	unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
	LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, &ty, 1);
	LLVMTypeRef fty = LLVMIntrinsicGetType(c->llctx, id, &ty, 1);
	return LLVMBuildCall2(c->b, fty, fn, args, (unsigned)nargs, "");
}

LLVMValueRef cg_intrinsic_n(CgCtx *c, const char *name, LLVMTypeRef *tys, int ntys,
			     LLVMValueRef *args, int nargs)
{
	unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
	LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, tys, (size_t)ntys);
	LLVMTypeRef fty = LLVMIntrinsicGetType(c->llctx, id, tys, (size_t)ntys);
	return LLVMBuildCall2(c->b, fty, fn, args, (unsigned)nargs, "");
}

LLVMValueRef cg_vload(CgCtx *c, LLVMTypeRef vt, LLVMValueRef p, LLVMValueRef mask, unsigned align)
{
	if (!mask) {
		LLVMValueRef v = LLVMBuildLoad2(c->b, vt, p, "");
		LLVMSetAlignment(v, align);
		return v;
	}
	LLVMTypeRef tys[2] = {vt, c->t_ptr};
	LLVMValueRef args[4] = {p, cg_i32(c, (int64_t)align), mask, LLVMConstNull(vt)};
	return cg_intrinsic_n(c, "llvm.masked.load", tys, 2, args, 4);
}

void cg_vstore(CgCtx *c, LLVMValueRef v, LLVMValueRef p, LLVMValueRef mask, unsigned align)
{
	if (!mask) {
		LLVMSetAlignment(LLVMBuildStore(c->b, v, p), align);
		return;
	}
	LLVMTypeRef tys[2] = {LLVMTypeOf(v), c->t_ptr};
	LLVMValueRef args[4] = {v, p, cg_i32(c, (int64_t)align), mask};
	cg_intrinsic_n(c, "llvm.masked.store", tys, 2, args, 4);
}

LLVMValueRef cg_extern_fn(CgCtx *c, const char *name, LLVMTypeRef fty)
{
	LLVMValueRef f = LLVMGetNamedFunction(c->mod, name);
	return f ? f : LLVMAddFunction(c->mod, name, fty);
}
