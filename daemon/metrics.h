/*
 * metrics.h - the /metrics lines an operator alerts on (metrics.c): disk,
 * fsync histogram, descriptors, listeners, last-applied age, build.
 *
 * Threads: the loop thread only [L], as an api_set_metrics hook; every
 * source is borrowed and read there.
 */
#ifndef TALLYD_METRICS_H
#define TALLYD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
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
	/* Set through the metrics_note_* calls below, on the loop [L]. */
	time_t			 backup_at;	/* last backup ended; 0: none */
	time_t			 backup_ok_at;	/* last good one ended */
	bool			 backup_ok;	/* the last one's result */
	time_t			 reload_at;	/* last SIGHUP; 0: none */
	bool			 reload_ok;
	size_t			 reload_waiting; /* settings for a restart */
	time_t			 tls_expiry[2];	/* tls_cert, public_tls_cert;
						   0: none */
};

/* Prometheus text for src (an api_set_metrics hook; arg: the src). */
void	metrics_write(void *arg, FILE *f);
/* A backup child ended (ok: it wrote the snapshot). */
void	metrics_note_backup(struct metrics_src *src, bool ok);
/* A reload ended: taken (ok) or refused; waiting: settings kept for a
 * restart (config_reload_note). */
void	metrics_note_reload(struct metrics_src *src, bool ok, size_t waiting);
/* Read the expiry of the certificates cf names (at start, at a reload). */
void	metrics_note_tls(struct metrics_src *src, const struct config *cf);

#endif
