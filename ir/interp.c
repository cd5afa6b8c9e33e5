/* interp.c: the reference executor: runs a planned graph node by node with the kernels of
 * interp_ops.c, and is the oracle every other backend is compared with.
 *
 * Memory follows the plan (passes/plan.c): one state blob (header with seed and step,
 * parameters in their storage format, optimizer state, one LnsScaleState per LNS value) and
 * one scratch arena, both allocated in ir_interp_new together with two per-node buffers sized
 * by the largest node: f32 temporaries for decoded LNS inputs and for LNS outputs before they
 * are encoded, and the kernels' scratch. A step allocates nothing.
 *
 * Per node the executor decodes LNS inputs to f32 (except for RAW ops, and for one-input data
 * moves and code-exact ops between identical LNS formats, which work on codes and keep the
 * scale offset),
 * runs the kernel, checks every f32 result for NaN/Inf (a numeric error names the tensor, the
 * node and the step), and encodes LNS outputs with the value's scale state (recorded in TRAIN
 * mode only) and its own random stream. Each value's current scale offset lives in k[id]; a
 * per-value valid flag, cleared for every value whose storage a write overlaps, lets
 * ir_interp_read refuse values the scratch reuse has destroyed.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

enum { MAX_OUT = 8, ALIGN = 64 };

struct IrInterp {
	IrGraph *g;
	IrStateHeader *hdr;     /* start of the state blob: seed and step */
	uint8_t *state, *scratch;
	uint8_t *tmp;           /* f32 temporaries of one node (decoded inputs, outputs to encode) */
	size_t tmp_cap;
	uint8_t *kbuf;          /* kernel scratch of one node */
	size_t kbuf_cap, kbuf_used;
	const void **io;        /* per value id: bound caller buffer */
	int32_t *k;             /* per value id: scale offset of the LNS data it holds */
	uint8_t *valid;         /* per value id: holds data usable now */
	LnsStats *stats;        /* per value id: its last encode */
	const IrType **ftype;   /* per value id: the f32 type of an LNS value's shape */
	int *clob_start, *clob; /* per value id: values whose storage it overlaps (CSR) */
	IrTensor tin[IR_MAX_IN], tout[MAX_OUT];
	const IrNode *cur;      /* running node, for messages */
	IrMode mode;
	int onnx, labels_bound;
	char err[1024];
};

static size_t align_up(size_t n)
{
	return (n + ALIGN - 1) / ALIGN * ALIGN;
}

static void *zalloc_aligned(size_t n)
{
	n = align_up(n ? n : 1);
	void *p = aligned_alloc(ALIGN, n);
	if (!p)
		abort();
	memset(p, 0, n);
	return p;
}

static void *zcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		abort();
	return p;
}

/* ---- small accessors ---- */

static size_t numel(const IrValue *v)
{
	return (size_t)v->type->numel;
}

static void *value_data(const IrInterp *ip, const IrValue *v)
{
	switch (v->loc.area) {
	case IR_AREA_STATE: return ip->state + v->loc.offset;
	case IR_AREA_SCRATCH: return ip->scratch + v->loc.offset;
	case IR_AREA_CONST: return v->init;
	case IR_AREA_IO: return (void *)ip->io[v->id];
	default: return NULL;
	}
}

static LnsScaleState *scale_of(const IrInterp *ip, const IrValue *v)
{
	return v->loc.scale_off >= 0 ? (LnsScaleState *)(ip->state + v->loc.scale_off) : NULL;
}

void *ir_interp_data(IrInterp *ip, const IrValue *v)
{
	return value_data(ip, v);
}

LnsScaleState *ir_interp_scale(IrInterp *ip, const IrValue *v)
{
	return scale_of(ip, v);
}

uint32_t ir_interp_step(const IrInterp *ip)
{
	return ip->hdr->step;
}

void ir_interp_set_step(IrInterp *ip, uint32_t step)
{
	ip->hdr->step = step;
}

void *ir_interp_state_blob(IrInterp *ip)
{
	return ip->state;
}

void ir_interp_state_loaded(IrInterp *ip)
{
	IrGraph *g = ip->g;
	for (int i = 0; i < g->values.n; i++) {
		const IrValue *v = IR_VALUE(g, i);
		if (v->loc.area == IR_AREA_STATE && v->type->dt == IR_DT_LNS && v->loc.scale_off >= 0)
			ip->k[i] = scale_of(ip, v)->k;
	}
}

IrMode ir_interp_mode(const IrInterp *ip)
{
	return ip->mode;
}

void ir_interp_set_onnx_semantics(IrInterp *ip, int on)
{
	ip->onnx = on != 0;
}

int ir_interp_onnx_semantics(const IrInterp *ip)
{
	return ip->onnx;
}

const char *ir_interp_error(const IrInterp *ip)
{
	return ip->err;
}

uint32_t ir_interp_rng_key(const IrInterp *ip, const IrValue *v)
{
	return lns_rng_key(ip->hdr->seed, ip->hdr->step, (uint32_t)v->id);
}

int ir_interp_stats(const IrInterp *ip, const IrValue *v, IrInterpStats *out)
{
	if (v->type->dt != IR_DT_LNS)
		return -1;
	const LnsStats *s = &ip->stats[v->id];
	*out = (IrInterpStats){s->n_sat, s->n_unf, s->n_total, s->amax};
	return 0;
}

/* ---- errors and kernel helpers ---- */

void ir_interp_fail(IrInterp *ip, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (ip->cur)
		snprintf(ip->err, sizeof ip->err, "node '%s' (%s): %s", ip->cur->name,
			 ir_op_name(ip->cur->op), msg);
	else
		snprintf(ip->err, sizeof ip->err, "%s", msg);
}

int ir_interp_check_finite(IrInterp *ip, const IrValue *v, const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(x[i])) {
			const IrNode *c = ip->cur;
			snprintf(ip->err, sizeof ip->err,
				 "numeric error: tensor '%s' (node '%s', %s) has NaN/Inf at step %u",
				 v->name, c ? c->name : "?", c ? ir_op_name(c->op) : "?",
				 (unsigned)ip->hdr->step);
			return -1;
		}
	return 0;
}

void *ir_interp_scratch(IrInterp *ip, size_t bytes)
{
	size_t need = align_up(bytes);
	if (need > ip->kbuf_cap - ip->kbuf_used) {
		ir_interp_fail(ip, "kernel scratch exhausted (%zu bytes asked, %zu left)", bytes,
			       ip->kbuf_cap - ip->kbuf_used);
		return NULL;
	}
	void *p = ip->kbuf + ip->kbuf_used;
	ip->kbuf_used += need;
	return p;
}

/* The documented bound of ir_interp_scratch: 4 bytes per input and 8 per output element
 * (SumTo: 8 per lane sum and tail of each output, IR_SUM_LANES + 1). */
static size_t scratch_bound(const IrNode *n)
{
	size_t b = 0, per_out = n->op == IR_OP_SUM_TO ? 8 * (IR_SUM_LANES + 1) : 8;
	for (int i = 0; i < n->nin; i++)
		b += align_up(numel(n->in[i]) * 4);
	for (int j = 0; j < n->nout; j++)
		b += align_up(numel(n->out[j]) * per_out);
	return b;
}

/* f32 temporaries: one per LNS input and output (an upper bound of what run_node takes). */
static size_t temp_bound(const IrNode *n)
{
	size_t b = 0;
	for (int i = 0; i < n->nin; i++)
		if (n->in[i]->type->dt == IR_DT_LNS)
			b += align_up(numel(n->in[i]) * 4);
	for (int j = 0; j < n->nout; j++)
		if (n->out[j]->type->dt == IR_DT_LNS)
			b += align_up(numel(n->out[j]) * 4);
	return b;
}

/* ---- creation: buffers, checks, the init step ---- */

static int setup_fail(IrInterp *ip, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int setup_fail(IrInterp *ip, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	const IrGraph *g = ip->g;
	ir_error(g->ctx, IR_ERR_INPUT, "%s: %s", g->source ? g->source : g->name, msg);
	return -1;
}

/* Every node has a kernel and at most MAX_OUT outputs; every value it touches has a place;
 * inputs and labels are plain tensors the caller fills. */
static int check_graph(IrInterp *ip)
{
	IrGraph *g = ip->g;
	for (int i = 0; i < g->nodes.n; i++) {
		const IrNode *n = IR_NODE(g, i);
		if (!ir_interp_table[n->op] || n->nout > MAX_OUT)
			return setup_fail(ip, "node '%s' (%s): no interpreter kernel", n->name,
					  ir_op_name(n->op));
		for (int j = 0; j < n->nin + n->nout; j++) {
			const IrValue *v = j < n->nin ? n->in[j] : n->out[j - n->nin];
			if (v->loc.area == IR_AREA_NONE)
				return setup_fail(ip, "tensor '%s' has no place in the memory plan",
						  v->name);
			if (v->loc.area == IR_AREA_CONST && !v->init)
				return setup_fail(ip, "constant '%s' has no data", v->name);
			if (v->loc.area == IR_AREA_IO && v->type->dt == IR_DT_LNS)
				return setup_fail(ip, "input '%s' has an LNS type; inputs are fed "
						  "as f32 and quantized in the graph", v->name);
		}
	}
	return 0;
}

/* Per value: f32 shadow types of LNS values; per-node buffer sizes. */
static void size_buffers(IrInterp *ip)
{
	IrGraph *g = ip->g;
	for (int i = 0; i < g->values.n; i++) {
		const IrValue *v = IR_VALUE(g, i);
		if (v->type->dt == IR_DT_LNS)
			ip->ftype[i] = ir_type_f32_like(g->ctx, v->type);
	}
	for (int i = 0; i < g->nodes.n; i++) {
		const IrNode *n = IR_NODE(g, i);
		size_t t = temp_bound(n), s = scratch_bound(n);
		ip->tmp_cap = t > ip->tmp_cap ? t : ip->tmp_cap;
		ip->kbuf_cap = s > ip->kbuf_cap ? s : ip->kbuf_cap;
	}
	ip->tmp = zalloc_aligned(ip->tmp_cap);
	ip->kbuf = zalloc_aligned(ip->kbuf_cap);
}

static int overlap(const IrValue *a, const IrValue *b)
{
	return a != b && a->loc.area == IR_AREA_SCRATCH && b->loc.area == IR_AREA_SCRATCH &&
	       a->loc.bytes && b->loc.bytes && a->loc.offset < b->loc.offset + b->loc.bytes &&
	       b->loc.offset < a->loc.offset + a->loc.bytes;
}

/* For each scratch value, the scratch values sharing any of its bytes (CSR lists). */
static void build_clobbers(IrInterp *ip)
{
	IrGraph *g = ip->g;
	int nv = g->values.n, ns = 0, total = 0;
	int *s = zcalloc((size_t)nv, sizeof(int));
	for (int i = 0; i < nv; i++)
		if (IR_VALUE(g, i)->loc.area == IR_AREA_SCRATCH)
			s[ns++] = i;
	ip->clob_start = zcalloc((size_t)nv + 1, sizeof(int));
	for (int a = 0; a < nv; a++) {
		ip->clob_start[a] = total;
		for (int b = 0; b < ns; b++)
			total += overlap(IR_VALUE(g, a), IR_VALUE(g, s[b]));
	}
	ip->clob_start[nv] = total;
	ip->clob = zcalloc((size_t)total, sizeof(int));
	for (int a = 0, at = 0; a < nv; a++)
		for (int b = 0; b < ns; b++)
			if (overlap(IR_VALUE(g, a), IR_VALUE(g, s[b])))
				ip->clob[at++] = s[b];
	free(s);
}

static const IrNode *updater(const IrGraph *g, const IrValue *p, IrOp op)
{
	for (int i = 0; i < g->nodes.n; i++) {
		const IrNode *n = IR_NODE(g, i);
		if (n->op == op && n->in[0] == p)
			return n;
	}
	return NULL;
}

/* An LNS parameter (or constant): Madam weights get lns_madam_init (k_w so that the top code
 * is p_scale * RMS); others (lns-sgd, lns-adam) the 'current' k of their initial data, fixed
 * from then on, and nearest rounding. */
static void init_lns_param(IrInterp *ip, const IrValue *v, void *dst)
{
	LnsScaleState *st = scale_of(ip, v);
	const IrNode *m = updater(ip->g, v, IR_OP_MADAM);
	const float *w0 = v->init;
	if (m) {
		const IrAttrOpt *o = &m->attr.opt;
		LnsMadamParams p = {.lr = o->lr, .p_scale = o->p_scale, .g_bound = o->g_bound,
				    .beta2 = o->beta2};
		st->k = lns_madam_init(v->type->fmt, &p, w0, numel(v), dst);
	} else {
		float amax = 0.0f;
		for (size_t i = 0; i < numel(v); i++)
			amax = fmaxf(amax, fabsf(w0[i]));
		LnsFormat f = v->type->fmt;
		f.scale = LNS_SCALE_STATIC;
		f.round = LNS_ROUND_NEAREST;
		st->k = lns_scale_current(f, amax);
		lns_encode_tensor(f, st, w0, dst, numel(v), ir_interp_rng_key(ip, v), 0, NULL);
	}
	ip->k[v->id] = st->k;
}

static int init_value(IrInterp *ip, const IrValue *v)
{
	void *dst = ip->state + v->loc.offset;
	int lns = v->type->dt == IR_DT_LNS;
	char a[64], b[64];
	if (!v->init)
		return v->role == IR_ROLE_STATE ? 0 : setup_fail(ip, "'%s' has no initial value",
								  v->name);
	if (v->init_type->numel != v->type->numel ||
	    v->init_type->dt != (lns ? IR_DT_F32 : v->type->dt))
		return setup_fail(ip, "initial data of '%s' is %s, its type is %s", v->name,
				  ir_type_str(v->init_type, 0, a, sizeof a),
				  ir_type_str(v->type, 0, b, sizeof b));
	if (!lns) {
		memcpy(dst, v->init, ir_type_bytes(v->type));
		return 0;
	}
	const float *w0 = v->init;
	for (size_t i = 0; i < numel(v); i++)
		if (!isfinite(w0[i]))
			return setup_fail(ip, "initial data of '%s' has NaN/Inf", v->name);
	init_lns_param(ip, v, dst);
	return 0;
}

/* The forward view of a parameter: k_v fixed at init from the weight's k (static). A view
 * of a computed tensor derives k_v in the kernel each step. */
static int init_view(IrInterp *ip, const IrNode *n)
{
	const IrValue *w = n->in[0], *v = n->out[0];
	if (v->type->dt != IR_DT_LNS)
		return 0;
	if (w->type->dt != IR_DT_LNS)
		return setup_fail(ip, "node '%s' (%s): an f32 weight has no LNS view", n->name,
				  ir_op_name(n->op));
	if (w->def)
		return 0;
	int32_t kv = lns_view_offset(w->type->fmt, ip->k[w->id], v->type->fmt);
	scale_of(ip, v)->k = kv;
	ip->k[v->id] = kv;
	return 0;
}

/* The init step: header, parameters, constants that need encoding, optimizer state (zero
 * unless given), weight views. */
static int init_state(IrInterp *ip, uint64_t seed)
{
	IrGraph *g = ip->g;
	ip->hdr = (IrStateHeader *)ip->state;
	ip->hdr->seed = seed;
	ip->hdr->step = 0;
	for (int i = 0; i < g->values.n; i++) {
		const IrValue *v = IR_VALUE(g, i);
		if (v->loc.area == IR_AREA_STATE && init_value(ip, v))
			return -1;
		ip->valid[i] = v->loc.area == IR_AREA_STATE || v->loc.area == IR_AREA_CONST;
	}
	for (int i = 0; i < g->nodes.n; i++)
		if (IR_NODE(g, i)->op == IR_OP_WEIGHT_VIEW && init_view(ip, IR_NODE(g, i)))
			return -1;
	return 0;
}

IrInterp *ir_interp_new(IrGraph *g, uint64_t seed)
{
	if (!g->plan) {
		ir_error(g->ctx, IR_ERR_INPUT, "%s: the graph has no memory plan (run pass_plan)",
			 g->source ? g->source : g->name);
		return NULL;
	}
	IrInterp *ip = zcalloc(1, sizeof *ip);
	size_t nv = (size_t)g->values.n;
	ip->g = g;
	ip->mode = IR_MODE_EVAL;
	ip->io = zcalloc(nv, sizeof *ip->io);
	ip->k = zcalloc(nv, sizeof *ip->k);
	ip->valid = zcalloc(nv, 1);
	ip->stats = zcalloc(nv, sizeof *ip->stats);
	ip->ftype = zcalloc(nv, sizeof *ip->ftype);
	ip->state = zalloc_aligned(g->plan->state_bytes > IR_STATE_HEADER_BYTES
					   ? g->plan->state_bytes
					   : IR_STATE_HEADER_BYTES);
	ip->scratch = zalloc_aligned(g->plan->scratch_bytes);
	ip->hdr = (IrStateHeader *)ip->state;
	if (check_graph(ip)) {
		ir_interp_free(ip);
		return NULL;
	}
	size_buffers(ip);
	build_clobbers(ip);
	if (init_state(ip, seed)) {
		ir_interp_free(ip);
		return NULL;
	}
	return ip;
}

void ir_interp_free(IrInterp *ip)
{
	if (!ip)
		return;
	free(ip->state);
	free(ip->scratch);
	free(ip->tmp);
	free(ip->kbuf);
	free(ip->io);
	free(ip->k);
	free(ip->valid);
	free(ip->stats);
	free(ip->ftype);
	free(ip->clob_start);
	free(ip->clob);
	free(ip);
}

int ir_interp_bind(IrInterp *ip, const IrValue *v, const void *data)
{
	if (v->id < 0 || v->id >= ip->g->values.n || v->loc.area != IR_AREA_IO) {
		snprintf(ip->err, sizeof ip->err, "tensor '%s' is not an input or label", v->name);
		return -1;
	}
	ip->io[v->id] = data;
	ip->valid[v->id] = data != NULL;
	if (v->role == IR_ROLE_LABEL)
		ip->labels_bound = data != NULL;
	return 0;
}

/* ---- one node ---- */

static float *temp_take(IrInterp *ip, size_t *used, size_t bytes)
{
	float *p = (float *)(ip->tmp + *used);
	*used += align_up(bytes);
	return p; /* within tmp_cap: temp_bound counts every LNS input and output */
}

/* One-input data moves and code-exact ops (Relu, Neg: LNS.md 4) between identical LNS
 * formats run on codes: the kernel sees words, the output keeps the input's scale offset.
 * Anything else (Concat of LNS tensors, whose offsets may differ) goes through f32; with one
 * gamma the levels 2^(E/g) coincide for every k, so only the range limits can change a value. */
static int on_codes(const IrNode *n)
{
	if (!ir_op_has(n->op, IR_OPF_MOVE | IR_OPF_CODE_EXACT) || n->nin != 1 || n->nout != 1)
		return 0;
	const IrType *a = n->in[0]->type, *b = n->out[0]->type;
	return a->dt == IR_DT_LNS && b->dt == IR_DT_LNS && !memcmp(&a->fmt, &b->fmt, sizeof a->fmt);
}

static int prepare_in(IrInterp *ip, const IrNode *n, int i, int raw, size_t *used)
{
	const IrValue *v = n->in[i];
	IrTensor *t = &ip->tin[i];
	if (!ip->valid[v->id]) {
		if (v->loc.area == IR_AREA_IO)
			ir_interp_fail(ip, "input '%s' is not bound", v->name);
		else
			ir_interp_fail(ip, "tensor '%s' is read before it is computed", v->name);
		return -1;
	}
	*t = (IrTensor){v->type, value_data(ip, v), ip->k[v->id]};
	if (v->type->dt != IR_DT_LNS || raw)
		return 0;
	float *f = temp_take(ip, used, numel(v) * 4);
	lns_decode_tensor(v->type->fmt, t->k, t->data, f, numel(v));
	t->type = ip->ftype[v->id];
	t->data = f;
	return 0;
}

static void prepare_out(IrInterp *ip, const IrNode *n, int j, int raw, size_t *used)
{
	const IrValue *v = n->out[j];
	IrTensor *t = &ip->tout[j];
	*t = (IrTensor){v->type, value_data(ip, v), ip->k[v->id]};
	if (v->type->dt == IR_DT_LNS && !raw) {
		t->type = ip->ftype[v->id];
		t->data = temp_take(ip, used, numel(v) * 4);
	}
}

static void mark_written(IrInterp *ip, const IrValue *v)
{
	ip->valid[v->id] = 1;
	for (int i = ip->clob_start[v->id]; i < ip->clob_start[v->id + 1]; i++)
		ip->valid[ip->clob[i]] = 0;
}

/* f32 results are checked; LNS outputs are encoded from their f32 temporary. */
static int finish_out(IrInterp *ip, const IrNode *n, int j, int codes)
{
	const IrValue *v = n->out[j];
	IrTensor *t = &ip->tout[j];
	if (codes) {
		t->k = ip->tin[0].k;
	} else if (t->type->dt == IR_DT_F32) {
		if (ir_interp_check_finite(ip, v, t->data, numel(v)))
			return -1;
		if (v->type->dt == IR_DT_LNS) {
			LnsStats *s = &ip->stats[v->id];
			t->k = lns_encode_tensor(v->type->fmt, scale_of(ip, v), t->data,
						 value_data(ip, v), numel(v),
						 ir_interp_rng_key(ip, v), ip->mode == IR_MODE_TRAIN,
						 s);
		}
	}
	ip->k[v->id] = t->k;
	mark_written(ip, v);
	return 0;
}

static int run_node(IrInterp *ip, const IrNode *n)
{
	size_t used = 0;
	int codes = on_codes(n), raw = codes || ir_op_has(n->op, IR_OPF_RAW);
	ip->cur = n;
	ip->kbuf_used = 0;
	for (int i = 0; i < n->nin; i++)
		if (prepare_in(ip, n, i, raw, &used))
			return -1;
	for (int j = 0; j < n->nout; j++)
		prepare_out(ip, n, j, raw, &used);
	if (ir_interp_table[n->op](ip, n, ip->tin, ip->tout))
		return -1;
	for (int j = 0; j < n->nout; j++)
		if (finish_out(ip, n, j, codes))
			return -1;
	/* an update mutates its parameter in place: an f32 one is checked like an output */
	if (ir_op_has(n->op, IR_OPF_UPDATE) && n->in[0]->type->dt == IR_DT_F32)
		return ir_interp_check_finite(ip, n->in[0], ip->tin[0].data, numel(n->in[0]));
	return 0;
}

static int phase_runs(const IrInterp *ip, IrPhase p)
{
	if (ip->mode == IR_MODE_TRAIN)
		return 1;
	return p == IR_PHASE_FWD || (p == IR_PHASE_LOSS && ip->labels_bound);
}

int ir_interp_run(IrInterp *ip, IrMode mode)
{
	IrGraph *g = ip->g;
	ip->mode = mode;
	ip->err[0] = 0;
	if (mode == IR_MODE_TRAIN)
		ip->hdr->step++;
	for (int i = 0; i < g->values.n; i++)
		if (IR_VALUE(g, i)->loc.area == IR_AREA_SCRATCH)
			ip->valid[i] = 0;
	int rc = 0;
	for (int i = 0; i < g->nodes.n && !rc; i++) {
		const IrNode *n = IR_NODE(g, i);
		if (phase_runs(ip, n->phase))
			rc = run_node(ip, n);
	}
	ip->cur = NULL;
	return rc;
}

int ir_interp_read(IrInterp *ip, const IrValue *v, void *out)
{
	if (v->id < 0 || v->id >= ip->g->values.n || !ip->valid[v->id]) {
		snprintf(ip->err, sizeof ip->err, "tensor '%s' is not live after the step", v->name);
		return -1;
	}
	const void *d = value_data(ip, v);
	if (v->type->dt == IR_DT_LNS)
		lns_decode_tensor(v->type->fmt, ip->k[v->id], d, out, numel(v));
	else
		memcpy(out, d, ir_type_bytes(v->type));
	return 0;
}

/* ---- constant folding ---- */

static int foldable(IrGraph *g, const IrNode *n)
{
	if (!ir_interp_table[n->op] || n->nout > MAX_OUT || n->op == IR_OP_DROPOUT ||
	    ir_op_has(n->op, IR_OPF_RAW | IR_OPF_UPDATE)) {
		ir_node_error(g, n, IR_ERR_UNSUPPORTED, "cannot be folded");
		return 0;
	}
	for (int i = 0; i < n->nin + n->nout; i++) {
		const IrValue *v = i < n->nin ? n->in[i] : n->out[i - n->nin];
		int ok = v->type->dt != IR_DT_LNS;
		if (i < n->nin)
			ok = ok && v->role == IR_ROLE_CONST && v->init && v->init_type->dt == v->type->dt;
		if (!ok) {
			ir_node_error(g, n, IR_ERR_UNSUPPORTED, "cannot fold: '%s' is not a plain "
				      "constant", v->name);
			return 0;
		}
	}
	return 1;
}

/* A throwaway interpreter (step 0, no state) runs the kernel on the constants' data. */
int ir_interp_fold(IrGraph *g, const IrNode *n, IrTensor *out)
{
	if (!foldable(g, n))
		return -1;
	IrStateHeader hdr = {0};
	IrInterp *ip = zcalloc(1, sizeof *ip);
	ip->g = g;
	ip->hdr = &hdr;
	ip->mode = IR_MODE_EVAL;
	ip->kbuf_cap = scratch_bound(n);
	ip->kbuf = zalloc_aligned(ip->kbuf_cap);
	for (int i = 0; i < n->nin; i++)
		ip->tin[i] = (IrTensor){n->in[i]->type, n->in[i]->init, 0};
	for (int j = 0; j < n->nout; j++) {
		size_t b = ir_type_bytes(n->out[j]->type);
		out[j] = (IrTensor){n->out[j]->type, ir_arena_alloc(g->arena, b ? b : 1), 0};
	}
	int rc = ir_interp_table[n->op](ip, n, ip->tin, out);
	if (rc)
		ir_node_error(g, n, IR_ERR_INPUT, "constant folding failed: %s", ip->err);
	for (int j = 0; j < n->nout && !rc; j++) {
		const float *x = out[j].data;
		for (size_t i = 0; out[j].type->dt == IR_DT_F32 && i < numel(n->out[j]) && !rc; i++)
			rc = isfinite(x[i]) ? 0 : -1;
		if (rc)
			ir_node_error(g, n, IR_ERR_INPUT, "constant folding gives NaN/Inf in '%s'",
				      n->out[j]->name);
	}
	free(ip->kbuf);
	free(ip);
	return rc;
}

int ir_interp_can_fold(const IrNode *n)
{
	if (ir_op_has(n->op, IR_OPF_UPDATE | IR_OPF_RAW) || n->op == IR_OP_DROPOUT || !n->nin)
		return 0;
	for (int i = 0; i < n->nin; i++)
		if (n->in[i]->role != IR_ROLE_CONST)
			return 0;
	return 1;
}

int ir_interp_fold_node(IrGraph *g, int idx)
{
	IrNode *n = IR_NODE(g, idx);
	IrTensor out[MAX_OUT];
	if (ir_interp_fold(g, n, out))
		return -1;
	for (int j = 0; j < n->nout; j++) {
		IrValue *v = n->out[j];
		/* the value keeps its name and identity: it becomes a constant in place */
		v->def = NULL;
		v->role = IR_ROLE_CONST;
		v->init = out[j].data;
		v->init_type = out[j].type;
	}
	for (int i = 0; i < n->nin; i++)
		n->in[i]->nuses--;
	memmove(&g->nodes.v[idx], &g->nodes.v[idx + 1],
		(size_t)(g->nodes.n - idx - 1) * sizeof(void *));
	g->nodes.n--;
	return 0;
}
