/* tensor.c: ONNX TensorProto <-> IR dtype and data, external data, and tensor files.
 *
 * One decoder serves initializers, Constant values and the tensor files of `lnsc grad` /
 * `lnsc eval` (a serialized TensorProto, as onnx.numpy_helper writes it). It checks the
 * shape first (rank, dims, element count, without overflow), then that the data present
 * (raw_data, the typed field the spec assigns to the dtype, or external data) has exactly the
 * bytes the shape asks for, so nothing is allocated from a size the file merely claims.
 * External data is read only from files inside the model's folder: relative locations without
 * '..', resolved with realpath so a symlink cannot lead outside, offset and length within the
 * file. Data is stored in the IR layout, native byte order (bool as one byte 0/1, f16 as bits).
 */
#include "frontend/fe.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx/onnx.pb-c.h"

/* ---- dtypes ---- */

static const struct {
	int onnx;
	const char *name;
	int ir; /* IrDType, or -1 when unsupported */
} dtypes[] = {
    {ONNX__TENSOR_PROTO__DATA_TYPE__UNDEFINED, "undefined", -1},
    {ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, "float", IR_DT_F32},
    {ONNX__TENSOR_PROTO__DATA_TYPE__UINT8, "uint8", IR_DT_U8},
    {ONNX__TENSOR_PROTO__DATA_TYPE__INT8, "int8", IR_DT_I8},
    {ONNX__TENSOR_PROTO__DATA_TYPE__UINT16, "uint16", IR_DT_U16},
    {ONNX__TENSOR_PROTO__DATA_TYPE__INT16, "int16", IR_DT_I16},
    {ONNX__TENSOR_PROTO__DATA_TYPE__INT32, "int32", IR_DT_I32},
    {ONNX__TENSOR_PROTO__DATA_TYPE__INT64, "int64", IR_DT_I64},
    {ONNX__TENSOR_PROTO__DATA_TYPE__STRING, "string", -1},
    {ONNX__TENSOR_PROTO__DATA_TYPE__BOOL, "bool", IR_DT_BOOL},
    {ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16, "float16", IR_DT_F16},
    {ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE, "double", IR_DT_F64},
    {ONNX__TENSOR_PROTO__DATA_TYPE__UINT32, "uint32", IR_DT_U32},
    {ONNX__TENSOR_PROTO__DATA_TYPE__UINT64, "uint64", IR_DT_U64},
    {ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX64, "complex64", -1},
    {ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX128, "complex128", -1},
    {ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16, "bfloat16", -1},
    /* Newer than the onnx.proto we build against; named for the messages. */
    {17, "float8e4m3fn", -1},
    {18, "float8e4m3fnuz", -1},
    {19, "float8e5m2", -1},
    {20, "float8e5m2fnuz", -1},
    {21, "uint4", -1},
    {22, "int4", -1},
    {23, "float4e2m1", -1},
};
enum { NDTYPES = sizeof dtypes / sizeof dtypes[0] };

int fe_dtype_from_onnx(int onnx_dt, IrDType *out)
{
	for (int i = 0; i < NDTYPES; i++)
		if (dtypes[i].onnx == onnx_dt && dtypes[i].ir >= 0) {
			*out = (IrDType)dtypes[i].ir;
			return 0;
		}
	return -1;
}

int fe_dtype_to_onnx(IrDType dt)
{
	for (int i = 0; i < NDTYPES; i++)
		if (dtypes[i].ir == (int)dt)
			return dtypes[i].onnx;
	return ONNX__TENSOR_PROTO__DATA_TYPE__UNDEFINED;
}

const char *fe_onnx_dtype_name(int onnx_dt)
{
	for (int i = 0; i < NDTYPES; i++)
		if (dtypes[i].onnx == onnx_dt)
			return dtypes[i].name;
	return "unknown";
}

/* ---- shapes ---- */

int fe_check_dims(IrCtx *c, const char *what, int64_t rank, const int64_t *dims)
{
	if (rank > IR_MAX_RANK) {
		ir_error(c, IR_ERR_INPUT, "%s: rank %" PRId64 " exceeds the maximum %d", what, rank,
		         IR_MAX_RANK);
		return -1;
	}
	int64_t numel = 1;
	for (int64_t i = 0; i < rank; i++) {
		if (dims[i] < 0 || dims[i] > (int64_t)IR_MAX_DIM) {
			ir_error(c, IR_ERR_INPUT, "%s: dimension %" PRId64 " is %" PRId64 " (%s)",
			         what, i, dims[i], dims[i] < 0 ? "negative" : "absurdly large");
			return -1;
		}
		if (dims[i] != 0 && numel > IR_MAX_NUMEL / dims[i]) {
			ir_error(c, IR_ERR_INPUT,
			         "%s: shape has more than %" PRId64 " elements (absurdly large)",
			         what, (int64_t)IR_MAX_NUMEL);
			return -1;
		}
		numel *= dims[i];
	}
	return 0;
}

/* ---- data ---- */

static int host_little_endian(void)
{
	uint16_t x = 1;
	unsigned char b;
	memcpy(&b, &x, 1);
	return b == 1;
}

/* Turns n little-endian elements of size es at p into native order, in place; bools -> 0/1. */
static void from_le(void *p, size_t n, size_t es, IrDType dt)
{
	unsigned char *b = p;
	if (dt == IR_DT_BOOL) {
		for (size_t i = 0; i < n; i++)
			b[i] = b[i] != 0;
		return;
	}
	if (es == 1 || host_little_endian())
		return;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < es / 2; j++) {
			unsigned char t = b[i * es + j];
			b[i * es + j] = b[i * es + es - 1 - j];
			b[i * es + es - 1 - j] = t;
		}
}

/* Copies int32_data into a narrower (or f16-bits, or bool) element type, range-checked. */
static int narrow_i32(IrCtx *c, const char *what, const int32_t *src, size_t n, IrDType dt,
                      void *dst)
{
	int64_t lo = 0, hi = 0;
	switch (dt) {
	case IR_DT_I8:
		lo = INT8_MIN, hi = INT8_MAX;
		break;
	case IR_DT_U8:
		lo = 0, hi = UINT8_MAX;
		break;
	case IR_DT_I16:
		lo = INT16_MIN, hi = INT16_MAX;
		break;
	case IR_DT_U16:
	case IR_DT_F16:
		lo = 0, hi = UINT16_MAX;
		break;
	case IR_DT_I32:
		lo = INT32_MIN, hi = INT32_MAX;
		break;
	case IR_DT_BOOL:
		lo = INT32_MIN, hi = INT32_MAX;
		break;
	default:
		break;
	}
	for (size_t i = 0; i < n; i++) {
		int64_t v = src[i];
		if (v < lo || v > hi) {
			ir_error(c, IR_ERR_INPUT,
			         "%s: value %" PRId64 " at index %zu is out of range for %s", what,
			         v, i, ir_dtype_name(dt));
			return -1;
		}
		switch (dt) {
		case IR_DT_I8:
			((int8_t *)dst)[i] = (int8_t)v;
			break;
		case IR_DT_U8:
			((uint8_t *)dst)[i] = (uint8_t)v;
			break;
		case IR_DT_I16:
			((int16_t *)dst)[i] = (int16_t)v;
			break;
		case IR_DT_U16:
		case IR_DT_F16:
			((uint16_t *)dst)[i] = (uint16_t)v;
			break;
		case IR_DT_I32:
			((int32_t *)dst)[i] = (int32_t)v;
			break;
		case IR_DT_BOOL:
			((uint8_t *)dst)[i] = v != 0;
			break;
		default:
			break;
		}
	}
	return 0;
}

/* The typed field the spec assigns to dt: its name, count and elements. */
static int typed_field(const Onnx__TensorProto *t, IrDType dt, const char **field, size_t *n)
{
	switch (dt) {
	case IR_DT_F32:
		*field = "float_data", *n = t->n_float_data;
		return 0;
	case IR_DT_I64:
		*field = "int64_data", *n = t->n_int64_data;
		return 0;
	case IR_DT_F64:
		*field = "double_data", *n = t->n_double_data;
		return 0;
	case IR_DT_U32:
	case IR_DT_U64:
		*field = "uint64_data", *n = t->n_uint64_data;
		return 0;
	case IR_DT_I8:
	case IR_DT_I16:
	case IR_DT_I32:
	case IR_DT_U8:
	case IR_DT_U16:
	case IR_DT_F16:
	case IR_DT_BOOL:
		*field = "int32_data", *n = t->n_int32_data;
		return 0;
	default:
		return -1;
	}
}

static int decode_typed(IrCtx *c, const char *what, const Onnx__TensorProto *t, IrDType dt,
                        size_t numel, void *dst)
{
	const char *field = "";
	size_t n = 0;
	if (typed_field(t, dt, &field, &n))
		return -1;
	if (n != numel) {
		ir_error(c, IR_ERR_INPUT, "%s: %s has %zu values but the shape needs %zu", what,
		         field, n, numel);
		return -1;
	}
	if (n == 0)
		return 0;
	switch (dt) {
	case IR_DT_F32:
		memcpy(dst, t->float_data, n * sizeof(float));
		return 0;
	case IR_DT_I64:
		memcpy(dst, t->int64_data, n * sizeof(int64_t));
		return 0;
	case IR_DT_F64:
		memcpy(dst, t->double_data, n * sizeof(double));
		return 0;
	case IR_DT_U64:
		memcpy(dst, t->uint64_data, n * sizeof(uint64_t));
		return 0;
	case IR_DT_U32:
		for (size_t i = 0; i < n; i++) {
			if (t->uint64_data[i] > UINT32_MAX) {
				ir_error(c, IR_ERR_INPUT,
				         "%s: value %" PRIu64
				         " at index %zu is out of range for u32",
				         what, t->uint64_data[i], i);
				return -1;
			}
			((uint32_t *)dst)[i] = (uint32_t)t->uint64_data[i];
		}
		return 0;
	default:
		return narrow_i32(c, what, t->int32_data, n, dt, dst);
	}
}

/* A decimal, non-negative external-data number ("offset", "length"). */
static int parse_size(const char *s, int64_t *out)
{
	if (!s || !*s)
		return -1;
	int64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return 0;
}

/* Is location a relative path with no '..' component? */
static int safe_location(const char *loc)
{
	if (!*loc || loc[0] == '/')
		return 0;
	for (const char *p = loc; *p;) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return 0;
		p += len;
		if (*p == '/')
			p++;
	}
	return 1;
}

static int read_external(IrCtx *c, const char *what, const Onnx__TensorProto *t, const char *dir,
                         void *dst, size_t bytes)
{
	const char *loc = NULL, *off_s = NULL, *len_s = NULL;
	for (size_t i = 0; i < t->n_external_data; i++) {
		const Onnx__StringStringEntryProto *e = t->external_data[i];
		if (!e || !e->key)
			continue;
		if (!strcmp(e->key, "location"))
			loc = e->value;
		else if (!strcmp(e->key, "offset"))
			off_s = e->value;
		else if (!strcmp(e->key, "length"))
			len_s = e->value;
	}
	if (!dir) {
		ir_error(c, IR_ERR_INPUT, "%s: external data is not allowed here", what);
		return -1;
	}
	if (!loc || !*loc) {
		ir_error(c, IR_ERR_INPUT, "%s: external data has no location", what);
		return -1;
	}
	if (!safe_location(loc)) {
		ir_error(
		    c, IR_ERR_INPUT,
		    "%s: external data location '%s' must be a relative path inside the model's "
		    "folder (no absolute path, no '..')",
		    what, loc);
		return -1;
	}
	int64_t off = 0, len = (int64_t)bytes;
	if ((off_s && parse_size(off_s, &off)) || (len_s && parse_size(len_s, &len))) {
		ir_error(c, IR_ERR_INPUT,
		         "%s: external data offset/length must be non-negative integers", what);
		return -1;
	}
	if (len != (int64_t)bytes) {
		ir_error(c, IR_ERR_INPUT,
		         "%s: external data length %" PRId64 " but the shape needs %zu bytes", what,
		         len, bytes);
		return -1;
	}
	char *joined = malloc(strlen(dir) + strlen(loc) + 2);
	if (!joined)
		abort();
	sprintf(joined, "%s/%s", dir, loc);
	char *real = realpath(joined, NULL);
	free(joined);
	if (!real) {
		ir_error(c, IR_ERR_INPUT, "%s: external data file '%s': %s", what, loc,
		         strerror(errno));
		return -1;
	}
	size_t dl = strlen(dir);
	int inside = !strncmp(real, dir, dl) && (real[dl] == '/' || (dl == 1 && dir[0] == '/'));
	int rc = -1;
	int fd = -1;
	struct stat st;
	if (!inside) {
		ir_error(c, IR_ERR_INPUT,
		         "%s: external data file '%s' resolves outside the model's folder", what,
		         loc);
		goto out;
	}
	fd = open(real, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not block us */
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		ir_error(c, IR_ERR_INPUT, "%s: external data file '%s': %s", what, loc,
		         fd < 0 ? strerror(errno) : "not a regular file");
		goto out;
	}
	if (off > (int64_t)st.st_size || len > (int64_t)st.st_size - off) {
		ir_error(c, IR_ERR_INPUT,
		         "%s: external data (offset %" PRId64 ", length %" PRId64
		         ") lies beyond the end "
		         "of '%s' (%" PRId64 " bytes)",
		         what, off, len, loc, (int64_t)st.st_size);
		goto out;
	}
	for (size_t got = 0; got < bytes;) {
		ssize_t r = pread(fd, (char *)dst + got, bytes - got, (off_t)(off + (int64_t)got));
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			ir_error(c, IR_ERR_INPUT, "%s: reading external data '%s': %s", what, loc,
			         r < 0 ? strerror(errno) : "unexpected end of file");
			goto out;
		}
		got += (size_t)r;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(real);
	return rc;
}

int fe_tensor_decode(IrCtx *c, IrArena *a, const Onnx__TensorProto *t, const char *what,
                     const char *dir, FeConst *out)
{
	int odt = t->has_data_type ? t->data_type : 0;
	IrDType dt;
	if (odt == ONNX__TENSOR_PROTO__DATA_TYPE__UNDEFINED) {
		ir_error(c, IR_ERR_INPUT, "%s: tensor has no data type", what);
		return -1;
	}
	if (fe_dtype_from_onnx(odt, &dt)) {
		ir_error(c, IR_ERR_UNSUPPORTED, "%s: dtype %s is not supported", what,
		         fe_onnx_dtype_name(odt));
		return -1;
	}
	if (t->segment) {
		ir_error(c, IR_ERR_UNSUPPORTED, "%s: segmented tensors are not supported", what);
		return -1;
	}
	if (fe_check_dims(c, what, (int64_t)t->n_dims, t->dims))
		return -1;
	const IrType *ty = ir_type(c, dt, (int)t->n_dims, t->dims);
	if (!ty)
		return -1;
	size_t numel = (size_t)ty->numel, es = ir_dtype_size(dt), bytes = numel * es;
	void *data = ir_arena_alloc(a, bytes ? bytes : 1);
	size_t ntyped = 0;
	const char *field = "";
	typed_field(t, dt, &field, &ntyped);
	if (t->has_data_location &&
	    t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
		if (read_external(c, what, t, dir, data, bytes))
			return -1;
		from_le(data, numel, es, dt);
	} else if (t->has_raw_data && (t->raw_data.len > 0 || ntyped == 0)) {
		if (t->raw_data.len != bytes) {
			ir_error(c, IR_ERR_INPUT,
			         "%s: raw_data has %zu bytes but the shape needs %zu (%zu x %s)",
			         what, t->raw_data.len, bytes, numel, ir_dtype_name(dt));
			return -1;
		}
		if (bytes)
			memcpy(data, t->raw_data.data, bytes);
		from_le(data, numel, es, dt);
	} else if (decode_typed(c, what, t, dt, numel, data)) {
		return -1;
	}
	out->type = ty;
	out->data = data;
	return 0;
}

/* ---- files ---- */

int fe_read_file(IrCtx *c, const char *path, uint8_t **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not block us */
	if (fd < 0) {
		ir_error(c, IR_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	int rc = -1;
	uint8_t *b = NULL;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		ir_error(c, IR_ERR_INPUT, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size == 0) {
		ir_error(c, IR_ERR_INPUT, "%s: empty file", path);
		goto out;
	}
	if (st.st_size > INT32_MAX) {
		ir_error(c, IR_ERR_INPUT,
		         "%s: larger than 2 GiB, the protobuf limit (large weights belong in "
		         "external data)",
		         path);
		goto out;
	}
	size_t n = (size_t)st.st_size;
	b = malloc(n);
	if (!b)
		abort();
	for (size_t got = 0; got < n;) {
		ssize_t r = read(fd, b + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			ir_error(c, IR_ERR_INPUT, "%s: read error: %s", path,
			         r < 0 ? strerror(errno) : "file shrank while reading");
			goto out;
		}
		got += (size_t)r;
	}
	*buf = b;
	*len = n;
	b = NULL;
	rc = 0;
out:
	free(b);
	close(fd);
	return rc;
}

/* The folder of path, resolved (malloc'd), or NULL. */
static char *folder_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *d;
	if (!slash)
		d = strdup(".");
	else if (slash == path)
		d = strdup("/");
	else
		d = strndup(path, (size_t)(slash - path));
	if (!d)
		abort();
	char *r = realpath(d, NULL);
	free(d);
	return r;
}

int fe_tensor_read(IrCtx *c, IrArena *a, const char *path, const char **name, const IrType **type,
                   void **data)
{
	uint8_t *buf;
	size_t len;
	if (fe_read_file(c, path, &buf, &len))
		return -1;
	Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, buf);
	free(buf);
	if (!t) {
		ir_error(c, IR_ERR_INPUT,
		         "%s: not a valid ONNX tensor file (protobuf parse failed)", path);
		return -1;
	}
	char *what = ir_arena_printf(a, "%s: tensor '%s'", path, t->name ? t->name : "");
	char *dir = folder_of(path);
	FeConst k;
	int rc = fe_tensor_decode(c, a, t, what, dir, &k);
	free(dir);
	if (rc == 0) {
		*name = ir_arena_strdup(a, t->name ? t->name : "");
		*type = k.type;
		*data = (void *)k.data;
	}
	onnx__tensor_proto__free_unpacked(t, NULL);
	return rc;
}

int fe_tensor_write(IrCtx *c, const char *path, const char *name, const IrType *type,
                    const void *data)
{
	int odt = fe_dtype_to_onnx(type->dt);
	if (odt == ONNX__TENSOR_PROTO__DATA_TYPE__UNDEFINED) {
		ir_error(c, IR_ERR_INPUT, "%s: cannot write a %s tensor (decode it to f32 first)",
		         path, ir_dtype_name(type->dt));
		return -1;
	}
	size_t es = ir_dtype_size(type->dt), numel = (size_t)type->numel, bytes = numel * es;
	uint8_t *raw = malloc(bytes ? bytes : 1);
	if (!raw)
		abort();
	if (bytes)
		memcpy(raw, data, bytes);
	if (type->dt == IR_DT_BOOL)
		for (size_t i = 0; i < numel; i++)
			raw[i] = raw[i] != 0;
	else
		from_le(raw, numel, es, type->dt); /* the swap is its own inverse */

	Onnx__TensorProto t = ONNX__TENSOR_PROTO__INIT;
	int64_t dims[IR_MAX_RANK];
	for (int i = 0; i < type->rank; i++)
		dims[i] = type->dims[i];
	t.n_dims = (size_t)type->rank;
	t.dims = dims;
	t.has_data_type = 1;
	t.data_type = odt;
	t.name = (char *)(name ? name : "");
	t.has_raw_data = 1;
	t.raw_data.len = bytes;
	t.raw_data.data = raw;
	size_t n = onnx__tensor_proto__get_packed_size(&t);
	uint8_t *buf = malloc(n ? n : 1);
	if (!buf)
		abort();
	onnx__tensor_proto__pack(&t, buf);
	free(raw);

	int rc = -1;
	FILE *f = fopen(path, "wb");
	if (!f) {
		ir_error(c, IR_ERR_RUNTIME, "%s: cannot create: %s", path, strerror(errno));
	} else {
		int bad = fwrite(buf, 1, n, f) != n;
		if (fclose(f) || bad)
			ir_error(c, IR_ERR_RUNTIME, "%s: write error: %s", path, strerror(errno));
		else
			rc = 0;
	}
	free(buf);
	return rc;
}
