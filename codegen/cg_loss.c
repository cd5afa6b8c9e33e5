/* cg_loss.c: kernels that reduce: Softmax and LogSoftmax (and their gradients), the losses
 * (softmax cross-entropy, MSE, and the cross-entropy gradient) and SumTo.
 *
 * These follow the interpreter's accumulation exactly: maxima in fp32, sums in double in the
 * interpreter's order (exp and log from libm, via llvm.exp/llvm.log; a SumTo over trailing
 * dims in the IR_SUM_LANES order, vectorised), one rounding to fp32 at the end, so their
 * results are the interpreter's bit for bit. Softmax groups (legacy axis
 * semantics included) and SumTo outputs are independent items split over tasks. The losses
 * and the cross-entropy gradient are small and run inline in the step function, which lets a
 * label out of range stop the step (return 2, the labels named in a->error_tensor).
 */
#include <math.h>

#include "codegen/cg.h"

/* ---- scalar helpers ---- */

static LLVMValueRef ld(CgCtx *c, const CgSrc *s, LLVMValueRef i)
{
	LLVMValueRef x = cg_src_load(c, s, i, 1);
	return LLVMBuildFPExt(c->b, LLVMBuildExtractElement(c->b, x, cg_i32(c, 0), ""), c->t_f64,
	                      "");
}

static LLVMValueRef ldf(CgCtx *c, const CgSrc *s, LLVMValueRef i)
{
	return LLVMBuildExtractElement(c->b, cg_src_load(c, s, i, 1), cg_i32(c, 0), "");
}

/* Stores the double y rounded to f32 as output element i. */
static void st(CgCtx *c, CgTask *t, const CgDst *d, LLVMValueRef i, LLVMValueRef y)
{
	LLVMValueRef f = LLVMBuildFPTrunc(c->b, y, c->t_f32, "");
	LLVMValueRef v = LLVMBuildInsertElement(c->b, LLVMGetUndef(LLVMVectorType(c->t_f32, 1)), f,
	                                        cg_i32(c, 0), "");
	cg_dst_store(c, t, d, i, v);
}

static LLVMValueRef dexp(CgCtx *c, LLVMValueRef x)
{
	return cg_intrinsic(c, "llvm.exp", c->t_f64, &x, 1);
}

static LLVMValueRef dlog(CgCtx *c, LLVMValueRef x)
{
	return cg_intrinsic(c, "llvm.log", c->t_f64, &x, 1);
}

static LLVMValueRef dc(CgCtx *c, double d)
{
	return LLVMConstReal(c->t_f64, d);
}

static LLVMValueRef load(CgCtx *c, LLVMValueRef a, LLVMTypeRef t)
{
	return LLVMBuildLoad2(c->b, t, a, "");
}

static void add_to(CgCtx *c, LLVMValueRef acc, LLVMValueRef x)
{
	LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, load(c, acc, c->t_f64), x, ""), acc);
}

static LLVMValueRef mul(CgCtx *c, LLVMValueRef a, int64_t k)
{
	return LLVMBuildMul(c->b, a, cg_i64(c, k), "");
}

static LLVMValueRef add(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildAdd(c->b, a, b, "");
}

/* ---- softmax family: groups of len elements inner apart ---- */

static void groups(const IrType *t, const IrAttrAxis *a, int64_t *outer, int64_t *len,
                   int64_t *inner)
{
	*outer = *len = *inner = 1;
	for (int i = 0; i < t->rank; i++) {
		if (i < a->axis)
			*outer *= t->dims[i];
		else if (i == a->axis || a->legacy)
			*len *= t->dims[i];
		else
			*inner *= t->dims[i];
	}
}

/* max (fp32) and sum of exp(x - max) (double, in order) over the group at base. */
static LLVMValueRef group_sumexp(CgCtx *c, const CgSrc *x, LLVMValueRef base, int64_t len,
                                 int64_t inner, LLVMValueRef *mx)
{
	LLVMValueRef m = cg_alloca_zero(c, c->t_f32), s = cg_alloca_zero(c, c->t_f64);
	LLVMBuildStore(c->b, cg_f32(c, -INFINITY), m);
	CgLoop L;
	LLVMValueRef l = cg_loop_begin(c, &L, cg_i64(c, 0), cg_i64(c, len), 1, "l");
	LLVMValueRef a[2] = {load(c, m, c->t_f32), ldf(c, x, add(c, base, mul(c, l, inner)))};
	LLVMBuildStore(c->b, cg_intrinsic(c, "llvm.maxnum", c->t_f32, a, 2), m);
	cg_loop_end(c, &L);
	*mx = LLVMBuildFPExt(c->b, load(c, m, c->t_f32), c->t_f64, "mx");
	l = cg_loop_begin(c, &L, cg_i64(c, 0), cg_i64(c, len), 1, "l");
	add_to(c, s,
	       dexp(c, LLVMBuildFSub(c->b, ld(c, x, add(c, base, mul(c, l, inner))), *mx, "")));
	cg_loop_end(c, &L);
	return load(c, s, c->t_f64);
}

/* Group g of (outer, len, inner): its first element. */
static LLVMValueRef group_base(CgCtx *c, LLVMValueRef g, int64_t len, int64_t inner)
{
	LLVMValueRef o = LLVMBuildUDiv(c->b, g, cg_i64(c, inner), "");
	LLVMValueRef i = LLVMBuildURem(c->b, g, cg_i64(c, inner), "");
	return add(c, mul(c, o, len * inner), i);
}

static int emit_softmax(CgCtx *c, const IrNode *n)
{
	int64_t outer, len, inner;
	groups(n->in[0]->type, &n->attr.axis, &outer, &len, &inner);
	CgTask t;
	CgSrc x;
	CgDst y;
	char name[64];
	cg_task_begin(c, &t, cg_task_name(c, n, "softmax", name, sizeof name), outer * inner, len,
	              1);
	cg_src_open(c, &x, n->in[0]);
	cg_dst_open(c, &y, n->out[0]);
	CgLoop G, L;
	LLVMValueRef g = cg_loop_begin(c, &G, t.lo, t.hi, 1, "g");
	LLVMValueRef base = group_base(c, g, len, inner), mx;
	LLVMValueRef s = group_sumexp(c, &x, base, len, inner, &mx), ls = dlog(c, s);
	LLVMValueRef l = cg_loop_begin(c, &L, cg_i64(c, 0), cg_i64(c, len), 1, "l");
	LLVMValueRef e = add(c, base, mul(c, l, inner));
	LLVMValueRef d = LLVMBuildFSub(c->b, ld(c, &x, e), mx, "");
	LLVMValueRef v = n->op == IR_OP_SOFTMAX ? LLVMBuildFDiv(c->b, dexp(c, d), s, "")
	                                        : LLVMBuildFSub(c->b, d, ls, "");
	st(c, &t, &y, e, v);
	cg_loop_end(c, &L);
	cg_loop_end(c, &G);
	cg_task_end(c, &t);
	cg_dst_finish(c, &t, n->out[0]);
	return 0;
}

/* Softmax: dX = Y (dY - sum(dY Y)); LogSoftmax: dX = dY - exp(Y) sum(dY). */
static int emit_softmax_grad(CgCtx *c, const IrNode *n)
{
	int64_t outer, len, inner;
	int logsm = n->op == IR_OP_LOG_SOFTMAX_GRAD;
	groups(n->in[0]->type, &n->attr.axis, &outer, &len, &inner);
	CgTask t;
	CgSrc dy, y;
	CgDst dx;
	char name[64];
	cg_task_begin(c, &t, cg_task_name(c, n, "smgrad", name, sizeof name), outer * inner, len,
	              1);
	cg_src_open(c, &dy, n->in[0]);
	cg_src_open(c, &y, n->in[1]);
	cg_dst_open(c, &dx, n->out[0]);
	CgLoop G, L;
	LLVMValueRef g = cg_loop_begin(c, &G, t.lo, t.hi, 1, "g");
	LLVMValueRef base = group_base(c, g, len, inner), s = cg_alloca_zero(c, c->t_f64);
	LLVMValueRef l = cg_loop_begin(c, &L, cg_i64(c, 0), cg_i64(c, len), 1, "l");
	LLVMValueRef e = add(c, base, mul(c, l, inner));
	add_to(c, s, LLVMBuildFMul(c->b, ld(c, &dy, e), logsm ? dc(c, 1.0) : ld(c, &y, e), ""));
	cg_loop_end(c, &L);
	LLVMValueRef sum = load(c, s, c->t_f64);
	l = cg_loop_begin(c, &L, cg_i64(c, 0), cg_i64(c, len), 1, "l");
	e = add(c, base, mul(c, l, inner));
	LLVMValueRef gd = ld(c, &dy, e), v = ld(c, &y, e);
	LLVMValueRef r = logsm
	                     ? LLVMBuildFSub(c->b, gd, LLVMBuildFMul(c->b, dexp(c, v), sum, ""), "")
	                     : LLVMBuildFMul(c->b, v, LLVMBuildFSub(c->b, gd, sum, ""), "");
	st(c, &t, &dx, e, r);
	cg_loop_end(c, &L);
	cg_loop_end(c, &G);
	cg_task_end(c, &t);
	cg_dst_finish(c, &t, n->out[0]);
	return 0;
}

/* ---- losses, inline in the step function ---- */

/* The label of row r, checked to lie in [0, C). */
static LLVMValueRef label(CgCtx *c, const IrValue *lv, LLVMValueRef r, int64_t C)
{
	LLVMValueRef p = cg_gep(c, cg_value_ptr(c, lv), mul(c, r, 8));
	LLVMValueRef lab = LLVMBuildLoad2(c->b, c->t_i64, p, "label");
	LLVMValueRef bad = LLVMBuildOr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, lab, cg_i64(c, 0), ""),
	                               LLVMBuildICmp(c->b, LLVMIntSGE, lab, cg_i64(c, C), ""), "");
	cg_check_input(c, bad, lv);
	return lab;
}

/* Stores the scalar loss total / count (0 when count is 0). */
static void store_mean(CgCtx *c, const IrValue *out, LLVMValueRef total, int64_t count)
{
	CgTask t;
	CgDst d;
	cg_inline_begin(c, &t);
	cg_dst_open(c, &d, out);
	LLVMValueRef v = count ? LLVMBuildFDiv(c->b, total, dc(c, (double)count), "") : dc(c, 0.0);
	st(c, &t, &d, cg_i64(c, 0), v);
	cg_inline_finish(c, &t, out);
}

/* mean over rows of logsumexp(logits[r]) - logits[r, label[r]] */
static int emit_xent(CgCtx *c, const IrNode *n)
{
	int64_t N = n->in[0]->type->dims[0], C = n->in[0]->type->dims[1];
	CgSrc x;
	cg_src_open(c, &x, n->in[0]);
	LLVMValueRef total = cg_alloca_zero(c, c->t_f64);
	CgLoop R;
	LLVMValueRef r = cg_loop_begin(c, &R, cg_i64(c, 0), cg_i64(c, N), 1, "r");
	LLVMValueRef lab = label(c, n->in[1], r, C), base = mul(c, r, C), mx;
	LLVMValueRef s = group_sumexp(c, &x, base, C, 1, &mx);
	LLVMValueRef v = LLVMBuildFAdd(c->b, mx, dlog(c, s), "");
	add_to(c, total, LLVMBuildFSub(c->b, v, ld(c, &x, add(c, base, lab)), ""));
	cg_loop_end(c, &R);
	store_mean(c, n->out[0], load(c, total, c->t_f64), N);
	return 0;
}

/* (softmax(logits) - onehot(label)) / N */
static int emit_xent_grad(CgCtx *c, const IrNode *n)
{
	int64_t N = n->in[0]->type->dims[0], C = n->in[0]->type->dims[1];
	CgSrc x;
	CgDst g;
	CgTask t;
	cg_inline_begin(c, &t);
	cg_src_open(c, &x, n->in[0]);
	cg_dst_open(c, &g, n->out[0]);
	CgLoop R, K;
	LLVMValueRef r = cg_loop_begin(c, &R, cg_i64(c, 0), cg_i64(c, N), 1, "r");
	LLVMValueRef lab = label(c, n->in[1], r, C), base = mul(c, r, C), mx;
	LLVMValueRef s = group_sumexp(c, &x, base, C, 1, &mx);
	LLVMValueRef k = cg_loop_begin(c, &K, cg_i64(c, 0), cg_i64(c, C), 1, "c");
	LLVMValueRef e = add(c, base, k);
	LLVMValueRef p =
	    LLVMBuildFDiv(c->b, dexp(c, LLVMBuildFSub(c->b, ld(c, &x, e), mx, "")), s, "");
	LLVMValueRef hot =
	    LLVMBuildUIToFP(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, k, lab, ""), c->t_f64, "");
	st(c, &t, &g, e,
	   LLVMBuildFDiv(c->b, LLVMBuildFSub(c->b, p, hot, ""), dc(c, (double)N), ""));
	cg_loop_end(c, &K);
	cg_loop_end(c, &R);
	cg_inline_finish(c, &t, n->out[0]);
	return 0;
}

/* mean((p - t)^2), summed in double in order */
static int emit_mse(CgCtx *c, const IrNode *n)
{
	int64_t m = n->in[0]->type->numel;
	CgSrc p, t;
	cg_src_open(c, &p, n->in[0]);
	cg_src_open(c, &t, n->in[1]);
	LLVMValueRef s = cg_alloca_zero(c, c->t_f64);
	CgLoop L;
	LLVMValueRef i = cg_loop_begin(c, &L, cg_i64(c, 0), cg_i64(c, m), 1, "i");
	LLVMValueRef d = LLVMBuildFSub(c->b, ld(c, &p, i), ld(c, &t, i), "");
	add_to(c, s, LLVMBuildFMul(c->b, d, d, ""));
	cg_loop_end(c, &L);
	store_mean(c, n->out[0], load(c, s, c->t_f64), m);
	return 0;
}

/* ---- SumTo: numpy reduction to the output shape, each output summed in double in the
 * input's element order ---- */

typedef struct Red {
	int r;
	int64_t size[IR_MAX_RANK], xs[IR_MAX_RANK]; /* collapsed input dims and strides */
	int kept[IR_MAX_RANK];
} Red;

/* Dims of the input (unit dims dropped), kept or reduced, neighbours of a kind merged. */
static void red_dims(const IrType *tx, const IrType *to, Red *R)
{
	int rx = tx->rank, ro = to->rank;
	int64_t xs = 1, sx[IR_MAX_RANK];
	for (int d = rx - 1; d >= 0; d--) {
		sx[d] = xs;
		xs *= tx->dims[d];
	}
	R->r = 0;
	for (int d = 0; d < rx; d++) {
		int od = d - (rx - ro);
		int kept = od >= 0 && to->dims[od] != 1;
		if (tx->dims[d] == 1)
			continue;
		if (R->r && R->kept[R->r - 1] == kept) {
			R->size[R->r - 1] *= tx->dims[d];
			R->xs[R->r - 1] = sx[d];
			continue;
		}
		R->size[R->r] = tx->dims[d];
		R->xs[R->r] = sx[d];
		R->kept[R->r++] = kept;
	}
}

/* acc += x over the reduced dims from level d on, at offset off, L lanes (consecutive kept
 * elements) at a time. */
static void red_loops(CgCtx *c, const Red *R, int d, const CgSrc *x, LLVMValueRef off,
                      LLVMValueRef acc, int L)
{
	while (d < R->r && R->kept[d])
		d++;
	if (d == R->r) {
		LLVMTypeRef vd = LLVMVectorType(c->t_f64, (unsigned)L);
		LLVMValueRef v = LLVMBuildFPExt(c->b, cg_src_load(c, x, off, L), vd, "");
		LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, load(c, acc, vd), v, ""), acc);
		return;
	}
	CgLoop lp;
	LLVMValueRef i = cg_loop_begin(c, &lp, cg_i64(c, 0), cg_i64(c, R->size[d]), 1, "red");
	red_loops(c, R, d + 1, x, add(c, off, mul(c, i, R->xs[d])), acc, L);
	cg_loop_end(c, &lp);
}

/* The same when the innermost group is reduced: the loops over the other reduced groups, and
 * along each contiguous run of the innermost one IR_SUM_LANES lanes (the interpreter's order,
 * ir.h) into accv, the rest into accs (<1 x double>). */
static void run_loops(CgCtx *c, const Red *R, int d, const CgSrc *x, LLVMValueRef off,
                      LLVMValueRef accv, LLVMValueRef accs)
{
	while (d < R->r - 1 && R->kept[d])
		d++;
	CgLoop lp;
	if (d < R->r - 1) {
		LLVMValueRef i = cg_loop_begin(c, &lp, cg_i64(c, 0), cg_i64(c, R->size[d]), 1, "red");
		run_loops(c, R, d + 1, x, add(c, off, mul(c, i, R->xs[d])), accv, accs);
		cg_loop_end(c, &lp);
		return;
	}
	int64_t run = R->size[d], whole = run / IR_SUM_LANES * IR_SUM_LANES;
	for (int pass = 0; pass < 2; pass++) {
		int L = pass ? 1 : IR_SUM_LANES;
		LLVMValueRef acc = pass ? accs : accv;
		LLVMTypeRef vd = LLVMVectorType(c->t_f64, (unsigned)L);
		if (pass ? whole == run : whole == 0)
			continue;
		LLVMValueRef j = cg_loop_begin(c, &lp, cg_i64(c, pass ? whole : 0),
		                               cg_i64(c, pass ? run : whole), L, "run");
		LLVMValueRef v = LLVMBuildFPExt(c->b, cg_src_load(c, x, add(c, off, j), L), vd, "");
		LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, load(c, acc, vd), v, ""), acc);
		cg_loop_end(c, &lp);
	}
}

/* Whether the innermost group is reduced over runs of more than one element. */
static int reduces_runs(const Red *R)
{
	return R->r && !R->kept[R->r - 1] && R->size[R->r - 1] > 1;
}

/* Outputs [o, o + L) of one row of the innermost kept dim (or single outputs): each summed in
 * double, lane by lane in the interpreter's order, rounded once. */
static void sum_at(CgCtx *c, CgTask *t, const Red *R, const CgSrc *x, const CgDst *y,
                   LLVMValueRef o, int L)
{
	LLVMValueRef off = cg_i64(c, 0), idx = o;
	for (int d = R->r - 1; d >= 0; d--) {
		if (!R->kept[d])
			continue;
		LLVMValueRef q = LLVMBuildURem(c->b, idx, cg_i64(c, R->size[d]), "");
		off = add(c, off, mul(c, q, R->xs[d]));
		idx = LLVMBuildUDiv(c->b, idx, cg_i64(c, R->size[d]), "");
	}
	LLVMValueRef acc = cg_alloca_zero(c, LLVMVectorType(c->t_f64, (unsigned)L)), s;
	if (reduces_runs(R)) {
		LLVMTypeRef vd = LLVMVectorType(c->t_f64, IR_SUM_LANES);
		LLVMValueRef accv = cg_alloca_zero(c, vd);
		run_loops(c, R, 0, x, off, accv, acc);
		LLVMValueRef a[2] = {LLVMBuildExtractElement(c->b, load(c, acc, LLVMVectorType(c->t_f64, 1)),
		                                             cg_i32(c, 0), ""),
		                     load(c, accv, vd)};
		s = cg_intrinsic(c, "llvm.vector.reduce.fadd", vd, a, 2);
		s = LLVMBuildInsertElement(c->b, LLVMGetUndef(LLVMVectorType(c->t_f64, 1)), s,
		                           cg_i32(c, 0), "");
	} else {
		red_loops(c, R, 0, x, off, acc, L);
		s = load(c, acc, LLVMVectorType(c->t_f64, (unsigned)L));
	}
	cg_dst_store(c, t, y, o,
	             LLVMBuildFPTrunc(c->b, s, LLVMVectorType(c->t_f32, (unsigned)L), ""));
}

static int emit_sum_to(CgCtx *c, const IrNode *n)
{
	Red R;
	red_dims(n->in[0]->type, n->out[0]->type, &R);
	int64_t mo = n->out[0]->type->numel, red = n->in[0]->type->numel / (mo ? mo : 1);
	/* vectors along the innermost dim when it is kept and contiguous in the input */
	int64_t inner = R.r && R.kept[R.r - 1] && R.xs[R.r - 1] == 1 ? R.size[R.r - 1] : 1;
	CgTask t;
	CgSrc x;
	CgDst y;
	char name[64];
	cg_task_begin(c, &t, cg_task_name(c, n, "sumto", name, sizeof name), mo / inner,
	              red * inner, 1);
	cg_src_open(c, &x, n->in[0]);
	cg_dst_open(c, &y, n->out[0]);
	CgLoop L, J;
	LLVMValueRef row = cg_loop_begin(c, &L, t.lo, t.hi, 1, "row");
	LLVMValueRef o0 = mul(c, row, inner);
	int64_t vend = inner / c->vw * c->vw;
	if (vend) {
		LLVMValueRef j = cg_loop_begin(c, &J, cg_i64(c, 0), cg_i64(c, vend), c->vw, "j");
		sum_at(c, &t, &R, &x, &y, add(c, o0, j), c->vw);
		cg_loop_end(c, &J);
	}
	LLVMValueRef j = cg_loop_begin(c, &J, cg_i64(c, vend), cg_i64(c, inner), 1, "j1");
	sum_at(c, &t, &R, &x, &y, add(c, o0, j), 1);
	cg_loop_end(c, &J);
	cg_loop_end(c, &L);
	cg_task_end(c, &t);
	cg_dst_finish(c, &t, n->out[0]);
	return 0;
}

/* ---- entry points for the table ---- */

int cg_emit_softmax(CgCtx *c, const IrNode *n)
{
	return emit_softmax(c, n);
}

int cg_emit_softmax_grad(CgCtx *c, const IrNode *n)
{
	return emit_softmax_grad(c, n);
}

int cg_emit_xent(CgCtx *c, const IrNode *n)
{
	return emit_xent(c, n);
}

int cg_emit_xent_grad(CgCtx *c, const IrNode *n)
{
	return emit_xent_grad(c, n);
}

int cg_emit_mse(CgCtx *c, const IrNode *n)
{
	return emit_mse(c, n);
}

int cg_emit_sum_to(CgCtx *c, const IrNode *n)
{
	return emit_sum_to(c, n);
}
