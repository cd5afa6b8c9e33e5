/* interp_nn.c: the reference kernels of the convolutional ops: Conv and its two gradients,
 * BatchNormalization and its gradient, the pools and their gradients, Pad, Clip, Assign.
 *
 * The same contract as interp_ops.c (IrInterpFn): compute kernels see f32; MaxPool and
 * GlobalMaxPool also take LNS words when input and output share a format (comparing
 * sign-magnitude codes is exact, LNS.md 4), Pad is a data move of any dtype (LNS words
 * included), Assign is RAW. All window ops share one geometry (Geo, 2-D NCHW): output (oh, ow)
 * reads input rows oh * stride - pad_top + i * dilation, i < kernel, and the same for columns;
 * taps outside the input are padding (zero for Conv, never the maximum for MaxPool, counted or
 * not for AveragePool as count_include_pad says).
 *
 * Conv is an explicit GEMM per image and group: im2col copies the input under every tap of a
 * chunk of output positions into kernel scratch ([K, P], K = C/group * kh * kw), and the
 * interpreter's fp32 GEMM multiplies the group's weights [M/group, K] by it, straight into Y.
 * The gradients are the same two GEMMs rearranged: dX scatters W^T dY back through the taps
 * (col2im), dW accumulates dY col^T over images and chunks. Chunks are as large as the kernel
 * scratch bound allows (ir_interp_scratch), so small images go in one piece. Reductions
 * (BatchNormalization's statistics and sums, average pools) run in double, the long ones in
 * the IR_SUM_LANES order (ir.h) that vectorised code can follow exactly.
 */
#include <math.h>
#include <string.h>

#include "ir/interp_kernels.h"

static int64_t numel(const IrTensor *t)
{
	return t->type->numel;
}

/* ---- window geometry ---- */

typedef struct Geo {
	int64_t N, C, H, W;  /* the input X (or dX) */
	int64_t M, OH, OW;   /* the output's channels and spatial dims (or dY's) */
	int kh, kw, sh, sw, dh, dw;
	int pt, pl, pb, pr;  /* pads: top, left, bottom, right */
} Geo;

static Geo geo(const int *kernel, const int *stride, const int *dil, const int *pad,
	       const IrType *x, const IrType *y)
{
	return (Geo){x->dims[0], x->dims[1], x->dims[2], x->dims[3], y->dims[1], y->dims[2],
		     y->dims[3], kernel[0], kernel[1], stride[0], stride[1], dil[0], dil[1],
		     pad[0], pad[1], pad[2], pad[3]};
}

static Geo conv_geo(const IrAttrConv *a, const IrType *x, const IrType *y)
{
	return geo(a->kernel, a->stride, a->dilation, a->pad, x, y);
}

static Geo pool_geo(const IrAttrPool *a, const IrType *x, const IrType *y)
{
	return geo(a->kernel, a->stride, a->dilation, a->pad, x, y);
}

/* The taps t < k of a window starting at `start` with dilation d whose positions
 * start + t d lie in [lo, hi): t in [*t0, *t1) (empty if none). */
static void taps(int64_t start, int k, int d, int64_t lo, int64_t hi, int *t0, int *t1)
{
	int64_t a = start >= lo ? 0 : (lo - start + d - 1) / d;
	int64_t b = start >= hi ? 0 : (hi - start + d - 1) / d;
	b = b < k ? b : k;
	a = a < b ? a : b;
	*t0 = (int)a;
	*t1 = (int)b;
}

/* The window of output (oh, ow): its first input position (ih, iw) and the taps inside X. */
typedef struct Win {
	int64_t ih, iw;
	int i0, i1, j0, j1;
} Win;

static Win window(const Geo *q, int64_t oh, int64_t ow)
{
	Win w = {oh * q->sh - q->pt, ow * q->sw - q->pl, 0, 0, 0, 0};
	taps(w.ih, q->kh, q->dh, 0, q->H, &w.i0, &w.i1);
	taps(w.iw, q->kw, q->dw, 0, q->W, &w.j0, &w.j1);
	return w;
}

/* Offset in the H x W plane of tap (i, j). */
static int64_t tap_off(const Geo *q, const Win *w, int i, int j)
{
	return (w->ih + (int64_t)i * q->dh) * q->W + w->iw + (int64_t)j * q->dw;
}

/* ---- Conv ---- */

/* The input under each tap of output positions p0 .. p0 + np (flattened oh * OW + ow) of
 * Cg channels of one image: col[k][p] with k = (c kh + i) kw + j, or col[p][k] when trans;
 * zero in the padding. */
static void im2col(const Geo *q, const float *x, int64_t Cg, int64_t p0, int64_t np,
		   float *col, int trans)
{
	int64_t K = Cg * q->kh * q->kw;
	for (int64_t c = 0; c < Cg; c++)
		for (int i = 0; i < q->kh; i++)
			for (int j = 0; j < q->kw; j++) {
				const float *xc = x + c * q->H * q->W;
				int64_t k = (c * q->kh + i) * q->kw + j, oh = p0 / q->OW, ow = p0 % q->OW;
				for (int64_t p = 0; p < np; p++) {
					int64_t ih = oh * q->sh - q->pt + (int64_t)i * q->dh;
					int64_t iw = ow * q->sw - q->pl + (int64_t)j * q->dw;
					float v = ih >= 0 && ih < q->H && iw >= 0 && iw < q->W
							  ? xc[ih * q->W + iw]
							  : 0.0f;
					col[trans ? p * K + k : k * np + p] = v;
					if (++ow == q->OW) {
						ow = 0;
						oh++;
					}
				}
			}
}

/* The transpose of im2col: dx (Cg channels of one image) += each col[k][p] at its tap. */
static void col2im(const Geo *q, const float *col, int64_t Cg, int64_t p0, int64_t np, float *dx)
{
	for (int64_t c = 0; c < Cg; c++)
		for (int i = 0; i < q->kh; i++)
			for (int j = 0; j < q->kw; j++) {
				float *xc = dx + c * q->H * q->W;
				int64_t k = (c * q->kh + i) * q->kw + j, oh = p0 / q->OW, ow = p0 % q->OW;
				for (int64_t p = 0; p < np; p++) {
					int64_t ih = oh * q->sh - q->pt + (int64_t)i * q->dh;
					int64_t iw = ow * q->sw - q->pl + (int64_t)j * q->dw;
					if (ih >= 0 && ih < q->H && iw >= 0 && iw < q->W)
						xc[ih * q->W + iw] += col[k * np + p];
					if (++ow == q->OW) {
						ow = 0;
						oh++;
					}
				}
			}
}

static size_t align64(size_t n)
{
	return (n + 63) / 64 * 64;
}

/* Output positions per chunk, so that one [K, P] f32 buffer fits the kernel scratch that
 * ir_interp_scratch guarantees the node (4 bytes per input element and 8 per output element,
 * each piece 64-byte aligned); the Conv kernels take that one piece only. K is at most the
 * weight's element count, so P >= 1 always fits. */
static int64_t chunk_positions(const IrNode *n, int64_t K, int64_t HW)
{
	size_t budget = 0;
	for (int i = 0; i < n->nin; i++)
		budget += align64((size_t)n->in[i]->type->numel * 4);
	for (int j = 0; j < n->nout; j++)
		budget += align64((size_t)n->out[j]->type->numel * 8);
	int64_t p = (int64_t)(budget / (4 * (size_t)K));
	return p < 1 ? 1 : p > HW ? HW : p;
}

/* A 1x1 kernel with unit strides and no pads reads X as it is: no im2col. */
static int pointwise(const Geo *q)
{
	return q->kh == 1 && q->kw == 1 && q->sh == 1 && q->sw == 1 && !q->pt && !q->pl &&
	       !q->pb && !q->pr;
}

/* Y[n, g Mg + m, p] = sum_k W[g Mg + m, k] col_ng[k, p] + B[g Mg + m]. */
int ir_k_conv(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	Geo q = conv_geo(&n->attr.conv, in[0].type, out[0].type);
	int64_t G = n->attr.conv.group, Cg = q.C / G, Mg = q.M / G, K = Cg * q.kh * q.kw;
	int64_t HW = q.OH * q.OW, P = chunk_positions(n, K, HW);
	int direct = pointwise(&q);
	float *col = direct ? NULL : ir_interp_scratch(ip, sizeof(float) * (size_t)(K * P));
	if (!direct && !col)
		return -1;
	const float *x = in[0].data, *w = in[1].data;
	float *y = out[0].data;
	for (int64_t i = 0; i < q.N; i++)
		for (int64_t g = 0; g < G; g++)
			for (int64_t p0 = 0; p0 < HW; p0 += P) {
				int64_t np = HW - p0 < P ? HW - p0 : P;
				const float *xg = x + (i * q.C + g * Cg) * q.H * q.W;
				if (!direct)
					im2col(&q, xg, Cg, p0, np, col, 0);
				ir_interp_gemm(Mg, np, K, w + g * Mg * K, K, 1, direct ? xg + p0 : col,
					       direct ? HW : np, y + (i * q.M + g * Mg) * HW + p0, HW, 0);
			}
	if (n->nin > 2) {
		const float *b = in[2].data;
		for (int64_t i = 0; i < q.N * q.M; i++)
			for (int64_t p = 0; p < HW; p++)
				y[i * HW + p] += b[i % q.M];
	}
	return 0;
}

/* (dY, W) -> dX: dcol = W_g^T dY_ng per chunk, scattered back through the taps. */
int ir_k_conv_grad_x(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	Geo q = conv_geo(&n->attr.conv, out[0].type, in[0].type);
	int64_t G = n->attr.conv.group, Cg = q.C / G, Mg = q.M / G, K = Cg * q.kh * q.kw;
	int64_t HW = q.OH * q.OW, P = chunk_positions(n, K, HW);
	float *dcol = ir_interp_scratch(ip, sizeof(float) * (size_t)(K * P));
	if (!dcol)
		return -1;
	const float *dy = in[0].data, *w = in[1].data;
	float *dx = out[0].data;
	memset(dx, 0, sizeof(float) * (size_t)numel(&out[0]));
	for (int64_t i = 0; i < q.N; i++)
		for (int64_t g = 0; g < G; g++)
			for (int64_t p0 = 0; p0 < HW; p0 += P) {
				int64_t np = HW - p0 < P ? HW - p0 : P;
				/* A(k, m) = W[g Mg + m, k]: the transposed weight, read in place */
				ir_interp_gemm(K, np, Mg, w + g * Mg * K, 1, K,
					       dy + (i * q.M + g * Mg) * HW + p0, HW, dcol, np, 0);
				col2im(&q, dcol, Cg, p0, np, dx + (i * q.C + g * Cg) * q.H * q.W);
			}
	return 0;
}

/* (dY, X) -> dW: dW_g += dY_ng col_ng^T over images and chunks. */
int ir_k_conv_grad_w(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	Geo q = conv_geo(&n->attr.conv, in[1].type, in[0].type);
	int64_t G = n->attr.conv.group, Cg = q.C / G, Mg = q.M / G, K = Cg * q.kh * q.kw;
	int64_t HW = q.OH * q.OW, P = chunk_positions(n, K, HW);
	float *colt = ir_interp_scratch(ip, sizeof(float) * (size_t)(K * P));
	if (!colt)
		return -1;
	const float *dy = in[0].data, *x = in[1].data;
	float *dw = out[0].data;
	memset(dw, 0, sizeof(float) * (size_t)numel(&out[0]));
	for (int64_t i = 0; i < q.N; i++)
		for (int64_t g = 0; g < G; g++)
			for (int64_t p0 = 0; p0 < HW; p0 += P) {
				int64_t np = HW - p0 < P ? HW - p0 : P;
				im2col(&q, x + (i * q.C + g * Cg) * q.H * q.W, Cg, p0, np, colt, 1);
				ir_interp_gemm(Mg, K, np, dy + (i * q.M + g * Mg) * HW + p0, HW, 1, colt,
					       K, dw + g * Mg * K, K, 1);
			}
	return 0;
}

/* ---- BatchNormalization ---- */

/* X [N, C, ...] as N images of C channels of S elements each. */
static void bn_shape(const IrType *x, int64_t *N, int64_t *C, int64_t *S)
{
	*N = x->dims[0];
	*C = x->dims[1];
	*S = 1;
	for (int i = 2; i < x->rank; i++)
		*S *= x->dims[i];
}

/* A reduction in the IR_SUM_LANES order (ir.h): lane_add(s, j, n, v) adds v, element j of a
 * run of n, and lane_total gives the result. */
typedef struct LaneSum {
	double lane[IR_SUM_LANES], tail;
} LaneSum;

static void lane_add(LaneSum *s, int64_t j, int64_t n, double v)
{
	if (j < n / IR_SUM_LANES * IR_SUM_LANES)
		s->lane[j % IR_SUM_LANES] += v;
	else
		s->tail += v;
}

static double lane_total(const LaneSum *s)
{
	double t = s->tail;
	for (int l = 0; l < IR_SUM_LANES; l++)
		t += s->lane[l];
	return t;
}

/* Mean and biased variance of channel c over N and the spatial dims, two passes in double
 * (runs of S per image), rounded to f32 (the values the node outputs and its gradient reads). */
static void channel_stats(const float *x, int64_t N, int64_t C, int64_t S, int64_t c,
			  float *mean, float *var)
{
	LaneSum s = {{0}, 0}, ss = {{0}, 0};
	double cnt = (double)(N * S);
	for (int64_t i = 0; i < N; i++)
		for (int64_t e = 0; e < S; e++)
			lane_add(&s, e, S, x[(i * C + c) * S + e]);
	double m = lane_total(&s) / cnt;
	for (int64_t i = 0; i < N; i++)
		for (int64_t e = 0; e < S; e++) {
			double d = x[(i * C + c) * S + e] - m;
			lane_add(&ss, e, S, d * d);
		}
	*mean = (float)m;
	*var = (float)(lane_total(&ss) / cnt);
}

/* Inputs (X, scale, B, running_mean, running_var); outputs (Y, running_mean',
 * running_var', batch_mean, batch_var). The train step (and the eval step under ONNX
 * semantics for a model in training mode) normalises by the batch statistics and moves the
 * running ones by momentum; otherwise it uses the running statistics and passes them on. */
int ir_k_batch_norm(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	const IrAttrBn *a = &n->attr.bn;
	int batch = ir_interp_mode(ip) == IR_MODE_TRAIN ||
		    (ir_interp_onnx_semantics(ip) && a->training);
	int64_t N, C, S;
	bn_shape(in[0].type, &N, &C, &S);
	const float *x = in[0].data, *scale = in[1].data, *bias = in[2].data;
	const float *rmean = in[3].data, *rvar = in[4].data;
	float *y = out[0].data, *om = out[1].data, *ov = out[2].data, *bm = out[3].data,
	      *bv = out[4].data;
	double mom = a->momentum;
	for (int64_t c = 0; c < C; c++) {
		float mean = rmean[c], var = rvar[c];
		if (batch) {
			channel_stats(x, N, C, S, c, &mean, &var);
			om[c] = (float)(rmean[c] * mom + mean * (1.0 - mom));
			ov[c] = (float)(rvar[c] * mom + var * (1.0 - mom));
		} else {
			om[c] = mean;
			ov[c] = var;
		}
		bm[c] = mean;
		bv[c] = var;
		double inv = 1.0 / sqrt((double)var + a->epsilon), m = mean;
		for (int64_t i = 0; i < N; i++)
			for (int64_t e = 0; e < S; e++) {
				int64_t k = (i * C + c) * S + e;
				y[k] = (float)((x[k] - m) * inv * scale[c] + bias[c]);
			}
	}
	return 0;
}

/* (dY, X, scale, batch_mean, batch_var) -> (dX, dscale, dB) with xhat = (x - mean) invstd:
 * dB = sum dY, dscale = sum dY xhat, dX = scale invstd / M (M dY - dB - xhat dscale), M the
 * elements per channel. */
int ir_k_batch_norm_grad(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	int64_t N, C, S;
	bn_shape(in[1].type, &N, &C, &S);
	const float *dy = in[0].data, *x = in[1].data, *scale = in[2].data, *bm = in[3].data,
		    *bv = in[4].data;
	float *dx = out[0].data, *dscale = out[1].data, *db = out[2].data;
	double cnt = (double)(N * S);
	for (int64_t c = 0; c < C; c++) {
		double inv = 1.0 / sqrt((double)bv[c] + n->attr.bn.epsilon), m = bm[c];
		LaneSum s1 = {{0}, 0}, s2 = {{0}, 0};
		for (int64_t i = 0; i < N; i++)
			for (int64_t e = 0; e < S; e++) {
				int64_t k = (i * C + c) * S + e;
				lane_add(&s1, e, S, dy[k]);
				lane_add(&s2, e, S, dy[k] * (x[k] - m) * inv);
			}
		double sdy = lane_total(&s1), sdyx = lane_total(&s2);
		db[c] = (float)sdy;
		dscale[c] = (float)sdyx;
		double f = scale[c] * inv / cnt;
		for (int64_t i = 0; i < N; i++)
			for (int64_t e = 0; e < S; e++) {
				int64_t k = (i * C + c) * S + e;
				dx[k] = (float)(f * (cnt * dy[k] - sdy - (x[k] - m) * inv * sdyx));
			}
	}
	return 0;
}

/* ---- pools ---- */

/* The plane offset of the window's first maximum (window order, row by row), or -1 when no
 * tap is inside X (padding never wins). */
static int64_t argmax_f32(const Geo *q, const Win *w, const float *x)
{
	int64_t best = -1;
	for (int i = w->i0; i < w->i1; i++)
		for (int j = w->j0; j < w->j1; j++) {
			int64_t o = tap_off(q, w, i, j);
			if (best < 0 || x[o] > x[best])
				best = o;
		}
	return best;
}

/* The same on LNS words: sign-magnitude codes order as their values (LNS.md 4). */
static int32_t code_key(LnsFormat f, uint32_t w)
{
	int32_t m = (int32_t)lns_word_mag(f, w);
	return lns_word_sign(f, w) ? -m : m;
}

static int64_t argmax_codes(const Geo *q, const Win *w, LnsFormat f, const void *x, int64_t base)
{
	int64_t best = -1;
	int32_t bk = 0;
	for (int i = w->i0; i < w->i1; i++)
		for (int j = w->j0; j < w->j1; j++) {
			int64_t o = tap_off(q, w, i, j);
			int32_t k = code_key(f, lns_load(f, x, (size_t)(base + o)));
			if (best < 0 || k > bk)
				best = o, bk = k;
		}
	return best;
}

/* MaxPool and GlobalMaxPool; a window that holds only padding gives 0. */
int ir_k_max_pool(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	Geo q = pool_geo(&n->attr.pool, in[0].type, out[0].type);
	int codes = in[0].type->dt == IR_DT_LNS;
	LnsFormat f = in[0].type->fmt;
	const float *x = in[0].data;
	float *y = out[0].data;
	for (int64_t pl = 0; pl < q.N * q.C; pl++)
		for (int64_t oh = 0; oh < q.OH; oh++)
			for (int64_t ow = 0; ow < q.OW; ow++) {
				Win w = window(&q, oh, ow);
				int64_t base = pl * q.H * q.W, o = (pl * q.OH + oh) * q.OW + ow;
				if (!codes) {
					int64_t b = argmax_f32(&q, &w, x + base);
					y[o] = b < 0 ? 0.0f : x[base + b];
					continue;
				}
				int64_t b = argmax_codes(&q, &w, f, in[0].data, base);
				uint32_t word = b < 0 ? 0 : lns_load(f, in[0].data, (size_t)(base + b));
				lns_store(f, out[0].data, (size_t)o, lns_word_mag(f, word) ? word : 0);
			}
	return 0;
}

/* The divisor of an average window: its taps inside X, or with count_include_pad inside X
 * and its pads (a window that ceil_mode lets run past the end pad counts only up to it, as
 * PyTorch divides). */
static int64_t avg_count(const Geo *q, const Win *w, int include_pad)
{
	if (!include_pad)
		return (int64_t)(w->i1 - w->i0) * (w->j1 - w->j0);
	int a0, a1, b0, b1;
	taps(w->ih, q->kh, q->dh, -(int64_t)q->pt, q->H + q->pb, &a0, &a1);
	taps(w->iw, q->kw, q->dw, -(int64_t)q->pl, q->W + q->pr, &b0, &b1);
	return (int64_t)(a1 - a0) * (b1 - b0);
}

/* AveragePool and GlobalAveragePool (sums in double: window order, or for the global pool
 * the IR_SUM_LANES order over the plane); an empty window gives 0. */
int ir_k_avg_pool(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	Geo q = pool_geo(&n->attr.pool, in[0].type, out[0].type);
	const float *x = in[0].data;
	float *y = out[0].data;
	if (n->op == IR_OP_GLOBAL_AVG_POOL) {
		int64_t hw = q.H * q.W;
		for (int64_t pl = 0; pl < q.N * q.C; pl++) {
			LaneSum s = {{0}, 0};
			for (int64_t e = 0; e < hw; e++)
				lane_add(&s, e, hw, x[pl * hw + e]);
			y[pl] = (float)(lane_total(&s) / (double)hw);
		}
		return 0;
	}
	for (int64_t pl = 0; pl < q.N * q.C; pl++)
		for (int64_t oh = 0; oh < q.OH; oh++)
			for (int64_t ow = 0; ow < q.OW; ow++) {
				Win w = window(&q, oh, ow);
				int64_t cnt = avg_count(&q, &w, n->attr.pool.count_include_pad);
				double s = 0.0;
				for (int i = w.i0; i < w.i1; i++)
					for (int j = w.j0; j < w.j1; j++)
						s += x[pl * q.H * q.W + tap_off(&q, &w, i, j)];
				y[(pl * q.OH + oh) * q.OW + ow] = cnt ? (float)(s / (double)cnt) : 0.0f;
			}
	return 0;
}

/* (dY, X) -> dX: each dY to the first maximum of its window in X. */
int ir_k_max_pool_grad(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	Geo q = pool_geo(&n->attr.pool, in[1].type, in[0].type);
	const float *dy = in[0].data, *x = in[1].data;
	float *dx = out[0].data;
	memset(dx, 0, sizeof(float) * (size_t)numel(&out[0]));
	for (int64_t pl = 0; pl < q.N * q.C; pl++)
		for (int64_t oh = 0; oh < q.OH; oh++)
			for (int64_t ow = 0; ow < q.OW; ow++) {
				Win w = window(&q, oh, ow);
				int64_t base = pl * q.H * q.W, b = argmax_f32(&q, &w, x + base);
				if (b >= 0)
					dx[base + b] += dy[(pl * q.OH + oh) * q.OW + ow];
			}
	return 0;
}

/* (dY) -> dX: each dY spread over its window's taps inside X, divided as the forward. */
int ir_k_avg_pool_grad(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	Geo q = pool_geo(&n->attr.pool, out[0].type, in[0].type);
	const float *dy = in[0].data;
	float *dx = out[0].data;
	memset(dx, 0, sizeof(float) * (size_t)numel(&out[0]));
	for (int64_t pl = 0; pl < q.N * q.C; pl++)
		for (int64_t oh = 0; oh < q.OH; oh++)
			for (int64_t ow = 0; ow < q.OW; ow++) {
				Win w = window(&q, oh, ow);
				int64_t cnt = avg_count(&q, &w, n->attr.pool.count_include_pad);
				if (!cnt)
					continue;
				float g = (float)((double)dy[(pl * q.OH + oh) * q.OW + ow] / (double)cnt);
				for (int i = w.i0; i < w.i1; i++)
					for (int j = w.j0; j < w.j1; j++)
						dx[pl * q.H * q.W + tap_off(&q, &w, i, j)] += g;
			}
	return 0;
}

/* ---- Pad ---- */

/* The padding element in t's storage: LNS words take the value encoded in t's format and
 * scale offset (0 is word 0; round to nearest, a saturated or flushed value as any encode);
 * other dtypes convert it as Cast does. */
static void pad_element(const IrTensor *t, float value, uint8_t *elem)
{
	if (t->type->dt != IR_DT_LNS) {
		ir_interp_store_scalar(t->type->dt, elem, 0, value);
		return;
	}
	LnsFormat f = t->type->fmt;
	f.round = LNS_ROUND_NEAREST;
	if (f.underflow == LNS_UF_STOCHASTIC)
		f.underflow = LNS_UF_ZERO;
	lns_store(f, elem, 0, value == 0.0f ? 0 : lns_encode(f, t->k, value, 0, NULL));
}

static void fill(uint8_t *dst, int64_t n, const uint8_t *elem, size_t es)
{
	for (int64_t i = 0; i < n; i++)
		memcpy(dst + (size_t)i * es, elem, es);
}

/* Row by row over the output's last dimension: a row whose outer index falls in a pad is all
 * padding; otherwise padding, the input row's kept part, padding. Negative pads crop. */
int ir_k_pad(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	const IrAttrPad *a = &n->attr.pad;
	const IrType *ti = in[0].type, *to = out[0].type;
	int r = ti->rank;
	size_t es = ir_type_elem_size(ti);
	uint8_t elem[16];
	pad_element(&in[0], a->value, elem);
	int64_t ist[IR_MAX_RANK], idx[IR_MAX_RANK] = {0}, last = to->dims[r - 1];
	for (int d = r - 1; d >= 0; d--)
		ist[d] = d == r - 1 ? 1 : ist[d + 1] * ti->dims[d + 1];
	int64_t pb = a->pads[r - 1], lo = pb > 0 ? pb : 0;
	int64_t hi = ti->dims[r - 1] + pb < last ? ti->dims[r - 1] + pb : last;
	const uint8_t *src = in[0].data;
	uint8_t *dst = out[0].data;
	for (int64_t row = 0; row < to->numel / last; row++, dst += (size_t)last * es) {
		int64_t off = 0;
		int inside = hi > lo;
		for (int d = 0; d < r - 1 && inside; d++) {
			int64_t s = idx[d] - a->pads[d];
			inside = s >= 0 && s < ti->dims[d];
			off += s * ist[d];
		}
		if (!inside) {
			fill(dst, last, elem, es);
		} else {
			fill(dst, lo, elem, es);
			memcpy(dst + (size_t)lo * es, src + (size_t)(off + lo - pb) * es,
			       (size_t)(hi - lo) * es);
			fill(dst + (size_t)hi * es, last - hi, elem, es);
		}
		for (int d = r - 2; d >= 0; d--) {
			if (++idx[d] < to->dims[d])
				break;
			idx[d] = 0;
		}
	}
	return 0;
}

/* ---- Clip, Assign ---- */

int ir_k_clip(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	float lo = n->attr.clip.min, hi = n->attr.clip.max;
	const float *x = in[0].data;
	float *y = out[0].data;
	for (int64_t i = 0; i < numel(&out[0]); i++)
		y[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
	return 0;
}

/* (dY, X) -> dY where min <= x <= max (torch.clamp's gradient), else 0. */
int ir_k_clip_grad(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	float lo = n->attr.clip.min, hi = n->attr.clip.max;
	const float *dy = in[0].data, *x = in[1].data;
	float *dx = out[0].data;
	for (int64_t i = 0; i < numel(&out[0]); i++)
		dx[i] = x[i] >= lo && x[i] <= hi ? dy[i] : 0.0f;
	return 0;
}

/* (S, X): S = X, S an f32 state value (a running statistic); RAW, so X may be LNS words. */
int ir_k_assign(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)out;
	if (in[0].type->dt != IR_DT_F32) {
		ir_interp_fail(ip, "'%s' is %s; running statistics are f32", n->in[0]->name,
			       ir_dtype_name(in[0].type->dt));
		return -1;
	}
	if (in[1].type->dt == IR_DT_LNS)
		lns_decode_tensor(in[1].type->fmt, in[1].k, in[1].data, in[0].data,
				  (size_t)numel(&in[1]));
	else
		memcpy(in[0].data, in[1].data, sizeof(float) * (size_t)numel(&in[1]));
	return 0;
}
