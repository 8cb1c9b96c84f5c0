/*
 * server.h - the listeners on the event loop; with http_strict.c the only
 * code that sees libmicrohttpd.  Requests go to the handlers main.c gives
 * server_create (struct server_handlers), which answer through response.h.
 *
 * Threads: the loop thread only [L].  libmicrohttpd runs without a thread
 * of its own (MHD_USE_EPOLL, its epoll fd an event of the loop), so every
 * callback, handler and function here runs on the loop.
 */
#ifndef TALLYD_SERVER_H
#define TALLYD_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "response.h"

struct config;
struct event_base;
struct tally_diag;
struct api;
struct stream_pub;

struct server;

/*
 * What answers requests: the server calls these and nothing else of the
 * API (the API calls the server, never the other way round by name).
 * Copied by server_create; [I] from then on.
 */
struct server_handlers {
	struct api	*api;		/* borrowed; passed to each call */
	/* Answer one complete request; never fails (errors are replies). */
	void		(*handle)(struct api *api, const struct http_request *rq,
			    struct http_reply *reply);
	/*
	 * Before any body byte is read (rq without a body): may this request
	 * send one?  false with the refusal in reply (counted) otherwise.
	 */
	bool		(*admit)(struct api *api, const struct http_request *rq,
			    struct http_reply *reply);
	/* Count a request the server refused before the API saw it. */
	void		(*refused)(struct api *api, const char *path,
			    unsigned status, const char *code);
	/* An error reply in the API's JSON error shape (new body). */
	void		(*error)(struct http_reply *reply, unsigned status,
			    const char *code, const char *field,
			    const char *fmt, ...)
			    __attribute__((format(printf, 5, 6)));
};

/*
 * Start the listeners of cf on base; requests go to h (copied; h->api
 * borrowed).  NULL with diag.
 */
struct server	*server_create(struct event_base *base, const struct config *cf,
		    const struct server_handlers *h, struct tally_diag *diag);
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
/*
 * Answer a request the API left pending (reply taken).  A borrowed body
 * (not owned: a cached view's) is queued at once, so it need only live
 * until this returns: one body serves every long-poll of a version.
 */
void		 server_resume(void *ctx, const struct http_reply *reply);
/* The loop the server runs on (for the API's timers). */
struct event_base *server_base(const struct server *srv);
/* Event streams open now. */
unsigned	 server_streams(const struct server *srv);
/* Event streams following contest (topic) `topic` in that form. */
unsigned	 server_stream_subscribers(const struct server *srv,
		    unsigned topic, bool named);
/* Of those, the streams of deltas (?deltas=1). */
unsigned	 server_stream_delta_subscribers(const struct server *srv,
		    unsigned topic, bool named);
/*
 * A new version of one contest for every stream that follows it
 * (stream.c's stream_publish; p borrowed).  It goes out after the replies
 * now being answered (a POST never waits behind the fan-out); a stream
 * still holding an earlier event it has not started to send gets a
 * snapshot instead (conflated).
 */
void		 server_stream_publish(struct server *srv,
		    const struct stream_pub *p);
/*
 * The streams following a topic end once what each holds is sent
 * (stream_end_topic); SERVER_TOPICS_ALL: every stream (stopping).
 */
#define SERVER_TOPICS_ALL	(~0u)
void		 server_streams_end(struct server *srv, unsigned topic);
/*
 * A header set on every response just before it is queued: value(arg)
 * returns it (borrowed, or NULL for none).  Cluster mode names the node.
 */
void		 server_set_header(struct server *srv, const char *name,
		    const char *(*value)(void *arg), void *arg);
/*
 * SIGHUP: read the TLS certificates and keys of cf again (tls.c); new
 * handshakes use them.  -1 with diag (the ones in force stay) if one
 * cannot be read, or if TLS would be turned on or off (that takes a
 * restart).
 */
int		 server_reload_tls(struct server *srv, const struct config *cf,
		    struct tally_diag *diag);

#endif
