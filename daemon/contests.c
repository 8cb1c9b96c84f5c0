/*
 * contests.c - several contests in one tallyd (issue 23).
 *
 * A contest is one election definition with its own commit core (election,
 * tally, version, record chain, stamps) and its own API state (view cache,
 * version ring, long-polls and event streams).  The first contest is
 * main.c's; this file is the registry: it loads the others and makes their
 * cores, and puts one journal behind all of them.  contests_api.c makes
 * each further contest's API; contests_http.c serves GET /v1/contests and
 * hands every /v1/contests/{contest}/... request to the plain route's
 * handler on the contest's API, so that a contest's routes are today's,
 * answer for answer.
 *
 * One journal.  Every core's log is the same journal, through the small
 * log below: one job in the journal at a time, holding the rounds of every
 * core that had one (group commit across contests: one fdatasync for all);
 * when it is durable, each of those cores applies and answers its round,
 * then every core's next round is gathered into the next job.  A record
 * says which contest it is for as its last member ("contest": id, written
 * by core_local.c's encode when the core has a contest tag); replay hands it to that contest's core, and a record
 * without one to the first (a journal written by one contest replays
 * unchanged).  Since every core chains its own records only, a contest's
 * stamps, and so its ETags and bytes, are a function of its own records:
 * posting to B never moves A.
 *
 * With several contests no snapshot is written (main.c): a snapshot holds
 * one tally, and the journal segments it covers would be removed under the
 * other contests' records.  The journal is kept whole and replayed at start.
 *
 * Loop thread only [L].
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "contests.h"
#include "core.h"
#include "journal.h"
#include "log.h"
#include "snapshot.h"

/*
 * A core's log argument: the contest by its index, since a reload that
 * adds or removes contests moves the registry's array.
 */
struct contest_log {
	struct contests	*cs;
	size_t		 index;		/* [L] contests_reload_commit */
};

struct contest {
	struct contests	*cs;		/* [I] back, for the log below */
	size_t		 index;		/* [L] */
	struct contest_log *log;	/* [L] owned: the core's log arg */
	struct core	*core;		/* [I] owned but for the first */
	struct api	*api;		/* [I] borrowed (contests_api.c) */
	char		*path;		/* [I] its definition's file */
	size_t		 in_journal;	/* [L] records of its round in the
					   journal's job now (0: none) */
	/* Its event streams' topic (stream.c): a number never given to
	 * another contest, so a stream opened before a reload that moved
	 * the array goes on following the contest it named. */
	unsigned	 topic;		/* [I] */
};

struct contests {
	struct contest	*v;		/* [I] n of them; [0]: main.c's */
	size_t		 n;
	struct journal	*journal;	/* [I] borrowed, once set */
	bool		 hold;		/* [L] the journal counts as busy (a
					   round's completion runs) */
	bool		 gathering;	/* [L] rounds go into gbuf */
	char		*gbuf;		/* [L] the next job: every core's
					   round, one after another */
	size_t		 glen, gcap;	/* [L] */
	size_t		 grecords;	/* [L] records in gbuf */
	size_t		 next;		/* [L] the core gathered first next */
	struct contests_group *groups;	/* [L] batches across contests
					   waiting for the journal, FIFO */
	struct contests_group **groups_tail;	/* [L] */
	bool		 stopping;	/* [L] contests_drain */
	/* Replay: the parts of a batch across contests read so far, held
	 * until its last part is (contests_replay). */
	char		**held;		/* [L] payloads (owned) */
	size_t		*held_len;	/* [L] */
	size_t		*held_contest;	/* [L] */
	size_t		 n_held, of_held;	/* [L] read, of how many */
	/* A reload's contests while its tokens are checked (staged). */
	const struct tally_election **staged;	/* [L] borrowed */
	size_t		 n_staged;	/* [L] */
	/* Contests a reload removed: kept until exit (a stream of theirs
	 * may still be closing). */
	struct contest	*retired;	/* [L] */
	size_t		 n_retired;	/* [L] */
	struct snapshot_sched *snaps;	/* [L] borrowed: stopped when
					   several contests are served */
	unsigned	 next_topic;	/* [L] the topic of the next contest */
};

static void	groups_run(struct contests *cs);
static void	held_drop(struct contests *cs);
static int	mux_append(void *log, char *buf, size_t len, size_t records);
static const struct core_log_ops mux_log;

static const char *
contest_id(const struct contest *ct)
{
	return core_election(ct->core)->id;
}

void
contests_check_config(const struct config *cf,
    const struct tally_election *first)
{
	struct tally_election **v;
	struct tally_diag diag;
	const char *p, *nl;
	size_t n = 0, i, j;
	char *path;
	bool ok = true;

	if (cf->contests == NULL)
		return;
	for (p = cf->contests; p != NULL; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		n++;
	}
	if ((v = calloc(n + 1, sizeof(*v))) == NULL)
		fatalx("out of memory");
	v[0] = (struct tally_election *)(uintptr_t)first;
	tally_diag_init(&diag);
	for (i = 1, p = cf->contests; ok && p != NULL; i++,
	    p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		if ((path = nl ? strndup(p, (size_t)(nl - p)) : strdup(p)) ==
		    NULL)
			fatalx("out of memory");
		if ((v[i] = tally_election_load(path, &diag)) == NULL) {
			tally_diag_add(&diag, "contest %zu: election %s invalid "
			    "(see docs/ELECTION.md)", i + 1, path);
			ok = false;
		}
		for (j = 0; ok && j < i; j++)
			if (strcmp(v[j]->id, v[i]->id) == 0) {
				tally_diag_add(&diag, "contest %zu (%s) has the "
				    "id \"%s\" of contest %zu: each contest needs "
				    "an id of its own (the \"id\" of its "
				    "definition)", i + 1, path, v[i]->id, j + 1);
				ok = false;
			}
		free(path);
	}
	for (j = 1; j < i; j++)
		if (v[j] != NULL)
			tally_election_destroy(v[j]);
	free(v);
	if (!ok)
		log_diag(&diag);
	tally_diag_finish(&diag);
	if (!ok)
		fatalx("cannot set up the contests: fix the problems above");
}

struct contests *
contests_create(struct core *first, const struct config *cf,
    struct tally_diag *diag)
{
	struct contests *cs;
	struct tally_election *e;
	char *first_path;
	const char *p, *nl;
	size_t n = 1, i, j;

	for (p = cf->contests; p != NULL; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		n++;
	}
	if ((cs = calloc(1, sizeof(*cs))) == NULL ||
	    (cs->v = calloc(n, sizeof(*cs->v))) == NULL) {
		free(cs);
		tally_diag_add(diag, "out of memory");
		return NULL;
	}
	if ((first_path = strdup(cf->election)) == NULL) {
		free(cs->v);
		free(cs);
		tally_diag_add(diag, "out of memory");
		return NULL;
	}
	cs->groups_tail = &cs->groups;
	cs->v[0] = (struct contest){ .cs = cs, .core = first,
	    .path = first_path };
	cs->n = 1;
	for (p = cf->contests; p != NULL; p = nl ? nl + 1 : NULL) {
		struct contest *ct = &cs->v[cs->n];
		nl = strchr(p, '\n');
		ct->cs = cs;
		ct->index = cs->n;
		ct->topic = (unsigned)cs->n;
		if ((ct->path = nl ? strndup(p, (size_t)(nl - p)) :
		    strdup(p)) == NULL) {
			tally_diag_add(diag, "out of memory");
			goto fail;
		}
		if ((e = tally_election_load(ct->path, diag)) == NULL) {
			tally_diag_add(diag, "contest %zu: election %s invalid "
			    "(see docs/ELECTION.md)", cs->n + 1, ct->path);
			free(ct->path);
			goto fail;
		}
		/* The id names the contest in URLs and in the journal. */
		for (j = 0; j < cs->n; j++)
			if (strcmp(contest_id(&cs->v[j]), e->id) == 0)
				break;
		if (j < cs->n) {
			tally_diag_add(diag, "contest %zu (%s) has the id "
			    "\"%s\" of contest %zu (%s): each contest needs an "
			    "id of its own (the \"id\" of its definition)",
			    cs->n + 1, ct->path, e->id, j + 1, cs->v[j].path);
			tally_election_destroy(e);
			free(ct->path);
			goto fail;
		}
		if ((ct->core = core_create(e, ct->path, diag)) == NULL) {
			free(ct->path);
			goto fail;
		}
		cs->n++;
	}
	cs->next_topic = (unsigned)cs->n;
	/*
	 * With several contests every record says whose it is; one contest
	 * writes records as before, byte for byte.
	 */
	for (i = 0; i < cs->n && cs->n > 1; i++)
		if (core_set_contest(cs->v[i].core, contest_id(&cs->v[i])) ==
		    -1) {
			tally_diag_add(diag, "out of memory");
			goto fail;
		}
	/* A token file's items of further contests name served ones. */
	if (cf->token_file != NULL && contests_check_token_file(cs, cf,
	    diag) == -1)
		goto fail;
	return cs;
fail:
	contests_destroy(cs);
	return NULL;
}

int
contests_check_tokens(const struct contests *cs, const struct auth *a,
    struct tally_diag *diag)
{
	const struct tally_election **es;
	size_t i, n = contests_count(cs);
	int rc;

	/* A reload's tokens hold for the contests it will serve. */
	if (cs->staged != NULL)
		return auth_resolve(a, cs->staged, cs->n_staged, diag);
	if ((es = calloc(n, sizeof(*es))) == NULL) {
		tally_diag_add(diag, "out of memory checking the tokens");
		return -1;
	}
	for (i = 0; i < n; i++)
		es[i] = core_election(contests_core(cs, i));
	rc = auth_resolve(a, es, n, diag);
	free(es);
	return rc;
}

int
contests_check_token_file(const struct contests *cs,
    const struct config *cf, struct tally_diag *diag)
{
	struct tally_diag mine;
	struct auth *a;
	int rc;

	/*
	 * The file's own problems (a bad line, a province of the first
	 * contest) are told by whoever loads it for use (api_create, the
	 * check's auth_create); here only the items of further contests.
	 */
	tally_diag_init(&mine);
	a = auth_create(cf, core_election(contests_core(cs, 0)), true, &mine);
	tally_diag_finish(&mine);
	if (a == NULL)
		return 0;
	rc = contests_check_tokens(cs, a, diag);
	auth_destroy(a);
	return rc;
}

/* Forget the parts of a batch held at replay. */
static void
held_drop(struct contests *cs)
{
	size_t i;

	for (i = 0; i < cs->n_held; i++)
		free(cs->held[i]);
	free(cs->held);
	free(cs->held_len);
	free(cs->held_contest);
	cs->held = NULL;
	cs->held_len = cs->held_contest = NULL;
	cs->n_held = cs->of_held = 0;
}

void
contests_stage(struct contests *cs, const struct tally_election **es,
    size_t n)
{
	cs->staged = es;
	cs->n_staged = n;
}

const char *
contests_path(const struct contests *cs, size_t i)
{
	return cs->v[i].path;
}

bool
contests_groups_waiting(const struct contests *cs)
{
	return cs->groups != NULL;
}

void
contests_set_snapshots(struct contests *cs, struct snapshot_sched *ss)
{
	cs->snaps = ss;
	if (cs->n > 1)
		snapshot_sched_stop(ss);
}

size_t
contests_retired_count(const struct contests *cs)
{
	return cs->n_retired;
}

struct api *
contests_retired_api(const struct contests *cs, size_t k)
{
	return cs->retired[k].api;
}

int
contests_rebuild(struct contests *cs, const size_t *from, struct core **cores,
    char **paths, struct api **apis, size_t n)
{
	struct contest *nv, *nr;
	size_t i, k, gone = 0, logs = 0;
	bool *kept;

	if ((kept = calloc(cs->n, sizeof(*kept))) == NULL)
		return -1;
	for (k = 1; k < n; k++)
		if (from[k] != SIZE_MAX)
			kept[from[k]] = true;
	for (i = 1; i < cs->n; i++)
		gone += !kept[i];
	if ((nv = calloc(n, sizeof(*nv))) == NULL ||
	    (nr = realloc(cs->retired, (cs->n_retired + gone + 1) *
	    sizeof(*nr))) == NULL) {
		free(nv);
		free(kept);
		return -1;
	}
	cs->retired = nr;
	/* Each new contest's log argument, before anything moves. */
	for (k = 1; k < n; k++) {
		if (from[k] != SIZE_MAX)
			continue;
		if ((nv[k].log = calloc(1, sizeof(*nv[k].log))) == NULL)
			goto nomem;
		logs++;
	}
	nv[0] = cs->v[0];
	for (k = 1; k < n; k++) {
		if (from[k] != SIZE_MAX) {
			nv[k] = cs->v[from[k]];
			continue;
		}
		nv[k].log->cs = cs;
		nv[k].cs = cs;
		nv[k].topic = cs->next_topic++;
		nv[k].core = cores[k];
		nv[k].path = paths[k];
		nv[k].api = apis[k];
		cores[k] = NULL;
		paths[k] = NULL;
		apis[k] = NULL;
	}
	for (i = 1; i < cs->n; i++)
		if (!kept[i]) {
			cs->v[i].index = SIZE_MAX;
			cs->retired[cs->n_retired++] = cs->v[i];
		}
	free(cs->v);
	free(kept);
	cs->v = nv;
	cs->n = n;
	cs->next %= n;
	for (k = 0; k < n; k++) {
		nv[k].index = k;
		if (nv[k].log != NULL)
			nv[k].log->index = k;
		/* Several contests: every record says whose it is. */
		if (n > 1 && core_contest(nv[k].core) == NULL &&
		    core_set_contest(nv[k].core, contest_id(&nv[k])) == -1)
			fatalx("out of memory tagging the records of contest %s",
			    contest_id(&nv[k]));
	}
	for (k = 1; k < n; k++)
		if (nv[k].core != NULL && from[k] == SIZE_MAX &&
		    core_set_journal(nv[k].core, &mux_log, nv[k].log) == -1)
			fatalx("out of memory adding contest %s",
			    contest_id(&nv[k]));
	if (n > 1 && cs->snaps != NULL)
		snapshot_sched_stop(cs->snaps);
	return 0;
nomem:
	for (k = 1; k < n && logs > 0; k++)
		if (from[k] == SIZE_MAX)
			free(nv[k].log);
	free(nv);
	free(kept);
	return -1;
}

void
contests_destroy(struct contests *cs)
{
	size_t i;

	if (cs == NULL)
		return;
	/* The APIs went first (contests_api_destroy). */
	for (i = 1; i < cs->n; i++)
		core_destroy(cs->v[i].core);
	for (i = 0; i < cs->n; i++) {
		free(cs->v[i].path);
		free(cs->v[i].log);
	}
	for (i = 0; i < cs->n_retired; i++) {
		core_destroy(cs->retired[i].core);
		free(cs->retired[i].path);
		free(cs->retired[i].log);
	}
	free(cs->retired);
	held_drop(cs);
	free(cs->gbuf);
	free(cs->v);
	free(cs);
}

size_t
contests_count(const struct contests *cs)
{
	return cs->n;
}

struct core *
contests_core(const struct contests *cs, size_t i)
{
	return cs->v[i].core;
}

bool
contests_backup_refused(const struct contests *cs, const char *data_dir)
{
	struct core_log_status st;

	if (cs->n == 1)
		return false;
	if (core_log_status(cs->v[0].core, &st))
		log_warnx("SIGUSR1: no backup with %zu contests (a backup is a "
		    "snapshot of one tally): each contest's stream holds it "
		    "(back up the NATS servers' stores)", cs->n);
	else
		log_warnx("SIGUSR1: no backup with %zu contests (a backup is a "
	    "snapshot of one tally): copy the journal segments "
	    "(%s/journal-*.log) instead; they hold every contest", cs->n,
	    data_dir);
	return true;
}

int
contests_check_reload(const struct contests *cs,
    const struct tally_election *e, struct tally_diag *diag)
{
	if (cs->n == 1 || strcmp(e->id, contest_id(&cs->v[0])) == 0)
		return 0;
	tally_diag_add(diag, "%s: the id \"%s\" is not the first contest's "
	    "(\"%s\"): with %zu contests the id names its records in the "
	    "journal; another id takes a restart", cs->v[0].path, e->id,
	    contest_id(&cs->v[0]), cs->n);
	return -1;
}

const char *
contests_id(const struct contests *cs, size_t i)
{
	return contest_id(&cs->v[i]);
}

struct api *
contests_api(const struct contests *cs, size_t i)
{
	return cs->v[i].api;
}

void
contests_set_api(struct contests *cs, size_t i, struct api *api)
{
	cs->v[i].api = api;
}

static bool
id_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

/*
 * The contest a record is for: its last member, ,"contest":"<id>"}
 * (core_local.c writes it there), copied to name; "" when there is none.
 * A string inside the record cannot end it that way: its quotes would be
 * escaped.
 */
static void
record_contest(const char *payload, size_t len, char *name, size_t size)
{
	const char *end = payload + len, *q;
	static const char member[] = ",\"contest\":\"";
	size_t ml = sizeof(member) - 1;

	name[0] = '\0';
	if (len < ml + 3 || end[-1] != '}' || end[-2] != '"')
		return;
	for (q = end - 2; q > payload && id_char(q[-1]); q--)
		;
	if ((size_t)(q - payload) < ml || memcmp(q - ml, member, ml) != 0 ||
	    end - 2 == q || (size_t)(end - 2 - q) >= size)
		return;
	memcpy(name, q, (size_t)(end - 2 - q));
	name[end - 2 - q] = '\0';
}

unsigned
contests_topic(const struct contests *cs, size_t i)
{
	return cs->v[i].topic;
}

size_t
contests_find(const struct contests *cs, const char *id)
{
	size_t i;

	for (i = 0; i < cs->n; i++)
		if (strcmp(contest_id(&cs->v[i]), id) == 0)
			return i;
	return SIZE_MAX;
}

/*
 * The part of a batch across contests a record is: ,"batch":[i,n] right
 * before its contest member (core_local.c's tag_record); 0 when it is
 * none.  *of: n.
 */
static size_t
record_part(const char *payload, size_t len, const char *name, size_t *of)
{
	static const char member[] = ",\"batch\":[";
	size_t ml = sizeof(member) - 1, tail = strlen(name) + 15, i = 0, n = 0;
	const char *end, *q;

	*of = 0;
	/* ...,"batch":[i,n],"contest":"<name>"} */
	if (name[0] == '\0' || len < tail + ml + 4)
		return 0;
	end = payload + len - tail;	/* at the ']' */
	if (*end != ']')
		return 0;
	for (q = end; q > payload && q[-1] >= '0' && q[-1] <= '9'; q--)
		;
	if (q == end || q - payload < 1 || q[-1] != ',')
		return 0;
	for (const char *d = q; d < end; d++)
		n = n * 10 + (size_t)(*d - '0');
	end = q - 1;
	for (q = end; q > payload && q[-1] >= '0' && q[-1] <= '9'; q--)
		;
	if (q == end || (size_t)(q - payload) < ml ||
	    memcmp(q - ml, member, ml) != 0)
		return 0;
	for (const char *d = q; d < end; d++)
		i = i * 10 + (size_t)(*d - '0');
	if (i == 0 || n < 2 || i > n || n > 4096)
		return 0;
	*of = n;
	return i;
}

/* Replay the held parts of a batch, in their order.  0, or -1 with err. */
static int
held_apply(struct contests *cs, struct tally_error *err)
{
	size_t k;
	int rc = 0;

	for (k = 0; k < cs->n_held && rc == 0; k++)
		rc = core_replay(cs->v[cs->held_contest[k]].core, cs->held[k],
		    cs->held_len[k], err);
	held_drop(cs);
	return rc;
}

int
contests_replay(void *arg, const char *payload, size_t len,
    struct tally_error *err)
{
	struct contests *cs = arg;
	char name[TALLY_ID_MAX + 1];
	size_t i = 0, part, of, k;

	record_contest(payload, len, name, sizeof(name));
	if (name[0] != '\0' && (i = contests_find(cs, name)) == SIZE_MAX)
		return tally_error_set(err, TALLY_ERROR_INVALID,
		    "unknown_contest", NULL, "the record is of contest \"%s\", "
		    "which is not defined: start with its definition too "
		    "(--election or a contest line), as when it was written",
		    name);
	part = record_part(payload, len, name, &of);
	/*
	 * A batch across contests is one record per contest, written in one
	 * job: none is applied until its last part is read, so that a job
	 * torn after some of its parts applies none of them (the journal
	 * cuts the held ones with the tail: 1 says they are held).  The
	 * parts follow one another; anything else is damage.
	 */
	if (cs->n_held > 0 && part != cs->n_held + 1)
		return tally_error_set(err, TALLY_ERROR_INVALID,
		    "unfinished_batch", NULL, "a batch across contests ends "
		    "after %zu of its %zu records: the next record is %s; "
		    "the journal was damaged there", cs->n_held, cs->of_held,
		    part ? "part of another batch" : "not of a batch");
	if (part == 0)
		return core_replay(cs->v[i].core, payload, len, err);
	if (part == 1 && cs->n_held == 0) {
		if ((cs->held = calloc(of, sizeof(*cs->held))) == NULL ||
		    (cs->held_len = calloc(of, sizeof(size_t))) == NULL ||
		    (cs->held_contest = calloc(of, sizeof(size_t))) == NULL) {
			held_drop(cs);
			return tally_error_set(err, TALLY_ERROR_NOMEM,
			    "out_of_memory", NULL, "out of memory replaying a "
			    "batch across contests");
		}
		cs->of_held = of;
	}
	if (of != cs->of_held)
		return tally_error_set(err, TALLY_ERROR_INVALID,
		    "unfinished_batch", NULL, "part %zu of a batch across "
		    "contests says %zu parts, its first said %zu: the journal "
		    "was damaged there", part, of, cs->of_held);
	k = cs->n_held;
	if ((cs->held[k] = malloc(len)) == NULL)
		return tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory",
		    NULL, "out of memory replaying a batch across contests");
	memcpy(cs->held[k], payload, len);
	cs->held_len[k] = len;
	cs->held_contest[k] = i;
	cs->n_held++;
	if (part < of)
		return 1;
	return held_apply(cs, err);
}

/*
 * The journal as each core's log.  A core whose queue fills while the
 * journal is idle hands its round straight to the journal.  When a job is
 * done, every core whose round it held applies and answers it, and then
 * every core's next round is gathered into one job (group commit across
 * contests: one fdatasync for all of them), its records numbered on from
 * the ones before it in the job.
 */
static struct contest *
mux_contest(void *log)
{
	struct contest_log *lg = log;

	return &lg->cs->v[lg->index];
}

static int
mux_append(void *log, char *buf, size_t len, size_t records)
{
	struct contest *ct = mux_contest(log);
	struct contests *cs = ct->cs;
	char *nb;
	size_t ncap;

	/* Taken on every path, as journal_submit takes it; busy cannot
	 * happen (round_start asked mux_busy first). */
	if (cs->hold) {
		free(buf);
		return -1;
	}
	if (!cs->gathering) {
		if (journal_submit(cs->journal, buf, len, records) == -1)
			return -1;
		ct->in_journal = records;
		return 0;
	}
	if (cs->glen == 0) {
		/* The first round of the job: its buffer, no copy. */
		free(cs->gbuf);
		cs->gbuf = buf;
		cs->glen = cs->gcap = len;
	} else {
		if (cs->glen + len > cs->gcap) {
			ncap = cs->gcap * 2 > cs->glen + len ? cs->gcap * 2 :
			    cs->glen + len;
			if ((nb = realloc(cs->gbuf, ncap)) == NULL) {
				free(buf);
				return -1;
			}
			cs->gbuf = nb;
			cs->gcap = ncap;
		}
		memcpy(cs->gbuf + cs->glen, buf, len);
		cs->glen += len;
		free(buf);
	}
	cs->grecords += records;
	ct->in_journal = records;
	return 0;
}

static uint64_t
mux_next_seq(void *log)
{
	struct contest *ct = mux_contest(log);

	return journal_next_seq(ct->cs->journal) + (ct->cs->gathering ?
	    ct->cs->grecords : 0);
}

/*
 * A batch across contests goes into a job with nothing else of its
 * contests: each part is checked against the durable results and numbered
 * on from them, like a round.  Run it now (the journal idle: a job of its
 * own) or when the journal's job is done (contests_log_done, before any
 * core's round is gathered).
 */
void
contests_group_submit(struct contests *cs, struct contests_group *g)
{
	if (cs->stopping) {
		g->stop(g);
		return;
	}
	g->next = NULL;
	*cs->groups_tail = g;
	cs->groups_tail = &g->next;
	if (!cs->hold && !cs->gathering && !journal_busy(cs->journal))
		groups_run(cs);
}

/* The waiting batches, first come first, as far as the job takes them. */
static void
groups_run(struct contests *cs)
{
	struct contests_group *g;

	/* Off the queue before it runs: run answers and frees it. */
	while ((g = cs->groups) != NULL) {
		if ((cs->groups = g->next) == NULL)
			cs->groups_tail = &cs->groups;
		if (g->run(g) == 1) {
			/* A contest of it is in the job: the next job. */
			if ((g->next = cs->groups) == NULL)
				cs->groups_tail = &g->next;
			cs->groups = g;
			break;
		}
	}
}

bool
contests_group_free(const struct contests *cs, size_t i)
{
	return cs->v[i].in_journal == 0;
}

uint64_t
contests_group_seq(const struct contests *cs)
{
	return journal_next_seq(cs->journal) + (cs->gathering ? cs->grecords :
	    0);
}

void
contests_group_append(struct contests *cs, char *buf, size_t len,
    size_t records, const size_t *contests, size_t n)
{
	size_t i;

	if (cs->gathering) {
		/* mux_append's copy: as a core's round into the job. */
		if (mux_append(cs->v[contests[0]].log, buf, len, records) == -1)
			fatalx("out of memory gathering a batch across contests "
			    "into the journal's job");
	} else if (journal_submit(cs->journal, buf, len, records) == -1)
		fatalx("the journal is busy at the start of a batch across "
		    "contests");
	/* One record of each contest; core_log_done answers each. */
	for (i = 0; i < n; i++)
		cs->v[contests[i]].in_journal = 1;
}

static bool
mux_busy(void *log)
{
	struct contest *ct = mux_contest(log);

	return ct->cs->hold || (!ct->cs->gathering &&
	    journal_busy(ct->cs->journal));
}

static const struct core_log_ops mux_log = {
	"journal", mux_append, mux_next_seq, mux_busy, NULL, NULL,
};

/* Contest i's core writes to the shared journal. */
static int
contest_set_log(struct contests *cs, size_t i)
{
	struct contest *ct = &cs->v[i];

	if ((ct->log = calloc(1, sizeof(*ct->log))) == NULL)
		return -1;
	ct->log->cs = cs;
	ct->log->index = i;
	return core_set_journal(ct->core, &mux_log, ct->log);
}

int
contests_set_journal(struct contests *cs, struct journal *j)
{
	size_t i;

	cs->journal = j;
	for (i = 0; i < cs->n; i++)
		if (contest_set_log(cs, i) == -1)
			return -1;
	if (cs->n > 1)
		log_info("%zu contests: no snapshots are written (a snapshot "
		    "holds one tally); the journal is kept whole and replayed "
		    "at start", cs->n);
	return 0;
}

void
contests_log_done(void *arg, int err, size_t records)
{
	struct contests *cs = arg;
	size_t i, k, r;
	bool any = false;
	char *buf;

	/*
	 * Every core whose round the job held applies and answers it (a job
	 * of no round, a rotation, goes to the first, as with one contest);
	 * meanwhile no core starts another (hold).
	 */
	cs->hold = true;
	for (i = 0; i < cs->n; i++) {
		if ((r = cs->v[i].in_journal) == 0)
			continue;
		cs->v[i].in_journal = 0;
		any = true;
		core_log_done(cs->v[i].core, err, r);
	}
	if (!any)
		core_log_done(cs->v[0].core, err, records);
	cs->hold = false;
	/* The next job: every core's round, starting with a different core
	 * each time, so that none waits on the others' order for ever. */
	cs->gathering = true;
	cs->glen = cs->grecords = 0;
	/* Batches across contests first: each keeps its contests' rounds
	 * out of this job (a part is its core's round). */
	groups_run(cs);
	for (k = 0; k < cs->n; k++)
		core_kick(cs->v[(cs->next + k) % cs->n].core);
	cs->next = (cs->next + 1) % cs->n;
	cs->gathering = false;
	if (cs->grecords == 0)
		return;
	buf = cs->gbuf;
	cs->gbuf = NULL;
	cs->gcap = 0;
	if (journal_submit(cs->journal, buf, cs->glen, cs->grecords) == -1)
		fatalx("the journal is busy at the start of a round");
}

void
contests_started(struct contests *cs)
{
	size_t i;

	/* Parts of a batch the journal ended with: it cut them (held). */
	if (cs->n_held > 0)
		log_warnx("journal: a batch across contests ended after %zu of "
		    "its %zu records (a torn write, never acknowledged): none "
		    "of it is applied", cs->n_held, cs->of_held);
	held_drop(cs);

	for (i = 1; i < cs->n; i++)
		core_started(cs->v[i].core);
}

void
contests_drain(struct contests *cs)
{
	size_t i;

	cs->stopping = true;
	for (i = 0; i < cs->n; i++)
		core_drain(cs->v[i].core);
}

void
contests_abandon(struct contests *cs)
{
	struct contests_group *g;
	size_t i;

	cs->stopping = true;
	while ((g = cs->groups) != NULL) {
		cs->groups = g->next;
		g->stop(g);
	}
	cs->groups_tail = &cs->groups;
	for (i = 0; i < cs->n; i++)
		core_abandon(cs->v[i].core);
}

bool
contests_idle(const struct contests *cs)
{
	size_t i;

	if (cs->groups != NULL)
		return false;
	for (i = 0; i < cs->n; i++)
		if (!core_idle(cs->v[i].core))
			return false;
	return true;
}

bool
contests_round_idle(const struct contests *cs)
{
	size_t i;

	for (i = 0; i < cs->n; i++)
		if (!core_round_idle(cs->v[i].core))
			return false;
	return true;
}

