/* data.c: loads IDX image/label files (gzip or plain) into an LnsrtDataset, and finds them.
 *
 * An IDX file is a 4-byte big-endian magic (0x00 0x00 type rank), rank big-endian uint32
 * dimensions, then the elements. We read uint8 images [n, rows, cols] and uint8 labels [n]
 * through zlib's gzread, which passes plain files through unchanged, so one path handles
 * both. Every byte count is checked against what the header announces: a short file, a
 * corrupt or cut gzip stream (gzread also checks the gzip CRC when it reaches the end, which
 * is why we always try to read past the data), trailing data, a wrong magic and
 * absurd dimensions are all user errors whose message starts with the file's path. Pixels
 * are converted to floats in [0, 1] chunk by chunk, so no second copy of the images exists.
 */
#include "runtime/lnsrt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

enum {
	IDX_UINT8 = 0x08,
	MAX_EXAMPLES = 100000000, /* 10^8 */
	MAX_PIXELS = 1 << 24,     /* rows * cols */
	CHUNK = 1 << 16,          /* bytes per gzread when converting pixels */
};

/* One open IDX file and how far into it we are, for truncation messages. */
typedef struct Idx {
	gzFile f;
	const char *path;
	int64_t pos;   /* bytes consumed */
	int64_t total; /* bytes the file should hold as far as we know (header, then all) */
} Idx;

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int idx_open(Idx *r, const char *path, char *err, size_t errn)
{
	memset(r, 0, sizeof *r);
	r->path = path;
	errno = 0;
	r->f = gzopen(path, "rb");
	if (!r->f)
		return lnsrt_fmt_err(err, errn, "%s: cannot open: %s", path,
		                     errno ? strerror(errno) : "out of memory");
	gzbuffer(r->f, 1 << 17);
	return 0;
}

static void idx_close(Idx *r)
{
	if (r->f)
		gzclose(r->f);
	r->f = NULL;
}

static int truncated(Idx *r, const char *why, char *err, size_t errn)
{
	if (r->pos == 0)
		return lnsrt_fmt_err(err, errn, "%s: empty file%s", r->path, why);
	return lnsrt_fmt_err(err, errn, "%s: truncated after %lld of %lld bytes%s", r->path,
	                     (long long)r->pos, (long long)r->total, why);
}

/* gzread returned -1: a system error, a corrupt stream or a stream cut short. */
static int read_error(Idx *r, char *err, size_t errn)
{
	int code = 0;
	const char *msg = gzerror(r->f, &code);
	if (code == Z_ERRNO)
		return lnsrt_fmt_err(err, errn, "%s: cannot read: %s", r->path, strerror(errno));
	if (code == Z_BUF_ERROR)
		return truncated(r, " (the gzip stream ends early)", err, errn);
	if (!msg)
		msg = "unknown zlib error";
	/* zlib prefixes its message with the path we already print */
	size_t plen = strlen(r->path);
	if (strncmp(msg, r->path, plen) == 0 && strncmp(msg + plen, ": ", 2) == 0)
		msg += plen + 2;
	return lnsrt_fmt_err(err, errn, "%s: corrupt gzip data: %s", r->path, msg);
}

/* Reads exactly n bytes or fails naming the file and how much was there. */
static int idx_read(Idx *r, void *buf, size_t n, char *err, size_t errn)
{
	unsigned char *p = buf;
	while (n > 0) {
		unsigned ask = n > (1u << 30) ? 1u << 30 : (unsigned)n;
		int got = gzread(r->f, p, ask);
		if (got < 0)
			return read_error(r, err, errn);
		if (got == 0) {
			int code = 0;
			gzerror(r->f, &code);
			if (code != Z_OK)
				return read_error(r, err, errn);
			return truncated(r, "", err, errn);
		}
		p += got;
		n -= (size_t)got;
		r->pos += got;
	}
	return 0;
}

/* After the announced bytes the file must end; reading past them also makes zlib check the
 * gzip trailer (CRC and length). */
static int idx_expect_end(Idx *r, char *err, size_t errn)
{
	unsigned char extra[64];
	int got = gzread(r->f, extra, sizeof extra);
	if (got < 0)
		return read_error(r, err, errn);
	if (got > 0)
		return lnsrt_fmt_err(err, errn,
		                     "%s: has data after the %lld bytes its header announces",
		                     r->path, (long long)r->total);
	return 0;
}

/* Reads the magic and the rank dimensions of a uint8 IDX file of rank `rank`. */
static int idx_header(Idx *r, int rank, const char *what, uint32_t *dims, char *err, size_t errn)
{
	unsigned char h[4 + 4 * 3];
	uint32_t want = (uint32_t)IDX_UINT8 << 8 | (uint32_t)rank;
	r->total = 4 + 4 * rank;
	if (idx_read(r, h, 4, err, errn))
		return -1;
	uint32_t magic = be32(h);
	if (magic != want) {
		if (h[0] || h[1])
			return lnsrt_fmt_err(err, errn,
			                     "%s: not an IDX file (magic 0x%08x, expected 0x%08x "
			                     "for %s)",
			                     r->path, magic, want, what);
		if (h[2] != IDX_UINT8)
			return lnsrt_fmt_err(err, errn,
			                     "%s: IDX element type 0x%02x is not uint8 (magic "
			                     "0x%08x, expected 0x%08x for %s)",
			                     r->path, h[2], magic, want, what);
		return lnsrt_fmt_err(err, errn,
		                     "%s: IDX file of rank %d (magic 0x%08x), expected rank %d "
		                     "(0x%08x) for %s%s",
		                     r->path, h[3], magic, rank, want, what,
		                     h[3] == 1   ? "; is this a label file?"
		                     : h[3] == 3 ? "; is this an image file?"
		                                 : "");
	}
	if (idx_read(r, h + 4, 4 * (size_t)rank, err, errn))
		return -1;
	for (int i = 0; i < rank; i++)
		dims[i] = be32(h + 4 + 4 * i);
	if (dims[0] == 0 || dims[0] > MAX_EXAMPLES)
		return lnsrt_fmt_err(err, errn, "%s: header claims %lu %s (expected 1 to %d)",
		                     r->path, (unsigned long)dims[0], what, MAX_EXAMPLES);
	return 0;
}

static int load_images(const char *path, LnsrtDataset *d, char *err, size_t errn)
{
	Idx r;
	uint32_t dims[3];
	unsigned char *buf = NULL;
	if (idx_open(&r, path, err, errn))
		return -1;
	if (idx_header(&r, 3, "images", dims, err, errn))
		goto fail;
	uint64_t pixels = (uint64_t)dims[1] * dims[2];
	if (dims[1] == 0 || dims[2] == 0 || pixels > MAX_PIXELS) {
		lnsrt_fmt_err(err, errn,
		              "%s: header claims images of %lux%lu pixels (expected 1 to %d "
		              "pixels each)",
		              path, (unsigned long)dims[1], (unsigned long)dims[2], MAX_PIXELS);
		goto fail;
	}
	uint64_t count = (uint64_t)dims[0] * pixels; /* <= 10^8 * 2^24 < 2^51 */
	r.total += (int64_t)count;
	d->n = dims[0];
	d->rows = (int)dims[1];
	d->cols = (int)dims[2];
	d->x = malloc(count * sizeof(float));
	buf = malloc(CHUNK);
	if (!d->x || !buf) {
		lnsrt_fmt_err(err, errn, "%s: out of memory for %llu images of %lux%lu", path,
		              (unsigned long long)dims[0], (unsigned long)dims[1],
		              (unsigned long)dims[2]);
		goto fail;
	}
	for (uint64_t done = 0; done < count;) {
		size_t n = count - done < CHUNK ? (size_t)(count - done) : CHUNK;
		if (idx_read(&r, buf, n, err, errn))
			goto fail;
		for (size_t i = 0; i < n; i++)
			d->x[done + i] = (float)buf[i] / 255.0f;
		done += n;
	}
	if (idx_expect_end(&r, err, errn))
		goto fail;
	free(buf);
	idx_close(&r);
	return 0;
fail:
	free(buf);
	idx_close(&r);
	return -1;
}

static int load_labels(const char *path, LnsrtDataset *d, char *err, size_t errn)
{
	Idx r;
	uint32_t n;
	unsigned char *buf = NULL;
	if (idx_open(&r, path, err, errn))
		return -1;
	if (idx_header(&r, 1, "labels", &n, err, errn))
		goto fail;
	r.total += n;
	buf = malloc(n);
	d->y = malloc((size_t)n * sizeof(int64_t));
	if (!buf || !d->y) {
		lnsrt_fmt_err(err, errn, "%s: out of memory for %lu labels", path,
		              (unsigned long)n);
		goto fail;
	}
	if (idx_read(&r, buf, n, err, errn) || idx_expect_end(&r, err, errn))
		goto fail;
	int maxlabel = 0;
	for (uint32_t i = 0; i < n; i++) {
		d->y[i] = buf[i];
		if (buf[i] > maxlabel)
			maxlabel = buf[i];
	}
	d->nclasses = maxlabel + 1;
	d->n = n;
	free(buf);
	idx_close(&r);
	return 0;
fail:
	free(buf);
	idx_close(&r);
	return -1;
}

void lnsrt_dataset_free(LnsrtDataset *d)
{
	if (!d)
		return;
	free(d->x);
	free(d->y);
	memset(d, 0, sizeof *d);
}

int lnsrt_idx_load(const char *images_gz, const char *labels_gz, LnsrtDataset *out, char *err,
                   size_t errn)
{
	LnsrtDataset img = {0}, lab = {0};
	memset(out, 0, sizeof *out);
	if (load_images(images_gz, &img, err, errn) || load_labels(labels_gz, &lab, err, errn))
		goto fail;
	if (img.n != lab.n) {
		lnsrt_fmt_err(err, errn, "%s has %lld images but %s has %lld labels", images_gz,
		              (long long)img.n, labels_gz, (long long)lab.n);
		goto fail;
	}
	*out = img;
	out->y = lab.y;
	out->nclasses = lab.nclasses;
	free(lab.x);
	return 0;
fail:
	lnsrt_dataset_free(&img);
	lnsrt_dataset_free(&lab);
	return -1;
}

static int is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Finds dir/base.gz or dir/base (in that order) and writes the path into out[outn]. */
static int find_idx(const char *dir, const char *base, int debian, char *out, size_t outn,
                    char *err, size_t errn)
{
	static const char *const suffix[] = {".gz", ""};
	for (int i = 0; i < 2; i++) {
		int len = snprintf(out, outn, "%s/%s%s", dir, base, suffix[i]);
		if (len < 0 || (size_t)len >= outn)
			return lnsrt_fmt_err(err, errn, "%s: path too long", dir);
		if (is_file(out))
			return 0;
	}
	return lnsrt_fmt_err(err, errn, "%s: missing %s(.gz)%s", dir, base,
	                     debian ? "; reinstall the Debian package dataset-fashion-mnist "
	                              "(or run scripts/setup.sh)"
	                            : "");
}

/* Loads dir/<prefix>-images-idx3-ubyte(.gz) and dir/<prefix>-labels-idx1-ubyte(.gz). */
static int load_split(const char *dir, const char *prefix, int debian, LnsrtDataset *d, char *err,
                      size_t errn)
{
	char base[64], images[4096], labels[4096];
	snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
	if (find_idx(dir, base, debian, images, sizeof images, err, errn))
		return -1;
	snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
	if (find_idx(dir, base, debian, labels, sizeof labels, err, errn))
		return -1;
	return lnsrt_idx_load(images, labels, d, err, errn);
}

int lnsrt_data_open(const char *spec, LnsrtDataset *train, LnsrtDataset *test, char *err,
                    size_t errn)
{
	int debian = !spec || strcmp(spec, "fashion-mnist") == 0;
	const char *dir = debian ? LNSRT_FASHION_MNIST_DIR : spec;
	memset(train, 0, sizeof *train);
	memset(test, 0, sizeof *test);
	if (!is_dir(dir)) {
		if (debian)
			return lnsrt_fmt_err(err, errn,
			                     "fashion-mnist: %s not found; install the Debian "
			                     "package dataset-fashion-mnist (or run "
			                     "scripts/setup.sh)",
			                     dir);
		return lnsrt_fmt_err(err, errn,
		                     "%s: not a directory; expected 'fashion-mnist' or a "
		                     "directory holding train-images-idx3-ubyte(.gz), "
		                     "train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz) "
		                     "and t10k-labels-idx1-ubyte(.gz)",
		                     dir);
	}
	if (load_split(dir, "train", debian, train, err, errn) ||
	    load_split(dir, "t10k", debian, test, err, errn))
		goto fail;
	if (test->rows != train->rows || test->cols != train->cols) {
		lnsrt_fmt_err(err, errn, "%s: test images are %dx%d but training images are %dx%d",
		              dir, test->rows, test->cols, train->rows, train->cols);
		goto fail;
	}
	if (test->nclasses > train->nclasses)
		train->nclasses = test->nclasses;
	test->nclasses = train->nclasses;
	return 0;
fail:
	lnsrt_dataset_free(train);
	lnsrt_dataset_free(test);
	return -1;
}
