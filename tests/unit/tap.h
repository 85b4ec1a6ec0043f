/*
 * A tiny test helper for table-driven unit tests: CHECK prints got/want on
 * failure and counts; TEST_DONE() prints the tally and returns the exit code.
 */
#ifndef TAP_H
#define TAP_H

#include <stdio.h>
#include <string.h>

static int tap_failed, tap_run;

#define CHECK(cond, ...)                                                    \
	do {                                                                \
		tap_run++;                                                  \
		if (!(cond)) {                                              \
			tap_failed++;                                       \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__,       \
				__LINE__, #cond);                           \
			fprintf(stderr, __VA_ARGS__);                       \
			fputc('\n', stderr);                                \
		}                                                           \
	} while (0)

#define CHECK_INT(got, want)                                                \
	CHECK((long long)(got) == (long long)(want), "got %lld want %lld",    \
	      (long long)(got), (long long)(want))

#define CHECK_STR(got, want)                                                \
	do {                                                                \
		const char *g_ = (got), *w_ = (want);                       \
		CHECK(g_ && w_ && strcmp(g_, w_) == 0,                      \
		      "got \"%s\" want \"%s\"", g_ ? g_ : "(null)",         \
		      w_ ? w_ : "(null)");                                  \
	} while (0)

#define TEST_DONE()                                                         \
	(printf("%d checks, %d failed\n", tap_run, tap_failed),             \
	 tap_failed ? 1 : 0)

#endif
