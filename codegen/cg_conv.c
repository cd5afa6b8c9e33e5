/* cg_conv.c: convolutions as implicit GEMMs: Conv, ConvGradX and ConvGradW described as GEMMs
 * whose operands are gather views of the tensors, and the index arithmetic that packs them.
 *
 * cg_gemm.c runs every convolution on its GEMM machinery (packing with LNS decode-on-pack,
 * microkernels, row-buffer epilogues with bias, Relu, encode and the fused Madam update); this
 * file says what the GEMM is and how to read its operands. With k = (c, kh, kw) and p = (oh, ow),
 * per image n and group g (NCHW; W is [M, C/group, kh, kw]):
 *   Conv       Y[n,g][m][p] = sum_k W[g][m][k] X[n,g][c][oh*sh - pt + kh*dh][ow*sw - pl + kw*dw]
 *   ConvGradX  dX[n,g][c][(ih,iw)] = sum over (m, kh, kw) of W[g][m][c][kh][kw]
 *              dY[n,g][m][(ih + pt - kh*dh) / sh][(iw + pl - kw*dw) / sw], where those divide
 *              exactly and fall inside dY: a gather on dY, never a col2im scatter;
 *   ConvGradW  dW[g][m][k] = sum over (n, p) of dY[n,g][m][p] X-column[n,g][k][p]: its rows are
 *              the weight's rows, so the Madam update fuses into its epilogue as for a Gemm.
 * The output matrices of each are stored one after another in the output's own layout. An
 * operand is a CgView (cg.h): the source index is affine in the digits of the panel position o
 * and of the reduction index k, plus a range check on two spatial coordinates (padding reads
 * zero) and, for ConvGradX with stride > 1, a divisibility check. Nothing like an im2col
 * matrix exists outside the packed panels, which hold decoded f32 values as for any GEMM.
 *
 * Loads. A vector of lanes runs along o (a panel's row, one k at a time) or along k (T x T
 * blocks transposed in registers by cg_gemm.c). When the innermost digit of that side steps
 * through contiguous elements (ow with stride 1, a flat index), the lanes fall into a few runs
 * (output rows, images) and each run is one masked vector load, its mask the run's lanes and
 * the padding; cg_gemm.c picks the side with the fewest runs. Otherwise (strided windows,
 * transposed strides, tiny rows) the vector is a gather with per-lane indices: native for f32,
 * and for LNS bytes a gather of clamped (always valid) indices that LLVM turns into scalar
 * loads, zeroed afterwards. Indices are 32-bit vectors: tensors stay below 2^31 elements.
 *
 * Depthwise (group = C = M) runs on the same path: each group is a GEMM of one output row
 * (M = 1), so the microkernel uses one row of its MR and the layer runs at a fraction of the
 * GEMM's rate. A direct kernel would do better there; the example networks have no depthwise
 * layer, and correctness (checked by the tests) comes first.
 */
#include <string.h>

#include "codegen/cg.h"

/* ---- the views of the three ops ---- */

static void digit(CgView *v, int side, int64_t radix, int64_t cf, int64_t ch, int64_t cw)
{
	if (radix == 1)
		return; /* always zero */
	v->d[side][v->nd[side]++] = (CgDigit){radix, cf, ch, cw};
}

static void plain(CgView *v)
{
	memset(v, 0, sizeof *v);
	v->H = v->W = v->qh = v->qw = 1;
}

/* An X-column view: position p = (oh, ow) on side ps, window (c, kh, kw) on the other,
 * after the extra outer digit (image n for ConvGradW: radix nimg, stride ximg) on side ps. */
static void xcol(CgView *v, const IrAttrConv *a, const IrType *x, const int64_t *ohw, int ps,
		 int64_t nimg, int64_t ximg)
{
	int64_t H = x->dims[2], W = x->dims[3], cg = x->dims[1] / a->group;
	plain(v);
	v->H = H, v->W = W, v->h0 = -a->pad[0], v->w0 = -a->pad[1];
	digit(v, 1 - ps, cg, H * W, 0, 0);
	digit(v, 1 - ps, a->kernel[0], 0, a->dilation[0], 0);
	digit(v, 1 - ps, a->kernel[1], 0, 0, a->dilation[1]);
	digit(v, ps, nimg, ximg, 0, 0);
	digit(v, ps, ohw[0], 0, a->stride[0], 0);
	digit(v, ps, ohw[1], 0, 0, a->stride[1]);
}

static void conv_fwd(const IrNode *n, CgConvGemm *s)
{
	const IrAttrConv *a = &n->attr.conv;
	const IrType *x = n->in[0]->type, *w = n->in[1]->type, *y = n->out[0]->type;
	int64_t G = a->group, mg = w->dims[0] / G, K = w->dims[1] * w->dims[2] * w->dims[3];
	*s = (CgConvGemm){.M = mg, .N = y->dims[2] * y->dims[3], .K = K, .nb = x->dims[0] * G,
			  .group = G, .bias = n->nin > 2 ? n->in[2] : NULL};
	s->a = (CgConvOpnd){.v = n->in[1], .mat = mg * K, .nmat = G};
	plain(&s->a.view);
	digit(&s->a.view, 0, mg, K, 0, 0);
	digit(&s->a.view, 1, K, 1, 0, 0);
	s->b = (CgConvOpnd){.v = n->in[0], .mat = x->dims[1] / G * x->dims[2] * x->dims[3],
			    .nmat = s->nb};
	xcol(&s->b.view, a, x, y->dims + 2, 0, 1, 0);
}

static void conv_grad_x(const IrNode *n, CgConvGemm *s)
{
	const IrAttrConv *a = &n->attr.conv;
	const IrType *dy = n->in[0]->type, *w = n->in[1]->type, *dx = n->out[0]->type;
	int64_t G = a->group, mg = w->dims[0] / G, cg = w->dims[1], khw = w->dims[2] * w->dims[3];
	int64_t ohw = dy->dims[2] * dy->dims[3];
	*s = (CgConvGemm){.M = cg, .N = dx->dims[2] * dx->dims[3], .K = mg * khw,
			  .nb = dx->dims[0] * G, .group = G};
	CgView *v = &s->a.view;
	s->a = (CgConvOpnd){.v = n->in[1], .mat = mg * cg * khw, .nmat = G};
	plain(v);
	digit(v, 0, cg, khw, 0, 0);
	digit(v, 1, mg, cg * khw, 0, 0);
	digit(v, 1, khw, 1, 0, 0);
	v = &s->b.view;
	s->b = (CgConvOpnd){.v = n->in[0], .mat = mg * ohw, .nmat = s->nb};
	plain(v);
	v->H = dy->dims[2], v->W = dy->dims[3], v->h0 = a->pad[0], v->w0 = a->pad[1];
	v->qh = a->stride[0], v->qw = a->stride[1];
	digit(v, 0, dx->dims[2], 0, 1, 0);
	digit(v, 0, dx->dims[3], 0, 0, 1);
	digit(v, 1, mg, ohw, 0, 0);
	digit(v, 1, a->kernel[0], 0, -a->dilation[0], 0);
	digit(v, 1, a->kernel[1], 0, 0, -a->dilation[1]);
}

static void conv_grad_w(const IrNode *n, CgConvGemm *s)
{
	const IrAttrConv *a = &n->attr.conv;
	const IrType *dy = n->in[0]->type, *x = n->in[1]->type, *dw = n->out[0]->type;
	int64_t G = a->group, mg = dw->dims[0] / G, ohw = dy->dims[2] * dy->dims[3];
	int64_t nimg = x->dims[0];
	*s = (CgConvGemm){.M = mg, .N = dw->dims[1] * dw->dims[2] * dw->dims[3], .K = nimg * ohw,
			  .nb = G, .group = G};
	s->a = (CgConvOpnd){.v = n->in[0], .mat = mg * ohw, .nmat = G};
	plain(&s->a.view);
	digit(&s->a.view, 0, mg, ohw, 0, 0);
	digit(&s->a.view, 1, nimg, dy->dims[1] * ohw, 0, 0);
	digit(&s->a.view, 1, ohw, 1, 0, 0);
	s->b = (CgConvOpnd){.v = n->in[1], .mat = x->dims[1] / G * x->dims[2] * x->dims[3],
			    .nmat = G};
	xcol(&s->b.view, a, x, dy->dims + 2, 1, nimg, x->dims[1] * x->dims[2] * x->dims[3]);
}

int cg_conv_gemm(IrGraph *g, const IrNode *n, CgConvGemm *s)
{
	if (n->op == IR_OP_CONV)
		conv_fwd(n, s);
	else if (n->op == IR_OP_CONV_GRAD_X)
		conv_grad_x(n, s);
	else
		conv_grad_w(n, s);
	for (int i = 0; i < n->nin + n->nout; i++) {
		const IrValue *v = i < n->nin ? n->in[i] : n->out[i - n->nin];
		if (v->type->numel < (int64_t)1 << 31)
			continue;
		if (g)
			ir_node_error(g, n, IR_ERR_UNSUPPORTED, "tensor '%s' has %lld elements; the "
				      "llvm backend's convolutions index up to 2^31 - 1", v->name,
				      (long long)v->type->numel);
		return -1;
	}
	return 0;
}

int cg_view_plain(const CgView *v, int64_t *so, int64_t *sk)
{
	if (v->H != 1 || v->W != 1 || v->f0 || v->h0 || v->w0 || v->qh != 1 || v->qw != 1 ||
	    v->nd[0] > 1 || v->nd[1] > 1)
		return 0;
	for (int s = 0; s < 2; s++)
		if (v->nd[s] && (v->d[s][0].ch || v->d[s][0].cw))
			return 0;
	*so = v->nd[0] ? v->d[0][0].cf : 0;
	*sk = v->nd[1] ? v->d[1][0].cf : 0;
	return 1;
}

/* The innermost digit of side dir when it steps through contiguous elements: through the flat
 * index (cf 1) or along a row (cw 1, no divisor). */
static const CgDigit *unit_digit(const CgView *v, int dir)
{
	if (!v->nd[dir])
		return NULL;
	const CgDigit *u = &v->d[dir][v->nd[dir] - 1];
	int flat = u->cf == 1 && !u->ch && !u->cw;
	int row = !u->cf && !u->ch && u->cw == 1 && v->qw == 1;
	return flat || row ? u : NULL;
}

int cg_view_runs(const CgView *v, int dir, int n)
{
	const CgDigit *u = unit_digit(v, dir);
	if (!u)
		return 0;
	int64_t runs = (n + u->radix - 2) / u->radix + 1;
	return runs <= CG_VIEW_RUNS ? (int)runs : 0;
}

/* ---- index arithmetic (scalars are i64, lane vectors <n x i32>) ---- */

static LLVMValueRef konst(CgCtx *c, LLVMValueRef like, int64_t x)
{
	LLVMTypeRef t = LLVMTypeOf(like);
	if (LLVMGetTypeKind(t) != LLVMVectorTypeKind)
		return LLVMConstInt(t, (unsigned long long)x, 1);
	return cg_vi32(c, (int32_t)x, (int)LLVMGetVectorSize(t));
}

static LLVMValueRef add(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildAdd(c->b, a, b, "");
}

static LLVMValueRef addk(CgCtx *c, LLVMValueRef a, int64_t k)
{
	return k ? add(c, a, konst(c, a, k)) : a;
}

static LLVMValueRef mulk(CgCtx *c, LLVMValueRef a, int64_t k)
{
	return k == 1 ? a : LLVMBuildMul(c->b, a, konst(c, a, k), "");
}

/* acc + x * k, skipping what is zero. */
static LLVMValueRef fma_k(CgCtx *c, LLVMValueRef acc, LLVMValueRef x, int64_t k)
{
	return k ? add(c, acc, mulk(c, x, k)) : acc;
}

/* The parts (f, h, w) of digits [0, nd) of side s at position pos (non-negative; the
 * outermost digit is not reduced, so positions past the extent give large, masked digits). */
static void parts(CgCtx *c, const CgView *v, int s, int nd, LLVMValueRef pos, LLVMValueRef *f,
		  LLVMValueRef *h, LLVMValueRef *w)
{
	LLVMValueRef zero = konst(c, pos, 0), p = pos;
	*f = *h = *w = zero;
	for (int i = nd - 1; i >= 0; i--) {
		const CgDigit *d = &v->d[s][i];
		LLVMValueRef x = p;
		if (i > 0) {
			x = LLVMBuildURem(c->b, p, konst(c, p, d->radix), "");
			p = LLVMBuildUDiv(c->b, p, konst(c, p, d->radix), "");
		}
		*f = fma_k(c, *f, x, d->cf);
		*h = fma_k(c, *h, x, d->ch);
		*w = fma_k(c, *w, x, d->cw);
	}
}

static LLVMValueRef to_i32(CgCtx *c, LLVMValueRef x)
{
	return LLVMBuildTrunc(c->b, x, c->t_i32, "");
}

static LLVMValueRef vsplat(CgCtx *c, LLVMValueRef s, int n)
{
	return cg_splat(c, to_i32(c, s), n);
}

static LLVMValueRef and_(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
	return !a ? b : !b ? a : LLVMBuildAnd(c->b, a, b, "");
}

/* Coordinate x (scalar or vector) against divisor q and range [0, lim): *ok and x / q. */
static LLVMValueRef coord(CgCtx *c, LLVMValueRef x, int64_t q, int64_t lim, LLVMValueRef *ok)
{
	LLVMValueRef div = NULL;
	if (q != 1) {
		LLVMValueRef r = LLVMBuildSRem(c->b, x, konst(c, x, q), "");
		div = LLVMBuildICmp(c->b, LLVMIntEQ, r, konst(c, x, 0), "");
		x = LLVMBuildSDiv(c->b, x, konst(c, x, q), "");
	}
	*ok = and_(c, div, LLVMBuildICmp(c->b, LLVMIntULT, x, konst(c, x, lim), ""));
	return x;
}

/* ---- lanes and loads ---- */

static void gather_lanes(CgCtx *c, CgViewLanes *L, LLVMValueRef start)
{
	LLVMValueRef pos = add(c, vsplat(c, start, L->n), cg_iota(c, L->n));
	parts(c, L->v, L->dir, L->v->nd[L->dir], pos, &L->f, &L->h, &L->w);
}

/* Run r covers lanes [r R - rem0, (r + 1) R - rem0) (R the innermost radix, rem0 = start mod
 * R); its outer digits are those of start / R + r. The innermost digit adds lane - lo to the
 * flat index or to w. */
static void run_lanes(CgCtx *c, CgViewLanes *L, LLVMValueRef start)
{
	const CgView *v = L->v;
	const CgDigit *u = unit_digit(v, L->dir);
	int nd = v->nd[L->dir], n = L->n;
	LLVMValueRef R = cg_i64(c, u->radix), iota = cg_iota(c, n);
	LLVMValueRef q0 = LLVMBuildUDiv(c->b, start, R, ""), rem0 = LLVMBuildURem(c->b, start, R, "");
	LLVMValueRef wl = cg_vi32(c, 0, n);
	for (int r = 0; r < L->nrun; r++) {
		LLVMValueRef f, h, w;
		parts(c, v, L->dir, nd - 1, addk(c, q0, r), &f, &h, &w);
		LLVMValueRef lo = LLVMBuildSub(c->b, cg_i64(c, r * u->radix), rem0, "");
		LLVMValueRef lo32 = vsplat(c, lo, n);
		LLVMValueRef in = LLVMBuildAnd(
			c->b, LLVMBuildICmp(c->b, LLVMIntSGE, iota, lo32, ""),
			LLVMBuildICmp(c->b, LLVMIntSLT, iota, add(c, lo32, cg_vi32(c, (int32_t)u->radix, n)),
				      ""),
			"");
		L->run[r] = and_(c, in, L->valid);
		L->rh[r] = h;
		if (u->cw) {
			L->rf[r] = f;
			L->rw[r] = LLVMBuildSub(c->b, w, lo, "");
			wl = LLVMBuildSelect(c->b, in, add(c, vsplat(c, L->rw[r], n), iota), wl, "");
		} else {
			L->rf[r] = LLVMBuildSub(c->b, f, lo, "");
			L->rw[r] = w;
		}
	}
	if (u->cw)
		L->w = wl;
}

void cg_view_lanes(CgCtx *c, const CgView *v, int dir, LLVMValueRef start, int n,
		   int64_t extent, CgViewLanes *L)
{
	memset(L, 0, sizeof *L);
	L->v = v, L->dir = dir, L->n = n, L->nrun = cg_view_runs(v, dir, n);
	if (extent >= 0) {
		LLVMValueRef left = LLVMBuildSub(c->b, cg_i64(c, extent), start, "");
		L->valid = LLVMBuildICmp(c->b, LLVMIntSLT, cg_iota(c, n), vsplat(c, left, n), "");
	}
	if (L->nrun)
		run_lanes(c, L, start);
	else
		gather_lanes(c, L, start);
}

static LLVMTypeRef vec(LLVMTypeRef t, int n)
{
	return LLVMVectorType(t, (unsigned)n);
}

static unsigned size_of(CgCtx *c, LLVMTypeRef et)
{
	return et == c->t_f32 ? 4u : (unsigned)(LLVMGetIntTypeWidth(et) / 8);
}

/* Elements at src + idx (<n x i32>) where mask is set, zero elsewhere. f32 gathers natively
 * under the mask; narrower words have no hardware gather, so the lanes read a valid index
 * (element 0) under an all-true mask, which LLVM scalarises without branches. */
static LLVMValueRef gather(CgCtx *c, LLVMTypeRef et, LLVMValueRef src, LLVMValueRef idx,
			   LLVMValueRef mask, int n)
{
	LLVMTypeRef vt = vec(et, n), pt = vec(c->t_ptr, n);
	LLVMValueRef zero = LLVMConstNull(vt), m = mask;
	if (et != c->t_f32) {
		idx = LLVMBuildSelect(c->b, mask, idx, cg_vi32(c, 0, n), "");
		m = LLVMConstAllOnes(vec(c->t_i1, n));
	}
	LLVMValueRef ptrs = LLVMBuildGEP2(c->b, et, src, &idx, 1, "");
	LLVMTypeRef tys[2] = {vt, pt};
	LLVMValueRef args[4] = {ptrs, cg_i32(c, size_of(c, et)), m, zero};
	LLVMValueRef x = cg_intrinsic_n(c, "llvm.masked.gather", tys, 2, args, 4);
	return et == c->t_f32 ? x : LLVMBuildSelect(c->b, mask, x, zero, "");
}

static LLVMValueRef load_gather(CgCtx *c, const CgViewLanes *L, LLVMTypeRef et, LLVMValueRef src,
				LLVMValueRef f, LLVMValueRef h, LLVMValueRef w, LLVMValueRef ok)
{
	const CgView *v = L->v;
	int n = L->n;
	LLVMValueRef hok, wok;
	LLVMValueRef hv = coord(c, add(c, L->h, vsplat(c, h, n)), v->qh, v->H, &hok);
	LLVMValueRef wv = coord(c, add(c, L->w, vsplat(c, w, n)), v->qw, v->W, &wok);
	LLVMValueRef mask = and_(c, and_(c, hok, wok), L->valid);
	if (ok)
		mask = and_(c, mask, cg_splat(c, ok, n));
	LLVMValueRef idx = add(c, add(c, L->f, vsplat(c, f, n)), fma_k(c, wv, hv, v->W));
	return gather(c, et, src, idx, mask, n);
}

LLVMValueRef cg_view_load(CgCtx *c, const CgViewLanes *L, LLVMTypeRef et, LLVMValueRef src,
			  LLVMValueRef pos, LLVMValueRef ok)
{
	const CgView *v = L->v;
	int side = 1 - L->dir, n = L->n;
	LLVMValueRef f, h, w;
	parts(c, v, side, v->nd[side], pos, &f, &h, &w);
	f = addk(c, f, v->f0), h = addk(c, h, v->h0), w = addk(c, w, v->w0);
	if (!L->nrun)
		return load_gather(c, L, et, src, f, h, w, ok);
	LLVMValueRef x = LLVMConstNull(vec(et, n));
	LLVMValueRef wlanes = NULL;
	if (L->w) {
		LLVMValueRef wok;
		coord(c, add(c, L->w, vsplat(c, w, n)), 1, v->W, &wok);
		wlanes = wok;
	}
	for (int r = 0; r < L->nrun; r++) {
		LLVMValueRef hok, wok = NULL;
		LLVMValueRef hq = coord(c, add(c, h, L->rh[r]), v->qh, v->H, &hok);
		LLVMValueRef wq = add(c, w, L->rw[r]);
		if (!L->w)
			wq = coord(c, wq, v->qw, v->W, &wok);
		LLVMValueRef sok = and_(c, and_(c, hok, wok), ok);
		LLVMValueRef mask = and_(c, and_(c, L->run[r], wlanes), cg_splat(c, sok, n));
		LLVMValueRef at = add(c, add(c, f, L->rf[r]), fma_k(c, wq, hq, v->W));
		LLVMValueRef p = LLVMBuildGEP2(c->b, et, src, &at, 1, "");
		x = LLVMBuildSelect(c->b, mask, cg_vload(c, vec(et, n), p, mask, size_of(c, et)), x, "");
	}
	return x;
}
