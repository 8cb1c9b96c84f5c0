/*
 * api.c - the HTTP API v1's start-up and teardown: it makes the API's
 * modules, wires them to the core and the server, and hands a reload to
 * each.  It answers no request itself.
 *
 * The modules, each with its header, and who calls whom (never back):
 *
 *   server.c ──api_handle/api_admit──▶ routes.c (the route table, dispatch)
 *   routes.c ──▶ get.c, ingest.c, live.c (events), metrics_http.c, cors.c
 *   get.c ──▶ live.c (?wait= parks) ──▶ views.c (cache, version ring)
 *   get.c ──▶ views.c;  metrics_http.c ──▶ views.c, live.c (counters)
 *   ingest.c ──▶ core.c (core_submit, core_submit_lot)
 *   core.c ──on_publish (a subscription)──▶ live.c
 *   every handler ──▶ call.c (the one exit, counters) ──▶ reply.c
 *
 * One exit per request: every refusal goes through call_fail() (call.c),
 * which fills the reply and counts it (feed rejections by code in
 * /metrics).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "auth.h"
#include "core.h"
#include "log.h"
#include "routes.h"
#include "call.h"
#include "contests.h"
#include "live.h"
#include "views.h"

struct api *
api_create(struct core *core, const struct config *cf,
    struct tally_diag *diag)
{
	struct api *api;

	if ((api = calloc(1, sizeof(*api))) == NULL) {
		tally_diag_add(diag, "out of memory");
		return NULL;
	}
	api->core = core;
	api->routes = api_routes;
	if (routes_check(diag) == -1) {
		api_destroy(api);
		return NULL;
	}
	if ((cf->cors_origin != NULL && (api->cors_origin =
	    strdup(cf->cors_origin)) == NULL) ||
	    (api->views = views_create(core, cf, api->cors_origin,
	    diag)) == NULL) {
		if (diag->count == 0)
			tally_diag_add(diag, "out of memory");
		api_destroy(api);
		return NULL;
	}
	if ((api->auth = auth_create(cf, core_election(core), false,
	    diag)) == NULL) {
		api_destroy(api);
		return NULL;
	}
	if ((api->live = live_create(api, cf)) == NULL) {
		tally_diag_add(diag, "out of memory");
		api_destroy(api);
		return NULL;
	}
	api->split = cf->ingest_listen != NULL &&
	    strcmp(cf->ingest_listen, cf->listen) != 0;
	snprintf(api->ingest_addr, sizeof(api->ingest_addr), "%s",
	    api->split ? cf->ingest_listen : cf->listen);
	log_info("ingest tokens: %s", auth_source(api->auth));
	return api;
}

void
api_set_server(struct api *api, struct server *srv)
{
	api->server = srv;
	if (live_set_server(api->live, srv) == -1)
		fatalx("out of memory for the long-poll timer");
}

void
api_set_metrics(struct api *api, void (*fn)(void *, FILE *), void *arg)
{
	api->metrics_fn = fn;
	api->metrics_arg = arg;
}

void
api_set_loader(struct api *api, tally_revision_loader load, void *ctx)
{
	views_set_loader(api->views, load, ctx);
}

void
api_destroy(struct api *api)
{
	if (api == NULL)
		return;
	/* Parked long-polls are answered from views still there. */
	live_destroy(api->live);
	auth_destroy(api->auth);
	views_destroy(api->views);
	free(api->cors_origin);
	free(api);
}

int
api_reload(struct api *api, struct tally_election *e, const struct config *cf,
    struct tally_diag *diag)
{
	const struct tally_election *cur = core_election(api->core);
	const struct tally_state *s = core_state(api->core);
	bool swap = s->provinces_reporting == 0 && s->version == 0 &&
	    core_idle(api->core);
	struct auth *auth;

	/*
	 * Tokens may name provinces, so they are checked against the
	 * definition that will be in force.
	 */
	if ((auth = auth_create(cf, swap ? e : cur, false, diag)) == NULL ||
	    (api->contests != NULL && contests_check_tokens(api->contests,
	    auth, diag) == -1)) {
		auth_destroy(auth);
		tally_election_destroy(e);
		return -1;
	}
	if (swap) {
		if (core_swap_definition(api->core, e, cf->election, diag) == -1 ||
		    views_resize(api->views) == -1) {
			auth_destroy(auth);
			if (views_resize(api->views) == -1)
				fatalx("out of memory rebuilding the view cache");
			return -1;
		}
		/*
		 * A new epoch: the kept versions and the hello were the old
		 * election's (their URLs and ids carry its digest, so none is
		 * reused), and open streams start again from a snapshot.
		 */
		views_versions_clear(api->views);
		live_new_epoch(api->live);
	} else {
		/* Only a definition that differs waits for the restart. */
		json_t *was = tally_election_dump(cur), *now =
		    tally_election_dump(e);
		if (was == NULL || now == NULL || !json_equal(was, now))
			log_warnx("results are counted: the election definition "
			    "in force is kept until the next restart (which "
			    "rebuilds the tally from the journal); other "
			    "settings are reloaded");
		json_decref(was);
		json_decref(now);
		tally_election_destroy(e);
	}
	auth_destroy(api->auth);
	api->auth = auth;
	/* Cached bodies carry the old Cache-Control. */
	if (views_set_max_age(api->views, cf->max_age) == -1)
		fatalx("out of memory rebuilding the view cache");
	log_info("ingest tokens: %s", auth_source(api->auth));
	return 0;
}

void
api_stop_live(struct api *api)
{
	live_stop(api->live);
}
