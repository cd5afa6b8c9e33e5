/* test_cg_lns.c: the LNS emitters of codegen/cg_lns.c against ir/lns.c, bit for bit.
 *
 * Small kernels (a vector loop of c->vw lanes, then a scalar tail of <1 x ...> lanes) apply
 * each emitter over arrays; the results are compared with ir/lns.c element by element: decode of
 * every container value for many (B, g, k), the decode table, encode of about 10^7 inputs (every
 * threshold and level with its +-3 ulp neighbours, random patterns over all exponents,
 * subnormals, values beyond both ends) for five formats in all rounding and underflow modes
 * with flags and counts, the RNG, Madam over several steps (integer and stochastic steps,
 * rounding ties), the weight view and amax. Each kernel set is compiled for vector widths 4, 8
 * and 16 (x86-64, -v3, -v4) in one process, as far as the host runs them.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"
#include "ir/lns.h"
#include "lns_tables.h"
#include "testlib.h"

/* ---- helpers ---- */

static float u2f(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

static uint32_t f2u(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return u;
}

static uint32_t rnd32(uint64_t *s) /* splitmix64, high half */
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static int rnd_in(uint64_t *s, int lo, int hi) /* uniform in [lo, hi] */
{
	return lo + (int)(rnd32(s) % (uint32_t)(hi - lo + 1));
}

static double rnd_gauss(uint64_t *s)
{
	double u = (rnd32(s) + 0.5) / 4294967296.0, v = (rnd32(s) + 0.5) / 4294967296.0;
	return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static LnsFormat fmt(int bits, int log2g, int round, int uf)
{
	LnsFormat f = {(uint8_t)bits, (uint8_t)log2g, LNS_SCALE_STATIC, (uint8_t)round,
	               (uint8_t)uf};
	return f;
}

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		abort();
	return p;
}

/* ---- kernels ---- */

/* Every kernel: void fn(a, b, c, d, i64 n, i32 i1, i32 i2, f32 f1, i32 scalar), one emitter
 * over n elements: vectors of c->vw lanes, then a scalar tail; scalar != 0: all scalar. */
typedef void (*KernFn)(void *a, void *b, void *c, void *d, int64_t n, int32_t i1, int32_t i2,
                       float f1, int32_t scalar);
typedef uint32_t (*KeyFn)(uint64_t seed, uint32_t step, uint32_t id);

typedef enum { K_DEC, K_LUT, K_LUTM, K_ENC, K_RNG, K_MADAM, K_VIEW, K_AMAX } KKind;

typedef struct Kern {
	KKind kind;
	LnsFormat f, f2;
	IrAttrOpt o;
} Kern;

enum { MAXK = 96, NW = 3 };
typedef struct Suite {
	Kern k[MAXK];
	int nk;
	KernFn fn[NW][MAXK];
	KeyFn key[NW];
	int vw[NW], nw;
	CgJit *jit[NW];
} Suite;

static int add_kern(Suite *s, KKind kind, LnsFormat f, LnsFormat f2, const IrAttrOpt *o)
{
	if (s->nk >= MAXK)
		abort();
	Kern *k = &s->k[s->nk];
	k->kind = kind;
	k->f = f;
	k->f2 = f2;
	if (o)
		k->o = *o;
	return s->nk++;
}

typedef struct Emit {
	CgCtx *c;
	const Kern *k;
	LLVMValueRef p[8], pre;
} Emit;

static LLVMValueRef ptr_at(CgCtx *c, LLVMValueRef base, LLVMValueRef i, int size)
{
	return cg_gep(c, base, LLVMBuildMul(c->b, i, cg_i64(c, size), ""));
}

static LLVMValueRef load_v(CgCtx *c, LLVMTypeRef et, LLVMValueRef base, LLVMValueRef i, int n)
{
	LLVMValueRef v = LLVMBuildLoad2(c->b, LLVMVectorType(et, (unsigned)n),
	                                ptr_at(c, base, i, et == c->t_i8 ? 1 : 4), "");
	LLVMSetAlignment(v, 1);
	return v;
}

static void store_v(CgCtx *c, LLVMValueRef v, LLVMValueRef base, LLVMValueRef i)
{
	LLVMTypeRef et = LLVMGetElementType(LLVMTypeOf(v));
	LLVMSetAlignment(LLVMBuildStore(c->b, v, ptr_at(c, base, i, et == c->t_i8 ? 1 : 4)), 1);
}

/* d[slot] += count of set lanes (i32 counters). */
static void count_into(CgCtx *c, LLVMValueRef d, int slot, LLVMValueRef flags)
{
	LLVMValueRef p = cg_gep_c(c, d, 4 * slot);
	LLVMValueRef v = LLVMBuildLoad2(c->b, c->t_i32, p, "");
	LLVMBuildStore(c->b, LLVMBuildAdd(c->b, v, cg_lns_flag_count(c, flags), ""), p);
}

static void body_enc(Emit *e, LLVMValueRef i, int n)
{
	CgCtx *c = e->c;
	LnsFormat f = e->k->f;
	LLVMValueRef x = load_v(c, c->t_f32, e->p[0], i, n), rnd = NULL, sat, unf;
	if (f.round == LNS_ROUND_STOCHASTIC || f.underflow == LNS_UF_STOCHASTIC)
		rnd = cg_lns_rng_bits(c, e->p[6], cg_lns_lane_idx(c, i, n));
	LLVMValueRef w = cg_lns_encode(c, f, e->p[5], x, rnd, &sat, &unf);
	cg_lns_store(c, f, e->p[1], i, w);
	LLVMTypeRef v8 = LLVMVectorType(c->t_i8, (unsigned)n);
	LLVMValueRef fl = LLVMBuildOr(c->b, LLVMBuildZExt(c->b, sat, v8, ""),
	                              LLVMBuildShl(c->b, LLVMBuildZExt(c->b, unf, v8, ""),
	                                           cg_splat(c, LLVMConstInt(c->t_i8, 1, 0), n), ""),
	                              "");
	store_v(c, fl, e->p[2], i);
	count_into(c, e->p[3], 0, sat);
	count_into(c, e->p[3], 1, unf);
}

static void body_madam(Emit *e, LLVMValueRef i, int n)
{
	CgCtx *c = e->c;
	LnsFormat f = e->k->f;
	LLVMValueRef w = cg_lns_load(c, f, e->p[0], i, n);
	LLVMValueRef gw = load_v(c, c->t_f32, e->p[1], i, n),
	             v = load_v(c, c->t_f32, e->p[2], i, n);
	LLVMValueRef nw = cg_lns_madam(c, f, &e->k->o, e->p[7], e->p[5], w, gw, &v, e->p[6],
	                               cg_lns_lane_idx(c, i, n));
	cg_lns_store(c, f, e->p[0], i, nw);
	store_v(c, v, e->p[2], i);
}

static void body(Emit *e, LLVMValueRef i, int n)
{
	CgCtx *c = e->c;
	const Kern *k = e->k;
	LLVMValueRef w, v;
	switch (k->kind) {
	case K_DEC:
	case K_LUT:
	case K_LUTM:
		w = cg_lns_load(c, k->f, e->p[0], i, n);
		v = k->kind == K_DEC ? cg_lns_decode(c, k->f, e->p[5], w)
		                     : cg_lns_decode_lut(c, k->f, e->pre, w);
		store_v(c, v, e->p[1], i);
		break;
	case K_ENC:
		body_enc(e, i, n);
		break;
	case K_RNG:
		v = LLVMBuildAdd(c->b, cg_lns_lane_idx(c, i, n), cg_splat(c, e->p[6], n), "");
		store_v(c, cg_lns_rng_bits(c, e->p[5], v), e->p[1], i);
		break;
	case K_MADAM:
		body_madam(e, i, n);
		break;
	case K_VIEW:
		w = cg_lns_load(c, k->f, e->p[0], i, n);
		cg_lns_store(c, k->f2, e->p[1], i,
		             cg_lns_view(c, k->f, e->p[5], k->f2, e->p[6], w));
		break;
	case K_AMAX:
		v = load_v(c, c->t_i32, e->p[3], cg_i64(c, 0), n);
		v = cg_lns_amax_update(c, v, load_v(c, c->t_f32, e->p[0], i, n));
		store_v(c, v, e->p[3], cg_i64(c, 0));
		break;
	}
}

static void emit_kernel(CgCtx *c, const Kern *k, const char *name)
{
	LLVMTypeRef pt[9] = {c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_i64,
	                     c->t_i32, c->t_i32, c->t_f32, c->t_i32};
	c->fn = LLVMAddFunction(c->mod, name, LLVMFunctionType(c->t_void, pt, 9, 0));
	LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->llctx, c->fn, "entry"));
	Emit e = {c, k, {0}, NULL};
	for (int i = 0; i < 8; i++)
		e.p[i] = LLVMGetParam(c->fn, (unsigned)i);
	if (k->kind == K_LUT || k->kind == K_LUTM)
		e.pre = cg_lns_decode_table(c, k->f, e.p[5], k->kind == K_LUTM ? e.p[3] : NULL);
	LLVMValueRef n = e.p[4], nv = LLVMBuildAnd(c->b, n, cg_i64(c, -c->vw), "");
	LLVMValueRef sc = LLVMBuildICmp(c->b, LLVMIntNE, LLVMGetParam(c->fn, 8), cg_i32(c, 0), "");
	nv = LLVMBuildSelect(c->b, sc, cg_i64(c, 0), nv, "");
	CgLoop L;
	body(&e, cg_loop_begin(c, &L, cg_i64(c, 0), nv, c->vw, "v"), c->vw);
	cg_loop_end(c, &L);
	body(&e, cg_loop_begin(c, &L, nv, n, 1, "s"), 1);
	cg_loop_end(c, &L);
	if (k->kind == K_AMAX) {
		LLVMValueRef acc = load_v(c, c->t_i32, e.p[3], cg_i64(c, 0), c->vw);
		LLVMBuildStore(c->b, cg_lns_amax_reduce(c, acc), cg_gep_c(c, e.p[3], 256));
	}
	LLVMBuildRetVoid(c->b);
}

static void emit_key(CgCtx *c)
{
	LLVMTypeRef pt[3] = {c->t_i64, c->t_i32, c->t_i32};
	c->fn = LLVMAddFunction(c->mod, "key", LLVMFunctionType(c->t_i32, pt, 3, 0));
	LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->llctx, c->fn, "entry"));
	LLVMBuildRet(c->b, cg_lns_rng_key_of(c, LLVMGetParam(c->fn, 0), LLVMGetParam(c->fn, 1),
	                                     LLVMGetParam(c->fn, 2)));
}

/* Compiles every kernel of s for CPU cpu into width slot w. */
static int build(Suite *s, int w, const char *cpu, IrCtx *ir)
{
	CgTarget t = {.cpu = cpu};
	CgJit *j = cg_jit_new(ir, &t);
	CHECK_MSG(j != NULL, "%s", ir_diag_text(ir));
	if (!j)
		return -1;
	CgCtx *c = cg_jit_ctx(j, "lns");
	s->vw[w] = c->vw;
	char name[32];
	for (int i = 0; i < s->nk; i++) {
		snprintf(name, sizeof name, "k%d", i);
		emit_kernel(c, &s->k[i], name);
	}
	emit_key(c);
	int vw = c->vw;
	CHECK(cg_lns_lut_in_regs(c, fmt(6, 2, 0, 0), vw) == (vw == 16));
	CHECK(cg_lns_lut_in_regs(c, fmt(4, 0, 0, 0), vw) == (vw >= 8));
	CHECK(!cg_lns_lut_in_regs(c, fmt(8, 3, 0, 0), vw) &&
	      !cg_lns_lut_in_regs(c, fmt(2, 0, 0, 0), 1));
	int ok = cg_jit_add(j, c) == 0;
	CHECK_MSG(ok, "%s: %s", cpu, ir_diag_text(ir));
	s->jit[w] = j;
	if (!ok)
		return -1;
	for (int i = 0; i < s->nk; i++) {
		snprintf(name, sizeof name, "k%d", i);
		s->fn[w][i] = (KernFn)cg_jit_lookup(j, name);
		CHECK(s->fn[w][i] != NULL);
	}
	s->key[w] = (KeyFn)cg_jit_lookup(j, "key");
	return 0;
}

/* ---- decode ---- */

static int32_t dec_ks(LnsFormat f, int32_t *ks, uint64_t *rs)
{
	int32_t g = 1 << f.log2g, M = lns_max_code(f), n = 0;
	int32_t fixed[] = {0,
	                   1,
	                   -1,
	                   -M / 2,
	                   -126 * g - M / 2,
	                   -140 * g - M / 2,
	                   -149 * g - M / 2,
	                   -160 * g,
	                   127 * g - M / 2,
	                   128 * g - M,
	                   130 * g,
	                   INT32_MAX,
	                   INT32_MIN,
	                   1 << 30,
	                   -(1 << 30),
	                   (1 << 30) + 7};
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		ks[n++] = fixed[i];
	for (int i = 0; i < 4; i++)
		ks[n++] = rnd_in(rs, -155 * g, 130 * g);
	return n;
}

static void test_decode(Suite *s, int ki, uint64_t *rs)
{
	LnsFormat f = s->k[ki].f;
	int bytes = lns_container_bytes(f), nwords = 1 << (8 * bytes);
	uint8_t *codes = xmalloc((size_t)nwords * 2);
	float *want = xmalloc((size_t)nwords * 4), *got = xmalloc((size_t)nwords * 4 + 1024);
	for (int w = 0; w < nwords; w++)
		lns_store(f, codes, (size_t)w, (uint32_t)w);
	int32_t ks[32];
	int nks = dec_ks(f, ks, rs);
	for (int q = 0; q < nks; q++) {
		for (int w = 0; w < nwords; w++)
			want[w] = lns_decode(f, ks[q], (uint32_t)w);
		for (int run = 0; run < 2 * s->nw; run++) {
			int wi = run / 2;
			memset(got, 0xAB, (size_t)nwords * 4);
			s->fn[wi][ki](codes, got, NULL, got + nwords, nwords, ks[q], 0, 0.0f,
			              run & 1);
			int bad = 0, first = -1;
			for (int w = 0; w < nwords; w++)
				if (f2u(got[w]) != f2u(want[w]) && !bad++)
					first = w;
			CHECK_MSG(
			    bad == 0,
			    "%s lns%dg%d k=%d vw=%d%s: %d wrong, first word 0x%x got %a want %a",
			    s->k[ki].kind == K_DEC ? "decode" : "decode table", f.bits,
			    1 << f.log2g, ks[q], s->vw[wi], run & 1 ? " scalar" : "", bad, first,
			    got[first < 0 ? 0 : first], want[first < 0 ? 0 : first]);
			if (s->k[ki].kind ==
			    K_LUTM) { /* the caller's table holds every word's value */
				for (int w = 0; w < (1 << f.bits); w++)
					bad += f2u(got[nwords + w]) !=
					       f2u(lns_decode(f, ks[q], (uint32_t)w));
				CHECK_MSG(bad == 0, "decode table contents, k=%d vw=%d", ks[q],
				          s->vw[wi]);
			}
		}
	}
	free(codes);
	free(want);
	free(got);
}

/* ---- encode ---- */

enum { ENC_CAP = 1 << 20 };

static void push(float *x, size_t *n, float v, uint64_t *rs)
{
	if (*n < ENC_CAP)
		x[(*n)++] = (rnd32(rs) & 1) ? -v : v;
}

/* Mantissas at every threshold (mid: nearest; pow: the levels, floor) +-3 ulp, placed in random
 * binades: mostly where codes of (f, k) lie, a quarter anywhere (subnormals included). */
static void enc_thresholds(LnsFormat f, int32_t elo, int32_t ehi, float *x, size_t *n, uint64_t *rs)
{
	int L = f.log2g, g = 1 << L, off = g - 1;
	const uint32_t *tabs[2] = {lns_tab_mid + off, lns_tab_pow + off};
	int reps = 20000 / (14 * g) + 1;
	for (int r = 0; r < reps; r++)
		for (int t = 0; t < 2; t++)
			for (int j = 0; j < g; j++)
				for (int d = -3; d <= 3; d++) {
					int e = (rnd32(rs) & 3) ? rnd_in(rs, elo, ehi)
					                        : rnd_in(rs, -150, 127);
					push(x, n, ldexpf(u2f(tabs[t][j] + (uint32_t)d), e), rs);
				}
}

/* Encode inputs for format f at offset k: about 3 * 10^5 values. */
static size_t enc_inputs(LnsFormat f, int32_t k, float *x, uint64_t *rs)
{
	int L = f.log2g, M = lns_max_code(f);
	int64_t lo = (((int64_t)k + 1) >> L) - 2, hi = (((int64_t)k + M) >> L) + 2;
	int32_t elo = lo < -150 ? -150 : lo > 127 ? 127 : (int32_t)lo;
	int32_t ehi = hi > 127 ? 127 : hi < -150 ? -150 : (int32_t)hi;
	size_t n = 0;
	enc_thresholds(f, elo, ehi, x, &n, rs);
	int nlev = M + 6 <= 20000 ? M + 6 : 20000;
	for (int i = 0; i < nlev; i++) { /* decoded levels (all, or a sample) and neighbours */
		int64_t E = (M + 6 <= 20000 ? i - 2 : rnd_in(rs, -2, M + 3)) + (int64_t)k;
		float v = E < -(1 << 30) || E > (1 << 30) ? 0.0f : lns_pow2_e(L, (int32_t)E);
		if (isinf(v) || v == 0.0f)
			continue;
		push(x, &n, v, rs);
		push(x, &n, nextafterf(v, 0.0f), rs);
		push(x, &n, nextafterf(v, INFINITY), rs);
	}
	for (int i = 0; i < 60000; i++) { /* any finite pattern */
		uint32_t b = rnd32(rs);
		if ((b & 0x7F800000u) != 0x7F800000u)
			push(x, &n, u2f(b & 0x7FFFFFFFu), rs);
	}
	for (int i = 0; i < 60000; i++) /* where the codes are */
		push(x, &n,
		     ldexpf(u2f(0x3F800000u | (rnd32(rs) & 0x7FFFFFu)), rnd_in(rs, elo, ehi)), rs);
	for (int i = 0; i < 30000; i++) /* subnormals */
		push(x, &n, u2f(i < 64 ? (uint32_t)i : rnd32(rs) & 0x7FFFFFu), rs);
	const float sp[] = {0.0f, FLT_MAX, FLT_MIN, FLT_TRUE_MIN, 1.0f, 0.5f, 2.0f, 3.0f};
	for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++)
		push(x, &n, sp[i], rs);
	return n;
}

typedef struct EncRef {
	uint16_t *w;
	uint8_t *fl;
	uint32_t nsat, nunf;
} EncRef;

static void enc_ref(LnsFormat f, int32_t k, uint32_t key, const float *x, size_t n, EncRef *r)
{
	r->nsat = r->nunf = 0;
	for (size_t i = 0; i < n; i++) {
		int fl;
		r->w[i] = (uint16_t)lns_encode(f, k, x[i], lns_rng_bits(key, (uint32_t)i), &fl);
		r->fl[i] = (uint8_t)fl;
		r->nsat += (fl & LNS_F_SAT) != 0;
		r->nunf += (fl & LNS_F_UNF) != 0;
	}
}

static void enc_check(Suite *s, int ki, int32_t k, uint32_t key, const float *x, size_t n,
                      const EncRef *r, void *codes, uint8_t *fl)
{
	LnsFormat f = s->k[ki].f;
	for (int run = 0; run < 2 * s->nw; run++) { /* the scalar run: a prefix */
		int wi = run / 2;
		size_t m = run & 1 ? (n < 20000 ? n : 20000) : n;
		uint32_t cnt[2] = {0, 0}, want[2] = {r->nsat, r->nunf};
		memset(codes, 0xEE, m * 2);
		s->fn[wi][ki]((void *)x, codes, fl, cnt, (int64_t)m, k, (int32_t)key, 0.0f,
		              run & 1);
		size_t bad = 0, first = 0;
		for (size_t i = m; i < n; i++) {
			want[0] -= (r->fl[i] & LNS_F_SAT) != 0;
			want[1] -= (r->fl[i] & LNS_F_UNF) != 0;
		}
		for (size_t i = 0; i < m; i++)
			if ((lns_load(f, codes, i) != r->w[i] || fl[i] != r->fl[i]) && !bad++)
				first = i;
		char fs[64];
		CHECK_MSG(
		    bad == 0 && cnt[0] == want[0] && cnt[1] == want[1],
		    "encode %s k=%d vw=%d%s: %zu of %zu wrong (x=%a: got 0x%x/%d want 0x%x/%d); "
		    "counts %u/%u want %u/%u",
		    lns_format_str_full(f, fs, sizeof fs), k, s->vw[wi], run & 1 ? " scalar" : "",
		    bad, m, x[first], lns_load(f, codes, first), fl[first], r->w[first],
		    r->fl[first], cnt[0], cnt[1], want[0], want[1]);
	}
}

/* Formats (8,8) (5,2) (12,128) (16,4096) (2,1), and (7,16) (10,32) for the 32- and 64-entry
 * register look-ups, in every mode (6 kernels each from first on). */
static const int enc_fmt[][2] = {{8, 3}, {5, 1}, {12, 7}, {16, 12}, {2, 0}, {7, 4}, {10, 5}};
enum { NENC = sizeof enc_fmt / sizeof enc_fmt[0] };

static size_t test_encode(Suite *s, int first, uint64_t *rs)
{
	float *x = xmalloc(ENC_CAP * sizeof *x);
	EncRef r = {xmalloc(ENC_CAP * 2), xmalloc(ENC_CAP), 0, 0};
	void *codes = xmalloc(ENC_CAP * 2);
	uint8_t *fl = xmalloc(ENC_CAP);
	size_t total = 0;
	for (int fi = 0; fi < NENC; fi++) {
		LnsFormat f = fmt(enc_fmt[fi][0], enc_fmt[fi][1], 0, 0);
		int32_t g = 1 << f.log2g, M = lns_max_code(f);
		int32_t ks[] = {-(M + 1) / 2,
		                -130 * g - M,
		                -140 * g - M / 2,
		                128 * g - 1 - M,
		                rnd_in(rs, -150 * g, 120 * g),
		                1 << 29,
		                -(1 << 29)};
		for (size_t q = 0; q < sizeof ks / sizeof ks[0]; q++) {
			size_t n = enc_inputs(f, ks[q], x, rs);
			if (q >= 5)
				n = n < 50000 ? n : 50000;
			for (int mode = 0; mode < 6; mode++) {
				int ki = first + fi * 6 + mode;
				uint32_t key = rnd32(rs);
				enc_ref(s->k[ki].f, ks[q], key, x, n, &r);
				enc_check(s, ki, ks[q], key, x, n, &r, codes, fl);
				total += n;
			}
		}
	}
	/* NaN and Inf never reach an encoder; if they do, any word, but no crash or wild access */
	for (int i = 0; i < 64; i++)
		x[i] =
		    u2f((i & 1 ? 0xFF800000u : 0x7F800000u) | (i < 8 ? 0 : rnd32(rs) & 0x7FFFFFu));
	for (int ki = first; ki < first + 6 * NENC; ki++)
		for (int run = 0; run < 2 * s->nw; run++) {
			uint32_t cnt[2] = {0, 0};
			s->fn[run / 2][ki](x, codes, fl, cnt, 64, 0, 7, 0.0f, run & 1);
		}
	free(x);
	free(r.w);
	free(r.fl);
	free(codes);
	free(fl);
	return total;
}

/* ---- RNG, amax ---- */

static void test_rng(Suite *s, int ki, uint64_t *rs)
{
	enum { N = 4099 };
	uint32_t *got = xmalloc(N * 4);
	const uint32_t offs[3] = {0, 0xFFFFF800u, rnd32(rs)};
	for (int q = 0; q < 6; q++) {
		uint32_t key = rnd32(rs), off = offs[q % 3];
		for (int run = 0; run < 2 * s->nw; run++) {
			int wi = run / 2;
			s->fn[wi][ki](NULL, got, NULL, NULL, N, (int32_t)key, (int32_t)off, 0.0f,
			              run & 1);
			int bad = 0;
			for (uint32_t i = 0; i < N; i++)
				bad += got[i] != lns_rng_bits(key, i + off);
			CHECK_MSG(bad == 0, "rng_bits key %08x off %u vw=%d%s: %d wrong", key, off,
			          s->vw[wi], run & 1 ? " scalar" : "", bad);
		}
	}
	for (int wi = 0; wi < s->nw; wi++) {
		int bad = 0;
		for (int q = 0; q < 2000; q++) {
			uint64_t seed = ((uint64_t)rnd32(rs) << 32) | rnd32(rs);
			uint32_t step = q < 10 ? (uint32_t)q : rnd32(rs), id = rnd32(rs) % 5000;
			bad += s->key[wi](seed, step, id) != lns_rng_key(seed, step, id);
		}
		CHECK_MSG(bad == 0, "rng_key vw=%d: %d wrong", s->vw[wi], bad);
	}
	free(got);
}

static void test_amax(Suite *s, int ki, uint64_t *rs)
{
	enum { N = 3001 };
	float *x = xmalloc(N * 4);
	uint8_t *codes = xmalloc(N);
	int64_t ns[] = {0, 1, 5, 16, 17, 100, N};
	for (size_t q = 0; q < sizeof ns / sizeof ns[0]; q++) {
		for (int i = 0; i < N; i++)
			x[i] = (float)rnd_gauss(rs) * 3.0f;
		if (ns[q] > 50)
			x[rnd32(rs) % (uint32_t)ns[q]] = -1e30f; /* the max is negative */
		LnsStats st;
		LnsFormat fc = fmt(8, 3, 0, 0);
		fc.scale = LNS_SCALE_CURRENT;
		lns_encode_tensor(fc, NULL, x, codes, (size_t)ns[q], 0, 0, &st);
		for (int run = 0; run < 2 * s->nw; run++) {
			int wi = run / 2;
			uint32_t acc[80] = {0};
			s->fn[wi][ki](x, NULL, NULL, acc, ns[q], 0, 0, 0.0f, run & 1);
			CHECK_MSG(acc[64] == f2u(st.amax), "amax n=%lld vw=%d%s: %a want %a",
			          (long long)ns[q], s->vw[wi], run & 1 ? " scalar" : "",
			          u2f(acc[64]), st.amax);
		}
	}
	free(x);
	free(codes);
}

/* ---- Madam ---- */

typedef struct MadamCase {
	int bits, log2g;
	float lr, beta2, g_bound;
	int ties; /* craft gw, v so that gn hits exact halves */
} MadamCase;

static const MadamCase madam_cases[] = {
    {12, 7, 0x1p-7f, 0.999f, 10.0f, 0}, {12, 7, 0.003f, 0.999f, 10.0f, 0},
    {8, 3, 0.05f, 0.9f, 2.5f, 0},       {16, 11, 1.7e-4f, 0.999f, 10.0f, 0},
    {5, 1, 0.3f, 0.5f, 3.0f, 0},        {12, 7, 0x1p-7f, 0.5f, 2.5f, 1},
    {12, 7, 0.011f, 0.5f, 10.0f, 1},
};
enum { NMADAM = sizeof madam_cases / sizeof madam_cases[0] };

static void madam_data(const MadamCase *mc, int step, float *gw, float *v, size_t n, uint64_t *rs)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t r = rnd32(rs) % 100;
		gw[i] = r < 10   ? 0.0f
		        : r < 11 ? u2f(rnd32(rs) & 0x807FFFFFu)
		        : r < 12 ? 1e30f
		                 : (float)(rnd_gauss(rs) * 0.01);
		if (mc->ties && (i & 1)) { /* 0.5 v + 0.5 gw^2 = s^2, gw = (h + 1/2) s */
			float sc = ldexpf(1.0f, rnd_in(rs, -3, 3)),
			      h = (float)rnd_in(rs, -12, 11) + 0.5f;
			gw[i] = h * sc;
			v[i] = 2.0f * sc * sc - gw[i] * gw[i];
		}
		if (step == 0 && !(mc->ties && (i & 1)))
			v[i] = (rnd32(rs) % 4) ? 0.0f : (float)fabs(rnd_gauss(rs)) * 1e-4f;
	}
}

/* One Madam step of case ci at step t on (c0, v) through every width, compared with
 * lns_madam_update; (c0, v) then advance by the reference. */
static void madam_step(Suite *s, int ki, int ci, uint32_t t, uint16_t *c0, float *v,
                       const float *gw, int n, uint32_t key)
{
	const MadamCase *mc = &madam_cases[ci];
	LnsFormat f = s->k[ki].f;
	LnsMadamParams p = {mc->lr, 3.0f, mc->g_bound, mc->beta2};
	uint16_t *c1 = xmalloc((size_t)n * 2), *cr = xmalloc((size_t)n * 2);
	float *v1 = xmalloc((size_t)n * 4), *vr = xmalloc((size_t)n * 4);
	memcpy(cr, c0, (size_t)n * 2);
	memcpy(vr, v, (size_t)n * 4);
	lns_madam_update(f, &p, t, cr, gw, vr, (size_t)n, key);
	for (int run = 0; run < 2 * s->nw; run++) {
		int wi = run / 2;
		memcpy(c1, c0, (size_t)n * 2);
		memcpy(v1, v, (size_t)n * 4);
		s->fn[wi][ki](c1, (void *)gw, v1, NULL, n, (int32_t)t, (int32_t)key, mc->lr,
		              run & 1);
		int bad = 0, moved = 0;
		for (int i = 0; i < n; i++) {
			bad += c1[i] != cr[i] || f2u(v1[i]) != f2u(vr[i]);
			moved += cr[i] != c0[i];
		}
		CHECK_MSG(bad == 0, "madam case %d step %u vw=%d%s: %d wrong", ci, t, s->vw[wi],
		          run & 1 ? " scalar" : "", bad);
		CHECK_MSG(moved > 0 || t == 0, "madam case %d step %u: no weight moved", ci, t);
	}
	memcpy(c0, cr, (size_t)n * 2);
	memcpy(v, vr, (size_t)n * 4);
	free(c1);
	free(cr);
	free(v1);
	free(vr);
}

static void test_madam(Suite *s, int first, uint64_t *rs)
{
	enum { N = 5003 };
	const uint32_t steps[] = {1, 2, 3, 4, 40, 1000, 0x7FFFFFFFu, 0xFFFFFFFFu, 0};
	float *w0 = xmalloc(N * 4), *gw = xmalloc(N * 4), *v = xmalloc(N * 4);
	uint16_t *c0 = xmalloc(N * 2);
	for (int ci = 0; ci < NMADAM; ci++) {
		const MadamCase *mc = &madam_cases[ci];
		LnsFormat f = s->k[first + ci].f;
		LnsMadamParams p = {mc->lr, 3.0f, mc->g_bound, mc->beta2};
		for (int i = 0; i < N; i++)
			w0[i] = (float)rnd_gauss(rs);
		memset(c0, 0, N * 2);
		lns_madam_init(f, &p, w0, N, c0);
		for (int i = 0; i < N; i += 37) /* zero words, canonical and not */
			lns_store(f, c0, (size_t)i, (i % 74) ? 0u : 1u << (f.bits - 1));
		for (size_t st = 0; st < sizeof steps / sizeof steps[0]; st++) {
			madam_data(mc, (int)st, gw, v, N, rs);
			madam_step(s, first + ci, ci, steps[st], c0, v, gw, N, rnd32(rs));
		}
		/* NaN / Inf gradients (a numeric error upstream): no crash, some code */
		for (int i = 0; i < N; i++)
			gw[i] = i % 3 == 0 ? NAN : i % 3 == 1 ? INFINITY : -INFINITY;
		for (int run = 0; run < 2 * s->nw; run++)
			s->fn[run / 2][first + ci](c0, gw, v, NULL, N, 5, 1, mc->lr, run & 1);
	}
	free(w0);
	free(gw);
	free(v);
	free(c0);
}

/* ---- weight view ---- */

static void test_view(Suite *s, int ki, uint64_t *rs)
{
	LnsFormat fu = s->k[ki].f, fv = s->k[ki].f2;
	int nw = 1 << (8 * lns_container_bytes(fu));
	uint16_t *in = xmalloc((size_t)nw * 2), *out = xmalloc((size_t)nw * 2);
	for (int w = 0; w < nw; w++)
		lns_store(fu, in, (size_t)w, (uint32_t)w);
	for (int q = 0; q < 10; q++) {
		int32_t kw = q == 8 ? INT32_MAX : q == 9 ? INT32_MIN : rnd_in(rs, -4000, 4000);
		int32_t kv = (q & 1) ? rnd_in(rs, -5000, 5000) : lns_view_offset(fu, kw, fv);
		if (q == 8)
			kv = INT32_MIN;
		for (int run = 0; run < 2 * s->nw; run++) {
			int wi = run / 2;
			memset(out, 0xEE, (size_t)nw * 2);
			s->fn[wi][ki](in, out, NULL, NULL, nw, kw, kv, 0.0f, run & 1);
			int bad = 0;
			for (int w = 0; w < nw; w++)
				bad += lns_load(fv, out, (size_t)w) !=
				       lns_view_word(fu, kw, (uint32_t)w, fv, kv);
			CHECK_MSG(bad == 0, "view lns%dg%d->lns%dg%d kw=%d kv=%d vw=%d%s: %d wrong",
			          fu.bits, 1 << fu.log2g, fv.bits, 1 << fv.log2g, kw, kv, s->vw[wi],
			          run & 1 ? " scalar" : "", bad);
		}
	}
	free(in);
	free(out);
}

/* ---- the suite ---- */

static const int dec_fmt[][2] = {{8, 3},  {5, 1}, {12, 7}, {16, 12}, {2, 0},
                                 {16, 0}, {7, 2}, {10, 5}, {16, 11}, {9, 4}};
static const int lut_fmt[][2] = {{8, 3}, {5, 1}, {2, 0}, {6, 2}, {4, 0}, {3, 1}, {7, 4}, {8, 6}};
static const int view_fmt[][4] = {
    {12, 7, 8, 3}, {8, 3, 12, 7}, {16, 12, 5, 1}, {5, 1, 16, 12}, {8, 3, 8, 3}};

typedef struct Idx {
	int dec, ndec, lut, nlut, enc, rng, amax, madam, view, nview;
} Idx;

static Idx declare(Suite *s)
{
	Idx x;
	LnsFormat z = fmt(2, 0, 0, 0);
	x.ndec = sizeof dec_fmt / sizeof dec_fmt[0];
	x.dec = s->nk;
	for (int i = 0; i < x.ndec; i++)
		add_kern(s, K_DEC, fmt(dec_fmt[i][0], dec_fmt[i][1], 0, 0), z, NULL);
	x.nlut = sizeof lut_fmt / sizeof lut_fmt[0];
	x.lut = s->nk;
	for (int i = 0; i < x.nlut; i++)
		add_kern(s, i & 1 ? K_LUTM : K_LUT, fmt(lut_fmt[i][0], lut_fmt[i][1], 0, 0), z,
		         NULL);
	x.enc = s->nk;
	for (int fi = 0; fi < NENC; fi++)
		for (int mode = 0; mode < 6; mode++)
			add_kern(s, K_ENC, fmt(enc_fmt[fi][0], enc_fmt[fi][1], mode / 3, mode % 3),
			         z, NULL);
	x.rng = add_kern(s, K_RNG, z, z, NULL);
	x.amax = add_kern(s, K_AMAX, z, z, NULL);
	x.madam = s->nk;
	for (int i = 0; i < NMADAM; i++) {
		const MadamCase *mc = &madam_cases[i];
		IrAttrOpt o = {
		    .lr = 1.0f, .beta2 = mc->beta2, .g_bound = mc->g_bound, .p_scale = 3.0f};
		add_kern(s, K_MADAM, fmt(mc->bits, mc->log2g, 0, 0), z, &o);
	}
	x.nview = sizeof view_fmt / sizeof view_fmt[0];
	x.view = s->nk;
	for (int i = 0; i < x.nview; i++)
		add_kern(s, K_VIEW, fmt(view_fmt[i][0], view_fmt[i][1], 0, 0),
		         fmt(view_fmt[i][2], view_fmt[i][3], 0, 0), NULL);
	return x;
}

/* The CPUs to compile for: vector widths 4, 8, 16 as far as the host runs them. */
static void widths(const char **cpus, int *n)
{
	*n = 0;
#if defined(__x86_64__)
	cpus[(*n)++] = "x86-64";
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		cpus[(*n)++] = "x86-64-v3";
	else
		fprintf(stderr, "test_cg_lns: host lacks AVX2: vector width 8 not run\n");
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
	    __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
		cpus[(*n)++] = "x86-64-v4";
	else
		fprintf(stderr, "test_cg_lns: host lacks AVX-512: vector width 16 not run\n");
#else
	cpus[(*n)++] = NULL; /* the host CPU */
#endif
}

int main(void)
{
	static Suite s;
	Idx x = declare(&s);
	IrCtx *ir = ir_ctx_new();
	const char *cpus[NW];
	int ncpu;
	widths(cpus, &ncpu);
	for (int i = 0; i < ncpu; i++)
		if (build(&s, s.nw, cpus[i], ir) == 0)
			s.nw++;
	if (s.nw == ncpu) {
		uint64_t rs = 12345;
		for (int i = 0; i < x.ndec; i++)
			test_decode(&s, x.dec + i, &rs);
		for (int i = 0; i < x.nlut; i++)
			test_decode(&s, x.lut + i, &rs);
		size_t ne = test_encode(&s, x.enc, &rs);
		test_rng(&s, x.rng, &rs);
		test_amax(&s, x.amax, &rs);
		test_madam(&s, x.madam, &rs);
		for (int i = 0; i < x.nview; i++)
			test_view(&s, x.view + i, &rs);
		printf("test_cg_lns: widths");
		for (int i = 0; i < s.nw; i++)
			printf(" %d", s.vw[i]);
		printf("; %zu encodes per width\n", ne);
	}
	for (int i = 0; i < s.nw; i++)
		cg_jit_free(s.jit[i]);
	ir_ctx_free(ir);
	return t_finish("test_cg_lns");
}
