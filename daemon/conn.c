/*
 * conn.c - the listeners' connections as budgets: caps, eviction, the
 * whole-request deadline.
 *
 * Isolation: a flood of idle or dripping connections must not keep a feed
 * from being answered.  libmicrohttpd's own limits (its per-IP limit and
 * its idle timeout, set in server.c) do part of it; this file does the
 * rest without libmicrohttpd: it counts every connection, evicts the
 * longest idle one when a listener passes its cap, and shuts down a
 * connection still sending one request after request_timeout.  It only
 * ever shuts a socket down (shutdown(2)); the socket stays libmicrohttpd's,
 * which sees the end of it and closes it.
 */
#include <sys/resource.h>
#include <sys/socket.h>

#include <stdlib.h>
#include <time.h>

#include <event2/event.h>

#include "conn.h"
#include "log.h"

/* Descriptors kept for the journal, snapshots, backups, epoll, logs. */
#define FD_RESERVE	128

struct conn_set {
	struct conn	*conns;			/* [L] */
	unsigned	 connections;		/* [L] */
	unsigned	 request_timeout;	/* [I] seconds; 0: none */
	struct event	*ev_deadline;		/* [I] */
	void		(*swept)(void *);	/* [I] */
	void		*arg;			/* [I] */
};

static time_t
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Shut a connection down; libmicrohttpd sees the end and closes it. */
static void
conn_cut(struct conn *cn)
{
	if (cn->fd != -1)
		(void)shutdown(cn->fd, SHUT_RDWR);
	cn->cut = true;
	cn->pool->n_cut++;
}

/*
 * A listener over its cap (a new connection, `fresh`, just came): close
 * the connection of that listener that has been idle, or sending its
 * request, for the longest.  Those the server holds (a parked feed, a
 * long-poll, an event stream, an answer being sent) are kept: their
 * budgets are elsewhere (body_memory, sse_max_clients).  With none to
 * close, the new one goes.  So a flood of idle connections delays nobody:
 * libmicrohttpd's own limit (above this cap) would instead stop accepting,
 * and a feed would wait in the backlog until the idle ones time out.
 */
static void
conn_evict(struct conn_set *set, struct conn_pool *pool, struct conn *fresh)
{
	struct conn *cn, *oldest = NULL;

	for (cn = set->conns; cn != NULL; cn = cn->next)
		if (cn != fresh && cn->pool == pool && !cn->answering &&
		    !cn->cut && (oldest == NULL || cn->began <= oldest->began))
			oldest = cn;
	conn_cut(oldest != NULL ? oldest : fresh);
	log_info_limited("connection cap", "%s: %u connections, the cap "
	    "(connection_limit, or what the descriptor limit leaves): closed %s",
	    pool->addr, pool->cap, oldest != NULL ? "the longest idle one" :
	    "a new one (every other one is being answered)");
}

struct conn *
conn_open(struct conn_set *set, struct conn_pool *pool, void *owner, int fd)
{
	struct conn *cn;

	set->connections++;
	pool->connections++;
	/* Without memory the connection simply has no deadline. */
	if ((cn = calloc(1, sizeof(*cn))) == NULL)
		return NULL;
	cn->pool = pool;
	cn->owner = owner;
	cn->fd = fd;
	cn->began = mono_now();
	cn->next = set->conns;
	if (cn->next != NULL)
		cn->next->prev = cn;
	set->conns = cn;
	if (pool->connections - pool->n_cut > pool->cap)
		conn_evict(set, pool, cn);
	return cn;
}

void
conn_close(struct conn_set *set, struct conn_pool *pool, struct conn *cn)
{
	if (set->connections > 0)
		set->connections--;
	if (pool->connections > 0)
		pool->connections--;
	if (cn == NULL)
		return;
	if (cn->cut && pool->n_cut > 0)
		pool->n_cut--;
	if (cn->prev != NULL)
		cn->prev->next = cn->next;
	else
		set->conns = cn->next;
	if (cn->next != NULL)
		cn->next->prev = cn->prev;
	free(cn);
}

void
conn_next_request(struct conn *cn)
{
	cn->began = mono_now();
	cn->answering = false;
}

unsigned
conn_count(const struct conn_set *set)
{
	return set->connections;
}

/*
 * The whole-request deadline.  libmicrohttpd's connection_timeout closes a
 * connection that sends nothing, but a client dripping a byte a second
 * keeps it alive forever.  Once a second, a connection still reading one
 * request (headers or body) after request_timeout is shut down; the socket
 * stays libmicrohttpd's, which sees the end of it and closes it.  A request
 * being answered (a parked POST, a long-poll, an event stream) is exempt:
 * the server holds it, not the client.
 */
static void
deadline_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct conn_set *set = arg;
	time_t now = mono_now();
	struct conn *cn;
	bool any = false;

	(void)fd;
	(void)what;
	for (cn = set->conns; cn != NULL; cn = cn->next) {
		if (cn->answering || cn->cut ||
		    now - cn->began < (time_t)set->request_timeout)
			continue;
		conn_cut(cn);
		any = true;
		log_info_limited("request deadline", "closed a connection on "
		    "%s still sending its request after %u s (request_timeout)",
		    cn->pool->addr, set->request_timeout);
	}
	if (any)
		set->swept(set->arg);
}

/*
 * Each listener's cap: connection_limit, within the descriptors this
 * process may open (RLIMIT_NOFILE, less FD_RESERVE and the slack).  When
 * both listeners' limits do not fit, the ingest listener keeps its own (up
 * to a quarter of what there is) and the public one gets the rest: a flood
 * of readers cannot take the descriptors a feed needs.
 */
void
conn_caps(struct conn_pool *pubpool, struct conn_pool *ingestpool,
    long connection_limit)
{
	struct rlimit rl;
	unsigned long limit = (unsigned long)connection_limit, budget;
	unsigned long ingest, pub;
	bool split = ingestpool != NULL;

	budget = 1000000;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		budget = (unsigned long)rl.rlim_cur;
	budget = budget > FD_RESERVE + 2 * CONN_CAP_SLACK + 64 ?
	    budget - FD_RESERVE - (split ? 2 : 1) * CONN_CAP_SLACK : 32;
	if (!split) {
		pubpool->cap = (unsigned)(limit < budget ? limit : budget);
		pub = ingest = pubpool->cap;
	} else {
		ingest = 2 * limit <= budget ? limit : (limit < budget / 4 ?
		    limit : budget / 4);
		pub = budget - ingest < limit ? budget - ingest : limit;
		pubpool->cap = (unsigned)pub;
		ingestpool->cap = (unsigned)ingest;
	}
	if (pub < limit || ingest < limit)
		log_warnx("RLIMIT_NOFILE %lu holds fewer connections than "
		    "connection_limit %lu on each listener: %lu on the public "
		    "one%s; raise LimitNOFILE", budget + FD_RESERVE, limit, pub,
		    split ? ", the ingest one keeps its own" : "");
}

struct conn_set *
conn_set_create(struct event_base *base, unsigned request_timeout,
    void (*swept)(void *arg), void *arg)
{
	struct conn_set *set;
	struct timeval sec = { 1, 0 };

	if ((set = calloc(1, sizeof(*set))) == NULL)
		return NULL;
	set->request_timeout = request_timeout;
	set->swept = swept;
	set->arg = arg;
	if ((set->ev_deadline = event_new(base, -1, EV_PERSIST,
	    deadline_sweep, set)) == NULL ||
	    (request_timeout > 0 && event_add(set->ev_deadline, &sec) == -1)) {
		conn_set_destroy(set);
		return NULL;
	}
	return set;
}

void
conn_set_destroy(struct conn_set *set)
{
	if (set == NULL)
		return;
	if (set->ev_deadline != NULL)
		event_free(set->ev_deadline);
	free(set);
}
