/* type.c: dtypes and interned tensor types.
 *
 * A type is (dtype, LNS format, shape). Types are interned in the context's hash table, so
 * equality is pointer equality and a type is never freed before its context. Constructors
 * reject absurd shapes with a diagnostic, which is how oversized dims in a model surface.
 */
#include <stdlib.h>
#include <string.h>

#include "ir/ctx.h"

static const struct {
	const char *name;
	size_t size;
	int is_float;
} dtypes[IR_DT_COUNT] = {
	[IR_DT_F32] = {"f32", 4, 1}, [IR_DT_F64] = {"f64", 8, 1}, [IR_DT_F16] = {"f16", 2, 1},
	[IR_DT_I8] = {"i8", 1, 0},   [IR_DT_I16] = {"i16", 2, 0}, [IR_DT_I32] = {"i32", 4, 0},
	[IR_DT_I64] = {"i64", 8, 0}, [IR_DT_U8] = {"u8", 1, 0},   [IR_DT_U16] = {"u16", 2, 0},
	[IR_DT_U32] = {"u32", 4, 0}, [IR_DT_U64] = {"u64", 8, 0}, [IR_DT_BOOL] = {"bool", 1, 0},
	[IR_DT_LNS] = {"lns", 0, 1},
};

size_t ir_dtype_size(IrDType dt)
{
	return dtypes[dt].size;
}

const char *ir_dtype_name(IrDType dt)
{
	return dt < IR_DT_COUNT ? dtypes[dt].name : "?";
}

int ir_dtype_parse(const char *s, IrDType *out)
{
	for (int i = 0; i < IR_DT_COUNT; i++)
		if (i != IR_DT_LNS && !strcmp(s, dtypes[i].name)) {
			*out = (IrDType)i;
			return 0;
		}
	return -1;
}

int ir_dtype_is_float(IrDType dt)
{
	return dtypes[dt].is_float;
}

size_t ir_type_elem_size(const IrType *t)
{
	return t->dt == IR_DT_LNS ? (size_t)lns_container_bytes(t->fmt) : dtypes[t->dt].size;
}

size_t ir_type_bytes(const IrType *t)
{
	return (size_t)t->numel * ir_type_elem_size(t);
}

char *ir_type_str(const IrType *t, int full, char *buf, size_t n)
{
	char head[64];
	if (t->dt == IR_DT_LNS)
		(full ? lns_format_str_full : lns_format_str)(t->fmt, head, sizeof head);
	else
		snprintf(head, sizeof head, "%s", dtypes[t->dt].name);
	size_t len = (size_t)snprintf(buf, n, "%s[", head);
	for (int i = 0; i < t->rank && len < n; i++)
		len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? "," : "",
					(long long)t->dims[i]);
	if (len < n)
		snprintf(buf + len, n - len, "]");
	return buf;
}

static uint32_t type_hash(IrDType dt, LnsFormat f, int rank, const int64_t *dims)
{
	uint32_t h = 2166136261u;
#define MIX(x) (h = (h ^ (uint32_t)(x)) * 16777619u)
	MIX(dt);
	MIX(f.bits);
	MIX(f.log2g);
	MIX(f.scale);
	MIX(f.round);
	MIX(f.underflow);
	MIX(rank);
	for (int i = 0; i < rank; i++) {
		MIX(dims[i]);
		MIX(dims[i] >> 32);
	}
#undef MIX
	return h;
}

static int same(const IrType *t, IrDType dt, LnsFormat f, int rank, const int64_t *dims)
{
	if (t->dt != dt || t->rank != rank || memcmp(&t->fmt, &f, sizeof f))
		return 0;
	return rank == 0 || !memcmp(t->dims, dims, (size_t)rank * sizeof *dims);
}

static void grow(IrCtx *c)
{
	size_t cap = c->captypes ? c->captypes * 2 : 256;
	IrType **tab = calloc(cap, sizeof *tab);
	if (!tab)
		abort();
	for (size_t i = 0; i < c->captypes; i++)
		for (IrType *t = c->types[i], *next; t; t = next) {
			next = t->next;
			t->next = tab[t->hash & (cap - 1)];
			tab[t->hash & (cap - 1)] = t;
		}
	free(c->types);
	c->types = tab;
	c->captypes = cap;
}

static const IrType *intern(IrCtx *c, IrDType dt, LnsFormat f, int rank, const int64_t *dims)
{
	if (rank < 0 || rank > IR_MAX_RANK) {
		ir_error(c, IR_ERR_INPUT, "tensor rank %d is out of range (0..%d)", rank,
			 IR_MAX_RANK);
		return NULL;
	}
	int64_t numel = 1;
	for (int i = 0; i < rank; i++) {
		if (dims[i] < 0 || dims[i] > IR_MAX_DIM) {
			ir_error(c, IR_ERR_INPUT, "dimension %d is %lld: out of range (0..%lld)", i,
				 (long long)dims[i], (long long)IR_MAX_DIM);
			return NULL;
		}
		if (dims[i] && numel > IR_MAX_NUMEL / dims[i]) {
			ir_error(c, IR_ERR_INPUT, "tensor of more than %lld elements",
				 (long long)IR_MAX_NUMEL);
			return NULL;
		}
		numel *= dims[i];
	}
	if (c->ntypes * 2 >= c->captypes)
		grow(c);
	uint32_t h = type_hash(dt, f, rank, dims);
	for (IrType *t = c->types[h & (c->captypes - 1)]; t; t = t->next)
		if (t->hash == h && same(t, dt, f, rank, dims))
			return t;
	IrType *t = ir_arena_alloc(c->arena, sizeof *t);
	t->dt = dt;
	t->fmt = f;
	t->rank = rank;
	if (rank)
		memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
	t->numel = numel;
	t->hash = h;
	t->next = c->types[h & (c->captypes - 1)];
	c->types[h & (c->captypes - 1)] = t;
	c->ntypes++;
	return t;
}

const IrType *ir_type(IrCtx *c, IrDType dt, int rank, const int64_t *dims)
{
	LnsFormat none = {0};
	if (dt == IR_DT_LNS) {
		ir_error(c, IR_ERR_INPUT, "an LNS type needs a format");
		return NULL;
	}
	return intern(c, dt, none, rank, dims);
}

const IrType *ir_type_lns(IrCtx *c, LnsFormat f, int rank, const int64_t *dims)
{
	if (!lns_format_valid(f)) {
		ir_error(c, IR_ERR_INPUT, "invalid LNS format (bits %d, log2 gamma %d)", f.bits,
			 f.log2g);
		return NULL;
	}
	return intern(c, IR_DT_LNS, f, rank, dims);
}

const IrType *ir_type_f32_like(IrCtx *c, const IrType *t)
{
	return ir_type(c, IR_DT_F32, t->rank, t->dims);
}

const IrType *ir_type_with_dtype(IrCtx *c, const IrType *t, IrDType dt)
{
	return ir_type(c, dt, t->rank, t->dims);
}

const IrType *ir_type_with_format(IrCtx *c, const IrType *t, LnsFormat f)
{
	return ir_type_lns(c, f, t->rank, t->dims);
}

const IrType *ir_type_with_shape(IrCtx *c, const IrType *t, int rank, const int64_t *dims)
{
	return intern(c, t->dt, t->fmt, rank, dims);
}

int ir_type_same_shape(const IrType *a, const IrType *b)
{
	return a->rank == b->rank &&
	       (a->rank == 0 || !memcmp(a->dims, b->dims, (size_t)a->rank * sizeof *a->dims));
}
