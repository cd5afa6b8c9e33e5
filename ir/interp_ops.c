/* interp_ops.c: the reference kernels, one per op, in plain scalar C: the semantics every
 * other backend is checked against.
 *
 * Kernels follow the contract of IrInterpFn: compute ops see f32 tensors only (the executor
 * decodes LNS inputs and encodes LNS outputs), data-movement ops copy elements of any size,
 * code-exact ops (Relu, Neg) also take LNS words when input and output share a format,
 * and RAW ops (WeightView and the optimizers) see storage as it is: LNS codes with their scale
 * offset IrTensor.k, or f32. Outputs never alias inputs (the plan keeps them apart), and any
 * temporary comes from ir_interp_scratch, so no kernel allocates. Sums that PyTorch-level
 * accuracy needs (softmax, losses, reductions) run in double; GEMM sums in fp32, which LNS.md
 * allows, in a loop order the compiler vectorises. Broadcasting follows numpy: each operand
 * gets per-dimension strides over the output shape, 0 where it is broadcast.
 */
#include <math.h>
#include <string.h>

#include "ir/interp_kernels.h"

enum { R = IR_MAX_RANK };

static int64_t numel(const IrTensor *t)
{
	return t->type->numel;
}

/* ---- shapes and broadcasting ---- */

/* The dims of t with rank 0 read as [1]; returns the rank (>= 1). */
static int shape_of(const IrType *t, int64_t *d)
{
	if (t->rank == 0) {
		d[0] = 1;
		return 1;
	}
	memcpy(d, t->dims, sizeof(int64_t) * (size_t)t->rank);
	return t->rank;
}

/* Element strides of a contiguous tensor of dims (ri, id) read as the shape (ro, od), right
 * aligned: missing and size-1 dimensions get stride 0. */
static void bcast_strides(int ro, int ri, const int64_t *id, int64_t *st)
{
	int64_t s = 1;
	for (int d = ro - 1; d >= 0; d--) {
		int di = d - (ro - ri);
		if (di < 0) {
			st[d] = 0;
			continue;
		}
		st[d] = id[di] == 1 ? 0 : s;
		s *= id[di];
	}
}

/* Offset of the multi-index number `idx` (row-major over dims d[0..r)) under strides st. */
static int64_t index_off(int64_t idx, int r, const int64_t *d, const int64_t *st)
{
	int64_t off = 0;
	for (int i = r - 1; i >= 0; i--) {
		off += (idx % d[i]) * st[i];
		idx /= d[i];
	}
	return off;
}

/* ---- GEMM ---- */

/* y0..y3 += a0..a3 * b over n contiguous elements. The fixed blocks of 8 let compilers
 * vectorise the loop even at -O2 (no epilogue to cost). */
static void axpy4(int64_t n, const float *a, const float *restrict b, float *restrict y0,
		  float *restrict y1, float *restrict y2, float *restrict y3)
{
	float a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
	int64_t j = 0;
	for (; j + 8 <= n; j += 8)
		for (int u = 0; u < 8; u++) {
			float bj = b[j + u];
			y0[j + u] += a0 * bj;
			y1[j + u] += a1 * bj;
			y2[j + u] += a2 * bj;
			y3[j + u] += a3 * bj;
		}
	for (; j < n; j++) {
		y0[j] += a0 * b[j];
		y1[j] += a1 * b[j];
		y2[j] += a2 * b[j];
		y3[j] += a3 * b[j];
	}
}

static void axpy1(int64_t n, float a, const float *restrict b, float *restrict y)
{
	int64_t j = 0;
	for (; j + 8 <= n; j += 8)
		for (int u = 0; u < 8; u++)
			y[j + u] += a * b[j + u];
	for (; j < n; j++)
		y[j] += a * b[j];
}

/* The general form (interp_kernels.h): i-k-j order, four rows of Y at a time, so each row of
 * B is read once per four rows and every inner loop is contiguous. */
void ir_interp_gemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t ars, int64_t acs,
		    const float *B, int64_t ldb, float *Y, int64_t ldy, int acc)
{
	if (!acc)
		for (int64_t i = 0; i < M; i++)
			memset(Y + i * ldy, 0, sizeof(float) * (size_t)N);
	int64_t i = 0;
	for (; i + 4 <= M; i += 4) {
		float *y = Y + i * ldy;
		const float *a = A + i * ars;
		for (int64_t k = 0; k < K; k++) {
			float ak[4] = {a[k * acs], a[ars + k * acs], a[2 * ars + k * acs],
				       a[3 * ars + k * acs]};
			axpy4(N, ak, B + k * ldb, y, y + ldy, y + 2 * ldy, y + 3 * ldy);
		}
	}
	for (; i < M; i++)
		for (int64_t k = 0; k < K; k++)
			axpy1(N, A[i * ars + k * acs], B + k * ldb, Y + i * ldy);
}

/* Y[M,N] = A[M,K] B[K,N], all contiguous row-major. */
static void matmul_f32(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *Y)
{
	ir_interp_gemm(M, N, K, A, K, 1, B, N, Y, N, 0);
}

/* dst[c, r] = src[r, c] for a rows x cols matrix, in 32 x 32 tiles (both sides in cache). */
static void transpose2d(const float *src, int64_t rows, int64_t cols, float *dst)
{
	enum { T = 32 };
	for (int64_t r0 = 0; r0 < rows; r0 += T)
		for (int64_t c0 = 0; c0 < cols; c0 += T)
			for (int64_t r = r0; r < rows && r < r0 + T; r++)
				for (int64_t c = c0; c < cols && c < c0 + T; c++)
					dst[c * rows + r] = src[r * cols + c];
}

/* A row-major copy of the transpose of t (2-D), in kernel scratch. */
static const float *transposed(IrInterp *ip, const IrTensor *t)
{
	float *d = ir_interp_scratch(ip, sizeof(float) * (size_t)numel(t));
	if (d)
		transpose2d(t->data, t->type->dims[0], t->type->dims[1], d);
	return d;
}

/* Y = alpha op(A) op(B) + beta C, C unidirectionally broadcast to [M, N]. */
static int k_gemm(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	const IrAttrGemm *at = &n->attr.gemm;
	const IrType *ta = in[0].type;
	int64_t M = ta->dims[at->trans_a ? 1 : 0], K = ta->dims[at->trans_a ? 0 : 1];
	int64_t N = out[0].type->dims[1];
	const float *A = at->trans_a ? transposed(ip, &in[0]) : in[0].data;
	const float *B = at->trans_b ? transposed(ip, &in[1]) : in[1].data;
	float *Y = out[0].data;
	if (!A || !B)
		return -1;
	matmul_f32(M, N, K, A, B, Y);
	int64_t cd[R], st[2] = {0, 0};
	const float *C = n->nin > 2 ? in[2].data : NULL;
	if (C)
		bcast_strides(2, shape_of(in[2].type, cd), cd, st);
	for (int64_t i = 0; i < M; i++)
		for (int64_t j = 0; j < N; j++) {
			float y = at->alpha * Y[i * N + j];
			Y[i * N + j] = C ? y + at->beta * C[i * st[0] + j * st[1]] : y;
		}
	return 0;
}

/* Batched A[..., M, K] B[..., K, N] with numpy broadcasting of the batch dimensions. */
static int k_matmul(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	(void)n;
	const IrType *ta = in[0].type, *tb = in[1].type, *to = out[0].type;
	int rb = to->rank - 2;
	int64_t M = ta->dims[ta->rank - 2], K = ta->dims[ta->rank - 1], N = tb->dims[tb->rank - 1];
	int64_t sa[R], sb[R], nb = 1;
	bcast_strides(rb, ta->rank - 2, ta->dims, sa);
	bcast_strides(rb, tb->rank - 2, tb->dims, sb);
	for (int i = 0; i < rb; i++)
		nb *= to->dims[i];
	for (int64_t b = 0; b < nb; b++) {
		const float *A = (const float *)in[0].data + index_off(b, rb, to->dims, sa) * M * K;
		const float *B = (const float *)in[1].data + index_off(b, rb, to->dims, sb) * K * N;
		matmul_f32(M, N, K, A, B, (float *)out[0].data + b * M * N);
	}
	return 0;
}

/* ---- elementwise ---- */

static void binary_row(IrOp op, const float *a, int64_t sa, const float *b, int64_t sb,
		       float *y, int64_t n)
{
	switch (op) {
	case IR_OP_ADD:
		for (int64_t j = 0; j < n; j++)
			y[j] = a[j * sa] + b[j * sb];
		break;
	case IR_OP_SUB:
		for (int64_t j = 0; j < n; j++)
			y[j] = a[j * sa] - b[j * sb];
		break;
	case IR_OP_MUL:
		for (int64_t j = 0; j < n; j++)
			y[j] = a[j * sa] * b[j * sb];
		break;
	default: /* IR_OP_DIV */
		for (int64_t j = 0; j < n; j++)
			y[j] = a[j * sa] / b[j * sb];
		break;
	}
}

/* Add, Sub, Mul, Div with multidirectional broadcasting, one output row at a time. */
static int k_binary(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	int64_t od[R], ad[R], bd[R], sa[R], sb[R];
	int r = shape_of(out[0].type, od);
	bcast_strides(r, shape_of(in[0].type, ad), ad, sa);
	bcast_strides(r, shape_of(in[1].type, bd), bd, sb);
	int64_t inner = od[r - 1], rows = inner ? numel(&out[0]) / inner : 0;
	const float *A = in[0].data, *B = in[1].data;
	float *Y = out[0].data;
	for (int64_t row = 0; row < rows; row++)
		binary_row(n->op, A + index_off(row, r - 1, od, sa), sa[r - 1],
			   B + index_off(row, r - 1, od, sb), sb[r - 1], Y + row * inner, inner);
	return 0;
}

static float sigmoid(float x)
{
	if (x >= 0.0f)
		return 1.0f / (1.0f + expf(-x));
	float e = expf(x);
	return e / (1.0f + e);
}

/* Relu and Neg on LNS words (the executor passes words when input and output share a
 * format): a negative word becomes zero, the sign flips; zero stays canonical (s = 0). */
static void unary_codes(IrOp op, LnsFormat f, const void *x, void *y, int64_t m)
{
	uint32_t sign = 1u << (f.bits - 1);
	for (int64_t i = 0; i < m; i++) {
		uint32_t w = lns_load(f, x, (size_t)i);
		if (op == IR_OP_RELU)
			w = (w & sign) ? 0 : w;
		else
			w = lns_word_mag(f, w) ? w ^ sign : 0;
		lns_store(f, y, (size_t)i, w);
	}
}

static int k_unary(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	if (in[0].type->dt == IR_DT_LNS) {
		unary_codes(n->op, in[0].type->fmt, in[0].data, out[0].data, numel(&in[0]));
		return 0;
	}
	const float *x = in[0].data;
	float *y = out[0].data, alpha = n->attr.alpha.alpha;
	int64_t m = numel(&out[0]);
	switch (n->op) {
	case IR_OP_NEG:
		for (int64_t i = 0; i < m; i++)
			y[i] = -x[i];
		break;
	case IR_OP_RELU:
		for (int64_t i = 0; i < m; i++)
			y[i] = x[i] > 0.0f ? x[i] : 0.0f;
		break;
	case IR_OP_LEAKY_RELU:
		for (int64_t i = 0; i < m; i++)
			y[i] = x[i] >= 0.0f ? x[i] : alpha * x[i];
		break;
	case IR_OP_SIGMOID:
		for (int64_t i = 0; i < m; i++)
			y[i] = sigmoid(x[i]);
		break;
	default: /* IR_OP_TANH */
		for (int64_t i = 0; i < m; i++)
			y[i] = tanhf(x[i]);
		break;
	}
	return 0;
}

/* Gradient helpers of the form dX = f(dY, S), S the saved forward output (or input). */
static int k_grad_pair(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	const float *dy = in[0].data, *s = in[1].data;
	float *dx = out[0].data, alpha = n->attr.alpha.alpha;
	int64_t m = numel(&out[0]);
	switch (n->op) {
	case IR_OP_RELU_GRAD:
		for (int64_t i = 0; i < m; i++)
			dx[i] = s[i] > 0.0f ? dy[i] : 0.0f;
		break;
	case IR_OP_LEAKY_RELU_GRAD:
		for (int64_t i = 0; i < m; i++)
			dx[i] = s[i] > 0.0f ? dy[i] : alpha * dy[i];
		break;
	case IR_OP_SIGMOID_GRAD:
		for (int64_t i = 0; i < m; i++)
			dx[i] = dy[i] * s[i] * (1.0f - s[i]);
		break;
	default: /* IR_OP_TANH_GRAD */
		for (int64_t i = 0; i < m; i++)
			dx[i] = dy[i] * (1.0f - s[i] * s[i]);
		break;
	}
	return 0;
}

/* ---- softmax family: groups of `len` elements `inner` apart ---- */

/* Opset >= 13 normalises along one axis; the legacy form (opset < 13) coerces the input to
 * 2-D at the axis and normalises over every dimension from the axis on. */
static void softmax_groups(const IrType *t, const IrAttrAxis *a, int64_t *outer, int64_t *len,
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

/* max and sum of exp(x - max) over one group, the sum in double. */
static double group_sumexp(const float *x, int64_t len, int64_t inner, float *mx)
{
	float m = -INFINITY;
	for (int64_t l = 0; l < len; l++)
		m = fmaxf(m, x[l * inner]);
	double s = 0.0;
	for (int64_t l = 0; l < len; l++)
		s += exp((double)x[l * inner] - (double)m);
	*mx = m;
	return s;
}

static int k_softmax(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	int64_t outer, len, inner;
	softmax_groups(in[0].type, &n->attr.axis, &outer, &len, &inner);
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			int64_t base = o * len * inner + i;
			const float *x = (const float *)in[0].data + base;
			float *y = (float *)out[0].data + base, mx;
			double s = group_sumexp(x, len, inner, &mx), ls = log(s);
			for (int64_t l = 0; l < len; l++) {
				double d = (double)x[l * inner] - (double)mx;
				y[l * inner] = (float)(n->op == IR_OP_SOFTMAX ? exp(d) / s : d - ls);
			}
		}
	return 0;
}

/* Softmax: dX = Y (dY - sum(dY Y)); LogSoftmax: dX = dY - exp(Y) sum(dY). */
static int k_softmax_grad(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	int64_t outer, len, inner;
	int logsm = n->op == IR_OP_LOG_SOFTMAX_GRAD;
	softmax_groups(in[0].type, &n->attr.axis, &outer, &len, &inner);
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			int64_t base = o * len * inner + i;
			const float *dy = (const float *)in[0].data + base;
			const float *y = (const float *)in[1].data + base;
			float *dx = (float *)out[0].data + base;
			double s = 0.0;
			for (int64_t l = 0; l < len; l++)
				s += (double)dy[l * inner] * (logsm ? 1.0 : (double)y[l * inner]);
			for (int64_t l = 0; l < len; l++) {
				double g = dy[l * inner], v = y[l * inner];
				dx[l * inner] = (float)(logsm ? g - exp(v) * s : v * (g - s));
			}
		}
	return 0;
}

/* ---- data movement: elements of any size, copied ---- */

/* Flatten, Reshape, Squeeze, Unsqueeze, Identity, Quantize: the bytes are the same. */
static int k_copy(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	(void)n;
	memcpy(out[0].data, in[0].data, ir_type_bytes(in[0].type));
	return 0;
}

static void copy_elem(uint8_t *d, const uint8_t *s, size_t es)
{
	switch (es) {
	case 1: *d = *s; break;
	case 2: memcpy(d, s, 2); break;
	case 4: memcpy(d, s, 4); break;
	case 8: memcpy(d, s, 8); break;
	default: memcpy(d, s, es); break;
	}
}

/* Walks the output in order; the input offset follows through permuted strides. */
static int k_transpose(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	const IrType *ti = in[0].type, *to = out[0].type;
	size_t es = ir_type_elem_size(ti);
	int r = ti->rank;
	int64_t ist[R], st[R], idx[R] = {0}, off = 0, m = numel(&out[0]);
	const uint8_t *src = in[0].data;
	uint8_t *dst = out[0].data;
	for (int d = r - 1; d >= 0; d--)
		ist[d] = d == r - 1 ? 1 : ist[d + 1] * ti->dims[d + 1];
	for (int d = 0; d < r; d++)
		st[d] = ist[n->attr.perm.perm[d]];
	for (int64_t e = 0; e < m; e++) {
		copy_elem(dst + (size_t)e * es, src + (size_t)off * es, es);
		for (int d = r - 1; d >= 0; d--) {
			off += st[d];
			if (++idx[d] < to->dims[d])
				break;
			off -= st[d] * to->dims[d];
			idx[d] = 0;
		}
	}
	return 0;
}

/* Elements before and after `axis` of t: outer * dims[axis] * inner = numel. */
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

static int k_concat(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	int axis = n->attr.axis.axis;
	size_t es = ir_type_elem_size(out[0].type);
	int64_t outer, inner;
	split_at(out[0].type, axis, &outer, &inner);
	uint8_t *dst = out[0].data;
	for (int64_t o = 0; o < outer; o++)
		for (int i = 0; i < n->nin; i++) {
			size_t block = (size_t)(in[i].type->dims[axis] * inner) * es;
			memcpy(dst, (const uint8_t *)in[i].data + (size_t)o * block, block);
			dst += block;
		}
	return 0;
}

static int k_slice(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	const IrAttrSlice *s = &n->attr.slice;
	size_t es = ir_type_elem_size(in[0].type);
	int64_t outer, inner, dim = in[0].type->dims[s->axis];
	split_at(in[0].type, s->axis, &outer, &inner);
	size_t block = (size_t)((s->end - s->start) * inner) * es;
	for (int64_t o = 0; o < outer; o++)
		memcpy((uint8_t *)out[0].data + (size_t)o * block,
		       (const uint8_t *)in[0].data + (size_t)((o * dim + s->start) * inner) * es,
		       block);
	return 0;
}

/* ---- Dropout ---- */

/* Element i is kept iff its uniform draw (keyed by the mask value, the step and i) is >=
 * ratio; kept elements are scaled by 1 / (1 - ratio). The train step always applies it; the
 * eval step only under ONNX semantics for a node whose model asked for training mode. */
static int k_dropout(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	const IrAttrDropout *a = &n->attr.dropout;
	int apply = ir_interp_mode(ip) == IR_MODE_TRAIN ||
		    (ir_interp_onnx_semantics(ip) && a->training);
	uint32_t key = ir_interp_rng_key(ip, n->out[1]);
	const float *x = in[0].data;
	float *y = out[0].data, keep = 1.0f - a->ratio;
	uint8_t *mask = out[1].data;
	for (int64_t i = 0; i < numel(&in[0]); i++) {
		int k = !apply || lns_rng_unit(lns_rng_bits(key, (uint32_t)i)) >= a->ratio;
		mask[i] = (uint8_t)k;
		y[i] = !k ? 0.0f : apply ? x[i] / keep : x[i];
	}
	return 0;
}

static int k_dropout_grad(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	const float *dy = in[0].data;
	const uint8_t *mask = in[1].data;
	float *dx = out[0].data, keep = 1.0f - n->attr.dropout.ratio;
	for (int64_t i = 0; i < numel(&out[0]); i++)
		dx[i] = mask[i] ? dy[i] / keep : 0.0f;
	return 0;
}

/* ---- Cast ---- */

/* f16 from a double, round to nearest even, with subnormals, overflow to inf, and NaN kept
 * quiet with the top payload bits. Going through a double (exact for every source dtype that
 * can reach the f16 range) avoids the double rounding of a float intermediate. */
static uint16_t f16_from_double(double x)
{
	uint64_t b;
	memcpy(&b, &x, sizeof b);
	uint16_t sign = (uint16_t)((b >> 48) & 0x8000u);
	int e = (int)((b >> 52) & 0x7ff);
	uint64_t frac = b & ((UINT64_C(1) << 52) - 1);
	if (e == 0x7ff)
		return sign | (frac ? (uint16_t)(0x7e00u | (frac >> 42)) : 0x7c00u);
	if (e == 0) /* zero or a double subnormal: far below half of the smallest f16 */
		return sign;
	int ue = e - 1023;
	if (ue > 15)
		return sign | 0x7c00u;
	/* Normal results: 11 significant bits, the biased exponent added below (a carry out of
	 * the mantissa rounds into the exponent, and up to inf). Subnormal: units of 2^-24. */
	uint64_t m = frac | (UINT64_C(1) << 52), base = 0;
	int shift = 42;
	if (ue >= -14)
		base = (uint64_t)(ue + 14) << 10;
	else
		shift = 28 - ue;
	if (shift > 60)
		return sign;
	uint64_t q = m >> shift, rem = m & ((UINT64_C(1) << shift) - 1);
	uint64_t half = UINT64_C(1) << (shift - 1);
	if (rem > half || (rem == half && (q & 1)))
		q++;
	return (uint16_t)(sign | (uint16_t)(base + q));
}

static double f16_to_double(uint16_t h)
{
	int e = (h >> 10) & 31, m = h & 1023;
	double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
	return h >> 15 ? -v : v;
}

/* One element in transit: a double for float sources, else the 64-bit two's complement
 * pattern of the integer (bool: 0 or 1) and its signedness. */
typedef struct Num {
	int is_float, is_signed;
	double f;
	uint64_t bits;
} Num;

static Num load_num(IrDType dt, const void *p, int64_t i)
{
	const uint8_t *b = (const uint8_t *)p + (size_t)i * ir_dtype_size(dt);
	Num v = {0, 1, 0.0, 0};
	union { float f; double d; uint16_t h; int8_t i8; int16_t i16; int32_t i32; int64_t i64;
		uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64; } u;
	memcpy(&u, b, ir_dtype_size(dt));
	switch (dt) {
	case IR_DT_F32: v.is_float = 1; v.f = u.f; break;
	case IR_DT_F64: v.is_float = 1; v.f = u.d; break;
	case IR_DT_F16: v.is_float = 1; v.f = f16_to_double(u.h); break;
	case IR_DT_I8: v.bits = (uint64_t)(int64_t)u.i8; break;
	case IR_DT_I16: v.bits = (uint64_t)(int64_t)u.i16; break;
	case IR_DT_I32: v.bits = (uint64_t)(int64_t)u.i32; break;
	case IR_DT_I64: v.bits = (uint64_t)u.i64; break;
	case IR_DT_U8: v.is_signed = 0; v.bits = u.u8; break;
	case IR_DT_U16: v.is_signed = 0; v.bits = u.u16; break;
	case IR_DT_U32: v.is_signed = 0; v.bits = u.u32; break;
	case IR_DT_U64: v.is_signed = 0; v.bits = u.u64; break;
	default: v.is_signed = 0; v.bits = u.u8 != 0; break; /* bool */
	}
	return v;
}

/* Float to a `bits`-wide integer: truncation toward zero, saturating out of range, NaN -> 0
 * (never the undefined behaviour of a C conversion out of range). */
static uint64_t float_to_int(double f, int bits, int is_signed)
{
	if (f != f)
		return 0;
	if (is_signed) {
		double lim = ldexp(1.0, bits - 1);
		if (f >= lim)
			return (UINT64_C(1) << (bits - 1)) - 1;
		if (f <= -lim)
			return (uint64_t)0 - (UINT64_C(1) << (bits - 1));
		return (uint64_t)(int64_t)f;
	}
	if (f <= 0.0)
		return 0;
	if (f >= ldexp(1.0, bits))
		return bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
	return (uint64_t)f;
}

static double int_to_double(const Num *v)
{
	return v->is_signed ? (double)(int64_t)v->bits : (double)v->bits;
}

static float num_to_f32(const Num *v)
{
	if (v->is_float)
		return (float)v->f;
	/* one rounding, straight from the integer */
	return v->is_signed ? (float)(int64_t)v->bits : (float)v->bits;
}

/* The low es bytes of bits, as an es-byte integer (the same pattern for signed and unsigned). */
static void store_bits(uint8_t *b, size_t es, uint64_t bits)
{
	uint8_t u8 = (uint8_t)bits;
	uint16_t u16 = (uint16_t)bits;
	uint32_t u32 = (uint32_t)bits;
	switch (es) {
	case 1: memcpy(b, &u8, 1); break;
	case 2: memcpy(b, &u16, 2); break;
	case 4: memcpy(b, &u32, 4); break;
	default: memcpy(b, &bits, 8); break;
	}
}

/* Integer targets keep the low bits of the integer pattern (two's complement wrap, as numpy
 * and ONNX Runtime do); from floats they saturate. */
static void store_num(IrDType dt, void *p, int64_t i, const Num *v)
{
	size_t es = ir_dtype_size(dt);
	uint8_t *b = (uint8_t *)p + (size_t)i * es;
	int is_signed = dt == IR_DT_I8 || dt == IR_DT_I16 || dt == IR_DT_I32 || dt == IR_DT_I64;
	uint64_t bits = v->bits;
	if (dt == IR_DT_F32) {
		float f = num_to_f32(v);
		memcpy(b, &f, 4);
		return;
	}
	if (dt == IR_DT_F64) {
		double d = v->is_float ? v->f : int_to_double(v);
		memcpy(b, &d, 8);
		return;
	}
	if (dt == IR_DT_F16) {
		uint16_t h = f16_from_double(v->is_float ? v->f : int_to_double(v));
		memcpy(b, &h, 2);
		return;
	}
	if (dt == IR_DT_BOOL) {
		*b = (uint8_t)(v->is_float ? v->f != 0.0 : v->bits != 0);
		return;
	}
	if (v->is_float)
		bits = float_to_int(v->f, (int)es * 8, is_signed);
	store_bits(b, es, bits);
}

static int k_cast(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	(void)n;
	IrDType from = in[0].type->dt, to = out[0].type->dt;
	for (int64_t i = 0; i < numel(&in[0]); i++) {
		Num v = load_num(from, in[0].data, i);
		store_num(to, out[0].data, i, &v);
	}
	return 0;
}

void ir_interp_store_scalar(IrDType dt, void *p, int64_t i, double v)
{
	Num x = {1, 1, v, 0};
	store_num(dt, p, i, &x);
}

/* ---- reductions and losses ---- */

/* Numpy-style reduction of x to the target shape: sums in double, in scratch. When the
 * trailing input dims are reduced (a conv bias's gradient: [N, M, H, W] to M), each output
 * sums its contiguous runs over them in the IR_SUM_LANES order (ir.h); otherwise each input
 * row adds into its outputs in order. */
static int k_sum_to(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)n;
	int64_t xd[R], od[R], st[R], mo = numel(&out[0]);
	int rx = shape_of(in[0].type, xd);
	bcast_strides(rx, shape_of(out[0].type, od), od, st);
	int t = rx;
	int64_t run = 1;
	while (t > 0 && (st[t - 1] == 0 || xd[t - 1] == 1))
		run *= xd[--t];
	int lanes = run > 1 ? IR_SUM_LANES + 1 : 1; /* lane sums, then the tail */
	double *acc = ir_interp_scratch(ip, sizeof(double) * (size_t)(mo * lanes));
	if (!acc)
		return -1;
	memset(acc, 0, sizeof(double) * (size_t)(mo * lanes));
	const float *x = in[0].data;
	float *y = out[0].data;
	if (run > 1) {
		int64_t rows = numel(&in[0]) / run, whole = run / IR_SUM_LANES * IR_SUM_LANES;
		for (int64_t row = 0; row < rows; row++) {
			double *a = acc + index_off(row, t, xd, st) * lanes;
			for (int64_t j = 0; j < run; j++)
				a[j < whole ? j % IR_SUM_LANES : IR_SUM_LANES] += x[row * run + j];
		}
		for (int64_t i = 0; i < mo; i++) {
			double s = acc[i * lanes + IR_SUM_LANES];
			for (int l = 0; l < IR_SUM_LANES; l++)
				s += acc[i * lanes + l];
			y[i] = (float)s;
		}
		return 0;
	}
	int64_t inner = xd[rx - 1], rows = inner ? numel(&in[0]) / inner : 0;
	for (int64_t row = 0; row < rows; row++) {
		double *a = acc + index_off(row, rx - 1, xd, st);
		for (int64_t j = 0; j < inner; j++)
			a[j * st[rx - 1]] += x[row * inner + j];
	}
	for (int64_t i = 0; i < mo; i++)
		y[i] = (float)acc[i];
	return 0;
}

static int check_label(IrInterp *ip, int64_t label, int64_t row, int64_t C)
{
	if (label >= 0 && label < C)
		return 0;
	ir_interp_fail(ip, "label %lld of row %lld is out of range [0, %lld)", (long long)label,
		       (long long)row, (long long)C);
	return -1;
}

/* mean over rows of logsumexp(logits[n]) - logits[n, label[n]] */
static int k_xent(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)n;
	int64_t N = in[0].type->dims[0], C = in[0].type->dims[1];
	const int64_t *lab = in[1].data;
	double total = 0.0;
	for (int64_t r = 0; r < N; r++) {
		const float *x = (const float *)in[0].data + r * C;
		float mx;
		if (check_label(ip, lab[r], r, C))
			return -1;
		double s = group_sumexp(x, C, 1, &mx);
		total += (double)mx + log(s) - (double)x[lab[r]];
	}
	*(float *)out[0].data = N ? (float)(total / (double)N) : 0.0f;
	return 0;
}

/* (softmax(logits) - onehot(label)) / N */
static int k_xent_grad(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)n;
	int64_t N = in[0].type->dims[0], C = in[0].type->dims[1];
	const int64_t *lab = in[1].data;
	for (int64_t r = 0; r < N; r++) {
		const float *x = (const float *)in[0].data + r * C;
		float *g = (float *)out[0].data + r * C, mx;
		if (check_label(ip, lab[r], r, C))
			return -1;
		double s = group_sumexp(x, C, 1, &mx);
		for (int64_t c = 0; c < C; c++) {
			double p = exp((double)x[c] - (double)mx) / s;
			g[c] = (float)((p - (c == lab[r])) / (double)N);
		}
	}
	return 0;
}

/* MSE: mean((p - t)^2); its gradient 2 (p - t) / numel. */
static int k_mse(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)ip;
	const float *p = in[0].data, *t = in[1].data;
	int64_t m = numel(&in[0]);
	if (n->op == IR_OP_MSE_GRAD) {
		for (int64_t i = 0; i < m; i++)
			((float *)out[0].data)[i] = (float)(2.0 * ((double)p[i] - t[i]) / (double)m);
		return 0;
	}
	double s = 0.0;
	for (int64_t i = 0; i < m; i++)
		s += ((double)p[i] - t[i]) * ((double)p[i] - t[i]);
	*(float *)out[0].data = m ? (float)(s / (double)m) : 0.0f;
	return 0;
}

/* ---- LNS and optimizers (RAW: storage as it is) ---- */

/* The forward view of a stored weight: lns -> lns (LNS.md 5), lns -> f32 (decode), or a
 * plain copy. Its scale offset follows from the weight's (static for parameters, so the
 * value the executor stored at init). */
static int k_weight_view(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)n;
	const IrType *tw = in[0].type, *tv = out[0].type;
	int64_t m = numel(&in[0]);
	if (tw->dt == IR_DT_LNS && tv->dt == IR_DT_LNS) {
		out[0].k = lns_view_offset(tw->fmt, in[0].k, tv->fmt);
		for (int64_t i = 0; i < m; i++) {
			uint32_t w = lns_load(tw->fmt, in[0].data, (size_t)i);
			lns_store(tv->fmt, out[0].data, (size_t)i,
				  lns_view_word(tw->fmt, in[0].k, w, tv->fmt, out[0].k));
		}
	} else if (tw->dt == IR_DT_LNS) {
		lns_decode_tensor(tw->fmt, in[0].k, in[0].data, out[0].data, (size_t)m);
	} else if (tv->dt == tw->dt) {
		memcpy(out[0].data, in[0].data, ir_type_bytes(tw));
	} else {
		ir_interp_fail(ip, "an f32 weight has no LNS view (quantize it instead)");
		return -1;
	}
	return 0;
}

/* The values of t as f32: its own storage, or decoded into kernel scratch. */
static float *as_f32(IrInterp *ip, const IrTensor *t)
{
	if (t->type->dt != IR_DT_LNS)
		return t->data;
	float *f = ir_interp_scratch(ip, sizeof(float) * (size_t)numel(t));
	if (f)
		lns_decode_tensor(t->type->fmt, t->k, t->data, f, (size_t)numel(t));
	return f;
}

/* After an additive update of an LNS weight (lns-sgd, lns-adam): re-encode with nearest
 * rounding and the weight's fixed scale offset. Updates smaller than half a code step are
 * lost: the effect LNS.md's additive recipes exist to show. */
static int store_weights(IrInterp *ip, const IrNode *n, const IrTensor *w, const float *x)
{
	if (w->type->dt != IR_DT_LNS)
		return 0; /* updated in place */
	if (ir_interp_check_finite(ip, n->in[0], x, (size_t)numel(w)))
		return -1;
	LnsFormat f = w->type->fmt;
	f.round = LNS_ROUND_NEAREST;
	f.scale = LNS_SCALE_STATIC;
	uint32_t key = ir_interp_rng_key(ip, n->in[0]);
	for (int64_t i = 0; i < numel(w); i++) {
		int fl;
		uint32_t c = lns_encode(f, w->k, x[i], lns_rng_bits(key, (uint32_t)i), &fl);
		lns_store(f, w->data, (size_t)i, c);
	}
	return 0;
}

/* Madam on the codes of an LNS weight (lns_madam_update; LNS.md 5). */
static int k_madam(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)out;
	const IrAttrOpt *o = &n->attr.opt;
	if (in[0].type->dt != IR_DT_LNS) {
		ir_interp_fail(ip, "Madam updates LNS weights; '%s' is %s", n->in[0]->name,
			       ir_dtype_name(in[0].type->dt));
		return -1;
	}
	const float *gw = as_f32(ip, &in[1]);
	if (!gw)
		return -1;
	LnsMadamParams p = {.lr = o->lr, .p_scale = o->p_scale, .g_bound = o->g_bound,
			    .beta2 = o->beta2};
	lns_madam_update(in[0].type->fmt, &p, ir_interp_step(ip), in[0].data, gw, in[2].data,
			 (size_t)numel(&in[0]), ir_interp_rng_key(ip, n->in[0]));
	return 0;
}

/* torch.optim.SGD (dampening 0, no Nesterov): g += wd W; buf = momentum buf + g (buf starts
 * at 0, so the first step gives buf = g as in PyTorch); W -= lr buf (lr g without momentum). */
static int k_sgd(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)out;
	const IrAttrOpt *o = &n->attr.opt;
	float *w = as_f32(ip, &in[0]), *buf = in[2].data;
	const float *g = as_f32(ip, &in[1]);
	if (!w || !g)
		return -1;
	for (int64_t i = 0; i < numel(&in[0]); i++) {
		float d = g[i];
		if (o->weight_decay != 0.0f)
			d += o->weight_decay * w[i];
		if (o->momentum != 0.0f) {
			buf[i] = o->momentum * buf[i] + d;
			d = buf[i];
		}
		w[i] -= o->lr * d;
	}
	return store_weights(ip, n, &in[0], w);
}

/* torch.optim.Adam (not AdamW; amsgrad off), step t 1-based:
 *   g += wd W;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   W -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * with the bias corrections in double, as PyTorch computes them on the host. */
static int k_adam(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out)
{
	(void)out;
	const IrAttrOpt *o = &n->attr.opt;
	float *w = as_f32(ip, &in[0]), *m = in[2].data, *v = in[3].data;
	const float *g = as_f32(ip, &in[1]);
	if (!w || !g)
		return -1;
	double t = (double)ir_interp_step(ip);
	float step = (float)((double)o->lr / (1.0 - pow((double)o->beta1, t)));
	float bc2 = (float)sqrt(1.0 - pow((double)o->beta2, t));
	for (int64_t i = 0; i < numel(&in[0]); i++) {
		float d = g[i];
		if (o->weight_decay != 0.0f)
			d += o->weight_decay * w[i];
		m[i] = o->beta1 * m[i] + (1.0f - o->beta1) * d;
		v[i] = o->beta2 * v[i] + (1.0f - o->beta2) * d * d;
		w[i] -= step * (m[i] / (sqrtf(v[i]) / bc2 + o->eps));
	}
	return store_weights(ip, n, &in[0], w);
}

/* Constant has no kernel: the importer folds Constant nodes into constant values, so the
 * IR never holds one (ir_ops_check skips it). Quantize is a copy: the executor encodes its
 * output into the output's LNS format. The convolutional ops' kernels are in interp_nn.c. */
const IrInterpFn ir_interp_table[IR_OP_COUNT] = {
	[IR_OP_GEMM] = k_gemm,
	[IR_OP_MATMUL] = k_matmul,
	[IR_OP_ADD] = k_binary,
	[IR_OP_SUB] = k_binary,
	[IR_OP_MUL] = k_binary,
	[IR_OP_DIV] = k_binary,
	[IR_OP_NEG] = k_unary,
	[IR_OP_RELU] = k_unary,
	[IR_OP_LEAKY_RELU] = k_unary,
	[IR_OP_SIGMOID] = k_unary,
	[IR_OP_TANH] = k_unary,
	[IR_OP_SOFTMAX] = k_softmax,
	[IR_OP_LOG_SOFTMAX] = k_softmax,
	[IR_OP_FLATTEN] = k_copy,
	[IR_OP_RESHAPE] = k_copy,
	[IR_OP_TRANSPOSE] = k_transpose,
	[IR_OP_SQUEEZE] = k_copy,
	[IR_OP_UNSQUEEZE] = k_copy,
	[IR_OP_CONCAT] = k_concat,
	[IR_OP_IDENTITY] = k_copy,
	[IR_OP_DROPOUT] = k_dropout,
	[IR_OP_CAST] = k_cast,
	[IR_OP_SUM_TO] = k_sum_to,
	[IR_OP_SLICE] = k_slice,
	[IR_OP_RELU_GRAD] = k_grad_pair,
	[IR_OP_LEAKY_RELU_GRAD] = k_grad_pair,
	[IR_OP_SIGMOID_GRAD] = k_grad_pair,
	[IR_OP_TANH_GRAD] = k_grad_pair,
	[IR_OP_SOFTMAX_GRAD] = k_softmax_grad,
	[IR_OP_LOG_SOFTMAX_GRAD] = k_softmax_grad,
	[IR_OP_DROPOUT_GRAD] = k_dropout_grad,
	[IR_OP_XENT] = k_xent,
	[IR_OP_XENT_GRAD] = k_xent_grad,
	[IR_OP_MSE] = k_mse,
	[IR_OP_MSE_GRAD] = k_mse,
	[IR_OP_QUANTIZE] = k_copy,
	[IR_OP_WEIGHT_VIEW] = k_weight_view,
	[IR_OP_MADAM] = k_madam,
	[IR_OP_SGD] = k_sgd,
	[IR_OP_ADAM] = k_adam,
	[IR_OP_CONV] = ir_k_conv,
	[IR_OP_CONV_GRAD_X] = ir_k_conv_grad_x,
	[IR_OP_CONV_GRAD_W] = ir_k_conv_grad_w,
	[IR_OP_BATCH_NORM] = ir_k_batch_norm,
	[IR_OP_BATCH_NORM_GRAD] = ir_k_batch_norm_grad,
	[IR_OP_MAX_POOL] = ir_k_max_pool,
	[IR_OP_GLOBAL_MAX_POOL] = ir_k_max_pool,
	[IR_OP_AVG_POOL] = ir_k_avg_pool,
	[IR_OP_GLOBAL_AVG_POOL] = ir_k_avg_pool,
	[IR_OP_MAX_POOL_GRAD] = ir_k_max_pool_grad,
	[IR_OP_AVG_POOL_GRAD] = ir_k_avg_pool_grad,
	[IR_OP_PAD] = ir_k_pad,
	[IR_OP_CLIP] = ir_k_clip,
	[IR_OP_CLIP_GRAD] = ir_k_clip_grad,
	[IR_OP_ASSIGN] = ir_k_assign,
};
