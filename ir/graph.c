/* graph.c: graphs, values and nodes: creation through checked builders, rewiring, ordering.
 *
 * A graph owns an arena for everything it holds plus a name table (value names are unique).
 * ir_build is the only way to make a node: it looks up the op's shape inference, so an
 * ill-typed node is never built and the error names the node. Rewrites (replace uses, move,
 * dead-code removal, topological sort) keep the node list in a valid order.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

typedef struct IrNameTab {
	IrValue **slot;
	size_t cap, n;
} IrNameTab;

static uint32_t str_hash(const char *s)
{
	uint32_t h = 2166136261u;
	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static void names_insert(IrNameTab *t, IrValue *v);

static void names_grow(IrNameTab *t)
{
	IrNameTab old = *t;
	t->cap = old.cap ? old.cap * 2 : 64;
	t->slot = calloc(t->cap, sizeof *t->slot);
	if (!t->slot)
		abort();
	t->n = 0;
	for (size_t i = 0; i < old.cap; i++)
		if (old.slot[i])
			names_insert(t, old.slot[i]);
	free(old.slot);
}

static void names_insert(IrNameTab *t, IrValue *v)
{
	if ((t->n + 1) * 2 > t->cap)
		names_grow(t);
	size_t i = str_hash(v->name) & (t->cap - 1);
	while (t->slot[i])
		i = (i + 1) & (t->cap - 1);
	t->slot[i] = v;
	t->n++;
}

/* Removes v (present) from the table. Linear probing has no tombstones here: each later
 * entry of the probe run moves back into the hole unless its home slot lies cyclically in
 * (hole, its slot], where a lookup would no longer reach it. */
static void names_remove(IrNameTab *t, const IrValue *v)
{
	size_t mask = t->cap - 1, i = str_hash(v->name) & mask;
	while (t->slot[i] != v) {
		assert(t->slot[i] && "names_remove: value not in the name table");
		i = (i + 1) & mask;
	}
	for (size_t j = (i + 1) & mask; t->slot[j]; j = (j + 1) & mask) {
		size_t h = str_hash(t->slot[j]->name) & mask;
		int stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
		if (!stays) {
			t->slot[i] = t->slot[j];
			i = j;
		}
	}
	t->slot[i] = NULL;
	t->n--;
}

IrValue *ir_graph_value(const IrGraph *g, const char *name)
{
	const IrNameTab *t = g->names;
	if (!t->cap)
		return NULL;
	for (size_t i = str_hash(name) & (t->cap - 1); t->slot[i]; i = (i + 1) & (t->cap - 1))
		if (!strcmp(t->slot[i]->name, name))
			return t->slot[i];
	return NULL;
}

IrGraph *ir_graph_new(IrCtx *c, const char *name, const char *source)
{
	IrGraph *g = calloc(1, sizeof *g);
	if (!g)
		abort();
	g->ctx = c;
	g->arena = ir_arena_new();
	g->name = ir_arena_strdup(g->arena, name ? name : "graph");
	g->source = source ? ir_arena_strdup(g->arena, source) : NULL;
	g->names = calloc(1, sizeof *g->names);
	if (!g->names)
		abort();
	return g;
}

void ir_graph_free(IrGraph *g)
{
	if (!g)
		return;
	ir_vec_free(&g->nodes);
	ir_vec_free(&g->values);
	ir_vec_free(&g->inputs);
	ir_vec_free(&g->outputs);
	ir_vec_free(&g->params);
	ir_vec_free(&g->const_inputs);
	free(g->names->slot);
	free(g->names);
	ir_arena_free(g->arena);
	free(g);
}

const char *ir_unique_name(IrGraph *g, const char *prefix)
{
	if (!ir_graph_value(g, prefix))
		return ir_arena_strdup(g->arena, prefix);
	for (int i = 1;; i++) {
		char buf[600];
		snprintf(buf, sizeof buf, "%.500s.%d", prefix, i);
		if (!ir_graph_value(g, buf))
			return ir_arena_strdup(g->arena, buf);
	}
}

int ir_value_rename(IrGraph *g, IrValue *v, const char *name)
{
	assert(v->id >= 0 && v->id < g->values.n && g->values.v[v->id] == v);
	if (!strcmp(v->name, name))
		return 0;
	if (ir_graph_value(g, name)) {
		ir_error(g->ctx, IR_ERR_INPUT,
			 "%s: cannot rename tensor '%s' to '%s': the name is taken",
			 g->source ? g->source : g->name, v->name, name);
		return -1;
	}
	names_remove(g->names, v);
	v->name = ir_arena_strdup(g->arena, name);
	names_insert(g->names, v);
	return 0;
}

static IrValue *value_alloc(IrGraph *g, const char *name, const IrType *t, IrRole role)
{
	IrValue *v = ir_arena_alloc(g->arena, sizeof *v);
	v->id = g->values.n;
	v->name = ir_arena_strdup(g->arena, name);
	v->type = t;
	v->role = role;
	v->loc.scale_off = -1;
	ir_vec_push(&g->values, v);
	names_insert(g->names, v);
	return v;
}

IrValue *ir_value_new(IrGraph *g, const char *name, const IrType *t, IrRole role,
		      const void *init, const IrType *init_type)
{
	if (!t)
		return NULL;
	if (ir_graph_value(g, name)) {
		ir_error(g->ctx, IR_ERR_INPUT, "%s: tensor '%s' is defined twice",
			 g->source ? g->source : g->name, name);
		return NULL;
	}
	IrValue *v = value_alloc(g, name, t, role);
	if (init) {
		const IrType *it = init_type ? init_type : t;
		size_t n = ir_type_bytes(it);
		v->init = ir_arena_alloc(g->arena, n);
		memcpy(v->init, init, n);
		v->init_type = it;
	}
	if (role == IR_ROLE_INPUT)
		ir_vec_push(&g->inputs, v);
	else if (role == IR_ROLE_PARAM)
		ir_vec_push(&g->params, v);
	else if (role == IR_ROLE_LABEL)
		g->labels = v;
	return v;
}

static int check_arity(IrGraph *g, const IrNode *n)
{
	const IrOpInfo *oi = &ir_op_info[n->op];
	if (n->nin < oi->min_in || n->nin > oi->max_in) {
		ir_node_error(g, n, IR_ERR_INPUT, "takes %d..%d inputs, got %d", oi->min_in,
			      oi->max_in, n->nin);
		return -1;
	}
	for (int i = 0; i < n->nin; i++)
		if (!n->in[i]) {
			ir_node_error(g, n, IR_ERR_INPUT, "input %d is missing", i);
			return -1;
		}
	return 0;
}

IrNode *ir_build(IrGraph *g, IrOp op, const char *name, int nin, IrValue *const *in,
		 const IrAttrs *attr, const char *const *out_names)
{
	IrNode tmp = {0}, *n;
	IrValue *inbuf[IR_MAX_IN];
	const IrType *out[8] = {0};
	if (nin > IR_MAX_IN)
		nin = IR_MAX_IN + 1; /* reported by check_arity */
	tmp.op = op;
	tmp.name = name ? name : ir_op_name(op);
	tmp.nin = nin;
	tmp.nout = ir_op_info[op].nout;
	tmp.in = inbuf;
	if (nin <= IR_MAX_IN)
		for (int i = 0; i < nin; i++)
			inbuf[i] = in[i];
	if (attr)
		tmp.attr = *attr;
	if (check_arity(g, &tmp) || ir_infer_node(g, &tmp, out))
		return NULL;
	n = ir_arena_alloc(g->arena, sizeof *n);
	*n = tmp;
	n->id = g->next_node_id++;
	n->name = ir_arena_strdup(g->arena, tmp.name);
	n->in = ir_arena_alloc(g->arena, sizeof(IrValue *) * (size_t)(nin ? nin : 1));
	n->out = ir_arena_alloc(g->arena, sizeof(IrValue *) * (size_t)(n->nout ? n->nout : 1));
	for (int i = 0; i < nin; i++) {
		n->in[i] = in[i];
		in[i]->nuses++;
	}
	for (int i = 0; i < n->nout; i++) {
		const char *on = out_names && out_names[i] && *out_names[i] ? out_names[i] : NULL;
		char buf[512];
		if (!on) {
			snprintf(buf, sizeof buf, n->nout > 1 ? "%s:%d" : "%s", n->name, i);
			on = buf;
		}
		if (ir_graph_value(g, on)) {
			if (out_names && out_names[i] && *out_names[i]) {
				ir_node_error(g, n, IR_ERR_INPUT, "output '%s' is defined twice", on);
				return NULL;
			}
			on = ir_unique_name(g, on);
		}
		IrValue *v = value_alloc(g, on, out[i], IR_ROLE_ACT);
		v->def = n;
		v->def_out = i;
		n->out[i] = v;
	}
	ir_vec_push(&g->nodes, n);
	return n;
}

IrValue *ir_build1(IrGraph *g, IrOp op, const char *name, int nin, IrValue *const *in,
		   const IrAttrs *attr)
{
	IrNode *n = ir_build(g, op, name, nin, in, attr, NULL);
	return n && n->nout ? n->out[0] : NULL;
}

void ir_replace_uses(IrGraph *g, IrValue *from, IrValue *to, int first)
{
	for (int i = first; i < g->nodes.n; i++) {
		IrNode *n = IR_NODE(g, i);
		for (int j = 0; j < n->nin; j++)
			if (n->in[j] == from) {
				n->in[j] = to;
				from->nuses--;
				to->nuses++;
			}
	}
}

void ir_move_last_node(IrGraph *g, int pos)
{
	IrNode *n = g->nodes.v[g->nodes.n - 1];
	memmove(&g->nodes.v[pos + 1], &g->nodes.v[pos],
		(size_t)(g->nodes.n - 1 - pos) * sizeof(void *));
	g->nodes.v[pos] = n;
}

void ir_recount_uses(IrGraph *g)
{
	for (int i = 0; i < g->values.n; i++)
		IR_VALUE(g, i)->nuses = 0;
	for (int i = 0; i < g->nodes.n; i++) {
		IrNode *n = IR_NODE(g, i);
		for (int j = 0; j < n->nin; j++)
			n->in[j]->nuses++;
	}
}

static int node_live(const IrNode *n)
{
	if (ir_op_has(n->op, IR_OPF_UPDATE))
		return 1;
	for (int i = 0; i < n->nout; i++)
		if (n->out[i]->nuses || n->out[i]->is_output || n->out[i]->role == IR_ROLE_LOSS)
			return 1;
	return 0;
}

void ir_remove_dead(IrGraph *g)
{
	ir_recount_uses(g);
	for (int changed = 1; changed;) {
		changed = 0;
		int k = 0;
		for (int i = 0; i < g->nodes.n; i++) {
			IrNode *n = IR_NODE(g, i);
			if (node_live(n)) {
				g->nodes.v[k++] = n;
				continue;
			}
			for (int j = 0; j < n->nin; j++)
				n->in[j]->nuses--;
			changed = 1;
		}
		g->nodes.n = k;
	}
}

int ir_toposort(IrGraph *g)
{
	int nn = g->nodes.n;
	if (!nn)
		return 0;
	/* ready[v] = value available; repeatedly emit, in original order, nodes whose inputs
	 * are ready. Stable, O(n^2) worst case but linear for already-sorted graphs. */
	char *ready = calloc((size_t)g->values.n, 1);
	char *done = calloc((size_t)nn, 1);
	void **order = malloc((size_t)nn * sizeof *order);
	if (!ready || !done || !order)
		abort();
	for (int i = 0; i < g->values.n; i++)
		if (!IR_VALUE(g, i)->def)
			ready[i] = 1;
	int k = 0, progress = 1;
	while (k < nn && progress) {
		progress = 0;
		for (int i = 0; i < nn; i++) {
			IrNode *n = IR_NODE(g, i);
			int ok = !done[i];
			for (int j = 0; ok && j < n->nin; j++)
				ok = ready[n->in[j]->id];
			/* updates run after every reader of the parameter they mutate */
			if (!ok)
				continue;
			done[i] = 1;
			order[k++] = n;
			progress = 1;
			for (int j = 0; j < n->nout; j++)
				ready[n->out[j]->id] = 1;
		}
	}
	int rc = 0;
	if (k < nn) {
		for (int i = 0; i < nn; i++)
			if (!done[i]) {
				ir_node_error(g, IR_NODE(g, i), IR_ERR_INPUT,
					      "is part of a cycle (or uses an undefined value)");
				break;
			}
		rc = -1;
	} else {
		/* UPDATE nodes last, in their relative order: they mutate params in place. */
		int m = 0;
		for (int i = 0; i < nn; i++)
			if (!ir_op_has(((IrNode *)order[i])->op, IR_OPF_UPDATE))
				g->nodes.v[m++] = order[i];
		for (int i = 0; i < nn; i++)
			if (ir_op_has(((IrNode *)order[i])->op, IR_OPF_UPDATE))
				g->nodes.v[m++] = order[i];
	}
	free(ready);
	free(done);
	free(order);
	return rc;
}

static const char *const role_names[IR_ROLE_COUNT] = {
	[IR_ROLE_INPUT] = "input", [IR_ROLE_LABEL] = "label", [IR_ROLE_PARAM] = "param",
	[IR_ROLE_CONST] = "const", [IR_ROLE_ACT] = "act",     [IR_ROLE_GRAD] = "grad",
	[IR_ROLE_PGRAD] = "pgrad", [IR_ROLE_STATE] = "state", [IR_ROLE_LOSS] = "loss",
};

const char *ir_role_name(IrRole r)
{
	return r < IR_ROLE_COUNT ? role_names[r] : "?";
}

int ir_role_parse(const char *s, IrRole *out)
{
	for (int i = 0; i < IR_ROLE_COUNT; i++)
		if (!strcmp(s, role_names[i])) {
			*out = (IrRole)i;
			return 0;
		}
	return -1;
}

const char *ir_phase_name(IrPhase p)
{
	static const char *const names[] = {"fwd", "loss", "bwd", "update"};
	return p <= IR_PHASE_UPDATE ? names[p] : "?";
}
