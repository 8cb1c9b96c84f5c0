/*
 * stream.c - event streams (GET /v1/events) and the fan-out of versions.
 *
 * A stream is a response from a content reader (server.c makes it).
 * libmicrohttpd calls the reader whenever the socket can take more; a
 * reader that returns 0 bytes is called again at once, in a busy loop, in
 * server.c's external-epoll mode (measured: docs/PERFORMANCE.md).  So a
 * stream with nothing to send parks its connection inside the reader
 * (ops->suspend) and is woken (ops->resume) when there is something: a new
 * version (stream_publish) or a heartbeat.  A stream holds at most two
 * shared chunks (the one it is sending and the newest it has not started),
 * so a reader that cannot keep up is conflated to the newest version, never
 * backlogged; one whose socket has not drained for sse_stall_timeout is
 * closed by libmicrohttpd's per-connection timeout (server.c sets it; a
 * suspended connection never times out, and an idle stream is suspended).
 *
 * Written by tallyd itself.  libmicrohttpd copies every byte a reader
 * gives it into the connection's own buffer, and parks and wakes the
 * connection (two epoll_ctl calls, a walk of its lists) for every event.
 * So a plain HTTP/1.1 stream is handed over instead (stream_attach): the
 * server writes the response head, then the shared chunks themselves,
 * each framed once for the chunked coding (http_chunk_framed), with one
 * send() per subscriber and version from the same bytes; its connection
 * stays suspended in libmicrohttpd meanwhile (out of its epoll set, never
 * touched, never timed out: the socket is in the loop's epoll set instead)
 * and is given back to be closed when the stream ends (ops->close).
 * A socket that takes nothing for sse_stall_timeout is closed here: the
 * subscriber reconnects with the id of the last event it got.  TLS and
 * HTTP/1.0 streams go through libmicrohttpd's reader (stream_read).
 *
 * Topics (issue 23): every contest publishes its versions here, each
 * under its index.  A stream follows one topic (/v1/events, the first;
 * /v1/contests/{c}/events) in the plain form, or several in the named
 * form (?contests=a,b: each event names its contest, so the API makes a
 * second chunk per version when such a stream follows the topic).  The
 * fan-out joins the versions a stream is given once per distinct
 * subscription (topics, form, starting point), so streams that follow
 * the same contests still share one chunk a fan-out.  The newest snapshot
 * of each followed topic is kept here: a conflated stream that follows
 * several contests is given one of each (its queued chunk may have held
 * any of them), so conflation never loses a contest's state.
 *
 * Deltas (?deltas=1, issue 24): a publish may carry, beside its whole
 * events, its delta events (made once by live_delta.c); a stream of
 * deltas is given those, and one that falls behind keeps up to
 * STREAM_DELTA_LAG fan-outs' chunks (references to the shared chunks)
 * before it is conflated to a snapshot like any stream.
 *
 * Who touches what: the loop thread only [L]; [I] set at creation.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <zlib.h>

#include "response.h"
#include "stream.h"
#include "util.h"

/*
 * A stream of deltas that has not started its queued chunk is given the
 * next fan-outs' chunks after it, up to this many chunks waiting; past
 * them, it is conflated to a snapshot like any stream.  A delta is only
 * meaningful on the state of the one before, so a short lag costs a
 * pointer per chunk (the chunks are the fan-out's, shared) rather than a
 * whole leaderboard and the rows its skipped deltas held.  What a stream
 * holds stays bounded: STREAM_DELTA_LAG chunks, each a fan-out's.
 */
#ifndef STREAM_DELTA_LAG
#define STREAM_DELTA_LAG	8
#endif

/* Parked streams resumed in one turn of the loop. */
#ifndef FANOUT_SLICE
#define FANOUT_SLICE		1000
#endif

struct stream {
	struct stream		*prev, *next;	/* [L] in set->streams */
	struct stream_set	*set;		/* [I] */
	void			*conn;		/* [I] the server's request */
	struct http_chunk	*cur;		/* [L] being sent, from `off` */
	size_t			 off;		/* [L] */
	struct http_chunk	*queued;	/* [L] newest, not started */
	/* A stream of deltas behind: the chunks after queued, in order. */
	struct http_chunk	*more[STREAM_DELTA_LAG - 1];	/* [L] */
	size_t			 n_more;	/* [L] */
	bool			 suspended;	/* [L] parked by ops->suspend */
	uint64_t		 given;		/* [L] publishes it holds (fan) */
	/* What it follows: topics ascending (stream_add). */
	unsigned		 topic[STREAM_TOPICS_MAX];	/* [I] */
	size_t			 n_topics;	/* [I] */
	bool			 named;		/* [I] */
	bool			 deltas;	/* [I] given fan d, d_named */
	bool			 ending;	/* [L] its contest is gone */
	/* Written here (stream_attach); else fd is -1. */
	int			 fd;		/* [L] the socket (borrowed), -1: ended */
	bool			 raw;		/* [I] */
	bool			 gzip;		/* [I] raw, Content-Encoding gzip */
	uint32_t		 crc;		/* [L] gzip: of what was sent */
	uint32_t		 isize;		/* [L] gzip: its length mod 2^32 */
	struct event		*ev_read;	/* [L] the peer's close */
	struct event		*ev_write;	/* [L] room again, or stalled */
};

/* A version of one topic, to be fanned out. */
struct fan_entry {
	unsigned		 topic;
	struct http_chunk	*c, *c_named;	/* NULL: nobody in that form */
	struct http_chunk	*d, *d_named;	/* deltas; NULL: c, c_named */
};

/* A topic: who follows it and its newest snapshots while anyone does. */
struct stream_topic {
	unsigned		 subs, subs_named;
	unsigned		 deltas, deltas_named;	/* of those, ?deltas=1 */
	struct http_chunk	*snap, *snap_named;
};

struct stream_set {
	const struct stream_conn_ops *ops;	/* [I] */
	void			*arg;		/* [I] for ops */
	struct stream		*streams;	/* [L] */
	unsigned		 n_streams;	/* [L] */
	struct http_chunk	*heartbeat;	/* [I] */
	struct fan_entry	*fan;		/* [L] versions since the last
						   fan-out */
	size_t			 n_fan, cap_fan;	/* [L] */
	/* Out of memory for fan: every stream behind gets snapshots. */
	bool			 conflate;	/* [L] */
	struct stream_topic	*topics;	/* [L] by index */
	size_t			 n_topics;	/* [L] */
	/*
	 * Publishes are numbered: fan[i] is publish fan_first + i.  A stream
	 * opened after publish k starts from a state that holds it (the API
	 * renders its hello from the applied state), so it is given only the
	 * versions after k: no version twice.
	 */
	uint64_t		 pub_seq;	/* [L] the last publish */
	uint64_t		 fan_first;	/* [L] */
	bool			 ending;	/* [L] stopping: streams end */
	struct event		*ev_fanout;	/* [I] */
	struct event		*ev_heartbeat;	/* [I] */
	struct event_base	*base;		/* [I] */
	struct timeval		 stall;		/* [I] sse_stall_timeout */
	struct http_chunk	*last;		/* [I] the chunked coding's end */
};

static void	topics_leave(struct stream_set *set, struct stream *st);

/* queued was taken: the next chunk waiting moves up. */
static void
stream_shift(struct stream *st)
{
	if (st->n_more == 0)
		return;
	st->queued = st->more[0];
	memmove(st->more, st->more + 1, --st->n_more * sizeof(st->more[0]));
}

/*
 * Forget a written stream's socket: out of the loop's epoll set, never
 * closed here (libmicrohttpd closes it, after its completion callback,
 * which comes here first).
 */
static void
stream_close_fd(struct stream *st)
{
	if (st->ev_read != NULL)
		event_free(st->ev_read);
	if (st->ev_write != NULL)
		event_free(st->ev_write);
	st->ev_read = st->ev_write = NULL;
	st->fd = -1;
}

/* A written stream is over: its connection goes back to be closed. */
static void
stream_end_raw(struct stream *st)
{
	if (st->fd == -1)
		return;
	stream_close_fd(st);
	st->set->ops->close(st->set->arg, st->conn);
}

/*
 * The end of the body, best effort (the stream ends anyway): with gzip, a
 * last chunk holding an empty final deflate block and the gzip trailer
 * (CRC-32 and length of what was sent); then the chunked coding's end.
 */
static void
stream_send_end(struct stream *st)
{
	unsigned char b[32];
	const char *last;
	size_t n = 0, len;
	int i;

	if (st->gzip) {
		memcpy(b, "a\r\n\x03\x00", 5);
		n = 5;
		for (i = 0; i < 4; i++)
			b[n++] = (unsigned char)(st->crc >> (8 * i));
		for (i = 0; i < 4; i++)
			b[n++] = (unsigned char)(st->isize >> (8 * i));
		b[n++] = '\r';
		b[n++] = '\n';
	}
	last = http_chunk_bytes(st->set->last, &len);
	memcpy(b + n, last, len);
	n += len;
	(void)send(st->fd, b, n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/*
 * Write what a stream written here holds, until the socket takes no more
 * (then wait for room, at most the stall timeout) or all is sent.  When
 * the set is ending and all is sent, the chunked coding's end, then the
 * stream ends.
 */
static void
stream_flush(struct stream *st)
{
	struct stream_set *set = st->set;
	const char *bytes;
	size_t len;
	ssize_t n;

	while (st->fd != -1) {
		if (st->cur == NULL) {
			struct http_chunk *f;
			if (st->queued == NULL) {
				if (!set->ending && !st->ending)
					return;
				stream_send_end(st);
				stream_end_raw(st);
				return;
			}
			if (st->gzip) {
				uint32_t crc;
				size_t ilen;
				(void)http_chunk_bytes(st->queued, &ilen);
				if ((f = http_chunk_deflated(st->queued,
				    &crc)) != NULL) {
					st->crc = (uint32_t)crc32_combine(
					    st->crc, crc, (z_off_t)ilen);
					st->isize += (uint32_t)ilen;
				}
			} else
				f = http_chunk_framed(st->queued);
			if (f == NULL) {
				stream_end_raw(st);	/* no memory */
				return;
			}
			st->cur = http_chunk_ref(f);
			http_chunk_unref(st->queued);
			st->queued = NULL;
			stream_shift(st);
			st->off = 0;
		}
		bytes = http_chunk_bytes(st->cur, &len);
		n = send(st->fd, bytes + st->off, len - st->off, MSG_DONTWAIT |
		    MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* Not drained for the stall timeout: closed. */
			event_add(st->ev_write, &set->stall);
			return;
		}
		if (n == -1) {
			stream_end_raw(st);
			return;
		}
		st->off += (size_t)n;
		if (st->off == len) {
			http_chunk_unref(st->cur);
			st->cur = NULL;
		}
	}
}

static void
stream_writable(evutil_socket_t fd, short what, void *arg)
{
	struct stream *st = arg;

	(void)fd;
	if (what & EV_TIMEOUT) {
		stream_end_raw(st);
		return;
	}
	stream_flush(st);
}

/* The subscriber sends nothing after its request: EOF or an error ends. */
static void
stream_readable(evutil_socket_t fd, short what, void *arg)
{
	struct stream *st = arg;
	char buf[256];
	ssize_t n;

	(void)what;
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR))
		stream_end_raw(st);
}

struct http_chunk *
stream_head(const char *cors_origin, const char *name, const char *value,
    bool gzip)
{
	/* A gzip member's header, as the body's first chunk (no name, no
	 * time, Unix); the deflate data follows chunk by chunk. */
	static const char gz_head[] = "a\r\n\x1f\x8b\x08\0\0\0\0\0\0\x03\r\n";
	struct http_chunk *c;
	char *head = NULL, date[64];
	size_t len = 0;
	FILE *f;

	time_http(time(NULL), date, sizeof(date));
	if ((f = open_memstream(&head, &len)) == NULL)
		return NULL;
	fprintf(f, "HTTP/1.1 200 OK\r\nDate: %s\r\nContent-Type: "
	    "text/event-stream; charset=utf-8\r\nCache-Control: no-store\r\n"
	    "X-Accel-Buffering: no\r\n", date);
	if (cors_origin != NULL)
		fprintf(f, "Access-Control-Allow-Origin: %s\r\n"
		    "Access-Control-Expose-Headers: ETag, Content-Location\r\n",
		    cors_origin);
	if (name != NULL && value != NULL)
		fprintf(f, "%s: %s\r\n", name, value);
	if (gzip)
		fputs("Content-Encoding: gzip\r\n", f);
	fputs("Vary: Accept-Encoding\r\nTransfer-Encoding: chunked\r\n"
	    "Connection: close\r\n\r\n", f);
	if (gzip)
		fwrite(gz_head, 1, sizeof(gz_head) - 1, f);
	if (fclose(f) != 0) {
		free(head);
		return NULL;
	}
	c = http_chunk_new(head, len, NULL, 0);
	free(head);
	return c;
}

int
stream_attach(struct stream *st, int fd, struct http_chunk *head, bool gzip)
{
	int one = 1, zero = 0;

	struct stream_set *set = st->set;

	st->ev_read = event_new(set->base, fd, EV_READ | EV_PERSIST,
	    stream_readable, st);
	st->ev_write = event_new(set->base, fd, EV_WRITE, stream_writable, st);
	if (st->ev_read == NULL || st->ev_write == NULL ||
	    event_add(st->ev_read, NULL) == -1) {
		if (st->ev_read != NULL)
			event_free(st->ev_read);
		if (st->ev_write != NULL)
			event_free(st->ev_write);
		st->ev_read = st->ev_write = NULL;
		http_chunk_unref(head);
		return -1;
	}
	st->fd = fd;
	st->raw = true;
	st->gzip = gzip;
	/* Each event goes out at once, whatever libmicrohttpd had set. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* The head as it is, then the first event (framed when taken). */
	st->cur = head;
	st->off = 0;
	stream_flush(st);
	return 0;
}

void
stream_remove(struct stream_set *set, struct stream *st)
{
	if (st->prev != NULL)
		st->prev->next = st->next;
	else
		set->streams = st->next;
	if (st->next != NULL)
		st->next->prev = st->prev;
	set->n_streams--;
	topics_leave(set, st);
	stream_close_fd(st);
	http_chunk_unref(st->cur);
	http_chunk_unref(st->queued);
	while (st->n_more > 0)
		http_chunk_unref(st->more[--st->n_more]);
	free(st);
}

/*
 * The reader of an event stream.  Nothing to send: suspend (returning 0
 * alone would make libmicrohttpd call again at once, in a busy loop).
 */
ssize_t
stream_read(struct stream *st, char *buf, size_t max)
{
	struct stream_set *set = st->set;
	size_t len, n;
	const char *bytes;

	if (st->cur == NULL) {
		st->cur = st->queued;
		st->queued = NULL;
		stream_shift(st);
		st->off = 0;
	}
	if (st->cur == NULL) {
		if (set->ending || st->ending)
			return -1;
		st->suspended = true;
		set->ops->suspend(set->arg, st->conn);
		return 0;
	}
	bytes = http_chunk_bytes(st->cur, &len);
	n = len - st->off;
	if (n > max)
		n = max;
	memcpy(buf, bytes + st->off, n);
	st->off += n;
	if (st->off == len) {
		http_chunk_unref(st->cur);
		st->cur = NULL;
	}
	return (ssize_t)n;
}

/* Has st something to send and nothing going on? */
static bool
stream_idle_with_work(const struct stream *st)
{
	if (st->raw)
		return st->fd != -1 && st->cur == NULL && st->queued != NULL;
	return st->suspended && st->queued != NULL;
}

static void
stream_wake(struct stream *st)
{
	if (st->raw) {
		/* Mid-write, the write event carries on. */
		if (st->fd != -1 && (st->cur == NULL ||
		    !event_pending(st->ev_write, EV_WRITE, NULL)))
			stream_flush(st);
		return;
	}
	if (!st->suspended)
		return;
	st->suspended = false;
	st->set->ops->resume(st->set->arg, st->conn);
}

/* Give a stream c (borrowed) after what it is sending now. */
static void
stream_give(struct stream *st, struct http_chunk *c)
{
	http_chunk_unref(st->queued);
	st->queued = http_chunk_ref(c);
	while (st->n_more > 0)
		http_chunk_unref(st->more[--st->n_more]);
}

static void
fan_clear(struct stream_set *set)
{
	size_t i;

	for (i = 0; i < set->n_fan; i++) {
		http_chunk_unref(set->fan[i].c);
		http_chunk_unref(set->fan[i].c_named);
		http_chunk_unref(set->fan[i].d);
		http_chunk_unref(set->fan[i].d_named);
	}
	set->n_fan = 0;
	set->conflate = false;
}

static bool
stream_follows(const struct stream *st, unsigned topic)
{
	size_t i;

	for (i = 0; i < st->n_topics; i++)
		if (st->topic[i] == topic)
			return true;
	return false;
}

/* Is there a version for st in fan[from..]? */
static bool
fan_has(const struct stream_set *set, const struct stream *st, size_t from)
{
	size_t i;

	for (i = from; i < set->n_fan; i++)
		if (stream_follows(st, set->fan[i].topic))
			return true;
	return false;
}

/*
 * What st is given (new, or NULL): its versions in fan[from..], in order,
 * in its form; or (snap) the newest snapshot of each of its topics.
 */
static struct http_chunk *
fan_join(struct stream_set *set, const struct stream *st, size_t from,
    bool snap)
{
	struct http_chunk *parts_s[STREAM_TOPICS_MAX], **parts = parts_s, *c;
	size_t i, n = 0;

	if (snap) {
		for (i = 0; i < st->n_topics; i++) {
			struct stream_topic *tp = &set->topics[st->topic[i]];
			if ((c = st->named ? tp->snap_named : tp->snap) != NULL)
				parts[n++] = c;
		}
	} else {
		if (set->n_fan - from > STREAM_TOPICS_MAX &&
		    (parts = malloc((set->n_fan - from) *
		    sizeof(*parts))) == NULL)
			return NULL;
		for (i = from; i < set->n_fan; i++) {
			if (!stream_follows(st, set->fan[i].topic))
				continue;
			c = st->named ? set->fan[i].c_named : set->fan[i].c;
			/* A stream of deltas: the version's delta event. */
			if (st->deltas && (st->named ? set->fan[i].d_named :
			    set->fan[i].d) != NULL)
				c = st->named ? set->fan[i].d_named :
				    set->fan[i].d;
			if (c != NULL)
				parts[n++] = c;
		}
	}
	c = n > 0 ? http_chunk_join(parts, n) : NULL;
	if (parts != parts_s)
		free(parts);
	return c;
}

/*
 * The joins of one fan-out, by subscription: every stream that follows
 * the same topics in the same form from the same publish is given the
 * same chunk.  A fan-out past FAN_KEYS distinct subscriptions joins the
 * rest for each stream.
 */
#define FAN_KEYS	32

struct fan_key {
	const struct stream	*like;		/* the first stream of this key */
	size_t			 from;
	bool			 snap;
	struct http_chunk	*c;		/* NULL: nothing to give */
};

static bool
same_subscription(const struct stream *a, const struct stream *b)
{
	return a->named == b->named && a->deltas == b->deltas &&
	    a->n_topics == b->n_topics &&
	    memcmp(a->topic, b->topic, a->n_topics * sizeof(a->topic[0])) == 0;
}

/* fan_join through the keys (a new reference, or NULL). */
static struct http_chunk *
fan_part(struct stream_set *set, struct fan_key *keys, size_t *n_keys,
    const struct stream *st, size_t from, bool snap)
{
	struct http_chunk *c;
	size_t i;

	for (i = 0; i < *n_keys; i++)
		if (keys[i].from == from && keys[i].snap == snap &&
		    same_subscription(keys[i].like, st))
			return keys[i].c != NULL ? http_chunk_ref(keys[i].c) :
			    NULL;
	c = fan_join(set, st, from, snap);
	if (*n_keys < FAN_KEYS) {
		keys[*n_keys].like = st;
		keys[*n_keys].from = from;
		keys[*n_keys].snap = snap;
		keys[*n_keys].c = c != NULL ? http_chunk_ref(c) : NULL;
		(*n_keys)++;
	}
	return c;
}

/*
 * A stream of deltas behind (its queued chunk not started): its versions
 * in fan[from..] wait after what it holds, while fewer than
 * STREAM_DELTA_LAG chunks do.  true when given.
 */
static bool
delta_lag(struct stream_set *set, struct fan_key *keys, size_t *n_keys,
    struct stream *st, size_t from)
{
	struct http_chunk *part;

	if (st->n_more == STREAM_DELTA_LAG - 1 ||
	    (part = fan_part(set, keys, n_keys, st, from, false)) == NULL)
		return false;
	st->more[st->n_more++] = part;
	return true;
}

/*
 * The fan-out, after the replies of the round that made the versions: a
 * stream that has taken everything (or holds only a heartbeat it has not
 * started) gets every version of its topics since the last fan-out, in
 * order; one that has not yet started the previous chunk is conflated to
 * a snapshot of the newest version of each of its topics, which says so
 * (a "snapshot" event): a subscriber either sees every version or is told
 * it skipped some.  The versions are joined once per fan-out and
 * subscription (not once per version: that copy grew with the square of a
 * round's versions).  Giving is a pointer each; the work is in sending, so
 * parked streams are resumed FANOUT_SLICE at a time, with a turn of the
 * loop (and of the ingest listener) between slices: a POST never waits
 * behind more than one slice of writes.
 */
static void
fanout(evutil_socket_t fd, short what, void *arg)
{
	struct stream_set *set = arg;
	struct timeval soon = { 0, 100 };
	struct fan_key keys[FAN_KEYS];
	size_t n_keys = 0, i;
	struct stream *st;
	unsigned k = 0;

	(void)fd;
	(void)what;
	if (set->n_fan > 0 || set->conflate) {
		for (st = set->streams; st != NULL; st = st->next) {
			bool behind = set->conflate || (st->queued != NULL &&
			    st->queued != set->heartbeat);
			struct http_chunk *part = NULL;
			size_t from = 0;
			if (st->given >= set->pub_seq)
				continue;	/* opened after all of them */
			/* Opened within: only what came after (rare). */
			if (st->given >= set->fan_first)
				from = (size_t)(st->given + 1 - set->fan_first);
			if (from > set->n_fan)
				from = set->n_fan;
			st->given = set->pub_seq;
			if (!set->conflate && !fan_has(set, st, from))
				continue;	/* none of its contests moved */
			if (!behind)
				part = fan_part(set, keys, &n_keys, st, from,
				    false);
			else if (st->deltas && !set->conflate &&
			    delta_lag(set, keys, &n_keys, st, from))
				continue;	/* behind by a little */
			/* Behind, or without memory for the join. */
			if (part == NULL)
				part = fan_part(set, keys, &n_keys, st, 0, true);
			if (part != NULL)
				stream_give(st, part);
			http_chunk_unref(part);
		}
		for (i = 0; i < n_keys; i++)
			http_chunk_unref(keys[i].c);
		fan_clear(set);
	}
	for (st = set->streams; st != NULL; st = st->next) {
		if (!stream_idle_with_work(st))
			continue;
		if (k++ == FANOUT_SLICE) {
			/* After the listeners' run of this slice (due now). */
			evtimer_add(set->ev_fanout, &soon);
			return;
		}
		stream_wake(st);
	}
}

void
stream_publish(struct stream_set *set, const struct stream_pub *p)
{
	/* Just after the replies now being resumed (their timers are due now). */
	struct timeval soon = { 0, 100 };
	struct fan_entry *nf;
	size_t ncap;

	if (set->n_streams == 0)
		return;
	/* The newest snapshots of a followed topic, for a stream behind. */
	if (p->topic < set->n_topics) {
		struct stream_topic *tp = &set->topics[p->topic];
		if (tp->subs > 0 && p->snap != NULL) {
			http_chunk_unref(tp->snap);
			tp->snap = http_chunk_ref(p->snap);
		}
		if (tp->subs_named > 0 && p->snap_named != NULL) {
			http_chunk_unref(tp->snap_named);
			tp->snap_named = http_chunk_ref(p->snap_named);
		}
	}
	if (set->n_fan == 0)
		set->fan_first = set->pub_seq + 1;
	set->pub_seq++;
	if (set->n_fan == set->cap_fan) {
		ncap = set->cap_fan ? 2 * set->cap_fan : 16;
		if ((nf = realloc(set->fan, ncap * sizeof(*nf))) == NULL) {
			/* Without memory: every stream gets snapshots. */
			fan_clear(set);
			set->conflate = true;
			evtimer_add(set->ev_fanout, &soon);
			return;
		}
		set->fan = nf;
		set->cap_fan = ncap;
	}
	set->fan[set->n_fan].topic = p->topic;
	set->fan[set->n_fan].c = p->c != NULL ? http_chunk_ref(p->c) : NULL;
	set->fan[set->n_fan].c_named = p->c_named != NULL ?
	    http_chunk_ref(p->c_named) : NULL;
	set->fan[set->n_fan].d = p->d != NULL ? http_chunk_ref(p->d) : NULL;
	set->fan[set->n_fan].d_named = p->d_named != NULL ?
	    http_chunk_ref(p->d_named) : NULL;
	set->n_fan++;
	evtimer_add(set->ev_fanout, &soon);
}

static void
heartbeat(evutil_socket_t fd, short what, void *arg)
{
	struct stream_set *set = arg;
	struct stream *st;

	(void)fd;
	(void)what;
	/* Only to streams with nothing waiting: a comment never conflates. */
	for (st = set->streams; st != NULL; st = st->next)
		if (st->cur == NULL && st->queued == NULL)
			stream_give(st, set->heartbeat);
	fanout(-1, 0, set);
}

void
stream_end_all(struct stream_set *set)
{
	struct stream *st;

	/* Versions published but not yet fanned out go first. */
	if (set->n_fan > 0 || set->conflate)
		fanout(-1, 0, set);
	set->ending = true;
	for (st = set->streams; st != NULL; st = st->next)
		stream_wake(st);
}

void
stream_end_topic(struct stream_set *set, unsigned topic)
{
	struct stream *st;

	if (set->n_fan > 0 || set->conflate)
		fanout(-1, 0, set);
	for (st = set->streams; st != NULL; st = st->next)
		if (stream_follows(st, topic)) {
			st->ending = true;
			stream_wake(st);
		}
}

unsigned
stream_count(const struct stream_set *set)
{
	return set->n_streams;
}

void
stream_sub_free(struct stream_sub *sub)
{
	size_t i;

	if (sub == NULL)
		return;
	for (i = 0; i < STREAM_TOPICS_MAX; i++)
		http_chunk_unref(sub->snap[i]);
	free(sub);
}

unsigned
stream_subscribers(const struct stream_set *set, unsigned topic, bool named)
{
	if (topic >= set->n_topics)
		return 0;
	return named ? set->topics[topic].subs_named : set->topics[topic].subs;
}

unsigned
stream_delta_subscribers(const struct stream_set *set, unsigned topic,
    bool named)
{
	if (topic >= set->n_topics)
		return 0;
	return named ? set->topics[topic].deltas_named :
	    set->topics[topic].deltas;
}

/*
 * st follows what sub says (NULL: topic 0, plain); the set counts it per
 * topic and keeps a named stream's snapshots.  0, or -1 without memory.
 */
static int
topics_join(struct stream_set *set, struct stream *st,
    struct stream_sub *sub)
{
	struct stream_topic *nt;
	size_t i, j, need = 1;

	st->n_topics = 1;
	if (sub != NULL && sub->n >= 1 && sub->n <= STREAM_TOPICS_MAX) {
		st->n_topics = sub->n;
		st->named = sub->named;
		st->deltas = sub->deltas;
		memcpy(st->topic, sub->topic, sub->n * sizeof(st->topic[0]));
	}
	/* Ascending: streams that follow the same contests share joins. */
	for (i = 1; i < st->n_topics; i++)
		for (j = i; j > 0 && st->topic[j - 1] > st->topic[j]; j--) {
			unsigned t = st->topic[j];
			st->topic[j] = st->topic[j - 1];
			st->topic[j - 1] = t;
		}
	for (i = 0; i < st->n_topics; i++)
		if (st->topic[i] + (size_t)1 > need)
			need = st->topic[i] + (size_t)1;
	if (need > set->n_topics) {
		if ((nt = realloc(set->topics, need * sizeof(*nt))) == NULL)
			return -1;
		memset(nt + set->n_topics, 0, (need - set->n_topics) *
		    sizeof(*nt));
		set->topics = nt;
		set->n_topics = need;
	}
	for (i = 0; i < st->n_topics; i++) {
		struct stream_topic *tp = &set->topics[st->topic[i]];
		if (!st->named) {
			tp->subs++;
			tp->deltas += st->deltas;
			continue;
		}
		tp->subs_named++;
		tp->deltas_named += st->deltas;
		/* The current version's: as new as any kept. */
		for (j = 0; sub != NULL && j < sub->n; j++)
			if (sub->topic[j] == st->topic[i] &&
			    sub->snap[j] != NULL) {
				http_chunk_unref(tp->snap_named);
				tp->snap_named = sub->snap[j];
				sub->snap[j] = NULL;
			}
	}
	return 0;
}

/* st is gone: a topic nobody follows keeps no snapshot. */
static void
topics_leave(struct stream_set *set, struct stream *st)
{
	size_t i;

	for (i = 0; i < st->n_topics; i++) {
		struct stream_topic *tp;
		if (st->topic[i] >= set->n_topics)
			continue;
		tp = &set->topics[st->topic[i]];
		if (st->deltas && st->named && tp->deltas_named > 0)
			tp->deltas_named--;
		else if (st->deltas && !st->named && tp->deltas > 0)
			tp->deltas--;
		if (st->named && tp->subs_named > 0 && --tp->subs_named == 0) {
			http_chunk_unref(tp->snap_named);
			tp->snap_named = NULL;
		} else if (!st->named && tp->subs > 0 && --tp->subs == 0) {
			http_chunk_unref(tp->snap);
			tp->snap = NULL;
		}
	}
}

struct stream *
stream_add(struct stream_set *set, void *conn, struct http_chunk *first,
    struct stream_sub *sub)
{
	struct stream *st;

	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    topics_join(set, st, sub) == -1) {
		free(st);
		http_chunk_unref(first);
		stream_sub_free(sub);
		return NULL;
	}
	stream_sub_free(sub);
	st->set = set;

	st->conn = conn;
	st->fd = -1;
	st->queued = first;
	st->given = set->pub_seq;
	st->next = set->streams;
	if (st->next != NULL)
		st->next->prev = st;
	set->streams = st;
	set->n_streams++;
	return st;
}

struct stream_set *
stream_set_create(struct event_base *base, long heartbeat_sec,
    long stall_sec, const struct stream_conn_ops *ops, void *arg)
{
	struct stream_set *set;
	struct timeval tv = { heartbeat_sec, 0 };

	if ((set = calloc(1, sizeof(*set))) == NULL)
		return NULL;
	set->ops = ops;
	set->arg = arg;
	set->base = base;
	set->stall.tv_sec = stall_sec;
	if ((set->last = http_chunk_new("0\r\n\r\n", 5, NULL, 0)) == NULL)
		goto fail;
	if ((set->heartbeat = http_chunk_new(": heartbeat\n\n", 13, NULL,
	    0)) == NULL)
		goto fail;
	set->ev_fanout = evtimer_new(base, fanout, set);
	set->ev_heartbeat = event_new(base, -1, EV_PERSIST, heartbeat, set);
	if (set->ev_fanout == NULL || set->ev_heartbeat == NULL ||
	    event_add(set->ev_heartbeat, &tv) == -1)
		goto fail;
	return set;
fail:
	stream_set_destroy(set);
	return NULL;
}

void
stream_set_destroy(struct stream_set *set)
{
	size_t i;

	if (set == NULL)
		return;
	if (set->ev_fanout != NULL)
		event_free(set->ev_fanout);
	if (set->ev_heartbeat != NULL)
		event_free(set->ev_heartbeat);
	fan_clear(set);
	free(set->fan);
	for (i = 0; i < set->n_topics; i++) {
		http_chunk_unref(set->topics[i].snap);
		http_chunk_unref(set->topics[i].snap_named);
	}
	free(set->topics);
	http_chunk_unref(set->heartbeat);
	http_chunk_unref(set->last);
	free(set);
}
