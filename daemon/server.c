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
};

struct server {
	struct event_base	*base;
	struct api		*api;
	struct listener		 listeners[2];
	size_t			 n_listeners;
	size_t			 body_limit;
	unsigned		 connections;
	unsigned		 in_flight;	/* requests begun, not completed */
	unsigned		 parked;	/* suspended, waiting for the log */
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
};

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
	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		l->srv->connections++;
	else if (l->srv->connections > 0)
		l->srv->connections--;
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
	free(srv);
}
