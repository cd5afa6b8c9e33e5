/* bench_step.c: time per training step of lnsc's JIT-compiled models against PyTorch fp32.
 *
 * For an ONNX model (default examples/mlp/mlp.onnx) at batch 64 it compiles the training step
 * for the host the way `lnsc train --backend llvm` does (fe_onnx_import, pass_pipeline,
 * cg_emit_model, JIT) with the recipes fp32 and lns-madam, and times lnsrt_model_train_step on
 * one fixed random batch with 1 and 2 threads: a warm-up of 20 steps, then RUNS runs of STEPS
 * steps each. The baseline is the same network in PyTorch fp32 with the same batch, optimizer
 * (SGD, momentum 0.9) and threads, timed the same way by bench/pytorch_step.py in a child
 * process in the same run. Figures are ms per step: the median of the runs, with min and max.
 * --smoke runs 1 run of 3 steps without PyTorch (CI keeps the program working).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"
#include "frontend/fe.h"
#include "passes/passes.h"
#include "runtime/lnsrt.h"

enum { BATCH = 64, WARMUP = 20, MAX_RUNS = 64 };

typedef struct Fig {
	double med, lo, hi; /* ms per step; med < 0: not measured */
} Fig;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static Fig summarize(double *v, int n)
{
	qsort(v, (size_t)n, sizeof v[0], cmp_double);
	return (Fig){n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]), v[0], v[n - 1]};
}

/* ---- lnsc: the model compiled for one recipe ---- */

typedef struct Compiled {
	const char *recipe;
	IrCtx *ir;
	IrGraph *g;
	CgJit *jit;
	const LnsrtModelDesc *d; /* lives in the JIT's memory */
	double seconds;          /* import + passes + code generation + JIT */
} Compiled;

static void compiled_free(Compiled *m)
{
	cg_jit_free(m->jit);
	if (m->g)
		ir_graph_free(m->g);
	if (m->ir)
		ir_ctx_free(m->ir);
	memset(m, 0, sizeof *m);
}

static int compile(Compiled *m, const char *model, const char *recipe)
{
	double t0 = lnsrt_now();
	memset(m, 0, sizeof *m);
	m->recipe = recipe;
	m->ir = ir_ctx_new();
	PassOptions po;
	pass_options_default(&po);
	po.recipe = recipe;
	FeOptions fo = {.batch = BATCH, .nshapes = 0, .shapes = NULL};
	m->g = fe_onnx_import(m->ir, model, &fo);
	if (m->g && pass_pipeline(m->g, &po)) {
		ir_graph_free(m->g);
		m->g = NULL;
	}
	m->jit = m->g ? cg_jit_new(m->ir, NULL) : NULL;
	CgCtx *c = m->jit ? cg_jit_ctx(m->jit, "bench") : NULL;
	if (c) {
		c->recipe = recipe;
		if (cg_emit_model(c, m->g, "bench", 0)) {
			cg_ctx_free(c);
			c = NULL;
		}
	}
	if (!c || cg_jit_add(m->jit, c) || !(m->d = cg_jit_lookup(m->jit, "bench"))) {
		fprintf(stderr, "bench_step: %s (%s): %s\n", model, recipe, ir_diag_text(m->ir));
		return -1;
	}
	m->seconds = lnsrt_now() - t0;
	return 0;
}

/* Times train steps of m with `threads` threads on a fixed random batch. */
static int time_lnsc(const Compiled *m, int threads, int warmup, int runs, int steps, Fig *out)
{
	char err[1024];
	const LnsrtModelDesc *d = m->d;
	LnsrtModel *h = lnsrt_model_new(d, threads, 0, err, sizeof err);
	if (!h) {
		fprintf(stderr, "bench_step: %s\n", err);
		return -1;
	}
	int64_t nx = (int64_t)d->batch * d->example_size;
	float *x = malloc(sizeof(float) * (size_t)nx);
	int64_t *y = malloc(sizeof(int64_t) * (size_t)d->batch);
	if (!x || !y)
		abort();
	uint64_t s = 1;
	for (int64_t i = 0; i < nx; i++)
		x[i] = (float)((double)(lnsrt_splitmix64(&s) >> 40) / (double)(1 << 24));
	for (int i = 0; i < d->batch; i++)
		y[i] = (int64_t)(lnsrt_splitmix64(&s) % (uint64_t)d->nclasses);
	double ms[MAX_RUNS];
	int rc = 0;
	for (int i = 0; i < warmup && !rc; i++)
		rc = lnsrt_model_train_step(h, x, y, NULL, err, sizeof err);
	for (int r = 0; r < runs && !rc; r++) {
		double t0 = lnsrt_now();
		for (int i = 0; i < steps && !rc; i++)
			rc = lnsrt_model_train_step(h, x, y, NULL, err, sizeof err);
		ms[r] = (lnsrt_now() - t0) * 1e3 / steps;
	}
	if (rc)
		fprintf(stderr, "bench_step: %s: %s\n", m->recipe, err);
	else
		*out = summarize(ms, runs);
	free(x);
	free(y);
	lnsrt_model_free(h);
	return rc ? -1 : 0;
}

/* ---- PyTorch: bench/pytorch_step.py in a child process ---- */

/* Appends s to buf single-quoted for the shell. */
static void shell_quote(char *buf, size_t n, const char *s)
{
	size_t k = strlen(buf);
	if (k + 1 < n)
		buf[k++] = '\'';
	for (; *s && k + 5 < n; s++) {
		if (*s == '\'') {
			memcpy(buf + k, "'\\''", 4);
			k += 4;
		} else {
			buf[k++] = *s;
		}
	}
	if (k + 1 < n)
		buf[k++] = '\'';
	buf[k < n ? k : n - 1] = 0;
}

static void pytorch_cmd(char *buf, size_t n, const char *model, int threads, int runs, int steps)
{
	snprintf(buf, n, "/usr/bin/python3 ");
	shell_quote(buf, n, LNSC_SOURCE_DIR "/bench/pytorch_step.py");
	size_t k = strlen(buf);
	snprintf(buf + k, n - k, " --model ");
	shell_quote(buf, n, model);
	k = strlen(buf);
	snprintf(buf + k, n - k, " --batch %d --threads %d --runs %d --steps %d --warmup %d", BATCH,
		 threads, runs, steps, WARMUP);
}

/* 0 with the figure, -1 when PyTorch is unavailable or failed (its stderr passes through). */
static int time_pytorch(const char *cmd, Fig *out)
{
	fflush(stdout);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	char line[256];
	int got = 0;
	while (fgets(line, sizeof line, p))
		if (sscanf(line, "%lf %lf %lf", &out->med, &out->lo, &out->hi) == 3)
			got = 1;
	int st = pclose(p);
	return got && st == 0 ? 0 : -1;
}

/* ---- the table ---- */

static void print_fig(Fig f, int smoke)
{
	if (f.med < 0)
		printf(" %-24s |", smoke ? "skipped (--smoke)" : "unavailable");
	else
		printf(" %7.3f [%6.3f-%7.3f] |", f.med, f.lo, f.hi);
}

int main(int argc, char **argv)
{
	const char *model = LNSC_SOURCE_DIR "/examples/mlp/mlp.onnx";
	int smoke = 0, runs = 7, steps = 200;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--smoke")) {
			smoke = 1;
		} else if (!strcmp(argv[i], "--model") && i + 1 < argc) {
			model = argv[++i];
		} else if (!strcmp(argv[i], "--runs") && i + 1 < argc && atoi(argv[i + 1]) >= 5 &&
			   atoi(argv[i + 1]) <= MAX_RUNS) {
			runs = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--steps") && i + 1 < argc && atoi(argv[i + 1]) >= 1 &&
			   atoi(argv[i + 1]) <= 1000000) {
			steps = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: bench_step [--model PATH] [--runs N (5..64)] "
					"[--steps N (>= 1)] [--smoke]\n");
			return 2;
		}
	}
	int warmup = WARMUP;
	if (smoke) {
		runs = 1;
		steps = 3;
		warmup = 1;
	}
	printf("command:");
	for (int i = 0; i < argc; i++)
		printf(" %s", argv[i]);
	printf("\n");
	cg_llvm_init();

	static const char *const recipes[] = {"fp32", "lns-madam"};
	enum { NRECIPES = 2 };
	Compiled m[NRECIPES];
	memset(m, 0, sizeof m);
	int rc = 0;
	for (int i = 0; i < NRECIPES && !rc; i++) {
		rc = compile(&m[i], model, recipes[i]);
		if (!rc)
			printf("compiled %s (%s, batch %d) in %.3f s\n", model, recipes[i], BATCH,
			       m[i].seconds);
	}
	if (rc) {
		for (int i = 0; i < NRECIPES; i++)
			compiled_free(&m[i]);
		return 1;
	}

	/* Measure everything first, then print the table in one piece. */
	enum { MAX_THREADS = 2 };
	Fig ours[MAX_THREADS][NRECIPES], torch[MAX_THREADS];
	char cmd[MAX_THREADS][4096];
	for (int t = 1; t <= MAX_THREADS && !rc; t++) {
		for (int i = 0; i < NRECIPES && !rc; i++)
			rc = time_lnsc(&m[i], t, warmup, runs, steps, &ours[t - 1][i]);
		torch[t - 1] = (Fig){-1, -1, -1};
		pytorch_cmd(cmd[t - 1], sizeof cmd[t - 1], model, t, runs, steps);
		if (!smoke && !rc && time_pytorch(cmd[t - 1], &torch[t - 1])) {
			printf("PyTorch is unavailable (failed: %s): no baseline for %d thread%s\n",
			       cmd[t - 1], t, t > 1 ? "s" : "");
			torch[t - 1] = (Fig){-1, -1, -1};
		}
	}
	for (int i = 0; i < NRECIPES; i++)
		compiled_free(&m[i]);
	if (rc)
		return 1;

	const char *base = strrchr(model, '/') ? strrchr(model, '/') + 1 : model;
	printf("\nms per training step (forward, cross-entropy, backward, SGD momentum 0.9 / Madam), "
	       "batch %d, one fixed random batch;\nmedian [min-max] of %d runs of %d steps after "
	       "%d warm-up steps. PyTorch/lnsc > 1 means lnsc is faster.\n\n",
	       BATCH, runs, steps, warmup);
	printf("| %-30s | threads | %-24s | %-24s | PyTorch/lnsc |\n", "workload", "lnsc ms/step",
	       "PyTorch fp32 ms/step");
	printf("|--------------------------------|---------|--------------------------|-----------"
	       "---------------|--------------|\n");
	for (int t = 1; t <= MAX_THREADS; t++)
		for (int i = 0; i < NRECIPES; i++) {
			char w[64];
			snprintf(w, sizeof w, "%.30s", base);
			size_t k = strlen(w);
			snprintf(w + k, sizeof w - k, " %s", recipes[i]);
			printf("| %-30s | %7d |", w, t);
			print_fig(ours[t - 1][i], smoke);
			print_fig(torch[t - 1], smoke);
			if (torch[t - 1].med >= 0 && ours[t - 1][i].med > 0)
				printf(" %12.2f |\n", torch[t - 1].med / ours[t - 1][i].med);
			else
				printf(" %12s |\n", "-");
		}
	if (!smoke)
		for (int t = 1; t <= MAX_THREADS; t++)
			printf("baseline (%d thread%s): %s\n", t, t > 1 ? "s" : "", cmd[t - 1]);
	return 0;
}
