/* gen_lns_tables.c: build-time generator of lns_tables.h, the fp32 tables of exact LNS coding.
 *
 * For every gamma g = 2^L (L = 0..12) it computes in long double and rounds to fp32:
 *   pow[r] = 2^(r/g)          correctly rounded (the decode table T of LNS.md), r = 0..g-1;
 *   mid[j] = 2^((j+0.5)/g)    rounded UP (smallest fp32 >= the real), j = 0..g-1: the
 *                             geometric midpoints, i.e. the thresholds of nearest rounding;
 *   lvl[j] = 2^(j/g)          rounded UP, j = 0..g-1 (lvl[0] = 1 exactly): the exact real
 *                             levels, for ceil(g * log2 a).
 * Each table concatenates the gammas: gamma g starts at offset g-1 (lns_tab_off[L]), 8191
 * entries in all. Values are written as uint32 bit patterns of the fp32 numbers.
 *
 * Why comparing an fp32 mantissa with these is exact: apart from 2^0 = 1, every real above is
 * 2^(p/q) with p/q not an integer, hence irrational, so it is never an fp32 value. For an fp32
 * mant and an irrational real v with c = the smallest fp32 >= v (so c > v and no fp32 lies in
 * [v, c)): mant >= v  <=>  mant >= c, and mant < v <=> mant < c. Ties are impossible.
 *
 * Two bucket tables make the search O(1): bucket i of gamma g covers the mantissas
 * [1 + i/(2g), 1 + (i+1)/(2g)) (the top L+1 fraction bits) and holds how many table entries are
 * <= its start. Consecutive entries are more than ln(2)/g - 2^-23 > 1/(2g) apart, so at most one
 * entry lies inside a bucket: count(mant) = B[i] + (tab[B[i]] <= mant). The generator checks
 * that spacing; offsets of the bucket tables are 2*(g-1) (16382 entries).
 *
 * Precision: long double here is x87 extended (64-bit significand) or better; exp2l is
 * accurate to a few ulps (2^-63 relative). fp32 rounding boundaries (fp32 values and their
 * midpoints) are the multiples of 2^-24 in [1, 2); the generator fails loudly if a real lies
 * within 2^-60 (relative) of one, and cross-checks exp2l against a product of repeated square
 * roots of 2 (correctly rounded sqrtl), so a rounding decision can never be wrong silently.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_L = 12, NTAB = (1 << (MAX_L + 1)) - 1 };

typedef struct Tables {
	uint32_t pow[NTAB], mid[NTAB], lvl[NTAB];
	uint16_t pow_bucket[2 * NTAB], mid_bucket[2 * NTAB];
} Tables;

static void die(const char *what, int L, int j)
{
	fprintf(stderr, "gen_lns_tables: %s (log2g %d, index %d)\n", what, L, j);
	exit(1);
}

static uint32_t f2u(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return u;
}

static float u2f(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

/* 2^(num / 2^D) for 0 <= num < 2^D, as a product of repeated square roots of 2: an
 * independent (if slightly less accurate) evaluation used only to cross-check exp2l. */
static long double pow2_by_roots(long num, int D)
{
	long double root = 2.0L, prod = 1.0L;
	for (int b = D - 1; b >= 0; b--) {
		root = sqrtl(root); /* now 2^(2^b / 2^D) */
		if (num & (1L << b))
			prod *= root;
	}
	return prod;
}

/* 2^(num / 2^D) in long double, 0 <= num < 2^D; fails if the precision is in doubt. */
static long double pow2_frac(long num, int D, int L, int j)
{
	long double v = exp2l((long double)num / (long double)(1L << D));
	long double w = pow2_by_roots(num, D);
	if (fabsl(v - w) > v * 0x1p-56L)
		die("exp2l disagrees with the square-root evaluation", L, j);
	if (num == 0)
		return v;
	/* distance to the nearest multiple of 2^-24 (fp32 value or midpoint), v in (1, 2) */
	long double s = v * 0x1p24L, d = fabsl(s - rintl(s));
	if (d * 0x1p-24L < v * 0x1p-60L)
		die("real within 2^-60 of an fp32 rounding boundary: long double not enough", L, j);
	return v;
}

static float round_up32(long double v)
{
	float f = (float)v;
	if ((long double)f < v)
		f = nextafterf(f, 4.0f);
	return f;
}

/* bucket[i] = number of entries of tab[0..g) <= 1 + i/(2g); checks the spacing property. */
static void make_buckets(const uint32_t *tab, int L, uint16_t *bucket, const char *name)
{
	int g = 1 << L;
	for (int j = 0; j + 1 < g; j++) {
		long double gap = (long double)u2f(tab[j + 1]) - (long double)u2f(tab[j]);
		if (!(gap > 1.0L / (2 * g)))
			die(name, L, j);
	}
	int c = 0;
	for (int i = 0; i < 2 * g; i++) {
		uint32_t start = 0x3F800000u | ((uint32_t)i << (22 - L));
		while (c < g && tab[c] <= start)
			c++;
		bucket[i] = (uint16_t)c;
	}
}

static void make_gamma(Tables *t, int L)
{
	int g = 1 << L, off = g - 1;
	for (int j = 0; j < g; j++) {
		long double p = pow2_frac(j, L, L, j);
		long double m = pow2_frac(2L * j + 1, L + 1, L, j);
		t->pow[off + j] = f2u((float)p);
		t->lvl[off + j] = f2u(round_up32(p));
		t->mid[off + j] = f2u(round_up32(m));
		if (u2f(t->mid[off + j]) >= 2.0f || u2f(t->lvl[off + j]) >= 2.0f)
			die("threshold rounds to 2", L, j);
		if (j > 0 &&
		    !(t->mid[off + j - 1] < t->pow[off + j] && t->pow[off + j] < t->mid[off + j]))
			die("tables not interleaved", L, j);
	}
	make_buckets(t->pow + off, L, t->pow_bucket + 2 * off, "pow entries too close");
	make_buckets(t->mid + off, L, t->mid_bucket + 2 * off, "mid entries too close");
}

static void emit_u32(FILE *f, const char *name, const uint32_t *a, int n)
{
	fprintf(f, "static const uint32_t %s[%d] = {", name, n);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s0x%08Xu,", i % 8 ? " " : "\n\t", (unsigned)a[i]);
	fprintf(f, "\n};\n\n");
}

static void emit_u16(FILE *f, const char *name, const uint16_t *a, int n)
{
	fprintf(f, "static const uint16_t %s[%d] = {", name, n);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s%u,", i % 16 ? " " : "\n\t", (unsigned)a[i]);
	fprintf(f, "\n};\n\n");
}

static void emit(FILE *f, const Tables *t)
{
	fprintf(
	    f,
	    "/* lns_tables.h: generated by tools/gen_lns_tables.c at build time; do not edit.\n"
	    " * fp32 bit patterns per gamma g = 2^L, gamma g at offset lns_tab_off[L] = g-1:\n"
	    " * pow = 2^(r/g) rounded to nearest, mid = 2^((j+0.5)/g) rounded up, lvl = 2^(j/g)\n"
	    " * rounded up (lvl[0] = 1). Buckets (offset 2*(g-1)): entries <= 1 + i/(2g). */\n"
	    "#ifndef LNSC_LNS_TABLES_H\n#define LNSC_LNS_TABLES_H\n\n#include <stdint.h>\n\n");
	fprintf(f, "static const int32_t lns_tab_off[%d] = {", MAX_L + 1);
	for (int L = 0; L <= MAX_L; L++)
		fprintf(f, "%s%d", L ? ", " : "", (1 << L) - 1);
	fprintf(f, "};\n\n");
	emit_u32(f, "lns_tab_pow", t->pow, NTAB);
	emit_u32(f, "lns_tab_mid", t->mid, NTAB);
	emit_u32(f, "lns_tab_lvl", t->lvl, NTAB);
	emit_u16(f, "lns_tab_pow_bucket", t->pow_bucket, 2 * NTAB);
	emit_u16(f, "lns_tab_mid_bucket", t->mid_bucket, 2 * NTAB);
	fprintf(f, "#endif\n");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s OUT.h\n", argv[0]);
		return 2;
	}
	if (LDBL_MANT_DIG < 64)
		die("long double has fewer than 64 significand bits", 0, 0);
	static Tables t;
	for (int L = 0; L <= MAX_L; L++)
		make_gamma(&t, L);
	FILE *f = fopen(argv[1], "w");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	emit(f, &t);
	if (fclose(f) != 0) {
		perror(argv[1]);
		return 1;
	}
	return 0;
}
