/*
 * metrics.h - the /metrics lines an operator alerts on (metrics.c): disk,
 * fsync histogram, descriptors, listeners, last-applied age, build.
 *
 * Threads: the loop thread only [L], as an api_set_metrics hook; every
 * source is borrowed and read there.
 */
#ifndef TALLYD_METRICS_H
#define TALLYD_METRICS_H

#include <stdio.h>
#include <time.h>

struct config;
struct core;
struct journal;
struct server;

struct metrics_src {
	const struct config	*cf;		/* borrowed; data_dir */
	struct journal		*journal;	/* borrowed */
	const struct server	*server;	/* borrowed */
	const struct core	*core;		/* borrowed */
	time_t			 started;
};

/* Prometheus text for src (an api_set_metrics hook; arg: the src). */
void	metrics_write(void *arg, FILE *f);

#endif
