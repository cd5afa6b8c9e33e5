/* cg_entry.c: the model's entry points (init, train step, eval step), its descriptor, and the
 * plumbing every kernel uses (base pointers, scale slots, temporaries, tasks, errors).
 *
 * A model is one module: a constant LnsrtModelDesc `<sym>` (runtime/lnsrt.h; the layout comes
 * from the target's data layout, the tensor table from ir_model_desc) pointing at three entry
 * points. `<sym>_init` writes the state blob exactly as the interpreter's init does (zeroed,
 * header, parameters encoded from their fp32 initial values held as private constants, weight
 * view offsets), so both backends' blobs are byte-identical after init. The step functions run
 * the nodes in g->nodes order, each node's kernel emitted by cg_emit_table[op]: the train step
 * bumps the step counter and runs every phase; the eval step runs the forward phase (and the
 * loss when labels are bound) and touches no training state. A kernel is a task function
 * `void(LnsrtStepArgs *, i64 task)` run through cg_parallel_for, its partial results (max |x|,
 * counters) left in the node's temporary area for the step function to reduce, so results never
 * depend on the thread count. Numeric errors return 1 from the step with a->error_tensor set to
 * the tensor's index in the descriptor table (2 for bad input data). Per-tensor, per-step
 * bookkeeping (scale choice and history, one-time init) calls ir/lns.c; per-element work is
 * generated.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"
#include "runtime/lnsrt.h"

enum { A_STATE, A_SCRATCH, A_IO, A_POOL, A_LR, A_ERROR };

/* ---- function plumbing ---- */

static LLVMTypeRef args_type(CgCtx *c)
{
	if (!c->t_args) {
		LLVMTypeRef el[7] = {c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr,
		                     c->t_f32, c->t_i32, c->t_ptr};
		c->t_args = LLVMStructTypeInContext(c->llctx, el, 7, 0);
	}
	return c->t_args;
}

static LLVMValueRef args_field(CgCtx *c, int i)
{
	return LLVMBuildStructGEP2(c->b, args_type(c), c->args, (unsigned)i, "");
}

static void add_attr(CgCtx *c, LLVMValueRef f, const char *name)
{
	unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
	LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
	                        LLVMCreateEnumAttribute(c->llctx, kind, 0));
}

LLVMValueRef cg_fn_begin(CgCtx *c, const char *name, LLVMTypeRef fty)
{
	LLVMValueRef f = LLVMAddFunction(c->mod, name, fty);
	add_attr(c, f, "nounwind");
	c->fn = f;
	LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->llctx, f, "entry"));
	c->args = LLVMGetParam(f, 0);
	c->state = LLVMBuildLoad2(c->b, c->t_ptr, args_field(c, A_STATE), "state");
	c->scratch = LLVMBuildLoad2(c->b, c->t_ptr, args_field(c, A_SCRATCH), "scratch");
	c->io = LLVMBuildLoad2(c->b, c->t_ptr, args_field(c, A_IO), "io");
	return f;
}

void cg_fn_save(CgCtx *c, CgFnSave *s)
{
	*s = (CgFnSave){c->fn, c->args, c->state, c->scratch, c->io, LLVMGetInsertBlock(c->b)};
}

void cg_fn_restore(CgCtx *c, const CgFnSave *s)
{
	c->fn = s->fn;
	c->args = s->args;
	c->state = s->state;
	c->scratch = s->scratch;
	c->io = s->io;
	LLVMPositionBuilderAtEnd(c->b, s->bb);
}

LLVMValueRef cg_call(CgCtx *c, const char *name, LLVMTypeRef ret, LLVMValueRef *args, int n)
{
	LLVMTypeRef pt[16];
	for (int i = 0; i < n && i < 16; i++)
		pt[i] = LLVMTypeOf(args[i]);
	LLVMTypeRef fty = LLVMFunctionType(ret, pt, (unsigned)n, 0);
	LLVMValueRef f = cg_extern_fn(c, name, fty);
	return LLVMBuildCall2(c->b, fty, f, args, (unsigned)n, "");
}

LLVMValueRef cg_fmt_arg(CgCtx *c, LnsFormat f)
{
	uint64_t v = (uint64_t)f.bits | (uint64_t)f.log2g << 8 | (uint64_t)f.scale << 16 |
	             (uint64_t)f.round << 24 | (uint64_t)f.underflow << 32;
	return LLVMConstInt(c->t_i64, v, 0);
}

/* ---- where values live ---- */

/* A private constant global holding n bytes (64-byte aligned), named once per key. */
static LLVMValueRef bytes_global(CgCtx *c, const char *name, const void *data, size_t n)
{
	LLVMValueRef g = LLVMGetNamedGlobal(c->mod, name);
	if (g)
		return g;
	LLVMValueRef init = LLVMConstStringInContext2(c->llctx, data, n, 1);
	g = LLVMAddGlobal(c->mod, LLVMTypeOf(init), name);
	LLVMSetInitializer(g, init);
	LLVMSetGlobalConstant(g, 1);
	LLVMSetLinkage(g, LLVMPrivateLinkage);
	LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
	LLVMSetAlignment(g, 64);
	return g;
}

static LLVMValueRef init_global(CgCtx *c, const IrValue *v)
{
	char name[32];
	snprintf(name, sizeof name, "init.%d", v->id);
	return bytes_global(c, name, v->init, ir_type_bytes(v->init_type));
}

LLVMValueRef cg_value_ptr(CgCtx *c, const IrValue *v)
{
	switch (v->loc.area) {
	case IR_AREA_STATE:
		return cg_gep_c(c, c->state, (int64_t)v->loc.offset);
	case IR_AREA_SCRATCH:
		return cg_gep_c(c, c->scratch, (int64_t)v->loc.offset);
	case IR_AREA_CONST:
		return init_global(c, v);
	case IR_AREA_IO: {
		LLVMValueRef p = cg_gep_c(c, c->io, 8 * (int64_t)c->ioslot[v->id]);
		return LLVMBuildLoad2(c->b, c->t_ptr, p, v->name);
	}
	default:
		return LLVMConstPointerNull(c->t_ptr);
	}
}

LLVMValueRef cg_scale_ptr(CgCtx *c, const IrValue *v)
{
	return cg_gep_c(c, c->state, v->loc.scale_off);
}

LLVMValueRef cg_kslot_ptr(CgCtx *c, const IrValue *v)
{
	return cg_gep_c(c, c->scratch, (int64_t)c->g->plan->kslot_off + 4 * (int64_t)v->id);
}

LLVMValueRef cg_value_k(CgCtx *c, const IrValue *v)
{
	LLVMValueRef p = v->loc.area == IR_AREA_STATE ? cg_scale_ptr(c, v) : cg_kslot_ptr(c, v);
	return LLVMBuildLoad2(c->b, c->t_i32, p, "k");
}

LLVMValueRef cg_temp_ptr(CgCtx *c, int64_t off)
{
	return cg_gep_c(c, c->scratch, (int64_t)c->g->plan->temp_off + off);
}

LLVMValueRef cg_partial_ptr(CgCtx *c, LLVMValueRef i)
{
	LLVMValueRef off = LLVMBuildMul(c->b, i, cg_i64(c, CG_PARTIAL), "");
	return cg_gep(c, cg_temp_ptr(c, 0), off);
}

LLVMValueRef cg_step(CgCtx *c)
{
	return LLVMBuildLoad2(c->b, c->t_i32, cg_gep_c(c, c->state, 8), "step");
}

LLVMValueRef cg_seed(CgCtx *c)
{
	return LLVMBuildLoad2(c->b, c->t_i64, c->state, "seed");
}

LLVMValueRef cg_lr(CgCtx *c, float dflt, int main)
{
	if (!main)
		return cg_f32(c, dflt);
	LLVMValueRef lr = LLVMBuildLoad2(c->b, c->t_f32, args_field(c, A_LR), "lr");
	LLVMValueRef set = LLVMBuildFCmp(c->b, LLVMRealUNE, lr, cg_f32(c, 0.0f), "");
	return LLVMBuildSelect(c->b, set, lr, cg_f32(c, dflt), "");
}

/* ---- tasks and errors ---- */

static LLVMTypeRef task_type(CgCtx *c)
{
	LLVMTypeRef p[2] = {c->t_ptr, c->t_i64};
	return LLVMFunctionType(c->t_void, p, 2, 0);
}

static void call_task(CgCtx *c, LLVMValueRef task, LLVMValueRef i)
{
	LLVMValueRef a[2] = {c->args, i};
	LLVMBuildCall2(c->b, task_type(c), task, a, 2, "");
}

void cg_parallel_for(CgCtx *c, LLVMValueRef task, LLVMValueRef n)
{
	if (LLVMIsConstant(n) && LLVMConstIntGetSExtValue(n) == 1) {
		call_task(c, task, cg_i64(c, 0));
		return;
	}
	LLVMValueRef pool = LLVMBuildLoad2(c->b, c->t_ptr, args_field(c, A_POOL), "pool");
	LLVMValueRef a[4] = {pool, n, task, c->args};
	cg_call(c, "lnsrt_parallel_for", c->t_void, a, 4);
}

static void check_fail(CgCtx *c, LLVMValueRef bad, const IrValue *v, int code)
{
	LLVMBasicBlockRef err = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "error");
	LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "ok");
	LLVMBuildCondBr(c->b, bad, err, ok);
	LLVMPositionBuilderAtEnd(c->b, err);
	int32_t idx = c->tindex && v ? c->tindex[v->id] : -1;
	LLVMBuildStore(c->b, cg_i32(c, idx), args_field(c, A_ERROR));
	LLVMBuildRet(c->b, cg_i32(c, code));
	LLVMPositionBuilderAtEnd(c->b, ok);
}

void cg_check_error(CgCtx *c, LLVMValueRef bad, const IrValue *v)
{
	check_fail(c, bad, v, 1);
}

void cg_check_input(CgCtx *c, LLVMValueRef bad, const IrValue *v)
{
	check_fail(c, bad, v, 2);
}

int cg_emit_check(IrCtx *ir)
{
	int missing = 0;
	for (int i = 0; i < IR_OP_COUNT; i++)
		if (i != IR_OP_CONSTANT && !cg_emit_table[i]) {
			ir_error(ir, IR_ERR_RUNTIME, "self-check: op %s has no LLVM emitter",
			         ir_op_info[i].name);
			missing++;
		}
	return missing ? -1 : 0;
}

/* ---- the init step ---- */

static int entry_error(CgCtx *c, const char *fmt, const char *name)
{
	const IrGraph *g = c->g;
	char msg[512];
	snprintf(msg, sizeof msg, fmt, name);
	ir_error(c->ir, IR_ERR_INPUT, "%s: %s", g->source ? g->source : g->name, msg);
	return -1;
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

/* An LNS parameter or constant: Madam weights through lns_madam_init; others with the
 * 'current' k of their initial data (computed here, as the interpreter does at init), static,
 * nearest rounding, via lns_encode_tensor. */
static void init_lns(CgCtx *c, const IrValue *v, LLVMValueRef dst)
{
	const float *w0 = v->init;
	size_t n = (size_t)v->type->numel;
	LLVMValueRef st = cg_scale_ptr(c, v), w = init_global(c, v), k;
	const IrNode *m = updater(c->g, v, IR_OP_MADAM);
	if (m) {
		const IrAttrOpt *o = &m->attr.opt;
		float p[4] = {o->lr, o->p_scale, o->g_bound, o->beta2};
		char name[32];
		snprintf(name, sizeof name, "madam.%d", v->id);
		LLVMValueRef a[5] = {cg_fmt_arg(c, v->type->fmt),
		                     bytes_global(c, name, p, sizeof p), w, cg_i64(c, (int64_t)n),
		                     dst};
		k = cg_call(c, "lns_madam_init", c->t_i32, a, 5);
	} else {
		float amax = 0.0f;
		for (size_t i = 0; i < n; i++)
			amax = fmaxf(amax, fabsf(w0[i]));
		LnsFormat f = v->type->fmt;
		f.scale = LNS_SCALE_STATIC;
		f.round = LNS_ROUND_NEAREST;
		k = cg_i32(c, lns_scale_current(f, amax));
		LLVMBuildStore(c->b, k, st);
		LLVMValueRef ka[3] = {cg_seed(c), cg_i32(c, 0), cg_i32(c, v->id)};
		LLVMValueRef key = cg_call(c, "lns_rng_key", c->t_i32, ka, 3);
		LLVMValueRef a[8] = {cg_fmt_arg(c, f),
		                     st,
		                     w,
		                     dst,
		                     cg_i64(c, (int64_t)n),
		                     key,
		                     cg_i32(c, 0),
		                     LLVMConstPointerNull(c->t_ptr)};
		cg_call(c, "lns_encode_tensor", c->t_i32, a, 8);
	}
	LLVMBuildStore(c->b, k, st);
}

static int init_value(CgCtx *c, const IrValue *v)
{
	int lns = v->type->dt == IR_DT_LNS;
	if (!v->init)
		return v->role == IR_ROLE_STATE
		           ? 0
		           : entry_error(c, "'%s' has no initial value", v->name);
	if (v->init_type->numel != v->type->numel ||
	    v->init_type->dt != (lns ? IR_DT_F32 : v->type->dt))
		return entry_error(c, "initial data of '%s' does not match its type", v->name);
	LLVMValueRef dst = cg_value_ptr(c, v);
	if (!lns) {
		LLVMBuildMemCpy(c->b, dst, 64, init_global(c, v), 64,
		                cg_i64(c, (int64_t)ir_type_bytes(v->type)));
		return 0;
	}
	const float *w0 = v->init;
	for (int64_t i = 0; i < v->type->numel; i++)
		if (!isfinite(w0[i]))
			return entry_error(c, "initial data of '%s' has NaN/Inf", v->name);
	init_lns(c, v, dst);
	return 0;
}

/* The view of a parameter keeps the k derived from the weight's at init. */
static int init_view(CgCtx *c, const IrNode *n)
{
	const IrValue *w = n->in[0], *v = n->out[0];
	if (v->type->dt != IR_DT_LNS)
		return 0;
	if (w->type->dt != IR_DT_LNS)
		return entry_error(c, "node '%s' (WeightView): an f32 weight has no LNS view",
		                   n->name);
	if (w->def)
		return 0;
	LLVMValueRef a[3] = {cg_fmt_arg(c, w->type->fmt), cg_value_k(c, w),
	                     cg_fmt_arg(c, v->type->fmt)};
	LLVMBuildStore(c->b, cg_call(c, "lns_view_offset", c->t_i32, a, 3), cg_scale_ptr(c, v));
	return 0;
}

static LLVMValueRef emit_init(CgCtx *c, const char *name)
{
	IrGraph *g = c->g;
	LLVMTypeRef pt[2] = {c->t_ptr, c->t_i64};
	LLVMValueRef f = cg_fn_begin(c, name, LLVMFunctionType(c->t_i32, pt, 2, 0));
	size_t bytes = g->plan->state_bytes;
	LLVMBuildMemSet(c->b, c->state, LLVMConstInt(c->t_i8, 0, 0), cg_i64(c, (int64_t)bytes), 64);
	LLVMBuildStore(c->b, LLVMGetParam(f, 1), c->state);
	int rc = 0;
	for (int i = 0; i < g->values.n && !rc; i++) {
		const IrValue *v = IR_VALUE(g, i);
		if (v->loc.area == IR_AREA_STATE)
			rc = init_value(c, v);
	}
	for (int i = 0; i < g->nodes.n && !rc; i++)
		if (IR_NODE(g, i)->op == IR_OP_WEIGHT_VIEW)
			rc = init_view(c, IR_NODE(g, i));
	LLVMBuildRet(c->b, cg_i32(c, 0));
	return rc ? NULL : f;
}

/* ---- the steps ---- */

/* Inputs and labels a node reads must be bound. */
static void check_io(CgCtx *c, const IrNode *n)
{
	for (int i = 0; i < n->nin; i++) {
		const IrValue *v = n->in[i];
		if (v->loc.area == IR_AREA_IO)
			cg_check_input(c, LLVMBuildIsNull(c->b, cg_value_ptr(c, v), ""), v);
	}
}

/* Whether every label the graph has is bound (the eval step runs the loss only then). */
static LLVMValueRef labels_bound(CgCtx *c)
{
	LLVMValueRef ok = LLVMConstInt(c->t_i1, 1, 0);
	for (int i = 0; i < c->g->values.n; i++) {
		const IrValue *v = IR_VALUE(c->g, i);
		if (v->role == IR_ROLE_LABEL && v->loc.area == IR_AREA_IO)
			ok = LLVMBuildAnd(c->b, ok,
			                  LLVMBuildIsNotNull(c->b, cg_value_ptr(c, v), ""), "");
	}
	return ok;
}

static int emit_node(CgCtx *c, const IrNode *n)
{
	if (!cg_emit_table[n->op]) {
		ir_node_error(c->g, n, IR_ERR_UNSUPPORTED, "no LLVM kernel for this op");
		return -1;
	}
	check_io(c, n);
	return cg_emit_table[n->op](c, n);
}

static LLVMValueRef emit_step(CgCtx *c, const char *name, IrMode mode)
{
	IrGraph *g = c->g;
	LLVMTypeRef pt = c->t_ptr;
	LLVMValueRef f = cg_fn_begin(c, name, LLVMFunctionType(c->t_i32, &pt, 1, 0));
	c->mode = mode;
	LLVMBuildStore(c->b, cg_i32(c, -1), args_field(c, A_ERROR));
	if (mode == IR_MODE_TRAIN) {
		LLVMValueRef step = LLVMBuildAdd(c->b, cg_step(c), cg_i32(c, 1), "");
		LLVMBuildStore(c->b, step, cg_gep_c(c, c->state, 8));
	}
	int rc = 0;
	for (int i = 0; i < g->nodes.n && !rc; i++) {
		const IrNode *n = IR_NODE(g, i);
		if (n->fused)
			continue;
		if (mode == IR_MODE_TRAIN || n->phase == IR_PHASE_FWD) {
			rc = emit_node(c, n);
		} else if (n->phase == IR_PHASE_LOSS) {
			LLVMBasicBlockRef run =
			    LLVMAppendBasicBlockInContext(c->llctx, c->fn, "loss");
			LLVMBasicBlockRef skip =
			    LLVMAppendBasicBlockInContext(c->llctx, c->fn, "no_loss");
			LLVMBuildCondBr(c->b, labels_bound(c), run, skip);
			LLVMPositionBuilderAtEnd(c->b, run);
			rc = emit_node(c, n);
			LLVMBuildBr(c->b, skip);
			LLVMPositionBuilderAtEnd(c->b, skip);
		}
	}
	LLVMBuildRet(c->b, cg_i32(c, 0));
	return rc ? NULL : f;
}

/* ---- the descriptor ---- */

static LLVMValueRef str_const(CgCtx *c, const char *s, const char *name)
{
	if (!s)
		return LLVMConstPointerNull(c->t_ptr);
	return bytes_global(c, name, s, strlen(s) + 1);
}

static LLVMValueRef i8c(CgCtx *c, int v)
{
	return LLVMConstInt(c->t_i8, (unsigned long long)v, 0);
}

/* struct LnsrtTensorDesc, field for field. */
static LLVMTypeRef tdesc_type(CgCtx *c)
{
	LLVMTypeRef el[17] = {c->t_ptr, c->t_i32,
	                      c->t_i32, c->t_i32,
	                      c->t_i8,  c->t_i8,
	                      c->t_i8,  c->t_i8,
	                      c->t_i8,  LLVMArrayType2(c->t_i8, 3),
	                      c->t_i32, LLVMArrayType2(c->t_i64, LNSRT_MAX_RANK),
	                      c->t_i64, c->t_i64,
	                      c->t_i64, c->t_i32,
	                      c->t_i32};
	return LLVMStructTypeInContext(c->llctx, el, 17, 0);
}

static LLVMValueRef tdesc_const(CgCtx *c, LLVMTypeRef ty, const LnsrtTensorDesc *t, int i)
{
	char name[48];
	snprintf(name, sizeof name, "tname.%d", i);
	LLVMValueRef dims[LNSRT_MAX_RANK], pad[3] = {i8c(c, 0), i8c(c, 0), i8c(c, 0)};
	for (int d = 0; d < LNSRT_MAX_RANK; d++)
		dims[d] = cg_i64(c, t->dims[d]);
	LLVMValueRef f[17] = {str_const(c, t->name, name),
	                      cg_i32(c, t->role),
	                      cg_i32(c, t->dtype),
	                      cg_i32(c, t->area),
	                      i8c(c, t->bits),
	                      i8c(c, t->log2g),
	                      i8c(c, t->scale),
	                      i8c(c, t->round),
	                      i8c(c, t->underflow),
	                      LLVMConstArray2(c->t_i8, pad, 3),
	                      cg_i32(c, t->rank),
	                      LLVMConstArray2(c->t_i64, dims, LNSRT_MAX_RANK),
	                      cg_i64(c, t->offset),
	                      cg_i64(c, t->bytes),
	                      cg_i64(c, t->scale_off),
	                      cg_i32(c, t->io_slot),
	                      cg_i32(c, t->param)};
	return LLVMConstNamedStruct(ty, f, 17);
}

/* struct LnsrtModelDesc, field for field. */
static LLVMTypeRef mdesc_type(CgCtx *c)
{
	LLVMTypeRef i32 = c->t_i32, i64 = c->t_i64, p = c->t_ptr;
	LLVMTypeRef el[19] = {i32, i32, p,   p,   i64, i64, i32, p, i32, i32,
	                      i32, i32, i32, i32, i32, i64, p,   p, p};
	return LLVMStructTypeInContext(c->llctx, el, 19, 0);
}

static int emit_desc(CgCtx *c, const LnsrtModelDesc *d, const char *sym, LLVMValueRef *fns)
{
	LLVMTypeRef tt = tdesc_type(c), mt = mdesc_type(c);
	if (LLVMABISizeOfType(c->td, tt) != sizeof(LnsrtTensorDesc) ||
	    LLVMABISizeOfType(c->td, mt) != sizeof(LnsrtModelDesc)) {
		ir_error(c->ir, IR_ERR_UNSUPPORTED,
		         "target %s: the model descriptor layout differs "
		         "from the host's",
		         c->triple);
		return -1;
	}
	LLVMValueRef *rows = calloc((size_t)d->ntensors + 1, sizeof *rows);
	if (!rows)
		abort();
	for (int i = 0; i < d->ntensors; i++)
		rows[i] = tdesc_const(c, tt, &d->tensors[i], i);
	LLVMValueRef arr = LLVMConstArray2(tt, rows, (uint64_t)d->ntensors);
	free(rows);
	char name[256];
	snprintf(name, sizeof name, "%s.tensors", sym);
	LLVMValueRef tab = LLVMAddGlobal(c->mod, LLVMTypeOf(arr), name);
	LLVMSetInitializer(tab, arr);
	LLVMSetGlobalConstant(tab, 1);
	LLVMSetLinkage(tab, LLVMPrivateLinkage);
	LLVMValueRef f[19] = {cg_i32(c, d->abi_version),
	                      LLVMConstInt(c->t_i32, d->fingerprint, 0),
	                      str_const(c, d->name, "model.name"),
	                      str_const(c, d->recipe, "model.recipe"),
	                      cg_i64(c, d->state_bytes),
	                      cg_i64(c, d->scratch_bytes),
	                      cg_i32(c, d->ntensors),
	                      tab,
	                      cg_i32(c, d->nio),
	                      cg_i32(c, d->input),
	                      cg_i32(c, d->labels),
	                      cg_i32(c, d->logits),
	                      cg_i32(c, d->loss),
	                      cg_i32(c, d->batch),
	                      cg_i32(c, d->nclasses),
	                      cg_i64(c, d->example_size),
	                      fns[0],
	                      fns[1],
	                      fns[2]};
	LLVMValueRef g = LLVMAddGlobal(c->mod, mt, sym);
	LLVMSetInitializer(g, LLVMConstNamedStruct(mt, f, 19));
	LLVMSetGlobalConstant(g, 1);
	return 0;
}

/* Per value id: the descriptor row and IO slot (tensor names are the values' names). */
static void index_values(CgCtx *c, const LnsrtModelDesc *d)
{
	IrGraph *g = c->g;
	size_t nv = (size_t)(g->values.n ? g->values.n : 1);
	c->tindex = malloc(nv * sizeof *c->tindex);
	c->ioslot = malloc(nv * sizeof *c->ioslot);
	if (!c->tindex || !c->ioslot)
		abort();
	for (int i = 0; i < g->values.n; i++)
		c->tindex[i] = c->ioslot[i] = -1;
	for (int i = 0; i < d->ntensors; i++) {
		const IrValue *v = ir_graph_value(g, d->tensors[i].name);
		if (v) {
			c->tindex[v->id] = i;
			c->ioslot[v->id] = d->tensors[i].io_slot;
		}
	}
}

static int check_io_slots(CgCtx *c)
{
	for (int i = 0; i < c->g->values.n; i++) {
		const IrValue *v = IR_VALUE(c->g, i);
		if (v->loc.area == IR_AREA_IO && c->ioslot[i] < 0)
			return entry_error(c, "input '%s' has no IO slot in the model descriptor",
			                   v->name);
	}
	return 0;
}

/* GEMM kernels (Gemm, MatMul, the convolutions) keep their workspace past the plan's scratch
 * (cg_gemm_workspace). */
static int64_t scratch_total(CgCtx *c)
{
	size_t ws = 0, base = (c->g->plan->scratch_bytes + 63) / 64 * 64;
	for (int i = 0; i < c->g->nodes.n; i++) {
		const IrNode *n = IR_NODE(c->g, i);
		if (ir_op_has(n->op, IR_OPF_GEMM)) {
			size_t w = cg_gemm_workspace(c, n);
			ws = w > ws ? w : ws;
		}
	}
	return (int64_t)(base + ws);
}

int cg_emit_model(CgCtx *c, IrGraph *g, const char *sym, int eval_dropout)
{
	c->g = g;
	if (!g->plan)
		return entry_error(c, "%s: the graph has no memory plan", g->name);
	c->eval_dropout = eval_dropout;
	IrArena *ar = ir_arena_new();
	LnsrtModelDesc d;
	int rc = ir_model_desc(g, ar, c->recipe, &d);
	if (!rc) {
		d.scratch_bytes = scratch_total(c);
		index_values(c, &d);
		rc = check_io_slots(c);
	}
	char name[256];
	LLVMValueRef fns[3] = {NULL, NULL, NULL};
	if (!rc) {
		snprintf(name, sizeof name, "%s_init", sym);
		fns[0] = emit_init(c, name);
		snprintf(name, sizeof name, "%s_train_step", sym);
		fns[1] = fns[0] ? emit_step(c, name, IR_MODE_TRAIN) : NULL;
		snprintf(name, sizeof name, "%s_eval_step", sym);
		fns[2] = fns[1] ? emit_step(c, name, IR_MODE_EVAL) : NULL;
		rc = fns[2] ? emit_desc(c, &d, sym, fns) : -1;
	}
	free(c->tindex);
	free(c->ioslot);
	c->tindex = c->ioslot = NULL;
	ir_arena_free(ar);
	return rc;
}
