/* util.c: error formatting and the monotonic clock shared by the runtime files.
 *
 * Errors travel as a status code plus a caller-owned buffer (`char *err, size_t errn`):
 * lnsrt_fmt_err writes the message and returns the nonzero status in one expression, so a
 * failing path is a single return. Nothing here keeps state between calls.
 */
#include "runtime/lnsrt.h"

#include <stdarg.h>
#include <time.h>

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
