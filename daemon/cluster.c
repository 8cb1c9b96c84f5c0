/*
 * cluster.c - the replicated log: a NATS JetStream stream behind the commit
 * core (docs/CLUSTER.md).  Joining the stream (cluster_create) is
 * cluster_join.c.
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

#include "cluster.h"
#include "core.h"
#include "log.h"
#include "util.h"

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

struct cluster *
cluster_create_stream(const struct config *cf, const struct tally_election *e,
    const char *stream, uint64_t *epoch, struct tally_diag *diag)
{
	(void)stream;
	return cluster_create(cf, e, epoch, diag);
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

#include "cluster_int.h"

bool
cluster_supported(void)
{
	return true;
}

double
cluster_ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) * 1e3 +
	    (double)(now.tv_nsec - t->tv_nsec) / 1e6;
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

void
cluster_read_failpoints(void)
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
void
cluster_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *arg)
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
			} else if (cluster_ms_since(&since) >= STUCK_MS) {
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
	case ITEM_UNSENT:
		for (op = &cl->outs; *op != NULL; op = &(*op)->next)
			if ((*op)->id == it->seq)
				break;
		log_limited("cluster", "cluster: publish: %s", it->why);
		if ((o = *op) == NULL)
			break;		/* expired: answered already */
		*op = o->next;
		cl->n_outs--;
		core_log_acked(cl->core, o->token, CORE_ACK_UNAVAILABLE, 0,
		    false);
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
		if (cluster_ms_since(&o->sent) < OUT_EXPIRE_MS) {
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

static void	*publisher(void *arg);

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
	    &so, &jerr)) != NATS_OK && cluster_ms_since(&t0) < 20000)
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
	if (pthread_create(&cl->publisher, NULL, publisher, cl) != 0)
		return -1;
	cl->publisher_running = true;
	return 0;
}

size_t			 cluster_live;
/* Closed while another cluster lived: freed with the last.  [L] */
static struct cluster	*closed;

/* After nats_CloseAndWait: nothing of libnats holds cl any more. */
static void
cluster_free(struct cluster *cl)
{
	struct item *it, *next;
	struct out *o;
	size_t i;

	for (it = cl->q; it != NULL; it = next) {
		next = it->next;
		natsMsg_Destroy(it->msg);
		free(it);
	}
	while ((o = cl->outs) != NULL) {
		cl->outs = o->next;
		free(o);
	}
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
	pthread_cond_destroy(&cl->pub_cv);
	pthread_mutex_destroy(&cl->mu);
	free(cl);
}

void
cluster_destroy(struct cluster *cl)
{
	struct cluster *c;

	if (cl == NULL)
		return;
	pthread_mutex_lock(&cl->mu);
	cl->stop = true;
	pthread_cond_broadcast(&cl->cv);
	pthread_cond_broadcast(&cl->pub_cv);
	pthread_mutex_unlock(&cl->mu);
	if (cl->prober_running)
		pthread_join(cl->prober, NULL);
	/* After the call it is in, if any (libnats may hold it a while). */
	if (cl->publisher_running)
		pthread_join(cl->publisher, NULL);
	while (cl->jobs != NULL) {
		struct pub_job *j = cl->jobs;
		cl->jobs = j->next;
		natsMsg_Destroy(j->msg);
		free(j);
	}
	if (cl->sub != NULL) {
		natsSubscription_Unsubscribe(cl->sub);
		natsSubscription_Destroy(cl->sub);
	}
	jsCtx_Destroy(cl->js);
	if (cl->nc != NULL) {
		natsConnection_Close(cl->nc);
		natsConnection_Destroy(cl->nc);
	}
	/* The loop no longer hears of it (its wake pipe stays open for a
	 * libnats thread still handing it something). */
	if (cl->ev_wake != NULL)
		event_free(cl->ev_wake);
	if (cl->ev_tick != NULL)
		event_free(cl->ev_tick);
	cl->ev_wake = cl->ev_tick = NULL;
	if (--cluster_live > 0) {
		/* Another contest's stream is still consumed. */
		cl->closed_next = closed;
		closed = cl;
		return;
	}
	/* libnats' threads are gone: nothing else touches the queues now. */
	nats_CloseAndWait(2000);
	while ((c = closed) != NULL) {
		closed = c->closed_next;
		cluster_free(c);
	}
	cluster_free(cl);
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

/*
 * The publisher thread: each record is handed to libnats here, never on
 * the loop.  libnats' publish takes its connection's lock, which it holds
 * while it reconnects (a connect timeout per server): with the NATS
 * servers hung, a publish on the loop held every GET of the node for
 * seconds.  A publish libnats refuses goes back to the loop (ITEM_UNSENT),
 * which answers it 503; no logging here (log_reopen is the loop's).
 */
static void *
publisher(void *arg)
{
	struct cluster *cl = arg;
	struct pub_job *j;
	jsPubOptions po;
	natsStatus st;
	natsMsg *msg;

	pthread_mutex_lock(&cl->mu);
	for (;;) {
		struct item *it;
		while (cl->jobs == NULL && !cl->stop)
			pthread_cond_wait(&cl->pub_cv, &cl->mu);
		if (cl->stop)
			break;
		j = cl->jobs;
		if ((cl->jobs = j->next) == NULL)
			cl->jobs_tail = &cl->jobs;
		cl->n_jobs--;
		cl->pub_busy = true;
		clock_gettime(CLOCK_MONOTONIC, &cl->pub_since);
		pthread_mutex_unlock(&cl->mu);

		jsPubOptions_Init(&po);
		po.MsgId = j->id;
		po.ExpectLastSubjectSeq = j->expect_seq; /* 0: not sent */
		po.MaxWait = PUBLISH_WAIT_MS;
		msg = j->msg;
		st = js_PublishMsgAsync(cl->js, &msg, &po);
		if (st != NATS_OK) {
			/* The message is still ours: the loop destroys it. */
			if ((it = calloc(1, sizeof(*it))) == NULL) {
				/* Its out expires (expire_outs): a 503. */
				natsMsg_Destroy(msg);
			} else {
				it->kind = ITEM_UNSENT;
				it->msg = msg;
				it->seq = j->out_id;
				snprintf(it->why, sizeof(it->why), "%s (%s)",
				    natsStatus_GetText(st),
				    nats_GetLastError(NULL));
				enqueue(cl, it);
			}
		}
		free(j);
		pthread_mutex_lock(&cl->mu);
		cl->pub_busy = false;
	}
	pthread_mutex_unlock(&cl->mu);
	return NULL;
}

static int
clog_publish(void *log, const char *payload, size_t len, size_t province,
    const struct tally_feed *f, uint64_t expect_seq, void *token)
{
	struct cluster *cl = log;
	natsMsg *msg = NULL;
	struct pub_job *j;
	struct out *o;
	char digest[20];
	bool stalled;

	if (!cl->publisher_running)
		return -1;
	/*
	 * The publisher is stuck in libnats (or far behind): refused now,
	 * 503 with Retry-After, instead of waiting with it.
	 */
	pthread_mutex_lock(&cl->mu);
	stalled = cl->n_jobs >= PUBLISH_QUEUE_MAX || (cl->pub_busy &&
	    cluster_ms_since(&cl->pub_since) >= PUBLISH_STALL_MS);
	pthread_mutex_unlock(&cl->mu);
	if (stalled) {
		log_limited("cluster", "cluster: publish: libnats has not "
		    "returned for %d ms or more (NATS unreachable or hung?); "
		    "posts answered 503", PUBLISH_STALL_MS);
		return -1;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return -1;
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		free(o);
		return -1;
	}
	feed_digest(payload, len, digest, sizeof(digest));
	/* The same feed gets the same id on every node: retries dedupe.  A
	 * lot (f NULL) has its own: its digest covers the order drawn. */
	if (f != NULL)
		snprintf(j->id, sizeof(j->id), "%s:%llu:%s",
		    cl->subjects[province] + strlen(cl->prefix) + 1,
		    (unsigned long long)f->revision, digest);
	else
		snprintf(j->id, sizeof(j->id), "%s:lot:%s",
		    cl->subjects[province] + strlen(cl->prefix) + 1, digest);
	if (natsMsg_Create(&msg, cl->subjects[province], NULL, payload,
	    (int)len) != NATS_OK) {
		free(j);
		free(o);
		return -1;
	}
	j->msg = msg;
	j->expect_seq = expect_seq;
	j->out_id = o->id = ++cl->out_ids;
	/* Waiting from now: its acknowledgement is handled on this thread. */
	o->msg = msg;
	o->token = token;
	clock_gettime(CLOCK_MONOTONIC, &o->sent);
	o->next = cl->outs;
	cl->outs = o;
	cl->n_outs++;
	pthread_mutex_lock(&cl->mu);
	*cl->jobs_tail = j;
	cl->jobs_tail = &j->next;
	cl->n_jobs++;
	pthread_cond_signal(&cl->pub_cv);
	pthread_mutex_unlock(&cl->mu);
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
	st->connected = atomic_load(&cl->connected);
	st->stale = !st->connected || cluster_ms_since(&cl->probe_ok) > STALE_MS;
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
