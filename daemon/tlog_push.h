/*
 * tlog_push.h - tallyd asks witnesses to cosign its checkpoints (C2SP
 * tlog-witness, the add-checkpoint call; tlog_push.c), over a minimal HTTP
 * client of its own (tlog_push_http.c).
 *
 * Threads: the loop thread [L] calls everything here but
 * tlog_push_http_post, which runs on each witness's own thread [W].
 */
#ifndef TALLYD_TLOG_PUSH_H
#define TALLYD_TLOG_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

struct config;
struct event_base;
struct tally_tlog_key;
struct tlogd;

#define TLOG_PUSH_MAX	16	/* witnesses in the configuration */

/* One `witness` setting: "http://HOST:PORT[/PREFIX] VKEY". */
struct tlog_push_target {
	char	host[256];
	char	port[8];
	char	path[256];	/* PREFIX + "/add-checkpoint" */
	char	url[300];	/* as given, for messages */
};

/*
 * Parse one `witness` value into t and k (either may be NULL).  0, or -1
 * with why (what to fix).  config.c checks every line with it.
 */
int	tlog_push_parse(const char *value, struct tlog_push_target *t,
	    struct tally_tlog_key *k, char *why, size_t len);
/*
 * Start pushing the checkpoints of t to the witnesses cf lists (none: a
 * no-op): one thread per witness, a timer on base every
 * cf->witness_interval ms.  0, or -1 (logged; the log works on without
 * witnesses).
 */
int	tlog_push_start(struct tlogd *t, struct event_base *base,
	    const struct config *cf);
/* Stop the threads (an HTTP request in flight is abandoned) and free. */
void	tlog_push_stop(void);
/* At exit: tlog_push_stop, then what tlog_witness.c keeps is freed. */
void	tlog_push_finish(void);
/* Prometheus lines for each witness (a metrics hook). */
void	tlog_push_metrics(FILE *f);
/* "witnesses": [...] in /healthz (nothing without witnesses). */
void	tlog_push_health(json_t *o);

/* tlog_push_http.c */
struct tlog_push_resp {
	int	 status;	/* 0: no answer (err says why) */
	char	*body;		/* new, NUL-terminated */
	size_t	 len;
	char	 type[64];	/* Content-Type */
	char	 err[256];
};
/*
 * POST body to http://host:port/path and read the answer (at most 64
 * KiB), all within timeout_ms; a byte readable on abort_fd abandons it.
 * 0, or -1 with r->err.  [W]
 */
int	tlog_push_http_post(const struct tlog_push_target *t,
	    const char *body, size_t len, int timeout_ms, int abort_fd,
	    struct tlog_push_resp *r);
/*
 * The same with another method and headers ("Name: value\r\n" each, or
 * ""; Content-Length is added): publish.c's requests to nchan.  [W]
 */
int	tlog_push_http_request(const struct tlog_push_target *t,
	    const char *method, const char *headers, const char *body,
	    size_t len, int timeout_ms, int abort_fd, struct tlog_push_resp *r);

#endif
