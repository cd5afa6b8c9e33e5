/* checkpoint.c: the state blob on disk: header, tensor table, blob, CRC; atomic writes.
 *
 * The format is in lnsrt.h. The header and the table are encoded field by field in
 * little-endian order (so a tool reads them on any machine, without the model); the blob is
 * written as it is in memory, with its byte order recorded. Saving builds header and table
 * in memory, then streams header, table, padding and blob into a temporary file beside the
 * target, accumulating the CRC, appends the CRC, fsyncs, renames over the target and fsyncs
 * the directory, so the target is always either the old or the new checkpoint. Reading takes
 * the whole file into memory and checks, in order, magic, versions, the announced size
 * against the real one (truncated or trailing data), the CRC, and the table's own
 * consistency; loading then compares the fingerprint and sizes with the model's and only
 * then copies the blob, so a failed load never touches the model.
 */
#include "runtime/lnsrt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

enum {
	HEADER_BYTES = 128,
	BLOB_ALIGN = 64,
	ORDER_LITTLE = 1,
	ORDER_BIG = 2,
	MAX_NAME = 1 << 16,
	MAX_META = 1 << 24,
	VERSION_NO_META = 1,
	MAX_TENSORS = 1 << 24,
};
static const char MAGIC[8] = {'L', 'N', 'S', 'C', 'C', 'K', 'P', 'T'};
#define MAX_FILE ((int64_t)1 << 46)

/* ---- little-endian encoding ---- */

typedef struct Buf {
	unsigned char *p;
	size_t len, cap;
	int oom;
} Buf;

static void buf_put(Buf *b, const void *p, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + n)
			cap *= 2;
		unsigned char *q = realloc(b->p, cap);
		if (!q) {
			b->oom = 1;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put_le(Buf *b, uint64_t v, int n)
{
	unsigned char c[8];
	for (int i = 0; i < n; i++)
		c[i] = (unsigned char)(v >> (8 * i));
	buf_put(b, c, (size_t)n);
}

static void put_str(Buf *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	put_le(b, n, 4);
	buf_put(b, s ? s : "", n);
}

static uint64_t get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static int machine_order(void)
{
	const uint16_t one = 1;
	unsigned char c;
	memcpy(&c, &one, 1);
	return c ? ORDER_LITTLE : ORDER_BIG;
}

static uint64_t f64_bits(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof u);
	return u;
}

static double bits_f64(uint64_t u)
{
	double d;
	memcpy(&d, &u, sizeof d);
	return d;
}

/* ---- the header and the table ---- */

static void put_table(Buf *b, const LnsrtModelDesc *d, const char *meta)
{
	put_str(b, d->name);
	put_str(b, d->recipe);
	put_str(b, meta);
	for (int i = 0; i < d->ntensors; i++) {
		const LnsrtTensorDesc *t = &d->tensors[i];
		put_str(b, t->name);
		put_le(b, (uint32_t)t->role, 4);
		put_le(b, (uint32_t)t->dtype, 4);
		put_le(b, (uint32_t)t->area, 4);
		const uint8_t fmt[5] = {t->bits, t->log2g, t->scale, t->round, t->underflow};
		buf_put(b, fmt, sizeof fmt);
		put_le(b, (uint32_t)t->rank, 4);
		for (int j = 0; j < t->rank; j++)
			put_le(b, (uint64_t)t->dims[j], 8);
		put_le(b, (uint64_t)t->offset, 8);
		put_le(b, (uint64_t)t->bytes, 8);
		put_le(b, (uint64_t)t->scale_off, 8);
		put_le(b, (uint32_t)t->io_slot, 4);
		put_le(b, (uint32_t)t->param, 4);
	}
}

static int64_t blob_offset(size_t table_bytes)
{
	return (int64_t)((HEADER_BYTES + table_bytes + BLOB_ALIGN - 1) / BLOB_ALIGN * BLOB_ALIGN);
}

static void put_header(Buf *b, const LnsrtModelDesc *d, const void *state,
                       const LnsrtTrainState *ts, size_t table_bytes)
{
	LnsrtTrainState zero = {0};
	LnsrtStateHeader h;
	memcpy(&h, state, sizeof h);
	if (!ts)
		ts = &zero;
	buf_put(b, MAGIC, sizeof MAGIC);
	put_le(b, LNSRT_CKPT_VERSION, 4);
	put_le(b, d->abi_version, 4);
	put_le(b, d->fingerprint, 4);
	put_le(b, (uint32_t)d->ntensors, 4);
	put_le(b, (uint64_t)d->state_bytes, 8);
	put_le(b, table_bytes, 8);
	put_le(b, (uint64_t)blob_offset(table_bytes), 8);
	put_le(b, (uint32_t)machine_order(), 4);
	put_le(b, (uint32_t)ts->epoch, 4);
	put_le(b, (uint32_t)ts->batch, 4);
	put_le(b, h.step, 4);
	put_le(b, (uint64_t)ts->epoch_step, 8);
	put_le(b, (uint64_t)ts->total_steps, 8);
	put_le(b, f64_bits(ts->loss_sum), 8);
	put_le(b, ts->seed, 8);
	put_le(b, (uint64_t)ts->train_n, 8);
	put_le(b, h.seed, 8);
	while (b->len < HEADER_BYTES && !b->oom)
		put_le(b, 0, 1);
}

/* ---- writing ---- */

static int write_all(int fd, const void *p, size_t n, uLong *crc)
{
	const unsigned char *c = p;
	if (crc) {
		for (size_t done = 0; done < n;) {
			uInt k = n - done > (1u << 30) ? 1u << 30 : (uInt)(n - done);
			*crc = crc32(*crc, c + done, k);
			done += k;
		}
	}
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* fsync of the directory holding path, so the rename itself is durable. */
static int sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

int lnsrt_checkpoint_save(const LnsrtModelDesc *d, const void *state, const LnsrtTrainState *ts,
                          const char *path, char *err, size_t errn)
{
	return lnsrt_checkpoint_save_meta(d, state, ts, NULL, path, err, errn);
}

int lnsrt_checkpoint_save_meta(const LnsrtModelDesc *d, const void *state,
                               const LnsrtTrainState *ts, const char *meta, const char *path,
                               char *err, size_t errn)
{
	Buf table = {0}, head = {0};
	if (meta && strlen(meta) >= MAX_META)
		return lnsrt_fmt_err(err, errn, "%s: %zu bytes of metadata is too much", path,
		                     strlen(meta));
	put_table(&table, d, meta);
	put_header(&head, d, state, ts, table.len);
	if (table.oom || head.oom) {
		free(table.p);
		free(head.p);
		return lnsrt_fmt_err(err, errn, "%s: out of memory", path);
	}
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 8);
	int fd = -1, e = 0;
	if (!tmp) {
		e = ENOMEM;
		goto done;
	}
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".XXXXXX", 8);
	fd = mkstemp(tmp);
	if (fd < 0) {
		e = errno;
		free(tmp);
		free(table.p);
		free(head.p);
		return lnsrt_fmt_err(err, errn, "%s: cannot create a temporary file beside it: %s",
		                     path, strerror(e));
	}
	fchmod(fd, 0644);
	uLong crc = crc32(0L, Z_NULL, 0);
	static const unsigned char zeros[BLOB_ALIGN] = {0};
	size_t pad = (size_t)blob_offset(table.len) - HEADER_BYTES - table.len;
	unsigned char tail[4];
	if (write_all(fd, head.p, head.len, &crc) || write_all(fd, table.p, table.len, &crc) ||
	    write_all(fd, zeros, pad, &crc) || write_all(fd, state, (size_t)d->state_bytes, &crc)) {
		e = errno ? errno : EIO;
		goto done;
	}
	for (int i = 0; i < 4; i++)
		tail[i] = (unsigned char)(crc >> (8 * i));
	if (write_all(fd, tail, 4, NULL) || fsync(fd) != 0) {
		e = errno ? errno : EIO;
		goto done;
	}
	if (close(fd) != 0) {
		fd = -1;
		e = errno ? errno : EIO;
		goto done;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		e = errno;
		goto done;
	}
	sync_dir(path); /* best effort: some file systems refuse fsync on directories */
done:
	if (fd >= 0)
		close(fd);
	if (e && tmp)
		unlink(tmp);
	free(tmp);
	free(table.p);
	free(head.p);
	if (e)
		return lnsrt_fmt_err(err, errn, "%s: cannot write checkpoint: %s", path,
		                     strerror(e));
	return 0;
}

/* ---- reading ---- */

/* Reads the whole file; messages name it. */
static int slurp(const char *path, unsigned char **out, int64_t *len, char *err, size_t errn)
{
	*out = NULL;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return lnsrt_fmt_err(err, errn, "%s: cannot open checkpoint: %s", path,
		                     strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return lnsrt_fmt_err(err, errn, "%s: not a regular file", path);
	}
	if ((int64_t)st.st_size > MAX_FILE) {
		close(fd);
		return lnsrt_fmt_err(err, errn, "%s: %lld bytes is too large for a checkpoint",
		                     path, (long long)st.st_size);
	}
	size_t n = (size_t)st.st_size;
	unsigned char *p = malloc(n ? n : 1);
	if (!p) {
		close(fd);
		return lnsrt_fmt_err(err, errn, "%s: out of memory for %zu bytes", path, n);
	}
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(p);
			close(fd);
			return lnsrt_fmt_err(err, errn, "%s: cannot read: %s", path, strerror(e));
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	*out = p;
	*len = (int64_t)got;
	return 0;
}

/* A cursor over the table, bounds-checked. */
typedef struct Cur {
	const unsigned char *p, *end;
	int bad;
} Cur;

static uint64_t cur_le(Cur *c, int n)
{
	if (c->bad || c->end - c->p < n) {
		c->bad = 1;
		return 0;
	}
	uint64_t v = get_le(c->p, n);
	c->p += n;
	return v;
}

/* A length-prefixed string (shorter than max) copied (NUL-terminated) to *strings. */
static const char *cur_text(Cur *c, char **strings, uint64_t max)
{
	uint64_t n = cur_le(c, 4);
	if (c->bad || n >= max || (uint64_t)(c->end - c->p) < n || memchr(c->p, 0, n)) {
		c->bad = 1;
		return "";
	}
	char *s = *strings;
	memcpy(s, c->p, n);
	s[n] = 0;
	*strings += n + 1;
	c->p += n;
	return s;
}

static const char *cur_str(Cur *c, char **strings)
{
	return cur_text(c, strings, MAX_NAME);
}

static int parse_table(LnsrtCheckpoint *ck, const unsigned char *p, size_t n, uint32_t version)
{
	Cur c = {p, p + n, 0};
	LnsrtModelDesc *d = &ck->desc;
	char *s = ck->strings = malloc(n + 1); /* names are shorter than the table holding them */
	ck->tensors = calloc(d->ntensors > 0 ? (size_t)d->ntensors : 1, sizeof *ck->tensors);
	if (!s || !ck->tensors)
		return -1;
	d->name = cur_str(&c, &s);
	d->recipe = cur_str(&c, &s);
	ck->meta = version > VERSION_NO_META ? cur_text(&c, &s, MAX_META) : "";
	for (int i = 0; i < d->ntensors && !c.bad; i++) {
		LnsrtTensorDesc *t = &ck->tensors[i];
		t->name = cur_str(&c, &s);
		t->role = (int32_t)cur_le(&c, 4);
		t->dtype = (int32_t)cur_le(&c, 4);
		t->area = (int32_t)cur_le(&c, 4);
		t->bits = (uint8_t)cur_le(&c, 1);
		t->log2g = (uint8_t)cur_le(&c, 1);
		t->scale = (uint8_t)cur_le(&c, 1);
		t->round = (uint8_t)cur_le(&c, 1);
		t->underflow = (uint8_t)cur_le(&c, 1);
		t->rank = (int32_t)cur_le(&c, 4);
		if (t->rank < 0 || t->rank > LNSRT_MAX_RANK)
			return -1;
		for (int j = 0; j < t->rank; j++)
			t->dims[j] = (int64_t)cur_le(&c, 8);
		t->offset = (int64_t)cur_le(&c, 8);
		t->bytes = (int64_t)cur_le(&c, 8);
		t->scale_off = (int64_t)cur_le(&c, 8);
		t->io_slot = (int32_t)cur_le(&c, 4);
		t->param = (int32_t)cur_le(&c, 4);
		if (t->io_slot >= d->nio)
			d->nio = t->io_slot + 1;
	}
	d->tensors = ck->tensors;
	return c.bad || c.p != c.end ? -1 : 0;
}

void lnsrt_checkpoint_free(LnsrtCheckpoint *c)
{
	if (!c)
		return;
	free(c->tensors);
	free(c->state);
	free(c->strings);
	memset(c, 0, sizeof *c);
}

/* Header fields, then the size, the CRC and the table of the file in p[0..len). */
static int decode(const char *path, const unsigned char *p, int64_t len, LnsrtCheckpoint *ck,
                  char *err, size_t errn)
{
	if (len < HEADER_BYTES || memcmp(p, MAGIC, sizeof MAGIC) != 0) {
		if (len >= (int64_t)sizeof MAGIC && memcmp(p, MAGIC, sizeof MAGIC) != 0)
			return lnsrt_fmt_err(err, errn, "%s: not an lnsc checkpoint (bad magic)",
			                     path);
		return lnsrt_fmt_err(err, errn,
		                     "%s: truncated: %lld bytes, shorter than a "
		                     "checkpoint header",
		                     path, (long long)len);
	}
	uint32_t version = (uint32_t)get_le(p + 8, 4);
	if (version < VERSION_NO_META || version > LNSRT_CKPT_VERSION)
		return lnsrt_fmt_err(err, errn,
		                     "%s: checkpoint format version %u; this runtime "
		                     "reads versions %d to %d",
		                     path, (unsigned)version, VERSION_NO_META, LNSRT_CKPT_VERSION);
	ck->abi_version = (uint32_t)get_le(p + 12, 4);
	ck->fingerprint = (uint32_t)get_le(p + 16, 4);
	uint64_t ntensors = get_le(p + 20, 4), state_bytes = get_le(p + 24, 8);
	uint64_t table_bytes = get_le(p + 32, 8), boff = get_le(p + 40, 8);
	uint32_t order = (uint32_t)get_le(p + 48, 4);
	if (ck->abi_version != LNSRT_ABI_VERSION)
		return lnsrt_fmt_err(err, errn,
		                     "%s: checkpoint of model ABI version %u; this "
		                     "runtime speaks version %d",
		                     path, (unsigned)ck->abi_version, LNSRT_ABI_VERSION);
	if (ntensors > MAX_TENSORS || state_bytes > (uint64_t)MAX_FILE ||
	    table_bytes > (uint64_t)MAX_FILE || boff != (uint64_t)blob_offset(table_bytes) ||
	    state_bytes < sizeof(LnsrtStateHeader))
		return lnsrt_fmt_err(err, errn,
		                     "%s: corrupt header (%llu tensors, table %llu "
		                     "bytes, state %llu bytes)",
		                     path, (unsigned long long)ntensors,
		                     (unsigned long long)table_bytes,
		                     (unsigned long long)state_bytes);
	int64_t want = (int64_t)(boff + state_bytes + 4);
	if (len < want)
		return lnsrt_fmt_err(err, errn, "%s: truncated: %lld of %lld bytes", path,
		                     (long long)len, (long long)want);
	if (len > want)
		return lnsrt_fmt_err(err, errn,
		                     "%s: %lld bytes of trailing data after the "
		                     "checkpoint",
		                     path, (long long)(len - want));
	uLong crc = crc32(0L, Z_NULL, 0);
	for (int64_t done = 0; done < want - 4;) {
		uInt k = want - 4 - done > (1 << 30) ? 1u << 30 : (uInt)(want - 4 - done);
		crc = crc32(crc, p + done, k);
		done += k;
	}
	if ((uint32_t)crc != (uint32_t)get_le(p + want - 4, 4))
		return lnsrt_fmt_err(err, errn,
		                     "%s: corrupt: CRC mismatch (the file was damaged "
		                     "after it was written)",
		                     path);
	if (order != (uint32_t)machine_order())
		return lnsrt_fmt_err(err, errn,
		                     "%s: the state blob was written on a %s-endian "
		                     "machine",
		                     path, order == ORDER_BIG ? "big" : "little");
	LnsrtTrainState *ts = &ck->train;
	ts->epoch = (int32_t)get_le(p + 52, 4);
	ts->batch = (int32_t)get_le(p + 56, 4);
	ts->epoch_step = (int64_t)get_le(p + 64, 8);
	ts->total_steps = (int64_t)get_le(p + 72, 8);
	ts->loss_sum = bits_f64(get_le(p + 80, 8));
	ts->seed = get_le(p + 88, 8);
	ts->train_n = (int64_t)get_le(p + 96, 8);
	LnsrtModelDesc *d = &ck->desc;
	d->abi_version = ck->abi_version;
	d->fingerprint = ck->fingerprint;
	d->state_bytes = (int64_t)state_bytes;
	d->ntensors = (int32_t)ntensors;
	d->input = d->labels = d->logits = d->loss = -1;
	if (parse_table(ck, p + HEADER_BYTES, (size_t)table_bytes, version))
		return lnsrt_fmt_err(err, errn, "%s: corrupt tensor table", path);
	if (lnsrt_desc_fingerprint(d) != ck->fingerprint)
		return lnsrt_fmt_err(err, errn,
		                     "%s: the tensor table does not match the "
		                     "checkpoint's fingerprint",
		                     path);
	ck->state =
	    aligned_alloc(BLOB_ALIGN, (state_bytes + BLOB_ALIGN - 1) / BLOB_ALIGN * BLOB_ALIGN);
	if (!ck->state)
		return lnsrt_fmt_err(err, errn, "%s: out of memory", path);
	memcpy(ck->state, p + boff, state_bytes);
	return 0;
}

int lnsrt_checkpoint_read(const char *path, LnsrtCheckpoint *out, char *err, size_t errn)
{
	unsigned char *p = NULL;
	int64_t len = 0;
	memset(out, 0, sizeof *out);
	if (slurp(path, &p, &len, err, errn))
		return -1;
	int rc = decode(path, p, len, out, err, errn);
	free(p);
	if (rc)
		lnsrt_checkpoint_free(out);
	return rc;
}

int lnsrt_checkpoint_load(const LnsrtModelDesc *d, void *state, LnsrtTrainState *ts,
                          const char *path, char *err, size_t errn)
{
	LnsrtCheckpoint ck;
	if (lnsrt_checkpoint_read(path, &ck, err, errn))
		return -1;
	int rc = 0;
	if (ck.fingerprint != d->fingerprint || ck.desc.state_bytes != d->state_bytes)
		rc = lnsrt_fmt_err(err, errn,
		                   "%s: checkpoint is for a different model or layout "
		                   "('%s', fingerprint 0x%08x, %lld state bytes; this model is "
		                   "'%s', 0x%08x, %lld bytes)",
		                   path, ck.desc.name, (unsigned)ck.fingerprint,
		                   (long long)ck.desc.state_bytes, d->name ? d->name : "",
		                   (unsigned)d->fingerprint, (long long)d->state_bytes);
	if (!rc) {
		memcpy(state, ck.state, (size_t)d->state_bytes);
		if (ts)
			*ts = ck.train;
	}
	lnsrt_checkpoint_free(&ck);
	return rc;
}

int lnsrt_model_save(LnsrtModel *m, const char *path, char *err, size_t errn)
{
	return lnsrt_checkpoint_save(lnsrt_model_desc(m), lnsrt_model_state(m), NULL, path, err,
	                             errn);
}

int lnsrt_model_load(LnsrtModel *m, const char *path, char *err, size_t errn)
{
	return lnsrt_checkpoint_load(lnsrt_model_desc(m), lnsrt_model_state(m), NULL, path, err,
	                             errn);
}
