/* cg_move.c: data movement kernels (Reshape and the other copies, Transpose, Slice, Concat,
 * Pad) and Cast.
 *
 * A move runs in one of three modes. Between identical LNS formats (one input) it moves the
 * codes and the output keeps the input's k (cg_on_codes); for non-float dtypes it moves
 * elements of the dtype's size, untouched; otherwise it moves values through f32, decoding LNS
 * inputs and writing through a CgDst, which checks the results and encodes an LNS output, as
 * the interpreter does. Every move is described as runs: Slice and Concat are, per outer
 * index, contiguous runs of each input (memcpy for raw modes, vector loops for f32); Transpose
 * collapses the output dims the permutation keeps together and walks rows whose inner input
 * stride is 1 (a run) or not (a gather). Cast converts element by element with the
 * interpreter's rules, written out per dtype pair at compile time: through a double for float
 * sources (f16 bits converted in integer arithmetic), the 64-bit pattern for integers,
 * saturating float-to-int (llvm.fpto[su]i.sat), wrapping int-to-int.
 */
#include <math.h>
#include <string.h>

#include "codegen/cg.h"

typedef enum { MODE_CODES, MODE_RAW, MODE_F32 } Mode;

static Mode move_mode(const IrNode *n)
{
	if (cg_on_codes(n))
		return MODE_CODES;
	const IrType *o = n->out[0]->type;
	if (o->dt != IR_DT_LNS && o->dt != IR_DT_F32)
		return MODE_RAW;
	return MODE_F32;
}

/* Element size of the raw modes: containers or the dtype. */
static int64_t elem_size(const IrType *t)
{
	return (int64_t)ir_type_elem_size(t);
}

static LLVMTypeRef vf(CgCtx *c, int lanes)
{
	return LLVMVectorType(c->t_f32, (unsigned)lanes);
}

/* The move's kernel state inside its task. */
typedef struct Mv {
	const IrNode *n;
	Mode mode;
	int64_t es;
	CgTask task;
	CgSrc src[IR_MAX_IN];
	CgDst dst;
	LLVMValueRef out; /* raw modes: the output's base */
} Mv;

static void mv_begin(CgCtx *c, Mv *m, const IrNode *n, const char *what, int64_t items,
                     int64_t cost)
{
	char name[64];
	m->n = n;
	m->mode = move_mode(n);
	m->es = elem_size(n->out[0]->type);
	cg_task_begin(c, &m->task, cg_task_name(c, n, what, name, sizeof name), items, cost, 1);
	for (int i = 0; i < n->nin; i++)
		cg_src_open(c, &m->src[i], n->in[i]);
	if (m->mode == MODE_F32)
		cg_dst_open(c, &m->dst, n->out[0]);
	else
		m->out = cg_value_ptr(c, n->out[0]);
}

static void mv_end(CgCtx *c, Mv *m)
{
	cg_task_end(c, &m->task);
	const IrValue *in = m->n->in[0], *out = m->n->out[0];
	if (m->mode == MODE_F32)
		cg_dst_finish(c, &m->task, out);
	else if (m->mode == MODE_CODES)
		LLVMBuildStore(c->b, cg_value_k(c, in), cg_kslot_ptr(c, out));
}

/* Copies cnt elements of input i from element si on to output element di on. */
static void mv_run(CgCtx *c, Mv *m, int i, LLVMValueRef si, LLVMValueRef di, LLVMValueRef cnt)
{
	if (m->mode != MODE_F32) {
		LLVMValueRef es = cg_i64(c, m->es);
		LLVMValueRef s = cg_gep(c, m->src[i].base, LLVMBuildMul(c->b, si, es, ""));
		LLVMValueRef d = cg_gep(c, m->out, LLVMBuildMul(c->b, di, es, ""));
		LLVMBuildMemCpy(c->b, d, 1, s, 1, LLVMBuildMul(c->b, cnt, es, ""));
		return;
	}
	LLVMValueRef vend = LLVMBuildAnd(c->b, cnt, cg_i64(c, ~(int64_t)(c->vw - 1)), "");
	for (int pass = 0; pass < 2; pass++) {
		int L = pass ? 1 : c->vw;
		CgLoop lp;
		LLVMValueRef j =
		    cg_loop_begin(c, &lp, pass ? vend : cg_i64(c, 0), pass ? cnt : vend, L, "j");
		LLVMValueRef x = cg_src_load(c, &m->src[i], LLVMBuildAdd(c->b, si, j, ""), L);
		cg_dst_store(c, &m->task, &m->dst, LLVMBuildAdd(c->b, di, j, ""), x);
		cg_loop_end(c, &lp);
	}
}

/* One element at a time (a gather): input i element si to output element di. */
static void mv_one(CgCtx *c, Mv *m, LLVMValueRef si, LLVMValueRef di)
{
	if (m->mode == MODE_F32) {
		cg_dst_store(c, &m->task, &m->dst, di, cg_src_load(c, &m->src[0], si, 1));
		return;
	}
	LLVMTypeRef t = LLVMIntTypeInContext(c->llctx, (unsigned)(8 * m->es));
	LLVMValueRef es = cg_i64(c, m->es);
	LLVMValueRef x =
	    LLVMBuildLoad2(c->b, t, cg_gep(c, m->src[0].base, LLVMBuildMul(c->b, si, es, "")), "");
	LLVMSetAlignment(x, 1);
	LLVMSetAlignment(LLVMBuildStore(c->b, x, cg_gep(c, m->out, LLVMBuildMul(c->b, di, es, ""))),
	                 1);
}

/* ---- copies: Reshape, Flatten, Squeeze, Unsqueeze, Identity ---- */

static int emit_copy(CgCtx *c, const IrNode *n)
{
	Mv m;
	int64_t numel = n->out[0]->type->numel;
	mv_begin(c, &m, n, "copy", numel, 1);
	mv_run(c, &m, 0, m.task.lo, m.task.lo, LLVMBuildSub(c->b, m.task.hi, m.task.lo, ""));
	mv_end(c, &m);
	return 0;
}

/* ---- Slice and Concat: per outer index, contiguous runs ---- */

static void split_at(const IrType *t, int axis, int64_t *outer, int64_t *inner)
{
	*outer = *inner = 1;
	for (int i = 0; i < t->rank; i++) {
		if (i < axis)
			*outer *= t->dims[i];
		else if (i > axis)
			*inner *= t->dims[i];
	}
}

static int emit_slice(CgCtx *c, const IrNode *n)
{
	const IrAttrSlice *s = &n->attr.slice;
	int64_t outer, inner, dim = n->in[0]->type->dims[s->axis];
	split_at(n->in[0]->type, s->axis, &outer, &inner);
	int64_t block = (s->end - s->start) * inner;
	Mv m;
	mv_begin(c, &m, n, "slice", outer, block);
	CgLoop L;
	LLVMValueRef o = cg_loop_begin(c, &L, m.task.lo, m.task.hi, 1, "o");
	LLVMValueRef si = LLVMBuildAdd(c->b, LLVMBuildMul(c->b, o, cg_i64(c, dim * inner), ""),
	                               cg_i64(c, s->start * inner), "");
	mv_run(c, &m, 0, si, LLVMBuildMul(c->b, o, cg_i64(c, block), ""), cg_i64(c, block));
	cg_loop_end(c, &L);
	mv_end(c, &m);
	return 0;
}

static int emit_concat(CgCtx *c, const IrNode *n)
{
	int axis = n->attr.axis.axis;
	int64_t outer, inner;
	split_at(n->out[0]->type, axis, &outer, &inner);
	int64_t row = n->out[0]->type->dims[axis] * inner;
	Mv m;
	mv_begin(c, &m, n, "concat", outer, row);
	CgLoop L;
	LLVMValueRef o = cg_loop_begin(c, &L, m.task.lo, m.task.hi, 1, "o");
	int64_t at = 0;
	for (int i = 0; i < n->nin; i++) {
		int64_t block = n->in[i]->type->dims[axis] * inner;
		LLVMValueRef di = LLVMBuildAdd(c->b, LLVMBuildMul(c->b, o, cg_i64(c, row), ""),
		                               cg_i64(c, at), "");
		mv_run(c, &m, i, LLVMBuildMul(c->b, o, cg_i64(c, block), ""), di, cg_i64(c, block));
		at += block;
	}
	cg_loop_end(c, &L);
	mv_end(c, &m);
	return 0;
}

/* ---- Transpose ---- */

typedef struct Perm {
	int r;
	int64_t od[IR_MAX_RANK], st[IR_MAX_RANK]; /* output dims, input strides */
} Perm;

/* Output dims with their input strides; unit dims dropped, dims the permutation keeps
 * adjacent merged. */
static void perm_collapse(const IrNode *n, Perm *p)
{
	const IrType *ti = n->in[0]->type, *to = n->out[0]->type;
	int64_t ist[IR_MAX_RANK];
	for (int d = ti->rank - 1; d >= 0; d--)
		ist[d] = d == ti->rank - 1 ? 1 : ist[d + 1] * ti->dims[d + 1];
	p->r = 0;
	for (int d = 0; d < to->rank; d++) {
		int64_t od = to->dims[d], st = ist[n->attr.perm.perm[d]];
		if (od == 1)
			continue;
		if (p->r && p->st[p->r - 1] == st * od) {
			p->od[p->r - 1] *= od;
			p->st[p->r - 1] = st;
			continue;
		}
		p->od[p->r] = od;
		p->st[p->r++] = st;
	}
	if (!p->r) {
		p->od[0] = 1;
		p->st[0] = 1;
		p->r = 1;
	}
}

static LLVMValueRef perm_row_off(CgCtx *c, const Perm *p, LLVMValueRef row)
{
	LLVMValueRef off = cg_i64(c, 0), idx = row;
	for (int d = p->r - 2; d >= 0; d--) {
		LLVMValueRef q = LLVMBuildURem(c->b, idx, cg_i64(c, p->od[d]), "");
		off = LLVMBuildAdd(c->b, off, LLVMBuildMul(c->b, q, cg_i64(c, p->st[d]), ""), "");
		if (d)
			idx = LLVMBuildUDiv(c->b, idx, cg_i64(c, p->od[d]), "");
	}
	return off;
}

static int emit_transpose(CgCtx *c, const IrNode *n)
{
	Perm p;
	perm_collapse(n, &p);
	int64_t len = p.od[p.r - 1], s = p.st[p.r - 1];
	int64_t rows = n->out[0]->type->numel / (len ? len : 1);
	Mv m;
	mv_begin(c, &m, n, "transpose", rows, len);
	CgLoop L;
	LLVMValueRef row = cg_loop_begin(c, &L, m.task.lo, m.task.hi, 1, "row");
	LLVMValueRef si = perm_row_off(c, &p, row);
	LLVMValueRef di = LLVMBuildMul(c->b, row, cg_i64(c, len), "");
	if (s == 1) {
		mv_run(c, &m, 0, si, di, cg_i64(c, len));
	} else {
		CgLoop J;
		LLVMValueRef j = cg_loop_begin(c, &J, cg_i64(c, 0), cg_i64(c, len), 1, "j");
		mv_one(c, &m, LLVMBuildAdd(c->b, si, LLVMBuildMul(c->b, j, cg_i64(c, s), ""), ""),
		       LLVMBuildAdd(c->b, di, j, ""));
		cg_loop_end(c, &J);
	}
	cg_loop_end(c, &L);
	mv_end(c, &m);
	return 0;
}

/* ---- Cast ---- */

static int is_float_dt(IrDType dt)
{
	return dt == IR_DT_F32 || dt == IR_DT_F64 || dt == IR_DT_F16 || dt == IR_DT_LNS;
}

static int is_signed_dt(IrDType dt)
{
	return dt == IR_DT_I8 || dt == IR_DT_I16 || dt == IR_DT_I32 || dt == IR_DT_I64;
}

static LLVMValueRef dconst(CgCtx *c, double d)
{
	return LLVMConstReal(c->t_f64, d);
}

static LLVMValueRef sel(CgCtx *c, LLVMValueRef cond, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildSelect(c->b, cond, a, b, "");
}

static LLVMValueRef icmp(CgCtx *c, LLVMIntPredicate p, LLVMValueRef a, int64_t k)
{
	return LLVMBuildICmp(c->b, p, a, LLVMConstInt(LLVMTypeOf(a), (unsigned long long)k, 1), "");
}

/* f16 bits (i16) -> double, exactly (NaN: the C NAN, sign kept). */
static LLVMValueRef f16_to_double(CgCtx *c, LLVMValueRef h)
{
	LLVMBuilderRef b = c->b;
	LLVMValueRef h64 = LLVMBuildZExt(b, h, c->t_i64, "");
	LLVMValueRef e =
	    LLVMBuildAnd(b, LLVMBuildLShr(b, h64, cg_i64(c, 10), ""), cg_i64(c, 31), "");
	LLVMValueRef m = LLVMBuildAnd(b, h64, cg_i64(c, 1023), "");
	LLVMValueRef sub =
	    LLVMBuildFMul(b, LLVMBuildSIToFP(b, m, c->t_f64, ""), dconst(c, 0x1p-24), "");
	LLVMValueRef pw =
	    LLVMBuildShl(b, LLVMBuildAdd(b, e, cg_i64(c, 1023 - 25), ""), cg_i64(c, 52), "");
	LLVMValueRef norm = LLVMBuildFMul(
	    b, LLVMBuildSIToFP(b, LLVMBuildAdd(b, m, cg_i64(c, 1024), ""), c->t_f64, ""),
	    LLVMBuildBitCast(b, pw, c->t_f64, ""), "");
	LLVMValueRef special =
	    sel(c, icmp(c, LLVMIntNE, m, 0), dconst(c, (double)NAN), dconst(c, (double)INFINITY));
	LLVMValueRef v =
	    sel(c, icmp(c, LLVMIntEQ, e, 0), sub, sel(c, icmp(c, LLVMIntEQ, e, 31), special, norm));
	return sel(c, icmp(c, LLVMIntNE, LLVMBuildLShr(b, h64, cg_i64(c, 15), ""), 0),
	           LLVMBuildFNeg(b, v, ""), v);
}

/* double -> f16 bits (i16): round to nearest even with subnormals, overflow to inf, NaN quiet
 * with the top payload bits: the interpreter's f16_from_double, branch-free. */
static LLVMValueRef f16_from_double(CgCtx *c, LLVMValueRef x)
{
	LLVMBuilderRef b = c->b;
	LLVMValueRef bits = LLVMBuildBitCast(b, x, c->t_i64, "");
	LLVMValueRef sign =
	    LLVMBuildAnd(b, LLVMBuildLShr(b, bits, cg_i64(c, 48), ""), cg_i64(c, 0x8000), "");
	LLVMValueRef e =
	    LLVMBuildAnd(b, LLVMBuildLShr(b, bits, cg_i64(c, 52), ""), cg_i64(c, 0x7ff), "");
	LLVMValueRef frac = LLVMBuildAnd(b, bits, cg_i64(c, (INT64_C(1) << 52) - 1), "");
	LLVMValueRef ue = LLVMBuildSub(b, e, cg_i64(c, 1023), "");
	LLVMValueRef m = LLVMBuildOr(b, frac, cg_i64(c, INT64_C(1) << 52), "");
	LLVMValueRef normal = icmp(c, LLVMIntSGE, ue, -14);
	LLVMValueRef base = sel(
	    c, normal, LLVMBuildShl(b, LLVMBuildAdd(b, ue, cg_i64(c, 14), ""), cg_i64(c, 10), ""),
	    cg_i64(c, 0));
	LLVMValueRef shift = sel(c, normal, cg_i64(c, 42), LLVMBuildSub(b, cg_i64(c, 28), ue, ""));
	LLVMValueRef tiny = icmp(c, LLVMIntSGT, shift, 60);
	shift = sel(c, tiny, cg_i64(c, 60), shift);
	LLVMValueRef q = LLVMBuildLShr(b, m, shift, "");
	LLVMValueRef one = cg_i64(c, 1);
	LLVMValueRef rem =
	    LLVMBuildAnd(b, m, LLVMBuildSub(b, LLVMBuildShl(b, one, shift, ""), one, ""), "");
	LLVMValueRef half = LLVMBuildShl(b, one, LLVMBuildSub(b, shift, one, ""), "");
	LLVMValueRef up =
	    LLVMBuildOr(b, LLVMBuildICmp(b, LLVMIntUGT, rem, half, ""),
	                LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntEQ, rem, half, ""),
	                             icmp(c, LLVMIntNE, LLVMBuildAnd(b, q, one, ""), 0), ""),
	                "");
	q = LLVMBuildAdd(b, q, LLVMBuildZExt(b, up, c->t_i64, ""), "");
	LLVMValueRef r = LLVMBuildOr(b, sign, LLVMBuildAdd(b, base, q, ""), "");
	r = sel(c, tiny, sign, r);
	r = sel(c, icmp(c, LLVMIntSGT, ue, 15), LLVMBuildOr(b, sign, cg_i64(c, 0x7c00), ""), r);
	r = sel(c, icmp(c, LLVMIntEQ, e, 0), sign, r);
	LLVMValueRef nan =
	    LLVMBuildOr(b, cg_i64(c, 0x7e00), LLVMBuildLShr(b, frac, cg_i64(c, 42), ""), "");
	LLVMValueRef inf_nan =
	    LLVMBuildOr(b, sign, sel(c, icmp(c, LLVMIntNE, frac, 0), nan, cg_i64(c, 0x7c00)), "");
	r = sel(c, icmp(c, LLVMIntEQ, e, 0x7ff), inf_nan, r);
	return LLVMBuildTrunc(b, r, c->t_i16, "");
}

/* Element i of a Cast source, as a double (float dtypes) or the 64-bit pattern (integers). */
static LLVMValueRef cast_load(CgCtx *c, const CgSrc *s, IrDType dt, LLVMValueRef i)
{
	LLVMBuilderRef b = c->b;
	if (dt == IR_DT_F32 || dt == IR_DT_LNS) {
		LLVMValueRef x =
		    LLVMBuildExtractElement(b, cg_src_load(c, s, i, 1), cg_i32(c, 0), "");
		return LLVMBuildFPExt(b, x, c->t_f64, "");
	}
	size_t es = ir_dtype_size(dt);
	LLVMTypeRef t =
	    dt == IR_DT_F64 ? c->t_f64 : LLVMIntTypeInContext(c->llctx, (unsigned)(8 * es));
	LLVMValueRef p = cg_gep(c, s->base, LLVMBuildMul(b, i, cg_i64(c, (int64_t)es), ""));
	LLVMValueRef x = LLVMBuildLoad2(b, t, p, "");
	LLVMSetAlignment(x, 1);
	if (dt == IR_DT_F64)
		return x;
	if (dt == IR_DT_F16)
		return f16_to_double(c, x);
	if (dt == IR_DT_BOOL)
		return LLVMBuildZExt(b, icmp(c, LLVMIntNE, x, 0), c->t_i64, "");
	return is_signed_dt(dt) ? LLVMBuildSExt(b, x, c->t_i64, "")
	                        : LLVMBuildZExt(b, x, c->t_i64, "");
}

/* The value x of dtype `from` converted to dtype `to` (not F32/LNS: see cast_f32). */
static LLVMValueRef cast_to(CgCtx *c, LLVMValueRef x, IrDType from, IrDType to)
{
	LLVMBuilderRef b = c->b;
	int fl = is_float_dt(from), sg = is_signed_dt(from);
	if (to == IR_DT_F64)
		return fl   ? x
		       : sg ? LLVMBuildSIToFP(b, x, c->t_f64, "")
		            : LLVMBuildUIToFP(b, x, c->t_f64, "");
	if (to == IR_DT_F16)
		return f16_from_double(c, fl ? x : cast_to(c, x, from, IR_DT_F64));
	if (to == IR_DT_BOOL) {
		LLVMValueRef nz = fl ? LLVMBuildFCmp(b, LLVMRealUNE, x, dconst(c, 0.0), "")
		                     : icmp(c, LLVMIntNE, x, 0);
		return LLVMBuildZExt(b, nz, c->t_i8, "");
	}
	LLVMTypeRef t = LLVMIntTypeInContext(c->llctx, (unsigned)(8 * ir_dtype_size(to)));
	if (!fl)
		return LLVMBuildTrunc(b, x, t, "");
	LLVMTypeRef tys[2] = {t, c->t_f64};
	const char *name = is_signed_dt(to) ? "llvm.fptosi.sat" : "llvm.fptoui.sat";
	unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
	LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, tys, 2);
	return LLVMBuildCall2(b, LLVMIntrinsicGetType(c->llctx, id, tys, 2), fn, &x, 1, "");
}

/* To f32 (or to an LNS output, through f32): one rounding from the double or the integer. */
static LLVMValueRef cast_f32(CgCtx *c, LLVMValueRef x, IrDType from)
{
	LLVMBuilderRef b = c->b;
	if (is_float_dt(from))
		return LLVMBuildFPTrunc(b, x, c->t_f32, "");
	return is_signed_dt(from) ? LLVMBuildSIToFP(b, x, c->t_f32, "")
	                          : LLVMBuildUIToFP(b, x, c->t_f32, "");
}

static int emit_cast(CgCtx *c, const IrNode *n)
{
	IrDType from = n->in[0]->type->dt, to = n->out[0]->type->dt;
	int64_t numel = n->in[0]->type->numel;
	CgTask t;
	CgSrc s;
	CgDst d;
	char name[64];
	cg_task_begin(c, &t, cg_task_name(c, n, "cast", name, sizeof name), numel, 1, 64);
	cg_src_open(c, &s, n->in[0]);
	int f32 = to == IR_DT_F32 || to == IR_DT_LNS;
	if (f32)
		cg_dst_open(c, &d, n->out[0]);
	LLVMValueRef out = cg_value_ptr(c, n->out[0]);
	CgLoop L;
	LLVMValueRef i = cg_loop_begin(c, &L, t.lo, t.hi, 1, "i");
	LLVMValueRef x = cast_load(c, &s, from, i);
	if (f32) {
		LLVMValueRef y = cast_f32(c, x, from);
		cg_dst_store(
		    c, &t, &d, i,
		    LLVMBuildInsertElement(c->b, LLVMGetUndef(vf(c, 1)), y, cg_i32(c, 0), ""));
	} else {
		LLVMValueRef y = cast_to(c, x, from, to);
		int64_t es = (int64_t)ir_dtype_size(to);
		LLVMValueRef p = cg_gep(c, out, LLVMBuildMul(c->b, i, cg_i64(c, es), ""));
		LLVMSetAlignment(LLVMBuildStore(c->b, y, p), 1);
	}
	cg_loop_end(c, &L);
	cg_task_end(c, &t);
	if (f32)
		cg_dst_finish(c, &t, n->out[0]);
	return 0;
}

/* ---- Pad (constant mode) ---- */

/* The padding element of a raw or code move (an integer of es bytes), as the interpreter's
 * pad_element: LNS words encode the value in the input's format with its k this step (round
 * to nearest; 0 is word 0), other dtypes convert it as Cast does. */
static LLVMValueRef pad_raw_elem(CgCtx *c, const Mv *m, float value)
{
	const IrType *t = m->n->in[0]->type;
	if (m->mode == MODE_RAW)
		return cast_to(c, dconst(c, value), IR_DT_F64, t->dt);
	LLVMTypeRef et = LLVMIntTypeInContext(c->llctx, (unsigned)(8 * m->es));
	if (value == 0.0f)
		return LLVMConstNull(et);
	LnsFormat f = t->fmt;
	f.round = LNS_ROUND_NEAREST;
	if (f.underflow == LNS_UF_STOCHASTIC)
		f.underflow = LNS_UF_ZERO;
	LLVMValueRef w = cg_lns_encode(c, f, cg_value_k(c, m->n->in[0]), cg_vf32(c, value, 1), NULL,
				       NULL, NULL);
	return LLVMBuildTrunc(c->b, LLVMBuildExtractElement(c->b, w, cg_i32(c, 0), ""), et, "");
}

/* cnt padding elements from output element di on. */
static void pad_fill(CgCtx *c, Mv *m, LLVMValueRef elem, float value, LLVMValueRef di,
		     LLVMValueRef cnt)
{
	int vec = m->mode == MODE_F32;
	LLVMValueRef vend = vec ? LLVMBuildAnd(c->b, cnt, cg_i64(c, ~(int64_t)(c->vw - 1)), "")
				: cg_i64(c, 0);
	for (int pass = !vec; pass < 2; pass++) {
		int L = pass ? 1 : c->vw;
		CgLoop lp;
		LLVMValueRef j =
		    cg_loop_begin(c, &lp, pass ? vend : cg_i64(c, 0), pass ? cnt : vend, L, "pad");
		LLVMValueRef e = LLVMBuildAdd(c->b, di, j, "");
		if (vec) {
			cg_dst_store(c, &m->task, &m->dst, e, cg_vf32(c, value, L));
		} else {
			LLVMValueRef p = cg_gep(c, m->out, LLVMBuildMul(c->b, e, cg_i64(c, m->es), ""));
			LLVMSetAlignment(LLVMBuildStore(c->b, elem, p), 1);
		}
		cg_loop_end(c, &lp);
	}
}

/* Row by row over the output's last dimension, as ir_k_pad: a row whose outer index falls in
 * a pad is all padding; otherwise padding, the input row's kept part, padding. Negative pads
 * crop. */
static int emit_pad(CgCtx *c, const IrNode *n)
{
	const IrAttrPad *a = &n->attr.pad;
	const IrType *ti = n->in[0]->type, *to = n->out[0]->type;
	int r = ti->rank;
	int64_t ist[IR_MAX_RANK], last = to->dims[r - 1], rows = to->numel / (last ? last : 1);
	for (int d = r - 1; d >= 0; d--)
		ist[d] = d == r - 1 ? 1 : ist[d + 1] * ti->dims[d + 1];
	int64_t pb = a->pads[r - 1], lo = pb > 0 ? pb : 0;
	int64_t hi = ti->dims[r - 1] + pb < last ? ti->dims[r - 1] + pb : last;
	Mv m;
	mv_begin(c, &m, n, "pad", rows, last);
	LLVMValueRef elem = m.mode == MODE_F32 ? NULL : pad_raw_elem(c, &m, a->value);
	CgLoop L;
	LLVMValueRef row = cg_loop_begin(c, &L, m.task.lo, m.task.hi, 1, "row");
	LLVMValueRef di = LLVMBuildMul(c->b, row, cg_i64(c, last), "");
	LLVMValueRef inside = LLVMConstInt(c->t_i1, hi > lo, 0), off = cg_i64(c, 0), idx = row;
	for (int d = r - 2; d >= 0 && hi > lo; d--) {
		LLVMValueRef q = LLVMBuildURem(c->b, idx, cg_i64(c, to->dims[d]), "");
		idx = LLVMBuildUDiv(c->b, idx, cg_i64(c, to->dims[d]), "");
		LLVMValueRef sd = LLVMBuildSub(c->b, q, cg_i64(c, a->pads[d]), "");
		inside = LLVMBuildAnd(
		    c->b, inside,
		    LLVMBuildICmp(c->b, LLVMIntULT, sd, cg_i64(c, ti->dims[d]), ""), "");
		off = LLVMBuildAdd(c->b, off, LLVMBuildMul(c->b, sd, cg_i64(c, ist[d]), ""), "");
	}
	LLVMBasicBlockRef bin = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "pad_in");
	LLVMBasicBlockRef bout = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "pad_out");
	LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "pad_done");
	LLVMBuildCondBr(c->b, inside, bin, bout);
	LLVMPositionBuilderAtEnd(c->b, bin);
	pad_fill(c, &m, elem, a->value, di, cg_i64(c, lo));
	mv_run(c, &m, 0, LLVMBuildAdd(c->b, off, cg_i64(c, lo - pb), ""),
	       LLVMBuildAdd(c->b, di, cg_i64(c, lo), ""), cg_i64(c, hi - lo));
	pad_fill(c, &m, elem, a->value, LLVMBuildAdd(c->b, di, cg_i64(c, hi), ""),
		 cg_i64(c, last - hi));
	LLVMBuildBr(c->b, done);
	LLVMPositionBuilderAtEnd(c->b, bout);
	pad_fill(c, &m, elem, a->value, di, cg_i64(c, last));
	LLVMBuildBr(c->b, done);
	LLVMPositionBuilderAtEnd(c->b, done);
	cg_loop_end(c, &L);
	mv_end(c, &m);
	return 0;
}

/* ---- entry points for the table ---- */

int cg_emit_copy(CgCtx *c, const IrNode *n)
{
	return emit_copy(c, n);
}

int cg_emit_transpose(CgCtx *c, const IrNode *n)
{
	return emit_transpose(c, n);
}

int cg_emit_slice(CgCtx *c, const IrNode *n)
{
	return emit_slice(c, n);
}

int cg_emit_concat(CgCtx *c, const IrNode *n)
{
	if (n->nin == 1 && cg_on_codes(n))
		return emit_copy(c, n);
	return emit_concat(c, n);
}

int cg_emit_cast(CgCtx *c, const IrNode *n)
{
	return emit_cast(c, n);
}

int cg_emit_pad(CgCtx *c, const IrNode *n)
{
	return emit_pad(c, n);
}
