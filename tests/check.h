/*
 * check.h - a minimal test harness for tallyd's C tests.
 *
 * CHECK(cond, fmt, ...) records a failure with file:line and a message and
 * carries on; check_done() prints "N checks, N failed" and returns the exit
 * status for main().  A test that checks nothing fails, so a test cannot pass
 * by accident.
 */
#ifndef TALLY_CHECK_H
#define TALLY_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static unsigned long check_count, check_failed;

#define CHECK(cond, ...) do {						\
	check_count++;							\
	if (!(cond)) {							\
		check_failed++;						\
		fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__,	\
		    __LINE__, #cond);					\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
	}								\
} while (0)

#define CHECK_EQ_U(a, b, ...) do {					\
	unsigned long long check_a_ = (a), check_b_ = (b);		\
	check_count++;							\
	if (check_a_ != check_b_) {					\
		check_failed++;						\
		fprintf(stderr, "%s:%d: %s == %s: %llu != %llu: ",	\
		    __FILE__, __LINE__, #a, #b, check_a_, check_b_);	\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
	}								\
} while (0)

static inline int
check_done(const char *name)
{
	printf("%s: %lu checks, %lu failed\n", name, check_count, check_failed);
	if (check_count == 0) {
		fprintf(stderr, "%s: no checks ran\n", name);
		return 1;
	}
	return check_failed == 0 ? 0 : 1;
}

#endif
