/*
 * core.c - the commit core: the election, the tally, the log and the group
 * commit, behind one small interface.
 *
 *	core_submit(feeds) -> done(outcome)	a request's feeds, answered once
 *	core_subscribe(on_publish)		told of every new version and
 *						the provinces it changed
 *	core_swap_definition(e)			a new election, whole or refused
 *
 * The two commit protocols behind it, one in force (core_int.h):
 * core_local.c, group commit on the journal; core_cluster.c, publish,
 * acknowledgement and the records of a replicated log.  This file keeps
 * what they share: the election and the tally, the stamps, the definition
 * swap, the subscribers, the queue and the answers.
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

#include "core.h"
#include "log.h"
#include "util.h"
#include "core_int.h"

time_t
core_parse_time(const char *rfc3339)
{
	/* Each version parses its round's stamp: one a second repeats. */
	static _Thread_local char last[32];
	static _Thread_local time_t last_t;
	struct tm tm;

	if (rfc3339 != NULL && rfc3339[0] != '\0' &&
	    strcmp(rfc3339, last) == 0)
		return last_t;
	memset(&tm, 0, sizeof(tm));
	if (rfc3339 == NULL || rfc3339[0] == '\0' ||
	    strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ", &tm) == NULL)
		return 0;
	if (strlen(rfc3339) < sizeof(last)) {
		strcpy(last, rfc3339);
		last_t = timegm(&tm);
		return last_t;
	}
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
	uint64_t *chains;

	chains = calloc(e->n_provinces, sizeof(*chains));
	stamps = calloc(e->n_provinces, sizeof(*stamps));
	changed = calloc(e->n_provinces, sizeof(*changed));
	if (stamps == NULL || changed == NULL || chains == NULL) {
		free(chains);
		free(stamps);
		free(changed);
		return -1;
	}
	free(c->stamps);
	free(c->changed);
	free(c->chains);
	c->chains = chains;
	c->stamps_known = false;	/* core_started sets them */
	c->stamps = stamps;
	c->changed = changed;
	return 0;
}

/* The definition's digest (util.c), or a value unique to this run when
 * it cannot be made (out of memory): stamps must never collide. */
static uint64_t
core_digest(const struct tally_election *e)
{
	uint64_t h = definition_digest(e);

	if (h == 0 && getrandom(&h, sizeof(h), 0) != (ssize_t)sizeof(h))
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
	c->def_digest = core_digest(e);
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
	if (c->proto != NULL)
		c->proto->destroy(c->proto_state);
	tally_state_destroy(c->state);
	tally_election_destroy(c->election);
	free(c->stamps);
	free(c->changed);
	free(c->chains);
	free(c->contest);
	free(c);
}

void
core_kick(struct core *c)
{
	/* Draining too: what is queued still goes to the log. */
	if (c->proto != NULL)
		c->proto->kick(c);
}

int
core_set_contest(struct core *c, const char *id)
{
	char *dup = NULL;

	if (id != NULL && (dup = strdup(id)) == NULL)
		return -1;
	free(c->contest);
	c->contest = dup;
	return 0;
}

const char *
core_contest(const struct core *c)
{
	return c->contest;
}

int
core_set_protocol(struct core *c, const struct core_protocol *proto,
    const struct core_log_ops *ops, void *log)
{
	void *st;

	if (c->proto != NULL || (st = proto->create(c->election)) == NULL)
		return -1;
	c->log_ops = ops;
	c->log = log;
	c->proto = proto;
	c->proto_state = st;
	return 0;
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
const char *
core_failpoint_engine(char *buf, size_t size)
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

int
core_failpoint_engine_error(const char *pid, struct tally_error *err)
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
	if (core_failpoint_engine(fp, sizeof(fp)) != NULL) {
		snprintf(pat, sizeof(pat), "\"province\":\"%s\"", fp);
		if (memmem(payload, len, pat, strlen(pat)) != NULL)
			return core_failpoint_engine_error(fp, err);
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
	if (s->version > before)
		core_tell_version(c, s->version, payload, len);
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
	stamps_move(c, n, when[0] ? core_parse_time(when) : c->global.at);
	core_calls_observe(c);
	return 0;
}

void
core_started(struct core *c)
{
	const struct tally_state *s = c->state;
	time_t at = s->updated_at[0] ? core_parse_time(s->updated_at) : c->def_mtime;
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

/* A request handed to the log still owes someone an answer. */
static bool
core_owes(const struct core *c)
{
	return c->proto != NULL && c->proto->owes(c);
}

bool
core_idle(const struct core *c)
{
	return c->queue == NULL && !core_owes(c);
}

bool
core_round_idle(const struct core *c)
{
	return !core_owes(c);
}

void
core_pending_free(struct pending *p)
{
	size_t i;

	for (i = 0; i < p->n && p->feeds != NULL; i++)
		tally_feed_destroy(p->feeds[i]);
	free(p->feeds);
	tally_lot_destroy(p->lot);
	tally_call_op_destroy(p->call);
	free(p->chk);
	free(p->province);
	free(p->revision);
	free(p->rec);
	free(p);
}

void
core_tell_version(struct core *c, uint64_t version, const char *payload,
    size_t len)
{
	static const char member[] = ",\"contest\":\"";
	size_t ml = sizeof(member) - 1, n;
	char *copy;

	if (c->on_version == NULL)
		return;
	/* ...,"contest":"<id>"}: the record ends with it (core_local.c). */
	n = c->contest != NULL && payload != NULL ? strlen(c->contest) : 0;
	if (n == 0 || len < ml + n + 3 || memcmp(payload + len - n - 2,
	    c->contest, n) != 0 || memcmp(payload + len - n - 2 - ml, member,
	    ml) != 0) {
		c->on_version(c->on_version_arg, version, payload, len);
		return;
	}
	len -= ml + n + 2;
	if ((copy = malloc(len + 1)) == NULL)
		fatalx("out of memory telling the transparency log of version "
		    "%llu; restart tallyd: the journal holds it",
		    (unsigned long long)version);
	memcpy(copy, payload, len);
	copy[len++] = '}';
	c->on_version(c->on_version_arg, version, copy, len);
	free(copy);
}

void
core_set_version_hook(struct core *c, core_version_fn fn, void *arg)
{
	c->on_version = fn;
	c->on_version_arg = arg;
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

void
core_answer_kind(struct core *c, struct pending *p, enum core_outcome_kind kind,
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
void
core_answer_ok(struct core *c, struct pending *p)
{
	struct core_outcome out;
	size_t i;

	memset(&out, 0, sizeof(out));
	out.kind = p->has_new ? CORE_APPLIED : CORE_DUPLICATE;
	out.version = p->has_new ? p->version : c->state->version;
	for (i = 0; i < p->n; i++)
		if (p->chk[i] == TALLY_CHECK_DUPLICATE && p->call == NULL)
			c->stats.feeds_duplicate++;
	answer(c, p, &out);
}

/*
 * Feed i of p against the applied state, as both protocols check it before
 * a record is written: the revision (tally_feed_check: new, duplicate,
 * stale, conflict); for a new one, the lists it must keep
 * (tally_feed_check_lists) and its effect (issue 21:
 * tally_state_check_apply, so that a feed the seat engine fails on is
 * refused, 500 internal, and never becomes a record that stops the daemon
 * at apply or replay).  `what` says what did not happen ("journaled",
 * "published") in the warning for an internal failure.  0, or -1 with err.
 */
int
core_check_feed(struct core *c, struct pending *p, size_t i, const char *what,
    struct tally_error *err)
{
	/* Revision, list_missing, then the seat engine's trial (libtally's
	 * one feed check, shared with the dry run). */
	if (tally_state_check_post_mark(c->state, p->feeds[i], &p->chk[i],
	    err) == -1) {
		if (err->kind == TALLY_ERROR_INTERNAL)
			log_warnx("refused revision %llu of %s, nothing %s: %s",
			    (unsigned long long)p->feeds[i]->revision,
			    c->election->provinces[p->province[i]].id, what,
			    err->message);
		return -1;
	}
	return 0;
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
void
core_publish_changed(struct core *c, size_t n, time_t at)
{
	const struct tally_state *s = c->state;
	size_t i;

	stamps_move(c, n, at);
	core_calls_observe(c);
	for (i = 0; i < c->n_subs; i++)
		c->subs[i].fn(c->subs[i].arg, s->version, c->changed, n);
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
			core_pending_free(p);
		errno = ENOMEM;
		return NULL;
	}
	p->n = n;
	p->done = done;
	p->ctx = ctx;
	return p;
}

struct pending *
core_pending_new(size_t n, core_done_fn done, void *ctx)
{
	return pending_new(n, done, ctx);
}

/* Queue p for the next round, or answer it at once while stopping. */
static int
enqueue(struct core *c, struct pending *p)
{
	if (c->stopping) {
		core_answer_kind(c, p, CORE_STOPPING, NULL, 0);
		core_pending_free(p);
		return 0;
	}
	*c->queue_tail = p;
	c->queue_tail = &p->next;
	if (c->proto != NULL)
		c->proto->kick(c);
	return 0;
}

struct pending *
core_queue_take(struct core *c)
{
	struct pending *p = c->queue;

	c->queue = NULL;
	c->queue_tail = &c->queue;
	return p;
}

void
core_queue_put_back(struct core *c, struct pending *head,
    struct pending **tail)
{
	*tail = c->queue;
	if (c->queue == NULL)
		c->queue_tail = tail;
	c->queue = head;
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

int
core_submit_call(struct core *c, struct tally_call_op *op, core_done_fn done,
    void *ctx)
{
	struct pending *p;

	if ((p = pending_new(1, done, ctx)) == NULL) {
		tally_call_op_destroy(op);
		return -1;
	}
	p->call = op;
	/*
	 * A call is a record of its province's subject (a national one: the
	 * first province's), so that a cluster orders it like a lot.
	 */
	p->province[0] = op->province != SIZE_MAX ? op->province : 0;
	return enqueue(c, p);
}

/*
 * A version was applied (live, replayed, or from the cluster's stream):
 * the calls it made (tally/calls.h).  Out of memory here leaves the calls
 * short of what the log says, which no later version repairs: stop, and
 * the restart replays it.
 */
void
core_calls_observe(struct core *c)
{
	if (tally_calls_observe(c->state) == -1)
		fatalx("out of memory deriving the calls of version %llu; "
		    "restart tallyd: the log holds it",
		    (unsigned long long)c->state->version);
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
		core_answer_kind(c, p, CORE_STOPPING, NULL, 0);
		core_pending_free(p);
	}
	c->queue = NULL;
	c->queue_tail = &c->queue;
	if (c->proto != NULL)
		c->proto->abandon(c);
}

int
core_swap_definition(struct core *c, struct tally_election *e,
    const char *path, struct tally_diag *diag)
{
	struct tally_state *s = NULL;
	void *st = NULL;

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
	/*
	 * core_alloc replaces the arrays only when all of them are had, and
	 * only after the protocol's new state is: nothing changes on failure.
	 */
	if ((c->proto != NULL && (st = c->proto->create(e)) == NULL) ||
	    (s = tally_state_create(e)) == NULL || core_alloc(c, e) == -1) {
		tally_diag_add(diag, "out of memory; the definition in force "
		    "is kept");
		if (st != NULL)
			c->proto->destroy(st);
		tally_state_destroy(s);
		tally_election_destroy(e);
		return -1;
	}
	if (c->proto != NULL) {
		c->proto->destroy(c->proto_state);
		c->proto_state = st;
	}
	tally_state_destroy(c->state);
	tally_election_destroy(c->election);
	c->state = s;
	c->election = e;
	c->def_digest = core_digest(e);
	c->def_mtime = definition_mtime(e, path);
	core_started(c);
	return 0;
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
