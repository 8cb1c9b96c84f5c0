/*
 * tallyd.h - the daemon's private header, one section per file.
 */
#ifndef TALLYD_H
#define TALLYD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <tally/tally.h>

struct event_base;

/* log.c */
enum log_level { LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void	log_init(enum log_level level, const char *path);
int	log_reopen(const char *path);
void	log_setlevel(enum log_level level);
/* During a background start: fatal messages are written to fd too. */
void	log_startup_fd(int fd);
/* The descriptor the log writes to (kept open by a snapshot child). */
int	log_fd(void);
/* stderr is systemd's journal: lines carry "<prio>", no timestamp. */
bool	log_to_journal(void);
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Every problem of diag, one warning each (and how many did not fit). */
struct tally_diag;
void	log_diag(const struct tally_diag *diag);
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
/*
 * For messages from libraries (libevent, libmicrohttpd): at most `burst`
 * lines per second per source, then one line saying how many were dropped.
 */
void	log_limited(const char *source, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* The same limit at info level (refused feeds: a flood is not a warning). */
void	log_info_limited(const char *source, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* config.c */
struct config {
	char		*path;			/* the file read, or NULL */
	char		*election;		/* election definition file */
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
	long		 keep_versions;		/* /v1/versions/{n}/... kept */
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

#include "journal.h"
#include "snapshot.h"
#include "datadir.h"
#include "core.h"

#include "cluster.h"

/* auth.c: bearer tokens for feeds */
struct auth;
struct token;

/*
 * Tokens from the token file, TALLYD_INGEST_TOKEN, or a generated one
 * (with `check`, nothing is generated or written).
 */
struct auth	*auth_create(const struct config *cf,
		    const struct tally_election *e, bool check,
		    struct tally_diag *diag);
void		 auth_destroy(struct auth *a);
const char	*auth_source(const struct auth *a);
/* 0 with *who set when the Authorization header holds a known token. */
int		 auth_check(const struct auth *a, const char *header,
		    const struct token **who);
bool		 auth_may_post(const struct token *t, const char *province);
/*
 * May t make one more request at time `now` (monotonic seconds)?  false
 * with *retry_after (seconds) when it is over its rate.
 */
bool		 auth_take(const struct auth *a, const struct token *t,
		    double now, double *retry_after);
bool		 auth_ready(const struct auth *a, const struct token *t,
		    double now, double *retry_after);
const char	*auth_label(const struct token *t);

/* server.c: the listeners on the event loop; the only user of libmicrohttpd */
struct server;
struct api;

/*
 * A response body with its headers, shared by every request that sends it
 * (reference-counted by libmicrohttpd).
 */
struct http_body;

/* bytes: taken (freed when the last user is done) or static. */
struct http_body *http_body_new(char *bytes, size_t len, bool take);
void		 http_body_header(struct http_body *b, const char *name,
		    const char *value);
/* Drop our reference. */
void		 http_body_free(struct http_body *b);

/*
 * Bytes shared by many responses and event streams (reference-counted;
 * the loop thread only).  An event of a version is made once and every
 * subscriber sends the same chunk.
 */
struct http_chunk;

/* A new chunk holding a then b (copied); NULL without memory. */
struct http_chunk *http_chunk_new(const char *a, size_t alen, const char *b,
		    size_t blen);
struct http_chunk *http_chunk_ref(struct http_chunk *c);
void		 http_chunk_unref(struct http_chunk *c);
const char	*http_chunk_bytes(const struct http_chunk *c, size_t *len);
/* A body sending c's bytes (c borrowed: the body takes its own reference). */
struct http_body *http_body_from_chunk(struct http_chunk *c);

/* What the server needs to answer one request. */
struct http_reply {
	unsigned		 status;
	struct http_body	*body;		/* borrowed from a cache, or new */
	bool			 owned;		/* body freed after queueing */
	bool			 pending;	/* answered later: server_resume */
	struct http_chunk	*stream;	/* an event stream starting with
						   this (taken): status 200 */
};

/* One complete request, as the server hands it to the API. */
struct http_request {
	bool			 ingest;	/* arrived on a feed listener */
	const char		*method;
	const char		*path;
	const char		*if_none_match;
	const char		*if_modified_since;
	const char		*authorization;
	const char		*content_type;
	const char		*content_encoding;
	const char		*last_event_id;
	bool			 gzip_ok;	/* Accept-Encoding allows gzip */
	const char		*body;
	size_t			 body_len;
	void			*conn;		/* the server's, for http_arg */
	void			*ctx;		/* the server's, for server_resume */
};

/* A query argument of the request, or NULL. */
const char	*http_arg(const struct http_request *rq, const char *name);
/* Every query argument of the request, in order, repeats included (a
 * bare `?name` has value NULL). */
void		 http_args_each(const struct http_request *rq,
		    void (*fn)(void *, const char *, const char *), void *arg);

struct server	*server_create(struct event_base *base, const struct config *cf,
		    struct tally_diag *diag);
/* Every request must be answered first (server_parked() == 0). */
void		 server_destroy(struct server *srv);
/* Stop accepting new connections (shutdown begins). */
void		 server_quiesce(struct server *srv);
/* Connections currently open on all listeners. */
unsigned	 server_connections(const struct server *srv);
/* Listener i (0, 1): its address, whether it takes feeds, connections. */
int		 server_listener(const struct server *srv, size_t i,
		    const char **addr, bool *ingest, unsigned *connections);
/* Requests begun and not yet completed. */
unsigned	 server_in_flight(const struct server *srv);
/* Requests suspended until their answer (waiting on the log). */
unsigned	 server_parked(const struct server *srv);
/* Answer a request the API left pending (reply taken). */
void		 server_resume(void *ctx, const struct http_reply *reply);
/* The loop the server runs on (for the API's timers). */
struct event_base *server_base(const struct server *srv);
/* Event streams open now, and how many of them are parked (idle). */
unsigned	 server_streams(const struct server *srv);
/*
 * A new version's events (borrowed) for every stream.  They go out after the
 * replies now being answered (a POST never waits behind the fan-out); a
 * stream still holding an earlier event it has not started to send gets only
 * the newest instead (conflated).
 */
/* c: a version's events; snap: a snapshot of it, for a stream that must
 * skip versions (both borrowed; snap may be NULL). */
void		 server_stream_publish(struct server *srv, struct http_chunk *c,
		    struct http_chunk *snap);
/* Stopping: every stream ends once what it holds is sent. */
void		 server_streams_end(struct server *srv);
/*
 * A header set on every response just before it is queued: value(arg)
 * returns it (borrowed, or NULL for none).  Cluster mode names the node.
 */
void		 server_set_header(struct server *srv, const char *name,
		    const char *(*value)(void *arg), void *arg);
/* The API that answers requests (borrowed). */
void		 server_set_api(struct server *srv, struct api *api);
/*
 * SIGHUP: read the TLS certificates and keys of cf again; new handshakes
 * use them.  -1 with diag (the ones in force stay) if one cannot be read,
 * or if TLS would be turned on or off (that takes a restart).
 */
int		 server_reload_tls(struct server *srv, const struct config *cf,
		    struct tally_diag *diag);

/* http_strict.c: HTTP that libmicrohttpd accepts and tallyd refuses */

/* What a header section says about the body that follows. */
struct http_head {
	unsigned		 content_length;	/* headers of each */
	unsigned		 transfer_encoding;
	unsigned		 host;
	bool			 chunked_only;	/* every TE is exactly chunked */
	const char		*content_encoding;	/* or NULL */
};

/* Is the raw request target free of an encoded NUL or slash in its path? */
bool		 http_strict_path(const char *raw_uri);
/*
 * Check the header section of conn (an MHD_Connection, in the headers-only
 * call; version as the access handler got it): NULL and head filled, or why
 * it is refused (a static string).  Relies on how libmicrohttpd 0.9.75
 * parses in place: see the comment in http_strict.c.
 */
const char	*http_strict_head(void *conn, const char *version,
		    struct http_head *head);

/* api.c: routing and views of the HTTP API v1 */

/* Problems go to diag; the core is borrowed. */
struct api	*api_create(struct core *core, const struct config *cf,
		    struct tally_diag *diag);
void		 api_destroy(struct api *api);
/* For /metrics, event streams and timers (borrowed). */
void		 api_set_server(struct api *api, struct server *srv);
/* More /metrics lines, written by fn(arg, f) after the API's own. */
void		 api_set_metrics(struct api *api,
		    void (*fn)(void *arg, FILE *f), void *arg);
/* Stopping: long-polls are answered now and event streams end. */
void		 api_stop_live(struct api *api);
/* How history reads revisions kept on disk. */
void		 api_set_loader(struct api *api, tally_revision_loader load,
		    void *ctx);
/*
 * After a valid reload: new tokens and settings; the new election (taken)
 * through core_swap_definition, or kept for the next restart once anything
 * is counted.  -1 with diag when the new tokens are invalid: then nothing
 * changes.
 */
int		 api_reload(struct api *api, struct tally_election *e,
		    const struct config *cf, struct tally_diag *diag);
/* Route one request; never fails (errors become JSON error replies). */
void		 api_handle(struct api *api, const struct http_request *rq,
		    struct http_reply *reply);
/*
 * Before any body byte is read (rq without a body): may this request send
 * one?  The route, method, listener, token, content type and encoding are
 * checked; false with the refusal in reply (counted) otherwise.
 */
bool		 api_admit(struct api *api, const struct http_request *rq,
		    struct http_reply *reply);
/* Count a request the server refused before the API saw it. */
void		 api_refused(struct api *api, const char *path, unsigned status,
		    const char *code);
/* An error reply in the API's JSON error shape (new body). */
void		 api_error(struct http_reply *reply, unsigned status,
		    const char *code, const char *field, const char *fmt, ...)
		    __attribute__((format(printf, 5, 6)));

/* notify.c: systemd's notification protocol over NOTIFY_SOCKET */
/* Fills buf with the current STATUS= text. */
typedef void (*notify_status_fn)(void *arg, char *buf, size_t len);

/*
 * Read NOTIFY_SOCKET and WATCHDOG_USEC (and unset them, so that children
 * do not inherit them).  0 when absent or usable, -1 when unusable.
 */
int	notify_init(void);
bool	notify_enabled(void);
/* Send one message ("READY=1", "STOPPING=1"); best effort. */
void	notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* STATUS=<text>, only when it changed. */
void	notify_status(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));
void	notify_reloading(void);
/* A loop timer: WATCHDOG=1 (when asked for) and the status from fn. */
int	notify_start(struct event_base *base, notify_status_fn fn, void *arg);
/*
 * Asked before every watchdog ping: false (with the reason in why) holds
 * the ping back, so that systemd restarts a service whose writer is stuck.
 */
typedef bool (*notify_check_fn)(void *arg, char *why, size_t len);
void	notify_set_watchdog_check(notify_check_fn fn, void *arg);
void	notify_finish(void);

/* metrics.c: what an operator alerts on (disk, fsync, listeners, age) */
struct metrics_src {
	const struct config	*cf;		/* borrowed; data_dir */
	struct journal		*journal;	/* borrowed */
	const struct server	*server;	/* borrowed */
	const struct core	*core;		/* borrowed */
	time_t			 started;
};

/* Prometheus text for src (an api_set_metrics hook; arg: the src). */
void	metrics_write(void *arg, FILE *f);

/* page.c, generated from www/ by www/embed.py: the election-night page */
extern const char	 page_html[];	/* page_html_len bytes and a NUL */
extern const size_t	 page_html_len;
extern const uint64_t	 page_html_digest;	/* FNV-1a of the bytes */

#include "util.h"

#endif
