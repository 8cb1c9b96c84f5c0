/*
 * api.c - the HTTP API v1 on top of libtally.
 *
 * Reads never re-encode: each view is rendered at most once per state
 * version, into an MHD response object (plain, gzip, and a 304) that every
 * GET of that version queues again.  libmicrohttpd reference-counts
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
	struct MHD_Response	*gzip;
	struct MHD_Response	*not_modified;
	char			 etag[32];
};

enum view_id { VIEW_ELECTION, VIEW_LEADERBOARD, VIEW_COUNT };

struct api {
	struct tally_election	*election;	/* owned */
	struct tally_state	*state;		/* owned */
	long			 max_age;
	time_t			 modified;	/* when the version last changed */
	struct view		 views[VIEW_COUNT];
};

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
api_create(struct tally_election *e, const struct config *cf)
{
	struct api *api;
	size_t i;

	if ((api = calloc(1, sizeof(*api))) == NULL)
		return NULL;
	if ((api->state = tally_state_create(e)) == NULL) {
		free(api);
		return NULL;
	}
	api->election = e;
	api->max_age = cf->max_age;
	api->modified = time(NULL);
	for (i = 0; i < VIEW_COUNT; i++)
		view_clear(&api->views[i]);
	return api;
}

void
api_destroy(struct api *api)
{
	size_t i;

	if (api == NULL)
		return;
	for (i = 0; i < VIEW_COUNT; i++)
		view_clear(&api->views[i]);
	tally_state_destroy(api->state);
	tally_election_destroy(api->election);
	free(api);
}

int
api_reload(struct api *api, struct tally_election *e, const struct config *cf,
    const char **why)
{
	struct tally_state *s;
	size_t i;

	/*
	 * The tally counts lists of one definition; a new definition is only
	 * taken while nothing has been counted under the old one.
	 */
	if (api->state->provinces_reporting > 0 &&
	    strcmp(api->election->id, e->id) != 0) {
		*why = "results are already counted under another election id";
		tally_election_destroy(e);
		return -1;
	}
	if ((s = tally_state_create(e)) == NULL) {
		*why = "out of memory";
		tally_election_destroy(e);
		return -1;
	}
	/* Versions only grow: every cached view and client ETag is stale. */
	s->version = api->state->version + 1;
	tally_state_destroy(api->state);
	tally_election_destroy(api->election);
	api->state = s;
	api->election = e;
	api->max_age = cf->max_age;
	api->modified = time(NULL);
	for (i = 0; i < VIEW_COUNT; i++)
		view_clear(&api->views[i]);
	return 0;
}

static int
gzip_bytes(const char *in, size_t len, char **out, size_t *outlen)
{
	z_stream zs;
	size_t cap = compressBound((uLong)len) + 32;
	char *buf;

	if ((buf = malloc(cap)) == NULL)
		return -1;
	memset(&zs, 0, sizeof(zs));
	/* windowBits 15 + 16: a gzip wrapper, as Content-Encoding: gzip wants. */
	if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		free(buf);
		return -1;
	}
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)len;
	zs.next_out = (Bytef *)buf;
	zs.avail_out = (uInt)cap;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&zs);
		free(buf);
		return -1;
	}
	*outlen = zs.total_out;
	deflateEnd(&zs);
	*out = buf;
	return 0;
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

/* Fill a view from bytes (taken: freed on every path). */
static int
view_fill(struct api *api, struct view *v, char *bytes, size_t len,
    const char *content_type)
{
	char *gz = NULL;
	size_t gzlen = 0;

	view_clear(v);
	v->version = api->state->version;
	snprintf(v->etag, sizeof(v->etag), "\"%llu\"",
	    (unsigned long long)v->version);
	if (gzip_bytes(bytes, len, &gz, &gzlen) == -1)
		goto fail;
	v->plain = MHD_create_response_from_buffer(len, bytes,
	    MHD_RESPMEM_MUST_FREE);
	if (v->plain == NULL)
		goto fail;
	bytes = NULL;
	v->gzip = MHD_create_response_from_buffer(gzlen, gz,
	    MHD_RESPMEM_MUST_FREE);
	if (v->gzip == NULL)
		goto fail;
	gz = NULL;
	v->not_modified = MHD_create_response_from_buffer(0, (void *)(uintptr_t)"",
	    MHD_RESPMEM_PERSISTENT);
	if (v->not_modified == NULL)
		goto fail;
	MHD_add_response_header(v->plain, MHD_HTTP_HEADER_CONTENT_TYPE,
	    content_type);
	MHD_add_response_header(v->gzip, MHD_HTTP_HEADER_CONTENT_TYPE,
	    content_type);
	MHD_add_response_header(v->gzip, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	add_cache_headers(api, v->plain, v->etag);
	add_cache_headers(api, v->gzip, v->etag);
	add_cache_headers(api, v->not_modified, v->etag);
	return 0;
fail:
	free(bytes);
	free(gz);
	view_clear(v);
	return -1;
}

static json_t *
render(struct api *api, enum view_id id)
{
	char now[32];

	switch (id) {
	case VIEW_ELECTION:
		return tally_election_dump(api->election);
	case VIEW_LEADERBOARD:
		time_rfc3339(api->modified, now, sizeof(now));
		return tally_render_leaderboard(api->state, now);
	case VIEW_COUNT:
		break;
	}
	return NULL;
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

static void
serve_view(struct api *api, enum view_id id, const struct http_request *rq,
    struct http_reply *reply)
{
	struct view *v = &api->views[id];

	if (v->version != api->state->version || v->plain == NULL) {
		json_t *j = render(api, id);
		char *bytes;
		size_t len;

		if (j == NULL) {
			api_error(reply, 500, "internal", NULL,
			    "could not render the view; try again");
			return;
		}
		bytes = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
		json_decref(j);
		if (bytes == NULL) {
			api_error(reply, 500, "internal", NULL,
			    "could not render the view; try again");
			return;
		}
		/* A newline at the end is kind to curl users. */
		len = strlen(bytes);
		{
			char *nb = realloc(bytes, len + 2);
			if (nb == NULL) {
				free(bytes);
				api_error(reply, 500, "internal", NULL,
				    "out of memory");
				return;
			}
			bytes = nb;
			bytes[len++] = '\n';
			bytes[len] = '\0';
		}
		if (view_fill(api, v, bytes, len,
		    "application/json; charset=utf-8") == -1) {
			api_error(reply, 500, "internal", NULL,
			    "could not render the view; try again");
			return;
		}
	}
	reply->owned = false;
	if (rq->if_none_match != NULL && etag_matches(rq->if_none_match, v->etag)) {
		reply->status = 304;
		reply->response = v->not_modified;
	} else {
		reply->status = 200;
		reply->response = rq->gzip_ok ? v->gzip : v->plain;
	}
}

void
api_error(struct http_reply *reply, unsigned status, const char *code,
    const char *field, const char *fmt, ...)
{
	json_t *o, *err;
	char msg[512], *bytes;
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
	bytes = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	reply->status = status;
	reply->owned = true;
	if (bytes == NULL) {
		reply->response = MHD_create_response_from_buffer(0,
		    (void *)(uintptr_t)"", MHD_RESPMEM_PERSISTENT);
	} else {
		size_t len = strlen(bytes);
		char *nb = realloc(bytes, len + 2);
		if (nb != NULL) {
			bytes = nb;
			bytes[len++] = '\n';
			bytes[len] = '\0';
		}
		reply->response = MHD_create_response_from_buffer(len, bytes,
		    MHD_RESPMEM_MUST_FREE);
	}
	MHD_add_response_header(reply->response, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "application/json; charset=utf-8");
	MHD_add_response_header(reply->response, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-store");
}

static void
serve_health(struct api *api, struct http_reply *reply)
{
	char buf[256];
	int n;

	n = snprintf(buf, sizeof(buf), "{\"status\":\"ok\",\"version\":%llu,"
	    "\"election\":\"%s\"}\n", (unsigned long long)api->state->version,
	    api->election->id);
	reply->status = 200;
	reply->owned = true;
	reply->response = MHD_create_response_from_buffer((size_t)n, buf,
	    MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(reply->response, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "application/json; charset=utf-8");
	MHD_add_response_header(reply->response, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-store");
}

enum route_id { R_HEALTH, R_ELECTION, R_LEADERBOARD };

struct route {
	const char	*path;
	enum route_id	 id;
	const char	*allow;		/* methods, for 405's Allow header */
};

static const struct route routes[] = {
	{ "/healthz",		R_HEALTH,	"GET, HEAD" },
	{ "/v1/election",	R_ELECTION,	"GET, HEAD" },
	{ "/v1/leaderboard",	R_LEADERBOARD,	"GET, HEAD" },
};

void
api_handle(struct api *api, const struct http_request *rq,
    struct http_reply *reply)
{
	const struct route *rt = NULL;
	size_t i;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(routes[i].path, rq->path) == 0)
			rt = &routes[i];
	if (rt == NULL) {
		api_error(reply, 404, "not_found", NULL,
		    "no such resource: %.200s (see /v1/leaderboard, "
		    "/v1/election, /healthz)", rq->path);
		return;
	}
	if (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "HEAD") != 0) {
		api_error(reply, 405, "method_not_allowed", NULL,
		    "%.16s is not allowed on %s; allowed: %s", rq->method,
		    rt->path, rt->allow);
		MHD_add_response_header(reply->response, MHD_HTTP_HEADER_ALLOW,
		    rt->allow);
		return;
	}
	switch (rt->id) {
	case R_HEALTH:
		serve_health(api, reply);
		break;
	case R_ELECTION:
		serve_view(api, VIEW_ELECTION, rq, reply);
		break;
	case R_LEADERBOARD:
		serve_view(api, VIEW_LEADERBOARD, rq, reply);
		break;
	}
}
