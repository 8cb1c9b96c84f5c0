/*
 * tallyd.h - the daemon's private header, on its way out (issue 22): each
 * module now has a header of its own, declaring its interface and which
 * thread may call what (log.h, config.h, util.h, journal.h, snapshot.h,
 * datadir.h, core.h, cluster.h, auth.h, notify.h, metrics.h); this file
 * includes them so that every .c file compiles unchanged, and still holds
 * the server's, http_strict's, the API's and the page's sections.
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

#include "log.h"
#include "config.h"
#include "journal.h"
#include "snapshot.h"
#include "datadir.h"
#include "core.h"

#include "cluster.h"

#include "auth.h"

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

#include "notify.h"
#include "metrics.h"

/* page.c, generated from www/ by www/embed.py: the election-night page */
extern const char	 page_html[];	/* page_html_len bytes and a NUL */
extern const size_t	 page_html_len;
extern const uint64_t	 page_html_digest;	/* FNV-1a of the bytes */

#include "util.h"

#endif
