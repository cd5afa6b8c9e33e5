/* lns.h: the LNS numerics of ../shared/docs/LNS.md, one module used by every backend.
 *
 * A format lns<B, g> stores a sign bit (bit B-1) and a magnitude code m (low B-1 bits) in a
 * uint8 (B <= 8) or uint16 (B <= 16) container; m = 0 is exact zero, otherwise
 * |x| = 2^((m + k) / g) with the tensor's integer scale offset k. Encoding is exact: the
 * rounding decision compares the fp32 mantissa with thresholds computed at build time in
 * long double (tools/gen_lns_tables.c), so every backend can reproduce it bit for bit.
 * Stochastic rounding uses a counter-based generator keyed by (seed, step, tensor, element),
 * so results do not depend on thread count, vector width or target.
 *
 * Depends on nothing but libc and libm: the runtime and generated code link it too.
 */
#ifndef LNSC_LNS_H
#define LNSC_LNS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { LNS_SCALE_STATIC, LNS_SCALE_CURRENT, LNS_SCALE_DELAYED } LnsScaleMode;
typedef enum { LNS_ROUND_NEAREST, LNS_ROUND_STOCHASTIC } LnsRounding;
typedef enum { LNS_UF_ZERO, LNS_UF_MIN, LNS_UF_STOCHASTIC } LnsUnderflow;

enum { LNS_MAX_BITS = 16, LNS_MAX_LOG2G = 12, LNS_HIST = 16 };

/* A format: bits B (2..16), gamma g = 2^log2g (1..4096), and how tensors of it are encoded. */
typedef struct LnsFormat {
	uint8_t bits;
	uint8_t log2g;
	uint8_t scale;     /* LnsScaleMode */
	uint8_t round;     /* LnsRounding */
	uint8_t underflow; /* LnsUnderflow */
} LnsFormat;

/* Per-tensor scale state and telemetry. Lives in the model state blob (checkpointed). */
typedef struct LnsScaleState {
	int32_t k;               /* scale offset in force */
	int32_t nhist;           /* amax values recorded so far (saturates at LNS_HIST) */
	int32_t hpos;            /* next ring position */
	int32_t pad;
	float hist[LNS_HIST];    /* amax of the last steps (delayed scaling) */
	uint64_t n_sat;          /* elements saturated at the top code */
	uint64_t n_unf;          /* nonzero elements that underflowed (flushed or clamped) */
	uint64_t n_total;        /* elements encoded */
} LnsScaleState;

/* Counts produced by one tensor encode. */
typedef struct LnsStats {
	uint64_t n_sat, n_unf, n_total;
	float amax;
} LnsStats;

/* ---- format traits ---- */
int lns_format_valid(LnsFormat f);            /* 2 <= B <= 16, 0 <= log2g <= 12, enums in range */
int lns_gamma(LnsFormat f);                   /* 2^log2g */
int lns_max_code(LnsFormat f);                /* M = 2^(B-1) - 1 */
int lns_container_bytes(LnsFormat f);         /* 1 or 2 */
/* lns_format_str: "lns8g8" (bits and gamma only). lns_format_str_full always adds the three
 * modes: "lns5g2:sr:delayed:uf=zero" (rounding rn|sr, scale static|current|delayed, underflow
 * uf=zero|min|sr). Both return buf. Parse accepts "lns<B>g<G>" with any subset of the suffixes
 * in any order (each at most once; defaults rn, delayed, uf=zero); returns 0 on success, -1 on
 * a bad string (then *out is untouched). */
char *lns_format_str(LnsFormat f, char *buf, size_t n);
char *lns_format_str_full(LnsFormat f, char *buf, size_t n);
int lns_format_parse(const char *s, LnsFormat *out);

/* ---- words ---- */
static inline uint32_t lns_word(LnsFormat f, int sign, uint32_t m)
{
	return ((uint32_t)(sign != 0) << (f.bits - 1)) | m;
}
static inline uint32_t lns_word_mag(LnsFormat f, uint32_t w)
{
	return w & ((1u << (f.bits - 1)) - 1u);
}
static inline int lns_word_sign(LnsFormat f, uint32_t w)
{
	return (int)((w >> (f.bits - 1)) & 1u);
}
/* Load/store word i of a container array of format f. */
uint32_t lns_load(LnsFormat f, const void *codes, size_t i);
void lns_store(LnsFormat f, void *codes, size_t i, uint32_t w);

/* ---- decode ---- */
/* Exact 2^(E/g) as fp32 via the table T[r] = 2^(r/g) (correctly rounded) and an exponent add;
 * results below the fp32 range flush to 0, above it are +inf (callers keep E in range). */
float lns_pow2_e(int log2g, int32_t E);
float lns_decode(LnsFormat f, int32_t k, uint32_t w);
void lns_decode_tensor(LnsFormat f, int32_t k, const void *codes, float *out, size_t n);

/* ---- encode ---- */
/* The correctly rounded exponent n = round(g * log2|x|) (x finite, nonzero), exact. */
int32_t lns_round_log(int log2g, float x);
/* floor variant against the decoded levels: the largest n with lns_pow2_e(n) <= |x|. */
int32_t lns_floor_log(int log2g, float x);
/* ceil(g * log2(a)) exactly, a > 0 finite. */
int32_t lns_ceil_log(int log2g, float a);

/* Flags reported by a single-element encode. */
enum { LNS_F_SAT = 1, LNS_F_UNF = 2 };

/* Encode one value. rnd: 32 random bits (used only by stochastic rounding / underflow).
 * *flags gets LNS_F_SAT / LNS_F_UNF (flags may be NULL). x must be finite. */
uint32_t lns_encode(LnsFormat f, int32_t k, float x, uint32_t rnd, int *flags);

/* k for 'current' scaling: ceil(g*log2(amax)) - M; amax == 0 gives 0. */
int32_t lns_scale_current(LnsFormat f, float amax);
/* k in force for this step: static -> st->k; current -> from amax; delayed -> from the max of
 * the history, or from amax when the history is empty. Does not modify st. */
int32_t lns_scale_pick(LnsFormat f, const LnsScaleState *st, float amax);
/* Record this step's amax and counts into st (delayed history ring; telemetry). */
void lns_scale_record(LnsScaleState *st, int32_t k, const LnsStats *s);

/* Encode a whole tensor: picks k (lns_scale_pick), encodes with the rng stream
 * (key from lns_rng_key; element i uses lns_rng_bits(key, i)), fills *stats.
 * If record is nonzero the state is updated (training); eval passes 0.
 * Returns the k used. x must be finite (callers check). */
int32_t lns_encode_tensor(LnsFormat f, LnsScaleState *st, const float *x, void *codes, size_t n,
			  uint32_t rng_key, int record, LnsStats *stats);

/* ---- counter-based RNG ---- */
uint32_t lns_mix32(uint32_t x);
uint32_t lns_rng_key(uint64_t seed, uint32_t step, uint32_t tensor_id);
static inline uint32_t lns_rng_bits(uint32_t key, uint32_t index)
{
	uint32_t x = key + index * 0x9E3779B9u;
	x ^= x >> 16;
	x *= 0x7FEB352Du;
	x ^= x >> 15;
	x *= 0x846CA68Bu;
	x ^= x >> 16;
	return x;
}
/* Uniform in [0, 1) with 24 bits: (bits >> 8) * 2^-24. */
static inline float lns_rng_unit(uint32_t bits)
{
	return (float)(bits >> 8) * (1.0f / 16777216.0f);
}

/* ---- arithmetic on codes ---- */
/* Product of two words (formats may differ; aligned to the larger gamma, exact). The result is
 * returned as sign and exponent E in the output gamma: value = (-1)^s 2^(E/g_out). Returns 0 if
 * either is zero (then *sign, *E are 0). */
int lns_mul(LnsFormat fa, int32_t ka, uint32_t a, LnsFormat fb, int32_t kb, uint32_t b,
	    int *sign, int32_t *E, int *log2g_out);

/* ---- Madam (LNS.md section 5) ---- */
typedef struct LnsMadamParams {
	float lr;      /* 2^-7 */
	float p_scale; /* 3 */
	float g_bound; /* 10 */
	float beta2;   /* 0.999 */
} LnsMadamParams;
LnsMadamParams lns_madam_defaults(void);

/* Init of a Madam weight: k_w from max = p_scale * RMS(w0); encodes w0 (nearest, underflow
 * min) into codes. Returns k_w. */
int32_t lns_madam_init(LnsFormat fu, const LnsMadamParams *p, const float *w0, size_t n,
		       void *codes);
/* One step t (1-based) over n elements: gw already quantised (decoded fp32 values), v the
 * fp32 second moment (updated). rng_key drives the stochastic rounding of non-integer d. */
void lns_madam_update(LnsFormat fu, const LnsMadamParams *p, uint32_t t, void *codes,
		      const float *gw, float *v, size_t n, uint32_t rng_key);

/* The forward view lns<8,8> (or any narrower fv) of a stored weight format fu with offset k_w:
 * E = round((m + k_w) * g_v / g_u) (add half, arithmetic shift; ties up), m_v = E - k_v,
 * saturating at the top and clamped to code 1 (never zero); sign kept; zero stays zero. */
int32_t lns_view_offset(LnsFormat fu, int32_t k_w, LnsFormat fv); /* k_v: same top value */
uint32_t lns_view_word(LnsFormat fu, int32_t k_w, uint32_t w, LnsFormat fv, int32_t k_v);

#endif
