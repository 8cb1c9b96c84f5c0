/*
 * core.c - the commit core: the election, the tally, the log and the group
 * commit, behind one small interface.
 *
 *	core_submit(feeds) -> done(outcome)	a request's feeds, answered once
 *	core_subscribe(on_publish)		told of every new version and
 *						the provinces it changed
 *	core_swap_definition(e)			a new election, whole or refused
 *
 * Group commit.  Accepted feeds wait in `queue` while the log writes the
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
 * Validators.  A version number alone cannot name a body across restarts: a
 * reset or restored data dir, a --repair that cut records, or an edited
 * definition reuse numbers with other contents.  So the core keeps a digest
 * chained over every record it applies (the same records give the same
 * chain, on every node and after every restart; a different history gives a
 * different one) and a digest of the definition, and every stamp carries
 * both beside the version.
 *
 * Everything here runs on the loop thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "tallyd.h"

struct pending {
	struct pending		 *next;
	core_done_fn		  done;		/* NULL: answered already */
	void			 *ctx;
	struct tally_feed	**feeds;	/* owned until applied */
	struct tally_lot	 *lot;		/* a lot request (n 1, no feeds) */
	enum tally_check	 *chk;
	size_t			 *province;	/* per feed, kept for the answer */
	uint64_t		 *revision;
	size_t			  n;
	bool			  has_new;	/* writes a record */
	uint64_t		  version;	/* when has_new */
	uint64_t		  chain;	/* the chain after its record */
	char			  at[32];	/* received_at of its record */
	/* Cluster mode: a record published, waiting for its place. */
	bool			  acked;	/* the log stored it at seq */
	bool			  dup;		/* ... an earlier copy of it */
	uint64_t		  seq;
	uint64_t		  wait_seq;	/* re-check once applied this far */
	unsigned		  attempts;
	time_t			  sent;
};

/* Cluster mode: how long a post waits for the log before a 503. */
#define CORE_PUBLISH_WAIT	5

struct subscriber {
	core_publish_fn		 fn;
	void			*arg;
};

struct core {
	struct tally_election	*election;	/* owned */
	struct tally_state	*state;		/* owned */
	uint64_t		 def_digest;
	time_t			 def_mtime;
	uint64_t		 chain;		/* over every applied record */
	struct core_stamp	 global;
	struct core_stamp	*stamps;	/* per province */
	/*
	 * Per province, the record chain at its stamp's version: with the
	 * version and time it is what the snapshot keeps, so that a view's
	 * stamp after a restart, or on another node, is the one it had (a
	 * pure function of the log's prefix, not of when the process began).
	 * stamps_known false: not known (a snapshot written before it was
	 * kept), every view takes the current stamp at core_started.
	 */
	uint64_t		*chains;
	bool			 stamps_known;
	size_t			*changed;	/* scratch: n_provinces */
	struct subscriber	 subs[4];
	size_t			 n_subs;

	const struct core_log_ops *log_ops;	/* borrowed */
	void			*log;
	struct pending		*queue;
	struct pending	       **queue_tail;
	struct pending		*round;
	bool			*in_round;	/* per province, this round */
	bool			 stopping;
	struct core_stats	 stats;

	/* Cluster mode (a log with publish): see core_log_record. */
	struct pending		*inflight;	/* published, not yet finished */
	uint64_t		*subject_seq;	/* per province: its last record */
	/*
	 * Whether each record applied while one of this node's records
	 * waited for its acknowledgement was applied or refused, oldest
	 * first: its answer when the acknowledgement comes after the record
	 * (it may come any number of records later).  Emptied whenever no
	 * record waits.  (A ring of 4,096 turned a poster's own 201 into 200
	 * once 4,096 more records came first.)
	 */
	struct decision {
		uint64_t	seq;
		bool		applied;
	}			*decided;
	size_t			 n_decided, cap_decided;
	bool			 decided_lost;	/* no memory to record one */
};

static time_t
parse_time(const char *rfc3339)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (rfc3339 == NULL || rfc3339[0] == '\0' ||
	    strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ", &tm) == NULL)
		return 0;
	return timegm(&tm);
}

static void
stamp_set(struct core_stamp *st, uint64_t version, uint64_t digest, time_t at)
{
	/* Two versions in one second: Last-Modified cannot tell them apart. */
	st->sec_shared = st->at == at && st->version != version;
	st->version = version;
	st->digest = digest;
	st->at = at;
}

static uint64_t
mix(uint64_t chain, uint64_t def)
{
	return fnv1a64(chain, &def, sizeof(def));
}

/* Sized for c->election; 0 or -1 (ENOMEM). */
static int
core_alloc(struct core *c, const struct tally_election *e)
{
	struct core_stamp *stamps;
	size_t *changed;
	bool *in_round;
	uint64_t *subject_seq, *chains;

	subject_seq = calloc(e->n_provinces, sizeof(*subject_seq));
	chains = calloc(e->n_provinces, sizeof(*chains));
	stamps = calloc(e->n_provinces, sizeof(*stamps));
	changed = calloc(e->n_provinces, sizeof(*changed));
	in_round = calloc(e->n_provinces, sizeof(*in_round));
	if (stamps == NULL || changed == NULL || in_round == NULL ||
	    subject_seq == NULL || chains == NULL) {
		free(subject_seq);
		free(chains);
		free(stamps);
		free(changed);
		free(in_round);
		return -1;
	}
	free(c->stamps);
	free(c->changed);
	free(c->in_round);
	free(c->subject_seq);
	free(c->chains);
	c->subject_seq = subject_seq;
	c->chains = chains;
	c->stamps_known = false;	/* core_started sets them */
	c->stamps = stamps;
	c->changed = changed;
	c->in_round = in_round;
	return 0;
}

static uint64_t
definition_digest(const struct tally_election *e)
{
	json_t *j = tally_election_dump(e);
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	uint64_t h = 0;

	json_decref(j);
	if (s != NULL) {
		h = fnv1a64(FNV1A64_INIT, s, strlen(s));
		free(s);
	} else if (getrandom(&h, sizeof(h), 0) != (ssize_t)sizeof(h))
		h = (uint64_t)time(NULL);	/* unique enough for one run */
	return h;
}

static time_t
definition_mtime(const struct tally_election *e, const char *path)
{
	struct stat sb;

	(void)e;
	if (path != NULL && stat(path, &sb) == 0)
		return sb.st_mtime;
	return time(NULL);
}

static void	pending_free(struct pending *p);
static void	stamps_move(struct core *c, size_t n, time_t at);

struct core *
core_create(struct tally_election *e, const char *path, struct tally_diag *diag)
{
	struct core *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto nomem;
	c->election = e;
	c->queue_tail = &c->queue;
	if ((c->state = tally_state_create(e)) == NULL || core_alloc(c, e) == -1)
		goto nomem;
	c->def_digest = definition_digest(e);
	c->def_mtime = definition_mtime(e, path);
	c->chain = FNV1A64_INIT;
	core_started(c);
	return c;
nomem:
	tally_diag_add(diag, "out of memory setting up the tally");
	if (c == NULL)
		tally_election_destroy(e);
	core_destroy(c);
	return NULL;
}

void
core_destroy(struct core *c)
{
	if (c == NULL)
		return;
	/* Nothing may wait: the caller stopped the core (and the log). */
	while (c->inflight != NULL) {
		struct pending *p = c->inflight;
		c->inflight = p->next;
		pending_free(p);
	}
	tally_state_destroy(c->state);
	tally_election_destroy(c->election);
	free(c->stamps);
	free(c->changed);
	free(c->in_round);
	free(c->subject_seq);
	free(c->chains);
	free(c->decided);
	free(c);
}

void
core_set_log(struct core *c, const struct core_log_ops *ops, void *log)
{
	c->log_ops = ops;
	c->log = log;
}

int
core_subscribe(struct core *c, core_publish_fn fn, void *arg)
{
	if (c->n_subs == sizeof(c->subs) / sizeof(c->subs[0]))
		return -1;
	c->subs[c->n_subs].fn = fn;
	c->subs[c->n_subs++].arg = arg;
	return 0;
}

struct tally_state *
core_state(struct core *c)
{
	return c->state;
}

const struct tally_election *
core_election(const struct core *c)
{
	return c->election;
}

uint64_t
core_chain(const struct core *c)
{
	return c->chain;
}

void
core_set_chain(struct core *c, uint64_t chain)
{
	size_t p;

	c->chain = chain;
	/* Nothing counted yet (a cluster's epoch): every view starts here. */
	if (c->state->version == 0 && c->stamps_known)
		for (p = 0; p < c->election->n_provinces; p++) {
			c->chains[p] = chain;
			c->stamps[p].digest = mix(chain, c->def_digest);
		}
}

json_t *
core_stamps_dump(const struct core *c)
{
	json_t *a;
	size_t p;
	char hex[24];

	if (!c->stamps_known || (a = json_array()) == NULL)
		return NULL;
	for (p = 0; p < c->election->n_provinces; p++) {
		snprintf(hex, sizeof(hex), "%016llx",
		    (unsigned long long)c->chains[p]);
		if (json_array_append_new(a, json_pack("[IsI]", (json_int_t)
		    c->stamps[p].version, hex, (json_int_t)c->stamps[p].at)) ==
		    -1) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

int
core_stamps_load(struct core *c, const json_t *a)
{
	const struct tally_state *s = c->state;
	json_int_t v, at;
	const char *hex;
	size_t p;

	c->stamps_known = false;
	if (!json_is_array(a) || json_array_size(a) != c->election->n_provinces)
		return -1;
	for (p = 0; p < c->election->n_provinces; p++) {
		if (json_unpack(json_array_get(a, p), "[IsI]", &v, &hex, &at) ==
		    -1 || v < 0 || (uint64_t)v > s->version || strlen(hex) != 16)
			return -1;
		c->stamps[p].version = (uint64_t)v;
		c->stamps[p].at = (time_t)at;
		c->chains[p] = strtoull(hex, NULL, 16);
	}
	c->stamps_known = true;
	return 0;
}

const struct core_stats *
core_stats(const struct core *c)
{
	return &c->stats;
}

#ifdef TALLYD_FAILPOINTS
/*
 * TALLYD_FAILPOINTS="engine_fail=<province id>" (test builds only): the seat
 * engine is taken to fail on every new snapshot of that province, at a
 * POST's pre-check and at replay: the internal failure that no valid input
 * reaches once the engine's bugs are fixed.  The id, or NULL.
 */
static const char *
failpoint_engine(char *buf, size_t size)
{
	const char *env = getenv("TALLYD_FAILPOINTS"), *p;
	size_t n;

	if (env == NULL || (p = strstr(env, "engine_fail=")) == NULL)
		return NULL;
	p += 12;
	n = strcspn(p, ",");
	snprintf(buf, size, "%.*s", (int)n, p);
	return buf;
}

static int
failpoint_engine_error(const char *pid, struct tally_error *err)
{
	return tally_error_set(err, TALLY_ERROR_INTERNAL, "internal", NULL,
	    "the seat engine failed on %s (failpoint engine_fail): an "
	    "internal error, nothing was applied", pid);
}
#endif

int
core_replay(void *arg, const char *payload, size_t len, struct tally_error *err)
{
	struct core *c = arg;

#ifdef TALLYD_FAILPOINTS
	char fp[80], pat[100];
	if (failpoint_engine(fp, sizeof(fp)) != NULL) {
		snprintf(pat, sizeof(pat), "\"province\":\"%s\"", fp);
		if (memmem(payload, len, pat, strlen(pat)) != NULL)
			return failpoint_engine_error(fp, err);
	}
#endif
	struct tally_state *s = c->state;
	uint64_t before = s->version;
	const char *at;
	char when[32];
	size_t n = 0, i;

	unsigned long moot = s->moot_lots;

	s->replay_moot_lots = true;
	if (tally_journal_apply(s, payload, len, err) == -1) {
		s->replay_moot_lots = false;
		return -1;
	}
	s->replay_moot_lots = false;
	if (s->moot_lots > moot)
		log_warnx("journal: the lot of version %llu no longer settles "
		    "a tie under this election definition (edited since it was "
		    "drawn): kept without effect; a tie it leaves needs a lot "
		    "of its own", (unsigned long long)s->version);
	c->chain = fnv1a64(c->chain, payload, len);
	/*
	 * The stamps move as they did live (publish): the provinces this
	 * record changed take its version, at its received_at (the first
	 * "received_at" of a record is its own: it follows "version").
	 */
	if (s->version > before)
		for (i = 0; i < c->election->n_provinces; i++)
			if (s->provinces[i].changed == s->version)
				c->changed[n++] = i;
	when[0] = '\0';
	if ((at = memmem(payload, len, "\"received_at\":\"", 15)) != NULL &&
	    (size_t)(payload + len - (at + 15)) >= 20)
		snprintf(when, sizeof(when), "%.20s", at + 15);
	stamps_move(c, n, when[0] ? parse_time(when) : c->global.at);
	return 0;
}

void
core_started(struct core *c)
{
	const struct tally_state *s = c->state;
	time_t at = s->updated_at[0] ? parse_time(s->updated_at) : c->def_mtime;
	size_t p;

	memset(&c->global, 0, sizeof(c->global));
	stamp_set(&c->global, s->version, mix(c->chain, c->def_digest), at);
	c->global.sec_shared = true;	/* earlier versions may share the second */
	for (p = 0; p < c->election->n_provinces; p++) {
		if (!c->stamps_known) {
			/*
			 * Which province changed at which version is not
			 * known (a snapshot without stamps): every view
			 * takes the current stamp (a cache refetches each
			 * once, and never keeps a stale one).
			 */
			c->stamps[p] = c->global;
			c->chains[p] = c->chain;
			continue;
		}
		/* Kept through replay or in the snapshot: the same tag. */
		c->stamps[p].digest = mix(c->chains[p], c->def_digest);
		c->stamps[p].sec_shared = true;
	}
	c->stamps_known = true;
}

const struct core_stamp *
core_stamp(const struct core *c, size_t province)
{
	return province == SIZE_MAX ? &c->global : &c->stamps[province];
}

uint64_t
core_definition_digest(const struct core *c)
{
	return c->def_digest;
}

time_t
core_definition_time(const struct core *c)
{
	return c->def_mtime;
}

/* Cluster mode: a published record still owes someone an answer. */
static bool
inflight_waits(const struct core *c)
{
	const struct pending *p;

	for (p = c->inflight; p != NULL; p = p->next)
		if (p->done != NULL)
			return true;
	return false;
}

bool
core_idle(const struct core *c)
{
	return c->queue == NULL && c->round == NULL && !inflight_waits(c);
}

bool
core_round_idle(const struct core *c)
{
	return c->round == NULL && !inflight_waits(c);
}

static void
pending_free(struct pending *p)
{
	size_t i;

	for (i = 0; i < p->n && p->feeds != NULL; i++)
		tally_feed_destroy(p->feeds[i]);
	free(p->feeds);
	tally_lot_destroy(p->lot);
	free(p->chk);
	free(p->province);
	free(p->revision);
	free(p);
}

static void
answer(struct core *c, struct pending *p, struct core_outcome *out)
{
	out->n = p->n;
	out->province = p->province;
	out->revision = p->revision;
	out->chk = p->chk;
	if (p->done != NULL)
		p->done(p->ctx, out);
	p->done = NULL;
	(void)c;
}

static void
answer_kind(struct core *c, struct pending *p, enum core_outcome_kind kind,
    const struct tally_error *err, int log_err)
{
	struct core_outcome out;

	memset(&out, 0, sizeof(out));
	out.kind = kind;
	out.err = err;
	out.log_err = log_err;
	out.version = c->state->version;
	answer(c, p, &out);
}

/* The success answer: APPLIED when something was applied, else DUPLICATE. */
static void
answer_ok(struct core *c, struct pending *p)
{
	struct core_outcome out;
	size_t i;

	memset(&out, 0, sizeof(out));
	out.kind = p->has_new ? CORE_APPLIED : CORE_DUPLICATE;
	out.version = p->has_new ? p->version : c->state->version;
	for (i = 0; i < p->n; i++)
		if (p->chk[i] == TALLY_CHECK_DUPLICATE)
			c->stats.feeds_duplicate++;
	answer(c, p, &out);
}

static void	round_start(struct core *c);

static void	publish_changed(struct core *c, size_t n, time_t at);

/* Tell the subscribers what version v changed. */
static void
publish(struct core *c, const struct pending *p, bool wide)
{
	const struct tally_state *s = c->state;
	size_t n = 0, i;

	if (wide) {
		/* A national threshold or a levelling tier moved others too. */
		for (i = 0; i < c->election->n_provinces; i++)
			if (s->provinces[i].changed == s->version)
				c->changed[n++] = i;
	} else
		for (i = 0; i < p->n; i++)
			if (p->chk[i] == TALLY_CHECK_NEW)
				c->changed[n++] = p->province[i];
	publish_changed(c, n, parse_time(p->at));
}

/* Move the stamps of c->changed[0..n) to the new version. */
static void
stamps_move(struct core *c, size_t n, time_t at)
{
	const struct tally_state *s = c->state;
	size_t i;

	stamp_set(&c->global, s->version, mix(c->chain, c->def_digest), at);
	for (i = 0; i < n; i++) {
		struct core_stamp *st = &c->stamps[c->changed[i]];
		bool shared = st->at == c->global.at;
		*st = c->global;
		st->sec_shared = shared || c->global.sec_shared;
		c->chains[c->changed[i]] = c->chain;
	}
}

/* Move the stamps of c->changed[0..n) to the new version, and tell. */
static void
publish_changed(struct core *c, size_t n, time_t at)
{
	const struct tally_state *s = c->state;
	size_t i;

	stamps_move(c, n, at);
	for (i = 0; i < c->n_subs; i++)
		c->subs[i].fn(c->subs[i].arg, s->version, c->changed, n);
}

/* Apply a durable request: one version. */
static void
apply_pending(struct core *c, struct pending *p)
{
	struct tally_state *s = c->state;
	struct tally_error terr;
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
	publish(c, p, s->wide_change);
}

/* The log is done with the round's buffer, or with a rotation (loop). */
void
core_log_done(void *arg, int err, size_t records)
{
	struct core *c = arg;
	struct pending *p, *next;
	size_t i;

	(void)records;
	for (p = c->round; p != NULL; p = p->next)
		for (i = 0; i < p->n; i++)
			c->in_round[p->province[i]] = false;
	for (p = c->round; p != NULL; p = next) {
		next = p->next;
		if (err != 0) {
			c->stats.log_failures++;
			c->stats.log_err = err;
			c->stats.log_err_at = time(NULL);
			answer_kind(c, p, CORE_UNAVAILABLE, NULL, err);
		} else {
			c->stats.log_err = 0;
			if (p->has_new)
				apply_pending(c, p);
			answer_ok(c, p);
		}
		pending_free(p);
	}
	if (err != 0 && c->round != NULL)
		log_warnx("journal write failed (%s): answered 503, nothing "
		    "applied; reads go on", strerror(err));
	c->round = NULL;
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
 * Encode p's record (the new revisions only) at the end of buf.  0, or -1
 * on allocation failure with buf as it was.
 */
static int
encode(struct core *c, struct pending *p, uint64_t seq, uint64_t version,
    uint64_t chain, char **buf, size_t *len, size_t *cap)
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
	if (tally_journal_encode_request(seq, version, p->at, by, nf, k,
	    p->lot ? &p->lot : NULL, p->lot ? 1 : 0, &rec, &reclen) == 0 &&
	    grow(buf, cap, *len + reclen) == 0) {
		memcpy(*buf + *len, rec, reclen);
		*len += reclen;
		p->chain = fnv1a64(chain, rec + TALLY_JOURNAL_HEADER,
		    reclen - TALLY_JOURNAL_HEADER);
		rc = 0;
	}
	free(rec);
	if (nf != nfeeds)
		free(nf);
	(void)c;
	return rc;
}

static void	publish_round(struct core *c);

static void
round_start(struct core *c)
{
	struct pending *p, *next, **tail, *later = NULL, **later_tail = &later;
	struct tally_error err;
	char *buf = NULL, at[32];
	size_t len = 0, cap = 0, records = 0, i;
	uint64_t version = c->state->version, chain = c->chain, seq;

	if (c->log_ops != NULL && c->log_ops->publish != NULL) {
		publish_round(c);	/* cluster mode */
		return;
	}
	if (c->round != NULL || c->queue == NULL || c->log_ops == NULL ||
	    c->log_ops->busy(c->log))
		return;
	seq = c->log_ops->next_seq(c->log);
	time_rfc3339(time(NULL), at, sizeof(at));
	p = c->queue;
	c->queue = NULL;
	c->queue_tail = &c->queue;
	tail = &c->round;
	for (; p != NULL; p = next) {
		next = p->next;
		p->next = NULL;
		for (i = 0; i < p->n && !c->in_round[p->province[i]]; i++)
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
			answer_kind(c, p, CORE_REJECTED, &err, 0);
			pending_free(p);
			continue;
		}
		for (i = 0; i < p->n && p->lot == NULL; i++) {
			const struct tally_revision *cur =
			    tally_state_current(c->state, p->province[i]);
			const char *pid =
			    c->election->provinces[p->province[i]].id;
			if (tally_feed_check(cur ? cur->feed : NULL, p->feeds[i],
			    pid, &p->chk[i], &err) == -1)
				break;
			if (p->chk[i] == TALLY_CHECK_NEW &&
			    tally_feed_check_lists(cur ? cur->feed : NULL,
			    p->feeds[i], pid, &err) == -1)
				break;
			/*
			 * The feed's effect, computed before it is journaled
			 * (issue 21): a feed the seat engine fails on is
			 * refused (500 internal), never written, so that no
			 * record can stop the daemon at apply or at replay.
			 */
			if (p->chk[i] == TALLY_CHECK_NEW &&
			    tally_state_check_apply(c->state, p->feeds[i],
			    &err) == -1) {
				if (err.kind == TALLY_ERROR_INTERNAL)
					log_warnx("refused revision %llu of %s, "
					    "nothing journaled: %s",
					    (unsigned long long)
					    p->feeds[i]->revision, pid,
					    err.message);
				break;
			}
#ifdef TALLYD_FAILPOINTS
			{
				char fp[80];
				if (p->chk[i] == TALLY_CHECK_NEW &&
				    failpoint_engine(fp, sizeof(fp)) != NULL &&
				    strcmp(fp, pid) == 0) {
					failpoint_engine_error(pid, &err);
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
		if (i < p->n && p->lot == NULL) {
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
			answer_kind(c, p, CORE_REJECTED, &err, 0);
			pending_free(p);
			continue;
		}
		for (i = 0; i < p->n; i++)
			if (p->chk[i] == TALLY_CHECK_NEW)
				p->has_new = true;
		if (!p->has_new) {
			/* Everything in it is already applied: answer now. */
			answer_ok(c, p);
			pending_free(p);
			continue;
		}
		memcpy(p->at, at, sizeof(at));
		if (encode(c, p, seq + records, version + 1, chain, &buf, &len,
		    &cap) == -1) {
			tally_error_set(&err, TALLY_ERROR_NOMEM, "out_of_memory",
			    NULL, "out of memory; nothing was applied, try again");
			answer_kind(c, p, CORE_REJECTED, &err, 0);
			pending_free(p);
			continue;
		}
		p->version = ++version;
		chain = p->chain;
		records++;
		for (i = 0; i < p->n; i++)
			c->in_round[p->province[i]] = true;
		*tail = p;
		tail = &p->next;
	}
	/* What waits for the next round goes back to the front of the queue. */
	if (later != NULL) {
		*later_tail = c->queue;
		if (c->queue == NULL)
			c->queue_tail = later_tail;
		c->queue = later;
	}
	if (c->round == NULL) {
		free(buf);
		if (c->queue != NULL)
			round_start(c);	/* cannot loop: nothing is in a round */
		return;
	}
	if (c->log_ops->append(c->log, buf, len, records) == -1)
		fatalx("the journal is busy at the start of a round");
}

/* A request of n entries, answered by done(ctx); NULL (ENOMEM). */
static struct pending *
pending_new(size_t n, core_done_fn done, void *ctx)
{
	struct pending *p;

	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->chk = calloc(n, sizeof(*p->chk))) == NULL ||
	    (p->province = calloc(n, sizeof(*p->province))) == NULL ||
	    (p->revision = calloc(n, sizeof(*p->revision))) == NULL) {
		if (p != NULL)
			pending_free(p);
		errno = ENOMEM;
		return NULL;
	}
	p->n = n;
	p->done = done;
	p->ctx = ctx;
	return p;
}

/* Queue p for the next round, or answer it at once while stopping. */
static int
enqueue(struct core *c, struct pending *p)
{
	if (c->stopping) {
		answer_kind(c, p, CORE_STOPPING, NULL, 0);
		pending_free(p);
		return 0;
	}
	*c->queue_tail = p;
	c->queue_tail = &p->next;
	round_start(c);
	return 0;
}

int
core_submit(struct core *c, struct tally_feed **feeds, size_t n,
    core_done_fn done, void *ctx)
{
	struct pending *p;
	size_t i;

	if ((p = pending_new(n, done, ctx)) == NULL) {
		for (i = 0; i < n; i++)
			tally_feed_destroy(feeds[i]);
		free(feeds);
		return -1;
	}
	p->feeds = feeds;
	for (i = 0; i < n; i++) {
		p->province[i] = feeds[i]->province;
		p->revision[i] = feeds[i]->revision;
	}
	return enqueue(c, p);
}

int
core_submit_lot(struct core *c, struct tally_lot *lot, core_done_fn done,
    void *ctx)
{
	struct pending *p;

	if ((p = pending_new(1, done, ctx)) == NULL) {
		tally_lot_destroy(lot);
		return -1;
	}
	p->lot = lot;
	p->province[0] = lot->province;
	p->revision[0] = lot->revision;
	return enqueue(c, p);
}

void
core_drain(struct core *c)
{
	c->stopping = true;
}

void
core_abandon(struct core *c)
{
	struct pending *p, *next;

	c->stopping = true;
	for (p = c->queue; p != NULL; p = next) {
		next = p->next;
		answer_kind(c, p, CORE_STOPPING, NULL, 0);
		pending_free(p);
	}
	c->queue = NULL;
	c->queue_tail = &c->queue;
	/*
	 * The round in flight is answered now (it is not durable yet), and
	 * still applied if it becomes durable: then the tally, the final
	 * snapshot and the journal agree.  A client that was told 503 may
	 * find its revision applied after the restart, which the contract
	 * allows; a retry then gets `duplicate`.
	 */
	for (p = c->round; p != NULL; p = p->next)
		answer_kind(c, p, CORE_STOPPING, NULL, 0);
	/* Cluster mode: the same holds for records published. */
	for (p = c->inflight; p != NULL; p = p->next)
		answer_kind(c, p, CORE_STOPPING, NULL, 0);
}

int
core_swap_definition(struct core *c, struct tally_election *e,
    const char *path, struct tally_diag *diag)
{
	struct tally_state *s;

	/*
	 * Results already counted belong to the loaded definition: a new one
	 * is taken only while nothing has been counted (otherwise at the next
	 * restart, which rebuilds the tally from the journal).
	 */
	if (c->state->provinces_reporting > 0 || c->state->version > 0 ||
	    !core_idle(c)) {
		tally_diag_add(diag, "results are counted: the election "
		    "definition is taken at the next restart");
		tally_election_destroy(e);
		return -1;
	}
	/* core_alloc replaces the arrays only when all of them are had. */
	if ((s = tally_state_create(e)) == NULL || core_alloc(c, e) == -1) {
		tally_diag_add(diag, "out of memory; the definition in force "
		    "is kept");
		tally_state_destroy(s);
		tally_election_destroy(e);
		return -1;
	}
	tally_state_destroy(c->state);
	tally_election_destroy(c->election);
	c->state = s;
	c->election = e;
	c->def_digest = definition_digest(e);
	c->def_mtime = definition_mtime(e, path);
	core_started(c);
	return 0;
}

/*
 * Cluster mode: a log that orders records itself (daemon/cluster.c).
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
 */

static void
inflight_remove(struct core *c, struct pending *p)
{
	struct pending **pp;

	for (pp = &c->inflight; *pp != NULL; pp = &(*pp)->next)
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
		answer_ok(c, p);
		return;
	}
	/* A copy was applied earlier, or the record lost: check again. */
	cur = tally_state_current(c->state, p->province[0]);
	if (p->lot != NULL ? tally_state_lot_check(c->state, p->lot, &p->chk[0],
	    &err) == -1 : tally_feed_check(cur ? cur->feed : NULL, p->feeds[0],
	    c->election->provinces[p->province[0]].id, &p->chk[0], &err) == -1) {
		answer_kind(c, p, CORE_REJECTED, &err, 0);
		return;
	}
	if (p->chk[0] == TALLY_CHECK_DUPLICATE) {
		p->has_new = false;
		answer_ok(c, p);
		return;
	}
	tally_error_set(&err, TALLY_ERROR_CONFLICT, "revision_conflict", NULL,
	    "the log refused this record at position %llu; retry",
	    (unsigned long long)p->seq);
	answer_kind(c, p, CORE_REJECTED, &err, 0);
}

/* p's place is applied or refused: answer it and let the province go. */
static void
finish(struct core *c, struct pending *p, bool applied)
{
	inflight_remove(c, p);
	if (p->done != NULL)
		c->in_round[p->province[0]] = false;
	finish_answer(c, p, applied);
	pending_free(p);
}

static void
publish_round(struct core *c)
{
	struct pending *p, *next, *later = NULL, **later_tail = &later;
	struct tally_error err;
	char at[32], *rec;
	size_t reclen, prov;
	int rc;

	p = c->queue;
	c->queue = NULL;
	c->queue_tail = &c->queue;
	time_rfc3339(time(NULL), at, sizeof(at));
	for (; p != NULL; p = next) {
		const struct tally_revision *cur;
		next = p->next;
		p->next = NULL;
		if (p->n != 1) {
			tally_error_set(&err, TALLY_ERROR_INVALID,
			    "batch_in_cluster", NULL, "cluster mode takes one "
			    "province per request (POST /v1/provinces/{id}/"
			    "results); nothing was applied");
			answer_kind(c, p, CORE_REJECTED, &err, 0);
			pending_free(p);
			continue;
		}
		prov = p->province[0];
		if (c->in_round[prov] || p->wait_seq > c->state->version) {
			*later_tail = p;
			later_tail = &p->next;
			continue;
		}
		cur = tally_state_current(c->state, prov);
		/*
		 * A lot is a record of the province's subject like a feed:
		 * every node applies it at the same log position (and refuses
		 * a second lot for one tie alike, tally_journal_apply).
		 */
		if (p->lot != NULL ? tally_state_lot_check(c->state, p->lot,
		    &p->chk[0], &err) == -1 : tally_feed_check(cur ? cur->feed :
		    NULL, p->feeds[0], c->election->provinces[prov].id,
		    &p->chk[0], &err) == -1) {
			answer_kind(c, p, CORE_REJECTED, &err, 0);
			pending_free(p);
			continue;
		}
		if (p->chk[0] != TALLY_CHECK_NEW) {
			answer_ok(c, p);
			pending_free(p);
			continue;
		}
		/*
		 * The same checks as a single node's round (round_start): a
		 * new revision that leaves out a list the current one counts
		 * is refused (422 list_missing), and one the seat engine
		 * fails on (500), before anything is published.
		 */
		if (p->lot == NULL && (tally_feed_check_lists(cur ? cur->feed :
		    NULL, p->feeds[0], c->election->provinces[prov].id,
		    &err) == -1 || tally_state_check_apply(c->state,
		    p->feeds[0], &err) == -1)) {
			if (err.kind == TALLY_ERROR_INTERNAL)
				log_warnx("refused revision %llu of %s, nothing "
				    "published: %s", (unsigned long long)
				    p->feeds[0]->revision,
				    c->election->provinces[prov].id, err.message);
			answer_kind(c, p, CORE_REJECTED, &err, 0);
			pending_free(p);
			continue;
		}
		/*
		 * received_at is stamped here, once, and travels in the
		 * record: every node applies the same time.
		 */
		memcpy(p->at, at, sizeof(at));
		if (p->lot != NULL ? tally_journal_encode_request(0, 0, at,
		    p->lot->by, NULL, 0, &p->lot, 1, &rec, &reclen) == -1 :
		    tally_journal_encode(0, 0, at, p->feeds, 1, &rec,
		    &reclen) == -1) {
			tally_error_set(&err, TALLY_ERROR_NOMEM, "out_of_memory",
			    NULL, "out of memory; nothing was applied, try again");
			answer_kind(c, p, CORE_REJECTED, &err, 0);
			pending_free(p);
			continue;
		}
		p->acked = false;
		p->sent = time(NULL);
		p->attempts++;
		rc = c->log_ops->publish(c->log, rec + TALLY_JOURNAL_HEADER,
		    reclen - TALLY_JOURNAL_HEADER, prov, p->lot ? NULL :
		    p->feeds[0], c->subject_seq[prov], p);
		free(rec);
		if (rc == -1) {
			c->stats.log_failures++;
			answer_kind(c, p, CORE_UNAVAILABLE, NULL, EAGAIN);
			pending_free(p);
			continue;
		}
		c->in_round[prov] = true;
		p->next = c->inflight;
		c->inflight = p;
	}
	if (later != NULL) {
		*later_tail = c->queue;
		if (c->queue == NULL)
			c->queue_tail = later_tail;
		c->queue = later;
	}
}

static const bool *
decided(const struct core *c, uint64_t seq)
{
	size_t lo = 0, hi = c->n_decided, mid;

	/* In order of seq: a binary search. */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (c->decided[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->n_decided && c->decided[lo].seq == seq ?
	    &c->decided[lo].applied : NULL;
}

/* Does one of this node's records wait for its acknowledgement? */
static bool
unacked(const struct core *c)
{
	const struct pending *p;

	for (p = c->inflight; p != NULL; p = p->next)
		if (!p->acked)
			return true;
	return false;
}

/* Remember how record seq was decided while an acknowledgement is due. */
static void
decide(struct core *c, uint64_t seq, bool applied)
{
	struct decision *nd;
	size_t ncap;

	if (!unacked(c)) {
		c->n_decided = 0;
		c->decided_lost = false;
		return;
	}
	if (c->n_decided == c->cap_decided) {
		ncap = c->cap_decided ? 2 * c->cap_decided : 64;
		if ((nd = realloc(c->decided, ncap * sizeof(*nd))) == NULL) {
			c->decided_lost = true;
			return;
		}
		c->decided = nd;
		c->cap_decided = ncap;
	}
	c->decided[c->n_decided].seq = seq;
	c->decided[c->n_decided++].applied = applied;
}

void
core_log_acked(struct core *c, void *token, enum core_ack ack, uint64_t seq,
    bool duplicate)
{
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
			    c->decided_lost && !p->dup) {
				/* Not known (no memory): a retry is safe. */
				inflight_remove(c, p);
				if (p->done != NULL)
					c->in_round[prov] = false;
				answer_kind(c, p, CORE_UNAVAILABLE, NULL,
				    ENOMEM);
				pending_free(p);
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
			pending_free(p);
			break;
		}
		c->in_round[prov] = false;
		if (seq <= c->state->version && seq > c->subject_seq[prov])
			c->subject_seq[prov] = seq;
		if (p->attempts >= 5) {
			answer_kind(c, p, CORE_UNAVAILABLE, NULL, EAGAIN);
			pending_free(p);
			break;
		}
		p->wait_seq = seq;
		p->next = c->queue;
		if (c->queue == NULL)
			c->queue_tail = &p->next;
		c->queue = p;
		break;
	case CORE_ACK_UNAVAILABLE:
		inflight_remove(c, p);
		if (p->done != NULL) {
			c->in_round[prov] = false;
			c->stats.log_failures++;
		}
		answer_kind(c, p, CORE_UNAVAILABLE, NULL, EAGAIN);
		pending_free(p);
		break;
	}
	publish_round(c);
}

void
core_log_record(struct core *c, uint64_t seq, const char *payload, size_t len,
    size_t province)
{
	struct tally_state *s = c->state;
	struct tally_error terr;
	struct pending *p, *next;
	size_t n = 0, i;
	bool ok;

	if (seq <= s->version)
		return;		/* covered by the snapshot */
	if (province < c->election->n_provinces)
		c->subject_seq[province] = seq;
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
	/*
	 * Versions are log positions: a refused record still takes its
	 * version (the leaderboard says it, and the chain moved), so the
	 * whole tally's stamp moves with it, changing no province: else one
	 * ETag would name the bodies of two versions.
	 */
	publish_changed(c, n, s->updated_at[0] ? parse_time(s->updated_at) :
	    c->global.at);
	for (p = c->inflight; p != NULL; p = next) {
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
	struct pending *p;

	for (p = c->inflight; p != NULL; p = p->next)
		if (p->done != NULL && now - p->sent >= CORE_PUBLISH_WAIT) {
			/*
			 * Still published: if the log took it, it is applied
			 * later and a retry is answered "duplicate".
			 */
			c->in_round[p->province[0]] = false;
			c->stats.log_failures++;
			answer_kind(c, p, CORE_UNAVAILABLE, NULL, ETIMEDOUT);
		}
	publish_round(c);
}

const char *
core_log_name(const struct core *c)
{
	return c->log_ops != NULL ? c->log_ops->name : "none";
}

bool
core_log_status(const struct core *c, struct core_log_status *st)
{
	memset(st, 0, sizeof(*st));
	if (c->log_ops == NULL || c->log_ops->status == NULL)
		return false;
	c->log_ops->status(c->log, st);
	st->lag = st->log_last > c->state->version ?
	    st->log_last - c->state->version : 0;
	return true;
}
