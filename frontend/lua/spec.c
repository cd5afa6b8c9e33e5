/* spec.c: what a trainer is built from, as a checkpoint's metadata text and back.
 *
 * The text is line-oriented, one "key<TAB>value" per line under a first line naming the
 * format ("lnsc-trainer 1"); overrides are "override<TAB>name<TAB>format<TAB>optimizer".
 * Values are escaped (%XX for '%', tabs, newlines and other control bytes), so any tensor
 * name survives. Parsing is strict about the header and lenient about keys it does not know
 * (a newer writer may add some); numbers and formats are checked, since the file may be
 * damaged in ways the CRC cannot see (written by something else).
 */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/lua/lnsc_lua.h"

static const char HEADER[] = "lnsc-trainer 1";

void fe_spec_init(FeTrainerSpec *s)
{
	memset(s, 0, sizeof *s);
	snprintf(s->recipe, sizeof s->recipe, "lns-madam");
	snprintf(s->backend, sizeof s->backend, "llvm");
	s->batch = 64;
	s->threads = 1;
	s->observe = 1;
	s->momentum = 0.9f;
	fe_overrides_init(&s->ov);
}

void fe_spec_free(FeTrainerSpec *s)
{
	free(s->model);
	fe_overrides_free(&s->ov);
	memset(s, 0, sizeof *s);
}

void fe_spec_set_model(FeTrainerSpec *s, const char *path)
{
	char *abs = realpath(path, NULL);
	free(s->model);
	s->model = abs ? abs : strdup(path);
	if (!s->model)
		abort();
}

void fe_spec_pass_options(const FeTrainerSpec *s, PassOptions *po)
{
	pass_options_default(po);
	po->recipe = s->recipe;
	po->momentum = s->momentum;
	po->optimizer = s->adam ? PASS_OPT_ADAM : PASS_OPT_SGD;
}

/* ---- writing ---- */

typedef struct Text {
	char *p;
	size_t len, cap;
} Text;

static void put(Text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		t->p = realloc(t->p, t->cap);
		if (!t->p)
			abort();
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = 0;
}

static void put_escaped(Text *t, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '%' || c < 0x20 || c == 0x7f) {
			char e[4];
			snprintf(e, sizeof e, "%%%02X", c);
			put(t, e, 3);
		} else {
			put(t, s, 1);
		}
	}
}

static void put_kv(Text *t, const char *key, const char *value)
{
	put(t, key, strlen(key));
	put(t, "\t", 1);
	put_escaped(t, value);
	put(t, "\n", 1);
}

char *fe_spec_meta(const FeTrainerSpec *s)
{
	Text t = {0};
	char num[64];
	put(&t, HEADER, strlen(HEADER));
	put(&t, "\n", 1);
	put_kv(&t, "model", s->model ? s->model : "");
	put_kv(&t, "recipe", s->recipe);
	put_kv(&t, "backend", s->backend);
	put_kv(&t, "cpu", s->cpu);
	snprintf(num, sizeof num, "%lld", (long long)s->batch);
	put_kv(&t, "batch", num);
	snprintf(num, sizeof num, "%d", s->threads);
	put_kv(&t, "threads", num);
	put_kv(&t, "observe", s->observe ? "1" : "0");
	snprintf(num, sizeof num, "%llu", (unsigned long long)s->seed);
	put_kv(&t, "seed", num);
	snprintf(num, sizeof num, "%.9g", (double)s->lr);
	put_kv(&t, "lr", num);
	snprintf(num, sizeof num, "%.9g", (double)s->momentum);
	put_kv(&t, "momentum", num);
	put_kv(&t, "optimizer", s->adam ? "adam" : "sgd");
	for (int i = 0; i < s->ov.n; i++) {
		const FeOverride *e = &s->ov.v[i];
		char fmt[96];
		put(&t, "override\t", 9);
		put_escaped(&t, e->name);
		put(&t, "\t", 1);
		put_escaped(&t, fe_format_str(&e->o, fmt, sizeof fmt));
		put(&t, "\t", 1);
		put_escaped(&t, e->o.update ? fe_update_name(e->o.update) : "");
		put(&t, "\n", 1);
	}
	return t.p;
}

/* ---- reading ---- */

static int hexval(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* Unescapes [s, e) in place into a NUL-terminated string; -1 on a bad escape. */
static int unescape(char *s, char *e)
{
	char *w = s;
	for (char *r = s; r < e; r++) {
		if (*r != '%') {
			*w++ = *r;
			continue;
		}
		if (e - r < 3 || hexval(r[1]) < 0 || hexval(r[2]) < 0)
			return -1;
		int c = hexval(r[1]) * 16 + hexval(r[2]);
		if (!c)
			return -1;
		*w++ = (char)c;
		r += 2;
	}
	*w = 0;
	return 0;
}

/* Splits line into up to 4 tab-separated unescaped fields; returns the count or -1. */
static int fields(char *line, char **f, int max)
{
	int n = 0;
	char *p = line;
	for (;;) {
		char *tab = strchr(p, '\t');
		char *end = tab ? tab : p + strlen(p);
		if (n == max || unescape(p, end))
			return -1;
		f[n++] = p;
		if (!tab)
			return n;
		p = tab + 1;
	}
}

static int set_num(const char *v, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;
	long long n = strtoll(v, &end, 10);
	if (end == v || *end || n < lo || n > hi)
		return -1;
	*out = n;
	return 0;
}

static int set_str(char *dst, size_t n, const char *v)
{
	if (strlen(v) >= n)
		return -1;
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int read_override(FeTrainerSpec *s, char **f, int n)
{
	PassOverride o = {0};
	if (n != 4 || !f[1][0] || (f[2][0] && fe_format_parse(f[2], &o)) ||
	    (f[3][0] && fe_update_parse(f[3], &o.update)))
		return -1;
	fe_overrides_set(&s->ov, f[1], &o, "checkpoint");
	return 0;
}

static int read_kv(FeTrainerSpec *s, char **f, int n)
{
	const char *k = f[0], *v = n > 1 ? f[1] : "";
	int64_t x;
	char *end;
	if (!strcmp(k, "override"))
		return read_override(s, f, n);
	if (n != 2)
		return -1;
	if (!strcmp(k, "model")) {
		free(s->model);
		if (!(s->model = strdup(v)))
			abort();
		return 0;
	}
	if (!strcmp(k, "recipe"))
		return set_str(s->recipe, sizeof s->recipe, v);
	if (!strcmp(k, "backend"))
		return set_str(s->backend, sizeof s->backend, v);
	if (!strcmp(k, "cpu"))
		return set_str(s->cpu, sizeof s->cpu, v);
	if (!strcmp(k, "batch"))
		return set_num(v, 1, 1 << 20, &s->batch);
	if (!strcmp(k, "observe")) {
		if (strcmp(v, "0") && strcmp(v, "1"))
			return -1;
		s->observe = v[0] == '1';
		return 0;
	}
	if (!strcmp(k, "threads")) {
		if (set_num(v, 1, 1024, &x))
			return -1;
		s->threads = (int)x;
		return 0;
	}
	if (!strcmp(k, "seed")) {
		if (set_num(v, 0, INT64_MAX, &x))
			return -1;
		s->seed = (uint64_t)x;
		return 0;
	}
	if (!strcmp(k, "lr") || !strcmp(k, "momentum")) {
		double d = strtod(v, &end);
		if (end == v || *end || !(d >= 0 && d < 1e6))
			return -1;
		*(!strcmp(k, "lr") ? &s->lr : &s->momentum) = (float)d;
		return 0;
	}
	if (!strcmp(k, "optimizer")) {
		s->adam = !strcmp(v, "adam");
		return strcmp(v, "adam") && strcmp(v, "sgd") ? -1 : 0;
	}
	return 0; /* a key of a newer writer */
}

int fe_spec_parse(const char *meta, FeTrainerSpec *s, char *err, size_t errn)
{
	size_t hl = strlen(HEADER);
	if (strncmp(meta, HEADER, hl) || meta[hl] != '\n')
		return lnsrt_fmt_err(err, errn,
		                     "it does not record the model it trains (written "
		                     "by a compiled trainer or an older lnsc)");
	char *text = strdup(meta + hl + 1), *save = NULL;
	if (!text)
		abort();
	int line = 1, rc = 0;
	for (char *l = strtok_r(text, "\n", &save); l && !rc; l = strtok_r(NULL, "\n", &save)) {
		char *f[4];
		int n = fields(l, f, 4);
		line++;
		if (n < 1 || read_kv(s, f, n))
			rc = lnsrt_fmt_err(err, errn, "its trainer record is damaged (line %d)",
			                   line);
	}
	free(text);
	if (!rc && (!s->model || !s->model[0] || !pass_recipe_known(s->recipe) ||
	            (strcmp(s->backend, "llvm") && strcmp(s->backend, "interp"))))
		rc = lnsrt_fmt_err(err, errn,
		                   "its trainer record names no model, or an unknown "
		                   "recipe or backend");
	return rc;
}
