/*
 * stream.h - event streams (GET /v1/events) and the fan-out of versions to
 * them.  No libmicrohttpd here: a stream's connection is the server's
 * opaque `conn`, parked and woken through struct stream_conn_ops.
 *
 * Threads: the loop thread only [L], like libmicrohttpd's callbacks that
 * read the streams (server.c).  The server owns the stream set; the API
 * reaches it through server_stream_publish and server_streams_end.
 */
#ifndef TALLYD_STREAM_H
#define TALLYD_STREAM_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct http_chunk;

/* The most contests one stream follows (GET /v1/events?contests=a,b). */
#define STREAM_TOPICS_MAX	16

/*
 * What a stream follows (stream_add): topics, the indexes of its contests
 * (0: the first), and whether its events name their contest (named: the
 * ?contests= form, another chunk per version than the plain one).  snap[i]
 * (taken; named streams only): a snapshot of topic[i]'s current version in
 * the named form, what a conflated stream is given for that contest.
 */
struct stream_sub {
	size_t			 n;
	bool			 named;
	bool			 deltas;	/* ?deltas=1: delta events */
	unsigned		 topic[STREAM_TOPICS_MAX];
	struct http_chunk	*snap[STREAM_TOPICS_MAX];
};
/* Its snapshots, then sub itself (from malloc).  NULL: nothing. */
void		 stream_sub_free(struct stream_sub *sub);

/*
 * One version of one topic for stream_publish: its events and a snapshot
 * of it, plain and named (each borrowed; NULL when no stream follows the
 * topic in that form, stream_subscribers).  d, d_named: its events for
 * streams of deltas (?deltas=1, live_delta.c: a delta event in place of
 * change and leaderboard); NULL: they are given c, c_named.
 */
struct stream_pub {
	unsigned		 topic;
	struct http_chunk	*c, *snap;
	struct http_chunk	*c_named, *snap_named;
	struct http_chunk	*d, *d_named;
};

/* Every open event stream and what is being fanned out to them. */
struct stream_set;
/* One event stream; lives as long as its request. */
struct stream;

/* How the streams act on their connections: the server's side. */
struct stream_conn_ops {
	/* Park the connection of a stream that has nothing to send. */
	void	(*suspend)(void *arg, void *conn);
	/* Bring a parked one back: it has something to send, or ends. */
	void	(*resume)(void *arg, void *conn);
	/* A stream written here (stream_attach) ended: close conn. */
	void	(*close)(void *arg, void *conn);
};

/*
 * The streams of one server, with a heartbeat (a comment) every
 * `heartbeat` seconds to streams with nothing queued; ops and arg are
 * borrowed.  NULL without memory.
 */
struct stream_set *stream_set_create(struct event_base *base, long heartbeat,
		    long stall, const struct stream_conn_ops *ops, void *arg);
/* Every stream must have been removed first (their requests ended). */
void		 stream_set_destroy(struct stream_set *set);
/*
 * A new stream on `conn` (borrowed: the server's request), that sends
 * `first` (taken on every path) and then every version of the topics of
 * sub (taken on every path; NULL: topic 0, plain) published after now.
 * NULL without memory.
 */
struct stream	*stream_add(struct stream_set *set, void *conn,
		    struct http_chunk *first, struct stream_sub *sub);
/*
 * Write st here from now on: fd (borrowed: the connection's socket, which
 * the server keeps parked in libmicrohttpd and closes after the stream's
 * request completes) gets head
 * (taken: the response head, sent as it is), then st's events, each as one
 * HTTP/1.1 chunk (gzip: compressed once per chunk, http_chunk_deflated;
 * head then ends with the gzip header); a socket that takes nothing for
 * `stall` seconds, or that
 * the peer closed, ends the stream (ops->close).  0, or -1 without memory
 * (head dropped; st unchanged).
 */
int		 stream_attach(struct stream *st, int fd, struct http_chunk *head,
		    bool gzip);
/*
 * The response head of a stream written here (new, or NULL without
 * memory): status, Date, the event stream's headers, CORS when
 * cors_origin, `name: value` when both are set, chunked, Connection:
 * close; with gzip, Content-Encoding and the gzip header as the first
 * chunk.
 */
struct http_chunk *stream_head(const char *cors_origin, const char *name,
		    const char *value, bool gzip);
/* Its request is over: forget it. */
void		 stream_remove(struct stream_set *set, struct stream *st);
/*
 * Up to max bytes of what st sends next: their number; 0 when there is
 * nothing now (its connection was parked through ops->suspend, and is woken
 * when there is); -1 when the stream has ended.
 */
ssize_t		 stream_read(struct stream *st, char *buf, size_t max);
/* Streams open now. */
unsigned	 stream_count(const struct stream_set *set);
/* Streams following topic in the named or the plain form. */
unsigned	 stream_subscribers(const struct stream_set *set, unsigned topic,
		    bool named);
/* Of those, the streams of deltas (?deltas=1). */
unsigned	 stream_delta_subscribers(const struct stream_set *set,
		    unsigned topic, bool named);
/*
 * A new version of p->topic (p borrowed) for every stream that follows it.
 * It goes out after the replies now being answered (a POST never waits
 * behind the fan-out); a stream still holding an earlier event it has not
 * started gets a snapshot instead (a named stream: of each of its topics).
 */
void		 stream_publish(struct stream_set *set,
		    const struct stream_pub *p);
/* Stopping: every stream ends once what it holds is sent. */
void		 stream_end_all(struct stream_set *set);
/* A contest is gone (a reload removed it): so do the streams following
 * its topic, alone or among others. */
void		 stream_end_topic(struct stream_set *set, unsigned topic);

#endif
