/* bench.h - what the benchmark programs share: a seeded generator, a clock. */
#ifndef TALLY_BENCH_H
#define TALLY_BENCH_H

#include <stdint.h>
#include <time.h>

/* splitmix64: small and seeded, so every run measures the same inputs. */
static inline uint64_t
bench_rng(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline double
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

#endif
