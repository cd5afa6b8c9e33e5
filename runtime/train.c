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
 */
#include "runtime/lnsrt.h"

#include <errno.h>
#include <math.h>
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

/* ---- the driver ---- */

static int check_train(const LnsrtTrainer *t, const LnsrtDataset *train, const LnsrtDataset *test,
                       const LnsrtTrainOpts *o, char *err, size_t errn)
{
	if (o->epochs < 1)
		return lnsrt_fmt_err(err, errn, "train: epochs is %d, must be at least 1",
		                     o->epochs);
	if (o->max_steps < 0)
		return lnsrt_fmt_err(err, errn, "train: max_steps is %lld, must be 0 or more",
		                     (long long)o->max_steps);
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
		return -1;
	FILE *out = o->out ? o->out : stdout;
	int has_test = test && test->n > 0;
	size_t es = (size_t)t->example_size;
	/* floor(n / batch) steps: the last partial batch of each epoch is dropped (the step has a
	 * fixed batch size); the shuffle puts different examples there each epoch. */
	int64_t per_epoch = train->n / t->batch;
	int64_t *order = malloc((size_t)train->n * sizeof *order);
	float *x = malloc((size_t)t->batch * es * sizeof *x);
	int64_t *y = malloc((size_t)t->batch * sizeof *y);
	Metrics m = {.path = o->metrics_path};
	Progress p = {.on = o->progress < 0 ? isatty(fileno(stderr)) : o->progress != 0};
	int64_t total = 0;
	int rc = 0;
	if (!order || !x || !y) {
		rc = lnsrt_fmt_err(err, errn, "train: out of memory for the batch buffers");
		goto done;
	}
	/* Write the header now: a bad metrics path fails before any training time is spent. */
	if (m.path && (rc = metrics_write(&m, err, errn)))
		goto done;
	for (int epoch = 1; epoch <= o->epochs; epoch++) {
		LnsrtEpochResult r = {.epoch = epoch};
		double start = lnsrt_now(), sum = 0;
		int64_t done = 0;
		p.start = start;
		p.drawn = start - 1;
		lnsrt_epoch_order(order, train->n, o->seed, epoch);
		for (; done < per_epoch && !(o->max_steps && total >= o->max_steps); done++) {
			char sub[SUBERR] = "";
			float loss = NAN;
			gather(train, order + done * t->batch, t->batch, es, x, y);
			if (t->train_step(t->impl, x, y, &loss, sub, sizeof sub)) {
				progress_clear(&p);
				rc = lnsrt_fmt_err(err, errn, "epoch %d/%d, step %lld/%lld: %s",
				                   epoch, o->epochs, (long long)done + 1,
				                   (long long)per_epoch, sub[0] ? sub : "failed");
				goto done;
			}
			if (!isfinite(loss)) {
				progress_clear(&p);
				rc = lnsrt_fmt_err(err, errn,
				                   "epoch %d/%d, step %lld/%lld: loss is %g; "
				                   "training diverged",
				                   epoch, o->epochs, (long long)done + 1,
				                   (long long)per_epoch, (double)loss);
				goto done;
			}
			sum += loss;
			total++;
			/* the bar shows the mean loss of the epoch so far */
			progress_draw(&p, done + 1, per_epoch, sum / (double)(done + 1));
		}
		progress_clear(&p);
		int cut = done < per_epoch;
		r.train_loss = done ? sum / (double)done : NAN;
		r.steps = total;
		r.test_loss = r.test_acc = NAN;
		if (has_test) {
			char sub[SUBERR] = "";
			if (lnsrt_evaluate(t, test, &r.test_loss, &r.test_acc, sub, sizeof sub)) {
				rc = lnsrt_fmt_err(err, errn, "epoch %d/%d: %s", epoch, o->epochs,
				                   sub);
				goto done;
			}
		}
		r.seconds = lnsrt_now() - start;
		print_epoch(out, &r, o->epochs, has_test, cut);
		if (m.path &&
		    ((rc = metrics_add(&m, &r, err, errn)) || (rc = metrics_write(&m, err, errn))))
			goto done;
		if (last)
			*last = r;
		if (o->max_steps && total >= o->max_steps)
			break;
	}
done:
	free(order);
	free(x);
	free(y);
	free(m.text);
	return rc;
}
