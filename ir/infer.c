/* infer.c: shape and type inference for every op of ops.def; ir_build calls it on each node.
 *
 * One function per op family, gathered in ir_infer_table. Each checks its inputs (rank, dims,
 * dtype, attributes) and writes the output types; an ill-typed node gets a diagnostic that
 * names the node and the offending shapes, and is never built. The dtype rules are uniform:
 * compute ops read f32 or LNS (an LNS input is a float whose storage the precision pass
 * chose) and produce f32, which the precision pass may later turn into an LNS format; data
 * movement ops (IR_OPF_MOVE) keep the dtype and LNS format of their input, since they copy
 * values without rounding them. Attributes arrive resolved (axes normalised, shapes without
 * 0 or -1) from the importer or the pass that built the node; here they are only checked.
 */
#include <stdarg.h>
#include <string.h>

#include "ir/ir.h"

/* ---- diagnostics ---- */

static int fail_st(IrGraph *g, const IrNode *n, IrStatus st, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail_st(IrGraph *g, const IrNode *n, IrStatus st, const char *fmt, ...)
{
	char buf[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	ir_node_error(g, n, st, "%s", buf);
	return -1;
}

#define fail(g, n, ...) fail_st(g, n, IR_ERR_INPUT, __VA_ARGS__)

/* "[4,3]" */
static const char *dims_str(int rank, const int64_t *d, char *buf, size_t n)
{
	size_t len = (size_t)snprintf(buf, n, "[");
	for (int i = 0; i < rank && len < n; i++)
		len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? "," : "", (long long)d[i]);
	if (len < n)
		snprintf(buf + len, n - len, "]");
	return buf;
}

#define SHAPE(t, buf) dims_str((t)->rank, (t)->dims, buf, sizeof buf)

/* ---- dtype rules ---- */

static int is_float_in(const IrType *t)
{
	return t->dt == IR_DT_F32 || t->dt == IR_DT_LNS;
}

static int want_float(IrGraph *g, const IrNode *n, int i)
{
	const IrType *t = n->in[i]->type;
	if (is_float_in(t))
		return 0;
	return fail_st(g, n, IR_ERR_UNSUPPORTED, "unsupported dtype %s (input %d '%s')",
		       ir_dtype_name(t->dt), i, n->in[i]->name);
}

static int want_floats(IrGraph *g, const IrNode *n)
{
	for (int i = 0; i < n->nin; i++)
		if (want_float(g, n, i))
			return -1;
	return 0;
}

static int want_rank(IrGraph *g, const IrNode *n, int i, int rank, const char *what)
{
	char b[160];
	const IrType *t = n->in[i]->type;
	if (t->rank == rank)
		return 0;
	return fail(g, n, "%s must be %d-D, got %s", what, rank, SHAPE(t, b));
}

static int want_same_shape(IrGraph *g, const IrNode *n, int i, int j)
{
	char a[160], b[160];
	const IrType *ti = n->in[i]->type, *tj = n->in[j]->type;
	if (ir_type_same_shape(ti, tj))
		return 0;
	return fail(g, n, "input %d '%s' is %s but input %d '%s' is %s", i, n->in[i]->name,
		    SHAPE(ti, a), j, n->in[j]->name, SHAPE(tj, b));
}

static int want_axis(IrGraph *g, const IrNode *n, int axis, int rank, int inclusive)
{
	int hi = inclusive ? rank : rank - 1;
	if (axis >= 0 && axis <= hi)
		return 0;
	return fail(g, n, "axis %d is out of range for rank %d", axis, rank);
}

/* Output types; the interning constructors report absurd shapes themselves. */
static int set_f32(IrGraph *g, const IrType **out, int i, int rank, const int64_t *dims)
{
	out[i] = ir_type(g->ctx, IR_DT_F32, rank, dims);
	return out[i] ? 0 : -1;
}

static int set_like(IrGraph *g, const IrType **out, int i, const IrType *t, int rank,
		    const int64_t *dims)
{
	out[i] = ir_type_with_shape(g->ctx, t, rank, dims);
	return out[i] ? 0 : -1;
}

/* ---- broadcasting ---- */

int ir_broadcast_shape(int ra, const int64_t *a, int rb, const int64_t *b, int *rout,
		       int64_t *out)
{
	int r = ra > rb ? ra : rb;
	if (r > IR_MAX_RANK)
		return -1;
	for (int i = 0; i < r; i++) {
		int ia = i - (r - ra), ib = i - (r - rb);
		int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
		if (da == db || db == 1)
			out[i] = da;
		else if (da == 1)
			out[i] = db;
		else
			return -1;
	}
	*rout = r;
	return 0;
}

/* Can `from` broadcast to `to` in one direction only (Gemm's C, SumTo's target)? */
static int unidir(const IrType *from, int rt, const int64_t *to)
{
	if (from->rank > rt)
		return 0;
	for (int i = 0; i < from->rank; i++) {
		int64_t f = from->dims[i], t = to[rt - from->rank + i];
		if (f != t && f != 1)
			return 0;
	}
	return 1;
}

/* ---- GEMM family ---- */

static int infer_gemm(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrAttrGemm *at = &n->attr.gemm;
	char a[160], b[160], c[160];
	if (want_floats(g, n) || want_rank(g, n, 0, 2, "A") || want_rank(g, n, 1, 2, "B"))
		return -1;
	const IrType *A = n->in[0]->type, *B = n->in[1]->type;
	int64_t M = A->dims[at->trans_a ? 1 : 0], K = A->dims[at->trans_a ? 0 : 1];
	int64_t Kb = B->dims[at->trans_b ? 1 : 0], N = B->dims[at->trans_b ? 0 : 1];
	if (K != Kb)
		return fail(g, n, "inner dimensions differ: A is %s (transA=%d), B is %s (transB=%d)",
			    SHAPE(A, a), at->trans_a != 0, SHAPE(B, b), at->trans_b != 0);
	int64_t mn[2] = {M, N};
	if (n->nin > 2 && !unidir(n->in[2]->type, 2, mn))
		return fail(g, n, "C is %s, not broadcastable to %s", SHAPE(n->in[2]->type, c),
			    dims_str(2, mn, a, sizeof a));
	return set_f32(g, out, 0, 2, mn);
}

static int infer_matmul(IrGraph *g, IrNode *n, const IrType **out)
{
	char a[160], b[160];
	if (want_floats(g, n))
		return -1;
	const IrType *A = n->in[0]->type, *B = n->in[1]->type;
	if (A->rank < 2 || B->rank < 2)
		return fail(g, n, "operands must have rank >= 2, got %s and %s", SHAPE(A, a),
			    SHAPE(B, b));
	int64_t K = A->dims[A->rank - 1], Kb = B->dims[B->rank - 2];
	if (K != Kb)
		return fail(g, n, "inner dimensions differ: A is %s, B is %s", SHAPE(A, a),
			    SHAPE(B, b));
	int64_t dims[IR_MAX_RANK];
	int r;
	if (ir_broadcast_shape(A->rank - 2, A->dims, B->rank - 2, B->dims, &r, dims))
		return fail(g, n, "batch dimensions of %s and %s are not broadcastable",
			    SHAPE(A, a), SHAPE(B, b));
	dims[r] = A->dims[A->rank - 2];
	dims[r + 1] = B->dims[B->rank - 1];
	return set_f32(g, out, 0, r + 2, dims);
}

/* ---- elementwise ---- */

static int infer_binary(IrGraph *g, IrNode *n, const IrType **out)
{
	char a[160], b[160];
	if (want_floats(g, n))
		return -1;
	const IrType *A = n->in[0]->type, *B = n->in[1]->type;
	int64_t dims[IR_MAX_RANK];
	int r;
	if (ir_broadcast_shape(A->rank, A->dims, B->rank, B->dims, &r, dims))
		return fail(g, n, "shapes %s and %s are not broadcastable", SHAPE(A, a),
			    SHAPE(B, b));
	return set_f32(g, out, 0, r, dims);
}

static int infer_unary(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrType *x = n->in[0]->type;
	if (want_floats(g, n))
		return -1;
	return set_f32(g, out, 0, x->rank, x->dims);
}

/* Softmax, LogSoftmax: the axis must name a dimension (legacy or not). */
static int infer_softmax(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrType *x = n->in[0]->type;
	if (want_floats(g, n) || want_axis(g, n, n->attr.axis.axis, x->rank, 0))
		return -1;
	return set_f32(g, out, 0, x->rank, x->dims);
}

/* (dY, Y) or (dY, X) pairs of the same shape: the gradient helpers. */
static int infer_grad_pair(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrType *dy = n->in[0]->type;
	if (want_floats(g, n) || want_same_shape(g, n, 0, 1))
		return -1;
	if ((n->op == IR_OP_SOFTMAX_GRAD || n->op == IR_OP_LOG_SOFTMAX_GRAD) &&
	    want_axis(g, n, n->attr.axis.axis, dy->rank, 0))
		return -1;
	return set_f32(g, out, 0, dy->rank, dy->dims);
}

static int check_ratio(IrGraph *g, const IrNode *n)
{
	float r = n->attr.dropout.ratio;
	if (r >= 0.0f && r < 1.0f)
		return 0;
	return fail(g, n, "ratio %g is out of range [0, 1)", (double)r);
}

static int infer_dropout(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrType *x = n->in[0]->type;
	if (want_floats(g, n) || check_ratio(g, n) || set_f32(g, out, 0, x->rank, x->dims))
		return -1;
	out[1] = ir_type(g->ctx, IR_DT_BOOL, x->rank, x->dims);
	return out[1] ? 0 : -1;
}

static int infer_dropout_grad(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrType *dy = n->in[0]->type, *mask = n->in[1]->type;
	if (want_float(g, n, 0) || check_ratio(g, n) || want_same_shape(g, n, 0, 1))
		return -1;
	if (mask->dt != IR_DT_BOOL)
		return fail(g, n, "mask '%s' must be bool, got %s", n->in[1]->name,
			    ir_dtype_name(mask->dt));
	return set_f32(g, out, 0, dy->rank, dy->dims);
}

static int infer_cast(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrType *x = n->in[0]->type;
	IrDType to = n->attr.cast.to;
	if ((unsigned)to >= IR_DT_COUNT || to == IR_DT_LNS)
		return fail_st(g, n, IR_ERR_UNSUPPORTED, "cannot cast to dtype %s",
			       ir_dtype_name(to));
	out[0] = ir_type(g->ctx, to, x->rank, x->dims);
	return out[0] ? 0 : -1;
}

/* ---- data movement: dtype and LNS format of the input are kept ---- */

static int infer_flatten(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrType *x = n->in[0]->type;
	int axis = n->attr.axis.axis;
	if (want_axis(g, n, axis, x->rank, 1))
		return -1;
	int64_t d[2] = {1, 1};
	for (int i = 0; i < x->rank; i++)
		d[i >= axis] *= x->dims[i];
	return set_like(g, out, 0, x, 2, d);
}

static int infer_reshape(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrType *x = n->in[0]->type;
	const IrAttrShape *s = &n->attr.shape;
	char a[160], b[160];
	if (s->rank < 0 || s->rank > IR_MAX_RANK)
		return fail(g, n, "target rank %d is out of range", s->rank);
	int64_t numel = 1;
	for (int i = 0; i < s->rank; i++) {
		if (s->dims[i] < 0)
			return fail(g, n, "target shape %s has a negative dimension",
				    dims_str(s->rank, s->dims, a, sizeof a));
		numel *= s->dims[i];
	}
	if (numel != x->numel)
		return fail(g, n, "cannot reshape %s (%lld elements) to %s (%lld elements)",
			    SHAPE(x, a), (long long)x->numel, dims_str(s->rank, s->dims, b, sizeof b),
			    (long long)numel);
	return set_like(g, out, 0, x, s->rank, s->dims);
}

static int infer_transpose(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrType *x = n->in[0]->type;
	const IrAttrPerm *p = &n->attr.perm;
	int seen[IR_MAX_RANK] = {0};
	int64_t d[IR_MAX_RANK];
	if (p->n != x->rank)
		return fail(g, n, "perm has %d entries, input rank is %d", p->n, x->rank);
	for (int i = 0; i < p->n; i++) {
		int a = p->perm[i];
		if (a < 0 || a >= x->rank || seen[a]++)
			return fail(g, n, "perm is not a permutation of 0..%d", x->rank - 1);
		d[i] = x->dims[a];
	}
	return set_like(g, out, 0, x, x->rank, d);
}

/* Axes are sorted and distinct: checked here for both Squeeze and Unsqueeze. */
static int check_axes(IrGraph *g, const IrNode *n, int rank)
{
	const IrAttrAxes *a = &n->attr.axes;
	for (int i = 0; i < a->n; i++) {
		if (a->axes[i] < 0 || a->axes[i] >= rank)
			return fail(g, n, "axis %d is out of range for rank %d", a->axes[i], rank);
		if (i && a->axes[i] <= a->axes[i - 1])
			return fail(g, n, "axes must be sorted and distinct");
	}
	return 0;
}

/* No axes: every dimension of size 1 goes (ONNX's default). */
static int infer_squeeze(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrType *x = n->in[0]->type;
	const IrAttrAxes *a = &n->attr.axes;
	char b[160];
	int64_t d[IR_MAX_RANK];
	int r = 0, j = 0;
	if (a->n < 0 || a->n > x->rank)
		return fail(g, n, "cannot squeeze %d axes of rank %d", a->n, x->rank);
	if (check_axes(g, n, x->rank))
		return -1;
	for (int i = 0; i < x->rank; i++) {
		int listed = j < a->n && a->axes[j] == i;
		j += listed;
		if (listed && x->dims[i] != 1)
			return fail(g, n, "cannot squeeze axis %d of %s: size is not 1", i,
				    SHAPE(x, b));
		if (!listed && !(a->n == 0 && x->dims[i] == 1))
			d[r++] = x->dims[i];
	}
	return set_like(g, out, 0, x, r, d);
}

static int infer_unsqueeze(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrType *x = n->in[0]->type;
	const IrAttrAxes *a = &n->attr.axes;
	int r = x->rank + a->n, j = 0, k = 0;
	int64_t d[IR_MAX_RANK];
	if (a->n < 1 || r > IR_MAX_RANK)
		return fail(g, n, "cannot insert %d axes into rank %d", a->n, x->rank);
	if (check_axes(g, n, r))
		return -1;
	for (int i = 0; i < r; i++) {
		if (j < a->n && a->axes[j] == i) {
			d[i] = 1;
			j++;
		} else {
			d[i] = x->dims[k++];
		}
	}
	return set_like(g, out, 0, x, r, d);
}

static int same_storage(const IrType *a, const IrType *b)
{
	return a->dt == b->dt && !memcmp(&a->fmt, &b->fmt, sizeof a->fmt);
}

static int infer_concat(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrType *x = n->in[0]->type;
	int axis = n->attr.axis.axis;
	char a[160], b[160];
	if (want_axis(g, n, axis, x->rank, 0))
		return -1;
	int64_t d[IR_MAX_RANK];
	memcpy(d, x->dims, sizeof(int64_t) * (size_t)x->rank);
	for (int i = 1; i < n->nin; i++) {
		const IrType *t = n->in[i]->type;
		if (!same_storage(x, t))
			return fail(g, n, "input %d '%s' is %s but input 0 is %s", i,
				    n->in[i]->name, ir_type_str(t, 0, a, sizeof a),
				    ir_type_str(x, 0, b, sizeof b));
		int ok = t->rank == x->rank;
		for (int j = 0; ok && j < x->rank; j++)
			ok = j == axis || t->dims[j] == x->dims[j];
		if (!ok)
			return fail(g, n, "input %d '%s' is %s, does not match %s outside axis %d",
				    i, n->in[i]->name, SHAPE(t, a), SHAPE(x, b), axis);
		d[axis] += t->dims[axis];
	}
	return set_like(g, out, 0, x, x->rank, d);
}

static int infer_identity(IrGraph *g, IrNode *n, const IrType **out)
{
	(void)g;
	out[0] = n->in[0]->type;
	return 0;
}

static int infer_slice(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrType *x = n->in[0]->type;
	const IrAttrSlice *s = &n->attr.slice;
	char b[160];
	if (want_axis(g, n, s->axis, x->rank, 0))
		return -1;
	if (s->start < 0 || s->start > s->end || s->end > x->dims[s->axis])
		return fail(g, n, "slice [%lld, %lld) of axis %d is out of range for %s",
			    (long long)s->start, (long long)s->end, s->axis, SHAPE(x, b));
	int64_t d[IR_MAX_RANK];
	memcpy(d, x->dims, sizeof(int64_t) * (size_t)x->rank);
	d[s->axis] = s->end - s->start;
	return set_like(g, out, 0, x, x->rank, d);
}

/* ---- gradient helpers, losses ---- */

static int infer_sum_to(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrType *x = n->in[0]->type;
	const IrAttrShape *s = &n->attr.shape;
	char a[160], b[160];
	if (want_floats(g, n))
		return -1;
	if (s->rank < 0 || s->rank > IR_MAX_RANK)
		return fail(g, n, "target rank %d is out of range", s->rank);
	/* The target must broadcast to x: the same test as Gemm's C, with roles swapped. */
	const IrType *t = ir_type(g->ctx, IR_DT_F32, s->rank, s->dims);
	if (!t)
		return -1;
	if (!unidir(t, x->rank, x->dims))
		return fail(g, n, "cannot sum %s to %s", SHAPE(x, a), SHAPE(t, b));
	out[0] = t;
	return 0;
}

static int check_labels(IrGraph *g, const IrNode *n)
{
	const IrType *lg = n->in[0]->type, *lb = n->in[1]->type;
	char a[160], b[160];
	if (want_float(g, n, 0) || want_rank(g, n, 0, 2, "logits"))
		return -1;
	if (lb->dt != IR_DT_I64)
		return fail_st(g, n, IR_ERR_UNSUPPORTED, "unsupported dtype %s (labels '%s'; i64 needed)",
			       ir_dtype_name(lb->dt), n->in[1]->name);
	if (lb->rank != 1 || lb->dims[0] != lg->dims[0])
		return fail(g, n, "labels are %s, logits are %s: labels must be [N]",
			    SHAPE(lb, a), SHAPE(lg, b));
	return 0;
}

static int infer_xent(IrGraph *g, IrNode *n, const IrType **out)
{
	if (check_labels(g, n))
		return -1;
	return set_f32(g, out, 0, 0, NULL);
}

static int infer_xent_grad(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrType *lg = n->in[0]->type;
	if (check_labels(g, n))
		return -1;
	return set_f32(g, out, 0, 2, lg->dims);
}

static int infer_mse(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrType *p = n->in[0]->type;
	if (want_floats(g, n) || want_same_shape(g, n, 0, 1))
		return -1;
	if (n->op == IR_OP_MSE)
		return set_f32(g, out, 0, 0, NULL);
	return set_f32(g, out, 0, p->rank, p->dims);
}

/* ---- convolutional networks (2-D, NCHW) ---- */

int64_t ir_window_out(int64_t in, int k, int stride, int dilation, int pad_begin, int pad_end,
		      int ceil_mode)
{
	if (k < 1 || stride < 1 || dilation < 1)
		return -1;
	int64_t span = in + pad_begin + pad_end - (int64_t)dilation * (k - 1) - 1;
	if (span < 0)
		return -1;
	int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
	/* PyTorch's rule: the last window must start inside the input or its begin pad */
	if (ceil_mode && (out - 1) * stride >= in + pad_begin)
		out--;
	return out;
}

static int want_nchw(IrGraph *g, const IrNode *n, int i, const char *what)
{
	if (want_float(g, n, i))
		return -1;
	const IrType *t = n->in[i]->type;
	if (t->rank == 4)
		return 0;
	char b[160];
	return fail_st(g, n, t->rank >= 3 ? IR_ERR_UNSUPPORTED : IR_ERR_INPUT,
		       "%s must be 4-D (N, C, H, W; only 2-D spatial ops are supported), got %s", what,
		       SHAPE(t, b));
}

static int want_window(IrGraph *g, const IrNode *n, const int *kernel, const int *stride,
		       const int *dil, const int *pad)
{
	for (int i = 0; i < 2; i++)
		if (kernel[i] < 1 || stride[i] < 1 || dil[i] < 1 || pad[i] < 0 || pad[i + 2] < 0)
			return fail(g, n, "kernel %dx%d, strides %d,%d, dilations %d,%d and pads "
				    "%d,%d,%d,%d must be positive (pads non-negative)", kernel[0],
				    kernel[1], stride[0], stride[1], dil[0], dil[1], pad[0], pad[1],
				    pad[2], pad[3]);
	return 0;
}

/* The output's H, W of a window op over x's spatial dims. */
static int window_hw(IrGraph *g, const IrNode *n, const int64_t *xhw, const int *kernel,
		     const int *stride, const int *dil, const int *pad, int ceil_mode, int64_t *ohw)
{
	for (int i = 0; i < 2; i++) {
		ohw[i] = ir_window_out(xhw[i], kernel[i], stride[i], dil[i], pad[i], pad[i + 2],
				       ceil_mode);
		if (ohw[i] < 1)
			return fail(g, n, "a %dx%d window (dilations %d,%d, pads %d,%d,%d,%d) does "
				    "not fit the input's %lldx%lld", kernel[0], kernel[1], dil[0],
				    dil[1], pad[0], pad[1], pad[2], pad[3], (long long)xhw[0],
				    (long long)xhw[1]);
	}
	return 0;
}

/* The weight a Conv reads: [M, C/group, kh, kw] against X's C. */
static int check_conv_weight(IrGraph *g, const IrNode *n, const IrType *x, const IrType *w)
{
	const IrAttrConv *a = &n->attr.conv;
	char b[160], c[160];
	if (a->group < 1 || x->dims[1] % a->group || w->dims[0] % a->group)
		return fail(g, n, "group %d must divide the input channels (%s) and the output "
			    "channels (%s)", a->group, SHAPE(x, b), SHAPE(w, c));
	if (w->dims[1] * a->group != x->dims[1] || w->dims[2] != a->kernel[0] ||
	    w->dims[3] != a->kernel[1])
		return fail(g, n, "weight %s does not match input %s with group %d and kernel %dx%d",
			    SHAPE(w, c), SHAPE(x, b), a->group, a->kernel[0], a->kernel[1]);
	return 0;
}

static int infer_conv(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrAttrConv *a = &n->attr.conv;
	if (want_nchw(g, n, 0, "X") || want_nchw(g, n, 1, "W") ||
	    want_window(g, n, a->kernel, a->stride, a->dilation, a->pad))
		return -1;
	const IrType *x = n->in[0]->type, *w = n->in[1]->type;
	if (check_conv_weight(g, n, x, w))
		return -1;
	if (n->nin > 2) {
		const IrType *bt = n->in[2]->type;
		char b[160];
		if (want_float(g, n, 2))
			return -1;
		if (bt->rank != 1 || bt->dims[0] != w->dims[0])
			return fail(g, n, "bias B is %s, expected [%lld]", SHAPE(bt, b),
				    (long long)w->dims[0]);
	}
	int64_t d[4] = {x->dims[0], w->dims[0], 0, 0};
	if (window_hw(g, n, x->dims + 2, a->kernel, a->stride, a->dilation, a->pad, 0, d + 2))
		return -1;
	return set_f32(g, out, 0, 4, d);
}

/* (dY, W) -> dX with X's spatial dims from attr.xhw. */
static int infer_conv_grad_x(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrAttrConv *a = &n->attr.conv;
	if (want_nchw(g, n, 0, "dY") || want_nchw(g, n, 1, "W") ||
	    want_window(g, n, a->kernel, a->stride, a->dilation, a->pad))
		return -1;
	const IrType *dy = n->in[0]->type, *w = n->in[1]->type;
	int64_t d[4] = {dy->dims[0], w->dims[1] * a->group, a->xhw[0], a->xhw[1]}, ohw[2];
	const IrType *x = ir_type(g->ctx, IR_DT_F32, 4, d);
	if (!x || check_conv_weight(g, n, x, w) ||
	    window_hw(g, n, a->xhw, a->kernel, a->stride, a->dilation, a->pad, 0, ohw))
		return -1;
	char b[160];
	if (dy->dims[1] != w->dims[0] || dy->dims[2] != ohw[0] || dy->dims[3] != ohw[1])
		return fail(g, n, "dY is %s, expected [%lld,%lld,%lld,%lld]", SHAPE(dy, b),
			    (long long)d[0], (long long)w->dims[0], (long long)ohw[0],
			    (long long)ohw[1]);
	return set_f32(g, out, 0, 4, d);
}

/* (dY, X) -> dW [M, C/group, kh, kw]. */
static int infer_conv_grad_w(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrAttrConv *a = &n->attr.conv;
	if (want_nchw(g, n, 0, "dY") || want_nchw(g, n, 1, "X") ||
	    want_window(g, n, a->kernel, a->stride, a->dilation, a->pad))
		return -1;
	const IrType *dy = n->in[0]->type, *x = n->in[1]->type;
	char b[160], c[160];
	if (a->group < 1 || x->dims[1] % a->group || dy->dims[1] % a->group)
		return fail(g, n, "group %d must divide the channels of X %s and dY %s", a->group,
			    SHAPE(x, b), SHAPE(dy, c));
	int64_t ohw[2];
	if (window_hw(g, n, x->dims + 2, a->kernel, a->stride, a->dilation, a->pad, 0, ohw))
		return -1;
	if (dy->dims[0] != x->dims[0] || dy->dims[2] != ohw[0] || dy->dims[3] != ohw[1])
		return fail(g, n, "dY %s does not match X %s", SHAPE(dy, c), SHAPE(x, b));
	int64_t d[4] = {dy->dims[1], x->dims[1] / a->group, a->kernel[0], a->kernel[1]};
	return set_f32(g, out, 0, 4, d);
}

static int check_channel_vectors(IrGraph *g, const IrNode *n, int from, int64_t c)
{
	char b[160];
	for (int i = from; i < n->nin; i++) {
		const IrType *t = n->in[i]->type;
		if (want_float(g, n, i))
			return -1;
		if (t->rank != 1 || t->dims[0] != c)
			return fail(g, n, "input %d '%s' is %s, expected [%lld] (one per channel)", i,
				    n->in[i]->name, SHAPE(t, b), (long long)c);
	}
	return 0;
}

static int check_bn_x(IrGraph *g, const IrNode *n, int i)
{
	char b[160];
	const IrType *x = n->in[i]->type;
	if (want_float(g, n, i))
		return -1;
	if (x->rank < 2)
		return fail(g, n, "X must be at least 2-D (N, C, ...), got %s", SHAPE(x, b));
	if (n->attr.bn.epsilon < 0 || !(n->attr.bn.momentum >= 0 && n->attr.bn.momentum <= 1))
		return fail(g, n, "epsilon %g must be >= 0 and momentum %g in [0, 1]",
			    n->attr.bn.epsilon, n->attr.bn.momentum);
	return 0;
}

static int infer_batch_norm(IrGraph *g, IrNode *n, const IrType **out)
{
	if (check_bn_x(g, n, 0))
		return -1;
	const IrType *x = n->in[0]->type;
	if (check_channel_vectors(g, n, 1, x->dims[1]) || set_f32(g, out, 0, x->rank, x->dims))
		return -1;
	for (int i = 1; i < 5; i++)
		if (set_f32(g, out, i, 1, x->dims + 1))
			return -1;
	return 0;
}

/* (dY, X, scale, batch_mean, batch_var) -> (dX, dscale, dB). */
static int infer_batch_norm_grad(IrGraph *g, IrNode *n, const IrType **out)
{
	if (check_bn_x(g, n, 1) || want_float(g, n, 0) || want_same_shape(g, n, 0, 1))
		return -1;
	const IrType *x = n->in[1]->type;
	if (check_channel_vectors(g, n, 2, x->dims[1]) || set_f32(g, out, 0, x->rank, x->dims) ||
	    set_f32(g, out, 1, 1, x->dims + 1) || set_f32(g, out, 2, 1, x->dims + 1))
		return -1;
	return 0;
}

static int check_pool(IrGraph *g, const IrNode *n, int i)
{
	const IrAttrPool *a = &n->attr.pool;
	return want_nchw(g, n, i, "X") ||
	       want_window(g, n, a->kernel, a->stride, a->dilation, a->pad);
}

/* MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool (the importer fills the kernel). */
static int infer_pool(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrAttrPool *a = &n->attr.pool;
	if (check_pool(g, n, 0))
		return -1;
	const IrType *x = n->in[0]->type;
	if ((n->op == IR_OP_GLOBAL_AVG_POOL || n->op == IR_OP_GLOBAL_MAX_POOL) &&
	    (a->kernel[0] != x->dims[2] || a->kernel[1] != x->dims[3]))
		return fail(g, n, "kernel %dx%d is not the input's spatial size %lldx%lld",
			    a->kernel[0], a->kernel[1], (long long)x->dims[2],
			    (long long)x->dims[3]);
	int64_t d[4] = {x->dims[0], x->dims[1], 0, 0};
	if (window_hw(g, n, x->dims + 2, a->kernel, a->stride, a->dilation, a->pad, a->ceil_mode,
		      d + 2))
		return -1;
	return set_f32(g, out, 0, 4, d);
}

/* (dY, X) -> dX like X. */
static int infer_max_pool_grad(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrAttrPool *a = &n->attr.pool;
	if (check_pool(g, n, 1) || want_nchw(g, n, 0, "dY"))
		return -1;
	const IrType *dy = n->in[0]->type, *x = n->in[1]->type;
	int64_t d[4] = {x->dims[0], x->dims[1], 0, 0};
	char b[160], c[160];
	if (window_hw(g, n, x->dims + 2, a->kernel, a->stride, a->dilation, a->pad, a->ceil_mode,
		      d + 2))
		return -1;
	if (!ir_type_same_shape(dy, ir_type(g->ctx, IR_DT_F32, 4, d)))
		return fail(g, n, "dY is %s but the pool of X %s is %s", SHAPE(dy, b), SHAPE(x, c),
			    dims_str(4, d, b, sizeof b));
	return set_f32(g, out, 0, 4, x->dims);
}

/* (dY) -> dX with X's spatial dims from attr.xhw. */
static int infer_avg_pool_grad(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrAttrPool *a = &n->attr.pool;
	if (check_pool(g, n, 0))
		return -1;
	const IrType *dy = n->in[0]->type;
	int64_t d[4] = {dy->dims[0], dy->dims[1], 0, 0};
	char b[160];
	if (window_hw(g, n, a->xhw, a->kernel, a->stride, a->dilation, a->pad, a->ceil_mode, d + 2))
		return -1;
	if (d[2] != dy->dims[2] || d[3] != dy->dims[3])
		return fail(g, n, "dY is %s but pooling %lldx%lld gives %lldx%lld", SHAPE(dy, b),
			    (long long)a->xhw[0], (long long)a->xhw[1], (long long)d[2],
			    (long long)d[3]);
	int64_t x[4] = {dy->dims[0], dy->dims[1], a->xhw[0], a->xhw[1]};
	return set_f32(g, out, 0, 4, x);
}

/* Pad: any dtype (a data move); negative pads crop. */
static int infer_pad(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrAttrPad *a = &n->attr.pad;
	const IrType *x = n->in[0]->type;
	char b[160];
	if (a->n != x->rank)
		return fail(g, n, "pads give %d dims but the input is %s", a->n, SHAPE(x, b));
	int64_t d[IR_MAX_RANK];
	for (int i = 0; i < x->rank; i++) {
		d[i] = x->dims[i] + a->pads[i] + a->pads[i + x->rank];
		if (d[i] < 1 || -a->pads[i] >= x->dims[i] || -a->pads[i + x->rank] >= x->dims[i])
			return fail(g, n, "pads %lld,%lld crop all of dim %d of %s",
				    (long long)a->pads[i], (long long)a->pads[i + x->rank], i,
				    SHAPE(x, b));
	}
	return set_like(g, out, 0, x, x->rank, d);
}

static int infer_clip(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrAttrClip *a = &n->attr.clip;
	if (!(a->min <= a->max))
		return fail(g, n, "min %g is above max %g", a->min, a->max);
	if (n->op == IR_OP_CLIP)
		return infer_unary(g, n, out);
	return infer_grad_pair(g, n, out);
}

/* (S, X): S a state value, X of its shape. */
static int infer_assign(IrGraph *g, IrNode *n, const IrType **out)
{
	(void)out;
	if (want_float(g, n, 0) || want_float(g, n, 1) || want_same_shape(g, n, 0, 1))
		return -1;
	return 0;
}

/* ---- optimizers: (W, dW, state...), no outputs ---- */

static int infer_update(IrGraph *g, IrNode *n, const IrType **out)
{
	(void)out;
	if (want_float(g, n, 0) || want_float(g, n, 1) || want_same_shape(g, n, 0, 1))
		return -1;
	for (int i = 2; i < n->nin; i++) {
		const IrType *s = n->in[i]->type;
		if (s->dt != IR_DT_F32)
			return fail_st(g, n, IR_ERR_UNSUPPORTED,
				       "unsupported dtype %s (optimizer state '%s' must be f32)",
				       ir_dtype_name(s->dt), n->in[i]->name);
		if (want_same_shape(g, n, 0, i))
			return -1;
	}
	return 0;
}

/* Constant has no entry: the importer folds every Constant node into a constant value, so
 * the IR never holds one (ir_ops_check knows this). */
const IrInferFn ir_infer_table[IR_OP_COUNT] = {
	[IR_OP_GEMM] = infer_gemm,
	[IR_OP_MATMUL] = infer_matmul,
	[IR_OP_ADD] = infer_binary,
	[IR_OP_SUB] = infer_binary,
	[IR_OP_MUL] = infer_binary,
	[IR_OP_DIV] = infer_binary,
	[IR_OP_NEG] = infer_unary,
	[IR_OP_RELU] = infer_unary,
	[IR_OP_LEAKY_RELU] = infer_unary,
	[IR_OP_SIGMOID] = infer_unary,
	[IR_OP_TANH] = infer_unary,
	[IR_OP_SOFTMAX] = infer_softmax,
	[IR_OP_LOG_SOFTMAX] = infer_softmax,
	[IR_OP_FLATTEN] = infer_flatten,
	[IR_OP_RESHAPE] = infer_reshape,
	[IR_OP_TRANSPOSE] = infer_transpose,
	[IR_OP_SQUEEZE] = infer_squeeze,
	[IR_OP_UNSQUEEZE] = infer_unsqueeze,
	[IR_OP_CONCAT] = infer_concat,
	[IR_OP_IDENTITY] = infer_identity,
	[IR_OP_DROPOUT] = infer_dropout,
	[IR_OP_CAST] = infer_cast,
	[IR_OP_SUM_TO] = infer_sum_to,
	[IR_OP_SLICE] = infer_slice,
	[IR_OP_RELU_GRAD] = infer_grad_pair,
	[IR_OP_LEAKY_RELU_GRAD] = infer_grad_pair,
	[IR_OP_SIGMOID_GRAD] = infer_grad_pair,
	[IR_OP_TANH_GRAD] = infer_grad_pair,
	[IR_OP_SOFTMAX_GRAD] = infer_grad_pair,
	[IR_OP_LOG_SOFTMAX_GRAD] = infer_grad_pair,
	[IR_OP_DROPOUT_GRAD] = infer_dropout_grad,
	[IR_OP_XENT] = infer_xent,
	[IR_OP_XENT_GRAD] = infer_xent_grad,
	[IR_OP_MSE] = infer_mse,
	[IR_OP_MSE_GRAD] = infer_mse,
	[IR_OP_QUANTIZE] = infer_unary,
	[IR_OP_WEIGHT_VIEW] = infer_unary,
	[IR_OP_MADAM] = infer_update,
	[IR_OP_SGD] = infer_update,
	[IR_OP_ADAM] = infer_update,
	[IR_OP_CONV] = infer_conv,
	[IR_OP_CONV_GRAD_X] = infer_conv_grad_x,
	[IR_OP_CONV_GRAD_W] = infer_conv_grad_w,
	[IR_OP_BATCH_NORM] = infer_batch_norm,
	[IR_OP_BATCH_NORM_GRAD] = infer_batch_norm_grad,
	[IR_OP_MAX_POOL] = infer_pool,
	[IR_OP_AVG_POOL] = infer_pool,
	[IR_OP_GLOBAL_AVG_POOL] = infer_pool,
	[IR_OP_GLOBAL_MAX_POOL] = infer_pool,
	[IR_OP_MAX_POOL_GRAD] = infer_max_pool_grad,
	[IR_OP_AVG_POOL_GRAD] = infer_avg_pool_grad,
	[IR_OP_PAD] = infer_pad,
	[IR_OP_CLIP] = infer_clip,
	[IR_OP_CLIP_GRAD] = infer_clip,
	[IR_OP_ASSIGN] = infer_assign,
};

int ir_infer_node(IrGraph *g, IrNode *n, const IrType **out)
{
	const IrOpInfo *oi = &ir_op_info[n->op];
	if (n->op == IR_OP_CONSTANT)
		return fail_st(g, n, IR_ERR_UNSUPPORTED,
			       "Constant nodes are folded into constant values at import");
	if (!ir_infer_table[n->op])
		return fail_st(g, n, IR_ERR_UNSUPPORTED, "has no shape inference");
	/* ir_build checks arity first; the verifier may call us on any node. */
	if (n->nin < oi->min_in || n->nin > oi->max_in)
		return fail(g, n, "takes %d..%d inputs, got %d", oi->min_in, oi->max_in, n->nin);
	for (int i = 0; i < n->nin; i++)
		if (!n->in[i] || !n->in[i]->type)
			return fail(g, n, "input %d is missing", i);
	return ir_infer_table[n->op](g, n, out);
}
