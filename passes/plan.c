/* plan.c: the schedule and memory plan: every value gets a place, no step allocates.
 *
 * After a topological sort, values go to four areas. The state blob (checkpointed) opens
 * with the IrStateHeader, then holds parameters, optimizer state and constants that need
 * encoding (LNS-typed), each 64-byte aligned, and one LnsScaleState per LNS-typed value of any
 * area. Constants otherwise stay where they are (their init data); inputs and labels are the
 * caller's buffers. Everything a step computes lives in the scratch arena, placed by a
 * first-fit allocator over the node order: a value is live from its producer to its last
 * reader (graph outputs and the loss to the end of the step), and two values share bytes only
 * if their live ranges are disjoint. A value read by the node that frees it is still live
 * there, so a kernel's outputs never alias its inputs. Values produced in the forward phase
 * and read in the backward phase simply stay live across: liveness knows no phases. After the
 * values the scratch arena holds what compiled kernels need besides (IrPlan: a temporary area
 * for the running node and a scale-offset slot per value).
 */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

enum { ALIGN = 64, SCALE_ALIGN = 16 };

static size_t align_to(size_t n, size_t a)
{
	return (n + a - 1) / a * a;
}

/* A block of scratch in use: [off, off + size) until node `end` has run. */
typedef struct Block {
	size_t off, size;
	int end;
} Block;

typedef struct Alloc {
	Block *live; /* sorted by offset, disjoint */
	int n;
	size_t peak;
} Alloc;

/* Drops blocks whose last reader ran before node `now`. */
static void release(Alloc *a, int now)
{
	int k = 0;
	for (int i = 0; i < a->n; i++)
		if (a->live[i].end >= now)
			a->live[k++] = a->live[i];
	a->n = k;
}

/* The lowest offset where `size` bytes fit between live blocks. */
static size_t first_fit(Alloc *a, size_t size, int end)
{
	size_t off = 0;
	int pos = 0;
	for (; pos < a->n; pos++) {
		if (off + size <= a->live[pos].off)
			break;
		size_t e = align_to(a->live[pos].off + a->live[pos].size, ALIGN);
		off = e > off ? e : off;
	}
	memmove(&a->live[pos + 1], &a->live[pos], (size_t)(a->n - pos) * sizeof *a->live);
	a->live[pos] = (Block){off, size, end};
	a->n++;
	if (off + size > a->peak)
		a->peak = off + size;
	return off;
}

static int is_output(const IrGraph *g, const IrValue *v)
{
	if (v->is_output || v == g->loss || v->role == IR_ROLE_LOSS)
		return 1;
	for (int i = 0; i < g->outputs.n; i++)
		if (g->outputs.v[i] == v)
			return 1;
	return 0;
}

/* Last node index reading each value; graph outputs and the loss live past the last node. */
static int *last_uses(const IrGraph *g)
{
	int *end = malloc(sizeof(int) * (size_t)(g->values.n ? g->values.n : 1));
	if (!end)
		abort();
	for (int i = 0; i < g->values.n; i++)
		end[i] = is_output(g, IR_VALUE(g, i)) ? g->nodes.n : -1;
	for (int i = 0; i < g->nodes.n; i++) {
		const IrNode *n = IR_NODE(g, i);
		for (int j = 0; j < n->nin; j++)
			if (end[n->in[j]->id] < i)
				end[n->in[j]->id] = i;
		for (int j = 0; j < n->nout; j++)
			if (end[n->out[j]->id] < i)
				end[n->out[j]->id] = i; /* unread: live while its node runs */
	}
	return end;
}

/* Values with no producer: by role. Returns -1 for a value that nothing can define. */
static int place_source(IrGraph *g, IrValue *v, int used, size_t *state)
{
	IrLoc *l = &v->loc;
	size_t bytes = ir_type_bytes(v->type);
	int lns = v->type->dt == IR_DT_LNS;
	switch (v->role) {
	case IR_ROLE_PARAM:
	case IR_ROLE_STATE:
		break;
	case IR_ROLE_CONST:
		if (!lns) {
			*l = (IrLoc){IR_AREA_CONST, 0, bytes, l->scale_off};
			return 0;
		}
		break; /* encoded at init: state */
	case IR_ROLE_INPUT:
	case IR_ROLE_LABEL:
		*l = (IrLoc){IR_AREA_IO, 0, bytes, l->scale_off};
		return 0;
	default:
		if (!used)
			return 0; /* an orphan nothing reads: no place */
		ir_error(g->ctx, IR_ERR_INPUT, "%s: tensor '%s' (%s) is read but never computed",
			 g->source ? g->source : g->name, v->name, ir_role_name(v->role));
		return -1;
	}
	*state = align_to(*state, ALIGN);
	*l = (IrLoc){IR_AREA_STATE, *state, bytes, l->scale_off};
	*state += bytes;
	return 0;
}

/* Scratch offsets by first fit, node by node: free what died before the node, then place
 * its outputs. */
static size_t place_scratch(IrGraph *g, const int *end)
{
	Alloc a = {malloc(sizeof(Block) * (size_t)(g->values.n ? g->values.n : 1)), 0, 0};
	if (!a.live)
		abort();
	for (int i = 0; i < g->nodes.n; i++) {
		IrNode *n = IR_NODE(g, i);
		release(&a, i);
		for (int j = 0; j < n->nout; j++) {
			IrValue *v = n->out[j];
			size_t bytes = ir_type_bytes(v->type);
			size_t off = first_fit(&a, bytes ? bytes : 1, end[v->id]);
			v->loc = (IrLoc){IR_AREA_SCRATCH, off, bytes, v->loc.scale_off};
		}
	}
	free(a.live);
	return align_to(a.peak, ALIGN);
}

/* The backend's temporary area: the largest node's f32 copies of its LNS operands (one per
 * LNS input and output), plus room for reduction partials. */
static size_t temp_size(const IrGraph *g)
{
	size_t most = 0;
	for (int i = 0; i < g->nodes.n; i++) {
		const IrNode *n = IR_NODE(g, i);
		size_t b = 0;
		for (int j = 0; j < n->nin + n->nout; j++) {
			const IrValue *v = j < n->nin ? n->in[j] : n->out[j - n->nin];
			if (v->type->dt == IR_DT_LNS)
				b += align_to((size_t)v->type->numel * 4, ALIGN);
		}
		most = b > most ? b : most;
	}
	return most + IR_PLAN_TEMP_EXTRA;
}

static int first_of(const IrGraph *g, IrPhase p)
{
	for (int i = 0; i < g->nodes.n; i++)
		if (IR_NODE(g, i)->phase == p)
			return i;
	return g->nodes.n;
}

int pass_plan(IrGraph *g)
{
	if (ir_toposort(g))
		return -1;
	IrPlan *plan = ir_arena_alloc(g->arena, sizeof *plan);
	size_t state = IR_STATE_HEADER_BYTES;
	int *end = last_uses(g), rc = 0;
	for (int i = 0; i < g->values.n && !rc; i++) {
		IrValue *v = IR_VALUE(g, i);
		v->loc = (IrLoc){IR_AREA_NONE, 0, 0, -1};
		if (!v->def)
			rc = place_source(g, v, end[i] >= 0, &state);
	}
	if (!rc) {
		plan->temp_off = place_scratch(g, end);
		plan->temp_bytes = temp_size(g);
		plan->kslot_off = plan->temp_off + plan->temp_bytes;
		plan->scratch_bytes =
			align_to(plan->kslot_off + 4 * (size_t)g->values.n, ALIGN);
		for (int i = 0; i < g->values.n; i++) {
			IrValue *v = IR_VALUE(g, i);
			if (v->type->dt != IR_DT_LNS)
				continue;
			state = align_to(state, SCALE_ALIGN);
			v->loc.scale_off = (int64_t)state;
			state += sizeof(LnsScaleState);
		}
		plan->state_bytes = align_to(state, ALIGN);
		plan->first_loss = first_of(g, IR_PHASE_LOSS);
		plan->first_bwd = first_of(g, IR_PHASE_BWD);
		plan->first_update = first_of(g, IR_PHASE_UPDATE);
		g->plan = plan;
	}
	free(end);
	return rc;
}
