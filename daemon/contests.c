/*
 * contests.c - several contests in one tallyd (issue 23).
 *
 * A contest is one election definition with its own commit core (election,
 * tally, version, record chain, stamps) and its own API state (view cache,
 * version ring, long-polls and event streams).  The first contest is
 * main.c's; this file makes the others, serves GET /v1/contests, and hands
 * every /v1/contests/{contest}/... request to the plain route's handler on
 * the contest's API, so that a contest's routes are today's, answer for
 * answer.
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

#include <jansson.h>

#include "api.h"
#include "call.h"
#include "config.h"
#include "contests.h"
#include "core.h"
#include "journal.h"
#include "live.h"
#include "log.h"
#include "reply.h"
#include "routes.h"
#include "views.h"

struct contest {
	struct contests	*cs;		/* [I] back, for the log below */
	size_t		 index;		/* [I] */
	struct core	*core;		/* [I] owned but for the first */
	struct api	*api;		/* [I] owned but for the first */
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

/* Every contest route and the plain route it mirrors. */
static const struct {
	enum route_id	contest, plain;
} mirror[] = {
	{ R_CONTEST_ELECTION,		R_ELECTION },
	{ R_CONTEST_LEADERBOARD,	R_LEADERBOARD },
	{ R_CONTEST_LEADERBOARD_CSV,	R_LEADERBOARD_CSV },
	{ R_CONTEST_LEADERBOARD_SVG,	R_LEADERBOARD_SVG },
	{ R_CONTEST_PROVINCES,		R_PROVINCES },
	{ R_CONTEST_PROVINCES_CSV,	R_PROVINCES_CSV },
	{ R_CONTEST_PROVINCE,		R_PROVINCE },
	{ R_CONTEST_HISTORY,		R_HISTORY },
	{ R_CONTEST_COALITION,		R_COALITION },
	{ R_CONTEST_PROVINCE_RESULTS,	R_PROVINCE_RESULTS },
	{ R_CONTEST_RESULTS,		R_RESULTS },
	{ R_CONTEST_LOT,		R_LOT },
	{ R_CONTEST_VERSION_LEADERBOARD, R_VERSION_LEADERBOARD },
	{ R_CONTEST_VERSION_PROVINCES,	R_VERSION_PROVINCES },
	{ R_CONTEST_VERSION_LEADERBOARD_SVG, R_VERSION_LEADERBOARD_SVG },
};

/*
 * The API of a further contest: its own views (their URLs under
 * /v1/contests/<id>) and live streams; the tokens are the first API's,
 * lent per request (contests_serve), so that a reload's new tokens hold
 * for every contest at once.
 */
static struct api *
contest_api(struct core *core, const struct api *first,
    const struct config *cf, struct tally_diag *diag)
{
	struct api *api;
	char prefix[96];

	if ((api = calloc(1, sizeof(*api))) == NULL)
		goto nomem;
	api->core = core;
	api->routes = first->routes;
	api->split = first->split;
	memcpy(api->ingest_addr, first->ingest_addr, sizeof(api->ingest_addr));
	api->contest = core_election(core)->id;
	if ((first->cors_origin != NULL && (api->cors_origin =
	    strdup(first->cors_origin)) == NULL) ||
	    (api->views = views_create(core, cf, api->cors_origin,
	    diag)) == NULL || (api->live = live_create(api, cf)) == NULL) {
		api_destroy(api);
		goto nomem;
	}
	snprintf(prefix, sizeof(prefix), "/v1/contests/%s", api->contest);
	views_set_prefix(api->views, prefix);
	return api;
nomem:
	if (diag->count == 0)
		tally_diag_add(diag, "out of memory setting up a contest");
	return NULL;
}

static const char *
contest_id(const struct contest *ct)
{
	return core_election(ct->core)->id;
}

struct contests *
contests_create(struct core *first, struct api *first_api,
    const struct config *cf, struct tally_diag *diag)
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
	cs->v[0] = (struct contest){ cs, 0, first, first_api, first_path };
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
		if (first_api != NULL && (ct->api = contest_api(ct->core,
		    first_api, cf, diag)) == NULL) {
			core_destroy(ct->core);
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
	if (first_api != NULL)
		first_api->contests = cs;
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
	for (i = 1; i < cs->n; i++) {
		/* The tokens were lent. */
		if (cs->v[i].api != NULL)
			cs->v[i].api->auth = NULL;
		api_destroy(cs->v[i].api);
		core_destroy(cs->v[i].core);
	}
	for (i = 0; i < cs->n; i++)
		free(cs->v[i].path);
	if (cs->n > 0 && cs->v[0].api != NULL &&
	    cs->v[0].api->contests == cs)
		cs->v[0].api->contests = NULL;
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

static size_t
contest_find(const struct contests *cs, const char *id)
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
	if (name[0] != '\0' && (i = contest_find(cs, name)) == SIZE_MAX)
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
contests_set_server(struct contests *cs, struct server *srv)
{
	size_t i;

	for (i = 1; i < cs->n; i++)
		api_set_server(cs->v[i].api, srv);
}

void
contests_stop_live(struct contests *cs)
{
	size_t i;

	for (i = 1; i < cs->n; i++)
		api_stop_live(cs->v[i].api);
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

/*
 * One contest of GET /v1/contests, from its leaderboard as served (the
 * same numbers, the same version): NULL without memory.
 */
static json_t *
contest_row(const struct contest *ct, const json_t *lb)
{
	const struct tally_election *e = core_election(ct->core);
	const json_t *seats = json_object_get(lb, "seats");
	const json_t *prov = json_object_get(lb, "provinces");
	const json_t *coals = json_object_get(lb, "coalitions"), *c, *top;
	const char *status = "hung", *by = NULL;
	json_t *leader;
	char href[160];
	size_t i;

	/* A coalition clinched it; else one still may; else none can. */
	json_array_foreach(coals, i, c) {
		const char *m = json_string_value(json_object_get(c,
		    "majority"));
		if (m != NULL && strcmp(m, "clinched") == 0) {
			status = "clinched";
			by = json_string_value(json_object_get(c, "id"));
			break;
		}
		if (m != NULL && strcmp(m, "possible") == 0)
			status = "open";
	}
	top = json_array_get(coals, 0);
	/* Nothing counted: nobody leads (rank 1 is then the first by id). */
	if (top != NULL && (json_integer_value(json_object_get(top, "votes")) >
	    0 || json_integer_value(json_object_get(top, "seats")) > 0))
		leader = json_pack("{sOsOsOsO}", "id", json_object_get(top,
		    "id"), "short", json_object_get(top, "short"), "votes",
		    json_object_get(top, "votes"), "seats",
		    json_object_get(top, "seats"));
	else
		leader = json_null();
	snprintf(href, sizeof(href), "/v1/contests/%s/leaderboard", e->id);
	return json_pack("{sssssIsOs{sOsOsO}s{sOsOsO}sos{ssso}ss}",
	    "id", e->id, "name", e->name,
	    "version", (json_int_t)core_state(ct->core)->version,
	    "updated_at", json_object_get(lb, "updated_at"),
	    "seats", "total", json_object_get(seats, "total"), "allocated",
	    json_object_get(seats, "allocated"), "majority",
	    json_object_get(seats, "majority"),
	    "provinces", "total", json_object_get(prov, "total"), "reporting",
	    json_object_get(prov, "reporting"), "final",
	    json_object_get(prov, "final"),
	    "leader", leader,
	    "majority", "status", status, "coalition",
	    by != NULL ? json_string(by) : json_null(),
	    "leaderboard", href);
}

void
contests_serve_list(struct call *cl, const char *id)
{
	struct contests *cs = cl->api->contests;
	json_t *o = NULL, *a, *lb, *row;
	const struct view *v;
	size_t i;

	(void)id;
	if (cs == NULL || (o = json_object()) == NULL ||
	    (a = json_array()) == NULL ||
	    json_object_set_new(o, "default", json_string(contest_id(
	    &cs->v[0]))) == -1 || json_object_set_new(o, "contests", a) == -1)
		goto nomem;
	for (i = 0; i < cs->n; i++) {
		if ((v = views_current(cs->v[i].api->views, VIEW_LEADERBOARD,
		    0)) == NULL || (lb = json_loadb(v->bytes, v->len, 0,
		    NULL)) == NULL)
			goto nomem;
		row = contest_row(&cs->v[i], lb);
		json_decref(lb);
		if (row == NULL || json_array_append_new(a, row) == -1)
			goto nomem;
	}
	reply_json(cl->reply, 200, o);
	return;
nomem:
	json_decref(o);
	call_fail(cl, 503, "out_of_memory", NULL, "out of memory; try again");
}

void
contests_serve(struct call *cl, const char *id)
{
	struct contests *cs = cl->api->contests;
	char name[TALLY_ID_MAX + 1];
	const char *rest = strchr(id, '/');
	size_t n = rest != NULL ? (size_t)(rest - id) : strlen(id), i, m;
	struct call sub;

	snprintf(name, sizeof(name), "%.*s", (int)n, id);
	for (m = 0; m < sizeof(mirror) / sizeof(mirror[0]); m++)
		if (mirror[m].contest == cl->rt->id)
			break;
	if (cs == NULL || m == sizeof(mirror) / sizeof(mirror[0]) ||
	    (i = contest_find(cs, name)) == SIZE_MAX) {
		call_fail(cl, 404, "unknown_contest", NULL, "no contest \"%s\" "
		    "(GET /v1/contests lists them)", name);
		return;
	}
	sub = *cl;
	sub.api = cs->v[i].api;
	sub.rt = &api_routes[mirror[m].plain];
	/* The tokens in force are the first API's (a reload replaces them). */
	if (i > 0)
		sub.api->auth = cl->api->auth;
	sub.rt->serve(&sub, rest != NULL ? rest + 1 : "");
}
