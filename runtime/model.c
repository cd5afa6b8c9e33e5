/* model.c: model descriptors (checks, fingerprint, lookup) and the model handle that runs one.
 *
 * A descriptor is all the runtime knows of a model: the tensor table of the plan (where each
 * tensor lives in the state blob, the scratch arena or the caller's IO buffers) and three entry
 * points. LnsrtModel allocates the two blobs once, 64-byte aligned, runs init, and then only
 * points LnsrtStepArgs at them for each step, so a step allocates nothing. Results are read
 * back through the table: the loss and logits from wherever the plan put them, LNS tensors
 * decoded with the scale offset of their LnsScaleState. A step that reports a numeric error
 * names the tensor from the table. The fingerprint hashes the state blob's layout in a fixed
 * byte order, so every machine and backend computes the same value for the same plan.
 */
#include "runtime/lnsrt.h"

#include <stdlib.h>
#include <string.h>

#include "ir/lns.h"

enum { ALIGN = 64 };

int64_t lnsrt_tensor_numel(const LnsrtTensorDesc *t)
{
	int64_t n = 1;
	for (int i = 0; i < t->rank && i < LNSRT_MAX_RANK; i++)
		n *= t->dims[i];
	return n;
}

int lnsrt_desc_find(const LnsrtModelDesc *d, const char *name)
{
	for (int i = 0; i < d->ntensors; i++)
		if (d->tensors[i].name && !strcmp(d->tensors[i].name, name))
			return i;
	return -1;
}

/* ---- fingerprint ---- */

typedef struct Fnv {
	uint32_t h;
} Fnv;

static void fnv_bytes(Fnv *f, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		f->h ^= b[i];
		f->h *= 16777619u;
	}
}

/* Integers go in as n little-endian bytes, whatever the machine. */
static void fnv_int(Fnv *f, int64_t v, int n)
{
	unsigned char b[8];
	for (int i = 0; i < n; i++)
		b[i] = (unsigned char)((uint64_t)v >> (8 * i));
	fnv_bytes(f, b, (size_t)n);
}

static int in_blob(const LnsrtTensorDesc *t)
{
	return t->area == LNSRT_AREA_STATE || t->scale_off >= 0;
}

uint32_t lnsrt_desc_fingerprint(const LnsrtModelDesc *d)
{
	Fnv f = {2166136261u};
	fnv_int(&f, d->state_bytes, 8);
	for (int i = 0; i < d->ntensors; i++) {
		const LnsrtTensorDesc *t = &d->tensors[i];
		if (!in_blob(t))
			continue;
		fnv_bytes(&f, t->name, strlen(t->name) + 1);
		fnv_int(&f, t->role, 4);
		fnv_int(&f, t->dtype, 4);
		const uint8_t fmt[5] = {t->bits, t->log2g, t->scale, t->round, t->underflow};
		fnv_bytes(&f, fmt, sizeof fmt);
		fnv_int(&f, t->rank, 4);
		for (int j = 0; j < t->rank && j < LNSRT_MAX_RANK; j++)
			fnv_int(&f, t->dims[j], 8);
		fnv_int(&f, t->area == LNSRT_AREA_STATE ? t->offset : -1, 8);
		fnv_int(&f, t->bytes, 8);
		fnv_int(&f, t->scale_off, 8);
	}
	return f.h;
}

/* ---- checks ---- */

static size_t dtype_size(const LnsrtTensorDesc *t)
{
	static const unsigned char size[LNSRT_DT_COUNT] = {4, 8, 2, 1, 2, 4, 8, 1, 2, 4, 8, 1, 0};
	if (t->dtype == LNSRT_DT_LNS)
		return t->bits <= 8 ? 1 : 2;
	return size[t->dtype];
}

static int check_tensor(const LnsrtModelDesc *d, int i, char *err, size_t errn)
{
	const LnsrtTensorDesc *t = &d->tensors[i];
	const char *m = d->name ? d->name : "model";
	if (!t->name || !t->name[0])
		return lnsrt_fmt_err(err, errn, "%s: tensor %d has no name", m, i);
	if (t->dtype < 0 || t->dtype >= LNSRT_DT_COUNT || t->role < 0 ||
	    t->role >= LNSRT_ROLE_COUNT || t->area < LNSRT_AREA_NONE || t->area > LNSRT_AREA_IO)
		return lnsrt_fmt_err(err, errn,
		                     "%s: tensor '%s': dtype %d, role %d or area %d out "
		                     "of range",
		                     m, t->name, t->dtype, t->role, t->area);
	LnsFormat f = {t->bits, t->log2g, t->scale, t->round, t->underflow};
	if (t->dtype == LNSRT_DT_LNS && !lns_format_valid(f))
		return lnsrt_fmt_err(err, errn,
		                     "%s: tensor '%s': invalid LNS format (%d bits, "
		                     "log2 gamma %d)",
		                     m, t->name, t->bits, t->log2g);
	if (t->rank < 0 || t->rank > LNSRT_MAX_RANK)
		return lnsrt_fmt_err(err, errn, "%s: tensor '%s': rank %d", m, t->name, t->rank);
	for (int j = 0; j < t->rank; j++)
		if (t->dims[j] < 0 || t->dims[j] > ((int64_t)1 << 40))
			return lnsrt_fmt_err(err, errn, "%s: tensor '%s': dim %d is %lld", m,
			                     t->name, j, (long long)t->dims[j]);
	int64_t n = lnsrt_tensor_numel(t);
	if (n > ((int64_t)1 << 36) || t->bytes < n * (int64_t)dtype_size(t))
		return lnsrt_fmt_err(err, errn, "%s: tensor '%s': %lld bytes for %lld elements", m,
		                     t->name, (long long)t->bytes, (long long)n);
	int64_t limit = t->area == LNSRT_AREA_STATE     ? d->state_bytes
	                : t->area == LNSRT_AREA_SCRATCH ? d->scratch_bytes
	                                                : -1;
	if (limit >= 0 && (t->offset < 0 || t->offset > limit || t->bytes > limit - t->offset))
		return lnsrt_fmt_err(err, errn,
		                     "%s: tensor '%s' at [%lld, %lld) is outside its "
		                     "area of %lld bytes",
		                     m, t->name, (long long)t->offset,
		                     (long long)(t->offset + t->bytes), (long long)limit);
	int64_t ss = (int64_t)sizeof(LnsScaleState);
	if (t->scale_off != -1 && (t->scale_off < (int64_t)sizeof(LnsrtStateHeader) ||
	                           t->scale_off > d->state_bytes - ss || t->scale_off % 8))
		return lnsrt_fmt_err(err, errn,
		                     "%s: tensor '%s': scale state at %lld is outside "
		                     "the state blob",
		                     m, t->name, (long long)t->scale_off);
	if (t->io_slot < -1 || t->io_slot >= d->nio || t->param < -1 || t->param >= d->ntensors)
		return lnsrt_fmt_err(err, errn,
		                     "%s: tensor '%s': IO slot %d or parameter %d out "
		                     "of range",
		                     m, t->name, t->io_slot, t->param);
	if ((t->io_slot >= 0) != (t->area == LNSRT_AREA_IO))
		return lnsrt_fmt_err(err, errn,
		                     "%s: tensor '%s': an IO slot belongs to IO tensors "
		                     "only",
		                     m, t->name);
	return 0;
}

int lnsrt_desc_check(const LnsrtModelDesc *d, char *err, size_t errn)
{
	if (!d)
		return lnsrt_fmt_err(err, errn, "no model descriptor");
	const char *m = d->name ? d->name : "model";
	if (d->abi_version != LNSRT_ABI_VERSION)
		return lnsrt_fmt_err(err, errn,
		                     "%s: model ABI version %u, this runtime speaks "
		                     "version %d; rebuild the model with this lnsc",
		                     m, (unsigned)d->abi_version, LNSRT_ABI_VERSION);
	if (d->state_bytes < (int64_t)sizeof(LnsrtStateHeader) || d->scratch_bytes < 0 ||
	    d->ntensors < 0 || (d->ntensors > 0 && !d->tensors) || d->nio < 0)
		return lnsrt_fmt_err(err, errn,
		                     "%s: malformed descriptor (state %lld bytes, "
		                     "scratch %lld, %d tensors, %d IO slots)",
		                     m, (long long)d->state_bytes, (long long)d->scratch_bytes,
		                     d->ntensors, d->nio);
	for (int i = 0; i < d->ntensors; i++)
		if (check_tensor(d, i, err, errn))
			return -1;
	const int32_t idx[4] = {d->input, d->labels, d->logits, d->loss};
	for (int i = 0; i < 4; i++)
		if (idx[i] < -1 || idx[i] >= d->ntensors)
			return lnsrt_fmt_err(err, errn, "%s: tensor index %d out of range", m,
			                     idx[i]);
	if ((d->input >= 0 && d->tensors[d->input].io_slot < 0) ||
	    (d->labels >= 0 && d->tensors[d->labels].io_slot < 0))
		return lnsrt_fmt_err(err, errn, "%s: the input and labels must be IO tensors", m);
	uint32_t fp = lnsrt_desc_fingerprint(d);
	if (fp != d->fingerprint)
		return lnsrt_fmt_err(err, errn,
		                     "%s: descriptor fingerprint 0x%08x does not match "
		                     "its table (0x%08x)",
		                     m, (unsigned)d->fingerprint, (unsigned)fp);
	return 0;
}

/* ---- the model handle ---- */

struct LnsrtModel {
	const LnsrtModelDesc *d;
	uint8_t *state, *scratch;
	const void **io;
	LnsrtPool *pool;
	float lr;
};

static void *blob_new(int64_t bytes)
{
	size_t n = ((size_t)bytes + ALIGN - 1) / ALIGN * ALIGN;
	void *p = aligned_alloc(ALIGN, n ? n : ALIGN);
	if (p)
		memset(p, 0, n ? n : ALIGN);
	return p;
}

static const LnsrtStateHeader *header(const void *state)
{
	return state;
}

/* Storage of tensor t, or NULL when it is not in the state or scratch. */
static void *tensor_data(const LnsrtModelDesc *d, void *state, void *scratch, int i)
{
	const LnsrtTensorDesc *t = &d->tensors[i];
	if (t->area == LNSRT_AREA_STATE)
		return (uint8_t *)state + t->offset;
	if (t->area == LNSRT_AREA_SCRATCH)
		return (uint8_t *)scratch + t->offset;
	return NULL;
}

static const LnsScaleState *scale_state(const LnsrtTensorDesc *t, const void *state)
{
	return t->scale_off >= 0 ? (const LnsScaleState *)((const uint8_t *)state + t->scale_off)
	                         : NULL;
}

/* A failed entry point: numeric errors and bad input name their tensor; anything else its
 * code. */
static int step_failed(const LnsrtModel *m, const char *what, int rc, int32_t et, char *err,
                       size_t errn)
{
	const LnsrtModelDesc *d = m->d;
	unsigned step = (unsigned)header(m->state)->step;
	if (et >= 0 && et < d->ntensors && rc == 2)
		return lnsrt_fmt_err(err, errn,
		                     "bad input: tensor '%s' holds a value out of range "
		                     "(a label outside [0, %d)) at step %u",
		                     d->tensors[et].name, d->nclasses, step);
	if (et >= 0 && et < d->ntensors)
		return lnsrt_fmt_err(err, errn, "numeric error: tensor '%s' has NaN/Inf at step %u",
		                     d->tensors[et].name, step);
	return lnsrt_fmt_err(err, errn, "%s failed at step %u (the model returned %d)", what, step,
	                     rc);
}

LnsrtModel *lnsrt_model_new(const LnsrtModelDesc *d, int nthreads, uint64_t seed, char *err,
                            size_t errn)
{
	if (lnsrt_desc_check(d, err, errn))
		return NULL;
	const char *name = d->name ? d->name : "model";
	if (!d->init || !d->train_step || !d->eval_step) {
		lnsrt_fmt_err(err, errn, "%s: the descriptor has no entry points", name);
		return NULL;
	}
	LnsrtModel *m = calloc(1, sizeof *m);
	if (!m) {
		lnsrt_fmt_err(err, errn, "%s: out of memory", name);
		return NULL;
	}
	m->d = d;
	m->state = blob_new(d->state_bytes);
	m->scratch = blob_new(d->scratch_bytes);
	m->io = calloc(d->nio > 0 ? (size_t)d->nio : 1, sizeof *m->io);
	if (!m->state || !m->scratch || !m->io) {
		lnsrt_fmt_err(err, errn,
		              "%s: out of memory for the state (%lld bytes) and scratch "
		              "(%lld bytes)",
		              name, (long long)d->state_bytes, (long long)d->scratch_bytes);
		lnsrt_model_free(m);
		return NULL;
	}
	if (nthreads > 1 && !(m->pool = lnsrt_pool_new(nthreads))) {
		lnsrt_fmt_err(err, errn, "%s: cannot start %d threads", name, nthreads);
		lnsrt_model_free(m);
		return NULL;
	}
	LnsrtStepArgs a = {m->state, m->scratch, m->io, m->pool, 0.0f, -1, d};
	int rc = d->init(&a, seed);
	if (rc) {
		char sub[512];
		step_failed(m, "init", rc, a.error_tensor, sub, sizeof sub);
		lnsrt_fmt_err(err, errn, "%s: init: %s", name, sub);
		lnsrt_model_free(m);
		return NULL;
	}
	return m;
}

void lnsrt_model_free(LnsrtModel *m)
{
	if (!m)
		return;
	lnsrt_pool_free(m->pool);
	free(m->state);
	free(m->scratch);
	free(m->io);
	free(m);
}

int lnsrt_model_run(LnsrtModel *m, int train, const void *const *io, char *err, size_t errn)
{
	const LnsrtModelDesc *d = m->d;
	for (int i = 0; i < d->nio; i++)
		m->io[i] = io ? io[i] : NULL;
	LnsrtStepArgs a = {m->state, m->scratch, m->io, m->pool, m->lr, -1, d};
	int rc = train ? d->train_step(&a) : d->eval_step(&a);
	if (rc)
		return step_failed(m, train ? "train step" : "eval step", rc, a.error_tensor, err,
		                   errn);
	return 0;
}

/* Tensor t's n elements at p as floats (LNS decoded with its scale state's k). */
static int to_f32(const LnsrtTensorDesc *t, const void *p, const void *state, float *out,
                  int64_t n, char *err, size_t errn)
{
	size_t k = (size_t)n;
	switch (t->dtype) {
	case LNSRT_DT_F32:
		memcpy(out, p, k * sizeof *out);
		return 0;
	case LNSRT_DT_LNS: {
		LnsFormat f = {t->bits, t->log2g, t->scale, t->round, t->underflow};
		const LnsScaleState *st = scale_state(t, state);
		lns_decode_tensor(f, st ? st->k : 0, p, out, k);
		return 0;
	}
#define CONVERT(DT, T)                                                                             \
	case DT:                                                                                   \
		for (size_t j = 0; j < k; j++)                                                     \
			out[j] = (float)((const T *)p)[j];                                         \
		return 0;
		CONVERT(LNSRT_DT_F64, double)
		CONVERT(LNSRT_DT_I8, int8_t)
		CONVERT(LNSRT_DT_I16, int16_t)
		CONVERT(LNSRT_DT_I32, int32_t)
		CONVERT(LNSRT_DT_I64, int64_t)
		CONVERT(LNSRT_DT_U8, uint8_t)
		CONVERT(LNSRT_DT_U16, uint16_t)
		CONVERT(LNSRT_DT_U32, uint32_t)
		CONVERT(LNSRT_DT_U64, uint64_t)
		CONVERT(LNSRT_DT_BOOL, uint8_t)
#undef CONVERT
	default:
		return lnsrt_fmt_err(err, errn, "tensor '%s': no f32 view of dtype %d", t->name,
		                     t->dtype);
	}
}

/* Tensor i as n floats; the caller has checked the count. */
static int read_f32(LnsrtModel *m, int i, float *out, int64_t n, char *err, size_t errn)
{
	const LnsrtTensorDesc *t = &m->d->tensors[i];
	const void *p = tensor_data(m->d, m->state, m->scratch, i);
	if (!p)
		return lnsrt_fmt_err(err, errn, "tensor '%s' is not in the state or scratch",
		                     t->name);
	return to_f32(t, p, m->state, out, n, err, errn);
}

int lnsrt_state_read(const LnsrtModelDesc *d, const void *state, int i, float *out, char *err,
                     size_t errn)
{
	const LnsrtTensorDesc *t = &d->tensors[i];
	if (t->area != LNSRT_AREA_STATE || t->offset < 0 || t->offset + t->bytes > d->state_bytes)
		return lnsrt_fmt_err(err, errn, "tensor '%s' is not in the state", t->name);
	return to_f32(t, (const char *)state + t->offset, state, out, lnsrt_tensor_numel(t), err,
	              errn);
}

int lnsrt_model_read(LnsrtModel *m, const char *name, float *out, int64_t n, char *err, size_t errn)
{
	int i = lnsrt_desc_find(m->d, name);
	if (i < 0)
		return lnsrt_fmt_err(err, errn, "no tensor named '%s'", name);
	int64_t want = lnsrt_tensor_numel(&m->d->tensors[i]);
	if (n != want)
		return lnsrt_fmt_err(err, errn, "tensor '%s' has %lld elements, not %lld", name,
		                     (long long)want, (long long)n);
	return read_f32(m, i, out, n, err, errn);
}

int lnsrt_model_train_step(LnsrtModel *m, const float *x, const int64_t *y, float *loss, char *err,
                           size_t errn)
{
	const LnsrtModelDesc *d = m->d;
	if (d->input < 0 || d->labels < 0 || d->loss < 0)
		return lnsrt_fmt_err(err, errn, "%s: the model has no input, labels or loss",
		                     d->name ? d->name : "model");
	memset(m->io, 0, (size_t)d->nio * sizeof *m->io);
	m->io[d->tensors[d->input].io_slot] = x;
	m->io[d->tensors[d->labels].io_slot] = y;
	if (lnsrt_model_run(m, 1, m->io, err, errn))
		return -1;
	return loss ? read_f32(m, d->loss, loss, 1, err, errn) : 0;
}

int lnsrt_model_eval_step(LnsrtModel *m, const float *x, float *logits, char *err, size_t errn)
{
	const LnsrtModelDesc *d = m->d;
	if (d->input < 0 || d->logits < 0)
		return lnsrt_fmt_err(err, errn, "%s: the model has no input or logits",
		                     d->name ? d->name : "model");
	memset(m->io, 0, (size_t)d->nio * sizeof *m->io);
	m->io[d->tensors[d->input].io_slot] = x;
	if (lnsrt_model_run(m, 0, m->io, err, errn))
		return -1;
	return logits ? read_f32(m, d->logits, logits, lnsrt_tensor_numel(&d->tensors[d->logits]),
	                         err, errn)
	              : 0;
}

static int trainer_train(void *impl, const float *x, const int64_t *y, float *loss, char *err,
                         size_t errn)
{
	return lnsrt_model_train_step(impl, x, y, loss, err, errn);
}

static int trainer_eval(void *impl, const float *x, float *logits, char *err, size_t errn)
{
	return lnsrt_model_eval_step(impl, x, logits, err, errn);
}

int lnsrt_model_trainer(LnsrtModel *m, LnsrtTrainer *out, char *err, size_t errn)
{
	const LnsrtModelDesc *d = m->d;
	const char *name = d->name ? d->name : "model";
	memset(out, 0, sizeof *out);
	if (d->input < 0 || d->labels < 0 || d->logits < 0 || d->loss < 0)
		return lnsrt_fmt_err(err, errn,
		                     "%s: training on a dataset needs an input, labels, "
		                     "logits and a loss",
		                     name);
	const LnsrtTensorDesc *in = &d->tensors[d->input], *lab = &d->tensors[d->labels];
	const LnsrtTensorDesc *lg = &d->tensors[d->logits];
	if (d->nio != 2)
		return lnsrt_fmt_err(err, errn,
		                     "%s: training on a dataset needs exactly one data "
		                     "input, the model has %d",
		                     name, d->nio - 1);
	if (in->dtype != LNSRT_DT_F32 || lab->dtype != LNSRT_DT_I64)
		return lnsrt_fmt_err(err, errn,
		                     "%s: training on a dataset needs an f32 input and "
		                     "class labels (i64); '%s' is dtype %d and '%s' dtype %d",
		                     name, in->name, in->dtype, lab->name, lab->dtype);
	if (d->batch < 1 || d->nclasses < 1 || d->example_size < 1 || lg->rank != 2 ||
	    lg->dims[0] != d->batch || lg->dims[1] != d->nclasses ||
	    lnsrt_tensor_numel(in) != d->batch * d->example_size ||
	    lnsrt_tensor_numel(lab) != d->batch)
		return lnsrt_fmt_err(
		    err, errn,
		    "%s: the input '%s', labels '%s' and logits '%s' "
		    "are not a classifier's [batch, ...], [batch], [batch, classes]",
		    name, in->name, lab->name, lg->name);
	*out = (LnsrtTrainer){
	    .impl = m,
	    .batch = d->batch,
	    .example_size = d->example_size,
	    .nclasses = d->nclasses,
	    .train_step = trainer_train,
	    .eval_step = trainer_eval,
	    .state = m->state,
	    .state_bytes = d->state_bytes,
	    .desc = d,
	};
	return 0;
}

void lnsrt_model_set_lr(LnsrtModel *m, float lr)
{
	m->lr = lr > 0 ? lr : 0.0f;
}

const LnsrtModelDesc *lnsrt_model_desc(const LnsrtModel *m)
{
	return m->d;
}

void *lnsrt_model_state(LnsrtModel *m)
{
	return m->state;
}

void *lnsrt_model_scratch(LnsrtModel *m)
{
	return m->scratch;
}

LnsrtPool *lnsrt_model_pool(LnsrtModel *m)
{
	return m->pool;
}

uint32_t lnsrt_model_step(const LnsrtModel *m)
{
	return header(m->state)->step;
}

/* ---- telemetry ---- */

void lnsrt_telemetry_print(const LnsrtModelDesc *d, const void *state, FILE *f)
{
	fprintf(f, "\n# LNS telemetry after %u steps\n", (unsigned)header(state)->step);
	fprintf(f, "# %-40s %-8s %6s %14s %10s %14s %10s\n", "tensor", "format", "k", "saturated",
	        "sat %", "underflowed", "unf %");
	for (int i = 0; i < d->ntensors; i++) {
		const LnsrtTensorDesc *t = &d->tensors[i];
		const LnsScaleState *st = t->dtype == LNSRT_DT_LNS ? scale_state(t, state) : NULL;
		if (!st)
			continue;
		char fs[32];
		LnsFormat fmt = {t->bits, t->log2g, t->scale, t->round, t->underflow};
		double tot = st->n_total ? (double)st->n_total : 1.0;
		fprintf(f, "# %-40s %-8s %6d %14llu %10.4f %14llu %10.4f\n", t->name,
		        lns_format_str(fmt, fs, sizeof fs), (int)st->k,
		        (unsigned long long)st->n_sat, 100.0 * (double)st->n_sat / tot,
		        (unsigned long long)st->n_unf, 100.0 * (double)st->n_unf / tot);
	}
}

void lnsrt_model_telemetry(const LnsrtModel *m, FILE *f)
{
	lnsrt_telemetry_print(m->d, m->state, f);
}
