/* cg_gemm.c: the GEMM kernels (Gemm, MatMul): operands packed into panels and decoded from LNS
 * while packing, FMA microkernels on register tiles, fused epilogues (alpha, beta C, Relu, LNS
 * encode, the Madam update).
 *
 * Everything is specialised at compile time: shapes, transposes, formats, alpha and beta. A GEMM
 * runs as two or three parallel phases, each a task function run by cg_parallel_for. (1) Pack: A
 * goes into MR-row panels and B into NR-column panels, k-major (per k, MR resp. NR consecutive
 * floats), zero-padded to whole panels, in the GEMM workspace; LNS operands are decoded on the
 * way: a 2^B-entry table per task from the operand's scale offset when it fits in registers
 * (one permute per vector: lns5g2), else the arithmetic cg_lns_decode (T[r] by a permute plus
 * an exponent add; faster than a gather from a 256-entry table for lns8g8). A panel whose source is contiguous along
 * the panel is copied one k at a time; one contiguous along k is transposed in registers, vw x vw
 * blocks at a time. Inputs are read in this phase only, so an output may share their storage
 * (a fused Relu's output may: the plan places it after the GEMM). (2) Compute: a task owns a
 * block of MR x NR tiles of one output matrix; a tile is one microkernel call over the whole K
 * (MR x NR/vw vector accumulators; per k one broadcast of A per row and NR/vw loads of B).
 * There is no K blocking: the panels stream from L2 at about 10 bytes per FMA cycle, well
 * within its bandwidth, and a tile is final when its loop ends. A task walks its tiles row panel
 * by row panel: the A panel stays in L1 while the block's B panels (at most B_BLOCK bytes, kept
 * in L2) pass by, the tiles land in a row buffer, and the epilogue then runs over the buffer row
 * by row, so the output (and a fused update's weight and moment) is written as sequential
 * streams and the long epilogue code exists once per loop, not once per accumulator. (3) Only when an LNS output needs its amax before its scale
 * offset is known (current scaling; delayed scaling with an empty history): compute stores the
 * f32 results in a temporary and a second pass encodes them (cg_encode_f32), or applies the
 * fused Madam update, once the step has the amax.
 *
 * Determinism: every output element is one FMA chain over k = 0..K-1 from zero, computed by one
 * task, so results depend on neither the thread count, nor the vector width, nor the tile shape.
 * Each task leaves {max |x| bits, saturated, underflowed} in its slot; the step reduces them in
 * task order. A non-finite result (before a fused Relu) shows as max |x| bits >= 0x7f800000.
 *
 * Tiles (NR = 2 vw): AVX-512 8 x 32 (16 zmm accumulators and 2 for B of 32 registers, the
 * broadcast folded into the FMA as a memory operand; 10 loads per 16 FMAs, below Zen 4's two
 * loads per FMA cycle; 8 divides the batch of 64 of the MLP); AVX2 6 x 16 (12 + 2 + 1 of 16
 * ymm); NEON 8 x 8 (16 + 2 of 32 q registers); SSE 4 x 8.
 *
 * Fused epilogues (passes/fuse.c): a Relu writes the Relu's output in its format; a Madam update
 * quantises each dW vector to the gradient format (its delayed scale, stochastic rounding keyed
 * by dW's id and the element index as the interpreter's encode), decodes it and applies
 * cg_lns_madam to the weight codes and the second moment (a second loop over the row, on the
 * gradients the first left in the row buffer), so dW never reaches memory. Lanes whose dW is
 * not finite are left unchanged (the step then reports the error).
 *
 * Workspace: packed panels, the f32 temporary and the task slots live past the plan's scratch,
 * from the first 64-byte boundary after g->plan->scratch_bytes; cg_gemm_workspace gives the
 * bytes a node needs, which the scratch arena must provide.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"

enum {
	WS_ALIGN = 64,
	SLOT = 16,             /* per task: u32 max |x| bits, u32 saturated, u32 underflowed */
	TASK_FMAS = 1 << 17,   /* least work (FMAs) worth a compute task */
	MIN_TASKS = 32,        /* compute tasks to aim for, for load balance */
	PACK_ELEMS = 1 << 15,  /* elements per pack task */
	PASS_ELEMS = 1 << 14,  /* elements per second-pass task */
	B_BLOCK = 512 << 10,   /* bytes of packed B a compute task reuses across its A panels */
	ROW_BUF = 64 << 10,    /* bytes of a task's row buffer (MR rows of its columns) */
	BAD_BITS = 0x7f800000, /* max |x| bits at or above: a NaN or an infinity */
};

/* What the compute epilogue does with a finished vector. */
typedef enum { OUT_F32, OUT_TEMP, OUT_ENC, OUT_MADAM } OutKind;

/* One operand as the packer sees it: nmat matrices of mat elements, each outer x K (outer = M
 * for A, N for B) with element (o, k) at o*so + k*sk, or read through a gather view (a
 * convolution's operand, cg_conv.c) as vectors along o (vdir 0) or along k (1); packed into
 * panels of r. */
typedef struct Opnd {
	const IrValue *v;
	int lns;
	LnsFormat f;
	int64_t outer, so, sk, mat, nmat;
	const CgView *view;
	int vdir;
	int r;
	int64_t npan, group, ntask; /* panels per matrix, per pack task; pack tasks */
	size_t off;                 /* packed panels in the workspace */
} Opnd;

typedef struct Gemm {
	const IrNode *n;
	int64_t M, N, K, nb; /* nb output matrices (MatMul batches) */
	float alpha, beta;
	Opnd a, b;
	int32_t *bat;        /* nb > 1: A's and B's matrix index per output matrix (2 nb) */
	const IrValue *cv;   /* Gemm's C or Conv's bias, or NULL */
	int64_t csm, csn;    /* C's element strides along M and N (0 where broadcast) */
	int64_t cmod;        /* Conv's bias: output matrix ob reads C from (ob % cmod) * M on */
	CgConvGemm conv;     /* a convolution's GEMM (its operands' views) */
	int ccopy;           /* C is copied (decoded) into the workspace */
	const IrValue *y;    /* the value written: the output, or the fused Relu's */
	const IrValue *enc;  /* the LNS value encoded: y, the fused Madam's dW, or NULL */
	const IrNode *madam; /* the fused Madam node, or NULL */
	int relu;
	int mr, nv, nr, vw;
	int64_t pm, pn;      /* panels along M and N */
	int64_t bm, bn;      /* tiles per compute task along M and N */
	int64_t tm, tn;      /* task blocks along M and N per output matrix */
	int64_t ntask;       /* compute tasks */
	int64_t nptask;      /* second-pass tasks */
	int two_pass;        /* the temporary may be needed */
	size_t ws, slots_off, c_off, temp_off, bytes; /* ws: the workspace's scratch offset */
} Gemm;

/* ---- small IR helpers ---- */

static LLVMTypeRef vec(LLVMTypeRef t, int n)
{
	return LLVMVectorType(t, (unsigned)n);
}

static LLVMValueRef i64c(CgCtx *c, int64_t v)
{
	return cg_i64(c, v);
}

static LLVMValueRef add(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildAdd(c->b, a, b, "");
}

static LLVMValueRef mul(CgCtx *c, LLVMValueRef a, int64_t k)
{
	return k == 1 ? a : LLVMBuildMul(c->b, a, i64c(c, k), "");
}

static LLVMValueRef lt(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
	return LLVMBuildICmp(c->b, LLVMIntSLT, a, b, "");
}

static LLVMValueRef min_c(CgCtx *c, LLVMValueRef a, int64_t k)
{
	return LLVMBuildSelect(c->b, lt(c, a, i64c(c, k)), a, i64c(c, k), "");
}

/* Element i of an array of ty at base (i an i64 value). */
static LLVMValueRef elt(CgCtx *c, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef i)
{
	return LLVMBuildGEP2(c->b, ty, base, &i, 1, "");
}

static LLVMValueRef load(CgCtx *c, LLVMTypeRef ty, LLVMValueRef p, unsigned align)
{
	LLVMValueRef v = LLVMBuildLoad2(c->b, ty, p, "");
	LLVMSetAlignment(v, align);
	return v;
}

static void store(CgCtx *c, LLVMValueRef v, LLVMValueRef p, unsigned align)
{
	LLVMSetAlignment(LLVMBuildStore(c->b, v, p), align);
}

/* Lanes l with j0 + l < hi (j0 an i64 value) as <n x i1>. */
static LLVMValueRef lanes_below(CgCtx *c, LLVMValueRef j0, int64_t hi, int n)
{
	LLVMValueRef rem = LLVMBuildTrunc(c->b, LLVMBuildSub(c->b, i64c(c, hi), j0, ""), c->t_i32, "");
	return LLVMBuildICmp(c->b, LLVMIntSLT, cg_iota(c, n), cg_splat(c, rem, n), "");
}

static LLVMValueRef mask_and(CgCtx *c, LLVMValueRef a, LLVMValueRef b)
{
	return !a ? b : !b ? a : LLVMBuildAnd(c->b, a, b, "");
}

/* if (cond) ... else ...: branch_begin leaves the builder in the then block, branch_else in
 * the else block, branch_end after both. */
typedef struct Branch {
	LLVMBasicBlockRef then, other, join;
} Branch;

static void branch_begin(CgCtx *c, Branch *br, LLVMValueRef cond)
{
	br->then = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "then");
	br->other = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "else");
	br->join = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "join");
	LLVMBuildCondBr(c->b, cond, br->then, br->other);
	LLVMPositionBuilderAtEnd(c->b, br->then);
}

static void branch_else(CgCtx *c, Branch *br)
{
	LLVMBuildBr(c->b, br->join);
	LLVMPositionBuilderAtEnd(c->b, br->other);
}

static void branch_end(CgCtx *c, Branch *br)
{
	LLVMBuildBr(c->b, br->join);
	LLVMPositionBuilderAtEnd(c->b, br->join);
}

static int64_t cdiv(int64_t a, int64_t b)
{
	return (a + b - 1) / b;
}

static size_t align_ws(size_t n)
{
	return (n + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* ---- task functions ---- */

/* An uninitialised alloca in the entry block of the current function (64-byte aligned). */
static LLVMValueRef entry_alloca(CgCtx *c, LLVMTypeRef ty)
{
	LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(c->fn);
	LLVMBuilderRef b = LLVMCreateBuilderInContext(c->llctx);
	LLVMValueRef first = LLVMGetFirstInstruction(entry);
	if (first)
		LLVMPositionBuilderBefore(b, first);
	else
		LLVMPositionBuilderAtEnd(b, entry);
	LLVMValueRef a = LLVMBuildAlloca(b, ty, "rows");
	LLVMSetAlignment(a, 64);
	LLVMDisposeBuilder(b);
	return a;
}

/* Starts the task function `gemm<id>.<what>`, void(LnsrtStepArgs *a, i64 t), and returns t;
 * NULL when the module has it already (the train and eval steps share kernels): *fn is it. */
static LLVMValueRef task_begin(CgCtx *c, CgFnSave *s, const Gemm *G, const char *what,
			       LLVMValueRef *fn)
{
	char name[96];
	snprintf(name, sizeof name, "gemm%d.%s", G->n->id, what);
	*fn = LLVMGetNamedFunction(c->mod, name);
	if (*fn)
		return NULL;
	cg_fn_save(c, s);
	LLVMTypeRef p[2] = {c->t_ptr, c->t_i64};
	*fn = cg_fn_begin(c, name, LLVMFunctionType(c->t_void, p, 2, 0));
	LLVMSetLinkage(*fn, LLVMInternalLinkage);
	return LLVMGetParam(*fn, 1);
}

static void task_end(CgCtx *c, const CgFnSave *s)
{
	LLVMBuildRetVoid(c->b);
	cg_fn_restore(c, s);
}

static LLVMValueRef ws_ptr(CgCtx *c, const Gemm *G, size_t off)
{
	return cg_gep_c(c, c->scratch, (int64_t)(G->ws + off));
}

static void run(CgCtx *c, LLVMValueRef task, int64_t n)
{
	if (n > 0)
		cg_parallel_for(c, task, i64c(c, n));
}

/* ---- packing, with LNS decoding ---- */

static LLVMTypeRef elem_type(CgCtx *c, const Opnd *o)
{
	return !o->lns ? c->t_f32 : lns_container_bytes(o->f) == 1 ? c->t_i8 : c->t_i16;
}

static unsigned elem_bytes(const Opnd *o)
{
	return o->lns ? (unsigned)lns_container_bytes(o->f) : 4u;
}

/* Lanes lo..lo+n of v (lanes past v's width are zero). */
static LLVMValueRef lanes_of(CgCtx *c, LLVMValueRef v, int lo, int n)
{
	int w = (int)LLVMGetVectorSize(LLVMTypeOf(v));
	if (lo == 0 && n == w)
		return v;
	LLVMValueRef m[64];
	for (int i = 0; i < n; i++)
		m[i] = cg_i32(c, lo + i < w ? lo + i : w);
	return LLVMBuildShuffleVector(c->b, v, LLVMConstNull(LLVMTypeOf(v)),
				      LLVMConstVector(m, (unsigned)n), "");
}

/* Concatenation of n vectors of w lanes each. */
static LLVMValueRef concat(CgCtx *c, LLVMValueRef *v, int n, int w)
{
	for (; n > 1; n = (n + 1) / 2, w *= 2) {
		for (int i = 0; i < n / 2; i++) {
			LLVMValueRef m[64];
			for (int l = 0; l < 2 * w; l++)
				m[l] = cg_i32(c, l);
			v[i] = LLVMBuildShuffleVector(c->b, v[2 * i], v[2 * i + 1],
						      LLVMConstVector(m, (unsigned)(2 * w)), "");
		}
		if (n & 1)
			v[n / 2] = lanes_of(c, v[n - 1], 0, 2 * w);
	}
	return v[0];
}

/* The f32 values of x: the container words (<n x iB>) of an LNS operand, decoded in pieces of
 * vw lanes (the look-up's register permutes work on whole vectors), or f32 as they are. */
static LLVMValueRef decode(CgCtx *c, const Opnd *o, LLVMValueRef tab, LLVMValueRef k,
			   LLVMValueRef x)
{
	if (!o->lns)
		return x;
	int n = (int)LLVMGetVectorSize(LLVMTypeOf(x)), w = c->vw, np = (n + w - 1) / w;
	LLVMValueRef part[16];
	for (int i = 0; i < np; i++) {
		LLVMValueRef words = LLVMBuildZExt(c->b, lanes_of(c, x, i * w, w), c->t_vi32, "");
		part[i] = tab ? cg_lns_decode_lut(c, o->f, tab, words)
			      : cg_lns_decode(c, o->f, k, words);
	}
	return lanes_of(c, concat(c, part, np, w), 0, n);
}

/* A panel contiguous along the outer dimension: one vector of r elements per k. */
static void pack_rows(CgCtx *c, const Gemm *G, const Opnd *o, LLVMValueRef src,
		      LLVMValueRef dst, LLVMValueRef row0, LLVMValueRef tab, LLVMValueRef k,
		      int edge)
{
	LLVMTypeRef et = elem_type(c, o);
	LLVMValueRef mask = edge ? lanes_below(c, row0, o->outer, o->r) : NULL;
	LLVMValueRef s0 = elt(c, et, src, row0);
	CgLoop L;
	LLVMValueRef kk = cg_loop_begin(c, &L, i64c(c, 0), i64c(c, G->K), 1, "pk");
	LLVMValueRef x = cg_vload(c, vec(et, o->r), elt(c, et, s0, mul(c, kk, o->sk)), mask,
			       elem_bytes(o));
	store(c, decode(c, o, tab, k, x), elt(c, c->t_f32, dst, mul(c, kk, o->r)), 4);
	cg_loop_end(c, &L);
}

/* In-register transpose of T vectors of T lanes (T a power of two): x[i][l] becomes x[l][i].
 * Stage b swaps bit b between the row and the lane index. */
static void transpose(CgCtx *c, LLVMValueRef *x, int T)
{
	for (int b = 1; b < T; b <<= 1) {
		LLVMValueRef mlo[64], mhi[64];
		for (int l = 0; l < T; l++) {
			mlo[l] = cg_i32(c, (l & b) ? T + l - b : l);
			mhi[l] = cg_i32(c, (l & b) ? T + l : l + b);
		}
		LLVMValueRef klo = LLVMConstVector(mlo, (unsigned)T);
		LLVMValueRef khi = LLVMConstVector(mhi, (unsigned)T);
		for (int i = 0; i < T; i++) {
			if (i & b)
				continue;
			LLVMValueRef lo = x[i], hi = x[i + b];
			x[i] = LLVMBuildShuffleVector(c->b, lo, hi, klo, "");
			x[i + b] = LLVMBuildShuffleVector(c->b, lo, hi, khi, "");
		}
	}
}

/* Block x (T rows of T decoded k's, panel rows sb..sb+nrow) transposed in registers and stored
 * as the panel's columns k0..k0+nk. */
static void store_tblock(CgCtx *c, const Opnd *o, LLVMValueRef dst, LLVMValueRef *x,
			 LLVMValueRef k0, int nk, int sb, int nrow, int T)
{
	transpose(c, x, T);
	for (int j = 0; j < nk; j++) {
		LLVMValueRef at = add(c, mul(c, add(c, k0, i64c(c, j)), o->r), i64c(c, sb));
		store(c, lanes_of(c, x[j], 0, nrow), elt(c, c->t_f32, dst, at), 4);
	}
}

/* One T x T block of a panel contiguous along k: panel rows sb..sb+nrow, k = k0..k0+nk. */
static void pack_tblock(CgCtx *c, const Opnd *o, LLVMValueRef src, LLVMValueRef dst,
			LLVMValueRef row0, LLVMValueRef k0, int sb, int nrow, int nk, int T,
			LLVMValueRef tab, LLVMValueRef k, int edge)
{
	LLVMTypeRef et = elem_type(c, o);
	LLVMValueRef x[64], kmask = nk < T ? lanes_below(c, i64c(c, 0), nk, T) : NULL;
	for (int i = 0; i < T; i++) {
		if (i >= nrow) {
			x[i] = LLVMConstNull(vec(c->t_f32, T));
			continue;
		}
		LLVMValueRef row = add(c, row0, i64c(c, sb + i)), m = kmask;
		if (edge)
			m = mask_and(c, cg_splat(c, lt(c, row, i64c(c, o->outer)), T), kmask);
		LLVMValueRef p = elt(c, et, src, add(c, mul(c, row, o->so), k0));
		x[i] = decode(c, o, tab, k, cg_vload(c, vec(et, T), p, m, elem_bytes(o)));
	}
	store_tblock(c, o, dst, x, k0, nk, sb, nrow, T);
}

/* The power of two up to vw that covers a panel of r best: the side of pack_cols' blocks. */
static int block_side(const Gemm *G, const Opnd *o)
{
	int T = 1;
	while (T < o->r && T < G->vw)
		T <<= 1;
	return T;
}

/* A panel contiguous along k: T x T blocks transposed in registers, T the power of two up to
 * vw that covers the panel best. */
static void pack_cols(CgCtx *c, const Gemm *G, const Opnd *o, LLVMValueRef src,
		      LLVMValueRef dst, LLVMValueRef row0, LLVMValueRef tab, LLVMValueRef k,
		      int edge)
{
	int T = block_side(G, o);
	int64_t kfull = G->K / T * T;
	for (int sb = 0; sb < o->r; sb += T) {
		int nrow = o->r - sb < T ? o->r - sb : T;
		if (kfull > 0) {
			CgLoop L;
			LLVMValueRef k0 = cg_loop_begin(c, &L, i64c(c, 0), i64c(c, kfull), T, "pt");
			pack_tblock(c, o, src, dst, row0, k0, sb, nrow, T, T, tab, k, edge);
			cg_loop_end(c, &L);
		}
		if (G->K > kfull)
			pack_tblock(c, o, src, dst, row0, i64c(c, kfull), sb, nrow,
				    (int)(G->K - kfull), T, tab, k, edge);
	}
}

/* A view's panel along o: per k, the panel's r elements in pieces of up to vw lanes, each a
 * few masked loads (runs) or a gather (cg_conv.c). */
static void pack_rows_view(CgCtx *c, const Gemm *G, const Opnd *o, LLVMValueRef src,
			   LLVMValueRef dst, LLVMValueRef row0, LLVMValueRef tab, LLVMValueRef k,
			   int edge)
{
	CgViewLanes L[8];
	int np = 0;
	for (int l0 = 0; l0 < o->r; l0 += G->vw)
		cg_view_lanes(c, o->view, 0, add(c, row0, i64c(c, l0)), (int)min64(G->vw, o->r - l0),
			      edge ? o->outer : -1, &L[np++]);
	CgLoop Lk;
	LLVMValueRef kk = cg_loop_begin(c, &Lk, i64c(c, 0), i64c(c, G->K), 1, "pv");
	for (int i = 0; i < np; i++) {
		LLVMValueRef x = cg_view_load(c, &L[i], elem_type(c, o), src, kk, NULL);
		LLVMValueRef at = add(c, mul(c, kk, o->r), i64c(c, i * G->vw));
		store(c, decode(c, o, tab, k, x), elt(c, c->t_f32, dst, at), 4);
	}
	cg_loop_end(c, &Lk);
}

/* One T x T block of a view's panel along k: k = k0..k0+nk, each panel row a vector of T k's
 * (lanes from extent on read zero), transposed in registers as in pack_tblock. */
static void pack_vblock(CgCtx *c, const Opnd *o, LLVMValueRef src,
			LLVMValueRef dst, LLVMValueRef row0, LLVMValueRef k0, int nk, int T,
			LLVMValueRef tab, LLVMValueRef k, int edge, int64_t extent)
{
	CgViewLanes L;
	cg_view_lanes(c, o->view, 1, k0, T, extent, &L);
	for (int sb = 0; sb < o->r; sb += T) {
		int nrow = o->r - sb < T ? o->r - sb : T;
		LLVMValueRef x[64];
		for (int i = 0; i < T; i++) {
			if (i >= nrow) {
				x[i] = LLVMConstNull(vec(c->t_f32, T));
				continue;
			}
			LLVMValueRef row = add(c, row0, i64c(c, sb + i));
			LLVMValueRef ok = edge ? lt(c, row, i64c(c, o->outer)) : NULL;
			x[i] = decode(c, o, tab, k, cg_view_load(c, &L, elem_type(c, o), src, row, ok));
		}
		store_tblock(c, o, dst, x, k0, nk, sb, nrow, T);
	}
}

static void pack_cols_view(CgCtx *c, const Gemm *G, const Opnd *o, LLVMValueRef src,
			   LLVMValueRef dst, LLVMValueRef row0, LLVMValueRef tab, LLVMValueRef k,
			   int edge)
{
	int T = block_side(G, o);
	int64_t kfull = G->K / T * T;
	if (kfull > 0) {
		CgLoop L;
		LLVMValueRef k0 = cg_loop_begin(c, &L, i64c(c, 0), i64c(c, kfull), T, "pw");
		pack_vblock(c, o, src, dst, row0, k0, T, T, tab, k, edge, -1);
		cg_loop_end(c, &L);
	}
	if (G->K > kfull)
		pack_vblock(c, o, src, dst, row0, i64c(c, kfull), (int)(G->K - kfull), T, tab, k,
			    edge, G->K);
}

static void pack_one(CgCtx *c, const Gemm *G, const Opnd *o, LLVMValueRef src, LLVMValueRef dst,
		     LLVMValueRef row0, LLVMValueRef tab, LLVMValueRef k, int edge)
{
	if (o->view && o->vdir == 0)
		pack_rows_view(c, G, o, src, dst, row0, tab, k, edge);
	else if (o->view)
		pack_cols_view(c, G, o, src, dst, row0, tab, k, edge);
	else if (o->so == 1 && o->outer > 1)
		pack_rows(c, G, o, src, dst, row0, tab, k, edge);
	else
		pack_cols(c, G, o, src, dst, row0, tab, k, edge);
}

/* Packs panel p (i64) of one matrix: src points at the matrix, dst at its panels. Only the last
 * panel can stick out of the matrix: it alone takes the masked path. */
static void pack_panel(CgCtx *c, const Gemm *G, const Opnd *o, LLVMValueRef src,
		       LLVMValueRef dst, LLVMValueRef p, LLVMValueRef tab, LLVMValueRef k)
{
	LLVMValueRef row0 = mul(c, p, o->r);
	LLVMValueRef pd = elt(c, c->t_f32, dst, mul(c, p, G->K * o->r));
	if (o->outer % o->r == 0) {
		pack_one(c, G, o, src, pd, row0, tab, k, 0);
		return;
	}
	Branch br;
	branch_begin(c, &br, lt(c, p, i64c(c, o->npan - 1)));
	pack_one(c, G, o, src, pd, row0, tab, k, 0);
	branch_else(c, &br);
	pack_one(c, G, o, src, pd, row0, tab, k, 1);
	branch_end(c, &br);
}

/* Formats of up to this many words decode through a table (cg_lns_decode_lut) held in
 * registers: vpermi2d covers 64 entries with AVX-512, vpermd 16 with AVX2. Past that the
 * look-up is a gather, and the arithmetic decode (T[r] by a register permute, exponent add)
 * is faster: measured 30 % less time packing lns8g8 on Zen 4. */
static int lut_entries(const CgCtx *c)
{
	return !c->is_x86 ? 0 : c->vw >= 16 ? 64 : c->vw == 8 ? 16 : 0;
}

/* Pack task t of operand o: a group of panels of one matrix. */
static void pack_group(CgCtx *c, const Gemm *G, const Opnd *o, LLVMValueRef t)
{
	int64_t gpm = cdiv(o->npan, o->group);
	LLVMValueRef m = LLVMBuildSDiv(c->b, t, i64c(c, gpm), "");
	LLVMValueRef p0 = mul(c, LLVMBuildSRem(c->b, t, i64c(c, gpm), ""), o->group);
	LLVMValueRef p1 = min_c(c, add(c, p0, i64c(c, o->group)), o->npan);
	LLVMValueRef src = elt(c, elem_type(c, o), cg_value_ptr(c, o->v), mul(c, m, o->mat));
	LLVMValueRef dst = elt(c, c->t_f32, ws_ptr(c, G, o->off), mul(c, m, o->npan * G->K * o->r));
	LLVMValueRef k = o->lns ? cg_value_k(c, o->v) : NULL, tab = NULL;
	if (o->lns && (1 << o->f.bits) <= lut_entries(c))
		tab = cg_lns_decode_table(c, o->f, k, NULL);
	CgLoop L;
	LLVMValueRef p = cg_loop_begin(c, &L, p0, p1, 1, "pp");
	pack_panel(c, G, o, src, dst, p, tab, k);
	cg_loop_end(c, &L);
}

/* C into the workspace as f32 (decoded if LNS): the epilogue then never reads storage that the
 * output may share. */
static void copy_c(CgCtx *c, const Gemm *G)
{
	const IrValue *v = G->cv;
	int64_t n = v->type->numel;
	Opnd o = {.v = v, .lns = v->type->dt == IR_DT_LNS, .f = v->type->fmt};
	LLVMTypeRef et = elem_type(c, &o);
	LLVMValueRef src = cg_value_ptr(c, v), dst = ws_ptr(c, G, G->c_off);
	LLVMValueRef k = o.lns ? cg_value_k(c, v) : NULL;
	CgLoop L;
	LLVMValueRef i = cg_loop_begin(c, &L, i64c(c, 0), i64c(c, n), G->vw, "cc");
	LLVMValueRef m = lanes_below(c, i, n, G->vw);
	LLVMValueRef x = cg_vload(c, vec(et, G->vw), elt(c, et, src, i), m, elem_bytes(&o));
	cg_vstore(c, decode(c, &o, NULL, k, x), elt(c, c->t_f32, dst, i), m, 4);
	cg_loop_end(c, &L);
}

/* Tasks [0, A tasks) pack A, the next B, the last copies C when it must be. */
static LLVMValueRef emit_pack_task(CgCtx *c, const Gemm *G)
{
	CgFnSave s;
	LLVMValueRef fn, t = task_begin(c, &s, G, "pack", &fn);
	if (!t)
		return fn;
	Branch b1, b2;
	branch_begin(c, &b1, lt(c, t, i64c(c, G->a.ntask)));
	pack_group(c, G, &G->a, t);
	branch_else(c, &b1);
	LLVMValueRef tb = LLVMBuildSub(c->b, t, i64c(c, G->a.ntask), "");
	branch_begin(c, &b2, lt(c, tb, i64c(c, G->b.ntask)));
	pack_group(c, G, &G->b, tb);
	branch_else(c, &b2);
	if (G->ccopy)
		copy_c(c, G);
	branch_end(c, &b2);
	branch_end(c, &b1);
	task_end(c, &s);
	return fn;
}

/* ---- the microkernel ---- */

/* acc[r nv + v] = sum over k of A[k][r] * B[k][v vw ..] for the packed panels pa (K x MR) and
 * pb (K x NR): one FMA chain per element, k ascending from a zero accumulator. */
static void microkernel(CgCtx *c, const Gemm *G, LLVMValueRef pa, LLVMValueRef pb,
			LLVMValueRef *acc)
{
	int na = G->mr * G->nv;
	LLVMValueRef zero = LLVMConstNull(c->t_vf32);
	for (int i = 0; i < na; i++)
		acc[i] = zero;
	if (G->K == 0)
		return;
	LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
	LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "mk");
	LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->llctx, c->fn, "mk.done");
	LLVMBuildBr(c->b, body);
	LLVMPositionBuilderAtEnd(c->b, body);
	LLVMValueRef kk = LLVMBuildPhi(c->b, c->t_i64, "k");
	LLVMValueRef qa = LLVMBuildPhi(c->b, c->t_ptr, "qa"), qb = LLVMBuildPhi(c->b, c->t_ptr, "qb");
	LLVMValueRef phi[64], nxt[64], bv[8];
	for (int i = 0; i < na; i++)
		phi[i] = LLVMBuildPhi(c->b, c->t_vf32, "acc");
	for (int v = 0; v < G->nv; v++)
		bv[v] = load(c, c->t_vf32, elt(c, c->t_f32, qb, i64c(c, v * G->vw)), 4);
	for (int r = 0; r < G->mr; r++) {
		LLVMValueRef a = load(c, c->t_f32, elt(c, c->t_f32, qa, i64c(c, r)), 4);
		a = cg_splat(c, a, G->vw);
		for (int v = 0; v < G->nv; v++) {
			LLVMValueRef args[3] = {a, bv[v], phi[r * G->nv + v]};
			nxt[r * G->nv + v] = cg_intrinsic(c, "llvm.fma", c->t_vf32, args, 3);
		}
	}
	LLVMValueRef k1 = add(c, kk, i64c(c, 1));
	LLVMValueRef qa1 = elt(c, c->t_f32, qa, i64c(c, G->mr));
	LLVMValueRef qb1 = elt(c, c->t_f32, qb, i64c(c, G->nr));
	LLVMBuildCondBr(c->b, lt(c, k1, i64c(c, G->K)), body, done);
	LLVMValueRef z = i64c(c, 0);
	LLVMAddIncoming(kk, &z, &pre, 1);
	LLVMAddIncoming(kk, &k1, &body, 1);
	LLVMAddIncoming(qa, &pa, &pre, 1);
	LLVMAddIncoming(qa, &qa1, &body, 1);
	LLVMAddIncoming(qb, &pb, &pre, 1);
	LLVMAddIncoming(qb, &qb1, &body, 1);
	for (int i = 0; i < na; i++) {
		LLVMAddIncoming(phi[i], &zero, &pre, 1);
		LLVMAddIncoming(phi[i], &nxt[i], &body, 1);
		acc[i] = nxt[i];
	}
	LLVMPositionBuilderAtEnd(c->b, done);
}

/* ---- epilogues ---- */

/* What a compute or second-pass task keeps at hand. */
typedef struct Task {
	OutKind kind;
	LLVMValueRef y, cbase, temp;        /* output storage, C, the f32 temporary */
	LLVMValueRef k, key;                /* encode: scale offset, RNG key of enc */
	LLVMValueRef w, v, keyw, lr, step;  /* Madam: weight codes, second moment */
	LLVMValueRef amax, nsat, nunf;      /* allocas: <vw x i32> max |x| bits, i32 counts */
	LLVMValueRef rows;                  /* alloca: MR rows of the task's bn NR columns */
} Task;

static LLVMValueRef is_finite(CgCtx *c, LLVMValueRef y)
{
	LLVMTypeRef t = LLVMTypeOf(y);
	LLVMValueRef ay = cg_intrinsic(c, "llvm.fabs", t, &y, 1);
	return LLVMBuildFCmp(c->b, LLVMRealOLT, ay, cg_vf32(c, INFINITY, cg_lanes(y)), "");
}

/* amax = max(amax, |y| bits), lanes off the mask excluded; bad lanes count as infinite. */
static void track_amax(CgCtx *c, const Task *T, LLVMValueRef y, LLVMValueRef mask,
		       LLVMValueRef bad)
{
	int n = cg_lanes(y);
	LLVMValueRef acc = load(c, vec(c->t_i32, n), T->amax, 4);
	LLVMValueRef upd = cg_lns_amax_update(c, acc, y);
	if (bad)
		upd = LLVMBuildSelect(c->b, bad, cg_vi32(c, BAD_BITS, n), upd, "");
	if (mask)
		upd = LLVMBuildSelect(c->b, mask, upd, acc, "");
	store(c, upd, T->amax, 4);
}

/* counter += number of set lanes of flags & mask. */
static void count(CgCtx *c, LLVMValueRef counter, LLVMValueRef flags, LLVMValueRef mask)
{
	if (!flags)
		return;
	LLVMValueRef n = cg_lns_flag_count(c, mask_and(c, flags, mask));
	store(c, add(c, load(c, c->t_i32, counter, 4), n), counter, 4);
}

/* Encodes y, elements lin.. of enc, with the task's k: the words (<vw x i32>). */
static LLVMValueRef encode(CgCtx *c, const Task *T, LnsFormat f, LLVMValueRef y,
			   LLVMValueRef idx, LLVMValueRef mask)
{
	LLVMValueRef rnd = NULL, sat = NULL, unf = NULL;
	if (f.round == LNS_ROUND_STOCHASTIC || f.underflow == LNS_UF_STOCHASTIC)
		rnd = cg_lns_rng_bits(c, T->key, idx);
	LLVMValueRef w = cg_lns_encode(c, f, T->k, y, rnd, &sat, &unf);
	count(c, T->nsat, sat, mask);
	count(c, T->nunf, unf, mask);
	return w;
}

static void encode_store(CgCtx *c, const Gemm *G, const Task *T, LLVMValueRef y,
			 LLVMValueRef lin, LLVMValueRef mask)
{
	LnsFormat f = G->enc->type->fmt;
	LLVMValueRef w = encode(c, T, f, y, cg_lns_lane_idx(c, lin, G->vw), mask);
	LLVMTypeRef wt = lns_container_bytes(f) == 1 ? c->t_i8 : c->t_i16;
	w = LLVMBuildTrunc(c->b, w, vec(wt, G->vw), "");
	cg_vstore(c, w, elt(c, wt, T->y, lin), mask, (unsigned)lns_container_bytes(f));
}

/* dW (y, elements lin..) quantised to its format and decoded: the gradient Madam sees (NaN in
 * lanes where y is not finite, so that the update leaves them alone). */
static LLVMValueRef madam_grad(CgCtx *c, const Gemm *G, const Task *T, LLVMValueRef y,
			       LLVMValueRef lin, LLVMValueRef mask)
{
	LnsFormat fg = G->enc->type->fmt;
	LLVMValueRef idx = cg_lns_lane_idx(c, lin, G->vw);
	LLVMValueRef gw = cg_lns_decode(c, fg, T->k, encode(c, T, fg, y, idx, mask));
	return LLVMBuildSelect(c->b, is_finite(c, y), gw, cg_vf32(c, NAN, G->vw), "");
}

/* The Madam update of the weight words and second moment at elements lin.. with gradient gw
 * (lanes with a NaN gradient are left unchanged). */
static void madam_apply(CgCtx *c, const Gemm *G, const Task *T, LLVMValueRef gw,
			LLVMValueRef lin, LLVMValueRef mask)
{
	LnsFormat fw = G->madam->in[0]->type->fmt;
	LLVMTypeRef wt = lns_container_bytes(fw) == 1 ? c->t_i8 : c->t_i16, vwt = vec(wt, G->vw);
	unsigned wb = (unsigned)lns_container_bytes(fw);
	LLVMValueRef pw = elt(c, wt, T->w, lin), pv = elt(c, c->t_f32, T->v, lin);
	LLVMValueRef w0 = LLVMBuildZExt(c->b, cg_vload(c, vwt, pw, mask, wb), c->t_vi32, "");
	LLVMValueRef v0 = cg_vload(c, c->t_vf32, pv, mask, 4), v1 = v0;
	LLVMValueRef w1 = cg_lns_madam(c, fw, &G->madam->attr.opt, T->lr, T->step, w0, gw, &v1,
				       T->keyw, cg_lns_lane_idx(c, lin, G->vw));
	LLVMValueRef ok = is_finite(c, gw);
	w1 = LLVMBuildSelect(c->b, ok, w1, w0, "");
	v1 = LLVMBuildSelect(c->b, ok, v1, v0, "");
	cg_vstore(c, LLVMBuildTrunc(c->b, w1, vwt, ""), pw, mask, wb);
	cg_vstore(c, v1, pv, mask, 4);
}

/* beta * C at row i, columns j.. of output matrix ob (i64 values; masked lanes are not read). */
static LLVMValueRef c_term(CgCtx *c, const Gemm *G, const Task *T, LLVMValueRef ob,
			   LLVMValueRef i, LLVMValueRef j, LLVMValueRef mask)
{
	LLVMValueRef off = mul(c, i, G->csm), cv;
	if (G->cmod > 1)
		off = add(c, off, mul(c, LLVMBuildSRem(c->b, ob, i64c(c, G->cmod), ""), G->M));
	if (G->csn) {
		cv = cg_vload(c, c->t_vf32, elt(c, c->t_f32, T->cbase, add(c, off, j)), mask, 4);
	} else {
		LLVMValueRef s = load(c, c->t_f32, elt(c, c->t_f32, T->cbase, off), 4);
		cv = cg_splat(c, s, G->vw);
	}
	if (G->beta != 1.0f)
		cv = LLVMBuildFMul(c->b, cv, cg_vf32(c, G->beta, G->vw), "");
	return cv;
}

/* One accumulator vector of output matrix ob at row i, columns j.. (i64 values); mask (NULL:
 * all) the columns inside the output. The interpreter's order: alpha * acc, + beta * C, Relu.
 * A fused Madam stores the decoded gradient at slot for a second loop (madam_apply). */
static void finish_acc(CgCtx *c, const Gemm *G, const Task *T, LLVMValueRef acc,
		       LLVMValueRef ob, LLVMValueRef i, LLVMValueRef j, LLVMValueRef mask,
		       LLVMValueRef slot)
{
	LLVMValueRef lin = add(c, mul(c, add(c, mul(c, ob, G->M), i), G->N), j), y = acc, bad = NULL;
	if (G->alpha != 1.0f)
		y = LLVMBuildFMul(c->b, y, cg_vf32(c, G->alpha, G->vw), "");
	if (G->cv)
		y = LLVMBuildFAdd(c->b, y, c_term(c, G, T, ob, i, j, mask), "");
	if (G->relu) {
		bad = LLVMBuildNot(c->b, is_finite(c, y), "");
		LLVMValueRef z = LLVMConstNull(c->t_vf32);
		y = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, y, z, ""), y, z, "");
	}
	track_amax(c, T, y, mask, bad);
	switch (T->kind) {
	case OUT_F32: cg_vstore(c, y, elt(c, c->t_f32, T->y, lin), mask, 4); break;
	case OUT_TEMP: cg_vstore(c, y, elt(c, c->t_f32, T->temp, lin), mask, 4); break;
	case OUT_ENC: encode_store(c, G, T, y, lin, mask); break;
	case OUT_MADAM: store(c, madam_grad(c, G, T, y, lin, mask), slot, 4); break;
	}
}

/* ---- compute and second-pass tasks ---- */

static void task_setup(CgCtx *c, const Gemm *G, Task *T, OutKind kind)
{
	memset(T, 0, sizeof *T);
	T->kind = kind;
	T->amax = cg_alloca_zero(c, c->t_vi32);
	T->nsat = cg_alloca_zero(c, c->t_i32);
	T->nunf = cg_alloca_zero(c, c->t_i32);
	T->rows = entry_alloca(c, LLVMArrayType2(c->t_f32, (uint64_t)(G->mr * G->bn * G->nr)));
	if (G->cv)
		T->cbase = G->ccopy ? ws_ptr(c, G, G->c_off) : cg_value_ptr(c, G->cv);
	if (kind == OUT_F32 || kind == OUT_ENC)
		T->y = cg_value_ptr(c, G->y);
	if (G->two_pass)
		T->temp = ws_ptr(c, G, G->temp_off);
	if (kind == OUT_ENC || kind == OUT_MADAM) {
		T->k = load(c, c->t_i32, ws_ptr(c, G, 0), 4);
		T->key = cg_lns_rng_key(c, G->enc);
	}
	if (kind == OUT_MADAM) {
		const IrNode *u = G->madam;
		T->w = cg_value_ptr(c, u->in[0]);
		T->v = cg_value_ptr(c, u->in[2]);
		T->keyw = cg_lns_rng_key(c, u->in[0]);
		T->step = cg_step(c);
		T->lr = cg_lr(c, u->attr.opt.lr, 1);
	}
}

/* The task's slot: max |x| bits, saturated and underflowed counts. */
static void task_slot(CgCtx *c, const Gemm *G, const Task *T, LLVMValueRef t)
{
	LLVMValueRef s = cg_gep(c, ws_ptr(c, G, G->slots_off), mul(c, t, SLOT));
	LLVMValueRef am = LLVMBuildBitCast(c->b, cg_lns_amax_reduce(c, load(c, c->t_vi32, T->amax, 4)),
					   c->t_i32, "");
	store(c, am, s, 4);
	store(c, load(c, c->t_i32, T->nsat, 4), cg_gep_c(c, s, 4), 4);
	store(c, load(c, c->t_i32, T->nunf, 4), cg_gep_c(c, s, 8), 4);
}

/* A's (which 0) or B's (1) matrix index for output matrix ob. */
static LLVMValueRef mat_index(CgCtx *c, const Gemm *G, LLVMValueRef ob, int which)
{
	if (G->nb == 1)
		return i64c(c, 0);
	char name[64];
	snprintf(name, sizeof name, "gemm%d.bat", G->n->id);
	LLVMValueRef gv = LLVMGetNamedGlobal(c->mod, name);
	LLVMTypeRef at = LLVMArrayType2(c->t_i32, (uint64_t)(2 * G->nb));
	if (!gv) {
		LLVMValueRef *k = malloc(sizeof(LLVMValueRef) * (size_t)(2 * G->nb));
		if (!k)
			abort();
		for (int64_t i = 0; i < 2 * G->nb; i++)
			k[i] = cg_i32(c, G->bat[i]);
		gv = LLVMAddGlobal(c->mod, at, name);
		LLVMSetInitializer(gv, LLVMConstArray2(c->t_i32, k, (uint64_t)(2 * G->nb)));
		LLVMSetGlobalConstant(gv, 1);
		LLVMSetLinkage(gv, LLVMPrivateLinkage);
		free(k);
	}
	LLVMValueRef p = elt(c, c->t_i32, gv, add(c, mul(c, ob, 2), i64c(c, which)));
	return LLVMBuildSExt(c->b, load(c, c->t_i32, p, 4), c->t_i64, "");
}

/* Panel p of matrix m of operand o, in the workspace. */
static LLVMValueRef panel_ptr(CgCtx *c, const Gemm *G, const Opnd *o, LLVMValueRef m,
			      LLVMValueRef p)
{
	LLVMValueRef idx = mul(c, add(c, mul(c, m, o->npan), p), G->K * o->r);
	return elt(c, c->t_f32, ws_ptr(c, G, o->off), idx);
}

/* One tile (panel pi of A, pj of B) of output matrix ob into the row buffer, whose rows hold
 * the columns from panel j0 on. */
static void tile(CgCtx *c, const Gemm *G, const Task *T, LLVMValueRef ob, LLVMValueRef pi,
		 LLVMValueRef pj, LLVMValueRef j0)
{
	LLVMValueRef acc[64];
	LLVMValueRef pa = panel_ptr(c, G, &G->a, mat_index(c, G, ob, 0), pi);
	LLVMValueRef pb = panel_ptr(c, G, &G->b, mat_index(c, G, ob, 1), pj);
	microkernel(c, G, pa, pb, acc);
	LLVMValueRef col = mul(c, LLVMBuildSub(c->b, pj, j0, ""), G->nr);
	for (int r = 0; r < G->mr; r++)
		for (int v = 0; v < G->nv; v++) {
			LLVMValueRef at = add(c, col, i64c(c, r * G->bn * G->nr + v * G->vw));
			store(c, acc[r * G->nv + v], elt(c, c->t_f32, T->rows, at), 4);
		}
}

/* A loop over one row of the row buffer: whole vectors, then the masked last one (when N is
 * not a multiple of vw). The body gets the buffer slot, the column and the mask. */
typedef void (*RowFn)(CgCtx *c, const Gemm *G, const Task *T, LLVMValueRef ob, LLVMValueRef i,
		      LLVMValueRef j, LLVMValueRef mask, LLVMValueRef slot);

static void row_loop(CgCtx *c, const Gemm *G, const Task *T, LLVMValueRef ob, LLVMValueRef i,
		     LLVMValueRef c0, LLVMValueRef cols, LLVMValueRef rb, RowFn fn)
{
	LLVMValueRef full = LLVMBuildAnd(c->b, cols, i64c(c, ~(int64_t)(G->vw - 1)), "");
	CgLoop L;
	LLVMValueRef jj = cg_loop_begin(c, &L, i64c(c, 0), full, G->vw, "ec");
	fn(c, G, T, ob, i, add(c, c0, jj), NULL, elt(c, c->t_f32, T->rows, add(c, rb, jj)));
	cg_loop_end(c, &L);
	if (G->N % G->vw) {
		Branch br;
		branch_begin(c, &br, lt(c, full, cols));
		LLVMValueRef j = add(c, c0, full);
		fn(c, G, T, ob, i, j, lanes_below(c, j, G->N, G->vw),
		   elt(c, c->t_f32, T->rows, add(c, rb, full)));
		branch_else(c, &br);
		branch_end(c, &br);
	}
}

static void row_finish(CgCtx *c, const Gemm *G, const Task *T, LLVMValueRef ob, LLVMValueRef i,
		       LLVMValueRef j, LLVMValueRef mask, LLVMValueRef slot)
{
	finish_acc(c, G, T, load(c, c->t_vf32, slot, 4), ob, i, j, mask, slot);
}

static void row_madam(CgCtx *c, const Gemm *G, const Task *T, LLVMValueRef ob, LLVMValueRef i,
		      LLVMValueRef j, LLVMValueRef mask, LLVMValueRef slot)
{
	LLVMValueRef lin = add(c, mul(c, add(c, mul(c, ob, G->M), i), G->N), j);
	madam_apply(c, G, T, load(c, c->t_vf32, slot, 4), lin, mask);
}

/* The epilogue of the row panel pi over panels j0..j1, row by row from the row buffer: the
 * output (and a fused update's weight and moment) is written as one sequential stream per row,
 * and the epilogue code (encode, Madam: a few hundred instructions) exists twice (whole
 * vectors, the masked last one) instead of once per accumulator. A fused Madam runs as a
 * second loop over the row, on the gradients the first left in the buffer: two short loop
 * bodies overlap better in the core than one long one. */
static void row_epilogue(CgCtx *c, const Gemm *G, const Task *T, LLVMValueRef ob,
			 LLVMValueRef pi, LLVMValueRef j0, LLVMValueRef j1)
{
	LLVMValueRef i0 = mul(c, pi, G->mr), c0 = mul(c, j0, G->nr);
	LLVMValueRef rows = min_c(c, LLVMBuildSub(c->b, i64c(c, G->M), i0, ""), G->mr);
	LLVMValueRef cols = LLVMBuildSub(c->b, min_c(c, mul(c, j1, G->nr), G->N), c0, "");
	CgLoop Lr;
	LLVMValueRef r = cg_loop_begin(c, &Lr, i64c(c, 0), rows, 1, "er");
	LLVMValueRef i = add(c, i0, r), rb = mul(c, r, G->bn * G->nr);
	row_loop(c, G, T, ob, i, c0, cols, rb, row_finish);
	if (T->kind == OUT_MADAM)
		row_loop(c, G, T, ob, i, c0, cols, rb, row_madam);
	cg_loop_end(c, &Lr);
}

/* Compute task t: output matrix ob, a block of bm x bn tiles, one row panel at a time: its A
 * panel stays in L1 while the block's B panels (in L2) pass by, then its epilogue. */
static LLVMValueRef emit_compute_task(CgCtx *c, const Gemm *G, OutKind kind)
{
	static const char *const names[] = {"f32", "temp", "enc", "madam"};
	CgFnSave s;
	LLVMValueRef fn, t = task_begin(c, &s, G, names[kind], &fn);
	if (!t)
		return fn;
	Task T;
	task_setup(c, G, &T, kind);
	int64_t per = G->tm * G->tn;
	LLVMValueRef ob = LLVMBuildSDiv(c->b, t, i64c(c, per), "");
	LLVMValueRef blk = LLVMBuildSRem(c->b, t, i64c(c, per), "");
	LLVMValueRef i0 = mul(c, LLVMBuildSDiv(c->b, blk, i64c(c, G->tn), ""), G->bm);
	LLVMValueRef j0 = mul(c, LLVMBuildSRem(c->b, blk, i64c(c, G->tn), ""), G->bn);
	LLVMValueRef i1 = min_c(c, add(c, i0, i64c(c, G->bm)), G->pm);
	LLVMValueRef j1 = min_c(c, add(c, j0, i64c(c, G->bn)), G->pn);
	CgLoop Lj, Li;
	LLVMValueRef pi = cg_loop_begin(c, &Li, i0, i1, 1, "ti");
	LLVMValueRef pj = cg_loop_begin(c, &Lj, j0, j1, 1, "tj");
	tile(c, G, &T, ob, pi, pj, j0);
	cg_loop_end(c, &Lj);
	row_epilogue(c, G, &T, ob, pi, j0, j1);
	cg_loop_end(c, &Li);
	task_slot(c, G, &T, t);
	task_end(c, &s);
	return fn;
}

/* Second pass of a fused Madam, task t: PASS_ELEMS elements of the temporary. */
static LLVMValueRef emit_madam_pass(CgCtx *c, const Gemm *G)
{
	CgFnSave s;
	LLVMValueRef fn, t = task_begin(c, &s, G, "madam2", &fn);
	if (!t)
		return fn;
	Task T;
	task_setup(c, G, &T, OUT_MADAM);
	int64_t total = G->nb * G->M * G->N;
	LLVMValueRef e0 = mul(c, t, PASS_ELEMS);
	LLVMValueRef e1 = min_c(c, add(c, e0, i64c(c, PASS_ELEMS)), total);
	CgLoop L;
	LLVMValueRef e = cg_loop_begin(c, &L, e0, e1, G->vw, "pe");
	LLVMValueRef mask = total % G->vw ? lanes_below(c, e, total, G->vw) : NULL;
	LLVMValueRef y = cg_vload(c, c->t_vf32, elt(c, c->t_f32, T.temp, e), mask, 4);
	madam_apply(c, G, &T, madam_grad(c, G, &T, y, e, mask), e, mask);
	cg_loop_end(c, &L);
	task_slot(c, G, &T, t);
	task_end(c, &s);
	return fn;
}

/* ---- shapes, blocking, workspace ---- */

static void tile_shape(const CgCtx *c, Gemm *G)
{
	G->vw = c->vw;
	G->nv = 2;
	G->mr = c->vw >= 16 ? 8 : c->vw == 8 ? 6 : c->is_aarch64 ? 8 : 4;
	G->nr = G->nv * G->vw;
}

static void opnd_init(Opnd *o, const IrValue *v, int64_t outer, int64_t so, int64_t sk,
		      int64_t mat, int r)
{
	*o = (Opnd){.v = v, .lns = v->type->dt == IR_DT_LNS, .f = v->type->fmt, .outer = outer,
		    .so = so, .sk = sk, .mat = mat, .nmat = mat ? v->type->numel / mat : 1, .r = r,
		    .npan = cdiv(outer, r)};
}

/* Gemm: op(A) [M, K], op(B) [K, N]; C unidirectionally broadcast to [M, N]. */
static void setup_gemm(const IrNode *n, Gemm *G)
{
	const IrAttrGemm *at = &n->attr.gemm;
	const IrType *ta = n->in[0]->type, *tb = n->in[1]->type;
	G->M = ta->dims[at->trans_a ? 1 : 0];
	G->K = ta->dims[at->trans_a ? 0 : 1];
	G->N = tb->dims[at->trans_b ? 0 : 1];
	G->nb = 1;
	G->alpha = at->alpha;
	G->beta = at->beta;
	if (at->trans_a)
		opnd_init(&G->a, n->in[0], G->M, 1, G->M, ta->numel, G->mr);
	else
		opnd_init(&G->a, n->in[0], G->M, G->K, 1, ta->numel, G->mr);
	if (at->trans_b)
		opnd_init(&G->b, n->in[1], G->N, G->K, 1, tb->numel, G->nr);
	else
		opnd_init(&G->b, n->in[1], G->N, 1, G->N, tb->numel, G->nr);
	if (n->nin > 2) {
		const IrType *t = n->in[2]->type;
		int64_t d0 = t->rank == 2 ? t->dims[0] : 1, d1 = t->rank ? t->dims[t->rank - 1] : 1;
		G->cv = n->in[2];
		G->csn = d1 == 1 ? 0 : 1;
		G->csm = d0 == 1 ? 0 : d1;
	}
}

/* The matrix index, in an operand with batch dims d (rank rd), of output matrix ob of batch
 * dims od (rank ro), under numpy broadcasting. */
static int32_t bcast_index(int64_t ob, int ro, const int64_t *od, int rd, const int64_t *d)
{
	int64_t idx = 0, stride = 1;
	for (int i = ro - 1; i >= 0; i--) {
		int64_t oi = ob % od[i];
		ob /= od[i];
		int di = i - (ro - rd);
		if (di < 0)
			continue;
		if (d[di] != 1)
			idx += oi * stride;
		stride *= d[di];
	}
	return (int32_t)idx;
}

/* MatMul: A [.., M, K] x B [.., K, N]; a 2-D B under a batched A is one tall GEMM. */
static void setup_matmul(const IrNode *n, Gemm *G)
{
	const IrType *ta = n->in[0]->type, *tb = n->in[1]->type, *to = n->out[0]->type;
	G->M = ta->dims[ta->rank - 2];
	G->K = ta->dims[ta->rank - 1];
	G->N = tb->dims[tb->rank - 1];
	G->alpha = G->beta = 1.0f;
	G->nb = G->M * G->N != 0 ? to->numel / (G->M * G->N) : 1;
	int64_t amat = G->M * G->K, bmat = G->K * G->N;
	int64_t na = amat ? ta->numel / amat : 1, nbm = bmat ? tb->numel / bmat : 1;
	if (nbm == 1 && na == G->nb && G->nb > 1) {
		G->M *= G->nb;
		G->nb = 1;
		amat = ta->numel;
	}
	opnd_init(&G->a, n->in[0], G->M, G->K, 1, amat, G->mr);
	opnd_init(&G->b, n->in[1], G->N, 1, G->N, bmat, G->nr);
	if (G->nb <= 1)
		return;
	G->bat = malloc(sizeof(int32_t) * (size_t)(2 * G->nb));
	if (!G->bat)
		abort();
	int ro = to->rank - 2;
	for (int64_t ob = 0; ob < G->nb; ob++) {
		G->bat[2 * ob] = bcast_index(ob, ro, to->dims, ta->rank - 2, ta->dims);
		G->bat[2 * ob + 1] = bcast_index(ob, ro, to->dims, tb->rank - 2, tb->dims);
	}
}

/* Compute tasks: column blocks of B panels that fit B_BLOCK bytes (L2), then enough row
 * blocks for MIN_TASKS tasks of at least TASK_FMAS FMAs. */
static void blocking(Gemm *G)
{
	G->pm = cdiv(G->M, G->mr);
	G->pn = cdiv(G->N, G->nr);
	G->bn = max64(1, min64(G->pn, B_BLOCK / max64(1, (int64_t)G->nr * G->K * 4)));
	G->bn = max64(1, min64(G->bn, ROW_BUF / ((int64_t)G->mr * G->nr * 4)));
	G->tn = cdiv(G->pn, G->bn);
	G->bn = cdiv(G->pn, G->tn);
	int64_t work = G->nb * G->M * G->N * max64(G->K, 1);
	int64_t want = max64(1, min64(MIN_TASKS, work / TASK_FMAS));
	int64_t tm = max64(1, min64(G->pm, cdiv(want, G->nb * G->tn)));
	G->bm = cdiv(G->pm, tm);
	G->tm = cdiv(G->pm, G->bm);
	G->ntask = G->nb * G->tm * G->tn;
}

static void pack_tasks(Opnd *o, int64_t K)
{
	o->group = max64(1, min64(o->npan, PACK_ELEMS / max64(1, (int64_t)o->r * K)));
	o->ntask = K ? o->nmat * cdiv(o->npan, o->group) : 0;
}

static int overlaps(const IrValue *a, const IrValue *b)
{
	return a->loc.area == IR_AREA_SCRATCH && b->loc.area == IR_AREA_SCRATCH &&
	       a->loc.offset < b->loc.offset + b->loc.bytes &&
	       b->loc.offset < a->loc.offset + a->loc.bytes;
}

/* Fusion, blocking and the workspace: k of the encode, slots, A and B panels, C, temporary. */
static void layout(const CgCtx *c, Gemm *G)
{
	const IrNode *n = G->n, *e = n->epilogue;
	G->y = n->out[0];
	if (e && e->op == IR_OP_RELU) {
		G->relu = 1;
		G->y = e->out[0];
	} else if (e && e->op == IR_OP_MADAM) {
		G->madam = e;
	}
	G->enc = G->madam ? n->out[0] : G->y->type->dt == IR_DT_LNS ? G->y : NULL;
	G->two_pass = G->enc && G->enc->type->fmt.scale != LNS_SCALE_STATIC;
	G->ccopy = G->cv && (G->cv->type->dt == IR_DT_LNS || overlaps(G->cv, G->y));
	blocking(G);
	pack_tasks(&G->a, G->K);
	pack_tasks(&G->b, G->K);
	G->nptask = cdiv(G->nb * G->M * G->N, PASS_ELEMS);
	G->ws = c->g && c->g->plan ? align_ws(c->g->plan->scratch_bytes) : 0;
	G->slots_off = WS_ALIGN;
	size_t off = align_ws(G->slots_off + (size_t)max64(G->ntask, G->nptask) * SLOT);
	G->a.off = off;
	off = align_ws(off + (size_t)(G->a.nmat * G->a.npan * G->K * G->a.r) * 4);
	G->b.off = off;
	off = align_ws(off + (size_t)(G->b.nmat * G->b.npan * G->K * G->b.r) * 4);
	G->c_off = off;
	if (G->ccopy)
		off = align_ws(off + (size_t)G->cv->type->numel * 4);
	G->temp_off = off;
	if (G->two_pass)
		off = align_ws(off + (size_t)(G->nb * G->M * G->N) * 4);
	G->bytes = off;
}

/* A convolution's operand: plain when its view is a strided matrix, else packed through the
 * view along the side whose vectors need the fewest memory runs (o on ties: no transpose). */
static void conv_opnd(const Gemm *G, Opnd *o, const CgConvOpnd *s, int64_t outer, int r)
{
	int64_t so, sk;
	opnd_init(o, s->v, outer, 0, 0, s->mat, r);
	o->nmat = s->nmat;
	if (cg_view_plain(&s->view, &so, &sk)) {
		o->so = so, o->sk = sk;
		return;
	}
	o->view = &s->view;
	int ro = cg_view_runs(o->view, 0, (int)min64(r, G->vw));
	int rk = cg_view_runs(o->view, 1, block_side(G, o));
	o->vdir = rk && (!ro || rk < ro);
}

/* Conv, ConvGradX, ConvGradW: the GEMM cg_conv.c describes; A's and B's matrices for output
 * matrix ob are ob % nmat; Conv's bias is a C of one value per row, per group. */
static int setup_conv(const CgCtx *c, const IrNode *n, Gemm *G, int report)
{
	CgConvGemm *s = &G->conv;
	if (cg_conv_gemm(report ? c->g : NULL, n, s))
		return -1;
	G->M = s->M, G->N = s->N, G->K = s->K, G->nb = s->nb;
	G->alpha = G->beta = 1.0f;
	conv_opnd(G, &G->a, &s->a, G->M, G->mr);
	conv_opnd(G, &G->b, &s->b, G->N, G->nr);
	if (s->bias) {
		G->cv = s->bias;
		G->csm = 1, G->csn = 0, G->cmod = s->group;
	}
	if (G->nb <= 1)
		return 0;
	G->bat = malloc(sizeof(int32_t) * (size_t)(2 * G->nb));
	if (!G->bat)
		abort();
	for (int64_t ob = 0; ob < G->nb; ob++) {
		G->bat[2 * ob] = (int32_t)(ob % s->a.nmat);
		G->bat[2 * ob + 1] = (int32_t)(ob % s->b.nmat);
	}
	return 0;
}

/* report: diagnostics for a node the kernels cannot run (else only the -1). */
static int setup(const CgCtx *c, const IrNode *n, Gemm *G, int report)
{
	memset(G, 0, sizeof *G);
	G->n = n;
	tile_shape(c, G);
	if (n->op == IR_OP_GEMM)
		setup_gemm(n, G);
	else if (n->op == IR_OP_MATMUL)
		setup_matmul(n, G);
	else if (setup_conv(c, n, G, report))
		return -1;
	layout(c, G);
	return 0;
}

size_t cg_gemm_workspace(const CgCtx *c, const IrNode *n)
{
	Gemm G;
	size_t bytes = setup(c, n, &G, 0) ? 0 : G.bytes;
	free(G.bat);
	return bytes;
}

/* ---- the step's side: phases, reductions, scale offsets ---- */

/* Sums of the slots of n tasks: max |x| bits (i32), saturated and underflowed (i64). */
typedef struct Stats {
	LLVMValueRef amax, nsat, nunf;
} Stats;

static Stats reduce_slots(CgCtx *c, const Gemm *G, int64_t n)
{
	LLVMValueRef acc[3] = {cg_alloca_zero(c, c->t_i32), cg_alloca_zero(c, c->t_i64),
			       cg_alloca_zero(c, c->t_i64)};
	CgLoop L;
	LLVMValueRef i = cg_loop_begin(c, &L, i64c(c, 0), i64c(c, n), 1, "slot");
	LLVMValueRef s = cg_gep(c, ws_ptr(c, G, G->slots_off), mul(c, i, SLOT));
	for (int f = 0; f < 3; f++) {
		LLVMValueRef x = load(c, c->t_i32, cg_gep_c(c, s, 4 * f), 4);
		LLVMTypeRef t = f ? c->t_i64 : c->t_i32;
		unsigned al = f ? 8 : 4;
		LLVMValueRef a = load(c, t, acc[f], al);
		if (f) {
			a = add(c, a, LLVMBuildZExt(c->b, x, c->t_i64, ""));
		} else {
			LLVMValueRef args[2] = {a, x};
			a = cg_intrinsic(c, "llvm.umax", c->t_i32, args, 2);
		}
		store(c, a, acc[f], al);
	}
	cg_loop_end(c, &L);
	return (Stats){load(c, c->t_i32, acc[0], 4), load(c, c->t_i64, acc[1], 8),
		       load(c, c->t_i64, acc[2], 8)};
}

/* Runs the compute phase and reports a non-finite result (as the interpreter, before a fused
 * Relu and before encoding). */
static Stats compute(CgCtx *c, const Gemm *G, OutKind kind)
{
	run(c, emit_compute_task(c, G, kind), G->ntask);
	Stats s = reduce_slots(c, G, G->ntask);
	cg_check_error(c, LLVMBuildICmp(c->b, LLVMIntUGE, s.amax, cg_i32(c, BAD_BITS), ""),
		       G->n->out[0]);
	return s;
}

/* k = lns_scale_pick(f, st, amax) for enc (amax bits; NULL when the pick does not need it). */
static LLVMValueRef scale_pick(CgCtx *c, const Gemm *G, LLVMValueRef amax)
{
	LLVMValueRef a[3] = {cg_fmt_arg(c, G->enc->type->fmt), cg_scale_ptr(c, G->enc),
			     amax ? LLVMBuildBitCast(c->b, amax, c->t_f32, "") : cg_f32(c, 0.0f)};
	LLVMValueRef k = cg_call(c, "lns_scale_pick", c->t_i32, a, 3);
	LLVMBuildStore(c->b, k, ws_ptr(c, G, 0));
	return k;
}

/* enc's k this step; lns_scale_record(st, k, {sat, unf, numel, amax}) when training. */
static void scale_record(CgCtx *c, const Gemm *G, LLVMValueRef k, const Stats *s)
{
	LLVMBuildStore(c->b, k, cg_kslot_ptr(c, G->enc));
	if (c->mode != IR_MODE_TRAIN)
		return;
	LLVMTypeRef el[4] = {c->t_i64, c->t_i64, c->t_i64, c->t_f32};
	LLVMTypeRef st = LLVMStructTypeInContext(c->llctx, el, 4, 0);
	LLVMValueRef p = cg_alloca_zero(c, st);
	LLVMValueRef f[4] = {s->nsat, s->nunf, i64c(c, G->enc->type->numel),
			     LLVMBuildBitCast(c->b, s->amax, c->t_f32, "")};
	for (unsigned i = 0; i < 4; i++)
		LLVMBuildStore(c->b, f[i], LLVMBuildStructGEP2(c->b, st, p, i, ""));
	LLVMValueRef a[3] = {cg_scale_ptr(c, G->enc), k, p};
	cg_call(c, "lns_scale_record", c->t_void, a, 3);
}

/* The scale offset is known before the GEMM (static, or delayed with a history): one pass. */
static void one_pass(CgCtx *c, const Gemm *G)
{
	LLVMValueRef k = scale_pick(c, G, NULL);
	Stats s = compute(c, G, G->madam ? OUT_MADAM : OUT_ENC);
	scale_record(c, G, k, &s);
}

/* It needs this step's amax: f32 results to the temporary first. */
static void two_passes(CgCtx *c, const Gemm *G)
{
	Stats s = compute(c, G, OUT_TEMP);
	if (!G->madam) {
		int64_t rel = (int64_t)(G->ws + G->temp_off) - (int64_t)c->g->plan->temp_off;
		cg_encode_f32(c, G->enc, rel, s.amax);
		return;
	}
	LLVMValueRef k = scale_pick(c, G, s.amax);
	run(c, emit_madam_pass(c, G), G->nptask);
	Stats s2 = reduce_slots(c, G, G->nptask);
	s2.amax = s.amax;
	scale_record(c, G, k, &s2);
}

static void run_encoded(CgCtx *c, const Gemm *G)
{
	LnsFormat f = G->enc->type->fmt;
	if (f.scale == LNS_SCALE_STATIC) {
		one_pass(c, G);
	} else if (f.scale == LNS_SCALE_CURRENT) {
		two_passes(c, G);
	} else {
		LLVMValueRef st = cg_scale_ptr(c, G->enc);
		LLVMValueRef nh = load(c, c->t_i32, cg_gep_c(c, st, offsetof(LnsScaleState, nhist)), 4);
		Branch br;
		branch_begin(c, &br, LLVMBuildICmp(c->b, LLVMIntSGT, nh, cg_i32(c, 0), ""));
		one_pass(c, G);
		branch_else(c, &br);
		two_passes(c, G);
		branch_end(c, &br);
	}
}

static int emit(CgCtx *c, const IrNode *n)
{
	Gemm G;
	if (setup(c, n, &G, 1)) {
		free(G.bat);
		return -1;
	}
	if (G.nb * G.M * G.N > 0) {
		run(c, emit_pack_task(c, &G), G.a.ntask + G.b.ntask + (G.ccopy ? 1 : 0));
		if (G.enc)
			run_encoded(c, &G);
		else
			compute(c, &G, OUT_F32);
	}
	free(G.bat);
	return 0;
}

int cg_emit_gemm(CgCtx *c, const IrNode *n)
{
	return emit(c, n);
}

int cg_emit_matmul(CgCtx *c, const IrNode *n)
{
	return emit(c, n);
}

int cg_emit_conv(CgCtx *c, const IrNode *n)
{
	return emit(c, n);
}
