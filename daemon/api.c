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
 * One exit per request: every refusal goes through fail(), which fills the
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
#include "views.h"

enum route_id {
	R_HEALTH, R_METRICS, R_ELECTION, R_LEADERBOARD, R_LEADERBOARD_CSV,
	R_PROVINCES, R_PROVINCES_CSV, R_PROVINCE, R_HISTORY, R_PROVINCE_RESULTS,
	R_RESULTS, R_COALITION, R_LOT, R_EVENTS, R_VERSION_LEADERBOARD,
	R_VERSION_PROVINCES, R_PAGE, R_LEADERBOARD_SVG,
	R_VERSION_LEADERBOARD_SVG, R_NONE, R_COUNT
};

static const char *const route_names[R_COUNT] = {
	"/healthz", "/metrics", "/v1/election", "/v1/leaderboard",
	"/v1/leaderboard.csv", "/v1/provinces", "/v1/provinces.csv",
	"/v1/provinces/{id}", "/v1/provinces/{id}/history",
	"/v1/provinces/{id}/results", "/v1/results", "/v1/coalitions/{id}",
	"/v1/provinces/{id}/lot", "/v1/events", "/v1/versions/{n}/leaderboard",
	"/v1/versions/{n}/provinces", "/", "/v1/leaderboard.svg",
	"/v1/versions/{n}/leaderboard.svg", "other",
};

/* Statuses counted in /metrics; anything else counts as "other". */
static const unsigned metric_statuses[] = { 200, 201, 204, 304, 400, 401,
    403, 404, 405, 409, 413, 415, 422, 429, 500, 503 };
#define N_STATUSES (sizeof(metric_statuses) / sizeof(metric_statuses[0]))

#define N_REASONS	32

struct metrics {
	uint64_t	 requests[R_COUNT][N_STATUSES + 1];
	struct {
		char	 code[40];
		uint64_t n;
	}		 rejected[N_REASONS];
};

/* A long-poll parked until its view changes or its time is up. */
struct waiter {
	struct waiter		*prev, *next;
	struct api		*api;
	enum route_id		 route;
	enum view_id		 id;
	size_t			 index;
	uint64_t		 version;	/* the stamp the client holds */
	uint64_t		 digest;
	void			*ctx;		/* the server's request */
	struct event		*timer;
};

struct api {
	struct core		*core;		/* borrowed */
	struct auth		*auth;		/* owned */
	struct server		*server;	/* borrowed */
	void			(*metrics_fn)(void *, FILE *);	/* more lines */
	void			*metrics_arg;
	bool			 split;		/* separate ingest listener */
	char			 ingest_addr[300];
	struct views		*views;		/* owned */
	struct metrics		 m;
	/* Live updates (all on the loop). */
	char			*cors_origin;	/* NULL: no CORS headers */
	long			 sse_max_clients;
	struct http_chunk	*hello_bare;	/* "retry: 3000" */
	struct http_chunk	*hello;		/* + a snapshot of the current */
	uint64_t		 hello_version;
	uint64_t		 hello_digest;
	struct waiter		*waiters;
	unsigned		 n_waiters;
	struct event		*ev_wake;
	bool			 stopping;
};

/* One request on its way through the API. */
struct call {
	struct api			*api;
	const struct http_request	*rq;
	struct http_reply		*reply;
	enum route_id			 route;
	/* Every problem of a refused feed, for the "errors" array (or NULL). */
	const struct tally_errors	*all;
	bool				 dry_run;	/* POST ?dry_run=1 */
};

static void	on_publish(void *arg, uint64_t version, const size_t *changed,
		    size_t n);
static void	wake(evutil_socket_t fd, short what, void *arg);
static struct http_chunk *snapshot_events(const char *prefix,
		    const struct view *lb);
static void	waiter_timeout(evutil_socket_t fd, short what, void *arg);
static void	waiter_answer(struct waiter *w, bool changed);

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
	/*
	 * Subscribers (event streams and long-polls) have their own budget,
	 * at most 3/4 of a listener's connections: the rest stays for plain
	 * requests, which a flood of subscribers can then never crowd out.
	 */
	api->sse_max_clients = cf->sse_max_clients;
	if (api->sse_max_clients > cf->connection_limit -
	    cf->connection_limit / 4) {
		api->sse_max_clients = cf->connection_limit -
		    cf->connection_limit / 4;
		log_warnx("sse_max_clients %ld: at most 3/4 of connection_limit "
		    "%ld, %ld subscribers (event streams and long-polls) are "
		    "taken", cf->sse_max_clients, cf->connection_limit,
		    api->sse_max_clients);
	}
	if ((api->hello_bare = http_chunk_new("retry: 3000\n\n", 13, NULL,
	    0)) == NULL || core_subscribe(core, on_publish, api) == -1) {
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
	if (api->ev_wake == NULL &&
	    (api->ev_wake = evtimer_new(server_base(srv), wake, api)) == NULL)
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
	auth_destroy(api->auth);
	while (api->waiters != NULL)
		waiter_answer(api->waiters, false);
	if (api->ev_wake != NULL)
		event_free(api->ev_wake);
	views_destroy(api->views);
	http_chunk_unref(api->hello_bare);
	http_chunk_unref(api->hello);
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
		http_chunk_unref(api->hello);
		api->hello = NULL;
		if (api->server != NULL && server_streams(api->server) > 0) {
			struct view *lb = views_current(api->views, VIEW_LEADERBOARD, 0);
			struct http_chunk *snap = lb ? snapshot_events("", lb) :
			    NULL;
			if (snap != NULL)
				server_stream_publish(api->server, snap, snap);
			http_chunk_unref(snap);
		}
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


static void	fail(struct call *cl, unsigned status, const char *code,
		    const char *field, const char *fmt, ...)
		    __attribute__((format(printf, 5, 6)));


static bool	park(struct call *cl, enum view_id id, size_t index,
		    const struct view *v);

static void
serve_view(struct call *cl, enum view_id id, size_t index)
{
	struct api *api = cl->api;
	const struct http_request *rq = cl->rq;
	struct http_reply *reply = cl->reply;
	struct core_stamp st = views_stamp(api->views, id, index);
	struct view *v;

	if ((v = views_current(api->views, id, index)) == NULL) {
		fail(cl, 500, "internal", NULL, "could not render the "
		    "view (out of memory?); try again");
		return;
	}
	reply->owned = false;
	if (views_is_fresh(v, &st, rq->if_none_match, rq->if_modified_since)) {
		/* ?wait=S: hold the answer until the view changes. */
		if (rq->if_none_match != NULL && park(cl, id, index, v))
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

static void
count_rejection(struct api *api, const char *code)
{
	size_t i;

	for (i = 0; i < N_REASONS; i++) {
		if (api->m.rejected[i].code[0] == '\0')
			snprintf(api->m.rejected[i].code,
			    sizeof(api->m.rejected[i].code), "%s", code);
		if (strcmp(api->m.rejected[i].code, code) == 0) {
			api->m.rejected[i].n++;
			return;
		}
	}
}

static bool
is_feed_route(enum route_id r)
{
	return r == R_PROVINCE_RESULTS || r == R_RESULTS || r == R_LOT;
}

/* The one exit of a refused request: reply, and count a refused feed. */
static void
fail(struct call *cl, unsigned status, const char *code, const char *field,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_verror(cl->reply, status, code, field, cl->all, fmt, ap);
	va_end(ap);
	if (is_feed_route(cl->route)) {
		count_rejection(cl->api, code);
		log_info_limited("refused feeds", "refused %s %.200s: %u %s",
		    cl->rq->method, cl->rq->path, status, code);
	}
	log_debug("%s %.200s: %u %s", cl->rq->method, cl->rq->path, status,
	    code);
}

static void
fail_with(struct call *cl, const struct tally_error *err)
{
	/* The single place where an error kind becomes an HTTP status. */
	static const unsigned status[] = {
		[TALLY_ERROR_NONE] = 500, [TALLY_ERROR_SYNTAX] = 400,
		[TALLY_ERROR_INVALID] = 422, [TALLY_ERROR_NOT_FOUND] = 404,
		[TALLY_ERROR_CONFLICT] = 409, [TALLY_ERROR_NOMEM] = 503,
	};
	unsigned st = (size_t)err->kind < sizeof(status) / sizeof(status[0]) ?
	    status[err->kind] : 500;

	fail(cl, st, err->code, err->field[0] ? err->field : NULL, "%s",
	    err->message);
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
serve_health(struct call *cl)
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

static bool
is_json_type(const char *ct)
{
	size_t n = strlen("application/json");

	if (ct == NULL)
		return false;
	while (*ct == ' ')
		ct++;
	return strncasecmp(ct, "application/json", n) == 0 &&
	    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/*
 * The charset parameter of a JSON Content-Type, if any, is UTF-8: a body in
 * another charset would be read as UTF-8 and mangled, so it is refused.
 */
static bool
is_utf8_charset(const char *ct)
{
	const char *p;

	for (p = strchr(ct, ';'); p != NULL; p = strchr(p + 1, ';')) {
		const char *v = p + 1;
		size_t n;
		while (*v == ' ' || *v == '\t')
			v++;
		if (strncasecmp(v, "charset", 7) != 0)
			continue;
		v += 7;
		while (*v == ' ')
			v++;
		if (*v++ != '=')
			return false;
		while (*v == ' ')
			v++;
		if (*v == '"')
			v++;
		n = strcspn(v, "\"; \t");
		if (!((n == 5 && strncasecmp(v, "utf-8", 5) == 0) ||
		    (n == 4 && strncasecmp(v, "utf8", 4) == 0)))
			return false;
	}
	return true;
}

/*
 * What a feed must show before its body is read: the right listener, a
 * known token and a UTF-8 JSON body sent as is.  Fills the reply and returns
 * false when refused.
 */
static bool
feed_admit(struct call *cl, const struct token **who)
{
	const struct http_request *rq = cl->rq;
	const char *h = rq->authorization;

	if (!rq->ingest) {
		fail(cl, 405, "method_not_allowed", NULL, "feeds are accepted "
		    "on the ingest listener only (%s), not on the public one",
		    cl->api->ingest_addr);
		http_body_header(cl->reply->body, "Allow", "");
		return false;
	}
	if (auth_check(cl->api->auth, h, who) == -1) {
		if (h == NULL)
			fail(cl, 401, "unauthorized", NULL, "a feed needs a "
			    "token: send the header Authorization: Bearer "
			    "<token>");
		else if (strncasecmp(h, "Bearer ", 7) != 0)
			fail(cl, 401, "unauthorized", NULL, "the Authorization "
			    "header must be \"Bearer <token>\"");
		else
			fail(cl, 401, "unauthorized", NULL, "the token is not "
			    "valid: it matches no entry of the tokens in force "
			    "(token file, TALLYD_INGEST_TOKEN or "
			    "DATA_DIR/ingest.token)");
		http_body_header(cl->reply->body, "WWW-Authenticate",
		    "Bearer realm=\"tallyd\"");
		return false;
	}
	if (!is_json_type(rq->content_type)) {
		fail(cl, 415, "unsupported_media_type", NULL,
		    "send the result as Content-Type: application/json");
		return false;
	}
	if (!is_utf8_charset(rq->content_type)) {
		fail(cl, 415, "unsupported_media_type", NULL,
		    "a feed is UTF-8 JSON: send Content-Type: application/json "
		    "(or with charset=utf-8)");
		return false;
	}
	if (rq->content_encoding != NULL &&
	    strcasecmp(rq->content_encoding, "identity") != 0) {
		fail(cl, 415, "unsupported_media_type", NULL,
		    "Content-Encoding %.40s is not decoded here: send the body "
		    "uncompressed", rq->content_encoding);
		return false;
	}
	return true;
}

/* 429 with Retry-After: the token is over its ingest_rate. */
static void
rate_refuse(struct call *cl, const struct token *who, double retry)
{
	char buf[32];

	fail(cl, 429, "rate_limited", NULL, "this token (%s) sent more feeds "
	    "than ingest_rate allows; retry after the time in Retry-After",
	    auth_label(who));
	snprintf(buf, sizeof(buf), "%d", (int)retry + 1);
	http_body_header(cl->reply->body, "Retry-After", buf);
}

static double
mono_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The first gate of every feed: admission (above), then the token's rate.
 * Fills the reply and returns false when refused.
 */
static bool
feed_gate(struct call *cl, const struct token **who)
{
	double retry;

	if (!feed_admit(cl, who))
		return false;
	if (!auth_take(cl->api->auth, *who, mono_seconds(), &retry)) {
		rate_refuse(cl, *who, retry);
		return false;
	}
	return true;
}

/* The body as JSON (new), or NULL with a 400 or 422 reply. */
static json_t *
parse_body(struct call *cl)
{
	const struct http_request *rq = cl->rq;
	unsigned long nomem = tally_json_failures();
	json_error_t jerr;
	json_t *body;

	body = json_loadb(rq->body ? rq->body : "", rq->body_len,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (tally_json_failures() != nomem) {
		/* jansson may have dropped characters: see tally_json_init. */
		json_decref(body);
		fail(cl, 503, "out_of_memory", NULL, "out of memory reading the "
		    "body; nothing was applied, try again");
		return NULL;
	}
	if (body == NULL && json_error_code(&jerr) == json_error_numeric_overflow) {
		/* Well-formed JSON whose number no count can reach. */
		fail(cl, 422, "out_of_range", NULL, "a number at line %d, "
		    "column %d is too large: counts are integers from 0 to "
		    "10^12", jerr.line, jerr.column);
		return NULL;
	}
	if (body == NULL)
		fail(cl, 400, "invalid_json", NULL, "the body is not valid JSON "
		    "(line %d, column %d): %s", jerr.line, jerr.column,
		    jerr.text);
	return body;
}

static void	count_request(struct api *api, int route, unsigned status);

/* A feed request waiting for the core's answer. */
struct post {
	struct api	*api;
	void		*ctx;		/* the server's request */
	bool		 batch;
	bool		 lot;
	char		 label[64];	/* the token's, for the log */
};

/* The core's answer to a POST: the reply, counted when it is given. */
static void
post_done(void *arg, const struct core_outcome *out)
{
	struct post *po = arg;
	struct api *api = po->api;
	struct http_request rq;
	struct http_reply reply;
	struct call cl = { api, &rq, &reply,
	    po->batch ? R_RESULTS : po->lot ? R_LOT : R_PROVINCE_RESULTS,
	    NULL, false };
	const struct tally_election *e = core_election(api->core);
	json_t *o, *results;
	size_t i;

	memset(&rq, 0, sizeof(rq));
	rq.method = "POST";
	rq.path = route_names[cl.route];
	memset(&reply, 0, sizeof(reply));
	switch (out->kind) {
	case CORE_REJECTED:
		fail_with(&cl, out->err);
		break;
	case CORE_UNAVAILABLE:
		if (strcmp(core_log_name(api->core), "cluster") == 0) {
			/* Not known to be in the stream: a retry is safe. */
			fail(&cl, 503, "cluster_unavailable", NULL, "the "
			    "stream did not take the record (%s); retry: a "
			    "repeat of an applied revision is answered "
			    "\"duplicate\"", strerror(out->log_err));
			http_body_header(reply.body, "Retry-After", "1");
			break;
		}
		fail(&cl, 503, "journal_unavailable", NULL, "the journal could "
		    "not be written (%s); nothing was applied: retry later",
		    strerror(out->log_err));
		http_body_header(reply.body, "Retry-After", "5");
		break;
	case CORE_STOPPING:
		fail(&cl, 503, "shutting_down", NULL, "tallyd is stopping; the "
		    "result is not known to be applied: retry after the "
		    "restart (a repeat of an applied revision is answered "
		    "\"duplicate\")");
		http_body_header(reply.body, "Retry-After", "5");
		http_body_header(reply.body, "Connection", "close");
		break;
	case CORE_APPLIED:
	case CORE_DUPLICATE:
		for (i = 0; i < out->n && out->kind == CORE_APPLIED; i++)
			if (out->chk[i] == TALLY_CHECK_NEW)
				log_info("applied %s%s revision %llu as version "
				    "%llu (token %s)", po->lot ? "a lot for " :
				    "", e->provinces[out->province[i]].id,
				    (unsigned long long)out->revision[i],
				    (unsigned long long)out->version, po->label);
		o = json_object();
		results = json_array();
		for (i = 0; i < out->n; i++) {
			json_t *row = json_object();
			json_object_set_new(row, "province", json_string(
			    e->provinces[out->province[i]].id));
			json_object_set_new(row, "revision",
			    json_integer((json_int_t)out->revision[i]));
			json_object_set_new(row, "status", json_string(
			    out->chk[i] == TALLY_CHECK_NEW ? "applied" :
			    "duplicate"));
			json_array_append_new(results, row);
		}
		if (po->batch) {
			json_object_set_new(o, "status", json_string(
			    out->kind == CORE_APPLIED ? "applied" : "duplicate"));
			json_object_set_new(o, "version",
			    json_integer((json_int_t)out->version));
			json_object_set_new(o, "results", results);
		} else {
			json_object_update(o, json_array_get(results, 0));
			json_object_set_new(o, "version",
			    json_integer((json_int_t)out->version));
			json_decref(results);
		}
		reply_json(&reply, out->kind == CORE_APPLIED ? 201 : 200, o);
		break;
	}
	count_request(api, cl.route, reply.status);
	server_resume(po->ctx, &reply);
	free(po);
}

/* Hand a request's feeds (taken) to the core; the answer comes later. */
/*
 * ?dry_run=1: what the feeds (taken) would change, answered now from the
 * applied state; nothing is journaled or applied.
 */
static bool	is_true(const char *v);

static void
dry_run(struct call *cl, struct tally_feed **feeds, size_t n, bool batch)
{
	struct tally_error err;
	enum tally_check *chk;
	json_t *o = NULL;
	size_t i;

	if ((chk = calloc(n ? n : 1, sizeof(*chk))) == NULL)
		tally_error_set(&err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,
		    "out of memory; try again");
	else
		o = tally_render_dry_run(core_state(cl->api->core), feeds, n,
		    chk, &err);
	/* What the real POST would answer, the engine's refusal included. */
	for (i = 0; o != NULL && i < n; i++)
		if (chk[i] == TALLY_CHECK_NEW && tally_state_check_apply(
		    core_state(cl->api->core), feeds[i], &err) == -1) {
			json_decref(o);
			o = NULL;
		}
	for (i = 0; i < n; i++)
		tally_feed_destroy(feeds[i]);
	free(feeds);
	free(chk);
	if (o == NULL) {
		fail_with(cl, &err);
		return;
	}
	if (!batch) {
		/* A single POST's answer is flat, like the real one. */
		json_t *row = json_incref(json_array_get(json_object_get(o,
		    "results"), 0));
		json_object_del(o, "results");
		json_object_del(row, "status");
		json_object_update(o, row);
		json_decref(row);
	}
	reply_json(cl->reply, 200, o);
}

static void
submit(struct call *cl, struct tally_feed **feeds, size_t n, bool batch)
{
	struct post *po;
	size_t i;

	if (cl->dry_run) {
		dry_run(cl, feeds, n, batch);
		return;
	}

	if ((po = malloc(sizeof(*po))) == NULL) {
		for (i = 0; i < n; i++)
			tally_feed_destroy(feeds[i]);
		free(feeds);
		fail(cl, 503, "out_of_memory", NULL, "out of memory; nothing "
		    "was applied, try again");
		return;
	}
	po->api = cl->api;
	po->ctx = cl->rq->ctx;
	po->batch = batch;
	po->lot = false;
	snprintf(po->label, sizeof(po->label), "%s",
	    n > 0 && feeds[0]->by ? feeds[0]->by : "?");
	cl->reply->pending = true;
	if (core_submit(cl->api->core, feeds, n, post_done, po) == -1) {
		free(po);
		cl->reply->pending = false;
		fail(cl, 503, "out_of_memory", NULL, "out of memory; nothing "
		    "was applied, try again");
	}
}

static void
post_province(struct call *cl, const char *province)
{
	const struct tally_election *e = core_election(cl->api->core);
	const struct http_request *rq = cl->rq;
	const struct token *who;
	struct tally_feed *f, **feeds;
	struct tally_error err;
	json_t *body;

	if (!feed_gate(cl, &who))
		return;
	/* The usual body takes the fast path; anything else, the full one. */
	f = tally_feed_scan(e, province, rq->body ? rq->body : "", rq->body_len);
	if (f == NULL) {
		if ((body = parse_body(cl)) == NULL)
			return;
		struct tally_error many[16];
		struct tally_errors all = { many, 16, 0 };
		f = tally_feed_parse_all(e, province, body, "", &err, &all);
		json_decref(body);
		if (f == NULL) {
			cl->all = &all;
			fail_with(cl, &err);
			cl->all = NULL;
			return;
		}
	}
	if (!auth_may_post(who, province)) {
		tally_feed_destroy(f);
		fail(cl, 403, "forbidden_province", NULL, "this token may not "
		    "post results for province %s", province);
		return;
	}
	if ((feeds = malloc(sizeof(*feeds))) == NULL) {
		tally_feed_destroy(f);
		fail(cl, 503, "out_of_memory", NULL, "out of memory; nothing "
		    "was applied, try again");
		return;
	}
	feeds[0] = f;
	/* Journaled beside the feed for its history; NULL on no memory. */
	f->by = tally_label_clean(auth_label(who));
	log_debug("accepted %s revision %llu (token %s)", province,
	    (unsigned long long)f->revision, auth_label(who));
	submit(cl, feeds, 1, false);
}

/* POST /v1/provinces/{id}/lot: the order drawn for a pending tie. */
static void
post_lot(struct call *cl, const struct tally_province *pv)
{
	const struct tally_election *e = core_election(cl->api->core);
	const struct token *who;
	struct tally_lot *lot;
	struct tally_error err;
	struct post *po;
	json_t *body;

	if (!feed_gate(cl, &who) || (body = parse_body(cl)) == NULL)
		return;
	lot = tally_lot_parse(e, pv->index, body, &err);
	json_decref(body);
	if (lot == NULL) {
		fail_with(cl, &err);
		return;
	}
	if (!auth_may_post(who, pv->id)) {
		tally_lot_destroy(lot);
		fail(cl, 403, "forbidden_province", NULL, "this token may not "
		    "post results for province %s", pv->id);
		return;
	}
	lot->by = tally_label_clean(auth_label(who));
	if (cl->dry_run) {
		/* What the lot would do, answered now; nothing changes. */
		enum tally_check chk;
		json_t *o = tally_render_lot_dry_run(core_state(cl->api->core),
		    lot, &chk, &err);
		tally_lot_destroy(lot);
		if (o == NULL)
			fail_with(cl, &err);
		else
			reply_json(cl->reply, 200, o);
		return;
	}
	if ((po = malloc(sizeof(*po))) == NULL) {
		tally_lot_destroy(lot);
		fail(cl, 503, "out_of_memory", NULL, "out of memory; nothing "
		    "was applied, try again");
		return;
	}
	po->api = cl->api;
	po->ctx = cl->rq->ctx;
	po->batch = false;
	po->lot = true;
	snprintf(po->label, sizeof(po->label), "%s", lot->by ? lot->by : "?");
	cl->reply->pending = true;
	if (core_submit_lot(cl->api->core, lot, post_done, po) == -1) {
		free(po);
		cl->reply->pending = false;
		fail(cl, 503, "out_of_memory", NULL, "out of memory; nothing "
		    "was applied, try again");
	}
}

/*
 * A batch is all-or-nothing: every entry is parsed, authorised and checked
 * before any is applied, and one bad entry rejects the whole batch, named by
 * its JSON pointer.
 */
static void
post_batch(struct call *cl)
{
	const struct tally_election *e = core_election(cl->api->core);
	const struct token *who;
	struct tally_feed **feeds = NULL;
	struct tally_error err, many[16];
	struct tally_errors all = { many, 16, 0 };
	json_t *body, *arr, *entry, *v;
	const char *key;
	size_t i, j, n = 0;
	char ptr[64];
	bool bad = false;

	if (!feed_gate(cl, &who) || (body = parse_body(cl)) == NULL)
		return;
	if (!json_is_object(body)) {
		tally_error_set(&err, TALLY_ERROR_INVALID, "wrong_type", "",
		    "the body must be {\"results\": [...]}");
		goto reject;
	}
	json_object_foreach(body, key, v) {
		if (strcmp(key, "results") != 0) {
			char fp[96];
			snprintf(fp, sizeof(fp), "/%.60s", key);
			tally_error_set(&err, TALLY_ERROR_INVALID, "unknown_field",
			    fp, "unknown field \"%.60s\"; the body is "
			    "{\"results\": [...]}", key);
			goto reject;
		}
	}
	arr = json_object_get(body, "results");
	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		tally_error_set(&err, TALLY_ERROR_INVALID, arr ? "wrong_type" :
		    "missing_field", "/results", "\"results\" must be a non-empty "
		    "array of province results");
		goto reject;
	}
	n = json_array_size(arr);
	if ((feeds = calloc(n, sizeof(*feeds))) == NULL) {
		tally_error_set(&err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,
		    "out of memory; nothing was applied, try again");
		goto reject;
	}
	json_array_foreach(arr, i, entry) {
		struct tally_error one;
		snprintf(ptr, sizeof(ptr), "/results/%zu", i);
		/* Every entry is read: all their problems are answered. */
		if ((feeds[i] = tally_feed_parse_all(e, NULL, entry, ptr,
		    &one, &all)) == NULL) {
			if (!bad || one.kind == TALLY_ERROR_NOMEM)
				err = one;
			if (one.kind == TALLY_ERROR_NOMEM)
				goto reject;
			bad = true;
			continue;
		}
		for (j = 0; j < i; j++)
			if (feeds[j] != NULL &&
			    feeds[j]->province == feeds[i]->province) {
				tally_error_set(&err, TALLY_ERROR_INVALID,
				    "duplicate_province", ptr,
				    "province %s is already in this batch at "
				    "/results/%zu; send one result per province",
				    e->provinces[feeds[i]->province].id, j);
				snprintf(err.field, sizeof(err.field),
				    "%s/province", ptr);
				goto reject;
			}
	}
	if (bad)
		goto reject;
	for (i = 0; i < n; i++) {
		const char *pid = e->provinces[feeds[i]->province].id;
		if (!auth_may_post(who, pid)) {
			snprintf(ptr, sizeof(ptr), "/results/%zu/province", i);
			tally_error_set(&err, TALLY_ERROR_INVALID,
			    "forbidden_province", ptr, "this token may not post "
			    "results for province %s; nothing was applied", pid);
			json_decref(body);
			for (j = 0; j < n; j++)
				tally_feed_destroy(feeds[j]);
			free(feeds);
			fail(cl, 403, err.code, err.field, "%s", err.message);
			return;
		}
	}
	json_decref(body);
	for (i = 0; i < n; i++)
		feeds[i]->by = tally_label_clean(auth_label(who));
	submit(cl, feeds, n, true);
	return;
reject:
	cl->all = bad ? &all : NULL;
	fail_with(cl, &err);
	cl->all = NULL;
	for (i = 0; feeds != NULL && i < n; i++)
		tally_feed_destroy(feeds[i]);
	free(feeds);
	json_decref(body);
}

/*
 * Event streams and long-polls share one budget (sse_max_clients), so that
 * subscribers can never crowd out a plain GET: when it is spent, answer 503
 * too_many_subscribers with Retry-After and return true.
 */
static bool
subscribers_full(struct api *api, struct call *cl)
{
	if (server_streams(api->server) + api->n_waiters <
	    (unsigned long)api->sse_max_clients)
		return false;
	fail(cl, 503, "too_many_subscribers", NULL, "%ld subscribers "
	    "(event streams and long-polls) are open, the most this "
	    "server takes; retry later", api->sse_max_clients);
	http_body_header(cl->reply->body, "Retry-After", "10");
	return true;
}

/*
 * Long-poll.  ?wait=S (0 to 60) with an If-None-Match naming the current
 * view: the request is parked until the view's stamp moves (200 with the new
 * bytes) or S seconds pass (304).  true when parked (or refused: then the
 * reply is filled).
 */
static bool
park(struct call *cl, enum view_id id, size_t index, const struct view *v)
{
	struct api *api = cl->api;
	const char *arg = http_arg(cl->rq, "wait");
	struct timeval tv;
	struct waiter *w;
	char *end;
	long secs;

	if (arg == NULL || (cl->route != R_LEADERBOARD &&
	    cl->route != R_PROVINCES && cl->route != R_PROVINCE))
		return false;
	secs = strtol(arg, &end, 10);
	if (*arg == '\0' || *end != '\0' || secs < 0 || secs > 60) {
		fail(cl, 400, "invalid_wait", NULL, "wait must be a number of "
		    "seconds from 0 to 60");
		return true;
	}
	if (secs == 0 || api->stopping || api->ev_wake == NULL)
		return false;
	/* The subscribers' budget, shared with event streams. */
	if (subscribers_full(api, cl))
		return true;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return false;		/* answered at once: 304 */
	w->api = api;
	w->route = cl->route;
	w->id = id;
	w->index = index;
	w->version = v->version;
	w->digest = v->digest;
	w->ctx = cl->rq->ctx;
	if ((w->timer = evtimer_new(server_base(api->server),
	    waiter_timeout, w)) == NULL) {
		free(w);
		return false;
	}
	tv.tv_sec = secs;
	tv.tv_usec = 0;
	evtimer_add(w->timer, &tv);
	w->next = api->waiters;
	if (w->next != NULL)
		w->next->prev = w;
	api->waiters = w;
	api->n_waiters++;
	cl->reply->pending = true;
	return true;
}

/*
 * Answer a parked long-poll: the view's current bytes when it changed (a
 * small body of its own sharing the view's bytes: the cached body could be
 * replaced before libmicrohttpd queues this answer), else 304.
 */
static void
waiter_answer(struct waiter *w, bool changed)
{
	struct api *api = w->api;
	struct core_stamp st = views_stamp(api->views, w->id, w->index);
	struct http_reply reply;
	struct view *v = views_current(api->views, w->id, w->index);
	static char empty[] = "";

	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		api->waiters = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	api->n_waiters--;
	event_free(w->timer);
	memset(&reply, 0, sizeof(reply));
	reply.owned = true;
	if (v != NULL && changed && v->chunk == NULL)
		v->chunk = http_chunk_new(v->bytes, v->len, NULL, 0);
	if (v != NULL && changed && v->chunk != NULL &&
	    (reply.body = http_body_from_chunk(v->chunk)) != NULL) {
		reply.status = 200;
		views_body_headers(api->views, reply.body, v, st.at);
	} else if (v != NULL && (reply.body = http_body_new(empty, 0,
	    false)) != NULL) {
		reply.status = 304;
		views_cache_headers(api->views, reply.body, v->etag, st.at);
	} else {
		api_error(&reply, 503, "out_of_memory", NULL, "out of memory; "
		    "try again");
	}
	count_request(api, w->route, reply.status);
	server_resume(w->ctx, &reply);
	free(w);
}

static void
waiter_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	waiter_answer(arg, false);
}

/*
 * After a publish: answer every long-poll whose view moved, WAKE_SLICE at a
 * time with a turn of the loop between slices (as the server's fan-out), so
 * that a POST never waits behind all of them.
 */
#define WAKE_SLICE	1000

static void
wake(evutil_socket_t fd, short what, void *arg)
{
	struct api *api = arg;
	struct timeval soon = { 0, 100 };
	struct waiter *w, *next;
	unsigned k = 0;

	(void)fd;
	(void)what;
	for (w = api->waiters; w != NULL; w = next) {
		struct core_stamp st = views_stamp(api->views, w->id, w->index);
		next = w->next;
		if (st.version == w->version && st.digest == w->digest)
			continue;
		if (k++ == WAKE_SLICE) {
			evtimer_add(api->ev_wake, &soon);
			return;
		}
		waiter_answer(w, true);
	}
}

/*
 * GET /v1/versions/{n}-{digest}/...: the digest is the version's stamp's
 * (its ETag's), so the URL names one body for ever: another definition,
 * a reset data dir or another history give the same n another digest.  A
 * bare {n} names nothing for good: it is redirected (302, not stored) to
 * the kept version n of the epoch in force.
 */
static void
serve_version(struct call *cl, const char *num)
{
	struct api *api = cl->api;
	uint64_t cur = core_state(api->core)->version, oldest, n, digest = 0;
	struct version_slot *slot;
	size_t kept;
	const char *tail = cl->route == R_VERSION_LEADERBOARD ? "leaderboard" :
	    cl->route == R_VERSION_PROVINCES ? "provinces" : "leaderboard.svg";
	char *end, loc[128];
	bool bare;

	/* The current version's view, as a GET of it would render it. */
	(void)views_current(api->views, cl->route == R_VERSION_LEADERBOARD ?
	    VIEW_LEADERBOARD : VIEW_PROVINCES, 0);
	n = strtoull(num, &end, 10);
	bare = *end == '\0';
	if (!bare && end[0] == '-' && strlen(end + 1) == 16 &&
	    strspn(end + 1, "0123456789abcdef") == 16)
		digest = strtoull(end + 1, &end, 16);
	slot = views_version(api->views, n, cur, &oldest, &kept);
	if (*num < '0' || *num > '9' || *end != '\0' || slot == NULL ||
	    (!bare && slot->digest != digest) || (cl->route ==
	    R_VERSION_PROVINCES ? slot->provinces : slot->leaderboard) ==
	    NULL) {
		fail(cl, 404, "unknown_version", NULL, "version %.40s is not "
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
	if (cl->route == R_VERSION_LEADERBOARD_SVG && slot->svg == NULL &&
	    views_version_svg(api->views, slot) == -1) {
		fail(cl, 500, "internal", NULL, "could not draw version %llu "
		    "(out of memory?); try again", (unsigned long long)n);
		return;
	}
	cl->reply->status = 200;
	cl->reply->owned = false;
	cl->reply->body = cl->route == R_VERSION_LEADERBOARD ?
	    slot->leaderboard : cl->route == R_VERSION_PROVINCES ?
	    slot->provinces : slot->svg;
}

/*
 * An event id: "<version>-<digest>", the version's stamp (its ETag without
 * quotes).  The digest names the epoch (definition and history), so a
 * Last-Event-ID from another data dir, another definition or a node that
 * had applied another history never passes for the current version.
 */
static void
event_id(char *buf, size_t len, uint64_t version, uint64_t digest)
{
	snprintf(buf, len, "%llu-%016llx", (unsigned long long)version,
	    (unsigned long long)digest);
}

/*
 * "id: ID\nevent: NAME\ndata: BYTES\n\n" at the end of f; a newline inside
 * the bytes starts another data line (the renderers write one line).
 */
static void
write_event(FILE *f, const char *id, const char *name, const char *bytes,
    size_t len)
{
	size_t i;

	while (len > 0 && bytes[len - 1] == '\n')
		len--;
	fprintf(f, "id: %s\nevent: %s\ndata: ", id, name);
	for (i = 0; i < len; i++) {
		if (bytes[i] == '\n')
			fputs("\ndata: ", f);
		else
			fputc(bytes[i], f);
	}
	fputs("\n\n", f);
}

/* A new chunk of the bytes written by a memstream (buf freed). */
static struct http_chunk *
chunk_of(char *buf, size_t len)
{
	struct http_chunk *c = buf ? http_chunk_new(buf, len, NULL, 0) : NULL;

	free(buf);
	return c;
}

/*
 * A snapshot of version lb (its leaderboard view), after `prefix`: a
 * "snapshot" event ({"version": n}: what follows is the whole state, the
 * versions before it are not replayed) and the leaderboard.  New, or NULL.
 */
static struct http_chunk *
snapshot_events(const char *prefix, const struct view *lb)
{
	char *buf = NULL, id[48], data[48];
	size_t len = 0;
	FILE *f;

	if ((f = open_memstream(&buf, &len)) == NULL)
		return NULL;
	event_id(id, sizeof(id), lb->version, lb->digest);
	snprintf(data, sizeof(data), "{\"version\":%llu}",
	    (unsigned long long)lb->version);
	fputs(prefix, f);
	write_event(f, id, "snapshot", data, strlen(data));
	write_event(f, id, "leaderboard", lb->bytes, lb->len);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return chunk_of(buf, len);
}

/* A version's events: what changed, then the leaderboard.  New, or NULL. */
static struct http_chunk *
version_events(struct api *api, uint64_t version, const size_t *changed,
    size_t n, const struct view *lb)
{
	const struct tally_election *e = core_election(api->core);
	const struct tally_state *s = core_state(api->core);
	json_t *o = json_object(), *arr = json_array();
	char *change, *buf = NULL, id[48];
	size_t i, len = 0;
	FILE *f;

	for (i = 0; i < n; i++) {
		const struct tally_revision *rev =
		    tally_state_current(s, changed[i]);
		const struct tally_feed *fd = rev ? rev->feed : NULL;
		json_t *row = json_object();
		json_object_set_new(row, "id",
		    json_string(e->provinces[changed[i]].id));
		json_object_set_new(row, "revision", json_integer(
		    fd ? (json_int_t)fd->revision : 0));
		json_object_set_new(row, "status", json_string(
		    tally_status_name(fd ? fd->status : TALLY_STATUS_NONE)));
		/* Whether its seats can still change (tally/bounds.h): a
		 * subscriber sees the moment a province settles. */
		json_object_set_new(row, "settled",
		    json_boolean(s->provinces[changed[i]].bounds.settled));
		json_array_append_new(arr, row);
	}
	json_object_set_new(o, "version", json_integer((json_int_t)version));
	json_object_set_new(o, "provinces", arr);
	change = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	if (change == NULL || (f = open_memstream(&buf, &len)) == NULL) {
		free(change);
		return NULL;
	}
	event_id(id, sizeof(id), lb->version, lb->digest);
	write_event(f, id, "change", change, strlen(change));
	write_event(f, id, "leaderboard", lb->bytes, lb->len);
	free(change);
	if (fclose(f) != 0)
		return NULL;
	return chunk_of(buf, len);
}

static void
on_publish(void *arg, uint64_t version, const size_t *changed, size_t n)
{
	struct api *api = arg;
	struct timeval soon = { 0, 100 };
	struct http_chunk *c, *snap;
	struct view *lb;

	/*
	 * Streams get every version: rendered now, before the state moves on
	 * with the next request of the round (and so kept in the ring), with
	 * its snapshot for a stream that has to skip versions.
	 */
	if (api->server != NULL && server_streams(api->server) > 0 &&
	    (lb = views_current(api->views, VIEW_LEADERBOARD, 0)) != NULL &&
	    (c = version_events(api, version, changed, n, lb)) != NULL) {
		snap = snapshot_events("", lb);
		server_stream_publish(api->server, c, snap);
		http_chunk_unref(c);
		http_chunk_unref(snap);
	}
	/* Long-polls are answered after the round's POSTs. */
	if (api->waiters != NULL)
		evtimer_add(api->ev_wake, &soon);
}

/*
 * GET /v1/events: "retry", then, unless the client's last event id
 * (Last-Event-ID, or ?last_event_id=) is exactly the current version's
 * ("<version>-<digest>"), a snapshot: a "snapshot" event and the current
 * leaderboard.  Events between are not kept, so a resume that cannot be
 * served exactly (an older id, a bare number, an id of another epoch or of
 * a node ahead of this one) always starts from a snapshot that says so.
 */
static void
serve_events(struct call *cl)
{
	struct api *api = cl->api;
	const char *last = cl->rq->last_event_id;
	const struct core_stamp *st = core_stamp(api->core, SIZE_MAX);
	struct view *lb;
	char cur[48];

	if (api->stopping) {
		fail(cl, 503, "shutting_down", NULL, "tallyd is stopping; "
		    "reconnect after the restart");
		http_body_header(cl->reply->body, "Retry-After", "5");
		return;
	}
	if (subscribers_full(api, cl))
		return;
	if (last == NULL)
		last = http_arg(cl->rq, "last_event_id");
	event_id(cur, sizeof(cur), st->version, st->digest);
	if (last != NULL && strcmp(last, cur) == 0) {
		cl->reply->stream = http_chunk_ref(api->hello_bare);
	} else {
		if (api->hello == NULL || api->hello_version != st->version ||
		    api->hello_digest != st->digest) {
			http_chunk_unref(api->hello);
			api->hello = NULL;
			if ((lb = views_current(api->views, VIEW_LEADERBOARD, 0)) == NULL) {
				fail(cl, 500, "internal", NULL, "out of memory");
				return;
			}
			api->hello = snapshot_events("retry: 3000\n\n", lb);
			api->hello_version = st->version;
			api->hello_digest = st->digest;
			if (api->hello == NULL) {
				fail(cl, 500, "internal", NULL, "out of memory");
				return;
			}
		}
		cl->reply->stream = http_chunk_ref(api->hello);
	}
	cl->reply->status = 200;
}

void
api_stop_live(struct api *api)
{
	api->stopping = true;
	while (api->waiters != NULL)
		waiter_answer(api->waiters, false);
	if (api->server != NULL)
		server_streams_end(api->server);
}

/* Prometheus text format, version 0.0.4. */
static void
serve_metrics(struct call *cl)
{
	struct api *api = cl->api;
	const struct tally_state *s = core_state(api->core);
	const struct core_stats *cs = core_stats(api->core);
	char *buf = NULL;
	size_t len = 0, i, k;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL) {
		fail(cl, 500, "internal", NULL, "out of memory");
		return;
	}
	fprintf(f, "# HELP tallyd_requests_total HTTP requests by route and status.\n"
	    "# TYPE tallyd_requests_total counter\n");
	for (i = 0; i < R_COUNT; i++)
		for (k = 0; k <= N_STATUSES; k++) {
			char st[8];
			if (api->m.requests[i][k] == 0)
				continue;
			if (k < N_STATUSES)
				snprintf(st, sizeof(st), "%u", metric_statuses[k]);
			else
				snprintf(st, sizeof(st), "other");
			fprintf(f, "tallyd_requests_total{route=\"%s\",status=\"%s\"} "
			    "%llu\n", route_names[i], st,
			    (unsigned long long)api->m.requests[i][k]);
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
	for (i = 0; i < N_REASONS && api->m.rejected[i].code[0]; i++)
		fprintf(f, "tallyd_feeds_rejected_total{reason=\"%s\"} %llu\n",
		    api->m.rejected[i].code,
		    (unsigned long long)api->m.rejected[i].n);
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
	    api->n_waiters);
	fclose(f);
	if ((cl->reply->body = http_body_new(buf, len, true)) == NULL) {
		free(buf);
		fail(cl, 500, "internal", NULL, "out of memory");
		return;
	}
	cl->reply->status = 200;
	cl->reply->owned = true;
	http_body_header(cl->reply->body, "Content-Type",
	    "text/plain; version=0.0.4; charset=utf-8");
	http_body_header(cl->reply->body, "Cache-Control", "no-store");
}

/*
 * Match a path to a route; `id` receives the {id} part.  Ids are checked
 * for syntax here; whether they exist is the handler's question.
 */
static enum route_id
match(const char *path, char *id, size_t idlen)
{
	static const struct {
		const char	*path;
		enum route_id	 id;
	} fixed[] = {
		{ "/healthz", R_HEALTH },
		{ "/metrics", R_METRICS },
		{ "/v1/election", R_ELECTION },
		{ "/v1/leaderboard", R_LEADERBOARD },
		{ "/v1/leaderboard.csv", R_LEADERBOARD_CSV },
		{ "/v1/provinces", R_PROVINCES },
		{ "/v1/provinces.csv", R_PROVINCES_CSV },
		{ "/v1/results", R_RESULTS },
		{ "/v1/events", R_EVENTS },
		{ "/", R_PAGE },
		{ "/v1/leaderboard.svg", R_LEADERBOARD_SVG },
	};
	const char *rest, *slash;
	size_t i, n;

	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcmp(path, fixed[i].path) == 0)
			return fixed[i].id;
	if (strncmp(path, "/v1/versions/", 13) == 0) {
		rest = path + 13;
		if ((slash = strchr(rest, '/')) == NULL ||
		    (n = (size_t)(slash - rest)) == 0 || n >= idlen)
			return R_NONE;
		memcpy(id, rest, n);
		id[n] = '\0';
		if (strcmp(slash, "/leaderboard") == 0)
			return R_VERSION_LEADERBOARD;
		if (strcmp(slash, "/leaderboard.svg") == 0)
			return R_VERSION_LEADERBOARD_SVG;
		if (strcmp(slash, "/provinces") == 0)
			return R_VERSION_PROVINCES;
		return R_NONE;
	}
	if (strncmp(path, "/v1/coalitions/", 15) == 0) {
		rest = path + 15;
		if (strchr(rest, '/') != NULL || strlen(rest) >= idlen ||
		    !tally_id_is_valid(rest))
			return R_NONE;
		snprintf(id, idlen, "%s", rest);
		return R_COALITION;
	}
	if (strncmp(path, "/v1/provinces/", 14) != 0)
		return R_NONE;
	rest = path + 14;
	slash = strchr(rest, '/');
	n = slash ? (size_t)(slash - rest) : strlen(rest);
	if (n == 0 || n >= idlen)
		return R_NONE;
	memcpy(id, rest, n);
	id[n] = '\0';
	if (!tally_id_is_valid(id))
		return R_NONE;
	if (slash == NULL)
		return R_PROVINCE;
	if (strcmp(slash, "/history") == 0)
		return R_HISTORY;
	if (strcmp(slash, "/results") == 0)
		return R_PROVINCE_RESULTS;
	if (strcmp(slash, "/lot") == 0)
		return R_LOT;
	return R_NONE;
}

static bool
is_true(const char *v)
{
	return v != NULL && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 ||
	    strcmp(v, "yes") == 0);
}

static bool
is_false(const char *v)
{
	return v != NULL && (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 ||
	    strcmp(v, "no") == 0);
}

/*
 * A POST's query: `dry_run` once, 1/true/yes or 0/false/no, and nothing
 * else.  A misspelt or malformed parameter must never apply for real what
 * the poster meant to try (issue 21): 400 bad_query naming it.  false
 * after fail().
 */
struct post_query {
	struct call	*cl;
	bool		 bad;
	unsigned	 seen;
};

static void
post_query_arg(void *arg, const char *key, const char *value)
{
	struct post_query *q = arg;
	struct call *cl = q->cl;

	if (q->bad)
		return;
	q->bad = true;
	if (strcmp(key, "dry_run") != 0)
		fail(cl, 400, "bad_query", NULL, "unknown query parameter "
		    "\"%.64s\" on POST %s: the only one taken is dry_run=1 "
		    "(or true, yes; 0, false, no: a real post)", key,
		    route_names[cl->route]);
	else if (q->seen++ > 0)
		fail(cl, 400, "bad_query", NULL, "dry_run is given more than "
		    "once: give it once, dry_run=1 or dry_run=0");
	else if (is_true(value))
		q->bad = false, cl->dry_run = true;
	else if (is_false(value))
		q->bad = false;
	else
		fail(cl, 400, "bad_query", NULL, "dry_run=%.32s: the accepted "
		    "values are 1, true, yes (check, change nothing) and 0, "
		    "false, no (a real post)", value ? value : "");
}

static bool
post_query(struct call *cl)
{
	struct post_query q = { cl, false, 0 };

	cl->dry_run = false;
	http_args_each(cl->rq, post_query_arg, &q);
	return !q.bad;
}

static void
route(struct call *cl, const char *id)
{
	struct api *api = cl->api;
	const struct http_request *rq = cl->rq;
	const struct tally_election *e = core_election(api->core);
	enum route_id r = cl->route;
	bool post = is_feed_route(r);
	bool get = strcmp(rq->method, "GET") == 0 ||
	    strcmp(rq->method, "HEAD") == 0;
	const struct tally_province *pv;
	const struct tally_coalition *co;
	const char *allow = post ? (api->split && !rq->ingest ? "" : "POST") :
	    "GET, HEAD";

	if (r == R_NONE) {
		fail(cl, 404, "not_found", NULL, "no such resource: %.200s (see "
		    "/v1/leaderboard, /v1/provinces, /v1/election)", rq->path);
		return;
	}
	if (post && api->split && !rq->ingest) {
		fail(cl, 405, "method_not_allowed", NULL, "feeds are accepted "
		    "on the ingest listener only (%s), not on the public one",
		    api->ingest_addr);
		http_body_header(cl->reply->body, "Allow", allow);
		return;
	}
	if (!post && strcmp(rq->method, "OPTIONS") == 0) {
		/* A browser's CORS preflight for a public GET. */
		if (cors_preflight(api->cors_origin, cl->reply) == -1)
			fail(cl, 503, "out_of_memory", NULL, "out of memory");
		return;
	}
	if ((post && strcmp(rq->method, "POST") != 0) || (!post && !get)) {
		fail(cl, 405, "method_not_allowed", NULL, "%.16s is not allowed "
		    "on %s; allowed: %s", rq->method, route_names[r], allow);
		http_body_header(cl->reply->body, "Allow", allow);
		return;
	}
	if (post && !post_query(cl))
		return;
	switch (r) {
	case R_HEALTH:
		serve_health(cl);
		return;
	case R_METRICS:
		serve_metrics(cl);
		return;
	case R_ELECTION:
		serve_view(cl, VIEW_ELECTION, 0);
		return;
	case R_LEADERBOARD:
		serve_view(cl, VIEW_LEADERBOARD, 0);
		return;
	case R_LEADERBOARD_CSV:
		serve_view(cl, VIEW_LEADERBOARD_CSV, 0);
		return;
	case R_PROVINCES: {
		const char *st = http_arg(rq, "settled");
		if (st == NULL)
			serve_view(cl, VIEW_PROVINCES, 0);
		else if (is_true(st))
			serve_view(cl, VIEW_PROVINCES_SETTLED, 0);
		else if (is_false(st))
			serve_view(cl, VIEW_PROVINCES_OPEN, 0);
		else
			fail(cl, 400, "bad_query", NULL, "settled must be true or "
			    "false (e.g. /v1/provinces?settled=false: the provinces "
			    "whose seats can still change)");
		return;
	}
	case R_PROVINCES_CSV:
		serve_view(cl, VIEW_PROVINCES_CSV, 0);
		return;
	case R_PAGE:
		serve_view(cl, VIEW_PAGE, 0);
		return;
	case R_LEADERBOARD_SVG:
		serve_view(cl, VIEW_LEADERBOARD_SVG, 0);
		return;
	case R_RESULTS:
		post_batch(cl);
		return;
	case R_EVENTS:
		serve_events(cl);
		return;
	case R_VERSION_LEADERBOARD:
	case R_VERSION_PROVINCES:
	case R_VERSION_LEADERBOARD_SVG:
		serve_version(cl, id);
		return;
	case R_COALITION:
		if ((co = tally_election_coalition(e, id)) == NULL) {
			fail(cl, 404, "unknown_coalition", NULL, "no coalition "
			    "\"%s\" in election %s (see /v1/election)", id, e->id);
			return;
		}
		serve_view(cl, VIEW_COALITION, co->index);
		return;
	case R_PROVINCE:
	case R_HISTORY:
	case R_PROVINCE_RESULTS:
	case R_LOT:
		if ((pv = tally_election_province(e, id)) == NULL) {
			const struct token *who;
			/* A token first: no answer about ids without one. */
			if (post && !feed_gate(cl, &who))
				return;
			fail(cl, 404, "unknown_province", NULL, "no province "
			    "\"%s\" in election %s (see /v1/provinces)", id, e->id);
			return;
		}
		if (r == R_PROVINCE_RESULTS)
			post_province(cl, pv->id);
		else if (r == R_LOT)
			post_lot(cl, pv);
		else if (r == R_HISTORY)
			serve_view(cl, VIEW_HISTORY, pv->index);
		else
			serve_view(cl, is_true(http_arg(rq, "explain")) ?
			    VIEW_EXPLAIN : VIEW_PROVINCE, pv->index);
		return;
	case R_NONE:
	case R_COUNT:
		break;
	}
}

void
api_handle(struct api *api, const struct http_request *rq,
    struct http_reply *reply)
{
	char id[TALLY_ID_MAX + 1];
	struct call cl = { api, rq, reply, R_NONE, NULL, false };

	cl.route = match(rq->path, id, sizeof(id));
	route(&cl, id);
	/* A pending answer is counted when it is given. */
	if (!reply->pending)
		count_request(api, cl.route, reply->status);
}

bool
api_admit(struct api *api, const struct http_request *rq,
    struct http_reply *reply)
{
	char id[TALLY_ID_MAX + 1];
	struct call cl = { api, rq, reply, R_NONE, NULL, false };
	const struct token *who;
	bool post;

	cl.route = match(rq->path, id, sizeof(id));
	post = is_feed_route(cl.route);
	/*
	 * Whatever is refused here is refused for the same reason route()
	 * would give once the body were read, but before reading it.
	 */
	if (cl.route == R_NONE || (post && api->split && !rq->ingest) ||
	    (post && strcmp(rq->method, "POST") != 0) ||
	    (!post && strcmp(rq->method, "GET") != 0 &&
	    strcmp(rq->method, "HEAD") != 0 &&
	    strcmp(rq->method, "OPTIONS") != 0)) {
		route(&cl, id);
		goto refused;
	}
	if (!post) {
		fail(&cl, 413, "body_not_allowed", NULL, "%.16s %s takes no "
		    "body", rq->method, route_names[cl.route]);
		goto refused;
	}
	if (!feed_admit(&cl, &who) || !post_query(&cl))
		goto refused;
	{
		/* Over its rate: 429 now, like 401, before the body is read. */
		double retry;
		if (!auth_ready(api->auth, who, mono_seconds(), &retry)) {
			rate_refuse(&cl, who, retry);
			goto refused;
		}
	}
	return true;
refused:
	count_request(api, cl.route, reply->status);
	return false;
}

static void
count_request(struct api *api, int route, unsigned status)
{
	size_t k;

	for (k = 0; k < N_STATUSES && metric_statuses[k] != status; k++)
		;
	api->m.requests[route][k]++;
}

void
api_refused(struct api *api, const char *path, unsigned status,
    const char *code)
{
	char id[TALLY_ID_MAX + 1];
	enum route_id r = match(path, id, sizeof(id));

	count_request(api, r, status);
	if (is_feed_route(r))
		count_rejection(api, code);
}
