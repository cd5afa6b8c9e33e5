/* test_onnx_import.c: the ONNX frontend: models built here with protobuf-c, imported, checked.
 *
 * Each case builds a small ModelProto in C (helpers below keep that to a few lines), writes
 * it to a temporary folder and imports it: valid models are checked node by node (ops,
 * attributes per opset, roles, names, initial data); malformed ones must fail with the right
 * status and a message naming the file, node or tensor, and never crash (every prefix of a
 * valid file is imported, too). Tensor files are round-tripped for every dtype.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend/fe.h"
#include "onnx/onnx.pb-c.h"
#include "testlib.h"

enum {
	F32 = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
	I64 = ONNX__TENSOR_PROTO__DATA_TYPE__INT64,
	I32 = ONNX__TENSOR_PROTO__DATA_TYPE__INT32,
	BOOL = ONNX__TENSOR_PROTO__DATA_TYPE__BOOL,
};

static char tmpdir[256];

/* ---- model builder ---- */

typedef struct Model {
	IrArena *a;
	Onnx__ModelProto m;
	Onnx__GraphProto g;
	Onnx__OperatorSetIdProto opset;
} Model;

#define PUSH(a, arr, n, x)                                                                         \
	do {                                                                                       \
		void **na_ = ir_arena_alloc(a, sizeof(void *) * ((n) + 1));                        \
		if (n)                                                                             \
			memcpy(na_, arr, sizeof(void *) * (n));                                    \
		na_[n] = (x);                                                                      \
		arr = (void *)na_;                                                                 \
		(n)++;                                                                             \
	} while (0)

static char *sdup(Model *m, const char *s)
{
	return ir_arena_strdup(m->a, s);
}

static Model *model(int opset)
{
	Model *m = calloc(1, sizeof *m);
	m->a = ir_arena_new();
	Onnx__ModelProto mi = ONNX__MODEL_PROTO__INIT;
	Onnx__GraphProto gi = ONNX__GRAPH_PROTO__INIT;
	Onnx__OperatorSetIdProto oi = ONNX__OPERATOR_SET_ID_PROTO__INIT;
	m->m = mi;
	m->g = gi;
	m->opset = oi;
	m->m.has_ir_version = 1;
	m->m.ir_version = 8;
	m->m.graph = &m->g;
	m->g.name = sdup(m, "test");
	if (opset > 0) {
		m->opset.domain = sdup(m, "");
		m->opset.has_version = 1;
		m->opset.version = opset;
		PUSH(m->a, m->m.opset_import, m->m.n_opset_import, &m->opset);
	}
	return m;
}

static void model_free(Model *m)
{
	ir_arena_free(m->a);
	free(m);
}

/* A tensor ValueInfo; rank -1: no shape; a dim -1: dim_param "N". */
static Onnx__ValueInfoProto *vinfo(Model *m, const char *name, int elem, int rank,
                                   const int64_t *dims)
{
	Onnx__ValueInfoProto *v = ir_arena_alloc(m->a, sizeof *v);
	Onnx__ValueInfoProto vi = ONNX__VALUE_INFO_PROTO__INIT;
	*v = vi;
	v->name = sdup(m, name);
	Onnx__TypeProto *tp = ir_arena_alloc(m->a, sizeof *tp);
	Onnx__TypeProto tpi = ONNX__TYPE_PROTO__INIT;
	*tp = tpi;
	Onnx__TypeProto__Tensor *tt = ir_arena_alloc(m->a, sizeof *tt);
	Onnx__TypeProto__Tensor tti = ONNX__TYPE_PROTO__TENSOR__INIT;
	*tt = tti;
	tt->has_elem_type = 1;
	tt->elem_type = elem;
	tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	tp->tensor_type = tt;
	v->type = tp;
	if (rank < 0)
		return v;
	Onnx__TensorShapeProto *sh = ir_arena_alloc(m->a, sizeof *sh);
	Onnx__TensorShapeProto shi = ONNX__TENSOR_SHAPE_PROTO__INIT;
	*sh = shi;
	for (int i = 0; i < rank; i++) {
		Onnx__TensorShapeProto__Dimension *d = ir_arena_alloc(m->a, sizeof *d);
		Onnx__TensorShapeProto__Dimension di = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
		*d = di;
		if (dims[i] == -1) {
			d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
			d->dim_param = sdup(m, "N");
		} else {
			d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
			d->dim_value = dims[i];
		}
		PUSH(m->a, sh->dim, sh->n_dim, d);
	}
	tt->shape = sh;
	return v;
}

static void input(Model *m, const char *name, int elem, int rank, const int64_t *dims)
{
	PUSH(m->a, m->g.input, m->g.n_input, vinfo(m, name, elem, rank, dims));
}

static void output(Model *m, const char *name, int elem, int rank, const int64_t *dims)
{
	PUSH(m->a, m->g.output, m->g.n_output, vinfo(m, name, elem, rank, dims));
}

/* A tensor with raw_data (raw may be NULL: no data at all). */
static Onnx__TensorProto *tensor(Model *m, const char *name, int dt, int rank, const int64_t *dims,
                                 const void *raw, size_t bytes)
{
	Onnx__TensorProto *t = ir_arena_alloc(m->a, sizeof *t);
	Onnx__TensorProto ti = ONNX__TENSOR_PROTO__INIT;
	*t = ti;
	t->name = sdup(m, name);
	t->has_data_type = 1;
	t->data_type = dt;
	t->n_dims = (size_t)rank;
	t->dims = ir_arena_alloc(m->a, sizeof(int64_t) * (size_t)(rank + 1));
	if (rank > 0)
		memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
	if (raw) {
		t->has_raw_data = 1;
		t->raw_data.len = bytes;
		t->raw_data.data = ir_arena_alloc(m->a, bytes + 1);
		memcpy(t->raw_data.data, raw, bytes);
	}
	return t;
}

static Onnx__TensorProto *init(Model *m, const char *name, int dt, int rank, const int64_t *dims,
                               const void *raw, size_t bytes)
{
	Onnx__TensorProto *t = tensor(m, name, dt, rank, dims, raw, bytes);
	PUSH(m->a, m->g.initializer, m->g.n_initializer, t);
	return t;
}

static Onnx__TensorProto *init_f(Model *m, const char *name, int rank, const int64_t *dims,
                                 const float *v)
{
	int64_t n = 1;
	for (int i = 0; i < rank; i++)
		n *= dims[i];
	return init(m, name, F32, rank, dims, v, (size_t)n * sizeof(float));
}

static Onnx__TensorProto *init_i64(Model *m, const char *name, int n, const int64_t *v)
{
	int64_t d = n;
	return init(m, name, I64, 1, &d, v, (size_t)n * sizeof(int64_t));
}

/* Splits "a,b,,c" into strings (empty entries kept). */
static void split(Model *m, const char *s, char ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!*s)
		return;
	for (;;) {
		const char *e = strchr(s, ',');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		char *w = ir_arena_alloc(m->a, len + 1);
		memcpy(w, s, len);
		PUSH(m->a, *out, *n, w);
		if (!e)
			break;
		s = e + 1;
	}
}

static Onnx__NodeProto *node(Model *m, const char *op, const char *name, const char *ins,
                             const char *outs)
{
	Onnx__NodeProto *n = ir_arena_alloc(m->a, sizeof *n);
	Onnx__NodeProto ni = ONNX__NODE_PROTO__INIT;
	*n = ni;
	n->op_type = sdup(m, op);
	n->name = sdup(m, name);
	split(m, ins, &n->input, &n->n_input);
	split(m, outs, &n->output, &n->n_output);
	PUSH(m->a, m->g.node, m->g.n_node, n);
	return n;
}

static Onnx__AttributeProto *attr(Model *m, Onnx__NodeProto *n, const char *name, int type)
{
	Onnx__AttributeProto *a = ir_arena_alloc(m->a, sizeof *a);
	Onnx__AttributeProto ai = ONNX__ATTRIBUTE_PROTO__INIT;
	*a = ai;
	a->name = sdup(m, name);
	a->has_type = 1;
	a->type = type;
	PUSH(m->a, n->attribute, n->n_attribute, a);
	return a;
}

static void attr_i(Model *m, Onnx__NodeProto *n, const char *name, int64_t v)
{
	Onnx__AttributeProto *a = attr(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
	a->has_i = 1;
	a->i = v;
}

static void attr_f(Model *m, Onnx__NodeProto *n, const char *name, float v)
{
	Onnx__AttributeProto *a = attr(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
	a->has_f = 1;
	a->f = v;
}

static void attr_s(Model *m, Onnx__NodeProto *n, const char *name, const char *v)
{
	Onnx__AttributeProto *a = attr(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
	a->has_s = 1;
	a->s.data = (uint8_t *)sdup(m, v);
	a->s.len = strlen(v);
}

static void attr_ints(Model *m, Onnx__NodeProto *n, const char *name, int cnt, const int64_t *v)
{
	Onnx__AttributeProto *a = attr(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
	a->n_ints = (size_t)cnt;
	a->ints = ir_arena_alloc(m->a, sizeof(int64_t) * (size_t)(cnt + 1));
	memcpy(a->ints, v, sizeof(int64_t) * (size_t)cnt);
}

static void attr_floats(Model *m, Onnx__NodeProto *n, const char *name, int cnt, const float *v)
{
	Onnx__AttributeProto *a = attr(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
	a->n_floats = (size_t)cnt;
	a->floats = ir_arena_alloc(m->a, sizeof(float) * (size_t)(cnt + 1));
	memcpy(a->floats, v, sizeof(float) * (size_t)cnt);
}

static void attr_t(Model *m, Onnx__NodeProto *n, const char *name, Onnx__TensorProto *t)
{
	attr(m, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR)->t = t;
}

static const char *path_of(const char *file)
{
	static char buf[4][512];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, file);
	return buf[k];
}

static void write_bytes(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f) {
		perror(path);
		exit(1);
	}
	if (n && fwrite(data, 1, n, f) != n)
		exit(1);
	fclose(f);
}

/* Packs the model into tmpdir/file; frees it. Returns the path. */
static const char *save(Model *m, const char *file)
{
	size_t n = onnx__model_proto__get_packed_size(&m->m);
	uint8_t *buf = malloc(n + 1);
	onnx__model_proto__pack(&m->m, buf);
	const char *p = path_of(file);
	write_bytes(p, buf, n);
	free(buf);
	model_free(m);
	return p;
}

/* ---- checking ---- */

static FeOptions batch_opts(int64_t b)
{
	FeOptions o = {b, 0, NULL};
	return o;
}

static IrGraph *import_ok(IrCtx *c, const char *path, int64_t batch, int line)
{
	FeOptions o = batch_opts(batch);
	IrGraph *g = fe_onnx_import(c, path, &o);
	CHECK_MSG(g != NULL, "line %d: import of %s failed: %s", line, path, ir_diag_text(c));
	if (g) /* the importer builds well-formed IR */
		CHECK_MSG(ir_verify(g) == 0, "line %d: %s: %s", line, path, ir_diag_text(c));
	return g;
}
#define IMPORT_OK(c, path, batch) import_ok(c, path, batch, __LINE__)

static void expect_err(const char *path, const FeOptions *o, IrStatus st, const char *s1,
                       const char *s2, int line)
{
	IrCtx *c = ir_ctx_new();
	IrGraph *g = fe_onnx_import(c, path, o);
	const char *d = ir_diag_text(c);
	CHECK_MSG(g == NULL, "line %d: import of %s should fail", line, path);
	CHECK_MSG(ir_error_status(c) == st, "line %d: status %d, want %d: %s", line,
	          (int)ir_error_status(c), (int)st, d);
	CHECK_MSG(strstr(d, path) != NULL, "line %d: message does not name the file: %s", line, d);
	CHECK_MSG(!s1 || strstr(d, s1), "line %d: message lacks '%s': %s", line, s1, d);
	CHECK_MSG(!s2 || strstr(d, s2), "line %d: message lacks '%s': %s", line, s2, d);
	if (getenv("LNSC_TEST_VERBOSE")) /* to read the messages themselves */
		printf("line %d: status %d: %s\n", line, (int)ir_error_status(c), d);
	ir_graph_free(g);
	ir_ctx_free(c);
}
#define EXPECT_ERR(path, o, st, s1, s2) expect_err(path, o, st, s1, s2, __LINE__)

static IrNode *find_op(IrGraph *g, IrOp op, int k)
{
	for (int i = 0; i < g->nodes.n; i++)
		if (IR_NODE(g, i)->op == op && k-- == 0)
			return IR_NODE(g, i);
	return NULL;
}

static int count_op(IrGraph *g, IrOp op)
{
	int n = 0;
	for (int i = 0; i < g->nodes.n; i++)
		n += IR_NODE(g, i)->op == op;
	return n;
}

static int has_shape(const IrType *t, int rank, const int64_t *dims)
{
	if (t->rank != rank)
		return 0;
	for (int i = 0; i < rank; i++)
		if (t->dims[i] != dims[i])
			return 0;
	return 1;
}

/* ---- valid models ---- */

/* Flatten -> Gemm -> Relu -> Gemm -> Softmax, dynamic batch; W1 listed as graph input. */
static void test_mlp(void)
{
	Model *m = model(13);
	float w1[12 * 4], b1[4], w2[4 * 3], b2[3];
	for (int i = 0; i < 48; i++)
		w1[i] = (float)i * 0.5f;
	for (int i = 0; i < 4; i++)
		b1[i] = (float)i;
	for (int i = 0; i < 12; i++)
		w2[i] = -(float)i;
	int64_t xd[] = {-1, 3, 4}, w1d[] = {4, 12}, b1d[] = {4}, w2d[] = {3, 4}, b2d[] = {3};
	input(m, "x", F32, 3, xd);
	input(m, "W1", F32, 2, w1d);
	init_f(m, "W1", 2, w1d, w1);
	/* b1 through float_data instead of raw_data */
	Onnx__TensorProto *tb = init(m, "b1", F32, 1, b1d, NULL, 0);
	tb->n_float_data = 4;
	tb->float_data = b1;
	init_f(m, "W2", 2, w2d, w2);
	memset(b2, 0, sizeof b2);
	init_f(m, "b2", 1, b2d, b2);
	node(m, "Flatten", "flat", "x", "f");
	Onnx__NodeProto *g1 = node(m, "Gemm", "fc1", "f,W1,b1", "h");
	attr_i(m, g1, "transB", 1);
	node(m, "Relu", "", "h", "r");
	Onnx__NodeProto *g2 = node(m, "Gemm", "fc2", "r,W2,b2", "z");
	attr_i(m, g2, "transB", 1);
	attr_f(m, g2, "alpha", 2.0f);
	node(m, "Softmax", "sm", "z", "y");
	int64_t yd[] = {-1, 3};
	output(m, "y", F32, 2, yd);
	const char *p = save(m, "mlp.onnx");

	IrCtx *c = ir_ctx_new();
	IrGraph *g = IMPORT_OK(c, p, 5);
	if (g) {
		CHECK(g->opset == 13);
		CHECK(g->nodes.n == 5);
		CHECK(g->inputs.n == 1 && !strcmp(((IrValue *)g->inputs.v[0])->name, "x"));
		CHECK(g->params.n == 4);
		IrValue *x = ir_graph_value(g, "x"), *W1 = ir_graph_value(g, "W1");
		int64_t xs[] = {5, 3, 4};
		CHECK(x && x->role == IR_ROLE_INPUT && has_shape(x->type, 3, xs));
		CHECK(W1 && W1->role == IR_ROLE_PARAM && W1->init && W1->type->dt == IR_DT_F32);
		CHECK(W1 && W1->init && ((float *)W1->init)[47] == 23.5f);
		IrValue *bb = ir_graph_value(g, "b1");
		CHECK(bb && bb->role == IR_ROLE_PARAM && ((float *)bb->init)[3] == 3.0f);
		IrNode *n = find_op(g, IR_OP_GEMM, 1);
		CHECK(n && !strcmp(n->name, "fc2") && n->attr.gemm.trans_b == 1 &&
		      n->attr.gemm.trans_a == 0 && n->attr.gemm.alpha == 2.0f &&
		      n->attr.gemm.beta == 1.0f && n->nin == 3);
		n = find_op(g, IR_OP_RELU, 0);
		CHECK(n && !strcmp(n->name, "Relu_2") && !strcmp(n->out[0]->name, "r"));
		n = find_op(g, IR_OP_SOFTMAX, 0);
		CHECK(n && n->attr.axis.axis == 1 && n->attr.axis.legacy == 0);
		CHECK(g->outputs.n == 1);
		IrValue *y = g->outputs.n ? g->outputs.v[0] : NULL;
		int64_t ys[] = {5, 3};
		CHECK(y && !strcmp(y->name, "y") && y->is_output && has_shape(y->type, 2, ys));
		n = find_op(g, IR_OP_FLATTEN, 0);
		int64_t fs[] = {5, 12};
		CHECK(n && n->attr.axis.axis == 1 && has_shape(n->out[0]->type, 2, fs));
	}
	ir_graph_free(g);

	/* No batch: the dynamic first dim is an error naming the input. */
	FeOptions o0 = batch_opts(0);
	EXPECT_ERR(p, &o0, IR_ERR_INPUT, "input 'x'", "dynamic");
	/* A given shape may change the batch, not the rank or a declared dimension. */
	FeInputShape bad_rank = {"x", 2, {7, 12}, {NULL, NULL}};
	FeOptions ob = {0, 1, &bad_rank};
	EXPECT_ERR(p, &ob, IR_ERR_INPUT, "input 'x'", "the model declares [N,3,4]");
	FeInputShape bad_dim = {"x", 3, {7, 3, 5}, {NULL, NULL}};
	FeOptions od = {0, 1, &bad_dim};
	EXPECT_ERR(p, &od, IR_ERR_INPUT, "the tensor given is [7,3,5]", "declares");
	FeInputShape sh = {"x", 3, {7, 3, 4}, {NULL, NULL}};
	FeOptions o1 = {0, 1, &sh};
	ir_diag_clear(c);
	g = fe_onnx_import(c, p, &o1);
	CHECK_MSG(g != NULL, "%s", ir_diag_text(c));
	if (g) {
		int64_t ys[] = {7, 3};
		CHECK(has_shape(((IrValue *)g->outputs.v[0])->type, 2, ys));
	}
	ir_graph_free(g);
	ir_ctx_free(c);
}

/* The example model shipped with lnsc (exported by PyTorch). */
static void test_example_mlp(void)
{
	const char *src = getenv("LNSC_SRC");
	char p[1024];
	snprintf(p, sizeof p, "%s/examples/mlp/mlp.onnx", src ? src : "..");
	IrCtx *c = ir_ctx_new();
	IrGraph *g = IMPORT_OK(c, p, 64);
	if (g) {
		CHECK(g->nodes.n == 4 && count_op(g, IR_OP_GEMM) == 2);
		CHECK(g->params.n == 4 && g->inputs.n == 1);
		int64_t os[] = {64, 10};
		CHECK(g->outputs.n == 1 && has_shape(((IrValue *)g->outputs.v[0])->type, 2, os));
	}
	ir_graph_free(g);
	ir_ctx_free(c);
}

static void test_softmax_opsets(void)
{
	for (int opset = 11; opset <= 13; opset += 2) {
		Model *m = model(opset);
		int64_t xd[] = {2, 3, 4};
		input(m, "x", F32, 3, xd);
		node(m, "Softmax", "s0", "x", "a");
		Onnx__NodeProto *n = node(m, "LogSoftmax", "s1", "a", "b");
		attr_i(m, n, "axis", -2);
		output(m, "b", F32, 3, xd);
		const char *p = save(m, "softmax.onnx");
		IrCtx *c = ir_ctx_new();
		IrGraph *g = IMPORT_OK(c, p, 0);
		if (g) {
			IrNode *s0 = find_op(g, IR_OP_SOFTMAX, 0),
			       *s1 = find_op(g, IR_OP_LOG_SOFTMAX, 0);
			CHECK(s0 && s0->attr.axis.axis == (opset < 13 ? 1 : 2));
			CHECK(s0 && s0->attr.axis.legacy == (opset < 13));
			CHECK(s1 && s1->attr.axis.axis == 1 &&
			      s1->attr.axis.legacy == (opset < 13));
		}
		ir_graph_free(g);
		ir_ctx_free(c);
	}
	Model *m = model(13);
	int64_t xd[] = {2, 3};
	input(m, "x", F32, 2, xd);
	attr_i(m, node(m, "Softmax", "sm", "x", "y"), "axis", 2);
	output(m, "y", F32, 2, xd);
	const char *p = save(m, "softmax_bad.onnx");
	EXPECT_ERR(p, NULL, IR_ERR_INPUT, "node 'sm' (Softmax)", "axis 2");
}

/* Squeeze/Unsqueeze: axes attribute before opset 13, input since. */
static void test_squeeze(void)
{
	for (int opset = 11; opset <= 13; opset += 2) {
		Model *m = model(opset);
		int64_t xd[] = {1, 3, 1, 2}, ax[] = {-2}, uax[] = {0, -1};
		input(m, "x", F32, 4, xd);
		Onnx__NodeProto *n = node(m, "Squeeze", "sq", opset < 13 ? "x" : "x,axes", "a");
		Onnx__NodeProto *u =
		    node(m, "Unsqueeze", "unsq", opset < 13 ? "a" : "a,uaxes", "b");
		node(m, "Squeeze", "sq_all", "b", "c");
		if (opset < 13) {
			attr_ints(m, n, "axes", 1, ax);
			attr_ints(m, u, "axes", 2, uax);
		} else {
			init_i64(m, "axes", 1, ax);
			init_i64(m, "uaxes", 2, uax);
		}
		output(m, "c", F32, -1, NULL);
		const char *p = save(m, "squeeze.onnx");
		IrCtx *c = ir_ctx_new();
		IrGraph *g = IMPORT_OK(c, p, 0);
		if (g) {
			IrNode *s = find_op(g, IR_OP_SQUEEZE, 0),
			       *us = find_op(g, IR_OP_UNSQUEEZE, 0);
			int64_t as[] = {1, 3, 2}, bs[] = {1, 1, 3, 2, 1}, cs[] = {3, 2};
			CHECK(s && s->attr.axes.n == 1 && s->attr.axes.axes[0] == 2 &&
			      has_shape(s->out[0]->type, 3, as));
			CHECK(us && us->attr.axes.n == 2 && us->attr.axes.axes[0] == 0 &&
			      us->attr.axes.axes[1] == 4 && has_shape(us->out[0]->type, 5, bs));
			IrNode *s2 = find_op(g, IR_OP_SQUEEZE, 1);
			CHECK(s2 && has_shape(s2->out[0]->type, 2, cs));
			/* the axes initializers are consts, not params nor inputs */
			CHECK(g->params.n == 0 && g->inputs.n == 1);
			IrValue *axv = ir_graph_value(g, "axes");
			CHECK(opset < 13 || (axv && axv->role == IR_ROLE_CONST));
		}
		ir_graph_free(g);
		ir_ctx_free(c);
	}
	/* Squeezing a dim of size 3. */
	Model *m = model(13);
	int64_t xd[] = {1, 3}, ax[] = {1};
	input(m, "x", F32, 2, xd);
	init_i64(m, "axes", 1, ax);
	node(m, "Squeeze", "sq", "x,axes", "y");
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "squeeze_bad.onnx"), NULL, IR_ERR_INPUT, "node 'sq' (Squeeze)",
	           "size 3");
	/* Duplicate unsqueeze axes. */
	m = model(11);
	int64_t dup[] = {0, -4};
	input(m, "x", F32, 2, xd);
	attr_ints(m, node(m, "Unsqueeze", "us", "x", "y"), "axes", 2, dup);
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "unsqueeze_dup.onnx"), NULL, IR_ERR_INPUT, "node 'us' (Unsqueeze)",
	           "twice");
	/* Dynamic axes input. */
	m = model(13);
	int64_t one[] = {1};
	input(m, "x", F32, 2, xd);
	input(m, "ax", I64, 1, one);
	node(m, "Unsqueeze", "us", "x,ax", "y");
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "unsqueeze_dyn.onnx"), NULL, IR_ERR_UNSUPPORTED, "node 'us'",
	           "dynamic axes");
}

static void test_reshape(void)
{
	Model *m = model(13);
	int64_t xd[] = {2, 3, 4}, s1[] = {0, -1}, s2[] = {1, 0, -1};
	input(m, "x", F32, 3, xd);
	init_i64(m, "s1", 2, s1);
	node(m, "Reshape", "r1", "x,s1", "a");
	/* the second shape comes from a Constant node */
	Onnx__NodeProto *k = node(m, "Constant", "k", "", "s2");
	int64_t three = 3;
	attr_t(m, k, "value", tensor(m, "", I64, 1, &three, s2, sizeof s2));
	node(m, "Reshape", "r2", "a,s2", "b");
	output(m, "b", F32, -1, NULL);
	const char *p = save(m, "reshape.onnx");
	IrCtx *c = ir_ctx_new();
	IrGraph *g = IMPORT_OK(c, p, 0);
	if (g) {
		IrNode *r1 = find_op(g, IR_OP_RESHAPE, 0), *r2 = find_op(g, IR_OP_RESHAPE, 1);
		int64_t as[] = {2, 12}, bs[] = {1, 12, 2};
		CHECK(r1 && r1->nin == 1 && r1->attr.shape.rank == 2 &&
		      has_shape(r1->out[0]->type, 2, as));
		CHECK(r2 && r2->attr.shape.rank == 3 && has_shape(r2->out[0]->type, 3, bs));
		IrValue *sv = ir_graph_value(g, "s2");
		CHECK(sv && sv->role == IR_ROLE_CONST && sv->init && !sv->def);
		CHECK(g->nodes.n == 2); /* the Constant is a value, not a node */
	}
	ir_graph_free(g);
	ir_ctx_free(c);

	/* allowzero=1 (opset 14): 0 is a literal zero, and the product then mismatches. */
	m = model(14);
	int64_t s3[] = {0, 24};
	input(m, "x", F32, 3, xd);
	init_i64(m, "s", 2, s3);
	attr_i(m, node(m, "Reshape", "rz", "x,s", "y"), "allowzero", 1);
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "reshape_zero.onnx"), NULL, IR_ERR_INPUT, "node 'rz' (Reshape)",
	           "reshape");
	/* product mismatch */
	m = model(13);
	int64_t s4[] = {5, -1};
	input(m, "x", F32, 3, xd);
	init_i64(m, "s", 2, s4);
	node(m, "Reshape", "rb", "x,s", "y");
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "reshape_bad.onnx"), NULL, IR_ERR_INPUT, "node 'rb' (Reshape)", NULL);
	/* dynamic shape */
	m = model(13);
	int64_t two = 2;
	input(m, "x", F32, 3, xd);
	input(m, "s", I64, 1, &two);
	node(m, "Reshape", "rd", "x,s", "y");
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "reshape_dyn.onnx"), NULL, IR_ERR_UNSUPPORTED, "node 'rd' (Reshape)",
	           "dynamic shape");
}

static void test_dropout(void)
{
	/* opset 11: ratio attribute */
	Model *m = model(11);
	int64_t xd[] = {2, 3};
	input(m, "x", F32, 2, xd);
	attr_f(m, node(m, "Dropout", "d", "x", "y"), "ratio", 0.25f);
	output(m, "y", F32, 2, xd);
	const char *p = save(m, "dropout11.onnx");
	IrCtx *c = ir_ctx_new();
	IrGraph *g = IMPORT_OK(c, p, 0);
	if (g) {
		IrNode *d = find_op(g, IR_OP_DROPOUT, 0);
		CHECK(d && d->nout == 2 && d->attr.dropout.ratio == 0.25f &&
		      !d->attr.dropout.training);
		CHECK(d && d->out[1]->type->dt == IR_DT_BOOL && !strcmp(d->out[1]->name, "d/mask"));
	}
	ir_graph_free(g);

	/* opset 13: ratio and training_mode inputs, mask named from the second output */
	m = model(13);
	float r = 0.125f;
	uint8_t t = 1;
	input(m, "x", F32, 2, xd);
	init(m, "ratio", F32, 0, NULL, &r, sizeof r);
	init(m, "train", BOOL, 0, NULL, &t, 1);
	node(m, "Dropout", "d", "x,ratio,train", "y,mask");
	output(m, "y", F32, 2, xd);
	output(m, "mask", BOOL, 2, xd);
	p = save(m, "dropout13.onnx");
	g = IMPORT_OK(c, p, 0);
	if (g) {
		IrNode *d = find_op(g, IR_OP_DROPOUT, 0);
		CHECK(d && d->nin == 1 && d->attr.dropout.ratio == 0.125f &&
		      d->attr.dropout.training);
		CHECK(d && !strcmp(d->out[1]->name, "mask") && d->out[1]->is_output);
		IrValue *rv = ir_graph_value(g, "ratio");
		CHECK(rv && rv->role == IR_ROLE_CONST); /* a float initializer, but not trainable */
		CHECK(g->params.n == 0);
	}
	ir_graph_free(g);

	/* opset 12 default: ratio 0.5, not training */
	m = model(12);
	input(m, "x", F32, 2, xd);
	node(m, "Dropout", "d", "x", "y");
	output(m, "y", F32, 2, xd);
	g = IMPORT_OK(c, save(m, "dropout12.onnx"), 0);
	if (g) {
		IrNode *d = find_op(g, IR_OP_DROPOUT, 0);
		CHECK(d && d->attr.dropout.ratio == 0.5f && !d->attr.dropout.training);
	}
	ir_graph_free(g);
	ir_ctx_free(c);

	m = model(13);
	float bad = 1.5f;
	input(m, "x", F32, 2, xd);
	init(m, "ratio", F32, 0, NULL, &bad, sizeof bad);
	node(m, "Dropout", "d", "x,ratio", "y");
	output(m, "y", F32, 2, xd);
	EXPECT_ERR(save(m, "dropout_bad.onnx"), NULL, IR_ERR_INPUT, "node 'd' (Dropout)", "ratio");
}

static void test_gemm(void)
{
	/* opset 11: C optional */
	Model *m = model(11);
	int64_t ad[] = {3, 2}, bd[] = {3, 4};
	float a[6] = {0}, b[12] = {0};
	input(m, "A", F32, 2, ad);
	init_f(m, "B", 2, bd, b);
	attr_i(m, node(m, "Gemm", "g", "A,B", "y"), "transA", 1);
	int64_t yd[] = {2, 4};
	output(m, "y", F32, 2, yd);
	IrCtx *c = ir_ctx_new();
	IrGraph *g = IMPORT_OK(c, save(m, "gemm11.onnx"), 0);
	if (g) {
		IrNode *n = find_op(g, IR_OP_GEMM, 0);
		CHECK(n && n->nin == 2 && n->attr.gemm.trans_a &&
		      has_shape(n->out[0]->type, 2, yd));
	}
	ir_graph_free(g);
	ir_ctx_free(c);
	/* opset 9: C required */
	m = model(9);
	input(m, "A", F32, 2, ad);
	init_f(m, "B", 2, bd, b);
	attr_i(m, node(m, "Gemm", "g", "A,B", "y"), "transA", 1);
	output(m, "y", F32, 2, yd);
	EXPECT_ERR(save(m, "gemm9.onnx"), NULL, IR_ERR_INPUT, "node 'g' (Gemm)", "inputs");
	/* C that does not broadcast to [M, N] */
	m = model(13);
	int64_t cd[] = {3};
	input(m, "A", F32, 2, ad);
	init_f(m, "B", 2, bd, b);
	init_f(m, "C", 1, cd, a);
	attr_i(m, node(m, "Gemm", "g", "A,B,C", "y"), "transA", 1);
	output(m, "y", F32, 2, yd);
	EXPECT_ERR(save(m, "gemm_c.onnx"), NULL, IR_ERR_INPUT, "node 'g' (Gemm)", "broadcast");
}

static void test_matmul(void)
{
	/* [3] x [2,3,4] -> [2,4];  [2,3,4] x [4] -> [2,3];  [3] x [3] -> [] */
	Model *m = model(13);
	int64_t vd[] = {3}, bd[] = {2, 3, 4}, wd[] = {4};
	input(m, "v", F32, 1, vd);
	input(m, "B", F32, 3, bd);
	input(m, "w", F32, 1, wd);
	node(m, "MatMul", "m1", "v,B", "y1");
	node(m, "MatMul", "m2", "B,w", "y2");
	node(m, "MatMul", "m3", "v,v", "y3");
	node(m, "MatMul", "m4", "B,B_T", "y4");
	int64_t perm[] = {0, 2, 1};
	attr_ints(m, node(m, "Transpose", "t", "B", "B_T"), "perm", 3, perm);
	int64_t y1[] = {2, 4}, y2[] = {2, 3}, y4[] = {2, 3, 3};
	output(m, "y1", F32, 2, y1);
	output(m, "y2", F32, 2, y2);
	output(m, "y3", F32, 0, NULL);
	output(m, "y4", F32, 3, y4);
	IrCtx *c = ir_ctx_new();
	IrGraph *g = IMPORT_OK(c, save(m, "matmul.onnx"), 0);
	if (g) {
		CHECK(count_op(g, IR_OP_MATMUL) == 4 && count_op(g, IR_OP_UNSQUEEZE) == 4);
		CHECK(count_op(g, IR_OP_SQUEEZE) == 3);
		IrValue *v3 = ir_graph_value(g, "y3");
		CHECK(v3 && v3->type->rank == 0 && v3->def && v3->def->op == IR_OP_SQUEEZE &&
		      !strcmp(v3->def->name, "m3"));
		/* Transpose came after its user in the file: the import sorted the nodes */
		IrNode *t = find_op(g, IR_OP_TRANSPOSE, 0);
		CHECK(t && t->attr.perm.n == 3 && t->attr.perm.perm[1] == 2);
		for (int i = 0; i < g->nodes.n; i++)
			for (int j = 0; j < IR_NODE(g, i)->nin; j++) {
				IrNode *d = IR_NODE(g, i)->in[j]->def;
				int k = 0;
				while (d && k < g->nodes.n && IR_NODE(g, k) != d)
					k++;
				CHECK(!d || k < i);
			}
	}
	ir_graph_free(g);
	ir_ctx_free(c);
	/* int64 operands: unsupported */
	m = model(13);
	int64_t d2[] = {2, 2};
	input(m, "a", I64, 2, d2);
	input(m, "b", I64, 2, d2);
	node(m, "MatMul", "mm", "a,b", "y");
	output(m, "y", I64, 2, d2);
	EXPECT_ERR(save(m, "matmul_i64.onnx"), NULL, IR_ERR_UNSUPPORTED, "node 'mm' (MatMul)",
	           "i64");
	m = model(13);
	input(m, "a", ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, 2, d2);
	node(m, "Add", "add", "a,a", "y");
	output(m, "y", F32, 2, d2);
	EXPECT_ERR(save(m, "add_u8.onnx"), NULL, IR_ERR_UNSUPPORTED, "node 'add' (Add)", "u8");
}

static void test_move_ops(void)
{
	Model *m = model(11);
	int64_t xd[] = {2, 3, 4}, ld[] = {2, 3, 4};
	input(m, "x", F32, 3, xd);
	input(m, "l", I64, 3, ld);
	attr_i(m, node(m, "Flatten", "f", "x", "a"), "axis", -1);
	node(m, "Transpose", "t", "x", "b");
	attr_i(m, node(m, "Concat", "cc", "x,x,x", "c"), "axis", -2);
	node(m, "Identity", "id", "l", "d");
	attr_i(m, node(m, "Concat", "ci", "l,d", "e"), "axis", 0);
	attr_f(m, node(m, "LeakyRelu", "lr", "x", "f1"), "alpha", 0.2f);
	node(m, "LeakyRelu", "lr2", "x", "f2");
	node(m, "Neg", "ng", "f2", "f3");
	node(m, "Sub", "sb", "f3,f1", "f4");
	output(m, "a", F32, -1, NULL);
	output(m, "b", F32, -1, NULL);
	output(m, "c", F32, -1, NULL);
	output(m, "e", I64, -1, NULL);
	output(m, "f4", F32, -1, NULL);
	IrCtx *c = ir_ctx_new();
	IrGraph *g = IMPORT_OK(c, save(m, "move.onnx"), 0);
	if (g) {
		int64_t as[] = {6, 4}, bs[] = {4, 3, 2}, cs[] = {2, 9, 4}, es[] = {4, 3, 4};
		IrValue *a = ir_graph_value(g, "a"), *b = ir_graph_value(g, "b");
		IrValue *cv = ir_graph_value(g, "c"), *e = ir_graph_value(g, "e");
		CHECK(a && has_shape(a->type, 2, as) && a->def->attr.axis.axis == 2);
		CHECK(b && has_shape(b->type, 3, bs) && b->def->attr.perm.perm[0] == 2);
		CHECK(cv && has_shape(cv->type, 3, cs) && cv->def->attr.axis.axis == 1);
		CHECK(e && has_shape(e->type, 3, es) && e->type->dt == IR_DT_I64);
		IrNode *l1 = find_op(g, IR_OP_LEAKY_RELU, 0), *l2 = find_op(g, IR_OP_LEAKY_RELU, 1);
		CHECK(l1 && l1->attr.alpha.alpha == 0.2f);
		CHECK(l2 && fabsf(l2->attr.alpha.alpha - 0.01f) < 1e-9f);
	}
	ir_graph_free(g);
	ir_ctx_free(c);
	/* Concat of 40 inputs; an input with no shape in the model gets one from the options */
	m = model(13);
	input(m, "x", F32, -1, NULL);
	char ins[200] = "x";
	for (int i = 1; i < 40; i++)
		strcat(ins, ",x");
	attr_i(m, node(m, "Concat", "c40", ins, "y"), "axis", 0);
	output(m, "y", F32, -1, NULL);
	const char *p = save(m, "concat40.onnx");
	c = ir_ctx_new();
	FeInputShape xs = {"x", 2, {2, 3}, {NULL, NULL}};
	FeOptions o = {0, 1, &xs};
	g = fe_onnx_import(c, p, &o);
	CHECK_MSG(g && ir_graph_value(g, "y")->type->dims[0] == 80, "%s", ir_diag_text(c));
	ir_graph_free(g);
	ir_ctx_free(c);
	EXPECT_ERR(p, NULL, IR_ERR_INPUT, "input 'x'", "no shape");
	/* negative Concat axis needs opset 11 */
	m = model(10);
	input(m, "x", F32, 3, xd);
	attr_i(m, node(m, "Concat", "cc", "x,x", "c"), "axis", -1);
	output(m, "c", F32, -1, NULL);
	EXPECT_ERR(save(m, "concat10.onnx"), NULL, IR_ERR_INPUT, "node 'cc' (Concat)", "opset 11");
	/* Concat without axis */
	m = model(13);
	input(m, "x", F32, 3, xd);
	node(m, "Concat", "cc", "x,x", "c");
	output(m, "c", F32, -1, NULL);
	EXPECT_ERR(save(m, "concat_noaxis.onnx"), NULL, IR_ERR_INPUT, "node 'cc' (Concat)", "axis");
	/* not a permutation */
	m = model(13);
	int64_t perm[] = {0, 0, 1};
	input(m, "x", F32, 3, xd);
	attr_ints(m, node(m, "Transpose", "tp", "x", "y"), "perm", 3, perm);
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "transpose_bad.onnx"), NULL, IR_ERR_INPUT, "node 'tp' (Transpose)",
	           "permutation");
}

static void test_constant(void)
{
	Model *m = model(13);
	int64_t xd[] = {2};
	float fv[] = {1.5f, -2.0f};
	int64_t iv[] = {7, 8, 9};
	input(m, "x", F32, 1, xd);
	attr_f(m, node(m, "Constant", "k1", "", "kf"), "value_float", 3.0f);
	attr_floats(m, node(m, "Constant", "k2", "", "kfs"), "value_floats", 2, fv);
	attr_i(m, node(m, "Constant", "k3", "", "ki"), "value_int", 5);
	attr_ints(m, node(m, "Constant", "k4", "", "kis"), "value_ints", 3, iv);
	attr_t(m, node(m, "Constant", "k5", "", "kt"), "value",
	       tensor(m, "", F32, 1, xd, fv, sizeof fv));
	node(m, "Add", "add", "x,kfs", "y");
	node(m, "Mul", "mul", "y,kf", "z");
	output(m, "z", F32, 1, xd);
	output(m, "kis", I64, -1, NULL);
	IrCtx *c = ir_ctx_new();
	IrGraph *g = IMPORT_OK(c, save(m, "constant.onnx"), 0);
	if (g) {
		IrValue *kf = ir_graph_value(g, "kf"), *kfs = ir_graph_value(g, "kfs");
		IrValue *ki = ir_graph_value(g, "ki"), *kis = ir_graph_value(g, "kis/const");
		IrValue *kt = ir_graph_value(g, "kt");
		CHECK(kf && kf->role == IR_ROLE_CONST && kf->type->rank == 0 &&
		      *(float *)kf->init == 3.0f);
		CHECK(kfs && kfs->type->numel == 2 && ((float *)kfs->init)[1] == -2.0f);
		CHECK(ki && ki->type->dt == IR_DT_I64 && *(int64_t *)ki->init == 5);
		CHECK(kis && kis->type->numel == 3 && ((int64_t *)kis->init)[2] == 9);
		CHECK(kt && kt->role == IR_ROLE_CONST && ((float *)kt->init)[0] == 1.5f);
		CHECK(g->params.n == 0);
		/* kis is a graph output produced by no node: an Identity gives it one; the output
		 * keeps the ONNX name, the constant is renamed */
		IrValue *o = g->outputs.n == 2 ? g->outputs.v[1] : NULL;
		CHECK(o && o->def && o->def->op == IR_OP_IDENTITY && o->def->in[0] == kis);
		CHECK(o && !strcmp(o->name, "kis") && ir_graph_value(g, "kis") == o);
		CHECK(count_op(g, IR_OP_IDENTITY) == 1 && g->nodes.n == 3);
	}
	ir_graph_free(g);
	ir_ctx_free(c);
	/* empty value_floats; an int64 initializer listed as graph input is a const */
	m = model(13);
	int64_t two = 2;
	attr_floats(m, node(m, "Constant", "k", "", "e"), "value_floats", 0, fv);
	input(m, "s", I64, 1, &two);
	init_i64(m, "s", 2, iv);
	node(m, "Identity", "id", "s", "y");
	output(m, "e", F32, -1, NULL);
	output(m, "y", I64, 1, &two);
	c = ir_ctx_new();
	g = IMPORT_OK(c, save(m, "const_empty.onnx"), 0);
	if (g) {
		IrValue *e = ir_graph_value(g, "e"), *sv = ir_graph_value(g, "s");
		CHECK(e && e->type->rank == 1 && e->type->numel == 0);
		CHECK(sv && sv->role == IR_ROLE_CONST && g->inputs.n == 0);
	}
	ir_graph_free(g);
	ir_ctx_free(c);
	/* value_float before opset 12 */
	m = model(11);
	attr_f(m, node(m, "Constant", "k", "", "y"), "value_float", 1.0f);
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "const11.onnx"), NULL, IR_ERR_INPUT, "node 'k' (Constant)", "opset 12");
	/* strings */
	m = model(13);
	attr_s(m, node(m, "Constant", "k", "", "y"), "value_string", "hi");
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "const_str.onnx"), NULL, IR_ERR_UNSUPPORTED, "node 'k' (Constant)",
	           "value_string");
	/* no value */
	m = model(13);
	node(m, "Constant", "k", "", "y");
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "const_none.onnx"), NULL, IR_ERR_INPUT, "node 'k' (Constant)", NULL);
}

static void test_cast(void)
{
	static const struct {
		int to;
		IrDType dt;
	} ok[] = {
	    {1, IR_DT_F32}, {11, IR_DT_F64}, {10, IR_DT_F16}, {3, IR_DT_I8},
	    {5, IR_DT_I16}, {6, IR_DT_I32},  {7, IR_DT_I64},  {2, IR_DT_U8},
	    {4, IR_DT_U16}, {12, IR_DT_U32}, {13, IR_DT_U64}, {9, IR_DT_BOOL},
	};
	int64_t xd[] = {2, 2};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		Model *m = model(13);
		input(m, "x", I32, 2, xd);
		attr_i(m, node(m, "Cast", "c", "x", "y"), "to", ok[i].to);
		output(m, "y", ok[i].to, 2, xd);
		IrCtx *c = ir_ctx_new();
		IrGraph *g = IMPORT_OK(c, save(m, "cast.onnx"), 0);
		if (g) {
			IrNode *n = find_op(g, IR_OP_CAST, 0);
			CHECK_MSG(n && n->attr.cast.to == ok[i].dt &&
			              n->out[0]->type->dt == ok[i].dt,
			          "cast to %d", ok[i].to);
		}
		ir_graph_free(g);
		ir_ctx_free(c);
	}
	static const struct {
		int to;
		const char *name;
	} bad[] = {{8, "string"}, {16, "bfloat16"}, {14, "complex64"}, {17, "float8e4m3fn"}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		Model *m = model(13);
		input(m, "x", F32, 2, xd);
		attr_i(m, node(m, "Cast", "c", "x", "y"), "to", bad[i].to);
		output(m, "y", F32, -1, NULL);
		EXPECT_ERR(save(m, "cast_bad.onnx"), NULL, IR_ERR_UNSUPPORTED, "node 'c' (Cast)",
		           bad[i].name);
	}
}

/* Typed fields (int32_data for narrow types, int64/double/uint64_data) and their checks. */
static void test_typed_fields(void)
{
	Model *m = model(13);
	int64_t d3[] = {3};
	int32_t i32v[] = {-5, 0, 127};
	int32_t u8v[] = {0, 200, 255};
	int32_t bv[] = {1, 0, 1};
	int32_t hv[] = {0x3c00, 0xc000, 0};
	int64_t i64v[] = {-1, 1LL << 40, 3};
	double dv[] = {0.5, -1e300, 2};
	uint64_t u64v[] = {1, UINT64_MAX, 0};
	uint64_t u32v[] = {1, 4000000000u, 0};
	static const struct {
		const char *name;
		int dt;
	} ts[] = {{"i8", 3},  {"u8", 2},   {"b", 9},    {"h", 10},
	          {"i64", 7}, {"f64", 11}, {"u64", 13}, {"u32", 12}};
	for (size_t i = 0; i < 8; i++) {
		Onnx__TensorProto *t = init(m, ts[i].name, ts[i].dt, 1, d3, NULL, 0);
		switch (i) {
		case 0:
			t->n_int32_data = 3, t->int32_data = i32v;
			break;
		case 1:
			t->n_int32_data = 3, t->int32_data = u8v;
			break;
		case 2:
			t->n_int32_data = 3, t->int32_data = bv;
			break;
		case 3:
			t->n_int32_data = 3, t->int32_data = hv;
			break;
		case 4:
			t->n_int64_data = 3, t->int64_data = i64v;
			break;
		case 5:
			t->n_double_data = 3, t->double_data = dv;
			break;
		case 6:
			t->n_uint64_data = 3, t->uint64_data = u64v;
			break;
		case 7:
			t->n_uint64_data = 3, t->uint64_data = u32v;
			break;
		}
		char on[32];
		snprintf(on, sizeof on, "o_%s", ts[i].name);
		node(m, "Identity", on, ts[i].name, on);
		output(m, on, ts[i].dt, 1, d3);
	}
	IrCtx *c = ir_ctx_new();
	IrGraph *g = IMPORT_OK(c, save(m, "typed.onnx"), 0);
	if (g) {
		IrValue *v;
		v = ir_graph_value(g, "i8");
		CHECK(v && v->type->dt == IR_DT_I8 && ((int8_t *)v->init)[0] == -5 &&
		      ((int8_t *)v->init)[2] == 127 && v->role == IR_ROLE_CONST);
		v = ir_graph_value(g, "u8");
		CHECK(v && v->type->dt == IR_DT_U8 && ((uint8_t *)v->init)[1] == 200);
		v = ir_graph_value(g, "b");
		CHECK(v && v->type->dt == IR_DT_BOOL && ((uint8_t *)v->init)[0] == 1 &&
		      ((uint8_t *)v->init)[1] == 0);
		v = ir_graph_value(g, "h");
		CHECK(v && v->type->dt == IR_DT_F16 && ((uint16_t *)v->init)[1] == 0xc000);
		v = ir_graph_value(g, "i64");
		CHECK(v && ((int64_t *)v->init)[1] == 1LL << 40);
		v = ir_graph_value(g, "f64");
		CHECK(v && v->type->dt == IR_DT_F64 && ((double *)v->init)[1] == -1e300);
		v = ir_graph_value(g, "u64");
		CHECK(v && ((uint64_t *)v->init)[1] == UINT64_MAX);
		v = ir_graph_value(g, "u32");
		CHECK(v && v->type->dt == IR_DT_U32 && ((uint32_t *)v->init)[1] == 4000000000u);
	}
	ir_graph_free(g);
	ir_ctx_free(c);

	/* out of range for int8 */
	m = model(13);
	int32_t big[] = {1, 300, 2};
	Onnx__TensorProto *t = init(m, "w", 3, 1, d3, NULL, 0);
	t->n_int32_data = 3;
	t->int32_data = big;
	node(m, "Identity", "id", "w", "y");
	output(m, "y", 3, 1, d3);
	EXPECT_ERR(save(m, "typed_range.onnx"), NULL, IR_ERR_INPUT, "initializer 'w'", "300");
	/* size mismatch: raw_data and float_data */
	m = model(13);
	float f2[2] = {1, 2};
	init(m, "w", F32, 1, d3, f2, sizeof f2);
	node(m, "Identity", "id", "w", "y");
	output(m, "y", F32, 1, d3);
	EXPECT_ERR(save(m, "size_raw.onnx"), NULL, IR_ERR_INPUT, "initializer 'w'", "raw_data");
	m = model(13);
	t = init(m, "w", F32, 1, d3, NULL, 0);
	t->n_float_data = 2;
	t->float_data = f2;
	node(m, "Identity", "id", "w", "y");
	output(m, "y", F32, 1, d3);
	EXPECT_ERR(save(m, "size_typed.onnx"), NULL, IR_ERR_INPUT, "initializer 'w'", "float_data");
}

/* External data: inside the model's folder only. */
static void test_external(void)
{
	char sub[512], outside[512];
	snprintf(sub, sizeof sub, "%s/ext", tmpdir);
	mkdir(sub, 0700);
	float w[6] = {1, 2, 3, 4, 5, 6}, pad[2] = {9, 9};
	float blob[8];
	memcpy(blob, pad, sizeof pad);
	memcpy(blob + 2, w, sizeof w);
	char p[600];
	snprintf(p, sizeof p, "%s/weights.bin", sub);
	write_bytes(p, blob, sizeof blob);
	snprintf(outside, sizeof outside, "%s/outside.bin", tmpdir);
	write_bytes(outside, blob, sizeof blob);
	snprintf(p, sizeof p, "%s/link.bin", sub);
	unlink(p);
	if (symlink(outside, p))
		perror("symlink");

	static const struct {
		const char *loc, *offset, *length;
		int ok;
		const char *msg;
	} cases[] = {
	    {"weights.bin", "8", "24", 1, NULL},      {"./weights.bin", "8", NULL, 1, NULL},
	    {"../outside.bin", "8", NULL, 0, "'..'"}, {"/etc/passwd", NULL, NULL, 0, "relative"},
	    {"link.bin", "8", NULL, 0, "outside"},    {"missing.bin", NULL, NULL, 0, "missing.bin"},
	    {"weights.bin", "16", NULL, 0, "beyond"}, {"weights.bin", "8", "20", 0, "length"},
	    {"weights.bin", "-8", NULL, 0, "offset"}, {"", NULL, NULL, 0, "location"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		Model *m = model(13);
		int64_t wd[] = {2, 3}, xd[] = {4, 2};
		input(m, "x", F32, 2, xd);
		Onnx__TensorProto *t = init(m, "W", F32, 2, wd, NULL, 0);
		t->has_data_location = 1;
		t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
		const char *kv[3][2] = {{"location", cases[i].loc},
		                        {"offset", cases[i].offset},
		                        {"length", cases[i].length}};
		for (int k = 0; k < 3; k++) {
			if (!kv[k][1])
				continue;
			Onnx__StringStringEntryProto *e = ir_arena_alloc(m->a, sizeof *e);
			Onnx__StringStringEntryProto ei = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
			*e = ei;
			e->key = sdup(m, kv[k][0]);
			e->value = sdup(m, kv[k][1]);
			PUSH(m->a, t->external_data, t->n_external_data, e);
		}
		node(m, "MatMul", "mm", "x,W", "y");
		output(m, "y", F32, -1, NULL);
		size_t n = onnx__model_proto__get_packed_size(&m->m);
		uint8_t *buf = malloc(n);
		onnx__model_proto__pack(&m->m, buf);
		snprintf(p, sizeof p, "%s/model.onnx", sub);
		write_bytes(p, buf, n);
		free(buf);
		model_free(m);
		if (cases[i].ok) {
			IrCtx *c = ir_ctx_new();
			IrGraph *g = IMPORT_OK(c, p, 0);
			IrValue *v = g ? ir_graph_value(g, "W") : NULL;
			CHECK_MSG(v && v->role == IR_ROLE_PARAM && ((float *)v->init)[0] == 1.0f &&
			              ((float *)v->init)[5] == 6.0f,
			          "case %zu", i);
			ir_graph_free(g);
			ir_ctx_free(c);
		} else {
			EXPECT_ERR(p, NULL, IR_ERR_INPUT, "initializer 'W'", cases[i].msg);
		}
	}
}

/* ---- malformed models ---- */

static const char *small_model(const char *file)
{
	Model *m = model(13);
	int64_t xd[] = {2, 3}, wd[] = {3, 2}, s[] = {-1};
	float w[6] = {1, 2, 3, 4, 5, 6};
	input(m, "x", F32, 2, xd);
	init_f(m, "W", 2, wd, w);
	init_i64(m, "shape", 1, s);
	Onnx__NodeProto *n = node(m, "Gemm", "fc", "x,W", "h");
	attr_f(m, n, "alpha", 0.5f);
	node(m, "Reshape", "flat", "h,shape", "y");
	output(m, "y", F32, -1, NULL);
	return save(m, file);
}

static void test_truncated(void)
{
	const char *p = small_model("small.onnx");
	FILE *f = fopen(p, "rb");
	uint8_t buf[4096];
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	CHECK(n > 50 && n < sizeof buf);
	IrCtx *c = ir_ctx_new();
	IrGraph *g = IMPORT_OK(c, p, 0);
	ir_graph_free(g);
	ir_ctx_free(c);
	int nok = 0;
	const char *tp = path_of("trunc.onnx");
	for (size_t len = 0; len < n; len++) {
		write_bytes(tp, buf, len);
		c = ir_ctx_new();
		g = fe_onnx_import(c, tp, NULL);
		if (g)
			nok++;
		else
			CHECK_MSG(ir_error_count(c) > 0 && strstr(ir_diag_text(c), tp),
			          "prefix %zu: failed without a message naming the file", len);
		ir_graph_free(g);
		ir_ctx_free(c);
	}
	CHECK(nok < (int)n);
	/* garbage: random bytes, and single-byte mutations of the valid file */
	uint32_t seed = 12345;
	for (int round = 0; round < 300; round++) {
		uint8_t junk[4096];
		size_t len = 1 + round * 7 % 600;
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1664525u + 1013904223u;
			junk[i] = (uint8_t)(seed >> 24);
		}
		if (round >= 100) {
			memcpy(junk, buf, n);
			len = n;
			seed = seed * 1664525u + 1013904223u;
			junk[(seed >> 8) % n] ^= (uint8_t)(1u << (seed >> 29));
		}
		write_bytes(tp, junk, len);
		c = ir_ctx_new();
		g = fe_onnx_import(c, tp, NULL);
		CHECK(g || ir_error_count(c) > 0);
		ir_graph_free(g);
		ir_ctx_free(c);
	}
	write_bytes(tp, "\xff\xff\xff\xff garbage", 12);
	EXPECT_ERR(tp, NULL, IR_ERR_INPUT, "not a valid ONNX model", NULL);
	write_bytes(tp, "", 0);
	EXPECT_ERR(tp, NULL, IR_ERR_INPUT, "empty", NULL);
	EXPECT_ERR(path_of("no_such_model.onnx"), NULL, IR_ERR_INPUT, "No such file", NULL);
	EXPECT_ERR(tmpdir, NULL, IR_ERR_INPUT, "not a regular file", NULL);
	const char *fifo = path_of("fifo.onnx");
	if (mkfifo(fifo, 0600) == 0) /* must not block */
		EXPECT_ERR(fifo, NULL, IR_ERR_INPUT, "not a regular file", NULL);
}

static void test_malformed(void)
{
	int64_t xd[] = {2, 3};
	/* wrong attribute type */
	Model *m = model(13);
	input(m, "x", F32, 2, xd);
	attr_s(m, node(m, "LeakyRelu", "lr", "x", "y"), "alpha", "big");
	output(m, "y", F32, 2, xd);
	EXPECT_ERR(save(m, "attr_type.onnx"), NULL, IR_ERR_INPUT, "node 'lr' (LeakyRelu)",
	           "attribute 'alpha' must be a float");
	/* unknown tensor reference */
	m = model(13);
	input(m, "x", F32, 2, xd);
	node(m, "Add", "add", "x,ghost", "y");
	output(m, "y", F32, 2, xd);
	EXPECT_ERR(save(m, "unknown_ref.onnx"), NULL, IR_ERR_INPUT, "node 'add' (Add)", "'ghost'");
	/* cycle */
	m = model(13);
	input(m, "x", F32, 2, xd);
	node(m, "Relu", "pre", "x", "p");
	node(m, "Add", "a", "p,c", "b");
	node(m, "Relu", "r", "b", "c");
	node(m, "Relu", "post", "c", "y");
	output(m, "y", F32, 2, xd);
	const char *p = save(m, "cycle.onnx");
	EXPECT_ERR(p, NULL, IR_ERR_INPUT, "cycle", "'a' (Add)");
	EXPECT_ERR(p, NULL, IR_ERR_INPUT, "'r' (Relu)", NULL);
	/* duplicates: two node outputs, an initializer and a node output, two inputs */
	m = model(13);
	input(m, "x", F32, 2, xd);
	node(m, "Relu", "r1", "x", "y");
	node(m, "Relu", "r2", "x", "y");
	output(m, "y", F32, 2, xd);
	EXPECT_ERR(save(m, "dup1.onnx"), NULL, IR_ERR_INPUT, "'y' is defined twice", "node 'r2'");
	m = model(13);
	float w[6] = {0};
	input(m, "x", F32, 2, xd);
	init_f(m, "x", 2, xd, w);
	init_f(m, "x", 2, xd, w);
	node(m, "Relu", "r1", "x", "y");
	output(m, "y", F32, 2, xd);
	EXPECT_ERR(save(m, "dup2.onnx"), NULL, IR_ERR_INPUT, "'x' is defined twice", NULL);
	m = model(13);
	input(m, "x", F32, 2, xd);
	node(m, "Relu", "r1", "x", "x");
	output(m, "x", F32, 2, xd);
	EXPECT_ERR(save(m, "dup3.onnx"), NULL, IR_ERR_INPUT, "'x' is defined twice", "graph input");
	/* absurd dims: inputs and initializers */
	/* {rank, dims...}: too many elements, negative, a product overflowing int64 */
	static const int64_t absurd[][4] = {
	    {2, 1000000000000LL, 1, 0},   {2, -3, 1, 0},
	    {2, 1LL << 30, 1LL << 30, 0}, {3, 1LL << 40, 1LL << 40, 1LL << 40},
	    {1, (1LL << 40) + 1, 0, 0},
	};
	for (int k = 0; k < 5; k++) {
		m = model(13);
		input(m, "big", F32, (int)absurd[k][0], absurd[k] + 1);
		node(m, "Relu", "r", "big", "y");
		output(m, "y", F32, -1, NULL);
		EXPECT_ERR(save(m, "absurd_in.onnx"), NULL, IR_ERR_INPUT, "input 'big'", NULL);
		m = model(13);
		input(m, "x", F32, 2, xd);
		init(m, "w", F32, (int)absurd[k][0], absurd[k] + 1, w, 8);
		node(m, "Add", "a", "x,w", "y");
		output(m, "y", F32, -1, NULL);
		EXPECT_ERR(save(m, "absurd_init.onnx"), NULL, IR_ERR_INPUT, "initializer 'w'",
		           NULL);
	}
	m = model(13);
	int64_t r9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
	input(m, "x", F32, 9, r9);
	node(m, "Relu", "r", "x", "y");
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "rank9.onnx"), NULL, IR_ERR_INPUT, "input 'x'", "rank 9");
	/* unsupported ops: all in one message */
	m = model(13);
	input(m, "x", F32, 2, xd);
	node(m, "LSTM", "lstm1", "x", "a");
	node(m, "Relu", "ok", "a", "b");
	node(m, "Resize", "resize", "b", "c");
	Onnx__NodeProto *ms = node(m, "Gemm", "ms", "c", "y");
	ms->domain = sdup(m, "com.microsoft");
	output(m, "y", F32, 2, xd);
	p = save(m, "unsupported.onnx");
	IrCtx *c = ir_ctx_new();
	CHECK(fe_onnx_import(c, p, NULL) == NULL);
	CHECK(ir_error_count(c) == 1 && ir_error_status(c) == IR_ERR_UNSUPPORTED);
	CHECK_MSG(strstr(ir_diag_text(c), "3 unsupported ops: node 'lstm1' (LSTM), node 'resize' "
	                                  "(Resize), node 'ms' (com.microsoft.Gemm)"),
	          "%s", ir_diag_text(c));
	ir_ctx_free(c);
	/* opsets */
	for (int opset = 6; opset <= 18; opset += 12) {
		m = model(opset);
		input(m, "x", F32, 2, xd);
		node(m, "Relu", "r", "x", "y");
		output(m, "y", F32, 2, xd);
		char msg[32];
		snprintf(msg, sizeof msg, "opset %d", opset);
		EXPECT_ERR(save(m, "opset.onnx"), NULL, IR_ERR_UNSUPPORTED, msg, NULL);
	}
	m = model(0);
	input(m, "x", F32, 2, xd);
	node(m, "Relu", "r", "x", "y");
	output(m, "y", F32, 2, xd);
	EXPECT_ERR(save(m, "noopset.onnx"), NULL, IR_ERR_INPUT, "opset", NULL);
	/* declared output shape differs from the inferred one */
	m = model(13);
	int64_t wrong[] = {3, 2};
	input(m, "x", F32, 2, xd);
	node(m, "Relu", "r", "x", "y");
	output(m, "y", F32, 2, wrong);
	EXPECT_ERR(save(m, "outshape.onnx"), NULL, IR_ERR_INPUT, "graph output 'y'", "[3,2]");
	/* a graph output nobody produces */
	m = model(13);
	input(m, "x", F32, 2, xd);
	node(m, "Relu", "r", "x", "y");
	output(m, "z", F32, 2, xd);
	EXPECT_ERR(save(m, "noout.onnx"), NULL, IR_ERR_INPUT, "graph output 'z'", NULL);
	/* inference errors come from ir_build and name the node */
	m = model(13);
	int64_t bd[] = {4, 5};
	input(m, "x", F32, 2, xd);
	input(m, "b", F32, 2, bd);
	node(m, "MatMul", "mm", "x,b", "y");
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "infer.onnx"), NULL, IR_ERR_INPUT, "node 'mm' (MatMul)", NULL);
	/* too many outputs */
	m = model(13);
	input(m, "x", F32, 2, xd);
	node(m, "Relu", "r", "x", "y,z");
	output(m, "y", F32, 2, xd);
	EXPECT_ERR(save(m, "nout.onnx"), NULL, IR_ERR_INPUT, "node 'r' (Relu)", "outputs");
	/* no graph */
	m = model(13);
	m->m.graph = NULL;
	EXPECT_ERR(save(m, "nograph.onnx"), NULL, IR_ERR_INPUT, "no graph", NULL);
}

/* ---- inputs whose data the caller knows ---- */

/* A known input's entry in FeOptions.shapes: the shape and the data. */
static FeInputShape known(IrCtx *c, const char *name, IrDType dt, int rank, const int64_t *dims,
                          const void *data)
{
	FeInputShape k;
	memset(&k, 0, sizeof k);
	k.name = name;
	k.rank = rank;
	if (rank > 0)
		memcpy(k.dims, dims, sizeof(int64_t) * (size_t)rank);
	k.value.type = ir_type(c, dt, rank, dims);
	k.value.data = data;
	return k;
}

static IrGraph *import_opts(IrCtx *c, const char *path, const FeOptions *o, int line)
{
	IrGraph *g = fe_onnx_import(c, path, o);
	CHECK_MSG(g != NULL, "line %d: import of %s failed: %s", line, path, ir_diag_text(c));
	if (g)
		CHECK_MSG(ir_verify(g) == 0, "line %d: %s: %s", line, path, ir_diag_text(c));
	return g;
}

static int in_vec(const IrVec *v, const IrValue *x)
{
	for (int i = 0; i < v->n; i++)
		if (v->v[i] == x)
			return 1;
	return 0;
}

/* ONNX's node tests pass a Reshape shape, Unsqueeze axes and Dropout's ratio and
 * training_mode as graph inputs with data files: given the data, they are constants. */
static void test_known_inputs(void)
{
	Model *m = model(13);
	int64_t xd[] = {2, 6}, two = 2, one = 1;
	input(m, "x", F32, 2, xd);
	input(m, "s", I64, 1, &two);
	input(m, "ax", I64, 1, &one);
	input(m, "r", F32, 0, NULL);
	input(m, "t", BOOL, 0, NULL);
	input(m, "z", I64, 1, &two);
	node(m, "Reshape", "rs", "x,s", "a");
	node(m, "Unsqueeze", "us", "a,ax", "b");
	node(m, "Dropout", "d", "b,r,t", "y,mask");
	node(m, "Identity", "sid", "s", "s2"); /* s is read as a tensor too */
	node(m, "Identity", "zid", "z", "z2"); /* z only as a tensor: it stays an input */
	output(m, "y", F32, -1, NULL);
	output(m, "s2", I64, 1, &two);
	output(m, "z2", I64, 1, &two);
	output(m, "s", I64, 1, &two); /* a graph input that is an output */
	const char *p = save(m, "known.onnx");

	IrCtx *c = ir_ctx_new();
	int64_t sv[] = {4, 3}, axv[] = {-1}, zv[] = {5, 6}, bad32[] = {4, 3};
	float rv = 0.25f;
	uint8_t tv = 1;
	FeInputShape sh[6];
	memset(&sh[0], 0, sizeof sh[0]);
	sh[0].name = "x"; /* a shape without data */
	sh[0].rank = 2;
	memcpy(sh[0].dims, xd, sizeof xd);
	sh[1] = known(c, "s", IR_DT_I64, 1, &two, sv);
	sh[2] = known(c, "ax", IR_DT_I64, 1, &one, axv);
	sh[3] = known(c, "r", IR_DT_F32, 0, NULL, &rv);
	sh[4] = known(c, "t", IR_DT_BOOL, 0, NULL, &tv);
	sh[5] = known(c, "z", IR_DT_I64, 1, &two, zv);
	FeOptions o = {0, 6, sh};
	IrGraph *g = import_opts(c, p, &o, __LINE__);
	if (g) {
		IrValue *s = ir_graph_value(g, "s"), *ax = ir_graph_value(g, "ax");
		IrValue *r = ir_graph_value(g, "r"), *t = ir_graph_value(g, "t");
		IrValue *z = ir_graph_value(g, "z"), *x = ir_graph_value(g, "x");
		CHECK(s && s->role == IR_ROLE_CONST && !s->def && ((int64_t *)s->init)[1] == 3);
		CHECK(ax && ax->role == IR_ROLE_CONST && ((int64_t *)ax->init)[0] == -1);
		CHECK(r && r->role == IR_ROLE_CONST && *(float *)r->init == 0.25f);
		CHECK(t && t->role == IR_ROLE_CONST && *(uint8_t *)t->init == 1);
		CHECK(x && x->role == IR_ROLE_INPUT && z && z->role == IR_ROLE_INPUT);
		CHECK(g->inputs.n == 2 && in_vec(&g->inputs, x) && in_vec(&g->inputs, z));
		CHECK(g->const_inputs.n == 4 && in_vec(&g->const_inputs, s) &&
		      in_vec(&g->const_inputs, ax) && in_vec(&g->const_inputs, r) &&
		      in_vec(&g->const_inputs, t));
		CHECK(g->params.n == 0);
		IrNode *rs = find_op(g, IR_OP_RESHAPE, 0), *us = find_op(g, IR_OP_UNSQUEEZE, 0);
		IrNode *d = find_op(g, IR_OP_DROPOUT, 0);
		int64_t as[] = {4, 3}, bs[] = {4, 3, 1};
		CHECK(rs && rs->nin == 1 && has_shape(rs->out[0]->type, 2, as));
		CHECK(us && us->attr.axes.n == 1 && us->attr.axes.axes[0] == 2 &&
		      has_shape(us->out[0]->type, 3, bs));
		CHECK(d && d->nin == 1 && d->attr.dropout.ratio == 0.25f &&
		      d->attr.dropout.training);
		IrValue *s2 = ir_graph_value(g, "s2");
		CHECK(s2 && s2->def && s2->def->op == IR_OP_IDENTITY && s2->def->in[0] == s);
		/* the input keeps its name (callers bind by it); its output copy is "s.out" */
		IrValue *so = g->outputs.n == 4 ? g->outputs.v[3] : NULL;
		CHECK(so && !strcmp(so->name, "s.out") && so->def && so->def->in[0] == s);
	}
	ir_graph_free(g);
	ir_ctx_free(c);

	/* data of the wrong dtype */
	c = ir_ctx_new();
	sh[1] = known(c, "s", IR_DT_I32, 1, &two, bad32);
	sh[2] = known(c, "ax", IR_DT_I64, 1, &one, axv);
	sh[3] = known(c, "r", IR_DT_F32, 0, NULL, &rv);
	sh[4] = known(c, "t", IR_DT_BOOL, 0, NULL, &tv);
	sh[5] = known(c, "z", IR_DT_I64, 1, &two, zv);
	EXPECT_ERR(p, &o, IR_ERR_INPUT, "input 's'", "the data given is i32[2]");
	/* without the data: unsupported, with a hint */
	memset(&sh[1].value, 0, sizeof sh[1].value);
	EXPECT_ERR(p, &o, IR_ERR_UNSUPPORTED, "node 'rs' (Reshape): shape input 's' is computed",
	           "`lnsc eval/grad --input s=FILE.pb` supplies its value");
	sh[1] = known(c, "s", IR_DT_I64, 1, &two, sv);
	memset(&sh[3].value, 0, sizeof sh[3].value);
	EXPECT_ERR(p, &o, IR_ERR_UNSUPPORTED, "node 'd' (Dropout): ratio input 'r'",
	           "--input r=FILE.pb");
	sh[3] = known(c, "r", IR_DT_F32, 0, NULL, &rv);
	memset(&sh[4].value, 0, sizeof sh[4].value);
	EXPECT_ERR(p, &o, IR_ERR_UNSUPPORTED, "training_mode input 't'", "--input t=FILE.pb");
	ir_ctx_free(c);
	/* a tensor a node computes is no graph input: no hint */
	m = model(13);
	input(m, "x", F32, 2, xd);
	input(m, "s", I64, 1, &two);
	node(m, "Identity", "i", "s", "s1");
	node(m, "Reshape", "rs", "x,s1", "y");
	output(m, "y", F32, -1, NULL);
	p = save(m, "dyn_shape.onnx");
	c = ir_ctx_new();
	CHECK(fe_onnx_import(c, p, NULL) == NULL && ir_error_status(c) == IR_ERR_UNSUPPORTED &&
	      strstr(ir_diag_text(c), "'s1' is computed at run time") &&
	      !strstr(ir_diag_text(c), "--input"));
	ir_ctx_free(c);
}

/* Zero-size tensors: ONNX allows dims of 0 (test_reshape_allowzero_reordered). */
static void test_zero_size(void)
{
	Model *m = model(14);
	int64_t xd[] = {0, 3, 4}, three = 3, zero = 0, one = 1;
	input(m, "x", F32, 3, xd);
	input(m, "shape", I64, 1, &three);
	attr_i(m, node(m, "Reshape", "r", "x,shape", "y"), "allowzero", 1);
	node(m, "Relu", "relu", "y", "z");
	int64_t yd[] = {3, 4, 0};
	output(m, "z", F32, 3, yd);
	/* a 0-element known value without data: Reshape of a [1] tensor to a scalar */
	input(m, "w", F32, 1, &one);
	input(m, "empty", I64, 1, &zero);
	node(m, "Reshape", "r0", "w,empty", "v");
	output(m, "v", F32, 0, NULL);
	const char *p = save(m, "zero.onnx");
	IrCtx *c = ir_ctx_new();
	int64_t shv[] = {3, 4, 0};
	FeInputShape sh[2] = {known(c, "shape", IR_DT_I64, 1, &three, shv),
	                      known(c, "empty", IR_DT_I64, 1, &zero, NULL)};
	FeOptions o = {0, 2, sh};
	IrGraph *g = import_opts(c, p, &o, __LINE__);
	if (g) {
		IrValue *x = ir_graph_value(g, "x"), *z = ir_graph_value(g, "z");
		IrValue *v = ir_graph_value(g, "v"), *e = ir_graph_value(g, "empty");
		CHECK(x && x->role == IR_ROLE_INPUT && x->type->numel == 0);
		CHECK(z && z->is_output && has_shape(z->type, 3, yd) && z->type->numel == 0);
		CHECK(v && v->type->rank == 0 && v->type->numel == 1);
		CHECK(e && e->role == IR_ROLE_CONST && e->type->numel == 0 && e->init);
	}
	ir_graph_free(g);
	ir_ctx_free(c);
}

/* ---- graph outputs keep their ONNX names ---- */

static void test_output_names(void)
{
	Model *m = model(13);
	int64_t xd[] = {2};
	float wv[] = {1, 2}, kv[] = {3, 4};
	int64_t iv[] = {5, 6};
	input(m, "x", F32, 1, xd);
	init_f(m, "w", 1, xd, wv);     /* a parameter (Add computes on it) and an output */
	init_i64(m, "c", 2, iv);       /* an int64 initializer: a const */
	init_i64(m, "c/const", 2, iv); /* has the name the renamed const would take */
	node(m, "Add", "add", "x,w", "y");
	Onnx__NodeProto *k = node(m, "Constant", "k", "", "values");
	attr_t(m, k, "value", tensor(m, "", F32, 1, xd, kv, sizeof kv));
	node(m, "Identity", "id", "y", "y2");
	node(m, "Identity", "idc", "c/const", "c2");
	output(m, "y2", F32, 1, xd);
	output(m, "values", F32, 1, xd);
	output(m, "c", I64, 1, xd);
	output(m, "w", F32, 1, xd);
	output(m, "x", F32, 1, xd);
	IrCtx *c = ir_ctx_new();
	IrGraph *g = IMPORT_OK(c, save(m, "out_names.onnx"), 0);
	if (g && g->outputs.n == 5) {
		IrValue **o = (IrValue **)g->outputs.v;
		CHECK(!strcmp(o[0]->name, "y2"));
		/* Constant and initializer outputs keep the ONNX name; the constant is renamed */
		CHECK(!strcmp(o[1]->name, "values") && o[1]->def->op == IR_OP_IDENTITY);
		IrValue *kc = o[1]->def->in[0];
		CHECK(!strcmp(kc->name, "values/const") && kc->role == IR_ROLE_CONST &&
		      ir_graph_value(g, "values/const") == kc && ((float *)kc->init)[1] == 4);
		CHECK(ir_graph_value(g, "values") == o[1]);
		CHECK(!strcmp(o[2]->name, "c") && !strcmp(o[2]->def->in[0]->name, "c/const.1"));
		CHECK(((int64_t *)o[2]->def->in[0]->init)[1] == 6);
		CHECK(ir_graph_value(g, "c2")->def->in[0] == ir_graph_value(g, "c/const"));
		/* a parameter and an input keep theirs: the output is "<name>.out" */
		CHECK(!strcmp(o[3]->name, "w.out") && o[3]->def->in[0] == ir_graph_value(g, "w"));
		CHECK(ir_graph_value(g, "w")->role == IR_ROLE_PARAM);
		CHECK(!strcmp(o[4]->name, "x.out") && o[4]->def->in[0] == ir_graph_value(g, "x"));
	} else {
		CHECK(g && g->outputs.n == 5);
	}
	ir_graph_free(g);
	ir_ctx_free(c);
	/* the same constant output listed twice */
	m = model(13);
	attr_t(m, node(m, "Constant", "k", "", "v"), "value",
	       tensor(m, "", F32, 1, xd, kv, sizeof kv));
	output(m, "v", F32, 1, xd);
	output(m, "v", F32, 1, xd);
	EXPECT_ERR(save(m, "out_twice.onnx"), NULL, IR_ERR_INPUT, "graph output 'v'",
	           "listed twice");
}

/* ir_value_rename keeps the name table exact: many values in a small table (long probe
 * runs), renamed back and forth, every name looked up after each step. */
static void test_value_rename(void)
{
	IrCtx *c = ir_ctx_new();
	IrGraph *g = ir_graph_new(c, "rename", "rename.test");
	const IrType *t = ir_type(c, IR_DT_F32, 0, NULL);
	enum { N = 300 };
	IrValue *v[N];
	char name[N][32];
	for (int i = 0; i < N; i++) {
		snprintf(name[i], sizeof name[i], "v%d", i);
		v[i] = ir_value_new(g, name[i], t, IR_ROLE_CONST, NULL, NULL);
	}
	int bad = 0;
	for (int round = 0; round < 3; round++)
		for (int i = round; i < N; i += 3) {
			snprintf(name[i], sizeof name[i], "%s/r%d", round == 1 ? "w" : "v", i);
			if (ir_value_rename(g, v[i], name[i]))
				bad++;
			if (i % 17 == 0) /* check every name now and then */
				for (int j = 0; j < N; j++)
					bad += ir_graph_value(g, name[j]) != v[j];
		}
	for (int j = 0; j < N; j++) {
		bad += ir_graph_value(g, name[j]) != v[j] || strcmp(v[j]->name, name[j]);
		char old[32];
		snprintf(old, sizeof old, "v%d", j);
		bad += ir_graph_value(g, old) != NULL;
	}
	CHECK_MSG(bad == 0, "%d name table errors", bad);
	/* a taken name is refused; the same name is a no-op; new values still fit */
	CHECK(ir_value_rename(g, v[0], name[1]) == -1 && ir_error_status(c) == IR_ERR_INPUT &&
	      strstr(ir_diag_text(c), name[1]) && ir_graph_value(g, name[0]) == v[0]);
	CHECK(ir_value_rename(g, v[2], name[2]) == 0 && ir_graph_value(g, name[2]) == v[2]);
	IrValue *nv = ir_value_new(g, "v0", t, IR_ROLE_CONST, NULL, NULL);
	CHECK(nv && ir_graph_value(g, "v0") == nv && ir_graph_value(g, name[0]) == v[0]);
	ir_graph_free(g);
	ir_ctx_free(c);
}

/* ---- graph inputs and outputs that are not tensors ---- */

static Onnx__TypeProto *type_proto(Model *m)
{
	Onnx__TypeProto *tp = ir_arena_alloc(m->a, sizeof *tp);
	Onnx__TypeProto tpi = ONNX__TYPE_PROTO__INIT;
	*tp = tpi;
	return tp;
}

/* optional(seq(tensor(float))), map(int64,tensor(float)) or sparse_tensor(float) */
static Onnx__ValueInfoProto *vinfo_kind(Model *m, const char *name, int kind)
{
	Onnx__ValueInfoProto *v = vinfo(m, name, F32, -1, NULL);
	Onnx__TypeProto *tensor_t = v->type, *tp = type_proto(m);
	if (kind == 0) {
		Onnx__TypeProto *seq = type_proto(m);
		Onnx__TypeProto__Sequence *sq = ir_arena_alloc(m->a, sizeof *sq);
		Onnx__TypeProto__Sequence sqi = ONNX__TYPE_PROTO__SEQUENCE__INIT;
		*sq = sqi;
		sq->elem_type = tensor_t;
		seq->value_case = ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE;
		seq->sequence_type = sq;
		Onnx__TypeProto__Optional *op = ir_arena_alloc(m->a, sizeof *op);
		Onnx__TypeProto__Optional opi = ONNX__TYPE_PROTO__OPTIONAL__INIT;
		*op = opi;
		op->elem_type = seq;
		tp->value_case = ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE;
		tp->optional_type = op;
	} else if (kind == 1) {
		Onnx__TypeProto__Map *mp = ir_arena_alloc(m->a, sizeof *mp);
		Onnx__TypeProto__Map mpi = ONNX__TYPE_PROTO__MAP__INIT;
		*mp = mpi;
		mp->has_key_type = 1;
		mp->key_type = I64;
		mp->value_type = tensor_t;
		tp->value_case = ONNX__TYPE_PROTO__VALUE_MAP_TYPE;
		tp->map_type = mp;
	} else {
		Onnx__TypeProto__SparseTensor *sp = ir_arena_alloc(m->a, sizeof *sp);
		Onnx__TypeProto__SparseTensor spi = ONNX__TYPE_PROTO__SPARSE_TENSOR__INIT;
		*sp = spi;
		sp->has_elem_type = 1;
		sp->elem_type = F32;
		tp->value_case = ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE;
		tp->sparse_tensor_type = sp;
	}
	v->type = tp;
	return v;
}

static void test_io_types(void)
{
	static const char *const want[] = {"optional(seq(tensor(float)))",
	                                   "map(int64,tensor(float))", "sparse_tensor(float)"};
	int64_t xd[] = {2};
	for (int kind = 0; kind < 3; kind++) {
		/* as an input (test_identity_opt) */
		Model *m = model(16);
		PUSH(m->a, m->g.input, m->g.n_input, vinfo_kind(m, "opt_in", kind));
		node(m, "Identity", "id", "opt_in", "y");
		output(m, "y", F32, 1, xd);
		const char *p = save(m, "io_in.onnx");
		EXPECT_ERR(p, NULL, IR_ERR_UNSUPPORTED, "graph input 'opt_in'", want[kind]);
		IrCtx *c = ir_ctx_new();
		CHECK(fe_onnx_check(c, p) == -1 && ir_error_status(c) == IR_ERR_UNSUPPORTED &&
		      strstr(ir_diag_text(c), "graph input 'opt_in'"));
		ir_ctx_free(c);
		/* as an output */
		m = model(16);
		input(m, "x", F32, 1, xd);
		node(m, "Identity", "id", "x", "y");
		PUSH(m->a, m->g.output, m->g.n_output, vinfo_kind(m, "y", kind));
		EXPECT_ERR(save(m, "io_out.onnx"), NULL, IR_ERR_UNSUPPORTED, "graph output 'y'",
		           want[kind]);
	}
	/* an input with an empty TypeProto is malformed */
	Model *m = model(13);
	Onnx__ValueInfoProto *vi = vinfo(m, "x", F32, -1, NULL);
	vi->type = type_proto(m);
	PUSH(m->a, m->g.input, m->g.n_input, vi);
	node(m, "Relu", "r", "x", "y");
	output(m, "y", F32, 1, xd);
	EXPECT_ERR(save(m, "io_none.onnx"), NULL, IR_ERR_INPUT, "input 'x' has no type", NULL);
	/* fe_onnx_check needs no data: a model that needs a known input passes it */
	m = model(13);
	int64_t two = 2;
	input(m, "x", F32, 1, xd);
	input(m, "s", I64, 1, &two);
	node(m, "Reshape", "rs", "x,s", "y");
	output(m, "y", F32, -1, NULL);
	const char *p = save(m, "check_ok.onnx");
	IrCtx *c = ir_ctx_new();
	CHECK_MSG(fe_onnx_check(c, p) == 0 && ir_error_count(c) == 0, "%s", ir_diag_text(c));
	CHECK(fe_onnx_check(c, path_of("no_such.onnx")) == -1 &&
	      ir_error_status(c) == IR_ERR_INPUT && strstr(ir_diag_text(c), "no_such.onnx"));
	ir_ctx_free(c);
}

/* ---- tensor files ---- */

static void test_tensor_io(void)
{
	IrCtx *c = ir_ctx_new();
	IrArena *a = ir_arena_new();
	int64_t dims[] = {2, 3};
	for (int dt = 0; dt < IR_DT_COUNT; dt++) {
		if (dt == IR_DT_LNS)
			continue;
		const IrType *t = ir_type(c, (IrDType)dt, 2, dims);
		size_t bytes = ir_type_bytes(t);
		uint8_t data[64];
		for (size_t i = 0; i < bytes; i++)
			data[i] = (uint8_t)(i * 37 + 11 + dt);
		if (dt == IR_DT_BOOL)
			for (size_t i = 0; i < bytes; i++)
				data[i] = (uint8_t)(i & 1);
		if (dt == IR_DT_F32) {
			float f[6] = {1.5f, -0.0f, INFINITY, 3e-40f, -7, 1e30f};
			memcpy(data, f, sizeof f);
		}
		const char *p = path_of("t.pb");
		CHECK_MSG(fe_tensor_write(c, p, "grad/w", t, data) == 0, "%s", ir_diag_text(c));
		const char *name = NULL;
		const IrType *rt = NULL;
		void *rd = NULL;
		int rc = fe_tensor_read(c, a, p, &name, &rt, &rd);
		CHECK_MSG(rc == 0 && rt == t && !strcmp(name, "grad/w") && !memcmp(rd, data, bytes),
		          "round trip of %s: %s", ir_dtype_name((IrDType)dt), ir_diag_text(c));
	}
	/* scalar */
	const IrType *s = ir_type(c, IR_DT_F64, 0, NULL);
	double v = 2.25, *rv = NULL;
	const char *name;
	const IrType *rt;
	CHECK(fe_tensor_write(c, path_of("s.pb"), "", s, &v) == 0);
	CHECK(fe_tensor_read(c, a, path_of("s.pb"), &name, &rt, (void **)&rv) == 0 && rt == s &&
	      *rv == 2.25 && !strcmp(name, ""));
	/* errors name the file */
	ir_diag_clear(c);
	void *d;
	CHECK(fe_tensor_read(c, a, path_of("nothere.pb"), &name, &rt, &d) == -1 &&
	      strstr(ir_diag_text(c), "nothere.pb") && ir_error_status(c) == IR_ERR_INPUT);
	write_bytes(path_of("junk.pb"), "\x0a\xff\xff\xff\xff\x0f", 6);
	ir_diag_clear(c);
	CHECK(fe_tensor_read(c, a, path_of("junk.pb"), &name, &rt, &d) == -1 &&
	      strstr(ir_diag_text(c), "junk.pb"));
	ir_diag_clear(c);
	LnsFormat f = {8, 3, 0, 0, 0};
	const IrType *lt = ir_type_lns(c, f, 2, dims);
	uint8_t codes[6] = {0};
	CHECK(fe_tensor_write(c, path_of("l.pb"), "l", lt, codes) == -1);
	ir_diag_clear(c);
	char dir_path[300];
	snprintf(dir_path, sizeof dir_path, "%s/nodir/x.pb", tmpdir);
	CHECK(fe_tensor_write(c, dir_path, "x", s, &v) == -1 && strstr(ir_diag_text(c), "nodir"));
	ir_arena_free(a);
	ir_ctx_free(c);
}

/* ---- convolutional networks ---- */

static int window_is(const int *got, int n, const int *want)
{
	for (int i = 0; i < n; i++)
		if (got[i] != want[i])
			return 0;
	return 1;
}

/* One Conv over x [1,2,6,6] with W [4,2/group,3,3]; auto_pad (NULL: none), strides s. */
static const char *conv_model(int opset, const char *auto_pad, int s, int group, const char *ins,
                              const char *file)
{
	Model *m = model(opset);
	static float w[4 * 2 * 9], b[4];
	int64_t xd[] = {1, 2, 6, 6}, wd[] = {4, 2 / group, 3, 3}, bd[] = {4}, st[] = {s, s};
	input(m, "x", F32, 4, xd);
	init_f(m, "W", 4, wd, w);
	init_f(m, "B", 1, bd, b);
	Onnx__NodeProto *n = node(m, "Conv", "conv", ins, "y");
	if (auto_pad)
		attr_s(m, n, "auto_pad", auto_pad);
	attr_ints(m, n, "strides", 2, st);
	if (group != 1)
		attr_i(m, n, "group", group);
	output(m, "y", F32, -1, NULL);
	return save(m, file);
}

static void test_conv(void)
{
	IrCtx *c = ir_ctx_new();
	/* stride 2 over 6 with a 3x3 kernel: output 3, one pixel of padding in total, which
	 * SAME_UPPER puts at the end and SAME_LOWER at the beginning */
	static const int upper[4] = {0, 0, 1, 1}, lower[4] = {1, 1, 0, 0}, none[4] = {0};
	const char *modes[] = {"SAME_UPPER", "SAME_LOWER", "VALID"};
	const int *want[] = {upper, lower, none};
	for (int k = 0; k < 3; k++) {
		IrGraph *g = IMPORT_OK(c, conv_model(11, modes[k], 2, 1, "x,W,B", "conv.onnx"), 0);
		IrNode *n = g ? find_op(g, IR_OP_CONV, 0) : NULL;
		int64_t ys[] = {1, 4, k < 2 ? 3 : 2, k < 2 ? 3 : 2};
		static const int k3[2] = {3, 3}, s2[2] = {2, 2}, d1[2] = {1, 1};
		CHECK_MSG(n && window_is(n->attr.conv.pad, 4, want[k]), "%s", modes[k]);
		CHECK(n && n->nin == 3 && n->attr.conv.group == 1 &&
		      window_is(n->attr.conv.kernel, 2, k3) &&
		      window_is(n->attr.conv.stride, 2, s2) &&
		      window_is(n->attr.conv.dilation, 2, d1) && has_shape(n->out[0]->type, 4, ys));
		CHECK(g && ir_graph_value(g, "W")->role == IR_ROLE_PARAM &&
		      ir_graph_value(g, "B")->role == IR_ROLE_PARAM);
		ir_graph_free(g);
	}
	/* SAME with stride 1 at opset 7 (Conv-1): 2 pixels, one each side */
	IrGraph *g = IMPORT_OK(c, conv_model(7, "SAME_LOWER", 1, 1, "x,W", "conv7.onnx"), 0);
	IrNode *n = g ? find_op(g, IR_OP_CONV, 0) : NULL;
	static const int ones[4] = {1, 1, 1, 1};
	CHECK(n && n->nin == 2 && window_is(n->attr.conv.pad, 4, ones));
	ir_graph_free(g);

	/* depthwise (group = channels), explicit asymmetric pads, dilations, kernel_shape
	 * given, the bias an empty name */
	Model *m = model(13);
	float w[2 * 9] = {0};
	int64_t xd[] = {2, 2, 7, 5}, wd[] = {2, 1, 3, 3}, pads[] = {1, 0, 2, 1}, dil[] = {2, 1},
	        ks[] = {3, 3};
	input(m, "x", F32, 4, xd);
	init_f(m, "W", 4, wd, w);
	Onnx__NodeProto *cn = node(m, "Conv", "dw", "x,W,", "y");
	attr_i(m, cn, "group", 2);
	attr_ints(m, cn, "pads", 4, pads);
	attr_ints(m, cn, "dilations", 2, dil);
	attr_ints(m, cn, "kernel_shape", 2, ks);
	output(m, "y", F32, -1, NULL);
	g = IMPORT_OK(c, save(m, "depthwise.onnx"), 0);
	n = g ? find_op(g, IR_OP_CONV, 0) : NULL;
	static const int p4[4] = {1, 0, 2, 1}, d21[2] = {2, 1};
	int64_t ys[] = {2, 2, 6, 4}; /* (7+3-5)/1+1, (5+1-3)/1+1 */
	CHECK(n && n->nin == 2 && n->attr.conv.group == 2 && window_is(n->attr.conv.pad, 4, p4) &&
	      window_is(n->attr.conv.dilation, 2, d21) && has_shape(n->out[0]->type, 4, ys));
	ir_graph_free(g);
	ir_ctx_free(c);

	/* errors */
	m = model(11);
	int64_t x3[] = {1, 2, 4, 4, 4}, w3[] = {3, 2, 2, 2, 2};
	float w3d[48] = {0};
	input(m, "x", F32, 5, x3);
	init_f(m, "W", 5, w3, w3d);
	node(m, "Conv", "conv3d", "x,W", "y");
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "conv3d.onnx"), NULL, IR_ERR_UNSUPPORTED, "node 'conv3d' (Conv)",
	           "only 2-D Conv is supported: input 'x' has 3 spatial dims");
	m = model(11);
	int64_t x1[] = {1, 2, 9}, w1[] = {3, 2, 2};
	input(m, "x", F32, 3, x1);
	init_f(m, "W", 3, w1, w3d);
	node(m, "Conv", "conv1d", "x,W", "y");
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "conv1d.onnx"), NULL, IR_ERR_UNSUPPORTED, "node 'conv1d' (Conv)",
	           "only 2-D");
	EXPECT_ERR(conv_model(11, "SAME", 1, 1, "x,W", "conv_badpad.onnx"), NULL, IR_ERR_INPUT,
	           "node 'conv' (Conv): attribute 'auto_pad' is 'SAME'",
	           "expected one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
	EXPECT_ERR(conv_model(11, NULL, 0, 1, "x,W", "conv_stride0.onnx"), NULL, IR_ERR_INPUT,
	           "attribute 'strides' has 0 at index 0", "positive");
	EXPECT_ERR(conv_model(11, NULL, 1, 3, "x,W", "conv_group3.onnx"), NULL, IR_ERR_INPUT,
	           "node 'conv' (Conv)", "group 3 must divide");
	EXPECT_ERR(conv_model(11, NULL, 1, 1, "x", "conv_arity.onnx"), NULL, IR_ERR_INPUT,
	           "node 'conv' (Conv)", "has 1 inputs, expected 2 to 3");
	m = model(11);
	int64_t xd4[] = {1, 2, 6, 6}, wd4[] = {4, 2, 3, 3}, pp[] = {1, 1, 1, 1}, k5[] = {5, 5, 5};
	float w4[72] = {0};
	input(m, "x", F32, 4, xd4);
	init_f(m, "W", 4, wd4, w4);
	cn = node(m, "Conv", "both", "x,W", "y");
	attr_s(m, cn, "auto_pad", "SAME_UPPER");
	attr_ints(m, cn, "pads", 4, pp);
	cn = node(m, "Conv", "k3", "y,W", "z");
	attr_ints(m, cn, "kernel_shape", 3, k5);
	output(m, "z", F32, -1, NULL);
	const char *p = save(m, "conv_attrs.onnx");
	EXPECT_ERR(p, NULL, IR_ERR_INPUT, "node 'both' (Conv)",
	           "pads and auto_pad SAME_UPPER are both given");
	m = model(11);
	input(m, "x", F32, 4, xd4);
	init_f(m, "W", 4, wd4, w4);
	attr_ints(m, node(m, "Conv", "k3", "x,W", "y"), "kernel_shape", 3, k5);
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "conv_k3.onnx"), NULL, IR_ERR_INPUT, "node 'k3' (Conv)",
	           "attribute 'kernel_shape' has 3 values, expected 2");
	m = model(11);
	input(m, "x", F32, 4, xd4);
	init_f(m, "W", 4, wd4, w4);
	attr_ints(m, node(m, "Conv", "k5", "x,W", "y"), "kernel_shape", 2, k5);
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "conv_k5.onnx"), NULL, IR_ERR_INPUT, "node 'k5' (Conv)",
	           "does not match");
}

/* A BatchNormalization over x [2,3,4,4] with scale, B, mean, var initializers. */
static Model *bn_model(int opset, const char *outs, Onnx__NodeProto **bn)
{
	Model *m = model(opset);
	static const float one[3] = {1, 1, 1}, zero[3] = {0};
	int64_t xd[] = {2, 3, 4, 4}, cd[] = {3};
	input(m, "x", F32, 4, xd);
	init_f(m, "scale", 1, cd, one);
	init_f(m, "B", 1, cd, zero);
	init_f(m, "mean", 1, cd, zero);
	init_f(m, "var", 1, cd, one);
	*bn = node(m, "BatchNormalization", "bn", "x,scale,B,mean,var", outs);
	output(m, "y", F32, 4, xd);
	return m;
}

static void test_batch_norm(void)
{
	IrCtx *c = ir_ctx_new();
	Onnx__NodeProto *bn;
	/* opset 15, training_mode: ONNX (Y, running_mean, running_var) are IR outputs 0..2 */
	Model *m = bn_model(15, "y,rm,rv", &bn);
	attr_i(m, bn, "training_mode", 1);
	attr_f(m, bn, "momentum", 0.99f);
	IrGraph *g = IMPORT_OK(c, save(m, "bn15.onnx"), 0);
	IrNode *n = g ? find_op(g, IR_OP_BATCH_NORM, 0) : NULL;
	CHECK(n && n->nout == 5 && n->attr.bn.training == 1 && n->attr.bn.momentum == 0.99f &&
	      n->attr.bn.epsilon == 1e-5f);
	CHECK(n && !strcmp(n->out[0]->name, "y") && !strcmp(n->out[1]->name, "rm") &&
	      !strcmp(n->out[2]->name, "rv") && !strcmp(n->out[3]->name, "bn/out3"));
	if (g) { /* initializers as usual: canon makes the running statistics state */
		IrValue *mean = ir_graph_value(g, "mean"), *var = ir_graph_value(g, "var");
		CHECK(mean && mean->init && var && ((float *)var->init)[2] == 1.0f);
		CHECK(n && n->in[3] == mean && n->in[4] == var && n->nin == 5);
	}
	ir_graph_free(g);
	/* opset 14 default: inference, one output */
	m = bn_model(14, "y", &bn);
	g = IMPORT_OK(c, save(m, "bn14.onnx"), 0);
	n = g ? find_op(g, IR_OP_BATCH_NORM, 0) : NULL;
	CHECK(n && n->attr.bn.training == 0 && n->attr.bn.momentum == 0.9f);
	ir_graph_free(g);
	/* opset 9: training iff more than one output; (Y, mean, var, saved_mean, saved_var) */
	m = bn_model(9, "y,m,v,sm,sv", &bn);
	attr_f(m, bn, "epsilon", 1e-3f);
	g = IMPORT_OK(c, save(m, "bn9.onnx"), 0);
	n = g ? find_op(g, IR_OP_BATCH_NORM, 0) : NULL;
	CHECK(n && n->attr.bn.training == 1 && n->attr.bn.epsilon == 1e-3f);
	CHECK(n && !strcmp(n->out[1]->name, "m") && !strcmp(n->out[4]->name, "sv"));
	ir_graph_free(g);
	m = bn_model(9, "y,,", &bn); /* absent outputs trail: inference */
	g = IMPORT_OK(c, save(m, "bn9i.onnx"), 0);
	n = g ? find_op(g, IR_OP_BATCH_NORM, 0) : NULL;
	CHECK(n && n->attr.bn.training == 0);
	ir_graph_free(g);
	/* opset 7: spatial 1 is per-channel statistics */
	m = bn_model(7, "y,m", &bn);
	attr_i(m, bn, "spatial", 1);
	g = IMPORT_OK(c, save(m, "bn7.onnx"), 0);
	n = g ? find_op(g, IR_OP_BATCH_NORM, 0) : NULL;
	CHECK(n && n->attr.bn.training == 1);
	ir_graph_free(g);
	/* running statistics given as graph inputs stay inputs (ONNX's node tests) */
	m = model(15);
	int64_t xd[] = {2, 3, 4, 4}, cd[] = {3};
	const char *names[] = {"x", "s", "b", "mean", "var"};
	for (int i = 0; i < 5; i++)
		input(m, names[i], F32, i ? 1 : 4, i ? cd : xd);
	node(m, "BatchNormalization", "bn", "x,s,b,mean,var", "y");
	output(m, "y", F32, 4, xd);
	g = IMPORT_OK(c, save(m, "bn_inputs.onnx"), 0);
	CHECK(g && ir_graph_value(g, "mean")->role == IR_ROLE_INPUT && g->inputs.n == 5);
	ir_graph_free(g);
	ir_ctx_free(c);

	m = bn_model(7, "y", &bn);
	attr_i(m, bn, "spatial", 0);
	EXPECT_ERR(save(m, "bn_spatial.onnx"), NULL, IR_ERR_UNSUPPORTED,
	           "node 'bn' (BatchNormalization)", "spatial=0");
	m = bn_model(15, "y,rm,rv,bm", &bn);
	EXPECT_ERR(save(m, "bn_4out.onnx"), NULL, IR_ERR_INPUT, "node 'bn' (BatchNormalization)",
	           "has 4 outputs, expected 1 to 3 at opset 15");
	m = bn_model(12, "y", &bn);
	attr_i(m, bn, "training_mode", 1);
	EXPECT_ERR(save(m, "bn_tm12.onnx"), NULL, IR_ERR_INPUT, "node 'bn' (BatchNormalization)",
	           "attribute 'training_mode' needs opset 14 (the model's is 12)");
	m = bn_model(15, "y", &bn);
	attr_f(m, bn, "epsilon", -1.0f);
	EXPECT_ERR(save(m, "bn_eps.onnx"), NULL, IR_ERR_INPUT, "node 'bn'", "epsilon -1");
	m = bn_model(15, "y", &bn);
	attr_i(m, bn, "training_mode", 2);
	EXPECT_ERR(save(m, "bn_tm2.onnx"), NULL, IR_ERR_INPUT, "node 'bn'", "training_mode is 2");
}

/* One pool node over x [1,3,7,7]; outs may add an Indices output. */
static Model *pool_model(int opset, const char *op, const char *outs, Onnx__NodeProto **n)
{
	Model *m = model(opset);
	int64_t xd[] = {1, 3, 7, 7};
	input(m, "x", F32, 4, xd);
	*n = node(m, op, "pool", "x", outs);
	output(m, "y", F32, -1, NULL);
	return m;
}

static void test_pools(void)
{
	IrCtx *c = ir_ctx_new();
	Onnx__NodeProto *n;
	int64_t k3[] = {3, 3}, s2[] = {2, 2}, d2[] = {2, 1}, p1[] = {0, 1, 1, 0};
	/* MaxPool 12: every attribute; an unread Indices output is dropped */
	Model *m = pool_model(12, "MaxPool", "y,idx", &n);
	attr_ints(m, n, "kernel_shape", 2, k3);
	attr_ints(m, n, "strides", 2, s2);
	attr_ints(m, n, "dilations", 2, d2);
	attr_ints(m, n, "pads", 4, p1);
	attr_i(m, n, "ceil_mode", 1);
	attr_i(m, n, "storage_order", 1);
	IrGraph *g = IMPORT_OK(c, save(m, "maxpool.onnx"), 0);
	IrNode *p = g ? find_op(g, IR_OP_MAX_POOL, 0) : NULL;
	static const int wk[2] = {3, 3}, ws[2] = {2, 2}, wd[2] = {2, 1}, wp[4] = {0, 1, 1, 0};
	/* H (dilation 2, pads 0 and 1): ceil((7+1-5)/2)+1 = 3; W: ceil((7+1-3)/2)+1 = 4 */
	int64_t ys[] = {1, 3, 3, 4};
	CHECK(p && p->nout == 1 && window_is(p->attr.pool.kernel, 2, wk) &&
	      window_is(p->attr.pool.stride, 2, ws) && window_is(p->attr.pool.dilation, 2, wd) &&
	      window_is(p->attr.pool.pad, 4, wp) && p->attr.pool.ceil_mode == 1 &&
	      has_shape(p->out[0]->type, 4, ys));
	ir_graph_free(g);
	/* AveragePool 11: SAME_UPPER, count_include_pad; auto_pad clears ceil_mode */
	m = pool_model(11, "AveragePool", "y", &n);
	attr_ints(m, n, "kernel_shape", 2, k3);
	attr_ints(m, n, "strides", 2, s2);
	attr_s(m, n, "auto_pad", "SAME_UPPER");
	attr_i(m, n, "count_include_pad", 1);
	attr_i(m, n, "ceil_mode", 1);
	g = IMPORT_OK(c, save(m, "avgpool.onnx"), 0);
	p = g ? find_op(g, IR_OP_AVG_POOL, 0) : NULL;
	static const int same[4] = {1, 1, 1, 1}; /* 7 -> 4: (4-1)*2+3-7 = 2 */
	int64_t as[] = {1, 3, 4, 4};
	CHECK(p && window_is(p->attr.pool.pad, 4, same) && p->attr.pool.count_include_pad == 1 &&
	      p->attr.pool.ceil_mode == 0 && has_shape(p->out[0]->type, 4, as));
	ir_graph_free(g);
	/* AveragePool 7: no ceil_mode yet, count_include_pad default 0 */
	m = pool_model(7, "AveragePool", "y", &n);
	attr_ints(m, n, "kernel_shape", 2, k3);
	g = IMPORT_OK(c, save(m, "avgpool7.onnx"), 0);
	p = g ? find_op(g, IR_OP_AVG_POOL, 0) : NULL;
	static const int one2[2] = {1, 1};
	CHECK(p && p->attr.pool.count_include_pad == 0 && window_is(p->attr.pool.stride, 2, one2));
	ir_graph_free(g);
	/* the global pools: kernel = H, W */
	const char *gops[] = {"GlobalAveragePool", "GlobalMaxPool"};
	IrOp gir[] = {IR_OP_GLOBAL_AVG_POOL, IR_OP_GLOBAL_MAX_POOL};
	for (int i = 0; i < 2; i++) {
		m = pool_model(9, gops[i], "y", &n);
		g = IMPORT_OK(c, save(m, "global.onnx"), 0);
		p = g ? find_op(g, gir[i], 0) : NULL;
		static const int k7[2] = {7, 7};
		int64_t gs[] = {1, 3, 1, 1};
		CHECK_MSG(p && window_is(p->attr.pool.kernel, 2, k7) &&
		              window_is(p->attr.pool.stride, 2, one2) &&
		              has_shape(p->out[0]->type, 4, gs),
		          "%s", gops[i]);
		ir_graph_free(g);
	}
	ir_ctx_free(c);

	/* errors: Indices read, attributes before their opset, 3-D and 1-D pools */
	m = pool_model(12, "MaxPool", "y,idx", &n);
	attr_ints(m, n, "kernel_shape", 2, k3);
	node(m, "Cast", "use", "idx", "f");
	attr_i(m, m->g.node[1], "to", F32);
	output(m, "f", F32, -1, NULL);
	EXPECT_ERR(save(m, "indices_used.onnx"), NULL, IR_ERR_UNSUPPORTED, "node 'pool' (MaxPool)",
	           "the Indices output 'idx' is not supported (node 'use' (Cast) reads it)");
	m = pool_model(12, "MaxPool", "y,idx", &n);
	attr_ints(m, n, "kernel_shape", 2, k3);
	output(m, "idx", I64, -1, NULL);
	EXPECT_ERR(save(m, "indices_out.onnx"), NULL, IR_ERR_UNSUPPORTED, "node 'pool' (MaxPool)",
	           "the Indices output 'idx' is not supported (it is a graph output)");
	m = pool_model(7, "MaxPool", "y,idx", &n);
	attr_ints(m, n, "kernel_shape", 2, k3);
	EXPECT_ERR(save(m, "indices7.onnx"), NULL, IR_ERR_INPUT, "node 'pool' (MaxPool)",
	           "has 2 outputs, expected 1 at opset 7");
	m = pool_model(8, "MaxPool", "y", &n);
	attr_ints(m, n, "kernel_shape", 2, k3);
	attr_i(m, n, "ceil_mode", 1);
	EXPECT_ERR(save(m, "ceil8.onnx"), NULL, IR_ERR_INPUT, "node 'pool' (MaxPool)",
	           "attribute 'ceil_mode' needs opset 10 (the model's is 8)");
	m = pool_model(12, "MaxPool", "y", &n);
	EXPECT_ERR(save(m, "nokernel.onnx"), NULL, IR_ERR_INPUT, "node 'pool' (MaxPool)",
	           "attribute 'kernel_shape' is required");
	m = pool_model(11, "AveragePool", "y", &n);
	attr_ints(m, n, "kernel_shape", 2, k3);
	attr_ints(m, n, "dilations", 2, d2);
	EXPECT_ERR(save(m, "avgdil.onnx"), NULL, IR_ERR_INPUT, "node 'pool' (AveragePool)",
	           "attribute 'dilations' needs opset 19");
	m = pool_model(11, "AveragePool", "y", &n);
	attr_ints(m, n, "kernel_shape", 2, k3);
	attr_i(m, n, "count_include_pad", 2);
	EXPECT_ERR(save(m, "avgcip.onnx"), NULL, IR_ERR_INPUT, "node 'pool' (AveragePool)",
	           "count_include_pad is 2");
	m = pool_model(12, "MaxPool", "y", &n);
	attr_ints(m, n, "kernel_shape", 2, k3);
	attr_ints(m, n, "pads", 4, (int64_t[]){0, -1, 0, 0});
	EXPECT_ERR(save(m, "negpad.onnx"), NULL, IR_ERR_INPUT, "node 'pool' (MaxPool)",
	           "attribute 'pads' has -1 at index 1, expected a value >= 0");
	for (int rank = 3; rank <= 5; rank += 2) {
		m = model(12);
		int64_t xd[] = {1, 3, 8, 8, 8}, ks[] = {2, 2, 2};
		input(m, "x", F32, rank, xd);
		attr_ints(m, node(m, "MaxPool", "mp", "x", "y"), "kernel_shape", rank - 2, ks);
		node(m, "GlobalAveragePool", "gap", "x", "z");
		output(m, "y", F32, -1, NULL);
		output(m, "z", F32, -1, NULL);
		EXPECT_ERR(save(m, "pool_nd.onnx"), NULL, IR_ERR_UNSUPPORTED,
		           "node 'mp' (MaxPool): only 2-D MaxPool is supported", "spatial dim");
	}
}

static void test_pad(void)
{
	IrCtx *c = ir_ctx_new();
	int64_t xd[] = {1, 3, 4, 5}, pads[] = {0, 0, 1, -1, 0, 1, 2, 3}, pd[] = {8};
	float v = 1.5f;
	/* opset 11 and 13: pads and constant_value from constant inputs */
	for (int opset = 11; opset <= 13; opset += 2) {
		Model *m = model(opset);
		input(m, "x", F32, 4, xd);
		init_i64(m, "pads", 8, pads);
		init(m, "value", F32, 0, NULL, &v, sizeof v);
		node(m, "Pad", "pad", "x,pads,value", "y");
		output(m, "y", F32, -1, NULL);
		IrGraph *g = IMPORT_OK(c, save(m, "pad.onnx"), 0);
		IrNode *n = g ? find_op(g, IR_OP_PAD, 0) : NULL;
		int64_t ys[] = {1, 4, 7, 7};
		CHECK(n && n->nin == 1 && n->attr.pad.n == 4 && n->attr.pad.value == 1.5f &&
		      n->attr.pad.pads[3] == -1 && n->attr.pad.pads[7] == 3 &&
		      has_shape(n->out[0]->type, 4, ys));
		CHECK(g && ir_graph_value(g, "value")->role == IR_ROLE_CONST && g->params.n == 0);
		ir_graph_free(g);
	}
	/* opset 7 (Pad-2): attributes; value defaults to 0 */
	Model *m = model(7);
	input(m, "x", F32, 4, xd);
	Onnx__NodeProto *pn = node(m, "Pad", "pad", "x", "y");
	attr_ints(m, pn, "pads", 8, pads);
	attr_s(m, pn, "mode", "constant");
	output(m, "y", F32, -1, NULL);
	IrGraph *g = IMPORT_OK(c, save(m, "pad7.onnx"), 0);
	IrNode *n = g ? find_op(g, IR_OP_PAD, 0) : NULL;
	CHECK(n && n->attr.pad.value == 0.0f && n->attr.pad.pads[2] == 1);
	ir_graph_free(g);
	/* int32 data, constant_value int32 (a data move: any dtype) */
	m = model(13);
	int32_t iv = -7;
	input(m, "x", I32, 4, xd);
	init_i64(m, "pads", 8, pads);
	init(m, "value", I32, 0, NULL, &iv, sizeof iv);
	node(m, "Pad", "pad", "x,pads,value", "y");
	output(m, "y", I32, -1, NULL);
	g = IMPORT_OK(c, save(m, "pad_i32.onnx"), 0);
	n = g ? find_op(g, IR_OP_PAD, 0) : NULL;
	CHECK(n && n->attr.pad.value == -7.0f && n->out[0]->type->dt == IR_DT_I32);
	ir_graph_free(g);
	ir_ctx_free(c);

	/* errors */
	const char *modes[] = {"reflect", "edge"};
	for (int i = 0; i < 2; i++) {
		m = model(13);
		input(m, "x", F32, 4, xd);
		init_i64(m, "pads", 8, pads);
		attr_s(m, node(m, "Pad", "pad", "x,pads", "y"), "mode", modes[i]);
		output(m, "y", F32, -1, NULL);
		EXPECT_ERR(save(m, "pad_mode.onnx"), NULL, IR_ERR_UNSUPPORTED, "node 'pad' (Pad)",
		           modes[i][0] == 'r' ? "mode 'reflect' is not supported (only 'constant')"
		                              : "mode 'edge' is not supported");
	}
	m = model(13);
	input(m, "x", F32, 4, xd);
	input(m, "pads", I64, 1, pd);
	node(m, "Pad", "pad", "x,pads", "y");
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "pad_dyn.onnx"), NULL, IR_ERR_UNSUPPORTED, "node 'pad' (Pad)",
	           "pads input 'pads' is computed at run time");
	m = model(13);
	input(m, "x", F32, 4, xd);
	init_i64(m, "pads", 6, pads);
	node(m, "Pad", "pad", "x,pads", "y");
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "pad_count.onnx"), NULL, IR_ERR_INPUT, "node 'pad' (Pad)",
	           "pads has 6 values, expected 8");
	m = model(13);
	int64_t iv64 = 2;
	input(m, "x", F32, 4, xd);
	init_i64(m, "pads", 8, pads);
	init(m, "value", I64, 0, NULL, &iv64, sizeof iv64);
	node(m, "Pad", "pad", "x,pads,value", "y");
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "pad_vtype.onnx"), NULL, IR_ERR_INPUT, "node 'pad' (Pad)",
	           "constant_value 'value' is i64[], expected a scalar of the data's dtype f32");
	m = model(9);
	input(m, "x", F32, 4, xd);
	node(m, "Pad", "pad", "x", "y");
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "pad_noattr.onnx"), NULL, IR_ERR_INPUT, "node 'pad' (Pad)",
	           "attribute 'pads' is required");
	m = model(13);
	int64_t crop[] = {0, 0, -4, 0, 0, 0, 0, 0};
	input(m, "x", F32, 4, xd);
	init_i64(m, "pads", 8, crop);
	node(m, "Pad", "pad", "x,pads", "y");
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "pad_crop.onnx"), NULL, IR_ERR_INPUT, "node 'pad' (Pad)", "crop all");
	m = model(13);
	int64_t huge[] = {0, 0, 1 << 30, 1 << 30, 0, 0, 0, 0};
	input(m, "x", F32, 4, xd);
	init_i64(m, "pads", 8, huge);
	node(m, "Pad", "pad", "x,pads", "y");
	output(m, "y", F32, -1, NULL);
	EXPECT_ERR(save(m, "pad_huge.onnx"), NULL, IR_ERR_INPUT, "node 'pad' (Pad)",
	           "padded shape of more than");
}

static void test_clip(void)
{
	IrCtx *c = ir_ctx_new();
	int64_t xd[] = {2, 5};
	float lo = -1.0f, hi = 6.0f;
	/* opset 7 (Clip-6): attributes, absent ones open */
	Model *m = model(7);
	input(m, "x", F32, 2, xd);
	attr_f(m, node(m, "Clip", "c0", "x", "a"), "max", 6.0f);
	Onnx__NodeProto *cn = node(m, "Clip", "c1", "a", "y");
	attr_f(m, cn, "min", -1.0f);
	attr_f(m, cn, "max", 2.0f);
	output(m, "y", F32, 2, xd);
	IrGraph *g = IMPORT_OK(c, save(m, "clip7.onnx"), 0);
	IrNode *c0 = g ? find_op(g, IR_OP_CLIP, 0) : NULL,
	       *c1 = g ? find_op(g, IR_OP_CLIP, 1) : NULL;
	CHECK(c0 && c0->attr.clip.min == -FLT_MAX && c0->attr.clip.max == 6.0f);
	CHECK(c1 && c1->attr.clip.min == -1.0f && c1->attr.clip.max == 2.0f);
	ir_graph_free(g);
	/* opsets 11-13: optional constant inputs; an empty name is absent; min > max gives max */
	for (int opset = 11; opset <= 13; opset++) {
		m = model(opset);
		input(m, "x", F32, 2, xd);
		init(m, "lo", F32, 0, NULL, &lo, sizeof lo);
		init(m, "hi", F32, 0, NULL, &hi, sizeof hi);
		node(m, "Clip", "c0", "x,lo", "a");
		node(m, "Clip", "c1", "a,,hi", "b");
		node(m, "Clip", "c2", "b,hi,lo", "d");
		node(m, "Clip", "c3", "d", "y");
		output(m, "y", F32, 2, xd);
		g = IMPORT_OK(c, save(m, "clip11.onnx"), 0);
		IrNode *k[4];
		for (int i = 0; i < 4; i++)
			k[i] = g ? find_op(g, IR_OP_CLIP, i) : NULL;
		CHECK_MSG(k[0] && k[0]->nin == 1 && k[0]->attr.clip.min == -1.0f &&
		              k[0]->attr.clip.max == FLT_MAX,
		          "opset %d", opset);
		CHECK(k[1] && k[1]->attr.clip.min == -FLT_MAX && k[1]->attr.clip.max == 6.0f);
		CHECK(k[2] && k[2]->attr.clip.min == -1.0f && k[2]->attr.clip.max == -1.0f);
		CHECK(k[3] && k[3]->attr.clip.min == -FLT_MAX && k[3]->attr.clip.max == FLT_MAX);
		CHECK(g && ir_graph_value(g, "lo")->role == IR_ROLE_CONST && g->params.n == 0);
		ir_graph_free(g);
	}
	ir_ctx_free(c);

	m = model(13);
	input(m, "x", F32, 2, xd);
	node(m, "Relu", "r", "x", "bound");
	node(m, "Clip", "clip", "x,bound", "y");
	output(m, "y", F32, 2, xd);
	EXPECT_ERR(save(m, "clip_dyn.onnx"), NULL, IR_ERR_UNSUPPORTED, "node 'clip' (Clip)",
	           "min input 'bound' is computed at run time");
	m = model(13);
	float nan = NAN;
	input(m, "x", F32, 2, xd);
	init(m, "lo", F32, 0, NULL, &nan, sizeof nan);
	node(m, "Clip", "clip", "x,lo", "y");
	output(m, "y", F32, 2, xd);
	EXPECT_ERR(save(m, "clip_nan.onnx"), NULL, IR_ERR_INPUT, "node 'clip' (Clip)", "NaN");
	m = model(9);
	input(m, "x", F32, 2, xd);
	init(m, "lo", F32, 0, NULL, &lo, sizeof lo);
	node(m, "Clip", "clip", "x,lo", "y");
	output(m, "y", F32, 2, xd);
	EXPECT_ERR(save(m, "clip_in9.onnx"), NULL, IR_ERR_INPUT, "node 'clip' (Clip)",
	           "has 2 inputs, expected 1 at opset 9");
	m = model(13);
	int64_t i8d[] = {4};
	input(m, "x", ONNX__TENSOR_PROTO__DATA_TYPE__INT8, 1, i8d);
	node(m, "Clip", "clip", "x", "y");
	output(m, "y", ONNX__TENSOR_PROTO__DATA_TYPE__INT8, 1, i8d);
	EXPECT_ERR(save(m, "clip_i8.onnx"), NULL, IR_ERR_UNSUPPORTED, "node 'clip' (Clip)",
	           "f32 only");
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/lnsc_onnx_XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	IrCtx *c = ir_ctx_new();
	CHECK_MSG(fe_import_check(c) == 0, "%s", ir_diag_text(c));
	ir_ctx_free(c);
	test_mlp();
	test_example_mlp();
	test_softmax_opsets();
	test_squeeze();
	test_reshape();
	test_dropout();
	test_gemm();
	test_matmul();
	test_move_ops();
	test_constant();
	test_cast();
	test_typed_fields();
	test_external();
	test_truncated();
	test_malformed();
	test_known_inputs();
	test_zero_size();
	test_output_names();
	test_value_rename();
	test_io_types();
	test_tensor_io();
	test_conv();
	test_batch_norm();
	test_pools();
	test_pad();
	test_clip();
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return t_finish("test_onnx_import");
}
