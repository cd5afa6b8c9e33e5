/* testlib.c: counters and the closing line shared by the unit test programs. */
#include "testlib.h"

int t_failures;
int t_checks;

int t_finish(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, t_checks - t_failures, t_failures);
	return t_failures ? 1 : 0;
}
