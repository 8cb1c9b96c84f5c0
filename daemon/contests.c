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
 * log below: one round in the journal at a time, whoever's it is; when it
 * is durable, its core applies and answers it, then every core is kicked in
 * turn (the owner last), so that a busy contest cannot keep the journal
 * from the others.  A record says which contest it is for as its last
 * member ("contest": id, written by core_local.c's encode when the core has
 * a contest tag); replay hands it to that contest's core, and a record
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "contests.h"
#include "core.h"
#include "journal.h"
#include "log.h"

struct contest {
	struct contests	*cs;		/* [I] back, for the log below */
	size_t		 index;		/* [I] */
	struct core	*core;		/* [I] owned but for the first */
	struct api	*api;		/* [I] borrowed (contests_api.c) */
	char		*path;		/* [I] its definition's file */
};

struct contests {
	struct contest	*v;		/* [I] n of them; [0]: main.c's */
	size_t		 n;
	struct journal	*journal;	/* [I] borrowed, once set */
	size_t		 owner;		/* [L] whose round the journal holds,
					   SIZE_MAX: nobody's */
	bool		 hold;		/* [L] the journal counts as busy (the
					   owner's completion runs) */
};

static const char *
contest_id(const struct contest *ct)
{
	return core_election(ct->core)->id;
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
	cs->owner = SIZE_MAX;
	if ((first_path = strdup(cf->election)) == NULL) {
		free(cs->v);
		free(cs);
		tally_diag_add(diag, "out of memory");
		return NULL;
	}
	cs->v[0] = (struct contest){ cs, 0, first, NULL, first_path };
	cs->n = 1;
	for (p = cf->contests; p != NULL; p = nl ? nl + 1 : NULL) {
		struct contest *ct = &cs->v[cs->n];
		nl = strchr(p, '\n');
		ct->cs = cs;
		ct->index = cs->n;
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
			tally_diag_add(diag, "contest %zu (%s) has the id \"%s\" "
			    "of contest %zu (%s): each contest needs an id of "
			    "its own (the \"id\" of its definition)", cs->n + 1,
			    ct->path, e->id, j + 1, cs->v[j].path);
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
	return cs;
fail:
	contests_destroy(cs);
	return NULL;
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
	for (i = 0; i < cs->n; i++)
		free(cs->v[i].path);
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

size_t
contests_find(const struct contests *cs, const char *id)
{
	size_t i;

	for (i = 0; i < cs->n; i++)
		if (strcmp(contest_id(&cs->v[i]), id) == 0)
			return i;
	return SIZE_MAX;
}

int
contests_replay(void *arg, const char *payload, size_t len,
    struct tally_error *err)
{
	struct contests *cs = arg;
	char name[TALLY_ID_MAX + 1];
	size_t i = 0;

	record_contest(payload, len, name, sizeof(name));
	if (name[0] != '\0' && (i = contests_find(cs, name)) == SIZE_MAX)
		return tally_error_set(err, TALLY_ERROR_INVALID,
		    "unknown_contest", NULL, "the record is of contest \"%s\", "
		    "which is not defined: start with its definition too "
		    "(--election or a contest line), as when it was written",
		    name);
	return core_replay(cs->v[i].core, payload, len, err);
}

/* The journal as each core's log: one round at a time, whoever's. */
static int
mux_append(void *log, char *buf, size_t len, size_t records)
{
	struct contest *ct = log;
	struct contests *cs = ct->cs;

	/* Taken on every path, as journal_submit takes it; busy cannot
	 * happen (round_start asked mux_busy first). */
	if (cs->hold) {
		free(buf);
		return -1;
	}
	if (journal_submit(cs->journal, buf, len, records) == -1)
		return -1;
	cs->owner = ct->index;
	return 0;
}

static uint64_t
mux_next_seq(void *log)
{
	struct contest *ct = log;

	return journal_next_seq(ct->cs->journal);
}

static bool
mux_busy(void *log)
{
	struct contest *ct = log;

	return ct->cs->hold || journal_busy(ct->cs->journal);
}

static const struct core_log_ops mux_log = {
	"journal", mux_append, mux_next_seq, mux_busy, NULL, NULL,
};

int
contests_set_journal(struct contests *cs, struct journal *j)
{
	size_t i;

	cs->journal = j;
	for (i = 0; i < cs->n; i++)
		if (core_set_journal(cs->v[i].core, &mux_log, &cs->v[i]) == -1)
			return -1;
	return 0;
}

void
contests_log_done(void *arg, int err, size_t records)
{
	struct contests *cs = arg;
	size_t o = cs->owner == SIZE_MAX ? 0 : cs->owner, i;

	cs->owner = SIZE_MAX;
	/*
	 * The owner applies and answers its round; its own next round waits
	 * (hold) until every other contest had its turn at the journal.
	 */
	cs->hold = true;
	core_log_done(cs->v[o].core, err, records);
	cs->hold = false;
	for (i = 1; i <= cs->n; i++)
		core_kick(cs->v[(o + i) % cs->n].core);
}

void
contests_started(struct contests *cs)
{
	size_t i;

	for (i = 1; i < cs->n; i++)
		core_started(cs->v[i].core);
}

void
contests_drain(struct contests *cs)
{
	size_t i;

	for (i = 0; i < cs->n; i++)
		core_drain(cs->v[i].core);
}

void
contests_abandon(struct contests *cs)
{
	size_t i;

	for (i = 0; i < cs->n; i++)
		core_abandon(cs->v[i].core);
}

bool
contests_idle(const struct contests *cs)
{
	size_t i;

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

