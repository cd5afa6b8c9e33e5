/* cg_lns.c: LNS numerics in LLVM IR (words, decode, encode, RNG, Madam, weight view), bit for
 * bit the functions of ir/lns.c.
 *
 * Every emitter works on <n x i32> words and <n x float> values for any n (c->vw in vector
 * bodies, 1 in scalar tails) and follows the contract at the top of ir/lns.c operation by
 * operation: integer ops, table look-ups and plain IEEE fp32 ops without fast-math flags (so
 * nothing is contracted or reassociated). The tables are those of lns_tables.h, reshaped for
 * vector code. Decoding is T[r] plus an exponent-field add, with one multiply by 2^-126 for
 * results that round into the subnormals. Encoding folds lns.c's bucket count and in-bucket
 * threshold into one packed entry per bucket (pack_entry), so that
 * (|x| bits + entry) >> (23 - log2g) is the exponent field times g plus the number of
 * thresholds at or below the mantissa: one look-up, one add, one shift; subnormal inputs are
 * first scaled by 2^149 (exact: their bits as an integer, converted). Look-ups use register
 * permutes when the table fits (vpermd and vpermi2d: up to 64 entries with AVX-512, 16 with AVX2),
 * select chains up to 4 entries, else a gather from a private constant global made once per module,
 * gamma and table (c->lns_tables). Stochastic rounding of a subnormal input, where lns.c searches
 * the decoded levels (lns_floor_log), uses a closed form instead (sr_tiny), in a branch taken
 * only when a lane needs it.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"
#include "lns_tables.h"

/* Slots of c->lns_tables[log2g]: T[r] = 2^(r/g); packed nearest-rounding buckets; packed
 * floor buckets (over T); the next level T[r+1] (2.0 for r = g-1). */
enum { TAB_POW, TAB_NEAR, TAB_FLOOR, TAB_NEXT };

/* ---- IR vocabulary: constants splatted to the operand's type, short builders ---- */

static unsigned lanes(LLVMValueRef v)
{
	return LLVMGetVectorSize(LLVMTypeOf(v));
}

/* The integer constant v with the type of a (an integer or a vector of integers). */
static LLVMValueRef like(LLVMValueRef a, int64_t v)
{
	LLVMTypeRef t = LLVMTypeOf(a);
	if (LLVMGetTypeKind(t) != LLVMVectorTypeKind)
		return LLVMConstInt(t, (unsigned long long)v, 1);
	LLVMValueRef e[64];
	unsigned n = LLVMGetVectorSize(t);
	assert(n <= 64);
	for (unsigned i = 0; i < n; i++)
		e[i] = LLVMConstInt(LLVMGetElementType(t), (unsigned long long)v, 1);
	return LLVMConstVector(e, n);
}

static LLVMValueRef vf(CgCtx *c, unsigned n, float v)
{
	LLVMValueRef e[64];
	assert(n <= 64);
	for (unsigned i = 0; i < n; i++)
		e[i] = LLVMConstReal(c->t_f32, v);
	return LLVMConstVector(e, n);
}

static LLVMTypeRef vty(LLVMTypeRef elem, unsigned n)
{
	return LLVMVectorType(elem, n);
}

static LLVMValueRef add(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildAdd(c->b, a, b, "");
}

static LLVMValueRef sub(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildSub(c->b, a, b, "");
}

static LLVMValueRef and_(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildAnd(c->b, a, b, "");
}

static LLVMValueRef or_(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildOr(c->b, a, b, "");
}

static LLVMValueRef shl(CgCtx *c, LLVMValueRef a, int s)
{
	return s ? LLVMBuildShl(c->b, a, like(a, s), "") : a;
}

static LLVMValueRef lshr(CgCtx *c, LLVMValueRef a, int s)
{
	return s ? LLVMBuildLShr(c->b, a, like(a, s), "") : a;
}

static LLVMValueRef ashr(CgCtx *c, LLVMValueRef a, int s)
{
	return s ? LLVMBuildAShr(c->b, a, like(a, s), "") : a;
}

static LLVMValueRef sel(CgCtx *c, LLVMValueRef cond, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildSelect(c->b, cond, a, b, "");
}

static LLVMValueRef icmp(CgCtx *c, LLVMIntPredicate p, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildICmp(c->b, p, a, b, "");
}

static LLVMValueRef fcmp(CgCtx *c, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildFCmp(c->b, p, a, b, "");
}

static LLVMValueRef fadd(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildFAdd(c->b, a, b, "");
}

static LLVMValueRef fsub(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildFSub(c->b, a, b, "");
}

static LLVMValueRef fmul(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildFMul(c->b, a, b, "");
}

static LLVMValueRef fdiv(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildFDiv(c->b, a, b, "");
}

static LLVMValueRef zext32(CgCtx *c, LLVMValueRef v)
{
	return LLVMBuildZExt(c->b, v, vty(c->t_i32, lanes(v)), "");
}

static LLVMValueRef as_f(CgCtx *c, LLVMValueRef v)
{
	return LLVMBuildBitCast(c->b, v, vty(c->t_f32, lanes(v)), "");
}

static LLVMValueRef as_i(CgCtx *c, LLVMValueRef v)
{
	return LLVMBuildBitCast(c->b, v, vty(c->t_i32, lanes(v)), "");
}

static LLVMValueRef smax(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
	LLVMValueRef args[2] = {a, b};
	return cg_intrinsic(c, "llvm.smax", LLVMTypeOf(a), args, 2);
}

static LLVMValueRef smin(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
	LLVMValueRef args[2] = {a, b};
	return cg_intrinsic(c, "llvm.smin", LLVMTypeOf(a), args, 2);
}

/* Scalar integer v as an i32 / i64 (sign-extended or truncated). */
static LLVMValueRef to_int(CgCtx *c, LLVMValueRef v, LLVMTypeRef t)
{
	return LLVMTypeOf(v) == t ? v : LLVMBuildIntCast2(c->b, v, t, 1, "");
}

/* Scalar k limited to [-lim, lim] (lim > 0). */
static LLVMValueRef clamp_s(CgCtx *c, LLVMValueRef k, int32_t lim)
{
	k = to_int(c, k, c->t_i32);
	return smin(c, smax(c, k, cg_i32(c, -lim)), cg_i32(c, lim));
}

/* Calls an intrinsic with ntys overload types (0 for a non-overloaded one). */
static LLVMValueRef intrin(CgCtx *c, const char *name, LLVMTypeRef *tys, int ntys,
                           LLVMValueRef *args, int nargs)
{
	unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
	assert(id != 0);
	LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, tys, (size_t)ntys);
	LLVMTypeRef fty = LLVMIntrinsicGetType(c->llctx, id, tys, (size_t)ntys);
	return LLVMBuildCall2(c->b, fty, fn, args, (unsigned)nargs, "");
}

static LLVMValueRef all_true(CgCtx *c, unsigned n)
{
	LLVMValueRef e[64];
	assert(n <= 64);
	for (unsigned i = 0; i < n; i++)
		e[i] = LLVMConstInt(c->t_i1, 1, 0);
	return LLVMConstVector(e, n);
}

/* ---- tables ---- */

static int tab_count(int slot, int L)
{
	return (slot == TAB_NEAR || slot == TAB_FLOOR ? 2 : 1) << L;
}

/* Packed entry of bucket i for the threshold table tab (g fp32 bit patterns in [1, 2)) and its
 * bucket counts (lns_tables.h). lns.c counts #{j : tab[j] <= mant} as cnt + (tab[cnt] <= mant),
 * cnt = bucket[i], and tab[cnt] can only decide inside bucket i. With S = 23 - L and frac the
 * fraction bits of a mantissa in bucket i (frac >> (S-1) = i), the entry is (cnt+1) << S minus
 * the threshold's fraction, so (frac + entry) >> S is cnt + (frac >= threshold); when no
 * threshold lies in the bucket, minus the next bucket's start, which never carries. Entries
 * are in [0, 2^24], so adding the whole |x| pattern adds (exponent field) << L to the count. */
static uint32_t pack_entry(const uint32_t *tab, const uint16_t *bucket, int L, int i)
{
	int g = 1 << L, S = 23 - L;
	uint32_t cnt = bucket[i], next = (uint32_t)(i + 1) << (S - 1);
	uint32_t thr = cnt < (uint32_t)g ? (tab[cnt] & 0x7FFFFFu) : next;
	if (thr > next)
		thr = next;
	return ((cnt + 1) << S) - thr;
}

static void tab_values(int slot, int L, uint32_t *out)
{
	int g = 1 << L, off = g - 1;
	for (int i = 0; i < tab_count(slot, L); i++) {
		switch (slot) {
		case TAB_POW:
			out[i] = lns_tab_pow[off + i];
			break;
		case TAB_NEXT:
			out[i] = i + 1 < g ? lns_tab_pow[off + i + 1] : 0x40000000u;
			break;
		case TAB_NEAR:
			out[i] = pack_entry(lns_tab_mid + off, lns_tab_mid_bucket + 2 * off, L, i);
			break;
		default:
			out[i] = pack_entry(lns_tab_pow + off, lns_tab_pow_bucket + 2 * off, L, i);
			break;
		}
	}
}

/* The table as a private constant i32 array, created once per module. */
static LLVMValueRef tab_global(CgCtx *c, int slot, int L)
{
	LLVMValueRef *gv = &c->lns_tables[L][slot];
	if (*gv)
		return *gv;
	int n = tab_count(slot, L);
	uint32_t *v = malloc((size_t)n * sizeof *v);
	LLVMValueRef *e = malloc((size_t)n * sizeof *e);
	if (!v || !e)
		abort();
	tab_values(slot, L, v);
	for (int i = 0; i < n; i++)
		e[i] = LLVMConstInt(c->t_i32, v[i], 0);
	LLVMTypeRef at = LLVMArrayType2(c->t_i32, (uint64_t)n);
	char name[32];
	snprintf(name, sizeof name, "lns.tab.%d.%d", L, slot);
	*gv = LLVMAddGlobal(c->mod, at, name);
	LLVMSetInitializer(*gv, LLVMConstArray2(c->t_i32, e, (uint64_t)n));
	LLVMSetGlobalConstant(*gv, 1);
	LLVMSetLinkage(*gv, LLVMPrivateLinkage);
	LLVMSetUnnamedAddress(*gv, LLVMGlobalUnnamedAddr);
	LLVMSetAlignment(*gv, 64);
	free(v);
	free(e);
	return *gv;
}

/* base[idx] for 32-bit entries at a pointer (idx <n x i32>, in range). */
static LLVMValueRef gather(CgCtx *c, LLVMValueRef base, LLVMValueRef idx)
{
	unsigned n = lanes(idx);
	LLVMTypeRef vt = vty(c->t_i32, n);
	LLVMValueRef ptrs = LLVMBuildGEP2(c->b, c->t_i32, base, &idx, 1, "");
	LLVMTypeRef tys[2] = {vt, LLVMTypeOf(ptrs)};
	LLVMValueRef args[4] = {ptrs, cg_i32(c, 4), all_true(c, n), LLVMGetPoison(vt)};
	return intrin(c, "llvm.masked.gather", tys, 2, args, 4);
}

static int has_intrin(const char *name)
{
	return LLVMLookupIntrinsicID(name, strlen(name)) != 0;
}

/* Lanes of the register permute that looks up count entries for n lanes on this target:
 * 16 (AVX-512: vpermd, vpermi2d; count <= 64), 8 (AVX2: vpermd; count <= 16) or 0 (none). */
static int perm_width(CgCtx *c, unsigned n, int count)
{
	if (!c->is_x86)
		return 0;
	if (n == 16 && c->vw == 16 && count <= 64 && has_intrin("llvm.x86.avx512.permvar.si.512") &&
	    has_intrin("llvm.x86.avx512.vpermi2var.d.512"))
		return 16;
	if (n == 8 && c->vw >= 8 && count <= 16 && has_intrin("llvm.x86.avx2.permd"))
		return 8;
	return 0;
}

/* tab[idx] with the table in registers: chunk[j] holds entries j*n .. j*n+n-1 (count a power
 * of two; a table shorter than n is repeated to fill one chunk). */
static LLVMValueRef perm_lookup(CgCtx *c, LLVMValueRef *chunk, int count, LLVMValueRef idx)
{
	LLVMValueRef a[3];
	if (lanes(idx) == 8) {
		a[0] = chunk[0], a[1] = idx;
		LLVMValueRef r = intrin(c, "llvm.x86.avx2.permd", NULL, 0, a, 2);
		if (count <= 8)
			return r;
		a[0] = chunk[1];
		LLVMValueRef r1 = intrin(c, "llvm.x86.avx2.permd", NULL, 0, a, 2);
		return sel(c, icmp(c, LLVMIntNE, and_(c, idx, like(idx, 8)), like(idx, 0)), r1, r);
	}
	if (count <= 16) {
		a[0] = chunk[0], a[1] = idx;
		return intrin(c, "llvm.x86.avx512.permvar.si.512", NULL, 0, a, 2);
	}
	a[0] = chunk[0], a[1] = idx, a[2] = chunk[1];
	LLVMValueRef r = intrin(c, "llvm.x86.avx512.vpermi2var.d.512", NULL, 0, a, 3);
	if (count <= 32)
		return r;
	a[0] = chunk[2], a[2] = chunk[3];
	LLVMValueRef r1 = intrin(c, "llvm.x86.avx512.vpermi2var.d.512", NULL, 0, a, 3);
	return sel(c, icmp(c, LLVMIntNE, and_(c, idx, like(idx, 32)), like(idx, 0)), r1, r);
}

/* Entry idx (in range) of table slot for gamma 2^L, as i32 bit patterns. */
static LLVMValueRef lookup(CgCtx *c, int slot, int L, LLVMValueRef idx)
{
	unsigned n = lanes(idx);
	int count = tab_count(slot, L);
	uint32_t v[64];
	if (count > 64)
		return gather(c, tab_global(c, slot, L), idx);
	tab_values(slot, L, v);
	if (count == 1)
		return like(idx, v[0]);
	int pw = perm_width(c, n, count);
	if (pw) {
		LLVMValueRef chunk[4], e[16];
		for (int j = 0; j * pw < count; j++) {
			for (int l = 0; l < pw; l++)
				e[l] = LLVMConstInt(c->t_i32, v[(j * pw + l) % count], 0);
			chunk[j] = LLVMConstVector(e, (unsigned)pw);
		}
		return perm_lookup(c, chunk, count, idx);
	}
	if (count <= 4) {
		LLVMValueRef r = like(idx, v[0]);
		for (int i = 1; i < count; i++)
			r = sel(c, icmp(c, LLVMIntEQ, idx, like(idx, i)), like(idx, v[i]), r);
		return r;
	}
	return gather(c, tab_global(c, slot, L), idx);
}

/* ---- decode ---- */

/* lns_pow2_e: 2^(E/g) in fp32 for E <n x i32>: T[r] with q added to the exponent field;
 * q < -126 adds q + 126 and multiplies by 2^-126 (one rounding into the subnormals), q below
 * -253 is raised to -253 (a zero either way), q > 127 gives +inf. */
static LLVMValueRef pow2_e(CgCtx *c, int L, LLVMValueRef E)
{
	unsigned n = lanes(E);
	LLVMValueRef q = ashr(c, E, L);
	LLVMValueRef t = lookup(c, TAB_POW, L, and_(c, E, like(E, (1 << L) - 1)));
	LLVMValueRef qc = smax(c, q, like(q, -253));
	LLVMValueRef tiny = icmp(c, LLVMIntSLT, qc, like(q, -126));
	LLVMValueRef qn = add(c, qc, sel(c, tiny, like(q, 126), like(q, 0)));
	LLVMValueRef v = as_f(c, add(c, t, shl(c, qn, 23)));
	/* scale by a selected constant: a product for every lane would make subnormals (slow on
	 * many CPUs) in lanes that do not use it */
	v = fmul(c, v, sel(c, tiny, vf(c, n, 0x1p-126f), vf(c, n, 1.0f)));
	return sel(c, icmp(c, LLVMIntSGT, q, like(q, 127)), vf(c, n, INFINITY), v);
}

LLVMValueRef cg_lns_decode(CgCtx *c, LnsFormat f, LLVMValueRef k, LLVMValueRef w)
{
	unsigned n = lanes(w);
	int sb = f.bits - 1;
	LLVMValueRef m = and_(c, w, like(w, (1 << sb) - 1));
	/* lns.c clamps m + k to +-2^30; clamping k first gives the same (inf or 0) beyond */
	LLVMValueRef kc = cg_splat(c, clamp_s(c, k, 1 << 30), (int)n);
	LLVMValueRef v = as_i(c, pow2_e(c, f.log2g, add(c, m, kc)));
	v = or_(c, v, shl(c, and_(c, w, like(w, 1 << sb)), 31 - sb)); /* -v, also for 0 and inf */
	return as_f(c, sel(c, icmp(c, LLVMIntEQ, m, like(m, 0)), like(m, 0), v));
}

LLVMValueRef cg_lns_load(CgCtx *c, LnsFormat f, LLVMValueRef base, LLVMValueRef idx, int n)
{
	int bytes = lns_container_bytes(f);
	LLVMTypeRef et = bytes == 1 ? c->t_i8 : c->t_i16;
	idx = to_int(c, idx, c->t_i64);
	LLVMValueRef p = cg_gep(c, base, LLVMBuildMul(c->b, idx, cg_i64(c, bytes), ""));
	LLVMValueRef v = LLVMBuildLoad2(c->b, vty(et, (unsigned)n), p, "lnsw");
	LLVMSetAlignment(v, (unsigned)bytes);
	return zext32(c, v);
}

void cg_lns_store(CgCtx *c, LnsFormat f, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef w)
{
	int bytes = lns_container_bytes(f);
	LLVMTypeRef et = bytes == 1 ? c->t_i8 : c->t_i16;
	idx = to_int(c, idx, c->t_i64);
	LLVMValueRef p = cg_gep(c, base, LLVMBuildMul(c->b, idx, cg_i64(c, bytes), ""));
	LLVMValueRef v = LLVMBuildTrunc(c->b, w, vty(et, lanes(w)), "");
	LLVMSetAlignment(LLVMBuildStore(c->b, v, p), (unsigned)bytes);
}

/* An alloca in the entry block of the current function. */
static LLVMValueRef entry_alloca(CgCtx *c, LLVMTypeRef t, const char *name)
{
	LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(c->fn);
	LLVMBuilderRef b = LLVMCreateBuilderInContext(c->llctx);
	LLVMValueRef first = LLVMGetFirstInstruction(entry);
	if (first)
		LLVMPositionBuilderBefore(b, first);
	else
		LLVMPositionBuilderAtEnd(b, entry);
	LLVMValueRef a = LLVMBuildAlloca(b, t, name);
	LLVMSetAlignment(a, 64);
	LLVMDisposeBuilder(b);
	return a;
}

LLVMValueRef cg_lns_lane_idx(CgCtx *c, LLVMValueRef i, int n)
{
	LLVMValueRef e[64];
	assert(n >= 1 && n <= 64);
	for (int l = 0; l < n; l++)
		e[l] = cg_i32(c, l);
	LLVMValueRef base = cg_splat(c, LLVMBuildTrunc(c->b, i, c->t_i32, ""), n);
	return add(c, base, LLVMConstVector(e, (unsigned)n));
}

LLVMValueRef cg_lns_decode_table(CgCtx *c, LnsFormat f, LLVMValueRef k, LLVMValueRef tab)
{
	assert(f.bits <= 8);
	int count = 1 << f.bits, n = c->vw < count ? c->vw : count;
	if (!tab)
		tab = entry_alloca(c, LLVMArrayType2(c->t_f32, (uint64_t)count), "lns.lut");
	CgLoop L;
	LLVMValueRef i = cg_loop_begin(c, &L, cg_i64(c, 0), cg_i64(c, count), n, "lut");
	LLVMValueRef v = cg_lns_decode(c, f, k, cg_lns_lane_idx(c, i, n));
	LLVMValueRef p = cg_gep(c, tab, LLVMBuildMul(c->b, i, cg_i64(c, 4), ""));
	LLVMSetAlignment(LLVMBuildStore(c->b, v, p), 4);
	cg_loop_end(c, &L);
	return tab;
}

int cg_lns_lut_in_regs(CgCtx *c, LnsFormat f, int n)
{
	return f.bits <= 8 && perm_width(c, (unsigned)n, 1 << f.bits) != 0;
}

LLVMValueRef cg_lns_decode_lut(CgCtx *c, LnsFormat f, LLVMValueRef tab, LLVMValueRef w)
{
	unsigned n = lanes(w);
	int count = 1 << f.bits;
	LLVMValueRef idx = and_(c, w, like(w, count - 1));
	int pw = perm_width(c, n, count);
	if (!pw)
		return as_f(c, gather(c, tab, idx));
	LLVMValueRef chunk[4];
	for (int j = 0; j * pw < count; j++) {
		unsigned len = count < pw ? (unsigned)count : (unsigned)pw;
		LLVMValueRef p = cg_gep_c(c, tab, (int64_t)j * pw * 4);
		LLVMValueRef ld = LLVMBuildLoad2(c->b, vty(c->t_i32, len), p, "lut");
		LLVMSetAlignment(ld, 4);
		if (len < (unsigned)pw) { /* repeat a short table to fill the register */
			LLVMValueRef mask[16];
			for (int l = 0; l < pw; l++)
				mask[l] = cg_i32(c, l % count);
			ld = LLVMBuildShuffleVector(c->b, ld, LLVMGetPoison(LLVMTypeOf(ld)),
			                            LLVMConstVector(mask, (unsigned)pw), "");
		}
		chunk[j] = ld;
	}
	return as_f(c, perm_lookup(c, chunk, count, idx));
}

/* ---- encode ---- */

/* What every encode path needs about x, computed once. */
typedef struct EncIn {
	LnsFormat f;
	unsigned n;
	LLVMValueRef ab, ax; /* |x|: bits and value */
	LLVMValueRef sgn;    /* the sign bit moved to bit B-1 */
	LLVMValueRef zero;   /* x = +-0 */
	LLVMValueRef tiny;   /* x subnormal (nonzero): |x| = ab * 2^-149 */
	LLVMValueRef abf;    /* ab as an fp32 (exact), read in tiny lanes */
	LLVMValueRef kc;     /* k clamped to +-2^28 (as lns.c's enc_init), splat */
	LLVMValueRef u;      /* lns_rng_unit(rnd), or NULL */
	LLVMValueRef lmin;   /* the smallest level pow2_e(k + 1), splat, or NULL */
} EncIn;

static EncIn enc_in(CgCtx *c, LnsFormat f, LLVMValueRef k, LLVMValueRef x, LLVMValueRef rnd)
{
	EncIn e;
	e.f = f;
	e.n = lanes(x);
	LLVMValueRef b = as_i(c, x);
	e.ab = and_(c, b, like(b, 0x7FFFFFFF));
	e.ax = as_f(c, e.ab);
	e.sgn = shl(c, lshr(c, b, 31), f.bits - 1);
	e.zero = icmp(c, LLVMIntEQ, e.ab, like(b, 0));
	e.tiny = icmp(c, LLVMIntULT, add(c, e.ab, like(b, -1)), like(b, 0x7FFFFF));
	e.abf = LLVMBuildSIToFP(c->b, e.ab, vty(c->t_f32, e.n), "");
	LLVMValueRef kc = clamp_s(c, k, 1 << 28);
	e.kc = cg_splat(c, kc, (int)e.n);
	int rng = f.round == LNS_ROUND_STOCHASTIC || f.underflow == LNS_UF_STOCHASTIC;
	assert(!rng || rnd);
	e.u = NULL;
	if (rng) /* lns_rng_unit: (bits >> 8) * 2^-24 */
		e.u = fmul(c, LLVMBuildSIToFP(c->b, lshr(c, rnd, 8), vty(c->t_f32, e.n), ""),
		           vf(c, e.n, 0x1p-24f));
	e.lmin = NULL;
	if (f.underflow == LNS_UF_STOCHASTIC) {
		LLVMValueRef k1 = cg_splat(c, add(c, kc, cg_i32(c, 1)), 1);
		LLVMValueRef l = pow2_e(c, f.log2g, k1);
		e.lmin = cg_splat(c, LLVMBuildExtractElement(c->b, l, cg_i32(c, 0), ""), (int)e.n);
	}
	return e;
}

/* g * e + #{entries of the slot's table <= mant} for the fp32 bits ab = 2^e * mant (normal):
 * lns.c's round_log with TAB_NEAR, floor_log + 1 with TAB_FLOOR. */
static LLVMValueRef log_count(CgCtx *c, int slot, int L, LLVMValueRef ab)
{
	int S = 23 - L;
	LLVMValueRef idx = and_(c, lshr(c, ab, S - 1), like(ab, (2 << L) - 1));
	LLVMValueRef cnt = lshr(c, add(c, ab, lookup(c, slot, L, idx)), S);
	return add(c, cnt, like(cnt, -(int64_t)127 * (1 << L)));
}

/* 149 g in the subnormal lanes, else 0. */
static LLVMValueRef tiny_adj(CgCtx *c, const EncIn *e)
{
	int64_t g = (int64_t)1 << e->f.log2g;
	return sel(c, e->tiny, like(e->ab, 149 * g), like(e->ab, 0));
}

/* lns.c's finish: saturation at M, underflow below 1 by mode uf (zero, min, or the LUQ rule
 * with e->u and e->lmin); zero input gives word 0 and no flags. extra_unf: lanes flagged as
 * underflow whatever m is (stochastic rounding's LUQ lanes), or NULL. */
static LLVMValueRef finish(CgCtx *c, const EncIn *e, int uf, LLVMValueRef m, LLVMValueRef extra_unf,
                           LLVMValueRef *sat, LLVMValueRef *unf)
{
	int M = lns_max_code(e->f);
	LLVMValueRef z = like(m, 0);
	LLVMValueRef word = or_(c, e->sgn, smin(c, m, like(m, M)));
	LLVMValueRef low = icmp(c, LLVMIntSLT, m, like(m, 1));
	LLVMValueRef lw = z;
	if (uf == LNS_UF_MIN)
		lw = or_(c, e->sgn, like(m, 1));
	else if (uf == LNS_UF_STOCHASTIC)
		lw = sel(c, fcmp(c, LLVMRealOLT, e->u, fdiv(c, e->ax, e->lmin)),
		         or_(c, e->sgn, like(m, 1)), z);
	LLVMValueRef r = sel(c, e->zero, z, sel(c, low, lw, word));
	LLVMValueRef nz = LLVMBuildNot(c->b, e->zero, "");
	if (sat)
		*sat = and_(c, nz, icmp(c, LLVMIntSGT, m, like(m, M)));
	if (unf)
		*unf = and_(c, nz, extra_unf ? or_(c, low, extra_unf) : low);
	return r;
}

/* Subnormal lanes of enc_sr (a branch taken only when some lane has one). There the levels are
 * pow2_e(n) = rint(y_n) * 2^-149 with y_n = 2^(n/g + 149) = T[r] 2^(q+149) (exact in fp32), and
 * y_n grows with n, so pow2_e(n) <= |x| iff y_n < ab + 1/2, or y_n = ab + 1/2 with ab even
 * (ties to even): the caller's floor count of z = ab + 1/2 (exact, normal) less 149 g, minus 1
 * on an exact tie with ab odd (lo = z: lo is the level the count found, still in z's binade).
 * The levels lo and hi are then decoded in full. */
static void sr_tiny(CgCtx *c, const EncIn *e, LLVMValueRef zb, LLVMValueRef *n0, LLVMValueRef *lo,
                    LLVMValueRef *hi)
{
	int L = e->f.log2g;
	LLVMValueRef tiny = e->tiny;
	LLVMValueRef any = cg_intrinsic(c, "llvm.vector.reduce.or", LLVMTypeOf(tiny), &tiny, 1);
	LLVMValueRef ex[2] = {any, LLVMConstInt(c->t_i1, 0, 0)};
	any = cg_intrinsic(c, "llvm.expect", c->t_i1, ex, 2);
	LLVMBasicBlockRef from = LLVMGetInsertBlock(c->b);
	LLVMBasicBlockRef cold = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "lns.sr.tiny");
	LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "lns.sr.join");
	LLVMBuildCondBr(c->b, any, cold, join);
	LLVMPositionBuilderAtEnd(c->b, cold);
	LLVMValueRef odd = icmp(c, LLVMIntNE, and_(c, e->ab, like(e->ab, 1)), like(e->ab, 0));
	LLVMValueRef tie = and_(c, and_(c, tiny, odd), icmp(c, LLVMIntEQ, as_i(c, *lo), zb));
	LLVMValueRef v[3], w[3] = {*n0, *lo, *hi};
	v[0] = sub(c, *n0, zext32(c, tie));
	v[1] = sel(c, tiny, pow2_e(c, L, v[0]), *lo);
	v[2] = sel(c, tiny, pow2_e(c, L, add(c, v[0], like(zb, 1))), *hi);
	LLVMBasicBlockRef cold_end = LLVMGetInsertBlock(c->b);
	LLVMBuildBr(c->b, join);
	LLVMPositionBuilderAtEnd(c->b, join);
	LLVMValueRef *out[3] = {n0, lo, hi};
	for (int i = 0; i < 3; i++) {
		LLVMValueRef phi = LLVMBuildPhi(c->b, LLVMTypeOf(w[i]), "");
		LLVMValueRef in[2] = {w[i], v[i]};
		LLVMBasicBlockRef bb[2] = {from, cold_end};
		LLVMAddIncoming(phi, in, bb, 2);
		*out[i] = phi;
	}
}

/* lns.c's encode_sr up to finish: n0 = floor_log(|x|), lo/hi the decoded levels around |x|,
 * up with probability (|x| - lo) / (hi - lo); with underflow stochastic, lanes with
 * n0 - k < 1 take the LUQ rule instead (*luq). Returns m. For normal x the levels are T[r0]
 * and T[r0+1] (2.0 past the end) with the exponent e of x added: hi of the top fp32 binade
 * becomes 0x7F800000 = +inf exactly. */
static LLVMValueRef enc_sr(CgCtx *c, const EncIn *e, LLVMValueRef *luq)
{
	int L = e->f.log2g;
	LLVMValueRef zb = as_i(c, fadd(c, e->abf, vf(c, e->n, 0.5f)));
	LLVMValueRef n0 = log_count(c, TAB_FLOOR, L, sel(c, e->tiny, zb, e->ab));
	n0 = add(c, n0, like(n0, -1));
	LLVMValueRef r0 = and_(c, n0, like(n0, (1 << L) - 1)), qs = shl(c, ashr(c, n0, L), 23);
	LLVMValueRef lo = as_f(c, add(c, lookup(c, TAB_POW, L, r0), qs));
	LLVMValueRef hi = as_f(c, add(c, lookup(c, TAB_NEXT, L, r0), qs));
	n0 = sub(c, n0, tiny_adj(c, e));
	sr_tiny(c, e, zb, &n0, &lo, &hi);
	LLVMValueRef num = fsub(c, e->ax, lo), den = fsub(c, hi, lo);
	LLVMValueRef mk = sub(c, n0, e->kc);
	*luq = NULL;
	if (e->f.underflow == LNS_UF_STOCHASTIC) { /* one division serves both rules */
		*luq = icmp(c, LLVMIntSLT, mk, like(mk, 1));
		num = sel(c, *luq, e->ax, num);
		den = sel(c, *luq, e->lmin, den);
	}
	LLVMValueRef up = zext32(c, fcmp(c, LLVMRealOLT, e->u, fdiv(c, num, den)));
	LLVMValueRef m = add(c, mk, up);
	return *luq ? sel(c, *luq, up, m) : m;
}

LLVMValueRef cg_lns_encode(CgCtx *c, LnsFormat f, LLVMValueRef k, LLVMValueRef x, LLVMValueRef rnd,
                           LLVMValueRef *sat, LLVMValueRef *unf)
{
	EncIn e = enc_in(c, f, k, x, rnd);
	if (f.round == LNS_ROUND_NEAREST) { /* a subnormal: ab, converted (exact), less 149 g */
		LLVMValueRef abn = sel(c, e.tiny, as_i(c, e.abf), e.ab);
		LLVMValueRef n = sub(c, log_count(c, TAB_NEAR, f.log2g, abn), tiny_adj(c, &e));
		return finish(c, &e, f.underflow, sub(c, n, e.kc), NULL, sat, unf);
	}
	LLVMValueRef luq;
	LLVMValueRef m = enc_sr(c, &e, &luq);
	/* LUQ lanes already hold 0 or 1: below 1 is zero there */
	int uf = f.underflow == LNS_UF_STOCHASTIC ? LNS_UF_ZERO : f.underflow;
	return finish(c, &e, uf, m, luq, sat, unf);
}

LLVMValueRef cg_lns_amax_update(CgCtx *c, LLVMValueRef acc, LLVMValueRef x)
{
	LLVMValueRef ab = and_(c, as_i(c, x), like(acc, 0x7FFFFFFF)), args[2] = {acc, ab};
	return cg_intrinsic(c, "llvm.umax", LLVMTypeOf(acc), args, 2);
}

LLVMValueRef cg_lns_amax_reduce(CgCtx *c, LLVMValueRef acc)
{
	LLVMValueRef m = cg_intrinsic(c, "llvm.vector.reduce.umax", LLVMTypeOf(acc), &acc, 1);
	return LLVMBuildBitCast(c->b, m, c->t_f32, "amax");
}

LLVMValueRef cg_lns_flag_count(CgCtx *c, LLVMValueRef flags)
{
	unsigned n = lanes(flags);
	LLVMTypeRef it = LLVMIntTypeInContext(c->llctx, n);
	LLVMValueRef bits = LLVMBuildBitCast(c->b, flags, it, "");
	LLVMValueRef pc = cg_intrinsic(c, "llvm.ctpop", it, &bits, 1);
	return LLVMBuildIntCast2(c->b, pc, c->t_i32, 0, "");
}

/* ---- counter-based RNG ---- */

/* lns_mix32 on a scalar or vector i32. */
static LLVMValueRef mix32(CgCtx *c, LLVMValueRef x)
{
	x = LLVMBuildXor(c->b, x, lshr(c, x, 16), "");
	x = LLVMBuildMul(c->b, x, like(x, 0x7FEB352D), "");
	x = LLVMBuildXor(c->b, x, lshr(c, x, 15), "");
	x = LLVMBuildMul(c->b, x, like(x, 0x846CA68B), "");
	return LLVMBuildXor(c->b, x, lshr(c, x, 16), "");
}

LLVMValueRef cg_lns_rng_bits(CgCtx *c, LLVMValueRef key, LLVMValueRef idx)
{
	LLVMValueRef k = cg_splat(c, to_int(c, key, c->t_i32), (int)lanes(idx));
	return mix32(c, add(c, k, LLVMBuildMul(c->b, idx, like(idx, 0x9E3779B9), "")));
}

LLVMValueRef cg_lns_rng_key_of(CgCtx *c, LLVMValueRef seed, LLVMValueRef step, LLVMValueRef id)
{
	seed = LLVMBuildIntCast2(c->b, seed, c->t_i64, 0, "");
	LLVMValueRef lo = LLVMBuildTrunc(c->b, seed, c->t_i32, "");
	LLVMValueRef hi = LLVMBuildTrunc(c->b, lshr(c, seed, 32), c->t_i32, "");
	LLVMValueRef s = LLVMBuildXor(c->b, lo, mix32(c, hi), "");
	s = LLVMBuildXor(c->b, mix32(c, s), LLVMBuildIntCast2(c->b, step, c->t_i32, 0, ""), "");
	s = LLVMBuildXor(c->b, mix32(c, s), LLVMBuildIntCast2(c->b, id, c->t_i32, 0, ""), "");
	return mix32(c, s);
}

LLVMValueRef cg_lns_rng_key(CgCtx *c, const IrValue *v)
{
	return cg_lns_rng_key_of(c, cg_seed(c), cg_step(c), cg_i32(c, v->id));
}

/* ---- Madam ---- */

/* (float)(1 - beta2^t) as lns_madam_update: beta2^t by binary powering in double; the
 * squares beta2^(2^i) are the same double products computed here, at compile time. */
static LLVMValueRef madam_bc(CgCtx *c, float beta2, LLVMValueRef t)
{
	double b = (double)beta2;
	LLVMValueRef r = LLVMConstReal(c->t_f64, 1.0);
	t = LLVMBuildIntCast2(c->b, t, c->t_i32, 0, "");
	for (int i = 0; i < 32; i++) {
		LLVMValueRef bit =
		    icmp(c, LLVMIntNE, and_(c, t, cg_i32(c, (int64_t)1 << i)), cg_i32(c, 0));
		r = sel(c, bit, fmul(c, r, LLVMConstReal(c->t_f64, b)), r);
		b *= b;
	}
	LLVMValueRef d = fsub(c, LLVMConstReal(c->t_f64, 1.0), r);
	return LLVMBuildFPTrunc(c->b, d, c->t_f32, "bc");
}

/* rintf (half to even) without libm: (|x| + 2^23) - 2^23 rounds |x| < 2^23 exactly; larger
 * magnitudes, inf and NaN pass; the sign is put back (rintf(-0.3) = -0). */
static LLVMValueRef rint_f(CgCtx *c, LLVMValueRef x)
{
	unsigned n = lanes(x);
	LLVMValueRef xi = as_i(c, x), a = as_f(c, and_(c, xi, like(xi, 0x7FFFFFFF)));
	LLVMValueRef big = vf(c, n, 0x1p23f);
	LLVMValueRef r = fsub(c, fadd(c, a, big), big);
	r = sel(c, fcmp(c, LLVMRealOLT, a, big), r, a);
	return as_f(c, or_(c, as_i(c, r), and_(c, xi, like(xi, (int64_t)0x80000000u))));
}

/* lns.c's round_step: d capped to +-2^16, floor(d) + (u < d - floor(d)), u from rnd. */
static LLVMValueRef round_step(CgCtx *c, LLVMValueRef d, LLVMValueRef rnd)
{
	unsigned n = lanes(d);
	LLVMValueRef cap = vf(c, n, 65536.0f), ncap = vf(c, n, -65536.0f);
	d = sel(c, fcmp(c, LLVMRealOGT, d, cap), cap, d);
	d = sel(c, fcmp(c, LLVMRealOLT, d, ncap), ncap, d);
	LLVMValueRef r = rint_f(c, d);
	LLVMValueRef fl = sel(c, fcmp(c, LLVMRealOGT, r, d), fsub(c, r, vf(c, n, 1.0f)), r);
	LLVMValueRef u = fmul(c, LLVMBuildSIToFP(c->b, lshr(c, rnd, 8), vty(c->t_f32, n), ""),
	                      vf(c, n, 0x1p-24f));
	LLVMValueRef up = zext32(c, fcmp(c, LLVMRealOLT, u, fsub(c, d, fl)));
	/* freeze: a NaN gradient must not turn the code into poison */
	LLVMValueRef fi =
	    LLVMBuildFreeze(c->b, LLVMBuildFPToSI(c->b, fl, vty(c->t_i32, n), ""), "");
	return add(c, fi, up);
}

/* gn of lns_madam_update from the gradient and the updated moment: vh = v / bc,
 * gw / sqrt(vh) (0 unless vh > 0), rounded half to even, clamped to +-g_bound. */
static LLVMValueRef madam_gn(CgCtx *c, const IrAttrOpt *o, LLVMValueRef bc, LLVMValueRef gw,
                             LLVMValueRef v)
{
	unsigned n = lanes(gw);
	LLVMValueRef vh = fdiv(c, v, bc), z = vf(c, n, 0.0f);
	LLVMValueRef s = cg_intrinsic(c, "llvm.sqrt", LLVMTypeOf(vh), &vh, 1);
	LLVMValueRef gn = sel(c, fcmp(c, LLVMRealOGT, vh, z), fdiv(c, gw, s), z);
	gn = rint_f(c, gn);
	LLVMValueRef hi = vf(c, n, o->g_bound), lo = vf(c, n, -o->g_bound);
	return sel(c, fcmp(c, LLVMRealOGT, gn, hi), hi,
	           sel(c, fcmp(c, LLVMRealOLT, gn, lo), lo, gn));
}

LLVMValueRef cg_lns_madam(CgCtx *c, LnsFormat fw, const IrAttrOpt *o, LLVMValueRef lr,
                          LLVMValueRef t, LLVMValueRef w, LLVMValueRef gw, LLVMValueRef *v,
                          LLVMValueRef key, LLVMValueRef idx)
{
	unsigned n = lanes(w);
	int sb = fw.bits - 1, M = lns_max_code(fw);
	float omb = 1.0f - o->beta2;
	LLVMValueRef bc = cg_splat(c, madam_bc(c, o->beta2, t), (int)n);
	LLVMValueRef vn =
	    fadd(c, fmul(c, vf(c, n, o->beta2), *v), fmul(c, vf(c, n, omb), fmul(c, gw, gw)));
	*v = vn;
	LLVMValueRef gn = madam_gn(c, o, bc, gw, vn);
	LLVMValueRef lrg = LLVMBuildFMul(c->b, lr, cg_f32(c, (float)lns_gamma(fw)), "lrg");
	LLVMValueRef d = fmul(c, cg_splat(c, lrg, (int)n), gn);
	LLVMValueRef m = and_(c, w, like(w, M)), s = and_(c, w, like(w, 1 << sb));
	d = sel(c, icmp(c, LLVMIntNE, s, like(s, 0)), LLVMBuildFNeg(c->b, d, ""), d);
	LLVMValueRef step = round_step(c, d, cg_lns_rng_bits(c, key, idx));
	LLVMValueRef mn = smin(c, smax(c, sub(c, m, step), like(m, 1)), like(m, M));
	return sel(c, icmp(c, LLVMIntEQ, m, like(m, 0)), w, or_(c, s, mn));
}

/* ---- forward view ---- */

/* lns_view_word in i64 lanes (as lns.c: m + k_w shifted by up to 12 bits leaves int32). */
LLVMValueRef cg_lns_view(CgCtx *c, LnsFormat fu, LLVMValueRef kw, LnsFormat fv, LLVMValueRef kv,
                         LLVMValueRef w)
{
	unsigned n = lanes(w);
	LLVMTypeRef t64 = vty(c->t_i64, n);
	int su = fu.bits - 1, sv = fv.bits - 1, lu = fu.log2g, lv = fv.log2g;
	LLVMValueRef m = and_(c, w, like(w, lns_max_code(fu)));
	LLVMValueRef kw64 = cg_splat(c, to_int(c, kw, c->t_i64), (int)n);
	LLVMValueRef E = add(c, LLVMBuildZExt(c->b, m, t64, ""), kw64);
	if (lv >= lu)
		E = shl(c, E, lv - lu);
	else
		E = ashr(c, add(c, E, like(E, (int64_t)1 << (lu - lv - 1))), lu - lv);
	E = sub(c, E, cg_splat(c, to_int(c, kv, c->t_i64), (int)n));
	E = smin(c, smax(c, E, like(E, 1)), like(E, lns_max_code(fv)));
	LLVMValueRef mv = LLVMBuildTrunc(c->b, E, vty(c->t_i32, n), "");
	LLVMValueRef s = shl(c, lshr(c, and_(c, w, like(w, 1 << su)), su), sv);
	return sel(c, icmp(c, LLVMIntEQ, m, like(m, 0)), like(m, 0), or_(c, s, mv));
}
