/*
 * tests/unit/check.h: the unit tests' one assertion. Each test file has
 * its own main() that ends with `return check_done();`, which prints
 * "N passed, M failed" and returns the exit status.
 */
#ifndef CALGATE_CHECK_H
#define CALGATE_CHECK_H

#include <stdio.h>

static int check_pass, check_fail;

#define check(cond, ...) do {						\
	if (cond) {							\
		check_pass++;						\
	} else {							\
		check_fail++;						\
		fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);	\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
	}								\
} while (0)

static inline int
check_done(void)
{
	fflush(stderr);
	printf("%d passed, %d failed\n", check_pass, check_fail);
	return check_fail ? 1 : 0;
}

#endif
