/* desc.c: the model descriptor of a planned graph (the runtime ABI), and the interpreter as a
 * backend behind one.
 *
 * ir_model_desc turns the memory plan into runtime/lnsrt.h's tensor table: one entry per value
 * that has bytes somewhere (the state blob, the scratch arena, an IO buffer, or only an
 * LnsScaleState), in value id order, so the table, its indices and its fingerprint are a pure
 * function of the planned graph. Every backend takes the same table: the LLVM backend
 * serialises it as constant data next to its entry points, and the interpreter model below
 * runs it as it is. Checkpoints therefore move between backends.
 *
 * The interpreter model puts an IrInterp behind LnsrtModelDesc's entry points. The ABI's step
 * gets the runtime's blobs, while the interpreter owns its own; the adapter copies the state
 * blob in before a step and out after a training step, and copies the graph outputs and the
 * loss into the runtime's scratch, so lnsrt_model reads results through the table as it does
 * for generated code. The copies cost little next to the reference kernels. The descriptor is
 * the first member of IrInterpModel, so the step args' model pointer leads back to it.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "runtime/lnsrt.h"

/* The table stores IR enums as the runtime's; they must agree. */
#define SAME(a, b) ((int)(a) == (int)(b))
_Static_assert(SAME(IR_MAX_RANK, LNSRT_MAX_RANK), "rank limits differ");
_Static_assert(SAME(IR_AREA_STATE, LNSRT_AREA_STATE) && SAME(IR_AREA_SCRATCH, LNSRT_AREA_SCRATCH) &&
		       SAME(IR_AREA_CONST, LNSRT_AREA_CONST) && SAME(IR_AREA_IO, LNSRT_AREA_IO),
	       "IrArea and LNSRT_AREA_* differ");
_Static_assert(SAME(IR_DT_F32, LNSRT_DT_F32) && SAME(IR_DT_F16, LNSRT_DT_F16) &&
		       SAME(IR_DT_I64, LNSRT_DT_I64) && SAME(IR_DT_U8, LNSRT_DT_U8) &&
		       SAME(IR_DT_U64, LNSRT_DT_U64) && SAME(IR_DT_BOOL, LNSRT_DT_BOOL) &&
		       SAME(IR_DT_LNS, LNSRT_DT_LNS) && SAME(IR_DT_COUNT, LNSRT_DT_COUNT),
	       "IrDType and LNSRT_DT_* differ");
_Static_assert(SAME(IR_ROLE_INPUT, LNSRT_ROLE_INPUT) && SAME(IR_ROLE_CONST, LNSRT_ROLE_CONST) &&
		       SAME(IR_ROLE_PGRAD, LNSRT_ROLE_PGRAD) && SAME(IR_ROLE_STATE, LNSRT_ROLE_STATE) &&
		       SAME(IR_ROLE_COUNT, LNSRT_ROLE_COUNT),
	       "IrRole and LNSRT_ROLE_* differ");
_Static_assert(offsetof(IrStateHeader, seed) == offsetof(LnsrtStateHeader, seed) &&
		       offsetof(IrStateHeader, step) == offsetof(LnsrtStateHeader, step),
	       "state headers differ");
#undef SAME

static int has_storage(const IrValue *v)
{
	return (v->loc.area != IR_AREA_NONE && v->loc.area != IR_AREA_CONST) || v->loc.scale_off >= 0;
}

static void fill_tensor(const IrGraph *g, IrArena *a, const IrValue *v, LnsrtTensorDesc *t)
{
	const IrType *ty = v->type;
	const IrLoc *l = &v->loc;
	memset(t, 0, sizeof *t);
	t->name = ir_arena_strdup(a, v->name);
	t->role = (int32_t)v->role;
	t->dtype = (int32_t)ty->dt;
	t->area = (int32_t)l->area;
	if (ty->dt == IR_DT_LNS) {
		t->bits = ty->fmt.bits;
		t->log2g = ty->fmt.log2g;
		t->scale = ty->fmt.scale;
		t->round = ty->fmt.round;
		t->underflow = ty->fmt.underflow;
	}
	t->rank = ty->rank;
	for (int i = 0; i < ty->rank; i++)
		t->dims[i] = ty->dims[i];
	int placed = l->area == IR_AREA_STATE || l->area == IR_AREA_SCRATCH;
	t->offset = placed ? (int64_t)l->offset : -1;
	t->bytes = l->area == IR_AREA_NONE ? (int64_t)ir_type_bytes(ty) : (int64_t)l->bytes;
	t->scale_off = l->scale_off;
	t->io_slot = -1;
	t->param = -1;
	if (l->area == IR_AREA_IO) {
		for (int i = 0; i < g->inputs.n; i++)
			if (g->inputs.v[i] == v)
				t->io_slot = i;
		if (v == g->labels)
			t->io_slot = g->inputs.n;
	}
}

/* Batch from the first data input; classes and example size for one input, one 2-D output. */
static void fill_shapes(const IrGraph *g, LnsrtModelDesc *d)
{
	const IrValue *in = g->inputs.n ? g->inputs.v[0] : NULL;
	const IrValue *out = g->outputs.n ? g->outputs.v[0] : NULL;
	if (!in || in->type->rank < 1 || in->type->dims[0] < 1)
		return;
	d->batch = (int32_t)in->type->dims[0];
	if (g->inputs.n == 1 && g->outputs.n == 1 && out->type->rank == 2) {
		d->nclasses = (int32_t)out->type->dims[1];
		d->example_size = in->type->numel / in->type->dims[0];
	}
}

int ir_model_desc(IrGraph *g, IrArena *a, const char *recipe, LnsrtModelDesc *out)
{
	memset(out, 0, sizeof *out);
	out->input = out->labels = out->logits = out->loss = -1;
	if (!g->plan) {
		ir_error(g->ctx, IR_ERR_INPUT, "%s: the graph has no memory plan (run pass_plan)",
			 g->source ? g->source : g->name);
		return -1;
	}
	int nv = g->values.n, n = 0;
	int32_t *index = malloc(sizeof *index * (size_t)(nv ? nv : 1));
	if (!index)
		abort();
	for (int i = 0; i < nv; i++)
		index[i] = has_storage(IR_VALUE(g, i)) ? n++ : -1;
	LnsrtTensorDesc *t = ir_arena_alloc(a, sizeof *t * (size_t)(n ? n : 1));
	for (int i = 0; i < nv; i++)
		if (index[i] >= 0)
			fill_tensor(g, a, IR_VALUE(g, i), &t[index[i]]);
	for (int i = 0; i < nv; i++) {
		const IrValue *v = IR_VALUE(g, i);
		if (index[i] >= 0 && v->param && (v->role == IR_ROLE_STATE || v->role == IR_ROLE_PGRAD))
			t[index[i]].param = index[v->param->id];
	}
	out->abi_version = LNSRT_ABI_VERSION;
	out->name = ir_arena_strdup(a, g->name ? g->name : "model");
	out->recipe = ir_arena_strdup(a, recipe ? recipe : "");
	out->state_bytes = (int64_t)(g->plan->state_bytes > IR_STATE_HEADER_BYTES
					     ? g->plan->state_bytes
					     : IR_STATE_HEADER_BYTES);
	out->scratch_bytes = (int64_t)g->plan->scratch_bytes;
	out->ntensors = n;
	out->tensors = t;
	out->nio = g->inputs.n + (g->labels ? 1 : 0);
	if (g->inputs.n)
		out->input = index[((IrValue *)g->inputs.v[0])->id];
	if (g->labels)
		out->labels = index[g->labels->id];
	if (g->outputs.n)
		out->logits = index[((IrValue *)g->outputs.v[0])->id];
	if (g->loss)
		out->loss = index[g->loss->id];
	fill_shapes(g, out);
	out->fingerprint = lnsrt_desc_fingerprint(out);
	free(index);
	return 0;
}

/* ---- the interpreter behind a descriptor ---- */

struct IrInterpModel {
	LnsrtModelDesc desc; /* first: LnsrtStepArgs.model points here */
	IrGraph *g;
	IrArena *arena;  /* the table and its names */
	IrInterp *ip;    /* made by init */
	IrValue **slot;  /* per IO slot */
	int32_t *index;  /* per value id: table index, or -1 */
	IrNode **lr_node; /* the main optimizer's updates, whose lr a step may override */
	float *lr_default;
	int n_lr;
};

static IrInterpModel *self(const LnsrtStepArgs *a)
{
	return (IrInterpModel *)(uintptr_t)a->model;
}

static int im_init(LnsrtStepArgs *a, uint64_t seed)
{
	IrInterpModel *m = self(a);
	ir_interp_free(m->ip);
	m->ip = ir_interp_new(m->g, seed);
	if (!m->ip)
		return 1;
	memcpy(a->state, ir_interp_state_blob(m->ip), (size_t)m->desc.state_bytes);
	return 0;
}

static void set_lr(IrInterpModel *m, float lr)
{
	for (int i = 0; i < m->n_lr; i++)
		m->lr_node[i]->attr.opt.lr = lr > 0 ? lr : m->lr_default[i];
}

/* The tensor a numeric error names ("numeric error: tensor '<v>' (node ..."), or -1. */
static int32_t error_tensor(const IrInterpModel *m, const char *msg)
{
	static const char pre[] = "numeric error: tensor '";
	if (strncmp(msg, pre, sizeof pre - 1))
		return -1;
	const char *s = msg + sizeof pre - 1, *e = strstr(s, "' (node '");
	char name[512];
	if (!e || e - s >= (ptrdiff_t)sizeof name)
		return -1;
	memcpy(name, s, (size_t)(e - s));
	name[e - s] = 0;
	const IrValue *v = ir_graph_value(m->g, name);
	return v ? m->index[v->id] : -1;
}

/* Graph outputs and the loss go to the runtime's scratch, where the table says they are. */
static void copy_results(IrInterpModel *m, void *scratch)
{
	IrGraph *g = m->g;
	for (int i = 0; i < g->values.n; i++) {
		IrValue *v = IR_VALUE(g, i);
		int result = v->is_output || v == g->loss;
		for (int j = 0; j < g->outputs.n && !result; j++)
			result = g->outputs.v[j] == v;
		if (result && v->loc.area == IR_AREA_SCRATCH && v->loc.bytes)
			memcpy((uint8_t *)scratch + v->loc.offset, ir_interp_data(m->ip, v),
			       v->loc.bytes);
	}
}

static int im_step(LnsrtStepArgs *a, IrMode mode)
{
	IrInterpModel *m = self(a);
	if (!m->ip)
		return 2;
	void *blob = ir_interp_state_blob(m->ip);
	size_t sb = (size_t)m->desc.state_bytes;
	memcpy(blob, a->state, sb);
	ir_interp_state_loaded(m->ip);
	for (int i = 0; i < m->desc.nio; i++)
		ir_interp_bind(m->ip, m->slot[i], a->io[i]);
	set_lr(m, a->lr);
	int rc = ir_interp_run(m->ip, mode);
	set_lr(m, 0);
	if (mode == IR_MODE_TRAIN)
		memcpy(a->state, blob, sb);
	copy_results(m, a->scratch);
	if (rc) {
		/* the ABI's codes: 1 numeric error, 2 a label out of range (as generated code) */
		const char *msg = ir_interp_error(m->ip);
		a->error_tensor = error_tensor(m, msg);
		if (a->error_tensor >= 0)
			return 1;
		if (strstr(msg, ": label ") && strstr(msg, "is out of range") && m->desc.labels >= 0) {
			a->error_tensor = m->desc.labels;
			return 2;
		}
		ir_error(m->g->ctx, IR_ERR_RUNTIME, "%s", msg);
		return 3;
	}
	return 0;
}

static int im_train(LnsrtStepArgs *a)
{
	return im_step(a, IR_MODE_TRAIN);
}

static int im_eval(LnsrtStepArgs *a)
{
	return im_step(a, IR_MODE_EVAL);
}

/* The main optimizer: Madam when the recipe has it (the rest, 1-D Adam, keeps its own lr),
 * otherwise every update. */
static void find_lr_nodes(IrInterpModel *m)
{
	IrGraph *g = m->g;
	int madam = 0;
	for (int i = 0; i < g->nodes.n; i++)
		madam |= IR_NODE(g, i)->op == IR_OP_MADAM;
	m->lr_node = calloc((size_t)(g->nodes.n ? g->nodes.n : 1), sizeof *m->lr_node);
	m->lr_default = calloc((size_t)(g->nodes.n ? g->nodes.n : 1), sizeof *m->lr_default);
	if (!m->lr_node || !m->lr_default)
		abort();
	for (int i = 0; i < g->nodes.n; i++) {
		IrNode *n = IR_NODE(g, i);
		if (madam ? n->op == IR_OP_MADAM : ir_op_has(n->op, IR_OPF_UPDATE)) {
			m->lr_node[m->n_lr] = n;
			m->lr_default[m->n_lr++] = n->attr.opt.lr;
		}
	}
}

IrInterpModel *ir_interp_model_new(IrGraph *g, const char *recipe)
{
	IrInterpModel *m = calloc(1, sizeof *m);
	if (!m)
		abort();
	m->g = g;
	m->arena = ir_arena_new();
	if (ir_model_desc(g, m->arena, recipe, &m->desc)) {
		ir_interp_model_free(m);
		return NULL;
	}
	m->desc.init = im_init;
	m->desc.train_step = im_train;
	m->desc.eval_step = im_eval;
	m->slot = calloc((size_t)(m->desc.nio ? m->desc.nio : 1), sizeof *m->slot);
	m->index = calloc((size_t)(g->values.n ? g->values.n : 1), sizeof *m->index);
	if (!m->slot || !m->index)
		abort();
	for (int i = 0; i < g->values.n; i++)
		m->index[i] = -1;
	for (int i = 0; i < m->desc.ntensors; i++) {
		IrValue *v = ir_graph_value(g, m->desc.tensors[i].name);
		m->index[v->id] = i;
		if (m->desc.tensors[i].io_slot >= 0)
			m->slot[m->desc.tensors[i].io_slot] = v;
	}
	find_lr_nodes(m);
	return m;
}

const LnsrtModelDesc *ir_interp_model_desc(const IrInterpModel *m)
{
	return &m->desc;
}

IrInterp *ir_interp_model_interp(IrInterpModel *m)
{
	return m->ip;
}

void ir_interp_model_free(IrInterpModel *m)
{
	if (!m)
		return;
	if (m->lr_node)
		set_lr(m, 0);
	ir_interp_free(m->ip);
	ir_arena_free(m->arena);
	free(m->slot);
	free(m->index);
	free(m->lr_node);
	free(m->lr_default);
	free(m);
}
