/*
 * conn.h - the listeners' connections as budgets: each listener's cap
 * within the descriptor limit, eviction of the longest idle connection
 * beyond it, and the whole-request deadline.  No libmicrohttpd here: a
 * connection is the socket the server registered (conn_open), and this
 * module only shuts it down; libmicrohttpd, in server.c, sees the end and
 * closes it.
 *
 * Threads: the loop thread only [L]; [I] set when made.
 */
#ifndef TALLYD_CONN_H
#define TALLYD_CONN_H

#include <stdbool.h>
#include <time.h>

struct event_base;

/*
 * libmicrohttpd's own connection limit is this far above a listener's cap,
 * which conn_open enforces: reached, libmicrohttpd would stop accepting,
 * and every new connection, a feed's too, would wait in the backlog.
 */
#define CONN_CAP_SLACK	64

/* One listener's connections. */
struct conn_pool {
	const char	*addr;		/* [I] the listener's, for messages */
	unsigned	 connections;	/* [L] open on this listener */
	unsigned	 cap;		/* [I] beyond: one is evicted */
	unsigned	 n_cut;		/* [L] shut down, not yet closed */
};

/*
 * One connection, from accept to close (the server keeps it as its socket
 * context): when its current request began, for the whole-request deadline.
 */
struct conn {
	struct conn		*prev, *next;	/* [L] in the set */
	struct conn_pool	*pool;		/* [I] its listener's */
	void			*owner;		/* [I] the server's listener */
	int			 fd;		/* [I] its socket, or -1 */
	time_t			 began;		/* [L] monotonic seconds */
	bool			 answering;	/* [L] request read: no deadline */
	bool			 cut;		/* [L] shut down by us */
};

/* Every connection of a server. */
struct conn_set;

/*
 * A set whose deadline sweep (once a second, when request_timeout > 0)
 * calls swept(arg) after it shut any connection down, so that the server
 * runs libmicrohttpd at once.  NULL without memory.
 */
struct conn_set	*conn_set_create(struct event_base *base,
		    unsigned request_timeout, void (*swept)(void *arg),
		    void *arg);
void		 conn_set_destroy(struct conn_set *set);
/*
 * Set the caps of the public pool and, with a separate ingest listener,
 * of ingest (else NULL), from connection_limit and RLIMIT_NOFILE; logs
 * when the descriptors hold fewer.
 */
void		 conn_caps(struct conn_pool *pub, struct conn_pool *ingest,
		    long connection_limit);
/*
 * A connection opened on pool (socket fd, or -1): counted, and, over the
 * pool's cap, the longest idle one (or this one) is shut down.  NULL
 * without memory: then it is only counted and has no deadline.
 */
struct conn	*conn_open(struct conn_set *set, struct conn_pool *pool,
		    void *owner, int fd);
/* It closed (cn may be NULL: the one conn_open had no memory for). */
void		 conn_close(struct conn_set *set, struct conn_pool *pool,
		    struct conn *cn);
/* Its last request is done: the next one's clock starts now. */
void		 conn_next_request(struct conn *cn);
/* Connections open on every pool. */
unsigned	 conn_count(const struct conn_set *set);

#endif
