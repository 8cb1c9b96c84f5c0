/*
 * tallyd.h - the daemon's private header, one section per file.
 */
#ifndef TALLYD_H
#define TALLYD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <tally/tally.h>

struct event_base;
struct MHD_Response;
struct MHD_Connection;

/* log.c */
enum log_level { LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void	log_init(enum log_level level, const char *path);
int	log_reopen(const char *path);
void	log_setlevel(enum log_level level);
/* The descriptor the log writes to (kept open by a snapshot child). */
int	log_fd(void);
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
};

/* Called on the loop when a submitted buffer is durable (err 0) or not. */
typedef void (*journal_done_cb)(void *arg, int err);

/*
 * Replay DIR's journal into s, then open it for appending.  With `repair`,
 * a corrupt record is cut off instead of refusing to start.  NULL with
 * every problem in diag.
 */
struct journal	*journal_open(const char *dir, enum journal_policy policy,
		    long batch_ms, uint64_t first_seq, struct tally_state *s,
		    bool repair, struct journal_stats *st, struct tally_diag *diag);
/* Start a new segment at the next sequence (the writer must be idle). */
int		 journal_rotate(struct journal *j, struct tally_diag *diag);
/* Start the writer thread; `done` runs on the loop after each submit. */
int		 journal_start(struct journal *j, struct event_base *base,
		    journal_done_cb done, void *arg);
/* Hand one buffer of records (taken) to the writer. -1 if one is out. */
int		 journal_submit(struct journal *j, char *buf, size_t len,
		    size_t records);
bool		 journal_busy(const struct journal *j);
uint64_t	 journal_next_seq(const struct journal *j);
/* Sync what the policy left unsynced, stop the writer, close. */
void		 journal_close(struct journal *j);
const char	*journal_policy_name(enum journal_policy p);

/* snapshot.c: the whole tally in one file */
struct snapshot_store {
	int				 fd;	/* the loaded snapshot, or -1 */
	const struct tally_election	*election;
};

/*
 * Load the newest DATA_DIR/snapshot-*.snap into s (older revisions stay on
 * disk, readable through store); *next_seq is the first journal sequence
 * it does not cover (1 without a snapshot).  -1 with diag.
 */
int	snapshot_load(const char *dir, struct tally_state *s, uint64_t *next_seq,
	    struct snapshot_store *store, struct journal_stats *stats,
	    struct tally_diag *diag);
/* Write s as snapshot-<next_seq>.snap, atomically.  -1 with diag. */
int	snapshot_write(const char *dir, const struct tally_state *s,
	    uint64_t next_seq, const struct snapshot_store *old,
	    struct tally_diag *diag);
/* Remove snapshots and journal segments before `keep`. */
void	snapshot_prune(const char *dir, uint64_t keep);
/* The tally_revision_loader for revisions kept in the loaded snapshot. */
struct tally_feed *snapshot_load_revision(void *ctx,
	    const struct tally_revision *rev, char *received_at);
void	snapshot_store_close(struct snapshot_store *store);

/* auth.c: bearer tokens for feeds */
struct auth;
struct token;

/* Tokens from the token file, TALLYD_INGEST_TOKEN, or a generated one. */
struct auth	*auth_create(const struct config *cf,
		    const struct tally_election *e, struct tally_diag *diag);
void		 auth_destroy(struct auth *a);
const char	*auth_source(const struct auth *a);
/* 0 with *who set when the Authorization header holds a known token. */
int		 auth_check(const struct auth *a, const char *header,
		    const struct token **who);
bool		 auth_may_post(const struct token *t, const char *province);
const char	*auth_label(const struct token *t);

/* server.c: the listeners on the event loop */
struct server;
struct http_reply;
struct api;
struct request;

struct server	*server_create(struct event_base *base, const struct config *cf,
		    struct tally_diag *diag);
void		 server_destroy(struct server *srv);
/* Stop accepting new connections (shutdown begins). */
void		 server_quiesce(struct server *srv);
/* Connections currently open on all listeners. */
unsigned	 server_connections(const struct server *srv);
/* Requests begun and not yet completed. */
unsigned	 server_in_flight(const struct server *srv);
/* Answer a request the API left pending (reply copied). */
void		 server_resume(void *ctx, const struct http_reply *reply);
/* The API that answers requests (borrowed). */
void		 server_set_api(struct server *srv, struct api *api);

/* api.c: the HTTP API on top of libtally */
struct api;

/* Takes e on every path; problems go to diag. */
struct api	*api_create(struct tally_election *e, const struct config *cf,
		    struct tally_diag *diag);
void		 api_destroy(struct api *api);
/* For /metrics (borrowed). */
void		 api_set_server(struct api *api, const struct server *srv);
/* Where accepted feeds go before they are applied (borrowed). */
void		 api_set_journal(struct api *api, struct journal *j);
/* The journal's completion callback (arg: the api). */
void		 api_journal_done(void *arg, int err);
/* No feed waiting for or in a journal round. */
bool		 api_idle(const struct api *api);
/* No journal round in flight: everything journaled is applied. */
bool		 api_round_idle(const struct api *api);
/* How history reads revisions kept on disk. */
void		 api_set_loader(struct api *api, tally_revision_loader load,
		    void *ctx);
struct tally_state *api_state(struct api *api);
const char	*api_election_id(const struct api *api);
/*
 * After a valid reload: new tokens and settings; the new election (taken)
 * only while nothing is counted.  -1 with diag when the new tokens are
 * invalid: then nothing changes.
 */
int		 api_reload(struct api *api, struct tally_election *e,
		    const struct config *cf, struct tally_diag *diag);

/* What the server needs to answer one request. */
struct http_reply {
	unsigned		 status;
	struct MHD_Response	*response;	/* borrowed from a cache, or new */
	bool			 owned;		/* response must be destroyed after queueing */
	bool			 pending;	/* answered later via server_resume */
};

/* One complete request, as the server hands it to the API. */
struct http_request {
	bool			 ingest;	/* arrived on the ingest listener */
	const char		*method;
	const char		*path;
	const char		*if_none_match;
	const char		*authorization;
	const char		*content_type;
	bool			 gzip_ok;	/* Accept-Encoding allows gzip */
	const char		*body;
	size_t			 body_len;
	struct MHD_Connection	*conn;		/* for query arguments */
	void			*ctx;		/* the server's handle, for server_resume */
};

/* Route one request; never fails (errors become JSON error replies). */
void	api_handle(struct api *api, const struct http_request *rq,
	    struct http_reply *reply);
/* Count a request the server refused before the API saw it. */
void	api_refused(struct api *api, const char *path, unsigned status,
	    const char *code);
/* An error reply in the API's JSON error shape (new response). */
void	api_error(struct http_reply *reply, unsigned status, const char *code,
	    const char *field, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));

/* util.c */
/* RFC 3339 UTC with seconds: "2018-05-14T18:00:00Z". buf >= 21 bytes. */
void	time_rfc3339(time_t t, char *buf, size_t len);
/* RFC 7231 IMF-fixdate for Last-Modified. buf >= 30 bytes. */
void	time_http(time_t t, char *buf, size_t len);
/* fsync a directory, so that a rename or a new file in it is durable. */
int	fsync_dir(const char *dir);

#endif
