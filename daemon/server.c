/*
 * server.c - libmicrohttpd listeners driven by the libevent loop.
 *
 * Each listener is an MHD daemon started with MHD_USE_EPOLL and no thread of
 * its own: its epoll fd is a persistent read event in our event_base, MHD_run
 * runs when it is ready, and a timer follows MHD_get_timeout, re-armed after
 * every run.  One thread therefore owns everything, and the tally needs no
 * locks.  (MHD's internal polling thread without a pool stalls when a
 * multiple of 128 sockets are ready at once; see docs/ARCHITECTURE.md.)
 *
 * With http_strict.c (the strict checks, the reads of a parsed request and
 * the catch of libmicrohttpd's own refusal pages) and body_mhd.c (the
 * bodies) this is the only file that includes <microhttpd.h>: the API sees complete requests (struct
 * http_request) and answers with bodies (struct http_body, an MHD_Response
 * underneath).
 *
 * Decide before reading (issue 15).  Everything that can refuse a request
 * is decided in the headers-only call (on_headers): the raw path, the
 * header section and its framing (http_strict.c), then, if a body is
 * announced, the route, method, listener, token, media type and encoding
 * (the admit handler, api_admit), body_limit and the body memory budget
 * (body.c).  A refusal queued there makes libmicrohttpd read none of the
 * body and close the connection after the answer.  Isolation: MHD's per-IP
 * connection limit, its idle timeout, and our caps and whole-request
 * deadline (conn.c).
 *
 * The server calls the API only through struct server_handlers (main.c
 * fills it): never by name.  Event streams (GET /v1/events) and their
 * fan-out are stream.c's; this file makes their responses and parks and
 * wakes their connections (struct stream_conn_ops).  TLS credentials are
 * tls.c's; this file hands GnuTLS the listener's newest (tls_pick).
 *
 * Who touches what: the loop thread only.  [I] set before the listeners
 * start; [L] the loop (libmicrohttpd's callbacks run there too).
 */
#include <sys/socket.h>
#include <netdb.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "body.h"
#include "conn.h"
#include "response.h"
#include "server.h"
#include "stream.h"
#include "tls.h"
#include "http_strict.h"
#include "config.h"
#include "log.h"

struct listener {
	struct server		*srv;		/* [I] */
	struct MHD_Daemon	*mhd;		/* [I] */
	struct event		*ev_io;		/* [I] */
	struct event		*ev_timer;	/* [I] */
	bool			 ingest;	/* [I] takes POSTs */
	bool			 tls;		/* [I] */
	char			 addr[300];	/* [I] */
	struct conn_pool	 pool;		/* [L] its connections (conn.c) */
	struct tls_cred		*cred;		/* [L] with tls: the newest */
};

/*
 * The block size of a stream's response: libmicrohttpd allocates this much
 * with every response made from a callback, even a chunked one, which it
 * fills from the connection's write buffer instead.
 */
#ifndef STREAM_BLOCK
#define STREAM_BLOCK		2048
#endif

/* The send buffer of an event stream's socket (the kernel doubles it). */
#define STREAM_SNDBUF	(16 * 1024)

struct server {
	struct event_base	*base;		/* [I] */
	struct server_handlers	 h;		/* [I] the API's */
	struct listener		 listeners[2];
	size_t			 n_listeners;	/* [I] */
	struct body_budget	 bodies;	/* [L] body.c */
	struct conn_set		*conns;		/* [I] conn.c */
	unsigned		 in_flight;	/* [L] requests begun, not
						   completed */
	unsigned		 parked;	/* [L] suspended: waiting for the
						   log, a long-poll or an idle
						   stream */
	struct stream_set	*streams;	/* [I] stream.c */
	unsigned		 stall_timeout;	/* [I] seconds */
	char			*cors_origin;	/* [I] */
	const char		*header_name;	/* [L] server_set_header, or NULL */
	const char		*(*header_value)(void *);	/* [L] */
	void			*header_arg;	/* [L] */
};

enum rq_phase {
	RQ_READING,	/* headers seen, body arriving */
	RQ_HANDLING,	/* inside the handle handler (api_handle) */
	RQ_WAITING,	/* suspended until its journal record is durable */
	RQ_READY,	/* resumed with its reply */
	RQ_DONE,	/* reply queued */
	RQ_STREAMING,	/* an event stream stream.c writes: parked until it
			   ends, then closed */
};

/* Per-request state, freed in the completion callback.  [L] */
struct request {
	struct listener		*listener;
	struct MHD_Connection	*conn;
	bool			 started;	/* the headers-only call was made */
	bool			 bad_path;	/* %00 or %2F in the raw path */
	struct body		 body;		/* body.c */
	enum rq_phase		 phase;
	struct http_reply	 reply;		/* when READY */
	struct stream		*stream;	/* GET /v1/events */
	uint64_t		 memo;		/* http_request.memo */
};

void
server_set_header(struct server *srv, const char *name,
    const char *(*value)(void *arg), void *arg)
{
	srv->header_name = name;
	srv->header_value = value;
	srv->header_arg = arg;
}

static void
listener_rearm(struct listener *l)
{
	MHD_UNSIGNED_LONG_LONG ms;
	struct timeval tv;

	if (MHD_get_timeout(l->mhd, &ms) == MHD_YES) {
		tv.tv_sec = (time_t)(ms / 1000);
		tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
		evtimer_add(l->ev_timer, &tv);
	} else {
		evtimer_del(l->ev_timer);
	}
}

static void
listener_run(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	(void)fd;
	(void)what;
	MHD_run(l->mhd);
	listener_rearm(l);
}

static void
mhd_logger(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_limited("libmicrohttpd", "libmicrohttpd: %s", buf);
}

/* A connection's socket context is its struct conn (conn.c). */
static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct listener *l = cls;
	const union MHD_ConnectionInfo *ci;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = conn_open(l->srv->conns, &l->pool, l,
		    ci != NULL ? ci->connect_fd : -1);
		return;
	}
	conn_close(l->srv->conns, &l->pool, *socket_context);
	*socket_context = NULL;
}

static struct conn *
conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

/* The deadline shut connections down: let libmicrohttpd see it now. */
static void
deadline_swept(void *arg)
{
	struct server *srv = arg;
	size_t i;

	for (i = 0; i < srv->n_listeners; i++) {
		struct timeval now0 = { 0, 0 };
		evtimer_add(srv->listeners[i].ev_timer, &now0);
	}
}

/* A stream with nothing to send parks its connection (stream_read). */
static void
stream_suspend(void *arg, void *conn)
{
	struct server *srv = arg;
	struct request *rq = conn;

	srv->parked++;
	MHD_suspend_connection(rq->conn);
}

static void
stream_resume(void *arg, void *conn)
{
	struct server *srv = arg;
	struct request *rq = conn;
	struct timeval now = { 0, 0 };

	srv->parked--;
	MHD_resume_connection(rq->conn);
	evtimer_add(rq->listener->ev_timer, &now);
}

/* close: a stream stream.c wrote has ended; resumed, the access handler
 * says MHD_NO (RQ_STREAMING) and libmicrohttpd closes it. */
static const struct stream_conn_ops stream_ops = {
	stream_suspend,
	stream_resume,
	stream_resume,
};

static ssize_t
stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	ssize_t n;

	(void)pos;
	if ((n = stream_read(cls, buf, max)) < 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return n;
}

void
server_stream_publish(struct server *srv, const struct stream_pub *p)
{
	stream_publish(srv->streams, p);
}

unsigned
server_stream_subscribers(const struct server *srv, unsigned topic,
    bool named)
{
	return stream_subscribers(srv->streams, topic, named);
}

unsigned
server_stream_delta_subscribers(const struct server *srv, unsigned topic,
    bool named)
{
	return stream_delta_subscribers(srv->streams, topic, named);
}

void
server_streams_end(struct server *srv, unsigned topic)
{
	if (topic == SERVER_TOPICS_ALL)
		stream_end_all(srv->streams);
	else
		stream_end_topic(srv->streams, topic);
}

unsigned
server_streams(const struct server *srv)
{
	return stream_count(srv->streams);
}

struct event_base *
server_base(const struct server *srv)
{
	return srv->base;
}

/*
 * Hand a plain HTTP/1.1 GET's stream to stream.c, which writes it on the
 * socket while libmicrohttpd keeps the connection suspended: 0, or -1
 * (nothing was sent: libmicrohttpd answers it).
 */
static int
stream_hand_over(struct server *srv, struct request *rq, struct stream *st,
    int fd, bool gzip)
{
	const char *v = srv->header_name ? srv->header_value(srv->header_arg) :
	    NULL;
	struct http_chunk *head;

	if ((head = stream_head(srv->cors_origin, srv->header_name, v,
	    gzip)) == NULL)
		return -1;
	rq->phase = RQ_STREAMING;
	rq->stream = st;
	srv->parked++;
	MHD_suspend_connection(rq->conn);
	if (stream_attach(st, fd, head, gzip) == -1)
		stream_resume(srv, rq);		/* nothing sent: closed */
	return 0;
}

/*
 * Answer with an event stream that starts with `first` (taken): written by
 * stream.c itself when plain HTTP/1.1 (raw), else by libmicrohttpd from
 * the stream's reader.
 */
static enum MHD_Result
stream_open(struct server *srv, struct request *rq, struct http_chunk *first,
    struct stream_sub *sub, bool raw, bool gzip)
{
	const union MHD_ConnectionInfo *info;
	struct MHD_Response *r;
	struct stream *st;
	enum MHD_Result ret;
	int sndbuf = STREAM_SNDBUF;

	if ((st = stream_add(srv->streams, rq, first, sub)) == NULL)
		return MHD_NO;
	/*
	 * A small send buffer: what a subscriber has not read waits in the
	 * kernel only up to a few events (by default it grows to megabytes),
	 * then it is conflated here instead.
	 */
	info = MHD_get_connection_info(rq->conn,
	    MHD_CONNECTION_INFO_CONNECTION_FD);
	if (info != NULL)
		(void)setsockopt(info->connect_fd, SOL_SOCKET, SO_SNDBUF,
		    &sndbuf, sizeof(sndbuf));
	if (raw && info != NULL &&
	    stream_hand_over(srv, rq, st, info->connect_fd, gzip) == 0)
		return MHD_YES;
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK,
	    stream_reader, st, NULL);
	if (r == NULL) {
		stream_remove(srv->streams, st);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/event-stream; "
	    "charset=utf-8");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	/* nginx: pass each event on at once. */
	MHD_add_response_header(r, "X-Accel-Buffering", "no");
	if (srv->cors_origin != NULL) {
		MHD_add_response_header(r, "Access-Control-Allow-Origin",
		    srv->cors_origin);
		MHD_add_response_header(r, "Access-Control-Expose-Headers",
		    "ETag, Content-Location");
	}
	rq->stream = st;
	/* Only a socket that does not drain makes no progress for this long. */
	MHD_set_connection_option(rq->conn, MHD_CONNECTION_OPTION_TIMEOUT,
	    srv->stall_timeout);
	ret = MHD_queue_response(rq->conn, 200, r);
	MHD_destroy_response(r);
	return ret;
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct listener *l = cls;
	struct request *rq = *con_cls;

	(void)toe;
	if (rq == NULL)
		return;
	/* A client gone before its answer was sent: the answer is ours. */
	if (rq->phase == RQ_READY && rq->reply.owned)
		http_body_free(rq->reply.body);
	if (rq->stream != NULL)
		stream_remove(l->srv->streams, rq->stream);
	body_finish(&l->srv->bodies, &rq->body);
	free(rq);
	{
		/* A kept-alive connection's next request starts its clock. */
		struct conn *cn = conn_of(c);
		if (cn != NULL)
			conn_next_request(cn);
	}
	*con_cls = NULL;
	l->srv->in_flight--;
}

static enum MHD_Result
send_reply(struct server *srv, struct MHD_Connection *c,
    struct http_reply *reply)
{
	struct MHD_Response *resp = (struct MHD_Response *)reply->body;
	enum MHD_Result r;
	const char *v, *old;

	if (srv->header_name != NULL && resp != NULL) {
		/*
		 * Cached bodies are shared: the header is replaced in place,
		 * on the loop thread, which is where libmicrohttpd builds the
		 * headers too.
		 */
		v = srv->header_value(srv->header_arg);
		if ((old = MHD_get_response_header(resp, srv->header_name)) !=
		    NULL)
			MHD_del_response_header(resp, srv->header_name, old);
		if (v != NULL)
			MHD_add_response_header(resp, srv->header_name, v);
	}
	r = MHD_queue_response(c, reply->status,
	    (struct MHD_Response *)reply->body);
	if (reply->owned)
		http_body_free(reply->body);
	reply->owned = false;
	return r;
}

static enum MHD_Result
reject(struct server *srv, struct MHD_Connection *c, const char *url,
    unsigned status, const char *code, const char *message)
{
	struct http_reply reply;

	srv->h.refused(srv->h.api, url, status, code);
	srv->h.error(&reply, status, code, NULL, "%s", message);
	return send_reply(srv, c, &reply);
}

/*
 * Called by libmicrohttpd with the raw request target, before it is split
 * and percent-decoded: the request's state begins here (it is the request's
 * con_cls from now on), and the path is checked while it is still raw.
 */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct listener *l = cls;
	struct request *rq;

	if ((rq = calloc(1, sizeof(*rq))) == NULL)
		return NULL;	/* the access handler answers 503 */
	rq->listener = l;
	rq->conn = c;
	l->srv->in_flight++;
	rq->bad_path = !http_strict_path(uri);
	return rq;
}

/* A refusal written at once (http_strict_send_refusal). */
static void
send_refusal(struct MHD_Connection *c, unsigned status, const char *code,
    const char *message)
{
	const struct conn *cn = conn_of(c);

	http_strict_send_refusal(c, cn != NULL &&
	    ((struct listener *)cn->owner)->tls, status, code, message);
}

/*
 * A refusal while the body is arriving.  libmicrohttpd 0.9.75 takes a
 * response only before the first body byte or after the last, so the
 * whole answer is written here, on the socket (or the TLS session), in one
 * non-blocking send, and the connection closed (MHD_NO).  Nothing of a
 * response has been sent on it before (at most a 100 Continue).  If the
 * socket cannot take it at once, the client sees the connection close.
 */
static enum MHD_Result
refuse_mid_body(struct server *srv, struct request *rq, const char *url,
    unsigned status, const char *code, const char *message)
{
	srv->h.refused(srv->h.api, url, status, code);
	send_refusal(rq->conn, status, code, message);
	return MHD_NO;
}

/*
 * One of libmicrohttpd's own refusals (http_strict.c catches them): the
 * JSON refusal every other error has is written on the socket, once,
 * instead of its page, and counted.
 */
static void
mhd_refused(void *conn, unsigned status, const char *code,
    const char *message)
{
	struct MHD_Connection *c = conn;
	const struct conn *cn;

	if (status == MHD_HTTP_URI_TOO_LONG)
		send_refusal(c, status, "uri_too_long", "the request target is "
		    "longer than this server takes (about 16 KiB)");
	else
		send_refusal(c, status, code, message);
	if ((cn = conn_of(c)) != NULL) {
		struct server *srv = ((struct listener *)cn->owner)->srv;
		srv->h.refused(srv->h.api, "", status, code);
	}
}

/*
 * The headers-only call: everything is decided here, before the first body
 * byte is read.  A request refused now is answered now, and libmicrohttpd
 * then reads none of its body and closes the connection after the answer.
 */
static enum MHD_Result
on_headers(struct server *srv, struct listener *l, struct request *rq,
    struct MHD_Connection *c, const char *url, const char *method,
    const char *version)
{
	struct http_head hs;
	const char *bad;
	struct http_request hr;
	struct http_reply reply;
	const char *cl, *ct;
	unsigned long long len = 0;
	bool chunked;

	rq->started = true;
	if ((bad = http_strict_head(c, version, &hs)) != NULL)
		return reject(srv, c, url, 400, "bad_request", bad);
	if (rq->bad_path)
		return reject(srv, c, url, 400, "bad_path", "an encoded NUL or "
		    "slash (%00, %2F) is not allowed in the path");
	if (hs.content_length > 1)
		return reject(srv, c, url, 400, "bad_framing",
		    "more than one Content-Length header");
	if (hs.content_length > 0 && hs.transfer_encoding > 0)
		return reject(srv, c, url, 400, "bad_framing",
		    "Content-Length together with Transfer-Encoding");
	if (hs.transfer_encoding > 0 && !hs.chunked_only)
		return reject(srv, c, url, 400, "bad_framing",
		    "only the chunked transfer coding is accepted");
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL)
		len = strtoull(cl, NULL, 10);
	chunked = hs.transfer_encoding > 0;
	if (!chunked && len == 0)
		return MHD_YES;		/* nothing to read: route() decides */

	/* A body is coming: may it? */
	ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE);
	memset(&hr, 0, sizeof(hr));
	hr.ingest = l->ingest;
	hr.method = method;
	hr.path = url;
	hr.authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	hr.content_type = ct;
	hr.content_encoding = hs.content_encoding;
	hr.conn = c;
	hr.memo = &rq->memo;
	memset(&reply, 0, sizeof(reply));
	if (!srv->h.admit(srv->h.api, &hr, &reply))
		return send_reply(srv, c, &reply);
	if (len > srv->bodies.limit) {
		char msg[128];
		snprintf(msg, sizeof(msg), "the body is larger than the limit "
		    "of %zu bytes", srv->bodies.limit);
		return reject(srv, c, url, 413, "body_too_large", msg);
	}
	if (!chunked && !body_expect(&srv->bodies, &rq->body, (size_t)len)) {
		enum MHD_Result r;
		r = reject(srv, c, url, 503, "busy", "too many bodies are "
		    "arriving at once (body_memory); retry in a second");
		return r;
	}
	/*
	 * Answer on a later call: a response queued in this first call makes
	 * MHD close the connection (no keep-alive).
	 */
	return MHD_YES;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct listener *l = cls;
	struct server *srv = l->srv;
	struct request *rq = *con_cls;
	struct http_request hr;
	struct http_reply reply;

	if (rq == NULL) {
		/* on_uri had no memory. */
		struct http_reply busy;
		srv->h.error(&busy, 503, "out_of_memory", NULL, "out of memory; "
		    "try again");
		return send_reply(srv, c, &busy);
	}
	if (!rq->started)
		return on_headers(srv, l, rq, c, url, method, version);
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		switch (body_append(&srv->bodies, &rq->body, upload_data, n)) {
		case BODY_OK:
			break;
		case BODY_TOO_LARGE:
			/* Chunked: cut as soon as the limit is passed. */
			return refuse_mid_body(srv, rq, url, 413,
			    "body_too_large",
			    "the body is larger than the limit");
		case BODY_BUSY:
			return refuse_mid_body(srv, rq, url, 503, "busy",
			    "too many bodies are arriving at once; retry in a "
			    "second");
		case BODY_NO_MEMORY:
			return MHD_NO;
		}
		return MHD_YES;
	}
	switch (rq->phase) {
	case RQ_READING:
		break;
	case RQ_HANDLING:
	case RQ_WAITING:
	case RQ_DONE:
		return MHD_YES;
	case RQ_READY:
		rq->phase = RQ_DONE;
		return send_reply(srv, c, &rq->reply);
	case RQ_STREAMING:
		return MHD_NO;		/* stream.c's stream ended: close */
	}

	memset(&hr, 0, sizeof(hr));
	hr.ingest = l->ingest;
	hr.method = method;
	hr.path = url;
	http_strict_request(c, &hr);
	hr.gzip_ok = http_accepts_gzip(MHD_lookup_connection_value(c,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING));
	hr.body = rq->body.bytes;
	hr.body_len = rq->body.len;
	hr.conn = c;
	hr.ctx = rq;
	hr.memo = &rq->memo;
	memset(&reply, 0, sizeof(reply));
	rq->phase = RQ_HANDLING;
	{
		struct conn *cn = conn_of(c);
		if (cn != NULL)
			cn->answering = true;
	}
	srv->h.handle(srv->h.api, &hr, &reply);
	if (reply.pending && rq->phase == RQ_READY) {
		/* Answered before it had to wait (a conflict, a repeat). */
		rq->phase = RQ_DONE;
		return send_reply(srv, c, &rq->reply);
	}
	rq->phase = RQ_DONE;
	if (reply.stream != NULL && strcmp(method, MHD_HTTP_METHOD_HEAD) == 0) {
		http_chunk_unref(reply.stream);
		stream_sub_free(reply.stream_sub);
		reply = (struct http_reply){ .status = 200, .owned = true,
		    .body = http_body_stream_head(srv->cors_origin) };
	}
	if (reply.stream != NULL)
		return stream_open(srv, rq, reply.stream, reply.stream_sub,
		    !l->tls &&
		    strcmp(version, MHD_HTTP_VERSION_1_1) == 0 &&
		    strcmp(method, MHD_HTTP_METHOD_GET) == 0, hr.gzip_ok);
	if (reply.pending) {
		/*
		 * The answer waits for the journal: park the connection;
		 * server_resume brings it back with the reply.
		 */
		rq->phase = RQ_WAITING;
		srv->parked++;
		MHD_suspend_connection(c);
		return MHD_YES;
	}
	return send_reply(srv, c, &reply);
}

void
server_resume(void *ctx, const struct http_reply *reply)
{
	struct request *rq = ctx;
	struct listener *l = rq->listener;
	struct timeval now = { 0, 0 };

	rq->reply = *reply;
	if (rq->phase == RQ_HANDLING) {
		/* Still inside the handler: it sends the reply itself. */
		rq->phase = RQ_READY;
		return;
	}
	rq->phase = RQ_READY;
	/*
	 * A borrowed body (a view's own, shared by every long-poll of its
	 * version) is queued now, on the suspended connection, which
	 * libmicrohttpd allows: the cache may drop it before the connection's
	 * turn.  Not queued: no body, and the connection is closed.
	 */
	if (!reply->owned && reply->body != NULL) {
		if (send_reply(l->srv, rq->conn, &rq->reply) == MHD_YES)
			rq->phase = RQ_DONE;
		else
			rq->reply.body = NULL;
	}
	l->srv->parked--;
	MHD_resume_connection(rq->conn);
	/* Run MHD at once: the resumed connection is not an fd event. */
	evtimer_add(l->ev_timer, &now);
}

/* GnuTLS asks, during each handshake, which chain and key to present. */
static int
tls_pick(gnutls_session_t session, const gnutls_datum_t *req_ca_dn,
    int nreqs, const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
    gnutls_pcert_st **chain, unsigned int *n, gnutls_privkey_t *key)
{
	struct MHD_Connection *c = gnutls_session_get_ptr(session);
	struct conn *cn;

	(void)req_ca_dn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	if (c == NULL || (cn = conn_of(c)) == NULL)
		return -1;
	return tls_cred_select(((struct listener *)cn->owner)->cred, chain, n,
	    key);
}

int
server_reload_tls(struct server *srv, const struct config *cf,
    struct tally_diag *diag)
{
	struct tls_listener ls[2];
	size_t i;

	for (i = 0; i < srv->n_listeners && i < 2; i++) {
		struct listener *l = &srv->listeners[i];
		ls[i].addr = l->addr;
		ls[i].cred = &l->cred;
		ls[i].cert = l->ingest ? cf->tls_cert : cf->public_tls_cert;
		ls[i].key = l->ingest ? cf->tls_key : cf->public_tls_key;
	}
	return tls_reload(ls, i, diag);
}

static int
listener_start(struct server *srv, struct listener *l, const char *addr,
    bool ingest, const struct config *cf, struct tally_diag *diag)
{
	const union MHD_DaemonInfo *info;
	struct addrinfo hints, *ai = NULL;
	char host[256], portstr[16];
	unsigned port;
	int rc;

	const char *cert = ingest ? cf->tls_cert : cf->public_tls_cert;
	const char *key = ingest ? cf->tls_key : cf->public_tls_key;
	struct MHD_OptionItem tls[3];
	unsigned flags;

	l->srv = srv;
	l->ingest = ingest;
	snprintf(l->addr, sizeof(l->addr), "%s", addr);
	memset(tls, 0, sizeof(tls));
	tls[0].option = MHD_OPTION_END;
	if (cert != NULL || key != NULL) {
		if (cert == NULL || key == NULL) {
			tally_diag_add(diag, "listen %s: TLS needs both a "
			    "certificate and a key", addr);
			return -1;
		}
		if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
			tally_diag_add(diag, "listen %s: this libmicrohttpd "
			    "has no TLS", addr);
			return -1;
		}
		if ((l->cred = tls_cred_load(cert, key, diag)) == NULL)
			return -1;
		l->tls = true;
		tls[0].option = MHD_OPTION_HTTPS_CERT_CALLBACK;
		tls[0].ptr_value = (void *)(uintptr_t)tls_pick;
		tls[1].option = MHD_OPTION_HTTPS_PRIORITIES;
		tls[1].ptr_value = (void *)TLS_PRIORITIES;
		tls[2].option = MHD_OPTION_END;
	}
	if (config_split_hostport(addr, host, &port) == -1) {
		tally_diag_add(diag, "listen: \"%s\" is not HOST:PORT", addr);
		return -1;
	}
	snprintf(portstr, sizeof(portstr), "%u", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((rc = getaddrinfo(host, portstr, &hints, &ai)) != 0) {
		tally_diag_add(diag, "listen %s: %s", addr, gai_strerror(rc));
		return -1;
	}
	flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME |
	    (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0) |
	    (l->tls ? MHD_USE_TLS : 0);
	/*
	 * STRICT_FOR_CLIENT 1: an HTTP/1.1 request without Host is refused
	 * by MHD itself (answered with JSON by the MHD_queue_response above),
	 * a space inside the request target closes the connection without an
	 * answer.  What it still lets through is refused in on_headers.
	 */
	l->mhd = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL,
	    on_request, l,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, l,
	    MHD_OPTION_ARRAY, tls,
	    MHD_OPTION_STRICT_FOR_CLIENT, 1,
	    MHD_OPTION_URI_LOG_CALLBACK, on_uri, l,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned)cf->per_ip_connection_limit,
	    MHD_OPTION_SOCK_ADDR, ai->ai_addr,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cf->connection_timeout,
	    MHD_OPTION_CONNECTION_LIMIT, l->pool.cap + CONN_CAP_SLACK,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024U,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    body_pool_size(l == &srv->listeners[1]),
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, l,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, l,
	    MHD_OPTION_END);
	freeaddrinfo(ai);
	if (l->mhd == NULL) {
		tally_diag_add(diag, "cannot listen on %s: %s", addr,
		    strerror(errno ? errno : EADDRINUSE));
		return -1;
	}
	info = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL) {
		tally_diag_add(diag, "listen %s: libmicrohttpd has no epoll fd",
		    addr);
		return -1;
	}
	l->ev_io = event_new(srv->base, info->epoll_fd, EV_READ | EV_PERSIST,
	    listener_run, l);
	l->ev_timer = evtimer_new(srv->base, listener_run, l);
	if (l->ev_io == NULL || l->ev_timer == NULL ||
	    event_add(l->ev_io, NULL) == -1) {
		tally_diag_add(diag, "listen %s: cannot add events", addr);
		return -1;
	}
	listener_rearm(l);
	log_info("listening on %s (%s%s)", addr, ingest ?
	    (srv->n_listeners == 0 ? "public and ingest" : "ingest") : "public",
	    l->tls ? ", TLS" : "");
	return 0;
}

struct server *
server_create(struct event_base *base, const struct config *cf,
    const struct server_handlers *h, struct tally_diag *diag)
{
	struct server *srv;
	bool split = cf->ingest_listen != NULL &&
	    strcmp(cf->ingest_listen, cf->listen) != 0;

	if ((srv = calloc(1, sizeof(*srv))) == NULL) {
		tally_diag_add(diag, "out of memory");
		return NULL;
	}
	srv->base = base;
	srv->h = *h;
	http_strict_on_refusal(mhd_refused);
	srv->bodies.limit = (size_t)cf->body_limit;
	srv->stall_timeout = (unsigned)cf->sse_stall_timeout;
	srv->bodies.memory = (size_t)cf->body_memory;
	if (cf->cors_origin != NULL &&
	    (srv->cors_origin = strdup(cf->cors_origin)) == NULL)
		goto nomem;
	if ((srv->conns = conn_set_create(base, (unsigned)cf->request_timeout,
	    deadline_swept, srv)) == NULL)
		goto nomem;
	if ((srv->streams = stream_set_create(base, cf->sse_heartbeat,
	    cf->sse_stall_timeout, &stream_ops, srv)) == NULL)
		goto nomem;
	srv->listeners[0].pool.addr = srv->listeners[0].addr;
	srv->listeners[1].pool.addr = srv->listeners[1].addr;
	conn_caps(&srv->listeners[0].pool, split ? &srv->listeners[1].pool :
	    NULL, cf->connection_limit);
	/*
	 * With only `listen`, one listener serves reads and feeds.  With a
	 * separate `ingest_listen`, the public one refuses POSTs (405), and a
	 * flood of readers cannot take the ingest listener's connection slots.
	 */
	if (listener_start(srv, &srv->listeners[0], cf->listen, !split, cf,
	    diag) == -1)
		goto fail;
	srv->n_listeners = 1;
	if (split) {
		if (listener_start(srv, &srv->listeners[1], cf->ingest_listen,
		    true, cf, diag) == -1)
			goto fail;
		srv->n_listeners = 2;
	}
	return srv;
nomem:
	tally_diag_add(diag, "out of memory");
fail:
	srv->n_listeners = 2;
	server_destroy(srv);
	return NULL;
}

void
server_quiesce(struct server *srv)
{
	size_t i;

	for (i = 0; i < srv->n_listeners; i++) {
		struct listener *l = &srv->listeners[i];
		MHD_socket s;
		if (l->mhd == NULL)
			continue;
		s = MHD_quiesce_daemon(l->mhd);
		if (s != MHD_INVALID_SOCKET)
			close(s);
	}
}

unsigned
server_in_flight(const struct server *srv)
{
	return srv->in_flight;
}

unsigned
server_parked(const struct server *srv)
{
	return srv->parked;
}

unsigned
server_connections(const struct server *srv)
{
	return conn_count(srv->conns);
}

int
server_listener(const struct server *srv, size_t i, const char **addr,
    bool *ingest, unsigned *connections)
{
	if (i >= srv->n_listeners || i >= 2)
		return -1;
	*addr = srv->listeners[i].addr;
	*ingest = srv->listeners[i].ingest;
	*connections = srv->listeners[i].pool.connections;
	return 0;
}

void
server_destroy(struct server *srv)
{
	size_t i;

	if (srv == NULL)
		return;
	for (i = 0; i < srv->n_listeners && i < 2; i++) {
		struct listener *l = &srv->listeners[i];
		if (l->ev_io != NULL)
			event_free(l->ev_io);
		if (l->ev_timer != NULL)
			event_free(l->ev_timer);
		if (l->mhd != NULL)
			MHD_stop_daemon(l->mhd);
		tls_cred_free(l->cred);
	}
	conn_set_destroy(srv->conns);
	stream_set_destroy(srv->streams);
	free(srv->cors_origin);
	free(srv);
}
