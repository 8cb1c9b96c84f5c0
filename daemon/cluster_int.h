/*
 * cluster_int.h - what cluster.c (consuming and publishing, on the loop and
 * libnats' threads) and cluster_join.c (cluster_create, at start-up) share;
 * nothing else includes it.  Built only with libnats (TALLYD_CLUSTER).
 *
 * Locks used to protect struct members: [I] immutable after create,
 * [L] loop thread, [M] under mu.
 */
#ifndef TALLYD_CLUSTER_INT_H
#define TALLYD_CLUSTER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <nats/nats.h>

#include "cluster.h"
#include "nats_dl.h"

struct event;
struct event_base;

#define QUEUE_MAX	8192	/* delivered records waiting for the loop */
#define PROBE_MS	500
#define STALE_MS	2000
/*
 * A node behind the stream to which its consumer delivered nothing for this
 * long reads the records it lacks itself (js_GetMsg, from the prober
 * thread), FETCH_MAX per round: libnats re-makes a lost ordered consumer
 * in 3 to 5 s, but in the model's cluster runs a node stayed one record
 * behind the others for 30 s with no more posts.
 */
#define STUCK_MS	5000
#define FETCH_MAX	64

enum item_kind { ITEM_RECORD, ITEM_ACK, ITEM_PROBE, ITEM_FETCHED,
	ITEM_UNSENT };

struct item {
	struct item	*next;
	enum item_kind	 kind;
	natsMsg		*msg;		/* RECORD: delivered; ACK: published */
	enum core_ack	 ack;
	uint64_t	 seq;		/* ACK, FETCHED: position; PROBE: last;
					   UNSENT: the out's id */
	bool		 dup;
	bool		 ok;		/* PROBE answered; FETCHED: first */
	char		 why[128];	/* ACK: the refusal; PROBE: leader;
					   UNSENT: libnats' error */
};

/* A record for the publisher thread to hand to libnats. */
struct pub_job {
	struct pub_job	*next;
	natsMsg		*msg;		/* ours until published */
	char		 id[320];	/* the message id */
	uint64_t	 expect_seq;
	uint64_t	 out_id;	/* its struct out */
};

/*
 * The publisher thread hands records to libnats, which can block in the
 * publish for seconds (its connection's lock is held while it reconnects,
 * a connect timeout per server).  A publish refused at once, with a 503:
 * while the thread has been inside one call for PUBLISH_STALL_MS, or
 * PUBLISH_QUEUE_MAX records wait for it.
 */
#define PUBLISH_STALL_MS	250
#define PUBLISH_QUEUE_MAX	4096

/* A record published and not yet acknowledged. */
struct out {
	struct out	*next;
	natsMsg		*msg;		/* identity only: libnats owns it */
	void		*token;
	struct timespec	 sent;
	uint64_t	 id;		/* names it to the publisher thread */
};

/*
 * The publish's MaxWait: libnats answers a publish the stream has not
 * acknowledged by then with a timeout (measured with libnats 3.4.1: the
 * NATS servers frozen or killed, the timeout came after 3 s).
 */
#define PUBLISH_WAIT_MS	3000

/*
 * Should that answer never come (a libnats that loses it across a
 * reconnect), the record is given up here: answered 503 if it still owes an
 * answer, taken out of the core's inflight list and freed.  An
 * acknowledgement after that finds no record and is dropped: the record, if
 * the stream took it, is applied like any other when it is delivered, and
 * a retry of the feed is answered "duplicate".
 */
#define OUT_EXPIRE_MS	(3 * PUBLISH_WAIT_MS)

struct cluster {
	struct cluster		*closed_next;	/* [L] cluster.c's closed list */
	char			*stream;	/* [I] */
	char			*prefix;	/* [I] "tally.<election>" */
	char			*node;		/* [I] */
	char		       **subjects;	/* [I] per province */
	size_t			 n_provinces;	/* [I] */
	natsConnection		*nc;		/* [I] thread-safe */
	/*
	 * [A] atomic: connected, as libnats' connection callbacks last said.
	 * The loop reads this, never natsConnection_Status: that takes the
	 * connection's lock, which libnats holds while it reconnects, and a
	 * node whose servers hung answered every request 0.5 to 2.7 s late.
	 */
	_Atomic bool		 connected;
	jsCtx			*js;		/* [I] thread-safe */
	natsSubscription	*sub;		/* [L] */
	int			 wake[2];	/* [I] */

	struct event_base	*base;		/* [L] */
	struct core		*core;		/* [L] */
	struct event		*ev_wake;	/* [L] */
	struct event		*ev_tick;	/* [L] */
	struct out		*outs;		/* [L] */
	size_t			 n_outs;	/* [L] */
	uint64_t		 out_ids;	/* [L] the last out's id */
	uint64_t		 log_last;	/* [L] from the prober */
	struct timespec		 probe_ok;	/* [L] last answer */
	char			 leader[128];	/* [L] the stream's, or "" */

	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct item		*q;		/* [M] */
	struct item	       **q_tail;	/* [M] */
	size_t			 q_records;	/* [M] */
	bool			 stop;		/* [M] */
	pthread_t		 prober;
	bool			 prober_running;	/* [L] */
	pthread_t		 publisher;
	bool			 publisher_running;	/* [L] */
	pthread_cond_t		 pub_cv;	/* with mu: a job, or stop */
	struct pub_job		*jobs;		/* [M] for the publisher */
	struct pub_job	       **jobs_tail;	/* [M] */
	size_t			 n_jobs;	/* [M] */
	bool			 pub_busy;	/* [M] inside libnats' publish */
	struct timespec		 pub_since;	/* [M] since (CLOCK_MONOTONIC) */
	/* The core's version, for the prober's catch-up (written [L]). */
	_Atomic uint64_t	 applied;
#ifdef TALLYD_FAILPOINTS
	/* TALLYD_FAILPOINTS=cluster_drop_acks: lose every acknowledgement. [I] */
	bool			 fp_drop_acks;
#endif
};

/* Clusters made and not destroyed (one per contest's stream): main thread,
 * then the loop [L]. */
extern size_t	cluster_live;

/* Milliseconds since t (CLOCK_MONOTONIC). */
double	cluster_ms_since(const struct timespec *t);
/* libnats' thread: the stream's answer to a publish (the AckHandler). */
void	cluster_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
	    void *arg);
#ifdef TALLYD_FAILPOINTS
/* TALLYD_FAILPOINTS for the cluster, read once at create. */
void	cluster_read_failpoints(void);
#endif

#endif
