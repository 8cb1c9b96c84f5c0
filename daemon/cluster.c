/*
 * cluster.c - the replicated log: a NATS JetStream stream behind the commit
 * core (docs/CLUSTER.md).
 *
 * One record per message, on the subject <prefix>.<province>: the record's
 * payload is the journal's ({"version","received_at","results"}), stamped
 * by the node that took the POST.  The message id names the province, the
 * revision and a digest of the feed, so the stream drops a retry of the
 * same feed (on any node) within its duplicate window; the expected last
 * subject sequence makes a record that was checked against an old state of
 * its province fail at the stream.  Every node consumes the whole stream
 * in order (an ordered consumer from its snapshot's position) and hands
 * each record to core_log_record, where it is applied: the stream sequence
 * is the version.
 *
 * Threads.  libnats runs its own threads: the socket reader, one delivery
 * thread per subscription (our consumer), the publish acknowledgements'.
 * None of them touches the core: each callback puts an item on `q` under
 * `mu` and writes a byte to a pipe; the loop drains the queue (wake_cb)
 * and does the work.  A prober thread asks the stream for its last
 * sequence twice a second (a request that needs the stream's leader, so it
 * fails on a node cut off from the quorum): that is the lag and the
 * staleness in /healthz and the response header.  The libevent adapter
 * (adapters/libevent.h) would move socket I/O onto the loop, but message
 * callbacks would still run on libnats' delivery threads, so the hand-off
 * would be needed anyway; libnats keeps its own I/O thread here.
 *
 * Locks used to protect struct members: [I] immutable after create,
 * [L] loop thread, [M] under mu.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tallyd.h"

#ifndef TALLYD_CLUSTER

bool
cluster_supported(void)
{
	return false;
}

struct cluster *
cluster_create(const struct config *cf, const struct tally_election *e,
    uint64_t *epoch, struct tally_diag *diag)
{
	(void)cf;
	(void)e;
	(void)epoch;
	tally_diag_add(diag, "this tallyd was built without libnats: cluster "
	    "mode is not available (install libnats-dev and build again)");
	return NULL;
}

int
cluster_start(struct cluster *cl, struct event_base *base, struct core *c,
    uint64_t applied)
{
	(void)cl;
	(void)base;
	(void)c;
	(void)applied;
	return -1;
}

void
cluster_destroy(struct cluster *cl)
{
	(void)cl;
}

const struct core_log_ops cluster_log_ops = { "cluster", NULL, NULL, NULL,
    NULL, NULL };

#else

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/random.h>

#include <event2/event.h>
#include <nats/nats.h>

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

enum item_kind { ITEM_RECORD, ITEM_ACK, ITEM_PROBE, ITEM_FETCHED };

struct item {
	struct item	*next;
	enum item_kind	 kind;
	natsMsg		*msg;		/* RECORD: delivered; ACK: published */
	enum core_ack	 ack;
	uint64_t	 seq;		/* ACK, FETCHED: position; PROBE: last */
	bool		 dup;
	bool		 ok;		/* PROBE answered; FETCHED: first */
	char		 why[128];	/* ACK: the refusal; PROBE: leader */
};

/* A record published and not yet acknowledged. */
struct out {
	struct out	*next;
	natsMsg		*msg;		/* identity only: libnats owns it */
	void		*token;
	struct timespec	 sent;
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
	char			*stream;	/* [I] */
	char			*prefix;	/* [I] "tally.<election>" */
	char			*node;		/* [I] */
	char		       **subjects;	/* [I] per province */
	size_t			 n_provinces;	/* [I] */
	natsConnection		*nc;		/* [I] thread-safe */
	jsCtx			*js;		/* [I] thread-safe */
	natsSubscription	*sub;		/* [L] */
	int			 wake[2];	/* [I] */

	struct event_base	*base;		/* [L] */
	struct core		*core;		/* [L] */
	struct event		*ev_wake;	/* [L] */
	struct event		*ev_tick;	/* [L] */
	struct out		*outs;		/* [L] */
	size_t			 n_outs;	/* [L] */
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
	/* The core's version, for the prober's catch-up (written [L]). */
	_Atomic uint64_t	 applied;
#ifdef TALLYD_FAILPOINTS
	/* TALLYD_FAILPOINTS=cluster_drop_acks: lose every acknowledgement. [I] */
	bool			 fp_drop_acks;
#endif
};

bool
cluster_supported(void)
{
	return true;
}

static double
ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) * 1e3 +
	    (double)(now.tv_nsec - t->tv_nsec) / 1e6;
}

/* Subject tokens may not hold '.', '*', '>' or blanks. */
static char *
subject_token(const char *prefix, const char *id)
{
	char *s, *p;

	if (asprintf(&s, "%s%s%s", prefix ? prefix : "", prefix ? "." : "",
	    id) == -1)
		return NULL;
	for (p = s + (prefix ? strlen(prefix) + 1 : 0); *p != '\0'; p++)
		if (*p == '.' || *p == '*' || *p == '>' || *p == ' ' ||
		    *p == '\t')
			*p = '_';
	return s;
}

/* Any thread: hand an item to the loop. */
static void
enqueue(struct cluster *cl, struct item *it)
{
	bool was_empty;
	char b = 1;

	pthread_mutex_lock(&cl->mu);
	if (cl->stop) {
		pthread_mutex_unlock(&cl->mu);
		natsMsg_Destroy(it->msg);
		free(it);
		return;
	}
	was_empty = cl->q == NULL;
	*cl->q_tail = it;
	cl->q_tail = &it->next;
	pthread_mutex_unlock(&cl->mu);
	/* A full pipe already wakes the loop, which drains on a timer too. */
	if (was_empty && write(cl->wake[1], &b, 1) == -1)
		return;
}

#ifdef TALLYD_FAILPOINTS
/*
 * TALLYD_FAILPOINTS="cluster_mute_from=N": the consumer's deliveries from
 * stream sequence N on are dropped (tests: a consumer that falls silent
 * while the stream goes on; only catch-up brings the records).
 */
static _Atomic uint64_t	fp_mute_from;
#endif

/* libnats' delivery thread: one record of the stream, in order. */
static void
on_record(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
	struct cluster *cl = arg;
	struct item *it;

	(void)nc;
	(void)sub;
#ifdef TALLYD_FAILPOINTS
	if (atomic_load(&fp_mute_from) > 0) {
		jsMsgMetaData *meta = NULL;
		bool mute = natsMsg_GetMetaData(&meta, msg) == NATS_OK &&
		    meta->Sequence.Stream >= atomic_load(&fp_mute_from);
		jsMsgMetaData_Destroy(meta);
		if (mute) {
			natsMsg_Destroy(msg);
			return;
		}
	}
#endif
	if ((it = calloc(1, sizeof(*it))) == NULL) {
		/*
		 * Losing a record would fork this node's history: stop, and
		 * let the restart read the stream again.
		 */
		fatalx("out of memory receiving a log record");
	}
	it->kind = ITEM_RECORD;
	it->msg = msg;
	/* Back-pressure: the stream waits while the loop is behind. */
	pthread_mutex_lock(&cl->mu);
	while (cl->q_records >= QUEUE_MAX && !cl->stop)
		pthread_cond_wait(&cl->cv, &cl->mu);
	cl->q_records++;
	pthread_mutex_unlock(&cl->mu);
	enqueue(cl, it);
}

#ifdef TALLYD_FAILPOINTS
/*
 * TALLYD_FAILPOINTS="ack_delay_ms=N": the first publish acknowledgement
 * reaches the loop N ms late (tests: an acknowledgement that comes after
 * its record and many more).  Read once at start; test builds only.
 */
static _Atomic long	fp_ack_delay_ms;

static void
read_failpoints(void)
{
	const char *env = getenv("TALLYD_FAILPOINTS"), *p;

	if (env != NULL && (p = strstr(env, "ack_delay_ms=")) != NULL) {
		fp_ack_delay_ms = atol(p + 13);
		log_warnx("cluster failpoints in force: %s", env);
	}
	if (env != NULL && (p = strstr(env, "cluster_mute_from=")) != NULL) {
		fp_mute_from = strtoull(p + 18, NULL, 10);
		log_warnx("cluster failpoints in force: %s", env);
	}
}
#endif

/* libnats' thread: the stream's answer to a publish. */
static void
on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *arg)
{
	struct cluster *cl = arg;
	struct item *it;
	const char *s;

	(void)js;
#ifdef TALLYD_FAILPOINTS
	if (cl->fp_drop_acks) {
		/* A libnats that loses the answer (tests: expire_outs). */
		natsMsg_Destroy(msg);
		return;
	}
	{
		long ms = atomic_exchange(&fp_ack_delay_ms, 0);
		if (ms > 0)
			usleep((useconds_t)ms * 1000);
	}
#endif
	if ((it = calloc(1, sizeof(*it))) == NULL)
		fatalx("out of memory receiving a publish acknowledgement");
	it->kind = ITEM_ACK;
	it->msg = msg;
	if (pa != NULL) {
		it->ack = CORE_ACK_OK;
		it->seq = pa->Sequence;
		it->dup = pa->Duplicate;
	} else if (pae != NULL && pae->ErrCode == JSStreamWrongLastSequenceErr &&
	    pae->ErrText != NULL && (s = strrchr(pae->ErrText, ':')) != NULL) {
		/* "wrong last sequence: N" */
		it->ack = CORE_ACK_WRONG_LAST;
		it->seq = strtoull(s + 1, NULL, 10);
	} else {
		it->ack = CORE_ACK_UNAVAILABLE;
		if (pae != NULL)
			snprintf(it->why, sizeof(it->why), "%s (JetStream "
			    "error %d)", pae->ErrText ? pae->ErrText :
			    natsStatus_GetText(pae->Err), (int)pae->ErrCode);
	}
	enqueue(cl, it);
}

/*
 * Whether the stream's leader sees a quorum of its replicas: a leader cut
 * off from the others goes on answering stream info for a while (2.9 steps
 * down only later), so its own view of its peers is what tells.
 */
static bool
has_quorum(const jsStreamInfo *si)
{
	const jsClusterInfo *ci = si->Cluster;
	int i, up = 1, all;

	if (ci == NULL || ci->Leader == NULL || ci->Leader[0] == '\0')
		return ci == NULL;	/* not clustered: a single server */
	all = ci->ReplicasLen + 1;
	for (i = 0; i < ci->ReplicasLen; i++) {
		const jsPeerInfo *p = ci->Replicas[i];
		if (p != NULL && !p->Offline && p->Current &&
		    p->Active < 2000LL * 1000000LL)
			up++;
	}
	return up >= all / 2 + 1;
}

/*
 * The prober thread, behind the stream with nothing delivered for STUCK_MS:
 * read records applied + 1 ... (at most FETCH_MAX, up to last) and hand
 * them to the loop, which applies each only if it is the next one.
 */
static void
catch_up(struct cluster *cl, uint64_t applied, uint64_t last, jsOptions *jo)
{
	uint64_t seq;
	jsErrCode jerr;

	/* No logging here (log_reopen swaps the file on the loop): the loop
	 * logs the first item of a round (ok), and a failure shows as a
	 * lag that stays. */
	for (seq = applied + 1; seq <= last && seq <= applied + FETCH_MAX;
	    seq++) {
		natsMsg *m = NULL;
		struct item *it;

		jerr = 0;
		if (js_GetMsg(&m, cl->js, cl->stream, seq, jo, &jerr) !=
		    NATS_OK)
			return;		/* again after STUCK_MS */
		if ((it = calloc(1, sizeof(*it))) == NULL) {
			natsMsg_Destroy(m);
			return;
		}
		it->kind = ITEM_FETCHED;
		it->msg = m;
		it->seq = seq;
		it->ok = seq == applied + 1;
		enqueue(cl, it);
	}
}

/* The prober thread: the stream's last sequence, from its leader. */
static void *
prober(void *arg)
{
	struct cluster *cl = arg;
	struct timespec until, since;
	uint64_t stuck_at = UINT64_MAX;
	jsOptions jo;

	jsOptions_Init(&jo);
	jo.Wait = 1000;
	clock_gettime(CLOCK_MONOTONIC, &since);
	for (;;) {
		jsStreamInfo *si = NULL;
		struct item *it;
		natsStatus st;
		uint64_t applied = atomic_load(&cl->applied);

		st = js_GetStreamInfo(&si, cl->js, cl->stream, &jo, NULL);
		if (st == NATS_OK && si != NULL && si->State.LastSeq > applied) {
			if (applied != stuck_at) {
				stuck_at = applied;
				clock_gettime(CLOCK_MONOTONIC, &since);
			} else if (ms_since(&since) >= STUCK_MS) {
				catch_up(cl, applied, si->State.LastSeq, &jo);
				clock_gettime(CLOCK_MONOTONIC, &since);
			}
		} else
			stuck_at = UINT64_MAX;
		if ((it = calloc(1, sizeof(*it))) != NULL) {
			it->kind = ITEM_PROBE;
			it->ok = st == NATS_OK && si != NULL && has_quorum(si);
			it->seq = it->ok ? si->State.LastSeq : 0;
			if (st == NATS_OK && si != NULL && si->Cluster != NULL &&
			    si->Cluster->Leader != NULL)
				snprintf(it->why, sizeof(it->why), "%s",
				    si->Cluster->Leader);
			enqueue(cl, it);
		}
		jsStreamInfo_Destroy(si);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += PROBE_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&cl->mu);
		if (!cl->stop)
			pthread_cond_timedwait(&cl->cv, &cl->mu, &until);
		if (cl->stop) {
			pthread_mutex_unlock(&cl->mu);
			return NULL;
		}
		pthread_mutex_unlock(&cl->mu);
	}
}

static size_t
province_of(const struct cluster *cl, const char *subject)
{
	size_t i;

	for (i = 0; i < cl->n_provinces; i++)
		if (strcmp(cl->subjects[i], subject) == 0)
			return i;
	return SIZE_MAX;
}

static void
handle(struct cluster *cl, struct item *it)
{
	jsMsgMetaData *meta = NULL;
	struct out **op, *o;

	switch (it->kind) {
	case ITEM_RECORD:
		if (natsMsg_GetMetaData(&meta, it->msg) != NATS_OK) {
			log_warnx("cluster: a delivered message without "
			    "metadata; skipped");
			break;
		}
		core_log_record(cl->core, meta->Sequence.Stream,
		    natsMsg_GetData(it->msg),
		    (size_t)natsMsg_GetDataLength(it->msg),
		    province_of(cl, natsMsg_GetSubject(it->msg)));
		if (meta->Sequence.Stream > cl->log_last)
			cl->log_last = meta->Sequence.Stream;
		jsMsgMetaData_Destroy(meta);
		break;
	case ITEM_FETCHED:
		if (it->ok)
			log_warnx("cluster: at stream sequence %llu with nothing "
			    "delivered for %d ms while the stream is ahead: "
			    "reading the records directly",
			    (unsigned long long)it->seq - 1, STUCK_MS);
		/* Only the next record: the consumer may have brought it. */
		if (it->seq != core_state(cl->core)->version + 1)
			break;
		core_log_record(cl->core, it->seq, natsMsg_GetData(it->msg),
		    (size_t)natsMsg_GetDataLength(it->msg),
		    province_of(cl, natsMsg_GetSubject(it->msg)));
		if (it->seq > cl->log_last)
			cl->log_last = it->seq;
		break;
	case ITEM_ACK:
		for (op = &cl->outs; *op != NULL; op = &(*op)->next)
			if ((*op)->msg == it->msg)
				break;
		if ((o = *op) == NULL) {
			/* Expired (expire_outs): nothing waits for it. */
			log_debug("cluster: a late acknowledgement (stream "
			    "sequence %llu); the record was given up",
			    (unsigned long long)it->seq);
			break;
		}
		*op = o->next;
		cl->n_outs--;
		if (it->ack == CORE_ACK_UNAVAILABLE)
			log_limited("cluster", "cluster: the stream refused a "
			    "record: %s", it->why);
		core_log_acked(cl->core, o->token, it->ack, it->seq, it->dup);
		free(o);
		break;
	case ITEM_PROBE:
		memcpy(cl->leader, it->why, sizeof(cl->leader));
		if (it->ok) {
			clock_gettime(CLOCK_MONOTONIC, &cl->probe_ok);
			if (it->seq > cl->log_last)
				cl->log_last = it->seq;
		}
		break;
	}
}

/* The loop: everything the libnats threads handed over. */
static void
drain(struct cluster *cl)
{
	struct item *it, *next;
	size_t records = 0;
	char buf[256];

	while (read(cl->wake[0], buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&cl->mu);
	it = cl->q;
	cl->q = NULL;
	cl->q_tail = &cl->q;
	pthread_mutex_unlock(&cl->mu);
	for (; it != NULL; it = next) {
		next = it->next;
		handle(cl, it);
		atomic_store(&cl->applied, core_state(cl->core)->version);
		if (it->kind == ITEM_RECORD)
			records++;
		natsMsg_Destroy(it->msg);
		free(it);
	}
	if (records > 0) {
		pthread_mutex_lock(&cl->mu);
		cl->q_records -= records;
		pthread_cond_broadcast(&cl->cv);
		pthread_mutex_unlock(&cl->mu);
	}
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	drain(arg);
}

/* Give up the records published longer than OUT_EXPIRE_MS ago. */
static void
expire_outs(struct cluster *cl)
{
	struct out **op = &cl->outs, *o;

	while ((o = *op) != NULL) {
		if (ms_since(&o->sent) < OUT_EXPIRE_MS) {
			op = &o->next;
			continue;
		}
		*op = o->next;
		cl->n_outs--;
		log_limited("cluster", "cluster: no acknowledgement of a "
		    "record after %d ms; given up (answered 503 if still "
		    "waiting)", OUT_EXPIRE_MS);
		core_log_acked(cl->core, o->token, CORE_ACK_UNAVAILABLE, 0,
		    false);
		free(o);
	}
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cluster *cl = arg;

	(void)fd;
	(void)what;
	drain(cl);
	expire_outs(cl);
	core_log_tick(cl->core, time(NULL));
}

/*
 * The stream's identity, for the validators' epoch: a random id in its
 * first message, written by whichever node finds the stream empty (the
 * same message id makes every other node's attempt a duplicate).  The
 * stream's creation time would do, but JetStream 2.9 answered two nodes
 * that created the stream at once with two different times.
 */
static natsStatus
stream_epoch(struct cluster *cl, uint64_t *epoch, char *why, size_t whylen)
{
	natsMsg *m = NULL;
	jsPubAck *pa = NULL;
	jsPubOptions po;
	jsErrCode jerr = 0;
	natsStatus st;
	unsigned char rnd[16];
	char subj[300], body[64];
	const char *d;
	uint64_t h = FNV1A64_INIT;
	int i, len;

	snprintf(subj, sizeof(subj), "%s._epoch", cl->prefix);
	st = js_GetMsg(&m, cl->js, cl->stream, 1, NULL, &jerr);
	if (st == NATS_NOT_FOUND) {
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return NATS_ERR;
		len = snprintf(body, sizeof(body), "{\"tallyd_epoch\":\"");
		for (i = 0; i < 16; i++)
			len += snprintf(body + len, sizeof(body) - (size_t)len,
			    "%02x", rnd[i]);
		len += snprintf(body + len, sizeof(body) - (size_t)len, "\"}");
		jsPubOptions_Init(&po);
		po.MsgId = "tallyd-epoch";
		st = js_Publish(&pa, cl->js, subj, body, len, &po, &jerr);
		jsPubAck_Destroy(pa);
		if (st == NATS_OK)
			st = js_GetMsg(&m, cl->js, cl->stream, 1, NULL, &jerr);
	}
	if (st != NATS_OK) {
		snprintf(why, whylen, "reading the stream's first message: %s "
		    "(JetStream error %d)", natsStatus_GetText(st), (int)jerr);
		return st;
	}
	if (strcmp(natsMsg_GetSubject(m), subj) != 0) {
		snprintf(why, whylen, "the stream's first message is on "
		    "%.60s, not %.60s: is this stream another application's?",
		    natsMsg_GetSubject(m), subj);
		natsMsg_Destroy(m);
		return NATS_ERR;
	}
	d = natsMsg_GetData(m);
	*epoch = fnv1a64(h, d, (size_t)natsMsg_GetDataLength(m));
	natsMsg_Destroy(m);
	return NATS_OK;
}

static natsStatus
find_stream(struct cluster *cl, const struct config *cf, uint64_t *epoch,
    char *why, size_t whylen)
{
	jsStreamInfo *si = NULL;
	jsStreamConfig sc;
	jsErrCode jerr = 0;
	natsStatus st;
	char *filter;
	const char *subjects[1];

	st = js_GetStreamInfo(&si, cl->js, cl->stream, NULL, &jerr);
	if (st == NATS_NOT_FOUND) {
		if (asprintf(&filter, "%s.>", cl->prefix) == -1)
			return NATS_NO_MEMORY;
		subjects[0] = filter;
		jsStreamConfig_Init(&sc);
		sc.Name = cl->stream;
		sc.Subjects = subjects;
		sc.SubjectsLen = 1;
		sc.Storage = js_FileStorage;
		sc.Replicas = cf->cluster_replicas;
		sc.Duplicates = 120LL * 1000000000LL;	/* 2 minutes */
		st = js_AddStream(&si, cl->js, &sc, NULL, &jerr);
		free(filter);
		if (st != NATS_OK) {
			/* Another node may have made it just now. */
			jsStreamInfo_Destroy(si);
			si = NULL;
			st = js_GetStreamInfo(&si, cl->js, cl->stream, NULL,
			    &jerr);
		} else
			log_info("cluster: created stream %s (%d replicas)",
			    cl->stream, (int)cf->cluster_replicas);
	}
	if (st == NATS_OK) {
		if (si->Config != NULL && si->Config->Replicas <
		    (int64_t)cf->cluster_replicas)
			log_warnx("cluster: stream %s has %d replicas (%ld "
			    "configured): losing a machine may lose "
			    "acknowledged feeds", cl->stream,
			    (int)si->Config->Replicas, cf->cluster_replicas);
	} else
		snprintf(why, whylen, "%s (JetStream error %d)",
		    natsStatus_GetText(st), (int)jerr);
	jsStreamInfo_Destroy(si);
	if (st == NATS_OK)
		st = stream_epoch(cl, epoch, why, whylen);
	return st;
}

struct cluster *
cluster_create(const struct config *cf, const struct tally_election *e,
    uint64_t *epoch, struct tally_diag *diag)
{
	struct cluster *cl;
	natsOptions *o = NULL;
	jsOptions jo;
	const char *urls[16];
	char *list = NULL, *tok, *save, why[256];
	struct timespec t0;
	natsStatus st;
	int n = 0;
	size_t i;

	if ((cl = calloc(1, sizeof(*cl))) == NULL)
		goto nomem;
#ifdef TALLYD_FAILPOINTS
	read_failpoints();
#endif
	cl->wake[0] = cl->wake[1] = -1;
	pthread_mutex_init(&cl->mu, NULL);
	pthread_cond_init(&cl->cv, NULL);
	cl->q_tail = &cl->q;
#ifdef TALLYD_FAILPOINTS
	{
		const char *fp = getenv("TALLYD_FAILPOINTS");
		if (fp != NULL && strstr(fp, "cluster_drop_acks") != NULL) {
			cl->fp_drop_acks = true;
			log_warnx("cluster failpoint in force: cluster_drop_acks");
		}
	}
#endif
	cl->stream = strdup(cf->cluster_stream ? cf->cluster_stream : "TALLY");
	cl->prefix = subject_token("tally", e->id);
	cl->node = strdup(cf->cluster_node ? cf->cluster_node : cf->listen);
	cl->n_provinces = e->n_provinces;
	if (cl->stream == NULL || cl->prefix == NULL || cl->node == NULL ||
	    (cl->subjects = calloc(e->n_provinces, sizeof(char *))) == NULL)
		goto nomem;
	for (i = 0; i < e->n_provinces; i++)
		if ((cl->subjects[i] = subject_token(cl->prefix,
		    e->provinces[i].id)) == NULL)
			goto nomem;
	if (pipe2(cl->wake, O_NONBLOCK | O_CLOEXEC) == -1) {
		tally_diag_add(diag, "cluster: pipe: %s", strerror(errno));
		goto fail;
	}
	if ((list = strdup(cf->cluster_urls)) == NULL)
		goto nomem;
	for (tok = strtok_r(list, ", ", &save); tok != NULL && n < 16;
	    tok = strtok_r(NULL, ", ", &save))
		urls[n++] = tok;
	if (n == 0) {
		tally_diag_add(diag, "cluster_urls: no URL");
		goto fail;
	}
	if (natsOptions_Create(&o) != NATS_OK ||
	    natsOptions_SetServers(o, urls, n) != NATS_OK ||
	    natsOptions_SetName(o, cl->node) != NATS_OK ||
	    natsOptions_SetMaxReconnect(o, -1) != NATS_OK ||
	    natsOptions_SetReconnectWait(o, 100) != NATS_OK ||
	    natsOptions_SetTimeout(o, 1000) != NATS_OK ||
	    natsOptions_SetPingInterval(o, 1000) != NATS_OK ||
	    natsOptions_SetMaxPingsOut(o, 2) != NATS_OK)
		goto nomem;
	/*
	 * At start the servers may be starting too (scripts/cluster up, a
	 * reboot), or the stream may be electing a leader after a lost
	 * machine: try for 60 s, saying so every 5 s, then give up with the
	 * reason.
	 */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned tries = 1;; tries++) {
		st = natsConnection_Connect(&cl->nc, o);
		if (st == NATS_OK) {
			jsOptions_Init(&jo);
			jo.Wait = 2000;
			jo.PublishAsync.AckHandler = on_ack;
			jo.PublishAsync.AckHandlerClosure = cl;
			jo.PublishAsync.MaxPending = 65536;
			st = natsConnection_JetStream(&cl->js, cl->nc, &jo);
			if (st == NATS_OK)
				st = find_stream(cl, cf, epoch, why, sizeof(why));
			else
				snprintf(why, sizeof(why), "%s",
				    natsStatus_GetText(st));
		} else
			snprintf(why, sizeof(why), "%s", natsStatus_GetText(st));
		if (st == NATS_OK)
			break;
		if (ms_since(&t0) > 60000) {
			tally_diag_add(diag, "cluster: cannot reach stream %s at "
			    "%s for 60 s: %s", cl->stream, cf->cluster_urls, why);
			goto fail;
		}
		if (tries % 20 == 0)
			log_info("cluster: waiting for stream %s (%s)", cl->stream,
			    why);
		jsCtx_Destroy(cl->js);
		cl->js = NULL;
		natsConnection_Destroy(cl->nc);
		cl->nc = NULL;
		usleep(250000);
	}
	natsOptions_Destroy(o);
	free(list);
	log_info("cluster: node %s on stream %s (subjects %s.>), epoch %llu",
	    cl->node, cl->stream, cl->prefix, (unsigned long long)*epoch);
	return cl;
nomem:
	tally_diag_add(diag, "cluster: out of memory");
fail:
	natsOptions_Destroy(o);
	free(list);
	cluster_destroy(cl);
	return NULL;
}

int
cluster_start(struct cluster *cl, struct event_base *base, struct core *c,
    uint64_t applied)
{
	struct timeval tv = { 0, 250000 };
	struct timespec t0;
	jsSubOptions so;
	jsErrCode jerr = 0;
	natsStatus st;
	char *filter;

	cl->base = base;
	cl->core = c;
	atomic_store(&cl->applied, applied);
	clock_gettime(CLOCK_MONOTONIC, &cl->probe_ok);
	cl->ev_wake = event_new(base, cl->wake[0], EV_READ | EV_PERSIST,
	    wake_cb, cl);
	cl->ev_tick = event_new(base, -1, EV_PERSIST, tick_cb, cl);
	if (cl->ev_wake == NULL || cl->ev_tick == NULL ||
	    event_add(cl->ev_wake, NULL) == -1 ||
	    event_add(cl->ev_tick, &tv) == -1)
		return -1;
	if (asprintf(&filter, "%s.>", cl->prefix) == -1)
		return -1;
	jsSubOptions_Init(&so);
	so.Stream = cl->stream;
	so.Ordered = true;
	/*
	 * The ordered consumer lives on one server: when that server dies,
	 * libnats notices by missed heartbeats and makes a new one where it
	 * stopped.  Its default of 5 s made a leader's loss cost 5 to 18 s of
	 * 503s; 500 ms heartbeats cost a few bytes a second.
	 */
	so.Config.Heartbeat = 500LL * 1000000LL;
	if (applied > 0) {
		so.Config.DeliverPolicy = js_DeliverByStartSequence;
		so.Config.OptStartSeq = applied + 1;
	} else
		so.Config.DeliverPolicy = js_DeliverAll;
	/* The stream may be electing a leader (a server just restarted). */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((st = js_Subscribe(&cl->sub, cl->js, filter, on_record, cl, NULL,
	    &so, &jerr)) != NATS_OK && ms_since(&t0) < 20000)
		usleep(250000);
	free(filter);
	if (st != NATS_OK) {
		log_warnx("cluster: cannot consume stream %s: %s (JetStream "
		    "error %d)", cl->stream, natsStatus_GetText(st), (int)jerr);
		return -1;
	}
	/* Records wait in our queue, not in libnats' (see on_record). */
	natsSubscription_SetPendingLimits(cl->sub, -1, -1);
	if (pthread_create(&cl->prober, NULL, prober, cl) != 0)
		return -1;
	cl->prober_running = true;
	return 0;
}

void
cluster_destroy(struct cluster *cl)
{
	struct item *it, *next;
	struct out *o;
	size_t i;

	if (cl == NULL)
		return;
	pthread_mutex_lock(&cl->mu);
	cl->stop = true;
	pthread_cond_broadcast(&cl->cv);
	pthread_mutex_unlock(&cl->mu);
	if (cl->prober_running)
		pthread_join(cl->prober, NULL);
	if (cl->sub != NULL) {
		natsSubscription_Unsubscribe(cl->sub);
		natsSubscription_Destroy(cl->sub);
	}
	jsCtx_Destroy(cl->js);
	if (cl->nc != NULL) {
		natsConnection_Close(cl->nc);
		natsConnection_Destroy(cl->nc);
	}
	/* libnats' threads are gone: nothing else touches the queue now. */
	nats_CloseAndWait(2000);
	for (it = cl->q; it != NULL; it = next) {
		next = it->next;
		natsMsg_Destroy(it->msg);
		free(it);
	}
	while ((o = cl->outs) != NULL) {
		cl->outs = o->next;
		free(o);
	}
	if (cl->ev_wake != NULL)
		event_free(cl->ev_wake);
	if (cl->ev_tick != NULL)
		event_free(cl->ev_tick);
	if (cl->wake[0] != -1) {
		close(cl->wake[0]);
		close(cl->wake[1]);
	}
	for (i = 0; cl->subjects != NULL && i < cl->n_provinces; i++)
		free(cl->subjects[i]);
	free(cl->subjects);
	free(cl->stream);
	free(cl->prefix);
	free(cl->node);
	pthread_cond_destroy(&cl->cv);
	pthread_mutex_destroy(&cl->mu);
	free(cl);
}

/* 16 hex digits of a feed's canonical bytes: the "results" of a record. */
static void
feed_digest(const char *payload, size_t len, char *out, size_t outlen)
{
	const char *r = memmem(payload, len, "\"results\"", 9);
	const char *p = r ? r : payload;
	uint64_t h = fnv1a64(FNV1A64_INIT, p, (size_t)(payload + len - p));

	snprintf(out, outlen, "%016llx", (unsigned long long)h);
}

static int
clog_publish(void *log, const char *payload, size_t len, size_t province,
    const struct tally_feed *f, uint64_t expect_seq, void *token)
{
	struct cluster *cl = log;
	natsMsg *msg = NULL, *sent;
	jsPubOptions po;
	struct out *o;
	char id[320], digest[20];
	natsStatus st;

	if ((o = calloc(1, sizeof(*o))) == NULL)
		return -1;
	feed_digest(payload, len, digest, sizeof(digest));
	/* The same feed gets the same id on every node: retries dedupe.  A
	 * lot (f NULL) has its own: its digest covers the order drawn. */
	if (f != NULL)
		snprintf(id, sizeof(id), "%s:%llu:%s", cl->subjects[province] +
		    strlen(cl->prefix) + 1, (unsigned long long)f->revision,
		    digest);
	else
		snprintf(id, sizeof(id), "%s:lot:%s", cl->subjects[province] +
		    strlen(cl->prefix) + 1, digest);
	if (natsMsg_Create(&msg, cl->subjects[province], NULL, payload,
	    (int)len) != NATS_OK) {
		free(o);
		return -1;
	}
	jsPubOptions_Init(&po);
	po.MsgId = id;
	po.ExpectLastSubjectSeq = expect_seq;	/* 0: not sent by libnats */
	po.MaxWait = PUBLISH_WAIT_MS;
	sent = msg;
	st = js_PublishMsgAsync(cl->js, &msg, &po);
	if (st != NATS_OK) {
		natsMsg_Destroy(msg);	/* still ours on failure */
		free(o);
		log_limited("cluster", "cluster: publish: %s (%s)",
		    natsStatus_GetText(st), nats_GetLastError(NULL));
		return -1;
	}
	/* The acknowledgement is handled on this thread, after this. */
	o->msg = sent;
	o->token = token;
	clock_gettime(CLOCK_MONOTONIC, &o->sent);
	o->next = cl->outs;
	cl->outs = o;
	cl->n_outs++;
	return 0;
}

static uint64_t
clog_next_seq(void *log)
{
	(void)log;
	return 0;
}

static bool
clog_busy(void *log)
{
	(void)log;
	return false;
}

static void
clog_status(void *log, struct core_log_status *st)
{
	struct cluster *cl = log;

	st->node = cl->node;
	st->stream = cl->stream;
	st->log_last = cl->log_last;
	st->leader = cl->leader;
	st->connected = natsConnection_Status(cl->nc) == NATS_CONN_STATUS_CONNECTED;
	st->stale = !st->connected || ms_since(&cl->probe_ok) > STALE_MS;
	st->unacked = cl->n_outs;
}

const struct core_log_ops cluster_log_ops = {
	"cluster", NULL, clog_next_seq, clog_busy, clog_publish, clog_status,
};

#endif

/*
 * The response header of a cluster node: which node answered and how far
 * behind the stream it is (never in a body: bodies are the same on every
 * node).  arg: the core.
 */
const char *
cluster_header(void *arg)
{
	static char buf[320];
	struct core *c = arg;
	struct core_log_status st;

	if (!core_log_status(c, &st))
		return NULL;
	snprintf(buf, sizeof(buf), "%s; version=%llu; lag=%llu%s", st.node,
	    (unsigned long long)core_state(c)->version,
	    (unsigned long long)st.lag, st.stale ? "; stale" : "");
	return buf;
}
