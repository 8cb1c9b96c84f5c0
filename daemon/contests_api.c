/*
 * contests_api.c - the API of each further contest (issue 23): its own
 * view cache (its URLs under /v1/contests/<id>) and live state, made,
 * wired to the server, stopped and freed beside the first contest's API.
 * Apart from contests.c so that the registry calls nothing of the API (the
 * routes call the registry: contests_http.c).
 *
 * Loop thread only [L].
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "call.h"
#include "contests.h"
#include "core.h"
#include "live.h"
#include "log.h"
#include "views.h"

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
	/* Counted with the first's, which /metrics reports (call.c). */
	api->first = (struct api *)(uintptr_t)first;
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

struct api *
contests_api_make(struct core *core, const struct api *first,
    const struct config *cf, struct tally_diag *diag)
{
	return contest_api(core, first, cf, diag);
}

int
contests_api_create(struct contests *cs, struct api *first,
    const struct config *cf, struct tally_diag *diag)
{
	struct api *api;
	size_t i;


	for (i = 1; i < contests_count(cs); i++) {
		if ((api = contest_api(contests_core(cs, i), first, cf,
		    diag)) == NULL)
			return -1;
		contests_set_api(cs, i, api);
	}
	contests_set_api(cs, 0, first);
	first->contests = cs;
	if (first->night == NULL &&
	    (first->night = live_night_create(first)) == NULL) {
		tally_diag_add(diag, "out of memory setting up the contests");
		return -1;
	}
	return 0;
}

void
contests_api_destroy(struct contests *cs)
{
	struct api *api;
	size_t i;

	if (cs == NULL)
		return;
	for (i = 1; i < contests_count(cs); i++) {
		if ((api = contests_api(cs, i)) == NULL)
			continue;
		/* The tokens were lent. */
		api->auth = NULL;
		api_destroy(api);
		contests_set_api(cs, i, NULL);
	}
	/* Those a reload removed (their streams were stopped then). */
	for (i = 0; i < contests_retired_count(cs); i++) {
		api = contests_retired_api(cs, i);
		api->auth = NULL;
		api_destroy(api);
	}
	if ((api = contests_api(cs, 0)) != NULL && api->contests == cs) {
		live_night_destroy(api->night);
		api->night = NULL;
		api->contests = NULL;
	}
}

void
contests_api_set_server(struct contests *cs, struct server *srv)
{
	size_t i;

	if (contests_api(cs, 0) != NULL && contests_api(cs, 0)->night != NULL &&
	    live_night_set_server(contests_api(cs, 0)->night, srv) == -1)
		fatalx("out of memory for the contests' long-poll timer");
	for (i = 1; i < contests_count(cs); i++)
		api_set_server(contests_api(cs, i), srv);
}

void
contests_api_stop_live(struct contests *cs)
{
	size_t i;

	if (contests_api(cs, 0) != NULL)
		live_night_stop(contests_api(cs, 0)->night);
	for (i = 1; i < contests_count(cs); i++)
		api_stop_live(contests_api(cs, i));
}
