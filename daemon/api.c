/*
 * api.c - the HTTP API v1 on top of libtally.
 *
 * Reads never re-encode: each view is rendered at most once per state
 * version, into MHD response objects (plain and 304; gzip the first time a
 * client asks for it) that every GET of that version queues again.  libmicrohttpd reference-counts
 * responses, so replacing a view only drops our reference; connections still
 * sending the old bytes keep theirs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>
#include <zlib.h>

#include "tallyd-config.h"
#include "tallyd.h"

struct view {
	uint64_t		 version;	/* rendered for; UINT64_MAX: none */
	struct MHD_Response	*plain;
	struct MHD_Response	*gzip;		/* made on the first gzip GET */
	const char		*bytes;		/* the plain body, owned by plain */
	size_t			 len;
	const char		*ctype;
	struct MHD_Response	*not_modified;
	char			 etag[32];
};

/* Views rendered once per version: one each, or one per province/coalition. */
enum view_id {
	VIEW_ELECTION, VIEW_LEADERBOARD, VIEW_LEADERBOARD_CSV, VIEW_PROVINCES,
	VIEW_PROVINCES_CSV, VIEW_SINGLES,
	VIEW_PROVINCE = VIEW_SINGLES, VIEW_EXPLAIN, VIEW_HISTORY, VIEW_COALITION,
};

enum route_id {
	R_HEALTH, R_METRICS, R_ELECTION, R_LEADERBOARD, R_LEADERBOARD_CSV,
	R_PROVINCES, R_PROVINCES_CSV, R_PROVINCE, R_HISTORY, R_PROVINCE_RESULTS,
	R_RESULTS, R_COALITION, R_NONE, R_COUNT
};

static const char *const route_names[R_COUNT] = {
	"/healthz", "/metrics", "/v1/election", "/v1/leaderboard",
	"/v1/leaderboard.csv", "/v1/provinces", "/v1/provinces.csv",
	"/v1/provinces/{id}", "/v1/provinces/{id}/history",
	"/v1/provinces/{id}/results", "/v1/results", "/v1/coalitions/{id}",
	"other",
};

/* Statuses counted in /metrics; anything else counts as "other". */
static const unsigned metric_statuses[] = { 200, 201, 304, 400, 401, 403,
    404, 405, 409, 413, 415, 422, 500, 503 };
#define N_STATUSES (sizeof(metric_statuses) / sizeof(metric_statuses[0]))

#define N_REASONS	32

struct metrics {
	uint64_t	 requests[R_COUNT][N_STATUSES + 1];
	uint64_t	 feeds_applied;
	uint64_t	 feeds_duplicate;
	struct {
		char	 code[40];
		uint64_t n;
	}		 rejected[N_REASONS];
	uint64_t	 cache_hits;
	uint64_t	 renders;
	uint64_t	 gzips;
};

struct api {
	struct tally_election	*election;	/* owned */
	struct tally_state	*state;		/* owned */
	struct auth		*auth;		/* owned */
	const struct server	*server;	/* borrowed, for /metrics */
	bool			 split;		/* separate ingest listener */
	long			 max_age;
	time_t			 modified;	/* when the version last changed */
	struct view		 singles[VIEW_SINGLES];
	struct view		*per_province[3];	/* detail, explain, history */
	struct view		*per_coalition;
	struct metrics		 m;
	/* Group commit (see round_start). */
	struct journal		*journal;	/* borrowed */
	struct pending		*queue;
	struct pending	       **queue_tail;
	struct pending		*round;
	const struct tally_feed	**shadow;	/* per province, this round */
	char			 round_at[32];
	z_stream		 zs;		/* reused by gzip_bytes */
	bool			 zs_ready;
	/* Reads older revisions kept in the loaded snapshot. */
	tally_revision_loader	 loader;
	void			*loader_ctx;
};

static void	view_clear(struct view *v);

static void
views_clear(struct api *api)
{
	size_t i, k;

	for (i = 0; i < VIEW_SINGLES; i++)
		view_clear(&api->singles[i]);
	for (k = 0; k < 3; k++)
		for (i = 0; api->per_province[k] != NULL &&
		    i < api->election->n_provinces; i++)
			view_clear(&api->per_province[k][i]);
	for (i = 0; api->per_coalition != NULL &&
	    i < api->election->n_coalitions; i++)
		view_clear(&api->per_coalition[i]);
}

static int
views_alloc(struct api *api)
{
	size_t k, np = api->election->n_provinces, nc = api->election->n_coalitions;

	for (k = 0; k < 3; k++)
		if ((api->per_province[k] = calloc(np, sizeof(struct view))) == NULL)
			return -1;
	if ((api->per_coalition = calloc(nc, sizeof(struct view))) == NULL)
		return -1;
	views_clear(api);
	return 0;
}

static void
views_free(struct api *api)
{
	size_t k;

	views_clear(api);
	for (k = 0; k < 3; k++) {
		free(api->per_province[k]);
		api->per_province[k] = NULL;
	}
	free(api->per_coalition);
	api->per_coalition = NULL;
}

static void
view_clear(struct view *v)
{
	if (v->plain != NULL)
		MHD_destroy_response(v->plain);
	if (v->gzip != NULL)
		MHD_destroy_response(v->gzip);
	if (v->not_modified != NULL)
		MHD_destroy_response(v->not_modified);
	memset(v, 0, sizeof(*v));
	v->version = UINT64_MAX;
}

struct api *
api_create(struct tally_election *e, const struct config *cf,
    struct tally_diag *diag)
{
	struct api *api;

	if ((api = calloc(1, sizeof(*api))) == NULL) {
		tally_diag_add(diag, "out of memory");
		tally_election_destroy(e);
		return NULL;
	}
	api->election = e;
	if ((api->state = tally_state_create(e)) == NULL ||
	    views_alloc(api) == -1) {
		tally_diag_add(diag, "out of memory");
		api_destroy(api);
		return NULL;
	}
	if ((api->auth = auth_create(cf, e, diag)) == NULL) {
		api_destroy(api);
		return NULL;
	}
	api->queue_tail = &api->queue;
	if ((api->shadow = calloc(e->n_provinces, sizeof(*api->shadow))) == NULL) {
		tally_diag_add(diag, "out of memory");
		api_destroy(api);
		return NULL;
	}
	api->max_age = cf->max_age;
	api->split = cf->ingest_listen != NULL &&
	    strcmp(cf->ingest_listen, cf->listen) != 0;
	api->modified = time(NULL);
	log_info("ingest tokens: %s", auth_source(api->auth));
	return api;
}

void
api_set_server(struct api *api, const struct server *srv)
{
	api->server = srv;
}

void
api_set_journal(struct api *api, struct journal *j)
{
	api->journal = j;
}

void
api_set_loader(struct api *api, tally_revision_loader load, void *ctx)
{
	api->loader = load;
	api->loader_ctx = ctx;
}

bool
api_round_idle(const struct api *api)
{
	return api->round == NULL;
}

bool
api_idle(const struct api *api)
{
	return api->queue == NULL && api->round == NULL;
}

struct tally_state *
api_state(struct api *api)
{
	return api->state;
}

void
api_destroy(struct api *api)
{
	if (api == NULL)
		return;
	views_free(api);
	if (api->zs_ready)
		deflateEnd(&api->zs);
	free(api->shadow);
	auth_destroy(api->auth);
	tally_state_destroy(api->state);
	tally_election_destroy(api->election);
	free(api);
}

int
api_reload(struct api *api, struct tally_election *e, const struct config *cf,
    struct tally_diag *diag)
{
	struct tally_state *s = NULL;
	struct auth *auth;
	bool swap = api->state->provinces_reporting == 0 && api_idle(api);

	/*
	 * Tokens may name provinces, so they are checked against the
	 * definition that will be in force.  Results already counted belong
	 * to the loaded definition: a new one is taken only while nothing has
	 * been counted (otherwise at the next restart, which rebuilds the
	 * tally from the feeds).
	 */
	if ((auth = auth_create(cf, swap ? e : api->election, diag)) == NULL) {
		tally_election_destroy(e);
		return -1;
	}
	if (swap && (s = tally_state_create(e)) == NULL) {
		tally_diag_add(diag, "out of memory");
		auth_destroy(auth);
		tally_election_destroy(e);
		return -1;
	}
	views_free(api);
	if (swap) {
		/* Versions only grow: every cached view and client ETag is stale. */
		s->version = api->state->version + 1;
		tally_state_destroy(api->state);
		tally_election_destroy(api->election);
		api->state = s;
		api->election = e;
	} else {
		/*
		 * The tally is unchanged, so is its version: versions are
		 * journaled and must mean the same content after a restart.
		 */
		log_warnx("results are counted: the election definition is "
		    "kept until the next restart; other settings are reloaded");
		tally_election_destroy(e);
	}
	auth_destroy(api->auth);
	api->auth = auth;
	api->max_age = cf->max_age;
	api->modified = time(NULL);
	if (views_alloc(api) == -1)
		fatalx("out of memory rebuilding the view cache");
	log_info("ingest tokens: %s", auth_source(api->auth));
	return 0;
}

/*
 * Compress with one deflate stream kept for the life of the API: creating
 * zlib's state (about 256 KiB) for every version was half of a render.
 */
static int
gzip_bytes(struct api *api, const char *in, size_t len, char **out,
    size_t *outlen)
{
	z_stream *zs = &api->zs;
	size_t cap = compressBound((uLong)len) + 32;
	char *buf;

	if (!api->zs_ready) {
		memset(zs, 0, sizeof(*zs));
		/* windowBits 15 + 16: a gzip wrapper, as Content-Encoding wants. */
		if (deflateInit2(zs, 6, Z_DEFLATED, 15 + 16, 8,
		    Z_DEFAULT_STRATEGY) != Z_OK)
			return -1;
		api->zs_ready = true;
	} else if (deflateReset(zs) != Z_OK)
		return -1;
	if ((buf = malloc(cap)) == NULL)
		return -1;
	zs->next_in = (Bytef *)(uintptr_t)in;
	zs->avail_in = (uInt)len;
	zs->next_out = (Bytef *)buf;
	zs->avail_out = (uInt)cap;
	if (deflate(zs, Z_FINISH) != Z_STREAM_END) {
		free(buf);
		return -1;
	}
	*outlen = zs->total_out;
	*out = buf;
	return 0;
}

static void	add_cache_headers(struct api *api, struct MHD_Response *r,
		    const char *etag);

/* The gzip response of a view, made when first asked for. */
static struct MHD_Response *
view_gzip(struct api *api, struct view *v)
{
	char *gz;
	size_t gzlen;

	if (v->gzip != NULL)
		return v->gzip;
	if (gzip_bytes(api, v->bytes, v->len, &gz, &gzlen) == -1)
		return NULL;
	if ((v->gzip = MHD_create_response_from_buffer(gzlen, gz,
	    MHD_RESPMEM_MUST_FREE)) == NULL) {
		free(gz);
		return NULL;
	}
	MHD_add_response_header(v->gzip, MHD_HTTP_HEADER_CONTENT_TYPE, v->ctype);
	MHD_add_response_header(v->gzip, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	add_cache_headers(api, v->gzip, v->etag);
	api->m.gzips++;
	return v->gzip;
}

static void
add_cache_headers(struct api *api, struct MHD_Response *r, const char *etag)
{
	char buf[64];

	MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
	time_http(api->modified, buf, sizeof(buf));
	MHD_add_response_header(r, MHD_HTTP_HEADER_LAST_MODIFIED, buf);
	snprintf(buf, sizeof(buf), "public, max-age=%ld", api->max_age);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, buf);
	MHD_add_response_header(r, MHD_HTTP_HEADER_VARY,
	    MHD_HTTP_HEADER_ACCEPT_ENCODING);
}

/* Fill a view from bytes (taken: freed on every path); gzip comes later. */
static int
view_fill(struct api *api, struct view *v, char *bytes, size_t len,
    const char *content_type)
{
	view_clear(v);
	v->version = api->state->version;
	snprintf(v->etag, sizeof(v->etag), "\"%llu\"",
	    (unsigned long long)v->version);
	v->plain = MHD_create_response_from_buffer(len, bytes,
	    MHD_RESPMEM_MUST_FREE);
	if (v->plain == NULL)
		goto fail;
	v->bytes = bytes;
	v->len = len;
	v->ctype = content_type;
	bytes = NULL;
	v->not_modified = MHD_create_response_from_buffer(0, (void *)(uintptr_t)"",
	    MHD_RESPMEM_PERSISTENT);
	if (v->not_modified == NULL)
		goto fail;
	MHD_add_response_header(v->plain, MHD_HTTP_HEADER_CONTENT_TYPE,
	    content_type);
	add_cache_headers(api, v->plain, v->etag);
	add_cache_headers(api, v->not_modified, v->etag);
	return 0;
fail:
	free(bytes);
	view_clear(v);
	return -1;
}

/* Render a view's bytes (new, NUL-terminated) and its content type. */
static char *
render(struct api *api, enum view_id id, size_t index, const char **ctype)
{
	char now[32], *bytes, *nb;
	json_t *j = NULL;
	size_t len;

	*ctype = "application/json; charset=utf-8";
	switch (id) {
	case VIEW_ELECTION:
		j = tally_election_dump(api->election);
		break;
	case VIEW_LEADERBOARD:
		/* The hottest view: written directly, not through jansson. */
		time_rfc3339(api->modified, now, sizeof(now));
		bytes = tally_render_leaderboard_text(api->state, now);
		goto newline;
	case VIEW_LEADERBOARD_CSV:
		*ctype = "text/csv; charset=utf-8; header=present";
		return tally_render_leaderboard_csv(api->state);
	case VIEW_PROVINCES:
		j = tally_render_provinces(api->state);
		break;
	case VIEW_PROVINCES_CSV:
		*ctype = "text/csv; charset=utf-8; header=present";
		return tally_render_provinces_csv(api->state);
	case VIEW_PROVINCE:
	case VIEW_EXPLAIN:
		j = tally_render_province(api->state, index, id == VIEW_EXPLAIN);
		break;
	case VIEW_HISTORY:
		j = tally_render_history(api->state, index,
		    api->loader, api->loader_ctx);
		break;
	case VIEW_COALITION:
		j = tally_render_coalition(api->state, index);
		break;
	}
	if (j == NULL)
		return NULL;
	/*
	 * Reals are display values (shares rounded to 2 decimals, quotients
	 * shown beside their exact fraction): 10 significant digits print
	 * 40.6 rather than 40.600000000000001.
	 */
	bytes = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII |
	    JSON_REAL_PRECISION(10));
	json_decref(j);
	if (bytes == NULL)
		return NULL;
newline:
	if (bytes == NULL)
		return NULL;
	/* A newline at the end is kind to curl users. */
	len = strlen(bytes);
	if ((nb = realloc(bytes, len + 2)) == NULL) {
		free(bytes);
		return NULL;
	}
	nb[len] = '\n';
	nb[len + 1] = '\0';
	return nb;
}

/* Does an If-None-Match list name etag (weak comparison, RFC 7232 3.2)? */
static bool
etag_matches(const char *inm, const char *etag)
{
	size_t elen = strlen(etag);
	const char *p = inm;

	while (*p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (strncmp(p, etag, elen) == 0 &&
		    (p[elen] == '\0' || p[elen] == ',' || p[elen] == ' '))
			return true;
		while (*p != '\0' && *p != ',')
			p++;
	}
	return false;
}

static struct view *
view_slot(struct api *api, enum view_id id, size_t index)
{
	switch (id) {
	case VIEW_PROVINCE:
		return &api->per_province[0][index];
	case VIEW_EXPLAIN:
		return &api->per_province[1][index];
	case VIEW_HISTORY:
		return &api->per_province[2][index];
	case VIEW_COALITION:
		return &api->per_coalition[index];
	default:
		return &api->singles[id];
	}
}

static void
serve_view(struct api *api, enum view_id id, size_t index,
    const struct http_request *rq, struct http_reply *reply)
{
	struct view *v = view_slot(api, id, index);

	if (v->version != api->state->version || v->plain == NULL) {
		const char *ctype;
		char *bytes = render(api, id, index, &ctype);

		api->m.renders++;
		if (bytes == NULL || view_fill(api, v, bytes, strlen(bytes),
		    ctype) == -1) {
			api_error(reply, 500, "internal", NULL,
			    "could not render the view; try again");
			return;
		}
	} else
		api->m.cache_hits++;
	reply->owned = false;
	if (rq->if_none_match != NULL && etag_matches(rq->if_none_match, v->etag)) {
		reply->status = 304;
		reply->response = v->not_modified;
	} else {
		reply->status = 200;
		reply->response = v->plain;
		/* Without memory for gzip, the plain bytes still go out. */
		if (rq->gzip_ok && view_gzip(api, v) != NULL)
			reply->response = v->gzip;
	}
}

/*
 * An uncached JSON reply from j (taken): errors, POST answers, health.
 * Compact, ending in a newline, never stored by caches.
 */
static void
json_reply(struct http_reply *reply, unsigned status, json_t *j)
{
	char *bytes = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII |
	    JSON_REAL_PRECISION(10)) : NULL;
	size_t len = 0;
	char *nb;

	json_decref(j);
	reply->status = status;
	reply->owned = true;
	if (bytes != NULL) {
		len = strlen(bytes);
		if ((nb = realloc(bytes, len + 2)) != NULL) {
			bytes = nb;
			bytes[len++] = '\n';
			bytes[len] = '\0';
		}
		reply->response = MHD_create_response_from_buffer(len, bytes,
		    MHD_RESPMEM_MUST_FREE);
	} else {
		/* Out of memory: at least the status goes out. */
		reply->status = status < 500 ? 503 : status;
		reply->response = MHD_create_response_from_buffer(0,
		    (void *)(uintptr_t)"", MHD_RESPMEM_PERSISTENT);
	}
	MHD_add_response_header(reply->response, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "application/json; charset=utf-8");
	MHD_add_response_header(reply->response, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-store");
}

void
api_error(struct http_reply *reply, unsigned status, const char *code,
    const char *field, const char *fmt, ...)
{
	json_t *o, *err;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	err = json_object();
	json_object_set_new(err, "code", json_string(code));
	json_object_set_new(err, "message", json_string(msg));
	if (field != NULL)
		json_object_set_new(err, "field", json_string(field));
	o = json_object();
	json_object_set_new(o, "error", err);
	json_reply(reply, status, o);
	/* An error reply keeps its status even without memory for a body. */
	reply->status = status;
}

static void
serve_health(struct api *api, struct http_reply *reply)
{
	json_t *o = json_object();

	json_object_set_new(o, "status", json_string("ok"));
	json_object_set_new(o, "version",
	    json_integer((json_int_t)api->state->version));
	json_object_set_new(o, "election", json_string(api->election->id));
	json_reply(reply, 200, o);
}

/* The single place where an error kind becomes an HTTP status. */
static unsigned
error_status(enum tally_error_kind kind)
{
	switch (kind) {
	case TALLY_ERROR_SYNTAX:	return 400;
	case TALLY_ERROR_INVALID:	return 422;
	case TALLY_ERROR_NOT_FOUND:	return 404;
	case TALLY_ERROR_CONFLICT:	return 409;
	case TALLY_ERROR_NOMEM:		return 503;
	case TALLY_ERROR_NONE:		break;
	}
	return 500;
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

static void
reject_feed(struct api *api, struct http_reply *reply,
    const struct tally_error *err)
{
	count_rejection(api, err->code);
	api_error(reply, error_status(err->kind), err->code,
	    err->field[0] ? err->field : NULL, "%s", err->message);
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
 * The first gate of every feed: the right listener and a known token.
 * Fills the reply and returns false when refused.
 */
static bool
authorized_as(struct api *api, const struct http_request *rq,
    struct http_reply *reply, const struct token **who)
{
	if (!rq->ingest) {
		api_error(reply, 405, "method_not_allowed", NULL,
		    "feeds are accepted on the ingest listener only, not on "
		    "the public one");
		MHD_add_response_header(reply->response, MHD_HTTP_HEADER_ALLOW, "");
		count_rejection(api, "method_not_allowed");
		return false;
	}
	if (auth_check(api->auth, rq->authorization, who) == -1) {
		api_error(reply, 401, "unauthorized", NULL, "%s",
		    rq->authorization == NULL ? "a feed needs a token: "
		    "Authorization: Bearer <token>" : "the token is not valid");
		MHD_add_response_header(reply->response,
		    MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"tallyd\"");
		count_rejection(api, "unauthorized");
		return false;
	}
	return true;
}

static bool
authorized(struct api *api, const struct http_request *rq,
    struct http_reply *reply)
{
	const struct token *who;

	return authorized_as(api, rq, reply, &who);
}

/*
 * What every feed passes before its body is looked at: the listener, the
 * token, the content type, well-formed JSON.  Returns the parsed body (new)
 * or NULL with the reply filled.
 */
static json_t	*parse_body(struct api *api, const struct http_request *rq,
		    struct http_reply *reply);

static bool
json_typed(struct api *api, const struct http_request *rq,
    struct http_reply *reply)
{
	if (is_json_type(rq->content_type))
		return true;
	api_error(reply, 415, "unsupported_media_type", NULL,
	    "send the result as Content-Type: application/json");
	count_rejection(api, "unsupported_media_type");
	return false;
}

static json_t *
ingest_gate(struct api *api, const struct http_request *rq,
    struct http_reply *reply, const struct token **who)
{
	if (!authorized_as(api, rq, reply, who) || !json_typed(api, rq, reply))
		return NULL;
	return parse_body(api, rq, reply);
}

/* The body as JSON (new), or NULL with a 400 or 422 reply. */
static json_t *
parse_body(struct api *api, const struct http_request *rq,
    struct http_reply *reply)
{
	json_error_t jerr;
	json_t *body;

	body = json_loadb(rq->body ? rq->body : "", rq->body_len,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (body == NULL && json_error_code(&jerr) == json_error_numeric_overflow) {
		/* Well-formed JSON whose number no count can reach. */
		api_error(reply, 422, "out_of_range", NULL,
		    "a number at line %d, column %d is too large: counts are "
		    "integers from 0 to 10^12", jerr.line, jerr.column);
		count_rejection(api, "out_of_range");
		return NULL;
	}
	if (body == NULL) {
		api_error(reply, 400, "invalid_json", NULL,
		    "the body is not valid JSON (line %d, column %d): %s",
		    jerr.line, jerr.column, jerr.text);
		count_rejection(api, "invalid_json");
		return NULL;
	}
	return body;
}

/*
 * Group commit.  Accepted feeds wait in `queue` while the journal writes the
 * previous round.  A round takes the whole queue, checks each request's
 * revisions against the state and against the feeds earlier in the same
 * round (`shadow`), answers at once what it can (conflicts, repeats of what
 * is already applied), encodes one journal record per remaining request and
 * hands them to the writer as one buffer.  When that buffer is durable the
 * round is applied in order, one version per request, and every request is
 * answered; if it could not be written, nothing is applied and each gets 503.
 * A reader therefore never sees a result that could still be lost.
 */
struct pending {
	struct pending		 *next;
	void			 *ctx;		/* the server's request */
	struct tally_feed	**feeds;	/* owned until applied */
	enum tally_check	 *chk;
	size_t			 *province;	/* per feed, kept for the answer */
	uint64_t		 *revision;
	size_t			  n;
	bool			  batch;
	bool			  has_new;	/* writes a record */
	uint64_t		  version;	/* when has_new */
};

static void
pending_free(struct pending *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		tally_feed_destroy(p->feeds[i]);
	free(p->feeds);
	free(p->chk);
	free(p->province);
	free(p->revision);
	free(p);
}

static struct pending *
pending_new(void *ctx, size_t n, bool batch)
{
	struct pending *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->feeds = calloc(n, sizeof(*p->feeds));
	p->chk = calloc(n, sizeof(*p->chk));
	p->province = calloc(n, sizeof(*p->province));
	p->revision = calloc(n, sizeof(*p->revision));
	if (p->feeds == NULL || p->chk == NULL || p->province == NULL ||
	    p->revision == NULL) {
		pending_free(p);
		return NULL;
	}
	p->ctx = ctx;
	p->n = n;
	p->batch = batch;
	return p;
}

static void	count_request(struct api *api, int route, unsigned status);

/* Answer a pending request now (counted in /metrics then), and free it. */
static void
pending_finish(struct api *api, struct pending *p, struct http_reply *reply)
{
	count_request(api, p->batch ? R_RESULTS : R_PROVINCE_RESULTS,
	    reply->status);
	server_resume(p->ctx, reply);
	pending_free(p);
}

static void
pending_reject(struct api *api, struct pending *p, const struct tally_error *err)
{
	struct http_reply reply;

	memset(&reply, 0, sizeof(reply));
	reject_feed(api, &reply, err);
	pending_finish(api, p, &reply);
}

/* The success answer: 201 when something was applied, else 200 duplicate. */
static void
pending_answer(struct api *api, struct pending *p)
{
	struct http_reply reply;
	json_t *o = json_object(), *results = json_array();
	const char *status = p->has_new ? "applied" : "duplicate";
	uint64_t version = p->has_new ? p->version : api->state->version;
	size_t i;

	memset(&reply, 0, sizeof(reply));
	for (i = 0; i < p->n; i++) {
		json_t *row = json_object();
		json_object_set_new(row, "province", json_string(
		    api->election->provinces[p->province[i]].id));
		json_object_set_new(row, "revision",
		    json_integer((json_int_t)p->revision[i]));
		json_object_set_new(row, "status", json_string(
		    p->chk[i] == TALLY_CHECK_NEW ? "applied" : "duplicate"));
		json_array_append_new(results, row);
		if (p->chk[i] == TALLY_CHECK_DUPLICATE)
			api->m.feeds_duplicate++;
	}
	if (p->batch) {
		json_object_set_new(o, "status", json_string(status));
		json_object_set_new(o, "version", json_integer((json_int_t)version));
		json_object_set_new(o, "results", results);
	} else {
		json_object_update(o, json_array_get(results, 0));
		json_object_set_new(o, "version", json_integer((json_int_t)version));
		json_decref(results);
	}
	json_reply(&reply, p->has_new ? 201 : 200, o);
	pending_finish(api, p, &reply);
}

static void
round_clear_shadow(struct api *api)
{
	struct pending *p;
	size_t i;

	for (p = api->round; p != NULL; p = p->next)
		for (i = 0; i < p->n; i++)
			api->shadow[p->province[i]] = NULL;
}

static void	round_start(struct api *api);

/* The journal is done with the round's buffer (loop thread). */
void
api_journal_done(void *arg, int err)
{
	struct api *api = arg;
	struct pending *p, *next;
	struct tally_error terr;
	bool applied = false;
	size_t i;

	round_clear_shadow(api);
	for (p = api->round; p != NULL; p = next) {
		next = p->next;
		if (err != 0) {
			struct http_reply reply;
			memset(&reply, 0, sizeof(reply));
			count_rejection(api, "journal_unavailable");
			api_error(&reply, 503, "journal_unavailable", NULL,
			    "the journal could not be written (%s); nothing was "
			    "applied: retry later", strerror(err));
			MHD_add_response_header(reply.response,
			    MHD_HTTP_HEADER_RETRY_AFTER, "5");
			pending_finish(api, p, &reply);
			continue;
		}
		if (p->has_new) {
			for (i = 0; i < p->n; i++) {
				struct tally_feed *f;
				if (p->chk[i] != TALLY_CHECK_NEW)
					continue;
				/* The state takes the feed. */
				f = p->feeds[i];
				p->feeds[i] = NULL;
				if (tally_state_apply(api->state, f, api->round_at,
				    &terr) == -1)
					/* The record is durable but the tally
					 * lacks it: restart, which replays it. */
					fatalx("cannot apply a durable record: %s",
					    terr.message);
				api->m.feeds_applied++;
			}
			tally_state_bump(api->state);
			if (api->state->version != p->version)
				fatalx("version %llu applied as %llu",
				    (unsigned long long)p->version,
				    (unsigned long long)api->state->version);
			applied = true;
		}
		pending_answer(api, p);
	}
	if (err != 0)
		log_warnx("journal write failed (%s): %s", strerror(err),
		    "answered 503, nothing applied; reads go on");
	if (applied)
		api->modified = time(NULL);
	api->round = NULL;
	round_start(api);
}

static void
round_start(struct api *api)
{
	struct pending *p, *next, **tail;
	struct tally_error err;
	char *buf = NULL;
	size_t len = 0, cap = 0, records = 0, i;
	uint64_t version = api->state->version;
	uint64_t seq;

	if (api->round != NULL || api->queue == NULL ||
	    journal_busy(api->journal))
		return;
	seq = journal_next_seq(api->journal);
	time_rfc3339(time(NULL), api->round_at, sizeof(api->round_at));
	p = api->queue;
	api->queue = NULL;
	api->queue_tail = &api->queue;
	tail = &api->round;
	for (; p != NULL; p = next) {
		bool waits = false;
		next = p->next;
		p->next = NULL;
		/* Check every feed first: a batch is all or nothing. */
		for (i = 0; i < p->n; i++) {
			struct tally_feed *f = p->feeds[i];
			const struct tally_feed *prev = api->shadow[f->province];
			const struct tally_revision *cur;
			if (prev == NULL && (cur = tally_state_current(api->state,
			    f->province)) != NULL)
				prev = cur->feed;
			if (tally_feed_check(prev, f,
			    api->election->provinces[f->province].id, &p->chk[i],
			    &err) == -1) {
				if (p->batch) {
					char msg[sizeof(err.message)];
					snprintf(err.field, sizeof(err.field),
					    "/results/%zu/revision", i);
					snprintf(msg, sizeof(msg), "%s", err.message);
					snprintf(err.message, sizeof(err.message),
					    "%.250s; nothing was applied", msg);
				}
				break;
			}
			/* A repeat of a feed not yet durable waits for it. */
			if (p->chk[i] == TALLY_CHECK_DUPLICATE &&
			    prev == api->shadow[f->province])
				waits = true;
		}
		if (i < p->n) {
			pending_reject(api, p, &err);
			continue;
		}
		for (i = 0; i < p->n; i++)
			if (p->chk[i] == TALLY_CHECK_NEW) {
				api->shadow[p->feeds[i]->province] = p->feeds[i];
				p->has_new = true;
			}
		if (p->has_new) {
			struct tally_feed **fresh = p->feeds;
			size_t nf = 0;
			char *rec;
			size_t reclen;
			/* The record holds only the new revisions. */
			struct tally_feed **nfeeds = malloc(p->n * sizeof(*nfeeds));
			if (nfeeds == NULL)
				fatalx("out of memory");
			for (i = 0; i < p->n; i++)
				if (p->chk[i] == TALLY_CHECK_NEW)
					nfeeds[nf++] = fresh[i];
			p->version = ++version;
			if (tally_journal_encode(seq + records, p->version,
			    api->round_at, nfeeds, nf, &rec, &reclen) == -1)
				fatalx("out of memory encoding a journal record");
			free(nfeeds);
			if (len + reclen > cap) {
				char *nb;
				cap = (len + reclen) * 2;
				if ((nb = realloc(buf, cap)) == NULL)
					fatalx("out of memory");
				buf = nb;
			}
			memcpy(buf + len, rec, reclen);
			len += reclen;
			free(rec);
			records++;
			waits = true;
		}
		if (!waits) {
			/* Everything in it is already applied: answer now. */
			pending_answer(api, p);
			continue;
		}
		*tail = p;
		tail = &p->next;
	}
	if (api->round == NULL) {
		free(buf);
		return;
	}
	if (records == 0) {
		/* Only repeats of feeds of this very round: cannot happen,
		 * since a repeat waits only for a record in the round. */
		free(buf);
		api_journal_done(api, 0);
		return;
	}
	if (journal_submit(api->journal, buf, len, records) == -1)
		fatalx("journal busy at round start");
}

static void
enqueue(struct api *api, struct pending *p, struct http_reply *reply)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		p->province[i] = p->feeds[i]->province;
		p->revision[i] = p->feeds[i]->revision;
	}
	*api->queue_tail = p;
	api->queue_tail = &p->next;
	reply->pending = true;
	round_start(api);
}

static void
post_province(struct api *api, const struct http_request *rq,
    const char *province, struct http_reply *reply)
{
	const struct token *who;
	struct tally_feed *f;
	struct tally_error err;
	struct pending *p;
	json_t *body;

	if (!authorized_as(api, rq, reply, &who) || !json_typed(api, rq, reply))
		return;
	/* The usual body takes the fast path; anything else, the full one. */
	f = tally_feed_scan(api->election, province, rq->body ? rq->body : "",
	    rq->body_len);
	if (f == NULL) {
		if ((body = parse_body(api, rq, reply)) == NULL)
			return;
		f = tally_feed_parse(api->election, province, body, "", &err);
		json_decref(body);
		if (f == NULL) {
			reject_feed(api, reply, &err);
			return;
		}
	}
	if (!auth_may_post(who, province)) {
		tally_feed_destroy(f);
		count_rejection(api, "forbidden_province");
		api_error(reply, 403, "forbidden_province", NULL,
		    "this token may not post results for province %s", province);
		return;
	}
	if ((p = pending_new(rq->ctx, 1, false)) == NULL) {
		tally_feed_destroy(f);
		api_error(reply, 503, "out_of_memory", NULL,
		    "out of memory; nothing was applied, try again");
		return;
	}
	p->feeds[0] = f;
	log_debug("accepted %s revision %llu (token %s)", province,
	    (unsigned long long)f->revision, auth_label(who));
	enqueue(api, p, reply);
}

/*
 * A batch is all-or-nothing: every entry is parsed, authorised and checked
 * before any is applied, and one bad entry rejects the whole batch, named by
 * its JSON pointer.
 */
static void
post_batch(struct api *api, const struct http_request *rq,
    struct http_reply *reply)
{
	const struct token *who;
	struct pending *p = NULL;
	struct tally_error err;
	json_t *body, *arr, *entry;
	const char *key;
	json_t *v;
	size_t i, j, n = 0;
	char ptr[64];

	if ((body = ingest_gate(api, rq, reply, &who)) == NULL)
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
	if ((p = pending_new(rq->ctx, n, true)) == NULL) {
		tally_error_set(&err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,
		    "out of memory; nothing was applied, try again");
		goto reject;
	}
	json_array_foreach(arr, i, entry) {
		snprintf(ptr, sizeof(ptr), "/results/%zu", i);
		if ((p->feeds[i] = tally_feed_parse(api->election, NULL, entry,
		    ptr, &err)) == NULL)
			goto reject;
		for (j = 0; j < i; j++)
			if (p->feeds[j]->province == p->feeds[i]->province) {
				tally_error_set(&err, TALLY_ERROR_INVALID,
				    "duplicate_province", ptr,
				    "province %s is already in this batch at "
				    "/results/%zu; send one result per province",
				    api->election->provinces[p->feeds[i]->province].id,
				    j);
				snprintf(err.field, sizeof(err.field),
				    "%s/province", ptr);
				goto reject;
			}
	}
	for (i = 0; i < n; i++) {
		const char *pid = api->election->provinces[p->feeds[i]->province].id;
		if (!auth_may_post(who, pid)) {
			snprintf(ptr, sizeof(ptr), "/results/%zu/province", i);
			count_rejection(api, "forbidden_province");
			api_error(reply, 403, "forbidden_province", ptr,
			    "this token may not post results for province %s; "
			    "nothing was applied", pid);
			pending_free(p);
			json_decref(body);
			return;
		}
	}
	json_decref(body);
	enqueue(api, p, reply);
	return;
reject:
	reject_feed(api, reply, &err);
	if (p != NULL)
		pending_free(p);
	json_decref(body);
}

/* Prometheus text format, version 0.0.4. */
static void
serve_metrics(struct api *api, struct http_reply *reply)
{
	const struct tally_state *s = api->state;
	char *buf = NULL;
	size_t len = 0, i, k;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL) {
		api_error(reply, 500, "internal", NULL, "out of memory");
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
	    (unsigned long long)api->m.feeds_applied);
	fprintf(f, "# HELP tallyd_feeds_duplicate_total Identical retries "
	    "answered without a change.\n"
	    "# TYPE tallyd_feeds_duplicate_total counter\n"
	    "tallyd_feeds_duplicate_total %llu\n",
	    (unsigned long long)api->m.feeds_duplicate);
	fprintf(f, "# HELP tallyd_feeds_rejected_total Feeds refused, by error code.\n"
	    "# TYPE tallyd_feeds_rejected_total counter\n");
	for (i = 0; i < N_REASONS && api->m.rejected[i].code[0]; i++)
		fprintf(f, "tallyd_feeds_rejected_total{reason=\"%s\"} %llu\n",
		    api->m.rejected[i].code,
		    (unsigned long long)api->m.rejected[i].n);
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
	fprintf(f, "# HELP tallyd_render_cache_hits_total GETs answered from "
	    "cached bytes.\n# TYPE tallyd_render_cache_hits_total counter\n"
	    "tallyd_render_cache_hits_total %llu\n",
	    (unsigned long long)api->m.cache_hits);
	fprintf(f, "# HELP tallyd_renders_total Views rendered.\n"
	    "# TYPE tallyd_renders_total counter\ntallyd_renders_total %llu\n",
	    (unsigned long long)api->m.renders);
	fprintf(f, "# HELP tallyd_gzips_total Views compressed (once per version, "
	    "when first asked for).\n# TYPE tallyd_gzips_total counter\n"
	    "tallyd_gzips_total %llu\n", (unsigned long long)api->m.gzips);
	fprintf(f, "# HELP tallyd_open_connections Connections open now.\n"
	    "# TYPE tallyd_open_connections gauge\n"
	    "tallyd_open_connections %u\n",
	    api->server ? server_connections(api->server) : 0);
	fclose(f);
	reply->status = 200;
	reply->owned = true;
	reply->response = MHD_create_response_from_buffer(len, buf,
	    MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(reply->response, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/plain; version=0.0.4; charset=utf-8");
	MHD_add_response_header(reply->response, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-store");
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
	};
	const char *rest, *slash;
	size_t i, n;

	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcmp(path, fixed[i].path) == 0)
			return fixed[i].id;
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
	return R_NONE;
}

static bool
is_true(const char *v)
{
	return v != NULL && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 ||
	    strcmp(v, "yes") == 0);
}

static void
route(struct api *api, enum route_id r, const char *id,
    const struct http_request *rq, struct http_reply *reply)
{
	bool post = r == R_PROVINCE_RESULTS || r == R_RESULTS;
	bool get = strcmp(rq->method, "GET") == 0 ||
	    strcmp(rq->method, "HEAD") == 0;
	const struct tally_province *pv;
	const struct tally_coalition *co;
	const char *allow = post ? (api->split && !rq->ingest ? "" : "POST") :
	    "GET, HEAD";

	if (r == R_NONE) {
		api_error(reply, 404, "not_found", NULL, "no such resource: "
		    "%.200s (see /v1/leaderboard, /v1/provinces, /v1/election)",
		    rq->path);
		return;
	}
	if ((post && strcmp(rq->method, "POST") != 0) || (!post && !get) ||
	    (post && api->split && !rq->ingest)) {
		if (post && api->split && !rq->ingest)
			api_error(reply, 405, "method_not_allowed", NULL,
			    "feeds are accepted on the ingest listener only");
		else
			api_error(reply, 405, "method_not_allowed", NULL,
			    "%.16s is not allowed on %s; allowed: %s",
			    rq->method, route_names[r], allow);
		MHD_add_response_header(reply->response, MHD_HTTP_HEADER_ALLOW,
		    allow);
		return;
	}
	switch (r) {
	case R_HEALTH:
		serve_health(api, reply);
		return;
	case R_METRICS:
		serve_metrics(api, reply);
		return;
	case R_ELECTION:
		serve_view(api, VIEW_ELECTION, 0, rq, reply);
		return;
	case R_LEADERBOARD:
		serve_view(api, VIEW_LEADERBOARD, 0, rq, reply);
		return;
	case R_LEADERBOARD_CSV:
		serve_view(api, VIEW_LEADERBOARD_CSV, 0, rq, reply);
		return;
	case R_PROVINCES:
		serve_view(api, VIEW_PROVINCES, 0, rq, reply);
		return;
	case R_PROVINCES_CSV:
		serve_view(api, VIEW_PROVINCES_CSV, 0, rq, reply);
		return;
	case R_RESULTS:
		post_batch(api, rq, reply);
		return;
	case R_COALITION:
		if ((co = tally_election_coalition(api->election, id)) == NULL) {
			api_error(reply, 404, "unknown_coalition", NULL,
			    "no coalition \"%s\" in election %s (see "
			    "/v1/election)", id, api->election->id);
			return;
		}
		serve_view(api, VIEW_COALITION, co->index, rq, reply);
		return;
	case R_PROVINCE:
	case R_HISTORY:
	case R_PROVINCE_RESULTS:
		if (r == R_PROVINCE_RESULTS && !authorized(api, rq, reply))
			return;
		if ((pv = tally_election_province(api->election, id)) == NULL) {
			if (r == R_PROVINCE_RESULTS)
				count_rejection(api, "unknown_province");
			api_error(reply, 404, "unknown_province", NULL,
			    "no province \"%s\" in election %s (see "
			    "/v1/provinces)", id, api->election->id);
			return;
		}
		if (r == R_PROVINCE_RESULTS)
			post_province(api, rq, pv->id, reply);
		else if (r == R_HISTORY)
			serve_view(api, VIEW_HISTORY, pv->index, rq, reply);
		else
			serve_view(api, is_true(MHD_lookup_connection_value(
			    rq->conn, MHD_GET_ARGUMENT_KIND, "explain")) ?
			    VIEW_EXPLAIN : VIEW_PROVINCE, pv->index, rq, reply);
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
	enum route_id r = match(rq->path, id, sizeof(id));

	route(api, r, id, rq, reply);
	/* A pending answer is counted when it is given. */
	if (!reply->pending)
		count_request(api, r, reply->status);
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
	if (r == R_PROVINCE_RESULTS || r == R_RESULTS)
		count_rejection(api, code);
}

const char *
api_election_id(const struct api *api)
{
	return api->election->id;
}
