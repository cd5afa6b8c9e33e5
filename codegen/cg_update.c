/* cg_update.c: the optimizer updates as vectorised kernels: Madam on LNS weight codes, SGD
 * (momentum, weight decay) and Adam on f32 or LNS weights; and Assign, the copy of a
 * BatchNormalization's new running statistics into the state.
 *
 * Each is one elementwise pass over the parameter, its gradient (decoded when LNS) and its
 * optimizer state, in tasks split by size. The fp32 arithmetic is the interpreter's, operation
 * for operation and in its order (no contraction), so updates match it bit for bit; the
 * per-step scalars (Adam's bias corrections in double with libm's pow, Madam's 1 - beta2^t)
 * are computed once per task. Madam itself is cg_lns_madam. An f32 parameter is updated in
 * place and checked for NaN/Inf like an output; an LNS parameter of SGD or Adam is decoded,
 * updated, checked and re-encoded with nearest rounding and its fixed k (the interpreter
 * checks the whole tensor before writing any word; here a task writes its words first, so a
 * failing step may leave some of them updated). The learning rate of the model's main
 * optimizer (Madam if any, else every update) can be overridden per step (LnsrtStepArgs.lr).
 * A weight-gradient GEMM may do the Madam update in its epilogue (IrNode.epilogue): that node
 * is then marked fused and never reaches this file.
 */
#include <string.h>

#include "codegen/cg.h"

typedef struct Upd Upd;
typedef void (*UpdFn)(CgCtx *c, Upd *u, LLVMValueRef e, int L);

struct Upd {
	const IrNode *n;
	const IrAttrOpt *o;
	CgTask task;
	CgSrc g;
	LLVMValueRef w, s1, s2;    /* weight base, state bases */
	LLVMValueRef kw, key, lr;  /* LNS weight offset; RNG key; learning rate (f32) */
	LLVMValueRef t, step, bc2; /* step (i32); Adam's step size and sqrt(1 - b2^t) (f32) */
};

static int is_main(const IrGraph *g, const IrNode *n)
{
	for (int i = 0; i < g->nodes.n; i++)
		if (IR_NODE(g, i)->op == IR_OP_MADAM)
			return n->op == IR_OP_MADAM;
	return 1;
}

static LLVMTypeRef vf(CgCtx *c, int L)
{
	return LLVMVectorType(c->t_f32, (unsigned)L);
}

static LLVMValueRef vc(CgCtx *c, float f, int L)
{
	return cg_vf32(c, f, L);
}

static LLVMValueRef ldv(CgCtx *c, LLVMValueRef base, LLVMValueRef e, int L)
{
	LLVMValueRef p = cg_gep(c, base, LLVMBuildMul(c->b, e, cg_i64(c, 4), ""));
	LLVMValueRef x = LLVMBuildLoad2(c->b, vf(c, L), p, "");
	LLVMSetAlignment(x, 4);
	return x;
}

static void stv(CgCtx *c, LLVMValueRef base, LLVMValueRef e, LLVMValueRef x)
{
	LLVMValueRef p = cg_gep(c, base, LLVMBuildMul(c->b, e, cg_i64(c, 4), ""));
	LLVMSetAlignment(LLVMBuildStore(c->b, x, p), 4);
}

static LLVMValueRef lane_idx(CgCtx *c, LLVMValueRef e, int L)
{
	return LLVMBuildAdd(c->b, cg_splat(c, LLVMBuildTrunc(c->b, e, c->t_i32, ""), L),
	                    cg_iota(c, L), "");
}

/* The weight as f32: in place, or decoded with its fixed k. */
static LLVMValueRef w_load(CgCtx *c, Upd *u, LLVMValueRef e, int L)
{
	const IrType *t = u->n->in[0]->type;
	if (t->dt != IR_DT_LNS)
		return ldv(c, u->w, e, L);
	return cg_lns_decode(c, t->fmt, u->kw, cg_lns_load(c, t->fmt, u->w, e, L));
}

/* The updated weight: checked, then stored, or encoded (nearest, its k; LNS.md 3). */
static void w_store(CgCtx *c, Upd *u, LLVMValueRef e, LLVMValueRef x)
{
	const IrType *t = u->n->in[0]->type;
	cg_task_track(c, &u->task, x);
	if (t->dt != IR_DT_LNS) {
		stv(c, u->w, e, x);
		return;
	}
	LnsFormat f = t->fmt;
	f.round = LNS_ROUND_NEAREST;
	f.scale = LNS_SCALE_STATIC;
	LLVMValueRef rnd = NULL;
	if (f.underflow == LNS_UF_STOCHASTIC)
		rnd = cg_lns_rng_bits(c, u->key, lane_idx(c, e, cg_lanes(x)));
	cg_lns_store(c, f, u->w, e, cg_lns_encode(c, f, u->kw, x, rnd, NULL, NULL));
}

/* Runs fn over the task's elements: vectors, then a one-lane tail. */
static void upd_loops(CgCtx *c, Upd *u, UpdFn fn)
{
	CgTask *t = &u->task;
	LLVMValueRef cnt = LLVMBuildSub(c->b, t->hi, t->lo, "");
	LLVMValueRef vend = LLVMBuildAdd(
	    c->b, t->lo, LLVMBuildAnd(c->b, cnt, cg_i64(c, ~(int64_t)(c->vw - 1)), ""), "");
	CgLoop L;
	LLVMValueRef e = cg_loop_begin(c, &L, t->lo, vend, c->vw, "e");
	fn(c, u, e, c->vw);
	cg_loop_end(c, &L);
	e = cg_loop_begin(c, &L, vend, t->hi, 1, "e1");
	fn(c, u, e, 1);
	cg_loop_end(c, &L);
}

/* Opens the task and the operands every update has. */
static void upd_begin(CgCtx *c, Upd *u, const IrNode *n, const char *what)
{
	memset(u, 0, sizeof *u);
	u->n = n;
	u->o = &n->attr.opt;
	char name[64];
	cg_task_begin(c, &u->task, cg_task_name(c, n, what, name, sizeof name),
	              n->in[0]->type->numel, 1, 64);
	u->w = cg_value_ptr(c, n->in[0]);
	cg_src_open(c, &u->g, n->in[1]);
	u->s1 = cg_value_ptr(c, n->in[2]);
	u->s2 = n->nin > 3 ? cg_value_ptr(c, n->in[3]) : NULL;
	u->lr = cg_lr(c, u->o->lr, is_main(c->g, n));
	u->t = cg_step(c);
	if (n->in[0]->type->dt == IR_DT_LNS) {
		u->kw = cg_value_k(c, n->in[0]);
		u->key = cg_lns_rng_key(c, n->in[0]);
	}
}

/* Runs the tasks; an f32 parameter's new values are checked as an output's are. */
static int upd_end(CgCtx *c, Upd *u)
{
	cg_task_end(c, &u->task);
	if (u->n->op != IR_OP_MADAM) {
		LLVMValueRef amax = cg_tasks_amax(c, &u->task);
		cg_check_error(c, LLVMBuildICmp(c->b, LLVMIntUGE, amax, cg_i32(c, 0x7f800000), ""),
		               u->n->in[0]);
	}
	return 0;
}

/* ---- Madam (LNS.md 5) ---- */

static void madam_at(CgCtx *c, Upd *u, LLVMValueRef e, int L)
{
	LnsFormat fw = u->n->in[0]->type->fmt;
	LLVMValueRef w = cg_lns_load(c, fw, u->w, e, L);
	LLVMValueRef gw = cg_src_load(c, &u->g, e, L), v = ldv(c, u->s1, e, L);
	LLVMValueRef nw =
	    cg_lns_madam(c, fw, u->o, u->lr, u->t, w, gw, &v, u->key, lane_idx(c, e, L));
	stv(c, u->s1, e, v);
	cg_lns_store(c, fw, u->w, e, nw);
}

int cg_emit_madam(CgCtx *c, const IrNode *n)
{
	if (n->in[0]->type->dt != IR_DT_LNS) {
		ir_node_error(c->g, n, IR_ERR_UNSUPPORTED, "Madam updates LNS weights; '%s' is %s",
		              n->in[0]->name, ir_dtype_name(n->in[0]->type->dt));
		return -1;
	}
	Upd u;
	upd_begin(c, &u, n, "madam");
	upd_loops(c, &u, madam_at);
	return upd_end(c, &u);
}

/* ---- SGD: g += wd W; buf = momentum buf + g; W -= lr buf (torch.optim.SGD) ---- */

static void sgd_at(CgCtx *c, Upd *u, LLVMValueRef e, int L)
{
	LLVMBuilderRef b = c->b;
	const IrAttrOpt *o = u->o;
	LLVMValueRef w = w_load(c, u, e, L), d = cg_src_load(c, &u->g, e, L);
	if (o->weight_decay != 0.0f)
		d = LLVMBuildFAdd(b, d, LLVMBuildFMul(b, vc(c, o->weight_decay, L), w, ""), "");
	if (o->momentum != 0.0f) {
		LLVMValueRef buf = LLVMBuildFMul(b, vc(c, o->momentum, L), ldv(c, u->s1, e, L), "");
		d = LLVMBuildFAdd(b, buf, d, "");
		stv(c, u->s1, e, d);
	}
	LLVMValueRef lr = cg_splat(c, u->lr, L);
	w_store(c, u, e, LLVMBuildFSub(b, w, LLVMBuildFMul(b, lr, d, ""), ""));
}

int cg_emit_sgd(CgCtx *c, const IrNode *n)
{
	Upd u;
	upd_begin(c, &u, n, "sgd");
	upd_loops(c, &u, sgd_at);
	return upd_end(c, &u);
}

/* ---- Adam (torch.optim.Adam, the bias corrections in double as PyTorch's host code) ---- */

static void adam_scalars(CgCtx *c, Upd *u)
{
	LLVMBuilderRef b = c->b;
	LLVMValueRef t = LLVMBuildUIToFP(b, u->t, c->t_f64, "t");
	LLVMValueRef one = LLVMConstReal(c->t_f64, 1.0);
	LLVMValueRef p1[2] = {LLVMConstReal(c->t_f64, (double)u->o->beta1), t};
	LLVMValueRef p2[2] = {LLVMConstReal(c->t_f64, (double)u->o->beta2), t};
	LLVMValueRef c1 = LLVMBuildFSub(b, one, cg_intrinsic(c, "llvm.pow", c->t_f64, p1, 2), "");
	LLVMValueRef c2 = LLVMBuildFSub(b, one, cg_intrinsic(c, "llvm.pow", c->t_f64, p2, 2), "");
	LLVMValueRef lr = LLVMBuildFPExt(b, u->lr, c->t_f64, "");
	u->step = LLVMBuildFPTrunc(b, LLVMBuildFDiv(b, lr, c1, ""), c->t_f32, "step");
	u->bc2 =
	    LLVMBuildFPTrunc(b, cg_intrinsic(c, "llvm.sqrt", c->t_f64, &c2, 1), c->t_f32, "bc2");
}

static void adam_at(CgCtx *c, Upd *u, LLVMValueRef e, int L)
{
	LLVMBuilderRef b = c->b;
	const IrAttrOpt *o = u->o;
	LLVMValueRef w = w_load(c, u, e, L), d = cg_src_load(c, &u->g, e, L);
	if (o->weight_decay != 0.0f)
		d = LLVMBuildFAdd(b, d, LLVMBuildFMul(b, vc(c, o->weight_decay, L), w, ""), "");
	LLVMValueRef m =
	    LLVMBuildFAdd(b, LLVMBuildFMul(b, vc(c, o->beta1, L), ldv(c, u->s1, e, L), ""),
	                  LLVMBuildFMul(b, vc(c, 1.0f - o->beta1, L), d, ""), "");
	LLVMValueRef g2 =
	    LLVMBuildFMul(b, LLVMBuildFMul(b, vc(c, 1.0f - o->beta2, L), d, ""), d, "");
	LLVMValueRef v =
	    LLVMBuildFAdd(b, LLVMBuildFMul(b, vc(c, o->beta2, L), ldv(c, u->s2, e, L), ""), g2, "");
	stv(c, u->s1, e, m);
	stv(c, u->s2, e, v);
	LLVMValueRef sq = cg_intrinsic(c, "llvm.sqrt", vf(c, L), &v, 1);
	LLVMValueRef den = LLVMBuildFAdd(b, LLVMBuildFDiv(b, sq, cg_splat(c, u->bc2, L), ""),
	                                 vc(c, o->eps, L), "");
	LLVMValueRef step =
	    LLVMBuildFMul(b, cg_splat(c, u->step, L), LLVMBuildFDiv(b, m, den, ""), "");
	w_store(c, u, e, LLVMBuildFSub(b, w, step, ""));
}

int cg_emit_adam(CgCtx *c, const IrNode *n)
{
	Upd u;
	upd_begin(c, &u, n, "adam");
	adam_scalars(c, &u);
	upd_loops(c, &u, adam_at);
	return upd_end(c, &u);
}

/* ---- Assign: a running statistic S = X (X decoded when LNS) ---- */

static void assign_at(CgCtx *c, Upd *u, LLVMValueRef e, int L)
{
	stv(c, u->w, e, cg_src_load(c, &u->g, e, L));
}

int cg_emit_assign(CgCtx *c, const IrNode *n)
{
	if (n->in[0]->type->dt != IR_DT_F32) {
		ir_node_error(c->g, n, IR_ERR_UNSUPPORTED, "'%s' is %s; running statistics are f32",
		              n->in[0]->name, ir_dtype_name(n->in[0]->type->dt));
		return -1;
	}
	Upd u;
	memset(&u, 0, sizeof u);
	u.n = n;
	char name[64];
	cg_task_begin(c, &u.task, cg_task_name(c, n, "assign", name, sizeof name),
	              n->in[1]->type->numel, 1, 64);
	u.w = cg_value_ptr(c, n->in[0]);
	cg_src_open(c, &u.g, n->in[1]);
	upd_loops(c, &u, assign_at);
	cg_task_end(c, &u.task);
	return 0;
}
