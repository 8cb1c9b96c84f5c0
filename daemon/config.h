/*
 * config.h - tallyd's settings (config.c): defaults, the file, the
 * command line.
 *
 * Threads: [L] everything.  main reads the settings before the loop and
 * again at SIGHUP, on the loop, where a new struct config replaces the one
 * in force (main owns it; the API, the server, metrics and the cluster
 * borrow it, on the loop or before it starts).
 */
#ifndef TALLYD_CONFIG_H
#define TALLYD_CONFIG_H

#include <tally/diag.h>

#include "log.h"

/* The `fsync` setting's values; journal.c acts on them. */
enum journal_policy { JOURNAL_ALWAYS, JOURNAL_BATCH, JOURNAL_OFF };

struct config {
	char		*path;			/* the file read, or NULL */
	char		*election;		/* election definition file */
	char		*contests;		/* more contests' definitions,
						   one path a line; NULL: none */
	char		*listen;		/* public HOST:PORT */
	char		*ingest_listen;		/* ingest HOST:PORT or NULL: same */
	char		*data_dir;
	char		*log_file;		/* NULL: stderr */
	enum log_level	 log_level;
	long		 max_age;		/* Cache-Control max-age, seconds */
	long		 body_limit;		/* bytes */
	long		 connection_timeout;	/* seconds */
	long		 connection_limit;	/* per listener */
	char		*token_file;		/* NULL: env or generated token */
	int		 fsync_policy;		/* enum journal_policy */
	long		 snapshot_every;	/* journal records; 0: only at exit */
	long		 fsync_batch_ms;	/* with JOURNAL_BATCH */
	long		 ingest_rate;		/* feeds a second per token; 0: any */
	long		 ingest_burst;		/* feeds at once per token */
	char		*backup_dir;		/* SIGUSR1 backups; NULL: data_dir */
	long		 sse_heartbeat;		/* seconds between comments */
	long		 sse_stall_timeout;	/* seconds a stream may not drain */
	long		 sse_max_clients;	/* event streams open at once */
	long		 sse_coalesce_ms;	/* at most an event per contest
						   per this many ms (0: each
						   version) */
	long		 keep_versions;		/* /v1/versions/{n}/... kept */
	char		*log_key;		/* NULL: DATA_DIR/tlog/key */
	long		 transparency_log;	/* 1: the log of versions */
	char		*witnesses;		/* `witness` lines: "URL KEY"
						   a line; NULL: none */
	long		 witness_timeout;	/* seconds per request */
	long		 witness_interval;	/* ms between pushes */
	char		*cors_origin;		/* NULL: no CORS headers */
	/* Cluster mode (docs/CLUSTER.md): on when cluster_urls is set. */
	char		*cluster_urls;		/* "nats://h:p,nats://h:p" */
	char		*cluster_stream;	/* NULL: "TALLY" */
	long		 cluster_replicas;	/* the stream's, when created */
	char		*cluster_node;		/* this node's name; NULL: listen */
	long		 per_ip_connection_limit; /* per listener; 0: none */
	long		 request_timeout;	/* seconds to send a request */
	long		 journal_stall_timeout;	/* seconds a write or sync may
						   take before the watchdog
						   stops pinging */
	long		 body_memory;		/* bytes of bodies buffered */
	char		*tls_cert;		/* PEM files of the ingest */
	char		*tls_key;		/*   listener; NULL: plain */
	char		*public_tls_cert;	/* and of the public one */
	char		*public_tls_key;
	char		*publish_url;		/* push front's publisher
						   (publish.c); NULL: none */
};

/* Built-in defaults; path fields are new strings. 0 or -1 (ENOMEM). */
int	config_defaults(struct config *cf);
/*
 * Read `path` over the values in cf.  Relative paths in the file are taken
 * relative to the file's directory.  Every problem is added to diag as
 * "path:line: problem"; returns 0 when there was none.
 */
int	config_load(struct config *cf, const char *path, struct tally_diag *diag);
/* Set one key from the command line ("listen", "data_dir", ...). */
int	config_set(struct config *cf, const char *key, const char *value,
	    struct tally_diag *diag);
void	config_finish(struct config *cf);
/* Split "HOST:PORT" or "[V6]:PORT". 0 or -1. host must hold 256 bytes. */
int	config_split_hostport(const char *s, char *host, unsigned *port);
/*
 * A reload: log each setting that changed between cur (in force) and next
 * (just read), live ones at info, ones that need a restart as a warning;
 * those keep cur's value in next (swapped), so next is what will be in
 * force.  Returns how many wait for a restart.
 */
size_t	config_reload_note(struct config *cur, struct config *next);

#endif
