/* lnsrt.h: the one runtime header: errors, datasets, the trainer interface and the driver,
 * and the generated model's ABI: thread pool, model descriptors, model handles, checkpoints.
 *
 * The runtime is the small C library every trainer links against: the reference interpreter
 * and the LLVM-generated step alike. It owns no kernels. A backend fills in an LnsrtTrainer
 * (a step function, an eval function and their shapes); lnsrt_train runs epochs over an
 * LnsrtDataset with a shuffled order that depends only on the seed, evaluates the test split,
 * reports per-epoch results as text, a progress bar and a metrics CSV, and checkpoints and
 * resumes runs. Generated code is described by an LnsrtModelDesc (its tensor table and entry
 * points); lnsrt_model runs one and makes it a trainer.
 *
 * Errors: every function that can fail takes `char *err, size_t errn`, returns 0 on success
 * and nonzero on failure with a one-line message in err that names the file (or the epoch and
 * step) it is about. err may be NULL or errn 0 when the caller does not want the text. The
 * runtime never aborts on bad input and keeps no global mutable state (the one exception is
 * the flag lnsrt_train's SIGINT handler sets; see train.c).
 *
 * Depends on libc, libm, pthreads and zlib only (and ir/lns.c, compiled into the library).
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

/* Command-line numbers, shared by `lnsc` and the trainers it compiles: the whole string must
 * be a decimal integer in [lo, hi] / a number in (0, 1e6]. 0, or -1 (out untouched). */
int lnsrt_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out);
int lnsrt_parse_positive(const char *s, float *out);

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
 * spec is a directory holding, in order of precedence:
 *   IDX: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
 *     t10k-labels-idx1-ubyte, each with or without .gz (.gz preferred when both exist);
 *   NPY: x_train.npy, y_train.npy, x_test.npy, y_test.npy (images float32, taken as they are,
 *     or uint8, scaled by 1/255, shaped (n, features...); labels int64, int32 or uint8, (n,)
 *     or (n, 1); C order);
 *   CSV: train.csv and optionally test.csv (.gz allowed): `label,pixel0,pixel1,...` per
 *     line, an optional header line; pixels are bytes scaled by 1/255 unless no value
 *     exceeds 1 (then taken as they are); a square pixel count is a square image;
 * or spec is one .csv file: a training set with an empty test split. Both splits must have
 * the same image size; both get the larger nclasses. On error both outputs are zeroed. */
int lnsrt_data_open(const char *spec, LnsrtDataset *train, LnsrtDataset *test, char *err,
                    size_t errn);

/* ---- train.c: the trainer interface and the training driver ---- */

typedef struct LnsrtTrainState LnsrtTrainState; /* below */

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
	/* The model's state blob and descriptor, for checkpoints and resuming (NULL when the
	 * backend has none: then checkpoint_path and resume_path are refused). lnsrt_train
	 * writes the blob only when it resumes. */
	void *state;
	int64_t state_bytes;
	const struct LnsrtModelDesc *desc;
} LnsrtTrainer;

typedef struct LnsrtTrainOpts {
	int epochs;               /* >= 1 */
	uint64_t seed;            /* shuffling seed: same seed, same order everywhere */
	const char *metrics_path; /* CSV, one row per epoch; NULL for none */
	int progress;             /* -1 auto (stderr is a TTY), 0 off, 1 on */
	FILE *out;                /* per-epoch lines; NULL means stdout */
	int64_t max_steps;        /* 0 = whole epochs; else stop after this many steps in total */
	/* Checkpoints (checkpoint.c) need t->state and t->desc. checkpoint_path: saved after every
	 * epoch, every checkpoint_every steps when > 0, and when training stops early (max_steps,
	 * SIGINT). resume_path: continue the run a checkpoint stopped (epoch, step, shuffle seed,
	 * state blob); the result is bit-identical to a run that was never interrupted. Both may
	 * name the same file. */
	const char *checkpoint_path;
	int64_t checkpoint_every;
	const char *resume_path;
	/* 0: while lnsrt_train runs, SIGINT finishes the current step, saves the checkpoint (if
	 * any) and returns LNSRT_INTERRUPTED (a second SIGINT kills as usual). 1: leave SIGINT
	 * alone (hosts with their own handler). */
	int keep_sigint;
	/* A run continued across calls (the Lua trainer): when position is not NULL and
	 * position->epoch >= 1, training continues from *position as it would from a checkpoint
	 * holding it (its batch and train_n must match the trainer and the training set); on
	 * return *position holds where training stopped, whatever the result. */
	struct LnsrtTrainState *position;
	int quiet;                   /* no per-epoch or resume lines (out unused) */
	const char *checkpoint_meta; /* stored in every checkpoint written (NULL: none) */
	double *loss_sum;            /* when not NULL, each step's loss is added to it */
} LnsrtTrainOpts;

/* lnsrt_train's nonzero results: a runtime failure, bad input (a dataset that does not fit the
 * model, an unusable checkpoint), and an interruption (the conventional exit status of a
 * process stopped by SIGINT). */
enum { LNSRT_FAILED = -1, LNSRT_BAD_INPUT = 2, LNSRT_INTERRUPTED = 130 };

/* Where training stands: what a checkpoint carries besides the state blob. */
struct LnsrtTrainState {
	int32_t epoch;       /* the epoch to continue, 1-based (0: not from the driver) */
	int32_t batch;       /* the trainer's batch size */
	int64_t epoch_step;  /* steps of that epoch already taken */
	int64_t total_steps; /* steps since the start of training */
	double loss_sum;     /* sum of that epoch's step losses so far (bit-exact) */
	uint64_t seed;       /* the shuffling seed */
	int64_t train_n;     /* examples in the training set (the order depends on it) */
};

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
 * receives the last completed epoch (epoch 0 if none completed). Returns 0, LNSRT_FAILED,
 * LNSRT_BAD_INPUT or LNSRT_INTERRUPTED (err says where it stopped and how to resume).
 * Resuming keeps the metrics file's rows of the epochs before the resumed one. */
int lnsrt_train(LnsrtTrainer *t, const LnsrtDataset *train, const LnsrtDataset *test,
                const LnsrtTrainOpts *o, LnsrtEpochResult *last, char *err, size_t errn);

/* Evaluates t on the whole of d: batches of t->batch, the last one padded with zero rows
 * that are then ignored, so exactly d->n examples count. Writes the mean softmax
 * cross-entropy (log-sum-exp in double) and the accuracy (argmax, ties to the lowest index). */
int lnsrt_evaluate(LnsrtTrainer *t, const LnsrtDataset *d, double *loss, double *acc, char *err,
                   size_t errn);

/* ---- the generated model's ABI (shared by the JIT, `lnsc compile` outputs and the
 * interpreter's checkpoints). A model is a descriptor: its tensor table (the plan's layout:
 * the state blob, the scratch arena, IO slots) and its entry points. Generated code fills
 * the descriptor as constant data; the runtime builds trainers, checkpoints and the training
 * executable's main on top of it, knowing nothing about the model otherwise. ---- */

enum { LNSRT_ABI_VERSION = 1, LNSRT_MAX_RANK = 8 };

/* The IrArea, IrDType and IrRole values (ir/ir.h) the tensor table holds, for code that does
 * not see the IR; ir/desc.c asserts that they agree. */
enum {
	LNSRT_AREA_NONE, LNSRT_AREA_STATE, LNSRT_AREA_SCRATCH, LNSRT_AREA_CONST, LNSRT_AREA_IO
};
enum {
	LNSRT_DT_F32, LNSRT_DT_F64, LNSRT_DT_F16, LNSRT_DT_I8, LNSRT_DT_I16, LNSRT_DT_I32,
	LNSRT_DT_I64, LNSRT_DT_U8, LNSRT_DT_U16, LNSRT_DT_U32, LNSRT_DT_U64, LNSRT_DT_BOOL,
	LNSRT_DT_LNS, LNSRT_DT_COUNT
};
enum {
	LNSRT_ROLE_INPUT, LNSRT_ROLE_LABEL, LNSRT_ROLE_PARAM, LNSRT_ROLE_CONST, LNSRT_ROLE_ACT,
	LNSRT_ROLE_GRAD, LNSRT_ROLE_PGRAD, LNSRT_ROLE_STATE, LNSRT_ROLE_LOSS, LNSRT_ROLE_COUNT
};

/* Thread pool (pool.c). parallel_for runs fn(arg, i) for every i in [0, n) on the pool's
 * threads, the caller included, and returns when all are done. A task's result must not depend
 * on the thread that runs it: that is how generated code stays thread-count independent. */
typedef struct LnsrtPool LnsrtPool;
typedef void (*LnsrtTaskFn)(void *arg, int64_t i);
LnsrtPool *lnsrt_pool_new(int nthreads); /* <= 1: no threads, tasks run inline */
void lnsrt_pool_free(LnsrtPool *p);
int lnsrt_pool_threads(const LnsrtPool *p); /* NULL: 1 */
/* n <= 0 does nothing. NULL pool, a pool of one thread, and calls made while the pool runs a
 * job (from a task: nested; or from another thread) run the tasks inline, in order. */
void lnsrt_parallel_for(LnsrtPool *p, int64_t n, LnsrtTaskFn fn, void *arg);
int lnsrt_cpu_count(void); /* online CPUs, >= 1 */

/* What a step gets. io[i] points at the caller's buffer for IO slot i (data inputs, then the
 * labels). Entry points return 0; 1 on a numeric error, with error_tensor set to the index (in
 * the descriptor's table) of the tensor that would have held a NaN/Inf; 2 on bad input data,
 * with error_tensor naming the IO tensor (a label out of range); anything else is a failure
 * without a tensor. */
typedef struct LnsrtStepArgs {
	void *state;
	void *scratch;
	const void *const *io;
	LnsrtPool *pool;
	float lr;             /* the main optimizer's learning rate; 0 = the compiled default */
	int32_t error_tensor; /* -1: no error */
	/* The descriptor being run (set by the runtime). Generated code ignores it; backends
	 * that are not generated code (the interpreter) find their context through it. */
	const struct LnsrtModelDesc *model;
} LnsrtStepArgs;

typedef struct LnsrtTensorDesc {
	const char *name;
	int32_t role, dtype, area; /* IrRole, IrDType, IrArea values (ir/ir.h) */
	uint8_t bits, log2g, scale, round, underflow, pad[3]; /* LNS format when dtype is LNS */
	int32_t rank;
	int64_t dims[LNSRT_MAX_RANK];
	int64_t offset;    /* in the state blob or the scratch arena; -1 for IO and constants */
	int64_t bytes;
	int64_t scale_off; /* its LnsScaleState in the state blob, or -1 */
	int32_t io_slot;   /* index into io[], or -1 */
	int32_t param;     /* for optimizer state and gradients: the parameter's tensor index, or -1 */
} LnsrtTensorDesc;

typedef struct LnsrtModelDesc {
	uint32_t abi_version;
	uint32_t fingerprint; /* of the tensor table: checkpoints must match it */
	const char *name;
	const char *recipe;
	int64_t state_bytes, scratch_bytes;
	int32_t ntensors;
	const LnsrtTensorDesc *tensors;
	int32_t nio;
	int32_t input, labels, logits, loss; /* tensor indices (-1 if absent) */
	int32_t batch, nclasses;
	int64_t example_size;
	/* init encodes the initial parameters into the state blob and zeroes the optimizer state */
	int (*init)(LnsrtStepArgs *a, uint64_t seed);
	int (*train_step)(LnsrtStepArgs *a);
	int (*eval_step)(LnsrtStepArgs *a);
} LnsrtModelDesc;

/* The state blob opens with this header (same layout as IrStateHeader in ir/ir.h). */
typedef struct LnsrtStateHeader {
	uint64_t seed;
	uint32_t step;
} LnsrtStateHeader;

/* ---- model.c: descriptors, and a model handle that runs one ---- */

/* Elements of a tensor (the product of its dims; 1 for rank 0). */
int64_t lnsrt_tensor_numel(const LnsrtTensorDesc *t);
/* Index of the tensor called name, or -1. */
int lnsrt_desc_find(const LnsrtModelDesc *d, const char *name);
/* FNV-1a (32-bit) over what fixes the state blob's layout: state_bytes, then for every tensor
 * with bytes in the blob (area STATE, or an LnsScaleState) its name, role, dtype, LNS format,
 * shape, offset (state tensors only), bytes and scale_off, as little-endian integers. Scratch
 * placement does not enter, so backends that fuse differently share checkpoints. */
uint32_t lnsrt_desc_fingerprint(const LnsrtModelDesc *d);
/* Checks a descriptor's table (not its entry points): ABI version, fingerprint, every tensor
 * inside its area with a valid dtype, format and shape, indices and IO slots in range.
 * 0, or -1 with a message. */
int lnsrt_desc_check(const LnsrtModelDesc *d, char *err, size_t errn);

typedef struct LnsrtModel LnsrtModel;

/* Allocates the state blob and scratch arena (64-byte aligned, zeroed) once, starts a pool of
 * nthreads (<= 1: none) and runs d->init with seed. NULL with a message on failure. d must
 * outlive the model. */
LnsrtModel *lnsrt_model_new(const LnsrtModelDesc *d, int nthreads, uint64_t seed, char *err,
                            size_t errn);
void lnsrt_model_free(LnsrtModel *m);
/* One training step on x (the input tensor, f32) and labels y; writes the loss (may be NULL).
 * A numeric error reads "numeric error: tensor '<name>' has NaN/Inf at step <t>"; bad input
 * "bad input: tensor '<name>' holds a value out of range (a label outside [0, classes)) at
 * step <t>". */
int lnsrt_model_train_step(LnsrtModel *m, const float *x, const int64_t *y, float *loss,
                           char *err, size_t errn);
/* Forward only on x; writes the logits tensor decoded to f32 (may be NULL). */
int lnsrt_model_eval_step(LnsrtModel *m, const float *x, float *logits, char *err, size_t errn);
/* A step with every IO slot given (io[d->nio], NULL where unused: labels in eval). */
int lnsrt_model_run(LnsrtModel *m, int train, const void *const *io, char *err, size_t errn);
/* Fills the driver's trainer interface (steps, shapes, state and descriptor). -1 with a
 * message when the model is not a classifier with one f32 input and integer labels. */
int lnsrt_model_trainer(LnsrtModel *m, LnsrtTrainer *out, char *err, size_t errn);
/* The main optimizer's learning rate for the following steps; 0 = the compiled default. */
void lnsrt_model_set_lr(LnsrtModel *m, float lr);
const LnsrtModelDesc *lnsrt_model_desc(const LnsrtModel *m);
void *lnsrt_model_state(LnsrtModel *m);   /* d->state_bytes */
void *lnsrt_model_scratch(LnsrtModel *m); /* d->scratch_bytes */
LnsrtPool *lnsrt_model_pool(LnsrtModel *m);
uint32_t lnsrt_model_step(const LnsrtModel *m); /* training steps taken (state header) */
/* Tensor `name` as n f32 values (n must be its element count): f32 copied, LNS decoded with
 * the k of its scale state (exact for state tensors; scratch tensors hold what the last step
 * left, and their k is the last training step's), integers converted. Tensors outside the
 * state and scratch (IO, constants) are refused. */
int lnsrt_model_read(LnsrtModel *m, const char *name, float *out, int64_t n, char *err,
                     size_t errn);
/* The same for tensor i of a descriptor whose state blob is at state (a checkpoint's, say):
 * its lnsrt_tensor_numel floats; tensors outside the state are refused. 0 or -1. */
int lnsrt_state_read(const LnsrtModelDesc *d, const void *state, int i, float *out, char *err,
                     size_t errn);
/* Per LNS tensor: format, scale offset k, saturated and underflowed element counts (and % of
 * the elements encoded) from its LnsScaleState. lnsrt_telemetry_print does the same for any
 * descriptor and state blob (a checkpoint's, say). */
void lnsrt_model_telemetry(const LnsrtModel *m, FILE *f);
void lnsrt_telemetry_print(const LnsrtModelDesc *d, const void *state, FILE *f);

/* ---- checkpoint.c: the state blob on disk ----
 *
 * A checkpoint is one file; header and table integers are little-endian:
 *   header, 128 bytes: at 0 "LNSCCKPT"; 8 format version u32 (LNSRT_CKPT_VERSION); 12 ABI
 *     version u32; 16 fingerprint u32; 20 ntensors u32; 24 state_bytes u64; 32 table_bytes
 *     u64; 40 blob_offset u64; 48 the blob's byte order u32 (1 little, 2 big); then the
 *     driver's LnsrtTrainState: 52 epoch i32, 56 batch i32, 64 epoch_step i64, 72
 *     total_steps i64, 80 loss_sum (f64 bits), 88 seed u64, 96 train_n i64; and copies of the
 *     blob's own header for tools: 60 step u32, 104 model seed u64; zeros to 128;
 *   table, table_bytes: model name, recipe, and (version 2) a metadata text the writer chose
 *     (what `lnsc.resume` needs to rebuild the trainer; may be empty) (u32 length + bytes
 *     each), then per tensor: name
 *     (u32 length + bytes), role, dtype, area i32, bits, log2g, scale, round, underflow u8,
 *     rank i32, dims i64[rank], offset, bytes, scale_off i64, io_slot, param i32;
 *   zeros up to blob_offset (the first multiple of 64 after the table);
 *   the state blob, state_bytes, as it is in memory;
 *   CRC-32 (zlib's) of every byte before it, u32.
 * Written to a temporary file beside path, fsync'd, renamed over path, directory fsync'd: a
 * crash leaves the old checkpoint or the new one, never a mix. */
enum { LNSRT_CKPT_VERSION = 2 }; /* written; versions 1 (no metadata) and 2 are read */

int lnsrt_checkpoint_save(const LnsrtModelDesc *d, const void *state, const LnsrtTrainState *ts,
                          const char *path, char *err, size_t errn);
/* The same with a metadata text (NULL: none), which lnsrt_checkpoint_read returns. */
int lnsrt_checkpoint_save_meta(const LnsrtModelDesc *d, const void *state,
                               const LnsrtTrainState *ts, const char *meta, const char *path,
                               char *err, size_t errn);
/* Checks magic, versions, sizes ("truncated", "trailing data"), CRC ("corrupt"), then that
 * the checkpoint is for d ("checkpoint is for a different model or layout"); only then
 * copies the blob into state (d->state_bytes) and the driver position into *ts (may be NULL).
 * On failure state is untouched. Messages start with the path. */
int lnsrt_checkpoint_load(const LnsrtModelDesc *d, void *state, LnsrtTrainState *ts,
                          const char *path, char *err, size_t errn);

/* The same for a model handle, without a training position (the library API's save/load). */
int lnsrt_model_save(LnsrtModel *m, const char *path, char *err, size_t errn);
int lnsrt_model_load(LnsrtModel *m, const char *path, char *err, size_t errn);

/* A checkpoint read without its model (tools): the table, the blob, the driver position. */
typedef struct LnsrtCheckpoint {
	uint32_t abi_version, fingerprint;
	LnsrtTrainState train;
	LnsrtModelDesc desc;      /* name, recipe, table, sizes, indices -1; no entry points */
	LnsrtTensorDesc *tensors; /* = desc.tensors */
	void *state;              /* desc.state_bytes, 64-byte aligned */
	const char *meta;         /* the metadata text ("" when there is none) */
	char *strings;            /* names */
} LnsrtCheckpoint;
int lnsrt_checkpoint_read(const char *path, LnsrtCheckpoint *out, char *err, size_t errn);
void lnsrt_checkpoint_free(LnsrtCheckpoint *c);

#endif
