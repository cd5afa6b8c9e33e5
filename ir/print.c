/* print.c: the textual form of the IR: one declaration or node per line, parseable back.
 *
 * The form is what pass tests are written in (IR in, IR out) and what LNSC_DUMP shows, so it
 * says everything a pass may look at: each value's name, type with the full LNS format, role
 * and links (the param it belongs to, the values it is the gradient of), each node's op,
 * inputs, every field of its attribute struct (in the order of the field table below),
 * outputs, phase and name. Declarations come in value order, nodes in graph order, then the
 * graph outputs and the loss; parse.c reads exactly this, so print(parse(print(g))) is
 * print(g). Data is printed inline up to 64 elements (f32 with %.9g, which strtof reads back
 * bit-exactly; integers exactly). Larger data is printed as its size only, "<N bytes>", and
 * parses back as zeros: a round trip of such a graph keeps the structure, not the data.
 * The memory plan (IrLoc, IrPlan) is not part of the text.
 *
 *   graph   := 'graph' STRING 'opset' INT '{' NL { stmt NL } '}'
 *   stmt    := ROLE VALUE ':' type [ '=' data ] links             a value without producer
 *            | [ VALUE { ',' VALUE } '=' ] OP '(' [ VALUE { ',' VALUE } ] ')' [ attrs ]
 *              [ ':' out { ',' out } ] '@' PHASE [ STRING ]        a node
 *            | 'output' VALUE | 'loss' VALUE
 *   type    := ELEM '[' [ INT { ',' INT } ] ']'     ELEM: f32 i64 bool ... or an LNS format
 *   data    := [ ELEM ] ( '[' [ NUM { ',' NUM } ] ']' | '<' INT 'bytes' '>' )
 *              ELEM when the data's dtype is not the default: f32 for float and LNS values,
 *              the value's own dtype otherwise
 *   out     := type [ ROLE ] links                   ROLE when not ir_phase_role(PHASE)
 *   links   := { 'for' VALUE | 'grad_of' VALUE }     v->param = VALUE; VALUE->grad = v
 *   attrs   := '{' NAME '=' ( NUM | '[' INT, ... ']' | DTYPE ) { ',' ... } '}'  every field
 *   VALUE   := '%' ( [A-Za-z0-9_./][A-Za-z0-9_./:-]* | STRING )  STRING: "..." with C escapes
 *
 * '#' starts a comment; blank lines are ignored. Example:
 *
 *   graph "mlp" opset 13 {
 *   	input %x : f32[64,784]
 *   	param %fc1.weight : lns12g128:rn:static:uf=min[256,784] = <802816 bytes>
 *   	state %madam.v/fc1.weight : f32[256,784] for %fc1.weight
 *   	%h = Gemm(%x, %fc1.weight) {alpha=1, beta=1, transA=0, transB=1} : f32[64,256] @fwd "fc1"
 *   	%y, %mask = Dropout(%h) {ratio=0.5, training=1} : f32[64,256], bool[64,256] @fwd "drop"
 *   	lnsc.Madam(%fc1.weight, %g, %madam.v/fc1.weight) {lr=0.0078125, ...} @update "upd"
 *   	output %y
 *   }
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

enum { INLINE_MAX = 64 }; /* data up to this many elements is printed */

/* Field table entries: a scalar, a list counted by an int field (per elements per unit of
 * the count), a list of fixed length. */
#define F(kind, field) offsetof(IrAttrs, kind.field)
#define S(name, ty, kind, field) {name, IR_AF_##ty, F(kind, field), 0, 0, 0}
#define L(name, ty, kind, field, count, per) \
	{name, IR_AF_##ty, F(kind, field), F(kind, count), 0, per}
#define A(name, ty, kind, field, len) {name, IR_AF_##ty, F(kind, field), 0, len, 0}
static const IrAttrField f_gemm[] = {
	S("alpha", FLOAT, gemm, alpha), S("beta", FLOAT, gemm, beta),
	S("transA", INT, gemm, trans_a), S("transB", INT, gemm, trans_b),
};
static const IrAttrField f_alpha[] = {S("alpha", FLOAT, alpha, alpha)};
static const IrAttrField f_axis[] = {S("axis", INT, axis, axis), S("legacy", INT, axis, legacy)};
static const IrAttrField f_perm[] = {L("perm", INTS, perm, perm, n, 1)};
static const IrAttrField f_axes[] = {L("axes", INTS, axes, axes, n, 1)};
static const IrAttrField f_shape[] = {L("shape", I64S, shape, dims, rank, 1)};
static const IrAttrField f_cast[] = {S("to", DTYPE, cast, to)};
static const IrAttrField f_dropout[] = {
	S("ratio", FLOAT, dropout, ratio), S("training", INT, dropout, training),
};
static const IrAttrField f_slice[] = {
	S("axis", INT, slice, axis), S("start", I64, slice, start), S("end", I64, slice, end),
};
static const IrAttrField f_opt[] = {
	S("lr", FLOAT, opt, lr), S("beta1", FLOAT, opt, beta1), S("beta2", FLOAT, opt, beta2),
	S("eps", FLOAT, opt, eps), S("momentum", FLOAT, opt, momentum),
	S("weight_decay", FLOAT, opt, weight_decay), S("p_scale", FLOAT, opt, p_scale),
	S("g_bound", FLOAT, opt, g_bound),
};
static const IrAttrField f_conv[] = {
	A("kernel", INTS, conv, kernel, 2), A("strides", INTS, conv, stride, 2),
	A("dilations", INTS, conv, dilation, 2), A("pads", INTS, conv, pad, 4),
	S("group", INT, conv, group), A("xhw", I64S, conv, xhw, 2),
};
static const IrAttrField f_bn[] = {
	S("epsilon", FLOAT, bn, epsilon), S("momentum", FLOAT, bn, momentum),
	S("training", INT, bn, training),
};
static const IrAttrField f_pool[] = {
	A("kernel", INTS, pool, kernel, 2), A("strides", INTS, pool, stride, 2),
	A("dilations", INTS, pool, dilation, 2), A("pads", INTS, pool, pad, 4),
	S("ceil_mode", INT, pool, ceil_mode), S("count_include_pad", INT, pool, count_include_pad),
	A("xhw", I64S, pool, xhw, 2),
};
/* pads: the begins then the ends, 2 per dim */
static const IrAttrField f_pad[] = {
	L("pads", I64S, pad, pads, n, 2), S("value", FLOAT, pad, value),
};
static const IrAttrField f_clip[] = {S("min", FLOAT, clip, min), S("max", FLOAT, clip, max)};
#undef F
#undef S
#undef L
#undef A

#define KIND(k, t) [IR_ATTR_##k] = {t, (int)(sizeof t / sizeof t[0])}
static const struct {
	const IrAttrField *f;
	int n;
} attr_kinds[] = {
	[IR_ATTR_NONE] = {NULL, 0}, KIND(GEMM, f_gemm), KIND(ALPHA, f_alpha),
	KIND(AXIS, f_axis),         KIND(PERM, f_perm), KIND(AXES, f_axes),
	KIND(SHAPE, f_shape),       KIND(CAST, f_cast), KIND(DROPOUT, f_dropout),
	KIND(SLICE, f_slice),       KIND(OPT, f_opt),   KIND(CONV, f_conv),
	KIND(BN, f_bn),             KIND(POOL, f_pool), KIND(PAD, f_pad),
	KIND(CLIP, f_clip),
};
#undef KIND

/* The number of elements a list field holds (a fixed length, or its count times per), or -1
 * when the count is out of range (a broken attribute: the verifier names it). */
int ir_attr_list_len(const IrAttrField *f, const IrAttrs *a)
{
	if (f->fixed)
		return f->fixed;
	int per = f->per ? f->per : 1;
	int cnt = *(const int *)((const char *)a + f->n_off);
	return cnt < 0 || cnt > IR_MAX_RANK ? -1 : cnt * per;
}

const IrAttrField *ir_attr_fields(IrAttrKind k, int *n)
{
	if ((unsigned)k >= sizeof attr_kinds / sizeof attr_kinds[0]) {
		*n = 0;
		return NULL;
	}
	*n = attr_kinds[k].n;
	return attr_kinds[k].f;
}

IrRole ir_phase_role(IrPhase p)
{
	switch (p) {
	case IR_PHASE_LOSS: return IR_ROLE_LOSS;
	case IR_PHASE_BWD: return IR_ROLE_GRAD;
	default: return IR_ROLE_ACT;
	}
}

/* ---- names and strings ---- */

static int is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* [A-Za-z0-9_./][A-Za-z0-9_./:-]*: ONNX names like "/fc1/Gemm_output_0", "onnx::Relu_7" or
 * "123" need no quotes ('%' delimits them already). */
static int plain_name(const char *s)
{
	const char *s0 = s;
	for (; *s; s++)
		if (!is_alpha((unsigned char)*s) && !(*s >= '0' && *s <= '9') &&
		    !strchr(s == s0 ? "./" : "./:-", *s))
			return 0;
	return s > s0;
}

/* A C string literal; bytes >= 0x80 (UTF-8) stay as they are. */
static void print_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		case '\r': fputs("\\r", f); break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\%03o", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
}

static void print_vname(FILE *f, const IrValue *v)
{
	const char *s = v && v->name ? v->name : "";
	fputc('%', f);
	if (plain_name(s))
		fputs(s, f);
	else
		print_quoted(f, s);
}

static void print_type(FILE *f, const IrType *t)
{
	char buf[256];
	fputs(t ? ir_type_str(t, 1, buf, sizeof buf) : "?[]", f);
}

static int in_graph(const IrGraph *g, const IrValue *v)
{
	return v && v->id >= 0 && v->id < g->values.n && g->values.v[v->id] == v;
}

/* ---- data ---- */

/* The dtype data of a value of type t has unless the text says otherwise. */
static IrDType init_dtype(const IrType *t)
{
	return ir_dtype_is_float(t->dt) ? IR_DT_F32 : t->dt;
}

static void print_elem(FILE *f, IrDType dt, const void *p, int64_t i)
{
	switch (dt) {
	case IR_DT_F32: fprintf(f, "%.9g", (double)((const float *)p)[i]); break;
	case IR_DT_F64: fprintf(f, "%.17g", ((const double *)p)[i]); break;
	case IR_DT_I8: fprintf(f, "%d", ((const int8_t *)p)[i]); break;
	case IR_DT_I16: fprintf(f, "%d", ((const int16_t *)p)[i]); break;
	case IR_DT_I32: fprintf(f, "%d", ((const int32_t *)p)[i]); break;
	case IR_DT_I64: fprintf(f, "%lld", (long long)((const int64_t *)p)[i]); break;
	case IR_DT_U8:
	case IR_DT_BOOL: fprintf(f, "%u", ((const uint8_t *)p)[i]); break;
	case IR_DT_U16: fprintf(f, "%u", ((const uint16_t *)p)[i]); break;
	case IR_DT_U32: fprintf(f, "%u", ((const uint32_t *)p)[i]); break;
	case IR_DT_U64: fprintf(f, "%llu", (unsigned long long)((const uint64_t *)p)[i]); break;
	default: fputc('?', f);
	}
}

static void print_data(FILE *f, const IrValue *v)
{
	const IrType *it = v->init_type ? v->init_type : v->type;
	char buf[256];
	fputs(" = ", f);
	if (it->dt != init_dtype(v->type)) {
		/* the element part of the type string: everything before '[' */
		ir_type_str(it, 1, buf, sizeof buf);
		fprintf(f, "%.*s ", (int)strcspn(buf, "["), buf);
	}
	if (it->numel > INLINE_MAX || it->dt == IR_DT_F16 || it->dt == IR_DT_LNS) {
		fprintf(f, "<%zu bytes>", ir_type_bytes(it));
		return;
	}
	fputc('[', f);
	for (int64_t i = 0; i < it->numel; i++) {
		if (i)
			fputs(", ", f);
		print_elem(f, it->dt, v->init, i);
	}
	fputc(']', f);
}

/* ---- values and nodes ---- */

/* gof: for each value id, the first value it is the gradient of; gnext chains the rest. */
typedef struct Links {
	int *gof, *gnext;
} Links;

static void links_init(Links *l, const IrGraph *g)
{
	int n = g->values.n;
	l->gof = malloc(sizeof(int) * (size_t)(n ? n : 1));
	l->gnext = malloc(sizeof(int) * (size_t)(n ? n : 1));
	if (!l->gof || !l->gnext)
		abort();
	for (int i = 0; i < n; i++)
		l->gof[i] = l->gnext[i] = -1;
	for (int i = n - 1; i >= 0; i--) {
		const IrValue *x = IR_VALUE(g, i);
		if (x && in_graph(g, x->grad)) {
			l->gnext[i] = l->gof[x->grad->id];
			l->gof[x->grad->id] = i;
		}
	}
}

static void print_links(FILE *f, const IrGraph *g, const Links *l, const IrValue *v)
{
	if (v->param) {
		fputs(" for ", f);
		print_vname(f, v->param);
	}
	if (!in_graph(g, v))
		return;
	for (int i = l->gof[v->id]; i >= 0; i = l->gnext[i]) {
		fputs(" grad_of ", f);
		print_vname(f, IR_VALUE(g, i));
	}
}

static void print_decl(FILE *f, const IrGraph *g, const Links *l, const IrValue *v)
{
	fprintf(f, "\t%s ", ir_role_name(v->role));
	print_vname(f, v);
	fputs(" : ", f);
	print_type(f, v->type);
	if (v->init && v->type)
		print_data(f, v);
	print_links(f, g, l, v);
	fputc('\n', f);
}

static void print_attrs(FILE *f, const IrNode *n)
{
	int nf;
	const IrAttrField *fl = ir_attr_fields(ir_op_info[n->op].attr, &nf);
	const char *base = (const char *)&n->attr;
	for (int i = 0; i < nf; i++) {
		const void *p = base + fl[i].off;
		int cnt = fl[i].type == IR_AF_INTS || fl[i].type == IR_AF_I64S
				  ? ir_attr_list_len(&fl[i], &n->attr)
				  : 0;
		fprintf(f, "%s%s=", i ? ", " : " {", fl[i].name);
		if (cnt < 0)
			cnt = 0; /* a broken attribute: the verifier names it */
		switch (fl[i].type) {
		case IR_AF_FLOAT: fprintf(f, "%.9g", (double)*(const float *)p); break;
		case IR_AF_INT: fprintf(f, "%d", *(const int *)p); break;
		case IR_AF_I64: fprintf(f, "%lld", (long long)*(const int64_t *)p); break;
		case IR_AF_DTYPE: fputs(ir_dtype_name(*(const IrDType *)p), f); break;
		case IR_AF_INTS:
		case IR_AF_I64S:
			fputc('[', f);
			for (int j = 0; j < cnt; j++) {
				if (j)
					fputs(", ", f);
				print_elem(f, fl[i].type == IR_AF_INTS ? IR_DT_I32 : IR_DT_I64, p, j);
			}
			fputc(']', f);
			break;
		}
	}
	if (nf)
		fputc('}', f);
}

static void print_node(FILE *f, const IrGraph *g, const Links *l, const IrNode *n)
{
	fputc('\t', f);
	for (int i = 0; i < n->nout; i++) {
		fputs(i ? ", " : "", f);
		print_vname(f, n->out[i]);
	}
	fprintf(f, "%s%s(", n->nout ? " = " : "", ir_op_name(n->op));
	for (int i = 0; i < n->nin; i++) {
		fputs(i ? ", " : "", f);
		print_vname(f, n->in[i]);
	}
	fputc(')', f);
	if ((unsigned)n->op < IR_OP_COUNT)
		print_attrs(f, n);
	for (int i = 0; i < n->nout; i++) {
		const IrValue *v = n->out[i];
		fputs(i ? ", " : " : ", f);
		print_type(f, v ? v->type : NULL);
		if (v && v->role != ir_phase_role(n->phase))
			fprintf(f, " %s", ir_role_name(v->role));
		if (v)
			print_links(f, g, l, v);
	}
	fprintf(f, " @%s", ir_phase_name(n->phase));
	if (n->name) {
		fputc(' ', f);
		print_quoted(f, n->name);
	}
	fputc('\n', f);
}

void ir_print(FILE *f, const IrGraph *g)
{
	Links l;
	int ndecl = 0;
	links_init(&l, g);
	fputs("graph ", f);
	print_quoted(f, g->name ? g->name : "");
	fprintf(f, " opset %d {\n", g->opset);
	for (int i = 0; i < g->values.n; i++) {
		const IrValue *v = IR_VALUE(g, i);
		if (v && !v->def) {
			print_decl(f, g, &l, v);
			ndecl++;
		}
	}
	if (ndecl && g->nodes.n)
		fputc('\n', f);
	for (int i = 0; i < g->nodes.n; i++)
		print_node(f, g, &l, IR_NODE(g, i));
	if ((ndecl || g->nodes.n) && (g->outputs.n || g->loss))
		fputc('\n', f);
	for (int i = 0; i < g->outputs.n; i++) {
		fputs("\toutput ", f);
		print_vname(f, g->outputs.v[i]);
		fputc('\n', f);
	}
	if (g->loss) {
		fputs("\tloss ", f);
		print_vname(f, g->loss);
		fputc('\n', f);
	}
	fputs("}\n", f);
	free(l.gof);
	free(l.gnext);
}

char *ir_print_str(const IrGraph *g)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		abort();
	ir_print(f, g);
	fclose(f);
	return buf;
}

/* Whether the comma-separated list names pass (or says "all"). */
static int list_has(const char *list, const char *pass)
{
	size_t n = strlen(pass);
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");
		if ((len == 3 && !strncmp(p, "all", 3)) || (len == n && !strncmp(p, pass, n)))
			return 1;
		p += len + (p[len] == ',');
	}
	return 0;
}

void ir_dump_pass(const IrGraph *g, const char *pass)
{
	const char *e = getenv("LNSC_DUMP");
	if (!e || !list_has(e, pass))
		return;
	fprintf(stderr, "=== after %s ===\n", pass);
	ir_print(stderr, g);
}
