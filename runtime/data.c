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
 *
 * Two more formats sit behind lnsrt_data_open, chosen by the files a directory holds. CSV
 * (train.csv and optionally test.csv, or one .csv file; gzip allowed): one example per line,
 * the label first, an optional header line (a first line whose first field is not a number);
 * a square number of pixels is an image, and pixels are bytes scaled by 1/255 unless no value
 * of either split exceeds 1. NPY (x_train, y_train, x_test, y_test .npy, format 1 to 3): the
 * header dict is parsed and checked (dtype, C order, shape), images float32 (as they are) or
 * uint8 (scaled by 1/255), labels int64, int32 or uint8, and the data size must be exactly
 * what the shape announces. Errors name the file, and for CSV the line.
 */
#include "runtime/lnsrt.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
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

/* ---- CSV: label,pixel0,pixel1,... one example per line ---- */

/* Pixel values are kept as read until both splits are loaded (see scale_pixels). */
enum { MAX_LABEL = 65535, MAX_LINE_SHOWN = 40 };

/* Reads a whole (optionally gzip-compressed) file into a NUL-terminated buffer. */
static int read_text_file(const char *path, char **out, size_t *len, char *err, size_t errn)
{
	Idx r;
	size_t cap = 1 << 16, n = 0;
	char *buf = NULL;
	*out = NULL;
	if (idx_open(&r, path, err, errn))
		return -1;
	for (;;) {
		if (n + CHUNK + 1 > cap || !buf) {
			while (n + CHUNK + 1 > cap)
				cap *= 2;
			char *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				idx_close(&r);
				return lnsrt_fmt_err(err, errn, "%s: out of memory", path);
			}
			buf = nb;
		}
		int got = gzread(r.f, buf + n, CHUNK);
		if (got < 0) {
			int rc = read_error(&r, err, errn);
			free(buf);
			idx_close(&r);
			return rc;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		r.pos += got;
	}
	idx_close(&r);
	buf[n] = 0;
	*out = buf;
	*len = n;
	return 0;
}

/* One field (up to ',' or the end of the line) as a double; the whole field must be a
 * number, spaces around it aside. */
static int csv_number(const char *s, const char *end, double *v)
{
	char tmp[64];
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (s == end || end - s >= (ptrdiff_t)sizeof tmp)
		return -1;
	memcpy(tmp, s, (size_t)(end - s));
	tmp[end - s] = 0;
	char *e;
	errno = 0;
	*v = strtod(tmp, &e);
	return *e || errno == ERANGE || !isfinite(*v) ? -1 : 0;
}

/* Counts the fields of the line [s, end). */
static int64_t csv_fields(const char *s, const char *end)
{
	int64_t n = 1;
	for (; s < end; s++)
		n += *s == ',';
	return n;
}

static void line_end(const char *s, const char **end, const char **next)
{
	const char *e = strchr(s, '\n');
	*next = e ? e + 1 : s + strlen(s);
	if (!e)
		e = *next;
	if (e > s && e[-1] == '\r')
		e--;
	*end = e;
}

static int blank(const char *s, const char *end)
{
	for (; s < end; s++)
		if (*s != ' ' && *s != '\t')
			return 0;
	return 1;
}

static int shown(const char *s, const char *end)
{
	return end - s > MAX_LINE_SHOWN ? MAX_LINE_SHOWN : (int)(end - s);
}

/* Parses one data line into x[0..cols) and *y. */
static int csv_row(const char *path, int64_t lineno, const char *s, const char *end, int64_t cols,
                   float *x, int64_t *y, char *err, size_t errn)
{
	int64_t nf = csv_fields(s, end);
	if (nf != cols + 1)
		return lnsrt_fmt_err(err, errn,
		                     "%s:%lld: %lld fields, expected %lld (a label and "
		                     "%lld pixels, as on the first line)",
		                     path, (long long)lineno, (long long)nf, (long long)cols + 1,
		                     (long long)cols);
	for (int64_t f = 0; f <= cols; f++) {
		const char *c = memchr(s, ',', (size_t)(end - s));
		const char *fe = c ? c : end;
		double v;
		if (csv_number(s, fe, &v))
			return lnsrt_fmt_err(err, errn,
			                     "%s:%lld: field %lld ('%.*s') is not a number", path,
			                     (long long)lineno, (long long)f + 1, shown(s, fe), s);
		if (f == 0) {
			if (v < 0 || v > MAX_LABEL || v != (double)(int64_t)v)
				return lnsrt_fmt_err(err, errn,
				                     "%s:%lld: label '%.*s' is not a class "
				                     "index (an integer from 0 to %d)",
				                     path, (long long)lineno, shown(s, fe), s,
				                     MAX_LABEL);
			*y = (int64_t)v;
		} else {
			x[f - 1] = (float)v;
		}
		s = fe + 1;
	}
	return 0;
}

/* A square number of pixels is an image; anything else one row of features. */
static void set_shape(LnsrtDataset *d, int64_t pixels)
{
	int64_t side = 0;
	while ((side + 1) * (side + 1) <= pixels)
		side++;
	d->rows = side * side == pixels ? (int)side : 1;
	d->cols = (int)(pixels / d->rows);
}

static int csv_load(const char *path, LnsrtDataset *d, char *err, size_t errn)
{
	char *text;
	size_t len;
	memset(d, 0, sizeof *d);
	if (read_text_file(path, &text, &len, err, errn))
		return -1;
	int64_t lines = 1, lineno = 0, cols = -1, cap = 0;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	const char *s = text, *end, *next;
	int rc = 0;
	for (; *s && !rc; s = next) {
		line_end(s, &end, &next);
		lineno++;
		if (blank(s, end))
			continue;
		if (cols < 0) {
			/* The first line: a header when its first field is not a number. */
			const char *c = memchr(s, ',', (size_t)(end - s));
			double v;
			cols = csv_fields(s, end) - 1;
			if (cols < 1 || cols > MAX_PIXELS) {
				rc = lnsrt_fmt_err(err, errn,
				                   "%s:%lld: %lld fields; expected a label and "
				                   "1 to %d pixels",
				                   path, (long long)lineno, (long long)cols + 1,
				                   MAX_PIXELS);
				break;
			}
			cap = lines;
			d->x = malloc((size_t)(cap * cols) * sizeof *d->x);
			d->y = malloc((size_t)cap * sizeof *d->y);
			if (!d->x || !d->y) {
				rc = lnsrt_fmt_err(err, errn, "%s: out of memory for %lld examples",
				                   path, (long long)cap);
				break;
			}
			if (csv_number(s, c ? c : end, &v))
				continue;
		}
		if (d->n >= MAX_EXAMPLES) {
			rc = lnsrt_fmt_err(err, errn, "%s: more than %d examples", path,
			                   MAX_EXAMPLES);
			break;
		}
		rc =
		    csv_row(path, lineno, s, end, cols, d->x + d->n * cols, d->y + d->n, err, errn);
		d->n += !rc;
	}
	free(text);
	if (!rc && d->n == 0)
		rc = lnsrt_fmt_err(err, errn, "%s: no examples (an empty file, or a header only)",
		                   path);
	if (rc) {
		lnsrt_dataset_free(d);
		return -1;
	}
	set_shape(d, cols);
	for (int64_t i = 0; i < d->n; i++)
		d->nclasses = d->y[i] + 1 > d->nclasses ? (int)d->y[i] + 1 : d->nclasses;
	return 0;
}

/* CSV pixels are bytes 0..255 (scaled by 1/255) unless no value of either split exceeds 1:
 * then they are taken as they are. Decided over both splits so that they agree. */
static int scale_pixels(const char *what, LnsrtDataset *a, LnsrtDataset *b, char *err, size_t errn)
{
	float lo = 0, hi = 0;
	LnsrtDataset *d[2] = {a, b};
	for (int k = 0; k < 2; k++)
		for (int64_t i = 0; i < d[k]->n * d[k]->rows * d[k]->cols; i++) {
			lo = d[k]->x[i] < lo ? d[k]->x[i] : lo;
			hi = d[k]->x[i] > hi ? d[k]->x[i] : hi;
		}
	if (hi <= 1.0f)
		return 0;
	if (lo < 0 || hi > 255.0f)
		return lnsrt_fmt_err(
		    err, errn,
		    "%s: pixel values range from %g to %g; expected "
		    "bytes 0 to 255 (scaled by 1/255), or values no greater than 1 "
		    "(taken as they are)",
		    what, (double)lo, (double)hi);
	for (int k = 0; k < 2; k++)
		for (int64_t i = 0; i < d[k]->n * d[k]->rows * d[k]->cols; i++)
			d[k]->x[i] /= 255.0f;
	return 0;
}

/* ---- NPY: numpy's .npy files (format versions 1 to 3) ---- */

typedef struct Npy {
	const char *path;
	char kind; /* 'f' float, 'i' signed, 'u' unsigned */
	int size;  /* bytes per element */
	int rank;
	int64_t dims[LNSRT_MAX_RANK];
	int64_t count; /* elements */
	unsigned char *file;
	const unsigned char *data;
} Npy;

static const char *skip_ws(const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
		s++;
	return s;
}

/* A quoted Python string (no escapes in the keys and values numpy writes). */
static const char *py_str(const char *s, const char *end, char *out, size_t outn)
{
	if (s >= end || (*s != '\'' && *s != '"'))
		return NULL;
	char q = *s++;
	const char *e = memchr(s, q, (size_t)(end - s));
	if (!e || (size_t)(e - s) >= outn)
		return NULL;
	memcpy(out, s, (size_t)(e - s));
	out[e - s] = 0;
	return e + 1;
}

static const char *py_shape(const char *s, const char *end, Npy *a)
{
	if (s >= end || *s++ != '(')
		return NULL;
	a->rank = 0;
	for (;;) {
		s = skip_ws(s, end);
		if (s < end && *s == ')')
			return s + 1;
		if (a->rank == LNSRT_MAX_RANK || s >= end || *s < '0' || *s > '9')
			return NULL;
		int64_t v = 0;
		while (s < end && *s >= '0' && *s <= '9' && v < ((int64_t)1 << 40))
			v = v * 10 + (*s++ - '0');
		if (s < end && *s == 'L') /* Python 2's long suffix */
			s++;
		a->dims[a->rank++] = v;
		s = skip_ws(s, end);
		if (s < end && *s == ',')
			s++;
		else if (s >= end || *s != ')')
			return NULL;
	}
}

/* numpy's dtype string: byte order, kind, size ("<f4", "|u1", "<i8"). */
static int npy_descr(Npy *a, const char *d, char *err, size_t errn)
{
	size_t n = strlen(d);
	if (n < 3 || !strchr("<>|=", d[0]) || !strchr("fiu", d[1]) ||
	    strspn(d + 2, "0123456789") != n - 2)
		return lnsrt_fmt_err(err, errn,
		                     "%s: unsupported dtype '%s' (expected float32 or "
		                     "uint8 images, int64, int32 or uint8 labels)",
		                     a->path, d);
	a->kind = d[1];
	a->size = atoi(d + 2);
	if (d[0] == '>' && a->size > 1)
		return lnsrt_fmt_err(err, errn, "%s: big-endian data ('%s') is not supported",
		                     a->path, d);
	return 0;
}

/* Parses the header dict: {'descr': '<f4', 'fortran_order': False, 'shape': (n, ...), } */
static int npy_dict(Npy *a, const char *s, const char *end, char *err, size_t errn)
{
	char key[32], val[32];
	int have = 0, fortran = 0;
	s = skip_ws(s, end);
	if (s >= end || *s++ != '{')
		goto bad;
	for (;;) {
		s = skip_ws(s, end);
		if (s < end && *s == '}') {
			s++;
			break;
		}
		if (!(s = py_str(s, end, key, sizeof key)))
			goto bad;
		s = skip_ws(s, end);
		if (s >= end || *s++ != ':')
			goto bad;
		s = skip_ws(s, end);
		if (!strcmp(key, "descr")) {
			if (!(s = py_str(s, end, val, sizeof val)) || npy_descr(a, val, err, errn))
				return s ? -1
				         : lnsrt_fmt_err(err, errn, "%s: bad 'descr' in the header",
				                         a->path);
			have |= 1;
		} else if (!strcmp(key, "fortran_order")) {
			if (end - s >= 4 && !memcmp(s, "True", 4))
				fortran = 1, s += 4;
			else if (end - s >= 5 && !memcmp(s, "False", 5))
				s += 5;
			else
				goto bad;
			have |= 2;
		} else if (!strcmp(key, "shape")) {
			if (!(s = py_shape(s, end, a)))
				goto bad;
			have |= 4;
		} else {
			return lnsrt_fmt_err(err, errn, "%s: unexpected key '%s' in the header",
			                     a->path, key);
		}
		s = skip_ws(s, end);
		if (s < end && *s == ',')
			s++;
		else if (s >= end || *s != '}')
			goto bad;
	}
	if (skip_ws(s, end) != end)
		goto bad;
	if (have != 7)
		return lnsrt_fmt_err(err, errn, "%s: the header lacks %s", a->path,
		                     !(have & 1)   ? "'descr'"
		                     : !(have & 2) ? "'fortran_order'"
		                                   : "'shape'");
	if (fortran)
		return lnsrt_fmt_err(err, errn,
		                     "%s: Fortran-order arrays are not supported (save "
		                     "numpy.ascontiguousarray(a))",
		                     a->path);
	return 0;
bad:
	return lnsrt_fmt_err(err, errn, "%s: malformed .npy header", a->path);
}

static int npy_load(const char *path, Npy *a, char *err, size_t errn)
{
	char *buf;
	size_t len;
	memset(a, 0, sizeof *a);
	a->path = path;
	if (read_text_file(path, &buf, &len, err, errn))
		return -1;
	a->file = (unsigned char *)buf;
	const unsigned char *p = a->file;
	if (len < 10 || memcmp(p, "\x93NUMPY", 6) != 0)
		return lnsrt_fmt_err(err, errn, "%s: not a .npy file (bad magic)", path);
	int major = p[6];
	size_t hoff = major == 1 ? 10 : 12;
	if (major < 1 || major > 3 || len < hoff)
		return lnsrt_fmt_err(err, errn, "%s: unsupported .npy format version %d.%d", path,
		                     major, p[7]);
	size_t hlen = major == 1 ? (size_t)(p[8] | p[9] << 8)
	                         : (size_t)p[8] | (size_t)p[9] << 8 | (size_t)p[10] << 16 |
	                               (size_t)p[11] << 24;
	if (hlen > len - hoff)
		return lnsrt_fmt_err(err, errn, "%s: truncated in its header", path);
	if (npy_dict(a, (const char *)p + hoff, (const char *)p + hoff + hlen, err, errn))
		return -1;
	a->count = 1;
	for (int i = 0; i < a->rank; i++) {
		if (a->dims[i] > MAX_EXAMPLES || a->count * a->dims[i] > ((int64_t)1 << 36))
			return lnsrt_fmt_err(err, errn, "%s: shape too large", path);
		a->count *= a->dims[i];
	}
	int64_t want = a->count * a->size, have = (int64_t)(len - hoff - hlen);
	if (have < want)
		return lnsrt_fmt_err(err, errn, "%s: truncated: %lld of %lld data bytes", path,
		                     (long long)have, (long long)want);
	if (have > want)
		return lnsrt_fmt_err(err, errn, "%s: %lld bytes of trailing data after the array",
		                     path, (long long)(have - want));
	a->data = p + hoff + hlen;
	return 0;
}

static void shape_str(const Npy *a, char *buf, size_t n)
{
	size_t at = (size_t)snprintf(buf, n, "(");
	for (int i = 0; i < a->rank && at < n; i++)
		at += (size_t)snprintf(buf + at, n - at, "%s%lld", i ? ", " : "",
		                       (long long)a->dims[i]);
	if (at < n)
		snprintf(buf + at, n - at, ")");
}

/* Images: (n, features...) float32 as they are, uint8 scaled by 1/255. */
static int npy_images(const Npy *a, LnsrtDataset *d, char *err, size_t errn)
{
	char sh[128];
	shape_str(a, sh, sizeof sh);
	if (!((a->kind == 'f' && a->size == 4) || (a->kind == 'u' && a->size == 1)))
		return lnsrt_fmt_err(err, errn, "%s: images must be float32 or uint8, not %c%d",
		                     a->path, a->kind, a->size);
	if (a->rank < 2 || a->dims[0] < 1 || a->count / a->dims[0] < 1 ||
	    a->count / a->dims[0] > MAX_PIXELS)
		return lnsrt_fmt_err(err, errn,
		                     "%s: shape %s; expected (examples, features...) "
		                     "with 1 to %d features",
		                     a->path, sh, MAX_PIXELS);
	int64_t per = a->count / a->dims[0];
	d->n = a->dims[0];
	d->cols = (int)a->dims[a->rank - 1];
	d->rows = (int)(per / d->cols);
	d->x = malloc((size_t)a->count * sizeof *d->x);
	if (!d->x)
		return lnsrt_fmt_err(err, errn, "%s: out of memory", a->path);
	for (int64_t i = 0; i < a->count; i++) {
		if (a->kind == 'u') {
			d->x[i] = (float)a->data[i] / 255.0f;
			continue;
		}
		memcpy(&d->x[i], a->data + 4 * i, 4);
		if (!isfinite(d->x[i]))
			return lnsrt_fmt_err(err, errn, "%s: element %lld is NaN or infinite",
			                     a->path, (long long)i);
	}
	return 0;
}

/* Labels: (n,) or (n, 1) of int64, int32 or uint8, each a class index. */
static int npy_labels(const Npy *a, LnsrtDataset *d, char *err, size_t errn)
{
	char sh[128];
	shape_str(a, sh, sizeof sh);
	if (!((a->kind == 'i' && (a->size == 8 || a->size == 4)) ||
	      (a->kind == 'u' && a->size == 1)))
		return lnsrt_fmt_err(err, errn,
		                     "%s: labels must be int64, int32 or uint8, not %c%d", a->path,
		                     a->kind, a->size);
	if (!(a->rank == 1 || (a->rank == 2 && a->dims[1] == 1)) || a->dims[0] < 1)
		return lnsrt_fmt_err(err, errn, "%s: shape %s; expected (examples,) labels",
		                     a->path, sh);
	d->y = malloc((size_t)a->dims[0] * sizeof *d->y);
	if (!d->y)
		return lnsrt_fmt_err(err, errn, "%s: out of memory", a->path);
	for (int64_t i = 0; i < a->dims[0]; i++) {
		int64_t v;
		if (a->size == 8) {
			memcpy(&v, a->data + 8 * i, 8);
		} else if (a->size == 4) {
			int32_t w;
			memcpy(&w, a->data + 4 * i, 4);
			v = w;
		} else {
			v = a->data[i];
		}
		if (v < 0 || v > MAX_LABEL)
			return lnsrt_fmt_err(err, errn,
			                     "%s: label %lld of example %lld is not a class "
			                     "index (0 to %d)",
			                     a->path, (long long)v, (long long)i, MAX_LABEL);
		d->y[i] = v;
		d->nclasses = v + 1 > d->nclasses ? (int)v + 1 : d->nclasses;
	}
	return 0;
}

/* dir/x_<split>.npy and dir/y_<split>.npy. */
static int npy_split(const char *dir, const char *split, LnsrtDataset *d, char *err, size_t errn)
{
	char xp[4096], yp[4096];
	Npy x, y;
	LnsrtDataset lab = {0};
	snprintf(xp, sizeof xp, "%s/x_%s.npy", dir, split);
	snprintf(yp, sizeof yp, "%s/y_%s.npy", dir, split);
	memset(d, 0, sizeof *d);
	int rc = npy_load(xp, &x, err, errn) || npy_images(&x, d, err, errn);
	free(x.file);
	if (!rc) {
		rc = npy_load(yp, &y, err, errn) || npy_labels(&y, &lab, err, errn);
		free(y.file);
	}
	if (!rc && y.dims[0] != d->n)
		rc = lnsrt_fmt_err(err, errn, "%s has %lld examples but %s has %lld labels", xp,
		                   (long long)d->n, yp, (long long)y.dims[0]);
	d->y = lab.y;
	d->nclasses = lab.nclasses;
	if (rc)
		lnsrt_dataset_free(d);
	return rc ? -1 : 0;
}

/* ---- finding a dataset ---- */

static int exists_in(const char *dir, const char *name)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	return is_file(p);
}

/* dir/<base> or dir/<base>.gz, whichever exists (gzip preferred), into out. */
static int pick_gz(const char *dir, const char *base, char *out, size_t n)
{
	snprintf(out, n, "%s/%s.gz", dir, base);
	if (is_file(out))
		return 1;
	snprintf(out, n, "%s/%s", dir, base);
	return is_file(out);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

static int open_csv(const char *dir, LnsrtDataset *train, LnsrtDataset *test, char *err,
                    size_t errn)
{
	char tr[4096], te[4096];
	if (!pick_gz(dir, "train.csv", tr, sizeof tr))
		return lnsrt_fmt_err(err, errn, "%s: missing train.csv", dir);
	if (csv_load(tr, train, err, errn))
		return -1;
	if (pick_gz(dir, "test.csv", te, sizeof te) && csv_load(te, test, err, errn))
		return -1;
	return scale_pixels(dir, train, test, err, errn);
}

static int open_npy(const char *dir, LnsrtDataset *train, LnsrtDataset *test, char *err,
                    size_t errn)
{
	static const char *const need[] = {"y_train.npy", "x_test.npy", "y_test.npy"};
	for (int i = 0; i < 3; i++)
		if (!exists_in(dir, need[i]))
			return lnsrt_fmt_err(err, errn,
			                     "%s: has x_train.npy but no %s (an NPY "
			                     "dataset is x_train, y_train, x_test and y_test.npy)",
			                     dir, need[i]);
	return npy_split(dir, "train", train, err, errn) || npy_split(dir, "test", test, err, errn)
	           ? -1
	           : 0;
}

static int open_idx(const char *dir, int debian, LnsrtDataset *train, LnsrtDataset *test, char *err,
                    size_t errn)
{
	return load_split(dir, "train", debian, train, err, errn) ||
	               load_split(dir, "t10k", debian, test, err, errn)
	           ? -1
	           : 0;
}

/* Which format a directory holds, by the files present. */
static int open_dir(const char *dir, int debian, LnsrtDataset *train, LnsrtDataset *test, char *err,
                    size_t errn)
{
	char p[4096];
	if (debian || pick_gz(dir, "train-images-idx3-ubyte", p, sizeof p) ||
	    pick_gz(dir, "t10k-images-idx3-ubyte", p, sizeof p))
		return open_idx(dir, debian, train, test, err, errn);
	if (exists_in(dir, "x_train.npy"))
		return open_npy(dir, train, test, err, errn);
	if (pick_gz(dir, "train.csv", p, sizeof p))
		return open_csv(dir, train, test, err, errn);
	return lnsrt_fmt_err(err, errn,
	                     "%s: no dataset found; expected the four IDX files of "
	                     "fashion-mnist (train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte"
	                     "(.gz), t10k-images-idx3-ubyte(.gz), t10k-labels-idx1-ubyte(.gz)), "
	                     "x_train.npy, y_train.npy, x_test.npy and y_test.npy, or train.csv "
	                     "(and test.csv)",
	                     dir);
}

int lnsrt_data_open(const char *spec, LnsrtDataset *train, LnsrtDataset *test, char *err,
                    size_t errn)
{
	int debian = !spec || strcmp(spec, "fashion-mnist") == 0;
	const char *dir = debian ? LNSRT_FASHION_MNIST_DIR : spec;
	memset(train, 0, sizeof *train);
	memset(test, 0, sizeof *test);
	if (!debian && is_file(spec) && (ends_with(spec, ".csv") || ends_with(spec, ".csv.gz"))) {
		/* one CSV file: a training set without a test split */
		if (csv_load(spec, train, err, errn) || scale_pixels(spec, train, test, err, errn))
			goto fail;
		return 0;
	}
	if (!is_dir(dir)) {
		if (debian)
			return lnsrt_fmt_err(err, errn,
			                     "fashion-mnist: %s not found; install the Debian "
			                     "package dataset-fashion-mnist (or run "
			                     "scripts/setup.sh)",
			                     dir);
		return lnsrt_fmt_err(err, errn,
		                     "%s: not a directory or a .csv file; expected 'fashion-mnist' "
		                     "or a directory holding its IDX files "
		                     "(train-images-idx3-ubyte(.gz), ...), NPY files (x_train.npy, "
		                     "...) or train.csv and test.csv",
		                     dir);
	}
	if (open_dir(dir, debian, train, test, err, errn))
		goto fail;
	if (test->n > 0 && (test->rows != train->rows || test->cols != train->cols)) {
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
