/* parse.c: reads the textual form of print.c back into a graph (grammar at the top of print.c).
 *
 * A hand-written scanner and recursive descent over a cursor into the text: the parser asks
 * for what it expects next (a value name, a type, a number), so types like
 * "lns5g2:sr:delayed:uf=zero[4]" need no token of their own. Statements are lines. Values
 * are made with ir_value_new and nodes with ir_build, so the builders' checks and shape
 * inference run on parsed text as on imported models; the printed output types must agree
 * with inference (up to the float formats the precision pass assigns, ir_verify_type_ok).
 * Attributes are checked by ir_verify_attrs before building, so inference never sees a bad
 * one. Links between values (for, grad_of) are resolved at the end, in any order. The first
 * error stops the parse: one diagnostic "<fname>:<line>:<col>: ..." and NULL, never a crash.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

enum { MAX_OUT = 8, WORD_MAX = 64 };
#define MAX_DATA_BYTES ((size_t)1 << 30) /* "<N bytes>" data is materialised as zeros */

/* A link to resolve once every value exists: v->param = name, or name->grad = v. */
typedef struct Fixup {
	IrValue *v;
	int out; /* node outputs: index of v among the outputs, until the node is built */
	int grad_of;
	const char *name;
	int line, col;
} Fixup;

typedef struct Parser {
	IrCtx *c;
	IrGraph *g;
	const char *fname;
	const char *p, *bol; /* cursor and the beginning of its line */
	int line;
	int failed;
	int *vline; /* line on which each value (by id) was defined */
	int nvline;
	Fixup *fix;
	int nfix, capfix;
} Parser;

/* One output of a node statement, as written. */
typedef struct Out {
	const char *name, *at; /* name and where it was written */
	const IrType *t;
	const char *tat; /* where its type was written */
	int role;        /* IrRole, or -1: the phase's default */
} Out;

/* ---- diagnostics ---- */

static int vfail_lc(Parser *ps, int line, int col, const char *fmt, va_list ap)
{
	char msg[512];
	if (ps->failed)
		return -1;
	vsnprintf(msg, sizeof msg, fmt, ap);
	ir_error(ps->c, IR_ERR_INPUT, "%s:%d:%d: %s", ps->fname, line, col, msg);
	ps->failed = 1;
	return -1;
}

static int fail_lc(Parser *ps, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail_lc(Parser *ps, int line, int col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail_lc(ps, line, col, fmt, ap);
	va_end(ap);
	return -1;
}

static int col_of(const Parser *ps, const char *at)
{
	return (int)(at - ps->bol) + 1;
}

/* An error at `at`, a position on the current line. */
static int fail(Parser *ps, const char *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(Parser *ps, const char *at, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail_lc(ps, ps->line, col_of(ps, at), fmt, ap);
	va_end(ap);
	return -1;
}

static int is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int is_word(int c)
{
	return is_alpha(c) || is_digit(c) || c == '.';
}

/* What the text holds at p, for "expected X, found Y". */
static const char *found(const char *p, char *buf, size_t n)
{
	unsigned char c = (unsigned char)*p;
	size_t len = 0;
	if (!c)
		return "end of input";
	if (c == '\n')
		return "end of line";
	while (is_word((unsigned char)p[len]) && len < 24)
		len++;
	if (len)
		snprintf(buf, n, "'%.*s'", (int)len, p);
	else if (c < 0x20 || c >= 0x7f)
		snprintf(buf, n, "byte 0x%02x", c);
	else
		snprintf(buf, n, "'%c'", c);
	return buf;
}

/* ---- scanning ---- */

static void skip_blanks(Parser *ps)
{
	for (;;) {
		char c = *ps->p;
		if (c == ' ' || c == '\t' || c == '\r')
			ps->p++;
		else if (c == '#')
			while (*ps->p && *ps->p != '\n')
				ps->p++;
		else
			return;
	}
}

/* Skips blank lines and comment lines. */
static void skip_lines(Parser *ps)
{
	for (skip_blanks(ps); *ps->p == '\n'; skip_blanks(ps)) {
		ps->p++;
		ps->line++;
		ps->bol = ps->p;
	}
}

static const char *here(Parser *ps)
{
	skip_blanks(ps);
	return ps->p;
}

static int accept(Parser *ps, char ch)
{
	if (*here(ps) != ch)
		return 0;
	ps->p++;
	return 1;
}

static int expect(Parser *ps, char ch)
{
	char buf[48];
	if (accept(ps, ch))
		return 0;
	return fail(ps, ps->p, "expected '%c', found %s", ch, found(ps->p, buf, sizeof buf));
}

static int end_stmt(Parser *ps)
{
	char buf[48];
	if (*here(ps) == '\n' || !*ps->p)
		return 0;
	return fail(ps, ps->p, "expected end of line, found %s", found(ps->p, buf, sizeof buf));
}

/* A word [A-Za-z_][A-Za-z0-9_.]* into buf (truncated to fit); 0 if there is none. */
static int word(Parser *ps, char *buf, size_t n)
{
	const char *s = here(ps);
	if (!is_alpha((unsigned char)*s))
		return 0;
	while (is_word((unsigned char)*ps->p))
		ps->p++;
	size_t len = (size_t)(ps->p - s);
	snprintf(buf, n, "%.*s", (int)(len < n ? len : n - 1), s);
	return 1;
}

static int expect_word(Parser *ps, const char *w)
{
	char buf[WORD_MAX], fb[48];
	const char *at = here(ps);
	if (word(ps, buf, sizeof buf) && !strcmp(buf, w))
		return 0;
	return fail(ps, at, "expected '%s', found %s", w, found(at, fb, sizeof fb));
}

static int octal(int c)
{
	return c >= '0' && c <= '7';
}

static int hexval(int c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* One escape after the backslash at ps->p[-1]; returns the byte or -1. */
static int escape(Parser *ps)
{
	const char *at = ps->p - 1;
	int c = (unsigned char)*ps->p++, v = 0, k;
	switch (c) {
	case 'n': return '\n';
	case 't': return '\t';
	case 'r': return '\r';
	case 'a': return '\a';
	case 'b': return '\b';
	case 'f': return '\f';
	case 'v': return '\v';
	case '\\': case '"': case '\'': case '?': return c;
	case 'x':
		for (k = 0; k < 2 && hexval((unsigned char)*ps->p) >= 0; k++)
			v = v * 16 + hexval((unsigned char)*ps->p++);
		if (k)
			return v ? v : fail(ps, at, "NUL byte in a string");
		return fail(ps, at, "\\x without hex digits");
	default:
		if (!octal(c))
			return fail(ps, at, "unknown escape '\\%c'", c >= 0x20 && c < 0x7f ? c : '?');
		for (v = c - '0', k = 1; k < 3 && octal(*ps->p); k++)
			v = v * 8 + (*ps->p++ - '0');
		if (v == 0 || v > 255)
			return fail(ps, at, "octal escape out of range (1..255)");
		return v;
	}
}

/* "..." with C escapes, into the graph arena. */
static const char *string(Parser *ps)
{
	const char *q = here(ps);
	char buf[48];
	if (*q != '"') {
		fail(ps, q, "expected a string, found %s", found(q, buf, sizeof buf));
		return NULL;
	}
	/* the rest of the line bounds the decoded length */
	char *out = ir_arena_alloc(ps->g->arena, strcspn(q, "\n")), *o = out;
	for (ps->p = q + 1; *ps->p != '"';) {
		if (!*ps->p || *ps->p == '\n') {
			fail(ps, q, "unterminated string");
			return NULL;
		}
		int c = (unsigned char)*ps->p++;
		if (c == '\\' && (c = escape(ps)) < 0)
			return NULL;
		*o++ = (char)c;
	}
	ps->p++;
	*o = 0;
	return out;
}

static int name_char(int c)
{
	return is_alpha(c) || is_digit(c) || (c && strchr("./:-", c));
}

/* '%' name | '%' string; *at gets where it was written. */
static const char *vname(Parser *ps, const char **at)
{
	char buf[48];
	const char *s = *at = here(ps), *name;
	if (*s != '%') {
		fail(ps, s, "expected a value (%%name), found %s", found(s, buf, sizeof buf));
		return NULL;
	}
	ps->p++;
	if (*ps->p == '"') {
		if (!(name = string(ps)))
			return NULL;
	} else {
		const char *b = ps->p;
		if (!is_word((unsigned char)*b) && *b != '/') {
			fail(ps, s, "expected a name after '%%'");
			return NULL;
		}
		while (name_char((unsigned char)*ps->p))
			ps->p++;
		name = ir_arena_printf(ps->g->arena, "%.*s", (int)(ps->p - b), b);
	}
	if (!*name) {
		fail(ps, s, "empty value name");
		return NULL;
	}
	return name;
}

/* A value that must exist already. */
static IrValue *use(Parser *ps)
{
	const char *at, *name = vname(ps, &at);
	if (!name)
		return NULL;
	IrValue *v = ir_graph_value(ps->g, name);
	if (!v)
		fail(ps, at, "undefined value %%%s", name);
	return v;
}

static int check_new(Parser *ps, const char *name, const char *at)
{
	IrValue *v = ir_graph_value(ps->g, name);
	if (!v)
		return 0;
	int line = v->id < ps->nvline ? ps->vline[v->id] : 0;
	return fail(ps, at, "redefinition of %%%s (first defined on line %d)", name, line);
}

static void note_line(Parser *ps, const IrValue *v)
{
	if (v->id >= ps->nvline) {
		int n = v->id * 2 + 16;
		ps->vline = realloc(ps->vline, sizeof(int) * (size_t)n);
		if (!ps->vline)
			abort();
		memset(ps->vline + ps->nvline, 0, sizeof(int) * (size_t)(n - ps->nvline));
		ps->nvline = n;
	}
	ps->vline[v->id] = ps->line;
}

/* ---- numbers ---- */

static int number_at(Parser *ps, const char **s)
{
	char buf[48];
	*s = here(ps);
	int c = (unsigned char)**s;
	if (is_digit(c) || c == '-' || c == '+' || c == '.' || is_alpha(c))
		return 0;
	return fail(ps, *s, "expected a number, found %s", found(*s, buf, sizeof buf));
}

static int number_end(Parser *ps, const char *s, const char *end)
{
	if (end == s || is_word((unsigned char)*end))
		return fail(ps, s, "malformed number");
	ps->p = end;
	return 0;
}

static int num_f32(Parser *ps, float *out)
{
	const char *s;
	char *end;
	if (number_at(ps, &s))
		return -1;
	errno = 0;
	*out = strtof(s, &end);
	if (number_end(ps, s, end))
		return -1;
	if (errno == ERANGE && isinf(*out))
		return fail(ps, s, "number out of range for f32");
	return 0;
}

static int num_f64(Parser *ps, double *out)
{
	const char *s;
	char *end;
	if (number_at(ps, &s))
		return -1;
	errno = 0;
	*out = strtod(s, &end);
	if (number_end(ps, s, end))
		return -1;
	if (errno == ERANGE && isinf(*out))
		return fail(ps, s, "number out of range for f64");
	return 0;
}

/* An integer in [lo, hi]. */
static int num_int(Parser *ps, int64_t lo, int64_t hi, int64_t *out)
{
	const char *s;
	char *end;
	if (number_at(ps, &s))
		return -1;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (number_end(ps, s, end))
		return -1;
	if (errno == ERANGE || v < lo || v > hi)
		return fail(ps, s, "integer %.*s out of range (%lld..%lld)", (int)(end - s), s,
			    (long long)lo, (long long)hi);
	*out = v;
	return 0;
}

static int num_u64(Parser *ps, uint64_t *out)
{
	const char *s;
	char *end;
	if (number_at(ps, &s))
		return -1;
	if (*s == '-')
		return fail(ps, s, "negative value for u64");
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (number_end(ps, s, end))
		return -1;
	if (errno == ERANGE)
		return fail(ps, s, "integer out of range for u64");
	return 0;
}

/* ---- types and data ---- */

/* The element part of a type (a dtype name or an LNS format), len bytes at s. */
static int elem(Parser *ps, const char *s, size_t len, IrDType *dt, LnsFormat *fmt)
{
	char buf[WORD_MAX];
	snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), s);
	memset(fmt, 0, sizeof *fmt);
	if (len >= sizeof buf)
		return fail(ps, s, "unknown type '%s...'", buf);
	if (!strncmp(buf, "lns", 3)) {
		*dt = IR_DT_LNS;
		if (lns_format_parse(buf, fmt) || !lns_format_valid(*fmt))
			return fail(ps, s, "bad LNS format '%s'", buf);
		return 0;
	}
	if (ir_dtype_parse(buf, dt))
		return fail(ps, s, "unknown type '%s'", buf);
	return 0;
}

static size_t elem_len(const char *s)
{
	return strcspn(s, "[]<> \t\r\n#,{}()@%");
}

/* dims := '[' [INT {',' INT}] ']', within the limits ir_type enforces. */
static int dims(Parser *ps, int *rank, int64_t *d)
{
	int64_t numel = 1;
	*rank = 0;
	if (expect(ps, '['))
		return -1;
	if (accept(ps, ']'))
		return 0;
	do {
		const char *at = here(ps);
		int64_t v;
		if (num_int(ps, 0, IR_MAX_DIM, &v))
			return -1;
		if (*rank == IR_MAX_RANK)
			return fail(ps, at, "more than %d dimensions", IR_MAX_RANK);
		if (v && numel > IR_MAX_NUMEL / v)
			return fail(ps, at, "more than %lld elements", (long long)IR_MAX_NUMEL);
		numel *= v;
		d[(*rank)++] = v;
	} while (accept(ps, ','));
	return expect(ps, ']');
}

static const IrType *make_type(Parser *ps, const char *at, IrDType dt, LnsFormat fmt, int rank,
			       const int64_t *d)
{
	const IrType *t = dt == IR_DT_LNS ? ir_type_lns(ps->c, fmt, rank, d)
					  : ir_type(ps->c, dt, rank, d);
	if (!t)
		fail(ps, at, "invalid type");
	return t;
}

static const IrType *type(Parser *ps, const char **at)
{
	char buf[48];
	const char *s = *at = here(ps);
	size_t len = elem_len(s);
	IrDType dt;
	LnsFormat fmt;
	int rank;
	int64_t d[IR_MAX_RANK];
	if (!len) {
		fail(ps, s, "expected a type, found %s", found(s, buf, sizeof buf));
		return NULL;
	}
	if (elem(ps, s, len, &dt, &fmt))
		return NULL;
	ps->p = s + len;
	if (*ps->p != '[') {
		fail(ps, ps->p, "expected '[' after the element type");
		return NULL;
	}
	if (dims(ps, &rank, d))
		return NULL;
	return make_type(ps, s, dt, fmt, rank, d);
}

/* One element of inline data, stored at index i of buf. */
static int datum(Parser *ps, IrDType dt, void *buf, int64_t i)
{
	static const int64_t lo[IR_DT_COUNT] = {
		[IR_DT_I8] = INT8_MIN, [IR_DT_I16] = INT16_MIN, [IR_DT_I32] = INT32_MIN,
		[IR_DT_I64] = INT64_MIN};
	static const int64_t hi[IR_DT_COUNT] = {
		[IR_DT_I8] = INT8_MAX, [IR_DT_I16] = INT16_MAX, [IR_DT_I32] = INT32_MAX,
		[IR_DT_I64] = INT64_MAX, [IR_DT_U8] = UINT8_MAX, [IR_DT_U16] = UINT16_MAX,
		[IR_DT_U32] = UINT32_MAX, [IR_DT_BOOL] = 1};
	int64_t v;
	switch (dt) {
	case IR_DT_F32: return num_f32(ps, (float *)buf + i);
	case IR_DT_F64: return num_f64(ps, (double *)buf + i);
	case IR_DT_U64: return num_u64(ps, (uint64_t *)buf + i);
	default: break;
	}
	if (num_int(ps, lo[dt], hi[dt], &v))
		return -1;
	switch (dt) {
	case IR_DT_I8: ((int8_t *)buf)[i] = (int8_t)v; break;
	case IR_DT_I16: ((int16_t *)buf)[i] = (int16_t)v; break;
	case IR_DT_I32: ((int32_t *)buf)[i] = (int32_t)v; break;
	case IR_DT_I64: ((int64_t *)buf)[i] = v; break;
	case IR_DT_U16: ((uint16_t *)buf)[i] = (uint16_t)v; break;
	case IR_DT_U32: ((uint32_t *)buf)[i] = (uint32_t)v; break;
	default: ((uint8_t *)buf)[i] = (uint8_t)v; break; /* u8, bool */
	}
	return 0;
}

/* '[' NUM, ... ']': exactly numel elements, into a malloc'd buffer grown as they come (so
 * memory follows the text, not the declared shape). */
static void *data_list(Parser *ps, const IrType *it)
{
	size_t esz = ir_type_elem_size(it), cap = 0;
	int64_t n = 0;
	char *buf = NULL;
	const char *at = here(ps);
	if (it->dt == IR_DT_F16 || it->dt == IR_DT_LNS) {
		fail(ps, at, "inline data of this type is not supported (use <N bytes>)");
		return NULL;
	}
	if (expect(ps, '['))
		return NULL;
	if (!accept(ps, ']')) {
		do {
			if (n == it->numel) {
				fail(ps, here(ps), "more than %lld elements", (long long)it->numel);
				goto err;
			}
			if ((size_t)n == cap) {
				cap = cap ? cap * 2 : 16;
				if (!(buf = realloc(buf, cap * esz)))
					abort();
			}
			if (datum(ps, it->dt, buf, n++))
				goto err;
		} while (accept(ps, ','));
		if (expect(ps, ']'))
			goto err;
	}
	if (n != it->numel) {
		fail(ps, at, "%lld elements given, the type has %lld", (long long)n,
		     (long long)it->numel);
		goto err;
	}
	return buf ? buf : calloc(1, 1);
err:
	free(buf);
	return NULL;
}

static int data_size(Parser *ps, const IrType *it)
{
	int64_t n;
	const char *at;
	if (expect(ps, '<') || (at = here(ps), num_int(ps, 0, INT64_MAX, &n)) ||
	    expect_word(ps, "bytes") || expect(ps, '>'))
		return -1;
	if ((uint64_t)n != ir_type_bytes(it))
		return fail(ps, at, "the data is %zu bytes, not %lld", ir_type_bytes(it),
			    (long long)n);
	return 0;
}

/* data := [ELEM] ('[' ... ']' | '<' N 'bytes' '>'), for a value of type vt. Returns malloc'd
 * data (zeros for "<N bytes>") and its type in *it, or NULL after an error. */
static void *data(Parser *ps, const IrType *vt, const IrType **it)
{
	const char *s = here(ps);
	IrDType dt = ir_dtype_is_float(vt->dt) ? IR_DT_F32 : vt->dt;
	LnsFormat fmt = {0};
	size_t len = is_alpha((unsigned char)*s) ? elem_len(s) : 0;
	if (len && elem(ps, s, len, &dt, &fmt))
		return NULL;
	ps->p = s + len;
	if (!(*it = make_type(ps, s, dt, fmt, vt->rank, vt->dims)))
		return NULL;
	if (*here(ps) != '<')
		return data_list(ps, *it);
	size_t bytes = ir_type_bytes(*it);
	if (data_size(ps, *it))
		return NULL;
	if (bytes > MAX_DATA_BYTES) {
		fail(ps, s, "data of %zu bytes is too large for the textual form", bytes);
		return NULL;
	}
	void *buf = calloc(bytes ? bytes : 1, 1);
	if (!buf)
		abort();
	return buf;
}

/* links := { 'for' VALUE | 'grad_of' VALUE }, recorded for the end; v may be NULL (a node
 * output not built yet: out says which). */
static int links(Parser *ps, IrValue *v, int out)
{
	for (;;) {
		const char *s = here(ps), *at, *name;
		char w[WORD_MAX];
		if (!word(ps, w, sizeof w))
			return 0;
		if (strcmp(w, "for") && strcmp(w, "grad_of")) {
			ps->p = s;
			return 0;
		}
		if (!(name = vname(ps, &at)))
			return -1;
		if (ps->nfix == ps->capfix) {
			ps->capfix = ps->capfix ? ps->capfix * 2 : 32;
			ps->fix = realloc(ps->fix, sizeof *ps->fix * (size_t)ps->capfix);
			if (!ps->fix)
				abort();
		}
		ps->fix[ps->nfix++] = (Fixup){v, out, w[0] == 'g', name, ps->line, col_of(ps, at)};
	}
}

/* ---- statements ---- */

/* ROLE %name ':' type ['=' data] links; the role and name are read already. */
static int decl(Parser *ps, IrRole role, const char *name, const char *at)
{
	const char *tat;
	const IrType *t, *it = NULL;
	void *init = NULL;
	if (check_new(ps, name, at) || expect(ps, ':') || !(t = type(ps, &tat)))
		return -1;
	if (accept(ps, '=') && !(init = data(ps, t, &it)))
		return -1;
	if (role == IR_ROLE_LABEL && ps->g->labels) {
		free(init);
		return fail(ps, at, "a second label value (the first is %%%s)", ps->g->labels->name);
	}
	IrValue *v = ir_value_new(ps->g, name, t, role, init, it);
	free(init);
	if (!v)
		return fail(ps, at, "cannot declare %%%s", name);
	note_line(ps, v);
	return links(ps, v, 0) ? -1 : end_stmt(ps);
}

static int attr_field(Parser *ps, const IrAttrField *f, IrAttrs *a)
{
	char *p = (char *)a + f->off, w[WORD_MAX];
	const char *at = here(ps);
	int64_t v;
	int n = 0;
	switch (f->type) {
	case IR_AF_FLOAT: return num_f32(ps, (float *)p);
	case IR_AF_INT:
		if (num_int(ps, INT_MIN, INT_MAX, &v))
			return -1;
		*(int *)p = (int)v;
		return 0;
	case IR_AF_I64: return num_int(ps, INT64_MIN, INT64_MAX, (int64_t *)p);
	case IR_AF_DTYPE:
		if (!word(ps, w, sizeof w) || ir_dtype_parse(w, (IrDType *)p))
			return fail(ps, at, "expected a dtype (f32, i64, ...)");
		return 0;
	case IR_AF_INTS:
	case IR_AF_I64S: break;
	}
	/* a list: at most max entries; fixed-size lists exactly that many, counted lists a
	 * multiple of per */
	int per = f->fixed ? 1 : f->per ? f->per : 1, max = f->fixed ? f->fixed : IR_MAX_RANK * per;
	if (expect(ps, '['))
		return -1;
	if (!accept(ps, ']')) {
		do {
			if (n == max)
				return fail(ps, here(ps), "more than %d entries", max);
			if (f->type == IR_AF_I64S) {
				if (num_int(ps, INT64_MIN, INT64_MAX, (int64_t *)p + n++))
					return -1;
			} else if (num_int(ps, INT_MIN, INT_MAX, &v))
				return -1;
			else
				((int *)p)[n++] = (int)v;
		} while (accept(ps, ','));
		if (expect(ps, ']'))
			return -1;
	}
	if (f->fixed && n != f->fixed)
		return fail(ps, at, "'%s' needs %d entries, has %d", f->name, f->fixed, n);
	if (f->fixed)
		return 0;
	if (n % per)
		return fail(ps, at, "'%s' needs a multiple of %d entries, has %d", f->name, per, n);
	*(int *)((char *)a + f->n_off) = n / per;
	return 0;
}

/* attrs := '{' NAME '=' value {',' ...} '}' with every field of the op's kind once. */
static int attrs(Parser *ps, IrOp op, IrAttrs *a)
{
	int nf;
	const IrAttrField *fl = ir_attr_fields(ir_op_info[op].attr, &nf);
	const char *at = here(ps), *name = ir_op_name(op);
	unsigned seen = 0;
	if (*at != '{')
		return nf ? fail(ps, at, "%s needs its attributes {%s=...}", name, fl[0].name) : 0;
	if (!nf)
		return fail(ps, at, "%s takes no attributes", name);
	ps->p++;
	do {
		char w[WORD_MAX];
		const char *kat = here(ps);
		int i = 0;
		if (!word(ps, w, sizeof w))
			return fail(ps, kat, "expected an attribute name");
		while (i < nf && strcmp(fl[i].name, w))
			i++;
		if (i == nf)
			return fail(ps, kat, "%s has no attribute '%s'", name, w);
		if (seen & (1u << i))
			return fail(ps, kat, "attribute '%s' given twice", w);
		seen |= 1u << i;
		if (expect(ps, '=') || attr_field(ps, &fl[i], a))
			return -1;
	} while (accept(ps, ','));
	at = here(ps);
	if (expect(ps, '}'))
		return -1;
	for (int i = 0; i < nf; i++)
		if (!(seen & (1u << i)))
			return fail(ps, at, "missing attribute '%s' of %s", fl[i].name, name);
	return 0;
}

/* out := type [ROLE] links, for each of the n outputs. */
static int out_types(Parser *ps, Out *o, int n)
{
	for (int i = 0; i < n; i++) {
		char w[WORD_MAX];
		IrRole r;
		if ((i && expect(ps, ',')) || !(o[i].t = type(ps, &o[i].tat)))
			return -1;
		const char *s = here(ps);
		o[i].role = -1;
		if (word(ps, w, sizeof w)) {
			if (!ir_role_parse(w, &r))
				o[i].role = (int)r;
			else
				ps->p = s;
		}
		if (links(ps, NULL, i))
			return -1;
	}
	return 0;
}

/* '@' PHASE [STRING] */
static int phase_name(Parser *ps, IrPhase *ph, const char **name)
{
	char w[WORD_MAX];
	const char *at;
	if (expect(ps, '@'))
		return -1;
	at = here(ps);
	if (!word(ps, w, sizeof w))
		return fail(ps, at, "expected a phase (fwd, loss, bwd, update)");
	for (*ph = IR_PHASE_FWD; strcmp(w, ir_phase_name(*ph)); (*ph)++)
		if (*ph == IR_PHASE_UPDATE)
			return fail(ps, at, "unknown phase '%s' (fwd, loss, bwd, update)", w);
	*name = NULL;
	if (*here(ps) == '"' && !(*name = string(ps)))
		return -1;
	return 0;
}

static int check_arity(Parser *ps, IrOp op, int nin, int nout, const Out *o, const char *at)
{
	const IrOpInfo *oi = &ir_op_info[op];
	if (nin < oi->min_in || nin > oi->max_in) {
		if (oi->min_in == oi->max_in)
			return fail(ps, at, "%s takes %d inputs, got %d", oi->name, oi->min_in, nin);
		return fail(ps, at, "%s takes %d to %d inputs, got %d", oi->name, oi->min_in,
			    oi->max_in, nin);
	}
	if (nout != oi->nout)
		return fail(ps, nout ? o[0].at : at, "%s has %d outputs, %d named", oi->name,
			    oi->nout, nout);
	for (int i = 0; i < nout; i++) {
		if (check_new(ps, o[i].name, o[i].at))
			return -1;
		for (int j = 0; j < i; j++)
			if (!strcmp(o[i].name, o[j].name))
				return fail(ps, o[i].at, "%%%s is named twice", o[i].name);
	}
	return 0;
}

/* Builds the parsed node; the builder's diagnostics get this line as their source. */
static int build(Parser *ps, IrOp op, const char *at, IrValue **in, int nin, const IrAttrs *a,
		 Out *o, int nout, IrPhase ph, const char *name, int fix0)
{
	const char *names[MAX_OUT], *src = ps->g->source;
	char loc[512], b1[256], b2[256];
	int nd = ir_error_count(ps->c);
	for (int i = 0; i < nout; i++)
		names[i] = o[i].name;
	snprintf(loc, sizeof loc, "%s:%d:%d", ps->fname, ps->line, col_of(ps, at));
	ps->g->source = loc;
	IrNode *n = ir_build(ps->g, op, name, nin, in, a, names);
	ps->g->source = src;
	if (!n) {
		/* inference may call a dtype unsupported; in a text it is an input error */
		if (ir_error_count(ps->c) == nd || ir_error_status(ps->c) != IR_ERR_INPUT)
			fail(ps, at, "%s is ill-typed", ir_op_name(op));
		ps->failed = 1;
		return -1;
	}
	n->phase = ph;
	for (int i = 0; i < nout; i++) {
		IrValue *v = n->out[i];
		if (v->type != o[i].t) {
			if (!ir_verify_type_ok(o[i].t, v->type))
				return fail(ps, o[i].tat, "type of %%%s is %s, inferred %s", v->name,
					    ir_type_str(o[i].t, 1, b1, sizeof b1),
					    ir_type_str(v->type, 1, b2, sizeof b2));
			v->type = o[i].t;
		}
		v->role = o[i].role >= 0 ? (IrRole)o[i].role : ir_phase_role(ph);
		note_line(ps, v);
	}
	for (int i = fix0; i < ps->nfix; i++)
		ps->fix[i].v = n->out[ps->fix[i].out];
	return 0;
}

/* [outs '='] OP '(' ins ')' [attrs] [':' out types] '@' PHASE [STRING]; outs are read. */
static int node(Parser *ps, Out *o, int nout)
{
	char w[WORD_MAX], fb[48];
	const char *at = here(ps), *name = NULL;
	IrValue *in[IR_MAX_IN];
	IrAttrs a;
	IrOp op;
	IrPhase ph;
	int nin = 0, fix0 = ps->nfix;
	memset(&a, 0, sizeof a);
	if (!word(ps, w, sizeof w))
		return fail(ps, at, "expected an op, found %s", found(at, fb, sizeof fb));
	if (ir_op_lookup(w, &op))
		return fail(ps, at, "unknown op '%s'", w);
	if (expect(ps, '('))
		return -1;
	if (!accept(ps, ')')) {
		do {
			if (nin == IR_MAX_IN)
				return fail(ps, here(ps), "more than %d inputs", IR_MAX_IN);
			if (!(in[nin++] = use(ps)))
				return -1;
		} while (accept(ps, ','));
		if (expect(ps, ')'))
			return -1;
	}
	if (check_arity(ps, op, nin, nout, o, at))
		return -1;
	const char *aat = here(ps);
	if (attrs(ps, op, &a))
		return -1;
	char msg[256];
	IrNode tmp = {.op = op, .name = w, .nin = nin, .nout = nout, .in = in, .attr = a};
	if (ir_verify_attrs(&tmp, msg, sizeof msg))
		return fail(ps, aat, "%s: %s", w, msg);
	if (nout && (expect(ps, ':') || out_types(ps, o, nout)))
		return -1;
	if (phase_name(ps, &ph, &name) || end_stmt(ps))
		return -1;
	return build(ps, op, at, in, nin, &a, o, nout, ph, name, fix0);
}

/* %a, %b = ... */
static int node_with_outputs(Parser *ps)
{
	Out o[MAX_OUT];
	int n = 0;
	memset(o, 0, sizeof o);
	do {
		if (n == MAX_OUT)
			return fail(ps, here(ps), "more than %d outputs", MAX_OUT);
		if (!(o[n].name = vname(ps, &o[n].at)))
			return -1;
		n++;
	} while (accept(ps, ','));
	return expect(ps, '=') ? -1 : node(ps, o, n);
}

static int output_or_loss(Parser *ps, int is_loss, const char *name, const char *at)
{
	IrValue *v = ir_graph_value(ps->g, name);
	if (!v)
		return fail(ps, at, "undefined value %%%s", name);
	if (is_loss) {
		if (ps->g->loss)
			return fail(ps, at, "a second loss (the first is %%%s)", ps->g->loss->name);
		ps->g->loss = v;
	} else {
		if (v->is_output)
			return fail(ps, at, "%%%s is an output already", name);
		v->is_output = 1;
		ir_vec_push(&ps->g->outputs, v);
	}
	return end_stmt(ps);
}

static int stmt(Parser *ps)
{
	char w[WORD_MAX], fb[48];
	const char *at = here(ps), *nat, *name;
	IrRole role = IR_ROLE_ACT;
	if (*at == '%')
		return node_with_outputs(ps);
	if (!word(ps, w, sizeof w))
		return fail(ps, at, "expected a statement or '}', found %s", found(at, fb, sizeof fb));
	if (*here(ps) == '(') {
		ps->p = at;
		return node(ps, NULL, 0);
	}
	int is_out = !strcmp(w, "output"), is_loss = !strcmp(w, "loss");
	if (!is_out && ir_role_parse(w, &role))
		return fail(ps, at, "unknown statement '%s'", w);
	if (!(name = vname(ps, &nat)))
		return -1;
	if (is_out || (is_loss && *here(ps) != ':'))
		return output_or_loss(ps, is_loss, name, nat);
	return decl(ps, role, name, nat);
}

static int resolve(Parser *ps)
{
	for (int i = 0; i < ps->nfix; i++) {
		Fixup *f = &ps->fix[i];
		IrValue *t = ir_graph_value(ps->g, f->name);
		if (!t)
			return fail_lc(ps, f->line, f->col, "undefined value %%%s", f->name);
		if (!f->grad_of) {
			if (f->v->param)
				return fail_lc(ps, f->line, f->col, "%%%s has two 'for' links",
					       f->v->name);
			f->v->param = t;
		} else {
			if (t->grad)
				return fail_lc(ps, f->line, f->col, "%%%s has a gradient already (%%%s)",
					       t->name, t->grad->name);
			t->grad = f->v;
		}
	}
	return 0;
}

static int graph(Parser *ps)
{
	const char *at, *name;
	char fb[48];
	int64_t opset;
	skip_lines(ps);
	if (expect_word(ps, "graph") || !(name = string(ps)) || expect_word(ps, "opset") ||
	    num_int(ps, 0, INT_MAX, &opset) || expect(ps, '{') || end_stmt(ps))
		return -1;
	ps->g->name = name;
	ps->g->opset = (int)opset;
	for (;;) {
		skip_lines(ps);
		at = ps->p;
		if (!*at)
			return fail(ps, at, "unexpected end of input: expected '}'");
		if (*at == '}')
			break;
		if (stmt(ps))
			return -1;
	}
	ps->p++;
	skip_lines(ps);
	if (*ps->p)
		return fail(ps, ps->p, "unexpected %s after the graph", found(ps->p, fb, sizeof fb));
	return resolve(ps);
}

IrGraph *ir_parse(IrCtx *c, const char *text, const char *fname)
{
	Parser ps;
	memset(&ps, 0, sizeof ps);
	ps.c = c;
	ps.fname = fname ? fname : "<text>";
	ps.p = ps.bol = text ? text : "";
	ps.line = 1;
	ps.g = ir_graph_new(c, NULL, ps.fname);
	int rc = graph(&ps);
	free(ps.vline);
	free(ps.fix);
	if (rc) {
		ir_graph_free(ps.g);
		return NULL;
	}
	ir_recount_uses(ps.g);
	return ps.g;
}
