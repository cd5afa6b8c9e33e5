/* util.c: error formatting, the monotonic clock and command-line numbers, shared by the
 * runtime files, the lnsc command and the trainers it compiles.
 *
 * Errors travel as a status code plus a caller-owned buffer (`char *err, size_t errn`):
 * lnsrt_fmt_err writes the message and returns the nonzero status in one expression, so a
 * failing path is a single return. Nothing here keeps state between calls.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

#include "runtime/lnsrt.h"

int lnsrt_fmt_err(char *err, size_t errn, const char *fmt, ...)
{
	if (err && errn > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errn, fmt, ap);
		va_end(ap);
	}
	return -1;
}

double lnsrt_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int lnsrt_parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int lnsrt_parse_positive(const char *s, float *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 1e6)
		return -1;
	*out = (float)v;
	return 0;
}
