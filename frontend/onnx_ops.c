/* onnx_ops.c: the ONNX import hooks, one per op, in a table indexed by IrOp.
 *
 * A hook turns one ONNX node into ir_build calls: it reads attributes and constant inputs,
 * applies the rules of the model's opset (defaults, attributes that became inputs, legacy
 * semantics), normalises axes and resolves shapes into the IR's typed attribute structs.
 * Hooks check what only the ONNX form can tell (a perm that is no permutation, a Reshape
 * product that does not match); shape checks the IR op itself defines are left to ir_build's
 * inference, which names the node too. Input dtypes of compute ops are checked before the hook
 * runs (onnx.c). A hook reports every error through fe_node_error and returns -1.
 */
#include "frontend/fe.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "onnx/onnx.pb-c.h"

/* ---- shared checks ---- */

/* axis in [-rank, rank - 1 + extra], normalised to >= 0. */
static int norm_axis(const FeNode *n, const char *what, int64_t axis, int rank, int extra, int *out)
{
	if (axis < -(int64_t)rank || axis >= (int64_t)rank + extra) {
		fe_node_error(n, IR_ERR_INPUT, "%s %" PRId64 " is out of range for rank %d", what,
		              axis, rank);
		return -1;
	}
	*out = (int)(axis < 0 ? axis + rank : axis);
	return 0;
}

/* Normalises a list of axes against rank, rejects duplicates, sorts. */
static int norm_axes(const FeNode *n, const int64_t *ax, int cnt, int rank, IrAttrAxes *out)
{
	out->n = cnt;
	for (int i = 0; i < cnt; i++) {
		int a;
		if (norm_axis(n, "axis", ax[i], rank, 0, &a))
			return -1;
		int j = i;
		for (; j > 0 && out->axes[j - 1] > a; j--)
			out->axes[j] = out->axes[j - 1];
		if (j > 0 && out->axes[j - 1] == a) {
			fe_node_error(n, IR_ERR_INPUT, "axis %" PRId64 " is given twice", ax[i]);
			return -1;
		}
		out->axes[j] = a;
	}
	return 0;
}

static float half_to_float(uint16_t h)
{
	int e = h >> 10 & 0x1f, m = h & 0x3ff;
	float v = e == 0    ? ldexpf((float)m, -24)
	          : e == 31 ? (m ? NAN : INFINITY)
	                    : ldexpf((float)(m | 0x400), e - 25);
	return h & 0x8000 ? -v : v;
}

/* A constant scalar input as a float (f32, f64 or f16). 0, or -1 with a diagnostic. */
static int const_float(const FeNode *n, int i, const char *what, float *out)
{
	const FeConst *k = n->cst[i];
	if (!k) {
		fe_dynamic_error(n, i, what);
		return -1;
	}
	if (k->type->numel != 1 || !ir_dtype_is_float(k->type->dt)) {
		fe_node_error(n, IR_ERR_INPUT, "%s input '%s' must be a float scalar", what,
		              n->in[i]->name);
		return -1;
	}
	switch (k->type->dt) {
	case IR_DT_F64:
		*out = (float)*(const double *)k->data;
		break;
	case IR_DT_F16:
		*out = half_to_float(*(const uint16_t *)k->data);
		break;
	default:
		*out = *(const float *)k->data;
		break;
	}
	return 0;
}

/* ---- hooks ---- */

/* Ops whose IR form is the ONNX form without attributes. */
static int imp_plain(FeNode *n)
{
	const IrOpInfo *oi = &ir_op_info[n->op];
	if (fe_node_arity(n, oi->min_in, oi->max_in))
		return -1;
	return fe_emit(n, n->op, n->nin, n->in, NULL);
}

static int imp_leaky_relu(FeNode *n)
{
	IrAttrs a;
	memset(&a, 0, sizeof a);
	if (fe_node_arity(n, 1, 1) || fe_attr_float(n, "alpha", 0.01f, &a.alpha.alpha) < 0)
		return -1;
	return fe_emit(n, n->op, 1, n->in, &a);
}

/* Softmax, LogSoftmax: before opset 13 the input is coerced to 2-D at axis (default 1). */
static int imp_softmax(FeNode *n)
{
	IrAttrs a;
	memset(&a, 0, sizeof a);
	int64_t axis;
	int legacy = n->opset < 13;
	if (fe_node_arity(n, 1, 1) || fe_attr_int(n, "axis", legacy ? 1 : -1, &axis) < 0 ||
	    norm_axis(n, "axis", axis, n->in[0]->type->rank, 0, &a.axis.axis))
		return -1;
	a.axis.legacy = legacy;
	return fe_emit(n, n->op, 1, n->in, &a);
}

static int imp_flatten(FeNode *n)
{
	IrAttrs a;
	memset(&a, 0, sizeof a);
	int64_t axis;
	if (fe_node_arity(n, 1, 1) || fe_attr_int(n, "axis", 1, &axis) < 0 ||
	    norm_axis(n, "axis", axis, n->in[0]->type->rank, 1, &a.axis.axis))
		return -1;
	return fe_emit(n, IR_OP_FLATTEN, 1, n->in, &a);
}

/* Reshape: the shape input must be constant; 0 copies the input dim (unless allowzero, opset
 * 14), -1 takes what is left. */
static int imp_reshape(FeNode *n)
{
	int64_t shape[IR_MAX_RANK], allowzero = 0;
	int cnt;
	if (fe_node_arity(n, 2, 2) || fe_const_ints(n, 1, "shape", IR_MAX_RANK, shape, &cnt))
		return -1;
	if (n->opset >= 14 && fe_attr_int(n, "allowzero", 0, &allowzero) < 0)
		return -1;
	const IrType *in = n->in[0]->type;
	IrAttrs a;
	memset(&a, 0, sizeof a);
	a.shape.rank = cnt;
	int neg = -1, haszero = 0;
	int64_t known = 1;
	for (int i = 0; i < cnt; i++) {
		int64_t d = shape[i];
		if (d == -1) {
			if (neg >= 0) {
				fe_node_error(n, IR_ERR_INPUT, "shape has more than one -1");
				return -1;
			}
			neg = i;
			continue;
		}
		if (d == 0 && !allowzero) {
			if (i >= in->rank) {
				fe_node_error(n, IR_ERR_INPUT,
				              "shape[%d] is 0 (copy) but the input has rank %d", i,
				              in->rank);
				return -1;
			}
			d = in->dims[i];
		} else if (d < 0 || d > (int64_t)IR_MAX_DIM) {
			fe_node_error(n, IR_ERR_INPUT, "shape[%d] is %" PRId64, i, d);
			return -1;
		}
		haszero |= d == 0;
		a.shape.dims[i] = d;
		if (d && known > IR_MAX_NUMEL / d) {
			fe_node_error(n, IR_ERR_INPUT, "shape has too many elements");
			return -1;
		}
		known *= d;
	}
	if (neg >= 0) {
		if (haszero) {
			fe_node_error(n, IR_ERR_INPUT, "shape has both -1 and a 0 dimension");
			return -1;
		}
		a.shape.dims[neg] = in->numel / known;
		known *= a.shape.dims[neg];
	}
	if (known != in->numel) {
		char buf[128];
		fe_node_error(n, IR_ERR_INPUT,
		              "cannot reshape %s (%" PRId64 " elements) to %" PRId64 " elements",
		              ir_type_str(in, 0, buf, sizeof buf), in->numel, known);
		return -1;
	}
	return fe_emit(n, IR_OP_RESHAPE, 1, n->in, &a);
}

static int imp_transpose(FeNode *n)
{
	int64_t perm[IR_MAX_RANK];
	int cnt, r;
	if (fe_node_arity(n, 1, 1) || (r = fe_attr_ints(n, "perm", IR_MAX_RANK, perm, &cnt)) < 0)
		return -1;
	int rank = n->in[0]->type->rank;
	IrAttrs a;
	memset(&a, 0, sizeof a);
	a.perm.n = rank;
	if (r == 0) {
		for (int i = 0; i < rank; i++)
			a.perm.perm[i] = rank - 1 - i;
		return fe_emit(n, IR_OP_TRANSPOSE, 1, n->in, &a);
	}
	if (cnt != rank) {
		fe_node_error(n, IR_ERR_INPUT, "perm has %d entries for an input of rank %d", cnt,
		              rank);
		return -1;
	}
	unsigned seen = 0;
	for (int i = 0; i < rank; i++) {
		if (perm[i] < 0 || perm[i] >= rank || (seen >> perm[i] & 1u)) {
			fe_node_error(n, IR_ERR_INPUT, "perm is not a permutation of 0..%d",
			              rank - 1);
			return -1;
		}
		seen |= 1u << perm[i];
		a.perm.perm[i] = (int)perm[i];
	}
	return fe_emit(n, IR_OP_TRANSPOSE, 1, n->in, &a);
}

/* Squeeze: axes an attribute before opset 13, an optional constant input since; none given
 * means every size-1 dim. */
static int imp_squeeze(FeNode *n)
{
	int64_t ax[IR_MAX_RANK];
	int cnt = 0, r;
	if (n->opset < 13) {
		if (fe_node_arity(n, 1, 1) ||
		    (r = fe_attr_ints(n, "axes", IR_MAX_RANK, ax, &cnt)) < 0)
			return -1;
	} else {
		if (fe_node_arity(n, 1, 2))
			return -1;
		r = n->in[1] != NULL;
		if (r && fe_const_ints(n, 1, "axes", IR_MAX_RANK, ax, &cnt))
			return -1;
	}
	const IrType *in = n->in[0]->type;
	IrAttrs a;
	memset(&a, 0, sizeof a);
	if (r == 0) {
		for (int i = 0; i < in->rank; i++)
			if (in->dims[i] == 1)
				a.axes.axes[a.axes.n++] = i;
		return fe_emit(n, IR_OP_SQUEEZE, 1, n->in, &a);
	}
	if (norm_axes(n, ax, cnt, in->rank, &a.axes))
		return -1;
	for (int i = 0; i < a.axes.n; i++)
		if (in->dims[a.axes.axes[i]] != 1) {
			fe_node_error(n, IR_ERR_INPUT, "cannot squeeze axis %d of size %" PRId64,
			              a.axes.axes[i], in->dims[a.axes.axes[i]]);
			return -1;
		}
	return fe_emit(n, IR_OP_SQUEEZE, 1, n->in, &a);
}

/* Unsqueeze: axes an attribute before opset 13, a constant input since; they index the
 * output, whose rank is the input's plus their count. */
static int imp_unsqueeze(FeNode *n)
{
	int64_t ax[IR_MAX_RANK];
	int cnt = 0, r = 1;
	if (n->opset < 13) {
		if (fe_node_arity(n, 1, 1) ||
		    (r = fe_attr_ints(n, "axes", IR_MAX_RANK, ax, &cnt)) < 0)
			return -1;
	} else if (fe_node_arity(n, 2, 2) || fe_const_ints(n, 1, "axes", IR_MAX_RANK, ax, &cnt)) {
		return -1;
	}
	if (r == 0 || cnt == 0) {
		fe_node_error(n, IR_ERR_INPUT, "axes are required");
		return -1;
	}
	int out_rank = n->in[0]->type->rank + cnt;
	if (out_rank > IR_MAX_RANK) {
		fe_node_error(n, IR_ERR_INPUT, "output rank %d exceeds the maximum %d", out_rank,
		              IR_MAX_RANK);
		return -1;
	}
	IrAttrs a;
	memset(&a, 0, sizeof a);
	if (norm_axes(n, ax, cnt, out_rank, &a.axes))
		return -1;
	return fe_emit(n, IR_OP_UNSQUEEZE, 1, n->in, &a);
}

static int imp_concat(FeNode *n)
{
	int64_t axis;
	if (fe_node_arity(n, n->nin > 0 ? n->nin : 1, IR_MAX_IN))
		return -1;
	int r = fe_attr_int(n, "axis", 0, &axis);
	if (r < 0)
		return -1;
	if (r == 0) {
		fe_node_error(n, IR_ERR_INPUT, "attribute 'axis' is required");
		return -1;
	}
	if (axis < 0 && n->opset < 11) {
		fe_node_error(n, IR_ERR_INPUT, "negative axis %" PRId64 " needs opset 11", axis);
		return -1;
	}
	IrAttrs a;
	memset(&a, 0, sizeof a);
	if (norm_axis(n, "axis", axis, n->in[0]->type->rank, 0, &a.axis.axis))
		return -1;
	return fe_emit(n, IR_OP_CONCAT, n->nin, n->in, &a);
}

/* Dropout: ratio an attribute before opset 12; since, optional constant inputs ratio and
 * training_mode. The IR node always has the mask output. */
static int imp_dropout(FeNode *n)
{
	IrAttrs a;
	memset(&a, 0, sizeof a);
	a.dropout.ratio = 0.5f;
	if (n->opset < 12) {
		if (fe_node_arity(n, 1, 1) || fe_attr_float(n, "ratio", 0.5f, &a.dropout.ratio) < 0)
			return -1;
	} else {
		if (fe_node_arity(n, 1, 3))
			return -1;
		if (n->nin > 1 && n->in[1] && const_float(n, 1, "ratio", &a.dropout.ratio))
			return -1;
		if (n->nin > 2 && n->in[2]) {
			const FeConst *k = n->cst[2];
			if (!k) {
				fe_dynamic_error(n, 2, "training_mode");
				return -1;
			}
			if (k->type->dt != IR_DT_BOOL || k->type->numel != 1) {
				fe_node_error(n, IR_ERR_INPUT,
				              "training_mode input '%s' must be a bool "
				              "scalar",
				              n->in[2]->name);
				return -1;
			}
			a.dropout.training = *(const uint8_t *)k->data != 0;
		}
	}
	if (!(a.dropout.ratio >= 0.0f && a.dropout.ratio < 1.0f)) {
		fe_node_error(n, IR_ERR_INPUT, "ratio %g is outside [0, 1)",
		              (double)a.dropout.ratio);
		return -1;
	}
	return fe_emit(n, IR_OP_DROPOUT, 1, n->in, &a);
}

/* Constant: a CONST value, no node. value_float(s) / value_int(s) since opset 12. */
static int imp_constant(FeNode *n)
{
	static const char *const unsup[] = {"sparse_value", "value_string", "value_strings"};
	static const char *const v12[] = {"value_float", "value_floats", "value_int", "value_ints"};
	if (fe_node_arity(n, 0, 0))
		return -1;
	const char *which = NULL;
	int count = 0;
	for (size_t i = 0; i < n->p->n_attribute; i++) {
		const char *an = n->p->attribute[i]->name;
		if (!an)
			continue;
		for (int k = 0; k < 3; k++)
			if (!strcmp(an, unsup[k])) {
				fe_node_error(n, IR_ERR_UNSUPPORTED,
				              "attribute '%s' is not supported", an);
				return -1;
			}
		int known = !strcmp(an, "value");
		for (int k = 0; k < 4; k++)
			if (!strcmp(an, v12[k])) {
				if (n->opset < 12) {
					fe_node_error(n, IR_ERR_INPUT,
					              "attribute '%s' needs opset 12", an);
					return -1;
				}
				known = 1;
			}
		if (known) {
			which = an;
			count++;
		}
	}
	if (count != 1) {
		fe_node_error(n, IR_ERR_INPUT, "needs exactly one value attribute, has %d", count);
		return -1;
	}
	IrCtx *c = n->g->ctx;
	const Onnx__AttributeProto *at;
	if (!strcmp(which, "value")) {
		FeConst k;
		if (fe_attr_tensor(n, "value", &k) < 0)
			return -1;
		return fe_emit_const(n, k.type, k.data);
	}
	if (!strcmp(which, "value_float")) {
		float f;
		if (fe_attr_float(n, which, 0, &f) < 0)
			return -1;
		return fe_emit_const(n, ir_type(c, IR_DT_F32, 0, NULL), &f);
	}
	if (!strcmp(which, "value_int")) {
		int64_t i;
		if (fe_attr_int(n, which, 0, &i) < 0)
			return -1;
		return fe_emit_const(n, ir_type(c, IR_DT_I64, 0, NULL), &i);
	}
	int floats = !strcmp(which, "value_floats");
	if (fe_attr_find(n, which,
	                 floats ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS
	                        : ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS,
	                 &at) < 0)
		return -1;
	int64_t len = (int64_t)(floats ? at->n_floats : at->n_ints), none = 0;
	const IrType *t = ir_type(c, floats ? IR_DT_F32 : IR_DT_I64, 1, &len);
	if (!t)
		return -1;
	const void *data = floats ? (const void *)at->floats : (const void *)at->ints;
	return fe_emit_const(n, t, len ? data : &none);
}

static int imp_cast(FeNode *n)
{
	int64_t to;
	int r;
	if (fe_node_arity(n, 1, 1) || (r = fe_attr_int(n, "to", 0, &to)) < 0)
		return -1;
	if (r == 0) {
		fe_node_error(n, IR_ERR_INPUT, "attribute 'to' is required");
		return -1;
	}
	IrAttrs a;
	memset(&a, 0, sizeof a);
	if (to < INT32_MIN || to > INT32_MAX || fe_dtype_from_onnx((int)to, &a.cast.to)) {
		const char *name =
		    to >= 0 && to <= INT32_MAX ? fe_onnx_dtype_name((int)to) : "unknown";
		fe_node_error(n,
		              !strcmp(name, "undefined") || !strcmp(name, "unknown")
		                  ? IR_ERR_INPUT
		                  : IR_ERR_UNSUPPORTED,
		              "Cast to %s (%" PRId64 ") is not supported", name, to);
		return -1;
	}
	return fe_emit(n, IR_OP_CAST, 1, n->in, &a);
}

/* Gemm: C optional since opset 11, and it must broadcast to [M, N]. */
static int imp_gemm(FeNode *n)
{
	IrAttrs a;
	memset(&a, 0, sizeof a);
	int64_t ta, tb;
	if (fe_node_arity(n, n->opset < 11 ? 3 : 2, 3) ||
	    fe_attr_float(n, "alpha", 1.0f, &a.gemm.alpha) < 0 ||
	    fe_attr_float(n, "beta", 1.0f, &a.gemm.beta) < 0 ||
	    fe_attr_int(n, "transA", 0, &ta) < 0 || fe_attr_int(n, "transB", 0, &tb) < 0)
		return -1;
	a.gemm.trans_a = ta != 0;
	a.gemm.trans_b = tb != 0;
	const IrType *A = n->in[0]->type, *B = n->in[1]->type;
	if (A->rank != 2 || B->rank != 2) {
		fe_node_error(n, IR_ERR_INPUT, "A and B must be 2-D (ranks %d and %d)", A->rank,
		              B->rank);
		return -1;
	}
	int nin = n->nin > 2 && n->in[2] ? 3 : 2;
	if (nin == 3) {
		int64_t mn[2] = {A->dims[a.gemm.trans_a ? 1 : 0], B->dims[a.gemm.trans_b ? 0 : 1]};
		const IrType *C = n->in[2]->type;
		int ok = C->rank <= 2;
		for (int i = 0; ok && i < C->rank; i++) {
			int64_t d = C->dims[C->rank - 1 - i], want = mn[1 - i];
			ok = d == 1 || d == want;
		}
		if (!ok) {
			char buf[128];
			fe_node_error(n, IR_ERR_INPUT,
			              "C %s does not broadcast to [%" PRId64 ",%" PRId64 "]",
			              ir_type_str(C, 0, buf, sizeof buf), mn[0], mn[1]);
			return -1;
		}
	}
	return fe_emit(n, IR_OP_GEMM, nin, n->in, &a);
}

/* MatMul: numpy semantics. Rank >= 2 on both sides is IR MATMUL (batch broadcasting); a 1-D
 * operand is made a matrix by Unsqueeze and the added dim removed by Squeeze afterwards. */
static int imp_matmul(FeNode *n)
{
	if (fe_node_arity(n, 2, 2))
		return -1;
	int ra = n->in[0]->type->rank, rb = n->in[1]->type->rank;
	if (ra == 0 || rb == 0) {
		fe_node_error(n, IR_ERR_INPUT, "operands must have rank >= 1 (ranks %d and %d)", ra,
		              rb);
		return -1;
	}
	if (ra >= 2 && rb >= 2)
		return fe_emit(n, IR_OP_MATMUL, 2, n->in, NULL);
	IrValue *ab[2] = {n->in[0], n->in[1]};
	IrAttrs a;
	memset(&a, 0, sizeof a);
	a.axes.n = 1;
	if (ra == 1) {
		a.axes.axes[0] = 0;
		if (!(ab[0] = fe_emit_aux(n, IR_OP_UNSQUEEZE, "unsqueeze_a", 1, &n->in[0], &a)))
			return -1;
	}
	if (rb == 1) {
		a.axes.axes[0] = 1;
		if (!(ab[1] = fe_emit_aux(n, IR_OP_UNSQUEEZE, "unsqueeze_b", 1, &n->in[1], &a)))
			return -1;
	}
	IrValue *m = fe_emit_aux(n, IR_OP_MATMUL, "matmul", 2, ab, NULL);
	if (!m)
		return -1;
	int r = m->type->rank;
	memset(&a, 0, sizeof a);
	if (ra == 1)
		a.axes.axes[a.axes.n++] = r - 2;
	if (rb == 1)
		a.axes.axes[a.axes.n++] = r - 1;
	return fe_emit(n, IR_OP_SQUEEZE, 1, &m, &a);
}

/* ---- convolutional networks (2-D, NCHW) ---- */

/* An attribute this opset's definition of the op lacks (it came in opset `since`): reading
 * past it would change the model's meaning, so it is an error. 0 or -1. */
static int attr_since(const FeNode *n, const char *name, int since)
{
	if (n->opset >= since)
		return 0;
	for (size_t i = 0; i < n->p->n_attribute; i++) {
		const char *an = n->p->attribute[i]->name;
		if (an && !strcmp(an, name)) {
			fe_node_error(n, IR_ERR_INPUT,
			              "attribute '%s' needs opset %d (the model's is %d)", name,
			              since, n->opset);
			return -1;
		}
	}
	return 0;
}

/* A STRING attribute that must be one of names[0..cnt): *out its index, or def when absent.
 * 0 absent, 1 present, -1 with a diagnostic. */
static int attr_choice(const FeNode *n, const char *name, const char *const *names, int cnt,
                       int def, int *out)
{
	const Onnx__AttributeProto *a;
	int r = fe_attr_find(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, &a);
	*out = def;
	if (r <= 0)
		return r;
	for (int i = 0; i < cnt; i++)
		if (a->s.len == strlen(names[i]) && !memcmp(a->s.data, names[i], a->s.len)) {
			*out = i;
			return 1;
		}
	char list[256];
	size_t len = 0;
	for (int i = 0; i < cnt && len < sizeof list; i++)
		len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "",
		                        names[i]);
	int shown = a->s.len > 64 ? 64 : (int)a->s.len;
	fe_node_error(n, IR_ERR_INPUT, "attribute '%s' is '%.*s', expected one of %s", name, shown,
	              a->s.data ? (const char *)a->s.data : "", list);
	return -1;
}

/* X of a window op must be 4-D (N, C, H, W): other spatial ranks are valid ONNX that lnsc
 * does not support. 0 or -1. */
static int want_2d(const FeNode *n)
{
	const IrType *x = n->in[0]->type;
	if (x->rank == 4)
		return 0;
	if (x->rank >= 3)
		fe_node_error(n, IR_ERR_UNSUPPORTED,
		              "only 2-D %s is supported: input '%s' has %d spatial dim%s",
		              n->op_type, n->in[0]->name, x->rank - 2, x->rank == 3 ? "" : "s");
	else
		fe_node_error(n, IR_ERR_INPUT,
		              "input '%s' has rank %d; %s needs (N, C, spatial dims...)",
		              n->in[0]->name, x->rank, n->op_type);
	return -1;
}

/* An INTS attribute of exactly cnt values, each in [lo, INT_MAX], into out; def for each
 * when absent. 0 absent, 1 present, -1 with a diagnostic. */
static int attr_window_ints(const FeNode *n, const char *name, int cnt, int lo, int def, int *out)
{
	int64_t v[2 * IR_MAX_RANK];
	int got, r = fe_attr_ints(n, name, 2 * IR_MAX_RANK, v, &got);
	if (r <= 0) {
		for (int i = 0; i < cnt; i++)
			out[i] = def;
		return r;
	}
	if (got != cnt) {
		fe_node_error(n, IR_ERR_INPUT,
		              "attribute '%s' has %d values, expected %d for 2 spatial dims", name,
		              got, cnt);
		return -1;
	}
	for (int i = 0; i < cnt; i++) {
		if (v[i] < lo || v[i] > INT32_MAX) {
			fe_node_error(n, IR_ERR_INPUT,
			              "attribute '%s' has %" PRId64 " at index %d, expected %s",
			              name, v[i], i, lo ? "a positive value" : "a value >= 0");
			return -1;
		}
		out[i] = (int)v[i];
	}
	return 1;
}

/* The sliding window of Conv and the pools, as the IR attribute structs hold it. */
typedef struct Window {
	int kernel[2], stride[2], dilation[2], pad[4];
	int ceil_mode;
} Window;

enum { AUTO_NOTSET, AUTO_SAME_UPPER, AUTO_SAME_LOWER, AUTO_VALID };
static const char *const auto_pads[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};

/* auto_pad into explicit pads, per the ONNX spec: SAME_* pad so that the output is
 * ceil(in / stride), the odd pixel at the end (UPPER) or the beginning (LOWER); VALID pads
 * nothing. Those output sizes do not depend on ceil_mode, so it is cleared. 0 or -1. */
static int resolve_auto_pad(const FeNode *n, int mode, Window *w)
{
	const int64_t *xhw = n->in[0]->type->dims + 2;
	for (int i = 0; i < 2; i++) {
		int64_t total = 0;
		if (mode != AUTO_VALID) {
			int64_t out = (xhw[i] + w->stride[i] - 1) / w->stride[i];
			total = (out - 1) * w->stride[i] +
			        (int64_t)w->dilation[i] * (w->kernel[i] - 1) + 1 - xhw[i];
		}
		if (total < 0)
			total = 0;
		if (total > INT32_MAX) {
			fe_node_error(n, IR_ERR_INPUT,
			              "auto_pad %s needs %" PRId64 " pixels of padding",
			              auto_pads[mode], total);
			return -1;
		}
		int small = (int)(total / 2), big = (int)(total - total / 2);
		w->pad[i] = mode == AUTO_SAME_LOWER ? big : small;
		w->pad[i + 2] = mode == AUTO_SAME_LOWER ? small : big;
	}
	w->ceil_mode = 0;
	return 0;
}

/* Reads kernel_shape (from W's dims, wk, when the op may omit it), strides, dilations (in the
 * op since opset dil_since), pads or auto_pad, and ceil_mode (since opset ceil_since; 0 if
 * the op never has it). 0 or -1. */
static int read_window(const FeNode *n, const int64_t *wk, int dil_since, int ceil_since, Window *w)
{
	int r, mode, pads_given;
	memset(w, 0, sizeof *w);
	if ((r = attr_window_ints(n, "kernel_shape", 2, 1, 0, w->kernel)) < 0)
		return -1;
	if (r == 0 && !wk) {
		fe_node_error(n, IR_ERR_INPUT, "attribute 'kernel_shape' is required");
		return -1;
	}
	for (int i = 0; r == 0 && i < 2; i++) {
		if (wk[i] < 1 || wk[i] > INT32_MAX) {
			fe_node_error(n, IR_ERR_INPUT,
			              "weight kernel dim %" PRId64 " is out of range", wk[i]);
			return -1;
		}
		w->kernel[i] = (int)wk[i];
	}
	if (attr_window_ints(n, "strides", 2, 1, 1, w->stride) < 0 ||
	    attr_since(n, "dilations", dil_since) ||
	    attr_window_ints(n, "dilations", 2, 1, 1, w->dilation) < 0 ||
	    (pads_given = attr_window_ints(n, "pads", 4, 0, 0, w->pad)) < 0 ||
	    attr_choice(n, "auto_pad", auto_pads, 4, AUTO_NOTSET, &mode) < 0)
		return -1;
	if (ceil_since > 0) {
		int64_t cm;
		if (attr_since(n, "ceil_mode", ceil_since) ||
		    fe_attr_int(n, "ceil_mode", 0, &cm) < 0)
			return -1;
		if (cm != 0 && cm != 1) {
			fe_node_error(n, IR_ERR_INPUT, "ceil_mode is %" PRId64 ", expected 0 or 1",
			              cm);
			return -1;
		}
		w->ceil_mode = (int)cm;
	}
	if (mode == AUTO_NOTSET)
		return 0;
	if (pads_given && (w->pad[0] || w->pad[1] || w->pad[2] || w->pad[3])) {
		fe_node_error(n, IR_ERR_INPUT, "pads and auto_pad %s are both given",
		              auto_pads[mode]);
		return -1;
	}
	return resolve_auto_pad(n, mode, w);
}

static void window_to_pool(const Window *w, IrAttrPool *p)
{
	memcpy(p->kernel, w->kernel, sizeof p->kernel);
	memcpy(p->stride, w->stride, sizeof p->stride);
	memcpy(p->dilation, w->dilation, sizeof p->dilation);
	memcpy(p->pad, w->pad, sizeof p->pad);
	p->ceil_mode = w->ceil_mode;
}

/* Conv: kernel_shape defaults to W's spatial dims; bias optional (also as an empty name). */
static int imp_conv(FeNode *n)
{
	if (fe_node_arity(n, 2, 3) || want_2d(n))
		return -1;
	const IrType *wt = n->in[1]->type;
	if (wt->rank != 4) {
		char buf[128];
		fe_node_error(n, IR_ERR_INPUT,
		              "weight '%s' is %s; a 2-D Conv needs [M, C/group, kH, kW]",
		              n->in[1]->name, ir_type_str(wt, 0, buf, sizeof buf));
		return -1;
	}
	Window w;
	int64_t group;
	if (read_window(n, wt->dims + 2, 1, 0, &w) || fe_attr_int(n, "group", 1, &group) < 0)
		return -1;
	if (group < 1 || group > INT32_MAX) {
		fe_node_error(n, IR_ERR_INPUT, "group %" PRId64 " must be positive", group);
		return -1;
	}
	IrAttrs a;
	memset(&a, 0, sizeof a);
	memcpy(a.conv.kernel, w.kernel, sizeof w.kernel);
	memcpy(a.conv.stride, w.stride, sizeof w.stride);
	memcpy(a.conv.dilation, w.dilation, sizeof w.dilation);
	memcpy(a.conv.pad, w.pad, sizeof w.pad);
	a.conv.group = (int)group;
	return fe_emit(n, IR_OP_CONV, n->nin > 2 && n->in[2] ? 3 : 2, n->in, &a);
}

/* The number of outputs up to the last non-empty name (absent optional outputs trail). */
static int outputs_named(const FeNode *n)
{
	int k = (int)n->p->n_output;
	while (k > 0 && !*n->p->output[k - 1])
		k--;
	return k;
}

/* BatchNormalization. Opset 7 has `spatial` (only 1, per-channel statistics, is supported);
 * before opset 14 the node is in training mode iff it lists more than one output, (Y, mean,
 * var, saved_mean, saved_var) being the IR's five; since, training_mode says it and the
 * outputs are (Y, running_mean, running_var), the IR's first three. The IR outputs line up
 * with the ONNX ones in both cases. */
static int imp_batch_norm(FeNode *n)
{
	IrAttrs a;
	memset(&a, 0, sizeof a);
	int64_t spatial = 1, tm = 0;
	int nout = outputs_named(n);
	if (fe_node_arity(n, 5, 5) || fe_attr_float(n, "epsilon", 1e-5f, &a.bn.epsilon) < 0 ||
	    fe_attr_float(n, "momentum", 0.9f, &a.bn.momentum) < 0 ||
	    attr_since(n, "training_mode", 14) || fe_attr_int(n, "training_mode", 0, &tm) < 0)
		return -1;
	if (n->opset < 9 && fe_attr_int(n, "spatial", 1, &spatial) < 0)
		return -1;
	if (spatial != 1) {
		fe_node_error(
		    n, IR_ERR_UNSUPPORTED,
		    "spatial=%" PRId64
		    " (statistics per activation rather than per channel) is not supported",
		    spatial);
		return -1;
	}
	if (tm != 0 && tm != 1) {
		fe_node_error(n, IR_ERR_INPUT, "training_mode is %" PRId64 ", expected 0 or 1", tm);
		return -1;
	}
	if (n->opset >= 14 && nout > 3) {
		fe_node_error(n, IR_ERR_INPUT, "has %d outputs, expected 1 to 3 at opset %d", nout,
		              n->opset);
		return -1;
	}
	if (!isfinite(a.bn.epsilon) || a.bn.epsilon < 0) {
		fe_node_error(n, IR_ERR_INPUT, "epsilon %g must be finite and >= 0",
		              (double)a.bn.epsilon);
		return -1;
	}
	if (!(a.bn.momentum >= 0 && a.bn.momentum <= 1)) {
		fe_node_error(n, IR_ERR_INPUT, "momentum %g is outside [0, 1]",
		              (double)a.bn.momentum);
		return -1;
	}
	a.bn.training = n->opset >= 14 ? (int)tm : nout > 1;
	return fe_emit(n, IR_OP_BATCH_NORM, 5, n->in, &a);
}

/* MaxPool: storage_order and the Indices output since opset 8 (Indices only unread: see
 * extra_out), ceil_mode and dilations since 10. */
static int imp_max_pool(FeNode *n)
{
	int64_t order;
	Window w;
	if (fe_node_arity(n, 1, 1) || want_2d(n))
		return -1;
	if (n->opset < 8 && n->p->n_output > 1) {
		fe_node_error(n, IR_ERR_INPUT,
		              "has %zu outputs, expected 1 at opset %d (Indices came in opset 8)",
		              n->p->n_output, n->opset);
		return -1;
	}
	if (attr_since(n, "storage_order", 8) || fe_attr_int(n, "storage_order", 0, &order) < 0 ||
	    read_window(n, NULL, 10, 10, &w))
		return -1;
	if (order != 0 && order != 1) {
		fe_node_error(n, IR_ERR_INPUT, "storage_order is %" PRId64 ", expected 0 or 1",
		              order);
		return -1;
	}
	IrAttrs a;
	memset(&a, 0, sizeof a);
	window_to_pool(&w, &a.pool);
	return fe_emit(n, IR_OP_MAX_POOL, 1, n->in, &a);
}

/* AveragePool: count_include_pad (opset 7), ceil_mode since 10; dilations only in opset 19. */
static int imp_avg_pool(FeNode *n)
{
	int64_t cip;
	Window w;
	if (fe_node_arity(n, 1, 1) || want_2d(n) || read_window(n, NULL, 19, 10, &w) ||
	    fe_attr_int(n, "count_include_pad", 0, &cip) < 0)
		return -1;
	if (cip != 0 && cip != 1) {
		fe_node_error(n, IR_ERR_INPUT, "count_include_pad is %" PRId64 ", expected 0 or 1",
		              cip);
		return -1;
	}
	IrAttrs a;
	memset(&a, 0, sizeof a);
	window_to_pool(&w, &a.pool);
	a.pool.count_include_pad = (int)cip;
	return fe_emit(n, IR_OP_AVG_POOL, 1, n->in, &a);
}

/* GlobalAveragePool, GlobalMaxPool: one window over the input's H, W. */
static int imp_global_pool(FeNode *n)
{
	if (fe_node_arity(n, 1, 1) || want_2d(n))
		return -1;
	const int64_t *hw = n->in[0]->type->dims + 2;
	if (hw[0] > INT32_MAX || hw[1] > INT32_MAX) {
		fe_node_error(n, IR_ERR_UNSUPPORTED,
		              "a %" PRId64 "x%" PRId64 " window is too large", hw[0], hw[1]);
		return -1;
	}
	IrAttrs a;
	memset(&a, 0, sizeof a);
	for (int i = 0; i < 2; i++) {
		a.pool.kernel[i] = (int)hw[i];
		a.pool.stride[i] = a.pool.dilation[i] = 1;
	}
	return fe_emit(n, n->op, 1, n->in, &a);
}

/* Pad's constant_value input (opset 11): a scalar of the data's dtype, as the IR's float
 * (integers must convert exactly). 0 or -1. */
static int pad_value(const FeNode *n, float *out)
{
	const FeConst *k = n->cst[2];
	IrDType dt = n->in[0]->type->dt;
	if (!k) {
		fe_dynamic_error(n, 2, "constant_value");
		return -1;
	}
	if (k->type->numel != 1 || k->type->dt != dt) {
		char a[128];
		fe_node_error(n, IR_ERR_INPUT,
		              "constant_value '%s' is %s, expected a scalar of the data's dtype %s",
		              n->in[2]->name, ir_type_str(k->type, 0, a, sizeof a),
		              ir_dtype_name(dt));
		return -1;
	}
	if (ir_dtype_is_float(dt))
		return const_float(n, 2, "constant_value", out);
	double v;
	switch (dt) {
	case IR_DT_I8:
		v = *(const int8_t *)k->data;
		break;
	case IR_DT_I16:
		v = *(const int16_t *)k->data;
		break;
	case IR_DT_I32:
		v = *(const int32_t *)k->data;
		break;
	case IR_DT_I64:
		v = (double)*(const int64_t *)k->data;
		break;
	case IR_DT_U8:
	case IR_DT_BOOL:
		v = *(const uint8_t *)k->data;
		break;
	case IR_DT_U16:
		v = *(const uint16_t *)k->data;
		break;
	case IR_DT_U32:
		v = *(const uint32_t *)k->data;
		break;
	case IR_DT_U64:
		v = (double)*(const uint64_t *)k->data;
		break;
	default:
		fe_node_error(n, IR_ERR_UNSUPPORTED, "constant_value of dtype %s",
		              ir_dtype_name(dt));
		return -1;
	}
	*out = (float)v;
	if ((double)*out != v || fabs(v) > 16777216.0) {
		fe_node_error(n, IR_ERR_UNSUPPORTED, "constant_value %.17g is not exact in f32", v);
		return -1;
	}
	return 0;
}

/* Pad: attributes pads, mode, value at opset 2; since opset 11 pads and constant_value are
 * inputs, which must be constants. Constant mode only; negative pads crop. */
static int imp_pad(FeNode *n)
{
	static const char *const modes[] = {"constant", "reflect", "edge"};
	int64_t pads[2 * IR_MAX_RANK];
	int cnt, mode, r;
	IrAttrs a;
	memset(&a, 0, sizeof a);
	if (fe_node_arity(n, n->opset < 11 ? 1 : 2, n->opset < 11 ? 1 : 3) ||
	    attr_choice(n, "mode", modes, 3, 0, &mode) < 0)
		return -1;
	if (mode != 0) {
		fe_node_error(n, IR_ERR_UNSUPPORTED, "mode '%s' is not supported (only 'constant')",
		              modes[mode]);
		return -1;
	}
	if (n->opset < 11) {
		if ((r = fe_attr_ints(n, "pads", 2 * IR_MAX_RANK, pads, &cnt)) < 0 ||
		    fe_attr_float(n, "value", 0.0f, &a.pad.value) < 0)
			return -1;
		if (r == 0) {
			fe_node_error(n, IR_ERR_INPUT, "attribute 'pads' is required");
			return -1;
		}
	} else if (fe_const_ints(n, 1, "pads", 2 * IR_MAX_RANK, pads, &cnt) ||
	           (n->nin > 2 && n->in[2] && pad_value(n, &a.pad.value))) {
		return -1;
	}
	int rank = n->in[0]->type->rank;
	if (cnt != 2 * rank || rank == 0) {
		fe_node_error(n, IR_ERR_INPUT,
		              "pads has %d values, expected %d (a begin and an end per dim of the "
		              "rank-%d input)",
		              cnt, 2 * rank, rank);
		return -1;
	}
	for (int i = 0; i < cnt; i++) {
		if (pads[i] < -IR_MAX_DIM || pads[i] > IR_MAX_DIM) {
			fe_node_error(n, IR_ERR_INPUT, "pads[%d] is %" PRId64, i, pads[i]);
			return -1;
		}
		a.pad.pads[i] = pads[i];
	}
	if (!isfinite(a.pad.value)) {
		fe_node_error(n, IR_ERR_UNSUPPORTED, "a non-finite pad value (%g)",
		              (double)a.pad.value);
		return -1;
	}
	a.pad.n = rank;
	return fe_emit(n, IR_OP_PAD, 1, n->in, &a);
}

/* Clip: min and max attributes at opset 6; since opset 11 optional constant inputs (an empty
 * name is absent). Absent bounds are -FLT_MAX / FLT_MAX. min > max gives max everywhere
 * (what ONNX's reference, np.clip, computes), so min becomes max. */
static int imp_clip(FeNode *n)
{
	IrAttrs a;
	memset(&a, 0, sizeof a);
	a.clip.min = -FLT_MAX;
	a.clip.max = FLT_MAX;
	if (n->opset < 11) {
		if (fe_node_arity(n, 1, 1) || fe_attr_float(n, "min", -FLT_MAX, &a.clip.min) < 0 ||
		    fe_attr_float(n, "max", FLT_MAX, &a.clip.max) < 0)
			return -1;
	} else if (fe_node_arity(n, 1, 3) ||
	           (n->nin > 1 && n->in[1] && const_float(n, 1, "min", &a.clip.min)) ||
	           (n->nin > 2 && n->in[2] && const_float(n, 2, "max", &a.clip.max))) {
		return -1;
	}
	if (isnan(a.clip.min) || isnan(a.clip.max)) {
		fe_node_error(n, IR_ERR_INPUT, "a NaN bound (min %g, max %g)", (double)a.clip.min,
		              (double)a.clip.max);
		return -1;
	}
	if (a.clip.min > a.clip.max)
		a.clip.min = a.clip.max;
	return fe_emit(n, IR_OP_CLIP, 1, n->in, &a);
}

const FeOpImport fe_import_table[IR_OP_COUNT] = {
    [IR_OP_GEMM] = {.fn = imp_gemm},
    [IR_OP_MATMUL] = {.fn = imp_matmul},
    [IR_OP_ADD] = {.fn = imp_plain},
    [IR_OP_SUB] = {.fn = imp_plain},
    [IR_OP_MUL] = {.fn = imp_plain},
    [IR_OP_DIV] = {.fn = imp_plain},
    [IR_OP_NEG] = {.fn = imp_plain},
    [IR_OP_RELU] = {.fn = imp_plain},
    [IR_OP_LEAKY_RELU] = {.fn = imp_leaky_relu},
    [IR_OP_SIGMOID] = {.fn = imp_plain},
    [IR_OP_TANH] = {.fn = imp_plain},
    [IR_OP_SOFTMAX] = {.fn = imp_softmax},
    [IR_OP_LOG_SOFTMAX] = {.fn = imp_softmax},
    [IR_OP_FLATTEN] = {.fn = imp_flatten},
    [IR_OP_RESHAPE] = {.fn = imp_reshape, .const_in = 1u << 1},
    [IR_OP_TRANSPOSE] = {.fn = imp_transpose},
    [IR_OP_SQUEEZE] = {.fn = imp_squeeze, .const_in = 1u << 1},
    [IR_OP_UNSQUEEZE] = {.fn = imp_unsqueeze, .const_in = 1u << 1},
    [IR_OP_CONCAT] = {.fn = imp_concat},
    [IR_OP_IDENTITY] = {.fn = imp_plain},
    [IR_OP_DROPOUT] = {.fn = imp_dropout, .const_in = 1u << 1 | 1u << 2},
    [IR_OP_CONSTANT] = {.fn = imp_constant},
    [IR_OP_CAST] = {.fn = imp_cast},
    [IR_OP_CONV] = {.fn = imp_conv},
    [IR_OP_BATCH_NORM] = {.fn = imp_batch_norm},
    [IR_OP_MAX_POOL] = {.fn = imp_max_pool, .extra_out = "Indices"},
    [IR_OP_AVG_POOL] = {.fn = imp_avg_pool},
    [IR_OP_GLOBAL_AVG_POOL] = {.fn = imp_global_pool},
    [IR_OP_GLOBAL_MAX_POOL] = {.fn = imp_global_pool},
    [IR_OP_PAD] = {.fn = imp_pad, .const_in = 1u << 1 | 1u << 2},
    [IR_OP_CLIP] = {.fn = imp_clip, .const_in = 1u << 1 | 1u << 2},
};
