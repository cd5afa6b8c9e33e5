/* test_cg_core.c: the codegen core: a vector loop built with cg_ helpers, verified, optimised,
 * run through the JIT and emitted as object, assembly and LLVM IR for x86-64 and AArch64. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/cg.h"
#include "testlib.h"

/* void axpy(float *y, const float *x, float a, i64 n): y[i] += a*x[i], n a multiple of vw. */
static void emit_axpy(CgCtx *c)
{
	LLVMTypeRef params[4] = {c->t_ptr, c->t_ptr, c->t_f32, c->t_i64};
	LLVMTypeRef fty = LLVMFunctionType(c->t_void, params, 4, 0);
	c->fn = LLVMAddFunction(c->mod, "axpy", fty);
	LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->llctx, c->fn, "entry"));
	LLVMValueRef y = LLVMGetParam(c->fn, 0), x = LLVMGetParam(c->fn, 1);
	LLVMValueRef a = cg_splat(c, LLVMGetParam(c->fn, 2), c->vw);
	CgLoop L;
	LLVMValueRef i = cg_loop_begin(c, &L, cg_i64(c, 0), LLVMGetParam(c->fn, 3), c->vw, "i");
	LLVMValueRef off = LLVMBuildMul(c->b, i, cg_i64(c, 4), "");
	LLVMValueRef py = cg_gep(c, y, off), px = cg_gep(c, x, off);
	LLVMValueRef vy = LLVMBuildLoad2(c->b, c->t_vf32, py, "vy");
	LLVMSetAlignment(vy, 4);
	LLVMValueRef vx = LLVMBuildLoad2(c->b, c->t_vf32, px, "vx");
	LLVMSetAlignment(vx, 4);
	LLVMValueRef args[3] = {a, vx, vy};
	LLVMValueRef r = cg_intrinsic(c, "llvm.fma", c->t_vf32, args, 3);
	LLVMSetAlignment(LLVMBuildStore(c->b, r, py), 4);
	cg_loop_end(c, &L);
	LLVMBuildRetVoid(c->b);
}

static void test_jit(void)
{
	IrCtx *ir = ir_ctx_new();
	CgJit *j = cg_jit_new(ir, NULL);
	CHECK_MSG(j != NULL, "%s", ir_diag_text(ir));
	if (!j)
		return;
	CgCtx *c = cg_jit_ctx(j, "axpy");
	CHECK(c && (c->vw == 4 || c->vw == 8 || c->vw == 16));
	int vw = c->vw;
	emit_axpy(c);
	CHECK_MSG(cg_jit_add(j, c) == 0, "%s", ir_diag_text(ir));
	void (*fn)(float *, const float *, float, int64_t) =
		(void (*)(float *, const float *, float, int64_t))cg_jit_lookup(j, "axpy");
	CHECK(fn != NULL);
	if (fn) {
		float x[64], y[64];
		for (int i = 0; i < 64; i++)
			x[i] = (float)i, y[i] = 1.0f;
		fn(y, x, 0.5f, 64);
		int bad = 0;
		for (int i = 0; i < 64; i++)
			bad += y[i] != 1.0f + 0.5f * (float)i;
		CHECK_MSG(bad == 0, "%d wrong elements (vw %d)", bad, vw);
	}
	cg_jit_free(j);
	ir_ctx_free(ir);
}

static void test_emit(const char *triple, const char *cpu, int want_vw)
{
	IrCtx *ir = ir_ctx_new();
	CgTarget t = {.triple = triple, .cpu = cpu};
	CgCtx *c = cg_ctx_new(ir, &t, "axpy", NULL);
	CHECK_MSG(c != NULL, "%s", ir_diag_text(ir));
	if (!c)
		return;
	CHECK_MSG(c->vw == want_vw, "%s %s: vw %d, want %d", triple, cpu, c->vw, want_vw);
	emit_axpy(c);
	CHECK(cg_optimize(c) == 0);
	char dir[] = "/tmp/lnsc_cg_XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[256];
	CgEmitKind kinds[3] = {CG_EMIT_OBJ, CG_EMIT_ASM, CG_EMIT_LLVM};
	for (int k = 0; k < 3; k++) {
		snprintf(path, sizeof path, "%s/out.%d", dir, k);
		CHECK_MSG(cg_emit_file(c, kinds[k], path) == 0, "%s", ir_diag_text(ir));
		CHECK(access(path, R_OK) == 0);
		if (kinds[k] == CG_EMIT_ASM) {
			FILE *f = fopen(path, "r");
			char buf[1 << 16];
			size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
			buf[n] = 0;
			if (f)
				fclose(f);
			const char *want = want_vw == 16 ? "zmm" : want_vw == 8 ? "ymm" : NULL;
			if (!strncmp(triple, "aarch64", 7))
				want = "fmla";
			CHECK_MSG(!want || strstr(buf, want), "%s %s: no %s in the assembly", triple, cpu,
				  want);
		}
		unlink(path);
	}
	rmdir(dir);
	cg_ctx_free(c);
	ir_ctx_free(ir);
}

static void test_bad_target(void)
{
	IrCtx *ir = ir_ctx_new();
	CgTarget t = {.triple = "sparc-unknown-none"};
	CgCtx *c = cg_ctx_new(ir, &t, "x", NULL);
	CHECK(c == NULL);
	CHECK(strstr(ir_diag_text(ir), "sparc") != NULL);
	ir_ctx_free(ir);
}

int main(void)
{
	test_jit();
	test_emit("x86_64-pc-linux-gnu", "x86-64-v3", 8);
	test_emit("x86_64-pc-linux-gnu", "x86-64-v4", 16);
	test_emit("x86_64-pc-linux-gnu", "x86-64", 4);
	test_emit("aarch64-linux-gnu", "generic", 4);
	test_bad_target();
	return t_finish("test_cg_core");
}
