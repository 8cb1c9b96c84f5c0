/*
 * routes.c - the route table and the dispatch through it.  What every
 * route shares (is there such a route, is it the right listener, is the
 * method one it takes, is a feed's query well-formed) is decided here from
 * the table, in that order, before the route's handler runs; api_admit
 * decides the same from the headers alone, before any body byte is read.
 * Every answer given now is counted here; a pending one when it is given.
 */
#include <stdio.h>
#include <string.h>

#include <tally/reference.h>

#include "api.h"
#include "server.h"
#include "call.h"
#include "calls_http.h"
#include "contests.h"
#include "cors.h"
#include "get.h"
#include "ingest.h"
#include "live.h"
#include "log_http.h"
#include "metrics_http.h"
#include "reply.h"
#include "routes.h"

/*
 * The route table: one line a route.  methods: ROUTE_GET (GET, HEAD and a
 * CORS preflight) or ROUTE_POST; token: a feed (the ingest listener, a
 * bearer token, counted by refusal code); cache: what the answers say to
 * caches (and whether ?wait= long-polls are taken).  Indexed by route_id,
 * which is also the order of /metrics.
 */
const struct route api_routes[R_COUNT] = {
	{ R_HEALTH, ROUTE_GET, "/healthz", get_health, false, CACHE_NONE,
	    "liveness, and whether feeds are taken (journal, cluster)",
	    "health" },
	{ R_METRICS, ROUTE_GET, "/metrics", metrics_http_serve, false,
	    CACHE_NONE, "Prometheus text: requests, journal, views", NULL },
	{ R_ELECTION, ROUTE_GET, "/v1/election", get_election, false,
	    CACHE_VIEW, "the election definition: rules, coalitions, "
	    "provinces", "election" },
	{ R_LEADERBOARD, ROUTE_GET, "/v1/leaderboard", get_leaderboard, false,
	    CACHE_VIEW_WAIT, "national ranking: votes, seats, bounds, "
	    "majority (?wait=S long-polls)", "leaderboard" },
	{ R_LEADERBOARD_CSV, ROUTE_GET, "/v1/leaderboard.csv",
	    get_leaderboard_csv, false, CACHE_VIEW,
	    "the national ranking as CSV", NULL },
	{ R_PROVINCES, ROUTE_GET, "/v1/provinces", get_provinces, false,
	    CACHE_VIEW_WAIT, "every province's progress and leader "
	    "(?settled=true|false)", "provinces" },
	{ R_PROVINCES_CSV, ROUTE_GET, "/v1/provinces.csv", get_provinces_csv,
	    false, CACHE_VIEW, "the provinces list as CSV", NULL },
	{ R_PROVINCE, ROUTE_GET, "/v1/provinces/{id}", get_province, false,
	    CACHE_VIEW_WAIT, "one province: lists, shares, seats, ties "
	    "(?explain=1: the quotients)", "province" },
	{ R_HISTORY, ROUTE_GET, "/v1/provinces/{id}/history", get_history,
	    false, CACHE_VIEW, "every accepted revision of a province, with "
	    "its version and what it moved", "history" },
	{ R_PROVINCE_RESULTS, ROUTE_POST, "/v1/provinces/{id}/results",
	    ingest_post_province, true, CACHE_NONE, "post a province's "
	    "cumulative snapshot (?dry_run=1: what it would do)", NULL },
	{ R_RESULTS, ROUTE_POST, "/v1/results", contests_post_batch, true,
	    CACHE_NONE, "post several provinces' snapshots as one version",
	    NULL },
	{ R_COALITION, ROUTE_GET, "/v1/coalitions/{id}", get_coalition, false,
	    CACHE_VIEW, "one coalition: national totals and per province",
	    "coalition" },
	{ R_LOT, ROUTE_POST, "/v1/provinces/{id}/lot", ingest_post_lot, true,
	    CACHE_NONE, "post the drawn order of a tie (?dry_run=1)", NULL },
	{ R_EVENTS, ROUTE_GET, "/v1/events", live_contests_serve_events, false,
	    CACHE_STREAM, "Server-Sent Events: change, leaderboard, snapshot "
	    "(?contests=a,b: several contests, each event naming its own)",
	    NULL },
	{ R_VERSION_LEADERBOARD, ROUTE_GET, "/v1/versions/{n}/leaderboard",
	    get_version, false, CACHE_IMMUTABLE, "the leaderboard as it was "
	    "at a kept version (n-digest; a bare n redirects)", "leaderboard" },
	{ R_VERSION_PROVINCES, ROUTE_GET, "/v1/versions/{n}/provinces",
	    get_version, false, CACHE_IMMUTABLE, "the provinces list as it "
	    "was served at a kept version", "provinces" },
	{ R_PAGE, ROUTE_GET, "/", get_page, false, CACHE_VIEW,
	    "the election-night page (HTML)", NULL },
	{ R_LEADERBOARD_SVG, ROUTE_GET, "/v1/leaderboard.svg",
	    get_leaderboard_svg, false, CACHE_VIEW,
	    "the hemicycle as an SVG image", NULL },
	{ R_VERSION_LEADERBOARD_SVG, ROUTE_GET,
	    "/v1/versions/{n}/leaderboard.svg", get_version, false,
	    CACHE_IMMUTABLE, "the hemicycle at a kept version", NULL },
	{ R_RESULTS_CSV, ROUTE_GET, "/v1/results.csv", get_results_csv, false,
	    CACHE_VIEW, "one row per province and list (?since=V: provinces "
	    "changed after V), CSV", NULL },
	{ R_RESULTS_JSONL, ROUTE_GET, "/v1/results.jsonl", get_results_jsonl,
	    false, CACHE_VIEW, "the same rows as JSON lines", NULL },
	{ R_HISTORY_CSV, ROUTE_GET, "/v1/provinces/{id}/history.csv",
	    get_history_csv, false, CACHE_VIEW, "a province's history, a row "
	    "per revision and list, CSV", NULL },
	{ R_MAP_SVG, ROUTE_GET, "/v1/map.svg", get_map_svg, false, CACHE_VIEW,
	    "the tile map, provinces by first place (?by=seats)", NULL },
	{ R_INDEX, ROUTE_GET, "/v1/", routes_serve_index, false, CACHE_NONE,
	    "this index of the routes", "index" },
	{ R_INDEX_BARE, ROUTE_GET, "/v1", routes_serve_index, false, CACHE_NONE,
	    "the same index", "index" },
	{ R_CHANGES, ROUTE_GET, "/v1/changes", get_changes, false, CACHE_VIEW,
	    "every province revision after ?since=V, in version order",
	    "changes" },
	{ R_SCHEMA, ROUTE_GET, "/v1/schemas/{n}", get_schema, false,
	    CACHE_VIEW, "the JSON Schema of a view (NAME.json, as linked "
	    "here)", NULL },
	{ R_CALLS, ROUTE_GET, "/v1/calls", calls_http_get, false, CACHE_NONE,
	    "every call, certain and declared, with its version", NULL },
	{ R_CALLS_DECLARE, ROUTE_POST, "/v1/calls", calls_http_declare, true,
	    CACHE_NONE, "declare a call (token)", NULL },
	{ R_CALLS_RETRACT, ROUTE_POST, "/v1/calls/{n}/retract",
	    calls_http_retract, true, CACHE_NONE, "retract a declared call "
	    "(token)", NULL },
	{ R_LOG_KEY, ROUTE_GET, "/log/key", log_http_key, false, CACHE_NONE,
	    "the transparency log's verifier key (docs/VERIFY.md)", NULL },
	{ R_LOG_CHECKPOINT, ROUTE_GET, "/log/checkpoint", log_http_checkpoint,
	    false, CACHE_NONE, "the log's signed checkpoint", NULL },
	{ R_LOG_TILE, ROUTE_GET, "/log/tile/{*}", log_http_tile, false,
	    CACHE_NONE, "the log's tiles (C2SP tlog-tiles)", NULL },
	{ R_LOG_PROOF, ROUTE_GET, "/log/proof/{n}", log_http_proof, false,
	    CACHE_NONE, "an entry's inclusion proof (C2SP tlog-proof)", NULL },
	{ R_LOG_WITNESSED, ROUTE_GET, "/log/witnessed", log_http_witnessed,
	    false, CACHE_NONE, "the latest checkpoint witnesses cosigned",
	    NULL },
	{ R_LOG_COSIGNATURE, ROUTE_POST, "/log/cosignature",
	    log_http_cosignature, true, CACHE_NONE, "a witness's cosigned "
	    "checkpoint (token; C2SP tlog-cosignature)", NULL },
	/* Several contests (contests.c, docs/API.md "Contests"): the list,
	 * then each route above under /v1/contests/{contest}/. */
	{ R_CONTESTS, ROUTE_GET, "/v1/contests", live_contests_list, false,
	    CACHE_NONE, "every contest (?contests=a,b: those): name, seats, "
	    "version, progress, leader, majority; ETag, ?wait=S", "contests" },
	{ R_CONTEST_ELECTION, ROUTE_GET, "/v1/contests/{contest}/election",
	    contests_serve, false, CACHE_VIEW, "a contest's definition "
	    "(as /v1/election)", "election" },
	{ R_CONTEST_LEADERBOARD, ROUTE_GET,
	    "/v1/contests/{contest}/leaderboard", contests_serve, false,
	    CACHE_VIEW_WAIT, "a contest's national ranking (as "
	    "/v1/leaderboard; ?wait=S)", "leaderboard" },
	{ R_CONTEST_LEADERBOARD_CSV, ROUTE_GET,
	    "/v1/contests/{contest}/leaderboard.csv", contests_serve, false,
	    CACHE_VIEW, "a contest's ranking as CSV", NULL },
	{ R_CONTEST_LEADERBOARD_SVG, ROUTE_GET,
	    "/v1/contests/{contest}/leaderboard.svg", contests_serve, false,
	    CACHE_VIEW, "a contest's hemicycle as an SVG image", NULL },
	{ R_CONTEST_PROVINCES, ROUTE_GET, "/v1/contests/{contest}/provinces",
	    contests_serve, false, CACHE_VIEW_WAIT, "a contest's provinces "
	    "(as /v1/provinces)", "provinces" },
	{ R_CONTEST_PROVINCES_CSV, ROUTE_GET,
	    "/v1/contests/{contest}/provinces.csv", contests_serve, false,
	    CACHE_VIEW, "a contest's provinces list as CSV", NULL },
	{ R_CONTEST_PROVINCE, ROUTE_GET,
	    "/v1/contests/{contest}/provinces/{id}", contests_serve, false,
	    CACHE_VIEW_WAIT, "one province of a contest (as "
	    "/v1/provinces/{id})", "province" },
	{ R_CONTEST_HISTORY, ROUTE_GET,
	    "/v1/contests/{contest}/provinces/{id}/history", contests_serve,
	    false, CACHE_VIEW, "a contest's province's revisions", "history" },
	{ R_CONTEST_COALITION, ROUTE_GET,
	    "/v1/contests/{contest}/coalitions/{id}", contests_serve, false,
	    CACHE_VIEW, "one coalition of a contest", "coalition" },
	{ R_CONTEST_PROVINCE_RESULTS, ROUTE_POST,
	    "/v1/contests/{contest}/provinces/{id}/results", contests_serve,
	    true, CACHE_NONE, "post a snapshot of a contest's province "
	    "(?dry_run=1)", NULL },
	{ R_CONTEST_RESULTS, ROUTE_POST, "/v1/contests/{contest}/results",
	    contests_serve, true, CACHE_NONE, "post several provinces of a "
	    "contest as one version (as /v1/results)", NULL },
	{ R_CONTEST_LOT, ROUTE_POST,
	    "/v1/contests/{contest}/provinces/{id}/lot", contests_serve, true,
	    CACHE_NONE, "post the drawn order of a tie in a contest "
	    "(?dry_run=1)", NULL },
	{ R_CONTEST_VERSION_LEADERBOARD, ROUTE_GET,
	    "/v1/contests/{contest}/versions/{n}/leaderboard", contests_serve,
	    false, CACHE_IMMUTABLE, "a contest's leaderboard at a kept "
	    "version", "leaderboard" },
	{ R_CONTEST_VERSION_PROVINCES, ROUTE_GET,
	    "/v1/contests/{contest}/versions/{n}/provinces", contests_serve,
	    false, CACHE_IMMUTABLE, "a contest's provinces list at a kept "
	    "version", "provinces" },
	{ R_CONTEST_VERSION_LEADERBOARD_SVG, ROUTE_GET,
	    "/v1/contests/{contest}/versions/{n}/leaderboard.svg",
	    contests_serve, false, CACHE_IMMUTABLE, "a contest's hemicycle at "
	    "a kept version", NULL },
	{ R_CONTEST_CHANGES, ROUTE_GET, "/v1/contests/{contest}/changes",
	    contests_serve, false, CACHE_VIEW, "a contest's province "
	    "revisions after ?since=V (as /v1/changes)", "changes" },
	{ R_CONTEST_RESULTS_CSV, ROUTE_GET,
	    "/v1/contests/{contest}/results.csv", contests_serve, false,
	    CACHE_VIEW, "a contest's rows per province and list, CSV", NULL },
	{ R_CONTEST_RESULTS_JSONL, ROUTE_GET,
	    "/v1/contests/{contest}/results.jsonl", contests_serve, false,
	    CACHE_VIEW, "the same rows as JSON lines", NULL },
	{ R_CONTEST_HISTORY_CSV, ROUTE_GET,
	    "/v1/contests/{contest}/provinces/{id}/history.csv", contests_serve,
	    false, CACHE_VIEW, "a contest's province's history, CSV", NULL },
	{ R_CONTEST_MAP_SVG, ROUTE_GET, "/v1/contests/{contest}/map.svg",
	    contests_serve, false, CACHE_VIEW, "a contest's tile map "
	    "(?by=seats)", NULL },
	{ R_CONTEST_CALLS, ROUTE_GET, "/v1/contests/{contest}/calls",
	    contests_serve, false, CACHE_NONE, "a contest's calls, certain "
	    "and declared", NULL },
	{ R_CONTEST_CALLS_DECLARE, ROUTE_POST, "/v1/contests/{contest}/calls",
	    contests_serve, true, CACHE_NONE, "declare a call in a contest "
	    "(token)", NULL },
	{ R_CONTEST_CALLS_RETRACT, ROUTE_POST,
	    "/v1/contests/{contest}/calls/{n}/retract", contests_serve, true,
	    CACHE_NONE, "retract a declared call of a contest (token)", NULL },
	{ R_CONTEST_EVENTS, ROUTE_GET, "/v1/contests/{contest}/events",
	    contests_serve, false, CACHE_STREAM, "a contest's Server-Sent "
	    "Events (as /v1/events)", NULL },
	{ R_CONTEST_LOG_KEY, ROUTE_GET, "/v1/contests/{contest}/log/key",
	    contests_serve, false, CACHE_NONE, "a contest's transparency "
	    "log: its verifier key", NULL },
	{ R_CONTEST_LOG_CHECKPOINT, ROUTE_GET,
	    "/v1/contests/{contest}/log/checkpoint", contests_serve, false,
	    CACHE_NONE, "a contest's log: its signed checkpoint", NULL },
	{ R_CONTEST_LOG_TILE, ROUTE_GET, "/v1/contests/{contest}/log/tile/{*}",
	    contests_serve, false, CACHE_NONE, "a contest's log: its tiles",
	    NULL },
	{ R_CONTEST_LOG_PROOF, ROUTE_GET,
	    "/v1/contests/{contest}/log/proof/{n}", contests_serve, false,
	    CACHE_NONE, "a contest's log: an entry's inclusion proof", NULL },
	{ R_NONE, 0, "other", NULL, false, CACHE_NONE, NULL, NULL },
};

/*
 * GET /v1/ and /v1: the route table itself, so the index can never list a
 * route that is not served nor miss one that is.
 */
void
routes_serve_index(struct call *cl, const char *id)
{
	struct tally_route_doc docs[R_COUNT];
	size_t i, n = 0;

	for (i = 0; i < R_NONE; i++) {
		const struct route *rt = &api_routes[i];
		docs[n].methods = rt->methods == ROUTE_POST ? "POST" :
		    "GET, HEAD";
		docs[n].path = rt->pattern;
		docs[n].token = rt->token;
		docs[n].description = rt->description;
		docs[n].schema = rt->schema;
		n++;
	}
	reply_json(cl->reply, 200, tally_render_index(docs, n));
}

/*
 * Does path match pattern?  A pattern is literal but for its placeholders,
 * each one path segment: "{id}" (a province or coalition id,
 * tally_id_is_valid), "{contest}" (a contest id, the same syntax), "{n}"
 * (any non-empty segment), or a last "{*}" (the rest of the path, slashes
 * and all: a log tile's).  The segments go to id, joined by '/' when there
 * are two (a contest's route: "<contest>/<id>").
 */
static bool
pattern_match(const char *pattern, const char *path, char *id, size_t idlen)
{
	const char *open, *close, *end;
	size_t pre, n, used = 0;

	for (;;) {
		if ((open = strchr(pattern, '{')) == NULL)
			return strcmp(pattern, path) == 0;
		pre = (size_t)(open - pattern);
		if (strncmp(pattern, path, pre) != 0)
			return false;
		path += pre;
		if (strcmp(open, "{*}") == 0) {
			n = strlen(path);
			if (n == 0 || used + 1 + n >= idlen)
				return false;
			if (used > 0)
				id[used++] = '/';
			memcpy(id + used, path, n + 1);
			return true;
		}
		close = strchr(open, '}');
		end = strchrnul(path, '/');
		n = (size_t)(end - path);
		if (n == 0 || used + 1 + n >= idlen)
			return false;
		if (used > 0)
			id[used++] = '/';
		memcpy(id + used, path, n);
		id[used + n] = '\0';
		if (strncmp(open, "{n}", 3) != 0 &&
		    !tally_id_is_valid(id + used))
			return false;
		used += n;
		pattern = close + 1;
		path = end;
	}
}

int
routes_check(struct tally_diag *diag)
{
	size_t i;

	for (i = 0; i < R_COUNT; i++) {
		const struct route *rt = &api_routes[i];
		/* A feed is a POST and a POST is a feed: dispatch relies on it. */
		if (rt->id != (enum route_id)i || (rt->serve == NULL) !=
		    (i == R_NONE) || (rt->description == NULL) !=
		    (i == R_NONE) || rt->token != (rt->methods == ROUTE_POST)) {
			tally_diag_add(diag, "route table: entry %zu (%s) is "
			    "out of place or inconsistent", i, rt->pattern);
			return -1;
		}
	}
	return 0;
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
 * Two routes may share a path with different methods (GET and POST
 * /v1/calls): the one taking `method`, else rt as it is (dispatch says 405).
 */
static const struct route *
route_method(const struct route *rt, const char *method)
{
	unsigned want = strcmp(method, "POST") == 0 ? ROUTE_POST : ROUTE_GET;
	size_t i;

	if ((rt->methods & want) || rt->id == R_NONE)
		return rt;
	for (i = 0; i < R_NONE; i++)
		if ((api_routes[i].methods & want) &&
		    strcmp(api_routes[i].pattern, rt->pattern) == 0)
			return &api_routes[i];
	return rt;
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
		call_fail(cl, 404, "not_found", NULL,
		    "no such resource: %.200s "
		    "(GET /v1/ lists every route)",
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
	char id[ROUTE_ID_MAX];
	struct call cl = { api, rq, reply, NULL, NULL, false };

	cl.rt = route_method(routes_match(rq->path, id, sizeof(id)),
	    rq->method);
	dispatch(&cl, id);
	/* A pending answer is counted when it is given. */
	if (!reply->pending)
		call_count(api, cl.rt->id, reply->status);
}

bool
api_admit(struct api *api, const struct http_request *rq,
    struct http_reply *reply)
{
	char id[ROUTE_ID_MAX];
	struct call cl = { api, rq, reply, NULL, NULL, false };
	const struct route *rt;
	bool post;

	cl.rt = rt = route_method(routes_match(rq->path, id, sizeof(id)),
	    rq->method);
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
	char id[ROUTE_ID_MAX];
	const struct route *rt = routes_match(path, id, sizeof(id));

	call_count(api, rt->id, status);
	if (rt->token)
		call_count_rejection(api, code);
}
