/* train.c: the training driver: epochs, shuffled batches, evaluation, progress and metrics.
 *
 * lnsrt_train owns the loop and nothing of the model: it gathers each batch in the order
 * lnsrt_epoch_order(seed, epoch) gives (so a seed fixes the run on every machine), calls the
 * backend's train_step, and after each epoch runs lnsrt_evaluate over the whole test split.
 * The driver allocates its few buffers (order, one batch, logits) once, before the first step.
 * Results go three ways: one text line per epoch on o->out, an optional progress bar on
 * stderr redrawn in place at most ten times a second, and an optional metrics CSV that is
 * rewritten to a temporary file in the same directory and renamed over the target after each
 * epoch, so a run stopped at any moment leaves a complete file. Failures of the backend or a
 * non-finite loss end training with a message naming the epoch and step.
 *
 * Checkpoints (checkpoint.c) hold the trainer's state blob and the loop's position: epoch,
 * step within it, total steps, the epoch's running loss sum and the seed. Since the order of
 * an epoch is a function of (seed, epoch) and a step depends only on the blob and its batch,
 * resuming from a position replays nothing and ends bit-identical to an uninterrupted run.
 * SIGINT sets a flag (the runtime's one static variable, see on_sigint); the loop notices it
 * after the step in flight, saves, and returns LNSRT_INTERRUPTED.
 */
#include "runtime/lnsrt.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { SUBERR = 1024, BAR = 20 };

#define REDRAW_SECONDS 0.1

void lnsrt_train_opts_init(LnsrtTrainOpts *o)
{
	memset(o, 0, sizeof *o);
	o->epochs = 1;
	o->progress = -1;
}

/* ---- checks ---- */

static int check_trainer(const LnsrtTrainer *t, char *err, size_t errn)
{
	if (!t || !t->train_step || !t->eval_step)
		return lnsrt_fmt_err(err, errn, "trainer: missing train_step or eval_step");
	if (t->batch < 1 || t->example_size < 1 || t->nclasses < 1)
		return lnsrt_fmt_err(err, errn,
		                     "trainer: batch %d, example size %lld and %d classes must "
		                     "all be positive",
		                     t->batch, (long long)t->example_size, t->nclasses);
	return 0;
}

/* The dataset fits the model: same example size, labels within the logits. */
static int check_dataset(const LnsrtTrainer *t, const LnsrtDataset *d, const char *what, char *err,
                         size_t errn)
{
	if (d->n < 0 || (d->n > 0 && (!d->x || !d->y)))
		return lnsrt_fmt_err(err, errn, "%s: no data", what);
	if ((int64_t)d->rows * d->cols != t->example_size)
		return lnsrt_fmt_err(err, errn,
		                     "%s: examples are %dx%d = %lld floats but the model's input "
		                     "takes %lld per example",
		                     what, d->rows, d->cols, (long long)d->rows * d->cols,
		                     (long long)t->example_size);
	for (int64_t i = 0; i < d->n; i++)
		if (d->y[i] < 0 || d->y[i] >= t->nclasses)
			return lnsrt_fmt_err(err, errn,
			                     "%s: example %lld has label %lld but the model has "
			                     "%d classes (labels 0 to %d)",
			                     what, (long long)i, (long long)d->y[i], t->nclasses,
			                     t->nclasses - 1);
	return 0;
}

/* ---- evaluation ---- */

/* Softmax cross-entropy of one row of logits against label y, in double with the max
 * subtracted before exp (log-sum-exp), and whether the argmax (first on ties) is y. */
static double row_xent(const float *logits, int nclasses, int64_t y, int *correct)
{
	int best = 0;
	for (int c = 1; c < nclasses; c++)
		if (logits[c] > logits[best])
			best = c;
	double m = logits[best];
	double s = 0;
	for (int c = 0; c < nclasses; c++)
		s += exp((double)logits[c] - m);
	*correct = best == y;
	return m + log(s) - (double)logits[y];
}

int lnsrt_evaluate(LnsrtTrainer *t, const LnsrtDataset *d, double *loss, double *acc, char *err,
                   size_t errn)
{
	*loss = NAN;
	*acc = NAN;
	if (check_trainer(t, err, errn))
		return -1;
	if (d->n == 0)
		return 0;
	if (check_dataset(t, d, "test set", err, errn))
		return -1;
	size_t es = (size_t)t->example_size, b = (size_t)t->batch;
	float *x = malloc(b * es * sizeof *x);
	float *logits = malloc(b * (size_t)t->nclasses * sizeof *logits);
	int rc = 0;
	if (!x || !logits) {
		rc = lnsrt_fmt_err(err, errn, "test set: out of memory for a batch of %zu", b);
		goto done;
	}
	double sum = 0;
	int64_t hits = 0;
	for (int64_t i0 = 0; i0 < d->n; i0 += t->batch) {
		size_t rows = d->n - i0 < t->batch ? (size_t)(d->n - i0) : b;
		char sub[SUBERR] = "";
		memcpy(x, d->x + (size_t)i0 * es, rows * es * sizeof *x);
		/* Pad the last partial batch with zero rows; their logits are ignored below. */
		memset(x + rows * es, 0, (b - rows) * es * sizeof *x);
		if (t->eval_step(t->impl, x, logits, sub, sizeof sub)) {
			rc = lnsrt_fmt_err(err, errn, "eval step on test examples %lld to %lld: %s",
			                   (long long)i0, (long long)(i0 + (int64_t)rows - 1),
			                   sub[0] ? sub : "failed");
			goto done;
		}
		for (size_t r = 0; r < rows; r++) {
			int ok;
			sum += row_xent(logits + r * (size_t)t->nclasses, t->nclasses,
			                d->y[i0 + (int64_t)r], &ok);
			hits += ok;
		}
	}
	*loss = sum / (double)d->n;
	*acc = (double)hits / (double)d->n;
done:
	free(x);
	free(logits);
	return rc;
}

/* ---- progress bar ---- */

typedef struct Progress {
	int on;
	double start; /* of the epoch */
	double drawn; /* time of the last redraw */
	int width;    /* characters on the line now, to blank them */
} Progress;

static void fmt_duration(char *buf, size_t n, double s)
{
	long v = s < 0 ? 0 : (long)(s + 0.5);
	if (v >= 3600)
		snprintf(buf, n, "%ldh%02ldm", v / 3600, v / 60 % 60);
	else if (v >= 60)
		snprintf(buf, n, "%ldm%02lds", v / 60, v % 60);
	else
		snprintf(buf, n, "%lds", v);
}

static void progress_draw(Progress *p, int64_t done, int64_t total, double loss)
{
	if (!p->on)
		return;
	double now = lnsrt_now();
	if (now - p->drawn < REDRAW_SECONDS && done < total)
		return;
	p->drawn = now;
	char bar[BAR + 1], eta[32], line[160];
	int fill = total ? (int)(done * BAR / total) : BAR;
	for (int i = 0; i < BAR; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[BAR] = 0;
	double rate = now > p->start ? (double)done / (now - p->start) : 0;
	fmt_duration(eta, sizeof eta, rate > 0 ? (double)(total - done) / rate : 0);
	int len = snprintf(line, sizeof line, "[%s] %lld/%lld loss %.3f %.1f steps/s ETA %s", bar,
	                   (long long)done, (long long)total, loss, rate, eta);
	if (len < 0)
		return;
	if (len > (int)sizeof line - 1)
		len = (int)sizeof line - 1;
	/* Blank what a longer previous line left behind. */
	fprintf(stderr, "\r%s%*s", line, p->width > len ? p->width - len : 0, "");
	fflush(stderr);
	p->width = len > p->width ? len : p->width;
}

static void progress_clear(Progress *p)
{
	if (p->on && p->width > 0) {
		fprintf(stderr, "\r%*s\r", p->width, "");
		fflush(stderr);
	}
	p->width = 0;
}

/* ---- metrics CSV ---- */

/* The rows so far, kept in memory: each epoch rewrites the whole file and renames it. */
typedef struct Metrics {
	const char *path;
	char *text;
	size_t len, cap;
} Metrics;

static const char METRICS_HEADER[] = "epoch,step,train_loss,test_loss,test_acc,seconds\n";

static int metrics_add(Metrics *m, const LnsrtEpochResult *r, char *err, size_t errn)
{
	char row[256];
	int len =
	    snprintf(row, sizeof row, "%d,%lld,%.8g,%.8g,%.8g,%.3f\n", r->epoch,
	             (long long)r->steps, r->train_loss, r->test_loss, r->test_acc, r->seconds);
	if (len < 0 || (size_t)len >= sizeof row)
		return lnsrt_fmt_err(err, errn, "%s: cannot format metrics row", m->path);
	if (m->len + (size_t)len + 1 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 4096;
		while (cap < m->len + (size_t)len + 1)
			cap *= 2;
		char *text = realloc(m->text, cap);
		if (!text)
			return lnsrt_fmt_err(err, errn, "%s: out of memory", m->path);
		m->text = text;
		m->cap = cap;
	}
	memcpy(m->text + m->len, row, (size_t)len + 1);
	m->len += (size_t)len;
	return 0;
}

/* Writes header and rows to path.XXXXXX beside path, syncs it, and renames it over path. */
static int metrics_write(const Metrics *m, char *err, size_t errn)
{
	size_t plen = strlen(m->path);
	char *tmp = malloc(plen + 8);
	if (!tmp)
		return lnsrt_fmt_err(err, errn, "%s: out of memory", m->path);
	memcpy(tmp, m->path, plen);
	memcpy(tmp + plen, ".XXXXXX", 8);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		int e = errno;
		free(tmp);
		return lnsrt_fmt_err(err, errn, "%s: cannot create a temporary file beside it: %s",
		                     m->path, strerror(e));
	}
	fchmod(fd, 0644); /* mkstemp makes it 0600; a metrics file is for everyone to read */
	int e = 0;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		e = errno;
		close(fd);
	} else {
		if (fputs(METRICS_HEADER, f) < 0 ||
		    (m->len && fwrite(m->text, 1, m->len, f) != m->len) || fflush(f) != 0 ||
		    fsync(fileno(f)) != 0)
			e = errno ? errno : EIO;
		if (fclose(f) != 0 && !e)
			e = errno ? errno : EIO;
	}
	if (!e && rename(tmp, m->path) != 0)
		e = errno;
	if (e)
		unlink(tmp);
	free(tmp);
	if (e)
		return lnsrt_fmt_err(err, errn, "%s: cannot write metrics: %s", m->path,
		                     strerror(e));
	return 0;
}

/* On resume, the rows of the epochs before the resumed one are kept from the existing file
 * (a row is written when its epoch ends, so later rows belong to the stopped run). A missing
 * file, or one that is not a metrics file, starts afresh. */
static int metrics_resume(Metrics *m, int start_epoch, char *err, size_t errn)
{
	FILE *f = fopen(m->path, "r");
	if (!f)
		return 0;
	char line[512];
	int rc = 0;
	if (!fgets(line, sizeof line, f) || strcmp(line, METRICS_HEADER) != 0) {
		fclose(f);
		return 0;
	}
	while (!rc && fgets(line, sizeof line, f)) {
		size_t len = strlen(line);
		if (atoi(line) < 1 || atoi(line) >= start_epoch || line[len - 1] != '\n')
			continue;
		if (m->len + len + 1 > m->cap) {
			size_t cap = m->cap ? m->cap * 2 : 4096;
			while (cap < m->len + len + 1)
				cap *= 2;
			char *text = realloc(m->text, cap);
			if (!text) {
				rc = lnsrt_fmt_err(err, errn, "%s: out of memory", m->path);
				break;
			}
			m->text = text;
			m->cap = cap;
		}
		memcpy(m->text + m->len, line, len + 1);
		m->len += len;
	}
	fclose(f);
	return rc;
}

/* ---- SIGINT ---- */

/* The one piece of static mutable state in the runtime: a signal handler can reach nothing
 * else. lnsrt_train clears it when it installs the handler and restores the previous
 * handler when it returns, so it only ever means "SIGINT during this run". */
static volatile sig_atomic_t sigint_seen;

static void on_sigint(int sig)
{
	if (sigint_seen) {
		/* a second ^C: the user means it */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	sigint_seen = 1;
}

typedef struct SigGuard {
	int on;
	struct sigaction old;
} SigGuard;

static void sig_install(SigGuard *g, int keep)
{
	struct sigaction sa;
	g->on = 0;
	sigint_seen = 0;
	if (keep)
		return;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sa.sa_flags = SA_RESTART; /* the step's and the checkpoint's I/O carry on */
	sigemptyset(&sa.sa_mask);
	g->on = sigaction(SIGINT, &sa, &g->old) == 0;
}

static void sig_restore(SigGuard *g)
{
	if (g->on)
		sigaction(SIGINT, &g->old, NULL);
	g->on = 0;
}

/* ---- the driver ---- */

static int check_train(const LnsrtTrainer *t, const LnsrtDataset *train, const LnsrtDataset *test,
                       const LnsrtTrainOpts *o, char *err, size_t errn)
{
	if (o->epochs < 1)
		return lnsrt_fmt_err(err, errn, "train: epochs is %d, must be at least 1",
		                     o->epochs);
	if (o->max_steps < 0 || o->checkpoint_every < 0)
		return lnsrt_fmt_err(err, errn,
		                     "train: max_steps (%lld) and checkpoint_every "
		                     "(%lld) must be 0 or more",
		                     (long long)o->max_steps, (long long)o->checkpoint_every);
	if ((o->checkpoint_path || o->resume_path) &&
	    (!t->state || !t->desc || t->state_bytes != t->desc->state_bytes))
		return lnsrt_fmt_err(err, errn,
		                     "%s: this backend does not expose its state, so it "
		                     "cannot checkpoint or resume",
		                     o->resume_path ? o->resume_path : o->checkpoint_path);
	if (check_trainer(t, err, errn) || check_dataset(t, train, "training set", err, errn))
		return -1;
	if (test && test->n > 0 && check_dataset(t, test, "test set", err, errn))
		return -1;
	if (train->n < t->batch)
		return lnsrt_fmt_err(err, errn,
		                     "training set: %lld examples, fewer than one batch of %d",
		                     (long long)train->n, t->batch);
	return 0;
}

static void print_epoch(FILE *out, const LnsrtEpochResult *r, int epochs, int has_test, int cut)
{
	fprintf(out, "epoch %d/%d  train_loss %.4f", r->epoch, epochs, r->train_loss);
	if (has_test)
		fprintf(out, "  test_loss %.4f  test_acc %.4f", r->test_loss, r->test_acc);
	fprintf(out, "  time %.1fs%s\n", r->seconds, cut ? "  (max_steps reached)" : "");
	fflush(out);
}

/* Copies the examples order[0..batch) into one contiguous batch. */
static void gather(const LnsrtDataset *d, const int64_t *order, int batch, size_t es, float *x,
                   int64_t *y)
{
	for (int i = 0; i < batch; i++) {
		memcpy(x + (size_t)i * es, d->x + (size_t)order[i] * es, es * sizeof *x);
		y[i] = d->y[order[i]];
	}
}

/* Where the loop stands; what a checkpoint records. */
typedef struct Run {
	LnsrtTrainer *t;
	const LnsrtTrainOpts *o;
	LnsrtTrainState pos; /* epoch, epoch_step, total_steps, loss_sum, seed, ... */
	int64_t per_epoch;
} Run;

static int save(const Run *r, char *err, size_t errn)
{
	if (!r->o->checkpoint_path)
		return 0;
	return lnsrt_checkpoint_save_meta(r->t->desc, r->t->state, &r->pos, r->o->checkpoint_meta,
	                                  r->o->checkpoint_path, err, errn);
}

/* Checks that a position (from a checkpoint at path, or the caller's) continues this run. */
static int check_position(const Run *r, const LnsrtTrainState *pos, const LnsrtDataset *train,
                          const char *path, char *err, size_t errn)
{
	if (pos->batch != r->t->batch || pos->train_n != train->n)
		return lnsrt_fmt_err(
		    err, errn,
		    "%s: the checkpoint was made with batch %d on a "
		    "training set of %lld examples; this run has batch %d and %lld",
		    path, pos->batch, (long long)pos->train_n, r->t->batch, (long long)train->n);
	if (pos->epoch_step < 0 || pos->epoch_step >= r->per_epoch || pos->total_steps < 0)
		return lnsrt_fmt_err(err, errn,
		                     "%s: the checkpoint's position (epoch %d, step "
		                     "%lld) is not within an epoch of %lld steps",
		                     path, pos->epoch, (long long)pos->epoch_step,
		                     (long long)r->per_epoch);
	return 0;
}

/* Loads the checkpoint into the trainer's state and checks that it continues this run. */
static int resume(Run *r, const LnsrtDataset *train, FILE *out, char *err, size_t errn)
{
	const char *path = r->o->resume_path;
	LnsrtTrainState pos;
	if (lnsrt_checkpoint_load(r->t->desc, r->t->state, &pos, path, err, errn))
		return -1;
	if (pos.epoch < 1)
		return lnsrt_fmt_err(err, errn,
		                     "%s: the checkpoint holds no training position "
		                     "(not written by the training driver)",
		                     path);
	if (check_position(r, &pos, train, path, err, errn))
		return -1;
	r->pos = pos;
	if (r->o->quiet)
		return 0;
	fprintf(out, "resuming from %s: epoch %d, step %lld/%lld, %lld steps done, seed %llu\n",
	        path, pos.epoch, (long long)pos.epoch_step, (long long)r->per_epoch,
	        (long long)pos.total_steps, (unsigned long long)pos.seed);
	fflush(out);
	return 0;
}

/* SIGINT arrived: the step in flight is finished and recorded in r->pos. */
static int interrupted(const Run *r, char *err, size_t errn)
{
	char sub[SUBERR] = "";
	const char *ck = r->o->checkpoint_path;
	if (ck && save(r, sub, sizeof sub))
		return lnsrt_fmt_err(err, errn,
		                     "interrupted at epoch %d, step %lld; saving the "
		                     "checkpoint failed: %s",
		                     r->pos.epoch, (long long)r->pos.epoch_step, sub);
	if (!ck)
		lnsrt_fmt_err(err, errn,
		              "interrupted at epoch %d, step %lld/%lld (no checkpoint: "
		              "train with --checkpoint FILE to be able to resume)",
		              r->pos.epoch, (long long)r->pos.epoch_step, (long long)r->per_epoch);
	else
		lnsrt_fmt_err(err, errn,
		              "interrupted at epoch %d, step %lld/%lld; checkpoint saved "
		              "to %s; continue with --resume %s",
		              r->pos.epoch, (long long)r->pos.epoch_step, (long long)r->per_epoch,
		              ck, ck);
	return LNSRT_INTERRUPTED;
}

int lnsrt_train(LnsrtTrainer *t, const LnsrtDataset *train, const LnsrtDataset *test,
                const LnsrtTrainOpts *o, LnsrtEpochResult *last, char *err, size_t errn)
{
	LnsrtTrainOpts defaults;
	if (!o) {
		lnsrt_train_opts_init(&defaults);
		o = &defaults;
	}
	if (last) {
		memset(last, 0, sizeof *last);
		last->train_loss = last->test_loss = last->test_acc = NAN;
	}
	if (check_train(t, train, test, o, err, errn))
		return LNSRT_BAD_INPUT;
	FILE *out = o->out ? o->out : stdout;
	int has_test = test && test->n > 0;
	size_t es = (size_t)t->example_size;
	/* floor(n / batch) steps: the last partial batch of each epoch is dropped (the step has a
	 * fixed batch size); the shuffle puts different examples there each epoch. */
	Run r = {.t = t, .o = o, .per_epoch = train->n / t->batch};
	r.pos =
	    (LnsrtTrainState){.epoch = 1, .batch = t->batch, .seed = o->seed, .train_n = train->n};
	if (o->resume_path && resume(&r, train, out, err, errn))
		return LNSRT_BAD_INPUT;
	if (!o->resume_path && o->position && o->position->epoch >= 1) {
		if (check_position(&r, o->position, train, "train", err, errn))
			return LNSRT_BAD_INPUT;
		r.pos = *o->position;
	}
	if (r.pos.epoch > o->epochs || (o->max_steps && r.pos.total_steps >= o->max_steps)) {
		if (!o->quiet)
			fprintf(out,
			        "nothing left to train: the run is at epoch %d after %lld steps "
			        "(%d epochs%s asked)\n",
			        r.pos.epoch, (long long)r.pos.total_steps, o->epochs,
			        o->max_steps ? ", a step limit" : "");
		if (o->position)
			*o->position = r.pos;
		return 0;
	}
	int64_t *order = malloc((size_t)train->n * sizeof *order);
	float *x = malloc((size_t)t->batch * es * sizeof *x);
	int64_t *y = malloc((size_t)t->batch * sizeof *y);
	Metrics m = {.path = o->metrics_path};
	Progress p = {.on = o->progress < 0 ? isatty(fileno(stderr)) : o->progress != 0};
	SigGuard sg = {0};
	int rc = 0;
	if (!order || !x || !y) {
		rc = lnsrt_fmt_err(err, errn, "train: out of memory for the batch buffers");
		goto done;
	}
	/* Write the metrics header and a first checkpoint now: a bad path fails before any
	 * training time is spent. */
	if (m.path && o->resume_path && (rc = metrics_resume(&m, r.pos.epoch, err, errn)))
		goto done;
	if ((m.path && (rc = metrics_write(&m, err, errn))) || (rc = save(&r, err, errn)))
		goto done;
	sig_install(&sg, o->keep_sigint);
	for (int epoch = r.pos.epoch; epoch <= o->epochs; epoch++) {
		LnsrtEpochResult res = {.epoch = epoch};
		double start = lnsrt_now();
		int64_t done = r.pos.epoch_step;
		if (o->max_steps && r.pos.total_steps >= o->max_steps)
			break;
		p.start = start;
		p.drawn = start - 1;
		lnsrt_epoch_order(order, train->n, r.pos.seed, epoch);
		for (; done < r.per_epoch && !(o->max_steps && r.pos.total_steps >= o->max_steps);
		     done++) {
			char sub[SUBERR] = "";
			float loss = NAN;
			gather(train, order + done * t->batch, t->batch, es, x, y);
			if (t->train_step(t->impl, x, y, &loss, sub, sizeof sub)) {
				progress_clear(&p);
				rc = lnsrt_fmt_err(err, errn, "epoch %d/%d, step %lld/%lld: %s",
				                   epoch, o->epochs, (long long)done + 1,
				                   (long long)r.per_epoch, sub[0] ? sub : "failed");
				goto done;
			}
			if (!isfinite(loss)) {
				progress_clear(&p);
				rc = lnsrt_fmt_err(err, errn,
				                   "epoch %d/%d, step %lld/%lld: loss is %g; "
				                   "training diverged",
				                   epoch, o->epochs, (long long)done + 1,
				                   (long long)r.per_epoch, (double)loss);
				goto done;
			}
			r.pos.loss_sum += loss;
			if (o->loss_sum)
				*o->loss_sum += loss;
			r.pos.total_steps++;
			r.pos.epoch_step = done + 1;
			/* the bar shows the mean loss of the epoch so far */
			progress_draw(&p, done + 1, r.per_epoch,
			              r.pos.loss_sum / (double)(done + 1));
			if (sigint_seen) {
				progress_clear(&p);
				rc = interrupted(&r, err, errn);
				goto done;
			}
			if (o->checkpoint_every && r.pos.total_steps % o->checkpoint_every == 0 &&
			    done + 1 < r.per_epoch && (rc = save(&r, err, errn))) {
				progress_clear(&p);
				goto done;
			}
		}
		progress_clear(&p);
		int cut = done < r.per_epoch;
		res.train_loss = done ? r.pos.loss_sum / (double)done : NAN;
		res.steps = r.pos.total_steps;
		res.test_loss = res.test_acc = NAN;
		if (has_test) {
			char sub[SUBERR] = "";
			if (lnsrt_evaluate(t, test, &res.test_loss, &res.test_acc, sub,
			                   sizeof sub)) {
				rc = lnsrt_fmt_err(err, errn, "epoch %d/%d: %s", epoch, o->epochs,
				                   sub);
				goto done;
			}
		}
		res.seconds = lnsrt_now() - start;
		if (!o->quiet)
			print_epoch(out, &res, o->epochs, has_test, cut);
		if (m.path && ((rc = metrics_add(&m, &res, err, errn)) ||
		               (rc = metrics_write(&m, err, errn))))
			goto done;
		if (last)
			*last = res;
		if (!cut) /* the next epoch starts afresh; a cut one is continued on resume */
			r.pos = (LnsrtTrainState){.epoch = epoch + 1,
			                          .batch = t->batch,
			                          .total_steps = r.pos.total_steps,
			                          .seed = r.pos.seed,
			                          .train_n = train->n};
		if ((rc = save(&r, err, errn)))
			goto done;
		if (sigint_seen) {
			rc = interrupted(&r, err, errn);
			goto done;
		}
		if (cut)
			break;
	}
done:
	if (o->position)
		*o->position = r.pos;
	sig_restore(&sg);
	free(order);
	free(x);
	free(y);
	free(m.text);
	return rc;
}
