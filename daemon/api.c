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
#include "ingest.h"
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

static void
serve_view(struct call *cl, enum view_id id, size_t index)
{
	struct api *api = cl->api;
	const struct http_request *rq = cl->rq;
	struct http_reply *reply = cl->reply;
	struct core_stamp st = views_stamp(api->views, id, index);
	struct view *v;

	if ((v = views_current(api->views, id, index)) == NULL) {
		call_fail(cl, 500, "internal", NULL, "could not render the "
		    "view (out of memory?); try again");
		return;
	}
	reply->owned = false;
	if (views_is_fresh(v, &st, rq->if_none_match, rq->if_modified_since)) {
		/* ?wait=S: hold the answer until the view changes. */
		if (rq->if_none_match != NULL && live_park(cl, id, index, v))
			return;
		if (reply->status != 0)
			return;		/* a bad wait= */
		reply->status = 304;
		reply->body = rq->gzip_ok ? v->not_modified_gz : v->not_modified;
	} else {
		reply->status = 200;
		reply->body = v->plain;
		/* Without memory for gzip, the plain bytes still go out. */
		if (rq->gzip_ok && views_gzip(api->views, v, st.at) != NULL)
			reply->body = v->gzip;
	}
}

/* Cluster mode: which node this is and how far behind the stream. */
static void
health_cluster(struct core *core, json_t *o)
{
	struct core_log_status st;
	json_t *c;

	if (!core_log_status(core, &st))
		return;
	c = json_object();
	json_object_set_new(c, "node", json_string(st.node));
	json_object_set_new(c, "stream", json_string(st.stream));
	json_object_set_new(c, "leader", json_string(st.leader));
	json_object_set_new(c, "stream_last", json_integer((json_int_t)
	    st.log_last));
	json_object_set_new(c, "lag", json_integer((json_int_t)st.lag));
	json_object_set_new(c, "connected", json_boolean(st.connected));
	json_object_set_new(c, "stale", json_boolean(st.stale));
	json_object_set_new(c, "unacknowledged", json_integer((json_int_t)
	    st.unacked));
	json_object_set_new(o, "cluster", c);
	if (st.stale)
		json_object_set_new(o, "status", json_string("stale"));
}

static void
get_health(struct call *cl, const char *id)
{
	json_t *o = json_object(), *why = json_array();
	const struct tally_state *s = core_state(cl->api->core);
	const struct core_stats *cs = core_stats(cl->api->core);

	/*
	 * Reads go on whatever happens to the journal, so the process is
	 * healthy for readers (200); but a monitor must see that feeds are
	 * refused, and why.
	 */
	if (cs->log_err != 0) {
		char msg[256], at[32];
		time_rfc3339(cs->log_err_at, at, sizeof(at));
		snprintf(msg, sizeof(msg), "journal: the last write failed (%s) "
		    "at %s; feeds are answered 503 until a write succeeds",
		    strerror(cs->log_err), at);
		json_array_append_new(why, json_string(msg));
	}
	json_object_set_new(o, "status", json_string(
	    json_array_size(why) > 0 ? "degraded" : "ok"));
	json_object_set_new(o, "ingest", json_boolean(cs->log_err == 0));
	if (json_array_size(why) > 0)
		json_object_set_new(o, "reasons", why);
	else
		json_decref(why);
	json_object_set_new(o, "version", json_integer((json_int_t)s->version));
	json_object_set_new(o, "election",
	    json_string(core_election(cl->api->core)->id));
	health_cluster(cl->api->core, o);
	reply_json(cl->reply, 200, o);
}

/* Hand a request's feeds (taken) to the core; the answer comes later. */
/*
 * ?dry_run=1: what the feeds (taken) would change, answered now from the
 * applied state; nothing is journaled or applied.
 */

/*
 * GET /v1/versions/{n}-{digest}/...: the digest is the version's stamp's
 * (its ETag's), so the URL names one body for ever: another definition,
 * a reset data dir or another history give the same n another digest.  A
 * bare {n} names nothing for good: it is redirected (302, not stored) to
 * the kept version n of the epoch in force.
 */
static void
get_version(struct call *cl, const char *num)
{
	struct api *api = cl->api;
	uint64_t cur = core_state(api->core)->version, oldest, n, digest = 0;
	struct version_slot *slot;
	size_t kept;
	const char *tail = cl->rt->id == R_VERSION_LEADERBOARD ? "leaderboard" :
	    cl->rt->id == R_VERSION_PROVINCES ? "provinces" : "leaderboard.svg";
	char *end, loc[128];
	bool bare;

	/* The current version's view, as a GET of it would render it. */
	(void)views_current(api->views, cl->rt->id == R_VERSION_LEADERBOARD ?
	    VIEW_LEADERBOARD : VIEW_PROVINCES, 0);
	n = strtoull(num, &end, 10);
	bare = *end == '\0';
	if (!bare && end[0] == '-' && strlen(end + 1) == 16 &&
	    strspn(end + 1, "0123456789abcdef") == 16)
		digest = strtoull(end + 1, &end, 16);
	slot = views_version(api->views, n, cur, &oldest, &kept);
	if (*num < '0' || *num > '9' || *end != '\0' || slot == NULL ||
	    (!bare && slot->digest != digest) || (cl->rt->id ==
	    R_VERSION_PROVINCES ? slot->provinces : slot->leaderboard) ==
	    NULL) {
		call_fail(cl, 404, "unknown_version", NULL, "version %.40s is not "
		    "kept: versions %llu to %llu are (the last %zu, those "
		    "that were served; the URL is the Content-Location of "
		    "the view, /v1/versions/<n>-<digest>/...)", num,
		    (unsigned long long)oldest, (unsigned long long)cur,
		    kept);
		return;
	}
	if (bare) {
		snprintf(loc, sizeof(loc), "/v1/versions/%llu-%016llx/%s",
		    (unsigned long long)n, (unsigned long long)slot->digest,
		    tail);
		reply_json(cl->reply, 302, json_pack("{ss}", "location", loc));
		http_body_header(cl->reply->body, "Location", loc);
		return;
	}
	if (cl->rt->id == R_VERSION_LEADERBOARD_SVG && slot->svg == NULL &&
	    views_version_svg(api->views, slot) == -1) {
		call_fail(cl, 500, "internal", NULL, "could not draw version %llu "
		    "(out of memory?); try again", (unsigned long long)n);
		return;
	}
	cl->reply->status = 200;
	cl->reply->owned = false;
	cl->reply->body = cl->rt->id == R_VERSION_LEADERBOARD ?
	    slot->leaderboard : cl->rt->id == R_VERSION_PROVINCES ?
	    slot->provinces : slot->svg;
}

/* Prometheus text format, version 0.0.4. */
static void
metrics_http_serve(struct call *cl, const char *id)
{
	struct api *api = cl->api;
	const struct tally_state *s = core_state(api->core);
	const struct core_stats *cs = core_stats(api->core);
	char *buf = NULL;
	size_t len = 0, i, k;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL) {
		call_fail(cl, 500, "internal", NULL, "out of memory");
		return;
	}
	fprintf(f, "# HELP tallyd_requests_total HTTP requests by route and status.\n"
	    "# TYPE tallyd_requests_total counter\n");
	for (i = 0; i < R_COUNT; i++)
		for (k = 0; k <= CALL_N_STATUSES; k++) {
			char st[8];
			if (api->counters.requests[i][k] == 0)
				continue;
			if (k < CALL_N_STATUSES)
				snprintf(st, sizeof(st), "%u", call_statuses[k]);
			else
				snprintf(st, sizeof(st), "other");
			fprintf(f, "tallyd_requests_total{route=\"%s\",status=\"%s\"} "
			    "%llu\n", api_routes[i].pattern, st,
			    (unsigned long long)api->counters.requests[i][k]);
		}
	fprintf(f, "# HELP tallyd_feeds_applied_total Province results applied.\n"
	    "# TYPE tallyd_feeds_applied_total counter\n"
	    "tallyd_feeds_applied_total %llu\n",
	    (unsigned long long)cs->feeds_applied);
	fprintf(f, "# HELP tallyd_feeds_duplicate_total Identical retries "
	    "answered without a change.\n"
	    "# TYPE tallyd_feeds_duplicate_total counter\n"
	    "tallyd_feeds_duplicate_total %llu\n",
	    (unsigned long long)cs->feeds_duplicate);
	fprintf(f, "# HELP tallyd_feeds_rejected_total Feeds refused, by error code.\n"
	    "# TYPE tallyd_feeds_rejected_total counter\n");
	for (i = 0; i < CALL_N_REASONS && api->counters.rejected[i].code[0]; i++)
		fprintf(f, "tallyd_feeds_rejected_total{reason=\"%s\"} %llu\n",
		    api->counters.rejected[i].code,
		    (unsigned long long)api->counters.rejected[i].n);
	fprintf(f, "# HELP tallyd_journal_write_failures_total Group commits "
	    "the journal could not write.\n"
	    "# TYPE tallyd_journal_write_failures_total counter\n"
	    "tallyd_journal_write_failures_total %llu\n",
	    (unsigned long long)cs->log_failures);
	fprintf(f, "# HELP tallyd_version The tally's version.\n"
	    "# TYPE tallyd_version gauge\ntallyd_version %llu\n",
	    (unsigned long long)s->version);
	fprintf(f, "# HELP tallyd_provinces_reporting Provinces with a result.\n"
	    "# TYPE tallyd_provinces_reporting gauge\n"
	    "tallyd_provinces_reporting %zu\n", s->provinces_reporting);
	fprintf(f, "# HELP tallyd_provinces_final Provinces whose result is final.\n"
	    "# TYPE tallyd_provinces_final gauge\n"
	    "tallyd_provinces_final %zu\n", s->provinces_final);
	fprintf(f, "# HELP tallyd_seats_pending Seats in unresolved ties.\n"
	    "# TYPE tallyd_seats_pending gauge\ntallyd_seats_pending %llu\n",
	    (unsigned long long)s->seats_pending);
	fprintf(f, "# HELP tallyd_revisions_in_memory Province revisions held in "
	    "memory (older ones are read from the snapshot).\n"
	    "# TYPE tallyd_revisions_in_memory gauge\n"
	    "tallyd_revisions_in_memory %zu\n",
	    tally_state_revisions_in_memory(s));
	fprintf(f, "# HELP tallyd_render_cache_hits_total GETs answered from "
	    "cached bytes.\n# TYPE tallyd_render_cache_hits_total counter\n"
	    "tallyd_render_cache_hits_total %llu\n",
	    (unsigned long long)views_counters(api->views)->cache_hits);
	fprintf(f, "# HELP tallyd_renders_total Views rendered.\n"
	    "# TYPE tallyd_renders_total counter\ntallyd_renders_total %llu\n",
	    (unsigned long long)views_counters(api->views)->renders);
	fprintf(f, "# HELP tallyd_gzips_total Views compressed (once per version, "
	    "when first asked for).\n# TYPE tallyd_gzips_total counter\n"
	    "tallyd_gzips_total %llu\n", (unsigned long long)views_counters(api->views)->gzips);
	fprintf(f, "# HELP tallyd_open_connections Connections open now.\n"
	    "# TYPE tallyd_open_connections gauge\n"
	    "tallyd_open_connections %u\n",
	    api->server ? server_connections(api->server) : 0);
	if (api->metrics_fn != NULL)
		api->metrics_fn(api->metrics_arg, f);
	fprintf(f, "# HELP tallyd_event_streams Open GET /v1/events streams.\n"
	    "# TYPE tallyd_event_streams gauge\ntallyd_event_streams %u\n",
	    api->server ? server_streams(api->server) : 0);
	fprintf(f, "# HELP tallyd_long_polls Long-polls waiting for a change.\n"
	    "# TYPE tallyd_long_polls gauge\ntallyd_long_polls %u\n",
	    live_waiters(api->live));
	fclose(f);
	if ((cl->reply->body = http_body_new(buf, len, true)) == NULL) {
		free(buf);
		call_fail(cl, 500, "internal", NULL, "out of memory");
		return;
	}
	cl->reply->status = 200;
	cl->reply->owned = true;
	http_body_header(cl->reply->body, "Content-Type",
	    "text/plain; version=0.0.4; charset=utf-8");
	http_body_header(cl->reply->body, "Cache-Control", "no-store");
}

/* GET of a view that has one body for the whole election. */
static void
get_election(struct call *cl, const char *id)
{
	serve_view(cl, VIEW_ELECTION, 0);
}

static void
get_leaderboard(struct call *cl, const char *id)
{
	serve_view(cl, VIEW_LEADERBOARD, 0);
}

static void
get_leaderboard_csv(struct call *cl, const char *id)
{
	serve_view(cl, VIEW_LEADERBOARD_CSV, 0);
}

static void
get_leaderboard_svg(struct call *cl, const char *id)
{
	serve_view(cl, VIEW_LEADERBOARD_SVG, 0);
}

static void
get_provinces(struct call *cl, const char *id)
{
	const char *st = http_arg(cl->rq, "settled");

	if (st == NULL)
		serve_view(cl, VIEW_PROVINCES, 0);
	else if (call_is_true(st))
		serve_view(cl, VIEW_PROVINCES_SETTLED, 0);
	else if (call_is_false(st))
		serve_view(cl, VIEW_PROVINCES_OPEN, 0);
	else
		call_fail(cl, 400, "bad_query", NULL, "settled must be true or "
		    "false (e.g. /v1/provinces?settled=false: the provinces "
		    "whose seats can still change)");
}

static void
get_provinces_csv(struct call *cl, const char *id)
{
	serve_view(cl, VIEW_PROVINCES_CSV, 0);
}

static void
get_page(struct call *cl, const char *id)
{
	serve_view(cl, VIEW_PAGE, 0);
}

static void
get_coalition(struct call *cl, const char *id)
{
	const struct tally_election *e = core_election(cl->api->core);
	const struct tally_coalition *co;

	if ((co = tally_election_coalition(e, id)) == NULL) {
		call_fail(cl, 404, "unknown_coalition", NULL, "no coalition "
		    "\"%s\" in election %s (see /v1/election)", id, e->id);
		return;
	}
	serve_view(cl, VIEW_COALITION, co->index);
}

/* The province named id, or NULL after a 404. */
static const struct tally_province *
province_of(struct call *cl, const char *id)
{
	const struct tally_election *e = core_election(cl->api->core);
	const struct tally_province *pv;

	if ((pv = tally_election_province(e, id)) == NULL)
		call_fail(cl, 404, "unknown_province", NULL, "no province "
		    "\"%s\" in election %s (see /v1/provinces)", id, e->id);
	return pv;
}

static void
get_province(struct call *cl, const char *id)
{
	const struct tally_province *pv;

	if ((pv = province_of(cl, id)) != NULL)
		serve_view(cl, call_is_true(http_arg(cl->rq, "explain")) ?
		    VIEW_EXPLAIN : VIEW_PROVINCE, pv->index);
}

static void
get_history(struct call *cl, const char *id)
{
	const struct tally_province *pv;

	if ((pv = province_of(cl, id)) != NULL)
		serve_view(cl, VIEW_HISTORY, pv->index);
}

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
