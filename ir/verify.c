/* verify.c: checks the IR invariants every pass must keep, and reports every violation.
 *
 * The pipeline runs it after each pass, so it is linear in the graph and reports all it
 * finds (not just the first) as IR_ERR_INPUT diagnostics naming the node or value. Checked:
 * values (ids, unique names, roles against producers, param links, initial data), nodes in
 * order (arity per ops.def, inputs of this graph defined by an earlier node or by no node,
 * each value defined once, outputs pointing back at their node, update nodes mutate a
 * parameter and have no outputs, attribute sanity), re-inference (same shapes; the same type
 * up to the float format, ir_verify_type_ok), use counts, and the graph's lists. Values whose
 * producer was removed as dead code are ignored unless something still refers to them.
 * The structural checks run first: inference runs only on nodes that passed them.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

typedef struct Ver {
	IrGraph *g;
	int nerr;
	int *def_at;      /* per value id: index of the node defining it, or -1 */
	int *uses;        /* per value id: uses counted over the nodes */
	unsigned char *ok; /* per node index: structure sound enough to look deeper */
} Ver;

static const char *src(const IrGraph *g)
{
	return g->source ? g->source : g->name ? g->name : "<graph>";
}

static void node_err(Ver *vr, const IrNode *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void node_err(Ver *vr, const IrNode *n, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	ir_node_error(vr->g, n, IR_ERR_INPUT, "%s", buf);
	vr->nerr++;
}

static void val_err(Ver *vr, const IrValue *v, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void val_err(Ver *vr, const IrValue *v, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	ir_error(vr->g->ctx, IR_ERR_INPUT, "%s: value '%s': %s", src(vr->g),
		 v->name ? v->name : "?", buf);
	vr->nerr++;
}

static void graph_err(Ver *vr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void graph_err(Ver *vr, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	ir_error(vr->g->ctx, IR_ERR_INPUT, "%s: %s", src(vr->g), buf);
	vr->nerr++;
}

static int in_graph(const IrGraph *g, const IrValue *v)
{
	return v && v->id >= 0 && v->id < g->values.n && g->values.v[v->id] == v;
}

static const char *vname(const IrValue *v)
{
	return v && v->name ? v->name : "?";
}

/* ---- attributes ---- */

static int bad(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
	return -1;
}

static int check_perm(const IrAttrPerm *p, int rank, char *msg, size_t len)
{
	unsigned seen = 0;
	if (p->n != rank)
		return bad(msg, len, "perm has %d entries for an input of rank %d", p->n, rank);
	for (int i = 0; i < p->n; i++) {
		if (p->perm[i] < 0 || p->perm[i] >= rank || (seen >> p->perm[i]) & 1)
			return bad(msg, len, "perm is not a permutation of 0..%d", rank - 1);
		seen |= 1u << p->perm[i];
	}
	return 0;
}

static int check_axes(const IrNode *n, int rank, char *msg, size_t len)
{
	const IrAttrAxes *a = &n->attr.axes;
	if (a->n < 0 || a->n > IR_MAX_RANK)
		return bad(msg, len, "%d axes", a->n);
	int limit = n->op == IR_OP_UNSQUEEZE ? rank + a->n : rank;
	if (limit > IR_MAX_RANK)
		return bad(msg, len, "the result would have rank %d (at most %d)", limit,
			   IR_MAX_RANK);
	for (int i = 0; i < a->n; i++) {
		if (a->axes[i] < 0 || a->axes[i] >= limit)
			return bad(msg, len, "axis %d out of range (0..%d)", a->axes[i], limit - 1);
		if (i && a->axes[i] <= a->axes[i - 1])
			return bad(msg, len, "axes are not sorted and distinct");
	}
	return 0;
}

static int check_shape(const IrAttrShape *s, char *msg, size_t len)
{
	int64_t numel = 1;
	if (s->rank < 0 || s->rank > IR_MAX_RANK)
		return bad(msg, len, "shape of rank %d (at most %d)", s->rank, IR_MAX_RANK);
	for (int i = 0; i < s->rank; i++) {
		int64_t d = s->dims[i];
		if (d < 0 || d > (int64_t)IR_MAX_DIM)
			return bad(msg, len, "shape dimension %lld out of range", (long long)d);
		if (d && numel > IR_MAX_NUMEL / d)
			return bad(msg, len, "shape of more than %lld elements",
				   (long long)IR_MAX_NUMEL);
		numel *= d;
	}
	return 0;
}

/* Pad: pads within IR_MAX_DIM and, for a known input, a padded shape a tensor can have
 * (cropping too much is inference's error). */
static int check_pad(const IrAttrPad *p, const IrType *t, char *msg, size_t len)
{
	int64_t numel = 1;
	for (int i = 0; i < 2 * p->n; i++)
		if (p->pads[i] < -IR_MAX_DIM || p->pads[i] > IR_MAX_DIM)
			return bad(msg, len, "pad %lld out of range", (long long)p->pads[i]);
	for (int i = 0; t && i < p->n; i++) {
		int64_t d = t->dims[i] + p->pads[i] + p->pads[i + p->n];
		if (d > IR_MAX_DIM || (d > 0 && numel > IR_MAX_NUMEL / d))
			return bad(msg, len, "padded shape of more than %lld elements",
				   (long long)IR_MAX_NUMEL);
		numel *= d > 0 ? d : 1;
	}
	return isfinite(p->value) ? 0 : bad(msg, len, "pad value must be finite");
}

static int check_opt(const IrAttrOpt *o, char *msg, size_t len)
{
	const float v[] = {o->lr, o->beta1, o->beta2, o->eps, o->momentum, o->weight_decay,
			   o->p_scale, o->g_bound};
	static const char *const names[] = {"lr", "beta1", "beta2", "eps", "momentum",
					    "weight_decay", "p_scale", "g_bound"};
	for (int i = 0; i < 8; i++) {
		int below_one = i == 1 || i == 2 || i == 4;
		if (!(v[i] >= 0 && isfinite(v[i])) || (below_one && !(v[i] < 1)))
			return bad(msg, len, "%s=%g out of range ([0,%s))", names[i], (double)v[i],
				   below_one ? "1" : "inf");
	}
	return 0;
}

static int check_slice(const IrAttrSlice *s, const IrType *t, char *msg, size_t len)
{
	if (!t || s->axis < 0 || s->axis >= t->rank)
		return bad(msg, len, "slice axis %d out of range", s->axis);
	if (s->start < 0 || s->start > s->end || s->end > t->dims[s->axis])
		return bad(msg, len, "slice [%lld, %lld) out of range 0..%lld",
			   (long long)s->start, (long long)s->end, (long long)t->dims[s->axis]);
	return 0;
}

/* kernel, strides and dilations >= 1, pads >= 0: the window geometry of Conv and the pools. */
static int check_window(const int *k, const int *st, const int *dil, const int *pad, char *msg,
			size_t len)
{
	for (int i = 0; i < 2; i++)
		if (k[i] < 1 || st[i] < 1 || dil[i] < 1 || pad[i] < 0 || pad[i + 2] < 0)
			return bad(msg, len, "kernel, strides and dilations must be >= 1 and pads "
				   ">= 0");
	return 0;
}

int ir_verify_attrs(const IrNode *n, char *msg, size_t len)
{
	const IrAttrs *a = &n->attr;
	const IrType *t = n->nin > 0 && n->in[0] ? n->in[0]->type : NULL;
	int rank = t ? t->rank : 0;
	switch (ir_op_info[n->op].attr) {
	case IR_ATTR_NONE: return 0;
	case IR_ATTR_GEMM:
		if (!isfinite(a->gemm.alpha) || !isfinite(a->gemm.beta))
			return bad(msg, len, "alpha and beta must be finite");
		if ((a->gemm.trans_a & ~1) || (a->gemm.trans_b & ~1))
			return bad(msg, len, "transA and transB must be 0 or 1");
		return 0;
	case IR_ATTR_ALPHA:
		return isfinite(a->alpha.alpha) ? 0 : bad(msg, len, "alpha must be finite");
	case IR_ATTR_AXIS: {
		int hi = n->op == IR_OP_FLATTEN ? rank : rank - 1;
		if (a->axis.legacy & ~1)
			return bad(msg, len, "legacy must be 0 or 1");
		if (a->axis.axis < 0 || a->axis.axis > hi)
			return bad(msg, len, "axis %d out of range for rank %d", a->axis.axis, rank);
		return 0;
	}
	case IR_ATTR_PERM: return check_perm(&a->perm, rank, msg, len);
	case IR_ATTR_AXES: return check_axes(n, rank, msg, len);
	case IR_ATTR_SHAPE: return check_shape(&a->shape, msg, len);
	case IR_ATTR_CAST:
		if ((unsigned)a->cast.to >= IR_DT_COUNT || a->cast.to == IR_DT_LNS)
			return bad(msg, len, "cannot cast to %s", ir_dtype_name(a->cast.to));
		return 0;
	case IR_ATTR_DROPOUT:
		if (!(a->dropout.ratio >= 0 && a->dropout.ratio < 1))
			return bad(msg, len, "ratio %g out of range [0,1)", (double)a->dropout.ratio);
		return a->dropout.training & ~1 ? bad(msg, len, "training must be 0 or 1") : 0;
	case IR_ATTR_SLICE: return check_slice(&a->slice, t, msg, len);
	case IR_ATTR_OPT: return check_opt(&a->opt, msg, len);
	case IR_ATTR_CONV:
		if (a->conv.group < 1)
			return bad(msg, len, "group %d must be >= 1", a->conv.group);
		if (a->conv.xhw[0] < 0 || a->conv.xhw[1] < 0)
			return bad(msg, len, "negative input dims");
		return check_window(a->conv.kernel, a->conv.stride, a->conv.dilation, a->conv.pad,
				    msg, len);
	case IR_ATTR_BN:
		if (!(a->bn.epsilon >= 0) || !isfinite(a->bn.epsilon))
			return bad(msg, len, "epsilon %g must be finite and >= 0",
				   (double)a->bn.epsilon);
		if (!(a->bn.momentum >= 0 && a->bn.momentum <= 1))
			return bad(msg, len, "momentum %g out of range [0,1]",
				   (double)a->bn.momentum);
		return a->bn.training & ~1 ? bad(msg, len, "training must be 0 or 1") : 0;
	case IR_ATTR_POOL:
		if ((a->pool.ceil_mode & ~1) || (a->pool.count_include_pad & ~1))
			return bad(msg, len, "ceil_mode and count_include_pad must be 0 or 1");
		if (a->pool.xhw[0] < 0 || a->pool.xhw[1] < 0)
			return bad(msg, len, "negative input dims");
		return check_window(a->pool.kernel, a->pool.stride, a->pool.dilation, a->pool.pad,
				    msg, len);
	case IR_ATTR_PAD:
		if (a->pad.n < 1 || a->pad.n > IR_MAX_RANK || (t && a->pad.n != rank))
			return bad(msg, len, "pads for %d dims, input rank %d", a->pad.n, rank);
		return check_pad(&a->pad, t, msg, len);
	case IR_ATTR_CLIP:
		if (isnan(a->clip.min) || isnan(a->clip.max) || a->clip.min > a->clip.max)
			return bad(msg, len, "min %g must be <= max %g", (double)a->clip.min,
				   (double)a->clip.max);
		return 0;
	}
	return bad(msg, len, "unknown attribute kind");
}

static int float_like(IrDType dt)
{
	return dt == IR_DT_F32 || dt == IR_DT_LNS;
}

int ir_verify_type_ok(const IrType *have, const IrType *want)
{
	if (have == want)
		return 1;
	return have && want && ir_type_same_shape(have, want) && float_like(have->dt) &&
	       float_like(want->dt);
}

/* ---- values ---- */

static int role_has_def(IrRole r)
{
	return r == IR_ROLE_ACT || r == IR_ROLE_GRAD || r == IR_ROLE_PGRAD || r == IR_ROLE_LOSS;
}

static void check_value(Ver *vr, const IrValue *v)
{
	if (!v->name)
		val_err(vr, v, "has no name");
	if (!v->type)
		val_err(vr, v, "has no type");
	if ((unsigned)v->role >= IR_ROLE_COUNT) {
		val_err(vr, v, "has role %d", (int)v->role);
		return;
	}
	const char *role = ir_role_name(v->role);
	if (role_has_def(v->role) && !v->def)
		val_err(vr, v, "is a %s value but no node produces it", role);
	if (!role_has_def(v->role) && v->def)
		val_err(vr, v, "is a %s value but node '%s' produces it", role,
			v->def->name ? v->def->name : "?");
	if (v->role == IR_ROLE_PGRAD && !v->param)
		val_err(vr, v, "is a %s value of no parameter", role);
	if (v->param && (!in_graph(vr->g, v->param) || v->param->role != IR_ROLE_PARAM))
		val_err(vr, v, "belongs to '%s', which is not a parameter of this graph",
			vname(v->param));
	if (v->grad && !in_graph(vr->g, v->grad))
		val_err(vr, v, "its gradient is not a value of this graph");
	if (v->init && (!v->init_type || !v->type || v->init_type->numel != v->type->numel))
		val_err(vr, v, "its initial data does not have the value's element count");
}

static int by_name(const void *a, const void *b)
{
	const IrValue *x = *(const IrValue *const *)a, *y = *(const IrValue *const *)b;
	return strcmp(x->name, y->name);
}

static void check_values(Ver *vr)
{
	IrGraph *g = vr->g;
	const IrValue **named = malloc(sizeof *named * (size_t)(g->values.n + 1));
	int nn = 0;
	if (!named)
		abort();
	for (int i = 0; i < g->values.n; i++) {
		const IrValue *v = IR_VALUE(g, i);
		if (!v) {
			graph_err(vr, "value slot %d is empty", i);
			continue;
		}
		if (v->id != i)
			val_err(vr, v, "has id %d but sits at index %d", v->id, i);
		check_value(vr, v);
		if (v->name)
			named[nn++] = v;
	}
	qsort(named, (size_t)nn, sizeof *named, by_name);
	for (int i = 1; i < nn; i++)
		if (!strcmp(named[i - 1]->name, named[i]->name))
			val_err(vr, named[i], "the name is used by two values");
	free(named);
}

/* ---- nodes ---- */

/* Arity, arrays, outputs pointing back; records which node defines each output. */
static int check_structure(Ver *vr, const IrNode *n, int k)
{
	IrGraph *g = vr->g;
	if ((unsigned)n->op >= IR_OP_COUNT) {
		node_err(vr, n, "has op %d", (int)n->op);
		return 0;
	}
	const IrOpInfo *oi = &ir_op_info[n->op];
	int ok = 1;
	if (n->nin < oi->min_in || n->nin > oi->max_in || (n->nin && !n->in)) {
		node_err(vr, n, "has %d inputs (%d..%d)", n->nin, oi->min_in, oi->max_in);
		ok = 0;
	}
	if (n->nout != oi->nout || (n->nout && !n->out)) {
		node_err(vr, n, "has %d outputs (%d)", n->nout, oi->nout);
		return 0;
	}
	if ((unsigned)n->phase > IR_PHASE_UPDATE) {
		node_err(vr, n, "has phase %d", (int)n->phase);
		ok = 0;
	}
	for (int j = 0; j < n->nout; j++) {
		IrValue *v = n->out[j];
		if (!in_graph(g, v)) {
			node_err(vr, n, "output %d is not a value of this graph", j);
			ok = 0;
			continue;
		}
		if (v->def != n || v->def_out != j) {
			node_err(vr, n, "output %d is '%s', which says node '%s' output %d defines it",
				 j, vname(v), v->def && v->def->name ? v->def->name : "(none)",
				 v->def_out);
			ok = 0;
		}
		if (vr->def_at[v->id] >= 0) {
			node_err(vr, n, "defines '%s' again (node '%s' did)", vname(v),
				 IR_NODE(g, vr->def_at[v->id])->name);
			ok = 0;
		} else
			vr->def_at[v->id] = k;
	}
	return ok;
}

/* Inputs defined before use, uses counted, update nodes. */
static int check_inputs(Ver *vr, const IrNode *n, int k)
{
	IrGraph *g = vr->g;
	int ok = 1;
	for (int j = 0; j < n->nin; j++) {
		const IrValue *v = n->in[j];
		if (!in_graph(g, v)) {
			node_err(vr, n, "input %d is not a value of this graph", j);
			ok = 0;
			continue;
		}
		vr->uses[v->id]++;
		if (!v->type)
			ok = 0;
		if (!v->def)
			continue;
		if (vr->def_at[v->id] < 0) {
			node_err(vr, n, "uses '%s', whose producer '%s' is not in the graph", vname(v),
				 v->def->name ? v->def->name : "?");
			ok = 0;
		} else if (vr->def_at[v->id] >= k) {
			node_err(vr, n, "uses '%s' before its definition (by node '%s')", vname(v),
				 IR_NODE(g, vr->def_at[v->id])->name);
			ok = 0;
		}
	}
	if (n->op == IR_OP_ASSIGN && n->nin &&
	    (!in_graph(g, n->in[0]) || n->in[0]->role != IR_ROLE_STATE || n->in[0]->param))
		node_err(vr, n, "assigns '%s', which is not a running statistic (state of no "
			 "parameter)", vname(n->in[0]));
	else if (n->op != IR_OP_ASSIGN && ir_op_has(n->op, IR_OPF_UPDATE) && n->nin &&
		 (!in_graph(g, n->in[0]) || n->in[0]->role != IR_ROLE_PARAM))
		node_err(vr, n, "updates '%s', which is not a parameter", vname(n->in[0]));
	return ok;
}

static void check_types(Ver *vr, IrNode *n)
{
	char msg[256], b1[256], b2[256];
	const IrType *out[8] = {0};
	if (ir_verify_attrs(n, msg, sizeof msg)) {
		node_err(vr, n, "%s", msg);
		return;
	}
	int nd = ir_error_count(vr->g->ctx);
	if (ir_infer_node(vr->g, n, out)) {
		if (ir_error_count(vr->g->ctx) == nd)
			node_err(vr, n, "is ill-typed");
		else
			vr->nerr++;
		return;
	}
	for (int j = 0; j < n->nout; j++) {
		const IrValue *v = n->out[j];
		if (out[j] && !ir_verify_type_ok(v->type, out[j]))
			node_err(vr, n, "output '%s' has type %s, inference gives %s", vname(v),
				 v->type ? ir_type_str(v->type, 1, b1, sizeof b1) : "(none)",
				 ir_type_str(out[j], 1, b2, sizeof b2));
	}
}

static void check_nodes(Ver *vr)
{
	IrGraph *g = vr->g;
	for (int k = 0; k < g->nodes.n; k++) {
		const IrNode *n = IR_NODE(g, k);
		if (!n)
			graph_err(vr, "node slot %d is empty", k);
		vr->ok[k] = n && check_structure(vr, n, k);
	}
	for (int k = 0; k < g->nodes.n; k++) {
		IrNode *n = IR_NODE(g, k);
		if (vr->ok[k] && check_inputs(vr, n, k))
			check_types(vr, n);
	}
}

/* ---- graph ---- */

/* A value the graph refers to: of this graph, and computed by a node in it (or by none). */
static int check_ref(Ver *vr, const IrValue *v, const char *what)
{
	if (!in_graph(vr->g, v)) {
		graph_err(vr, "the %s is not a value of this graph", what);
		return 0;
	}
	if (v->def && vr->def_at[v->id] < 0) {
		val_err(vr, v, "is the %s, but its producer is not in the graph", what);
		return 0;
	}
	return 1;
}

static void check_lists(Ver *vr)
{
	IrGraph *g = vr->g;
	for (int i = 0; i < g->outputs.n; i++) {
		const IrValue *v = g->outputs.v[i];
		if (check_ref(vr, v, "graph output") && !v->is_output)
			val_err(vr, v, "is a graph output but is_output is 0");
	}
	for (int i = 0; i < g->values.n; i++) {
		const IrValue *v = IR_VALUE(g, i);
		int listed = 0;
		if (!v || !v->is_output)
			continue;
		for (int j = 0; j < g->outputs.n && !listed; j++)
			listed = g->outputs.v[j] == v;
		if (!listed)
			val_err(vr, v, "has is_output set but is not a graph output");
	}
	if (g->loss)
		check_ref(vr, g->loss, "loss");
	if (!g->outputs.n && !g->loss)
		graph_err(vr, "the graph has no output and no loss");
	for (int i = 0; i < g->inputs.n; i++)
		if (check_ref(vr, g->inputs.v[i], "input") &&
		    ((IrValue *)g->inputs.v[i])->role != IR_ROLE_INPUT)
			val_err(vr, g->inputs.v[i], "is a graph input but its role is not input");
	for (int i = 0; i < g->params.n; i++)
		if (check_ref(vr, g->params.v[i], "parameter") &&
		    ((IrValue *)g->params.v[i])->role != IR_ROLE_PARAM)
			val_err(vr, g->params.v[i], "is a graph parameter but its role is not param");
	if (g->labels && check_ref(vr, g->labels, "label value") &&
	    g->labels->role != IR_ROLE_LABEL)
		val_err(vr, g->labels, "is the label value but its role is not label");
}

static void check_uses(Ver *vr)
{
	IrGraph *g = vr->g;
	for (int i = 0; i < g->values.n; i++) {
		const IrValue *v = IR_VALUE(g, i);
		if (v && v->id == i && v->nuses != vr->uses[i])
			val_err(vr, v, "nuses is %d but %d node inputs use it", v->nuses, vr->uses[i]);
	}
}

int ir_verify(IrGraph *g)
{
	Ver vr = {.g = g};
	size_t nv = (size_t)g->values.n + 1, nn = (size_t)g->nodes.n + 1;
	vr.def_at = malloc(sizeof(int) * nv);
	vr.uses = calloc(nv, sizeof(int));
	vr.ok = calloc(nn, 1);
	if (!vr.def_at || !vr.uses || !vr.ok)
		abort();
	for (size_t i = 0; i < nv; i++)
		vr.def_at[i] = -1;
	check_values(&vr);
	check_nodes(&vr);
	check_lists(&vr);
	check_uses(&vr);
	free(vr.def_at);
	free(vr.uses);
	free(vr.ok);
	return vr.nerr ? -1 : 0;
}
