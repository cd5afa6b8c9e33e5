/* test_pool.c: unit tests of runtime/pool.c: lnsrt_parallel_for and the pool's life cycle.
 *
 * Every index must run exactly once, and results (each task writes its own slot) must not
 * depend on the thread count, including for n below, equal to and far above it. Nested calls
 * (from a task) and concurrent callers run inline. Workers are exercised both hot (back-to-back
 * jobs) and after they have gone to sleep. The overhead of an empty job of two tasks on two
 * threads is measured and printed (not asserted: timing is the benchmarks' business).
 */
#include "runtime/lnsrt.h"
#include "testlib.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct Job {
	int64_t n;
	uint64_t *out;
	_Atomic int *count;
	LnsrtPool *pool; /* for nested calls */
	int depth;
} Job;

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdu;
	x ^= x >> 33;
	return x;
}

static void task(void *arg, int64_t i)
{
	Job *j = arg;
	j->out[i] = mix((uint64_t)i + 1);
	atomic_fetch_add(&j->count[i], 1);
}

/* Runs job n on a pool of t threads; 1 if every index ran once with the expected value. */
static int run_once(LnsrtPool *p, int64_t n)
{
	Job j = {n, calloc((size_t)n + 1, sizeof(uint64_t)), calloc((size_t)n + 1, sizeof(int)), p,
	         0};
	lnsrt_parallel_for(p, n, task, &j);
	int ok = 1;
	for (int64_t i = 0; i < n; i++)
		ok &= j.count[i] == 1 && j.out[i] == mix((uint64_t)i + 1);
	free(j.out);
	free((void *)j.count);
	return ok;
}

static void test_counts(void)
{
	static const int threads[] = {0, 1, 2, 3, 4, 8};
	static const int64_t sizes[] = {1, 2, 3, 7, 8, 9, 100, 1000, 100003};
	CHECK(run_once(NULL, 1000));
	for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
		LnsrtPool *p = lnsrt_pool_new(threads[t]);
		CHECK(p != NULL);
		CHECK(lnsrt_pool_threads(p) == (threads[t] > 1 ? threads[t] : 1));
		for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
			CHECK_MSG(run_once(p, sizes[s]), "%d threads, n = %lld", threads[t],
			          (long long)sizes[s]);
		lnsrt_pool_free(p);
	}
	CHECK(lnsrt_pool_threads(NULL) == 1);
	lnsrt_pool_free(NULL);
}

/* n <= 0 never calls the task. */
static void fail_task(void *arg, int64_t i)
{
	(void)i;
	*(int *)arg = 1;
}

static void test_empty(void)
{
	LnsrtPool *p = lnsrt_pool_new(3);
	int called = 0;
	lnsrt_parallel_for(p, 0, fail_task, &called);
	lnsrt_parallel_for(p, -5, fail_task, &called);
	lnsrt_parallel_for(NULL, 0, fail_task, &called);
	CHECK(called == 0);
	lnsrt_pool_free(p);
}

/* Each outer task runs an inner parallel_for over its row: inline, so all rows complete. */
typedef struct Nest {
	LnsrtPool *p;
	int64_t rows, cols;
	uint64_t *out;
	_Atomic int *count;
} Nest;

typedef struct Row {
	Nest *n;
	int64_t r;
} Row;

static void inner(void *arg, int64_t c)
{
	Row *row = arg;
	int64_t i = row->r * row->n->cols + c;
	row->n->out[i] = mix((uint64_t)i);
	atomic_fetch_add(&row->n->count[i], 1);
}

static void outer(void *arg, int64_t r)
{
	Nest *n = arg;
	Row row = {n, r};
	lnsrt_parallel_for(n->p, n->cols, inner, &row);
}

static void test_nested(void)
{
	for (int t = 1; t <= 4; t++) {
		Nest n = {lnsrt_pool_new(t), 37, 53, NULL, NULL};
		n.out = calloc((size_t)(n.rows * n.cols), sizeof *n.out);
		n.count = calloc((size_t)(n.rows * n.cols), sizeof *n.count);
		lnsrt_parallel_for(n.p, n.rows, outer, &n);
		int ok = 1;
		for (int64_t i = 0; i < n.rows * n.cols; i++)
			ok &= n.count[i] == 1 && n.out[i] == mix((uint64_t)i);
		CHECK_MSG(ok, "nested, %d threads", t);
		free(n.out);
		free((void *)n.count);
		lnsrt_pool_free(n.p);
	}
}

/* A reduction whose result must be bit-identical for every thread count: each task sums its
 * own fixed block of floats in order, and the blocks are combined in index order afterwards. */
typedef struct Red {
	const float *x;
	int64_t block;
	float *partial;
} Red;

static void red_task(void *arg, int64_t i)
{
	Red *r = arg;
	float s = 0;
	for (int64_t k = 0; k < r->block; k++)
		s += r->x[i * r->block + k];
	r->partial[i] = s;
}

static void test_thread_independent(void)
{
	enum { BLOCKS = 257, BLOCK = 1000 };
	float *x = malloc(sizeof *x * BLOCKS * BLOCK);
	float partial[BLOCKS];
	uint32_t seed = 1;
	for (int i = 0; i < BLOCKS * BLOCK; i++) {
		seed = seed * 1664525u + 1013904223u;
		x[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
	}
	float ref = 0;
	for (int t = 1; t <= 8; t++) {
		LnsrtPool *p = lnsrt_pool_new(t);
		Red r = {x, BLOCK, partial};
		lnsrt_parallel_for(p, BLOCKS, red_task, &r);
		float s = 0;
		for (int i = 0; i < BLOCKS; i++)
			s += partial[i];
		if (t == 1)
			ref = s;
		CHECK_MSG(memcmp(&s, &ref, sizeof s) == 0, "%d threads: %.9g vs %.9g", t, s, ref);
		lnsrt_pool_free(p);
	}
	free(x);
}

/* Many tiny jobs back to back (hot workers), then jobs after the workers fell asleep. */
static void test_many_small(void)
{
	LnsrtPool *p = lnsrt_pool_new(3);
	int ok = 1;
	for (int i = 0; i < 20000; i++)
		ok &= run_once(p, 1 + i % 6);
	CHECK_MSG(ok, "small jobs");
	for (int i = 0; i < 5; i++) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
		CHECK(run_once(p, 4 + i));
	}
	lnsrt_pool_free(p);
}

/* A job whose two tasks must run at the same time on two threads: each waits (up to 2 s) for
 * the other to start. Run right after the pool is made, before its worker may have started:
 * the worker must still take the job. */
typedef struct Meet {
	_Atomic int started;
	_Atomic int met;
} Meet;

static void meet_task(void *arg, int64_t i)
{
	Meet *m = arg;
	(void)i;
	atomic_fetch_add(&m->started, 1);
	double end = lnsrt_now() + 2.0;
	while (atomic_load(&m->started) < 2 && lnsrt_now() < end)
		;
	if (atomic_load(&m->started) == 2)
		atomic_fetch_add(&m->met, 1);
}

static void test_first_job(void)
{
	int ok = 1;
	for (int i = 0; i < 20; i++) {
		LnsrtPool *p = lnsrt_pool_new(2);
		Meet m = {0, 0};
		lnsrt_parallel_for(p, 2, meet_task, &m);
		ok &= m.met == 2;
		lnsrt_pool_free(p);
	}
	CHECK_MSG(ok, "a fresh pool's worker missed its first job");
}

static void test_recreate(void)
{
	int ok = 1;
	for (int i = 0; i < 100; i++) {
		LnsrtPool *p = lnsrt_pool_new(2 + i % 4);
		ok &= p != NULL;
		if (!p)
			continue;
		if (i % 3)
			ok &= run_once(p, 50 + i);
		lnsrt_pool_free(p);
	}
	CHECK_MSG(ok, "create/free cycles");
}

/* Two threads share one pool: the one that finds it busy runs inline; both finish. */
typedef struct Caller {
	LnsrtPool *p;
	int ok;
} Caller;

static void *caller(void *arg)
{
	Caller *c = arg;
	c->ok = 1;
	for (int i = 0; i < 2000; i++)
		c->ok &= run_once(c->p, 1 + i % 17);
	return NULL;
}

static void test_concurrent_callers(void)
{
	LnsrtPool *p = lnsrt_pool_new(3);
	Caller a = {p, 0}, b = {p, 0};
	pthread_t ta, tb;
	CHECK(pthread_create(&ta, NULL, caller, &a) == 0);
	CHECK(pthread_create(&tb, NULL, caller, &b) == 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECK(a.ok && b.ok);
	lnsrt_pool_free(p);
}

static void nop(void *arg, int64_t i)
{
	(void)arg;
	(void)i;
}

/* A task that busy-waits `us` microseconds. */
static void spin_task(void *arg, int64_t i)
{
	(void)i;
	double end = lnsrt_now() + *(const double *)arg * 1e-6;
	while (lnsrt_now() < end)
		;
}

/* Microseconds per parallel_for of n tasks of `us` each on t threads (best of 5 rounds). */
static double call_us(int t, int64_t n, double us)
{
	enum { CALLS = 4000 };
	LnsrtPool *p = lnsrt_pool_new(t);
	double best = 1e30;
	for (int round = 0; round < 5; round++) {
		double t0 = lnsrt_now();
		for (int i = 0; i < CALLS; i++)
			lnsrt_parallel_for(p, n, us > 0 ? spin_task : nop, &us);
		double per = (lnsrt_now() - t0) * 1e6 / CALLS;
		best = per < best ? per : best;
	}
	lnsrt_pool_free(p);
	return best;
}

/* Whichever thread takes one task waits until the other task has started: every call is a
 * real hand-off between two threads (publish, wake-up of the other thread, completion). */
static void pingpong_task(void *arg, int64_t i)
{
	_Atomic int64_t *started = arg;
	atomic_fetch_add(started, 1);
	(void)i;
	/* bounded, so that a loaded machine (the other thread not running) cannot stall the
	 * test: the caller then runs the second task itself */
	double end = lnsrt_now() + 200e-6;
	while (atomic_load(started) % 2 && lnsrt_now() < end)
		;
}

static double handoff_us(void)
{
	enum { CALLS = 2000 };
	LnsrtPool *p = lnsrt_pool_new(2);
	_Atomic int64_t started = 0;
	double best = 1e30;
	for (int round = 0; round < 5; round++) {
		double t0 = lnsrt_now();
		for (int i = 0; i < CALLS; i++)
			lnsrt_parallel_for(p, 2, pingpong_task, (void *)&started);
		double per = (lnsrt_now() - t0) * 1e6 / CALLS;
		best = per < best ? per : best;
	}
	lnsrt_pool_free(p);
	CHECK(started == 2 * 5 * CALLS);
	return best;
}

/* Empty jobs measure the publishing cost (the caller may finish them alone); jobs of two 5 us
 * tasks on two threads measure the hand-off: 5 us if the worker takes one task at once, 10 us
 * if the caller ends up running both. */
static void test_overhead(void)
{
	printf("parallel_for cost (best of 5 x 4000 calls, %d CPUs online):\n", lnsrt_cpu_count());
	printf("  %-8s %6s %10s %12s %14s\n", "threads", "n", "task us", "us/call", "overhead us");
	static const struct {
		int t, n;
		double us;
	} cfg[] = {{1, 2, 0}, {2, 2, 0}, {2, 64, 0}, {1, 2, 5}, {2, 2, 5}, {2, 8, 5}};
	for (size_t i = 0; i < sizeof cfg / sizeof *cfg; i++) {
		double per = call_us(cfg[i].t, cfg[i].n, cfg[i].us);
		double ideal = cfg[i].us * (double)((cfg[i].n + cfg[i].t - 1) / cfg[i].t);
		printf("  %-8d %6d %10.1f %12.3f %14.3f\n", cfg[i].t, cfg[i].n, cfg[i].us, per,
		       per - ideal);
	}
	printf("  2 threads, n = 2, each task waits for the other: %.3f us/call (hand-off)\n",
	       handoff_us());
	CHECK(lnsrt_cpu_count() >= 1);
}

int main(void)
{
	test_counts();
	test_empty();
	test_nested();
	test_thread_independent();
	test_many_small();
	test_first_job();
	test_recreate();
	test_concurrent_callers();
	test_overhead();
	return t_finish("test_pool");
}
