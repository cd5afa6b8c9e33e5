/* pool.c: the thread pool behind lnsrt_parallel_for: caller-participating, spin-then-sleep.
 *
 * A pool has nthreads - 1 workers; the caller of lnsrt_parallel_for is the last thread. Tasks
 * are claimed dynamically in chunks from one atomic counter, so which thread runs which index
 * varies from run to run; generated code makes every task's result independent of that. A
 * job is published by bumping `gen`: odd while the caller rewrites the job fields, even once
 * they are valid. A worker announces itself in `active` before it reads the fields and re-checks
 * `gen` after, and the caller only rewrites them once `active` is zero, so a late worker never
 * sees a half-written job. The caller returns when `done` (tasks finished) reaches n, without
 * waiting for workers that had nothing to do: a descheduled worker costs nothing.
 *
 * Hand-off is spin first (a step issues tens of small jobs back to back, and a spinning worker
 * picks one up in well under a microsecond), then a condition variable once a worker has been
 * idle for a while; the caller likewise spins on `done` before it sleeps. Nested calls (from a
 * task, or from a second thread while a job runs) find the pool busy and run inline, which is
 * always correct. All of a pool's state hangs off the LnsrtPool; nothing is global.
 */
#include "runtime/lnsrt.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

enum {
	SPIN_WORKER = 1 << 15, /* polls of an idle worker before it sleeps (~ 1 ms) */
	SPIN_CALLER = 1 << 12, /* polls of the caller waiting for the last tasks */
	YIELD_EVERY = 64,      /* polls between two sched_yield calls */
	CHUNKS_PER_THREAD = 4, /* dynamic chunks: a few per thread to even out the load */
	MAX_THREADS = 1024,
};

struct LnsrtPool {
	int nthreads; /* the caller included */
	int nworkers;
	pthread_t *th;
	/* the job: written only while gen is odd and no worker is active */
	LnsrtTaskFn fn;
	void *arg;
	int64_t n, chunk;
	_Atomic int64_t next; /* next index to claim */
	_Atomic int64_t done; /* indices finished */
	_Atomic uint32_t gen; /* even: job valid (or idle); odd: being written */
	_Atomic int active;   /* workers between joining a job and leaving it */
	_Atomic int busy;     /* a parallel_for is running: further calls run inline */
	_Atomic int stop;
	/* sleeping */
	pthread_mutex_t mu;
	pthread_cond_t wake;     /* workers wait here for a new job */
	pthread_cond_t finished; /* the caller waits here for the last task */
	_Atomic int sleepers;    /* workers in (or entering) wait on `wake` */
	_Atomic int caller_sleeps;
};

/* One poll of a spin loop: a pause, and every YIELD_EVERY polls a sched_yield, so a spinning
 * thread gives way when the machine has more runnable threads than CPUs (the thread it waits
 * for may be one of them). */
static inline void spin_pause(int spin)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
	if (spin % YIELD_EVERY == YIELD_EVERY - 1)
		sched_yield();
}

/* Claims and runs chunks until none are left; wakes the caller after the last one. */
static void run_chunks(LnsrtPool *p)
{
	LnsrtTaskFn fn = p->fn;
	void *arg = p->arg;
	int64_t n = p->n, chunk = p->chunk;
	for (;;) {
		int64_t i = atomic_fetch_add_explicit(&p->next, chunk, memory_order_relaxed);
		if (i >= n)
			return;
		int64_t e = i + chunk < n ? i + chunk : n;
		for (int64_t j = i; j < e; j++)
			fn(arg, j);
		if (atomic_fetch_add(&p->done, e - i) + (e - i) == n &&
		    atomic_load(&p->caller_sleeps)) {
			pthread_mutex_lock(&p->mu);
			pthread_cond_signal(&p->finished);
			pthread_mutex_unlock(&p->mu);
		}
	}
}

/* Waits for an even gen other than seen (or stop); returns it. */
static uint32_t wait_job(LnsrtPool *p, uint32_t seen)
{
	for (int spin = 0; spin < SPIN_WORKER; spin++) {
		uint32_t g = atomic_load_explicit(&p->gen, memory_order_acquire);
		if ((g != seen && !(g & 1)) || atomic_load_explicit(&p->stop, memory_order_relaxed))
			return g;
		spin_pause(spin);
	}
	uint32_t g;
	pthread_mutex_lock(&p->mu);
	atomic_fetch_add(&p->sleepers, 1);
	while (((g = atomic_load(&p->gen)) == seen || (g & 1)) && !atomic_load(&p->stop))
		pthread_cond_wait(&p->wake, &p->mu);
	atomic_fetch_sub(&p->sleepers, 1);
	pthread_mutex_unlock(&p->mu);
	return g;
}

static void *worker(void *arg)
{
	LnsrtPool *p = arg;
	/* gen is 0 when the pool is made: every later value is a job this worker has not seen,
	 * even one published before the thread first ran */
	uint32_t seen = 0;
	for (;;) {
		uint32_t g = wait_job(p, seen);
		if (atomic_load(&p->stop))
			return NULL;
		atomic_fetch_add(&p->active, 1);
		/* The job may have been replaced between the two loads: then it is not ours. */
		if (atomic_load(&p->gen) == g) {
			seen = g;
			run_chunks(p);
		}
		atomic_fetch_sub_explicit(&p->active, 1, memory_order_release);
	}
}

LnsrtPool *lnsrt_pool_new(int nthreads)
{
	LnsrtPool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	if (nthreads > MAX_THREADS)
		nthreads = MAX_THREADS;
	p->nthreads = nthreads > 1 ? nthreads : 1;
	if (p->nthreads == 1)
		return p;
	p->th = calloc((size_t)p->nthreads - 1, sizeof *p->th);
	if (!p->th || pthread_mutex_init(&p->mu, NULL)) {
		free(p->th);
		free(p);
		return NULL;
	}
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->finished, NULL);
	for (int i = 0; i < p->nthreads - 1; i++) {
		if (pthread_create(&p->th[i], NULL, worker, p))
			break;
		p->nworkers++;
	}
	if (p->nworkers < p->nthreads - 1) {
		lnsrt_pool_free(p);
		return NULL;
	}
	return p;
}

void lnsrt_pool_free(LnsrtPool *p)
{
	if (!p)
		return;
	if (p->th) {
		pthread_mutex_lock(&p->mu);
		atomic_store(&p->stop, 1);
		pthread_cond_broadcast(&p->wake);
		pthread_mutex_unlock(&p->mu);
		for (int i = 0; i < p->nworkers; i++)
			pthread_join(p->th[i], NULL);
		pthread_cond_destroy(&p->wake);
		pthread_cond_destroy(&p->finished);
		pthread_mutex_destroy(&p->mu);
		free(p->th);
	}
	free(p);
}

int lnsrt_pool_threads(const LnsrtPool *p)
{
	return p ? p->nthreads : 1;
}

int lnsrt_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

static void run_inline(int64_t n, LnsrtTaskFn fn, void *arg)
{
	for (int64_t i = 0; i < n; i++)
		fn(arg, i);
}

/* The caller's share is done: wait (spin, then sleep) until every task has finished. */
static void wait_done(LnsrtPool *p, int64_t n)
{
	for (int spin = 0; spin < SPIN_CALLER; spin++) {
		if (atomic_load_explicit(&p->done, memory_order_acquire) == n)
			return;
		spin_pause(spin);
	}
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->caller_sleeps, 1);
	while (atomic_load(&p->done) != n)
		pthread_cond_wait(&p->finished, &p->mu);
	atomic_store(&p->caller_sleeps, 0);
	pthread_mutex_unlock(&p->mu);
}

void lnsrt_parallel_for(LnsrtPool *p, int64_t n, LnsrtTaskFn fn, void *arg)
{
	int idle = 0;
	if (n <= 0)
		return;
	if (!p || p->nworkers == 0 || n == 1 ||
	    !atomic_compare_exchange_strong(&p->busy, &idle, 1)) {
		run_inline(n, fn, arg);
		return;
	}
	uint32_t g = atomic_load_explicit(&p->gen, memory_order_relaxed);
	atomic_store(&p->gen, g + 1); /* odd: the job is being written */
	/* Workers still leaving the previous job (or that read gen just before it changed) are
	 * done with it in a moment; none reads the fields once it has seen the odd gen. */
	for (int spin = 0; atomic_load(&p->active) != 0; spin++)
		spin_pause(spin);
	int64_t chunk = n / ((int64_t)p->nthreads * CHUNKS_PER_THREAD);
	p->fn = fn;
	p->arg = arg;
	p->n = n;
	p->chunk = chunk > 0 ? chunk : 1;
	atomic_store_explicit(&p->next, 0, memory_order_relaxed);
	atomic_store_explicit(&p->done, 0, memory_order_relaxed);
	atomic_store(&p->gen, g + 2);
	if (atomic_load(&p->sleepers) > 0) {
		pthread_mutex_lock(&p->mu);
		pthread_cond_broadcast(&p->wake);
		pthread_mutex_unlock(&p->mu);
	}
	run_chunks(p);
	wait_done(p, n);
	atomic_store_explicit(&p->busy, 0, memory_order_release);
}
