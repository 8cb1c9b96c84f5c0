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

#include "response.h"

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

/* journal.c: the feed journal on disk */
enum journal_policy { JOURNAL_ALWAYS, JOURNAL_BATCH, JOURNAL_OFF };

struct journal;

struct journal_stats {
	uint64_t	snapshot_revisions;	/* read from a snapshot */
	size_t		snapshot_bytes;
	uint64_t	records;	/* replayed */
	size_t		bytes;
	size_t		bytes_dropped;	/* torn tail or --repair cut */
	size_t		segments;
	double		seconds;
	bool		repair_cut;
	uint64_t	repair_max_version;	/* highest version --repair dropped */
	uint64_t	end_version;	/* in: the snapshot's; out: the last record's */
	uint64_t	lost_records;	/* acknowledged, missing at the end (--repair) */
};

/*
 * Called on the loop when the writer is done with a job: err 0 and the
 * records now durable, or the errno of a failed write (nothing durable).
 * A rotation reports (0, 0).
 */
typedef void (*journal_done_cb)(void *arg, int err, size_t records);
/* Applies one replayed record's payload: 0 or -1 with err. */
typedef int (*journal_apply_cb)(void *arg, const char *payload, size_t len,
    struct tally_error *err);

#define JOURNAL_REPAIR	0x1	/* cut at a corrupt record instead of refusing */
#define JOURNAL_CHECK	0x2	/* read only: change nothing on disk */
#define JOURNAL_EMPTY_OK 0x4	/* start empty although a journal was there */

/*
 * Replay DIR's journal from sequence first_seq (what a snapshot does not
 * cover) through `apply`, then open it for appending (not with
 * JOURNAL_CHECK).  NULL with every problem in diag.
 */
struct journal	*journal_open(const char *dir, enum journal_policy policy,
		    long batch_ms, uint64_t first_seq, unsigned flags,
		    journal_apply_cb apply, void *arg, struct journal_stats *st,
		    struct tally_diag *diag);
/* Before journal_start: append and sync records now.  0 or -1. */
int		 journal_append_now(struct journal *j, const char *buf,
		    size_t len, size_t records);
/* Start the writer thread; `done` runs on the loop after each job. */
int		 journal_start(struct journal *j, struct event_base *base,
		    journal_done_cb done, void *arg);
/* Hand one buffer of records (taken) to the writer. -1 if a job is out. */
int		 journal_submit(struct journal *j, char *buf, size_t len,
		    size_t records);
/* Move to a new segment at the next sequence, on the writer. -1 if busy. */
int		 journal_rotate(struct journal *j);
bool		 journal_busy(const struct journal *j);
/* Seconds the job now out has been with the writer; 0 when none is. */
double		 journal_busy_for(const struct journal *j);
uint64_t	 journal_next_seq(const struct journal *j);
/*
 * Stop the writer (it syncs what the policy left unsynced) and close.
 * -1 when a sync failed: then what was written is not known to be durable.
 */
int		 journal_close(struct journal *j);
const char	*journal_policy_name(enum journal_policy p);
/* fdatasync latency histogram: upper bounds in seconds, then +Inf. */
#define JOURNAL_SYNC_BUCKETS	12
extern const double journal_sync_bounds[JOURNAL_SYNC_BUCKETS];
/* Per-bucket counts (not cumulative; JOURNAL_SYNC_BUCKETS + 1) and sum. */
void		 journal_sync_histogram(const struct journal *j,
		    uint64_t *buckets, double *sum);

/* snapshot.c: the whole tally in one file */
struct snapshot_store {
	int				 fd;	/* the loaded snapshot, or -1 */
	const struct tally_election	*election;	/* borrowed: the core's */
};

/*
 * Load the newest DATA_DIR/snapshot-*.snap into s (older revisions stay on
 * disk, readable through store); *next_seq is the first journal sequence
 * it does not cover (1 without a snapshot), *chain the core's record chain
 * at that point (unchanged without one), *stamps the views' stamps it
 * kept (core_stamps_dump; a new reference, or NULL).  -1 with diag.
 */
int	snapshot_load(const char *dir, struct tally_state *s, uint64_t *next_seq,
	    uint64_t *chain, struct json_t **stamps, struct snapshot_store *store,
	    struct journal_stats *stats, struct tally_diag *diag);
/* Write s as snapshot-<next_seq>.snap, atomically.  -1 with diag. */
int	snapshot_write(const char *dir, const struct tally_state *s,
	    uint64_t next_seq, uint64_t chain, struct json_t *stamps,
	    const struct snapshot_store *old,
	    struct tally_diag *diag);
/*
 * Remove older snapshots and the journal segments wholly before `keep`
 * (journal_closed: the journal ends at `keep`, so every segment that
 * starts before it is covered).
 */
void	snapshot_prune(const char *dir, uint64_t keep, bool journal_closed);
/* The tally_revision_loader for revisions kept in the loaded snapshot. */
struct tally_feed *snapshot_load_revision(void *ctx,
	    const struct tally_revision *rev, char *received_at);
void	snapshot_store_close(struct snapshot_store *store);
/*
 * The snapshot up to `seq` was written: older revisions it holds leave
 * memory and are read from it (the store moves to it).  -1 with diag, and
 * nothing changed.
 */
int	snapshot_adopt(const char *dir, uint64_t seq, struct tally_state *s,
	    struct snapshot_store *store, size_t *stored, struct tally_diag *diag);

/* core.c: the commit core (election, tally, log, group commit) */
struct core;

enum core_outcome_kind {
	CORE_APPLIED,		/* durable and applied as `version` */
	CORE_DUPLICATE,		/* every feed repeats what is applied */
	CORE_REJECTED,		/* err says why (stale, conflict, memory) */
	CORE_UNAVAILABLE,	/* the log could not write it (log_err) */
	CORE_STOPPING,		/* shutting down; not known to be durable */
};

struct core_outcome {
	enum core_outcome_kind	 kind;
	uint64_t		 version;
	const struct tally_error *err;
	int			 log_err;
	size_t			 n;		/* the request's feeds: */
	const size_t		*province;
	const uint64_t		*revision;
	const enum tally_check	*chk;
};

/* The answer to a core_submit; may run inside core_submit itself. */
typedef void (*core_done_fn)(void *ctx, const struct core_outcome *out);
/* A new version and the provinces whose views it changed (borrowed). */
typedef void (*core_publish_fn)(void *arg, uint64_t version,
    const size_t *changed, size_t n);

/* How far a log that others also write is behind, for /healthz. */
struct core_log_status {
	const char	*node;		/* this node's name */
	const char	*stream;
	const char	*leader;	/* the stream leader's server name */
	uint64_t	 log_last;	/* the last sequence the log reported */
	uint64_t	 lag;		/* log_last - version */
	bool		 stale;		/* cut off: no recent word from the log */
	bool		 connected;
	uint64_t	 unacked;	/* records published, not yet answered */
};

/*
 * The log behind the core: the local journal, or a replicated stream.
 *
 * The journal takes whole rounds (append) and answers with core_log_done;
 * the core applies a round when it is durable.  A replicated log (cluster
 * mode, daemon/cluster.c) orders records itself: the core hands it one
 * record per request (publish); the log answers core_log_acked(token) and
 * delivers every record of the log, ours and other nodes', in order through
 * core_log_record, which is where they are applied.  Exactly one of append
 * and publish is set.
 */
struct core_log_ops {
	const char	*name;
	/* Take `records` encoded records; core_log_done follows. */
	int		(*append)(void *log, char *buf, size_t len,
			    size_t records);
	uint64_t	(*next_seq)(void *log);
	bool		(*busy)(void *log);
	/*
	 * Publish one record payload (borrowed) for `province` whose feed is
	 * `f` (borrowed; NULL for a lot); core_log_acked(token) follows,
	 * once.  -1: not sent (no acknowledgement follows).
	 */
	int		(*publish)(void *log, const char *payload, size_t len,
			    size_t province, const struct tally_feed *f,
			    uint64_t expect_seq, void *token);
	void		(*status)(void *log, struct core_log_status *st);
};

enum core_ack {
	CORE_ACK_OK,		/* stored at seq (dup: an earlier copy is) */
	CORE_ACK_WRONG_LAST,	/* another record of the province is at seq */
	CORE_ACK_UNAVAILABLE,	/* not known to be stored */
};

/*
 * What a validator is made of: the version that last changed a view, a
 * digest of the history up to it and of the definition, and its journaled
 * time.  The same stamp never names two different bodies.
 */
struct core_stamp {
	uint64_t	version;
	uint64_t	digest;
	time_t		at;
	bool		sec_shared;	/* another version in the same second */
};

struct core_stats {
	uint64_t	feeds_applied;
	uint64_t	feeds_duplicate;
	uint64_t	log_failures;
	int		log_err;	/* the last write failed (errno), or 0 */
	time_t		log_err_at;	/* since when */
};

/* Takes e on every path; `path` is its file (for its time). */
struct core	*core_create(struct tally_election *e, const char *path,
		    struct tally_diag *diag);
void		 core_destroy(struct core *c);
void		 core_set_log(struct core *c, const struct core_log_ops *ops,
		    void *log);
/* The log's completion (a journal_done_cb; arg: the core). */
void		 core_log_done(void *arg, int err, size_t records);
/* A replicated log's answer to publish(token); on the loop. */
void		 core_log_acked(struct core *c, void *token, enum core_ack ack,
		    uint64_t seq, bool duplicate);
/*
 * The record at log position seq (payload borrowed), in log order, for
 * `province` (SIZE_MAX: not a province's subject).  Every node applies the
 * same records with the same decisions: version == seq afterwards.
 */
void		 core_log_record(struct core *c, uint64_t seq,
		    const char *payload, size_t len, size_t province);
/* Answer 503 to published records the log left waiting too long. */
void		 core_log_tick(struct core *c, time_t now);
/* The log's name and, for a replicated log, its status (else false). */
const char	*core_log_name(const struct core *c);
bool		 core_log_status(const struct core *c,
		    struct core_log_status *st);
/* Replay one record at start (a journal_apply_cb; arg: the core). */
int		 core_replay(void *arg, const char *payload, size_t len,
		    struct tally_error *err);
/* Start-up is over: every view's stamp becomes the current one. */
void		 core_started(struct core *c);
uint64_t	 core_chain(const struct core *c);
void		 core_set_chain(struct core *c, uint64_t chain);
/* Per province: [version, chain, at] of its stamp, for the snapshot; NULL
 * when not known.  _load takes them back (-1: unusable, current stamps). */
struct json_t	*core_stamps_dump(const struct core *c);
int		 core_stamps_load(struct core *c, const struct json_t *a);
/*
 * Submit a request's feeds (the array and the feeds are taken on every
 * path).  done(ctx, outcome) runs exactly once, now or when the round is
 * durable.  -1 (ENOMEM) without calling done.
 */
int		 core_submit(struct core *c, struct tally_feed **feeds, size_t n,
		    core_done_fn done, void *ctx);
/*
 * Submit a lot (taken on every path) for its province's pending tie: the
 * same queue, log and answer as feeds (one record, one version; chk[0]
 * NEW or DUPLICATE).  -1 (ENOMEM) without calling done.
 */
int		 core_submit_lot(struct core *c, struct tally_lot *lot,
		    core_done_fn done, void *ctx);
int		 core_subscribe(struct core *c, core_publish_fn fn, void *arg);
/*
 * Take e (on every path) as the election in force, with a new empty
 * tally; refused (-1 with diag) once anything is counted or waits.
 */
int		 core_swap_definition(struct core *c, struct tally_election *e,
		    const char *path, struct tally_diag *diag);
/* Stop: new submissions are answered CORE_STOPPING; the queue goes on. */
void		 core_drain(struct core *c);
/* Stop now: everything waiting is answered CORE_STOPPING. */
void		 core_abandon(struct core *c);
bool		 core_idle(const struct core *c);	/* nothing waits */
bool		 core_round_idle(const struct core *c);	/* nothing in the log */
struct tally_state *core_state(struct core *c);
const struct tally_election *core_election(const struct core *c);
/* SIZE_MAX: the whole tally's stamp; else a province's. */
const struct core_stamp *core_stamp(const struct core *c, size_t province);
uint64_t	 core_definition_digest(const struct core *c);
time_t		 core_definition_time(const struct core *c);
const struct core_stats *core_stats(const struct core *c);

/* cluster.c: the replicated log on NATS JetStream (docs/CLUSTER.md) */
struct cluster;

/* Whether this tallyd was built with libnats. */
bool		 cluster_supported(void);
/*
 * Connect to cf->cluster_urls and find or create the stream.  NULL with
 * diag.  The stream's identity (its creation time) is *epoch.
 */
struct cluster	*cluster_create(const struct config *cf,
		    const struct tally_election *e, uint64_t *epoch,
		    struct tally_diag *diag);
/* Start consuming after sequence `applied`, into c; on base's loop. */
int		 cluster_start(struct cluster *cl, struct event_base *base,
		    struct core *c, uint64_t applied);
void		 cluster_destroy(struct cluster *cl);
extern const struct core_log_ops cluster_log_ops;
/* The Tallyd-Node header's value for core c (a server_set_header fn). */
const char	*cluster_header(void *c);

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

/* server.c: the listeners on the event loop (server.h) */
#include "server.h"

/* http_strict.c: HTTP that libmicrohttpd accepts and tallyd refuses */
#include "http_strict.h"

/* api.c: routing and views of the HTTP API v1 */
struct api;

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

/* util.c */
/* RFC 3339 UTC with seconds: "2018-05-14T18:00:00Z". buf >= 21 bytes. */
void	time_rfc3339(time_t t, char *buf, size_t len);
/* RFC 7231 IMF-fixdate for Last-Modified. buf >= 30 bytes. */
void	time_http(time_t t, char *buf, size_t len);
/* fsync a directory, so that a rename or a new file in it is durable. */
int	fsync_dir(const char *dir);

#endif
