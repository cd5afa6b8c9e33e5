/* cg_ew.c: elementwise kernels (arithmetic with broadcasting, activations and their gradients,
 * Clip, Dropout, Quantize, WeightView) and the building blocks every kernel is made of.
 *
 * Building blocks: a task function covers a range of items (elements, rows or groups), the
 * split fixed by the tensor's size; a source reads <n x float> from f32, LNS (cg_lns decode)
 * or bool storage; a destination writes f32 to the output, or to the node's temporary area
 * when the output is LNS, and keeps a running max of |x| as integer bits, which doubles as the
 * NaN/Inf check (|x| bits >= 0x7f800000). After the tasks the step function reduces the
 * per-task partials, reports a non-finite result, and encodes an LNS output in a second pass
 * with the k that lns_scale_pick gives for this step's amax. Elementwise kernels collapse the
 * broadcast shape to rows with unit or zero inner strides, run <vw x float> vectors with a
 * one-lane tail, and mirror the interpreter's fp32 formulas operation for operation; exp and
 * tanh are vector polynomials (a few ulp from libm's). Relu and Neg between identical LNS
 * formats run on the codes, keeping the input's k.
 */
#include <string.h>

#include "codegen/cg.h"

enum { PAR_MIN = 32768, TASK_ELEMS = 16384 };

static int64_t div_up(int64_t a, int64_t b)
{
	return (a + b - 1) / b;
}

/* ---- small vector helpers ---- */

int cg_lanes(LLVMValueRef v)
{
	LLVMTypeRef t = LLVMTypeOf(v);
	return LLVMGetTypeKind(t) == LLVMVectorTypeKind ? (int)LLVMGetVectorSize(t) : 1;
}

static LLVMValueRef vsplat_const(LLVMValueRef k, int lanes)
{
	LLVMValueRef e[64];
	for (int i = 0; i < lanes; i++)
		e[i] = k;
	return LLVMConstVector(e, (unsigned)lanes);
}

LLVMValueRef cg_vf32(CgCtx *c, float f, int lanes)
{
	return vsplat_const(cg_f32(c, f), lanes);
}

LLVMValueRef cg_vi32(CgCtx *c, int32_t v, int lanes)
{
	return vsplat_const(cg_i32(c, v), lanes);
}

LLVMValueRef cg_iota(CgCtx *c, int lanes)
{
	LLVMValueRef e[64];
	for (int i = 0; i < lanes; i++)
		e[i] = cg_i32(c, i);
	return LLVMConstVector(e, (unsigned)lanes);
}

static LLVMTypeRef vf(CgCtx *c, int lanes)
{
	return LLVMVectorType(c->t_f32, (unsigned)lanes);
}

static LLVMTypeRef vi(CgCtx *c, int lanes)
{
	return LLVMVectorType(c->t_i32, (unsigned)lanes);
}

static LLVMValueRef call1(CgCtx *c, const char *name, LLVMValueRef x)
{
	return cg_intrinsic(c, name, LLVMTypeOf(x), &x, 1);
}

static LLVMValueRef call2(CgCtx *c, const char *name, LLVMValueRef x, LLVMValueRef y)
{
	LLVMValueRef a[2] = {x, y};
	return cg_intrinsic(c, name, LLVMTypeOf(x), a, 2);
}

static LLVMValueRef fmuladd(CgCtx *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef d)
{
	LLVMValueRef x[3] = {a, b, d};
	return cg_intrinsic(c, "llvm.fmuladd", LLVMTypeOf(a), x, 3);
}

/* Lane 0 of a <1 x T> (or any) vector, splat to lanes. */
static LLVMValueRef splat_lane0(CgCtx *c, LLVMValueRef v, int lanes)
{
	LLVMValueRef s = LLVMBuildExtractElement(c->b, v, cg_i32(c, 0), "");
	return cg_splat(c, s, lanes);
}

/* expf: clamp, n = round(x log2 e) (by the 1.5 * 2^23 trick, exact for these n), Cody-Waite
 * reduction r = x - n ln 2, the Cephes degree-7 polynomial, times 2^n as two exact powers so
 * that results in the subnormal range round once. */
LLVMValueRef cg_vexp(CgCtx *c, LLVMValueRef x)
{
	int L = cg_lanes(x);
	LLVMBuilderRef b = c->b;
	x = call2(c, "llvm.maxnum", x, cg_vf32(c, -104.0f, L));
	x = call2(c, "llvm.minnum", x, cg_vf32(c, 89.0f, L));
	LLVMValueRef magic = cg_vf32(c, 12582912.0f, L);
	LLVMValueRef t = LLVMBuildFMul(b, x, cg_vf32(c, 1.44269504088896341f, L), "");
	LLVMValueRef nf = LLVMBuildFSub(b, LLVMBuildFAdd(b, t, magic, ""), magic, "");
	LLVMValueRef r =
	    LLVMBuildFSub(b, x, LLVMBuildFMul(b, nf, cg_vf32(c, 0.693359375f, L), ""), "");
	r = LLVMBuildFSub(b, r, LLVMBuildFMul(b, nf, cg_vf32(c, -2.12194440e-4f, L), ""), "");
	static const float P[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
	                           4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
	LLVMValueRef p = cg_vf32(c, P[0], L);
	for (int i = 1; i < 6; i++)
		p = fmuladd(c, p, r, cg_vf32(c, P[i], L));
	p = fmuladd(c, p, LLVMBuildFMul(b, r, r, ""), r);
	p = LLVMBuildFAdd(b, p, cg_vf32(c, 1.0f, L), "");
	LLVMValueRef n = LLVMBuildFPToSI(b, nf, vi(c, L), "");
	LLVMValueRef n1 = LLVMBuildAShr(b, n, cg_vi32(c, 1, L), "");
	LLVMValueRef n2 = LLVMBuildSub(b, n, n1, "");
	LLVMValueRef s1 =
	    LLVMBuildShl(b, LLVMBuildAdd(b, n1, cg_vi32(c, 127, L), ""), cg_vi32(c, 23, L), "");
	LLVMValueRef s2 =
	    LLVMBuildShl(b, LLVMBuildAdd(b, n2, cg_vi32(c, 127, L), ""), cg_vi32(c, 23, L), "");
	p = LLVMBuildFMul(b, p, LLVMBuildBitCast(b, s1, vf(c, L), ""), "");
	return LLVMBuildFMul(b, p, LLVMBuildBitCast(b, s2, vf(c, L), ""), "");
}

/* tanhf: the Taylor series to x^13 below |x| = 0.4, else sign(x) (1 - 2 / (e^{2|x|} + 1)). */
LLVMValueRef cg_vtanh(CgCtx *c, LLVMValueRef x)
{
	int L = cg_lanes(x);
	LLVMBuilderRef b = c->b;
	static const float T[6] = {21844.0f / 6081075.0f, -1382.0f / 155925.0f, 62.0f / 2835.0f,
	                           -17.0f / 315.0f,       2.0f / 15.0f,         -1.0f / 3.0f};
	LLVMValueRef z = LLVMBuildFMul(b, x, x, "");
	LLVMValueRef q = cg_vf32(c, T[0], L);
	for (int i = 1; i < 6; i++)
		q = fmuladd(c, q, z, cg_vf32(c, T[i], L));
	LLVMValueRef small = fmuladd(c, LLVMBuildFMul(b, x, z, ""), q, x);
	LLVMValueRef a = call1(c, "llvm.fabs", x);
	LLVMValueRef e = cg_vexp(c, LLVMBuildFAdd(b, a, a, ""));
	LLVMValueRef big = LLVMBuildFSub(
	    b, cg_vf32(c, 1.0f, L),
	    LLVMBuildFDiv(b, cg_vf32(c, 2.0f, L), LLVMBuildFAdd(b, e, cg_vf32(c, 1.0f, L), ""), ""),
	    "");
	big = call2(c, "llvm.copysign", big, x);
	LLVMValueRef is_small = LLVMBuildFCmp(b, LLVMRealOLT, a, cg_vf32(c, 0.4f, L), "");
	return LLVMBuildSelect(b, is_small, small, big, "");
}

/* ---- tasks ---- */

static LLVMTypeRef task_type(CgCtx *c)
{
	LLVMTypeRef p[2] = {c->t_ptr, c->t_i64};
	return LLVMFunctionType(c->t_void, p, 2, 0);
}

const char *cg_task_name(CgCtx *c, const IrNode *n, const char *what, char *buf, size_t len)
{
	snprintf(buf, len, "%c%d.%s", c->mode == IR_MODE_EVAL ? 'e' : 't', n ? n->id : 0, what);
	return buf;
}

LLVMValueRef cg_alloca_zero(CgCtx *c, LLVMTypeRef t)
{
	LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(c->fn);
	LLVMBuilderRef eb = LLVMCreateBuilderInContext(c->llctx);
	LLVMValueRef first = LLVMGetFirstInstruction(entry);
	if (first)
		LLVMPositionBuilderBefore(eb, first);
	else
		LLVMPositionBuilderAtEnd(eb, entry);
	LLVMValueRef a = LLVMBuildAlloca(eb, t, "acc");
	LLVMDisposeBuilder(eb);
	LLVMBuildStore(c->b, LLVMConstNull(t), a);
	return a;
}

void cg_task_begin(CgCtx *c, CgTask *t, const char *name, int64_t items, int64_t cost,
                   int64_t align)
{
	int64_t per = items > 0 ? items : 1;
	cost = cost > 0 ? cost : 1;
	if (items * cost > PAR_MIN) {
		per = TASK_ELEMS / cost;
		per = per < 1 ? 1 : per;
		if (div_up(items, per) > CG_MAX_TASKS)
			per = div_up(items, CG_MAX_TASKS);
		per = div_up(per, align) * align;
	}
	t->per = per;
	t->ntasks = items > 0 ? div_up(items, per) : 1;
	cg_fn_save(c, &t->save);
	t->fn = cg_fn_begin(c, name, task_type(c));
	LLVMSetLinkage(t->fn, LLVMInternalLinkage);
	LLVMValueRef i = LLVMGetParam(t->fn, 1);
	t->lo = LLVMBuildMul(c->b, i, cg_i64(c, per), "lo");
	LLVMValueRef hi = LLVMBuildAdd(c->b, t->lo, cg_i64(c, per), "");
	LLVMValueRef over = LLVMBuildICmp(c->b, LLVMIntSGT, hi, cg_i64(c, items), "");
	t->hi = LLVMBuildSelect(c->b, over, cg_i64(c, items), hi, "hi");
	t->amax_v = cg_alloca_zero(c, c->t_vi32);
	t->amax_s = cg_alloca_zero(c, vi(c, 1));
}

static LLVMValueRef reduce_umax(CgCtx *c, LLVMValueRef acc, int lanes)
{
	LLVMValueRef v = LLVMBuildLoad2(c->b, vi(c, lanes), acc, "");
	return call1(c, "llvm.vector.reduce.umax", v);
}

static LLVMValueRef umax(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
	return call2(c, "llvm.umax", a, b);
}

void cg_task_end(CgCtx *c, CgTask *t)
{
	LLVMValueRef m = umax(c, reduce_umax(c, t->amax_v, c->vw), reduce_umax(c, t->amax_s, 1));
	LLVMBuildStore(c->b, m, cg_partial_ptr(c, LLVMGetParam(t->fn, 1)));
	LLVMBuildRetVoid(c->b);
	cg_fn_restore(c, &t->save);
	cg_parallel_for(c, t->fn, cg_i64(c, t->ntasks));
}

/* Reduces the partials' field (0 amax, 1 sat, 2 unf) over the tasks: umax or a 64-bit sum. */
static LLVMValueRef reduce_partials(CgCtx *c, int64_t ntasks, int field)
{
	LLVMValueRef acc = cg_alloca_zero(c, field ? c->t_i64 : c->t_i32);
	CgLoop L;
	LLVMValueRef i = cg_loop_begin(c, &L, cg_i64(c, 0), cg_i64(c, ntasks), 1, "part");
	LLVMValueRef p = cg_gep_c(c, cg_partial_ptr(c, i), 4 * field);
	LLVMValueRef x = LLVMBuildLoad2(c->b, c->t_i32, p, "");
	LLVMValueRef a = LLVMBuildLoad2(c->b, field ? c->t_i64 : c->t_i32, acc, "");
	a = field ? LLVMBuildAdd(c->b, a, LLVMBuildZExt(c->b, x, c->t_i64, ""), "") : umax(c, a, x);
	LLVMBuildStore(c->b, a, acc);
	cg_loop_end(c, &L);
	return LLVMBuildLoad2(c->b, field ? c->t_i64 : c->t_i32, acc, "");
}

LLVMValueRef cg_tasks_amax(CgCtx *c, const CgTask *t)
{
	return reduce_partials(c, t->ntasks, 0);
}

/* ---- sources and destinations ---- */

void cg_src_open(CgCtx *c, CgSrc *s, const IrValue *v)
{
	s->v = v;
	s->base = cg_value_ptr(c, v);
	s->k = v->type->dt == IR_DT_LNS ? cg_value_k(c, v) : NULL;
}

LLVMValueRef cg_src_load(CgCtx *c, const CgSrc *s, LLVMValueRef e, int lanes)
{
	const IrType *t = s->v->type;
	if (t->dt == IR_DT_LNS)
		return cg_lns_decode(c, t->fmt, s->k, cg_lns_load(c, t->fmt, s->base, e, lanes));
	int bytes = t->dt == IR_DT_F32 ? 4 : 1;
	LLVMValueRef p = cg_gep(c, s->base, LLVMBuildMul(c->b, e, cg_i64(c, bytes), ""));
	LLVMTypeRef ty = LLVMVectorType(bytes == 4 ? c->t_f32 : c->t_i8, (unsigned)lanes);
	LLVMValueRef x = LLVMBuildLoad2(c->b, ty, p, "");
	LLVMSetAlignment(x, (unsigned)bytes);
	if (bytes == 4)
		return x;
	LLVMValueRef nz = LLVMBuildICmp(c->b, LLVMIntNE, x, LLVMConstNull(ty), "");
	return LLVMBuildUIToFP(c->b, nz, vf(c, lanes), ""); /* bool: any nonzero byte is 1 */
}

void cg_dst_open(CgCtx *c, CgDst *d, const IrValue *v)
{
	d->v = v;
	d->base = v->type->dt == IR_DT_LNS ? cg_temp_ptr(c, CG_TEMP_DATA) : cg_value_ptr(c, v);
}

void cg_dst_store(CgCtx *c, CgTask *t, const CgDst *d, LLVMValueRef e, LLVMValueRef x)
{
	LLVMValueRef p = cg_gep(c, d->base, LLVMBuildMul(c->b, e, cg_i64(c, 4), ""));
	LLVMSetAlignment(LLVMBuildStore(c->b, x, p), 4);
	cg_task_track(c, t, x);
}

void cg_task_track(CgCtx *c, CgTask *t, LLVMValueRef x)
{
	int L = cg_lanes(x);
	LLVMValueRef bits = LLVMBuildBitCast(c->b, x, vi(c, L), "");
	bits = LLVMBuildAnd(c->b, bits, cg_vi32(c, 0x7fffffff, L), "");
	while (L > c->vw) { /* wider than the accumulator: fold halves */
		LLVMValueRef lo[32], hi[32];
		for (int i = 0; i < L / 2; i++)
			lo[i] = cg_i32(c, i), hi[i] = cg_i32(c, L / 2 + i);
		LLVMValueRef p = LLVMGetPoison(vi(c, L));
		LLVMValueRef a = LLVMBuildShuffleVector(c->b, bits, p, LLVMConstVector(lo, (unsigned)L / 2), "");
		LLVMValueRef b = LLVMBuildShuffleVector(c->b, bits, p, LLVMConstVector(hi, (unsigned)L / 2), "");
		bits = umax(c, a, b);
		L /= 2;
	}
	LLVMValueRef acc = L == 1 ? t->amax_s : t->amax_v;
	LLVMValueRef a = LLVMBuildLoad2(c->b, vi(c, L), acc, "");
	LLVMBuildStore(c->b, umax(c, a, bits), acc);
}

static void finish_amax(CgCtx *c, const IrValue *v, LLVMValueRef amax)
{
	if (v->type->dt == IR_DT_LNS) {
		cg_encode_f32(c, v, CG_TEMP_DATA, amax);
		return;
	}
	cg_check_error(c, LLVMBuildICmp(c->b, LLVMIntUGE, amax, cg_i32(c, 0x7f800000), ""), v);
}

void cg_dst_finish(CgCtx *c, const CgTask *t, const IrValue *v)
{
	finish_amax(c, v, cg_tasks_amax(c, t));
}

void cg_inline_begin(CgCtx *c, CgTask *t)
{
	memset(t, 0, sizeof *t);
	t->ntasks = 1;
	t->amax_v = cg_alloca_zero(c, c->t_vi32);
	t->amax_s = cg_alloca_zero(c, vi(c, 1));
}

void cg_inline_finish(CgCtx *c, const CgTask *t, const IrValue *v)
{
	finish_amax(c, v, umax(c, reduce_umax(c, t->amax_v, c->vw), reduce_umax(c, t->amax_s, 1)));
}

/* ---- encoding an LNS output ---- */

static int needs_rng(LnsFormat f)
{
	return f.round == LNS_ROUND_STOCHASTIC || f.underflow == LNS_UF_STOCHASTIC;
}

/* Adds the lanes of flag (<L x i1>) to the counter alloca acc (<L x i32>). */
static void count(CgCtx *c, LLVMValueRef acc, LLVMValueRef flag)
{
	int L = cg_lanes(flag);
	LLVMValueRef a = LLVMBuildLoad2(c->b, vi(c, L), acc, "");
	LLVMBuildStore(c->b, LLVMBuildAdd(c->b, a, LLVMBuildZExt(c->b, flag, vi(c, L), ""), ""),
	               acc);
}

static LLVMValueRef reduce_add(CgCtx *c, LLVMValueRef acc, int lanes)
{
	return call1(c, "llvm.vector.reduce.add", LLVMBuildLoad2(c->b, vi(c, lanes), acc, ""));
}

typedef struct Enc {
	const IrValue *v;
	LLVMValueRef src, dst, k, key, sat[2], unf[2]; /* [0] vector, [1] one-lane counters */
} Enc;

static void encode_at(CgCtx *c, Enc *E, LLVMValueRef e, int L)
{
	LnsFormat f = E->v->type->fmt;
	LLVMValueRef p = cg_gep(c, E->src, LLVMBuildMul(c->b, e, cg_i64(c, 4), ""));
	LLVMValueRef x = LLVMBuildLoad2(c->b, vf(c, L), p, "");
	LLVMSetAlignment(x, 4);
	LLVMValueRef rnd = NULL, sat, unf;
	if (E->key) {
		LLVMValueRef i32 = LLVMBuildTrunc(c->b, e, c->t_i32, "");
		LLVMValueRef idx = LLVMBuildAdd(c->b, cg_splat(c, i32, L), cg_iota(c, L), "");
		rnd = cg_lns_rng_bits(c, E->key, idx);
	}
	LLVMValueRef w = cg_lns_encode(c, f, E->k, x, rnd, &sat, &unf);
	cg_lns_store(c, f, E->dst, e, w);
	count(c, E->sat[L == 1], sat);
	count(c, E->unf[L == 1], unf);
}

/* The encode pass over [t->lo, t->hi): vectors, then a one-lane tail. */
static void encode_task(CgCtx *c, CgTask *t, Enc *E)
{
	LLVMValueRef n = LLVMBuildSub(c->b, t->hi, t->lo, "");
	LLVMValueRef vend = LLVMBuildAdd(
	    c->b, t->lo, LLVMBuildAnd(c->b, n, cg_i64(c, ~(int64_t)(c->vw - 1)), ""), "");
	CgLoop L;
	LLVMValueRef e = cg_loop_begin(c, &L, t->lo, vend, c->vw, "e");
	encode_at(c, E, e, c->vw);
	cg_loop_end(c, &L);
	e = cg_loop_begin(c, &L, vend, t->hi, 1, "e1");
	encode_at(c, E, e, 1);
	cg_loop_end(c, &L);
	LLVMValueRef part = cg_partial_ptr(c, LLVMGetParam(t->fn, 1));
	LLVMValueRef ns =
	    LLVMBuildAdd(c->b, reduce_add(c, E->sat[0], c->vw), reduce_add(c, E->sat[1], 1), "");
	LLVMValueRef nu =
	    LLVMBuildAdd(c->b, reduce_add(c, E->unf[0], c->vw), reduce_add(c, E->unf[1], 1), "");
	LLVMBuildStore(c->b, ns, cg_gep_c(c, part, 4));
	LLVMBuildStore(c->b, nu, cg_gep_c(c, part, 8));
}

/* lns_scale_record(st, k, &(LnsStats){n_sat, n_unf, n_total, amax}) after a training encode. */
static void record_scale(CgCtx *c, const IrValue *v, const CgTask *t, LLVMValueRef k,
                         LLVMValueRef amax)
{
	LLVMTypeRef el[4] = {c->t_i64, c->t_i64, c->t_i64, c->t_f32};
	LLVMTypeRef st = LLVMStructTypeInContext(c->llctx, el, 4, 0);
	LLVMValueRef s = cg_alloca_zero(c, st);
	LLVMValueRef f[4] = {reduce_partials(c, t->ntasks, 1), reduce_partials(c, t->ntasks, 2),
	                     cg_i64(c, v->type->numel), amax};
	for (unsigned i = 0; i < 4; i++)
		LLVMBuildStore(c->b, f[i], LLVMBuildStructGEP2(c->b, st, s, i, ""));
	LLVMValueRef a[3] = {cg_scale_ptr(c, v), k, s};
	cg_call(c, "lns_scale_record", c->t_void, a, 3);
}

/* max |x| bits of the f32 values at the temporary area (when the caller has none). */
static LLVMValueRef amax_pass(CgCtx *c, const IrValue *v, int64_t temp_off)
{
	CgTask t;
	char name[64];
	snprintf(name, sizeof name, "%c.amax%d", c->mode == IR_MODE_EVAL ? 'e' : 't', v->id);
	cg_task_begin(c, &t, name, v->type->numel, 1, 64);
	CgDst d = {v, cg_temp_ptr(c, temp_off)};
	CgLoop L;
	LLVMValueRef e = cg_loop_begin(c, &L, t.lo, t.hi, 1, "e");
	LLVMValueRef p = cg_gep(c, d.base, LLVMBuildMul(c->b, e, cg_i64(c, 4), ""));
	LLVMValueRef x = LLVMBuildLoad2(c->b, vf(c, 1), p, "");
	LLVMValueRef bits = LLVMBuildAnd(c->b, LLVMBuildBitCast(c->b, x, vi(c, 1), ""),
	                                 cg_vi32(c, 0x7fffffff, 1), "");
	LLVMValueRef a = LLVMBuildLoad2(c->b, vi(c, 1), t.amax_s, "");
	LLVMBuildStore(c->b, umax(c, a, bits), t.amax_s);
	cg_loop_end(c, &L);
	cg_task_end(c, &t);
	return cg_tasks_amax(c, &t);
}

void cg_encode_f32(CgCtx *c, const IrValue *v, int64_t temp_off, LLVMValueRef amax)
{
	if (!amax)
		amax = amax_pass(c, v, temp_off);
	cg_check_error(c, LLVMBuildICmp(c->b, LLVMIntUGE, amax, cg_i32(c, 0x7f800000), ""), v);
	LnsFormat f = v->type->fmt;
	LLVMValueRef amax_f = LLVMBuildBitCast(c->b, amax, c->t_f32, "amax");
	LLVMValueRef a[3] = {cg_fmt_arg(c, f), cg_scale_ptr(c, v), amax_f};
	LLVMValueRef k = cg_call(c, "lns_scale_pick", c->t_i32, a, 3);
	LLVMBuildStore(c->b, k, cg_kslot_ptr(c, v));
	CgTask t;
	char name[64];
	snprintf(name, sizeof name, "%c.enc%d", c->mode == IR_MODE_EVAL ? 'e' : 't', v->id);
	cg_task_begin(c, &t, name, v->type->numel, 1, 64);
	Enc E = {v,
	         cg_temp_ptr(c, temp_off),
	         cg_value_ptr(c, v),
	         cg_value_k(c, v),
	         needs_rng(f) ? cg_lns_rng_key(c, v) : NULL,
	         {cg_alloca_zero(c, c->t_vi32), cg_alloca_zero(c, vi(c, 1))},
	         {cg_alloca_zero(c, c->t_vi32), cg_alloca_zero(c, vi(c, 1))}};
	encode_task(c, &t, &E);
	cg_task_end(c, &t);
	if (c->mode == IR_MODE_TRAIN)
		record_scale(c, v, &t, k, amax_f);
}

/* ---- running on codes ---- */

int cg_on_codes(const IrNode *n)
{
	if (!ir_op_has(n->op, IR_OPF_MOVE | IR_OPF_CODE_EXACT) || n->nin != 1 || n->nout != 1)
		return 0;
	const IrType *a = n->in[0]->type, *b = n->out[0]->type;
	return a->dt == IR_DT_LNS && b->dt == IR_DT_LNS && !memcmp(&a->fmt, &b->fmt, sizeof a->fmt);
}

/* Relu: a negative word becomes zero; Neg: the sign flips, zero stays canonical. */
static void codes_at(CgCtx *c, const IrNode *n, LLVMValueRef in, LLVMValueRef out, LLVMValueRef e,
                     int L)
{
	LnsFormat f = n->in[0]->type->fmt;
	LLVMValueRef w = cg_lns_load(c, f, in, e, L);
	LLVMValueRef sign = cg_vi32(c, 1 << (f.bits - 1), L), zero = cg_vi32(c, 0, L);
	if (n->op == IR_OP_RELU) {
		LLVMValueRef neg =
		    LLVMBuildICmp(c->b, LLVMIntNE, LLVMBuildAnd(c->b, w, sign, ""), zero, "");
		w = LLVMBuildSelect(c->b, neg, zero, w, "");
	} else {
		LLVMValueRef mag =
		    LLVMBuildAnd(c->b, w, cg_vi32(c, (1 << (f.bits - 1)) - 1, L), "");
		LLVMValueRef nz = LLVMBuildICmp(c->b, LLVMIntNE, mag, zero, "");
		w = LLVMBuildSelect(c->b, nz, LLVMBuildXor(c->b, w, sign, ""), zero, "");
	}
	cg_lns_store(c, f, out, e, w);
}

static int emit_codes_unary(CgCtx *c, const IrNode *n)
{
	CgTask t;
	char name[64];
	cg_task_begin(c, &t, cg_task_name(c, n, "codes", name, sizeof name), n->in[0]->type->numel,
	              1, 64);
	LLVMValueRef in = cg_value_ptr(c, n->in[0]), out = cg_value_ptr(c, n->out[0]);
	LLVMValueRef cnt = LLVMBuildSub(c->b, t.hi, t.lo, "");
	LLVMValueRef vend = LLVMBuildAdd(
	    c->b, t.lo, LLVMBuildAnd(c->b, cnt, cg_i64(c, ~(int64_t)(c->vw - 1)), ""), "");
	CgLoop L;
	LLVMValueRef e = cg_loop_begin(c, &L, t.lo, vend, c->vw, "e");
	codes_at(c, n, in, out, e, c->vw);
	cg_loop_end(c, &L);
	e = cg_loop_begin(c, &L, vend, t.hi, 1, "e1");
	codes_at(c, n, in, out, e, 1);
	cg_loop_end(c, &L);
	cg_task_end(c, &t);
	LLVMBuildStore(c->b, cg_value_k(c, n->in[0]), cg_kslot_ptr(c, n->out[0]));
	return 0;
}

/* ---- elementwise kernels with broadcasting ---- */

/* y = f(x[0..nin)) for lanes L; e is the output element of lane 0 (for the RNG). */
typedef LLVMValueRef (*EwFn)(CgCtx *c, const IrNode *n, LLVMValueRef *x, int L, LLVMValueRef e,
                             void *u);

typedef struct Ew {
	const IrNode *n;
	EwFn fn;
	void *u;
	int nin, r;
	int64_t od[IR_MAX_RANK], st[3][IR_MAX_RANK]; /* collapsed output dims, input strides */
	CgSrc src[3];
	CgDst dst;
	CgTask task;
} Ew;

/* numpy strides of a contiguous input of type t read as the output shape (ro, od). */
static void bcast_strides(const IrType *t, int ro, int64_t *st)
{
	int ri = t->rank;
	int64_t s = 1;
	for (int d = ro - 1; d >= 0; d--) {
		int di = d - (ro - ri);
		st[d] = di < 0 || t->dims[di] == 1 ? 0 : s;
		if (di >= 0)
			s *= t->dims[di];
	}
}

/* Drops unit dims and merges neighbours that every input walks the same way. */
static void collapse(Ew *w)
{
	int o = 0;
	for (int d = 0; d < w->r; d++) {
		if (w->od[d] == 1)
			continue;
		int merge = o > 0;
		for (int i = 0; i < w->nin && merge; i++)
			merge = w->st[i][o - 1] == w->st[i][d] * w->od[d];
		if (merge) {
			w->od[o - 1] *= w->od[d];
			for (int i = 0; i < w->nin; i++)
				w->st[i][o - 1] = w->st[i][d];
			continue;
		}
		w->od[o] = w->od[d];
		for (int i = 0; i < w->nin; i++)
			w->st[i][o] = w->st[i][d];
		o++;
	}
	if (o == 0) {
		w->od[0] = 1;
		for (int i = 0; i < w->nin; i++)
			w->st[i][0] = 0;
		o = 1;
	}
	w->r = o;
}

/* One step of the inner loop: L lanes at output element out + j. */
static void ew_at(CgCtx *c, Ew *w, LLVMValueRef *off, LLVMValueRef *pre, LLVMValueRef out,
                  LLVMValueRef j, int L)
{
	LLVMValueRef x[3];
	for (int i = 0; i < w->nin; i++)
		x[i] = pre[i] ? pre[i]
		              : cg_src_load(c, &w->src[i], LLVMBuildAdd(c->b, off[i], j, ""), L);
	LLVMValueRef e = LLVMBuildAdd(c->b, out, j, "");
	cg_dst_store(c, &w->task, &w->dst, e, w->fn(c, w->n, x, L, e, w->u));
}

/* cnt outputs from out on; input i at off[i] + j * inner stride (0 or 1). */
static void ew_span(CgCtx *c, Ew *w, LLVMValueRef *off, LLVMValueRef out, LLVMValueRef cnt)
{
	int r = w->r;
	LLVMValueRef vend = LLVMBuildAnd(c->b, cnt, cg_i64(c, ~(int64_t)(c->vw - 1)), "");
	for (int pass = 0; pass < 2; pass++) {
		int L = pass ? 1 : c->vw;
		LLVMValueRef pre[3] = {NULL, NULL, NULL};
		for (int i = 0; i < w->nin; i++)
			if (w->st[i][r - 1] == 0)
				pre[i] = splat_lane0(c, cg_src_load(c, &w->src[i], off[i], 1), L);
		CgLoop lp;
		LLVMValueRef j =
		    cg_loop_begin(c, &lp, pass ? vend : cg_i64(c, 0), pass ? cnt : vend, L, "j");
		ew_at(c, w, off, pre, out, j, L);
		cg_loop_end(c, &lp);
	}
}

/* Offset of row number `row` (a multi-index over od[0..r-1)) under strides st. */
static LLVMValueRef row_off(CgCtx *c, LLVMValueRef row, int r1, const int64_t *od,
                            const int64_t *st)
{
	LLVMValueRef off = cg_i64(c, 0), idx = row;
	for (int d = r1 - 1; d >= 0; d--) {
		if (st[d]) {
			LLVMValueRef q = LLVMBuildURem(c->b, idx, cg_i64(c, od[d]), "");
			off = LLVMBuildAdd(c->b, off, LLVMBuildMul(c->b, q, cg_i64(c, st[d]), ""),
			                   "");
		}
		if (d)
			idx = LLVMBuildUDiv(c->b, idx, cg_i64(c, od[d]), "");
	}
	return off;
}

static void ew_body(CgCtx *c, Ew *w)
{
	LLVMValueRef off[3];
	int r = w->r;
	if (r == 1) {
		for (int i = 0; i < w->nin; i++)
			off[i] = w->st[i][0] ? w->task.lo : cg_i64(c, 0);
		ew_span(c, w, off, w->task.lo, LLVMBuildSub(c->b, w->task.hi, w->task.lo, ""));
		return;
	}
	int64_t len = w->od[r - 1];
	CgLoop L;
	LLVMValueRef row = cg_loop_begin(c, &L, w->task.lo, w->task.hi, 1, "row");
	for (int i = 0; i < w->nin; i++)
		off[i] = row_off(c, row, r - 1, w->od, w->st[i]);
	ew_span(c, w, off, LLVMBuildMul(c->b, row, cg_i64(c, len), ""), cg_i64(c, len));
	cg_loop_end(c, &L);
}

/* The kernel of an elementwise node: inputs broadcast to output 0, f32 results (fn) stored
 * or encoded. */
static int emit_ew(CgCtx *c, const IrNode *n, int nin, EwFn fn, void *u)
{
	Ew w = {.n = n, .fn = fn, .u = u, .nin = nin};
	const IrType *to = n->out[0]->type;
	w.r = to->rank ? to->rank : 1;
	for (int d = 0; d < w.r; d++)
		w.od[d] = to->rank ? to->dims[d] : 1;
	for (int i = 0; i < nin; i++)
		bcast_strides(n->in[i]->type, w.r, w.st[i]);
	collapse(&w);
	int64_t len = w.od[w.r - 1], rows = to->numel / (len ? len : 1);
	char name[64];
	cg_task_name(c, n, ir_op_name(n->op), name, sizeof name);
	if (w.r == 1)
		cg_task_begin(c, &w.task, name, to->numel, 1, 64);
	else
		cg_task_begin(c, &w.task, name, rows, len, 1);
	for (int i = 0; i < nin; i++)
		cg_src_open(c, &w.src[i], n->in[i]);
	cg_dst_open(c, &w.dst, n->out[0]);
	ew_body(c, &w);
	cg_task_end(c, &w.task);
	cg_dst_finish(c, &w.task, n->out[0]);
	return 0;
}

/* ---- the math of each elementwise op, as the interpreter writes it ---- */

static LLVMValueRef sigmoid(CgCtx *c, LLVMValueRef x, int L)
{
	LLVMBuilderRef b = c->b;
	LLVMValueRef one = cg_vf32(c, 1.0f, L);
	LLVMValueRef e = cg_vexp(c, LLVMBuildFNeg(b, call1(c, "llvm.fabs", x), ""));
	LLVMValueRef den = LLVMBuildFAdd(b, one, e, "");
	LLVMValueRef pos = LLVMBuildFDiv(b, one, den, ""), neg = LLVMBuildFDiv(b, e, den, "");
	LLVMValueRef ge = LLVMBuildFCmp(b, LLVMRealOGE, x, cg_vf32(c, 0.0f, L), "");
	return LLVMBuildSelect(b, ge, pos, neg, "");
}

static LLVMValueRef ew_math(CgCtx *c, const IrNode *n, LLVMValueRef *x, int L, LLVMValueRef e,
                            void *u)
{
	(void)e;
	(void)u;
	LLVMBuilderRef b = c->b;
	LLVMValueRef zero = cg_vf32(c, 0.0f, L), one = cg_vf32(c, 1.0f, L);
	LLVMValueRef alpha = cg_vf32(c, n->attr.alpha.alpha, L);
	switch (n->op) {
	case IR_OP_ADD:
		return LLVMBuildFAdd(b, x[0], x[1], "");
	case IR_OP_SUB:
		return LLVMBuildFSub(b, x[0], x[1], "");
	case IR_OP_MUL:
		return LLVMBuildFMul(b, x[0], x[1], "");
	case IR_OP_DIV:
		return LLVMBuildFDiv(b, x[0], x[1], "");
	case IR_OP_NEG:
		return LLVMBuildFNeg(b, x[0], "");
	case IR_OP_RELU:
		return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x[0], zero, ""), x[0], zero,
		                       "");
	case IR_OP_LEAKY_RELU:
		return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGE, x[0], zero, ""), x[0],
		                       LLVMBuildFMul(b, alpha, x[0], ""), "");
	case IR_OP_SIGMOID:
		return sigmoid(c, x[0], L);
	case IR_OP_TANH:
		return cg_vtanh(c, x[0]);
	case IR_OP_RELU_GRAD:
		return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x[1], zero, ""), x[0], zero,
		                       "");
	case IR_OP_LEAKY_RELU_GRAD:
		return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x[1], zero, ""), x[0],
		                       LLVMBuildFMul(b, alpha, x[0], ""), "");
	case IR_OP_SIGMOID_GRAD:
		return LLVMBuildFMul(b, LLVMBuildFMul(b, x[0], x[1], ""),
		                     LLVMBuildFSub(b, one, x[1], ""), "");
	case IR_OP_CLIP: /* x < lo ? lo : x > hi ? hi : x */
		return LLVMBuildSelect(
		    b, LLVMBuildFCmp(b, LLVMRealOLT, x[0], cg_vf32(c, n->attr.clip.min, L), ""),
		    cg_vf32(c, n->attr.clip.min, L),
		    LLVMBuildSelect(
		        b, LLVMBuildFCmp(b, LLVMRealOGT, x[0], cg_vf32(c, n->attr.clip.max, L), ""),
		        cg_vf32(c, n->attr.clip.max, L), x[0], ""),
		    "");
	case IR_OP_CLIP_GRAD: /* dY where lo <= x <= hi */
		return LLVMBuildSelect(
		    b,
		    LLVMBuildAnd(
		        b, LLVMBuildFCmp(b, LLVMRealOGE, x[1], cg_vf32(c, n->attr.clip.min, L), ""),
		        LLVMBuildFCmp(b, LLVMRealOLE, x[1], cg_vf32(c, n->attr.clip.max, L), ""), ""),
		    x[0], zero, "");
	case IR_OP_TANH_GRAD:
		return LLVMBuildFMul(
		    b, x[0], LLVMBuildFSub(b, one, LLVMBuildFMul(b, x[1], x[1], ""), ""), "");
	default: /* Quantize, and moves that go through f32 */
		return x[0];
	}
}

/* (float)(2 (p - t) / m) in double, lane by lane as the interpreter. */
static LLVMValueRef mse_grad_math(CgCtx *c, const IrNode *n, LLVMValueRef *x, int L, LLVMValueRef e,
                                  void *u)
{
	(void)e;
	(void)u;
	LLVMBuilderRef b = c->b;
	LLVMTypeRef vd = LLVMVectorType(c->t_f64, (unsigned)L);
	LLVMValueRef p = LLVMBuildFPExt(b, x[0], vd, ""), t = LLVMBuildFPExt(b, x[1], vd, "");
	LLVMValueRef two = vsplat_const(LLVMConstReal(c->t_f64, 2.0), L);
	LLVMValueRef m = vsplat_const(LLVMConstReal(c->t_f64, (double)n->in[0]->type->numel), L);
	LLVMValueRef d = LLVMBuildFMul(b, two, LLVMBuildFSub(b, p, t, ""), "");
	return LLVMBuildFPTrunc(b, LLVMBuildFDiv(b, d, m, ""), vf(c, L), "");
}

/* ---- Dropout ---- */

typedef struct Drop {
	int apply;
	LLVMValueRef key, mask; /* in the task function */
} Drop;

/* Kept iff apply is off or unit(bits(key, i)) >= ratio; kept values scaled by 1 / keep. */
static LLVMValueRef dropout_math(CgCtx *c, const IrNode *n, LLVMValueRef *x, int L, LLVMValueRef e,
                                 void *u)
{
	Drop *d = u;
	LLVMBuilderRef b = c->b;
	float ratio = n->attr.dropout.ratio, keep = 1.0f - ratio;
	LLVMTypeRef vb = LLVMVectorType(c->t_i8, (unsigned)L);
	LLVMValueRef mp = cg_gep(c, d->mask, e), y = x[0];
	if (!d->apply) {
		LLVMSetAlignment(
		    LLVMBuildStore(b, vsplat_const(LLVMConstInt(c->t_i8, 1, 0), L), mp), 1);
		return y;
	}
	LLVMValueRef i32 = LLVMBuildTrunc(b, e, c->t_i32, "");
	LLVMValueRef bits =
	    cg_lns_rng_bits(c, d->key, LLVMBuildAdd(b, cg_splat(c, i32, L), cg_iota(c, L), ""));
	LLVMValueRef u24 = LLVMBuildLShr(b, bits, cg_vi32(c, 8, L), "");
	LLVMValueRef unit = LLVMBuildFMul(b, LLVMBuildUIToFP(b, u24, vf(c, L), ""),
	                                  cg_vf32(c, 1.0f / 16777216.0f, L), "");
	LLVMValueRef kept = LLVMBuildFCmp(b, LLVMRealOGE, unit, cg_vf32(c, ratio, L), "");
	LLVMSetAlignment(LLVMBuildStore(b, LLVMBuildZExt(b, kept, vb, ""), mp), 1);
	y = LLVMBuildFDiv(b, y, cg_vf32(c, keep, L), "");
	return LLVMBuildSelect(b, kept, y, cg_vf32(c, 0.0f, L), "");
}

static int emit_dropout(CgCtx *c, const IrNode *n)
{
	Drop d = {.apply =
	              c->mode == IR_MODE_TRAIN || (c->eval_dropout && n->attr.dropout.training)};
	Ew w = {.n = n, .fn = dropout_math, .u = &d, .nin = 1, .r = 1};
	int64_t m = n->in[0]->type->numel;
	w.od[0] = m;
	w.st[0][0] = 1;
	char name[64];
	cg_task_begin(c, &w.task, cg_task_name(c, n, "dropout", name, sizeof name), m, 1, 64);
	cg_src_open(c, &w.src[0], n->in[0]);
	cg_dst_open(c, &w.dst, n->out[0]);
	d.mask = cg_value_ptr(c, n->out[1]);
	d.key = d.apply ? cg_lns_rng_key(c, n->out[1]) : NULL;
	ew_body(c, &w);
	cg_task_end(c, &w.task);
	cg_dst_finish(c, &w.task, n->out[0]);
	return 0;
}

static LLVMValueRef dropout_grad_math(CgCtx *c, const IrNode *n, LLVMValueRef *x, int L,
                                      LLVMValueRef e, void *u)
{
	(void)e;
	(void)u;
	LLVMBuilderRef b = c->b;
	float keep = 1.0f - n->attr.dropout.ratio;
	LLVMValueRef kept = LLVMBuildFCmp(b, LLVMRealUNE, x[1], cg_vf32(c, 0.0f, L), "");
	LLVMValueRef y = LLVMBuildFDiv(b, x[0], cg_vf32(c, keep, L), "");
	return LLVMBuildSelect(b, kept, y, cg_vf32(c, 0.0f, L), "");
}

/* ---- WeightView: lns -> lns view words, lns -> f32 decode, or a copy ---- */

static void view_at(CgCtx *c, const IrNode *n, LLVMValueRef *p, LLVMValueRef e, int L)
{
	LnsFormat fu = n->in[0]->type->fmt, fv = n->out[0]->type->fmt;
	LLVMValueRef w = cg_lns_load(c, fu, p[0], e, L);
	cg_lns_store(c, fv, p[1], e, cg_lns_view(c, fu, p[2], fv, p[3], w));
}

static int emit_view_codes(CgCtx *c, const IrNode *n)
{
	const IrValue *w = n->in[0], *v = n->out[0];
	LLVMValueRef a[3] = {cg_fmt_arg(c, w->type->fmt), cg_value_k(c, w),
	                     cg_fmt_arg(c, v->type->fmt)};
	LLVMBuildStore(c->b, cg_call(c, "lns_view_offset", c->t_i32, a, 3), cg_kslot_ptr(c, v));
	CgTask t;
	char name[64];
	cg_task_begin(c, &t, cg_task_name(c, n, "view", name, sizeof name), w->type->numel, 1, 64);
	LLVMValueRef p[4] = {cg_value_ptr(c, w), cg_value_ptr(c, v), cg_value_k(c, w),
	                     cg_value_k(c, v)};
	LLVMValueRef cnt = LLVMBuildSub(c->b, t.hi, t.lo, "");
	LLVMValueRef vend = LLVMBuildAdd(
	    c->b, t.lo, LLVMBuildAnd(c->b, cnt, cg_i64(c, ~(int64_t)(c->vw - 1)), ""), "");
	CgLoop L;
	LLVMValueRef e = cg_loop_begin(c, &L, t.lo, vend, c->vw, "e");
	view_at(c, n, p, e, c->vw);
	cg_loop_end(c, &L);
	e = cg_loop_begin(c, &L, vend, t.hi, 1, "e1");
	view_at(c, n, p, e, 1);
	cg_loop_end(c, &L);
	cg_task_end(c, &t);
	return 0;
}

static int emit_weight_view(CgCtx *c, const IrNode *n)
{
	const IrType *tw = n->in[0]->type, *tv = n->out[0]->type;
	if (tw->dt == IR_DT_LNS && tv->dt == IR_DT_LNS)
		return emit_view_codes(c, n);
	if (tw->dt == IR_DT_LNS || tw->dt == tv->dt) /* decode (f32 out), or a checked copy */
		return emit_ew(c, n, 1, ew_math, NULL);
	ir_node_error(c->g, n, IR_ERR_UNSUPPORTED,
	              "an f32 weight has no LNS view (quantize it "
	              "instead)");
	return -1;
}

/* ---- entry points for the table ---- */

int cg_emit_binary(CgCtx *c, const IrNode *n)
{
	return emit_ew(c, n, 2, ew_math, NULL);
}

int cg_emit_unary(CgCtx *c, const IrNode *n)
{
	if (cg_on_codes(n))
		return emit_codes_unary(c, n);
	return emit_ew(c, n, 1, ew_math, NULL);
}

int cg_emit_dropout(CgCtx *c, const IrNode *n)
{
	return emit_dropout(c, n);
}

int cg_emit_dropout_grad(CgCtx *c, const IrNode *n)
{
	return emit_ew(c, n, 2, dropout_grad_math, NULL);
}

int cg_emit_mse_grad(CgCtx *c, const IrNode *n)
{
	return emit_ew(c, n, 2, mse_grad_math, NULL);
}

int cg_emit_quantize(CgCtx *c, const IrNode *n)
{
	return emit_ew(c, n, 1, ew_math, NULL);
}

int cg_emit_weight_view(CgCtx *c, const IrNode *n)
{
	return emit_weight_view(c, n);
}
