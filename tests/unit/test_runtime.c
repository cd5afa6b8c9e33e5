/* test_runtime.c: unit tests of runtime/: the shuffle generator, IDX loading, the driver.
 *
 * IDX files are written by the test (gzip and plain) into a mkdtemp directory, then loaded,
 * and every malformed variant must fail with a message naming the file. The driver is
 * exercised with trainers written here: a multinomial logistic regression with plain SGD on a
 * linearly separable synthetic problem (loss falls, accuracy passes 0.9, runs repeat
 * exactly for a seed), a probe whose logits are known in closed form (padded evaluation
 * counts exactly n examples), and trainers that fail or return NaN at a given step. CSV and
 * NPY datasets are written by hand too, good and malformed (every check of the loaders). When
 * Debian's Fashion-MNIST is installed it is loaded and checked too.
 */
#include "runtime/lnsrt.h"
#include "testlib.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

enum { ERRN = 1024 };

/* ---- files ---- */

static char tmpdir[] = "/tmp/test_runtime.XXXXXX";

static void path_in(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

static void write_bytes(const char *path, const unsigned char *p, size_t n, int gz)
{
	if (gz) {
		gzFile f = gzopen(path, "wb");
		CHECK(f != NULL);
		if (!f)
			return;
		if (n)
			CHECK(gzwrite(f, p, (unsigned)n) == (int)n);
		CHECK(gzclose(f) == Z_OK);
	} else {
		FILE *f = fopen(path, "wb");
		CHECK(f != NULL);
		if (!f)
			return;
		CHECK(fwrite(p, 1, n, f) == n);
		CHECK(fclose(f) == 0);
	}
}

static long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* An images file: magic, n, rows, cols, then pixel i = (i * 37 + seed) % 256. */
static size_t make_images(unsigned char *buf, uint32_t magic, uint32_t n, uint32_t rows,
                          uint32_t cols, size_t npix, int seed)
{
	put32(buf, magic);
	put32(buf + 4, n);
	put32(buf + 8, rows);
	put32(buf + 12, cols);
	for (size_t i = 0; i < npix; i++)
		buf[16 + i] = (unsigned char)((i * 37 + (size_t)seed) % 256);
	return 16 + npix;
}

static size_t make_labels(unsigned char *buf, uint32_t magic, uint32_t n, const int *labels,
                          size_t nlab)
{
	put32(buf, magic);
	put32(buf + 4, n);
	for (size_t i = 0; i < nlab; i++)
		buf[8 + i] = (unsigned char)labels[i];
	return 8 + nlab;
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

/* Number of entries in dir whose name starts with prefix. */
static int count_prefix(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *e;
	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *s = calloc(1, 1 << 16);
	size_t n = fread(s, 1, (1 << 16) - 1, f);
	s[n] = 0;
	fclose(f);
	return s;
}

/* ---- the generator ---- */

static void test_rng(void)
{
	uint64_t st = 0;
	/* Reference outputs of splitmix64 from state 0 (Vigna's splitmix64.c). */
	CHECK(lnsrt_splitmix64(&st) == 0xe220a8397b1dcdafu);
	CHECK(lnsrt_splitmix64(&st) == 0x6e789e6aa1b965f4u);

	enum { N = 1000 };
	int64_t a[N], b[N];
	int seen[N] = {0};
	lnsrt_epoch_order(a, N, 42, 1);
	for (int i = 0; i < N; i++)
		if (a[i] >= 0 && a[i] < N)
			seen[a[i]]++;
	int perm = 1;
	for (int i = 0; i < N; i++)
		perm &= seen[i] == 1;
	CHECK_MSG(perm, "epoch order is not a permutation");
	lnsrt_epoch_order(b, N, 42, 1);
	CHECK(memcmp(a, b, sizeof a) == 0);
	lnsrt_epoch_order(b, N, 43, 1);
	CHECK(memcmp(a, b, sizeof a) != 0);
	lnsrt_epoch_order(b, N, 42, 2);
	CHECK(memcmp(a, b, sizeof a) != 0);
	int fixed = 0;
	for (int i = 0; i < N; i++)
		fixed += a[i] == i;
	CHECK_MSG(fixed < 10, "%d fixed points: not shuffled", fixed);

	/* Pinned: the order must never change across machines or versions, or seeds stop
	 * reproducing runs. Values computed by this implementation when it was written. */
	int64_t small[10];
	static const int64_t pinned[10] = {5, 0, 8, 3, 7, 9, 2, 6, 4, 1};
	lnsrt_epoch_order(small, 10, 42, 1);
	CHECK(memcmp(small, pinned, sizeof small) == 0);

	/* Bounded draws stay in range and are roughly uniform. */
	LnsrtRng r;
	int hist[10] = {0};
	int inrange = 1;
	lnsrt_rng_seed(&r, 7, 0);
	for (int i = 0; i < 100000; i++) {
		uint64_t v = lnsrt_rng_below(&r, 10);
		inrange &= v < 10;
		if (v < 10)
			hist[v]++;
	}
	CHECK(inrange);
	for (int i = 0; i < 10; i++)
		CHECK_MSG(hist[i] > 9500 && hist[i] < 10500, "bucket %d has %d", i, hist[i]);
	CHECK(lnsrt_rng_below(&r, 1) == 0);
}

/* ---- IDX loading ---- */

static unsigned char img[1 << 16], lab[1 << 12];

static void test_idx_ok(void)
{
	static const int labels[5] = {2, 0, 1, 2, 0};
	char ip[512], lp[512], err[ERRN] = "";
	size_t ni = make_images(img, 0x803, 5, 2, 3, 30, 0);
	size_t nl = make_labels(lab, 0x801, 5, labels, 5);
	for (int gz = 0; gz < 2; gz++) {
		path_in(ip, sizeof ip, gz ? "ok-images.gz" : "ok-images");
		path_in(lp, sizeof lp, gz ? "ok-labels.gz" : "ok-labels");
		write_bytes(ip, img, ni, gz);
		write_bytes(lp, lab, nl, gz);
		LnsrtDataset d;
		int rc = lnsrt_idx_load(ip, lp, &d, err, sizeof err);
		CHECK_MSG(rc == 0, "%s", err);
		if (rc)
			continue;
		CHECK(d.n == 5 && d.rows == 2 && d.cols == 3 && d.nclasses == 3);
		int xok = 1, yok = 1;
		for (int i = 0; i < 30; i++)
			xok &= d.x[i] == (float)img[16 + i] / 255.0f && d.x[i] >= 0 && d.x[i] <= 1;
		for (int i = 0; i < 5; i++)
			yok &= d.y[i] == labels[i];
		CHECK(xok && yok);
		/* pixel 7: 7*37 % 256 = 3; pixel 0 is 0; the scale maps 255 to exactly 1 */
		CHECK(d.x[0] == 0.0f && d.x[7] == 3.0f / 255.0f);
		lnsrt_dataset_free(&d);
		CHECK(d.x == NULL && d.y == NULL && d.n == 0);
		lnsrt_dataset_free(&d);
	}
	/* 255 maps to exactly 1.0 */
	unsigned char one[17];
	put32(one, 0x803);
	put32(one + 4, 1);
	put32(one + 8, 1);
	put32(one + 12, 1);
	one[16] = 255;
	static const int l0[1] = {0};
	path_in(ip, sizeof ip, "one-images");
	path_in(lp, sizeof lp, "one-labels.gz");
	write_bytes(ip, one, 17, 0);
	write_bytes(lp, lab, make_labels(lab, 0x801, 1, l0, 1), 1);
	LnsrtDataset d;
	CHECK(lnsrt_idx_load(ip, lp, &d, err, sizeof err) == 0);
	CHECK(d.n == 1 && d.x && d.x[0] == 1.0f && d.nclasses == 1);
	lnsrt_dataset_free(&d);
}

/* Loads (images, labels) expecting failure with a message naming `blame` and holding `what`. */
static void expect_fail(const char *images, const char *labels, const char *blame, const char *what)
{
	char err[ERRN] = "";
	LnsrtDataset d;
	memset(&d, 0xab, sizeof d);
	int rc = lnsrt_idx_load(images, labels, &d, err, sizeof err);
	CHECK_MSG(rc != 0, "loading %s + %s should fail (%s)", images, labels, what);
	CHECK_MSG(strstr(err, blame) != NULL, "'%s' does not name %s", err, blame);
	CHECK_MSG(strstr(err, what) != NULL, "'%s' does not say '%s'", err, what);
	CHECK(d.x == NULL && d.y == NULL && d.n == 0);
	lnsrt_dataset_free(&d);
}

static void test_idx_bad(void)
{
	static const int labels[4] = {1, 0, 1, 1};
	char good_i[512], good_l[512], p[512], q[512];
	size_t ni = make_images(img, 0x803, 4, 3, 3, 36, 1);
	size_t nl = make_labels(lab, 0x801, 4, labels, 4);
	path_in(good_i, sizeof good_i, "good-images.gz");
	path_in(good_l, sizeof good_l, "good-labels");
	write_bytes(good_i, img, ni, 1);
	write_bytes(good_l, lab, nl, 0);
	{
		char err[ERRN];
		LnsrtDataset d;
		CHECK_MSG(lnsrt_idx_load(good_i, good_l, &d, err, sizeof err) == 0, "%s", err);
		lnsrt_dataset_free(&d);
	}

	/* bad magic, in both files */
	path_in(p, sizeof p, "badmagic-images");
	make_images(img, 0x12345678, 4, 3, 3, 36, 1);
	write_bytes(p, img, ni, 0);
	expect_fail(p, good_l, "badmagic-images", "not an IDX file");
	path_in(p, sizeof p, "badmagic-labels.gz");
	make_labels(lab, 0x00000802, 4, labels, 4);
	write_bytes(p, lab, nl, 1);
	expect_fail(good_i, p, "badmagic-labels.gz", "magic");
	/* element type float (0x0d) instead of uint8 */
	path_in(p, sizeof p, "float-images");
	make_images(img, 0xd03, 4, 3, 3, 36, 1);
	write_bytes(p, img, ni, 0);
	expect_fail(p, good_l, "float-images", "not uint8");
	/* the two files swapped */
	expect_fail(good_l, good_i, "good-labels", "label file");

	/* counts disagree */
	path_in(p, sizeof p, "five-labels");
	static const int five[5] = {0, 1, 0, 1, 0};
	write_bytes(p, lab, make_labels(lab, 0x801, 5, five, 5), 0);
	expect_fail(good_i, p, "five-labels", "4 images");
	expect_fail(good_i, p, "good-images.gz", "5 labels");

	/* truncated: plain data, plain header, gzip stream cut, empty */
	make_images(img, 0x803, 4, 3, 3, 36, 1);
	path_in(p, sizeof p, "short-images");
	write_bytes(p, img, ni - 5, 0);
	expect_fail(p, good_l, "short-images", "truncated after 47 of 52 bytes");
	path_in(p, sizeof p, "header-images");
	write_bytes(p, img, 10, 0);
	expect_fail(p, good_l, "header-images", "truncated after 10 of 16 bytes");
	path_in(p, sizeof p, "short-labels.gz");
	make_labels(lab, 0x801, 4, labels, 4);
	write_bytes(p, lab, nl - 1, 1);
	expect_fail(good_i, p, "short-labels.gz", "truncated after 11 of 12 bytes");
	path_in(p, sizeof p, "empty-labels");
	write_bytes(p, lab, 0, 0);
	expect_fail(good_i, p, "empty-labels", "empty file");
	{
		/* a gzip file cut in the middle of its compressed stream */
		static unsigned char big[16 + 64 * 64 * 8];
		size_t nb = make_images(big, 0x803, 8, 64, 64, 64 * 64 * 8, 3);
		for (size_t i = 16; i < nb; i++) /* make it hard to compress */
			big[i] = (unsigned char)((i * 2654435761u) >> 13);
		path_in(p, sizeof p, "cut-images.gz");
		write_bytes(p, big, nb, 1);
		long sz = file_size(p);
		CHECK(sz > 1000 && truncate(p, sz / 2) == 0);
		expect_fail(p, good_l, "cut-images.gz", "truncated");
		/* intact length but a corrupt CRC in the gzip trailer */
		write_bytes(p, big, nb, 1);
		sz = file_size(p);
		FILE *f = fopen(p, "r+b");
		CHECK(f != NULL);
		if (f) {
			fseek(f, sz - 8, SEEK_SET);
			int c = fgetc(f);
			fseek(f, sz - 8, SEEK_SET);
			fputc(c ^ 0xff, f);
			fclose(f);
		}
		expect_fail(p, good_l, "cut-images.gz", "corrupt");
		/* gzip magic followed by garbage */
		unsigned char junk[64] = {0x1f, 0x8b, 8, 0};
		for (int i = 10; i < 64; i++)
			junk[i] = (unsigned char)(i * 91);
		path_in(p, sizeof p, "junk-images.gz");
		write_bytes(p, junk, sizeof junk, 0);
		expect_fail(p, good_l, "junk-images.gz", "junk-images.gz");
	}

	/* trailing bytes after what the header announces */
	path_in(p, sizeof p, "long-labels");
	make_labels(lab, 0x801, 4, labels, 4);
	lab[12] = 9;
	write_bytes(p, lab, nl + 1, 0);
	expect_fail(good_i, p, "long-labels", "has data after the 12 bytes");

	/* missing file, and a directory instead of a file */
	path_in(p, sizeof p, "no-such-images.gz");
	expect_fail(p, good_l, "no-such-images.gz", "cannot open");
	path_in(q, sizeof q, "adir");
	CHECK(mkdir(q, 0755) == 0);
	expect_fail(good_i, q, "adir", "cannot read");

	/* absurd dimensions: huge images, too many, zero-sized */
	path_in(p, sizeof p, "huge-images");
	write_bytes(p, img, make_images(img, 0x803, 4, 5000, 5000, 0, 0), 0);
	expect_fail(p, good_l, "huge-images", "5000x5000");
	path_in(p, sizeof p, "many-images");
	write_bytes(p, img, make_images(img, 0x803, 200000000, 2, 2, 0, 0), 0);
	expect_fail(p, good_l, "many-images", "200000000 images");
	path_in(p, sizeof p, "many-labels");
	write_bytes(p, lab, make_labels(lab, 0x801, 0xffffffffu, labels, 0), 0);
	expect_fail(good_i, p, "many-labels", "4294967295 labels");
	path_in(p, sizeof p, "zero-images");
	write_bytes(p, img, make_images(img, 0x803, 4, 0, 3, 0, 0), 0);
	expect_fail(p, good_l, "zero-images", "0x3");
	path_in(p, sizeof p, "none-images");
	write_bytes(p, img, make_images(img, 0x803, 0, 3, 3, 0, 0), 0);
	expect_fail(p, good_l, "none-images", "0 images");

	/* err may be NULL */
	LnsrtDataset d;
	CHECK(lnsrt_idx_load(p, good_l, &d, NULL, 0) != 0);
}

/* Writes a train/test pair into dir/sub: train gz, test plain, test images of rows x 3. */
static void make_split_dir(const char *sub, int test_rows, int drop_test_labels)
{
	char dir[512], p[600];
	static const int tr[4] = {0, 1, 2, 1}, te[3] = {3, 0, 1};
	path_in(dir, sizeof dir, sub);
	CHECK(mkdir(dir, 0755) == 0);
	snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
	write_bytes(p, img, make_images(img, 0x803, 4, 2, 3, 24, 5), 1);
	snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", dir);
	write_bytes(p, lab, make_labels(lab, 0x801, 4, tr, 4), 1);
	snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte", dir);
	write_bytes(
	    p, img,
	    make_images(img, 0x803, 3, (uint32_t)test_rows, 3, (size_t)(3 * test_rows * 3), 6), 0);
	if (!drop_test_labels) {
		snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte", dir);
		write_bytes(p, lab, make_labels(lab, 0x801, 3, te, 3), 0);
	}
}

static void test_data_open(void)
{
	char dir[512], err[ERRN] = "";
	LnsrtDataset tr, te;
	make_split_dir("split-ok", 2, 0);
	path_in(dir, sizeof dir, "split-ok");
	int rc = lnsrt_data_open(dir, &tr, &te, err, sizeof err);
	CHECK_MSG(rc == 0, "%s", err);
	CHECK(tr.n == 4 && te.n == 3 && tr.rows == 2 && te.cols == 3);
	/* train labels go to 2, test to 3: both splits get 4 classes */
	CHECK(tr.nclasses == 4 && te.nclasses == 4);
	CHECK(te.y && te.y[0] == 3 && tr.x && tr.x[1] == (float)((37 + 5) % 256) / 255.0f);
	lnsrt_dataset_free(&tr);
	lnsrt_dataset_free(&te);

	make_split_dir("split-missing", 2, 1);
	path_in(dir, sizeof dir, "split-missing");
	CHECK(lnsrt_data_open(dir, &tr, &te, err, sizeof err) != 0);
	CHECK_MSG(strstr(err, "t10k-labels-idx1-ubyte") && strstr(err, "split-missing"), "%s", err);
	CHECK(tr.x == NULL && te.x == NULL);

	make_split_dir("split-shape", 3, 0);
	path_in(dir, sizeof dir, "split-shape");
	CHECK(lnsrt_data_open(dir, &tr, &te, err, sizeof err) != 0);
	CHECK_MSG(strstr(err, "3x3") && strstr(err, "2x3"), "%s", err);
	CHECK(tr.x == NULL && te.x == NULL);

	path_in(dir, sizeof dir, "no-such-dir");
	CHECK(lnsrt_data_open(dir, &tr, &te, err, sizeof err) != 0);
	CHECK_MSG(strstr(err, "no-such-dir") && strstr(err, "fashion-mnist"), "%s", err);
}

/* ---- CSV ---- */

static void write_text(const char *dir, const char *name, const char *text, int gz)
{
	char p[600];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	write_bytes(p, (const unsigned char *)text, strlen(text), gz);
}

static void make_dir(char *dir, size_t n, const char *name)
{
	path_in(dir, n, name);
	mkdir(dir, 0755);
}

/* Opens dir; expects failure with every needle in the message. */
static void expect_open_fails(const char *dir, const char *a, const char *b)
{
	char err[ERRN] = "";
	LnsrtDataset tr, te;
	CHECK(lnsrt_data_open(dir, &tr, &te, err, sizeof err) != 0);
	CHECK_MSG(strstr(err, a) && (!b || strstr(err, b)), "expected '%s' and '%s' in: %s", a,
	          b ? b : "", err);
	CHECK(tr.x == NULL && tr.y == NULL && te.x == NULL && te.y == NULL && tr.n == 0);
}

static void test_csv(void)
{
	char dir[512], err[ERRN] = "";
	LnsrtDataset tr, te;
	make_dir(dir, sizeof dir, "csv-ok");
	/* header, CRLF, blank lines, spaces; 4 pixels: 2x2 images; bytes scaled by 1/255 */
	write_text(dir, "train.csv",
	           "label,p0,p1,p2,p3\r\n1,0,255,51,0\r\n\r\n 0 , 10,20,30,40\r\n2,1,2,3,4", 0);
	write_text(dir, "test.csv", "3,255,255,255,255\n", 1); /* gzip, no header */
	int rc = lnsrt_data_open(dir, &tr, &te, err, sizeof err);
	CHECK_MSG(rc == 0, "%s", err);
	if (rc == 0) {
		CHECK(tr.n == 3 && te.n == 1 && tr.rows == 2 && tr.cols == 2 && te.rows == 2);
		CHECK(tr.y[0] == 1 && tr.y[1] == 0 && tr.y[2] == 2 && te.y[0] == 3);
		CHECK(tr.x[1] == 1.0f && tr.x[2] == 51.0f / 255.0f && tr.x[4] == 10.0f / 255.0f);
		CHECK(tr.nclasses == 4 && te.nclasses == 4);
	}
	lnsrt_dataset_free(&tr);
	lnsrt_dataset_free(&te);

	/* values no greater than 1 are taken as they are; 3 pixels: one row; no test split */
	make_dir(dir, sizeof dir, "csv-float");
	write_text(dir, "train.csv", "0,0.25,-0.5,1\n1,1e-3,0,0.75\n", 0);
	rc = lnsrt_data_open(dir, &tr, &te, err, sizeof err);
	CHECK_MSG(rc == 0, "%s", err);
	if (rc == 0)
		CHECK(tr.n == 2 && te.n == 0 && tr.rows == 1 && tr.cols == 3 && tr.x[1] == -0.5f &&
		      tr.x[3] == 1e-3f && tr.nclasses == 2);
	lnsrt_dataset_free(&tr);
	lnsrt_dataset_free(&te);

	/* one CSV file is a training set */
	char one[600];
	snprintf(one, sizeof one, "%s/train.csv", dir);
	rc = lnsrt_data_open(one, &tr, &te, err, sizeof err);
	CHECK_MSG(rc == 0 && tr.n == 2 && te.n == 0, "%s", err);
	lnsrt_dataset_free(&tr);
	lnsrt_dataset_free(&te);

	static const struct {
		const char *name, *train, *a, *b;
	} bad[] = {
	    {"csv-cols", "0,1,2,3\n1,1,2\n", "train.csv:2", "3 fields, expected 4"},
	    {"csv-nan", "0,1,2\n1,x,2\n", "train.csv:2", "field 2 ('x') is not a number"},
	    {"csv-inf", "0,1,inf\n", "train.csv:1", "not a number"},
	    {"csv-neg", "0,1,2\n-1,1,2\n", "train.csv:2", "label '-1' is not a class index"},
	    {"csv-frac", "0.5,1,2\n", "train.csv:1", "label '0.5'"},
	    {"csv-range", "0,1,300\n", "csv-range", "range from 0 to 300"},
	    {"csv-negbyte", "0,-1,200\n", "csv-negbyte", NULL},
	    {"csv-empty", "", "train.csv", "no examples"},
	    {"csv-header", "label,a,b\n\n", "train.csv", "no examples"},
	    {"csv-label-only", "1\n2\n", "train.csv:1", "1 fields"},
	    {"csv-empty-field", "1,2,,3\n", "train.csv:1", "field 3 ('')"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		make_dir(dir, sizeof dir, bad[i].name);
		write_text(dir, "train.csv", bad[i].train, 0);
		expect_open_fails(dir, bad[i].a, i == 6 ? "range from -1 to 200" : bad[i].b);
	}
	/* the test split must match the training split */
	make_dir(dir, sizeof dir, "csv-mismatch");
	write_text(dir, "train.csv", "0,1,2,3,4\n", 0);
	write_text(dir, "test.csv", "0,1,2\n", 0);
	expect_open_fails(dir, "test images are 1x2", "training images are 2x2");
	make_dir(dir, sizeof dir, "csv-testbad");
	write_text(dir, "train.csv", "0,1,2\n", 0);
	write_text(dir, "test.csv", "0,1,2\n1,2\n", 0);
	expect_open_fails(dir, "test.csv:2", NULL);
	/* nothing recognisable */
	make_dir(dir, sizeof dir, "csv-none");
	write_text(dir, "test.csv", "0,1,2\n", 0);
	expect_open_fails(dir, "no dataset found", "train.csv");
}

/* ---- NPY ---- */

/* A .npy file: magic, version, header dict padded to a multiple of 64 with '\n', data. */
static size_t npy_file(unsigned char *buf, int major, const char *dict, const void *data, size_t n)
{
	size_t hoff = major == 1 ? 10 : 12, len = strlen(dict);
	size_t total = (hoff + len + 1 + 63) / 64 * 64, hlen = total - hoff;
	memcpy(buf, "\x93NUMPY", 6);
	buf[6] = (unsigned char)major;
	buf[7] = 0;
	for (size_t i = 0; i < (major == 1 ? 2u : 4u); i++)
		buf[8 + i] = (unsigned char)(hlen >> (8 * i));
	memcpy(buf + hoff, dict, len);
	memset(buf + hoff + len, ' ', hlen - len - 1);
	buf[total - 1] = '\n';
	memcpy(buf + total, data, n);
	return total + n;
}

static unsigned char npy_buf[1 << 14];

static void write_npy(const char *dir, const char *name, int major, const char *dict,
                      const void *data, size_t n)
{
	char p[600];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	write_bytes(p, npy_buf, npy_file(npy_buf, major, dict, data, n), 0);
}

/* A good NPY dataset: x_train uint8 (5, 2, 3), y_train int64 (5,), x_test float32 (2, 2, 3),
 * y_test uint8 (2, 1) in format 2.0. */
static void make_npy_dir(const char *dir)
{
	unsigned char xu[30];
	int64_t y8[5] = {0, 1, 2, 1, 0};
	float xf[12];
	unsigned char yu[2] = {4, 1};
	for (int i = 0; i < 30; i++)
		xu[i] = (unsigned char)(i * 8);
	for (int i = 0; i < 12; i++)
		xf[i] = (float)i / 16.0f;
	mkdir(dir, 0755);
	write_npy(dir, "x_train.npy", 1,
	          "{'descr': '|u1', 'fortran_order': False, 'shape': (5, 2, 3), }", xu, sizeof xu);
	write_npy(dir, "y_train.npy", 1,
	          "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }", y8, sizeof y8);
	write_npy(dir, "x_test.npy", 1,
	          "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 3), }", xf, sizeof xf);
	write_npy(dir, "y_test.npy", 2,
	          "{\"descr\": \"|u1\", \"shape\": (2, 1), \"fortran_order\": False}", yu,
	          sizeof yu);
}

static void test_npy(void)
{
	char dir[512], err[ERRN] = "";
	LnsrtDataset tr, te;
	path_in(dir, sizeof dir, "npy-ok");
	make_npy_dir(dir);
	int rc = lnsrt_data_open(dir, &tr, &te, err, sizeof err);
	CHECK_MSG(rc == 0, "%s", err);
	if (rc == 0) {
		CHECK(tr.n == 5 && te.n == 2 && tr.rows == 2 && tr.cols == 3 && te.rows == 2);
		CHECK(tr.x[1] == 8.0f / 255.0f && tr.x[29] == 232.0f / 255.0f);
		CHECK(te.x[5] == 5.0f / 16.0f && te.y[0] == 4 && tr.y[2] == 2);
		CHECK(tr.nclasses == 5 && te.nclasses == 5);
	}
	lnsrt_dataset_free(&tr);
	lnsrt_dataset_free(&te);

	/* int32 labels, (n, features) images */
	int32_t y4[5] = {3, 0, 0, 1, 2};
	float x2[64] = {0}; /* enough for the largest case below */
	path_in(dir, sizeof dir, "npy-i4");
	make_npy_dir(dir);
	write_npy(dir, "y_train.npy", 1,
	          "{'descr': '<i4', 'fortran_order': False, 'shape': (5,), }", y4, sizeof y4);
	rc = lnsrt_data_open(dir, &tr, &te, err, sizeof err);
	CHECK_MSG(rc == 0 && tr.y[0] == 3 && tr.nclasses == 5, "%s", err);
	lnsrt_dataset_free(&tr);
	lnsrt_dataset_free(&te);

	static const struct {
		const char *file, *dict, *a, *b;
		int major;
		size_t n; /* bytes of x2 to write */
	} bad[] = {
	    {"x_train.npy", "{'descr': '|u1', 'fortran_order': True, 'shape': (5, 2, 3), }",
	     "x_train.npy", "Fortran-order", 1, 30},
	    {"x_train.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (5, 2, 3), }",
	     "x_train.npy", "big-endian", 1, 120},
	    {"x_train.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (5, 2, 3), }",
	     "x_train.npy", "float32 or uint8", 1, 240},
	    {"x_train.npy", "{'descr': '<U4', 'fortran_order': False, 'shape': (5, 2, 3), }",
	     "x_train.npy", "unsupported dtype '<U4'", 1, 30},
	    {"x_train.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (5, 2, 3), }",
	     "x_train.npy", "truncated: 29 of 30", 1, 29},
	    {"x_train.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (5, 2, 3), }",
	     "x_train.npy", "1 bytes of trailing data", 1, 31},
	    {"x_train.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (4, 2, 3), }",
	     "x_train.npy has 4 examples", "y_train.npy has 5 labels", 1, 24},
	    {"x_train.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (30,), }",
	     "x_train.npy", "expected (examples, features...)", 1, 30},
	    {"x_train.npy", "{'descr': '|u1', 'fortran_order': False}", "x_train.npy",
	     "lacks 'shape'", 1, 0},
	    {"x_train.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (5, 6), 'x': 1}",
	     "x_train.npy", "unexpected key 'x'", 1, 30},
	    {"x_train.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (5, 6}",
	     "x_train.npy", "malformed", 1, 30},
	    {"x_train.npy", "not a dict at all", "x_train.npy", "malformed", 1, 30},
	    {"x_train.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (5, 6), }",
	     "x_train.npy", "version 4", 4, 30},
	    {"x_test.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 2), }",
	     "test images are 3x2", NULL, 1, 48},
	    {"y_test.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
	     "y_test.npy", "int64, int32 or uint8", 1, 8},
	    {"y_test.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }",
	     "y_test.npy", "shape (2, 2)", 1, 4},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char name[64];
		snprintf(name, sizeof name, "npy-bad%zu", i);
		path_in(dir, sizeof dir, name);
		make_npy_dir(dir);
		write_npy(dir, bad[i].file, bad[i].major, bad[i].dict, x2, bad[i].n);
		expect_open_fails(dir, bad[i].a, bad[i].b);
	}
	/* negative labels, NaN pixels, bad magic, a missing file */
	int64_t neg[5] = {0, 1, -1, 0, 0};
	path_in(dir, sizeof dir, "npy-neg");
	make_npy_dir(dir);
	write_npy(dir, "y_train.npy", 1,
	          "{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }", neg, sizeof neg);
	expect_open_fails(dir, "y_train.npy: label -1 of example 2", NULL);
	float nanx[12] = {0, 0, 0, NAN};
	path_in(dir, sizeof dir, "npy-nan");
	make_npy_dir(dir);
	write_npy(dir, "x_test.npy", 1,
	          "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 3), }", nanx,
	          sizeof nanx);
	expect_open_fails(dir, "x_test.npy: element 3 is NaN", NULL);
	path_in(dir, sizeof dir, "npy-magic");
	make_npy_dir(dir);
	write_text(dir, "y_test.npy", "PK\003\004 this is a zip file, not an array", 0);
	expect_open_fails(dir, "y_test.npy: not a .npy file", NULL);
	char p[600];
	path_in(dir, sizeof dir, "npy-missing");
	make_npy_dir(dir);
	snprintf(p, sizeof p, "%s/y_test.npy", dir);
	unlink(p);
	expect_open_fails(dir, "no y_test.npy", NULL);
}

static void test_fashion_mnist(void)
{
	char err[ERRN] = "";
	LnsrtDataset tr, te;
	struct stat st;
	if (stat(LNSRT_FASHION_MNIST_DIR, &st) != 0) {
		printf("test_runtime: %s absent: Fashion-MNIST checks not run (install "
		       "dataset-fashion-mnist)\n",
		       LNSRT_FASHION_MNIST_DIR);
		CHECK(lnsrt_data_open(NULL, &tr, &te, err, sizeof err) != 0);
		CHECK_MSG(strstr(err, "dataset-fashion-mnist") != NULL, "%s", err);
		return;
	}
	int rc = lnsrt_data_open(NULL, &tr, &te, err, sizeof err);
	CHECK_MSG(rc == 0, "%s", err);
	if (rc)
		return;
	CHECK(tr.n == 60000 && te.n == 10000);
	CHECK(tr.rows == 28 && tr.cols == 28 && te.rows == 28 && te.cols == 28);
	CHECK(tr.nclasses == 10 && te.nclasses == 10);
	CHECK(tr.y[0] >= 0 && tr.y[0] <= 9);
	int64_t htr[10] = {0}, hte[10] = {0};
	for (int64_t i = 0; i < tr.n; i++)
		htr[tr.y[i]]++;
	for (int64_t i = 0; i < te.n; i++)
		hte[te.y[i]]++;
	for (int c = 0; c < 10; c++)
		CHECK_MSG(htr[c] == 6000 && hte[c] == 1000, "class %d: %lld train, %lld test", c,
		          (long long)htr[c], (long long)hte[c]);
	float lo = 1, hi = 0;
	for (int64_t i = 0; i < tr.n * 784; i++) {
		lo = tr.x[i] < lo ? tr.x[i] : lo;
		hi = tr.x[i] > hi ? tr.x[i] : hi;
	}
	CHECK(lo == 0.0f && hi == 1.0f);
	printf("test_runtime: fashion-mnist loaded, first training label %lld\n",
	       (long long)tr.y[0]);
	int64_t first = tr.y[0];
	lnsrt_dataset_free(&tr);
	lnsrt_dataset_free(&te);
	rc = lnsrt_data_open("fashion-mnist", &tr, &te, err, sizeof err);
	CHECK_MSG(rc == 0 && tr.n == 60000 && tr.y[0] == first, "%s", err);
	lnsrt_dataset_free(&tr);
	lnsrt_dataset_free(&te);
}

/* ---- trainers ---- */

enum { LR_ROWS = 2, LR_COLS = 4, LR_D = LR_ROWS * LR_COLS, LR_K = 3, LR_SEEN = 64 };

/* Multinomial logistic regression, plain SGD, with hooks to fail or diverge on a step. */
typedef struct Logreg {
	int batch;
	float w[LR_K][LR_D], b[LR_K];
	float lr;
	int64_t steps;       /* train steps taken */
	float seen[LR_SEEN]; /* first feature of the first examples visited, in order */
	int nseen;
	int64_t nan_at;  /* return a NaN loss at this step (1-based, over the run); 0 never */
	int64_t fail_at; /* return an error at this step; 0 never */
} Logreg;

static void logreg_logits(const Logreg *m, const float *x, float *z)
{
	for (int k = 0; k < LR_K; k++) {
		float s = m->b[k];
		for (int j = 0; j < LR_D; j++)
			s += m->w[k][j] * x[j];
		z[k] = s;
	}
}

static int logreg_train(void *impl, const float *x, const int64_t *y, float *loss, char *err,
                        size_t errn)
{
	Logreg *m = impl;
	float gw[LR_K][LR_D] = {{0}}, gb[LR_K] = {0};
	double total = 0;
	m->steps++;
	if (m->fail_at && m->steps == m->fail_at)
		return lnsrt_fmt_err(err, errn, "boom in the backend");
	for (int i = 0; i < m->batch; i++) {
		const float *xi = x + i * LR_D;
		float z[LR_K], p[LR_K], mx = -INFINITY, s = 0;
		if (m->nseen < LR_SEEN)
			m->seen[m->nseen++] = xi[0];
		logreg_logits(m, xi, z);
		for (int k = 0; k < LR_K; k++)
			mx = z[k] > mx ? z[k] : mx;
		for (int k = 0; k < LR_K; k++)
			s += p[k] = expf(z[k] - mx);
		for (int k = 0; k < LR_K; k++)
			p[k] /= s;
		total += -log(p[y[i]]);
		for (int k = 0; k < LR_K; k++) {
			float g = (p[k] - (k == y[i])) / (float)m->batch;
			gb[k] += g;
			for (int j = 0; j < LR_D; j++)
				gw[k][j] += g * xi[j];
		}
	}
	for (int k = 0; k < LR_K; k++) {
		m->b[k] -= m->lr * gb[k];
		for (int j = 0; j < LR_D; j++)
			m->w[k][j] -= m->lr * gw[k][j];
	}
	*loss = (float)(total / m->batch);
	if (m->nan_at && m->steps == m->nan_at)
		*loss = NAN;
	return 0;
}

static int logreg_eval(void *impl, const float *x, float *logits, char *err, size_t errn)
{
	Logreg *m = impl;
	(void)err;
	(void)errn;
	for (int i = 0; i < m->batch; i++)
		logreg_logits(m, x + i * LR_D, logits + i * LR_K);
	return 0;
}

static LnsrtTrainer logreg_trainer(Logreg *m, int batch)
{
	memset(m, 0, sizeof *m);
	m->batch = batch;
	m->lr = 0.5f;
	LnsrtTrainer t = {.impl = m,
	                  .batch = batch,
	                  .example_size = LR_D,
	                  .nclasses = LR_K,
	                  .train_step = logreg_train,
	                  .eval_step = logreg_eval};
	return t;
}

/* n points uniform in [0,1]^8 labelled by a fixed linear rule, kept only with a margin. */
static void make_separable(LnsrtDataset *d, int64_t n, uint64_t seed)
{
	static const float w[LR_K][LR_D] = {{2, -1, 0.5f, 1, -2, 0, 1, -0.5f},
	                                    {-1, 2, 1, -1, 0.5f, 1, -1, 0},
	                                    {0, -0.5f, -1, 0.5f, 1, -1, 0.5f, 2}};
	LnsrtRng r;
	lnsrt_rng_seed(&r, seed, 99);
	d->n = n;
	d->rows = LR_ROWS;
	d->cols = LR_COLS;
	d->nclasses = LR_K;
	d->x = malloc((size_t)n * LR_D * sizeof(float));
	d->y = malloc((size_t)n * sizeof(int64_t));
	for (int64_t i = 0; i < n;) {
		float *x = d->x + i * LR_D, z[LR_K];
		for (int j = 0; j < LR_D; j++)
			x[j] = (float)(lnsrt_rng_next(&r) >> 40) / (float)(1 << 24);
		int best = 0, second = -1;
		for (int k = 0; k < LR_K; k++) {
			z[k] = 0;
			for (int j = 0; j < LR_D; j++)
				z[k] += w[k][j] * x[j];
		}
		for (int k = 1; k < LR_K; k++)
			if (z[k] > z[best])
				best = k;
		for (int k = 0; k < LR_K; k++)
			if (k != best && (second < 0 || z[k] > z[second]))
				second = k;
		if (z[best] - z[second] < 0.3f)
			continue;
		d->y[i++] = best;
	}
}

/* Parses the metrics CSV into rows of 6 numbers; returns the row count or -1. */
static int parse_csv(const char *text, double rows[][6], int maxrows, char cols[][6][32])
{
	const char *header = "epoch,step,train_loss,test_loss,test_acc,seconds\n";
	if (strncmp(text, header, strlen(header)) != 0)
		return -1;
	const char *s = text + strlen(header);
	int n = 0;
	while (*s && n < maxrows) {
		for (int c = 0; c < 6; c++) {
			size_t len = strcspn(s, c < 5 ? "," : "\n");
			if (len >= 32 || !s[len])
				return -1;
			memcpy(cols[n][c], s, len);
			cols[n][c][len] = 0;
			rows[n][c] = strtod(cols[n][c], NULL);
			s += len + 1;
		}
		n++;
	}
	return *s ? -1 : n;
}

static void test_train_logreg(void)
{
	LnsrtDataset tr, te;
	make_separable(&tr, 512, 1);
	make_separable(&te, 200, 2);
	char err[ERRN] = "", m1[512], m2[512], outp[512];
	Logreg a, b, c;
	LnsrtTrainer ta = logreg_trainer(&a, 16), tb = logreg_trainer(&b, 16),
	             tc = logreg_trainer(&c, 16);
	path_in(m1, sizeof m1, "m1.csv");
	path_in(m2, sizeof m2, "m2.csv");
	path_in(outp, sizeof outp, "out1.txt");
	LnsrtTrainOpts o;
	lnsrt_train_opts_init(&o);
	o.epochs = 4;
	o.seed = 7;
	o.metrics_path = m1;
	o.progress = 1; /* draws on stderr and clears itself */
	o.out = fopen(outp, "w");
	CHECK(o.out != NULL);
	LnsrtEpochResult la, lb, lc;
	int rc = lnsrt_train(&ta, &tr, &te, &o, &la, err, sizeof err);
	fclose(o.out);
	CHECK_MSG(rc == 0, "%s", err);
	CHECK(la.epoch == 4 && la.steps == 4 * 32 && a.steps == 128);
	CHECK_MSG(la.test_acc > 0.9, "test accuracy %.4f", la.test_acc);
	CHECK(la.seconds >= 0);

	/* metrics CSV: header, one row per epoch, falling losses, last row = result */
	char *t1 = read_text(m1);
	double rows[8][6];
	char cols1[8][6][32], cols2[8][6][32];
	int nrows = t1 ? parse_csv(t1, rows, 8, cols1) : -1;
	CHECK_MSG(nrows == 4, "metrics rows %d:\n%s", nrows, t1 ? t1 : "(missing)");
	if (nrows == 4) {
		for (int i = 0; i < 4; i++)
			CHECK(rows[i][0] == i + 1 && rows[i][1] == 32 * (i + 1));
		CHECK_MSG(rows[3][2] < rows[0][2], "train loss %g -> %g", rows[0][2], rows[3][2]);
		CHECK_MSG(rows[3][3] < rows[0][3], "test loss %g -> %g", rows[0][3], rows[3][3]);
		CHECK(fabs(rows[3][2] - la.train_loss) < 1e-6 * fabs(la.train_loss));
		CHECK(fabs(rows[3][3] - la.test_loss) < 1e-6 * fabs(la.test_loss));
		CHECK(fabs(rows[3][4] - la.test_acc) < 1e-7);
	}
	CHECK_MSG(count_prefix(tmpdir, "m1.csv.") == 0, "temporary metrics file left behind");
	/* the per-epoch lines */
	char *txt = read_text(outp);
	CHECK(txt && strncmp(txt, "epoch 1/4  train_loss ", 22) == 0);
	CHECK(txt && strstr(txt, "\nepoch 4/4  train_loss ") && strstr(txt, "  test_acc 0.") &&
	      strstr(txt, "s\n"));
	free(txt);

	/* the same seed repeats the run exactly (all but the timing column) */
	o.metrics_path = m2;
	o.progress = 0;
	o.out = fopen("/dev/null", "w");
	rc = lnsrt_train(&tb, &tr, &te, &o, &lb, err, sizeof err);
	CHECK_MSG(rc == 0, "%s", err);
	char *t2 = read_text(m2);
	CHECK(t2 && parse_csv(t2, rows, 8, cols2) == 4);
	if (t1 && t2 && nrows == 4) {
		int same = 1;
		for (int i = 0; i < 4; i++)
			for (int k = 0; k < 5; k++)
				same &= strcmp(cols1[i][k], cols2[i][k]) == 0;
		CHECK_MSG(same, "same seed, different metrics:\n%s\n%s", t1, t2);
	}
	CHECK(la.train_loss == lb.train_loss && la.test_loss == lb.test_loss);
	CHECK(memcmp(a.w, b.w, sizeof a.w) == 0 && memcmp(a.seen, b.seen, sizeof a.seen) == 0);
	free(t1);
	free(t2);

	/* another seed visits the examples in another order */
	o.seed = 8;
	o.metrics_path = NULL;
	rc = lnsrt_train(&tc, &tr, &te, &o, &lc, err, sizeof err);
	fclose(o.out);
	CHECK_MSG(rc == 0, "%s", err);
	CHECK(memcmp(a.seen, c.seen, sizeof a.seen) != 0);
	CHECK(lc.test_acc > 0.9);
	lnsrt_dataset_free(&tr);
	lnsrt_dataset_free(&te);
}

static void test_train_stops(void)
{
	LnsrtDataset tr, te;
	make_separable(&tr, 100, 3); /* batch 8: 12 steps per epoch, 4 examples dropped */
	make_separable(&te, 10, 4);
	char err[ERRN] = "", mp[512];
	Logreg m;
	LnsrtTrainer t = logreg_trainer(&m, 8);
	LnsrtTrainOpts o;
	LnsrtEpochResult last;
	lnsrt_train_opts_init(&o);
	o.epochs = 3;
	o.progress = 0;
	o.out = fopen("/dev/null", "w");
	path_in(mp, sizeof mp, "stop.csv");
	o.metrics_path = mp;

	m.nan_at = 3;
	CHECK(lnsrt_train(&t, &tr, &te, &o, &last, err, sizeof err) != 0);
	CHECK_MSG(strstr(err, "epoch 1/3, step 3/12") && strstr(err, "nan"), "%s", err);
	CHECK(last.epoch == 0);

	/* NaN in epoch 2: the metrics file still holds epoch 1, complete */
	t = logreg_trainer(&m, 8);
	m.nan_at = 12 + 5;
	CHECK(lnsrt_train(&t, &tr, &te, &o, &last, err, sizeof err) != 0);
	CHECK_MSG(strstr(err, "epoch 2/3, step 5/12"), "%s", err);
	CHECK(last.epoch == 1 && last.steps == 12);
	char *text = read_text(mp);
	double rows[4][6];
	char cols[4][6][32];
	CHECK(text && parse_csv(text, rows, 4, cols) == 1 && rows[0][1] == 12);
	free(text);

	t = logreg_trainer(&m, 8);
	m.fail_at = 7;
	CHECK(lnsrt_train(&t, &tr, &te, &o, &last, err, sizeof err) != 0);
	CHECK_MSG(strstr(err, "step 7/12") && strstr(err, "boom in the backend"), "%s", err);

	/* max_steps cuts the run inside epoch 2 and still evaluates it */
	t = logreg_trainer(&m, 8);
	o.max_steps = 20;
	CHECK_MSG(lnsrt_train(&t, &tr, &te, &o, &last, err, sizeof err) == 0, "%s", err);
	CHECK(last.epoch == 2 && last.steps == 20 && m.steps == 20 && !isnan(last.test_acc));
	o.max_steps = 0;

	/* the setup is checked before any step runs */
	t = logreg_trainer(&m, 8);
	t.example_size = 9;
	CHECK(lnsrt_train(&t, &tr, &te, &o, &last, err, sizeof err) != 0);
	CHECK_MSG(strstr(err, "training set") && strstr(err, "9 per example"), "%s", err);
	t = logreg_trainer(&m, 8);
	t.nclasses = 2;
	CHECK(lnsrt_train(&t, &tr, &te, &o, &last, err, sizeof err) != 0);
	CHECK_MSG(strstr(err, "label 2") && strstr(err, "2 classes"), "%s", err);
	t = logreg_trainer(&m, 128);
	CHECK(lnsrt_train(&t, &tr, &te, &o, &last, err, sizeof err) != 0);
	CHECK_MSG(strstr(err, "fewer than one batch of 128"), "%s", err);
	t = logreg_trainer(&m, 8);
	o.epochs = 0;
	CHECK(lnsrt_train(&t, &tr, &te, &o, &last, err, sizeof err) != 0);
	o.epochs = 1;
	o.metrics_path = "/nonexistent-dir-lnsrt/m.csv";
	CHECK(lnsrt_train(&t, &tr, &te, &o, &last, err, sizeof err) != 0);
	CHECK_MSG(strstr(err, "/nonexistent-dir-lnsrt/m.csv"), "%s", err);
	CHECK(m.steps == 0);
	/* no test split: trains, reports NaN test metrics */
	o.metrics_path = NULL;
	CHECK_MSG(lnsrt_train(&t, &tr, NULL, &o, &last, err, sizeof err) == 0, "%s", err);
	CHECK(last.epoch == 1 && isnan(last.test_loss) && isnan(last.test_acc));
	fclose(o.out);
	lnsrt_dataset_free(&tr);
	lnsrt_dataset_free(&te);
}

/* ---- padded evaluation ---- */

enum { PR_K = 4, PR_B = 4, PR_N = 10 };

/* logits = 5 * x (x is 2x2 = 4 floats); counts calls and checks the padding rows. */
typedef struct Probe {
	int evals;
	int pad_ok;
	int64_t trains;
} Probe;

static int probe_train(void *impl, const float *x, const int64_t *y, float *loss, char *err,
                       size_t errn)
{
	(void)x;
	(void)y;
	(void)err;
	(void)errn;
	((Probe *)impl)->trains++;
	*loss = 1.0f;
	return 0;
}

static int probe_eval(void *impl, const float *x, float *logits, char *err, size_t errn)
{
	Probe *p = impl;
	(void)err;
	(void)errn;
	int first = p->evals++ % 3 * PR_B; /* index of this batch's first example */
	for (int i = 0; i < PR_B; i++) {
		for (int c = 0; c < PR_K; c++) {
			logits[i * PR_K + c] = 5 * x[i * PR_K + c];
			if (first + i >= PR_N && x[i * PR_K + c] != 0)
				p->pad_ok = 0;
		}
	}
	return 0;
}

static void test_padded_eval(void)
{
	float x[PR_N * PR_K] = {0};
	int64_t y[PR_N];
	/* examples 0..8 one-hot at i%4; labels right for 0..5, wrong for 6..8; example 9 is all
	 * zero (logits tie, argmax 0) with label 0, so right */
	for (int i = 0; i < 9; i++) {
		x[i * PR_K + i % 4] = 1;
		y[i] = i < 6 ? i % 4 : (i + 1) % 4;
	}
	y[9] = 0;
	LnsrtDataset d = {.n = PR_N, .rows = 2, .cols = 2, .x = x, .y = y, .nclasses = PR_K};
	Probe p = {.pad_ok = 1};
	LnsrtTrainer t = {.impl = &p,
	                  .batch = PR_B,
	                  .example_size = 4,
	                  .nclasses = PR_K,
	                  .train_step = probe_train,
	                  .eval_step = probe_eval};
	char err[ERRN] = "";
	double loss, acc;
	CHECK_MSG(lnsrt_evaluate(&t, &d, &loss, &acc, err, sizeof err) == 0, "%s", err);
	double l = log(exp(5.0) + 3.0);
	double want = (6 * (l - 5) + 3 * l + log(4.0)) / 10;
	CHECK_MSG(fabs(loss - want) < 1e-9, "loss %.12f, want %.12f", loss, want);
	CHECK_MSG(acc == 0.7, "accuracy %g", acc);
	CHECK(p.evals == 3 && p.pad_ok);

	/* through the driver: 10 train examples, batch 4: 2 steps per epoch */
	LnsrtTrainOpts o;
	LnsrtEpochResult last;
	lnsrt_train_opts_init(&o);
	o.epochs = 2;
	o.progress = 0;
	o.out = fopen("/dev/null", "w");
	CHECK_MSG(lnsrt_train(&t, &d, &d, &o, &last, err, sizeof err) == 0, "%s", err);
	fclose(o.out);
	CHECK(p.trains == 4 && p.evals == 9 && p.pad_ok);
	CHECK(last.epoch == 2 && last.steps == 4 && last.train_loss == 1.0);
	CHECK(fabs(last.test_loss - want) < 1e-9 && last.test_acc == 0.7);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_rng();
	test_idx_ok();
	test_idx_bad();
	test_data_open();
	test_csv();
	test_npy();
	test_train_logreg();
	test_train_stops();
	test_padded_eval();
	test_fashion_mnist();
	remove_tree(tmpdir);
	return t_finish("test_runtime");
}
