/*
 * core_cluster.c - the cluster commit protocol: a log that orders records
 * itself (daemon/cluster.c, NATS JetStream).
 *
 * The log, not this core, decides the order, and every node applies every
 * record of the log, its own and other nodes', in that order.  So a request
 * is checked against the applied state and, if new, published as one
 * record; its answer waits until the log acknowledged it (core_log_acked)
 * *and* this node applied the record at that position (core_log_record).
 * Whether a record is applied is decided at apply time from the state alone
 * (tally_journal_apply refuses anything but new revisions), so every node
 * takes the same decision from the same log, and the answer to the poster is
 * that decision: 201 when its record was applied, 200 when an identical copy
 * was (the log dropped a retry by its message id), 409 when a conflicting
 * record came first.  The per-province expected sequence only makes the
 * usual conflict fail early, at the log, without a record.
 *
 * A request waits while another of this node's records for the same
 * province is out (in_round), so a node never races itself.  Batches are
 * refused: one record per province subject is what makes the log's
 * per-subject check meaningful (docs/CLUSTER.md).
 *
 * Its state (struct cluster_commit) is reached only through
 * core_cluster_of, which refuses a core running the local protocol: the
 * log's callbacks (core_log_acked, core_log_record, core_log_tick) can
 * never run on a journal's requests.  Loop thread only [L].
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "log.h"
#include "util.h"
#include "core_int.h"

/* How long a post waits for the log before a 503. */
#define CORE_PUBLISH_WAIT	5

struct cluster_commit {
	struct pending		*inflight;	/* [L] published, not finished */
	bool			*in_round;	/* [L] per province: one of ours
						   is out */
	uint64_t		*subject_seq;	/* [L] per province: its last
						   record */
	/*
	 * Whether each record applied while one of this node's records
	 * waited for its acknowledgement was applied or refused, oldest
	 * first: its answer when the acknowledgement comes after the record
	 * (it may come any number of records later).  Emptied whenever no
	 * record waits.  (A ring of 4,096 turned a poster's own 201 into 200
	 * once 4,096 more records came first.)  [L]
	 */
	struct decision {
		uint64_t	seq;
		bool		applied;
	}			*decided;
	size_t			 n_decided, cap_decided;
	bool			 decided_lost;	/* no memory to record one */
};

/* The cluster protocol's state of c; a core running another one is a bug. */
static struct cluster_commit *
core_cluster_of(const struct core *c)
{
	if (c->proto != &core_cluster_protocol)
		fatalx("the cluster log reached a core running the %s "
		    "protocol", c->proto ? c->proto->name : "no");
	return c->proto_state;
}

static void *
cc_create(const struct tally_election *e)
{
	struct cluster_commit *cc;

	if ((cc = calloc(1, sizeof(*cc))) == NULL ||
	    (cc->in_round = calloc(e->n_provinces, sizeof(*cc->in_round))) ==
	    NULL || (cc->subject_seq = calloc(e->n_provinces,
	    sizeof(*cc->subject_seq))) == NULL) {
		if (cc != NULL)
			free(cc->in_round);
		free(cc);
		return NULL;
	}
	return cc;
}

static void
cc_destroy(void *st)
{
	struct cluster_commit *cc = st;

	if (cc == NULL)
		return;
	while (cc->inflight != NULL) {
		struct pending *p = cc->inflight;
		cc->inflight = p->next;
		core_pending_free(p);
	}
	free(cc->in_round);
	free(cc->subject_seq);
	free(cc->decided);
	free(cc);
}

/* A published record still owes someone an answer. */
static bool
cc_owes(const struct core *c)
{
	const struct pending *p;

	for (p = core_cluster_of(c)->inflight; p != NULL; p = p->next)
		if (p->done != NULL)
			return true;
	return false;
}

/* Answered now; still applied if the log took it (as a journal's round). */
static void
cc_abandon(struct core *c)
{
	struct pending *p;

	for (p = core_cluster_of(c)->inflight; p != NULL; p = p->next)
		core_answer_kind(c, p, CORE_STOPPING, NULL, 0);
}

static void	publish_round(struct core *c);

const struct core_protocol core_cluster_protocol = {
	"cluster", cc_create, cc_destroy, publish_round, cc_owes, cc_abandon,
};

int
core_set_cluster(struct core *c, const struct core_log_ops *ops, void *log)
{
	return core_set_protocol(c, &core_cluster_protocol, ops, log);
}

static void
inflight_remove(struct core *c, struct pending *p)
{
	struct cluster_commit *cc = core_cluster_of(c);
	struct pending **pp;

	for (pp = &cc->inflight; *pp != NULL; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			p->next = NULL;
			return;
		}
}

static void
finish_answer(struct core *c, struct pending *p, bool applied)
{
	struct tally_error err;
	const struct tally_revision *cur;

	if (applied) {
		/* Ours, or an identical copy (the log dropped our retry). */
		p->has_new = !p->dup;
		p->version = p->seq;
		if (p->dup)
			p->chk[0] = TALLY_CHECK_DUPLICATE;
		core_answer_ok(c, p);
		return;
	}
	/* A copy was applied earlier, or the record lost: check again. */
	cur = tally_state_current(c->state, p->province[0]);
	if (p->call != NULL) {
		/*
		 * A call record is never a duplicate of another (its
		 * received_at names its second); one not applied was refused
		 * at apply, as on every node: say why once more.
		 */
		if (tally_calls_check(c->state, p->call, &err) == 0)
			tally_error_set(&err, TALLY_ERROR_CONFLICT,
			    "call_conflict", NULL, "the log refused this call "
			    "at position %llu; retry",
			    (unsigned long long)p->seq);
		core_answer_kind(c, p, CORE_REJECTED, &err, 0);
		return;
	}
	if (p->lot != NULL ? tally_state_lot_check(c->state, p->lot, &p->chk[0],
	    &err) == -1 : tally_feed_check(cur ? cur->feed : NULL, p->feeds[0],
	    c->election->provinces[p->province[0]].id, &p->chk[0], &err) == -1) {
		core_answer_kind(c, p, CORE_REJECTED, &err, 0);
		return;
	}
	if (p->chk[0] == TALLY_CHECK_DUPLICATE) {
		p->has_new = false;
		core_answer_ok(c, p);
		return;
	}
	tally_error_set(&err, TALLY_ERROR_CONFLICT, "revision_conflict", NULL,
	    "the log refused this record at position %llu; retry",
	    (unsigned long long)p->seq);
	core_answer_kind(c, p, CORE_REJECTED, &err, 0);
}

/* p's place is applied or refused: answer it and let the province go. */
static void
finish(struct core *c, struct pending *p, bool applied)
{
	struct cluster_commit *cc = core_cluster_of(c);
	inflight_remove(c, p);
	if (p->done != NULL)
		cc->in_round[p->province[0]] = false;
	finish_answer(c, p, applied);
	core_pending_free(p);
}

static void
publish_round(struct core *c)
{
	struct cluster_commit *cc = core_cluster_of(c);
	struct pending *p, *next, *later = NULL, **later_tail = &later;
	struct tally_error err;
	char at[32], *rec;
	size_t reclen, prov;
	int rc;

	p = core_queue_take(c);
	time_rfc3339(time(NULL), at, sizeof(at));
	for (; p != NULL; p = next) {
		next = p->next;
		p->next = NULL;
		if (p->n != 1) {
			tally_error_set(&err, TALLY_ERROR_INVALID,
			    "batch_in_cluster", NULL, "cluster mode takes one "
			    "province per request (POST /v1/provinces/{id}/"
			    "results); nothing was applied");
			core_answer_kind(c, p, CORE_REJECTED, &err, 0);
			core_pending_free(p);
			continue;
		}
		prov = p->province[0];
		if (cc->in_round[prov] || p->wait_seq > c->state->version) {
			*later_tail = p;
			later_tail = &p->next;
			continue;
		}
		/*
		 * A lot is a record of the province's subject like a feed:
		 * every node applies it at the same log position (and refuses
		 * a second lot for one tie alike, tally_journal_apply).  A
		 * feed gets the same checks as a single node's round
		 * (core_check_feed: a new revision that leaves out a list the
		 * current one counts is refused, 422 list_missing, and one
		 * the seat engine fails on, 500), before anything is
		 * published.
		 */
		if (p->call != NULL) {
			p->chk[0] = TALLY_CHECK_NEW;
			if (tally_calls_check(c->state, p->call, &err) == -1) {
				core_answer_kind(c, p, CORE_REJECTED, &err, 0);
				core_pending_free(p);
				continue;
			}
		} else if (p->lot != NULL ? tally_state_lot_check(c->state,
		    p->lot, &p->chk[0], &err) == -1 : core_check_feed(c, p, 0,
		    "published", &err) == -1) {
			core_answer_kind(c, p, CORE_REJECTED, &err, 0);
			core_pending_free(p);
			continue;
		}
		if (p->chk[0] != TALLY_CHECK_NEW) {
			core_answer_ok(c, p);
			core_pending_free(p);
			continue;
		}
		/*
		 * received_at is stamped here, once, and travels in the
		 * record: every node applies the same time.
		 */
		memcpy(p->at, at, sizeof(at));
		if (p->call != NULL ? tally_journal_encode_call(c->state, 0, 0,
		    at, p->call, &rec, &reclen) == -1 :
		    p->lot != NULL ? tally_journal_encode_request(0, 0, at,
		    p->lot->by, NULL, 0, &p->lot, 1, &rec, &reclen) == -1 :
		    tally_journal_encode(0, 0, at, p->feeds, 1, &rec,
		    &reclen) == -1) {
			tally_error_set(&err, TALLY_ERROR_NOMEM, "out_of_memory",
			    NULL, "out of memory; nothing was applied, try again");
			core_answer_kind(c, p, CORE_REJECTED, &err, 0);
			core_pending_free(p);
			continue;
		}
		p->acked = false;
		p->sent = time(NULL);
		p->attempts++;
		rc = c->log_ops->publish(c->log, rec + TALLY_JOURNAL_HEADER,
		    reclen - TALLY_JOURNAL_HEADER, prov,
		    p->lot || p->call ? NULL :
		    p->feeds[0], cc->subject_seq[prov], p);
		free(rec);
		if (rc == -1) {
			c->stats.log_failures++;
			core_answer_kind(c, p, CORE_UNAVAILABLE, NULL, EAGAIN);
			core_pending_free(p);
			continue;
		}
		cc->in_round[prov] = true;
		p->next = cc->inflight;
		cc->inflight = p;
	}
	if (later != NULL)
		core_queue_put_back(c, later, later_tail);
}

static const bool *
decided(const struct core *c, uint64_t seq)
{
	struct cluster_commit *cc = core_cluster_of(c);
	size_t lo = 0, hi = cc->n_decided, mid;

	/* In order of seq: a binary search. */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (cc->decided[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < cc->n_decided && cc->decided[lo].seq == seq ?
	    &cc->decided[lo].applied : NULL;
}

/* Does one of this node's records wait for its acknowledgement? */
static bool
unacked(const struct core *c)
{
	struct cluster_commit *cc = core_cluster_of(c);
	const struct pending *p;

	for (p = cc->inflight; p != NULL; p = p->next)
		if (!p->acked)
			return true;
	return false;
}

/* Remember how record seq was decided while an acknowledgement is due. */
static void
decide(struct core *c, uint64_t seq, bool applied)
{
	struct cluster_commit *cc = core_cluster_of(c);
	struct decision *nd;
	size_t ncap;

	if (!unacked(c)) {
		cc->n_decided = 0;
		cc->decided_lost = false;
		return;
	}
	if (cc->n_decided == cc->cap_decided) {
		ncap = cc->cap_decided ? 2 * cc->cap_decided : 64;
		if ((nd = realloc(cc->decided, ncap * sizeof(*nd))) == NULL) {
			cc->decided_lost = true;
			return;
		}
		cc->decided = nd;
		cc->cap_decided = ncap;
	}
	cc->decided[cc->n_decided].seq = seq;
	cc->decided[cc->n_decided++].applied = applied;
}

void
core_log_acked(struct core *c, void *token, enum core_ack ack, uint64_t seq,
    bool duplicate)
{
	struct cluster_commit *cc = core_cluster_of(c);
	struct pending *p = token;
	const bool *app;
	size_t prov = p->province[0];

	switch (ack) {
	case CORE_ACK_OK:
		p->acked = true;
		p->seq = seq;
		p->dup = duplicate;
		if (seq <= c->state->version) {
			/* Applied before the acknowledgement came. */
			if ((app = decided(c, seq)) == NULL &&
			    cc->decided_lost && !p->dup) {
				/* Not known (no memory): a retry is safe. */
				inflight_remove(c, p);
				if (p->done != NULL)
					cc->in_round[prov] = false;
				core_answer_kind(c, p, CORE_UNAVAILABLE, NULL,
				    ENOMEM);
				core_pending_free(p);
				break;
			}
			finish(c, p, app != NULL && *app);
		}
		break;
	case CORE_ACK_WRONG_LAST:
		/*
		 * Another record of the province is at seq: check again once
		 * it is applied here.  If it already is, the province's last
		 * position was not known (a start from a snapshot): now it is.
		 */
		inflight_remove(c, p);
		if (p->done == NULL) {		/* answered (expired) */
			core_pending_free(p);
			break;
		}
		cc->in_round[prov] = false;
		if (seq <= c->state->version && seq > cc->subject_seq[prov])
			cc->subject_seq[prov] = seq;
		if (p->attempts >= 5) {
			core_answer_kind(c, p, CORE_UNAVAILABLE, NULL, EBUSY);
			core_pending_free(p);
			break;
		}
		p->wait_seq = seq;
		p->next = NULL;
		core_queue_put_back(c, p, &p->next);
		break;
	case CORE_ACK_UNAVAILABLE:
		inflight_remove(c, p);
		if (p->done != NULL) {
			cc->in_round[prov] = false;
			c->stats.log_failures++;
		}
		core_answer_kind(c, p, CORE_UNAVAILABLE, NULL, EIO);
		core_pending_free(p);
		break;
	}
	publish_round(c);
}

void
core_log_record(struct core *c, uint64_t seq, const char *payload, size_t len,
    size_t province)
{
	struct cluster_commit *cc = core_cluster_of(c);
	struct tally_state *s = c->state;
	struct tally_error terr;
	struct pending *p, *next;
	size_t n = 0, i;
	bool ok;

	if (seq <= s->version)
		return;		/* covered by the snapshot */
	if (province < c->election->n_provinces)
		cc->subject_seq[province] = seq;
	/*
	 * The version is the log position: a province changed by this
	 * record is marked with seq (tally_state_apply marks version + 1).
	 */
	s->version = seq - 1;
	ok = tally_journal_apply(s, payload, len, &terr) == 0;
	if (!ok && terr.kind == TALLY_ERROR_NOMEM)
		/* Not a decision the other nodes would take: start again
		 * from the snapshot and the stream. */
		fatalx("out of memory applying stream record %llu; restart "
		    "tallyd: the stream holds it", (unsigned long long)seq);
	s->version = seq;
	c->chain = fnv1a64(fnv1a64(c->chain, &seq, sizeof(seq)), payload, len);
	decide(c, seq, ok);
	if (ok) {
		c->stats.feeds_applied++;
		for (i = 0; i < c->election->n_provinces; i++)
			if (s->provinces[i].changed == seq)
				c->changed[n++] = i;
	} else
		/* Every node refuses the same record the same way. */
		log_debug("log record %llu not applied: %s",
		    (unsigned long long)seq, terr.message);
	if (c->on_version != NULL)
		c->on_version(c->on_version_arg, seq, ok ? payload : NULL,
		    ok ? len : 0);
	/*
	 * Versions are log positions: a refused record still takes its
	 * version (the leaderboard says it, and the chain moved), so the
	 * whole tally's stamp moves with it, changing no province: else one
	 * ETag would name the bodies of two versions.
	 */
	core_publish_changed(c, n, s->updated_at[0] ? core_parse_time(s->updated_at) :
	    c->global.at);
	for (p = cc->inflight; p != NULL; p = next) {
		next = p->next;
		if (p->acked && p->seq == seq)
			finish(c, p, ok);
	}
	publish_round(c);
}

/* Cluster mode: answer 503 to posts the log has not answered in time. */
void
core_log_tick(struct core *c, time_t now)
{
	struct cluster_commit *cc = core_cluster_of(c);
	struct pending *p;

	for (p = cc->inflight; p != NULL; p = p->next)
		if (p->done != NULL && now - p->sent >= CORE_PUBLISH_WAIT) {
			/*
			 * Still published: if the log took it, it is applied
			 * later and a retry is answered "duplicate".
			 */
			cc->in_round[p->province[0]] = false;
			c->stats.log_failures++;
			core_answer_kind(c, p, CORE_UNAVAILABLE, NULL, ETIMEDOUT);
		}
	publish_round(c);
}

