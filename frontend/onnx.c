/* onnx.c: reads an ONNX model file and builds the IrGraph, checking everything on the way.
 *
 * The importer works in phases, each reporting every problem it finds before the import
 * gives up, so a user sees all unsupported ops (in one message) or all dangling references at
 * once: parse and opset; definitions (initializers decoded, graph inputs, node outputs, each
 * name defined once); op support; references; graph input/output types (tensors only); a
 * topological order of the nodes (Kahn's algorithm with a min-heap, so an already sorted
 * model keeps its order and an unsorted one still imports; a cycle is reported with the nodes
 * on it); then values for graph inputs and initializers, one import hook per node
 * (onnx_ops.c), and the graph outputs (fe_onnx_check stops before the values: it needs no
 * input data). A symbol table (open addressing over the model's tensor names) maps each name
 * to its definition, its constant data if any, and its IR value once built. Uses decide
 * roles: only tensors that some node computes on (not a Reshape shape or a Dropout ratio: the
 * hooks' const_in masks) are trainable when FLOAT initializers (canon later makes
 * BatchNormalization's running statistics state), and a graph input whose data the caller
 * gave is a CONST when some node reads it as a constant. An ONNX output the IR op lacks (an
 * op's extra_out) must be unread. A graph output keeps its ONNX name; one that no node
 * produces gets an Identity (output_copy).
 * All scratch memory lives in one arena freed at the end; the graph owns what it keeps.
 */
#include "frontend/fe.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/onnx.pb-c.h"

enum { OPSET_MIN = 7, OPSET_MAX = 17 };

typedef enum { DEF_INPUT, DEF_INIT, DEF_NODE } DefKind;

typedef struct Sym {
	const char *name;
	DefKind kind;
	int index;     /* graph input, initializer or node index */
	int data_use;  /* some node computes on it, or it is a graph output */
	int const_use; /* some node reads it as a constant (its hook's const_in mask) */
	FeConst cst;   /* initializers and Constant outputs: the data (type NULL otherwise) */
	IrValue *v;
} Sym;

struct FeImport {
	IrCtx *c;
	IrGraph *g;
	const char *path;
	const FeOptions *o;
	IrArena *scratch;
	char *dir; /* realpath of the model's folder, or NULL */
	const Onnx__GraphProto *gp;
	int opset;
	Sym **tab;
	size_t cap;
	const char **node_name; /* per node, ONNX order */
	IrOp *node_op;          /* per node; IR_OP_COUNT when unsupported */
	int *order;             /* topological order of node indices */
	int shapes_changed; /* an input shape was overridden: declared output shapes may differ */
	int check_only;     /* fe_onnx_check: stop after the checks that need no input data */
};

static const char *str(const char *s)
{
	return s ? s : "";
}

/* ---- symbol table ---- */

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static Sym **sym_slot(FeImport *im, const char *name)
{
	size_t i = hash_str(name) & (im->cap - 1);
	while (im->tab[i] && strcmp(im->tab[i]->name, name))
		i = (i + 1) & (im->cap - 1);
	return &im->tab[i];
}

static Sym *sym_find(FeImport *im, const char *name)
{
	return *sym_slot(im, name);
}

static const char *def_str(FeImport *im, const Sym *s)
{
	switch (s->kind) {
	case DEF_INPUT:
		return "a graph input";
	case DEF_INIT:
		return "an initializer";
	default: {
		const Onnx__NodeProto *p = im->gp->node[s->index];
		return ir_arena_printf(im->scratch, "node '%s' (%s)", im->node_name[s->index],
		                       str(p->op_type));
	}
	}
}

/* Defines name; a second definition is an error. Returns the symbol or NULL. */
static Sym *sym_define(FeImport *im, const char *name, DefKind kind, int index)
{
	Sym **slot = sym_slot(im, name);
	Sym tmp = {.name = name, .kind = kind, .index = index};
	if (*slot) {
		ir_error(im->c, IR_ERR_INPUT, "%s: tensor '%s' is defined twice: by %s and by %s",
		         im->path, name, def_str(im, *slot), def_str(im, &tmp));
		return NULL;
	}
	Sym *s = ir_arena_alloc(im->scratch, sizeof *s);
	*s = tmp;
	*slot = s;
	return s;
}

/* ---- helpers for the hooks ---- */

void fe_node_error(const FeNode *n, IrStatus st, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ir_error(n->g->ctx, st, "%s: node '%s' (%s): %s", n->imp->path, n->name, n->op_type, msg);
}

int fe_node_arity(const FeNode *n, int required, int max)
{
	if (n->nin < required || n->nin > max) {
		if (required == max)
			fe_node_error(n, IR_ERR_INPUT, "has %d inputs, expected %d at opset %d",
			              n->nin, required, n->opset);
		else
			fe_node_error(n, IR_ERR_INPUT,
			              "has %d inputs, expected %d to %d at opset %d", n->nin,
			              required, max, n->opset);
		return -1;
	}
	for (int i = 0; i < required; i++)
		if (!n->in[i]) {
			fe_node_error(n, IR_ERR_INPUT, "input %d is required but absent", i);
			return -1;
		}
	return 0;
}

static const char *attr_type_name(int t)
{
	switch (t) {
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
		return "a float";
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
		return "an int";
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
		return "a string";
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
		return "a tensor";
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH:
		return "a graph";
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
		return "a list of floats";
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
		return "a list of ints";
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
		return "a list of strings";
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS:
		return "a list of tensors";
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS:
		return "a list of graphs";
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR:
		return "a sparse tensor";
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS:
		return "a list of sparse tensors";
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO:
		return "a type";
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS:
		return "a list of types";
	default:
		return "of no type";
	}
}

/* The type of an attribute: its type field, or for IR version 1 files the field that is set. */
static int attr_type(const Onnx__AttributeProto *a)
{
	if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED)
		return a->type;
	if (a->has_f)
		return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
	if (a->has_i)
		return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
	if (a->has_s)
		return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
	if (a->t)
		return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
	if (a->g)
		return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
	if (a->n_floats)
		return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
	if (a->n_ints)
		return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
	if (a->n_strings)
		return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS;
	return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED;
}

int fe_attr_find(const FeNode *n, const char *name, int type, const Onnx__AttributeProto **out)
{
	*out = NULL;
	for (size_t i = 0; i < n->p->n_attribute; i++) {
		const Onnx__AttributeProto *a = n->p->attribute[i];
		if (!a || !a->name || strcmp(a->name, name))
			continue;
		int t = attr_type(a);
		if (t != type) {
			fe_node_error(n, IR_ERR_INPUT, "attribute '%s' must be %s, but it is %s",
			              name, attr_type_name(type), attr_type_name(t));
			return -1;
		}
		*out = a;
		return 1;
	}
	return 0;
}

int fe_attr_int(const FeNode *n, const char *name, int64_t def, int64_t *out)
{
	const Onnx__AttributeProto *a;
	int r = fe_attr_find(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, &a);
	*out = r == 1 ? a->i : def;
	return r;
}

int fe_attr_float(const FeNode *n, const char *name, float def, float *out)
{
	const Onnx__AttributeProto *a;
	int r = fe_attr_find(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, &a);
	*out = r == 1 ? a->f : def;
	return r;
}

int fe_attr_ints(const FeNode *n, const char *name, int max, int64_t *out, int *count)
{
	const Onnx__AttributeProto *a;
	int r = fe_attr_find(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS, &a);
	*count = 0;
	if (r != 1)
		return r;
	if (a->n_ints > (size_t)max) {
		fe_node_error(n, IR_ERR_INPUT, "attribute '%s' has %zu values, at most %d allowed",
		              name, a->n_ints, max);
		return -1;
	}
	for (size_t i = 0; i < a->n_ints; i++)
		out[i] = a->ints[i];
	*count = (int)a->n_ints;
	return 1;
}

int fe_attr_tensor(const FeNode *n, const char *name, FeConst *out)
{
	const Onnx__AttributeProto *a;
	int r = fe_attr_find(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR, &a);
	if (r != 1)
		return r;
	if (!a->t) {
		fe_node_error(n, IR_ERR_INPUT, "attribute '%s' has no tensor", name);
		return -1;
	}
	FeImport *im = n->imp;
	const char *what = ir_arena_printf(im->scratch, "%s: node '%s' (%s): attribute '%s'",
	                                   im->path, n->name, n->op_type, name);
	return fe_tensor_decode(im->c, im->scratch, a->t, what, im->dir, out) ? -1 : 1;
}

void fe_dynamic_error(const FeNode *n, int i, const char *what)
{
	const char *tname = str(n->p->input[i]);
	const Sym *s = sym_find(n->imp, tname);
	fe_node_error(n, IR_ERR_UNSUPPORTED,
	              "%s input '%s' is computed at run time: dynamic %s is not supported%s%s%s",
	              what, tname, what,
	              s && s->kind == DEF_INPUT ? " (it is a graph input: `lnsc eval/grad --input "
	                                        : "",
	              s && s->kind == DEF_INPUT ? tname : "",
	              s && s->kind == DEF_INPUT ? "=FILE.pb` supplies its value)" : "");
}

int fe_const_ints(const FeNode *n, int i, const char *what, int max, int64_t *out, int *count)
{
	const FeConst *k = n->cst[i];
	const char *tname = str(n->p->input[i]);
	if (!k) {
		fe_dynamic_error(n, i, what);
		return -1;
	}
	IrDType dt = k->type->dt;
	if ((dt != IR_DT_I64 && dt != IR_DT_I32) || k->type->rank > 1) {
		fe_node_error(n, IR_ERR_INPUT, "%s input '%s' must be a 1-D int64 tensor", what,
		              tname);
		return -1;
	}
	if (k->type->numel > max) {
		fe_node_error(n, IR_ERR_INPUT,
		              "%s input '%s' has %" PRId64 " values, at most %d allowed", what,
		              tname, k->type->numel, max);
		return -1;
	}
	for (int64_t j = 0; j < k->type->numel; j++)
		out[j] =
		    dt == IR_DT_I64 ? ((const int64_t *)k->data)[j] : ((const int32_t *)k->data)[j];
	*count = (int)k->type->numel;
	return 0;
}

static const char *fresh(FeImport *im, const char *prefix)
{
	for (int k = 0;; k++) {
		const char *s = k ? ir_arena_printf(im->scratch, "%s.%d", prefix, k) : prefix;
		if (!sym_find(im, s) && !ir_graph_value(im->g, s))
			return ir_arena_strdup(im->g->arena, s);
	}
}

const char *fe_fresh_name(FeNode *n, const char *prefix)
{
	return fresh(n->imp, prefix);
}

/* ir_build after the verifier's attribute checks, whose failures (a pad that makes a tensor
 * too large) name the ONNX node. */
static int build(FeNode *n, IrOp op, const char *name, int nin, IrValue *const *in,
                 const IrAttrs *attr, const char *const *out_names, IrNode **res)
{
	IrAttrs zero;
	char msg[256];
	if (!attr) {
		memset(&zero, 0, sizeof zero);
		attr = &zero;
	}
	IrNode tmp = {.op = op, .name = name, .nin = nin, .in = (IrValue **)in, .attr = *attr};
	*res = NULL;
	if (ir_verify_attrs(&tmp, msg, sizeof msg)) {
		fe_node_error(n, IR_ERR_INPUT, "%s", msg);
		return -1;
	}
	*res = ir_build(n->g, op, name, nin, in, attr, out_names);
	return *res ? 0 : -1;
}

int fe_emit(FeNode *n, IrOp op, int nin, IrValue *const *in, const IrAttrs *attr)
{
	FeImport *im = n->imp;
	const Onnx__NodeProto *p = n->p;
	int nout = ir_op_info[op].nout;
	const char *names[8] = {0};
	if (nout > 8) {
		fe_node_error(n, IR_ERR_UNSUPPORTED, "op %s has too many outputs", ir_op_name(op));
		return -1;
	}
	for (int k = 0; k < nout; k++) {
		if (k < (int)p->n_output && *p->output[k])
			names[k] = p->output[k];
		else if (op == IR_OP_DROPOUT && k == 1) /* the mask the IR node always has */
			names[k] =
			    fe_fresh_name(n, ir_arena_printf(im->scratch, "%s/mask", n->name));
		else
			names[k] =
			    fe_fresh_name(n, ir_arena_printf(im->scratch, "%s/out%d", n->name, k));
	}
	IrNode *node;
	if (build(n, op, n->name, nin, in, attr, names, &node))
		return -1;
	for (int k = 0; k < nout && k < (int)p->n_output; k++)
		if (*p->output[k])
			sym_find(im, p->output[k])->v = node->out[k];
	return 0;
}

IrValue *fe_emit_aux(FeNode *n, IrOp op, const char *suffix, int nin, IrValue *const *in,
                     const IrAttrs *attr)
{
	FeImport *im = n->imp;
	const char *name = ir_arena_printf(im->g->arena, "%s/%s", n->name, suffix);
	const char *out = fe_fresh_name(n, name);
	IrNode *node;
	if (build(n, op, name, nin, in, attr, &out, &node))
		return NULL;
	return node->out[0];
}

/* A value without producer (ir_value_new lists inputs and params in g->inputs / g->params). */
static IrValue *add_value(FeImport *im, const char *name, const IrType *t, IrRole role,
                          const void *data)
{
	return ir_value_new(im->g, name, t, role, data, data ? t : NULL);
}

int fe_emit_const(FeNode *n, const IrType *t, const void *data)
{
	const Onnx__NodeProto *p = n->p;
	const char *name =
	    p->n_output > 0 && *p->output[0] ? p->output[0] : fe_fresh_name(n, n->name);
	IrValue *v = add_value(n->imp, name, t, IR_ROLE_CONST, data);
	if (!v)
		return -1;
	if (p->n_output > 0 && *p->output[0]) {
		Sym *s = sym_find(n->imp, p->output[0]);
		s->v = v;
		s->cst.type = t;
		s->cst.data = v->init;
	}
	return 0;
}

/* ---- phases ---- */

static int read_opset(IrCtx *c, const char *path, const Onnx__ModelProto *m, int *opset)
{
	for (size_t i = 0; i < m->n_opset_import; i++) {
		const Onnx__OperatorSetIdProto *o = m->opset_import[i];
		const char *d = str(o->domain);
		if (*d && strcmp(d, "ai.onnx"))
			continue;
		if (!o->has_version)
			break;
		if (o->version < OPSET_MIN || o->version > OPSET_MAX) {
			ir_error(c, IR_ERR_UNSUPPORTED,
			         "%s: opset %" PRId64
			         " is not supported (lnsc supports opsets %d to %d)",
			         path, o->version, OPSET_MIN, OPSET_MAX);
			return -1;
		}
		*opset = (int)o->version;
		return 0;
	}
	ir_error(c, IR_ERR_INPUT,
	         "%s: the model imports no opset version of the default ONNX domain", path);
	return -1;
}

/* Initializers (decoded), graph inputs and node outputs into the symbol table. */
static void define_all(FeImport *im)
{
	const Onnx__GraphProto *gp = im->gp;
	size_t n = gp->n_initializer + gp->n_input;
	for (size_t j = 0; j < gp->n_node; j++)
		n += gp->node[j]->n_output;
	for (im->cap = 16; im->cap < 2 * n + 16; im->cap *= 2)
		;
	im->tab = ir_arena_alloc(im->scratch, im->cap * sizeof *im->tab);
	im->node_name = ir_arena_alloc(im->scratch, (gp->n_node + 1) * sizeof *im->node_name);
	for (size_t j = 0; j < gp->n_node; j++) {
		const Onnx__NodeProto *p = gp->node[j];
		const char *op = *str(p->op_type) ? p->op_type : "node";
		im->node_name[j] =
		    *str(p->name) ? p->name : ir_arena_printf(im->g->arena, "%s_%zu", op, j);
	}

	for (size_t i = 0; i < gp->n_initializer; i++) {
		const Onnx__TensorProto *t = gp->initializer[i];
		if (!*str(t->name)) {
			ir_error(im->c, IR_ERR_INPUT, "%s: initializer #%zu has no name", im->path,
			         i);
			continue;
		}
		Sym *s = sym_define(im, t->name, DEF_INIT, (int)i);
		if (!s)
			continue;
		const char *what =
		    ir_arena_printf(im->scratch, "%s: initializer '%s'", im->path, t->name);
		fe_tensor_decode(im->c, im->scratch, t, what, im->dir, &s->cst);
	}
	if (gp->n_sparse_initializer)
		ir_error(im->c, IR_ERR_UNSUPPORTED, "%s: sparse initializers are not supported",
		         im->path);
	for (size_t i = 0; i < gp->n_input; i++) {
		const char *name = str(gp->input[i]->name);
		if (!*name) {
			ir_error(im->c, IR_ERR_INPUT, "%s: graph input #%zu has no name", im->path,
			         i);
			continue;
		}
		const Sym *s = sym_find(im, name);
		if (s && s->kind == DEF_INIT)
			continue; /* an initializer listed as input: a param or const */
		sym_define(im, name, DEF_INPUT, (int)i);
	}
	for (size_t j = 0; j < gp->n_node; j++) {
		const Onnx__NodeProto *p = gp->node[j];
		for (size_t k = 0; k < p->n_output; k++)
			if (*p->output[k])
				sym_define(im, p->output[k], DEF_NODE, (int)j);
	}
}

/* Every node's IrOp; all unsupported ops in one message. */
static void resolve_ops(FeImport *im)
{
	const Onnx__GraphProto *gp = im->gp;
	im->node_op = ir_arena_alloc(im->scratch, (gp->n_node + 1) * sizeof *im->node_op);
	char *list = "";
	int nbad = 0;
	for (size_t j = 0; j < gp->n_node; j++) {
		const Onnx__NodeProto *p = gp->node[j];
		const char *dom = str(p->domain), *ty = str(p->op_type);
		IrOp op = IR_OP_COUNT;
		im->node_op[j] = IR_OP_COUNT;
		if (!*ty) {
			ir_error(im->c, IR_ERR_INPUT, "%s: node '%s' has no op_type", im->path,
			         im->node_name[j]);
			continue;
		}
		int std = !*dom || !strcmp(dom, "ai.onnx");
		if (std && ir_op_lookup(ty, &op) == 0 && ir_op_has(op, IR_OPF_ONNX) &&
		    fe_import_table[op].fn) {
			im->node_op[j] = op;
			continue;
		}
		list =
		    ir_arena_printf(im->scratch, "%s%snode '%s' (%s%s%s)", list, nbad ? ", " : "",
		                    im->node_name[j], std ? "" : dom, std ? "" : ".", ty);
		nbad++;
	}
	if (nbad)
		ir_error(im->c, IR_ERR_UNSUPPORTED, "%s: %d unsupported op%s: %s", im->path, nbad,
		         nbad > 1 ? "s" : "", list);
}

/* Every input of every node and every graph output names a defined tensor. */
static void check_refs(FeImport *im)
{
	const Onnx__GraphProto *gp = im->gp;
	for (size_t j = 0; j < gp->n_node; j++) {
		const Onnx__NodeProto *p = gp->node[j];
		if (p->n_input > IR_MAX_IN) {
			ir_error(im->c, IR_ERR_UNSUPPORTED,
			         "%s: node '%s' (%s): %zu inputs, at most %d "
			         "supported",
			         im->path, im->node_name[j], str(p->op_type), p->n_input,
			         IR_MAX_IN);
			continue;
		}
		for (size_t i = 0; i < p->n_input; i++)
			if (*p->input[i] && !sym_find(im, p->input[i]))
				ir_error(
				    im->c, IR_ERR_INPUT,
				    "%s: node '%s' (%s): input '%s' is not defined by any node, "
				    "initializer or graph input",
				    im->path, im->node_name[j], str(p->op_type), p->input[i]);
	}
	for (size_t i = 0; i < gp->n_output; i++) {
		const char *name = str(gp->output[i]->name);
		if (!*name)
			ir_error(im->c, IR_ERR_INPUT, "%s: graph output #%zu has no name", im->path,
			         i);
		else if (!sym_find(im, name))
			ir_error(im->c, IR_ERR_INPUT,
			         "%s: graph output '%s' is not produced by any node, initializer "
			         "or input",
			         im->path, name);
	}
}

/* A TypeProto as ONNX writes types ("optional(seq(tensor(float)))"), for messages. */
static const char *type_str(FeImport *im, const Onnx__TypeProto *t, int depth)
{
	if (!t || depth > 8)
		return "?";
	switch (t->value_case) {
	case ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE:
		return ir_arena_printf(im->scratch, "tensor(%s)",
		                       fe_onnx_dtype_name(t->tensor_type->elem_type));
	case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE:
		return ir_arena_printf(im->scratch, "seq(%s)",
		                       type_str(im, t->sequence_type->elem_type, depth + 1));
	case ONNX__TYPE_PROTO__VALUE_MAP_TYPE:
		return ir_arena_printf(im->scratch, "map(%s,%s)",
		                       fe_onnx_dtype_name(t->map_type->key_type),
		                       type_str(im, t->map_type->value_type, depth + 1));
	case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE:
		return ir_arena_printf(im->scratch, "optional(%s)",
		                       type_str(im, t->optional_type->elem_type, depth + 1));
	case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE:
		return ir_arena_printf(im->scratch, "sparse_tensor(%s)",
		                       fe_onnx_dtype_name(t->sparse_tensor_type->elem_type));
	default:
		return "?";
	}
}

/* Graph inputs (but initializers listed as inputs) and outputs are tensors: a sequence,
 * map, optional or sparse tensor is unsupported, an input without type is malformed. */
static void check_io_types(FeImport *im)
{
	const Onnx__GraphProto *gp = im->gp;
	for (size_t k = 0; k < gp->n_input + gp->n_output; k++) {
		int is_in = k < gp->n_input;
		const Onnx__ValueInfoProto *vi = is_in ? gp->input[k] : gp->output[k - gp->n_input];
		const Sym *s = sym_find(im, str(vi->name));
		if (!*str(vi->name) || (is_in && (!s || s->kind != DEF_INPUT)))
			continue;
		const Onnx__TypeProto *t = vi->type;
		int set = t && t->value_case != ONNX__TYPE_PROTO__VALUE__NOT_SET;
		if (set && t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
			ir_error(im->c, IR_ERR_UNSUPPORTED,
			         "%s: graph %s '%s' is %s: only tensor inputs and outputs are "
			         "supported",
			         im->path, is_in ? "input" : "output", vi->name,
			         type_str(im, t, 0));
		else if (is_in && !set)
			ir_error(im->c, IR_ERR_INPUT, "%s: input '%s' has no type", im->path,
			         vi->name);
	}
}

/* The producing node of input i of node j, or -1. */
static int producer(FeImport *im, size_t j, size_t i)
{
	const char *name = im->gp->node[j]->input[i];
	if (!*name)
		return -1;
	const Sym *s = sym_find(im, name);
	return s && s->kind == DEF_NODE ? s->index : -1;
}

static void heap_push(int *h, int *n, int x)
{
	int i = (*n)++;
	for (; i > 0 && h[(i - 1) / 2] > x; i = (i - 1) / 2)
		h[i] = h[(i - 1) / 2];
	h[i] = x;
}

static int heap_pop(int *h, int *n)
{
	int top = h[0], x = h[--*n], i = 0;
	for (;;) {
		int k = 2 * i + 1;
		if (k >= *n)
			break;
		if (k + 1 < *n && h[k + 1] < h[k])
			k++;
		if (h[k] >= x)
			break;
		h[i] = h[k];
		i = k;
	}
	h[i] = x;
	return top;
}

/* Names the nodes on one cycle among the nodes Kahn's algorithm could not order. */
static void report_cycle(FeImport *im, const char *done)
{
	int n = (int)im->gp->n_node, u = 0;
	int *pos = ir_arena_alloc(im->scratch, (size_t)(n + 1) * sizeof *pos);
	int *path = ir_arena_alloc(im->scratch, (size_t)(n + 1) * sizeof *path);
	while (done[u])
		u++;
	for (int i = 0; i < n; i++)
		pos[i] = -1;
	int len = 0;
	while (pos[u] < 0) {
		pos[u] = len;
		path[len++] = u;
		const Onnx__NodeProto *p = im->gp->node[u];
		int next = -1;
		for (size_t i = 0; i < p->n_input && next < 0; i++) {
			int q = producer(im, (size_t)u, i);
			if (q >= 0 && !done[q])
				next = q;
		}
		if (next < 0)
			break; /* cannot happen: an unordered node waits on another */
		u = next;
	}
	/* path runs against the data flow; print the cycle along it. */
	char *list = "";
	for (int k = len - 1; k >= pos[u] && pos[u] >= 0; k--) {
		int j = path[k];
		list = ir_arena_printf(im->scratch, "%s%s'%s' (%s)", list, *list ? " -> " : "",
		                       im->node_name[j], str(im->gp->node[j]->op_type));
	}
	ir_error(im->c, IR_ERR_INPUT, "%s: the graph has a cycle: %s -> '%s'", im->path, list,
	         im->node_name[path[len - 1]]);
}

/* Kahn's algorithm with a min-heap: the smallest ready index first (stable). */
static int toposort(FeImport *im)
{
	int n = (int)im->gp->n_node, ne = 0;
	int *indeg = ir_arena_alloc(im->scratch, (size_t)(n + 1) * sizeof(int));
	int *start = ir_arena_alloc(im->scratch, (size_t)(n + 2) * sizeof(int));
	for (int j = 0; j < n; j++)
		for (size_t i = 0; i < im->gp->node[j]->n_input; i++) {
			int q = producer(im, (size_t)j, i);
			if (q >= 0) {
				indeg[j]++;
				start[q + 1]++;
				ne++;
			}
		}
	for (int j = 0; j < n; j++)
		start[j + 1] += start[j];
	int *adj = ir_arena_alloc(im->scratch, (size_t)(ne + 1) * sizeof(int));
	int *fill = ir_arena_alloc(im->scratch, (size_t)(n + 1) * sizeof(int));
	for (int j = 0; j < n; j++)
		for (size_t i = 0; i < im->gp->node[j]->n_input; i++) {
			int q = producer(im, (size_t)j, i);
			if (q >= 0)
				adj[start[q] + fill[q]++] = j;
		}
	int *heap = ir_arena_alloc(im->scratch, (size_t)(n + 1) * sizeof(int)), nh = 0, nord = 0;
	char *done = ir_arena_alloc(im->scratch, (size_t)n + 1);
	im->order = ir_arena_alloc(im->scratch, (size_t)(n + 1) * sizeof(int));
	for (int j = 0; j < n; j++)
		if (!indeg[j])
			heap_push(heap, &nh, j);
	while (nh) {
		int u = heap_pop(heap, &nh);
		done[u] = 1;
		im->order[nord++] = u;
		for (int k = start[u]; k < start[u + 1]; k++)
			if (--indeg[adj[k]] == 0)
				heap_push(heap, &nh, adj[k]);
	}
	if (nord < n) {
		report_cycle(im, done);
		return -1;
	}
	return 0;
}

static void mark_data_uses(FeImport *im)
{
	const Onnx__GraphProto *gp = im->gp;
	for (size_t j = 0; j < gp->n_node; j++) {
		const Onnx__NodeProto *p = gp->node[j];
		unsigned mask = fe_import_table[im->node_op[j]].const_in;
		for (size_t i = 0; i < p->n_input; i++) {
			if (!*p->input[i])
				continue;
			Sym *s = sym_find(im, p->input[i]);
			if (i < 32 && (mask >> i & 1u))
				s->const_use = 1;
			else
				s->data_use = 1;
		}
	}
	for (size_t i = 0; i < gp->n_output; i++)
		sym_find(im, gp->output[i]->name)->data_use = 1;
}

static const FeInputShape *shape_override(const FeImport *im, const char *name)
{
	if (!im->o)
		return NULL;
	for (int i = 0; i < im->o->nshapes; i++)
		if (im->o->shapes[i].name && !strcmp(im->o->shapes[i].name, name))
			return &im->o->shapes[i];
	return NULL;
}

/* The declared element type and shape of a tensor ValueInfo (NULL: not a tensor). */
static const Onnx__TypeProto__Tensor *tensor_info(const Onnx__ValueInfoProto *vi)
{
	if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
		return NULL;
	return vi->type->tensor_type;
}

/* A given shape may change the first (batch) dimension, but not the rank or any other
 * dimension the model declares as a number. */
static int override_conflicts(FeImport *im, const char *what, const Onnx__TensorShapeProto *sh,
                              const FeInputShape *ov)
{
	if (!sh)
		return 0;
	int bad = (int)sh->n_dim != ov->rank;
	for (int d = 1; !bad && d < ov->rank; d++)
		bad = sh->dim[d]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
		      sh->dim[d]->dim_value != ov->dims[d];
	if (!bad)
		return 0;
	char have[256], want[256];
	size_t n = (size_t)snprintf(have, sizeof have, "[");
	for (int d = 0; d < ov->rank && n < sizeof have; d++)
		n += (size_t)snprintf(have + n, sizeof have - n, "%s%lld", d ? "," : "",
		                      (long long)ov->dims[d]);
	snprintf(have + n, n < sizeof have ? sizeof have - n : 0, "]");
	n = (size_t)snprintf(want, sizeof want, "[");
	for (size_t d = 0; d < sh->n_dim && n < sizeof want; d++) {
		const Onnx__TensorShapeProto__Dimension *dim = sh->dim[d];
		if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
			n += (size_t)snprintf(want + n, sizeof want - n, "%s%lld", d ? "," : "",
			                      (long long)dim->dim_value);
		else
			n += (size_t)snprintf(want + n, sizeof want - n, "%s%s", d ? "," : "",
			                      dim->value_case ==
			                              ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
			                          ? str(dim->dim_param)
			                          : "?");
	}
	snprintf(want + n, n < sizeof want ? sizeof want - n : 0, "]");
	ir_error(im->c, IR_ERR_INPUT, "%s: the tensor given is %s, the model declares %s", what,
	         have, want);
	return -1;
}

/* The shape of a data input: the override, or the model's with the batch for a dynamic
 * first dim. 0 or -1. */
static int input_shape(FeImport *im, const char *name, const Onnx__TypeProto__Tensor *tt, int *rank,
                       int64_t *dims)
{
	const char *what = ir_arena_printf(im->scratch, "%s: input '%s'", im->path, name);
	const Onnx__TensorShapeProto *sh = tt->shape;
	const FeInputShape *ov = shape_override(im, name);
	if (ov) {
		if (fe_check_dims(im->c, what, ov->rank, ov->dims))
			return -1;
		*rank = ov->rank;
		memcpy(dims, ov->dims, (size_t)ov->rank * sizeof *dims);
		if (override_conflicts(im, what, sh, ov))
			return -1;
		int same = sh && (int)sh->n_dim == ov->rank;
		for (int d = 0; same && d < ov->rank; d++)
			same = sh->dim[d]->value_case !=
			           ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
			       sh->dim[d]->dim_value == ov->dims[d];
		im->shapes_changed |= !same;
		return 0;
	}
	if (!sh) {
		ir_error(im->c, IR_ERR_INPUT, "%s: the model gives no shape (pass one explicitly)",
		         what);
		return -1;
	}
	if (sh->n_dim > IR_MAX_RANK)
		return fe_check_dims(im->c, what, (int64_t)sh->n_dim, NULL);
	for (size_t d = 0; d < sh->n_dim; d++) {
		const Onnx__TensorShapeProto__Dimension *dim = sh->dim[d];
		if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
			dims[d] = dim->dim_value;
			continue;
		}
		const char *param =
		    dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
		        ? str(dim->dim_param)
		        : "";
		if (d == 0 && im->o && im->o->batch > 0) {
			dims[0] = im->o->batch;
			continue;
		}
		if (d == 0)
			ir_error(im->c, IR_ERR_INPUT,
			         "%s: the first dimension%s%s%s is dynamic: give a batch size",
			         what, *param ? " '" : "", param, *param ? "'" : "");
		else
			ir_error(
			    im->c, IR_ERR_INPUT,
			    "%s: dimension %zu%s%s%s is dynamic: pass the input's shape explicitly",
			    what, d, *param ? " '" : "", param, *param ? "'" : "");
		return -1;
	}
	*rank = (int)sh->n_dim;
	return fe_check_dims(im->c, what, *rank, dims);
}

/* A graph input whose data the caller gave and that some node reads as a constant: a CONST
 * value with that data (the hooks see it in FeNode.cst), listed in g->const_inputs. */
static void make_known_input(FeImport *im, Sym *s, const IrType *t, const FeConst *k)
{
	if (k->type->dt != t->dt || !ir_type_same_shape(k->type, t)) {
		char a[128], b[128];
		ir_error(im->c, IR_ERR_INPUT,
		         "%s: input '%s': the data given is %s, the model needs %s", im->path,
		         s->name, ir_type_str(k->type, 0, a, sizeof a),
		         ir_type_str(t, 0, b, sizeof b));
		return;
	}
	static const uint64_t none = 0; /* a 0-element tensor may come without data */
	assert(k->data || t->numel == 0);
	s->v = add_value(im, s->name, t, IR_ROLE_CONST, k->data ? k->data : &none);
	if (!s->v)
		return;
	s->cst.type = t;
	s->cst.data = s->v->init;
	ir_vec_push(&im->g->const_inputs, s->v);
}

/* INPUT values for the graph inputs without initializer (CONST for those whose data the
 * caller gave, when a node needs them as constants); PARAM/CONST for initializers. */
static void make_values(FeImport *im)
{
	const Onnx__GraphProto *gp = im->gp;
	/* An input of a dtype lnsc cannot hold makes the model unsupported whatever its shapes:
	 * say that alone rather than also judging the shapes given for the other inputs. */
	int unsupported = 0;
	for (size_t i = 0; i < gp->n_input; i++) {
		const Onnx__TypeProto__Tensor *tt = tensor_info(gp->input[i]);
		IrDType dt;
		Sym *s = sym_find(im, str(gp->input[i]->name));
		if (s && s->kind == DEF_INPUT && tt && tt->has_elem_type && tt->elem_type &&
		    fe_dtype_from_onnx(tt->elem_type, &dt))
			unsupported = 1;
	}
	for (size_t i = 0; i < gp->n_input; i++) {
		const Onnx__ValueInfoProto *vi = gp->input[i];
		Sym *s = sym_find(im, str(vi->name));
		if (!s || s->kind != DEF_INPUT || s->index != (int)i)
			continue;
		const Onnx__TypeProto__Tensor *tt = tensor_info(vi);
		int et = tt && tt->has_elem_type ? tt->elem_type : 0;
		IrDType dt;
		if (!tt)
			continue; /* reported by check_io_types */
		if (!et) {
			ir_error(im->c, IR_ERR_INPUT, "%s: input '%s' has no element type",
			         im->path, s->name);
			continue;
		}
		if (fe_dtype_from_onnx(et, &dt)) {
			ir_error(im->c, IR_ERR_UNSUPPORTED,
			         "%s: input '%s': dtype %s is not supported", im->path, s->name,
			         fe_onnx_dtype_name(et));
			continue;
		}
		int rank = 0;
		int64_t dims[IR_MAX_RANK];
		if (unsupported || input_shape(im, s->name, tt, &rank, dims))
			continue;
		const IrType *t = ir_type(im->c, dt, rank, dims);
		const FeInputShape *ov = shape_override(im, s->name);
		if (t && ov && ov->value.type && s->const_use)
			make_known_input(im, s, t, &ov->value);
		else if (t)
			s->v = add_value(im, s->name, t, IR_ROLE_INPUT, NULL);
	}
	for (size_t i = 0; i < gp->n_initializer; i++) {
		Sym *s = sym_find(im, str(gp->initializer[i]->name));
		if (!s || s->kind != DEF_INIT || s->index != (int)i || !s->cst.type)
			continue;
		IrRole role =
		    s->cst.type->dt == IR_DT_F32 && s->data_use ? IR_ROLE_PARAM : IR_ROLE_CONST;
		s->v = add_value(im, s->name, s->cst.type, role, s->cst.data);
	}
}

/* Compute ops take f32 only; data movement and Cast take every IR dtype. */
static int check_dtypes(const FeNode *n)
{
	if (ir_op_has(n->op, IR_OPF_MOVE) || n->op == IR_OP_CAST)
		return 0;
	unsigned mask = fe_import_table[n->op].const_in;
	for (int i = 0; i < n->nin; i++)
		if (n->in[i] && !(i < 32 && (mask >> i & 1u)) && n->in[i]->type->dt != IR_DT_F32) {
			fe_node_error(
			    n, IR_ERR_UNSUPPORTED, "input '%s' is %s: lnsc computes %s in f32 only",
			    n->in[i]->name, ir_dtype_name(n->in[i]->type->dt), n->op_type);
			return -1;
		}
	return 0;
}

/* Who uses tensor `name`: the first node that reads it, else the graph output list. */
static const char *reader_of(FeImport *im, const char *name)
{
	for (size_t j = 0; j < im->gp->n_node; j++) {
		const Onnx__NodeProto *p = im->gp->node[j];
		for (size_t i = 0; i < p->n_input; i++)
			if (!strcmp(p->input[i], name))
				return ir_arena_printf(im->scratch, "node '%s' (%s) reads it",
				                       im->node_name[j], str(p->op_type));
	}
	return "it is a graph output";
}

/* ONNX output k of n, which the IR node does not have (MaxPool's Indices): fine when absent
 * or unread, else IR_ERR_UNSUPPORTED naming a reader. 0 or -1. */
static int extra_output_unused(const FeNode *n, int k, const char *what)
{
	const char *name = n->p->output[k];
	const Sym *s = *name ? sym_find(n->imp, name) : NULL;
	if (!s || (!s->data_use && !s->const_use))
		return 0;
	fe_node_error(n, IR_ERR_UNSUPPORTED, "the %s output '%s' is not supported (%s)", what, name,
	              reader_of(n->imp, name));
	return -1;
}

/* A Cast of constants that the hook just emitted is folded at once, as canon would fold it
 * later, so that its output is a constant the following hooks can read: PyTorch writes
 * Clip's bounds as Cast(Constant). (Other ops stay until canon: the graph keeps the
 * model's structure for as long as it can.) */
static int fold_casts(FeImport *im, const Onnx__NodeProto *p, int first)
{
	IrGraph *g = im->g;
	for (int i = first; i < g->nodes.n;) {
		IrNode *n = IR_NODE(g, i);
		if (n->op != IR_OP_CAST || !ir_interp_can_fold(n)) {
			i++;
			continue;
		}
		if (ir_interp_fold_node(g, i))
			return -1;
	}
	for (size_t k = 0; k < p->n_output; k++) {
		Sym *s = *p->output[k] ? sym_find(im, p->output[k]) : NULL;
		if (s && s->v && !s->v->def && s->v->role == IR_ROLE_CONST && s->v->init &&
		    !s->cst.type) {
			s->cst.type = s->v->type;
			s->cst.data = s->v->init;
		}
	}
	return 0;
}

static int import_node(FeImport *im, int j)
{
	const Onnx__NodeProto *p = im->gp->node[j];
	FeNode n;
	memset(&n, 0, sizeof n);
	n.imp = im;
	n.g = im->g;
	n.p = p;
	n.name = im->node_name[j];
	n.op_type = p->op_type;
	n.op = im->node_op[j];
	n.opset = im->opset;
	for (size_t i = 0; i < p->n_input; i++) {
		if (!*p->input[i])
			continue;
		const Sym *s = sym_find(im, p->input[i]);
		n.nin = (int)i + 1;
		n.in[i] = s->v;
		n.cst[i] = s->cst.type ? &s->cst : NULL;
		if (!s->v) {
			fe_node_error(&n, IR_ERR_INPUT, "input '%s' has no value", p->input[i]);
			return -1;
		}
	}
	const char *extra = fe_import_table[n.op].extra_out;
	int nout = ir_op_info[n.op].nout, nmax = nout + (extra != NULL);
	if (p->n_output == 0 || (int)p->n_output > nmax) {
		if (nmax == 1)
			fe_node_error(&n, IR_ERR_INPUT, "has %zu outputs, expected 1", p->n_output);
		else
			fe_node_error(&n, IR_ERR_INPUT, "has %zu outputs, expected 1 to %d",
			              p->n_output, nmax);
		return -1;
	}
	int first = im->g->nodes.n;
	if ((extra && (int)p->n_output > nout && extra_output_unused(&n, nout, extra)) ||
	    check_dtypes(&n) || fe_import_table[n.op].fn(&n) || fold_casts(im, p, first))
		return -1;
	for (size_t k = 0; k < p->n_output && (int)k < nout; k++)
		if (*p->output[k] && !sym_find(im, p->output[k])->v) {
			fe_node_error(&n, IR_ERR_UNSUPPORTED,
			              "output '%s' was not built (import bug)", p->output[k]);
			return -1;
		}
	return 0;
}

static void dims_str(char *buf, size_t n, int rank, const int64_t *dims)
{
	size_t k = (size_t)snprintf(buf, n, "[");
	for (int i = 0; i < rank && k < n; i++)
		k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64, i ? "," : "", dims[i]);
	if (k < n)
		snprintf(buf + k, n - k, "]");
}

/* Declared output type vs the inferred one, when the declaration is fully static. */
static void check_declared(FeImport *im, const Onnx__ValueInfoProto *vi, const IrValue *v)
{
	const Onnx__TypeProto__Tensor *tt = tensor_info(vi);
	if (!tt)
		return;
	IrDType dt;
	int et = tt->has_elem_type ? tt->elem_type : 0;
	if (et && !fe_dtype_from_onnx(et, &dt) && dt != v->type->dt) {
		ir_error(im->c, IR_ERR_INPUT,
		         "%s: graph output '%s' is declared %s but the model "
		         "computes %s",
		         im->path, str(vi->name), fe_onnx_dtype_name(et),
		         ir_dtype_name(v->type->dt));
		return;
	}
	const Onnx__TensorShapeProto *sh = tt->shape;
	if (!sh || im->shapes_changed || sh->n_dim > IR_MAX_RANK)
		return;
	int64_t dims[IR_MAX_RANK];
	for (size_t d = 0; d < sh->n_dim; d++) {
		if (sh->dim[d]->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
			return;
		dims[d] = sh->dim[d]->dim_value;
	}
	int same = (int)sh->n_dim == v->type->rank;
	for (int d = 0; same && d < v->type->rank; d++)
		same = dims[d] == v->type->dims[d];
	if (!same) {
		char a[256], b[256];
		dims_str(a, sizeof a, (int)sh->n_dim, dims);
		dims_str(b, sizeof b, v->type->rank, v->type->dims);
		ir_error(
		    im->c, IR_ERR_INPUT,
		    "%s: graph output '%s' is declared with shape %s but the model computes %s",
		    im->path, str(vi->name), a, b);
	}
}

/* A graph output that no node produces (an input, initializer or Constant output) gets an
 * Identity. The output keeps the ONNX name and the constant takes "<name>/const", unless
 * callers refer to the value by its name: a graph input (bound by name, even when its
 * known data made it CONST) or a parameter (gradients, checkpoints and format files name
 * it); then the output is "<name>.out". NULL on error. */
static IrValue *output_copy(FeImport *im, const Sym *s, IrValue *v)
{
	const char *out = v->name;
	if (s->kind == DEF_INPUT || v->role == IR_ROLE_PARAM) {
		out = fresh(im, ir_arena_printf(im->scratch, "%s.out", v->name));
	} else {
		const char *kname = fresh(im, ir_arena_printf(im->scratch, "%s/const", v->name));
		if (ir_value_rename(im->g, v, kname))
			return NULL;
	}
	const char *name = ir_arena_printf(im->g->arena, "%s/identity", s->name);
	IrAttrs zero;
	memset(&zero, 0, sizeof zero);
	IrNode *node = ir_build(im->g, IR_OP_IDENTITY, name, 1, &v, &zero, &out);
	return node ? node->out[0] : NULL;
}

static void make_outputs(FeImport *im)
{
	const Onnx__GraphProto *gp = im->gp;
	for (size_t i = 0; i < gp->n_output; i++) {
		const Onnx__ValueInfoProto *vi = gp->output[i];
		Sym *s = sym_find(im, vi->name);
		IrValue *v = s->v;
		if (v && v->is_output) {
			ir_error(im->c, IR_ERR_INPUT, "%s: graph output '%s' is listed twice",
			         im->path, vi->name);
			continue;
		}
		if (v && !v->def)
			v = s->v = output_copy(im, s, v); /* a second listing finds the copy */
		if (!v)
			continue;
		v->is_output = 1;
		ir_vec_push(&im->g->outputs, v);
		check_declared(im, vi, v);
	}
}

static IrGraph *import_model(FeImport *im, const Onnx__ModelProto *m)
{
	IrCtx *c = im->c;
	int e0 = ir_error_count(c);
	if (read_opset(c, im->path, m, &im->opset))
		return NULL;
	if (!m->graph) {
		ir_error(c, IR_ERR_INPUT, "%s: the model has no graph", im->path);
		return NULL;
	}
	im->gp = m->graph;
	im->g = ir_graph_new(c, *str(m->graph->name) ? m->graph->name : "main", im->path);
	im->g->opset = im->opset;
	im->path = im->g->source;

	define_all(im);
	resolve_ops(im);
	check_refs(im);
	check_io_types(im);
	if (ir_error_count(c) > e0 || toposort(im))
		return NULL;
	if (im->check_only)
		return im->g;
	mark_data_uses(im);
	make_values(im);
	if (ir_error_count(c) > e0)
		return NULL;
	for (size_t k = 0; k < im->gp->n_node; k++)
		if (import_node(im, im->order[k]))
			return NULL;
	make_outputs(im);
	if (ir_error_count(c) > e0)
		return NULL;
	return im->g;
}

static IrGraph *import_file(IrCtx *c, const char *path, const FeOptions *o, int check_only)
{
	uint8_t *buf;
	size_t len;
	if (fe_read_file(c, path, &buf, &len))
		return NULL;
	Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
	free(buf);
	if (!m) {
		ir_error(c, IR_ERR_INPUT, "%s: not a valid ONNX model (protobuf parse failed)",
		         path);
		return NULL;
	}
	FeImport im;
	memset(&im, 0, sizeof im);
	im.c = c;
	im.path = path;
	im.o = o;
	im.check_only = check_only;
	im.scratch = ir_arena_new();
	const char *slash = strrchr(path, '/');
	char *folder =
	    slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!folder)
		abort();
	im.dir = realpath(folder, NULL);
	free(folder);

	IrGraph *g = import_model(&im, m);
	if (!g && im.g)
		ir_graph_free(im.g);
	free(im.dir);
	ir_arena_free(im.scratch);
	onnx__model_proto__free_unpacked(m, NULL);
	return g;
}

IrGraph *fe_onnx_import(IrCtx *c, const char *path, const FeOptions *o)
{
	return import_file(c, path, o, 0);
}

int fe_onnx_check(IrCtx *c, const char *path)
{
	IrGraph *g = import_file(c, path, NULL, 1);
	ir_graph_free(g);
	return g ? 0 : -1;
}

int fe_import_check(IrCtx *c)
{
	int bad = 0;
	for (int op = 0; op < IR_OP_COUNT; op++)
		if (ir_op_has((IrOp)op, IR_OPF_ONNX) && !fe_import_table[op].fn) {
			ir_error(c, IR_ERR_UNSUPPORTED, "frontend: ONNX op %s has no import hook",
			         ir_op_name((IrOp)op));
			bad = 1;
		}
	return bad ? -1 : 0;
}
