/*
 * api.c - the HTTP API v1: routing, views and feed gates, on top of the
 * commit core (core.c).  It knows nothing of libmicrohttpd: server.c hands
 * it complete requests and sends the bodies it returns.
 *
 * Reads never re-encode: each view is rendered at most once per stamp (the
 * version that last changed it, with the digests that make it unique; see
 * core.c), into bodies (plain and 304; gzip the first time a client asks for
 * it) that every GET of that stamp sends again.  libmicrohttpd
 * reference-counts bodies, so replacing a view only drops our reference;
 * connections still sending the old bytes keep theirs.  A province's views
 * keep their stamp while other provinces change, so caches keep them.
 *
 * One exit per request: every refusal goes through call_fail(), which fills the
 * reply and counts it (feed rejections by code in /metrics).
 *
 * Live updates.  The core tells us of every version (on_publish): the
 * leaderboard and the provinces list are rendered then, once, and kept for
 * /v1/versions/{n}-{digest}/... (the last keep_versions, immutable: the
 * digest names the epoch, see docs/ARCHITECTURE.md); the version's
 * events are made once and handed to the server's streams; long-polls
 * (?wait=S with If-None-Match) parked on a view that changed are answered
 * just after the POSTs of the round.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "tallyd-config.h"
#include "tallyd.h"
#include "call.h"
#include "get.h"
#include "ingest.h"
#include "metrics_http.h"
#include "routes.h"
#include "views.h"
#include "live.h"

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
	if ((cf->cors_origin != NULL && (api->cors_origin =
	    strdup(cf->cors_origin)) == NULL) ||
	    (api->views = views_create(core, cf, api->cors_origin)) == NULL) {
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
	if ((auth = auth_create(cf, swap ? e : cur, false, diag)) == NULL) {
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
		tally_election_destroy(e);
		log_warnx("results are counted: the election definition in "
		    "force is kept until the next restart (which rebuilds the "
		    "tally from the journal); other settings are reloaded");
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

/* Hand a request's feeds (taken) to the core; the answer comes later. */
/*
 * ?dry_run=1: what the feeds (taken) would change, answered now from the
 * applied state; nothing is journaled or applied.
 */

/*
 * The route table: one line a route.  methods: ROUTE_GET (GET, HEAD and a
 * CORS preflight) or ROUTE_POST; token: a feed (the ingest listener, a
 * bearer token, counted by refusal code); cache: what the answers say to
 * caches (and whether ?wait= long-polls are taken).  Indexed by route_id,
 * which is also the order of /metrics.
 */
const struct route api_routes[R_COUNT] = {
	{ R_HEALTH, ROUTE_GET, "/healthz", get_health, false, CACHE_NONE },
	{ R_METRICS, ROUTE_GET, "/metrics", metrics_http_serve, false,
	    CACHE_NONE },
	{ R_ELECTION, ROUTE_GET, "/v1/election", get_election, false,
	    CACHE_VIEW },
	{ R_LEADERBOARD, ROUTE_GET, "/v1/leaderboard", get_leaderboard, false,
	    CACHE_VIEW_WAIT },
	{ R_LEADERBOARD_CSV, ROUTE_GET, "/v1/leaderboard.csv",
	    get_leaderboard_csv, false, CACHE_VIEW },
	{ R_PROVINCES, ROUTE_GET, "/v1/provinces", get_provinces, false,
	    CACHE_VIEW_WAIT },
	{ R_PROVINCES_CSV, ROUTE_GET, "/v1/provinces.csv", get_provinces_csv,
	    false, CACHE_VIEW },
	{ R_PROVINCE, ROUTE_GET, "/v1/provinces/{id}", get_province, false,
	    CACHE_VIEW_WAIT },
	{ R_HISTORY, ROUTE_GET, "/v1/provinces/{id}/history", get_history,
	    false, CACHE_VIEW },
	{ R_PROVINCE_RESULTS, ROUTE_POST, "/v1/provinces/{id}/results",
	    ingest_post_province, true, CACHE_NONE },
	{ R_RESULTS, ROUTE_POST, "/v1/results", ingest_post_batch, true,
	    CACHE_NONE },
	{ R_COALITION, ROUTE_GET, "/v1/coalitions/{id}", get_coalition, false,
	    CACHE_VIEW },
	{ R_LOT, ROUTE_POST, "/v1/provinces/{id}/lot", ingest_post_lot, true,
	    CACHE_NONE },
	{ R_EVENTS, ROUTE_GET, "/v1/events", live_serve_events, false,
	    CACHE_STREAM },
	{ R_VERSION_LEADERBOARD, ROUTE_GET, "/v1/versions/{n}/leaderboard",
	    get_version, false, CACHE_IMMUTABLE },
	{ R_VERSION_PROVINCES, ROUTE_GET, "/v1/versions/{n}/provinces",
	    get_version, false, CACHE_IMMUTABLE },
	{ R_PAGE, ROUTE_GET, "/", get_page, false, CACHE_VIEW },
	{ R_LEADERBOARD_SVG, ROUTE_GET, "/v1/leaderboard.svg",
	    get_leaderboard_svg, false, CACHE_VIEW },
	{ R_VERSION_LEADERBOARD_SVG, ROUTE_GET,
	    "/v1/versions/{n}/leaderboard.svg", get_version, false,
	    CACHE_IMMUTABLE },
	{ R_NONE, 0, "other", NULL, false, CACHE_NONE },
};

/*
 * Does path match pattern?  A pattern is literal but for at most one
 * "{id}" (a province or coalition id, tally_id_is_valid) or "{n}" (any
 * non-empty segment): one path segment, copied to id.
 */
static bool
pattern_match(const char *pattern, const char *path, char *id, size_t idlen)
{
	const char *open = strchr(pattern, '{'), *close, *end;
	size_t pre, n;

	if (open == NULL)
		return strcmp(pattern, path) == 0;
	pre = (size_t)(open - pattern);
	if (strncmp(pattern, path, pre) != 0)
		return false;
	close = strchr(open, '}');
	path += pre;
	end = strchrnul(path, '/');
	n = (size_t)(end - path);
	if (n == 0 || n >= idlen || strcmp(close + 1, end) != 0)
		return false;
	memcpy(id, path, n);
	id[n] = '\0';
	return strncmp(open, "{id}", 4) != 0 || tally_id_is_valid(id);
}

const struct route *
routes_match(const char *path, char *id, size_t idlen)
{
	size_t i;

	*id = '\0';
	for (i = 0; i < R_NONE; i++)
		if (pattern_match(api_routes[i].pattern, path, id, idlen))
			return &api_routes[i];
	return &api_routes[R_NONE];
}

/*
 * Route one request: what every route shares (its existence, listener,
 * method and, for a feed, its query) is decided here from the table, in
 * that order; the rest is the route's handler.
 */
static void
dispatch(struct call *cl, const char *id)
{
	struct api *api = cl->api;
	const struct http_request *rq = cl->rq;
	const struct route *rt = cl->rt;
	bool post = (rt->methods & ROUTE_POST) != 0;
	bool get = strcmp(rq->method, "GET") == 0 ||
	    strcmp(rq->method, "HEAD") == 0;
	const char *allow = post ? (api->split && !rq->ingest ? "" : "POST") :
	    "GET, HEAD";

	if (rt->serve == NULL) {
		call_fail(cl, 404, "not_found", NULL, "no such resource: %.200s "
		    "(see /v1/leaderboard, /v1/provinces, /v1/election)",
		    rq->path);
		return;
	}
	if (rt->token && api->split && !rq->ingest) {
		call_fail(cl, 405, "method_not_allowed", NULL, "feeds are "
		    "accepted on the ingest listener only (%s), not on the "
		    "public one", api->ingest_addr);
		http_body_header(cl->reply->body, "Allow", allow);
		return;
	}
	if (!post && strcmp(rq->method, "OPTIONS") == 0) {
		/* A browser's CORS preflight for a public GET. */
		if (cors_preflight(api->cors_origin, cl->reply) == -1)
			call_fail(cl, 503, "out_of_memory", NULL,
			    "out of memory");
		return;
	}
	if ((post && strcmp(rq->method, "POST") != 0) || (!post && !get)) {
		call_fail(cl, 405, "method_not_allowed", NULL, "%.16s is not "
		    "allowed on %s; allowed: %s", rq->method, rt->pattern,
		    allow);
		http_body_header(cl->reply->body, "Allow", allow);
		return;
	}
	if (rt->token && !ingest_query(cl))
		return;
	rt->serve(cl, id);
}

void
api_handle(struct api *api, const struct http_request *rq,
    struct http_reply *reply)
{
	char id[TALLY_ID_MAX + 1];
	struct call cl = { api, rq, reply, NULL, NULL, false };

	cl.rt = routes_match(rq->path, id, sizeof(id));
	dispatch(&cl, id);
	/* A pending answer is counted when it is given. */
	if (!reply->pending)
		call_count(api, cl.rt->id, reply->status);
}

bool
api_admit(struct api *api, const struct http_request *rq,
    struct http_reply *reply)
{
	char id[TALLY_ID_MAX + 1];
	struct call cl = { api, rq, reply, NULL, NULL, false };
	const struct route *rt;
	bool post;

	cl.rt = rt = routes_match(rq->path, id, sizeof(id));
	post = (rt->methods & ROUTE_POST) != 0;
	/*
	 * Whatever is refused here is refused for the same reason dispatch()
	 * would give once the body were read, but before reading it.
	 */
	if (rt->serve == NULL || (rt->token && api->split && !rq->ingest) ||
	    (post && strcmp(rq->method, "POST") != 0) ||
	    (!post && strcmp(rq->method, "GET") != 0 &&
	    strcmp(rq->method, "HEAD") != 0 &&
	    strcmp(rq->method, "OPTIONS") != 0)) {
		dispatch(&cl, id);
		goto refused;
	}
	if (!post) {
		call_fail(&cl, 413, "body_not_allowed", NULL, "%.16s %s takes "
		    "no body", rq->method, rt->pattern);
		goto refused;
	}
	if (!ingest_admit(&cl))
		goto refused;
	return true;
refused:
	call_count(api, rt->id, reply->status);
	return false;
}

void
api_refused(struct api *api, const char *path, unsigned status,
    const char *code)
{
	char id[TALLY_ID_MAX + 1];
	const struct route *rt = routes_match(path, id, sizeof(id));

	call_count(api, rt->id, status);
	if (rt->token)
		call_count_rejection(api, code);
}
