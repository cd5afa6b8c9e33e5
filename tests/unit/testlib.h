/* testlib.h: the tiny assertion helpers every unit test program uses. */
#ifndef LNSC_TESTLIB_H
#define LNSC_TESTLIB_H
#include <stdio.h>

extern int t_failures;
extern int t_checks;

#define CHECK(cond)                                                                  \
	do {                                                                             \
		t_checks++;                                                                  \
		if (!(cond)) {                                                               \
			t_failures++;                                                            \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                            \
	} while (0)

#define CHECK_MSG(cond, ...)                                                 \
	do {                                                                     \
		t_checks++;                                                          \
		if (!(cond)) {                                                       \
			t_failures++;                                                    \
			fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                    \
			fputc('\n', stderr);                                             \
		}                                                                    \
	} while (0)

/* Prints "N passed, N failed" and returns the process exit code. */
int t_finish(const char *name);

#endif
