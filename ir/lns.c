/* lns.c: the LNS numerics of LNS.md (formats, exact encode/decode, scaling, RNG, Madam).
 *
 * Everything here is integer work on codes, table look-ups and plain fp32 operations; the only
 * libm calls are exactly rounded ones (sqrt, sqrtf, rintf, floorf). The rounding thresholds come
 * from lns_tables.h, generated in long double at build time (tools/gen_lns_tables.c), so the
 * encoder is exact and the LLVM backend reproduces it bit for bit from the same tables. The
 * element encoder has a fast inline path (nearest rounding of a normal fp32: two look-ups, one
 * comparison) used by the tensor loop; every other case goes through the general out-of-line
 * path. No global mutable state: scale state and RNG keys are passed in.
 *
 * THE CONTRACT (what every backend reproduces bit for bit). fp32 arithmetic is IEEE binary32,
 * round to nearest even, no fused multiply-add, subnormals honoured (no FTZ/DAZ).
 * - Word: sign s at bit B-1, magnitude m in the low B-1 bits; uint8 container for B <= 8,
 *   uint16 for B <= 16. m = 0 is zero; canonical zero is the word 0. M = 2^(B-1) - 1.
 * - Tables (gamma g = 2^L, offset g-1): T = lns_tab_pow, 2^(r/g) correctly rounded.
 * - pow2_e(E): r = E & (g-1), q = floor(E / g); result = ldexpf(T[r], q), computed as
 *   bits(T[r]) + (q << 23) for -126 <= q <= 127; +inf for q > 127; for q < -126 the normal
 *   product T[r] * 2^(q+126) times 2^-126 (one rounding, to nearest even, into the subnormals),
 *   and 0 for q < -252.
 * - decode(w) = 0 if m = 0, else (-1)^s pow2_e(m + k).
 * - round_log(x) = round(g * log2|x|), exact: |x| = 2^e * mant (mant in [1,2), subnormals
 *   normalised), result g*e + j, j = #{i : mid[i] <= mant} in 0..g, where mid[i] is the
 *   smallest fp32 >= 2^((i+0.5)/g). No ties: g*log2|x| = n + 1/2 would need |x| = 2^((2n+1)/2g),
 *   an irrational number; the comparison with the rounded-up fp32 is exact (gen_lns_tables.c).
 *   j costs one look-up in lns_tab_mid_bucket (indexed by the top log2g+1 fraction bits) and
 *   one comparison: j = B + (mid[B] <= mant) with B the bucket's count.
 * - floor_log(x): largest n with pow2_e(n) <= |x| (decoded levels: stochastic rounding is
 *   unbiased with respect to what decode returns).
 * - ceil_log(a): smallest n with 2^(n/g) >= a (exact real levels; lvl table rounded up).
 * - encode nearest: n = round_log(x), m = n - k, then finish(m).
 * - encode stochastic: n0 = floor_log(x), lo = pow2_e(n0), hi = pow2_e(n0 + 1),
 *   p = (|x| - lo) / (hi - lo) in fp32 (both subtractions exact by Sterbenz), u = rng_unit(rnd),
 *   m = n0 - k + (u < p), then finish(m). Exception, underflow mode stochastic: if n0 - k < 1
 *   (equivalently |x| < L = pow2_e(k + 1), the smallest level) the LUQ rule below decides
 *   directly, so E[decode(encode(x))] = x holds below, across and above the bottom level.
 * - finish(m): m > M -> M, flag SAT. m < 1 -> flag UNF and by underflow mode: zero -> word 0;
 *   min -> m = 1 with the sign; stochastic (LUQ) -> m = 1 with the sign if u < |x| / L (fp32
 *   division, L = pow2_e(k + 1)), else word 0. x = +-0 -> word 0, no flag.
 * - Element i of a tensor draws rnd = lns_rng_bits(key, i); key = lns_rng_key(seed, step, id).
 * - Scale: current k = ceil_log(amax) - M (amax = 0: k = 0); delayed: from the max of the
 *   recorded history (LNS_HIST steps), current on the first step. Madam: lns_madam_update.
 *   Forward view: view_e. fp32 arithmetic order where it matters is written next to the code.
 */
#include "lns.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lns_tables.h"

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

/* ---- small helpers ---- */

static float bits_f(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

static uint32_t f_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return u;
}

/* Keeps an exponent sum in int32 range; beyond +-2^30 every gamma over- or underflows fp32. */
static int32_t clamp_e(int64_t E)
{
	const int64_t lim = (int64_t)1 << 30;
	return (int32_t)(E > lim ? lim : E < -lim ? -lim : E);
}

static int64_t floor_div(int64_t a, int64_t b) /* b > 0 */
{
	int64_t q = a / b;
	return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* |x| = 2^e * mant with mant in [1,2) (subnormals normalised), from ab = the bits of |x|
 * (finite, nonzero). Returns the fp32 bit pattern of mant (0x3F800000 | fraction), so
 * mantissas compare as integers. */
static inline uint32_t split(uint32_t ab, int32_t *e)
{
	uint32_t frac = ab & 0x7FFFFFu;
	int32_t ef = (int32_t)(ab >> 23);
	if (ef == 0) {
		int sh = 0;
		while (!(frac & 0x800000u)) {
			frac <<= 1;
			sh++;
		}
		*e = -126 - sh;
		return 0x3F800000u | (frac & 0x7FFFFFu);
	}
	*e = ef - 127;
	return 0x3F800000u | frac;
}

/* #{i < g : tab[i] <= mant} with the bucket table of the generator: at most one entry lies
 * inside a bucket, so one look-up and one comparison. */
static inline int count_le(const uint32_t *tab, const uint16_t *bucket, int log2g, uint32_t mant)
{
	int c = bucket[(mant & 0x7FFFFFu) >> (22 - log2g)];
	if (c < (1 << log2g) && tab[c] <= mant)
		c++;
	return c;
}

/* ---- format traits ---- */

int lns_format_valid(LnsFormat f)
{
	return f.bits >= 2 && f.bits <= LNS_MAX_BITS && f.log2g <= LNS_MAX_LOG2G &&
	       f.scale <= LNS_SCALE_DELAYED && f.round <= LNS_ROUND_STOCHASTIC &&
	       f.underflow <= LNS_UF_STOCHASTIC;
}

int lns_gamma(LnsFormat f)
{
	return 1 << f.log2g;
}

int lns_max_code(LnsFormat f)
{
	return (1 << (f.bits - 1)) - 1;
}

int lns_container_bytes(LnsFormat f)
{
	return f.bits <= 8 ? 1 : 2;
}

static const char *const round_names[] = {"rn", "sr"};
static const char *const scale_names[] = {"static", "current", "delayed"};
static const char *const uf_names[] = {"zero", "min", "sr"};

char *lns_format_str(LnsFormat f, char *buf, size_t n)
{
	snprintf(buf, n, "lns%ug%d", (unsigned)f.bits, 1 << (f.log2g & 15));
	return buf;
}

char *lns_format_str_full(LnsFormat f, char *buf, size_t n)
{
	if (!lns_format_valid(f)) {
		snprintf(buf, n, "lns?(bits %u, log2g %u)", (unsigned)f.bits, (unsigned)f.log2g);
		return buf;
	}
	snprintf(buf, n, "lns%ug%d:%s:%s:uf=%s", (unsigned)f.bits, 1 << f.log2g,
	         round_names[f.round], scale_names[f.scale], uf_names[f.underflow]);
	return buf;
}

/* Decimal 1..99999 without sign or leading zero; advances *s. Returns -1 if none. */
static int parse_small_uint(const char **s)
{
	const char *p = *s;
	int v = 0, nd = 0;
	if (*p == '0')
		return -1;
	while (*p >= '0' && *p <= '9' && nd < 6) {
		v = v * 10 + (*p++ - '0');
		nd++;
	}
	if (nd == 0 || nd > 5)
		return -1;
	*s = p;
	return v;
}

/* One ":suffix" token of length len; sets the field and marks it seen (duplicates rejected). */
static int parse_suffix(const char *t, size_t len, LnsFormat *f, unsigned *seen)
{
	static const struct {
		const char *name;
		unsigned field; /* 1 round, 2 scale, 4 underflow */
		uint8_t value;
	} sfx[] = {
	    {"rn", 1, LNS_ROUND_NEAREST},      {"sr", 1, LNS_ROUND_STOCHASTIC},
	    {"static", 2, LNS_SCALE_STATIC},   {"current", 2, LNS_SCALE_CURRENT},
	    {"delayed", 2, LNS_SCALE_DELAYED}, {"uf=zero", 4, LNS_UF_ZERO},
	    {"uf=min", 4, LNS_UF_MIN},         {"uf=sr", 4, LNS_UF_STOCHASTIC},
	};
	for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
		if (strlen(sfx[i].name) != len || strncmp(t, sfx[i].name, len) != 0)
			continue;
		if (*seen & sfx[i].field)
			return -1;
		*seen |= sfx[i].field;
		if (sfx[i].field == 1)
			f->round = sfx[i].value;
		else if (sfx[i].field == 2)
			f->scale = sfx[i].value;
		else
			f->underflow = sfx[i].value;
		return 0;
	}
	return -1;
}

int lns_format_parse(const char *s, LnsFormat *out)
{
	LnsFormat f = {0, 0, LNS_SCALE_DELAYED, LNS_ROUND_NEAREST, LNS_UF_ZERO};
	if (strncmp(s, "lns", 3) != 0)
		return -1;
	s += 3;
	int bits = parse_small_uint(&s);
	if (bits < 2 || bits > LNS_MAX_BITS || *s != 'g')
		return -1;
	s++;
	int gamma = parse_small_uint(&s);
	if (gamma < 1 || gamma > (1 << LNS_MAX_LOG2G) || (gamma & (gamma - 1)) != 0)
		return -1;
	f.bits = (uint8_t)bits;
	while (gamma >> (f.log2g + 1))
		f.log2g++;
	unsigned seen = 0;
	while (*s == ':') {
		s++;
		size_t len = strcspn(s, ":");
		if (parse_suffix(s, len, &f, &seen) != 0)
			return -1;
		s += len;
	}
	if (*s != '\0')
		return -1;
	*out = f;
	return 0;
}

/* ---- words ---- */

uint32_t lns_load(LnsFormat f, const void *codes, size_t i)
{
	if (f.bits <= 8)
		return ((const uint8_t *)codes)[i];
	return ((const uint16_t *)codes)[i];
}

void lns_store(LnsFormat f, void *codes, size_t i, uint32_t w)
{
	if (f.bits <= 8)
		((uint8_t *)codes)[i] = (uint8_t)w;
	else
		((uint16_t *)codes)[i] = (uint16_t)w;
}

/* ---- decode ---- */

float lns_pow2_e(int log2g, int32_t E)
{
	int32_t g = 1 << log2g;
	uint32_t r = (uint32_t)E & (uint32_t)(g - 1);
	int32_t q = (int32_t)(((int64_t)E - (int64_t)r) / g); /* exact: floor(E / g) */
	uint32_t t = lns_tab_pow[lns_tab_off[log2g] + (int32_t)r];
	if (q > 127)
		return INFINITY;
	if (q >= -126) /* T in [1,2): exponent field 127 + q stays in 1..254 */
		return bits_f(t + (uint32_t)q * 0x800000u);
	if (q < -252) /* below 2^-251: rounds to zero */
		return 0.0f;
	/* T * 2^(q+126) is a normal number (exact); the multiply rounds once into the subnormals */
	return bits_f(t + (uint32_t)(q + 126) * 0x800000u) * 0x1p-126f;
}

float lns_decode(LnsFormat f, int32_t k, uint32_t w)
{
	uint32_t m = lns_word_mag(f, w);
	if (m == 0)
		return 0.0f;
	float v = lns_pow2_e(f.log2g, clamp_e((int64_t)m + k));
	return lns_word_sign(f, w) ? -v : v;
}

void lns_decode_tensor(LnsFormat f, int32_t k, const void *codes, float *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = lns_decode(f, k, lns_load(f, codes, i));
}

/* ---- exact logarithms ---- */

static inline int32_t round_log(int log2g, uint32_t ab)
{
	int32_t e;
	uint32_t mant = split(ab, &e);
	int32_t off = (1 << log2g) - 1; /* lns_tab_off[log2g] */
	int j = count_le(lns_tab_mid + off, lns_tab_mid_bucket + 2 * off, log2g, mant);
	return e * (1 << log2g) + j;
}

int32_t lns_round_log(int log2g, float x)
{
	return round_log(log2g, f_bits(x) & 0x7FFFFFFFu);
}

/* Largest n with pow2_e(n) <= |x|. For normal x the levels next to x are normal, so exactly
 * T[r] * 2^e and the table count is the answer. For subnormal x the levels are themselves
 * rounded into the subnormals (and may repeat); the table count n_t is still a lower bound
 * (T[r]2^e <= |x| survives rounding since |x| is an fp32) and pow2_e(n_t + g + 1) >= 2 *
 * (a real above |x|) > |x| + 2^-149 bounds it above: binary search in between. */
int32_t lns_floor_log(int log2g, float x)
{
	int32_t e, g = 1 << log2g;
	uint32_t mant = split(f_bits(x) & 0x7FFFFFFFu, &e);
	int32_t off = g - 1;
	int32_t n =
	    e * g + count_le(lns_tab_pow + off, lns_tab_pow_bucket + 2 * off, log2g, mant) - 1;
	float ax = fabsf(x);
	if (ax >= FLT_MIN)
		return n;
	int32_t lo = n, hi = n + g + 1; /* pow2_e(lo) <= ax < pow2_e(hi) */
	while (hi - lo > 1) {
		int32_t mid = lo + (hi - lo) / 2;
		if (lns_pow2_e(log2g, mid) <= ax)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Smallest n with 2^(n/g) >= a. mant = 1 is the level itself (j = 0). Otherwise
 * 2^(j/g) >= mant fails exactly for the j with lvl[j] <= mant (lvl[0] = 1 and, for j >= 1, the
 * rounded-up irrational level), so j = #{i : lvl[i] <= mant}: a binary search (not hot). */
int32_t lns_ceil_log(int log2g, float a)
{
	int32_t e, g = 1 << log2g;
	uint32_t mant = split(f_bits(a) & 0x7FFFFFFFu, &e);
	if (mant == 0x3F800000u)
		return e * g;
	const uint32_t *lvl = lns_tab_lvl + lns_tab_off[log2g];
	int j = 0;
	for (int s = g / 2; s > 0; s >>= 1)
		if (lvl[j + s - 1] <= mant)
			j += s;
	if (lvl[j] <= mant) /* j < g here: j <= g-1 after the loop */
		j++;
	return e * g + j;
}

/* ---- encode ---- */

/* LUQ underflow: the smallest level L with probability |x| / L, else zero. */
static NOINLINE uint32_t underflow_sr(LnsFormat f, int32_t k, int sign, float ax, uint32_t rnd)
{
	float L = lns_pow2_e(f.log2g, clamp_e((int64_t)k + 1));
	return lns_rng_unit(rnd) < ax / L ? lns_word(f, sign, 1) : 0;
}

/* Saturation and underflow of a rounded code m (see the contract above). */
static inline uint32_t finish(LnsFormat f, int32_t k, int sign, int64_t m, float ax, uint32_t rnd,
                              int *flags)
{
	int64_t M = lns_max_code(f);
	if (m > M) {
		*flags = LNS_F_SAT;
		return lns_word(f, sign, (uint32_t)M);
	}
	if (m >= 1)
		return lns_word(f, sign, (uint32_t)m);
	*flags = LNS_F_UNF;
	switch (f.underflow) {
	case LNS_UF_MIN:
		return lns_word(f, sign, 1);
	case LNS_UF_STOCHASTIC:
		return underflow_sr(f, k, sign, ax, rnd);
	default:
		return 0;
	}
}

/* Stochastic rounding between the decoded levels lo = pow2_e(n0) <= ax < hi = pow2_e(n0 + 1):
 * up with probability p = (ax - lo) / (hi - lo). Both differences are exact (Sterbenz,
 * lo <= ax < hi <= 2 lo, for normal levels; on the subnormal grid every difference of two
 * small numbers is representable); hi = inf (top of fp32) gives p = 0. */
static NOINLINE uint32_t encode_sr(LnsFormat f, int32_t k, int sign, float ax, uint32_t rnd,
                                   int *flags)
{
	int32_t n0 = lns_floor_log(f.log2g, ax);
	if ((int64_t)n0 - k < 1 && f.underflow == LNS_UF_STOCHASTIC) {
		*flags = LNS_F_UNF;
		return underflow_sr(f, k, sign, ax, rnd);
	}
	float lo = lns_pow2_e(f.log2g, n0), hi = lns_pow2_e(f.log2g, n0 + 1);
	float p = (ax - lo) / (hi - lo);
	int64_t m = (int64_t)n0 - k + (lns_rng_unit(rnd) < p);
	return finish(f, k, sign, m, ax, rnd, flags);
}

/* Any element (b: the fp32 bits of x), the general path. */
static NOINLINE uint32_t encode_slow(LnsFormat f, int32_t k, uint32_t b, uint32_t rnd, int *fl)
{
	uint32_t ab = b & 0x7FFFFFFFu;
	int sign = (int)(b >> 31);
	*fl = 0;
	if (ab == 0)
		return 0;
	if (f.round == LNS_ROUND_STOCHASTIC)
		return encode_sr(f, k, sign, bits_f(ab), rnd, fl);
	return finish(f, k, sign, (int64_t)round_log(f.log2g, ab) - k, bits_f(ab), rnd, fl);
}

/* Constants of one (format, k), hoisted out of element loops. */
typedef struct Enc {
	LnsFormat f;
	int32_t k;
	int32_t g, shift, sbit, M;
	int32_t base; /* m = (exponent field) * g + j + base, k clamped (see enc_init) */
	const uint32_t *mid;
	const uint16_t *bucket;
} Enc;

static inline Enc enc_init(LnsFormat f, int32_t k)
{
	Enc e;
	e.f = f;
	e.k = k;
	e.g = 1 << f.log2g;
	e.shift = 22 - f.log2g;
	e.sbit = f.bits - 1;
	e.M = lns_max_code(f);
	/* (exponent field) * g + j lies in [0, 2^21): for |k| > 2^28 every code saturates or
	 * underflows all the same, so clamping k keeps the fast path in int32 */
	e.base = -127 * e.g - (k > (1 << 28) ? (1 << 28) : k < -(1 << 28) ? -(1 << 28) : k);
	e.mid = lns_tab_mid + (e.g - 1);
	e.bucket = lns_tab_mid_bucket + 2 * (e.g - 1);
	return e;
}

/* One element (b: the fp32 bits of x). Nearest rounding of a normal fp32 whose code is in
 * range, saturates, or flushes to zero is done inline (round_log and finish spelt out for
 * speed: this runs for every element of every encoded tensor); everything else, out of line. */
static inline uint32_t enc_one(const Enc *e, uint32_t b, uint32_t rnd, int *fl)
{
	uint32_t ab = b & 0x7FFFFFFFu, frac = ab & 0x7FFFFFu;
	if (e->f.round == LNS_ROUND_NEAREST && ab >= 0x800000u) {
		int c = e->bucket[frac >> e->shift];
		c += c < e->g && e->mid[c] <= (0x3F800000u | frac);
		int32_t m = (int32_t)(ab >> 23) * e->g + c + e->base;
		uint32_t sign = (b >> 31) << e->sbit;
		if (m >= 1 && m <= e->M) {
			*fl = 0;
			return sign | (uint32_t)m;
		}
		if (m > e->M) {
			*fl = LNS_F_SAT;
			return sign | (uint32_t)e->M;
		}
		if (e->f.underflow == LNS_UF_ZERO) {
			*fl = LNS_F_UNF;
			return 0;
		}
	}
	return encode_slow(e->f, e->k, b, rnd, fl);
}

uint32_t lns_encode(LnsFormat f, int32_t k, float x, uint32_t rnd, int *flags)
{
	Enc e = enc_init(f, k);
	int fl;
	uint32_t w = enc_one(&e, f_bits(x), rnd, &fl);
	if (flags)
		*flags = fl;
	return w;
}

/* ---- scaling ---- */

int32_t lns_scale_current(LnsFormat f, float amax)
{
	if (amax == 0.0f)
		return 0;
	return lns_ceil_log(f.log2g, amax) - lns_max_code(f);
}

int32_t lns_scale_pick(LnsFormat f, const LnsScaleState *st, float amax)
{
	switch (f.scale) {
	case LNS_SCALE_STATIC:
		return st->k;
	case LNS_SCALE_CURRENT:
		return lns_scale_current(f, amax);
	default:
		break;
	}
	if (st->nhist <= 0)
		return lns_scale_current(f, amax);
	float hmax = 0.0f;
	for (int32_t i = 0; i < st->nhist && i < LNS_HIST; i++)
		hmax = fmaxf(hmax, st->hist[i]);
	return lns_scale_current(f, hmax);
}

void lns_scale_record(LnsScaleState *st, int32_t k, const LnsStats *s)
{
	st->k = k;
	st->hist[st->hpos] = s->amax;
	st->hpos = (st->hpos + 1) % LNS_HIST;
	if (st->nhist < LNS_HIST)
		st->nhist++;
	st->n_sat += s->n_sat;
	st->n_unf += s->n_unf;
	st->n_total += s->n_total;
}

/* max |x| on the bit patterns (monotone for finite x); four chains for throughput. */
static float amax_of(const float *x, size_t n)
{
	uint32_t mx[4] = {0, 0, 0, 0};
	size_t i = 0;
	for (; i + 4 <= n; i += 4)
		for (int j = 0; j < 4; j++) {
			uint32_t ab = f_bits(x[i + j]) & 0x7FFFFFFFu;
			mx[j] = ab > mx[j] ? ab : mx[j];
		}
	for (; i < n; i++) {
		uint32_t ab = f_bits(x[i]) & 0x7FFFFFFFu;
		mx[0] = ab > mx[0] ? ab : mx[0];
	}
	for (int j = 1; j < 4; j++)
		mx[0] = mx[j] > mx[0] ? mx[j] : mx[0];
	return bits_f(mx[0]);
}

/* The element loop of lns_encode_tensor; bytes (the container) is a constant at each call. */
static inline void enc_loop(const Enc *e, const float *x, void *codes, size_t n, uint32_t key,
                            LnsStats *s, int bytes)
{
	int rng = e->f.round == LNS_ROUND_STOCHASTIC || e->f.underflow == LNS_UF_STOCHASTIC;
	uint64_t nsat = 0, nunf = 0;
	for (size_t i = 0; i < n; i++) {
		int fl;
		uint32_t rnd = rng ? lns_rng_bits(key, (uint32_t)i) : 0;
		uint32_t w = enc_one(e, f_bits(x[i]), rnd, &fl);
		if (bytes == 1)
			((uint8_t *)codes)[i] = (uint8_t)w;
		else
			((uint16_t *)codes)[i] = (uint16_t)w;
		nsat += (fl & LNS_F_SAT) != 0;
		nunf += (fl & LNS_F_UNF) != 0;
	}
	s->n_sat = nsat;
	s->n_unf = nunf;
}

/* Element indices are taken mod 2^32 for the RNG counter. st may be NULL only with current
 * scaling and record = 0. */
int32_t lns_encode_tensor(LnsFormat f, LnsScaleState *st, const float *x, void *codes, size_t n,
                          uint32_t rng_key, int record, LnsStats *stats)
{
	float amax = amax_of(x, n);
	int32_t k = lns_scale_pick(f, st, amax);
	LnsStats s = {0, 0, (uint64_t)n, amax};
	Enc e = enc_init(f, k);
	if (lns_container_bytes(f) == 1)
		enc_loop(&e, x, codes, n, rng_key, &s, 1);
	else
		enc_loop(&e, x, codes, n, rng_key, &s, 2);
	if (stats)
		*stats = s;
	if (record)
		lns_scale_record(st, k, &s);
	return k;
}

/* ---- counter-based RNG ---- */

uint32_t lns_mix32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7FEB352Du;
	x ^= x >> 15;
	x *= 0x846CA68Bu;
	x ^= x >> 16;
	return x;
}

uint32_t lns_rng_key(uint64_t seed, uint32_t step, uint32_t tensor_id)
{
	uint32_t s = (uint32_t)seed ^ lns_mix32((uint32_t)(seed >> 32));
	return lns_mix32(lns_mix32(lns_mix32(s) ^ step) ^ tensor_id);
}

/* ---- arithmetic on codes ---- */

int lns_mul(LnsFormat fa, int32_t ka, uint32_t a, LnsFormat fb, int32_t kb, uint32_t b, int *sign,
            int32_t *E, int *log2g_out)
{
	int L = fa.log2g > fb.log2g ? fa.log2g : fb.log2g;
	uint32_t ma = lns_word_mag(fa, a), mb = lns_word_mag(fb, b);
	*log2g_out = L;
	if (ma == 0 || mb == 0) {
		*sign = 0;
		*E = 0;
		return 0;
	}
	int64_t ea = ((int64_t)ma + ka) * ((int64_t)1 << (L - fa.log2g));
	int64_t eb = ((int64_t)mb + kb) * ((int64_t)1 << (L - fb.log2g));
	*sign = lns_word_sign(fa, a) ^ lns_word_sign(fb, b);
	*E = clamp_e(ea + eb);
	return 1;
}

/* ---- Madam ---- */

LnsMadamParams lns_madam_defaults(void)
{
	LnsMadamParams p = {0x1p-7f, 3.0f, 10.0f, 0.999f};
	return p;
}

/* max = p_scale * RMS(w0): the sum of squares and the root in double (an accurate and
 * order-fixed sum; init runs once), the product rounded to fp32 once. All-zero w0: max = 1.
 * k_w = round_log(max) - M_U, the exact nearest exponent. */
int32_t lns_madam_init(LnsFormat fu, const LnsMadamParams *p, const float *w0, size_t n,
                       void *codes)
{
	double ss = 0.0;
	for (size_t i = 0; i < n; i++)
		ss += (double)w0[i] * (double)w0[i];
	float max = ss > 0.0 ? (float)((double)p->p_scale * sqrt(ss / (double)n)) : 1.0f;
	int32_t k_w = lns_round_log(fu.log2g, max) - lns_max_code(fu);
	LnsFormat fe = fu;
	fe.round = LNS_ROUND_NEAREST;
	fe.underflow = LNS_UF_MIN;
	fe.scale = LNS_SCALE_STATIC;
	for (size_t i = 0; i < n; i++) {
		int fl;
		lns_store(fu, codes, i, lns_encode(fe, k_w, w0[i], 0, &fl));
	}
	return k_w;
}

/* beta2^t by binary powering in double (a fixed sequence of double multiplies). */
static double pow_uint(double b, uint32_t t)
{
	double r = 1.0;
	while (t) {
		if (t & 1u)
			r *= b;
		b *= b;
		t >>= 1;
	}
	return r;
}

/* R(d): d itself when integral, else floor(d) + (u < d - floor(d)), unbiased. |d| is capped at
 * 2^16 first (any larger step clamps the code the same way). d - floor(d) is exact. */
static int32_t round_step(float d, uint32_t rnd)
{
	if (d > 65536.0f)
		d = 65536.0f;
	if (d < -65536.0f)
		d = -65536.0f;
	float fl = floorf(d);
	if (fl == d)
		return (int32_t)d;
	return (int32_t)fl + (lns_rng_unit(rnd) < d - fl);
}

/* Arithmetic, per element, in fp32 in this order (the contract):
 *   v  = beta2 * v + (1 - beta2) * (gw * gw)
 *   vh = v / bc,   bc = (float)(1 - beta2^t) with beta2^t and the subtraction in double (once
 *                  per step: in fp32, 1 - beta2^t would lose ~2^-24/(1-beta2) relative accuracy)
 *   gn = vh > 0 ? gw / sqrtf(vh) : 0;  gn = clamp(rintf(gn), -g_bound, g_bound) (half even)
 *   d  = ((lr * gU) * gn) * s_w,  R(d) with rnd = lns_rng_bits(rng_key, i)
 *   m  = clamp(m - R(d), 1, M_U); words with m = 0 are left alone. */
void lns_madam_update(LnsFormat fu, const LnsMadamParams *p, uint32_t t, void *codes,
                      const float *gw, float *v, size_t n, uint32_t rng_key)
{
	float bc = (float)(1.0 - pow_uint((double)p->beta2, t));
	float lrg = p->lr * (float)lns_gamma(fu), omb = 1.0f - p->beta2;
	int32_t M = lns_max_code(fu);
	for (size_t i = 0; i < n; i++) {
		float gi = gw[i];
		v[i] = p->beta2 * v[i] + omb * (gi * gi);
		float vh = v[i] / bc;
		float gn = vh > 0.0f ? gi / sqrtf(vh) : 0.0f;
		gn = rintf(gn);
		gn = gn > p->g_bound ? p->g_bound : gn < -p->g_bound ? -p->g_bound : gn;
		uint32_t w = lns_load(fu, codes, i);
		int32_t m = (int32_t)lns_word_mag(fu, w);
		if (m == 0)
			continue;
		int s = lns_word_sign(fu, w);
		float d = lrg * gn;
		int32_t step = round_step(s ? -d : d, lns_rng_bits(rng_key, (uint32_t)i));
		m -= step;
		m = m < 1 ? 1 : m > M ? M : m;
		lns_store(fu, codes, i, lns_word(fu, s, (uint32_t)m));
	}
}

/* ---- forward view ---- */

/* E in gamma v from E in gamma u: a left shift when g_v >= g_u, else a rounding right shift
 * (add half, floor; ties up). */
static int64_t view_e(int lu, int lv, int64_t E)
{
	if (lv >= lu)
		return E * ((int64_t)1 << (lv - lu));
	int sh = lu - lv;
	return floor_div(E + ((int64_t)1 << (sh - 1)), (int64_t)1 << sh);
}

int32_t lns_view_offset(LnsFormat fu, int32_t k_w, LnsFormat fv)
{
	int64_t top = view_e(fu.log2g, fv.log2g, (int64_t)lns_max_code(fu) + k_w);
	return clamp_e(top - lns_max_code(fv));
}

uint32_t lns_view_word(LnsFormat fu, int32_t k_w, uint32_t w, LnsFormat fv, int32_t k_v)
{
	uint32_t m = lns_word_mag(fu, w);
	if (m == 0)
		return 0;
	int64_t mv = view_e(fu.log2g, fv.log2g, (int64_t)m + k_w) - k_v;
	int64_t M = lns_max_code(fv);
	mv = mv < 1 ? 1 : mv > M ? M : mv;
	return lns_word(fv, lns_word_sign(fu, w), (uint32_t)mv);
}
