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
 * This is the only file that includes <microhttpd.h>: the API sees complete
 * requests (struct http_request) and answers with bodies (struct
 * http_body, an MHD_Response underneath).
 *
 * Framing that libmicrohttpd 0.9.75 lets through on its own is refused here
 * in the headers-only call, before any body is read: two Content-Length
 * headers, Content-Length with Transfer-Encoding, and any transfer coding but
 * chunked.  A body over body_limit is refused with 413 before it is read.
 *
 * Event streams (GET /v1/events).  A stream is a response from a content
 * reader.  libmicrohttpd calls the reader whenever the socket can take more;
 * a reader that returns 0 bytes is called again at once, in a busy loop, in
 * this external-epoll mode (measured: docs/PERFORMANCE.md).  So a stream with
 * nothing to send suspends its connection inside the reader and is resumed
 * when there is something: a new version (server_stream_publish) or a
 * heartbeat.  A stream holds at most two shared chunks (the one it is
 * sending and the newest it has not started), so a reader that cannot keep
 * up is conflated to the newest version, never backlogged; one whose socket
 * has not drained for sse_stall_timeout is closed by libmicrohttpd's
 * per-connection timeout (a suspended connection never times out, and an
 * idle stream is suspended).
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <microhttpd.h>

#include "tallyd.h"

struct listener {
	struct server		*srv;
	struct MHD_Daemon	*mhd;
	struct event		*ev_io;
	struct event		*ev_timer;
	bool			 ingest;	/* takes POSTs */
	char			 addr[300];
	unsigned		 connections;	/* open on this listener */
};

struct http_chunk {
	unsigned		 refs;
	size_t			 len;
	char			 bytes[];
};

/*
 * libmicrohttpd's memory pool per connection (its default: 32 KiB): request
 * headers, the read buffer and the write buffer of a streamed body come
 * from it.  Measured: 32 KiB cost 37 KiB of RSS per idle event stream.
 */
#ifndef CONNECTION_MEMORY
#define CONNECTION_MEMORY	(16 * 1024)
#endif

/*
 * The block size of a stream's response: libmicrohttpd allocates this much
 * with every response made from a callback, even a chunked one, which it
 * fills from the connection's write buffer instead.
 */
#ifndef STREAM_BLOCK
#define STREAM_BLOCK		2048
#endif

/* Parked streams resumed in one turn of the loop. */
#ifndef FANOUT_SLICE
#define FANOUT_SLICE		1000
#endif

/* The send buffer of an event stream's socket (the kernel doubles it). */
#define STREAM_SNDBUF	(16 * 1024)

/* One event stream; part of its request. */
struct stream {
	struct stream		*prev, *next;	/* in server.streams */
	struct request		*rq;
	struct http_chunk	*cur;		/* being sent, from `off` */
	size_t			 off;
	struct http_chunk	*queued;	/* newest, not started */
	bool			 suspended;
};

struct server {
	struct event_base	*base;
	struct api		*api;
	struct listener		 listeners[2];
	size_t			 n_listeners;
	size_t			 body_limit;
	unsigned		 connections;
	unsigned		 in_flight;	/* requests begun, not completed */
	unsigned		 parked;	/* suspended: waiting for the log,
						   a long-poll or an idle stream */
	/* Event streams. */
	struct stream		*streams;
	unsigned		 n_streams;
	unsigned		 stall_timeout;	/* seconds */
	char			*cors_origin;
	struct http_chunk	*heartbeat;
	struct http_chunk	*fan_all;	/* versions since the last fan-out */
	struct http_chunk	*fan_newest;	/* the newest of them */
	bool			 ending;	/* stopping: streams end */
	struct event		*ev_fanout;
	struct event		*ev_heartbeat;
	const char		*header_name;	/* server_set_header, or NULL */
	const char		*(*header_value)(void *);
	void			*header_arg;
};

enum rq_phase {
	RQ_READING,	/* headers seen, body arriving */
	RQ_HANDLING,	/* inside api_handle */
	RQ_WAITING,	/* suspended until its journal record is durable */
	RQ_READY,	/* resumed with its reply */
	RQ_DONE,	/* reply queued */
};

/* Per-request state, freed in the completion callback. */
struct request {
	struct listener		*listener;
	struct MHD_Connection	*conn;
	char			*body;
	size_t			 len;
	size_t			 cap;
	unsigned		 status;	/* an error found while reading, or 0 */
	const char		*code;
	const char		*message;
	enum rq_phase		 phase;
	struct http_reply	 reply;		/* when READY */
	struct stream		*stream;	/* GET /v1/events */
};

struct http_chunk *
http_chunk_new(const char *a, size_t alen, const char *b, size_t blen)
{
	struct http_chunk *c;

	if ((c = malloc(sizeof(*c) + alen + blen + 1)) == NULL)
		return NULL;
	c->refs = 1;
	c->len = alen + blen;
	if (alen > 0)
		memcpy(c->bytes, a, alen);
	if (blen > 0)
		memcpy(c->bytes + alen, b, blen);
	c->bytes[c->len] = '\0';
	return c;
}

struct http_chunk *
http_chunk_ref(struct http_chunk *c)
{
	if (c != NULL)
		c->refs++;
	return c;
}

void
http_chunk_unref(struct http_chunk *c)
{
	if (c != NULL && --c->refs == 0)
		free(c);
}

const char *
http_chunk_bytes(const struct http_chunk *c, size_t *len)
{
	*len = c->len;
	return c->bytes;
}

static ssize_t
chunk_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_chunk *c = cls;
	size_t n;

	if (pos >= c->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	n = c->len - (size_t)pos;
	if (n > max)
		n = max;
	memcpy(buf, c->bytes + pos, n);
	return (ssize_t)n;
}

static void
chunk_free(void *cls)
{
	http_chunk_unref(cls);
}

struct http_body *
http_body_from_chunk(struct http_chunk *c)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_callback(c->len, c->len < 16384 ?
	    c->len + 1 : 16384, chunk_read, c, chunk_free);
	if (r != NULL)
		http_chunk_ref(c);
	return (struct http_body *)r;
}

void
server_set_header(struct server *srv, const char *name,
    const char *(*value)(void *arg), void *arg)
{
	srv->header_name = name;
	srv->header_value = value;
	srv->header_arg = arg;
}

void
server_set_api(struct server *srv, struct api *api)
{
	srv->api = api;
}

struct http_body *
http_body_new(char *bytes, size_t len, bool take)
{
	return (struct http_body *)MHD_create_response_from_buffer(len, bytes,
	    take ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
}

void
http_body_header(struct http_body *b, const char *name, const char *value)
{
	if (b != NULL)
		MHD_add_response_header((struct MHD_Response *)b, name, value);
}

void
http_body_free(struct http_body *b)
{
	if (b != NULL)
		MHD_destroy_response((struct MHD_Response *)b);
}

const char *
http_arg(const struct http_request *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
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

static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct listener *l = cls;

	(void)c;
	(void)socket_context;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		l->srv->connections++;
		l->connections++;
	} else if (l->srv->connections > 0) {
		l->srv->connections--;
		if (l->connections > 0)
			l->connections--;
	}
}

static void
stream_close(struct server *srv, struct stream *st)
{
	if (st->prev != NULL)
		st->prev->next = st->next;
	else
		srv->streams = st->next;
	if (st->next != NULL)
		st->next->prev = st->prev;
	srv->n_streams--;
	http_chunk_unref(st->cur);
	http_chunk_unref(st->queued);
	free(st);
}

/*
 * The reader of an event stream.  Nothing to send: suspend (returning 0
 * alone would make libmicrohttpd call again at once, in a busy loop).
 */
static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *st = cls;
	struct server *srv = st->rq->listener->srv;
	size_t n;

	(void)pos;
	if (st->cur == NULL) {
		st->cur = st->queued;
		st->queued = NULL;
		st->off = 0;
	}
	if (st->cur == NULL) {
		if (srv->ending)
			return MHD_CONTENT_READER_END_OF_STREAM;
		st->suspended = true;
		srv->parked++;
		MHD_suspend_connection(st->rq->conn);
		return 0;
	}
	n = st->cur->len - st->off;
	if (n > max)
		n = max;
	memcpy(buf, st->cur->bytes + st->off, n);
	st->off += n;
	if (st->off == st->cur->len) {
		http_chunk_unref(st->cur);
		st->cur = NULL;
	}
	return (ssize_t)n;
}

static void
stream_wake(struct stream *st)
{
	struct listener *l = st->rq->listener;
	struct timeval now = { 0, 0 };

	if (!st->suspended)
		return;
	st->suspended = false;
	l->srv->parked--;
	MHD_resume_connection(st->rq->conn);
	evtimer_add(l->ev_timer, &now);
}

/* Give a stream c (borrowed) after what it is sending now. */
static void
stream_give(struct stream *st, struct http_chunk *c)
{
	http_chunk_unref(st->queued);
	st->queued = http_chunk_ref(c);
}

/*
 * The fan-out, after the replies of the round that made the versions: a
 * stream that has taken everything gets every version since the last
 * fan-out; one that has not yet started the previous chunk gets only the
 * newest (its ids say what it skipped).  Giving is a pointer each; the work
 * is in sending, so parked streams are resumed FANOUT_SLICE at a time, with
 * a turn of the loop (and of the ingest listener) between slices: a POST
 * never waits behind more than one slice of writes.
 */
static void
fanout(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	struct timeval soon = { 0, 100 };
	struct stream *st;
	unsigned k = 0;

	(void)fd;
	(void)what;
	if (srv->fan_newest != NULL) {
		for (st = srv->streams; st != NULL; st = st->next)
			stream_give(st, st->queued != NULL ? srv->fan_newest :
			    srv->fan_all);
		http_chunk_unref(srv->fan_all);
		http_chunk_unref(srv->fan_newest);
		srv->fan_all = srv->fan_newest = NULL;
	}
	for (st = srv->streams; st != NULL; st = st->next) {
		if (!st->suspended || st->queued == NULL)
			continue;
		if (k++ == FANOUT_SLICE) {
			/* After the listeners' run of this slice (due now). */
			evtimer_add(srv->ev_fanout, &soon);
			return;
		}
		stream_wake(st);
	}
}

void
server_stream_publish(struct server *srv, struct http_chunk *c)
{
	/* Just after the replies now being resumed (their timers are due now). */
	struct timeval soon = { 0, 100 };
	struct http_chunk *all;

	if (srv->n_streams == 0)
		return;
	if (srv->fan_all == NULL)
		all = http_chunk_ref(c);
	else if ((all = http_chunk_new(srv->fan_all->bytes, srv->fan_all->len,
	    c->bytes, c->len)) == NULL)
		all = http_chunk_ref(c);	/* without memory: conflate */
	http_chunk_unref(srv->fan_all);
	http_chunk_unref(srv->fan_newest);
	srv->fan_all = all;
	srv->fan_newest = http_chunk_ref(c);
	evtimer_add(srv->ev_fanout, &soon);
}

static void
heartbeat(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	struct stream *st;

	(void)fd;
	(void)what;
	/* Only to streams with nothing waiting: a comment never conflates. */
	for (st = srv->streams; st != NULL; st = st->next)
		if (st->cur == NULL && st->queued == NULL)
			stream_give(st, srv->heartbeat);
	fanout(-1, 0, srv);
}

void
server_streams_end(struct server *srv)
{
	struct stream *st;

	srv->ending = true;
	for (st = srv->streams; st != NULL; st = st->next)
		stream_wake(st);
}

unsigned
server_streams(const struct server *srv)
{
	return srv->n_streams;
}

struct event_base *
server_base(const struct server *srv)
{
	return srv->base;
}

/* Answer with an event stream that starts with `first` (taken). */
static enum MHD_Result
stream_open(struct server *srv, struct request *rq, struct http_chunk *first)
{
	const union MHD_ConnectionInfo *info;
	struct MHD_Response *r;
	struct stream *st;
	enum MHD_Result ret;
	int sndbuf = STREAM_SNDBUF;

	if ((st = calloc(1, sizeof(*st))) == NULL) {
		http_chunk_unref(first);
		return MHD_NO;
	}
	st->rq = rq;
	st->queued = first;
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK,
	    stream_read, st, NULL);
	if (r == NULL) {
		http_chunk_unref(first);
		free(st);
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
	st->next = srv->streams;
	if (st->next != NULL)
		st->next->prev = st;
	srv->streams = st;
	srv->n_streams++;
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

	(void)c;
	(void)toe;
	if (rq == NULL)
		return;
	/* A client gone before its answer was sent: the answer is ours. */
	if (rq->phase == RQ_READY && rq->reply.owned)
		http_body_free(rq->reply.body);
	if (rq->stream != NULL)
		stream_close(l->srv, rq->stream);
	free(rq->body);
	free(rq);
	*con_cls = NULL;
	l->srv->in_flight--;
}

struct header_scan {
	unsigned	content_length;
	unsigned	transfer_encoding;
	bool		chunked_only;
};

static enum MHD_Result
scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct header_scan *hs = cls;

	(void)kind;
	if (strcasecmp(key, "Content-Length") == 0)
		hs->content_length++;
	else if (strcasecmp(key, "Transfer-Encoding") == 0) {
		hs->transfer_encoding++;
		if (value == NULL || strcasecmp(value, "chunked") != 0)
			hs->chunked_only = false;
	}
	return MHD_YES;
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

	api_refused(srv->api, url, status, code);
	api_error(&reply, status, code, NULL, "%s", message);
	return send_reply(srv, c, &reply);
}

static bool
accepts_gzip(struct MHD_Connection *c)
{
	const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_ACCEPT_ENCODING);
	const char *p;

	if (ae == NULL)
		return false;
	/* "gzip" as a token, not followed by q=0. */
	for (p = ae; (p = strcasestr(p, "gzip")) != NULL; p += 4) {
		const char *q;
		if (p != ae && p[-1] != ' ' && p[-1] != ',')
			continue;
		q = p + 4;
		while (*q == ' ')
			q++;
		if (*q == ';') {
			q++;
			while (*q == ' ')
				q++;
			if (strncasecmp(q, "q=0", 3) == 0 &&
			    strspn(q + 3, ".0 ") == strcspn(q + 3, ","))
				return false;
		}
		return true;
	}
	return false;
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

	(void)version;
	if (rq == NULL) {
		/* The headers-only call. */
		struct header_scan hs = { 0, 0, true };
		const char *cl;

		if ((rq = calloc(1, sizeof(*rq))) == NULL)
			return MHD_NO;
		rq->listener = l;
		rq->conn = c;
		*con_cls = rq;
		srv->in_flight++;
		MHD_get_connection_values(c, MHD_HEADER_KIND, scan_header, &hs);
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
		if (cl != NULL && strtoull(cl, NULL, 10) > srv->body_limit) {
			char msg[128];
			snprintf(msg, sizeof(msg), "the body is larger than "
			    "the limit of %zu bytes", srv->body_limit);
			return reject(srv, c, url, 413, "body_too_large", msg);
		}
		/*
		 * Answer on a later call: a response queued in this first
		 * call makes MHD close the connection (no keep-alive).
		 */
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (rq->status != 0)
			return MHD_YES;		/* discarding */
		if (rq->len + n > srv->body_limit) {
			/* Chunked bodies have no Content-Length to check. */
			rq->status = 413;
			rq->code = "body_too_large";
			rq->message = "the body is larger than the limit";
			free(rq->body);
			rq->body = NULL;
			rq->len = rq->cap = 0;
			return MHD_YES;
		}
		if (rq->len + n > rq->cap) {
			size_t ncap = rq->cap ? rq->cap : 1024;
			char *nb;
			while (ncap < rq->len + n)
				ncap *= 2;
			if ((nb = realloc(rq->body, ncap)) == NULL)
				return MHD_NO;
			rq->body = nb;
			rq->cap = ncap;
		}
		memcpy(rq->body + rq->len, upload_data, n);
		rq->len += n;
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
	}
	if (rq->status != 0) {
		rq->phase = RQ_DONE;
		return reject(srv, c, url, rq->status, rq->code, rq->message);
	}

	memset(&hr, 0, sizeof(hr));
	hr.ingest = l->ingest;
	hr.method = method;
	hr.path = url;
	hr.if_none_match = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_IF_NONE_MATCH);
	hr.if_modified_since = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_IF_MODIFIED_SINCE);
	hr.authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	hr.content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE);
	hr.last_event_id = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "Last-Event-ID");
	hr.gzip_ok = accepts_gzip(c);
	hr.body = rq->body;
	hr.body_len = rq->len;
	hr.conn = c;
	hr.ctx = rq;
	memset(&reply, 0, sizeof(reply));
	rq->phase = RQ_HANDLING;
	api_handle(srv->api, &hr, &reply);
	if (reply.pending && rq->phase == RQ_READY) {
		/* Answered before it had to wait (a conflict, a repeat). */
		rq->phase = RQ_DONE;
		return send_reply(srv, c, &rq->reply);
	}
	rq->phase = RQ_DONE;
	if (reply.stream != NULL)
		return stream_open(srv, rq, reply.stream);
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
	l->srv->parked--;
	MHD_resume_connection(rq->conn);
	/* Run MHD at once: the resumed connection is not an fd event. */
	evtimer_add(l->ev_timer, &now);
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

	l->srv = srv;
	l->ingest = ingest;
	snprintf(l->addr, sizeof(l->addr), "%s", addr);
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
	l->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
	    MHD_ALLOW_SUSPEND_RESUME | (ai->ai_family == AF_INET6 ?
	    MHD_USE_IPv6 : 0), (uint16_t)port, NULL, NULL, on_request, l,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, l,
	    MHD_OPTION_SOCK_ADDR, ai->ai_addr,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cf->connection_timeout,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)cf->connection_limit,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024U,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
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
	log_info("listening on %s (%s)", addr, ingest ?
	    (srv->n_listeners == 0 ? "public and ingest" : "ingest") : "public");
	return 0;
}

struct server *
server_create(struct event_base *base, const struct config *cf,
    struct tally_diag *diag)
{
	struct server *srv;
	bool split = cf->ingest_listen != NULL &&
	    strcmp(cf->ingest_listen, cf->listen) != 0;

	if ((srv = calloc(1, sizeof(*srv))) == NULL) {
		tally_diag_add(diag, "out of memory");
		return NULL;
	}
	srv->base = base;
	srv->body_limit = (size_t)cf->body_limit;
	srv->stall_timeout = (unsigned)cf->sse_stall_timeout;
	if (cf->cors_origin != NULL &&
	    (srv->cors_origin = strdup(cf->cors_origin)) == NULL)
		goto nomem;
	if ((srv->heartbeat = http_chunk_new(": heartbeat\n\n", 13, NULL,
	    0)) == NULL)
		goto nomem;
	srv->ev_fanout = evtimer_new(base, fanout, srv);
	srv->ev_heartbeat = event_new(base, -1, EV_PERSIST, heartbeat, srv);
	if (srv->ev_fanout == NULL || srv->ev_heartbeat == NULL)
		goto nomem;
	{
		struct timeval tv = { cf->sse_heartbeat, 0 };
		if (event_add(srv->ev_heartbeat, &tv) == -1)
			goto nomem;
	}
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
	return srv->connections;
}

int
server_listener(const struct server *srv, size_t i, const char **addr,
    bool *ingest, unsigned *connections)
{
	if (i >= srv->n_listeners || i >= 2)
		return -1;
	*addr = srv->listeners[i].addr;
	*ingest = srv->listeners[i].ingest;
	*connections = srv->listeners[i].connections;
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
	}
	if (srv->ev_fanout != NULL)
		event_free(srv->ev_fanout);
	if (srv->ev_heartbeat != NULL)
		event_free(srv->ev_heartbeat);
	http_chunk_unref(srv->fan_all);
	http_chunk_unref(srv->fan_newest);
	http_chunk_unref(srv->heartbeat);
	free(srv->cors_origin);
	free(srv);
}
