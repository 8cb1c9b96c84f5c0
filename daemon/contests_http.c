/*
 * contests_http.c - GET /v1/contests, and every /v1/contests/{contest}/...
 * route: the plain route's handler on the contest's API (issue 23; the
 * registry is contests.c)
 *
 * Loop thread only [L].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "call.h"
#include "contests.h"
#include "core.h"
#include "reply.h"
#include "routes.h"
#include "views.h"

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
	{ R_CONTEST_CHANGES,		R_CHANGES },
	{ R_CONTEST_RESULTS_CSV,	R_RESULTS_CSV },
	{ R_CONTEST_RESULTS_JSONL,	R_RESULTS_JSONL },
	{ R_CONTEST_HISTORY_CSV,	R_HISTORY_CSV },
	{ R_CONTEST_MAP_SVG,		R_MAP_SVG },
	{ R_CONTEST_CALLS,		R_CALLS },
	{ R_CONTEST_CALLS_DECLARE,	R_CALLS_DECLARE },
	{ R_CONTEST_CALLS_RETRACT,	R_CALLS_RETRACT },
	{ R_CONTEST_EVENTS,		R_EVENTS },
	{ R_CONTEST_LOG_KEY,		R_LOG_KEY },	/* its own log */
	{ R_CONTEST_LOG_CHECKPOINT,	R_LOG_CHECKPOINT },
	{ R_CONTEST_LOG_TILE,		R_LOG_TILE },
	{ R_CONTEST_LOG_PROOF,		R_LOG_PROOF },
};

/*
 * One contest of GET /v1/contests, from its leaderboard as served (the
 * same numbers, the same version): NULL without memory.
 */
static json_t *
contest_row(const struct contests *cs, size_t ci, const json_t *lb)
{
	const struct tally_election *e = core_election(contests_core(cs, ci));
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
	    "version", (json_int_t)core_state(contests_core(cs, ci))->version,
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

json_t *
contests_list_json(struct contests *cs, const size_t *idx, size_t n)
{
	json_t *o = NULL, *a, *lb, *row;
	const struct view *v;
	unsigned long nomem;
	size_t i, k;

	if (idx == NULL)
		n = cs != NULL ? contests_count(cs) : 0;
	if (cs == NULL || (o = json_object()) == NULL ||
	    (a = json_array()) == NULL ||
	    json_object_set_new(o, "default", json_string(contests_id(cs,
	    0))) == -1 || json_object_set_new(o, "contests", a) == -1)
		goto nomem;
	/* jansson may lose a character instead of failing (tally_json_init):
	 * a failure counted during the parse is out of memory. */
	nomem = tally_json_failures();
	for (k = 0; k < n; k++) {
		i = idx != NULL ? idx[k] : k;
		if ((v = views_current(contests_api(cs, i)->views,
		    VIEW_LEADERBOARD, 0)) == NULL || (lb = json_loadb(v->bytes,
		    v->len, 0, NULL)) == NULL)
			goto nomem;
		row = contest_row(cs, i, lb);
		json_decref(lb);
		if (row == NULL || json_array_append_new(a, row) == -1)
			goto nomem;
	}
	if (tally_json_failures() != nomem)
		goto nomem;
	return o;
nomem:
	json_decref(o);
	return NULL;
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
	    (i = contests_find(cs, name)) == SIZE_MAX) {
		call_fail(cl, 404, "unknown_contest", NULL, "no contest \"%s\" "
		    "(GET /v1/contests lists them)", name);
		return;
	}
	sub = *cl;
	sub.api = contests_api(cs, i);
	/*
	 * A view answers as its plain route (its cache policy, its kept
	 * versions); a feed keeps the contest's route, under which its
	 * pending answer is counted.  The table through the API, not by
	 * name: routes.c calls us.
	 */
	if (!(cl->rt->methods & ROUTE_POST))
		sub.rt = &cl->api->routes[mirror[m].plain];
	/* The tokens in force are the first API's (a reload replaces them). */
	if (i > 0)
		sub.api->auth = cl->api->auth;
	cl->api->routes[mirror[m].plain].serve(&sub, rest != NULL ? rest + 1 :
	    "");
}
