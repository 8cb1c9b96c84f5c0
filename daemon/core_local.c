/*
 * core_local.c - the local commit protocol: group commit on the journal.
 *
 * Accepted feeds wait in the core's queue while the journal writes the
 * previous round.  A round takes the whole queue and checks each request's
 * revisions against the applied state.  A request that touches a province
 * already in the round waits for the next round: it will then be checked
 * against a durable result, never against one that could still fail to be
 * written (a 409 must name a revision that exists).  Repeats of what is
 * already applied are answered at once.  Every remaining request becomes one
 * log record, all of them one buffer for the log.  When that buffer is
 * durable the round is applied in order, one version per request, and every
 * request is answered; if it could not be written, nothing is applied and
 * each gets CORE_UNAVAILABLE.  A reader therefore never sees a result that
 * could still be lost.
 *
 * Its state (struct local) is reached only through core_local_of, which
 * refuses a core running the cluster protocol.  Loop thread only [L].
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

struct local {
	struct pending		*round;		/* [L] in the journal now */
	bool			*in_round;	/* [L] per province, this round */
};

/* The local protocol's state of c; a core running another one is a bug. */
static struct local *
core_local_of(const struct core *c)
{
	if (c->proto != &core_local_protocol)
		fatalx("the journal's completion reached a core running the "
		    "%s protocol", c->proto ? c->proto->name : "no");
	return c->proto_state;
}

static void *
local_create(const struct tally_election *e)
{
	struct local *l;

	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->in_round = calloc(e->n_provinces, sizeof(*l->in_round))) ==
	    NULL) {
		free(l);
		return NULL;
	}
	return l;
}

static void
local_destroy(void *st)
{
	struct local *l = st;

	if (l == NULL)
		return;
	free(l->in_round);
	free(l);
}

static bool
local_owes(const struct core *c)
{
	return core_local_of(c)->round != NULL;
}

/*
 * The round in the journal is answered now (it is not durable yet), and
 * still applied if it becomes durable: then the tally, the final snapshot
 * and the journal agree.  A client that was told 503 may find its revision
 * applied after the restart, which the contract allows; a retry then gets
 * `duplicate`.
 */
static void
local_abandon(struct core *c)
{
	struct pending *p;

	for (p = core_local_of(c)->round; p != NULL; p = p->next)
		core_answer_kind(c, p, CORE_STOPPING, NULL, 0);
}

static void	round_start(struct core *c);

const struct core_protocol core_local_protocol = {
	"local", local_create, local_destroy, round_start, local_owes,
	local_abandon,
};

int
core_set_journal(struct core *c, const struct core_log_ops *ops, void *log)
{
	return core_set_protocol(c, &core_local_protocol, ops, log);
}

/* Tell the subscribers what version v changed. */
static void
local_publish(struct core *c, const struct pending *p, bool wide, bool call)
{
	const struct tally_state *s = c->state;
	size_t n = 0, i;

	if (wide) {
		/* A national threshold or a levelling tier moved others too. */
		for (i = 0; i < c->election->n_provinces; i++)
			if (s->provinces[i].changed == s->version)
				c->changed[n++] = i;
	} else
		/* A call changes no province's view (as replay finds). */
		for (i = 0; i < p->n && !call; i++)
			if (p->chk[i] == TALLY_CHECK_NEW)
				c->changed[n++] = p->province[i];
	core_publish_changed(c, n, core_parse_time(p->at));
}

/* Apply a durable request: one version. */
static void
apply_pending(struct core *c, struct pending *p)
{
	struct tally_state *s = c->state;
	struct tally_error terr;
	bool call = p->call != NULL;
	size_t i;

	s->wide_change = false;
	if (p->lot != NULL) {
		struct tally_lot *lot = p->lot;
		p->lot = NULL;
		memcpy(lot->received_at, p->at, sizeof(p->at));
		if (tally_state_lot_apply(s, lot, &terr) == -1)
			fatalx("cannot apply a durable record (%s); restart "
			    "tallyd: the journal holds it", terr.message);
	}
	if (p->call != NULL) {
		struct tally_call_op *op = p->call;
		p->call = NULL;
		memcpy(op->received_at, p->at, sizeof(p->at));
		if (tally_calls_apply(s, op, &terr) == -1)
			fatalx("cannot apply a durable record (%s); restart "
			    "tallyd: the journal holds it", terr.message);
	}
	for (i = 0; i < p->n && p->feeds != NULL; i++) {
		struct tally_feed *f;
		if (p->chk[i] != TALLY_CHECK_NEW)
			continue;
		/* The state takes the feed. */
		f = p->feeds[i];
		p->feeds[i] = NULL;
		if (tally_state_apply(s, f, p->at, &terr) == -1)
			/* The record is durable but the tally lacks it:
			 * restart, which replays it (out of memory), or
			 * stops naming it and the way out (internal; the
			 * pre-check of round_start makes that one
			 * unreachable but for a feed of the same round
			 * moving a national threshold first). */
			fatalx("cannot apply a durable record (%s: %s); "
			    "restart tallyd: the journal holds it",
			    terr.code, terr.message);
		c->stats.feeds_applied++;
	}
	tally_state_bump(s);
	if (s->version != p->version)
		fatalx("version %llu applied as %llu; restart tallyd",
		    (unsigned long long)p->version,
		    (unsigned long long)s->version);
	c->chain = p->chain;
	core_tell_version(c, s->version, p->rec, p->rec_len);
	local_publish(c, p, s->wide_change, call);
}

/* The log is done with the round's buffer, or with a rotation (loop). */
void
core_log_done(void *arg, int err, size_t records)
{
	struct core *c = arg;
	struct local *l = core_local_of(c);
	struct pending *p, *next;
	size_t i;

	(void)records;
	for (p = l->round; p != NULL; p = p->next)
		for (i = 0; i < p->n; i++)
			l->in_round[p->province[i]] = false;
	for (p = l->round; p != NULL; p = next) {
		next = p->next;
		if (err != 0) {
			c->stats.log_failures++;
			c->stats.log_err = err;
			c->stats.log_err_at = time(NULL);
			core_answer_kind(c, p, CORE_UNAVAILABLE, NULL, err);
		} else {
			c->stats.log_err = 0;
			if (p->has_new)
				apply_pending(c, p);
			core_answer_ok(c, p);
		}
		core_pending_free(p);
	}
	if (err != 0 && l->round != NULL)
		log_warnx("journal write failed (%s): answered 503, nothing "
		    "applied; reads go on", strerror(err));
	l->round = NULL;
	round_start(c);
}

static int
grow(char **buf, size_t *cap, size_t need)
{
	char *nb;
	size_t ncap = *cap ? *cap : 4096;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	if ((nb = realloc(*buf, ncap)) == NULL)
		return -1;
	*buf = nb;
	*cap = ncap;
	return 0;
}

/*
 * A record of a contest (core_set_contest) ends with "contest": its id, so
 * that replay hands it back to the same contest: the member goes before the
 * payload's closing brace and the record is framed again.  Ids are
 * tally_id_is_valid, so nothing needs escaping.  0, or -1 (rec unchanged).
 */
static int
tag_record(const char *contest, const char *part, uint64_t seq, char **rec,
    size_t *reclen)
{
	/* The closing brace goes, the members and a brace come. */
	size_t add = strlen(contest) + 13 + (part ? strlen(part) + 11 : 0);
	size_t plen = *reclen - TALLY_JOURNAL_HEADER;
	char *nr;

	if (plen == 0 || (*rec)[*reclen - 1] != '}' ||
	    (nr = realloc(*rec, *reclen + add + 1)) == NULL)
		return -1;
	/* ...}  ->  ...[,"batch":[i,n]],"contest":"<id>"} */
	snprintf(nr + *reclen - 1, add + 2, "%s%s%s,\"contest\":\"%s\"}",
	    part ? ",\"batch\":[" : "", part ? part : "", part ? "]" : "",
	    contest);
	if (tally_journal_frame(seq, nr, plen + add) == -1) {
		*rec = nr;
		return -1;
	}
	*rec = nr;
	*reclen += add;
	return 0;
}

/*
 * Encode p's record (the new revisions only) at the end of buf.  0, or -1
 * on allocation failure with buf as it was.
 */
static int
encode(struct core *c, struct pending *p, const char *part, uint64_t seq,
    uint64_t version, uint64_t chain, char **buf, size_t *len, size_t *cap)
{
	struct tally_feed *nfeeds[64], **nf = nfeeds;
	char *rec = NULL;
	size_t reclen, k = 0, i;
	int rc = -1;

	const char *by = p->lot ? p->lot->by : NULL;

	if (p->n > 64 && (nf = malloc(p->n * sizeof(*nf))) == NULL)
		return -1;
	for (i = 0; i < p->n && p->feeds != NULL; i++)
		if (p->chk[i] == TALLY_CHECK_NEW) {
			nf[k++] = p->feeds[i];
			if (by == NULL)
				by = p->feeds[i]->by;
		}
	if ((p->call != NULL ? tally_journal_encode_call(c->state, seq,
	    version, p->at, p->call, &rec, &reclen) :
	    tally_journal_encode_request(seq, version, p->at, by, nf, k,
	    p->lot ? &p->lot : NULL, p->lot ? 1 : 0, &rec, &reclen)) == 0 &&
	    (c->contest == NULL || tag_record(c->contest, part, seq, &rec,
	    &reclen) == 0) && grow(buf, cap, *len + reclen) == 0) {
		memcpy(*buf + *len, rec, reclen);
		*len += reclen;
		p->chain = fnv1a64(chain, rec + TALLY_JOURNAL_HEADER,
		    reclen - TALLY_JOURNAL_HEADER);
		/* Kept for the version hook (the transparency log). */
		free(p->rec);
		p->rec_len = reclen - TALLY_JOURNAL_HEADER;
		p->rec = NULL;
		if (c->on_version == NULL)
			rc = 0;
		else if ((p->rec = malloc(p->rec_len)) != NULL) {
			memcpy(p->rec, rec + TALLY_JOURNAL_HEADER, p->rec_len);
			rc = 0;
		} else
			*len -= reclen;	/* buf as it was */
	}
	free(rec);
	if (nf != nfeeds)
		free(nf);
	(void)c;
	return rc;
}

static void
round_start(struct core *c)
{
	struct pending *p, *next, **tail, *later = NULL, **later_tail = &later;
	struct tally_error err;
	char *buf = NULL, at[32];
	size_t len = 0, cap = 0, records = 0, i;
	uint64_t version = c->state->version, chain = c->chain, seq;
	struct local *l = core_local_of(c);

	if (l->round != NULL || c->queue == NULL || c->log_ops->busy(c->log))
		return;
	seq = c->log_ops->next_seq(c->log);
	time_rfc3339(time(NULL), at, sizeof(at));
	p = core_queue_take(c);
	tail = &l->round;
	for (; p != NULL; p = next) {
		next = p->next;
		p->next = NULL;
		for (i = 0; i < p->n && !l->in_round[p->province[i]]; i++)
			;
		if (i < p->n) {
			/* Checked against durable results, next round. */
			*later_tail = p;
			later_tail = &p->next;
			continue;
		}
		/* Check every feed first: a batch is all or nothing. */
		if (p->lot != NULL && tally_state_lot_check(c->state, p->lot,
		    &p->chk[0], &err) == -1) {
			core_answer_kind(c, p, CORE_REJECTED, &err, 0);
			core_pending_free(p);
			continue;
		}
		if (p->call != NULL) {
			/* A retry of what stands (two sent at once, both
			 * past the HTTP check): answered below, no record. */
			if (tally_calls_duplicate(c->state, p->call) != NULL)
				p->chk[0] = TALLY_CHECK_DUPLICATE;
			else if (tally_calls_check(c->state, p->call,
			    &err) == -1) {
				core_answer_kind(c, p, CORE_REJECTED, &err, 0);
				core_pending_free(p);
				continue;
			} else
				p->chk[0] = TALLY_CHECK_NEW;
		}
		for (i = 0; i < p->n && p->lot == NULL && p->call == NULL;
		    i++) {
			if (core_check_feed(c, p, i, "journaled", &err) == -1)
				break;
#ifdef TALLYD_FAILPOINTS
			{
				const char *pid =
				    c->election->provinces[p->province[i]].id;
				char fp[80];
				if (p->chk[i] == TALLY_CHECK_NEW &&
				    core_failpoint_engine(fp, sizeof(fp)) != NULL &&
				    strcmp(fp, pid) == 0) {
					core_failpoint_engine_error(pid, &err);
					log_warnx("refused revision %llu of %s, "
					    "nothing journaled: %s",
					    (unsigned long long)
					    p->feeds[i]->revision, pid,
					    err.message);
					break;
				}
			}
#endif
		}
		if (i < p->n && p->lot == NULL && p->call == NULL) {
			if (p->n > 1) {
				char msg[sizeof(err.message)];
				char fld[sizeof(err.field)];
				snprintf(fld, sizeof(fld), "%s", err.field);
				snprintf(err.field, sizeof(err.field),
				    "/results/%zu%.160s", i, fld);
				snprintf(msg, sizeof(msg), "%s", err.message);
				snprintf(err.message, sizeof(err.message),
				    "%.250s; nothing was applied", msg);
			}
			core_answer_kind(c, p, CORE_REJECTED, &err, 0);
			core_pending_free(p);
			continue;
		}
		for (i = 0; i < p->n; i++)
			if (p->chk[i] == TALLY_CHECK_NEW)
				p->has_new = true;
		if (!p->has_new) {
			/* Everything in it is already applied: answer now. */
			core_answer_ok(c, p);
			core_pending_free(p);
			continue;
		}
		memcpy(p->at, at, sizeof(at));
		if (encode(c, p, NULL, seq + records, version + 1, chain, &buf,
		    &len, &cap) == -1) {
			tally_error_set(&err, TALLY_ERROR_NOMEM, "out_of_memory",
			    NULL, "out of memory; nothing was applied, try again");
			core_answer_kind(c, p, CORE_REJECTED, &err, 0);
			core_pending_free(p);
			continue;
		}
		p->version = ++version;
		chain = p->chain;
		records++;
		for (i = 0; i < p->n; i++)
			l->in_round[p->province[i]] = true;
		*tail = p;
		tail = &p->next;
	}
	/* What waits for the next round goes back to the front of the queue. */
	if (later != NULL)
		core_queue_put_back(c, later, later_tail);
	if (l->round == NULL) {
		free(buf);
		if (c->queue != NULL)
			round_start(c);	/* cannot loop: nothing is in a round */
		return;
	}
	if (c->log_ops->append(c->log, buf, len, records) == -1)
		fatalx("the journal is busy at the start of a round");
}


/*
 * A part of a batch across contests (contests_batch.c).  The coordinator
 * calls these only while c's log, the shared journal, holds no round of c
 * (so that the part is checked against durable results, like a round) and
 * keeps c from starting one until the part's job is done.
 */
struct pending *
core_part_check(struct core *c, struct tally_feed **feeds, size_t n,
    core_done_fn done, void *ctx, bool *has_new, size_t *bad,
    struct tally_error *err)
{
	struct local *l = core_local_of(c);
	struct pending *p;
	size_t i;

	if (l->round != NULL)
		fatalx("a part of a batch across contests checked while a "
		    "round of %s is in the journal", c->election->id);
	if ((p = core_pending_new(n, done, ctx)) == NULL) {
		for (i = 0; i < n; i++)
			tally_feed_destroy(feeds[i]);
		free(feeds);
		tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,
		    "out of memory; nothing was applied, try again");
		*bad = SIZE_MAX;
		return NULL;
	}
	p->feeds = feeds;
	for (i = 0; i < n; i++) {
		p->province[i] = feeds[i]->province;
		p->revision[i] = feeds[i]->revision;
	}
	for (i = 0; i < n; i++) {
		if (core_check_feed(c, p, i, "journaled", err) == -1) {
			*bad = i;
			p->done = NULL;
			core_pending_free(p);
			return NULL;
		}
		if (p->chk[i] == TALLY_CHECK_NEW)
			p->has_new = true;
	}
	*has_new = p->has_new;
	return p;
}

const enum tally_check *
core_part_checks(const struct pending *p)
{
	return p->chk;
}

int
core_part_encode(struct core *c, struct pending *p, size_t part, size_t of,
    uint64_t seq, const char *at, char **buf, size_t *len, size_t *cap)
{
	char mark[48];

	snprintf(mark, sizeof(mark), "%zu,%zu", part, of);
	snprintf(p->at, sizeof(p->at), "%s", at);
	/* A batch with one new part is an ordinary record. */
	if (encode(c, p, of > 1 ? mark : NULL, seq, c->state->version + 1,
	    c->chain, buf, len, cap) == -1)
		return -1;
	p->version = c->state->version + 1;
	return 0;
}

void
core_part_start(struct core *c, struct pending *p)
{
	struct local *l = core_local_of(c);
	size_t i;

	/* The round of c: core_log_done applies and answers it. */
	l->round = p;
	for (i = 0; i < p->n; i++)
		l->in_round[p->province[i]] = true;
}

void
core_part_free(struct pending *p)
{
	if (p == NULL)
		return;
	p->done = NULL;		/* never answered: the batch is */
	core_pending_free(p);
}
