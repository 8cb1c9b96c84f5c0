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

/* The leaf modules, each with its own header (issue 22). */
#include "auth.h"
#include "config.h"
#include "http_strict.h"
#include "log.h"
#include "notify.h"
#include "util.h"

struct event_base;

/* The commit core and the logs behind it (issue 22). */
#include "journal.h"
#include "snapshot.h"
#include "datadir.h"
#include "core.h"
#include "cluster.h"

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

/*
 * api.h: the HTTP API as main.c and server.c see it.  The API's own
 * modules (routes, call, get, ingest, live, views, metrics_http, reply,
 * cors) have a header each, included only where they are used.
 */
#include "api.h"
#include "metrics.h"

/* page.c, generated from www/ by www/embed.py: the election-night page */
extern const char	 page_html[];	/* page_html_len bytes and a NUL */
extern const size_t	 page_html_len;
extern const uint64_t	 page_html_digest;	/* FNV-1a of the bytes */

#endif
