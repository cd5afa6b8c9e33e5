/* test_lns.c: ir/lns.c against independent long double references (LNS.md section 6).
 *
 * The references never read the generated tables: levels are exp2l, rounding decisions are
 * log2l. Nearest encoding is checked over every fp32 bit pattern, both signs, for two formats
 * (through lns_encode_tensor, in chunks), and through lns_encode (flags included) for formats
 * covering every gamma, subnormal levels, fp32 overflow and B = 2: every pattern in the half
 * octaves around the bottom, middle and top thresholds, a stride elsewhere. The exhaustive check
 * walks the patterns in increasing order next to the list of rounding thresholds, so the oracle
 * costs one comparison per pattern; each threshold is placed by evaluating t = g * log2l(x) - k at
 * the fp32 numbers around it. Inside the band |t - (n + 1/2)| < 2^-20 either neighbour is accepted
 * (LNS.md section 3).
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ir/lns.h"
#include "testlib.h"

enum { POS_INF = 0x7F800000 };

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

static LnsFormat fmt(int bits, int log2g, int round, int uf)
{
	LnsFormat f = {(uint8_t)bits, (uint8_t)log2g, LNS_SCALE_STATIC, (uint8_t)round,
	               (uint8_t)uf};
	return f;
}

/* xorshift64* for test data */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd32(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}
static double rnd_unit(void)
{
	return (rnd32() + 0.5) / 4294967296.0;
}
static double rnd_gauss(void)
{
	return sqrt(-2.0 * log(rnd_unit())) * cos(6.283185307179586 * rnd_unit());
}

static double secs(clock_t c0)
{
	return (double)(clock() - c0) / CLOCKS_PER_SEC;
}

/* ---- decode ---- */

/* 2^(E/g) as decode defines it: the correctly rounded fp32 for normal results; below, ldexpf of
 * the correctly rounded T[r] = 2^(r/g) (the documented rounding into the subnormals). */
static float ref_pow2(int L, int64_t E)
{
	int64_t g = (int64_t)1 << L, r = ((E % g) + g) % g, q = (E - r) / g;
	if (q > 127)
		return INFINITY;
	if (q >= -126)
		return (float)exp2l((long double)E / (long double)g);
	if (q < -300)
		return 0.0f;
	return ldexpf((float)exp2l((long double)r / (long double)g), (int)q);
}

static void test_pow2(void)
{
	for (int L = 0; L <= LNS_MAX_LOG2G; L++) {
		int64_t g = (int64_t)1 << L, bad = 0;
		for (int64_t E = -160 * g; E < 130 * g; E++) {
			float got = lns_pow2_e(L, (int32_t)E), want = ref_pow2(L, E);
			bad += f2u(got) != f2u(want);
		}
		CHECK_MSG(bad == 0, "pow2_e log2g %d: %lld mismatches", L, (long long)bad);
	}
	CHECK(lns_pow2_e(3, -2000000) == 0.0f);
	CHECK(isinf(lns_pow2_e(3, 2000000)));
	CHECK(lns_pow2_e(0, -149) == 0x1p-149f && lns_pow2_e(0, -150) == 0.0f);
}

static void test_decode(void)
{
	static const struct {
		int bits, L;
		int32_t k;
	} fs[] = {{8, 3, -60},      {8, 3, -1100},     {5, 1, -10}, {5, 1, -290}, {12, 7, -1500},
	          {16, 12, -40000}, {16, 12, -616000}, {8, 0, 120}, {2, 0, 0},    {11, 9, 3}};
	for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) {
		LnsFormat f = fmt(fs[i].bits, fs[i].L, LNS_ROUND_NEAREST, LNS_UF_ZERO);
		int64_t bad = 0, M = lns_max_code(f);
		for (uint32_t w = 0; w < (2u << (f.bits - 1)); w++) {
			uint32_t m = lns_word_mag(f, w);
			float want = m ? ref_pow2(f.log2g, (int64_t)m + fs[i].k) : 0.0f;
			if (m && lns_word_sign(f, w))
				want = -want;
			bad += f2u(lns_decode(f, fs[i].k, w)) != f2u(want);
		}
		CHECK_MSG(bad == 0, "decode lns%dg%d k=%d: %lld mismatches", fs[i].bits,
		          1 << fs[i].L, fs[i].k, (long long)bad);
		CHECK(lns_word(f, 1, (uint32_t)M) == (2u << (f.bits - 1)) - 1);
	}
	LnsFormat f = fmt(8, 3, 0, 0);
	uint8_t codes[3] = {0, 0x80 | 8, 16};
	float out[3];
	lns_decode_tensor(f, -8, codes, out, 3);
	CHECK(out[0] == 0.0f && out[1] == -1.0f && out[2] == 2.0f);
}

/* ---- nearest encoding, exhaustive ---- */

typedef struct Band {
	uint32_t a, b; /* x < a: t below the band; a <= x < b: inside (either); x >= b: above */
} Band;

static long double tval(uint32_t bits, int L, int32_t k)
{
	return ldexpl(log2l((long double)u2f(bits)), L) - (long double)k;
}

static int over(uint32_t bits, long double th, int strict, int L, int32_t k)
{
	long double t = tval(bits, L, k);
	return strict ? t > th : t >= th;
}

/* Smallest positive pattern (POS_INF if none is finite) with t > th (strict) or t >= th. */
static uint32_t first_over(long double th, int strict, int L, int32_t k)
{
	long double x = exp2l((th + (long double)k) / (long double)(1 << L));
	uint32_t b = x >= (long double)FLT_MAX ? 0x7F7FFFFFu : x <= 0x1p-149L ? 1u : f2u((float)x);
	while (b > 1 && over(b - 1, th, strict, L, k))
		b--;
	while (b < POS_INF && !over(b, th, strict, L, k))
		b++;
	return b;
}

/* Thresholds n + 1/2 for n = 0..M: below the first one the code underflows, above the last it
 * saturates. */
static Band *make_bands(LnsFormat f, int32_t k)
{
	int M = lns_max_code(f);
	Band *bd = malloc(sizeof *bd * (size_t)(M + 1));
	for (int i = 0; i <= M; i++) {
		long double th = i + 0.5L;
		bd[i].a = first_over(th - 0x1p-20L, 1, f.log2g, k);
		bd[i].b = first_over(th + 0x1p-20L, 0, f.log2g, k);
	}
	return bd;
}

/* What nearest encoding must give once c thresholds lie below |x|. */
static uint32_t expect_word(LnsFormat f, int c, int sign, int *fl)
{
	int M = lns_max_code(f);
	*fl = c > M ? LNS_F_SAT : c < 1 ? LNS_F_UNF : 0;
	if (c > M)
		return lns_word(f, sign, (uint32_t)M);
	if (c >= 1)
		return lns_word(f, sign, (uint32_t)c);
	return f.underflow == LNS_UF_MIN ? lns_word(f, sign, 1) : 0;
}

typedef struct Sweep {
	LnsFormat f;
	int32_t k;
	const Band *bd;
	int nb, i; /* i: thresholds passed (bd[i].b <= current pattern) */
	uint64_t checked, bad;
} Sweep;

/* Advances to pattern bits (ascending) and returns whether (w, fl) is allowed for sign. */
static int sweep_ok(Sweep *s, uint32_t bits, int sign, uint32_t w, int fl, int use_fl)
{
	while (s->i < s->nb && bits >= s->bd[s->i].b)
		s->i++;
	int efl;
	uint32_t ew = expect_word(s->f, s->i, sign, &efl);
	if (w == ew && (!use_fl || fl == efl))
		return 1;
	if (s->i < s->nb && bits >= s->bd[s->i].a) {
		ew = expect_word(s->f, s->i + 1, sign, &efl);
		return w == ew && (!use_fl || fl == efl);
	}
	return 0;
}

static void report_bad(Sweep *s, uint32_t bits, uint32_t w)
{
	if (s->bad++ < 5)
		fprintf(stderr, "  lns%dg%d k=%d: x=%a (0x%08X) -> 0x%X (t = %.9Lf)\n", s->f.bits,
		        1 << s->f.log2g, s->k, (double)u2f(bits), (unsigned)bits, (unsigned)w,
		        tval(bits & 0x7FFFFFFFu, s->f.log2g, s->k));
}

/* Counts codes[j0..j1) (container of f) different from w. */
static uint64_t count_ne(LnsFormat f, const void *codes, uint32_t j0, uint32_t j1, uint32_t w)
{
	uint64_t bad = 0;
	if (lns_container_bytes(f) == 1) {
		const uint8_t *c = codes;
		for (uint32_t j = j0; j < j1; j++)
			bad += c[j] != w;
	} else {
		const uint16_t *c = codes;
		for (uint32_t j = j0; j < j1; j++)
			bad += c[j] != w;
	}
	return bad;
}

/* Checks codes of patterns c0+j (positive: codes[j], negative: codes[n+j]), j < n: runs of
 * patterns between two bands must all hold one word; patterns inside a band are checked one by
 * one against both neighbours. */
static void check_chunk(Sweep *s, const void *codes, uint32_t c0, uint32_t n)
{
	for (uint32_t j = 0; j < n;) {
		uint32_t bits = c0 + j;
		while (s->i < s->nb && bits >= s->bd[s->i].b)
			s->i++;
		int inside = s->i < s->nb && bits >= s->bd[s->i].a;
		uint32_t end = inside ? s->bd[s->i].b : s->i < s->nb ? s->bd[s->i].a : POS_INF;
		uint32_t j1 = end - c0 < n ? end - c0 : n;
		if (inside) {
			for (; j < j1; j++) {
				uint32_t wp = lns_load(s->f, codes, j),
				         wn = lns_load(s->f, codes, n + j);
				if (!sweep_ok(s, c0 + j, 0, wp, 0, 0))
					report_bad(s, c0 + j, wp);
				if (!sweep_ok(s, c0 + j, 1, wn, 0, 0))
					report_bad(s, (c0 + j) | 0x80000000u, wn);
			}
			continue;
		}
		int fl;
		uint64_t bad =
		    count_ne(s->f, codes, j, j1, expect_word(s->f, s->i, 0, &fl)) +
		    count_ne(s->f, codes, n + j, n + j1, expect_word(s->f, s->i, 1, &fl));
		if (bad) {
			for (; j < j1; j++) /* report the details */
				if (!sweep_ok(s, c0 + j, 0, lns_load(s->f, codes, j), 0, 0) ||
				    !sweep_ok(s, c0 + j, 1, lns_load(s->f, codes, n + j), 0, 0))
					report_bad(s, c0 + j, lns_load(s->f, codes, j));
		}
		j = j1;
	}
	s->checked += 2 * (uint64_t)n;
}

/* Every positive pattern in [lo, hi) and its negative through lns_encode_tensor. */
static void sweep_tensor(Sweep *s, uint32_t lo, uint32_t hi)
{
	enum { CH = 1 << 15 };
	static float xs[2 * CH];
	static uint16_t codes[2 * CH];
	LnsScaleState st;
	memset(&st, 0, sizeof st);
	st.k = s->k;
	for (uint32_t c0 = lo; c0 < hi;) {
		uint32_t n = hi - c0 < CH ? hi - c0 : CH;
		for (uint32_t j = 0; j < n; j++) {
			xs[j] = u2f(c0 + j);
			xs[n + j] = -xs[j];
		}
		LnsStats stats;
		lns_encode_tensor(s->f, &st, xs, codes, 2 * n, 0, 0, &stats);
		check_chunk(s, codes, c0, n);
		c0 += n;
	}
}

/* One positive pattern and its negative through lns_encode, flags included. */
static void check_elem(Sweep *s, uint32_t bits)
{
	int fp, fn;
	uint32_t wp = lns_encode(s->f, s->k, u2f(bits), 0, &fp);
	uint32_t wn = lns_encode(s->f, s->k, -u2f(bits), 0, &fn);
	if (!sweep_ok(s, bits, 0, wp, fp, 1))
		report_bad(s, bits, wp);
	if (!sweep_ok(s, bits, 1, wn, fn, 1))
		report_bad(s, bits | 0x80000000u, wn);
	s->checked += 2;
}

static void sweep_init(Sweep *s, LnsFormat f, int32_t k, const Band *bd)
{
	memset(s, 0, sizeof *s);
	s->f = f;
	s->k = k;
	s->bd = bd;
	s->nb = lns_max_code(f) + 1;
}

/* Every finite nonzero pattern, both signs, through lns_encode_tensor. */
static void encode_full(int bits, int L, int32_t k)
{
	clock_t c0 = clock();
	LnsFormat f = fmt(bits, L, LNS_ROUND_NEAREST, LNS_UF_ZERO);
	Band *bd = make_bands(f, k);
	Sweep s;
	sweep_init(&s, f, k, bd);
	sweep_tensor(&s, 1, POS_INF);
	CHECK_MSG(s.bad == 0, "encode lns%dg%d k=%d: %llu of %llu patterns wrong", bits, 1 << L, k,
	          (unsigned long long)s.bad, (unsigned long long)s.checked);
	printf("  exhaustive lns%dg%d k=%d: %llu patterns, %.1f s\n", bits, 1 << L, k,
	       (unsigned long long)s.checked, secs(c0));
	free(bd);
}

static int near(uint32_t b, uint32_t c)
{
	return b + (1u << 21) >= c && b < c + (1u << 21);
}

/* Every pattern in the half octaves around the bottom, middle and top thresholds, every 97th
 * in between and every 4099th outside the range; lns_encode, both signs, with flags. */
static void encode_window(int bits, int L, int32_t k, int uf)
{
	LnsFormat f = fmt(bits, L, LNS_ROUND_NEAREST, uf);
	Band *bd = make_bands(f, k);
	int M = lns_max_code(f);
	Sweep s;
	sweep_init(&s, f, k, bd);
	for (uint32_t b = 1; b < POS_INF;) {
		check_elem(&s, b);
		if (near(b, bd[0].a) || near(b, bd[M / 2].a) || near(b, bd[M].b))
			b++;
		else
			b += b >= bd[0].a && b < bd[M].b ? 97 : 4099;
	}
	CHECK_MSG(s.bad == 0, "encode lns%dg%d k=%d uf=%d: %llu of %llu patterns wrong", bits,
	          1 << L, k, uf, (unsigned long long)s.bad, (unsigned long long)s.checked);
	free(bd);
}

static void test_encode_nearest(int quick)
{
	clock_t c0 = clock();
	static const struct {
		int bits, L;
		int32_t k;
		int uf;
	} ws[] = {
	    {6, 0, -20, LNS_UF_ZERO},       {5, 1, -10, LNS_UF_MIN},
	    {6, 2, -590, LNS_UF_ZERO},      {8, 3, -60, LNS_UF_MIN},
	    {8, 3, -1100, LNS_UF_ZERO},     {7, 4, -20, LNS_UF_ZERO},
	    {9, 5, 100, LNS_UF_MIN},        {10, 6, -300, LNS_UF_ZERO},
	    {12, 7, -1500, LNS_UF_ZERO},    {13, 8, -4096, LNS_UF_MIN},
	    {14, 9, -5000, LNS_UF_ZERO},    {15, 10, -17000, LNS_UF_ZERO},
	    {16, 11, -60000, LNS_UF_ZERO},  {16, 12, -40000, LNS_UF_MIN},
	    {11, 12, -610400, LNS_UF_ZERO}, {8, 0, 120, LNS_UF_ZERO},
	    {2, 0, 0, LNS_UF_MIN},          {2, 3, -1, LNS_UF_ZERO},
	};
	for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
		encode_window(ws[i].bits, ws[i].L, ws[i].k, ws[i].uf);
	printf("  windowed sweeps: %.1f s\n", secs(c0));
	if (quick) {
		printf("  --quick: exhaustive sweeps over all 2^32 patterns NOT run\n");
	} else {
		encode_full(8, 3, -60);
		encode_full(5, 1, -10);
	}
	int fl;
	LnsFormat f = fmt(8, 3, 0, 0);
	CHECK(lns_encode(f, -60, 0.0f, 0, &fl) == 0 && fl == 0);
	CHECK(lns_encode(f, -60, -0.0f, 0, &fl) == 0 && fl == 0);
	CHECK(lns_encode(f, -60, 1.0f, 0, NULL) == 60);
}

/* ---- exact logarithms ---- */

static void check_logs(int L, uint32_t bits, int64_t *bad)
{
	float x = u2f(bits);
	long double g = (long double)(1 << L), t = g * log2l((long double)x);
	int32_t c = lns_ceil_log(L, x), f = lns_floor_log(L, x), r = lns_round_log(L, x);
	bad[0] += !(exp2l(c / g) >= x && exp2l((c - 1) / g) < x);
	bad[1] += !(ref_pow2(L, f) <= x && ref_pow2(L, (int64_t)f + 1) > x);
	long double d = fabsl(t - r);
	bad[2] += !(d < 0.5L || (d - 0.5L < 0x1p-20L));
	bad[3] +=
	    lns_round_log(L, -x) != r || lns_floor_log(L, -x) != f || lns_ceil_log(L, -x) != c;
}

static void test_logs(void)
{
	for (int L = 0; L <= LNS_MAX_LOG2G; L++) {
		int64_t bad[4] = {0, 0, 0, 0}, g = (int64_t)1 << L;
		for (uint32_t b = 1; b < POS_INF; b += 65521)
			check_logs(L, b, bad);
		for (uint32_t b = 1; b < 0x01000000u;
		     b += 251) /* subnormals and the first normals */
			check_logs(L, b, bad);
		for (int64_t n = -150 * g; n < 128 * g; n += 1 + (n & 7) * (g >> 4)) {
			uint32_t b = f2u(ref_pow2(L, n));
			if (b == 0 || b >= POS_INF)
				continue;
			for (uint32_t d = b - 1; d <= b + 1; d++)
				if (d >= 1 && d < POS_INF)
					check_logs(L, d, bad);
		}
		CHECK_MSG(bad[0] == 0, "ceil_log log2g %d: %lld wrong", L, (long long)bad[0]);
		CHECK_MSG(bad[1] == 0, "floor_log log2g %d: %lld wrong", L, (long long)bad[1]);
		CHECK_MSG(bad[2] == 0, "round_log log2g %d: %lld wrong", L, (long long)bad[2]);
		CHECK_MSG(bad[3] == 0, "logs of -x log2g %d: %lld wrong", L, (long long)bad[3]);
	}
	CHECK(lns_ceil_log(3, 1.0f) == 0 && lns_ceil_log(3, 2.0f) == 8 &&
	      lns_ceil_log(3, 0.5f) == -8);
	CHECK(lns_ceil_log(3, 1.0000001f) == 1 && lns_floor_log(3, 1.9999999f) == 7);
	CHECK(lns_floor_log(0, 0x1p-149f) == -149 && lns_round_log(12, 0x1p-149f) == -149 * 4096);
}

/* ---- stochastic rounding ---- */

/* Mean of decode(encode(x)) over N counter-RNG draws (a stream keyed by the case):
 * |mean - x| within 3 standard errors. */
static void check_unbiased(LnsFormat f, int32_t k, float x, const char *what)
{
	uint32_t key = lns_rng_key(2024, f2u(x), (uint32_t)k * 32u + f.bits);
	enum { N = 1000000 };
	double sum = 0, sum2 = 0;
	for (uint32_t i = 0; i < N; i++) {
		int fl;
		double v = lns_decode(f, k, lns_encode(f, k, x, lns_rng_bits(key, i), &fl));
		sum += v;
		sum2 += v * v;
	}
	double mean = sum / N, var = sum2 / N - mean * mean, se = sqrt(var > 0 ? var / N : 0);
	CHECK_MSG(fabs(mean - x) <= 3 * se + 1e-12 * fabs(x),
	          "%s: x=%.9g mean=%.9g (%.2f standard errors)", what, (double)x, mean,
	          se > 0 ? fabs(mean - x) / se : INFINITY);
}

static void test_stochastic_unbiased(void)
{
	LnsFormat f = fmt(5, 1, LNS_ROUND_STOCHASTIC, LNS_UF_ZERO);
	int32_t k = -10;
	check_unbiased(f, k, 0.3f, "lns5g2 sr interior");
	check_unbiased(f, k, -2.2f, "lns5g2 sr interior, negative");
	check_unbiased(f, k, lns_decode(f, k, 7), "lns5g2 sr on a level");
	check_unbiased(fmt(8, 3, LNS_ROUND_STOCHASTIC, LNS_UF_ZERO), -60, 0.1234f,
	               "lns8g8 sr interior");
	check_unbiased(fmt(12, 7, LNS_ROUND_STOCHASTIC, LNS_UF_ZERO), -1500, 3.3e-3f,
	               "lns12g128 sr interior");
	f.underflow = LNS_UF_STOCHASTIC;
	float L = lns_decode(f, k, 1);
	check_unbiased(f, k, 0.3f * L, "sr, uf=sr, deep below");
	check_unbiased(f, k, 0.9f * L, "sr, uf=sr, below");
	check_unbiased(f, k, -0.999f * L, "sr, uf=sr, just below");
	check_unbiased(f, k, 1.05f * L, "sr, uf=sr, just above");
	check_unbiased(f, k, 1.3f * L, "sr, uf=sr, above");
	check_unbiased(f, k, 0.01f * L, "sr, uf=sr, far below");
	f.round = LNS_ROUND_NEAREST;
	check_unbiased(f, k, 0.5f * L, "rn, uf=sr, below");
	check_unbiased(f, k, -0.2f * L, "rn, uf=sr, deep below");
	/* sr on subnormal levels: lns5g2 k=-290 puts levels 2^-144.5 .. 2^-137.5 */
	check_unbiased(fmt(5, 1, LNS_ROUND_STOCHASTIC, LNS_UF_STOCHASTIC), -290, 0x1.3p-143f,
	               "sr on subnormal levels");
	check_unbiased(fmt(5, 1, LNS_ROUND_STOCHASTIC, LNS_UF_STOCHASTIC), -290, 0x1p-146f,
	               "sr, uf=sr, subnormal");
}

static void test_stochastic_codes(void)
{
	/* the stochastic code is one of the two neighbouring levels */
	LnsFormat g = fmt(8, 3, LNS_ROUND_STOCHASTIC, LNS_UF_ZERO);
	int64_t bad = 0;
	for (int i = 0; i < 200000; i++) {
		float x = (float)exp2(rnd_unit() * 14.0 - 6.0);
		int fl;
		uint32_t w = lns_encode(g, -60, x, rnd32(), &fl);
		int64_t m = lns_word_mag(g, w);
		bad += !(ref_pow2(3, m - 60 - 1) < x && x < ref_pow2(3, m - 60 + 1)) || fl != 0;
	}
	CHECK_MSG(bad == 0, "sr neighbours: %lld wrong", (long long)bad);

	/* tensor encode = element encode with rnd_bits(key, i): independent of chunking */
	enum { N = 4096 };
	static float xs[N];
	static uint8_t c1[N];
	for (int i = 0; i < N; i++)
		xs[i] = (float)(rnd_gauss() * 0.5);
	xs[7] = 0.0f;
	xs[8] = 1e-9f;
	LnsFormat h = fmt(5, 1, LNS_ROUND_STOCHASTIC, LNS_UF_STOCHASTIC);
	uint32_t key = lns_rng_key(1234, 1, 2);
	LnsScaleState st;
	memset(&st, 0, sizeof st);
	h.scale = LNS_SCALE_CURRENT;
	int32_t kt = lns_encode_tensor(h, &st, xs, c1, N, key, 0, NULL);
	bad = 0;
	for (uint32_t i = 0; i < N; i++)
		bad += c1[i] != lns_encode(h, kt, xs[i], lns_rng_bits(key, i), NULL);
	CHECK(bad == 0 && c1[7] == 0);
}

/* ---- scaling ---- */

/* Current (k from this tensor's amax, telemetry) and static scaling. */
static void test_scale_current(void)
{
	LnsFormat f = fmt(8, 3, LNS_ROUND_NEAREST, LNS_UF_ZERO);
	f.scale = LNS_SCALE_CURRENT;
	LnsScaleState st;
	memset(&st, 0, sizeof st);
	float x[4] = {0.5f, -3.7f, 1e-6f, 2.0f};
	uint8_t codes[64];
	LnsStats s;
	int32_t k = lns_encode_tensor(f, &st, x, codes, 4, 0, 1, &s);
	CHECK(k == lns_ceil_log(3, 3.7f) - 127 && k == lns_scale_current(f, 3.7f));
	CHECK(lns_pow2_e(3, 127 + k) >= 3.7f && lns_pow2_e(3, 126 + k) < 3.7f);
	CHECK(s.amax == 3.7f && s.n_total == 4 && s.n_sat == 0 && s.n_unf == 1);
	CHECK(lns_word_mag(f, codes[1]) ==
	      (uint32_t)(127 + lns_round_log(3, 3.7f) - lns_ceil_log(3, 3.7f)));
	CHECK(lns_word_sign(f, codes[1]) == 1 && codes[2] == 0);
	CHECK(st.nhist == 1 && st.hpos == 1 && st.hist[0] == 3.7f && st.k == k);
	float z[3] = {0, -0.0f, 0};
	CHECK(lns_encode_tensor(f, &st, z, codes, 3, 0, 0, &s) == 0 && s.amax == 0.0f);
	CHECK(codes[0] == 0 && codes[1] == 0 && s.n_unf == 0);
	CHECK(lns_scale_current(f, 0.0f) == 0);

	f.scale = LNS_SCALE_STATIC;
	st.k = -200;
	CHECK(lns_encode_tensor(f, &st, x, codes, 4, 0, 0, &s) == -200);
	CHECK(s.n_sat == 3 && s.n_unf == 0 && lns_word_mag(f, codes[0]) == 127);
}

/* Delayed: first step current, then the max over the last 16 recorded amaxes (ring wraps). */
static void test_scale_delayed(void)
{
	LnsFormat f = fmt(8, 3, LNS_ROUND_NEAREST, LNS_UF_ZERO);
	f.scale = LNS_SCALE_DELAYED;
	LnsScaleState st;
	memset(&st, 0, sizeof st);
	uint8_t codes[4];
	LnsStats s;
	float amax[40];
	uint64_t nsat = 0, nunf = 0;
	for (int t = 0; t < 40; t++) {
		amax[t] = t == 3 ? 100.0f : t == 25 ? 1e-3f : 1.0f + (float)(t % 5);
		float xt[3] = {amax[t], -amax[t] / 3, amax[t] * 1e-7f};
		float hmax = 0;
		for (int j = t - 16; j < t; j++)
			if (j >= 0 && amax[j] > hmax)
				hmax = amax[j];
		int32_t want = lns_scale_current(f, t == 0 ? amax[0] : hmax);
		CHECK(lns_scale_pick(f, &st, amax[t]) == want);
		int32_t k = lns_encode_tensor(f, &st, xt, codes, 3, 0, 1, &s);
		CHECK_MSG(k == want, "delayed step %d: k %d, want %d", t, k, want);
		uint64_t sat = 0;
		for (int j = 0; j < 3; j++) /* above the midpoint top * 2^(1/16) */
			sat += fabsf(xt[j]) > lns_pow2_e(3, 127 + want) * 1.0442737824f;
		CHECK_MSG(s.n_sat == sat, "delayed step %d: n_sat %llu", t,
		          (unsigned long long)s.n_sat);
		CHECK(st.nhist == (t + 1 < LNS_HIST ? t + 1 : LNS_HIST) &&
		      st.hpos == (t + 1) % LNS_HIST);
		CHECK(st.hist[t % LNS_HIST] == amax[t] && st.k == k);
		nsat += s.n_sat;
		nunf += s.n_unf;
	}
	CHECK(st.n_total == 120 && st.n_sat == nsat && st.n_unf == nunf && nsat == 4 && nunf == 40);
	LnsScaleState before = st;
	float x[2] = {1e5f, 1.0f};
	lns_encode_tensor(f, &st, x, codes, 2, 0, 0, &s); /* eval: no record */
	CHECK(memcmp(&before, &st, sizeof st) == 0 && s.n_sat == 1);
}

/* ---- Madam ---- */

enum { MN = 256 };

/* Random weights with a zero, two tiny ones and one above max; checks lns_madam_init. */
static int32_t madam_init_check(LnsFormat fu, const LnsMadamParams *p, uint16_t *codes, float *max)
{
	static float w0[MN];
	for (int i = 0; i < MN; i++)
		w0[i] = (float)(rnd_gauss() * 0.05);
	w0[5] = 0.0f;
	w0[6] = 1e-12f;
	w0[7] = -1e-12f;
	w0[8] = 1.0f; /* above max: saturates at M_U */
	double ss = 0;
	for (int i = 0; i < MN; i++)
		ss += (double)w0[i] * w0[i];
	*max = (float)(3.0 * sqrt(ss / MN));
	int32_t kw = lns_madam_init(fu, p, w0, MN, codes);
	int M = lns_max_code(fu);
	CHECK(kw == lns_round_log(7, *max) - M);
	CHECK(fabs(128 * log2(lns_decode(fu, kw, (uint32_t)M) / (double)*max)) <= 0.5 + 1e-6);
	LnsFormat fe = fmt(12, 7, LNS_ROUND_NEAREST, LNS_UF_MIN);
	int64_t bad = 0;
	for (int i = 0; i < MN; i++)
		bad += codes[i] != lns_encode(fe, kw, w0[i], 0, NULL);
	CHECK(bad == 0 && codes[5] == 0 && codes[6] == 1 && codes[7] == lns_word(fu, 1, 1));
	CHECK(codes[8] == (uint32_t)M);
	return kw;
}

typedef struct MadamCount {
	int64_t far, moved, exact, bad;
} MadamCount;

/* One element after one step: the fp32 reference w * 2^(-lr * gn * sign(w)), clamped to max,
 * must lie within one code step (the bottom code 1 may stand for anything below it). */
static void madam_check(LnsFormat fu, int32_t kw, float lr, float max, float gn, uint32_t prev,
                        uint32_t now, MadamCount *c)
{
	uint32_t mb = lns_word_mag(fu, prev), ma = lns_word_mag(fu, now);
	int M = lns_max_code(fu), s = lns_word_sign(fu, prev);
	if (mb == 0) {
		c->bad += now != prev;
		return;
	}
	c->bad += lns_word_sign(fu, now) != s || ma < 1 || ma > (uint32_t)M;
	double wr = lns_decode(fu, kw, prev) * exp2(-(double)lr * gn * (s ? -1 : 1));
	wr = wr > max ? max : wr < -max ? -max : wr;
	double tr = 128 * log2(fabs(wr)) - kw;
	c->far += !(ma == 1 && tr < 1) && fabs(ma - tr) > 1 + 1e-6;
	c->moved += ma != mb;
	int64_t want = (int64_t)mb - (int64_t)gn * (s ? -1 : 1); /* d when lr * gU = 1 */
	want = want < 1 ? 1 : want > M ? M : want;
	c->exact += (int64_t)ma == want;
}

/* steps random Madam steps on MN weights; the test recomputes v and gn in fp32 (LNS.md). */
static void madam_run(float lr, uint32_t seed, int steps)
{
	LnsFormat fu = fmt(12, 7, LNS_ROUND_NEAREST, LNS_UF_ZERO);
	LnsMadamParams p = lns_madam_defaults();
	p.lr = lr;
	static float gw[MN], v[MN], vt[MN];
	static uint16_t codes[MN], prev[MN];
	float max;
	int32_t kw = madam_init_check(fu, &p, codes, &max);
	memset(v, 0, sizeof v);
	memset(vt, 0, sizeof vt);
	MadamCount c = {0, 0, 0, 0};
	int64_t vbad = 0;
	for (int t = 1; t <= steps; t++) {
		double scale = exp(rnd_gauss() * 2.0);
		for (int i = 0; i < MN; i++)
			gw[i] = (rnd32() % 10 == 0) ? 0.0f : (float)(rnd_gauss() * scale);
		memcpy(prev, codes, sizeof codes);
		lns_madam_update(fu, &p, (uint32_t)t, codes, gw, v, MN,
		                 lns_rng_key(seed, (uint32_t)t, 9));
		float bc = (float)(1.0 - pow(0.999, t));
		for (int i = 0; i < MN; i++) {
			vt[i] = 0.999f * vt[i] + (1.0f - 0.999f) * (gw[i] * gw[i]);
			vbad += f2u(vt[i]) != f2u(v[i]);
			float vh = vt[i] / bc, gn = rintf(vh > 0 ? gw[i] / sqrtf(vh) : 0.0f);
			gn = gn > 10 ? 10 : gn < -10 ? -10 : gn;
			madam_check(fu, kw, lr, max, gn, prev[i], codes[i], &c);
		}
	}
	CHECK_MSG(c.far == 0, "madam lr=%g: %lld updates more than one step from the reference",
	          (double)lr, (long long)c.far);
	CHECK(vbad == 0 && c.bad == 0 && c.moved > 0 && codes[5] == 0);
	if (lr == 0x1p-7f) /* lr * gU = 1: every step is exact */
		CHECK_MSG(c.exact == (int64_t)steps * (MN - 1), "madam: %lld exact of %lld",
		          (long long)c.exact, (long long)steps * (MN - 1));
}

static void test_madam(void)
{
	LnsMadamParams p = lns_madam_defaults();
	CHECK(p.lr == 0x1p-7f && p.p_scale == 3.0f && p.g_bound == 10.0f && p.beta2 == 0.999f);
	madam_run(0x1p-7f, 11, 300);
	madam_run(0.003f, 12, 300);
	madam_run(0.05f, 13, 200);
	/* all-zero init: max = 1, every code zero */
	LnsFormat fu = fmt(12, 7, 0, 0);
	float z[4] = {0, 0, 0, 0};
	uint16_t c[4] = {9, 9, 9, 9};
	CHECK(lns_madam_init(fu, &p, z, 4, c) == -2047 && c[0] == 0 && c[3] == 0);
	/* R(d) is unbiased: lr*gU = 0.5 with gn = 1 moves a code by 0.5 on average */
	enum { N = 20000 };
	static uint16_t cs[N];
	static float g[N], v[N];
	p.lr = 0x1p-8f;
	for (int i = 0; i < N; i++) {
		cs[i] = 1000;
		g[i] = 1.0f;
		v[i] = 0.0f;
	}
	lns_madam_update(fu, &p, 1, cs, g, v, N, 77);
	double mean = 0;
	for (int i = 0; i < N; i++)
		mean += 1000 - cs[i];
	mean /= N;
	CHECK_MSG(fabs(mean - 0.5) < 3 * 0.5 / sqrt(N), "R(d) mean %f", mean);
}

/* ---- forward view, mul ---- */

static void test_view(void)
{
	LnsFormat fu = fmt(12, 7, 0, LNS_UF_MIN), fv = fmt(8, 3, 0, 0);
	static const int32_t kws[] = {-2047 - 300, -2047 + 5, -1000 - 37, -5000, -2047 + 3000};
	for (size_t i = 0; i < sizeof kws / sizeof kws[0]; i++) {
		int32_t kw = kws[i], kv = lns_view_offset(fu, kw, fv);
		CHECK(kv == (int32_t)floorl((2047 + kw) / 16.0L + 0.5L) - 127);
		CHECK(lns_view_word(fu, kw, 2047, fv, kv) == 127);
		CHECK(lns_view_word(fu, kw, lns_word(fu, 1, 2047), fv, kv) == lns_word(fv, 1, 127));
		CHECK(lns_view_word(fu, kw, 0, fv, kv) == 0 &&
		      lns_view_word(fu, kw, 0x800, fv, kv) == 0);
		CHECK(lns_view_word(fu, kw, 1, fv, kv) >= 1);
		int64_t bad = 0, ties = 0;
		for (uint32_t w = 1; w < 4096; w++) {
			int64_t m = lns_word_mag(fu, w);
			if (m == 0)
				continue;
			long double e8 = floorl((m + kw) / 16.0L + 0.5L);
			int64_t mv = (int64_t)e8 - kv;
			mv = mv < 1 ? 1 : mv > 127 ? 127 : mv;
			bad += lns_view_word(fu, kw, w, fv, kv) !=
			       lns_word(fv, lns_word_sign(fu, w), (uint32_t)mv);
			if (((m + kw) % 16 + 16) % 16 == 8) {
				ties++;
				bad += e8 * 16 != (long double)(m + kw) + 8; /* ties go up */
			}
		}
		CHECK_MSG(bad == 0 && ties > 0, "view k_w=%d: %lld wrong", kw, (long long)bad);
	}
	/* widening view: exact left shift */
	int32_t kv = lns_view_offset(fv, -60, fu);
	CHECK(kv == 127 * 16 - 960 - 2047);
	CHECK(lns_view_word(fv, -60, 100, fu, kv) == (uint32_t)((100 - 60) * 16 - kv));
}

static void test_mul(void)
{
	LnsFormat fa = fmt(5, 1, 0, 0), fb = fmt(8, 3, 0, 0), fc = fmt(12, 7, 0, 0);
	int64_t bad = 0;
	for (uint32_t a = 0; a < 32; a++)
		for (uint32_t b = 0; b < 256; b++) {
			int s, L;
			int32_t E;
			int r = lns_mul(fa, -10, a, fb, -60, b, &s, &E, &L);
			uint32_t ma = lns_word_mag(fa, a), mb = lns_word_mag(fb, b);
			if (!ma || !mb) {
				bad += r != 0 || s != 0 || E != 0;
				continue;
			}
			double want = (double)lns_decode(fa, -10, a) * lns_decode(fb, -60, b);
			double got = lns_pow2_e(L, E) * (s ? -1.0 : 1.0);
			bad += r == 0 || L != 3 || E != ((int32_t)ma - 10) * 4 + (int32_t)mb - 60;
			bad += fabs(got - want) > fabs(want) * 0x1p-22;
		}
	for (int i = 0; i < 100000; i++) {
		uint32_t a = rnd32() & 0xFFF, b = rnd32() & 0xFF;
		int s, L;
		int32_t E;
		if (!lns_mul(fc, -1500, a, fb, -60, b, &s, &E, &L))
			continue;
		double want = (double)lns_decode(fc, -1500, a) * lns_decode(fb, -60, b);
		double got = lns_pow2_e(L, E) * (s ? -1.0 : 1.0);
		bad += L != 7 || fabs(got - want) > fabs(want) * 0x1p-22;
	}
	CHECK_MSG(bad == 0, "mul: %lld wrong", (long long)bad);
}

/* ---- formats, words, rng ---- */

static void test_format_parse(void)
{
	LnsFormat f;
	char buf[64];
	CHECK(lns_format_parse("lns8g8", &f) == 0);
	CHECK(f.bits == 8 && f.log2g == 3 && f.round == LNS_ROUND_NEAREST);
	CHECK(f.scale == LNS_SCALE_DELAYED && f.underflow == LNS_UF_ZERO);
	CHECK(strcmp(lns_format_str(f, buf, sizeof buf), "lns8g8") == 0);
	CHECK(strcmp(lns_format_str_full(f, buf, sizeof buf), "lns8g8:rn:delayed:uf=zero") == 0);
	CHECK(lns_format_parse("lns5g2:uf=sr:sr:current", &f) == 0);
	CHECK(f.round == LNS_ROUND_STOCHASTIC && f.scale == LNS_SCALE_CURRENT);
	CHECK(f.underflow == LNS_UF_STOCHASTIC);
	CHECK(strcmp(lns_format_str_full(f, buf, sizeof buf), "lns5g2:sr:current:uf=sr") == 0);
	CHECK(lns_format_parse("lns16g4096:static:uf=min", &f) == 0 && f.log2g == 12);
	CHECK(f.scale == LNS_SCALE_STATIC && f.underflow == LNS_UF_MIN && lns_format_valid(f));
	CHECK(lns_format_parse("lns2g1", &f) == 0 && f.bits == 2 && f.log2g == 0);
	int64_t bad = 0;
	for (int b = 2; b <= 16; b++)
		for (int L = 0; L <= 12; L++)
			for (int m = 0; m < 18; m++) {
				LnsFormat a = {(uint8_t)b, (uint8_t)L, (uint8_t)(m % 3),
				               (uint8_t)(m / 9), (uint8_t)(m / 3 % 3)};
				LnsFormat c;
				char *str = lns_format_str_full(a, buf, sizeof buf);
				bad +=
				    lns_format_parse(str, &c) != 0 || memcmp(&a, &c, sizeof a) != 0;
				str = lns_format_str(a, buf, sizeof buf);
				bad += lns_format_parse(str, &c) != 0 || c.bits != a.bits ||
				       c.log2g != a.log2g;
			}
	CHECK_MSG(bad == 0, "format round trip: %lld wrong", (long long)bad);
	static const char *const rej[] = {"lns1g8",
	                                  "lns17g8",
	                                  "lns8g3",
	                                  "lns8g8192",
	                                  "lns8g0",
	                                  "lns8g",
	                                  "lnsg8",
	                                  "lns8",
	                                  "lns8g8 ",
	                                  "LNS8g8",
	                                  "lns08g8",
	                                  "lns8g08",
	                                  "lns8g8:",
	                                  "lns8g8:x",
	                                  "lns8g8:sr:rn",
	                                  "lns-8g8",
	                                  "lns8g8:uf=",
	                                  "lns+8g8",
	                                  "lns8g8:uf=sr:uf=min",
	                                  "lns99999999999g8",
	                                  "",
	                                  "lns8g8::sr",
	                                  "lns8g8:sr:",
	                                  "lns8g8:current:static"};
	for (size_t i = 0; i < sizeof rej / sizeof rej[0]; i++) {
		f.bits = 99;
		CHECK_MSG(lns_format_parse(rej[i], &f) != 0 && f.bits == 99, "accepted '%s'",
		          rej[i]);
	}
}

static void test_format_traits(void)
{
	LnsFormat v = {8, 3, 0, 0, 0};
	CHECK(lns_format_valid(v) && lns_gamma(v) == 8 && lns_max_code(v) == 127);
	CHECK(lns_container_bytes(v) == 1);
	v.bits = 9;
	CHECK(lns_container_bytes(v) == 2 && lns_max_code(v) == 255);
	v.bits = 1;
	CHECK(!lns_format_valid(v));
	v.bits = 8;
	v.log2g = 13;
	CHECK(!lns_format_valid(v));
	v.log2g = 3;
	v.underflow = 3;
	CHECK(!lns_format_valid(v));

	uint8_t c8[4] = {0};
	uint16_t c16[4] = {0};
	LnsFormat f8 = fmt(8, 3, 0, 0), f12 = fmt(12, 7, 0, 0);
	lns_store(f8, c8, 2, lns_word(f8, 1, 5));
	lns_store(f12, c16, 3, lns_word(f12, 1, 2047));
	CHECK(c8[2] == 0x85 && lns_load(f8, c8, 2) == 0x85 && c8[1] == 0 && c8[3] == 0);
	CHECK(c16[3] == 0xFFF && lns_load(f12, c16, 3) == 0xFFF && c16[2] == 0);
	CHECK(lns_word_mag(f12, 0xFFF) == 2047 && lns_word_sign(f12, 0xFFF) == 1);
}

static uint32_t my_mix(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7FEB352Du;
	x ^= x >> 15;
	x *= 0x846CA68Bu;
	x ^= x >> 16;
	return x;
}

static void test_rng(void)
{
	uint64_t seed = 0x123456789ABCDEF0ull;
	uint32_t want =
	    my_mix(my_mix(my_mix((uint32_t)seed ^ my_mix((uint32_t)(seed >> 32))) ^ 7) ^ 3);
	CHECK(lns_rng_key(seed, 7, 3) == want && lns_mix32(12345) == my_mix(12345));
	CHECK(lns_rng_key(seed, 7, 3) != lns_rng_key(seed ^ (1ull << 40), 7, 3));
	CHECK(lns_rng_key(seed, 7, 3) != lns_rng_key(seed, 8, 3));
	CHECK(lns_rng_key(seed, 7, 3) != lns_rng_key(seed, 7, 4));
	uint32_t key = want;
	CHECK(lns_rng_bits(key, 99) == my_mix(key + 99u * 0x9E3779B9u));
	CHECK(lns_rng_bits(key, 99) == lns_rng_bits(key, 99) &&
	      lns_rng_bits(key, 99) != lns_rng_bits(key, 100));
	CHECK(lns_rng_unit(0) == 0.0f && lns_rng_unit(0xFFFFFFFFu) < 1.0f);
	enum { N = 1 << 20, BINS = 64 };
	static uint32_t hist[BINS];
	uint32_t ones[32] = {0};
	double sum = 0;
	for (uint32_t i = 0; i < N; i++) {
		uint32_t b = lns_rng_bits(key, i);
		float u = lns_rng_unit(b);
		hist[(int)(u * BINS)]++;
		sum += u;
		for (int j = 0; j < 32; j++)
			ones[j] += (b >> j) & 1;
	}
	double chi2 = 0, e = (double)N / BINS;
	for (int j = 0; j < BINS; j++)
		chi2 += (hist[j] - e) * (hist[j] - e) / e;
	CHECK_MSG(chi2 < 130, "rng chi2 %.1f over %d bins", chi2, BINS);
	CHECK(fabs(sum / N - 0.5) < 4 * sqrt(1.0 / 12 / N));
	int bitbad = 0;
	for (int j = 0; j < 32; j++)
		bitbad += fabs((double)ones[j] / N - 0.5) > 0.005;
	CHECK(bitbad == 0);
}

/* "--quick" (for development) leaves out the two sweeps over all 2^32 patterns. */
int main(int argc, char **argv)
{
	int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	clock_t c0 = clock();
	test_format_parse();
	test_format_traits();
	test_rng();
	test_pow2();
	test_decode();
	test_logs();
	test_scale_current();
	test_scale_delayed();
	test_mul();
	test_view();
	test_madam();
	test_stochastic_unbiased();
	test_stochastic_codes();
	printf("  small tests: %.1f s\n", secs(c0));
	test_encode_nearest(quick);
	printf("  total: %.1f s\n", secs(c0));
	return t_finish("test_lns");
}
