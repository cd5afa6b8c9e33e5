/* cgdiff.c: the LLVM-vs-interpreter differential harness (cgdiff.h). */
#include "cgdiff.h"
#include "cgjit.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/fe.h"
#include "passes/passes.h"
#include "testlib.h"

IrCtx *C;
CgJit *J[2];
int NJ, ncases;
uint32_t seed_state = 777;
LnsrtPool *POOL2;
static int nsym;

const LnsFormat F8 = {8, 3, LNS_SCALE_DELAYED, LNS_ROUND_NEAREST, LNS_UF_ZERO};
const LnsFormat F8C = {8, 3, LNS_SCALE_CURRENT, LNS_ROUND_NEAREST, LNS_UF_ZERO};
const LnsFormat F5 = {5, 1, LNS_SCALE_DELAYED, LNS_ROUND_STOCHASTIC, LNS_UF_ZERO};
const LnsFormat F5U = {5, 1, LNS_SCALE_CURRENT, LNS_ROUND_STOCHASTIC, LNS_UF_STOCHASTIC};
const LnsFormat F8M = {8, 3, LNS_SCALE_DELAYED, LNS_ROUND_NEAREST, LNS_UF_MIN};
const LnsFormat F12 = {12, 7, LNS_SCALE_STATIC, LNS_ROUND_NEAREST, LNS_UF_MIN};
const LnsFormat F8S = {8, 3, LNS_SCALE_STATIC, LNS_ROUND_NEAREST, LNS_UF_MIN};

/* ---- random data ---- */

double urand(void) /* [-1, 1) */
{
	seed_state = seed_state * 1664525u + 1013904223u;
	return (double)(seed_state >> 8) / 8388608.0 - 1.0;
}

float *rand_buf(int64_t n, double scale)
{
	float *x = malloc(sizeof(float) * (size_t)(n ? n : 1));
	for (int64_t i = 0; i < n; i++)
		x[i] = (float)(urand() * scale);
	return x;
}

/* ---- graph building ---- */

void begin(Case *k, const char *fmt, ...)
{
	memset(k, 0, sizeof *k);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(k->name, sizeof k->name, fmt, ap);
	va_end(ap);
	k->g = ir_graph_new(C, "t", "test.onnx");
	k->g->opset = 13;
	k->exact = 1;
}

const IrType *ty(IrDType dt, int rank, const int64_t *dims)
{
	return ir_type(C, dt, rank, dims);
}

/* A constant operand: f32 random data, stored as f32 or (fmt.bits) LNS, encoded by init. */
IrValue *cst(Case *k, const char *name, int rank, const int64_t *dims, LnsFormat fmt, double scale)
{
	const IrType *tf = ty(IR_DT_F32, rank, dims);
	float *d = rand_buf(tf->numel, scale);
	const IrType *t = fmt.bits ? ir_type_lns(C, fmt, rank, dims) : tf;
	IrValue *v = ir_value_new(k->g, name, t, IR_ROLE_CONST, d, tf);
	free(d);
	return v;
}

/* A data input fed each step (f32). */
IrValue *input(Case *k, const char *name, int rank, const int64_t *dims, double scale)
{
	const IrType *t = ty(IR_DT_F32, rank, dims);
	IrValue *v = ir_value_new(k->g, name, t, IR_ROLE_INPUT, NULL, NULL);
	k->iov[k->nio] = v;
	k->iod[k->nio++] = rand_buf(t->numel, scale);
	return v;
}

IrValue *labels(Case *k, int64_t n, int64_t classes)
{
	const IrType *t = ty(IR_DT_I64, 1, D(n));
	IrValue *v = ir_value_new(k->g, "labels", t, IR_ROLE_LABEL, NULL, NULL);
	int64_t *y = malloc(sizeof(int64_t) * (size_t)n);
	for (int64_t i = 0; i < n; i++)
		y[i] = (int64_t)((urand() + 1) / 2 * (double)classes) % classes;
	k->g->labels = v;
	k->iov[k->nio] = v;
	k->iod[k->nio++] = y;
	return v;
}

/* Builds a node; its outputs are graph outputs (live to the end of the step), output 0 in
 * format fmt (bits 0: as inferred). */
IrNode *node(Case *k, IrOp op, int nin, IrValue **in, const IrAttrs *at, LnsFormat fmt)
{
	IrNode *n = ir_build(k->g, op, ir_op_name(op), nin, in, at, NULL);
	CHECK_MSG(n != NULL, "%s: build: %s", k->name, ir_diag_text(C));
	if (!n)
		return NULL;
	for (int j = 0; j < n->nout; j++)
		n->out[j]->is_output = 1;
	if (fmt.bits)
		n->out[0]->type = ir_type_with_format(C, n->out[0]->type, fmt);
	else if (fmt.log2g == 99)
		n->out[0]->type = ir_type_f32_like(C, n->out[0]->type);
	return n;
}

const LnsFormat FNONE = {0, 0, 0, 0, 0};
const LnsFormat FF32 = {0, 99, 0, 0, 0}; /* force f32 */

/* ---- the LLVM side ---- */

const LnsrtModelDesc *compile(Case *k, int w)
{
	char sym[32];
	snprintf(sym, sizeof sym, "m%d", nsym++);
	CgCtx *c = cg_jit_ctx(J[w], sym);
	if (!c)
		return NULL;
	if (cg_emit_model(c, k->g, sym, k->eval_drop)) {
		CHECK_MSG(0, "%s: emit: %s", k->name, ir_diag_text(C));
		cg_ctx_free(c);
		return NULL;
	}
	if (cg_jit_add(J[w], c)) {
		CHECK_MSG(0, "%s: jit: %s", k->name, ir_diag_text(C));
		return NULL;
	}
	return cg_jit_lookup(J[w], sym);
}

static void *blob(size_t n, int fill)
{
	n = (n + 63) / 64 * 64;
	void *p = aligned_alloc(64, n ? n : 64);
	memset(p, fill, n ? n : 64);
	return p;
}

/* Blobs filled with garbage: init must write all the state, and no kernel may read scratch
 * it did not write. */
int llvm_start(Llvm *L, const LnsrtModelDesc *d, Case *k, LnsrtPool *pool, uint64_t seed)
{
	memset(L, 0, sizeof *L);
	L->d = d;
	L->state = blob((size_t)d->state_bytes, 0xA5);
	L->scratch = blob((size_t)d->scratch_bytes, 0x7F);
	for (int i = 0; i < k->nio; i++) {
		int t = lnsrt_desc_find(d, k->iov[i]->name);
		if (t >= 0 && d->tensors[t].io_slot >= 0)
			L->io[d->tensors[t].io_slot] = k->iod[i];
	}
	L->a = (LnsrtStepArgs){L->state, L->scratch, L->io, pool, 0.0f, -1, d};
	return d->init(&L->a, seed);
}

void llvm_free(Llvm *L)
{
	free(L->state);
	free(L->scratch);
}

static uint8_t *llvm_data(Llvm *L, const IrValue *v)
{
	return (v->loc.area == IR_AREA_STATE ? L->state : L->scratch) + v->loc.offset;
}

static int32_t llvm_k(Llvm *L, const IrGraph *g, const IrValue *v)
{
	if (v->loc.area == IR_AREA_STATE)
		return ((LnsScaleState *)(L->state + v->loc.scale_off))->k;
	int32_t k;
	memcpy(&k, L->scratch + g->plan->kslot_off + 4 * (size_t)v->id, 4);
	return k;
}

/* ---- comparing ---- */

static int close_f(float a, float b, double rtol)
{
	if (a == b || (a != a && b != b))
		return 1;
	return fabs((double)a - (double)b) <= rtol * fabs((double)b) + 1e-30;
}

/* LNS words: equal, or (inexact cases) a few off by one code with the same sign. */
static int cmp_codes(const Case *k, const IrValue *v, const void *a, const void *b,
                     const char *when)
{
	LnsFormat f = v->type->fmt;
	int64_t n = v->type->numel, bad = 0, far = 0, first = -1;
	for (int64_t i = 0; i < n; i++) {
		uint32_t x = lns_load(f, a, (size_t)i), y = lns_load(f, b, (size_t)i);
		if (x == y)
			continue;
		bad++;
		int d = (int)lns_word_mag(f, x) - (int)lns_word_mag(f, y);
		int one = (d == 1 || d == -1) && lns_word_sign(f, x) == lns_word_sign(f, y);
		far += !one;
		if (first < 0)
			first = i;
	}
	int64_t budget = k->exact ? 0 : (n / 1000 > 1 ? n / 1000 : 1);
	CHECK_MSG(far == 0 && bad <= budget,
	          "%s: %s: '%s' (%s): %lld of %lld codes differ (%lld by more than one), first at "
	          "%lld",
	          k->name, when, v->name, ir_op_name(v->def ? v->def->op : IR_OP_CONSTANT),
	          (long long)bad, (long long)n, (long long)far, (long long)first);
	return bad;
}

/* f32 values: bit-identical, within 1e-5 relative, or (models) within 1e-4 relative, or 1e-5
 * of the tensor's largest magnitude (sums of different order, with cancellation), or 1e-7
 * absolute: at these sizes that is rounding noise (the gradient of a conv bias before a
 * BatchNormalization is zero but for it). A model may also have a few elements in a
 * thousand off, as its LNS codes may: a gradient code one step off moves what depends on it
 * (the Madam second moment of that weight). */
static void cmp_f32(const Case *k, const IrValue *v, const float *a, const float *b, int64_t n,
                    const char *when)
{
	int64_t bad = -1, nbad = 0;
	double rtol = k->exact ? 0.0 : k->model ? 1e-4 : 1e-5, atol = k->model ? 1e-7 : 0.0;
	for (int64_t i = 0; i < n && k->model; i++)
		atol = fmax(atol, 1e-5 * fabs((double)b[i]));
	for (int64_t i = 0; i < n; i++)
		if (!close_f(a[i], b[i], rtol) && !(fabs((double)a[i] - (double)b[i]) <= atol)) {
			bad = bad < 0 ? i : bad;
			nbad++;
		}
	int64_t budget = k->model ? (n / 1000 > 1 ? n / 1000 : 1) : 0;
	CHECK_MSG(nbad <= budget,
	          "%s: %s: '%s' (%s)[%lld]: llvm %.9g, interp %.9g (%lld of %lld off)", k->name,
	          when, v->name, ir_op_name(v->def ? v->def->op : IR_OP_CONSTANT), (long long)bad,
	          bad >= 0 ? (double)a[bad] : 0.0, bad >= 0 ? (double)b[bad] : 0.0, (long long)nbad,
	          (long long)n);
}

/* Every value the interpreter holds after the step, and its k for LNS values. */
static void cmp_values(const Case *k, IrInterp *ip, Llvm *L, const char *when)
{
	IrGraph *g = k->g;
	for (int i = 0; i < g->values.n; i++) {
		const IrValue *v = IR_VALUE(g, i);
		if (v->loc.area != IR_AREA_STATE && v->loc.area != IR_AREA_SCRATCH)
			continue;
		if (v->def && v->def->epilogue)
			continue; /* its consumer was fused: never written */
		size_t nb = ir_type_bytes(v->type) + 4 * (size_t)v->type->numel + 16;
		float *want = malloc(nb), *got = malloc(nb);
		if (ir_interp_read(ip, v, want) == 0) {
			const void *ld = llvm_data(L, v);
			if (v->type->dt == IR_DT_LNS) {
				int bad = cmp_codes(k, v, ld, ir_interp_data(ip, v), when);
				lns_decode_tensor(v->type->fmt, llvm_k(L, g, v), ld, got,
				                  (size_t)v->type->numel);
				if (!bad)
					cmp_f32(k, v, got, want, v->type->numel, when);
			} else if (v->type->dt == IR_DT_F32) {
				cmp_f32(k, v, ld, want, v->type->numel, when);
			} else if (v->type->dt == IR_DT_F64 && k->model) {
				const double *x = ld, *y = (const double *)want;
				for (int64_t j = 0; j < v->type->numel; j++)
					got[j] = (float)x[j], want[j] = (float)y[j];
				cmp_f32(k, v, got, want, v->type->numel, when);
			} else {
				CHECK_MSG(!memcmp(ld, want, ir_type_bytes(v->type)),
				          "%s: %s: '%s' (%s) differs", k->name, when, v->name,
				          ir_dtype_name(v->type->dt));
			}
		}
		free(want);
		free(got);
	}
}

/* The state blobs: identical when exact; else value by value, scale states loosely. */
void cmp_state(const Case *k, IrInterp *ip, Llvm *L, const char *when)
{
	IrGraph *g = k->g;
	const uint8_t *is = ir_interp_state_blob(ip);
	size_t n = (size_t)L->d->state_bytes;
	if (k->exact) {
		size_t first = n;
		for (size_t i = 0; i < n && first == n; i++)
			if (is[i] != L->state[i])
				first = i;
		CHECK_MSG(first == n, "%s: %s: state blobs differ from byte %zu of %zu", k->name,
		          when, first, n);
		return;
	}
	CHECK(!memcmp(is, L->state, IR_STATE_HEADER_BYTES));
	for (int i = 0; i < g->values.n; i++) {
		const IrValue *v = IR_VALUE(g, i);
		if (v->loc.scale_off >= 0) {
			const LnsScaleState *a = (const void *)(L->state + v->loc.scale_off);
			const LnsScaleState *b = (const void *)(is + v->loc.scale_off);
			int ok = a->k == b->k && a->nhist == b->nhist && a->hpos == b->hpos;
			for (int h = 0; h < LNS_HIST; h++)
				ok &= close_f(a->hist[h], b->hist[h], 1e-5);
			CHECK_MSG(ok, "%s: %s: scale state of '%s' differs (k %d vs %d)", k->name,
			          when, v->name, a->k, b->k);
		}
		if (v->loc.area != IR_AREA_STATE)
			continue;
		if (v->type->dt == IR_DT_LNS)
			cmp_codes(k, v, L->state + v->loc.offset, is + v->loc.offset, when);
		else if (v->type->dt == IR_DT_F32)
			cmp_f32(k, v, (const float *)(L->state + v->loc.offset),
			        (const float *)(is + v->loc.offset), v->type->numel, when);
	}
}

/* Two LLVM runs (1 and 2 threads) must agree bit for bit: state and every scratch value. */
static void cmp_llvm(const Case *k, Llvm *A, Llvm *B, const char *when)
{
	CHECK_MSG(!memcmp(A->state, B->state, (size_t)A->d->state_bytes),
	          "%s: %s: 1 and 2 threads give different states", k->name, when);
	IrGraph *g = k->g;
	for (int i = 0; i < g->values.n; i++) {
		const IrValue *v = IR_VALUE(g, i);
		if (v->loc.area == IR_AREA_SCRATCH && v->is_output)
			CHECK_MSG(!memcmp(llvm_data(A, v), llvm_data(B, v), v->loc.bytes),
			          "%s: %s: '%s' differs between 1 and 2 threads", k->name, when,
			          v->name);
	}
}

/* ---- running a case ---- */

static void bind_interp(Case *k, IrInterp *ip)
{
	for (int i = 0; i < k->nio; i++)
		ir_interp_bind(ip, k->iov[i], k->iod[i]);
}

static void run_width(Case *k, int w)
{
	const LnsrtModelDesc *d = compile(k, w);
	if (!d)
		return;
	IrInterp *ip = ir_interp_new(k->g, 42);
	CHECK_MSG(ip != NULL, "%s: interp: %s", k->name, ir_diag_text(C));
	if (ip)
		ir_interp_set_onnx_semantics(ip, k->eval_drop);
	Llvm L, L2;
	int rc = llvm_start(&L, d, k, NULL, 42);
	CHECK_MSG(rc == 0, "%s: init returned %d", k->name, rc);
	if (k->big)
		llvm_start(&L2, d, k, POOL2, 42);
	if (ip) {
		bind_interp(k, ip);
		CHECK_MSG(!memcmp(ir_interp_state_blob(ip), L.state, (size_t)d->state_bytes),
		          "%s: state blobs differ after init", k->name);
		static const char *const when[3] = {"step 1", "step 2", "eval"};
		for (int s = 0; s < 3; s++) {
			IrMode m = s < 2 ? IR_MODE_TRAIN : IR_MODE_EVAL;
			int ri = ir_interp_run(ip, m);
			CHECK_MSG(ri == 0, "%s: interp %s: %s", k->name, when[s],
			          ir_interp_error(ip));
			int rl = m == IR_MODE_TRAIN ? d->train_step(&L.a) : d->eval_step(&L.a);
			CHECK_MSG(rl == 0, "%s: llvm %s returned %d (tensor %d)", k->name, when[s],
			          rl, L.a.error_tensor);
			if (ri || rl)
				break;
			cmp_values(k, ip, &L, when[s]);
			cmp_state(k, ip, &L, when[s]);
			if (k->big) {
				rl =
				    m == IR_MODE_TRAIN ? d->train_step(&L2.a) : d->eval_step(&L2.a);
				CHECK(rl == 0);
				cmp_llvm(k, &L, &L2, when[s]);
			}
		}
	}
	if (k->big)
		llvm_free(&L2);
	llvm_free(&L);
	ir_interp_free(ip);
}

/* Plans (unless planned) and runs the case at every vector width, then frees it. */
void run(Case *k)
{
	if (!k->g->plan && pass_plan(k->g)) {
		CHECK_MSG(0, "%s: plan: %s", k->name, ir_diag_text(C));
	} else {
		for (int w = 0; w < NJ; w++)
			run_width(k, w);
	}
	ncases++;
	ir_diag_clear(C);
	for (int i = 0; i < k->nio; i++)
		free(k->iod[i]);
	ir_graph_free(k->g);
}

/* ---- elementwise ---- */

const char *fname(LnsFormat f)
{
	static char buf[4][48];
	static int at;
	char *b = buf[at++ & 3];
	if (!f.bits)
		return "f32";
	return lns_format_str_full(f, b, 48);
}

static int host_has_avx512(void)
{
	char *f = LLVMGetHostCPUFeatures();
	int yes = f && strstr(f, "+avx512f") != NULL;
	LLVMDisposeMessage(f);
	return yes;
}

int cgdiff_init(const char *name)
{
	C = ir_ctx_new();
	CgTarget t8 = {.cpu = "x86-64-v3"}, t16 = {.cpu = "x86-64-v4"};
	cg_llvm_init();
	J[NJ++] = cg_jit_new(C, &t8);
	if (host_has_avx512())
		J[NJ++] = cg_jit_new(C, &t16);
	else
		printf("%s: vector width 16 skipped: the host has no AVX-512\n", name);
	for (int i = 0; i < NJ; i++)
		CHECK_MSG(J[i] != NULL, "jit: %s", ir_diag_text(C));
	if (!J[0] || (NJ > 1 && !J[1]))
		return -1;
	POOL2 = lnsrt_pool_new(2);
	return 0;
}

void cgdiff_done(void)
{
	lnsrt_pool_free(POOL2);
	for (int i = 0; i < NJ; i++)
		cg_jit_free(J[i]);
	ir_ctx_free(C);
}

/* ---- whole training graphs ---- */

void run_trained(Case *k, IrValue *y, const char *recipe, PassLoss loss, int adam)
{
	if (!y) {
		CHECK_MSG(0, "%s: build: %s", k->name, ir_diag_text(C));
		ir_graph_free(k->g);
		return;
	}
	y->is_output = 1;
	ir_vec_push(&k->g->outputs, y);
	PassOptions o;
	pass_options_default(&o);
	o.recipe = recipe;
	o.loss = loss;
	o.optimizer = adam ? PASS_OPT_ADAM : PASS_OPT_SGD;
	if (pass_pipeline(k->g, &o)) {
		CHECK_MSG(0, "%s: pipeline: %s", k->name, ir_diag_text(C));
		ir_graph_free(k->g);
		ir_diag_clear(C);
		return;
	}
	const IrType *lt = k->g->labels->type;
	void *lab = calloc(1, ir_type_bytes(lt) + 8);
	for (int64_t i = 0; i < lt->numel; i++) {
		if (lt->dt == IR_DT_I64)
			((int64_t *)lab)[i] = i % y->type->dims[y->type->rank - 1];
		else
			((float *)lab)[i] = (float)urand();
	}
	k->iov[k->nio] = k->g->labels;
	k->iod[k->nio++] = lab;
	run(k);
}

/* A model through the whole pipeline. threads: also run on 2 threads (bit-identical);
 * unfused: drop the fusion marks (every node's own kernel, as `lnsc grad` runs). */
void model_case(const char *path, const char *recipe, int64_t batch, int threads, int unfused)
{
	Case k;
	begin(&k, "model %s %s%s", path, recipe, unfused ? " unfused" : "");
	k.exact = 0;
	k.model = 1;
	k.big = threads;
	ir_graph_free(k.g);
	FeOptions fo = {.batch = batch};
	k.g = fe_onnx_import(C, path, &fo);
	if (!k.g) {
		CHECK_MSG(0, "%s: import: %s", k.name, ir_diag_text(C));
		ir_diag_clear(C);
		return;
	}
	PassOptions o;
	pass_options_default(&o);
	o.recipe = recipe;
	if (pass_pipeline(k.g, &o)) {
		CHECK_MSG(0, "%s: pipeline: %s", k.name, ir_diag_text(C));
		ir_graph_free(k.g);
		ir_diag_clear(C);
		return;
	}
	for (int i = 0; i < k.g->inputs.n; i++) {
		IrValue *v = k.g->inputs.v[i];
		k.iov[k.nio] = v;
		k.iod[k.nio++] = rand_buf(v->type->numel, 1.0);
	}
	for (int i = 0; unfused && i < k.g->nodes.n; i++) {
		IR_NODE(k.g, i)->epilogue = NULL;
		IR_NODE(k.g, i)->fused = 0;
	}
	const IrType *lt = k.g->labels->type;
	void *lab = calloc(1, ir_type_bytes(lt) + 8);
	IrValue *out = k.g->outputs.v[0];
	for (int64_t i = 0; i < lt->numel; i++) {
		if (lt->dt == IR_DT_I64)
			((int64_t *)lab)[i] = (i * 7) % out->type->dims[out->type->rank - 1];
		else
			((float *)lab)[i] = (float)urand();
	}
	k.iov[k.nio] = k.g->labels;
	k.iod[k.nio++] = lab;
	run(&k);
}

/* ---- one model compiled by its own JIT ---- */

static void *zalloc(size_t n)
{
	size_t m = (n + 63) / 64 * 64;
	void *p = aligned_alloc(64, m ? m : 64);
	memset(p, 0, m ? m : 64);
	return p;
}

static int jit_blobs(Jit *m, uint64_t seed)
{
	m->state = zalloc((size_t)m->d->state_bytes);
	m->scratch = zalloc((size_t)m->d->scratch_bytes);
	m->a = (LnsrtStepArgs){
	    .state = m->state, .scratch = m->scratch, .io = m->io, .error_tensor = -1};
	return m->d->init(&m->a, seed);
}

/* A second instance of src's model (own state and scratch). */
int jit_share(Jit *m, const Jit *src, uint64_t seed)
{
	memset(m, 0, sizeof *m);
	m->j = src->j;
	m->d = src->d;
	m->g = src->g;
	return jit_blobs(m, seed);
}

int jit_open(Jit *m, IrCtx *ctx, IrGraph *g, const char *cpu, uint64_t seed)
{
	memset(m, 0, sizeof *m);
	m->g = g;
	m->owner = 1;
	CgTarget t = {.cpu = cpu};
	m->j = cg_jit_new(ctx, &t);
	CgCtx *c = m->j ? cg_jit_ctx(m->j, "m") : NULL;
	if (!c || cg_emit_model(c, g, "m", 0)) {
		fprintf(stderr, "%s\n", ir_diag_text(ctx));
		if (c)
			cg_ctx_free(c);
		return -1;
	}
	if (cg_jit_add(m->j, c) || !(m->d = cg_jit_lookup(m->j, "m"))) {
		fprintf(stderr, "%s\n", ir_diag_text(ctx));
		return -1;
	}
	return jit_blobs(m, seed);
}

void jit_close(Jit *m)
{
	free(m->state);
	free(m->scratch);
	if (m->pool)
		lnsrt_pool_free(m->pool);
	if (m->owner)
		cg_jit_free(m->j);
}

void jit_threads(Jit *m, int n)
{
	if (m->pool)
		lnsrt_pool_free(m->pool);
	m->pool = n > 1 ? lnsrt_pool_new(n) : NULL;
	m->a.pool = m->pool;
}

int jit_step(Jit *m, IrMode mode)
{
	return mode == IR_MODE_TRAIN ? m->d->train_step(&m->a) : m->d->eval_step(&m->a);
}

void *jit_data(Jit *m, const IrValue *v)
{
	return (v->loc.area == IR_AREA_STATE ? m->state : m->scratch) + v->loc.offset;
}

int32_t jit_k(Jit *m, const IrValue *v)
{
	int32_t k;
	if (v->loc.area == IR_AREA_STATE)
		memcpy(&k, m->state + v->loc.scale_off, 4);
	else
		memcpy(&k, m->scratch + m->g->plan->kslot_off + 4 * (size_t)v->id, 4);
	return k;
}

double rng_unit(Rng *r)
{
	r->s = r->s * 6364136223846793005ull + 1442695040888963407ull;
	return (double)(r->s >> 11) * (1.0 / 9007199254740992.0);
}

int rng_int(Rng *r, int lo, int hi)
{
	return lo + (int)(rng_unit(r) * (hi - lo + 1));
}

float *rng_data(Rng *r, int64_t n, float scale)
{
	float *x = malloc(sizeof(float) * (size_t)(n ? n : 1));
	for (int64_t i = 0; i < n; i++)
		x[i] = (float)((rng_unit(r) * 2.0 - 1.0) * scale);
	return x;
}

void check_bound(const char *what, const float *y, const double *ref, const double *bound,
                 int64_t n)
{
	int64_t bad = 0, first = -1;
	for (int64_t i = 0; i < n; i++)
		if (!(fabs(y[i] - ref[i]) <= bound[i])) {
			bad++;
			first = first < 0 ? i : first;
		}
	CHECK_MSG(bad == 0,
	          "%s: %lld of %lld outside the fp32 bound (first %lld: %.9g, want %.9g +- %g)",
	          what, (long long)bad, (long long)n, (long long)first, first >= 0 ? y[first] : 0.0,
	          first >= 0 ? ref[first] : 0.0, first >= 0 ? bound[first] : 0.0);
}

int host_cpus(const char **cpus, int baseline, const char *prog)
{
	int n = 0;
	IrCtx *probe = ir_ctx_new();
	CgTarget t = {0};
	CgCtx *c = cg_ctx_new(probe, &t, "probe", NULL);
	int vw = c ? c->vw : 0, x86 = c && c->is_x86;
	if (c)
		cg_ctx_free(c);
	ir_ctx_free(probe);
	if (x86 && vw == 16)
		cpus[n++] = "x86-64-v4";
	if (x86 && vw >= 8)
		cpus[n++] = "x86-64-v3";
	if (x86 && baseline)
		cpus[n++] = "x86-64";
	if (!n)
		cpus[n++] = NULL;
	if (vw != 16)
		printf("%s: no AVX-512 on this host: vector width 16 not tested\n", prog);
	return n;
}

const IrType *with_fmt(IrCtx *ctx, const IrType *t, const char *fmt)
{
	LnsFormat f;
	if (!fmt)
		return t;
	CHECK(lns_format_parse(fmt, &f) == 0);
	return ir_type_with_format(ctx, t, f);
}

void make_output(IrGraph *g, IrValue *v)
{
	v->is_output = 1;
	ir_vec_push(&g->outputs, v);
}

void check_same(const char *what, Jit *a, Jit *b, const IrValue *v)
{
	CHECK_MSG(a->d->state_bytes == b->d->state_bytes &&
	              !memcmp(a->state + 16, b->state + 16, (size_t)a->d->state_bytes - 16),
	          "%s: state blobs differ", what);
	size_t bytes = ir_type_bytes(v->type);
	CHECK_MSG(!memcmp(jit_data(a, v), jit_data(b, v), bytes), "%s: '%s' differs", what,
	          v->name);
	if (v->type->dt == IR_DT_LNS)
		CHECK_MSG(jit_k(a, v) == jit_k(b, v), "%s: k of '%s' differs", what, v->name);
}
