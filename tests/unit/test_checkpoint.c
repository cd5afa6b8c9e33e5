/* test_checkpoint.c: unit tests of the model ABI's runtime side: descriptors (ir/desc.c),
 * lnsrt_model, checkpoints, resuming through the driver, and the training executable's main.
 *
 * Two models are used. A hand-written "generated" model, `lnsc_model` below: softmax
 * regression whose descriptor is constant data and whose steps run their rows and classes
 * through lnsrt_parallel_for, as codegen's output does (it also keeps an LNS copy of its weights
 * with a scale state, for telemetry). And a real one: a two-layer MLP built with the IR
 * builders, run through the lns-madam pipeline and the interpreter behind ir_interp_model.
 * Checkpoints must round-trip exactly, and every kind of damage (a flipped byte, a cut, a
 * foreign model) must be refused with its own message and without touching the model.
 * Training N steps in one go and training to a checkpoint at step k (by a step limit, by
 * checkpoint_every, by SIGINT) then resuming to N must give bit-identical state blobs.
 * A run continued across lnsrt_train calls (LnsrtTrainOpts.position, as the Lua trainer
 * does) must end where one call ends; a checkpoint's metadata text must round-trip, and a
 * version 1 checkpoint (no metadata) must still load.
 * runtime/exe_main.c is compiled in here (its main renamed) and run on CSV data.
 */
#include <dirent.h>
#include <math.h>
#include <zlib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "passes/passes.h"
#include "runtime/lnsrt.h"
#include "testlib.h"

enum { ERRN = 2048 };

static char tmpdir[] = "/tmp/test_checkpoint.XXXXXX";

static void path_in(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	char p[4096];
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			remove_tree(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

/* Entries of tmpdir whose name starts with prefix. */
static int count_prefix(const char *prefix)
{
	DIR *d = opendir(tmpdir);
	int n = 0;
	struct dirent *e;
	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

static unsigned char *read_all(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *p = malloc((size_t)len + 1);
	*n = fread(p, 1, (size_t)len, f);
	fclose(f);
	return p;
}

static void write_all(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(fwrite(p, 1, n, f) == n);
	fclose(f);
}

/* ---- a hand-written "generated" model: softmax regression, B x F -> C ---- */

enum { TB = 4, TF = 6, TC = 3 };
enum { T_X, T_Y, T_W, T_B, T_WQ, T_LOGITS, T_LOSS, T_GW, T_GB, T_COUNT };
enum {
	OFF_W = 64,
	OFF_B = 192,
	OFF_WQ = 256,
	OFF_WQ_SCALE = 288,
	STATE_BYTES = 448,
	OFF_LOGITS = 0,
	OFF_LOSS = 64,
	OFF_GW = 128,
	OFF_GB = 256,
	SCRATCH_BYTES = 320
};
/* lnsrt_desc_fingerprint of the table below, pinned: if the hash changes, old checkpoints
 * stop loading, which must be a deliberate decision. */
#define TOY_FINGERPRINT 0xd8075ff9u

typedef struct Toy {
	const float *x;
	const int64_t *y;
	float *w, *b, *logits, *gw, *gb, *dlogits;
} Toy;

static Toy toy_bind(LnsrtStepArgs *a, float *dlogits)
{
	uint8_t *s = a->state, *k = a->scratch;
	return (Toy){a->io[0],
	             a->io[1],
	             (float *)(s + OFF_W),
	             (float *)(s + OFF_B),
	             (float *)(k + OFF_LOGITS),
	             (float *)(k + OFF_GW),
	             (float *)(k + OFF_GB),
	             dlogits};
}

static void toy_row(void *arg, int64_t r)
{
	Toy *t = arg;
	for (int c = 0; c < TC; c++) {
		float s = t->b[c];
		for (int f = 0; f < TF; f++)
			s += t->w[c * TF + f] * t->x[r * TF + f];
		t->logits[r * TC + c] = s;
	}
}

static void toy_grad(void *arg, int64_t c)
{
	Toy *t = arg;
	float gb = 0;
	for (int f = 0; f < TF; f++) {
		float g = 0;
		for (int r = 0; r < TB; r++)
			g += t->dlogits[r * TC + c] * t->x[r * TF + f];
		t->gw[c * TF + f] = g;
	}
	for (int r = 0; r < TB; r++)
		gb += t->dlogits[r * TC + c];
	t->gb[c] = gb;
}

static int toy_forward(LnsrtStepArgs *a, Toy *t)
{
	lnsrt_parallel_for(a->pool, TB, toy_row, t);
	for (int i = 0; i < TB * TC; i++)
		if (!isfinite(t->logits[i])) {
			a->error_tensor = T_LOGITS;
			return 1;
		}
	return 0;
}

static int toy_init(LnsrtStepArgs *a, uint64_t seed)
{
	LnsrtStateHeader *h = a->state;
	h->seed = seed;
	h->step = 0;
	float *w = (float *)((uint8_t *)a->state + OFF_W);
	for (int i = 0; i < TC * TF; i++)
		w[i] = (float)((i * 7 + 3) % 11) / 22.0f - 0.25f;
	return 0;
}

static int toy_train(LnsrtStepArgs *a)
{
	float dl[TB * TC];
	Toy t = toy_bind(a, dl);
	LnsrtStateHeader *h = a->state;
	h->step++;
	if (toy_forward(a, &t))
		return 1;
	float loss = 0;
	for (int r = 0; r < TB; r++) {
		float m = t.logits[r * TC], z = 0;
		for (int c = 1; c < TC; c++)
			m = fmaxf(m, t.logits[r * TC + c]);
		for (int c = 0; c < TC; c++)
			z += expf(t.logits[r * TC + c] - m);
		for (int c = 0; c < TC; c++)
			dl[r * TC + c] = (expf(t.logits[r * TC + c] - m) / z - (c == t.y[r])) / TB;
		loss += (m + logf(z) - t.logits[r * TC + t.y[r]]) / TB;
	}
	*(float *)((uint8_t *)a->scratch + OFF_LOSS) = loss;
	lnsrt_parallel_for(a->pool, TC, toy_grad, &t);
	float lr = a->lr > 0 ? a->lr : 0.5f;
	for (int i = 0; i < TC * TF; i++)
		t.w[i] -= lr * t.gw[i];
	for (int c = 0; c < TC; c++)
		t.b[c] -= lr * t.gb[c];
	LnsFormat f = {8, 3, LNS_SCALE_DELAYED, LNS_ROUND_NEAREST, LNS_UF_ZERO};
	LnsScaleState *st = (LnsScaleState *)((uint8_t *)a->state + OFF_WQ_SCALE);
	lns_encode_tensor(f, st, t.w, (uint8_t *)a->state + OFF_WQ, TC * TF,
	                  lns_rng_key(h->seed, h->step, T_WQ), 1, NULL);
	return 0;
}

static int toy_eval(LnsrtStepArgs *a)
{
	float dl[TB * TC];
	Toy t = toy_bind(a, dl);
	return toy_forward(a, &t);
}

#define TD(name_, role_, dt_, area_, rank_, d0, d1, off_, bytes_, io_, par_)                       \
	{                                                                                          \
		.name = name_, .role = role_, .dtype = dt_, .area = area_, .rank = rank_,          \
		.dims = {d0, d1}, .offset = off_, .bytes = bytes_, .scale_off = -1,                \
		.io_slot = io_, .param = par_                                                      \
	}

static const LnsrtTensorDesc toy_tensors[T_COUNT] = {
    TD("x", LNSRT_ROLE_INPUT, LNSRT_DT_F32, LNSRT_AREA_IO, 2, TB, TF, -1, TB *TF * 4, 0, -1),
    TD("y", LNSRT_ROLE_LABEL, LNSRT_DT_I64, LNSRT_AREA_IO, 1, TB, 0, -1, TB * 8, 1, -1),
    TD("w", LNSRT_ROLE_PARAM, LNSRT_DT_F32, LNSRT_AREA_STATE, 2, TC, TF, OFF_W, TC *TF * 4, -1, -1),
    TD("b", LNSRT_ROLE_PARAM, LNSRT_DT_F32, LNSRT_AREA_STATE, 1, TC, 0, OFF_B, TC * 4, -1, -1),
    {.name = "wq",
     .role = LNSRT_ROLE_STATE,
     .dtype = LNSRT_DT_LNS,
     .area = LNSRT_AREA_STATE,
     .bits = 8,
     .log2g = 3,
     .scale = LNS_SCALE_DELAYED,
     .rank = 2,
     .dims = {TC, TF},
     .offset = OFF_WQ,
     .bytes = TC * TF,
     .scale_off = OFF_WQ_SCALE,
     .io_slot = -1,
     .param = T_W},
    TD("logits", LNSRT_ROLE_ACT, LNSRT_DT_F32, LNSRT_AREA_SCRATCH, 2, TB, TC, OFF_LOGITS,
       TB *TC * 4, -1, -1),
    TD("loss", LNSRT_ROLE_LOSS, LNSRT_DT_F32, LNSRT_AREA_SCRATCH, 0, 0, 0, OFF_LOSS, 4, -1, -1),
    TD("grad/w", LNSRT_ROLE_PGRAD, LNSRT_DT_F32, LNSRT_AREA_SCRATCH, 2, TC, TF, OFF_GW, TC *TF * 4,
       -1, T_W),
    TD("grad/b", LNSRT_ROLE_PGRAD, LNSRT_DT_F32, LNSRT_AREA_SCRATCH, 1, TC, 0, OFF_GB, TC * 4, -1,
       T_B),
};

const LnsrtModelDesc lnsc_model = {
    .abi_version = LNSRT_ABI_VERSION,
    .fingerprint = TOY_FINGERPRINT,
    .name = "toy",
    .recipe = "fp32",
    .state_bytes = STATE_BYTES,
    .scratch_bytes = SCRATCH_BYTES,
    .ntensors = T_COUNT,
    .tensors = toy_tensors,
    .nio = 2,
    .input = T_X,
    .labels = T_Y,
    .logits = T_LOGITS,
    .loss = T_LOSS,
    .batch = TB,
    .nclasses = TC,
    .example_size = TF,
    .init = toy_init,
    .train_step = toy_train,
    .eval_step = toy_eval,
};

/* The executable's main, compiled in with another name. */
int exe_main(int argc, char **argv);
#define main exe_main
#include "runtime/exe_main.c"
#undef main

/* A dataset of n examples of F floats: class = argmax of three fixed linear scores. */
static void make_data(LnsrtDataset *d, int64_t n, int rows, int cols, int nclasses, unsigned seed)
{
	int64_t es = (int64_t)rows * cols;
	d->n = n;
	d->rows = rows;
	d->cols = cols;
	d->nclasses = nclasses;
	d->x = malloc(sizeof(float) * (size_t)(n * es));
	d->y = malloc(sizeof(int64_t) * (size_t)n);
	for (int64_t i = 0; i < n; i++) {
		int best = 0;
		float bs = -1e30f;
		for (int64_t f = 0; f < es; f++) {
			seed = seed * 1664525u + 1013904223u;
			d->x[i * es + f] = (float)((seed >> 8) & 255) / 255.0f;
		}
		for (int c = 0; c < nclasses; c++) {
			float s = 0;
			for (int64_t f = 0; f < es; f++)
				s += d->x[i * es + f] * (float)(((c + 1) * (f + 3)) % 5 - 2);
			if (s > bs) {
				bs = s;
				best = c;
			}
		}
		d->y[i] = best;
	}
}

/* ---- descriptors and the toy model ---- */

static void test_toy_desc(void)
{
	char err[ERRN] = "";
	CHECK(sizeof(LnsScaleState) == 104);
	uint32_t fp = lnsrt_desc_fingerprint(&lnsc_model);
	CHECK_MSG(fp == TOY_FINGERPRINT, "toy fingerprint 0x%08x (pinned 0x%08x)", (unsigned)fp,
	          TOY_FINGERPRINT);
	CHECK_MSG(lnsrt_desc_check(&lnsc_model, err, sizeof err) == 0, "%s", err);
	CHECK(lnsrt_desc_find(&lnsc_model, "grad/w") == T_GW &&
	      lnsrt_desc_find(&lnsc_model, "z") < 0);

	/* Broken descriptors are refused with a message, never run. */
	LnsrtModelDesc d = lnsc_model;
	LnsrtTensorDesc t[T_COUNT];
	memcpy(t, toy_tensors, sizeof t);
	d.tensors = t;
	d.abi_version = 99;
	CHECK(lnsrt_model_new(&d, 1, 0, err, sizeof err) == NULL);
	CHECK_MSG(strstr(err, "ABI version 99"), "%s", err);
	d.abi_version = LNSRT_ABI_VERSION;
	t[T_W].offset = STATE_BYTES - 8;
	d.fingerprint = lnsrt_desc_fingerprint(&d);
	CHECK(lnsrt_model_new(&d, 1, 0, err, sizeof err) == NULL);
	CHECK_MSG(strstr(err, "'w'") && strstr(err, "outside"), "%s", err);
	t[T_W].offset = OFF_W;
	CHECK(lnsrt_model_new(&d, 1, 0, err, sizeof err) == NULL);
	CHECK_MSG(strstr(err, "fingerprint"), "%s", err);
	d.fingerprint = lnsrt_desc_fingerprint(&d);
	CHECK(d.fingerprint == TOY_FINGERPRINT);
	d.train_step = NULL;
	CHECK(lnsrt_model_new(&d, 1, 0, err, sizeof err) == NULL);
	CHECK_MSG(strstr(err, "entry points"), "%s", err);
	/* A renamed state tensor changes the fingerprint; a scratch offset does not. */
	d = lnsc_model;
	d.tensors = t;
	t[T_GW].offset = 192;
	CHECK(lnsrt_desc_fingerprint(&d) == TOY_FINGERPRINT);
	t[T_WQ].name = "wq2";
	CHECK(lnsrt_desc_fingerprint(&d) != TOY_FINGERPRINT);
}

/* Same data, one and two threads: bit-identical state; steps, reads and errors. */
static void test_toy_model(void)
{
	char err[ERRN] = "";
	LnsrtDataset d = {0};
	make_data(&d, TB * 6, 2, 3, TC, 5);
	unsigned char blobs[2][STATE_BYTES];
	for (int k = 0; k < 2; k++) {
		LnsrtModel *m = lnsrt_model_new(&lnsc_model, k ? 2 : 1, 11, err, sizeof err);
		CHECK_MSG(m != NULL, "%s", err);
		if (!m)
			return;
		CHECK(lnsrt_pool_threads(lnsrt_model_pool(m)) == (k ? 2 : 1));
		float loss = 0, first = 0;
		for (int s = 0; s < 30; s++) {
			const float *x = d.x + (s % 6) * TB * TF;
			CHECK(lnsrt_model_train_step(m, x, d.y + (s % 6) * TB, &loss, err,
			                             sizeof err) == 0);
			if (s == 0)
				first = loss;
		}
		CHECK_MSG(loss < first, "loss %g after 30 steps, %g at first", loss, first);
		CHECK(lnsrt_model_step(m) == 30);
		memcpy(blobs[k], lnsrt_model_state(m), STATE_BYTES);
		float logits[TB * TC], w[TC * TF], wq[TC * TF];
		CHECK(lnsrt_model_eval_step(m, d.x, logits, err, sizeof err) == 0);
		CHECK(lnsrt_model_step(m) == 30);
		CHECK(lnsrt_model_read(m, "w", w, TC * TF, err, sizeof err) == 0);
		CHECK(lnsrt_model_read(m, "wq", wq, TC * TF, err, sizeof err) == 0);
		int close = 1;
		for (int i = 0; i < TC * TF; i++)
			close &= fabsf(wq[i] - w[i]) <= 0.06f * fabsf(w[i]) + 1e-3f;
		CHECK_MSG(close, "LNS copy of w decodes close to w");
		CHECK(lnsrt_model_read(m, "w", w, 3, err, sizeof err) != 0);
		CHECK_MSG(strstr(err, "18 elements"), "%s", err);
		CHECK(lnsrt_model_read(m, "x", w, TB * TF, err, sizeof err) != 0);
		CHECK(lnsrt_model_read(m, "nope", w, 1, err, sizeof err) != 0);
		/* a NaN in the input: the step names the tensor and the step */
		float bad[TB * TF];
		memcpy(bad, d.x, sizeof bad);
		bad[5] = NAN;
		CHECK(lnsrt_model_train_step(m, bad, d.y, &loss, err, sizeof err) != 0);
		CHECK_MSG(!strcmp(err, "numeric error: tensor 'logits' has NaN/Inf at step 31"),
		          "%s", err);
		/* telemetry names the LNS tensor */
		char tp[512];
		path_in(tp, sizeof tp, "telemetry.txt");
		FILE *f = fopen(tp, "w");
		lnsrt_model_telemetry(m, f);
		fclose(f);
		size_t n;
		char *txt = (char *)read_all(tp, &n);
		txt[n] = 0;
		CHECK_MSG(strstr(txt, "after 31 steps") && strstr(txt, "wq") &&
		              strstr(txt, "lns8g8") && !strstr(txt, "grad/w"),
		          "%s", txt);
		free(txt);
		LnsrtTrainer tr;
		CHECK(lnsrt_model_trainer(m, &tr, err, sizeof err) == 0);
		CHECK(tr.batch == TB && tr.nclasses == TC && tr.example_size == TF &&
		      tr.state == lnsrt_model_state(m) && tr.desc == &lnsc_model &&
		      tr.state_bytes == STATE_BYTES);
		lnsrt_model_free(m);
	}
	CHECK_MSG(memcmp(blobs[0], blobs[1], STATE_BYTES) == 0, "1 and 2 threads differ");
	lnsrt_dataset_free(&d);
}

/* ---- checkpoint files ---- */

static LnsrtModel *toy_trained(int steps)
{
	char err[ERRN] = "";
	LnsrtDataset d = {0};
	make_data(&d, TB, 2, 3, TC, 9);
	LnsrtModel *m = lnsrt_model_new(&lnsc_model, 1, 3, err, sizeof err);
	for (int s = 0; m && s < steps; s++)
		lnsrt_model_train_step(m, d.x, d.y, NULL, err, sizeof err);
	lnsrt_dataset_free(&d);
	return m;
}

static void test_roundtrip(void)
{
	char err[ERRN] = "", ck[512];
	path_in(ck, sizeof ck, "rt.ckpt");
	LnsrtModel *a = toy_trained(7), *b = toy_trained(0);
	LnsrtTrainState ts = {.epoch = 3,
	                      .batch = TB,
	                      .epoch_step = 2,
	                      .total_steps = 17,
	                      .loss_sum = 0.1 + 0.2,
	                      .seed = 0x123456789abcull,
	                      .train_n = 77};
	CHECK_MSG(
	    lnsrt_checkpoint_save(&lnsc_model, lnsrt_model_state(a), &ts, ck, err, sizeof err) == 0,
	    "%s", err);
	CHECK(count_prefix("rt.ckpt.") == 0); /* no temporary left behind */
	struct stat st;
	CHECK(stat(ck, &st) == 0 && (st.st_mode & 0777) == 0644);
	LnsrtTrainState got;
	CHECK(memcmp(lnsrt_model_state(a), lnsrt_model_state(b), STATE_BYTES) != 0);
	CHECK_MSG(lnsrt_checkpoint_load(&lnsc_model, lnsrt_model_state(b), &got, ck, err,
	                                sizeof err) == 0,
	          "%s", err);
	CHECK(memcmp(lnsrt_model_state(a), lnsrt_model_state(b), STATE_BYTES) == 0);
	CHECK(memcmp(&got, &ts, sizeof ts) == 0);
	CHECK(lnsrt_model_step(b) == 7);

	/* Read without the model: the table, sizes, positions and the blob. */
	LnsrtCheckpoint c;
	CHECK_MSG(lnsrt_checkpoint_read(ck, &c, err, sizeof err) == 0, "%s", err);
	CHECK(c.fingerprint == TOY_FINGERPRINT && c.abi_version == LNSRT_ABI_VERSION);
	CHECK(!strcmp(c.desc.name, "toy") && !strcmp(c.desc.recipe, "fp32"));
	CHECK(c.desc.ntensors == T_COUNT && c.desc.state_bytes == STATE_BYTES && c.desc.nio == 2);
	int same = 1;
	for (int i = 0; i < T_COUNT; i++) {
		const LnsrtTensorDesc *x = &c.tensors[i], *y = &toy_tensors[i];
		same &= !strcmp(x->name, y->name) && x->role == y->role && x->dtype == y->dtype &&
		        x->area == y->area && x->bits == y->bits && x->log2g == y->log2g &&
		        x->rank == y->rank && !memcmp(x->dims, y->dims, sizeof x->dims) &&
		        x->offset == y->offset && x->bytes == y->bytes &&
		        x->scale_off == y->scale_off && x->io_slot == y->io_slot &&
		        x->param == y->param;
	}
	CHECK_MSG(same, "table read back differs");
	CHECK(memcmp(&c.train, &ts, sizeof ts) == 0);
	CHECK(memcmp(c.state, lnsrt_model_state(a), STATE_BYTES) == 0);
	CHECK(((uintptr_t)c.state & 63) == 0);
	lnsrt_telemetry_print(&c.desc, c.state, fopen("/dev/null", "w"));
	lnsrt_checkpoint_free(&c);

	/* Saving over an existing file replaces it; a NULL position is all zeros. */
	CHECK(lnsrt_checkpoint_save(&lnsc_model, lnsrt_model_state(b), NULL, ck, err, sizeof err) ==
	      0);
	CHECK(lnsrt_checkpoint_load(&lnsc_model, lnsrt_model_state(b), &got, ck, err, sizeof err) ==
	      0);
	CHECK(got.epoch == 0 && got.total_steps == 0);
	/* The model handle's save and load. */
	CHECK(lnsrt_model_save(a, ck, err, sizeof err) == 0);
	CHECK(lnsrt_model_load(b, ck, err, sizeof err) == 0);
	CHECK(memcmp(lnsrt_model_state(a), lnsrt_model_state(b), STATE_BYTES) == 0);
	/* An unwritable place fails with the path and leaves nothing. */
	char bad[512];
	path_in(bad, sizeof bad, "no-such-dir/x.ckpt");
	CHECK(lnsrt_checkpoint_save(&lnsc_model, lnsrt_model_state(b), NULL, bad, err,
	                            sizeof err) != 0);
	CHECK_MSG(strstr(err, "no-such-dir/x.ckpt") && strstr(err, "temporary"), "%s", err);
	lnsrt_model_free(a);
	lnsrt_model_free(b);
}

/* Loads path into a fresh toy model: the error (if any) in err; the state must be untouched
 * when loading fails. Returns the load's result. */
static int try_load(const char *path, char *err)
{
	LnsrtModel *m = toy_trained(1);
	unsigned char before[STATE_BYTES];
	memcpy(before, lnsrt_model_state(m), STATE_BYTES);
	int rc = lnsrt_checkpoint_load(&lnsc_model, lnsrt_model_state(m), NULL, path, err, ERRN);
	if (rc)
		CHECK_MSG(memcmp(before, lnsrt_model_state(m), STATE_BYTES) == 0,
		          "a failed load changed the state (%s)", err);
	lnsrt_model_free(m);
	return rc;
}

static void test_damage(void)
{
	char err[ERRN] = "", ck[512], bad[512];
	path_in(ck, sizeof ck, "good.ckpt");
	path_in(bad, sizeof bad, "bad.ckpt");
	LnsrtModel *m = toy_trained(4);
	CHECK(lnsrt_checkpoint_save(&lnsc_model, lnsrt_model_state(m), NULL, ck, err, sizeof err) ==
	      0);
	lnsrt_model_free(m);
	size_t n;
	unsigned char *p = read_all(ck, &n);
	CHECK(p && n > 128 + STATE_BYTES);
	CHECK(try_load(ck, err) == 0);

	/* One flipped bit anywhere before the CRC: header, table, padding, blob, or the CRC. */
	static const double where[] = {0.1, 0.2, 0.4, 0.6, 0.8, 0.95};
	for (size_t i = 0; i < sizeof where / sizeof *where; i++) {
		size_t at = 20 + (size_t)(where[i] * (double)(n - 24));
		p[at] ^= 0x10;
		write_all(bad, p, n);
		p[at] ^= 0x10;
		CHECK(try_load(bad, err) != 0);
		CHECK_MSG(strstr(err, "bad.ckpt") &&
		              (strstr(err, "corrupt") || strstr(err, "version")),
		          "byte %zu: %s", at, err);
	}
	p[n - 1] ^= 1;
	write_all(bad, p, n);
	p[n - 1] ^= 1;
	CHECK(try_load(bad, err) != 0);
	CHECK_MSG(strstr(err, "corrupt: CRC mismatch"), "%s", err);
	p[200] ^= 1; /* a blob byte: nothing but the CRC notices */
	write_all(bad, p, n);
	p[200] ^= 1;
	CHECK(try_load(bad, err) != 0);
	CHECK_MSG(strstr(err, "CRC"), "%s", err);

	/* Cut short anywhere, or grown. */
	static const size_t cuts[] = {0, 4, 8, 100, 127, 128, 200, 400};
	for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
		write_all(bad, p, cuts[i]);
		CHECK(try_load(bad, err) != 0);
		CHECK_MSG(strstr(err, "truncated") && strstr(err, "bad.ckpt"), "cut at %zu: %s",
		          cuts[i], err);
	}
	write_all(bad, p, n - 1);
	CHECK(try_load(bad, err) != 0);
	CHECK_MSG(strstr(err, "truncated"), "%s", err);
	unsigned char *q = malloc(n + 3);
	memcpy(q, p, n);
	memset(q + n, 0, 3);
	write_all(bad, q, n + 3);
	CHECK(try_load(bad, err) != 0);
	CHECK_MSG(strstr(err, "trailing"), "%s", err);
	free(q);

	/* Not a checkpoint at all; a missing file. */
	write_all(bad, "hello, world, this is not a checkpoint", 38);
	CHECK(try_load(bad, err) != 0);
	CHECK_MSG(strstr(err, "not an lnsc checkpoint"), "%s", err);
	path_in(bad, sizeof bad, "missing.ckpt");
	CHECK(try_load(bad, err) != 0);
	CHECK_MSG(strstr(err, "missing.ckpt") && strstr(err, "cannot open"), "%s", err);
	free(p);

	/* Another model's (or layout's) checkpoint: same sizes, another fingerprint. */
	LnsrtModelDesc other = lnsc_model;
	LnsrtTensorDesc t[T_COUNT];
	memcpy(t, toy_tensors, sizeof t);
	t[T_B].name = "bias";
	other.tensors = t;
	other.fingerprint = lnsrt_desc_fingerprint(&other);
	m = toy_trained(1);
	path_in(bad, sizeof bad, "other.ckpt");
	CHECK(lnsrt_checkpoint_save(&other, lnsrt_model_state(m), NULL, bad, err, sizeof err) == 0);
	lnsrt_model_free(m);
	CHECK(try_load(bad, err) != 0);
	CHECK_MSG(strstr(err, "checkpoint is for a different model or layout") &&
	              strstr(err, "other.ckpt"),
	          "%s", err);
	CHECK(count_prefix("good.ckpt.") == 0 && count_prefix("other.ckpt.") == 0);
}

/* ---- the interpreter behind a descriptor ---- */

typedef struct Mlp {
	IrCtx *c;
	IrGraph *g;
	IrInterpModel *im;
	const LnsrtModelDesc *d;
} Mlp;

enum { MB = 8, MF = 6, MH = 5, MC = 4 };

static IrValue *mlp_param(IrGraph *g, const char *name, int rank, const int64_t *dims,
                          unsigned seed)
{
	const IrType *t = ir_type(g->ctx, IR_DT_F32, rank, dims);
	float w[64];
	for (int64_t i = 0; i < t->numel; i++) {
		seed = seed * 1664525u + 1013904223u;
		w[i] = ((float)((seed >> 8) & 1023) / 1023.0f - 0.5f) * (rank == 2 ? 0.8f : 0.1f);
	}
	return ir_value_new(g, name, t, IR_ROLE_PARAM, w, NULL);
}

/* x[8,6] -> Gemm 5 -> Relu -> Gemm 4, through the lns-madam pipeline. */
static int mlp_new(Mlp *m)
{
	memset(m, 0, sizeof *m);
	m->c = ir_ctx_new();
	m->g = ir_graph_new(m->c, "tiny_mlp", "tiny_mlp");
	m->g->opset = 13;
	IrGraph *g = m->g;
	int64_t xd[2] = {MB, MF}, w1[2] = {MH, MF}, b1[1] = {MH}, w2[2] = {MC, MH}, b2[1] = {MC};
	IrValue *x =
	    ir_value_new(g, "x", ir_type(m->c, IR_DT_F32, 2, xd), IR_ROLE_INPUT, NULL, NULL);
	IrAttrs at = {.gemm = {1.0f, 1.0f, 0, 1}};
	IrValue *in1[3] = {x, mlp_param(g, "fc1.weight", 2, w1, 1),
	                   mlp_param(g, "fc1.bias", 1, b1, 2)};
	IrValue *h = ir_build1(g, IR_OP_GEMM, "fc1", 3, in1, &at);
	IrValue *r = h ? ir_build1(g, IR_OP_RELU, "relu", 1, &h, NULL) : NULL;
	IrValue *in2[3] = {r, mlp_param(g, "fc2.weight", 2, w2, 3),
	                   mlp_param(g, "fc2.bias", 1, b2, 4)};
	IrValue *y = r ? ir_build1(g, IR_OP_GEMM, "fc2", 3, in2, &at) : NULL;
	CHECK_MSG(y != NULL, "%s", ir_diag_text(m->c));
	if (!y)
		return -1;
	y->is_output = 1;
	ir_vec_push(&g->outputs, y);
	PassOptions o;
	pass_options_default(&o);
	o.recipe = "lns-madam";
	if (pass_pipeline(g, &o)) {
		CHECK_MSG(0, "pipeline: %s", ir_diag_text(m->c));
		return -1;
	}
	m->im = ir_interp_model_new(g, "lns-madam");
	CHECK_MSG(m->im != NULL, "%s", ir_diag_text(m->c));
	if (!m->im)
		return -1;
	m->d = ir_interp_model_desc(m->im);
	return 0;
}

static void mlp_free(Mlp *m)
{
	ir_interp_model_free(m->im);
	ir_graph_free(m->g);
	ir_ctx_free(m->c);
}

static void test_ir_desc(void)
{
	Mlp m;
	char err[ERRN] = "";
	if (mlp_new(&m))
		return;
	const LnsrtModelDesc *d = m.d;
	IrGraph *g = m.g;
	CHECK_MSG(lnsrt_desc_check(d, err, sizeof err) == 0, "%s", err);
	CHECK(d->abi_version == LNSRT_ABI_VERSION && d->fingerprint == lnsrt_desc_fingerprint(d));
	CHECK(!strcmp(d->name, "tiny_mlp") && !strcmp(d->recipe, "lns-madam"));
	CHECK(d->batch == MB && d->nclasses == MC && d->example_size == MF && d->nio == 2);
	CHECK(d->state_bytes == (int64_t)g->plan->state_bytes &&
	      d->scratch_bytes == (int64_t)g->plan->scratch_bytes);
	CHECK(d->input >= 0 && !strcmp(d->tensors[d->input].name, "x") &&
	      d->tensors[d->input].io_slot == 0 && d->tensors[d->input].offset == -1);
	CHECK(d->labels >= 0 && d->tensors[d->labels].io_slot == 1 &&
	      d->tensors[d->labels].dtype == LNSRT_DT_I64);
	CHECK(d->logits >= 0 && d->tensors[d->logits].dims[1] == MC);
	CHECK(d->loss >= 0 && d->tensors[d->loss].role == LNSRT_ROLE_LOSS);
	CHECK(d->init && d->train_step && d->eval_step);
	/* every value with storage is there, at the plan's place */
	int n_state = 0, n_lns = 0, ok = 1;
	for (int i = 0; i < g->values.n; i++) {
		IrValue *v = IR_VALUE(g, i);
		int k = lnsrt_desc_find(d, v->name);
		int want = (v->loc.area != IR_AREA_NONE && v->loc.area != IR_AREA_CONST) ||
		           v->loc.scale_off >= 0;
		if ((k >= 0) != want) {
			ok = 0;
			continue;
		}
		if (k < 0)
			continue;
		const LnsrtTensorDesc *t = &d->tensors[k];
		ok &= t->area == (int)v->loc.area && t->scale_off == v->loc.scale_off &&
		      t->dtype == (int)v->type->dt && t->rank == v->type->rank;
		if (v->loc.area == IR_AREA_STATE || v->loc.area == IR_AREA_SCRATCH)
			ok &= t->offset == (int64_t)v->loc.offset &&
			      t->bytes == (int64_t)v->loc.bytes;
		if (v->type->dt == IR_DT_LNS)
			ok &= t->bits == v->type->fmt.bits && t->log2g == v->type->fmt.log2g,
			    n_lns++;
		if (v->role == IR_ROLE_STATE) {
			n_state++;
			ok &= t->param >= 0 && !strcmp(d->tensors[t->param].name, v->param->name);
		}
	}
	CHECK_MSG(ok, "table does not follow the plan");
	CHECK_MSG(n_state >= 4 && n_lns >= 4, "%d state tensors, %d LNS tensors", n_state, n_lns);
	CHECK(lnsrt_desc_find(d, "fc1.weight") >= 0 &&
	      d->tensors[lnsrt_desc_find(d, "fc1.weight")].dtype == LNSRT_DT_LNS);
	/* the same graph gives the same table */
	IrArena *a = ir_arena_new();
	LnsrtModelDesc again;
	CHECK(ir_model_desc(g, a, "lns-madam", &again) == 0);
	CHECK(again.fingerprint == d->fingerprint && again.ntensors == d->ntensors);
	ir_arena_free(a);
	mlp_free(&m);
}

/* lnsrt_model over the interpreter equals the interpreter run directly, step for step. */
static void test_interp_model(void)
{
	Mlp m;
	char err[ERRN] = "";
	if (mlp_new(&m))
		return;
	LnsrtDataset d = {0};
	make_data(&d, MB * 3, 2, 3, MC, 21);
	IrInterp *ref = ir_interp_new(m.g, 5);
	LnsrtModel *lm = lnsrt_model_new(m.d, 2, 5, err, sizeof err);
	CHECK_MSG(lm && ref, "%s %s", err, ir_diag_text(m.c));
	if (!lm || !ref)
		goto done;
	size_t sb = (size_t)m.d->state_bytes;
	CHECK(memcmp(lnsrt_model_state(lm), ir_interp_state_blob(ref), sb) == 0);
	IrValue *x = m.g->inputs.v[0], *out = m.g->outputs.v[0];
	int same = 1;
	for (int s = 0; s < 9; s++) {
		const float *bx = d.x + (s % 3) * MB * MF;
		const int64_t *by = d.y + (s % 3) * MB;
		float l1 = NAN, l2 = NAN;
		CHECK(lnsrt_model_train_step(lm, bx, by, &l1, err, sizeof err) == 0);
		ir_interp_bind(ref, x, bx);
		ir_interp_bind(ref, m.g->labels, by);
		CHECK(ir_interp_run(ref, IR_MODE_TRAIN) == 0);
		ir_interp_read(ref, m.g->loss, &l2);
		same &= memcmp(&l1, &l2, sizeof l1) == 0 &&
		        memcmp(lnsrt_model_state(lm), ir_interp_state_blob(ref), sb) == 0;
	}
	CHECK_MSG(same, "the interpreter model and the interpreter differ");
	CHECK(lnsrt_model_step(lm) == 9 && ir_interp_step(ref) == 9);
	float lg1[MB * MC], lg2[MB * MC], w1[MH * MF], w2[MH * MF];
	CHECK(lnsrt_model_eval_step(lm, d.x, lg1, err, sizeof err) == 0);
	ir_interp_bind(ref, x, d.x);
	ir_interp_bind(ref, m.g->labels, NULL);
	CHECK(ir_interp_run(ref, IR_MODE_EVAL) == 0 && ir_interp_read(ref, out, lg2) == 0);
	CHECK(memcmp(lg1, lg2, sizeof lg1) == 0);
	CHECK(lnsrt_model_read(lm, "fc1.weight", w1, MH * MF, err, sizeof err) == 0);
	CHECK(ir_interp_read(ref, ir_graph_value(m.g, "fc1.weight"), w2) == 0);
	CHECK(memcmp(w1, w2, sizeof w1) == 0);

	/* A learning rate override changes the step; 0 goes back to the compiled one. */
	unsigned char *save = malloc(sb);
	memcpy(save, lnsrt_model_state(lm), sb);
	float la, lb;
	lnsrt_model_set_lr(lm, 0.5f);
	lnsrt_model_train_step(lm, d.x, d.y, &la, err, sizeof err);
	unsigned char *fast = malloc(sb);
	memcpy(fast, lnsrt_model_state(lm), sb);
	memcpy(lnsrt_model_state(lm), save, sb);
	lnsrt_model_set_lr(lm, 0);
	lnsrt_model_train_step(lm, d.x, d.y, &lb, err, sizeof err);
	ir_interp_bind(ref, x, d.x);
	ir_interp_bind(ref, m.g->labels, d.y);
	ir_interp_run(ref, IR_MODE_TRAIN);
	CHECK(la == lb); /* same forward */
	CHECK(memcmp(fast, lnsrt_model_state(lm), sb) != 0);
	CHECK(memcmp(ir_interp_state_blob(ref), lnsrt_model_state(lm), sb) == 0);
	free(save);
	free(fast);

	/* Inf in the input: the numeric error names a tensor of the table. */
	float big[MB * MF];
	for (int i = 0; i < MB * MF; i++)
		big[i] = INFINITY;
	CHECK(lnsrt_model_train_step(lm, big, d.y, &la, err, sizeof err) != 0);
	CHECK_MSG(!strncmp(err, "numeric error: tensor '", 23) && strstr(err, "NaN/Inf at step 11"),
	          "%s", err);
	/* A label out of range is bad input naming the labels, as in generated code. */
	int64_t bady[MB] = {0};
	bady[3] = 99;
	CHECK(lnsrt_model_train_step(lm, d.x, bady, &la, err, sizeof err) != 0);
	CHECK_MSG(strstr(err, "bad input: tensor 'labels' holds a value out of range") &&
	              strstr(err, "[0, 4)"),
	          "%s", err);
	LnsrtTrainer tr;
	CHECK(lnsrt_model_trainer(lm, &tr, err, sizeof err) == 0 && tr.batch == MB);
done:
	lnsrt_model_free(lm);
	ir_interp_free(ref);
	lnsrt_dataset_free(&d);
	mlp_free(&m);
}

/* ---- resuming through the driver ---- */

/* A trainer that forwards to another and raises SIGINT after step `at`. */
typedef struct Raiser {
	LnsrtTrainer inner;
	int64_t calls, at;
} Raiser;

static int raiser_train(void *impl, const float *x, const int64_t *y, float *loss, char *err,
                        size_t errn)
{
	Raiser *r = impl;
	int rc = r->inner.train_step(r->inner.impl, x, y, loss, err, errn);
	if (++r->calls == r->at)
		raise(SIGINT);
	return rc;
}

static int raiser_eval(void *impl, const float *x, float *logits, char *err, size_t errn)
{
	Raiser *r = impl;
	return r->inner.eval_step(r->inner.impl, x, logits, err, errn);
}

typedef struct RunCfg {
	int epochs, threads;
	int64_t max_steps, every, sigint_at;
	const char *ckpt, *resume, *metrics;
} RunCfg;

/* One lnsrt_train run on a fresh model of d; its final state goes to blob. Returns the
 * driver's result. */
static int run_train(const LnsrtModelDesc *d, const LnsrtDataset *tr, const LnsrtDataset *te,
                     const RunCfg *c, unsigned char *blob, LnsrtEpochResult *last, char *err)
{
	LnsrtModel *m = lnsrt_model_new(d, c->threads, 77, err, ERRN);
	if (!m)
		return -100;
	Raiser r = {.at = c->sigint_at};
	LnsrtTrainer t;
	lnsrt_model_trainer(m, &r.inner, err, ERRN);
	t = r.inner;
	t.impl = &r;
	t.train_step = raiser_train;
	t.eval_step = raiser_eval;
	LnsrtTrainOpts o;
	lnsrt_train_opts_init(&o);
	o.epochs = c->epochs;
	o.seed = 1234;
	o.progress = 0;
	o.out = fopen("/dev/null", "w");
	o.max_steps = c->max_steps;
	o.checkpoint_path = c->ckpt;
	o.checkpoint_every = c->every;
	o.resume_path = c->resume;
	o.metrics_path = c->metrics;
	int rc = lnsrt_train(&t, tr, te, &o, last, err, ERRN);
	fclose(o.out);
	memcpy(blob, lnsrt_model_state(m), (size_t)d->state_bytes);
	lnsrt_model_free(m);
	return rc;
}

static void check_resume(const LnsrtModelDesc *d, const char *what)
{
	char err[ERRN] = "", ck[512], metrics[512];
	LnsrtDataset tr = {0}, te = {0};
	int64_t es = d->example_size;
	make_data(&tr, (int64_t)d->batch * 5 + 3, 2, (int)(es / 2), d->nclasses, 31);
	make_data(&te, 13, 2, (int)(es / 2), d->nclasses, 32);
	size_t sb = (size_t)d->state_bytes;
	unsigned char *ref = malloc(sb), *got = malloc(sb);
	LnsrtEpochResult lref, lgot;
	path_in(ck, sizeof ck, "resume.ckpt");
	path_in(metrics, sizeof metrics, "resume.csv");

	/* uninterrupted: 3 epochs of 5 steps */
	RunCfg full = {.epochs = 3, .threads = 1};
	CHECK_MSG(run_train(d, &tr, &te, &full, ref, &lref, err) == 0, "%s: %s", what, err);
	CHECK(lref.epoch == 3 && lref.steps == 15);

	/* stopped by a step limit in epoch 2, resumed with another thread count */
	static const int64_t stops[] = {1, 5, 7, 14};
	for (size_t i = 0; i < sizeof stops / sizeof *stops; i++) {
		RunCfg part = {.epochs = 3,
		               .threads = 2,
		               .max_steps = stops[i],
		               .ckpt = ck,
		               .metrics = metrics};
		CHECK_MSG(run_train(d, &tr, &te, &part, got, NULL, err) == 0, "%s: %s", what, err);
		RunCfg rest = {
		    .epochs = 3, .threads = 1, .resume = ck, .ckpt = ck, .metrics = metrics};
		CHECK_MSG(run_train(d, &tr, &te, &rest, got, &lgot, err) == 0, "%s: %s", what, err);
		CHECK_MSG(memcmp(ref, got, sb) == 0, "%s: resumed after %lld steps: state differs",
		          what, (long long)stops[i]);
		CHECK_MSG(lgot.epoch == 3 && lgot.steps == 15 &&
		              memcmp(&lgot.train_loss, &lref.train_loss, sizeof(double)) == 0 &&
		              memcmp(&lgot.test_loss, &lref.test_loss, sizeof(double)) == 0,
		          "%s: after %lld: epoch %d, %lld steps, train loss %.17g vs %.17g", what,
		          (long long)stops[i], lgot.epoch, (long long)lgot.steps, lgot.train_loss,
		          lref.train_loss);
		size_t n;
		char *csv = (char *)read_all(metrics, &n);
		csv[n] = 0;
		int rows = 0;
		for (char *s = strchr(csv, '\n'); s && s[1]; s = strchr(s + 1, '\n'))
			rows++;
		CHECK_MSG(rows == 3 && strstr(csv, "\n1,5,") && strstr(csv, "\n2,10,") &&
		              strstr(csv, "\n3,15,"),
		          "%s: metrics after resume:\n%s", what, csv);
		free(csv);
	}

	/* SIGINT at step 8 (checkpoints every 3 steps too): saved, then resumed */
	RunCfg intr = {.epochs = 3, .threads = 1, .every = 3, .sigint_at = 8, .ckpt = ck};
	int rc = run_train(d, &tr, &te, &intr, got, NULL, err);
	CHECK_MSG(rc == LNSRT_INTERRUPTED && strstr(err, "interrupted at epoch 2, step 3/5") &&
	              strstr(err, "--resume"),
	          "%s: rc %d: %s", what, rc, err);
	CHECK(signal(SIGINT, SIG_DFL) == SIG_DFL); /* the driver put the old handler back */
	LnsrtCheckpoint c;
	CHECK(lnsrt_checkpoint_read(ck, &c, err, ERRN) == 0);
	CHECK(c.train.epoch == 2 && c.train.epoch_step == 3 && c.train.total_steps == 8 &&
	      c.train.seed == 1234 && c.train.batch == d->batch && c.train.train_n == tr.n);
	CHECK(memcmp(c.state, got, sb) == 0);
	lnsrt_checkpoint_free(&c);
	RunCfg rest = {.epochs = 3, .threads = 1, .resume = ck};
	CHECK_MSG(run_train(d, &tr, &te, &rest, got, NULL, err) == 0, "%s", err);
	CHECK_MSG(memcmp(ref, got, sb) == 0, "%s: resumed after SIGINT: state differs", what);
	/* a checkpoint written by checkpoint_every (step 6) resumes as well */
	RunCfg every = {.epochs = 3, .threads = 1, .every = 3, .max_steps = 6, .ckpt = ck};
	run_train(d, &tr, &te, &every, got, NULL, err);
	CHECK(run_train(d, &tr, &te, &rest, got, NULL, err) == 0);
	CHECK_MSG(memcmp(ref, got, sb) == 0, "%s: resumed from step 6: state differs", what);

	/* nothing left to do; a training set of another size; a missing file */
	RunCfg done = {.epochs = 3, .threads = 1, .resume = ck, .ckpt = ck};
	run_train(d, &tr, &te, &full, got, NULL, err);
	CHECK(run_train(d, &tr, &te, &done, got, NULL, err) == 0);
	RunCfg more = {.epochs = 4, .threads = 1, .max_steps = 16, .resume = ck, .ckpt = ck};
	CHECK(run_train(d, &tr, &te, &more, got, &lgot, err) == 0 && lgot.steps == 16);
	tr.n -= 3;
	rc = run_train(d, &tr, &te, &rest, got, NULL, err);
	CHECK_MSG(rc == LNSRT_BAD_INPUT && strstr(err, "training set of"), "%s", err);
	tr.n += 3;
	RunCfg missing = {.epochs = 3, .threads = 1, .resume = "/nonexistent/x.ckpt"};
	rc = run_train(d, &tr, &te, &missing, got, NULL, err);
	CHECK_MSG(rc == LNSRT_BAD_INPUT && strstr(err, "/nonexistent/x.ckpt"), "%s", err);
	CHECK(count_prefix("resume.ckpt.") == 0 && count_prefix("resume.csv.") == 0);
	free(ref);
	free(got);
	lnsrt_dataset_free(&tr);
	lnsrt_dataset_free(&te);
}

static void test_resume(void)
{
	check_resume(&lnsc_model, "toy model");
	Mlp m;
	if (mlp_new(&m))
		return;
	check_resume(m.d, "interpreter model");
	/* a checkpoint of one model does not resume the other */
	char err[ERRN] = "", ck[512];
	path_in(ck, sizeof ck, "resume.ckpt");
	LnsrtDataset tr = {0};
	make_data(&tr, TB * 5, 2, 3, TC, 1);
	unsigned char *blob = malloc(STATE_BYTES);
	RunCfg c = {.epochs = 1, .threads = 1, .resume = ck};
	CHECK(run_train(&lnsc_model, &tr, NULL, &c, blob, NULL, err) == LNSRT_BAD_INPUT);
	CHECK_MSG(strstr(err, "different model or layout"), "%s", err);
	/* a trainer without state cannot checkpoint */
	LnsrtModel *lm = lnsrt_model_new(&lnsc_model, 1, 0, err, sizeof err);
	LnsrtTrainer t;
	lnsrt_model_trainer(lm, &t, err, sizeof err);
	t.state = NULL;
	LnsrtTrainOpts o;
	lnsrt_train_opts_init(&o);
	o.checkpoint_path = ck;
	CHECK(lnsrt_train(&t, &tr, NULL, &o, NULL, err, sizeof err) == LNSRT_BAD_INPUT);
	CHECK_MSG(strstr(err, "cannot checkpoint"), "%s", err);
	lnsrt_model_free(lm);
	free(blob);
	lnsrt_dataset_free(&tr);
	mlp_free(&m);
}

/* ---- metadata (format version 2), version 1 files, positions across calls ---- */

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* A version 1 file of the same checkpoint: the table without the metadata string, the blob
 * moved to the next multiple of 64, the CRC recomputed. The v2 file must have empty meta. */
static void write_v1(const char *v2, const char *v1)
{
	size_t n;
	unsigned char *p = read_all(v2, &n);
	uint64_t tb = get32(p + 32) | (uint64_t)get32(p + 36) << 32;
	uint64_t boff = get32(p + 40) | (uint64_t)get32(p + 44) << 32;
	size_t at = 128 + 4 + get32(p + 128); /* after the name */
	at += 4 + get32(p + at);               /* after the recipe: the metadata's length */
	CHECK(get32(p + at) == 0);
	size_t blob = n - 4 - boff, ntb = tb - 4, nboff = (128 + ntb + 63) / 64 * 64;
	unsigned char *q = calloc(1, nboff + blob + 4);
	memcpy(q, p, at);
	memcpy(q + at, p + at + 4, 128 + tb - at - 4);
	memcpy(q + nboff, p + boff, blob);
	q[8] = 1, q[9] = q[10] = q[11] = 0; /* version 1 */
	put64(q + 32, ntb);
	put64(q + 40, nboff);
	uint32_t crc = (uint32_t)crc32(0L, q, (uInt)(nboff + blob));
	for (int i = 0; i < 4; i++)
		q[nboff + blob + (size_t)i] = (unsigned char)(crc >> (8 * i));
	write_all(v1, q, nboff + blob + 4);
	free(q);
	free(p);
}

static void test_meta(void)
{
	char err[ERRN] = "", ck[512], v1[512];
	path_in(ck, sizeof ck, "meta.ckpt");
	path_in(v1, sizeof v1, "v1.ckpt");
	LnsrtModel *a = toy_trained(5), *b = toy_trained(0);
	const char *meta = "lnsc-trainer 1\nmodel\t/x/mlp.onnx\noverride\tw\tlns6g8\t\n";
	CHECK_MSG(lnsrt_checkpoint_save_meta(&lnsc_model, lnsrt_model_state(a), NULL, meta, ck, err,
	                                     sizeof err) == 0,
	          "%s", err);
	LnsrtCheckpoint c;
	CHECK_MSG(lnsrt_checkpoint_read(ck, &c, err, sizeof err) == 0, "%s", err);
	CHECK(!strcmp(c.meta, meta));
	CHECK(memcmp(c.state, lnsrt_model_state(a), STATE_BYTES) == 0);
	lnsrt_checkpoint_free(&c);
	CHECK(lnsrt_checkpoint_load(&lnsc_model, lnsrt_model_state(b), NULL, ck, err, sizeof err) ==
	      0);
	CHECK(memcmp(lnsrt_model_state(a), lnsrt_model_state(b), STATE_BYTES) == 0);
	/* no metadata: "" back; the same file as version 1 reads and loads the same blob */
	LnsrtTrainState ts = {.epoch = 2, .batch = TB, .epoch_step = 1, .total_steps = 6,
	                      .seed = 5, .train_n = 40};
	CHECK(lnsrt_checkpoint_save(&lnsc_model, lnsrt_model_state(a), &ts, ck, err, sizeof err) ==
	      0);
	CHECK(lnsrt_checkpoint_read(ck, &c, err, sizeof err) == 0 && !strcmp(c.meta, ""));
	lnsrt_checkpoint_free(&c);
	write_v1(ck, v1);
	CHECK_MSG(lnsrt_checkpoint_read(v1, &c, err, sizeof err) == 0, "%s", err);
	CHECK(!strcmp(c.meta, "") && !strcmp(c.desc.name, "toy") && c.train.total_steps == 6);
	CHECK(memcmp(c.state, lnsrt_model_state(a), STATE_BYTES) == 0);
	lnsrt_checkpoint_free(&c);
	LnsrtModel *d = toy_trained(0);
	LnsrtTrainState got;
	CHECK_MSG(lnsrt_checkpoint_load(&lnsc_model, lnsrt_model_state(d), &got, v1, err,
	                                sizeof err) == 0,
	          "%s", err);
	CHECK(memcmp(lnsrt_model_state(a), lnsrt_model_state(d), STATE_BYTES) == 0);
	CHECK(memcmp(&got, &ts, sizeof ts) == 0);
	/* a version from the future is refused by number */
	size_t n;
	unsigned char *p = read_all(ck, &n);
	p[8] = 3;
	write_all(v1, p, n);
	free(p);
	CHECK(lnsrt_checkpoint_read(v1, &c, err, sizeof err) != 0);
	CHECK_MSG(strstr(err, "version 3") && strstr(err, "versions 1 to 2"), "%s", err);
	lnsrt_model_free(a);
	lnsrt_model_free(b);
	lnsrt_model_free(d);
}

/* Trains m through the driver with a position kept across calls; steps 0: whole epochs. */
static int train_part(LnsrtModel *m, const LnsrtDataset *tr, LnsrtTrainState *pos, int epochs,
                      int64_t max_steps, double *loss_sum, FILE *out, char *err)
{
	LnsrtTrainer t;
	lnsrt_model_trainer(m, &t, err, ERRN);
	LnsrtTrainOpts o;
	lnsrt_train_opts_init(&o);
	o.epochs = epochs;
	o.seed = 99;
	o.progress = 0;
	o.out = out;
	o.quiet = 1;
	o.max_steps = max_steps;
	o.position = pos;
	o.loss_sum = loss_sum;
	return lnsrt_train(&t, tr, NULL, &o, NULL, err, ERRN);
}

static void test_position(void)
{
	char err[ERRN] = "";
	LnsrtDataset tr = {0};
	make_data(&tr, TB * 5 + 2, 2, 3, TC, 41);
	FILE *out = tmpfile();
	LnsrtModel *a = lnsrt_model_new(&lnsc_model, 1, 3, err, sizeof err);
	LnsrtModel *b = lnsrt_model_new(&lnsc_model, 1, 3, err, sizeof err);
	LnsrtTrainState pa = {0}, pb = {0};
	double la = 0, lb = 0;
	CHECK_MSG(train_part(a, &tr, &pa, 3, 0, &la, out, err) == 0, "%s", err);
	CHECK(pa.epoch == 4 && pa.total_steps == 15 && pa.epoch_step == 0);
	/* the same run in pieces: 4 steps, to step 11, then the rest of the 3 epochs */
	CHECK(train_part(b, &tr, &pb, 1 << 30, 4, &lb, out, err) == 0);
	CHECK(pb.epoch == 1 && pb.epoch_step == 4 && pb.total_steps == 4 && pb.seed == 99);
	CHECK(train_part(b, &tr, &pb, 1 << 30, 11, &lb, out, err) == 0);
	CHECK(pb.epoch == 3 && pb.epoch_step == 1 && pb.total_steps == 11);
	CHECK(train_part(b, &tr, &pb, 3, 0, &lb, out, err) == 0);
	CHECK(pb.epoch == 4 && pb.total_steps == 15);
	CHECK(memcmp(lnsrt_model_state(a), lnsrt_model_state(b), STATE_BYTES) == 0);
	CHECK_MSG(la > 0 && fabs(la - lb) <= 1e-12 * la, "loss sums %.17g %.17g", la, lb);
	/* nothing left: the position stays; quiet runs wrote nothing */
	CHECK(train_part(b, &tr, &pb, 3, 0, &lb, out, err) == 0 && pb.total_steps == 15);
	CHECK(ftell(out) == 0);
	/* a position from another training set is refused */
	tr.n -= 2;
	pb.epoch = 2;
	CHECK(train_part(b, &tr, &pb, 3, 0, &lb, out, err) == LNSRT_BAD_INPUT);
	CHECK_MSG(strstr(err, "training set of"), "%s", err);
	fclose(out);
	lnsrt_model_free(a);
	lnsrt_model_free(b);
	lnsrt_dataset_free(&tr);
}

/* ---- the training executable ---- */

/* Runs exe_main with argv (NULL-terminated), stdout and stderr into files; returns its exit
 * code and the captured text in out (both streams). */
static int run_exe(const char *const *args, char *out, size_t outn)
{
	char *argv[32];
	int argc = 0;
	argv[argc++] = "trainer";
	for (; args[argc - 1]; argc++)
		argv[argc] = (char *)args[argc - 1];
	argv[argc] = NULL;
	char op[512];
	path_in(op, sizeof op, "exe.out");
	fflush(stdout);
	fflush(stderr);
	int so = dup(1), se = dup(2);
	FILE *f = fopen(op, "w");
	dup2(fileno(f), 1);
	dup2(fileno(f), 2);
	int rc = exe_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	fclose(f);
	size_t n;
	char *txt = (char *)read_all(op, &n);
	snprintf(out, outn, "%.*s", (int)n, txt);
	free(txt);
	return rc;
}

static void write_csv(const char *path, const LnsrtDataset *d, int header)
{
	FILE *f = fopen(path, "w");
	if (header)
		fprintf(f, "label,p0,p1,p2,p3,p4,p5\n");
	for (int64_t i = 0; i < d->n; i++) {
		fprintf(f, "%lld", (long long)d->y[i]);
		for (int k = 0; k < d->rows * d->cols; k++)
			fprintf(f, ",%d", (int)(d->x[i * d->rows * d->cols + k] * 255.0f + 0.5f));
		fprintf(f, "\n");
	}
	fclose(f);
}

static void ckpt_state(const char *path, unsigned char *blob)
{
	char err[ERRN];
	LnsrtCheckpoint c;
	CHECK_MSG(lnsrt_checkpoint_read(path, &c, err, sizeof err) == 0, "%s", err);
	if (c.state)
		memcpy(blob, c.state, (size_t)c.desc.state_bytes);
	lnsrt_checkpoint_free(&c);
}

static void test_exe(void)
{
	char out[8192], dir[512], ca[512], cb[512], met[512], one[512];
	path_in(dir, sizeof dir, "csvdata");
	mkdir(dir, 0755);
	LnsrtDataset tr = {0}, te = {0};
	make_data(&tr, 22, 2, 3, TC, 41);
	make_data(&te, 9, 2, 3, TC, 42);
	char p[600];
	snprintf(p, sizeof p, "%s/train.csv", dir);
	write_csv(p, &tr, 1);
	snprintf(p, sizeof p, "%s/test.csv", dir);
	write_csv(p, &te, 0);
	path_in(ca, sizeof ca, "a.ckpt");
	path_in(cb, sizeof cb, "b.ckpt");
	path_in(met, sizeof met, "exe.csv");
	path_in(one, sizeof one, "csvdata/train.csv");

	const char *askhelp[] = {"--help", NULL};
	CHECK(run_exe(askhelp, out, sizeof out) == 0);
	CHECK_MSG(strstr(out, "usage: trainer") && strstr(out, "toy, recipe fp32, batch 4"), "%s",
	          out);
	const char *bad1[] = {"--epochs", "x", NULL};
	CHECK(run_exe(bad1, out, sizeof out) == 2);
	CHECK_MSG(strstr(out, "trainer: --epochs wants a positive integer, not 'x' (see 'trainer "
	                      "--help')"),
	          "%s", out);
	const char *bad2[] = {"--recipe", "fp32", NULL};
	CHECK(run_exe(bad2, out, sizeof out) == 2 && strstr(out, "unknown option '--recipe'"));
	const char *bad3[] = {"--data", NULL};
	CHECK(run_exe(bad3, out, sizeof out) == 2 && strstr(out, "needs a value"));
	const char *bad4[] = {"--threads", "0", NULL};
	CHECK(run_exe(bad4, out, sizeof out) == 2);
	const char *nodata[] = {"--data", "/nonexistent/data", NULL};
	CHECK(run_exe(nodata, out, sizeof out) == 2 && strstr(out, "/nonexistent/data"));

	/* full run, then a run stopped after 3 steps and resumed: same final checkpoint */
	const char *full[] = {
	    "--data",       dir, "--epochs",  "3", "--threads",     "2",           "--seed", "9",
	    "--checkpoint", ca,  "--metrics", met, "--no-progress", "--telemetry", NULL};
	int rc = run_exe(full, out, sizeof out);
	CHECK_MSG(rc == 0 &&
	              strstr(out, "trainer: training toy: recipe fp32, batch 4, 3 epochs, "
	                          "seed 9, 2 threads") &&
	              strstr(out, "epoch 3/3") && strstr(out, "test_acc") &&
	              strstr(out, "LNS telemetry after 15 steps"),
	          "rc %d: %s", rc, out);
	const char *part[] = {"--data",        dir, "--epochs",     "3", "--threads", "1",
	                      "--seed",        "9", "--checkpoint", cb,  "--steps",   "7",
	                      "--no-progress", NULL};
	CHECK(run_exe(part, out, sizeof out) == 0);
	const char *rest[] = {"--data",   dir, "--epochs",     "3", "--seed",        "9",
	                      "--resume", cb,  "--checkpoint", cb,  "--no-progress", NULL};
	rc = run_exe(rest, out, sizeof out);
	CHECK_MSG(rc == 0 && strstr(out, "resuming from") && strstr(out, "epoch 2, step 2/5"),
	          "rc %d: %s", rc, out);
	unsigned char sa[STATE_BYTES], sb2[STATE_BYTES];
	ckpt_state(ca, sa);
	ckpt_state(cb, sb2);
	CHECK_MSG(memcmp(sa, sb2, STATE_BYTES) == 0, "exe: resumed run differs");
	/* --lr changes the outcome */
	const char *lr[] = {"--data", dir,    "--epochs",     "3", "--seed",        "9",
	                    "--lr",   "0.05", "--checkpoint", cb,  "--no-progress", NULL};
	CHECK(run_exe(lr, out, sizeof out) == 0);
	ckpt_state(cb, sb2);
	CHECK(memcmp(sa, sb2, STATE_BYTES) != 0);
	/* one CSV file: training without a test split */
	const char *single[] = {"--data", one, "--steps", "2", "--no-progress", NULL};
	rc = run_exe(single, out, sizeof out);
	CHECK_MSG(rc == 0 && !strstr(out, "test_acc"), "rc %d: %s", rc, out);
	/* a foreign or corrupt checkpoint is bad input */
	const char *foreign[] = {"--data", dir, "--resume", met, "--no-progress", NULL};
	rc = run_exe(foreign, out, sizeof out);
	CHECK_MSG(rc == 2 && strstr(out, "not an lnsc checkpoint"), "rc %d: %s", rc, out);
	lnsrt_dataset_free(&tr);
	lnsrt_dataset_free(&te);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_toy_desc();
	test_toy_model();
	test_roundtrip();
	test_damage();
	test_ir_desc();
	test_interp_model();
	test_resume();
	test_meta();
	test_position();
	test_exe();
	remove_tree(tmpdir);
	return t_finish("test_checkpoint");
}
