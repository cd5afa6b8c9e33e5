/* ctx.c: the compilation context: its arena, the interned type table, and diagnostics.
 *
 * Everything mutable hangs off an IrCtx, so two models can be compiled in one process.
 * Diagnostics are collected in order, each with a status; the CLI prints them and exits with
 * the most serious status (a malformed input beats an unsupported feature).
 */
#include <stdlib.h>
#include <string.h>

#include "ir/ctx.h"

IrCtx *ir_ctx_new(void)
{
	IrCtx *c = calloc(1, sizeof *c);
	if (!c)
		abort();
	c->arena = ir_arena_new();
	return c;
}

void ir_ctx_free(IrCtx *c)
{
	if (!c)
		return;
	ir_arena_free(c->arena);
	ir_arena_free(c->diag_arena);
	free(c->types);
	free(c->diags);
	free(c);
}

IrArena *ir_ctx_arena(IrCtx *c)
{
	return c->arena;
}

void ir_verror(IrCtx *c, IrStatus st, const char *fmt, va_list ap)
{
	if (!c->diag_arena)
		c->diag_arena = ir_arena_new();
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	char *msg = ir_arena_alloc(c->diag_arena, (size_t)(n > 0 ? n : 0) + 1);
	vsnprintf(msg, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	if (c->ndiags == c->capdiags) {
		c->capdiags = c->capdiags ? c->capdiags * 2 : 16;
		c->diags = realloc(c->diags, (size_t)c->capdiags * sizeof *c->diags);
		if (!c->diags)
			abort();
	}
	c->diags[c->ndiags].status = st;
	c->diags[c->ndiags].msg = msg;
	c->ndiags++;
	c->text = NULL;
}

void ir_error(IrCtx *c, IrStatus st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ir_verror(c, st, fmt, ap);
	va_end(ap);
}

void ir_node_error(IrGraph *g, const IrNode *n, IrStatus st, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	const char *src = g->source ? g->source : (g->name ? g->name : "<graph>");
	ir_error(g->ctx, st, "%s: node '%s' (%s): %s", src, n->name ? n->name : "?",
		 ir_op_name(n->op), buf);
}

int ir_error_count(const IrCtx *c)
{
	return c->ndiags;
}

IrStatus ir_error_status(const IrCtx *c)
{
	IrStatus worst = IR_OK;
	static const int rank[] = {[IR_OK] = 0, [IR_ERR_RUNTIME] = 1, [IR_ERR_UNSUPPORTED] = 2,
				   [IR_ERR_INPUT] = 3};
	for (int i = 0; i < c->ndiags; i++)
		if (rank[c->diags[i].status] > rank[worst])
			worst = c->diags[i].status;
	return worst;
}

void ir_diag_print(const IrCtx *c, FILE *f)
{
	for (int i = 0; i < c->ndiags; i++)
		fprintf(f, "lnsc: error: %s\n", c->diags[i].msg);
}

const char *ir_diag_text(const IrCtx *c)
{
	IrCtx *m = (IrCtx *)c;
	if (m->text)
		return m->text;
	size_t n = 1;
	for (int i = 0; i < c->ndiags; i++)
		n += strlen(c->diags[i].msg) + 1;
	if (!m->diag_arena)
		m->diag_arena = ir_arena_new();
	char *t = ir_arena_alloc(m->diag_arena, n), *p = t;
	for (int i = 0; i < c->ndiags; i++) {
		size_t l = strlen(c->diags[i].msg);
		memcpy(p, c->diags[i].msg, l);
		p += l;
		if (i + 1 < c->ndiags)
			*p++ = '\n';
	}
	*p = 0;
	m->text = t;
	return t;
}

void ir_diag_clear(IrCtx *c)
{
	c->ndiags = 0;
	c->text = NULL;
}
