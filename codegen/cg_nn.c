/* cg_nn.c: the other kernels of convolutional networks: BatchNormalization and its gradient,
 * MaxPool, AveragePool, the global pools, and the pools' gradients.
 *
 * They follow the interpreter (ir/interp_nn.c) operation for operation, so results agree bit
 * for bit. BatchNormalization runs one task item per channel: its statistics and its
 * gradient's sums are double sums in the IR_SUM_LANES order (ir.h), one <16 x double>
 * accumulator plus a tail, then the normalisation (or dX) pass in double, vectorised along each
 * image's run of the channel; the small per-channel outputs (running and batch statistics,
 * dscale, dB) are f32 stores. Windowed pools run one item per output row: a vector of output
 * lanes along ow reads, for each kernel row, one masked "wide" load covering every tap of
 * every lane (lanes stride sw apart, taps dw), and each tap's lanes are a shuffle of it; the
 * load's mask is the input row's extent, so padding reads as nothing (never the maximum, not
 * counted in the average unless count_include_pad says so, as the interpreter's divisor
 * tables, emitted as constants, say). MaxPool on codes compares sign-magnitude keys (LNS.md
 * 4) and keeps the input's k; otherwise LNS inputs are decoded. The global pools reduce each
 * plane as one run. The pools' gradients scatter each dY into dX plane by plane (one item per
 * plane, so no two tasks touch the same element), in the interpreter's order: MaxPoolGrad
 * finds the windows' maxima as the forward pool does, a vector of lanes at a time, then adds
 * the lanes' dY one by one; AvgPoolGrad spreads each dY over its window's taps; the gradient
 * of a global average pool is a fill.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"

static LLVMTypeRef vty(LLVMTypeRef e, int n)
{
	return LLVMVectorType(e, (unsigned)n);
}

static LLVMValueRef add(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildAdd(c->b, a, b, "");
}

static LLVMValueRef mulk(CgCtx *c, LLVMValueRef a, int64_t k)
{
	return LLVMBuildMul(c->b, a, cg_i64(c, k), "");
}

static LLVMValueRef addk(CgCtx *c, LLVMValueRef a, int64_t k)
{
	return LLVMBuildAdd(c->b, a, cg_i64(c, k), "");
}

static LLVMValueRef dsplat(CgCtx *c, double d, int L)
{
	return cg_splat(c, LLVMConstReal(c->t_f64, d), L);
}

static LLVMValueRef fpext(CgCtx *c, LLVMValueRef x)
{
	return LLVMBuildFPExt(c->b, x, vty(c->t_f64, cg_lanes(x)), "");
}

static LLVMValueRef fptrunc(CgCtx *c, LLVMValueRef x)
{
	return LLVMBuildFPTrunc(c->b, x, vty(c->t_f32, cg_lanes(x)), "");
}

static LLVMValueRef lane0(CgCtx *c, LLVMValueRef v)
{
	return LLVMBuildExtractElement(c->b, v, cg_i32(c, 0), "");
}

/* Element e of a source as a double scalar. */
static LLVMValueRef ld_d(CgCtx *c, const CgSrc *s, LLVMValueRef e)
{
	return LLVMBuildFPExt(c->b, lane0(c, cg_src_load(c, s, e, 1)), c->t_f64, "");
}

/* Stores the double d rounded to f32 as element e of the f32 value v. */
static void st_f32(CgCtx *c, const IrValue *v, LLVMValueRef e, LLVMValueRef d)
{
	LLVMValueRef p = cg_gep(c, cg_value_ptr(c, v), mulk(c, e, 4));
	LLVMSetAlignment(LLVMBuildStore(c->b, LLVMBuildFPTrunc(c->b, d, c->t_f32, ""), p), 4);
}

static int need_f32(CgCtx *c, const IrNode *n, int from)
{
	for (int j = from; j < n->nout; j++)
		if (n->out[j]->type->dt != IR_DT_F32) {
			ir_node_error(c->g, n, IR_ERR_UNSUPPORTED,
			              "output '%s' is %s; the llvm "
			              "backend keeps %s's statistics f32",
			              n->out[j]->name, ir_dtype_name(n->out[j]->type->dt),
			              ir_op_name(n->op));
			return -1;
		}
	return 0;
}

/* ---- sums in the IR_SUM_LANES order ---- */

typedef struct Acc {
	LLVMValueRef v, s; /* allocas: <IR_SUM_LANES x double> lanes, <1 x double> tail */
} Acc;

static void acc_zero(CgCtx *c, Acc *a)
{
	a->v = cg_alloca_zero(c, vty(c->t_f64, IR_SUM_LANES));
	a->s = cg_alloca_zero(c, vty(c->t_f64, 1));
}

/* x: <IR_SUM_LANES x double> (lanes) or <1 x double> (tail). */
static void acc_add(CgCtx *c, Acc *a, LLVMValueRef x)
{
	LLVMValueRef p = cg_lanes(x) == 1 ? a->s : a->v;
	LLVMValueRef s = LLVMBuildLoad2(c->b, LLVMTypeOf(x), p, "");
	LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, s, x, ""), p);
}

static LLVMValueRef acc_total(CgCtx *c, const Acc *a)
{
	LLVMValueRef args[2] = {lane0(c, LLVMBuildLoad2(c->b, vty(c->t_f64, 1), a->s, "")),
	                        LLVMBuildLoad2(c->b, vty(c->t_f64, IR_SUM_LANES), a->v, "")};
	return cg_intrinsic(c, "llvm.vector.reduce.fadd", vty(c->t_f64, IR_SUM_LANES), args, 2);
}

/* ---- BatchNormalization ---- */

enum { BN_SUM, BN_VAR, BN_NORM, BNG_SUMS, BNG_DX };

typedef struct Bn {
	const IrNode *n;
	int64_t N, C, S;
	int pass;
	CgTask t;
	CgSrc x, dy;
	CgDst y; /* Y, or dX */
	Acc a1, a2;
	LLVMValueRef m, inv, sc, bi; /* per channel, double scalars */
	LLVMValueRef cnt, sdy, sdyx, f;
} Bn;

/* Element e (and the L - 1 after it) of the current pass. */
static void bn_at(CgCtx *c, Bn *u, LLVMValueRef e, int L)
{
	LLVMBuilderRef b = c->b;
	LLVMValueRef x = fpext(c, cg_src_load(c, &u->x, e, L));
	if (u->pass == BN_SUM) {
		acc_add(c, &u->a1, x);
		return;
	}
	LLVMValueRef xm = LLVMBuildFSub(b, x, cg_splat(c, u->m, L), "");
	switch (u->pass) {
	case BN_VAR:
		acc_add(c, &u->a1, LLVMBuildFMul(b, xm, xm, ""));
		return;
	case BN_NORM: {
		LLVMValueRef y = LLVMBuildFMul(b, LLVMBuildFMul(b, xm, cg_splat(c, u->inv, L), ""),
		                               cg_splat(c, u->sc, L), "");
		cg_dst_store(c, &u->t, &u->y, e,
		             fptrunc(c, LLVMBuildFAdd(b, y, cg_splat(c, u->bi, L), "")));
		return;
	}
	case BNG_SUMS: {
		LLVMValueRef d = fpext(c, cg_src_load(c, &u->dy, e, L));
		acc_add(c, &u->a1, d);
		acc_add(c, &u->a2,
		        LLVMBuildFMul(b, LLVMBuildFMul(b, d, xm, ""), cg_splat(c, u->inv, L), ""));
		return;
	}
	default: { /* BNG_DX: f (cnt dy - sdy - xhat sdyx) */
		LLVMValueRef d = fpext(c, cg_src_load(c, &u->dy, e, L));
		LLVMValueRef t = LLVMBuildFSub(b, LLVMBuildFMul(b, cg_splat(c, u->cnt, L), d, ""),
		                               cg_splat(c, u->sdy, L), "");
		LLVMValueRef xh = LLVMBuildFMul(b, xm, cg_splat(c, u->inv, L), "");
		t = LLVMBuildFSub(b, t, LLVMBuildFMul(b, xh, cg_splat(c, u->sdyx, L), ""), "");
		cg_dst_store(c, &u->t, &u->y, e,
		             fptrunc(c, LLVMBuildFMul(b, cg_splat(c, u->f, L), t, "")));
		return;
	}
	}
}

/* One pass of u over channel ch: per image, its run of S elements in vectors of IR_SUM_LANES,
 * then one at a time. */
static void bn_pass(CgCtx *c, Bn *u, int pass, LLVMValueRef ch)
{
	u->pass = pass;
	int64_t vend = u->S / IR_SUM_LANES * IR_SUM_LANES;
	CgLoop Li, Lj;
	LLVMValueRef i = cg_loop_begin(c, &Li, cg_i64(c, 0), cg_i64(c, u->N), 1, "img");
	LLVMValueRef base = mulk(c, add(c, mulk(c, i, u->C), ch), u->S);
	if (vend) {
		LLVMValueRef j =
		    cg_loop_begin(c, &Lj, cg_i64(c, 0), cg_i64(c, vend), IR_SUM_LANES, "j");
		bn_at(c, u, add(c, base, j), IR_SUM_LANES);
		cg_loop_end(c, &Lj);
	}
	if (u->S > vend) {
		LLVMValueRef j = cg_loop_begin(c, &Lj, cg_i64(c, vend), cg_i64(c, u->S), 1, "j1");
		bn_at(c, u, add(c, base, j), 1);
		cg_loop_end(c, &Lj);
	}
	cg_loop_end(c, &Li);
}

static void bn_begin(CgCtx *c, Bn *u, const IrNode *n, const IrValue *x, const char *what)
{
	memset(u, 0, sizeof *u);
	u->n = n;
	const IrType *t = x->type;
	u->N = t->dims[0];
	u->C = t->dims[1];
	u->S = 1;
	for (int i = 2; i < t->rank; i++)
		u->S *= t->dims[i];
	char name[64];
	cg_task_begin(c, &u->t, cg_task_name(c, n, what, name, sizeof name), u->C, u->N * u->S, 1);
	cg_src_open(c, &u->x, x);
	cg_dst_open(c, &u->y, n->out[0]);
	u->cnt = LLVMConstReal(c->t_f64, (double)(u->N * u->S));
}

/* 1 / sqrt(var + epsilon) in double. */
static LLVMValueRef inv_std(CgCtx *c, const IrNode *n, LLVMValueRef var)
{
	LLVMValueRef v = LLVMBuildFAdd(c->b, var, LLVMConstReal(c->t_f64, n->attr.bn.epsilon), "");
	return LLVMBuildFDiv(c->b, LLVMConstReal(c->t_f64, 1.0),
	                     cg_intrinsic(c, "llvm.sqrt", c->t_f64, &v, 1), "");
}

/* (X, scale, B, running_mean, running_var) -> (Y, running_mean', running_var', batch_mean,
 * batch_var): batch statistics in the train step (and in an eval step with ONNX semantics of a
 * model in training mode), else the running ones passed on. */
static int emit_batch_norm(CgCtx *c, const IrNode *n)
{
	if (need_f32(c, n, 1))
		return -1;
	int batch = c->mode == IR_MODE_TRAIN || (c->eval_dropout && n->attr.bn.training);
	Bn u;
	bn_begin(c, &u, n, n->in[0], "bn");
	CgSrc sc, bi, rm, rv;
	cg_src_open(c, &sc, n->in[1]);
	cg_src_open(c, &bi, n->in[2]);
	cg_src_open(c, &rm, n->in[3]);
	cg_src_open(c, &rv, n->in[4]);
	CgLoop L;
	LLVMValueRef ch = cg_loop_begin(c, &L, u.t.lo, u.t.hi, 1, "ch");
	LLVMValueRef mean = ld_d(c, &rm, ch), var = ld_d(c, &rv, ch);
	if (batch) {
		acc_zero(c, &u.a1);
		bn_pass(c, &u, BN_SUM, ch);
		u.m = LLVMBuildFDiv(c->b, acc_total(c, &u.a1), u.cnt, "");
		acc_zero(c, &u.a1);
		bn_pass(c, &u, BN_VAR, ch);
		LLVMValueRef bvar = LLVMBuildFDiv(c->b, acc_total(c, &u.a1), u.cnt, "");
		/* the statistics as f32, as the node outputs them */
		LLVMValueRef fm = LLVMBuildFPTrunc(c->b, u.m, c->t_f32, "");
		LLVMValueRef fv = LLVMBuildFPTrunc(c->b, bvar, c->t_f32, "");
		LLVMValueRef mom = LLVMConstReal(c->t_f64, n->attr.bn.momentum);
		LLVMValueRef rest = LLVMConstReal(c->t_f64, 1.0 - (double)n->attr.bn.momentum);
		LLVMValueRef bm = LLVMBuildFPExt(c->b, fm, c->t_f64, "");
		LLVMValueRef bv = LLVMBuildFPExt(c->b, fv, c->t_f64, "");
		st_f32(c, n->out[1], ch,
		       LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, mean, mom, ""),
		                     LLVMBuildFMul(c->b, bm, rest, ""), ""));
		st_f32(c, n->out[2], ch,
		       LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, var, mom, ""),
		                     LLVMBuildFMul(c->b, bv, rest, ""), ""));
		mean = bm;
		var = bv;
	} else {
		st_f32(c, n->out[1], ch, mean);
		st_f32(c, n->out[2], ch, var);
	}
	st_f32(c, n->out[3], ch, mean);
	st_f32(c, n->out[4], ch, var);
	u.m = mean;
	u.inv = inv_std(c, n, var);
	u.sc = ld_d(c, &sc, ch);
	u.bi = ld_d(c, &bi, ch);
	bn_pass(c, &u, BN_NORM, ch);
	cg_loop_end(c, &L);
	cg_task_end(c, &u.t);
	cg_dst_finish(c, &u.t, n->out[0]);
	return 0;
}

/* (dY, X, scale, batch_mean, batch_var) -> (dX, dscale, dB): dB = sum dY, dscale = sum dY
 * xhat, dX = scale invstd / M (M dY - dB - xhat dscale). */
static int emit_batch_norm_grad(CgCtx *c, const IrNode *n)
{
	if (need_f32(c, n, 1))
		return -1;
	Bn u;
	bn_begin(c, &u, n, n->in[1], "bngrad");
	cg_src_open(c, &u.dy, n->in[0]);
	CgSrc sc, bm, bv;
	cg_src_open(c, &sc, n->in[2]);
	cg_src_open(c, &bm, n->in[3]);
	cg_src_open(c, &bv, n->in[4]);
	CgLoop L;
	LLVMValueRef ch = cg_loop_begin(c, &L, u.t.lo, u.t.hi, 1, "ch");
	u.inv = inv_std(c, n, ld_d(c, &bv, ch));
	u.m = ld_d(c, &bm, ch);
	acc_zero(c, &u.a1);
	acc_zero(c, &u.a2);
	bn_pass(c, &u, BNG_SUMS, ch);
	u.sdy = acc_total(c, &u.a1);
	u.sdyx = acc_total(c, &u.a2);
	st_f32(c, n->out[2], ch, u.sdy);
	st_f32(c, n->out[1], ch, u.sdyx);
	u.f = LLVMBuildFDiv(c->b, LLVMBuildFMul(c->b, ld_d(c, &sc, ch), u.inv, ""), u.cnt, "");
	bn_pass(c, &u, BNG_DX, ch);
	cg_loop_end(c, &L);
	cg_task_end(c, &u.t);
	cg_dst_finish(c, &u.t, n->out[0]);
	return 0;
}

/* ---- pool geometry ---- */

typedef struct Geo {
	int64_t P, H, W, OH, OW; /* planes (N C), input and output spatial dims */
	int kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
} Geo;

static Geo geo(const IrAttrPool *a, const IrType *x, const IrType *y)
{
	return (Geo){x->dims[0] * x->dims[1],
	             x->dims[2],
	             x->dims[3],
	             y->dims[2],
	             y->dims[3],
	             a->kernel[0],
	             a->kernel[1],
	             a->stride[0],
	             a->stride[1],
	             a->dilation[0],
	             a->dilation[1],
	             a->pad[0],
	             a->pad[1],
	             a->pad[2],
	             a->pad[3]};
}

/* Taps t < k of a window starting at start (dilation d) inside [lo, hi): their count. */
static int ntaps(int64_t start, int k, int d, int64_t lo, int64_t hi)
{
	int n = 0;
	for (int t = 0; t < k; t++)
		n += start + (int64_t)t * d >= lo && start + (int64_t)t * d < hi;
	return n;
}

/* A private constant i32 array (the average pools' divisor tables). */
static LLVMValueRef const_table(CgCtx *c, const int32_t *v, int64_t n)
{
	LLVMValueRef *e = malloc(sizeof(LLVMValueRef) * (size_t)n);
	if (!e)
		abort();
	for (int64_t i = 0; i < n; i++)
		e[i] = cg_i32(c, v[i]);
	LLVMTypeRef at = LLVMArrayType(c->t_i32, (unsigned)n);
	LLVMValueRef g = LLVMAddGlobal(c->mod, at, "pool.count");
	LLVMSetInitializer(g, LLVMConstArray(c->t_i32, e, (unsigned)n));
	LLVMSetGlobalConstant(g, 1);
	LLVMSetLinkage(g, LLVMPrivateLinkage);
	free(e);
	return g;
}

/* The divisor's factors per output row and column (ir_k_avg_pool's avg_count): taps inside X,
 * or with count_include_pad inside X and its pads. */
static void count_tables(CgCtx *c, const Geo *q, int include_pad, LLVMValueRef *th,
                         LLVMValueRef *tw)
{
	int64_t n = q->OH > q->OW ? q->OH : q->OW;
	int32_t *v = malloc(sizeof(int32_t) * (size_t)n);
	if (!v)
		abort();
	int64_t lo = include_pad ? -q->pt : 0, hi = include_pad ? q->H + q->pb : q->H;
	for (int64_t o = 0; o < q->OH; o++)
		v[o] = ntaps(o * q->sh - q->pt, q->kh, q->dh, lo, hi);
	*th = const_table(c, v, q->OH);
	lo = include_pad ? -q->pl : 0, hi = include_pad ? q->W + q->pr : q->W;
	for (int64_t o = 0; o < q->OW; o++)
		v[o] = ntaps(o * q->sw - q->pl, q->kw, q->dw, lo, hi);
	*tw = const_table(c, v, q->OW);
	free(v);
}

/* ---- windowed pools, a vector of output lanes along ow ---- */

typedef enum { POOL_MAX, POOL_MAX_CODES, POOL_AVG } PoolKind;

typedef struct Pool {
	const IrNode *n;
	const IrValue *src; /* the windows' input: X (in[0]; MaxPoolGrad: in[1]) */
	Geo q;
	PoolKind kind;
	int L, wide; /* output lanes per vector; elements of a wide load */
	CgTask t;
	CgSrc x;
	CgDst y;             /* f32 results (POOL_MAX, POOL_AVG) */
	LLVMValueRef out;    /* POOL_MAX_CODES: the output words */
	LLVMValueRef th, tw; /* POOL_AVG: divisor tables */
} Pool;

/* <n x i32> lanes a, a + 1, ... as i32 from the i64 value a. */
static LLVMValueRef lanes_from(CgCtx *c, LLVMValueRef a, int n)
{
	return LLVMBuildAdd(c->b, cg_splat(c, LLVMBuildTrunc(c->b, a, c->t_i32, ""), n),
	                    cg_iota(c, n), "");
}

/* Lanes v with lo <= v < hi (v <n x i32>, lo and hi constants). */
static LLVMValueRef in_range(CgCtx *c, LLVMValueRef v, int64_t lo, int64_t hi)
{
	int n = cg_lanes(v);
	LLVMValueRef d = LLVMBuildSub(c->b, v, cg_vi32(c, (int32_t)lo, n), "");
	return LLVMBuildICmp(c->b, LLVMIntULT, d, cg_vi32(c, (int32_t)(hi - lo), n), "");
}

/* Lanes sel[l] = stride l + off of v (any element type). */
static LLVMValueRef pick(CgCtx *c, LLVMValueRef v, int L, int stride, int off)
{
	LLVMValueRef idx[64];
	for (int l = 0; l < L; l++)
		idx[l] = cg_i32(c, (int64_t)stride * l + off);
	return LLVMBuildShuffleVector(c->b, v, LLVMGetUndef(LLVMTypeOf(v)),
	                              LLVMConstVector(idx, (unsigned)L), "");
}

/* The wide load of kernel row ih (an i64 value; the row may lie in the padding) of plane pl,
 * elements iw0 .. iw0 + wide - 1 (iw0 i64): f32 values (decoded if LNS) or, on codes, words
 * (<wide x i32>); *valid says which elements lie inside X. */
static LLVMValueRef wide_load(CgCtx *c, const Pool *p, LLVMValueRef pl, LLVMValueRef ih,
                              LLVMValueRef iw0, LLVMValueRef *valid)
{
	const Geo *q = &p->q;
	LLVMValueRef rowok = LLVMBuildICmp(c->b, LLVMIntULT, ih, cg_i64(c, q->H), "");
	LLVMValueRef m = LLVMBuildAnd(c->b, in_range(c, lanes_from(c, iw0, p->wide), 0, q->W),
	                              cg_splat(c, rowok, p->wide), "");
	*valid = m;
	LLVMValueRef e = add(c, mulk(c, add(c, mulk(c, pl, q->H), ih), q->W), iw0);
	const IrType *t = p->src->type;
	if (t->dt != IR_DT_LNS) {
		LLVMValueRef ptr = cg_gep(c, p->x.base, mulk(c, e, 4));
		return cg_vload(c, vty(c->t_f32, p->wide), ptr, m, 4);
	}
	int bytes = (int)ir_type_elem_size(t);
	LLVMTypeRef et = bytes == 1 ? c->t_i8 : c->t_i16;
	LLVMValueRef ptr = cg_gep(c, p->x.base, mulk(c, e, bytes));
	LLVMValueRef w = LLVMBuildZExt(c->b, cg_vload(c, vty(et, p->wide), ptr, m, (unsigned)bytes),
	                               vty(c->t_i32, p->wide), "");
	return p->kind == POOL_MAX_CODES ? w : cg_lns_decode(c, t->fmt, p->x.k, w);
}

/* Sign-magnitude key of words (<L x i32>): -mag for negative words, mag otherwise. */
static LLVMValueRef code_key(CgCtx *c, LnsFormat f, LLVMValueRef w, int L)
{
	LLVMValueRef mag = LLVMBuildAnd(c->b, w, cg_vi32(c, (1 << (f.bits - 1)) - 1, L), "");
	LLVMValueRef neg = LLVMBuildICmp(
	    c->b, LLVMIntNE, LLVMBuildAnd(c->b, w, cg_vi32(c, 1 << (f.bits - 1), L), ""),
	    cg_vi32(c, 0, L), "");
	return LLVMBuildSelect(c->b, neg, LLVMBuildNeg(c->b, mag, ""), mag, "");
}

/* The word of a key (none, INT32_MIN, and zero keys give word 0). */
static LLVMValueRef key_word(CgCtx *c, LnsFormat f, LLVMValueRef k, int L)
{
	LLVMValueRef zero = cg_vi32(c, 0, L);
	LLVMValueRef neg = LLVMBuildICmp(c->b, LLVMIntSLT, k, zero, "");
	LLVMValueRef nw =
	    LLVMBuildOr(c->b, LLVMBuildNeg(c->b, k, ""), cg_vi32(c, 1 << (f.bits - 1), L), "");
	LLVMValueRef none = LLVMBuildICmp(c->b, LLVMIntEQ, k, cg_vi32(c, INT32_MIN, L), "");
	return LLVMBuildSelect(c->b, LLVMBuildOr(c->b, none, LLVMBuildNot(c->b, neg, ""), ""),
	                       LLVMBuildSelect(c->b, none, zero, k, ""), nw, "");
}

/* The windows of output lanes ow0 .. ow0 + L - 1 of row (pl, oh): their maxima (values or
 * keys) or sums (double), and (at, POOL_MAX only) each window's first maximum as an offset in
 * the plane, -1 where the window holds only padding. */
static LLVMValueRef pool_reduce(CgCtx *c, const Pool *p, LLVMValueRef pl, LLVMValueRef oh,
                                LLVMValueRef ow0, LLVMValueRef *at)
{
	const Geo *q = &p->q;
	int L = p->L;
	LLVMBuilderRef b = c->b;
	LLVMValueRef iw0 = addk(c, mulk(c, ow0, q->sw), -q->pl);
	LLVMValueRef ih0 = addk(c, mulk(c, oh, q->sh), -q->pt);
	LnsFormat f = p->src->type->fmt;
	LLVMValueRef best = p->kind == POOL_MAX         ? cg_vf32(c, -INFINITY, L)
	                    : p->kind == POOL_MAX_CODES ? cg_vi32(c, INT32_MIN, L)
	                                                : dsplat(c, 0.0, L);
	/* lane l's first column: iw0 + sw l */
	LLVMValueRef off = cg_vi32(c, -1, L);
	LLVMValueRef iw =
	    LLVMBuildAdd(b, cg_splat(c, LLVMBuildTrunc(b, iw0, c->t_i32, ""), L),
	                 LLVMBuildMul(b, cg_iota(c, L), cg_vi32(c, q->sw, L), ""), "");
	for (int i = 0; i < q->kh; i++) {
		LLVMValueRef valid, ih = addk(c, ih0, (int64_t)i * q->dh);
		LLVMValueRef row = wide_load(c, p, pl, ih, iw0, &valid);
		LLVMValueRef rowoff = NULL;
		if (at)
			rowoff = cg_splat(c, LLVMBuildTrunc(b, mulk(c, ih, q->W), c->t_i32, ""), L);
		for (int j = 0; j < q->kw; j++) {
			LLVMValueRef x = pick(c, row, L, q->sw, j * q->dw);
			LLVMValueRef ok = pick(c, valid, L, q->sw, j * q->dw);
			if (p->kind == POOL_MAX) {
				LLVMValueRef gt = LLVMBuildAnd(
				    b, ok, LLVMBuildFCmp(b, LLVMRealOGT, x, best, ""), "");
				best = LLVMBuildSelect(b, gt, x, best, "");
				if (at) {
					LLVMValueRef o =
					    LLVMBuildAdd(b, LLVMBuildAdd(b, rowoff, iw, ""),
					                 cg_vi32(c, j * q->dw, L), "");
					off = LLVMBuildSelect(b, gt, o, off, "");
				}
			} else if (p->kind == POOL_MAX_CODES) {
				LLVMValueRef k = code_key(c, f, x, L);
				LLVMValueRef gt = LLVMBuildAnd(
				    b, ok, LLVMBuildICmp(b, LLVMIntSGT, k, best, ""), "");
				best = LLVMBuildSelect(b, gt, k, best, "");
			} else { /* padding lanes read 0.0, which leaves the sum as it is */
				best = LLVMBuildFAdd(b, best, fpext(c, x), "");
			}
		}
	}
	if (at)
		*at = off;
	return best;
}

/* Output lanes ow0 .. ow0 + L - 1 of row (pl, oh), those at or past OW masked off. */
static void pool_vector(CgCtx *c, Pool *p, LLVMValueRef pl, LLVMValueRef oh, LLVMValueRef ow0)
{
	const Geo *q = &p->q;
	int L = p->L;
	LLVMBuilderRef b = c->b;
	LLVMValueRef live = in_range(c, lanes_from(c, ow0, L), 0, q->OW);
	LnsFormat f = p->src->type->fmt;
	LLVMValueRef best = pool_reduce(c, p, pl, oh, ow0, NULL);
	LLVMValueRef e = add(c, mulk(c, add(c, mulk(c, pl, q->OH), oh), q->OW), ow0);
	if (p->kind == POOL_MAX_CODES) {
		int bytes = (int)ir_type_elem_size(p->n->out[0]->type);
		LLVMTypeRef et = bytes == 1 ? c->t_i8 : c->t_i16;
		LLVMValueRef w = LLVMBuildTrunc(b, key_word(c, f, best, L), vty(et, L), "");
		cg_vstore(c, w, cg_gep(c, p->out, mulk(c, e, bytes)), live, (unsigned)bytes);
		return;
	}
	LLVMValueRef y;
	if (p->kind == POOL_MAX) {
		LLVMValueRef none =
		    LLVMBuildFCmp(b, LLVMRealOEQ, best, cg_vf32(c, -INFINITY, L), "");
		y = LLVMBuildSelect(b, none, cg_vf32(c, 0.0f, L), best, "");
	} else {
		LLVMValueRef ph = LLVMBuildGEP2(b, c->t_i32, p->th, &oh, 1, "");
		LLVMValueRef ch = LLVMBuildLoad2(b, c->t_i32, ph, "");
		LLVMValueRef pw = LLVMBuildGEP2(b, c->t_i32, p->tw, &ow0, 1, "");
		LLVMValueRef cw = cg_vload(c, vty(c->t_i32, L), pw, live, 4);
		LLVMValueRef cnt = LLVMBuildMul(b, cw, cg_splat(c, ch, L), "");
		LLVMValueRef den = LLVMBuildSIToFP(b, cnt, vty(c->t_f64, L), "");
		LLVMValueRef z = LLVMBuildICmp(b, LLVMIntEQ, cnt, cg_vi32(c, 0, L), "");
		y = LLVMBuildSelect(b, z, cg_vf32(c, 0.0f, L),
		                    fptrunc(c, LLVMBuildFDiv(b, best, den, "")), "");
	}
	cg_vstore(c, y, cg_gep(c, p->y.base, mulk(c, e, 4)), live, 4);
	cg_task_track(c, &p->t, LLVMBuildSelect(b, live, y, cg_vf32(c, 0.0f, L), ""));
}

/* Lanes per vector (a power of two up to vw covering the output row) and the wide load's
 * elements. */
static void pool_lanes(CgCtx *c, Pool *p)
{
	p->L = 1;
	while (p->L < p->q.OW && p->L < c->vw)
		p->L <<= 1;
	p->wide = p->q.sw * (p->L - 1) + (p->q.kw - 1) * p->q.dw + 1;
}

static int emit_window_pool(CgCtx *c, const IrNode *n)
{
	Pool p = {
	    .n = n, .src = n->in[0], .q = geo(&n->attr.pool, n->in[0]->type, n->out[0]->type)};
	const Geo *q = &p.q;
	p.kind = n->op == IR_OP_AVG_POOL ? POOL_AVG : cg_on_codes(n) ? POOL_MAX_CODES : POOL_MAX;
	pool_lanes(c, &p);
	char name[64];
	cg_task_begin(c, &p.t, cg_task_name(c, n, "pool", name, sizeof name), q->P * q->OH,
	              q->OW * q->kh * q->kw, 1);
	cg_src_open(c, &p.x, n->in[0]);
	if (p.kind == POOL_MAX_CODES)
		p.out = cg_value_ptr(c, n->out[0]);
	else
		cg_dst_open(c, &p.y, n->out[0]);
	if (p.kind == POOL_AVG)
		count_tables(c, q, n->attr.pool.count_include_pad, &p.th, &p.tw);
	CgLoop Lr, Lw;
	LLVMValueRef r = cg_loop_begin(c, &Lr, p.t.lo, p.t.hi, 1, "row");
	LLVMValueRef pl = LLVMBuildUDiv(c->b, r, cg_i64(c, q->OH), "");
	LLVMValueRef oh = LLVMBuildURem(c->b, r, cg_i64(c, q->OH), "");
	LLVMValueRef ow0 = cg_loop_begin(c, &Lw, cg_i64(c, 0), cg_i64(c, q->OW), p.L, "ow");
	pool_vector(c, &p, pl, oh, ow0);
	cg_loop_end(c, &Lw);
	cg_loop_end(c, &Lr);
	cg_task_end(c, &p.t);
	if (p.kind == POOL_MAX_CODES)
		LLVMBuildStore(c->b, cg_value_k(c, n->in[0]), cg_kslot_ptr(c, n->out[0]));
	else
		cg_dst_finish(c, &p.t, n->out[0]);
	return 0;
}

/* ---- global pools: each plane one run ---- */

typedef struct Glob {
	const IrNode *n;
	int codes;
	CgSrc x;
	Acc a;               /* GlobalAveragePool */
	LLVMValueRef mv, ms; /* GlobalMaxPool: allocas of the running maxima (vector, tail) */
} Glob;

static void glob_at(CgCtx *c, Glob *u, LLVMValueRef e, int L)
{
	if (u->n->op == IR_OP_GLOBAL_AVG_POOL) {
		acc_add(c, &u->a, fpext(c, cg_src_load(c, &u->x, e, L)));
		return;
	}
	LLVMValueRef acc = L == 1 ? u->ms : u->mv, x;
	LLVMTypeRef t = vty(u->codes ? c->t_i32 : c->t_f32, L);
	LLVMValueRef best = LLVMBuildLoad2(c->b, t, acc, ""), gt;
	if (u->codes) {
		LnsFormat f = u->n->in[0]->type->fmt;
		x = code_key(c, f, cg_lns_load(c, f, u->x.base, e, L), L);
		gt = LLVMBuildICmp(c->b, LLVMIntSGT, x, best, "");
	} else {
		x = cg_src_load(c, &u->x, e, L);
		gt = LLVMBuildFCmp(c->b, LLVMRealOGT, x, best, "");
	}
	LLVMBuildStore(c->b, LLVMBuildSelect(c->b, gt, x, best, ""), acc);
}

/* The maximum over the lanes of the running maxima (keys, or values). */
static LLVMValueRef glob_max(CgCtx *c, const Glob *u, int lanes)
{
	LLVMTypeRef t = vty(u->codes ? c->t_i32 : c->t_f32, lanes);
	LLVMValueRef v = LLVMBuildLoad2(c->b, t, u->mv, "");
	LLVMValueRef s = lane0(c, LLVMBuildLoad2(c->b, vty(LLVMGetElementType(t), 1), u->ms, ""));
	LLVMValueRef m = cg_intrinsic(
	    c, u->codes ? "llvm.vector.reduce.smax" : "llvm.vector.reduce.fmax", t, &v, 1);
	LLVMValueRef a[2] = {m, s};
	return cg_intrinsic(c, u->codes ? "llvm.smax" : "llvm.maxnum", LLVMTypeOf(m), a, 2);
}

static int emit_global_pool(CgCtx *c, const IrNode *n)
{
	const IrType *tx = n->in[0]->type;
	int64_t P = tx->dims[0] * tx->dims[1], hw = tx->dims[2] * tx->dims[3];
	Glob u = {.n = n, .codes = n->op == IR_OP_GLOBAL_MAX_POOL && cg_on_codes(n)};
	int avg = n->op == IR_OP_GLOBAL_AVG_POOL, lanes = avg ? IR_SUM_LANES : c->vw;
	CgTask t;
	CgDst y;
	char name[64];
	cg_task_begin(c, &t, cg_task_name(c, n, "gpool", name, sizeof name), P, hw, 1);
	cg_src_open(c, &u.x, n->in[0]);
	if (!u.codes)
		cg_dst_open(c, &y, n->out[0]);
	CgLoop Lp, Lj;
	LLVMValueRef pl = cg_loop_begin(c, &Lp, t.lo, t.hi, 1, "plane");
	if (avg) {
		acc_zero(c, &u.a);
	} else {
		LLVMTypeRef et = u.codes ? c->t_i32 : c->t_f32;
		LLVMValueRef none = u.codes ? cg_i32(c, INT32_MIN) : cg_f32(c, -INFINITY);
		u.mv = cg_alloca_zero(c, vty(et, lanes));
		u.ms = cg_alloca_zero(c, vty(et, 1));
		LLVMBuildStore(c->b, cg_splat(c, none, lanes), u.mv);
		LLVMBuildStore(c->b, cg_splat(c, none, 1), u.ms);
	}
	LLVMValueRef base = mulk(c, pl, hw);
	int64_t vend = hw / lanes * lanes;
	if (vend) {
		LLVMValueRef j = cg_loop_begin(c, &Lj, cg_i64(c, 0), cg_i64(c, vend), lanes, "j");
		glob_at(c, &u, add(c, base, j), lanes);
		cg_loop_end(c, &Lj);
	}
	if (hw > vend) {
		LLVMValueRef j = cg_loop_begin(c, &Lj, cg_i64(c, vend), cg_i64(c, hw), 1, "j1");
		glob_at(c, &u, add(c, base, j), 1);
		cg_loop_end(c, &Lj);
	}
	if (u.codes) {
		LnsFormat f = tx->fmt;
		LLVMValueRef k = cg_splat(c, glob_max(c, &u, lanes), 1);
		cg_lns_store(c, f, cg_value_ptr(c, n->out[0]), pl, key_word(c, f, k, 1));
	} else {
		LLVMValueRef r;
		if (avg) {
			r = LLVMBuildFPTrunc(c->b,
			                     LLVMBuildFDiv(c->b, acc_total(c, &u.a),
			                                   LLVMConstReal(c->t_f64, (double)hw), ""),
			                     c->t_f32, "");
		} else {
			LLVMValueRef m = glob_max(c, &u, lanes);
			r = LLVMBuildSelect(
			    c->b, LLVMBuildFCmp(c->b, LLVMRealOEQ, m, cg_f32(c, -INFINITY), ""),
			    cg_f32(c, 0.0f), m, "");
		}
		cg_dst_store(c, &t, &y, pl, cg_splat(c, r, 1));
	}
	cg_loop_end(c, &Lp);
	cg_task_end(c, &t);
	if (u.codes)
		LLVMBuildStore(c->b, cg_value_k(c, n->in[0]), cg_kslot_ptr(c, n->out[0]));
	else
		cg_dst_finish(c, &t, n->out[0]);
	return 0;
}

/* ---- the pools' gradients: a scatter per plane ---- */

typedef struct Scat {
	const IrNode *n;
	Geo q;
	CgTask t;
	CgSrc dy;
	CgDst dx;
	LLVMValueRef pl, base; /* the plane and its first dX element */
} Scat;

/* dx[base + off] += g (f32 scalars; off an i64 value). */
static void scat_add(CgCtx *c, Scat *s, LLVMValueRef off, LLVMValueRef g)
{
	LLVMValueRef p = cg_gep(c, s->dx.base, mulk(c, add(c, s->base, off), 4));
	LLVMValueRef v = LLVMBuildLoad2(c->b, c->t_f32, p, "");
	LLVMSetAlignment(v, 4);
	LLVMSetAlignment(LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, v, g, ""), p), 4);
}

/* Whether tap position (ih, iw) (i64 values) lies inside X. */
static LLVMValueRef inside(CgCtx *c, const Geo *q, LLVMValueRef ih, LLVMValueRef iw)
{
	return LLVMBuildAnd(c->b, LLVMBuildICmp(c->b, LLVMIntULT, ih, cg_i64(c, q->H), ""),
	                    LLVMBuildICmp(c->b, LLVMIntULT, iw, cg_i64(c, q->W), ""), "");
}

/* Output lanes ow0 .. of row oh of a MaxPoolGrad: each window's first maximum in X found as
 * the forward pool finds it (x: its Pool), then each lane's dY added to it, lane by lane in
 * output order (the interpreter's order of additions). A lane past the row or with a window
 * of padding adds +0.0 to the plane's first element, which leaves it as it is (dX starts at
 * +0.0 and a sum that starts there never becomes -0.0). */
static void max_scatter(CgCtx *c, Scat *s, const Pool *x, LLVMValueRef oh, LLVMValueRef ow0)
{
	const Geo *q = &s->q;
	LLVMBuilderRef b = c->b;
	LLVMValueRef at, o0 = add(c, mulk(c, add(c, mulk(c, s->pl, q->OH), oh), q->OW), ow0);
	pool_reduce(c, x, s->pl, oh, ow0, &at);
	LLVMValueRef live = in_range(c, lanes_from(c, ow0, x->L), 0, q->OW);
	for (int l = 0; l < x->L; l++) {
		LLVMValueRef li = cg_i32(c, l);
		LLVMValueRef lv = LLVMBuildExtractElement(b, live, li, "");
		LLVMValueRef al = LLVMBuildExtractElement(b, at, li, "");
		LLVMValueRef ok =
		    LLVMBuildAnd(b, lv, LLVMBuildICmp(b, LLVMIntSGE, al, cg_i32(c, 0), ""), "");
		LLVMValueRef o = LLVMBuildSelect(b, lv, addk(c, o0, l), o0, "");
		LLVMValueRef g = LLVMBuildSelect(b, ok, lane0(c, cg_src_load(c, &s->dy, o, 1)),
		                                 cg_f32(c, 0.0f), "");
		LLVMValueRef off =
		    LLVMBuildSelect(b, ok, LLVMBuildSExt(b, al, c->t_i64, ""), cg_i64(c, 0), "");
		scat_add(c, s, off, g);
	}
}

/* Output (oh, ow) of an AvgPoolGrad: g = dY / count to every tap inside X. */
static void avg_scatter(CgCtx *c, Scat *s, LLVMValueRef oh, LLVMValueRef ow, LLVMValueRef g)
{
	const Geo *q = &s->q;
	CgLoop Li, Lj;
	LLVMValueRef i = cg_loop_begin(c, &Li, cg_i64(c, 0), cg_i64(c, q->kh), 1, "ti");
	LLVMValueRef ih = add(c, addk(c, mulk(c, oh, q->sh), -q->pt), mulk(c, i, q->dh));
	LLVMValueRef j = cg_loop_begin(c, &Lj, cg_i64(c, 0), cg_i64(c, q->kw), 1, "tj");
	LLVMValueRef iw = add(c, addk(c, mulk(c, ow, q->sw), -q->pl), mulk(c, j, q->dw));
	LLVMBasicBlockRef yes = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "tap");
	LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "tap_done");
	LLVMBuildCondBr(c->b, inside(c, q, ih, iw), yes, done);
	LLVMPositionBuilderAtEnd(c->b, yes);
	scat_add(c, s, add(c, mulk(c, ih, q->W), iw), g);
	LLVMBuildBr(c->b, done);
	LLVMPositionBuilderAtEnd(c->b, done);
	cg_loop_end(c, &Lj);
	cg_loop_end(c, &Li);
}

/* Calls fn(c, s, e, L) over the plane's elements e (relative to s->base): vectors, then one at
 * a time. */
static void plane_loop(CgCtx *c, Scat *s, void (*fn)(CgCtx *, Scat *, LLVMValueRef, int, void *),
                       void *u)
{
	int64_t hw = s->q.H * s->q.W, vend = hw / c->vw * c->vw;
	CgLoop L;
	if (vend) {
		LLVMValueRef e = cg_loop_begin(c, &L, cg_i64(c, 0), cg_i64(c, vend), c->vw, "e");
		fn(c, s, e, c->vw, u);
		cg_loop_end(c, &L);
	}
	if (hw > vend) {
		LLVMValueRef e = cg_loop_begin(c, &L, cg_i64(c, vend), cg_i64(c, hw), 1, "e1");
		fn(c, s, e, 1, u);
		cg_loop_end(c, &L);
	}
}

/* dX elements: set to *(LLVMValueRef *)u (an f32 scalar), or (u NULL) tracked for max |x|. */
static void plane_fill(CgCtx *c, Scat *s, LLVMValueRef e, int L, void *u)
{
	LLVMValueRef p = cg_gep(c, s->dx.base, mulk(c, add(c, s->base, e), 4));
	if (u) {
		LLVMSetAlignment(LLVMBuildStore(c->b, cg_splat(c, *(LLVMValueRef *)u, L), p), 4);
		return;
	}
	LLVMValueRef x = LLVMBuildLoad2(c->b, vty(c->t_f32, L), p, "");
	LLVMSetAlignment(x, 4);
	cg_task_track(c, &s->t, x);
}

/* A global average pool's gradient: every element of the plane 0 + dY / (H W). */
static int global_avg_grad(const Geo *q)
{
	return q->OH == 1 && q->OW == 1 && q->kh == q->H && q->kw == q->W && !q->pt && !q->pl &&
	       !q->pb && !q->pr;
}

/* (dY, X) -> dX (MaxPoolGrad) and (dY) -> dX (AvgPoolGrad). */
static int emit_pool_grad(CgCtx *c, const IrNode *n)
{
	int mx = n->op == IR_OP_MAX_POOL_GRAD;
	Scat s = {.n = n, .q = geo(&n->attr.pool, n->out[0]->type, n->in[0]->type)};
	const Geo *q = &s.q;
	char name[64];
	cg_task_begin(c, &s.t, cg_task_name(c, n, "poolgrad", name, sizeof name), q->P,
	              q->H * q->W + q->OH * q->OW * q->kh * q->kw, 1);
	cg_src_open(c, &s.dy, n->in[0]);
	cg_dst_open(c, &s.dx, n->out[0]);
	Pool x = {.n = n, .src = mx ? n->in[1] : NULL, .q = s.q, .kind = POOL_MAX};
	if (mx) {
		pool_lanes(c, &x);
		cg_src_open(c, &x.x, n->in[1]);
	}
	LLVMValueRef zero = cg_f32(c, 0.0f);
	CgLoop Lp, Lh, Lw;
	s.pl = cg_loop_begin(c, &Lp, s.t.lo, s.t.hi, 1, "plane");
	s.base = mulk(c, s.pl, q->H * q->W);
	if (!mx && global_avg_grad(q)) {
		LLVMValueRef g = LLVMBuildFDiv(c->b, ld_d(c, &s.dy, s.pl),
		                               LLVMConstReal(c->t_f64, (double)(q->H * q->W)), "");
		g = LLVMBuildFAdd(c->b, LLVMBuildFPTrunc(c->b, g, c->t_f32, ""), zero, "");
		plane_loop(c, &s, plane_fill, &g);
	} else {
		plane_loop(c, &s, plane_fill, &zero);
		LLVMValueRef th = NULL, tw = NULL;
		if (!mx)
			count_tables(c, q, n->attr.pool.count_include_pad, &th, &tw);
		LLVMValueRef oh = cg_loop_begin(c, &Lh, cg_i64(c, 0), cg_i64(c, q->OH), 1, "oh");
		LLVMValueRef ow =
		    cg_loop_begin(c, &Lw, cg_i64(c, 0), cg_i64(c, q->OW), mx ? x.L : 1, "ow");
		LLVMValueRef o = add(c, mulk(c, add(c, mulk(c, s.pl, q->OH), oh), q->OW), ow);
		if (mx) {
			max_scatter(c, &s, &x, oh, ow);
		} else {
			LLVMBuilderRef b = c->b;
			LLVMValueRef ch = LLVMBuildLoad2(
			    b, c->t_i32, LLVMBuildGEP2(b, c->t_i32, th, &oh, 1, ""), "");
			LLVMValueRef cw = LLVMBuildLoad2(
			    b, c->t_i32, LLVMBuildGEP2(b, c->t_i32, tw, &ow, 1, ""), "");
			LLVMValueRef cnt = LLVMBuildMul(b, ch, cw, "");
			LLVMBasicBlockRef yes =
			    LLVMAppendBasicBlockInContext(c->llctx, c->fn, "win");
			LLVMBasicBlockRef done =
			    LLVMAppendBasicBlockInContext(c->llctx, c->fn, "win_done");
			LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntNE, cnt, cg_i32(c, 0), ""), yes,
			                done);
			LLVMPositionBuilderAtEnd(b, yes);
			LLVMValueRef g = LLVMBuildFDiv(b, ld_d(c, &s.dy, o),
			                               LLVMBuildSIToFP(b, cnt, c->t_f64, ""), "");
			avg_scatter(c, &s, oh, ow, LLVMBuildFPTrunc(b, g, c->t_f32, ""));
			LLVMBuildBr(b, done);
			LLVMPositionBuilderAtEnd(b, done);
		}
		cg_loop_end(c, &Lw);
		cg_loop_end(c, &Lh);
	}
	plane_loop(c, &s, plane_fill, NULL);
	cg_loop_end(c, &Lp);
	cg_task_end(c, &s.t);
	cg_dst_finish(c, &s.t, n->out[0]);
	return 0;
}

/* ---- entry points for the table ---- */

int cg_emit_batch_norm(CgCtx *c, const IrNode *n)
{
	return emit_batch_norm(c, n);
}

int cg_emit_batch_norm_grad(CgCtx *c, const IrNode *n)
{
	return emit_batch_norm_grad(c, n);
}

int cg_emit_pool(CgCtx *c, const IrNode *n)
{
	if (n->op == IR_OP_GLOBAL_AVG_POOL || n->op == IR_OP_GLOBAL_MAX_POOL)
		return emit_global_pool(c, n);
	return emit_window_pool(c, n);
}

int cg_emit_pool_grad(CgCtx *c, const IrNode *n)
{
	return emit_pool_grad(c, n);
}
