/*
 * get.c - the GET handlers: views (with conditional requests and
 * long-polls), kept versions, and /healthz.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/reference.h>

#include "contests.h"
#include "core.h"
#include "http_strict.h"
#include "server.h"
#include "util.h"
#include "call.h"
#include "get.h"
#include "tlog_push.h"
#include "schemas.h"
#include "live.h"
#include "reply.h"
#include "views.h"

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

/*
 * Several contests: each one's id, version and whether it takes feeds, in
 * *rows (in cluster mode, its own stream's state too); a further contest
 * whose journal writes fail, or whose stream is cut off, adds its reason.
 * true when a further contest's stream is stale.
 */
static bool
contests_health(const struct api *api, json_t *why, json_t **rows)
{
	const struct core_stats *cs;
	struct core_log_status st;
	struct core *c;
	json_t *row;
	size_t i, n;
	char msg[256];
	bool stale = false, clustered;

	*rows = NULL;
	if (api->contests == NULL || (n = contests_count(api->contests)) < 2 ||
	    (*rows = json_array()) == NULL)
		return false;
	for (i = 0; i < n; i++) {
		c = contests_core(api->contests, i);
		cs = core_stats(c);
		row = json_pack("{sssIsb}", "id", contests_id(api->contests, i),
		    "version", (json_int_t)core_state(c)->version, "ingest",
		    cs->log_err == 0);
		clustered = core_log_status(c, &st);
		if (row != NULL && clustered)
			json_object_set_new(row, "cluster", json_pack(
			    "{sssIsIsbsb}", "stream", st.stream, "stream_last",
			    (json_int_t)st.log_last, "lag", (json_int_t)st.lag,
			    "connected", st.connected, "stale", st.stale));
		json_array_append_new(*rows, row);
		if (i > 0 && clustered && st.stale) {
			stale = true;
			snprintf(msg, sizeof(msg), "contest %s: its stream %s "
			    "is cut off (no recent word; %llu behind its last "
			    "known record): its views may be stale",
			    contests_id(api->contests, i), st.stream,
			    (unsigned long long)st.lag);
			json_array_append_new(why, json_string(msg));
		}
		if (i > 0 && cs->log_err != 0) {
			snprintf(msg, sizeof(msg), "contest %s: the last "
			    "journal write failed (%s); its feeds are answered "
			    "503 until a write succeeds",
			    contests_id(api->contests, i), strerror(cs->log_err));
			json_array_append_new(why, json_string(msg));
		}
	}
	return stale;
}

void
get_health(struct call *cl, const char *id)
{
	json_t *o = json_object(), *why = json_array(), *row = NULL;
	bool stale;
	const struct tally_state *s = core_state(cl->api->core);
	const struct core_stats *cs = core_stats(cl->api->core);

	/*
	 * Reads go on whatever happens to the journal, so the process is
	 * healthy for readers (200); but a monitor must see that feeds are
	 * refused, and why.
	 */
	stale = contests_health(cl->api, why, &row);
	if (cs->log_err != 0) {
		char msg[256], at[32];
		time_rfc3339(cs->log_err_at, at, sizeof(at));
		snprintf(msg, sizeof(msg),
		    "journal: the last write failed (%s) "
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
	if (row != NULL)
		json_object_set_new(o, "contests", row);
	health_cluster(cl->api->core, o);
	if (stale)
		json_object_set_new(o, "status", json_string("stale"));
	tlog_push_health(o);
	reply_json(cl->reply, 200, o);
}

/*
 * GET /v1/versions/{n}-{digest}/...: the digest is the version's stamp's
 * (its ETag's), so the URL names one body for ever: another definition,
 * a reset data dir or another history give the same n another digest.  A
 * bare {n} names nothing for good: it is redirected (302, not stored) to
 * the kept version n of the epoch in force.
 */
void
get_version(struct call *cl, const char *num)
{
	struct api *api = cl->api;
	uint64_t cur = core_state(api->core)->version, oldest, n, digest = 0;
	struct version_slot *slot;
	size_t kept;
	const char *tail = cl->rt->id == R_VERSION_LEADERBOARD ? "leaderboard" :
	    cl->rt->id == R_VERSION_PROVINCES ? "provinces" : "leaderboard.svg";
	char *end, loc[256];
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
	/* A version published but not served: its leaderboard written now. */
	if (slot != NULL && cl->rt->id != R_VERSION_PROVINCES &&
	    slot->leaderboard == NULL && (slot->totals != NULL ||
	    slot->lb_raw != NULL) &&
	    views_version_leaderboard(api->views, slot) == -1) {
		call_fail(cl, 500, "internal", NULL, "could not render version "
		    "%llu (out of memory?); try again", (unsigned long long)n);
		return;
	}
	if (*num >= '0' && *num <= '9' && *end == '\0' && slot != NULL &&
	    (bare || slot->digest == digest) && cl->rt->id ==
	    R_VERSION_PROVINCES && slot->provinces == NULL) {
		/*
		 * Every version's leaderboard is kept (or the totals to
		 * write it from); a provinces list only when it was served
		 * at its version, since rendering it for every version costs
		 * each POST far more.  Say so rather than name a range.
		 */
		call_fail(cl, 404, "unknown_version", NULL, "the provinces "
		    "list of version %llu is not kept: a version's provinces "
		    "list is kept only when it was served at that version "
		    "(its leaderboard is: /v1/versions/%llu-%016llx/"
		    "leaderboard)", (unsigned long long)n,
		    (unsigned long long)n, (unsigned long long)slot->digest);
		return;
	}
	if (*num < '0' || *num > '9' || *end != '\0' || slot == NULL ||
	    (!bare && slot->digest != digest) || (cl->rt->id ==
	    R_VERSION_PROVINCES ? slot->provinces : slot->leaderboard) ==
	    NULL) {
		call_fail(cl, 404, "unknown_version", NULL,
		    "version %.40s is not "
		    "kept: versions %llu to %llu are (at most the last %zu, "
		    "since tallyd started; the URL is the Content-Location of "
		    "the view, /v1/versions/<n>-<digest>/...)", num,
		    (unsigned long long)oldest, (unsigned long long)cur,
		    kept);
		return;
	}
	if (bare) {
		snprintf(loc, sizeof(loc), "%s/versions/%llu-%016llx/%s",
		    views_prefix(api->views), (unsigned long long)n,
		    (unsigned long long)slot->digest, tail);
		reply_json(cl->reply, 302, json_pack("{ss}", "location", loc));
		http_body_header(cl->reply->body, "Location", loc);
		return;
	}
	if (cl->rt->id == R_VERSION_LEADERBOARD_SVG && slot->svg == NULL &&
	    views_version_svg(api->views, slot) == -1) {
		call_fail(cl, 500, "internal", NULL,
		    "could not draw version %llu "
		    "(out of memory?); try again", (unsigned long long)n);
		return;
	}
	cl->reply->status = 200;
	cl->reply->owned = false;
	cl->reply->body = cl->rt->id == R_VERSION_LEADERBOARD ?
	    slot->leaderboard : cl->rt->id == R_VERSION_PROVINCES ?
	    slot->provinces : slot->svg;
}

/* GET of a view that has one body for the whole election. */
void
get_election(struct call *cl, const char *id)
{
	serve_view(cl, VIEW_ELECTION, 0);
}

void
get_leaderboard(struct call *cl, const char *id)
{
	serve_view(cl, VIEW_LEADERBOARD, 0);
}

void
get_leaderboard_csv(struct call *cl, const char *id)
{
	serve_view(cl, VIEW_LEADERBOARD_CSV, 0);
}

void
get_leaderboard_svg(struct call *cl, const char *id)
{
	serve_view(cl, VIEW_LEADERBOARD_SVG, 0);
}

void
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

void
get_provinces_csv(struct call *cl, const char *id)
{
	serve_view(cl, VIEW_PROVINCES_CSV, 0);
}

void
get_page(struct call *cl, const char *id)
{
	serve_view(cl, VIEW_PAGE, 0);
}

void
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

void
get_province(struct call *cl, const char *id)
{
	const struct tally_province *pv;

	if ((pv = province_of(cl, id)) != NULL)
		serve_view(cl, call_is_true(http_arg(cl->rq, "explain")) ?
		    VIEW_EXPLAIN : VIEW_PROVINCE, pv->index);
}

void
get_history(struct call *cl, const char *id)
{
	const struct tally_province *pv;

	if ((pv = province_of(cl, id)) != NULL)
		serve_view(cl, VIEW_HISTORY, pv->index);
}

/*
 * Rows of one /v1/changes answer: a page a client reads in one go, and a
 * bound on what one request may make tallyd read back from disk (a
 * million-feed night is a million revisions).
 */
#define CHANGES_MAX_ROWS	1000

/*
 * GET /v1/changes?since=V: rendered per request (V is the client's), with
 * the whole tally's stamp as its validator, since every change anywhere
 * may add a row.
 */
void
get_changes(struct call *cl, const char *id)
{
	struct api *api = cl->api;
	const struct http_request *rq = cl->rq;
	const char *arg = http_arg(rq, "since");
	struct core_stamp st = *core_stamp(api->core, SIZE_MAX);
	struct tally_error err;
	struct view v;
	uint64_t since, kept;
	void *ctx;
	tally_revision_loader load = views_loader(api->views, &ctx);
	char *end, *bytes;
	json_t *j;

	if (arg == NULL || *arg < '0' || *arg > '9' || strlen(arg) > 19 ||
	    (since = strtoull(arg, &end, 10), *end != '\0')) {
		call_fail(cl, 400, "bad_query", "since", "since must be a "
		    "version number (e.g. /v1/changes?since=0: every change; "
		    "the version a client last saw: what it missed)");
		return;
	}
	memset(&v, 0, sizeof(v));
	snprintf(v.etag, sizeof(v.etag), "\"%llu-%016llx\"",
	    (unsigned long long)st.version, (unsigned long long)st.digest);
	memcpy(v.etag_gz, v.etag, sizeof(v.etag_gz));
	if (views_is_fresh(&v, &st, rq->if_none_match, rq->if_modified_since)) {
		static char empty[] = "";
		cl->reply->status = 304;
		cl->reply->owned = true;
		if ((cl->reply->body = http_body_new(empty, 0, false)) != NULL)
			views_cache_headers(api->views, cl->reply->body, v.etag,
			    st.at);
		return;
	}
	if ((j = tally_render_changes(core_state(api->core), since,
	    CHANGES_MAX_ROWS, load, ctx, &kept, &err)) == NULL) {
		if (err.kind == TALLY_ERROR_NOT_FOUND)
			call_fail(cl, 410, err.code, err.field, "%s",
			    err.message);
		else if (err.kind == TALLY_ERROR_NOMEM)
			call_fail(cl, 503, "out_of_memory", NULL, "%s",
			    err.message);
		else
			call_fail(cl, 500, err.code, NULL, "%s", err.message);
		return;
	}
	bytes = reply_with_newline(json_dumps(j, JSON_COMPACT |
	    JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10)));
	json_decref(j);
	if (bytes == NULL || (cl->reply->body = http_body_new(bytes,
	    strlen(bytes), true)) == NULL) {
		free(bytes);
		call_fail(cl, 503, "out_of_memory", NULL, "out of memory; "
		    "try again");
		return;
	}
	/* A view's headers (ETag, max-age, CORS), not reply_json's no-store. */
	cl->reply->status = 200;
	cl->reply->owned = true;
	http_body_header(cl->reply->body, "Content-Type",
	    "application/json; charset=utf-8");
	views_cache_headers(api->views, cl->reply->body, v.etag, st.at);
}

/*
 * GET /v1/schemas/NAME.json: the schemas the integration tests validate
 * every answer against, the same bytes for the life of the binary.
 */
void
get_schema(struct call *cl, const char *name)
{
	const struct schema_file *sf;
	size_t n = strlen(name);
	char etag[40];

	for (sf = schema_files; sf->name != NULL; sf++)
		if (n == strlen(sf->name) + 5 && strncmp(name, sf->name, n -
		    5) == 0 && strcmp(name + n - 5, ".json") == 0)
			break;
	if (sf->name == NULL) {
		call_fail(cl, 404, "not_found", NULL, "no schema %s (GET /v1/ "
		    "links every view's schema)", name);
		return;
	}
	snprintf(etag, sizeof(etag), "\"s-%016llx\"",
	    (unsigned long long)sf->digest);
	cl->reply->owned = true;
	if (cl->rq->if_none_match != NULL &&
	    strstr(cl->rq->if_none_match, etag) != NULL) {
		static char empty[] = "";
		cl->reply->status = 304;
		cl->reply->body = http_body_new(empty, 0, false);
	} else {
		cl->reply->status = 200;
		/* Constant data: not freed with the body. */
		cl->reply->body = http_body_new((char *)(uintptr_t)sf->bytes,
		    sf->len, false);
		http_body_header(cl->reply->body, "Content-Type",
		    "application/schema+json");
	}
	if (cl->reply->body == NULL) {
		call_fail(cl, 503, "out_of_memory", NULL, "out of memory");
		return;
	}
	views_cache_headers(cl->api->views, cl->reply->body, etag,
	    core_definition_time(cl->api->core));
}

/*
 * The flat file's query: at most one `since`, a version number (decimal
 * digits, at most 20, no sign, no overflow), and nothing else.  A
 * misspelt parameter must not silently give the whole file to a client
 * that asked for a delta: 400 bad_query naming it.  false after
 * call_fail(); *since 0 when not given.
 */
struct since_query {
	struct call	*cl;
	bool		 bad;
	bool		 seen;
	uint64_t	 since;
};

static void
since_arg(void *arg, const char *key, const char *value)
{
	struct since_query *q = arg;
	struct call *cl = q->cl;
	size_t n = value ? strlen(value) : 0;
	unsigned long long v;
	char *end;

	if (q->bad)
		return;
	q->bad = true;
	if (strcmp(key, "since") != 0) {
		call_fail(cl, 400, "bad_query", NULL, "unknown query parameter "
		    "\"%.64s\" on %s: the only one taken is since=VERSION "
		    "(the rows of provinces changed after that version)", key,
		    cl->rt->pattern);
		return;
	}
	if (q->seen) {
		call_fail(cl, 400, "bad_query", NULL, "since is given more "
		    "than once: give it once, e.g. since=57");
		return;
	}
	q->seen = true;
	errno = 0;
	if (n == 0 || n > 20 || strspn(value, "0123456789") != n ||
	    (v = strtoull(value, &end, 10), errno != 0 || *end != '\0')) {
		call_fail(cl, 400, "bad_query", NULL, "since=%.32s: give a "
		    "version number (decimal digits, e.g. since=57, the "
		    "\"version\" of the newest row you hold)",
		    value ? value : "");
		return;
	}
	q->since = v;
	q->bad = false;
}

/*
 * GET /v1/results.csv, /v1/results.jsonl.  The whole file is a cached view;
 * ?since=V is rendered per request from the same state (a pure function of
 * it and V), with the view's stamp and V in its ETag.
 */
static void
serve_results(struct call *cl, enum view_id id)
{
	struct since_query q = { cl, false, false, 0 };
	struct api *api = cl->api;
	struct core_stamp st;
	struct http_body *b;
	const char *ctype;
	char etag[96], *bytes;

	http_args_each(cl->rq, since_arg, &q);
	if (q.bad)
		return;
	if (!q.seen) {
		serve_view(cl, id, 0);
		return;
	}
	st = views_stamp(api->views, id, 0);
	snprintf(etag, sizeof(etag), "\"%llu-%016llx-s%llu\"",
	    (unsigned long long)st.version, (unsigned long long)st.digest,
	    (unsigned long long)q.since);
	if (cl->rq->if_none_match != NULL &&
	    strcmp(cl->rq->if_none_match, etag) == 0) {
		if ((b = http_body_new((char *)"", 0, false)) == NULL)
			goto nomem;
		views_cache_headers(api->views, b, etag, st.at);
		cl->reply->status = 304;
		cl->reply->body = b;
		cl->reply->owned = true;
		return;
	}
	if ((bytes = views_results(api->views, id == VIEW_RESULTS_CSV,
	    q.since, &ctype)) == NULL)
		goto nomem;
	if ((b = http_body_new(bytes, strlen(bytes), true)) == NULL) {
		free(bytes);
		goto nomem;
	}
	http_body_header(b, "Content-Type", ctype);
	views_cache_headers(api->views, b, etag, st.at);
	cl->reply->status = 200;
	cl->reply->body = b;
	cl->reply->owned = true;
	return;
nomem:
	call_fail(cl, 503, "out_of_memory", NULL, "out of memory; try again");
}

void
get_results_csv(struct call *cl, const char *id)
{
	serve_results(cl, VIEW_RESULTS_CSV);
}

void
get_results_jsonl(struct call *cl, const char *id)
{
	serve_results(cl, VIEW_RESULTS_JSONL);
}

void
get_history_csv(struct call *cl, const char *id)
{
	const struct tally_province *pv;

	if ((pv = province_of(cl, id)) != NULL)
		serve_view(cl, VIEW_HISTORY_CSV, pv->index);
}

/* GET /v1/map.svg[?by=first|seats]: nothing else in the query. */
struct map_query {
	struct call	*cl;
	bool		 bad;
	bool		 seen;
	bool		 seats;
};

static void
map_arg(void *arg, const char *key, const char *value)
{
	struct map_query *q = arg;

	if (q->bad)
		return;
	q->bad = true;
	if (strcmp(key, "by") != 0)
		call_fail(q->cl, 400, "bad_query", NULL, "unknown query "
		    "parameter \"%.64s\" on /v1/map.svg: the only one taken "
		    "is by=first (the default) or by=seats", key);
	else if (q->seen)
		call_fail(q->cl, 400, "bad_query", NULL, "by is given more "
		    "than once: give it once, by=first or by=seats");
	else if (value == NULL || (strcmp(value, "first") != 0 &&
	    strcmp(value, "seats") != 0))
		call_fail(q->cl, 400, "bad_query", NULL, "by=%.32s: the "
		    "accepted values are first (each province in its first "
		    "place's colour) and seats (its seats by coalition)",
		    value ? value : "");
	else {
		q->seen = true;
		q->seats = strcmp(value, "seats") == 0;
		q->bad = false;
	}
}

void
get_map_svg(struct call *cl, const char *id)
{
	struct map_query q = { cl, false, false, false };

	http_args_each(cl->rq, map_arg, &q);
	if (!q.bad)
		serve_view(cl, q.seats ? VIEW_MAP_SVG_SEATS : VIEW_MAP_SVG, 0);
}
