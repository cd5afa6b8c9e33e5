/* overrides.c: per-tensor overrides by name, the hook the passes consult, and --formats.
 *
 * An FeOverrides is a small array of (name, override, origin): linear search is enough for
 * the few hundred tensors of the models lnsc trains, and keeps the order in which overrides
 * were given (messages list them in that order). The hook hands the passes the entry for a
 * value, checked by pass_override_check against the graph as the asking pass sees it, and
 * marks it used; after the pipeline, an entry no value claimed is an error naming where it
 * came from, so a misspelt name never silently does nothing. The `--formats` file is one
 * producer of entries among others: each line becomes an entry whose origin is "file:line".
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/lua/lnsc_lua.h"

static char *xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d)
		abort();
	return d;
}

void fe_overrides_init(FeOverrides *ov)
{
	memset(ov, 0, sizeof *ov);
}

static void entry_free(FeOverride *e)
{
	free(e->name);
	free(e->origin);
}

void fe_overrides_clear(FeOverrides *ov)
{
	for (int i = 0; i < ov->n; i++)
		entry_free(&ov->v[i]);
	ov->n = 0;
}

void fe_overrides_free(FeOverrides *ov)
{
	fe_overrides_clear(ov);
	free(ov->v);
	memset(ov, 0, sizeof *ov);
}

FeOverride *fe_overrides_find(const FeOverrides *ov, const char *name)
{
	for (int i = 0; i < ov->n; i++)
		if (!strcmp(ov->v[i].name, name))
			return &ov->v[i];
	return NULL;
}

static int is_empty(const PassOverride *o)
{
	return o->kind == PASS_FMT_RECIPE && o->update == PASS_UPD_RECIPE;
}

void fe_overrides_set(FeOverrides *ov, const char *name, const PassOverride *o, const char *origin)
{
	FeOverride *e = fe_overrides_find(ov, name);
	if (e && is_empty(o)) {
		int i = (int)(e - ov->v);
		entry_free(e);
		memmove(e, e + 1, (size_t)(ov->n - i - 1) * sizeof *e);
		ov->n--;
		return;
	}
	if (is_empty(o))
		return;
	if (!e) {
		if (ov->n == ov->cap) {
			ov->cap = ov->cap ? 2 * ov->cap : 16;
			ov->v = realloc(ov->v, (size_t)ov->cap * sizeof *ov->v);
			if (!ov->v)
				abort();
		}
		e = &ov->v[ov->n++];
		e->name = xstrdup(name);
		e->origin = NULL;
	}
	free(e->origin);
	e->origin = xstrdup(origin);
	e->o = *o;
	e->used = 0;
}

void fe_overrides_copy(FeOverrides *dst, const FeOverrides *src)
{
	fe_overrides_clear(dst);
	for (int i = 0; i < src->n; i++)
		fe_overrides_set(dst, src->v[i].name, &src->v[i].o, src->v[i].origin);
}

/* The hook: the entry for v, checked against the graph as the asking pass sees it. */
static int hook(void *user, IrGraph *g, const IrValue *v, PassOverride *out)
{
	FeOverride *e = fe_overrides_find(user, v->name);
	memset(out, 0, sizeof *out);
	if (!e)
		return 0;
	e->used = 1;
	*out = e->o;
	if (out->kind == PASS_FMT_LNS && fe_static_scale(v))
		out->fmt.scale = LNS_SCALE_STATIC; /* a format string's default scale is delayed */
	char msg[512];
	if (pass_override_check(g, v, out, msg, sizeof msg)) {
		ir_error(g->ctx, IR_ERR_INPUT, "%s: %s", e->origin, msg);
		return -1;
	}
	return 0;
}

void fe_overrides_hook(FeOverrides *ov, PassOptions *po)
{
	for (int i = 0; i < ov->n; i++)
		ov->v[i].used = 0;
	po->override = hook;
	po->override_user = ov;
}

int fe_overrides_check_used(IrCtx *c, const FeOverrides *ov, const char *recipe)
{
	int rc = 0;
	for (int i = 0; i < ov->n; i++)
		if (!ov->v[i].used) {
			ir_error(c, IR_ERR_INPUT,
			         "%s: no tensor named '%s' in the %s training graph",
			         ov->v[i].origin, ov->v[i].name, recipe);
			rc = -1;
		}
	return rc;
}

int fe_static_scale(const IrValue *v)
{
	return v->role == IR_ROLE_PARAM || (v->def && v->def->op == IR_OP_WEIGHT_VIEW);
}

/* ---- format text ---- */

static const char *const UPDATES[] = {NULL, "madam", "sgd", "adam"};

const char *fe_update_name(PassUpdate u)
{
	return (unsigned)u < 4 ? UPDATES[u] : NULL;
}

int fe_update_parse(const char *s, PassUpdate *out)
{
	for (int i = 1; i < 4; i++)
		if (!strcmp(s, UPDATES[i])) {
			*out = (PassUpdate)i;
			return 0;
		}
	return -1;
}

int fe_format_parse(const char *s, PassOverride *out)
{
	if (!strcmp(s, "fp32") || !strcmp(s, "f32")) {
		out->kind = PASS_FMT_F32;
		return 0;
	}
	LnsFormat f;
	if (lns_format_parse(s, &f))
		return -1;
	out->kind = PASS_FMT_LNS;
	out->fmt = f;
	return 0;
}

char *fe_format_str(const PassOverride *o, char *buf, size_t n)
{
	if (o->kind == PASS_FMT_F32)
		snprintf(buf, n, "fp32");
	else if (o->kind == PASS_FMT_LNS)
		lns_format_str_full(o->fmt, buf, n);
	else
		snprintf(buf, n, "%s", "");
	return buf;
}

/* ---- the --formats file ---- */

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

/* One non-empty line "<tensor> <format>". */
static int read_line(IrCtx *c, FeOverrides *ov, const char *path, int line, char *s)
{
	char *sp = s;
	while (*sp && !isspace((unsigned char)*sp))
		sp++;
	if (!*sp) {
		ir_error(c, IR_ERR_INPUT, "%s:%d: expected '<tensor> <format>'", path, line);
		return -1;
	}
	*sp = 0;
	const char *fmt = trim(sp + 1);
	PassOverride o = {0};
	if (fe_format_parse(fmt, &o)) {
		ir_error(c, IR_ERR_INPUT,
		         "%s:%d: '%s' is not a format (fp32, or like lns8g8, "
		         "lns5g2:sr)",
		         path, line, fmt);
		return -1;
	}
	char origin[600];
	snprintf(origin, sizeof origin, "%s:%d", path, line);
	FeOverride *e = fe_overrides_find(ov, s);
	if (e)
		o.update = e->o.update;
	fe_overrides_set(ov, s, &o, origin);
	return 0;
}

int fe_overrides_read_file(IrCtx *c, FeOverrides *ov, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		ir_error(c, IR_ERR_INPUT, "%s: %s", path, strerror(errno));
		return -1;
	}
	char buf[1024];
	int line = 0, rc = 0;
	while (fgets(buf, sizeof buf, f)) {
		line++;
		char *hash = strchr(buf, '#');
		if (hash)
			*hash = 0;
		char *s = trim(buf);
		if (*s && read_line(c, ov, path, line, s))
			rc = -1;
	}
	fclose(f);
	return rc;
}
