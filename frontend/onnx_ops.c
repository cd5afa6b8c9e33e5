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

const FeOpImport fe_import_table[IR_OP_COUNT] = {
    [IR_OP_GEMM] = {imp_gemm, 0},
    [IR_OP_MATMUL] = {imp_matmul, 0},
    [IR_OP_ADD] = {imp_plain, 0},
    [IR_OP_SUB] = {imp_plain, 0},
    [IR_OP_MUL] = {imp_plain, 0},
    [IR_OP_DIV] = {imp_plain, 0},
    [IR_OP_NEG] = {imp_plain, 0},
    [IR_OP_RELU] = {imp_plain, 0},
    [IR_OP_LEAKY_RELU] = {imp_leaky_relu, 0},
    [IR_OP_SIGMOID] = {imp_plain, 0},
    [IR_OP_TANH] = {imp_plain, 0},
    [IR_OP_SOFTMAX] = {imp_softmax, 0},
    [IR_OP_LOG_SOFTMAX] = {imp_softmax, 0},
    [IR_OP_FLATTEN] = {imp_flatten, 0},
    [IR_OP_RESHAPE] = {imp_reshape, 1u << 1},
    [IR_OP_TRANSPOSE] = {imp_transpose, 0},
    [IR_OP_SQUEEZE] = {imp_squeeze, 1u << 1},
    [IR_OP_UNSQUEEZE] = {imp_unsqueeze, 1u << 1},
    [IR_OP_CONCAT] = {imp_concat, 0},
    [IR_OP_IDENTITY] = {imp_plain, 0},
    [IR_OP_DROPOUT] = {imp_dropout, 1u << 1 | 1u << 2},
    [IR_OP_CONSTANT] = {imp_constant, 0},
    [IR_OP_CAST] = {imp_cast, 0},
};
