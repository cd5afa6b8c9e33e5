/* lnsrt.h: the one runtime header: errors, datasets, the trainer interface and the driver.
 *
 * The runtime is the small C library every trainer links against: today the reference
 * interpreter, later the LLVM-generated step. It owns no kernels. A backend fills in an
 * LnsrtTrainer (a step function, an eval function and their shapes); lnsrt_train runs
 * epochs over an LnsrtDataset with a shuffled order that depends only on the seed, evaluates
 * the test split and reports per-epoch results as text, a progress bar and a metrics CSV.
 *
 * Errors: every function that can fail takes `char *err, size_t errn`, returns 0 on success
 * and nonzero on failure with a one-line message in err that names the file (or the epoch and
 * step) it is about. err may be NULL or errn 0 when the caller does not want the text. The
 * runtime never aborts on bad input and keeps no global mutable state.
 *
 * Depends on libc, libm and zlib only.
 */
#ifndef LNSC_LNSRT_H
#define LNSC_LNSRT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__) || defined(__clang__)
#define LNSRT_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define LNSRT_PRINTF(fmt, args)
#endif

/* ---- util.c: error messages and the clock ---- */

/* Formats a message into err (truncated to errn, always terminated when errn > 0) and returns
 * -1, so a failing path reads `return lnsrt_fmt_err(err, errn, "%s: ...", path);`. */
int lnsrt_fmt_err(char *err, size_t errn, const char *fmt, ...) LNSRT_PRINTF(3, 4);

/* Seconds on the monotonic clock (CLOCK_MONOTONIC); only differences are meaningful. */
double lnsrt_now(void);

/* ---- rng.c: the deterministic generator behind shuffling ---- */

/* xoshiro256** seeded through splitmix64. Pure integer arithmetic, so a seed gives the same
 * sequence on every machine and compiler. */
typedef struct LnsrtRng {
	uint64_t s[4];
} LnsrtRng;

/* Advances *state by the splitmix64 increment and returns the next splitmix64 output. */
uint64_t lnsrt_splitmix64(uint64_t *state);
/* Seeds r from (seed, stream); distinct streams give unrelated sequences for one seed. */
void lnsrt_rng_seed(LnsrtRng *r, uint64_t seed, uint64_t stream);
uint64_t lnsrt_rng_next(LnsrtRng *r);
/* Uniform in [0, n), without modulo bias (rejection); n must be > 0. */
uint64_t lnsrt_rng_below(LnsrtRng *r, uint64_t n);
/* Fills order[0..n) with a permutation of 0..n-1 (Fisher-Yates) that depends only on
 * (seed, epoch): the order in which lnsrt_train visits the training set in that epoch. */
void lnsrt_epoch_order(int64_t *order, int64_t n, uint64_t seed, int64_t epoch);

/* ---- data.c: datasets ---- */

/* A classification dataset held in memory. x holds n*rows*cols floats scaled to [0, 1]
 * (byte / 255), example i at x + i*rows*cols; y holds n class indices; nclasses is
 * max label + 1 (lnsrt_data_open makes it the same for both splits). */
typedef struct LnsrtDataset {
	int64_t n;
	int rows, cols;
	float *x;
	int64_t *y;
	int nclasses;
} LnsrtDataset;

/* Frees x and y and zeroes *d. Safe on a zeroed or already freed dataset. */
void lnsrt_dataset_free(LnsrtDataset *d);

/* Loads an IDX pair: images (magic 0x00000803, uint8 [n, rows, cols]) and labels (magic
 * 0x00000801, uint8 [n]), gzip-compressed or plain. Checks magic, types, ranks, that the
 * counts agree, that sizes are sane (1 <= n <= 10^8, rows*cols <= 2^24), and that each file
 * holds exactly the bytes its header announces. On error *out is zeroed. */
int lnsrt_idx_load(const char *images_gz, const char *labels_gz, LnsrtDataset *out, char *err,
                   size_t errn);

/* Where "fashion-mnist" lives when the Debian package dataset-fashion-mnist is installed. */
#define LNSRT_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Opens a train/test pair. spec NULL or "fashion-mnist" is LNSRT_FASHION_MNIST_DIR; any other
 * spec is a directory holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
 * t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each with or without .gz (.gz preferred
 * when both exist). Both splits must have the same image size; both get the larger nclasses.
 * On error both outputs are zeroed. */
int lnsrt_data_open(const char *spec, LnsrtDataset *train, LnsrtDataset *test, char *err,
                    size_t errn);

/* ---- train.c: the trainer interface and the training driver ---- */

/* What a backend (interpreter, generated code) provides to be trained by lnsrt_train. */
typedef struct LnsrtTrainer {
	void *impl;
	int batch;            /* fixed batch size */
	int64_t example_size; /* floats per example the model's input takes (dims after batch) */
	int nclasses;         /* width of the logits */
	/* one training step on batch x (batch*example_size floats, [0,1]) and labels y;
	 * writes the mean loss of the batch */
	int (*train_step)(void *impl, const float *x, const int64_t *y, float *loss, char *err,
	                  size_t errn);
	/* forward only (eval mode): writes logits, batch*nclasses floats */
	int (*eval_step)(void *impl, const float *x, float *logits, char *err, size_t errn);
} LnsrtTrainer;

typedef struct LnsrtTrainOpts {
	int epochs;               /* >= 1 */
	uint64_t seed;            /* shuffling seed: same seed, same order everywhere */
	const char *metrics_path; /* CSV, one row per epoch; NULL for none */
	int progress;             /* -1 auto (stderr is a TTY), 0 off, 1 on */
	FILE *out;                /* per-epoch lines; NULL means stdout */
	int64_t max_steps;        /* 0 = whole epochs; else stop after this many steps in total */
} LnsrtTrainOpts;

/* The result of one epoch, as printed and written to the metrics CSV. */
typedef struct LnsrtEpochResult {
	int epoch;         /* 1-based */
	double train_loss; /* mean of the epoch's step losses */
	double test_loss;  /* mean softmax cross-entropy over the test split (NaN without one) */
	double test_acc;   /* fraction of test examples whose argmax is the label (NaN without) */
	double seconds;    /* wall time of the epoch, training and evaluation */
	int64_t steps;     /* steps run since the start of training, this epoch included */
} LnsrtEpochResult;

/* Fills o with the defaults: 1 epoch, seed 0, no metrics, progress auto, stdout, no cap. */
void lnsrt_train_opts_init(LnsrtTrainOpts *o);

/* Trains t on train for o->epochs epochs (o NULL: defaults) and evaluates on test after each
 * (test NULL or empty: no evaluation). Each epoch visits lnsrt_epoch_order(seed, epoch) in
 * floor(n / batch) steps; the last partial batch is dropped. Stops with an error naming the
 * epoch and step when a step fails or its loss is NaN or infinite. If last is not NULL it
 * receives the last completed epoch (epoch 0 if none completed). */
int lnsrt_train(LnsrtTrainer *t, const LnsrtDataset *train, const LnsrtDataset *test,
                const LnsrtTrainOpts *o, LnsrtEpochResult *last, char *err, size_t errn);

/* Evaluates t on the whole of d: batches of t->batch, the last one padded with zero rows
 * that are then ignored, so exactly d->n examples count. Writes the mean softmax
 * cross-entropy (log-sum-exp in double) and the accuracy (argmax, ties to the lowest index). */
int lnsrt_evaluate(LnsrtTrainer *t, const LnsrtDataset *d, double *loss, double *acc, char *err,
                   size_t errn);

#endif
