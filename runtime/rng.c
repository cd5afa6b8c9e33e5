/* rng.c: the deterministic generator that orders each training epoch.
 *
 * splitmix64 turns (seed, stream) into the 256-bit state of xoshiro256** (Blackman and
 * Vigna); lnsrt_rng_below draws without modulo bias by rejecting the few values below
 * 2^64 mod n; lnsrt_epoch_order is a Fisher-Yates shuffle of 0..n-1 driven by the stream
 * keyed by the epoch. Only 64-bit unsigned arithmetic is used, so the permutation for a
 * given (seed, epoch, n) is the same on every machine, compiler and thread count.
 */
#include "runtime/lnsrt.h"

uint64_t lnsrt_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

void lnsrt_rng_seed(LnsrtRng *r, uint64_t seed, uint64_t stream)
{
	/* Mix the stream through splitmix once so that neighbouring (seed, stream) pairs such
	 * as (1, 0) and (0, 1) do not start from related states. */
	uint64_t st = stream;
	uint64_t sm = seed ^ lnsrt_splitmix64(&st);
	for (int i = 0; i < 4; i++)
		r->s[i] = lnsrt_splitmix64(&sm);
	/* xoshiro's one forbidden state; splitmix cannot produce four zeros, but be explicit. */
	if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
		r->s[0] = 1;
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t lnsrt_rng_next(LnsrtRng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

uint64_t lnsrt_rng_below(LnsrtRng *r, uint64_t n)
{
	/* 2^64 mod n, computed in 64 bits; values below it would make small results likelier. */
	uint64_t reject = (0 - n) % n;
	for (;;) {
		uint64_t v = lnsrt_rng_next(r);
		if (v >= reject)
			return v % n;
	}
}

void lnsrt_epoch_order(int64_t *order, int64_t n, uint64_t seed, int64_t epoch)
{
	LnsrtRng r;
	lnsrt_rng_seed(&r, seed, (uint64_t)epoch);
	for (int64_t i = 0; i < n; i++)
		order[i] = i;
	for (int64_t i = n - 1; i > 0; i--) {
		int64_t j = (int64_t)lnsrt_rng_below(&r, (uint64_t)i + 1);
		int64_t tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
}
